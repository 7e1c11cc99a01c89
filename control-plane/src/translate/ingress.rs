//! ClusterState -> Model + Diagnostics: the Ingress v1 spec (plus the ingress-nginx annotations we
//! support) turned into a route table, upstream clusters and TLS servers. Pure and total: no I/O, no
//! Envoy types, never fails — a bad object (or part of one) is skipped with a diagnostic naming the
//! object and field, and everything else is still served.
//!
//! Rules, in the order they apply:
//! - **Class.** An Ingress is ours if `spec.ingressClassName` names an IngressClass whose
//!   `spec.controller` is ours, or (when no IngressClass of that name exists) equals
//!   `--ingress-class`; else if the legacy `kubernetes.io/ingress.class` annotation names our class;
//!   else, with no class at all, if one of our IngressClasses is annotated
//!   `ingressclass.kubernetes.io/is-default-class: "true"`. Others are ignored without a diagnostic.
//! - **Age.** Ingresses are processed oldest first (`metadata.creationTimestamp`; for Ingresses
//!   created in the same second, `namespace/name` descending, ingress-nginx's quirk; manifests
//!   without timestamps go first, by `namespace/name`). Whenever two claim the same thing, the
//!   older wins and the other gets a diagnostic naming the winner.
//! - **Hosts.** Lower-cased; `*.example.com` allowed; IP addresses, ports, paths or bad DNS labels
//!   are refused (rule skipped). Rules without a host go to the host-less entry `""`. Ingresses that
//!   share a host are merged.
//! - **Paths.** Must start with `/` (a missing path is `/`). `Exact` -> `PathMatch::Exact`; `Prefix`
//!   and `ImplementationSpecific` -> `PathMatch::Prefix`; identical host + match (Prefix `/a` and
//!   `/a/` are identical) -> oldest wins.
//! - **ingress-nginx regex mode** (as ingress-nginx's `enforceRegexModifier`): if any path on a host
//!   comes from an Ingress with `use-regex: "true"`, or with a `rewrite-target` that differs from that
//!   path, then EVERY path on that host, from every Ingress and of every pathType (ingress-nginx writes
//!   `location ~* "^<path>"` even for Exact), becomes `PathMatch::Regex("(?i)" + path)`: case-
//!   insensitive, anchored at the start only. Regex routes are ordered as ingress-nginx orders its
//!   locations (nginx takes the first regex that matches): longer path first, then reverse byte
//!   order of the path, then age. `rewrite-target` becomes `PathRewrite::Template(target)` on the
//!   paths of its Ingress, except where the target equals the path (ingress-nginx `needsRewrite`).
//!   Every route is checked with the filter's own `check_route` (invalid regex -> diagnostic, path
//!   skipped), and the whole table with `CompiledTable::compile`, so the filter never refuses it.
//! - **Backends** (see `backends`): a missing Service or port answers 503 (warning); no ready
//!   endpoints -> an empty cluster (Envoy answers 503; warning).
//! - **Default backends** (ingress-nginx behaviour): an Ingress with `spec.defaultBackend` AND rules
//!   uses it as the fallback of each of its hosts (`VirtualHost::fallback`; oldest wins per host); an
//!   Ingress with `spec.defaultBackend` and NO rules configures the catch-all (`RouteTable::
//!   default_backend`; oldest wins). An Ingress with rules does not become the catch-all, as in
//!   ingress-nginx (whose catch-all then stays the controller's default backend: for us a 404).
//! - **TLS** (see `tls`): each `spec.tls[]` entry whose Secret holds a valid, matching certificate
//!   and key serves its hosts (or, without hosts, the Ingress's rule hosts) by SNI; a bad entry is an
//!   error and skipped (the hosts are still served, over HTTPS with the default certificate, and
//!   still redirected to HTTPS, as ingress-nginx). A server name claimed by two Secrets:
//!   oldest Ingress wins. Envoy picks a certificate by its own SANs, so the certificates are ordered
//!   for each claimed name to get its own, and one from another namespace that would still be
//!   offered for a name it was not given is withdrawn with an error (see `claims`, `sni`).
//! - **Host ownership.** By default Ingresses of every namespace that name a host are merged (as
//!   ingress-nginx does); with `--host-ownership=namespace` the oldest Ingress's namespace owns the
//!   host and other namespaces' rules and TLS names for it are refused.
//! - **Fail closed** (see `annotations`): an Ingress asking for an access control we cannot enforce
//!   (`auth-type`, `auth-tls-secret`, a bad `auth-url`, source ranges, access directives in snippets)
//!   answers 403 — 503 for a value ingress-nginx itself refuses — on all its paths and default
//!   backends, with an error diagnostic; it still claims its paths, so no other Ingress serves them.
//! - `route_table.version` is the hex SHA-256 of the table's JSON with an empty version.

