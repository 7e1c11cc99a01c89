//! Endpoint choice by ingress-nginx annotation through the whole product (control plane + real
//! Envoy + the built filter), against a Service with two echo backends, with cases after
//! ingress-nginx's e2e tests `test/e2e/annotations/{affinity,upstreamhashby}.go`:
//! - `affinity: cookie`: a request without the cookie gets `Set-Cookie: SERVERID=…; Path=/…;
//!   HttpOnly` (not `Secure` over plain HTTP), and every request carrying it reaches the same
//!   backend;
//! - `upstream-hash-by: $arg_tenant`: one tenant always reaches one backend, and the tenants spread
//!   over both;
//! - `load-balance: ewma` is served (Envoy's least-request);
//! - `session-cookie-samesite: None` with `session-cookie-conditional-samesite-none`: the sticky
//!   cookie carries `SameSite=None`, except for a user agent ingress-nginx's list says mishandles
//!   it (an old Chrome, iOS 12), which gets it without `SameSite`;
//! - `upstream-hash-by-subset` (size 3) against six backends: one URI reaches exactly three of
//!   them, as ingress-nginx's "should connect to the same subset of pods", and different URIs
//!   reach both subsets; a client's own subset header changes nothing.
//! - `session-cookie-change-on-failure`: when the sticky endpoint goes down, `"true"` sets the
//!   cookie again for the endpoint that answered, `"false"` keeps it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Value};
use wasm_ingress_tests::backend::{Echo, EchoBackend};
use wasm_ingress_tests::gateway::{manifests, Gateway};

const NGINX: &str = "nginx.ingress.kubernetes.io/";

fn ingress(name: &str, annotations: &[(&str, &str)], host: &str, path: &str) -> Value {
    let annotations: serde_json::Map<String, Value> = annotations.iter().map(|(k, v)| (format!("{NGINX}{k}"), json!(v))).collect();
    manifests::ingress("default", name, Value::Object(annotations), &[(host, vec![manifests::path(path, "Prefix", "pool", json!(80))])])
}

struct Client {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    port: u16,
}

impl Client {
    /// GET `target` on `host` with an optional Cookie: (backend, Set-Cookie).
    fn get(&self, host: &str, target: &str, cookie: Option<&str>) -> (String, Option<String>) {
        self.runtime.block_on(async {
            let mut request = self.client.get(format!("http://{host}:{}{target}", self.port));
            if let Some(cookie) = cookie {
                request = request.header("Cookie", cookie);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200, "{host}{target}");
            let set_cookie = response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
            (Echo::parse(&response.bytes().await.unwrap()).unwrap().backend, set_cookie)
        })
    }
}

