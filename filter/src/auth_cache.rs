//! ingress-nginx's cache of auth responses (`auth-cache-key`, `auth-cache-duration`): with a key,
//! an auth response whose status the durations list is kept for that long, and a request whose
//! key finds it is decided by it without asking the auth service (nginx's `proxy_cache` on the
//! auth location, keyed by the server, the auth path and the expanded key).
//!
//! Pure parts: the key of a request ([`key`]: a SHA-256 of the request's host, the auth service
//! and path, and the key template with its nginx variables filled), how long an answer is kept
//! ([`keep_for`]: by its status, unless its own headers forbid or limit caching, as nginx's
//! `proxy_cache` honours them), and how an answer is kept in and read from one of [`SLOTS`]
//! shared-data slots ([`slot_key`], [`encode`], [`decode`]; `host` reads and writes the slot).

use sha2::{Digest as _, Sha256};

use crate::auth::Original;
use crate::hostname::host_of;
use crate::table::{AuthCache, CacheValidity, ExternalAuth};

/// The nginx variables a cache key may use, besides `$http_NAME` and `$cookie_NAME`.
pub const KEY_VARIABLES: &[&str] = &["remote_user", "remote_addr", "host", "http_host", "request_uri", "scheme"];

/// Longest key template.
pub const MAX_KEY_TEMPLATE_BYTES: usize = 1024;

/// Most validity entries of one cache rule.
pub const MAX_VALIDITIES: usize = 16;

/// Longest time an answer may be kept (a year), in milliseconds.
pub const MAX_MILLIS: u64 = 365 * 24 * 3600 * 1000;

/// Number of shared-data slots the answers are kept in. Envoy keeps shared data once per process
/// for the VM id, so every worker finds what another kept (as nginx's cache zone is shared by the
/// workers of a pod); an answer takes the slot its key hashes to, replacing what was there, so the
/// memory held is bounded by the slots, never by the number of keys ever seen.
pub const SLOTS: u64 = 1024;

/// The shared-data key prefix of the slots.
const SLOT_PREFIX: &str = "wasm-ingress/auth-cache/";

/// Largest auth response (header names and values) kept; a larger one is not cached.
pub const MAX_ENTRY_BYTES: usize = 16 * 1024;

/// A cache rule the filter can apply: a bounded key template with known variables, and 1 to
/// [`MAX_VALIDITIES`] validities with statuses in 100..=599 and 1 to [`MAX_MILLIS`] milliseconds.
pub fn check(cache: &AuthCache) -> Result<(), String> {
    if cache.key.len() > MAX_KEY_TEMPLATE_BYTES || cache.key.contains(|c: char| c.is_control()) {
        return Err(format!("key is longer than {MAX_KEY_TEMPLATE_BYTES} bytes or has control characters"));
    }
    for piece in pieces(&cache.key) {
        let Piece::Variable(name) = piece else { continue };
        let known = KEY_VARIABLES.contains(&name) || name.strip_prefix("http_").or_else(|| name.strip_prefix("cookie_")).is_some_and(|n| !n.is_empty());
        if !known {
            return Err(format!("key uses the nginx variable ${name}, which is not supported"));
        }
    }
    if cache.valid.is_empty() || cache.valid.len() > MAX_VALIDITIES {
        return Err(format!("1 to {MAX_VALIDITIES} validities are needed"));
    }
    for validity in &cache.valid {
        if validity.statuses.iter().any(|s| !(100..=599).contains(s)) || !(1..=MAX_MILLIS).contains(&validity.millis) {
            return Err(format!("validity {validity:?}: statuses must be 100..=599 and milliseconds 1..={MAX_MILLIS}"));
        }
    }
    Ok(())
}

/// A piece of a key template.
enum Piece<'t> {
    Literal(&'t str),
    /// `$name` (the longest run of `[A-Za-z0-9_]`, as nginx reads) or `${name}`.
    Variable(&'t str),
}

fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut parts = template.split('$');
    out.push(Piece::Literal(parts.next().unwrap_or_default()));
    for rest in parts {
        let braced = rest.strip_prefix('{').and_then(|inner| inner.split_once('}'));
        let (name, tail) = match braced {
            Some((name, tail)) => (name, tail),
            None => rest.split_at(rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len())),
        };
        out.extend([Piece::Variable(name), Piece::Literal(tail)]);
    }
    out
}

