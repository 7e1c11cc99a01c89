//! External auth (`auth-url`) through the whole product (control plane + real Envoy + the built
//! filter) against a small oauth2-proxy-like auth service run by the test, with the cases of
//! ingress-nginx's e2e test `test/e2e/annotations/auth.go`: a signed-in client (the service's 202,
//! as oauth2-proxy answers) reaches the backend with the `auth-response-headers` copied over its
//! own; a client without a session gets 302 to `auth-signin` with `rd=` the escaped original URL
//! (or 401 without `auth-signin`); 403 stays 403; an auth service that fails, is too slow or is
//! not there answers 500; the auth request is GET without body to the auth-url's path, with the
//! client's headers and ingress-nginx's `X-Original-*`; a `$host` auth-url goes through Envoy
//! itself to the host's `/oauth2` Ingress; `auth-proxy-set-headers` puts a ConfigMap's headers
//! (nginx variables filled) on the auth request, and a missing ConfigMap answers 503.
//!
//! Basic auth (`auth-type: basic`), with the cases of the same e2e test: 401 with the realm without
//! or with wrong credentials, the backend with right ones (bcrypt up to cost 14, `$apr1$`, `$6$`, DES crypt and `{SHA}` users
//! of an htpasswd Secret, and an `auth-map` Secret), 503 for a missing Secret; a changed password is
//! refused as soon as the new Secret is served (nothing remembered from the old one).
//!
//! `satisfy: any`, with the case of ingress-nginx's e2e test `satisfy.go` (basic auth passes
//! without asking the auth service; without credentials the auth service's refusal sends the
//! client to sign in) and the classic office list: an allowed address needs no password, others
//! do, a denied address gets 401 and still gets in with the password (nginx's quirk); the auth
//! service's 403 after basic auth's refusal is a 401 (the sign-in page, or basic's challenge).
//!
//! The auth cache (`auth-cache-key`), with the cases of the same e2e test's "external
//! authentication with caching" context: once the auth service is gone, a cached answer still
//! lets its client in on that server and location, while another location or another server
//! answers 500; answers that set a cookie are not cached (nginx's `proxy_cache`), 401s are.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
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
use wasm_ingress_tests::gateway::{manifests, wait_until, Gateway, GatewayOptions};

const NGINX: &str = "nginx.ingress.kubernetes.io/";

/// One request the auth service received.
#[derive(Debug, Clone)]
struct AuthRequest {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body_bytes: usize,
}

/// oauth2-proxy's `/oauth2/auth`, by the `_oauth2_proxy` cookie: `alice` → 202 with
/// `X-Auth-Request-User: alice` and a refreshed cookie; `carol` → 202 with `X-Auth-Request-User:
/// carol` and no cookie; `mallory` → 401 without a cookie; `eve` → 403; `boom` → 500; `slow` →
/// 202 after 3 s; none → 401 with `WWW-Authenticate` and a CSRF cookie. Every request is recorded.
struct AuthService {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<AuthRequest>>>,
    _runtime: tokio::runtime::Runtime,
}

impl AuthService {
    fn spawn(ip: Ipv4Addr) -> AuthService {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind(SocketAddr::from((ip, 0)))).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&seen);
        runtime.spawn(async move {
            // Ends with the runtime, when the test drops the service.
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let recorder = Arc::clone(&recorder);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| answer(Arc::clone(&recorder), request));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        AuthService { addr, seen, _runtime: runtime }
    }

    fn requests(&self) -> Vec<AuthRequest> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(seen: Arc<Mutex<Vec<AuthRequest>>>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body_bytes = body.collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
    let headers: BTreeMap<String, String> =
        parts.headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string())).collect();
    let path = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    seen.lock().unwrap().push(AuthRequest { method: parts.method.to_string(), path, headers: headers.clone(), body_bytes });
    let user = headers
        .get("cookie")
        .and_then(|c| c.split(';').map(str::trim).find_map(|kv| kv.strip_prefix("_oauth2_proxy=")))
        .unwrap_or_default()
        .to_string();
    let response = Response::builder();
    let response = match user.as_str() {
        "alice" | "slow" => {
            if user == "slow" {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            response.status(202).header("x-auth-request-user", user.as_str()).header("set-cookie", "_oauth2_proxy=alice; Path=/; refreshed")
        }
        "carol" => response.status(202).header("x-auth-request-user", "carol"),
        "mallory" => response.status(401).header("www-authenticate", "Basic realm=\"test\""),
        "eve" => response.status(403),
        "boom" => response.status(500),
        _ => response.status(401).header("www-authenticate", "Basic realm=\"test\"").header("set-cookie", "_oauth2_proxy_csrf=1; Path=/"),
    };
    Ok(response.body(Full::new(Bytes::from_static(b"auth says\n"))).unwrap())
}

