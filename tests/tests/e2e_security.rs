//! Edge security through the whole product (control plane + real Envoy + the built filter), with
//! raw HTTP/1.1 requests where a client library would normalise the path itself:
//! - access-control annotations we cannot enforce fail closed (403 / 503), others keep serving;
//! - no path encoding routes by one prefix and delivers a traversal to that prefix's backend;
//! - a hostile corpus (rewrite bombs, regex floods, huge headers, deep and long paths) costs the
//!   requests that carry it and nothing else: another host under load sees zero failures;
//! - internal and underscore headers never reach an upstream;
//! - the HTTPS listener's TLS versions follow `--tls-min-version` / `--tls-max-version`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wasm_ingress_tests::backend::{Echo, EchoBackend};
use wasm_ingress_tests::envoy::read_kept_response;
use wasm_ingress_tests::gateway::{manifests, xds_credentials, Gateway, GatewayOptions};

fn backend(name: &str, last_octet: u8) -> EchoBackend {
    EchoBackend::spawn(name, Ipv4Addr::new(127, 0, 0, last_octet)).unwrap()
}

/// One raw HTTP/1.1 request (`Connection: close`); returns (status, headers, body). The request
/// target is sent byte for byte as given.
fn raw(addr: SocketAddr, host: &str, target: &str, extra_headers: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{extra_headers}Connection: close\r\n\r\n");
    // Envoy may answer and close before a huge request is written: that is an answer too.
    let _ = stream.write_all(request.as_bytes());
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let body = response.get(split + 4..).unwrap_or_default().to_vec();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, body)
}

fn echo_of(body: &[u8]) -> Option<Echo> {
    Echo::parse(body).ok()
}

