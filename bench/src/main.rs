//! `bench`: the driver behind `make bench` / `make bench-quick` (issue #4). Subcommands run one
//! section each or all of them; results go to `target/bench/*.json` and, for the full run, into the
//! generated part of BENCHMARKS.md. A missed target is reported, never an error; the exit status is
//! non-zero only when something could not be measured at all.

/// The control plane's allocator (see control-plane/src/main.rs), so `translate-probe` measures
/// translation as `serve` runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod churn;
mod controlplane;
mod dataplane;
mod fuel;
mod gateways;
mod load;
mod procs;
mod report;
mod stats;
mod workload;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::gateways::{Gateway, Tools};
use crate::workload::Shape;

#[derive(Debug, Parser)]
#[command(name = "bench", about = "wasm-ingress benchmarks (issue #4)")]
struct Cli {
    /// Where results and scratch folders go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Every section; writes target/bench/*.json (and BENCHMARKS.md with --markdown).
    All {
        /// The CI-sized run: smallest N, one round, short durations.
        #[arg(long)]
        quick: bool,
        /// Update the generated block of this Markdown file.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Sections to skip: dataplane, policies, churn, fuel, translate, propagation.
        #[arg(long, value_delimiter = ',')]
        skip: Vec<String>,
    },
    /// Internal: load + translate a manifests folder in this process and print JSON (RSS isolation).
    TranslateProbe {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Section 1b on selected gateways (development).
    Churn {
        #[arg(long, default_value_t = 10)]
        rules: usize,
        #[arg(long, default_value = "A,B,C")]
        gateways: String,
        #[arg(long, default_value_t = 3.0)]
        steady_seconds: f64,
        #[arg(long, default_value_t = 5)]
        churn_seconds: u64,
    },
    /// Section 3 propagation for one size (development).
    Propagation {
        #[arg(long, default_value_t = 100)]
        ingresses: usize,
        #[arg(long, default_value_t = 5)]
        changes: usize,
        /// TLS Secrets (the first N Ingresses get a TLS entry).
        #[arg(long, default_value_t = 500)]
        tls: usize,
        /// Where the control plane reads the cluster: a manifests folder, or the stand-in
        /// Kubernetes API server over HTTP.
        #[arg(long, value_enum, default_value = "folder")]
        source: controlplane::Source,
    },
    /// Section 2: wasmtime fuel per request and on_configure cost of the built filters.
    Fuel {
        #[arg(long, value_delimiter = ',', default_value = "10,1000,10000,100000")]
        rules: Vec<usize>,
        /// One-host table sizes (paths on one host).
        #[arg(long, value_delimiter = ',', default_value = "100,2000,10000")]
        one_host: Vec<usize>,
        /// Instead: only the `on_configure` cost of this route table (JSON, as the control plane
        /// sends it; e.g. written by `translate-probe` with `BENCH_DUMP_TABLE`).
        #[arg(long)]
        table: Option<PathBuf>,
    },
    /// One data-plane configuration on selected gateways (for development).
    Dataplane {
        #[arg(long, default_value = "many-hosts")]
        shape: String,
        #[arg(long, default_value_t = 10)]
        rules: usize,
        #[arg(long, default_value = "A,B,C,D")]
        gateways: String,
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        #[arg(long, default_value_t = 0.0)]
        h2_seconds: f64,
    },
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn tool_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| workspace_root().join(default))
}

fn tools() -> Tools {
    Tools {
        envoy: tool_path("WASM_INGRESS_ENVOY", ".venv/envoy"),
        filter_wasm: tool_path("WASM_INGRESS_FILTER_WASM", "target/wasm32-wasip1/release/wasm_ingress_filter.wasm"),
        floor_wasm: tool_path("WASM_INGRESS_FLOOR_WASM", "target/wasm32-wasip1/release/wasm_ingress_floor_filter.wasm"),
        control_plane: tool_path("WASM_INGRESS_BIN", "target/release/wasm-ingress"),
        nginx: PathBuf::from(std::env::var_os("NGINX").unwrap_or_else(|| "/usr/sbin/nginx".into())),
    }
}

fn parse_shape(s: &str) -> Result<Shape> {
    match s {
        "many-hosts" => Ok(Shape::ManyHosts),
        "one-host" => Ok(Shape::OneHost),
        _ => bail!("unknown shape {s} (many-hosts, one-host)"),
    }
}

