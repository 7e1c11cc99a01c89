//! The Model: what the gateway must do, with neither Kubernetes nor Envoy types in it.
//!
//! `translate::ingress` builds it from a `ClusterState` (plus per-object `Diagnostic`s);
//! `translate::envoy` turns it into xDS resources. Keeping it free of both worlds (as Contour's DAG)
//! lets each half be tested on its own with plain values. Everything that becomes config is sorted
//! (`BTreeMap`) so identical input gives identical output and identical xDS versions.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};

use wasm_ingress_filter::cluster::ClusterName;
use wasm_ingress_filter::table::{Origin, RouteTable};

use crate::state::ObjectKey;

/// Everything Envoy needs, in our own terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Model {
    /// The filter's routing configuration (sent through ECDS).
    pub route_table: RouteTable,
    /// Upstream clusters by name (`namespace/service/port`), each with its ready endpoints (EDS).
    pub clusters: BTreeMap<ClusterName, UpstreamCluster>,
    /// HTTPS server names and the certificate that serves them (all in the HTTPS listener's one
    /// terminating chain; Envoy picks the certificate by SNI).
    pub tls_servers: Vec<TlsServer>,
    /// Certificates by name (`namespace/secret`), sent through SDS.
    pub certificates: BTreeMap<String, TlsCertificate>,
    /// The `--default-ssl-certificate` (a key into `certificates`): offered to clients that send
    /// no SNI or one no Ingress claims. `None`: the controller's own self-signed certificate.
    pub default_certificate: Option<String>,
    /// What Envoy selects each listed certificate by (the default one and the TLS servers'), by
    /// key into `certificates`.
    pub certificate_selection: BTreeMap<String, CertificateSelection>,
    /// Hosts served without a TLS claim for which Envoy would offer a tenant's certificate: the
    /// controller's own certificate names them, so it is offered instead (see
    /// `translate::ingress::sni::shield`). Sorted.
    pub shielded_names: Vec<String>,
    /// The policy of every route whose `Forward::policy` is empty (the global defaults).
    pub default_policy: RoutePolicy,
    /// The other policies, by the key the route table names them with ([`RoutePolicy::key`]).
    pub policies: BTreeMap<String, RoutePolicy>,
    /// `Strict-Transport-Security` value put on every HTTPS response (ingress-nginx's `hsts*`
    /// settings); `None`: none is added.
    pub hsts: Option<String>,
    /// Upstream response headers removed from every answer besides `Server` (`--hide-headers`).
    pub hidden_response_headers: Vec<String>,
    /// The external auth services routes call (`auth-url`), by cluster name
    /// ([`AuthService::cluster_name`]).
    pub auth_services: BTreeMap<ClusterName, AuthService>,
    /// `ssl-passthrough` hosts (lower-case, `*.` wildcards as written): TLS with that SNI goes to
    /// the cluster undecrypted.
    pub passthrough: BTreeMap<String, Passthrough>,
    /// HTTPS server names (lower-case, `*.` wildcards as written) that ask for client
    /// certificates, and how Envoy validates them: an SNI filter chain per set of settings.
    pub client_validation: BTreeMap<String, ClientValidation>,
    /// HTTPS server names whose Ingress sets `ssl-ciphers`, and their TLS 1.2 suites (BoringSSL
    /// names): an SNI filter chain per set of settings.
    pub cipher_suites: BTreeMap<String, Vec<String>>,
    /// HTTPS server names whose Ingress sets `ssl-prefer-server-ciphers: "false"`: the client's
    /// order of TLS 1.2 suites wins (Envoy's own order otherwise); an SNI filter chain per set of settings.
    pub prefer_client_ciphers: BTreeSet<String>,
}

/// Where a passed-through host's TLS connections go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Passthrough {
    /// A cluster of the `/` path's Service port (plain TCP: Envoy does not speak TLS to it).
    pub cluster: ClusterName,
    /// `namespace/name: spec.rules[i].http.paths[j]`, for `explain` and logs.
    pub origin: Origin,
}

