//! The route table: the one contract between the control plane and the filter.
//!
//! The control plane builds a [`RouteTable`] from Ingress objects, serialises it to JSON and sends it to
//! Envoy as the filter's configuration (through ECDS); the filter parses it once per `on_configure`,
//! compiles it ([`crate::matcher::CompiledTable`]) and routes every request with it. Both sides use this
//! very type, so the schema cannot drift between them.
//!
//! This module only describes data: no matching, no proxy-wasm, no Kubernetes. Unknown fields are
//! rejected (`deny_unknown_fields`): a filter that does not understand a field must refuse the table
//! (Envoy then keeps the last good one, `failure_policy: FAIL_RELOAD`) rather than route without it.
//!
//! JSON shape (abridged):
//! ```json
//! {
//!   "schema": 1,
//!   "version": "3f2a…",
//!   "hosts": [
//!     { "host": "shop.example.com",
//!       "routes": [
//!         { "path": {"type": "Prefix", "value": "/api"},
//!           "action": {"kind": "Forward", "backends": [{"cluster": "default/api/8080"}]},
//!           "origin": "default/shop: spec.rules[0].http.paths[0]" } ] },
//!     { "host": "*.example.com", "routes": [] },
//!     { "host": "", "routes": [] }
//!   ],
//!   "default_backend": {"kind": "Forward", "backends": [{"cluster": "default/fallback/80"}]}
//! }
//! ```

use serde::{Deserialize, Serialize};

use crate::cluster::ClusterName;

pub use crate::origin::Origin;

/// The schema revision this build of the filter understands. A table with another value is refused.
pub const SCHEMA_VERSION: u32 = 1;

/// The request header the filter sets to the chosen upstream cluster; Envoy's single catch-all route
/// reads it with `cluster_header`. Any client-sent value is removed before routing, on every request.
pub const CLUSTER_HEADER: &str = "x-wasm-ingress-cluster";

/// The request header the filter sets to a route's [`Forward::policy`] key when it has one; Envoy's
/// route configuration resolves the key (a hash lookup in the virtual host's matcher) to the Envoy
/// route carrying that policy (timeouts, retries, body limit, …). The filter only ever sets it (a
/// route without a policy costs no header call), so Envoy must remove any client-sent value before
/// the filter runs (HCM early header mutation, as for [`CLUSTER_HEADER`]); otherwise a client could
/// pick a policy.
pub const POLICY_HEADER: &str = "x-wasm-ingress-policy";

/// The request header that marks an error-page request (ingress-nginx `custom-http-errors`):
/// Envoy's custom-response filter answers a listed upstream status by sending the request again,
/// through the filter chain, with this header set to `"{token} {cluster}"`: the table's
/// [`RouteTable::error_page_token`] and the default backend's cluster (one of
/// [`RouteTable::error_page_clusters`]). The filter then sends it there as `GET /`, as
/// ingress-nginx's `@custom_…` location does, instead of routing it. The token is a secret
/// between the control plane and Envoy (made from the OS's randomness when the control plane
/// starts), so a client cannot mark a request itself: a value without the token is removed and
/// the request routed as any other (host checks, source ranges and auth included).
pub const ERROR_PAGE_HEADER: &str = "x-wasm-ingress-error-page";

/// The response header in which Envoy's custom-response filter passes the error page's own status
/// (its `%RESPONSE_CODE%`, before the filter puts the original status back). On an error-page
/// request's response the filter makes it the `:status` and removes it, so the client gets the
/// error page's status, as nginx's `error_page CODE = @custom_…` answers.
pub const ERROR_PAGE_STATUS_HEADER: &str = "x-wasm-ingress-error-page-status";

/// The cluster a host's [`VirtualHost::implicit_root`] forwards to: no Envoy cluster has this name
/// (`!` is in no Kubernetes name), and the Envoy route of the policy such a `Forward` carries
/// answers a cluster it does not know with 404 (not 503), after its address lists and rate
/// limits, so nothing is ever proxied.
pub const NOT_FOUND_CLUSTER: &str = "wasm-ingress!not-found";

