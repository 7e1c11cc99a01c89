//! Access control by ingress-nginx annotation, through the whole product (control plane + real
//! Envoy + the built filter), with clients on several loopback addresses. Cases after
//! ingress-nginx's e2e tests `test/e2e/annotations/{ipallowlist,ipdenylist}.go`:
//! - `allowlist-source-range` / `whitelist-source-range`: listed clients reach the backend, others
//!   get 403; a client cannot talk its way in with `X-Forwarded-For`; WebSocket upgrades are limited
//!   too;
//! - `denylist-source-range`: listed clients get 403, others are served; a client both allowed and
//!   denied is denied;
//! - the ConfigMap's `whitelist-source-range` / `denylist-source-range` (their defaults) and its
//!   global filters `block-cidrs`, `block-user-agents`, `block-referers`, as `serve` flags;
//! - a block ingress-nginx refuses denies the Ingress (503);
//! - behind a load balancer, the client is the address the PROXY protocol header names
//!   (`--use-proxy-protocol`) or the trusted `X-Forwarded-For` hop (`--trusted-proxy-hops`), as
//!   with ingress-nginx's `use-proxy-protocol` / `use-forwarded-headers`; the trusted hop's
//!   `X-Forwarded-Proto`/`-Port`/`-Host` reach the backend (settings/forwarded_headers.go), and a
//!   PROXY header naming port 443 makes the request HTTPS (no ssl-redirect loop).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use wasm_ingress_filter::decision::status_body;
use wasm_ingress_tests::backend::{Echo, EchoBackend};
use wasm_ingress_tests::gateway::{manifests, Gateway, GatewayOptions};

const NGINX: &str = "nginx.ingress.kubernetes.io/";

fn annotated(name: &str, annotations: &[(&str, &str)], host: &str) -> Value {
    let annotations: serde_json::Map<String, Value> =
        annotations.iter().map(|(k, v)| (format!("{NGINX}{k}"), json!(v))).collect();
    let paths = vec![manifests::path("/", "Prefix", "app", json!(80))];
    manifests::ingress("default", name, Value::Object(annotations), &[(host, paths)])
}

/// Send `head` (request line and headers, blank line included) from the client address `source`
/// and read the answer: all of it, or with `first_read_only` what the first read returns (an
/// upgraded connection stays open).
fn exchange_from(source: Ipv4Addr, gateway: SocketAddr, head: &str, first_read_only: bool) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((source, 0))).unwrap();
        let mut stream = socket.connect(gateway).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = vec![0u8; 1024];
        let read = async {
            if first_read_only {
                let n = stream.read(&mut raw).await?;
                raw.truncate(n);
            } else {
                raw.clear();
                stream.read_to_end(&mut raw).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        tokio::time::timeout(Duration::from_secs(20), read).await.unwrap().unwrap();
        String::from_utf8_lossy(&raw).to_string()
    })
}