/// A header value Envoy writes: text and per-request facts, in order (the nginx variables a
/// value may use; see `translate::ingress::variables`). Envoy gets it as a header-value format
/// string whose text is escaped, built only from these parts, so no value can carry a formatter
/// command of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeaderValue(pub Vec<ValuePart>);

/// One part of a [`HeaderValue`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ValuePart {
    Text(String),
    /// A header of the request, by lower-case name (nginx `$http_NAME`); empty when absent.
    RequestHeader(String),
    /// The client's address as the listener's trusted-hops rule settles it (nginx `$remote_addr`).
    ClientAddress,
    /// The client's port (nginx `$remote_port`).
    ClientPort,
    /// The port the client connected to (nginx `$server_port`).
    ServerPort,
}

impl HeaderValue {
    /// A value that is only text.
    pub fn text(value: &str) -> HeaderValue {
        HeaderValue(vec![ValuePart::Text(value.to_string())])
    }

    /// Whether the value is empty whatever the request (only empty text, or nothing).
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|part| matches!(part, ValuePart::Text(text) if text.is_empty()))
    }

    /// The value of a request header (nginx `$http_NAME`).
    pub fn request_header(name: &str) -> HeaderValue {
        HeaderValue(vec![ValuePart::RequestHeader(name.to_string())])
    }

    /// The value as Envoy's header-value format string: `%` in text doubled, each fact one
    /// formatter command.
    pub fn envoy_format(&self) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                ValuePart::Text(text) => out.push_str(&text.replace('%', "%%")),
                ValuePart::RequestHeader(name) => out.push_str(&format!("%REQ({name})%")),
                ValuePart::ClientAddress => out.push_str("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"),
                ValuePart::ClientPort => out.push_str("%DOWNSTREAM_REMOTE_PORT%"),
                ValuePart::ServerPort => out.push_str("%DOWNSTREAM_LOCAL_PORT%"),
            }
        }
        out
    }
}

/// As nginx would write it: text as is, facts as the variables they stand for.
impl fmt::Display for HeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.0 {
            match part {
                ValuePart::Text(text) => f.write_str(text)?,
                ValuePart::RequestHeader(name) if name == ":authority" => f.write_str("$http_host")?,
                ValuePart::RequestHeader(name) => write!(f, "$http_{}", name.replace('-', "_"))?,
                ValuePart::ClientAddress => f.write_str("$remote_addr")?,
                ValuePart::ClientPort => f.write_str("$remote_port")?,
                ValuePart::ServerPort => f.write_str("$server_port")?,
            }
        }
        Ok(())
    }
}

