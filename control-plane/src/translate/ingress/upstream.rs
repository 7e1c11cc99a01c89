//! The ingress-nginx annotations that say how to speak to the backend: `backend-protocol`,
//! `proxy-ssl-secret` / `-verify` / `-verify-depth` / `-name` / `-server-name` / `-protocols`,
//! `proxy-connect-timeout`, `proxy-http-version` and
//! `service-upstream`. They become the Ingress's [`UpstreamOptions`], so each distinct way of
//! reaching a Service port is its own Envoy cluster (`translate::clusters`). `default-backend` names
//! the Service that answers when a path's own Service has no ready endpoints (`backends`).
//!
//! Semantics are ingress-nginx's (docs/research/ingress-nginx-upstream.md has the sources):
//! - `backend-protocol` is read upper-cased; HTTPS and GRPCS speak TLS without SNI and without
//!   checking the certificate, as nginx's `proxy_ssl_verify off` default; GRPC and GRPCS speak
//!   HTTP/2. An unknown value keeps HTTP, with a warning.
//! - the `proxy-ssl-*` annotations mean nothing without `proxy-ssl-secret`; a secret that cannot
//!   be read denies the Ingress's locations (503), as ingress-nginx does.
//!
//! Pure: annotation values and the Secrets of `ClusterState` in, options and notes out.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::{Severity, TlsCertificate, TlsVersions, UpstreamOptions, UpstreamTls, UpstreamVerification};
use crate::state::{ClusterState, ObjectKey};

use super::annotations::{AnnotationNote, NGINX_PREFIX};
use super::behaviour::{go_bool, NginxDefaults, Reader};
use super::tls;

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &[
    "backend-protocol",
    "custom-http-errors",
    "default-backend",
    "disable-proxy-intercept-errors",
    "proxy-connect-timeout",
    "proxy-http-version",
    "proxy-ssl-name",
    "proxy-ssl-protocols",
    "proxy-ssl-secret",
    "proxy-ssl-server-name",
    "proxy-ssl-verify",
    "proxy-ssl-verify-depth",
    "service-upstream",
];

/// ingress-nginx's `backend-protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendProtocol {
    #[default]
    Http,
    Https,
    /// The client's scheme: served here as HTTP (see `docs/annotations.md`).
    AutoHttp,
    Grpc,
    Grpcs,
    /// FastCGI: Envoy has no FastCGI client; the paths answer 503.
    Fcgi,
}

impl BackendProtocol {
    fn parse(value: &str) -> Option<BackendProtocol> {
        Some(match value.trim().to_ascii_uppercase().as_str() {
            "HTTP" => BackendProtocol::Http,
            "HTTPS" => BackendProtocol::Https,
            "AUTO_HTTP" => BackendProtocol::AutoHttp,
            "GRPC" => BackendProtocol::Grpc,
            "GRPCS" => BackendProtocol::Grpcs,
            "FCGI" => BackendProtocol::Fcgi,
            _ => return None,
        })
    }

    /// GRPC and GRPCS stream in both directions: no request buffering, no body limit.
    pub fn streams(self) -> bool {
        matches!(self, BackendProtocol::Grpc | BackendProtocol::Grpcs)
    }
}

/// `proxy-ssl-*`, present when `proxy-ssl-secret` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySsl {
    /// The Secret with ca.crt (and optionally tls.crt/tls.key for a client certificate), as
    /// written: `namespace/name`, the namespace the Ingress's (anything else is denied).
    pub secret: String,
    /// `proxy-ssl-verify: on`.
    pub verify: bool,
    /// `proxy-ssl-verify-depth` (default 1).
    pub verify_depth: u32,
    /// `proxy-ssl-name`: the name checked (and sent as SNI with `proxy-ssl-server-name: on`).
    pub name: Option<String>,
    /// `proxy-ssl-server-name: on`.
    pub server_name: bool,
    /// `proxy-ssl-protocols` (default TLSv1.2 only, as ingress-nginx).
    pub protocols: TlsVersions,
}

