//! wasm-ingress: the control plane. Reads cluster state (a manifests folder or the Kubernetes API),
//! translates it in a pure function into a `Model`, and serves it to Envoy over ADS.
//!
//! Data flows one way: `source` -> `state::ClusterState` -> `translate::ingress` (pure) ->
//! `model::Model` + diagnostics -> `translate::envoy` -> `xds` (versioned snapshot, ADS) -> Envoy.
//! What Envoy rejects flows back: `xds::rejections` -> `nacks` -> diagnostics on the Ingresses concerned.

pub mod admin;
pub mod cli;
pub mod commands;
pub mod controller_certificate;
pub mod events;
pub mod leader;
pub mod error;
pub mod metrics;
pub mod migrate;
pub mod model;
pub mod nacks;
pub mod report;
pub mod source;
pub mod state;
pub mod status;
pub mod translate;
pub mod xds;