/// What Envoy does with the requests of a route besides choosing its cluster: one Envoy route per
/// distinct policy, which the filter selects by key (see `translate::routes`). New per-route
/// features (CORS, allow-lists, auth, …) become fields here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoutePolicy {
    /// Largest request body in bytes (ingress-nginx `proxy-body-size`): a larger one is answered
    /// 413 before the upstream sees any of it. `None`: unlimited (`0` in ingress-nginx).
    pub max_body_bytes: Option<u64>,
    /// Longest silence between two reads from, or writes to, the upstream before the request is
    /// answered 504 (ingress-nginx `proxy-read-timeout` / `proxy-send-timeout`, which nginx times
    /// per operation, not over the whole response).
    pub upstream_idle_timeout: Duration,
    /// How many times a request is tried in all when the upstream connection fails or is refused
    /// (ingress-nginx `proxy-next-upstream-tries`, for its default `error timeout`).
    pub tries: u32,
    /// Request headers set (replaced) on the way upstream, by lower-case name
    /// (`x-forwarded-prefix`, a snippet's `proxy_set_header`, the default backend's `x-format`).
    /// A value that comes out empty (a request header it copies is absent) is not sent, as nginx
    /// drops an empty `proxy_set_header`.
    pub request_headers: BTreeMap<String, HeaderValue>,
    /// Response headers set (replaced), by lower-case name (a snippet's `more_set_headers`).
    pub response_headers_set: BTreeMap<String, HeaderValue>,
    /// Response headers appended (a snippet's `add_header`), in order.
    pub response_headers_add: Vec<(String, HeaderValue)>,
    /// Response headers removed (a snippet's `more_clear_headers`), sorted.
    pub response_headers_remove: Vec<String>,
    /// Client addresses allowed (`allowlist-`/`whitelist-source-range`); empty: any. Sorted.
    pub allow_sources: Vec<Cidr>,
    /// Client addresses refused (`denylist-source-range`), even when also allowed. Sorted.
    pub deny_sources: Vec<Cidr>,
    /// The `Access-Control-*` response headers of an allowed CORS request (`enable-cors`).
    pub cors: Option<CorsHeaders>,
    /// Envoy answers the request itself with 204 and the CORS headers (a CORS preflight), without
    /// going upstream.
    pub preflight: bool,
    /// What picks the endpoint on a hashing cluster (`affinity: cookie`, `upstream-hash-by`);
    /// `None`: the cluster's balancer alone.
    pub hash: Option<HashOn>,
    /// Requests per client address (`limit-rps` / `limit-rpm`); `None`: unlimited.
    pub rate_limit: Option<ClientRateLimit>,
    /// Where each request is also copied (`mirror-target`); the copy's answer is ignored.
    pub mirror: Option<Mirror>,
    /// On a host that asks for client certificates (`auth-tls-secret`): the `ssl-client-*`
    /// headers go upstream from the certificate, `ssl-client-cert` too when `Some(true)`
    /// (`auth-tls-pass-certificate-to-upstream`).
    pub client_certificate_headers: Option<bool>,
    /// `custom-http-errors`: which upstream answers are replaced by an error page, and by whom.
    pub custom_errors: Option<CustomErrors>,
    /// `enable-access-log: "false"`: Envoy's access log leaves out the requests this policy serves.
    pub access_log_off: bool,
    /// Envoy answers 404, not 503, for a cluster it does not know, which is what the filter names
    /// ([`NOT_FOUND_CLUSTER`](wasm_ingress_filter::table::NOT_FOUND_CLUSTER)) once the policy's
    /// own checks (address lists, rate limit, body limit) pass: a host's implicit `/` location
    /// ([`VirtualHost::implicit_root`](wasm_ingress_filter::table::VirtualHost::implicit_root)),
    /// where ingress-nginx's own default backend answers (with `--default-backend-service`, the
    /// filter names that Service's cluster instead, and Envoy proxies to it).
    pub answers_not_found: bool,
}

/// ingress-nginx's `custom-http-errors`: Envoy's custom-response filter sends a request whose
/// answer has one of `codes` again, as `GET /` to `cluster` (the filter routes it by
/// [`ERROR_PAGE_HEADER`](wasm_ingress_filter::table::ERROR_PAGE_HEADER)), with `X-Code` and
/// these `headers`; without a cluster, Envoy answers 404 itself (ingress-nginx's own default server).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CustomErrors {
    /// Statuses (300–599), sorted, without duplicates.
    pub codes: Vec<u16>,
    /// The `default-backend` Service's cluster, when it has ready endpoints.
    pub cluster: Option<ClusterName>,
    /// The table's error-page token, which the error-page request carries before the cluster
    /// (see `wasm_ingress_filter::table::ERROR_PAGE_HEADER`).
    pub token: String,
    /// `X-Namespace`, `X-Ingress-Name`, `X-Service-Name`, `X-Service-Port` (lower case).
    pub headers: Vec<(String, String)>,
}

/// How Envoy validates the client certificates of one HTTPS server name (`auth-tls-*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientValidation {
    /// The Secret the CA comes from (`namespace/name`), for names and diagnostics.
    pub secret: String,
    /// PEM bundle of the trusted CAs (`ca.crt`).
    pub ca_pem: String,
    /// PEM revocation lists (`ca.crl`), if the Secret has them: certificates they list are refused.
    pub crl_pem: Option<String>,
    /// `auth-tls-verify-depth`.
    pub max_depth: u32,
    /// `false` (`optional_no_ca`): any certificate is accepted unchecked.
    pub verify: bool,
}