/// What these annotations ask of one Ingress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upstream {
    pub protocol: BackendProtocol,
    /// `proxy-connect-timeout`, seconds.
    pub connect_timeout: Option<u64>,
    pub ssl: Option<ProxySsl>,
    /// `service-upstream: "true"`: the Service's cluster IP is the only endpoint; `None`: the
    /// `--service-upstream` default.
    pub service_upstream: Option<bool>,
    /// `default-backend`: a Service of the Ingress's namespace (its first port) that answers for a
    /// backend without ready endpoints, spoken to as the backend would be (ingress-nginx copies the
    /// backend's upstream and swaps its endpoints).
    pub default_backend: Option<String>,
    /// `custom-http-errors`: statuses answered by the default backend's error page, sorted.
    pub custom_http_errors: Vec<u16>,
    /// `custom-http-errors` of the Ingress's own, or its interception turned off: its paths do
    /// not take `--custom-http-errors` (nginx's `error_page` at the `http` level, which only a
    /// location without its own inherits).
    pub no_global_errors: bool,
    /// (annotation, reason) of a value ingress-nginx rejects the Ingress for.
    pub refused: Option<(String, String)>,
}

impl Upstream {
    /// `proxy-connect-timeout`, or the `--proxy-connect-timeout` default.
    pub fn connect_timeout(&self, defaults: &NginxDefaults) -> Duration {
        self.connect_timeout.map_or_else(|| defaults.connect_timeout(), Duration::from_secs)
    }

    /// Read the family from the annotations of an Ingress.
    pub fn parse(annotations: &BTreeMap<String, String>) -> (Upstream, Vec<AnnotationNote>) {
        let mut reader = Reader::new(annotations);
        let protocol = match trimmed(&reader, "backend-protocol") {
            None => BackendProtocol::Http,
            Some(value) => match BackendProtocol::parse(&value) {
                Some(BackendProtocol::AutoHttp) => {
                    reader.note("backend-protocol", Severity::Warning, "AUTO_HTTP: the backend is spoken to over HTTP whatever the client's scheme (ingress-nginx follows the client's scheme)".into());
                    BackendProtocol::AutoHttp
                }
                Some(BackendProtocol::Fcgi) => {
                    reader.note("backend-protocol", Severity::Error, "FCGI: Envoy has no FastCGI client; the Ingress's paths answer 503".into());
                    BackendProtocol::Fcgi
                }
                Some(protocol) => protocol,
                None => {
                    reader.note("backend-protocol", Severity::Warning, format!("{value:?} is not one of HTTP, HTTPS, AUTO_HTTP, GRPC, GRPCS, FCGI; HTTP applies, as in ingress-nginx"));
                    BackendProtocol::Http
                }
            },
        };
        let connect_timeout = reader.seconds("proxy-connect-timeout");
        if let Some(version) = trimmed(&reader, "proxy-http-version") {
            let message = match version.as_str() {
                "1.1" => None,
                "1.0" => Some("1.0: Envoy speaks HTTP/1.1 to backends; the request is sent as HTTP/1.1".to_string()),
                other => Some(format!("{other:?} is not 1.0 or 1.1; HTTP/1.1 applies")),
            };
            if let Some(message) = message {
                reader.note("proxy-http-version", Severity::Warning, message);
            }
        }
        // ingress-nginx's parser returns its failed parse's `false` for a value that is not a
        // boolean (only a missing annotation takes the ConfigMap default).
        let service_upstream = reader.get("service-upstream").map(str::trim).map(|value| {
            go_bool(value).unwrap_or_else(|| {
                reader.note("service-upstream", Severity::Warning, format!("must be \"true\" or \"false\", not {value:?}; read as \"false\", as ingress-nginx reads it"));
                false
            })
        });
        let default_backend = trimmed(&reader, "default-backend").filter(|v| !v.is_empty());
        let (mut custom_http_errors, refused) = match parse_error_codes(&mut reader) {
            Ok(codes) => (codes, None),
            Err(reason) => (Vec::new(), Some((format!("{NGINX_PREFIX}custom-http-errors"), reason))),
        };
        // nginx's `proxy_intercept_errors off`: the backend's own error answers pass through.
        let intercepts = reader.boolean("disable-proxy-intercept-errors") != Some(true);
        if !intercepts {
            custom_http_errors.clear();
        }
        let no_global_errors = !intercepts || !custom_http_errors.is_empty();
        let ssl = parse_proxy_ssl(&mut reader);
        let upstream = Upstream { protocol, connect_timeout, ssl, service_upstream, default_backend, custom_http_errors, no_global_errors, refused };
        (upstream, reader.notes)
    }

