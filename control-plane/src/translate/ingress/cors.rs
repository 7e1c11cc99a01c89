//! ingress-nginx CORS annotations (`enable-cors`, `cors-allow-origin`, `-methods`, `-headers`,
//! `-credentials`, `-expose-headers`, `-max-age`), read as its `cors` parser reads them and turned
//! into what its template does:
//! - `cors-allow-origin: *` (the default, and what an invalid list falls back to) makes *every*
//!   request a CORS request, with or without `Origin`: `Access-Control-Allow-Origin: *` on every
//!   response and 204 for every `OPTIONS` request;
//! - a list is matched case-insensitively against `Origin`, each entry anchored at the end only
//!   (its template's `~* (…)$`), `*.` standing for one DNS label; an allowed `Origin` is echoed;
//! - a value that fails a check falls back to ingress-nginx's default (`*`, the default methods and
//!   headers, credentials `true`, max-age 1728000, no expose header); a list whose every entry is
//!   refused turns CORS off.
//!
//! The filter picks the policy (see `wasm_ingress_filter::cors`); Envoy's route adds the headers
//! or answers the preflight. Pure.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use wasm_ingress_filter::limits::answer_header_value_ok;
use wasm_ingress_filter::table::{AnswerHeader, Cors};

use crate::model::{AllowOrigin, CorsHeaders, RoutePolicy, Severity};

use super::annotations::AnnotationNote;
use super::behaviour::Reader;

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &[
    "cors-allow-credentials",
    "cors-allow-headers",
    "cors-allow-methods",
    "cors-allow-origin",
    "cors-expose-headers",
    "cors-max-age",
    "enable-cors",
];

const DEFAULT_METHODS: &str = "GET, PUT, POST, DELETE, PATCH, OPTIONS";
const DEFAULT_HEADERS: &str = "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization";
const DEFAULT_MAX_AGE: u64 = 1_728_000;

// ingress-nginx's validators (internal/ingress/annotations/cors/main.go, parser/validators.go).
// Constant patterns: `None` only if one did not compile, which a test rules out.
type Validator = LazyLock<Option<Regex>>;
static ORIGIN_LIST: Validator = LazyLock::new(|| Regex::new(r"^((((([a-z]+://)?(\*\.)?[A-Za-z0-9\-.]*(:\d+)?,?)|null)+)|\*)?$").ok());
static ORIGIN: Validator = LazyLock::new(|| Regex::new(r"^([a-z]+://(\*\.)?[A-Za-z0-9\-.]*(:\d+)?|\*|null)?$").ok());
static METHODS: Validator = LazyLock::new(|| Regex::new(r"^([A-Za-z]+,?\s?)+$").ok());
static HEADERS: Validator = LazyLock::new(|| Regex::new(r"^[A-Za-z0-9\-_, ]*$").ok());
static EXPOSE: Validator = LazyLock::new(|| Regex::new(r"^(([A-Za-z0-9\-_]+|\*),?\s?)+$").ok());

fn passes(validator: &Validator, value: &str) -> bool {
    validator.as_ref().is_some_and(|regex| regex.is_match(value)) && !value.contains(['\r', '\n'])
}

/// What the CORS annotations of one Ingress ask for (`enable-cors: "true"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    /// `None`: any origin (`*`); else the allowed origins, as written.
    pub origins: Option<Vec<String>>,
    pub headers: CorsHeaders,
}

/// The CORS configuration of an Ingress, `None` without `enable-cors: "true"` (or when every
/// listed origin was refused).
pub fn parse(annotations: &BTreeMap<String, String>) -> (Option<CorsConfig>, Vec<AnnotationNote>) {
    let mut reader = Reader::new(annotations);
    if !reader.boolean("enable-cors").unwrap_or(false) {
        return (None, reader.notes);
    }
    let origins = origins(&mut reader);
    let allow_methods = checked(&mut reader, "cors-allow-methods", &METHODS, DEFAULT_METHODS);
    let allow_headers = checked(&mut reader, "cors-allow-headers", &HEADERS, DEFAULT_HEADERS);
    let expose_headers = checked(&mut reader, "cors-expose-headers", &EXPOSE, "");
    let allow_credentials = reader.boolean("cors-allow-credentials").unwrap_or(true);
    let max_age = reader.integer("cors-max-age").unwrap_or(DEFAULT_MAX_AGE);
    let config = origins.map(|origins| CorsConfig {
        headers: CorsHeaders {
            allow_origin: if origins.is_some() { AllowOrigin::RequestOrigin } else { AllowOrigin::Any },
            allow_credentials,
            allow_methods,
            allow_headers,
            expose_headers,
            max_age,
        },
        origins,
    });
    (config, reader.notes)
}