#[test]
fn affinity_and_hashing_behave_like_ingress_nginx() {
    let one = EchoBackend::spawn("one", Ipv4Addr::new(127, 0, 0, 141)).unwrap();
    let two = EchoBackend::spawn("two", Ipv4Addr::new(127, 0, 0, 142)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "pool", &[("http", 80)], &[&one, &two]);
    objects.extend([
        ingress("sticky", &[("affinity", "cookie"), ("session-cookie-name", "SERVERID")], "sticky.test", "/app"),
        ingress("hashed", &[("upstream-hash-by", "$arg_tenant")], "hashed.test", "/"),
        ingress("ewma", &[("load-balance", "ewma")], "ewma.test", "/"),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    for host in ["sticky.test", "hashed.test", "ewma.test"] {
        builder = builder.resolve(host, SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    let client = Client { runtime, client: builder.build().unwrap(), port: gateway.http.port() };

    // Sticky cookie: set when missing, with the route's path; then every request sticks.
    let (first, set_cookie) = client.get("sticky.test", "/app/x", None);
    let set_cookie = set_cookie.expect("a sticky cookie");
    assert!(set_cookie.starts_with("SERVERID="), "{set_cookie}");
    assert!(set_cookie.contains("Path=/app") && set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure") && !set_cookie.contains("Max-Age"), "a session cookie, not Secure over HTTP: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    // affinitymode.go's client cuts the pair at every `=`: the value carries none (Envoy's base64
    // padding comes off with the mark and goes back on the way in).
    assert_eq!(cookie.matches('=').count(), 1, "{cookie}");
    for _ in 0..20 {
        let (backend, again) = client.get("sticky.test", "/app/x", Some(&cookie));
        assert_eq!(backend, first, "a request with the cookie sticks");
        assert_eq!(again, None, "the cookie is not set again");
    }
    // The cookie names the backend after a `|`, as ingress-nginx's; the upstream gets it without.
    let (endpoint_part, _) = cookie.split_once('|').expect("the backend part");
    let envoys = format!("{endpoint_part}\"");
    // HTTP/1.1 clients may send it in a second Cookie header: it sticks just the same.
    for _ in 0..10 {
        let echo = client.runtime.block_on(async {
            let request = client.client.get(format!("http://sticky.test:{}/app/x", client.port)).header("cookie", "a=1").header("cookie", cookie.as_str());
            let response = request.send().await.unwrap();
            Echo::parse(&response.bytes().await.unwrap()).unwrap()
        });
        assert_eq!(echo.backend, first, "the sticky cookie in the second Cookie header");
        let upstream = &echo.headers["cookie"];
        assert!(upstream.contains("a=1") && upstream.contains(&envoys) && !upstream.contains('|'), "upstream got {upstream:?}, sent {cookie}");
    }

    // upstream-hash-by: a tenant sticks to one backend; tenants spread over both.
    let mut seen = BTreeSet::new();
    for tenant in 0..20 {
        let target = format!("/?tenant=t{tenant}");
        let (backend, _) = client.get("hashed.test", &target, None);
        for _ in 0..3 {
            assert_eq!(client.get("hashed.test", &target, None).0, backend, "tenant t{tenant}");
        }
        seen.insert(backend);
    }
    assert_eq!(seen.len(), 2, "20 tenants all hashed to one backend: {seen:?}");

    assert!(["one", "two"].contains(&client.get("ewma.test", "/", None).0.as_str()));
}

#[test]
fn samesite_none_is_conditional_on_the_user_agent_like_ingress_nginx() {
    let one = EchoBackend::spawn("one", Ipv4Addr::new(127, 0, 0, 146)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "pool", &[("http", 80)], &[&one]);
    let sticky = [("affinity", "cookie"), ("session-cookie-name", "route"), ("session-cookie-samesite", "None")];
    objects.extend([
        ingress("conditional", &[sticky[0], sticky[1], sticky[2], ("session-cookie-conditional-samesite-none", "true")], "conditional.test", "/"),
        ingress("always", &sticky, "always.test", "/"),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let set_cookie = |host: &str, agent: &str| {
        runtime.block_on(async {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).resolve(host, SocketAddr::from(([127, 0, 0, 1], 0))).build().unwrap();
            let response = client.get(format!("http://{host}:{}/", gateway.http.port())).header("user-agent", agent).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string()).expect("a sticky cookie")
        })
    };
    const OLD_CHROME: &str = "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36";
    const IOS_12: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1";
    const NEW_CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    let cases = [
        ("conditional.test", NEW_CHROME, true),
        ("conditional.test", OLD_CHROME, false),
        ("conditional.test", IOS_12, false),
        ("always.test", OLD_CHROME, true),
    ];
    for (host, agent, samesite) in cases {
        let cookie = set_cookie(host, agent);
        assert!(cookie.starts_with("route=") && cookie.contains("HttpOnly"), "{cookie}");
        assert_eq!(cookie.contains("SameSite=None"), samesite, "{host} for {agent}: {cookie}");
    }
}

#[test]
fn hash_subsets_spread_one_key_over_one_subset_like_ingress_nginx() {
    let backends: Vec<EchoBackend> = (0..6u8).map(|i| EchoBackend::spawn(&format!("pod{i}"), Ipv4Addr::new(127, 0, 0, 181 + i)).unwrap()).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "pool", &[("http", 80)], &backends.iter().collect::<Vec<_>>());
    let subset = [("upstream-hash-by", "$request_uri"), ("upstream-hash-by-subset", "true"), ("upstream-hash-by-subset-size", "3")];
    objects.push(ingress("subset", &subset, "subset.test", "/"));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(10)).resolve("subset.test", SocketAddr::from(([127, 0, 0, 1], 0)));
    let client = Client { runtime, client: builder.build().unwrap(), port: gateway.http.port() };

    // ingress-nginx's e2e: 100 requests for one URI reach exactly subset-size pods.
    let pods = |target: &str| (0..100).map(|_| client.get("subset.test", target, None).0).collect::<BTreeSet<_>>();
    let first = pods("/");
    assert_eq!(first.len(), 3, "one URI over one subset of three: {first:?}");

    // Other URIs land on one subset each; between them they reach both subsets (all six pods).
    let mut all = BTreeSet::new();
    for i in 0..16 {
        let target = format!("/item/{i}");
        let reached = pods(&target);
        assert_eq!(reached.len(), 3, "{target}: {reached:?}");
        all.extend(reached);
    }
    assert_eq!(all.len(), 6, "16 URIs all on one subset: {all:?}");

    // A client cannot pick a subset: its own header is dropped before the filter runs.
    let spoofed = client.runtime.block_on(async {
        let mut reached = BTreeSet::new();
        for slot in 0..60 {
            let response = client.client.get(format!("http://subset.test:{}/", client.port)).header("x-wasm-ingress-subset", (slot % 128).to_string()).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            reached.insert(Echo::parse(&response.bytes().await.unwrap()).unwrap().backend);
        }
        reached
    });
    assert!(spoofed.is_subset(&first), "a client-sent slot moved / to {spoofed:?}, its subset is {first:?}");
}

/// `affinity-mode: persistent`, after ingress-nginx's `affinitymode.go` "Check persistent
/// affinity mode": a client with the sticky cookie stays on its endpoint while endpoints are
/// added one by one (a consistent-hash ring would move some clients); with no endpoint left it
/// gets 503; with brand-new ones it reaches one of them and gets a new cookie.
#[test]
fn persistent_affinity_keeps_a_client_on_its_endpoint_while_endpoints_are_added() {
    use wasm_ingress_tests::gateway::wait_until;
    let dir = tempfile::tempdir().unwrap();
    let spawn = |octet: u8| EchoBackend::spawn(&format!("pod{octet}"), Ipv4Addr::new(127, 0, 0, octet)).unwrap();
    let sticky = [
        ("affinity", "cookie"),
        ("session-cookie-name", "hello-cookie"),
        ("session-cookie-expires", "172800"),
        ("session-cookie-max-age", "172800"),
        ("affinity-mode", "persistent"),
    ];
    let write = |backends: &[EchoBackend]| {
        let mut objects = manifests::service("default", "pool", &[("http", 80)], &backends.iter().collect::<Vec<_>>());
        objects.push(ingress("persistent", &sticky, "persistent.test", "/"));
        manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    };
    let mut backends: Vec<EchoBackend> = (201..=202).map(spawn).collect();
    write(&backends);
    let gateway = Gateway::start(dir.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).resolve("persistent.test", SocketAddr::from(([127, 0, 0, 1], 0))).build().unwrap();
    let url = format!("http://persistent.test:{}/", gateway.http.port());
    // (status, backend, Set-Cookie)
    let get = |cookie: Option<&str>| {
        runtime.block_on(async {
            let mut request = http.get(&url);
            if let Some(cookie) = cookie {
                request = request.header("Cookie", cookie);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let set_cookie = response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
            (status, Echo::parse(&response.bytes().await.unwrap()).map(|e| e.backend).unwrap_or_default(), set_cookie)
        })
    };
    // affinity.go's "should set cookie with expires": Expires 48 h ahead (to the minute, in
    // nginx's cookie_time form) and the Max-Age.
    let in_48h = || {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        wasm_ingress_filter::affinity::cookie_time(now + 172_800)[..20].to_string()
    };
    let before = in_48h();
    let (status, first, set_cookie) = get(None);
    let after = in_48h();
    assert_eq!(status, 200);
    let set_cookie = set_cookie.expect("a sticky cookie");
    assert!(set_cookie.starts_with("hello-cookie=") && set_cookie.contains("Max-Age=172800") && set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains(&format!("Expires={before}")) || set_cookie.contains(&format!("Expires={after}")), "{set_cookie} expires at {after}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    for octet in 203..=207 {
        backends.push(spawn(octet));
        write(&backends);
        // The new endpoint serves clients without the cookie.
        let newest = format!("pod{octet}");
        wait_until(Duration::from_secs(20), || Ok(get(None).1 == newest)).unwrap_or_else(|_| panic!("{newest} never served"));
        for _ in 0..5 {
            let (status, backend, again) = get(Some(&cookie));
            assert_eq!((status, backend.as_str()), (200, first.as_str()), "after {newest} was added");
            assert_eq!(again, None, "the cookie is not set again while its endpoint serves");
        }
    }
    // No endpoint: 503.
    backends.clear();
    write(&backends);
    wait_until(Duration::from_secs(20), || Ok(get(Some(&cookie)).0 == 503)).expect("503 without endpoints");
    // Brand-new endpoints: one of them answers and the cookie is set again for it.
    backends = (208..=209).map(spawn).collect();
    write(&backends);
    wait_until(Duration::from_secs(20), || Ok(get(Some(&cookie)).0 == 200)).expect("served again");
    let (status, backend, again) = get(Some(&cookie));
    assert_eq!(status, 200);
    assert!(["pod208", "pod209"].contains(&backend.as_str()), "{backend}");
    let again = again.expect("a new cookie for the new endpoint");
    let renewed = again.split(';').next().unwrap().to_string();
    assert_ne!(renewed, cookie);
    for _ in 0..5 {
        assert_eq!(get(Some(&renewed)).1, backend, "the new cookie sticks");
    }
}

/// `session-cookie-change-on-failure`, after ingress-nginx's `sticky.lua`: once the sticky
/// endpoint refuses connections, a request carrying its cookie is answered by the other endpoint
/// and, with `"true"`, the cookie is set again for that one, which the client then stays on
/// (balanced mode here). With `"false"` (the default) the cookie is kept, and the request is
/// answered there too or, when Envoy's ring offers no other endpoint within its host-selection
/// attempts, 502 (nginx's answer: it tries the sticky endpoint again).
#[test]
fn session_cookie_change_on_failure_moves_the_client_to_the_endpoint_that_answered() {
    let mut backends = vec![
        EchoBackend::spawn("pod211", Ipv4Addr::new(127, 0, 0, 211)).unwrap(),
        EchoBackend::spawn("pod212", Ipv4Addr::new(127, 0, 0, 212)).unwrap(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "pool", &[("http", 80)], &backends.iter().collect::<Vec<_>>());
    let sticky = |change: &'static str| [("affinity", "cookie"), ("affinity-mode", "balanced"), ("session-cookie-change-on-failure", change)];
    objects.push(ingress("moves", &sticky("true"), "moves.test", "/"));
    objects.push(ingress("stays", &sticky("false"), "stays.test", "/"));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let port = gateway.http.port();
    // (status, backend, Set-Cookie's name=value)
    let get = |host: &str, cookie: Option<&str>| {
        runtime.block_on(async {
            let mut request = http.get(format!("http://127.0.0.1:{port}/")).header("Host", host);
            if let Some(cookie) = cookie {
                request = request.header("Cookie", cookie);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let set_cookie = response.headers().get("set-cookie").map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
            (status, Echo::parse(&response.bytes().await.unwrap()).map(|e| e.backend).unwrap_or_default(), set_cookie)
        })
    };
    let (status, sticky_backend, moves_cookie) = get("moves.test", None);
    assert_eq!(status, 200);
    let moves_cookie = moves_cookie.expect("a sticky cookie");
    for _ in 0..3 {
        assert_eq!(get("moves.test", Some(&moves_cookie)), (200, sticky_backend.clone(), None));
    }
    // A balanced cookie of `stays.test` on the same endpoint: its hash part chosen, its backend
    // part the one the controller sets.
    let (_, _, issued) = get("stays.test", None);
    let backend_part = issued.expect("a sticky cookie").split_once('|').expect("hash|backend").1.to_string();
    let stays_cookie = (0..64)
        .map(|k| format!("INGRESSCOOKIE=key{k}|{backend_part}"))
        .find(|cookie| get("stays.test", Some(cookie)).1 == sticky_backend)
        .expect("a hash key on the sticky endpoint");
    assert_eq!(get("stays.test", Some(&stays_cookie)), (200, sticky_backend.clone(), None));

    // The sticky endpoint goes down; it is still listed, so its connections are refused.
    backends.retain(|backend| backend.name != sticky_backend);
    let other = backends[0].name.clone();
    let mut answered = None;
    for _ in 0..50 {
        match get("moves.test", Some(&moves_cookie)) {
            (200, backend, set_cookie) => {
                answered = Some((backend, set_cookie));
                break;
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let (backend, renewed) = answered.expect("answered once the sticky endpoint is down");
    assert_eq!(backend, other);
    let renewed = renewed.expect("with \"true\" the cookie is set again for the endpoint that answered");
    assert_ne!(renewed, moves_cookie);
    for _ in 0..3 {
        assert_eq!(get("moves.test", Some(&renewed)), (200, other.clone(), None), "the client stays where it was moved");
    }
    // With "false" the cookie is kept. The retry goes to another endpoint when Envoy's ring,
    // walked from the cookie's place at most three times, offers one; else the answer is
    // nginx's for this case, 502 (it tries the sticky endpoint again).
    let (status, backend, set_cookie) = get("stays.test", Some(&stays_cookie));
    assert_eq!(set_cookie, None, "with \"false\" the cookie is kept");
    assert!(matches!((status, backend.as_str()), (200, b) if b == other) || status == 502, "{status} {backend}");
}
