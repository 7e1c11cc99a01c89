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
//! The module is split by job: `hosts` (the host index), `paths` (the path index of one host),
//! `decide` (the decision for one request), [`check`] (what a table must satisfy; the control plane
//! runs the same checks before it sends one), `reuse` (a table compiled from its JSON with the
//! unchanged hosts of the one before: [`HostCache`]), and this file, which holds the compiled table and what
//! it compiles besides its indexes (header patterns, password lists). What happens to a matched
//! request (weights, rewrites) is in [`crate::actions`], how a redirect's `Location` is built in
//! [`crate::redirect`], and the decision types in [`crate::decision`]. Nothing here talks to
//! proxy-wasm, logs, or allocates per request beyond what a rewrite or a redirect needs.

use std::collections::HashMap;
use std::rc::Rc;

use regex::Regex;

use crate::basic::PasswordHash;
use crate::cluster::ClusterName;
use crate::canary;
use crate::cors;
use crate::redirect;
use crate::request::HeaderLookup;
use crate::table::{BasicAuth, Canary, CanaryHeaderRule, ClientCertificate, Cors, Forward, Origin, Redirect, RouteAction, RouteTable, VirtualHost};
use crate::limits::{MAX_HEADER_PATTERNS, MAX_PASSWORD_FIELD_BYTES, MAX_PASSWORD_USERS};

mod check;
mod decide;
mod hosts;
mod paths;
mod reuse;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

pub use crate::decision::{Decision, Outcome, Via, NOT_FOUND_BODY, URI_TOO_LONG_BODY};
pub use crate::limits::MAX_TABLE_JSON_BYTES;
pub use crate::redirect::check_redirect;
pub use crate::request::RequestParts;
pub use check::{check_action, check_basic_chars, check_cookie_name, check_route, check_token, compile_header_regex};
use check::{check_host_answers, check_regex_count, check_settings};
use hosts::HostNames;
use paths::PathIndex;
pub use reuse::{HostCache, LoadError, Loaded};

/// Compiled-program size limit for one route regex (bytes), so a pathological pattern cannot exhaust
/// the wasm VM's memory. ingress-nginx style patterns are a few KiB at most.
const REGEX_SIZE_LIMIT: usize = 1024 * 1024;
/// Lazy-DFA cache limit per route regex (bytes).
const REGEX_DFA_SIZE_LIMIT: usize = 256 * 1024;

/// A compiled route table, built once per `on_configure` and shared by every request (`Rc`).
#[derive(Debug)]
pub struct CompiledTable {
    /// The table's settings; its `hosts` is empty (they are in `hosts` below).
    table: RouteTable,
    /// The table's hosts, each with its path index; shared with the next table of the same VM
    /// when that one has the host unchanged (see [`HostCache`]).
    hosts: Vec<Rc<CompiledHost>>,
    index: Indexes,
}

/// One virtual host of a compiled table and its path index.
#[derive(Debug)]
pub struct CompiledHost {
    vhost: VirtualHost,
    paths: PathIndex,
}

impl CompiledHost {
    /// Check a host on its own (what it answers besides its routes, and its routes) and compile its
    /// path index.
    pub fn compile(vhost: VirtualHost) -> Result<CompiledHost, CompileError> {
        let paths = host_paths(&vhost)?;
        Ok(CompiledHost { vhost, paths })
    }

    /// The host as the table has it.
    pub fn vhost(&self) -> &VirtualHost {
        &self.vhost
    }
}

/// [`CompiledHost::compile`] without taking the host.
fn host_paths(vhost: &VirtualHost) -> Result<PathIndex, CompileError> {
    check_host_answers(vhost).map_err(|reason| CompileError { host: Some(vhost.host.clone()), route: None, origin: Box::default(), reason })?;
    PathIndex::compile(&vhost.host, &vhost.routes)
}

/// Why a table (or one route) cannot be compiled; names the host and route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// The `VirtualHost::host` concerned (`""` for host-less), or `None` for a table-level problem.
    pub host: Option<String>,
    /// Index into that host's `routes`, when one route is at fault.
    pub route: Option<usize>,
    /// The route's `origin`, when known.
    pub origin: Box<Origin>,
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

impl CompileError {
    /// A table-level problem.
    fn table(reason: String) -> CompileError {
        CompileError { host: None, route: None, origin: Box::default(), reason }
    }
}