/// How long an answer with `status` is kept by the rule (milliseconds): the first validity that
/// lists the status (one that lists none takes any status, as nginx's `any`); `None`: not kept.
pub fn validity(valid: &[CacheValidity], status: u16) -> Option<u64> {
    valid.iter().find(|v| v.statuses.is_empty() || v.statuses.contains(&status)).map(|v| v.millis)
}

/// How long an auth answer is kept, as nginx's `proxy_cache` decides: never one that sets a
/// cookie, says `no-cache`/`no-store`/`private` or has an `Expires` date (which nginx would read;
/// not kept here); `X-Accel-Expires` then `Cache-Control: max-age` (seconds, 0: not kept) win
/// over the rule's validity for the status.
pub fn keep_for(valid: &[CacheValidity], status: u16, headers: &[(String, Vec<u8>)]) -> Option<u64> {
    let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase());
    if header("set-cookie").is_some() || header("expires").is_some() {
        return None;
    }
    let control = header("cache-control").unwrap_or_default();
    let directives: Vec<&str> = control.split(',').map(str::trim).collect();
    if directives.iter().any(|d| matches!(*d, "no-cache" | "no-store" | "private")) {
        return None;
    }
    let max_age = directives.iter().find_map(|d| d.strip_prefix("max-age=")).and_then(|v| v.trim().parse::<u64>().ok());
    let seconds = header("x-accel-expires").and_then(|v| v.trim().parse::<u64>().ok()).or(max_age);
    match seconds {
        Some(0) => None,
        Some(seconds) => Some(seconds.saturating_mul(1000).min(MAX_MILLIS)),
        None => validity(valid, status),
    }
}

/// The cache key of a request: the request's host (each server has its own keyspace in nginx),
/// the auth service and path, the rule's location (each location has its own keyspace too), and
/// the key template with its variables filled from the original request and its `headers`.
pub fn key(auth: &ExternalAuth, rule: &AuthCache, original: &Original<'_>, headers: &[(String, Vec<u8>)]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [host_of(original.authority), auth.cluster.as_bytes(), auth.path.as_bytes(), rule.location.as_bytes()] {
        hasher.update(part);
        hasher.update([0]);
    }
    for piece in pieces(&rule.key) {
        match piece {
            Piece::Literal(text) => hasher.update(text),
            Piece::Variable(name) => hasher.update(variable(name, original, headers)),
        }
    }
    hasher.finalize().into()
}

/// The value of nginx variable `name` for the request (empty when absent, as nginx).
fn variable(name: &str, original: &Original<'_>, headers: &[(String, Vec<u8>)]) -> Vec<u8> {
    let header = |wanted: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(wanted)).map(|(_, v)| v.clone());
    match name {
        "remote_user" => header("authorization").and_then(|value| crate::basic::credentials(&value)).map(|(user, _)| user).unwrap_or_default(),
        "remote_addr" => original.client_address.as_bytes().to_vec(),
        "host" => host_of(original.authority).to_ascii_lowercase(),
        "http_host" => original.authority.to_vec(),
        "request_uri" => original.uri.to_vec(),
        "scheme" => if original.https { b"https".to_vec() } else { b"http".to_vec() },
        _ => {
            if let Some(cookie) = name.strip_prefix("cookie_") {
                return header("cookie").and_then(|value| crate::canary::cookie_value(&value, cookie.as_bytes()).map(<[u8]>::to_vec)).unwrap_or_default();
            }
            let Some(field) = name.strip_prefix("http_") else { return Vec::new() };
            header(&field.replace('_', "-")).unwrap_or_default()
        }
    }
}

/// A kept auth answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    /// When it stops being used (host clock, nanoseconds).
    pub expires_at: u64,
}

/// The shared-data key of the slot an answer for `key` is kept in.
pub fn slot_key(key: &[u8; 32]) -> String {
    format!("{SLOT_PREFIX}{}", u64::from(u16::from_be_bytes([key[0], key[1]])) % SLOTS)
}

/// A slot's value for an answer with `status` and `headers` kept `millis` from `now`: the key,
/// the expiry, the status and the headers (lengths before bytes, big-endian). `None` when the
/// headers are larger than [`MAX_ENTRY_BYTES`]: not kept.
pub fn encode(key: &[u8; 32], status: u16, headers: &[(String, Vec<u8>)], millis: u64, now: u64) -> Option<Vec<u8>> {
    let size: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if size > MAX_ENTRY_BYTES {
        return None;
    }
    let expires_at = now.saturating_add(millis.saturating_mul(1_000_000));
    let mut value = Vec::with_capacity(44 + size + 6 * headers.len());
    value.extend_from_slice(key);
    value.extend_from_slice(&expires_at.to_be_bytes());
    value.extend_from_slice(&status.to_be_bytes());
    value.extend_from_slice(&u16::try_from(headers.len()).ok()?.to_be_bytes());
    for (name, header) in headers {
        value.extend_from_slice(&u16::try_from(name.len()).ok()?.to_be_bytes());
        value.extend_from_slice(name.as_bytes());
        value.extend_from_slice(&u32::try_from(header.len()).ok()?.to_be_bytes());
        value.extend_from_slice(header);
    }
    Some(value)
}