#[test]
fn access_controls_that_cannot_be_enforced_fail_closed_through_envoy() {
    let app = backend("app", 61);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    let annotated = |name: &str, key: &str, value: &str, host: &str| {
        manifests::ingress(
            "default",
            name,
            json!({ format!("nginx.ingress.kubernetes.io/{key}"): value }),
            &[(host, vec![manifests::path("/", "Prefix", "app", json!(80))])],
        )
    };
    objects.extend([
        // Enforced now (Envoy RBAC), not denied: a client outside the list still gets 403.
        annotated("allowlist", "whitelist-source-range", "10.0.0.0/8", "allowlist.test"),
        // Enforced now (the filter checks the users): without auth-secret, 503 as ingress-nginx.
        annotated("basic", "auth-type", "basic", "basic.test"),
        // Enforced now (the filter asks the auth service): one that cannot be reached answers 500.
        annotated("external", "auth-url", "http://127.0.0.1:1/verify", "external.test"),
        // Enforced now (Envoy asks for the certificate): a CA Secret that does not exist, 403
        // (ingress-nginx's AuthTLSError).
        annotated("mtls", "auth-tls-secret", "default/ca", "mtls.test"),
        annotated("bad-range", "denylist-source-range", "not-a-cidr", "bad-range.test"),
        annotated("snippet", "configuration-snippet", "deny all;", "snippet.test"),
        // A WAF in blocking mode (modsecurity.go): there is no WAF here.
        annotated("waf", "modsecurity-snippet", "SecRuleEngine On\nSecRule REQUEST_HEADERS:User-Agent \"block-ua\" \"deny,status:403\"", "waf.test"),
        // ModSecurity's default mode only logs: served.
        annotated("waf-detect", "modsecurity-snippet", "SecRuleEngine DetectionOnly", "waf-detect.test"),
        annotated("open", "proxy-buffering", "off", "open.test"),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();

    let cases = [
        ("allowlist.test", 403),
        ("basic.test", 503),
        ("external.test", 500),
        ("mtls.test", 403),
        ("bad-range.test", 503),
        ("snippet.test", 403),
        ("waf.test", 403),
    ];
    for (host, status) in cases {
        for path in ["/", "/deep/path?q=1"] {
            let (got, head, body) = raw(gateway.http, host, path, "");
            assert_eq!(got, status, "{host}{path}: {head}");
            assert!(echo_of(&body).is_none(), "{host}{path} reached the backend");
        }
    }
    for host in ["open.test", "waf-detect.test"] {
        let (status, _, body) = raw(gateway.http, host, "/", "");
        assert_eq!((status, echo_of(&body).map(|e| e.backend)), (200, Some("app".to_string())), "{host}");
    }

    // The control plane says so: a metric, and `validate` exits 1 naming Ingress and annotation.
    let (_, metrics) = wasm_ingress_tests::envoy::http_get(gateway.control_plane_admin, "/metrics", Duration::from_secs(5)).unwrap();
    assert!(metrics.lines().any(|l| l == "ingresses_denied 5"), "{metrics}");
    let validate = std::process::Command::new(wasm_ingress_tests::paths::control_plane().unwrap())
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&validate.stdout);
    assert_eq!(validate.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("error: Ingress default/basic: metadata.annotations[nginx.ingress.kubernetes.io/auth-secret]:"),
        "{stdout}"
    );
    assert!(stdout.contains("(fail closed)"), "{stdout}");
}

/// (request target, backend expected, upstream path expected). Routes: `/public` -> public,
/// `/admin` -> admin, `/` -> root.
const TRAVERSALS: &[(&str, Option<&str>, &str)] = &[
    ("/public/file", Some("public"), "/public/file"),
    ("/public/..%2Fadmin", Some("admin"), "/admin"),
    ("/public/..%2fadmin", Some("admin"), "/admin"),
    ("/public/%2e%2e/admin", Some("admin"), "/admin"),
    ("/public/%2E%2E%2Fadmin", Some("admin"), "/admin"),
    ("/public/.%2e/admin", Some("admin"), "/admin"),
    ("/public/../admin", Some("admin"), "/admin"),
    ("/public/./../admin/x", Some("admin"), "/admin/x"),
    ("/public/..%5Cadmin", Some("admin"), "/admin"),
    ("/public/%2e%2e%5cadmin", Some("admin"), "/admin"),
    ("//admin", Some("admin"), "/admin"),
    ("/public//x", Some("public"), "/public/x"),
    ("/public/../../../admin", Some("admin"), "/admin"),
    ("/public%2F..%2Fadmin", Some("admin"), "/admin"),
    ("/public/x?next=/../admin", Some("public"), "/public/x?next=/../admin"),
    // A raw backslash is a separator too (Envoy's RFC 3986 normaliser turns it into `/`).
    ("/public\\..\\admin", Some("admin"), "/admin"),
    // Envoy resolves `..` before merging slashes (nginx merges first and would pick `/admin`): the
    // path delivered still belongs to the prefix that routed it.
    ("/public//..//admin", Some("public"), "/public/admin"),
];

#[test]
fn no_encoding_routes_by_one_prefix_and_delivers_a_traversal() {
    let public = backend("public", 62);
    let admin = backend("admin", 63);
    let root = backend("root", 64);
    let rewritten = backend("rewritten", 65);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = Vec::new();
    objects.extend(manifests::service("default", "public", &[("http", 80)], &[&public]));
    objects.extend(manifests::service("default", "admin", &[("http", 80)], &[&admin]));
    objects.extend(manifests::service("default", "root", &[("http", 80)], &[&root]));
    objects.extend(manifests::service("default", "rewritten", &[("http", 80)], &[&rewritten]));
    objects.push(manifests::ingress(
        "default",
        "paths",
        json!({}),
        &[(
            "paths.test",
            vec![
                manifests::path("/public", "Prefix", "public", json!(80)),
                manifests::path("/admin", "Prefix", "admin", json!(80)),
                manifests::path("/", "Prefix", "root", json!(80)),
            ],
        )],
    ));
    // A rewrite whose captures are dots: the target cannot reassemble `..`.
    objects.push(manifests::ingress(
        "default",
        "rewrite",
        json!({"nginx.ingress.kubernetes.io/rewrite-target": "/static/$1$2/$3"}),
        &[("rewrite.test", vec![manifests::path("/r/(.)x/(.)y/(.*)", "ImplementationSpecific", "rewritten", json!(80))])],
    ));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();

    let mut failures = Vec::new();
    for &(target, backend, path) in TRAVERSALS {
        let (status, head, body) = raw(gateway.http, "paths.test", target, "");
        let echo = echo_of(&body);
        let got = (echo.as_ref().map(|e| e.backend.as_str()), echo.as_ref().map(|e| e.path.as_str()));
        if got != (backend, Some(path)) {
            failures.push(format!("{target}: expected {backend:?} {path:?}, got status {status} {got:?} ({})", head.lines().next().unwrap_or("")));
        }
        // Whatever happened, no backend ever sees a dot segment or an encoded separator.
        if let Some(echo) = &echo {
            let (upstream_path, _) = echo.path.split_once('?').unwrap_or((&echo.path, ""));
            let lower = upstream_path.to_ascii_lowercase();
            for bad in ["/../", "/./", "%2f", "%5c", "\\", "//", "%2e%2e"] {
                assert!(!lower.contains(bad) && !lower.ends_with("/.."), "{target}: {} received {:?}", echo.backend, echo.path);
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // Dots that come from two captures cannot become a `..` segment upstream.
    for (target, path) in [("/r/ax/by/etc", "/static/ab/etc"), ("/r/.x/.y/etc", "/etc"), ("/r/.x/zy/etc", "/static/.z/etc")] {
        let (status, _, body) = raw(gateway.http, "rewrite.test", target, "");
        let echo = echo_of(&body).unwrap_or_else(|| panic!("{target}: status {status}"));
        assert_eq!((echo.backend.as_str(), echo.path.as_str()), ("rewritten", path), "{target}");
    }
}

#[test]
fn hostile_requests_cost_only_themselves_while_another_host_is_under_load() {
    let calm = backend("calm", 66);
    let target = backend("target", 67);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = Vec::new();
    objects.extend(manifests::service("default", "calm", &[("http", 80)], &[&calm]));
    objects.extend(manifests::service("default", "target", &[("http", 80)], &[&target]));
    objects.push(manifests::ingress("default", "calm", json!({}), &[("calm.test", vec![manifests::path("/", "Prefix", "calm", json!(80))])]));
    // Rewrite bomb within the caps: 16 × `$0`.
    objects.push(manifests::ingress(
        "default",
        "bomb",
        json!({"nginx.ingress.kubernetes.io/rewrite-target": "$0".repeat(16)}),
        &[("bomb.test", vec![manifests::path("/b(.*)", "ImplementationSpecific", "target", json!(80))])],
    ));
    // Rewrite bomb beyond the caps: refused by the control plane (a diagnostic), path not served.
    objects.push(manifests::ingress(
        "default",
        "mega-bomb",
        json!({"nginx.ingress.kubernetes.io/rewrite-target": "$0".repeat(5000)}),
        &[("mega.test", vec![manifests::path("/m(.*)", "ImplementationSpecific", "target", json!(80))])],
    ));
    // Regex flood: 1 200 regex paths on one host (the cap is 1 000 per host).
    let flood: Vec<Value> = (0..1200)
        .map(|i| manifests::path(&format!("/f{i}/(a|b)*c+[0-9]{{0,3}}x"), "ImplementationSpecific", "target", json!(80)))
        .collect();
    objects.push(manifests::ingress("default", "flood", json!({"nginx.ingress.kubernetes.io/use-regex": "true"}), &[("flood.test", flood)]));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let logs = gateway.control_plane_logs();
    assert!(logs.contains("Ingress default/mega-bomb"), "the over-cap rewrite is reported: {logs}");

    // Load on calm.test from two threads until the hostile corpus is done.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let http = gateway.http;
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
                    let (status, head, body) = raw(http, "calm.test", "/steady", "");
                    if status == 200 && echo_of(&body).is_some_and(|e| e.backend == "calm") {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.lock().unwrap().push(format!("{status} {}", head.lines().next().unwrap_or("")));
                    }
                }
            })
        })
        .collect();

    let long_path = format!("/b{}", "x".repeat(4000));
    let deep_path = "/a".repeat(4000);
    let flood_miss = format!("/f9/{}", "ab".repeat(3000));
    let huge_header = format!("x-big: {}\r\n", "h".repeat(1024 * 1024));
    let many_headers: String = (0..200).map(|i| format!("x-h{i}: {}\r\n", "v".repeat(200))).collect();
    for round in 0..10 {
        // (host, target, extra headers, acceptable statuses)
        let corpus: [(&str, &str, &str, &[u16]); 8] = [
            ("bomb.test", &long_path, "", &[414]),
            ("bomb.test", "/b/short", "", &[200]),
            ("mega.test", "/m/x", "", &[404]),
            ("flood.test", &flood_miss, "", &[404]),
            ("flood.test", "/f999/ababcc12x", "", &[200]),
            ("calm.test", &deep_path, "", &[200]),
            ("calm.test", "/", &huge_header, &[431, 400, 413, 0]),
            ("calm.test", "/", &many_headers, &[200, 431]),
        ];
        for (host, target, headers, statuses) in corpus {
            let (status, head, _) = raw(http, host, target, headers);
            assert!(statuses.contains(&status), "round {round}: {host} {}…: {status} {head}", &target[..target.len().min(40)]);
        }
        let (status, _, _) = raw(http, "calm.test", &format!("/{}", "y".repeat(9000)), "");
        assert_eq!(status, 414, "a path over 8 KiB is answered 414 like ingress-nginx");
    }
    // The 1 001st regex path of the flood is not served (cap), the 1 000th is.
    let (status, _, _) = raw(http, "flood.test", "/f1100/cx", "");
    assert_eq!(status, 404);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    let failed = failed.lock().unwrap();
    let ok = ok.load(Ordering::Relaxed);
    println!("calm.test under load: {ok} ok, {} failed", failed.len());
    assert!(ok > 50, "the load loop ran ({ok} requests)");
    assert!(failed.is_empty(), "calm.test failed {} of {} requests: {:?}", failed.len(), ok + failed.len(), &failed[..failed.len().min(5)]);
    assert!(gateway.envoy.logs().lines().all(|l| !l.contains("wasm trap") && !l.contains("Function: proxy_on")), "the VM trapped:\n{}", gateway.envoy.logs());
}

