//! The ingress-nginx annotations that shape what a path does besides reaching its backend, and the
//! ConfigMap settings that give their defaults:
//! - redirects — `ssl-redirect`, `force-ssl-redirect`, `preserve-trailing-slash`, `app-root`,
//!   `permanent-redirect` (+`-code`), `temporal-redirect` (+`-code`), `relative-redirects`,
//!   `from-to-www-redirect` — become the filter's typed redirects;
//! - the route policy — `proxy-body-size`, `proxy-read-timeout`, `proxy-send-timeout`,
//!   `proxy-next-upstream`, `proxy-next-upstream-tries`, `proxy-next-upstream-timeout`,
//!   `proxy-request-buffering`, `enable-access-log` — becomes a [`RoutePolicy`] that Envoy applies
//!   (see `translate::routes`).
//!
//! - `upstream-vhost` — the Host sent upstream — becomes the route's host rewrite.
//!
//! Semantics are ingress-nginx's (docs/research/ingress-nginx-redirects.md has the sources):
//! a value ingress-nginx ignores falls back to the default with a warning; a redirect URL with
//! characters it refuses makes it reject the whole Ingress ([`Behaviour::refused`]). Pure: values
//! only, no routes and no Kubernetes objects.

use std::collections::BTreeMap;
use std::time::Duration;

use wasm_ingress_filter::table::{HostPart, Location, PathPart, Redirect};

use crate::model::{hsts_value, Balance, Cidr, RoutePolicy, Severity, DEFAULT_CONNECT_TIMEOUT};
use crate::state::ObjectKey;

use super::annotations::{AnnotationNote, NGINX_PREFIX};
use super::variables::{Allowed, Template};

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &[
    "app-root",
    "connection-proxy-header",
    "enable-access-log",
    "enable-opentelemetry",
    "force-ssl-redirect",
    "opentelemetry-trust-incoming-span",
    "from-to-www-redirect",
    "permanent-redirect",
    "permanent-redirect-code",
    "preserve-trailing-slash",
    "proxy-body-size",
    "proxy-next-upstream",
    "proxy-next-upstream-timeout",
    "proxy-next-upstream-tries",
    "proxy-read-timeout",
    "proxy-request-buffering",
    "proxy-send-timeout",
    "relative-redirects",
    "ssl-redirect",
    "temporal-redirect",
    "temporal-redirect-code",
    "upstream-vhost",
    "use-port-in-redirects",
    "x-forwarded-prefix",
];

/// The default of `--no-tls-redirect-locations` (ingress-nginx `no-tls-redirect-locations`),
/// matched against the Ingress path as a prefix: ACME HTTP-01 challenges must answer over HTTP.
pub const NO_TLS_REDIRECT_LOCATION: &str = "/.well-known/acme-challenge";

