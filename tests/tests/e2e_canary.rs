//! Canary Ingresses through the whole product (control plane + real Envoy + the built filter),
//! with the cases of ingress-nginx's e2e test `test/e2e/annotations/canary.go`: a main Ingress
//! `/info` on a host, a canary Ingress for the same host and path sending to another Service, and a
//! real client asking which backend answered:
//! - `canary-by-header`: `always` -> canary, `never` / other / none -> main;
//! - `-by-header-value`: that value -> canary, `always` means nothing; `-pattern` likewise;
//! - `-by-cookie`: `always` / `never`, header before cookie;
//! - `canary-weight`: 100 -> all canary, 50 -> both get a fair share (400 requests);
//! - a canary without a main Ingress serves nothing (404); a main Service without endpoints answers
//!   503, the canary's requests too (ingress-nginx's balancer.lua has no balancer for it);
//! - the canary joins the main's Service everywhere it is used (ingress-nginx's per-upstream quirk);
//! - with `affinity: cookie` on the main Ingress (canary.go's "canary affinity behavior"): a client
//!   whose sticky cookie came from the canary stays on it (default and `sticky`), one whose cookie
//!   came from the main backend stays there even when it sends the canary header (ingress-nginx's
//!   quirk), and with `legacy` the canary sets no cookie and the weight alone decides.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Value};
use wasm_ingress_tests::backend::{Echo, EchoBackend};
use wasm_ingress_tests::gateway::{manifests, Gateway};

const NGINX: &str = "nginx.ingress.kubernetes.io/";

fn ingress(name: &str, annotations: &[(&str, &str)], host: &str, service: &str) -> Value {
    let annotations: serde_json::Map<String, Value> =
        annotations.iter().map(|(k, v)| (format!("{NGINX}{k}"), json!(v))).collect();
    let paths = vec![manifests::path("/info", "Prefix", service, json!(80))];
    manifests::ingress("default", name, Value::Object(annotations), &[(host, paths)])
}

/// The hosts of the test, each with its own main Service (a canary joins a main *Service*) and the
/// canary Ingress's annotations (`None`: no canary Ingress).
type Annotations = &'static [(&'static str, &'static str)];
const HOSTS: &[(&str, Option<Annotations>)] = &[
    ("header.test", Some(&[("canary-by-header", "CanaryByHeader")])),
    ("value.test", Some(&[("canary-by-header", "CanaryByHeader"), ("canary-by-header-value", "DoCanary")])),
    ("pattern.test", Some(&[("canary-by-header", "CanaryByHeader"), ("canary-by-header-pattern", "^Do[A-Z][a-z]+y$")])),
    ("cookie.test", Some(&[("canary-by-header", "CanaryByHeader"), ("canary-by-cookie", "Canary-By-Cookie")])),
    ("all.test", Some(&[("canary-weight", "100")])),
    ("half.test", Some(&[("canary-weight", "50")])),
    // ingress-nginx validates values with its BasicCharsRegex: a version string works.
    ("version.test", Some(&[("canary-by-header", "X-Version"), ("canary-by-header-value", "v1.2")])),
];

struct Client {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    gateway: SocketAddr,
}

impl Client {
    fn new(gateway: SocketAddr, hosts: &[&str]) -> Client {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
        for host in hosts {
            builder = builder.resolve(host, SocketAddr::from(([127, 0, 0, 1], 0)));
        }
        Client { runtime, client: builder.build().unwrap(), gateway }
    }

    /// GET `path` on `host` with extra headers: the status and which backend answered ("" if none).
    fn which(&self, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        self.runtime.block_on(async {
            let mut request = self.client.get(format!("http://{host}:{}{path}", self.gateway.port()));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let echo = Echo::parse(&response.bytes().await.unwrap()).ok();
            (status, echo.map(|e| e.backend).unwrap_or_default())
        })
    }
}

