//! The whole product on loopback for end-to-end tests: `wasm-ingress serve` on a manifests folder,
//! real Envoy started from `wasm-ingress bootstrap`, and helpers to write Kubernetes manifests and
//! to send real HTTP/HTTPS requests to named hosts through Envoy.
//!
//! Everything binds 127.0.0.1 with free ports; every process is killed on drop; every wait is
//! bounded. Manifests are built as structured values (serde_json) and written as YAML.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use serde_json::{json, Value};

use crate::backend::EchoBackend;
use crate::envoy::{http_get, Envoy, EnvoyOptions};
use crate::paths;

/// `wasm-ingress certgen` into a fresh folder: the xDS credentials for [`GatewayOptions::xds_tls`].
pub fn xds_credentials() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let certgen = Command::new(paths::control_plane()?).args(["certgen", "--output-dir"]).arg(dir.path()).output()?;
    if !certgen.status.success() {
        bail!("certgen failed: {}", String::from_utf8_lossy(&certgen.stderr));
    }
    Ok(dir)
}

/// How to start a [`Gateway`].
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    /// A `wasm-ingress certgen --output-dir` folder: serve xDS over mutual TLS with `server/` and
    /// bootstrap Envoy with `client/`.
    pub xds_tls: Option<PathBuf>,
    /// More `serve` flags.
    pub serve_args: Vec<String>,
    /// The filter `.wasm` Envoy loads (default: the one the build made).
    pub filter_wasm: Option<PathBuf>,
    /// Read the cluster through this kubeconfig (`serve --kubeconfig`) instead of the manifests
    /// folder; see [`Gateway::start_kube`].
    pub kubeconfig: Option<PathBuf>,
    /// Envoy's worker threads (default: [`EnvoyOptions`]' one).
    pub envoy_workers: Option<u32>,
}

/// Control plane + Envoy, serving a manifests folder the test owns (or a Kubernetes API).
pub struct Gateway {
    /// The folder served (with a kubeconfig: the folder the kubeconfig is in, not watched).
    pub manifests: PathBuf,
    /// The control plane's ADS address.
    pub xds: SocketAddr,
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub control_plane_admin: SocketAddr,
    pub envoy: Envoy,
    control_plane: Child,
    control_plane_log: PathBuf,
    _dir: tempfile::TempDir,
    _kube_dir: Option<tempfile::TempDir>,
}

impl Gateway {
    /// Start the control plane on `manifests` and an Envoy bootstrapped from it; returns once Envoy
    /// is ready (initial LDS/CDS/ECDS applied) and the HTTP listener accepts connections.
    pub fn start(manifests: &Path) -> anyhow::Result<Gateway> {
        Gateway::start_with(manifests, &GatewayOptions::default())
    }