/// The answer a slot's `value` keeps for `key`, if it is that key's and has not expired at `now`;
/// `None` for another key's answer (the slot was taken since) or a value that does not read.
pub fn decode(value: &[u8], key: &[u8; 32], now: u64) -> Option<Cached> {
    let mut reader = Reader(value);
    if reader.take(32)? != key {
        return None;
    }
    let expires_at = u64::from_be_bytes(reader.take(8)?.try_into().ok()?);
    if expires_at <= now {
        return None;
    }
    let status = u16::from_be_bytes(reader.take(2)?.try_into().ok()?);
    let count = u16::from_be_bytes(reader.take(2)?.try_into().ok()?);
    let mut headers = Vec::new();
    for _ in 0..count {
        let name_length = u16::from_be_bytes(reader.take(2)?.try_into().ok()?);
        let name = String::from_utf8(reader.take(usize::from(name_length))?.to_vec()).ok()?;
        let length = u32::from_be_bytes(reader.take(4)?.try_into().ok()?);
        headers.push((name, reader.take(usize::try_from(length).ok()?)?.to_vec()));
    }
    Some(Cached { status, headers, expires_at })
}

/// Reads a slot's value front to back; `None` past its end.
struct Reader<'v>(&'v [u8]);

impl<'v> Reader<'v> {
    fn take(&mut self, count: usize) -> Option<&'v [u8]> {
        let (head, rest) = (self.0.get(..count)?, self.0.get(count..)?);
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn auth() -> ExternalAuth {
        ExternalAuth {
            cluster: "auth".into(),
            authority: None,
            path: "/oauth2/auth".into(),
            method: None,
            signin: None,
            response_headers: vec![],
            request_redirect: None,
            always_set_cookie: false,
            set_headers: vec![],
            timeout_ms: 1000,
            cache: None,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect()
    }

    #[test]
    fn keys_follow_the_variables_they_use_and_the_server_and_location() {
        let original = Original { method: b"GET", authority: b"app.example:8443", uri: b"/a?b", https: true, forwarded_host: b"", client_address: "10.0.0.1" };
        let alice = headers(&[("authorization", "Basic YWxpY2U6c2VjcmV0"), ("cookie", "a=1; _oauth2_proxy=xyz"), ("x-team", "red")]);
        let bob = headers(&[("authorization", "Basic Ym9iOnNlY3JldA=="), ("cookie", "_oauth2_proxy=xyz"), ("x-team", "red")]);
        let rule = |template: &str| AuthCache { key: template.into(), valid: vec![], location: "/".into() };
        let k = |template: &str, original: &Original<'_>, headers: &[(String, Vec<u8>)]| key(&auth(), &rule(template), original, headers);
        assert_ne!(k("$remote_user", &original, &alice), k("$remote_user", &original, &bob), "users differ");
        assert_eq!(k("$cookie__oauth2_proxy", &original, &alice), k("$cookie__oauth2_proxy", &original, &bob), "same session cookie");
        assert_eq!(k("$http_x_team", &original, &alice), k("$http_x_team", &original, &bob));
        assert_ne!(k("$http_authorization", &original, &alice), k("$http_authorization", &original, &bob));
        let other_host = Original { authority: b"other.example", ..original };
        assert_ne!(k("$cookie__oauth2_proxy", &original, &alice), k("$cookie__oauth2_proxy", &other_host, &alice), "each server has its own keys");
        let same_host_other_port = Original { authority: b"app.example", ..original };
        assert_eq!(k("x", &original, &alice), k("x", &same_host_other_port, &alice));
        let other_path = ExternalAuth { path: "/other".into(), ..auth() };
        assert_ne!(key(&other_path, &rule("x"), &original, &alice), k("x", &original, &alice), "each auth path has its own keys");
        let other_location = AuthCache { location: "/bar".into(), ..rule("x") };
        assert_ne!(key(&auth(), &other_location, &original, &alice), k("x", &original, &alice), "each location has its own keys");
        assert_eq!(variable("remote_user", &original, &alice), b"alice");
        assert_eq!(variable("cookie_a", &original, &alice), b"1");
        assert_eq!(variable("cookie_missing", &original, &alice), b"");
        assert_eq!(variable("host", &original, &alice), b"app.example");
        assert_eq!(k("${remote_user}x", &original, &alice), k("alicex", &original, &bob), "braced names end at the brace");
    }

    #[test]
    fn validity_is_the_first_entry_listing_the_status() {
        let valid = vec![CacheValidity { statuses: vec![200, 202], millis: 600_000 }, CacheValidity { statuses: vec![401], millis: 60_000 }];
        let table = [(200, Some(600_000)), (202, Some(600_000)), (401, Some(60_000)), (403, None), (500, None)];
        for (status, expected) in table {
            assert_eq!(validity(&valid, status), expected, "{status}");
        }
        assert_eq!(validity(&[CacheValidity { statuses: vec![], millis: 5 }], 503), Some(5), "any status");
    }

    #[test]
    fn answers_say_themselves_whether_they_are_kept_as_nginx_reads_them() {
        let valid = vec![CacheValidity { statuses: vec![200, 202, 401], millis: 300_000 }];
        type Case<'a> = (&'a [(&'a str, &'a str)], u16, Option<u64>);
        let cases: [Case<'_>; 9] = [
            (&[("x-auth-request-user", "alice")], 202, Some(300_000)),
            (&[], 403, None),
            (&[("set-cookie", "_oauth2_proxy=new")], 202, None),
            (&[("cache-control", "no-cache")], 202, None),
            (&[("Cache-Control", "Private, max-age=60")], 202, None),
            (&[("cache-control", "max-age=60")], 202, Some(60_000)),
            (&[("cache-control", "max-age=0")], 202, None),
            (&[("x-accel-expires", "5"), ("cache-control", "max-age=60")], 401, Some(5_000)),
            (&[("expires", "Thu, 01 Dec 2094 16:00:00 GMT")], 202, None),
        ];
        for (pairs, status, expected) in cases {
            assert_eq!(keep_for(&valid, status, &headers(pairs)), expected, "{pairs:?} {status}");
        }
    }

