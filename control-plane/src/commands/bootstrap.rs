//! `wasm-ingress bootstrap`: print an Envoy bootstrap (YAML) that needs no editing: node identity,
//! Envoy's admin address, and ADS (delta xDS by default, or state of the world; v3, gRPC over HTTP/2) to the control
//! plane at `--xds-address` for listeners and clusters (everything else follows over the same
//! stream). With `--xds-tls-dir` the xDS cluster speaks mutual TLS (Envoy's client certificate,
//! the server checked against the xDS CA and by name); the key stays in its file, never in the
//! bootstrap.
//!
//! The bootstrap is built as structured data (serde_json values) and serialised to YAML — never
//! text templating — so no input can change its structure. Inputs are validated first.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use wasm_ingress_filter::hostname::HostName;

use crate::cli::{BootstrapArgs, XdsProtocol};

/// Name of the static cluster that reaches the control plane.
pub const XDS_CLUSTER: &str = "xds_cluster";
/// `node.cluster` of every Envoy we bootstrap.
pub const NODE_CLUSTER: &str = "wasm-ingress";

/// Where the control plane is: an IP literal, or a DNS name resolved by Envoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XdsHost {
    Ip(IpAddr),
    /// `absolute`: written with a trailing dot (a fully qualified name, resolved without the
    /// resolver's search domains); kept so for resolution, dropped for the TLS server name.
    Dns { name: HostName, absolute: bool },
}

/// A validated `--xds-address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsAddress {
    pub host: XdsHost,
    pub port: u16,
}

/// Parse `HOST:PORT` (`10.0.0.1:18000`, `[::1]:18000`, `xds.example.svc:18000`). Anything else —
/// a URL, a missing or zero port, an invalid host name — is an error that says what was expected.
pub fn parse_xds_address(text: &str) -> anyhow::Result<XdsAddress> {
    let expected = "expected HOST:PORT, e.g. 127.0.0.1:18000, [::1]:18000 or xds.example.svc:18000";
    if let Ok(address) = text.parse::<SocketAddr>() {
        if address.port() == 0 {
            bail!("--xds-address {text:?}: port 0 is not a port to connect to ({expected})");
        }
        return Ok(XdsAddress { host: XdsHost::Ip(address.ip()), port: address.port() });
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        bail!("--xds-address {text:?}: no port ({expected})");
    };
    let port: u16 = match port.parse() {
        Ok(port) if port != 0 => port,
        _ => bail!("--xds-address {text:?}: {port:?} is not a port number 1-65535 ({expected})"),
    };
    if host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
        bail!("--xds-address {text:?}: IPv6 addresses need brackets, as in [::1]:18000");
    }
    let Ok(name) = HostName::dns(host) else {
        bail!("--xds-address {text:?}: {host:?} is not an IP address or DNS name ({expected})");
    };
    Ok(XdsAddress { host: XdsHost::Dns { name, absolute: host.ends_with('.') }, port })
}

fn validate_node_id(node_id: &str) -> anyhow::Result<()> {
    if node_id.trim().is_empty() {
        bail!("--node-id must not be empty");
    }
    if node_id.chars().any(char::is_control) {
        bail!("--node-id {node_id:?}: control characters are not allowed");
    }
    Ok(())
}

fn socket_address(address: &str, port: u16) -> Value {
    json!({ "socket_address": { "address": address, "port_value": port } })
}

/// Mutual TLS to the control plane: Envoy's credentials (paths as Envoy sees them) and the name
/// the server certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsTls {
    pub dir: std::path::PathBuf,
    pub server_name: String,
}