/// The whole routing configuration of one Envoy listener's filter.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    /// Must equal [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Opaque version of this table's content (the control plane uses a content hash). Logged by the
    /// filter when a table is accepted; never used for routing.
    #[serde(default)]
    pub version: String,
    /// Virtual hosts. Each `host` string appears at most once (the control plane merges Ingresses that
    /// share a host). Order does not matter.
    #[serde(default)]
    pub hosts: Vec<VirtualHost>,
    /// Served when no virtual host or path matches and the matched host has no `fallback`
    /// (the Ingress `spec.defaultBackend`). `None`: the filter answers 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<RouteAction>,
    /// `default_backend` is a catch-all Ingress's (`spec.defaultBackend` without rules): it also
    /// takes a path no rule of a named host matches, before that host's
    /// [`VirtualHost::implicit_root`] (the Kubernetes docs' reading). `false` (the controller's own
    /// default backend, `--default-backend-service`, or none): the host's `implicit_root` comes
    /// first, as ingress-nginx's implicit `/` location of the host.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default_backend_is_catch_all: bool,
    /// Password lists of basic auth ([`BasicAuth::passwords`]): list key → user name → stored
    /// hash, as an htpasswd file has it (`$2y$…`, `$apr1$…`, `{SHA}…`; see [`crate::basic`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub passwords: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// The clusters that answer error pages (the `default-backend` Services of Ingresses with
    /// `custom-http-errors`), sorted: see [`ERROR_PAGE_HEADER`]. Empty: the filter never reads it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_page_clusters: Vec<ClusterName>,
    /// The secret an error-page request's [`ERROR_PAGE_HEADER`] starts with: at least
    /// [`MIN_ERROR_PAGE_TOKEN`] characters, none a space or control character, when
    /// `error_page_clusters` is not empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error_page_token: String,
    /// ingress-nginx's `use-forwarded-headers` (`serve --trusted-proxy-hops` above 0: a load
    /// balancer in front sets them): the client's `X-Forwarded-Host` (its first entry) is the host
    /// sent upstream, as `Host` (unless `upstream-vhost`) and `X-Forwarded-Host`, and its
    /// `X-Forwarded-Port` is kept (Envoy then adds none: the filter writes the listener's port
    /// when it is absent). `false`: the request's own `Host` and the listener's port.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trust_forwarded_headers: bool,
    /// Connections start with a PROXY protocol header (`serve --use-proxy-protocol`): one whose
    /// destination port is 443 came in on the load balancer's HTTPS port, so the request counts
    /// as HTTPS (no `ssl-redirect`, `X-Forwarded-Proto: https` upstream), as ingress-nginx's
    /// `lua_ingress.lua` decides with `use-proxy-protocol`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub proxy_protocol: bool,
    /// Response headers the filter sets on the answers it makes to requests no route takes — the
    /// 404 of a host or path nothing serves, the default server's `/healthz` and `/nginx_status`,
    /// a host's `fallback_https_redirect`, a 414 — as ingress-nginx's ConfigMap `add-headers`
    /// (nginx's `more_set_headers` in `http`) covers every response. Same rules as
    /// [`Route::answer_headers`]. Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answer_headers: Vec<AnswerHeader>,
    /// Client addresses and blocks refused on the default server (`serve --block-cidrs`): a
    /// request for a host no Ingress names, or for a path no host-less route takes, answered 404
    /// or by the table's default backend, is answered 403 instead when its client is listed, as
    /// nginx's `deny` lines in `http` reach the default server's `location /` (it has no
    /// `allow`/`deny` of its own). The default server's `/healthz` still answers 200 (a `return`,
    /// before nginx's access phase), and routes have their own lists in their policies. Entries
    /// as [`crate::address::parse`] reads them, at most [`crate::address::MAX_RANGES`]. Empty:
    /// none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_server_denied: Vec<String>,
    /// The access log names the Ingress and Service of each request (ingress-nginx's
    /// `$namespace`, `$ingress_name`, `$service_name`, `$service_port` in `log-format-upstream`):
    /// the filter leaves them in Envoy's filter state under [`crate::cluster::LOG_PROPERTIES`],
    /// from the matched route's origin and its cluster's name. `false`: it leaves nothing (each
    /// costs a host call per request).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log_route: bool,
    /// ingress-nginx's `enable-access-log-for-default-backend`: the filter's own 404 for a
    /// request of the default server's `location /` (a host no Ingress names, or a path no
    /// host-less route takes) is access-logged. `false` (ingress-nginx's default): the filter
    /// marks such a request with [`UNLOGGED_HEADER`] and the access log's filter skips it. The
    /// default server's `/healthz` and `/nginx_status` are never logged, as there. Requests
    /// forwarded to a default backend (the controller's, or a catch-all Ingress's) are logged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default_server_logged: bool,
}

/// The request header that keeps one of the filter's own answers out of the access log (see
/// [`RouteTable::default_server_logged`]). A pseudo-header, so that no client can send it (HTTP/1
/// refuses the name, HTTP/2 and 3 unknown pseudo-headers) to keep its requests out of the log;
/// only set on requests the filter answers itself, which never go upstream.
pub const UNLOGGED_HEADER: &str = ":wasm-ingress-unlogged";

/// The shortest [`RouteTable::error_page_token`] a table with error pages may have.
pub const MIN_ERROR_PAGE_TOKEN: usize = 16;

/// The routes of one host (one Ingress `spec.rules[].host`, merged across Ingresses).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct VirtualHost {
    /// Which `:authority` values this entry serves, lower case, without a port:
    /// - `"foo.example.com"`: exactly that host;
    /// - `"*.example.com"`: exactly one DNS label before `.example.com` (`a.example.com`, not
    ///   `b.a.example.com`, not `example.com`);
    /// - `""`: host-less rules, for requests whose host matched no exact or wildcard entry.
    ///
    /// Precedence: exact, then wildcard, then host-less. A request whose host selected an entry never
    /// falls through to another entry's paths (as in ingress-nginx, where each host is its own server).
    pub host: String,
    /// The paths of this host. Evaluation (see `matcher`): an `Exact` route equal to the path wins;
    /// otherwise the first `Regex` route, in the order listed, whose pattern matches at the start of
    /// the path; otherwise the longest element-wise `Prefix` route.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Served when this host matched but none of its paths did (the `spec.defaultBackend` of the
    /// Ingress that defines this host). `None`: fall back to the table's `default_backend`, then 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<RouteAction>,
    /// Answered, over plain HTTP only, to a request no route of this host matches, before
    /// `fallback`: ingress-nginx gives each host an implicit `/` location with the annotations of
    /// the oldest Ingress naming the host, so its `ssl-redirect` / `force-ssl-redirect` sends
    /// every unmatched plain-HTTP request to HTTPS too. `None`: no such redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_https_redirect: Option<Redirect>,
    /// ingress-nginx's implicit `/` location of this host, for a request no route matches that
    /// neither `fallback` nor a catch-all Ingress takes (see
    /// [`RouteTable::default_backend_is_catch_all`]): ingress-nginx holds such a request to the
    /// oldest Ingress naming the host — its address lists, rate limits, basic and external auth,
    /// `satisfy`, `limit-connections`, a fail-closed denial, a `permanent-`/`temporal-redirect` —
    /// before its own default backend answers. A `Forward` with that Ingress's checks to the
    /// controller's default backend (`--default-backend-service`), or without one to
    /// [`NOT_FOUND_CLUSTER`], whose policy's Envoy route answers 404 once its own checks pass; a
    /// `Respond` (the denial) or a `Redirect`. `None`: the table's `default_backend`, else the
    /// filter's own 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implicit_root: Option<RouteAction>,
    /// ingress-nginx `app-root`: a request whose path is exactly `/` (any query) is answered with
    /// this redirect before any route of the host is looked at. `None`: no such redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_root: Option<Redirect>,
    /// ingress-nginx `auth-tls-*`: every HTTPS request to this host is checked for a client
    /// certificate (Envoy validates it during the handshake on this host's SNI chain; see
    /// [`crate::client_cert`]). `None`: none is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ClientCertificate>,
}

