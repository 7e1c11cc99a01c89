//! End to end in Kubernetes mode: `wasm-ingress serve --kubeconfig` against a stand-in API server
//! over real HTTP (kube-rs's real client, list + watch streams of API JSON the test drives), with
//! real Envoy serving what it publishes. What a cluster operator would see: Ingresses served from
//! the initial list and from watch events, an EndpointSlice change pushed as endpoints only, the
//! leader's Lease, status and Events written back, and the watches surviving an API server that
//! closes them or compacts its history (410 → relist).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};
use wasm_ingress::source::kube::RequestAccess;
use wasm_ingress_tests::apiserver::ApiServer;
use wasm_ingress_tests::backend::{Echo, EchoBackend};
use wasm_ingress_tests::gateway::{manifests, wait_until, xds_credentials, Gateway, GatewayOptions};

const WAIT: Duration = Duration::from_secs(30);

fn backend(name: &str, last_octet: u8) -> EchoBackend {
    EchoBackend::spawn(name, Ipv4Addr::new(127, 0, 0, last_octet)).unwrap()
}

/// GET / for `host` through Envoy's HTTP listener: (status, the backend that answered, if one did).
fn get(gateway: &Gateway, host: &str) -> (u16, Option<String>) {
    let mut stream = TcpStream::connect(gateway.http).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {text}"));
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    (status, Echo::parse(body.as_bytes()).ok().map(|echo| echo.backend))
}

/// Wait until `host` answers `status` from `backend` (None: not from a backend).
fn wait_for(gateway: &Gateway, host: &str, status: u16, backend: Option<&str>) {
    let mut last = (0, None);
    wait_until(WAIT, || {
        last = get(gateway, host);
        Ok(last == (status, backend.map(str::to_string)))
    })
    .unwrap_or_else(|_| panic!("{host}: wanted {status} from {backend:?}, last answer {last:?}"));
}

/// Envoy's listener, cluster, route and filter-configuration updates so far (not endpoints).
fn other_updates(gateway: &Gateway) -> u64 {
    let (_, stats) = gateway.envoy.admin_get("/stats").unwrap();
    stats
        .lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(name, _)| {
            name.starts_with("listener_manager.lds.update_success")
                || name.starts_with("cluster_manager.cds.update_success")
                || (name.starts_with("http.") && name.ends_with(".rds.update_success"))
                || (name.starts_with("extension_config_discovery.") && name.ends_with(".config_reload"))
        })
        .filter_map(|(_, value)| value.trim().parse::<u64>().ok())
        .sum()
}

fn ingress_class() -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
           "metadata": {"name": "wasm"}, "spec": {"controller": "wasm-ingress.dev/controller"}})
}

fn ingress(name: &str, host: &str, annotations: Value) -> Value {
    manifests::ingress("shop", name, annotations, &[(host, vec![manifests::path("/", "Prefix", "cart", json!(80))])])
}

/// The EndpointSlice of Service shop/cart naming `backend`.
fn cart_slice(backend: &EchoBackend) -> Value {
    manifests::service("shop", "cart", &[("http", 80)], &[backend]).remove(1)
}

