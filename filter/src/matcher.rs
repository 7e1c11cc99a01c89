//! Route matching: host index + per-host path index, with the Ingress v1 precedence. Pure: no
//! proxy-wasm, no I/O; used by the filter (`host.rs`) and by the control plane (`explain`, validation).
//!
//! Compilation ([`CompiledTable::compile`]) turns a [`RouteTable`] into indexes whose lookup cost does
//! not grow with the number of rules (regex routes excepted):
//! - hosts: a hash map of exact hosts, a hash map of wildcard suffixes (`*.foo.com` is stored as
//!   `foo.com` and looked up with the request host minus its first label), and the host-less entry;
//! - paths, per host: a hash map for `Exact`, an ordered list of anchored regexes for `Regex`, and one
//!   `matchit` radix tree for `Prefix` (prefix `/a/b` is inserted as `/a/b`, `/a/b/` and
//!   `/a/b/{*rest}`; matchit prefers the longest static match and backtracks to shorter catch-alls).
//!
//! Evaluation order for a path is the one documented on [`crate::table::VirtualHost::routes`]: an
//! `Exact` route equal to the path, else the first matching `Regex` route in table order, else the
//! longest element-wise `Prefix`. Redirects come first where ingress-nginx puts them: a host's
//! `app_root` answers a request for exactly `/` before any route is looked at, and a matched route's
//! `https_redirect` answers a plain-HTTP request instead of the route's action.
//!
//! What happens to a matched request (weights, rewrites) is in [`crate::actions`], how a redirect's
//! `Location` is built in [`crate::redirect`], and the decision types in [`crate::decision`]. This
//! module must not talk to proxy-wasm, log, or allocate per request beyond what a rewrite or a
//! redirect needs.

use std::borrow::Cow;
use std::collections::HashMap;

use regex::Regex;

use crate::actions;
use crate::canary;
use crate::cors;
use crate::request::HeaderLookup;
pub use crate::decision::{Decision, Outcome, Via, NOT_FOUND_BODY, URI_TOO_LONG_BODY};
use crate::redirect;
pub use crate::redirect::check_redirect;
use crate::request::{host_of, split_path};
pub use crate::request::RequestParts;
use crate::basic::PasswordHash;
use crate::table::{BasicAuth, Canary, CanaryHeaderRule, ClientCertificate, Cors, ExternalAuth, Forward, PathMatch, PathRewrite, Redirect, ResponseRewrite, Route, RouteAction, RouteTable, VirtualHost, MIN_ERROR_PAGE_TOKEN, SCHEMA_VERSION};

pub use crate::limits::MAX_TABLE_JSON_BYTES;
use crate::limits::{
    MAX_AUTH_RESPONSE_HEADERS, MAX_CANARY_NAME_BYTES, MAX_HEADER_PATTERNS, MAX_PASSWORD_FIELD_BYTES, MAX_PASSWORD_USERS, MAX_POLICY_KEY_BYTES, MAX_REGEX_PATTERN_BYTES, MAX_REGEX_ROUTES, MAX_REGEX_ROUTES_PER_HOST,
    MAX_REQUEST_PATH_BYTES, MAX_REWRITE_SUBSTITUTIONS, MAX_REWRITE_TEMPLATE_BYTES,
};

/// Compiled-program size limit for one route regex (bytes), so a pathological pattern cannot exhaust
/// the wasm VM's memory. ingress-nginx style patterns are a few KiB at most.
const REGEX_SIZE_LIMIT: usize = 1024 * 1024;
/// Lazy-DFA cache limit per route regex (bytes).
const REGEX_DFA_SIZE_LIMIT: usize = 256 * 1024;

/// A compiled route table, built once per `on_configure` and shared by every request (`Rc`).
#[derive(Debug)]
pub struct CompiledTable {
    table: RouteTable,
    index: Indexes,
}

/// The host index: entries of `table.hosts` by the names they serve.
#[derive(Debug, Default)]
struct HostNames {
    /// Lower-case exact host -> index.
    exact: HashMap<String, usize>,
    /// Wildcard suffix (`foo.com` for `*.foo.com`) -> index.
    wildcard: HashMap<String, usize>,
    /// Index of the host-less (`""`) entry.
    hostless: Option<usize>,
}

/// The path indexes of one virtual host.
#[derive(Debug, Default)]
struct PathIndex {
    /// `Exact` value -> route index (first one wins on duplicates).
    exact: HashMap<String, usize>,
    /// `Regex` routes in table order, compiled as `^(?:pattern)`.
    regexes: Vec<(usize, Regex)>,
    /// `Prefix` routes; `None` when the host has none.
    prefixes: Option<matchit::Router<PrefixHit>>,
}

/// What the prefix router stores: which route, and how long its normalised prefix is (the part of
/// the request path that `ReplacePrefix` replaces).
#[derive(Debug, Clone, Copy)]
struct PrefixHit {
    route: usize,
    prefix_len: usize,
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
        match &self.host {
            Some(host) => write!(f, "host {host:?}")?,
            None => write!(f, "table")?,
        }
        if let Some(route) = self.route {
            write!(f, " route {route}")?;
        }
        if !self.origin.is_empty() {
            write!(f, " ({})", self.origin)?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for CompileError {}

/// Check one route on its own (regex compiles, path is indexable, action and `https_redirect` are
/// well-formed), so the control plane can drop a bad route with a diagnostic instead of sending a
/// table the filter refuses. A host's `app_root` is checked with [`check_redirect`].
pub fn check_route(route: &Route) -> Result<(), String> {
    match &route.path {
        PathMatch::Exact(value) => check_literal_path("Exact", value)?,
        PathMatch::Prefix(value) => {
            check_literal_path("Prefix", value)?;
            let mut probe = matchit::Router::new();
            insert_prefix(&mut probe, value, PrefixHit { route: 0, prefix_len: 0 })?;
        }
        PathMatch::Regex(pattern) => {
            compile_route_regex(pattern)?;
        }
    }
    check_route_answers(route)
}

/// What a route answers with: its action, and its `https_redirect` if any.
fn check_route_answers(route: &Route) -> Result<(), String> {
    check_action(&route.action)?;
    match &route.https_redirect {
        Some(redirect) => check_redirect(redirect).map_err(|e| format!("https_redirect: {e}")),
        None => Ok(()),
    }
}

/// Check an action on its own (used for routes, host fallbacks and the default backend): a
/// `Forward` has at least one backend, non-zero total weight, header-safe cluster, template and
/// host values and a well-formed policy key; a `Respond` has a status in 200..=599; a `Redirect`
/// passes [`check_redirect`].
pub fn check_action(action: &RouteAction) -> Result<(), String> {
    match action {
        RouteAction::Forward(forward) => check_forward(forward),
        RouteAction::Respond(respond) if (200..=599).contains(&respond.status) => Ok(()),
        RouteAction::Respond(respond) => Err(format!("Respond status {} is outside 200..=599", respond.status)),
        RouteAction::Redirect(redirect) => check_redirect(redirect),
    }
}

fn check_forward(forward: &Forward) -> Result<(), String> {
    if forward.backends.is_empty() {
        return Err("Forward has no backends".into());
    }
    if actions::total_weight(&forward.backends) == 0 {
        return Err("Forward backends all have weight 0".into());
    }
    for backend in &forward.backends {
        check_header_value("backend cluster", &backend.cluster)?;
    }
    match &forward.rewrite {
        Some(PathRewrite::Template(template)) => check_template(template)?,
        Some(PathRewrite::ReplacePrefix(replacement)) => check_replace_prefix(replacement)?,
        None => {}
    }
    if let Some(host) = &forward.host_rewrite {
        check_header_value("host_rewrite", host)?;
    }
    if let Some(canary) = &forward.canary {
        check_canary(canary).map_err(|e| format!("canary: {e}"))?;
    }
    if let Some(cors) = &forward.cors {
        check_cors(cors).map_err(|e| format!("cors: {e}"))?;
    }
    if let Some(auth) = &forward.auth {
        check_auth(auth).map_err(|e| format!("auth: {e}"))?;
    }
    if let Some(basic) = &forward.basic_auth {
        if basic.realm.len() > MAX_PASSWORD_FIELD_BYTES || basic.realm.contains(|c: char| c.is_control()) {
            return Err(format!("basic_auth: realm is longer than {MAX_PASSWORD_FIELD_BYTES} bytes or has control characters"));
        }
    }
    if let Some(response) = &forward.response {
        check_response(response).map_err(|e| format!("response: {e}"))?;
    }
    if let Some(limit) = &forward.connection_limit {
        crate::connections::check(limit).map_err(|e| format!("connection_limit: {e}"))?;
    }
    check_policy_key(&forward.policy)
}

/// Each `from` and `to` of a route's response rewrites is a template the sign-in rules accept
/// (known variables, no spaces or control characters, bounded); an empty `from` would match
/// every value.
fn check_response(response: &ResponseRewrite) -> Result<(), String> {
    let pairs = [("redirect", &response.redirect), ("cookie_domain", &response.cookie_domain), ("cookie_path", &response.cookie_path)];
    for (name, pair) in pairs {
        let Some(pair) = pair else { continue };
        if pair.from.is_empty() {
            return Err(format!("{name}: empty from"));
        }
        crate::auth::check_template(&pair.from).map_err(|e| format!("{name}: from {e}"))?;
        crate::auth::check_template(&pair.to).map_err(|e| format!("{name}: to {e}"))?;
    }
    if let Some(cookie) = &response.conditional_samesite_none {
        check_token("conditional_samesite_none", cookie)?;
    }
    Ok(())
}

/// An external auth's request parts are header-safe, its path absolute, its response header
/// names lower-case tokens (at most [`MAX_AUTH_RESPONSE_HEADERS`]) and its sign-in template uses
/// known variables only.
fn check_auth(auth: &ExternalAuth) -> Result<(), String> {
    check_header_value("cluster", &auth.cluster)?;
    if let Some(cache) = &auth.cache {
        crate::auth_cache::check(cache).map_err(|e| format!("cache: {e}"))?;
    }
    if let Some(authority) = &auth.authority {
        check_header_value("authority", authority)?;
    }
    if !auth.path.starts_with('/') || auth.path.len() > MAX_REQUEST_PATH_BYTES {
        return Err(format!("path {:?} is not an absolute path of at most {MAX_REQUEST_PATH_BYTES} bytes", auth.path));
    }
    check_header_value("path", &auth.path)?;
    if let Some(method) = &auth.method {
        check_token("method", method)?;
    }
    if let Some(signin) = &auth.signin {
        crate::auth::check_template(signin).map_err(|e| format!("signin {e}"))?;
    }
    if auth.response_headers.len() > MAX_AUTH_RESPONSE_HEADERS {
        return Err(format!("more than {MAX_AUTH_RESPONSE_HEADERS} response headers"));
    }
    for name in &auth.response_headers {
        check_token("response header", name)?;
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!("response header {name:?} is not lower case"));
        }
    }
    if let Some(redirect) = &auth.request_redirect {
        check_header_value("request_redirect", redirect)?;
    }
    if auth.timeout_ms == 0 {
        return Err("timeout_ms is 0".into());
    }
    Ok(())
}

