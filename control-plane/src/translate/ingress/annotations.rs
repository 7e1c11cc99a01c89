//! ingress-nginx annotations (`nginx.ingress.kubernetes.io/…`) of one Ingress: the ones we apply
//! (`rewrite-target`, `use-regex`, the source-range lists; the `behaviour` and `upstream` families)
//! as plain values, the access controls we cannot enforce yet as an [`AccessDenial`] (the Ingress is
//! then served closed), and a note for every other one (from the [`registry`](super::registry)).
//! Pure; must not decide routes.
//!
//! Source ranges (`allowlist-source-range`, its old name `whitelist-source-range`,
//! `denylist-source-range`) are enforced by Envoy's RBAC filter on the route policy; a value
//! ingress-nginx refuses (a bad CIDR) denies every path with 503, as its "location denied".
//!
//! External auth (`auth-url`) is read by [`auth`](super::auth); the filter enforces it. Basic auth
//! is read by [`basic`](super::basic), client certificates by [`auth_tls`](super::auth_tls).
//!
//! Fail closed: ingress-nginx turns on the other access controls when their *activating* annotation
//! is set — `auth-type` (basic/digest), `auth-tls-secret` (client certificates) — or, where snippets are allowed, with `allow`/`deny`/`auth_*`/`satisfy`
//! directives in a snippet. Any of these that we cannot honour exactly denies every path of the
//! Ingress: 503 when the value is one ingress-nginx itself refuses, 403 when the value is fine but
//! not enforced yet. The companion annotations (`auth-realm`, `auth-signin`, …) do nothing on their
//! own, as in ingress-nginx.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasm_ingress_filter::table::{AnswerHeader, ANSWER_OWN_HEADERS};

use crate::model::{Cidr, HeaderValue, Mirror, RoutePolicy, Severity};

use super::auth::{self, Auth, AuthConfig};
use super::basic::{self, Basic, BasicConfig};
use super::behaviour::{self, go_bool, Behaviour, NginxDefaults};
use super::balance::{self, Balancing};
use super::canary::{self, CanaryRules};
use super::ciphers;
use super::header_maps::{self, GlobalHeaders, MapRef};
use super::mirror;
use super::response;
use super::alias;
use super::auth_tls::{self, AuthTls, AuthTlsConfig};
use super::ratelimit::{self, ConnectionCap, RequestRate};
use super::cors::{self, CorsConfig};
use super::upstream::{self, Upstream};
use super::registry::{self, Support};
use super::snippet::{self, SnippetHeaders};
use super::variables::Location;

/// The annotation prefix ingress-nginx uses by default.
pub const NGINX_PREFIX: &str = "nginx.ingress.kubernetes.io/";
pub const REWRITE_TARGET: &str = "nginx.ingress.kubernetes.io/rewrite-target";
pub const USE_REGEX: &str = "nginx.ingress.kubernetes.io/use-regex";

/// Why an Ingress is served closed, and with which status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDenial {
    /// 403 (valid but not enforced yet) or 503 (a value ingress-nginx itself refuses).
    pub status: u16,
    /// The annotations that asked for access control (full keys), sorted.
    pub annotations: Vec<String>,
}

/// Body of a fail-closed answer: nginx's page for it, as ingress-nginx answers (its e2e tests look
/// for "503 Service Temporarily Unavailable"). Fixed text:
/// nothing about the configuration is echoed to clients; the diagnostic says why.
pub fn denied_body(status: u16) -> &'static str {
    match status {
        403 => wasm_ingress_filter::decision::FORBIDDEN_BODY,
        _ => wasm_ingress_filter::decision::UNAVAILABLE_BODY,
    }
}

/// What the ingress-nginx annotations of one Ingress ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NginxAnnotations {
    /// `rewrite-target` (non-empty).
    pub rewrite_target: Option<String>,
    /// `use-regex: "true"`.
    pub use_regex: bool,
    /// Set when an access control is asked for that cannot be enforced: every path is denied.
    pub denied: Option<AccessDenial>,
    /// Redirects and the route policy (see `behaviour`).
    pub behaviour: Behaviour,
    /// How the backend is spoken to (see `upstream`).
    pub upstream: Upstream,
    /// Client addresses allowed (empty: any) and refused, sorted (`*-source-range`).
    pub allow_sources: Vec<Cidr>,
    pub deny_sources: Vec<Cidr>,
    /// The header statements of `configuration-snippet`, when it has nothing else.
    pub snippet_headers: SnippetHeaders,
    /// `custom-headers`: the ConfigMap named (see `header_maps`); translation reads it into
    /// `custom_headers`.
    pub custom_headers_map: Option<MapRef>,
    /// The response headers of `custom-headers`' ConfigMap (name, literal value).
    pub custom_headers: Vec<(String, String)>,
    /// `serve --add-headers` and `--proxy-set-headers`, the same for every Ingress; set by
    /// translation. Below every header an Ingress sets itself.
    pub global_headers: Arc<GlobalHeaders>,
    /// `canary: "true"`: this Ingress only lends its backends to main Ingresses (see `canary`).
    pub canary: Option<CanaryRules>,
    /// `enable-cors: "true"` (see `cors`).
    pub cors: Option<CorsConfig>,
    /// `load-balance`, `upstream-hash-by`, `affinity` (see `balance`).
    pub balancing: Balancing,
    /// `limit-rps` / `limit-rpm` (see `ratelimit`).
    pub rate_limit: Option<RequestRate>,
    /// `limit-connections` (see `ratelimit`).
    pub connection_cap: Option<ConnectionCap>,
    /// `auth-url` and its companions (see `auth`).
    pub auth: Option<Box<AuthConfig>>,
    /// `auth-type: basic` and its Secret (see `basic`); the Secret is read by translation.
    pub basic: Option<BasicConfig>,
    /// `mirror-target` (see `mirror`).
    pub mirror: Option<Mirror>,
    /// `ssl-passthrough: "true"` (see `passthrough`).
    pub ssl_passthrough: bool,
    /// `auth-tls-secret` and its companions (see `auth_tls`); the Secret is read by translation.
    pub auth_tls: Option<AuthTlsConfig>,
    /// `server-alias`: more names for this Ingress's hosts (see `alias`).
    pub aliases: Vec<String>,
    /// `proxy-redirect-*` and `proxy-cookie-*`: rewrites of the backend's response headers (see
    /// `response`).
    pub response: Option<wasm_ingress_filter::table::ResponseRewrite>,
    /// `satisfy: "any"`: one access check that passes is enough (see [`Self::satisfy_any`]).
    pub satisfy_any: bool,
    /// `enable-global-auth: "false"`: the global external auth (`--global-auth-url`) leaves this
    /// Ingress alone.
    pub global_auth_off: bool,
}

