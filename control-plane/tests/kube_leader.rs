//! Leader election against a mocked apiserver: the Lease GET / create / replace requests, taking
//! over an expired Lease, losing races (409), stepping down when another replica holds the Lease or
//! when renewals keep failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kube_mock;

use std::time::Duration;

use http::Method;
use kube_mock::{assert_declared, status, within, FakeApiServer};
use serde_json::{json, Value};
use wasm_ingress::leader::{self, LeaderElection, LeaseConfig, API_ACCESS};

const NAMESPACE: &str = "wasm-ingress";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/wasm-ingress/leases";
const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/wasm-ingress/leases/wasm-ingress-leader";
const ME: &str = "wasm-ingress-6f7d9-abcd-1a2b3c4d";

fn config() -> LeaseConfig {
    LeaseConfig {
        lease_duration: Duration::from_millis(1500),
        renew_deadline: Duration::from_millis(1000),
        retry_period: Duration::from_millis(50),
        ..LeaseConfig::new(NAMESPACE, "wasm-ingress-leader", ME)
    }
}

fn lease(holder: Option<&str>, resource_version: &str, renew_time: &str, transitions: i32) -> Value {
    json!({
        "kind": "Lease",
        "apiVersion": "coordination.k8s.io/v1",
        "metadata": {
            "name": "wasm-ingress-leader", "namespace": NAMESPACE,
            "uid": "1e2d3c4b-0000-4000-8000-000000000009", "resourceVersion": resource_version,
            "creationTimestamp": "2026-01-12T09:00:00Z"
        },
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-01-12T09:00:00.000000Z",
            "renewTime": renew_time,
            "leaseTransitions": transitions
        }
    })
}

#[tokio::test]
async fn creates_a_missing_lease_renews_it_and_steps_down_when_another_replica_holds_it() {
    let mut server = FakeApiServer::start();
    let mut election = LeaderElection::new(server.client.clone(), config());

    let step = tokio::spawn(async move { (election.step().await, election) });
    let get = server.next_request().await;
    assert_eq!((get.request.method.clone(), get.request.path.as_str()), (Method::GET, LEASE));
    get.respond(404, status(404, "NotFound", "leases.coordination.k8s.io \"wasm-ingress-leader\" not found"));
    let create = server.next_request().await;
    assert_eq!((create.request.method.clone(), create.request.path.as_str()), (Method::POST, LEASES));
    let body = create.request.body.clone();
    assert_eq!(body["metadata"]["name"], "wasm-ingress-leader");
    assert_eq!(body["spec"]["holderIdentity"], ME);
    assert_eq!(body["spec"]["leaseDurationSeconds"], 1, "whole seconds: 1.5 s is written as 1");
    assert_eq!(body["spec"]["leaseTransitions"], 0);
    assert!(body["spec"]["renewTime"].is_string() && body["spec"]["acquireTime"].is_string());
    let mut created = body.clone();
    created["metadata"]["resourceVersion"] = json!("100");
    create.respond(201, created.clone());
    let (leading, mut election) = within("the first step", step).await.unwrap();
    assert!(leading, "creating the Lease makes us leader");

    // Renew: a replace carrying the resourceVersion we read (optimistic concurrency).
    let step = tokio::spawn(async move { (election.step().await, election) });
    server.next_request().await.respond(200, created.clone());
    let replace = server.next_request().await;
    assert_eq!((replace.request.method.clone(), replace.request.path.as_str()), (Method::PUT, LEASE));
    assert_eq!(replace.request.body["metadata"]["resourceVersion"], "100");
    assert_eq!(replace.request.body["spec"]["holderIdentity"], ME);
    assert_eq!(replace.request.body["spec"]["acquireTime"], created["spec"]["acquireTime"], "renewal keeps acquireTime");
    let mut renewed = replace.request.body.clone();
    renewed["metadata"]["resourceVersion"] = json!("101");
    replace.respond(200, renewed);
    let (leading, mut election) = within("the renewal", step).await.unwrap();
    assert!(leading);

    // Another replica holds the Lease now: follow, without writing.
    let step = tokio::spawn(async move { (election.step().await, election) });
    server.next_request().await.respond(200, lease(Some("wasm-ingress-other-9999"), "150", "2026-01-12T10:00:00.000000Z", 1));
    let (leading, _election) = within("the step after losing", step).await.unwrap();
    assert!(!leading, "stepped down");
    assert_eq!(server.requests().len(), 5, "no write while following");
    assert_declared(&server.requests(), &[API_ACCESS], NAMESPACE);
}

