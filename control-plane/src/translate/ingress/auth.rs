//! ingress-nginx external authentication (`auth-url` and its companions), read as its `authreq`
//! parser reads them. The filter makes the auth request and applies the verdict
//! (`wasm_ingress_filter::auth`); this module only turns annotations into the route table's
//! [`ExternalAuth`] and the [`AuthService`] cluster it calls. Pure.
//!
//! Fails closed like ingress-nginx's "location denied" (503): an auth-url that is not an absolute
//! `http(s)://` URL, an `auth-method` outside its list, an `auth-response-headers` entry that is
//! not a header name. Refused here and served closed with 403 (what we cannot honour exactly):
//! nginx variables in the auth-url other than a `$host` host, a sign-in URL with variables we do
//! not fill, an `auth-proxy-set-headers` value ingress-nginx's validation refuses (it would ask
//! the auth service without those headers), and an `auth-cache-duration` its parser refuses when
//! a cache key is set (503 as ingress-nginx where it denies the location; 403 for characters its
//! validation refuses, where it would drop the auth and serve open). The `auth-proxy-set-headers`
//! ConfigMap itself is read by translation (`header_maps`). The cache (`auth-cache-key`,
//! `auth-cache-duration`) is the filter's (`wasm_ingress_filter::auth_cache`); a key
//! ingress-nginx's validation refuses, or with variables the filter does not fill, turns it
//! off with a warning (every request is then asked about, as ingress-nginx without a key). Not
//! applied, with a warning: the keepalive knobs (Envoy pools connections to the auth service).

use std::collections::BTreeMap;
use std::time::Duration;

use wasm_ingress_filter::auth::check_template;
use wasm_ingress_filter::table::{AuthCache, AuthHeader, CacheValidity, ExternalAuth};

use crate::model::{AuthService, AuthTarget, Severity};

use super::annotations::AnnotationNote;
use super::behaviour::{GlobalAuthFlags, Reader};
use super::header_maps::{is_header_name, parse_reference, MapRef};

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &[
    "auth-always-set-cookie",
    "auth-cache-duration",
    "auth-cache-key",
    "auth-keepalive",
    "auth-keepalive-requests",
    "auth-keepalive-share-vars",
    "auth-keepalive-timeout",
    "auth-method",
    "auth-proxy-set-headers",
    "auth-request-redirect",
    "auth-response-headers",
    "auth-signin",
    "auth-signin-redirect-param",
    "auth-url",
];

/// ingress-nginx's `auth-method` list.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"];

/// What the auth annotations of one Ingress ask for (`auth-url` set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub service: AuthService,
    /// The auth request's `:authority`; `None`: the request's host.
    pub authority: Option<String>,
    pub path: String,
    pub method: Option<String>,
    /// The sign-in URL with the redirect parameter added (ingress-nginx's `buildAuthSignURL`).
    pub signin: Option<String>,
    pub response_headers: Vec<String>,
    pub request_redirect: Option<String>,
    pub always_set_cookie: bool,
    /// `auth-cache-key` and its durations.
    pub cache: Option<AuthCache>,
    /// `auth-proxy-set-headers`: the ConfigMap named; translation reads it into `set_headers`.
    pub proxy_set_headers: Option<MapRef>,
    pub set_headers: Vec<AuthHeader>,
}

impl AuthConfig {
    /// The route table's rule, waiting at most `timeout` (the Ingress's `proxy-read-timeout`).
    pub fn rule(&self, timeout: Duration) -> ExternalAuth {
        ExternalAuth {
            cluster: self.service.cluster_name(),
            authority: self.authority.clone(),
            path: self.path.clone(),
            method: self.method.clone(),
            signin: self.signin.clone(),
            response_headers: self.response_headers.clone(),
            request_redirect: self.request_redirect.clone(),
            always_set_cookie: self.always_set_cookie,
            set_headers: self.set_headers.clone(),
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX).max(1),
            cache: self.cache.clone(),
        }
    }
}

