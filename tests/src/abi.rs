//! A proxy-wasm 0.2.1 host in wasmtime, standing in for Envoy, to drive the BUILT filter `.wasm`
//! through its real ABI: `_initialize` → `proxy_on_context_create(root)` → `proxy_on_vm_start` →
//! `proxy_on_configure` → per request `proxy_on_context_create(http)` + `proxy_on_request_headers`
//! (+ `proxy_on_done`/`proxy_on_delete`). It records what the filter did — request headers after
//! the call, local responses, logs, and how many times each host function was called — so tests
//! assert what Envoy would see.
//!
//! Every import of the module is provided: the proxy-wasm host functions the filter uses are
//! implemented like Envoy implements them (header maps are case-insensitive multimaps; `replace`
//! replaces all values; a missing header is `NotFound`), the WASI preview1 functions are minimal
//! (stdout/stderr captured, empty environment, clock, random); any other import traps with its
//! name, so an unexpected host call fails the test loudly. Not a general proxy-wasm host: no
//! timers, HTTP/gRPC callouts, shared data or queues.
//!
//! With [`VmOptions::metered`] the module runs under wasmtime fuel (about one unit per wasm
//! instruction): `make bench` measures the filter's deterministic cost with this same host.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, bail, Context as _};
use wasmtime::{Caller, Config, Engine, Extern, ExternType, Instance, Linker, Module, Store, Val};

/// proxy-wasm status codes (proxy-wasm spec 0.2.1).
const STATUS_OK: i32 = 0;
const STATUS_NOT_FOUND: i32 = 1;
const STATUS_BAD_ARGUMENT: i32 = 2;

/// WASI errno values.
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_NOSYS: i32 = 52;

/// proxy-wasm buffer types.
const BUFFER_VM_CONFIGURATION: i32 = 6;
const BUFFER_PLUGIN_CONFIGURATION: i32 = 7;

/// proxy-wasm header map types this host keeps (request/response headers and trailers).
const MAP_TYPES: std::ops::RangeInclusive<i32> = 0..=3;
/// The request-headers map.
pub const MAP_REQUEST_HEADERS: i32 = 0;

/// Fuel a metered VM starts with: more than any test or benchmark spends.
const FUEL: u64 = u64::MAX / 4;

/// How [`FilterVm::load_with`] builds a VM.
#[derive(Debug, Clone, Copy, Default)]
pub struct VmOptions {
    /// Count wasmtime fuel: [`FilterVm::fuel_spent`] and [`RequestOutcome::fuel`] report it.
    pub metered: bool,
}

/// A header map: ordered name/value pairs, names compared case-insensitively (stored as given).
pub type Headers = Vec<(Vec<u8>, Vec<u8>)>;

/// A response the filter produced itself (`proxy_send_local_response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    pub details: Vec<u8>,
    pub body: Vec<u8>,
    /// The response headers the filter passed (`content-type`, `location`, …), in order.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub grpc_status: i32,
}

impl LocalResponse {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header the filter put on its response (e.g. `location`), as a (lossy) string.
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.headers, name).map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Everything the host knows and records. Public so tests can inspect or preset anything.
#[derive(Debug, Default)]
pub struct HostState {
    /// Header maps by proxy-wasm map type.
    pub maps: BTreeMap<i32, Headers>,
    pub plugin_configuration: Vec<u8>,
    pub vm_configuration: Vec<u8>,
    /// Local responses sent during the current call(s).
    pub local_responses: Vec<LocalResponse>,
    /// `(level, message)` from `proxy_log`.
    pub logs: Vec<(i32, String)>,
    /// Bytes the module wrote to WASI stdout/stderr.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Host function name -> number of calls (reset per request by [`FilterVm::request`]).
    pub calls: BTreeMap<String, usize>,
    /// What `proxy_get_current_time_nanoseconds` / `clock_time_get` return.
    pub now_nanos: u64,
    /// State of the deterministic `random_get`.
    pub random_state: u64,
    /// The log level reported by `proxy_get_log_level` (0 trace … 5 critical).
    pub log_level: i32,
    /// In a metered VM: each host call (a header-map call with its header name) and the fuel left
    /// when it was made (reset per request by [`FilterVm::request`]).
    pub fuel_marks: Vec<(String, u64)>,
}

