//! Digest authentication (`auth-type: digest`) through the whole product (control plane + real
//! Envoy + the built filter), as nginx's digest module that ingress-nginx builds in answers:
//! - curl (`--digest`), a real client, signs in with the right password and is refused with a
//!   wrong one;
//! - with a hand-made client: the challenge's form, the response computed as RFC 2617 says,
//!   `Authentication-Info`'s `rspauth`, a replayed `nc` refused, an `nc` past the module's 20
//!   answered `stale="true"`, a nonce the filter never issued refused, a `uri` that is not the
//!   request's refused;
//! - five failures in a row from one address refuse it unheard (401 without a challenge), even
//!   with the right password, while another address still signs in.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use md5::{Digest as _, Md5};
use serde_json::{json, Value};
use wasm_ingress_tests::backend::{Echo, EchoBackend};
use wasm_ingress_tests::gateway::{manifests, Gateway};

const NGINX: &str = "nginx.ingress.kubernetes.io/";
const HOST: &str = "digest.test";

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// An answer: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// `GET path` on the digest host from the client address `source`, with `authorization`.
fn get(gateway: &Gateway, source: Ipv4Addr, path: &str, authorization: Option<&str>) -> Answer {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .local_address(IpAddr::V4(source))
            .resolve(HOST, SocketAddr::from(([127, 0, 0, 1], 0)))
            .build()
            .unwrap();
        let mut request = client.get(gateway.http_url(HOST, path));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().iter().map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or_default().to_string())).collect();
        Answer { status, headers, body: response.bytes().await.unwrap().to_vec() }
    })
}

/// The parameters of a `WWW-Authenticate: Digest …` value.
fn challenge(value: &str) -> BTreeMap<String, String> {
    let params = value.strip_prefix("Digest ").unwrap_or_else(|| panic!("not a digest challenge: {value}"));
    params
        .split(", ")
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_string(), value.trim_matches('"').to_string())
        })
        .collect()
}

/// A client's `Authorization` for `uri` with the nonce of `nonce`, `nc` and the password.
fn authorization(nonce: &str, nc: &str, uri: &str, password: &str) -> String {
    let ha1 = md5_hex(&format!("alice:Staff:{password}"));
    let ha2 = md5_hex(&format!("GET:{uri}"));
    let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"));
    format!("Digest username=\"alice\", realm=\"Staff\", nonce=\"{nonce}\", uri=\"{uri}\", qop=auth, nc={nc}, cnonce=\"c0ffee\", response=\"{response}\"")
}

/// A new nonce: the challenge of a request without credentials.
fn fresh_nonce(gateway: &Gateway, source: Ipv4Addr) -> String {
    let answer = get(gateway, source, "/private", None);
    assert_eq!(answer.status, 401);
    challenge(&answer.headers["www-authenticate"])["nonce"].clone()
}

fn gateway(app: &EchoBackend, dir: &std::path::Path) -> Gateway {
    use base64::Engine as _;
    let htdigest = format!("alice:Staff:{}\nbob:Other:{}\n", md5_hex("alice:Staff:wonderland"), md5_hex("bob:Other:builder"));
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[app]);
    objects.push(json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "htdigest", "namespace": "default"},
                        "data": {"auth": base64::engine::general_purpose::STANDARD.encode(htdigest)}}));
    let annotations: serde_json::Map<String, Value> =
        [("auth-type", "digest"), ("auth-secret", "htdigest"), ("auth-realm", "Staff")].iter().map(|(k, v)| (format!("{NGINX}{k}"), json!(v))).collect();
    objects.push(manifests::ingress("default", "digest", Value::Object(annotations), &[(HOST, vec![manifests::path("/", "Prefix", "app", json!(80))])]));
    manifests::write(dir, "all.yaml", &objects).unwrap();
    Gateway::start(dir).unwrap()
}

