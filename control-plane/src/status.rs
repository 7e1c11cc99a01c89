//! Ingress status: after each translation, the `status.loadBalancer.ingress` of every Ingress of our
//! class that ingress-nginx would load (`Translation::loaded_ingresses`: served or not, as
//! ingress-nginx writes its address on every Ingress of its store) is set to the gateway's address,
//! and our address is removed from the others.
//!
//! The diff is pure (`plan_status_patches`: current objects + that set + our address -> patches) and
//! table-tested; `StatusWriter` only resolves the address (`--status-address`, or the load balancer
//! status of the Envoy Service named by `--status-service`) and sends JSON merge patches to
//! `ingresses/{name}/status`, and only when something differs (our own patch comes back as a watch
//! event, and the next round finds nothing to do). `run_writers` is the loop `serve` runs: only the
//! leader (see `leader.rs`) writes status and events. This module must not decide which Ingresses are
//! ours or served (translation does), and never touches an Ingress's spec.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::events::EventPublisher;
use crate::model::Diagnostic;
use crate::source::kube::{AccessScope, ApiAccess};
use crate::state::{ClusterState, ObjectKey};

/// Field manager recorded in `managedFields` for our status patches.
pub const FIELD_MANAGER: &str = "wasm-ingress";

/// What status writing needs from the API server (besides `services get`, declared by the source).
pub const API_ACCESS: &[ApiAccess] = &[ApiAccess {
    group: "networking.k8s.io",
    resource: "ingresses/status",
    verbs: &["patch"],
    scope: AccessScope::Cluster,
}];

/// One address of the gateway, as written into `status.loadBalancer.ingress[]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GatewayAddress {
    Ip(String),
    Hostname(String),
}

impl GatewayAddress {
    /// `--status-address`: an IP literal becomes `ip`, anything else `hostname`.
    pub fn parse(text: &str) -> GatewayAddress {
        let text = text.trim();
        match text.parse::<IpAddr>() {
            Ok(ip) => GatewayAddress::Ip(ip.to_string()),
            Err(_) => GatewayAddress::Hostname(text.to_ascii_lowercase()),
        }
    }

    fn to_load_balancer_ingress(&self) -> IngressLoadBalancerIngress {
        match self {
            GatewayAddress::Ip(ip) => IngressLoadBalancerIngress { ip: Some(ip.clone()), ..Default::default() },
            GatewayAddress::Hostname(hostname) => {
                IngressLoadBalancerIngress { hostname: Some(hostname.clone()), ..Default::default() }
            }
        }
    }
}

/// Where the gateway address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusAddressSource {
    /// `--status-address`: one address or more, sorted, without repeats.
    Fixed(Vec<GatewayAddress>),
    /// `--status-service NAMESPACE/NAME`: the Envoy Service's `status.loadBalancer.ingress`.
    Service(ObjectKey),
    /// Neither flag: status is never written.
    Disabled,
}

impl StatusAddressSource {
    /// From the two `serve` flags (clap makes them mutually exclusive).
    pub fn from_flags(status_address: Option<&str>, status_service: Option<&ObjectKey>) -> StatusAddressSource {
        match (status_address, status_service) {
            (Some(addresses), _) if !addresses.trim().is_empty() => StatusAddressSource::Fixed(fixed_addresses(addresses)),
            (_, Some(service)) => StatusAddressSource::Service(service.clone()),
            _ => StatusAddressSource::Disabled,
        }
    }
}

/// `--status-address`, a comma-separated list as ingress-nginx's `--publish-status-address`.
fn fixed_addresses(text: &str) -> Vec<GatewayAddress> {
    let addresses: BTreeSet<GatewayAddress> = text.split(',').filter(|part| !part.trim().is_empty()).map(GatewayAddress::parse).collect();
    addresses.into_iter().collect()
}