fn parse_gateways(s: &str) -> Result<Vec<Gateway>> {
    s.split(',')
        .map(|g| match g.trim() {
            "A" => Ok(Gateway::A),
            "B" => Ok(Gateway::B),
            "C" => Ok(Gateway::C),
            "D" => Ok(Gateway::D),
            "E" => Ok(Gateway::E),
            "P" => Ok(Gateway::P),
            "Q" => Ok(Gateway::Q),
            other => bail!("unknown gateway {other}"),
        })
        .collect()
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.out).with_context(|| format!("create {}", cli.out.display()))?;
    let out = std::fs::canonicalize(&cli.out)?;
    let tools = tools();
    match cli.command {
        Cmd::All { quick, markdown, skip } => return run_all(&out, &tools, quick, markdown, &skip),
        Cmd::TranslateProbe { dir, runs } => {
            println!("{}", serde_json::to_string(&controlplane::translate_probe(&dir, runs))?);
        }
        Cmd::Churn { rules, gateways, steady_seconds, churn_seconds } => {
            let scratch = fresh_scratch(&out)?;
            let backend = gateways::start_backend(&scratch, &tools.nginx)?;
            let workload = workload::Workload::new(Shape::ManyHosts, rules);
            let results: Vec<_> = parse_gateways(&gateways)?
                .into_iter()
                .map(|g| churn::run_gateway(&scratch, &tools, backend.port, &workload, g, steady_seconds, churn_seconds))
                .collect();
            println!("{}", serde_json::to_string_pretty(&results)?);
        }
        Cmd::Propagation { ingresses, changes, tls, source } => {
            let scratch = fresh_scratch(&out)?;
            let backend = gateways::start_backend(&scratch, &tools.nginx)?;
            let result = controlplane::run_propagation(&scratch, &tools, backend.port, (ingresses, tls), changes, source);
            println!("{}", serde_json::to_string_pretty(&result)?);
        }
        Cmd::Fuel { table: Some(table), .. } => {
            let json = std::fs::read(&table).with_context(|| format!("read {}", table.display()))?;
            println!("{}", serde_json::to_string_pretty(&fuel::configure_cost(&tools.filter_wasm, &json)?)?);
        }
        Cmd::Fuel { rules, one_host, table: None } => {
            let results = section_fuel(&tools, &rules, &one_host)?;
            println!("{}", serde_json::to_string_pretty(&results)?);
        }
        Cmd::Dataplane { shape, rules, gateways, seconds, rounds, h2_seconds } => {
            let scratch = fresh_scratch(&out)?;
            let backend = gateways::start_backend(&scratch, &tools.nginx)?;
            let plan = dataplane::LoadPlan { rounds, seconds, warmup_seconds: 1.0, connections: 16, h2_seconds, h2_rounds: 1 };
            let result = dataplane::run_config(&scratch, &tools, backend.port, parse_shape(&shape)?, rules, &plan, h2_seconds > 0.0, &parse_gateways(&gateways)?)?;
            println!("{}", serde_json::to_string_pretty(&result)?);
        }
    }
    Ok(())
}

/// Section 2 for both filters (ours: the table as JSON; floor: one cluster name).
fn section_fuel(tools: &Tools, sizes: &[usize], one_host_sizes: &[usize]) -> Result<Vec<fuel::FuelResult>> {
    let mut results = Vec::new();
    let runs = sizes.iter().map(|&n| (Shape::ManyHosts, n)).chain(one_host_sizes.iter().map(|&n| (Shape::OneHost, n)));
    for (shape, rules) in runs {
        let workload = workload::Workload::new(shape, rules);
        let json = workload.route_table().to_json();
        eprintln!("fuel: {} N={rules} ({} bytes of table JSON)", shape.label(), json.len());
        let mut ours_result = fuel::measure(&tools.filter_wasm, "wasm-ingress", rules, json.as_bytes(), &workload.requests)?;
        let mut floor_result = fuel::measure(&tools.floor_wasm, "floor", rules, workload::cluster_name(0).as_bytes(), &workload.requests)?;
        ours_result.shape = shape.label().to_string();
        floor_result.shape = shape.label().to_string();
        results.push(ours_result);
        results.push(floor_result);
    }
    Ok(results)
}

fn fresh_scratch(out: &std::path::Path) -> Result<PathBuf> {
    let scratch = out.join("scratch");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    Ok(scratch)
}