/// The annotations that limit client addresses. ingress-nginx reads `allowlist-source-range`
/// first and `whitelist-source-range` (its old name) only without it; the deny list wins over both.
const SOURCE_RANGES: [&str; 3] = ["allowlist-source-range", "whitelist-source-range", "denylist-source-range"];

impl NginxAnnotations {
    /// The route policy of this Ingress's path at `location`, given the defaults (a snippet's
    /// header values may use the location's variables).
    pub fn policy(&self, defaults: &behaviour::NginxDefaults, location: &Location<'_>) -> RoutePolicy {
        let listed = !self.lists_go_to_filter();
        let mut policy = self.behaviour.policy(defaults);
        policy.tries = self.behaviour.tries_within_timeout(defaults, policy.tries, self.upstream.connect_timeout(defaults));
        // Beside a rewrite only: none where the target is the path itself (buildProxyPass).
        let rewrites = self.rewrite_target.as_deref().is_some_and(|target| target != location.path);
        if let Some(prefix) = self.behaviour.forwarded_prefix.as_ref().filter(|_| rewrites) {
            policy.request_headers.insert("x-forwarded-prefix".into(), prefix.resolve(location));
        }
        // nginx's `proxy_set_header Connection`; a gRPC backend is spoken to by `grpc_pass`, which
        // does not send it (and HTTP/2 forbids the header).
        if let Some(connection) = self.behaviour.connection_header.as_deref().filter(|_| !self.upstream.protocol.streams()) {
            policy.request_headers.insert("connection".into(), HeaderValue::text(connection));
        }
        let headers = &self.snippet_headers;
        // An annotation's header (x-forwarded-prefix) wins over the snippet's, and both over the
        // global ones (nginx's location directives over the server-wide ones).
        let global = self.global_headers.request.iter().map(|(name, value)| (name, value));
        for (name, value) in headers.request_set.iter().chain(global) {
            policy.request_headers.entry(name.clone()).or_insert_with(|| value.resolve(location));
        }
        let mut response_headers_set: BTreeMap<String, HeaderValue> =
            headers.response_set.iter().map(|(name, value)| (name.clone(), value.resolve(location))).collect();
        for (name, value) in &self.custom_headers {
            // `custom-headers`' `more_set_headers` comes after the snippet in nginx's location
            // (nginx.tmpl), and headers-more applies them in order: the last one wins.
            response_headers_set.insert(name.to_ascii_lowercase(), HeaderValue::text(value));
        }
        for (name, value) in &self.global_headers.response {
            response_headers_set.entry(name.clone()).or_insert_with(|| value.resolve(location));
        }
        // An empty value set (`--add-headers`' `Name: ""`) is headers-more's removal.
        let mut response_headers_remove = headers.response_remove.clone();
        response_headers_remove.extend(response_headers_set.iter().filter(|(_, value)| value.is_empty()).map(|(name, _)| name.clone()));
        response_headers_remove.sort();
        response_headers_remove.dedup();
        response_headers_set.retain(|_, value| !value.is_empty());
        RoutePolicy {
            allow_sources: if listed { self.allow_sources.clone() } else { Vec::new() },
            deny_sources: if listed { self.deny_sources.clone() } else { Vec::new() },
            response_headers_set,
            response_headers_add: headers.response_add.iter().map(|(name, value)| (name.clone(), value.resolve(location))).collect(),
            response_headers_remove,
            ..policy
        }
    }