    /// The cluster options of an Ingress in `namespace` under `defaults`, reading
    /// `proxy-ssl-secret` from `state`; a client certificate found there is added to
    /// `certificates` (SDS). `Err`: why the Ingress's locations are denied.
    pub fn options(
        &self,
        state: &ClusterState,
        namespace: &str,
        defaults: &NginxDefaults,
        certificates: &mut BTreeMap<String, TlsCertificate>,
    ) -> Result<UpstreamOptions, String> {
        let tls = matches!(self.protocol, BackendProtocol::Https | BackendProtocol::Grpcs);
        let mut options = UpstreamOptions {
            http2: matches!(self.protocol, BackendProtocol::Grpc | BackendProtocol::Grpcs),
            tls: None,
            connect_timeout: self.connect_timeout(defaults),
            service_upstream: self.service_upstream.unwrap_or(defaults.service_upstream),
            // From `load-balance` / affinity, by the caller (see `balance`).
            balance: Default::default(),
        };
        // ingress-nginx reads (and denies on) the Secret whatever the protocol.
        let ssl = match &self.ssl {
            Some(ssl) => Some(proxy_ssl_tls(ssl, state, namespace)?),
            None => None,
        };
        if tls {
            let mut upstream_tls = match ssl {
                Some((upstream_tls, client)) => {
                    certificates.extend(client);
                    upstream_tls
                }
                None => UpstreamTls::default(),
            };
            if self.protocol == BackendProtocol::Grpcs {
                upstream_tls.alpn = vec!["h2".into()];
            }
            options.tls = Some(upstream_tls);
        }
        Ok(options)
    }
}

/// A value, trimmed.
fn trimmed(reader: &Reader<'_>, name: &str) -> Option<String> {
    reader.get(name).map(|v| v.trim().to_string())
}

/// `on` / `off` (case-sensitive, as ingress-nginx); anything else is `off`, warned.
fn on_off(reader: &mut Reader<'_>, name: &str) -> bool {
    match reader.get(name).map(str::trim) {
        None | Some("off") => false,
        Some("on") => true,
        Some(other) => {
            let other = other.to_string();
            reader.note(name, Severity::Warning, format!("{other:?} is not \"on\" or \"off\"; \"off\" applies"));
            false
        }
    }
}

