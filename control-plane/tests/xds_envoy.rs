//! xDS delivery to a real Envoy 1.40: `wasm-ingress serve` on a manifests folder, Envoy started from
//! `wasm-ingress bootstrap` output, and Envoy's own admin `/config_dump` checked for what arrived and
//! was accepted (listeners, clusters, endpoints, secrets, the ECDS filter config), at the versions the
//! control plane published, with no NACK, over both ADS protocols (delta and state of the world).
//! HTTP routing end to end is tested in `tests/`.
//!
//! Needs Envoy (`WASM_INGRESS_ENVOY`, default `.venv/envoy`) and the filter (`WASM_INGRESS_FILTER_WASM`,
//! default `target/wasm32-wasip1/release/wasm_ingress_filter.wasm`): missing ones fail the test with
//! "run `make build envoy`" — never skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_wasm-ingress");
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const CLUSTER: &str = "default/web/80";
const SECRET: &str = "default/web-tls";
const FILTER_CONFIG: &str = "wasm-ingress.router";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn artifact(var: &str, default: &str, what: &str) -> PathBuf {
    let path = match std::env::var_os(var) {
        Some(value) if !value.is_empty() => PathBuf::from(value),
        _ => workspace_root().join(default),
    };
    assert!(path.is_file(), "{what} not found at {} (set {var} or run `make build envoy`)", path.display());
    path
}

fn envoy_binary() -> PathBuf {
    artifact("WASM_INGRESS_ENVOY", ".venv/envoy", "Envoy binary")
}

fn filter_wasm() -> PathBuf {
    artifact("WASM_INGRESS_FILTER_WASM", "target/wasm32-wasip1/release/wasm_ingress_filter.wasm", "filter .wasm")
}

fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A child process killed (and reaped) on drop; its output goes to `log`.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn start(command: &mut Command, log: PathBuf) -> Process {
        let file = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Process { child, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over HTTP/1.1 (`Connection: close`; Envoy refuses HTTP/1.0); (status, body).
fn http_get(address: SocketAddr, host: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding: chunked"));
    Some((status, if chunked { dechunk(body)? } else { body.to_string() }))
}

/// Decode a chunked body.
fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size + 2..)?;
    }
}

/// Poll `check` every 100 ms until it gives a value or `timeout` passes.
fn wait_for<T>(what: &str, timeout: Duration, logs: &[&Process], mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|p| format!("--- {}\n{}", p.log.display(), p.output())).collect();
            panic!("timed out after {timeout:?} waiting for {what}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A certificate and key (PEM) for web.example.com.
fn certificate() -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["web.example.com".to_string()]).unwrap();
    (certified.cert.pem(), certified.signing_key.serialize_pem())
}

fn manifests(endpoints: &[&str], (cert, key): &(String, String)) -> String {
    let b64 = |pem: String| base64::engine::general_purpose::STANDARD.encode(pem);
    let addresses: Vec<String> = endpoints.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  ingressClassName: wasm
  tls:
  - hosts: [web.example.com]
    secretName: web-tls
  rules:
  - host: web.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- name: http
  port: 8080
endpoints:
- addresses: [{addresses}]
  conditions:
    ready: true
---
apiVersion: v1
kind: Secret
metadata:
  name: web-tls
type: kubernetes.io/tls
data:
  tls.crt: {cert}
  tls.key: {key}
"#,
        addresses = addresses.join(", "),
        cert = b64(cert.clone()),
        key = b64(key.clone()),
    )
}

