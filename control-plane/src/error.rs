//! The crate's typed errors (one `thiserror` enum, as kube-rs controllers do). Only errors a caller
//! can act on live here; problems in user objects are `model::Diagnostic`s, never errors. `anyhow`
//! is for `commands/` and `main` only.

use std::path::PathBuf;

/// Why a source (or another long-lived part of the control plane) could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifests folder does not exist or is not a folder.
    #[error("manifests folder {}: {reason}", path.display())]
    ManifestsDir { path: PathBuf, reason: String },
    /// The file-system watcher could not be created or attached to the folder.
    #[error("cannot watch manifests folder {}: {source}", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    /// A background task was asked to start outside a Tokio runtime.
    #[error("{what} must be started inside a Tokio runtime")]
    NoRuntime { what: &'static str },
}
