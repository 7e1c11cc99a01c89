//! The benchmark route tables and request mixes, and their rendering for every gateway.
//!
//! One [`Workload`] (hosts, each with Prefix and Exact paths, some wildcard hosts) is rendered as:
//! Kubernetes manifests for wasm-ingress (A), a native Envoy `RouteConfiguration` for B (virtual
//! hosts + `path` / `path_separated_prefix`, ordered so Envoy's first-match gives the Ingress
//! precedence), an nginx `server`/`location` config for C (the locations ingress-nginx generates), and
//! a `RouteTable` for the wasmtime fuel counts. The request mix hits rules spread across the whole
//! table (exact paths, Prefix paths, sub-paths of Prefix paths, wildcard hosts) and every request must
//! be answered 200 by every gateway. No I/O here beyond returning strings and values.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};
use wasm_ingress_filter::table::{Origin, PathMatch, Route, RouteAction, RouteTable, VirtualHost, SCHEMA_VERSION};

/// Kubernetes namespace of every generated object.
pub const NAMESPACE: &str = "bench";
/// How many Services the routes are spread over (all point at the same loopback backend).
pub const SERVICES: usize = 10;
/// Service port (the Envoy cluster is `bench/svc-K/80`).
pub const SERVICE_PORT: u16 = 80;
/// Paths per host in the many-hosts shape.
pub const PATHS_PER_HOST: usize = 10;
/// How many distinct requests the load generator cycles through.
pub const REQUEST_MIX: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Shape {
    /// N rules as N/10 hosts with 10 paths each (every 5th host a wildcard).
    ManyHosts,
    /// N paths on one host.
    OneHost,
}

impl Shape {
    pub fn label(self) -> &'static str {
        match self {
            Shape::ManyHosts => "many-hosts",
            Shape::OneHost => "one-host",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Exact,
    Prefix,
}

#[derive(Debug, Clone)]
pub struct PathRule {
    pub kind: Kind,
    pub path: String,
    /// Index into the `SERVICES` services.
    pub service: usize,
}

#[derive(Debug, Clone)]
pub struct HostRules {
    /// `h3.bench.example` or `*.h5.bench.example`.
    pub host: String,
    pub paths: Vec<PathRule>,
}

/// One request of the mix: `Host` header and `:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub authority: String,
    pub path: String,
    /// The cluster the Ingress v1 rules send this request to.
    pub expected_cluster: String,
}

#[derive(Debug, Clone)]
pub struct Workload {
    pub shape: Shape,
    /// Total number of path rules.
    pub rules: usize,
    pub hosts: Vec<HostRules>,
    pub requests: Vec<Request>,
}

pub fn service_name(service: usize) -> String {
    format!("svc-{service}")
}

/// Envoy cluster name as the control plane names it: `namespace/service/port`.
pub fn cluster_name(service: usize) -> String {
    format!("{NAMESPACE}/{}/{SERVICE_PORT}", service_name(service))
}

fn host_name(index: usize) -> String {
    // Every 5th host (not the first) is a wildcard: a realistic mix of exact and wildcard hosts.
    if index % 5 == 4 {
        format!("*.h{index}.bench.example")
    } else {
        format!("h{index}.bench.example")
    }
}

/// Path rule `k` of a host: mostly Prefix, every 4th Exact, and every 10th a Prefix nested under the
/// previous one (so longest-prefix precedence is exercised).
fn path_rule(k: usize) -> PathRule {
    let service = k % SERVICES;
    match k % 10 {
        3 | 7 => PathRule { kind: Kind::Exact, path: format!("/e{k}/item"), service },
        5 => PathRule { kind: Kind::Prefix, path: format!("/r{}/api/v2", k - 1), service },
        _ => PathRule { kind: Kind::Prefix, path: format!("/r{k}/api"), service },
    }
}

impl Workload {
    pub fn new(shape: Shape, rules: usize) -> Workload {
        let rules = rules.max(1);
        let hosts = match shape {
            Shape::ManyHosts => {
                let host_count = rules.div_ceil(PATHS_PER_HOST);
                (0..host_count)
                    .map(|h| {
                        let count = PATHS_PER_HOST.min(rules - h * PATHS_PER_HOST);
                        HostRules { host: host_name(h), paths: (0..count).map(path_rule).collect() }
                    })
                    .collect()
            }
            Shape::OneHost => vec![HostRules { host: "one.bench.example".into(), paths: (0..rules).map(path_rule).collect() }],
        };
        let mut workload = Workload { shape, rules, hosts, requests: Vec::new() };
        workload.requests = workload.request_mix(REQUEST_MIX);
        workload
    }

