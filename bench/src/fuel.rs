//! Section 2: deterministic cost of the built filter, measured as wasmtime fuel (≈ one unit per wasm
//! instruction executed) in a minimal proxy-wasm 0.2.1 host: `on_configure` for a table of N rules,
//! one request through `proxy_on_request_headers`, and the linear memory after loading the table.
//! The same host runs the floor filter (gateway D), so "ours minus floor" is what routing costs
//! inside wasm; host-side work (Envoy copying headers in and out) is counted as host *calls*, since
//! its cost lives in Envoy, not in the module.
//!
//! This host implements only what a request-header filter uses (logs, plugin configuration, request
//! header get/replace/remove/add, local responses, properties, time, WASI basics); it is a measuring
//! instrument, not a conformance test of the ABI (the tests crate does that).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use wasmtime::{Caller, Config, Engine, Extern, Instance, Linker, Memory, Module, Store, TypedFunc};

use crate::workload::Request;

const OK: i32 = 0;
const NOT_FOUND: i32 = 1;
const BAD_ARGUMENT: i32 = 2;
const MAP_REQUEST_HEADERS: i32 = 0;
const BUFFER_PLUGIN_CONFIGURATION: i32 = 7;
const BUFFER_VM_CONFIGURATION: i32 = 6;

#[derive(Default)]
struct HostState {
    plugin_configuration: Vec<u8>,
    request_headers: Vec<(Vec<u8>, Vec<u8>)>,
    local_response: Option<u32>,
    host_calls: BTreeMap<&'static str, u64>,
    logs: Vec<String>,
    random_counter: u8,
}

impl HostState {
    fn count(&mut self, name: &'static str) {
        *self.host_calls.entry(name).or_default() += 1;
    }
}

fn memory(caller: &mut Caller<'_, HostState>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

fn read_bytes(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let mem = memory(caller)?;
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize)?;
    mem.data(&*caller).get(start..end).map(<[u8]>::to_vec)
}

