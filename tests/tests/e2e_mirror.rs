//! Request mirroring (`mirror-target`, `mirror-host`) through the whole product (control plane +
//! real Envoy + the built filter), with a shadow service run by the test that records what it
//! receives. As ingress-nginx's mirror: the client gets the backend's answer; the shadow gets a copy
//! with the request's method, path (as sent upstream) and body and `Host` the target's host (or
//! `mirror-host`); a shadow that is slow, fails or is not there never delays or changes the
//! client's answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use wasm_ingress_tests::backend::{Echo, EchoBackend};
use wasm_ingress_tests::gateway::{manifests, wait_until, Gateway};

const NGINX: &str = "nginx.ingress.kubernetes.io/";

/// One copy the shadow received: (method, path and query, Host, body).
type Copy = (String, String, String, String);

/// Records every request; `/hold…` is answered only once the test releases it, `/fail…` gets 500.
struct Shadow {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Copy>>>,
    release: Arc<tokio::sync::Notify>,
    _runtime: tokio::runtime::Runtime,
}

impl Shadow {
    fn spawn(ip: Ipv4Addr) -> Shadow {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind(SocketAddr::from((ip, 0)))).unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen, release) = (Arc::new(Mutex::new(Vec::new())), Arc::new(tokio::sync::Notify::new()));
        let (recorder, gate) = (Arc::clone(&seen), Arc::clone(&release));
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (recorder, gate) = (Arc::clone(&recorder), Arc::clone(&gate));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |r| record(Arc::clone(&recorder), Arc::clone(&gate), r));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Shadow { addr, seen, release, _runtime: runtime }
    }

    fn copies(&self) -> Vec<Copy> {
        self.seen.lock().unwrap().clone()
    }

    /// The copy of the request to `path`, waiting for it to arrive.
    fn copy_of(&self, path: &str) -> Copy {
        let mut found = None;
        wait_until(Duration::from_secs(10), || {
            found = self.copies().into_iter().find(|c| c.1 == path);
            Ok(found.is_some())
        })
        .unwrap_or_else(|_| panic!("no copy of {path} reached the shadow: {:?}", self.copies()));
        found.unwrap()
    }
}

async fn record(
    seen: Arc<Mutex<Vec<Copy>>>,
    release: Arc<tokio::sync::Notify>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| String::from_utf8_lossy(&b.to_bytes()).to_string()).unwrap_or_default();
    let host = parts.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default().to_string();
    let path = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    seen.lock().unwrap().push((parts.method.to_string(), path.clone(), host, body));
    if path.starts_with("/hold") {
        release.notified().await;
    }
    let status = if path.starts_with("/fail") { 500 } else { 200 };
    Ok(Response::builder().status(status).body(Full::new(Bytes::from_static(b"shadow\n"))).unwrap())
}

fn ingress(name: &str, host: &str, annotations: &[(&str, String)]) -> Value {
    let map: serde_json::Map<String, Value> = annotations.iter().map(|(k, v)| (format!("{NGINX}{k}"), json!(v))).collect();
    manifests::ingress("default", name, Value::Object(map), &[(host, vec![manifests::path("/", "Prefix", "app", json!(80))])])
}

/// (status, which backend answered) for one request, within 10 s.
fn send(gateway: &Gateway, method: &str, host: &str, path: &str, body: &str) -> (u16, Option<String>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .resolve(host, SocketAddr::from(([127, 0, 0, 1], 0)))
            .build()
            .unwrap();
        let request = client.request(method.parse().unwrap(), gateway.http_url(host, path)).body(body.to_string());
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, Echo::parse(&response.bytes().await.unwrap()).ok().map(|echo| echo.backend))
    })
}

#[test]
fn requests_are_mirrored_like_ingress_nginx_without_the_client_waiting() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 151)).unwrap();
    let shadow = Shadow::spawn(Ipv4Addr::new(127, 0, 0, 152));
    let target = format!("http://{}$request_uri", shadow.addr);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([
        ingress("mirrored", "mirror.test", &[("mirror-target", target.clone())]),
        ingress("named", "named.test", &[("mirror-target", target), ("mirror-host", "shadow.example".into())]),
        // Nothing listens on port 1.
        ingress("lost", "lost.test", &[("mirror-target", "http://127.0.0.1:1$request_uri".into())]),
        ingress("plain", "plain.test", &[]),
        manifests::ingress(
            "default",
            "rewritten",
            json!({ format!("{NGINX}mirror-target"): format!("http://{}$request_uri", shadow.addr), format!("{NGINX}rewrite-target"): "/new" }),
            &[("rewrite.test", vec![manifests::path("/old", "Prefix", "app", json!(80))])],
        ),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let app_answer = (200, Some("app".to_string()));

    // The client gets the backend; the shadow a copy: same method, path and query, Host the
    // target's host (ingress-nginx's default for mirror-host).
    assert_eq!(send(&gateway, "GET", "mirror.test", "/some/page?q=1", ""), app_answer);
    let ip = shadow.addr.ip().to_string();
    assert_eq!(shadow.copy_of("/some/page?q=1"), ("GET".into(), "/some/page?q=1".into(), ip.clone(), String::new()));
    // The body too (mirror-request-body defaults to on).
    assert_eq!(send(&gateway, "POST", "mirror.test", "/form", "name=value"), app_answer);
    assert_eq!(shadow.copy_of("/form"), ("POST".into(), "/form".into(), ip, "name=value".into()));
    // mirror-host.
    assert_eq!(send(&gateway, "GET", "named.test", "/named", ""), app_answer);
    assert_eq!(shadow.copy_of("/named").2, "shadow.example");

    // The copy carries the path as sent upstream, after rewrite-target (differs from nginx's
    // $request_uri, the client's original).
    assert_eq!(send(&gateway, "GET", "rewrite.test", "/old", ""), app_answer);
    shadow.copy_of("/new");

    // A shadow that fails, or holds its answer, changes nothing for the client: the client's
    // answer comes while the shadow still holds the copy of its request.
    assert_eq!(send(&gateway, "GET", "mirror.test", "/fail", ""), app_answer);
    assert_eq!(send(&gateway, "GET", "mirror.test", "/hold", ""), app_answer);
    shadow.copy_of("/hold");
    shadow.release.notify_waiters();
    // A mirror that cannot be reached: the same.
    assert_eq!(send(&gateway, "GET", "lost.test", "/", ""), app_answer);
    // Other Ingresses are not mirrored.
    assert_eq!(send(&gateway, "GET", "plain.test", "/not-mirrored", ""), app_answer);
    assert_eq!(send(&gateway, "GET", "mirror.test", "/last", ""), app_answer);
    shadow.copy_of("/last");
    assert!(!shadow.copies().iter().any(|c| c.1 == "/not-mirrored"), "{:?}", shadow.copies());
}