/// ingress-nginx ConfigMap settings that set the defaults of these annotations and of HSTS, as
/// flags shared by `serve`, `validate` and `explain` (defaults: ingress-nginx's).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct NginxDefaults {
    /// Redirect plain HTTP to HTTPS on hosts that have TLS (ConfigMap `ssl-redirect`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub ssl_redirect: bool,
    /// Redirect plain HTTP to HTTPS on every host, with TLS or not, unless an Ingress says
    /// `force-ssl-redirect: "false"` (ConfigMap `force-ssl-redirect`; behind a load balancer that
    /// ends TLS, with `--trusted-proxy-hops`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub force_ssl_redirect: bool,
    /// Write this port in HTTPS redirects (ingress-nginx's `use-port-in-redirects` with its HTTPS
    /// port), for an HTTPS listener clients do not reach on 443. Default: no port (443).
    #[arg(long)]
    pub https_redirect_port: Option<u16>,
    /// Write the HTTPS port in every HTTPS redirect, `:443` included, unless an Ingress says
    /// `use-port-in-redirects: "false"` (ConfigMap `use-port-in-redirects`; the port is
    /// `--https-redirect-port`, else 443, as ingress-nginx's `--https-port`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub use_port_in_redirects: bool,
    /// Status of the HTTPS and from-to-www redirects: 301, 302, 307 or 308 (`http-redirect-code`).
    #[arg(long, default_value_t = 308, value_parser = parse_http_redirect_code)]
    pub http_redirect_code: u16,
    /// Largest request body: bytes, or with k/m/g (powers of 1024); 0 = unlimited (`proxy-body-size`).
    #[arg(long, default_value = "1m", value_parser = parse_body_size_flag)]
    pub proxy_body_size: BodySize,
    /// Seconds of upstream silence before 504 (`proxy-read-timeout`).
    #[arg(long, default_value_t = 60)]
    pub proxy_read_timeout: u64,
    /// Seconds an upstream connection may take before the next endpoint is tried, or 504
    /// (`proxy-connect-timeout`; also the `--default-backend-service`'s).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub proxy_connect_timeout: u64,
    /// Status of a request past `limit-rps` / `limit-rpm` (`limit-req-status-code`, 400–599).
    #[arg(long, default_value_t = 503, value_parser = clap::value_parser!(u16).range(400..=599))]
    pub limit_req_status_code: u16,
    /// Status of a request past `limit-connections` (`limit-conn-status-code`, 400–599).
    #[arg(long, default_value_t = 503, value_parser = clap::value_parser!(u16).range(400..=599))]
    pub limit_conn_status_code: u16,
    /// Seconds from a request's first try within which a failed connection is tried again on
    /// another endpoint (`proxy-next-upstream-timeout`); 0: only the tries bound it.
    #[arg(long, default_value_t = 0)]
    pub proxy_next_upstream_timeout: u64,
    /// Tries per request when connecting upstream fails (`proxy-next-upstream-tries`).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub proxy_next_upstream_tries: u32,
    /// How Ingress backends balance when no `load-balance`, `affinity` or `upstream-hash-by`
    /// annotation says (ConfigMap `load-balance`): `round_robin`, or `ewma` (Envoy's least-request).
    #[arg(long, default_value = "round_robin", value_parser = parse_load_balance)]
    pub load_balance: Balance,
    /// Send Strict-Transport-Security on HTTPS responses (`hsts`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub hsts: bool,
    /// `max-age` of Strict-Transport-Security, seconds (`hsts-max-age`).
    #[arg(long, default_value_t = 31_536_000)]
    pub hsts_max_age: u64,
    /// Add `includeSubDomains` (`hsts-include-subdomains`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub hsts_include_subdomains: bool,
    /// Add `preload` (`hsts-preload`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub hsts_preload: bool,
    /// Upstream response headers never sent to clients, comma-separated (ConfigMap `hide-headers`,
    /// nginx's `proxy_hide_header`; `Server` always is).
    #[arg(long, value_delimiter = ',', value_parser = parse_header_name)]
    pub hide_headers: Vec<String>,
    /// `namespace/name` of a ConfigMap whose entries are set on every response, as ingress-nginx's
    /// ConfigMap `add-headers` (nginx's `more_set_headers` for the whole server; values may use
    /// nginx variables).
    #[arg(long, value_parser = parse_config_map_key)]
    pub add_headers: Option<ObjectKey>,
    /// `namespace/name` of a ConfigMap whose entries are set on every request sent upstream, as
    /// ingress-nginx's ConfigMap `proxy-set-headers` (nginx's `proxy_set_header` in every location;
    /// values may use nginx variables).
    #[arg(long, value_parser = parse_config_map_key)]
    pub proxy_set_headers: Option<ObjectKey>,
    /// Honour `ssl-passthrough` (ingress-nginx's controller flag of the same name, off by default):
    /// TLS for those hosts goes to the backend undecrypted.
    #[arg(long)]
    pub enable_ssl_passthrough: bool,
    /// Response headers a `custom-headers` ConfigMap may set, comma-separated
    /// (`global-allowed-response-headers`; empty, ingress-nginx's default: none, and an Ingress
    /// with `custom-headers` answers 503).
    #[arg(long, value_delimiter = ',')]
    pub global_allowed_response_headers: Vec<String>,
    /// Ingress paths that never ask for credentials — no `auth-url`, basic or digest auth — each
    /// a prefix of the Ingress path, comma-separated (`no-auth-locations`; default: ACME HTTP-01
    /// challenges, as ingress-nginx).
    #[arg(long, value_delimiter = ',', default_value = NO_AUTH_LOCATION)]
    pub no_auth_locations: Vec<String>,
    /// Ingress paths never redirected to HTTPS, not even by `force-ssl-redirect`, each a prefix
    /// of the Ingress path, comma-separated (`no-tls-redirect-locations`; default: ACME HTTP-01
    /// challenges, as ingress-nginx).
    #[arg(long, value_delimiter = ',', default_value = NO_TLS_REDIRECT_LOCATION)]
    pub no_tls_redirect_locations: Vec<String>,
    /// Send to each Service's cluster IP instead of its endpoints, for Ingresses that do not say
    /// with `service-upstream` (ConfigMap `service-upstream`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub service_upstream: bool,
    /// Statuses (300–599, comma-separated) that the default backend (`--default-backend-service`,
    /// else a 404) answers on the paths of every Ingress without `custom-http-errors` of its own
    /// (ConfigMap `custom-http-errors`).
    #[arg(long, value_delimiter = ',', value_parser = parse_error_page_code)]
    pub custom_http_errors: Vec<u16>,
    /// Client addresses and CIDR blocks, comma-separated, that alone reach the paths of every
    /// Ingress without an allow list of its own; others get 403 (ConfigMap
    /// `whitelist-source-range`, the default of the `allowlist-source-range` annotation).
    #[arg(long, value_delimiter = ',', value_parser = parse_source_range)]
    pub whitelist_source_range: Vec<Cidr>,
    /// Client addresses and CIDR blocks, comma-separated, refused (403) on the paths of every
    /// Ingress without a deny list of its own (ConfigMap `denylist-source-range`).
    #[arg(long, value_delimiter = ',', value_parser = parse_source_range)]
    pub denylist_source_range: Vec<Cidr>,
    /// Client addresses and CIDR blocks, comma-separated, refused (403) on the paths of every
    /// Ingress that has no address list at all (ConfigMap `block-cidrs`: nginx's `deny` in
    /// `http`, which a location with `allow`/`deny` lines of its own does not inherit).
    #[arg(long, value_delimiter = ',', value_parser = parse_source_range)]
    pub block_cidrs: Vec<Cidr>,
    #[command(flatten)]
    pub global_auth: GlobalAuthFlags,
}