/// The whole benchmark. Exit status: non-zero only if something could not be measured.
fn run_all(out: &std::path::Path, tools: &Tools, quick: bool, markdown: Option<PathBuf>, skip: &[String]) -> Result<()> {
    let started = std::time::Instant::now();
    let skipped = |s: &str| skip.iter().any(|x| x == s);
    let mut report = report::Report {
        mode: if quick { "quick".into() } else { "full".into() },
        environment: report::Environment::capture(&tools.envoy, &tools.nginx),
        ..report::Report::default()
    };
    for (what, path) in [("Envoy", &tools.envoy), ("filter .wasm", &tools.filter_wasm), ("floor .wasm", &tools.floor_wasm), ("wasm-ingress", &tools.control_plane), ("nginx", &tools.nginx)] {
        if !path.exists() {
            bail!("{what} not found at {} (run `make build envoy`)", path.display());
        }
    }
    let scratch = fresh_scratch(out)?;
    let backend = gateways::start_backend(&scratch, &tools.nginx)?;
    report.environment.sample();

    // Sizes and durations: full vs quick (CI).
    let plan = if quick {
        dataplane::LoadPlan { rounds: 1, seconds: 2.0, warmup_seconds: 1.0, connections: 16, h2_seconds: 1.0, h2_rounds: 1 }
    } else {
        dataplane::LoadPlan { rounds: 3, seconds: 6.0, warmup_seconds: 2.0, connections: 16, h2_seconds: 5.0, h2_rounds: 1 }
    };
    let configs: Vec<(Shape, usize, bool)> = if quick {
        vec![(Shape::ManyHosts, 10, true)]
    } else {
        vec![
            (Shape::ManyHosts, 10, true),
            (Shape::ManyHosts, 1000, false),
            (Shape::ManyHosts, 10_000, false),
            (Shape::OneHost, 100, false),
            (Shape::OneHost, 2000, true),
            (Shape::OneHost, 10_000, false),
        ]
    };
    let (churn_rules, steady_seconds, churn_seconds) = if quick { (10, 2.0, 5) } else { (1000, 10.0, 60) };
    let fuel_sizes: Vec<usize> = if quick { vec![10, 1000] } else { vec![10, 1000, 10_000, 100_000] };
    let fuel_one_host_sizes: Vec<usize> = if quick { vec![100] } else { vec![100, 2000, 10_000] };
    let translate_sizes: Vec<usize> = if quick { vec![100] } else { vec![100, 1000, 10_000] };
    // (Ingresses, TLS Secrets, source): 100, 1 000 and 10 000 (100 000 is measured by hand: see
    // BENCHMARKS.md), plus 10 000 without TLS to separate the
    // cost of the SNI filter chains from the cost of the routes, and the Kubernetes source (the
    // stand-in API server over HTTP) at the largest size.
    use controlplane::Source::{Folder, Kube};
    let (propagation_sizes, propagation_changes): (Vec<(usize, usize, controlplane::Source)>, usize) = if quick {
        (vec![(100, 500, Folder), (100, 500, Kube)], 5)
    } else {
        (vec![(100, 500, Folder), (1_000, 500, Folder), (10_000, 500, Folder), (10_000, 0, Folder), (10_000, 500, Kube)], 20)
    };

    report.plan = Some(plan);
    report.churn_rules = churn_rules;
    report.commands = vec![
        format!("wrk -t1 -c{} -d{}s --timeout 5s -s mix.lua http://127.0.0.1:PORT/   # mix.lua cycles the request mix (Host + path), see bench/src/load.rs", plan.connections, plan.seconds),
        format!("h2load -t1 -c{} -m1 -D{} --warm-up-time=1 -H ':authority: HOST' -i uris.txt", plan.connections, plan.h2_seconds),
        format!("{} -c CONFIG --concurrency 1 --disable-hot-restart -l warning --file-flush-interval-msec 1000   # A, B, D", tools.envoy.display()),
        "nginx -p DIR -c nginx.conf   # C and the backend: worker_processes 1".to_string(),
        format!("{} serve --manifests DIR --filter-wasm {} ...; wasm-ingress bootstrap --xds-address ...   # A", tools.control_plane.display(), tools.filter_wasm.display()),
        "generated configs of a run: target/bench/scratch/<shape>-<N>/{a-wasm-ingress/manifests, b-envoy-native/{envoy.json,rds/rds.json}, c-nginx/nginx.conf, d-envoy-floor/envoy.json}".to_string(),
    ];

    if !skipped("dataplane") {
        for (shape, rules, h2) in &configs {
            report.environment.sample();
            match dataplane::run_config(&scratch, tools, backend.port, *shape, *rules, &plan, *h2, &Gateway::ALL) {
                Ok(result) => {
                    for (g, r) in &result.gateways {
                        if let Some(e) = &r.error {
                            report.failures.push(format!("dataplane {} N={rules} {}: {e}", shape.label(), g.describe()));
                        }
                    }
                    report.dataplane.push(result);
                }
                Err(e) => report.failures.push(format!("dataplane {} N={rules}: {e:#}", shape.label())),
            }
            report::write_json(out, "dataplane.json", &report.dataplane)?;
        }
    }
    if !skipped("policies") {
        report.environment.sample();
        match dataplane::run_config(&scratch, tools, backend.port, Shape::ManyHosts, 10, &plan, false, &[Gateway::A, Gateway::Q, Gateway::P]) {
            Ok(result) => {
                for (g, r) in &result.gateways {
                    if let Some(e) = &r.error {
                        report.failures.push(format!("policies {}: {e}", g.describe()));
                    }
                }
                report.policies = Some(result);
            }
            Err(e) => report.failures.push(format!("policies: {e:#}")),
        }
        report::write_json(out, "policies.json", &report.policies)?;
    }
    if !skipped("churn") {
        let workload = workload::Workload::new(Shape::ManyHosts, churn_rules);
        for g in [Gateway::A, Gateway::B, Gateway::C] {
            report.environment.sample();
            eprintln!("== churn {} ({churn_rules} rules)", g.describe());
            let result = churn::run_gateway(&scratch, tools, backend.port, &workload, g, steady_seconds, churn_seconds);
            if let Some(e) = &result.error {
                report.failures.push(format!("churn {}: {e}", g.describe()));
            }
            report.churn.push(result);
        }
        report::write_json(out, "churn.json", &report.churn)?;
    }
    if !skipped("fuel") {
        report.environment.sample();
        eprintln!("== fuel");
        match section_fuel(tools, &fuel_sizes, &fuel_one_host_sizes) {
            Ok(f) => report.fuel = f,
            Err(e) => report.failures.push(format!("fuel: {e:#}")),
        }
        report::write_json(out, "fuel.json", &report.fuel)?;
    }
    if !quick && !skipped("criterion") {
        report.environment.sample();
        eprintln!("== criterion (filter/benches/matcher.rs)");
        match criterion_matcher() {
            Ok(c) => report.criterion = c,
            Err(e) => report.failures.push(format!("criterion: {e:#}")),
        }
    }
    if !skipped("translate") {
        eprintln!("== translate");
        for &n in &translate_sizes {
            report.environment.sample();
            let r = controlplane::run_translate(&scratch, n, 500, 3);
            if let Some(e) = &r.error {
                report.failures.push(format!("translate N={n}: {e}"));
            }
            report.translate.push(r);
        }
    }
    if !skipped("propagation") {
        eprintln!("== propagation");
        for &(n, tls, source) in &propagation_sizes {
            report.environment.sample();
            let r = controlplane::run_propagation(&scratch, tools, backend.port, (n, tls), propagation_changes, source);
            if let Some(e) = &r.error {
                report.failures.push(format!("propagation N={n} ({source:?}): {e}"));
            }
            report.propagation.push(r);
        }
    }
    report::write_json(out, "controlplane.json", &serde_json::json!({"translate": report.translate, "propagation": report.propagation}))?;
    report.environment.sample();
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    report::write_json(out, "environment.json", &report.environment)?;
    report::write_json(out, "report.json", &report)?;
    let md = report.markdown();
    std::fs::write(out.join("report.md"), &md)?;
    if let Some(path) = markdown {
        report::update_markdown(&path, &md)?;
    }
    eprintln!("{md}");
    eprintln!("results: {}/*.json, {}/report.md ({:.0} s)", out.display(), out.display(), report.elapsed_seconds);
    drop(backend);
    if !report.failures.is_empty() {
        bail!("{} measurement(s) failed:\n{}", report.failures.len(), report.failures.join("\n"));
    }
    Ok(())
}