fn ingress(name: &str, host: &str, annotations: &[(&str, String)], paths: Vec<Value>) -> Value {
    let map: serde_json::Map<String, Value> = annotations.iter().map(|(k, v)| (format!("{NGINX}{k}"), json!(v))).collect();
    manifests::ingress("default", name, Value::Object(map), &[(host, paths)])
}

fn root() -> Vec<Value> {
    vec![manifests::path("/", "Prefix", "app", json!(80))]
}

/// A Service `auth` whose one endpoint is the auth service.
fn auth_backend(service: &AuthService) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "auth", "namespace": "default"},
               "spec": {"ports": [{"name": "http", "port": 4180, "protocol": "TCP"}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "auth-0", "namespace": "default", "labels": {"kubernetes.io/service-name": "auth"}},
               "addressType": "IPv4",
               "ports": [{"name": "http", "port": service.addr.port(), "protocol": "TCP"}],
               "endpoints": [{"addresses": [service.addr.ip().to_string()], "conditions": {"ready": true}}]}),
    ]
}

/// What a client saw.
#[derive(Debug)]
struct Seen {
    status: u16,
    location: Option<String>,
    www_authenticate: Option<String>,
    allow_origin: Option<String>,
    content_type: Option<String>,
    cookies: Vec<String>,
    echo: Option<Echo>,
}