/// A control plane on a manifests folder and an Envoy bootstrapped to it.
struct Gateway {
    // Field order: Envoy is stopped before the control plane.
    envoy: Process,
    control_plane: Process,
    envoy_admin: SocketAddr,
    control_plane_admin: SocketAddr,
    http: SocketAddr,
    manifests: PathBuf,
    certificate: (String, String),
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// `protocol`: `bootstrap --xds-protocol` (`delta` or `sotw`).
    fn start(endpoints: &[&str], filter_wasm: &Path, protocol: &str) -> Gateway {
        let envoy_binary = envoy_binary();
        let dir = tempfile::tempdir().unwrap();
        let manifests = dir.path().join("manifests");
        std::fs::create_dir(&manifests).unwrap();
        let certificate = certificate();
        std::fs::write(manifests.join("web.yaml"), self::manifests(endpoints, &certificate)).unwrap();
        let (xds, http, https, control_plane_admin, envoy_admin) =
            (free_address(), free_address(), free_address(), free_address(), free_address());
        let control_plane = Process::start(
            Command::new(BIN)
                .arg("serve")
                .arg("--manifests")
                .arg(&manifests)
                .args(["--xds-listen", &xds.to_string(), "--http-listen", &http.to_string()])
                .args(["--https-listen", &https.to_string(), "--admin-listen", &control_plane_admin.to_string()])
                .arg("--filter-wasm")
                .arg(filter_wasm)
                .env("RUST_LOG", "info,wasm_ingress::xds=debug"),
            dir.path().join("control-plane.log"),
        );
        let bootstrap = Command::new(BIN)
            .args(["bootstrap", "--xds-address", &xds.to_string(), "--admin-address", &envoy_admin.to_string()])
            .args(["--node-id", "xds-test", "--xds-protocol", protocol])
            .output()
            .unwrap();
        assert!(bootstrap.status.success(), "bootstrap failed: {}", String::from_utf8_lossy(&bootstrap.stderr));
        let bootstrap_path = dir.path().join("bootstrap.yaml");
        std::fs::write(&bootstrap_path, &bootstrap.stdout).unwrap();
        let envoy = Process::start(
            Command::new(envoy_binary)
                .arg("-c")
                .arg(&bootstrap_path)
                .args(["--use-dynamic-base-id", "--concurrency", "1", "--log-level", "info"]),
            dir.path().join("envoy.log"),
        );
        Gateway { envoy, control_plane, envoy_admin, control_plane_admin, http, manifests, certificate, _dir: dir }
    }

    fn config_dump(&self) -> Option<Value> {
        let (status, body) = http_get(self.envoy_admin, "admin", "/config_dump?include_eds")?;
        (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()
    }

    fn metrics(&self) -> String {
        http_get(self.control_plane_admin, "admin", "/metrics").map(|(_, body)| body).unwrap_or_default()
    }

    /// The version the control plane currently serves for `xds_type` (`lds`, `cds`, …).
    fn served_version(&self, xds_type: &str) -> Option<String> {
        let prefix = "xds_snapshot_version_info{";
        self.metrics().lines().find_map(|line| {
            let labels = line.strip_prefix(prefix)?.split_once('}')?.0;
            if !labels.contains(&format!("type=\"{xds_type}\"")) {
                return None;
            }
            let version = labels.split("version=\"").nth(1)?;
            Some(version.split('"').next()?.to_string())
        })
    }

    fn logs(&self) -> [&Process; 2] {
        [&self.control_plane, &self.envoy]
    }
}

fn config_of<'a>(dump: &'a Value, type_suffix: &str) -> &'a Value {
    dump["configs"]
        .as_array()
        .and_then(|configs| configs.iter().find(|c| c["@type"].as_str().is_some_and(|t| t.ends_with(type_suffix))))
        .unwrap_or(&Value::Null)
}

fn items<'a>(value: &'a Value, key: &str) -> Vec<&'a Value> {
    value[key].as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

/// What Envoy has accepted, as (name, version) per type.
#[derive(Debug, Default, PartialEq)]
struct Accepted {
    listeners: Vec<(String, String)>,
    clusters: Vec<(String, String)>,
    endpoints: Vec<(String, Vec<String>)>,
    secrets: Vec<(String, String)>,
    filter_configs: Vec<(String, String, String)>,
}

