//! The proxy-wasm shim: the ONLY module that names `proxy_wasm`. The root context parses and compiles
//! the route table in `on_configure` (refusing bad input with `false` and a log line naming the table
//! version), reusing the hosts the VM's last table had unchanged ([`HostCache`]), and shares it
//! with HTTP contexts through `Rc`; each HTTP context reads `:authority`
//! (falling back to `host`) and `:path`, asks the matcher, and applies the outcome with the fewest
//! header calls (each one is a host call). No routing logic lives here, and nothing here may panic.
//!
//! Per request:
//! 1. when the table has error pages, a request Envoy marked as one (with the table's secret
//!    token) goes to its error-page cluster as `GET /` (see [`crate::table::ERROR_PAGE_HEADER`])
//!    and nothing below applies; any other value of that header is removed. No client picks a
//!    cluster: Envoy removes a client's `x-wasm-ingress-cluster` (and the policy and subset
//!    headers) before any filter runs (the control plane's listeners, `EARLY_REMOVED_HEADERS`),
//!    every request let through here carries the cluster set here (a replace: one value), and an
//!    answered one goes to no cluster. (The filter no longer removes it as well: a host call per
//!    request that repeated Envoy's work.)
//! 2. read `:authority` (or `host`) and `:path`, plus `x-forwarded-proto` / `x-forwarded-port` only
//!    when the table has redirects that depend on them (Envoy sets both from the connection);
//! 3. route with the compiled table; a request the default server's `location /` answers (a
//!    host no Ingress names: 404 or the default backend) from an address of the table's
//!    `default_server_denied` (`--block-cidrs`) is answered 403;
//! 4. on a host that asks for client certificates (any outcome): the `client_cert` verdict from
//!    the connection's TLS version, SNI and certificate presence — 400 / 421 / 403 / the error
//!    page, or `ssl-client-verify` set (the client's `ssl-client-*` headers dropped);
//! 5. Forward: set the cluster header, the policy header when the route has a policy,
//!    `x-forwarded-host` (the original authority, as ingress-nginx does), and `:path` /
//!    `:authority` when rewritten — the cluster being the canary's when the route has a canary that
//!    takes the request (its header and cookie are read only then), the policy being the CORS one
//!    when the route has CORS and the `Origin` is allowed; Respond / 404 / Redirect:
//!    `send_http_response`;
//! 6. a Forward with `limit-connections` (not a CORS preflight): one count taken for the client
//!    address in the limit's zone (Envoy's shared data, compare-and-swap), else 503; the count is
//!    given back in `on_log`, when the request ends however it ends. Then basic or digest auth
//!    (not for a CORS preflight either; see `credentials`): `Authorization` checked against the
//!    table's password list, else 401, and removed before the request goes upstream (ingress-nginx
//!    clears it where basic or digest auth is on). A `satisfy: any` route instead lets
//!    the request in on the first check that passes — its address lists, basic auth, the auth
//!    service of step 7 — and answers 401 or 403 when none can (see [`crate::satisfy`]);
//! 7. a Forward with external auth (and not a CORS preflight, which nginx answers before auth):
//!    read every request header once, apply step 5's header changes, send the auth request with
//!    `dispatch_http_call` and pause; the auth response resumes the request (with the copied
//!    headers) or answers it (see [`crate::auth`]), and the auth service's cookie is added to the
//!    response when [`crate::auth::sets_cookie`] says so;
//! 8. a Forward with response rewrites (`proxy-redirect-*`, `proxy-cookie-*`): filled for the
//!    request, then applied to the upstream's `Location`, `Refresh` and `Set-Cookie` (see
//!    [`crate::response`]); other routes never read response headers.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, Status};

use crate::address;
use crate::auth::{self, Original, Verdict};
use crate::auth_cache;
use crate::client_cert;
use crate::connections::{self, Take};
use crate::response::Rewrites;
use crate::satisfy;
use crate::affinity;
use crate::limits;
use crate::subset::{self, HashKey};
use crate::request::HeaderLookup;
use crate::decision::{status_body, Decision, ANSWER_CONTENT_TYPE, FORBIDDEN_BODY, INTERNAL_ERROR_BODY, NOT_ALLOWED_BODY};
use crate::matcher::{CompiledTable, HostCache, Loaded, Outcome, RequestParts, MAX_TABLE_JSON_BYTES};
use crate::table::{AnswerHeader, ClientCertificate, ConnectionLimit, Cors, ExternalAuth, RouteAction, CLUSTER_HEADER, ERROR_PAGE_HEADER, ERROR_PAGE_STATUS_HEADER, POLICY_HEADER, UNLOGGED_HEADER};

mod credentials;
mod log_facts;

use credentials::DigestRefusal;

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
    /// Basic-auth credentials checked with the current table, and whether they passed (see
    /// `basic_auth_allows`).
    verified: RefCell<HashMap<[u8; 32], bool>>,
}

/// Most remembered basic-auth verdicts per VM; the map is emptied when full.
const MAX_VERIFIED_CREDENTIALS: usize = 4096;

thread_local! {
    /// The hosts of the last table this VM accepted, for the next `on_configure` to reuse: a
    /// configuration update makes a new root context in the same VM (one per thread), so the
    /// cache lives beside them, not in one.
    static HOST_CACHE: RefCell<HostCache> = RefCell::new(HostCache::default());
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
    /// The table of this root context's configuration, compiled with the VM's [`HOST_CACHE`].
    fn load(&self, plugin_configuration_size: usize) -> Result<Loaded, String> {
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
        HOST_CACHE
            .with(|cache| cache.borrow_mut().load(&bytes))
            .map_err(|e| format!("route table version {:?} {e}", version_hint(&bytes)))
    }
}

