//! ingress-nginx's external authentication (`auth-url`), as pure functions the host shim calls
//! around one `dispatch_http_call`: [`request_headers`] builds the auth request as ingress-nginx's
//! `auth_request` location does, [`verdict`] reads the auth response into what happens to the
//! client's request, [`expand`] fills the nginx variables of a sign-in URL, and
//! [`sets_cookie`] says when the auth response's `Set-Cookie` reaches the client.
//!
//! Why the filter and not Envoy's `ext_authz`: ext_authz lets a request through only on a 200
//! (oauth2-proxy answers 202) and cannot turn a 401 into the sign-in redirect, which is the whole
//! oauth2-proxy pattern. The filter only decides; Envoy's async HTTP client makes the call
//! (see `docs/research/ingress-nginx-auth.md`).

use crate::limits::{MAX_LOCATION_BYTES, MAX_REQUEST_PATH_BYTES};
use crate::hostname::host_of;
use crate::table::ExternalAuth;

/// The request being authenticated, as the client sent it (before any rewrite).
#[derive(Debug, Clone, Copy, Default)]
pub struct Original<'a> {
    /// `:method`.
    pub method: &'a [u8],
    /// `:authority` (or Host), with any port: nginx's `$http_host`.
    pub authority: &'a [u8],
    /// `:path` with query: nginx's `$request_uri`.
    pub uri: &'a [u8],
    /// The client connected over HTTPS (as the edge saw it: Envoy's `X-Forwarded-Proto`, a
    /// trusted load balancer's, or a PROXY protocol connection to port 443): nginx's
    /// `$pass_access_scheme`, and here `$scheme` too.
    pub https: bool,
    /// A trusted load balancer's `X-Forwarded-Host` (empty when there is none, or it is not
    /// trusted): `$best_http_host` is its first entry (see [`crate::request::best_host`]).
    pub forwarded_host: &'a [u8],
    /// The client's address without port: nginx's `$remote_addr`.
    pub client_address: &'a str,
}

impl Original<'_> {
    /// nginx's `$best_http_host`: the trusted `X-Forwarded-Host`, else `$http_host`.
    pub fn best_http_host(&self) -> &[u8] {
        crate::request::best_host(self.authority, Some(self.forwarded_host).filter(|host| !host.is_empty()))
    }
}

/// Client headers never copied to the auth request: pseudo-headers and `host` (the auth request
/// has its own), what ingress-nginx clears (`Content-Length`, `X-Forwarded-Proto`) or the
/// bodiless auth request cannot carry, and the hop-by-hop `Connection` / `Upgrade` (nginx's proxy
/// never passes them on: a WebSocket request's auth request is a plain GET).
const NOT_COPIED: &[&str] = &["host", "content-length", "transfer-encoding", "x-forwarded-proto", "expect", "connection", "upgrade"];

/// How many auth requests deep an auth request is: the filter sets it on each auth request it
/// sends, one more than the request being authenticated carries (none: 0). An `auth-url` that
/// leads back through the proxy to a path with an `auth-url` (a loop through `$host`, say) thus
/// ends after [`MAX_AUTH_DEPTH`] requests, where nginx, which has no such guard, nests auth
/// subrequests until the auth cluster's connections or the timeouts run out, and every other
/// request on that cluster waits. A client's own copy gains it nothing: a higher number only
/// refuses its own request sooner.
pub const AUTH_DEPTH_HEADER: &str = "x-wasm-ingress-auth-depth";

/// The deepest auth request the filter still sends: an auth service reached through the proxy may
/// itself sit behind `auth-url`, a few levels deep, but not more.
pub const MAX_AUTH_DEPTH: u8 = 4;

