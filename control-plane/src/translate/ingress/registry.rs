//! The catalogue of ingress-nginx annotations (`nginx.ingress.kubernetes.io/<name>`): for each name,
//! what this controller does with it. One source of truth for translation (`annotations::parse`),
//! diagnostics, `docs/annotations.md` (checked against it by a test) and `migrate`. Pure data plus lookups; it must not
//! parse values (that is `annotations`).
//!
//! The one rule that matters most here: an annotation of kind [`Support::AccessControl`] restricts
//! who may reach a path. Until it is implemented exactly, an Ingress carrying it is served **closed**
//! (its paths answer 403) — never open. Adding a new access-control annotation to this table makes it
//! fail closed with no other change.

/// What the controller does with one annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Applied with ingress-nginx's semantics.
    Applied,
    /// Applied, with a difference from ingress-nginx that `docs/annotations.md` states (and a
    /// warning diagnostic says when it matters).
    Differs,
    /// Restricts access and is not implemented yet: the Ingress's paths fail closed (403).
    AccessControl,
    /// Recognised, not applied yet; the Ingress is served without it (a warning).
    NotYet,
    /// nginx-only tuning with no Envoy meaning (or that Envoy does differently); accepted, no effect.
    NoEffect,
    /// Raw nginx configuration: never applied (the injection surface ingress-nginx died of). A
    /// snippet that carries access-control directives fails closed (see `annotations`).
    Snippet,
}

impl Support {
    /// The status word of `docs/annotations.md`.
    pub fn label(self) -> &'static str {
        match self {
            Support::Applied => "same",
            Support::Differs => "differs",
            Support::AccessControl => "fails closed",
            Support::NotYet => "not yet",
            Support::NoEffect => "no effect",
            Support::Snippet => "never applied",
        }
    }
}

/// One row of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The annotation name after `nginx.ingress.kubernetes.io/`.
    pub name: &'static str,
    pub support: Support,
}

const fn entry(name: &'static str, support: Support) -> Entry {
    Entry { name, support }
}

use Support::{Applied, Differs, NoEffect, NotYet, Snippet};