mod alias;
mod annotations;
pub mod external_name;
mod auth_tls;
mod auth;
mod basic;
mod backends;
mod balance;
pub mod behaviour;
mod canary;
pub(crate) mod ciphers;
mod cors;
mod header_maps;
pub mod endpoints;
pub mod incremental;
mod mirror;
mod passthrough;
mod ratelimit;
mod response;
mod claims;
pub mod registry;
#[cfg(test)]
mod tests;
mod sni;
mod snippet;
pub(crate) mod variables;
mod table_size;
pub(crate) mod tls;
mod translator;
mod upstream;
mod validators;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressClass};
use sha2::{Digest, Sha256};
use wasm_ingress_filter::cluster::ClusterName;
use wasm_ingress_filter::hostname::HostName;
use wasm_ingress_filter::matcher::{forwards, CompiledTable};
use wasm_ingress_filter::table::{AnswerHeader, Cors, Forward, Origin, PathMatch, PathRewrite, Redirect, Route, RouteAction, RouteTable, VirtualHost};

use crate::cli::{DEFAULT_CONTROLLER_NAME, DEFAULT_INGRESS_CLASS};
use crate::model::{
    ClientRateLimit, CustomErrors, Diagnostic, ObjectRef, RoutePolicy, Severity, Translation, UpstreamOptions,
};
use crate::state::{ClusterState, ObjectKey};

pub use annotations::{access_directive as snippet_access_directive, modsecurity_blocks, parse as parse_annotations, denied_body, AccessDenial, NginxAnnotations, NGINX_PREFIX, REWRITE_TARGET, USE_REGEX};
pub use backends::{cluster_name, local_address, unavailable, SERVICE_NAME_LABEL, UNAVAILABLE_BODY};
pub use claims::HostOwnership;
pub use tls::certificate_from_secret;

pub use behaviour::{GlobalAuthFlags, NginxDefaults};
pub use auth::global as global_auth;
use variables::Location;


/// The legacy class annotation (before `spec.ingressClassName`).
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// Marks the cluster's default IngressClass.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// Which Ingresses are ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateOptions {
    /// IngressClass name we serve (`--ingress-class`).
    pub ingress_class: String,
    /// `spec.controller` value of IngressClasses that are ours (`--controller-name`).
    pub controller_name: String,
    /// Skip EndpointSlice addresses that are loopback, link-local or metadata (`--refuse-local-endpoints`).
    pub refuse_local_endpoints: bool,
    /// Whether Ingresses of several namespaces may share a host (`--host-ownership`).
    pub host_ownership: HostOwnership,
    /// `--default-ssl-certificate`: the Secret offered to clients with no or an unknown SNI.
    pub default_certificate: Option<ObjectKey>,
    /// Unix time against which certificates are checked for expiry (a warning); `None`: not checked.
    /// Passed in so translation stays pure and deterministic.
    pub now: Option<i64>,
    /// ingress-nginx ConfigMap defaults (ssl-redirect, body size, timeouts, HSTS).
    pub defaults: NginxDefaults,
    /// `--default-backend-service`: the Service (its first port) that answers what no Ingress
    /// serves and the `custom-http-errors` of Ingresses without a usable `default-backend`.
    pub default_backend_service: Option<ObjectKey>,
    /// The secret that error-page requests carry (see `wasm_ingress_filter::table::ERROR_PAGE_HEADER`):
    /// `serve` makes one from the OS's randomness at start; other commands use
    /// [`PLACEHOLDER_ERROR_PAGE_TOKEN`], as they serve nothing.
    pub error_page_token: String,
    /// `serve --trusted-proxy-hops` above 0 (ingress-nginx's `use-forwarded-headers`): the route
    /// table's `trust_forwarded_headers`.
    pub trust_forwarded_headers: bool,
    /// `serve --use-proxy-protocol`: the route table's `proxy_protocol`.
    pub proxy_protocol: bool,
    /// `serve --log-format-upstream` logs `$namespace`, `$ingress_name`, `$service_name` or
    /// `$service_port`: the route table's `log_route`.
    pub log_route: bool,
    /// `serve --enable-access-log-for-default-backend`: the route table's `default_server_logged`.
    pub default_server_logged: bool,
    /// `--disable-catch-all`: Ingresses with a `spec.defaultBackend` are ignored (see [`catch_all`]).
    pub disable_catch_all: bool,
}

/// The error-page token of translations that are not served (`validate`, `explain`, `migrate`).
pub const PLACEHOLDER_ERROR_PAGE_TOKEN: &str = "not-served-placeholder-token";

/// A fresh [`TranslateOptions::error_page_token`]: 128 bits from the OS, in hex.
pub fn random_error_page_token() -> anyhow::Result<String> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness from the OS for the error-page token"))?;
    Ok(hex::encode(bytes))
}

impl Default for TranslateOptions {
    /// The CLI defaults (`wasm`, `wasm-ingress.dev/controller`).
    fn default() -> TranslateOptions {
        TranslateOptions {
            ingress_class: DEFAULT_INGRESS_CLASS.into(),
            controller_name: DEFAULT_CONTROLLER_NAME.into(),
            refuse_local_endpoints: false,
            host_ownership: HostOwnership::Merge,
            default_certificate: None,
            now: None,
            defaults: NginxDefaults::default(),
            default_backend_service: None,
            error_page_token: PLACEHOLDER_ERROR_PAGE_TOKEN.into(),
            trust_forwarded_headers: false,
            proxy_protocol: false,
            log_route: false,
            default_server_logged: false,
            disable_catch_all: false,
        }
    }
}

