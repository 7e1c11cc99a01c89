//! Delta (incremental) ADS, as a translation around the state-of-the-world machine of `stream`.
//!
//! Every protocol decision — when to send, make-before-break between clusters, route
//! configurations and the route table, ACK/NACK/nonce handling — stays in [`StreamState`]. This
//! module turns Envoy's `DeltaDiscoveryRequest`s into the `DiscoveryRequest`s that machine
//! expects, and each of its responses into a `DeltaDiscoveryResponse` that carries only what
//! Envoy does not have yet. At 10 000 Services, a new Service is then one cluster on the wire and
//! in Envoy instead of all 10 000 again.
//!
//! Per type it remembers what Envoy was sent (name → content hash) and, for types requested by
//! name, what Envoy subscribed to. Rules:
//! - A request becomes the state-of-the-world request Envoy would have sent: the subscribed names
//!   after its subscribe/unsubscribe lists, its nonce and error; `version_info` is the version of
//!   the response it answers (an ACK) or the last one ACKed (a NACK, a subscription change).
//! - A response keeps only the resources whose content Envoy lacks. For listeners and clusters
//!   (wildcard types) a name Envoy has that the response lacks goes into `removed_resources`: the
//!   state-of-the-world machine's make-before-break decides when that happens. For the others
//!   nothing is removed, as in state-of-the-world xDS (Envoy unsubscribes what it no longer uses).
//! - On a new stream, the listeners and clusters Envoy says it has (`initial_resource_versions`)
//!   and we do not serve are removed; the rest is sent again.
//! - An unsubscribed name is forgotten, so subscribing again gets it again. After a NACK,
//!   everything of the type is sent again with the next response (a new snapshot, or the rejected
//!   response sent again, `StreamState::resend_rejected`); for listeners and clusters the names
//!   Envoy may hold are kept, so one removed since is still removed.
//! - A cluster sent again is re-created by Envoy, and the new cluster needs its endpoints, which
//!   Envoy does not ask for again (the name stays subscribed): Envoy keeps the load assignments
//!   it received over ADS and hands them to the new cluster (its EDS resources cache), so nothing
//!   is re-sent. `tests/tests/e2e_control_plane.rs` checks that such a cluster does not stay
//!   warming. Envoy subscribes new clusters' endpoints itself.
//! - Every state-of-the-world response is sent, even when nothing in it is new, because the
//!   machine waits for its answer.
//! - Subscriptions add up over requests, so their number is capped per type
//!   ([`MAX_SUBSCRIBED_NAMES`]); past it the stream ends with `RESOURCE_EXHAUSTED`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse, Resource,
};

use super::cache::Snapshot;
use super::resources::ResourceType;
use super::stream::{StreamEvent, StreamState};

/// Most names a stream may subscribe to per type: 2.5 times the clusters of 100 000 Ingresses
/// with a Service each. A state-of-the-world request carries all its names at once, so its size
/// cap bounds them; delta subscriptions add up over requests and need a cap of their own.
pub const MAX_SUBSCRIBED_NAMES: usize = 250_000;

/// The hash of a resource whose content in Envoy is not known: whatever is sent differs from it.
const UNKNOWN: [u8; 32] = [0; 32];

/// What the caller must do after one input.
#[derive(Debug, Default)]
pub struct DeltaStep {
    /// Send these, in order.
    pub responses: Vec<DeltaDiscoveryResponse>,
    pub events: Vec<StreamEvent>,
    /// The stream must end with this error (`RESOURCE_EXHAUSTED`): too many subscribed names.
    pub exhausted: Option<String>,
}

#[derive(Debug, Default)]
struct DeltaType {
    /// Names Envoy subscribed to (types requested by name).
    subscribed: BTreeSet<String>,
    /// What Envoy was sent and not told to remove: name → content hash.
    sent: BTreeMap<String, [u8; 32]>,
    /// Nonce and version of the machine's last response of this type.
    last: Option<(String, String)>,
    /// The version Envoy last ACKed.
    acked: String,
    /// Whether Envoy has asked for this type on this stream.
    seen: bool,
}

/// One delta ADS stream's state.
#[derive(Debug)]
pub struct DeltaStream {
    inner: StreamState,
    types: BTreeMap<ResourceType, DeltaType>,
}

