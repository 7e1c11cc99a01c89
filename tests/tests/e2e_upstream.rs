//! How Envoy speaks to backends, by ingress-nginx annotation, through the whole product (control
//! plane + real Envoy + the built filter) against echo backends that speak TLS and HTTP/2. Cases
//! after ingress-nginx's e2e tests `test/e2e/annotations/{backendprotocol,proxyssl,grpc,
//! serviceupstream}.go`:
//! - `backend-protocol: HTTPS` reaches a TLS-only backend without checking its certificate (nginx's
//!   `proxy_ssl_verify off`); the same backend without the annotation is not reached;
//! - `GRPC` speaks HTTP/2 in clear and streams the body (no 1m limit), `GRPCS` HTTP/2 over TLS;
//! - `proxy-ssl-secret` + `proxy-ssl-verify: on` + `proxy-ssl-name` + `proxy-ssl-server-name: on`:
//!   the backend's certificate is checked against the Secret's ca.crt and the name, the Secret's
//!   client certificate is presented; a wrong CA is not served; a missing Secret denies (503);
//! - `FCGI` answers 503 (Envoy has no FastCGI client);
//! - `service-upstream`: the Service's cluster IP is the endpoint, not its EndpointSlices;
//! - `x-forwarded-prefix` reaches the backend as `X-Forwarded-Prefix`, beside a `rewrite-target`;
//! - `default-backend`: a path whose Service has no endpoints (or does not exist) is answered by
//!   that Service with ingress-nginx's `X-Code`/`X-Format`/`X-Namespace`/`X-Ingress-Name`/
//!   `X-Service-Name`/`X-Service-Port` headers and its own path (test/e2e/annotations/
//!   default_backend.go), until its own endpoints appear;
//! - `custom-http-errors` (+ `default-backend`): a listed status is replaced by the default
//!   backend's answer to `GET /` with `X-Code` and the other ingress-nginx headers, with that
//!   answer's own status (nginx's `error_page CODE = @custom_…`); an unlisted one
//!   passes; without a default backend the listed codes answer 404 (ingress-nginx's own default
//!   server); a client naming a cluster in the internal error-page header gets nothing from it;
//!   `disable-proxy-intercept-errors: "true"` lets the backend's own 404 through;
//! - `serve --default-backend-service`: answers requests no Ingress serves, and the error pages of
//!   Ingresses without their own `default-backend`, and with `--custom-http-errors` (ConfigMap
//!   `custom-http-errors`) those of Ingresses without their own list;
//! - `ssl-passthrough` (with `serve --enable-ssl-passthrough`): the client's TLS reaches the backend
//!   undecrypted (the backend's own certificate, no header Envoy adds), beside hosts whose TLS
//!   Envoy terminates; an Ingress that restricts access is not passed through;
//! - `serve --use-gzip --enable-brotli` compresses answers for clients that accept it, and
//!   `--hide-headers` removes the backend's headers it names (ConfigMap `hide-headers`);
//! - a backend that refuses connections is 502 Bad Gateway, one whose connection attempts time
//!   out (`proxy-connect-timeout`) 504 Gateway Time-out, as nginx answers them; beside a live
//!   endpoint, 640 requests from 16 clients at once are all retried onto the live one (no cap on
//!   concurrent retries, as nginx);
//! - ExternalName Services (servicebackend/service_externalname.go): looked up by the control
//!   plane, served on the Service port's `targetPort`, updated, deleted; `localhost`, loopback
//!   addresses and names that do not resolve answer 503.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use wasm_ingress_filter::decision::status_body;
use wasm_ingress_tests::backend::{Echo, EchoBackend};
use wasm_ingress_tests::gateway::certs::TestCa;
use wasm_ingress_tests::gateway::{manifests, Gateway, GatewayOptions};

const NGINX: &str = "nginx.ingress.kubernetes.io/";

fn annotated(name: &str, service: &str, annotations: &[(&str, &str)], host: &str) -> Value {
    let annotations: serde_json::Map<String, Value> =
        annotations.iter().map(|(k, v)| (format!("{NGINX}{k}"), json!(v))).collect();
    let paths = vec![manifests::path("/", "Prefix", service, json!(80))];
    manifests::ingress("default", name, Value::Object(annotations), &[(host, paths)])
}

/// A kubernetes.io/tls Secret with the given PEM entries (cert-manager's shape: tls.crt, tls.key, ca.crt).
fn secret(name: &str, entries: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> = entries.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": name, "namespace": "default"}, "stringData": data})
}

/// A TLS-only echo backend with a certificate for `names` from `ca`; with `client_ca`, it demands
/// a client certificate from that CA.
fn tls_backend(dir: &Path, name: &str, octet: u8, ca: &TestCa, names: &[&str], client_ca: Option<&TestCa>) -> EchoBackend {
    let (cert, key) = ca.server_cert(names).unwrap();
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let mut args: Vec<&OsStr> = vec![OsStr::new("--tls-cert"), cert_path.as_os_str(), OsStr::new("--tls-key"), key_path.as_os_str()];
    let client_ca_path = dir.join(format!("{name}-client-ca.crt"));
    if let Some(client_ca) = client_ca {
        std::fs::write(&client_ca_path, &client_ca.cert_pem).unwrap();
        args.extend([OsStr::new("--tls-client-ca"), client_ca_path.as_os_str()]);
    }
    EchoBackend::spawn_with(name, Ipv4Addr::new(127, 0, 0, octet), &args).unwrap()
}

/// (status, echo) of a GET or POST to `host` on the HTTP listener, HTTP/1.1 or h2c.
fn request(gateway: &Gateway, host: &str, body: Option<Vec<u8>>, h2c: bool) -> (u16, Option<Echo>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .resolve(host, SocketAddr::from(([127, 0, 0, 1], 0)));
        if h2c {
            builder = builder.http2_prior_knowledge();
        }
        let client = builder.build().unwrap();
        let url = gateway.http_url(host, "/");
        let request = match body {
            Some(body) => client.post(url).body(body),
            None => client.get(url),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, Echo::parse(&response.bytes().await.unwrap()).ok())
    })
}

