//! Translation: `ClusterState` -> `Model` (+ diagnostics) -> Envoy resources. Pure functions only.

pub mod access;
pub mod affinity;
pub mod blocks;
pub mod access_log;
pub mod clusters;
pub mod compression;
pub mod edge;
pub mod error_pages;
pub mod envoy;
pub mod ingress;
pub mod local_reply;
pub mod log_format;
pub mod otel;
pub mod plain_http;
pub mod ratelimit;
pub mod re2;
pub mod routes;