fn accepted(dump: &Value) -> Accepted {
    let listeners = items(config_of(dump, "ListenersConfigDump"), "dynamic_listeners")
        .into_iter()
        .filter_map(|l| {
            let active = &l["active_state"];
            Some((active["listener"]["name"].as_str()?.to_string(), active["version_info"].as_str()?.to_string()))
        })
        .collect();
    let clusters = items(config_of(dump, "ClustersConfigDump"), "dynamic_active_clusters")
        .into_iter()
        .filter_map(|c| Some((c["cluster"]["name"].as_str()?.to_string(), c["version_info"].as_str()?.to_string())))
        .collect();
    let endpoints = items(config_of(dump, "EndpointsConfigDump"), "dynamic_endpoint_configs")
        .into_iter()
        .filter_map(|e| {
            let config = &e["endpoint_config"];
            let mut addresses: Vec<String> = items(config, "endpoints")
                .into_iter()
                .flat_map(|locality| items(locality, "lb_endpoints"))
                .filter_map(|lb| {
                    let socket = &lb["endpoint"]["address"]["socket_address"];
                    Some(format!("{}:{}", socket["address"].as_str()?, socket["port_value"].as_u64()?))
                })
                .collect();
            addresses.sort();
            Some((config["cluster_name"].as_str()?.to_string(), addresses))
        })
        .collect();
    let secrets = items(config_of(dump, "SecretsConfigDump"), "dynamic_active_secrets")
        .into_iter()
        .filter_map(|s| Some((s["name"].as_str()?.to_string(), s["version_info"].as_str()?.to_string())))
        .collect();
    let filter_configs = items(config_of(dump, "EcdsConfigDump"), "ecds_filters")
        .into_iter()
        .filter_map(|f| {
            let config = &f["ecds_filter"];
            let table = config["typed_config"]["config"]["configuration"]["value"].as_str()?.to_string();
            Some((config["name"].as_str()?.to_string(), f["version_info"].as_str()?.to_string(), table))
        })
        .collect();
    Accepted { listeners, clusters, endpoints, secrets, filter_configs }
}

/// Every type arrives, is active at the version the control plane serves, and nothing is NACKed;
/// then an endpoint edit in the folder reaches Envoy as an EDS push alone. State of the world:
/// each resource shows the version of its type's snapshot.
#[test]
fn envoy_accepts_every_resource_type_and_follows_an_endpoint_edit() {
    accepts_every_resource_type_and_follows_an_endpoint_edit("sotw", |shown, served| shown == served);
}

/// The same over delta xDS, where each resource shows its own version (a content hash).
#[test]
fn envoy_accepts_every_resource_type_and_follows_an_endpoint_edit_over_delta_xds() {
    let own_version = |shown: &str, _served: &str| shown.len() == 16 && shown.bytes().all(|b| b.is_ascii_hexdigit());
    accepts_every_resource_type_and_follows_an_endpoint_edit("delta", own_version);
}

fn accepts_every_resource_type_and_follows_an_endpoint_edit(protocol: &str, at_version: impl Fn(&str, &str) -> bool) {
    let gateway = Gateway::start(&["127.0.0.1"], &filter_wasm(), protocol);
    let logs = gateway.logs();

    let (dump, versions) = wait_for("Envoy to accept listeners, clusters, endpoints, secrets and ECDS", STARTUP_TIMEOUT, &logs, || {
        let versions: Vec<String> =
            ["lds", "cds", "eds", "sds", "ecds"].iter().map(|t| gateway.served_version(t)).collect::<Option<_>>()?;
        let dump = gateway.config_dump()?;
        let accepted = accepted(&dump);
        let complete = accepted.listeners.len() == 2
            && accepted.listeners.iter().all(|(_, v)| at_version(v, &versions[0]))
            && accepted.clusters.iter().any(|(n, v)| n == CLUSTER && at_version(v, &versions[1]))
            && accepted.endpoints.iter().any(|(n, _)| n == CLUSTER)
            && accepted.secrets.iter().any(|(n, v)| n == SECRET && at_version(v, &versions[3]))
            && accepted.filter_configs.iter().any(|(n, v, _)| n == FILTER_CONFIG && at_version(v, &versions[4]));
        complete.then_some((dump, versions))
    });
    let first = accepted(&dump);
    let mut listener_names: Vec<&str> = first.listeners.iter().map(|(n, _)| n.as_str()).collect();
    listener_names.sort();
    assert_eq!(listener_names, vec!["http", "https"]);
    assert_eq!(first.endpoints, vec![(CLUSTER.to_string(), vec!["127.0.0.1:8080".to_string()])]);
    let (_, _, table) = &first.filter_configs[0];
    assert!(table.contains("web.example.com") && table.contains(CLUSTER), "route table: {table}");
    let dump_text = dump.to_string();
    assert!(!dump_text.contains("error_state"), "Envoy rejected something: {dump_text}");
    assert!(!dump_text.contains("warming_state"), "a listener is still warming: {dump_text}");

    let metrics = gateway.metrics();
    for line in ["xds_connected_streams 1"]
        .into_iter()
        .map(String::from)
        .chain(["lds", "cds", "eds", "sds", "ecds"].iter().map(|t| format!("xds_nacks_total{{type=\"{t}\"}} 0")))
    {
        assert!(metrics.lines().any(|l| l == line), "missing {line:?} in\n{metrics}");
    }
    assert_eq!(http_get(gateway.control_plane_admin, "admin", "/readyz").map(|(s, _)| s), Some(200));
    // The HTTP listener is live: a host no Ingress names is answered by the filter.
    assert_eq!(http_get(gateway.http, "unknown.example", "/").map(|(s, _)| s), Some(404));

    // An endpoint is added: only EDS changes.
    let pushes = |metrics: &str, t: &str| -> Option<u64> {
        metrics.lines().find_map(|l| l.strip_prefix(&format!("xds_pushes_total{{type=\"{t}\"}} "))?.parse().ok())
    };
    let before = gateway.metrics();
    std::fs::write(gateway.manifests.join("web.yaml"), manifests(&["127.0.0.1", "127.0.0.2"], &gateway.certificate)).unwrap();
    let started = Instant::now();
    wait_for("the new endpoint to reach Envoy", STARTUP_TIMEOUT, &logs, || {
        let eds = gateway.served_version("eds")?;
        (eds != versions[2]).then_some(())?;
        let accepted = accepted(&gateway.config_dump()?);
        let endpoints = accepted.endpoints.iter().find(|(n, _)| n == CLUSTER)?;
        (endpoints.1 == ["127.0.0.1:8080", "127.0.0.2:8080"]).then_some(())
    });
    eprintln!("endpoint edit reached Envoy in {:?}", started.elapsed());
    let after = gateway.metrics();
    // Listeners, clusters, secrets and the route table did not change: not pushed again.
    for t in ["lds", "cds", "sds", "ecds"] {
        assert_eq!(pushes(&after, t), pushes(&before, t), "{t} was pushed again:\n{after}");
    }
    assert!(pushes(&after, "eds") > pushes(&before, "eds"));
    assert_eq!(gateway.served_version("lds").as_deref(), Some(versions[0].as_str()));
    assert!(after.lines().any(|l| l == "xds_nacks_total{type=\"eds\"} 0"), "{after}");
}

