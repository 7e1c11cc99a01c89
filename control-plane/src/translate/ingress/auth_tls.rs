//! ingress-nginx client certificates: `auth-tls-secret`, `auth-tls-verify-client`,
//! `auth-tls-verify-depth`, `auth-tls-pass-certificate-to-upstream`, `auth-tls-error-page` and
//! `auth-tls-match-cn` (read as its `authtls` parser reads them). In nginx
//! they configure the host's `server` (`ssl_verify_client`), so the oldest Ingress of a host that
//! sets them decides for every path of that host ([`client_certificate_hosts`]); Envoy asks for and
//! validates the certificate on the host's own SNI filter chain and the filter checks each request
//! (`wasm_ingress_filter::client_cert`). Pure.
//!
//! A `ca.crl` in the Secret revokes the certificates it lists (nginx's `ssl_crl`). Fails closed
//! with ingress-nginx's `AuthTLSError` answer (403): a value that is not `namespace/name` of the
//! Ingress's namespace, a Secret that does not exist or has no usable `ca.crt`, a `ca.crl` that is
//! not a PEM revocation list; with 503 (a location denied): an `auth-tls-match-cn` the regex
//! engine refuses, an `auth-tls-error-page` that is not a URL.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::Ingress;
use wasm_ingress_filter::table::{ClientCertificate, RouteAction, VirtualHost};

use crate::model::{ClientValidation, Severity};
use crate::state::{ClusterState, ObjectKey};

use super::annotations::{AnnotationNote, NGINX_PREFIX};
use super::behaviour::Reader;
use super::tls;

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &[
    "auth-tls-error-page",
    "auth-tls-match-cn",
    "auth-tls-pass-certificate-to-upstream",
    "auth-tls-secret",
    "auth-tls-verify-client",
    "auth-tls-verify-depth",
];

/// ingress-nginx's `auth-tls-verify-depth` default.
const DEFAULT_DEPTH: u32 = 1;

/// `auth-tls-verify-client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyClient {
    On,
    Optional,
    OptionalNoCa,
    /// No certificate asked for; the upstream still gets `ssl-client-verify: NONE`.
    Off,
}

/// What the client-certificate annotations of one Ingress ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthTlsConfig {
    /// The Secret whose `ca.crt` the certificates must chain to.
    pub secret: ObjectKey,
    pub verify: VerifyClient,
    pub depth: u32,
    /// `auth-tls-pass-certificate-to-upstream`: the PEM goes upstream in `ssl-client-cert`.
    pub pass_certificate: bool,
    pub error_page: Option<String>,
    /// `auth-tls-match-cn`: a regex the subject DN must match.
    pub match_cn: Option<String>,
}

impl AuthTlsConfig {
    /// A certificate is asked for (anything but `off`): the host restricts who reaches it.
    pub fn asks(&self) -> bool {
        self.verify != VerifyClient::Off
    }

    /// The route table's rule for the host.
    pub fn rule(&self) -> ClientCertificate {
        ClientCertificate {
            required: self.verify == VerifyClient::On,
            verified: matches!(self.verify, VerifyClient::On | VerifyClient::Optional),
            error_page: self.error_page.clone(),
            match_cn: self.match_cn.clone(),
            off: self.verify == VerifyClient::Off,
        }
    }

    /// What Envoy validates client certificates with, given the Secret's CA bundle and CRLs.
    pub fn validation(&self, (ca_pem, crl_pem): (String, Option<String>)) -> ClientValidation {
        ClientValidation {
            secret: self.secret.to_string(),
            ca_pem,
            crl_pem,
            max_depth: self.depth,
            verify: self.verify != VerifyClient::OptionalNoCa,
        }
    }
}

/// The outcome of reading the annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthTls {
    Off,
    On(AuthTlsConfig),
    /// Every path answers this status because of this annotation (full key).
    Denied(u16, String),
}

