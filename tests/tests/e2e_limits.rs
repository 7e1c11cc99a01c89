//! Per-client request limits by ingress-nginx annotation through the whole product (the control
//! plane, real Envoy and the built filter), with clients on several loopback addresses:
//! `limit-rps: 1` with `limit-burst-multiplier: 3` lets a client make 4 requests at once (nginx's
//! burst of 3 after the first) and
//! answers the next ones 503 (ingress-nginx's `limit_req … burst nodelay` status; 429 with
//! `serve --limit-req-status-code 429`, and `--limit-conn-status-code` likewise), while another
//! client, and another Ingress's paths, are not limited; clients of `limit-whitelist` /
//! `limit-allowlist` are never limited (ingress-nginx's `geo` block giving them an empty key), also
//! beside a `whitelist-source-range` that still refuses outsiders 403. `limit-connections: 8`
//! with 20 slow requests at once answers 8 of them 200 and 12 503, as ingress-nginx's
//! `limitconnections.go` e2e test expects; the counts are given back when requests end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Value};
use wasm_ingress_filter::decision::status_body;
use wasm_ingress_tests::backend::EchoBackend;
use wasm_ingress_tests::gateway::{manifests, Gateway, GatewayOptions};

const NGINX: &str = "nginx.ingress.kubernetes.io/";

fn ingress(name: &str, annotations: &[(&str, &str)], host: &str) -> Value {
    let annotations: serde_json::Map<String, Value> = annotations.iter().map(|(k, v)| (format!("{NGINX}{k}"), json!(v))).collect();
    manifests::ingress("default", name, Value::Object(annotations), &[(host, vec![manifests::path("/", "Prefix", "app", json!(80))])])
}

/// The statuses of `count` requests sent at once (one after another on one connection) by the
/// client address `source` to `host`.
fn burst(gateway: &Gateway, source: Ipv4Addr, host: &str, count: usize) -> Vec<u16> {
    burst_answers(gateway, source, host, count).into_iter().map(|(status, _)| status).collect()
}

/// [`burst`]'s statuses with each answer's body.
fn burst_answers(gateway: &Gateway, source: Ipv4Addr, host: &str, count: usize) -> Vec<(u16, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .local_address(IpAddr::V4(source))
            .resolve(host, SocketAddr::from(([127, 0, 0, 1], 0)))
            .build()
            .unwrap();
        let mut answers = Vec::new();
        for _ in 0..count {
            let response = client.get(gateway.http_url(host, "/")).send().await.unwrap();
            let status = response.status().as_u16();
            answers.push((status, response.text().await.unwrap()));
        }
        answers
    })
}

#[test]
fn limit_rps_limits_each_client_like_ingress_nginx() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 151)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([ingress("limited", &[("limit-rps", "1"), ("limit-burst-multiplier", "3")], "limited.test"), ingress("open", &[], "open.test")]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();

    let answers = burst_answers(&gateway, Ipv4Addr::new(127, 0, 0, 2), "limited.test", 8);
    assert_eq!(answers[7].1, status_body(503), "nginx's page, not Envoy's local_rate_limited");
    let first: Vec<u16> = answers.into_iter().map(|(status, _)| status).collect();
    assert_eq!(first.iter().filter(|s| **s == 200).count(), 4, "one request and a burst of rps × multiplier, as nginx: {first:?}");
    assert!(first[..4].iter().all(|s| *s == 200) && first[4..].iter().all(|s| *s == 503), "{first:?}");
    let other = burst(&gateway, Ipv4Addr::new(127, 0, 0, 3), "limited.test", 4);
    assert_eq!(other, vec![200; 4], "another client has its own bucket");
    let open = burst(&gateway, Ipv4Addr::new(127, 0, 0, 2), "open.test", 8);
    assert_eq!(open, vec![200; 8], "another Ingress is not limited");
}

/// ingress-nginx's ConfigMap `limit-req-status-code: "429"` and `limit-conn-status-code: "429"`
/// as `serve --limit-req-status-code 429 --limit-conn-status-code 429`.
#[test]
fn limit_status_codes_set_the_answer_past_the_limits() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 153)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.push(ingress("limited", &[("limit-rps", "1"), ("limit-burst-multiplier", "2")], "limited.test"));
    objects.push(ingress("capped", &[("limit-connections", "2")], "capped.test"));
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let serve_args = ["--limit-req-status-code", "429", "--limit-conn-status-code", "429"].map(String::from).to_vec();
    let gateway = Gateway::start_with(dir.path(), &GatewayOptions { serve_args, ..Default::default() }).unwrap();
    let answers = burst_answers(&gateway, Ipv4Addr::new(127, 0, 0, 2), "limited.test", 4);
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(answers[3].1, status_body(429), "nginx's page for the status");
    let answers = concurrent_answers(&gateway, Ipv4Addr::new(127, 0, 0, 3), "capped.test", 5, 1500);
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 200, 429, 429, 429]);
    assert_eq!(answers[2].1, status_body(429), "nginx's page for the status");
}