/// The addresses of the gateway's Service, sorted, as ingress-nginx's `--publish-service` reads
/// them (`statusAddressFromService`): a LoadBalancer's `status.loadBalancer.ingress` and its
/// `externalIPs`; a NodePort's `externalIPs`, else its cluster IP; a ClusterIP Service's cluster
/// IP; an ExternalName's name.
pub fn service_addresses(service: &Service) -> Vec<GatewayAddress> {
    let spec = service.spec.as_ref();
    let external_ips = || spec.and_then(|spec| spec.external_ips.as_ref()).into_iter().flatten().filter_map(|ip| address_of(Some(ip), None));
    let cluster_ip = || spec.and_then(|spec| spec.cluster_ip.as_deref()).filter(|ip| *ip != "None").and_then(|ip| address_of(Some(ip), None));
    let addresses: BTreeSet<GatewayAddress> = match spec.and_then(|spec| spec.type_.as_deref()).unwrap_or("ClusterIP") {
        "LoadBalancer" => {
            let entries = service.status.as_ref().and_then(|status| status.load_balancer.as_ref()).and_then(|load_balancer| load_balancer.ingress.as_ref());
            entries.into_iter().flatten().filter_map(|entry| address_of(entry.ip.as_deref(), entry.hostname.as_deref())).chain(external_ips()).collect()
        }
        "NodePort" if external_ips().next().is_some() => external_ips().collect(),
        "NodePort" | "ClusterIP" => cluster_ip().into_iter().collect(),
        "ExternalName" => spec.and_then(|spec| spec.external_name.as_deref()).and_then(|name| address_of(None, Some(name))).into_iter().collect(),
        _ => BTreeSet::new(),
    };
    addresses.into_iter().collect()
}

fn address_of(ip: Option<&str>, hostname: Option<&str>) -> Option<GatewayAddress> {
    match (ip.filter(|ip| !ip.is_empty()), hostname.filter(|hostname| !hostname.is_empty())) {
        (Some(ip), _) => Some(GatewayAddress::Ip(ip.to_string())),
        (None, Some(hostname)) => Some(GatewayAddress::Hostname(hostname.to_string())),
        (None, None) => None,
    }
}

/// The addresses an Ingress's status currently lists, sorted (ports are not compared).
pub fn ingress_addresses(ingress: &Ingress) -> Vec<GatewayAddress> {
    let entries = ingress
        .status
        .as_ref()
        .and_then(|status| status.load_balancer.as_ref())
        .and_then(|load_balancer| load_balancer.ingress.as_ref());
    let addresses: BTreeSet<GatewayAddress> = entries
        .into_iter()
        .flatten()
        .filter_map(|entry| address_of(entry.ip.as_deref(), entry.hostname.as_deref()))
        .collect();
    addresses.into_iter().collect()
}

/// One status update: the complete new `status.loadBalancer.ingress` of one Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPatch {
    pub ingress: ObjectKey,
    /// Sorted; empty clears the field.
    pub addresses: Vec<GatewayAddress>,
}

impl StatusPatch {
    /// The JSON merge patch body for `ingresses/{name}/status` (lists are replaced whole; `null`
    /// removes the field).
    pub fn merge_patch(&self) -> serde_json::Value {
        let ingress = if self.addresses.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::json!(self
                .addresses
                .iter()
                .map(GatewayAddress::to_load_balancer_ingress)
                .collect::<Vec<_>>())
        };
        serde_json::json!({ "status": { "loadBalancer": { "ingress": ingress } } })
    }
}

/// The patches that bring every Ingress's status to what it should be:
/// - the `addressed` Ingresses (those whose status is ours: every Ingress of our class ingress-nginx
///   would load) list exactly `gateway` (unless they already do);
/// - every other Ingress that lists one of our addresses gets them removed (others' addresses stay).
///
/// With no known gateway address (`gateway` empty) nothing is written, not even clearing: we could
/// not tell our entries from anyone else's.
pub fn plan_status_patches<I: std::borrow::Borrow<Ingress>>(
    ingresses: &BTreeMap<ObjectKey, I>,
    addressed: &BTreeSet<ObjectKey>,
    gateway: &[GatewayAddress],
) -> Vec<StatusPatch> {
    let ours: BTreeSet<GatewayAddress> = gateway.iter().cloned().collect();
    if ours.is_empty() {
        return Vec::new();
    }
    let desired_when_addressed: Vec<GatewayAddress> = ours.iter().cloned().collect();
    let mut patches = Vec::new();
    for (key, ingress) in ingresses {
        let current = ingress_addresses(ingress.borrow());
        let desired = if addressed.contains(key) {
            desired_when_addressed.clone()
        } else {
            current.iter().filter(|address| !ours.contains(address)).cloned().collect()
        };
        if desired != current {
            patches.push(StatusPatch { ingress: key.clone(), addresses: desired });
        }
    }
    patches
}

/// What one status round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusReport {
    pub patched: usize,
    pub failed: usize,
}

/// Sends the status patches; holds no state between rounds except the address source.
#[derive(Clone)]
pub struct StatusWriter {
    client: Client,
    source: StatusAddressSource,
}

impl StatusWriter {
    pub fn new(client: Client, source: StatusAddressSource) -> StatusWriter {
        StatusWriter { client, source }
    }

