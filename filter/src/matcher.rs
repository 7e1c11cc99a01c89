//! Route matching: host index + per-host path index, with the Ingress v1 precedence. Pure: no
//! proxy-wasm, no I/O; used by the filter (`host.rs`) and by the control plane (`explain`, validation).
//!
//! SKELETON (public API fixed; the implementation is being written): see issue #2.

use crate::table::{Route, RouteTable};

/// A compiled route table, built once per `on_configure` and shared by every request (`Rc`).
#[derive(Debug)]
pub struct CompiledTable {
    table: RouteTable,
}

/// Why a table (or one route) cannot be compiled; names the host and route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// The `VirtualHost::host` concerned (`""` for host-less), or `None` for a table-level problem.
    pub host: Option<String>,
    /// Index into that host's `routes`, when one route is at fault.
    pub route: Option<usize>,
    /// The route's `origin`, when known.
    pub origin: String,
    pub reason: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} route {:?} ({}): {}", self.host, self.route, self.origin, self.reason)
    }
}

impl std::error::Error for CompileError {}

/// The request parts matching looks at, as raw bytes (headers need not be UTF-8).
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// `:authority` (or Host), possibly with a port, any case. Empty if missing.
    pub authority: &'a [u8],
    /// `:path` including any query string. Empty if missing.
    pub path: &'a [u8],
}

/// Which part of the table produced the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A route of the selected virtual host.
    Route,
    /// The selected virtual host's `fallback`.
    HostFallback,
    /// The table's `default_backend`.
    DefaultBackend,
    /// Nothing matched and there is no default backend: 404.
    NotFound,
}

/// What to do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<'t> {
    /// Proxy to `cluster`; replace `:path` / `:authority` where `Some`.
    Forward { cluster: &'t str, path: Option<String>, authority: Option<&'t str> },
    /// Answer from the filter.
    Respond { status: u16, body: &'t str },
}

/// The routing decision with enough context for `explain` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'t> {
    /// The `VirtualHost::host` entry selected (`""` for host-less), `None` if no entry matched.
    pub vhost: Option<&'t str>,
    /// The matched route (for `Via::Route`).
    pub route: Option<&'t Route>,
    pub via: Via,
    pub outcome: Outcome<'t>,
}

/// Check one route on its own (regex compiles, path is indexable, action is well-formed), so the
/// control plane can drop a bad route with a diagnostic instead of sending a table the filter refuses.
pub fn check_route(route: &Route) -> Result<(), String> {
    let _ = route;
    Ok(())
}

impl CompiledTable {
    /// Compile a table; refuses an unknown schema, an invalid regex, an empty backend list, …
    pub fn compile(table: RouteTable) -> Result<CompiledTable, CompileError> {
        Ok(CompiledTable { table })
    }

    /// The table's `version` string.
    pub fn version(&self) -> &str {
        &self.table.version
    }

    /// Route one request. `random` picks among weighted backends (any value is valid).
    pub fn route(&self, request: &RequestParts<'_>, random: u64) -> Decision<'_> {
        let _ = (request, random);
        Decision { vhost: None, route: None, via: Via::NotFound, outcome: Outcome::Respond { status: 404, body: "" } }
    }
}
