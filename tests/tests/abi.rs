//! ABI tests of the BUILT filter (`make wasm`): load the release `.wasm` in wasmtime, drive it through
//! the proxy-wasm 0.2.1 ABI like Envoy does, and assert what Envoy would see — the cluster and policy
//! headers, the rewritten `:path`, `x-forwarded-host`, local responses and redirects, refused
//! configurations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use wasm_ingress_filter::table::{CLUSTER_HEADER, POLICY_HEADER};
use wasm_ingress_tests::abi::{header_values, FilterVm, RequestOutcome, VmOptions};
use wasm_ingress_tests::paths;

/// The route table most tests use.
fn shop_table(version: &str) -> String {
    json!({
        "schema": 1,
        "version": version,
        "hosts": [
            {"host": "shop.example.com", "routes": [
                {"path": {"type": "Exact", "value": "/"}, "action": {"kind": "Forward", "backends": [{"cluster": "default/home/80"}]}},
                {"path": {"type": "Prefix", "value": "/api"}, "action": {"kind": "Forward", "backends": [{"cluster": "default/api/8080"}]},
                 "origin": "default/shop: spec.rules[0].http.paths[1]"},
                {"path": {"type": "Regex", "value": "(?i)/something(/|$)(.*)"},
                 "action": {"kind": "Forward", "backends": [{"cluster": "default/rewrite/80"}],
                            "rewrite": {"type": "Template", "value": "/$2"}}},
                {"path": {"type": "Prefix", "value": "/gone"}, "action": {"kind": "Respond", "status": 503, "body": "service default/gone not found"}},
                {"path": {"type": "Prefix", "value": "/vhost"},
                 "action": {"kind": "Forward", "backends": [{"cluster": "default/api/8080"}], "host_rewrite": "internal.svc"}}
            ]},
            {"host": "*.example.com", "routes": [
                {"path": {"type": "Prefix", "value": "/"}, "action": {"kind": "Forward", "backends": [{"cluster": "default/wildcard/80"}]}}
            ]}
        ]
    })
    .to_string()
}

/// A started and configured VM.
fn vm_with(table: &str) -> FilterVm {
    let wasm = paths::filter_wasm().expect("built filter");
    let mut vm = FilterVm::load(&wasm).expect("module loads");
    assert!(vm.start(b"").expect("vm start runs"), "proxy_on_vm_start returned false");
    assert!(vm.configure(table.as_bytes()).expect("configure runs"), "table refused: {:?}", vm.host().logs);
    vm
}

fn cluster(outcome: &RequestOutcome) -> Option<String> {
    outcome.header(CLUSTER_HEADER)
}

#[test]
fn module_exports_the_proxy_wasm_abi_and_reactor_entry_point() {
    let wasm = paths::filter_wasm().expect("built filter");
    let mut vm = FilterVm::load(&wasm).expect("module loads");
    let exports = vm.exports();
    for export in ["_initialize", "proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "proxy_on_request_headers", "proxy_on_configure"] {
        assert!(exports.iter().any(|e| e == export), "missing export {export}: {exports:?}");
    }
    assert!(!exports.iter().any(|e| e == "_start"), "a cdylib filter must be a reactor, not a command");
    assert!(vm.imports.iter().any(|i| i == "env::proxy_get_header_map_value"), "{:?}", vm.imports);
}

#[test]
fn routes_by_host_and_path_and_sets_forwarded_host() {
    let mut vm = vm_with(&shop_table("v1"));
    let rows = [
        ("shop.example.com", "/", "default/home/80"),
        ("shop.example.com", "/api", "default/api/8080"),
        ("SHOP.example.com:8443", "/api/users?id=7", "default/api/8080"),
        ("www.example.com", "/anything", "default/wildcard/80"),
    ];
    for (authority, path, expected) in rows {
        let outcome = vm.get(authority, path, &[]).unwrap();
        assert_eq!(outcome.action, 0, "Continue expected for {authority}{path}");
        assert_eq!(cluster(&outcome).as_deref(), Some(expected), "{authority}{path}");
        assert_eq!(outcome.header("x-forwarded-host").as_deref(), Some(authority), "{authority}{path}");
        assert_eq!(outcome.header(":path").as_deref(), Some(path), "path must be unchanged without a rewrite");
        assert!(outcome.local_response.is_none());
    }
}