#[test]
fn backend_protocols_and_upstream_tls_behave_like_ingress_nginx() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = TestCa::new("backend-ca").unwrap();
    let other_ca = TestCa::new("other-ca").unwrap();
    let client_ca = TestCa::new("client-ca").unwrap();
    let (client_cert, client_key) = client_ca.server_cert(&["wasm-ingress.client"]).unwrap();
    let plain = EchoBackend::spawn("plain", Ipv4Addr::new(127, 0, 0, 81)).unwrap();
    let tls = tls_backend(dir.path(), "tls", 82, &server_ca, &["self-signed.internal"], None);
    let mtls = tls_backend(dir.path(), "mtls", 83, &server_ca, &["api.internal"], Some(&client_ca));

    let mut objects = Vec::new();
    objects.extend(manifests::service("default", "plain", &[("http", 80)], &[&plain]));
    objects.extend(manifests::service("default", "tls", &[("https", 80)], &[&tls]));
    objects.extend(manifests::service("default", "mtls", &[("https", 80)], &[&mtls]));
    objects.extend([
        secret("api-trust", &[("ca.crt", &server_ca.cert_pem), ("tls.crt", &client_cert), ("tls.key", &client_key)]),
        secret("wrong-trust", &[("ca.crt", &other_ca.cert_pem), ("tls.crt", &client_cert), ("tls.key", &client_key)]),
        annotated("https", "tls", &[("backend-protocol", "HTTPS")], "https.test"),
        annotated("https-lower", "tls", &[("backend-protocol", "https")], "https-lower.test"),
        annotated("no-protocol", "tls", &[], "no-protocol.test"),
        annotated("grpc", "plain", &[("backend-protocol", "GRPC")], "grpc.test"),
        annotated("grpcs", "tls", &[("backend-protocol", "GRPCS")], "grpcs.test"),
        annotated("fcgi", "plain", &[("backend-protocol", "FCGI")], "fcgi.test"),
        annotated("prefix", "plain", &[("x-forwarded-prefix", "/api"), ("rewrite-target", "/app")], "prefix.test"),
        annotated("prefix-alone", "plain", &[("x-forwarded-prefix", "/api")], "prefix-alone.test"),
        annotated(
            "verified",
            "mtls",
            &[
                ("backend-protocol", "HTTPS"),
                ("proxy-ssl-secret", "default/api-trust"),
                ("proxy-ssl-verify", "on"),
                ("proxy-ssl-name", "api.internal"),
                ("proxy-ssl-server-name", "on"),
            ],
            "verified.test",
        ),
        annotated(
            "wrong-ca",
            "mtls",
            &[("backend-protocol", "HTTPS"), ("proxy-ssl-secret", "default/wrong-trust"), ("proxy-ssl-verify", "on")],
            "wrong-ca.test",
        ),
        annotated(
            "wrong-name",
            "mtls",
            &[
                ("backend-protocol", "HTTPS"),
                ("proxy-ssl-secret", "default/api-trust"),
                ("proxy-ssl-verify", "on"),
                ("proxy-ssl-name", "other.internal"),
            ],
            "wrong-name.test",
        ),
        annotated("no-client-cert", "mtls", &[("backend-protocol", "HTTPS")], "no-client-cert.test"),
        annotated("missing-secret", "tls", &[("backend-protocol", "HTTPS"), ("proxy-ssl-secret", "default/nope")], "missing-secret.test"),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();

    // (host, status, backend, HTTP version the backend saw)
    let served: &[(&str, &str, &str)] = &[
        ("https.test", "tls", "HTTP/1.1"),
        ("https-lower.test", "tls", "HTTP/1.1"),
        ("grpc.test", "plain", "HTTP/2.0"),
        ("grpcs.test", "tls", "HTTP/2.0"),
        ("verified.test", "mtls", "HTTP/1.1"),
    ];
    for (host, backend, version) in served {
        let (status, echo) = request(&gateway, host, None, false);
        let echo = echo.unwrap_or_else(|| panic!("{host}: {status}, no echo\n{}", gateway.control_plane_logs()));
        assert_eq!((status, echo.backend.as_str(), echo.version.as_str()), (200, *backend, *version), "{host}");
    }
    // Not reached: plain HTTP to a TLS port, the wrong CA, the wrong name, no client certificate:
    // 502, as nginx answers a failed upstream handshake (or a TLS port's refusal of plain HTTP).
    for host in ["no-protocol.test", "wrong-ca.test", "wrong-name.test", "no-client-cert.test"] {
        let (status, echo) = request(&gateway, host, None, false);
        assert!(echo.is_none() && status == 502, "{host}: {status} {echo:?}");
    }
    // With nginx's page, the TLS port's answer to plain HTTP (Envoy's upstream protocol error) too.
    let (status, headers, body) = fetch(&gateway, "no-protocol.test", "/", &[]);
    assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (502, status_body(502)), "{headers:?}");
    // Denied by configuration: 503 and no backend.
    for host in ["missing-secret.test", "fcgi.test"] {
        let (status, echo) = request(&gateway, host, None, false);
        assert_eq!((status, echo), (503, None), "{host}");
    }
    // gRPC streams: an HTTP/2 client's 2 MiB body is not held to the 1m default.
    let (status, echo) = request(&gateway, "grpc.test", Some(vec![b'g'; 2 << 20]), true);
    let echo = echo.unwrap();
    assert_eq!((status, echo.body_bytes, echo.version.as_str()), (200, 2 << 20, "HTTP/2.0"));
    // ... while an HTTP backend still is.
    let (status, _) = request(&gateway, "https.test", Some(vec![b'h'; 2 << 20]), false);
    assert_eq!(status, 413);

    // x-forwarded-prefix replaces what the client sent, beside a rewrite-target; without one
    // ingress-nginx sets nothing, so the client's own passes (xforwardedprefix.go pairs them).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let prefix_seen = |host: &str| {
        runtime.block_on(async {
            let client = gateway.client(&[host], None).unwrap();
            let response = client.get(gateway.http_url(host, "/")).header("x-forwarded-prefix", "/evil").send().await.unwrap();
            Echo::parse(&response.bytes().await.unwrap()).unwrap()
        })
    };
    let echo = prefix_seen("prefix.test");
    assert_eq!((echo.headers.get("x-forwarded-prefix").map(String::as_str), echo.path.as_str()), (Some("/api"), "/app"));
    assert_eq!(prefix_seen("prefix-alone.test").headers.get("x-forwarded-prefix").map(String::as_str), Some("/evil"));
}

