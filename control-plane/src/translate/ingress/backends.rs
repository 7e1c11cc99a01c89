//! Ingress backends -> upstream clusters: a Service port (by number or name) becomes the cluster
//! `namespace/service/port` (the Service port NUMBER), with the ready addresses of the Service's
//! EndpointSlices (matched by the `kubernetes.io/service-name` label and by port NAME, as kube-proxy
//! does). A backend that cannot be resolved answers 503 from the filter, with a diagnostic, unless
//! the Ingress names a `default-backend` Service with ready endpoints: that one answers. Pure: it
//! reads `ClusterState` and must not decide anything about hosts or paths.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::ServicePort;
use k8s_openapi::api::networking::v1::IngressBackend;
use wasm_ingress_filter::cluster::ClusterName;
use wasm_ingress_filter::table::RouteAction;

use crate::model::{Endpoint, EndpointQuery, HeaderValue, ObjectRef, RoutePolicy, Severity, UpstreamCluster, UpstreamOptions};
use crate::state::{ClusterState, ObjectKey};

use super::endpoints::SliceIndex;
use super::Diagnostics;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Body of the 503 the filter answers for a backend that does not resolve to a cluster: nginx's
/// 503 page, as ingress-nginx answers.
pub use wasm_ingress_filter::decision::UNAVAILABLE_BODY;

/// The Envoy cluster of one Service port: `namespace/service/port` (port = Service port number).
pub fn cluster_name(namespace: &str, service: &str, port: i32) -> ClusterName {
    ClusterName::service_port(namespace, service, port)
}

/// The action of a backend that does not resolve (missing Service or port, unsupported type).
pub fn unavailable() -> RouteAction {
    RouteAction::respond(503, UNAVAILABLE_BODY)
}

/// What a backend resolved to before the fallback is considered.
enum Resolved {
    /// A cluster with ready endpoints.
    Served(ClusterName),
    /// What the path does without a fallback: 503, or a cluster without endpoints (Envoy's 503).
    Unserved(RouteAction),
}

/// The `default-backend` Service of an Ingress and its cluster.
struct Fallback {
    service: ObjectKey,
    cluster: UpstreamCluster,
}

/// Resolves backends against the state and collects the clusters they use.
pub(super) struct Backends<'s> {
    state: &'s ClusterState,
    pub(super) clusters: BTreeMap<ClusterName, UpstreamCluster>,
    /// Where endpoints are read (and what was read, for `endpoints::reread`).
    pub(super) slices: SliceIndex<'s>,
    /// Skip loopback, link-local and metadata addresses (Kubernetes mode).
    refuse_local: bool,
}