/// The outcome of reading the auth annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No `auth-url` (or an empty one): no external auth.
    Off,
    /// External auth as configured.
    On(Box<AuthConfig>),
    /// Every path of the Ingress answers this status (fail closed) because of this annotation
    /// (full key); the notes say why.
    Denied(u16, String),
}

/// Read the auth annotations of one Ingress.
pub fn parse(annotations: &BTreeMap<String, String>) -> (Auth, Vec<AnnotationNote>) {
    parse_as(annotations, Source::Annotations)
}

/// Where the auth settings come from: an Ingress's annotations go through ingress-nginx's
/// annotation validation (its character sets); the `--global-auth-*` flags (its ConfigMap keys)
/// do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Annotations,
    GlobalFlags,
}

fn parse_as(annotations: &BTreeMap<String, String>, source: Source) -> (Auth, Vec<AnnotationNote>) {
    let mut reader = Reader::new(annotations);
    let auth = read(&mut reader, source);
    if matches!(auth, Auth::Off) {
        for name in NAMES.iter().filter(|n| **n != "auth-url") {
            if reader.get(name).is_some() {
                reader.note(name, Severity::Warning, "has no effect without auth-url (as in ingress-nginx); ignored".into());
            }
        }
    } else {
        for name in ["auth-keepalive", "auth-keepalive-requests", "auth-keepalive-share-vars", "auth-keepalive-timeout"] {
            if reader.get(name).is_some() {
                reader.note(name, Severity::Warning, "Envoy keeps connections to the auth service open on its own; accepted, no effect".into());
            }
        }
    }
    (auth, reader.notes)
}

fn read(reader: &mut Reader<'_>, source: Source) -> Auth {
    let Some(url) = reader.get("auth-url").map(str::trim).filter(|u| !u.is_empty()) else {
        return Auth::Off;
    };
    let target = match parse_url(url) {
        Ok(target) => target,
        Err(Refusal { status, reason }) => return deny(reader, "auth-url", status, &reason),
    };
    let method = reader.get("auth-method").map(str::trim).filter(|m| !m.is_empty());
    if let Some(method) = method.filter(|m| !METHODS.contains(m)) {
        return deny(reader, "auth-method", 503, &format!("{method:?} is not one of {}", METHODS.join(", ")));
    }
    let response_headers = match response_headers(reader.get("auth-response-headers").unwrap_or_default()) {
        Ok(headers) => headers,
        Err(reason) => return deny(reader, "auth-response-headers", 503, &reason),
    };
    let proxy_set_headers = match parse_reference(reader.get("auth-proxy-set-headers").unwrap_or_default()) {
        Ok(reference) => reference,
        Err(reason) => {
            let reason = format!("{reason}: ingress-nginx would ask the auth service without these headers; refused here");
            return deny(reader, "auth-proxy-set-headers", 403, &reason);
        }
    };
    let cache = match cache(reader) {
        Ok(cache) => cache,
        Err(Refusal { status, reason }) => return deny(reader, "auth-cache-duration", status, &reason),
    };
    let param = reader.get("auth-signin-redirect-param").map(str::trim).filter(|p| !p.is_empty()).unwrap_or("rd");
    let signin = reader.get("auth-signin").map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    let signin = signin.filter(|url| source == Source::GlobalFlags || sign_in_url_accepted(reader, url)).map(|url| sign_in_url(&url, param));
    if let Some(Err(reason)) = signin.as_ref().map(|s| check_template(s)) {
        return deny(reader, "auth-signin", 403, &format!("the sign-in URL {reason}"));
    }
    let request_redirect = reader.get("auth-request-redirect").filter(|r| !r.is_empty() && !r.contains(char::is_control)).map(String::from);
    let refused = |r: &&str| !r.chars().all(|c| c.is_ascii_alphanumeric() || "-._~/:,?&=".contains(c));
    if let Some(redirect) = request_redirect.as_deref().filter(refused).filter(|_| source == Source::Annotations) {
        let message = format!("{redirect:?} has characters ingress-nginx's validation refuses (letters, digits and -._~/:,?&= only): it would drop the Ingress's external auth and serve its paths open; here the auth stays on, with this value");
        reader.note("auth-request-redirect", Severity::Warning, message);
    }
    Auth::On(Box::new(AuthConfig {
        service: target.service,
        authority: target.authority,
        path: target.path,
        method: method.map(String::from),
        signin,
        response_headers,
        request_redirect,
        always_set_cookie: reader.boolean("auth-always-set-cookie").unwrap_or(false),
        cache,
        proxy_set_headers,
        set_headers: Vec::new(),
    }))
}