/// What a host asks of client certificates (`auth-tls-verify-client` and `auth-tls-error-page`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientCertificate {
    /// `on`: a request without a certificate is refused (400, or the error page). `optional`,
    /// `optional_no_ca`: it passes, with `ssl-client-verify: NONE`.
    pub required: bool,
    /// Envoy checked a presented certificate against the CA (`on`, `optional`); `false` for
    /// `optional_no_ca`, where any certificate is accepted unchecked.
    pub verified: bool,
    /// `auth-tls-error-page`: where a refused request is redirected (302) instead of the 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_page: Option<String>,
    /// `auth-tls-match-cn`: a regex the certificate's subject DN (RFC 2253, `CN=…,O=…`) must match
    /// somewhere, else 403 (nginx's `$ssl_client_s_dn !~ …`; no certificate: an empty subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_cn: Option<String>,
    /// `auth-tls-verify-client: off`: no certificate is asked for (the host has no filter chain of
    /// its own), so every request passes with `ssl-client-verify: NONE` and the client's own
    /// `ssl-client-*` headers dropped, as nginx sets them on such a host; `match_cn` then sees an
    /// empty subject. `required` and `verified` are `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub off: bool,
}

/// One path rule and what to do with the requests it matches.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub path: PathMatch,
    pub action: RouteAction,
    /// Where this route came from, for logs and `explain`, e.g.
    /// `"default/shop: spec.rules[0].http.paths[1]"`. Never used for routing.
    #[serde(default, skip_serializing_if = "Origin::is_empty")]
    pub origin: Origin,
    /// Answered instead of `action` when the request came over plain HTTP (its `x-forwarded-proto`,
    /// which Envoy sets from the connection, is not `https`): ingress-nginx `ssl-redirect` /
    /// `force-ssl-redirect`. `None`: plain HTTP is served like HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_redirect: Option<Redirect>,
    /// Response headers the filter sets on the answers it makes itself for this route — its
    /// redirects, 401/403/503s and an external auth service's refusals (ingress-nginx
    /// `custom-headers`: nginx's `more_set_headers` applies to every response of the location).
    /// Answers from the upstream and from Envoy get them from the route policy. At most
    /// [`crate::limits::MAX_ANSWER_HEADERS`]; names are lower-case header tokens, values printable
    /// ASCII. Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answer_headers: Vec<AnswerHeader>,
}

/// Headers the filter's answers set themselves, which [`Route::answer_headers`] must not name.
pub const ANSWER_OWN_HEADERS: [&str; 4] = ["location", "content-type", "content-length", "www-authenticate"];

/// A response header the filter sets on its own answers (see [`Route::answer_headers`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AnswerHeader {
    /// Lower case.
    pub name: String,
    /// Literal text.
    pub value: String,
}

/// How a route matches the request path (the part of `:path` before `?` or `#`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", content = "value", deny_unknown_fields)]
pub enum PathMatch {
    /// Case-sensitive equality with the whole path; a trailing slash is significant.
    Exact(String),
    /// Element-wise prefix (`/aaa/bbb` matches `/aaa/bbb`, `/aaa/bbb/`, `/aaa/bbb/ccc`, not
    /// `/aaa/bbbxyz`). A trailing slash in the value is ignored; `/` matches every path.
    Prefix(String),
    /// A regular expression (Rust `regex` syntax) that must match at the start of the path; it is
    /// not anchored at the end. Flags go inside the pattern (the control plane writes `(?i)` for
    /// ingress-nginx's case-insensitive regex locations). Its capture groups feed
    /// [`PathRewrite::Template`].
    Regex(String),
}

/// What the filter does with a matched request. Read by `action_de` (`kind` first is the fast
/// path), written by this derive (`kind` first).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "kind")]
pub enum RouteAction {
    /// Proxy to an upstream cluster.
    Forward(Forward),
    /// Answer from the filter without going upstream (e.g. 503 for a Service that does not exist).
    Respond(Respond),
    /// Answer with a redirect (ingress-nginx `permanent-redirect`, `temporal-redirect`,
    /// `from-to-www-redirect`).
    Redirect(Redirect),
}