impl ClientValidation {
    /// The SDS secret holding this validation context: named by the Secret and the settings, not
    /// the CA's content, so a rotated CA reaches Envoy over SDS without changing the listener
    /// (no drain).
    pub fn secret_name(&self) -> String {
        let trust = if self.verify { "verify" } else { "accept-untrusted" };
        format!("client-ca:{}:depth-{}:{trust}", self.secret, self.max_depth)
    }
}

/// A request mirror (ingress-nginx's `mirror-target` / `mirror-host`): Envoy's shadow request to
/// a cluster found by DNS, with its own `Host`. Fire and forget: the client never waits for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mirror {
    /// The mirror target's scheme, host and port ([`AuthService::mirror_cluster_name`]).
    pub service: AuthService,
    /// The copy's `Host` (`mirror-host`, else the target's host without port).
    pub host: String,
}

/// A per-client request limit: a token bucket per client address of `burst` tokens, refilled
/// with `requests` every second (or minute). Answers 503 past it, as ingress-nginx.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientRateLimit {
    /// Whose buckets these are (ingress-nginx keeps a zone per Ingress): `namespace/name`.
    pub zone: String,
    pub requests: u32,
    pub per_minute: bool,
    pub burst: u32,
    /// Client addresses never limited (`limit-allowlist`), sorted.
    pub exempt: Vec<Cidr>,
    /// The answer past the limit (`--limit-req-status-code`, ingress-nginx's 503 by default).
    pub status: u16,
}

/// The request property whose hash picks an endpoint (Envoy's route `hash_policy`; the cluster
/// balances with a consistent-hash ring, [`Balance::RingHash`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashOn {
    /// ingress-nginx's sticky cookie: Envoy sets it when the request has none.
    AffinityCookie(AffinityCookie),
    /// A request header (`$http_x`, `$host`, `$request_uri` as `:path`).
    Header(String),
    /// An existing cookie, never set (`$cookie_x`).
    Cookie(String),
    /// A query parameter (`$arg_x`).
    QueryParameter(String),
    /// The client's address (`$remote_addr`).
    SourceIp,
}

/// The sticky cookie of `affinity: cookie`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AffinityCookie {
    pub name: String,
    /// `Path` attribute.
    pub path: String,
    /// `Max-Age` in seconds; `None`: a session cookie.
    pub max_age: Option<u64>,
    /// Other attributes: `Domain`, `SameSite`, as (name, value).
    pub attributes: Vec<(String, String)>,
    /// `Secure` on plain HTTP too (`session-cookie-secure`); over HTTPS it always is, as
    /// ingress-nginx marks it.
    pub secure: bool,
    /// `affinity-mode: persistent` or `session-cookie-change-on-failure: "true"`: the cookie
    /// names the endpoint itself (Envoy's stateful session), so a client keeps it while it
    /// exists, whatever endpoints are added, and a request tried again elsewhere re-points it;
    /// otherwise
    /// (`balanced`) the cookie is hashed onto the ring, and scaling moves some clients.
    pub persistent: bool,
}

/// ingress-nginx's CORS response headers (its template's `more_set_headers`, which replace an
/// upstream's own).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CorsHeaders {
    /// `Access-Control-Allow-Origin`: `*`, or the request's own `Origin` (an allowed one).
    pub allow_origin: AllowOrigin,
    /// `Access-Control-Allow-Credentials: true` when set.
    pub allow_credentials: bool,
    pub allow_methods: String,
    pub allow_headers: String,
    /// `Access-Control-Expose-Headers`; empty: not sent.
    pub expose_headers: String,
    /// `Access-Control-Max-Age`, seconds.
    pub max_age: u64,
}

