//! Model clusters -> Envoy `Cluster`s and their `ClusterLoadAssignment`s. Every cluster is EDS over
//! ADS, round robin, with the edge's per-connection buffer limit; its [`UpstreamOptions`](crate::model::UpstreamOptions) add what
//! ingress-nginx's `backend-protocol`, `proxy-ssl-*` and `proxy-connect-timeout` ask for:
//! - HTTP/2 (GRPC, GRPCS) through `HttpProtocolOptions.explicit_http_config`;
//! - TLS (HTTPS, GRPCS) through an `UpstreamTlsContext`: nginx's defaults send no SNI and do not
//!   check the certificate; `proxy-ssl-verify` adds the trusted CAs (inline: they are not secret),
//!   the verify depth and the DNS name to match; a client certificate travels by SDS like the
//!   listeners' certificates.
//!
//! `upstream-hash-by-subset` ([`Balance::HashSubset`]) makes the cluster a random balancer over
//! Envoy subsets: each endpoint's `envoy.lb` metadata lists the slots of its subsets (see
//! `wasm_ingress_filter::subset`), and the request's slot picks the subset.
//!
//! External auth services (`auth-url`) are clusters of their own, outside EDS: `STRICT_DNS` on the
//! auth-url's host (nginx resolves it too), or `STATIC` on Envoy's own listener for a `$host`
//! auth-url, with TLS for `https://` (SNI: the host, or for the own listener the auth request's
//! `:authority` through `auto_sni`; the certificate not checked, as nginx's default).
//!
//! Every cluster has Envoy's circuit breakers opened wide (see [`no_circuit_breakers`]): nginx
//! caps neither the connections nor the requests nor the retries to one upstream, and Envoy's
//! defaults (1 024 connections, 1 024 pending and 1 024 active requests, 3 concurrent retries per
//! cluster) would answer 503s, or give up a retry, that ingress-nginx never does. Upstream HTTP/2
//! gets the stream and connection windows of Envoy's edge guide (64 KiB / 1 MiB), as downstream.
//!
//! Pure: Model in, protos out.

use envoy_types::pb::envoy::config::cluster::v3::{circuit_breakers, cluster, CircuitBreakers, Cluster};
use envoy_types::pb::envoy::config::core::v3::{data_source, transport_socket, DataSource, Http2ProtocolOptions, TransportSocket};
use envoy_types::pb::envoy::config::endpoint::v3::{lb_endpoint, ClusterLoadAssignment, LbEndpoint, LocalityLbEndpoints};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context, subject_alt_name_matcher, tls_parameters::TlsProtocol, CertificateValidationContext,
    CommonTlsContext, SdsSecretConfig, SubjectAltNameMatcher, TlsParameters, UpstreamTlsContext,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{http_protocol_options, HttpProtocolOptions};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, StringMatcher};
use envoy_types::pb::google::protobuf::UInt32Value;
use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::google::protobuf::{value, ListValue, Struct, Value};
use envoy_types::util::pack_any;
use wasm_ingress_filter::subset::{self, SUBSET_METADATA_KEY};

use std::net::SocketAddr;

use wasm_ingress_filter::cluster::ClusterName;

use crate::model::{AuthService, AuthTarget, Balance, Endpoint, UpstreamCluster, UpstreamTls, DEFAULT_CONNECT_TIMEOUT};
use crate::translate::edge::{proto_duration, EdgeSettings};
use crate::translate::envoy::{ads_config_source, socket_address};

/// The key Envoy reads a cluster's HTTP protocol options under.
pub const HTTP_PROTOCOL_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";