/// A CORS rule's policy keys are well-formed and its origin pattern compiles.
fn check_cors(cors: &Cors) -> Result<(), String> {
    check_policy_key(&cors.policy)?;
    check_policy_key(&cors.preflight_policy)?;
    if let Some(pattern) = &cors.origin_pattern {
        compile_header_regex(pattern)?;
    }
    Ok(())
}

/// A canary's cluster is header-safe, its header and cookie names are tokens (header names lower
/// case), its pattern compiles and its weight total is not 0.
fn check_canary(canary: &Canary) -> Result<(), String> {
    check_header_value("cluster", &canary.cluster)?;
    if let Some(header) = &canary.header {
        check_token("header name", &header.name)?;
        if header.name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!("header name {:?} is not lower case", header.name));
        }
        match &header.rule {
            CanaryHeaderRule::Value(value) => check_header_value("header value", value)?,
            CanaryHeaderRule::Pattern(pattern) => drop(compile_header_regex(pattern)?),
            CanaryHeaderRule::AlwaysNever | CanaryHeaderRule::PresentMeansPrimary => {}
        }
    }
    if let Some(cookie) = &canary.cookie {
        check_token("cookie name", cookie)?;
    }
    if canary.weight_total == 0 {
        return Err("weight_total is 0".into());
    }
    Ok(())
}

/// A header or cookie name: 1..=MAX_CANARY_NAME_BYTES of `[A-Za-z0-9_-]` (the characters
/// ingress-nginx accepts in canary header and cookie names).
pub fn check_token(what: &str, name: &str) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if name.is_empty() || name.len() > MAX_CANARY_NAME_BYTES || !name.bytes().all(token) {
        return Err(format!("{what} {name:?} is not 1 to {MAX_CANARY_NAME_BYTES} letters, digits, '-' or '_'"));
    }
    Ok(())
}

/// Compile a header pattern (a canary header's, a CORS origin's): unanchored, as ingress-nginx's
/// `ngx.re.match` without options.
pub fn compile_header_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_REGEX_PATTERN_BYTES {
        return Err(format!("regex is {} bytes, more than the {MAX_REGEX_PATTERN_BYTES} allowed", pattern.len()));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regex {pattern:?}: {e}"))
}

/// Every canary header pattern, CORS origin pattern and client-certificate subject pattern of the
/// table, compiled once each.
fn compile_header_patterns(table: &RouteTable) -> Result<HashMap<String, Regex>, String> {
    let mut patterns = HashMap::new();
    for forward in forwards(table) {
        let canary = forward.canary.as_ref().and_then(|c| c.header.as_ref()).and_then(|h| match &h.rule {
            CanaryHeaderRule::Pattern(pattern) => Some(pattern),
            _ => None,
        });
        let origin = forward.cors.as_ref().and_then(|c| c.origin_pattern.as_ref());
        for pattern in canary.into_iter().chain(origin) {
            insert_pattern(&mut patterns, pattern)?;
        }
    }
    let subjects = table.hosts.iter().filter_map(|h| h.client_certificate.as_ref()?.match_cn.as_ref());
    for pattern in subjects {
        insert_pattern(&mut patterns, pattern)?;
    }
    Ok(patterns)
}

/// Compile `pattern` into `patterns` once, within [`MAX_HEADER_PATTERNS`].
fn insert_pattern(patterns: &mut HashMap<String, Regex>, pattern: &str) -> Result<(), String> {
    if !patterns.contains_key(pattern) {
        if patterns.len() == MAX_HEADER_PATTERNS {
            return Err(format!("more than {MAX_HEADER_PATTERNS} distinct canary header, CORS origin and client CN patterns"));
        }
        patterns.insert(pattern.to_string(), compile_header_regex(pattern)?);
    }
    Ok(())
}

/// Every password list of the table with its hashes read, within [`MAX_PASSWORD_USERS`] users in
/// all and [`MAX_PASSWORD_FIELD_BYTES`] per name or hash.
fn compile_passwords(table: &RouteTable) -> Result<HashMap<String, HashMap<Vec<u8>, PasswordHash>>, String> {
    let users: usize = table.passwords.values().map(|list| list.len()).sum();
    if users > MAX_PASSWORD_USERS {
        return Err(format!("{users} basic-auth users, more than the {MAX_PASSWORD_USERS} allowed"));
    }
    let mut lists = HashMap::with_capacity(table.passwords.len());
    for (key, list) in &table.passwords {
        let mut compiled = HashMap::with_capacity(list.len());
        for (user, stored) in list {
            if user.len() > MAX_PASSWORD_FIELD_BYTES || stored.len() > MAX_PASSWORD_FIELD_BYTES {
                return Err(format!("password list {key:?}: a user name or hash is longer than {MAX_PASSWORD_FIELD_BYTES} bytes"));
            }
            compiled.insert(user.as_bytes().to_vec(), PasswordHash::parse(stored));
        }
        lists.insert(key.clone(), compiled);
    }
    Ok(lists)
}

/// Every `Forward` of a table: routes, host fallbacks and the default backend.
pub fn forwards(table: &RouteTable) -> impl Iterator<Item = &Forward> {
    let host_actions = table.hosts.iter().flat_map(|host| host.routes.iter().map(|r| &r.action).chain(host.fallback.as_ref()));
    host_actions.chain(table.default_backend.as_ref()).filter_map(|action| match action {
        RouteAction::Forward(forward) => Some(forward),
        _ => None,
    })
}

fn check_template(template: &str) -> Result<(), String> {
    check_header_value("rewrite template", template)?;
    if template.len() > MAX_REWRITE_TEMPLATE_BYTES {
        return Err(format!(
            "rewrite template is {} bytes, more than the {MAX_REWRITE_TEMPLATE_BYTES} allowed",
            template.len()
        ));
    }
    let bytes = template.as_bytes();
    let variable = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'$' && !bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
    if variable {
        return Err(format!(
            "rewrite template {template:?}: only $0..$9 (regex captures) are supported after '$', not nginx variables"
        ));
    }
    let substitutions = actions::substitutions(template);
    if substitutions > MAX_REWRITE_SUBSTITUTIONS {
        return Err(format!(
            "rewrite template has {substitutions} $N substitutions, more than the {MAX_REWRITE_SUBSTITUTIONS} allowed"
        ));
    }
    Ok(())
}

fn check_replace_prefix(replacement: &str) -> Result<(), String> {
    if !replacement.is_empty() && !replacement.starts_with('/') {
        return Err(format!("ReplacePrefix value {replacement:?} must start with '/'"));
    }
    if replacement.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b == b'#') {
        return Err(format!("ReplacePrefix value {replacement:?} contains a control character, space, '?' or '#'"));
    }
    Ok(())
}

/// A policy key is sent as a header and looked up by Envoy as is, so it is kept to `[0-9a-z-]`.
/// Empty: the default policy.
fn check_policy_key(key: &str) -> Result<(), String> {
    if key.len() > MAX_POLICY_KEY_BYTES {
        return Err(format!("policy key is {} bytes, more than the {MAX_POLICY_KEY_BYTES} allowed", key.len()));
    }
    if !key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(format!("policy key {key:?} may only contain lower-case letters, digits and '-'"));
    }
    Ok(())
}

/// Exact and Prefix values are absolute paths without query or fragment (those are never part of
/// the matched path, so such a rule could never match).
fn check_literal_path(kind: &str, value: &str) -> Result<(), String> {
    if !value.starts_with('/') {
        return Err(format!("{kind} path {value:?} must start with '/'"));
    }
    if value.contains(['?', '#']) {
        return Err(format!("{kind} path {value:?} contains '?' or '#' and could never match (the query is not part of the path)"));
    }
    Ok(())
}

/// Values that end up in a request header must be non-empty and free of control characters and
/// spaces (no header injection, no values Envoy would reject).
fn check_header_value(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(format!("{what} {value:?} contains a control character or space"));
    }
    Ok(())
}

/// Compile a route regex the way the matcher uses it: anchored at the start, not at the end.
fn compile_route_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_REGEX_PATTERN_BYTES {
        return Err(format!("regex is {} bytes, more than the {MAX_REGEX_PATTERN_BYTES} allowed", pattern.len()));
    }
    regex::RegexBuilder::new(&format!("^(?:{pattern})"))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regex {pattern:?}: {e}"))
}

/// A Prefix value without its trailing slashes (`/` becomes the empty prefix that matches all).
fn normalize_prefix(value: &str) -> &str {
    value.trim_end_matches('/')
}

/// Escape matchit's special characters (`{`, `}`) so the value is a static route.
fn escape_matchit(value: &str) -> String {
    value.replace('{', "{{").replace('}', "}}")
}

/// Insert the three matchit routes that together mean "element-wise prefix `value`":
/// the prefix itself, the prefix with a trailing slash, and everything below it.
fn insert_prefix(router: &mut matchit::Router<PrefixHit>, value: &str, hit: PrefixHit) -> Result<(), String> {
    let normalized = normalize_prefix(value);
    let escaped = escape_matchit(normalized);
    let mut routes = Vec::with_capacity(3);
    if !escaped.is_empty() {
        routes.push(escaped.clone());
    }
    routes.push(format!("{escaped}/"));
    routes.push(format!("{escaped}/{{*rest}}"));
    for route in routes {
        router
            .insert(route.as_str(), hit)
            .map_err(|e| format!("Prefix path {value:?} cannot be indexed (matchit route {route:?}): {e}"))?;
    }
    Ok(())
}

/// The host part of an authority, lower-cased: port removed (also for `[v6]:port`), one trailing
/// dot removed (`foo.com.` is `foo.com`, as nginx treats it). `None` if it is not UTF-8 or empty.
fn normalize_authority(authority: &[u8]) -> Option<Cow<'_, str>> {
    let host = host_of(authority);
    if host.is_empty() {
        return None;
    }
    let host = std::str::from_utf8(host).ok()?;
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}

/// Which route of a host matched, and what the rewrite needs to know about the match.
struct PathHit<'i> {
    route: usize,
    /// Length of the matched part of the path (exact: all; prefix: the normalised prefix; regex:
    /// the regex match).
    matched_len: usize,
    /// The route's regex, for a `Regex` route (its captures feed `PathRewrite::Template`).
    regex: Option<&'i Regex>,
}

impl PathIndex {
    fn compile(host: &str, routes: &[Route]) -> Result<PathIndex, CompileError> {
        let mut index = PathIndex::default();
        let mut prefix_router: Option<matchit::Router<PrefixHit>> = None;
        let mut seen_prefixes: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for (i, route) in routes.iter().enumerate() {
            let error = |reason: String| CompileError {
                host: Some(host.to_string()),
                route: Some(i),
                origin: route.origin.clone(),
                reason,
            };
            check_route_answers(route).map_err(error)?;
            match &route.path {
                PathMatch::Exact(value) => {
                    check_literal_path("Exact", value).map_err(error)?;
                    index.exact.entry(value.clone()).or_insert(i);
                }
                PathMatch::Prefix(value) => {
                    check_literal_path("Prefix", value).map_err(error)?;
                    let normalized = normalize_prefix(value);
                    // The first route with a given prefix wins, like the first Exact.
                    if seen_prefixes.insert(normalized) {
                        let router = prefix_router.get_or_insert_with(matchit::Router::new);
                        insert_prefix(router, value, PrefixHit { route: i, prefix_len: normalized.len() })
                            .map_err(error)?;
                    }
                }
                PathMatch::Regex(pattern) => {
                    if index.regexes.len() >= MAX_REGEX_ROUTES_PER_HOST {
                        return Err(error(format!(
                            "more than {MAX_REGEX_ROUTES_PER_HOST} regex routes on one host"
                        )));
                    }
                    let regex = compile_route_regex(pattern).map_err(error)?;
                    index.regexes.push((i, regex));
                }
            }
        }
        index.prefixes = prefix_router;
        Ok(index)
    }

