//! Envoy's own answers to upstream failures, as nginx gives them. Envoy answers 503 when it
//! cannot connect to an upstream or the upstream resets before answering, where nginx's proxy
//! answers 502 Bad Gateway (its `proxy_next_upstream` tries exhausted); monitoring and clients that
//! tell a dead backend (502) from a Service without endpoints (503) keep telling them apart. A
//! Service without ready endpoints stays 503 (ingress-nginx's default backend answers it so) and an
//! upstream that does not answer in time stays 504, each with nginx's status line as body, like
//! the filter's own answers. Typed config only: one `LocalReplyConfig` on the HTTP connection
//! manager, matching on Envoy's response flags (the filter's own answers carry none).

use envoy_types::pb::envoy::config::accesslog::v3::{access_log_filter, AccessLogFilter, ResponseFlagFilter};
use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{LocalReplyConfig, ResponseMapper};
use envoy_types::pb::google::protobuf::UInt32Value;

/// nginx's 502 status line.
pub const BAD_GATEWAY_BODY: &str = "502 Bad Gateway\n";

/// nginx's 504 status line.
pub const GATEWAY_TIMEOUT_BODY: &str = "504 Gateway Time-out\n";

/// (Envoy response flags, status, body), first match wins: connection failure, reset before the
/// answer and retries exhausted on them → 502; no healthy upstream → 503; upstream timeout → 504.
const MAPPINGS: [(&[&str], u32, &str); 3] = [
    (&["UF", "UC", "UR", "URX"], 502, BAD_GATEWAY_BODY),
    (&["UH"], 503, wasm_ingress_filter::decision::UNAVAILABLE_BODY),
    (&["UT"], 504, GATEWAY_TIMEOUT_BODY),
];

/// The HTTP connection manager's local reply mappers.
pub fn local_reply_config() -> LocalReplyConfig {
    let mappers = MAPPINGS
        .iter()
        .map(|(flags, status, body)| ResponseMapper {
            filter: Some(AccessLogFilter {
                filter_specifier: Some(access_log_filter::FilterSpecifier::ResponseFlagFilter(ResponseFlagFilter {
                    flags: flags.iter().map(|f| f.to_string()).collect(),
                })),
            }),
            status_code: Some(UInt32Value { value: *status }),
            body: Some(DataSource { specifier: Some(data_source::Specifier::InlineString(body.to_string())), ..Default::default() }),
            ..Default::default()
        })
        .collect();
    LocalReplyConfig { mappers, ..Default::default() }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_502_no_endpoints_503_timeouts_504() {
        let config = local_reply_config();
        let rows: Vec<(Vec<String>, u32, String)> = config
            .mappers
            .iter()
            .map(|m| {
                let Some(access_log_filter::FilterSpecifier::ResponseFlagFilter(filter)) = m.filter.clone().unwrap().filter_specifier else { panic!() };
                let Some(data_source::Specifier::InlineString(body)) = m.body.clone().unwrap().specifier else { panic!() };
                (filter.flags, m.status_code.unwrap().value, body)
            })
            .collect();
        let flags = |list: &[&str]| list.iter().map(|f| f.to_string()).collect::<Vec<_>>();
        assert_eq!(rows[0], (flags(&["UF", "UC", "UR", "URX"]), 502, "502 Bad Gateway\n".to_string()));
        assert_eq!(rows[1], (flags(&["UH"]), 503, "503 Service Temporarily Unavailable\n".to_string()));
        assert_eq!(rows[2], (flags(&["UT"]), 504, "504 Gateway Time-out\n".to_string()));
    }
}
