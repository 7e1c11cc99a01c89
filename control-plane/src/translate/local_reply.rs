//! Envoy's own answers to upstream failures, as nginx gives them. Envoy answers 503 when it
//! cannot connect to an upstream or the upstream resets before answering, where nginx's proxy
//! answers 502 Bad Gateway (its `proxy_next_upstream` tries exhausted); monitoring and clients that
//! tell a dead backend (502) from a Service without endpoints (503) keep telling them apart. A
//! connection attempt that times out (`proxy-connect-timeout`) is nginx's 504 Gateway Time-out, as
//! is an upstream that does not answer in time; a Service without ready endpoints stays 503
//! (ingress-nginx's default backend answers it so). Each has nginx's page as body, as `text/html`
//! like the filter's own answers, and so have the 403 of Envoy's RBAC (source ranges, blocks by
//! header) and the answer of Envoy's local rate limit past `limit-rps` (its status,
//! `limit-req-status-code`, kept: Envoy's own body is `local_rate_limited`). Typed config only:
//! one `LocalReplyConfig` on the HTTP connection manager,
//! matching on Envoy's response flags (the filter's own answers carry none) and, for the connect
//! timeout, which Envoy flags `UF` like any connection failure, on its response code details
//! through Envoy's CEL access-log filter. Mappers run on Envoy's local replies only, never on an
//! upstream's answer, so the forward path pays nothing for them.

use envoy_types::pb::envoy::config::accesslog::v3::{
    access_log_filter, comparison_filter, AccessLogFilter, AndFilter, ComparisonFilter, ExtensionFilter, ResponseFlagFilter, StatusCodeFilter,
};
use envoy_types::pb::envoy::config::core::v3::{data_source, substitution_format_string, DataSource, RuntimeUInt32, SubstitutionFormatString};
use envoy_types::pb::envoy::extensions::access_loggers::filters::cel::v3::ExpressionFilter;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{LocalReplyConfig, ResponseMapper};
use envoy_types::pb::envoy::config::accesslog::v3::extension_filter::ConfigType;
use envoy_types::pb::google::protobuf::UInt32Value;
use envoy_types::util::pack_any;

/// nginx's 502 page.
pub const BAD_GATEWAY_BODY: &str = wasm_ingress_filter::decision::status_body(502);

/// nginx's 504 page.
pub const GATEWAY_TIMEOUT_BODY: &str = wasm_ingress_filter::decision::status_body(504);

/// The response code details of a stream whose upstream connection attempt timed out (the last
/// try's, after retries too): `upstream_reset_before_response_started{connection_timeout}`.
const CONNECT_TIMEOUT_EXPRESSION: &str = "response.code_details.contains('{connection_timeout')";

/// The response code details of Envoy's local rate limit's answer. Not its response flag (`RL`):
/// the filter sets that only after its local reply, so mappers do not see it.
const RATE_LIMITED_EXPRESSION: &str = "response.code_details == 'local_rate_limited'";

/// The response code details of a request Envoy's RBAC refused (a route's source ranges, the
/// global blocks by header): `rbac_access_denied_matched_policy[…]`.
const RBAC_DENIED_EXPRESSION: &str = "response.code_details.startsWith('rbac_access_denied')";

/// The response code details of the buffer filter's answer to a body over `proxy-body-size`.
const PAYLOAD_TOO_LARGE_EXPRESSION: &str = "response.code_details == 'request_payload_too_large'";

/// nginx's 413 page (`413 Request Entity Too Large`).
const PAYLOAD_TOO_LARGE_BODY: &str = wasm_ingress_filter::decision::status_body(413);

/// Which of Envoy's local replies a mapper rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Any of these response flags.
    Flags(&'static [&'static str]),
    /// This CEL expression over the stream's attributes is true.
    Expression(&'static str),
}

