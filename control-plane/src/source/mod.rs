//! Sources of cluster state. Each publishes complete `ClusterState` snapshots on a
//! `tokio::sync::watch` channel; `serve` translates whatever the latest snapshot is.
//!
//! - `files`: a manifests folder (multi-document YAML), watched with notify.
//! - `kube`: the Kubernetes API (kube-rs watchers + reflector stores).
//! - `external_names`: a stage after either: ExternalName Services' names looked up and merged
//!   in as EndpointSlices.

pub mod access;
pub mod external_names;
pub mod files;
pub mod kube;