    /// The gateway's current addresses: the fixed one, or the Envoy Service's load balancer status
    /// (from the watched state when that Service is in it, else a GET). Empty when unknown yet.
    pub async fn gateway_addresses(&self, state: &ClusterState) -> Result<Vec<GatewayAddress>, kube::Error> {
        match &self.source {
            StatusAddressSource::Disabled => Ok(Vec::new()),
            StatusAddressSource::Fixed(addresses) => Ok(addresses.clone()),
            StatusAddressSource::Service(key) => {
                if let Some(service) = state.services.get(key) {
                    return Ok(service_addresses(service));
                }
                let services: Api<Service> = Api::namespaced(self.client.clone(), &key.namespace);
                Ok(services.get_opt(&key.name).await?.map(|service| service_addresses(&service)).unwrap_or_default())
            }
        }
    }

    /// Bring the status of every Ingress in `state` in line with `addressed`. Patch failures (an
    /// Ingress deleted meanwhile, a conflict) are logged and counted; the next round retries.
    #[tracing::instrument(skip_all, fields(addressed = addressed.len()))]
    pub async fn sync(&self, state: &ClusterState, addressed: &BTreeSet<ObjectKey>) -> Result<StatusReport, kube::Error> {
        let gateway = self.gateway_addresses(state).await?;
        if gateway.is_empty() && self.source != StatusAddressSource::Disabled {
            tracing::info!("gateway address not known yet; Ingress status left alone");
        }
        let mut report = StatusReport::default();
        for patch in plan_status_patches(&state.ingresses, addressed, &gateway) {
            let api: Api<Ingress> = Api::namespaced(self.client.clone(), &patch.ingress.namespace);
            let params = PatchParams { field_manager: Some(FIELD_MANAGER.to_string()), ..PatchParams::default() };
            match api.patch_status(&patch.ingress.name, &params, &Patch::Merge(patch.merge_patch())).await {
                Ok(_) => {
                    tracing::info!(ingress = %patch.ingress, addresses = ?patch.addresses, "Ingress status updated");
                    report.patched += 1;
                }
                Err(error) => {
                    tracing::warn!(ingress = %patch.ingress, %error, "Ingress status update failed");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }
}

/// What the writers act on: the state of the latest translation, the Ingresses whose status is ours
/// (`Translation::loaded_ingresses`), and its diagnostics with those of the standing NACKs. Its own `Arc`s, not the translation's, so the
/// writers holding it never make `serve` copy a translation to apply an endpoint change.
#[derive(Debug, Clone)]
pub struct TranslatedState {
    pub state: Arc<ClusterState>,
    pub addressed_ingresses: Arc<BTreeSet<ObjectKey>>,
    pub diagnostics: Arc<Vec<Diagnostic>>,
}

/// How often the leader re-checks status and flushes rate-limited events without a new translation
/// (the Envoy Service may get its load balancer address long after the last change).
pub const WRITERS_RESYNC: Duration = Duration::from_secs(30);

/// The writer loop `serve` runs with the Kubernetes source: whenever a new translation arrives, this
/// replica becomes leader, or `resync` passes, and only while `leader` is `true`, sync Ingress status
/// and publish diagnostics as Events. Runs until `translated`'s sender is dropped.
pub async fn run_writers(
    mut translated: watch::Receiver<Option<TranslatedState>>,
    mut leader: watch::Receiver<bool>,
    status: StatusWriter,
    mut events: EventPublisher,
    resync: Duration,
) {
    let mut tick = tokio::time::interval(resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = translated.changed() => if changed.is_err() { return },
            changed = leader.changed() => if changed.is_err() { return },
            _ = tick.tick() => {}
        }
        if !*leader.borrow_and_update() {
            continue;
        }
        let Some(current) = translated.borrow_and_update().clone() else { continue };
        if let Err(error) = status.sync(&current.state, &current.addressed_ingresses).await {
            tracing::warn!(%error, "could not resolve the gateway address for Ingress status");
        }
        events.publish(&current.state, &current.diagnostics).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn ingress_with_status(namespace: &str, name: &str, status: serde_json::Value) -> (ObjectKey, Ingress) {
        let ingress: Ingress = serde_json::from_value(serde_json::json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"ingressClassName": "wasm"},
            "status": {"loadBalancer": status},
        }))
        .unwrap();
        (ObjectKey::new(namespace, name), ingress)
    }

    fn ip(text: &str) -> GatewayAddress {
        GatewayAddress::Ip(text.into())
    }

    fn hostname(text: &str) -> GatewayAddress {
        GatewayAddress::Hostname(text.into())
    }

    struct Case {
        name: &'static str,
        current: serde_json::Value,
        served: bool,
        gateway: Vec<GatewayAddress>,
        expected: Option<Vec<GatewayAddress>>,
    }