    /// Every rule as (host index, path index), in table order.
    fn all_rules(&self) -> Vec<(usize, usize)> {
        self.hosts.iter().enumerate().flat_map(|(h, host)| (0..host.paths.len()).map(move |p| (h, p))).collect()
    }

    /// `count` requests hitting rules spread evenly over the table (first to last), alternating
    /// between the Prefix path itself, a sub-path and a sub-path with a query string.
    fn request_mix(&self, count: usize) -> Vec<Request> {
        let rules = self.all_rules();
        let count = count.min(rules.len().max(1) * 3);
        (0..count)
            .map(|i| {
                let (h, p) = rules[i * rules.len() / count];
                let host = &self.hosts[h].host;
                let authority = match host.strip_prefix("*.") {
                    Some(suffix) => format!("w{i}.{suffix}"),
                    None => host.clone(),
                };
                let rule = &self.hosts[h].paths[p];
                let path = match (rule.kind, i % 3) {
                    (Kind::Exact, _) => rule.path.clone(),
                    (Kind::Prefix, 0) => rule.path.clone(),
                    (Kind::Prefix, 1) => format!("{}/users/{i}", rule.path),
                    (Kind::Prefix, _) => format!("{}/items/{i}?page=2", rule.path),
                };
                Request { authority, path, expected_cluster: cluster_name(rule.service) }
            })
            .collect()
    }

    /// The same table as our filter's `RouteTable` (for the wasmtime measurements).
    pub fn route_table(&self) -> RouteTable {
        RouteTable {
            schema: SCHEMA_VERSION,
            version: format!("{}-{}", self.shape.label(), self.rules),
            hosts: self
                .hosts
                .iter()
                .map(|host| VirtualHost {
                    host: host.host.clone(),
                    routes: host
                        .paths
                        .iter()
                        .enumerate()
                        .map(|(i, rule)| Route {
                            path: match rule.kind {
                                Kind::Exact => PathMatch::Exact(rule.path.clone()),
                                Kind::Prefix => PathMatch::Prefix(rule.path.clone()),
                            },
                            action: RouteAction::forward_to(cluster_name(rule.service)),
                            origin: Origin::new(NAMESPACE, &ingress_name(&host.host), &format!("spec.rules[0].http.paths[{i}]")),
                            https_redirect: None,
                            answer_headers: Vec::new(),
                        })
                        .collect(),
                    fallback: None,
                    fallback_https_redirect: None,
                    implicit_root: None,
                    app_root: None,
                    client_certificate: None,
                })
                .collect(),
            default_backend: None,
            default_backend_is_catch_all: false,
            passwords: Default::default(),
            error_page_clusters: Vec::new(),
            error_page_token: String::new(),
            trust_forwarded_headers: false,
            proxy_protocol: false,
            answer_headers: Vec::new(),
            default_server_denied: Vec::new(),
            log_route: false,
            default_server_logged: false,
        }
    }

    /// Ingresses (one per host; for the one-host shape one per 100 paths), Services, EndpointSlices
    /// and the IngressClass, as one multi-document YAML per file name. `extra_paths` are added to the
    /// first host (the churn test toggles one).
    pub fn manifests(&self, backend_port: u16, extra_paths: &[PathRule]) -> BTreeMap<String, String> {
        self.manifests_with(backend_port, extra_paths, &serde_json::Map::new())
    }

    /// [`Workload::manifests`] with `annotations` on every Ingress (gateway P).
    pub fn manifests_annotated(&self, backend_port: u16, annotations: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
        self.manifests_with(backend_port, &[], annotations)
    }

    fn manifests_with(&self, backend_port: u16, extra_paths: &[PathRule], annotations: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
        let mut files = BTreeMap::new();
        files.insert("00-services.yaml".to_string(), services_yaml(backend_port));
        for (h, host) in self.hosts.iter().enumerate() {
            let mut paths = host.paths.clone();
            if h == 0 {
                paths.extend_from_slice(extra_paths);
            }
            for (chunk_index, chunk) in paths.chunks(100).enumerate() {
                let name = format!("{}-{chunk_index}", ingress_name(&host.host));
                let mut doc = ingress_doc(&name, &host.host, chunk);
                if !annotations.is_empty() {
                    doc["metadata"]["annotations"] = Value::Object(annotations.clone());
                }
                files.insert(format!("ing-{h:05}-{chunk_index:03}.yaml"), to_yaml_stream(&[doc]));
            }
        }
        files
    }