/// Proxy the request to one of `backends`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    /// One or more upstream clusters; with several, each request picks one at random in proportion
    /// to `weight` (canary and weighted backends). Must not be empty; weights must not all be zero.
    pub backends: Vec<WeightedBackend>,
    /// How to rewrite `:path` before proxying. `None`: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<PathRewrite>,
    /// Replace `:authority` with this value (ingress-nginx `upstream-vhost`). `None`: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_rewrite: Option<String>,
    /// Key of the Envoy route policy (timeouts, retries, body limit, …) this route uses, sent to
    /// Envoy in [`POLICY_HEADER`]. Empty: the default policy (no header is set). Keys are made of
    /// `[0-9a-z-]` and at most [`crate::limits::MAX_POLICY_KEY_BYTES`] long.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy: String,
    /// ingress-nginx canary: some requests go to `canary.cluster` instead of `backends`, everything
    /// else about the route (rewrite, host, policy) staying the same. `None`: no canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Box<Canary>>,
    /// ingress-nginx `enable-cors`: a request whose `Origin` is allowed gets `cors.policy` instead
    /// of `policy` (its CORS response headers), a preflight `cors.preflight_policy` (Envoy answers
    /// 204). `None`: no CORS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Box<Cors>>,
    /// ingress-nginx `auth-url`: the filter first asks an authentication service about the
    /// request and forwards it only on a 2xx (see [`crate::auth`]). `None`: no external auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Box<ExternalAuth>>,
    /// ingress-nginx `auth-type: basic`: only requests whose `Authorization: Basic` credentials
    /// match a user of the named password list are forwarded (see [`crate::basic`]); others get
    /// 401. Checked before `auth`. `None`: no basic auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<Box<BasicAuth>>,
    /// ingress-nginx `limit-connections`: at most `limit` requests of one client address in
    /// progress at once in the limit's zone, else 503 (see [`crate::connections`]). Counted before
    /// basic and external auth, not for a CORS preflight. `None`: no such limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<Box<ConnectionLimit>>,
    /// ingress-nginx `satisfy: any` on a route with `basic_auth` or `auth`: one access check
    /// that lets the request in is enough — an allowed client address, then basic auth, then the
    /// auth service (see [`crate::satisfy`]). The route's address lists are here, not in its
    /// Envoy policy, since a client they allow needs no credentials. `None`: every check must
    /// pass (`satisfy all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satisfy_any: Option<Box<SatisfyAny>>,
    /// `satisfy: all` (ingress-nginx's default) on a route with `basic_auth` or `auth` and
    /// address lists: nginx's access module refuses a client the lists refuse (403) before basic
    /// auth or the auth service is asked, so the filter checks them first. The lists stay in the
    /// route's Envoy policy too (RBAC, after the filter); here they only decide which answer a
    /// refused client gets. `None`: no such lists, or `satisfy_any`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lists_first: Option<Box<SatisfyAny>>,
    /// ingress-nginx `proxy-redirect-from`/`-to` and `proxy-cookie-domain`/`-path`: how the
    /// upstream's `Location`, `Refresh` and `Set-Cookie` headers are rewritten on the way back
    /// (see [`crate::response`]). `None`: passed unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Box<ResponseRewrite>>,
    /// ingress-nginx `upstream-hash-by-subset`: the key whose slot the filter sends in
    /// [`crate::subset::SUBSET_HEADER`], so the cluster's subset load balancer keeps requests with
    /// the same key on one subset of endpoints (see [`crate::subset`]). `None`: no subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset_hash: Option<Box<crate::subset::HashKey>>,
    /// ingress-nginx `affinity: cookie`: the sticky cookie's name. Envoy's hash policy makes the
    /// cookie; the filter adds the chosen cluster's backend key to it on the way back, takes it off
    /// on the way in, and with a `canary` keeps a request on the backend its cookie names (see
    /// [`crate::affinity`]). `None`: no sticky cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_cookie: Option<String>,
    /// `session-cookie-expires`: the filter adds `Expires=` this many seconds from the request's
    /// time to the sticky cookie Envoy sets, in nginx's `cookie_time` form (Envoy writes only
    /// `Max-Age`). `None`: no `Expires`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_cookie_expires: Option<u64>,
}

/// A per-client limit on requests in progress (ingress-nginx `limit-connections`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConnectionLimit {
    /// Requests of one client count together on every route with the same zone (the control plane
    /// names it after the Ingress, as ingress-nginx's zone is per Ingress). Visible ASCII, no
    /// spaces, at most [`crate::connections::MAX_ZONE_BYTES`].
    pub zone: String,
    /// Requests one client may have in progress at once in the zone; at least 1.
    pub limit: u32,
    /// Client addresses never limited (`limit-allowlist`): addresses or CIDR blocks, IPv4 or IPv6.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exempt: Vec<String>,
    /// The answer past the limit, 400–599 (ingress-nginx's ConfigMap `limit-conn-status-code`;
    /// absent: 503, its default).
    #[serde(default = "ConnectionLimit::default_status", skip_serializing_if = "ConnectionLimit::is_default_status")]
    pub status: u16,
}

impl ConnectionLimit {
    /// ingress-nginx's `limit-conn-status-code` default.
    pub const DEFAULT_STATUS: u16 = 503;

    fn default_status() -> u16 {
        Self::DEFAULT_STATUS
    }

    fn is_default_status(status: &u16) -> bool {
        *status == Self::DEFAULT_STATUS
    }
}

/// The response-header rewrites of a route (nginx's `proxy_redirect`, `proxy_cookie_domain`,
/// `proxy_cookie_path`). Each `from` and `to` may use the nginx variables of
/// [`crate::auth::SIGNIN_VARIABLES`], and has no spaces or control characters.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct ResponseRewrite {
    /// A `Location` (or `Refresh` URL) starting with `from` gets `to` instead of that prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Replacement>,
    /// A `Set-Cookie` `domain` equal to `from` (case-insensitive, leading dot kept) becomes `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_domain: Option<Replacement>,
    /// A `Set-Cookie` `path` starting with `from` gets `to` instead of that prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_path: Option<Replacement>,
    /// A `Location` that `redirect` makes relative (starting with `/`) gets the request's scheme
    /// and host in front, as nginx's `absolute_redirect` (on unless `relative-redirects`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absolute_redirects: bool,
    /// ingress-nginx `session-cookie-conditional-samesite-none`: the `Set-Cookie` of this name
    /// (the sticky cookie) loses its `SameSite=None` when the request's `User-Agent` is one that
    /// mishandles it (see [`crate::response::same_site_none_compatible`]). A cookie name (an
    /// HTTP token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditional_samesite_none: Option<String>,
}