#[test]
fn serves_a_kubernetes_api_over_real_http_with_its_watch_events() {
    let blue = backend("blue", 21);
    let green = backend("green", 22);
    let api = ApiServer::start().unwrap();
    api.apply(ingress_class()).unwrap();
    api.apply_all(manifests::service("shop", "cart", &[("http", 80)], &[&blue])).unwrap();
    api.apply(ingress("cart", "cart.kube.test", json!({}))).unwrap();
    // As in a cluster: xDS over mutual TLS with `certgen`'s credentials (the Kubernetes source
    // refuses plaintext ADS).
    let credentials = xds_credentials().unwrap();
    // The backends are on loopback, which the Kubernetes source refuses by default (a pod must not
    // make Envoy proxy to its node): allowed here, as for a local demo.
    let options = GatewayOptions {
        serve_args: ["--status-address", "127.0.0.9", "--leader-election-namespace", "wasm-ingress", "--refuse-local-endpoints", "false"]
            .map(String::from)
            .to_vec(),
        xds_tls: Some(credentials.path().to_path_buf()),
        ..GatewayOptions::default()
    };
    let gateway = Gateway::start_kube(&api, &options).unwrap();
    let wait_host = |host: &str, status: u16, backend: Option<&str>| wait_for(&gateway, host, status, backend);
    let get_host = |host: &str| get(&gateway, host);

    // Served from the initial lists.
    wait_host("cart.kube.test", 200, Some("blue"));

    // The leader holds the Lease and writes the address to the Ingress's status.
    wait_until(WAIT, || {
        let status = api.get("Ingress", "shop", "cart").map(|i| i["status"]["loadBalancer"]["ingress"][0]["ip"].clone());
        Ok(status == Some(json!("127.0.0.9")))
    })
    .expect("the leader writes the status address");
    let leases = api.list("Lease");
    assert_eq!(leases.len(), 1, "{leases:?}");
    assert_eq!(leases[0]["metadata"]["namespace"], "wasm-ingress");
    assert!(leases[0]["spec"]["holderIdentity"].as_str().is_some_and(|holder| !holder.is_empty()), "{leases:?}");

    // An EndpointSlice event moves the traffic, and only endpoints are pushed to Envoy.
    let before = other_updates(&gateway);
    api.apply(cart_slice(&green)).unwrap();
    wait_host("cart.kube.test", 200, Some("green"));
    assert_eq!(other_updates(&gateway), before, "an endpoint change pushed more than EDS");

    // A new Ingress (ADDED) with an allow-list that excludes the client: 403; MODIFIED to allow it: 200.
    let allow = "nginx.ingress.kubernetes.io/whitelist-source-range";
    api.apply(ingress("admin", "admin.kube.test", json!({allow: "10.0.0.0/8"}))).unwrap();
    wait_host("admin.kube.test", 403, None);
    api.apply(ingress("admin", "admin.kube.test", json!({allow: "127.0.0.0/8"}))).unwrap();
    wait_host("admin.kube.test", 200, Some("green"));

    // A bad value fails closed (503, as ingress-nginx's denied location) and the leader reports it
    // as an Event on that Ingress.
    api.apply(ingress("broken", "broken.kube.test", json!({allow: "not-a-cidr"}))).unwrap();
    wait_host("broken.kube.test", 503, None);
    wait_until(WAIT, || {
        Ok(api.list("Event").iter().any(|event| {
            event["regarding"]["name"] == "broken" && event["type"] == "Warning" && event["note"].as_str().is_some_and(|note| note.contains(allow))
        }))
    })
    .unwrap_or_else(|_| panic!("no Warning Event on shop/broken naming {allow}: {:#?}", api.list("Event")));
    assert_eq!(get_host("cart.kube.test"), (200, Some("green".into())), "the other Ingresses keep serving");

    // The API server ends every watch (as at timeoutSeconds): the control plane watches again
    // from where it was, and a deletion made afterwards is served.
    api.close_watches();
    api.delete(&ingress("admin", "admin.kube.test", json!({}))).unwrap();
    wait_host("admin.kube.test", 404, None);

    // The history is compacted: watching again from a seen version is 410 Expired, the control
    // plane lists again, and what changed in between is served.
    let lists_before = ingress_lists(&api);
    api.compact();
    api.apply(ingress("late", "late.kube.test", json!({}))).unwrap();
    wait_host("late.kube.test", 200, Some("green"));
    assert!(ingress_lists(&api) > lists_before, "no relist of Ingresses after the compaction");
    assert_eq!(get_host("cart.kube.test"), (200, Some("green".into())));

    // What the control plane asked of the API is what deploy/'s RBAC grants (docs/kubernetes.md).
    let used: BTreeSet<(&str, String)> = api
        .requests()
        .iter()
        .filter_map(|r| RequestAccess::of(&r.method, &r.path, r.is_watch()))
        .map(|access| (access.verb, format!("{}/{}", access.group, access.resource)))
        .collect();
    let granted: BTreeSet<(&str, String)> = [
        ("list", "networking.k8s.io/ingresses"),
        ("watch", "networking.k8s.io/ingresses"),
        ("list", "networking.k8s.io/ingressclasses"),
        ("watch", "networking.k8s.io/ingressclasses"),
        ("list", "/services"),
        ("watch", "/services"),
        ("list", "discovery.k8s.io/endpointslices"),
        ("watch", "discovery.k8s.io/endpointslices"),
        ("list", "/secrets"),
        ("watch", "/secrets"),
        ("list", "/configmaps"),
        ("watch", "/configmaps"),
        ("patch", "networking.k8s.io/ingresses/status"),
        ("create", "events.k8s.io/events"),
        ("get", "coordination.k8s.io/leases"),
        ("create", "coordination.k8s.io/leases"),
        ("update", "coordination.k8s.io/leases"),
    ]
    .into_iter()
    .map(|(verb, resource)| (verb, resource.to_string()))
    .collect();
    assert!(used.is_subset(&granted), "requests beyond the RBAC: {:?}", used.difference(&granted).collect::<Vec<_>>());
    let secret_watches = api.requests().into_iter().filter(|r| r.is_watch() && r.path.ends_with("/secrets")).collect::<Vec<_>>();
    assert!(
        secret_watches.iter().all(|r| r.query.get("fieldSelector").is_some_and(|s| s.contains("type!=kubernetes.io/service-account-token"))),
        "Secrets watched without the field selector that keeps tokens out: {secret_watches:?}"
    );
}

/// LIST requests (not watches) for Ingresses so far.
fn ingress_lists(api: &ApiServer) -> usize {
    api.requests().iter().filter(|r| r.method == "GET" && r.path.ends_with("/ingresses") && !r.is_watch()).count()
}