    fn lookup(&self, path: &str) -> Option<PathHit<'_>> {
        if let Some(&route) = self.exact.get(path) {
            return Some(PathHit { route, matched_len: path.len(), regex: None });
        }
        for (route, regex) in &self.regexes {
            if let Some(m) = regex.find(path) {
                return Some(PathHit { route: *route, matched_len: m.end(), regex: Some(regex) });
            }
        }
        let router = self.prefixes.as_ref()?;
        let hit = router.at(path).ok()?;
        Some(PathHit { route: hit.value.route, matched_len: hit.value.prefix_len, regex: None })
    }
}

impl HostNames {
    /// Register entry `i` under `host`; refuses a malformed or repeated name.
    fn insert(&mut self, host: &str, i: usize) -> Result<(), String> {
        let name = host.to_ascii_lowercase();
        let duplicate = if name.is_empty() {
            self.hostless.replace(i).is_some()
        } else if let Some(suffix) = name.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err("a wildcard host must be `*.` followed by a domain without `*`".into());
            }
            self.wildcard.insert(suffix.to_string(), i).is_some()
        } else {
            if name.contains('*') {
                return Err("`*` is only allowed as the whole first label (`*.foo.com`)".into());
            }
            if name.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b':' || b == b'/') {
                return Err("a host must not contain a port, '/', spaces or control characters".into());
            }
            self.exact.insert(name, i).is_some()
        };
        if duplicate {
            return Err("the host appears more than once in the table".into());
        }
        Ok(())
    }

    /// Index of the entry serving `authority`: exact, then wildcard, then host-less.
    fn select(&self, authority: &[u8]) -> Option<usize> {
        if let Some(host) = normalize_authority(authority) {
            if let Some(&i) = self.exact.get(host.as_ref()) {
                return Some(i);
            }
            if let Some((label, suffix)) = host.split_once('.') {
                if !label.is_empty() {
                    if let Some(&i) = self.wildcard.get(suffix) {
                        return Some(i);
                    }
                }
            }
        }
        self.hostless
    }
}

/// Whether `given` equals the table's `secret`, in a time that does not depend on where they differ.
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    given.len() == secret.len() && given.iter().zip(secret).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Table-level checks: schema, default backend, total number of regexes.
fn check_table(table: &RouteTable) -> Result<(), String> {
    if table.schema != SCHEMA_VERSION {
        return Err(format!(
            "schema {} is not supported (this filter understands schema {SCHEMA_VERSION})",
            table.schema
        ));
    }
    if let Some(default) = &table.default_backend {
        check_action(default).map_err(|e| format!("default_backend: {e}"))?;
    }
    for cluster in &table.error_page_clusters {
        check_header_value("error page cluster", cluster)?;
    }
    if !table.error_page_clusters.windows(2).all(|pair| pair[0] < pair[1]) {
        return Err("error_page_clusters must be sorted without duplicates".into());
    }
    let token = &table.error_page_token;
    if !table.error_page_clusters.is_empty() && (token.len() < MIN_ERROR_PAGE_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic())) {
        return Err(format!("error_page_token must have at least {MIN_ERROR_PAGE_TOKEN} printable characters and no space"));
    }
    let regex_routes = table.hosts.iter().flat_map(|h| &h.routes).filter(|r| matches!(r.path, PathMatch::Regex(_))).count();
    if regex_routes > MAX_REGEX_ROUTES {
        return Err(format!("{regex_routes} regex routes, more than the {MAX_REGEX_ROUTES} allowed"));
    }
    Ok(())
}

/// What a host answers with besides its routes: its `fallback` and its `app_root`.
fn check_host_answers(vhost: &VirtualHost) -> Result<(), String> {
    if let Some(fallback) = &vhost.fallback {
        check_action(fallback).map_err(|e| format!("fallback: {e}"))?;
    }
    if let Some(app_root) = &vhost.app_root {
        check_redirect(app_root).map_err(|e| format!("app_root: {e}"))?;
    }
    if let Some(rule) = &vhost.client_certificate {
        crate::client_cert::check_rule(rule)?;
    }
    Ok(())
}

/// Every redirect a table can answer with: redirect actions (routes, fallbacks, default backend),
/// `https_redirect`s and `app_root`s.
fn redirects(table: &RouteTable) -> impl Iterator<Item = &Redirect> {
    let host_actions = table.hosts.iter().flat_map(|h| h.fallback.iter().chain(h.routes.iter().map(|r| &r.action)));
    let actions = table.default_backend.iter().chain(host_actions).filter_map(|action| match action {
        RouteAction::Redirect(redirect) => Some(redirect),
        RouteAction::Forward(_) | RouteAction::Respond(_) => None,
    });
    let host_redirects = table
        .hosts
        .iter()
        .flat_map(|h| h.app_root.iter().chain(h.routes.iter().filter_map(|r| r.https_redirect.as_ref())));
    actions.chain(host_redirects)
}

impl CompiledTable {
    /// Compile a table; refuses an unknown schema, an invalid regex, an empty backend list, a
    /// malformed redirect, …
    pub fn compile(table: RouteTable) -> Result<CompiledTable, CompileError> {
        Ok(CompiledTable { index: Indexes::build(&table)?, table })
    }

    /// Whether [`CompiledTable::compile`] accepts `table` (the same checks, without keeping the
    /// result or copying the table): what the control plane asks before it sends one.
    pub fn check(table: &RouteTable) -> Result<(), CompileError> {
        Indexes::build(table).map(drop)
    }
}

/// Everything [`CompiledTable`] holds besides the table itself.
#[derive(Debug)]
struct Indexes {
    /// Which entry of `table.hosts` / `vhosts` serves a host name.
    hosts: HostNames,
    /// Path indexes, parallel to `table.hosts`.
    vhosts: Vec<PathIndex>,
    /// Routing depends on whether the request came over HTTPS (an `https_redirect`, or a redirect
    /// that takes the request's scheme).
    needs_scheme: bool,
    /// Some redirect writes the port the client connected to.
    needs_listener_port: bool,
    /// The compiled `CanaryHeaderRule::Pattern`s and `Cors::origin_pattern`s, by pattern.
    header_patterns: HashMap<String, Regex>,
    /// `table.passwords` with every stored hash read: list key -> user -> hash.
    passwords: HashMap<String, HashMap<Vec<u8>, PasswordHash>>,
    /// Some host asks for client certificates.
    client_certificates: bool,
}

impl Indexes {
    fn build(table: &RouteTable) -> Result<Indexes, CompileError> {
        let table_error = |reason: String| CompileError { host: None, route: None, origin: String::new(), reason };
        check_table(table).map_err(table_error)?;
        let mut hosts = HostNames::default();
        let mut vhosts = Vec::with_capacity(table.hosts.len());
        for (i, vhost) in table.hosts.iter().enumerate() {
            let host_error = |reason: String| CompileError {
                host: Some(vhost.host.clone()),
                route: None,
                origin: String::new(),
                reason,
            };
            hosts.insert(&vhost.host, i).map_err(host_error)?;
            check_host_answers(vhost).map_err(host_error)?;
            vhosts.push(PathIndex::compile(&vhost.host, &vhost.routes)?);
        }
        // An `https_redirect` needs the scheme to know whether it applies, whatever its location.
        let https_redirects = table.hosts.iter().flat_map(|h| &h.routes).any(|r| r.https_redirect.is_some());
        let needs_scheme = https_redirects || redirects(table).any(|r| redirect::reads_scheme(&r.location));
        let needs_listener_port = redirects(table).any(|r| redirect::reads_listener_port(&r.location));
        let header_patterns = compile_header_patterns(table).map_err(table_error)?;
        let passwords = compile_passwords(table).map_err(table_error)?;
        let client_certificates = table.hosts.iter().any(|h| h.client_certificate.is_some());
        Ok(Indexes { hosts, vhosts, needs_scheme, needs_listener_port, header_patterns, passwords, client_certificates })
    }
}

impl CompiledTable {
    /// The compiled `match_cn` of a client-certificate rule (compiled with the table).
    pub fn subject_pattern(&self, rule: &ClientCertificate) -> Option<&Regex> {
        rule.match_cn.as_ref().and_then(|pattern| self.index.header_patterns.get(pattern))
    }

    /// The client-certificate rule of the host `authority` selects, if any (see
    /// [`crate::client_cert`]); no lookup at all when no host has one.
    pub fn client_certificate(&self, authority: &[u8]) -> Option<&ClientCertificate> {
        if !self.index.client_certificates {
            return None;
        }
        let index = self.index.hosts.select(authority)?;
        self.table.hosts.get(index)?.client_certificate.as_ref()
    }

    /// Whether requests may carry [`crate::table::ERROR_PAGE_HEADER`] (some Ingress has custom
    /// error pages); when `false`, the host shim need not read it.
    pub fn has_error_pages(&self) -> bool {
        !self.table.error_page_clusters.is_empty()
    }

    /// The error-page cluster an [`crate::table::ERROR_PAGE_HEADER`] value names, if it starts
    /// with the table's token and the table lists the cluster.
    pub fn error_page_cluster(&self, value: &[u8]) -> Option<&str> {
        let space = value.iter().position(|&b| b == b' ')?;
        let (token, cluster) = (value.get(..space)?, value.get(space + 1..)?);
        if self.table.error_page_clusters.is_empty() || !same_secret(token, self.table.error_page_token.as_bytes()) {
            return None;
        }
        let clusters = &self.table.error_page_clusters;
        let index = clusters.binary_search_by(|listed| listed.as_bytes().cmp(cluster)).ok()?;
        clusters.get(index).map(String::as_str)
    }

    /// The table's `version` string.
    pub fn version(&self) -> &str {
        &self.table.version
    }

    /// The table this was compiled from.
    pub fn table(&self) -> &RouteTable {
        &self.table
    }

    /// Whether routing may depend on [`RequestParts::https`]: some route has an `https_redirect`,
    /// or some redirect takes its scheme from the request. When `false`, the host shim need not
    /// read `x-forwarded-proto`.
    pub fn needs_scheme(&self) -> bool {
        self.index.needs_scheme
    }

    /// Whether some redirect writes [`RequestParts::listener_port`] (`HostPart::WithListenerPort`).
    /// When `false`, the host shim need not read `x-forwarded-port`.
    pub fn needs_listener_port(&self) -> bool {
        self.index.needs_listener_port
    }

