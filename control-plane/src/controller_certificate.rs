//! The controller's own HTTPS certificate: self-signed (ECDSA P-256, a key made at each start),
//! for `ingress.local` like ingress-nginx's "Fake Certificate". Envoy offers it to clients with no
//! or an unknown SNI unless a `--default-ssl-certificate` is set, and — whatever the default — for
//! the hosts the Model shields (`Model::shielded_names`: hosts served without a TLS claim that a
//! tenant's certificate would otherwise be offered for), so it names those too. The certificate
//! is signed again only when that list changes: the same names give the same bytes, so an
//! unrelated change sends Envoy no new secret.

use std::fmt;
use std::sync::{Arc, Mutex};

use rcgen::{CertificateParams, DnType, KeyPair};

use crate::model::TlsCertificate;

/// The name every controller certificate carries.
pub const CONTROLLER_HOST: &str = "ingress.local";

/// The key, and the last certificate made with it.
#[derive(Clone)]
pub struct ControllerCertificate {
    key_pem: String,
    base: TlsCertificate,
    last: Arc<Mutex<Option<Signed>>>,
}

/// A certificate and the shielded names it was made for.
struct Signed {
    names: Vec<String>,
    certificate: TlsCertificate,
}

impl ControllerCertificate {
    /// A new key and its certificate for `ingress.local` alone.
    pub fn generate() -> anyhow::Result<ControllerCertificate> {
        let key = KeyPair::generate()?;
        let key_pem = key.serialize_pem();
        let base = sign(&key, &[])?;
        Ok(ControllerCertificate { key_pem, base, last: Arc::new(Mutex::new(None)) })
    }

    /// The certificate for `ingress.local` and `names` (sorted, distinct). If a name cannot go
    /// into a certificate, the one for `ingress.local` alone, logged (those names keep whatever
    /// certificate Envoy picks for them).
    pub fn for_names(&self, names: &[String]) -> TlsCertificate {
        if names.is_empty() {
            return self.base.clone();
        }
        let Ok(mut last) = self.last.lock() else { return self.base.clone() };
        if let Some(signed) = last.as_ref().filter(|signed| signed.names == names) {
            return signed.certificate.clone();
        }
        let made = KeyPair::from_pem(&self.key_pem).map_err(anyhow::Error::from).and_then(|key| sign(&key, names));
        match made {
            Ok(certificate) => {
                *last = Some(Signed { names: names.to_vec(), certificate: certificate.clone() });
                certificate
            }
            Err(error) => {
                tracing::error!(%error, names = names.len(), "the controller's certificate could not name the shielded hosts");
                self.base.clone()
            }
        }
    }
}

/// ingress-nginx's self-signed certificate's subject (and issuer): `O=Acme Co`, this CN.
pub const FAKE_CERTIFICATE_COMMON_NAME: &str = "Kubernetes Ingress Controller Fake Certificate";
pub const FAKE_CERTIFICATE_ORGANIZATION: &str = "Acme Co";

fn sign(key: &KeyPair, names: &[String]) -> anyhow::Result<TlsCertificate> {
    let mut params = CertificateParams::new(std::iter::once(CONTROLLER_HOST.to_string()).chain(names.iter().cloned()).collect::<Vec<_>>())?;
    // The subject of ingress-nginx's own self-signed certificate, which clients and monitors of a
    // migrated cluster may look for (its e2e `defaultbackend/ssl.go` does).
    params.distinguished_name.push(DnType::OrganizationName, FAKE_CERTIFICATE_ORGANIZATION);
    params.distinguished_name.push(DnType::CommonName, FAKE_CERTIFICATE_COMMON_NAME);
    let cert = params.self_signed(key)?;
    Ok(TlsCertificate { cert_chain_pem: cert.pem(), private_key_pem: key.serialize_pem() })
}

impl PartialEq for ControllerCertificate {
    fn eq(&self, other: &Self) -> bool {
        self.key_pem == other.key_pem
    }
}

impl Eq for ControllerCertificate {}

impl fmt::Debug for ControllerCertificate {
    // Never print the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerCertificate").field("key", &"<redacted>").finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::translate::ingress::tls::{certificate_names, certificate_selection};
    use crate::model::CertificateKey;

    #[test]
    fn names_the_shielded_hosts_with_one_key_and_the_same_bytes_for_the_same_names() {
        let controller = ControllerCertificate::generate().unwrap();
        assert_eq!(certificate_names(&controller.for_names(&[]).cert_chain_pem), vec!["ingress.local"]);
        assert_eq!(certificate_selection(&controller.for_names(&[]).cert_chain_pem).key, CertificateKey::EcdsaP256);
        let names = vec!["b.corp.com".to_string(), "*.plain.org".to_string()];
        let first = controller.for_names(&names);
        assert_eq!(certificate_names(&first.cert_chain_pem), vec!["ingress.local", "b.corp.com", "*.plain.org"]);
        assert_eq!(controller.for_names(&names), first, "same names, same bytes");
        assert_eq!(first.private_key_pem, controller.for_names(&[]).private_key_pem, "one key");
        let other = controller.for_names(&names[..1]);
        assert_eq!(certificate_names(&other.cert_chain_pem), vec!["ingress.local", "b.corp.com"]);
        // A name that cannot be a DNS SAN: the certificate for ingress.local alone.
        let bad = controller.for_names(&["bücher.example".to_string()]);
        assert_eq!(certificate_names(&bad.cert_chain_pem), vec!["ingress.local"]);
    }

    #[test]
    fn is_named_as_ingress_nginx_s_fake_certificate() {
        let pem = ControllerCertificate::generate().unwrap().for_names(&["a.example".to_string()]).cert_chain_pem;
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        for name in [cert.issuer(), cert.subject()] {
            let common_name = name.iter_common_name().next().and_then(|a| a.as_str().ok());
            let organization = name.iter_organization().next().and_then(|a| a.as_str().ok());
            assert_eq!((common_name, organization), (Some("Kubernetes Ingress Controller Fake Certificate"), Some("Acme Co")));
        }
    }
}