impl Context for IngressRoot {}

impl RootContext for IngressRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        match self.load(plugin_configuration_size) {
            Ok(Loaded { table: compiled, reused }) => {
                let seed = self
                    .get_current_time()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or_default();
                self.shared.random.reseed(seed);
                log(
                    LogLevel::Info,
                    &format!(
                        "wasm-ingress: route table version {:?} accepted ({} hosts, {reused} of them unchanged)",
                        compiled.version(),
                        compiled.host_count()
                    ),
                );
                *self.shared.table.borrow_mut() = Some(Rc::new(compiled));
                self.shared.verified.borrow_mut().clear();
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
            auth: None,
            auth_cookies: None,
            response: None,
            connection: None,
            answer_headers: Vec::new(),
            error_page: false,
            digest_refusal: DigestRefusal::default(),
            authentication_info: None,
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
    /// The auth request in flight, if any (boxed: most requests have none, and every request's
    /// context is allocated, moved and dropped).
    auth: Option<Box<PendingAuth>>,
    /// After an allowing auth response with cookies: those cookies and `always_set_cookie`.
    auth_cookies: Option<(Vec<Vec<u8>>, bool)>,
    /// The route's response-header rewrites, filled for this request (`proxy-redirect-*`,
    /// `proxy-cookie-*`).
    response: Option<Box<Rewrites>>,
    /// The `limit-connections` count this request holds, given back in `on_log`.
    connection: Option<Box<HeldConnection>>,
    /// The matched route's headers for the filter's own answers (`custom-headers`); empty for
    /// most routes, and then never allocated.
    answer_headers: Vec<AnswerHeader>,
    /// Why digest authentication refused the request (decides its 401).
    digest_refusal: DigestRefusal,
    /// Digest authentication's `Authentication-Info` for the upstream's response.
    authentication_info: Option<String>,
    /// An error-page request (see [`ERROR_PAGE_HEADER`]): its answer's status is the one in
    /// [`ERROR_PAGE_STATUS_HEADER`].
    error_page: bool,
}

/// A count of [`crate::connections`]: which slot, zone and client address it was taken for.
struct HeldConnection {
    key: String,
    zone: String,
    client: String,
}

/// What the auth response is read against: the route's auth settings and the original request.
struct PendingAuth {
    auth: ExternalAuth,
    method: Vec<u8>,
    authority: Vec<u8>,
    uri: Vec<u8>,
    https: bool,
    forwarded_host: Vec<u8>,
    client_address: String,
    /// The request's `auth-cache-key` key, when the route caches auth answers.
    cache_key: Option<[u8; 32]>,
    /// `satisfy: any` after basic (or digest) auth refused the request: its challenge, empty for
    /// none (the service's 403 is then that auth's 401, see `satisfy::auth_status`).
    basic_refused: Option<String>,
}

impl PendingAuth {
    fn original(&self) -> Original<'_> {
        let Self { method, authority, uri, https, forwarded_host, client_address, .. } = self;
        Original { method, authority, uri, https: *https, forwarded_host, client_address }
    }
}

/// `$remote_addr`: Envoy's `source.address` (`ip:port`, `[v6]:port`) without the port or brackets.
fn address_without_port(address: &str) -> &str {
    let host = address.rsplit_once(':').filter(|(host, _)| !host.is_empty() && (address.starts_with('[') || !host.contains(':')));
    host.map_or(address, |(host, _)| host).trim_start_matches('[').trim_end_matches(']')
}

impl Context for IngressRequest {
    fn on_http_call_response(&mut self, _token_id: u32, num_headers: usize, _body_size: usize, _num_trailers: usize) {
        self.finish_auth(num_headers);
    }
}

impl IngressRequest {
    fn respond(&self, status: u16, body: &str) -> Action {
        if self.is_trace() {
            return self.refuse_trace();
        }
        let body = (!body.is_empty()).then_some(body.as_bytes());
        self.send_http_response(u32::from(status), self.with_answer_headers(vec![("content-type", ANSWER_CONTENT_TYPE)]), body);
        Action::Pause
    }

    fn redirect(&self, status: u16, location: &str) -> Action {
        if self.is_trace() {
            return self.refuse_trace();
        }
        // nginx's page for the status goes with its redirects too.
        let body = status_body(status);
        let headers = match body.is_empty() {
            true => vec![("location", location)],
            false => vec![("location", location), ("content-type", ANSWER_CONTENT_TYPE)],
        };
        self.send_http_response(u32::from(status), self.with_answer_headers(headers), (!body.is_empty()).then_some(body.as_bytes()));
        Action::Pause
    }

    /// nginx answers TRACE 405 before anything else. Envoy's route configuration refuses it for
    /// every request that reaches the router (`translate::routes`); the filter's own answers ask
    /// here, so the method is read only when the filter answers, never on the forwarding path.
    pub(super) fn is_trace(&self) -> bool {
        self.get_http_request_header_bytes(":method").as_deref() == Some(b"TRACE")
    }