impl<'s> Backends<'s> {
    pub(super) fn new(state: &'s ClusterState, refuse_local: bool) -> Backends<'s> {
        let slices = SliceIndex::new(state.endpoint_slices.iter(), refuse_local);
        Backends { state, clusters: BTreeMap::new(), slices, refuse_local }
    }

    /// The action for `backend` of Ingress `ingress` (its field `field`), spoken to as `options`
    /// says, or `None` if the path must be skipped (the backend is not something we can ever serve).
    /// With [`Backends::resolve_or_default`], `fallback` (`default-backend`, a Service of the
    /// Ingress's namespace) answers instead when the backend has no ready endpoints, is missing,
    /// or lacks the port, as in ingress-nginx; it is spoken to with the same `options`
    /// (ingress-nginx copies the backend's upstream) on its first port, and only counts when it
    /// has ready endpoints itself.
    pub(super) fn resolve(
        &mut self,
        ingress: &ObjectKey,
        field: &str,
        backend: &IngressBackend,
        options: &UpstreamOptions,
        diagnostics: &mut Diagnostics,
    ) -> Option<RouteAction> {
        self.resolve_or_default(ingress, field, backend, options, None, diagnostics).map(|(action, _)| action)
    }

    /// [`Backends::resolve`] with the Ingress's `default-backend` Service, if any; `true` beside
    /// the action when that Service answers (the route then sends [`default_backend_headers`]).
    pub(super) fn resolve_or_default(
        &mut self,
        ingress: &ObjectKey,
        field: &str,
        backend: &IngressBackend,
        options: &UpstreamOptions,
        fallback: Option<&str>,
        diagnostics: &mut Diagnostics,
    ) -> Option<(RouteAction, bool)> {
        let fallback = fallback.and_then(|service| self.fallback(ingress, service, options, diagnostics));
        let answer = match &fallback {
            Some(fallback) => format!("the default-backend Service {} answers instead", fallback.service),
            None => "requests answer 503".to_string(),
        };
        Some(match (self.resolve_service(ingress, field, backend, options, &answer, diagnostics)?, fallback) {
            (Resolved::Served(cluster), _) => (RouteAction::forward_to(cluster), false),
            (Resolved::Unserved(_), Some(fallback)) => {
                let name = fallback.cluster.name.clone();
                self.clusters.entry(name.clone()).or_insert(fallback.cluster);
                (RouteAction::forward_to(name), true)
            }
            (Resolved::Unserved(action), None) => (action, false),
        })
    }

    /// A canary's cluster, when its Service has ready endpoints. Without them ingress-nginx has no
    /// balancer for the canary (`balancer.lua` drops a backend without endpoints), so the main
    /// backend answers every request: `None`, with a warning saying so.
    pub(super) fn resolve_canary(
        &mut self,
        ingress: &ObjectKey,
        field: &str,
        backend: &IngressBackend,
        options: &UpstreamOptions,
        diagnostics: &mut Diagnostics,
    ) -> Option<ClusterName> {
        let answer = "the main Ingress's backend answers the canary's requests (as ingress-nginx)";
        match self.resolve_service(ingress, field, backend, options, answer, diagnostics)? {
            Resolved::Served(cluster) => Some(cluster),
            Resolved::Unserved(_) => None,
        }
    }

    /// The cluster that answers `custom-http-errors` for Ingress `ingress`: its `default-backend`
    /// Service spoken to as `options`, if it has ready endpoints (then it is kept).
    pub(super) fn error_page_cluster(&mut self, ingress: &ObjectKey, service: &str, options: &UpstreamOptions, diagnostics: &mut Diagnostics) -> Option<ClusterName> {
        let fallback = self.fallback(ingress, service, options, diagnostics)?;
        let name = fallback.cluster.name.clone();
        self.clusters.entry(name.clone()).or_insert(fallback.cluster);
        Some(name)
    }

    /// The `default-backend` Service's cluster, spoken to as `options`, if it has ready endpoints
    /// (not inserted: only used when a backend needs it). A missing Service is warned and ignored.
    fn fallback(&mut self, ingress: &ObjectKey, service: &str, options: &UpstreamOptions, diagnostics: &mut Diagnostics) -> Option<Fallback> {
        let object = ingress_ref(ingress);
        let field = format!("metadata.annotations[{}default-backend]", super::NGINX_PREFIX);
        let key = ObjectKey::new(ingress.namespace.clone(), service.to_string());
        self.first_port_cluster((object, field, "no default backend for this Ingress"), key, options, diagnostics)
    }

    /// `--default-backend-service`'s cluster (spoken to plainly, as ingress-nginx's
    /// `upstream-default-backend`, within `--proxy-connect-timeout`), kept, if the Service has
    /// ready endpoints.
    pub(super) fn global_default(&mut self, key: &ObjectKey, connect_timeout: Duration, diagnostics: &mut Diagnostics) -> Option<ClusterName> {
        let object = ObjectRef { kind: "Service".into(), namespace: key.namespace.clone(), name: key.name.clone() };
        let unused = "--default-backend-service unused: what no Ingress serves answers 404";
        let options = UpstreamOptions { connect_timeout, ..UpstreamOptions::default() };
        let fallback = self.first_port_cluster((object, String::new(), unused), key.clone(), &options, diagnostics)?;
        let name = fallback.cluster.name.clone();
        self.clusters.entry(name.clone()).or_insert(fallback.cluster);
        Some(name)
    }

    /// The cluster of Service `key`'s first port (how ingress-nginx reaches a default backend),
    /// spoken to as `options`, if it has ready endpoints (not inserted). A missing Service, one
    /// without ports or without ready endpoints is a warning on `report`'s object and field,
    /// ending with its text.
    fn first_port_cluster(
        &mut self,
        report: (ObjectRef, String, &str),
        key: ObjectKey,
        options: &UpstreamOptions,
        diagnostics: &mut Diagnostics,
    ) -> Option<Fallback> {
        let (object, field, unusable) = report;
        let Some(found) = self.state.services.get(&key) else {
            diagnostics.push(object, field, Severity::Warning, format!("Service {key} not found; {unusable}"));
            return None;
        };
        let spec = found.spec.as_ref();
        let Some(port) = spec.and_then(|s| s.ports.as_deref()).and_then(<[ServicePort]>::first) else {
            diagnostics.push(object, field, Severity::Warning, format!("Service {key} has no ports; {unusable}"));
            return None;
        };
        let name = options.cluster_name(&cluster_name(&key.namespace, &key.name, port.port));
        let cluster = match self.clusters.get(&name) {
            Some(cluster) => cluster.clone(),
            None => {
                let cluster_ip = spec.and_then(|s| s.cluster_ip.as_deref());
                let endpoints = self.cluster_endpoints(&name, (&object, &key), cluster_ip, port, options, diagnostics);
                UpstreamCluster { name, endpoints, options: options.clone() }
            }
        };
        if cluster.endpoints.is_empty() {
            diagnostics.push(object, field, Severity::Warning, format!("Service {key} port {} has no ready endpoints; {unusable}", port.port));
            return None;
        }
        Some(Fallback { service: key, cluster })
    }

    /// [`Backends::resolve`] without the fallback; `answer` says what clients get when the
    /// backend cannot serve.
    fn resolve_service(
        &mut self,
        ingress: &ObjectKey,
        field: &str,
        backend: &IngressBackend,
        options: &UpstreamOptions,
        answer: &str,
        diagnostics: &mut Diagnostics,
    ) -> Option<Resolved> {
        let object = ingress_ref(ingress);
        if backend.resource.is_some() {
            diagnostics.push(
                object,
                format!("{field}.resource"),
                Severity::Error,
                "resource backends are not supported; skipped".into(),
            );
            return None;
        }
        let Some(service_backend) = &backend.service else {
            diagnostics.push(object, field.into(), Severity::Error, "backend names no service; skipped".into());
            return None;
        };
        let service_field = format!("{field}.service");
        let (port_number, port_name) = match &service_backend.port {
            Some(port) => (port.number, port.name.clone().filter(|n| !n.is_empty())),
            None => (None, None),
        };
        if port_number.is_none() && port_name.is_none() {
            diagnostics.push(
                object,
                format!("{service_field}.port"),
                Severity::Error,
                "a service port number or name is required; skipped".into(),
            );
            return None;
        }
        let service_key = ObjectKey::new(ingress.namespace.clone(), service_backend.name.clone());
        let Some(service) = self.state.services.get(&service_key) else {
            diagnostics.push(
                object,
                format!("{service_field}.name"),
                Severity::Warning,
                format!("Service {service_key} not found; {answer}"),
            );
            return Some(Resolved::Unserved(unavailable()));
        };
        let spec = service.spec.as_ref();
        let external = super::external_name::of(service);
        let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
        let found = match external {
            Some(_) => super::external_name::port(ports, port_number, port_name.as_deref()),
            None => match service_port(ports, port_number, port_name.as_deref()) {
                Some((port, PortMatch::TargetPort)) => {
                    let message = target_port_note(&service_key, ports, port, port_number, port_name.as_deref());
                    diagnostics.push(object.clone(), format!("{service_field}.port"), Severity::Warning, message);
                    Some(port.clone())
                }
                Some((port, PortMatch::Port)) => Some(port.clone()),
                None => None,
            },
        };
        let Some(service_port) = &found else {
            let wanted = match (port_number, &port_name) {
                (Some(number), _) => format!("port {number}"),
                (None, Some(name)) => format!("port named {name:?}"),
                (None, None) => "a port".into(),
            };
            diagnostics.push(
                object,
                format!("{service_field}.port"),
                Severity::Warning,
                format!("Service {service_key} has no {wanted}; {answer}"),
            );
            return Some(Resolved::Unserved(unavailable()));
        };
        let cluster = options.cluster_name(&cluster_name(&service_key.namespace, &service_key.name, service_port.port));
        if !self.clusters.contains_key(&cluster) {
            let cluster_ip = spec.and_then(|s| s.cluster_ip.as_deref());
            let endpoints = self.cluster_endpoints(&cluster, (&object, &service_key), cluster_ip, service_port, options, diagnostics);
            self.clusters.insert(cluster.clone(), UpstreamCluster { name: cluster.clone(), endpoints, options: options.clone() });
        }
        if self.clusters.get(&cluster).is_some_and(|c| c.endpoints.is_empty()) {
            let message = match external {
                Some(name) => match super::external_name::target(name) {
                    Err(_) => format!("Service {service_key} is of type ExternalName and its name {name:?} is refused (see the Service's diagnostic); {answer}"),
                    Ok(_) => format!("Service {service_key} is of type ExternalName and no usable address of {name:?} is known (`serve` looks it up every 30 s); until one is, {answer}"),
                },
                None => format!("Service {service_key} port {} has no ready endpoints; {answer}", service_port.port),
            };
            diagnostics.push(object, service_field, Severity::Warning, message);
            return Some(Resolved::Unserved(RouteAction::forward_to(cluster)));
        }
        Some(Resolved::Served(cluster))
    }

    /// The endpoints of a Service port's cluster `cluster`: the cluster IP alone for
    /// `service-upstream` (when it has a usable one), else the ready endpoints. `about`: the object
    /// warned when the cluster IP cannot be used, and the Service.
    fn cluster_endpoints(
        &mut self,
        cluster: &ClusterName,
        about: (&ObjectRef, &ObjectKey),
        cluster_ip: Option<&str>,
        service_port: &ServicePort,
        options: &UpstreamOptions,
        diagnostics: &mut Diagnostics,
    ) -> Vec<Endpoint> {
        let (object, service_key) = about;
        let service_endpoint = service_address(cluster_ip, service_port)
            .filter(|e| options.service_upstream && !(self.refuse_local && e.address.parse().ok().and_then(local_address).is_some()));
        if let Some(endpoint) = service_endpoint {
            return vec![endpoint];
        }
        if options.service_upstream {
            diagnostics.push(
                object.clone(),
                format!("metadata.annotations[{}service-upstream]", super::NGINX_PREFIX),
                Severity::Warning,
                format!("Service {service_key} has no usable cluster IP (headless?); its endpoints are used instead"),
            );
        }
        let external = self.state.services.get(service_key).and_then(|service| super::external_name::of(service)).is_some();
        let query = EndpointQuery {
            service: service_key.clone(),
            port_name: service_port.name.clone().unwrap_or_default(),
            port: external.then(|| super::external_name::target_port(service_port)).flatten(),
            target_port: numeric_target_port(service_port),
        };
        let endpoints = self.slices.ready(&query, diagnostics);
        self.slices.fills(cluster, query);
        endpoints
    }
}

/// What ingress-nginx sends a `default-backend` Service that answers for `backend` of Ingress
/// `ingress`: `X-Code: 503`, `X-Format` (the request's Accept) and the [`backend_identity`]
/// headers. The request's path is kept. Added to `policy`.
pub(super) fn default_backend_headers(policy: &mut RoutePolicy, ingress: &ObjectKey, backend: &IngressBackend) {
    policy.request_headers.insert("x-code".to_string(), HeaderValue::text("503"));
    policy.request_headers.extend(backend_identity(ingress, Some(backend)).into_iter().map(|(name, value)| (name, HeaderValue::text(&value))));
    policy.request_headers.insert("x-format".to_string(), HeaderValue::request_header("accept"));
}

/// ingress-nginx's `X-Namespace`, `X-Ingress-Name`, `X-Service-Name` and `X-Service-Port` (the
/// backend's Service and port as the Ingress names them; empty without a Service backend).
pub(super) fn backend_identity(ingress: &ObjectKey, backend: Option<&IngressBackend>) -> Vec<(String, String)> {
    let (service, port) = service_name_port(backend);
    [
        ("x-namespace", ingress.namespace.clone()),
        ("x-ingress-name", ingress.name.clone()),
        ("x-service-name", service),
        ("x-service-port", port),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

/// The backend's Service name and port as the Ingress writes them (number, or name); empty
/// without a Service backend (ingress-nginx's `$service_name` and `$service_port`).
pub(super) fn service_name_port(backend: Option<&IngressBackend>) -> (String, String) {
    let service = backend.and_then(|b| b.service.as_ref());
    let port = service.and_then(|s| s.port.as_ref());
    let port = match (port.and_then(|p| p.number), port.and_then(|p| p.name.clone())) {
        (Some(number), _) => number.to_string(),
        (None, Some(name)) => name,
        (None, None) => String::new(),
    };
    (service.map(|s| s.name.clone()).unwrap_or_default(), port)
}

/// A Service port's `targetPort` when it is a number (its `port` when unset, as the API defaults it).
fn numeric_target_port(port: &ServicePort) -> Option<u16> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match &port.target_port {
        None => u16::try_from(port.port).ok(),
        Some(IntOrString::Int(target)) => u16::try_from(*target).ok(),
        Some(IntOrString::String(_)) => None,
    }
    .filter(|port| *port != 0)
}

/// How an Ingress backend's port picked a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortMatch {
    /// By the Service port's number or name, as the Ingress API means it.
    Port,
    /// By its `targetPort` (a number, or the name of a container port).
    TargetPort,
}

/// The Service port an Ingress backend's port names, as ingress-nginx picks it: the first port
/// whose number, `targetPort` or name is the Ingress's port (a number is compared with the number
/// and the `targetPort`, a name with the name and a named `targetPort`).
fn service_port<'p>(ports: &'p [ServicePort], number: Option<i32>, name: Option<&str>) -> Option<(&'p ServicePort, PortMatch)> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    ports.iter().find_map(|port| {
        let by_port = match (number, name) {
            (Some(number), _) => port.port == number,
            (None, Some(name)) => port.name.as_deref() == Some(name),
            (None, None) => false,
        };
        let by_target = match (number, name, &port.target_port) {
            (Some(number), _, Some(IntOrString::Int(target))) => *target == number,
            (Some(number), _, Some(IntOrString::String(target))) => *target == number.to_string(),
            (None, Some(name), Some(IntOrString::String(target))) => target == name,
            _ => false,
        };
        match (by_port, by_target) {
            (true, _) => Some((port, PortMatch::Port)),
            (false, true) => Some((port, PortMatch::TargetPort)),
            (false, false) => None,
        }
    })
}