#[test]
fn service_upstream_sends_to_the_cluster_ip_not_the_endpoints() {
    let endpoint = EchoBackend::spawn("endpoint", Ipv4Addr::new(127, 0, 0, 84)).unwrap();
    // The "cluster IP": another backend, on the Service port.
    let cluster_ip = EchoBackend::spawn("cluster-ip", Ipv4Addr::new(127, 0, 0, 85)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", cluster_ip.port())], &[&endpoint]);
    objects[0]["spec"]["clusterIP"] = json!(cluster_ip.ip());
    let port = json!(cluster_ip.port());
    for (name, annotations) in [("direct", json!({})), ("via-service", json!({format!("{NGINX}service-upstream"): "true"}))] {
        let paths = vec![manifests::path("/", "Prefix", "app", port.clone())];
        objects.push(manifests::ingress("default", name, annotations, &[(&format!("{name}.test"), paths)]));
    }
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    for (host, backend) in [("direct.test", "endpoint"), ("via-service.test", "cluster-ip")] {
        let (status, echo) = request(&gateway, host, None, false);
        assert_eq!((status, echo.map(|e| e.backend)), (200, Some(backend.to_string())), "{host}");
    }
}

/// (status, body, echo) of a GET of `path` on `host` with extra request headers.
fn get_with(gateway: &Gateway, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, Option<Echo>) {
    let (status, _, body) = fetch(gateway, host, path, headers);
    (status, String::from_utf8_lossy(&body).into_owned(), Echo::parse(&body).ok())
}

/// `GET path` on `host` (redirects not followed): status, response headers (repeated names kept
/// in order) and body.
fn fetch(gateway: &Gateway, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .resolve(host, SocketAddr::from(([127, 0, 0, 1], 0)))
            .build()
            .unwrap();
        let mut request = client.get(gateway.http_url(host, path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let response_headers = response.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string())).collect();
        (status, response_headers, response.bytes().await.unwrap().to_vec())
    })
}

#[test]
fn default_backend_answers_for_a_service_without_endpoints_with_ingress_nginx_headers() {
    let fallback = EchoBackend::spawn("fallback", Ipv4Addr::new(127, 0, 0, 91)).unwrap();
    let live = EchoBackend::spawn("live", Ipv4Addr::new(127, 0, 0, 92)).unwrap();
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 93)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let objects = |app_endpoints: &[&EchoBackend]| {
        let mut objects = manifests::service("default", "fallback", &[("http", 80)], &[&fallback]);
        objects.extend(manifests::service("default", "live", &[("http", 80)], &[&live]));
        objects.extend(manifests::service("default", "app", &[("http", 80)], app_endpoints));
        let paths = vec![
            manifests::path("/", "Prefix", "app", json!(80)),
            manifests::path("/live", "Prefix", "live", json!(80)),
            manifests::path("/gone", "Prefix", "invalid", json!("http")),
        ];
        objects.push(manifests::ingress("default", "shop", json!({format!("{NGINX}default-backend"): "fallback"}), &[("shop.test", paths)]));
        objects
    };
    manifests::write(dir.path(), "all.yaml", &objects(&[])).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();

    let (status, _, echo) = get_with(&gateway, "shop.test", "/alma/armud", &[("accept", "text/html")]);
    let echo = echo.expect("an echo");
    assert_eq!((status, echo.backend.as_str(), echo.path.as_str()), (200, "fallback", "/alma/armud"));
    for (header, value) in [("x-code", "503"), ("x-format", "text/html"), ("x-namespace", "default"), ("x-ingress-name", "shop"), ("x-service-name", "app"), ("x-service-port", "80")] {
        assert_eq!(echo.headers.get(header).map(String::as_str), Some(value), "{header}: {:?}", echo.headers);
    }
    let (status, _, echo) = get_with(&gateway, "shop.test", "/gone", &[("accept", "application/json")]);
    let echo = echo.expect("an echo");
    assert_eq!((status, echo.backend.as_str()), (200, "fallback"), "a missing Service falls back too");
    assert_eq!((echo.headers.get("x-service-name").map(String::as_str), echo.headers.get("x-service-port").map(String::as_str)), (Some("invalid"), Some("http")));
    let (status, _, echo) = get_with(&gateway, "shop.test", "/live", &[("accept", "text/html")]);
    let echo = echo.expect("an echo");
    assert_eq!((status, echo.backend.as_str(), echo.headers.get("x-code")), (200, "live", None), "a Service with endpoints is not replaced");

    // The Service's own endpoints appear: it answers again.
    manifests::write(dir.path(), "all.yaml", &objects(&[&app])).unwrap();
    wasm_ingress_tests::gateway::wait_until(Duration::from_secs(20), || {
        Ok(get_with(&gateway, "shop.test", "/", &[]).2.is_some_and(|e| e.backend == "app" && !e.headers.contains_key("x-code")))
    })
    .unwrap();
}