#[test]
fn internal_and_underscore_headers_never_reach_upstreams() {
    let a = backend("a", 68);
    let b = backend("b", 69);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = Vec::new();
    objects.extend(manifests::service("default", "a", &[("http", 80)], &[&a]));
    objects.extend(manifests::service("default", "b", &[("http", 80)], &[&b]));
    objects.push(manifests::ingress("default", "h", json!({}), &[("h.test", vec![manifests::path("/", "Prefix", "a", json!(80))])]));
    objects.push(manifests::ingress("default", "other", json!({}), &[("other.test", vec![manifests::path("/", "Prefix", "b", json!(80))])]));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let (status, _, body) = raw(gateway.http, "h.test", "/", "x-wasm-ingress-cluster: default/b/80\r\nx_forwarded_user: admin\r\nx-fine: 1\r\n");
    let echo = echo_of(&body).unwrap_or_else(|| panic!("status {status}"));
    assert_eq!(echo.backend, "a", "a client cannot pick the cluster");
    assert!(!echo.headers.contains_key("x-wasm-ingress-cluster"));
    assert!(!echo.headers.contains_key("x_forwarded_user"), "underscore headers are dropped: {:?}", echo.headers);
    assert_eq!(echo.headers.get("x-fine").map(String::as_str), Some("1"));
}