/// Every annotation ingress-nginx documents (annotations.md), and the names it still parses or
/// once documented (`allowlist-source-range`, `global-rate-limit*`, …), sorted by name.
pub const REGISTRY: &[Entry] = &[
    entry("affinity", Differs),
    entry("affinity-canary-behavior", Applied),
    entry("affinity-mode", Differs),
    entry("allowlist-source-range", Applied),
    entry("app-root", Applied),
    entry("auth-always-set-cookie", Applied),
    entry("auth-cache-duration", Differs),
    entry("auth-cache-key", Differs),
    entry("auth-keepalive", NoEffect),
    entry("auth-keepalive-requests", NoEffect),
    entry("auth-keepalive-share-vars", NoEffect),
    entry("auth-keepalive-timeout", NoEffect),
    entry("auth-method", Applied),
    entry("auth-proxy-set-headers", Differs),
    entry("auth-realm", Applied),
    entry("auth-request-redirect", Applied),
    entry("auth-response-headers", Applied),
    entry("auth-secret", Applied),
    entry("auth-secret-type", Applied),
    entry("auth-signin", Differs),
    entry("auth-signin-redirect-param", Applied),
    entry("auth-snippet", Snippet),
    entry("auth-tls-error-page", Applied),
    entry("auth-tls-match-cn", Applied),
    entry("auth-tls-pass-certificate-to-upstream", Applied),
    entry("auth-tls-secret", Differs),
    entry("auth-tls-verify-client", Differs),
    entry("auth-tls-verify-depth", Applied),
    entry("auth-type", Differs),
    entry("auth-url", Differs),
    entry("backend-protocol", Differs),
    entry("canary", Applied),
    entry("canary-by-cookie", Applied),
    entry("canary-by-header", Applied),
    entry("canary-by-header-pattern", Differs),
    entry("canary-by-header-value", Applied),
    entry("canary-weight", Applied),
    entry("canary-weight-total", Applied),
    entry("client-body-buffer-size", NoEffect),
    entry("configuration-snippet", Differs),
    entry("connection-proxy-header", Differs),
    entry("cors-allow-credentials", Applied),
    entry("cors-allow-headers", Applied),
    entry("cors-allow-methods", Applied),
    entry("cors-allow-origin", Applied),
    entry("cors-expose-headers", Applied),
    entry("cors-max-age", Applied),
    entry("custom-headers", Differs),
    entry("custom-http-errors", Differs),
    entry("default-backend", Applied),
    entry("denylist-source-range", Applied),
    entry("disable-proxy-intercept-errors", Differs),
    entry("enable-access-log", Differs),
    entry("enable-cors", Differs),
    entry("enable-global-auth", Applied),
    entry("enable-modsecurity", NotYet),
    entry("enable-opentelemetry", Differs),
    entry("enable-opentracing", NotYet),
    entry("enable-owasp-core-rules", NotYet),
    entry("enable-rewrite-log", NoEffect),
    entry("fastcgi-index", NoEffect),
    entry("fastcgi-params-configmap", NoEffect),
    entry("force-ssl-redirect", Applied),
    entry("from-to-www-redirect", Applied),
    entry("global-rate-limit", NotYet),
    entry("global-rate-limit-ignored-cidrs", NotYet),
    entry("global-rate-limit-key", NotYet),
    entry("global-rate-limit-window", NotYet),
    entry("http2-push-preload", NoEffect),
    entry("limit-allowlist", Applied),
    entry("limit-burst-multiplier", Applied),
    entry("limit-connections", Differs),
    entry("limit-rate", NotYet),
    entry("limit-rate-after", NotYet),
    entry("limit-rpm", Differs),
    entry("limit-rps", Differs),
    entry("limit-whitelist", Applied),
    entry("load-balance", Differs),
    entry("mirror-host", Applied),
    entry("mirror-request-body", Differs),
    entry("mirror-target", Differs),
    entry("modsecurity-snippet", Snippet),
    entry("modsecurity-transaction-id", NotYet),
    entry("opentelemetry-trust-incoming-span", Differs),
    entry("opentracing-trust-incoming-span", NotYet),
    entry("permanent-redirect", Applied),
    entry("permanent-redirect-code", Applied),
    entry("preserve-trailing-slash", Applied),
    entry("proxy-body-size", Applied),
    entry("proxy-buffer-size", NoEffect),
    entry("proxy-buffering", NoEffect),
    entry("proxy-buffers-number", NoEffect),
    entry("proxy-busy-buffers-size", NoEffect),
    entry("proxy-connect-timeout", Applied),
    entry("proxy-cookie-domain", Differs),
    entry("proxy-cookie-path", Differs),
    entry("proxy-http-version", Differs),
    entry("proxy-max-temp-file-size", NoEffect),
    entry("proxy-next-upstream", Differs),
    entry("proxy-next-upstream-timeout", Differs),
    entry("proxy-next-upstream-tries", Differs),
    entry("proxy-read-timeout", Applied),
    entry("proxy-redirect-from", Differs),
    entry("proxy-redirect-to", Differs),
    entry("proxy-request-buffering", Differs),
    entry("proxy-send-timeout", Differs),
    entry("proxy-ssl-ciphers", NoEffect),
    entry("proxy-ssl-name", Applied),
    entry("proxy-ssl-protocols", Applied),
    entry("proxy-ssl-secret", Differs),
    entry("proxy-ssl-server-name", Applied),
    entry("proxy-ssl-verify", Differs),
    entry("proxy-ssl-verify-depth", Applied),
    entry("relative-redirects", Applied),
    entry("rewrite-target", Applied),
    entry("satisfy", Differs),
    entry("server-alias", Differs),
    entry("server-snippet", Snippet),
    entry("server-tokens", NoEffect),
    entry("service-upstream", Differs),
    entry("session-cookie-change-on-failure", Differs),
    entry("session-cookie-conditional-samesite-none", Applied),
    entry("session-cookie-domain", Applied),
    entry("session-cookie-expires", Applied),
    entry("session-cookie-max-age", Applied),
    entry("session-cookie-name", Applied),
    entry("session-cookie-path", Applied),
    entry("session-cookie-samesite", Applied),
    entry("session-cookie-secure", Applied),
    entry("ssl-ciphers", Differs),
    entry("ssl-passthrough", Differs),
    entry("ssl-prefer-server-ciphers", Differs),
    entry("ssl-redirect", Applied),
    entry("ssl-session-reuse", NoEffect),
    entry("stream-snippet", Snippet),
    entry("temporal-redirect", Applied),
    entry("temporal-redirect-code", Applied),
    entry("upstream-hash-by", Differs),
    entry("upstream-hash-by-subset", Differs),
    entry("upstream-hash-by-subset-size", Applied),
    entry("upstream-vhost", Applied),
    entry("use-port-in-redirects", Applied),
    entry("use-proxy-protocol", Differs),
    entry("use-regex", Applied),
    entry("whitelist-source-range", Applied),
    entry("x-forwarded-prefix", Applied),
];