/// The `transport_socket` of the xDS cluster: TLS 1.2+, Envoy's client certificate, the server
/// verified against the xDS CA and by name (DNS or IP SAN).
fn xds_transport_socket(tls: &XdsTls) -> Value {
    use crate::commands::certgen::{CA_FILE, CERT_FILE, KEY_FILE};
    let file = |name: &str| json!({ "filename": tls.dir.join(name).display().to_string() });
    let is_ip = tls.server_name.parse::<IpAddr>().is_ok();
    let san_type = if is_ip { "IP_ADDRESS" } else { "DNS" };
    let mut context = json!({
        "common_tls_context": {
            "tls_params": { "tls_minimum_protocol_version": "TLSv1_2" },
            "alpn_protocols": ["h2"],
            "tls_certificates": [ { "certificate_chain": file(CERT_FILE), "private_key": file(KEY_FILE) } ],
            "validation_context": {
                "trusted_ca": file(CA_FILE),
                "match_typed_subject_alt_names": [ { "san_type": san_type, "matcher": { "exact": tls.server_name } } ]
            }
        }
    });
    if !is_ip {
        context["sni"] = json!(tls.server_name);
    }
    context["@type"] = json!("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
    json!({ "name": "envoy.transport_sockets.tls", "typed_config": context })
}

const HEAP_MONITOR: &str = "envoy.resource_monitors.fixed_heap";

/// Envoy's resource limits (overload manager).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvoyLimits {
    pub max_downstream_connections: u64,
    pub max_heap_bytes: u64,
}

impl Default for EnvoyLimits {
    /// Envoy's edge guide: 50 000 connections, 2 GiB of heap.
    fn default() -> EnvoyLimits {
        EnvoyLimits { max_downstream_connections: 50_000, max_heap_bytes: 2 * 1024 * 1024 * 1024 }
    }
}

/// The largest RE2 program Envoy compiles (see the bootstrap's `layered_runtime`).
pub const RE2_MAX_PROGRAM_SIZE: u32 = 100_000;

/// The bootstrap as a structured value.
pub fn bootstrap(
    xds: &XdsAddress,
    admin: SocketAddr,
    node_id: &str,
    tls: Option<&XdsTls>,
    limits: EnvoyLimits,
    protocol: XdsProtocol,
) -> anyhow::Result<Value> {
    validate_node_id(node_id)?;
    let (xds_host, discovery) = match &xds.host {
        XdsHost::Ip(ip) => (ip.to_string(), "STATIC"),
        XdsHost::Dns { name, absolute } => (format!("{name}{}", if *absolute { "." } else { "" }), "STRICT_DNS"),
    };
    let ads = json!({ "ads": {}, "resource_api_version": "V3" });
    let mut value = json!({
        "node": { "id": node_id, "cluster": NODE_CLUSTER },
        "admin": { "address": socket_address(&admin.ip().to_string(), admin.port()) },
        "dynamic_resources": {
            "ads_config": {
                "api_type": match protocol { XdsProtocol::Delta => "DELTA_GRPC", XdsProtocol::Sotw => "GRPC" },
                "transport_api_version": "V3",
                // Reconnect within seconds of the control plane coming back (Envoy's default backoff
                // grows to 30 s), without hammering it: 0.25 s doubling, jittered, at most 5 s.
                "grpc_services": [ {
                    "envoy_grpc": {
                        "cluster_name": XDS_CLUSTER,
                        "retry_policy": { "retry_back_off": { "base_interval": "0.25s", "max_interval": "5s" } }
                    }
                } ],
                "set_node_on_first_message_only": true
            },
            "lds_config": ads.clone(),
            "cds_config": ads
        },
        "static_resources": {
            "clusters": [ {
                "name": XDS_CLUSTER,
                "type": discovery,
                "connect_timeout": "1s",
                "load_assignment": {
                    "cluster_name": XDS_CLUSTER,
                    "endpoints": [ { "lb_endpoints": [ { "endpoint": { "address": socket_address(&xds_host, xds.port) } } ] } ]
                },
                // gRPC needs HTTP/2 to the control plane.
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {
                            "http2_protocol_options": {
                                "connection_keepalive": { "interval": "30s", "timeout": "10s" }
                            }
                        }
                    }
                },
                "upstream_connection_options": { "tcp_keepalive": {} }
            } ]
        },
        // Each cluster's traffic statistics are created when the cluster first carries a request,
        // not with the cluster: at 10 000 Services this halves the time Envoy takes to apply a
        // CDS update (3.0 s -> 1.3 s) and saves about a quarter of its memory (800 -> 580 MiB),
        // measured in `make bench`'s propagation setup. The statistics read the same once used.
        "deferred_stat_options": { "enable_deferred_creation_stats": true },
        // RE2 programs of up to 100 000 instructions (Envoy's default refuses more than 100): the
        // global blocks by header (`serve --block-user-agents`) are users' regular expressions,
        // and a refused one would stop Envoy taking the listeners. `serve` bounds them first
        // (`translate::blocks`: at most a few thousand instructions each); RE2 stays linear in
        // time. The admin layer is Envoy's default one, kept.
        "layered_runtime": {
            "layers": [
                { "name": "static", "static_layer": { "re2.max_program_size.error_level": RE2_MAX_PROGRAM_SIZE } },
                { "name": "admin", "admin_layer": {} }
            ]
        },
        // Envoy's edge guide: a connection limit, and a heap limit past which Envoy first shrinks
        // its heap, then stops accepting requests instead of being killed for memory.
        "overload_manager": {
            "refresh_interval": "0.25s",
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                        "max_active_downstream_connections": limits.max_downstream_connections
                    }
                },
                {
                    "name": HEAP_MONITOR,
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
                        "max_heap_size_bytes": limits.max_heap_bytes
                    }
                }
            ],
            "actions": [
                { "name": "envoy.overload_actions.shrink_heap",
                  "triggers": [ { "name": HEAP_MONITOR, "threshold": { "value": 0.95 } } ] },
                { "name": "envoy.overload_actions.stop_accepting_requests",
                  "triggers": [ { "name": HEAP_MONITOR, "threshold": { "value": 0.98 } } ] }
            ]
        }
    });
    if let Some(tls) = tls {
        value["static_resources"]["clusters"][0]["transport_socket"] = xds_transport_socket(tls);
    }
    Ok(value)
}