/// `cors-allow-origin`: `Some(None)` any, `Some(Some(list))` those, `None` CORS off (every entry
/// refused).
fn origins(reader: &mut Reader<'_>) -> Option<Option<Vec<String>>> {
    let Some(value) = reader.get("cors-allow-origin").filter(|v| !v.trim().is_empty()) else { return Some(None) };
    if !passes(&ORIGIN_LIST, &value.replace(' ', "")) {
        reader.note("cors-allow-origin", Severity::Warning, format!("{value:?} is not a list of origins; \"*\" applies (as ingress-nginx)"));
        return Some(None);
    }
    let mut list = Vec::new();
    for origin in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        if origin == "*" {
            return Some(None);
        }
        if passes(&ORIGIN, origin) {
            list.push(origin.to_string());
        } else {
            reader.note("cors-allow-origin", Severity::Warning, format!("origin {origin:?} needs a scheme (https://…); skipped (as ingress-nginx)"));
        }
    }
    if list.is_empty() {
        reader.note("cors-allow-origin", Severity::Warning, "no usable origin; CORS is off for this Ingress (as ingress-nginx)".into());
        return None;
    }
    Some(Some(list))
}

/// An annotation checked against ingress-nginx's validator, else `default` (with a warning).
fn checked(reader: &mut Reader<'_>, name: &str, check: &Validator, default: &str) -> String {
    let Some(value) = reader.get(name).map(str::trim).filter(|v| !v.is_empty()) else { return default.to_string() };
    if passes(check, value) {
        return value.to_string();
    }
    reader.note(name, Severity::Warning, format!("{value:?} is not accepted; the default {default:?} applies (as ingress-nginx)"));
    default.to_string()
}

/// The origin regex of ingress-nginx's template: `(?i)((o1)|(o2))$`, each origin quoted and its
/// first `*` one DNS label. Not anchored at the start, as ingress-nginx's is not.
pub fn origin_pattern(origins: &[String]) -> String {
    let alternatives: Vec<String> =
        origins.iter().map(|origin| format!("({})", regex::escape(origin).replacen(r"\*", r"[A-Za-z0-9\-]+", 1))).collect();
    format!("(?i)({})$", alternatives.join("|"))
}