#[test]
fn canary_ingresses_behave_like_ingress_nginx() {
    let main = EchoBackend::spawn("main", Ipv4Addr::new(127, 0, 0, 121)).unwrap();
    let canary = EchoBackend::spawn("canary", Ipv4Addr::new(127, 0, 0, 122)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "canary-svc", &[("http", 80)], &[&canary]);
    for (i, (host, annotations)) in HOSTS.iter().enumerate() {
        let service = format!("main-{i}");
        objects.extend(manifests::service("default", &service, &[("http", 80)], &[&main]));
        objects.push(ingress(&format!("main-{i}"), &[], host, &service));
        if let Some(extra) = annotations {
            let mut annotations = vec![("canary", "true")];
            annotations.extend_from_slice(extra);
            objects.push(ingress(&format!("main-{i}-canary"), &annotations, host, "canary-svc"));
        }
    }
    // The header canary's main Service also serves another host: the canary joins it there too.
    objects.push(manifests::ingress(
        "default",
        "elsewhere",
        json!({}),
        &[("elsewhere.test", vec![manifests::path("/other", "Prefix", "main-0", json!(80))])],
    ));
    // A canary with no main Ingress.
    objects.push(ingress("lonely-canary", &[("canary", "true"), ("canary-by-header", "CanaryByHeader")], "lonely.test", "canary-svc"));
    // A canary scaled to zero: ingress-nginx has no balancer for it, the main backend answers.
    objects.extend(manifests::service("default", "scaled-to-zero", &[("http", 80)], &[]));
    objects.extend(manifests::service("default", "main-idle", &[("http", 80)], &[&main]));
    objects.push(ingress("idle", &[], "idle.test", "main-idle"));
    objects.push(ingress("idle-canary", &[("canary", "true"), ("canary-weight", "100")], "idle.test", "scaled-to-zero"));
    // A main Service without endpoints: no balancer in ingress-nginx, and its canary hangs off it.
    objects.push(ingress("down", &[], "down.test", "scaled-to-zero"));
    objects.push(ingress("down-canary", &[("canary", "true"), ("canary-by-header", "CanaryByHeader"), ("canary-weight", "100")], "down.test", "canary-svc"));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let mut hosts: Vec<&str> = HOSTS.iter().map(|(h, _)| *h).collect();
    hosts.extend(["elsewhere.test", "lonely.test", "idle.test", "down.test"]);
    let client = Client::new(gateway.http, &hosts);

    let served = |backend: &str| (200, backend.to_string());
    // (what, host, path, headers, expected)
    type Case<'c> = (&'c str, &'c str, &'c str, &'c [(&'c str, &'c str)], (u16, String));
    let cases: &[Case<'_>] = &[
        ("no header", "header.test", "/info", &[], served("main")),
        ("always", "header.test", "/info", &[("CanaryByHeader", "always")], served("canary")),
        ("never", "header.test", "/info", &[("CanaryByHeader", "never")], served("main")),
        ("other value", "header.test", "/info", &[("CanaryByHeader", "badheadervalue")], served("main")),
        ("the header name in any case", "header.test", "/info", &[("canarybyheader", "always")], served("canary")),
        ("the same Service on another host", "elsewhere.test", "/other", &[("CanaryByHeader", "always")], served("canary")),
        ("...and without the header", "elsewhere.test", "/other", &[], served("main")),
        ("value", "value.test", "/info", &[("CanaryByHeader", "DoCanary")], served("canary")),
        ("value: always means nothing", "value.test", "/info", &[("CanaryByHeader", "always")], served("main")),
        ("value: another value", "value.test", "/info", &[("CanaryByHeader", "otherheadervalue")], served("main")),
        ("pattern", "pattern.test", "/info", &[("CanaryByHeader", "DoCanary")], served("canary")),
        ("pattern is case-sensitive", "pattern.test", "/info", &[("CanaryByHeader", "Docanary")], served("main")),
        ("cookie always", "cookie.test", "/info", &[("Cookie", "a=1; Canary-By-Cookie=always")], served("canary")),
        ("cookie never", "cookie.test", "/info", &[("Cookie", "Canary-By-Cookie=never")], served("main")),
        ("cookie bad value", "cookie.test", "/info", &[("Cookie", "Canary-By-Cookie=badcookievalue")], served("main")),
        ("header never beats cookie always", "cookie.test", "/info", &[("CanaryByHeader", "never"), ("Cookie", "Canary-By-Cookie=always")], served("main")),
        ("other header value, cookie always", "cookie.test", "/info", &[("CanaryByHeader", "x"), ("Cookie", "Canary-By-Cookie=always")], served("canary")),
        ("weight 100", "all.test", "/info", &[], served("canary")),
        ("weight 100 to a canary without endpoints", "idle.test", "/info", &[], served("main")),
        ("a dotted value", "version.test", "/info", &[("X-Version", "v1.2")], served("canary")),
        ("another version", "version.test", "/info", &[("X-Version", "v1.3")], served("main")),
        ("weight 100, header never is not a rule here", "all.test", "/info", &[("CanaryByHeader", "never")], served("canary")),
        ("canary without a main Ingress", "lonely.test", "/info", &[("CanaryByHeader", "always")], (404, String::new())),
        ("a main Service without endpoints, weight 100", "down.test", "/info", &[], (503, String::new())),
        ("...and header always", "down.test", "/info", &[("CanaryByHeader", "always")], (503, String::new())),
    ];
    for (what, host, path, headers, expected) in cases {
        assert_eq!(&client.which(host, path, headers), expected, "{what}: {host}{path} {headers:?}");
    }

    // Weight 50: ingress-nginx's e2e test wants each side to get at least 40% of 200 requests;
    // over 400 requests at least 35% each (a fair coin fails that about once in a billion runs).
    let canary_share = (0..400).filter(|_| client.which("half.test", "/info", &[]) == served("canary")).count();
    assert!((140..=260).contains(&canary_share), "canary got {canary_share} of 400");
}