/// The auth depth a request carries in [`AUTH_DEPTH_HEADER`] (0 without one, or an unreadable one).
pub fn depth_of(value: Option<&[u8]>) -> u8 {
    value.and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Headers the auth request sets itself (a client copy is dropped).
const SET_BY_AUTH: &[&str] = &[
    AUTH_DEPTH_HEADER,
    "x-original-url",
    "x-original-method",
    "x-sent-from",
    "x-real-ip",
    "x-forwarded-for",
    "x-auth-request-redirect",
    "x-original-uri",
    "x-scheme",
];

/// The auth request's headers, pseudo-headers first: the client's headers (those that are UTF-8;
/// the host call takes strings) and ingress-nginx's `X-Original-URL`, `X-Original-Method`,
/// `X-Sent-From`, `X-Real-IP`, `X-Forwarded-For`, `X-Auth-Request-Redirect` (plus `X-Original-URI`
/// and `X-Scheme` when `auth-method` is set), then the `auth-proxy-set-headers` ones, which
/// replace any header of the same name.
pub fn request_headers(auth: &ExternalAuth, original: &Original<'_>, client: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
    let authority = match &auth.authority {
        Some(authority) => authority.clone(),
        None => String::from_utf8_lossy(host_of(original.authority)).into_owned(),
    };
    let method = auth.method.clone().unwrap_or_else(|| "GET".to_string());
    let mut headers = vec![(":method".to_string(), method), (":path".to_string(), auth.path.clone()), (":authority".to_string(), authority)];
    for (name, value) in client {
        let name = name.to_ascii_lowercase();
        if name.starts_with(':') || NOT_COPIED.contains(&name.as_str()) || SET_BY_AUTH.contains(&name.as_str()) {
            continue;
        }
        if let Ok(value) = std::str::from_utf8(value) {
            headers.push((name, value.to_string()));
        }
    }
    let scheme = scheme(original.https);
    let uri = visible(original.uri);
    let own = [
        ("x-original-url", format!("{scheme}://{}{uri}", visible(original.authority))),
        ("x-original-method", visible(original.method)),
        ("x-sent-from", "nginx-ingress-controller".to_string()),
        ("x-real-ip", original.client_address.to_string()),
        ("x-forwarded-for", original.client_address.to_string()),
        ("x-auth-request-redirect", auth.request_redirect.clone().unwrap_or_else(|| uri.clone())),
    ];
    headers.extend(own.into_iter().map(|(n, v)| (n.to_string(), v)));
    if auth.method.is_some() {
        headers.push(("x-original-uri".to_string(), uri));
        headers.push(("x-scheme".to_string(), scheme.to_string()));
    }
    for header in &auth.set_headers {
        // Set or, when the value comes out empty (or too long), not sent at all: the client's copy
        // never stands in for it (nginx's empty `proxy_set_header` passes nothing either).
        headers.retain(|(name, _)| *name != header.name);
        if let Some(value) = expand(&header.value, original).filter(|v| !v.is_empty()) {
            headers.push((header.name.clone(), value));
        }
    }
    headers
}

/// What happens to the client's request once the auth service has answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: forward it, after setting (`Some`) or removing (`None`) these request headers; the
    /// cookies are for the client's response (see [`sets_cookie`]).
    Allow { set: Vec<(String, Option<Vec<u8>>)>, cookies: Vec<Vec<u8>> },
    /// Answer the client with this status, these headers and this body instead.
    Respond { status: u16, headers: Vec<(String, Vec<u8>)>, body: &'static str },
}

pub use crate::decision::FORBIDDEN_BODY;
use crate::decision::{status_body, INTERNAL_ERROR_BODY, UNAUTHORIZED_BODY};

/// The verdict for an auth response with `status` (`None`: no response — the service could not
/// be reached or did not answer in time) and `headers`: ingress-nginx's `auth_request` rules.
pub fn verdict(auth: &ExternalAuth, original: &Original<'_>, status: Option<u16>, headers: &[(String, Vec<u8>)]) -> Verdict {
    let cookies: Vec<Vec<u8>> = values(headers, "set-cookie").map(<[u8]>::to_vec).collect();
    let denied_cookies = || if auth.always_set_cookie { cookie_headers(&cookies) } else { Vec::new() };
    match status {
        Some(200..=299) => {
            let set = auth.response_headers.iter().map(|name| (name.clone(), joined(headers, name))).collect();
            Verdict::Allow { set, cookies }
        }
        Some(401) => match auth.signin.as_deref().and_then(|template| expand(template, original)) {
            Some(location) => {
                let mut headers = vec![("location".to_string(), location.into_bytes())];
                headers.extend(cookie_headers(&cookies));
                Verdict::Respond { status: 302, headers, body: status_body(302) }
            }
            None => {
                let mut headers: Vec<(String, Vec<u8>)> =
                    values(headers, "www-authenticate").map(|v| ("www-authenticate".to_string(), v.to_vec())).collect();
                headers.extend(denied_cookies());
                Verdict::Respond { status: 401, headers, body: UNAUTHORIZED_BODY }
            }
        },
        Some(403) => Verdict::Respond { status: 403, headers: denied_cookies(), body: FORBIDDEN_BODY },
        _ => Verdict::Respond { status: 500, headers: denied_cookies(), body: INTERNAL_ERROR_BODY },
    }
}

/// Whether the auth response's cookie goes on a response with `status`: always with
/// `auth-always-set-cookie`, otherwise on the statuses nginx's `add_header` (without `always`)
/// decorates.
pub fn sets_cookie(always: bool, status: u16) -> bool {
    always || matches!(status, 200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308)
}

/// The values of header `name` (lower case) in `headers`.
fn values<'h>(headers: &'h [(String, Vec<u8>)], name: &'h str) -> impl Iterator<Item = &'h [u8]> {
    headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
}

/// Every value of `name` joined with `, ` (nginx's `$upstream_http_<name>`); `None` when absent.
fn joined(headers: &[(String, Vec<u8>)], name: &str) -> Option<Vec<u8>> {
    let mut found = values(headers, name);
    let mut value = found.next()?.to_vec();
    for more in found {
        value.extend_from_slice(b", ");
        value.extend_from_slice(more);
    }
    Some(value)
}

fn cookie_headers(cookies: &[Vec<u8>]) -> Vec<(String, Vec<u8>)> {
    cookies.iter().map(|c| ("set-cookie".to_string(), c.clone())).collect()
}

fn scheme(https: bool) -> &'static str {
    if https {
        "https"
    } else {
        "http"
    }
}

