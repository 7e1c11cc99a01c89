//! The per-stream ADS state machine (state of the world), in the style of ezbake: synchronous, no
//! I/O, no clock. Inputs are Envoy's `DiscoveryRequest`s and new snapshots; outputs are the
//! `DiscoveryResponse`s to send and [`StreamEvent`]s to log and count. `server` is a thin loop
//! around it; delta ADS is this machine behind the translation of `delta`.
//!
//! Per type it tracks: whether Envoy subscribed, the names it asked for, the last response sent
//! (version, nonce, names), whether that response still awaits its ACK/NACK, and the last version
//! Envoy ACKed. Rules:
//! - A request with an empty nonce is a (re)subscription: answer with the current resources.
//! - A request whose nonce is not the last one sent for its type is stale: ignored (Envoy sends
//!   another one for the newer response).
//! - A request with the current nonce and `error_detail` is a NACK: Envoy keeps its last accepted
//!   configuration; we record the error and send again once there is something different to send
//!   (a new snapshot or other names), or when the caller asks for the rejected responses again
//!   ([`StreamState::resend_rejected`], on a backoff the caller keeps): a rejection can pass (Envoy
//!   failed to create the wasm VM, a file it reads was not there yet). Without `error_detail` it
//!   is an ACK.
//! - At most one response per type awaits an answer; a snapshot arriving meanwhile is sent when
//!   the answer comes. Responses are versioned by content, so nothing identical is re-sent.
//! - Listeners and clusters are sent whole; endpoints, secrets and filter configs only by the names
//!   requested.
//! - Endpoints are sent as a change: a response carries only the load assignments that differ from
//!   what was sent before (in state-of-the-world xDS, a route or endpoint response that omits a
//!   resource leaves it as it is). Envoy is sent them all again after a cluster response (a
//!   cluster it re-creates asks again), after a NACK of endpoints and on a resubscription, so an
//!   endpoint change at 10 000 clusters is one small message instead of 10 000 assignments.
//! - On a new snapshot, and after every request, types are visited in make-before-break order
//!   (`ResourceType::ALL`).
//! - Make-before-break, both ways, between clusters and the filter configuration (the route table
//!   names clusters). Adding: the filter configuration waits while a cluster response is in
//!   flight, so Envoy knows a cluster before a route names it. Removing: a cluster the snapshot
//!   dropped stays in the cluster responses until the filter configuration is ACKed at the current
//!   version — so it outlives the table that still routes to it, and after a NACK the last
//!   accepted table keeps every cluster it uses. (Endpoints and secrets are requested by name:
//!   Envoy itself stops asking once nothing uses them; listeners name no cluster.)
//! - The same both ways between route configurations and the filter configuration (the route
//!   table names policy keys that the route configurations resolve). Adding: the filter
//!   configuration waits while a route-configuration response is in flight. Removing: while the
//!   filter configuration is not ACKed at the current version, each route configuration sent
//!   keeps the policy entries of the one sent before that it lacks (`route_config::retain_entries`),
//!   so a request routed by the table Envoy still runs never meets a key Envoy no longer knows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::ControlPlane;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};

use super::cache::{Selection, Snapshot};
use super::route_config;
use super::resources::{resend_variant, ResourceType};

/// Identifies us in every response (`control_plane.identifier`).
pub const CONTROL_PLANE_ID: &str = "wasm-ingress";

/// Something that happened on the stream, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The first request carrying a node (Envoy sends it once: `set_node_on_first_message_only`).
    NodeIdentified { node_id: String, cluster: String },
    /// Envoy applied `version` of this type.
    Acked { resource_type: ResourceType, version: String },
    /// Envoy rejected `rejected_version`; it keeps `last_accepted_version` (empty: none yet).
    Nacked { resource_type: ResourceType, rejected_version: String, last_accepted_version: String, error_detail: String },
    /// A request answering an older response than the last one sent; ignored.
    StaleNonce { resource_type: ResourceType, nonce: String },
    /// A type we do not serve.
    UnknownType { type_url: String },
}

/// What the caller must do after one input.
#[derive(Debug, Default)]
pub struct Step {
    /// Send these, in order.
    pub responses: Vec<DiscoveryResponse>,
    pub events: Vec<StreamEvent>,
}

/// The last response sent for a type.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    version: String,
    nonce: String,
    /// The names it answered (empty for wildcard types).
    names: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct TypeState {
    subscribed: bool,
    /// Requested names (ignored for wildcard types).
    names: BTreeSet<String>,
    sent: Option<Sent>,
    awaiting_answer: bool,
    acked_version: Option<String>,
    /// The last response's version when Envoy NACKed it, until an ACK.
    rejected: Option<Rejected>,
    /// The next response is the rejected one sent again, this many tries since the rejection
    /// (`resources::resend_variant`).
    resend: Option<u32>,
}

/// A NACKed version and how many times it was sent again since it was first rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rejected {
    version: String,
    resends: u32,
}

impl TypeState {
    /// The standing rejection, when the rejected response is still the last one sent and answered
    /// (so sending it again is the only way Envoy gets this content).
    fn resendable(&self) -> Option<&Rejected> {
        let rejected = self.rejected.as_ref()?;
        let last = self.sent.as_ref()?;
        (!self.awaiting_answer && last.version == rejected.version).then_some(rejected)
    }
}

/// One ADS stream's protocol state.
#[derive(Debug)]
pub struct StreamState {
    snapshot: Arc<Snapshot>,
    types: BTreeMap<ResourceType, TypeState>,
    node_id: Option<String>,
    next_nonce: u64,
    /// The clusters of the last cluster response, by name (what Envoy has, or will have).
    sent_clusters: BTreeMap<String, Any>,
    /// The route configurations of the last route response, by name.
    sent_routes: BTreeMap<String, Any>,
    /// The content hash of each load assignment Envoy was sent since it was last sent them all.
    sent_endpoints: BTreeMap<String, [u8; 32]>,
    /// The names of the resources of the last response per type, in its order, until `delta`
    /// takes them; kept only for a delta stream (`with_response_names`).
    response_names: BTreeMap<ResourceType, Vec<String>>,
    keeps_response_names: bool,
}