#[test]
fn falls_back_to_host_header_when_authority_is_missing() {
    let mut vm = vm_with(&shop_table("v1"));
    let outcome = vm.request(&[(b":method", b"GET"), (b":path", b"/api/x"), (b"host", b"shop.example.com")]).unwrap();
    assert_eq!(cluster(&outcome).as_deref(), Some("default/api/8080"));
    assert_eq!(outcome.header("x-forwarded-host").as_deref(), Some("shop.example.com"));
}

#[test]
fn rewrite_target_rewrites_path_and_keeps_query() {
    let mut vm = vm_with(&shop_table("v1"));
    let rows = [
        ("/something/new?x=1", "/new?x=1"),
        ("/something", "/"),
        ("/something/", "/"),
        ("/SOMETHING/a/b", "/a/b"),
    ];
    for (path, expected) in rows {
        let outcome = vm.get("shop.example.com", path, &[]).unwrap();
        assert_eq!(cluster(&outcome).as_deref(), Some("default/rewrite/80"), "{path}");
        assert_eq!(outcome.header(":path").as_deref(), Some(expected), "{path}");
    }
}

#[test]
fn host_rewrite_replaces_authority_and_keeps_the_original_in_forwarded_host() {
    let mut vm = vm_with(&shop_table("v1"));
    let outcome = vm.get("shop.example.com", "/vhost/a", &[]).unwrap();
    assert_eq!(outcome.header(":authority").as_deref(), Some("internal.svc"));
    assert_eq!(outcome.header("x-forwarded-host").as_deref(), Some("shop.example.com"));
}

#[test]
fn unmatched_requests_get_a_404_from_the_filter() {
    let mut vm = vm_with(&shop_table("v1"));
    for (authority, path) in [("shop.example.com", "/nope"), ("other.org", "/"), ("a.b.example.com", "/")] {
        let outcome = vm.get(authority, path, &[]).unwrap();
        assert_eq!(outcome.action, 1, "Pause expected after a local response");
        let response = outcome.local_response.as_ref().expect("local response");
        assert_eq!(response.status, 404, "{authority}{path}");
        assert!(response.body_text().contains("404 Not Found"), "{}", response.body_text());
        assert!(!response.body_text().contains(path) || path == "/", "the body must not echo the request path");
        assert_eq!(cluster(&outcome), None);
    }
}

#[test]
fn respond_action_sends_its_status_and_body() {
    let mut vm = vm_with(&shop_table("v1"));
    let outcome = vm.get("shop.example.com", "/gone/x", &[]).unwrap();
    let response = outcome.local_response.expect("local response");
    assert_eq!(response.status, 503);
    assert_eq!(response.body_text(), "service default/gone not found");
    assert!(response.headers.iter().any(|(n, v)| n == b"content-type" && v.starts_with(b"text/html")));
}