/// The EDS cluster of `upstream`.
pub fn eds_cluster(upstream: &UpstreamCluster, edge: &EdgeSettings) -> Cluster {
    let options = &upstream.options;
    let mut cluster = Cluster {
        name: upstream.name.to_string(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(cluster::DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(cluster::EdsClusterConfig {
            eds_config: Some(ads_config_source()),
            service_name: String::new(),
        }),
        connect_timeout: Some(proto_duration(options.connect_timeout)),
        lb_policy: lb_policy(options.balance) as i32,
        per_connection_buffer_limit_bytes: edge.buffer_limit(),
        transport_socket: options.tls.as_ref().map(tls_transport_socket),
        lb_subset_config: matches!(options.balance, Balance::HashSubset { .. }).then(subset_config),
        circuit_breakers: Some(no_circuit_breakers()),
        ..Default::default()
    };
    if options.http2 {
        // One entry: prost encodes this HashMap deterministically.
        cluster.typed_extension_protocol_options.insert(HTTP_PROTOCOL_OPTIONS.to_string(), pack_any(http2_options()));
    }
    cluster
}

/// The cluster of an external auth service; `listeners` are Envoy's own (HTTP, HTTPS) addresses.
pub fn auth_cluster(service: &AuthService, listeners: (SocketAddr, SocketAddr), edge: &EdgeSettings) -> Cluster {
    external_cluster(service.cluster_name(), service, listeners, edge)
}

/// The cluster a request mirror copies to (`mirror-target`): the same kind as an auth service's.
pub fn mirror_cluster(mirror: &crate::model::Mirror, listeners: (SocketAddr, SocketAddr), edge: &EdgeSettings) -> Cluster {
    external_cluster(mirror.service.mirror_cluster_name(), &mirror.service, listeners, edge)
}

/// A gRPC service outside Kubernetes' Services (the OTLP collector): `host` resolved by DNS (or an
/// address), spoken to over HTTP/2 in plaintext.
pub fn grpc_cluster(name: &str, host: &str, port: u16, edge: &EdgeSettings) -> Cluster {
    let service = AuthService { tls: false, target: AuthTarget::Dns { host: host.to_string(), port } };
    let unused = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut cluster = external_cluster(ClusterName::from(name), &service, (unused, unused), edge);
    cluster.typed_extension_protocol_options.insert(HTTP_PROTOCOL_OPTIONS.to_string(), pack_any(http2_options()));
    cluster
}

/// A cluster outside Kubernetes' Services: a DNS name (or address), or Envoy's own listener.
fn external_cluster(name: ClusterName, service: &AuthService, listeners: (SocketAddr, SocketAddr), edge: &EdgeSettings) -> Cluster {
    let (discovery, address, sni) = match &service.target {
        AuthTarget::Dns { host, port } => {
            let sni = if host.parse::<std::net::IpAddr>().is_ok() { None } else { Some(host.clone()) };
            (cluster::DiscoveryType::StrictDns, socket_address(host, *port), sni)
        }
        AuthTarget::OwnListener => {
            let listener = if service.tls { listeners.1 } else { listeners.0 };
            (cluster::DiscoveryType::Static, own_address(listener), None)
        }
    };
    let endpoint = LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(envoy_types::pb::envoy::config::endpoint::v3::Endpoint {
            address: Some(address),
            ..Default::default()
        })),
        ..Default::default()
    };
    let tls = UpstreamTls { server_name: sni, ..Default::default() };
    let mut cluster = Cluster {
        name: name.to_string(),
        cluster_discovery_type: Some(cluster::ClusterDiscoveryType::Type(discovery as i32)),
        dns_lookup_family: cluster::DnsLookupFamily::V4Preferred as i32,
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name.to_string(),
            endpoints: vec![LocalityLbEndpoints { lb_endpoints: vec![endpoint], ..Default::default() }],
            ..Default::default()
        }),
        connect_timeout: Some(proto_duration(DEFAULT_CONNECT_TIMEOUT)),
        // A slow or failing DNS answer must not hold up Envoy's start or a CDS update: until the
        // name resolves, auth requests fail (500), nothing else waits.
        wait_for_warm_on_init: Some(envoy_types::pb::google::protobuf::BoolValue { value: false }),
        per_connection_buffer_limit_bytes: edge.buffer_limit(),
        transport_socket: service.tls.then(|| tls_transport_socket(&tls)),
        circuit_breakers: Some(no_circuit_breakers()),
        ..Default::default()
    };
    if service.tls && service.target == AuthTarget::OwnListener {
        // The listener picks its certificate by SNI: send the auth request's host.
        let options = HttpProtocolOptions {
            upstream_http_protocol_options: Some(envoy_types::pb::envoy::config::core::v3::UpstreamHttpProtocolOptions {
                auto_sni: true,
                ..Default::default()
            }),
            upstream_protocol_options: Some(http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
                http_protocol_options::ExplicitHttpConfig {
                    protocol_config: Some(http_protocol_options::explicit_http_config::ProtocolConfig::HttpProtocolOptions(
                        Default::default(),
                    )),
                },
            )),
            ..Default::default()
        };
        cluster.typed_extension_protocol_options.insert(HTTP_PROTOCOL_OPTIONS.to_string(), pack_any(options));
    }
    cluster
}