    /// Native Envoy route configuration (B): one virtual host per host; in each, Exact paths first
    /// (`path`), then Prefix paths longest first (`path_separated_prefix`), so Envoy's first match is
    /// the Ingress v1 winner. `extra_paths` are added to the first host.
    pub fn envoy_route_configuration(&self, name: &str, extra_paths: &[PathRule]) -> Value {
        let virtual_hosts: Vec<Value> = self
            .hosts
            .iter()
            .enumerate()
            .map(|(h, host)| {
                let mut paths = host.paths.clone();
                if h == 0 {
                    paths.extend_from_slice(extra_paths);
                }
                let mut exact: Vec<&PathRule> = paths.iter().filter(|p| p.kind == Kind::Exact).collect();
                let mut prefix: Vec<&PathRule> = paths.iter().filter(|p| p.kind == Kind::Prefix).collect();
                exact.sort_by(|a, b| a.path.cmp(&b.path));
                prefix.sort_by(|a, b| b.path.len().cmp(&a.path.len()).then_with(|| a.path.cmp(&b.path)));
                let routes: Vec<Value> = exact
                    .iter()
                    .map(|p| json!({"match": {"path": p.path}, "route": {"cluster": cluster_name(p.service), "timeout": "60s"}}))
                    .chain(prefix.iter().map(|p| {
                        let matcher = if p.path == "/" {
                            json!({"prefix": "/"})
                        } else {
                            json!({"path_separated_prefix": p.path.trim_end_matches('/')})
                        };
                        json!({"match": matcher, "route": {"cluster": cluster_name(p.service), "timeout": "60s"}})
                    }))
                    .collect();
                json!({"name": format!("vh-{h}"), "domains": [host.host], "routes": routes})
            })
            .collect();
        json!({
            "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            "name": name,
            "virtual_hosts": virtual_hosts,
        })
    }

    /// nginx `server` blocks (C), as ingress-nginx writes them: one server per host; Prefix `/p`
    /// becomes `location /p/` plus `location = /p`; Exact becomes `location = /p`. Upstreams
    /// `svc_K` are defined by the caller. `extra_paths` are added to the first host.
    pub fn nginx_servers(&self, listen: &str, extra_paths: &[PathRule]) -> String {
        let mut out = String::new();
        for (h, host) in self.hosts.iter().enumerate() {
            let mut paths = host.paths.clone();
            if h == 0 {
                paths.extend_from_slice(extra_paths);
            }
            let _ = writeln!(out, "  server {{\n    {listen}\n    server_name {};", host.host);
            for rule in &paths {
                let upstream = format!("svc_{}", rule.service);
                match rule.kind {
                    Kind::Exact => {
                        let _ = writeln!(out, "    location = {} {{ proxy_pass http://{upstream}; }}", rule.path);
                    }
                    Kind::Prefix => {
                        let base = rule.path.trim_end_matches('/');
                        let _ = writeln!(out, "    location {base}/ {{ proxy_pass http://{upstream}; }}");
                        if !base.is_empty() {
                            let _ = writeln!(out, "    location = {base} {{ proxy_pass http://{upstream}; }}");
                        }
                    }
                }
            }
            let _ = writeln!(out, "  }}");
        }
        out
    }
}

fn ingress_name(host: &str) -> String {
    host.trim_start_matches("*.").replace('.', "-")
}

/// The 10 Services and their EndpointSlices, all pointing at 127.0.0.1:`backend_port`, plus our
/// IngressClass.
pub fn services_yaml(backend_port: u16) -> String {
    let mut docs = vec![json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": wasm_ingress::cli::DEFAULT_INGRESS_CLASS},
        "spec": {"controller": wasm_ingress::cli::DEFAULT_CONTROLLER_NAME},
    })];
    for s in 0..SERVICES {
        docs.push(service_doc(&service_name(s), backend_port));
        docs.push(endpoint_slice_doc(&service_name(s), backend_port));
    }
    to_yaml_stream(&docs)
}

pub fn service_doc(name: &str, backend_port: u16) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": backend_port, "protocol": "TCP"}]},
    })
}

pub fn endpoint_slice_doc(service: &str, backend_port: u16) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{service}-abcde"),
            "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": backend_port, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true, "serving": true, "terminating": false}}],
    })
}

pub fn ingress_doc(name: &str, host: &str, paths: &[PathRule]) -> Value {
    let paths: Vec<Value> = paths
        .iter()
        .map(|p| {
            json!({
                "path": p.path,
                "pathType": match p.kind { Kind::Exact => "Exact", Kind::Prefix => "Prefix" },
                "backend": {"service": {"name": service_name(p.service), "port": {"number": SERVICE_PORT}}},
            })
        })
        .collect();
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "ingressClassName": wasm_ingress::cli::DEFAULT_INGRESS_CLASS,
            "rules": [{"host": host, "http": {"paths": paths}}],
        },
    })
}