/// The global external auth of `flags` (`None`: no `--global-auth-url`), read by the same rules
/// as the annotations; `Err` names every flag the parser refused or would not apply in full (the
/// command stops rather than serve without it).
pub fn global(flags: &GlobalAuthFlags) -> Result<Option<AuthConfig>, String> {
    let (auth, notes) = parse_as(&flags.as_annotations(), Source::GlobalFlags);
    let refused: Vec<String> = notes.iter().map(|(annotation, _, message)| format!("--global-{}: {message}", annotation.trim_start_matches(super::annotations::NGINX_PREFIX))).collect();
    match auth {
        _ if !refused.is_empty() => Err(refused.join("; ")),
        Auth::On(config) if config.proxy_set_headers.is_none() => Ok(Some(*config)),
        Auth::On(_) | Auth::Denied(..) => Err("the global auth flags are refused".into()),
        Auth::Off => Ok(None),
    }
}

/// ingress-nginx's default `auth-cache-duration`.
const DEFAULT_CACHE_DURATION: &str = "200 202 401 5m";

/// The auth cache of `auth-cache-key` (none without one, or with one that cannot be applied: a
/// warning) and `auth-cache-duration`. `Err`: a duration ingress-nginx's parser refuses — 503
/// where it denies the location (no time, a status after the time); 403 for characters its
/// validation refuses, where it drops the external auth and serves the path open.
fn cache(reader: &mut Reader<'_>) -> Result<Option<AuthCache>, Refusal> {
    let duration = reader.get("auth-cache-duration").map(str::trim).filter(|d| !d.is_empty()).map(String::from);
    let Some(key) = reader.get("auth-cache-key").map(str::trim).filter(|k| !k.is_empty()).map(String::from) else {
        if duration.is_some() {
            reader.note("auth-cache-duration", Severity::Warning, "has no effect without auth-cache-key (as in ingress-nginx); ignored".into());
        }
        return Ok(None);
    };
    let duration = duration.as_deref().unwrap_or(DEFAULT_CACHE_DURATION);
    if !duration.chars().all(|c| c.is_ascii_alphanumeric() || "-._~/:, ".contains(c)) {
        let reason = format!("auth-cache-duration {duration:?} contains characters ingress-nginx's validation refuses (it would drop the external auth and serve the path open)");
        return Err(Refusal { status: 403, reason });
    }
    let valid = cache_durations(duration).map_err(|reason| Refusal { status: 503, reason })?;
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || "-_${}".contains(c)) {
        let reason = "has characters ingress-nginx's validation refuses (letters, digits, -, _, $, { and } only); not cached";
        reader.note("auth-cache-key", Severity::Warning, reason.into());
        return Ok(None);
    }
    let rule = AuthCache { key, valid, location: String::new() };
    if let Err(reason) = wasm_ingress_filter::auth_cache::check(&rule) {
        reader.note("auth-cache-key", Severity::Warning, format!("{reason}; not cached (every request is asked about)"));
        return Ok(None);
    }
    Ok(Some(rule))
}