    /// The ConfigMap's address lists where the Ingress's annotations give none
    /// (`--whitelist-source-range`, `--denylist-source-range`: in ingress-nginx, the defaults of
    /// the annotations), then `--block-cidrs` as the deny list of an Ingress left without any
    /// list: nginx's `deny` in `http` reaches only the locations without `allow`/`deny` lines of
    /// their own. `true` when the Ingress's own annotations leave `--block-cidrs` out (not the
    /// ConfigMap's lists, which leave it out of every Ingress).
    pub fn default_source_ranges(&mut self, annotations: Option<&BTreeMap<String, String>>, defaults: &behaviour::NginxDefaults) -> bool {
        let sorted = |list: &[Cidr]| Cidr::set(list.iter().copied());
        let own_allow = has_value(annotations, "allowlist-source-range") || has_value(annotations, "whitelist-source-range");
        let own_deny = has_value(annotations, "denylist-source-range");
        if !own_allow {
            self.allow_sources = sorted(&defaults.whitelist_source_range);
        }
        if !own_deny {
            self.deny_sources = sorted(&defaults.denylist_source_range);
        }
        if defaults.block_cidrs.is_empty() || self.denied.is_some() {
            return false;
        }
        if self.allow_sources.is_empty() && self.deny_sources.is_empty() {
            self.deny_sources = sorted(&defaults.block_cidrs);
            return false;
        }
        own_allow || own_deny
    }

    /// `satisfy: "any"` on an Ingress with basic auth or `auth-url`: the address lists for the
    /// filter, which lets a request in on the first check that passes (nginx's access phase: the
    /// lists, basic auth, the auth service); its route policy then has no lists for Envoy's RBAC.
    /// `None`: every check must pass, the lists are Envoy's.
    pub fn satisfy_any(&self) -> Option<wasm_ingress_filter::table::SatisfyAny> {
        self.lists_go_to_filter().then(|| self.address_lists())
    }

    /// `satisfy: "all"` (the default) on an Ingress with address lists and basic auth or
    /// `auth-url`: the lists for the filter to check before any credential, as nginx's access
    /// module refuses such a client (403) before `auth_basic` or `auth_request` run. Envoy's RBAC
    /// keeps enforcing them too.
    pub fn lists_first(&self) -> Option<wasm_ingress_filter::table::SatisfyAny> {
        let listed = !self.allow_sources.is_empty() || !self.deny_sources.is_empty();
        let has_auth = self.basic.is_some() || self.auth.is_some();
        (listed && has_auth && !self.lists_go_to_filter()).then(|| self.address_lists())
    }

    /// These annotations without their credentials checks (`auth-url`, basic or digest auth) for
    /// a path of `defaults`' `no-auth-locations`, as ingress-nginx leaves those checks out of
    /// such a location; `None` when nothing changes. The address lists then go back to Envoy.
    pub fn without_auth_at(&self, defaults: &NginxDefaults, path: &str) -> Option<NginxAnnotations> {
        let has_auth = self.basic.is_some() || self.auth.is_some();
        (has_auth && defaults.no_auth_at(path)).then(|| NginxAnnotations { basic: None, auth: None, ..self.clone() })
    }

    /// The address lists as the filter reads them.
    fn address_lists(&self) -> wasm_ingress_filter::table::SatisfyAny {
        wasm_ingress_filter::table::SatisfyAny {
            allow: self.allow_sources.iter().map(ToString::to_string).collect(),
            deny: self.deny_sources.iter().map(ToString::to_string).collect(),
        }
    }

    /// Whether [`Self::satisfy_any`] applies: `satisfy: "any"` with basic auth or `auth-url`.
    fn lists_go_to_filter(&self) -> bool {
        self.satisfy_any && (self.basic.is_some() || self.auth.is_some())
    }

    /// The `custom-headers` the filter sets on the answers it makes itself on this Ingress's paths
    /// (redirects, 401/403/503s), as nginx's `more_set_headers` covers every response, and the
    /// `--add-headers` the snippet's `more_set_headers` does not set (its value may need the
    /// request); never those the answers set themselves (`Location`, …).
    pub fn answer_headers(&self) -> Vec<AnswerHeader> {
        let mut headers: BTreeMap<String, Option<String>> = BTreeMap::new();
        // One whose value needs the request is left out.
        for (name, value) in self.global_headers.response.iter().filter(|(name, _)| !self.snippet_headers.response_set.contains_key(name)) {
            headers.insert(name.clone(), value.literal());
        }
        // Over them and the snippet's, the last of two spellings too, as in the route policy.
        for (name, value) in &self.custom_headers {
            headers.insert(name.to_ascii_lowercase(), Some(value.clone()));
        }
        headers.retain(|name, _| !ANSWER_OWN_HEADERS.contains(&name.as_str()));
        headers.into_iter().filter_map(|(name, value)| Some(AnswerHeader { name, value: value.filter(|v| !v.is_empty())? })).collect()
    }

    /// Serve every path closed with `status` because of `annotation` (a full key), keeping the
    /// stronger status of an earlier denial.
    pub fn deny(&mut self, status: u16, annotation: String) {
        let denial = self.denied.get_or_insert(AccessDenial { status, annotations: Vec::new() });
        denial.status = denial.status.max(status);
        denial.annotations.push(annotation);
        denial.annotations.sort();
        denial.annotations.dedup();
    }
}

/// A problem with one annotation: (annotation key, severity, message).
pub type AnnotationNote = (String, Severity, String);

/// Annotations that turn an access control on (see the module docs).
const ACTIVATORS: &[&str] = &["auth-type", "auth-url", "auth-tls-secret"];


/// nginx directives that restrict access; a snippet carrying one fails closed.
const ACCESS_DIRECTIVES: &[&str] =
    &["allow", "deny", "auth_basic", "auth_basic_user_file", "auth_request", "auth_jwt", "satisfy"];