/// Run the matcher's criterion bench (short measurement) and collect the mean estimates (ns).
fn criterion_matcher() -> Result<std::collections::BTreeMap<String, f64>> {
    let root = workspace_root();
    let status = std::process::Command::new("cargo")
        .current_dir(&root)
        .args(["bench", "-p", "wasm-ingress-filter", "--bench", "matcher", "--", "--warm-up-time", "1", "--measurement-time", "2", "--noplot"])
        .stdout(std::process::Stdio::null())
        .status()
        .context("cargo bench")?;
    if !status.success() {
        bail!("cargo bench -p wasm-ingress-filter --bench matcher failed ({status})");
    }
    let mut estimates = std::collections::BTreeMap::new();
    let base = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target")).join("criterion");
    let mut stack = vec![base.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && path.file_name().is_some_and(|n| n != "report" && n != "base" && n != "change") {
                stack.push(path);
            } else if path.ends_with("new/estimates.json") {
                let text = std::fs::read_to_string(&path)?;
                let json: serde_json::Value = serde_json::from_str(&text)?;
                let id = path.parent().and_then(|p| p.parent()).and_then(|p| p.strip_prefix(&base).ok()).map(|p| p.display().to_string()).unwrap_or_default();
                if let Some(ns) = json["mean"]["point_estimate"].as_f64() {
                    estimates.insert(id, ns);
                }
            }
        }
    }
    Ok(estimates)
}