#[test]
fn digest_auth_behaves_like_nginx_digest_module() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 151)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gateway = gateway(&app, dir.path());

    // curl, a real digest client: it answers the challenge itself.
    let curl = |source: &str, user: &str| {
        let output = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "15", "--digest", "-u", user, "--interface", source])
            .args(["--resolve", &format!("{HOST}:{}:127.0.0.1", gateway.http.port()), &gateway.http_url(HOST, "/private?x=1")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    assert_eq!(curl("127.0.0.152", "alice:wonderland"), "200", "the right password");
    assert_eq!(curl("127.0.0.152", "alice:wrong"), "401", "a wrong one");
    assert_eq!(curl("127.0.0.152", "bob:builder"), "401", "a user of another realm");

    // The challenge, as the module writes it.
    let me = Ipv4Addr::new(127, 0, 0, 153);
    let answer = get(&gateway, me, "/private", None);
    assert_eq!(answer.status, 401);
    let params = challenge(&answer.headers["www-authenticate"]);
    assert_eq!((params["algorithm"].as_str(), params["qop"].as_str(), params["realm"].as_str()), ("MD5", "auth", "Staff"));
    assert!(params["nonce"].len() == 16 && params["nonce"].bytes().all(|b| b.is_ascii_hexdigit()), "{params:?}");
    assert!(!params.contains_key("stale"));

    // RFC 2617's response passes; the upstream's answer says rspauth (HA2 = MD5(":uri")).
    let nonce = params["nonce"].clone();
    let uri = "/private?x=1";
    let signed = authorization(&nonce, "00000001", uri, "wonderland");
    let answer = get(&gateway, me, uri, Some(&signed));
    assert_eq!(answer.status, 200);
    let echo = Echo::parse(&answer.body).unwrap();
    assert_eq!((echo.backend.as_str(), echo.headers.get("authorization")), ("app", None), "the credentials stop at the proxy, as ingress-nginx clears them");
    let ha1 = md5_hex("alice:Staff:wonderland");
    let rspauth = md5_hex(&format!("{ha1}:{nonce}:00000001:c0ffee:auth:{}", md5_hex(&format!(":{uri}"))));
    assert_eq!(answer.headers["authentication-info"], format!("qop=\"auth\", rspauth=\"{rspauth}\", cnonce=\"c0ffee\", nc=00000001"));

    // The same nc again is a replay; the next nc is fine; nc 20 is past the module's replays.
    assert_eq!(get(&gateway, me, uri, Some(&signed)).status, 401, "a replayed request");
    assert_eq!(get(&gateway, me, uri, Some(&authorization(&nonce, "00000002", uri, "wonderland"))).status, 200);
    let past = get(&gateway, me, uri, Some(&authorization(&nonce, "00000014", uri, "wonderland")));
    assert_eq!((past.status, challenge(&past.headers["www-authenticate"]).get("stale").cloned()), (401, Some("true".to_string())));
    // A nonce never issued, a uri not the request's (the query alone may be left out).
    assert_eq!(get(&gateway, me, uri, Some(&authorization("0123456789abcdef", "00000001", uri, "wonderland"))).status, 401);
    let nonce = fresh_nonce(&gateway, me);
    assert_eq!(get(&gateway, me, uri, Some(&authorization(&nonce, "00000001", "/other", "wonderland"))).status, 401);
    assert_eq!(get(&gateway, me, uri, Some(&authorization(&nonce, "00000002", "/private", "wonderland"))).status, 200, ".NET's uri");

    // Five failures in a row: that address is refused unheard, the right password too.
    let guesser = Ipv4Addr::new(127, 0, 0, 154);
    let nonce = fresh_nonce(&gateway, guesser);
    for (i, nc) in ["00000001", "00000002", "00000003", "00000004", "00000005"].iter().enumerate() {
        let answer = get(&gateway, guesser, uri, Some(&authorization(&nonce, nc, uri, "guess")));
        assert!(answer.status == 401 && answer.headers.contains_key("www-authenticate"), "failure {i} is challenged");
    }
    let unheard = get(&gateway, guesser, uri, Some(&authorization(&nonce, "00000006", uri, "wonderland")));
    assert_eq!((unheard.status, unheard.headers.get("www-authenticate")), (401, None));
    assert_eq!(curl("127.0.0.155", "alice:wonderland"), "200", "another address still signs in");
}