#[test]
fn custom_http_errors_are_answered_by_the_default_backend_as_ingress_nginx_does() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 94)).unwrap();
    let pages = EchoBackend::spawn("pages", Ipv4Addr::new(127, 0, 0, 95)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend(manifests::service("default", "pages", &[("http", 80)], &[&pages]));
    let errors = |codes: &str, default_backend: Option<&str>| {
        let mut annotations = serde_json::Map::new();
        annotations.insert(format!("{NGINX}custom-http-errors"), json!(codes));
        if let Some(service) = default_backend {
            annotations.insert(format!("{NGINX}default-backend"), json!(service));
        }
        Value::Object(annotations)
    };
    let paths = || vec![manifests::path("/", "Prefix", "app", json!(80))];
    objects.push(manifests::ingress("default", "site", errors("404, 503", Some("pages")), &[("site.test", paths())]));
    objects.push(manifests::ingress("default", "bare", errors("404", None), &[("bare.test", paths())]));
    objects.push(manifests::ingress("default", "plain", json!({}), &[("plain.test", paths())]));
    // ingress-nginx's disableproxyintercepterrors.go: the backend's own 404 passes, "false" keeps the page.
    let mut pass = errors("404", Some("pages"));
    pass[format!("{NGINX}disable-proxy-intercept-errors")] = json!("true");
    objects.push(manifests::ingress("default", "pie", pass, &[("pie.foo.com", paths())]));
    let mut intercept = errors("404", Some("pages"));
    intercept[format!("{NGINX}disable-proxy-intercept-errors")] = json!("false");
    objects.push(manifests::ingress("default", "pie-false", intercept, &[("pie-false.foo.com", paths())]));
    let mut rewritten = errors("404", Some("pages"));
    rewritten[format!("{NGINX}rewrite-target")] = json!("/$2");
    rewritten[format!("{NGINX}use-regex")] = json!("true");
    let regex_path = vec![manifests::path("/app(/|$)(.*)", "ImplementationSpecific", "app", json!(80))];
    objects.push(manifests::ingress("default", "rewritten", rewritten, &[("rw.site.test", regex_path)]));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();

    // A listed status: the default backend answers `GET /` (query kept) with ingress-nginx's headers.
    let headers = [("x-echo-status", "404"), ("accept", "text/html"), ("x-request-id", "req-42")];
    let (status, _, echo) = get_with(&gateway, "site.test", "/shop/item?id=7", &headers);
    let echo = echo.expect("the default backend's echo");
    assert_eq!((status, echo.backend.as_str(), echo.method.as_str(), echo.path.as_str()), (404, "pages", "GET", "/?id=7"));
    let expected = [
        ("x-code", "404"),
        ("x-format", "text/html"),
        ("x-original-uri", "/shop/item?id=7"),
        ("x-namespace", "default"),
        ("x-ingress-name", "site"),
        ("x-service-name", "app"),
        ("x-service-port", "80"),
        ("x-request-id", "req-42"),
    ];
    for (header, value) in expected {
        assert_eq!(echo.headers.get(header).map(String::as_str), Some(value), "{header}: {:?}", echo.headers);
    }
    assert!(!echo.headers.contains_key("x-wasm-ingress-error-page"), "the internal marker never leaves Envoy");
    let (status, _, echo) = get_with(&gateway, "site.test", "/", &[("x-echo-status", "503")]);
    assert_eq!((status, echo.map(|e| e.headers.get("x-code").cloned())), (503, Some(Some("503".to_string()))));
    // nginx's `error_page 404 = @custom_…`: the client gets the error page's own status.
    let (status, headers, body) = fetch(&gateway, "site.test", "/", &[("x-echo-status", "404"), ("x-echo-error-page-status", "200")]);
    let echo = Echo::parse(&body).ok();
    assert_eq!((status, echo.map(|e| e.backend)), (200, Some("pages".to_string())), "the error page's 200");
    assert!(headers.iter().all(|(name, _)| !name.starts_with("x-wasm-ingress")), "{headers:?}");
    let (status, _, _) = get_with(&gateway, "site.test", "/", &[("x-echo-status", "503"), ("x-echo-error-page-status", "502")]);
    assert_eq!(status, 502, "the error page's own error status too");

    // X-Original-URI is the client's URI ($request_uri), not the rewrite-target's; the backend
    // gets the client's path in x-envoy-original-path, as from Envoy's own rewrites.
    let (status, _, echo) = get_with(&gateway, "rw.site.test", "/app/item/7?x=1", &[("x-echo-status", "404")]);
    let echo = echo.expect("the default backend's echo");
    assert_eq!((status, echo.backend.as_str(), echo.headers.get("x-original-uri").map(String::as_str)), (404, "pages", Some("/app/item/7?x=1")));
    let (status, _, echo) = get_with(&gateway, "rw.site.test", "/app/item/7?x=1", &[]);
    let echo = echo.expect("the app's echo");
    assert_eq!((status, echo.backend.as_str(), echo.path.as_str()), (200, "app", "/item/7?x=1"));
    assert_eq!(echo.headers.get("x-envoy-original-path").map(String::as_str), Some("/app/item/7?x=1"));
    // A client's own x-envoy-original-path never stands for its URI.
    let forged = [("x-echo-status", "404"), ("x-envoy-original-path", "/forged")];
    let (_, _, echo) = get_with(&gateway, "site.test", "/real", &forged);
    assert_eq!(echo.expect("the default backend's echo").headers.get("x-original-uri").map(String::as_str), Some("/real"));

    // Unlisted statuses and successes pass as the upstream sent them.
    for (knob, expected) in [("500", 500), ("200", 200)] {
        let (status, _, echo) = get_with(&gateway, "site.test", "/shop", &[("x-echo-status", knob)]);
        assert_eq!((status, echo.map(|e| e.backend)), (expected, Some("app".to_string())), "x-echo-status {knob}");
    }
    // Without a default backend: ingress-nginx's own default server answers 404.
    let (status, headers, body) = fetch(&gateway, "bare.test", "/", &[("x-echo-status", "404")]);
    assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (404, status_body(404)));
    let content_types: Vec<&str> = headers.iter().filter(|(name, _)| name == "content-type").map(|(_, value)| value.as_str()).collect();
    assert_eq!(content_types, ["text/html"], "nginx's page, as its default server sends it");
    let (status, _, echo) = get_with(&gateway, "pie.foo.com", "/status/404", &[("x-echo-status", "404")]);
    assert_eq!((status, echo.map(|e| e.backend)), (404, Some("app".to_string())), "disable-proxy-intercept-errors: the backend's answer");
    let (status, _, echo) = get_with(&gateway, "pie-false.foo.com", "/status/404", &[("x-echo-status", "404")]);
    let echo = echo.expect("the default backend's echo");
    assert_eq!((status, echo.backend.as_str(), echo.headers.get("x-code").map(String::as_str)), (404, "pages", Some("404")));
    // An Ingress without the annotation is untouched.
    let (status, _, echo) = get_with(&gateway, "plain.test", "/", &[("x-echo-status", "404")]);
    assert_eq!((status, echo.map(|e| e.backend)), (404, Some("app".to_string())));

    // A client naming clusters in the internal header (it cannot know the control plane's token):
    // routed as usual, the header dropped, even for the error-page cluster.
    for value in ["default/app/80", "default/pages/80", " default/pages/80", "not-served-placeholder-token default/pages/80"] {
        let (status, _, echo) = get_with(&gateway, "plain.test", "/secret", &[("x-wasm-ingress-error-page", value)]);
        let echo = echo.expect("an echo");
        assert_eq!((status, echo.backend.as_str(), echo.path.as_str()), (200, "app", "/secret"), "{value:?}");
        assert!(!echo.headers.contains_key("x-wasm-ingress-error-page"), "{value:?}: {:?}", echo.headers);
    }
}

