//! The routing decision as plain values: what to do with a request ([`Outcome`]), which part of the
//! table decided ([`Via`]), and the fixed bodies of the filter's own answers. Shared by `matcher`
//! (which decides) and `actions` / `redirect` (which build outcomes), so none imports another's
//! internals. Data only.

use crate::table::{Cors, Forward, Route};

/// nginx's error page for a status line (`ngx_http_special_response.c`, with ingress-nginx's
/// `server_tokens off`): what ingress-nginx's own answers carry, as `text/html` (its
/// `default_type`). An optional second line is the page's heading when it differs from the title,
/// and a third a line under it (nginx's 400 pages for TLS errors).
macro_rules! nginx_page {
    ($title:literal) => {
        $crate::decision::nginx_page!($title, $title)
    };
    ($title:literal, $heading:literal) => {
        concat!("<html>\r\n<head><title>", $title, "</title></head>\r\n<body>\r\n<center><h1>", $heading, "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    };
    ($title:literal, $heading:literal, $detail:literal) => {
        concat!("<html>\r\n<head><title>", $title, "</title></head>\r\n<body>\r\n<center><h1>", $heading, "</h1></center>\r\n<center>", $detail, "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    };
}
pub(crate) use nginx_page;

/// The `Content-Type` of the filter's own answers: ingress-nginx's `default_type`.
pub const ANSWER_CONTENT_TYPE: &str = "text/html";

/// The body of the filter's own 404 (no host/path matched and no default backend): nginx's page,
/// as ingress-nginx's own default server answers. Fixed text: the request's host and path are
/// deliberately not echoed back.
pub const NOT_FOUND_BODY: &str = nginx_page!("404 Not Found");

/// nginx's 403 page: a refused client (a `satisfy: any` route's address lists, an auth service's
/// 403, an Ingress served closed).
pub const FORBIDDEN_BODY: &str = nginx_page!("403 Forbidden");

/// nginx's 401 page: basic auth's refusal, an auth service's 401 without a sign-in page.
pub const UNAUTHORIZED_BODY: &str = nginx_page!("401 Authorization Required");

/// nginx's 500 page: an auth service that cannot be asked or answers otherwise.
pub const INTERNAL_ERROR_BODY: &str = nginx_page!("500 Internal Server Error");

/// nginx's 503 page, whose title ingress-nginx's e2e tests look for: a backend that does not
/// resolve, a connection limit reached, an Ingress whose access control cannot be honoured.
pub const UNAVAILABLE_BODY: &str = nginx_page!("503 Service Temporarily Unavailable");

/// nginx's page for `status`, for the answers whose status the operator chooses
/// (`limit-conn-status-code`), the filter's redirects and Envoy's own answers: the page nginx
/// writes, or nothing for a status nginx has no page for.
pub const fn status_body(status: u16) -> &'static str {
    match status {
        301 => nginx_page!("301 Moved Permanently"),
        302 => nginx_page!("302 Found"),
        303 => nginx_page!("303 See Other"),
        307 => nginx_page!("307 Temporary Redirect"),
        308 => nginx_page!("308 Permanent Redirect"),
        400 => nginx_page!("400 Bad Request"),
        401 => UNAUTHORIZED_BODY,
        403 => FORBIDDEN_BODY,
        404 => NOT_FOUND_BODY,
        405 => NOT_ALLOWED_BODY,
        408 => nginx_page!("408 Request Time-out"),
        409 => nginx_page!("409 Conflict"),
        410 => nginx_page!("410 Gone"),
        413 => nginx_page!("413 Request Entity Too Large"),
        414 => URI_TOO_LONG_BODY,
        429 => nginx_page!("429 Too Many Requests"),
        500 => INTERNAL_ERROR_BODY,
        501 => nginx_page!("501 Not Implemented"),
        502 => nginx_page!("502 Bad Gateway"),
        503 => UNAVAILABLE_BODY,
        504 => nginx_page!("504 Gateway Time-out"),
        _ => "",
    }
}

/// nginx's page for its error 497, a plain HTTP request on an HTTPS port: 400 (the control plane's
/// HTTPS listener answers it; the filter never sees such a request).
pub const PLAIN_HTTP_TO_HTTPS_BODY: &str =
    nginx_page!("400 The plain HTTP request was sent to HTTPS port", "400 Bad Request", "The plain HTTP request was sent to HTTPS port");

/// nginx's 405 page: a `TRACE` request, which nginx refuses on every server.
pub const NOT_ALLOWED_BODY: &str = nginx_page!("405 Not Allowed");

/// nginx's 414 page: the request path, or the path a rewrite would produce, too long.
pub const URI_TOO_LONG_BODY: &str = nginx_page!("414 Request-URI Too Large");

/// Which part of the table produced the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A route of the selected virtual host.
    Route,
    /// The selected virtual host's `fallback`.
    HostFallback,
    /// The selected virtual host's `fallback_https_redirect`: no route matched a plain-HTTP request.
    HostHttpsRedirect,
    /// The table's `default_backend`.
    DefaultBackend,
    /// The selected virtual host's `implicit_root`: no route of it matched, no catch-all Ingress.
    ImplicitRoot,
    /// Nothing matched and there is no default backend: 404.
    NotFound,
    /// The request path is longer than [`crate::limits::MAX_REQUEST_PATH_BYTES`]: 414, not matched.
    TooLong,
    /// The selected virtual host's `app_root` (the request path is exactly `/`); no route was looked at.
    AppRoot,
    /// A location of ingress-nginx's default server (`_`, the requests no Ingress host takes):
    /// `/healthz` (200) or `/nginx_status` (403); see `matcher::decide`.
    DefaultServer,
}

/// What to do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<'t> {
    /// Proxy to `cluster` (one of `forward.backends`), with `:path` replaced by `path` when `Some`
    /// and everything else as `forward` says: `:authority` by its `host_rewrite`, its `policy` in
    /// [`crate::table::POLICY_HEADER`] unless empty. With a `canary`, the host shim asks
    /// [`crate::matcher::CompiledTable::chooses_canary`] whether `canary.cluster` replaces `cluster`.
    /// With `cors`, [`crate::matcher::CompiledTable::cors_policy`] may replace `policy`. With
    /// `auth`, the request is forwarded only if the auth service allows it (see [`crate::auth`]); with
    /// `basic_auth`, only with a password [`crate::matcher::CompiledTable::basic_auth_allows`]; with
    /// `connection_limit`, only while the client has fewer requests in progress (see
    /// [`crate::connections`]); with `satisfy_any`, when any one of the address lists, basic auth
    /// and the auth service lets it in (see [`crate::satisfy`]); with `lists_first`, a client those
    /// lists refuse gets 403 before any credential is checked. With `subset_hash`, the host shim sends the key's slot (see
    /// [`crate::subset`]); with `affinity_cookie`, it marks and reads the sticky cookie (see
    /// [`crate::affinity`]).
    Forward { cluster: &'t str, path: Option<String>, forward: &'t Forward },
    /// Answer from the filter. With `cors`, an allowed preflight gets the CORS rule's preflight
    /// policy instead (see [`crate::table::Respond::cors`]).
    Respond { status: u16, body: &'t str, cors: Option<&'t Cors> },
    /// Answer from the filter with `status` (300..=308), this `Location` and no body. The location
    /// has no control characters or spaces and is at most [`crate::limits::MAX_LOCATION_BYTES`] long.
    /// With `cors`, an allowed preflight gets the CORS rule's preflight policy instead (see
    /// [`crate::table::Redirect::cors`]).
    Redirect { status: u16, location: String, cors: Option<&'t Cors> },
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


#[cfg(test)]
mod tests {
    use super::*;

    /// nginx's page as its source writes it (`ngx_http_error_404_page` + `ngx_http_error_tail`).
    const NGINX_404: &str = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

    #[test]
    fn status_bodies_are_nginx_pages() {
        assert_eq!(NOT_FOUND_BODY, NGINX_404);
        let page = |line: &str| NGINX_404.replace("404 Not Found", line);
        let table = [
            (503, page("503 Service Temporarily Unavailable")),
            (429, page("429 Too Many Requests")),
            (403, page("403 Forbidden")),
            (504, page("504 Gateway Time-out")),
            (414, page("414 Request-URI Too Large")),
            (308, page("308 Permanent Redirect")),
            (418, String::new()),
            (599, String::new()),
        ];
        for (status, body) in table {
            assert_eq!(status_body(status), body, "{status}");
        }
        let no_certificate = crate::client_cert::NO_CERTIFICATE_BODY;
        assert!(no_certificate.starts_with("<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n<center>No required SSL certificate was sent</center>\r\n<hr>"), "{no_certificate}");
    }
}