/// The nginx variables a sign-in URL may use.
pub const SIGNIN_VARIABLES: &[&str] =
    &["scheme", "pass_access_scheme", "host", "http_host", "best_http_host", "request_uri", "escaped_request_uri"];

/// The nginx variables an `auth-proxy-set-headers` value may use: the sign-in URL's and
/// `$remote_addr`.
pub const HEADER_VARIABLES: &[&str] =
    &["scheme", "pass_access_scheme", "host", "http_host", "best_http_host", "request_uri", "escaped_request_uri", "remote_addr"];

/// An `auth-proxy-set-headers` value: at most [`MAX_LOCATION_BYTES`], visible ASCII, spaces and
/// tabs, and only [`HEADER_VARIABLES`] (`Err` names the first other one).
pub fn check_header_template(template: &str) -> Result<(), String> {
    if template.len() > MAX_LOCATION_BYTES {
        return Err(format!("is longer than {MAX_LOCATION_BYTES} bytes"));
    }
    if let Some(bad) = template.bytes().find(|b| !((0x20..=0x7e).contains(b) || *b == b'\t')) {
        return Err(format!("contains the byte 0x{bad:02x} (control characters cannot be in a header value)"));
    }
    match variables(template).find(|name| !HEADER_VARIABLES.contains(name)) {
        Some(name) => Err(format!("uses the nginx variable ${name}, which is not supported (only ${})", HEADER_VARIABLES.join(", $"))),
        None => Ok(()),
    }
}