fn send(gateway: &Gateway, method: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> Seen {
    send_from(Ipv4Addr::LOCALHOST, gateway, method, host, path, headers)
}

/// [`send`] from the client address `source`.
fn send_from(source: Ipv4Addr, gateway: &Gateway, method: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> Seen {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .local_address(std::net::IpAddr::V4(source))
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .resolve(host, SocketAddr::from(([127, 0, 0, 1], 0)))
            .build()
            .unwrap();
        let mut request = client.request(method.parse().unwrap(), gateway.http_url(host, path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if method == "POST" {
            request = request.body("hello");
        }
        let response = request.send().await.unwrap();
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string());
        let (location, www_authenticate) = (header("location"), header("www-authenticate"));
        // Every line of it, so that a header sent twice shows.
        let allow_origin = response.headers().get_all("access-control-allow-origin").iter().map(|v| v.to_str().unwrap().to_string()).reduce(|a, b| format!("{a}\n{b}"));
        let content_type = header("content-type");
        let cookies = response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
        let status = response.status().as_u16();
        let echo = Echo::parse(&response.bytes().await.unwrap()).ok();
        Seen { status, location, www_authenticate, allow_origin, content_type, cookies, echo }
    })
}

#[test]
fn external_auth_behaves_like_ingress_nginx() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 141)).unwrap();
    let auth = AuthService::spawn(Ipv4Addr::new(127, 0, 0, 142));
    let auth_url = format!("http://{}/oauth2/auth?check=1", auth.addr);
    let auth_url_headers = format!("http://{}/oauth2/headers", auth.addr);
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend(auth_backend(&auth));
    objects.extend([
        ingress(
            "signin",
            "signin.test",
            &[
                ("auth-url", auth_url.clone()),
                ("auth-signin", "http://auth.test/auth/start".into()),
                ("auth-response-headers", "X-Auth-Request-User, X-Auth-Request-Email".into()),
                ("proxy-read-timeout", "1".into()),
            ],
            root(),
        ),
        ingress("plain", "plain.test", &[("auth-url", auth_url.clone())], root()),
        // auth.go's "should return status code 401 … and cors headers", with an auth service.
        ingress(
            "cors",
            "cors.test",
            &[("auth-url", auth_url.clone()), ("enable-cors", "true".into()), ("cors-allow-origin", "https://app.example".into())],
            root(),
        ),
        // With a proxy-redirect that matches the sign-in URL: only upstream answers are rewritten.
        ingress(
            "param",
            "param.test",
            &[
                ("auth-url", auth_url),
                ("auth-signin", "http://auth.test/start?x=1".into()),
                ("auth-signin-redirect-param", "orig".into()),
                ("proxy-redirect-from", "http://auth.test/".into()),
                ("proxy-redirect-to", "/elsewhere/".into()),
            ],
            root(),
        ),
        // Nothing listens on port 1: the auth service cannot be reached.
        ingress("down", "down.test", &[("auth-url", "http://127.0.0.1:1/oauth2/auth".into())], root()),
        // oauth2-proxy on the same host, reached through the ingress itself.
        ingress("self", "self.test", &[("auth-url", "http://$host/oauth2/auth".into()), ("auth-signin", "http://$host/oauth2/start?rd=$escaped_request_uri".into())], root()),
        ingress("self-oauth2", "self.test", &[], vec![manifests::path("/oauth2", "Prefix", "auth", json!(4180))]),
        // An auth URL that leads back to the same path: a loop through the proxy.
        ingress("loop", "loop.test", &[("auth-url", "http://$host/check".into())], root()),
        // auth-proxy-set-headers: a ConfigMap of headers for the auth request (auth.go's case),
        // with nginx variables; one naming a missing ConfigMap is denied.
        ingress("headers", "headers.test", &[("auth-url", auth_url_headers.clone()), ("auth-proxy-set-headers", "default/auth-headers".into())], root()),
        ingress("no-map", "no-map.test", &[("auth-url", auth_url_headers), ("auth-proxy-set-headers", "default/nowhere".into())], root()),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "auth-headers", "namespace": "default"},
               "data": {"My-Custom-Header": "42", "X-Client": "$remote_addr via $host", "X-Sent-From": "wasm-ingress"}}),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let port = gateway.http.port();

    // No session: 302 to the sign-in URL with rd= the escaped original URL (ingress-nginx's e2e
    // expects `rd=http://<host>%2F%3Fa%3Db%26c%3Dd`), and the auth service's cookie.
    let signin = send(&gateway, "GET", "signin.test", "/?a=b&c=d", &[]);
    assert_eq!(signin.status, 302, "{signin:?}");
    assert_eq!(signin.location.as_deref(), Some(format!("http://auth.test/auth/start?rd=http://signin.test:{port}%2F%3Fa%3Db%26c%3Dd").as_str()));
    assert_eq!(signin.cookies, ["_oauth2_proxy_csrf=1; Path=/"]);
    // nginx sends its 302 page with the redirect, as with its other redirects.
    assert_eq!(signin.content_type.as_deref(), Some("text/html"), "{signin:?}");
    assert!(signin.echo.is_none(), "the backend was not reached");
    // TRACE is refused before the auth service's answer, signed in or not (nginx's core: 405).
    for cookie in [None, Some(("cookie", "_oauth2_proxy=alice"))] {
        let trace = send(&gateway, "TRACE", "signin.test", "/", &cookie.into_iter().collect::<Vec<_>>());
        assert_eq!((trace.status, trace.echo.is_none()), (405, true), "TRACE with {cookie:?}");
    }
    // The auth service's verdicts carry the CORS headers once, as nginx's `more_set_headers`
    // (a browser refuses an Access-Control-Allow-Origin with two values), and so do the
    // backend's answers.
    let origin = [("origin", "https://app.example")];
    let refused = send(&gateway, "GET", "cors.test", "/", &origin);
    assert_eq!((refused.status, refused.allow_origin.as_deref()), (401, Some("https://app.example")), "{refused:?}");
    let signed_in = send(&gateway, "GET", "cors.test", "/", &[origin[0], ("cookie", "_oauth2_proxy=alice")]);
    assert_eq!((signed_in.status, signed_in.allow_origin.as_deref()), (200, Some("https://app.example")), "{signed_in:?}");
    // The loop ends after a few nested auth requests with 500 (nginx's answer when its auth
    // subrequest fails), not when the auth cluster's connections run out.
    let looped = send(&gateway, "GET", "loop.test", "/", &[]);
    assert_eq!((looped.status, looped.echo.is_none()), (500, true), "{looped:?}");
    let param = send(&gateway, "GET", "param.test", "/x", &[]);
    assert_eq!(param.location.as_deref(), Some(format!("http://auth.test/start?x=1&orig=http://param.test:{port}%2Fx").as_str()));

    // Signed in (202): proxied, the listed headers set from the auth response, replacing the
    // client's, and one the auth response lacks removed; the refreshed cookie reaches the client.
    let forged = [("cookie", "_oauth2_proxy=alice"), ("x-auth-request-user", "mallory"), ("x-auth-request-email", "mallory@evil")];
    let allowed = send(&gateway, "GET", "signin.test", "/private?q=1", &forged);
    assert_eq!(allowed.status, 200, "{allowed:?}");
    let echo = allowed.echo.as_ref().expect("the backend answered");
    assert_eq!((echo.backend.as_str(), echo.path.as_str()), ("app", "/private?q=1"));
    assert_eq!(echo.headers.get("x-auth-request-user").map(String::as_str), Some("alice"));
    assert_eq!(echo.headers.get("x-auth-request-email"), None, "a listed header the auth service did not send is removed");
    assert_eq!(allowed.cookies, ["_oauth2_proxy=alice; Path=/; refreshed"]);

    // The auth request: GET without body to the auth-url's path, Host its host, the client's
    // headers and ingress-nginx's own.
    let before = auth.requests().len();
    let post = send(&gateway, "POST", "plain.test", "/form?x=1", &[("cookie", "_oauth2_proxy=alice"), ("authorization", "Bearer t")]);
    assert_eq!((post.status, post.echo.as_ref().map(|e| e.body_bytes)), (200, Some(5)), "the body still reaches the backend");
    let requests = auth.requests();
    assert_eq!(requests.len(), before + 1);
    let request = requests.last().unwrap();
    assert_eq!((request.method.as_str(), request.path.as_str(), request.body_bytes), ("GET", "/oauth2/auth?check=1", 0));
    let header = |name: &str| request.headers.get(name).map(String::as_str);
    assert_eq!(header("host"), Some("127.0.0.142"));
    assert_eq!(header("x-original-url"), Some(format!("http://plain.test:{port}/form?x=1").as_str()));
    assert_eq!(header("x-original-method"), Some("POST"));
    assert_eq!(header("x-auth-request-redirect"), Some("/form?x=1"));
    assert_eq!(header("x-sent-from"), Some("nginx-ingress-controller"));
    assert_eq!((header("x-real-ip"), header("x-forwarded-for")), (Some("127.0.0.1"), Some("127.0.0.1")));
    assert_eq!((header("cookie"), header("authorization")), (Some("_oauth2_proxy=alice"), Some("Bearer t")));
    assert_eq!(header("x-forwarded-proto"), None);

    // 401 without auth-signin: 401 with the service's WWW-Authenticate. 403 stays 403.
    let unauthorized = send(&gateway, "GET", "plain.test", "/", &[]);
    assert_eq!((unauthorized.status, unauthorized.www_authenticate.as_deref()), (401, Some("Basic realm=\"test\"")));
    assert!(unauthorized.cookies.is_empty(), "no cookie on a denial without auth-always-set-cookie");
    assert_eq!(send(&gateway, "GET", "plain.test", "/", &[("cookie", "_oauth2_proxy=eve")]).status, 403);

    // The auth service failing, too slow (proxy-read-timeout 1 s) or not there: 500.
    assert_eq!(send(&gateway, "GET", "plain.test", "/", &[("cookie", "_oauth2_proxy=boom")]).status, 500);
    assert_eq!(send(&gateway, "GET", "signin.test", "/", &[("cookie", "_oauth2_proxy=slow")]).status, 500);
    assert_eq!(send(&gateway, "GET", "down.test", "/", &[("cookie", "_oauth2_proxy=alice")]).status, 500);

    // auth-proxy-set-headers: the ConfigMap's headers on the auth request, variables filled,
    // replacing the client's and the built-in one of the same name.
    let with_headers = send(&gateway, "GET", "headers.test", "/", &[("cookie", "_oauth2_proxy=alice"), ("my-custom-header", "forged")]);
    assert_eq!(with_headers.status, 200, "{with_headers:?}");
    let request = auth.requests().into_iter().rev().find(|r| r.path == "/oauth2/headers").expect("the auth service was asked");
    let header = |name: &str| request.headers.get(name).map(String::as_str);
    assert_eq!(header("my-custom-header"), Some("42"));
    assert_eq!(header("x-client"), Some("127.0.0.1 via headers.test"));
    assert_eq!(header("x-sent-from"), Some("wasm-ingress"));
    assert_eq!(header("cookie"), Some("_oauth2_proxy=alice"));
    assert_eq!(send(&gateway, "GET", "no-map.test", "/", &[("cookie", "_oauth2_proxy=alice")]).status, 503, "a missing ConfigMap denies the location");

    // `$host`: the auth request goes through Envoy to self.test's /oauth2 Ingress.
    let self_signin = send(&gateway, "GET", "self.test", "/page", &[]);
    assert_eq!(self_signin.status, 302, "{self_signin:?}");
    assert_eq!(self_signin.location.as_deref(), Some("http://self.test/oauth2/start?rd=%2Fpage"));
    let self_allowed = send(&gateway, "GET", "self.test", "/page", &[("cookie", "_oauth2_proxy=alice")]);
    assert_eq!((self_allowed.status, self_allowed.echo.map(|e| e.backend)), (200, Some("app".to_string())));
    let via_self = auth.requests().into_iter().rev().find(|r| r.path == "/oauth2/auth").expect("the auth service was asked through Envoy");
    assert_eq!(via_self.headers.get("host").map(String::as_str), Some("self.test"));
}