    /// The control plane reading the stand-in API server `api` (`serve --kubeconfig`, leader
    /// election and status writing included) and an Envoy bootstrapped from it.
    pub fn start_kube(api: &crate::apiserver::ApiServer, options: &GatewayOptions) -> anyhow::Result<Gateway> {
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, api.kubeconfig())?;
        let options = GatewayOptions { kubeconfig: Some(kubeconfig), ..options.clone() };
        let mut gateway = Gateway::start_with(dir.path(), &options)?;
        gateway._kube_dir = Some(dir);
        Ok(gateway)
    }

    /// [`Gateway::start`] with options (mutual TLS on xDS, extra `serve` flags).
    pub fn start_with(manifests: &Path, options: &GatewayOptions) -> anyhow::Result<Gateway> {
        let dir = tempfile::tempdir()?;
        let port = || paths::free_port();
        let xds = SocketAddr::from(([127, 0, 0, 1], port()?));
        let http = SocketAddr::from(([127, 0, 0, 1], port()?));
        let https = SocketAddr::from(([127, 0, 0, 1], port()?));
        let control_plane_admin = SocketAddr::from(([127, 0, 0, 1], port()?));
        let envoy_admin = port()?;
        let binary = paths::control_plane()?;
        let wasm = match &options.filter_wasm {
            Some(path) => path.clone(),
            None => paths::filter_wasm()?,
        };
        let control_plane_log = dir.path().join("control-plane.log");
        let log = std::fs::File::create(&control_plane_log)?;
        let source = match &options.kubeconfig {
            Some(kubeconfig) => [std::ffi::OsStr::new("--kubeconfig"), kubeconfig.as_os_str()],
            None => [std::ffi::OsStr::new("--manifests"), manifests.as_os_str()],
        };
        let control_plane = Command::new(&binary)
            .arg("serve")
            .args(source)
            .arg("--filter-wasm")
            .arg(&wasm)
            .args(["--xds-listen", &xds.to_string()])
            .args(["--http-listen", &http.to_string()])
            .args(["--https-listen", &https.to_string()])
            .args(["--admin-listen", &control_plane_admin.to_string()])
            .args(options.xds_tls.iter().flat_map(|d| ["--xds-tls-dir".into(), d.join("server").display().to_string()]))
            .args(&options.serve_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut control_plane = ControlPlaneGuard(Some(control_plane));
        wait_until(Duration::from_secs(30), || {
            Ok(matches!(http_get(control_plane_admin, "/readyz", Duration::from_secs(1)), Ok((200, _))))
        })
        .with_context(|| format!("control plane not ready; log:\n{}", read_lossy(&control_plane_log)))?;

        let bootstrap = Command::new(&binary)
            .args(["bootstrap", "--xds-address", &xds.to_string()])
            .args(["--admin-address", &format!("127.0.0.1:{envoy_admin}")])
            .args(["--node-id", "e2e"])
            .args(options.xds_tls.iter().flat_map(|d| ["--xds-tls-dir".into(), d.join("client").display().to_string()]))
            .output()?;
        if !bootstrap.status.success() {
            bail!("bootstrap failed: {}", String::from_utf8_lossy(&bootstrap.stderr));
        }
        let bootstrap_path = dir.path().join("bootstrap.yaml");
        std::fs::write(&bootstrap_path, &bootstrap.stdout)?;
        // Access logs are flushed every 10 s by default; the tests read them sooner.
        let defaults = EnvoyOptions::default();
        let concurrency = options.envoy_workers.unwrap_or(defaults.concurrency);
        let options = EnvoyOptions { extra_args: vec!["--file-flush-interval-msec".into(), "200".into()], concurrency, ..defaults };
        let envoy = Envoy::start_file(&bootstrap_path, envoy_admin, &options)
            .with_context(|| format!("control plane log:\n{}", read_lossy(&control_plane_log)))?;
        wait_until(Duration::from_secs(30), || Ok(std::net::TcpStream::connect(http).is_ok()))
            .with_context(|| format!("HTTP listener {http} never accepted; envoy log:\n{}", envoy.logs()))?;
        let control_plane = control_plane.0.take().ok_or_else(|| anyhow!("control plane guard empty"))?;
        Ok(Gateway {
            manifests: manifests.to_path_buf(),
            xds,
            http,
            https,
            control_plane_admin,
            envoy,
            control_plane,
            control_plane_log,
            _dir: dir,
            _kube_dir: None,
        })
    }

    /// The control plane's log so far.
    pub fn control_plane_logs(&self) -> String {
        read_lossy(&self.control_plane_log)
    }

    /// A client that sends `http://HOST/...` and `https://HOST/...` for each of `hosts` to this
    /// gateway (like curl --resolve), trusting only `ca_pem` (if given) for HTTPS.
    pub fn client(&self, hosts: &[&str], ca_pem: Option<&str>) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .tls_built_in_root_certs(false);
        for host in hosts {
            // reqwest uses the port of the URL, so the http/https split is made by the URL's port.
            builder = builder.resolve(host, SocketAddr::from(([127, 0, 0, 1], 0)));
        }
        if let Some(pem) = ca_pem {
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes())?);
        }
        Ok(builder.build()?)
    }

    /// The leaf certificate (DER) the HTTPS listener offers a client that sends `sni` (`None`: no
    /// SNI) and that can do ECDSA (`ecdsa`; otherwise it offers RSA signature schemes only). The
    /// certificate is not checked: the handshake only shows which one Envoy picked.
    pub fn offered_certificate(&self, sni: Option<&str>, ecdsa: bool) -> anyhow::Result<Vec<u8>> {
        use std::sync::{Arc, Mutex};
        use tokio_rustls::rustls::{self, client::danger, pki_types};
        #[derive(Debug)]
        struct Recorder {
            seen: Mutex<Option<Vec<u8>>>,
            ecdsa: bool,
        }
        impl danger::ServerCertVerifier for Recorder {
            fn verify_server_cert(
                &self,
                end_entity: &pki_types::CertificateDer<'_>,
                _: &[pki_types::CertificateDer<'_>],
                _: &pki_types::ServerName<'_>,
                _: &[u8],
                _: pki_types::UnixTime,
            ) -> Result<danger::ServerCertVerified, rustls::Error> {
                if let Ok(mut seen) = self.seen.lock() {
                    *seen = Some(end_entity.to_vec());
                }
                Ok(danger::ServerCertVerified::assertion())
            }
            fn verify_tls12_signature(&self, _: &[u8], _: &pki_types::CertificateDer<'_>, _: &rustls::DigitallySignedStruct) -> Result<danger::HandshakeSignatureValid, rustls::Error> {
                Ok(danger::HandshakeSignatureValid::assertion())
            }
            fn verify_tls13_signature(&self, _: &[u8], _: &pki_types::CertificateDer<'_>, _: &rustls::DigitallySignedStruct) -> Result<danger::HandshakeSignatureValid, rustls::Error> {
                Ok(danger::HandshakeSignatureValid::assertion())
            }
            fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
                let all = rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes();
                all.into_iter().filter(|scheme| self.ecdsa || format!("{scheme:?}").starts_with("RSA")).collect()
            }
        }
        let recorder = Arc::new(Recorder { seen: Mutex::new(None), ecdsa });
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        // An IP address as the server name: rustls sends no SNI.
        let name = match sni {
            Some(sni) => pki_types::ServerName::try_from(sni.to_string())?,
            None => pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
        };
        let https = self.https;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async move {
            let tcp = tokio::net::TcpStream::connect(https).await?;
            let connect = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp);
            tokio::time::timeout(Duration::from_secs(5), connect).await??;
            anyhow::Ok(())
        })?;
        let seen = recorder.seen.lock().map_err(|_| anyhow!("poisoned"))?.clone();
        seen.ok_or_else(|| anyhow!("no certificate was offered"))
    }

    /// `http://HOST:PORT/path` for the HTTP listener.
    pub fn http_url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.http.port())
    }

    /// `https://HOST:PORT/path` for the HTTPS listener.
    pub fn https_url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.https.port())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.control_plane.kill();
        let _ = self.control_plane.wait();
        if std::thread::panicking() {
            eprintln!("---- control plane log ----\n{}\n---- end ----", self.control_plane_logs());
        }
    }
}

