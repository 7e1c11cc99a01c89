//! Sources of cluster state. Each publishes complete `ClusterState` snapshots on a
//! `tokio::sync::watch` channel; `serve` translates whatever the latest snapshot is.
//!
//! - `files`: a manifests folder (multi-document YAML), watched with notify.

pub mod files;