/// ingress-nginx's global external auth (ConfigMap `global-auth-*`): the `auth-url` of every
/// Ingress path that has none of its own, unless the Ingress says `enable-global-auth: "false"`
/// or the path is one of `no-auth-locations`. Each flag is the annotation of the same name
/// without `global-` (read by the same parser); a value it refuses stops the command.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct GlobalAuthFlags {
    /// The auth service's URL (`global-auth-url`); none: no global auth.
    #[arg(long)]
    pub global_auth_url: Option<String>,
    /// Method of the auth request (`global-auth-method`).
    #[arg(long)]
    pub global_auth_method: Option<String>,
    /// Where a 401 from the auth service sends the client (`global-auth-signin`).
    #[arg(long)]
    pub global_auth_signin: Option<String>,
    /// The sign-in URL's redirect parameter (`global-auth-signin-redirect-param`, default `rd`).
    #[arg(long)]
    pub global_auth_signin_redirect_param: Option<String>,
    /// Auth response headers copied to the request, comma-separated (`global-auth-response-headers`).
    #[arg(long)]
    pub global_auth_response_headers: Option<String>,
    /// `X-Auth-Request-Redirect` of the auth request (`global-auth-request-redirect`).
    #[arg(long)]
    pub global_auth_request_redirect: Option<String>,
    /// Key of the auth answers kept (`global-auth-cache-key`).
    #[arg(long)]
    pub global_auth_cache_key: Option<String>,
    /// How long answers are kept, by status (`global-auth-cache-duration`).
    #[arg(long)]
    pub global_auth_cache_duration: Option<String>,
    /// Send the auth service's `Set-Cookie` on every answer (`global-auth-always-set-cookie`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub global_auth_always_set_cookie: bool,
}

impl GlobalAuthFlags {
    /// The flags as the annotations they stand for (`auth-url`, …, full keys), for the parser.
    pub fn as_annotations(&self) -> BTreeMap<String, String> {
        let pairs = [
            ("auth-url", &self.global_auth_url),
            ("auth-method", &self.global_auth_method),
            ("auth-signin", &self.global_auth_signin),
            ("auth-signin-redirect-param", &self.global_auth_signin_redirect_param),
            ("auth-response-headers", &self.global_auth_response_headers),
            ("auth-request-redirect", &self.global_auth_request_redirect),
            ("auth-cache-key", &self.global_auth_cache_key),
            ("auth-cache-duration", &self.global_auth_cache_duration),
        ];
        let mut annotations: BTreeMap<String, String> =
            pairs.into_iter().filter_map(|(name, value)| Some((format!("{NGINX_PREFIX}{name}"), value.clone()?))).collect();
        if self.global_auth_always_set_cookie {
            annotations.insert(format!("{NGINX_PREFIX}auth-always-set-cookie"), "true".into());
        }
        annotations
    }
}

/// ingress-nginx's default `no-auth-locations`.
pub const NO_AUTH_LOCATION: &str = "/.well-known/acme-challenge";

impl Default for NginxDefaults {
    fn default() -> NginxDefaults {
        NginxDefaults {
            ssl_redirect: true,
            force_ssl_redirect: false,
            https_redirect_port: None,
            use_port_in_redirects: false,
            http_redirect_code: 308,
            proxy_body_size: BodySize(Some(1024 * 1024)),
            proxy_read_timeout: 60,
            proxy_connect_timeout: DEFAULT_CONNECT_TIMEOUT.as_secs(),
            limit_req_status_code: 503,
            limit_conn_status_code: 503,
            proxy_next_upstream_tries: 3,
            proxy_next_upstream_timeout: 0,
            load_balance: Balance::RoundRobin,
            hsts: true,
            hsts_max_age: 31_536_000,
            hsts_include_subdomains: true,
            hsts_preload: false,
            hide_headers: Vec::new(),
            add_headers: None,
            proxy_set_headers: None,
            enable_ssl_passthrough: false,
            global_allowed_response_headers: Vec::new(),
            no_auth_locations: vec![NO_AUTH_LOCATION.to_string()],
            no_tls_redirect_locations: vec![NO_TLS_REDIRECT_LOCATION.to_string()],
            service_upstream: false,
            custom_http_errors: Vec::new(),
            whitelist_source_range: Vec::new(),
            denylist_source_range: Vec::new(),
            block_cidrs: Vec::new(),
            global_auth: GlobalAuthFlags::default(),
        }
    }
}

/// ingress-nginx's `isLocationInLocationList`: some entry, trimmed and not empty, is a prefix of
/// the Ingress path.
fn in_location_list(locations: &[String], path: &str) -> bool {
    locations.iter().map(|l| l.trim()).any(|location| !location.is_empty() && path.starts_with(location))
}

impl NginxDefaults {
    /// Whether the Ingress path `path` is one of [`Self::no_tls_redirect_locations`] (as
    /// [`Self::no_auth_at`]).
    pub fn no_tls_redirect_at(&self, path: &str) -> bool {
        in_location_list(&self.no_tls_redirect_locations, path)
    }

    /// Whether the Ingress path `path` is one of [`Self::no_auth_locations`] (ingress-nginx's
    /// `isLocationInLocationList`: a prefix, trimmed, empty entries skipped).
    pub fn no_auth_at(&self, path: &str) -> bool {
        in_location_list(&self.no_auth_locations, path)
    }

