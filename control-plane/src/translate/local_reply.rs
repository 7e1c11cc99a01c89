//! Envoy's own answers to upstream failures, as nginx gives them. Envoy answers 503 when it
//! cannot connect to an upstream or the upstream resets before answering, where nginx's proxy
//! answers 502 Bad Gateway (its `proxy_next_upstream` tries exhausted); monitoring and clients that
//! tell a dead backend (502) from a Service without endpoints (503) keep telling them apart. A
//! connection attempt that times out (`proxy-connect-timeout`) is nginx's 504 Gateway Time-out, as
//! is an upstream that does not answer in time; a Service without ready endpoints stays 503
//! (ingress-nginx's default backend answers it so). Each has nginx's status line as body, like the
//! filter's own answers. Typed config only: one `LocalReplyConfig` on the HTTP connection manager,
//! matching on Envoy's response flags (the filter's own answers carry none) and, for the connect
//! timeout, which Envoy flags `UF` like any connection failure, on its response code details
//! through Envoy's CEL access-log filter. Mappers run on Envoy's local replies only, never on an
//! upstream's answer, so the forward path pays nothing for them.

use envoy_types::pb::envoy::config::accesslog::v3::{access_log_filter, AccessLogFilter, ExtensionFilter, ResponseFlagFilter};
use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::extensions::access_loggers::filters::cel::v3::ExpressionFilter;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{LocalReplyConfig, ResponseMapper};
use envoy_types::pb::envoy::config::accesslog::v3::extension_filter::ConfigType;
use envoy_types::pb::google::protobuf::UInt32Value;
use envoy_types::util::pack_any;

/// nginx's 502 status line.
pub const BAD_GATEWAY_BODY: &str = "502 Bad Gateway\n";

/// nginx's 504 status line.
pub const GATEWAY_TIMEOUT_BODY: &str = "504 Gateway Time-out\n";

/// The response code details of a stream whose upstream connection attempt timed out (the last
/// try's, after retries too): `upstream_reset_before_response_started{connection_timeout}`.
const CONNECT_TIMEOUT_EXPRESSION: &str = "response.code_details.contains('{connection_timeout')";

/// Which of Envoy's local replies a mapper rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Any of these response flags.
    Flags(&'static [&'static str]),
    /// This CEL expression over the stream's attributes is true.
    Expression(&'static str),
}

/// (failure, status, body), first match wins: connect timeout → 504; connection failure, reset
/// before the answer and retries exhausted on them → 502; no healthy upstream → 503; upstream
/// timeout → 504.
const MAPPINGS: [(Failure, u32, &str); 4] = [
    (Failure::Expression(CONNECT_TIMEOUT_EXPRESSION), 504, GATEWAY_TIMEOUT_BODY),
    (Failure::Flags(&["UF", "UC", "UR", "URX"]), 502, BAD_GATEWAY_BODY),
    (Failure::Flags(&["UH"]), 503, wasm_ingress_filter::decision::UNAVAILABLE_BODY),
    (Failure::Flags(&["UT"]), 504, GATEWAY_TIMEOUT_BODY),
];

/// The HTTP connection manager's local reply mappers.
pub fn local_reply_config() -> LocalReplyConfig {
    let mappers = MAPPINGS
        .iter()
        .map(|(failure, status, body)| ResponseMapper {
            filter: Some(AccessLogFilter { filter_specifier: Some(filter(*failure)) }),
            status_code: Some(UInt32Value { value: *status }),
            body: Some(DataSource { specifier: Some(data_source::Specifier::InlineString(body.to_string())), ..Default::default() }),
            ..Default::default()
        })
        .collect();
    LocalReplyConfig { mappers, ..Default::default() }
}

/// The access-log filter that selects `failure`.
fn filter(failure: Failure) -> access_log_filter::FilterSpecifier {
    match failure {
        Failure::Flags(flags) => access_log_filter::FilterSpecifier::ResponseFlagFilter(ResponseFlagFilter {
            flags: flags.iter().map(|f| f.to_string()).collect(),
        }),
        Failure::Expression(expression) => {
            let config = ExpressionFilter { expression: expression.to_string(), ..Default::default() };
            access_log_filter::FilterSpecifier::ExtensionFilter(ExtensionFilter {
                name: "envoy.access_loggers.extension_filters.cel".into(),
                config_type: Some(ConfigType::TypedConfig(pack_any(config))),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use prost::Message;

    /// What a mapper matches, as text: its flags, or `cel: <expression>`.
    fn selects(mapper: &ResponseMapper) -> String {
        match mapper.filter.clone().unwrap().filter_specifier.unwrap() {
            access_log_filter::FilterSpecifier::ResponseFlagFilter(filter) => filter.flags.join(","),
            access_log_filter::FilterSpecifier::ExtensionFilter(filter) => {
                let Some(ConfigType::TypedConfig(any)) = filter.config_type else { panic!() };
                assert_eq!(any.type_url, "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter");
                format!("cel: {}", ExpressionFilter::decode(any.value.as_slice()).unwrap().expression)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connect_timeouts_are_504_connection_failures_502_no_endpoints_503_timeouts_504() {
        let rows: Vec<(String, u32, String)> = local_reply_config()
            .mappers
            .iter()
            .map(|m| {
                let Some(data_source::Specifier::InlineString(body)) = m.body.clone().unwrap().specifier else { panic!() };
                (selects(m), m.status_code.unwrap().value, body)
            })
            .collect();
        let row = |selects: &str, status: u32, body: &str| (selects.to_string(), status, body.to_string());
        assert_eq!(
            rows,
            [
                row("cel: response.code_details.contains('{connection_timeout')", 504, "504 Gateway Time-out\n"),
                row("UF,UC,UR,URX", 502, "502 Bad Gateway\n"),
                row("UH", 503, "503 Service Temporarily Unavailable\n"),
                row("UT", 504, "504 Gateway Time-out\n"),
            ]
        );
    }
}
