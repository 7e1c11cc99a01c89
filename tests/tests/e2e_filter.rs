//! End-to-end test of the filter in REAL Envoy (V8), with a static bootstrap built here as
//! structured JSON (no control plane): one listener, HCM with the wasm filter (route table as the
//! plugin configuration) and the router, one catch-all route that picks the cluster from
//! `x-wasm-ingress-cluster`, and two static clusters pointing at two echo backends. Everything is
//! checked over real HTTP: which backend answered, with which path and headers, or which status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{json, Value};
use wasm_ingress_filter::table::CLUSTER_HEADER;
use wasm_ingress_tests::backend::{Echo, EchoBackend};
use wasm_ingress_tests::envoy::{Envoy, EnvoyOptions};
use wasm_ingress_tests::paths;

const API_CLUSTER: &str = "default/api/8080";
const WEB_CLUSTER: &str = "default/web/80";

fn route_table() -> Value {
    json!({
        "schema": 1,
        "version": "e2e-1",
        "hosts": [
            {"host": "shop.example.com", "routes": [
                {"path": {"type": "Exact", "value": "/"}, "action": {"kind": "Forward", "backends": [{"cluster": WEB_CLUSTER}]}},
                {"path": {"type": "Prefix", "value": "/api"}, "action": {"kind": "Forward", "backends": [{"cluster": API_CLUSTER}]}},
                {"path": {"type": "Regex", "value": "(?i)/something(/|$)(.*)"},
                 "action": {"kind": "Forward", "backends": [{"cluster": WEB_CLUSTER}], "rewrite": {"type": "Template", "value": "/$2"}}},
                {"path": {"type": "Prefix", "value": "/missing"},
                 "action": {"kind": "Forward", "backends": [{"cluster": "default/does-not-exist/80"}]}}
            ]},
            {"host": "*.example.com", "routes": [
                {"path": {"type": "Prefix", "value": "/"}, "action": {"kind": "Forward", "backends": [{"cluster": API_CLUSTER}]}}
            ]}
        ]
    })
}

fn static_cluster(name: &str, backend: &EchoBackend) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": backend.ip(), "port_value": backend.port()
            }}}}]}]
        }
    })
}

/// The static bootstrap: listener -> HCM -> [wasm filter, router] -> cluster from the header.
fn bootstrap(listen_port: u16, table: &Value, clusters: Vec<Value>) -> Value {
    let wasm = paths::filter_wasm().expect("built filter");
    json!({
        "static_resources": {
            "listeners": [{
                "name": "ingress_http",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress_http",
                        "route_config": {
                            "name": "catch_all",
                            "virtual_hosts": [{
                                "name": "all",
                                "domains": ["*"],
                                "routes": [{
                                    "match": {"prefix": "/"},
                                    "route": {
                                        "cluster_header": CLUSTER_HEADER,
                                        "cluster_not_found_response_code": "SERVICE_UNAVAILABLE"
                                    },
                                    // Applied after the cluster is chosen: backends never see it.
                                    "request_headers_to_remove": [CLUSTER_HEADER]
                                }]
                            }]
                        },
                        "http_filters": [
                            {
                                "name": "envoy.filters.http.wasm",
                                "typed_config": {
                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                                    "config": {
                                        "name": "wasm-ingress",
                                        "root_id": "wasm-ingress",
                                        "failure_policy": "FAIL_RELOAD",
                                        "vm_config": {
                                            "vm_id": "wasm-ingress",
                                            "runtime": "envoy.wasm.runtime.v8",
                                            "code": {"local": {"filename": wasm.display().to_string()}}
                                        },
                                        "configuration": {
                                            "@type": "type.googleapis.com/google.protobuf.StringValue",
                                            "value": table.to_string()
                                        }
                                    }
                                }
                            },
                            {
                                "name": "envoy.filters.http.router",
                                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
                            }
                        ]
                    }
                }]}]
            }],
            "clusters": clusters
        }
    })
}

struct Harness {
    envoy: Envoy,
    base: String,
    client: reqwest::Client,
    _api: EchoBackend,
    _web: EchoBackend,
}

/// What the client saw.
#[derive(Debug)]
struct Seen {
    status: u16,
    backend_header: Option<String>,
    body: String,
}

impl Seen {
    fn echo(&self) -> Echo {
        Echo::parse(self.body.as_bytes()).expect("an echo-backend answer")
    }
}

impl Harness {
    fn start() -> Harness {
        let api = EchoBackend::spawn("api", Ipv4Addr::new(127, 0, 0, 2)).expect("api backend");
        let web = EchoBackend::spawn("web", Ipv4Addr::new(127, 0, 0, 3)).expect("web backend");
        let port = paths::free_port().unwrap();
        let config = bootstrap(port, &route_table(), vec![static_cluster(API_CLUSTER, &api), static_cluster(WEB_CLUSTER, &web)]);
        let envoy = Envoy::start(&config).expect("envoy starts with the filter");
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
        Harness { envoy, base: format!("http://127.0.0.1:{port}"), client, _api: api, _web: web }
    }