/// Read the nginx annotations of one Ingress.
pub fn parse(annotations: Option<&BTreeMap<String, String>>, namespace: &str) -> (NginxAnnotations, Vec<AnnotationNote>) {
    let mut parsed = NginxAnnotations::default();
    let mut notes = Vec::new();
    let mut denied: Vec<(String, u16)> = Vec::new();
    for (key, value) in annotations.into_iter().flatten() {
        let Some(name) = key.strip_prefix(NGINX_PREFIX) else { continue };
        let Some(entry) = registry::lookup(name) else {
            let hint = registry::unknown_hint(name).map(|hint| format!(" ({hint})")).unwrap_or_default();
            notes.push((key.clone(), Severity::Warning, format!("unknown ingress-nginx annotation {key}; ignored{hint}")));
            continue;
        };
        match (entry.support, name) {
            (Support::Applied | Support::Differs, name) if behaviour::NAMES.contains(&name) => {} // read by `Behaviour::parse`
            (Support::Applied | Support::Differs, name) if upstream::NAMES.contains(&name) => {} // read by `Upstream::parse`
            (Support::Applied | Support::Differs, name) if canary::NAMES.contains(&name) => {} // read by `canary::parse`
            (Support::Applied | Support::Differs, name) if cors::NAMES.contains(&name) => {} // read by `cors::parse`
            (Support::Applied | Support::Differs, name) if balance::NAMES.contains(&name) => {} // read by `balance::parse`
            (Support::Applied | Support::Differs, name) if ratelimit::NAMES.contains(&name) => {} // read by `ratelimit::parse`
            (Support::Applied | Support::Differs, name) if mirror::NAMES.contains(&name) => {} // read by `mirror::parse`
            (Support::Applied | Support::Differs, name) if response::NAMES.contains(&name) => {} // read by `response::parse`
            (Support::Applied | Support::Differs, name) if alias::NAMES.contains(&name) => {} // read by `alias::parse`
            (Support::Applied | Support::Differs, name) if header_maps::NAMES.contains(&name) => {} // read by `header_maps::parse`
            (Support::Applied | Support::Differs, name) if ciphers::NAMES.contains(&name) => {} // read by `ciphers::parse`
            (Support::Differs, "ssl-passthrough") => match go_bool(value.trim()) {
                Some(on) => parsed.ssl_passthrough = on,
                None => notes.push((key.clone(), Severity::Warning, format!("must be \"true\" or \"false\", not {:?}; treated as \"false\"", value.trim()))),
            },
            (_, name) if auth::NAMES.contains(&name) => {} // read by `auth::parse`
            (_, name) if basic::NAMES.contains(&name) => {} // read by `basic::parse`
            (Support::Applied, name) if SOURCE_RANGES.contains(&name) => {
                if value.trim().is_empty() || (name == "whitelist-source-range" && has_value(annotations, "allowlist-source-range")) {
                    continue;
                }
                match parse_ranges(value) {
                    Ok(ranges) if name == "denylist-source-range" => parsed.deny_sources = ranges,
                    Ok(ranges) => parsed.allow_sources = ranges,
                    Err(reason) => {
                        notes.push((
                            key.clone(),
                            Severity::Error,
                            format!("{key}: {reason}; every path of this Ingress answers 503 (fail closed, as ingress-nginx denies the location)"),
                        ));
                        denied.push((key.clone(), 503));
                    }
                }
            }
            // ingress-nginx's `RegexPathWithCapture`: another character and the target is
            // dropped ("invalid, defaulting to empty"), the Ingress still served.
            (Support::Applied, "rewrite-target") => match value.chars().find(|c| !(c.is_ascii_alphanumeric() || "-._~/:$".contains(*c))) {
                _ if value.is_empty() => {}
                None => parsed.rewrite_target = Some(value.clone()),
                Some(c) => notes.push((
                    key.clone(),
                    Severity::Warning,
                    format!("{value:?} contains {c:?}, which ingress-nginx refuses in a rewrite target (letters, digits and -._~/:$ only); no rewrite, as there"),
                )),
            },
            (Support::Applied, "use-regex") => match go_bool(value.trim()) {
                Some(on) => parsed.use_regex = on,
                None => notes.push((
                    key.clone(),
                    Severity::Warning,
                    format!("must be \"true\" or \"false\", not {:?}; treated as \"false\"", value.trim()),
                )),
            },
            (_, name) if auth_tls::NAMES.contains(&name) => {} // read by `auth_tls::parse`
            // Go's `strconv.ParseBool`, as ingress-nginx's `GetBoolAnnotation` (default true).
            (Support::Applied, "enable-global-auth") => match go_bool(value.trim()) {
                Some(on) => parsed.global_auth_off = !on,
                None => notes.push((key.clone(), Severity::Warning, format!("must be \"true\" or \"false\", not {:?}; treated as \"true\" (as ingress-nginx)", value.trim()))),
            },
            (Support::Differs, "satisfy") => match value.trim() {
                "all" => {} // nginx's default: every check must pass
                "any" if has_value(annotations, "auth-type") || has_value(annotations, "auth-url") => parsed.satisfy_any = true,
                "any" => notes.push((
                    key.clone(),
                    Severity::Warning,
                    format!("{key} has no effect without auth-type or auth-url: there is only one check to pass"),
                )),
                other => notes.push((key.clone(), Severity::Warning, format!("{other:?} is not \"any\" or \"all\"; every check must pass (\"all\", as ingress-nginx)"))),
            },
            (Support::AccessControl, _) => notes.push((
                key.clone(),
                Severity::Warning,
                format!("{key} has no effect without one of {} (as in ingress-nginx); ignored", activator_list()),
            )),
            (Support::Differs, "configuration-snippet") => match (access_directive(value), snippet::parse(value)) {
                (Some(directive), _) => {
                    notes.push((
                        key.clone(),
                        Severity::Error,
                        format!("this snippet restricts access ({directive:?}), which raw snippets never do here; every path of this Ingress answers 403 (fail closed)"),
                    ));
                    denied.push((key.clone(), 403));
                }
                (None, Ok(headers)) => {
                    for note in &headers.notes {
                        notes.push((key.clone(), Severity::Warning, format!("{note}; applied")));
                    }
                    parsed.snippet_headers = headers;
                }
                (None, Err(reason)) => notes.push((
                    key.clone(),
                    Severity::Warning,
                    format!("only header statements of a snippet are applied, and {reason}; the snippet is not applied (the rest of the Ingress is served)"),
                )),
            },
            (Support::Snippet, _) => match access_directive(value).or_else(|| (name == "modsecurity-snippet").then(|| modsecurity_blocks(value)).flatten()) {
                Some(directive) => {
                    notes.push((
                        key.clone(),
                        Severity::Error,
                        format!("raw nginx snippets are never applied, and this one restricts access ({directive:?}); every path of this Ingress answers 403 (fail closed)"),
                    ));
                    denied.push((key.clone(), 403));
                }
                None => notes.push((
                    key.clone(),
                    Severity::Warning,
                    "raw nginx configuration snippets are never applied; ignored".into(),
                )),
            },
            (Support::NoEffect, _) => notes.push((
                key.clone(),
                Severity::Warning,
                format!("{key} tunes nginx itself and has no Envoy equivalent; accepted, no effect"),
            )),
            (Support::NotYet | Support::Applied | Support::Differs, _) => {
                notes.push((key.clone(), Severity::Warning, format!("annotation {key} is not supported yet; ignored")))
            }
        }
    }
    if let Some(annotations) = annotations {
        let (behaviour, behaviour_notes) = Behaviour::parse(annotations);
        parsed.behaviour = behaviour;
        notes.extend(behaviour_notes);
        if parsed.behaviour.refused.is_none() {
            parsed.behaviour.refused = super::validators::refusal(annotations, namespace);
        }
        let (upstream, upstream_notes) = Upstream::parse(annotations);
        // gRPC streams both ways: its body cannot wait in a buffer (see `docs/annotations.md`).
        parsed.behaviour.stream_request_body |= upstream.protocol.streams();
        if parsed.behaviour.refused.is_none() {
            parsed.behaviour.refused = upstream.refused.clone();
        }
        parsed.upstream = upstream;
        notes.extend(upstream_notes);
        let (canary, canary_notes) = canary::parse(annotations);
        parsed.canary = canary;
        notes.extend(canary_notes);
        let (cors, cors_notes) = cors::parse(annotations);
        parsed.cors = cors;
        notes.extend(cors_notes);
        let (balancing, balancing_notes) = balance::parse(annotations);
        if parsed.behaviour.refused.is_none() {
            parsed.behaviour.refused = balancing.refused.clone().map(|(name, reason)| (format!("{NGINX_PREFIX}{name}"), reason));
        }
        parsed.balancing = balancing;
        notes.extend(balancing_notes);
        let (limits, rate_notes) = ratelimit::parse(annotations);
        if parsed.behaviour.refused.is_none() {
            parsed.behaviour.refused = limits.refused.clone();
        }
        parsed.rate_limit = limits.rate;
        parsed.connection_cap = limits.connections;
        notes.extend(rate_notes);
        let (mirror, mirror_notes) = mirror::parse(annotations);
        parsed.mirror = mirror;
        notes.extend(mirror_notes);
        let (response, response_notes) = response::parse(annotations);
        parsed.response = response;
        notes.extend(response_notes);
        let (aliases, alias_notes) = alias::parse(annotations);
        parsed.aliases = aliases;
        notes.extend(alias_notes);
        let cipher = ciphers::parse(annotations);
        notes.extend(cipher.notes);
        if parsed.behaviour.refused.is_none() {
            parsed.behaviour.refused = cipher.refused;
        }
        let (custom_headers, custom_header_notes) = header_maps::parse(annotations);
        parsed.custom_headers_map = custom_headers;
        notes.extend(custom_header_notes);
        let (auth, auth_notes) = auth::parse(annotations);
        match auth {
            Auth::Off => {}
            Auth::On(config) => parsed.auth = Some(config),
            Auth::Denied(status, annotation) => denied.push((annotation, status)),
        }
        notes.extend(auth_notes);
        let (auth_tls, auth_tls_notes) = auth_tls::parse(annotations, namespace);
        match auth_tls {
            AuthTls::Off => {}
            AuthTls::On(config) => parsed.auth_tls = Some(config),
            AuthTls::Denied(status, annotation) => denied.push((annotation, status)),
        }
        notes.extend(auth_tls_notes);
        let (basic, basic_notes) = basic::parse(annotations, namespace);
        match basic {
            Basic::Off => {}
            Basic::On(config) => parsed.basic = Some(config),
            Basic::Denied(status, annotation) => denied.push((annotation, status)),
        }
        notes.extend(basic_notes);
    }
    if !denied.is_empty() {
        // 503 (a refused value) wins over 403, as the stronger statement of a broken configuration.
        let status = denied.iter().map(|(_, s)| *s).max().unwrap_or(403);
        let mut keys: Vec<String> = denied.into_iter().map(|(k, _)| k).collect();
        keys.sort();
        parsed.denied = Some(AccessDenial { status, annotations: keys });
    }
    (parsed, notes)
}