/// The access policies of gateways P and Q: CORS for every origin, an allow-list the load
/// generator is in, a request limit it never reaches, and (P, `with_auth`) external auth against the
/// backend (which answers 200 to any path, so every request is allowed after one auth request).
pub fn policy_annotations(backend_port: u16, with_auth: bool) -> serde_json::Map<String, Value> {
    let nginx = |name: &str| format!("nginx.ingress.kubernetes.io/{name}");
    let auth = with_auth.then(|| ("auth-url", format!("http://127.0.0.1:{backend_port}/auth")));
    [
        ("enable-cors", "true".to_string()),
        ("whitelist-source-range", "127.0.0.0/8".to_string()),
        ("limit-rps", "1000000".to_string()),
    ]
    .into_iter()
    .chain(auth)
    .map(|(name, value)| (nginx(name), Value::String(value)))
    .collect()
}

/// Several documents as one YAML stream (`---` separated).
pub fn to_yaml_stream(docs: &[Value]) -> String {
    docs.iter()
        .map(|doc| serde_yaml::to_string(doc).unwrap_or_default())
        .map(|s| format!("---\n{s}"))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn many_hosts_has_ten_paths_per_host_and_wildcards() {
        let w = Workload::new(Shape::ManyHosts, 1000);
        assert_eq!(w.hosts.len(), 100);
        assert!(w.hosts.iter().all(|h| h.paths.len() == 10));
        assert_eq!(w.hosts.iter().filter(|h| h.host.starts_with("*.")).count(), 20);
        assert_eq!(w.requests.len(), REQUEST_MIX);
    }

    #[test]
    fn request_mix_spans_first_to_last_host_and_uses_wildcards() {
        let w = Workload::new(Shape::ManyHosts, 10_000);
        let first = &w.requests[0];
        let last = &w.requests[w.requests.len() - 1];
        assert_eq!(first.authority, "h0.bench.example");
        assert!(last.authority.contains("h99"), "{last:?}");
        assert!(w.requests.iter().any(|r| r.authority.starts_with('w')));
        assert!(w.requests.iter().any(|r| r.path.contains("/users/")));
        assert!(w.requests.iter().any(|r| r.path.ends_with("/item")));
    }

    #[test]
    fn one_host_shape_has_n_paths_with_nested_prefixes() {
        let w = Workload::new(Shape::OneHost, 2000);
        assert_eq!(w.hosts.len(), 1);
        assert_eq!(w.hosts[0].paths.len(), 2000);
        assert!(w.hosts[0].paths.iter().any(|p| p.path == "/r4/api/v2"));
        assert!(w.hosts[0].paths.iter().any(|p| p.path == "/r4/api"));
    }

    #[test]
    fn envoy_routes_put_exact_first_then_longest_prefix() {
        let w = Workload::new(Shape::ManyHosts, 10);
        let rc = w.envoy_route_configuration("bench", &[]);
        let routes = rc["virtual_hosts"][0]["routes"].as_array().unwrap();
        assert_eq!(routes.len(), 10);
        assert!(routes[0]["match"]["path"].is_string());
        assert!(routes[1]["match"]["path"].is_string());
        assert_eq!(routes[2]["match"]["path_separated_prefix"], "/r4/api/v2");
        assert_eq!(routes[0]["route"]["cluster"], "bench/svc-3/80");
    }

    #[test]
    fn nginx_prefix_gets_slash_location_and_exact_location() {
        let w = Workload::new(Shape::ManyHosts, 10);
        let conf = w.nginx_servers("listen 127.0.0.1:1;", &[]);
        assert!(conf.contains("location /r0/api/ { proxy_pass http://svc_0; }"), "{conf}");
        assert!(conf.contains("location = /r0/api { proxy_pass http://svc_0; }"), "{conf}");
        assert!(conf.contains("location = /e3/item { proxy_pass http://svc_3; }"), "{conf}");
    }

    #[test]
    fn manifests_name_our_class_and_backend_port() {
        let w = Workload::new(Shape::OneHost, 250);
        let files = w.manifests(9999, &[]);
        assert_eq!(files.len(), 1 + 3);
        let services = &files["00-services.yaml"];
        assert!(services.contains("port: 9999"));
        assert!(services.contains("kubernetes.io/service-name: svc-9"));
        let ing = &files["ing-00000-000.yaml"];
        assert!(ing.contains("ingressClassName: wasm"));
        assert!(ing.contains("pathType: Exact"));
    }

    #[test]
    fn route_table_matches_the_rules() {
        let w = Workload::new(Shape::ManyHosts, 1000);
        let table = w.route_table();
        assert_eq!(table.hosts.len(), 100);
        assert_eq!(table.hosts.iter().map(|h| h.routes.len()).sum::<usize>(), 1000);
    }
}