/// Whether `--disable-catch-all` keeps this Ingress out: it has a `spec.defaultBackend`, as
/// ingress-nginx's `hasCatchAllIngressRule` reads it.
pub(crate) fn catch_all(options: &TranslateOptions, ingress: &Ingress) -> bool {
    options.disable_catch_all && ingress.spec.as_ref().is_some_and(|spec| spec.default_backend.is_some())
}

/// Where the table's catch-all default backend comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultBackendSource {
    /// The `spec.defaultBackend` of an Ingress without rules.
    Ingress(Origin),
    /// `serve --default-backend-service NS/NAME`.
    Flag(ObjectKey),
}

impl std::fmt::Display for DefaultBackendSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DefaultBackendSource::Ingress(origin) => write!(f, "{origin}"),
            DefaultBackendSource::Flag(service) => write!(f, "--default-backend-service {service}"),
        }
    }
}

/// Facts about a translation that are not config: for `explain` and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranslationNotes {
    /// Hosts in ingress-nginx regex mode -> why (which Ingress and annotation).
    pub regex_hosts: BTreeMap<String, String>,
    /// Host -> where its `fallback` comes from (`ns/name: spec.defaultBackend`).
    pub host_fallbacks: BTreeMap<String, Origin>,
    /// Host -> the Ingress whose checks its `implicit_root` holds (the oldest naming it).
    pub implicit_roots: BTreeMap<String, ObjectKey>,
    /// Where the table's `default_backend` comes from.
    pub default_backend: Option<DefaultBackendSource>,
    /// Ingresses not of our class (not served).
    pub ignored_ingresses: BTreeSet<ObjectKey>,
    /// `server-alias` names served -> the host they are an alias of.
    pub aliases: BTreeMap<String, String>,
}

/// Seconds since the Unix epoch, for [`TranslateOptions::now`].
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Translate the whole state. Never fails: bad objects are skipped with a diagnostic.
pub fn translate(state: &ClusterState, options: &TranslateOptions) -> Translation {
    translate_with_notes(state, options).0
}

/// Diagnostics being collected (sorted and deduplicated at the end).
#[derive(Debug, Default)]
pub(crate) struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub(crate) fn push(&mut self, object: ObjectRef, field: String, severity: Severity, message: String) {
        self.0.push(Diagnostic { object, field, message, severity });
    }
}

/// How an Ingress path matches (`spec.rules[].http.paths[].pathType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathType {
    Exact,
    Prefix,
    ImplementationSpecific,
}

impl PathType {
    fn parse(text: &str) -> Option<PathType> {
        match text {
            "Exact" => Some(PathType::Exact),
            "Prefix" => Some(PathType::Prefix),
            "ImplementationSpecific" => Some(PathType::ImplementationSpecific),
            _ => None,
        }
    }
}

/// One path of one Ingress, resolved, before the host's mode is known.
/// Collected in age order (oldest Ingress first, then rule and path order); sorts are stable, so
/// this order breaks every tie.
#[derive(Debug, Clone)]
struct PathCandidate {
    ingress: ObjectKey,
    /// `spec.rules[i].http.paths[j]`
    field: String,
    path: String,
    path_type: PathType,
    action: RouteAction,
    /// `rewrite-target`, if it applies to this path (set and different from the path).
    rewrite: Option<String>,
    /// The HTTPS redirect of this path: (on a host without TLS, on a host with TLS).
    https_redirect: (Option<Redirect>, Option<Redirect>),
    /// `custom-headers` for the filter's own answers on this path.
    answer_headers: Vec<AnswerHeader>,
    /// How its Ingress speaks to backends (a canary attached to it is spoken to the same way).
    upstream: UpstreamOptions,
}

#[derive(Debug, Default)]
struct HostBuild {
    candidates: Vec<PathCandidate>,
    /// (action, ingress, origin)
    fallback: Option<(RouteAction, ObjectKey, Origin)>,
    /// Why this host is in regex mode.
    regex_reason: Option<String>,
    /// `app-root` of the oldest Ingress of this host that sets one.
    app_root: Option<Redirect>,
    /// The oldest Ingress of this host asking for `from-to-www-redirect`.
    www_redirect: Option<ObjectKey>,
    /// The HTTPS redirect of the implicit `/` location ingress-nginx gives the host, from the
    /// oldest Ingress naming it: (without, with TLS for the host); set once.
    root_https_redirect: Option<(Option<Redirect>, Option<Redirect>)>,
    /// The rest of that implicit `/` location: the oldest Ingress's checks in front of
    /// ingress-nginx's own default backend (see [`VirtualHost::implicit_root`]), and that
    /// Ingress; set with `root_https_redirect`.
    implicit_root: Option<(RouteAction, ObjectKey)>,
    /// The backend of the host's `/` location (its oldest `Prefix` / `ImplementationSpecific`
    /// `/` path): (Ingress, path field, backend), where `ssl-passthrough` sends the host's TLS.
    root_backend: Option<(ObjectKey, String, IngressBackend)>,
}