fn status_of(answer: &str) -> u16 {
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// `GET /` for `host` from the client address `source`, with extra header lines: the status and
/// whether the backend answered.
fn get_from(source: Ipv4Addr, gateway: SocketAddr, host: &str, extra: &str) -> (u16, bool) {
    let head = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n");
    let answer = exchange_from(source, gateway, &head, false);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    let reached = body.find('{').is_some_and(|i| Echo::parse(body[i..].trim_end().as_bytes()).is_ok());
    (status_of(&answer), reached)
}

#[test]
fn source_ranges_behave_like_ingress_nginx() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 91)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([
        annotated("allow", &[("allowlist-source-range", "127.0.0.2/32, 127.0.0.3")], "allow.test"),
        annotated("old-name", &[("whitelist-source-range", "127.0.0.2")], "old-name.test"),
        annotated("both-names", &[("whitelist-source-range", "127.0.0.4"), ("allowlist-source-range", "127.0.0.2")], "both-names.test"),
        annotated("deny", &[("denylist-source-range", "127.0.0.5")], "deny.test"),
        annotated("allow-and-deny", &[("allowlist-source-range", "127.0.0.0/24"), ("denylist-source-range", "127.0.0.6")], "mixed.test"),
        annotated("bad", &[("denylist-source-range", "127.0.0.0/33")], "bad.test"),
        annotated("open", &[], "open.test"),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let http = gateway.http;
    let client = |last: u8| Ipv4Addr::new(127, 0, 0, last);

    // (client, host, status)
    let cases: &[(u8, &str, u16)] = &[
        (2, "allow.test", 200),
        (3, "allow.test", 200),
        (4, "allow.test", 403),
        (2, "old-name.test", 200),
        (3, "old-name.test", 403),
        (2, "both-names.test", 200),
        (4, "both-names.test", 403),
        (5, "deny.test", 403),
        (4, "deny.test", 200),
        (6, "mixed.test", 403),
        (7, "mixed.test", 200),
        (2, "bad.test", 503),
        (4, "open.test", 200),
    ];
    for (last, host, status) in cases {
        let (got, reached) = get_from(client(*last), http, host, "");
        assert_eq!((got, reached), (*status, *status == 200), "127.0.0.{last} -> {host}");
    }
    // X-Forwarded-For from an untrusted client does not change who it is.
    let (status, reached) = get_from(client(4), http, "allow.test", "X-Forwarded-For: 127.0.0.2\r\n");
    assert_eq!((status, reached), (403, false));
    // WebSocket upgrades go through the same limits.
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let request = |last: u8| {
        let head = format!("GET / HTTP/1.1\r\nHost: allow.test\r\n{upgrade}\r\n");
        status_of(&exchange_from(client(last), http, &head, true))
    };
    assert_eq!(request(2), 101, "an allowed client upgrades");
    assert_eq!(request(4), 403, "a refused client does not");
}

/// The answer to `GET /` for `host` from `source` with extra header lines: (status, body).
fn answer_from(source: Ipv4Addr, gateway: SocketAddr, host: &str, extra: &str) -> (u16, String) {
    let head = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n");
    let answer = exchange_from(source, gateway, &head, false);
    (status_of(&answer), answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// The answer to `GET {path}` for `host` from `source` with extra header lines: (status, body).
fn answer_at(source: Ipv4Addr, gateway: SocketAddr, host: &str, path: &str, extra: &str) -> (u16, String) {
    let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n");
    let answer = exchange_from(source, gateway, &head, false);
    (status_of(&answer), answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// ingress-nginx gives each host an implicit `/` location with the annotations of the oldest
/// Ingress naming it (`createServers`, `locationApplyAnnotations`), so a path no rule takes is
/// held to that Ingress's checks before its default backend answers 404: an address its list
/// refuses gets 403 (Envoy's RBAC on the not-found policy), a client without credentials 401
/// (the filter's basic auth), and only then 404; a younger Ingress's own paths keep its own
/// (absent) checks.
#[test]
fn paths_no_rule_takes_keep_the_checks_of_the_hosts_oldest_ingress() {
    use base64::Engine as _;
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 93)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    let app_path = || vec![manifests::path("/app", "Prefix", "app", json!(80))];
    let annotations = |pairs: &[(&str, &str)]| Value::Object(pairs.iter().map(|(k, v)| (format!("{NGINX}{k}"), json!(v))).collect());
    let mut listed = manifests::ingress("default", "listed", annotations(&[("whitelist-source-range", "127.0.0.2")]), &[("listed.test", app_path())]);
    listed["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
    let mut younger = manifests::ingress("default", "younger", json!({}), &[("listed.test", vec![manifests::path("/open", "Prefix", "app", json!(80))])]);
    younger["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
    let htpasswd = base64::engine::general_purpose::STANDARD.encode("alice:{PLAIN}pw\n");
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "users", "namespace": "default"}, "data": {"auth": htpasswd}});
    let staff = manifests::ingress("default", "staff", annotations(&[("auth-type", "basic"), ("auth-secret", "users"), ("auth-realm", "Staff")]), &[("staff.test", app_path())]);
    let open = manifests::ingress("default", "open", json!({}), &[("open.test", app_path())]);
    let cors = manifests::ingress("default", "cors", annotations(&[("enable-cors", "true"), ("denylist-source-range", "127.0.0.9")]), &[("cors.test", app_path())]);
    let limited = manifests::ingress("default", "limited", annotations(&[("limit-rps", "1"), ("limit-burst-multiplier", "1")]), &[("limited.test", app_path())]);
    objects.extend([listed, younger, secret, staff, open, cors, limited]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let (http, client) = (gateway.http, |last: u8| Ipv4Addr::new(127, 0, 0, last));
    let credentials = format!("Authorization: Basic {}\r\n", base64::engine::general_purpose::STANDARD.encode("alice:pw"));

    // (client, host, path, extra headers, status)
    let cases: &[(u8, &str, &str, &str, u16)] = &[
        (2, "listed.test", "/app", "", 200),
        (3, "listed.test", "/app", "", 403),
        (2, "listed.test", "/elsewhere", "", 404),
        (3, "listed.test", "/elsewhere", "", 403),
        (3, "listed.test", "/open", "", 200),
        (3, "staff.test", "/elsewhere", "", 401),
        (3, "staff.test", "/elsewhere", &credentials, 404),
        (3, "staff.test", "/app", &credentials, 200),
        (3, "open.test", "/elsewhere", "", 404),
    ];
    for (last, host, path, extra, status) in cases {
        let (got, body) = answer_at(client(*last), http, host, path, extra);
        assert_eq!(got, *status, "127.0.0.{last} -> {host}{path}: {body}");
        if *status == 404 {
            assert_eq!(body, status_body(404), "{host}{path}");
        }
    }
    let head_of = |request: &str| {
        let answer = exchange_from(client(3), http, request, false);
        answer.split_once("\r\n\r\n").map_or(String::new(), |(head, _)| head.to_ascii_lowercase())
    };
    let head = head_of("GET /elsewhere HTTP/1.1\r\nHost: staff.test\r\nConnection: close\r\n\r\n");
    assert!(head.contains("www-authenticate: basic realm=\"staff\""), "{head}");
    // CORS beside an address list: the preflight is answered 204 with ingress-nginx's headers, a
    // request gets them on its 404.
    let preflight = head_of("OPTIONS /elsewhere HTTP/1.1\r\nHost: cors.test\r\nOrigin: https://x.test\r\nConnection: close\r\n\r\n");
    assert!(preflight.starts_with("http/1.1 204") && preflight.contains("access-control-allow-origin: *"), "{preflight}");
    let not_found = head_of("GET /elsewhere HTTP/1.1\r\nHost: cors.test\r\nOrigin: https://x.test\r\nConnection: close\r\n\r\n");
    assert!(not_found.starts_with("http/1.1 404") && not_found.contains("access-control-allow-origin: *"), "{not_found}");
    // limit-rps 1 with a burst of 1 (`limit_req … burst=1 nodelay`): of requests at once on one
    // connection, the first is answered and the next refused 503 (the bucket refills once a
    // second, which may fall between two of them: three requests).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let statuses: Vec<u16> = runtime.block_on(async {
        let client = reqwest::Client::builder().local_address(std::net::IpAddr::V4(client(3))).timeout(Duration::from_secs(10)).build().unwrap();
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let url = format!("http://{http}/elsewhere");
            statuses.push(client.get(url).header("host", "limited.test").send().await.unwrap().status().as_u16());
        }
        statuses
    });
    assert!(statuses[0] == 404 && statuses.contains(&503) && statuses.iter().all(|s| [404, 503].contains(s)), "{statuses:?}");
}

/// ConfigMap `block-user-agents`, `block-referers` and `block-cidrs` (ingress-nginx's "Global
/// filters"), as `serve` flags: a listed User-Agent or Referer gets 403 on every host before
/// anything else (redirects, unknown hosts, WebSocket upgrades), strings without case and `~*`
/// regexes found anywhere; a blocked address gets 403 on paths without address lists of their
/// own, and reaches an Ingress whose own allow list names it (nginx's `deny` in `http` is not
/// inherited by a location with `allow`/`deny` lines); a host no Ingress names answers it 403
/// (the default server's `location /` has no list), its `/healthz` 200, and so does a path of a
/// named host that no rule takes (the host's implicit `/` location has no list either).
#[test]
fn global_blocks_behave_like_ingress_nginx_configmap() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 92)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([
        annotated("open", &[], "open.test"),
        annotated("listed", &[("allowlist-source-range", "127.0.0.0/24")], "listed.test"),
        annotated("redirected", &[("force-ssl-redirect", "true")], "redirected.test"),
        // Only /app: `GET /` is for the host's implicit `/` location, which inherits the block.
        manifests::ingress("default", "partial", json!({}), &[("partial.test", vec![manifests::path("/app", "Prefix", "app", json!(80))])]),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    // A long regex too: past Envoy's default RE2 limit of 100 instructions (the bootstrap's
    // runtime raises it), which would otherwise make Envoy refuse the listeners.
    let crawlers = "~*^(?:ahrefs|semrush|mj12|dotnet-crawler|petal|bytespider|gptcrawl|claude-web|ccrawl|amazon-spider|applenews|yandex|baiduspider|sogou|exa-crawler|facebook-ext|ia_archiver)[/\\s]";
    // And one with as many counted repetitions as RE2 takes (1 000 in all: ~1 000 instructions).
    // ingress-nginx's own values (settings/global_access_block.go), an escaped space included.
    let upstream = "~*chrome\\/68\\.0\\.3440\\.106\\ safari\\/537\\.36,AlphaBot";
    let args = [
        format!("--block-user-agents=~*bot,Curl/7.0,{crawlers},~^(?:x{{10}}){{100}}$,{upstream}"),
        "--block-referers=~^https?://spam\\.,~*example\\.com,qwerty".into(),
        "--block-cidrs=127.0.0.8".into(),
    ];
    let options = GatewayOptions { serve_args: args.to_vec(), ..Default::default() };
    let gateway = Gateway::start_with(dir.path(), &options).unwrap();
    let client = |last: u8| Ipv4Addr::new(127, 0, 0, last);
    let forbidden = (403, status_body(403).to_string());

    // (client, host, extra header lines, status)
    let cases: &[(u8, &str, &str, u16)] = &[
        (2, "open.test", "User-Agent: Mozilla/5.0\r\n", 200),
        (2, "open.test", "User-Agent: Mozilla/5.0 (compatible; Googlebot/2.1)\r\n", 403),
        (2, "open.test", "User-Agent: curl/7.0\r\n", 403),
        (2, "open.test", "User-Agent: curl/7.0.1\r\n", 200),
        (2, "open.test", "User-Agent: Sogou web spider/4.0\r\n", 403),
        (2, "open.test", "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/68.0.3440.106 Safari/537.36\r\n", 403),
        (2, "open.test", "User-Agent: AlphaBot\r\n", 403),
        (2, "open.test", "User-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 11_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/11.0 Mobile/15E148 Safari/604.1\r\n", 200),
        (2, "open.test", "Referer: example.com\r\n", 403),
        (2, "open.test", "Referer: qwerty\r\n", 403),
        (2, "open.test", "Referer: qwerty123\r\n", 200),
        (2, "open.test", "User-Agent: Mozilla/5.0 Sogou Explorer\r\n", 200),
        (2, "open.test", "", 200),
        (2, "open.test", "Referer: http://spam.example/offer\r\n", 403),
        (2, "open.test", "Referer: https://shop.example/?from=http://spam.x\r\n", 200),
        (8, "open.test", "", 403),
        (8, "listed.test", "", 200),
        (2, "listed.test", "User-Agent: SomeBot\r\n", 403),
        (2, "unknown.test", "User-Agent: SomeBot\r\n", 403),
        (2, "unknown.test", "", 404),
        (8, "unknown.test", "", 403),
        (8, "partial.test", "", 403),
        (2, "partial.test", "", 404),
        (2, "redirected.test", "User-Agent: SomeBot\r\n", 403),
        (2, "redirected.test", "", 308),
    ];
    for (last, host, extra, status) in cases {
        let (got, body) = answer_from(client(*last), gateway.http, host, extra);
        assert_eq!(got, *status, "127.0.0.{last} -> {host} with {extra:?}: {body}");
        if *status == 403 {
            assert_eq!((got, body), forbidden, "nginx's page, not Envoy's");
        }
    }
    let healthz = |last: u8| status_of(&exchange_from(client(last), gateway.http, "GET /healthz HTTP/1.1\r\nHost: unknown.test\r\nConnection: close\r\n\r\n", false));
    assert_eq!((healthz(8), healthz(2)), (200, 200), "the default server's /healthz is a `return`, before nginx's access phase");
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let request = |agent: &str| {
        let head = format!("GET / HTTP/1.1\r\nHost: open.test\r\nUser-Agent: {agent}\r\n{upgrade}\r\n");
        status_of(&exchange_from(client(2), gateway.http, &head, true))
    };
    assert_eq!(request("Mozilla/5.0"), 101);
    assert_eq!(request("evilbot"), 403, "WebSocket upgrades are blocked too");
}

/// ConfigMap `whitelist-source-range` and `denylist-source-range` as `serve` flags: the defaults
/// of the annotations, each replaced by the Ingress's own.
#[test]
fn configmap_source_ranges_are_the_annotations_defaults() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 93)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([annotated("open", &[], "open.test"), annotated("own", &[("allowlist-source-range", "127.0.0.0/24")], "own.test")]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let args = ["--whitelist-source-range=127.0.0.2, 127.0.0.3", "--denylist-source-range=127.0.0.3"];
    let options = GatewayOptions { serve_args: args.iter().map(|a| a.to_string()).collect(), ..Default::default() };
    let gateway = Gateway::start_with(dir.path(), &options).unwrap();
    let cases: &[(u8, &str, u16)] = &[(2, "open.test", 200), (3, "open.test", 403), (4, "open.test", 403), (4, "own.test", 200), (3, "own.test", 403)];
    for (last, host, status) in cases {
        let (got, reached) = get_from(Ipv4Addr::new(127, 0, 0, *last), gateway.http, host, "");
        assert_eq!((got, reached), (*status, *status == 200), "127.0.0.{last} -> {host}");
    }
}