    /// Whether a request whose route has `canary` goes to the canary cluster (see [`crate::canary`]).
    /// `random` is any value, drawn independently of the one given to [`CompiledTable::route`].
    pub fn chooses_canary(&self, canary: &Canary, headers: &impl HeaderLookup, random: u64) -> bool {
        let pattern = match canary.header.as_ref().map(|h| &h.rule) {
            Some(CanaryHeaderRule::Pattern(pattern)) => self.index.header_patterns.get(pattern),
            _ => None,
        };
        canary::chooses_canary(canary, pattern, headers, random)
    }

    /// Whether `authorization` (the request's `Authorization` header) holds the password of a user
    /// of `basic`'s list (see [`crate::basic`]). Slow for bcrypt by design: callers cache successes.
    pub fn basic_auth_allows(&self, basic: &BasicAuth, authorization: &[u8]) -> bool {
        let Some((user, password)) = crate::basic::credentials(authorization) else { return false };
        self.index.passwords.get(&basic.passwords).and_then(|list| list.get(&user)).is_some_and(|hash| hash.verify(&password))
    }

    /// The policy a request of a route with `cors` gets when its origin is allowed (see
    /// [`crate::cors`]); `None`: the route's own policy.
    pub fn cors_policy<'t>(&self, cors: &'t Cors, headers: &impl HeaderLookup) -> Option<&'t str> {
        let origin = cors.origin_pattern.as_ref().and_then(|pattern| self.index.header_patterns.get(pattern));
        cors::cors_policy(cors, origin, headers)
    }

    /// Route one request. `random` picks among weighted backends (any value is valid).
    pub fn route(&self, request: &RequestParts<'_>, random: u64) -> Decision<'_> {
        if request.path.len() > MAX_REQUEST_PATH_BYTES {
            return Decision {
                vhost: None,
                route: None,
                via: Via::TooLong,
                outcome: Outcome::Respond { status: 414, body: URI_TOO_LONG_BODY },
            };
        }
        let selected = self.index.hosts.select(request.authority).and_then(|i| Some((self.table.hosts.get(i)?, self.index.vhosts.get(i)?)));
        if let Some((vhost, index)) = selected {
            if let Some(decision) = route_in_host(vhost, index, request, random) {
                return decision;
            }
        }
        let vhost = selected.map(|(vhost, _)| vhost.host.as_str());
        match &self.table.default_backend {
            Some(default) => Decision {
                vhost,
                route: None,
                via: Via::DefaultBackend,
                outcome: actions::apply(default, request, None, random),
            },
            None => Decision {
                vhost,
                route: None,
                via: Via::NotFound,
                outcome: Outcome::Respond { status: 404, body: NOT_FOUND_BODY },
            },
        }
    }
}

/// The decision of the selected host — its `app_root`, a matching route, or its `fallback` — or
/// `None` when none applies (the table's default backend decides).
fn route_in_host<'t>(
    vhost: &'t VirtualHost,
    index: &'t PathIndex,
    request: &RequestParts<'_>,
    random: u64,
) -> Option<Decision<'t>> {
    let decision = |route: Option<&'t Route>, via: Via, outcome: Outcome<'t>| Decision {
        vhost: Some(vhost.host.as_str()),
        route,
        via,
        outcome,
    };
    let (path_bytes, query_bytes) = split_path(request.path);
    if let Some(app_root) = vhost.app_root.as_ref().filter(|_| path_bytes == b"/") {
        return Some(decision(None, Via::AppRoot, redirect::outcome(app_root, request)));
    }
    let path = String::from_utf8_lossy(path_bytes);
    if let Some(hit) = index.lookup(&path) {
        if let Some(route) = vhost.routes.get(hit.route) {
            let query = query_bytes.map(String::from_utf8_lossy);
            let matched = actions::MatchedPath {
                path: &path,
                query: query.as_deref(),
                matched_len: hit.matched_len,
                regex: hit.regex,
            };
            return Some(decision(Some(route), Via::Route, route_outcome(route, request, &matched, random)));
        }
    }
    let fallback = vhost.fallback.as_ref()?;
    Some(decision(None, Via::HostFallback, actions::apply(fallback, request, None, random)))
}

