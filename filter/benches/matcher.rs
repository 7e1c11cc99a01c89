//! Native benchmark of the pure matcher: lookup cost must not grow with the number of rules
//! (`N` = 10, 1k, 10k, 100k), in the two shapes real clusters have — many hosts with a few paths
//! each, and one host with many paths — plus table compilation (what `on_configure` pays).
//! Run: `cargo bench -p wasm-ingress-filter --bench matcher` (add `-- lookup` to skip compile).

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use wasm_ingress_filter::matcher::{CompiledTable, Outcome, RequestParts};
use wasm_ingress_filter::table::{PathMatch, Route, RouteAction, RouteTable, VirtualHost, SCHEMA_VERSION};

const SIZES: [usize; 4] = [10, 1_000, 10_000, 100_000];

fn route(path: PathMatch, cluster: String) -> Route {
    Route { path, action: RouteAction::forward_to(cluster), origin: Default::default(), https_redirect: None, answer_headers: Vec::new() }
}

/// `n` hosts `h{i}.example.com`, each with `/`, `/api` (Prefix) and `/healthz` (Exact).
fn many_hosts(n: usize) -> RouteTable {
    let hosts = (0..n)
        .map(|i| VirtualHost {
            host: format!("h{i}.example.com"),
            routes: vec![
                route(PathMatch::Prefix("/".into()), format!("ns/web-{i}/80")),
                route(PathMatch::Prefix("/api".into()), format!("ns/api-{i}/8080")),
                route(PathMatch::Exact("/healthz".into()), format!("ns/health-{i}/80")),
            ],
            fallback: None,
            fallback_https_redirect: None,
            implicit_root: None,
            app_root: None,
            client_certificate: None,
        })
        .collect();
    RouteTable { schema: SCHEMA_VERSION, version: format!("many-hosts-{n}"), hosts, default_backend: None, ..RouteTable::default() }
}

/// One host with `n` rules: Prefix `/svc{i}/api` and (every 4th) Exact `/svc{i}/status`, plus `/`.
fn one_host_many_paths(n: usize) -> RouteTable {
    let mut routes: Vec<Route> = (0..n)
        .map(|i| {
            if i % 4 == 3 {
                route(PathMatch::Exact(format!("/svc{i}/status")), format!("ns/svc-{i}/80"))
            } else {
                route(PathMatch::Prefix(format!("/svc{i}/api")), format!("ns/svc-{i}/80"))
            }
        })
        .collect();
    routes.push(route(PathMatch::Prefix("/".into()), "ns/root/80".into()));
    let hosts = vec![VirtualHost { host: "shop.example.com".into(), routes, fallback: None, fallback_https_redirect: None, implicit_root: None, app_root: None, client_certificate: None }];
    RouteTable { schema: SCHEMA_VERSION, version: format!("one-host-{n}"), hosts, default_backend: None, ..RouteTable::default() }
}

fn compile(table: RouteTable) -> CompiledTable {
    match CompiledTable::compile(table) {
        Ok(compiled) => compiled,
        Err(error) => panic!("benchmark table must compile: {error}"),
    }
}

fn assert_forwards(table: &CompiledTable, authority: &str, path: &str) {
    let outcome = table.route(&RequestParts::new(authority.as_bytes(), path.as_bytes()), 0).outcome;
    assert!(matches!(outcome, Outcome::Forward { .. }), "{authority}{path} must be routed: {outcome:?}");
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup/many_hosts");
    for n in SIZES {
        let table = compile(many_hosts(n));
        let authority = format!("h{}.example.com:443", n / 2);
        let path = "/api/v1/users/42?page=3";
        assert_forwards(&table, &authority, path);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(table.route(&RequestParts::new(authority.as_bytes(), path.as_bytes()), 7)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("lookup/one_host_many_paths");
    for n in SIZES {
        let table = compile(one_host_many_paths(n));
        let prefix_path = format!("/svc{}/api/orders/17?x=1", (n / 2) & !3);
        let miss_path = "/unknown/deep/path";
        assert_forwards(&table, "shop.example.com", &prefix_path);
        group.bench_with_input(BenchmarkId::new("prefix_hit", n), &n, |b, _| {
            b.iter(|| black_box(table.route(&RequestParts::new(b"shop.example.com", prefix_path.as_bytes()), 7)))
        });
        group.bench_with_input(BenchmarkId::new("root_fallthrough", n), &n, |b, _| {
            b.iter(|| black_box(table.route(&RequestParts::new(b"shop.example.com", miss_path.as_bytes()), 7)))
        });
    }
    group.finish();
}

fn compilation(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    for n in [10, 1_000, 10_000] {
        let hosts = many_hosts(n);
        group.bench_with_input(BenchmarkId::new("many_hosts", n), &n, |b, _| b.iter(|| black_box(compile(hosts.clone()))));
        let paths = one_host_many_paths(n);
        group.bench_with_input(BenchmarkId::new("one_host_many_paths", n), &n, |b, _| {
            b.iter(|| black_box(compile(paths.clone())))
        });
    }
    group.finish();
}

criterion_group!(benches, lookup, compilation);
criterion_main!(benches);
