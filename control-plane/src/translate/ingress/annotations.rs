//! ingress-nginx annotations (`nginx.ingress.kubernetes.io/…`) of one Ingress: the ones we apply
//! (`rewrite-target`, `use-regex`) as plain values, and a warning for every other one (recognised
//! but not supported yet, never supported — snippets —, or unknown). Pure; must not decide routes.

use std::collections::BTreeMap;

use crate::model::Severity;

/// The annotation prefix ingress-nginx uses by default.
pub const NGINX_PREFIX: &str = "nginx.ingress.kubernetes.io/";
pub const REWRITE_TARGET: &str = "nginx.ingress.kubernetes.io/rewrite-target";
pub const USE_REGEX: &str = "nginx.ingress.kubernetes.io/use-regex";

/// Annotations ingress-nginx documents that we recognise but do not apply yet.
const NOT_SUPPORTED_YET: &[&str] = &[
    "app-root",
    "affinity",
    "affinity-mode",
    "affinity-canary-behavior",
    "auth-realm",
    "auth-secret",
    "auth-secret-type",
    "auth-type",
    "auth-tls-secret",
    "auth-tls-verify-depth",
    "auth-tls-verify-client",
    "auth-tls-error-page",
    "auth-tls-pass-certificate-to-upstream",
    "auth-url",
    "auth-signin",
    "auth-signin-redirect-param",
    "auth-response-headers",
    "auth-request-redirect",
    "auth-method",
    "auth-cache-key",
    "auth-cache-duration",
    "auth-proxy-set-headers",
    "auth-keepalive",
    "enable-global-auth",
    "backend-protocol",
    "canary",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "canary-by-cookie",
    "canary-weight",
    "canary-weight-total",
    "client-body-buffer-size",
    "custom-http-errors",
    "custom-headers",
    "default-backend",
    "enable-cors",
    "cors-allow-origin",
    "cors-allow-methods",
    "cors-allow-headers",
    "cors-expose-headers",
    "cors-allow-credentials",
    "cors-max-age",
    "force-ssl-redirect",
    "from-to-www-redirect",
    "http2-push-preload",
    "limit-connections",
    "limit-rps",
    "limit-rpm",
    "limit-burst-multiplier",
    "limit-rate",
    "limit-rate-after",
    "limit-whitelist",
    "limit-allowlist",
    "global-rate-limit",
    "global-rate-limit-window",
    "global-rate-limit-key",
    "global-rate-limit-ignored-cidrs",
    "permanent-redirect",
    "permanent-redirect-code",
    "temporal-redirect",
    "temporal-redirect-code",
    "preserve-trailing-slash",
    "proxy-body-size",
    "proxy-cookie-domain",
    "proxy-cookie-path",
    "proxy-connect-timeout",
    "proxy-send-timeout",
    "proxy-read-timeout",
    "proxy-next-upstream",
    "proxy-next-upstream-timeout",
    "proxy-next-upstream-tries",
    "proxy-request-buffering",
    "proxy-redirect-from",
    "proxy-redirect-to",
    "proxy-http-version",
    "proxy-ssl-secret",
    "proxy-ssl-ciphers",
    "proxy-ssl-name",
    "proxy-ssl-protocols",
    "proxy-ssl-verify",
    "proxy-ssl-verify-depth",
    "proxy-ssl-server-name",
    "enable-rewrite-log",
    "satisfy",
    "server-alias",
    "service-upstream",
    "session-cookie-name",
    "session-cookie-path",
    "session-cookie-domain",
    "session-cookie-change-on-failure",
    "session-cookie-samesite",
    "session-cookie-conditional-samesite-none",
    "session-cookie-expires",
    "session-cookie-max-age",
    "session-cookie-secure",
    "ssl-redirect",
    "ssl-passthrough",
    "upstream-hash-by",
    "upstream-hash-by-subset",
    "upstream-hash-by-subset-size",
    "x-forwarded-prefix",
    "load-balance",
    "upstream-vhost",
    "whitelist-source-range",
    "allowlist-source-range",
    "denylist-source-range",
    "proxy-buffering",
    "proxy-buffers-number",
    "proxy-buffer-size",
    "proxy-max-temp-file-size",
    "ssl-ciphers",
    "ssl-prefer-server-ciphers",
    "connection-proxy-header",
    "enable-access-log",
    "enable-opentracing",
    "opentracing-trust-incoming-span",
    "enable-opentelemetry",
    "opentelemetry-trust-incoming-span",
    "enable-influxdb",
    "influxdb-measurement",
    "influxdb-port",
    "influxdb-host",
    "influxdb-server-name",
    "enable-modsecurity",
    "enable-owasp-core-rules",
    "modsecurity-transaction-id",
    "mirror-request-body",
    "mirror-target",
    "mirror-host",
    "ssl-session-reuse",
    "use-proxy-protocol",
    "server-tokens",
];

