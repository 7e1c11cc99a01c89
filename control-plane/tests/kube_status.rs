//! Ingress status and Events against a mocked apiserver: the exact PATCH requests (path, content
//! type, field manager, body), that nothing is sent when the status is already right, the address
//! read from the Envoy Service, and that only the leader writes (status and Events).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kube_mock;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube_mock::{assert_declared, status, within, FakeApiServer};
use serde_json::{json, Value};
use tokio::sync::watch;
use wasm_ingress::events::{EventPublisher, Reporter};
use wasm_ingress::model::{Diagnostic, ObjectRef, Severity};
use wasm_ingress::state::{ClusterState, ObjectKey};
use wasm_ingress::status::{run_writers, GatewayAddress, StatusAddressSource, StatusWriter, TranslatedState};

fn ingress(namespace: &str, name: &str, load_balancer: Value) -> (ObjectKey, Ingress) {
    let object: Ingress = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{namespace}-{name}"), "resourceVersion": "42"},
        "spec": {"ingressClassName": "wasm", "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}},
        "status": {"loadBalancer": load_balancer}
    }))
    .unwrap();
    (ObjectKey::new(namespace, name), object)
}

fn state_of(ingresses: Vec<(ObjectKey, Ingress)>) -> ClusterState {
    ClusterState { ingresses: Arc::new(ingresses.into_iter().map(|(key, ingress)| (key, Arc::new(ingress))).collect::<BTreeMap<_, _>>()), ..ClusterState::default() }
}

fn served(keys: &[(&str, &str)]) -> BTreeSet<ObjectKey> {
    keys.iter().map(|(namespace, name)| ObjectKey::new(*namespace, *name)).collect()
}

const OURS: &str = "203.0.113.10";

#[tokio::test]
async fn served_ingresses_get_the_address_and_dropped_ones_are_cleared_with_merge_patches() {
    let mut server = FakeApiServer::start();
    let writer = StatusWriter::new(server.client.clone(), StatusAddressSource::Fixed(vec![GatewayAddress::parse(OURS)]));
    let state = state_of(vec![
        ingress("default", "done", json!({"ingress": [{"ip": OURS}]})),
        ingress("default", "old", json!({"ingress": [{"ip": OURS}]})),
        ingress("default", "shop", json!({})),
        ingress("other", "foreign", json!({"ingress": [{"hostname": "nginx.example.net"}]})),
    ]);
    let served = served(&[("default", "done"), ("default", "shop")]);
    let sync = tokio::spawn(async move { writer.sync(&state, &served).await });

    let clear = server.next_request().await;
    assert_eq!(clear.request.method, Method::PATCH);
    assert_eq!(clear.request.path, "/apis/networking.k8s.io/v1/namespaces/default/ingresses/old/status");
    assert_eq!(clear.request.content_type.as_deref(), Some("application/merge-patch+json"));
    assert_eq!(clear.request.query.get("fieldManager").map(String::as_str), Some("wasm-ingress"));
    assert_eq!(clear.request.body, json!({"status": {"loadBalancer": {"ingress": null}}}));
    let (_, mut old) = ingress("default", "old", json!({}));
    old.metadata.resource_version = Some("43".into());
    clear.respond(200, serde_json::to_value(&old).unwrap());

    let set = server.next_request().await;
    assert_eq!(set.request.method, Method::PATCH);
    assert_eq!(set.request.path, "/apis/networking.k8s.io/v1/namespaces/default/ingresses/shop/status");
    assert_eq!(set.request.body, json!({"status": {"loadBalancer": {"ingress": [{"ip": OURS}]}}}));
    let (_, shop) = ingress("default", "shop", json!({"ingress": [{"ip": OURS}]}));
    set.respond(200, serde_json::to_value(&shop).unwrap());

    let report = within("the status sync", sync).await.unwrap().unwrap();
    assert_eq!((report.patched, report.failed), (2, 0));
    assert_eq!(server.requests().len(), 2, "no request for Ingresses already right or not ours");
    assert_declared(&server.requests(), &[wasm_ingress::status::API_ACCESS], "wasm-ingress");
}

