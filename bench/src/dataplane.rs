//! Section 1: the four gateways side by side, one route-table shape and size at a time. All four run
//! at once (each pinned to nothing: the machine's scheduler decides, as in production); every round
//! measures each gateway once, the order rotating per round, so drift on a shared machine hits all of
//! them alike. A gateway that fails to start or to serve the mix is reported as failed with the
//! reason; the others are still measured.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::gateways::{self, Gateway, Running, Tools};
use crate::load::{self, H2Result, LoadFiles, WrkResult};
use crate::stats::{median, Spread};
use crate::workload::{Shape, Workload};

/// How long and how often.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LoadPlan {
    pub rounds: usize,
    pub seconds: f64,
    pub warmup_seconds: f64,
    pub connections: u32,
    /// HTTP/2 (h2load) seconds per gateway; 0: no HTTP/2 run.
    pub h2_seconds: f64,
    pub h2_rounds: usize,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct GatewayResult {
    /// Set when the gateway could not be started or did not serve the mix: not measured.
    pub error: Option<String>,
    pub runs: Vec<WrkResult>,
    pub h2_runs: Vec<H2Result>,
    /// Data-plane RSS after the runs (Envoy; nginx master + worker), KiB.
    pub rss_kib: u64,
    /// Seconds from start until every request of the mix answered 200.
    pub ready_seconds: f64,
    pub rps: Option<Spread>,
    pub p50_us: Option<Spread>,
    pub p99_us: Option<Spread>,
    pub h2_rps: Option<Spread>,
    pub h2_mean_us: Option<Spread>,
    pub failures: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// Ratio of the medians.
    pub of_medians: f64,
    /// Range of the per-round ratios (same round, adjacent runs).
    pub round_min: f64,
    pub round_max: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigResult {
    pub shape: Shape,
    pub rules: usize,
    pub hosts: usize,
    pub gateways: BTreeMap<Gateway, GatewayResult>,
    /// "A/B", "A/C", "A/D", "D/B" (req/s) and "p99 A/B".
    pub ratios: BTreeMap<String, Ratio>,
    pub h2_ratios: BTreeMap<String, f64>,
}

fn ratio(gateways: &BTreeMap<Gateway, GatewayResult>, num: Gateway, den: Gateway, value: impl Fn(&WrkResult) -> f64) -> Option<Ratio> {
    let a = gateways.get(&num)?;
    let b = gateways.get(&den)?;
    if a.runs.is_empty() || b.runs.is_empty() {
        return None;
    }
    let am = median(&a.runs.iter().map(&value).collect::<Vec<_>>());
    let bm = median(&b.runs.iter().map(&value).collect::<Vec<_>>());
    let per_round: Vec<f64> = a.runs.iter().zip(&b.runs).map(|(x, y)| value(x) / value(y).max(1e-9)).collect();
    Some(Ratio {
        of_medians: am / bm.max(1e-9),
        round_min: per_round.iter().copied().fold(f64::INFINITY, f64::min),
        round_max: per_round.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// Measure one table shape and size on every gateway (`only`: which gateways).
#[allow(clippy::too_many_arguments)] // one flat call site per section; a struct would only rename them
pub fn run_config(root: &Path, tools: &Tools, backend_port: u16, shape: Shape, rules: usize, plan: &LoadPlan, with_h2: bool, only: &[Gateway]) -> Result<ConfigResult> {
    let workload = Workload::new(shape, rules);
    let dir = root.join(format!("{}-{rules}", shape.label()));
    std::fs::create_dir_all(&dir)?;
    let files = LoadFiles::write(&dir, &workload.requests)?;
    eprintln!("== {} N={rules}: starting gateways", shape.label());

    let mut running: BTreeMap<Gateway, Running> = BTreeMap::new();
    let mut results: BTreeMap<Gateway, GatewayResult> = BTreeMap::new();
    for gateway in only.iter().copied() {
        let started = std::time::Instant::now();
        let outcome = gateways::start(gateway, &dir, tools, &workload, backend_port).and_then(|mut r| {
            gateways::wait_until_serving(&mut r, &workload, Duration::from_secs(180))?;
            Ok(r)
        });
        let mut result = GatewayResult::default();
        match outcome {
            Ok(r) => {
                result.ready_seconds = started.elapsed().as_secs_f64();
                eprintln!("   {} serving after {:.1}s", gateway.describe(), result.ready_seconds);
                running.insert(gateway, r);
            }
            Err(e) => {
                eprintln!("   {} FAILED: {e:#}", gateway.describe());
                result.error = Some(format!("{e:#}"));
            }
        }
        results.insert(gateway, result);
    }

    // Warm-up (connections, caches, V8 tiering), then alternating rounds.
    for (gateway, r) in &running {
        if let Err(e) = load::run_wrk(&files, r.port, plan.connections, plan.warmup_seconds) {
            eprintln!("   warm-up of {} failed: {e:#}", gateway.describe());
        }
    }
    let order: Vec<Gateway> = running.keys().copied().collect();
    for round in 0..plan.rounds {
        for k in 0..order.len() {
            let gateway = order[(k + round) % order.len()];
            let Some(r) = running.get_mut(&gateway) else { continue };
            let measured = r.check_alive().and_then(|()| load::run_wrk(&files, r.port, plan.connections, plan.seconds));
            let result = results.entry(gateway).or_default();
            match measured {
                Ok(w) => {
                    eprintln!(
                        "   round {round} {}: {:.0} req/s p50 {}us p99 {}us failures {}",
                        gateway.describe(),
                        w.rps(),
                        w.p50_us,
                        w.p99_us,
                        w.failures()
                    );
                    result.runs.push(w);
                }
                Err(e) => {
                    eprintln!("   round {round} {} FAILED: {e:#}", gateway.describe());
                    result.error.get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
    }

    // HTTP/2 (h2load) for single-authority tables.
    if with_h2 && plan.h2_seconds > 0.0 {
        let authority = workload.requests[0].authority.clone();
        let paths: Vec<String> = workload.requests.iter().filter(|r| r.authority == authority).map(|r| r.path.clone()).collect();
        for round in 0..plan.h2_rounds {
            for k in 0..order.len() {
                let gateway = order[(k + round) % order.len()];
                let Some(r) = running.get(&gateway) else { continue };
                match load::run_h2load(&dir, r.h2_port, &authority, &paths, plan.connections, plan.h2_seconds) {
                    Ok(h) => {
                        eprintln!("   h2 round {round} {}: {:.0} req/s mean {:.0}us", gateway.describe(), h.rps, h.mean_us);
                        results.entry(gateway).or_default().h2_runs.push(h);
                    }
                    Err(e) => eprintln!("   h2 round {round} {} FAILED: {e:#}", gateway.describe()),
                }
            }
        }
    }

    for (gateway, r) in &running {
        let result = results.entry(*gateway).or_default();
        result.rss_kib = r.rss_kib();
    }
    for result in results.values_mut() {
        summarise(result);
    }
    let mut ratios = BTreeMap::new();
    let rps = |w: &WrkResult| w.rps();
    for (name, num, den) in [("A/B", Gateway::A, Gateway::B), ("A/C", Gateway::A, Gateway::C), ("A/D", Gateway::A, Gateway::D), ("D/B", Gateway::D, Gateway::B), ("C/B", Gateway::C, Gateway::B), ("P/A", Gateway::P, Gateway::A), ("Q/A", Gateway::Q, Gateway::A)] {
        if let Some(r) = ratio(&results, num, den, rps) {
            ratios.insert(name.to_string(), r);
        }
    }
    for (name, num, den) in [("p99 A/B", Gateway::A, Gateway::B), ("p99 A/D", Gateway::A, Gateway::D), ("p99 A/C", Gateway::A, Gateway::C), ("p99 P/A", Gateway::P, Gateway::A), ("p99 Q/A", Gateway::Q, Gateway::A)] {
        if let Some(r) = ratio(&results, num, den, |w| w.p99_us as f64) {
            ratios.insert(name.to_string(), r);
        }
    }
    let mut h2_ratios = BTreeMap::new();
    for (name, num, den) in [("A/B", Gateway::A, Gateway::B), ("A/C", Gateway::A, Gateway::C), ("A/D", Gateway::A, Gateway::D)] {
        if let (Some(a), Some(b)) = (results.get(&num).and_then(|r| r.h2_rps.clone()), results.get(&den).and_then(|r| r.h2_rps.clone())) {
            h2_ratios.insert(name.to_string(), a.median / b.median.max(1e-9));
        }
    }
    drop(running);
    Ok(ConfigResult { shape, rules, hosts: workload.hosts.len(), gateways: results, ratios, h2_ratios })
}

fn summarise(result: &mut GatewayResult) {
    if !result.runs.is_empty() {
        result.rps = Some(Spread::of(&result.runs.iter().map(WrkResult::rps).collect::<Vec<_>>()));
        result.p50_us = Some(Spread::of(&result.runs.iter().map(|w| w.p50_us as f64).collect::<Vec<_>>()));
        result.p99_us = Some(Spread::of(&result.runs.iter().map(|w| w.p99_us as f64).collect::<Vec<_>>()));
        result.failures = result.runs.iter().map(WrkResult::failures).sum();
    }
    if !result.h2_runs.is_empty() {
        result.h2_rps = Some(Spread::of(&result.h2_runs.iter().map(|h| h.rps).collect::<Vec<_>>()));
        result.h2_mean_us = Some(Spread::of(&result.h2_runs.iter().map(|h| h.mean_us).collect::<Vec<_>>()));
        result.failures += result.h2_runs.iter().map(|h| h.failed.max(h.non_2xx)).sum::<u64>();
    }
}
