//! The four gateways and the backend, each started from generated configuration in its own folder:
//! - backend: nginx answering `return 200` (1 worker);
//! - A: wasm-ingress (`wasm-ingress serve --manifests` + Envoy from `wasm-ingress bootstrap`);
//! - B: the same Envoy with native routes, delivered as RDS from a watched file (no wasm filter);
//! - C: nginx (1 worker) with ingress-nginx-style `server`/`location` blocks;
//! - D: the same Envoy with the trivial floor filter and one `cluster_header` route.
//!
//! Envoy configs are built as `serde_json::Value` (structured, never string templates) and written
//! as JSON. Every Envoy runs `--concurrency 1`; nginx runs `worker_processes 1`. This module starts and
//! reconfigures processes; it measures nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::procs::{free_port, wait_for_port, ChildGuard, KeepAliveClient};
use crate::workload::{cluster_name, PathRule, Workload, SERVICES};

/// Paths of the binaries and artefacts the gateways need.
#[derive(Debug, Clone)]
pub struct Tools {
    pub envoy: PathBuf,
    pub filter_wasm: PathBuf,
    pub floor_wasm: PathBuf,
    pub control_plane: PathBuf,
    pub nginx: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Gateway {
    A,
    B,
    C,
    D,
    /// Diagnostic: our filter and route table, statically configured exactly like D (no control
    /// plane, no ECDS). A vs E isolates the delivery/config; E vs D isolates the filter itself.
    E,
    /// A with access policies on every Ingress: CORS (`*`), an allow-list (127.0.0.0/8), a request
    /// limit no client reaches and `auth-url` (the backend, which answers 200). P vs A is what a
    /// route carrying them costs (the auth request is a second request to the backend).
    P,
    /// P without `auth-url`: what the policies Envoy applies by route (CORS, RBAC, local rate limit) cost.
    Q,
}

impl Gateway {
    pub const ALL: [Gateway; 4] = [Gateway::A, Gateway::B, Gateway::C, Gateway::D];

    pub fn describe(self) -> &'static str {
        match self {
            Gateway::A => "A wasm-ingress",
            Gateway::B => "B Envoy native",
            Gateway::C => "C nginx",
            Gateway::D => "D wasm floor",
            Gateway::E => "E our filter, static config",
            Gateway::P => "P wasm-ingress + CORS, allow-list, rate limit, auth-url",
            Gateway::Q => "Q wasm-ingress + CORS, allow-list, rate limit",
        }
    }
}

/// A running gateway: its processes, ports and how to reconfigure it (churn).
pub struct Running {
    pub gateway: Gateway,
    pub dir: PathBuf,
    /// HTTP/1.1 (and, for Envoy, h2c prior-knowledge) port.
    pub port: u16,
    /// h2c port (nginx needs its own `listen … http2`; Envoy serves both on `port`).
    pub h2_port: u16,
    /// Envoy admin port (A, B, D).
    pub admin_port: Option<u16>,
    /// The data-plane process whose RSS we report (Envoy, or the nginx master).
    pub data_plane_pid: u32,
    /// Processes, killed on drop (control plane first in the list for A).
    pub processes: Vec<(ChildGuard, PathBuf)>,
}

impl Running {
    /// Fails if any of the gateway's processes has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        for (child, log) in &mut self.processes {
            child.check_alive(log)?;
        }
        Ok(())
    }

    /// Resident memory of the data plane (Envoy; nginx master + workers), KiB.
    pub fn rss_kib(&self) -> u64 {
        let mut total = crate::procs::rss_kib(self.data_plane_pid).unwrap_or(0);
        if self.gateway == Gateway::C {
            total += crate::procs::children(self.data_plane_pid).into_iter().filter_map(crate::procs::rss_kib).sum::<u64>();
        }
        total
    }

    /// Envoy admin `/stats` counters whose name starts with `prefix` and ends with `suffix`, summed
    /// (0 for nginx).
    pub fn envoy_counter(&self, prefix: &str, suffix: &str) -> u64 {
        let Some(admin) = self.admin_port else { return 0 };
        let body = http_get_body(admin, "/stats").unwrap_or_default();
        body.lines()
            .filter(|l| l.split(": ").next().is_some_and(|name| name.starts_with(prefix) && name.ends_with(suffix)))
            .filter_map(|l| l.rsplit(": ").next().and_then(|v| v.trim().parse::<u64>().ok()))
            .sum()
    }
}

