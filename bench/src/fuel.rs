//! Section 2: deterministic cost of the built filter, measured as wasmtime fuel (≈ one unit per wasm
//! instruction executed) in the tests crate's proxy-wasm host ([`wasm_ingress_tests::abi`], metered):
//! `on_configure` for a table of N rules, one request through `proxy_on_request_headers`, and the
//! linear memory after loading the table. The same host runs the floor filter (gateway D), so "ours
//! minus floor" is what routing costs inside wasm; host-side work (Envoy copying headers in and out)
//! is counted as host *calls*, since its cost lives in Envoy, not in the module.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use wasm_ingress_tests::abi::{FilterVm, VmOptions};

use crate::workload::Request;

/// One request's headers, as the benchmark's HTTP clients send them.
fn request_headers(request: &Request) -> [(&[u8], &[u8]); 7] {
    [
        (b":authority", request.authority.as_bytes()),
        (b":path", request.path.as_bytes()),
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b"user-agent", b"wrk"),
        (b"x-forwarded-proto", b"http"),
        (b"x-request-id", b"2f0e1c6a-5d4b-4c1e-9a7f-0e8f7b6c5d4a"),
    ]
}

/// One request through a fresh HTTP context of `vm`: the fuel of `proxy_on_request_headers` alone,
/// the cluster header set (if any), the local response status (if any) and the host calls made.
fn request_cost(vm: &mut FilterVm, request: &Request) -> Result<RequestCost> {
    let outcome = vm.request(&request_headers(request))?;
    Ok(RequestCost {
        fuel: outcome.fuel.context("the VM is not metered")?,
        action: outcome.action,
        cluster: outcome.header(wasm_ingress_filter::table::CLUSTER_HEADER),
        local_response: outcome.local_response.map(|response| response.status),
        host_calls: outcome.calls,
        between_calls: outcome.fuel_between_calls,
        context_fuel: outcome.context_fuel.unwrap_or(0),
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestCost {
    pub fuel: u64,
    pub action: i32,
    pub cluster: Option<String>,
    pub local_response: Option<u32>,
    pub host_calls: BTreeMap<String, usize>,
    pub between_calls: Vec<(String, u64)>,
    pub context_fuel: u64,
}

/// Section 2 for one filter and one table size.
#[derive(Debug, Clone, Serialize)]
pub struct FuelResult {
    pub filter: String,
    /// Table shape (`many-hosts`, `one-host`).
    pub shape: String,
    pub rules: usize,
    pub config_bytes: usize,
    /// Fuel of `_initialize` + `proxy_on_vm_start`.
    pub vm_start_fuel: u64,
    pub configure_accepted: bool,
    pub configure_fuel: u64,
    /// Wall time of `proxy_on_configure` under wasmtime with fuel metering (indicative only).
    pub configure_ms: f64,
    pub memory_bytes: usize,
    /// Fuel of the first request after configure (may include lazy initialisation).
    pub first_request_fuel: u64,
    pub request_fuel_median: f64,
    pub request_fuel_min: u64,
    pub request_fuel_max: u64,
    pub requests_measured: usize,
    pub requests_routed: usize,
    /// Requests routed to the cluster the Ingress rules name (the floor always picks one cluster).
    pub requests_to_expected_cluster: usize,
    /// Host calls of one (median-cost) request.
    pub host_calls_per_request: BTreeMap<String, usize>,
    /// Where that request's fuel went: each host call and the fuel spent before it (see
    /// `RequestOutcome::fuel_between_calls`).
    pub median_request_fuel_between_calls: Vec<(String, u64)>,
    /// That request's context around `proxy_on_request_headers` (create, done, log, delete).
    pub median_request_context_fuel: u64,
}

/// What `on_configure` of one table cost in a fresh VM.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigureCost {
    /// Fuel of `_initialize` + `proxy_on_vm_start`, before it.
    pub vm_start_fuel: u64,
    pub config_bytes: usize,
    pub accepted: bool,
    pub fuel: u64,
    /// Wall time under wasmtime with fuel metering (indicative only).
    pub ms: f64,
    /// The VM's linear memory after it.
    pub memory_bytes: usize,
}

/// The `on_configure` cost of `configuration` alone.
pub fn configure_cost(wasm: &Path, configuration: &[u8]) -> Result<ConfigureCost> {
    let (vm, cost) = configured(wasm, configuration)?;
    drop(vm);
    Ok(cost)
}

/// A fresh VM given `configuration`, and what that cost.
fn configured(wasm: &Path, configuration: &[u8]) -> Result<(FilterVm, ConfigureCost)> {
    let mut vm = FilterVm::load_with(wasm, VmOptions { metered: true })?;
    vm.start(b"")?;
    let start_fuel = vm.fuel_spent().unwrap_or(0);
    let started = Instant::now();
    let accepted = vm.configure(configuration)?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let fuel = vm.fuel_spent().unwrap_or(0) - start_fuel;
    let memory_bytes = vm.memory_bytes();
    Ok((vm, ConfigureCost { vm_start_fuel: start_fuel, config_bytes: configuration.len(), accepted, fuel, ms, memory_bytes }))
}

/// Configure `module` with `configuration` and send every request of `requests` (twice; the second
/// pass is what we report, so one-time lazy work is not counted per request).
pub fn measure(wasm: &Path, filter: &str, rules: usize, configuration: &[u8], requests: &[Request]) -> Result<FuelResult> {
    let (mut vm, cost) = configured(wasm, configuration)?;
    let start_fuel = cost.vm_start_fuel;
    let (accepted, configure_fuel) = (cost.accepted, cost.fuel);
    if !accepted {
        let logs: Vec<_> = vm.host().logs.iter().rev().take(3).map(|(_, message)| message).collect();
        bail!("{filter}: on_configure refused the table of {rules} rules: {logs:?}");
    }
    let memory_bytes = cost.memory_bytes;
    let first = request_cost(&mut vm, requests.first().context("no requests")?)?;
    let mut costs = Vec::new();
    for request in requests.iter().chain(requests.iter()) {
        costs.push(request_cost(&mut vm, request)?);
    }
    let measured: Vec<RequestCost> = costs.split_off(requests.len());
    let fuels: Vec<f64> = measured.iter().map(|c| c.fuel as f64).collect();
    let median = crate::stats::median(&fuels);
    let median_cost = measured.iter().min_by(|a, b| (a.fuel as f64 - median).abs().total_cmp(&(b.fuel as f64 - median).abs()));
    Ok(FuelResult {
        filter: filter.to_string(),
        shape: String::new(),
        rules,
        config_bytes: configuration.len(),
        vm_start_fuel: start_fuel,
        configure_accepted: accepted,
        configure_fuel,
        configure_ms: cost.ms,
        memory_bytes,
        first_request_fuel: first.fuel,
        request_fuel_median: median,
        request_fuel_min: measured.iter().map(|c| c.fuel).min().unwrap_or(0),
        request_fuel_max: measured.iter().map(|c| c.fuel).max().unwrap_or(0),
        requests_measured: measured.len(),
        requests_routed: measured.iter().filter(|c| c.cluster.is_some() && c.local_response.is_none()).count(),
        requests_to_expected_cluster: measured
            .iter()
            .zip(requests)
            .filter(|(c, r)| c.cluster.as_deref() == Some(r.expected_cluster.as_str()))
            .count(),
        host_calls_per_request: median_cost.map(|c| c.host_calls.clone()).unwrap_or_default(),
        median_request_fuel_between_calls: median_cost.map(|c| c.between_calls.clone()).unwrap_or_default(),
        median_request_context_fuel: median_cost.map_or(0, |c| c.context_fuel),
    })
}