/// Read the client-certificate annotations of an Ingress of `namespace`.
pub fn parse(annotations: &BTreeMap<String, String>, namespace: &str) -> (AuthTls, Vec<AnnotationNote>) {
    let mut reader = Reader::new(annotations);
    let Some(secret) = reader.get("auth-tls-secret").map(str::trim).filter(|s| !s.is_empty()) else {
        let present: Vec<&str> = NAMES.iter().copied().filter(|n| reader.get(n).is_some()).collect();
        for name in present {
            reader.note(name, Severity::Warning, "has no effect without auth-tls-secret (as in ingress-nginx); ignored".into());
        }
        return (AuthTls::Off, reader.notes);
    };
    // ingress-nginx's `ParseNameNS` (exactly one `/`), the namespace the Ingress's (its
    // `allow-cross-namespace-resources` is off by default), then the Secret looked up by the value
    // as written (so `/name` finds none): anything else is its `AuthTLSError`, a server-level 403.
    let secret = match secret.split_once('/') {
        Some((ns, name)) if ns == namespace && !name.is_empty() && !name.contains('/') => ObjectKey::new(ns, name),
        split => {
            let why = match split {
                None => format!("{secret:?} is not namespace/name (ingress-nginx refuses a bare name too: write {namespace}/{secret})"),
                Some(("", _)) => format!("{secret:?}: ingress-nginx looks the Secret up as written and finds none (write {namespace}{secret})"),
                Some((ns, _)) if ns != namespace => format!("{secret:?} is in another namespace than the Ingress, which ingress-nginx refuses"),
                Some(_) => format!("{secret:?} is not namespace/name"),
            };
            reader.note("auth-tls-secret", Severity::Error, format!("{why}; every path of this Ingress answers 403 (fail closed)"));
            return (AuthTls::Denied(403, format!("{NGINX_PREFIX}auth-tls-secret")), reader.notes);
        }
    };
    let match_cn = reader.get("auth-tls-match-cn").map(str::trim).filter(|v| !v.is_empty()).map(String::from);
    if let Some(Err(reason)) = match_cn.as_deref().map(wasm_ingress_filter::matcher::compile_header_regex) {
        reader.note("auth-tls-match-cn", Severity::Error, format!("{reason}; every path of this Ingress answers 503 (fail closed)"));
        return (AuthTls::Denied(503, format!("{NGINX_PREFIX}auth-tls-match-cn")), reader.notes);
    }
    let verify = match reader.get("auth-tls-verify-client").map(str::trim) {
        None | Some("on") => VerifyClient::On,
        Some("optional") => VerifyClient::Optional,
        Some("optional_no_ca") => VerifyClient::OptionalNoCa,
        Some("off") => VerifyClient::Off,
        Some(other) => {
            let message = format!("{other:?} is not on, off, optional or optional_no_ca; \"on\" applies (as in ingress-nginx)");
            reader.note("auth-tls-verify-client", Severity::Warning, message);
            VerifyClient::On
        }
    };
    let depth = reader.integer("auth-tls-verify-depth").filter(|d| *d > 0).map_or(DEFAULT_DEPTH, |d| u32::try_from(d).unwrap_or(u32::MAX));
    let pass_certificate = reader.boolean("auth-tls-pass-certificate-to-upstream").unwrap_or(false);
    let error_page = reader.get("auth-tls-error-page").map(str::trim).filter(|p| !p.is_empty()).map(String::from);
    if let Some(Err(reason)) = error_page.as_deref().map(wasm_ingress_filter::client_cert::check_error_page) {
        reader.note("auth-tls-error-page", Severity::Error, format!("{reason}; every path of this Ingress answers 503 (fail closed)"));
        return (AuthTls::Denied(503, format!("{NGINX_PREFIX}auth-tls-error-page")), reader.notes);
    }
    (AuthTls::On(AuthTlsConfig { secret, verify, depth, pass_certificate, error_page, match_cn }), reader.notes)
}

/// The CA bundle and revocation lists of the config's Secret, or why it cannot be used.
pub fn ca_bundle(config: &AuthTlsConfig, state: &ClusterState) -> Result<(String, Option<String>), String> {
    let secret = state.secrets.get(&config.secret).ok_or_else(|| format!("Secret {} does not exist", config.secret))?;
    let ca = tls::ca_bundle_from_secret(secret).map_err(|reason| format!("Secret {}: {reason}", config.secret))?;
    let crl = tls::crl_from_secret(secret).map_err(|reason| format!("Secret {}: {reason}", config.secret))?;
    Ok((ca, crl))
}

/// One host's client-certificate check and the Ingress that gave it.
#[derive(Debug, Clone)]
pub struct HostCheck {
    pub ingress: ObjectKey,
    pub config: AuthTlsConfig,
    /// The Secret's `ca.crt` and `ca.crl`.
    pub ca: (String, Option<String>),
}

/// The hosts that ask for client certificates: for each rule host, the oldest Ingress (`ours` is
/// in age order) with a usable client-certificate configuration, as nginx's `server` takes the
/// first one.
pub fn client_certificate_hosts(ours: &[(&ObjectKey, &Ingress)], state: &ClusterState) -> BTreeMap<String, HostCheck> {
    super::server_settings(ours, |key, annotations| {
        let (AuthTls::On(config), _) = parse(annotations, &key.namespace) else { return None };
        let ca = ca_bundle(&config, state).ok()?;
        Some(HostCheck { ingress: key.clone(), config, ca })
    })
}