/// Count a host call and, in a metered VM, mark the fuel left when it was made.
fn count(caller: &mut Caller<'_, HostState>, name: &str) {
    let fuel = caller.get_fuel().ok();
    let state = caller.data_mut();
    *state.calls.entry(name.to_string()).or_default() += 1;
    if let Some(fuel) = fuel {
        state.fuel_marks.push((name.to_string(), fuel));
    }
}

/// Name the header of the last fuel mark (`proxy_get_header_map_value :path`).
fn mark_header(caller: &mut Caller<'_, HostState>, key: &[u8]) {
    if let Some((call, _)) = caller.data_mut().fuel_marks.last_mut() {
        call.push(' ');
        call.push_str(&String::from_utf8_lossy(key));
    }
}

/// Case-insensitive header lookup helpers.
pub fn header<'h>(headers: &'h Headers, name: &str) -> Option<&'h [u8]> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v.as_slice())
}

/// All values of a header.
pub fn header_values<'h>(headers: &'h Headers, name: &str) -> Vec<&'h [u8]> {
    headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v.as_slice()).collect()
}

/// What happened to one request.
#[derive(Debug, Clone)]
pub struct RequestOutcome {
    /// `proxy_on_request_headers`' return: 0 Continue, 1 Pause.
    pub action: i32,
    /// The request headers after the filter ran (what Envoy's router would see).
    pub headers: Headers,
    /// The local response, if the filter sent one.
    pub local_response: Option<LocalResponse>,
    /// Host calls made while handling this request, by function name.
    pub calls: BTreeMap<String, usize>,
    /// Fuel spent by `proxy_on_request_headers` alone, in a metered VM.
    pub fuel: Option<u64>,
    /// Where that fuel went, in a metered VM: each host call `proxy_on_request_headers` made (a
    /// header-map call with its header name) and the fuel spent since the previous one (the first:
    /// since the call began; what the host call itself runs in wasm, such as allocating the value
    /// it returns, counts towards the next), then `return` and the fuel after the last call.
    pub fuel_between_calls: Vec<(String, u64)>,
    /// Fuel of the context's life around it (`proxy_on_context_create`, `proxy_on_done`,
    /// `proxy_on_log`, `proxy_on_delete`): the SDK's dispatch and the context's allocation.
    pub context_fuel: Option<u64>,
}

impl RequestOutcome {
    /// A request header after the filter ran, as a (lossy) string.
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.headers, name).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// How many header-map host calls the filter made for this request.
    pub fn header_calls(&self) -> usize {
        self.calls.iter().filter(|(name, _)| name.contains("header_map")).map(|(_, n)| n).sum()
    }
}

/// One instantiated filter VM with its root context, like one Envoy worker's plugin instance.
pub struct FilterVm {
    store: Store<HostState>,
    instance: Instance,
    root_context_id: i32,
    next_context_id: i32,
    /// Imports of the module as `module::name`.
    pub imports: Vec<String>,
}

fn memory(caller: &mut Caller<'_, HostState>) -> anyhow::Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => bail!("module exports no memory"),
    }
}