    pub(super) fn refuse_trace(&self) -> Action {
        self.send_http_response(405, vec![("content-type", ANSWER_CONTENT_TYPE)], Some(NOT_ALLOWED_BODY.as_bytes()));
        Action::Pause
    }

    /// `headers` and then the route's headers for the filter's own answers (`custom-headers`).
    fn with_answer_headers<'a>(&'a self, mut headers: Vec<(&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
        headers.extend(self.answer_headers.iter().map(|h| (h.name.as_str(), h.value.as_str())));
        headers
    }

    /// The CORS headers of an allowed request, for the answers the filter makes itself; the echoed
    /// `Origin` is the one the route's pattern allowed (printable ASCII only).
    fn add_cors_answer_headers(&mut self, cors: &Cors) {
        self.answer_headers.extend(cors.answer_headers.iter().cloned());
        let origin = self.get_http_request_header_bytes("origin").and_then(|o| String::from_utf8(o).ok());
        if let Some(origin) = origin.filter(|o| cors.echo_origin && limits::answer_header_value_ok(o)) {
            self.answer_headers.push(AnswerHeader { name: "access-control-allow-origin".into(), value: origin });
        }
    }

    /// CORS before the filter's own answer of an Ingress with `enable-cors` (a `permanent-` /
    /// `temporal-redirect`, the 503 of a missing Service), as ingress-nginx's template orders its
    /// location (the CORS block in the rewrite phase, before the `return` and the upstream): an
    /// allowed preflight goes on to Envoy on the rule's preflight policy, which answers it 204
    /// with the CORS headers (`Some`); another allowed request gets the answer with the CORS
    /// headers (`None`: answer it).
    fn cors_before_answer(&mut self, table: &CompiledTable, cors: Option<&Cors>) -> Option<Action> {
        let cors = cors?;
        match table.cors_policy(cors, self) {
            Some(chosen) if chosen == cors.preflight_policy => {
                self.set_http_request_header(POLICY_HEADER, Some(chosen));
                Some(Action::Continue)
            }
            Some(_) => {
                self.add_cors_answer_headers(cors);
                None
            }
            None => None,
        }
    }