/// Translate, and also say how (for `explain`). The stages are [`translator::Translator`]'s.
pub fn translate_with_notes(state: &ClusterState, options: &TranslateOptions) -> (Translation, TranslationNotes) {
    let started = std::time::Instant::now();
    let (mut translator, ours) = translator::Translator::new(state, options);
    let (selected, ingresses) = (started.elapsed(), ours.len());
    for (key, ingress) in ours {
        translator.ingress(key, ingress);
    }
    let collected = started.elapsed();
    let translated = translator.finish();
    tracing::debug!(ingresses, ?selected, ?collected, finished = ?started.elapsed(), "translation stages (cumulative)");
    translated
}

/// A server-level setting per host (`auth-tls-*`, `ssl-ciphers`): for each host of the rules of
/// `ours` (oldest first), what `read` gives for the oldest Ingress with a rule for that host that
/// has one, as ingress-nginx takes a server's settings from its first Ingress. A canary's own
/// annotations are ignored, as its other server-level ones.
fn server_settings<T: Clone>(
    ours: &[(&ObjectKey, &Ingress)],
    read: impl Fn(&ObjectKey, &BTreeMap<String, String>) -> Option<T>,
) -> BTreeMap<String, T> {
    let mut hosts = BTreeMap::new();
    for (key, ingress) in ours {
        let Some(annotations) = ingress.metadata.annotations.as_ref() else { continue };
        if canary::parse(annotations).0.is_some() {
            continue;
        }
        let Some(setting) = read(key, annotations) else { continue };
        let rules = ingress.spec.as_ref().and_then(|s| s.rules.as_deref()).unwrap_or_default();
        for host in rules.iter().filter_map(|r| normalize_host(r.host.as_deref().unwrap_or_default()).ok()) {
            if !host.is_empty() {
                hosts.entry(host).or_insert_with(|| setting.clone());
            }
        }
    }
    hosts
}

/// The one cluster a path forwards to (not a redirect, an answer or a weighted split).
fn single_cluster(action: &RouteAction) -> Option<ClusterName> {
    match action {
        RouteAction::Forward(forward) if forward.backends.len() == 1 => forward.backends.first().map(|b| b.cluster.clone()),
        _ => None,
    }
}

/// Fail closed: an Ingress whose access control cannot be enforced answers every path with the
/// denial's status instead of its backend — also a path whose backend did not resolve, so that no
/// other Ingress's route serves it open.
fn fail_closed(action: Option<RouteAction>, nginx: &NginxAnnotations) -> Option<RouteAction> {
    match &nginx.denied {
        Some(denial) => Some(RouteAction::respond(denial.status, denied_body(denial.status))),
        None => action,
    }
}

/// The users of a basic-auth Secret into `passwords`; a Secret that cannot be used denies the
/// Ingress (503, as ingress-nginx), users whose hash format is not checked are a warning.
fn read_passwords(
    config: &basic::BasicConfig,
    state: &ClusterState,
    object: &ObjectRef,
    nginx: &mut NginxAnnotations,
    passwords: &mut BTreeMap<String, BTreeMap<String, String>>,
    diagnostics: &mut Diagnostics,
) {
    let field = format!("metadata.annotations[{NGINX_PREFIX}auth-secret]");
    match basic::users(config, state.secrets.get(&config.secret).map(std::sync::Arc::as_ref)) {
        Ok((users, unsupported)) => {
            if !unsupported.is_empty() && config.digest {
                let message = format!(
                    "Secret {}: the entries of {} are not htdigest lines of realm {:?} (user:realm:HA1, with a 32-character HA1): they cannot sign in",
                    config.secret,
                    unsupported.join(", "),
                    config.realm,
                );
                diagnostics.push(object.clone(), field.clone(), Severity::Warning, message);
            } else if !unsupported.is_empty() {
                let message = format!(
                    "Secret {}: the passwords of {} use a format not checked here (bcrypt above cost {}, SHA-crypt above {} rounds, or not an htpasswd hash; use bcrypt, $apr1$, $5$/$6$ or {{SHA}}): they cannot sign in",
                    config.secret,
                    unsupported.join(", "),
                    wasm_ingress_filter::basic::MAX_BCRYPT_COST,
                    wasm_ingress_filter::basic::MAX_SHA_CRYPT_ROUNDS,
                );
                diagnostics.push(object.clone(), field, Severity::Warning, message);
            }
            passwords.insert(config.list_key(), users);
        }
        Err(reason) => {
            let message = format!("{reason}; every path of this Ingress answers 503 (fail closed, as ingress-nginx denies the location)");
            diagnostics.push(object.clone(), field, Severity::Error, message);
            nginx.deny(503, format!("{NGINX_PREFIX}auth-secret"));
        }
    }
}

