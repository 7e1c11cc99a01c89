//! The xDS server: Envoy resources -> versioned snapshots -> ADS streams (state of the world or delta).
//!
//! - `resources`: the xDS types we serve (type URLs, push order) and packing resources as `Any`.
//! - `cache`: the versioned snapshot (per type: resources + a content-hash version), published on a
//!   `tokio::sync::watch` channel; an identical rebuild publishes nothing.
//! - `route_config`: RDS route configurations as bytes that do not depend on map order, and the
//!   merge that keeps a removed policy until the route table that used it is replaced.
//! - `stream`: the per-stream ACK/NACK/nonce state machine; synchronous, no I/O.
//! - `delta`: delta ADS as a translation of requests and responses around `stream`.
//! - `rejections`: the NACKs standing now, per Envoy node and type.
//! - `server`: the thin tonic layer (`AggregatedDiscoveryService`) around `stream`.
//!
//! This module must not know about Kubernetes or the Model: it serves whatever resources it is given.

pub mod cache;
pub mod delta;
pub mod rejections;
pub mod resources;
pub mod route_config;
pub mod server;
pub mod stream;