/// (failure, status, body), first match wins: connect timeout → 504; connection failure, reset
/// before the answer, an answer that is not HTTP (`UPE`: plain HTTP to a TLS port) and retries
/// exhausted on them → 502; no healthy upstream → 503; upstream timeout → 504; refused by RBAC →
/// 403 with nginx's page (Envoy's own body is `RBAC: access denied`); a body over
/// `proxy-body-size` → nginx's 413 page (Envoy's own is `Payload Too Large`).
const MAPPINGS: [(Failure, u32, &str); 6] = [
    (Failure::Expression(CONNECT_TIMEOUT_EXPRESSION), 504, GATEWAY_TIMEOUT_BODY),
    (Failure::Flags(&["UF", "UC", "UR", "URX", "UPE"]), 502, BAD_GATEWAY_BODY),
    (Failure::Flags(&["UH"]), 503, wasm_ingress_filter::decision::UNAVAILABLE_BODY),
    (Failure::Flags(&["UT"]), 504, GATEWAY_TIMEOUT_BODY),
    (Failure::Expression(RBAC_DENIED_EXPRESSION), 403, wasm_ingress_filter::decision::FORBIDDEN_BODY),
    (Failure::Expression(PAYLOAD_TOO_LARGE_EXPRESSION), 413, PAYLOAD_TOO_LARGE_BODY),
];

/// The statuses `limit-req-status-code` takes (400–599) for which nginx has a page.
fn rate_limit_statuses() -> impl Iterator<Item = u16> {
    (400..600).filter(|status| !wasm_ingress_filter::decision::status_body(*status).is_empty())
}

/// The HTTP connection manager's local reply mappers: [`MAPPINGS`], then one per status a rate
/// limit may answer, which keeps the status and sets its page, then the 404 of a host's implicit
/// `/` location (a route that answers 404 for a cluster Envoy does not have: `NC`), nginx's page.
pub fn local_reply_config() -> LocalReplyConfig {
    let failures = MAPPINGS.iter().map(|(failure, status, body)| mapper(filter(*failure), Some(*status), body));
    let rate_limited = rate_limit_statuses().map(|status| {
        let both = AndFilter { filters: vec![selecting(cel(RATE_LIMITED_EXPRESSION)), selecting(answered(status))] };
        mapper(access_log_filter::FilterSpecifier::AndFilter(both), None, wasm_ingress_filter::decision::status_body(status))
    });
    let unknown_cluster = AndFilter { filters: vec![selecting(flagged(&["NC"])), selecting(answered(404))] };
    let not_found = mapper(access_log_filter::FilterSpecifier::AndFilter(unknown_cluster), None, wasm_ingress_filter::decision::NOT_FOUND_BODY);
    LocalReplyConfig { mappers: failures.chain(rate_limited).chain([not_found]).collect(), ..Default::default() }
}