fn read_bytes(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> anyhow::Result<Vec<u8>> {
    let memory = memory(caller)?;
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    let data = memory.data(&caller);
    data.get(ptr..ptr.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| anyhow!("guest pointer {ptr}+{len} out of bounds"))
}

fn write_bytes(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> anyhow::Result<()> {
    let memory = memory(caller)?;
    memory.write(caller, ptr as u32 as usize, bytes).map_err(|e| anyhow!("guest write at {ptr}: {e}"))
}

fn write_u32(caller: &mut Caller<'_, HostState>, ptr: i32, value: u32) -> anyhow::Result<()> {
    write_bytes(caller, ptr, &value.to_le_bytes())
}

/// Copy `bytes` into guest memory allocated with the module's `proxy_on_memory_allocate` and store
/// the pointer and size at `ptr_ptr` / `size_ptr`, as Envoy does for every returned value.
fn return_bytes(caller: &mut Caller<'_, HostState>, bytes: &[u8], ptr_ptr: i32, size_ptr: i32) -> anyhow::Result<()> {
    let allocate = match caller.get_export("proxy_on_memory_allocate") {
        Some(Extern::Func(f)) => f.typed::<i32, i32>(&caller)?,
        _ => bail!("module exports no proxy_on_memory_allocate"),
    };
    let len = i32::try_from(bytes.len()).context("returned value too large for wasm32")?;
    let ptr = allocate.call(&mut *caller, len)?;
    if ptr == 0 && !bytes.is_empty() {
        bail!("proxy_on_memory_allocate({len}) returned null");
    }
    write_bytes(caller, ptr, bytes)?;
    write_u32(caller, ptr_ptr, ptr as u32)?;
    write_u32(caller, size_ptr, len as u32)
}

/// proxy-wasm map serialisation: count, then (name len, value len) pairs, then NUL-terminated data.
pub fn serialize_map(map: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = (map.len() as u32).to_le_bytes().to_vec();
    for (name, value) in map {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (name, value) in map {
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

/// Inverse of [`serialize_map`]; `None` on malformed input.
pub fn deserialize_map(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let word = |at: usize| -> Option<usize> { Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize) };
    let count = word(0)?;
    let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
    let mut map = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        let name_len = word(4 + i * 8)?;
        let value_len = word(8 + i * 8)?;
        let name = bytes.get(data..data + name_len)?.to_vec();
        data += name_len + 1;
        let value = bytes.get(data..data + value_len)?.to_vec();
        data += value_len + 1;
        map.push((name, value));
    }
    Some(map)
}

fn map_mut<'s>(caller: &'s mut Caller<'_, HostState>, map_type: i32) -> Option<&'s mut Headers> {
    if MAP_TYPES.contains(&map_type) {
        Some(caller.data_mut().maps.entry(map_type).or_default())
    } else {
        None
    }
}

/// Register the proxy-wasm host functions this host implements.
fn add_proxy_wasm(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker.func_wrap("env", "proxy_log", |mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
        count(&mut caller, "proxy_log");
        let message = read_bytes(&mut caller, ptr, len)?;
        caller.data_mut().logs.push((level, String::from_utf8_lossy(&message).into_owned()));
        Ok(STATUS_OK)
    })?;
    linker.func_wrap("env", "proxy_get_log_level", |mut caller: Caller<'_, HostState>, ret: i32| {
        count(&mut caller, "proxy_get_log_level");
        let level = caller.data().log_level;
        write_u32(&mut caller, ret, level as u32)?;
        Ok(STATUS_OK)
    })?;
    linker.func_wrap("env", "proxy_get_current_time_nanoseconds", |mut caller: Caller<'_, HostState>, ret: i32| {
        count(&mut caller, "proxy_get_current_time_nanoseconds");
        let now = caller.data().now_nanos;
        write_bytes(&mut caller, ret, &now.to_le_bytes())?;
        Ok(STATUS_OK)
    })?;
    linker.func_wrap("env", "proxy_set_tick_period_milliseconds", |mut caller: Caller<'_, HostState>, _period: i32| {
        count(&mut caller, "proxy_set_tick_period_milliseconds");
        Ok(STATUS_OK)
    })?;
    linker.func_wrap("env", "proxy_set_effective_context", |mut caller: Caller<'_, HostState>, _context: i32| {
        count(&mut caller, "proxy_set_effective_context");
        Ok(STATUS_OK)
    })?;
    for name in ["proxy_continue_stream", "proxy_close_stream"] {
        linker.func_wrap("env", name, move |mut caller: Caller<'_, HostState>, _stream: i32| {
            count(&mut caller, name);
            Ok(STATUS_OK)
        })?;
    }
    for name in ["proxy_continue_request", "proxy_continue_response", "proxy_clear_route_cache", "proxy_done"] {
        linker.func_wrap("env", name, move |mut caller: Caller<'_, HostState>| {
            count(&mut caller, name);
            Ok(STATUS_OK)
        })?;
    }
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut caller: Caller<'_, HostState>, buffer_type: i32, start: i32, max_size: i32, ptr_ptr: i32, size_ptr: i32| {
            count(&mut caller, "proxy_get_buffer_bytes");
            let buffer = match buffer_type {
                BUFFER_PLUGIN_CONFIGURATION => caller.data().plugin_configuration.clone(),
                BUFFER_VM_CONFIGURATION => caller.data().vm_configuration.clone(),
                _ => return Ok(STATUS_NOT_FOUND),
            };
            let start = (start as u32 as usize).min(buffer.len());
            let end = start.saturating_add(max_size as u32 as usize).min(buffer.len());
            if start == end {
                write_u32(&mut caller, ptr_ptr, 0)?;
                write_u32(&mut caller, size_ptr, 0)?;
                return Ok(STATUS_OK);
            }
            return_bytes(&mut caller, &buffer[start..end], ptr_ptr, size_ptr)?;
            Ok(STATUS_OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut caller: Caller<'_, HostState>, buffer_type: i32, length_ptr: i32, flags_ptr: i32| {
            count(&mut caller, "proxy_get_buffer_status");
            let len = match buffer_type {
                BUFFER_PLUGIN_CONFIGURATION => caller.data().plugin_configuration.len(),
                BUFFER_VM_CONFIGURATION => caller.data().vm_configuration.len(),
                _ => return Ok(STATUS_NOT_FOUND),
            };
            write_u32(&mut caller, length_ptr, len as u32)?;
            write_u32(&mut caller, flags_ptr, 0)?;
            Ok(STATUS_OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut caller: Caller<'_, HostState>, _buffer_type: i32, _start: i32, _size: i32, _ptr: i32, _len: i32| {
            count(&mut caller, "proxy_set_buffer_bytes");
            Ok(STATUS_NOT_FOUND)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut caller: Caller<'_, HostState>, map_type: i32, key_ptr: i32, key_len: i32, ptr_ptr: i32, size_ptr: i32| {
            count(&mut caller, "proxy_get_header_map_value");
            let key = read_bytes(&mut caller, key_ptr, key_len)?;
            mark_header(&mut caller, &key);
            let Some(map) = map_mut(&mut caller, map_type) else { return Ok(STATUS_BAD_ARGUMENT) };
            let value = map.iter().find(|(n, _)| n.eq_ignore_ascii_case(&key)).map(|(_, v)| v.clone());
            match value {
                Some(value) => {
                    return_bytes(&mut caller, &value, ptr_ptr, size_ptr)?;
                    Ok(STATUS_OK)
                }
                None => Ok(STATUS_NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut caller: Caller<'_, HostState>, map_type: i32, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32| {
            count(&mut caller, "proxy_replace_header_map_value");
            let key = read_bytes(&mut caller, key_ptr, key_len)?;
            mark_header(&mut caller, &key);
            let value = read_bytes(&mut caller, value_ptr, value_len)?;
            let Some(map) = map_mut(&mut caller, map_type) else { return Ok(STATUS_BAD_ARGUMENT) };
            map.retain(|(n, _)| !n.eq_ignore_ascii_case(&key));
            map.push((key, value));
            Ok(STATUS_OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut caller: Caller<'_, HostState>, map_type: i32, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32| {
            count(&mut caller, "proxy_add_header_map_value");
            let key = read_bytes(&mut caller, key_ptr, key_len)?;
            mark_header(&mut caller, &key);
            let value = read_bytes(&mut caller, value_ptr, value_len)?;
            let Some(map) = map_mut(&mut caller, map_type) else { return Ok(STATUS_BAD_ARGUMENT) };
            map.push((key, value));
            Ok(STATUS_OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut caller: Caller<'_, HostState>, map_type: i32, key_ptr: i32, key_len: i32| {
            count(&mut caller, "proxy_remove_header_map_value");
            let key = read_bytes(&mut caller, key_ptr, key_len)?;
            mark_header(&mut caller, &key);
            let Some(map) = map_mut(&mut caller, map_type) else { return Ok(STATUS_BAD_ARGUMENT) };
            map.retain(|(n, _)| !n.eq_ignore_ascii_case(&key));
            Ok(STATUS_OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut caller: Caller<'_, HostState>, map_type: i32, ptr_ptr: i32, size_ptr: i32| {
            count(&mut caller, "proxy_get_header_map_pairs");
            let Some(map) = map_mut(&mut caller, map_type) else { return Ok(STATUS_BAD_ARGUMENT) };
            let bytes = serialize_map(map);
            return_bytes(&mut caller, &bytes, ptr_ptr, size_ptr)?;
            Ok(STATUS_OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut caller: Caller<'_, HostState>, map_type: i32, ptr: i32, len: i32| {
            count(&mut caller, "proxy_set_header_map_pairs");
            let bytes = read_bytes(&mut caller, ptr, len)?;
            let Some(pairs) = deserialize_map(&bytes) else { return Ok(STATUS_BAD_ARGUMENT) };
            let Some(map) = map_mut(&mut caller, map_type) else { return Ok(STATUS_BAD_ARGUMENT) };
            *map = pairs;
            Ok(STATUS_OK)
        },
    )?;
    linker.func_wrap("env", "proxy_get_header_map_size", |mut caller: Caller<'_, HostState>, map_type: i32, ret: i32| {
        count(&mut caller, "proxy_get_header_map_size");
        let Some(map) = map_mut(&mut caller, map_type) else { return Ok(STATUS_BAD_ARGUMENT) };
        let size: usize = map.iter().map(|(n, v)| n.len() + v.len()).sum();
        write_u32(&mut caller, ret, size as u32)?;
        Ok(STATUS_OK)
    })?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut caller: Caller<'_, HostState>,
         status: i32,
         details_ptr: i32,
         details_len: i32,
         body_ptr: i32,
         body_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         grpc_status: i32| {
            count(&mut caller, "proxy_send_local_response");
            let details = read_bytes(&mut caller, details_ptr, details_len)?;
            let body = read_bytes(&mut caller, body_ptr, body_len)?;
            let headers_bytes = read_bytes(&mut caller, headers_ptr, headers_len)?;
            let headers = deserialize_map(&headers_bytes).ok_or_else(|| anyhow!("malformed local-response headers"))?;
            caller.data_mut().local_responses.push(LocalResponse {
                status: status as u32,
                details,
                body,
                headers,
                grpc_status,
            });
            Ok(STATUS_OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut caller: Caller<'_, HostState>, _path_ptr: i32, _path_len: i32, _ptr_ptr: i32, _size_ptr: i32| {
            count(&mut caller, "proxy_get_property");
            Ok(STATUS_NOT_FOUND)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut caller: Caller<'_, HostState>, _path_ptr: i32, _path_len: i32, _value_ptr: i32, _value_len: i32| {
            count(&mut caller, "proxy_set_property");
            Ok(STATUS_OK)
        },
    )?;
    Ok(())
}

/// Register the minimal WASI preview1 functions a Rust `wasm32-wasip1` cdylib needs.
fn add_wasi(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    const WASI: &str = "wasi_snapshot_preview1";
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut caller: Caller<'_, HostState>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32| {
            count(&mut caller, "fd_write");
            let mut written = Vec::new();
            for i in 0..iovs_len.max(0) {
                let iov = read_bytes(&mut caller, iovs + i * 8, 8)?;
                let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                written.extend(read_bytes(&mut caller, ptr, len)?);
            }
            let count = written.len() as u32;
            match fd {
                1 => caller.data_mut().stdout.extend(written),
                2 => caller.data_mut().stderr.extend(written),
                _ => return Ok(ERRNO_BADF),
            }
            write_u32(&mut caller, nwritten, count)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    for name in ["environ_sizes_get", "args_sizes_get"] {
        linker.func_wrap(WASI, name, move |mut caller: Caller<'_, HostState>, count_ptr: i32, size: i32| {
            count(&mut caller, name);
            write_u32(&mut caller, count_ptr, 0)?;
            write_u32(&mut caller, size, 0)?;
            Ok(ERRNO_SUCCESS)
        })?;
    }
    for name in ["environ_get", "args_get"] {
        linker.func_wrap(WASI, name, move |mut caller: Caller<'_, HostState>, _a: i32, _b: i32| {
            count(&mut caller, name);
            Ok(ERRNO_SUCCESS)
        })?;
    }
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut caller: Caller<'_, HostState>, _clock: i32, _precision: i64, ret: i32| {
            count(&mut caller, "clock_time_get");
            let now = caller.data().now_nanos;
            write_bytes(&mut caller, ret, &now.to_le_bytes())?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(WASI, "random_get", |mut caller: Caller<'_, HostState>, buf: i32, len: i32| {
        count(&mut caller, "random_get");
        let mut bytes = Vec::with_capacity(len.max(0) as usize);
        let mut state = caller.data().random_state;
        while bytes.len() < len.max(0) as usize {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            bytes.extend_from_slice(&state.to_le_bytes());
        }
        bytes.truncate(len.max(0) as usize);
        caller.data_mut().random_state = state;
        write_bytes(&mut caller, buf, &bytes)?;
        Ok(ERRNO_SUCCESS)
    })?;
    linker.func_wrap(WASI, "proc_exit", |mut caller: Caller<'_, HostState>, code: i32| -> anyhow::Result<()> {
        count(&mut caller, "proc_exit");
        bail!("the module called proc_exit({code})")
    })?;
    linker.func_wrap(WASI, "sched_yield", |mut caller: Caller<'_, HostState>| {
        count(&mut caller, "sched_yield");
        Ok(ERRNO_SUCCESS)
    })?;
    Ok(())
}

