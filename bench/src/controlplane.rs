//! Section 3: the control plane at scale. Generates a manifests folder of N Ingresses (each with its
//! own Service and EndpointSlice; the first 500 with a TLS Secret), then
//! - translate: in a fresh child process (`bench translate-probe`), load the folder
//!   (`source::files::load_dir`) and run `translate::ingress::translate`, reporting wall time and the
//!   process's RSS after each step and its peak (VmHWM);
//! - propagation: `wasm-ingress serve` + Envoy on that folder; ≥ 20 times, a new Ingress file with a
//!   new path is written (atomic rename) and the clock runs until Envoy answers the new path 200.
//!   With `Source::Kube` the same objects live in the stand-in Kubernetes API server
//!   (`wasm_ingress_tests::apiserver`) and `serve --kubeconfig` receives each change as a watch event.
//!
//! Also reports Envoy's RSS with the table loaded.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use wasm_ingress_tests::apiserver::ApiServer;

use crate::gateways::{self, Tools};
use crate::procs::{status_field_kib, KeepAliveClient, Response};
use crate::workload::{endpoint_slice_doc, ingress_doc, service_doc, to_yaml_stream, Kind, PathRule, NAMESPACE};

/// Ingresses per manifest file (with their Services and EndpointSlices).
pub const INGRESSES_PER_FILE: usize = 10;
pub const PROPAGATION_HOST: &str = "propagation.bench.example";
/// The host whose Service's EndpointSlice the endpoint changes move.
pub const ENDPOINTS_HOST: &str = "endpoints.bench.example";
const ENDPOINTS_SERVICE: &str = "endpoints-probe";
/// The marker of the second backend the endpoint changes move to.
const ENDPOINTS_MARKER: &str = "second";

fn scale_host(i: usize) -> String {
    format!("app{i}.scale.bench.example")
}

/// Write N Ingresses (+ Services, EndpointSlices) and `tls` TLS Secrets into `dir`.
pub fn write_scale_manifests(dir: &Path, ingresses: usize, tls: usize, backend_port: u16) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    for (file, docs) in scale_objects(ingresses, tls, backend_port)? {
        std::fs::write(dir.join(file), to_yaml_stream(&docs))?;
    }
    Ok(())
}

/// For development (by hand): `BENCH_CIPHER_HOSTS=N[/K]` gives the first N TLS Ingresses an
/// `ssl-ciphers` list, one of K different ones (default N), so that the HTTPS listener has an SNI
/// filter chain per list (hosts with the same list share one).
fn cipher_list(index: usize) -> Option<String> {
    // The first six names Envoy takes (ECDHE with AES-GCM or ChaCha20, for ECDSA and RSA keys):
    // every order of them is a list Envoy takes.
    let all = wasm_ingress::translate::edge::TLS12_CIPHERS;
    let six = all.get(..6).unwrap_or(all);
    let setting = std::env::var("BENCH_CIPHER_HOSTS").ok()?;
    let (hosts, lists) = setting.split_once('/').unwrap_or((setting.as_str(), setting.as_str()));
    let (hosts, lists): (usize, usize) = (hosts.parse().ok()?, lists.parse().ok()?);
    if index >= hosts || lists == 0 || six.is_empty() {
        return None;
    }
    // Up to 12 different lists: the six suites rotated, forwards or backwards.
    let list = index % lists.min(2 * six.len());
    let mut suites = six.to_vec();
    suites.rotate_left(list % six.len());
    if list >= six.len() {
        suites.reverse();
    }
    Some(suites.join(":"))
}