impl CorsHeaders {
    /// ingress-nginx's CORS response headers in its order, as (name, value); a `None` value is
    /// the request's own (allowed) `Origin`.
    pub fn entries(&self) -> Vec<(&'static str, Option<String>)> {
        let origin = match self.allow_origin {
            AllowOrigin::Any => Some("*".to_string()),
            AllowOrigin::RequestOrigin => None,
        };
        let mut entries = vec![("access-control-allow-origin", origin)];
        if self.allow_credentials {
            entries.push(("access-control-allow-credentials", Some("true".into())));
        }
        entries.push(("access-control-allow-methods", Some(self.allow_methods.clone())));
        entries.push(("access-control-allow-headers", Some(self.allow_headers.clone())));
        if !self.expose_headers.is_empty() {
            entries.push(("access-control-expose-headers", Some(self.expose_headers.clone())));
        }
        entries.push(("access-control-max-age", Some(self.max_age.to_string())));
        entries
    }
}

/// What `Access-Control-Allow-Origin` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AllowOrigin {
    Any,
    /// The request's `Origin`, echoed.
    RequestOrigin,
}

/// An address block: `address` with the bits past `prefix_len` cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub address: std::net::IpAddr,
    pub prefix_len: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128), as ingress-nginx takes
    /// them; the host bits are cleared.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        use std::net::IpAddr;
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| "is not an IP address or CIDR block".to_string())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("has a prefix length that is not 0..={max}"))?,
        };
        let address = match address {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix_len)).unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix_len)).unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        };
        Ok(Cidr { address, prefix_len })
    }

    /// `ranges` sorted and without repeats: how every address list is kept, so that two
    /// spellings of one list are one policy.
    pub fn set(ranges: impl IntoIterator<Item = Cidr>) -> Vec<Cidr> {
        let mut ranges: Vec<Cidr> = ranges.into_iter().collect();
        ranges.sort();
        ranges.dedup();
        ranges
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// ingress-nginx's defaults: `proxy-body-size: 1m`, `proxy-read-timeout: 60`,
/// `proxy-next-upstream-tries: 3`.
impl Default for RoutePolicy {
    fn default() -> RoutePolicy {
        RoutePolicy {
            max_body_bytes: Some(1024 * 1024),
            upstream_idle_timeout: Duration::from_secs(60),
            tries: 3,
            request_headers: BTreeMap::new(),
            response_headers_set: BTreeMap::new(),
            response_headers_add: Vec::new(),
            response_headers_remove: Vec::new(),
            allow_sources: Vec::new(),
            deny_sources: Vec::new(),
            cors: None,
            preflight: false,
            hash: None,
            rate_limit: None,
            mirror: None,
            client_certificate_headers: None,
            custom_errors: None,
            access_log_off: false,
            answers_not_found: false,
        }
    }
}

impl RoutePolicy {
    /// A short name that depends only on the content: `p` and 15 hex digits. Equal policies share
    /// one key (and one Envoy route); a changed policy gets a new key, which is what lets the xDS
    /// stream keep the old one until the route table stops naming it.
    pub fn key(&self) -> String {
        // Every field, by name: a field added later cannot be left out of the key.
        let RoutePolicy {
            max_body_bytes,
            upstream_idle_timeout,
            tries,
            request_headers,
            response_headers_set,
            response_headers_add,
            response_headers_remove,
            allow_sources,
            deny_sources,
            cors,
            preflight,
            hash,
            rate_limit,
            mirror,
            client_certificate_headers,
            custom_errors,
            access_log_off,
            answers_not_found,
        } = self;
        let mut canonical = format!(
            "body={max_body_bytes:?};idle={};tries={tries};headers={request_headers:?};allow={allow_sources:?};deny={deny_sources:?};response={response_headers_set:?}/{response_headers_add:?}/{response_headers_remove:?};cors={cors:?}/{preflight};hash={hash:?};rate={rate_limit:?};mirror={mirror:?};client={client_certificate_headers:?};errors={custom_errors:?}",
            upstream_idle_timeout.as_millis(),
        );
        // Only when set, so the keys of policies that log stay as they were.
        if *access_log_off {
            canonical.push_str(";log=off");
        }
        if *answers_not_found {
            canonical.push_str(";answer=404");
        }
        let digest = Sha256::digest(canonical.as_bytes());
        format!("p{}", &hex::encode(&digest[..8])[..15])
    }
}

/// The `Strict-Transport-Security` value of ingress-nginx's `hsts`, `hsts-max-age`,
/// `hsts-include-subdomains` and `hsts-preload` settings.
pub fn hsts_value(max_age: u64, include_subdomains: bool, preload: bool) -> String {
    let mut value = format!("max-age={max_age}");
    if include_subdomains {
        value.push_str("; includeSubDomains");
    }
    if preload {
        value.push_str("; preload");
    }
    value
}

/// One Envoy cluster: a Service port, spoken to one way.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpstreamCluster {
    /// `namespace/service/port`, where port is the Service port number, then `~` and
    /// [`UpstreamOptions::key`] unless the options are the defaults.
    pub name: ClusterName,
    /// Ready endpoints, sorted. Empty: the cluster exists but has nowhere to send (Envoy answers 503).
    pub endpoints: Vec<Endpoint>,
    /// How Envoy speaks to the endpoints.
    pub options: UpstreamOptions,
}