/// GET a small admin body with curl (simplest correct client for bodies).
pub fn http_get_body(port: u16, path: &str) -> Result<String> {
    let mut command = Command::new("curl");
    command.args(["-sS", "--max-time", "10", &format!("http://127.0.0.1:{port}{path}")]);
    crate::procs::run(command, "curl admin")
}

fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

/// Write `content` to `path` atomically (temp file in the same folder, then rename): watchers see
/// one complete change.
pub fn write_atomic(path: &Path, content: &str) -> Result<()> {
    let dir = path.parent().context("no parent")?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("f")));
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

// ---------------------------------------------------------------- backend

pub fn start_backend(root: &Path, nginx: &Path) -> Result<Running> {
    start_nginx_backend(root, nginx, "backend", None)
}

/// A second backend for the endpoint-change measurements: it answers with
/// [`BACKEND_MARKER_HEADER`]`: marker`, so a client sees which of the two served it.
pub fn start_marked_backend(root: &Path, nginx: &Path, marker: &str) -> Result<Running> {
    start_nginx_backend(root, nginx, &format!("backend-{marker}"), Some(marker))
}

/// The response header a marked backend sets.
pub const BACKEND_MARKER_HEADER: &str = "x-bench-backend";

fn start_nginx_backend(root: &Path, nginx: &Path, name: &str, marker: Option<&str>) -> Result<Running> {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("tmp"))?;
    let port = free_port()?;
    let header = marker.map(|m| format!("add_header {BACKEND_MARKER_HEADER} {m} always; ")).unwrap_or_default();
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 10000000;\n  keepalive_timeout 300s;\n{temps}\
         \n  server {{\n    listen 127.0.0.1:{port} default_server backlog=4096;\n    location / {{ {header}return 200 \"ok\\n\"; }}\n  }}\n}}\n",
        dir = dir.display(),
        temps = nginx_temp_paths(&dir),
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let log = dir.join("stderr.log");
    let mut command = Command::new(nginx);
    command.arg("-p").arg(&dir).arg("-c").arg(&conf_path).arg("-e").arg(dir.join("error.log"));
    let mut child = ChildGuard::spawn("backend nginx", command, &log)?;
    wait_for_port_while_alive(&mut child, &log, port, "backend nginx")?;
    let pid = child.pid();
    Ok(Running { gateway: Gateway::C, dir, port, h2_port: port, admin_port: None, data_plane_pid: pid, processes: vec![(child, log)] })
}

/// Wait (≤ 60 s) for `port`, failing at once with the log if the process exits.
fn wait_for_port_while_alive(child: &mut ChildGuard, log: &Path, port: u16, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while wait_for_port(port, Duration::from_millis(200), what).is_err() {
        child.check_alive(log)?;
        if Instant::now() > deadline {
            bail!("{what}: port {port} not accepting after 60 s");
        }
    }
    Ok(())
}

fn nginx_temp_paths(dir: &Path) -> String {
    ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        .iter()
        .map(|t| format!("  {t}_temp_path {}/tmp/{t};\n", dir.display()))
        .collect()
}

// ---------------------------------------------------------------- C: nginx

/// nginx.conf for gateway C.
pub fn nginx_gateway_conf(dir: &Path, workload: &Workload, port: u16, h2_port: u16, backend_port: u16, extra: &[PathRule]) -> String {
    let upstreams: String = (0..SERVICES)
        .map(|s| format!("  upstream svc_{s} {{ server 127.0.0.1:{backend_port}; keepalive 32; keepalive_requests 10000000; }}\n"))
        .collect();
    let listen = format!("listen 127.0.0.1:{port};\n    listen 127.0.0.1:{h2_port} http2;");
    format!(
        "worker_processes 1;\ndaemon off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  keepalive_requests 10000000;\n  keepalive_timeout 300s;\n{temps}\
         \n  server_names_hash_max_size 16384;\n  server_names_hash_bucket_size 128;\n\
         {ingress_nginx_defaults}\
         {upstreams}\
         \n  server {{\n    listen 127.0.0.1:{port} default_server backlog=4096;\n    listen 127.0.0.1:{h2_port} default_server http2 backlog=4096;\n    return 404;\n  }}\n\
         {servers}}}\n",
        dir = dir.display(),
        temps = nginx_temp_paths(dir),
        servers = workload.nginx_servers(&listen, extra),
        ingress_nginx_defaults = INGRESS_NGINX_DEFAULTS,
    )
}

/// What ingress-nginx puts in every proxied location by default (its nginx.tmpl): HTTP/1.1 with
/// upstream keep-alive, the forwarded headers, a request id, and an access log line per request
/// (its `upstreaminfo` format; written to /dev/null so formatting is paid, the disk is not).
const INGRESS_NGINX_DEFAULTS: &str = r#"
  log_format upstreaminfo '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$host] [] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $request_id';
  access_log /dev/null upstreaminfo;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $host;
  proxy_set_header X-Request-ID $request_id;
  proxy_set_header X-Real-IP $remote_addr;
  proxy_set_header X-Forwarded-For $remote_addr;
  proxy_set_header X-Forwarded-Host $host;
  proxy_set_header X-Forwarded-Port $server_port;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_set_header X-Scheme $scheme;
  proxy_connect_timeout 5s;
  proxy_read_timeout 60s;
"#;

pub fn start_nginx_gateway(root: &Path, tools: &Tools, workload: &Workload, backend_port: u16) -> Result<Running> {
    let dir = root.join("c-nginx");
    std::fs::create_dir_all(dir.join("tmp"))?;
    let port = free_port()?;
    let h2_port = free_port()?;
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, nginx_gateway_conf(&dir, workload, port, h2_port, backend_port, &[]))?;
    let log = dir.join("stderr.log");
    let mut command = Command::new(&tools.nginx);
    command.arg("-p").arg(&dir).arg("-c").arg(&conf_path).arg("-e").arg(dir.join("error.log"));
    let mut child = ChildGuard::spawn("gateway C nginx", command, &log)?;
    wait_for_port_while_alive(&mut child, &log, port, "gateway C nginx")?;
    let pid = child.pid();
    Ok(Running { gateway: Gateway::C, dir, port, h2_port, admin_port: None, data_plane_pid: pid, processes: vec![(child, log)] })
}

/// Rewrite gateway C's config (in `dir`) with `extra` paths and `nginx -s reload` (what
/// ingress-nginx does on every change that is not an endpoint change).
pub fn reload_nginx_gateway_at(dir: &Path, port: u16, h2_port: u16, tools: &Tools, workload: &Workload, backend_port: u16, extra: &[PathRule]) -> Result<()> {
    let conf_path = dir.join("nginx.conf");
    write_atomic(&conf_path, &nginx_gateway_conf(dir, workload, port, h2_port, backend_port, extra))?;
    let mut command = Command::new(&tools.nginx);
    command.arg("-p").arg(dir).arg("-c").arg(&conf_path).arg("-e").arg(dir.join("error.log")).args(["-s", "reload"]);
    crate::procs::run(command, "nginx -s reload").map(|_| ())
}

// ---------------------------------------------------------------- Envoy (B and D)

/// The listener/cluster setup shared by B and D: one HTTP listener (codec AUTO: HTTP/1.1 and h2c),
/// the router as the last filter, and one STATIC cluster per Service, all to the backend.
fn envoy_bootstrap(admin_port: u16, port: u16, backend_port: u16, hcm_routing: (&str, Value), http_filters: Vec<Value>) -> Value {
    let clusters: Vec<Value> = (0..SERVICES)
        .map(|s| {
            json!({
                "name": cluster_name(s),
                "type": "STATIC",
                "connect_timeout": "2s",
                "load_assignment": {
                    "cluster_name": cluster_name(s),
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": backend_port}}}}]}],
                },
            })
        })
        .collect();
    let mut filters = http_filters;
    filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", "suppress_envoy_headers": true},
    }));
    // The same HTTP connection manager settings wasm-ingress sends (translate/envoy.rs), so B and D
    // differ from A only in routing: edge addressing, request ids, path normalisation, websocket
    // upgrades and the stdout access log (Envoy's stdout goes to /dev/null: formatting is paid, the
    // disk is not).
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "http",
        "codec_type": "AUTO",
        "http_filters": filters,
        "use_remote_address": true,
        "generate_request_id": true,
        "preserve_external_request_id": true,
        "normalize_path": true,
        "merge_slashes": true,
        "upgrade_configs": [{"upgrade_type": "websocket"}],
        "access_log": [{
            "name": "envoy.access_loggers.stdout",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                "log_format": {"text_format_source": {"inline_string": wasm_ingress::translate::log_format::LogFormatSettings::default().log_format_upstream.text()}},
            },
        }],
    });
    hcm[hcm_routing.0] = hcm_routing.1;
    json!({
        "node": {"id": "wasm-ingress-bench", "cluster": "wasm-ingress-bench"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "http",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}],
            }],
            "clusters": clusters,
        },
    })
}