    async fn get(&self, host: &str, path: &str, extra: &[(&str, &str)]) -> Seen {
        let mut request = self.client.get(format!("{}{path}", self.base)).header("host", host);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("GET {host}{path}: {e}\n{}", self.envoy.logs()));
        let status = response.status().as_u16();
        let backend_header = response.headers().get("x-backend").and_then(|v| v.to_str().ok()).map(String::from);
        let body = response.text().await.unwrap_or_default();
        Seen { status, backend_header, body }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envoy_routes_rewrites_and_refuses_through_the_filter() {
    let h = Harness::start();

    // Host + Prefix routing, query kept, x-forwarded-host set, internal header not leaked upstream.
    let seen = h.get("shop.example.com", "/api/users?id=7", &[]).await;
    assert_eq!((seen.status, seen.backend_header.as_deref()), (200, Some("api")), "{seen:?}");
    let echo = seen.echo();
    assert_eq!(echo.path, "/api/users?id=7");
    assert_eq!(echo.host, "shop.example.com");
    assert_eq!(echo.headers.get("x-forwarded-host").map(String::as_str), Some("shop.example.com"));
    assert_eq!(echo.headers.get(CLUSTER_HEADER), None, "the cluster header must not reach backends");

    // Exact / goes to web; Host is case-insensitive and the port is ignored.
    let seen = h.get("SHOP.example.com:8080", "/", &[]).await;
    assert_eq!((seen.status, seen.backend_header.as_deref()), (200, Some("web")), "{seen:?}");

    // rewrite-target: /something/new arrives as /new, query kept; /something arrives as /.
    let seen = h.get("shop.example.com", "/something/new?x=1&y=2", &[]).await;
    assert_eq!(seen.backend_header.as_deref(), Some("web"), "{seen:?}");
    assert_eq!(seen.echo().path, "/new?x=1&y=2");
    let seen = h.get("shop.example.com", "/something", &[]).await;
    assert_eq!(seen.echo().path, "/");

    // Wildcard host covers exactly one label.
    let seen = h.get("www.example.com", "/x", &[]).await;
    assert_eq!(seen.backend_header.as_deref(), Some("api"), "{seen:?}");
    let seen = h.get("a.b.example.com", "/x", &[]).await;
    assert_eq!(seen.status, 404, "{seen:?}");

    // No route: 404 from the filter, nothing upstream.
    let seen = h.get("shop.example.com", "/nope", &[]).await;
    assert_eq!((seen.status, seen.backend_header.as_deref()), (404, None), "{seen:?}");
    assert!(seen.body.contains("404 Not Found"), "{seen:?}");
    let seen = h.get("unknown.org", "/api", &[]).await;
    assert_eq!(seen.status, 404, "{seen:?}");

    // A route to a cluster Envoy does not have: 503 from Envoy, and Envoy keeps serving.
    let seen = h.get("shop.example.com", "/missing/x", &[]).await;
    assert_eq!((seen.status, seen.backend_header.as_deref()), (503, None), "{seen:?}");

    // A client cannot pick the cluster: neither on a routed request nor on an unrouted one.
    let seen = h.get("shop.example.com", "/", &[(CLUSTER_HEADER, API_CLUSTER)]).await;
    assert_eq!(seen.backend_header.as_deref(), Some("web"), "{seen:?}");
    let seen = h.get("unknown.org", "/", &[(CLUSTER_HEADER, API_CLUSTER)]).await;
    assert_eq!((seen.status, seen.backend_header.as_deref()), (404, None), "{seen:?}");

    // Still healthy after all of the above.
    let seen = h.get("shop.example.com", "/api", &[]).await;
    assert_eq!(seen.backend_header.as_deref(), Some("api"), "{seen:?}");
    let (status, stats) = h.envoy.admin_get("/stats?filter=wasm").unwrap();
    assert_eq!(status, 200);
    assert!(!stats.contains("wasm.envoy.wasm.runtime.v8.vm_failed: 1"), "the VM must not have failed:\n{stats}");
}

#[test]
fn envoy_refuses_to_start_with_a_table_the_filter_refuses() {
    let backend = EchoBackend::spawn("api", Ipv4Addr::new(127, 0, 0, 2)).expect("backend");
    let bad = json!({"schema": 1, "version": "bad-regex", "hosts": [{"host": "a", "routes": [
        {"path": {"type": "Regex", "value": "/(unclosed"}, "action": {"kind": "Forward", "backends": [{"cluster": API_CLUSTER}]}}]}]});
    let config = bootstrap(paths::free_port().unwrap(), &bad, vec![static_cluster(API_CLUSTER, &backend)]);
    let options = EnvoyOptions { ready_timeout: Duration::from_secs(30), ..EnvoyOptions::default() };
    let error = Envoy::start_with(&config, &options).expect_err("envoy must not become ready with a refused table");
    let text = format!("{error:#}");
    assert!(text.contains("bad-regex"), "Envoy's log should carry the filter's refusal naming the table version:\n{text}");
}

#[test]
fn echo_backend_answers_websocket_upgrades_and_echoes_bytes() {
    let backend = EchoBackend::spawn("ws", Ipv4Addr::new(127, 0, 0, 4)).expect("backend");
    let mut stream = std::net::TcpStream::connect(backend.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        stream,
        "GET /chat HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
    stream.write_all(b"ping over the upgraded connection").unwrap();
    let mut echoed = [0u8; 33];
    stream.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping over the upgraded connection");
}