/// An external authentication service (`auth-url`): an Envoy cluster the filter sends auth
/// requests to, found by DNS (as nginx resolves the auth-url's host), or Envoy's own listener when
/// the auth-url's host is the request's (`$host`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AuthService {
    /// `https://`: TLS, sending the host as SNI and (as nginx) not checking the certificate.
    pub tls: bool,
    pub target: AuthTarget,
}

/// Where an auth service is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthTarget {
    /// A DNS name or an IP address, and a port.
    Dns { host: String, port: u16 },
    /// Envoy's own HTTP (or, with TLS, HTTPS) listener: the auth request is routed like any
    /// request to the request's host.
    OwnListener,
}

impl AuthService {
    /// The Envoy cluster name: `wasm-ingress:auth:` then the scheme and `host:port`, or `self`.
    pub fn cluster_name(&self) -> ClusterName {
        self.named("auth")
    }

    /// The cluster name of the same place as a request mirror: `wasm-ingress:mirror:…`.
    pub fn mirror_cluster_name(&self) -> ClusterName {
        self.named("mirror")
    }

    fn named(&self, role: &str) -> ClusterName {
        let scheme = if self.tls { "https" } else { "http" };
        ClusterName::from(match &self.target {
            AuthTarget::Dns { host, port } => format!("wasm-ingress:{role}:{scheme}://{host}:{port}"),
            AuthTarget::OwnListener => format!("wasm-ingress:{role}:{scheme}://self"),
        })
    }
}

/// How Envoy speaks to a cluster's endpoints: ingress-nginx's `backend-protocol`, `proxy-ssl-*`
/// and `proxy-connect-timeout`. Two Ingresses that reach one Service port differently get two
/// clusters with the same endpoints.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UpstreamOptions {
    /// HTTP/2 (GRPC, GRPCS); otherwise HTTP/1.1.
    pub http2: bool,
    /// TLS (HTTPS, GRPCS); `None`: plain text.
    pub tls: Option<UpstreamTls>,
    /// Longest wait for a connection (`proxy-connect-timeout`).
    pub connect_timeout: Duration,
    /// The Service's cluster IP is the only endpoint (`service-upstream`), not its EndpointSlices.
    pub service_upstream: bool,
    /// How an endpoint is picked (`load-balance`; a ring for `affinity` / `upstream-hash-by`).
    pub balance: Balance,
}

/// Envoy's load-balancing policy of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Balance {
    /// ingress-nginx's default `round_robin`.
    #[default]
    RoundRobin,
    /// ingress-nginx's `ewma` (least latency): Envoy's least-request is the nearest.
    LeastRequest,
    /// A consistent-hash ring keyed by the route's [`HashOn`].
    RingHash,
    /// ingress-nginx's `upstream-hash-by-subset`: the endpoints cut into subsets of `size`, each
    /// endpoint labelled with its subsets' slots; Envoy's subset balancer picks at random among
    /// the endpoints of the slot the filter sends (see `wasm_ingress_filter::subset`).
    HashSubset { size: u32 },
}