/// Names people write under ingress-nginx's prefix that it does not read (removed or renamed
/// annotations, ConfigMap keys, other controllers' annotations), seen in real Ingresses, with
/// what does what they meant. ingress-nginx ignores them too, so they stay ignored here: the hint
/// only tells the user.
const UNKNOWN_HINTS: &[(&str, &str)] = &[
    ("allow-list", "no address list applies, in ingress-nginx either; allowlist-source-range is the annotation"),
    ("client-max-body-size", "an nginx directive, not an annotation; proxy-body-size sets it"),
    ("enable-brotli", "a ConfigMap key in ingress-nginx, serve --enable-brotli here; not per Ingress"),
    ("enable-compression", "not an annotation in ingress-nginx, whose ConfigMap has use-gzip (serve --use-gzip here); not per Ingress"),
    ("error-page", "not an annotation; custom-http-errors with default-backend is"),
    ("grpc-backend", "removed from ingress-nginx; backend-protocol: GRPC replaces it"),
    ("rate-limit", "no limit applies, in ingress-nginx either; limit-rps, limit-rpm and limit-connections are the annotations"),
    ("rate-limit-connections", "no limit applies, in ingress-nginx either; limit-connections is the annotation"),
    ("rate-limit-status-code", "ingress-nginx has limit-req-status-code in its ConfigMap instead; limits answer 503 here"),
    ("rate-limit-window", "no limit applies, in ingress-nginx either; limit-rps and limit-rpm are the annotations"),
    ("secure-backends", "removed from ingress-nginx; backend-protocol: HTTPS replaces it"),
    ("ssl-protocols", "a ConfigMap key in ingress-nginx; serve --tls-min-version sets the HTTPS listener's"),
    ("upstream-keepalive-connections", "a ConfigMap key in ingress-nginx; Envoy pools upstream connections on its own"),
    ("upstream-keepalive-requests", "a ConfigMap key in ingress-nginx; Envoy pools upstream connections on its own"),
    ("upstream-keepalive-timeout", "a ConfigMap key in ingress-nginx; Envoy pools upstream connections on its own"),
    ("websocket-services", "NGINX Inc.'s controller's annotation; WebSockets need none here, nor in ingress-nginx"),
];

/// What a name ingress-nginx does not read was probably meant to do, if it is a known one
/// (`healthcheck-*`: Kubernetes readiness decides which endpoints get requests).
pub fn unknown_hint(name: &str) -> Option<&'static str> {
    if name.starts_with("healthcheck-") {
        return Some("not read by ingress-nginx; endpoints get requests while their Pods are ready, as EndpointSlices say");
    }
    UNKNOWN_HINTS.binary_search_by(|(known, _)| known.cmp(&name)).ok().map(|i| UNKNOWN_HINTS[i].1)
}