/// The key of `policy` in the route table ("" for the default policy), recording it in `policies`.
fn policy_key(policy: RoutePolicy, default: &RoutePolicy, policies: &mut BTreeMap<String, RoutePolicy>) -> String {
    if policy == *default {
        return String::new();
    }
    let key = policy.key();
    policies.insert(key.clone(), policy);
    key
}

/// The policies an Ingress's routes use: its own (`key`, "" for the default) and, with
/// `enable-cors`, the two CORS ones.
struct RoutePolicies {
    key: String,
    cors: Option<wasm_ingress_filter::table::Cors>,
    /// `auth-url`: the filter's auth request, timed out by the policy's read timeout.
    auth: Option<wasm_ingress_filter::table::ExternalAuth>,
    /// `auth-type: basic`.
    basic_auth: Option<wasm_ingress_filter::table::BasicAuth>,
    /// `limit-connections`, counted in a zone named after the Ingress.
    connection_limit: Option<wasm_ingress_filter::table::ConnectionLimit>,
    /// `satisfy: "any"` with auth: the address lists the filter checks instead of Envoy.
    satisfy_any: Option<wasm_ingress_filter::table::SatisfyAny>,
    /// `satisfy: "all"` with auth: the address lists the filter checks before the credentials.
    lists_first: Option<wasm_ingress_filter::table::SatisfyAny>,
    /// `upstream-vhost`, with the route's location variables written in.
    host_rewrite: Option<String>,
}

/// What one route adds to its Ingress's policy.
struct RouteExtras<'a> {
    /// The host's client-certificate check sends these headers (see
    /// [`RoutePolicy::client_certificate_headers`]).
    client_headers: Option<bool>,
    /// The route's backend as the Ingress names it (the default backend's headers name it).
    backend: Option<&'a IngressBackend>,
    /// The `default-backend` Service answers for this backend: ingress-nginx's headers for it.
    fell_back: bool,
    /// `custom-http-errors` and the cluster answering them.
    error_pages: Option<ErrorPages<'a>>,
    /// A host's implicit `/` location, answered by `--default-backend-service` or Envoy's 404 (see
    /// [`RoutePolicy::answers_not_found`]): what only concerns an Ingress's own upstreams
    /// (timeouts, tries, upstream headers, hashing, mirroring) is left at the default.
    answers_not_found: bool,
}

/// An Ingress's `custom-http-errors`, as its routes' policies carry them.
struct ErrorPages<'a> {
    codes: &'a [u16],
    /// The `default-backend` cluster answering them (none: Envoy answers 404).
    cluster: Option<&'a ClusterName>,
    /// [`TranslateOptions::error_page_token`].
    token: &'a str,
}

impl RoutePolicies {
    /// The policies of a route of `nginx`'s Ingress whose path is `path` (a sticky cookie's
    /// default `Path`), with its `extras`, registered in `policies`.
    fn register(
        nginx: &NginxAnnotations,
        ingress: &ObjectKey,
        defaults: &NginxDefaults,
        path: &str,
        extras: RouteExtras<'_>,
        default_policy: &RoutePolicy,
        policies: &mut BTreeMap<String, RoutePolicy>,
    ) -> RoutePolicies {
        let rate_limit = nginx.rate_limit.as_ref().map(|rate| ClientRateLimit {
            zone: ingress.to_string(),
            requests: rate.requests,
            per_minute: rate.per_minute,
            burst: rate.burst,
            exempt: rate.exempt.clone(),
            status: defaults.limit_req_status_code,
        });
        let (service_name, service_port) = backends::service_name_port(extras.backend);
        let location = Location { ingress, service_name: &service_name, service_port: &service_port, path };
        let mut policy = RoutePolicy {
            hash: nginx.balancing.hash.as_ref().filter(|hash| !matches!(hash, balance::Hashing::Subset(_))).map(|hash| hash.on(path)),
            rate_limit,
            mirror: nginx.mirror.clone(),
            client_certificate_headers: extras.client_headers,
            ..nginx.policy(defaults, &location)
        };
        let host_rewrite = nginx.behaviour.upstream_vhost.as_ref().map(|vhost| vhost.resolve(&location).to_string());
        if extras.answers_not_found {
            policy = RoutePolicy {
                answers_not_found: true,
                upstream_idle_timeout: default_policy.upstream_idle_timeout,
                tries: default_policy.tries,
                request_headers: default_policy.request_headers.clone(),
                hash: None,
                mirror: None,
                ..policy
            };
        }
        if let Some(backend) = extras.backend.filter(|_| extras.fell_back) {
            backends::default_backend_headers(&mut policy, ingress, backend);
        }
        policy.custom_errors = extras.error_pages.map(|pages| CustomErrors {
            codes: pages.codes.to_vec(),
            cluster: pages.cluster.cloned(),
            token: pages.token.to_string(),
            headers: backends::backend_identity(ingress, extras.backend),
        });
        let cors = nginx.cors.as_ref().map(|config| cors::route_rule(config, &policy, |p| policy_key(p, default_policy, policies)));
        let auth = nginx.auth.as_ref().map(|config| {
            let mut rule = config.rule(policy.upstream_idle_timeout);
            if let Some(cache) = rule.cache.as_mut() {
                cache.location = path.to_string(); // ingress-nginx's auth location per path
            }
            rule
        });
        let basic_auth = nginx.basic.as_ref().map(basic::BasicConfig::rule);
        let connection_limit = nginx.connection_cap.as_ref().map(|cap| wasm_ingress_filter::table::ConnectionLimit {
            zone: ingress.to_string(),
            limit: cap.limit,
            exempt: cap.exempt.iter().map(ToString::to_string).collect(),
            status: defaults.limit_conn_status_code,
        });
        let (satisfy_any, lists_first) = (nginx.satisfy_any(), nginx.lists_first());
        RoutePolicies { key: policy_key(policy, default_policy, policies), cors, auth, basic_auth, connection_limit, satisfy_any, lists_first, host_rewrite }
    }
}

