//! Endpoints, a stage of their own: the ready addresses of a Service port, read from the Service's
//! EndpointSlices (matched by the `kubernetes.io/service-name` label and by port NAME, as
//! kube-proxy does), and [`reread`] + [`Reread::apply`], which apply an EndpointSlice-only change to
//! a finished translation without translating again.
//!
//! Translation reads endpoints only through [`SliceIndex::ready`], which records each Service port
//! it read and whether that port had ready endpoints ([`EndpointReads`]). Whether a port has any is
//! all routing depends on (without, a `default-backend` answers or the path answers 503); the
//! addresses only fill clusters. So when only EndpointSlices changed and no port read gained its
//! first or lost its last ready endpoint, routes, policies and listeners are exactly what they were:
//! [`reread`] recomputes the clusters' endpoints and the EndpointSlice diagnostics, and `serve`
//! pushes EDS alone. Otherwise it answers `None` and `serve` translates again.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use wasm_ingress_filter::cluster::ClusterName;

use crate::model::{Diagnostic, Endpoint, EndpointQuery, EndpointReads, ObjectRef, Severity, Translation};
use crate::state::{ObjectKey, ObjectKind};

use super::backends::{local_address, SERVICE_NAME_LABEL};
use super::Diagnostics;

/// The EndpointSlices by Service, and what was read from them.
pub(crate) struct SliceIndex<'s> {
    /// The EndpointSlices of each Service (`namespace/name` from the service-name label), built
    /// once per translation so resolving a backend does not scan every slice.
    by_service: BTreeMap<ObjectKey, Vec<(&'s ObjectKey, &'s EndpointSlice)>>,
    /// Skip loopback, link-local and metadata addresses (Kubernetes mode).
    refuse_local: bool,
    /// EndpointSlices already reported (bad addresses), so each is reported once.
    reported: BTreeSet<ObjectKey>,
    reads: EndpointReads,
}

impl<'s> SliceIndex<'s> {
    pub(crate) fn new(slices: impl IntoIterator<Item = (&'s ObjectKey, &'s Arc<EndpointSlice>)>, refuse_local: bool) -> SliceIndex<'s> {
        let mut by_service: BTreeMap<ObjectKey, Vec<_>> = BTreeMap::new();
        for (slice_key, slice) in slices {
            if let Some((namespace, service)) = service_of(slice_key, slice) {
                let service = ObjectKey::new(namespace.to_string(), service.to_string());
                by_service.entry(service).or_default().push((slice_key, slice.as_ref()));
            }
        }
        SliceIndex { by_service, refuse_local, reported: BTreeSet::new(), reads: EndpointReads::default() }
    }

    /// `cluster`'s endpoints are those of `query` (so [`reread`] can fill it again).
    pub(crate) fn fills(&mut self, cluster: &ClusterName, query: EndpointQuery) {
        self.reads.clusters.insert(cluster.clone(), query);
    }

    pub(crate) fn into_reads(self) -> EndpointReads {
        self.reads
    }

    /// Ready addresses of the Service's EndpointSlices for the port named `query.port_name`,
    /// sorted. Bad addresses are skipped with a diagnostic on their EndpointSlice (once each).
    pub(crate) fn ready(&mut self, query: &EndpointQuery, diagnostics: &mut Diagnostics) -> Vec<Endpoint> {
        let mut endpoints = BTreeSet::new();
        let slices = self.by_service.get(&query.service).map(Vec::as_slice).unwrap_or_default();
        for &(slice_key, slice) in slices {
            let Some((want_v6, slice_port)) = slice_family_and_port(slice, query) else { continue };
            for endpoint in slice.endpoints.iter().flatten() {
                // `ready` unset means ready (EndpointSlice API).
                if !endpoint.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true) {
                    continue;
                }
                for address in &endpoint.addresses {
                    match usable(address, want_v6, self.refuse_local) {
                        Ok(ip) => {
                            endpoints.insert(Endpoint { address: ip.to_string(), port: slice_port });
                        }
                        Err((severity, message)) => {
                            if self.reported.insert(slice_key.clone()) {
                                diagnostics.push(slice_ref(slice_key), "endpoints".into(), severity, message);
                            }
                        }
                    }
                }
            }
        }
        let endpoints: Vec<Endpoint> = endpoints.into_iter().collect();
        self.reads.queries.insert(query.clone(), !endpoints.is_empty());
        endpoints
    }
}

/// Whether the slice holds IPv6 addresses, and the port to reach them on: the query's own (an
/// ExternalName Service's), the slice's port of the query's port name, or else, for a slice that
/// names none of its ports (hand-made slices, or mirrored from Endpoints without port names, of
/// Services without a selector), the Service port's numeric `targetPort`, as ingress-nginx falls
/// back to it. ingress-nginx also falls back when the slice names its ports otherwise; not here,
/// where such a slice is one of a Service's per-port slices and its endpoints may not serve this
/// port. `None` for FQDN slices (not for Envoy EDS) and slices with no usable port.
fn slice_family_and_port(slice: &EndpointSlice, query: &EndpointQuery) -> Option<(bool, u16)> {
    let want_v6 = match slice.address_type.as_str() {
        "IPv4" => false,
        "IPv6" => true,
        _ => return None,
    };
    if let Some(port) = query.port {
        return Some((want_v6, port));
    }
    let named = slice
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref().unwrap_or_default() == query.port_name)
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0);
    let unnamed = slice.ports.iter().flatten().all(|p| p.name.as_deref().unwrap_or_default().is_empty());
    Some((want_v6, named.or(query.target_port.filter(|_| unnamed))?))
}

