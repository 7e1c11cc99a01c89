//! wasm-ingress-filter: a proxy-wasm HTTP filter that routes requests inside Envoy exactly by the
//! Kubernetes Ingress v1 spec (plus the ingress-nginx annotations the control plane translates).
//!
//! - `table`: the route-table schema (JSON) the control plane sends; shared with the control plane.
//! - `matcher`: pure host/path matching and the actions (rewrite, respond) as plain values.
//! - `host` (wasm32 only): the only module that talks to proxy-wasm.

pub mod matcher;
pub mod table;