#[test]
fn a_client_sent_cluster_header_never_picks_the_cluster() {
    let mut vm = vm_with(&shop_table("v1"));
    // Forwarded request: exactly one value, the filter's.
    let outcome = vm
        .request(&[
            (b":authority", b"shop.example.com"),
            (b":path", b"/api"),
            (CLUSTER_HEADER.as_bytes(), b"kube-system/secret/443"),
            (b"X-Wasm-Ingress-Cluster", b"kube-system/other/443"),
        ])
        .unwrap();
    assert_eq!(header_values(&outcome.headers, CLUSTER_HEADER), vec![b"default/api/8080".as_slice()]);
    // Not routed: answered by the filter (Envoy sends it to no cluster), the client's value
    // untouched; Envoy's listener removes it before any filter runs (e2e_control_plane).
    for path in [b"/nope".as_slice(), b"/api"] {
        let outcome = vm.request(&[(b":authority", b"unknown.org"), (b":path", path), (CLUSTER_HEADER.as_bytes(), b"kube-system/secret/443")]).unwrap();
        assert_eq!((outcome.action, outcome.local_response.as_ref().map(|r| r.status)), (1, Some(404)), "{path:?}");
    }
    let outcome = vm
        .request(&[(b":authority", b"shop.example.com"), (b":path", b"/nope"), (CLUSTER_HEADER.as_bytes(), b"kube-system/secret/443")])
        .unwrap();
    assert_eq!((outcome.action, outcome.local_response.as_ref().map(|r| r.status)), (1, Some(404)));
}

/// `custom-headers` on the filter's own answers: a route's `answer_headers` ride on its redirects
/// and its other answers, never on what it forwards, and never on another route's answers.
#[test]
fn answer_headers_ride_on_the_filters_own_answers_only() {
    let table = json!({
        "schema": 1,
        "hosts": [{"host": "shop.example.com", "routes": [
            {"path": {"type": "Prefix", "value": "/moved"}, "action": {"kind": "Redirect", "status": 301, "location": {"kind": "Url", "url": "https://elsewhere.example.com/"}},
             "answer_headers": [{"name": "x-frame-options", "value": "DENY"}, {"name": "x-team", "value": "shop"}]},
            {"path": {"type": "Prefix", "value": "/gone"}, "action": {"kind": "Respond", "status": 503, "body": "gone"},
             "answer_headers": [{"name": "x-frame-options", "value": "DENY"}]},
            {"path": {"type": "Prefix", "value": "/api"}, "action": {"kind": "Forward", "backends": [{"cluster": "default/api/8080"}]},
             "answer_headers": [{"name": "x-frame-options", "value": "DENY"}]},
            {"path": {"type": "Prefix", "value": "/plain-gone"}, "action": {"kind": "Respond", "status": 503, "body": "gone"}}
        ]}]
    })
    .to_string();
    let mut vm = vm_with(&table);
    let has = |headers: &[(Vec<u8>, Vec<u8>)], name: &str, value: &str| headers.iter().any(|(n, v)| n == name.as_bytes() && v == value.as_bytes());
    let moved = vm.get("shop.example.com", "/moved", &[]).unwrap().local_response.expect("a redirect");
    assert_eq!(moved.status, 301);
    assert!(has(&moved.headers, "x-frame-options", "DENY") && has(&moved.headers, "x-team", "shop"), "{:?}", moved.headers);
    assert!(moved.headers.iter().any(|(n, _)| n == b"location"));
    let gone = vm.get("shop.example.com", "/gone", &[]).unwrap().local_response.expect("an answer");
    assert!(gone.status == 503 && has(&gone.headers, "x-frame-options", "DENY"), "{:?}", gone.headers);
    let forwarded = vm.get("shop.example.com", "/api", &[]).unwrap();
    assert!(forwarded.local_response.is_none());
    assert!(header_values(&forwarded.headers, "x-frame-options").is_empty(), "a forwarded request gets them from Envoy's route policy, not the filter");
    let plain = vm.get("shop.example.com", "/plain-gone", &[]).unwrap().local_response.expect("an answer");
    assert!(!plain.headers.iter().any(|(n, _)| n == b"x-frame-options"), "another route's answers: none");
}

#[test]
fn a_forwarded_request_costs_few_header_calls() {
    let mut vm = vm_with(&shop_table("v1"));
    // get :authority, get :path, set cluster, set x-forwarded-host.
    let outcome = vm.get("shop.example.com", "/api", &[]).unwrap();
    assert_eq!(outcome.header_calls(), 4, "{:?}", outcome.calls);
    // + replace :path, + keep the client's in x-envoy-original-path.
    let outcome = vm.get("shop.example.com", "/something/x", &[]).unwrap();
    assert_eq!(outcome.header_calls(), 6, "{:?}", outcome.calls);
    assert_eq!(header_values(&outcome.headers, "x-envoy-original-path"), vec![b"/something/x".as_slice()]);
    assert_eq!(outcome.calls.get("proxy_get_header_map_pairs"), None, "the filter must not read the whole header map");
}