/// A backend's action with the Ingress's policies and `upstream-vhost`; a backend that speaks
/// FastCGI answers 503. The 503 of a missing Service carries the Ingress's CORS rule (nginx's
/// location still has its CORS block); a denial does not (ingress-nginx's denied location has none).
fn for_backend(action: RouteAction, nginx: &NginxAnnotations, route_policies: &RoutePolicies) -> RouteAction {
    match action {
        RouteAction::Respond(respond) if nginx.denied.is_none() => {
            RouteAction::Respond(wasm_ingress_filter::table::Respond { cors: route_policies.cors.clone().map(Box::new), ..respond })
        }
        RouteAction::Forward(_) if nginx.upstream.protocol == upstream::BackendProtocol::Fcgi => unavailable(),
        RouteAction::Forward(mut forward) => {
            forward.policy = route_policies.key.clone();
            forward.cors = route_policies.cors.clone().map(Box::new);
            forward.auth = route_policies.auth.clone().map(Box::new);
            forward.basic_auth = route_policies.basic_auth.clone().map(Box::new);
            forward.connection_limit = route_policies.connection_limit.clone().map(Box::new);
            forward.satisfy_any = route_policies.satisfy_any.clone().map(Box::new);
            forward.lists_first = route_policies.lists_first.clone().map(Box::new);
            forward.host_rewrite = route_policies.host_rewrite.clone();
            forward.response = response_rewrite(nginx).map(Box::new);
            forward.subset_hash = nginx.balancing.subset_key().map(Box::new);
            forward.affinity_cookie = nginx.balancing.affinity_cookie().map(String::from);
            forward.affinity_cookie_expires = nginx.balancing.affinity_cookie_expires();
            RouteAction::Forward(forward)
        }
        other => other,
    }
}

/// The route's response rewrites: `proxy-redirect-*` / `proxy-cookie-*`, and the sticky cookie
/// whose `SameSite=None` is conditional.
fn response_rewrite(nginx: &NginxAnnotations) -> Option<wasm_ingress_filter::table::ResponseRewrite> {
    let conditional = nginx.balancing.conditional_samesite_none.clone();
    match (nginx.response.clone(), conditional) {
        (response, None) => response,
        (response, Some(cookie)) => Some(wasm_ingress_filter::table::ResponseRewrite { conditional_samesite_none: Some(cookie), ..response.unwrap_or_default() }),
    }
}

/// A path's action after the Ingress's annotations: a `permanent-`/`temporal-redirect` answers
/// instead of the backend, whether or not the backend's Service exists (nginx's `return` needs no
/// upstream; ingress-nginx's e2e `redirect.go` has none), but not instead of a fail-closed
/// denial; a backend gets the policy and the upstream Host.
fn shape(action: RouteAction, nginx: &NginxAnnotations, route_policies: &RoutePolicies) -> RouteAction {
    redirected(nginx, route_policies.cors.clone().map(Box::new)).unwrap_or_else(|| for_backend(action, nginx, route_policies))
}

/// The `permanent-`/`temporal-redirect` answer of the Ingress's locations, unless it fails closed;
/// with the location's CORS rule (the template's CORS block comes before the `return`).
fn redirected(nginx: &NginxAnnotations, cors: Option<Box<Cors>>) -> Option<RouteAction> {
    match (&nginx.denied, &nginx.behaviour.redirect) {
        (None, Some(redirect)) => Some(RouteAction::Redirect(Redirect { cors, ..redirect.clone() })),
        _ => None,
    }
}

/// The names a TLS entry asks a certificate for: its hosts, or without any the Ingress's hosts.
fn requested_tls_names(entry: &k8s_openapi::api::networking::v1::IngressTLS, own_hosts: &[String]) -> Vec<String> {
    match entry.hosts.as_deref() {
        Some(listed) if !listed.is_empty() => listed.iter().filter_map(|h| normalize_host(h).ok()).filter(|h| !h.is_empty()).collect(),
        _ => own_hosts.iter().filter(|h| !h.is_empty()).cloned().collect(),
    }
}

/// Whether `names` covers `host`, exactly or through a one-label wildcard.
fn covers(names: &BTreeSet<String>, host: &str) -> bool {
    if host.is_empty() {
        return false; // host-less rules get no ssl-redirect (there is no name to have a certificate for)
    }
    names.contains(host) || host.split_once('.').is_some_and(|(_, suffix)| names.contains(&format!("*.{suffix}")))
}