#[test]
fn xds_over_mutual_tls_serves_envoy_and_refuses_clients_without_a_certificate() {
    let app = backend("app", 70);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.push(manifests::ingress("default", "app", json!({}), &[("app.test", vec![manifests::path("/", "Prefix", "app", json!(80))])]));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let credentials = xds_credentials().unwrap();
    let options = GatewayOptions { xds_tls: Some(credentials.path().to_path_buf()), ..GatewayOptions::default() };
    let gateway = Gateway::start_with(dir.path(), &options).unwrap();

    // Envoy, with its client certificate, got its configuration over mutual TLS.
    let (status, _, body) = raw(gateway.http, "app.test", "/", "");
    assert_eq!((status, echo_of(&body).map(|e| e.backend)), (200, Some("app".to_string())));

    // A TLS client that trusts the CA but has no certificate is refused in the handshake.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let ca = std::fs::read(credentials.path().join("server/ca.crt")).unwrap();
    let refused = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .http2_prior_knowledge()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let url = format!("https://127.0.0.1:{}/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources", gateway.xds.port());
        client.post(url).header("content-type", "application/grpc").send().await
    });
    assert!(refused.is_err(), "served a client without a certificate: {refused:?}");
    // Plaintext gRPC gets nothing either.
    let mut plain = TcpStream::connect(gateway.xds).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = plain.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(&[0, 0]), "an HTTP/2 SETTINGS frame came back in plaintext");
    assert!(gateway.control_plane_logs().contains("mutual_tls=true"), "{}", gateway.control_plane_logs());
}

