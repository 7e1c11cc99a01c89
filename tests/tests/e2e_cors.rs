//! CORS by ingress-nginx annotation through the whole product (control plane + real Envoy + the
//! built filter), with the cases of ingress-nginx's e2e test `test/e2e/annotations/cors.go` and its
//! template: `*` answers every request (with or without `Origin`) and every `OPTIONS` (204, not
//! proxied); a list echoes an allowed `Origin` (any case, ports exact, `*.` one label) and leaves
//! other origins' requests alone (proxied, no CORS headers, their `OPTIONS` too). The CORS block
//! comes before the location's redirects (`ssl-redirect`, `permanent-redirect`), as in the template.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Value};
use wasm_ingress_tests::backend::{Echo, EchoBackend};
use wasm_ingress_tests::gateway::{manifests, Gateway};

const NGINX: &str = "nginx.ingress.kubernetes.io/";

fn ingress(name: &str, annotations: &[(&str, &str)], host: &str) -> Value {
    let mut map: serde_json::Map<String, Value> = annotations.iter().map(|(k, v)| (format!("{NGINX}{k}"), json!(v))).collect();
    map.insert(format!("{NGINX}enable-cors"), json!("true"));
    manifests::ingress("default", name, Value::Object(map), &[(host, vec![manifests::path("/", "Prefix", "app", json!(80))])])
}

/// What a client saw (redirects not followed): status, the CORS headers, `Content-Type` and
/// `Location` (lower-case names), and whether the backend answered.
#[derive(Debug)]
struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    proxied: bool,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn send(gateway: &Gateway, method: &str, host: &str, origin: Option<&str>) -> Seen {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .resolve(host, SocketAddr::from(([127, 0, 0, 1], 0)))
            .build()
            .unwrap();
        let mut request = client.request(method.parse().unwrap(), gateway.http_url(host, "/"));
        if let Some(origin) = origin {
            request = request.header("Origin", origin).header("Access-Control-Request-Method", "POST");
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(k, _)| k.as_str().starts_with("access-control-") || k.as_str() == "content-type" || k.as_str() == "location")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let proxied = Echo::parse(&response.bytes().await.unwrap()).is_ok();
        Seen { status, headers, proxied }
    })
}

#[test]
fn cors_behaves_like_ingress_nginx() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 131)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([
        ingress("any", &[], "any.test"),
        ingress("list", &[("cors-allow-origin", "https://origin.cors.com:8080, http://*.origin.com")], "list.test"),
        ingress("tuned", &[("cors-allow-methods", "POST, GET"), ("cors-max-age", "200"), ("cors-allow-credentials", "false"), ("cors-expose-headers", "X-Custom")], "tuned.test"),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();

    // `*`: every request, with or without Origin.
    let get = send(&gateway, "GET", "any.test", None);
    assert_eq!((get.status, get.proxied), (200, true));
    assert_eq!(get.header("access-control-allow-origin"), Some("*"));
    assert_eq!(get.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(get.header("access-control-allow-methods"), Some("GET, PUT, POST, DELETE, PATCH, OPTIONS"));
    assert_eq!(
        get.header("access-control-allow-headers"),
        Some("DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization")
    );
    assert_eq!(get.header("access-control-max-age"), Some("1728000"));
    let preflight = send(&gateway, "OPTIONS", "any.test", Some("https://anywhere.example"));
    assert_eq!((preflight.status, preflight.proxied), (204, false), "{preflight:?}");
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    let bare_options = send(&gateway, "OPTIONS", "any.test", None);
    assert_eq!((bare_options.status, bare_options.proxied), (204, false), "any OPTIONS, as ingress-nginx");

    // A list: allowed origins are echoed, others get nothing and are proxied as usual.
    for (origin, allowed) in [
        ("https://origin.cors.com:8080", true),
        ("HTTPS://ORIGIN.CORS.COM:8080", true),
        ("https://origin.cors.com", false),
        ("http://abc.origin.com", true),
        ("http://a.b.origin.com", false),
        ("http://no.example", false),
    ] {
        let get = send(&gateway, "GET", "list.test", Some(origin));
        assert_eq!((get.status, get.proxied), (200, true), "{origin}");
        assert_eq!(get.header("access-control-allow-origin"), allowed.then_some(origin), "{origin}");
        let options = send(&gateway, "OPTIONS", "list.test", Some(origin));
        assert_eq!((options.status, options.proxied), if allowed { (204, false) } else { (200, true) }, "{origin}: {options:?}");
    }
    let no_origin = send(&gateway, "GET", "list.test", None);
    assert_eq!(no_origin.header("access-control-allow-origin"), None);

    // Tuned values.
    let tuned = send(&gateway, "GET", "tuned.test", Some("https://x.example"));
    assert_eq!(tuned.header("access-control-allow-methods"), Some("POST, GET"));
    assert_eq!(tuned.header("access-control-max-age"), Some("200"));
    assert_eq!(tuned.header("access-control-allow-credentials"), None);
    assert_eq!(tuned.header("access-control-expose-headers"), Some("X-Custom"));
}

/// ingress-nginx's template puts a location's CORS block before its `permanent-redirect` /
/// `temporal-redirect` `return` and before the upstream: an allowed preflight is answered 204
/// with the CORS headers, not redirected (nor answered 503 where the Service does not exist);
/// another request from an allowed origin gets the redirect (the 503) with the CORS headers;
/// other origins get the bare answer, their `OPTIONS` too.
#[test]
fn the_proxys_own_redirects_and_503s_answer_allowed_preflights_and_carry_cors_headers() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 133)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.push(ingress("moved", &[("cors-allow-origin", "https://app.example"), ("permanent-redirect", "https://new.example/")], "moved.test"));
    objects.push(ingress("later", &[("cors-allow-origin", "https://app.example"), ("temporal-redirect", "https://later.example/")], "later.test"));
    let mut gone = ingress("gone", &[("cors-allow-origin", "https://app.example")], "gone.test");
    gone["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = json!("missing");
    objects.push(gone);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();

    // (host, method, Origin) -> (status, Access-Control-Allow-Origin, Location)
    type Case<'a> = (&'a str, &'a str, &'a str, (u16, Option<&'a str>, Option<&'a str>));
    let cases: &[Case<'_>] = &[
        ("moved.test", "OPTIONS", "https://app.example", (204, Some("https://app.example"), None)),
        ("moved.test", "GET", "https://app.example", (301, Some("https://app.example"), Some("https://new.example/"))),
        ("moved.test", "GET", "https://other.example", (301, None, Some("https://new.example/"))),
        ("moved.test", "OPTIONS", "https://other.example", (301, None, Some("https://new.example/"))),
        ("later.test", "OPTIONS", "https://app.example", (204, Some("https://app.example"), None)),
        ("later.test", "POST", "https://app.example", (302, Some("https://app.example"), Some("https://later.example/"))),
        ("gone.test", "OPTIONS", "https://app.example", (204, Some("https://app.example"), None)),
        ("gone.test", "GET", "https://app.example", (503, Some("https://app.example"), None)),
        ("gone.test", "GET", "https://other.example", (503, None, None)),
        ("gone.test", "OPTIONS", "https://other.example", (503, None, None)),
    ];
    for &(host, method, origin, expected) in cases {
        let seen = send(&gateway, method, host, Some(origin));
        let case = format!("{method} {host} from {origin}: {seen:?}");
        assert_eq!((seen.status, seen.header("access-control-allow-origin"), seen.header("location")), expected, "{case}");
        assert!(!seen.proxied, "{case}");
        if expected.1.is_some() {
            assert_eq!(seen.header("access-control-allow-methods"), Some("GET, PUT, POST, DELETE, PATCH, OPTIONS"), "{case}");
            assert_eq!(seen.header("access-control-allow-credentials"), Some("true"), "{case}");
        }
    }
}