/// The metered VM `make bench` measures with routes exactly as the plain one does, and counts fuel
/// only when asked to: a rewrite costs more than a plain forward, a table with more hosts more to
/// configure; the fuel between host calls adds up to the request's, the matcher's share between
/// reading `:path` and setting the cluster.
#[test]
fn a_metered_vm_routes_the_same_and_reports_fuel() {
    let wasm = paths::filter_wasm().expect("built filter");
    let mut metered = FilterVm::load_with(&wasm, VmOptions { metered: true }).expect("module loads");
    assert!(metered.start(b"").unwrap());
    let started = metered.fuel_spent().expect("metered");
    assert!(metered.configure(shop_table("v1").as_bytes()).unwrap());
    let configured = metered.fuel_spent().expect("metered") - started;
    let mut plain = vm_with(&shop_table("v1"));
    assert_eq!(plain.fuel_spent(), None);
    for path in ["/api", "/something/x", "/gone"] {
        let (a, b) = (metered.get("shop.example.com", path, &[]).unwrap(), plain.get("shop.example.com", path, &[]).unwrap());
        assert_eq!((a.headers.clone(), a.local_response.clone()), (b.headers, b.local_response), "{path}");
        assert!(a.fuel.is_some_and(|fuel| fuel > 0) && b.fuel.is_none(), "{path}: {:?} {:?}", a.fuel, b.fuel);
    }
    let forward = metered.get("shop.example.com", "/api", &[]).unwrap();
    let calls: Vec<&str> = forward.fuel_between_calls.iter().map(|(call, _)| call.as_str()).collect();
    let want = ["proxy_get_header_map_value :authority", "proxy_get_header_map_value :path", "proxy_replace_header_map_value x-wasm-ingress-cluster", "proxy_replace_header_map_value x-forwarded-host", "return"];
    assert_eq!(calls, want);
    assert_eq!(forward.fuel_between_calls.iter().map(|(_, fuel)| fuel).sum::<u64>(), forward.fuel.unwrap());
    let routing = forward.fuel_between_calls[2].1;
    assert!(forward.fuel_between_calls.iter().all(|(_, fuel)| *fuel <= routing), "{:?}", forward.fuel_between_calls);
    assert!(forward.context_fuel.is_some_and(|fuel| fuel > 0) && plain.get("shop.example.com", "/api", &[]).unwrap().context_fuel.is_none());
    let forward = forward.fuel.unwrap();
    let rewrite = metered.get("shop.example.com", "/something/x", &[]).unwrap().fuel.unwrap();
    assert!(rewrite > forward, "a rewrite ({rewrite}) should cost more than a forward ({forward})");
    let mut small = FilterVm::load_with(&wasm, VmOptions { metered: true }).unwrap();
    assert!(small.start(b"").unwrap());
    let before = small.fuel_spent().unwrap();
    let empty = json!({"schema": 1, "version": "v0", "hosts": []}).to_string();
    assert!(small.configure(empty.as_bytes()).unwrap());
    assert!(small.fuel_spent().unwrap() - before < configured, "an empty table should be cheaper to configure");
    assert!(metered.memory_bytes() > 0);
}

