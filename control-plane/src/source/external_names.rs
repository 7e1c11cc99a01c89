//! ExternalName Services, resolved by the control plane. A stage between a source and `serve`'s
//! translation: it looks up the `externalName` of every ExternalName Service (the system resolver:
//! `/etc/hosts`, then DNS with the pod's search domains, as ingress-nginx's resolver does), again
//! every [`REFRESH`] (ingress-nginx's `resolver … valid=30s`), and hands translation the addresses
//! as EndpointSlices of the Service that carry addresses only (the port comes from the Service:
//! `EndpointQuery::port`). So an ExternalName backend is an ordinary EDS cluster:
//! `--refuse-local-endpoints` applies to what a name resolves to, an address change pushes EDS
//! alone, and Envoy never resolves a tenant's name itself (an Envoy DNS cluster pointed at
//! `localhost` would reach its own admin port).
//!
//! As ingress-nginx: `localhost` and loopback addresses written as the name are refused, and so
//! is anything that is neither an IP address nor a DNS-1123 subdomain (`localhost.`, which
//! ingress-nginx lets through, is refused too). A name that does not resolve leaves the Service
//! without endpoints: its paths answer 503 (as ingress-nginx's balancer, which drops a backend
//! without endpoints).
//!
//! [`merge`] is the pure core (state + lookups -> state with those slices, and diagnostics);
//! [`spawn`] is the shell that runs the lookups.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::model::{Diagnostic, ObjectRef, Severity};
use crate::source::files::SourceSnapshot;
use crate::state::{ObjectKey, ObjectKind};
use crate::translate::ingress::{local_address, SERVICE_NAME_LABEL};
use crate::translate::ingress::external_name;
pub use crate::translate::ingress::external_name::{target, Target};

/// How often every name is looked up again (ingress-nginx's `resolver … valid=30s`).
pub const REFRESH: Duration = Duration::from_secs(30);
/// How long one lookup may take before it counts as failed.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Lookups in flight at once (each holds a blocking thread: `getaddrinfo`).
const MAX_LOOKUPS_IN_FLIGHT: usize = 16;
/// Addresses kept per name.
const MAX_ADDRESSES: usize = 64;
/// The `managed-by` label of the EndpointSlices this stage makes.
pub const MANAGED_BY: &str = "wasm-ingress.dev/external-name";

/// How the stage treats what it finds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// `--refuse-local-endpoints`: loopback, link-local and metadata addresses are not used.
    pub refuse_local: bool,
    /// `--disable-svc-external-name`: nothing is looked up; every ExternalName Service is refused.
    pub disabled: bool,
}

/// The result of looking a name up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Sorted, without duplicates, at most [`MAX_ADDRESSES`].
    Addresses(Vec<IpAddr>),
    Failed(String),
}

/// The ExternalName Services of a state and what each asks for.
pub fn services(state: &crate::state::ClusterState) -> BTreeMap<&ObjectKey, Result<Target, String>> {
    state
        .services
        .iter()
        .filter_map(|(key, service)| Some((key, target(external_name::of(service)?))))
        .collect()
}

/// The names to look up in a state.
pub fn names(state: &crate::state::ClusterState, settings: Settings) -> BTreeSet<String> {
    if settings.disabled {
        return BTreeSet::new();
    }
    services(state)
        .into_values()
        .filter_map(|target| match target {
            Ok(Target::Name(name)) => Some(name),
            _ => None,
        })
        .collect()
}

/// What the last [`merge`] made, so an unchanged result is the very same objects (translation
/// compares EndpointSlices by identity: unchanged ones cost nothing).
#[derive(Debug, Default)]
pub struct Merged {
    slices: BTreeMap<ObjectKey, Arc<EndpointSlice>>,
    /// The source's EndpointSlices and the merged map made from them.
    last: Option<(crate::state::Objects<EndpointSlice>, crate::state::Objects<EndpointSlice>)>,
}

