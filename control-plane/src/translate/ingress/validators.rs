//! ingress-nginx's annotation validators (`internal/ingress/annotations/parser/validators.go`)
//! for the annotations whose parser hands the validation error on, so that its `Extract` rejects
//! the whole Ingress (v1.15; `store.go` then never serves it): checked here before anything else
//! reads them, so that such an Ingress is not served either. Only where the parser gets to the
//! value: `auth-realm` and `auth-secret-type` are read after a valid `auth-type`, the
//! `auth-tls-*` companions after a usable `auth-tls-secret`. Empty values are not validated, as
//! there. The annotations whose own reader already refuses (redirects, limits, `load-balance`,
//! …) are not repeated here. Pure.

use std::collections::BTreeMap;

use super::annotations::NGINX_PREFIX;
use super::behaviour::go_bool;

/// `alphaNumericChars`: letters, digits and `-._~/:`.
fn basic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~/:".contains(c)
}

/// One validator: `Err` says why the value is refused.
type Check = fn(&str) -> Result<(), String>;

/// `ValidateRegex(re, true)`: spaces are removed before matching.
pub(super) fn spaceless(value: &str) -> String {
    value.replace(' ', "")
}

fn chars(value: &str, allowed: fn(char) -> bool, what: &str) -> Result<(), String> {
    match value.chars().find(|c| !allowed(*c)) {
        None => Ok(()),
        Some(c) => Err(format!("{value:?} contains {c:?}, which ingress-nginx refuses in {what}")),
    }
}

fn one_of(value: &str, allowed: &[&str]) -> Result<(), String> {
    match allowed.contains(&spaceless(value).as_str()) {
        true => Ok(()),
        false => Err(format!("{value:?} is not one of {}", allowed.join(", "))),
    }
}

fn boolean(value: &str) -> Result<(), String> {
    go_bool(value).map(|_| ()).ok_or_else(|| format!("{value:?} is not a boolean (true, false, 1, 0, ...)"))
}

/// Go's `strconv.Atoi` (see `ratelimit::is_go_int`), at most 18 digits.
fn integer(value: &str) -> Result<(), String> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    match super::ratelimit::is_go_int(value) && digits.len() <= 18 {
        true => Ok(()),
        false => Err(format!("{value:?} is not a whole number")),
    }
}

fn auth_type(value: &str) -> Result<(), String> {
    one_of(value, &["basic", "digest"])
}

fn auth_secret_type(value: &str) -> Result<(), String> {
    one_of(value, &["auth-file", "auth-map"])
}

/// `IsValidRegex`: letters, digits, `-._~/:` and `^$[](){}*+?|&=\`, no spaces.
pub(super) fn regex_chars(value: &str) -> Result<(), String> {
    chars(value, |c| basic_char(c) || "^$[](){}*+?|&=\\".contains(c), "a regex (letters, digits and -._~/:^$[](){}*+?|&=\\ only)")
}

/// `CharsWithSpace`, spaces kept.
fn realm(value: &str) -> Result<(), String> {
    chars(value, |c| basic_char(c) || c == ' ', "a realm (letters, digits, spaces and -._~/: only)")
}

/// `URLWithNginxVariableRegex`: letters, digits, `-._~/:`, `,`, `?&=` and `$`.
fn auth_url(value: &str) -> Result<(), String> {
    chars(&spaceless(value), |c| basic_char(c) || ",?&=$".contains(c), "an auth URL (letters, digits and -._~/:,?&=$ only)")
}

/// `SizeRegex`: digits and one optional unit, `b`, `k`, `m` or `g` in any case.
fn size(value: &str) -> Result<(), String> {
    let value = spaceless(value);
    let digits = value.strip_suffix(|c: char| "bkmgBKMG".contains(c)).unwrap_or(&value);
    match !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        true => Ok(()),
        false => Err(format!("{value:?} is not a size (digits and b, k, m or g)")),
    }
}

