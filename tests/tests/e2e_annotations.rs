//! ingress-nginx annotations, first half, through the whole product (control plane + real Envoy +
//! the built filter), with raw HTTP/1.1 so that what a client sees is asserted byte for byte. The
//! cases come from ingress-nginx's e2e tests (`test/e2e/annotations/{approot,redirect,
//! fromtowwwredirect,forcesslredirect,preservetrailingslash,proxy,serveralias}.go`, `test/e2e/settings/tls.go`):
//! - HTTPS redirects: `ssl-redirect` on by default for TLS hosts (308, no port, one trailing `/`
//!   dropped), `force-ssl-redirect`, `preserve-trailing-slash`, the ACME exemption, HSTS on HTTPS
//!   responses only (replacing an upstream's own);
//! - `app-root`, `permanent-redirect` (+code), `temporal-redirect`, `from-to-www-redirect`,
//!   `server-alias` (its host's routes and redirects under more names, over HTTPS too);
//! - `proxy-body-size`: 413 before the upstream sees the body, chunked too; `0` unlimited;
//! - `proxy-read-timeout`: 504 after upstream silence, yet a slow stream longer than the timeout
//!   lives on (nginx times each read, not the whole response);
//! - `configuration-snippet` header statements: response headers set, appended and removed,
//!   request headers replaced, a snippet's HSTS winning; any other statement keeps it out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use wasm_ingress_tests::backend::{Echo, EchoBackend};
use wasm_ingress_tests::gateway::certs::TestCa;
use wasm_ingress_tests::gateway::{manifests, wait_until, Gateway, GatewayOptions};

const NGINX: &str = "nginx.ingress.kubernetes.io/";

/// A raw response: status, header lines (lower-cased names), body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn echo(&self) -> Option<Echo> {
        Echo::parse(&self.body).ok()
    }
}

/// Send `head` (request line and headers, without the blank line) plus `body` on a fresh
/// connection with `Connection: close`, and read the whole answer.
fn exchange(stream: &mut TcpStream, head: &str, body: &[u8]) -> Response {
    let request = format!("{head}\r\nConnection: close\r\n\r\n");
    // Envoy may answer (413) and close before a large body is written: that is an answer too.
    let _ = stream.write_all(request.as_bytes()).and_then(|()| stream.write_all(body));
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let mut body = raw.get(split + 4..).unwrap_or_default().to_vec();
    if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    Response { status, headers, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = raw.get(start + size + 2..).unwrap_or_default();
    }
    out
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

fn get(addr: SocketAddr, host: &str, target: &str, extra: &str) -> Response {
    exchange(&mut connect(addr), &format!("GET {target} HTTP/1.1\r\nHost: {host}{extra}"), b"")
}

fn post(addr: SocketAddr, host: &str, target: &str, body: &[u8]) -> Response {
    let head = format!("POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}", body.len());
    exchange(&mut connect(addr), &head, body)
}

fn post_chunked(addr: SocketAddr, host: &str, body: &[u8]) -> Response {
    let mut encoded = Vec::new();
    for chunk in body.chunks(64 * 1024) {
        encoded.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        encoded.extend_from_slice(chunk);
        encoded.extend_from_slice(b"\r\n");
    }
    encoded.extend_from_slice(b"0\r\n\r\n");
    let head = format!("POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked");
    exchange(&mut connect(addr), &head, &encoded)
}

/// GET over HTTPS (SNI `host`, trusting only `ca_pem`): status, every Strict-Transport-Security
/// value, and the echo.
fn get_tls(gateway: &Gateway, host: &str, ca_pem: &str, path: &str) -> (u16, Vec<String>, Option<Echo>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = gateway.client(&[host], Some(ca_pem)).unwrap();
        let response = client.get(gateway.https_url(host, path)).send().await.unwrap();
        let status = response.status().as_u16();
        let hsts = response
            .headers()
            .get_all("strict-transport-security")
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .collect();
        (status, hsts, Echo::parse(&response.bytes().await.unwrap()).ok())
    })
}

fn backend(name: &str, last_octet: u8) -> EchoBackend {
    EchoBackend::spawn(name, Ipv4Addr::new(127, 0, 0, last_octet)).unwrap()
}

fn annotated(name: &str, annotations: &[(&str, &str)], host: &str, paths: &[&str]) -> Value {
    let annotations: serde_json::Map<String, Value> =
        annotations.iter().map(|(k, v)| (format!("{NGINX}{k}"), json!(v))).collect();
    let paths = paths.iter().map(|p| manifests::path(p, "Prefix", "app", json!(80))).collect();
    manifests::ingress("default", name, Value::Object(annotations), &[(host, paths)])
}