/// An Opaque Secret with these keys.
fn secret(name: &str, data: &[(&str, &str)]) -> Value {
    use base64::Engine as _;
    let data: serde_json::Map<String, Value> =
        data.iter().map(|(k, v)| (k.to_string(), json!(base64::engine::general_purpose::STANDARD.encode(v)))).collect();
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": name, "namespace": "default"}, "data": data})
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

#[test]
fn basic_auth_behaves_like_ingress_nginx() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 143)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // htpasswd -B (bcrypt), htpasswd -m ($apr1$, made with `openssl passwd -apr1`), htpasswd -s,
    // `openssl passwd -6` (SHA-512 crypt), DES crypt (`openssl passwd -crypt` of OpenSSL 1, as
    // ingress-nginx's older e2e test wrote it; here glibc's crypt("password", "xy")), bcrypt of
    // cost 14 (its current e2e test's `bcrypt.GenerateFromPassword(password, 14)`), and a bcrypt
    // of cost 15 (not checked: too slow).
    let bcrypt = bcrypt::hash("bpass", 4).unwrap().replacen("$2b$", "$2y$", 1);
    let nginx_e2e = bcrypt::hash("password", 14).unwrap();
    let htpasswd = |bcrypt: &str| {
        format!(
            "bee:{bcrypt}\napr:$apr1$abcdefgh$FBwExRW4dCc8aL.OvjpIE1\nsha:{{SHA}}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n\
             six:$6$saltstring$adDbXsJjcDlq2662QPgd.tkSOVmnG9Tt3oXl4HR60SusC3AGjirnDenVZp3DGwLwqy6iYKCzannhaX9DR72nN1\n\
             des:xyAjYtmfRYx/.\nfourteen:{nginx_e2e}\nslow:{}\n",
            bcrypt.replacen("$04$", "$15$", 1)
        )
    };
    let annotations = |secret: &str, kind: &str| {
        vec![("auth-type", "basic".to_string()), ("auth-secret", secret.to_string()), ("auth-secret-type", kind.to_string()), ("auth-realm", "test auth".to_string())]
    };
    let objects = |htpasswd: String| {
        let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
        objects.extend([
            secret("htpasswd", &[("auth", htpasswd.as_str())]),
            secret("users", &[("mapped", "{PLAIN}m-pass")]),
            ingress("file", "file.test", &annotations("htpasswd", "auth-file"), root()),
            ingress("map", "map.test", &annotations("users", "auth-map"), root()),
            // no-auth-locations (ingress-nginx's default): an ACME challenge path of a protected
            // Ingress, as cert-manager's edit-in-place solver adds it, asks for no credentials.
            ingress(
                "acme",
                "acme.test",
                &annotations("htpasswd", "auth-file"),
                vec![manifests::path("/", "Prefix", "app", json!(80)), manifests::path("/.well-known/acme-challenge/", "Prefix", "app", json!(80))],
            ),
            ingress("missing", "missing.test", &annotations("nope", "auth-file"), root()),
            // auth.go's "401 and cors headers": the filter's own 401 carries the CORS headers.
            ingress("cors", "cors.test", &[annotations("htpasswd", "auth-file"), vec![("enable-cors", "true".to_string())]].concat(), root()),
            ingress(
                "cors-list",
                "cors-list.test",
                &[annotations("htpasswd", "auth-file"), vec![("enable-cors", "true".to_string()), ("cors-allow-origin", "https://app.example".to_string())]].concat(),
                root(),
            ),
        ]);
        objects
    };
    manifests::write(dir.path(), "all.yaml", &objects(htpasswd(&bcrypt))).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let get = |host: &str, authorization: Option<&str>| {
        let headers: Vec<(&str, &str)> = authorization.map(|a| ("authorization", a)).into_iter().collect();
        send(&gateway, "GET", host, "/", &headers)
    };

    let anonymous = get("file.test", None);
    assert_eq!((anonymous.status, anonymous.www_authenticate.as_deref()), (401, Some("Basic realm=\"test auth\"")));
    assert!(anonymous.echo.is_none());
    for (user, password) in [("bee", "bpass"), ("apr", "password"), ("sha", "password"), ("six", "password"), ("des", "password"), ("fourteen", "password")] {
        let right = basic(user, password);
        for attempt in 0..2 {
            let seen = get("file.test", Some(&right));
            assert_eq!(seen.status, 200, "{user}, attempt {attempt}: {seen:?}");
            let echo = seen.echo.expect("the backend answered");
            assert_eq!(echo.headers.get("authorization"), None, "ingress-nginx clears the credentials (proxy_set_header Authorization \"\")");
        }
        assert_eq!(get("file.test", Some(&basic(user, "wrong"))).status, 401, "{user} with a wrong password");
    }
    assert_eq!(get("file.test", Some(&basic("nobody", "password"))).status, 401);
    assert_eq!(get("file.test", Some(&basic("des", "passwordX"))).status, 200, "crypt(3) reads 8 bytes of a password, as nginx's crypt");
    assert_eq!(get("file.test", Some(&basic("slow", "bpass"))).status, 401, "a bcrypt cost above 14 is not checked");
    assert_eq!(get("file.test", Some("Bearer abc")).status, 401);
    assert_eq!(get("map.test", Some(&basic("mapped", "m-pass"))).status, 200);
    assert_eq!(get("map.test", Some(&basic("mapped", "wrong"))).status, 401);
    let challenge = send(&gateway, "GET", "acme.test", "/.well-known/acme-challenge/token", &[]);
    assert_eq!((challenge.status, challenge.echo.map(|e| e.path)), (200, Some("/.well-known/acme-challenge/token".to_string())));
    assert_eq!(send(&gateway, "GET", "acme.test", "/other", &[]).status, 401, "the rest of the Ingress still asks");
    let missing = get("missing.test", Some(&basic("bee", "bpass")));
    assert_eq!(missing.status, 503, "a missing Secret denies, as ingress-nginx");
    let cors = get("cors.test", None);
    assert_eq!((cors.status, cors.allow_origin.as_deref()), (401, Some("*")), "CORS headers on the 401 too, as nginx's more_set_headers");
    let from = |origin: &str| send(&gateway, "GET", "cors-list.test", "/", &[("origin", origin)]).allow_origin;
    assert_eq!(from("https://app.example").as_deref(), Some("https://app.example"), "an allowed Origin is echoed on the 401");
    assert_eq!(from("https://evil.example"), None, "another Origin gets none");

    // A new password for bee: the old one is refused once the new Secret is served.
    let changed = bcrypt::hash("new-pass", 4).unwrap();
    manifests::write(dir.path(), "all.yaml", &objects(htpasswd(&changed))).unwrap();
    wait_until(Duration::from_secs(10), || Ok(get("file.test", Some(&basic("bee", "new-pass"))).status == 200)).unwrap();
    assert_eq!(get("file.test", Some(&basic("bee", "bpass"))).status, 401, "the old password is not remembered");
}