/// For every import the linker does not provide yet: a WASI function answers `ENOSYS`, anything
/// else traps naming itself (an unexpected host call must fail the test, not pass silently).
fn stub_remaining_imports(linker: &mut Linker<HostState>, module: &Module, store: &mut Store<HostState>) -> anyhow::Result<()> {
    for import in module.imports() {
        if linker.get(&mut *store, import.module(), import.name()).is_some() {
            continue;
        }
        let ExternType::Func(ty) = import.ty() else {
            bail!("module imports non-function {}::{}, which this host does not provide", import.module(), import.name());
        };
        let qualified = format!("{}::{}", import.module(), import.name());
        let is_wasi = import.module().starts_with("wasi");
        let returns_i32 = ty.results().len() == 1 && matches!(ty.results().next(), Some(wasmtime::ValType::I32));
        let name = qualified.clone();
        linker.func_new(import.module(), import.name(), ty, move |mut caller: Caller<'_, HostState>, _params: &[Val], results: &mut [Val]| {
            count(&mut caller, &name);
            if is_wasi && returns_i32 {
                if let Some(slot) = results.first_mut() {
                    *slot = Val::I32(ERRNO_NOSYS);
                }
                return Ok(());
            }
            bail!("unimplemented host function {name} was called")
        })?;
    }
    Ok(())
}

