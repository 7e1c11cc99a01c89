//! Who may claim what: hosts under `--host-ownership`, TLS server names and the certificates that
//! serve them (oldest Ingress first), and the SNI guard that keeps a certificate from being offered
//! for names its Ingress did not win (`sni`). State for one translation; no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::backends::ingress_ref;
use super::tls::{self, certificate_from_secret};
use super::{sni, Diagnostics};
use crate::model::{CertificateSelection, Model, Severity, TlsCertificate, TlsServer};
use crate::controller_certificate::CONTROLLER_HOST;
use crate::translate::envoy::FALLBACK_CERTIFICATE_NAME;
use crate::state::{ClusterState, ObjectKey};

/// Who may put rules on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum HostOwnership {
    /// ingress-nginx's behaviour: Ingresses of any namespace that name a host are merged.
    #[default]
    Merge,
    /// The namespace of the oldest Ingress naming a host owns it; other namespaces' rules and TLS
    /// entries for it are refused with a diagnostic (no tenant can take over another's host).
    Namespace,
}

/// The first (oldest) Ingress to name each host, for [`HostOwnership::Namespace`].
#[derive(Default)]
pub(super) struct HostOwners(BTreeMap<String, ObjectKey>);

impl HostOwners {
    /// `Err(owner)` when `host` belongs to another namespace under `mode`.
    pub(super) fn claim(&mut self, host: &str, ingress: &ObjectKey, mode: HostOwnership) -> Result<(), ObjectKey> {
        if mode == HostOwnership::Merge {
            return Ok(());
        }
        let owner = self.0.entry(host.to_owned()).or_insert_with(|| ingress.clone());
        if owner.namespace == ingress.namespace {
            Ok(())
        } else {
            Err(owner.clone())
        }
    }
}

fn names_of(memo: &mut BTreeMap<ObjectKey, Arc<BTreeSet<String>>>, secret: &ObjectKey, certificate: &TlsCertificate) -> Arc<BTreeSet<String>> {
    let names = memo.entry(secret.clone()).or_insert_with(|| Arc::new(tls::certificate_names(&certificate.cert_chain_pem).into_iter().collect()));
    Arc::clone(names)
}

/// Server-name claims and the certificates they use.
#[derive(Default)]
pub(super) struct TlsClaims {
    /// Secret -> checked certificate (or why not), each Secret checked once.
    pub(super) checked: BTreeMap<ObjectKey, Result<TlsCertificate, String>>,
    /// Server name -> (Secret, Ingress that claimed it first).
    pub(super) names: BTreeMap<String, (ObjectKey, ObjectKey)>,
    /// Certificates used by at least one claimed name.
    pub(super) used: BTreeMap<ObjectKey, TlsCertificate>,
    /// Secret -> the names its certificate is selected by, each certificate parsed once.
    certificate_names: BTreeMap<ObjectKey, Arc<BTreeSet<String>>>,
}

impl TlsClaims {
    pub(super) fn certificate(&mut self, state: &ClusterState, secret: &ObjectKey) -> Result<TlsCertificate, String> {
        self.checked
            .entry(secret.clone())
            .or_insert_with(|| match state.secrets.get(secret) {
                // Any type the sources read (`kubernetes.io/tls`, `Opaque`) with `tls.crt` and
                // `tls.key`, as ingress-nginx reads the keys whatever the type.
                None => Err("not found".into()),
                Some(object) => match certificate_from_secret(object) {
                    Ok((certificate, caveat)) => {
                        if let Some(caveat) = caveat {
                            tracing::info!(secret = %secret, caveat, "TLS key match not checked");
                        }
                        Ok(certificate)
                    }
                    Err(reason) => Err(reason),
                },
            })
            .clone()
    }

    /// The names Envoy selects `secret`'s certificate by ([`tls::certificate_names`]), read once per
    /// Secret and translation (a Secret's certificate does not change within one).
    pub(super) fn certificate_names(&mut self, secret: &ObjectKey, certificate: &TlsCertificate) -> Arc<BTreeSet<String>> {
        names_of(&mut self.certificate_names, secret, certificate)
    }

