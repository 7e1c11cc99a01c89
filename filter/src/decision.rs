//! The routing decision as plain values: what to do with a request ([`Outcome`]), which part of the
//! table decided ([`Via`]), and the fixed bodies of the filter's own answers. Shared by `matcher`
//! (which decides) and `actions` / `redirect` (which build outcomes), so none imports another's
//! internals. Data only.

use crate::table::{Forward, Route};

/// The body of the filter's own 404 (no host/path matched and no default backend): nginx's status
/// line, as the 404 page of ingress-nginx's own default server says it. Fixed text: the request's
/// host and path are deliberately not echoed back.
pub const NOT_FOUND_BODY: &str = "404 Not Found\n";

/// nginx's 403 page as plain text: a refused client (a `satisfy: any` route's address lists, an
/// auth service's 403, an Ingress served closed).
pub const FORBIDDEN_BODY: &str = "403 Forbidden\n";

/// nginx's 401 page as plain text: basic auth's refusal, an auth service's 401 without a sign-in
/// page.
pub const UNAUTHORIZED_BODY: &str = "401 Authorization Required\n";

/// nginx's 500 page as plain text: an auth service that cannot be asked or answers otherwise.
pub const INTERNAL_ERROR_BODY: &str = "500 Internal Server Error\n";

/// nginx's 503 page as plain text, which ingress-nginx's e2e tests look for: a backend that does
/// not resolve, a connection limit reached, an Ingress whose access control cannot be honoured.
pub const UNAVAILABLE_BODY: &str = "503 Service Temporarily Unavailable\n";

/// nginx's page for `status` as plain text, for the answers whose status the operator chooses
/// (`limit-conn-status-code`): its status line as nginx writes it, or nothing for a status nginx
/// has no page for.
pub fn status_body(status: u16) -> &'static str {
    match status {
        400 => "400 Bad Request\n",
        401 => UNAUTHORIZED_BODY,
        403 => FORBIDDEN_BODY,
        404 => NOT_FOUND_BODY,
        405 => NOT_ALLOWED_BODY,
        408 => "408 Request Time-out\n",
        409 => "409 Conflict\n",
        410 => "410 Gone\n",
        413 => "413 Request Entity Too Large\n",
        429 => "429 Too Many Requests\n",
        500 => INTERNAL_ERROR_BODY,
        501 => "501 Not Implemented\n",
        502 => "502 Bad Gateway\n",
        503 => UNAVAILABLE_BODY,
        504 => "504 Gateway Time-out\n",
        _ => "",
    }
}

/// nginx's 405 page as plain text: a `TRACE` request, which nginx refuses on every server.
pub const NOT_ALLOWED_BODY: &str = "405 Not Allowed\n";

/// The body of the filter's 414 (request path, or the path a rewrite would produce, too long).
pub const URI_TOO_LONG_BODY: &str = "request URI too long\n";

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
    /// Answer from the filter.
    Respond { status: u16, body: &'t str },
    /// Answer from the filter with `status` (300..=308), this `Location` and no body. The location
    /// has no control characters or spaces and is at most [`crate::limits::MAX_LOCATION_BYTES`] long.
    Redirect { status: u16, location: String },
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

    #[test]
    fn status_bodies_are_nginx_status_lines() {
        let table = [(503, UNAVAILABLE_BODY), (429, "429 Too Many Requests\n"), (403, FORBIDDEN_BODY), (504, "504 Gateway Time-out\n"), (418, ""), (599, "")];
        for (status, body) in table {
            assert_eq!(status_body(status), body, "{status}");
        }
    }
}