/// Compiling the filter takes a while; every VM of a process shares one compiled module per path
/// and metering (instances stay separate).
fn compiled_module(wasm: &Path, metered: bool) -> anyhow::Result<(Engine, Module)> {
    type Compiled = HashMap<(PathBuf, bool), (Engine, Module)>;
    static CACHE: OnceLock<Mutex<Compiled>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = (wasm.to_path_buf(), metered);
    if let Some(compiled) = cache.get(&key) {
        return Ok(compiled.clone());
    }
    let mut config = Config::new();
    config.consume_fuel(metered);
    let engine = Engine::new(&config)?;
    let module = Module::from_file(&engine, wasm).with_context(|| format!("compiling {} (run `make wasm`?)", wasm.display()))?;
    cache.insert(key, (engine.clone(), module.clone()));
    Ok((engine, module))
}

impl FilterVm {
    /// Compile and instantiate the module at `wasm`, with every import provided. Does not run any
    /// guest code yet (see [`FilterVm::start`]).
    pub fn load(wasm: &Path) -> anyhow::Result<FilterVm> {
        FilterVm::load_with(wasm, VmOptions::default())
    }

    /// [`FilterVm::load`] with `options` (e.g. metered with fuel).
    pub fn load_with(wasm: &Path, options: VmOptions) -> anyhow::Result<FilterVm> {
        let (engine, module) = compiled_module(wasm, options.metered)?;
        let imports = module.imports().map(|i| format!("{}::{}", i.module(), i.name())).collect();
        let mut store = Store::new(&engine, HostState { now_nanos: 1_700_000_000_000_000_000, log_level: 2, ..HostState::default() });
        if options.metered {
            store.set_fuel(FUEL)?;
        }
        let mut linker = Linker::new(&engine);
        add_proxy_wasm(&mut linker)?;
        add_wasi(&mut linker)?;
        stub_remaining_imports(&mut linker, &module, &mut store)?;
        let instance = linker.instantiate(&mut store, &module).context("instantiating the filter")?;
        Ok(FilterVm { store, instance, root_context_id: 1, next_context_id: 2, imports })
    }