/// A matched route's answer: its `https_redirect` when the request is plain HTTP, else its action.
fn route_outcome<'t>(
    route: &'t Route,
    request: &RequestParts<'_>,
    matched: &actions::MatchedPath<'_>,
    random: u64,
) -> Outcome<'t> {
    match &route.https_redirect {
        Some(redirect) if !request.https => redirect::outcome(redirect, request),
        _ => actions::apply(&route.action, request, Some(matched), random),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::table::{CanaryHeader, HostPart, Location, PathPart, WeightedBackend};

    fn prefix(value: &str, cluster: &str) -> Route {
        Route { path: PathMatch::Prefix(value.into()), action: RouteAction::forward_to(cluster), origin: String::new(), https_redirect: None }
    }
    fn exact(value: &str, cluster: &str) -> Route {
        Route { path: PathMatch::Exact(value.into()), action: RouteAction::forward_to(cluster), origin: String::new(), https_redirect: None }
    }
    fn regex(value: &str, cluster: &str) -> Route {
        Route { path: PathMatch::Regex(value.into()), action: RouteAction::forward_to(cluster), origin: String::new(), https_redirect: None }
    }
    fn vhost(host: &str, routes: Vec<Route>) -> VirtualHost {
        VirtualHost { host: host.into(), routes, fallback: None, app_root: None, client_certificate: None }
    }
    fn table(hosts: Vec<VirtualHost>, default: Option<&str>) -> CompiledTable {
        CompiledTable::compile(RouteTable {
            schema: SCHEMA_VERSION,
            version: "test".into(),
            hosts,
            default_backend: default.map(RouteAction::forward_to),
            ..RouteTable::default()
        })
        .expect("test table compiles")
    }

    /// What a user would observe: the cluster the request goes to, or `status <n>`.
    fn served_by(table: &CompiledTable, authority: &str, path: &str) -> String {
        served_by_bytes(table, authority.as_bytes(), path.as_bytes())
    }
    fn served_by_bytes(table: &CompiledTable, authority: &[u8], path: &[u8]) -> String {
        served(table, &RequestParts::new(authority, path))
    }
    fn served(table: &CompiledTable, request: &RequestParts<'_>) -> String {
        match table.route(request, 0).outcome {
            Outcome::Forward { cluster, .. } => cluster.to_string(),
            Outcome::Respond { status, .. } => format!("status {status}"),
            Outcome::Redirect { status, location } => format!("redirect {status} {location}"),
        }
    }

    /// Every row of the "Examples" table of the Kubernetes Ingress concept page
    /// (kubernetes.io/docs/concepts/services-networking/ingress/#examples). Each rule's backend is
    /// named after its kind and path; "default" is the default backend.
    #[test]
    fn kubernetes_ingress_path_examples_table() {
        struct Row {
            rules: &'static [(&'static str, &'static str)],
            requests: &'static [&'static str],
            expected: &'static str,
        }
        let rows = [
            Row { rules: &[("Prefix", "/")], requests: &["/", "/foo", "/aaa/bbb/ccc", "/x?y=z"], expected: "Prefix:/" },
            Row { rules: &[("Exact", "/foo")], requests: &["/foo"], expected: "Exact:/foo" },
            Row { rules: &[("Exact", "/foo")], requests: &["/bar"], expected: "default" },
            Row { rules: &[("Exact", "/foo")], requests: &["/foo/"], expected: "default" },
            Row { rules: &[("Exact", "/foo/")], requests: &["/foo"], expected: "default" },
            Row { rules: &[("Prefix", "/foo")], requests: &["/foo", "/foo/"], expected: "Prefix:/foo" },
            Row { rules: &[("Prefix", "/foo/")], requests: &["/foo", "/foo/"], expected: "Prefix:/foo/" },
            Row { rules: &[("Prefix", "/aaa/bb")], requests: &["/aaa/bbb"], expected: "default" },
            Row { rules: &[("Prefix", "/aaa/bbb")], requests: &["/aaa/bbb"], expected: "Prefix:/aaa/bbb" },
            Row { rules: &[("Prefix", "/aaa/bbb/")], requests: &["/aaa/bbb"], expected: "Prefix:/aaa/bbb/" },
            Row { rules: &[("Prefix", "/aaa/bbb")], requests: &["/aaa/bbb/"], expected: "Prefix:/aaa/bbb" },
            Row { rules: &[("Prefix", "/aaa/bbb")], requests: &["/aaa/bbb/ccc"], expected: "Prefix:/aaa/bbb" },
            Row { rules: &[("Prefix", "/aaa/bbb")], requests: &["/aaa/bbbxyz"], expected: "default" },
            Row { rules: &[("Prefix", "/"), ("Prefix", "/aaa")], requests: &["/aaa/ccc"], expected: "Prefix:/aaa" },
            Row {
                rules: &[("Prefix", "/"), ("Prefix", "/aaa"), ("Prefix", "/aaa/bbb")],
                requests: &["/aaa/bbb"],
                expected: "Prefix:/aaa/bbb",
            },
            Row {
                rules: &[("Prefix", "/"), ("Prefix", "/aaa"), ("Prefix", "/aaa/bbb")],
                requests: &["/ccc"],
                expected: "Prefix:/",
            },
            Row { rules: &[("Prefix", "/aaa")], requests: &["/ccc"], expected: "default" },
            Row { rules: &[("Prefix", "/foo"), ("Exact", "/foo")], requests: &["/foo"], expected: "Exact:/foo" },
        ];
        for row in rows {
            // Both rule orders: precedence must not depend on the order of Prefix/Exact rules.
            for reversed in [false, true] {
                let mut routes: Vec<Route> = row
                    .rules
                    .iter()
                    .map(|&(kind, path)| {
                        let name = format!("{kind}:{path}");
                        if kind == "Exact" { exact(path, &name) } else { prefix(path, &name) }
                    })
                    .collect();
                if reversed {
                    routes.reverse();
                }
                let compiled = table(vec![vhost("", routes)], Some("default"));
                for request in row.requests {
                    assert_eq!(served_by(&compiled, "any.example", request), row.expected, "rules {:?} request {request}", row.rules);
                }
            }
        }
    }

    /// The "Hostname wildcards" table of the Kubernetes Ingress concept page.
    #[test]
    fn kubernetes_ingress_hostname_wildcards_table() {
        let compiled = table(vec![vhost("*.foo.com", vec![prefix("/", "wildcard-foo-com")])], None);
        let rows = [
            ("bar.foo.com", "wildcard-foo-com"), // matches based on shared suffix
            ("baz.bar.foo.com", "status 404"),   // wildcard only covers a single DNS label
            ("foo.com", "status 404"),           // wildcard only covers a single DNS label
        ];
        for (host, expected) in rows {
            assert_eq!(served_by(&compiled, host, "/"), expected, "host {host}");
        }
    }

    /// kubernetes-sigs/ingress-controller-conformance features/host_rules.feature.
    #[test]
    fn conformance_host_rules() {
        let compiled = table(
            vec![
                vhost("*.foo.com", vec![prefix("/", "wildcard-foo-com")]),
                vhost("foo.bar.com", vec![prefix("/", "foo-bar-com")]),
            ],
            None,
        );
        let rows = [
            ("foo.bar.com", "foo-bar-com"),
            ("subdomain.bar.com", "status 404"),
            ("bar.foo.com", "wildcard-foo-com"),
            ("baz.bar.foo.com", "status 404"),
            ("foo.com", "status 404"),
        ];
        for (host, expected) in rows {
            assert_eq!(served_by(&compiled, host, "/"), expected, "host {host}");
        }
    }

    /// kubernetes-sigs/ingress-controller-conformance features/path_rules.feature (no default
    /// backend: misses are 404).
    #[test]
    fn conformance_path_rules() {
        let compiled = table(
            vec![
                vhost("exact-path-rules", vec![exact("/foo", "foo-exact")]),
                vhost(
                    "prefix-path-rules",
                    vec![
                        prefix("/foo", "foo-prefix"),
                        prefix("/aaa/bbb", "aaa-slash-bbb-prefix"),
                        prefix("/aaa", "aaa-prefix"),
                    ],
                ),
                vhost("mixed-path-rules", vec![prefix("/foo", "foo-prefix"), exact("/foo", "foo-exact")]),
                vhost(
                    "trailing-slash-path-rules",
                    vec![prefix("/aaa/bbb/", "aaa-slash-bbb-slash-prefix"), exact("/foo/", "foo-slash-exact")],
                ),
            ],
            None,
        );
        let rows = [
            ("exact-path-rules", "/foo", "foo-exact"),
            ("exact-path-rules", "/foo/", "status 404"),
            ("exact-path-rules", "/FOO", "status 404"),
            ("exact-path-rules", "/bar", "status 404"),
            ("prefix-path-rules", "/foo", "foo-prefix"),
            ("prefix-path-rules", "/foo/", "foo-prefix"),
            ("prefix-path-rules", "/FOO", "status 404"),
            ("prefix-path-rules", "/aaa/bbb", "aaa-slash-bbb-prefix"),
            ("prefix-path-rules", "/aaa/bbb/ccc", "aaa-slash-bbb-prefix"),
            ("prefix-path-rules", "/aaa/ccc", "aaa-prefix"),
            ("prefix-path-rules", "/aaaccc", "status 404"),
            ("mixed-path-rules", "/foo", "foo-exact"),
            ("mixed-path-rules", "/foo/x", "foo-prefix"),
            ("trailing-slash-path-rules", "/aaa/bbb", "aaa-slash-bbb-slash-prefix"),
            ("trailing-slash-path-rules", "/aaa/bbb/", "aaa-slash-bbb-slash-prefix"),
            ("trailing-slash-path-rules", "/foo", "status 404"),
            ("trailing-slash-path-rules", "/foo/", "foo-slash-exact"),
        ];
        for (host, path, expected) in rows {
            assert_eq!(served_by(&compiled, host, path), expected, "host {host} path {path}");
        }
    }

    /// kubernetes-sigs/ingress-controller-conformance features/default_backend.feature: no rules
    /// match and no default backend -> 404.
    #[test]
    fn conformance_default_backend_is_404_without_one() {
        let compiled = table(vec![vhost("foo.bar", vec![prefix("/only", "svc")])], None);
        for path in ["/test", "/", "/onlyx"] {
            let decision = compiled.route(&RequestParts::new(b"foo.bar", path.as_bytes()), 0);
            assert_eq!(decision.via, Via::NotFound, "path {path}");
            assert_eq!(decision.outcome, Outcome::Respond { status: 404, body: NOT_FOUND_BODY });
        }
    }

    #[test]
    fn host_matching_ignores_case_port_and_one_trailing_dot() {
        let compiled = table(
            vec![vhost("foo.example.com", vec![prefix("/", "foo")]), vhost("*.wild.com", vec![prefix("/", "wild")])],
            None,
        );
        let rows = [
            ("foo.example.com", "foo"),
            ("FOO.Example.COM", "foo"),
            ("foo.example.com:8080", "foo"),
            ("foo.example.com.", "foo"),
            ("foo.example.com.:443", "foo"),
            ("A.WILD.COM:80", "wild"),
            ("foo.example.co", "status 404"),
            ("xfoo.example.com", "status 404"),
            (".wild.com", "status 404"),
            ("[::1]:8080", "status 404"),
            ("", "status 404"),
        ];
        for (host, expected) in rows {
            assert_eq!(served_by(&compiled, host, "/"), expected, "host {host:?}");
        }
    }

    #[test]
    fn ipv6_literal_authority_loses_only_its_port() {
        assert_eq!(normalize_authority(b"[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(normalize_authority(b"[::1]").as_deref(), Some("[::1]"));
        assert_eq!(normalize_authority(b"Example.COM:1").as_deref(), Some("example.com"));
        assert_eq!(normalize_authority(b":80"), None);
        assert_eq!(normalize_authority(b"\xff\xfe.com"), None);
    }

    #[test]
    fn exact_host_beats_wildcard_beats_hostless() {
        let compiled = table(
            vec![
                vhost("", vec![prefix("/", "hostless")]),
                vhost("*.example.com", vec![prefix("/", "wildcard")]),
                vhost("api.example.com", vec![prefix("/", "exact")]),
            ],
            None,
        );
        assert_eq!(served_by(&compiled, "api.example.com", "/"), "exact");
        assert_eq!(served_by(&compiled, "www.example.com", "/"), "wildcard");
        assert_eq!(served_by(&compiled, "a.b.example.com", "/"), "hostless");
        assert_eq!(served_by(&compiled, "example.com", "/"), "hostless");
        assert_eq!(served_by(&compiled, "", "/"), "hostless");
        assert_eq!(served_by_bytes(&compiled, b"\xff.example.com", b"/"), "hostless");
    }

    #[test]
    fn selected_host_never_falls_through_to_another_entrys_paths() {
        let mut with_fallback = vhost("b.com", vec![prefix("/b", "b")]);
        with_fallback.fallback = Some(RouteAction::forward_to("b-fallback"));
        let hosts = vec![
            vhost("a.com", vec![prefix("/a", "a")]),
            with_fallback,
            vhost("*.a.com", vec![prefix("/w", "w")]),
            vhost("", vec![prefix("/", "hostless")]),
        ];
        let compiled = table(hosts.clone(), Some("default"));
        assert_eq!(served_by(&compiled, "a.com", "/x"), "default");
        assert_eq!(served_by(&compiled, "x.a.com", "/x"), "default");
        assert_eq!(served_by(&compiled, "b.com", "/x"), "b-fallback");
        let decision = compiled.route(&RequestParts::new(b"b.com", b"/x"), 0);
        assert_eq!((decision.vhost, decision.via, decision.route), (Some("b.com"), Via::HostFallback, None));
        let decision = compiled.route(&RequestParts::new(b"a.com", b"/x"), 0);
        assert_eq!((decision.vhost, decision.via), (Some("a.com"), Via::DefaultBackend));

        let without_default = table(hosts, None);
        assert_eq!(served_by(&without_default, "a.com", "/x"), "status 404");
        assert_eq!(served_by(&without_default, "other.com", "/x"), "hostless");
    }

    #[test]
    fn unmatched_host_without_hostless_entry_uses_default_backend_then_404() {
        let hosts = vec![vhost("a.com", vec![prefix("/", "a")])];
        let compiled = table(hosts.clone(), Some("default"));
        let decision = compiled.route(&RequestParts::new(b"z.com", b"/"), 0);
        assert_eq!((decision.vhost, decision.via), (None, Via::DefaultBackend));
        assert_eq!(served_by(&table(hosts, None), "z.com", "/"), "status 404");
    }

    #[test]
    fn respond_actions_are_answered_by_the_filter() {
        let mut host = vhost("a.com", vec![Route {
            path: PathMatch::Prefix("/gone".into()),
            action: RouteAction::respond(503, "service missing"),
            origin: "default/a: spec.rules[0].http.paths[0]".into(),
            https_redirect: None,
        }]);
        host.fallback = Some(RouteAction::respond(418, ""));
        let compiled = table(vec![host], None);
        let decision = compiled.route(&RequestParts::new(b"a.com", b"/gone/x"), 0);
        assert_eq!(decision.outcome, Outcome::Respond { status: 503, body: "service missing" });
        assert_eq!(decision.route.map(|r| r.origin.as_str()), Some("default/a: spec.rules[0].http.paths[0]"));
        assert_eq!(served_by(&compiled, "a.com", "/other"), "status 418");
    }

    #[test]
    fn query_string_and_fragment_never_take_part_in_matching() {
        let compiled = table(vec![vhost("", vec![exact("/foo", "exact"), prefix("/bar", "prefix")])], None);
        let rows = [
            ("/foo?x=1", "exact"),
            ("/foo?/bar", "exact"),
            ("/foo#frag", "exact"),
            ("/bar?foo", "prefix"),
            ("/barx?/bar", "status 404"),
            ("/?/foo", "status 404"),
        ];
        for (path, expected) in rows {
            assert_eq!(served_by(&compiled, "h", path), expected, "path {path}");
        }
    }

    #[test]
    fn path_precedence_exact_then_first_regex_then_longest_prefix() {
        let compiled = table(
            vec![vhost(
                "",
                vec![
                    prefix("/api/v1/users", "long-prefix"),
                    regex("/api/v[0-9]+", "regex-1"),
                    regex("/api", "regex-2"),
                    exact("/api/v1/users", "exact"),
                    prefix("/", "root"),
                ],
            )],
            None,
        );
        let rows = [
            ("/api/v1/users", "exact"),
            ("/api/v1/users/7", "regex-1"), // regex beats the longer Prefix (ingress-nginx: regex locations first)
            ("/api/x", "regex-2"),
            ("/apix", "regex-2"), // regex is not element-wise and not anchored at the end
            ("/x/api/v1", "root"), // regex is anchored at the start
            ("/", "root"),
        ];
        for (path, expected) in rows {
            assert_eq!(served_by(&compiled, "h", path), expected, "path {path}");
        }
    }

    #[test]
    fn first_of_duplicate_paths_wins() {
        let compiled = table(
            vec![vhost("", vec![exact("/e", "e1"), exact("/e", "e2"), prefix("/p/", "p1"), prefix("/p", "p2")])],
            None,
        );
        assert_eq!(served_by(&compiled, "h", "/e"), "e1");
        assert_eq!(served_by(&compiled, "h", "/p/x"), "p1");
    }

    #[test]
    fn longest_prefix_wins_with_backtracking_across_branches() {
        let compiled = table(
            vec![vhost(
                "",
                vec![
                    prefix("/", "root"),
                    prefix("/foo", "foo"),
                    prefix("/foobar", "foobar"),
                    prefix("/foo/bar/baz", "foo-bar-baz"),
                    prefix("/f", "f"),
                ],
            )],
            None,
        );
        let rows = [
            ("/foob", "root"),
            ("/fo", "root"),
            ("/f", "f"),
            ("/f/oo", "f"),
            ("/foo", "foo"),
            ("/foo/", "foo"),
            ("/foo/bar", "foo"),
            ("/foo/bar/ba", "foo"),
            ("/foo/bar/baz", "foo-bar-baz"),
            ("/foo/bar/baz/", "foo-bar-baz"),
            ("/foo/bar/bazz", "foo"),
            ("/foobar", "foobar"),
            ("/foobar/x", "foobar"),
            ("/foobarx", "root"),
            ("//foo", "root"),
            ("/foo//bar", "foo"),
        ];
        for (path, expected) in rows {
            assert_eq!(served_by(&compiled, "h", path), expected, "path {path}");
        }
    }

    /// `{`, `}`, `*` and `:` are special to matchit (or were, in older versions); they must be plain
    /// characters in our Exact and Prefix paths.
    #[test]
    fn matchit_special_characters_are_literal_path_characters() {
        let compiled = table(
            vec![vhost(
                "",
                vec![
                    prefix("/a{b}", "braces"),
                    prefix("/{*rest}", "fake-catch-all"),
                    prefix("/users/:id", "colon"),
                    prefix("/star/*", "star"),
                    prefix("/{", "open"),
                    prefix("/}}", "close2"),
                    exact("/x{y}z", "exact-braces"),
                    exact("/{id}", "exact-param-like"),
                ],
            )],
            None,
        );
        let rows = [
            ("/a{b}", "braces"),
            ("/a{b}/c", "braces"),
            ("/aXb", "status 404"),
            ("/a{b}c", "status 404"),
            ("/{*rest}", "fake-catch-all"),
            ("/{*rest}/deeper", "fake-catch-all"),
            ("/anything/else", "status 404"),
            ("/users/:id", "colon"),
            ("/users/:id/x", "colon"),
            ("/users/7", "status 404"),
            ("/star/*", "star"),
            ("/star/*/x", "star"),
            ("/star/x", "status 404"),
            ("/{", "open"),
            ("/{/x", "open"),
            ("/}}", "close2"),
            ("/}", "status 404"),
            ("/x{y}z", "exact-braces"),
            ("/xyz", "status 404"),
            ("/{id}", "exact-param-like"),
            ("/7", "status 404"),
        ];
        for (path, expected) in rows {
            assert_eq!(served_by(&compiled, "h", path), expected, "path {path}");
        }
    }

    #[test]
    fn regex_floods_and_rewrite_bombs_are_refused_at_compile_time() {
        use crate::limits::{MAX_REGEX_PATTERN_BYTES, MAX_REGEX_ROUTES_PER_HOST, MAX_REWRITE_SUBSTITUTIONS};
        let flood: Vec<Route> = (0..=MAX_REGEX_ROUTES_PER_HOST).map(|i| regex(&format!("/f{i}/"), "c")).collect();
        let error = CompiledTable::compile(RouteTable { schema: SCHEMA_VERSION, hosts: vec![vhost("h", flood)], ..RouteTable::default() })
            .err()
            .map(|e| (e.route, e.reason));
        assert_eq!(error, Some((Some(MAX_REGEX_ROUTES_PER_HOST), format!("more than {MAX_REGEX_ROUTES_PER_HOST} regex routes on one host"))));
        let long = regex(&"a".repeat(MAX_REGEX_PATTERN_BYTES + 1), "c");
        assert!(check_route(&long).is_err_and(|e| e.contains("bytes, more than")));
        let bomb = |n: usize| Route {
            path: PathMatch::Regex("/b(.*)".into()),
            action: RouteAction::Forward(Forward {
                backends: vec![WeightedBackend { cluster: "c".into(), weight: 1 }],
                rewrite: Some(PathRewrite::Template("$0".repeat(n))),
                host_rewrite: None,
                policy: String::new(),
                canary: None,
                cors: None,
                auth: None,
                basic_auth: None,
                connection_limit: None,
                response: None,
            }),
            origin: String::new(),
            https_redirect: None,
        };
        assert!(check_route(&bomb(MAX_REWRITE_SUBSTITUTIONS)).is_ok());
        assert!(check_route(&bomb(MAX_REWRITE_SUBSTITUTIONS + 1)).is_err_and(|e| e.contains("substitutions")));
        assert!(check_route(&bomb(600)).is_err_and(|e| e.contains("rewrite template is 1200 bytes")));
    }

    #[test]
    fn odd_and_hostile_requests_never_panic() {
        let compiled = table(vec![vhost("", vec![prefix("/a", "a"), regex("(?i)/r(/|$)(.*)", "r")])], Some("default"));
        // Over 8 KiB: 414 before any matching, as nginx's request-line limit.
        let huge = format!("/a/{}", "x".repeat(1 << 20));
        assert_eq!(served_by(&compiled, "h", &huge), "status 414");
        let long = format!("/a/{}", "x".repeat(8000));
        assert_eq!(served_by(&compiled, "h", &long), "a");
        let deep_r = format!("/r/{}", "y/".repeat(4000));
        assert_eq!(served_by(&compiled, "h", &deep_r), "r");
        let deep = "/a".repeat(4096);
        assert_eq!(served_by(&compiled, "h", &deep), "a");
        assert_eq!(served_by_bytes(&compiled, b"h", b"/a/\xff\xfe"), "a");
        assert_eq!(served_by_bytes(&compiled, b"\xc3\x28:\xff", b"/a"), "a");
        assert_eq!(served_by(&compiled, "h", ""), "default");
        assert_eq!(served_by(&compiled, "h", "*"), "default");
        assert_eq!(served_by(&compiled, "h", "?"), "default");
        assert_eq!(served_by(&compiled, "", ""), "default");
        assert_eq!(served_by(&compiled, &"h".repeat(100_000), "/a"), "a");
    }

    #[test]
    fn check_agrees_with_compile() {
        let base = |hosts: Vec<VirtualHost>| RouteTable { schema: SCHEMA_VERSION, hosts, ..RouteTable::default() };
        let limited = RouteAction::Forward(Forward {
            connection_limit: Some(Box::new(crate::table::ConnectionLimit { zone: "a b".into(), limit: 1, exempt: vec![] })),
            ..match forward_with(None, None, &[("c", 1)]) {
                RouteAction::Forward(forward) => forward,
                _ => unreachable!(),
            }
        });
        let tables = [
            base(vec![vhost("a", vec![exact("/x", "c"), regex("/y(.*)", "c")])]),
            base(vec![vhost("a", vec![]), vhost("a", vec![])]),
            base(vec![vhost("a", vec![regex("(", "c")])]),
            base(vec![vhost("a", vec![Route { path: PathMatch::Prefix("/".into()), action: limited, origin: String::new(), https_redirect: None }])]),
            RouteTable { schema: SCHEMA_VERSION + 1, ..RouteTable::default() },
        ];
        let outcomes: Vec<bool> = tables.iter().map(|t| CompiledTable::check(t).is_ok()).collect();
        assert_eq!(outcomes, [true, false, false, false, false]);
        for table in tables {
            assert_eq!(CompiledTable::check(&table).err(), CompiledTable::compile(table).err());
        }
    }

    fn forward_with(rewrite: Option<PathRewrite>, host_rewrite: Option<&str>, backends: &[(&str, u32)]) -> RouteAction {
        RouteAction::Forward(Forward {
            backends: backends.iter().map(|&(c, w)| WeightedBackend { cluster: c.into(), weight: w }).collect(),
            rewrite,
            host_rewrite: host_rewrite.map(String::from),
            policy: String::new(),
            canary: None,
            cors: None,
            auth: None,
            basic_auth: None,
            connection_limit: None,
            response: None,
        })
    }

    #[test]
    fn rewrite_target_through_the_matcher() {
        let compiled = table(
            vec![vhost(
                "rewrite.bar.com",
                vec![
                    Route {
                        path: PathMatch::Regex("(?i)/something(/|$)(.*)".into()),
                        action: forward_with(Some(PathRewrite::Template("/$2".into())), None, &[("svc", 1)]),
                        origin: String::new(),
                        https_redirect: None,
                    },
                    Route {
                        path: PathMatch::Prefix("/app/".into()),
                        action: forward_with(Some(PathRewrite::ReplacePrefix("/".into())), Some("internal.svc"), &[("app", 1)]),
                        origin: String::new(),
                        https_redirect: None,
                    },
                    Route {
                        path: PathMatch::Prefix("/plain".into()),
                        action: forward_with(Some(PathRewrite::Template("/".into())), None, &[("plain", 1)]),
                        origin: String::new(),
                        https_redirect: None,
                    },
                ],
            )],
            None,
        );
        let rows: [(&str, &str, Option<&str>, Option<&str>); 8] = [
            ("/something", "svc", Some("/"), None),
            ("/something/", "svc", Some("/"), None),
            ("/something/new", "svc", Some("/new"), None),
            ("/something/new?x=1", "svc", Some("/new?x=1"), None),
            ("/Something/New", "svc", Some("/New"), None),
            ("/app/v1/x?q", "app", Some("/v1/x?q"), Some("internal.svc")),
            ("/app", "app", Some("/"), Some("internal.svc")),
            ("/plain/deep/path?k=v", "plain", Some("/?k=v"), None),
        ];
        for (path, cluster, new_path, authority) in rows {
            let decision = compiled.route(&RequestParts::new(b"rewrite.bar.com", path.as_bytes()), 0);
            assert_eq!(
                decision.outcome,
                Outcome::Forward { cluster, path: new_path.map(String::from), authority, policy: "", canary: None, cors: None, auth: None, basic_auth: None, connection_limit: None, response: None },
                "path {path}"
            );
        }
    }

    #[test]
    fn weighted_backends_follow_the_random_argument() {
        let compiled = table(
            vec![vhost("", vec![Route {
                path: PathMatch::Prefix("/".into()),
                action: forward_with(None, None, &[("stable", 9), ("canary", 1)]),
                origin: String::new(),
                https_redirect: None,
            }])],
            None,
        );
        let mut canary = 0;
        for random in 0..1000u64 {
            if let Outcome::Forward { cluster: "canary", .. } =
                compiled.route(&RequestParts::new(b"h", b"/"), random).outcome
            {
                canary += 1;
            }
        }
        assert_eq!(canary, 100);
    }

    #[test]
    fn a_canary_route_names_both_clusters_and_decides_with_its_compiled_pattern() {
        let mut route = prefix("/info", "default/main/80");
        if let RouteAction::Forward(forward) = &mut route.action {
            forward.canary = Some(Box::new(Canary {
                cluster: "default/canary/80".into(),
                header: Some(CanaryHeader { name: "x-canary".into(), rule: CanaryHeaderRule::Pattern("^Do[A-Z][a-z]+y$".into()) }),
                cookie: None,
                weight: 0,
                weight_total: 100,
                origin: "default/info-canary".into(),
            }));
        }
        let table = table(vec![vhost("foo", vec![route])], None);
        let Outcome::Forward { cluster, canary: Some(canary), .. } = table.route(&RequestParts::new(b"foo", b"/info"), 0).outcome else {
            panic!("no canary on the route");
        };
        assert_eq!(cluster, "default/main/80");
        struct One(&'static str);
        impl HeaderLookup for One {
            fn header(&self, name: &str) -> Option<Vec<u8>> {
                (name == "x-canary").then(|| self.0.as_bytes().to_vec())
            }
        }
        assert!(table.chooses_canary(canary, &One("DoCanary"), 0));
        assert!(!table.chooses_canary(canary, &One("Docanary"), 0));
    }

    fn compile_error(hosts: Vec<VirtualHost>) -> CompileError {
        CompiledTable::compile(RouteTable { schema: SCHEMA_VERSION, version: "v".into(), hosts, default_backend: None, ..RouteTable::default() })
            .expect_err("table must be refused")
    }

    #[test]
    fn compile_errors_name_host_route_and_origin() {
        let mut bad = regex("/ok", "x");
        bad.path = PathMatch::Regex("/(unclosed".into());
        bad.origin = "default/shop: spec.rules[0].http.paths[1]".into();
        let error = compile_error(vec![vhost("shop.example.com", vec![prefix("/", "a"), bad])]);
        assert_eq!(error.host.as_deref(), Some("shop.example.com"));
        assert_eq!(error.route, Some(1));
        assert_eq!(error.origin, "default/shop: spec.rules[0].http.paths[1]");
        let text = error.to_string();
        assert!(text.contains("shop.example.com") && text.contains("route 1") && text.contains("invalid regex"), "{text}");
        assert!(text.contains("default/shop: spec.rules[0].http.paths[1]"), "{text}");
    }

    #[test]
    fn invalid_tables_are_refused() {
        let empty_backends = Route {
            path: PathMatch::Prefix("/".into()),
            action: forward_with(None, None, &[]),
            origin: String::new(),
            https_redirect: None,
        };
        let zero_weights = Route {
            path: PathMatch::Prefix("/".into()),
            action: forward_with(None, None, &[("a", 0), ("b", 0)]),
            origin: String::new(),
            https_redirect: None,
        };
        let injected_host = Route {
            path: PathMatch::Prefix("/".into()),
            action: forward_with(None, Some("a.com\r\nx-evil: 1"), &[("a", 1)]),
            origin: String::new(),
            https_redirect: None,
        };
        let nginx_variable = Route {
            path: PathMatch::Regex("/(.*)".into()),
            action: forward_with(Some(PathRewrite::Template("/$host/$1".into())), None, &[("a", 1)]),
            origin: String::new(),
            https_redirect: None,
        };
        let with_canary = |edit: &dyn Fn(&mut Canary)| {
            let mut canary = Canary {
                cluster: "b".into(),
                header: Some(CanaryHeader { name: "x-canary".into(), rule: CanaryHeaderRule::AlwaysNever }),
                cookie: None,
                weight: 0,
                weight_total: 100,
                origin: String::new(),
            };
            edit(&mut canary);
            let mut route = prefix("/", "a");
            if let RouteAction::Forward(forward) = &mut route.action {
                forward.canary = Some(Box::new(canary));
            }
            vec![vhost("a", vec![route])]
        };
        let header = |name: &str, rule: CanaryHeaderRule| Some(CanaryHeader { name: name.into(), rule });
        let cases: Vec<(&str, Vec<VirtualHost>, &str)> = vec![
            ("canary header upper case", with_canary(&|c| c.header = header("X-Canary", CanaryHeaderRule::AlwaysNever)), "lower case"),
            ("canary header injection", with_canary(&|c| c.header = header("x\r\nb", CanaryHeaderRule::AlwaysNever)), "letters, digits"),
            ("canary bad pattern", with_canary(&|c| c.header = header("x", CanaryHeaderRule::Pattern("[".into()))), "invalid regex"),
            ("canary value injection", with_canary(&|c| c.header = header("x", CanaryHeaderRule::Value("a\nb".into()))), "control character"),
            ("canary cookie", with_canary(&|c| c.cookie = Some("a;b".into())), "cookie name"),
            ("canary total 0", with_canary(&|c| c.weight_total = 0), "weight_total is 0"),
            ("canary cluster", with_canary(&|c| c.cluster = String::new()), "cluster is empty"),
            ("empty backends", vec![vhost("a", vec![empty_backends])], "no backends"),
            ("zero weights", vec![vhost("a", vec![zero_weights])], "weight 0"),
            ("header injection", vec![vhost("a", vec![injected_host])], "control character"),
            ("nginx variable", vec![vhost("a", vec![nginx_variable])], "nginx variables"),
            ("relative exact", vec![vhost("a", vec![exact("foo", "x")])], "must start with '/'"),
            ("prefix with query", vec![vhost("a", vec![prefix("/a?b", "x")])], "could never match"),
            ("duplicate host", vec![vhost("a", vec![]), vhost("A", vec![])], "more than once"),
            ("duplicate hostless", vec![vhost("", vec![]), vhost("", vec![])], "more than once"),
            ("bare star", vec![vhost("*", vec![])], "`*`"),
            ("inner star", vec![vhost("a.*.com", vec![])], "`*`"),
            ("wildcard without domain", vec![vhost("*.", vec![])], "wildcard"),
            ("host with port", vec![vhost("a.com:80", vec![])], "port"),
        ];
        for (name, hosts, reason) in cases {
            let error = compile_error(hosts);
            assert!(error.reason.contains(reason), "{name}: {error}");
        }
        let wrong_schema = CompiledTable::compile(RouteTable { schema: 2, ..RouteTable::default() }).expect_err("schema 2");
        assert!(wrong_schema.reason.contains("schema 2"), "{wrong_schema}");
        let bad_default = CompiledTable::compile(RouteTable {
            schema: SCHEMA_VERSION,
            default_backend: Some(RouteAction::respond(99, "")),
            ..RouteTable::default()
        })
        .expect_err("status 99");
        assert!(bad_default.reason.contains("default_backend"), "{bad_default}");
    }

    #[test]
    fn error_page_clusters_are_found_only_with_the_token_and_when_listed() {
        const TOKEN: &str = "0123456789abcdef0123";
        let with = |clusters: &[&str], token: &str| CompiledTable::compile(RouteTable {
            schema: SCHEMA_VERSION,
            error_page_clusters: clusters.iter().map(|c| c.to_string()).collect(),
            error_page_token: token.into(),
            ..RouteTable::default()
        });
        let table = with(&["default/errors/80", "shop/pages/8080~abc"], TOKEN).expect("valid");
        assert!(table.has_error_pages());
        let marked = |cluster: &str| format!("{TOKEN} {cluster}").into_bytes();
        assert_eq!(table.error_page_cluster(&marked("shop/pages/8080~abc")), Some("shop/pages/8080~abc"));
        assert_eq!(table.error_page_cluster(&marked("default/app/80")), None, "a cluster not listed for error pages");
        // What a client can send without the token: nothing is an error page.
        for value in ["shop/pages/8080~abc", " shop/pages/8080~abc", "0123456789abcdef012 shop/pages/8080~abc", "0123456789abcdef01234 shop/pages/8080~abc", "", " "] {
            assert_eq!(table.error_page_cluster(value.as_bytes()), None, "{value:?}");
        }
        assert!(!with(&[], "").expect("empty").has_error_pages());
        assert_eq!(with(&[], "").expect("empty").error_page_cluster(b" "), None, "no token, no clusters: nothing");
        let refused = [
            (&["b", "a"][..], TOKEN, "sorted"),
            (&["a", "a"][..], TOKEN, "sorted"),
            (&["bad\ncluster"][..], TOKEN, "error page cluster"),
            (&["a"][..], "", "error_page_token"),
            (&["a"][..], "short", "error_page_token"),
            (&["a"][..], "0123456789abcdef 0123", "error_page_token"),
        ];
        for (clusters, token, reason) in refused {
            let error = with(clusters, token).expect_err(reason);
            assert!(error.reason.contains(reason), "{clusters:?} {token:?}: {error}");
        }
    }

    #[test]
    fn check_route_reports_what_compile_would_refuse() {
        assert_eq!(check_route(&prefix("/a{b}/*:c", "x")), Ok(()));
        assert_eq!(check_route(&regex("(?i)/something(/|$)(.*)", "x")), Ok(()));
        let error = check_route(&regex("/(", "x")).expect_err("bad regex");
        assert!(error.contains("invalid regex"), "{error}");
        let error = check_route(&prefix("relative", "x")).expect_err("relative");
        assert!(error.contains("must start with '/'"), "{error}");
        let huge = regex(&format!("/({})", "a{1000}".repeat(100)), "x");
        assert!(check_route(&huge).is_err(), "a regex over the size limit is refused");
    }

    #[test]
    fn empty_table_routes_everything_to_404() {
        let compiled = table(vec![], None);
        assert_eq!(compiled.version(), "test");
        assert_eq!(served_by(&compiled, "a.com", "/"), "status 404");
    }

    #[test]
    fn lookups_stay_correct_with_many_rules() {
        let routes: Vec<Route> = (0..10_000).map(|i| prefix(&format!("/svc{i}/api"), &format!("c{i}"))).collect();
        let hosts: Vec<VirtualHost> = (0..10_000).map(|i| vhost(&format!("h{i}.example.com"), vec![prefix("/", &format!("h{i}"))])).collect();
        let mut all = hosts;
        all.push(vhost("many.example.com", routes));
        let compiled = table(all, None);
        assert_eq!(served_by(&compiled, "many.example.com", "/svc9999/api/x"), "c9999");
        assert_eq!(served_by(&compiled, "many.example.com", "/svc42/api"), "c42");
        assert_eq!(served_by(&compiled, "many.example.com", "/svc42/apix"), "status 404");
        assert_eq!(served_by(&compiled, "h777.example.com", "/q"), "h777");
    }

    fn redirect_to(status: u16, location: Location) -> Redirect {
        Redirect { status, location }
    }
    fn force_ssl_redirect() -> Redirect {
        let path = PathPart::RequestUri { trim_trailing_slash: true };
        redirect_to(308, Location::FromRequest { scheme: Some("https".into()), host: HostPart::RequestHost, path })
    }
    fn app_root(path: &str) -> Redirect {
        let location = Location::FromRequest { scheme: None, host: HostPart::RequestAuthority, path: PathPart::Fixed(path.into()) };
        redirect_to(302, location)
    }
    fn from_to_www(host: &str) -> Redirect {
        let path = PathPart::RequestUri { trim_trailing_slash: true };
        redirect_to(308, Location::FromRequest { scheme: None, host: HostPart::WithListenerPort(host.into()), path })
    }
    fn permanent_redirect(url: &str) -> RouteAction {
        RouteAction::Redirect(redirect_to(301, Location::Url { url: url.into() }))
    }
    fn with_https_redirect(mut route: Route) -> Route {
        route.https_redirect = Some(force_ssl_redirect());
        route
    }
    fn https<'a>(authority: &'a str, path: &'a str) -> RequestParts<'a> {
        RequestParts { https: true, ..RequestParts::new(authority.as_bytes(), path.as_bytes()) }
    }

    #[test]
    fn app_root_answers_only_a_request_for_exactly_slash() {
        let mut host = vhost("approot.bar.com", vec![with_https_redirect(prefix("/", "root")), prefix("/api", "api")]);
        host.app_root = Some(app_root("/foo"));
        let compiled = table(vec![host], None);
        let rows = [
            // ingress-nginx e2e approot: `GET /` -> 302 `http://approot.bar.com/foo`.
            ("approot.bar.com", "/", "redirect 302 http://approot.bar.com/foo"),
            ("approot.bar.com:8080", "/", "redirect 302 http://approot.bar.com:8080/foo"),
            ("approot.bar.com", "/?a=b", "redirect 302 http://approot.bar.com/foo"),
            // Not exactly `/`: the routes decide (here the force-ssl-redirect of `/`).
            ("approot.bar.com", "/x", "redirect 308 https://approot.bar.com/x"),
            ("approot.bar.com", "//", "redirect 308 https://approot.bar.com/"),
            ("approot.bar.com", "/api/v1", "api"),
        ];
        for (authority, path, expected) in rows {
            assert_eq!(served_by(&compiled, authority, path), expected, "{authority}{path}");
        }
        let decision = compiled.route(&RequestParts::new(b"approot.bar.com", b"/"), 0);
        assert_eq!((decision.vhost, decision.via, decision.route), (Some("approot.bar.com"), Via::AppRoot, None));
        // Over HTTPS the app-root keeps the request's scheme.
        assert_eq!(served(&compiled, &https("approot.bar.com", "/")), "redirect 302 https://approot.bar.com/foo");
    }

    #[test]
    fn app_root_applies_even_when_no_route_covers_slash() {
        let mut host = vhost("approot.bar.com", vec![prefix("/only", "only")]);
        host.app_root = Some(app_root("/only"));
        let compiled = table(vec![host], None);
        assert_eq!(served_by(&compiled, "approot.bar.com", "/"), "redirect 302 http://approot.bar.com/only");
        assert_eq!(served_by(&compiled, "other.com", "/"), "status 404");
    }

    #[test]
    fn https_redirect_answers_plain_http_and_lets_https_through() {
        let compiled = table(vec![vhost("forcesslredirect.bar.com", vec![with_https_redirect(prefix("/", "svc"))])], None);
        let rows = [
            // ingress-nginx e2e forcesslredirect: `GET /` -> 308 `https://forcesslredirect.bar.com`.
            ("/", "redirect 308 https://forcesslredirect.bar.com"),
            ("/a/", "redirect 308 https://forcesslredirect.bar.com/a"),
            ("/a/?q", "redirect 308 https://forcesslredirect.bar.com/a/?q"),
        ];
        for (path, expected) in rows {
            assert_eq!(served_by(&compiled, "forcesslredirect.bar.com", path), expected, "{path}");
            assert_eq!(served(&compiled, &https("forcesslredirect.bar.com", path)), "svc", "{path} over https");
        }
        let decision = compiled.route(&RequestParts::new(b"forcesslredirect.bar.com", b"/"), 0);
        assert_eq!(decision.via, Via::Route);
        assert!(decision.route.is_some_and(|r| r.https_redirect.is_some()));
    }

    #[test]
    fn preserve_trailing_slash_redirect_keeps_the_slash() {
        let mut route = prefix("/", "svc");
        let path = PathPart::RequestUri { trim_trailing_slash: false };
        route.https_redirect =
            Some(redirect_to(308, Location::FromRequest { scheme: Some("https".into()), host: HostPart::RequestHost, path }));
        let compiled = table(vec![vhost("forcesslredirect.bar.com", vec![route])], None);
        assert_eq!(served_by(&compiled, "forcesslredirect.bar.com", "/"), "redirect 308 https://forcesslredirect.bar.com/");
    }

    #[test]
    fn routes_without_https_redirect_ignore_the_scheme() {
        let gone = Route { action: RouteAction::respond(503, "gone"), ..prefix("/gone", "") };
        let compiled = table(vec![vhost("a.com", vec![prefix("/", "svc"), gone, with_https_redirect(prefix("/secure", "secure"))])], None);
        for path in ["/", "/x?y", "/gone/1"] {
            assert_eq!(served_by(&compiled, "a.com", path), served(&compiled, &https("a.com", path)), "{path}");
        }
        assert_eq!(served_by(&compiled, "a.com", "/gone/1"), "status 503");
        assert_eq!(served_by(&compiled, "a.com", "/x"), "svc");
    }

    #[test]
    fn redirect_actions_answer_from_routes_fallbacks_and_the_default_backend() {
        let permanent = Route { action: permanent_redirect("http://redirect.example.com"), ..prefix("/", "") };
        let mut www = vhost("www.fromtowwwredirect.bar.com", vec![]);
        www.fallback = Some(RouteAction::Redirect(from_to_www("fromtowwwredirect.bar.com")));
        let compiled = CompiledTable::compile(RouteTable {
            schema: SCHEMA_VERSION,
            hosts: vec![vhost("redirect.bar.com", vec![permanent]), www],
            default_backend: Some(permanent_redirect("https://default.example.com/")),
            ..RouteTable::default()
        })
        .expect("compiles");
        let rows = [
            // ingress-nginx e2e redirect: permanent-redirect -> 301 with exactly the URL.
            ("redirect.bar.com", "/any/path?q=1", "redirect 301 http://redirect.example.com"),
            // ingress-nginx e2e fromtowwwredirect: -> 308 `http://fromtowwwredirect.bar.com:80/foo`.
            ("www.fromtowwwredirect.bar.com", "/foo", "redirect 308 http://fromtowwwredirect.bar.com:80/foo"),
            ("unknown.com", "/", "redirect 301 https://default.example.com/"),
        ];
        for (authority, path, expected) in rows {
            assert_eq!(served_by(&compiled, authority, path), expected, "{authority}{path}");
        }
        let port_8443 = RequestParts { listener_port: Some(8443), ..https("www.fromtowwwredirect.bar.com", "/") };
        assert_eq!(served(&compiled, &port_8443), "redirect 308 https://fromtowwwredirect.bar.com:8443");
    }

    #[test]
    fn a_redirect_too_long_for_a_header_answers_414() {
        let mut host = vhost("approot.bar.com", vec![]);
        host.app_root = Some(app_root("/foo"));
        let compiled = table(vec![host], None);
        let authority = format!("approot.bar.com:{}", "9".repeat(crate::limits::MAX_LOCATION_BYTES));
        assert_eq!(served_by(&compiled, &authority, "/"), "status 414");
    }

    #[test]
    fn policy_key_is_carried_into_the_forward_outcome() {
        let slow = Route {
            action: RouteAction::Forward(Forward { policy: "timeout-60s".into(), ..forward_fields("slow") }),
            ..prefix("/slow", "")
        };
        let compiled = table(vec![vhost("a.com", vec![slow, prefix("/", "plain")])], None);
        let outcome = |path: &str| compiled.route(&RequestParts::new(b"a.com", path.as_bytes()), 0).outcome;
        assert_eq!(outcome("/slow/x"), Outcome::Forward { cluster: "slow", path: None, authority: None, policy: "timeout-60s", canary: None, cors: None, auth: None, basic_auth: None, connection_limit: None, response: None });
        assert_eq!(outcome("/x"), Outcome::Forward { cluster: "plain", path: None, authority: None, policy: "", canary: None, cors: None, auth: None, basic_auth: None, connection_limit: None, response: None });
    }

    fn forward_fields(cluster: &str) -> Forward {
        match RouteAction::forward_to(cluster) {
            RouteAction::Forward(forward) => forward,
            other => panic!("forward_to gave {other:?}"),
        }
    }

    #[test]
    fn the_table_says_whether_routing_reads_the_scheme_or_the_listener_port() {
        let with_default = |default_backend: RouteAction| RouteTable {
            schema: SCHEMA_VERSION,
            default_backend: Some(default_backend),
            ..RouteTable::default()
        };
        let with_host = |routes: Vec<Route>, app_root: Option<Redirect>, fallback: Option<RouteAction>| RouteTable {
            schema: SCHEMA_VERSION,
            hosts: vec![VirtualHost { host: "a.com".into(), routes, fallback, app_root, client_certificate: None }],
            ..RouteTable::default()
        };
        let url = permanent_redirect("http://r.example.com");
        let www = RouteAction::Redirect(from_to_www("a.com"));
        let rows: [(&str, RouteTable, (bool, bool)); 7] = [
            ("plain routes", with_host(vec![prefix("/", "a")], None, None), (false, false)),
            ("fixed url route", with_host(vec![Route { action: url.clone(), ..prefix("/", "") }], None, None), (false, false)),
            ("fixed url default", with_default(url), (false, false)),
            // `https_redirect` needs the scheme to know whether it applies, even with a fixed scheme.
            ("https_redirect", with_host(vec![with_https_redirect(prefix("/", "a"))], None, None), (true, false)),
            ("app_root", with_host(vec![], Some(app_root("/foo")), None), (true, false)),
            ("from-to-www fallback", with_host(vec![], None, Some(www.clone())), (true, true)),
            ("from-to-www default", with_default(www), (true, true)),
        ];
        for (name, table, expected) in rows {
            let compiled = CompiledTable::compile(table).expect("compiles");
            assert_eq!((compiled.needs_scheme(), compiled.needs_listener_port()), expected, "{name}");
        }
    }

    #[test]
    fn bad_redirects_and_policy_keys_are_refused_naming_the_field() {
        let bad_status = Route { action: RouteAction::Redirect(redirect_to(200, Location::Url { url: "http://a".into() })), ..prefix("/", "") };
        let bad_https_redirect = Route {
            https_redirect: Some(redirect_to(308, Location::FromRequest { scheme: Some("ftp".into()), host: HostPart::RequestHost, path: PathPart::default() })),
            ..prefix("/", "a")
        };
        let policy = |key: &str| Route {
            action: RouteAction::Forward(Forward { policy: key.into(), ..forward_fields("c") }),
            ..prefix("/", "")
        };
        let mut bad_app_root = vhost("a", vec![]);
        bad_app_root.app_root = Some(app_root("foo"));
        let mut bad_fallback = vhost("a", vec![]);
        bad_fallback.fallback = Some(RouteAction::Redirect(from_to_www("a.com:80")));
        let cases: Vec<(&str, Vec<VirtualHost>, &str)> = vec![
            ("redirect status", vec![vhost("a", vec![bad_status])], "redirect status 200 is outside 300..=308"),
            ("https_redirect scheme", vec![vhost("a", vec![bad_https_redirect.clone()])], "https_redirect: redirect scheme \"ftp\""),
            ("app_root path", vec![bad_app_root], "app_root: redirect path \"foo\" must start with '/'"),
            ("fallback host", vec![bad_fallback], "fallback: redirect host \"a.com:80\" must be a bare host name"),
            ("policy charset", vec![vhost("a", vec![policy("Timeout_60")])], "policy key \"Timeout_60\" may only contain"),
            ("policy length", vec![vhost("a", vec![policy(&"a".repeat(65))])], "policy key is 65 bytes, more than the 64 allowed"),
        ];
        for (name, hosts, reason) in cases {
            let error = compile_error(hosts);
            assert!(error.to_string().contains(reason), "{name}: {error}");
        }
        assert_eq!(check_route(&policy(&"a".repeat(64))), Ok(()));
        assert_eq!(check_route(&policy("timeout-60s-0")), Ok(()));
        assert!(check_route(&policy("a b")).is_err());
        assert!(check_route(&bad_https_redirect).is_err_and(|e| e.starts_with("https_redirect: redirect scheme")));
        assert!(check_redirect(&app_root("/foo")).is_ok());
    }
}