/// GET `/info` on `host`: (backend, the `aff` cookie set, as `aff=value`).
fn sticky_get(client: &Client, host: &str, headers: &[(&str, &str)]) -> (String, Option<String>) {
    client.runtime.block_on(async {
        let mut request = client.client.get(format!("http://{host}:{}/info", client.gateway.port()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{host}");
        let cookie = response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).find(|c| c.starts_with("aff="));
        let cookie = cookie.map(|c| c.split(';').next().unwrap().to_string());
        (Echo::parse(&response.bytes().await.unwrap()).unwrap().backend, cookie)
    })
}

#[test]
fn a_sticky_cookie_keeps_a_client_on_main_or_canary_like_ingress_nginx() {
    let main = EchoBackend::spawn("main", Ipv4Addr::new(127, 0, 0, 191)).unwrap();
    let canary = EchoBackend::spawn("canary", Ipv4Addr::new(127, 0, 0, 192)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "canary-svc", &[("http", 80)], &[&canary]);
    let sticky = [("affinity", "cookie"), ("session-cookie-name", "aff")];
    let forced = [("canary", "true"), ("canary-by-header", "ForceCanary"), ("canary-by-header-value", "yes"), ("canary-weight", "1")];
    let cases: [(&str, Vec<(&str, &str)>); 3] = [
        ("default.test", forced.to_vec()),
        ("sticky.test", [&forced[..], &[("affinity-canary-behavior", "sticky")]].concat()),
        ("legacy.test", vec![("canary", "true"), ("canary-by-header", "ForceCanary"), ("canary-by-header-value", "yes"), ("canary-weight", "50"), ("affinity-canary-behavior", "legacy")]),
    ];
    for (i, (host, canary_annotations)) in cases.iter().enumerate() {
        let service = format!("main-{i}");
        objects.extend(manifests::service("default", &service, &[("http", 80)], &[&main]));
        objects.push(ingress(&format!("main-{i}"), &sticky, host, &service));
        objects.push(ingress(&format!("canary-{i}"), canary_annotations, host, "canary-svc"));
    }
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let client = Client::new(gateway.http, &["default.test", "sticky.test", "legacy.test"]);

    for host in ["default.test", "sticky.test"] {
        // The canary header sends the first request to the canary, which sets the sticky cookie;
        // that cookie alone keeps the next 50 there (weight 1 would send nearly all to main).
        let (backend, cookie) = sticky_get(&client, host, &[("ForceCanary", "yes")]);
        assert_eq!(backend, "canary", "{host}");
        let cookie = cookie.unwrap_or_else(|| panic!("{host}: the canary sets the sticky cookie"));
        for _ in 0..50 {
            assert_eq!(sticky_get(&client, host, &[("Cookie", &cookie)]).0, "canary", "{host} with {cookie}");
        }
        // A client whose cookie came from the main backend stays there, the canary header
        // included (ingress-nginx checks the main backend's affinity first).
        let main_cookie = (0..20)
            .map(|_| sticky_get(&client, host, &[]))
            .find_map(|(backend, cookie)| if backend == "main" { cookie } else { None })
            .unwrap_or_else(|| panic!("{host}: no cookie from main in 20 requests at weight 1"));
        for _ in 0..20 {
            assert_eq!(sticky_get(&client, host, &[("Cookie", &main_cookie), ("ForceCanary", "yes")]).0, "main", "{host} with {main_cookie}");
        }
    }

    // legacy: the canary answers the forced request without a sticky cookie, and cookieless
    // requests split by the weight (ingress-nginx: each backend at least 40 % of 200).
    let (backend, cookie) = sticky_get(&client, "legacy.test", &[("ForceCanary", "yes")]);
    assert_eq!((backend.as_str(), cookie), ("canary", None), "legacy: no affinity cookie from the canary");
    let canary_share = (0..200).filter(|_| sticky_get(&client, "legacy.test", &[]).0 == "canary").count();
    assert!((70..=130).contains(&canary_share), "legacy at weight 50: {canary_share} of 200 to the canary (ingress-nginx asks 80 or more each way; 4 standard deviations here)");
}