/// Every `$name` in `template` is one of [`SIGNIN_VARIABLES`] (`Err` names the first that is not),
/// and the template fits a `Location`.
pub fn check_template(template: &str) -> Result<(), String> {
    if template.len() > MAX_LOCATION_BYTES {
        return Err(format!("is longer than {MAX_LOCATION_BYTES} bytes"));
    }
    if let Some(bad) = template.bytes().find(|b| !(0x21..=0x7e).contains(b)) {
        return Err(format!("contains the byte 0x{bad:02x} (spaces and control characters cannot be in a URL)"));
    }
    for name in variables(template) {
        if !SIGNIN_VARIABLES.contains(&name) {
            return Err(format!("uses the nginx variable ${name}, which is not supported (only ${})", SIGNIN_VARIABLES.join(", $")));
        }
    }
    Ok(())
}

/// The variable names in `template` (`$` then the longest run of `[A-Za-z0-9_]`, as nginx reads).
fn variables(template: &str) -> impl Iterator<Item = &str> {
    template.split('$').skip(1).map(|rest| {
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        &rest[..end]
    })
}

/// `template` with its variables filled from `original`; `None` when the result would be longer
/// than [`MAX_LOCATION_BYTES`] (or a variable is unknown, which `check_template` refuses).
pub fn expand(template: &str, original: &Original<'_>) -> Option<String> {
    if original.uri.len() > MAX_REQUEST_PATH_BYTES {
        return None;
    }
    let mut pieces = template.split('$');
    let mut out = pieces.next().unwrap_or_default().to_string();
    for rest in pieces {
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let (name, tail) = rest.split_at(end);
        match name {
            "scheme" | "pass_access_scheme" => out.push_str(scheme(original.https)),
            "host" => out.push_str(&visible(host_of(original.authority)).to_ascii_lowercase()),
            "http_host" => out.push_str(&visible(original.authority)),
            "best_http_host" => out.push_str(&visible(original.best_http_host())),
            "request_uri" => out.push_str(&visible(original.uri)),
            "escaped_request_uri" => out.push_str(&escape_uri_component(original.uri)),
            "remote_addr" => out.push_str(original.client_address),
            _ => return None,
        }
        out.push_str(tail);
        if out.len() > MAX_LOCATION_BYTES {
            return None;
        }
    }
    Some(out)
}

/// `bytes` with everything but visible ASCII percent-encoded, so it is safe in a header value.
fn visible(bytes: &[u8]) -> String {
    percent_encode(bytes, |b| (0x21..=0x7e).contains(&b))
}