/// The type whose content names clusters and policy keys (the filter's route table): a removed
/// cluster or policy waits for it, and it waits for in-flight cluster and route responses.
const CLUSTER_USER: ResourceType = ResourceType::ExtensionConfig;

impl StreamState {
    /// A new stream that will serve `snapshot` (possibly the empty, not-yet-built one).
    pub fn new(snapshot: Arc<Snapshot>) -> StreamState {
        StreamState {
            snapshot,
            types: BTreeMap::new(),
            node_id: None,
            next_nonce: 1,
            sent_clusters: BTreeMap::new(),
            sent_routes: BTreeMap::new(),
            sent_endpoints: BTreeMap::new(),
            response_names: BTreeMap::new(),
            keeps_response_names: false,
        }
    }

    /// A new stream that keeps the names of each response for [`StreamState::take_response_names`]
    /// (a delta stream names every resource it sends).
    pub fn with_response_names(snapshot: Arc<Snapshot>) -> StreamState {
        StreamState { keeps_response_names: true, ..StreamState::new(snapshot) }
    }

    /// The names of the resources of the last response sent for `resource_type`, in its order,
    /// moved out (empty when taken already, or without [`StreamState::with_response_names`]).
    pub fn take_response_names(&mut self, resource_type: ResourceType) -> Vec<String> {
        self.response_names.remove(&resource_type).unwrap_or_default()
    }

    /// The snapshot being served.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The node id from the first request, once known.
    pub fn node_id(&self) -> Option<&str> {
        self.node_id.as_deref()
    }

    /// The last version of `resource_type` Envoy ACKed on this stream.
    pub fn acked_version(&self, resource_type: ResourceType) -> Option<&str> {
        self.types.get(&resource_type).and_then(|t| t.acked_version.as_deref())
    }

    /// Handle one request from Envoy.
    pub fn on_request(&mut self, request: DiscoveryRequest) -> Step {
        let mut step = Step::default();
        if self.node_id.is_none() {
            if let Some(node) = &request.node {
                self.node_id = Some(node.id.clone());
                step.events.push(StreamEvent::NodeIdentified { node_id: node.id.clone(), cluster: node.cluster.clone() });
            }
        }
        let Some(resource_type) = ResourceType::from_type_url(&request.type_url) else {
            step.events.push(StreamEvent::UnknownType { type_url: request.type_url });
            return step;
        };
        let names: BTreeSet<String> =
            if resource_type.is_wildcard() { BTreeSet::new() } else { request.resource_names.into_iter().collect() };
        let state = self.types.entry(resource_type).or_default();

        if request.response_nonce.is_empty() {
            // (Re)subscription: answer with what we have, whatever Envoy says it has.
            state.subscribed = true;
            state.names = names;
            state.awaiting_answer = false;
            if let Some(response) = self.respond(resource_type, true) {
                step.responses.push(response);
            }
            step.responses.extend(self.visit_all());
            return step;
        }

        let Some(sent) = state.sent.clone().filter(|sent| sent.nonce == request.response_nonce) else {
            step.events.push(StreamEvent::StaleNonce { resource_type, nonce: request.response_nonce });
            return step;
        };
        state.awaiting_answer = false;
        state.subscribed = true;
        state.names = names;
        match request.error_detail {
            Some(status) => {
                let resends = state.rejected.as_ref().filter(|r| r.version == sent.version).map_or(0, |r| r.resends);
                state.rejected = Some(Rejected { version: sent.version.clone(), resends });
                if resource_type == ResourceType::Endpoint {
                    self.sent_endpoints.clear(); // what Envoy kept is not known: send them all next time
                }
                step.events.push(StreamEvent::Nacked {
                    resource_type,
                    rejected_version: sent.version,
                    last_accepted_version: request.version_info,
                    error_detail: status.message,
                });
            }
            None => {
                state.rejected = None;
                state.acked_version = Some(request.version_info.clone());
                step.events.push(StreamEvent::Acked { resource_type, version: request.version_info });
            }
        }
        if let Some(response) = self.respond(resource_type, false) {
            step.responses.push(response);
        }
        step.responses.extend(self.visit_all());
        step
    }

    /// A new snapshot was published: send every subscribed type whose content (for the names
    /// requested) changed and that is not awaiting an answer, in make-before-break order.
    pub fn on_snapshot(&mut self, snapshot: Arc<Snapshot>) -> Step {
        self.snapshot = snapshot;
        Step { responses: self.visit_all(), events: Vec::new() }
    }

    /// How many times the rejected responses standing now were sent again (the fewest of any
    /// type), or `None` when no rejected response is the last one sent of its type and answered.
    /// The caller waits a backoff on this count before [`StreamState::resend_rejected`].
    pub fn rejected_resends(&self) -> Option<u32> {
        self.types.values().filter_map(TypeState::resendable).map(|r| r.resends).min()
    }

    /// Send again every rejected response that is still the last one sent of its type, in
    /// make-before-break order. Envoy answers each with an ACK (the rejection passed) or a NACK.
    pub fn resend_rejected(&mut self) -> Step {
        for state in self.types.values_mut() {
            if state.resendable().is_some() {
                if let Some(rejected) = state.rejected.as_mut() {
                    rejected.resends = rejected.resends.saturating_add(1);
                    state.resend = Some(rejected.resends);
                }
                state.sent = None; // nothing of it counts as sent: `respond` sends it again
            }
        }
        Step { responses: self.visit_all(), events: Vec::new() }
    }

    /// Whatever is due, type by type in push order.
    fn visit_all(&mut self) -> Vec<DiscoveryResponse> {
        ResourceType::ALL.into_iter().filter_map(|t| self.respond(t, false)).collect()
    }