/// `source` with an EndpointSlice per address family for each ExternalName Service whose name
/// has usable addresses in `lookups`, and a diagnostic on each Service refused, unresolved or
/// left with no usable address (see [`Settings`]). A name not looked up yet has no slice and no
/// diagnostic.
pub fn merge(source: &SourceSnapshot, lookups: &BTreeMap<String, Lookup>, settings: Settings, merged: &mut Merged) -> SourceSnapshot {
    let mut diagnostics = source.diagnostics.clone();
    let mut slices = BTreeMap::new();
    for (key, target) in services(&source.state) {
        let target = match settings.disabled {
            true => Err("ExternalName Services are disabled (--disable-svc-external-name)".to_string()),
            false => target,
        };
        let mut report = |severity, message: String| {
            let object = ObjectRef { kind: ObjectKind::Service.as_str().into(), namespace: key.namespace.clone(), name: key.name.clone() };
            diagnostics.push(Diagnostic { object, field: "spec.externalName".into(), message, severity });
        };
        let addresses = match target {
            Err(why) => {
                report(Severity::Error, format!("{why}; its paths answer 503"));
                continue;
            }
            Ok(Target::Address(ip)) => vec![ip],
            Ok(Target::Name(name)) => match lookups.get(&name) {
                None => continue,
                Some(Lookup::Failed(why)) => {
                    report(Severity::Warning, format!("{name:?} does not resolve: {why}; its paths answer 503"));
                    continue;
                }
                Some(Lookup::Addresses(addresses)) => addresses.clone(),
            },
        };
        let (usable, refused): (Vec<IpAddr>, Vec<IpAddr>) = addresses.into_iter().partition(|ip| !settings.refuse_local || local_address(*ip).is_none());
        let refused: Vec<String> = refused.iter().map(ToString::to_string).collect();
        if usable.is_empty() {
            report(Severity::Error, format!("resolves only to local addresses ({}): Envoy never proxies there; its paths answer 503", refused.join(", ")));
        } else if !refused.is_empty() {
            report(Severity::Warning, format!("resolves to local addresses too ({}): skipped, Envoy never proxies there", refused.join(", ")));
        }
        for (family, v6) in [("IPv4", false), ("IPv6", true)] {
            let family_addresses: Vec<String> = usable.iter().filter(|ip| ip.is_ipv6() == v6).map(ToString::to_string).collect();
            if !family_addresses.is_empty() {
                let slice_key = ObjectKey::new(key.namespace.clone(), format!("{}.external-name.{}", key.name, family.to_ascii_lowercase()));
                let slice = slice(&slice_key, &key.name, family, family_addresses);
                let kept = merged.slices.get(&slice_key).filter(|old| ***old == slice).cloned();
                slices.insert(slice_key, kept.unwrap_or_else(|| Arc::new(slice)));
            }
        }
    }
    diagnostics.sort();
    let endpoint_slices = merged_slices(&source.state.endpoint_slices, slices, merged);
    SourceSnapshot { state: crate::state::ClusterState { endpoint_slices, ..source.state.clone() }, diagnostics }
}

/// The source's EndpointSlices plus `slices`: the last merged map again when neither changed.
fn merged_slices(
    from_source: &crate::state::Objects<EndpointSlice>,
    slices: BTreeMap<ObjectKey, Arc<EndpointSlice>>,
    merged: &mut Merged,
) -> crate::state::Objects<EndpointSlice> {
    let same_slices = slices.len() == merged.slices.len() && slices.iter().zip(&merged.slices).all(|((a, x), (b, y))| a == b && Arc::ptr_eq(x, y));
    if let Some((source, result)) = &merged.last {
        if same_slices && Arc::ptr_eq(source, from_source) {
            return Arc::clone(result);
        }
    }
    let mut all = (**from_source).clone();
    all.extend(slices.iter().map(|(key, slice)| (key.clone(), Arc::clone(slice))));
    let result = Arc::new(all);
    merged.slices = slices;
    merged.last = Some((Arc::clone(from_source), Arc::clone(&result)));
    result
}

fn slice(key: &ObjectKey, service: &str, family: &str, addresses: Vec<String>) -> EndpointSlice {
    let labels = BTreeMap::from([
        (SERVICE_NAME_LABEL.to_string(), service.to_string()),
        ("endpointslice.kubernetes.io/managed-by".to_string(), MANAGED_BY.to_string()),
    ]);
    EndpointSlice {
        metadata: ObjectMeta { name: Some(key.name.clone()), namespace: Some(key.namespace.clone()), labels: Some(labels), ..ObjectMeta::default() },
        address_type: family.to_string(),
        endpoints: Some(vec![Endpoint { addresses, conditions: Some(EndpointConditions { ready: Some(true), ..Default::default() }), ..Default::default() }]),
        ports: None,
    }
}

