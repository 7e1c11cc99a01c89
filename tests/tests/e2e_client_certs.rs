//! ingress-nginx client certificates (`auth-tls-*`) through the whole product (the control plane,
//! real Envoy and the built filter), with the cases of ingress-nginx's `authtls.go`: a host with
//! `auth-tls-verify-client: on` serves a client whose certificate its CA signed, with the
//! `ssl-client-*` headers upstream (the PEM too with `auth-tls-pass-certificate-to-upstream`),
//! answers 400 without a certificate and ends the handshake for a certificate of another CA;
//! `optional` serves clients without one (`ssl-client-verify: NONE`, forged headers dropped);
//! `off` asks for none but still sends `ssl-client-verify: NONE` and drops forged headers;
//! a request for the host over a connection negotiated for another name gets 421, one without
//! SNI (a client that dialled the address) is judged as one without a certificate (400);
//! `auth-tls-match-cn` refuses other subjects 403; a `ca.crl` revokes the certificates it lists; a missing CA Secret fails closed (403, ingress-nginx's AuthTLSError).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use wasm_ingress_tests::backend::{Echo, EchoBackend};
use wasm_ingress_tests::gateway::certs::TestCa;
use wasm_ingress_tests::gateway::{manifests, Gateway};

const NGINX: &str = "nginx.ingress.kubernetes.io/";
const HOSTS: [&str; 8] = ["mtls.test", "optional.test", "other.test", "broken.test", "cn.test", "revoking.test", "off.test", "deep.test"];

fn ingress(name: &str, host: &str, annotations: &[(&str, &str)]) -> Value {
    let annotations: serde_json::Map<String, Value> = annotations.iter().map(|(k, v)| (format!("{NGINX}{k}"), json!(v))).collect();
    let mut ingress = manifests::ingress("default", name, Value::Object(annotations), &[(host, vec![manifests::path("/", "Prefix", "app", json!(80))])]);
    ingress["spec"]["tls"] = json!([{"hosts": [host], "secretName": "server-tls"}]);
    ingress
}

fn ca_secret(name: &str, ca_pem: &str, crl_pem: Option<&str>) -> Value {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let mut data = json!({"ca.crt": b64(ca_pem)});
    if let Some(crl) = crl_pem {
        data["ca.crl"] = json!(b64(crl));
    }
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"}, "data": data})
}

/// An HTTP/1.1 client for every test host, trusting `server_ca`, presenting `identity` if given.
fn client(server_ca: &str, identity: Option<&(String, String)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .http1_only()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(server_ca.as_bytes()).unwrap());
    for host in HOSTS {
        builder = builder.resolve(host, SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    if let Some((cert, key)) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// GET `url` (with an explicit `Host` if given): status and echo, or the error text.
fn get(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> Result<(u16, Option<Echo>), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut request = client.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| format!("{e:?}"))?;
        Ok((status, Echo::parse(&body).ok()))
    })
}