/// Envoy refuses a filter config whose .wasm it cannot load: the control plane sees the NACK,
/// counts it, and stays up.
#[test]
fn an_ecds_nack_from_envoy_is_counted() {
    let missing = std::env::temp_dir().join("wasm-ingress-xds-test-no-such-filter.wasm");
    let gateway = Gateway::start(&["127.0.0.1"], &missing, "delta");
    let logs = gateway.logs();
    wait_for("the ECDS NACK to be counted", STARTUP_TIMEOUT, &logs, || {
        let metrics = gateway.metrics();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("xds_nacks_total{type=\"ecds\"} ")?.parse::<u64>().ok())
            .filter(|n| *n >= 1)
    });
    assert!(gateway.control_plane.output().contains("NACK"), "{}", gateway.control_plane.output());
    assert_eq!(http_get(gateway.control_plane_admin, "admin", "/healthz").map(|(s, _)| s), Some(200));
}

#[test]
fn bootstrap_output_passes_envoy_validation() {
    let envoy = envoy_binary();
    let dir = tempfile::tempdir().unwrap();
    for (xds, admin) in [("127.0.0.1:18000", "127.0.0.1:9901"), ("[::1]:18000", "[::1]:9901"), ("xds.wasm-ingress.svc:18000", "0.0.0.0:9901")] {
        let output = Command::new(BIN).args(["bootstrap", "--xds-address", xds, "--admin-address", admin]).output().unwrap();
        assert!(output.status.success(), "{xds}: {}", String::from_utf8_lossy(&output.stderr));
        let path = dir.path().join("bootstrap.yaml");
        std::fs::write(&path, &output.stdout).unwrap();
        let validate = Command::new(&envoy)
            .args(["--mode", "validate", "--use-dynamic-base-id", "-c"])
            .arg(&path)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&validate.stdout), String::from_utf8_lossy(&validate.stderr));
        assert!(validate.status.success() && text.contains("OK"), "{xds}: Envoy refused the bootstrap:\n{text}");
    }
    let bad = Command::new(BIN).args(["bootstrap", "--xds-address", "http://xds:18000"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--xds-address"));
    assert!(bad.stdout.is_empty());
}