fn has_value(annotations: Option<&BTreeMap<String, String>>, name: &str) -> bool {
    annotations.and_then(|a| a.get(&format!("{NGINX_PREFIX}{name}"))).is_some_and(|v| !v.trim().is_empty())
}

/// A comma-separated list of addresses and CIDR blocks, sorted and deduplicated.
pub(super) fn parse_ranges(value: &str) -> Result<Vec<Cidr>, String> {
    let ranges = value
        .split(',')
        .map(str::trim)
        .map(|text| Cidr::parse(text).map_err(|reason| format!("{text:?} {reason}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Cidr::set(ranges))
}

fn activator_list() -> String {
    ACTIVATORS.iter().map(|a| format!("{NGINX_PREFIX}{a}")).collect::<Vec<_>>().join(", ")
}

/// The first access-restricting nginx directive in a snippet, if any (statements split on `;`,
/// `{` and `}`, the directive being the first word).
pub fn access_directive(snippet: &str) -> Option<&'static str> {
    snippet
        .split([';', '{', '}'])
        .filter_map(|statement| statement.split_whitespace().next())
        .find_map(|word| ACCESS_DIRECTIVES.iter().copied().find(|d| *d == word))
}

/// `SecRuleEngine On` in a `modsecurity-snippet`: ModSecurity rules that block requests (its
/// default, and ingress-nginx's, is `DetectionOnly`, which only logs). There is no WAF here, so
/// such an Ingress fails closed, as any access control that cannot be honoured.
pub fn modsecurity_blocks(snippet: &str) -> Option<&'static str> {
    snippet
        .lines()
        .map(|line| line.split_whitespace().map(str::to_ascii_lowercase).collect::<Vec<_>>())
        .any(|words| words.first().map(String::as_str) == Some("secruleengine") && words.get(1).map(|w| w.trim_matches('"')) == Some("on"))
        .then_some("SecRuleEngine On")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn annotations_are_applied_or_reported_by_table() {
        struct Case {
            name: &'static str,
            input: &'static [(&'static str, &'static str)],
            parsed: NginxAnnotations,
            notes: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "rewrite target and use-regex",
                input: &[(REWRITE_TARGET, "/$2"), (USE_REGEX, "true")],
                parsed: NginxAnnotations { rewrite_target: Some("/$2".into()), use_regex: true, ..NginxAnnotations::default() },
                notes: &[],
            },
            Case {
                name: "empty rewrite target is no rewrite",
                input: &[(REWRITE_TARGET, "")],
                parsed: NginxAnnotations::default(),
                notes: &[],
            },
            Case {
                name: "use-regex false",
                input: &[(USE_REGEX, "false")],
                parsed: NginxAnnotations::default(),
                notes: &[],
            },
            Case {
                name: "use-regex garbage is a warning",
                input: &[(USE_REGEX, "yes")],
                parsed: NginxAnnotations::default(),
                notes: &["nginx.ingress.kubernetes.io/use-regex"],
            },
            Case {
                name: "known but unsupported annotation is a warning",
                input: &[("nginx.ingress.kubernetes.io/limit-rate", "100")],
                parsed: NginxAnnotations::default(),
                notes: &["nginx.ingress.kubernetes.io/limit-rate"],
            },
            Case {
                name: "snippet is a warning, never applied",
                input: &[("nginx.ingress.kubernetes.io/configuration-snippet", "expires 1d;")],
                parsed: NginxAnnotations::default(),
                notes: &["nginx.ingress.kubernetes.io/configuration-snippet"],
            },
            Case {
                name: "other prefixes are not ours to judge",
                input: &[("kubernetes.io/ingress.class", "wasm"), ("example.com/x", "y")],
                parsed: NginxAnnotations::default(),
                notes: &[],
            },
        ];
        for case in cases {
            let input = annotations(case.input);
            let (parsed, notes) = parse(Some(&input), "default");
            assert_eq!(parsed, case.parsed, "{}", case.name);
            let keys: Vec<_> = notes.iter().map(|(k, _, _)| k.as_str()).collect();
            assert_eq!(keys, case.notes, "{}", case.name);
            assert!(notes.iter().all(|(_, s, _)| *s == Severity::Warning), "{}", case.name);
        }
    }

    fn denial(pairs: &[(&str, &str)]) -> (Option<AccessDenial>, Vec<AnnotationNote>) {
        let input = annotations(pairs);
        let (parsed, notes) = parse(Some(&input), "default");
        (parsed.denied, notes)
    }

    #[test]
    fn access_controls_fail_closed_by_table() {
        let n = |name: &str| format!("{NGINX_PREFIX}{name}");
        // (case, annotations, expected status, annotations named)
        type Case<'a> = (&'a str, Vec<(String, &'a str)>, Option<u16>, Vec<String>);
        let cases: Vec<Case> = vec![
            ("allow-list, valid: enforced, not denied", vec![(n("whitelist-source-range"), "10.0.0.0/8, 192.168.1.1")], None, vec![]),
            ("deny-list, valid: enforced", vec![(n("denylist-source-range"), "1.2.3.4/32")], None, vec![]),
            ("deny-list, bad", vec![(n("denylist-source-range"), "1.2.3.4/32, x")], Some(503), vec![n("denylist-source-range")]),
            ("allow-list, bad CIDR: ingress-nginx denies the location (503)", vec![(n("whitelist-source-range"), "10.0.0.0/33")], Some(503), vec![n("whitelist-source-range")]),
            ("allow-list, not an address", vec![(n("whitelist-source-range"), "office")], Some(503), vec![n("whitelist-source-range")]),
            ("basic auth: applied (translation reads the Secret)", vec![(n("auth-type"), "basic"), (n("auth-secret"), "htpasswd"), (n("auth-realm"), "x")], None, vec![]),
            ("digest auth: applied (translation reads the Secret)", vec![(n("auth-type"), "digest"), (n("auth-secret"), "htdigest")], None, vec![]),
            ("bad auth type", vec![(n("auth-type"), "kerberos")], Some(503), vec![n("auth-type")]),
            ("external auth: applied", vec![(n("auth-url"), "https://auth.example.com/oauth2/auth"), (n("auth-signin"), "https://auth.example.com/start")], None, vec![]),
            ("external auth with ConfigMap headers: applied (translation reads the ConfigMap)", vec![(n("auth-url"), "https://a.example/x"), (n("auth-proxy-set-headers"), "default/h")], None, vec![]),
            ("external auth with a ConfigMap value ingress-nginx ignores", vec![(n("auth-url"), "https://a.example/x"), (n("auth-proxy-set-headers"), "default/h h")], Some(403), vec![n("auth-proxy-set-headers")]),
            ("external auth, relative URL", vec![(n("auth-url"), "/oauth2/auth")], Some(503), vec![n("auth-url")]),
            ("client certificates are enforced", vec![(n("auth-tls-secret"), "default/ca"), (n("auth-tls-verify-client"), "on")], None, vec![]),
            ("client certificates matched by CN", vec![(n("auth-tls-secret"), "default/ca"), (n("auth-tls-match-cn"), "CN=x")], None, vec![]),
            ("client certificates matched by a broken regex", vec![(n("auth-tls-secret"), "default/ca"), (n("auth-tls-match-cn"), "CN=(")], Some(503), vec![n("auth-tls-match-cn")]),
            ("snippet with deny", vec![(n("configuration-snippet"), "allow 10.0.0.0/8;\ndeny all;")], Some(403), vec![n("configuration-snippet")]),
            ("server snippet with auth_request", vec![(n("server-snippet"), "location /x { auth_request /auth; }")], Some(403), vec![n("server-snippet")]),
            ("header snippet is not access control", vec![(n("configuration-snippet"), "more_set_headers \"X-Deny: all\";")], None, vec![]),
            // modsecurity.go "should enable modsecurity with snippet and block requests".
            ("blocking ModSecurity rules", vec![(n("enable-modsecurity"), "true"), (n("modsecurity-snippet"), "SecRuleEngine On\nSecRule REQUEST_HEADERS:User-Agent \"block-ua\" \"log,deny,id:107,status:403,msg:'UA blocked'\"")], Some(403), vec![n("modsecurity-snippet")]),
            ("ModSecurity detecting only (its default) is not access control", vec![(n("enable-modsecurity"), "true"), (n("modsecurity-snippet"), "SecRuleEngine DetectionOnly\nSecRule REQUEST_HEADERS:User-Agent \"x\" \"deny\"")], None, vec![]),
            ("realm alone does nothing, as in ingress-nginx", vec![(n("auth-realm"), "x"), (n("auth-signin"), "https://a/b")], None, vec![]),
            ("empty activator does nothing", vec![(n("auth-url"), "")], None, vec![]),
            ("several: the refused value sets 503", vec![(n("configuration-snippet"), "deny all;"), (n("whitelist-source-range"), "nope")], Some(503), vec![n("configuration-snippet"), n("whitelist-source-range")]),
            ("basic auth without a Secret", vec![(n("auth-type"), "basic")], Some(503), vec![n("auth-secret")]),
        ];
        for (case, pairs, status, named) in cases {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let (denied, notes) = denial(&pairs);
            assert_eq!(denied.as_ref().map(|d| d.status), status, "{case}");
            assert_eq!(denied.map(|d| d.annotations).unwrap_or_default(), named, "{case}");
            for key in &named {
                let note = notes.iter().find(|(k, _, _)| k == key).unwrap_or_else(|| panic!("{case}: no note for {key}"));
                assert_eq!(note.1, Severity::Error, "{case}: {key} must be an error");
                assert!(note.2.contains("fail closed"), "{case}: {}", note.2);
            }
            if status.is_none() {
                assert!(notes.iter().all(|(_, s, _)| *s == Severity::Warning), "{case}: {notes:?}");
            }
        }
    }

    #[test]
    fn cidrs_parse_like_ingress_nginx_takes_them() {
        let text = |t: &str| Cidr::parse(t).map(|c| c.to_string());
        assert_eq!(text("10.0.0.0/8"), Ok("10.0.0.0/8".into()));
        assert_eq!(text("10.1.2.3/8"), Ok("10.0.0.0/8".into()), "host bits cleared");
        assert_eq!(text("192.168.1.1"), Ok("192.168.1.1/32".into()));
        assert_eq!(text("0.0.0.0/0"), Ok("0.0.0.0/0".into()));
        assert_eq!(text("::1"), Ok("::1/128".into()));
        assert_eq!(text("2001:db8:ffff::1/32"), Ok("2001:db8::/32".into()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0/8").is_err());
        assert!(Cidr::parse("").is_err());
    }

    #[test]
    fn source_ranges_are_read_like_ingress_nginx() {
        let n = |name: &str| format!("{NGINX_PREFIX}{name}");
        let cidrs = |list: &[&str]| list.iter().map(|t| Cidr::parse(t).unwrap()).collect::<Vec<_>>();
        let parsed = |pairs: &[(String, &str)]| {
            let input: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
            parse(Some(&input), "default").0
        };
        let both = parsed(&[(n("whitelist-source-range"), "10.0.0.0/8"), (n("allowlist-source-range"), "192.168.0.0/16, 10.1.1.1")]);
        assert_eq!(both.allow_sources, cidrs(&["10.1.1.1", "192.168.0.0/16"]), "allowlist wins over its old name, sorted");
        let old = parsed(&[(n("whitelist-source-range"), " 10.0.0.0/8 ,10.0.0.0/8"), (n("denylist-source-range"), "10.9.0.0/16")]);
        assert_eq!((old.allow_sources, old.deny_sources), (cidrs(&["10.0.0.0/8"]), cidrs(&["10.9.0.0/16"])));
        let ingress = crate::state::ObjectKey::new("default", "web");
        let location = Location { ingress: &ingress, service_name: "web", service_port: "80", path: "/" };
        let policy = parsed(&[(n("denylist-source-range"), "::1")]).policy(&behaviour::NginxDefaults::default(), &location);
        assert_eq!((policy.allow_sources, policy.deny_sources), (vec![], cidrs(&["::1"])));
    }

    #[test]
    fn satisfy_any_hands_the_lists_to_the_filter_only_with_auth() {
        let n = |name: &str| format!("{NGINX_PREFIX}{name}");
        let ingress = crate::state::ObjectKey::new("default", "web");
        let location = Location { ingress: &ingress, service_name: "web", service_port: "80", path: "/" };
        let lists = [(n("whitelist-source-range"), "10.0.0.0/8"), (n("denylist-source-range"), "10.9.9.9")];
        let basic = [(n("auth-type"), "basic"), (n("auth-secret"), "htpasswd")];
        let url = [(n("auth-url"), "https://auth.example/check")];
        let read = |extra: &[(String, &str)], satisfy: &str| {
            let mut input: BTreeMap<String, String> = lists.iter().chain(extra).map(|(k, v)| (k.clone(), v.to_string())).collect();
            input.insert(n("satisfy"), satisfy.to_string());
            let (parsed, notes) = parse(Some(&input), "default");
            let policy = parsed.policy(&behaviour::NginxDefaults::default(), &location);
            let notes = notes.iter().filter(|(k, _, _)| *k == n("satisfy")).count();
            (parsed.satisfy_any(), parsed.lists_first().is_some(), policy.allow_sources.len() + policy.deny_sources.len(), notes)
        };
        let any = wasm_ingress_filter::table::SatisfyAny { allow: vec!["10.0.0.0/8".into()], deny: vec!["10.9.9.9/32".into()] };
        // (extra annotations, satisfy) -> (the filter's `any` lists, the filter checks the lists
        // before credentials (`all`), lists left to Envoy, notes on satisfy)
        let rows: [(&[(String, &str)], &str, _); 7] = [
            (&basic, "any", (Some(any.clone()), false, 0, 0)),
            (&url, " any ", (Some(any), false, 0, 0)),
            (&basic, "all", (None, true, 2, 0)),
            (&url, "all", (None, true, 2, 0)),
            (&[], "any", (None, false, 2, 1)),
            (&basic, "ANY", (None, true, 2, 1)),
            (&basic, "", (None, true, 2, 1)),
        ];
        for (extra, satisfy, want) in rows {
            assert_eq!(read(extra, satisfy), want, "{extra:?} satisfy {satisfy:?}");
        }
    }

    #[test]
    fn names_ingress_nginx_does_not_read_are_ignored_with_what_was_meant() {
        let input: BTreeMap<String, String> =
            [("secure-backends", "true"), ("made-up", "1")].iter().map(|(k, v)| (format!("{NGINX_PREFIX}{k}"), v.to_string())).collect();
        let (parsed, notes) = parse(Some(&input), "default");
        assert_eq!(parsed.upstream, Upstream::default(), "nothing is applied");
        let messages: Vec<&str> = notes.iter().map(|(_, _, message)| message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unknown ingress-nginx annotation nginx.ingress.kubernetes.io/made-up; ignored",
                "unknown ingress-nginx annotation nginx.ingress.kubernetes.io/secure-backends; ignored (removed from ingress-nginx; backend-protocol: HTTPS replaces it)",
            ]
        );
    }

    #[test]
    fn unsupported_annotation_message_says_ignored() {
        let input = annotations(&[("nginx.ingress.kubernetes.io/limit-rate", "100")]);
        let (_, notes) = parse(Some(&input), "default");
        assert_eq!(notes[0].2, "annotation nginx.ingress.kubernetes.io/limit-rate is not supported yet; ignored");
    }
}