    /// The policy of a route whose Ingress sets none of the policy annotations.
    pub fn policy(&self) -> RoutePolicy {
        RoutePolicy {
            max_body_bytes: self.proxy_body_size.0,
            upstream_idle_timeout: Duration::from_secs(self.proxy_read_timeout),
            tries: self.proxy_next_upstream_tries,
            ..RoutePolicy::default()
        }
    }

    /// An upstream connection's time limit where the Ingress sets none (`proxy-connect-timeout`).
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.proxy_connect_timeout)
    }

    /// The `Strict-Transport-Security` value, if HSTS is on.
    pub fn hsts_header(&self) -> Option<String> {
        self.hsts.then(|| hsts_value(self.hsts_max_age, self.hsts_include_subdomains, self.hsts_preload))
    }
}

/// A body limit in bytes; `None`: unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodySize(pub Option<u64>);

/// nginx sizes: digits with an optional k/m/g (powers of 1024); `0` is unlimited.
pub fn parse_body_size(text: &str) -> Option<BodySize> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], Some(c.to_ascii_lowercase())),
        _ => (text, None),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    let shift = match unit {
        None => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some(_) => return None,
    };
    Some(BodySize((number != 0).then(|| number.saturating_mul(1u64 << shift))))
}

/// ConfigMap `load-balance`: `round_robin` or `ewma` (the others are chosen by annotations).
pub fn parse_load_balance(text: &str) -> Result<Balance, String> {
    match text.trim() {
        "round_robin" => Ok(Balance::RoundRobin),
        "ewma" => Ok(Balance::LeastRequest),
        other => Err(format!("{other:?} is not round_robin or ewma")),
    }
}

fn parse_body_size_flag(text: &str) -> Result<BodySize, String> {
    parse_body_size(text).ok_or_else(|| format!("{text:?} is not a size like 1m, 512k, 8g or 0"))
}

/// A ConfigMap named `namespace/name`, the only form ingress-nginx finds.
pub fn parse_config_map_key(text: &str) -> Result<ObjectKey, String> {
    match super::header_maps::parse_reference(text)? {
        Some(super::header_maps::MapRef::Qualified(key)) => Ok(key),
        _ => Err(format!("{text:?} is not namespace/name")),
    }
}

/// A header name (an HTTP token), lower-cased.
pub fn parse_header_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    match !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
        true => Ok(name.to_ascii_lowercase()),
        false => Err(format!("{text:?} is not a header name")),
    }
}

/// One status of ConfigMap `custom-http-errors`: 300 to 599, as ingress-nginx keeps them.
pub fn parse_error_page_code(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(code @ 300..=599) => Ok(code),
        _ => Err(format!("{text:?}: a status from 300 to 599")),
    }
}

/// `--block-cidrs` fits the default server's list in the route table (see
/// `RouteTable::default_server_denied`): at most the filter's bound, or the filter would refuse
/// every table.
pub fn check_block_cidrs(list: &[Cidr]) -> Result<(), String> {
    let max = wasm_ingress_filter::address::MAX_RANGES;
    match list.len() > max {
        true => Err(format!("{} block-cidrs entries, more than the {max} the filter takes for the default server", list.len())),
        false => Ok(()),
    }
}

/// One entry of `--whitelist-source-range`, `--denylist-source-range`, `--block-cidrs`: an
/// address or CIDR block, as the annotations take them.
pub fn parse_source_range(text: &str) -> Result<Cidr, String> {
    Cidr::parse(text.trim()).map_err(|reason| format!("{:?} {reason}", text.trim()))
}

pub fn parse_http_redirect_code(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(code @ (301 | 302 | 307 | 308)) => Ok(code),
        _ => Err(format!("{text:?}: only 301, 302, 307 or 308")),
    }
}

/// What these annotations ask of one Ingress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// `ssl-redirect`; `None`: the default (`--ssl-redirect`).
    pub ssl_redirect: Option<bool>,
    /// `force-ssl-redirect`; `None`: the default (`--force-ssl-redirect`).
    pub force_ssl_redirect: Option<bool>,
    pub preserve_trailing_slash: bool,
    /// `use-port-in-redirects`; `None`: the default (`--use-port-in-redirects`).
    pub use_port_in_redirects: Option<bool>,
    /// `app-root`: the path `GET /` is sent to (302).
    pub app_root: Option<String>,
    /// `permanent-redirect` / `temporal-redirect`: answered instead of the backend.
    pub redirect: Option<Redirect>,
    pub from_to_www: bool,
    /// `proxy-body-size`; `None`: the default.
    pub body_size: Option<BodySize>,
    /// `proxy-read-timeout`, seconds; `None`: the default.
    pub read_timeout: Option<u64>,
    /// `proxy-next-upstream-tries` (or 1 for `proxy-next-upstream: off`); `None`: the default.
    pub tries: Option<u32>,
    /// `proxy-next-upstream-timeout`, seconds (0: none); `None`: the default.
    pub next_upstream_timeout: Option<u64>,
    /// `proxy-request-buffering: off`: the body streams upstream, without a limit.
    pub stream_request_body: bool,
    /// `upstream-vhost`: the `Host` the upstream receives (location variables allowed).
    pub upstream_vhost: Option<Template>,
    /// `x-forwarded-prefix`: the `X-Forwarded-Prefix` the upstream receives (nginx variables
    /// allowed; the route policy gets it with its location's, see `NginxAnnotations::policy`).
    pub forwarded_prefix: Option<Template>,
    /// `connection-proxy-header`: the `Connection` header HTTP/1 upstreams receive (none by
    /// default, as ingress-nginx with upstream keepalive sends none).
    pub connection_header: Option<String>,
    /// `enable-access-log: "false"`: the access log leaves these paths' requests out.
    pub access_log_off: bool,
    /// Why ingress-nginx would reject the whole Ingress, if it would.
    pub refused: Option<(String, String)>,
}