fn spawn_envoy(name: &str, tools: &Tools, dir: &Path, config: &Path, port: u16, admin_port: u16) -> Result<(ChildGuard, PathBuf)> {
    let log = dir.join("envoy.log");
    let mut command = Command::new(&tools.envoy);
    command
        .arg("-c")
        .arg(config)
        .args(["--concurrency", "1", "--disable-hot-restart", "--file-flush-interval-msec", "1000"])
        .args(std::env::var("BENCH_ENVOY_LOG_ARGS").unwrap_or_else(|_| "-l warning".into()).split_whitespace())
        .arg("--log-path")
        .arg(&log);
    let mut child = ChildGuard::spawn_quiet_stdout(name, command, &dir.join("envoy.stderr.log"))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while wait_for_port(admin_port, Duration::from_millis(500), name).is_err() || wait_for_port(port, Duration::from_millis(500), name).is_err() {
        child.check_alive(&log)?;
        if Instant::now() > deadline {
            bail!("{name}: not listening after 120 s");
        }
    }
    Ok((child, log))
}

/// Write B's route configuration as an RDS file (DiscoveryResponse) and move it into the watched
/// folder: Envoy applies it as an RDS update.
pub fn write_native_rds(dir: &Path, workload: &Workload, version: u64, extra: &[PathRule]) -> Result<()> {
    let response = json!({
        "version_info": version.to_string(),
        "resources": [workload.envoy_route_configuration("bench", extra)],
    });
    let rds_dir = dir.join("rds");
    std::fs::create_dir_all(&rds_dir)?;
    let staging = dir.join("rds.json.staging");
    write_json(&staging, &response)?;
    std::fs::rename(&staging, rds_dir.join("rds.json"))?;
    Ok(())
}

