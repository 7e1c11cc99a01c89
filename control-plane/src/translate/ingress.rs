//! ClusterState -> Model + Diagnostics (being written, see issue #3). Pure: no I/O, no Envoy types.

use crate::model::Translation;
use crate::state::ClusterState;

/// Which Ingresses are ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateOptions {
    /// IngressClass name we serve (`--ingress-class`).
    pub ingress_class: String,
    /// `spec.controller` value of IngressClasses that are ours (`--controller-name`).
    pub controller_name: String,
}

/// Translate the whole state. Never fails: bad objects are skipped with a diagnostic.
pub fn translate(state: &ClusterState, options: &TranslateOptions) -> Translation {
    let _ = (state, options);
    Translation::default()
}