/// set-misc's `set_escape_uri`: everything but `[A-Za-z0-9-._~]` percent-encoded.
fn escape_uri_component(bytes: &[u8]) -> String {
    percent_encode(bytes, |b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn percent_encode(bytes: &[u8], keeps: impl Fn(u8) -> bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if keeps(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::table::AuthHeader;

    fn auth() -> ExternalAuth {
        ExternalAuth {
            cluster: "auth".into(),
            authority: Some("auth.example".into()),
            path: "/oauth2/auth?x=1".into(),
            method: None,
            signin: Some("http://auth.example/start?rd=$pass_access_scheme://$http_host$escaped_request_uri".into()),
            response_headers: vec!["x-user".into(), "foo".into()],
            request_redirect: None,
            always_set_cookie: false,
            set_headers: vec![],
            timeout_ms: 1000,
            cache: None,
        }
    }

    fn original() -> Original<'static> {
        Original { method: b"POST", authority: b"Shop.Example:8080", uri: b"/?a=b&c=d", https: false, forwarded_host: b"", client_address: "10.0.0.7" }
    }

    fn header<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
        headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }

    fn bytes(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect()
    }

    #[test]
    fn the_auth_request_is_ingress_nginxs_subrequest() {
        let client = bytes(&[
            (":method", "POST"),
            (":path", "/?a=b&c=d"),
            (":authority", "Shop.Example:8080"),
            ("cookie", "_oauth2_proxy=abc"),
            ("authorization", "Bearer t"),
            ("content-length", "5"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-original-url", "http://evil/"),
            (AUTH_DEPTH_HEADER, "0"),
        ]);
        let headers = request_headers(&auth(), &original(), &client);
        let rows: [(&str, &[&str]); 15] = [
            (AUTH_DEPTH_HEADER, &[]),
            (":method", &["GET"]),
            (":path", &["/oauth2/auth?x=1"]),
            (":authority", &["auth.example"]),
            ("cookie", &["_oauth2_proxy=abc"]),
            ("authorization", &["Bearer t"]),
            ("content-length", &[]),
            ("x-forwarded-proto", &[]),
            ("x-forwarded-for", &["10.0.0.7"]),
            ("x-real-ip", &["10.0.0.7"]),
            ("x-original-url", &["http://Shop.Example:8080/?a=b&c=d"]),
            ("x-original-method", &["POST"]),
            ("x-sent-from", &["nginx-ingress-controller"]),
            ("x-auth-request-redirect", &["/?a=b&c=d"]),
            ("x-original-uri", &[]),
        ];
        for (name, want) in rows {
            assert_eq!(header(&headers, name), want, "{name}");
        }
    }

    #[test]
    fn the_auth_depth_is_read_leniently() {
        for (value, depth) in [(None, 0), (Some(&b"2"[..]), 2), (Some(b" 3 "), 3), (Some(b"x"), 0), (Some(b"-1"), 0), (Some(b"300"), 0), (Some(b"\xff"), 0)] {
            assert_eq!(depth_of(value), depth, "{value:?}");
        }
    }

    #[test]
    fn auth_method_adds_the_original_uri_and_scheme_and_host_less_auth_uses_the_requests_host() {
        let auth = ExternalAuth { method: Some("POST".into()), authority: None, request_redirect: Some("/back".into()), ..auth() };
        let headers = request_headers(&auth, &Original { https: true, ..original() }, &[]);
        assert_eq!(header(&headers, ":method"), ["POST"]);
        assert_eq!(header(&headers, ":authority"), ["Shop.Example"]);
        assert_eq!(header(&headers, "x-original-uri"), ["/?a=b&c=d"]);
        assert_eq!(header(&headers, "x-scheme"), ["https"]);
        assert_eq!(header(&headers, "x-auth-request-redirect"), ["/back"]);
    }

    #[test]
    fn configmap_headers_are_set_with_their_variables_and_replace_others() {
        let set = |name: &str, value: &str| AuthHeader { name: name.into(), value: value.into() };
        let auth = ExternalAuth {
            set_headers: vec![
                set("my-custom-header", "42"),
                set("x-client", "$remote_addr via $scheme://$host"),
                set("x-forwarded-for", "$remote_addr, 10.9.9.9"),
                set("cookie", "fixed=1"),
                set("x-empty", "$request_uri"),
            ],
            ..auth()
        };
        let client = bytes(&[("cookie", "_oauth2_proxy=abc"), ("my-custom-header", "forged"), ("x-empty", "forged")]);
        let headers = request_headers(&auth, &Original { uri: b"", ..original() }, &client);
        let rows: [(&str, &[&str]); 5] = [
            ("my-custom-header", &["42"]),
            ("x-client", &["10.0.0.7 via http://shop.example"]),
            ("x-forwarded-for", &["10.0.0.7, 10.9.9.9"]),
            ("cookie", &["fixed=1"]),
            ("x-empty", &[]),
        ];
        for (name, want) in rows {
            assert_eq!(header(&headers, name), want, "{name}");
        }
        assert!(check_header_template("Bearer $remote_addr\tx").is_ok());
        assert!(check_header_template("$http_authorization").unwrap_err().contains("$http_authorization"));
        assert!(check_header_template("a\r\nb").is_err());
        assert!(check_template("https://a/?x=$remote_addr").is_err(), "not a sign-in variable");
    }

    #[test]
    fn verdicts_follow_auth_request() {
        let response = bytes(&[("x-user", "alice"), ("set-cookie", "s=1"), ("www-authenticate", "Basic realm=x")]);
        let allow = verdict(&auth(), &original(), Some(202), &response);
        assert_eq!(
            allow,
            Verdict::Allow {
                set: vec![("x-user".into(), Some(b"alice".to_vec())), ("foo".into(), None)],
                cookies: vec![b"s=1".to_vec()]
            }
        );
        let Verdict::Respond { status: 302, headers, body } = verdict(&auth(), &original(), Some(401), &response) else { panic!() };
        assert!(body.contains("<title>302 Found</title>"), "nginx sends its page with the redirect: {body}");
        assert_eq!(headers, bytes(&[("location", "http://auth.example/start?rd=http://Shop.Example:8080%2F%3Fa%3Db%26c%3Dd"), ("set-cookie", "s=1")]));
        let no_signin = ExternalAuth { signin: None, ..auth() };
        let Verdict::Respond { status: 401, headers, .. } = verdict(&no_signin, &original(), Some(401), &response) else { panic!() };
        assert_eq!(headers, bytes(&[("www-authenticate", "Basic realm=x")]));
        for (status, want) in [(Some(403), 403), (Some(404), 500), (Some(302), 500), (Some(503), 500), (None, 500)] {
            let Verdict::Respond { status: got, headers, .. } = verdict(&auth(), &original(), status, &response) else { panic!() };
            assert_eq!((got, headers.len()), (want, 0), "{status:?}");
        }
        let always = ExternalAuth { always_set_cookie: true, ..auth() };
        let Verdict::Respond { headers, .. } = verdict(&always, &original(), Some(403), &response) else { panic!() };
        assert_eq!(headers, bytes(&[("set-cookie", "s=1")]));
    }

    #[test]
    fn repeated_response_headers_are_joined() {
        let response = bytes(&[("X-User", "a"), ("x-user", "b")]);
        let Verdict::Allow { set, .. } = verdict(&auth(), &original(), Some(200), &response) else { panic!() };
        assert_eq!(set[0], ("x-user".to_string(), Some(b"a, b".to_vec())));
    }

    #[test]
    fn sign_in_templates_expand_nginx_variables() {
        let o = Original { uri: b"/p a?q=\xff", https: true, ..original() };
        let rows = [
            ("https://a/start?rd=$scheme://$host$request_uri", "https://a/start?rd=https://shop.example/p%20a?q=%FF"),
            ("https://a/s?rd=$escaped_request_uri&x=$best_http_host", "https://a/s?rd=%2Fp%20a%3Fq%3D%FF&x=Shop.Example:8080"),
            ("https://a/$hostname", ""),
            ("https://a/$", ""),
        ];
        for (template, want) in rows {
            assert_eq!(expand(template, &o).unwrap_or_default(), want, "{template}");
        }
        // Behind a trusted load balancer, `$best_http_host` is its first X-Forwarded-Host; `$host`
        // and `$http_host` stay the request's own.
        let behind = Original { forwarded_host: b"public.example, inner.example", ..o };
        let template = "https://a/?b=$best_http_host&h=$host&hh=$http_host";
        assert_eq!(expand(template, &behind).unwrap_or_default(), "https://a/?b=public.example&h=shop.example&hh=Shop.Example:8080");
        assert!(check_template("https://a/?rd=$scheme://$http_host$escaped_request_uri").is_ok());
        assert!(check_template("https://a/?rd=$arg_x").unwrap_err().contains("$arg_x"));
        assert!(check_template("https://a/ b").is_err());
    }

    #[test]
    fn cookies_go_on_successful_responses_unless_always() {
        assert!(sets_cookie(false, 200) && sets_cookie(false, 302) && !sets_cookie(false, 503) && !sets_cookie(false, 404));
        assert!(sets_cookie(true, 503));
    }
}