fn write_bytes(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> bool {
    let Some(mem) = memory(caller) else { return false };
    mem.write(&mut *caller, ptr as u32 as usize, bytes).is_ok()
}

/// Copy `bytes` into guest memory allocated with `proxy_on_memory_allocate`, and write its address
/// and size at `ret_ptr` / `ret_size` (the ABI's way of returning a buffer).
fn return_buffer(caller: &mut Caller<'_, HostState>, bytes: &[u8], ret_ptr: i32, ret_size: i32) -> i32 {
    let Some(Extern::Func(alloc)) = caller.get_export("proxy_on_memory_allocate") else { return BAD_ARGUMENT };
    let Ok(alloc) = alloc.typed::<i32, i32>(&*caller) else { return BAD_ARGUMENT };
    let Ok(addr) = alloc.call(&mut *caller, bytes.len() as i32) else { return BAD_ARGUMENT };
    if !write_bytes(caller, addr, bytes)
        || !write_bytes(caller, ret_ptr, &(addr as u32).to_le_bytes())
        || !write_bytes(caller, ret_size, &(bytes.len() as u32).to_le_bytes())
    {
        return BAD_ARGUMENT;
    }
    OK
}

fn link(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap("env", "proxy_log", |mut c: Caller<'_, HostState>, _level: i32, ptr: i32, len: i32| -> i32 {
        c.data_mut().count("proxy_log");
        if let Some(b) = read_bytes(&mut c, ptr, len) {
            c.data_mut().logs.push(String::from_utf8_lossy(&b).to_string());
        }
        OK
    })?;
    linker.func_wrap("env", "proxy_get_log_level", |mut c: Caller<'_, HostState>, ret: i32| -> i32 {
        // 2 = info: the filter sees the level Envoy runs with by default.
        if write_bytes(&mut c, ret, &2u32.to_le_bytes()) {
            OK
        } else {
            BAD_ARGUMENT
        }
    })?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_, HostState>, kind: i32, start: i32, max: i32, ret_ptr: i32, ret_size: i32| -> i32 {
            c.data_mut().count("proxy_get_buffer_bytes");
            let data = match kind {
                BUFFER_PLUGIN_CONFIGURATION => c.data().plugin_configuration.clone(),
                BUFFER_VM_CONFIGURATION => Vec::new(),
                _ => return NOT_FOUND,
            };
            let start = (start as u32 as usize).min(data.len());
            let end = start.saturating_add(max as u32 as usize).min(data.len());
            let slice = data[start..end].to_vec();
            return_buffer(&mut c, &slice, ret_ptr, ret_size)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Caller<'_, HostState>, map: i32, key_ptr: i32, key_len: i32, ret_ptr: i32, ret_size: i32| -> i32 {
            c.data_mut().count("proxy_get_header_map_value");
            if map != MAP_REQUEST_HEADERS {
                return NOT_FOUND;
            }
            let Some(key) = read_bytes(&mut c, key_ptr, key_len) else { return BAD_ARGUMENT };
            let value = c.data().request_headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(&key)).map(|(_, v)| v.clone());
            match value {
                Some(v) => return_buffer(&mut c, &v, ret_ptr, ret_size),
                None => NOT_FOUND,
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Caller<'_, HostState>, map: i32, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32| -> i32 {
            c.data_mut().count("proxy_replace_header_map_value");
            if map != MAP_REQUEST_HEADERS {
                return OK;
            }
            let (Some(key), Some(value)) = (read_bytes(&mut c, key_ptr, key_len), read_bytes(&mut c, value_ptr, value_len)) else {
                return BAD_ARGUMENT;
            };
            let headers = &mut c.data_mut().request_headers;
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
            headers.push((key, value));
            OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: Caller<'_, HostState>, map: i32, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32| -> i32 {
            c.data_mut().count("proxy_add_header_map_value");
            if map != MAP_REQUEST_HEADERS {
                return OK;
            }
            let (Some(key), Some(value)) = (read_bytes(&mut c, key_ptr, key_len), read_bytes(&mut c, value_ptr, value_len)) else {
                return BAD_ARGUMENT;
            };
            c.data_mut().request_headers.push((key, value));
            OK
        },
    )?;
    linker.func_wrap("env", "proxy_remove_header_map_value", |mut c: Caller<'_, HostState>, map: i32, key_ptr: i32, key_len: i32| -> i32 {
        c.data_mut().count("proxy_remove_header_map_value");
        if map != MAP_REQUEST_HEADERS {
            return OK;
        }
        let Some(key) = read_bytes(&mut c, key_ptr, key_len) else { return BAD_ARGUMENT };
        c.data_mut().request_headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
        OK
    })?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Caller<'_, HostState>, status: i32, _d: i32, _dl: i32, _b: i32, _bl: i32, _h: i32, _hl: i32, _g: i32| -> i32 {
            c.data_mut().count("proxy_send_local_response");
            c.data_mut().local_response = Some(status as u32);
            OK
        },
    )?;
    linker.func_wrap("env", "proxy_get_property", |mut c: Caller<'_, HostState>, _p: i32, _l: i32, _rp: i32, _rs: i32| -> i32 {
        c.data_mut().count("proxy_get_property");
        NOT_FOUND
    })?;
    linker.func_wrap("env", "proxy_get_current_time_nanoseconds", |mut c: Caller<'_, HostState>, ret: i32| -> i32 {
        c.data_mut().count("proxy_get_current_time_nanoseconds");
        // A fixed clock keeps the counts deterministic.
        if write_bytes(&mut c, ret, &1_700_000_000_000_000_000u64.to_le_bytes()) {
            OK
        } else {
            BAD_ARGUMENT
        }
    })?;
    linker.func_wrap("env", "proxy_set_effective_context", |_c: Caller<'_, HostState>, _id: i32| -> i32 { OK })?;
    linker.func_wrap("env", "proxy_set_tick_period_milliseconds", |_c: Caller<'_, HostState>, _ms: i32| -> i32 { OK })?;
    // WASI: what Rust's std on wasm32-wasip1 may call.
    linker.func_wrap("wasi_snapshot_preview1", "environ_sizes_get", |mut c: Caller<'_, HostState>, count: i32, size: i32| -> i32 {
        if write_bytes(&mut c, count, &0u32.to_le_bytes()) && write_bytes(&mut c, size, &0u32.to_le_bytes()) {
            0
        } else {
            21
        }
    })?;
    linker.func_wrap("wasi_snapshot_preview1", "environ_get", |_c: Caller<'_, HostState>, _a: i32, _b: i32| -> i32 { 0 })?;
    linker.func_wrap("wasi_snapshot_preview1", "random_get", |mut c: Caller<'_, HostState>, ptr: i32, len: i32| -> i32 {
        // Deterministic "randomness": fuel counts must not depend on hash seeds.
        let seed = c.data().random_counter;
        c.data_mut().random_counter = seed.wrapping_add(1);
        let bytes: Vec<u8> = (0..len as u32).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        if write_bytes(&mut c, ptr, &bytes) {
            0
        } else {
            21
        }
    })?;
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "fd_write",
        |mut c: Caller<'_, HostState>, _fd: i32, iovs: i32, iovs_len: i32, nwritten: i32| -> i32 {
            let mut total = 0u32;
            for i in 0..iovs_len {
                let Some(iov) = read_bytes(&mut c, iovs + i * 8, 8) else { return 21 };
                total += u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
            }
            if write_bytes(&mut c, nwritten, &total.to_le_bytes()) {
                0
            } else {
                21
            }
        },
    )?;
    linker.func_wrap("wasi_snapshot_preview1", "clock_time_get", |mut c: Caller<'_, HostState>, _id: i32, _prec: i64, ret: i32| -> i32 {
        if write_bytes(&mut c, ret, &1_700_000_000_000_000_000u64.to_le_bytes()) {
            0
        } else {
            21
        }
    })?;
    Ok(())
}