    #[test]
    fn status_patches_follow_the_served_set() {
        let cases = [
            Case {
                name: "served ingress without status gets our ip",
                current: serde_json::json!({}),
                served: true,
                gateway: vec![ip("203.0.113.10")],
                expected: Some(vec![ip("203.0.113.10")]),
            },
            Case {
                name: "served ingress already listing our ip is left alone",
                current: serde_json::json!({"ingress": [{"ip": "203.0.113.10"}]}),
                served: true,
                gateway: vec![ip("203.0.113.10")],
                expected: None,
            },
            Case {
                name: "served ingress with an old address is replaced",
                current: serde_json::json!({"ingress": [{"ip": "198.51.100.1"}]}),
                served: true,
                gateway: vec![hostname("lb.example.com")],
                expected: Some(vec![hostname("lb.example.com")]),
            },
            Case {
                name: "served ingress gets every address of the load balancer, sorted",
                current: serde_json::json!({"ingress": [{"ip": "203.0.113.10"}]}),
                served: true,
                gateway: vec![ip("203.0.113.11"), ip("203.0.113.10")],
                expected: Some(vec![ip("203.0.113.10"), ip("203.0.113.11")]),
            },
            Case {
                name: "ingress we stopped serving is cleared",
                current: serde_json::json!({"ingress": [{"ip": "203.0.113.10"}]}),
                served: false,
                gateway: vec![ip("203.0.113.10")],
                expected: Some(vec![]),
            },
            Case {
                name: "clearing keeps another controller's address",
                current: serde_json::json!({"ingress": [{"ip": "203.0.113.10"}, {"hostname": "other.example.net"}]}),
                served: false,
                gateway: vec![ip("203.0.113.10")],
                expected: Some(vec![hostname("other.example.net")]),
            },
            Case {
                name: "ingress of another controller is never touched",
                current: serde_json::json!({"ingress": [{"ip": "198.51.100.1"}]}),
                served: false,
                gateway: vec![ip("203.0.113.10")],
                expected: None,
            },
            Case {
                name: "unserved ingress without status needs nothing",
                current: serde_json::json!({}),
                served: false,
                gateway: vec![ip("203.0.113.10")],
                expected: None,
            },
            Case {
                name: "unknown gateway address writes nothing, not even clearing",
                current: serde_json::json!({"ingress": [{"ip": "203.0.113.10"}]}),
                served: true,
                gateway: vec![],
                expected: None,
            },
        ];
        for case in cases {
            let (key, ingress) = ingress_with_status("default", "shop", case.current);
            let ingresses = BTreeMap::from([(key.clone(), ingress)]);
            let served: BTreeSet<ObjectKey> = if case.served { [key.clone()].into() } else { BTreeSet::new() };
            let patches = plan_status_patches(&ingresses, &served, &case.gateway);
            let expected: Vec<StatusPatch> = case
                .expected
                .into_iter()
                .map(|addresses| StatusPatch { ingress: key.clone(), addresses })
                .collect();
            assert_eq!(patches, expected, "{}", case.name);
        }
    }

    #[test]
    fn only_ingresses_that_differ_are_patched_in_key_order() {
        let ours = serde_json::json!({"ingress": [{"ip": "203.0.113.10"}]});
        let ingresses = BTreeMap::from([
            ingress_with_status("b", "done", ours.clone()),
            ingress_with_status("a", "new", serde_json::json!({})),
            ingress_with_status("c", "gone", ours),
        ]);
        let served: BTreeSet<ObjectKey> = [ObjectKey::new("b", "done"), ObjectKey::new("a", "new")].into();
        let patches = plan_status_patches(&ingresses, &served, &[ip("203.0.113.10")]);
        assert_eq!(
            patches,
            vec![
                StatusPatch { ingress: ObjectKey::new("a", "new"), addresses: vec![ip("203.0.113.10")] },
                StatusPatch { ingress: ObjectKey::new("c", "gone"), addresses: vec![] },
            ]
        );
    }