/// The hosts ingress-nginx closes whole (`server.AuthTLSError`: its `server` answers 403 before any
/// location, other Ingresses' paths too): those a rule of some Ingress names whose
/// client-certificate Secret cannot be used, with the first such Ingress.
pub fn unusable_client_certificate_hosts(ours: &[(&ObjectKey, &Ingress)], state: &ClusterState) -> BTreeMap<String, ObjectKey> {
    super::server_settings(ours, |key, annotations| {
        let (AuthTls::On(config), _) = parse(annotations, &key.namespace) else { return None };
        ca_bundle(&config, state).err().map(|_| key.clone())
    })
}

/// Every answer of the `closed` hosts (and of their `server-alias` names) a 403, as nginx's
/// server-level `return 403`: no redirect, default backend or app-root either.
pub fn close(closed: &BTreeMap<String, ObjectKey>, aliases: &BTreeMap<String, String>, virtual_hosts: &mut [VirtualHost]) {
    let denied = RouteAction::respond(403, super::annotations::denied_body(403));
    for vhost in virtual_hosts.iter_mut() {
        let host = aliases.get(&vhost.host).unwrap_or(&vhost.host);
        if !closed.contains_key(host) {
            continue;
        }
        for route in &mut vhost.routes {
            route.action = denied.clone();
            route.https_redirect = None;
        }
        vhost.fallback = Some(denied.clone());
        vhost.fallback_https_redirect = None;
        vhost.implicit_root = None;
        vhost.app_root = None;
    }
}

/// Put each checked host's rule on its virtual host (and on its `server-alias` names, `aliases`:
/// alias -> host) and say how Envoy validates each of those server names.
pub fn apply(
    hosts: &BTreeMap<String, HostCheck>,
    aliases: &BTreeMap<String, String>,
    virtual_hosts: &mut [VirtualHost],
) -> BTreeMap<String, ClientValidation> {
    let mut validation = BTreeMap::new();
    for vhost in virtual_hosts.iter_mut() {
        let host = aliases.get(&vhost.host).unwrap_or(&vhost.host);
        if let Some(check) = hosts.get(host) {
            vhost.client_certificate = Some(check.config.rule());
            // `off` asks for no certificate: the host keeps the shared filter chain.
            if check.config.asks() {
                validation.insert(vhost.host.clone(), check.config.validation(check.ca.clone()));
            }
        }
    }
    validation
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> AuthTls {
        let annotations = pairs.iter().map(|(k, v)| (format!("{NGINX_PREFIX}{k}"), v.to_string())).collect();
        parse(&annotations, "apps").0
    }

    #[test]
    fn annotations_read_like_ingress_nginx() {
        let on = |secret: ObjectKey, verify, depth, pass_certificate, error_page: Option<&str>| {
            AuthTls::On(AuthTlsConfig { secret, verify, depth, pass_certificate, error_page: error_page.map(String::from), match_cn: None })
        };
        assert_eq!(read(&[]), AuthTls::Off);
        assert_eq!(read(&[("auth-tls-verify-client", "on")]), AuthTls::Off);
        assert_eq!(read(&[("auth-tls-secret", "apps/ca")]), on(ObjectKey::new("apps", "ca"), VerifyClient::On, 1, false, None));
        // ingress-nginx's AuthTLSError: a server-level 403.
        for (value, why) in [("ca", "a bare name"), ("/ca", "looked up as written"), ("certs/ca", "another namespace"), ("apps/ca/x", "not namespace/name")] {
            assert!(matches!(read(&[("auth-tls-secret", value)]), AuthTls::Denied(403, _)), "{why}");
        }
        assert_eq!(
            read(&[("auth-tls-secret", "apps/ca"), ("auth-tls-verify-client", "optional_no_ca"), ("auth-tls-verify-depth", "3"), ("auth-tls-pass-certificate-to-upstream", "true"), ("auth-tls-error-page", "https://e.example.com/x")]),
            on(ObjectKey::new("apps", "ca"), VerifyClient::OptionalNoCa, 3, true, Some("https://e.example.com/x"))
        );
        assert_eq!(read(&[("auth-tls-secret", "apps/ca"), ("auth-tls-verify-client", "maybe")]), on(ObjectKey::new("apps", "ca"), VerifyClient::On, 1, false, None));
        assert_eq!(read(&[("auth-tls-secret", "apps/ca"), ("auth-tls-verify-client", "off")]), on(ObjectKey::new("apps", "ca"), VerifyClient::Off, 1, false, None));
        let AuthTls::On(config) = read(&[("auth-tls-secret", "apps/ca"), ("auth-tls-match-cn", "CN=(alice|bob)")]) else { panic!() };
        assert_eq!(config.match_cn.as_deref(), Some("CN=(alice|bob)"));
        assert!(matches!(read(&[("auth-tls-secret", "apps/ca"), ("auth-tls-match-cn", "CN=(")]), AuthTls::Denied(503, _)));
        assert!(matches!(read(&[("auth-tls-secret", "apps/ca"), ("auth-tls-error-page", "https://x/a b")]), AuthTls::Denied(503, _)));
    }
}