/// The catalogue entry for an annotation name (after the prefix), if ingress-nginx documents it.
pub fn lookup(name: &str) -> Option<&'static Entry> {
    REGISTRY.binary_search_by(|entry| entry.name.cmp(name)).ok().map(|i| &REGISTRY[i])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_sorted_without_duplicates_so_lookup_finds_every_row() {
        for pair in REGISTRY.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} must sort before {}", pair[0].name, pair[1].name);
        }
        for entry in REGISTRY {
            assert_eq!(lookup(entry.name), Some(entry));
        }
        assert_eq!(lookup("no-such-annotation"), None);
    }

    /// Every name ingress-nginx's `docs/user-guide/nginx-configuration/annotations.md` uses (its
    /// table and its body, as of its last release, March 2026).
    const INGRESS_NGINX_DOCUMENTED: &[&str] = &[
        "affinity", "affinity-canary-behavior", "affinity-mode", "app-root", "auth-always-set-cookie",
        "auth-cache-duration", "auth-cache-key", "auth-keepalive", "auth-keepalive-requests",
        "auth-keepalive-share-vars", "auth-keepalive-timeout", "auth-method", "auth-proxy-set-headers",
        "auth-realm", "auth-request-redirect", "auth-response-headers", "auth-secret", "auth-secret-type",
        "auth-signin", "auth-signin-redirect-param", "auth-snippet", "auth-tls-error-page",
        "auth-tls-match-cn", "auth-tls-pass-certificate-to-upstream", "auth-tls-secret",
        "auth-tls-verify-client", "auth-tls-verify-depth", "auth-type", "auth-url", "backend-protocol",
        "canary", "canary-by-cookie", "canary-by-header", "canary-by-header-pattern",
        "canary-by-header-value", "canary-weight", "canary-weight-total", "client-body-buffer-size",
        "configuration-snippet", "connection-proxy-header", "cors-allow-credentials", "cors-allow-headers",
        "cors-allow-methods", "cors-allow-origin", "cors-expose-headers", "cors-max-age", "custom-headers",
        "custom-http-errors", "default-backend", "denylist-source-range", "enable-access-log", "enable-cors",
        "enable-global-auth", "enable-modsecurity", "enable-opentelemetry", "enable-owasp-core-rules",
        "enable-rewrite-log", "force-ssl-redirect", "from-to-www-redirect", "http2-push-preload",
        "limit-burst-multiplier", "limit-connections", "limit-rate", "limit-rate-after", "limit-rpm",
        "limit-rps", "limit-whitelist", "load-balance", "mirror-host", "mirror-request-body", "mirror-target",
        "modsecurity-snippet", "modsecurity-transaction-id", "opentelemetry-trust-incoming-span",
        "permanent-redirect", "permanent-redirect-code", "preserve-trailing-slash", "proxy-body-size",
        "proxy-buffer-size", "proxy-buffering", "proxy-buffers-number", "proxy-busy-buffers-size",
        "proxy-connect-timeout", "proxy-cookie-domain", "proxy-cookie-path", "proxy-http-version",
        "proxy-max-temp-file-size", "proxy-next-upstream", "proxy-next-upstream-timeout",
        "proxy-next-upstream-tries", "proxy-read-timeout", "proxy-redirect-from", "proxy-redirect-to",
        "proxy-request-buffering", "proxy-send-timeout", "proxy-ssl-ciphers", "proxy-ssl-name",
        "proxy-ssl-protocols", "proxy-ssl-secret", "proxy-ssl-server-name", "proxy-ssl-verify",
        "proxy-ssl-verify-depth", "rewrite-target", "satisfy", "server-alias", "server-snippet",
        "service-upstream", "session-cookie-change-on-failure", "session-cookie-conditional-samesite-none",
        "session-cookie-domain", "session-cookie-expires", "session-cookie-max-age", "session-cookie-name",
        "session-cookie-path", "session-cookie-samesite", "session-cookie-secure", "ssl-ciphers",
        "ssl-passthrough", "ssl-prefer-server-ciphers", "ssl-redirect", "stream-snippet", "temporal-redirect",
        "temporal-redirect-code", "upstream-hash-by", "upstream-hash-by-subset",
        "upstream-hash-by-subset-size", "upstream-vhost", "use-regex", "whitelist-source-range",
        "x-forwarded-prefix",
    ];

    #[test]
    fn every_annotation_ingress_nginx_documents_has_a_row() {
        let missing: Vec<&str> = INGRESS_NGINX_DOCUMENTED.iter().copied().filter(|name| lookup(name).is_none()).collect();
        assert!(missing.is_empty(), "not in the registry: {missing:?}");
    }

    #[test]
    fn hints_are_for_names_ingress_nginx_does_not_read() {
        assert!(UNKNOWN_HINTS.windows(2).all(|pair| pair[0].0 < pair[1].0), "sorted for the binary search");
        for (name, _) in UNKNOWN_HINTS {
            assert!(lookup(name).is_none(), "{name} is a real annotation");
            assert!(unknown_hint(name).is_some(), "{name}");
        }
        assert!(unknown_hint("healthcheck-path").is_some_and(|h| h.contains("ready")));
        assert_eq!(unknown_hint("made-up"), None);
    }

    #[test]
    fn docs_annotations_match_the_registry() {
        let doc = include_str!("../../../../docs/annotations.md");
        // The annotation table ends where the page's next section begins.
        let table = doc.split("\n## ").next().unwrap_or_default();
        let documented: Vec<(&str, &str)> = table
            .lines()
            .filter_map(|line| {
                let (name, rest) = line.strip_prefix("| `")?.split_once("` | ")?;
                Some((name, rest.split_once(" |")?.0))
            })
            .collect();
        let registry: Vec<(&str, &str)> = REGISTRY.iter().map(|e| (e.name, e.support.label())).collect();
        assert_eq!(documented, registry, "docs/annotations.md and the registry disagree");
    }

    #[test]
    fn every_access_restricting_family_fails_closed() {
        // Enforced by the filter's auth request (see `auth`), `satisfy` by the filter too.
        for name in ["satisfy", "auth-url", "auth-signin", "auth-response-headers", "auth-proxy-set-headers", "auth-type", "auth-secret"] {
            assert!(matches!(lookup(name).map(|e| e.support), Some(Support::Applied | Support::Differs)), "{name}");
        }
        // Enforced (Envoy RBAC), so no longer failing closed.
        for name in ["whitelist-source-range", "allowlist-source-range", "denylist-source-range"] {
            assert_eq!(lookup(name).map(|e| e.support), Some(Support::Applied), "{name}");
        }
        // Enforced by Envoy's handshake and the filter (see `auth_tls`).
        for name in ["auth-tls-secret", "auth-tls-verify-client", "auth-tls-verify-depth", "auth-tls-error-page", "auth-tls-match-cn"] {
            assert!(matches!(lookup(name).map(|e| e.support), Some(Support::Applied | Support::Differs)), "{name}");
        }
    }
}