/// A mapper of the local replies `selects` picks: to `status` (`None`: kept) with `body`, one of
/// nginx's pages, as `text/html` (ingress-nginx's `default_type`; Envoy would say `text/plain`).
fn mapper(selects: access_log_filter::FilterSpecifier, status: Option<u32>, body: &str) -> ResponseMapper {
    let as_is = DataSource { specifier: Some(data_source::Specifier::InlineString("%LOCAL_REPLY_BODY%".into())), ..Default::default() };
    ResponseMapper {
        filter: Some(selecting(selects)),
        status_code: status.map(|value| UInt32Value { value }),
        body: Some(DataSource { specifier: Some(data_source::Specifier::InlineString(body.to_string())), ..Default::default() }),
        body_format_override: Some(SubstitutionFormatString {
            format: Some(substitution_format_string::Format::TextFormatSource(as_is)),
            content_type: wasm_ingress_filter::decision::ANSWER_CONTENT_TYPE.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn selecting(specifier: access_log_filter::FilterSpecifier) -> AccessLogFilter {
    AccessLogFilter { filter_specifier: Some(specifier) }
}

/// Selects replies with any of `flags`.
fn flagged(flags: &[&str]) -> access_log_filter::FilterSpecifier {
    access_log_filter::FilterSpecifier::ResponseFlagFilter(ResponseFlagFilter { flags: flags.iter().map(|f| f.to_string()).collect() })
}

/// Selects replies with status `status` (Envoy sets a local reply's status before its mappers
/// run). The runtime key is Envoy's required name for the value; nothing sets it.
fn answered(status: u16) -> access_log_filter::FilterSpecifier {
    let comparison = ComparisonFilter {
        op: comparison_filter::Op::Eq as i32,
        value: Some(RuntimeUInt32 { default_value: u32::from(status), runtime_key: format!("wasm_ingress.local_reply_{status}") }),
    };
    access_log_filter::FilterSpecifier::StatusCodeFilter(StatusCodeFilter { comparison: Some(comparison) })
}

/// The access-log filter that selects `failure`.
fn filter(failure: Failure) -> access_log_filter::FilterSpecifier {
    match failure {
        Failure::Flags(flags) => flagged(flags),
        Failure::Expression(expression) => cel(expression),
    }
}

/// Selects replies for which the CEL `expression` over the stream's attributes is true.
fn cel(expression: &str) -> access_log_filter::FilterSpecifier {
    let config = ExpressionFilter { expression: expression.to_string(), ..Default::default() };
    access_log_filter::FilterSpecifier::ExtensionFilter(ExtensionFilter {
        name: "envoy.access_loggers.extension_filters.cel".into(),
        config_type: Some(ConfigType::TypedConfig(pack_any(config))),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use prost::Message;

    /// nginx's error page for `line`, written out here as nginx's source has it.
    fn nginx_page(line: &str) -> String {
        format!("<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n<center><h1>{line}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    }

    #[test]
    fn envoys_own_answers_are_nginx_pages_as_text_html() {
        for mapper in local_reply_config().mappers {
            let format = mapper.body_format_override.unwrap();
            assert_eq!(format.content_type, "text/html");
            let Some(substitution_format_string::Format::TextFormatSource(source)) = format.format else { panic!() };
            assert_eq!(source.specifier, Some(data_source::Specifier::InlineString("%LOCAL_REPLY_BODY%".into())));
        }
    }

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
            .take(MAPPINGS.len())
            .map(|m| {
                let Some(data_source::Specifier::InlineString(body)) = m.body.clone().unwrap().specifier else { panic!() };
                (selects(m), m.status_code.unwrap().value, body)
            })
            .collect();
        let row = |selects: &str, status: u32, body: &str| (selects.to_string(), status, body.to_string());
        assert_eq!(
            rows,
            [
                row("cel: response.code_details.contains('{connection_timeout')", 504, &nginx_page("504 Gateway Time-out")),
                row("UF,UC,UR,URX,UPE", 502, &nginx_page("502 Bad Gateway")),
                row("UH", 503, &nginx_page("503 Service Temporarily Unavailable")),
                row("UT", 504, &nginx_page("504 Gateway Time-out")),
                row("cel: response.code_details.startsWith('rbac_access_denied')", 403, &nginx_page("403 Forbidden")),
                row("cel: response.code_details == 'request_payload_too_large'", 413, &nginx_page("413 Request Entity Too Large")),
            ]
        );
    }

    #[test]
    fn rate_limited_answers_keep_their_status_and_get_nginx_s_page_for_it() {
        let all = local_reply_config().mappers;
        let mappers = &all[MAPPINGS.len()..all.len() - 1];
        let statuses: Vec<u16> = rate_limit_statuses().collect();
        assert_eq!(mappers.len(), statuses.len());
        assert!(statuses.contains(&503) && statuses.contains(&429) && !statuses.contains(&418), "{statuses:?}");
        for (mapper, status) in mappers.iter().zip(statuses) {
            assert_eq!(mapper.status_code, None, "the status stays the policy's");
            let Some(access_log_filter::FilterSpecifier::AndFilter(both)) = mapper.filter.clone().unwrap().filter_specifier else { panic!() };
            let [details, code] = [&both.filters[0], &both.filters[1]].map(|f| f.filter_specifier.clone().unwrap());
            assert_eq!(details, cel("response.code_details == 'local_rate_limited'"));
            let access_log_filter::FilterSpecifier::StatusCodeFilter(code) = code else { panic!() };
            assert_eq!(code.comparison.unwrap().value.unwrap().default_value, u32::from(status));
            let Some(data_source::Specifier::InlineString(body)) = mapper.body.clone().unwrap().specifier else { panic!() };
            assert_eq!(body, wasm_ingress_filter::decision::status_body(status));
        }
    }

    #[test]
    fn the_404_for_an_unknown_cluster_gets_nginx_s_page() {
        let mapper = local_reply_config().mappers.pop().unwrap();
        assert_eq!(mapper.status_code, None);
        let Some(access_log_filter::FilterSpecifier::AndFilter(both)) = mapper.filter.clone().unwrap().filter_specifier else { panic!() };
        let [flags, code] = [&both.filters[0], &both.filters[1]].map(|f| f.filter_specifier.clone().unwrap());
        assert_eq!(flags, flagged(&["NC"]));
        let access_log_filter::FilterSpecifier::StatusCodeFilter(code) = code else { panic!() };
        assert_eq!(code.comparison.unwrap().value.unwrap().default_value, 404);
        let Some(data_source::Specifier::InlineString(body)) = mapper.body.unwrap().specifier else { panic!() };
        assert_eq!(body, nginx_page("404 Not Found"));
    }
}
