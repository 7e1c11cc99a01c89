//! ClusterState: the Kubernetes objects the control plane reads, keyed by namespace/name.
//!
//! This is the seam between sources and translation: the manifests folder (`source::files`) and the
//! Kubernetes API (`source::kube`) each publish complete `ClusterState` snapshots, and
//! `translate::ingress` reads nothing else. No I/O here, no Envoy types.
//!
//! Each kind's objects are one shared map ([`Objects`]): a source that publishes a new snapshot
//! hands on the maps of the kinds that did not change, so cloning a state costs six reference
//! counts, and [`ClusterState::changed_kinds`] tells what changed by pointer, without comparing
//! objects. That is what lets `serve` apply an EndpointSlice-only change without translating again.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use wasm_ingress_filter::table::Origin;

/// `namespace/name` of a namespaced object (cluster-scoped objects use an empty namespace).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> ObjectKey {
        ObjectKey { namespace: namespace.into(), name: name.into() }
    }

    /// The route-table origin "field `field` of this Ingress" (empty field: the Ingress itself).
    pub fn origin(&self, field: &str) -> Origin {
        Origin::new(&self.namespace, &self.name, field)
    }

    /// The Ingress an origin names; `None` for an unknown origin.
    pub fn of_origin(origin: &Origin) -> Option<ObjectKey> {
        (!origin.name().is_empty()).then(|| ObjectKey::new(origin.namespace(), origin.name()))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// The kinds of object a [`ClusterState`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    Ingress,
    IngressClass,
    Service,
    EndpointSlice,
    Secret,
    ConfigMap,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 6] = [
        ObjectKind::Ingress,
        ObjectKind::IngressClass,
        ObjectKind::Service,
        ObjectKind::EndpointSlice,
        ObjectKind::Secret,
        ObjectKind::ConfigMap,
    ];

    /// As in `kind:`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Ingress => "Ingress",
            ObjectKind::IngressClass => "IngressClass",
            ObjectKind::Service => "Service",
            ObjectKind::EndpointSlice => "EndpointSlice",
            ObjectKind::Secret => "Secret",
            ObjectKind::ConfigMap => "ConfigMap",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The objects of one kind, shared between the snapshots that hold the same ones (the map), and
/// between the maps that hold the same object (each object).
pub type Objects<K> = Arc<BTreeMap<ObjectKey, Arc<K>>>;

/// Every object translation may need. Sources fill it; translation only reads it.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    pub ingresses: Objects<Ingress>,
    /// Cluster-scoped: keyed with an empty namespace.
    pub ingress_classes: Objects<IngressClass>,
    pub services: Objects<Service>,
    /// Keyed by the EndpointSlice's own name; find a Service's slices by the
    /// `kubernetes.io/service-name` label.
    pub endpoint_slices: Objects<EndpointSlice>,
    /// `kubernetes.io/tls` and `Opaque` Secrets (certificates, CA bundles, htpasswd files).
    pub secrets: Objects<Secret>,
    /// The ConfigMaps Ingresses name (`custom-headers`, `auth-proxy-set-headers`).
    pub config_maps: Objects<ConfigMap>,
}

impl ClusterState {
    /// The kinds whose map is not the very same one in `other` (conservative: a rebuilt map with
    /// equal content counts as changed; a shared one is certainly unchanged).
    pub fn changed_kinds(&self, other: &ClusterState) -> BTreeSet<ObjectKind> {
        let same = |kind: ObjectKind| match kind {
            ObjectKind::Ingress => Arc::ptr_eq(&self.ingresses, &other.ingresses),
            ObjectKind::IngressClass => Arc::ptr_eq(&self.ingress_classes, &other.ingress_classes),
            ObjectKind::Service => Arc::ptr_eq(&self.services, &other.services),
            ObjectKind::EndpointSlice => Arc::ptr_eq(&self.endpoint_slices, &other.endpoint_slices),
            ObjectKind::Secret => Arc::ptr_eq(&self.secrets, &other.secrets),
            ObjectKind::ConfigMap => Arc::ptr_eq(&self.config_maps, &other.config_maps),
        };
        ObjectKind::ALL.into_iter().filter(|kind| !same(*kind)).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn changed_kinds_are_the_maps_not_shared() {
        let a = ClusterState::default();
        let mut b = a.clone();
        assert!(a.changed_kinds(&b).is_empty(), "a clone shares every map");
        Arc::make_mut(&mut b.endpoint_slices).insert(ObjectKey::new("web", "s"), Arc::new(EndpointSlice::default()));
        assert_eq!(a.changed_kinds(&b), BTreeSet::from([ObjectKind::EndpointSlice]));
        b.services = Arc::new(BTreeMap::new());
        assert_eq!(
            a.changed_kinds(&b),
            BTreeSet::from([ObjectKind::Service, ObjectKind::EndpointSlice]),
            "a rebuilt map counts as changed even when equal"
        );
    }
}