#[test]
fn satisfy_any_lets_a_request_in_on_the_first_check_that_passes() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 144)).unwrap();
    let auth = AuthService::spawn(Ipv4Addr::new(127, 0, 0, 145));
    let (office, stranger, banned) = (Ipv4Addr::new(127, 0, 0, 146), Ipv4Addr::new(127, 0, 0, 147), Ipv4Addr::new(127, 0, 0, 148));
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = format!("uname:{}\n", bcrypt::hash("pwd", 4).unwrap());
    fn basic_auth(extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut annotations = vec![
            ("auth-type", "basic".to_string()),
            ("auth-secret", "basic-secret".to_string()),
            ("auth-realm", "test basic auth".to_string()),
            ("satisfy", "any".to_string()),
        ];
        annotations.extend(extra.iter().cloned());
        annotations
    }
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend(auth_backend(&auth));
    objects.extend([
        secret("basic-secret", &[("auth", htpasswd.as_str())]),
        // satisfy.go's "should allow multiple auth with satisfy any": basic auth and an auth
        // service that refuses these credentials, with a sign-in page.
        ingress(
            "auth",
            "auth.test",
            &basic_auth(&[
                ("auth-url", format!("http://{}/basic-auth/user/password", auth.addr)),
                ("auth-signin", "http://$host/auth/start".into()),
                ("auth-response-headers", "X-User".into()),
            ]),
            root(),
        ),
        // The same without a sign-in page.
        ingress("no-signin", "no-signin.test", &basic_auth(&[("auth-url", format!("http://{}/basic-auth/user/password", auth.addr))]), root()),
        // The office's addresses get in without a password, others with one; a banned address
        // that knows the password gets in too (nginx's `satisfy any` quirk).
        ingress(
            "office",
            "office.test",
            &basic_auth(&[("whitelist-source-range", format!("{office}/32, {banned}")), ("denylist-source-range", banned.to_string())]),
            root(),
        ),
        // The same lists with `satisfy: all`: Envoy's RBAC keeps the stranger out whatever it sends.
        ingress(
            "strict",
            "strict.test",
            &[
                ("auth-type", "basic".into()),
                ("auth-secret", "basic-secret".into()),
                ("whitelist-source-range", format!("{office}/32")),
            ],
            root(),
        ),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let right = basic("uname", "pwd");
    fn with(authorization: &str) -> Vec<(&'static str, &str)> {
        vec![("authorization", authorization)]
    }

    let signed = send(&gateway, "GET", "auth.test", "/", &[("authorization", right.as_str()), ("x-user", "admin")]);
    assert_eq!(signed.status, 200, "basic auth alone lets the request in: {signed:?}");
    let echo = signed.echo.expect("the backend answered");
    assert_eq!(echo.headers.get("x-user"), None, "an auth-response-header the auth service did not give is not the client's either");
    assert!(auth.requests().is_empty(), "the auth service is not asked once basic auth passed");
    let anonymous = send(&gateway, "GET", "auth.test", "/?a=b&c=d", &[]);
    assert_eq!(anonymous.status, 302, "{anonymous:?}");
    // satisfy.go's Location, with the gateway's port in the Host the client sent.
    let location = anonymous.location.unwrap_or_default();
    assert!(location.starts_with("http://auth.test/auth/start?rd=http://auth.test:") && location.ends_with("%2F%3Fa%3Db%26c%3Dd"), "{location}");
    assert_eq!(auth.requests().len(), 1, "without credentials the auth service decides");
    let wrong = send(&gateway, "GET", "auth.test", "/", &with(&basic("uname", "nope")));
    assert_eq!(wrong.status, 302, "a wrong password falls through to the auth service: {wrong:?}");
    // nginx keeps basic auth's 401 over the auth service's 403 (`satisfy any`): the sign-in page,
    // or basic auth's challenge without one.
    let eve = [("cookie", "_oauth2_proxy=eve")];
    let refused = send(&gateway, "GET", "auth.test", "/", &eve);
    assert_eq!(refused.status, 302, "the auth service's 403 after basic auth's 401: {refused:?}");
    let refused = send(&gateway, "GET", "no-signin.test", "/", &eve);
    assert_eq!((refused.status, refused.www_authenticate.as_deref()), (401, Some("Basic realm=\"test basic auth\"")), "{refused:?}");
    let mut eve_with_password = eve.to_vec();
    eve_with_password.push(("authorization", right.as_str()));
    assert_eq!(send(&gateway, "GET", "no-signin.test", "/", &eve_with_password).status, 200, "basic auth passing is enough");
    assert_eq!(send(&gateway, "GET", "no-signin.test", "/", &[("cookie", "_oauth2_proxy=alice")]).status, 200, "so is the auth service's 2xx");

    let rows = [
        // (client, authorization, status, what the row shows)
        (office, None, 200, "an allowed address needs no password"),
        (office, Some(basic("uname", "nope")), 200, "nor is a wrong one held against it"),
        (stranger, None, 401, "another address must sign in"),
        (stranger, Some(basic("uname", "nope")), 401, "with the right password"),
        (stranger, Some(right.clone()), 200, "which is enough"),
        (banned, None, 401, "a denied address gets basic auth's 401, not 403"),
        (banned, Some(right.clone()), 200, "and gets in with the password, as in ingress-nginx"),
    ];
    for (client, authorization, status, why) in rows {
        let headers: Vec<(&str, &str)> = authorization.iter().map(|a| ("authorization", a.as_str())).collect();
        let seen = send_from(client, &gateway, "GET", "office.test", "/", &headers);
        assert_eq!(seen.status, status, "{client}: {why}: {seen:?}");
        if status == 401 {
            assert_eq!(seen.www_authenticate.as_deref(), Some("Basic realm=\"test basic auth\""), "{client}: {why}");
        }
        assert_eq!(seen.echo.is_some(), status == 200, "{client}: {why}");
    }
    assert_eq!(send_from(stranger, &gateway, "GET", "strict.test", "/", &with(&right)).status, 403, "satisfy all: the list still applies");
    let refused = send_from(stranger, &gateway, "GET", "strict.test", "/", &[]);
    assert_eq!((refused.status, refused.www_authenticate), (403, None), "satisfy all: nginx's access module refuses before basic auth asks");
    assert_eq!(send_from(office, &gateway, "GET", "strict.test", "/", &[]).status, 401, "satisfy all: the password too");
    assert_eq!(send_from(office, &gateway, "GET", "strict.test", "/", &with(&right)).status, 200);
}

#[test]
fn auth_answers_are_cached_per_server_and_location_like_ingress_nginx() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 144)).unwrap();
    let auth = AuthService::spawn(Ipv4Addr::new(127, 0, 0, 145));
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    let cached = |key: bool| {
        let mut annotations = vec![
            ("auth-url", format!("http://{}/oauth2/auth", auth.addr)),
            ("auth-response-headers", "X-Auth-Request-User".to_string()),
        ];
        if key {
            annotations.push(("auth-cache-key", "$cookie__oauth2_proxy".to_string()));
            annotations.push(("auth-cache-duration", "200 202 401 30m".to_string()));
        }
        annotations
    };
    let paths = || vec![manifests::path("/foo", "Prefix", "app", json!(80)), manifests::path("/bar", "Prefix", "app", json!(80))];
    objects.extend([
        ingress("cached", "cached.test", &cached(true), paths()),
        ingress("different", "different.test", &cached(true), paths()),
        ingress("uncached", "uncached.test", &cached(false), paths()),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    // Two workers, as `make run`: each request is a new connection, which either may take.
    let gateway = Gateway::start_with(dir.path(), &GatewayOptions { envoy_workers: Some(2), ..GatewayOptions::default() }).unwrap();
    let as_user = |host: &str, path: &str, user: &str| send(&gateway, "GET", host, path, &[("cookie", &format!("_oauth2_proxy={user}"))]);
    let asked = || auth.requests().len();

    let first = as_user("cached.test", "/foo", "carol");
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.echo.unwrap().headers.get("x-auth-request-user").map(String::as_str), Some("carol"));
    let before = asked();
    for attempt in 0..8 {
        let again = as_user("cached.test", "/foo", "carol");
        assert_eq!(again.status, 200);
        assert_eq!(again.echo.unwrap().headers.get("x-auth-request-user").map(String::as_str), Some("carol"), "headers come from the kept answer");
        assert_eq!(asked(), before, "request {attempt} was decided by the kept answer, on whichever worker took it");
    }

    for _ in 0..2 {
        assert_eq!(as_user("cached.test", "/foo", "alice").status, 200);
    }
    assert_eq!(asked(), before + 2, "an answer that sets a cookie is not kept (nginx's proxy_cache)");
    for _ in 0..2 {
        assert_eq!(as_user("cached.test", "/foo", "mallory").status, 401);
    }
    assert_eq!(asked(), before + 3, "a 401 is kept (ingress-nginx's default 200 202 401)");
    for _ in 0..2 {
        assert_eq!(as_user("uncached.test", "/foo", "carol").status, 200);
    }
    assert_eq!(asked(), before + 5, "without auth-cache-key every request is asked about");

    drop(auth);
    let cases = [
        ("cached.test", "/foo", "carol", 200, "a kept answer outlives the auth service"),
        ("cached.test", "/foo", "mallory", 401, "a kept 401 too"),
        ("cached.test", "/bar", "carol", 500, "another location has its own keys"),
        ("different.test", "/foo", "carol", 500, "another server has its own keys"),
        ("uncached.test", "/foo", "carol", 500, "no cache: the auth service is asked and is gone"),
        ("cached.test", "/foo", "alice", 500, "an answer that was not kept"),
    ];
    for (host, path, user, status, why) in cases {
        assert_eq!(as_user(host, path, user).status, status, "{host}{path} as {user}: {why}");
    }
}