/// N Ingresses (+ Services, EndpointSlices) and `tls` TLS Secrets, by the file they go into.
fn scale_objects(ingresses: usize, tls: usize, backend_port: u16) -> Result<Vec<(String, Vec<Value>)>> {
    let mut files = Vec::new();
    let class = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": wasm_ingress::cli::DEFAULT_INGRESS_CLASS},
        "spec": {"controller": wasm_ingress::cli::DEFAULT_CONTROLLER_NAME},
    });
    // The Service the propagation probes point at.
    let base = vec![class, service_doc("propagation", backend_port), endpoint_slice_doc("propagation", backend_port)];
    files.push(("apps-base.yaml".to_string(), base));
    let mut docs: Vec<Value> = Vec::new();
    for i in 0..ingresses {
        let service = format!("app{i}");
        docs.push(service_doc(&service, backend_port));
        docs.push(endpoint_slice_doc(&service, backend_port));
        let paths = [
            PathRule { kind: Kind::Prefix, path: "/".into(), service: 0 },
            PathRule { kind: Kind::Exact, path: "/healthz".into(), service: 0 },
        ];
        let mut ingress = ingress_doc(&format!("app{i}"), &scale_host(i), &paths);
        for p in ingress["spec"]["rules"][0]["http"]["paths"].as_array_mut().into_iter().flatten() {
            p["backend"]["service"]["name"] = json!(service);
        }
        if i < tls {
            let secret = format!("tls-{i}");
            let certified = rcgen::generate_simple_self_signed(vec![scale_host(i)]).context("rcgen")?;
            docs.push(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {"name": secret, "namespace": NAMESPACE},
                "stringData": {"tls.crt": certified.cert.pem(), "tls.key": certified.signing_key.serialize_pem()},
            }));
            ingress["spec"]["tls"] = json!([{"hosts": [scale_host(i)], "secretName": secret}]);
            // The probes speak plain HTTP: keep ingress-nginx's default HTTPS redirect out of the way
            // (a 308 would read as "not served yet").
            ingress["metadata"]["annotations"] = json!({"nginx.ingress.kubernetes.io/ssl-redirect": "false"});
            if let Some(ciphers) = cipher_list(i) {
                ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/ssl-ciphers"] = json!(ciphers);
            }
        }
        docs.push(ingress);
        if (i + 1) % INGRESSES_PER_FILE == 0 || i + 1 == ingresses {
            files.push((format!("apps-{:05}.yaml", i / INGRESSES_PER_FILE), std::mem::take(&mut docs)));
        }
    }
    Ok(files)
}

/// Where the propagation run reads the cluster from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A manifests folder (`serve --manifests`); a change is a file written by atomic rename.
    Folder,
    /// The stand-in Kubernetes API server over HTTP (`serve --kubeconfig`); a change is an object
    /// applied, which its watchers receive as a watch event.
    Kube,
}

/// The cluster a propagation run changes: the folder's files, or the stand-in API server's objects.
enum Cluster {
    Folder(PathBuf),
    Api(ApiServer),
}

impl Cluster {
    /// Put `docs` into the cluster: as file `file` (replacing it), or applied one by one.
    fn put(&self, file: &str, docs: &[Value]) -> Result<()> {
        match self {
            Cluster::Folder(dir) => gateways::write_atomic(&dir.join(file), &to_yaml_stream(docs)),
            Cluster::Api(api) => api.apply_all(docs.iter().cloned()),
        }
    }

    fn start(source: Source, dir: &Path) -> Result<Cluster> {
        Ok(match source {
            Source::Folder => {
                let manifests = dir.join("manifests");
                let _ = std::fs::remove_dir_all(&manifests);
                std::fs::create_dir_all(&manifests)?;
                Cluster::Folder(manifests)
            }
            Source::Kube => Cluster::Api(ApiServer::start()?),
        })
    }

    /// `wasm-ingress serve` (and Envoy) reading this cluster.
    fn serve(&self, dir: &Path, tools: &Tools) -> Result<gateways::Running> {
        match self {
            Cluster::Folder(_) => gateways::start_wasm_ingress_on(dir, tools),
            Cluster::Api(api) => {
                let kubeconfig = dir.join("kubeconfig");
                std::fs::write(&kubeconfig, api.kubeconfig())?;
                // Plaintext ADS on loopback, as the folder rows (the Kubernetes source asks for
                // --xds-tls-dir unless told otherwise), and the loopback backend allowed.
                let flags = ["--xds-plaintext", "--refuse-local-endpoints", "false"].map(std::ffi::OsStr::new);
                let source = [&["--kubeconfig".as_ref(), kubeconfig.as_os_str()][..], &flags[..]].concat();
                gateways::start_wasm_ingress_reading(dir, tools, &source)
            }
        }
    }
}