    /// [`Self::certificate_names`] of a certificate in use; `None` if `secret`'s is not.
    pub(super) fn used_certificate_names(&mut self, secret: &ObjectKey) -> Option<Arc<BTreeSet<String>>> {
        Some(names_of(&mut self.certificate_names, secret, self.used.get(secret)?))
    }

    /// Claim `name` for `secret`; `Err((secret, ingress))` of the older claim if another Secret has it.
    pub(super) fn claim(&mut self, name: &str, secret: &ObjectKey, ingress: &ObjectKey) -> Result<(), (ObjectKey, ObjectKey)> {
        match self.names.get(name) {
            Some((winner_secret, _)) if winner_secret == secret => Ok(()),
            Some((winner_secret, winner_ingress)) => Err((winner_secret.clone(), winner_ingress.clone())),
            None => {
                self.names.insert(name.to_owned(), (secret.clone(), ingress.clone()));
                Ok(())
            }
        }
    }

    /// Keep tenants' certificates from being offered for names they did not win (see `sni`): a
    /// refused certificate loses its names (the default certificate serves them), with an error on
    /// every Ingress that used it. Returns the certificate order for the listener and what Envoy
    /// selects each listed certificate by.
    pub(super) fn guard(&mut self, default: Option<&ObjectKey>, owners: &HostOwners, diagnostics: &mut Diagnostics) -> (Vec<String>, BTreeMap<String, CertificateSelection>) {
        let selection: BTreeMap<String, CertificateSelection> = self
            .used
            .iter()
            .map(|(key, cert)| (key.to_string(), tls::certificate_selection(&cert.cert_chain_pem)))
            .collect();
        let candidate = |key: &ObjectKey, cert: &TlsCertificate| {
            let selected = selection.get(&key.to_string());
            sni::Candidate {
                name: key.to_string(),
                namespace: key.namespace.clone(),
                names: selected.map(|s| s.names.clone()).unwrap_or_default(),
                identity: cert.cert_chain_pem.trim().to_string(),
                key: selected.map_or(sni::Key::Rsa, |s| s.key),
            }
        };
        let mut fronts: Vec<sni::Candidate> = default.and_then(|key| self.used.get(key).map(|cert| candidate(key, cert))).into_iter().collect();
        fronts.push(controller_candidate());
        let tenants: Vec<sni::Candidate> =
            self.used.iter().filter(|(key, _)| Some(*key) != default).map(|(key, cert)| candidate(key, cert)).collect();
        let claims: BTreeMap<String, String> =
            self.names.iter().map(|(name, (secret, _))| (name.clone(), secret.to_string())).collect();
        let owner_namespaces: BTreeMap<String, String> =
            owners.0.iter().map(|(host, ingress)| (host.clone(), ingress.namespace.clone())).collect();
        let guarded = sni::guard(&fronts, &tenants, &claims, &owner_namespaces);
        for refusal in &guarded.refused {
            self.refuse(refusal, diagnostics);
        }
        for shadowed in &guarded.shadowed {
            if let Some((secret, ingress)) = self.names.get(&shadowed.server_name) {
                diagnostics.push(
                    ingress_ref(ingress),
                    "spec.tls".into(),
                    Severity::Warning,
                    format!("server name {:?}: the --default-ssl-certificate also names it, and Envoy prefers that certificate (it is listed first), so Secret {secret} is not offered for this name", shadowed.server_name),
                );
            }
        }
        let refused: Vec<&str> = guarded.refused.iter().map(|r| r.certificate.as_str()).collect();
        (guarded.order, selection.into_iter().filter(|(name, _)| !refused.contains(&name.as_str())).collect())
    }