    /// The host state (logs, maps, calls…).
    pub fn host(&self) -> &HostState {
        self.store.data()
    }

    /// Mutable host state (e.g. to set the clock).
    pub fn host_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    /// Fuel spent since the VM was loaded; `None` unless it is metered.
    pub fn fuel_spent(&self) -> Option<u64> {
        self.store.get_fuel().ok().map(|left| FUEL - left)
    }

    /// Size of the module's linear memory, bytes.
    pub fn memory_bytes(&mut self) -> usize {
        match self.instance.get_export(&mut self.store, "memory") {
            Some(Extern::Memory(memory)) => memory.data_size(&self.store),
            _ => 0,
        }
    }

    /// Names of the module's exports.
    pub fn exports(&mut self) -> Vec<String> {
        self.instance.exports(&mut self.store).map(|e| e.name().to_string()).collect()
    }

    fn call<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(&mut self, name: &str, params: P) -> anyhow::Result<R> {
        let func = self
            .instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .with_context(|| format!("export {name}"))?;
        func.call(&mut self.store, params).map_err(|e| {
            let logs = &self.store.data().logs;
            anyhow!("{name} trapped: {e:?}\nfilter logs: {logs:#?}\nstderr: {}", String::from_utf8_lossy(&self.store.data().stderr))
        })
    }