#[test]
fn redirects_and_hsts_behave_like_ingress_nginx() {
    let app = backend("app", 71);
    let ca = TestCa::new("redirect-ca").unwrap();
    let (cert, key) = ca.server_cert(&["redirect.test"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.push(manifests::tls_secret("default", "redirect-tls", &cert, &key));
    let (site_cert, site_key) = ca.server_cert(&["site.test", "alias.test"]).unwrap();
    objects.push(manifests::tls_secret("default", "site-tls", &site_cert, &site_key));
    let mut aliased = annotated("aliased", &[("server-alias", "alias.test, *.alias.test")], "site.test", &["/"]);
    aliased["spec"]["tls"] = json!([{"hosts": ["site.test", "alias.test"], "secretName": "site-tls"}]);
    objects.push(aliased);
    // A TLS entry that lists one of its Ingress's two hosts: ingress-nginx gives the other the
    // default certificate, so it is redirected too.
    let paths = || vec![manifests::path("/", "Prefix", "app", json!(80))];
    let partly = manifests::ingress("default", "partly-listed", json!({}), &[("listed.test", paths()), ("unlisted.test", paths())]);
    objects.push(manifests::with_tls(partly, "listed.test", "redirect-tls"));
    // A TLS host whose Ingress has no `/` path: ingress-nginx's implicit `/` location, with that
    // Ingress's annotations, redirects the other paths to HTTPS too (then 404 there).
    let (partial_cert, partial_key) = ca.server_cert(&["partial.test"]).unwrap();
    objects.push(manifests::tls_secret("default", "partial-tls", &partial_cert, &partial_key));
    // Hosts whose every answer is the proxy's own: a redirect, a refused address, an auth service
    // that cannot be reached.
    let answering = ["moved.test", "closed.test", "locked.test"];
    let (answers_cert, answers_key) = ca.server_cert(&answering).unwrap();
    objects.push(manifests::tls_secret("default", "answers-tls", &answers_cert, &answers_key));
    for (name, annotation, value) in [
        ("moved", "permanent-redirect", "https://elsewhere.example.com"),
        ("closed", "whitelist-source-range", "10.0.0.0/8"),
        ("locked", "auth-url", "http://127.0.0.1:1/auth"),
    ] {
        let host = format!("{name}.test");
        objects.push(manifests::with_tls(annotated(name, &[(annotation, value)], &host, &["/"]), &host, "answers-tls"));
    }
    objects.extend([
        manifests::with_tls(annotated("partial", &[], "partial.test", &["/app"]), "partial.test", "partial-tls"),
        manifests::with_tls(annotated("tls", &[], "redirect.test", &["/", "/.well-known/acme-challenge"]), "redirect.test", "redirect-tls"),
        manifests::with_tls(annotated("missing-secret", &[], "nosecret.test", &["/"]), "nosecret.test", "does-not-exist"),
        annotated("forced", &[("force-ssl-redirect", "true")], "forcesslredirect.bar.com", &["/"]),
        annotated("forced-slash", &[("force-ssl-redirect", "true"), ("preserve-trailing-slash", "true")], "slash.bar.com", &["/"]),
        annotated("port-in-redirect", &[("force-ssl-redirect", "true"), ("use-port-in-redirects", "true")], "portinredirect.test", &["/"]),
        annotated("approot", &[("app-root", "/foo")], "approot.bar.com", &["/"]),
        annotated("permanent", &[("permanent-redirect", "http://redirect.example.com")], "permanent.test", &["/"]),
        annotated("permanent-code", &[("permanent-redirect", "http://redirect.example.com"), ("permanent-redirect-code", "308")], "permanent-code.test", &["/"]),
        annotated("temporal", &[("temporal-redirect", "https://maintenance.example.com"), ("permanent-redirect", "http://ignored.example.com")], "temporal.test", &["/"]),
        annotated("www", &[("from-to-www-redirect", "true")], "fromtowwwredirect.bar.com", &["/"]),
        annotated("plain", &[], "plain.test", &["/"]),
        annotated("vhost", &[("upstream-vhost", "internal.example.com")], "vhost.test", &["/"]),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let http = gateway.http;
    let port = http.port();

    // (host, target, status, Location)
    let redirects: &[(&str, &str, u16, String)] = &[
        ("redirect.test", "/", 308, "https://redirect.test".into()),
        ("redirect.test:8080", "/a/b/?q=1", 308, "https://redirect.test/a/b/?q=1".into()),
        ("redirect.test", "/a/b/", 308, "https://redirect.test/a/b".into()),
        ("nosecret.test", "/x", 308, "https://nosecret.test/x".into()),
        ("listed.test", "/x", 308, "https://listed.test/x".into()),
        ("unlisted.test", "/x", 308, "https://unlisted.test/x".into()),
        ("forcesslredirect.bar.com", "/", 308, "https://forcesslredirect.bar.com".into()),
        ("slash.bar.com", "/", 308, "https://slash.bar.com/".into()),
        // use-port-in-redirects: ingress-nginx's HTTPS port, 443, written out.
        ("portinredirect.test:8080", "/a/?q=1", 308, "https://portinredirect.test:443/a/?q=1".into()),
        ("portinredirect.test", "/a/", 308, "https://portinredirect.test:443/a".into()),
        ("approot.bar.com", "/", 302, "http://approot.bar.com/foo".into()),
        ("approot.bar.com", "/?a=b", 302, "http://approot.bar.com/foo".into()),
        ("permanent.test", "/any/path?x=1", 301, "http://redirect.example.com".into()),
        ("permanent-code.test", "/", 308, "http://redirect.example.com".into()),
        ("temporal.test", "/", 302, "https://maintenance.example.com".into()),
        ("www.fromtowwwredirect.bar.com", "/foo", 308, format!("http://fromtowwwredirect.bar.com:{port}/foo")),
        // server-alias: the alias names are the host's, its ssl-redirect included.
        ("alias.test", "/a?x=1", 308, "https://alias.test/a?x=1".into()),
        ("www.alias.test", "/", 308, "https://www.alias.test".into()),
        ("partial.test", "/elsewhere?x=1", 308, "https://partial.test/elsewhere?x=1".into()),
        ("partial.test", "/app/x", 308, "https://partial.test/app/x".into()),
    ];
    for (host, target, status, location) in redirects {
        let response = get(http, host, target, "");
        assert_eq!((response.status, response.header("location")), (*status, Some(location.as_str())), "{host}{target}");
        assert!(response.echo().is_none(), "{host}{target} reached the backend");
        // nginx's page for the status, as nginx sends with its redirects.
        assert_eq!(String::from_utf8_lossy(&response.body), wasm_ingress_filter::decision::status_body(*status), "{host}{target}");
        assert_eq!(response.header("content-type"), Some("text/html"), "{host}{target}");
        assert_eq!(response.header("strict-transport-security"), None, "no HSTS over plain HTTP");
    }
    // Served, not redirected: ACME challenges over HTTP, app-root's other paths, plain hosts, and a
    // client that tries to pick a route policy itself.
    for (host, target) in [
        ("redirect.test", "/.well-known/acme-challenge/token"),
        ("approot.bar.com", "/foo"),
        ("plain.test", "/"),
        ("fromtowwwredirect.bar.com", "/foo"),
    ] {
        let forged = "\r\nx-wasm-ingress-policy: p0000000000000000\r\nProxy: http://evil\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Host: evil.test\r\nX-Forwarded-For: 1.2.3.4\r\nX-Original-Forwarded-Host: forged.test";
        let response = get(http, host, target, forged);
        assert_eq!(response.status, 200, "{host}{target}");
        assert_eq!(response.header("server"), None, "no Server header, the backend's neither (ingress-nginx's more_clear_headers Server)");
        let echo = response.echo().unwrap();
        assert_eq!(echo.backend, "app", "{host}{target}");
        // What ingress-nginx's template sends upstream; the client's copies are replaced or dropped.
        let header = |name: &str| echo.headers.get(name).map(String::as_str);
        assert_eq!(header("x-wasm-ingress-policy"), None);
        assert_eq!(header("proxy"), None, "httpoxy");
        assert_eq!(header("x-real-ip"), Some("127.0.0.1"));
        // settings/forwarded_headers.go "should not trust X-Forwarded headers when setting is
        // false": X-Forwarded-For is the client, the client's own kept as X-Original-Forwarded-For.
        assert_eq!((header("x-forwarded-for"), header("x-original-forwarded-for")), (Some("127.0.0.1"), Some("1.2.3.4")));
        assert_eq!((header("x-forwarded-proto"), header("x-forwarded-scheme"), header("x-scheme")), (Some("http"), Some("http"), Some("http")));
        assert_eq!(header("x-forwarded-port"), Some(port.to_string().as_str()));
        assert_eq!(header("x-forwarded-host"), Some(host));
        assert_eq!(header("x-original-forwarded-host"), Some("evil.test"), "the client's X-Forwarded-Host, as $http_x_forwarded_host");
        assert_eq!(header("x-envoy-external-address"), None, "Envoy's own header, which ingress-nginx never sends");
    }
    let plain = get(http, "plain.test", "/", "");
    assert_eq!(plain.echo().unwrap().headers.get("x-original-forwarded-host"), None, "none sent: none passed on");
    assert_eq!(get(http, "nowhere.test", "/", "").header("server"), None, "Envoy's own answers carry none either");
    // ingress-nginx's default server: cloud load balancers' health checks by address on port 80.
    assert_eq!(get(http, "10.1.2.3", "/healthz", "").status, 200);
    assert_eq!(get(http, "10.1.2.3", "/nginx_status", "").status, 403);
    assert_eq!(get(http, "plain.test", "/healthz", "").echo().map(|e| e.backend), Some("app".to_string()), "a named host's own paths");
    // nginx refuses TRACE on every server before routing (405), so no backend can echo it.
    for host in ["plain.test", "10.1.2.3"] {
        let trace = exchange(&mut connect(http), &format!("TRACE / HTTP/1.1\r\nHost: {host}\r\nCookie: session=secret"), b"");
        assert_eq!((trace.status, trace.echo().is_none()), (405, true), "TRACE on {host}");
    }
    // HTTP/1.0 is served (Envoy answers 426 unless told), with and without a Host header.
    let old = exchange(&mut connect(http), "GET / HTTP/1.0\r\nHost: plain.test", b"");
    assert_eq!((old.status, old.echo().map(|e| e.backend)), (200, Some("app".to_string())));
    let hostless = exchange(&mut connect(http), "GET / HTTP/1.0", b"");
    assert_eq!(hostless.status, 404, "no Host: the default server, as nginx");
    assert_eq!(get(http, "not-an-alias.test", "/", "").status, 404, "only the listed aliases");
    let echo = get(http, "vhost.test", "/", "").echo().unwrap();
    assert_eq!((echo.host.as_str(), echo.headers.get("x-forwarded-host").map(String::as_str)), ("internal.example.com", Some("vhost.test")));
    // Over HTTPS: served, with exactly one Strict-Transport-Security header.
    let (status, hsts, echo) = get_tls(&gateway, "redirect.test", &ca.cert_pem, "/x");
    assert_eq!((status, echo.map(|e| e.backend)), (200, Some("app".to_string())));
    assert_eq!(hsts, vec!["max-age=31536000; includeSubDomains".to_string()]);
    // The alias over HTTPS, with the certificate its TLS entry names.
    let hsts = vec!["max-age=31536000; includeSubDomains".to_string()];
    let (status, partial_hsts, echo) = get_tls(&gateway, "partial.test", &ca.cert_pem, "/elsewhere");
    assert_eq!((status, echo.is_none()), (404, true), "over HTTPS the unmatched path is the host's 404");
    // HSTS on the proxy's own answers over HTTPS too: ingress-nginx sets it in every location's
    // header filter, which every answer passes, errors and redirects included.
    assert_eq!(partial_hsts, hsts, "the 404");
    for (host, status) in [("moved.test", 301), ("closed.test", 403), ("locked.test", 500)] {
        let (got, answer_hsts, echo) = get_tls(&gateway, host, &ca.cert_pem, "/x");
        assert_eq!((got, echo.is_none()), (status, true), "{host}");
        assert_eq!(answer_hsts, hsts, "{host}: the {status} over HTTPS");
    }
    let (status, _, echo) = get_tls(&gateway, "alias.test", &ca.cert_pem, "/x");
    let echo = echo.unwrap();
    assert_eq!((status, echo.backend.as_str()), (200, "app"));
    assert!(echo.host.starts_with("alias.test"), "{}", echo.host);
}

#[test]
fn proxy_body_size_answers_413_before_the_upstream_sees_the_body() {
    let app = backend("app", 72);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([
        annotated("default", &[], "default-size.test", &["/"]),
        annotated("eight", &[("proxy-body-size", "8m")], "eight.test", &["/"]),
        annotated("unlimited", &[("proxy-body-size", "0")], "unlimited.test", &["/"]),
        annotated("small", &[("proxy-body-size", "1k")], "small.test", &["/"]),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let http = gateway.http;
    let kib = |n: usize| vec![b'x'; n * 1024];

    // (host, body, status): the default is ingress-nginx's 1m.
    let cases: &[(&str, Vec<u8>, u16)] = &[
        ("default-size.test", kib(1000), 200),
        ("default-size.test", kib(1025), 413),
        ("eight.test", kib(4096), 200),
        ("eight.test", kib(8193), 413),
        ("unlimited.test", kib(12 * 1024), 200),
        ("small.test", kib(1), 200),
        ("small.test", kib(2), 413),
    ];
    for (host, body, status) in cases {
        let response = post(http, host, "/upload", body);
        assert_eq!(response.status, *status, "{host} with {} bytes", body.len());
        match response.echo() {
            Some(echo) => assert_eq!((*status, echo.body_bytes), (200, body.len()), "{host}"),
            None => assert_eq!(*status, 413, "{host}: no echo for a served request"),
        }
        if *status == 413 {
            // nginx's page for it, as text/html (Envoy's own would be `Payload Too Large`).
            let page = wasm_ingress_filter::decision::status_body(413);
            assert_eq!((String::from_utf8_lossy(&response.body).as_ref(), response.header("content-type")), (page, Some("text/html")), "{host}");
        }
    }
    // Chunked bodies are counted as they arrive.
    assert_eq!(post_chunked(http, "default-size.test", &kib(2048)).status, 413);
    let response = post_chunked(http, "default-size.test", &kib(512));
    assert_eq!((response.status, response.echo().map(|e| e.body_bytes)), (200, Some(512 * 1024)));

    // No Ingress here has TLS: as ingress-nginx, HTTPS is still served, with the controller's
    // certificate (a TLS entry whose Secret is missing is redirected to a listener that exists).
    assert!(!gateway.offered_certificate(Some("default-size.test"), true).unwrap().is_empty());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .danger_accept_invalid_certs(true)
            .resolve("default-size.test", SocketAddr::from(([127, 0, 0, 1], 0)))
            .build()
            .unwrap();
        client.get(gateway.https_url("default-size.test", "/")).send().await.unwrap().status().as_u16()
    });
    assert_eq!(status, 200);
}

/// ingress-nginx's log.go: `enable-access-log: "false"` is nginx's `access_log off` for the
/// Ingress's locations; other Ingresses, and `"true"`, keep theirs. Its default server logs
/// nothing unless `enable-access-log-for-default-backend` (`serve --enable-access-log-for-default-backend`).
#[test]
fn enable_access_log_false_leaves_the_ingress_out_of_the_access_log() {
    let app = backend("app", 73);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([
        annotated("quiet", &[("enable-access-log", "false")], "quiet.test", &["/"]),
        annotated("loud", &[("enable-access-log", "true")], "loud.test", &["/"]),
        annotated("plain", &[], "plain.test", &["/"]),
        annotated("quiet-denied", &[("enable-access-log", "false"), ("denylist-source-range", "127.0.0.0/8")], "quiet-denied.test", &["/"]),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    for host in ["quiet.test", "loud.test", "plain.test"] {
        let response = get(gateway.http, host, &format!("/from-{host}"), "");
        assert_eq!((response.status, response.echo().map(|e| e.backend)), (200, Some("app".to_string())), "{host}");
    }
    // Refused by Envoy (the source range) on a route that is not logged: not logged either.
    assert_eq!(get(gateway.http, "quiet-denied.test", "/from-quiet-denied.test", "").status, 403);
    // The default server: a host no Ingress names, and its /healthz.
    assert_eq!(get(gateway.http, "nobody.test", "/from-nobody", "").status, 404);
    assert_eq!(get(gateway.http, "nobody.test", "/healthz", "").status, 200);
    // The filter's mark is a pseudo-header: a client that sends it is refused, not left out.
    assert_eq!(get(gateway.http, "plain.test", "/forged", "\r\n:wasm-ingress-unlogged: 1").status, 400);
    // A request after the quiet one, on a logged host: once its line is there, the quiet one's
    // would be too (Envoy writes lines in order).
    assert_eq!(get(gateway.http, "plain.test", "/last", "").status, 200);
    let logged = |path: &str| gateway.envoy.logs().lines().any(|line| line.contains(path));
    wait_until(Duration::from_secs(10), || Ok(logged(" /last "))).expect("no access log line for /last");
    assert!(logged(" /from-loud.test ") && logged(" /from-plain.test "), "{}", gateway.envoy.logs());
    assert!(!logged("/from-quiet.test"), "enable-access-log: \"false\" was logged:\n{}", gateway.envoy.logs());
    assert!(!logged("/from-quiet-denied.test"), "a refused request of a quiet route was logged:\n{}", gateway.envoy.logs());
    assert!(!logged("/from-nobody") && !logged(" /healthz "), "the default server was logged:\n{}", gateway.envoy.logs());
    drop(gateway);

    let serve_args = vec!["--enable-access-log-for-default-backend".to_string()];
    let gateway = Gateway::start_with(dir.path(), &GatewayOptions { serve_args, ..Default::default() }).unwrap();
    assert_eq!(get(gateway.http, "nobody.test", "/from-nobody", "").status, 404);
    assert_eq!(get(gateway.http, "nobody.test", "/healthz", "").status, 200);
    assert_eq!(get(gateway.http, "plain.test", "/last", "").status, 200);
    let logged = |path: &str| gateway.envoy.logs().lines().any(|line| line.contains(path));
    wait_until(Duration::from_secs(10), || Ok(logged(" /last "))).expect("no access log line for /last");
    assert!(logged(" /from-nobody "), "--enable-access-log-for-default-backend: the default server's 404 was not logged:\n{}", gateway.envoy.logs());
    assert!(!logged(" /healthz "), "the default server's /healthz is never logged:\n{}", gateway.envoy.logs());
}

/// Envoy's access-log lines (its stdout) among its logs, once `expected` of them are there.
fn access_log_lines(gateway: &Gateway, expected: usize, is_line: impl Fn(&str) -> bool) -> Vec<String> {
    let lines = || gateway.envoy.logs().lines().filter(|l| is_line(l)).map(str::to_string).collect::<Vec<_>>();
    wait_until(Duration::from_secs(10), || Ok(lines().len() >= expected)).unwrap_or_else(|_| panic!("fewer than {expected} access-log lines:\n{}", gateway.envoy.logs()));
    lines()
}

#[test]
fn the_access_log_is_ingress_nginx_s_upstreaminfo_line() {
    let app = backend("app", 74);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    let htpasswd = base64::engine::general_purpose::STANDARD.encode("alice:{PLAIN}pw\n");
    objects.extend([
        annotated("plain", &[], "plain.test", &["/"]),
        annotated("staff", &[("auth-type", "basic"), ("auth-secret", "users")], "staff.test", &["/"]),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "users", "namespace": "default"}, "data": {"auth": htpasswd}}),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    // The default server's 404 is logged only with this (ingress-nginx's
    // `enable-access-log-for-default-backend`).
    let serve_args = vec!["--enable-access-log-for-default-backend".to_string()];
    let gateway = Gateway::start_with(dir.path(), &GatewayOptions { serve_args, ..Default::default() }).unwrap();
    let extra = "\r\nUser-Agent: probe/1.0 (x)\r\nReferer: https://ref.example/start\r\nX-Request-ID: log-probe-1";
    assert_eq!(get(gateway.http, "plain.test", "/a/b?x=1", extra).status, 200);
    let alice = format!("\r\nAuthorization: Basic {}", base64::engine::general_purpose::STANDARD.encode("alice:pw"));
    assert_eq!(get(gateway.http, "staff.test", "/in", &alice).status, 200);
    assert_eq!(get(gateway.http, "nobody.test", "/nothing", "").status, 404);

    // fluent-bit's parser for ingress-nginx's line (its `k8s-nginx-ingress`), fields named.
    let upstreaminfo = regex::Regex::new(concat!(
        r#"^(?P<addr>\S+) - (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>\S+)" (?P<status>\d{3}) (?P<size>\d+) "#,
        r#""(?P<referer>[^"]*)" "(?P<agent>[^"]*)" (?P<request_length>\d+) (?P<request_time>[0-9.]+) \[(?P<upstream>[^\]]*)\] \[(?P<alternative>[^\]]*)\] "#,
        r#"(?P<upstream_addr>\S+) (?P<upstream_length>\S+) (?P<upstream_time>\S+) (?P<upstream_status>\S+) (?P<request_id>\S+)$"#,
    ))
    .unwrap();
    let lines = access_log_lines(&gateway, 3, |line| upstreaminfo.is_match(line));
    let field = |path: &str, name: &str| {
        let line = lines.iter().find(|l| upstreaminfo.captures(l).is_some_and(|c| &c["path"] == path)).unwrap_or_else(|| panic!("no line for {path}: {lines:#?}"));
        upstreaminfo.captures(line).unwrap()[name].to_string()
    };
    let time = regex::Regex::new(r"^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}$").unwrap();
    assert!(time.is_match(&field("/a/b?x=1", "time")), "$time_local: {}", field("/a/b?x=1", "time"));
    let proxied = [
        ("addr", "127.0.0.1".to_string()),
        ("user", "-".to_string()),
        ("method", "GET".to_string()),
        ("protocol", "HTTP/1.1".to_string()),
        ("status", "200".to_string()),
        ("referer", "https://ref.example/start".to_string()),
        ("agent", "probe/1.0 (x)".to_string()),
        ("upstream", "default/app/80".to_string()),
        ("alternative", String::new()),
        ("upstream_addr", app.addr.to_string()),
        ("upstream_status", "200".to_string()),
        ("request_id", "log-probe-1".to_string()),
    ];
    for (name, value) in proxied {
        assert_eq!(field("/a/b?x=1", name), value, "{name}");
    }
    let seconds: f64 = field("/a/b?x=1", "request_time").parse().unwrap();
    let upstream_seconds: f64 = field("/a/b?x=1", "upstream_time").parse().unwrap();
    assert!(seconds < 5.0 && upstream_seconds <= seconds, "$request_time {seconds}, $upstream_response_time {upstream_seconds}: seconds, as nginx");
    assert!(field("/a/b?x=1", "upstream_length").parse::<u64>().unwrap() > 0);
    assert!(field("/a/b?x=1", "request_length").parse::<u64>().unwrap() > 100, "request line and headers");
    // Basic auth's user, as nginx's $remote_user.
    assert_eq!(field("/in", "user"), "alice");
    // Envoy's own 404: no upstream host or time; the status is the answer's (nginx's default
    // backend answers it there, so nginx writes its 404 too).
    for (name, value) in [("upstream_addr", "-"), ("upstream_time", "-"), ("status", "404"), ("upstream_status", "404"), ("upstream", "-")] {
        assert_eq!(field("/nothing", name), value, "{name}");
    }
}

#[test]
fn log_format_escape_json_writes_one_json_object_per_request() {
    let app = backend("app", 75);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.push(annotated("plain", &[], "plain.test", &["/"]));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    // ingress-nginx's documented JSON example, shortened: quoted and bare variables.
    let format = r#"{"time": "$time_iso8601", "remote_addr": "$remote_addr", "request_id": "$req_id", "bytes_sent": $bytes_sent, "request_time": $request_time, "status": $status, "vhost": "$host", "path": "$uri", "request_query": "$args", "method": "$request_method", "http_user_agent": "$http_user_agent", "upstream": "[$proxy_upstream_name] 100%", "ingress": "$namespace/$ingress_name", "service": "$service_name:$service_port"}"#;
    // The default server's 404 logged too, for a line without a route.
    let serve_args = ["--log-format-escape-json".to_string(), format!("--log-format-upstream={format}"), "--enable-access-log-for-default-backend".into()].to_vec();
    let gateway = Gateway::start_with(dir.path(), &GatewayOptions { serve_args, ..Default::default() }).unwrap();
    // A User-Agent that would break a JSON line written as text.
    let agent = r#"evil" , "status": 999, "x": ""#;
    assert_eq!(get(gateway.http, "plain.test", "/j/k?q=1&r=2", &format!("\r\nUser-Agent: {agent}")).status, 200);
    assert_eq!(get(gateway.http, "nobody.test", "/", "").status, 404);
    let lines = access_log_lines(&gateway, 2, |line| line.starts_with('{'));
    let entry: Value = serde_json::from_str(&lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", lines[0]));
    assert_eq!(entry["http_user_agent"], json!(agent), "escaped, as nginx's escape=json");
    assert_eq!(entry["status"], json!(200));
    assert_eq!(entry["path"], json!("/j/k"));
    assert_eq!(entry["request_query"], json!("q=1&r=2"));
    assert_eq!(entry["method"], json!("GET"));
    assert_eq!(entry["vhost"], json!("plain.test"));
    assert_eq!(entry["upstream"], json!("[default/app/80] 100%"));
    // Seconds, as nginx's; a JSON string here (Envoy's CEL formatter writes strings), a number there.
    assert!(entry["request_time"].as_str().and_then(|t| t.parse::<f64>().ok()).is_some_and(|t| t < 5.0), "{entry}");
    assert!(entry["bytes_sent"].as_u64().is_some_and(|b| b > 0), "{entry}");
    assert!(entry["time"].as_str().is_some_and(|t| t.len() == 25 && t.ends_with("+00:00")), "$time_iso8601: {entry}");
    // The route's Ingress and Service, which the filter leaves for the log; none without a route.
    assert_eq!((&entry["ingress"], &entry["service"]), (&json!("default/plain"), &json!("app:80")));
    let unserved: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!((&unserved["vhost"], &unserved["ingress"], &unserved["service"]), (&json!("nobody.test"), &json!("-/-"), &json!("-:-")));
}

/// ingress-nginx's e2e `log-format-escape-none`: the format as its test writes it (quoted, so
/// not a JSON object), values as they are, and a header the request lacks written as nothing, as
/// nginx's `escape=none` writes it (not `-`).
#[test]
fn log_format_escape_none_writes_values_as_they_are_and_missing_ones_as_nothing() {
    let app = backend("app", 80);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.push(annotated("plain", &[], "plain.test", &["/"]));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let format = r#""{"my_header5":"$http_header5", "my_header6":"$http_header6"}""#;
    let serve_args = ["--log-format-escape-none".to_string(), format!("--log-format-upstream={format}")].to_vec();
    let gateway = Gateway::start_with(dir.path(), &GatewayOptions { serve_args, ..Default::default() }).unwrap();
    assert_eq!(get(gateway.http, "plain.test", "/", "\r\nheader5: Here is \"header5\" with none escape").status, 200);
    let lines = access_log_lines(&gateway, 1, |line| line.contains("my_header5"));
    assert_eq!(lines[0], r#""{"my_header5":"Here is "header5" with none escape", "my_header6":""}""#);
}

#[test]
fn proxy_read_timeout_times_upstream_silence_not_the_whole_response() {
    let app = backend("app", 73);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([
        annotated("fast", &[("proxy-read-timeout", "1")], "fast.test", &["/"]),
        annotated("default", &[], "default-timeout.test", &["/"]),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    // A stream idle timeout (2 s) shorter than the default read timeout (60 s), as 300 s is
    // shorter than a `proxy-read-timeout: "3600"`: the read timeout is what the route waits.
    let serve_args = vec!["--stream-idle-timeout".to_string(), "2s".to_string()];
    let gateway = Gateway::start_with(dir.path(), &GatewayOptions { serve_args, ..Default::default() }).unwrap();
    let http = gateway.http;

    // Silent for 2.5 s: 504 after about 1 s.
    let started = Instant::now();
    let response = get(http, "fast.test", "/", "\r\nx-echo-delay-ms: 2500");
    assert_eq!(response.status, 504, "{:?}", String::from_utf8_lossy(&response.body));
    assert!(started.elapsed() < Duration::from_millis(2400), "answered after {:?}", started.elapsed());
    // A stream of 4 chunks 600 ms apart lasts 2.4 s, longer than the 1 s timeout: it completes.
    let response = get(http, "fast.test", "/", "\r\nx-echo-chunks: 4\r\nx-echo-gap-ms: 600");
    assert_eq!((response.status, response.body.as_slice()), (200, b"chunk\nchunk\nchunk\nchunk\n".as_slice()));
    // The default (60 s) lets a 2.5 s silence through, longer than the stream idle timeout.
    let response = get(http, "default-timeout.test", "/", "\r\nx-echo-delay-ms: 2500");
    assert_eq!((response.status, response.echo().map(|e| e.backend)), (200, Some("app".to_string())));
}

#[test]
fn route_policies_change_under_load_without_a_failed_request() {
    let app = backend("app", 74);
    let dir = tempfile::tempdir().unwrap();
    let service = manifests::service("default", "app", &[("http", 80)], &[&app]);
    let write = |limit: &str| {
        let mut objects = service.clone();
        objects.push(annotated("churn", &[("proxy-body-size", limit)], "churn.test", &["/"]));
        manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    };
    write("1k");
    let gateway = Gateway::start(dir.path()).unwrap();
    let http = gateway.http;

    // Two clients keep requesting the host whose policy changes (each change is a new policy key:
    // new route first, table next, old route last).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u64, Vec::new());
                let started = Instant::now();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && started.elapsed() < Duration::from_secs(120) {
                    let response = get(http, "churn.test", "/", "");
                    if response.status == 200 {
                        ok += 1;
                    } else {
                        failed.push((response.status, String::from_utf8_lossy(&response.body).to_string()));
                    }
                }
                (ok, failed)
            })
        })
        .collect();

    // Each change is seen (a 2 KiB body is refused under 1k and accepted under 4k) before the next.
    let body = vec![b'x'; 2048];
    for change in 0..12 {
        let (limit, expected) = if change % 2 == 0 { ("4k", 200) } else { ("1k", 413) };
        write(limit);
        let seen = wasm_ingress_tests::gateway::wait_until(Duration::from_secs(10), || Ok(post(http, "churn.test", "/", &body).status == expected));
        assert!(seen.is_ok(), "change {change} to {limit} was never served");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total_ok = 0;
    for client in clients {
        let (ok, failed) = client.join().unwrap();
        assert!(failed.is_empty(), "failed requests during policy churn: {failed:?}");
        total_ok += ok;
    }
    assert!(total_ok > 100, "too little load to mean anything: {total_ok} requests");
}

#[test]
fn configuration_snippet_headers_reach_clients_and_upstreams() {
    let app = backend("app", 74);
    let ca = TestCa::new("snippet-ca").unwrap();
    let (cert, key) = ca.server_cert(&["hsts.test"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let security = r#"more_set_headers "X-Frame-Options: DENY";
more_set_headers "X-Content-Type-Options: nosniff";
add_header X-XSS-Protection "1; mode=block" always;
more_clear_headers X-Backend;
proxy_set_header X-Tenant acme;
proxy_set_header Upgrade $http_upgrade;
proxy_set_header Connection "upgrade";
more_set_headers "Expected-Host: $http_host""#;
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.push(manifests::tls_secret("default", "hsts-tls", &cert, &key));
    // Linkerd's documented setup, and per-request variables Envoy fills in.
    let linkerd = r#"proxy_set_header l5d-dst-override $service_name.$namespace.svc.cluster.local:$service_port;
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Client-Tenant $http_x_tenant_id;
more_set_headers "X-Served-By: $ingress_name";
"#;
    objects.extend([
        annotated("linkerd", &[("configuration-snippet", linkerd), ("upstream-vhost", "$service_name.$namespace.svc.cluster.local")], "linkerd.test", &["/"]),
        annotated("secure", &[("configuration-snippet", security)], "secure.test", &["/"]),
        annotated("unsupported", &[("configuration-snippet", "more_set_headers \"X-A: b\";\nrewrite ^ /x;")], "unsupported.test", &["/"]),
        manifests::with_tls(
            annotated("hsts", &[("configuration-snippet", "more_set_headers \"Strict-Transport-Security: max-age=63072000; preload\";")], "hsts.test", &["/"]),
            "hsts.test",
            "hsts-tls",
        ),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();

    let response = get(gateway.http, "secure.test", "/", "\r\nX-Tenant: evil");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-frame-options"), Some("DENY"));
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(response.header("x-xss-protection"), Some("1; mode=block"));
    assert_eq!(response.header("x-backend"), None, "more_clear_headers removes the upstream's header");
    // fromtowwwredirect.go's `$http_host`, in a last statement without `;` (settings/proxy_host.go).
    assert_eq!(response.header("expected-host"), Some("secure.test"));
    let echo = response.echo().unwrap();
    assert_eq!(echo.headers.get("x-tenant").map(String::as_str), Some("acme"), "proxy_set_header replaces the client's");

    // Variables: the location's are written in, the request's filled in by Envoy; a header whose
    // value comes out empty is not sent (nginx drops an empty proxy_set_header).
    let response = get(gateway.http, "linkerd.test", "/", "\r\nX-Tenant-Id: t-1\r\nX-Real-IP: 6.6.6.6");
    assert_eq!((response.status, response.header("x-served-by")), (200, Some("linkerd")));
    let echo = response.echo().unwrap();
    let sent = |name: &str| echo.headers.get(name).map(String::as_str);
    assert_eq!(sent("l5d-dst-override"), Some("app.default.svc.cluster.local:80"));
    assert_eq!(echo.host, "app.default.svc.cluster.local", "upstream-vhost with the location's variables");
    assert_eq!((sent("x-real-ip"), sent("x-client-tenant")), (Some("127.0.0.1"), Some("t-1")));
    let echo = get(gateway.http, "linkerd.test", "/", "\r\nX-Client-Tenant: forged").echo().unwrap();
    assert_eq!(echo.headers.get("x-client-tenant"), None, "not the client's own either: proxy_set_header replaces it");

    // A snippet with any other statement is not applied at all; the Ingress is still served.
    let response = get(gateway.http, "unsupported.test", "/", "");
    assert_eq!((response.status, response.header("x-a")), (200, None));
    assert_eq!(response.header("x-backend"), Some("app"));

    // A snippet's Strict-Transport-Security wins over the controller's, as in nginx.
    let (status, hsts, _) = get_tls(&gateway, "hsts.test", &ca.cert_pem, "/");
    assert_eq!((status, hsts), (200, vec!["max-age=63072000; preload".to_string()]));
}

fn config_map(name: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = data.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data})
}

/// ingress-nginx's e2e test `customheaders.go`: without the annotation, 200; naming a missing
/// ConfigMap, 503; with the ConfigMap and its headers in `global-allowed-response-headers`, both
/// headers on the response, the `$` one literal. Also: an error status from the backend carries
/// them too (`more_set_headers` without `-s`), and so do Envoy's and the filter's own answers (413,
/// redirects); a header not in the allowed list denies the Ingress, and a changed ConfigMap is
/// served without touching the Ingress.
#[test]
fn custom_headers_come_from_a_configmap_like_ingress_nginx() {
    let app = backend("app", 75);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    let headers = [("My-Custom-Header", "42"), ("My-Custom-Header-Dollar", "$remote_addr")];
    objects.extend([
        annotated("plain", &[], "plain.test", &["/"]),
        annotated("missing", &[("custom-headers", "default/nowhere")], "missing.test", &["/"]),
        annotated("custom", &[("custom-headers", "default/custom-headers")], "custom-headers.test", &["/"]),
        annotated("unlisted", &[("custom-headers", "default/unlisted-headers")], "unlisted.test", &["/"]),
        annotated("moved", &[("custom-headers", "default/custom-headers"), ("permanent-redirect", "https://elsewhere.test/")], "moved.test", &["/"]),
        annotated("limited", &[("custom-headers", "default/custom-headers"), ("proxy-body-size", "1")], "limited.test", &["/"]),
        annotated("forced", &[("custom-headers", "default/custom-headers"), ("force-ssl-redirect", "true")], "forced.test", &["/"]),
        config_map("custom-headers", &headers),
        config_map("unlisted-headers", &[("X-Not-Allowed", "1")]),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let serve_args = vec!["--global-allowed-response-headers".to_string(), "My-Custom-Header,My-Custom-Header-Dollar".to_string()];
    let gateway = Gateway::start_with(dir.path(), &GatewayOptions { serve_args, ..Default::default() }).unwrap();

    let plain = get(gateway.http, "plain.test", "/", "");
    assert_eq!((plain.status, plain.header("my-custom-header")), (200, None));
    assert_eq!(get(gateway.http, "missing.test", "/", "").status, 503, "a missing ConfigMap denies the location");
    let custom = get(gateway.http, "custom-headers.test", "/", "");
    assert_eq!(custom.status, 200);
    assert_eq!(custom.header("my-custom-header"), Some("42"));
    assert_eq!(custom.header("my-custom-header-dollar"), Some("$remote_addr"), "values are literal");
    assert_eq!(custom.echo().map(|e| e.backend), Some("app".to_string()));
    let error = get(gateway.http, "custom-headers.test", "/", "\r\nX-Echo-Status: 404");
    assert_eq!((error.status, error.header("my-custom-header")), (404, Some("42")), "on every status");
    assert_eq!(get(gateway.http, "unlisted.test", "/", "").status, 503, "a header not allowed denies the location");
    // Envoy's own answers on the route carry them, and so do the filter's (its redirects here).
    let limited = post(gateway.http, "limited.test", "/", b"too large");
    assert_eq!((limited.status, limited.header("my-custom-header")), (413, Some("42")));
    let moved = get(gateway.http, "moved.test", "/", "");
    assert_eq!((moved.status, moved.header("location"), moved.header("my-custom-header")), (301, Some("https://elsewhere.test/"), Some("42")));
    assert_eq!(moved.header("my-custom-header-dollar"), Some("$remote_addr"));
    let forced = get(gateway.http, "forced.test", "/x?y=1", "");
    assert_eq!((forced.status, forced.header("location"), forced.header("my-custom-header")), (308, Some("https://forced.test/x?y=1"), Some("42")));

    // The ConfigMap changes: the new value is served (the Ingress is not touched).
    objects.retain(|o| o["metadata"]["name"] != "custom-headers");
    objects.push(config_map("custom-headers", &[("My-Custom-Header", "43")]));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    wait_until(Duration::from_secs(20), || Ok(get(gateway.http, "custom-headers.test", "/", "").header("my-custom-header") == Some("43"))).unwrap();
    let changed = get(gateway.http, "custom-headers.test", "/", "");
    assert_eq!((changed.status, changed.header("my-custom-header"), changed.header("my-custom-header-dollar")), (200, Some("43"), None));
}

/// ingress-nginx's e2e test `settings/custom_header.go` (ConfigMap `add-headers`, here `serve
/// --add-headers`): every response carries the ConfigMap's headers, the filter's own answers
/// (a redirect, the 404 of an unknown host) too; and ConfigMap `proxy-set-headers` (`--proxy-set-headers`): every request the
/// backend gets carries its headers, nginx variables filled in per location. A change to the
/// ConfigMap is served without touching any Ingress. With `--server-tokens`, a `Server` header.
#[test]
fn add_headers_and_proxy_set_headers_configmaps_reach_every_ingress() {
    let app = backend("app", 78);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([
        annotated("plain", &[], "custom-header.test", &["/"]),
        annotated("moved", &[("permanent-redirect", "https://elsewhere.test/")], "moved.test", &["/"]),
        config_map("add-headers-configmap", &[("X-First", "Prepare for trouble!"), ("X-Second", "And make it double!"), ("X-Powered-By", "")]),
        config_map("proxy-headers", &[("X-Using-Nginx-Controller", "true"), ("X-Upstream", "$service_name:$service_port"), ("X-Remote-User", "")]),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let serve_args = ["--add-headers", "default/add-headers-configmap", "--proxy-set-headers", "default/proxy-headers", "--server-tokens"].map(String::from).to_vec();
    let gateway = Gateway::start_with(dir.path(), &GatewayOptions { serve_args, ..Default::default() }).unwrap();

    let plain = get(gateway.http, "custom-header.test", "/", "");
    assert_eq!(plain.status, 200);
    assert_eq!((plain.header("x-first"), plain.header("x-second")), (Some("Prepare for trouble!"), Some("And make it double!")));
    let echo = plain.echo().unwrap();
    assert_eq!(echo.headers.get("x-using-nginx-controller").map(String::as_str), Some("true"));
    assert_eq!(echo.headers.get("x-upstream").map(String::as_str), Some("app:80"), "location variables filled in");
    // An empty value removes the header, as nginx's `proxy_set_header X ""` and headers-more's
    // `more_set_headers "X: "`: a client cannot forge it upstream, a backend cannot send it.
    let forged = get(gateway.http, "custom-header.test", "/", "\r\nX-Remote-User: admin\r\nX-Echo-Response-Header: X-Powered-By: PHP");
    assert_eq!((forged.status, forged.header("x-powered-by")), (200, None));
    assert_eq!(forged.echo().unwrap().headers.get("x-remote-user"), None);
    // --server-tokens (ConfigMap `server-tokens: "true"`): the proxy's own Server header on every
    // answer, the backend's replaced.
    let backend_server = get(gateway.http, "custom-header.test", "/", "\r\nX-Echo-Response-Header: Server: echo/1.0");
    assert_eq!(backend_server.header("server"), Some("wasm-ingress"));
    assert_eq!(get(gateway.http, "nowhere.test", "/", "").header("server"), Some("wasm-ingress"));
    let error = get(gateway.http, "custom-header.test", "/", "\r\nX-Echo-Status: 500");
    assert_eq!((error.status, error.header("x-first")), (500, Some("Prepare for trouble!")), "on every status");
    let moved = get(gateway.http, "moved.test", "/", "");
    assert_eq!((moved.status, moved.header("x-first")), (301, Some("Prepare for trouble!")), "the filter's own answers too");
    // nginx's `http`-level headers: the 404 of a host nothing serves and the default server's
    // own locations too.
    for (host, path, status) in [("nowhere.test", "/", 404), ("10.1.2.3", "/healthz", 200)] {
        let answer = get(gateway.http, host, path, "");
        assert_eq!((answer.status, answer.header("x-second")), (status, Some("And make it double!")), "{host}{path}");
    }

    // The ConfigMap changes: the new value is served.
    objects.retain(|o| o["metadata"]["name"] != "add-headers-configmap");
    objects.push(config_map("add-headers-configmap", &[("X-First", "changed")]));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    wait_until(Duration::from_secs(20), || Ok(get(gateway.http, "custom-header.test", "/", "").header("x-first") == Some("changed"))).unwrap();
    assert_eq!(get(gateway.http, "custom-header.test", "/", "").header("x-second"), None);
}

/// ingress-nginx's OpenTelemetry (ConfigMap `enable-opentelemetry`, `otlp-collector-host`/`-port`,
/// `otel-service-name`): with `serve --enable-opentelemetry` and a collector, requests are traced —
/// the backend gets a sampled `traceparent`, the spans reach the collector under the service name
/// — except when the client's own `traceparent` says it is not sampled
/// (`otel-sampler-parent-based`, on by default), and except that the client's context is dropped
/// with `--opentelemetry-trust-incoming-span false`. The per-Ingress annotation is not applied (a
/// warning): Envoy decides before the route is known.
#[test]
fn opentelemetry_traces_reach_the_collector() {
    let app = backend("app", 79);
    let collector = wasm_ingress_tests::otlp::OtlpCollector::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([
        annotated("traced", &[], "traced.test", &["/"]),
        annotated("quiet", &[("enable-opentelemetry", "false")], "quiet.test", &["/"]),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let serve_args = [
        "--enable-opentelemetry",
        "--otlp-collector-host",
        "127.0.0.1",
        "--otlp-collector-port",
        &collector.addr.port().to_string(),
        "--otel-service-name",
        "shop-edge",
    ]
    .map(String::from)
    .to_vec();
    let gateway = Gateway::start_with(dir.path(), &GatewayOptions { serve_args: serve_args.clone(), ..Default::default() }).unwrap();
    let sampled = |host: &str, extra: &str| {
        let answer = get(gateway.http, host, "/", extra);
        assert_eq!(answer.status, 200, "{host}");
        answer.echo().unwrap().headers.get("traceparent").map(|t| t.ends_with("-01"))
    };
    assert_eq!(sampled("traced.test", ""), Some(true));
    assert_eq!(sampled("quiet.test", ""), Some(true), "enable-opentelemetry: false is not applied per Ingress");
    assert!(gateway.control_plane_logs().contains("enable-opentelemetry]: not applied per Ingress"), "{}", gateway.control_plane_logs());
    let unsampled_parent = "\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    assert_eq!(sampled("traced.test", unsampled_parent), Some(false), "the parent decides");
    let sampled_parent = "\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    assert_eq!(sampled("traced.test", sampled_parent), Some(true));

    // Envoy exports in batches (every 5 s at most).
    wait_until(Duration::from_secs(30), || Ok(collector.exports().iter().any(|e| e.contains("traced.test")))).unwrap_or_else(|_| {
        panic!("no span for traced.test: {:?}\n{}", collector.exports().len(), gateway.envoy.logs())
    });
    let exports = collector.exports();
    assert!(exports.iter().all(|e| e.path == "/opentelemetry.proto.collector.trace.v1.TraceService/Export"), "{exports:?}");
    assert!(exports.iter().any(|e| e.contains("shop-edge")), "otel-service-name");
    assert!(exports.iter().any(|e| e.contains("0af7651916cd43dd8448eb211c80319c") || e.message.windows(16).any(|w| w == [0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c])), "the sampled parent's trace");
    drop(gateway);

    // ConfigMap `opentelemetry-trust-incoming-span: "false"`: the client's trace context is
    // dropped, so its unsampled parent neither decides nor is continued.
    let serve_args = [&serve_args[..], &["--opentelemetry-trust-incoming-span".into(), "false".into()]].concat();
    let gateway = Gateway::start_with(dir.path(), &GatewayOptions { serve_args, ..Default::default() }).unwrap();
    let answer = get(gateway.http, "traced.test", "/", &format!("{unsampled_parent}\r\ntracestate: vendor=client"));
    let headers = &answer.echo().unwrap().headers;
    let traceparent = headers.get("traceparent").expect("Envoy's own traceparent");
    assert!(traceparent.ends_with("-01") && !traceparent.contains("0af7651916cd43dd8448eb211c80319c"), "{traceparent}");
    assert_eq!(headers.get("tracestate").map(String::as_str).unwrap_or_default(), "", "the client's tracestate is not passed on (Envoy's tracer sends an empty one)");
}

/// ingress-nginx's e2e test `connection.go`: `connection-proxy-header: keep-alive` reaches the
/// backend as `Connection: keep-alive`; without it the backend gets no `Connection` header, as
/// behind ingress-nginx with upstream keepalive.
#[test]
fn connection_proxy_header_reaches_the_backend() {
    let app = backend("app", 76);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([
        annotated("keep", &[("connection-proxy-header", "keep-alive")], "connection.foo.com", &["/"]),
        annotated("plain", &[], "plain.foo.com", &["/"]),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let keep = get(gateway.http, "connection.foo.com", "/", "\r\nConnection: close");
    assert_eq!(keep.status, 200);
    assert_eq!(keep.echo().unwrap().headers.get("connection").map(String::as_str), Some("keep-alive"));
    let plain = get(gateway.http, "plain.foo.com", "/", "");
    assert_eq!((plain.status, plain.echo().unwrap().headers.get("connection")), (200, None));
}

/// A TLS 1.2 handshake with `host` as SNI offering only `suite`: whether Envoy accepted it.
fn handshake_with(gateway: &Gateway, host: &str, ca_pem: &str, suite: tokio_rustls::rustls::SupportedCipherSuite) -> bool {
    negotiated(gateway, host, ca_pem, vec![suite]).is_some()
}

/// A TLS 1.2 handshake with `host` as SNI offering `suites` in this order of preference: the
/// suite Envoy chose, `None` if it refused the handshake.
fn negotiated(
    gateway: &Gateway,
    host: &str,
    ca_pem: &str,
    suites: Vec<tokio_rustls::rustls::SupportedCipherSuite>,
) -> Option<tokio_rustls::rustls::CipherSuite> {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let provider = rustls::crypto::CryptoProvider { cipher_suites: suites, ..rustls::crypto::ring::default_provider() };
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(gateway.https).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
        let connected = tokio::time::timeout(Duration::from_secs(5), tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp)).await;
        let stream = connected.ok()?.ok()?;
        stream.get_ref().1.negotiated_cipher_suite().map(|suite| suite.suite())
    })
}

/// `ssl-ciphers` (ingress-nginx's sslciphers.go sets `ssl_ciphers` for the host): a TLS 1.2
/// client offering only a suite the host does not list is refused in the handshake, one offering
/// a listed suite is served; other hosts keep the listener's suites; every cipher name Envoy is
/// given is one it accepts (the listener is not refused). `ssl-prefer-server-ciphers`: whose
/// order of suites wins.
#[test]
fn ssl_ciphers_limit_a_hosts_tls12_suites() {
    use tokio_rustls::rustls::crypto::ring::cipher_suite::{TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 as AES128, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 as AES256};
    let app = backend("app", 77);
    let ca = TestCa::new("ciphers-ca").unwrap();
    let (cert, key) = ca.server_cert(&["ciphers.test", "plain.test", "all.test", "client-order.test", "server-order.test", "strength.test"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.push(manifests::tls_secret("default", "site-tls", &cert, &key));
    // Every name the control plane passes on (`ciphers::SUPPORTED` in the control plane).
    let every_name = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-PSK-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA", "ECDHE-PSK-AES128-CBC-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA", "ECDHE-PSK-AES256-CBC-SHA",
        "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "PSK-AES128-CBC-SHA", "AES256-SHA", "PSK-AES256-CBC-SHA", "DES-CBC3-SHA",
    ]
    .join(":");
    objects.extend([
        manifests::with_tls(annotated("ciphers", &[("ssl-ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384:HIGH:!aNULL")], "ciphers.test", &["/"]), "ciphers.test", "site-tls"),
        manifests::with_tls(annotated("plain", &[], "plain.test", &["/"]), "plain.test", "site-tls"),
        manifests::with_tls(annotated("all", &[("ssl-ciphers", every_name.as_str())], "all.test", &["/"]), "all.test", "site-tls"),
        manifests::with_tls(annotated("client-order", &[("ssl-prefer-server-ciphers", "false")], "client-order.test", &["/"]), "client-order.test", "site-tls"),
        manifests::with_tls(annotated("server-order", &[("ssl-prefer-server-ciphers", "true")], "server-order.test", &["/"]), "server-order.test", "site-tls"),
        // sslciphers.go "keep ssl ciphers": `@STRENGTH`/`@SECLEVEL` pass ingress-nginx's
        // validation, so the Ingress is served (with the listener's suites: no name Envoy takes).
        manifests::with_tls(annotated("strength", &[("ssl-ciphers", "ALL:!aNULL:!EXPORT56:RC4+RSA:+HIGH:+MEDIUM:+LOW:+SSLv2:+EXP:@STRENGTH:@SECLEVEL=0")], "strength.test", &["/"]), "strength.test", "site-tls"),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let ca_pem = ca.cert_pem.clone();

    assert!(handshake_with(&gateway, "ciphers.test", &ca_pem, AES256), "a listed suite is served");
    assert!(!handshake_with(&gateway, "ciphers.test", &ca_pem, AES128), "an unlisted suite is refused");
    assert!(handshake_with(&gateway, "plain.test", &ca_pem, AES128), "another host keeps the listener's suites");
    assert!(handshake_with(&gateway, "all.test", &ca_pem, AES128) && handshake_with(&gateway, "all.test", &ca_pem, AES256));
    let (status, _, echo) = get_tls(&gateway, "ciphers.test", &ca_pem, "/");
    assert_eq!((status, echo.map(|e| e.backend)), (200, Some("app".to_string())));
    assert!(handshake_with(&gateway, "strength.test", &ca_pem, AES128));
    let (status, _, echo) = get_tls(&gateway, "strength.test", &ca_pem, "/");
    assert_eq!((status, echo.map(|e| e.backend)), (200, Some("app".to_string())), "@STRENGTH does not reject the Ingress");

    // ssl-prefer-server-ciphers (nginx's ssl_prefer_server_ciphers): a client that would rather
    // have AES256 gets the host list's first suite it offers (AES128), unless the host says "false".
    for (host, chosen) in [("plain.test", AES128), ("server-order.test", AES128), ("client-order.test", AES256)] {
        let got = negotiated(&gateway, host, &ca_pem, vec![AES256, AES128]);
        assert_eq!(got, Some(chosen.suite()), "{host}");
    }
    assert_eq!(negotiated(&gateway, "client-order.test", &ca_pem, vec![AES128, AES256]), Some(AES128.suite()));
    let (status, _, echo) = get_tls(&gateway, "client-order.test", &ca_pem, "/");
    assert_eq!((status, echo.map(|e| e.backend)), (200, Some("app".to_string())));
}