    /// Withdraw a refused certificate and report it to each Ingress that claimed names with it.
    fn refuse(&mut self, refusal: &sni::Refusal, diagnostics: &mut Diagnostics) {
        let Some(secret) = self.used.keys().find(|key| key.to_string() == refusal.certificate).cloned() else { return };
        self.used.remove(&secret);
        let mut lost: BTreeMap<ObjectKey, Vec<String>> = BTreeMap::new();
        self.names.retain(|name, (claimed_with, ingress)| {
            let keep = *claimed_with != secret;
            if !keep {
                lost.entry(ingress.clone()).or_default().push(name.clone());
            }
            keep
        });
        let victim = match &refusal.victim {
            sni::Victim::Certificate(other) => format!("is served with Secret {other}"),
            sni::Victim::Namespace(namespace) => format!("belongs to namespace {namespace:?} (--host-ownership=namespace)"),
        };
        for (ingress, names) in lost {
            diagnostics.push(
                ingress_ref(&ingress),
                "spec.tls".into(),
                Severity::Error,
                format!(
                    "Secret {secret}: its certificate also names {:?}, which {victim}; it is not offered, so that it cannot capture that name's TLS connections ({} get the default certificate)",
                    refusal.server_name,
                    names.join(", ")
                ),
            );
        }
    }

    /// TLS servers (in `order` of their certificates; others first) and the certificates they use.
    pub(super) fn into_model(self, order: &[String]) -> (Vec<TlsServer>, BTreeMap<String, TlsCertificate>) {
        let mut by_secret: BTreeMap<ObjectKey, Vec<String>> = BTreeMap::new();
        for (name, (secret, _)) in self.names {
            by_secret.entry(secret).or_default().push(name);
        }
        let mut servers: Vec<TlsServer> = by_secret
            .into_iter()
            .map(|(secret, mut server_names)| {
                server_names.sort();
                TlsServer { server_names, certificate: secret.to_string() }
            })
            .collect();
        servers.sort_by_key(|server| order.iter().position(|name| *name == server.certificate).map_or(0, |i| i + 1));
        let certificates = self.used.into_iter().map(|(secret, cert)| (secret.to_string(), cert)).collect();
        (servers, certificates)
    }
}

/// The controller's own certificate as the guard sees it before any name is shielded.
fn controller_candidate() -> sni::Candidate {
    sni::Candidate {
        name: FALLBACK_CERTIFICATE_NAME.to_string(),
        namespace: String::new(),
        names: vec![CONTROLLER_HOST.to_string()],
        identity: FALLBACK_CERTIFICATE_NAME.to_string(),
        key: sni::Key::EcdsaP256,
    }
}

/// The names the controller's certificate must carry for `model` (see `sni::shield`): its hosts
/// without a TLS claim that a tenant's certificate would be offered for. The listing is Envoy's:
/// the default certificate, the controller's, then the TLS servers' certificates in their order.
pub(super) fn shielded_names(model: &Model) -> Vec<String> {
    let candidate = |name: &String| {
        model.certificate_selection.get(name).map(|selected| sni::Candidate {
            name: name.clone(),
            namespace: String::new(),
            names: selected.names.clone(),
            identity: name.clone(),
            key: selected.key,
        })
    };
    let default = model.default_certificate.as_ref().and_then(candidate);
    let mut listed: Vec<sni::Candidate> = default.into_iter().chain(std::iter::once(controller_candidate())).collect();
    let fronts = listed.len();
    let mut seen: std::collections::BTreeSet<&String> = model.default_certificate.iter().collect();
    listed.extend(model.tls_servers.iter().map(|server| &server.certificate).filter(|name| seen.insert(*name)).filter_map(candidate));
    let claims: BTreeMap<String, String> =
        model.tls_servers.iter().flat_map(|server| server.server_names.iter().map(|name| (name.clone(), server.certificate.clone()))).collect();
    let plain: std::collections::BTreeSet<String> = model
        .route_table
        .hosts
        .iter()
        .map(|vhost| vhost.host.clone())
        .filter(|host| !host.is_empty() && !model.passthrough.contains_key(host))
        .collect();
    let listed: Vec<&sni::Candidate> = listed.iter().collect();
    sni::shield(&listed, fronts, &claims, &plain)
}

