//! The proxy-wasm shim: the ONLY module that names `proxy_wasm`. The root context parses and compiles
//! the route table in `on_configure` (refusing bad input with `false` and a log line naming the table
//! version) and shares it with HTTP contexts through `Rc`; each HTTP context reads `:authority`
//! (falling back to `host`) and `:path`, asks the matcher, and applies the outcome with the fewest
//! header calls (each one is a host call). No routing logic lives here, and nothing here may panic.
//!
//! Per request:
//! 1. remove any client-sent `x-wasm-ingress-cluster` (no client can pick a cluster);
//! 2. read `:authority` (or `host`) and `:path`, plus `x-forwarded-proto` / `x-forwarded-port` only
//!    when the table has redirects that depend on them (Envoy sets both from the connection);
//! 3. route with the compiled table;
//! 4. Forward: set the cluster header, the policy header when the route has a policy,
//!    `x-forwarded-host` (the original authority, as ingress-nginx does), and `:path` /
//!    `:authority` when rewritten — the cluster being the canary's when the route has a canary that
//!    takes the request (its header and cookie are read only then), the policy being the CORS one
//!    when the route has CORS and the `Origin` is allowed; Respond / 404 / Redirect:
//!    `send_http_response`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::request::HeaderLookup;
use crate::matcher::{CompiledTable, Outcome, RequestParts, MAX_TABLE_JSON_BYTES};
use crate::table::{RouteTable, CLUSTER_HEADER, POLICY_HEADER};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn RootContext> { Box::new(IngressRoot::default()) });
}}

/// Log through the host; a failing log call is ignored (there is nowhere else to report it).
fn log(level: LogLevel, message: &str) {
    let _ = proxy_wasm::hostcalls::log(level, message);
}

/// Cheap per-VM random numbers for weighted backends: a splitmix64 sequence seeded from the host
/// clock at configure time, so a request costs no host call for randomness.
#[derive(Debug, Default)]
struct RandomSource {
    state: Cell<u64>,
}

impl RandomSource {
    fn reseed(&self, seed: u64) {
        self.state.set(self.state.get() ^ seed);
    }