/// Every canary header pattern, CORS origin pattern and client-certificate subject pattern of the
/// table, compiled once each.
fn compile_header_patterns(table: &RouteTable, vhosts: &[&VirtualHost]) -> Result<HashMap<String, Regex>, String> {
    let mut patterns = HashMap::new();
    for forward in forwards_of(table, vhosts.iter().copied()) {
        let canary = forward.canary.as_ref().and_then(|c| c.header.as_ref()).and_then(|h| match &h.rule {
            CanaryHeaderRule::Pattern(pattern) => Some(pattern),
            _ => None,
        });
        if let Some(pattern) = canary {
            insert_pattern(&mut patterns, pattern)?;
        }
    }
    for pattern in actions_of(table, vhosts.iter().copied()).filter_map(|action| action.cors()?.origin_pattern.as_ref()) {
        insert_pattern(&mut patterns, pattern)?;
    }
    let subjects = vhosts.iter().filter_map(|h| h.client_certificate.as_ref()?.match_cn.as_ref());
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

/// Every `Forward` of a table: routes, host fallbacks and implicit roots, the default backend.
pub fn forwards(table: &RouteTable) -> impl Iterator<Item = &Forward> {
    forwards_of(table, table.hosts.iter())
}

/// Every route policy key `table` names ([`RouteAction::policies`] of each action).
pub fn policy_keys(table: &RouteTable) -> impl Iterator<Item = &str> {
    actions_of(table, table.hosts.iter()).flat_map(RouteAction::policies)
}

/// The actions of `table`'s default backend and the hosts `vhosts`: their routes', fallbacks' and
/// implicit roots'.
fn actions_of<'t>(table: &'t RouteTable, vhosts: impl Iterator<Item = &'t VirtualHost>) -> impl Iterator<Item = &'t RouteAction> {
    let host_actions = vhosts.flat_map(|host| host.routes.iter().map(|r| &r.action).chain(host.fallback.as_ref()).chain(host.implicit_root.as_ref()));
    host_actions.chain(table.default_backend.as_ref())
}

/// [`forwards`] of `table`'s default backend and the hosts `vhosts`.
fn forwards_of<'t>(table: &'t RouteTable, vhosts: impl Iterator<Item = &'t VirtualHost>) -> impl Iterator<Item = &'t Forward> {
    actions_of(table, vhosts).filter_map(|action| match action {
        RouteAction::Forward(forward) => Some(forward),
        _ => None,
    })
}

/// Whether `given` equals the table's `secret`, in a time that does not depend on where they differ.
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    given.len() == secret.len() && given.iter().zip(secret).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// `https_redirect`s and `app_root`s.
fn redirects<'t>(table: &'t RouteTable, vhosts: &'t [&'t VirtualHost]) -> impl Iterator<Item = &'t Redirect> {
    let host_actions = vhosts.iter().flat_map(|h| h.fallback.iter().chain(&h.implicit_root).chain(h.routes.iter().map(|r| &r.action)));
    let actions = table.default_backend.iter().chain(host_actions).filter_map(|action| match action {
        RouteAction::Redirect(redirect) => Some(redirect),
        RouteAction::Forward(_) | RouteAction::Respond(_) => None,
    });
    let host_redirects = vhosts
        .iter()
        .flat_map(|h| h.app_root.iter().chain(&h.fallback_https_redirect).chain(h.routes.iter().filter_map(|r| r.https_redirect.as_ref())));
    actions.chain(host_redirects)
}

impl CompiledTable {
    /// Compile a table; refuses an unknown schema, an invalid regex, an empty backend list, a
    /// malformed redirect, …
    pub fn compile(mut table: RouteTable) -> Result<CompiledTable, CompileError> {
        check_settings(&table).map_err(CompileError::table)?;
        let hosts = std::mem::take(&mut table.hosts).into_iter().map(|vhost| CompiledHost::compile(vhost).map(Rc::new));
        CompiledTable::assemble(table, hosts.collect::<Result<_, _>>()?)
    }

    /// A table from its settings (`table`, whose own `hosts` is ignored; [`check_settings`]
    /// passed) and its hosts, compiled already: the checks and indexes that span hosts.
    fn assemble(mut table: RouteTable, hosts: Vec<Rc<CompiledHost>>) -> Result<CompiledTable, CompileError> {
        table.hosts = Vec::new();
        let vhosts: Vec<&VirtualHost> = hosts.iter().map(|h| &h.vhost).collect();
        let index = Indexes::build(&table, &vhosts)?;
        Ok(CompiledTable { table, hosts, index })
    }

    /// Whether [`CompiledTable::compile`] accepts `table` (the same checks, without keeping the
    /// result or copying the table): what the control plane asks before it sends one.
    pub fn check(table: &RouteTable) -> Result<(), CompileError> {
        CompiledTable::check_except(table, |_| false)
    }

    /// [`CompiledTable::check`] for a table some of whose hosts (`checked` says which) are, unchanged,
    /// hosts of a table that passed it: their own checks and path indexes are skipped; everything
    /// that spans hosts (the table's limits, host names, header patterns, password lists) is not.
    /// The control plane's incremental translation asks this of the table it splices.
    pub fn check_except(table: &RouteTable, checked: impl Fn(&VirtualHost) -> bool) -> Result<(), CompileError> {
        check_settings(table).map_err(CompileError::table)?;
        for vhost in table.hosts.iter().filter(|vhost| !checked(vhost)) {
            host_paths(vhost)?;
        }
        let vhosts: Vec<&VirtualHost> = table.hosts.iter().collect();
        Indexes::build(table, &vhosts).map(drop)
    }