/// The virtual hosts that `from-to-www-redirect` adds: the other name of each host asking for it
/// (`www.x` <-> `x`), unless some Ingress defines that name itself.
fn www_redirect_hosts(hosts: &BTreeMap<String, HostBuild>, defaults: &NginxDefaults) -> Vec<VirtualHost> {
    hosts
        .iter()
        .filter(|(_, build)| build.www_redirect.is_some())
        .filter_map(|(host, _)| {
            let other = behaviour::www_counterpart(host).filter(|other| !hosts.contains_key(other))?;
            Some(VirtualHost {
                host: other,
                routes: Vec::new(),
                fallback: Some(RouteAction::Redirect(behaviour::www_redirect(host, defaults))),
                fallback_https_redirect: None,
                implicit_root: None,
                app_root: None,
                client_certificate: None,
            })
        })
        .collect()
}

/// The route of one candidate in the host's mode.
fn route_for(candidate: &PathCandidate, regex_mode: bool) -> Route {
    let origin = candidate.ingress.origin(&candidate.field);
    if regex_mode {
        let action = match (&candidate.action, &candidate.rewrite) {
            (RouteAction::Forward(forward), Some(target)) => {
                let mut forward = forward.clone();
                forward.rewrite = Some(PathRewrite::Template(target.clone()));
                RouteAction::Forward(forward)
            }
            (action, _) => action.clone(),
        };
        return Route { path: regex_match(&candidate.path), action, origin, https_redirect: None, answer_headers: candidate.answer_headers.clone() };
    }
    let path = match candidate.path_type {
        PathType::Exact => PathMatch::Exact(candidate.path.clone()),
        PathType::Prefix | PathType::ImplementationSpecific => PathMatch::Prefix(candidate.path.clone()),
    };
    Route { path, action: candidate.action.clone(), origin, https_redirect: None, answer_headers: candidate.answer_headers.clone() }
}

/// The regex ingress-nginx writes for a path on a host in regex mode (`location ~* "^<path>"`; the
/// filter anchors regexes at the start).
pub fn regex_match(path: &str) -> PathMatch {
    PathMatch::Regex(format!("(?i){path}"))
}

fn trim_trailing_slash(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/"
    } else {
        trimmed
    }
}

fn describe_match(path: &PathMatch) -> String {
    match path {
        PathMatch::Exact(p) => format!("{p:?} (Exact)"),
        PathMatch::Prefix(p) => format!("{p:?} (Prefix)"),
        PathMatch::Regex(p) => format!("{p:?} (regex)"),
    }
}

fn match_sort_key(path: &PathMatch) -> (u8, std::cmp::Reverse<usize>, String) {
    match path {
        PathMatch::Exact(p) => (0, std::cmp::Reverse(p.len()), p.clone()),
        PathMatch::Prefix(p) => (1, std::cmp::Reverse(p.len()), p.clone()),
        PathMatch::Regex(p) => (2, std::cmp::Reverse(p.len()), p.clone()),
    }
}

/// Compile the table with the filter's own compiler; drop any route it refuses (with a diagnostic)
/// until it compiles, so that Envoy's filter never refuses what we send.
fn ensure_compiles(table: &mut RouteTable, diagnostics: &mut Diagnostics) {
    let limit = table.hosts.iter().map(|h| h.routes.len()).sum::<usize>() + 2;
    for _ in 0..limit {
        let error = match CompiledTable::check(table) {
            Ok(()) => return,
            Err(error) => error,
        };
        let position = error.host.as_ref().and_then(|host| {
            let host_index = table.hosts.iter().position(|h| &h.host == host)?;
            let route_index = error.route.filter(|r| *r < table.hosts[host_index].routes.len())?;
            Some((host_index, route_index))
        });
        let Some((host_index, route_index)) = position else {
            // A table-level refusal we cannot attribute: serve nothing rather than a refused table.
            diagnostics.push(
                ObjectRef { kind: "RouteTable".into(), namespace: String::new(), name: String::new() },
                String::new(),
                Severity::Error,
                format!("the filter refuses the route table: {}; no routes served", error.reason),
            );
            table.hosts.clear();
            table.default_backend = None;
            return;
        };
        let route = table.hosts[host_index].routes.remove(route_index);
        let object = ObjectRef { kind: "Ingress".into(), namespace: route.origin.namespace().to_string(), name: route.origin.name().to_string() };
        diagnostics.push(
            object,
            route.origin.field().to_string(),
            Severity::Error,
            format!("the filter refuses this route: {}; path skipped", error.reason),
        );
    }
}

/// Keep only the clusters `table` uses: those a route, fallback or default backend may send to
/// (canaries included) and its error-page clusters (a path may have lost a conflict).
fn retain_used_clusters(clusters: &mut BTreeMap<ClusterName, crate::model::UpstreamCluster>, table: &RouteTable) {
    let used: std::collections::HashSet<&str> = forwards(table).flat_map(Forward::clusters).collect();
    clusters.retain(|name, _| used.contains(name.as_str()) || table.error_page_clusters.contains(name));
}