    #[test]
    fn answers_expire_and_are_read_only_by_their_own_key() {
        let answer = headers(&[("x-user", "alice"), ("set-cookie", "a=1"), ("set-cookie", "b=2")]);
        let kept = encode(&[1; 32], 202, &answer, 10_000, 0).unwrap();
        assert_eq!(decode(&kept, &[1; 32], 9 * SECOND), Some(Cached { status: 202, headers: answer, expires_at: 10 * SECOND }));
        assert_eq!(decode(&kept, &[1; 32], 10 * SECOND), None, "expired");
        assert_eq!(decode(&kept, &[2; 32], 0), None, "another key's answer");
        assert_eq!(encode(&[2; 32], 202, &headers(&[("x-big", &"v".repeat(MAX_ENTRY_BYTES))]), 10_000, 0), None, "too large to keep");
        for cut in 0..kept.len() {
            assert_eq!(decode(&kept[..cut], &[1; 32], 0), None, "a value cut at {cut}");
        }
        assert_eq!(decode(&[], &[1; 32], 0), None);
        // Slots are bounded and spread by the key.
        let slots: std::collections::BTreeSet<String> = (0..=255u8).map(|b| slot_key(&[b; 32])).collect();
        assert!(slots.len() > 200 && slots.iter().all(|k| k.strip_prefix(SLOT_PREFIX).and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n < SLOTS)));
    }

    #[test]
    fn check_refuses_what_cannot_be_applied() {
        let rule = |key: &str, valid: Vec<CacheValidity>| AuthCache { key: key.into(), valid, location: String::new() };
        let ok = || vec![CacheValidity { statuses: vec![200], millis: 300_000 }];
        assert!(check(&rule("$remote_user$http_authorization$cookie_session", ok())).is_ok());
        assert!(check(&rule("${remote_user}x", ok())).is_ok());
        assert!(check(&rule("$request_id", ok())).is_err());
        assert!(check(&rule("$http_", ok())).is_err());
        assert!(check(&rule("x", vec![])).is_err());
        assert!(check(&rule("x", vec![CacheValidity { statuses: vec![99], millis: 1 }])).is_err());
        assert!(check(&rule("x", vec![CacheValidity { statuses: vec![200], millis: 0 }])).is_err());
        assert!(check(&rule(&"x".repeat(MAX_KEY_TEMPLATE_BYTES + 1), ok())).is_err());
    }
}
