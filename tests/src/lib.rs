//! wasm-ingress-tests: the harness the integration tests share, reusable by any end-to-end test
//! (filter ABI tests, static-Envoy tests, control-plane tests).
//!
//! - `paths`: where Envoy, the filter `.wasm`, the control plane and echo-backend are (env vars from
//!   the Makefile, defaults under the workspace root; missing = clear failure, never a skip).
//! - `abi`: a wasmtime proxy-wasm 0.2.1 host that drives the built `.wasm` like Envoy does.
//! - `envoy`: start real Envoy with a structured bootstrap, wait for `/ready`, kill on drop.
//! - `gateway`: the whole product (control plane + Envoy) on a manifests folder; manifest and
//!   certificate builders for end-to-end tests.
//! - `apiserver`: a stand-in Kubernetes API server over real HTTP (list, watch, status, Events,
//!   Leases) for running `serve --kubeconfig` end to end.
//! - `backend`: spawn `echo-backend` processes on loopback, kill on drop; parse their answers.
//! - `loopback`: a stand-in server's thread, runtime and accept loop on 127.0.0.1.
//! - `otlp`: a stand-in OpenTelemetry collector (OTLP/gRPC) recording the spans Envoy exports.
//!
//! This crate tests; it must not contain product logic.

pub mod abi;
pub mod apiserver;
pub mod backend;
pub mod envoy;
pub mod gateway;
pub mod loopback;
pub mod otlp;
pub mod paths;