/// A gateway serving `allow.test` to 10.1.2.0/24 only, started with `serve_args`.
fn allow_listed_gateway(dir: &std::path::Path, app: &EchoBackend, serve_args: &[&str]) -> Gateway {
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[app]);
    objects.push(annotated("allow", &[("allowlist-source-range", "10.1.2.0/24")], "allow.test"));
    objects.push(signin_ingress(app));
    // A host with TLS, redirected to HTTPS.
    let ca = wasm_ingress_tests::gateway::certs::TestCa::new("lb-ca").unwrap();
    let (cert, key) = ca.server_cert(&["settings-tls"]).unwrap();
    objects.push(manifests::tls_secret("default", "settings-tls", &cert, &key));
    objects.push(manifests::with_tls(annotated("tls", &[], "settings-tls"), "settings-tls", "settings-tls"));
    manifests::write(dir, "all.yaml", &objects).unwrap();
    let options = GatewayOptions { serve_args: serve_args.iter().map(|a| a.to_string()).collect(), ..Default::default() };
    Gateway::start_with(dir, &options).unwrap()
}

/// `signin.test`: its auth service is the echo backend, which answers the status a client's
/// `x-echo-status` asks for (client headers reach the auth request), so `x-echo-status: 401`
/// sends the client to sign in, with the nginx variables the load balancer's view decides.
fn signin_ingress(app: &EchoBackend) -> Value {
    let auth = [
        ("auth-url", format!("http://{}/auth", app.addr)),
        ("auth-signin", "http://login.test/start?rd=$pass_access_scheme://$best_http_host$escaped_request_uri&s=$scheme".to_string()),
    ];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    annotated("signin", &auth, "signin.test")
}

