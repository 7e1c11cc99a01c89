//! The Kubernetes source against a mocked apiserver: initial lists (readiness only after all five),
//! watch events (ADDED, MODIFIED, DELETED), a BOOKMARK the next watch resumes from, and a
//! `410 Gone` followed by a relist — checked through the `ClusterState` snapshots it publishes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kube_mock;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kube_mock::{assert_declared, next_watch, within, FakeApiServer};
use serde_json::{json, Value};
use wasm_ingress::source::kube::{self as kube_source, KubeSourceConfig, API_ACCESS};
use wasm_ingress::state::{ClusterState, ObjectKey};

const INGRESSES: &str = "/apis/networking.k8s.io/v1/ingresses";
const INGRESS_CLASSES: &str = "/apis/networking.k8s.io/v1/ingressclasses";
const SERVICES: &str = "/api/v1/services";
const ENDPOINT_SLICES: &str = "/apis/discovery.k8s.io/v1/endpointslices";
const SECRETS: &str = "/api/v1/secrets";
const CONFIG_MAPS: &str = "/api/v1/configmaps";

fn list(kind: &str, api_version: &str, resource_version: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": resource_version}, "items": items})
}

fn meta(namespace: &str, name: &str, resource_version: &str, uid: &str) -> Value {
    json!({
        "name": name,
        "namespace": namespace,
        "uid": uid,
        "resourceVersion": resource_version,
        "generation": 1,
        "creationTimestamp": "2026-01-12T09:30:00Z",
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"data\":{\"tls.key\":\"…\"}}\n"},
        "managedFields": [{
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": "networking.k8s.io/v1",
            "time": "2026-01-12T09:30:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:rules": {}}}
        }]
    })
}

/// An Ingress as the apiserver returns it (list items carry no kind/apiVersion; watch objects do).
fn ingress(name: &str, resource_version: &str, host: &str, tls_secret: Option<&str>) -> Value {
    let mut spec = json!({
        "ingressClassName": "wasm",
        "rules": [{"host": host, "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": name, "port": {"number": 80}}}
        }]}}]
    });
    if let Some(secret) = tls_secret {
        spec["tls"] = json!([{"hosts": [host], "secretName": secret}]);
    }
    json!({
        "metadata": meta("default", name, resource_version, &format!("0b5c7c1e-0000-4000-8000-{:012}", name.len())),
        "spec": spec,
        "status": {"loadBalancer": {}}
    })
}

fn with_kind(mut object: Value, kind: &str, api_version: &str) -> Value {
    object["kind"] = json!(kind);
    object["apiVersion"] = json!(api_version);
    object
}

fn ingress_class() -> Value {
    json!({
        "metadata": {
            "name": "wasm", "uid": "9f1d0e5a-0000-4000-8000-000000000001", "resourceVersion": "311",
            "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
            "creationTimestamp": "2026-01-12T09:00:00Z"
        },
        "spec": {"controller": "wasm-ingress.dev/controller"}
    })
}

fn service(name: &str, resource_version: &str) -> Value {
    json!({
        "metadata": meta("default", name, resource_version, "5a8e2f30-0000-4000-8000-000000000002"),
        "spec": {
            "type": "ClusterIP", "clusterIP": "10.96.41.7", "clusterIPs": ["10.96.41.7"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]
        },
        "status": {"loadBalancer": {}}
    })
}

fn endpoint_slice(service: &str, name: &str, resource_version: &str, address: &str) -> Value {
    json!({
        "metadata": {
            "name": name, "namespace": "default", "generateName": format!("{service}-"),
            "uid": "c3d4e5f6-0000-4000-8000-000000000003", "resourceVersion": resource_version,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"
            },
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": service,
                "uid": "5a8e2f30-0000-4000-8000-000000000002", "controller": true, "blockOwnerDeletion": true}]
        },
        "addressType": "IPv4",
        "endpoints": [{
            "addresses": [address],
            "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": "node-1",
            "targetRef": {"kind": "Pod", "namespace": "default", "name": format!("{service}-7d9f8-x2k4p"),
                "uid": "aa11bb22-0000-4000-8000-000000000004"}
        }],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    })
}

fn tls_secret(name: &str, resource_version: &str) -> Value {
    json!({
        "metadata": meta("default", name, resource_version, "d1e2f3a4-0000-4000-8000-000000000005"),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==", "tls.key": "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCg=="}
    })
}