/// One loaded filter instance with a configured root context.
pub struct FilterInstance {
    store: Store<HostState>,
    instance: Instance,
    next_context: i32,
    /// Fuel spent by `_initialize` + `on_vm_start`.
    pub start_fuel: u64,
    /// Fuel spent by `proxy_on_configure` (parse + compile the table).
    pub configure_fuel: u64,
    pub configure_seconds: f64,
    pub configure_accepted: bool,
}

const ROOT_CONTEXT: i32 = 1;
const FUEL: u64 = u64::MAX / 4;

fn typed<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(store: &mut Store<HostState>, instance: &Instance, name: &str) -> Result<TypedFunc<P, R>> {
    instance.get_typed_func::<P, R>(&mut *store, name).with_context(|| format!("export {name}"))
}

/// Compile a module once (cranelift) for fuel metering.
pub fn load_module(wasm: &Path) -> Result<(Engine, Module)> {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config)?;
    let module = Module::from_file(&engine, wasm).with_context(|| format!("load {} (run `make wasm`?)", wasm.display()))?;
    Ok((engine, module))
}

/// Compile another module for the same engine.
pub fn load_module_with(engine: &Engine, wasm: &Path) -> Result<(Engine, Module)> {
    let module = Module::from_file(engine, wasm).with_context(|| format!("load {}", wasm.display()))?;
    Ok((engine.clone(), module))
}

impl FilterInstance {
    /// Instantiate, start the VM and configure the root context with `configuration`.
    pub fn new(engine: &Engine, module: &Module, configuration: &[u8]) -> Result<FilterInstance> {
        let mut store = Store::new(engine, HostState { plugin_configuration: configuration.to_vec(), ..HostState::default() });
        store.set_fuel(FUEL)?;
        let mut linker = Linker::new(engine);
        link(&mut linker)?;
        linker.define_unknown_imports_as_default_values(&mut store, module)?;
        let instance = linker.instantiate(&mut store, module)?;
        if let Ok(init) = typed::<(), ()>(&mut store, &instance, "_initialize") {
            init.call(&mut store, ())?;
        }
        let create: TypedFunc<(i32, i32), ()> = typed(&mut store, &instance, "proxy_on_context_create")?;
        create.call(&mut store, (ROOT_CONTEXT, 0))?;
        let vm_start: TypedFunc<(i32, i32), i32> = typed(&mut store, &instance, "proxy_on_vm_start")?;
        vm_start.call(&mut store, (ROOT_CONTEXT, 0))?;
        let start_fuel = FUEL - store.get_fuel()?;
        let configure: TypedFunc<(i32, i32), i32> = typed(&mut store, &instance, "proxy_on_configure")?;
        let before = store.get_fuel()?;
        let started = Instant::now();
        let accepted = configure.call(&mut store, (ROOT_CONTEXT, configuration.len() as i32))? != 0;
        let configure_seconds = started.elapsed().as_secs_f64();
        let configure_fuel = before - store.get_fuel()?;
        Ok(FilterInstance { store, instance, next_context: 2, start_fuel, configure_fuel, configure_seconds, configure_accepted: accepted })
    }