/// `auth-cache-duration`: comma-separated nginx `proxy_cache_valid` arguments — statuses (three
/// digits, or `any`) then one time (`30s`, `5m`, `1h`, `ms`, `d`, `w`, `M`, `y`); a time alone
/// is for 200, 301 and 302, as nginx. Other words are skipped, as ingress-nginx's validation does.
fn cache_durations(value: &str) -> Result<Vec<CacheValidity>, String> {
    let mut valid = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (mut statuses, mut any, mut millis) = (Vec::new(), false, None);
        for token in part.split_whitespace() {
            let status = (token.len() == 3).then(|| token.parse::<u16>().ok()).flatten();
            match (status, nginx_millis(token)) {
                _ if millis.is_some() && (status.is_some() || nginx_millis(token).is_some()) => {
                    return Err(format!("auth-cache-duration {part:?}: nothing may follow the time"));
                }
                (Some(status), _) if (100..=599).contains(&status) => statuses.push(status),
                (Some(status), _) => return Err(format!("auth-cache-duration {part:?}: {status} is not an HTTP status")),
                (None, Some(time)) => millis = Some(time),
                (None, None) if token == "any" => any = true,
                (None, None) => {}
            }
        }
        let Some(millis) = millis else { return Err(format!("auth-cache-duration {part:?} has no time")) };
        let statuses = match (any, statuses.is_empty()) {
            (true, _) => Vec::new(),
            (false, true) => vec![200, 301, 302],
            (false, false) => statuses,
        };
        valid.push(CacheValidity { statuses, millis });
    }
    if valid.is_empty() {
        return Err(format!("auth-cache-duration {value:?} has no time"));
    }
    Ok(valid)
}

/// An nginx time with its unit (`^\d+(ms|s|m|h|d|w|M|y)$`, as ingress-nginx validates), in ms,
/// capped at a year.
fn nginx_millis(token: &str) -> Option<u64> {
    let split = token.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = token.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit_millis: u64 = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "M" => 30 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return None,
    };
    Some(number.saturating_mul(unit_millis).clamp(1, wasm_ingress_filter::auth_cache::MAX_MILLIS))
}

fn deny(reader: &mut Reader<'_>, name: &str, status: u16, reason: &str) -> Auth {
    let consequence = match status {
        503 => "every path of this Ingress answers 503 (fail closed, as ingress-nginx denies the location)",
        _ => "every path of this Ingress answers 403 (fail closed) until it is",
    };
    reader.note(name, Severity::Error, format!("{reason}; {consequence}"));
    Auth::Denied(status, format!("{}{name}", super::annotations::NGINX_PREFIX))
}

/// Whether ingress-nginx's validation (`URLWithNginxVariableRegex`) takes an `auth-signin` URL;
/// one it refuses is ignored there with a log line (the client gets the 401), so here too, with a
/// warning.
fn sign_in_url_accepted(reader: &mut Reader<'_>, url: &str) -> bool {
    let accepted = url.chars().all(|c| c.is_ascii_alphanumeric() || "-._~/:, ?&=$".contains(c));
    if !accepted {
        let message = format!("{url:?} has characters ingress-nginx's validation refuses (letters, digits and -._~/:, ?&=$ only); ignored, as there: a 401 goes to the client");
        reader.note("auth-signin", Severity::Warning, message);
    }
    accepted
}

/// Why an auth-url (or an auth-cache-duration) is refused, and with which status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    status: u16,
    reason: String,
}

/// Where an auth-url points.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    service: AuthService,
    authority: Option<String>,
    path: String,
}

/// `http(s)://host[:port][/path][?query]`, the host possibly `$host`. 503 for what ingress-nginx
/// refuses too, 403 for what we do not support (other variables, user info).
fn parse_url(url: &str) -> Result<Target, Refusal> {
    let refused = |reason: String| Refusal { status: 503, reason: format!("could not parse auth-url {url:?}: {reason}") };
    let unsupported = |reason: &str| Refusal { status: 403, reason: format!("auth-url {url:?} {reason}, which is not supported yet") };
    let (tls, rest) = match url.split_once("://") {
        Some(("https", rest)) => (true, rest),
        Some(("http", rest)) => (false, rest),
        _ => return Err(refused("not an absolute http:// or https:// URL".into())),
    };
    if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(refused("it contains spaces or control characters".into()));
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    if authority.contains('@') {
        return Err(unsupported("carries user information"));
    }
    if path.contains('$') {
        return Err(unsupported("uses nginx variables in its path or query"));
    }
    let (host, port) = split_port(authority).ok_or_else(|| refused("invalid port".into()))?;
    if host.is_empty() || host.contains("..") {
        return Err(refused("invalid url host".into()));
    }
    if host == "$host" {
        return match port {
            None => Ok(Target { service: AuthService { tls, target: AuthTarget::OwnListener }, authority: None, path }),
            Some(_) => Err(unsupported("gives $host a port")),
        };
    }
    if host.contains('$') {
        return Err(unsupported("uses nginx variables in its host other than $host"));
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '[' | ']');
    if !host.chars().all(valid) {
        return Err(refused("invalid url host".into()));
    }
    let port = port.unwrap_or(if tls { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    Ok(Target {
        service: AuthService { tls, target: AuthTarget::Dns { host: bare, port } },
        authority: Some(host.to_ascii_lowercase()),
        path,
    })
}

/// `host[:port]` (`[v6]:port` too); `None` for a port that is not a number.
pub(super) fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let colon = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => i,
        _ => return Some((authority, None)),
    };
    let port = authority[colon + 1..].parse().ok().filter(|p| *p > 0)?;
    Some((&authority[..colon], Some(port)))
}