/// The bootstrap YAML for the command line arguments.
pub fn render(args: &BootstrapArgs) -> anyhow::Result<String> {
    let xds = parse_xds_address(&args.xds_address)?;
    let tls = args.xds_tls_dir.as_ref().map(|dir| XdsTls {
        dir: dir.clone(),
        server_name: args.xds_server_name.clone().unwrap_or_else(|| match &xds.host {
            XdsHost::Ip(ip) => ip.to_string(),
            XdsHost::Dns { name, .. } => name.to_string(),
        }),
    });
    let limits =
        EnvoyLimits { max_downstream_connections: args.max_downstream_connections, max_heap_bytes: args.max_heap_bytes };
    let value = bootstrap(&xds, args.admin_address, &args.node_id, tls.as_ref(), limits, args.xds_protocol)?;
    serde_yaml::to_string(&value).context("serialising the bootstrap")
}

pub fn run(args: BootstrapArgs) -> anyhow::Result<ExitCode> {
    print!("{}", render(&args)?);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn dns(name: &str, absolute: bool) -> XdsHost {
        XdsHost::Dns { name: HostName::dns(name).unwrap(), absolute }
    }

    #[test]
    fn xds_addresses() {
        let ok: Vec<(&str, XdsHost, u16)> = vec![
            ("127.0.0.1:18000", XdsHost::Ip("127.0.0.1".parse().unwrap()), 18000),
            ("[::1]:18000", XdsHost::Ip("::1".parse().unwrap()), 18000),
            ("xds.wasm-ingress.svc:18000", dns("xds.wasm-ingress.svc", false), 18000),
            ("Control-Plane.example.com.:1", dns("control-plane.example.com", true), 1),
            ("localhost:18000", dns("localhost", false), 18000),
        ];
        for (text, host, port) in ok {
            assert_eq!(parse_xds_address(text).unwrap(), XdsAddress { host, port }, "{text}");
        }
        let bad: Vec<(&str, &str)> = vec![
            ("127.0.0.1", "no port"),
            ("xds.example.com", "no port"),
            ("127.0.0.1:0", "port 0"),
            ("xds:0", "not a port number"),
            ("xds:65536", "not a port number"),
            ("xds:http", "not a port number"),
            ("http://xds:18000", "not an IP address or DNS name"),
            ("xds:18000/path", "not a port number"),
            (":18000", "not an IP address or DNS name"),
            ("::1:18000", "need brackets"),
            ("bad_host:18000", "not an IP address or DNS name"),
            ("-bad.example:18000", "not an IP address or DNS name"),
            ("a b:18000", "not an IP address or DNS name"),
            ("x\ny:18000", "not an IP address or DNS name"),
        ];
        for (text, reason) in bad {
            let error = parse_xds_address(text).unwrap_err().to_string();
            assert!(error.contains(reason), "{text}: {error}");
            assert!(error.contains("--xds-address"), "{text}: {error}");
        }
    }

    fn parsed(xds: &str) -> Value {
        let args = BootstrapArgs {
            xds_address: xds.into(),
            admin_address: "127.0.0.1:9901".parse().unwrap(),
            node_id: "edge-1".into(),
            xds_tls_dir: None,
            xds_server_name: None,
            max_downstream_connections: 50_000,
            max_heap_bytes: 1 << 31,
            xds_protocol: XdsProtocol::Delta,
        };
        serde_yaml::from_str(&render(&args).unwrap()).unwrap()
    }

    #[test]
    fn bootstrap_connects_over_ads_to_the_given_address() {
        let yaml = parsed("127.0.0.1:18000");
        assert_eq!(yaml["node"]["id"], "edge-1");
        assert_eq!(yaml["node"]["cluster"], NODE_CLUSTER);
        assert_eq!(yaml["admin"]["address"]["socket_address"]["port_value"], 9901);
        let ads = &yaml["dynamic_resources"]["ads_config"];
        assert_eq!(ads["api_type"], "DELTA_GRPC", "delta xDS by default");
        assert_eq!(ads["transport_api_version"], "V3");
        assert_eq!(ads["set_node_on_first_message_only"], true);
        assert_eq!(ads["grpc_services"][0]["envoy_grpc"]["cluster_name"], XDS_CLUSTER);
        let back_off = &ads["grpc_services"][0]["envoy_grpc"]["retry_policy"]["retry_back_off"];
        assert_eq!((back_off["base_interval"].as_str(), back_off["max_interval"].as_str()), (Some("0.25s"), Some("5s")), "reconnects within 5 s");
        for config in ["lds_config", "cds_config"] {
            assert_eq!(yaml["dynamic_resources"][config]["ads"], json!({}));
            assert_eq!(yaml["dynamic_resources"][config]["resource_api_version"], "V3");
        }
        let cluster = &yaml["static_resources"]["clusters"][0];
        assert_eq!(cluster["name"], XDS_CLUSTER);
        assert_eq!(cluster["type"], "STATIC");
        let endpoint = &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
        assert_eq!((endpoint["address"].as_str(), endpoint["port_value"].as_u64()), (Some("127.0.0.1"), Some(18000)));
        let http = &cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
        assert!(http["explicit_http_config"]["http2_protocol_options"].is_object());
        let overload = &yaml["overload_manager"];
        assert_eq!(overload["resource_monitors"][0]["typed_config"]["max_active_downstream_connections"], 50_000);
        assert_eq!(overload["resource_monitors"][1]["typed_config"]["max_heap_size_bytes"], 1u64 << 31);
        let actions: Vec<&str> = overload["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert_eq!(actions, ["envoy.overload_actions.shrink_heap", "envoy.overload_actions.stop_accepting_requests"]);
        let layers = &yaml["layered_runtime"]["layers"];
        assert_eq!(layers[0]["static_layer"]["re2.max_program_size.error_level"], RE2_MAX_PROGRAM_SIZE, "users' block regexes fit");
        assert!(layers[1]["admin_layer"].is_object(), "Envoy's default admin layer is kept");
    }

    #[test]
    fn dns_names_use_strict_dns() {
        let yaml = parsed("xds.wasm-ingress.svc:18000");
        let cluster = &yaml["static_resources"]["clusters"][0];
        assert_eq!(cluster["type"], "STRICT_DNS");
        let endpoint = &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
        assert_eq!(endpoint["address"], "xds.wasm-ingress.svc");
        assert_eq!(parsed("[::1]:18000")["static_resources"]["clusters"][0]["type"], "STATIC");
        // A fully qualified name stays absolute for the resolver.
        let yaml = parsed("XDS.wasm-ingress.svc.cluster.local.:18000");
        let endpoint = &yaml["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
        assert_eq!(endpoint["address"], "xds.wasm-ingress.svc.cluster.local.");
    }

    #[test]
    fn node_id_cannot_inject_structure() {
        let xds = parse_xds_address("127.0.0.1:18000").unwrap();
        let admin = "127.0.0.1:9901".parse().unwrap();
        assert!(bootstrap(&xds, admin, "", None, EnvoyLimits::default(), XdsProtocol::Delta).is_err());
        assert!(bootstrap(&xds, admin, "a\nadmin: {}", None, EnvoyLimits::default(), XdsProtocol::Delta).is_err());
        // YAML-looking text stays a string.
        let value = bootstrap(&xds, admin, "x: {y: 1} # z", None, EnvoyLimits::default(), XdsProtocol::Delta).unwrap();
        let round_trip: Value = serde_yaml::from_str(&serde_yaml::to_string(&value).unwrap()).unwrap();
        assert_eq!(round_trip["node"]["id"], "x: {y: 1} # z");
    }

    #[test]
    fn tls_bootstrap_presents_envoys_certificate_and_verifies_the_server_by_name() {
        let args = |xds: &str, name: Option<&str>| BootstrapArgs {
            xds_address: xds.into(),
            admin_address: "127.0.0.1:9901".parse().unwrap(),
            node_id: "edge-1".into(),
            xds_tls_dir: Some("/etc/wasm-ingress/xds-tls".into()),
            xds_server_name: name.map(Into::into),
            max_downstream_connections: 50_000,
            max_heap_bytes: 1 << 31,
            xds_protocol: XdsProtocol::Delta,
        };
        let yaml: Value = serde_yaml::from_str(&render(&args("wasm-ingress-xds.wasm-ingress.svc:18000", None)).unwrap()).unwrap();
        let socket = &yaml["static_resources"]["clusters"][0]["transport_socket"];
        assert_eq!(socket["name"], "envoy.transport_sockets.tls");
        let context = &socket["typed_config"];
        assert_eq!(context["@type"], "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
        assert_eq!(context["sni"], "wasm-ingress-xds.wasm-ingress.svc");
        let common = &context["common_tls_context"];
        assert_eq!(common["tls_certificates"][0]["certificate_chain"]["filename"], "/etc/wasm-ingress/xds-tls/tls.crt");
        assert_eq!(common["tls_certificates"][0]["private_key"]["filename"], "/etc/wasm-ingress/xds-tls/tls.key");
        assert_eq!(common["validation_context"]["trusted_ca"]["filename"], "/etc/wasm-ingress/xds-tls/ca.crt");
        let san = &common["validation_context"]["match_typed_subject_alt_names"][0];
        assert_eq!((san["san_type"].as_str(), san["matcher"]["exact"].as_str()), (Some("DNS"), Some("wasm-ingress-xds.wasm-ingress.svc")));
        // The server name of a fully qualified address has no trailing dot.
        let yaml: Value = serde_yaml::from_str(&render(&args("xds.wasm-ingress.svc.:18000", None)).unwrap()).unwrap();
        assert_eq!(yaml["static_resources"]["clusters"][0]["transport_socket"]["typed_config"]["sni"], "xds.wasm-ingress.svc");
        // An IP address is matched as an IP SAN, without SNI.
        let yaml: Value = serde_yaml::from_str(&render(&args("127.0.0.1:18000", None)).unwrap()).unwrap();
        let context = &yaml["static_resources"]["clusters"][0]["transport_socket"]["typed_config"];
        assert!(context.get("sni").is_none());
        assert_eq!(context["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"][0]["san_type"], "IP_ADDRESS");
        // Without TLS there is no transport socket at all.
        assert!(parsed("127.0.0.1:18000")["static_resources"]["clusters"][0].get("transport_socket").is_none());
    }
}