/// `custom-http-errors` as ingress-nginx reads it: its validator (`^(?:[4,5]\d{2},?)*$` once
/// spaces are removed) refuses the Ingress (`Err`: the reason); then each comma-separated code,
/// trimmed, must be a number, else the annotation is ignored (a warning), as there; a number
/// nginx's `error_page` refuses (outside 300–599: `404503`) fails nginx's configuration test, so
/// ingress-nginx's admission rejects the Ingress (`Err`). An empty value is ignored.
fn parse_error_codes(reader: &mut Reader<'_>) -> Result<Vec<u16>, String> {
    let Some(value) = reader.get("custom-http-errors").map(str::to_string) else { return Ok(Vec::new()) };
    if !error_codes_validate(value.replace(' ', "").as_bytes()) {
        return Err(format!("{value:?} is not a comma-separated list of 4xx and 5xx codes"));
    }
    let mut codes = Vec::new();
    for code in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        match code.parse::<u64>() {
            Ok(number) => match u16::try_from(number).ok().filter(|n| (300..=599).contains(n)) {
                Some(number) => codes.push(number),
                None => return Err(format!("{number} is not a status nginx's error_page takes (300-599)")),
            },
            Err(_) => {
                reader.note("custom-http-errors", Severity::Warning, format!("{code:?} is not a number; ignored, as ingress-nginx ignores the annotation"));
                return Ok(Vec::new());
            }
        }
    }
    if codes.is_empty() {
        reader.note("custom-http-errors", Severity::Warning, "empty; ignored, as ingress-nginx ignores it".into());
    }
    codes.sort_unstable();
    codes.dedup();
    Ok(codes)
}

/// Whether `compact` matches `^(?:[4,5]\d{2},?)*$` (a class that takes `,` too, as written):
/// the positions each token can end at, from the start.
fn error_codes_validate(compact: &[u8]) -> bool {
    let mut reachable = vec![false; compact.len() + 1];
    reachable[0] = true;
    for start in 0..compact.len() {
        let token = compact.get(start..start + 3);
        let Some(&[first, a, b]) = token else { continue };
        if !reachable[start] || !matches!(first, b'4' | b'5' | b',') || !a.is_ascii_digit() || !b.is_ascii_digit() {
            continue;
        }
        reachable[start + 3] = true;
        if compact.get(start + 3) == Some(&b',') {
            reachable[start + 4] = true;
        }
    }
    reachable[compact.len()]
}

fn parse_proxy_ssl(reader: &mut Reader<'_>) -> Option<ProxySsl> {
    let others = ["proxy-ssl-verify", "proxy-ssl-verify-depth", "proxy-ssl-name", "proxy-ssl-server-name", "proxy-ssl-protocols"];
    let Some(secret) = trimmed(reader, "proxy-ssl-secret").filter(|v| !v.is_empty()) else {
        let present: Vec<&str> = others.into_iter().filter(|name| reader.get(name).is_some()).collect();
        for name in present {
            reader.note(name, Severity::Warning, "has no effect without proxy-ssl-secret (as in ingress-nginx); ignored".into());
        }
        return None;
    };
    let verify = on_off(reader, "proxy-ssl-verify");
    let server_name = on_off(reader, "proxy-ssl-server-name");
    let verify_depth = match trimmed(reader, "proxy-ssl-verify-depth") {
        None => 1,
        Some(value) => match value.parse::<u32>() {
            Ok(0) => 1,
            Ok(depth @ 1..=100) => depth,
            _ => {
                reader.note("proxy-ssl-verify-depth", Severity::Warning, format!("{value:?} is not a depth of 1 to 100; 1 applies"));
                1
            }
        },
    };
    let protocols = match trimmed(reader, "proxy-ssl-protocols") {
        None => TlsVersions::V1_2_ONLY,
        Some(value) => TlsVersions::parse(&value).unwrap_or_else(|| {
            reader.note("proxy-ssl-protocols", Severity::Warning, format!("{value:?} is not a list of TLSv1.2 and TLSv1.3; TLSv1.2 applies"));
            TlsVersions::V1_2_ONLY
        }),
    };
    let name = trimmed(reader, "proxy-ssl-name").filter(|v| !v.is_empty());
    if let Some(value) = &name {
        if !super::normalize_host(value).is_ok_and(|host| host == value.to_ascii_lowercase()) {
            reader.note("proxy-ssl-name", Severity::Warning, format!("{value:?} is not a host name; ignored"));
            return Some(ProxySsl { secret, verify, verify_depth, name: None, server_name, protocols });
        }
    }
    Some(ProxySsl { secret, verify, verify_depth, name, server_name, protocols })
}

