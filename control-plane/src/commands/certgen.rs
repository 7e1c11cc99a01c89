//! `wasm-ingress certgen`: the credentials for mutual TLS between Envoy and the control plane
//! (Contour's model): a CA made for this one purpose, a server certificate for the ADS server and a
//! client certificate for Envoy, both signed by it. Written as PEM files (`--output-dir`) or printed
//! as two `kubernetes.io/tls` Secrets (each with `ca.crt`) for `kubectl apply -f -`, which the
//! manifests in deploy/ mount. The CA key is not kept: rotating means running certgen again and
//! restarting both sides. Generation is pure (`generate`); only `run` writes.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::json;

use crate::cli::CertgenArgs;

/// Secret holding the ADS server's certificate, key and the CA (mounted by the control plane).
pub const SERVER_SECRET: &str = "wasm-ingress-xds-server";
/// Secret holding Envoy's client certificate, key and the CA (mounted by Envoy).
pub const CLIENT_SECRET: &str = "wasm-ingress-xds-client";
/// The name in Envoy's client certificate.
pub const CLIENT_NAME: &str = "wasm-ingress-envoy";

/// One certificate with its key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("cert_pem_len", &self.cert_pem.len()).field("key_pem", &"<redacted>").finish()
    }
}

/// A CA and the two leaf certificates it signed.
#[derive(Debug, Clone)]
pub struct XdsCredentials {
    pub ca_pem: String,
    pub server: Issued,
    pub client: Issued,
}

/// Make a new CA, a server certificate for `server_names` (DNS names or IP addresses) and a client
/// certificate for Envoy, valid for `days`.
pub fn generate(server_names: &[String], days: u32) -> anyhow::Result<XdsCredentials> {
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::days(i64::from(days.max(1)));
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(DnType::CommonName, "wasm-ingress xDS CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - time::Duration::minutes(5);
    ca_params.not_after = until;
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |names: Vec<String>, common_name: &str, usage: ExtendedKeyUsagePurpose| -> anyhow::Result<Issued> {
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![usage];
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = until;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    };
    let server_common_name = server_names.first().cloned().unwrap_or_else(|| "wasm-ingress-xds".into());
    Ok(XdsCredentials {
        ca_pem: ca_cert.pem(),
        server: leaf(server_names.to_vec(), &server_common_name, ExtendedKeyUsagePurpose::ServerAuth)?,
        client: leaf(vec![CLIENT_NAME.to_string()], CLIENT_NAME, ExtendedKeyUsagePurpose::ClientAuth)?,
    })
}

/// The two Secrets (server, client) as Kubernetes objects.
pub fn secrets(credentials: &XdsCredentials, namespace: &str) -> [serde_json::Value; 2] {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let secret = |name: &str, issued: &Issued| {
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/name": "wasm-ingress", "app.kubernetes.io/component": "xds-credentials"}},
            "data": {"ca.crt": b64(&credentials.ca_pem), "tls.crt": b64(&issued.cert_pem), "tls.key": b64(&issued.key_pem)},
        })
    };
    [secret(SERVER_SECRET, &credentials.server), secret(CLIENT_SECRET, &credentials.client)]
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Write one side's files the way its Secret is mounted: `ca.crt`, `tls.crt`, `tls.key` (0600).
fn write_side(dir: &Path, ca_pem: &str, issued: &Issued) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join(CA_FILE), ca_pem).with_context(|| format!("writing {}", dir.display()))?;
    std::fs::write(dir.join(CERT_FILE), &issued.cert_pem).with_context(|| format!("writing {}", dir.display()))?;
    write_private(&dir.join(KEY_FILE), &issued.key_pem)
}

/// File names inside a credentials folder (the keys of the `kubernetes.io/tls` Secret).
pub const CA_FILE: &str = "ca.crt";
pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";

pub fn run(args: CertgenArgs) -> anyhow::Result<ExitCode> {
    let credentials = generate(&args.server_name, args.days)?;
    match &args.output_dir {
        Some(dir) => {
            write_side(&dir.join("server"), &credentials.ca_pem, &credentials.server)?;
            write_side(&dir.join("client"), &credentials.ca_pem, &credentials.client)?;
            eprintln!(
                "wrote {0}/server (serve --xds-tls-dir) and {0}/client (bootstrap --xds-tls-dir): ca.crt, tls.crt, tls.key",
                dir.display()
            );
        }
        None => {
            for secret in secrets(&credentials, &args.namespace) {
                print!("---\n{}", serde_yaml::to_string(&secret)?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn leaves_are_signed_by_the_ca_for_their_names_and_purposes() {
        let names = vec!["wasm-ingress-xds.wasm-ingress.svc".to_string(), "127.0.0.1".to_string()];
        let credentials = generate(&names, 30).unwrap();
        let parse = |pem: &str| {
            let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
            der.contents
        };
        let ca_der = parse(&credentials.ca_pem);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert!(ca.is_ca());
        for (issued, name) in [(&credentials.server, "wasm-ingress-xds.wasm-ingress.svc"), (&credentials.client, CLIENT_NAME)] {
            let der = parse(&issued.cert_pem);
            let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
            // Issued by the CA (the signature itself is checked by the mutual-TLS end-to-end test).
            assert_eq!(cert.issuer(), ca.subject(), "{name} is issued by the CA");
            assert!(!cert.is_ca(), "{name} is a leaf");
            let sans = cert.subject_alternative_name().unwrap().unwrap().value.general_names.clone();
            assert!(sans.iter().any(|n| n.to_string().contains(name)), "{name}: {sans:?}");
            assert!(issued.key_pem.contains("PRIVATE KEY"));
        }
        let [server, client] = secrets(&credentials, "wasm-ingress");
        assert_eq!(server["metadata"]["name"], SERVER_SECRET);
        assert_eq!(client["metadata"]["name"], CLIENT_SECRET);
        assert_eq!(client["type"], "kubernetes.io/tls");
        for key in ["ca.crt", "tls.crt", "tls.key"] {
            assert!(client["data"][key].is_string(), "{key}");
        }
        assert!(!format!("{credentials:?}").contains("PRIVATE KEY"), "keys are never printed by Debug");
    }
}