#[test]
fn bad_tables_are_refused_and_the_last_good_table_stays() {
    let mut vm = vm_with(&shop_table("good-1"));
    let bad_regex = json!({"schema": 1, "version": "bad-regex", "hosts": [{"host": "a", "routes": [
        {"path": {"type": "Regex", "value": "/(unclosed"}, "action": {"kind": "Forward", "backends": [{"cluster": "c"}]}}]}]})
    .to_string();
    let unknown_field = json!({"schema": 1, "version": "unknown", "hosts": [], "surprise": 1}).to_string();
    let wrong_schema = json!({"schema": 99, "version": "future", "hosts": []}).to_string();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty"),
        ("garbage", b"\x00\xffnot json at all".to_vec(), "not valid JSON"),
        ("truncated", shop_table("t").as_bytes()[..40].to_vec(), "not valid JSON"),
        ("bad regex", bad_regex.into_bytes(), "\"bad-regex\""),
        ("unknown field", unknown_field.into_bytes(), "\"unknown\""),
        ("wrong schema", wrong_schema.into_bytes(), "schema 99"),
        ("huge", vec![b' '; wasm_ingress_filter::matcher::MAX_TABLE_JSON_BYTES + 1], "bytes"),
    ];
    for (name, config, log_fragment) in cases {
        let accepted = vm.configure(&config).unwrap();
        assert!(!accepted, "{name} table must be refused");
        let last_log = vm.host().logs.last().cloned().unwrap_or_default();
        assert_eq!(last_log.0, 4, "{name}: refusal is logged at error level: {last_log:?}");
        assert!(last_log.1.contains(log_fragment), "{name}: log {last_log:?} should mention {log_fragment:?}");
        // The previous good table still routes.
        let outcome = vm.get("shop.example.com", "/api", &[]).unwrap();
        assert_eq!(cluster(&outcome).as_deref(), Some("default/api/8080"), "after {name}");
    }
}

#[test]
fn a_first_bad_table_leaves_the_filter_answering_503() {
    let wasm = paths::filter_wasm().unwrap();
    let mut vm = FilterVm::load(&wasm).unwrap();
    assert!(vm.start(b"").unwrap());
    assert!(!vm.configure(b"{").unwrap());
    let outcome = vm.get("shop.example.com", "/api", &[]).unwrap();
    assert_eq!(outcome.local_response.as_ref().map(|r| r.status), Some(503));
    assert_eq!(cluster(&outcome), None);
}

#[test]
fn a_second_configure_swaps_the_table() {
    let mut vm = vm_with(&shop_table("v1"));
    assert!(vm.host().logs.iter().any(|(_, m)| m.contains("\"v1\" accepted")), "{:?}", vm.host().logs);
    let v2 = json!({"schema": 1, "version": "v2", "hosts": [
        {"host": "shop.example.com", "routes": [
            {"path": {"type": "Prefix", "value": "/api"}, "action": {"kind": "Forward", "backends": [{"cluster": "default/api-v2/8080"}]}}
        ]}],
        "default_backend": {"kind": "Forward", "backends": [{"cluster": "default/fallback/80"}]}
    })
    .to_string();
    assert!(vm.configure(v2.as_bytes()).unwrap());
    assert!(vm.host().logs.iter().any(|(_, m)| m.contains("\"v2\" accepted")));
    assert_eq!(cluster(&vm.get("shop.example.com", "/api/x", &[]).unwrap()).as_deref(), Some("default/api-v2/8080"));
    // Routes only in v1 are gone; the v2 default backend catches them.
    assert_eq!(cluster(&vm.get("shop.example.com", "/", &[]).unwrap()).as_deref(), Some("default/fallback/80"));
    assert_eq!(cluster(&vm.get("www.example.com", "/", &[]).unwrap()).as_deref(), Some("default/fallback/80"));
}