#[test]
fn default_backend_service_answers_unserved_requests_and_error_pages_without_their_own() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 96)).unwrap();
    let global = EchoBackend::spawn("global", Ipv4Addr::new(127, 0, 0, 97)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend(manifests::service("ingress-nginx", "default-http-backend", &[("http", 80)], &[&global]));
    let paths = vec![manifests::path("/shop", "Prefix", "app", json!(80))];
    objects.push(manifests::ingress("default", "site", json!({format!("{NGINX}custom-http-errors"): "404"}), &[("site.test", paths)]));
    let paths = vec![manifests::path("/", "Prefix", "app", json!(80))];
    objects.push(manifests::ingress("default", "bare", json!({}), &[("bare.test", paths)]));
    // ingress-nginx's implicit `/` location: the host's oldest Ingress's list, then the default backend.
    for (name, range) in [("refusing", "127.0.0.2"), ("allowing", "127.0.0.1")] {
        let paths = vec![manifests::path("/app", "Prefix", "app", json!(80))];
        objects.push(manifests::ingress("default", name, json!({format!("{NGINX}whitelist-source-range"): range}), &[(&format!("{name}.test"), paths)]));
    }
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let serve_args = ["--default-backend-service", "ingress-nginx/default-http-backend", "--custom-http-errors", "503"].map(String::from).to_vec();
    let options = GatewayOptions { serve_args, ..Default::default() };
    let gateway = Gateway::start_with(dir.path(), &options).unwrap();

    // No host, or no path of a host: the default backend gets the request as it came.
    for (host, path) in [("unknown.test", "/anything?x=1"), ("site.test", "/elsewhere")] {
        let (status, _, echo) = get_with(&gateway, host, path, &[]);
        let echo = echo.expect("the default backend's echo");
        assert_eq!((status, echo.backend.as_str(), echo.path.as_str()), (200, "global", path), "{host}{path}");
    }
    let (status, _, echo) = get_with(&gateway, "refusing.test", "/elsewhere", &[]);
    assert_eq!((status, echo.map(|e| e.backend)), (403, None), "the oldest Ingress's list holds in front of the default backend");
    let (status, _, echo) = get_with(&gateway, "allowing.test", "/elsewhere", &[]);
    assert_eq!((status, echo.map(|e| e.backend)), (200, Some("global".to_string())));
    // The Ingress's error pages, without a default-backend of its own.
    let (status, _, echo) = get_with(&gateway, "site.test", "/shop/x", &[("x-echo-status", "404")]);
    let echo = echo.expect("the default backend's echo");
    assert_eq!((status, echo.backend.as_str(), echo.path.as_str()), (404, "global", "/"));
    assert_eq!(echo.headers.get("x-code").map(String::as_str), Some("404"));
    let (status, _, echo) = get_with(&gateway, "site.test", "/shop/x", &[]);
    assert_eq!((status, echo.map(|e| e.backend)), (200, Some("app".to_string())));
    // ConfigMap `custom-http-errors: "503"`: an Ingress without its own list takes it; one with
    // its own (404) keeps only that, so a 503 of its backend passes.
    let (status, _, echo) = get_with(&gateway, "bare.test", "/a", &[("x-echo-status", "503")]);
    let echo = echo.expect("the default backend's echo");
    assert_eq!((status, echo.backend.as_str(), echo.headers.get("x-code").map(String::as_str)), (503, "global", Some("503")));
    assert_eq!(echo.headers.get("x-ingress-name").map(String::as_str), Some("bare"));
    let (status, _, echo) = get_with(&gateway, "site.test", "/shop/x", &[("x-echo-status", "503")]);
    assert_eq!((status, echo.map(|e| e.backend)), (503, Some("app".to_string())));
}