/// One `from` → `to` of a [`ResponseRewrite`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Replacement {
    pub from: String,
    pub to: String,
}

/// The client-address lists of a `satisfy: any` route (`whitelist-source-range`,
/// `denylist-source-range`): addresses or CIDR blocks. A denied address is refused even when
/// allowed; with an allow list, an address it lacks is refused; without one, an address not
/// denied is neither allowed nor refused (nginx's access module declines).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct SatisfyAny {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// Basic (or digest) authentication of a route.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The realm of the 401's `WWW-Authenticate: Basic realm="…"` (`auth-realm`).
    #[serde(default)]
    pub realm: String,
    /// The key of the users in [`RouteTable::passwords`] (the control plane uses the Secret's
    /// `namespace/name`). A key the table lacks lets nobody in.
    pub passwords: String,
    /// `auth-type: digest`: the users are checked by digest authentication (see
    /// [`crate::digest`]), and each list entry is the rest of an htdigest line, `realm:HA1`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub digest: bool,
}

impl Forward {
    /// Every cluster this action may send a request to: its backends, then its canary's.
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        self.backends.iter().map(|b| b.cluster.as_str()).chain(self.canary.as_deref().map(|c| c.cluster.as_str()))
    }

}

/// ingress-nginx's external authentication (`auth-url` and its companions): before a request is
/// forwarded, the filter sends an auth request (no body) to `cluster` and waits. 2xx: the request
/// goes on, with `response_headers` copied from the auth response; 401: a redirect to `signin`
/// (302) or the 401 itself; 403: 403; anything else, or no answer in time: 500.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExternalAuth {
    /// The Envoy cluster of the auth service.
    pub cluster: ClusterName,
    /// `:authority` of the auth request (the auth-url's host, without port, as nginx sends it).
    /// `None`: the request's own host (`$host` in the auth-url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// `:path` of the auth request: the auth-url's path and query, literal.
    pub path: String,
    /// `:method` of the auth request (`auth-method`). `None`: `GET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Where a 401 is redirected (302), with nginx variables (`$scheme`, `$pass_access_scheme`,
    /// `$host`, `$http_host`, `$best_http_host`, `$request_uri`, `$escaped_request_uri`)
    /// still in it: `auth-signin` with ingress-nginx's redirect parameter already added. `None`:
    /// the 401 is answered as such.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signin: Option<String>,
    /// Lower-case names of the auth response headers copied onto the upstream request
    /// (`auth-response-headers`); one the auth response lacks is removed from the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_headers: Vec<String>,
    /// `X-Auth-Request-Redirect` of the auth request (`auth-request-redirect`). `None`: the
    /// request URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_redirect: Option<String>,
    /// `auth-always-set-cookie`: the auth response's `Set-Cookie` goes on every response, not only
    /// on successful ones.
    #[serde(default)]
    pub always_set_cookie: bool,
    /// `auth-proxy-set-headers`: headers set on the auth request (lower-case token names, at most
    /// [`crate::limits::MAX_AUTH_RESPONSE_HEADERS`]), replacing a client or built-in header of the
    /// same name. Each value is a template with nginx variables ([`crate::auth::HEADER_VARIABLES`]);
    /// one that comes out empty is not sent, as nginx drops an empty `proxy_set_header`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_headers: Vec<AuthHeader>,
    /// How long the filter waits for the auth response, in milliseconds (at least 1).
    pub timeout_ms: u32,
    /// `auth-cache-key` / `auth-cache-duration`: auth answers kept and reused (see
    /// [`crate::auth_cache`]). `None`: every request is asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<AuthCache>,
}

/// One header of the auth request (`auth-proxy-set-headers`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthHeader {
    /// Lower case.
    pub name: String,
    /// Text and nginx variables.
    pub value: String,
}

/// Which auth answers are kept, under which key, for how long.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuthCache {
    /// The key template: literal text and nginx variables (`$remote_user`, `$remote_addr`,
    /// `$host`, `$http_host`, `$request_uri`, `$scheme`, `$http_NAME`, `$cookie_NAME`; `${name}`
    /// too). The request's host, the auth service and the auth path are always part of the key.
    pub key: String,
    /// nginx's `proxy_cache_valid` lines, in order: the first that lists an answer's status
    /// decides how long it is kept.
    pub valid: Vec<CacheValidity>,
    /// The location's keyspace (the control plane writes the route's path): routes with another
    /// location never share answers, as ingress-nginx has an auth location per path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub location: String,
}

/// One `proxy_cache_valid`: statuses (none: any) and a time.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CacheValidity {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<u16>,
    /// How long, in milliseconds (at least 1).
    pub millis: u64,
}

/// Which policy a CORS request gets (see [`crate::actions::cors_policy`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// A regex (Rust `regex` syntax, unanchored: the control plane anchors it) that an allowed
    /// `Origin` header matches. `None`: every request is a CORS request, with or without `Origin`
    /// (ingress-nginx's `cors-allow-origin: *`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_pattern: Option<String>,
    /// The policy of an allowed request that is not an `OPTIONS` request.
    pub policy: String,
    /// The policy of an allowed `OPTIONS` request (a preflight: Envoy answers it).
    pub preflight_policy: String,
    /// The policy's CORS headers again, for the answers the filter makes itself to an allowed
    /// request (basic auth's 401, the auth service's verdicts, ...: nginx's `more_set_headers`
    /// covers every status). `Access-Control-Allow-Origin` is among them only when it is `*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answer_headers: Vec<AnswerHeader>,
    /// `Access-Control-Allow-Origin` on those answers is the request's own (allowed) `Origin`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub echo_origin: bool,
}