struct ControlPlaneGuard(Option<Child>);

impl Drop for ControlPlaneGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// Poll `check` every 50 ms until it returns true or `timeout` passes (then an error).
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if check()? {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            bail!("condition not met within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kubernetes manifests as structured values.
pub mod manifests {
    use super::*;

    /// Write `objects` as a multi-document YAML file `name` in `dir` (atomically: temp file + rename,
    /// as editors and `kubectl` users' tools do).
    pub fn write(dir: &Path, name: &str, objects: &[Value]) -> anyhow::Result<()> {
        let mut text = String::new();
        for object in objects {
            text.push_str("---\n");
            text.push_str(&serde_yaml::to_string(object)?);
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, dir.join(name))?;
        Ok(())
    }

    /// A Service with named ports (`name`, port, targetPort) and an EndpointSlice with one
    /// endpoint per backend, for every port (all ready unless listed in `not_ready`).
    pub fn service(namespace: &str, name: &str, ports: &[(&str, u16)], backends: &[&EchoBackend]) -> Vec<Value> {
        let service = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": ports.iter().map(|(port_name, port)| json!({
                "name": port_name, "port": port, "protocol": "TCP"})).collect::<Vec<_>>()},
        });
        // Echo backends each have their own port; one slice per backend keeps the shape valid
        // (all endpoints of a slice share the slice's ports).
        let slices = backends.iter().enumerate().map(|(i, backend)| json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-{i}"), "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": ports.iter().map(|(port_name, _)| json!({
                "name": port_name, "port": backend.port(), "protocol": "TCP"})).collect::<Vec<_>>(),
            "endpoints": [{"addresses": [backend.ip()], "conditions": {"ready": true}}],
        }));
        std::iter::once(service).chain(slices).collect()
    }

    /// One path of an Ingress rule: (path, pathType, service, port) where port is a number or a name.
    pub fn path(path: &str, path_type: &str, service: &str, port: Value) -> Value {
        let port = if port.is_string() { json!({"name": port}) } else { json!({"number": port}) };
        json!({"path": path, "pathType": path_type,
               "backend": {"service": {"name": service, "port": port}}})
    }

    /// An Ingress of class `wasm` with one rule per (host, paths); `host` "" means host-less.
    pub fn ingress(namespace: &str, name: &str, annotations: Value, rules: &[(&str, Vec<Value>)]) -> Value {
        let rules: Vec<Value> = rules
            .iter()
            .map(|(host, paths)| {
                let mut rule = json!({"http": {"paths": paths}});
                if !host.is_empty() {
                    rule["host"] = json!(host);
                }
                rule
            })
            .collect();
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
            "spec": {"ingressClassName": "wasm", "rules": rules},
        })
    }

    /// `ingress` with one TLS entry: `host`, served with the certificate of Secret `secret`.
    pub fn with_tls(mut ingress: Value, host: &str, secret: &str) -> Value {
        ingress["spec"]["tls"] = json!([{"hosts": [host], "secretName": secret}]);
        ingress
    }

    /// A kubernetes.io/tls Secret.
    pub fn tls_secret(namespace: &str, name: &str, cert_pem: &str, key_pem: &str) -> Value {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"tls.crt": b64(cert_pem), "tls.key": b64(key_pem)},
        })
    }
}