/// The address as an IP Envoy may proxy to, or the diagnostic that skips it.
fn usable(address: &str, want_v6: bool, refuse_local: bool) -> Result<IpAddr, (Severity, String)> {
    match address.parse::<IpAddr>() {
        Ok(ip) if ip.is_ipv6() == want_v6 => match local_address(ip).filter(|_| refuse_local) {
            Some(why) => Err((
                Severity::Error,
                format!("address {address:?} is {why}: Envoy never proxies there (it would reach the node or the cloud metadata service); skipped"),
            )),
            None => Ok(ip),
        },
        _ => Err((
            Severity::Warning,
            format!("address {address:?} is not an {} address; skipped", if want_v6 { "IPv6" } else { "IPv4" }),
        )),
    }
}

fn slice_ref(key: &ObjectKey) -> ObjectRef {
    ObjectRef { kind: ObjectKind::EndpointSlice.as_str().into(), namespace: key.namespace.clone(), name: key.name.clone() }
}

/// The endpoints of the Service ports a translation read whose EndpointSlices changed, read again.
#[derive(Debug)]
pub struct Reread {
    endpoints: BTreeMap<EndpointQuery, Vec<Endpoint>>,
    /// The EndpointSlices of those Services (before and after): their diagnostics are replaced.
    slices: BTreeSet<ObjectKey>,
    /// Their diagnostics, made again.
    diagnostics: Vec<Diagnostic>,
}

/// The Service ports of `reads` whose EndpointSlices differ between `before` (what the translation
/// was made from) and `after`, read again from `after`, if routing does not change with them:
/// `None` when one gained its first or lost its last ready endpoint (translate again). Slices are
/// compared by identity (sources share unchanged objects), so a re-parsed but equal slice only
/// costs its Service a reread. `refuse_local` must be the one the translation was made with.
pub fn reread(
    reads: &EndpointReads,
    before: &BTreeMap<ObjectKey, Arc<EndpointSlice>>,
    after: &BTreeMap<ObjectKey, Arc<EndpointSlice>>,
    refuse_local: bool,
) -> Option<Reread> {
    let services: BTreeSet<(&str, &str)> = replaced(before, after).into_iter().filter_map(|(key, slice)| service_of(key, slice)).collect();
    let of_services = |(key, slice): &(&ObjectKey, &Arc<EndpointSlice>)| service_of(key, slice).is_some_and(|service| services.contains(&service));
    let current: Vec<(&ObjectKey, &Arc<EndpointSlice>)> = after.iter().filter(of_services).collect();
    let slices: BTreeSet<ObjectKey> = before.iter().filter(of_services).chain(current.iter().copied()).map(|(key, _)| key.clone()).collect();
    let mut index = SliceIndex::new(current, refuse_local);
    let mut diagnostics = Diagnostics::default();
    let mut endpoints = BTreeMap::new();
    let read_again = |query: &EndpointQuery| services.contains(&(query.service.namespace.as_str(), query.service.name.as_str()));
    for (query, had_ready) in reads.queries.iter().filter(|(query, _)| read_again(query)) {
        let ready = index.ready(query, &mut diagnostics);
        if ready.is_empty() == *had_ready {
            return None;
        }
        endpoints.insert(query.clone(), ready);
    }
    Some(Reread { endpoints, slices, diagnostics: diagnostics.0 })
}

/// The entries (key, object: the old and the new one) that are not the very same object in both
/// maps, found by walking both in key order.
pub(super) fn replaced<'m, K>(before: &'m BTreeMap<ObjectKey, Arc<K>>, after: &'m BTreeMap<ObjectKey, Arc<K>>) -> Vec<(&'m ObjectKey, &'m K)> {
    let mut out = Vec::new();
    let (mut old, mut new) = (before.iter().peekable(), after.iter().peekable());
    loop {
        let order = match (old.peek(), new.peek()) {
            (None, None) => return out,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((a, _)), Some((b, _))) => a.cmp(b),
        };
        match order {
            std::cmp::Ordering::Less => out.extend(old.next().map(|(key, object)| (key, object.as_ref()))),
            std::cmp::Ordering::Greater => out.extend(new.next().map(|(key, object)| (key, object.as_ref()))),
            std::cmp::Ordering::Equal => {
                if let (Some((key, a)), Some((_, b))) = (old.next(), new.next()) {
                    if !Arc::ptr_eq(a, b) {
                        out.extend([(key, a.as_ref()), (key, b.as_ref())]);
                    }
                }
            }
        }
    }
}

/// The Service a slice belongs to: (namespace, its service-name label).
fn service_of<'s>(key: &'s ObjectKey, slice: &'s EndpointSlice) -> Option<(&'s str, &'s str)> {
    let service = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some((key.namespace.as_str(), service.as_str()))
}

impl Reread {
    /// Put the endpoints into the clusters of `translation` (the one whose reads these are) and
    /// the diagnostics of the slices read again in place of their old ones: it is then what
    /// translating the newer state gives. Returns the clusters whose endpoints changed.
    pub fn apply(self, translation: &mut Translation) -> BTreeSet<ClusterName> {
        let mut changed = BTreeSet::new();
        for (name, query) in &translation.endpoint_reads.clusters {
            let (Some(endpoints), Some(cluster)) = (self.endpoints.get(query), translation.model.clusters.get_mut(name)) else { continue };
            if cluster.endpoints != *endpoints {
                cluster.endpoints.clone_from(endpoints);
                changed.insert(name.clone());
            }
        }
        let reread = |d: &Diagnostic| {
            d.object.kind == ObjectKind::EndpointSlice.as_str() && self.slices.contains(&ObjectKey::new(d.object.namespace.clone(), d.object.name.clone()))
        };
        translation.diagnostics.retain(|d| !reread(d));
        translation.diagnostics.extend(self.diagnostics);
        translation.diagnostics.sort();
        translation.diagnostics.dedup();
        changed
    }
}