    /// Linear memory size, bytes.
    pub fn memory_bytes(&mut self) -> usize {
        match self.instance.get_export(&mut self.store, "memory") {
            Some(Extern::Memory(m)) => m.data_size(&self.store),
            _ => 0,
        }
    }

    pub fn logs(&self) -> &[String] {
        &self.store.data().logs
    }

    /// One request's headers through a fresh HTTP context. Returns the fuel of
    /// `proxy_on_request_headers` alone, the cluster header set (if any), the local response status
    /// (if any) and the host calls made during it.
    pub fn request(&mut self, request: &Request) -> Result<RequestCost> {
        let headers: Vec<(Vec<u8>, Vec<u8>)> = [
            (":authority", request.authority.as_str()),
            (":path", request.path.as_str()),
            (":method", "GET"),
            (":scheme", "http"),
            ("user-agent", "wrk"),
            ("x-forwarded-proto", "http"),
            ("x-request-id", "2f0e1c6a-5d4b-4c1e-9a7f-0e8f7b6c5d4a"),
        ]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
        let count = headers.len() as i32;
        {
            let state = self.store.data_mut();
            state.request_headers = headers;
            state.local_response = None;
            state.host_calls.clear();
        }
        let context = self.next_context;
        self.next_context += 1;
        let create: TypedFunc<(i32, i32), ()> = typed(&mut self.store, &self.instance, "proxy_on_context_create")?;
        create.call(&mut self.store, (context, ROOT_CONTEXT))?;
        let on_headers: TypedFunc<(i32, i32, i32), i32> = typed(&mut self.store, &self.instance, "proxy_on_request_headers")?;
        let before = self.store.get_fuel()?;
        let action = on_headers.call(&mut self.store, (context, count, 1))?;
        let fuel = before - self.store.get_fuel()?;
        let host_calls = self.store.data().host_calls.clone();
        if let Ok(done) = typed::<i32, i32>(&mut self.store, &self.instance, "proxy_on_done") {
            done.call(&mut self.store, context)?;
        }
        if let Ok(delete) = typed::<i32, ()>(&mut self.store, &self.instance, "proxy_on_delete") {
            delete.call(&mut self.store, context)?;
        }
        let cluster = self
            .store
            .data()
            .request_headers
            .iter()
            .find(|(k, _)| k.as_slice() == wasm_ingress_filter::table::CLUSTER_HEADER.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).to_string());
        Ok(RequestCost { fuel, action, cluster, local_response: self.store.data().local_response, host_calls })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestCost {
    pub fuel: u64,
    pub action: i32,
    pub cluster: Option<String>,
    pub local_response: Option<u32>,
    pub host_calls: BTreeMap<&'static str, u64>,
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
    pub host_calls_per_request: BTreeMap<&'static str, u64>,
}

/// Configure `module` with `configuration` and send every request of `requests` (twice; the second
/// pass is what we report, so one-time lazy work is not counted per request).
pub fn measure(engine: &Engine, module: &Module, filter: &str, rules: usize, configuration: &[u8], requests: &[Request]) -> Result<FuelResult> {
    let mut instance = FilterInstance::new(engine, module, configuration)?;
    if !instance.configure_accepted {
        bail!("{filter}: on_configure refused the table of {rules} rules: {:?}", instance.logs().iter().rev().take(3).collect::<Vec<_>>());
    }
    let memory_bytes = instance.memory_bytes();
    let first = instance.request(&requests[0])?;
    let mut costs = Vec::new();
    for request in requests.iter().chain(requests.iter()) {
        costs.push(instance.request(request)?);
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
        vm_start_fuel: instance.start_fuel,
        configure_accepted: instance.configure_accepted,
        configure_fuel: instance.configure_fuel,
        configure_ms: instance.configure_seconds * 1e3,
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
    })
}