    /// CORS on a route that redirects plain HTTP to HTTPS (`ssl-redirect`), as ingress-nginx's
    /// template orders them: nginx answers an allowed preflight in its rewrite phase, before the
    /// Lua handler that redirects, so such a preflight is routed as over HTTPS, where the route's
    /// CORS rule answers it (204); another request from an allowed origin gets the redirect with
    /// the CORS headers (nginx's `more_set_headers` covers it).
    fn cors_before_https_redirect<'t>(&mut self, table: &'t CompiledTable, decision: Decision<'t>, request: &RequestParts<'_>) -> Decision<'t> {
        let redirected = matches!(decision.outcome, Outcome::Redirect { .. });
        let Some(route) = decision.route.filter(|route| redirected && route.https_redirect.is_some()) else { return decision };
        let RouteAction::Forward(forward) = &route.action else { return decision };
        let Some(cors) = forward.cors.as_deref() else { return decision };
        match table.cors_policy(cors, self) {
            Some(chosen) if chosen == cors.preflight_policy => table.route(&RequestParts { https: true, ..*request }, self.shared.random.next()),
            Some(_) => {
                self.add_cors_answer_headers(cors);
                decision
            }
            None => decision,
        }
    }

    /// [`Self::client_https`], read only when the table's routing needs it (each read is a host
    /// call).
    fn https(&self, table: &CompiledTable) -> bool {
        table.needs_scheme() && self.client_https(table)
    }

    /// Whether the client used HTTPS: `x-forwarded-proto: https` (Envoy's own, or a trusted load
    /// balancer's) or [`Self::https_by_proxy_protocol`]. The one answer routing, the auth request
    /// and response rewrites all read.
    fn client_https(&self, table: &CompiledTable) -> bool {
        self.get_http_request_header_bytes("x-forwarded-proto").is_some_and(|proto| proto.eq_ignore_ascii_case(b"https"))
            || self.https_by_proxy_protocol(table)
    }

    /// A trusted load balancer's `x-forwarded-host` (see
    /// [`crate::table::RouteTable::trust_forwarded_headers`]); never a client's.
    fn trusted_forwarded_host(&self, table: &CompiledTable) -> Option<Vec<u8>> {
        table.trusts_forwarded_headers().then(|| self.get_http_request_header_bytes("x-forwarded-host")).flatten()
    }

    /// A PROXY protocol connection to port 443 of the load balancer (see
    /// [`crate::table::RouteTable::proxy_protocol`]).
    fn https_by_proxy_protocol(&self, table: &CompiledTable) -> bool {
        table.proxy_protocol() && self.local_port() == Some(443)
    }

    /// `x-forwarded-port`, read only when the table needs it; anything but a port number is unknown.
    /// Without the header (a trusted load balancer sent none), the listener's port.
    fn listener_port(&self, table: &CompiledTable) -> Option<u16> {
        if !table.needs_listener_port() {
            return None;
        }
        match self.get_http_request_header_bytes("x-forwarded-port") {
            Some(port) => std::str::from_utf8(&port).ok()?.trim().parse().ok(),
            None => self.local_port(),
        }
    }

    /// The port of the listener the client connected to (Envoy's `destination.port`, an
    /// 8-byte little-endian integer).
    fn local_port(&self) -> Option<u16> {
        let bytes: [u8; 8] = self.get_property(vec!["destination", "port"])?.try_into().ok()?;
        u16::try_from(u64::from_le_bytes(bytes)).ok()
    }

    /// Send the request to the auth service and pause it (answering 500 when the call cannot be
    /// made), after taking what the auth request and its verdict need from the request headers.
    fn start_auth(&mut self, auth: &ExternalAuth, client: Vec<(String, Vec<u8>)>, request: &Original<'_>, basic_refused: Option<String>) -> Action {
        let header = |name: &str| client.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice());
        let depth = auth::depth_of(header(auth::AUTH_DEPTH_HEADER));
        if depth >= auth::MAX_AUTH_DEPTH {
            log(LogLevel::Warn, &format!("wasm-ingress: auth request to cluster {:?} not sent: {depth} auth requests deep (a loop?)", auth.cluster));
            return self.respond(500, INTERNAL_ERROR_BODY);
        }
        let mut pending = PendingAuth {
            auth: auth.clone(),
            method: header(":method").unwrap_or(b"GET").to_vec(),
            authority: request.authority.to_vec(),
            uri: request.uri.to_vec(),
            https: request.https,
            forwarded_host: request.forwarded_host.to_vec(),
            client_address: self.client_address(),
            cache_key: None,
            basic_refused,
        };
        if let Some(cache) = &auth.cache {
            let key = auth_cache::key(auth, cache, &pending.original(), &client);
            let (value, _) = self.get_shared_data(&auth_cache::slot_key(&key));
            if let Some(kept) = value.and_then(|value| auth_cache::decode(&value, &key, self.now_nanos())) {
                return self.apply_verdict(&pending, Some(kept.status), &kept.headers, false);
            }
            pending.cache_key = Some(key);
        }
        let mut headers = auth::request_headers(auth, &pending.original(), &client);
        headers.push((auth::AUTH_DEPTH_HEADER.to_string(), (depth + 1).to_string()));
        let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let timeout = Duration::from_millis(u64::from(auth.timeout_ms));
        match self.dispatch_http_call(&auth.cluster, refs, None, vec![], timeout) {
            Ok(_) => {
                self.auth = Some(Box::new(pending));
                Action::Pause
            }
            Err(status) => {
                log(LogLevel::Warn, &format!("wasm-ingress: auth request to cluster {:?} not sent: {status:?}", auth.cluster));
                self.respond(500, INTERNAL_ERROR_BODY)
            }
        }
    }

    /// The client-certificate verdict for a request to a host with `rule`; the client's own
    /// `ssl-client-*` headers are dropped (Envoy's route sets them from the certificate).
    fn client_certificate<'t>(
        &self,
        table: &'t CompiledTable,
        rule: &'t ClientCertificate,
        authority: &[u8],
        redirected: bool,
        path: &[u8],
    ) -> client_cert::Verdict<'t> {
        for name in client_cert::CERTIFICATE_HEADERS {
            self.set_http_request_header(name, None);
        }
        let tls = self.get_property(vec!["connection", "tls_version"]).is_some_and(|v| !v.is_empty());
        let server_name = self.get_property(vec!["connection", "requested_server_name"]).unwrap_or_default();
        // A bool property is one byte.
        let peer_certificate = self.get_property(vec!["connection", "mtls"]).is_some_and(|v| v.first().is_some_and(|b| *b != 0));
        let pattern = table.subject_pattern(rule);
        let subject = match pattern {
            Some(_) => self.get_property(vec!["connection", "subject_peer_certificate"]).unwrap_or_default(),
            None => Vec::new(),
        };
        let subject = String::from_utf8_lossy(&subject);
        let connection = client_cert::Connection { tls, server_name: &server_name, peer_certificate, subject: &subject };
        client_cert::check(rule, pattern, connection, authority, redirected, path)
    }

    /// An error-page request (see [`ERROR_PAGE_HEADER`]): sent to the cluster it names as `GET /`
    /// (the query kept, as nginx's `rewrite (.*) / break`) with the default policy, and the
    /// client's URI in `x-original-uri` (nginx's `$request_uri`: before any rewrite-target).
    /// `None` (the marker removed, if any): route the request as usual.
    fn error_page(&mut self, table: &CompiledTable) -> Option<Action> {
        let value = self.get_http_request_header_bytes(ERROR_PAGE_HEADER)?;
        self.set_http_request_header(ERROR_PAGE_HEADER, None);
        let cluster = table.error_page_cluster(&value)?;
        self.error_page = true;
        let path = self.get_http_request_header_bytes(":path").unwrap_or_default();
        let original = self.get_http_request_header_bytes(ORIGINAL_PATH_HEADER).unwrap_or_else(|| path.clone());
        self.set_http_request_header_bytes("x-original-uri", Some(&original));
        let query = path.iter().position(|&b| b == b'?').and_then(|i| path.get(i..)).unwrap_or_default();
        let root: Vec<u8> = b"/".iter().chain(query).copied().collect();
        self.set_http_request_header(CLUSTER_HEADER, Some(cluster));
        self.set_http_request_header(POLICY_HEADER, None);
        self.set_http_request_header(":method", Some("GET"));
        self.set_http_request_header_bytes(":path", Some(&root));
        Some(Action::Continue)
    }

    /// The client's address without port (nginx's `$remote_addr`); empty when Envoy has none.
    fn client_address(&self) -> String {
        let source = self.get_property(vec!["source", "address"]).unwrap_or_default();
        address_without_port(&String::from_utf8_lossy(&source)).to_string()
    }

    /// Every `Cookie` header of the request (HTTP/1 allows several), from the whole header map.
    fn all_cookie_headers(&self) -> Vec<Vec<u8>> {
        self.get_http_request_headers_bytes().into_iter().filter(|(n, _)| n == "cookie").map(|(_, v)| v).collect()
    }

    /// The request's `Cookie` headers: the first alone when it holds cookie `name` or there is
    /// none, else all of them.
    fn cookie_headers(&self, name: &str) -> Vec<Vec<u8>> {
        match self.get_http_request_header_bytes("cookie") {
            None => Vec::new(),
            Some(first) if crate::canary::cookie_value(&first, name.as_bytes()).is_some() => vec![first],
            Some(_) => self.all_cookie_headers(),
        }
    }

    /// `affinity: cookie`: take the backend mark off the request's sticky cookie (Envoy hashes
    /// the value it made; every `Cookie` header is written back when one changes). The mark the
    /// response's new cookie gets: (name, `cluster`'s key).
    fn sticky_cookie(&self, name: &str, cookies: &[Vec<u8>], cluster: &str) -> (String, String) {
        if cookies.iter().any(|value| affinity::unmarked(value, name).is_some()) {
            // `cookies` holds only the first header when the sticky cookie is there: read them all.
            let all = if cookies.len() == 1 { self.all_cookie_headers() } else { cookies.to_vec() };
            self.set_http_request_header("cookie", None);
            for value in &all {
                self.add_http_request_header_bytes("cookie", affinity::unmarked(value, name).as_deref().unwrap_or(value));
            }
        }
        (name.to_string(), affinity::backend_key(cluster))
    }

    /// `upstream-hash-by-subset`: the slot of the route's hash key, for Envoy's subset load
    /// balancer (see [`subset`]); a request without the key's value hashes as empty, as in nginx.
    fn send_subset_slot(&self, key: &HashKey, authority: &[u8], path: &[u8]) {
        let cookies = matches!(key, HashKey::Cookie { .. }).then(|| self.get_http_request_header_bytes("cookie")).flatten();
        let value = match key {
            HashKey::Header { name } if name == ":authority" => Some(authority.to_vec()),
            HashKey::Header { name } if name != ":path" => self.get_http_request_header_bytes(name),
            HashKey::SourceIp => Some(self.client_address().into_bytes()),
            _ => subset::key_value(key, path, cookies.as_deref()).map(<[u8]>::to_vec),
        };
        let slot = subset::slot(value.as_deref().unwrap_or_default());
        self.set_http_request_header(subset::SUBSET_HEADER, Some(&slot.to_string()));
    }

    /// Send the request upstream: cluster and policy headers, `x-forwarded-host`, rewrites. A
    /// rewritten path keeps the client's in [`ORIGINAL_PATH_HEADER`]. Behind a trusted load
    /// balancer (see [`crate::table::RouteTable::trust_forwarded_headers`]) the host sent upstream
    /// is its `X-Forwarded-Host`, and an `X-Forwarded-Port` it did not send is the listener's.
    fn forward(&self, authority: &[u8], cluster: &str, policy: &str, path: (&[u8], Option<&str>), new_authority: Option<&str>) -> Action {
        self.set_http_request_header(CLUSTER_HEADER, Some(cluster));
        if !policy.is_empty() {
            self.set_http_request_header(POLICY_HEADER, Some(policy));
        }
        let table = self.table.as_deref();
        if table.is_some_and(|table| self.https_by_proxy_protocol(table)) {
            self.set_http_request_header("x-forwarded-proto", Some("https"));
        }
        let trusted = table.is_some_and(CompiledTable::trusts_forwarded_headers);
        let forwarded_host = table.and_then(|table| self.trusted_forwarded_host(table));
        let host = crate::request::best_host(authority, forwarded_host.as_deref());
        if !host.is_empty() {
            self.set_http_request_header_bytes("x-forwarded-host", Some(host));
        }
        // Compared only when a trusted load balancer's host may have been taken (a byte-wise
        // comparison of the authority costs every request otherwise).
        if new_authority.is_none() && forwarded_host.is_some() && host != authority {
            self.set_http_request_header_bytes(":authority", Some(host));
        }
        if trusted && self.get_http_request_header_bytes("x-forwarded-port").is_none() {
            if let Some(port) = self.local_port() {
                self.set_http_request_header("x-forwarded-port", Some(&port.to_string()));
            }
        }
        let (original_path, new_path) = path;
        if let Some(new_path) = new_path {
            self.set_http_request_header_bytes(ORIGINAL_PATH_HEADER, Some(original_path));
            self.set_http_request_header(":path", Some(new_path));
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
        let Some(table) = self.table.clone() else {
            return self.respond(503, "route table not loaded\n");
        };
        if table.has_error_pages() {
            if let Some(action) = self.error_page(&table) {
                return action;
            }
        }
        let authority = self
            .get_http_request_header_bytes(":authority")
            .or_else(|| self.get_http_request_header_bytes("host"))
            .unwrap_or_default();
        let path = self.get_http_request_header_bytes(":path").unwrap_or_default();
        let forwarded_host = self.trusted_forwarded_host(&table).unwrap_or_default();
        let request = RequestParts {
            authority: &authority,
            path: &path,
            https: self.https(&table),
            listener_port: self.listener_port(&table),
            forwarded_host: &forwarded_host,
        };
        let decision = table.route(&request, self.shared.random.next());
        match decision.route {
            Some(route) if !route.answer_headers.is_empty() => self.answer_headers = route.answer_headers.clone(),
            None if !table.table().answer_headers.is_empty() => self.answer_headers = table.table().answer_headers.clone(),
            _ => {}
        }
        let decision = self.cors_before_https_redirect(&table, decision, &request);
        if table.table().log_route {
            log_facts::remember_route(&decision);
        }
        if table.default_server_unlogged(&decision) {
            self.set_http_request_header_bytes(UNLOGGED_HEADER, Some(b"1"));
        }
        if table.default_server_guards(&decision) && table.default_server_denies(&self.client_address()) {
            return self.respond(403, FORBIDDEN_BODY);
        }
        if let Some(rule) = table.client_certificate(&authority) {
            let redirected = matches!(decision.outcome, Outcome::Redirect { .. });
            match self.client_certificate(&table, rule, &authority, redirected, &path) {
                client_cert::Verdict::Pass(verify) => self.set_http_request_header(client_cert::VERIFY_HEADER, Some(verify)),
                client_cert::Verdict::Respond(status, body) => return self.respond(status, body),
                client_cert::Verdict::Redirect(location) => return self.redirect(302, location),
            }
        }
        match decision.outcome {
            Outcome::Forward { cluster, path: new_path, forward: route } => {
                let (canary, cors, auth, basic_auth) = (route.canary.as_deref(), route.cors.as_deref(), route.auth.as_deref(), route.basic_auth.as_deref());
                let (satisfy_any, lists_first, response) = (route.satisfy_any.as_deref(), route.lists_first.as_deref(), route.response.as_deref());
                let affinity_cookie = route.affinity_cookie.as_deref();
                let cookies = affinity_cookie.map(|name| self.cookie_headers(name)).unwrap_or_default();
                let sticky = affinity_cookie.and_then(|name| cookies.iter().find_map(|cookies| affinity::backend_of(cookies, name)));
                let cluster = match canary {
                    Some(canary) => match affinity::sticks_to_canary(sticky, cluster, canary) {
                        Some(true) => &canary.cluster,
                        Some(false) => cluster,
                        None if table.chooses_canary(canary, self, self.shared.random.next()) => &canary.cluster,
                        None => cluster,
                    },
                    None => cluster,
                };
                let mark_cookie = affinity_cookie.map(|name| self.sticky_cookie(name, &cookies, cluster));
                let cors_policy = cors.and_then(|cors| table.cors_policy(cors, self));
                let preflight = cors.zip(cors_policy).is_some_and(|(cors, chosen)| chosen == cors.preflight_policy);
                if let Some(cors) = cors.filter(|cors| cors_policy == Some(cors.policy.as_str())) {
                    self.add_cors_answer_headers(cors);
                }
                let policy = cors_policy.unwrap_or(&route.policy);
                if let Some(limit) = route.connection_limit.as_deref().filter(|_| !preflight) {
                    if !self.take_connection(limit) {
                        return self.respond(limit.status, status_body(limit.status));
                    }
                }
                let mut basic_refused = None;
                let auth = match satisfy_any.filter(|_| !preflight) {
                    Some(any) => match self.satisfy_any(&table, any, basic_auth, auth.is_some()) {
                        satisfy::Next::Pass => {
                            // The auth service is not asked, so none of its response headers
                            // reach the backend, the client's own copies neither (nginx's
                            // `proxy_set_header` of an empty `$authHeaderN` sends none).
                            for name in auth.iter().flat_map(|auth| &auth.response_headers) {
                                self.set_http_request_header(name, None);
                            }
                            None
                        }
                        satisfy::Next::AskAuthService { basic_refused: refused } => {
                            basic_refused = basic_auth.filter(|_| refused).map(|basic| self.challenge(basic));
                            auth
                        }
                        satisfy::Next::Unauthorized => return basic_auth.map_or_else(|| self.respond(403, auth::FORBIDDEN_BODY), |basic| self.unauthorized(basic)),
                        satisfy::Next::Forbidden => return self.respond(403, auth::FORBIDDEN_BODY),
                    },
                    None => {
                        // nginx's access module runs before auth_basic and auth_request.
                        if let Some(lists) = lists_first.filter(|_| !preflight) {
                            if satisfy::address(lists, &self.client_address()) == satisfy::Address::Refused {
                                return self.respond(403, auth::FORBIDDEN_BODY);
                            }
                        }
                        if let Some(basic) = basic_auth.filter(|_| !preflight) {
                            if !self.credentials_pass(&table, basic) {
                                return self.unauthorized(basic);
                            }
                        }
                        auth
                    }
                };
                // What the auth request and response rewrites read, before `forward` changes it.
                let reads_request = response.is_some() || auth.is_some();
                let https = reads_request && self.client_https(&table);
                let forwarded_host: &[u8] = if reads_request { &forwarded_host } else { b"" };
                let original = Original { authority: &authority, uri: &path, https, forwarded_host, ..Original::default() };
                // Only answers from the upstream are rewritten (nginx's proxy_redirect), so after
                // basic auth; an external auth's own answer clears them (see `finish_auth`).
                if let Some(rewrite) = response {
                    let user_agent = rewrite.conditional_samesite_none.as_ref().and_then(|_| self.get_http_request_header_bytes("user-agent"));
                    self.response = Some(Box::new(Rewrites::for_request(rewrite, &original, user_agent.as_deref())));
                }
                if mark_cookie.is_some() {
                    let cookie_expires = route.affinity_cookie_expires.map(|seconds| affinity::cookie_time((self.now_nanos() / 1_000_000_000).saturating_add(seconds)));
                    let rewrites = self.response.take().map(|rewrites| *rewrites).unwrap_or_default();
                    self.response = Some(Box::new(Rewrites { mark_cookie, cookie_expires, ..rewrites }));
                }
                if let Some(key) = route.subset_hash.as_deref() {
                    self.send_subset_slot(key, &authority, &path);
                }
                // Read before `forward` changes them: the auth request carries the client's.
                let auth = auth.filter(|_| !preflight).map(|auth| (auth, self.get_http_request_headers_bytes()));
                if basic_auth.is_some() {
                    // ingress-nginx's `proxy_set_header Authorization ""` where basic or digest
                    // auth is on: the credentials never reach the backend.
                    self.set_http_request_header("authorization", None);
                }
                // From here the request is on its policy's route, and Envoy finishes every answer
                // the filter makes (the auth verdicts) with that route's response headers, which
                // hold these (CORS, `custom-headers`): adding them too would send each twice.
                self.answer_headers.clear();
                let forwarded = self.forward(&authority, cluster, policy, (&path, new_path.as_deref()), route.host_rewrite.as_deref());
                match auth {
                    Some((auth, client)) => self.start_auth(auth, client, &original, basic_refused),
                    None => forwarded,
                }
            }
            Outcome::Respond { status, body, cors } => self.cors_before_answer(&table, cors).unwrap_or_else(|| self.respond(status, body)),
            Outcome::Redirect { status, location, cors } => self.cors_before_answer(&table, cors).unwrap_or_else(|| self.redirect(status, &location)),
        }
    }

    fn on_log(&mut self) {
        if let Some(held) = self.connection.take() {
            self.release_connection(&held);
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.error_page {
            self.restore_error_page_status();
        }
        if let Some(rewrites) = self.response.take() {
            self.rewrite_response(&rewrites);
        }
        if let Some(info) = self.authentication_info.take() {
            self.set_http_response_header("authentication-info", Some(&info));
        }
        if let Some((cookies, always)) = self.auth_cookies.take() {
            let status = self.get_http_response_header_bytes(":status").and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok());
            if status.is_some_and(|status| auth::sets_cookie(always, status)) {
                for cookie in &cookies {
                    self.add_http_response_header_bytes("set-cookie", cookie);
                }
            }
        }
        Action::Continue
    }
}