/// Raw nginx configuration: never supported (this is the injection surface ingress-nginx died of).
const SNIPPETS: &[&str] =
    &["configuration-snippet", "server-snippet", "auth-snippet", "stream-snippet", "modsecurity-snippet"];

/// What the ingress-nginx annotations of one Ingress ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NginxAnnotations {
    /// `rewrite-target` (non-empty).
    pub rewrite_target: Option<String>,
    /// `use-regex: "true"`.
    pub use_regex: bool,
}

/// A problem with one annotation: (annotation key, severity, message).
pub type AnnotationNote = (String, Severity, String);

/// Read the nginx annotations of one Ingress.
pub fn parse(annotations: Option<&BTreeMap<String, String>>) -> (NginxAnnotations, Vec<AnnotationNote>) {
    let mut parsed = NginxAnnotations::default();
    let mut notes = Vec::new();
    for (key, value) in annotations.into_iter().flatten() {
        let Some(name) = key.strip_prefix(NGINX_PREFIX) else { continue };
        match name {
            "rewrite-target" => {
                if !value.is_empty() {
                    parsed.rewrite_target = Some(value.clone());
                }
            }
            "use-regex" => match value.trim() {
                "true" => parsed.use_regex = true,
                "false" => {}
                other => notes.push((
                    key.clone(),
                    Severity::Warning,
                    format!("must be \"true\" or \"false\", not {other:?}; treated as \"false\""),
                )),
            },
            _ if SNIPPETS.contains(&name) => notes.push((
                key.clone(),
                Severity::Warning,
                "raw nginx configuration snippets are never supported; ignored".into(),
            )),
            _ if NOT_SUPPORTED_YET.contains(&name) => {
                notes.push((key.clone(), Severity::Warning, format!("annotation {key} is not supported yet; ignored")))
            }
            _ => {
                notes.push((key.clone(), Severity::Warning, format!("unknown ingress-nginx annotation {key}; ignored")))
            }
        }
    }
    (parsed, notes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn annotations_are_applied_or_reported_by_table() {
        struct Case {
            name: &'static str,
            input: &'static [(&'static str, &'static str)],
            parsed: NginxAnnotations,
            notes: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "rewrite target and use-regex",
                input: &[(REWRITE_TARGET, "/$2"), (USE_REGEX, "true")],
                parsed: NginxAnnotations { rewrite_target: Some("/$2".into()), use_regex: true },
                notes: &[],
            },
            Case {
                name: "empty rewrite target is no rewrite",
                input: &[(REWRITE_TARGET, "")],
                parsed: NginxAnnotations::default(),
                notes: &[],
            },
            Case {
                name: "use-regex false",
                input: &[(USE_REGEX, "false")],
                parsed: NginxAnnotations::default(),
                notes: &[],
            },
            Case {
                name: "use-regex garbage is a warning",
                input: &[(USE_REGEX, "yes")],
                parsed: NginxAnnotations::default(),
                notes: &["nginx.ingress.kubernetes.io/use-regex"],
            },
            Case {
                name: "known but unsupported annotation is a warning",
                input: &[("nginx.ingress.kubernetes.io/proxy-body-size", "8m")],
                parsed: NginxAnnotations::default(),
                notes: &["nginx.ingress.kubernetes.io/proxy-body-size"],
            },
            Case {
                name: "snippet is a warning, never applied",
                input: &[("nginx.ingress.kubernetes.io/configuration-snippet", "more_set_headers x;")],
                parsed: NginxAnnotations::default(),
                notes: &["nginx.ingress.kubernetes.io/configuration-snippet"],
            },
            Case {
                name: "other prefixes are not ours to judge",
                input: &[("kubernetes.io/ingress.class", "wasm"), ("example.com/x", "y")],
                parsed: NginxAnnotations::default(),
                notes: &[],
            },
        ];
        for case in cases {
            let input = annotations(case.input);
            let (parsed, notes) = parse(Some(&input));
            assert_eq!(parsed, case.parsed, "{}", case.name);
            let keys: Vec<_> = notes.iter().map(|(k, _, _)| k.as_str()).collect();
            assert_eq!(keys, case.notes, "{}", case.name);
            assert!(notes.iter().all(|(_, s, _)| *s == Severity::Warning), "{}", case.name);
        }
    }

    #[test]
    fn unsupported_annotation_message_says_ignored() {
        let input = annotations(&[("nginx.ingress.kubernetes.io/ssl-redirect", "true")]);
        let (_, notes) = parse(Some(&input));
        assert_eq!(notes[0].2, "annotation nginx.ingress.kubernetes.io/ssl-redirect is not supported yet; ignored");
    }
}