#[test]
fn client_certificates_behave_like_ingress_nginx() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 161)).unwrap();
    let server_ca = TestCa::new("server-ca").unwrap();
    let client_ca = TestCa::new("client-ca").unwrap();
    let stranger_ca = TestCa::new("stranger-ca").unwrap();
    let (server_cert, server_key) = server_ca.server_cert(&HOSTS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([
        manifests::tls_secret("default", "server-tls", &server_cert, &server_key),
        ca_secret("client-ca", &client_ca.cert_pem, None),
        ca_secret("revoking-ca", &client_ca.cert_pem, Some(&client_ca.crl(&[666]).unwrap())),
        ingress("revoking", "revoking.test", &[("auth-tls-secret", "default/revoking-ca")]),
        ingress("mtls", "mtls.test", &[("auth-tls-secret", "default/client-ca"), ("auth-tls-verify-client", "on"), ("auth-tls-pass-certificate-to-upstream", "true")]),
        ingress("optional", "optional.test", &[("auth-tls-secret", "default/client-ca"), ("auth-tls-verify-client", "optional")]),
        ingress("other", "other.test", &[]),
        ingress("broken", "broken.test", &[("auth-tls-secret", "default/missing")]),
        ingress("cn", "cn.test", &[("auth-tls-secret", "default/client-ca"), ("auth-tls-match-cn", "CN=(alice|carol)$")]),
        ingress("off", "off.test", &[("auth-tls-secret", "default/client-ca"), ("auth-tls-verify-client", "off")]),
        ingress("deep", "deep.test", &[("auth-tls-secret", "default/client-ca"), ("auth-tls-verify-depth", "2")]),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();
    let url = |host: &str| gateway.https_url(host, "/x");

    let alice = client_ca.client_cert("alice").unwrap();
    let with_alice = client(&server_ca.cert_pem, Some(&alice));
    let anonymous = client(&server_ca.cert_pem, None);

    // A certificate of the host's CA: served, with nginx's headers upstream.
    let (status, echo) = get(&with_alice, &url("mtls.test"), &[]).unwrap();
    let echo = echo.unwrap_or_else(|| panic!("status {status} without echo"));
    assert_eq!((status, echo.backend.as_str()), (200, "app"));
    let header = |name: &str| echo.headers.get(name).cloned().unwrap_or_default();
    assert_eq!(header("ssl-client-verify"), "SUCCESS");
    assert_eq!(header("ssl-client-subject-dn"), "CN=alice");
    assert_eq!(header("ssl-client-issuer-dn"), "CN=client-ca");
    assert!(header("ssl-client-cert").starts_with("-----BEGIN%20CERTIFICATE-----"), "{}", header("ssl-client-cert"));

    // No certificate: 400, as nginx's "No required SSL certificate was sent".
    assert_eq!(get(&anonymous, &url("mtls.test"), &[]).unwrap().0, 400);
    // A certificate of another CA: the handshake fails, nothing is served.
    let stranger = client(&server_ca.cert_pem, Some(&stranger_ca.client_cert("mallory").unwrap()));
    assert!(get(&stranger, &url("mtls.test"), &[]).is_err(), "a stranger's certificate must not be served");

    // optional: served without a certificate, forged headers dropped; with one, verified.
    let forged = [("ssl-client-subject-dn", "CN=admin"), ("ssl-client-verify", "SUCCESS")];
    let (status, echo) = get(&anonymous, &url("optional.test"), &forged).unwrap();
    let echo = echo.unwrap();
    assert_eq!((status, echo.headers.get("ssl-client-verify").map(String::as_str)), (200, Some("NONE")));
    assert_eq!(echo.headers.get("ssl-client-subject-dn"), None, "a client's own header never reaches the upstream");
    let (status, echo) = get(&with_alice, &url("optional.test"), &[]).unwrap();
    assert_eq!((status, echo.unwrap().headers.get("ssl-client-verify").cloned()), (200, Some("SUCCESS".to_string())));
    assert_eq!(echo_of(get(&with_alice, &url("optional.test"), &[])).headers.get("ssl-client-cert"), None, "the PEM only when asked for");

    // A connection negotiated for another name cannot reach the host: 421.
    let port = gateway.https_url("x", "").rsplit(':').next().unwrap().to_string();
    let (status, _) = get(&with_alice, &url("other.test"), &[("host", &format!("mtls.test:{port}"))]).unwrap();
    assert_eq!(status, 421);
    // A client that dialled the address sends no SNI (ingress-nginx's e2e client against the
    // controller's IP): no certificate was asked for, so as nginx 400, or the optional host served.
    let by_address = reqwest::Client::builder().timeout(Duration::from_secs(10)).http1_only().danger_accept_invalid_certs(true).build().unwrap();
    let address_url = format!("https://127.0.0.1:{port}/x");
    assert_eq!(get(&by_address, &address_url, &[("host", "mtls.test")]).unwrap().0, 400);
    let (status, echo) = get(&by_address, &address_url, &[("host", "optional.test")]).unwrap();
    assert_eq!((status, echo.and_then(|e| e.headers.get("ssl-client-verify").cloned())), (200, Some("NONE".to_string())));
    // off: no certificate asked for, but the upstream gets ssl-client-verify: NONE and never the
    // client's own ssl-client-* headers (nginx sets them on such a host too).
    for response in [get(&anonymous, &url("off.test"), &forged), get(&with_alice, &url("off.test"), &forged)] {
        let (status, echo) = response.unwrap();
        let echo = echo.unwrap();
        assert_eq!((status, echo.headers.get("ssl-client-verify").map(String::as_str)), (200, Some("NONE")));
        assert_eq!(echo.headers.get("ssl-client-subject-dn"), None);
    }
    // Hosts without the annotations are not asked for certificates.
    assert_eq!(get(&anonymous, &url("other.test"), &[]).unwrap().0, 200);
    // auth-tls-match-cn: the subject must match, else nginx's 403.
    assert_eq!(get(&with_alice, &url("cn.test"), &[]).unwrap().0, 200);
    let with_bob = client(&server_ca.cert_pem, Some(&client_ca.client_cert("bob").unwrap()));
    assert_eq!(get(&with_bob, &url("cn.test"), &[]).unwrap().0, 403);
    // Over plain HTTP its 403 comes before the redirect to HTTPS, as nginx checks it in the
    // host's `server` (an empty subject there); a host without it is redirected.
    let mut plain = reqwest::Client::builder().timeout(Duration::from_secs(10)).redirect(reqwest::redirect::Policy::none());
    for host in ["cn.test", "mtls.test"] {
        plain = plain.resolve(host, SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    let plain = plain.build().unwrap();
    assert_eq!(get(&plain, &gateway.http_url("cn.test", "/x"), &[]).unwrap().0, 403);
    assert_eq!(get(&plain, &gateway.http_url("mtls.test", "/x"), &[]).unwrap().0, 308);
    // ca.crl: a revoked certificate ends the handshake; others of the CA are served.
    let revoked = client(&server_ca.cert_pem, Some(&client_ca.client_cert_with_serial("eve", Some(666)).unwrap()));
    assert!(get(&revoked, &url("revoking.test"), &[]).is_err(), "a revoked certificate must not be served");
    assert_eq!(get(&revoked, &url("mtls.test"), &[]).unwrap().0, 200, "revoked only where the list applies");
    assert_eq!(get(&with_alice, &url("revoking.test"), &[]).unwrap().0, 200);
    // auth-tls-verify-depth is nginx's (OpenSSL's): the intermediates between the client's
    // certificate and the CA. The default 1 takes a certificate from an intermediate CA, not one
    // from an intermediate's intermediate; 2 takes both.
    let team_ca = client_ca.intermediate("team-ca").unwrap();
    let squad_ca = team_ca.intermediate("squad-ca").unwrap();
    let (team_cert, team_key) = team_ca.client_cert("dave").unwrap();
    let (squad_cert, squad_key) = squad_ca.client_cert("erin").unwrap();
    let with_team = client(&server_ca.cert_pem, Some(&(format!("{team_cert}{}", team_ca.cert_pem), team_key)));
    let with_squad = client(&server_ca.cert_pem, Some(&(format!("{squad_cert}{}{}", squad_ca.cert_pem, team_ca.cert_pem), squad_key)));
    let (status, echo) = get(&with_team, &url("mtls.test"), &[]).unwrap();
    assert_eq!((status, echo.map(|e| e.headers.get("ssl-client-subject-dn").cloned())), (200, Some(Some("CN=dave".to_string()))));
    assert!(get(&with_squad, &url("mtls.test"), &[]).is_err(), "two intermediates are deeper than the default depth 1");
    assert_eq!(get(&with_squad, &url("deep.test"), &[]).unwrap().0, 200);
    // A CA Secret that does not exist: closed.
    assert_eq!(get(&with_alice, &url("broken.test"), &[]).unwrap().0, 403);
}

fn echo_of(result: Result<(u16, Option<Echo>), String>) -> Echo {
    result.unwrap().1.unwrap()
}