/// Which requests of a route go to the canary (an ingress-nginx `canary: "true"` Ingress attached
/// to the route's Ingress), decided in ingress-nginx's order: the header, then the cookie, then the
/// weight (see [`crate::canary`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// The canary's upstream cluster.
    pub cluster: ClusterName,
    /// `canary-by-header` and its value or pattern. `None`: no header decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<CanaryHeader>,
    /// `canary-by-cookie`: the cookie name (`always` / `never` decide). `None`: no cookie decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// The share of the remaining requests sent to the canary: `weight` out of `weight_total`
    /// (0 = none; `weight >= weight_total` = all).
    #[serde(default)]
    pub weight: u32,
    /// Must be at least 1.
    pub weight_total: u32,
    /// The canary Ingress, for logs and `explain`, e.g. `"default/shop-canary"`.
    #[serde(default, skip_serializing_if = "Origin::is_empty")]
    pub origin: Origin,
    /// `affinity-canary-behavior: legacy` on the canary Ingress: a sticky cookie from the canary
    /// does not keep a request on it (one from the main backend still keeps it off; see
    /// [`crate::affinity`]). `false`: ingress-nginx's default `sticky`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legacy_affinity: bool,
}

/// The header that decides (`canary-by-header`) and how its value is read.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CanaryHeader {
    /// Header name, lower case.
    pub name: String,
    pub rule: CanaryHeaderRule,
}

/// How the value of the canary header is read.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", content = "value", deny_unknown_fields)]
pub enum CanaryHeaderRule {
    /// `always` -> canary, `never` -> primary, anything else: the cookie and weight decide.
    AlwaysNever,
    /// Exactly this value (case-sensitive) -> canary; anything else: the cookie and weight decide.
    Value(String),
    /// A value in which this regex (Rust `regex` syntax) matches anywhere -> canary; anything
    /// else: the cookie and weight decide.
    Pattern(String),
    /// The header is present -> primary, whatever its value; absent: the cookie and weight decide.
    /// ingress-nginx's behaviour for a `canary-by-header-pattern` its regex engine refuses.
    PresentMeansPrimary,
}

/// One upstream cluster and its share of the traffic.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WeightedBackend {
    /// Envoy cluster name, `namespace/service/port`.
    pub cluster: ClusterName,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// How the path sent upstream is derived. The query string of the request is always kept.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", content = "value", deny_unknown_fields)]
pub enum PathRewrite {
    /// ingress-nginx `rewrite-target` (nginx `rewrite <regex> <target> break`): the whole path is
    /// replaced by this template, in which `$1`…`$9` stand for the capture groups of the route's
    /// `Regex` match (`$0`: the whole match; a group that did not take part is empty). If the template
    /// has a query string of its own, the request's query string is appended after it with `&`.
    Template(String),
    /// Replace the matched prefix of a `Prefix` route with this value, keeping the rest of the path
    /// (Gateway API `ReplacePrefixMatch`).
    ReplacePrefix(String),
}

/// A response written by the filter itself.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Respond {
    /// HTTP status code, 200–599.
    pub status: u16,
    /// Response body (`text/plain`). Empty: no body.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// The Ingress's CORS rule, on the 503 of a path whose Service does not exist (never on a
    /// denial: nginx's denied location has no CORS block): as on a [`Redirect`], an allowed
    /// preflight gets its preflight policy (Envoy answers it 204) and another allowed request
    /// gets this answer with its CORS headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Box<Cors>>,
}

/// A redirect answered by the filter: `status` with a `Location` built from `location`. No body.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// 300..=308.
    pub status: u16,
    pub location: Location,
    /// The Ingress's CORS rule (`permanent-redirect` / `temporal-redirect` with `enable-cors`):
    /// an allowed preflight gets its preflight policy instead of the redirect (Envoy answers it
    /// 204), another allowed request gets the redirect with its CORS headers, as ingress-nginx's
    /// template puts the CORS block before the location's `return`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Box<Cors>>,
}

/// How the `Location` of a [`Redirect`] is made.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum Location {
    /// This value, verbatim (an absolute URL, or a path when `relative-redirects` is on).
    Url { url: String },
    /// Assembled from the request: `<scheme>://<host><path>`.
    FromRequest {
        /// `None`: the request's scheme (`http` or `https`, from `x-forwarded-proto`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scheme: Option<String>,
        #[serde(default)]
        host: HostPart,
        #[serde(default)]
        path: PathPart,
    },
}

/// The host part of a [`Location::FromRequest`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(tag = "type", content = "value", deny_unknown_fields)]
pub enum HostPart {
    /// The request's host, lower case, without its port (ssl-redirect).
    #[default]
    RequestHost,
    /// The request's host, lower case, its own port replaced by this one (ssl-redirect with
    /// ingress-nginx's `use-port-in-redirects`, when HTTPS is not on 443).
    RequestHostWithPort(u16),
    /// The request's `:authority` as sent, port kept (app-root).
    RequestAuthority,
    /// This host followed by `:` and the port the client connected to (from-to-www-redirect, which
    /// always writes the port: `http://example.com:80/`).
    WithListenerPort(String),
}

/// The path part of a [`Location::FromRequest`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", content = "value", deny_unknown_fields)]
pub enum PathPart {
    /// The request's path and query. With `trim_trailing_slash`, one `/` ending the whole URI is
    /// dropped (ingress-nginx without `preserve-trailing-slash`: `/` gives `https://host`, `/a/`
    /// gives `https://host/a`, `/a/?q` is kept as it is).
    RequestUri { trim_trailing_slash: bool },
    /// This path; the request's query string is dropped (app-root).
    Fixed(String),
}

impl Default for PathPart {
    fn default() -> PathPart {
        PathPart::RequestUri { trim_trailing_slash: false }
    }
}

