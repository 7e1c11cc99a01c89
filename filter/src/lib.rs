//! wasm-ingress-filter: a proxy-wasm HTTP filter that routes requests inside Envoy exactly by the
//! Kubernetes Ingress v1 spec (plus the ingress-nginx annotations the control plane translates).
//!
//! - `table`: the route-table schema (JSON) the control plane sends; shared with the control plane.
//! - `matcher`: pure host/path matching (host index + per-host matchit radix tree) and precedence.
//! - `request`: the request parts routing reads (authority, path, scheme, listener port).
//! - `actions`: what a matched route does (weighted pick, rewrite-target, ReplacePrefix) as values.
//! - `canary`: ingress-nginx canary decisions (header, cookie, weight) as a pure function.
//! - `affinity`: the sticky cookie's backend mark, which keeps a client on the backend (main or
//!   canary) that first answered it.
//! - `client_cert`: ingress-nginx client certificates (`auth-tls-*`) per request, after Envoy's
//!   handshake (SNI = host, certificate presence).
//! - `auth_cache`: ingress-nginx's cache of auth answers (`auth-cache-key`, `auth-cache-duration`):
//!   keys, how long an answer is kept, the bounded per-worker cache.
//! - `connections`: ingress-nginx `limit-connections` — the per-client counts of requests in
//!   progress, kept in Envoy's shared data (slot choice, value encoding, exemption) as pure functions.
//! - `cors`: ingress-nginx CORS as a choice between a route's policies (allowed origin, preflight).
//! - `redirect`: redirect checks and the `Location` a redirect gives a request (ssl-redirect,
//!   app-root, permanent/temporal and from-to-www redirects).
//! - `decision`: the outcome of routing a request (forward / respond / redirect, and why), as plain
//!   values.
//! - `response`: ingress-nginx's `proxy-redirect-*` and `proxy-cookie-*` rewrites of the upstream's
//!   `Location`, `Refresh` and `Set-Cookie` headers, as pure functions.
//! - `subset`: ingress-nginx `upstream-hash-by-subset` — the slot a request's hash key falls in,
//!   and the subsets of endpoints the control plane labels with slots.
//! - `limits`: the caps (path, rewrite, regex, location, table size) that keep any input from
//!   trapping the VM.
//! - `host` (wasm32 only): the only module that talks to proxy-wasm.
//!
//! Nothing outside `host` may name proxy-wasm, so the whole routing core is tested natively.

mod action_de;
pub mod actions;
pub mod address;
pub mod affinity;
pub mod auth;
pub mod auth_cache;
pub mod basic;
pub mod canary;
pub mod client_cert;
pub mod cluster;
pub mod connections;
pub mod cors;
pub mod decision;
pub mod digest;
pub mod hostname;
pub mod limits;
pub mod matcher;
pub mod origin;
pub mod redirect;
pub mod request;
pub mod response;
pub mod satisfy;
pub mod subset;
pub mod table;

#[cfg(target_arch = "wasm32")]
mod host;
