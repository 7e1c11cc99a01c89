//! `wasm-ingress bootstrap`: print an Envoy bootstrap (YAML) that needs no editing: node identity,
//! Envoy's admin address, and ADS (state of the world, xDS v3, gRPC over HTTP/2) to the control
//! plane at `--xds-address` for listeners and clusters (everything else follows over the same
//! stream).
//!
//! The bootstrap is built as structured data (serde_json values) and serialised to YAML — never
//! text templating — so no input can change its structure. Inputs are validated first.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::cli::BootstrapArgs;

/// Name of the static cluster that reaches the control plane.
pub const XDS_CLUSTER: &str = "xds_cluster";
/// `node.cluster` of every Envoy we bootstrap.
pub const NODE_CLUSTER: &str = "wasm-ingress";

/// Where the control plane is: an IP literal, or a DNS name resolved by Envoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XdsHost {
    Ip(IpAddr),
    Dns(String),
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
    if !is_dns_name(host) {
        bail!("--xds-address {text:?}: {host:?} is not an IP address or DNS name ({expected})");
    }
    Ok(XdsAddress { host: XdsHost::Dns(host.to_ascii_lowercase()), port })
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, 1-63 characters
/// each, 253 in all; a trailing dot is allowed.
fn is_dns_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
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

/// The bootstrap as a structured value.
pub fn bootstrap(xds: &XdsAddress, admin: SocketAddr, node_id: &str) -> anyhow::Result<Value> {
    validate_node_id(node_id)?;
    let (xds_host, discovery) = match &xds.host {
        XdsHost::Ip(ip) => (ip.to_string(), "STATIC"),
        XdsHost::Dns(name) => (name.clone(), "STRICT_DNS"),
    };
    let ads = json!({ "ads": {}, "resource_api_version": "V3" });
    Ok(json!({
        "node": { "id": node_id, "cluster": NODE_CLUSTER },
        "admin": { "address": socket_address(&admin.ip().to_string(), admin.port()) },
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [ { "envoy_grpc": { "cluster_name": XDS_CLUSTER } } ],
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
        // A connection limit, so Envoy does not run unbounded (and does not warn about it).
        "overload_manager": {
            "resource_monitors": [ {
                "name": "envoy.resource_monitors.global_downstream_max_connections",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig",
                    "max_active_downstream_connections": 50000
                }
            } ]
        }
    }))
}

/// The bootstrap YAML for the command line arguments.
pub fn render(args: &BootstrapArgs) -> anyhow::Result<String> {
    let xds = parse_xds_address(&args.xds_address)?;
    let value = bootstrap(&xds, args.admin_address, &args.node_id)?;
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

    #[test]
    fn xds_addresses() {
        let ok: Vec<(&str, XdsHost, u16)> = vec![
            ("127.0.0.1:18000", XdsHost::Ip("127.0.0.1".parse().unwrap()), 18000),
            ("[::1]:18000", XdsHost::Ip("::1".parse().unwrap()), 18000),
            ("xds.wasm-ingress.svc:18000", XdsHost::Dns("xds.wasm-ingress.svc".into()), 18000),
            ("Control-Plane.example.com.:1", XdsHost::Dns("control-plane.example.com.".into()), 1),
            ("localhost:18000", XdsHost::Dns("localhost".into()), 18000),
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
        assert_eq!(ads["api_type"], "GRPC");
        assert_eq!(ads["transport_api_version"], "V3");
        assert_eq!(ads["set_node_on_first_message_only"], true);
        assert_eq!(ads["grpc_services"][0]["envoy_grpc"]["cluster_name"], XDS_CLUSTER);
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
    }

    #[test]
    fn dns_names_use_strict_dns() {
        let yaml = parsed("xds.wasm-ingress.svc:18000");
        let cluster = &yaml["static_resources"]["clusters"][0];
        assert_eq!(cluster["type"], "STRICT_DNS");
        let endpoint = &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
        assert_eq!(endpoint["address"], "xds.wasm-ingress.svc");
        assert_eq!(parsed("[::1]:18000")["static_resources"]["clusters"][0]["type"], "STATIC");
    }

    #[test]
    fn node_id_cannot_inject_structure() {
        let xds = parse_xds_address("127.0.0.1:18000").unwrap();
        let admin = "127.0.0.1:9901".parse().unwrap();
        assert!(bootstrap(&xds, admin, "").is_err());
        assert!(bootstrap(&xds, admin, "a\nadmin: {}").is_err());
        // YAML-looking text stays a string.
        let value = bootstrap(&xds, admin, "x: {y: 1} # z").unwrap();
        let round_trip: Value = serde_yaml::from_str(&serde_yaml::to_string(&value).unwrap()).unwrap();
        assert_eq!(round_trip["node"]["id"], "x: {y: 1} # z");
    }
}