#[tokio::test]
async fn takes_over_a_lease_whose_holder_stopped_renewing() {
    let mut server = FakeApiServer::start();
    let mut election = LeaderElection::new(server.client.clone(), config());
    let mut stale = lease(Some("wasm-ingress-dead-0000"), "200", "2026-01-12T09:00:00.000000Z", 2);
    // The record's own duration is what expiry is measured with (as client-go does).
    stale["spec"]["leaseDurationSeconds"] = json!(1);

    let step = tokio::spawn(async move { (election.step().await, election) });
    server.next_request().await.respond(200, stale.clone());
    let (leading, mut election) = within("the first step", step).await.unwrap();
    assert!(!leading, "a Lease seen for the first time is not yet expired by our clock");

    // Unchanged for longer than the lease duration (our clock): take it over.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let step = tokio::spawn(async move { (election.step().await, election) });
    server.next_request().await.respond(200, stale);
    let replace = server.next_request().await;
    assert_eq!((replace.request.method.clone(), replace.request.path.as_str()), (Method::PUT, LEASE));
    assert_eq!(replace.request.body["metadata"]["resourceVersion"], "200");
    assert_eq!(replace.request.body["spec"]["holderIdentity"], ME);
    assert_eq!(replace.request.body["spec"]["leaseTransitions"], 3);
    assert_ne!(replace.request.body["spec"]["acquireTime"], "2026-01-12T09:00:00.000000Z");
    let mut taken = replace.request.body.clone();
    taken["metadata"]["resourceVersion"] = json!("201");
    replace.respond(200, taken);
    let (leading, _) = within("the take-over", step).await.unwrap();
    assert!(leading);
}

#[tokio::test]
async fn losing_a_race_is_a_conflict_not_leadership() {
    let mut server = FakeApiServer::start();
    let mut election = LeaderElection::new(server.client.clone(), config());

    // A released Lease (no holder): we try to take it, another replica's write came first.
    let step = tokio::spawn(async move { (election.step().await, election) });
    server.next_request().await.respond(200, lease(None, "300", "2026-01-12T09:00:00.000000Z", 4));
    let replace = server.next_request().await;
    assert_eq!(replace.request.method, Method::PUT);
    replace.respond(409, status(409, "Conflict", "Operation cannot be fulfilled on leases.coordination.k8s.io \"wasm-ingress-leader\": the object has been modified; please apply your changes to the latest version and try again"));
    let (leading, mut election) = within("the lost take-over", step).await.unwrap();
    assert!(!leading);

    // Two replicas create the Lease at once: AlreadyExists for the loser.
    let step = tokio::spawn(async move { election.step().await });
    server.next_request().await.respond(404, status(404, "NotFound", "not found"));
    let create = server.next_request().await;
    assert_eq!(create.request.method, Method::POST);
    create.respond(409, status(409, "AlreadyExists", "leases.coordination.k8s.io \"wasm-ingress-leader\" already exists"));
    assert!(!within("the lost create", step).await.unwrap());
}

#[tokio::test]
async fn a_leader_that_cannot_renew_steps_down_after_the_renew_deadline() {
    let mut server = FakeApiServer::start();
    let mut election = LeaderElection::new(server.client.clone(), config());
    let step = tokio::spawn(async move { (election.step().await, election) });
    server.next_request().await.respond(404, status(404, "NotFound", "not found"));
    let create = server.next_request().await;
    let mut created = create.request.body.clone();
    created["metadata"]["resourceVersion"] = json!("1");
    create.respond(201, created);
    let (leading, mut election) = within("the create", step).await.unwrap();
    assert!(leading);

    // The apiserver fails: still leader within the renew deadline…
    let step = tokio::spawn(async move { (election.step().await, election) });
    server.next_request().await.respond(500, status(500, "InternalError", "etcdserver: leader changed"));
    let (leading, mut election) = within("a failed renewal", step).await.unwrap();
    assert!(leading, "one failed renewal is tolerated");
    // …but not after it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let step = tokio::spawn(async move { election.step().await });
    server.next_request().await.respond(500, status(500, "InternalError", "etcdserver: leader changed"));
    assert!(!within("the renewal past the deadline", step).await.unwrap());
}

#[tokio::test]
async fn spawned_election_publishes_leadership() {
    let mut server = FakeApiServer::start();
    let (mut is_leader, task) = leader::spawn(server.client.clone(), config());
    assert!(!*is_leader.borrow());
    server.next_request().await.respond(404, status(404, "NotFound", "not found"));
    let create = server.next_request().await;
    let mut created = create.request.body.clone();
    created["metadata"]["resourceVersion"] = json!("1");
    create.respond(201, created);
    within("leadership", is_leader.wait_for(|leading| *leading)).await.unwrap();
    task.abort();
}