    /// Requested names for `resource_type` (`None` for wildcard types).
    fn requested(&self, resource_type: ResourceType) -> Option<&BTreeSet<String>> {
        let state = self.types.get(&resource_type)?;
        (!resource_type.is_wildcard()).then_some(&state.names)
    }

    /// Envoy has ACKed the current content of `resource_type` (or does not use the type).
    fn settled(&self, resource_type: ResourceType) -> bool {
        let Some(state) = self.types.get(&resource_type).filter(|s| s.subscribed) else { return true };
        let current = self.snapshot.selection_version(resource_type, self.requested(resource_type));
        !state.awaiting_answer && (current.is_none() || state.acked_version == current)
    }

    fn in_flight(&self, resource_type: ResourceType) -> bool {
        self.types.get(&resource_type).is_some_and(|s| s.awaiting_answer)
    }

    /// Clusters Envoy was sent that the snapshot dropped, kept while a cluster user is unsettled.
    fn retained_clusters(&self, selection: &Selection) -> BTreeMap<String, Any> {
        if self.settled(CLUSTER_USER) {
            return BTreeMap::new();
        }
        self.sent_clusters
            .iter()
            .filter(|(name, _)| selection.names.binary_search(name).is_err())
            .map(|(name, resource)| (name.clone(), resource.clone()))
            .collect()
    }

    /// Route configurations carrying, besides their own policies, those of the configurations
    /// sent before that they dropped, while the route table is unsettled.
    fn retained_routes(&self, selection: Selection) -> Selection {
        if self.settled(CLUSTER_USER) || self.sent_routes.is_empty() {
            return selection;
        }
        let merged: Vec<Any> = selection
            .names
            .iter()
            .zip(&selection.resources)
            .map(|(name, new)| {
                self.sent_routes.get(name).and_then(|old| route_config::retain_entries(new, old)).unwrap_or_else(|| new.clone())
            })
            .collect();
        if merged == selection.resources {
            return selection;
        }
        selection.with_resources(merged)
    }

    /// The load assignments Envoy asks for, holding only those it was not sent yet as they are
    /// (all of them when `force`d or after [`StreamState::sent_endpoints`] was cleared).
    fn endpoint_selection(&self, force: bool) -> Option<Selection> {
        let sent = &self.sent_endpoints;
        let unsent = |name: &str, hash: &[u8; 32]| force || sent.get(name) != Some(hash);
        self.snapshot.select_where(ResourceType::Endpoint, self.requested(ResourceType::Endpoint), unsent)
    }

    /// Record the load assignments of `selection` as sent (after forgetting all when `force`d);
    /// only what Envoy still asks for and still exists is remembered.
    fn record_endpoints(&mut self, selection: &Selection, force: bool) {
        if force {
            self.sent_endpoints.clear();
        }
        let snapshot = Arc::clone(&self.snapshot);
        let hash = |name: &str| snapshot.resource_hash(ResourceType::Endpoint, name);
        let requested = self.requested(ResourceType::Endpoint).cloned();
        self.sent_endpoints
            .retain(|name, _| requested.as_ref().is_none_or(|names| names.contains(name)) && hash(name).is_some());
        for name in &selection.names {
            if let Some(hash) = hash(name) {
                self.sent_endpoints.insert(name.clone(), hash);
            }
        }
    }

    /// Whether Envoy was last sent what [`StreamState::respond`] would send for `resource_type`
    /// now, known without building it: the same names at the snapshot's version of them. At
    /// 10 000 Ingresses, building the clusters and load assignments of each snapshot only to find
    /// them unchanged took 6 of the 9 ms between a route table's snapshot and its push.
    fn unchanged(&self, resource_type: ResourceType) -> bool {
        let Some(sent) = self.types.get(&resource_type).and_then(|state| state.sent.as_ref()) else { return false };
        let requested = self.requested(resource_type);
        let same_names = requested.map_or(sent.names.is_empty(), |names| *names == sent.names);
        same_names && !self.may_retain(resource_type) && self.snapshot.selection_version(resource_type, requested).is_some_and(|v| v == sent.version)
    }

    /// Whether [`StreamState::respond`] may add retained resources to the snapshot's selection
    /// of `resource_type` (which changes its version): clusters Envoy was sent that the snapshot
    /// lacks, or route configurations, while the route table is unsettled.
    fn may_retain(&self, resource_type: ResourceType) -> bool {
        match resource_type {
            ResourceType::Cluster => !self.settled(CLUSTER_USER) && !self.snapshot.holds_all(ResourceType::Cluster, self.sent_clusters.keys()),
            ResourceType::Route => !self.settled(CLUSTER_USER),
            _ => false,
        }
    }