/// What `bench translate-probe` prints.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TranslateProbe {
    pub files_load_ms: f64,
    /// Median of the translate runs.
    pub translate_ms: f64,
    pub translate_runs_ms: Vec<f64>,
    /// Median of the same runs of `translate::ingress::incremental::retranslate_in_place` after one
    /// new Ingress (a new path on an existing host without TLS): the hosts it touches spliced into
    /// the last translation, as `serve` does (into a copy made before the clock starts).
    #[serde(default)]
    pub spliced_ms: f64,
    /// Why the change could not be spliced (then `spliced_ms` is 0).
    #[serde(default)]
    pub spliced_error: Option<String>,
    pub rss_start_kib: u64,
    pub rss_after_load_kib: u64,
    pub rss_after_translate_kib: u64,
    pub peak_rss_kib: u64,
    pub ingresses: usize,
    pub hosts: usize,
    pub routes: usize,
    pub clusters: usize,
    pub tls_servers: usize,
    pub diagnostics: usize,
    pub table_json_bytes: usize,
    /// Native time (median of the runs) to parse the table's JSON and to compile it, what the
    /// filter's `on_configure` does in each Envoy VM (there in wasm, slower).
    #[serde(default)]
    pub table_parse_ms: f64,
    #[serde(default)]
    pub table_compile_ms: f64,
}

fn self_rss() -> u64 {
    status_field_kib("/proc/self/status", "VmRSS:").unwrap_or(0)
}

/// The child-process side: load and translate `dir`, `runs` times.
pub fn translate_probe(dir: &Path, runs: usize) -> TranslateProbe {
    let mut probe = TranslateProbe { rss_start_kib: self_rss(), ..TranslateProbe::default() };
    let started = Instant::now();
    let (state, load_diagnostics) = wasm_ingress::source::files::load_dir(dir);
    probe.files_load_ms = started.elapsed().as_secs_f64() * 1e3;
    probe.rss_after_load_kib = self_rss();
    probe.ingresses = state.ingresses.len();
    // `serve`'s defaults (no flags).
    let options = wasm_ingress::translate::ingress::TranslateOptions::default();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let translation = wasm_ingress::translate::ingress::translate(&state, &options);
        probe.translate_runs_ms.push(started.elapsed().as_secs_f64() * 1e3);
        last = Some(translation);
    }
    probe.translate_ms = crate::stats::median(&probe.translate_runs_ms);
    if let Some(full) = &last {
        spliced(&mut probe, &state, full, &options, runs);
    }
    probe.rss_after_translate_kib = self_rss();
    probe.peak_rss_kib = status_field_kib("/proc/self/status", "VmHWM:").unwrap_or(0);
    if let Some(t) = last {
        probe.hosts = t.model.route_table.hosts.len();
        probe.routes = t.model.route_table.hosts.iter().map(|h| h.routes.len()).sum();
        probe.clusters = t.model.clusters.len();
        probe.tls_servers = t.model.tls_servers.len();
        probe.diagnostics = t.diagnostics.len() + load_diagnostics.len();
        let json = t.model.route_table.to_json();
        probe.table_json_bytes = json.len();
        if let Ok(path) = std::env::var("BENCH_DUMP_TABLE") {
            let _ = std::fs::write(path, &json);
        }
        let (mut parse, mut compile) = (Vec::new(), Vec::new());
        for _ in 0..runs.max(1) {
            let started = Instant::now();
            let Ok(table) = wasm_ingress_filter::table::RouteTable::from_json(json.as_bytes()) else { break };
            parse.push(started.elapsed().as_secs_f64() * 1e3);
            let started = Instant::now();
            let _ = wasm_ingress_filter::matcher::CompiledTable::compile(table);
            compile.push(started.elapsed().as_secs_f64() * 1e3);
        }
        probe.table_parse_ms = crate::stats::median(&parse);
        probe.table_compile_ms = crate::stats::median(&compile);
    }
    probe
}

