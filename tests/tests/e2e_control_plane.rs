//! End to end through the whole product: manifests -> `wasm-ingress serve` -> xDS (LDS, CDS, EDS, SDS,
//! ECDS) -> real Envoy 1.40 with the built filter -> loopback echo backends, checked with real
//! HTTP/1.1, HTTP/2 (h2c and h2 over TLS), HTTPS with SNI and WebSocket clients.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};
use wasm_ingress_tests::backend::{Echo, EchoBackend};
use wasm_ingress_tests::envoy::read_kept_response;
use wasm_ingress_tests::gateway::{certs::TestCa, manifests, wait_until, Gateway};

fn backend(name: &str, last_octet: u8) -> EchoBackend {
    EchoBackend::spawn(name, Ipv4Addr::new(127, 0, 0, last_octet)).unwrap()
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Option<Echo>, reqwest::header::HeaderMap) {
    let response = client.get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap();
    (status, Echo::parse(&body).ok(), headers)
}

/// Which backend answered `url` (panics with the status if none did).
async fn served_by(client: &reqwest::Client, url: &str) -> Echo {
    let (status, echo, _) = get(client, url).await;
    echo.unwrap_or_else(|| panic!("GET {url}: status {status}, not answered by a backend"))
}

/// One raw HTTP/1.1 request on an open keep-alive connection; returns (status, body).
fn keep_alive_request(stream: &mut TcpStream, host: &str, path: &str) -> (u16, String) {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let response = read_kept_response(stream).expect("connection closed by Envoy");
    (response.status, response.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_ingress_spec_through_real_envoy() {
    let echo_a = backend("echo-a", 1);
    let echo_b = backend("echo-b", 2);
    let named = backend("named", 3);
    let spread: Vec<EchoBackend> = (0..3).map(|i| backend(&format!("spread-{i}"), 10 + i)).collect();
    let fallback = backend("fallback", 4);

    let dir = tempfile::tempdir().unwrap();
    let mut objects = Vec::new();
    objects.extend(manifests::service("default", "echo-a", &[("http", 80)], &[&echo_a]));
    objects.extend(manifests::service("default", "echo-b", &[("http", 80)], &[&echo_b]));
    objects.extend(manifests::service("shop", "named", &[("metrics", 9090), ("web", 8080)], &[&named]));
    objects.extend(manifests::service("default", "spread", &[("http", 80)], &spread.iter().collect::<Vec<_>>()));
    objects.extend(manifests::service("default", "fallback", &[("http", 80)], &[&fallback]));
    manifests::write(dir.path(), "services.yaml", &objects).unwrap();
    manifests::write(
        dir.path(),
        "ingresses.yaml",
        &[
            manifests::ingress(
                "default",
                "demo",
                json!({}),
                &[
                    (
                        "demo.test",
                        vec![
                            manifests::path("/", "Prefix", "echo-a", json!(80)),
                            manifests::path("/b", "Prefix", "echo-b", json!(80)),
                            manifests::path("/exact", "Exact", "echo-b", json!(80)),
                            manifests::path("/spread", "Prefix", "spread", json!(80)),
                            manifests::path("/missing", "Prefix", "does-not-exist", json!(80)),
                        ],
                    ),
                    ("*.wild.test", vec![manifests::path("/", "Prefix", "echo-b", json!(80))]),
                    ("", vec![manifests::path("/hostless", "Prefix", "echo-b", json!(80))]),
                ],
            ),
            manifests::ingress(
                "shop",
                "named-port",
                json!({}),
                &[("shop.test", vec![manifests::path("/", "Prefix", "named", json!("web"))])],
            ),
            manifests::ingress(
                "default",
                "rewrite",
                json!({"nginx.ingress.kubernetes.io/rewrite-target": "/$2"}),
                &[("rewrite.test", vec![manifests::path("/something(/|$)(.*)", "ImplementationSpecific", "echo-a", json!(80))])],
            ),
            // Another controller's Ingress: must not be served.
            {
                let mut other = manifests::ingress(
                    "default",
                    "not-ours",
                    json!({}),
                    &[("other.test", vec![manifests::path("/", "Prefix", "echo-a", json!(80))])],
                );
                other["spec"]["ingressClassName"] = json!("nginx");
                other
            },
        ],
    )
    .unwrap();
    manifests::write(
        dir.path(),
        "default.yaml",
        &[json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "default-backend", "namespace": "default"},
            "spec": {"ingressClassName": "wasm",
                     "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}}},
        })],
    )
    .unwrap();

    let gateway = Gateway::start(dir.path()).unwrap();
    let hosts = ["demo.test", "a.wild.test", "b.a.wild.test", "wild.test", "shop.test", "rewrite.test", "unknown.test", "other.test"];
    let client = gateway.client(&hosts, None).unwrap();
    let url = |host: &str, path: &str| gateway.http_url(host, path);

    // Host + path routing, Prefix element-wise, Exact, longest match.
    let cases: &[(&str, &str, &str, &str)] = &[
        ("demo.test", "/", "echo-a", "/"),
        ("demo.test", "/b", "echo-b", "/b"),
        ("demo.test", "/b/", "echo-b", "/b/"),
        ("demo.test", "/b/c?x=1", "echo-b", "/b/c?x=1"),
        ("demo.test", "/bc", "echo-a", "/bc"),
        ("demo.test", "/exact", "echo-b", "/exact"),
        ("demo.test", "/exact/", "echo-a", "/exact/"),
        ("DEMO.Test", "/b", "echo-b", "/b"),
        // Wildcard: exactly one label.
        ("a.wild.test", "/x", "echo-b", "/x"),
        // Host-less rules serve hosts that match no rule; unmatched paths go to the default backend.
        ("unknown.test", "/hostless/x", "echo-b", "/hostless/x"),
        ("unknown.test", "/elsewhere", "fallback", "/elsewhere"),
        ("b.a.wild.test", "/x", "fallback", "/x"),
        ("wild.test", "/x", "fallback", "/x"),
        ("other.test", "/", "fallback", "/"),
        // Named Service port.
        ("shop.test", "/cart", "named", "/cart"),
        // rewrite-target with capture groups; the query string is kept.
        ("rewrite.test", "/something/new?q=1", "echo-a", "/new?q=1"),
        ("rewrite.test", "/something", "echo-a", "/"),
        ("rewrite.test", "/SOMETHING/x", "echo-a", "/x"),
    ];
    for (host, path, backend, upstream_path) in cases {
        let target = url(&host.to_ascii_lowercase(), path);
        let echo = if *host == "DEMO.Test" {
            let response = client.get(url("demo.test", path)).header("host", *host).send().await.unwrap();
            Echo::parse(&response.bytes().await.unwrap()).unwrap()
        } else {
            served_by(&client, &target).await
        };
        assert_eq!((echo.backend.as_str(), echo.path.as_str()), (*backend, *upstream_path), "{host}{path}");
    }

    // A Service that does not exist answers 503; everything else keeps working (checked above).
    let (status, echo, _) = get(&client, &url("demo.test", "/missing")).await;
    assert_eq!((status, echo), (503, None));

    // Load spread over the endpoints of one Service.
    let mut seen = BTreeMap::new();
    for _ in 0..30 {
        *seen.entry(served_by(&client, &url("demo.test", "/spread")).await.backend).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 3, "requests spread over every endpoint: {seen:?}");

    // What upstreams receive, as ingress-nginx sends it.
    let response = client
        .get(url("demo.test", "/b/headers"))
        .header("x-wasm-ingress-cluster", "default/echo-a/80")
        .send()
        .await
        .unwrap();
    let echo = Echo::parse(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(echo.backend, "echo-b", "a client-sent cluster header must not pick the backend");
    assert!(!echo.headers.contains_key("x-wasm-ingress-cluster"), "internal header leaked upstream: {:?}", echo.headers);
    // Envoy appends the client address (for a loopback client: its own local address) to XFF.
    let xff = echo.headers.get("x-forwarded-for").cloned().unwrap_or_default();
    assert!(xff.parse::<std::net::IpAddr>().is_ok(), "x-forwarded-for {xff:?} in {:?}", echo.headers);
    assert_eq!(echo.headers.get("x-forwarded-proto").map(String::as_str), Some("http"));
    assert_eq!(echo.headers.get("x-forwarded-host").map(String::as_str), Some(format!("demo.test:{}", gateway.http.port()).as_str()));
    assert!(echo.headers.get("x-request-id").is_some_and(|v| v.len() >= 16), "{:?}", echo.headers);
    assert!(!echo.headers.contains_key("x-envoy-expected-rq-timeout-ms"), "Envoy internals leaked upstream: {:?}", echo.headers);

    // HTTP/2 from clients (h2c, prior knowledge) passes through.
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .resolve("demo.test", gateway.http)
        .build()
        .unwrap();
    let response = h2c.get(url("demo.test", "/b/h2")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(Echo::parse(&response.bytes().await.unwrap()).unwrap().backend, "echo-b");

    // WebSocket upgrade passes through (echo-backend answers 101 and echoes bytes).
    let mut ws = TcpStream::connect(gateway.http).unwrap();
    ws.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        ws,
        "GET /b/ws HTTP/1.1\r\nHost: demo.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(ws.read(&mut byte).unwrap(), 1, "closed during upgrade: {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
    ws.write_all(b"ping through envoy").unwrap();
    let mut echoed = [0u8; 18];
    ws.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping through envoy");

    // Envoy writes one access-log line per request to stdout, ingress-nginx's: request line,
    // status, upstream.
    let logged = wait_until(Duration::from_secs(5), || {
        Ok(gateway.envoy.logs().lines().any(|l| l.contains("\"GET /b/headers HTTP/1.1\" 200 ") && l.contains(" [default/echo-b/80] ")))
    });
    assert!(logged.is_ok(), "no access log line for /b/headers:\n{}", gateway.envoy.logs());
    // A rewritten request is logged with the path the client sent, as nginx logs its request line.
    let logged = wait_until(Duration::from_secs(5), || Ok(gateway.envoy.logs().lines().any(|l| l.contains(" /something/new?q=1 "))));
    assert!(logged.is_ok(), "no access log line with the client's path /something/new?q=1:\n{}", gateway.envoy.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_right_certificate_per_sni_and_rotates_without_restart() {
    let site_a = backend("site-a", 20);
    let site_b = backend("site-b", 21);
    let ca_a = TestCa::new("ca-a").unwrap();
    let ca_b = TestCa::new("ca-b").unwrap();
    let (cert_a, key_a) = ca_a.server_cert(&["a.tls.test"]).unwrap();
    let (cert_b, key_b) = ca_b.server_cert(&["b.tls.test"]).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut objects = Vec::new();
    objects.extend(manifests::service("default", "site-a", &[("http", 80)], &[&site_a]));
    objects.extend(manifests::service("default", "site-b", &[("http", 80)], &[&site_b]));
    objects.push(manifests::tls_secret("default", "cert-a", &cert_a, &key_a));
    objects.push(manifests::tls_secret("default", "cert-b", &cert_b, &key_b));
    // A malformed Secret must only cost its own TLS entry.
    objects.push(manifests::tls_secret("default", "broken", "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", &key_b));
    for (name, host, service, secret) in [("a", "a.tls.test", "site-a", "cert-a"), ("b", "b.tls.test", "site-b", "cert-b"), ("c", "c.tls.test", "site-b", "broken")] {
        let mut ingress = manifests::ingress("default", name, json!({}), &[(host, vec![manifests::path("/", "Prefix", service, json!(80))])]);
        ingress["spec"]["tls"] = json!([{"hosts": [host], "secretName": secret}]);
        objects.push(ingress);
    }
    manifests::write(dir.path(), "tls.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let hosts = ["a.tls.test", "b.tls.test", "c.tls.test"];

    // Each SNI name gets its own certificate: a client trusting only CA a accepts a.tls.test and
    // rejects b.tls.test, and the other way round.
    let trusts_a = gateway.client(&hosts, Some(&ca_a.cert_pem)).unwrap();
    let trusts_b = gateway.client(&hosts, Some(&ca_b.cert_pem)).unwrap();
    let response = trusts_a.get(gateway.https_url("a.tls.test", "/x")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "ALPN offers h2");
    let echo = Echo::parse(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(echo.backend, "site-a");
    assert_eq!(echo.headers.get("x-forwarded-proto").map(String::as_str), Some("https"));
    assert!(trusts_a.get(gateway.https_url("b.tls.test", "/")).send().await.is_err());
    assert_eq!(served_by(&trusts_b, &gateway.https_url("b.tls.test", "/")).await.backend, "site-b");
    assert!(trusts_b.get(gateway.https_url("a.tls.test", "/")).send().await.is_err());
    // The host with the broken Secret still asked for TLS: plain HTTP is redirected to HTTPS, as
    // ingress-nginx does (its default certificate then answers); the other hosts are unaffected.
    let plain = gateway.client(&hosts, None).unwrap();
    let redirect = plain.get(gateway.http_url("c.tls.test", "/x")).send().await.unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers().get("location").and_then(|v| v.to_str().ok()), Some("https://c.tls.test/x"));

    // Rotate a.tls.test's Secret to a certificate from CA b: Envoy picks it up over SDS, no restart.
    let (rotated_cert, rotated_key) = ca_b.server_cert(&["a.tls.test"]).unwrap();
    let position = objects.iter().position(|o| o["metadata"]["name"] == "cert-a").unwrap();
    objects[position] = manifests::tls_secret("default", "cert-a", &rotated_cert, &rotated_key);
    manifests::write(dir.path(), "tls.yaml", &objects).unwrap();
    let mut took = None;
    for attempt in 0..100 {
        let fresh = gateway.client(&hosts, Some(&ca_b.cert_pem)).unwrap();
        if fresh.get(gateway.https_url("a.tls.test", "/")).send().await.is_ok() {
            took = Some(attempt);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(took.is_some(), "rotated certificate never served");
    eprintln!("certificate rotation reached Envoy after ~{} ms", took.unwrap_or(0) * 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_changes_apply_live_and_keep_alive_connections_survive() {
    let echo_a = backend("echo-a", 30);
    let echo_b = backend("echo-b", 31);
    let dir = tempfile::tempdir().unwrap();
    let mut services = manifests::service("default", "echo-a", &[("http", 80)], &[&echo_a]);
    services.extend(manifests::service("default", "echo-b", &[("http", 80)], &[&echo_b]));
    manifests::write(dir.path(), "services.yaml", &services).unwrap();
    let live = |paths: Vec<Value>| manifests::ingress("default", "live", json!({}), &[("live.test", paths)]);
    manifests::write(dir.path(), "live.yaml", &[live(vec![manifests::path("/a", "Prefix", "echo-a", json!(80))])]).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let client = gateway.client(&["live.test"], None).unwrap();
    let url = |path: &str| gateway.http_url("live.test", path);
    assert_eq!(served_by(&client, &url("/a")).await.backend, "echo-a");
    assert_eq!(get(&client, &url("/new")).await.0, 404);

    // A keep-alive connection opened before the change.
    let mut kept = TcpStream::connect(gateway.http).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (status, body) = keep_alive_request(&mut kept, "live.test", "/a");
    assert_eq!((status, Echo::parse(body.as_bytes()).unwrap().backend.as_str()), (200, "echo-a"));

    // Edit: add /new. Measure how long until Envoy serves it.
    manifests::write(
        dir.path(),
        "live.yaml",
        &[live(vec![manifests::path("/a", "Prefix", "echo-a", json!(80)), manifests::path("/new", "Prefix", "echo-b", json!(80))])],
    )
    .unwrap();
    let mut took = None;
    let start = std::time::Instant::now();
    for _ in 0..200 {
        if let (200, Some(echo), _) = get(&client, &url("/new")).await {
            assert_eq!(echo.backend, "echo-b");
            took = Some(start.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let took = took.expect("the new path was never served");
    eprintln!("manifest edit -> Envoy serving the new path: {took:?}");

    // The old connection survived the update and sees the new routes.
    let (status, body) = keep_alive_request(&mut kept, "live.test", "/new");
    assert_eq!((status, Echo::parse(body.as_bytes()).unwrap().backend.as_str()), (200, "echo-b"));

    // A cluster changed in place (`load-balance`: its lb_policy) is re-created by Envoy, and the new
    // cluster needs its endpoints again: with delta xDS, Envoy asks for nothing it already
    // subscribed and hands the new cluster the load assignment it holds (its ADS EDS cache; the
    // control plane does not send it again). Without them the new cluster would stay warming until
    // Envoy's 15 s initial fetch timeout, then serve 503s.
    let updates_before = cds_updates(&gateway);
    let balanced = manifests::ingress(
        "default",
        "live",
        json!({"nginx.ingress.kubernetes.io/load-balance": "ewma"}),
        &[("live.test", vec![manifests::path("/a", "Prefix", "echo-a", json!(80)), manifests::path("/new", "Prefix", "echo-b", json!(80))])],
    );
    manifests::write(dir.path(), "live.yaml", &[balanced]).unwrap();
    wait_until(Duration::from_secs(10), || Ok(cds_updates(&gateway) > updates_before)).unwrap();
    wait_until(Duration::from_secs(3), || Ok(stat(&gateway, "cluster_manager.warming_clusters") == Some(0))).unwrap();
    let (_, clusters) = gateway.envoy.admin_get("/config_dump?resource=dynamic_active_clusters").unwrap();
    assert!(clusters.contains("LEAST_REQUEST"), "the changed cluster is active: {clusters}");
    assert_eq!(served_by(&client, &url("/a")).await.backend, "echo-a");

    // A half-written (invalid) file never drops what was served from it.
    std::fs::write(dir.path().join("live.yaml"), "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: live\n").unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(served_by(&client, &url("/new")).await.backend, "echo-b");

    // Delete the Ingress: its routes stop; the keep-alive connection still works.
    std::fs::remove_file(dir.path().join("live.yaml")).unwrap();
    wait_until(Duration::from_secs(10), || Ok(std::net::TcpStream::connect(gateway.http).is_ok()))
        .unwrap();
    let mut gone = false;
    for _ in 0..200 {
        if get(&client, &url("/a")).await.0 == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(gone, "deleted Ingress still served");
    let (status, _) = keep_alive_request(&mut kept, "live.test", "/a");
    assert_eq!(status, 404);
}

/// One of Envoy's counters or gauges, if it has it.
fn stat(gateway: &Gateway, name: &str) -> Option<u64> {
    let (_, stats) = gateway.envoy.admin_get("/stats").ok()?;
    stats.lines().filter_map(|line| line.split_once(": ")).find(|(n, _)| *n == name).and_then(|(_, v)| v.trim().parse().ok())
}

/// Cluster (CDS) updates Envoy applied so far.
fn cds_updates(gateway: &Gateway) -> u64 {
    stat(gateway, "cluster_manager.cds.update_success").unwrap_or(0)
}

/// Listener, cluster, route and filter-configuration updates Envoy applied so far.
fn non_endpoint_updates(gateway: &Gateway) -> u64 {
    let (_, stats) = gateway.envoy.admin_get("/stats").unwrap();
    stats
        .lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(name, _)| {
            (name.starts_with("listener_manager.lds.") || name.starts_with("cluster_manager.cds.") || name.starts_with("http."))
                && name.ends_with(".update_success")
                || name.starts_with("extension_config_discovery.") && name.ends_with(".config_reload")
        })
        .filter_map(|(_, value)| value.trim().parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_changes_reach_envoy_through_eds_alone() {
    let echo_a = backend("echo-a", 40);
    let echo_b = backend("echo-b", 41);
    let dir = tempfile::tempdir().unwrap();
    let slice_of = |backend: &EchoBackend| manifests::service("default", "moving", &[("http", 80)], &[backend])[1].clone();
    let ingress = |paths: Vec<Value>| manifests::ingress("default", "moving", json!({}), &[("moving.test", paths)]);
    let root = manifests::path("/", "Exact", "moving", json!(80));
    // app.yaml: the Ingress, Service `moving` (its slice is slice.yaml) and, from round r on, a
    // path /round-r to a Service of its own (a new cluster).
    let app = |rounds: usize| {
        let mut objects = vec![manifests::service("default", "moving", &[("http", 80)], &[&echo_a])[0].clone()];
        let mut paths = vec![root.clone()];
        for r in 0..rounds {
            objects.extend(manifests::service("default", &format!("other-{r}"), &[("http", 80)], &[&echo_b]));
            paths.push(manifests::path(&format!("/round-{r}"), "Exact", &format!("other-{r}"), json!(80)));
        }
        objects.push(ingress(paths));
        objects
    };
    manifests::write(dir.path(), "app.yaml", &app(0)).unwrap();
    manifests::write(dir.path(), "slice.yaml", &[slice_of(&echo_a)]).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let client = gateway.client(&["moving.test"], None).unwrap();
    let url = gateway.http_url("moving.test", "/");
    assert_eq!(served_by(&client, &url).await.backend, "echo-a");

    // The slice moves from one backend to the other and back; then a route change to a new
    // Service (a cluster response, after which Envoy is sent every assignment again), twice.
    for round in 0..2 {
        let before = non_endpoint_updates(&gateway);
        for (slice, expected) in [(&echo_b, "echo-b"), (&echo_a, "echo-a")] {
            manifests::write(dir.path(), "slice.yaml", &[slice_of(slice)]).unwrap();
            let mut answered = String::new();
            for _ in 0..400 {
                answered = served_by(&client, &url).await.backend;
                if answered == expected {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            assert_eq!(answered, expected, "round {round}: the endpoint change reached Envoy");
        }
        assert_eq!(non_endpoint_updates(&gateway), before, "round {round}: endpoint changes pushed EDS alone");

        let new_path = gateway.http_url("moving.test", &format!("/round-{round}"));
        assert_eq!(get(&client, &new_path).await.0, 404);
        manifests::write(dir.path(), "app.yaml", &app(round + 1)).unwrap();
        let mut answered = None;
        for _ in 0..400 {
            answered = get(&client, &new_path).await.1.map(|echo| echo.backend);
            if answered.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(answered.as_deref(), Some("echo-b"), "round {round}: the route change was served");
        assert!(non_endpoint_updates(&gateway) > before, "round {round}: a route change is more than EDS");
    }
}