/// A listener address Envoy can connect to: an unspecified one (`0.0.0.0`, `::`) as loopback.
fn own_address(listener: SocketAddr) -> envoy_types::pb::envoy::config::core::v3::Address {
    let ip = match listener.ip() {
        ip if !ip.is_unspecified() => ip,
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    };
    socket_address(&ip.to_string(), listener.port())
}

/// ingress-nginx's `load-balance` (and the ring that affinity and `upstream-hash-by` need).
fn lb_policy(balance: Balance) -> cluster::LbPolicy {
    match balance {
        Balance::RoundRobin => cluster::LbPolicy::RoundRobin,
        Balance::LeastRequest => cluster::LbPolicy::LeastRequest,
        Balance::RingHash => cluster::LbPolicy::RingHash,
        // Within the subset: ingress-nginx's chashsubset picks a member at random.
        Balance::HashSubset { .. } => cluster::LbPolicy::Random,
    }
}

/// Subsets by the request's slot, an endpoint matching each slot its list holds; a request
/// without a slot, or one no endpoint lists (while endpoints change), goes to any endpoint.
fn subset_config() -> cluster::LbSubsetConfig {
    use cluster::lb_subset_config::{LbSubsetFallbackPolicy, LbSubsetSelector};
    cluster::LbSubsetConfig {
        fallback_policy: LbSubsetFallbackPolicy::AnyEndpoint as i32,
        subset_selectors: vec![LbSubsetSelector { keys: vec![SUBSET_METADATA_KEY.to_string()], ..Default::default() }],
        list_as_any: true,
        ..Default::default()
    }
}

/// The endpoints of `upstream`, in one locality.
pub fn load_assignment(upstream: &UpstreamCluster) -> ClusterLoadAssignment {
    let mut lb_endpoints: Vec<LbEndpoint> = upstream.endpoints.iter().map(lb_endpoint).collect();
    if let Balance::HashSubset { size } = upstream.options.balance {
        let slots = subset::endpoint_slots(lb_endpoints.len(), size as usize);
        for (endpoint, slots) in lb_endpoints.iter_mut().zip(slots) {
            endpoint.metadata = Some(slot_metadata(&slots));
        }
    }
    ClusterLoadAssignment {
        cluster_name: upstream.name.to_string(),
        endpoints: if lb_endpoints.is_empty() {
            Vec::new()
        } else {
            vec![LocalityLbEndpoints { lb_endpoints, ..Default::default() }]
        },
        ..Default::default()
    }
}

/// Circuit breakers that never open: the most connections, pending and active requests and
/// concurrent retries Envoy counts (Istio's defaults too).
fn no_circuit_breakers() -> CircuitBreakers {
    let most = Some(UInt32Value { value: u32::MAX });
    let thresholds = circuit_breakers::Thresholds {
        max_connections: most,
        max_pending_requests: most,
        max_requests: most,
        max_retries: most,
        ..Default::default()
    };
    CircuitBreakers { thresholds: vec![thresholds], ..Default::default() }
}

/// The stream and connection flow-control windows of upstream HTTP/2 (Envoy's edge guide).
const HTTP2_STREAM_WINDOW: u32 = 64 * 1024;
const HTTP2_CONNECTION_WINDOW: u32 = 1024 * 1024;

fn http2_options() -> HttpProtocolOptions {
    HttpProtocolOptions {
        upstream_protocol_options: Some(http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(
            http_protocol_options::ExplicitHttpConfig {
                protocol_config: Some(http_protocol_options::explicit_http_config::ProtocolConfig::Http2ProtocolOptions(Http2ProtocolOptions {
                    initial_stream_window_size: Some(UInt32Value { value: HTTP2_STREAM_WINDOW }),
                    initial_connection_window_size: Some(UInt32Value { value: HTTP2_CONNECTION_WINDOW }),
                    ..Default::default()
                })),
            },
        )),
        ..Default::default()
    }
}

