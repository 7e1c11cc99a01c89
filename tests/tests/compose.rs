//! `make compose-test`: envoy/docker-compose.yml — the file users run — started for real with
//! envoy/docker-compose.two-envoys.yml (a second Envoy on the same control plane), on images built
//! from this checkout (envoy/local-images.sh), and checked from the host with real clients against
//! the published ports: routing of examples/ on both Envoys, HTTPS with SNI and the demo CA, a
//! manifest edit on the mounted folder served without a restart, the control plane killed under
//! load (Envoy keeps serving: no failed request) and started again (it converges and serves a new
//! change), and everything removed afterwards, also when a check fails.
//!
//! Ignored by `cargo test` (it needs a container runtime); `make compose-test` runs it with
//! `--ignored`. `WASM_INGRESS_COMPOSE` is the compose command (`podman-compose` by default, or
//! `docker compose`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use wasm_ingress_tests::backend::Echo;
use wasm_ingress_tests::gateway::manifests;
use wasm_ingress_tests::paths::workspace_root;

/// Not the users' project name, so a test never touches a stack someone started by hand.
const PROJECT: &str = "wasm-ingress-compose-test";
/// The two Envoys' published HTTP and HTTPS ports (docker-compose.yml, docker-compose.two-envoys.yml).
const ENVOYS: [(&str, u16, u16); 2] = [("envoy", 8080, 8443), ("envoy-2", 18080, 18443)];
const CONTROL_PLANE_ADMIN: &str = "http://127.0.0.1:9100";

/// The compose project under test; dropping it removes its containers, network and volumes.
struct Stack {
    command: Vec<String>,
    manifests: tempfile::TempDir,
}

impl Stack {
    /// `up -d` on a copy of examples/ (so the test can edit it), images already built.
    fn up() -> Stack {
        let command = std::env::var("WASM_INGRESS_COMPOSE").unwrap_or_else(|_| "podman-compose".into());
        let manifests = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(workspace_root().join("examples")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, manifests.path().join(path.file_name().unwrap())).unwrap();
        }
        // The control plane runs as an unprivileged user: it must be able to read the folder.
        make_readable(manifests.path());
        let stack = Stack { command: command.split_whitespace().map(str::to_string).collect(), manifests };
        // Leftovers of an interrupted run would hold the ports.
        stack.compose(&["down", "-v"], Duration::from_secs(120));
        let (ok, output) = stack.compose(&["up", "-d", "--no-build"], Duration::from_secs(180));
        assert!(ok, "compose up failed:\n{output}");
        stack
    }

    /// Runs the compose command on both files, bounded by `limit` (coreutils `timeout`); returns
    /// whether it succeeded and what it printed.
    fn compose(&self, args: &[&str], limit: Duration) -> (bool, String) {
        let envoy_dir = workspace_root().join("envoy");
        let output = Command::new("timeout")
            .arg("-k")
            .arg("10")
            .arg(limit.as_secs().to_string())
            .args(&self.command)
            .args(["-p", PROJECT, "-f", "docker-compose.yml", "-f", "docker-compose.two-envoys.yml"])
            .args(args)
            .current_dir(&envoy_dir)
            .env("WASM_INGRESS_MANIFESTS", self.manifests.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.command));
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for service in ["bootstrap", "control-plane", "envoy", "envoy-2"] {
            let (_, text) = self.compose(&["logs", "--tail", "40", service], Duration::from_secs(30));
            all.push_str(&format!("---- {service} ----\n{text}\n"));
        }
        all
    }

    fn write(&self, name: &str, objects: &[serde_json::Value]) {
        manifests::write(self.manifests.path(), name, objects).unwrap();
        make_readable(self.manifests.path());
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let (ok, output) = self.compose(&["down", "-v"], Duration::from_secs(120));
        if !ok {
            eprintln!("compose down failed:\n{output}");
        }
    }
}