/// ingress-nginx's `settings/global_external_auth.go` with `serve --global-auth-*` for its
/// ConfigMap keys: every protected path answers the auth service's 401 (or the sign-in
/// redirect), a `no-auth-locations` path and an Ingress with `enable-global-auth: "false"` are
/// served without asking, an Ingress's own `auth-url` wins, a signed-in client gets the response
/// headers copied, and the ACME challenge of ingress-nginx's default list stays open.
#[test]
fn global_auth_guards_every_ingress_as_ingress_nginx_configmap_does() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 156)).unwrap();
    let auth = AuthService::spawn(Ipv4Addr::new(127, 0, 0, 157));
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    let foo_bar = vec![manifests::path("/foo", "Prefix", "app", json!(80)), manifests::path("/bar", "Prefix", "app", json!(80))];
    objects.extend([
        ingress("guarded", "guarded.test", &[], foo_bar),
        ingress("opted-out", "open.test", &[("enable-global-auth", "false".into())], root()),
        ingress("own", "own.test", &[("auth-url", "http://127.0.0.1:1/unreachable".into())], root()),
        ingress("acme", "acme.test", &[], vec![manifests::path("/.well-known/acme-challenge/", "Prefix", "app", json!(80))]),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let serve_args = [
        format!("--global-auth-url=http://{}/oauth2/auth", auth.addr),
        "--global-auth-signin=http://login.test/start".into(),
        "--global-auth-response-headers=X-Auth-Request-User".into(),
        "--no-auth-locations=/bar,/.well-known/acme-challenge".into(),
    ];
    let options = GatewayOptions { serve_args: serve_args.to_vec(), ..Default::default() };
    let gateway = Gateway::start_with(dir.path(), &options).unwrap();

    let foo = send(&gateway, "GET", "guarded.test", "/foo", &[]);
    let rd = format!("http://login.test/start?rd=http://guarded.test:{}%2Ffoo", gateway.http.port());
    assert_eq!((foo.status, foo.location.as_deref()), (302, Some(rd.as_str())), "{foo:?}");
    let bar = send(&gateway, "GET", "guarded.test", "/bar", &[]);
    assert_eq!((bar.status, bar.echo.map(|e| e.path)), (200, Some("/bar".to_string())), "no-auth-locations");
    let signed_in = send(&gateway, "GET", "guarded.test", "/foo", &[("cookie", "_oauth2_proxy=alice")]);
    assert_eq!(signed_in.status, 200);
    assert_eq!(signed_in.echo.unwrap().headers.get("x-auth-request-user").map(String::as_str), Some("alice"), "global-auth-response-headers");
    assert_eq!(send(&gateway, "GET", "open.test", "/", &[]).status, 200, "enable-global-auth: \"false\"");
    assert_eq!(send(&gateway, "GET", "own.test", "/", &[("cookie", "_oauth2_proxy=alice")]).status, 500, "the Ingress's own (unreachable) auth-url, not the global one");
    assert_eq!(send(&gateway, "GET", "acme.test", "/.well-known/acme-challenge/t", &[]).status, 200);
    let asked = auth.seen.lock().unwrap().iter().filter(|r| r.path.starts_with("/oauth2/auth")).count();
    assert_eq!(asked, 2, "asked for the two /foo requests only");
}