/// The client's path when the filter rewrote it (`rewrite-target`), as Envoy's own rewrites keep
/// it: the access log and error pages' `X-Original-URI` (nginx's `$request_uri`) read it. Envoy
/// drops a client's own copy before any filter runs.
const ORIGINAL_PATH_HEADER: &str = "x-envoy-original-path";

impl IngressRequest {
    /// The error page's own status (see [`ERROR_PAGE_STATUS_HEADER`]), when it is one.
    fn restore_error_page_status(&self) {
        let Some(status) = self.get_http_response_header_bytes(ERROR_PAGE_STATUS_HEADER) else { return };
        self.set_http_response_header(ERROR_PAGE_STATUS_HEADER, None);
        if let Some(status) = crate::response::status_code(&status) {
            self.set_http_response_header(":status", Some(&status.to_string()));
        }
    }

    /// Take one `limit-connections` count for the client; `false`: it has `limit` requests in
    /// progress already. An exempt client, or one whose count cannot be taken (a crowded slot, a
    /// shared-data error, compare-and-swap lost [`connections::MAX_TAKE_ATTEMPTS`] times), passes
    /// uncounted: the limit protects backends, it does not decide who may reach them.
    fn take_connection(&mut self, limit: &ConnectionLimit) -> bool {
        let client = self.client_address();
        let client = client.as_str();
        if client.is_empty() || address::listed(&limit.exempt, client) {
            return true;
        }
        let key = connections::slot_key(&limit.zone, client);
        for _ in 0..connections::MAX_TAKE_ATTEMPTS {
            // An absent slot has no CAS: the first write creates it unconditionally. Two workers
            // creating one slot at once can lose a count, which only ever lets a request more in.
            let (value, cas) = self.get_shared_data(&key);
            let new = match connections::take(value.as_deref().unwrap_or_default(), &limit.zone, client, limit.limit) {
                Take::Taken(new) => new,
                Take::Over => return false,
                Take::Full => return true,
            };
            match self.set_shared_data(&key, Some(&new), cas) {
                Ok(()) => {
                    self.connection = Some(Box::new(HeldConnection { key, zone: limit.zone.clone(), client: client.to_string() }));
                    return true;
                }
                Err(Status::CasMismatch) => continue,
                Err(status) => {
                    log(LogLevel::Warn, &format!("wasm-ingress: limit-connections count not taken: {status:?}"));
                    return true;
                }
            }
        }
        true
    }