impl RouteTable {
    /// Parse a table from the JSON the control plane sends. Schema errors are returned, not logged:
    /// the caller decides how to report them.
    pub fn from_json(bytes: &[u8]) -> Result<RouteTable, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The JSON the filter expects, deterministic for a given table.
    pub fn to_json(&self) -> String {
        // Serialising plain structs, strings and integers to a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl RouteAction {
    /// The action's CORS rule: a `Forward`'s, or that of an answer the filter makes itself (a
    /// redirect, a missing Service's 503).
    pub fn cors(&self) -> Option<&Cors> {
        match self {
            RouteAction::Forward(forward) => forward.cors.as_deref(),
            RouteAction::Redirect(redirect) => redirect.cors.as_deref(),
            RouteAction::Respond(respond) => respond.cors.as_deref(),
        }
    }

    /// Every policy key this action may send to Envoy: a `Forward`'s own, then its CORS rule's.
    pub fn policies(&self) -> impl Iterator<Item = &str> {
        let own = match self {
            RouteAction::Forward(forward) => Some(forward.policy.as_str()),
            RouteAction::Redirect(_) | RouteAction::Respond(_) => None,
        };
        let cors = self.cors().into_iter().flat_map(|c| [c.policy.as_str(), c.preflight_policy.as_str()]);
        own.into_iter().chain(cors)
    }

    /// Forward every request to one cluster, unchanged.
    pub fn forward_to(cluster: impl Into<ClusterName>) -> RouteAction {
        RouteAction::Forward(Forward {
            backends: vec![WeightedBackend { cluster: cluster.into(), weight: 1 }],
            rewrite: None,
            host_rewrite: None,
            policy: String::new(),
            canary: None,
            cors: None,
            auth: None,
            basic_auth: None,
            connection_limit: None,
            satisfy_any: None,
            lists_first: None,
            response: None,
            subset_hash: None,
            affinity_cookie: None,
            affinity_cookie_expires: None,
        })
    }

    /// Answer with a fixed status from the filter.
    pub fn respond(status: u16, body: impl Into<String>) -> RouteAction {
        RouteAction::Respond(Respond { status, body: body.into(), cors: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips_through_json() {
        let table = RouteTable {
            schema: SCHEMA_VERSION,
            version: "v1".into(),
            hosts: vec![VirtualHost {
                host: "foo.example.com".into(),
                routes: vec![Route {
                    path: PathMatch::Regex("(?i)/something(/|$)(.*)".into()),
                    action: RouteAction::Forward(Forward {
                        backends: vec![WeightedBackend { cluster: "default/svc/80".into(), weight: 1 }],
                        rewrite: Some(PathRewrite::Template("/$2".into())),
                        host_rewrite: None,
                        policy: "timeout-60s".into(),
                        canary: Some(Box::new(Canary {
                            cluster: "default/svc-canary/80".into(),
                            header: Some(CanaryHeader { name: "x-canary".into(), rule: CanaryHeaderRule::Value("on".into()) }),
                            cookie: Some("canary".into()),
                            weight: 10,
                            weight_total: 100,
                            origin: Origin::parse("default/ing-canary"),
                            legacy_affinity: true,
                        })),
                        cors: Some(Box::new(Cors {
                            origin_pattern: Some("(?i)^https://a\\.example$".into()),
                            policy: "p1".into(),
                            preflight_policy: "p2".into(),
                            answer_headers: vec![AnswerHeader { name: "access-control-allow-methods".into(), value: "GET".into() }],
                            echo_origin: true,
                        })),
                        auth: Some(Box::new(ExternalAuth {
                            cluster: "auth:http:auth.example:80".into(),
                            authority: Some("auth.example".into()),
                            path: "/oauth2/auth".into(),
                            method: None,
                            signin: Some("https://auth.example/start?rd=$pass_access_scheme://$http_host$escaped_request_uri".into()),
                            response_headers: vec!["x-auth-request-user".into()],
                            request_redirect: None,
                            always_set_cookie: false,
                            set_headers: vec![],
                            timeout_ms: 60_000,
                            cache: Some(AuthCache { key: "$cookie__oauth2_proxy".into(), valid: vec![CacheValidity { statuses: vec![200, 202, 401], millis: 300_000 }], location: "/".into() }),
                        })),
                        basic_auth: Some(Box::new(BasicAuth { realm: "Staff".into(), passwords: "default/htpasswd".into(), digest: false })),
                        connection_limit: Some(Box::new(ConnectionLimit { zone: "default/ing".into(), limit: 8, exempt: vec!["10.0.0.0/8".into()], status: 429 })),
                        satisfy_any: Some(Box::new(SatisfyAny { allow: vec!["192.168.0.0/16".into()], deny: vec!["192.168.9.9".into()] })),
                        lists_first: Some(Box::new(SatisfyAny { allow: vec!["10.0.0.0/8".into()], deny: vec![] })),
                        response: Some(Box::new(ResponseRewrite {
                            redirect: Some(Replacement { from: "http://$host/app/".into(), to: "/".into() }),
                            cookie_domain: None,
                            cookie_path: Some(Replacement { from: "/app/".into(), to: "/".into() }),
                            absolute_redirects: true,
                            conditional_samesite_none: Some("INGRESSCOOKIE".into()),
                        })),
                        subset_hash: Some(Box::new(crate::subset::HashKey::Query { name: "tenant".into() })),
                        affinity_cookie: Some("INGRESSCOOKIE".into()),
                        affinity_cookie_expires: Some(172_800),
                    }),
                    origin: Origin::parse("default/ing: spec.rules[0].http.paths[0]"),
                    https_redirect: None,
                    answer_headers: Vec::new(),
                }],
                fallback: Some(RouteAction::respond(503, "no endpoints")),
                fallback_https_redirect: None,
                implicit_root: None,
                app_root: None,
                client_certificate: None,
            }],
            default_backend: Some(RouteAction::forward_to("default/fallback/80")),
            default_backend_is_catch_all: true,
            passwords: [("default/htpasswd".to_string(), [("alice".to_string(), "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=".to_string())].into())].into(),
            error_page_clusters: vec!["default/errors/80".into()],
            error_page_token: "0123456789abcdef".into(),
            trust_forwarded_headers: true,
            proxy_protocol: true,
            answer_headers: vec![AnswerHeader { name: "x-frame-options".into(), value: "DENY".into() }],
            default_server_denied: vec!["203.0.113.0/24".into(), "2001:db8::1".into()],
            log_route: true,
            default_server_logged: true,
        };
        let json = table.to_json();
        assert!(json.contains(r#""path":{"type":"Regex","value":"(?i)/something(/|$)(.*)"}"#), "{json}");
        assert!(json.contains(r#""action":{"kind":"Forward","backends":[{"cluster":"default/svc/80","weight":1}]"#), "{json}");
        assert!(json.contains(r#""policy":"timeout-60s""#), "{json}");
        assert!(json.contains(r#""connection_limit":{"zone":"default/ing","limit":8,"exempt":["10.0.0.0/8"],"status":429}"#), "{json}");
        let default_status: Option<ConnectionLimit> = serde_json::from_str(r#"{"zone":"z","limit":1}"#).ok();
        assert_eq!(default_status.as_ref().map(|limit| limit.status), Some(503), "ingress-nginx's limit-conn-status-code default");
        let written = default_status.and_then(|limit| serde_json::to_string(&limit).ok());
        assert_eq!(written.as_deref(), Some(r#"{"zone":"z","limit":1}"#));
        assert!(json.contains(r#""subset_hash":{"from":"query","name":"tenant"}"#), "{json}");
        assert!(json.contains(r#""legacy_affinity":true"#) && json.contains(r#""affinity_cookie":"INGRESSCOOKIE""#), "{json}");
        assert_eq!(RouteTable::from_json(json.as_bytes()).ok(), Some(table));
    }

    #[test]
    fn redirects_have_a_stable_json_shape() {
        let ssl = Redirect {
            status: 308,
            location: Location::FromRequest {
                scheme: Some("https".into()),
                host: HostPart::RequestHost,
                path: PathPart::RequestUri { trim_trailing_slash: true },
            },
            cors: None,
        };
        let app_root = Redirect {
            status: 302,
            location: Location::FromRequest {
                scheme: None,
                host: HostPart::RequestAuthority,
                path: PathPart::Fixed("/foo".into()),
            },
            cors: None,
        };
        let www = Redirect {
            status: 308,
            location: Location::FromRequest {
                scheme: None,
                host: HostPart::WithListenerPort("example.com".into()),
                path: PathPart::default(),
            },
            cors: None,
        };
        let rows = [
            (
                RouteAction::Redirect(Redirect { status: 301, location: Location::Url { url: "http://r.example.com".into() }, cors: None }),
                r#"{"kind":"Redirect","status":301,"location":{"kind":"Url","url":"http://r.example.com"}}"#,
            ),
            (
                RouteAction::Redirect(ssl),
                r#"{"kind":"Redirect","status":308,"location":{"kind":"FromRequest","scheme":"https","host":{"type":"RequestHost"},"path":{"type":"RequestUri","value":{"trim_trailing_slash":true}}}}"#,
            ),
            (
                RouteAction::Redirect(app_root),
                r#"{"kind":"Redirect","status":302,"location":{"kind":"FromRequest","host":{"type":"RequestAuthority"},"path":{"type":"Fixed","value":"/foo"}}}"#,
            ),
            (
                RouteAction::Redirect(www),
                r#"{"kind":"Redirect","status":308,"location":{"kind":"FromRequest","host":{"type":"WithListenerPort","value":"example.com"},"path":{"type":"RequestUri","value":{"trim_trailing_slash":false}}}}"#,
            ),
        ];
        for (action, expected) in rows {
            assert_eq!(serde_json::to_string(&action).ok().as_deref(), Some(expected));
            assert_eq!(serde_json::from_str::<RouteAction>(expected).ok(), Some(action));
        }
        // Omitted host and path take their defaults: the request's host, the request URI as sent.
        let minimal = r#"{"kind":"Redirect","status":308,"location":{"kind":"FromRequest"}}"#;
        let parsed = serde_json::from_str::<RouteAction>(minimal).ok();
        let expected = Location::FromRequest { scheme: None, host: HostPart::RequestHost, path: PathPart::default() };
        assert_eq!(parsed, Some(RouteAction::Redirect(Redirect { status: 308, location: expected, cors: None })));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let json = br#"{"schema":1,"hosts":[],"surprise":true}"#;
        assert!(RouteTable::from_json(json).is_err());
        let json = br#"{"schema":1,"hosts":[{"host":"a","routes":[],"mirror":"x"}]}"#;
        assert!(RouteTable::from_json(json).is_err());
    }

    #[test]
    fn weight_defaults_to_one() {
        let json = br#"{"schema":1,"hosts":[{"host":"a","routes":[{"path":{"type":"Prefix","value":"/"},"action":{"kind":"Forward","backends":[{"cluster":"c"}]}}]}]}"#;
        let table = RouteTable::from_json(json).ok();
        let weight = table.and_then(|t| match &t.hosts[0].routes[0].action {
            RouteAction::Forward(f) => Some(f.backends[0].weight),
            RouteAction::Respond(_) | RouteAction::Redirect(_) => None,
        });
        assert_eq!(weight, Some(1));
    }
}
