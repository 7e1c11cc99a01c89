//! ClusterState: the Kubernetes objects the control plane reads, keyed by namespace/name.
//!
//! This is the seam between sources and translation: the manifests folder (`source::files`) and the
//! Kubernetes API (`source::kube`) each publish complete `ClusterState` snapshots, and
//! `translate::ingress` reads nothing else. No I/O here, no Envoy types.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

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

/// Every object translation may need. Sources fill it; translation only reads it.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    pub ingresses: BTreeMap<ObjectKey, Ingress>,
    /// Cluster-scoped: keyed with an empty namespace.
    pub ingress_classes: BTreeMap<ObjectKey, IngressClass>,
    pub services: BTreeMap<ObjectKey, Service>,
    /// Keyed by the EndpointSlice's own name; find a Service's slices by the
    /// `kubernetes.io/service-name` label.
    pub endpoint_slices: BTreeMap<ObjectKey, EndpointSlice>,
    /// `kubernetes.io/tls` and `Opaque` Secrets (certificates, CA bundles, htpasswd files).
    pub secrets: BTreeMap<ObjectKey, Secret>,
}