/// Look `name` up with the system resolver, within [`LOOKUP_TIMEOUT`].
async fn lookup(name: String) -> Lookup {
    match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((name.as_str(), 0))).await {
        Err(_) => Lookup::Failed(format!("no answer within {} s", LOOKUP_TIMEOUT.as_secs())),
        Ok(Err(error)) => Lookup::Failed(error.to_string()),
        Ok(Ok(found)) => {
            let addresses: BTreeSet<IpAddr> = found.map(|address| address.ip()).collect();
            match addresses.is_empty() {
                true => Lookup::Failed("no addresses".into()),
                false => Lookup::Addresses(addresses.into_iter().take(MAX_ADDRESSES).collect()),
            }
        }
    }
}

/// The stage's state between snapshots: what was looked up, what is being looked up.
struct Stage {
    lookups: BTreeMap<String, Lookup>,
    in_flight: BTreeSet<String>,
    merged: Merged,
    settings: Settings,
    found: mpsc::UnboundedSender<(String, Lookup)>,
    permits: Arc<Semaphore>,
}

impl Stage {
    /// Look `name` up beside the stage, unless that is under way.
    fn start(&mut self, name: &str) {
        if self.in_flight.insert(name.to_string()) {
            let (found, permits, name) = (self.found.clone(), Arc::clone(&self.permits), name.to_string());
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                let result = lookup(name.clone()).await;
                let _ = found.send((name, result));
            });
        }
    }

    /// What to publish for `snapshot` (the very same one without ExternalName Services), after
    /// starting the lookups of names it has that were never looked up.
    fn output(&mut self, snapshot: &Arc<SourceSnapshot>) -> Arc<SourceSnapshot> {
        let wanted = names(&snapshot.state, self.settings);
        self.lookups.retain(|name, _| wanted.contains(name));
        let never_looked_up: Vec<&String> = wanted.iter().filter(|name| !self.lookups.contains_key(*name)).collect();
        for name in never_looked_up {
            self.start(name);
        }
        match services(&snapshot.state).is_empty() {
            true => Arc::clone(snapshot),
            false => Arc::new(merge(snapshot, &self.lookups, self.settings, &mut self.merged)),
        }
    }
}

/// Put the stage after a source: the snapshots `source` publishes, with the ExternalName
/// Services' addresses merged in (the very same snapshot when the state has no ExternalName
/// Service). Lookups run beside it, so a slow name never holds back another change; every name is
/// looked up again each [`REFRESH`], and a changed answer publishes again.
pub fn spawn(
    mut source: watch::Receiver<Option<Arc<SourceSnapshot>>>,
    settings: Settings,
) -> (watch::Receiver<Option<Arc<SourceSnapshot>>>, JoinHandle<()>) {
    let (sender, updates) = watch::channel(None);
    let task = tokio::spawn(async move {
        let (found, mut results) = mpsc::unbounded_channel::<(String, Lookup)>();
        let permits = Arc::new(Semaphore::new(MAX_LOOKUPS_IN_FLIGHT));
        let mut stage = Stage { lookups: BTreeMap::new(), in_flight: BTreeSet::new(), merged: Merged::default(), settings, found, permits };
        let mut refresh = tokio::time::interval_at(tokio::time::Instant::now() + REFRESH, REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut latest = source.borrow_and_update().clone();
        loop {
            if let Some(snapshot) = &latest {
                if sender.send(Some(stage.output(snapshot))).is_err() {
                    break;
                }
            }
            // Wait for something that changes the output.
            loop {
                tokio::select! {
                    changed = source.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        latest = source.borrow_and_update().clone();
                        break;
                    }
                    Some((name, result)) = results.recv() => {
                        stage.in_flight.remove(&name);
                        if stage.lookups.get(&name) != Some(&result) {
                            tracing::debug!(%name, ?result, "ExternalName looked up");
                            stage.lookups.insert(name, result);
                            break;
                        }
                    }
                    _ = refresh.tick() => {
                        for name in latest.as_ref().map(|snapshot| names(&snapshot.state, stage.settings)).unwrap_or_default() {
                            stage.start(&name);
                        }
                    }
                }
            }
        }
    });
    (updates, task)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