/// A client certificate with its SDS name.
type ClientCertificate = (String, TlsCertificate);

/// The TLS settings `proxy-ssl-*` ask for (with the client certificate and its SDS name); without
/// a ca.crt nothing is checked, but the client certificate and the name are still sent. As in
/// ingress-nginx, the Secret must be in the Ingress's namespace and hold a ca.crt or a
/// tls.crt/tls.key pair; otherwise `Err` (denied).
fn proxy_ssl_tls(
    ssl: &ProxySsl,
    state: &ClusterState,
    namespace: &str,
) -> Result<(UpstreamTls, Option<ClientCertificate>), String> {
    let reference = format!("{NGINX_PREFIX}proxy-ssl-secret");
    // ingress-nginx's `ParseNameNS` (exactly one `/`), then the namespace must be the Ingress's.
    let key = match ssl.secret.split_once('/') {
        Some((ns, name)) if ns == namespace && !name.is_empty() && !name.contains('/') => {
            ObjectKey::new(ns.to_string(), name.to_string())
        }
        Some((ns, _)) if ns != namespace => {
            return Err(format!("{reference}: {:?} is in another namespace than the Ingress, which ingress-nginx refuses", ssl.secret))
        }
        _ => {
            let hint = format!("{namespace}/{}", ssl.secret);
            return Err(format!("{reference}: {:?} is not \"namespace/name\" (ingress-nginx refuses a bare name too: write {hint:?})", ssl.secret));
        }
    };
    let secret = state
        .secrets
        .get(&key)
        .ok_or_else(|| format!("{reference}: Secret {key} not found"))?;
    let has_pair = tls::has_key(secret, tls::TLS_CERT_KEY) && tls::has_key(secret, tls::TLS_PRIVATE_KEY_KEY);
    let has_ca = tls::has_key(secret, tls::CA_KEY);
    if !has_ca && !has_pair {
        return Err(format!("{reference}: Secret {key} contains no keypair or CA certificate"));
    }
    // nginx.tmpl checks the certificate only with a CA (`proxy_ssl_verify` sits inside that
    // guard); the client certificate and the server name are sent either way.
    let trusted_ca_pem = match has_ca {
        true => Some(tls::ca_bundle_from_secret(secret).map_err(|reason| format!("{reference}: Secret {key} {reason}"))?),
        false => None,
    };
    let client = if tls::has_key(secret, tls::TLS_CERT_KEY) || tls::has_key(secret, tls::TLS_PRIVATE_KEY_KEY) {
        let (certificate, _) = tls::certificate_from_secret(secret)
            .map_err(|reason| format!("{reference}: Secret {key}: client certificate: {reason}"))?;
        Some((key.to_string(), certificate))
    } else {
        None
    };
    let upstream_tls = UpstreamTls {
        server_name: ssl.name.clone().filter(|_| ssl.server_name),
        verify: trusted_ca_pem.filter(|_| ssl.verify).map(|trusted_ca_pem| UpstreamVerification { trusted_ca_pem, name: ssl.name.clone(), max_depth: ssl.verify_depth }),
        client_certificate: client.as_ref().map(|(name, _)| name.clone()),
        alpn: Vec::new(),
        versions: ssl.protocols,
    };
    Ok((upstream_tls, client))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (format!("{NGINX_PREFIX}{k}"), v.to_string())).collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> (Upstream, Vec<AnnotationNote>) {
        Upstream::parse(&annotations(pairs))
    }

    #[test]
    fn disabling_proxy_intercept_errors_lets_the_backends_errors_through() {
        let errors = [("custom-http-errors", "404"), ("default-backend", "pages")];
        for (value, codes) in [("true", &[][..]), ("false", &[404][..]), ("yes", &[404][..])] {
            let (upstream, _) = parse(&[errors[0], errors[1], ("disable-proxy-intercept-errors", value)]);
            assert_eq!(upstream.custom_http_errors, codes, "{value}");
        }
    }

    #[test]
    fn custom_http_errors_are_4xx_and_5xx_codes_as_ingress_nginx_validates_them() {
        // (value, codes, a warning, the Ingress rejected)
        let cases: &[(&str, &[u16], Option<&str>, bool)] = &[
            ("404,503", &[404, 503], None, false),
            ("503,404,404,", &[404, 503], None, false),
            // customhttperrors.go's second Ingress: spaces are removed before validating.
            ("404, 503", &[404, 503], None, false),
            (" 500 ,502", &[500, 502], None, false),
            ("", &[], Some("empty"), false),
            // The validator takes it (no comma needed between codes), error_page does not.
            ("404503", &[], None, true),
            // The validator takes it, Go's Atoi does not: the annotation is ignored.
            ("404 503", &[], Some("not a number"), false),
            ("302,404", &[], None, true),
            ("404,600", &[], None, true),
            ("404,,503", &[], None, true),
            ("4o4", &[], None, true),
        ];
        for (value, codes, note, refused) in cases {
            let (upstream, notes) = parse(&[("custom-http-errors", value), ("default-backend", "pages")]);
            assert_eq!(upstream.custom_http_errors, *codes, "{value:?}");
            assert_eq!(upstream.refused.is_some(), *refused, "{value:?}: {:?}", upstream.refused);
            match note {
                Some(text) => assert!(notes.iter().any(|(_, _, message)| message.contains(text)), "{value:?}: {notes:?}"),
                None => assert!(notes.is_empty(), "{value:?}: {notes:?}"),
            }
        }
    }

    #[test]
    fn backend_protocol_values_as_ingress_nginx_reads_them() {
        let cases: &[(&str, BackendProtocol, bool)] = &[
            ("HTTP", BackendProtocol::Http, false),
            ("https", BackendProtocol::Https, false),
            (" GRPC ", BackendProtocol::Grpc, false),
            ("grpcs", BackendProtocol::Grpcs, false),
            ("AUTO_HTTP", BackendProtocol::AutoHttp, true),
            ("FCGI", BackendProtocol::Fcgi, true),
            ("H2C", BackendProtocol::Http, true),
            ("", BackendProtocol::Http, true),
        ];
        for (value, expected, noted) in cases {
            let (upstream, notes) = parse(&[("backend-protocol", value)]);
            assert_eq!(upstream.protocol, *expected, "{value:?}");
            assert_eq!(!notes.is_empty(), *noted, "{value:?}: {notes:?}");
        }
    }

    #[test]
    fn protocols_become_cluster_options() {
        let state = ClusterState::default();
        let mut certificates = BTreeMap::new();
        let options = |value: &str| {
            let (upstream, _) = parse(&[("backend-protocol", value)]);
            upstream.options(&state, "shop", &NginxDefaults::default(), &mut BTreeMap::new()).unwrap()
        };
        assert_eq!(options("HTTP"), UpstreamOptions::default());
        assert_eq!(options("GRPC"), UpstreamOptions { http2: true, ..UpstreamOptions::default() });
        assert_eq!(options("HTTPS"), UpstreamOptions { tls: Some(UpstreamTls::default()), ..UpstreamOptions::default() });
        let grpcs = options("GRPCS");
        assert!(grpcs.http2);
        assert_eq!(grpcs.tls.unwrap().alpn, vec!["h2"]);
        let (slow, _) = parse(&[("proxy-connect-timeout", "30")]);
        assert_eq!(slow.options(&state, "shop", &NginxDefaults::default(), &mut certificates).unwrap().connect_timeout, Duration::from_secs(30));
        // `--proxy-connect-timeout` (ConfigMap `proxy-connect-timeout`) is the default the annotation overrides.
        let patient = NginxDefaults { proxy_connect_timeout: 12, ..NginxDefaults::default() };
        assert_eq!(slow.options(&state, "shop", &patient, &mut certificates).unwrap().connect_timeout, Duration::from_secs(30));
        let (plain, _) = parse(&[]);
        assert_eq!(plain.options(&state, "shop", &patient, &mut certificates).unwrap().connect_timeout, Duration::from_secs(12));
        assert_eq!(plain.options(&state, "shop", &NginxDefaults::default(), &mut certificates).unwrap().connect_timeout, Duration::from_secs(5));
        // `service-upstream`: the `--service-upstream` default only when the annotation is missing;
        // a value that is not a boolean is ingress-nginx's failed parse, `false`.
        let everywhere = NginxDefaults { service_upstream: true, ..NginxDefaults::default() };
        let service_upstream = |pairs: &[(&str, &str)]| parse(pairs).0.options(&state, "shop", &everywhere, &mut BTreeMap::new()).unwrap().service_upstream;
        assert!(service_upstream(&[]));
        assert!(!service_upstream(&[("service-upstream", "false")]));
        assert!(!service_upstream(&[("service-upstream", "yes")]));
        assert!(service_upstream(&[("service-upstream", "True")]));
        assert!(certificates.is_empty());
    }

    #[test]
    fn bad_connect_timeouts_keep_the_default_with_a_warning() {
        for value in ["30s", "0", "-1", "abc", "31536001"] {
            let (upstream, notes) = parse(&[("proxy-connect-timeout", value)]);
            assert_eq!(upstream.connect_timeout, None, "{value}");
            assert_eq!(notes.len(), 1, "{value}");
        }
    }

    #[test]
    fn proxy_ssl_needs_its_secret_and_reads_on_off() {
        let (upstream, notes) = parse(&[("proxy-ssl-verify", "on"), ("proxy-ssl-name", "api.internal")]);
        assert_eq!(upstream.ssl, None);
        assert_eq!(notes.len(), 2, "{notes:?}");
        let (upstream, notes) = parse(&[
            ("proxy-ssl-secret", "api-ca"),
            ("proxy-ssl-verify", "on"),
            ("proxy-ssl-verify-depth", "2"),
            ("proxy-ssl-name", "api.internal"),
            ("proxy-ssl-server-name", "on"),
        ]);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            upstream.ssl,
            Some(ProxySsl {
                secret: "api-ca".into(),
                verify: true,
                verify_depth: 2,
                name: Some("api.internal".into()),
                server_name: true,
                protocols: TlsVersions::V1_2_ONLY,
            })
        );
        let (upstream, _) = parse(&[("proxy-ssl-secret", "other/api-ca"), ("proxy-ssl-verify", "yes")]);
        let ssl = upstream.ssl.unwrap();
        assert_eq!(ssl.secret, "other/api-ca");
        assert!(!ssl.verify);
    }

    #[test]
    fn an_unreadable_proxy_ssl_secret_denies() {
        let (upstream, _) = parse(&[("backend-protocol", "HTTPS"), ("proxy-ssl-secret", "shop/missing")]);
        let error = upstream.options(&ClusterState::default(), "shop", &NginxDefaults::default(), &mut BTreeMap::new()).unwrap_err();
        assert!(error.contains("Secret shop/missing not found"), "{error}");
        // ingress-nginx's ParseNameNS: exactly one `/`, so a bare name is denied too.
        for (value, why) in [("shop/b/c", "not \"namespace/name\""), ("missing", "write \"shop/missing\""), ("/missing", "another namespace"), ("other/ca", "another namespace")] {
            let (upstream, _) = parse(&[("backend-protocol", "HTTPS"), ("proxy-ssl-secret", value)]);
            let error = upstream.options(&ClusterState::default(), "shop", &NginxDefaults::default(), &mut BTreeMap::new()).unwrap_err();
            assert!(error.contains(why), "{value}: {error}");
        }
    }
}