/// The table's version — hex SHA-256 of its JSON with an empty `version` — and how many bytes its
/// JSON has with that version in it, from one pass over the JSON.
fn table_version_and_bytes(table: &RouteTable) -> (String, usize) {
    let unversioned = match table.version.is_empty() {
        true => std::borrow::Cow::Borrowed(table),
        false => std::borrow::Cow::Owned(RouteTable { version: String::new(), ..table.clone() }),
    };
    let mut hasher = HashWriter(Sha256::new(), 0);
    // Writing into a hash cannot fail, and the table is plain data that always serialises.
    let _ = serde_json::to_writer(&mut hasher, unversioned.as_ref());
    let version = hex::encode(hasher.0.finalize());
    let bytes = hasher.1 + version.len();
    (version, bytes)
}

/// The JSON of a table hashed (and its bytes counted) as it is written, instead of built as one
/// string first.
struct HashWriter(Sha256, usize);

impl std::io::Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        self.1 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How Ingresses are ordered, oldest first: by `creationTimestamp`; those created in the same
/// second by `namespace/name` descending, as ingress-nginx's `sortIngressSlice` (its `in > jn`);
/// manifests without a timestamp (a folder) first, by `namespace/name` ascending, the order a
/// reader of the folder expects (ingress-nginx has no such objects).
type AgeKey = (Option<(k8s_openapi::jiff::Timestamp, std::cmp::Reverse<String>)>, String);

fn age_key(ingress: &Ingress, key: &ObjectKey) -> AgeKey {
    let name = format!("{}/{}", key.namespace, key.name);
    match ingress.metadata.creation_timestamp.as_ref() {
        Some(created) => (Some((created.0, std::cmp::Reverse(name))), String::new()),
        None => (None, name),
    }
}

/// Which Ingresses are ours (see the module's *Class* rule), with the IngressClasses read once.
struct OurClasses<'a> {
    /// IngressClass name -> whether its controller is ours.
    objects: BTreeMap<&'a str, bool>,
    /// One of our IngressClasses is the cluster's default.
    default: bool,
    options: &'a TranslateOptions,
}

impl<'a> OurClasses<'a> {
    fn new(state: &'a ClusterState, options: &'a TranslateOptions) -> OurClasses<'a> {
        let ours = |class: &IngressClass| class.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(options.controller_name.as_str());
        let cluster_scoped = state.ingress_classes.iter().filter(|(key, _)| key.namespace.is_empty());
        let objects = cluster_scoped.map(|(key, class)| (key.name.as_str(), ours(class))).collect();
        let default = state.ingress_classes.values().any(|class| {
            ours(class) && class.metadata.annotations.as_ref().and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION)).map(String::as_str) == Some("true")
        });
        OurClasses { objects, default, options }
    }

    fn contain(&self, ingress: &Ingress) -> bool {
        if let Some(name) = ingress.spec.as_ref().and_then(|s| s.ingress_class_name.as_deref()) {
            return self.objects.get(name).copied().unwrap_or(name == self.options.ingress_class);
        }
        if let Some(name) = ingress.metadata.annotations.as_ref().and_then(|a| a.get(LEGACY_CLASS_ANNOTATION)) {
            return name == &self.options.ingress_class || self.objects.get(name.as_str()) == Some(&true);
        }
        self.default
    }
}

/// The class an Ingress names: `spec.ingressClassName`, else the legacy annotation (`None`: it
/// names none, and the default class takes it).
pub fn class_name(ingress: &Ingress) -> Option<&str> {
    let legacy = || ingress.metadata.annotations.as_ref().and_then(|a| a.get(LEGACY_CLASS_ANNOTATION)).map(String::as_str);
    ingress.spec.as_ref().and_then(|s| s.ingress_class_name.as_deref()).or_else(legacy)
}

/// An IngressClass named like `--ingress-class` but owned by another controller silently takes our
/// Ingresses away: say so.
fn check_our_class_objects(state: &ClusterState, options: &TranslateOptions, diagnostics: &mut Diagnostics) {
    if let Some(class) = state.ingress_classes.get(&ObjectKey::new("", options.ingress_class.clone())) {
        let controller = class.spec.as_ref().and_then(|s| s.controller.as_deref()).unwrap_or_default();
        if controller != options.controller_name {
            diagnostics.push(
                ObjectRef {
                    kind: "IngressClass".into(),
                    namespace: String::new(),
                    name: options.ingress_class.clone(),
                },
                "spec.controller".into(),
                Severity::Warning,
                format!(
                    "controller is {controller:?}, not {:?}: Ingresses of class {:?} are not served by this controller",
                    options.controller_name, options.ingress_class
                ),
            );
        }
    }
}

/// Lower-case and check an Ingress host: a DNS name, optionally with a leading `*.` label
/// (see [`HostName::ingress_rule`]). `""` (no host) is allowed.
pub fn normalize_host(host: &str) -> Result<String, String> {
    HostName::ingress_rule(host).map(HostName::into_string)
}