pub fn start_native_envoy(root: &Path, tools: &Tools, workload: &Workload, backend_port: u16) -> Result<Running> {
    let dir = root.join("b-envoy-native");
    std::fs::create_dir_all(&dir)?;
    let (port, admin_port) = (free_port()?, free_port()?);
    write_native_rds(&dir, workload, 1, &[])?;
    let rds = json!({
        "route_config_name": "bench",
        "config_source": {
            "resource_api_version": "V3",
            "path_config_source": {
                "path": dir.join("rds/rds.json").display().to_string(),
                "watched_directory": {"path": dir.join("rds").display().to_string()},
            },
        },
    });
    let bootstrap = envoy_bootstrap(admin_port, port, backend_port, ("rds", rds), Vec::new());
    let config = dir.join("envoy.json");
    write_json(&config, &bootstrap)?;
    let (child, log) = spawn_envoy("gateway B envoy", tools, &dir, &config, port, admin_port)?;
    let pid = child.pid();
    Ok(Running { gateway: Gateway::B, dir, port, h2_port: port, admin_port: Some(admin_port), data_plane_pid: pid, processes: vec![(child, log)] })
}

pub fn start_floor_envoy(root: &Path, tools: &Tools, backend_port: u16) -> Result<Running> {
    start_static_wasm_envoy(root, tools, backend_port, Gateway::D, &tools.floor_wasm, cluster_name(0))
}