#[test]
fn hostile_headers_never_crash_the_filter() {
    let mut vm = vm_with(&shop_table("v1"));
    // Non-UTF-8 authority: no host entry matches -> 404 (no host-less entry, no default).
    let outcome = vm.request(&[(b":authority", b"sh\xffop.example.com"), (b":path", b"/api")]).unwrap();
    assert_eq!(outcome.local_response.as_ref().map(|r| r.status), Some(404));
    // Non-UTF-8 path bytes below a prefix still route by the prefix.
    let outcome = vm.request(&[(b":authority", b"shop.example.com"), (b":path", b"/api/\xff\xfe?\xc3")]).unwrap();
    assert_eq!(cluster(&outcome).as_deref(), Some("default/api/8080"));
    // Missing :path.
    let outcome = vm.request(&[(b":authority", b"shop.example.com")]).unwrap();
    assert_eq!(outcome.local_response.as_ref().map(|r| r.status), Some(404));
    // Missing :authority and host.
    let outcome = vm.request(&[(b":path", b"/api")]).unwrap();
    assert_eq!(outcome.local_response.as_ref().map(|r| r.status), Some(404));
    // No headers at all.
    let outcome = vm.request(&[]).unwrap();
    assert_eq!(outcome.local_response.as_ref().map(|r| r.status), Some(404));
    // Huge path (1 MiB): 414 from the filter, nothing routed (nginx's 8k request-line limit).
    let huge_path = format!("/api/{}", "a".repeat(1 << 20));
    let outcome = vm.get("shop.example.com", &huge_path, &[]).unwrap();
    assert_eq!(outcome.local_response.as_ref().map(|r| r.status), Some(414));
    assert_eq!(cluster(&outcome), None);
    // The longest path routed is rewritten in full.
    let long_rewrite = format!("/something/{}", "b/".repeat(4000));
    let outcome = vm.get("shop.example.com", &long_rewrite, &[]).unwrap();
    assert_eq!(outcome.header(":path").map(|p| p.len()), Some(1 + 8000));
    let outcome = vm.get(&"x".repeat(100_000), "/", &[]).unwrap();
    assert_eq!(outcome.local_response.as_ref().map(|r| r.status), Some(404));
    // Still healthy afterwards.
    assert_eq!(cluster(&vm.get("shop.example.com", "/", &[]).unwrap()).as_deref(), Some("default/home/80"));
}

#[test]
fn weighted_backends_split_traffic() {
    let table = json!({"schema": 1, "version": "w", "hosts": [{"host": "", "routes": [
        {"path": {"type": "Prefix", "value": "/"}, "action": {"kind": "Forward", "backends": [
            {"cluster": "stable", "weight": 3}, {"cluster": "canary", "weight": 1}]}}]}]})
    .to_string();
    let mut vm = vm_with(&table);
    let mut canary = 0;
    for _ in 0..400 {
        if cluster(&vm.get("any", "/", &[]).unwrap()).as_deref() == Some("canary") {
            canary += 1;
        }
    }
    assert!((60..=140).contains(&canary), "expected about 100 of 400 on the canary, got {canary}");
}

/// The ingress-nginx redirects as the control plane writes them (force-ssl-redirect, app-root,
/// permanent-redirect, from-to-www-redirect), and a route with a policy.
fn redirect_table() -> String {
    let trimmed_uri = json!({"type": "RequestUri", "value": {"trim_trailing_slash": true}});
    json!({
        "schema": 1,
        "version": "redirects",
        "hosts": [
            {"host": "forcesslredirect.bar.com", "routes": [
                {"path": {"type": "Prefix", "value": "/"},
                 "action": {"kind": "Forward", "backends": [{"cluster": "default/ssl/80"}]},
                 "https_redirect": {"status": 308, "location": {"kind": "FromRequest", "scheme": "https",
                                    "host": {"type": "RequestHost"}, "path": trimmed_uri}}}
            ]},
            {"host": "approot.bar.com",
             "app_root": {"status": 302, "location": {"kind": "FromRequest", "host": {"type": "RequestAuthority"},
                                                      "path": {"type": "Fixed", "value": "/foo"}}},
             "routes": [
                {"path": {"type": "Prefix", "value": "/"}, "action": {"kind": "Forward", "backends": [{"cluster": "default/approot/80"}]}}
            ]},
            {"host": "redirect.bar.com", "routes": [
                {"path": {"type": "Prefix", "value": "/"},
                 "action": {"kind": "Redirect", "status": 301, "location": {"kind": "Url", "url": "http://redirect.example.com"}}}
            ]},
            {"host": "www.fromtowwwredirect.bar.com", "routes": [],
             "fallback": {"kind": "Redirect", "status": 308, "location": {"kind": "FromRequest",
                          "host": {"type": "WithListenerPort", "value": "fromtowwwredirect.bar.com"}, "path": trimmed_uri}}},
            {"host": "policy.bar.com", "routes": [
                {"path": {"type": "Prefix", "value": "/slow"},
                 "action": {"kind": "Forward", "backends": [{"cluster": "default/slow/80"}], "policy": "timeout-60s"}},
                {"path": {"type": "Prefix", "value": "/"}, "action": {"kind": "Forward", "backends": [{"cluster": "default/fast/80"}]}}
            ]}
        ]
    })
    .to_string()
}