#[test]
fn ssl_passthrough_sends_the_clients_tls_to_the_backend_undecrypted() {
    let dir = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let backend_ca = TestCa::new("backend-ca").unwrap();
    let edge_ca = TestCa::new("edge-ca").unwrap();
    let secure = tls_backend(certs.path(), "secure", 171, &backend_ca, &["pass.test", "guarded.test"], None);
    let plain = EchoBackend::spawn("plain", Ipv4Addr::new(127, 0, 0, 172)).unwrap();
    let (edge_cert, edge_key) = edge_ca.server_cert(&["term.test"]).unwrap();
    let mut objects = manifests::service("default", "secure", &[("https", 80)], &[&secure]);
    objects.extend(manifests::service("default", "plain", &[("http", 80)], &[&plain]));
    objects.push(manifests::tls_secret("default", "term-tls", &edge_cert, &edge_key));
    objects.push(annotated("pass", "secure", &[("ssl-passthrough", "true"), ("backend-protocol", "HTTPS")], "pass.test"));
    // Passing through would drop the allow-list: not passed through (an error), TLS terminated.
    objects.push(annotated("guarded", "secure", &[("ssl-passthrough", "true"), ("whitelist-source-range", "127.0.0.0/8")], "guarded.test"));
    objects.push(manifests::with_tls(annotated("term", "plain", &[], "term.test"), "term.test", "term-tls"));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let options = GatewayOptions { serve_args: vec!["--enable-ssl-passthrough".into()], ..GatewayOptions::default() };
    let gateway = Gateway::start_with(dir.path(), &options).unwrap();

    let get = |host: &str, ca: &TestCa| -> Result<(u16, Option<Echo>), String> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let client = gateway.client(&[host], Some(&ca.cert_pem)).map_err(|e| e.to_string())?;
            let response = client.get(gateway.https_url(host, "/x")).send().await.map_err(|e| format!("{e:?}"))?;
            let status = response.status().as_u16();
            Ok((status, Echo::parse(&response.bytes().await.unwrap()).ok()))
        })
    };
    // Passed through: the client trusts only the backend's CA, and the backend saw the request as
    // the client sent it (nothing Envoy adds, such as X-Request-Id or X-Forwarded-For).
    let (status, echo) = get("pass.test", &backend_ca).unwrap();
    let echo = echo.unwrap();
    assert_eq!((status, echo.backend.as_str(), echo.path.as_str()), (200, "secure", "/x"));
    assert!(!echo.headers.contains_key("x-request-id") && !echo.headers.contains_key("x-forwarded-for"), "{echo:?}");
    // Envoy's own certificate is not what pass.test presents.
    assert!(get("pass.test", &edge_ca).is_err());
    // Beside it, Envoy still terminates TLS for other hosts.
    let (status, echo) = get("term.test", &edge_ca).unwrap();
    assert_eq!((status, echo.map(|e| e.backend)), (200, Some("plain".to_string())));
    // The guarded Ingress is not passed through: Envoy holds no certificate for it, so the handshake
    // with the backend's CA fails rather than reaching the backend unchecked.
    assert!(get("guarded.test", &backend_ca).is_err());
    assert!(gateway.control_plane_logs().contains("would bypass a source-range list"));
}

#[test]
fn proxy_redirect_and_proxy_cookie_rewrite_the_backends_location_and_cookies_as_nginx() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 96)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    let rewriting = json!({
        format!("{NGINX}proxy-redirect-from"): "http://backend.internal:8080/",
        format!("{NGINX}proxy-redirect-to"): "/app/",
        format!("{NGINX}proxy-cookie-domain"): "backend.internal example.test",
        format!("{NGINX}proxy-cookie-path"): "/ /app/",
    });
    let paths = || vec![manifests::path("/", "Prefix", "app", json!(80))];
    objects.push(manifests::ingress("default", "rewriting", rewriting, &[("rewriting.test", paths())]));
    objects.push(manifests::ingress("default", "plain", json!({}), &[("plain.test", paths())]));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();

    let knobs = [
        ("x-echo-status", "302"),
        ("x-echo-response-header", "location: http://backend.internal:8080/login?next=%2F"),
        ("x-echo-response-header", "refresh: 3; url=http://backend.internal:8080/later"),
        ("x-echo-response-header", "set-cookie: sid=1; Domain=.Backend.Internal; Path=/"),
        ("x-echo-response-header", "set-cookie: theme=dark;path=/prefs ; HttpOnly"),
        ("x-echo-response-header", "set-cookie: other=1; Domain=elsewhere.test"),
    ];
    let values = |headers: &[(String, String)], name: &str| -> Vec<String> { headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect() };
    let (status, headers, _) = fetch(&gateway, "rewriting.test", "/", &knobs);
    assert_eq!(status, 302);
    // A relative replacement: nginx's absolute_redirect gives scheme and host (no port, as
    // ingress-nginx's port_in_redirect off).
    assert_eq!(values(&headers, "location"), ["http://rewriting.test/app/login?next=%2F"]);
    assert_eq!(values(&headers, "refresh"), ["3; url=/app/later"], "Refresh is rewritten, not made absolute");
    assert_eq!(
        values(&headers, "set-cookie"),
        ["sid=1; Domain=.example.test; Path=/app/", "theme=dark; path=/app/prefs; HttpOnly", "other=1; Domain=elsewhere.test"],
        "each cookie on its own, in order; a rewritten one rebuilt as nginx does"
    );

    // Without the annotations: the backend's headers as it sent them.
    let (status, headers, _) = fetch(&gateway, "plain.test", "/", &knobs);
    assert_eq!(status, 302);
    assert_eq!(values(&headers, "location"), ["http://backend.internal:8080/login?next=%2F"]);
    assert_eq!(values(&headers, "set-cookie"), ["sid=1; Domain=.Backend.Internal; Path=/", "theme=dark;path=/prefs ; HttpOnly", "other=1; Domain=elsewhere.test"]);
}