fn config_map(name: &str, resource_version: &str) -> Value {
    json!({
        "metadata": meta("default", name, resource_version, "d1e2f3a4-0000-4000-8000-000000000006"),
        "data": {"X-Frame-Options": "DENY"}
    })
}

fn keys<T>(map: &std::collections::BTreeMap<ObjectKey, T>) -> BTreeSet<String> {
    map.keys().map(ToString::to_string).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|item| (*item).to_string()).collect()
}

async fn wait_for_state(
    updates: &mut tokio::sync::watch::Receiver<Arc<ClusterState>>,
    what: &str,
    predicate: impl FnMut(&Arc<ClusterState>) -> bool,
) -> Arc<ClusterState> {
    within(what, updates.wait_for(predicate)).await.expect("source stopped").clone()
}

/// Wait until `count` LIST requests for `path` have reached the apiserver.
async fn wait_for_lists(server: &FakeApiServer, path: &str, count: usize) {
    within(&format!("{count} LIST request(s) on {path}"), async {
        loop {
            let lists = server.requests().iter().filter(|r| r.path == path && !r.is_watch()).count();
            if lists >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

fn queue_initial_lists(server: &FakeApiServer, with_secrets: bool) {
    server.queue_list(
        INGRESSES,
        list("IngressList", "networking.k8s.io/v1", "1000", vec![ingress("shop", "990", "shop.example.com", Some("shop-tls"))]),
    );
    server.queue_list(INGRESS_CLASSES, list("IngressClassList", "networking.k8s.io/v1", "1000", vec![ingress_class()]));
    server.queue_list(SERVICES, list("ServiceList", "v1", "1000", vec![service("shop", "950")]));
    server.queue_list(
        ENDPOINT_SLICES,
        list("EndpointSliceList", "discovery.k8s.io/v1", "1000", vec![endpoint_slice("shop", "shop-abc12", "960", "10.244.1.7")]),
    );
    server.queue_list(
        CONFIG_MAPS,
        list("ConfigMapList", "v1", "1000", vec![config_map("blog-headers", "980"), config_map("kube-root-ca.crt", "981")]),
    );
    if with_secrets {
        server.queue_list(
            SECRETS,
            list("SecretList", "v1", "1000", vec![tls_secret("shop-tls", "970"), tls_secret("unused-tls", "971")]),
        );
    }
}

#[tokio::test]
async fn lists_then_watch_events_bookmarks_and_410_gone_keep_the_state_current() {
    let server = FakeApiServer::start();
    let mut ingress_watches = server.watches(INGRESSES);
    let mut service_watches = server.watches(SERVICES);
    let config = KubeSourceConfig { debounce: Duration::from_millis(30), ..KubeSourceConfig::new(None) };
    let source = kube_source::spawn(server.client.clone(), config);
    let mut updates = source.state.clone();
    let mut ready = source.ready.clone();

    // Five of six initial lists done: not ready, nothing published.
    queue_initial_lists(&server, false);
    wait_for_lists(&server, SECRETS, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!*ready.borrow(), "ready before the Secret list completed");
    assert!(updates.borrow().ingresses.is_empty(), "published before every list completed");
    let secret_list = server.requests().into_iter().find(|r| r.path == SECRETS).unwrap();
    assert_eq!(secret_list.query.get("fieldSelector").map(String::as_str), Some(wasm_ingress::source::kube::SECRET_FIELD_SELECTOR));

    server.queue_list(
        SECRETS,
        list("SecretList", "v1", "1000", vec![tls_secret("shop-tls", "970"), tls_secret("unused-tls", "971")]),
    );
    within("readiness", ready.wait_for(|ready| *ready)).await.unwrap();
    let first = updates.borrow_and_update().clone();
    assert_eq!(keys(&first.ingresses), set(&["default/shop"]));
    assert_eq!(keys(&first.ingress_classes), set(&["wasm"]));
    assert_eq!(keys(&first.services), set(&["default/shop"]));
    assert_eq!(keys(&first.endpoint_slices), set(&["default/shop-abc12"]));
    assert_eq!(keys(&first.secrets), set(&["default/shop-tls"]), "only Secrets an Ingress references");
    assert!(first.config_maps.is_empty(), "only ConfigMaps an Ingress references");
    let shop = &first.ingresses[&ObjectKey::new("default", "shop")];
    assert!(shop.metadata.managed_fields.is_none(), "managedFields are dropped");
    let kept = |annotations: &Option<BTreeMap<String, String>>| annotations.iter().flatten().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert!(!kept(&shop.metadata.annotations).iter().any(|k| k == wasm_ingress::source::kube::LAST_APPLIED_ANNOTATION), "so is kubectl's last-applied copy");
    let secret = &first.secrets[&ObjectKey::new("default", "shop-tls")];
    assert_eq!(kept(&secret.metadata.annotations), Vec::<String>::new(), "a Secret's too (its key material again)");

    // The watch resumes from the list's resourceVersion, with bookmarks.
    let mut ingress_watch = next_watch(&mut ingress_watches, "the Ingress watch").await;
    assert_eq!(ingress_watch.resource_version(), "1000");
    assert_eq!(ingress_watch.request.query.get("allowWatchBookmarks").map(String::as_str), Some("true"));

    // ADDED: a second Ingress; its TLS Secret and its custom-headers ConfigMap (listed, previously
    // unreferenced) now reach the state.
    let mut blog = with_kind(ingress("blog", "1001", "blog.example.com", Some("unused-tls")), "Ingress", "networking.k8s.io/v1");
    blog["metadata"]["annotations"] = json!({"nginx.ingress.kubernetes.io/custom-headers": "default/blog-headers"});
    ingress_watch.send(json!({"type": "ADDED", "object": blog})).await;
    let state = wait_for_state(&mut updates, "the ADDED Ingress", |s| s.ingresses.len() == 2).await;
    assert_eq!(keys(&state.ingresses), set(&["default/blog", "default/shop"]));
    assert_eq!(keys(&state.secrets), set(&["default/shop-tls", "default/unused-tls"]));
    assert_eq!(keys(&state.config_maps), set(&["default/blog-headers"]));

    // MODIFIED: the new host is in the snapshot.
    ingress_watch
        .send(json!({"type": "MODIFIED", "object": with_kind(ingress("shop", "1002", "www.shop.example.com", Some("shop-tls")), "Ingress", "networking.k8s.io/v1")}))
        .await;
    let state = wait_for_state(&mut updates, "the MODIFIED Ingress", |s| {
        let shop = &s.ingresses[&ObjectKey::new("default", "shop")];
        shop.metadata.resource_version.as_deref() == Some("1002")
    })
    .await;
    let shop = &state.ingresses[&ObjectKey::new("default", "shop")];
    assert_eq!(shop.spec.as_ref().unwrap().rules.as_ref().unwrap()[0].host.as_deref(), Some("www.shop.example.com"));

    // DELETED: the Service disappears.
    let mut service_watch = next_watch(&mut service_watches, "the Service watch").await;
    assert_eq!(service_watch.resource_version(), "1000");
    service_watch.send(json!({"type": "DELETED", "object": with_kind(service("shop", "1003"), "Service", "v1")})).await;
    wait_for_state(&mut updates, "the DELETED Service", |s| s.services.is_empty()).await;

    // BOOKMARK, then the apiserver closes the watch: the next watch starts from the bookmark.
    ingress_watch
        .send(json!({"type": "BOOKMARK", "object": {"kind": "Ingress", "apiVersion": "networking.k8s.io/v1", "metadata": {"resourceVersion": "1010", "annotations": {}}}}))
        .await;
    drop(ingress_watch);
    let mut ingress_watch = next_watch(&mut ingress_watches, "the Ingress watch after a bookmark").await;
    assert_eq!(ingress_watch.resource_version(), "1010", "resumed from the bookmark, no relist");
    assert_eq!(server.requests().iter().filter(|r| r.path == INGRESSES && !r.is_watch()).count(), 1);

    // 410 Gone: the watcher relists. While the relist is in flight the old objects stay served.
    ingress_watch
        .send(json!({"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "too old resource version: 1010 (1500)", "reason": "Expired", "code": 410
        }}))
        .await;
    wait_for_lists(&server, INGRESSES, 2).await;
    assert_eq!(keys(&updates.borrow().ingresses), set(&["default/blog", "default/shop"]), "kept during relist");
    // During the gap `shop` was deleted and `blog` changed: the relist is the truth.
    server.queue_list(
        INGRESSES,
        list("IngressList", "networking.k8s.io/v1", "2000", vec![ingress("blog", "1990", "news.example.com", None)]),
    );
    let state = wait_for_state(&mut updates, "the relisted Ingresses", |s| s.ingresses.len() == 1).await;
    assert_eq!(keys(&state.ingresses), set(&["default/blog"]));
    assert!(state.secrets.is_empty(), "no Ingress references a Secret any more");
    let ingress_watch = next_watch(&mut ingress_watches, "the Ingress watch after the relist").await;
    assert_eq!(ingress_watch.resource_version(), "2000");
    assert!(*ready.borrow(), "readiness survives a relist");

    assert_declared(&server.requests(), &[API_ACCESS], "wasm-ingress");
}

#[tokio::test]
async fn namespace_flag_watches_one_namespace_and_ingress_classes_cluster_wide() {
    let server = FakeApiServer::start();
    let config = KubeSourceConfig { namespace: Some("default".into()), debounce: Duration::from_millis(10), ..KubeSourceConfig::new(None) };
    let source = kube_source::spawn(server.client.clone(), config);
    let mut ready = source.ready.clone();
    for (path, kind, api_version) in [
        ("/apis/networking.k8s.io/v1/namespaces/default/ingresses", "IngressList", "networking.k8s.io/v1"),
        (INGRESS_CLASSES, "IngressClassList", "networking.k8s.io/v1"),
        ("/api/v1/namespaces/default/services", "ServiceList", "v1"),
        ("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", "EndpointSliceList", "discovery.k8s.io/v1"),
        ("/api/v1/namespaces/default/secrets", "SecretList", "v1"),
        ("/api/v1/namespaces/default/configmaps", "ConfigMapList", "v1"),
    ] {
        server.queue_list(path, list(kind, api_version, "500", vec![]));
    }
    within("readiness", ready.wait_for(|ready| *ready)).await.unwrap();
    let lists: BTreeSet<String> = server.requests().iter().filter(|r| !r.is_watch()).map(|r| r.path.clone()).collect();
    assert_eq!(
        lists,
        set(&[
            "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
            INGRESS_CLASSES,
            "/api/v1/namespaces/default/services",
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            "/api/v1/namespaces/default/secrets",
            "/api/v1/namespaces/default/configmaps",
        ])
    );
    assert_declared(&server.requests(), &[API_ACCESS], "wasm-ingress");
}

#[tokio::test]
async fn a_failing_list_is_retried_with_backoff_and_readiness_waits_for_it() {
    let server = FakeApiServer::start();
    let config = KubeSourceConfig { debounce: Duration::from_millis(10), ..KubeSourceConfig::new(None) };
    let source = kube_source::spawn(server.client.clone(), config);
    let mut ready = source.ready.clone();
    // The IngressClass list fails once (an apiserver hiccup); the others succeed.
    server.queue_list_response(INGRESS_CLASSES, 500, kube_mock::status(500, "InternalError", "etcdserver: request timed out"));
    queue_initial_lists(&server, true);
    wait_for_lists(&server, SECRETS, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!*ready.borrow(), "ready although the IngressClass list failed");
    within("readiness after the retried list", ready.wait_for(|ready| *ready)).await.unwrap();
    let class_lists: Vec<_> = server.requests().into_iter().filter(|r| r.path == INGRESS_CLASSES && !r.is_watch()).collect();
    assert_eq!(class_lists.len(), 2, "listed again after the error");
    assert_eq!(keys(&source.state.borrow().ingress_classes), set(&["wasm"]));
}

#[tokio::test]
async fn a_snapshot_for_read_only_commands_is_the_state_after_every_initial_list() {
    let server = FakeApiServer::start();
    queue_initial_lists(&server, true);
    // A ConfigMap a flag names (`--add-headers`) is kept though no Ingress names it.
    let config = KubeSourceConfig { config_maps: [ObjectKey::new("default", "blog-headers")].into(), ..KubeSourceConfig::new(None) };
    let state = within("a snapshot", kube_source::snapshot(server.client.clone(), config, Duration::from_secs(10)))
        .await
        .expect("every list answered");
    assert_eq!(keys(&state.ingresses), set(&["default/shop"]));
    assert_eq!(keys(&state.services), set(&["default/shop"]));
    // Only the Secrets an Ingress refers to are kept, as for `serve`.
    assert_eq!(keys(&state.secrets), set(&["default/shop-tls"]));
    assert_eq!(keys(&state.config_maps), set(&["default/blog-headers"]), "not kube-root-ca.crt");
    // A list that never completes: nothing rather than a partial state.
    let silent = FakeApiServer::start();
    queue_initial_lists(&silent, false);
    assert!(kube_source::snapshot(silent.client.clone(), kube_source::KubeSourceConfig::new(None), Duration::from_millis(500)).await.is_none());
}
