//! Plain HTTP sent to the HTTPS port (`http://host:443/`): nginx answers it 400 "The plain HTTP
//! request was sent to HTTPS port" with its error page and closes the connection (its error 497),
//! where a TLS listener would only fail the handshake on bytes that are not a ClientHello. Envoy's
//! TLS inspector tells such a connection apart (transport protocol `raw_buffer`) and this filter
//! chain of the HTTPS listener answers every request on it so: a connection manager of its own
//! with the listeners' edge settings and access log, one inline route that answers directly,
//! Envoy's router alone (no route table, no wasm filter, nothing reaches an upstream).

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, FilterChainMatch};
use envoy_types::pb::envoy::config::route::v3::{route, route_match, DirectResponseAction, Route, RouteConfiguration, RouteMatch, VirtualHost};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::google::protobuf::UInt32Value;
use envoy_types::util::pack_any;

use crate::translate::edge::EdgeSettings;
use crate::translate::envoy::{http_connection_manager, router_filter, HCM_FILTER};
use crate::translate::routes::header;

/// nginx's page for its error 497.
pub const PLAIN_HTTP_BODY: &str = wasm_ingress_filter::decision::PLAIN_HTTP_TO_HTTPS_BODY;

/// The name of the chain, and the stat prefix of its connection manager.
pub const PLAIN_HTTP_CHAIN: &str = "plain-http-to-https-port";

/// What the TLS inspector calls a connection that does not start with a TLS ClientHello.
const RAW_BUFFER: &str = "raw_buffer";

/// The HTTPS listener's chain for connections that are not TLS.
pub fn chain(edge: &EdgeSettings) -> FilterChain {
    let mut manager = http_connection_manager(PLAIN_HTTP_CHAIN, "", edge);
    manager.route_specifier = Some(RouteSpecifier::RouteConfig(route_configuration()));
    manager.http_filters = vec![router_filter()];
    // nginx closes the connection after this answer (`r->keepalive = 0`): Envoy says
    // `Connection: close` on the first response.
    manager.common_http_protocol_options.get_or_insert_with(Default::default).max_requests_per_connection = Some(UInt32Value { value: 1 });
    FilterChain {
        name: PLAIN_HTTP_CHAIN.to_string(),
        filter_chain_match: Some(FilterChainMatch { transport_protocol: RAW_BUFFER.to_string(), ..Default::default() }),
        filters: vec![Filter { name: HCM_FILTER.to_string(), config_type: Some(filter::ConfigType::TypedConfig(pack_any(manager))) }],
        ..Default::default()
    }
}

/// Every request, whatever its host and path, answered 400 with nginx's page as `text/html`.
fn route_configuration() -> RouteConfiguration {
    let answer = DirectResponseAction {
        status: 400,
        body: Some(DataSource { specifier: Some(data_source::Specifier::InlineString(PLAIN_HTTP_BODY.to_string())), ..Default::default() }),
        ..Default::default()
    };
    RouteConfiguration {
        name: PLAIN_HTTP_CHAIN.to_string(),
        virtual_hosts: vec![VirtualHost {
            name: PLAIN_HTTP_CHAIN.to_string(),
            domains: vec!["*".to_string()],
            routes: vec![Route {
                r#match: Some(RouteMatch { path_specifier: Some(route_match::PathSpecifier::Prefix(String::new())), ..Default::default() }),
                action: Some(route::Action::DirectResponse(answer)),
                response_headers_to_add: vec![header("content-type", "text/html")],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

    #[test]
    fn plain_http_connections_get_nginx_s_400_and_the_connection_closes() {
        let chain = chain(&EdgeSettings::default());
        assert_eq!(chain.filter_chain_match.as_ref().unwrap().transport_protocol, "raw_buffer");
        assert!(chain.transport_socket.is_none(), "no TLS on a plain connection");
        let Some(filter::ConfigType::TypedConfig(any)) = &chain.filters[0].config_type else { panic!() };
        assert_eq!(any.type_url, <HttpConnectionManager as prost::Name>::type_url());
        let manager = <HttpConnectionManager as prost::Message>::decode(any.value.as_slice()).unwrap();
        assert_eq!(manager.http_filters.len(), 1, "the router alone");
        assert_eq!(manager.common_http_protocol_options.unwrap().max_requests_per_connection, Some(UInt32Value { value: 1 }));
        let Some(RouteSpecifier::RouteConfig(routes)) = manager.route_specifier else { panic!("inline routes, no RDS") };
        let route = &routes.virtual_hosts[0].routes[0];
        let Some(route::Action::DirectResponse(answer)) = &route.action else { panic!() };
        assert_eq!(answer.status, 400);
        let Some(data_source::Specifier::InlineString(body)) = &answer.body.as_ref().unwrap().specifier else { panic!() };
        assert!(body.starts_with("<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title></head>"), "{body}");
        assert!(body.contains("<center><h1>400 Bad Request</h1></center>\r\n<center>The plain HTTP request was sent to HTTPS port</center>"), "{body}");
    }
}