    /// What Envoy does when it loads a plugin: `_initialize`, create the root context,
    /// `proxy_on_vm_start`. Returns `proxy_on_vm_start`'s answer.
    pub fn start(&mut self, vm_configuration: &[u8]) -> anyhow::Result<bool> {
        if self.instance.get_func(&mut self.store, "_initialize").is_some() {
            self.call::<(), ()>("_initialize", ())?;
        }
        self.call::<(i32, i32), ()>("proxy_on_context_create", (self.root_context_id, 0))?;
        self.store.data_mut().vm_configuration = vm_configuration.to_vec();
        let size = vm_configuration.len() as i32;
        Ok(self.call::<(i32, i32), i32>("proxy_on_vm_start", (self.root_context_id, size))? != 0)
    }

    /// `proxy_on_configure` with `configuration` as the plugin configuration buffer. Returns the
    /// filter's answer (`false`: configuration refused).
    pub fn configure(&mut self, configuration: &[u8]) -> anyhow::Result<bool> {
        self.store.data_mut().plugin_configuration = configuration.to_vec();
        let size = configuration.len() as i32;
        Ok(self.call::<(i32, i32), i32>("proxy_on_configure", (self.root_context_id, size))? != 0)
    }

    /// One request through `proxy_on_request_headers` (headers-only, end of stream), then the
    /// context is finished (`proxy_on_done`, `proxy_on_log`, `proxy_on_delete`) as Envoy does.
    pub fn request(&mut self, headers: &[(&[u8], &[u8])]) -> anyhow::Result<RequestOutcome> {
        let context_id = self.next_context_id;
        self.next_context_id += 1;
        {
            let state = self.store.data_mut();
            state.maps.insert(MAP_REQUEST_HEADERS, headers.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect());
            state.local_responses.clear();
            state.calls.clear();
        }
        let created = self.fuel_spent();
        self.call::<(i32, i32), ()>("proxy_on_context_create", (context_id, self.root_context_id))?;
        let before = self.fuel_spent();
        self.store.data_mut().fuel_marks.clear();
        let action = self.call::<(i32, i32, i32), i32>("proxy_on_request_headers", (context_id, headers.len() as i32, 1))?;
        let after = self.fuel_spent();
        let fuel = before.zip(after).map(|(before, after)| after - before);
        let fuel_between_calls = before.zip(after).map(|spans| self.fuel_between_calls(spans)).unwrap_or_default();
        let outcome = {
            let state = self.store.data();
            RequestOutcome {
                action,
                headers: state.maps.get(&MAP_REQUEST_HEADERS).cloned().unwrap_or_default(),
                local_response: state.local_responses.last().cloned(),
                calls: state.calls.clone(),
                fuel,
                fuel_between_calls,
                context_fuel: None,
            }
        };
        self.call::<i32, i32>("proxy_on_done", context_id)?;
        self.call::<i32, ()>("proxy_on_log", context_id)?;
        self.call::<i32, ()>("proxy_on_delete", context_id)?;
        let context_fuel = created.zip(self.fuel_spent()).map(|(created, done)| done - created - fuel.unwrap_or(0));
        Ok(RequestOutcome { context_fuel, ..outcome })
    }

    /// [`RequestOutcome::fuel_between_calls`] from the marks of one call that began with `before`
    /// fuel spent and ended with `after`.
    fn fuel_between_calls(&self, (before, after): (u64, u64)) -> Vec<(String, u64)> {
        let mut spent = before;
        let mut spans = Vec::new();
        for (call, left) in &self.store.data().fuel_marks {
            let at = FUEL - left;
            spans.push((call.clone(), at - spent));
            spent = at;
        }
        spans.push(("return".to_string(), after - spent));
        spans
    }

    /// Convenience: a GET with `:authority` and `:path` plus `extra` headers.
    pub fn get(&mut self, authority: &str, path: &str, extra: &[(&str, &str)]) -> anyhow::Result<RequestOutcome> {
        let mut headers: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":authority", authority.as_bytes()),
            (b":path", path.as_bytes()),
        ];
        headers.extend(extra.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        self.request(&headers)
    }
}