#[test]
fn allow_listed_clients_are_never_limited() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 152)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    let limited = [("limit-rps", "1"), ("limit-burst-multiplier", "3")];
    objects.extend([
        ingress("exempting", &[limited[0], limited[1], ("limit-whitelist", "127.0.0.4/32, 10.0.0.0/8")], "exempting.test"),
        ingress(
            "guarded",
            &[limited[0], limited[1], ("limit-allowlist", "127.0.0.6"), ("whitelist-source-range", "127.0.0.0/24")],
            "guarded.test",
        ),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();

    assert_eq!(burst(&gateway, Ipv4Addr::new(127, 0, 0, 4), "exempting.test", 8), vec![200; 8], "an allow-listed client");
    let limited = burst(&gateway, Ipv4Addr::new(127, 0, 0, 5), "exempting.test", 8);
    assert_eq!(limited, [vec![200; 4], vec![503; 4]].concat(), "a client not on the list");
    assert_eq!(burst(&gateway, Ipv4Addr::new(127, 0, 0, 6), "guarded.test", 8), vec![200; 8], "exempt beside a source range");
    let limited = burst(&gateway, Ipv4Addr::new(127, 0, 0, 7), "guarded.test", 8);
    assert_eq!(limited, [vec![200; 4], vec![503; 4]].concat(), "inside the source range, not exempt");
    assert_eq!(burst(&gateway, Ipv4Addr::new(127, 0, 1, 6), "guarded.test", 2), vec![403; 2], "outside the source range");
}

/// The statuses of `count` requests to `host` sent all at once (each on its own connection) by the
/// client address `source`, each answered by the backend after `delay_ms`.
fn concurrent(gateway: &Gateway, source: Ipv4Addr, host: &str, count: usize, delay_ms: u64) -> Vec<u16> {
    concurrent_answers(gateway, source, host, count, delay_ms).into_iter().map(|(status, _)| status).collect()
}

/// [`concurrent`]'s statuses with each answer's body, sorted.
fn concurrent_answers(gateway: &Gateway, source: Ipv4Addr, host: &str, count: usize, delay_ms: u64) -> Vec<(u16, String)> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .local_address(IpAddr::V4(source))
            .resolve(host, SocketAddr::from(([127, 0, 0, 1], 0)))
            .build()
            .unwrap();
        let requests = (0..count).map(|_| {
            let request = client.get(gateway.http_url(host, "/")).header("x-echo-delay-ms", delay_ms.to_string());
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            })
        });
        let mut answers = Vec::new();
        for request in requests.collect::<Vec<_>>() {
            answers.push(request.await.unwrap());
        }
        answers.sort_unstable();
        answers
    })
}

#[test]
fn limit_connections_caps_requests_in_progress_per_client_like_ingress_nginx() {
    let app = EchoBackend::spawn("app", Ipv4Addr::new(127, 0, 0, 153)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = manifests::service("default", "app", &[("http", 80)], &[&app]);
    objects.extend([
        ingress("capped", &[("limit-connections", "8"), ("limit-allowlist", "127.0.0.9")], "capped.test"),
        ingress("open", &[], "open.test"),
    ]);
    manifests::write(dir.path(), "all.yaml", &objects).unwrap();
    let gateway = Gateway::start(dir.path()).unwrap();

    let expected = [vec![200; 8], vec![503; 12]].concat();
    let first = concurrent(&gateway, Ipv4Addr::new(127, 0, 0, 8), "capped.test", 20, 1500);
    assert_eq!(first, expected, "ingress-nginx's limitconnections.go: the limit answers 200, the rest 503");
    let again = concurrent(&gateway, Ipv4Addr::new(127, 0, 0, 8), "capped.test", 20, 1500);
    assert_eq!(again, expected, "the counts were given back when the first requests ended");
    let one_by_one = burst(&gateway, Ipv4Addr::new(127, 0, 0, 8), "capped.test", 12);
    assert_eq!(one_by_one, vec![200; 12], "requests one after another never hold more than one count");
    let exempt = concurrent(&gateway, Ipv4Addr::new(127, 0, 0, 9), "capped.test", 12, 1000);
    assert_eq!(exempt, vec![200; 12], "an allow-listed client is not counted");
    let open = concurrent(&gateway, Ipv4Addr::new(127, 0, 0, 8), "open.test", 12, 1000);
    assert_eq!(open, vec![200; 12], "another Ingress has no limit");
}