/// `auth-response-headers`: comma-separated header names, lower-cased (ingress-nginx's
/// `^[a-zA-Z\d\-_]+$` each).
fn response_headers(value: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !is_header_name(name) {
            return Err(format!("{name:?} is not a header name (invalid headers list)"));
        }
        names.push(name.to_ascii_lowercase());
    }
    if names.len() > wasm_ingress_filter::limits::MAX_AUTH_RESPONSE_HEADERS {
        return Err(format!("more than {} headers", wasm_ingress_filter::limits::MAX_AUTH_RESPONSE_HEADERS));
    }
    names.dedup();
    Ok(names)
}

/// ingress-nginx's `buildAuthSignURL`: without a query the redirect parameter is added with `?`,
/// a URL that already has the parameter is kept, any other query gets it with `&`.
fn sign_in_url(signin: &str, param: &str) -> String {
    const TARGET: &str = "$pass_access_scheme://$http_host$escaped_request_uri";
    let query = signin.split('#').next().unwrap_or_default().split_once('?').map(|(_, q)| q).unwrap_or_default();
    let has_param = query.split('&').any(|pair| pair.split_once('=').is_some_and(|(k, v)| k == param && !v.is_empty()));
    match (query.is_empty(), has_param) {
        (true, _) => format!("{signin}?{param}={TARGET}"),
        (false, true) => signin.to_string(),
        (false, false) => format!("{signin}&{param}={TARGET}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> (Auth, Vec<AnnotationNote>) {
        let annotations = pairs.iter().map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), v.to_string())).collect();
        parse(&annotations)
    }

    fn config(pairs: &[(&str, &str)]) -> AuthConfig {
        match read(pairs).0 {
            Auth::On(config) => *config,
            other => panic!("{pairs:?}: {other:?}"),
        }
    }

    fn dns(tls: bool, host: &str, port: u16) -> AuthService {
        AuthService { tls, target: AuthTarget::Dns { host: host.into(), port } }
    }

    #[test]
    fn auth_urls_become_a_service_a_host_and_a_path() {
        let rows: [(&str, AuthService, Option<&str>, &str); 6] = [
            ("http://auth.example/oauth2/auth", dns(false, "auth.example", 80), Some("auth.example"), "/oauth2/auth"),
            ("https://Auth.Example:8443/check?x=1#f", dns(true, "auth.example", 8443), Some("auth.example"), "/check?x=1"),
            ("http://10.0.0.5:4180", dns(false, "10.0.0.5", 4180), Some("10.0.0.5"), "/"),
            ("http://[::1]:9000/a", dns(false, "::1", 9000), Some("[::1]"), "/a"),
            ("https://$host/oauth2/auth", AuthService { tls: true, target: AuthTarget::OwnListener }, None, "/oauth2/auth"),
            ("http://auth.ns.svc.cluster.local?q", dns(false, "auth.ns.svc.cluster.local", 80), Some("auth.ns.svc.cluster.local"), "/?q"),
        ];
        for (url, service, authority, path) in rows {
            let config = config(&[("auth-url", url)]);
            assert_eq!((config.service, config.authority.as_deref(), config.path.as_str()), (service, authority, path), "{url}");
        }
    }

    #[test]
    fn refused_values_deny_with_ingress_nginxs_status() {
        type Row<'a> = (&'a [(&'a str, &'a str)], u16, &'a str);
        let rows: [Row; 9] = [
            (&[("auth-url", "/oauth2/auth")], 503, "auth-url"),
            (&[("auth-url", "ftp://a/b")], 503, "auth-url"),
            (&[("auth-url", "http://a..b/x")], 503, "auth-url"),
            (&[("auth-url", "http://a:port/x")], 503, "auth-url"),
            (&[("auth-url", "http://a/$request_uri")], 403, "auth-url"),
            (&[("auth-url", "http://$best_http_host/x")], 403, "auth-url"),
            (&[("auth-url", "http://a/x"), ("auth-method", "FETCH")], 503, "auth-method"),
            (&[("auth-url", "http://a/x"), ("auth-response-headers", "X-User, X User")], 503, "auth-response-headers"),
            (&[("auth-url", "http://a/x"), ("auth-signin", "https://a/start?rd=$arg_rd")], 403, "auth-signin"),
        ];
        for (pairs, status, annotation) in rows {
            let (auth, notes) = read(pairs);
            assert_eq!(auth, Auth::Denied(status, format!("nginx.ingress.kubernetes.io/{annotation}")), "{pairs:?}");
            assert!(notes.iter().any(|(k, s, _)| k.ends_with(annotation) && *s == Severity::Error), "{pairs:?}: {notes:?}");
        }
        assert_eq!(read(&[("auth-url", " ")]).0, Auth::Off);
        let (auth, _) = read(&[("auth-url", "http://a/x"), ("auth-proxy-set-headers", "default/my headers")]);
        assert_eq!(auth, Auth::Denied(403, "nginx.ingress.kubernetes.io/auth-proxy-set-headers".into()), "a value ingress-nginx ignores");
        let Auth::On(config) = read(&[("auth-url", "http://a/x"), ("auth-proxy-set-headers", "default/headers")]).0 else {
            panic!("a ConfigMap reference is read, not refused");
        };
        assert_eq!(config.proxy_set_headers, Some(MapRef::Qualified(crate::state::ObjectKey::new("default", "headers"))));
    }

    #[test]
    fn sign_in_urls_get_the_redirect_parameter_as_build_auth_sign_url_adds_it() {
        let rows = [
            ("https://a/start", "rd", "https://a/start?rd=$pass_access_scheme://$http_host$escaped_request_uri"),
            ("https://a/start?x=1", "rd", "https://a/start?x=1&rd=$pass_access_scheme://$http_host$escaped_request_uri"),
            ("https://a/start?rd=$scheme://$host$request_uri", "rd", "https://a/start?rd=$scheme://$host$request_uri"),
            ("https://a/start?x=1", "orig", "https://a/start?x=1&orig=$pass_access_scheme://$http_host$escaped_request_uri"),
        ];
        for (signin, param, want) in rows {
            assert_eq!(sign_in_url(signin, param), want);
        }
        let config = config(&[
            ("auth-url", "http://a/x"),
            ("auth-signin", "https://a/start"),
            ("auth-signin-redirect-param", "orig"),
            ("auth-response-headers", "X-Auth-Request-User, Authorization"),
            ("auth-method", "POST"),
            ("auth-always-set-cookie", "true"),
            ("auth-request-redirect", "/back"),
        ]);
        assert_eq!(config.signin.as_deref(), Some("https://a/start?orig=$pass_access_scheme://$http_host$escaped_request_uri"));
        assert_eq!(config.response_headers, ["x-auth-request-user", "authorization"]);
        assert_eq!((config.method.as_deref(), config.always_set_cookie, config.request_redirect.as_deref()), (Some("POST"), true, Some("/back")));
        let rule = config.rule(Duration::from_secs(60));
        assert_eq!((rule.cluster.as_str(), rule.timeout_ms), ("wasm-ingress:auth:http://a:80", 60_000));
        // A character ingress-nginx's validation refuses: the sign-in is ignored there (a 401).
        let (auth, notes) = read(&[("auth-url", "http://a/x"), ("auth-signin", "https://a/start?rd=%2Fback")]);
        let Auth::On(config) = auth else { panic!("the auth stays on") };
        assert_eq!(config.signin, None);
        assert!(notes.iter().any(|(k, s, _)| k.ends_with("auth-signin") && *s == Severity::Warning), "{notes:?}");
        // One ingress-nginx would drop the whole auth for: kept here, and said.
        let (auth, notes) = read(&[("auth-url", "http://a/x"), ("auth-request-redirect", "/back%2F")]);
        let Auth::On(config) = auth else { panic!("the auth stays on") };
        assert_eq!(config.request_redirect.as_deref(), Some("/back%2F"));
        assert!(notes.iter().any(|(k, s, _)| k.ends_with("auth-request-redirect") && *s == Severity::Warning), "{notes:?}");
    }

    #[test]
    fn keepalive_is_reported_not_applied() {
        let (auth, notes) = read(&[("auth-url", "http://a/x"), ("auth-keepalive", "10")]);
        assert!(matches!(auth, Auth::On(_)));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes.iter().all(|(_, s, _)| *s == Severity::Warning));
    }

    #[test]
    fn the_auth_cache_is_read_like_ingress_nginx() {
        let validity = |statuses: &[u16], millis: u64| CacheValidity { statuses: statuses.to_vec(), millis };
        let cache_of = |pairs: &[(&str, &str)]| match read(&[&[("auth-url", "http://a/x")], pairs].concat()) {
            (Auth::On(config), _) => Ok(config.cache),
            (Auth::Denied(status, name), _) => Err((status, name)),
            (Auth::Off, _) => panic!("auth is on"),
        };
        let key = |k: &str, valid: Vec<CacheValidity>| Ok(Some(AuthCache { key: k.into(), valid, location: String::new() }));
        type Outcome = Result<Option<AuthCache>, (u16, String)>;
        let cases: Vec<(Vec<(&str, &str)>, Outcome)> = vec![
            (vec![], Ok(None)),
            (vec![("auth-cache-duration", "200 1m")], Ok(None)),
            (vec![("auth-cache-key", "$remote_user$http_authorization")], key("$remote_user$http_authorization", vec![validity(&[200, 202, 401], 300_000)])),
            (vec![("auth-cache-key", "fixed"), ("auth-cache-duration", "200 201 401 30m")], key("fixed", vec![validity(&[200, 201, 401], 1_800_000)])),
            (vec![("auth-cache-key", "k"), ("auth-cache-duration", ",5m,,401 10s,")], key("k", vec![validity(&[200, 301, 302], 300_000), validity(&[401], 10_000)])),
            (vec![("auth-cache-key", "k"), ("auth-cache-duration", "any 500ms")], key("k", vec![validity(&[], 500)])),
            (vec![("auth-cache-key", "k"), ("auth-cache-duration", ",200,")], Err((503, "nginx.ingress.kubernetes.io/auth-cache-duration".into()))),
            (vec![("auth-cache-key", "k"), ("auth-cache-duration", "5m 200")], Err((503, "nginx.ingress.kubernetes.io/auth-cache-duration".into()))),
            (vec![("auth-cache-key", "k"), ("auth-cache-duration", "200 5m;")], Err((403, "nginx.ingress.kubernetes.io/auth-cache-duration".into()))),
            (vec![("auth-cache-key", "a b")], Ok(None)),
            (vec![("auth-cache-key", "$request_id")], Ok(None)),
        ];
        for (pairs, expected) in cases {
            assert_eq!(cache_of(&pairs), expected, "{pairs:?}");
        }
        let (_, notes) = read(&[("auth-url", "http://a/x"), ("auth-cache-key", "$request_id")]);
        assert!(notes.iter().any(|(name, severity, message)| name.ends_with("auth-cache-key") && *severity == Severity::Warning && message.contains("not cached")), "{notes:?}");
    }
}