fn make_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::set_permissions(entry.unwrap().path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// A client for `*.localhost` names on 127.0.0.1 (as curl resolves them), trusting the demo CA.
fn client() -> reqwest::Client {
    let ca = std::fs::read(workspace_root().join("examples/demo-ca.crt")).unwrap();
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
    for host in ["demo.localhost", "shop.localhost", "x.apps.localhost", "unknown.localhost", "secure.localhost", "edited.localhost", "after-restart.localhost"] {
        builder = builder.resolve(host, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    builder.build().unwrap()
}

/// Status, `location` and the echo (if a backend answered) of `GET url`.
async fn get(client: &reqwest::Client, url: &str) -> anyhow::Result<(u16, Option<String>, Option<Echo>)> {
    get_with(client, url, &[]).await
}

async fn get_with(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> anyhow::Result<(u16, Option<String>, Option<Echo>)> {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let location = response.headers().get("location").map(|v| v.to_str().unwrap_or_default().to_string());
    let body = response.bytes().await?;
    Ok((status, location, Echo::parse(&body).ok()))
}

/// Polls `url` (bounded) until `backend` answers it; the time it took.
async fn wait_served(client: &reqwest::Client, url: &str, backend: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < limit {
        match get(client, url).await {
            Ok((200, _, Some(echo))) if echo.backend == backend => return started.elapsed(),
            Ok((status, _, echo)) => last = format!("status {status}, backend {:?}", echo.map(|e| e.backend)),
            Err(error) => last = format!("{error:#}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{url} not served by {backend} within {limit:?}; last: {last}");
}

/// `host` is not served yet: examples/' default backend (echo-b) answers on both Envoys.
async fn assert_unknown(client: &reqwest::Client, host: &str) {
    for (_, http, _) in ENVOYS {
        let url = format!("http://{host}:{http}/");
        let (status, _, echo) = get(client, &url).await.unwrap();
        assert_eq!((status, echo.map(|e| e.backend)), (200, Some("echo-b".to_string())), "GET {url} before it is configured");
    }
}

fn ingress(name: &str, host: &str, service: &str) -> serde_json::Value {
    manifests::ingress("default", name, json!({}), &[(host, vec![manifests::path("/", "Prefix", service, json!(80))])])
}

/// examples/ as `make run` prints it, on one Envoy.
async fn check_examples(client: &reqwest::Client, http: u16, https: u16) {
    let url = |host: &str, path: &str| format!("http://{host}:{http}{path}");
    let cases = [
        (url("demo.localhost", "/a"), "echo-a", "/a"),
        (url("demo.localhost", "/b/anything"), "echo-b", "/b/anything"),
        (url("x.apps.localhost", "/"), "echo-b", "/"),
        (url("demo.localhost", "/rewrite/new"), "echo-a", "/new"),
        (url("unknown.localhost", "/"), "echo-b", "/"),
        (format!("https://secure.localhost:{https}/"), "echo-a", "/"),
    ];
    for (url, backend, upstream_path) in cases {
        let (status, _, echo) = get(client, &url).await.unwrap_or_else(|e| panic!("GET {url}: {e:#}"));
        let echo = echo.unwrap_or_else(|| panic!("GET {url}: status {status}, no backend answered"));
        assert_eq!((status, echo.backend.as_str(), echo.path.as_str()), (200, backend, upstream_path), "GET {url}");
    }
    // The canary: by header (the weight, 1 in 10, is left to the canary's own tests).
    for (value, backend) in [("always", "echo-b"), ("never", "echo-a")] {
        let url = url("shop.localhost", "/");
        let (status, _, echo) = get_with(client, &url, &[("x-canary", value)]).await.unwrap();
        assert_eq!((status, echo.map(|e| e.backend)), (200, Some(backend.to_string())), "GET {url} with X-Canary: {value}");
    }
    // ssl-redirect: a TLS host over HTTP is sent to HTTPS on the published port.
    let (status, location, _) = get(client, &url("secure.localhost", "/a/")).await.unwrap();
    assert_eq!((status, location.as_deref()), (308, Some("https://secure.localhost:8443/a")));
}

/// Keep-alive GETs on both Envoys until `stop`; counts answers by echo-a and everything else.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(client: &reqwest::Client) -> Load {
        let (stop, ok, failures) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
        let tasks = (0..4)
            .map(|i| {
                let (client, stop, ok, failures) = (client.clone(), stop.clone(), ok.clone(), failures.clone());
                let url = format!("http://demo.localhost:{}/a", ENVOYS[i % 2].1);
                tokio::spawn(async move {
                    // Bounded: the test stops it long before this many requests.
                    for _ in 0..1_000_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        match get(&client, &url).await {
                            Ok((200, _, Some(echo))) if echo.backend == "echo-a" => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            other => failures.lock().unwrap().push(format!("{url}: {other:?}")),
                        }
                    }
                })
            })
            .collect();
        Load { stop, ok, failures, tasks }
    }

    /// Stops the load; (answered, failures).
    async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.ok.load(Ordering::Relaxed), failures)
    }
}

/// The control plane's `xds_connected_streams` gauge, if its admin port answers.
async fn connected_envoys(client: &reqwest::Client) -> Option<u64> {
    let text = client.get(format!("{CONTROL_PLANE_ADMIN}/metrics")).send().await.ok()?.text().await.ok()?;
    text.lines().find_map(|line| line.strip_prefix("xds_connected_streams ")?.trim().parse().ok())
}

async fn wait_connected(client: &reqwest::Client, envoys: u64, limit: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        if connected_envoys(client).await == Some(envoys) {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the control plane did not have {envoys} Envoys connected within {limit:?} (now {:?})", connected_envoys(client).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a container runtime: run by `make compose-test`"]
async fn docker_compose_topology_serves_examples_survives_the_control_plane_and_is_torn_down() {
    let stack = Stack::up();
    let client = client();
    let limit = Duration::from_secs(60);
    for (name, http, _) in ENVOYS {
        let took = wait_served(&client, &format!("http://demo.localhost:{http}/a"), "echo-a", limit).await;
        eprintln!("{name}: serving after {took:?}");
    }
    wait_connected(&client, 2, limit).await;
    for (_, http, https) in ENVOYS {
        check_examples(&client, http, https).await;
    }

    // A manifest edit on the mounted folder: served by both Envoys, nothing restarted. (Before it,
    // the host is unknown and examples/' default backend, echo-b, answers.)
    assert_unknown(&client, "edited.localhost").await;
    stack.write("edited.yaml", &[ingress("edited", "edited.localhost", "echo-a")]);
    for (name, http, _) in ENVOYS {
        let took = wait_served(&client, &format!("http://edited.localhost:{http}/"), "echo-a", Duration::from_secs(30)).await;
        eprintln!("{name}: edit served after {took:?}");
    }

    // The control plane killed under load: both Envoys keep serving what they have.
    let load = Load::start(&client);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (ok, output) = stack.compose(&["kill", "control-plane"], Duration::from_secs(60));
    assert!(ok, "compose kill failed:\n{output}");
    assert_eq!(connected_envoys(&client).await, None, "the control plane's admin still answers after kill");
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Started again: Envoys reconnect (over mutual TLS, by name) and a new change reaches both.
    let (ok, output) = stack.compose(&["start", "control-plane"], Duration::from_secs(120));
    assert!(ok, "compose start failed:\n{output}");
    let took = wait_connected(&client, 2, limit).await;
    eprintln!("both Envoys reconnected {took:?} after the control plane started");
    assert_unknown(&client, "after-restart.localhost").await;
    stack.write("after-restart.yaml", &[ingress("after-restart", "after-restart.localhost", "echo-a")]);
    for (name, http, _) in ENVOYS {
        let took = wait_served(&client, &format!("http://after-restart.localhost:{http}/"), "echo-a", Duration::from_secs(30)).await;
        eprintln!("{name}: change after the restart served after {took:?}");
    }
    let (answered, failures) = load.finish().await;
    eprintln!("load through the kill and restart: {answered} answered, {} failed", failures.len());
    assert!(failures.is_empty(), "{} failed requests, first: {:?}", failures.len(), failures.iter().take(5).collect::<Vec<_>>());
    assert!(answered > 100, "only {answered} requests were answered under load");
    for (_, http, https) in ENVOYS {
        check_examples(&client, http, https).await;
    }

    // Torn down: no container, network or volume of the project is left.
    let runtime = if stack.command[0].contains("docker") { "docker" } else { "podman" };
    drop(stack);
    let label = format!("label=com.docker.compose.project={PROJECT}");
    for what in [vec!["ps", "-a", "-q", "--filter", &label], vec!["network", "ls", "-q", "--filter", &label], vec!["volume", "ls", "-q", "--filter", &label]] {
        let output = Command::new(runtime).args(&what).output().unwrap();
        assert!(output.status.success(), "{runtime} {what:?}: {}", String::from_utf8_lossy(&output.stderr));
        let left = String::from_utf8_lossy(&output.stdout);
        assert!(left.trim().is_empty(), "{runtime} {what:?} after down: {left}");
    }
}