    /// Give a `limit-connections` count back (compare-and-swap, retried).
    fn release_connection(&self, held: &HeldConnection) {
        for _ in 0..connections::MAX_RELEASE_ATTEMPTS {
            let (value, cas) = self.get_shared_data(&held.key);
            let Some(new) = connections::release(value.as_deref().unwrap_or_default(), &held.zone, &held.client) else { return };
            match self.set_shared_data(&held.key, Some(&new), cas) {
                Err(Status::CasMismatch) => continue,
                Ok(()) => return,
                Err(status) => {
                    log(LogLevel::Warn, &format!("wasm-ingress: limit-connections count not given back: {status:?}"));
                    return;
                }
            }
        }
        log(LogLevel::Warn, "wasm-ingress: limit-connections count not given back (compare-and-swap kept failing)");
    }

    /// nginx's `proxy_redirect` on `Location` and `Refresh`, `proxy_cookie_*` on every
    /// `Set-Cookie` (all of them set again, in order, when one changes).
    fn rewrite_response(&self, rewrites: &Rewrites) {
        if rewrites.redirect.is_some() {
            if let Some(new) = self.get_http_response_header_bytes("location").and_then(|v| rewrites.location(&v)) {
                self.set_http_response_header_bytes("location", Some(&new));
            }
            if let Some(new) = self.get_http_response_header_bytes("refresh").and_then(|v| rewrites.refresh(&v)) {
                self.set_http_response_header_bytes("refresh", Some(&new));
            }
        }
        if !rewrites.rewrites_cookies() {
            return;
        }
        let cookies: Vec<Vec<u8>> =
            self.get_http_response_headers_bytes().into_iter().filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v).collect();
        let rewritten: Vec<Option<Vec<u8>>> = cookies.iter().map(|cookie| rewrites.set_cookie(cookie)).collect();
        if rewritten.iter().all(Option::is_none) {
            return;
        }
        self.set_http_response_header("set-cookie", None);
        for (cookie, new) in cookies.iter().zip(&rewritten) {
            self.add_http_response_header_bytes("set-cookie", new.as_deref().unwrap_or(cookie));
        }
    }

    /// The auth service answered (or the call failed: no `:status`): go on or answer.
    fn finish_auth(&mut self, num_headers: usize) {
        let Some(pending) = self.auth.take() else { return };
        // A failed call has no headers; ask the host only when there are some, and read an error as none.
        let headers = match num_headers {
            0 => Vec::new(),
            _ => proxy_wasm::hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders).unwrap_or_default(),
        };
        let status = headers
            .iter()
            .find(|(name, _)| name == ":status")
            .and_then(|(_, value)| std::str::from_utf8(value).ok()?.parse().ok());
        if let (Some(key), Some(cache), Some(status)) = (pending.cache_key, &pending.auth.cache, status) {
            // Kept for every worker: the slot is overwritten whoever held it (no compare-and-swap;
            // a lost write only means one more question to the auth service).
            if let Some(value) = auth_cache::keep_for(&cache.valid, status, &headers).and_then(|millis| auth_cache::encode(&key, status, &headers, millis, self.now_nanos())) {
                if let Err(status) = self.set_shared_data(&auth_cache::slot_key(&key), Some(&value), None) {
                    log(LogLevel::Warn, &format!("wasm-ingress: auth answer not cached: {status:?}"));
                }
            }
        }
        self.apply_verdict(&pending, status, &headers, true);
    }

    /// Host clock in nanoseconds since the epoch (0 if the host cannot say).
    fn now_nanos(&self) -> u64 {
        self.get_current_time().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Act on the auth service's answer (`status` and `headers`, received or kept): let the
    /// request on (resuming it when `paused`) or answer it.
    fn apply_verdict(&mut self, pending: &PendingAuth, status: Option<u16>, headers: &[(String, Vec<u8>)], paused: bool) -> Action {
        let status = satisfy::auth_status(status, pending.basic_refused.is_some());
        match auth::verdict(&pending.auth, &pending.original(), status, headers) {
            Verdict::Allow { set, cookies } => {
                for (name, value) in &set {
                    self.set_http_request_header_bytes(name, value.as_deref());
                }
                if !cookies.is_empty() {
                    self.auth_cookies = Some((cookies, pending.auth.always_set_cookie));
                }
                if paused {
                    self.resume_http_request();
                }
                Action::Continue
            }
            Verdict::Respond { status, headers, body } => {
                self.response = None;
                if self.is_trace() {
                    return self.refuse_trace();
                }
                // The host call takes strings: a header value that is not UTF-8 is left out.
                let mut refs: Vec<(&str, &str)> =
                    headers.iter().filter_map(|(n, v)| Some((n.as_str(), std::str::from_utf8(v).ok()?))).collect();
                // A 401 that basic auth's refusal made (see `satisfy::auth_status`) carries its challenge.
                let challenge = pending.basic_refused.as_deref().filter(|challenge| !challenge.is_empty());
                if let Some(challenge) = challenge.filter(|_| status == 401 && !refs.iter().any(|(n, _)| *n == "www-authenticate")) {
                    refs.push(("www-authenticate", challenge));
                }
                if !body.is_empty() {
                    refs.push(("content-type", ANSWER_CONTENT_TYPE));
                }
                let refs = self.with_answer_headers(refs);
                let body = (!body.is_empty()).then_some(body.as_bytes());
                if let Err(status) = proxy_wasm::hostcalls::send_http_response(u32::from(status), refs, body) {
                    log(LogLevel::Warn, &format!("wasm-ingress: auth verdict not sent: {status:?}"));
                }
                Action::Pause
            }
        }
    }
}