/// The warning for a Service port `picked` by its `targetPort` (see [`service_port`]).
fn target_port_note(service: &ObjectKey, ports: &[ServicePort], picked: &ServicePort, number: Option<i32>, name: Option<&str>) -> String {
    let wanted = number.map_or_else(|| format!("{:?}", name.unwrap_or_default()), |n| n.to_string());
    let also_named = ports.iter().any(|p| match number {
        Some(number) => p.port == number,
        None => p.name.as_deref() == name,
    });
    let others = "as ingress-nginx picks (other controllers read the Ingress's port as the Service's)";
    match also_named {
        true => format!("Service {service}: the port {} comes first and has targetPort {wanted}, so it is used rather than the port {wanted}, {others}", picked.port),
        false => format!("Service {service} has no port {wanted}; its port {} has that targetPort and is used, {others}", picked.port),
    }
}

/// The Service's cluster IP and port, for `service-upstream` (`None` for a headless Service).
fn service_address(cluster_ip: Option<&str>, port: &ServicePort) -> Option<Endpoint> {
    let ip: IpAddr = cluster_ip?.parse().ok()?;
    Some(Endpoint { address: ip.to_string(), port: u16::try_from(port.port).ok().filter(|p| *p != 0)? })
}

/// Why an endpoint address must never be proxied to, if it is one of those: loopback, link-local
/// (169.254.0.0/16 holds the cloud metadata service at 169.254.169.254; fe80::/10), unspecified,
/// or the IPv4-mapped form of one of them.
pub fn local_address(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Some("a loopback address"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("a link-local address (the metadata service lives there)"),
        IpAddr::V4(v4) if v4.is_unspecified() || v4.is_broadcast() => Some("not a host address"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("a loopback address"),
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some("a link-local address"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("not a host address"),
        // fd00:ec2::254, the AWS metadata service over IPv6.
        IpAddr::V6(v6) if v6.segments() == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] => Some("the cloud metadata service"),
        _ => None,
    }
}

pub(super) fn ingress_ref(key: &ObjectKey) -> ObjectRef {
    ObjectRef { kind: "Ingress".into(), namespace: key.namespace.clone(), name: key.name.clone() }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;

    fn port(name: &str, port: i32, target: Option<IntOrString>) -> ServicePort {
        ServicePort { name: Some(name.into()).filter(|n: &String| !n.is_empty()), port, target_port: target, ..ServicePort::default() }
    }

    #[test]
    fn the_first_port_whose_number_target_port_or_name_matches_as_ingress_nginx() {
        let ports = [
            port("http", 80, Some(IntOrString::Int(8080))),
            port("admin", 8080, Some(IntOrString::Int(9090))),
            port("metrics", 9100, Some(IntOrString::String("prom".into()))),
            port("", 7000, None),
        ];
        // (number, name, the port picked, how)
        type Case<'a> = (Option<i32>, Option<&'a str>, Option<(i32, PortMatch)>);
        let cases: [Case<'_>; 9] = [
            (Some(80), None, Some((80, PortMatch::Port))),
            // 8080 is the first port's targetPort before it is the second port's number: the
            // first port, as ingress-nginx's loop over the Service's ports.
            (Some(8080), None, Some((80, PortMatch::TargetPort))),
            (Some(9090), None, Some((8080, PortMatch::TargetPort))),
            (Some(7000), None, Some((7000, PortMatch::Port))),
            (Some(1234), None, None),
            (None, Some("admin"), Some((8080, PortMatch::Port))),
            (None, Some("prom"), Some((9100, PortMatch::TargetPort))),
            (None, Some("nope"), None),
            (None, None, None),
        ];
        for (number, name, expected) in cases {
            let picked = service_port(&ports, number, name).map(|(p, how)| (p.port, how));
            assert_eq!(picked, expected, "{number:?} {name:?}");
        }
    }
}