/// The status and `Location` of the filter's redirect; also checks it paused, sent nginx's page
/// for the status and chose no cluster.
fn redirected(outcome: &RequestOutcome) -> (u32, String) {
    let response = outcome.local_response.as_ref().expect("a redirect is a local response");
    assert_eq!(outcome.action, 1, "Pause expected after a redirect");
    let page = u16::try_from(response.status).map(wasm_ingress_filter::decision::status_body).unwrap_or_default();
    assert_eq!(response.body_text(), page, "a redirect carries nginx's page for its status");
    assert_eq!(cluster(outcome), None, "a redirected request goes nowhere upstream");
    (response.status, response.header("location").expect("location header"))
}

#[test]
fn ssl_redirect_answers_plain_http_and_forwards_https() {
    let mut vm = vm_with(&redirect_table());
    let host = "forcesslredirect.bar.com";
    // ingress-nginx e2e forcesslredirect: `GET /` -> 308 `https://forcesslredirect.bar.com`.
    let rows = [
        ("/", &[("x-forwarded-proto", "http")][..], "https://forcesslredirect.bar.com"),
        ("/", &[][..], "https://forcesslredirect.bar.com"),
        ("/a/?q=1", &[("x-forwarded-proto", "http")][..], "https://forcesslredirect.bar.com/a/?q=1"),
        ("/a/", &[("x-forwarded-proto", "http")][..], "https://forcesslredirect.bar.com/a"),
    ];
    for (path, extra, location) in rows {
        let outcome = vm.get(&format!("{host}:80"), path, extra).unwrap();
        assert_eq!(redirected(&outcome), (308, location.to_string()), "{path} {extra:?}");
    }
    for proto in ["https", "HTTPS"] {
        let outcome = vm.get(host, "/", &[("x-forwarded-proto", proto)]).unwrap();
        assert_eq!(outcome.action, 0, "Continue expected over {proto}");
        assert!(outcome.local_response.is_none());
        assert_eq!(cluster(&outcome).as_deref(), Some("default/ssl/80"));
    }
}

#[test]
fn app_root_answers_302_for_slash_only() {
    let mut vm = vm_with(&redirect_table());
    // ingress-nginx e2e approot: `app-root: /foo`, `GET /` -> 302 `http://approot.bar.com/foo`.
    let outcome = vm.get("approot.bar.com", "/", &[("x-forwarded-proto", "http")]).unwrap();
    assert_eq!(redirected(&outcome), (302, "http://approot.bar.com/foo".to_string()));
    let outcome = vm.get("approot.bar.com:8080", "/?a=b", &[("x-forwarded-proto", "http")]).unwrap();
    assert_eq!(redirected(&outcome), (302, "http://approot.bar.com:8080/foo".to_string()));
    let outcome = vm.get("approot.bar.com", "/", &[("x-forwarded-proto", "https")]).unwrap();
    assert_eq!(redirected(&outcome), (302, "https://approot.bar.com/foo".to_string()));
    let outcome = vm.get("approot.bar.com", "/x", &[]).unwrap();
    assert_eq!(cluster(&outcome).as_deref(), Some("default/approot/80"));
}

