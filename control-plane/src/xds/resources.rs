//! The xDS resource types this control plane serves, their type URLs and the order they are pushed
//! in, and packing `translate::envoy` output into named `Any`s. No I/O, no state.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;

use crate::translate::envoy::EnvoyResources;

use super::route_config;

pub const LISTENER_TYPE_URL: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const CLUSTER_TYPE_URL: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const ENDPOINT_TYPE_URL: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const SECRET_TYPE_URL: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
pub const EXTENSION_CONFIG_TYPE_URL: &str = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
pub const ROUTE_TYPE_URL: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

/// One xDS resource type. `Ord` is the make-before-break push order: clusters before the
/// endpoints that fill them, secrets before the listeners that use them, listeners before the
/// route configurations and filter configuration they subscribe to, route configurations (the
/// policies the route table names) before that table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Cluster,
    Endpoint,
    Secret,
    Listener,
    Route,
    ExtensionConfig,
}

impl ResourceType {
    /// Every type, in push order.
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Cluster,
        ResourceType::Endpoint,
        ResourceType::Secret,
        ResourceType::Listener,
        ResourceType::Route,
        ResourceType::ExtensionConfig,
    ];

    pub fn type_url(self) -> &'static str {
        match self {
            ResourceType::Cluster => CLUSTER_TYPE_URL,
            ResourceType::Endpoint => ENDPOINT_TYPE_URL,
            ResourceType::Secret => SECRET_TYPE_URL,
            ResourceType::Listener => LISTENER_TYPE_URL,
            ResourceType::Route => ROUTE_TYPE_URL,
            ResourceType::ExtensionConfig => EXTENSION_CONFIG_TYPE_URL,
        }
    }

    pub fn from_type_url(type_url: &str) -> Option<ResourceType> {
        ResourceType::ALL.into_iter().find(|t| t.type_url() == type_url)
    }

    /// Short name for logs and metric labels (`cds`, `eds`, `sds`, `lds`, `rds`, `ecds`).
    pub fn label(self) -> &'static str {
        match self {
            ResourceType::Cluster => "cds",
            ResourceType::Endpoint => "eds",
            ResourceType::Secret => "sds",
            ResourceType::Listener => "lds",
            ResourceType::Route => "rds",
            ResourceType::ExtensionConfig => "ecds",
        }
    }

    /// Listeners and clusters are always sent whole (wildcard subscriptions); endpoints, secrets,
    /// route configurations and filter configs only as requested by name.
    pub fn is_wildcard(self) -> bool {
        matches!(self, ResourceType::Cluster | ResourceType::Listener)
    }
}

/// One resource, packed, with the name Envoy knows it by.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedResource {
    pub name: String,
    pub resource: Any,
}

/// One cluster's endpoints, named by the cluster (as Envoy requests them).
pub fn endpoint(assignment: ClusterLoadAssignment) -> NamedResource {
    NamedResource { name: assignment.cluster_name.clone(), resource: pack_any(assignment) }
}

/// Pack every resource, grouped by type (every type present, possibly empty). Route
/// configurations are packed by [`route_config::pack`], whose bytes do not depend on map order.
pub fn by_type(resources: &EnvoyResources) -> BTreeMap<ResourceType, Vec<NamedResource>> {
    let mut out = BTreeMap::new();
    out.insert(
        ResourceType::Listener,
        resources.listeners.iter().map(|r| NamedResource { name: r.name.clone(), resource: pack_any(r.clone()) }).collect(),
    );
    out.insert(
        ResourceType::Cluster,
        resources.clusters.iter().map(|r| NamedResource { name: r.name.clone(), resource: pack_any(r.clone()) }).collect(),
    );
    out.insert(ResourceType::Endpoint, resources.endpoints.iter().cloned().map(endpoint).collect());
    out.insert(
        ResourceType::Secret,
        resources.secrets.iter().map(|r| NamedResource { name: r.name.clone(), resource: pack_any(r.clone()) }).collect(),
    );
    out.insert(
        ResourceType::Route,
        resources
            .route_configs
            .iter()
            .map(|r| NamedResource { name: r.name.clone(), resource: route_config::pack(r) })
            .collect(),
    );
    out.insert(
        ResourceType::ExtensionConfig,
        resources
            .extension_configs
            .iter()
            .map(|r| NamedResource { name: r.name.clone(), resource: pack_any(r.clone()) })
            .collect(),
    );
    out
}

/// `resource` as sent again after Envoy rejected it `attempt` tries since: a filter
/// configuration is re-made so that Envoy tries it again
/// (`translate::envoy::filter_extension_config_resend`); everything else as it is (Envoy tries
/// the same clusters, listeners, routes, secrets and endpoints again on its own).
pub fn resend_variant(resource_type: ResourceType, resource: Any, attempt: u32) -> Any {
    if resource_type != ResourceType::ExtensionConfig {
        return resource;
    }
    let Ok(config) = <TypedExtensionConfig as prost::Message>::decode(resource.value.as_slice()) else { return resource };
    match crate::translate::envoy::filter_extension_config_resend(&config, attempt) {
        Some(variant) => pack_any(variant),
        None => resource,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
    use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
    use envoy_types::pb::envoy::config::listener::v3::Listener;
    use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
    use prost::Name;

    use super::*;

    #[test]
    fn type_urls_match_the_proto_types() {
        let cases = [
            (ResourceType::Listener, Listener::type_url()),
            (ResourceType::Cluster, Cluster::type_url()),
            (ResourceType::Endpoint, ClusterLoadAssignment::type_url()),
            (ResourceType::Secret, Secret::type_url()),
            (ResourceType::ExtensionConfig, TypedExtensionConfig::type_url()),
            (ResourceType::Route, RouteConfiguration::type_url()),
        ];
        for (resource_type, url) in cases {
            assert_eq!(resource_type.type_url(), url);
            assert_eq!(ResourceType::from_type_url(&url), Some(resource_type));
        }
        assert_eq!(ResourceType::from_type_url("type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration"), None);
    }

    #[test]
    fn push_order_is_make_before_break() {
        let mut sorted = ResourceType::ALL;
        sorted.sort();
        assert_eq!(sorted, ResourceType::ALL);
        let position = |t| ResourceType::ALL.iter().position(|x| *x == t).unwrap();
        assert!(position(ResourceType::Cluster) < position(ResourceType::Endpoint));
        assert!(position(ResourceType::Endpoint) < position(ResourceType::Listener));
        assert!(position(ResourceType::Secret) < position(ResourceType::Listener));
        assert!(position(ResourceType::Listener) < position(ResourceType::Route));
        assert!(position(ResourceType::Route) < position(ResourceType::ExtensionConfig));
    }

    #[test]
    fn resources_are_named_as_envoy_requests_them() {
        let resources = EnvoyResources {
            endpoints: vec![ClusterLoadAssignment { cluster_name: "default/web/80".into(), ..Default::default() }],
            extension_configs: vec![TypedExtensionConfig { name: "wasm-ingress.router".into(), typed_config: None }],
            ..Default::default()
        };
        let packed = by_type(&resources);
        assert_eq!(packed.len(), 6);
        assert_eq!(packed[&ResourceType::Endpoint][0].name, "default/web/80");
        assert_eq!(packed[&ResourceType::Endpoint][0].resource.type_url, ENDPOINT_TYPE_URL);
        assert_eq!(packed[&ResourceType::ExtensionConfig][0].resource.type_url, EXTENSION_CONFIG_TYPE_URL);
        assert!(packed[&ResourceType::Listener].is_empty());
    }
}