/// A name other than `localhost` that this machine resolves to 127.0.0.1 (its own host name, or
/// another name `/etc/hosts` gives that address): what an ExternalName Service can point at here,
/// where servers bind loopback addresses only.
fn loopback_name() -> String {
    use std::net::ToSocketAddrs as _;
    let loopback = |name: &str| (name, 0).to_socket_addrs().is_ok_and(|mut found| found.any(|a| a.ip() == std::net::IpAddr::from([127, 0, 0, 1])));
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string();
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let listed = hosts.lines().filter(|line| line.starts_with("127.0.0.1")).flat_map(|line| line.split_whitespace().skip(1).map(str::to_string).collect::<Vec<_>>());
    std::iter::once(hostname)
        .chain(listed)
        .find(|name| {
            let dns = !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            dns && name != "localhost" && loopback(name)
        })
        .expect("this test needs a host name other than localhost that resolves to 127.0.0.1 (the machine's own name in /etc/hosts)")
}

/// ExternalName Services, after ingress-nginx's `servicebackend/service_externalname.go`: the
/// control plane looks the name up and Envoy proxies to what it resolves to, on the Service
/// port's `targetPort`; the client's Host goes upstream (ingress-nginx sets no other without
/// `upstream-vhost`). A Service added later is served, an update moves traffic, a deleted one
/// answers 503 again; a name with a trailing dot is the same name; a name that does not resolve
/// and `localhost` (refused, as ingress-nginx does) answer 503.
#[test]
fn external_name_services_are_looked_up_and_served_as_ingress_nginx_does() {
    let name = loopback_name();
    let first = EchoBackend::spawn("first", Ipv4Addr::LOCALHOST).unwrap();
    let second = EchoBackend::spawn("second", Ipv4Addr::LOCALHOST).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ingress = manifests::ingress("default", "echo", json!({}), &[("echo", vec![manifests::path("/", "Prefix", "ext", json!(80))])]);
    manifests::write(dir.path(), "ingress.yaml", &[ingress]).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let (status, body, _) = get_with(&gateway, "echo", "/get", &[]);
    assert_eq!((status, body.as_str()), (503, status_body(503)), "no Service yet");

    let service = |external_name: &str, target: u16| {
        let ports = json!([{"name": "echo", "port": 80, "targetPort": target}]);
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"},
               "spec": {"type": "ExternalName", "externalName": external_name, "ports": ports}})
    };
    // (externalName, target port, the backend that answers: None = 503)
    let steps: [(String, u16, Option<&str>); 8] = [
        (name.clone(), first.port(), Some("first")),
        (name.clone(), second.port(), Some("second")),
        (format!("{name}."), first.port(), Some("first")),
        ("invalid.invalid".into(), first.port(), None),
        (name.clone(), second.port(), Some("second")),
        ("localhost".into(), first.port(), None),
        ("127.0.0.1".into(), first.port(), None),
        (name.clone(), first.port(), Some("first")),
    ];
    for (external_name, target, backend) in steps {
        manifests::write(dir.path(), "service.yaml", &[service(&external_name, target)]).unwrap();
        let mut last = (0, None);
        let reached = wasm_ingress_tests::gateway::wait_until(Duration::from_secs(15), || {
            let (status, _, echo) = get_with(&gateway, "echo", "/get", &[]);
            last = (status, echo.as_ref().map(|e| e.backend.clone()));
            Ok(match backend {
                Some(backend) => last == (200, Some(backend.to_string())),
                None => status == 503,
            })
        });
        assert!(reached.is_ok(), "{external_name} port {target}: want {backend:?}, last answer {last:?}");
        if backend.is_some() {
            let (_, _, echo) = get_with(&gateway, "echo", "/get", &[]);
            let echo = echo.unwrap();
            let client_host = format!("echo:{}", gateway.http.port());
            assert_eq!((&echo.host, echo.headers.get("x-forwarded-host")), (&client_host, Some(&client_host)), "{external_name}");
        }
    }
    std::fs::remove_file(dir.path().join("service.yaml")).unwrap();
    let gone = wasm_ingress_tests::gateway::wait_until(Duration::from_secs(15), || Ok(get_with(&gateway, "echo", "/get", &[]).0 == 503));
    assert!(gone.is_ok(), "the Service was deleted: 503 again");
}

/// A backend that refuses connections is nginx's 502 Bad Gateway (after the retries), a Service
/// without endpoints stays 503, each with nginx's status line as body (Envoy would say 503 with its
/// own text for both).
#[test]
fn a_backend_that_refuses_connections_answers_502_as_nginx() {
    let dead = EchoBackend::spawn("dead", Ipv4Addr::new(127, 0, 0, 158)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "dead", &[("http", 80)], &[&dead]);
    objects.extend(manifests::service("default", "empty", &[("http", 80)], &[]));
    objects.push(annotated("dead", "dead", &[], "dead.test"));
    objects.push(annotated("empty", "empty", &[], "empty.test"));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    assert_eq!(get_with(&gateway, "dead.test", "/", &[]).0, 200, "served while the backend runs");
    drop(dead);
    // nginx's pages, as `text/html` (ingress-nginx's `default_type`), not Envoy's text.
    let content_type = |headers: &[(String, String)]| headers.iter().find(|(n, _)| n == "content-type").map(|(_, v)| v.clone());
    let (status, headers, body) = fetch(&gateway, "dead.test", "/", &[]);
    assert_eq!((status, String::from_utf8_lossy(&body).as_ref(), content_type(&headers).as_deref()), (502, status_body(502), Some("text/html")));
    let (status, headers, body) = fetch(&gateway, "empty.test", "/", &[]);
    assert_eq!((status, String::from_utf8_lossy(&body).as_ref(), content_type(&headers).as_deref()), (503, status_body(503), Some("text/html")));
    let (status, headers, body) = fetch(&gateway, "nobody.test", "/", &[]);
    assert_eq!((status, String::from_utf8_lossy(&body).as_ref(), content_type(&headers).as_deref()), (404, status_body(404), Some("text/html")), "the filter's own");
}