/// A tenant cannot capture another tenant's TLS name through a SAN: namespace `evil` serves
/// `evil.test` with a certificate that also names `pay.shop.test`, under namespace `shop`'s
/// `*.shop.test`. Envoy would offer the exact SAN over the wildcard; the control plane refuses the
/// intruding certificate, so `pay.shop.test` gets the shop's certificate and `evil.test` the default.
#[test]
fn a_certificate_cannot_capture_another_namespaces_server_name() {
    use wasm_ingress_tests::gateway::certs::TestCa;
    let shop = backend("shop", 80);
    let evil = backend("evil", 81);
    let (shop_ca, evil_ca) = (TestCa::new("shop-ca").unwrap(), TestCa::new("evil-ca").unwrap());
    let (shop_cert, shop_key) = shop_ca.server_cert(&["*.shop.test"]).unwrap();
    let (evil_cert, evil_key) = evil_ca.server_cert(&["evil.test", "pay.shop.test"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("shop", "shop", &[("http", 80)], &[&shop]);
    objects.extend(manifests::service("evil", "evil", &[("http", 80)], &[&evil]));
    objects.push(manifests::tls_secret("shop", "wildcard", &shop_cert, &shop_key));
    objects.push(manifests::tls_secret("evil", "tls", &evil_cert, &evil_key));
    for (namespace, host, secret) in [("shop", "*.shop.test", "wildcard"), ("evil", "evil.test", "tls")] {
        let mut ingress = manifests::ingress(namespace, namespace, json!({}), &[(host, vec![manifests::path("/", "Prefix", namespace, json!(80))])]);
        ingress["spec"]["tls"] = json!([{"hosts": [host], "secretName": secret}]);
        objects.push(ingress);
    }
    manifests::write(dir.path(), "tls.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let hosts = ["pay.shop.test", "evil.test"];
    let (trusts_shop, trusts_evil) =
        (gateway.client(&hosts, Some(&shop_ca.cert_pem)).unwrap(), gateway.client(&hosts, Some(&evil_ca.cert_pem)).unwrap());
    runtime.block_on(async {
        let response = trusts_shop.get(gateway.https_url("pay.shop.test", "/")).send().await.unwrap();
        assert_eq!(Echo::parse(&response.bytes().await.unwrap()).unwrap().backend, "shop");
        assert!(trusts_evil.get(gateway.https_url("pay.shop.test", "/")).send().await.is_err(), "the intruder's certificate was offered");
        assert!(trusts_evil.get(gateway.https_url("evil.test", "/")).send().await.is_err(), "a refused certificate is offered for nothing");
    });
    // Its host still asked for TLS, so plain HTTP is redirected to HTTPS (ingress-nginx's
    // ssl-redirect, which holds for a broken certificate too), and the refusal is explained.
    let (status, head, body) = raw(gateway.http, "evil.test", "/x", "");
    assert_eq!((status, echo_of(&body).map(|e| e.backend)), (308, None), "{head}");
    assert!(head.to_ascii_lowercase().contains("location: https://evil.test/x"), "{head}");
    let logs = gateway.control_plane_logs();
    assert!(logs.contains("Secret evil/tls: its certificate also names \\\"pay.shop.test\\\"") || logs.contains("Secret evil/tls: its certificate also names \"pay.shop.test\""), "{logs}");
}

/// Which certificate Envoy offers, seen in real TLS handshakes: another namespace's wildcard is
/// not offered for a host served without TLS (the controller's own certificate names it), an
/// ECDSA certificate naming an RSA claimant's host is not offered (a client that can do ECDSA
/// would get it wherever listed), and a client with no or an unknown SNI gets the controller's.
#[test]
fn plain_hosts_and_clients_without_sni_never_get_a_tenants_certificate() {
    use wasm_ingress_tests::gateway::certs::TestCa;
    const RSA_CRT: &str = include_str!("../../control-plane/src/translate/ingress/testdata/rsa.crt");
    const RSA_KEY: &str = include_str!("../../control-plane/src/translate/ingress/testdata/rsa-pkcs1.key");
    let der = |pem: &str| rustls_pemfile::certs(&mut pem.as_bytes()).next().unwrap().unwrap().to_vec();
    let ca = TestCa::new("tenants-ca").unwrap();
    let (shop_cert, shop_key) = ca.server_cert(&["*.shop.test"]).unwrap();
    let (evil_cert, evil_key) = ca.server_cert(&["evil.test", "rsa.example.com"]).unwrap();
    let backends: Vec<EchoBackend> = ["shop", "blog", "victim", "evil"].iter().zip(85..).map(|(name, octet)| backend(name, octet)).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = Vec::new();
    for backend in &backends {
        objects.extend(manifests::service(&backend.name, &backend.name, &[("http", 80)], &[backend]));
    }
    objects.push(manifests::tls_secret("shop", "wildcard", &shop_cert, &shop_key));
    objects.push(manifests::tls_secret("evil", "tls", &evil_cert, &evil_key));
    objects.push(manifests::tls_secret("victim", "rsa", RSA_CRT, RSA_KEY));
    let site = |namespace: &str, host: &str, secret: Option<&str>| {
        let mut ingress = manifests::ingress(namespace, namespace, json!({}), &[(host, vec![manifests::path("/", "Prefix", namespace, json!(80))])]);
        if let Some(secret) = secret {
            ingress["spec"]["tls"] = json!([{"hosts": [host], "secretName": secret}]);
        }
        ingress
    };
    objects.extend([
        site("shop", "pay.shop.test", Some("wildcard")),
        site("blog", "blog.shop.test", None),
        site("victim", "rsa.example.com", Some("rsa")),
        site("evil", "evil.test", Some("tls")),
    ]);
    manifests::write(dir.path(), "tls.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let offered = |sni: Option<&str>, ecdsa: bool| gateway.offered_certificate(sni, ecdsa).unwrap();
    let controller = offered(None, true);
    let tenants = [der(&shop_cert), der(&evil_cert), der(RSA_CRT)];
    assert!(!tenants.contains(&controller), "a client without SNI got a tenant's certificate");
    assert_eq!(offered(Some("unknown.test"), true), controller);
    assert_eq!(offered(Some("pay.shop.test"), true), tenants[0], "the claimant keeps its wildcard");
    assert_eq!(offered(Some("blog.shop.test"), true), controller, "another namespace's plain host got the wildcard");
    for ecdsa in [true, false] {
        assert_eq!(offered(Some("rsa.example.com"), ecdsa), tenants[2], "the RSA claimant's own certificate (ecdsa client: {ecdsa})");
    }
    // The gap docs/security.md names: a client that cannot do ECDSA and sends no SNI gets the
    // first RSA certificate listed when the default one is not RSA.
    assert_eq!(offered(None, false), tenants[2]);
    // The plain host is still served over HTTPS (with the controller's certificate).
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve("blog.shop.test", gateway.https)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let body = runtime.block_on(async { client.get(gateway.https_url("blog.shop.test", "/")).send().await.unwrap().bytes().await.unwrap() });
    assert_eq!(echo_of(&body).map(|e| e.backend), Some("blog".to_string()));
    let logs = gateway.control_plane_logs();
    assert!(logs.contains("Secret evil/tls: its certificate also names"), "{logs}");
}

/// `--default-ssl-certificate` with an RSA key and only RSA certificates besides: a client without
/// SNI (a load balancer's health check, a client that dialled the address) gets the default one,
/// as from ingress-nginx, whether it can do ECDSA or not — the controller's own ECDSA certificate
/// is not listed then (it would be the one an ECDSA-capable client gets).
#[test]
fn clients_without_sni_get_an_rsa_default_certificate() {
    const RSA_CRT: &str = include_str!("../../control-plane/src/translate/ingress/testdata/rsa.crt");
    const RSA_KEY: &str = include_str!("../../control-plane/src/translate/ingress/testdata/rsa-pkcs1.key");
    let der = |pem: &str| rustls_pemfile::certs(&mut pem.as_bytes()).next().unwrap().unwrap().to_vec();
    let app = backend("plain", 93);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "plain", &[("http", 80)], &[&app]);
    objects.push(manifests::tls_secret("ingress", "default-cert", RSA_CRT, RSA_KEY));
    objects.push(manifests::ingress("default", "plain", json!({}), &[("plain.test", vec![manifests::path("/", "Prefix", "plain", json!(80))])]));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let serve_args = ["--default-ssl-certificate", "ingress/default-cert"].map(String::from).to_vec();
    let gateway = Gateway::start_with(dir.path(), &GatewayOptions { serve_args, ..GatewayOptions::default() }).unwrap();
    for ecdsa in [true, false] {
        assert_eq!(gateway.offered_certificate(None, ecdsa).unwrap(), der(RSA_CRT), "no SNI (ecdsa client: {ecdsa})");
        assert_eq!(gateway.offered_certificate(Some("unknown.test"), ecdsa).unwrap(), der(RSA_CRT), "an unknown SNI (ecdsa client: {ecdsa})");
    }
}

/// ingress-nginx's `ssl-protocols` as `serve --tls-min-version` / `--tls-max-version`: with a
/// maximum of 1.2 (its `ssl-protocols: TLSv1.2`) a client that insists on TLS 1.3 is refused in
/// the handshake and one that speaks 1.2 is served; by default both versions are served.
#[test]
fn tls_versions_follow_the_listener_flags() {
    use wasm_ingress_tests::gateway::certs::TestCa;
    let ca = TestCa::new("versions-ca").unwrap();
    let (cert, key) = ca.server_cert(&["tls.test"]).unwrap();
    let app = backend("versions", 89);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "versions", &[("http", 80)], &[&app]);
    objects.push(manifests::tls_secret("default", "tls", &cert, &key));
    let ingress = manifests::ingress("default", "tls", json!({}), &[("tls.test", vec![manifests::path("/", "Prefix", "versions", json!(80))])]);
    objects.push(manifests::with_tls(ingress, "tls.test", "tls"));
    manifests::write(dir.path(), "tls.yaml", &objects).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Whether a client limited to `versions` is served by `gateway`.
    let served = |gateway: &Gateway, versions: (reqwest::tls::Version, reqwest::tls::Version)| {
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).unwrap())
            .resolve("tls.test", gateway.https)
            .min_tls_version(versions.0)
            .max_tls_version(versions.1)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        runtime.block_on(async { client.get(gateway.https_url("tls.test", "/")).send().await.map(|r| r.status().as_u16()).ok() })
    };
    let (v12, v13) = (reqwest::tls::Version::TLS_1_2, reqwest::tls::Version::TLS_1_3);
    let default = Gateway::start(dir.path()).unwrap();
    assert_eq!((served(&default, (v12, v12)), served(&default, (v13, v13))), (Some(200), Some(200)));
    drop(default);
    let serve_args = vec!["--tls-max-version".to_string(), "1.2".to_string()];
    let capped = Gateway::start_with(dir.path(), &GatewayOptions { serve_args, ..GatewayOptions::default() }).unwrap();
    assert_eq!((served(&capped, (v12, v12)), served(&capped, (v13, v13))), (Some(200), None));
}