#[tokio::test]
async fn a_failed_patch_is_counted_and_the_others_still_go_out() {
    let mut server = FakeApiServer::start();
    let writer = StatusWriter::new(server.client.clone(), StatusAddressSource::Fixed(vec![GatewayAddress::parse("lb.example.com")]));
    let state = state_of(vec![ingress("default", "a", json!({})), ingress("default", "b", json!({}))]);
    let served = served(&[("default", "a"), ("default", "b")]);
    let sync = tokio::spawn(async move { writer.sync(&state, &served).await });

    let first = server.next_request().await;
    assert_eq!(first.request.path, "/apis/networking.k8s.io/v1/namespaces/default/ingresses/a/status");
    assert_eq!(first.request.body, json!({"status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}}));
    first.respond(404, status(404, "NotFound", "ingresses.networking.k8s.io \"a\" not found"));
    let second = server.next_request().await;
    assert_eq!(second.request.path, "/apis/networking.k8s.io/v1/namespaces/default/ingresses/b/status");
    let (_, b) = ingress("default", "b", json!({"ingress": [{"hostname": "lb.example.com"}]}));
    second.respond(200, serde_json::to_value(&b).unwrap());

    let report = within("the status sync", sync).await.unwrap().unwrap();
    assert_eq!((report.patched, report.failed), (1, 1));
}

#[tokio::test]
async fn the_address_comes_from_the_envoy_service_load_balancer() {
    let mut server = FakeApiServer::start();
    let envoy = ObjectKey::new("wasm-ingress", "wasm-ingress-envoy");
    let writer = StatusWriter::new(server.client.clone(), StatusAddressSource::Service(envoy.clone()));
    // The Envoy Service is outside the watched namespace: it is read with a GET.
    let state = state_of(vec![ingress("default", "shop", json!({}))]);
    let sync = {
        let writer = writer.clone();
        let state = state.clone();
        tokio::spawn(async move { writer.sync(&state, &served(&[("default", "shop")])).await })
    };
    let get = server.next_request().await;
    assert_eq!(get.request.method, Method::GET);
    assert_eq!(get.request.path, "/api/v1/namespaces/wasm-ingress/services/wasm-ingress-envoy");
    get.respond(
        200,
        json!({
            "kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "wasm-ingress-envoy", "namespace": "wasm-ingress", "resourceVersion": "77"},
            "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"hostname": "a1b2c3.elb.eu-west-1.amazonaws.com"}]}}
        }),
    );
    let patch = server.next_request().await;
    assert_eq!(patch.request.body, json!({"status": {"loadBalancer": {"ingress": [{"hostname": "a1b2c3.elb.eu-west-1.amazonaws.com"}]}}}));
    let (_, shop) = ingress("default", "shop", json!({"ingress": [{"hostname": "a1b2c3.elb.eu-west-1.amazonaws.com"}]}));
    patch.respond(200, serde_json::to_value(&shop).unwrap());
    assert_eq!(within("the status sync", sync).await.unwrap().unwrap().patched, 1);

    // A Service without a load balancer address yet: nothing is written.
    let sync = tokio::spawn(async move { writer.sync(&state, &served(&[("default", "shop")])).await });
    let get = server.next_request().await;
    get.respond(
        200,
        json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "wasm-ingress-envoy", "namespace": "wasm-ingress"},
               "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}}),
    );
    assert_eq!(within("the status sync", sync).await.unwrap().unwrap().patched, 0);
    assert_eq!(server.requests().len(), 3);
    let service: Service = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
    assert!(wasm_ingress::status::service_addresses(&service).is_empty());
}

fn diagnostic(name: &str, message: &str) -> Diagnostic {
    Diagnostic {
        object: ObjectRef { kind: "Ingress".into(), namespace: "default".into(), name: name.into() },
        field: "spec.rules[0].http.paths[0].backend.service.name".into(),
        message: message.into(),
        severity: Severity::Error,
    }
}

#[tokio::test]
async fn only_the_leader_writes_status_and_events_and_events_are_not_repeated() {
    let mut server = FakeApiServer::start();
    let status_writer = StatusWriter::new(server.client.clone(), StatusAddressSource::Fixed(vec![GatewayAddress::parse(OURS)]));
    let reporter = Reporter { controller: "wasm-ingress.dev/controller".into(), instance: "wasm-ingress-0-abcd".into() };
    let events = EventPublisher::new(server.client.clone(), reporter, 30);
    let (translated_tx, translated) = watch::channel(None);
    let (leader_tx, leader) = watch::channel(false);
    let writers = tokio::spawn(run_writers(translated, leader, status_writer, events, Duration::from_secs(3600)));

    let translation = |state: ClusterState, problems: Vec<Diagnostic>| {
        Some(TranslatedState { state: Arc::new(state), addressed_ingresses: Arc::new(served(&[("default", "shop")])), diagnostics: Arc::new(problems) })
    };
    let problem = diagnostic("shop", "Service default/cart not found");
    translated_tx.send_replace(translation(state_of(vec![ingress("default", "shop", json!({}))]), vec![problem.clone()]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(server.requests().is_empty(), "a follower wrote to the apiserver: {:?}", server.requests());

    // Elected: status first, then the Event.
    leader_tx.send_replace(true);
    let patch = server.next_request().await;
    assert_eq!(patch.request.path, "/apis/networking.k8s.io/v1/namespaces/default/ingresses/shop/status");
    let (_, shop) = ingress("default", "shop", json!({"ingress": [{"ip": OURS}]}));
    patch.respond(200, serde_json::to_value(&shop).unwrap());
    let event = server.next_request().await;
    assert_eq!(event.request.method, Method::POST);
    assert_eq!(event.request.path, "/apis/events.k8s.io/v1/namespaces/default/events");
    let body = event.request.body.clone();
    assert_eq!(body["apiVersion"], "events.k8s.io/v1");
    assert_eq!(body["kind"], "Event");
    assert_eq!(body["type"], "Warning");
    assert_eq!(body["reason"], "IngressRejected");
    assert_eq!(body["action"], "Translate");
    assert_eq!(body["note"], "spec.rules[0].http.paths[0].backend.service.name: Service default/cart not found");
    assert_eq!(body["regarding"], json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "namespace": "default", "name": "shop", "uid": "uid-default-shop", "resourceVersion": "42"}));
    assert_eq!(body["reportingController"], "wasm-ingress.dev/controller");
    assert_eq!(body["reportingInstance"], "wasm-ingress-0-abcd");
    assert!(body["eventTime"].is_string());
    assert!(body["metadata"]["name"].as_str().unwrap().starts_with("shop."));
    event.respond(201, body);

    // A rebuild with the same diagnostic and the status already set: nothing to send.
    let (key, shop) = ingress("default", "shop", json!({"ingress": [{"ip": OURS}]}));
    translated_tx.send_replace(translation(state_of(vec![(key.clone(), shop.clone())]), vec![problem.clone()]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.requests().len(), 2, "unchanged diagnostic re-posted or status re-patched");

    // A new diagnostic is posted; an Event that already exists (409, posted by a previous leader) is fine.
    let other = diagnostic("shop", "invalid regex");
    translated_tx.send_replace(translation(state_of(vec![(key, shop)]), vec![problem, other]));
    let event = server.next_request().await;
    assert_eq!(event.request.body["note"], "spec.rules[0].http.paths[0].backend.service.name: invalid regex");
    event.respond(409, status(409, "AlreadyExists", "events.events.k8s.io \"shop.0123\" already exists"));

    // Stepping down: nothing more is written.
    leader_tx.send_replace(false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (key, shop) = ingress("default", "shop", json!({}));
    translated_tx.send_replace(translation(state_of(vec![(key, shop)]), vec![]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.requests().len(), 3);

    assert_declared(
        &server.requests(),
        &[wasm_ingress::status::API_ACCESS, wasm_ingress::events::API_ACCESS],
        "wasm-ingress",
    );
    drop(translated_tx);
    within("the writers to stop", writers).await.unwrap();
}