/// `ValidateServiceName`: a DNS-1035 label (the Service of the Ingress's namespace, by name).
fn service_name(value: &str) -> Result<(), String> {
    let bytes = value.as_bytes();
    let label = (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.last() != Some(&b'-');
    match label {
        true => Ok(()),
        false => Err(format!("{value:?} is not a Service name (a DNS-1035 label: lower-case letters, digits and '-', starting with a letter; no namespace)")),
    }
}

/// authtls's `redirectRegex`: a named location (`@name`), or an optional `http(s)://host[:port]`
/// then `/segment`s of letters, digits and `-_.`.
fn error_page(value: &str) -> Result<(), String> {
    static REDIRECT: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^(@[A-Za-z0-9_-]+|((https?://)?[A-Za-z0-9\-.]+(:[0-9]+)?)?(/[A-Za-z0-9\-_.]+)*/?)$").ok()
    });
    let value = spaceless(value);
    match REDIRECT.as_ref().is_some_and(|re| re.is_match(&value)) {
        true => Ok(()),
        false => Err(format!("{value:?} is not an error page ingress-nginx takes (http(s)://host[:port]/path of letters, digits and -_.)")),
    }
}

/// `CommonNameAnnotationValidator`: `CN=` then a regex.
fn common_name(value: &str) -> Result<(), String> {
    let Some(pattern) = value.strip_prefix("CN=") else {
        return Err(format!("{value:?} does not start with CN="));
    };
    regex::Regex::new(pattern).map(|_| ()).map_err(|e| format!("{value:?}: {e}"))
}

/// Always validated when present.
const ALWAYS: &[(&str, Check)] = &[
    ("auth-type", auth_type),
    ("auth-url", auth_url),
    ("ssl-passthrough", boolean),
    ("http2-push-preload", boolean),
    ("client-body-buffer-size", size),
    ("default-backend", service_name),
    ("upstream-hash-by-subset", boolean),
    ("upstream-hash-by-subset-size", integer),
];

/// Validated after a valid `auth-type`.
const AFTER_AUTH_TYPE: &[(&str, Check)] = &[("auth-secret-type", auth_secret_type), ("auth-realm", realm)];

/// Validated after an `auth-tls-secret` of the Ingress's namespace.
const AFTER_AUTH_TLS_SECRET: &[(&str, Check)] = &[
    ("auth-tls-error-page", error_page),
    ("auth-tls-pass-certificate-to-upstream", boolean),
    ("auth-tls-match-cn", common_name),
];

/// The first (annotation, reason) ingress-nginx would reject the Ingress for, of these.
pub fn refusal(annotations: &BTreeMap<String, String>, namespace: &str) -> Option<(String, String)> {
    let value = |name: &str| annotations.get(&format!("{NGINX_PREFIX}{name}")).map(String::as_str).filter(|v| !v.is_empty());
    let auth_type_ok = value("auth-type").is_some_and(|v| auth_type(v).is_ok());
    let tls_secret_ok = value("auth-tls-secret").and_then(|v| v.trim().split_once('/')).is_some_and(|(ns, name)| ns == namespace && !name.is_empty());
    let checks = ALWAYS
        .iter()
        .chain(AFTER_AUTH_TYPE.iter().filter(|_| auth_type_ok))
        .chain(AFTER_AUTH_TLS_SECRET.iter().filter(|_| tls_secret_ok));
    checks
        .filter_map(|(name, check)| value(name).and_then(|v| check(v).err()).map(|reason| (format!("{NGINX_PREFIX}{name}"), reason)))
        .next()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refused(pairs: &[(&str, &str)]) -> Option<String> {
        let annotations = pairs.iter().map(|(k, v)| (format!("{NGINX_PREFIX}{k}"), v.to_string())).collect();
        refusal(&annotations, "apps").map(|(name, _)| name.trim_start_matches(NGINX_PREFIX).to_string())
    }

    #[test]
    fn values_ingress_nginx_validators_refuse() {
        // (annotations, the one refused)
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: &[Case<'_>] = &[
            (&[("auth-type", "basic ")], None),
            (&[("auth-type", "Basic")], Some("auth-type")),
            (&[("auth-type", "basic"), ("auth-realm", "Authentication Required - foo")], None),
            (&[("auth-type", "basic"), ("auth-realm", "Authentication Required!")], Some("auth-realm")),
            (&[("auth-type", "kerberos"), ("auth-realm", "a!")], Some("auth-type")),
            (&[("auth-realm", "a!")], None),
            (&[("auth-type", "digest"), ("auth-secret-type", "htpasswd")], Some("auth-secret-type")),
            (&[("auth-url", "https://auth.example.com/oauth2/auth?rd=$escaped_request_uri")], None),
            (&[("auth-url", "https://auth.example.com/check?next=%2Fhome")], Some("auth-url")),
            (&[("auth-url", "http://[fd00::1]:9000/auth")], Some("auth-url")),
            (&[("ssl-passthrough", "True")], None),
            (&[("ssl-passthrough", "yes")], Some("ssl-passthrough")),
            (&[("http2-push-preload", "on")], Some("http2-push-preload")),
            (&[("client-body-buffer-size", "64k")], None),
            (&[("client-body-buffer-size", "64KB")], Some("client-body-buffer-size")),
            (&[("client-body-buffer-size", "1.5m")], Some("client-body-buffer-size")),
            (&[("default-backend", "error-pages")], None),
            (&[("default-backend", "default/web")], Some("default-backend")),
            (&[("default-backend", "Web_Svc")], Some("default-backend")),
            (&[("upstream-hash-by-subset", "yes")], Some("upstream-hash-by-subset")),
            (&[("upstream-hash-by-subset-size", "3")], None),
            (&[("upstream-hash-by-subset-size", "3.5")], Some("upstream-hash-by-subset-size")),
            (&[("auth-tls-secret", "apps/ca"), ("auth-tls-match-cn", "CN=(alice|bob)")], None),
            (&[("auth-tls-secret", "apps/ca"), ("auth-tls-match-cn", "client.example.com")], Some("auth-tls-match-cn")),
            (&[("auth-tls-secret", "apps/ca"), ("auth-tls-match-cn", "CN=(foo")], Some("auth-tls-match-cn")),
            (&[("auth-tls-secret", "apps/ca"), ("auth-tls-error-page", "https://err.example.com/cert")], None),
            (&[("auth-tls-secret", "apps/ca"), ("auth-tls-error-page", "http://err.example.com:8080/a/b.html")], None),
            (&[("auth-tls-secret", "apps/ca"), ("auth-tls-error-page", "https://err.example.com/cert?reason=mtls")], Some("auth-tls-error-page")),
            (&[("auth-tls-secret", "apps/ca"), ("auth-tls-pass-certificate-to-upstream", "yes")], Some("auth-tls-pass-certificate-to-upstream")),
            // Not read by ingress-nginx before its Secret: a Secret of another namespace is denied first.
            (&[("auth-tls-secret", "other/ca"), ("auth-tls-match-cn", "client.example.com")], None),
            (&[("auth-type", "")], None),
        ];
        for (pairs, expected) in cases {
            assert_eq!(refused(pairs).as_deref(), *expected, "{pairs:?}");
        }
    }
}