/// D (floor filter) or E (our filter with the workload's table), statically configured.
fn start_static_wasm_envoy(root: &Path, tools: &Tools, backend_port: u16, gateway: Gateway, wasm_path: &Path, configuration: String) -> Result<Running> {
    let dir = root.join(if gateway == Gateway::D { "d-envoy-floor" } else { "e-envoy-static-filter" });
    std::fs::create_dir_all(&dir)?;
    let (port, admin_port) = (free_port()?, free_port()?);
    let wasm = json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "wasm-floor",
                "root_id": "",
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": configuration},
                "fail_open": false,
                "vm_config": {
                    "vm_id": "wasm-floor",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm_path.display().to_string()}},
                },
            },
        },
    });
    let route_config = json!({
        "name": "floor",
        "virtual_hosts": [{
            "name": "all",
            "domains": ["*"],
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster_header": wasm_ingress_filter::table::CLUSTER_HEADER, "timeout": "60s"}}],
        }],
        "request_headers_to_remove": [wasm_ingress_filter::table::CLUSTER_HEADER],
    });
    let bootstrap = envoy_bootstrap(admin_port, port, backend_port, ("route_config", route_config), vec![wasm]);
    let config = dir.join("envoy.json");
    write_json(&config, &bootstrap)?;
    let (child, log) = spawn_envoy(gateway.describe(), tools, &dir, &config, port, admin_port)?;
    let pid = child.pid();
    Ok(Running { gateway, dir, port, h2_port: port, admin_port: Some(admin_port), data_plane_pid: pid, processes: vec![(child, log)] })
}

// ---------------------------------------------------------------- A: wasm-ingress

/// Write the workload's manifests (plus `extra` paths on the first host) into `manifests/`.
pub fn write_manifests(dir: &Path, workload: &Workload, backend_port: u16, extra: &[PathRule]) -> Result<()> {
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests)?;
    for (name, content) in workload.manifests(backend_port, extra) {
        let path = manifests.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(content.as_str()) {
            write_atomic(&path, &content)?;
        }
    }
    Ok(())
}

/// Start the control plane on `dir/manifests` and an Envoy bootstrapped from it.
pub fn start_wasm_ingress_on(dir: &Path, tools: &Tools) -> Result<Running> {
    let manifests = dir.join("manifests");
    start_wasm_ingress_reading(dir, tools, &["--manifests".as_ref(), manifests.as_os_str()])
}

/// [`start_wasm_ingress_on`] with the source flags given (`--manifests DIR` or `--kubeconfig FILE`).
pub fn start_wasm_ingress_reading(dir: &Path, tools: &Tools, source: &[&std::ffi::OsStr]) -> Result<Running> {
    let (port, https_port, xds_port, admin_port, cp_admin_port) = (free_port()?, free_port()?, free_port()?, free_port()?, free_port()?);
    let cp_log = dir.join("control-plane.log");
    let mut serve = Command::new(&tools.control_plane);
    serve
        .arg("serve")
        .args(source)
        .args(["--xds-listen", &format!("127.0.0.1:{xds_port}")])
        .args(["--http-listen", &format!("127.0.0.1:{port}")])
        .args(["--https-listen", &format!("127.0.0.1:{https_port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{cp_admin_port}")])
        .arg("--filter-wasm")
        .arg(&tools.filter_wasm)
        .env("RUST_LOG", std::env::var("BENCH_CONTROL_PLANE_LOG").unwrap_or_else(|_| "warn".into()));
    let mut control_plane = ChildGuard::spawn("gateway A control plane", serve, &cp_log)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while wait_for_port(xds_port, Duration::from_millis(500), "control plane xDS").is_err() {
        control_plane.check_alive(&cp_log)?;
        if Instant::now() > deadline {
            bail!("control plane: xDS port not listening after 60 s");
        }
    }
    let mut bootstrap = Command::new(&tools.control_plane);
    bootstrap
        .arg("bootstrap")
        .args(["--xds-address", &format!("127.0.0.1:{xds_port}")])
        .args(["--admin-address", &format!("127.0.0.1:{admin_port}")]);
    if let Ok(protocol) = std::env::var("BENCH_XDS_PROTOCOL") {
        bootstrap.args(["--xds-protocol", &protocol]); // compare `delta` (the default) with `sotw`
    }
    let yaml = crate::procs::run(bootstrap, "wasm-ingress bootstrap")?;
    let config = dir.join("envoy-bootstrap.yaml");
    std::fs::write(&config, yaml)?;
    let (envoy, log) = spawn_envoy("gateway A envoy", tools, dir, &config, port, admin_port)?;
    let pid = envoy.pid();
    Ok(Running {
        gateway: Gateway::A,
        dir: dir.to_path_buf(),
        port,
        h2_port: port,
        admin_port: Some(admin_port),
        data_plane_pid: pid,
        processes: vec![(envoy, log), (control_plane, cp_log)],
    })
}