/// The `Location` of a sign-in redirect (`""` when the answer is not a 302).
fn signin_location(answer: &str) -> String {
    if status_of(answer) != 302 {
        return format!("not a 302: {answer}");
    }
    answer.lines().find_map(|line| line.strip_prefix("location: ").or_else(|| line.strip_prefix("Location: "))).unwrap_or_default().to_string()
}

#[test]
fn the_client_behind_a_load_balancer_is_the_one_it_names() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 92)).unwrap();
    let peer = Ipv4Addr::new(127, 0, 0, 2);
    let get = "GET / HTTP/1.1\r\nHost: allow.test\r\nConnection: close\r\n";

    let dir = tempfile::tempdir().unwrap();
    let proxied = allow_listed_gateway(dir.path(), &app, &["--use-proxy-protocol"]);
    let via_proxy = |source: &str| {
        let head = format!("PROXY TCP4 {source} 127.0.0.1 40000 80\r\n{get}\r\n");
        status_of(&exchange_from(peer, proxied.http, &head, false))
    };
    assert_eq!(via_proxy("10.1.2.3"), 200, "the PROXY header's client is allowed");
    assert_eq!(via_proxy("10.9.9.9"), 403, "and another is not");
    // A connection without the header is closed unanswered (Envoy resets it).
    let mut plain = std::net::TcpStream::connect(proxied.http).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::io::Write::write_all(&mut plain, format!("{get}\r\n").as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut plain, &mut answer);
    assert!(!answer.starts_with("HTTP/1.1 200"), "a connection without the header is not served: {answer:?}");
    drop(proxied);

    let dir = tempfile::tempdir().unwrap();
    let forwarded = allow_listed_gateway(dir.path(), &app, &["--trusted-proxy-hops", "1"]);
    let with_xff = |xff: Option<&str>| {
        let extra = xff.map(|x| format!("X-Forwarded-For: {x}\r\n")).unwrap_or_default();
        get_from(peer, forwarded.http, "allow.test", &extra).0
    };
    assert_eq!(with_xff(Some("10.1.2.3")), 200, "the load balancer's entry names the client");
    assert_eq!(with_xff(Some("10.1.2.3, 10.9.9.9")), 403, "only the trusted hop counts, not what the client wrote before it");
    assert_eq!(with_xff(None), 403, "without the header the peer is the client");

    // settings/forwarded_headers.go "should trust X-Forwarded headers when setting is true": the
    // load balancer's X-Forwarded-* reach the backend as it sent them, the first X-Forwarded-Host
    // is the host sent upstream.
    let upstream = |extra: &str| {
        let head = format!("GET / HTTP/1.1\r\nHost: allow.test\r\nConnection: close\r\nX-Forwarded-For: 10.1.2.3\r\n{extra}\r\n");
        let answer = exchange_from(peer, forwarded.http, &head, false);
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        let start = body.find('{').unwrap_or_else(|| panic!("not answered by the backend: {answer}"));
        Echo::parse(body[start..].trim_end().as_bytes()).unwrap()
    };
    let echo = upstream("X-Forwarded-Port: 1234\r\nX-Forwarded-Proto: myproto\r\nX-Forwarded-Host: myhost\r\n");
    let seen = |name: &str| echo.headers.get(name).cloned().unwrap_or_default();
    assert_eq!(
        [seen("x-forwarded-host"), seen("x-forwarded-proto"), seen("x-forwarded-scheme"), seen("x-forwarded-port"), seen("x-forwarded-for")],
        ["myhost", "myproto", "myproto", "1234", "10.1.2.3"]
    );
    assert_eq!(echo.host, "myhost", "ingress-nginx's $best_http_host is the Host upstream");
    let echo = upstream("X-Forwarded-Host: myhost.com, another.host,example.net\r\n");
    assert_eq!(echo.headers.get("x-forwarded-host").map(String::as_str), Some("myhost.com"));
    assert_eq!(echo.headers.get("x-forwarded-port").map(String::as_str), Some(forwarded.http.port().to_string().as_str()), "none sent: the listener's");

    // settings/tls.go "should not use ports or X-Forwarded-Host during the HTTP to HTTPS
    // redirection": the redirect names the load balancer's host, without its port.
    let head = "GET / HTTP/1.1\r\nHost: settings-tls\r\nConnection: close\r\nX-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Host: example.com:80\r\n\r\n";
    let answer = exchange_from(peer, forwarded.http, head, false);
    assert_eq!(status_of(&answer), 308, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("location: https://example.com\r\n"), "{answer}");

    // The sign-in URL's $best_http_host is the load balancer's host too; its scheme is the one it
    // says the client used.
    let head = "GET /p?q=1 HTTP/1.1\r\nHost: signin.test\r\nConnection: close\r\nX-Forwarded-For: 10.1.2.3\r\n\
                X-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\nx-echo-status: 401\r\n\r\n";
    let location = signin_location(&exchange_from(peer, forwarded.http, head, false));
    assert_eq!(location, "http://login.test/start?rd=https://public.example%2Fp%3Fq%3D1&s=https");
}