impl Behaviour {
    /// Read the family from an Ingress's annotations; notes for what is ignored or differs.
    pub fn parse(annotations: &BTreeMap<String, String>) -> (Behaviour, Vec<AnnotationNote>) {
        let mut reader = Reader::new(annotations);
        let mut behaviour = Behaviour {
            ssl_redirect: reader.boolean("ssl-redirect"),
            force_ssl_redirect: reader.boolean("force-ssl-redirect"),
            preserve_trailing_slash: reader.boolean("preserve-trailing-slash").unwrap_or(false),
            use_port_in_redirects: reader.boolean("use-port-in-redirects"),
            app_root: reader.app_root(),
            from_to_www: reader.strict_boolean("from-to-www-redirect").unwrap_or(false),
            body_size: reader.body_size(),
            read_timeout: reader.seconds("proxy-read-timeout"),
            tries: reader.tries(),
            next_upstream_timeout: reader.integer("proxy-next-upstream-timeout"),
            stream_request_body: reader.get("proxy-request-buffering").is_some_and(|v| v.trim() == "off"),
            upstream_vhost: reader.upstream_vhost(),
            forwarded_prefix: reader.forwarded_prefix(),
            connection_header: reader.connection_header(),
            access_log_off: reader.boolean("enable-access-log") == Some(false),
            ..Behaviour::default()
        };
        reader.send_timeout(behaviour.read_timeout);
        if reader.get("enable-opentelemetry").is_some() {
            let message = "not applied per Ingress: Envoy decides whether to trace a request before the filter picks its route, so \
                           serve --enable-opentelemetry (with --otlp-collector-host) traces every Ingress or none";
            reader.note("enable-opentelemetry", Severity::Warning, message.into());
        }
        if reader.get("opentelemetry-trust-incoming-span").is_some() {
            let message = "not applied per Ingress: Envoy reads a request's trace context before the filter picks its route, so \
                           serve --opentelemetry-trust-incoming-span applies to every Ingress";
            reader.note("opentelemetry-trust-incoming-span", Severity::Warning, message.into());
        }
        if behaviour.stream_request_body {
            reader.note(
                "proxy-request-buffering",
                Severity::Warning,
                "\"off\": the body streams to the upstream as it arrives, and proxy-body-size is not enforced on it (nginx still counts it)".into(),
            );
        }
        behaviour.redirect = reader.redirect();
        behaviour.refused = reader.refused;
        (behaviour, reader.notes)
    }

    /// This Ingress's policy, given the defaults.
    pub fn policy(&self, defaults: &NginxDefaults) -> RoutePolicy {
        let mut policy = defaults.policy();
        if let Some(size) = self.body_size {
            policy.max_body_bytes = size.0;
        }
        if self.stream_request_body {
            policy.max_body_bytes = None;
        }
        if let Some(seconds) = self.read_timeout {
            policy.upstream_idle_timeout = Duration::from_secs(seconds);
        }
        if let Some(tries) = self.tries {
            policy.tries = tries;
        }
        policy.access_log_off = self.access_log_off;
        policy
    }

    /// `tries`, capped at what nginx makes within its `proxy-next-upstream-timeout` when every try
    /// is a connection that times out after `connect_timeout`: nginx tries the next endpoint only
    /// while less than that time has passed since the first try began. Envoy has no clock on
    /// retries, so the count stands in for it (exact for connections that time out; refused
    /// connections, which fail at once, get no more tries than that either).
    pub fn tries_within_timeout(&self, defaults: &NginxDefaults, tries: u32, connect_timeout: Duration) -> u32 {
        let timeout = self.next_upstream_timeout.unwrap_or(defaults.proxy_next_upstream_timeout);
        let connect = connect_timeout.as_secs().max(1);
        match timeout {
            0 => tries,
            timeout => tries.min(u32::try_from(timeout.div_ceil(connect)).unwrap_or(u32::MAX)).max(1),
        }
    }