/// Time splicing one new Ingress (a copy of the first Ingress, with a new path and without its
/// TLS entries, on the same host) into `full`, the translation of `state`.
fn spliced(probe: &mut TranslateProbe, state: &wasm_ingress::state::ClusterState, full: &wasm_ingress::model::Translation, options: &wasm_ingress::translate::ingress::TranslateOptions, runs: usize) {
    use wasm_ingress::translate::ingress::incremental::retranslate_in_place;
    let Some((key, ingress)) = state.ingresses.iter().next() else {
        probe.spliced_error = Some("no Ingress".into());
        return;
    };
    let mut added = (**ingress).clone();
    added.metadata.name = Some(format!("{}-spliced", key.name));
    if let Some(spec) = added.spec.as_mut() {
        spec.tls = None;
        if let Some(path) = spec.rules.as_mut().and_then(|rules| rules.first_mut()?.http.as_mut()?.paths.first_mut()) {
            path.path = Some("/spliced-probe".into());
        }
    }
    let mut after = state.clone();
    std::sync::Arc::make_mut(&mut after.ingresses).insert(wasm_ingress::state::ObjectKey::new(key.namespace.clone(), format!("{}-spliced", key.name)), std::sync::Arc::new(added));
    let mut samples = Vec::new();
    for _ in 0..runs.max(1) {
        let mut last = full.clone();
        let started = Instant::now();
        match retranslate_in_place(&mut last, state, &after, options) {
            Ok(_) => samples.push(started.elapsed().as_secs_f64() * 1e3),
            Err(why) => {
                probe.spliced_error = Some(why.to_string());
                return;
            }
        }
    }
    probe.spliced_ms = crate::stats::median(&samples);
}

/// Run the probe in a fresh process (so RSS is this N's alone).
pub fn run_translate_probe(dir: &Path, runs: usize) -> Result<TranslateProbe> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command.arg("translate-probe").arg("--dir").arg(dir).args(["--runs", &runs.to_string()]);
    let out = crate::procs::run(command, "bench translate-probe")?;
    serde_json::from_str(out.trim()).with_context(|| format!("parse probe output {out}"))
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PropagationResult {
    pub source: Option<Source>,
    pub ingresses: usize,
    /// Ingresses with a TLS entry (each is one SNI filter chain in Envoy).
    pub tls_secrets: usize,
    pub error: Option<String>,
    /// Seconds from starting the control plane until Envoy served the generated table.
    pub initial_ready_seconds: f64,
    pub changes: usize,
    pub samples_ms: Vec<f64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub envoy_rss_kib: u64,
    pub control_plane_rss_kib: u64,
    /// EndpointSlice-only changes: the probe Service's one slice moved between two live backends;
    /// the clock stops at the first answer from the backend the slice now names.
    pub endpoint_samples_ms: Vec<f64>,
    pub endpoint_p50_ms: f64,
    pub endpoint_p99_ms: f64,
    pub endpoint_max_ms: f64,
    /// Listener, cluster, route and filter-configuration updates Envoy applied during the
    /// endpoint changes (0: only EDS was pushed).
    pub endpoint_other_updates: u64,
}

/// Measure propagation on a folder of `ingresses` Ingresses.
pub fn run_propagation(root: &Path, tools: &Tools, backend_port: u16, size: (usize, usize), changes: usize, source: Source) -> PropagationResult {
    let (ingresses, tls) = size;
    let mut result = PropagationResult { source: Some(source), ingresses, tls_secrets: tls.min(ingresses), ..PropagationResult::default() };
    if let Err(e) = propagation_inner(root, tools, backend_port, size, changes, source, &mut result) {
        eprintln!("   propagation N={ingresses} FAILED: {e:#}");
        result.error = Some(format!("{e:#}"));
    }
    result
}