impl DeltaStream {
    /// A new stream that will serve `snapshot` (possibly the empty, not-yet-built one).
    pub fn new(snapshot: Arc<Snapshot>) -> DeltaStream {
        DeltaStream { inner: StreamState::with_response_names(snapshot), types: BTreeMap::new() }
    }

    pub fn node_id(&self) -> Option<&str> {
        self.inner.node_id()
    }

    /// Handle one request from Envoy.
    pub fn on_request(&mut self, request: DeltaDiscoveryRequest) -> DeltaStep {
        let Some(resource_type) = ResourceType::from_type_url(&request.type_url) else {
            let step = self.inner.on_request(DiscoveryRequest { node: request.node, type_url: request.type_url, ..Default::default() });
            return DeltaStep { events: step.events, ..DeltaStep::default() };
        };
        let state = self.types.entry(resource_type).or_default();
        if !state.seen && resource_type.is_wildcard() {
            // What Envoy kept from an earlier stream: whatever we do not send again is removed.
            state.sent.extend(request.initial_resource_versions.into_keys().map(|name| (name, UNKNOWN)));
        }
        state.seen = true;
        if !resource_type.is_wildcard() {
            for name in request.resource_names_unsubscribe {
                state.sent.remove(&name);
                state.subscribed.remove(&name);
            }
            state.subscribed.extend(request.resource_names_subscribe);
            if state.subscribed.len() > MAX_SUBSCRIBED_NAMES {
                let reason = format!(
                    "more than {MAX_SUBSCRIBED_NAMES} {} names subscribed on one stream",
                    resource_type.label()
                );
                return DeltaStep { exhausted: Some(reason), ..DeltaStep::default() };
            }
        }
        let answered = state.last.as_ref().filter(|(nonce, _)| *nonce == request.response_nonce);
        let version_info = match (answered, &request.error_detail) {
            (Some((_, version)), None) => version.clone(),
            _ => state.acked.clone(),
        };
        match (answered, &request.error_detail) {
            (Some(_), None) => state.acked.clone_from(&version_info),
            // What Envoy kept of a refused response is not known: send it all again next time.
            (Some(_), Some(_)) if !resource_type.is_wildcard() => state.sent.clear(),
            (Some(_), Some(_)) => state.sent.values_mut().for_each(|hash| *hash = UNKNOWN),
            _ => {}
        }
        let sotw = DiscoveryRequest {
            version_info,
            node: request.node,
            resource_names: state.subscribed.iter().cloned().collect(),
            type_url: request.type_url,
            response_nonce: request.response_nonce,
            error_detail: request.error_detail,
            ..Default::default()
        };
        let step = self.inner.on_request(sotw);
        self.translate(step.responses, step.events)
    }

    /// A new snapshot was published.
    pub fn on_snapshot(&mut self, snapshot: Arc<Snapshot>) -> DeltaStep {
        let step = self.inner.on_snapshot(snapshot);
        self.translate(step.responses, step.events)
    }

    /// See [`StreamState::rejected_resends`].
    pub fn rejected_resends(&self) -> Option<u32> {
        self.inner.rejected_resends()
    }

    /// The rejected responses again ([`StreamState::resend_rejected`]), with all they carry.
    pub fn resend_rejected(&mut self) -> DeltaStep {
        let step = self.inner.resend_rejected();
        self.translate(step.responses, step.events)
    }

    fn translate(&mut self, responses: Vec<DiscoveryResponse>, events: Vec<StreamEvent>) -> DeltaStep {
        let mut step = DeltaStep { events, ..DeltaStep::default() };
        for response in responses {
            let Some(resource_type) = ResourceType::from_type_url(&response.type_url) else { continue };
            step.responses.push(self.delta(resource_type, response));
        }
        step
    }

    /// The delta form of one state-of-the-world response, recorded as sent.
    fn delta(&mut self, resource_type: ResourceType, response: DiscoveryResponse) -> DeltaDiscoveryResponse {
        let names = self.inner.take_response_names(resource_type);
        let snapshot = self.inner.snapshot();
        let state = self.types.entry(resource_type).or_default();
        state.last = Some((response.nonce.clone(), response.version_info.clone()));
        let mut resources = Vec::new();
        for (name, resource) in names.iter().zip(response.resources) {
            let hash = snapshot.hash_of(resource_type, name, &resource);
            if state.sent.insert(name.clone(), hash) != Some(hash) {
                resources.push(Resource { name: name.clone(), version: short_hex(&hash), resource: Some(resource), ..Default::default() });
            }
        }
        let mut removed_resources = Vec::new();
        if resource_type.is_wildcard() {
            let present: BTreeSet<&String> = names.iter().collect();
            removed_resources = state.sent.keys().filter(|name| !present.contains(name)).cloned().collect();
            state.sent.retain(|name, _| present.contains(name));
        }
        DeltaDiscoveryResponse {
            system_version_info: response.version_info,
            resources,
            type_url: response.type_url,
            removed_resources,
            nonce: response.nonce,
            control_plane: response.control_plane,
            ..Default::default()
        }
    }
}