fn tls_transport_socket(tls: &UpstreamTls) -> TransportSocket {
    TransportSocket {
        name: TLS_TRANSPORT_SOCKET.to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(upstream_tls_context(tls)))),
    }
}

fn upstream_tls_context(tls: &UpstreamTls) -> UpstreamTlsContext {
    let validation = tls.verify.as_ref().map(|verify| {
        common_tls_context::ValidationContextType::ValidationContext(CertificateValidationContext {
            trusted_ca: Some(DataSource {
                specifier: Some(data_source::Specifier::InlineString(verify.trusted_ca_pem.clone())),
                ..Default::default()
            }),
            match_typed_subject_alt_names: verify
                .name
                .iter()
                .map(|name| SubjectAltNameMatcher {
                    san_type: subject_alt_name_matcher::SanType::Dns as i32,
                    matcher: Some(StringMatcher {
                        match_pattern: Some(string_matcher::MatchPattern::Exact(name.clone())),
                        ignore_case: true,
                    }),
                    oid: String::new(),
                })
                .collect(),
            max_verify_depth: Some(UInt32Value { value: crate::translate::envoy::envoy_verify_depth(verify.max_depth) }),
            ..Default::default()
        })
    });
    UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: tls
                .client_certificate
                .iter()
                .map(|name| SdsSecretConfig { name: name.clone(), sds_config: Some(ads_config_source()) })
                .collect(),
            alpn_protocols: tls.alpn.clone(),
            validation_context_type: validation,
            tls_params: Some(TlsParameters {
                tls_minimum_protocol_version: version(tls.versions.min_tls13) as i32,
                tls_maximum_protocol_version: version(tls.versions.max_tls13) as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        sni: tls.server_name.clone().unwrap_or_default(),
        ..Default::default()
    }
}

fn version(tls13: bool) -> TlsProtocol {
    if tls13 {
        TlsProtocol::TlSv13
    } else {
        TlsProtocol::TlSv12
    }
}

/// `envoy.lb` metadata listing an endpoint's slots (strings, as the header-to-metadata filter
/// writes the request's).
fn slot_metadata(slots: &[u32]) -> Metadata {
    let list = ListValue { values: slots.iter().map(|slot| Value { kind: Some(value::Kind::StringValue(slot.to_string())) }).collect() };
    let fields = [(SUBSET_METADATA_KEY.to_string(), Value { kind: Some(value::Kind::ListValue(list)) })].into_iter().collect();
    Metadata { filter_metadata: [(ENVOY_LB.to_string(), Struct { fields })].into_iter().collect(), ..Default::default() }
}

/// The metadata namespace Envoy's subset load balancer matches.
pub const ENVOY_LB: &str = "envoy.lb";

fn lb_endpoint(endpoint: &Endpoint) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(
            envoy_types::pb::envoy::config::endpoint::v3::Endpoint {
                address: Some(socket_address(&endpoint.address, endpoint.port)),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use envoy_types::pb::google::protobuf::Duration as ProtoDuration;
    use std::time::Duration;
    use crate::model::{UpstreamOptions, UpstreamVerification};
    use envoy_types::pb::google::protobuf::Any;
    use prost::{Message, Name};

    fn unpack<T: Message + Default + Name>(any: &Any) -> T {
        assert_eq!(any.type_url, T::type_url());
        T::decode(any.value.as_slice()).unwrap()
    }

    fn cluster_with(options: UpstreamOptions) -> Cluster {
        let upstream = UpstreamCluster {
            name: options.cluster_name(&"default/api/443".into()),
            endpoints: vec![Endpoint { address: "10.0.0.1".into(), port: 8443 }],
            options,
        };
        eds_cluster(&upstream, &EdgeSettings::default())
    }

    fn tls_context(cluster: &Cluster) -> UpstreamTlsContext {
        let socket = cluster.transport_socket.as_ref().expect("a TLS transport socket");
        assert_eq!(socket.name, TLS_TRANSPORT_SOCKET);
        match &socket.config_type {
            Some(transport_socket::ConfigType::TypedConfig(any)) => unpack(any),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn default_options_keep_the_plain_cluster_name_and_speak_http1_in_clear() {
        let cluster = cluster_with(UpstreamOptions::default());
        assert_eq!(cluster.name, "default/api/443");
        assert!(cluster.transport_socket.is_none());
        assert!(cluster.typed_extension_protocol_options.is_empty());
        assert_eq!(cluster.connect_timeout, Some(ProtoDuration { seconds: 5, nanos: 0 }));
    }

    /// Envoy's default breakers (1 024 connections / pending / requests, 3 retries per cluster)
    /// would refuse what nginx serves: every cluster opens them wide.
    #[test]
    fn no_cluster_has_envoys_default_circuit_breakers() {
        let service = AuthService { tls: false, target: AuthTarget::Dns { host: "auth.example".into(), port: 80 } };
        let listeners = (SocketAddr::from(([127, 0, 0, 1], 80)), SocketAddr::from(([127, 0, 0, 1], 443)));
        let clusters = [
            cluster_with(UpstreamOptions::default()),
            cluster_with(UpstreamOptions { http2: true, ..UpstreamOptions::default() }),
            auth_cluster(&service, listeners, &EdgeSettings::default()),
            grpc_cluster("otel", "collector", 4317, &EdgeSettings::default()),
        ];
        for cluster in clusters {
            let breakers = cluster.circuit_breakers.as_ref().expect("circuit breakers");
            let [thresholds] = breakers.thresholds.as_slice() else { panic!("{}: one threshold set", cluster.name) };
            assert_eq!(thresholds.priority, 0, "{}: the default priority", cluster.name);
            for limit in [thresholds.max_connections, thresholds.max_pending_requests, thresholds.max_requests, thresholds.max_retries] {
                assert_eq!(limit, Some(UInt32Value { value: u32::MAX }), "{}", cluster.name);
            }
        }
    }

    #[test]
    fn grpc_is_http2_in_clear_with_its_own_cluster_name() {
        let cluster = cluster_with(UpstreamOptions { http2: true, ..UpstreamOptions::default() });
        assert!(cluster.name.starts_with("default/api/443~"), "{}", cluster.name);
        assert!(cluster.transport_socket.is_none());
        let options: HttpProtocolOptions = unpack(&cluster.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS]);
        assert_eq!(options, http2_options());
        let Some(http_protocol_options::UpstreamProtocolOptions::ExplicitHttpConfig(explicit)) = options.upstream_protocol_options else { panic!("explicit HTTP/2") };
        let Some(http_protocol_options::explicit_http_config::ProtocolConfig::Http2ProtocolOptions(http2)) = explicit.protocol_config else { panic!("HTTP/2") };
        // Envoy's edge guide, not its 256 MiB defaults: a backend cannot make Envoy buffer more.
        assert_eq!(http2.initial_stream_window_size, Some(UInt32Value { value: 65_536 }));
        assert_eq!(http2.initial_connection_window_size, Some(UInt32Value { value: 1_048_576 }));
    }

    #[test]
    fn https_by_default_sends_no_sni_and_checks_no_certificate_as_nginx() {
        let cluster = cluster_with(UpstreamOptions { tls: Some(UpstreamTls::default()), ..UpstreamOptions::default() });
        let context = tls_context(&cluster);
        assert_eq!(context.sni, "");
        let common = context.common_tls_context.unwrap();
        assert!(common.validation_context_type.is_none());
        assert!(common.tls_certificate_sds_secret_configs.is_empty());
        assert!(common.alpn_protocols.is_empty());
        let params = common.tls_params.unwrap();
        assert_eq!(
            (params.tls_minimum_protocol_version, params.tls_maximum_protocol_version),
            (TlsProtocol::TlSv12 as i32, TlsProtocol::TlSv13 as i32),
            "nginx's default proxy_ssl_protocols"
        );
    }

    #[test]
    fn verification_trusts_the_secrets_ca_and_matches_the_name() {
        let tls = UpstreamTls {
            server_name: Some("api.internal".into()),
            verify: Some(UpstreamVerification { trusted_ca_pem: "CA".into(), name: Some("api.internal".into()), max_depth: 2 }),
            client_certificate: Some("default/api-client".into()),
            alpn: vec!["h2".into()],
            versions: crate::model::TlsVersions::V1_2_ONLY,
        };
        let cluster = cluster_with(UpstreamOptions { http2: true, tls: Some(tls), connect_timeout: Duration::from_secs(30), service_upstream: false, balance: Balance::RingHash });
        assert_eq!(cluster.connect_timeout, Some(ProtoDuration { seconds: 30, nanos: 0 }));
        assert_eq!(cluster.lb_policy, cluster::LbPolicy::RingHash as i32);
        let context = tls_context(&cluster);
        assert_eq!(context.sni, "api.internal");
        let common = context.common_tls_context.unwrap();
        assert_eq!(common.alpn_protocols, vec!["h2"]);
        let params = common.tls_params.unwrap();
        assert_eq!(
            (params.tls_minimum_protocol_version, params.tls_maximum_protocol_version),
            (TlsProtocol::TlSv12 as i32, TlsProtocol::TlSv12 as i32)
        );
        assert_eq!(common.tls_certificate_sds_secret_configs[0].name, "default/api-client");
        let Some(common_tls_context::ValidationContextType::ValidationContext(validation)) = common.validation_context_type
        else {
            panic!("no validation context");
        };
        assert_eq!(
            validation.trusted_ca.unwrap().specifier,
            Some(data_source::Specifier::InlineString("CA".into()))
        );
        assert_eq!(validation.max_verify_depth, Some(UInt32Value { value: 3 }), "nginx's depth 2: two intermediates and the anchor");
        let matcher = &validation.match_typed_subject_alt_names[0];
        assert_eq!(matcher.san_type, subject_alt_name_matcher::SanType::Dns as i32);
        assert_eq!(
            matcher.matcher.as_ref().unwrap().match_pattern,
            Some(string_matcher::MatchPattern::Exact("api.internal".into()))
        );
    }

    #[test]
    fn distinct_options_of_one_service_port_get_distinct_names() {
        let grpc = UpstreamOptions { http2: true, ..UpstreamOptions::default() };
        let https = UpstreamOptions { tls: Some(UpstreamTls::default()), ..UpstreamOptions::default() };
        let slow = UpstreamOptions { connect_timeout: Duration::from_secs(30), ..UpstreamOptions::default() };
        let names: std::collections::BTreeSet<ClusterName> =
            [&grpc, &https, &slow, &UpstreamOptions::default()].iter().map(|o| o.cluster_name(&"ns/s/80".into())).collect();
        assert_eq!(names.len(), 4);
        assert_eq!(grpc.cluster_name(&"ns/s/80".into()), grpc.clone().cluster_name(&"ns/s/80".into()));
    }

    #[test]
    fn auth_services_are_dns_clusters_or_envoys_own_listener() {
        use crate::model::{AuthService, AuthTarget};
        let listeners: (SocketAddr, SocketAddr) = ("0.0.0.0:8080".parse().unwrap(), "127.0.0.2:8443".parse().unwrap());
        let address = |cluster: &Cluster| {
            let endpoint = &cluster.load_assignment.as_ref().unwrap().endpoints[0].lb_endpoints[0];
            let Some(lb_endpoint::HostIdentifier::Endpoint(endpoint)) = &endpoint.host_identifier else { panic!() };
            let Some(envoy_types::pb::envoy::config::core::v3::address::Address::SocketAddress(socket)) =
                &endpoint.address.as_ref().unwrap().address
            else {
                panic!()
            };
            (socket.address.clone(), socket.port_specifier.clone())
        };
        let port = |p: u32| Some(envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(p));
        let edge = EdgeSettings::default();

        let dns = AuthService { tls: true, target: AuthTarget::Dns { host: "auth.example.com".into(), port: 443 } };
        let cluster = auth_cluster(&dns, listeners, &edge);
        assert_eq!(cluster.name, "wasm-ingress:auth:https://auth.example.com:443");
        assert_eq!(cluster.cluster_discovery_type, Some(cluster::ClusterDiscoveryType::Type(cluster::DiscoveryType::StrictDns as i32)));
        assert_eq!(address(&cluster), ("auth.example.com".to_string(), port(443)));
        assert_eq!(tls_context(&cluster).sni, "auth.example.com");
        assert_eq!(cluster.wait_for_warm_on_init.map(|b| b.value), Some(false), "DNS never holds up Envoy");
        assert!(tls_context(&cluster).common_tls_context.unwrap().validation_context_type.is_none(), "not checked, as nginx");

        let plain_ip = AuthService { tls: false, target: AuthTarget::Dns { host: "10.0.0.5".into(), port: 4180 } };
        assert!(auth_cluster(&plain_ip, listeners, &edge).transport_socket.is_none());

        let own_http = auth_cluster(&AuthService { tls: false, target: AuthTarget::OwnListener }, listeners, &edge);
        assert_eq!(own_http.cluster_discovery_type, Some(cluster::ClusterDiscoveryType::Type(cluster::DiscoveryType::Static as i32)));
        assert_eq!(address(&own_http), ("127.0.0.1".to_string(), port(8080)), "an unspecified listener is reached on loopback");
        let own_https = auth_cluster(&AuthService { tls: true, target: AuthTarget::OwnListener }, listeners, &edge);
        assert_eq!(address(&own_https), ("127.0.0.2".to_string(), port(8443)));
        let options: HttpProtocolOptions = unpack(&own_https.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS]);
        assert!(options.upstream_http_protocol_options.unwrap().auto_sni, "SNI is the auth request's host");
    }

    #[test]
    fn hash_subsets_balance_at_random_over_the_endpoints_listing_the_requests_slot() {
        let options = UpstreamOptions { balance: Balance::HashSubset { size: 3 }, ..UpstreamOptions::default() };
        let cluster = cluster_with(options.clone());
        assert_eq!(cluster.lb_policy, cluster::LbPolicy::Random as i32, "random within the subset, as chashsubset");
        let subsets = cluster.lb_subset_config.expect("a subset balancer");
        assert!(subsets.list_as_any, "an endpoint is in every subset whose slot it lists");
        assert_eq!(subsets.fallback_policy, cluster::lb_subset_config::LbSubsetFallbackPolicy::AnyEndpoint as i32);
        assert_eq!(subsets.subset_selectors[0].keys, vec![SUBSET_METADATA_KEY.to_string()]);
        assert!(cluster_with(UpstreamOptions::default()).lb_subset_config.is_none());

        // Seven endpoints in runs of three: {0,1,2}, {3,4,5}, {6,0,1}.
        let endpoints = (1..=7).map(|i| Endpoint { address: format!("10.0.0.{i}"), port: 80 }).collect();
        let assignment = load_assignment(&UpstreamCluster { name: "default/api/80".into(), endpoints, options });
        let slots: Vec<Vec<String>> = assignment.endpoints[0]
            .lb_endpoints
            .iter()
            .map(|endpoint| {
                let metadata = endpoint.metadata.as_ref().expect("each endpoint lists its slots");
                let Some(value::Kind::ListValue(list)) = &metadata.filter_metadata[ENVOY_LB].fields[SUBSET_METADATA_KEY].kind else { panic!("{metadata:?}") };
                list.values.iter().map(|v| match &v.kind { Some(value::Kind::StringValue(s)) => s.clone(), other => panic!("{other:?}") }).collect()
            })
            .collect();
        let holders = |slot: &str| slots.iter().enumerate().filter(|(_, listed)| listed.iter().any(|s| s == slot)).map(|(i, _)| i).collect::<Vec<_>>();
        let mut seen = std::collections::BTreeSet::new();
        for slot in 0..subset::SLOTS {
            let members = holders(&slot.to_string());
            assert!([vec![0, 1, 2], vec![3, 4, 5], vec![0, 1, 6]].contains(&members), "slot {slot}: {members:?}");
            seen.insert(members);
        }
        assert_eq!(seen.len(), 3, "every subset gets slots");
        let plain = load_assignment(&UpstreamCluster { name: "default/api/80".into(), endpoints: vec![Endpoint { address: "10.0.0.1".into(), port: 80 }], options: UpstreamOptions::default() });
        assert!(plain.endpoints[0].lb_endpoints[0].metadata.is_none());
    }
}
