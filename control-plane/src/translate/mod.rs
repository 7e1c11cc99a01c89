//! Translation: `ClusterState` -> `Model` (+ diagnostics) -> Envoy resources. Pure functions only.

pub mod ingress;
