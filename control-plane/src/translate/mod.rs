//! Translation: `ClusterState` -> `Model` (+ diagnostics) -> Envoy resources. Pure functions only.

pub mod envoy;
pub mod ingress;