    /// The redirect answered to plain-HTTP requests for `path` (an Ingress path) on a host that
    /// has TLS (`host_has_tls`), if any.
    pub fn https_redirect(&self, defaults: &NginxDefaults, host_has_tls: bool, path: &str) -> Option<Redirect> {
        let forced = self.force_ssl_redirect.unwrap_or(defaults.force_ssl_redirect);
        let wanted = forced || (host_has_tls && self.ssl_redirect.unwrap_or(defaults.ssl_redirect));
        if !wanted || defaults.no_tls_redirect_at(path) {
            return None;
        }
        Some(Redirect {
            status: defaults.http_redirect_code,
            location: Location::FromRequest {
                scheme: Some("https".into()),
                host: match (self.use_port_in_redirects.unwrap_or(defaults.use_port_in_redirects), defaults.https_redirect_port) {
                    // ingress-nginx's `lua_ingress.lua`: `https://host:<https port><uri>`.
                    (true, port) => HostPart::RequestHostWithPort(port.unwrap_or(443)),
                    (false, Some(port)) if port != 443 => HostPart::RequestHostWithPort(port),
                    (false, _) => HostPart::RequestHost,
                },
                path: PathPart::RequestUri { trim_trailing_slash: !self.preserve_trailing_slash },
            },
            cors: None,
        })
    }

    /// The `app-root` redirect of `GET /` (302 to the same scheme and Host, port kept).
    pub fn app_root_redirect(&self) -> Option<Redirect> {
        let path = self.app_root.clone()?;
        Some(Redirect {
            status: 302,
            location: Location::FromRequest { scheme: None, host: HostPart::RequestAuthority, path: PathPart::Fixed(path) },
            cors: None,
        })
    }
}

/// The from-to-www redirect to `host` (the one the Ingress names): same scheme, the listener port
/// always written, the request URI kept less one trailing `/`.
pub fn www_redirect(host: &str, defaults: &NginxDefaults) -> Redirect {
    Redirect {
        status: defaults.http_redirect_code,
        location: Location::FromRequest {
            scheme: None,
            host: HostPart::WithListenerPort(host.to_string()),
            path: PathPart::RequestUri { trim_trailing_slash: true },
        },
        cors: None,
    }
}

/// `www.x` <-> `x`; `None` for a wildcard or host-less rule.
pub fn www_counterpart(host: &str) -> Option<String> {
    if host.is_empty() || host.starts_with("*.") {
        return None;
    }
    Some(match host.strip_prefix("www.") {
        Some(bare) => bare.to_string(),
        None => format!("www.{host}"),
    })
}

/// Longest timeout accepted, in seconds (a year): Envoy refuses a duration beyond its range, and
/// that refusal would stop every configuration update, not just this Ingress's.
pub const MAX_TIMEOUT_SECONDS: u64 = 365 * 86_400;

/// A boolean as ingress-nginx reads one (Go's `strconv.ParseBool`): `1 t T TRUE true True` and
/// `0 f F FALSE false False`.
pub fn go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Most tries per request (`proxy-next-upstream-tries`): larger counts, and nginx's 0 (unlimited),
/// are capped to it.
pub const MAX_TRIES: u32 = 10;