/// ingress-nginx's default `proxy-connect-timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for UpstreamOptions {
    fn default() -> UpstreamOptions {
        UpstreamOptions {
            http2: false,
            tls: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            service_upstream: false,
            balance: Balance::RoundRobin,
        }
    }
}

impl UpstreamOptions {
    /// A short name that depends only on the content (12 hex digits), which tells the clusters of
    /// one Service port apart.
    pub fn key(&self) -> String {
        let digest = Sha256::digest(format!("{self:?}").as_bytes());
        hex::encode(&digest[..6])
    }

    /// The cluster name for the Service port cluster `base` spoken to this way.
    pub fn cluster_name(&self, base: &ClusterName) -> ClusterName {
        if *self == UpstreamOptions::default() {
            base.clone()
        } else {
            base.with_options(&self.key())
        }
    }
}

/// TLS to the endpoints. The defaults are nginx's: no SNI, the certificate not checked.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UpstreamTls {
    /// The SNI sent (`proxy-ssl-server-name: on` with `proxy-ssl-name`); `None`: none.
    pub server_name: Option<String>,
    /// How the endpoint's certificate is checked (`proxy-ssl-verify: on`); `None`: it is not.
    pub verify: Option<UpstreamVerification>,
    /// The client certificate presented (`proxy-ssl-secret`'s tls.crt/tls.key), a key into
    /// `Model::certificates`.
    pub client_certificate: Option<String>,
    /// ALPN offered: `h2` for GRPCS, none otherwise (as nginx).
    pub alpn: Vec<String>,
    /// TLS versions offered (nginx's `proxy_ssl_protocols`).
    pub versions: TlsVersions,
}

/// A range of TLS versions, 1.2 and 1.3 being the only ones offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TlsVersions {
    pub min_tls13: bool,
    pub max_tls13: bool,
}

impl TlsVersions {
    /// nginx's default `proxy_ssl_protocols` (TLSv1.2 TLSv1.3).
    pub const ANY: TlsVersions = TlsVersions { min_tls13: false, max_tls13: true };
    /// ingress-nginx's `proxy-ssl-protocols` default.
    pub const V1_2_ONLY: TlsVersions = TlsVersions { min_tls13: false, max_tls13: false };

    /// A space-separated list of `TLSv1.2` / `TLSv1.3`, as `proxy-ssl-protocols` takes it.
    pub fn parse(text: &str) -> Option<TlsVersions> {
        let mut has = (false, false);
        for word in text.split_whitespace() {
            match word {
                "TLSv1.2" => has.0 = true,
                "TLSv1.3" => has.1 = true,
                _ => return None,
            }
        }
        match has {
            (false, false) => None,
            (v12, v13) => Some(TlsVersions { min_tls13: !v12, max_tls13: v13 }),
        }
    }
}

impl Default for TlsVersions {
    fn default() -> TlsVersions {
        TlsVersions::ANY
    }
}

/// Checking the endpoint's certificate.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UpstreamVerification {
    /// PEM bundle of the CAs trusted (`proxy-ssl-secret`'s ca.crt).
    pub trusted_ca_pem: String,
    /// A DNS name the certificate must carry (`proxy-ssl-name`); `None`: the chain alone is checked.
    pub name: Option<String>,
    /// Longest chain accepted below the leaf (`proxy-ssl-verify-depth`).
    pub max_depth: u32,
}

impl fmt::Debug for UpstreamVerification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamVerification")
            .field("trusted_ca_sha256", &hex::encode(Sha256::digest(self.trusted_ca_pem.as_bytes())))
            .field("name", &self.name)
            .field("max_depth", &self.max_depth)
            .finish()
    }
}

/// One ready backend address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// IPv4 or IPv6 address, as text.
    pub address: String,
    pub port: u16,
}

/// A set of SNI names served with one certificate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TlsServer {
    /// Lower-case server names (`*.example.com` allowed), sorted, non-empty.
    pub server_names: Vec<String>,
    /// Key into `Model::certificates`.
    pub certificate: String,
}