    fn next(&self) -> u64 {
        let state = self.state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.state.set(state);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The state shared by the root context and every HTTP context of one VM.
#[derive(Debug, Default)]
struct Shared {
    /// The last table accepted by `on_configure`; `None` until the first one.
    table: RefCell<Option<Rc<CompiledTable>>>,
    random: RandomSource,
}

#[derive(Default)]
struct IngressRoot {
    shared: Rc<Shared>,
}

/// Best-effort `version` of a table that failed to parse, for the log line.
fn version_hint(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        #[serde(default)]
        version: String,
    }
    serde_json::from_slice::<VersionOnly>(bytes).map(|v| v.version).unwrap_or_default()
}

impl IngressRoot {
    fn load(&self, plugin_configuration_size: usize) -> Result<Rc<CompiledTable>, String> {
        if plugin_configuration_size > MAX_TABLE_JSON_BYTES {
            return Err(format!(
                "route table is {plugin_configuration_size} bytes, more than the {MAX_TABLE_JSON_BYTES} accepted"
            ));
        }
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        if bytes.is_empty() {
            return Err("route table is empty (no plugin configuration)".into());
        }
        if bytes.len() > MAX_TABLE_JSON_BYTES {
            return Err(format!("route table is {} bytes, more than the {MAX_TABLE_JSON_BYTES} accepted", bytes.len()));
        }
        let table = RouteTable::from_json(&bytes)
            .map_err(|e| format!("route table version {:?} is not valid JSON for this filter: {e}", version_hint(&bytes)))?;
        let version = table.version.clone();
        let compiled = CompiledTable::compile(table)
            .map_err(|e| format!("route table version {version:?} refused: {e}"))?;
        Ok(Rc::new(compiled))
    }
}

impl Context for IngressRoot {}

impl RootContext for IngressRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        match self.load(plugin_configuration_size) {
            Ok(compiled) => {
                let seed = self
                    .get_current_time()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or_default();
                self.shared.random.reseed(seed);
                log(
                    LogLevel::Info,
                    &format!(
                        "wasm-ingress: route table version {:?} accepted ({} hosts)",
                        compiled.version(),
                        compiled.table().hosts.len()
                    ),
                );
                *self.shared.table.borrow_mut() = Some(compiled);
                true
            }
            Err(reason) => {
                // The previously accepted table (if any) stays in use.
                log(LogLevel::Error, &format!("wasm-ingress: {reason}"));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(IngressRequest {
            table: self.shared.table.borrow().clone(),
            shared: Rc::clone(&self.shared),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct IngressRequest {
    /// The table in force when this request started (a later `on_configure` does not affect it).
    table: Option<Rc<CompiledTable>>,
    shared: Rc<Shared>,
}

impl Context for IngressRequest {}

impl IngressRequest {
    fn respond(&self, status: u16, body: &str) -> Action {
        let body = (!body.is_empty()).then_some(body.as_bytes());
        self.send_http_response(u32::from(status), vec![("content-type", "text/plain; charset=utf-8")], body);
        Action::Pause
    }

    fn redirect(&self, status: u16, location: &str) -> Action {
        self.send_http_response(u32::from(status), vec![("location", location)], None);
        Action::Pause
    }

    /// `x-forwarded-proto: https`, read only when the table needs it (each read is a host call).
    fn https(&self, table: &CompiledTable) -> bool {
        table.needs_scheme()
            && self
                .get_http_request_header_bytes("x-forwarded-proto")
                .is_some_and(|proto| proto.eq_ignore_ascii_case(b"https"))
    }

    /// `x-forwarded-port`, read only when the table needs it; anything but a port number is unknown.
    fn listener_port(&self, table: &CompiledTable) -> Option<u16> {
        if !table.needs_listener_port() {
            return None;
        }
        let port = self.get_http_request_header_bytes("x-forwarded-port")?;
        std::str::from_utf8(&port).ok()?.trim().parse().ok()
    }

    /// Send the request upstream: cluster and policy headers, `x-forwarded-host`, rewrites.
    fn forward(&self, authority: &[u8], cluster: &str, policy: &str, path: Option<&str>, new_authority: Option<&str>) -> Action {
        self.set_http_request_header(CLUSTER_HEADER, Some(cluster));
        if !policy.is_empty() {
            self.set_http_request_header(POLICY_HEADER, Some(policy));
        }
        if !authority.is_empty() {
            self.set_http_request_header_bytes("x-forwarded-host", Some(authority));
        }
        if let Some(path) = path {
            self.set_http_request_header(":path", Some(path));
        }
        if let Some(new_authority) = new_authority {
            self.set_http_request_header(":authority", Some(new_authority));
        }
        Action::Continue
    }
}

/// Canary and CORS rules read their headers (the canary header, `cookie`, `origin`, `:method`)
/// from the request, only when the matched route has such a rule.
impl HeaderLookup for IngressRequest {
    fn header(&self, name: &str) -> Option<Vec<u8>> {
        self.get_http_request_header_bytes(name)
    }
}

impl HttpContext for IngressRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Always first: a client must never choose the upstream cluster.
        self.set_http_request_header(CLUSTER_HEADER, None);

        let Some(table) = self.table.clone() else {
            return self.respond(503, "route table not loaded\n");
        };
        let authority = self
            .get_http_request_header_bytes(":authority")
            .or_else(|| self.get_http_request_header_bytes("host"))
            .unwrap_or_default();
        let path = self.get_http_request_header_bytes(":path").unwrap_or_default();
        let request = RequestParts {
            authority: &authority,
            path: &path,
            https: self.https(&table),
            listener_port: self.listener_port(&table),
        };
        match table.route(&request, self.shared.random.next()).outcome {
            Outcome::Forward { cluster, path: new_path, authority: new_authority, policy, canary, cors } => {
                let cluster = match canary {
                    Some(canary) if table.chooses_canary(canary, self, self.shared.random.next()) => &canary.cluster,
                    _ => cluster,
                };
                let policy = cors.and_then(|cors| table.cors_policy(cors, self)).unwrap_or(policy);
                self.forward(&authority, cluster, policy, new_path.as_deref(), new_authority)
            }
            Outcome::Respond { status, body } => self.respond(status, body),
            Outcome::Redirect { status, location } => self.redirect(status, &location),
        }
    }
}