    #[test]
    fn merge_patch_sets_or_removes_the_load_balancer_list() {
        let set = StatusPatch { ingress: ObjectKey::new("default", "shop"), addresses: vec![ip("203.0.113.10"), hostname("lb.example.com")] };
        assert_eq!(
            set.merge_patch(),
            serde_json::json!({"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}, {"hostname": "lb.example.com"}]}}})
        );
        let clear = StatusPatch { ingress: ObjectKey::new("default", "shop"), addresses: vec![] };
        assert_eq!(clear.merge_patch(), serde_json::json!({"status": {"loadBalancer": {"ingress": null}}}));
    }

    #[test]
    fn status_address_flag_is_an_ip_or_a_hostname() {
        assert_eq!(GatewayAddress::parse("203.0.113.10"), ip("203.0.113.10"));
        assert_eq!(GatewayAddress::parse("2001:db8::1"), ip("2001:db8::1"));
        assert_eq!(GatewayAddress::parse("LB.Example.com"), hostname("lb.example.com"));
        assert_eq!(
            StatusAddressSource::from_flags(Some("203.0.113.10"), None),
            StatusAddressSource::Fixed(vec![ip("203.0.113.10")])
        );
        // ingress-nginx's `--publish-status-address` splits on commas (its e2e test: `1.1.0.0,1.1.0.2`).
        assert_eq!(
            StatusAddressSource::from_flags(Some("1.1.0.2, 1.1.0.0,,lb.example.com,1.1.0.0"), None),
            StatusAddressSource::Fixed(vec![ip("1.1.0.0"), ip("1.1.0.2"), hostname("lb.example.com")])
        );
        let service = ObjectKey::new("wasm-ingress", "wasm-ingress-envoy");
        assert_eq!(StatusAddressSource::from_flags(None, Some(&service)), StatusAddressSource::Service(service));
        assert_eq!(StatusAddressSource::from_flags(None, None), StatusAddressSource::Disabled);
    }

    #[test]
    fn status_service_flag_needs_a_namespace_and_a_name() {
        use crate::cli::parse_namespaced_name;
        assert_eq!(parse_namespaced_name("wasm-ingress/wasm-ingress-envoy"), Ok(ObjectKey::new("wasm-ingress", "wasm-ingress-envoy")));
        for bad in ["wasm-ingress-envoy", "/envoy", "ns/", "a/b/c", ""] {
            assert!(parse_namespaced_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn service_load_balancer_status_gives_ips_and_hostnames() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "wasm-ingress-envoy", "namespace": "wasm-ingress"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.20"},
            "status": {"loadBalancer": {"ingress": [
                {"hostname": "a1b2.elb.amazonaws.com"},
                {"ip": "203.0.113.10", "ipMode": "VIP"},
                {}
            ]}}
        }))
        .unwrap();
        assert_eq!(service_addresses(&service), vec![ip("203.0.113.10"), hostname("a1b2.elb.amazonaws.com")]);
        let pending: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "wasm-ingress-envoy", "namespace": "wasm-ingress"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.20"},
            "status": {"loadBalancer": {}}
        }))
        .unwrap();
        assert_eq!(service_addresses(&pending), vec![], "not the cluster IP while the load balancer is pending");
    }

    /// ingress-nginx's `statusAddressFromService`, type by type.
    #[test]
    fn each_service_type_gives_ingress_nginx_s_addresses() {
        let service = |spec: serde_json::Value, status: serde_json::Value| -> Vec<GatewayAddress> {
            let json = serde_json::json!({"metadata": {"name": "envoy", "namespace": "wasm-ingress"}, "spec": spec, "status": status});
            service_addresses(&serde_json::from_value(json).unwrap())
        };
        let none = serde_json::json!({});
        let rows: [(serde_json::Value, serde_json::Value, Vec<GatewayAddress>); 7] = [
            (serde_json::json!({"type": "ClusterIP", "clusterIP": "10.96.0.20"}), none.clone(), vec![ip("10.96.0.20")]),
            (serde_json::json!({"type": "ClusterIP", "clusterIP": "None"}), none.clone(), vec![]),
            (serde_json::json!({"type": "NodePort", "clusterIP": "10.96.0.20"}), none.clone(), vec![ip("10.96.0.20")]),
            (serde_json::json!({"type": "NodePort", "clusterIP": "10.96.0.20", "externalIPs": ["192.0.2.7", "192.0.2.8"]}), none.clone(), vec![ip("192.0.2.7"), ip("192.0.2.8")]),
            (serde_json::json!({"type": "ExternalName", "externalName": "edge.example.com"}), none.clone(), vec![hostname("edge.example.com")]),
            (
                serde_json::json!({"type": "LoadBalancer", "clusterIP": "10.96.0.20", "externalIPs": ["192.0.2.7", "203.0.113.10"]}),
                serde_json::json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}),
                vec![ip("192.0.2.7"), ip("203.0.113.10")],
            ),
            (serde_json::json!({"clusterIP": "10.96.0.20"}), none, vec![ip("10.96.0.20")]),
        ];
        for (spec, status, expected) in rows {
            assert_eq!(service(spec.clone(), status), expected, "{spec}");
        }
    }
}