#[test]
fn permanent_redirect_route_answers_301_with_the_url_verbatim() {
    let mut vm = vm_with(&redirect_table());
    // ingress-nginx e2e redirect: `permanent-redirect: http://redirect.example.com` -> 301 to it.
    for path in ["/", "/some/path?x=1"] {
        let outcome = vm.get("redirect.bar.com", path, &[]).unwrap();
        assert_eq!(redirected(&outcome), (301, "http://redirect.example.com".to_string()), "{path}");
    }
}

#[test]
fn from_to_www_redirect_writes_the_listener_port() {
    let mut vm = vm_with(&redirect_table());
    let host = "www.fromtowwwredirect.bar.com";
    // ingress-nginx e2e fromtowwwredirect: `GET /foo` -> 308 `http://fromtowwwredirect.bar.com:80/foo`.
    let rows = [
        (&[("x-forwarded-proto", "http"), ("x-forwarded-port", "80")][..], "http://fromtowwwredirect.bar.com:80/foo"),
        (&[("x-forwarded-proto", "https"), ("x-forwarded-port", "8443")][..], "https://fromtowwwredirect.bar.com:8443/foo"),
        (&[("x-forwarded-proto", "https")][..], "https://fromtowwwredirect.bar.com:443/foo"),
        (&[("x-forwarded-port", "not-a-port")][..], "http://fromtowwwredirect.bar.com:80/foo"),
    ];
    for (extra, location) in rows {
        let outcome = vm.get(host, "/foo", extra).unwrap();
        assert_eq!(redirected(&outcome), (308, location.to_string()), "{extra:?}");
    }
}

#[test]
fn a_hostile_request_never_puts_control_characters_in_the_location() {
    let mut vm = vm_with(&redirect_table());
    let outcome = vm
        .request(&[(b":authority", b"forcesslredirect.bar.com"), (b":path", b"/a\r\nset-cookie: x\xff"), (b"x-forwarded-proto", b"http")])
        .unwrap();
    assert_eq!(redirected(&outcome), (308, "https://forcesslredirect.bar.com/a%0D%0Aset-cookie:%20x%FF".to_string()));
}

#[test]
fn policy_header_is_set_only_for_a_route_with_a_policy() {
    let mut vm = vm_with(&redirect_table());
    let slow = vm.get("policy.bar.com", "/slow/report", &[]).unwrap();
    assert_eq!(cluster(&slow).as_deref(), Some("default/slow/80"));
    assert_eq!(header_values(&slow.headers, POLICY_HEADER), vec![b"timeout-60s".as_slice()]);
    let fast = vm.get("policy.bar.com", "/", &[]).unwrap();
    assert_eq!(cluster(&fast).as_deref(), Some("default/fast/80"));
    assert_eq!(fast.header(POLICY_HEADER), None);
    // Without a policy the filter makes no policy-header call at all.
    assert_eq!(slow.header_calls(), fast.header_calls() + 1, "{:?} vs {:?}", slow.calls, fast.calls);
}

#[test]
fn forwarded_headers_are_read_only_when_the_table_needs_them() {
    // shop_table has no redirect: get :authority, get :path, set cluster, set x-forwarded-host
    // (see a_forwarded_request_costs_few_header_calls).
    let mut vm = vm_with(&shop_table("v1"));
    let plain = vm.get("shop.example.com", "/api", &[("x-forwarded-proto", "http"), ("x-forwarded-port", "80")]).unwrap();
    assert_eq!(plain.header_calls(), 4, "{:?}", plain.calls);
    // redirect_table needs both: + get x-forwarded-proto, + get x-forwarded-port.
    let mut vm = vm_with(&redirect_table());
    let outcome = vm.get("policy.bar.com", "/", &[("x-forwarded-proto", "http"), ("x-forwarded-port", "80")]).unwrap();
    assert_eq!(outcome.header_calls(), 6, "{:?}", outcome.calls);
}