/// A NACK through real Envoy: the filter file is broken on disk, then a change arrives (an Ingress
/// and its Service deleted). Envoy rejects the new route table; the last accepted one keeps
/// serving — including the deleted Ingress's route, whose cluster the control plane keeps until a
/// table without it is ACKed. The rejection is an error on each Ingress and is listed in `/readyz`;
/// once the filter is repaired, the table sent again (with no change to the Ingresses) is ACKed:
/// the rejection clears and the cluster goes.
#[test]
fn a_rejected_update_is_reported_and_the_last_accepted_configuration_keeps_serving() {
    use wasm_ingress_tests::envoy::http_get;
    use wasm_ingress_tests::gateway::wait_until;
    let (kept, gone) = (backend("kept", 90), backend("gone", 91));
    let dir = tempfile::tempdir().unwrap();
    let wasm_dir = tempfile::tempdir().unwrap();
    let wasm = wasm_dir.path().join("filter.wasm");
    let good_wasm = std::fs::read(wasm_ingress_tests::paths::filter_wasm().unwrap()).unwrap();
    std::fs::write(&wasm, &good_wasm).unwrap();
    let ingress = |name: &str, service: &str| {
        manifests::ingress("default", name, json!({}), &[(&format!("{name}.test"), vec![manifests::path("/", "Prefix", service, json!(80))])])
    };
    let mut objects = manifests::service("default", "kept", &[("http", 80)], &[&kept]);
    objects.push(ingress("keep", "kept"));
    manifests::write(dir.path(), "keep.yaml", &objects).unwrap();
    let mut doomed = manifests::service("default", "gone", &[("http", 80)], &[&gone]);
    doomed.push(ingress("doomed", "gone"));
    manifests::write(dir.path(), "doomed.yaml", &doomed).unwrap();
    let options = GatewayOptions { filter_wasm: Some(wasm.clone()), ..GatewayOptions::default() };
    let gateway = Gateway::start_with(dir.path(), &options).unwrap();
    let backend_of = |host: &str| echo_of(&raw(gateway.http, host, "/", "").2).map(|e| e.backend);
    assert_eq!(backend_of("doomed.test").as_deref(), Some("gone"));
    let readyz = || http_get(gateway.control_plane_admin, "/readyz", Duration::from_secs(2)).unwrap();

    // Break the filter, then delete the doomed Ingress and its Service.
    std::fs::write(&wasm, b"\0asm not really").unwrap();
    std::fs::remove_file(dir.path().join("doomed.yaml")).unwrap();
    wait_until(Duration::from_secs(30), || Ok(readyz().1.contains("type=ecds"))).unwrap_or_else(|_| {
        panic!("no rejection in /readyz: {:?}\n{}", readyz(), gateway.control_plane_logs())
    });
    let (status, body) = readyz();
    assert_eq!(status, 200, "the control plane stays ready: {body}");
    assert!(body.contains("rejected: node=e2e type=ecds"), "{body}");
    // The per-Ingress error is logged when the diagnostics are published again, a moment after
    // `/readyz` lists the rejection.
    let attributed = "Ingress default/keep: Envoy e2e rejected the ecds update";
    wait_until(Duration::from_secs(10), || Ok(gateway.control_plane_logs().contains(attributed)))
        .unwrap_or_else(|_| panic!("no per-Ingress error\n{}", gateway.control_plane_logs()));
    // The last accepted table still routes doomed.test, and its cluster is still there.
    for _ in 0..20 {
        assert_eq!(backend_of("keep.test").as_deref(), Some("kept"));
        assert_eq!(backend_of("doomed.test").as_deref(), Some("gone"), "the removed cluster went before the table that uses it");
    }
    let metrics = http_get(gateway.control_plane_admin, "/metrics", Duration::from_secs(2)).unwrap().1;
    assert!(metrics.contains("xds_rejections 1"), "{metrics}");

    // Repair the filter and change nothing: the control plane sends the rejected table again
    // (1 s, then doubling), Envoy ACKs it, the rejection clears and doomed.test is gone.
    std::fs::write(&wasm, &good_wasm).unwrap();
    wait_until(Duration::from_secs(30), || Ok(!readyz().1.contains("rejected:") && raw(gateway.http, "doomed.test", "/", "").0 == 404))
        .unwrap_or_else(|_| panic!("not recovered: {:?}\n{}", readyz(), gateway.control_plane_logs()));
    assert_eq!(backend_of("keep.test").as_deref(), Some("kept"));
    assert!(gateway.control_plane_logs().contains("sending rejected configuration again"));
    let resolved = "resolved: error: Ingress default/keep: Envoy e2e rejected";
    wait_until(Duration::from_secs(10), || Ok(gateway.control_plane_logs().contains(resolved)))
        .unwrap_or_else(|_| panic!("the error was not resolved\n{}", gateway.control_plane_logs()));

    // A later change is served as usual.
    objects.push(ingress("fresh", "kept"));
    manifests::write(dir.path(), "keep.yaml", &objects).unwrap();
    wait_until(Duration::from_secs(30), || Ok(backend_of("fresh.test").is_some())).unwrap();
}