/// `--use-proxy-protocol` behind a load balancer that ends TLS itself: a PROXY header naming its
/// port 443 makes the request HTTPS, as ingress-nginx's `lua_ingress.lua` decides
/// (`proxy_protocol_server_port == "443"`), so a TLS host's ssl-redirect does not loop and the
/// backend sees `X-Forwarded-Proto: https`; port 80 is still redirected.
#[test]
fn a_proxy_protocol_connection_to_port_443_is_https() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 94)).unwrap();
    let ca = wasm_ingress_tests::gateway::certs::TestCa::new("pp-ca").unwrap();
    let (cert, key) = ca.server_cert(&["tls.test"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.push(manifests::tls_secret("default", "site-tls", &cert, &key));
    let ingress = manifests::ingress("default", "tls", json!({}), &[("tls.test", vec![manifests::path("/", "Prefix", "app", json!(80))])]);
    objects.push(manifests::with_tls(ingress, "tls.test", "site-tls"));
    objects.push(signin_ingress(&app));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let options = GatewayOptions { serve_args: vec!["--use-proxy-protocol".into()], ..Default::default() };
    let gateway = Gateway::start_with(dir.path(), &options).unwrap();
    let via = |port: u16| {
        let head = format!("PROXY TCP4 10.1.2.3 10.0.0.1 40000 {port}\r\nGET /a?b=c HTTP/1.1\r\nHost: tls.test\r\nConnection: close\r\n\r\n");
        exchange_from(Ipv4Addr::new(127, 0, 0, 2), gateway.http, &head, false)
    };
    let answer = via(443);
    assert_eq!(status_of(&answer), 200, "{answer}");
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    let echo = Echo::parse(body[body.find('{').unwrap()..].trim_end().as_bytes()).unwrap();
    let seen = |name: &str| echo.headers.get(name).cloned().unwrap_or_default();
    assert_eq!([seen("x-forwarded-proto"), seen("x-forwarded-scheme"), seen("x-forwarded-port")], ["https", "https", "443"]);
    let answer = via(80);
    assert_eq!(status_of(&answer), 308, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("location: https://tls.test/a?b=c"), "{answer}");

    // The auth request and the sign-in URL read the same decision (lua_ingress.lua sets
    // $pass_access_scheme to https for port 443).
    let signin = |port: u16| {
        let head = format!(
            "PROXY TCP4 10.1.2.3 10.0.0.1 40000 {port}\r\nGET /p HTTP/1.1\r\nHost: signin.test\r\nConnection: close\r\nx-echo-status: 401\r\n\r\n"
        );
        signin_location(&exchange_from(Ipv4Addr::new(127, 0, 0, 2), gateway.http, &head, false))
    };
    assert_eq!(signin(443), "http://login.test/start?rd=https://signin.test%2Fp&s=https");
    assert_eq!(signin(80), "http://login.test/start?rd=http://signin.test%2Fp&s=http");
}