/// What Envoy's certificate selector picks a certificate by: the names of its leaf (DNS SANs, else
/// the CN; lower-case) and its key type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSelection {
    pub names: Vec<String>,
    pub key: CertificateKey,
}

/// A certificate's key as Envoy's selector tells them apart: a client that offers the curve of an
/// ECDSA certificate gets it before an RSA one carrying the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CertificateKey {
    Rsa,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
}

/// A PEM certificate chain and its private key, already checked to parse and to match.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsCertificate {
    pub cert_chain_pem: String,
    pub private_key_pem: String,
}

impl fmt::Debug for TlsCertificate {
    // Never print private keys, not even in debug logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCertificate")
            .field("cert_chain_pem_len", &self.cert_chain_pem.len())
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Part of the object was not served (a path, a TLS entry, the whole Ingress).
    Error,
    /// Served, but not as the user may expect (an ignored annotation, a path answering 503).
    Warning,
}

impl Severity {
    /// `error` or `warning`, as diagnostics are printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// Which Kubernetes object a diagnostic is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// `Ingress`, `Service`, `Secret`, `IngressClass`, `EndpointSlice`, or `File` for a manifest file.
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// A problem found while translating, naming the object and the field:
/// `Ingress default/shop: spec.rules[0].http.paths[1].path: invalid regex …`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Diagnostic {
    pub object: ObjectRef,
    /// JSON-path-like field (`spec.rules[0].http.paths[1].path`); empty for the whole object.
    pub field: String,
    pub message: String,
    pub severity: Severity,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = self.severity.as_str();
        if self.field.is_empty() {
            write!(f, "{level}: {}: {}", self.object, self.message)
        } else {
            write!(f, "{level}: {}: {}: {}", self.object, self.field, self.message)
        }
    }
}

/// The result of one translation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Translation {
    pub model: Model,
    /// Sorted; one per problem.
    pub diagnostics: Vec<Diagnostic>,
    /// Ingresses of our class that contributed at least one route, default backend or TLS entry.
    pub served_ingresses: BTreeSet<ObjectKey>,
    /// Ingresses of our class that ingress-nginx would load: all but those an annotation value
    /// gets refused (an error), served or not (every path taken by an older Ingress, a canary
    /// without its main Ingress, TLS entries without rules). Their `status.loadBalancer` is ours
    /// to set, as ingress-nginx writes its address on every Ingress of its store.
    pub loaded_ingresses: BTreeSet<ObjectKey>,
    /// Ingresses served closed: an access control they ask for cannot be enforced, so every path
    /// answers 403/503 instead of the backend.
    pub denied_ingresses: BTreeSet<ObjectKey>,
    /// What was read from EndpointSlices (to apply an EndpointSlice-only change without
    /// translating again: `translate::ingress::endpoints::reread`).
    pub endpoint_reads: EndpointReads,
}

/// A Service port whose ready endpoints translation read: the Service, and the port's name
/// (EndpointSlice ports are matched to Service ports by name, as kube-proxy does).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndpointQuery {
    pub service: ObjectKey,
    pub port_name: String,
    /// An ExternalName Service's target port: its EndpointSlices (made by `serve` from the name's
    /// addresses, see `source::external_names`) carry addresses only.
    pub port: Option<u16>,
    /// The Service port's numeric `targetPort` (its `port` when unset): the port of a slice that
    /// lists no ports, or none of this name, as ingress-nginx falls back to it (its issue 7390).
    pub target_port: Option<u16>,
}

/// What a translation read from EndpointSlices.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointReads {
    /// Every Service port read, and whether it had ready endpoints. Routing depends on that and
    /// on nothing else of the EndpointSlices (a Service port without ready endpoints lets the
    /// `default-backend` answer, or the path answers 503).
    pub queries: BTreeMap<EndpointQuery, bool>,
    /// The clusters whose endpoints are those of a Service port (not `service-upstream` ones).
    pub clusters: BTreeMap<ClusterName, EndpointQuery>,
}