/// ingress-nginx's template answers an allowed preflight with the CORS `return 204` of its
/// location's rewrite phase: before the Lua handler that redirects plain HTTP to HTTPS
/// (`ssl-redirect`) and before the access phase's address lists. A request that is not a
/// preflight still gets the redirect and the lists' 403 (both with the CORS headers, which nginx's
/// `more_set_headers` adds to every status); a preflight from an origin not allowed gets the
/// redirect.
#[test]
fn an_allowed_preflight_is_answered_before_the_https_redirect_and_the_address_lists() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 132)).unwrap();
    let ca = wasm_ingress_tests::gateway::certs::TestCa::new("cors test CA").unwrap();
    let (cert, key) = ca.server_cert(&["secure.test"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    let annotations = [("cors-allow-origin", "https://app.example"), ("whitelist-source-range", "127.0.0.2")];
    objects.push(manifests::with_tls(ingress("secure", &annotations, "secure.test"), "secure.test", "secure-tls"));
    objects.push(manifests::tls_secret("default", "secure-tls", &cert, &key));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();

    // (client address, scheme, method, Origin) -> (status, Access-Control-Allow-Origin, proxied)
    type Case<'a> = (Ipv4Addr, &'a str, &'a str, &'a str, (u16, Option<&'a str>, bool));
    let (allowed, refused) = (Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3));
    let cases: &[Case<'_>] = &[
        (refused, "http", "OPTIONS", "https://app.example", (204, Some("https://app.example"), false)),
        (refused, "https", "OPTIONS", "https://app.example", (204, Some("https://app.example"), false)),
        (allowed, "http", "OPTIONS", "https://other.example", (308, None, false)),
        (allowed, "http", "GET", "https://app.example", (308, Some("https://app.example"), false)),
        // nginx's `more_set_headers` covers the access phase's 403 too.
        (refused, "https", "GET", "https://app.example", (403, Some("https://app.example"), false)),
        (refused, "https", "OPTIONS", "https://other.example", (403, None, false)),
        (allowed, "https", "GET", "https://app.example", (200, Some("https://app.example"), true)),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for &(source, scheme, method, origin, expected) in cases {
        let seen = runtime.block_on(async {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .local_address(std::net::IpAddr::V4(source))
                .redirect(reqwest::redirect::Policy::none())
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).unwrap())
                .resolve("secure.test", SocketAddr::from(([127, 0, 0, 1], 0)))
                .build()
                .unwrap();
            let url = if scheme == "https" { gateway.https_url("secure.test", "/") } else { gateway.http_url("secure.test", "/") };
            let request = client.request(method.parse().unwrap(), url).header("Origin", origin).header("Access-Control-Request-Method", "POST");
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let allow_origin = response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string());
            let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_string());
            let proxied = Echo::parse(&response.bytes().await.unwrap()).is_ok();
            (status, allow_origin, proxied, location)
        });
        let case = format!("{source} {method} {scheme}://secure.test/ from {origin}: {seen:?}");
        assert_eq!((seen.0, seen.1.as_deref(), seen.2), expected, "{case}");
        if seen.0 == 308 {
            assert!(seen.3.as_deref().is_some_and(|location| location.starts_with("https://secure.test")), "{case}");
        }
    }
}