    /// The number of hosts.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// The table's hosts, compiled.
    pub fn hosts(&self) -> &[Rc<CompiledHost>] {
        &self.hosts
    }
}

/// Everything [`CompiledTable`] holds besides the table itself.
#[derive(Debug)]
struct Indexes {
    /// Which entry of [`CompiledTable::hosts`] serves a host name.
    hosts: HostNames,
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
    /// `table.default_server_denied`, read once.
    default_server_denied: Vec<(std::net::IpAddr, u32)>,
}

impl Indexes {
    /// The indexes and checks that span the hosts `vhosts` of `table` (each checked on its own
    /// already, [`CompiledHost::compile`], and the table's settings too, [`check_settings`]).
    fn build(table: &RouteTable, vhosts: &[&VirtualHost]) -> Result<Indexes, CompileError> {
        let table_error = CompileError::table;
        check_regex_count(vhosts).map_err(table_error)?;
        let mut hosts = HostNames::default();
        for (i, vhost) in vhosts.iter().enumerate() {
            hosts
                .insert(&vhost.host, i)
                .map_err(|reason| CompileError { host: Some(vhost.host.clone()), route: None, origin: Box::default(), reason })?;
        }
        // An `https_redirect` needs the scheme to know whether it applies, whatever its location.
        let https_redirects = vhosts.iter().any(|h| h.fallback_https_redirect.is_some() || h.routes.iter().any(|r| r.https_redirect.is_some()));
        let needs_scheme = https_redirects || redirects(table, vhosts).any(|r| redirect::reads_scheme(&r.location));
        let needs_listener_port = redirects(table, vhosts).any(|r| redirect::reads_listener_port(&r.location));
        let header_patterns = compile_header_patterns(table, vhosts).map_err(table_error)?;
        let passwords = compile_passwords(table).map_err(table_error)?;
        let client_certificates = vhosts.iter().any(|h| h.client_certificate.is_some());
        let default_server_denied = crate::address::parse_all(&table.default_server_denied);
        Ok(Indexes { hosts, needs_scheme, needs_listener_port, header_patterns, passwords, client_certificates, default_server_denied })
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
        self.hosts.get(index)?.vhost.client_certificate.as_ref()
    }

    /// [`crate::table::RouteTable::trust_forwarded_headers`].
    pub fn trusts_forwarded_headers(&self) -> bool {
        self.table.trust_forwarded_headers
    }

    /// [`crate::table::RouteTable::proxy_protocol`].
    pub fn proxy_protocol(&self) -> bool {
        self.table.proxy_protocol
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
        clusters.get(index).map(ClusterName::as_str)
    }

    /// Whether `decision` is an answer of the default server's `location /`, which
    /// [`RouteTable::default_server_denied`] guards: no route took the request, its host is one
    /// no Ingress names (or the host-less entry), and it is answered 404 or by the default backend.
    pub fn default_server_guards(&self, decision: &Decision<'_>) -> bool {
        !self.table.default_server_denied.is_empty() && decision.vhost.is_none_or(str::is_empty) && matches!(decision.via, Via::NotFound | Via::DefaultBackend)
    }

    /// Whether `decision` is one of the default server's answers the filter makes itself and
    /// that stays out of the access log, as ingress-nginx's `access_log off` there (see
    /// [`RouteTable::default_server_logged`]): its `/healthz` and `/nginx_status` always, the
    /// 404 of its `location /` unless the table says to log it.
    pub fn default_server_unlogged(&self, decision: &Decision<'_>) -> bool {
        decision.vhost.is_none_or(str::is_empty)
            && match decision.via {
                Via::DefaultServer => true,
                Via::NotFound => !self.table.default_server_logged,
                _ => false,
            }
    }

    /// Whether `client` (an address without port) is in [`RouteTable::default_server_denied`].
    pub fn default_server_denies(&self, client: &str) -> bool {
        crate::address::in_ranges(&self.index.default_server_denied, client)
    }

    /// The table's `version` string.
    pub fn version(&self) -> &str {
        &self.table.version
    }

    /// The settings of the table this was compiled from; its `hosts` is empty (see
    /// [`CompiledTable::hosts`]).
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

    /// The stored entry (`realm:HA1`) of `user` in `basic`'s list, for digest authentication.
    pub fn digest_entry(&self, basic: &BasicAuth, user: &[u8]) -> Option<&str> {
        let user = std::str::from_utf8(user).ok()?;
        self.table.passwords.get(&basic.passwords)?.get(user).map(String::as_str)
    }

    /// The policy a request of a route with `cors` gets when its origin is allowed (see
    /// [`crate::cors`]); `None`: the route's own policy.
    pub fn cors_policy<'t>(&self, cors: &'t Cors, headers: &impl HeaderLookup) -> Option<&'t str> {
        let origin = cors.origin_pattern.as_ref().and_then(|pattern| self.index.header_patterns.get(pattern));
        cors::cors_policy(cors, origin, headers)
    }

}