pub fn start_wasm_ingress(root: &Path, tools: &Tools, workload: &Workload, backend_port: u16) -> Result<Running> {
    let dir = root.join("a-wasm-ingress");
    std::fs::create_dir_all(&dir)?;
    write_manifests(&dir, workload, backend_port, &[])?;
    start_wasm_ingress_on(&dir, tools)
}

/// Gateways P and Q: A's manifests with [`crate::workload::policy_annotations`] on every Ingress.
fn start_wasm_ingress_with_policies(gateway: Gateway, root: &Path, tools: &Tools, workload: &Workload, backend_port: u16) -> Result<Running> {
    let with_auth = gateway == Gateway::P;
    let dir = root.join(if with_auth { "p-wasm-ingress-policies" } else { "q-wasm-ingress-policies-no-auth" });
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests)?;
    let annotations = crate::workload::policy_annotations(backend_port, with_auth);
    for (name, content) in workload.manifests_annotated(backend_port, &annotations) {
        write_atomic(&manifests.join(name), &content)?;
    }
    let mut running = start_wasm_ingress_on(&dir, tools)?;
    running.gateway = gateway;
    Ok(running)
}

pub fn start(gateway: Gateway, root: &Path, tools: &Tools, workload: &Workload, backend_port: u16) -> Result<Running> {
    match gateway {
        Gateway::A => start_wasm_ingress(root, tools, workload, backend_port),
        Gateway::B => start_native_envoy(root, tools, workload, backend_port),
        Gateway::C => start_nginx_gateway(root, tools, workload, backend_port),
        Gateway::D => start_floor_envoy(root, tools, backend_port),
        Gateway::E => start_static_wasm_envoy(root, tools, backend_port, Gateway::E, &tools.filter_wasm, workload.route_table().to_json()),
        Gateway::P | Gateway::Q => start_wasm_ingress_with_policies(gateway, root, tools, workload, backend_port),
    }
}

/// Wait until every request of the mix is answered 200 (bounded). A gateway that serves anything
/// else is not measured: its numbers would be for 404s.
pub fn wait_until_serving(running: &mut Running, workload: &Workload, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        running.check_alive()?;
        let last = match probe_all(running.port, workload) {
            Ok(()) => return Ok(()),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            bail!("{}: not serving the request mix after {timeout:?}: {last}", running.gateway.describe());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn probe_all(port: u16, workload: &Workload) -> Result<()> {
    let mut client = KeepAliveClient::connect(port, Duration::from_secs(5))?;
    for request in &workload.requests {
        let response = client.get(&request.authority, &request.path)?;
        if response.status != 200 {
            bail!("{} {} -> {}", request.authority, request.path, response.status);
        }
        if response.closed {
            client = KeepAliveClient::connect(port, Duration::from_secs(5))?;
        }
    }
    Ok(())
}
