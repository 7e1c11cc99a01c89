//! Section 1b: the same load while the route table changes once per second (a Prefix path added,
//! then removed, alternately) — A through a manifest edit (control plane -> ECDS), B through an RDS
//! update (a watched RDS file: Envoy's own xDS code path, without a gRPC control plane), C through
//! `nginx -s reload`. Meanwhile one long-lived keep-alive connection sends a request every 100 ms
//! and records whether it survives. Reports failed requests and latency during churn against a
//! steady run of the same gateway, and checks that each change was actually served.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::gateways::{self, Gateway, Running, Tools};
use crate::load::{self, LoadFiles, WrkResult};
use crate::procs::KeepAliveClient;
use crate::workload::{Kind, PathRule, Request, Workload};

/// The path the churn adds and removes (on the first host).
pub const CHURN_PATH: &str = "/churn/api";

fn churn_rule() -> PathRule {
    PathRule { kind: Kind::Prefix, path: CHURN_PATH.to_string(), service: 0 }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct KeepAliveReport {
    pub requests: u64,
    pub ok: u64,
    pub failed: u64,
    /// Times the connection was closed by the gateway (then reopened).
    pub connection_closes: u64,
    pub max_ms: f64,
    /// One connection, every request answered 2xx, never closed.
    pub survived: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ChangeReport {
    pub changes: u64,
    /// Changes whose effect (the churn path answering 200 when added, 404 when removed) was seen
    /// within 1 s.
    pub applied_within_1s: u64,
    /// Errors applying a change (e.g. `nginx -s reload` failing).
    pub errors: Vec<String>,
    /// Time to see each change served, ms (median / max).
    pub visible_ms_median: f64,
    pub visible_ms_max: f64,
    /// Envoy `config_reload` counters over the churn (A: ECDS, B: RDS); nginx: reloads run.
    pub reloads_reported: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChurnResult {
    pub gateway: Gateway,
    pub mechanism: String,
    pub error: Option<String>,
    pub steady: Option<WrkResult>,
    pub churn: Option<WrkResult>,
    pub keepalive: KeepAliveReport,
    pub changes: ChangeReport,
}

/// How a gateway's routes are changed.
enum Reconfigure {
    Manifests { dir: std::path::PathBuf, workload: Workload, backend_port: u16 },
    Rds { dir: std::path::PathBuf, workload: Workload },
    Nginx { running_dir: std::path::PathBuf, port: u16, h2_port: u16, tools: Tools, workload: Workload, backend_port: u16 },
}

impl Reconfigure {
    fn apply(&self, version: u64, extra: &[PathRule]) -> Result<()> {
        match self {
            Reconfigure::Manifests { dir, workload, backend_port } => gateways::write_manifests(dir, workload, *backend_port, extra),
            Reconfigure::Rds { dir, workload } => gateways::write_native_rds(dir, workload, version, extra),
            Reconfigure::Nginx { running_dir, port, h2_port, tools, workload, backend_port } => {
                let running = RunningRef { dir: running_dir.clone(), port: *port, h2_port: *h2_port };
                running.reload(tools, workload, *backend_port, extra)
            }
        }
    }
}

/// The parts of gateway C's `Running` a reload needs (the processes stay with the caller).
struct RunningRef {
    dir: std::path::PathBuf,
    port: u16,
    h2_port: u16,
}

impl RunningRef {
    fn reload(&self, tools: &Tools, workload: &Workload, backend_port: u16, extra: &[PathRule]) -> Result<()> {
        gateways::reload_nginx_gateway_at(&self.dir, self.port, self.h2_port, tools, workload, backend_port, extra)
    }
}

fn keepalive_prober(port: u16, request: Request, stop: Arc<AtomicBool>) -> KeepAliveReport {
    let mut report = KeepAliveReport::default();
    let mut client = KeepAliveClient::connect(port, Duration::from_secs(5)).ok();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        report.requests += 1;
        let started = Instant::now();
        let outcome = match client.as_mut() {
            Some(c) => c.get(&request.authority, &request.path),
            None => Err(anyhow::anyhow!("not connected")),
        };
        report.max_ms = report.max_ms.max(started.elapsed().as_secs_f64() * 1e3);
        match outcome {
            Ok(response) if (200..300).contains(&response.status) => {
                report.ok += 1;
                if response.closed {
                    report.connection_closes += 1;
                    client = KeepAliveClient::connect(port, Duration::from_secs(5)).ok();
                }
            }
            Ok(_) => report.failed += 1,
            Err(_) => {
                report.failed += 1;
                report.connection_closes += 1;
                client = KeepAliveClient::connect(port, Duration::from_secs(5)).ok();
            }
        }
        std::thread::sleep(Duration::from_millis(100).saturating_sub(started.elapsed()));
    }
    report.survived = report.failed == 0 && report.connection_closes == 0 && report.requests > 0;
    report
}

/// Wait (≤ 1 s) until the churn path answers as it should after a change; returns the delay.
fn wait_visible(port: u16, authority: &str, present: bool) -> Option<Duration> {
    let started = Instant::now();
    let mut client = KeepAliveClient::connect(port, Duration::from_secs(1)).ok()?;
    while started.elapsed() < Duration::from_secs(1) {
        match client.get(authority, CHURN_PATH) {
            Ok(r) if (r.status == 200) == present => return Some(started.elapsed()),
            Ok(r) if r.closed => client = KeepAliveClient::connect(port, Duration::from_secs(1)).ok()?,
            Ok(_) => {}
            Err(_) => client = KeepAliveClient::connect(port, Duration::from_secs(1)).ok()?,
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

fn reload_counter(running: &Running) -> u64 {
    match running.gateway {
        Gateway::A => running.envoy_counter("extension_config_discovery.", ".config_reload"),
        Gateway::B => running.envoy_counter("http.http.rds.bench.", "config_reload"),
        _ => 0,
    }
}

/// Steady run, then the churn run, for one gateway.
pub fn run_gateway(
    root: &std::path::Path,
    tools: &Tools,
    backend_port: u16,
    workload: &Workload,
    gateway: Gateway,
    steady_seconds: f64,
    churn_seconds: u64,
) -> ChurnResult {
    let mechanism = match gateway {
        Gateway::A => "manifest edit -> control plane -> ECDS update of the filter's route table",
        Gateway::B => "RDS update (watched RDS file, applied by Envoy's RDS subscription)",
        Gateway::C => "rewrite nginx.conf + `nginx -s reload`",
        Gateway::D | Gateway::E | Gateway::P | Gateway::Q => "static",
    };
    let mut result = ChurnResult {
        gateway,
        mechanism: mechanism.to_string(),
        error: None,
        steady: None,
        churn: None,
        keepalive: KeepAliveReport::default(),
        changes: ChangeReport::default(),
    };
    if let Err(e) = run_gateway_inner(root, tools, backend_port, workload, gateway, steady_seconds, churn_seconds, &mut result) {
        eprintln!("   churn {} FAILED: {e:#}", gateway.describe());
        result.error = Some(format!("{e:#}"));
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn run_gateway_inner(
    root: &std::path::Path,
    tools: &Tools,
    backend_port: u16,
    workload: &Workload,
    gateway: Gateway,
    steady_seconds: f64,
    churn_seconds: u64,
    result: &mut ChurnResult,
) -> Result<()> {
    let dir = root.join(format!("churn-{gateway:?}"));
    std::fs::create_dir_all(&dir)?;
    let files = LoadFiles::write(&dir, &workload.requests)?;
    let mut running = gateways::start(gateway, &dir, tools, workload, backend_port)?;
    gateways::wait_until_serving(&mut running, workload, Duration::from_secs(180))?;
    load::run_wrk(&files, running.port, 16, 2.0)?;
    let steady = load::run_wrk(&files, running.port, 16, steady_seconds)?;
    eprintln!("   churn {} steady: {:.0} req/s p99 {}us max {}us failures {}", gateway.describe(), steady.rps(), steady.p99_us, steady.max_us, steady.failures());
    result.steady = Some(steady);

    let reconfigure = match gateway {
        Gateway::A => Reconfigure::Manifests { dir: running.dir.clone(), workload: workload.clone(), backend_port },
        Gateway::B => Reconfigure::Rds { dir: running.dir.clone(), workload: workload.clone() },
        Gateway::C => Reconfigure::Nginx {
            running_dir: running.dir.clone(),
            port: running.port,
            h2_port: running.h2_port,
            tools: tools.clone(),
            workload: workload.clone(),
            backend_port,
        },
        Gateway::D | Gateway::E | Gateway::P | Gateway::Q => anyhow::bail!("gateways D, E, P and Q are not churned"),
    };
    let reloads_before = reload_counter(&running);
    let stop = Arc::new(AtomicBool::new(false));
    let port = running.port;
    let probe_request = workload.requests[0].clone();
    let prober = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || keepalive_prober(port, probe_request, stop))
    };
    let churn_authority = workload.hosts[0].host.replace("*.", "churn.");
    let churner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut report = ChangeReport::default();
            let mut visible = Vec::new();
            let started = Instant::now();
            for k in 0..churn_seconds {
                // One change per second, on the second.
                let at = Duration::from_secs(k) + Duration::from_millis(500);
                std::thread::sleep(at.saturating_sub(started.elapsed()));
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let present = k % 2 == 0;
                let extra = if present { vec![churn_rule()] } else { Vec::new() };
                report.changes += 1;
                if let Err(e) = reconfigure.apply(k + 2, &extra) {
                    report.errors.push(format!("change {k}: {e:#}"));
                    continue;
                }
                if let Some(delay) = wait_visible(port, &churn_authority, present) {
                    report.applied_within_1s += 1;
                    visible.push(delay.as_secs_f64() * 1e3);
                }
            }
            // Leave the table as it started.
            let _ = reconfigure.apply(churn_seconds + 2, &[]);
            report.visible_ms_median = crate::stats::median(&visible);
            report.visible_ms_max = visible.iter().copied().fold(0.0, f64::max);
            report
        })
    };
    let churn = load::run_wrk(&files, running.port, 16, churn_seconds as f64);
    stop.store(true, Ordering::Relaxed);
    let keepalive = prober.join().map_err(|_| anyhow::anyhow!("keep-alive prober panicked"))?;
    let mut changes = churner.join().map_err(|_| anyhow::anyhow!("churner panicked"))?;
    changes.reloads_reported = match gateway {
        Gateway::C => changes.changes - changes.errors.len() as u64,
        _ => reload_counter(&running).saturating_sub(reloads_before),
    };
    let churn = churn?;
    eprintln!(
        "   churn {} during: {:.0} req/s p99 {}us max {}us failures {}; keep-alive survived {} ({} closes, {} failed); changes {} seen {}",
        gateway.describe(),
        churn.rps(),
        churn.p99_us,
        churn.max_us,
        churn.failures(),
        keepalive.survived,
        keepalive.connection_closes,
        keepalive.failed,
        changes.changes,
        changes.applied_within_1s
    );
    result.churn = Some(churn);
    result.keepalive = keepalive;
    result.changes = changes;
    running.check_alive()?;
    Ok(())
}