fn get_status(port: u16, authority: &str, path: &str) -> Option<u16> {
    KeepAliveClient::connect(port, Duration::from_secs(2)).ok()?.get(authority, path).ok().map(|r| r.status)
}

fn propagation_inner(
    root: &Path,
    tools: &Tools,
    backend_port: u16,
    (ingresses, tls): (usize, usize),
    changes: usize,
    source: Source,
    result: &mut PropagationResult,
) -> Result<()> {
    let dir = root.join(format!("propagation-{ingresses}-tls{tls}-{source:?}").to_lowercase());
    std::fs::create_dir_all(&dir)?;
    let cluster = Cluster::start(source, &dir)?;
    for (file, docs) in scale_objects(ingresses, tls, backend_port)? {
        cluster.put(&file, &docs)?;
    }
    let rule = [PathRule { kind: Kind::Prefix, path: "/".into(), service: 0 }];
    let mut probe = ingress_doc(ENDPOINTS_SERVICE, ENDPOINTS_HOST, &rule);
    probe["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = json!(ENDPOINTS_SERVICE);
    cluster.put("endpoints-probe.yaml", &[probe, service_doc(ENDPOINTS_SERVICE, backend_port)])?;
    // The endpoint changes move the probe's Service between two live backends, the second one
    // marked: the clock stops at the first answer from the backend the slice now names.
    let marked = gateways::start_marked_backend(&dir, &tools.nginx, ENDPOINTS_MARKER)?;
    cluster.put("endpoints-probe-slice.yaml", &[endpoint_slice_doc(ENDPOINTS_SERVICE, marked.port)])?;
    let started = Instant::now();
    let mut running = cluster.serve(&dir, tools)?;
    // Ready when the last Ingress's host is served.
    let last_host = scale_host(ingresses - 1);
    let deadline = Instant::now() + Duration::from_secs(300);
    while get_status(running.port, &last_host, "/healthz") != Some(200) {
        running.check_alive()?;
        if Instant::now() > deadline {
            bail!("Envoy did not serve {last_host} within 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    result.initial_ready_seconds = started.elapsed().as_secs_f64();
    eprintln!("   propagation N={ingresses} ({source:?}): serving after {:.1}s", result.initial_ready_seconds);

    let mut client = KeepAliveClient::connect(running.port, Duration::from_secs(5))?;
    for k in 0..changes {
        let path = format!("/new-{k}");
        let before = client.get(PROPAGATION_HOST, &path)?;
        if before.status == 200 {
            bail!("{PROPAGATION_HOST}{path} answered 200 before the change");
        }
        let rule = [PathRule { kind: Kind::Exact, path: path.clone(), service: 0 }];
        let mut ingress = ingress_doc(&format!("propagation-{k}"), PROPAGATION_HOST, &rule);
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = json!("propagation");
        cluster.put(&format!("propagation-{k:03}.yaml"), &[ingress])?;
        let sample = served_after(&mut client, running.port, PROPAGATION_HOST, &path, |r| r.status == 200, Instant::now())
            .with_context(|| format!("change {k}"))?;
        result.samples_ms.push(sample);
        running.check_alive()?;
        // Let the system settle between changes (and not hit the watcher's debounce window).
        std::thread::sleep(Duration::from_millis(300));
    }
    let other_updates = |running: &gateways::Running| {
        [("listener_manager.lds.", "update_success"), ("cluster_manager.cds.", "update_success"), ("http.", "update_success"), ("extension_config_discovery.", "config_reload")]
            .into_iter()
            .map(|(prefix, suffix)| running.envoy_counter(prefix, suffix))
            .sum::<u64>()
    };
    let updates_before = other_updates(&running);
    for k in 0..changes {
        let (port, marker) = if k % 2 == 0 { (backend_port, None) } else { (marked.port, Some(ENDPOINTS_MARKER)) };
        cluster.put("endpoints-probe-slice.yaml", &[endpoint_slice_doc(ENDPOINTS_SERVICE, port)])?;
        let moved = |r: &Response| r.status == 200 && r.backend_marker.as_deref() == marker;
        let sample = served_after(&mut client, running.port, ENDPOINTS_HOST, "/", moved, Instant::now())
            .with_context(|| format!("endpoint change {k}"))?;
        result.endpoint_samples_ms.push(sample);
        std::thread::sleep(Duration::from_millis(300));
    }
    result.endpoint_other_updates = other_updates(&running).saturating_sub(updates_before);
    result.endpoint_p50_ms = crate::stats::percentile(&result.endpoint_samples_ms, 50.0);
    result.endpoint_p99_ms = crate::stats::percentile(&result.endpoint_samples_ms, 99.0);
    result.endpoint_max_ms = result.endpoint_samples_ms.iter().copied().fold(0.0, f64::max);
    result.changes = result.samples_ms.len();
    result.p50_ms = crate::stats::percentile(&result.samples_ms, 50.0);
    result.p99_ms = crate::stats::percentile(&result.samples_ms, 99.0);
    result.max_ms = result.samples_ms.iter().copied().fold(0.0, f64::max);
    result.envoy_rss_kib = running.rss_kib();
    result.control_plane_rss_kib = running.processes.get(1).and_then(|(c, _)| crate::procs::rss_kib(c.pid())).unwrap_or(0);
    eprintln!("   propagation N={ingresses}: p50 {:.0} ms p99 {:.0} ms max {:.0} ms (n={})", result.p50_ms, result.p99_ms, result.max_ms, result.changes);
    eprintln!(
        "   propagation N={ingresses}: endpoints p50 {:.0} ms p99 {:.0} ms max {:.0} ms, other updates {}",
        result.endpoint_p50_ms, result.endpoint_p99_ms, result.endpoint_max_ms, result.endpoint_other_updates
    );
    Ok(())
}

/// Poll `authority` `path` every 2 ms (reconnecting when Envoy closes) until it answers `status`;
/// milliseconds since `changed`.
/// Milliseconds from `changed` until a request for `authority``path` gets a response `served`
/// accepts, polling every 2 ms on a keep-alive connection.
fn served_after(client: &mut KeepAliveClient, port: u16, authority: &str, path: &str, served: impl Fn(&Response) -> bool, changed: Instant) -> Result<f64> {
    loop {
        match client.get(authority, path) {
            Ok(response) if served(&response) => return Ok(changed.elapsed().as_secs_f64() * 1e3),
            Ok(response) if !response.closed => {}
            _ => *client = KeepAliveClient::connect(port, Duration::from_secs(5))?,
        }
        if changed.elapsed() > Duration::from_secs(30) {
            bail!("{authority}{path} was not served as changed within 30 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Section 3 translate numbers for one N.
#[derive(Debug, Clone, Serialize)]
pub struct TranslateResult {
    pub ingresses: usize,
    pub tls_secrets: usize,
    pub manifest_bytes: u64,
    pub error: Option<String>,
    pub probe: Option<TranslateProbe>,
}

pub fn run_translate(root: &Path, ingresses: usize, tls: usize, runs: usize) -> TranslateResult {
    let dir: PathBuf = root.join(format!("translate-{ingresses}"));
    let mut result = TranslateResult { ingresses, tls_secrets: tls.min(ingresses), manifest_bytes: 0, error: None, probe: None };
    let outcome = write_scale_manifests(&dir, ingresses, tls, 8080).and_then(|()| {
        result.manifest_bytes = std::fs::read_dir(&dir)?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
        run_translate_probe(&dir, runs)
    });
    match outcome {
        Ok(probe) => {
            eprintln!(
                "   translate N={ingresses}: load {:.0} ms translate {:.0} ms one Ingress spliced {:.1} ms peak RSS {} MiB",
                probe.files_load_ms,
                probe.translate_ms,
                probe.spliced_ms,
                probe.peak_rss_kib / 1024
            );
            result.probe = Some(probe);
        }
        Err(e) => {
            eprintln!("   translate N={ingresses} FAILED: {e:#}");
            result.error = Some(format!("{e:#}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}