/// The CORS rule of a route whose own policy is `base`, registering its two policies with
/// `register` (which returns a policy's key).
pub fn route_rule(config: &CorsConfig, base: &RoutePolicy, mut register: impl FnMut(RoutePolicy) -> String) -> Cors {
    let with_cors = RoutePolicy { cors: Some(config.headers.clone()), ..base.clone() };
    // nginx answers a preflight in its rewrite phase (ingress-nginx's CORS `return 204`), before
    // its access phase: `limit_req` does not count it and the address lists (`allow`/`deny`) do
    // not refuse it. Envoy answers it itself, so no request reaches the backend.
    let preflight = RoutePolicy { preflight: true, rate_limit: None, allow_sources: Vec::new(), deny_sources: Vec::new(), ..with_cors.clone() };
    let entries = config.headers.entries();
    Cors {
        origin_pattern: config.origins.as_deref().map(origin_pattern),
        policy: register(with_cors),
        preflight_policy: register(preflight),
        answer_headers: entries
            .iter()
            .filter_map(|(name, value)| value.as_ref().filter(|v| answer_header_value_ok(v)).map(|v| AnswerHeader { name: name.to_string(), value: v.clone() }))
            .collect(),
        echo_origin: entries.iter().any(|(_, value)| value.is_none()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Option<CorsConfig> {
        let mut annotations: BTreeMap<String, String> =
            pairs.iter().map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), v.to_string())).collect();
        annotations.insert("nginx.ingress.kubernetes.io/enable-cors".into(), "true".into());
        parse(&annotations).0
    }

    fn origins(value: &str) -> Option<Option<Vec<String>>> {
        if value.is_empty() {
            return read(&[]).map(|c| c.origins);
        }
        read(&[("cors-allow-origin", value)]).map(|c| c.origins)
    }

    fn list(items: &[&str]) -> Option<Option<Vec<String>>> {
        Some(Some(items.iter().map(|s| s.to_string()).collect()))
    }

    /// Cases of ingress-nginx's test/e2e/annotations/cors.go and its parser.
    #[test]
    fn origins_read_like_ingress_nginx() {
        let rows: &[(&str, Option<Option<Vec<String>>>)] = &[
            ("", Some(None)),
            ("      ", Some(None)),
            ("*", Some(None)),
            ("*, foo.bar.com", Some(None)),
            ("https://origin.cors.com:8080, https://origin2.cors.com", list(&["https://origin.cors.com:8080", "https://origin2.cors.com"])),
            ("origin.cors.com:8080, https://origin2.cors.com, https://origin.com", list(&["https://origin2.cors.com", "https://origin.com"])),
            ("https://a.com:8080,   ,https://b.com:8080,", list(&["https://a.com:8080", "https://b.com:8080"])),
            ("test://localhost, tauri://localhost:3000", list(&["test://localhost", "tauri://localhost:3000"])),
            ("http://*.origin.cors.com", list(&["http://*.origin.cors.com"])),
            ("https://b.com/", Some(None)),
            ("HTTPS://b.com", Some(None)),
            ("foo.com", None),
        ];
        for (value, expected) in rows {
            assert_eq!(&origins(value), expected, "{value:?}");
        }
    }

    #[test]
    fn the_validators_compile() {
        for validator in [&ORIGIN_LIST, &ORIGIN, &METHODS, &HEADERS, &EXPOSE] {
            assert!(validator.is_some());
        }
    }

    #[test]
    fn origin_patterns_match_like_the_template() {
        let pattern = Regex::new(&origin_pattern(&[
            "https://origin.cors.com:8080".into(),
            "http://*.origin.com:8080".into(),
            "https://foo.bar.com".into(),
        ]))
        .unwrap();
        let rows = [
            ("https://origin.cors.com:8080", true),
            ("HTTPS://ORIGIN.CORS.COM:8080", true),
            ("https://origin.cors.com", false),
            ("http://abc.origin.com:8080", true),
            ("http://abc.origin.com", false),
            ("http://origin.com:8080", false),
            ("http://a.b.origin.com:8080", false), // `*.` is one label
            ("https://fooxbar.com", false),
            ("https://evil.example/https://foo.bar.com", true), // not anchored at the start, as ingress-nginx
        ];
        for (origin, allowed) in rows {
            assert_eq!(pattern.is_match(origin), allowed, "{origin}");
        }
    }

    #[test]
    fn other_values_fall_back_to_ingress_nginx_defaults() {
        let config = read(&[]).unwrap();
        assert_eq!(config.headers.allow_methods, DEFAULT_METHODS);
        assert_eq!(config.headers.allow_headers, DEFAULT_HEADERS);
        assert!(config.headers.allow_credentials);
        assert_eq!((config.headers.expose_headers.as_str(), config.headers.max_age), ("", DEFAULT_MAX_AGE));
        let config = read(&[
            ("cors-allow-methods", "POST, GET"),
            ("cors-allow-headers", "DNT, User-Agent"),
            ("cors-expose-headers", "X-CustomResponseHeader, X-CustomSecondHeader"),
            ("cors-allow-credentials", "false"),
            ("cors-max-age", "200"),
        ])
        .unwrap();
        assert_eq!(config.headers.allow_methods, "POST, GET");
        assert_eq!(config.headers.allow_headers, "DNT, User-Agent");
        assert_eq!(config.headers.expose_headers, "X-CustomResponseHeader, X-CustomSecondHeader");
        assert!(!config.headers.allow_credentials);
        assert_eq!(config.headers.max_age, 200);
        let bad = read(&[("cors-allow-methods", "GET;drop"), ("cors-allow-headers", "*"), ("cors-expose-headers", "a\"b")]).unwrap();
        assert_eq!((bad.headers.allow_methods.as_str(), bad.headers.allow_headers.as_str()), (DEFAULT_METHODS, DEFAULT_HEADERS));
        assert_eq!(bad.headers.expose_headers, "");
    }

    #[test]
    fn the_filter_gets_the_cors_headers_for_its_own_answers() {
        let names = |cors: &Cors| cors.answer_headers.iter().map(|h| h.name.clone()).collect::<Vec<_>>();
        let listed = route_rule(&read(&[("cors-allow-origin", "https://a.example"), ("cors-allow-credentials", "true")]).unwrap(), &RoutePolicy::default(), |_| "k".into());
        assert!(listed.echo_origin, "the allowed Origin is echoed");
        let expected = ["access-control-allow-credentials", "access-control-allow-methods", "access-control-allow-headers", "access-control-max-age"];
        assert_eq!(names(&listed), expected);
        let any = route_rule(&read(&[]).unwrap(), &RoutePolicy::default(), |_| "k".into());
        assert!(!any.echo_origin);
        assert_eq!(any.answer_headers.first(), Some(&AnswerHeader { name: "access-control-allow-origin".into(), value: "*".into() }));
    }

    #[test]
    fn a_preflight_is_answered_before_the_address_lists_and_the_rate_limit() {
        let cidr = |text: &str| crate::model::Cidr::parse(text).unwrap();
        let rate_limit = crate::model::ClientRateLimit { zone: "default/app".into(), requests: 1, per_minute: false, burst: 1, exempt: Vec::new(), status: 503 };
        let base = RoutePolicy { allow_sources: vec![cidr("10.0.0.0/8")], deny_sources: vec![cidr("10.9.0.0/16")], rate_limit: Some(rate_limit), ..RoutePolicy::default() };
        let mut registered = Vec::new();
        let rule = route_rule(&read(&[]).unwrap(), &base, |policy| {
            registered.push(policy);
            registered.len().to_string()
        });
        let (with_cors, preflight) = (&registered[0], &registered[1]);
        assert_eq!((rule.policy.as_str(), rule.preflight_policy.as_str()), ("1", "2"));
        assert_eq!((&with_cors.allow_sources, &with_cors.deny_sources), (&base.allow_sources, &base.deny_sources), "requests keep the lists");
        assert!(with_cors.rate_limit.is_some() && !with_cors.preflight);
        assert!(preflight.preflight && preflight.allow_sources.is_empty() && preflight.deny_sources.is_empty() && preflight.rate_limit.is_none());
        assert_eq!(preflight.cors, with_cors.cors);
    }
}