/// ingress-nginx's `keep-alive-requests` (nginx's `keepalive_requests`): after that many requests
/// on one client connection, the last response says `Connection: close` and the connection ends.
/// `--keep-alive-requests` (nginx's `keepalive_requests`) and `--connection-idle-timeout` (nginx's
/// `keepalive_timeout`, ingress-nginx's `keep-alive`): the idle clock runs from the accept, so a
/// connection that never sends a byte, or never starts its TLS handshake, is closed too (nginx's
/// `client_header_timeout` does that), not held for Envoy's edge-guide hour.
#[test]
fn client_connections_carry_keep_alive_requests_and_close_when_idle() {
    let serve_args = ["--keep-alive-requests", "3", "--connection-idle-timeout", "2s"].map(String::from).to_vec();
    let (_dir, _app, gateway) = one_app("keepalive", 90, &GatewayOptions { serve_args, ..GatewayOptions::default() });
    let mut stream = TcpStream::connect(gateway.http).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut closes = Vec::new();
    for _ in 0..4 {
        if stream.write_all(b"GET / HTTP/1.1\r\nHost: keepalive.test\r\n\r\n").is_err() {
            break;
        }
        let Some(response) = read_kept_response(&mut stream) else { break };
        assert_eq!(response.status, 200, "{}", response.head);
        closes.push(response.head.lines().any(|l| l.trim() == "connection: close"));
    }
    assert_eq!(closes, [false, false, true], "three requests, the third one's response closes the connection");
    check_silent_connections_close(&gateway);
}

/// A gateway serving one Ingress: `NAME.test/` to an echo backend named NAME at 127.0.0.OCTET
/// (the folder and the backend must outlive the gateway: bind them first, so they drop last).
fn one_app(name: &str, octet: u8, options: &GatewayOptions) -> (tempfile::TempDir, EchoBackend, Gateway) {
    let app = backend(name, octet);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", name, &[("http", 80)], &[&app]);
    let host = format!("{name}.test");
    objects.push(manifests::ingress("default", name, json!({}), &[(host.as_str(), vec![manifests::path("/", "Prefix", name, json!(80))])]));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start_with(dir.path(), options).unwrap();
    (dir, app, gateway)
}