/// Reads annotation values by name, collecting notes (shared with `upstream`).
pub(super) struct Reader<'a> {
    annotations: &'a BTreeMap<String, String>,
    pub(super) notes: Vec<AnnotationNote>,
    /// The first (annotation, reason) ingress-nginx would reject the whole Ingress for.
    pub(super) refused: Option<(String, String)>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(annotations: &'a BTreeMap<String, String>) -> Reader<'a> {
        Reader { annotations, notes: Vec::new(), refused: None }
    }

    /// Record that ingress-nginx's validation of `name` rejects the Ingress (the first one wins).
    pub(super) fn refuse(&mut self, name: &str, reason: String) {
        self.refused.get_or_insert((format!("{NGINX_PREFIX}{name}"), reason));
    }

    /// A boolean that ingress-nginx's validator (`ValidateBool`) checks: another value rejects
    /// the Ingress.
    pub(super) fn strict_boolean(&mut self, name: &str) -> Option<bool> {
        let value = self.get(name)?;
        let parsed = go_bool(value);
        if parsed.is_none() && !value.is_empty() {
            self.refuse(name, format!("{value:?} is not a boolean (true, false, 1, 0, ...)"));
        }
        parsed
    }

    pub(super) fn get(&self, name: &str) -> Option<&'a str> {
        self.annotations.get(&format!("{NGINX_PREFIX}{name}")).map(String::as_str)
    }

    pub(super) fn note(&mut self, name: &str, severity: Severity, message: String) {
        self.notes.push((format!("{NGINX_PREFIX}{name}"), severity, message));
    }

    pub(super) fn boolean(&mut self, name: &str) -> Option<bool> {
        let value = self.get(name)?.trim().to_string();
        let parsed = go_bool(&value);
        if parsed.is_none() {
            self.note(name, Severity::Warning, format!("must be \"true\" or \"false\", not {value:?}; the default applies"));
        }
        parsed
    }

    pub(super) fn integer(&mut self, name: &str) -> Option<u64> {
        self.whole_number(name, " (as ingress-nginx reads it); the default applies")
    }

    /// The annotation as a whole number; a warning ending in `otherwise` when it is not one.
    fn whole_number(&mut self, name: &str, otherwise: &str) -> Option<u64> {
        let value = self.get(name)?.trim().to_string();
        let parsed = value.parse::<u64>().ok();
        if parsed.is_none() {
            self.note(name, Severity::Warning, format!("{value:?} is not a whole number{otherwise}"));
        }
        parsed
    }

    /// A `proxy-*-timeout` in whole seconds. Not a whole number (`60s`): the default, as
    /// ingress-nginx's proxy parser falls back to its default then.
    pub(super) fn seconds(&mut self, name: &str) -> Option<u64> {
        let seconds = self.whole_number(name, "; the default applies (as in ingress-nginx)")?;
        if seconds == 0 {
            self.note(name, Severity::Warning, "0 is not a timeout; the default applies".into());
            return None;
        }
        if seconds > MAX_TIMEOUT_SECONDS {
            self.note(name, Severity::Warning, format!("{seconds} is more than a year; the default applies"));
            return None;
        }
        Some(seconds)
    }

    /// `proxy-send-timeout` is not applied on its own (Envoy has one idle timer for both
    /// directions); said only when it differs from the `proxy-read-timeout` beside it.
    fn send_timeout(&mut self, read_timeout: Option<u64>) {
        let Some(send) = self.seconds("proxy-send-timeout") else { return };
        if read_timeout == Some(send) {
            return;
        }
        self.note(
            "proxy-send-timeout",
            Severity::Warning,
            format!(
                "Envoy times upstream silence in both directions with one timer, which proxy-read-timeout sets ({}s); {send}s for writes alone is not applied",
                read_timeout.unwrap_or(60)
            ),
        );
    }

    /// A host (with an optional port), which may use the location's `$namespace`,
    /// `$ingress_name`, `$service_name` and `$service_port` (Linkerd's
    /// `$service_name.$namespace.svc.cluster.local`); any other variable is reported and the value
    /// not applied.
    /// A character outside ingress-nginx's `ValidateServerName` (letters, digits and
    /// `-._~/:^$[](){}*+?|&=\`) rejects the Ingress.
    fn upstream_vhost(&mut self) -> Option<Template> {
        let value = self.get("upstream-vhost")?.trim().to_string();
        if let Some(c) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || "-._~/:^$[](){}*+?|&=\\".contains(*c))) {
            let reason = format!("{value:?} contains {c:?}, which ingress-nginx refuses in a server name (letters, digits and -._~/:^$[](){{}}*+?|&=\\ only)");
            self.refuse("upstream-vhost", reason);
            return None;
        }
        let host_part = |c: char| c.is_ascii_alphanumeric() || "-.:[]_".contains(c);
        let why = match Template::parse(&value, Allowed::LocationOnly) {
            Ok(template) if value.is_empty() || !template.texts().all(|text| text.chars().all(host_part)) => "it is not a host name".to_string(),
            Ok(template) if template.uses_location_path() => "$location_path is not part of a host name".to_string(),
            Ok(template) => return Some(template),
            Err(e) => e,
        };
        self.note("upstream-vhost", Severity::Warning, format!("{value:?}: {why}; the request's Host is sent unchanged"));
        None
    }

    /// A header value: printable ASCII, at most 1 KiB, with the nginx variables
    /// [`super::variables`] knows.
    /// A character outside ingress-nginx's `RegexPathWithCapture` (letters, digits and
    /// `-._~/:$`; spaces are not checked) rejects the Ingress, with or without a rewrite.
    fn forwarded_prefix(&mut self) -> Option<Template> {
        let value = self.get("x-forwarded-prefix")?.trim().to_string();
        if let Some(c) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || "-._~/:$ ".contains(*c))) {
            let reason = format!("{value:?} contains {c:?}, which ingress-nginx refuses in x-forwarded-prefix (letters, digits and -._~/:$ only)");
            self.refuse("x-forwarded-prefix", reason);
            return None;
        }
        if value.is_empty() {
            return None;
        }
        if self.get("rewrite-target").is_none_or(|target| target.is_empty()) {
            // ingress-nginx's buildProxyPass sets it beside the rewrite only.
            self.note("x-forwarded-prefix", Severity::Warning, "has no effect without rewrite-target (as in ingress-nginx); not sent".into());
            return None;
        }
        let why = if value.len() <= 1024 && value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            match Template::parse(&value, Allowed::Everything) {
                Ok(template) => return Some(template),
                Err(e) => e,
            }
        } else {
            "not a header value (printable ASCII, at most 1 KiB)".to_string()
        };
        self.note("x-forwarded-prefix", Severity::Warning, format!("{value:?}: {why}; not sent"));
        None
    }

    /// `connection-proxy-header`: `close` or `keep-alive`, the only values ingress-nginx's
    /// validation takes (spaces removed); another one rejects the Ingress.
    fn connection_header(&mut self) -> Option<String> {
        let value = self.get("connection-proxy-header")?.replace(' ', "");
        match value.as_str() {
            "" => None,
            "close" | "keep-alive" => Some(value),
            _ => {
                self.refuse("connection-proxy-header", format!("{value:?} is not close or keep-alive"));
                None
            }
        }
    }

    fn app_root(&mut self) -> Option<String> {
        let value = self.get("app-root")?.trim().to_string();
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~/:$".contains(c);
        // The filter's own check too (length), so a value can never make it refuse the table.
        let redirect = Behaviour { app_root: Some(value.clone()), ..Behaviour::default() }.app_root_redirect();
        let filter_accepts = redirect.is_some_and(|r| wasm_ingress_filter::matcher::check_redirect(&r).is_ok());
        if value.starts_with('/') && value.chars().all(allowed) && filter_accepts {
            return Some(value);
        }
        self.note("app-root", Severity::Warning, format!("{value:?} is not a path (a leading / and [-._~a-zA-Z0-9/:$] only); ignored, as ingress-nginx does"));
        None
    }

    fn body_size(&mut self) -> Option<BodySize> {
        let value = self.get("proxy-body-size")?.to_string();
        let size = parse_body_size(&value);
        match size {
            None => self.note("proxy-body-size", Severity::Warning, format!("{value:?} is not a size like 8m, 512k or 0; the default applies")),
            Some(BodySize(Some(bytes))) if u32::try_from(bytes).is_err() => {
                let note = format!("{value:?} is 4 GiB or more, beyond what Envoy's buffer filter counts: bodies are not limited (nginx enforces it)");
                self.note("proxy-body-size", Severity::Warning, note);
            }
            Some(_) => {}
        }
        size
    }

    fn tries(&mut self) -> Option<u32> {
        let off = self.get("proxy-next-upstream").map(str::trim).map(str::to_string);
        if let Some(value) = &off {
            let unsupported: Vec<&str> =
                value.split_whitespace().filter(|t| !matches!(*t, "error" | "timeout" | "off")).collect();
            if !unsupported.is_empty() {
                self.note(
                    "proxy-next-upstream",
                    Severity::Warning,
                    format!("only connection failures are retried (error, timeout); {} not applied", unsupported.join(" ")),
                );
            }
            if value.split_whitespace().any(|t| t == "off") {
                return Some(1);
            }
        }
        let tries = self.integer("proxy-next-upstream-tries")?;
        match u32::try_from(tries) {
            Ok(tries @ 1..=MAX_TRIES) => Some(tries),
            // nginx: 0 is unlimited, a large count nearly so (`proxy.go` writes 888888).
            Ok(_) => {
                self.note("proxy-next-upstream-tries", Severity::Warning, format!("{tries}: at most {MAX_TRIES} tries here (nginx's 0 is unlimited); {MAX_TRIES} apply"));
                Some(MAX_TRIES)
            }
            Err(_) => {
                self.note("proxy-next-upstream-tries", Severity::Warning, format!("{tries} is not a count of tries; the default applies"));
                None
            }
        }
    }

    /// `temporal-redirect` (wins) or `permanent-redirect`, with their codes, as ingress-nginx's
    /// redirect parser reads them: a URL with characters its validator refuses, or a code that is
    /// not a number, rejects the Ingress; a temporal URL whose scheme is not http(s) drops the
    /// redirect (the permanent one too).
    fn redirect(&mut self) -> Option<Redirect> {
        let relative = self.strict_boolean("relative-redirects").unwrap_or(false);
        let temporal = self.redirect_url("temporal-redirect");
        if let Some(url) = temporal {
            let status = self.redirect_code("temporal-redirect-code", 302, 300..=307);
            if !is_http_url(&url) {
                let message = format!("{url:?} is not an http:// or https:// URL; no redirect (permanent-redirect neither), as ingress-nginx does");
                self.note("temporal-redirect", Severity::Warning, message);
                return None;
            }
            return Some(Redirect { status, location: Location::Url { url }, cors: None });
        }
        let permanent = self.redirect_url("permanent-redirect");
        let status = self.redirect_code("permanent-redirect-code", 301, 300..=308);
        let url = permanent?;
        let location = if url.starts_with('/') && !relative {
            Location::FromRequest { scheme: None, host: HostPart::RequestHost, path: PathPart::Fixed(url) }
        } else {
            Location::Url { url }
        };
        Some(Redirect { status, location, cors: None })
    }

    /// A redirect URL (`None`: absent or empty). ingress-nginx's `URLIsValidRegex` takes letters,
    /// digits and `-._~/:,?&=` only; another character rejects the Ingress.
    fn redirect_url(&mut self, name: &str) -> Option<String> {
        let url = self.get(name).filter(|v| !v.is_empty())?.to_string();
        match url.chars().find(|c| !(c.is_ascii_alphanumeric() || "-._~/:,?&=".contains(*c))) {
            None => Some(url),
            Some(c) => {
                let reason = format!("{url:?} contains {c:?}, which ingress-nginx refuses in a redirect URL (letters, digits and -._~/:,?&= only)");
                self.refuse(name, reason);
                None
            }
        }
    }

    /// A redirect's status: not a number rejects the Ingress (`ValidateInt`); outside `allowed`,
    /// `default` applies (a warning), as ingress-nginx does.
    fn redirect_code(&mut self, name: &str, default: u16, allowed: std::ops::RangeInclusive<u16>) -> u16 {
        let Some(value) = self.get(name).filter(|v| !v.is_empty()) else { return default };
        let Ok(code) = value.parse::<i64>() else {
            self.refuse(name, format!("{value:?} is not a number"));
            return default;
        };
        match u16::try_from(code) {
            Ok(code) if allowed.contains(&code) => code,
            _ => {
                self.note(name, Severity::Warning, format!("{code} is not {}..={}; {default} applies", allowed.start(), allowed.end()));
                default
            }
        }
    }
}

/// Go's `url.Parse` then `strings.HasPrefix(u.Scheme, "http")` (the scheme lower-cased), as
/// ingress-nginx's `isValidURL`.
fn is_http_url(url: &str) -> bool {
    let Some((scheme, _)) = url.split_once(':') else { return false };
    let well_formed = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    well_formed && scheme.to_ascii_lowercase().starts_with("http")
}