    /// The response to send for `resource_type` now, if any. `force`: send even if Envoy already
    /// has this content (a fresh subscription).
    fn respond(&mut self, resource_type: ResourceType, force: bool) -> Option<DiscoveryResponse> {
        let state = self.types.get(&resource_type)?;
        if !state.subscribed || (state.awaiting_answer && !force) {
            return None;
        }
        if !force
            && resource_type == CLUSTER_USER
            && (self.in_flight(ResourceType::Cluster) || self.in_flight(ResourceType::Route))
        {
            return None; // sent once Envoy has answered for the clusters and policies it will use
        }
        if !force && self.unchanged(resource_type) {
            return None;
        }
        let mut selection = match resource_type {
            ResourceType::Endpoint => self.endpoint_selection(force)?,
            _ => self.snapshot.select(resource_type, self.requested(resource_type))?,
        };
        if resource_type == ResourceType::Cluster {
            let retained = self.retained_clusters(&selection);
            selection = selection.retaining(&retained);
        }
        if resource_type == ResourceType::Route {
            selection = self.retained_routes(selection);
        }
        let requested = self.requested(resource_type).cloned().unwrap_or_default();
        let state = self.types.get(&resource_type)?;
        if !force {
            if let Some(sent) = &state.sent {
                if sent.version == selection.version && sent.names == requested {
                    return None;
                }
            }
        }
        if resource_type == ResourceType::Endpoint {
            self.record_endpoints(&selection, force);
        }
        let state = self.types.get_mut(&resource_type)?;
        if let Some(attempt) = state.resend.take() {
            // The same version: Envoy's ACK of the variant is an ACK of this content.
            selection.resources = selection.resources.into_iter().map(|r| resend_variant(resource_type, r, attempt)).collect();
        }
        let nonce = self.next_nonce.to_string();
        self.next_nonce += 1;
        state.sent = Some(Sent { version: selection.version.clone(), nonce: nonce.clone(), names: requested });
        state.awaiting_answer = true;
        if resource_type == ResourceType::Cluster {
            self.sent_clusters = selection.names.iter().cloned().zip(selection.resources.iter().cloned()).collect();
            self.sent_endpoints.clear(); // a cluster Envoy re-creates asks for its endpoints again
        }
        if resource_type == ResourceType::Route {
            self.sent_routes = selection.names.iter().cloned().zip(selection.resources.iter().cloned()).collect();
        }
        if self.keeps_response_names {
            self.response_names.insert(resource_type, selection.names);
        }
        Some(DiscoveryResponse {
            version_info: selection.version,
            resources: selection.resources,
            type_url: resource_type.type_url().to_string(),
            nonce,
            control_plane: Some(ControlPlane { identifier: CONTROL_PLANE_ID.to_string() }),
            ..Default::default()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::google::protobuf::Any;
    use envoy_types::pb::google::rpc::Status;

    use super::super::resources::NamedResource;
    use super::*;

    const NODE: &str = "wasm-ingress-envoy";

    fn snapshot(entries: &[(ResourceType, &str, &str)]) -> Arc<Snapshot> {
        Snapshot::of_contents(entries)
    }

    fn base() -> Arc<Snapshot> {
        snapshot(&[
            (ResourceType::Listener, "http", "L1"),
            (ResourceType::Cluster, "default/web/80", "C1"),
            (ResourceType::Cluster, "default/api/80", "C2"),
            (ResourceType::Endpoint, "default/web/80", "E1"),
            (ResourceType::Endpoint, "default/api/80", "E2"),
            (ResourceType::ExtensionConfig, "wasm-ingress.router", "T1"),
        ])
    }

    /// Envoy's first request of a type on a stream: node only on the very first message,
    /// empty version and nonce.
    fn initial(t: ResourceType, names: &[&str], with_node: bool) -> DiscoveryRequest {
        DiscoveryRequest {
            node: with_node.then(|| Node { id: NODE.into(), cluster: "wasm-ingress".into(), ..Default::default() }),
            type_url: t.type_url().into(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        }
    }

    fn ack(response: &DiscoveryResponse, names: &[&str]) -> DiscoveryRequest {
        DiscoveryRequest {
            version_info: response.version_info.clone(),
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        }
    }

    /// A NACK as Envoy sends it: the *last accepted* version, the rejected response's nonce and
    /// an error_detail.
    fn nack(response: &DiscoveryResponse, last_accepted: &str, names: &[&str], message: &str) -> DiscoveryRequest {
        DiscoveryRequest {
            version_info: last_accepted.into(),
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            error_detail: Some(Status { code: 13, message: message.into(), details: vec![] }),
            ..Default::default()
        }
    }

    fn contents(response: &DiscoveryResponse) -> Vec<String> {
        response.resources.iter().map(|r| String::from_utf8(r.value.clone()).unwrap()).collect()
    }

    fn only(step: Step) -> DiscoveryResponse {
        assert_eq!(step.responses.len(), 1, "{:?}", step.responses);
        step.responses.into_iter().next().unwrap()
    }

    #[test]
    fn initial_request_gets_every_cluster_and_identifies_the_node() {
        let mut stream = StreamState::new(base());
        let step = stream.on_request(initial(ResourceType::Cluster, &[], true));
        assert_eq!(step.events, vec![StreamEvent::NodeIdentified { node_id: NODE.into(), cluster: "wasm-ingress".into() }]);
        let response = only(step);
        assert_eq!(response.type_url, ResourceType::Cluster.type_url());
        assert_eq!(contents(&response), vec!["C2", "C1"], "sorted by name: default/api before default/web");
        assert_eq!(Some(response.version_info.as_str()), base().version(ResourceType::Cluster));
        assert!(!response.nonce.is_empty());
        assert_eq!(stream.node_id(), Some(NODE));
    }

    #[test]
    fn wildcard_types_ignore_resource_names() {
        let mut stream = StreamState::new(base());
        let response = only(stream.on_request(initial(ResourceType::Listener, &["*"], true)));
        assert_eq!(contents(&response), vec!["L1"]);
    }

    #[test]
    fn ack_records_the_version_and_sends_nothing_more() {
        let mut stream = StreamState::new(base());
        let response = only(stream.on_request(initial(ResourceType::Cluster, &[], true)));
        let step = stream.on_request(ack(&response, &[]));
        assert!(step.responses.is_empty());
        assert_eq!(
            step.events,
            vec![StreamEvent::Acked { resource_type: ResourceType::Cluster, version: response.version_info.clone() }]
        );
        assert_eq!(stream.acked_version(ResourceType::Cluster), Some(response.version_info.as_str()));
    }

    #[test]
    fn endpoints_are_sent_only_for_requested_names() {
        let mut stream = StreamState::new(base());
        let response = only(stream.on_request(initial(ResourceType::Endpoint, &["default/web/80"], true)));
        assert_eq!(contents(&response), vec!["E1"]);
        // Envoy adds a cluster: the ACK carries the new names, so the answer is a new response
        // (with what Envoy lacks: web's assignment did not change).
        let response = only(stream.on_request(ack(&response, &["default/web/80", "default/api/80"])));
        assert_eq!(contents(&response), vec!["E2"]);
        // Names removed: the answer is versioned over what is still asked for, and Envoy has it.
        let response = only(stream.on_request(ack(&response, &["default/api/80"])));
        assert_eq!(contents(&response), Vec::<String>::new());
        assert_eq!(Some(response.version_info.clone()), base().selection_version(ResourceType::Endpoint, Some(&BTreeSet::from(["default/api/80".to_string()]))));
        assert!(stream.on_request(ack(&response, &["default/api/80"])).responses.is_empty());
    }

    #[test]
    fn endpoint_responses_carry_what_changed_and_everything_after_clusters_or_a_nack() {
        let names = ["default/web/80", "default/api/80"];
        let with = |web: &str, api: &str, web_cluster: &str| {
            snapshot(&[
                (ResourceType::Cluster, "default/web/80", web_cluster),
                (ResourceType::Cluster, "default/api/80", "C2"),
                (ResourceType::Endpoint, "default/web/80", web),
                (ResourceType::Endpoint, "default/api/80", api),
            ])
        };
        let mut stream = StreamState::new(with("E1", "E2", "C1"));
        let clusters = only(stream.on_request(initial(ResourceType::Cluster, &[], true)));
        stream.on_request(ack(&clusters, &[]));
        let first = only(stream.on_request(initial(ResourceType::Endpoint, &names, false)));
        assert_eq!(contents(&first), vec!["E2", "E1"], "a subscription gets them all");
        stream.on_request(ack(&first, &names));

        // One endpoint changes: only its assignment travels, under the whole selection's version.
        let next = with("E1-new", "E2", "C1");
        let change = only(stream.on_snapshot(Arc::clone(&next)));
        assert_eq!(contents(&change), vec!["E1-new"]);
        assert_eq!(Some(change.version_info.clone()), next.selection_version(ResourceType::Endpoint, Some(&names.iter().map(|n| n.to_string()).collect())));
        stream.on_request(ack(&change, &names));

        // Envoy refuses one: what it kept is not known, so the next response has them all.
        let refused = only(stream.on_snapshot(with("E1-new", "E2-bad", "C1")));
        assert_eq!(contents(&refused), vec!["E2-bad"]);
        stream.on_request(nack(&refused, &change.version_info, &names, "bad endpoint"));
        let after_nack = only(stream.on_snapshot(with("E1-new", "E2-fixed", "C1")));
        assert_eq!(contents(&after_nack), vec!["E2-fixed", "E1-new"]);
        stream.on_request(ack(&after_nack, &names));

        // A cluster response: a cluster Envoy re-creates asks again, so the next one has them all.
        let step = stream.on_snapshot(with("E1-new", "E2-fixed", "C1-new"));
        let clusters = only(step);
        assert_eq!(clusters.type_url, ResourceType::Cluster.type_url());
        assert!(stream.on_request(ack(&clusters, &[])).responses.is_empty());
        let after_clusters = only(stream.on_snapshot(with("E1-new", "E2-third", "C1-new")));
        assert_eq!(contents(&after_clusters), vec!["E2-third", "E1-new"]);
    }

    #[test]
    fn nack_keeps_the_last_accepted_version_and_does_not_resend_the_same_content() {
        let mut stream = StreamState::new(base());
        let first = only(stream.on_request(initial(ResourceType::ExtensionConfig, &["wasm-ingress.router"], true)));
        stream.on_request(ack(&first, &["wasm-ingress.router"]));
        // A new table Envoy refuses.
        let bad = snapshot(&[(ResourceType::ExtensionConfig, "wasm-ingress.router", "T-bad")]);
        let pushed = only(stream.on_snapshot(bad));
        assert_eq!(contents(&pushed), vec!["T-bad"]);
        let step = stream.on_request(nack(&pushed, &first.version_info, &["wasm-ingress.router"], "Unable to create Wasm HTTP filter"));
        assert!(step.responses.is_empty(), "resending refused content would only be refused again");
        assert_eq!(
            step.events,
            vec![StreamEvent::Nacked {
                resource_type: ResourceType::ExtensionConfig,
                rejected_version: pushed.version_info.clone(),
                last_accepted_version: first.version_info.clone(),
                error_detail: "Unable to create Wasm HTTP filter".into(),
            }]
        );
        assert_eq!(stream.acked_version(ResourceType::ExtensionConfig), Some(first.version_info.as_str()));
        // A fixed table is sent.
        let fixed = snapshot(&[(ResourceType::ExtensionConfig, "wasm-ingress.router", "T2")]);
        let response = only(stream.on_snapshot(fixed));
        assert_eq!(contents(&response), vec!["T2"]);
    }

    #[test]
    fn a_rejected_response_is_sent_again_on_request_until_envoy_accepts_it() {
        const TABLE: &str = "wasm-ingress.router";
        let mut stream = StreamState::new(base());
        assert_eq!(stream.rejected_resends(), None);
        let first = only(stream.on_request(initial(ResourceType::ExtensionConfig, &[TABLE], true)));
        let step = stream.on_request(nack(&first, "", &[TABLE], "Unable to create Wasm plugin"));
        assert!(step.responses.is_empty());
        assert_eq!(stream.rejected_resends(), Some(0), "a rejection stands, not sent again yet");

        // Sent again: the same content under a new nonce; nothing is due while it awaits an answer.
        let again = only(stream.resend_rejected());
        assert_eq!((contents(&again), &again.version_info), (vec!["T1".to_string()], &first.version_info));
        assert_ne!(again.nonce, first.nonce);
        assert_eq!(stream.rejected_resends(), None, "awaiting Envoy's answer");
        assert!(stream.resend_rejected().responses.is_empty());

        // Refused again: the count goes on. A late answer to the first response changes nothing.
        stream.on_request(nack(&again, "", &[TABLE], "Unable to create Wasm plugin"));
        assert_eq!(stream.rejected_resends(), Some(1));
        assert!(matches!(stream.on_request(ack(&first, &[TABLE])).events[..], [StreamEvent::StaleNonce { .. }]));
        let third = only(stream.resend_rejected());
        assert_eq!(third.version_info, first.version_info);

        // Accepted: the rejection is gone, nothing more is sent.
        stream.on_request(ack(&third, &[TABLE]));
        assert_eq!(stream.acked_version(ResourceType::ExtensionConfig), Some(first.version_info.as_str()));
        assert_eq!(stream.rejected_resends(), None);
        assert!(stream.resend_rejected().responses.is_empty());
    }

    #[test]
    fn a_rejection_overtaken_by_newer_content_or_waiting_for_clusters_is_not_resent_early() {
        const TABLE: &str = "wasm-ingress.router";
        let mut stream = StreamState::new(base());
        let clusters = only(stream.on_request(initial(ResourceType::Cluster, &[], true)));
        stream.on_request(ack(&clusters, &[]));
        let table = only(stream.on_request(initial(ResourceType::ExtensionConfig, &[TABLE], false)));
        stream.on_request(nack(&table, "", &[TABLE], "bad table"));

        // A new snapshot sends newer content at once: the old rejection is no longer resendable.
        let world = |web: &str, table: &str| {
            snapshot(&[
                (ResourceType::Cluster, "default/web/80", web),
                (ResourceType::Cluster, "default/api/80", "C2"),
                (ResourceType::ExtensionConfig, TABLE, table),
            ])
        };
        let newer = world("C1", "T2");
        let pushed = only(stream.on_snapshot(newer));
        assert_eq!(contents(&pushed), vec!["T2"]);
        stream.on_request(nack(&pushed, "", &[TABLE], "bad table"));
        assert_eq!(stream.rejected_resends(), Some(0), "another version: its count starts again");

        // A cluster response in flight: the table is sent again only once the clusters are answered.
        let next = world("C1-new", "T2");
        let cluster_push = only(stream.on_snapshot(next));
        assert_eq!(cluster_push.type_url, ResourceType::Cluster.type_url());
        assert!(stream.resend_rejected().responses.is_empty(), "the table waits for the clusters it may name");
        let after = only(stream.on_request(ack(&cluster_push, &[])));
        assert_eq!((after.type_url.as_str(), contents(&after)), (ResourceType::ExtensionConfig.type_url(), vec!["T2".to_string()]));
    }

    #[test]
    fn stale_nonces_are_ignored() {
        let mut stream = StreamState::new(base());
        let first = only(stream.on_request(initial(ResourceType::Cluster, &[], true)));
        stream.on_request(ack(&first, &[]));
        let changed = snapshot(&[(ResourceType::Cluster, "default/web/80", "C1-new")]);
        let second = only(stream.on_snapshot(changed));
        // A late NACK of the first response (old nonce) must not count against the second one.
        let step = stream.on_request(nack(&first, "", &[], "late"));
        assert!(step.responses.is_empty());
        assert_eq!(step.events, vec![StreamEvent::StaleNonce { resource_type: ResourceType::Cluster, nonce: first.nonce.clone() }]);
        let step = stream.on_request(ack(&second, &[]));
        assert_eq!(step.events, vec![StreamEvent::Acked { resource_type: ResourceType::Cluster, version: second.version_info }]);
    }

    #[test]
    fn identical_snapshot_sends_nothing() {
        let mut stream = StreamState::new(base());
        let response = only(stream.on_request(initial(ResourceType::Cluster, &[], true)));
        stream.on_request(ack(&response, &[]));
        assert!(stream.on_snapshot(base()).responses.is_empty());
    }

    #[test]
    fn one_response_per_type_awaits_an_answer_and_the_latest_follows_it() {
        let mut stream = StreamState::new(base());
        let first = only(stream.on_request(initial(ResourceType::Cluster, &[], true)));
        // Two rebuilds before Envoy answers: nothing is sent yet.
        assert!(stream.on_snapshot(snapshot(&[(ResourceType::Cluster, "a", "v2")])).responses.is_empty());
        assert!(stream.on_snapshot(snapshot(&[(ResourceType::Cluster, "a", "v3")])).responses.is_empty());
        // The ACK of the first brings the latest.
        let latest = only(stream.on_request(ack(&first, &[])));
        assert_eq!(contents(&latest), vec!["v3"]);
    }

    #[test]
    fn nothing_is_sent_before_the_first_snapshot_is_built() {
        let mut stream = StreamState::new(Arc::new(Snapshot::empty()));
        assert!(stream.on_request(initial(ResourceType::Cluster, &[], true)).responses.is_empty());
        assert!(stream.on_request(initial(ResourceType::Listener, &[], false)).responses.is_empty());
        let step = stream.on_snapshot(base());
        let types: Vec<&str> = step.responses.iter().map(|r| r.type_url.as_str()).collect();
        assert_eq!(types, vec![ResourceType::Cluster.type_url(), ResourceType::Listener.type_url()]);
    }

    #[test]
    fn snapshot_pushes_follow_make_before_break_order() {
        let mut stream = StreamState::new(base());
        // Envoy subscribes in its own order; all ACKed.
        for (t, names) in [
            (ResourceType::Listener, vec![]),
            (ResourceType::ExtensionConfig, vec!["wasm-ingress.router"]),
            (ResourceType::Endpoint, vec!["default/web/80"]),
            (ResourceType::Cluster, vec![]),
            (ResourceType::Secret, vec!["default/tls"]),
        ] {
            let step = stream.on_request(initial(t, &names, t == ResourceType::Listener));
            for response in step.responses {
                stream.on_request(ack(&response, &names));
            }
        }
        let everything_new = snapshot(&[
            (ResourceType::Listener, "http", "L2"),
            (ResourceType::Cluster, "default/web/80", "C9"),
            (ResourceType::Endpoint, "default/web/80", "E9"),
            (ResourceType::Secret, "default/tls", "S9"),
            (ResourceType::ExtensionConfig, "wasm-ingress.router", "T9"),
        ]);
        let step = stream.on_snapshot(everything_new);
        let order: Vec<ResourceType> =
            step.responses.iter().map(|r| ResourceType::from_type_url(&r.type_url).unwrap()).collect();
        // The route table waits for the cluster response to be answered.
        assert_eq!(order, ResourceType::ALL[..4].to_vec());
        let clusters = step.responses.into_iter().next().unwrap();
        let table = only(stream.on_request(ack(&clusters, &[])));
        assert_eq!(contents(&table), vec!["T9"]);
    }

    /// Clusters C1 (web) and C2 (api), a table T1 using both, all ACKed.
    fn settled_stream() -> StreamState {
        let mut stream = StreamState::new(base());
        let clusters = only(stream.on_request(initial(ResourceType::Cluster, &[], true)));
        stream.on_request(ack(&clusters, &[]));
        let table = only(stream.on_request(initial(ResourceType::ExtensionConfig, &["wasm-ingress.router"], false)));
        stream.on_request(ack(&table, &["wasm-ingress.router"]));
        stream
    }

    fn without_api(table: &str) -> Arc<Snapshot> {
        snapshot(&[
            (ResourceType::Cluster, "default/web/80", "C1"),
            (ResourceType::ExtensionConfig, "wasm-ingress.router", table),
        ])
    }

    #[test]
    fn a_removed_cluster_outlives_the_table_that_routes_to_it() {
        let mut stream = settled_stream();
        // The api Ingress is deleted: cluster and route go. Envoy keeps api (the cluster response
        // would be what it has: nothing is sent) and gets the new table first.
        let table = only(stream.on_snapshot(without_api("T2")));
        assert_eq!(contents(&table), vec!["T2"]);
        // Envoy applied the table that no longer routes to api: now api goes.
        let trimmed = only(stream.on_request(ack(&table, &["wasm-ingress.router"])));
        assert_eq!(trimmed.type_url, ResourceType::Cluster.type_url());
        assert_eq!(contents(&trimmed), vec!["C1"]);
        assert_eq!(Some(trimmed.version_info.as_str()), without_api("T2").version(ResourceType::Cluster));
        assert!(stream.on_request(ack(&trimmed, &[])).responses.is_empty());
    }

    #[test]
    fn a_changed_cluster_is_sent_with_the_removed_one_kept() {
        let mut stream = settled_stream();
        let changed = snapshot(&[
            (ResourceType::Cluster, "default/web/80", "C1-new"),
            (ResourceType::ExtensionConfig, "wasm-ingress.router", "T2"),
        ]);
        let clusters = only(stream.on_snapshot(changed));
        assert_eq!(contents(&clusters), vec!["C2", "C1-new"], "api kept while the old table may still route to it");
        let table = only(stream.on_request(ack(&clusters, &[])));
        assert_eq!(contents(&table), vec!["T2"]);
        let trimmed = only(stream.on_request(ack(&table, &["wasm-ingress.router"])));
        assert_eq!(contents(&trimmed), vec!["C1-new"]);
    }

    #[test]
    fn after_a_nack_the_last_accepted_table_keeps_its_clusters() {
        let mut stream = settled_stream();
        let accepted = stream.acked_version(ResourceType::ExtensionConfig).unwrap().to_string();
        let table = only(stream.on_snapshot(without_api("T-bad")));
        let step = stream.on_request(nack(&table, &accepted, &["wasm-ingress.router"], "bad table"));
        assert!(step.responses.is_empty(), "api stays: T1, which Envoy still runs, routes to it");
        // A good table follows: once it is ACKed, api goes.
        let table = only(stream.on_snapshot(without_api("T3")));
        let trimmed = only(stream.on_request(ack(&table, &["wasm-ingress.router"])));
        assert_eq!(contents(&trimmed), vec!["C1"]);
    }

    #[test]
    fn a_new_cluster_is_known_before_the_table_names_it() {
        let mut stream = settled_stream();
        let grown = snapshot(&[
            (ResourceType::Cluster, "default/web/80", "C1"),
            (ResourceType::Cluster, "default/api/80", "C2"),
            (ResourceType::Cluster, "default/new/80", "C3"),
            (ResourceType::ExtensionConfig, "wasm-ingress.router", "T-new"),
        ]);
        let clusters = only(stream.on_snapshot(grown));
        assert_eq!(clusters.type_url, ResourceType::Cluster.type_url());
        // A NACK of the clusters does not hold the table forever: it follows the answer.
        let table = only(stream.on_request(nack(&clusters, "", &[], "bad cluster")));
        assert_eq!(contents(&table), vec!["T-new"]);
    }

    #[test]
    fn resubscription_with_empty_nonce_is_answered_even_if_unchanged() {
        // Envoy reconnecting to a restarted control plane sends its old version with no nonce.
        let mut stream = StreamState::new(base());
        let mut request = initial(ResourceType::Cluster, &[], true);
        request.version_info = base().version(ResourceType::Cluster).unwrap().to_string();
        let response = only(stream.on_request(request));
        assert_eq!(contents(&response), vec!["C2", "C1"]);
    }

    #[test]
    fn unknown_types_are_reported_and_not_answered() {
        let mut stream = StreamState::new(base());
        let mut request = initial(ResourceType::Cluster, &[], true);
        request.type_url = "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration".into();
        let step = stream.on_request(request);
        assert!(step.responses.is_empty());
        assert!(step.events.contains(&StreamEvent::UnknownType {
            type_url: "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration".into()
        }));
    }

    #[test]
    fn nonces_are_unique_across_types() {
        let mut stream = StreamState::new(base());
        let a = only(stream.on_request(initial(ResourceType::Cluster, &[], true)));
        let b = only(stream.on_request(initial(ResourceType::Listener, &[], false)));
        assert_ne!(a.nonce, b.nonce);
        // An ACK carrying the listener nonce on the cluster type is stale for clusters.
        let mut wrong = ack(&b, &[]);
        wrong.type_url = ResourceType::Cluster.type_url().into();
        assert!(matches!(stream.on_request(wrong).events.as_slice(), [StreamEvent::StaleNonce { .. }]));
    }

    /// A route configuration `http` whose policy map has `keys`, packed as `translate` packs it.
    fn routes(keys: &[&str]) -> Any {
        use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
        use envoy_types::pb::xds::core::v3::TypedExtensionConfig;
        use envoy_types::pb::xds::r#type::matcher::v3::matcher::matcher_tree::{MatchMap, TreeType};
        use envoy_types::pb::xds::r#type::matcher::v3::matcher::{on_match, MatcherTree, MatcherType, OnMatch};
        use envoy_types::pb::xds::r#type::matcher::v3::Matcher;
        let map = keys
            .iter()
            .map(|k| {
                let action = TypedExtensionConfig { name: k.to_string(), typed_config: None };
                (k.to_string(), OnMatch { on_match: Some(on_match::OnMatch::Action(action)), keep_matching: false })
            })
            .collect();
        let tree = MatcherTree { input: None, tree_type: Some(TreeType::ExactMatchMap(MatchMap { map })) };
        route_config::pack(&RouteConfiguration {
            name: "http".into(),
            virtual_hosts: vec![VirtualHost {
                name: "wasm-ingress".into(),
                matcher: Some(Matcher { matcher_type: Some(MatcherType::MatcherTree(tree)), on_no_match: None }),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn with_routes(route_keys: &[&str], table: &str) -> Arc<Snapshot> {
        let mut by_type: BTreeMap<ResourceType, Vec<NamedResource>> = BTreeMap::new();
        by_type.insert(ResourceType::Route, vec![NamedResource { name: "http".into(), resource: routes(route_keys) }]);
        by_type.insert(
            ResourceType::ExtensionConfig,
            vec![NamedResource {
                name: "wasm-ingress.router".into(),
                resource: Any { type_url: ResourceType::ExtensionConfig.type_url().into(), value: table.as_bytes().to_vec() },
            }],
        );
        Arc::new(Snapshot::new(by_type))
    }

    fn policy_keys(response: &DiscoveryResponse) -> Vec<String> {
        use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
        use envoy_types::pb::xds::r#type::matcher::v3::matcher::matcher_tree::TreeType;
        use envoy_types::pb::xds::r#type::matcher::v3::matcher::MatcherType;
        use prost::Message;
        assert_eq!(response.type_url, ResourceType::Route.type_url(), "{response:?}");
        let config = RouteConfiguration::decode(response.resources[0].value.as_slice()).unwrap();
        let matcher = config.virtual_hosts[0].matcher.clone().unwrap();
        let Some(MatcherType::MatcherTree(tree)) = matcher.matcher_type else { panic!() };
        let Some(TreeType::ExactMatchMap(map)) = tree.tree_type else { panic!() };
        let mut keys: Vec<String> = map.map.into_keys().collect();
        keys.sort();
        keys
    }

    #[test]
    fn a_changed_policy_is_known_before_the_table_names_it_and_the_old_one_outlives_the_old_table() {
        let mut stream = StreamState::new(with_routes(&["default", "p-old"], "T1"));
        let first = only(stream.on_request(initial(ResourceType::Route, &["http"], true)));
        stream.on_request(ack(&first, &["http"]));
        let table = only(stream.on_request(initial(ResourceType::ExtensionConfig, &["wasm-ingress.router"], false)));
        stream.on_request(ack(&table, &["wasm-ingress.router"]));

        // A policy changes: its key changes. The routes go first, still holding the old key.
        let routes = only(stream.on_snapshot(with_routes(&["default", "p-new"], "T2")));
        assert_eq!(routes.type_url, ResourceType::Route.type_url());
        assert_eq!(policy_keys(&routes), vec!["default", "p-new", "p-old"]);
        // The table waits for Envoy's answer on the routes, then goes.
        let table = only(stream.on_request(ack(&routes, &["http"])));
        assert_eq!(contents(&table), vec!["T2"]);
        // Once Envoy runs the new table, the old key goes.
        let trimmed = only(stream.on_request(ack(&table, &["wasm-ingress.router"])));
        assert_eq!(policy_keys(&trimmed), vec!["default", "p-new"]);
        assert_eq!(Some(trimmed.version_info.as_str()), with_routes(&["default", "p-new"], "T2").version(ResourceType::Route));
        assert!(stream.on_request(ack(&trimmed, &["http"])).responses.is_empty());
    }

    #[test]
    fn after_a_nack_of_the_table_the_policies_it_names_stay() {
        let mut stream = StreamState::new(with_routes(&["default", "p-old"], "T1"));
        let first = only(stream.on_request(initial(ResourceType::Route, &["http"], true)));
        stream.on_request(ack(&first, &["http"]));
        let table = only(stream.on_request(initial(ResourceType::ExtensionConfig, &["wasm-ingress.router"], false)));
        stream.on_request(ack(&table, &["wasm-ingress.router"]));
        let accepted = stream.acked_version(ResourceType::ExtensionConfig).unwrap().to_string();

        // Dropping p-old changes nothing Envoy has yet (T1 still names it): only the table goes.
        let table = only(stream.on_snapshot(with_routes(&["default"], "T-bad")));
        assert_eq!(contents(&table), vec!["T-bad"]);
        assert!(stream.on_request(nack(&table, &accepted, &["wasm-ingress.router"], "bad table")).responses.is_empty());
        // Another change while T1 still runs: p-old is still kept.
        let routes = only(stream.on_snapshot(with_routes(&["default", "p-3"], "T3")));
        assert_eq!(policy_keys(&routes), vec!["default", "p-3", "p-old"]);
    }
}