/// A resource's version as Envoy shows it: the first 8 bytes of its content hash, in hex.
fn short_hex(hash: &[u8; 32]) -> String {
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::google::rpc::Status;

    use super::*;

    const EDS: ResourceType = ResourceType::Endpoint;
    const CDS: ResourceType = ResourceType::Cluster;
    const ECDS: ResourceType = ResourceType::ExtensionConfig;
    const TABLE: &str = "wasm-ingress.router";

    fn snapshot(entries: &[(ResourceType, &str, &str)]) -> Arc<Snapshot> {
        Snapshot::of_contents(entries)
    }

    /// Clusters `web` and `api` with their endpoints, and a route table, by content.
    fn world(web: &str, api: Option<&str>, table: &str) -> Arc<Snapshot> {
        let mut entries = vec![(CDS, "web", web), (EDS, "web", "E-web"), (ECDS, TABLE, table)];
        if let Some(api) = api {
            entries.extend([(CDS, "api", api), (EDS, "api", "E-api")]);
        }
        snapshot(&entries)
    }

    fn subscribe(t: ResourceType, names: &[&str]) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest {
            type_url: t.type_url().into(),
            resource_names_subscribe: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        }
    }

    fn first(t: ResourceType, envoy_has: &[&str]) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest {
            node: Some(Node { id: "edge-1".into(), ..Default::default() }),
            initial_resource_versions: envoy_has.iter().map(|n| (n.to_string(), "v0".to_string())).collect(),
            ..subscribe(t, &[])
        }
    }

    fn ack(response: &DeltaDiscoveryResponse) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest { type_url: response.type_url.clone(), response_nonce: response.nonce.clone(), ..Default::default() }
    }

    fn nack(response: &DeltaDiscoveryResponse) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest { error_detail: Some(Status { code: 3, message: "refused".into(), details: vec![] }), ..ack(response) }
    }

    /// `(name, content)` of each resource a response carries, and the names it removes.
    fn carried(response: &DeltaDiscoveryResponse) -> (Vec<(String, String)>, Vec<String>) {
        let resources = response
            .resources
            .iter()
            .map(|r| (r.name.clone(), String::from_utf8(r.resource.as_ref().unwrap().value.clone()).unwrap()))
            .collect();
        (resources, response.removed_resources.clone())
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    fn only(step: DeltaStep) -> DeltaDiscoveryResponse {
        assert_eq!(step.responses.len(), 1, "{:?}", step.responses);
        step.responses.into_iter().next().unwrap()
    }

    /// A stream where Envoy holds `web`, `api`, their endpoints and the table, everything ACKed.
    fn settled(world: Arc<Snapshot>) -> DeltaStream {
        let mut stream = DeltaStream::new(world);
        let clusters = only(stream.on_request(first(CDS, &[])));
        assert!(stream.on_request(ack(&clusters)).responses.is_empty());
        let clusters: Vec<String> = stream.inner.snapshot().get(CDS).unwrap().names().map(str::to_string).collect();
        let endpoints = only(stream.on_request(subscribe(EDS, &clusters.iter().map(String::as_str).collect::<Vec<_>>())));
        assert!(stream.on_request(ack(&endpoints)).responses.is_empty());
        let table = only(stream.on_request(subscribe(ECDS, &[TABLE])));
        assert!(stream.on_request(ack(&table)).responses.is_empty());
        stream
    }

    #[test]
    fn the_first_response_has_everything_and_removes_what_envoy_kept_from_before() {
        let mut stream = DeltaStream::new(world("C-web", Some("C-api"), "T1"));
        let step = stream.on_request(first(CDS, &["web", "gone"]));
        assert_eq!(step.events, vec![StreamEvent::NodeIdentified { node_id: "edge-1".into(), cluster: String::new() }]);
        let response = only(step);
        assert_eq!(carried(&response), (pairs(&[("api", "C-api"), ("web", "C-web")]), vec!["gone".to_string()]));
        assert!(response.resources.iter().all(|r| r.version.len() == 16), "versions are content hashes");
        assert_eq!(Some(response.system_version_info.as_str()), stream.inner.snapshot().version(CDS));
        assert_eq!(stream.node_id(), Some("edge-1"));
    }

    #[test]
    fn a_new_or_changed_cluster_travels_alone_and_a_removed_one_is_named() {
        let mut stream = settled(world("C-web", None, "T1"));
        // A Service joins: one cluster on the wire; the table naming it waits for the cluster ACK.
        let clusters = only(stream.on_snapshot(world("C-web", Some("C-api"), "T2")));
        assert_eq!(carried(&clusters), (pairs(&[("api", "C-api")]), vec![]));
        let table = only(stream.on_request(ack(&clusters)));
        assert_eq!(carried(&table), (pairs(&[(TABLE, "T2")]), vec![]));
        stream.on_request(ack(&table));
        let endpoints = only(stream.on_request(subscribe(EDS, &["api"])));
        assert_eq!(carried(&endpoints), (pairs(&[("api", "E-api")]), vec![]), "Envoy asks for the new cluster's endpoints");
        stream.on_request(ack(&endpoints));
        // It goes again: removed once the table without it is ACKed, not before.
        let step = stream.on_snapshot(world("C-web", None, "T3"));
        let types: Vec<&str> = step.responses.iter().map(|r| r.type_url.as_str()).collect();
        assert_eq!(types, vec![EDS.type_url(), ECDS.type_url()], "no cluster response yet");
        assert_eq!(carried(&step.responses[0]), (vec![], vec![]), "endpoints are never removed by us");
        let table = step.responses[1].clone();
        stream.on_request(ack(&step.responses[0]));
        let clusters = only(stream.on_request(ack(&table)));
        assert_eq!(carried(&clusters), (vec![], vec!["api".to_string()]));
    }

    #[test]
    fn a_changed_cluster_travels_alone_and_its_acks_reach_the_machine() {
        let mut stream = settled(world("C-web", Some("C-api"), "T1"));
        let clusters = only(stream.on_snapshot(world("C-web-2", Some("C-api"), "T1")));
        assert_eq!(carried(&clusters), (pairs(&[("web", "C-web-2")]), vec![]));
        let answer = stream.on_request(ack(&clusters));
        assert_eq!(answer.events, vec![StreamEvent::Acked { resource_type: CDS, version: clusters.system_version_info.clone() }]);
        assert!(answer.responses.iter().all(|r| r.resources.is_empty()), "endpoints unchanged: {:?}", answer.responses);
    }

    #[test]
    fn endpoints_travel_by_subscription_and_change() {
        let mut stream = settled(world("C-web", Some("C-api"), "T1"));
        // One assignment changes: only it travels.
        let next = snapshot(&[(CDS, "web", "C-web"), (CDS, "api", "C-api"), (EDS, "web", "E-web-2"), (EDS, "api", "E-api"), (ECDS, TABLE, "T1")]);
        let change = only(stream.on_snapshot(next));
        assert_eq!(carried(&change), (pairs(&[("web", "E-web-2")]), vec![]));
        stream.on_request(ack(&change));
        // Unsubscribed, then subscribed again: sent again, as Envoy dropped it.
        let dropped = DeltaDiscoveryRequest { resource_names_unsubscribe: vec!["api".into()], ..subscribe(EDS, &[]) };
        let response = only(stream.on_request(dropped));
        assert_eq!(carried(&response), (vec![], vec![]), "nothing is removed by us for a type requested by name");
        stream.on_request(ack(&response));
        let again = only(stream.on_request(subscribe(EDS, &["api"])));
        assert_eq!(carried(&again), (pairs(&[("api", "E-api")]), vec![]));
    }

    #[test]
    fn acks_and_nacks_reach_the_machine_with_the_versions_it_expects() {
        let mut stream = settled(world("C-web", None, "T1"));
        let accepted = stream.inner.acked_version(ECDS).map(str::to_string);
        let bad = only(stream.on_snapshot(world("C-web", None, "T-bad")));
        let step = stream.on_request(nack(&bad));
        assert!(step.responses.is_empty(), "the same content would be refused again");
        assert_eq!(
            step.events,
            vec![StreamEvent::Nacked {
                resource_type: ECDS,
                rejected_version: bad.system_version_info.clone(),
                last_accepted_version: accepted.clone().unwrap(),
                error_detail: "refused".into(),
            }]
        );
        assert_eq!(stream.inner.acked_version(ECDS).map(str::to_string), accepted);
        let fixed = only(stream.on_snapshot(world("C-web", None, "T2")));
        assert_eq!(carried(&fixed), (pairs(&[(TABLE, "T2")]), vec![]));
        let step = stream.on_request(ack(&fixed));
        assert_eq!(step.events, vec![StreamEvent::Acked { resource_type: ECDS, version: fixed.system_version_info.clone() }]);
    }

    #[test]
    fn after_a_nack_of_endpoints_they_are_all_sent_again() {
        let mut stream = settled(world("C-web", Some("C-api"), "T1"));
        let bad = snapshot(&[(CDS, "web", "C-web"), (CDS, "api", "C-api"), (EDS, "web", "E-web"), (EDS, "api", "E-bad"), (ECDS, TABLE, "T1")]);
        let refused = only(stream.on_snapshot(bad));
        stream.on_request(nack(&refused));
        let fixed = snapshot(&[(CDS, "web", "C-web"), (CDS, "api", "C-api"), (EDS, "web", "E-web"), (EDS, "api", "E-api-2"), (ECDS, TABLE, "T1")]);
        let response = only(stream.on_snapshot(fixed));
        assert_eq!(carried(&response), (pairs(&[("api", "E-api-2"), ("web", "E-web")]), vec![]));
    }

    #[test]
    fn a_rejected_response_is_sent_again_whole() {
        let mut stream = settled(world("C-web", Some("C-api"), "T1"));
        // Clusters: one changes; Envoy refuses. Sent again: every cluster, as what Envoy kept of
        // the refused response is not known.
        let refused = only(stream.on_snapshot(world("C-web-2", Some("C-api"), "T1")));
        assert_eq!(carried(&refused), (pairs(&[("web", "C-web-2")]), vec![]));
        stream.on_request(nack(&refused));
        assert_eq!(stream.rejected_resends(), Some(0));
        let again = only(stream.resend_rejected());
        assert_eq!(carried(&again), (pairs(&[("api", "C-api"), ("web", "C-web-2")]), vec![]));
        assert_eq!(again.system_version_info, refused.system_version_info);
        stream.on_request(ack(&again));
        assert_eq!(stream.rejected_resends(), None);

        // The table: refused, then sent again with its content.
        let mut stream = settled(world("C-web", None, "T1"));
        let table = only(stream.on_snapshot(world("C-web", None, "T2")));
        stream.on_request(nack(&table));
        let again = only(stream.resend_rejected());
        assert_eq!(carried(&again), (pairs(&[(TABLE, "T2")]), vec![]));
        let step = stream.on_request(ack(&again));
        assert_eq!(step.events, vec![StreamEvent::Acked { resource_type: ECDS, version: table.system_version_info.clone() }]);
    }

    #[test]
    fn subscriptions_are_capped_per_type() {
        let mut stream = settled(world("C-web", None, "T1"));
        let names: Vec<String> = (0..MAX_SUBSCRIBED_NAMES).map(|i| format!("s{i}")).collect();
        let step = stream.on_request(DeltaDiscoveryRequest { resource_names_subscribe: names, ..subscribe(EDS, &[]) });
        assert!(step.exhausted.is_some(), "{} names plus web's", MAX_SUBSCRIBED_NAMES);
        assert!(step.responses.is_empty());
        let mut stream = settled(world("C-web", None, "T1"));
        let names: Vec<String> = (1..MAX_SUBSCRIBED_NAMES).map(|i| format!("s{i}")).collect();
        let step = stream.on_request(DeltaDiscoveryRequest { resource_names_subscribe: names, ..subscribe(EDS, &[]) });
        assert_eq!(step.exhausted, None, "exactly the cap");
    }

    #[test]
    fn unknown_types_are_reported() {
        let mut stream = DeltaStream::new(world("C-web", None, "T1"));
        let step = stream.on_request(DeltaDiscoveryRequest { type_url: "type.googleapis.com/x.Y".into(), ..Default::default() });
        assert!(step.responses.is_empty());
        assert_eq!(step.events, vec![StreamEvent::UnknownType { type_url: "type.googleapis.com/x.Y".into() }]);
    }
}