fn check_silent_connections_close(gateway: &Gateway) {
    for (listener, address) in [("HTTP", gateway.http), ("HTTPS", gateway.https)] {
        let mut silent = TcpStream::connect(address).unwrap();
        silent.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let opened = Instant::now();
        let read = silent.read(&mut [0u8; 64]);
        let waited = opened.elapsed();
        assert!(matches!(read, Ok(0)) || read.is_err(), "{listener}: {read:?}");
        assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(9), "{listener}: a silent connection closed after {waited:?}");
    }
}

/// A rollout stops an Envoy pod: Kubernetes sends `wasm-ingress drain-on-stop` (a container of
/// Envoy's pod) SIGTERM while Envoy's `preStop` sleep keeps it serving. From then on Envoy still
/// answers, but every response tells the client to close its keep-alive connection, so clients
/// move to other pods before Envoy's own SIGTERM closes it (nginx closes keep-alive connections
/// as it shuts down gracefully).
#[test]
fn drain_on_stop_makes_envoy_close_keep_alive_connections_while_it_still_serves() {
    let (_dir, _app, gateway) = one_app("draining", 91, &GatewayOptions::default());
    let request = b"GET / HTTP/1.1\r\nHost: draining.test\r\n\r\n";
    let closes = |response: &wasm_ingress_tests::envoy::KeptResponse| response.head.lines().any(|l| l.trim() == "connection: close");
    let mut kept = TcpStream::connect(gateway.http).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    kept.write_all(request).unwrap();
    let before = read_kept_response(&mut kept).unwrap();
    assert!(before.status == 200 && !closes(&before), "{}", before.head);

    let binary = wasm_ingress_tests::paths::control_plane().unwrap();
    let mut drainer = std::process::Command::new(binary)
        .args(["drain-on-stop", "--envoy-admin", &gateway.envoy.admin_addr().to_string()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its handlers are in place once it says it waits.
    let mut stderr = std::io::BufReader::new(drainer.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.contains("waiting for SIGTERM"), "{line}");
    // The keep-alive connection is not told anything until the pod stops.
    kept.write_all(request).unwrap();
    let waiting = read_kept_response(&mut kept).unwrap();
    assert!(waiting.status == 200 && !closes(&waiting), "{}", waiting.head);

    let killed = std::process::Command::new("kill").args(["-TERM", &drainer.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = drainer.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "drain-on-stop did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(status.success(), "{status:?}: {rest}");

    // The kept connection's next response closes it; a new connection is still served, and closed.
    kept.write_all(request).unwrap();
    let draining = read_kept_response(&mut kept).unwrap();
    assert!(draining.status == 200 && closes(&draining), "{}", draining.head);
    assert!(matches!(kept.read(&mut [0u8; 16]), Ok(0) | Err(_)), "the connection is closed after that response");
    let mut fresh = TcpStream::connect(gateway.http).unwrap();
    fresh.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    fresh.write_all(request).unwrap();
    let served = read_kept_response(&mut fresh).unwrap();
    assert!(served.status == 200 && closes(&served), "{}", served.head);
    assert_eq!(Echo::parse(served.body.as_bytes()).unwrap().backend, "draining");
}

/// `http://host:443/`: nginx answers plain HTTP on its HTTPS port 400 with its page "The plain
/// HTTP request was sent to HTTPS port" and closes the connection; TLS on that port is served as
/// before (with a silent connection closed after the idle timeout, as the test above checks).
#[test]
fn plain_http_to_the_https_port_gets_nginx_s_400_and_the_connection_closes() {
    let (_dir, _app, gateway) = one_app("plain", 92, &GatewayOptions::default());
    for request in ["GET / HTTP/1.1\r\nHost: plain.test\r\n\r\n", "POST /x?y=1 HTTP/1.1\r\nHost: other.test\r\nContent-Length: 0\r\n\r\n"] {
        let mut stream = TcpStream::connect(gateway.https).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let response = read_kept_response(&mut stream).unwrap_or_else(|| panic!("no answer to {request:?}"));
        assert_eq!(response.status, 400, "{request:?}: {}", response.head);
        assert_eq!(response.body, wasm_ingress_filter::decision::PLAIN_HTTP_TO_HTTPS_BODY, "{request:?}");
        assert!(response.head.contains("content-type: text/html"), "{}", response.head);
        assert!(!response.head.contains("server:"), "no Server header, as ingress-nginx: {}", response.head);
        assert!(matches!(stream.read(&mut [0u8; 16]), Ok(0) | Err(_)), "{request:?}: the connection is closed after the answer");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .resolve("plain.test", SocketAddr::from(([127, 0, 0, 1], 0)))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        client.get(gateway.https_url("plain.test", "/")).send().await.unwrap().status().as_u16()
    });
    assert_eq!(status, 200, "TLS on the same port is served");
}