/// An endpoint that refuses connections beside one that serves: every request, however many
/// come at once, is retried onto the live one and served, as nginx's `proxy_next_upstream error`
/// does (ingress-nginx's `lua/dynamic_configuration.go` scales endpoints under load). Envoy's
/// default circuit breakers allow 3 concurrent retries per cluster: with 16 clients a quarter of
/// the requests got the 502 instead.
#[test]
fn concurrent_requests_to_a_dead_endpoint_are_all_retried_onto_a_live_one() {
    let live = EchoBackend::spawn("live", Ipv4Addr::new(127, 0, 0, 161)).unwrap();
    let dead = EchoBackend::spawn("dead", Ipv4Addr::new(127, 0, 0, 162)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "half", &[("http", 80)], &[&live, &dead]);
    objects.push(annotated("half", "half", &[], "half.test"));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    drop(dead);
    let gateway = Gateway::start(dir.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let statuses = runtime.block_on(async {
        let client = gateway.client(&["half.test"], None).unwrap();
        let clients = (0..16).map(|_| {
            let (client, url) = (client.clone(), gateway.http_url("half.test", "/"));
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..40 {
                    statuses.push(client.get(&url).send().await.map(|r| r.status().as_u16()).unwrap_or(0));
                }
                statuses
            })
        });
        let mut all = std::collections::BTreeMap::new();
        for statuses in futures::future::join_all(clients.collect::<Vec<_>>()).await {
            for status in statuses.unwrap() {
                *all.entry(status).or_insert(0) += 1;
            }
        }
        all
    });
    assert_eq!(statuses, std::collections::BTreeMap::from([(200, 640)]), "status -> count (0: no answer)");
}

/// `serve --use-gzip --enable-brotli` (ingress-nginx's `use-gzip`, `enable-brotli`): a JSON
/// answer is compressed for a client that accepts it, brotli when it takes both, with
/// `Vary: Accept-Encoding` and a strong ETag weakened; a client that accepts neither gets it as is.
#[test]
fn configmap_compression_and_hide_headers_behave_as_ingress_nginx() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 160)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.push(annotated("app", "app", &[], "zip.test"));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    // And ConfigMap hide-headers (`--hide-headers`): the backend's X-Powered-By never reaches a client.
    let options = GatewayOptions { serve_args: vec!["--use-gzip".into(), "--enable-brotli".into(), "--hide-headers=X-Powered-By".into()], ..Default::default() };
    let gateway = Gateway::start_with(dir.path(), &options).unwrap();
    let header = |headers: &[(String, String)], name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let etag = ("x-echo-response-header", "ETag: \"v1\"");
    let (_, headers, _) = fetch(&gateway, "zip.test", "/", &[("x-echo-response-header", "X-Powered-By: PHP/8"), ("x-echo-response-header", "X-Other: kept")]);
    assert_eq!((header(&headers, "x-powered-by"), header(&headers, "x-other").as_deref()), (None, Some("kept")));
    // (Accept-Encoding, Content-Encoding)
    for (accepted, encoding) in [("gzip", Some("gzip")), ("gzip, br", Some("br")), ("br;q=0, gzip", Some("gzip")), ("identity", None)] {
        let (status, headers, body) = fetch(&gateway, "zip.test", "/", &[("accept-encoding", accepted), etag]);
        assert_eq!((status, header(&headers, "content-encoding").as_deref()), (200, encoding), "{accepted}");
        match encoding {
            Some(_) => {
                assert_eq!(header(&headers, "vary").map(|v| v.to_ascii_lowercase()).as_deref(), Some("accept-encoding"), "{accepted}");
                assert_eq!(header(&headers, "etag").as_deref(), Some("W/\"v1\""), "{accepted}: weakened, as nginx");
                assert!(Echo::parse(&body).is_err(), "{accepted}: the body is compressed");
            }
            None => {
                assert_eq!(header(&headers, "etag").as_deref(), Some("\"v1\""));
                assert_eq!(Echo::parse(&body).unwrap().backend, "app");
            }
        }
        if encoding == Some("gzip") {
            assert_eq!(body[..2], [0x1f, 0x8b], "gzip's magic number");
        }
    }
}

/// A backend whose connection attempts time out (`proxy-connect-timeout`, each of the default 3
/// tries) is nginx's 504 Gateway Time-out, not the 502 of a refused connection, although Envoy
/// flags both as a connection failure. The backend is a listener whose accept queue is full, so
/// the kernel drops the proxy's SYNs.
#[test]
fn a_backend_whose_connections_time_out_answers_504_as_nginx() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let address = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 159), 0));
    let listener = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(address).unwrap();
        socket.listen(0).unwrap()
    });
    let address = listener.local_addr().unwrap();
    // Fill the accept queue (never accepted): from here on connection attempts go unanswered.
    let queued: Vec<_> = (0..4).filter_map(|_| std::net::TcpStream::connect_timeout(&address, Duration::from_millis(300)).ok()).collect();
    assert!(std::net::TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_err(), "the accept queue is full");
    let dir = tempfile::tempdir().unwrap();
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "silent-0", "namespace": "default", "labels": {"kubernetes.io/service-name": "silent"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": address.port(), "protocol": "TCP"}],
        "endpoints": [{"addresses": [address.ip().to_string()], "conditions": {"ready": true}}],
    });
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "silent", "namespace": "default"},
                         "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}});
    let objects = vec![service, slice, annotated("silent", "silent", &[("proxy-connect-timeout", "1")], "silent.test")];
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let started = std::time::Instant::now();
    let (status, body, _) = get_with(&gateway, "silent.test", "/", &[]);
    assert_eq!((status, body.as_str()), (504, status_body(504)));
    assert!(started.elapsed() >= Duration::from_secs(1), "answered after the connect timeout, not before");
    drop((queued, listener, runtime));
}