/// Test certificates: a CA and server certificates it signs.
pub mod certs {
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose, RevokedCertParams, SerialNumber,
    };

    /// A private CA.
    pub struct TestCa {
        pub cert_pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    impl TestCa {
        pub fn new(name: &str) -> anyhow::Result<TestCa> {
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
            let key = KeyPair::generate()?;
            let cert = params.self_signed(&key)?;
            Ok(TestCa { cert_pem: cert.pem(), issuer: Issuer::new(params, key) })
        }

        /// An intermediate CA this CA signs; its `cert_pem` is its own certificate alone (a
        /// client presents it after its leaf).
        pub fn intermediate(&self, name: &str) -> anyhow::Result<TestCa> {
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
            params.use_authority_key_identifier_extension = true;
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &self.issuer)?;
            Ok(TestCa { cert_pem: cert.pem(), issuer: Issuer::new(params, key) })
        }

        /// A server certificate for `names`: (cert PEM, key PEM).
        pub fn server_cert(&self, names: &[&str]) -> anyhow::Result<(String, String)> {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let mut params = CertificateParams::new(names.clone())?;
            params.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
            params.use_authority_key_identifier_extension = true;
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &self.issuer)?;
            Ok((cert.pem(), key.serialize_pem()))
        }

        /// A client certificate with this common name: (cert PEM, key PEM).
        pub fn client_cert(&self, common_name: &str) -> anyhow::Result<(String, String)> {
            self.client_cert_with_serial(common_name, None)
        }

        /// A client certificate with this common name and serial number (for [`TestCa::crl`]).
        pub fn client_cert_with_serial(&self, common_name: &str, serial: Option<u64>) -> anyhow::Result<(String, String)> {
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.serial_number = serial.map(SerialNumber::from);
            params.distinguished_name.push(DnType::CommonName, common_name);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            params.use_authority_key_identifier_extension = true;
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &self.issuer)?;
            Ok((cert.pem(), key.serialize_pem()))
        }

        /// A revocation list (PEM) of this CA naming these serial numbers.
        pub fn crl(&self, revoked: &[u64]) -> anyhow::Result<String> {
            let params = CertificateRevocationListParams {
                this_update: rcgen::date_time_ymd(2020, 1, 1),
                next_update: rcgen::date_time_ymd(2099, 1, 1),
                crl_number: SerialNumber::from(1u64),
                issuing_distribution_point: None,
                revoked_certs: revoked
                    .iter()
                    .map(|serial| RevokedCertParams {
                        serial_number: SerialNumber::from(*serial),
                        revocation_time: rcgen::date_time_ymd(2021, 1, 1),
                        reason_code: None,
                        invalidity_date: None,
                    })
                    .collect(),
                key_identifier_method: rcgen::KeyIdMethod::Sha256,
            };
            Ok(params.signed_by(&self.issuer)?.pem()?)
        }
    }
}
