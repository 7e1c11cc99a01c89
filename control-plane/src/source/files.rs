//! The manifests-folder source (being written, see issue #3).

use std::path::Path;

use crate::model::Diagnostic;
use crate::state::ClusterState;

/// Load every manifest under `dir` (recursive, `.yaml`/`.yml`, multi-document). Unreadable files and
/// objects are reported as diagnostics (kind `File`), never fatal.
pub fn load_dir(dir: &Path) -> (ClusterState, Vec<Diagnostic>) {
    let _ = dir;
    (ClusterState::default(), Vec::new())
}
