//! ingress-nginx's `enable-access-log: "false"` (nginx's `access_log off` in the location) ->
//! Envoy's header-to-metadata filter and an access-log filter. Pure; typed protos only.
//!
//! Envoy's access log belongs to the listener's connection manager, not to a route, and changing
//! the listener would drain connections. So the log has one fixed filter — log unless the
//! request's dynamic metadata has `wasm_ingress.access_log`, and then only if it is `on`, which is
//! never written — and a route whose policy turns logging off carries the header-to-metadata
//! filter's per-route setting that writes `off` (whatever the request's headers: the rule sets the
//! value whether its header is there or not).
//! The filter's own configuration has no such rule, so other routes write nothing and are logged.
//! The default server's own answers (ingress-nginx's `enable-access-log-for-default-backend`) reach
//! no route: the wasm filter marks those requests with a pseudo-header no client can send, and the
//! log's filter also asks that it be absent (a header lookup: a CEL check of the filter state cost
//! ≈ 10 µs a request).
//!
//! The same filter carries `upstream-hash-by-subset`'s slot (see `wasm_ingress_filter::subset`)
//! from the wasm filter's request header into the `envoy.lb` metadata the cluster's subset
//! balancer reads, removing the header: that rule is in the filter's configuration and in every
//! route's setting (a route's setting replaces the filter's).

use envoy_types::pb::envoy::config::accesslog::v3::{access_log_filter, AccessLogFilter, AndFilter, HeaderFilter, MetadataFilter};
use envoy_types::pb::envoy::config::route::v3::{header_matcher, HeaderMatcher};
use envoy_types::pb::envoy::extensions::filters::http::header_to_metadata::v3::config::{KeyValuePair, Rule};
use envoy_types::pb::envoy::extensions::filters::http::header_to_metadata::v3::Config;
use envoy_types::pb::envoy::r#type::matcher::v3::metadata_matcher::{path_segment, PathSegment};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, value_matcher, MetadataMatcher, StringMatcher, ValueMatcher};
use envoy_types::pb::google::protobuf::BoolValue;

use wasm_ingress_filter::subset::{SUBSET_HEADER, SUBSET_METADATA_KEY};
use wasm_ingress_filter::table::UNLOGGED_HEADER;

use crate::model::RoutePolicy;
use crate::translate::clusters::ENVOY_LB;

/// The header-to-metadata filter's name, under which routes carry their [`per_route`] setting.
pub const HEADER_TO_METADATA_FILTER: &str = "envoy.filters.http.header_to_metadata";

/// The dynamic-metadata namespace and key the access log reads, the value that silences it and
/// the one that would not (never written: without the key the request is logged).
const NAMESPACE: &str = "wasm_ingress";
const KEY: &str = "access_log";
const OFF: &str = "off";
const ON: &str = "on";

/// A header every request has by the time filters run (the connection manager generates it).
const ANY_REQUEST_HEADER: &str = "x-request-id";

/// The filter's own configuration: no rules, so no metadata is written unless a route says so.
pub fn filter_config() -> Config {
    Config { request_rules: vec![subset_rule()], ..Default::default() }
}

/// The request's subset slot, moved from the filter's header into `envoy.lb`.
fn subset_rule() -> Rule {
    let slot = KeyValuePair { metadata_namespace: ENVOY_LB.into(), key: SUBSET_METADATA_KEY.into(), ..Default::default() };
    Rule { header: SUBSET_HEADER.into(), on_header_present: Some(slot), remove: true, ..Default::default() }
}

/// The route's setting when its policy turns the access log off.
pub fn per_route(policy: &RoutePolicy) -> Option<Config> {
    if !policy.access_log_off {
        return None;
    }
    let off = KeyValuePair { metadata_namespace: NAMESPACE.into(), key: KEY.into(), value: OFF.into(), ..Default::default() };
    let rule = Rule {
        header: ANY_REQUEST_HEADER.into(),
        on_header_present: Some(off.clone()),
        on_header_missing: Some(off),
        ..Default::default()
    };
    Some(Config { request_rules: vec![rule, subset_rule()], ..Default::default() })
}

/// The access log's filter: log a request that the wasm filter did not mark as one of the default
/// server's and whose route did not turn the log off.
pub fn log_filter() -> AccessLogFilter {
    let filters = [not_the_default_servers(), route_logs()].map(|filter_specifier| AccessLogFilter { filter_specifier: Some(filter_specifier) });
    AccessLogFilter { filter_specifier: Some(access_log_filter::FilterSpecifier::AndFilter(AndFilter { filters: filters.to_vec() })) }
}

/// No [`UNLOGGED_HEADER`] on the request.
fn not_the_default_servers() -> access_log_filter::FilterSpecifier {
    let absent = HeaderMatcher {
        name: UNLOGGED_HEADER.into(),
        header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::PresentMatch(true)),
        invert_match: true,
        ..Default::default()
    };
    access_log_filter::FilterSpecifier::HeaderFilter(HeaderFilter { header: Some(absent) })
}

/// A request without the key, or whose value is `on`. (Envoy's metadata filter logs when the
/// value matches, else when the key is absent and `match_if_key_not_found`; it ignores the
/// matcher's `invert`.)
fn route_logs() -> access_log_filter::FilterSpecifier {
    let on = ValueMatcher {
        match_pattern: Some(value_matcher::MatchPattern::StringMatch(StringMatcher {
            match_pattern: Some(string_matcher::MatchPattern::Exact(ON.into())),
            ..Default::default()
        })),
    };
    let matcher = MetadataMatcher {
        filter: NAMESPACE.into(),
        path: vec![PathSegment { segment: Some(path_segment::Segment::Key(KEY.into())) }],
        value: Some(on),
        invert: false,
    };
    let filter = MetadataFilter { matcher: Some(matcher), match_if_key_not_found: Some(BoolValue { value: true }) };
    access_log_filter::FilterSpecifier::MetadataFilter(filter)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn only_a_policy_that_turns_the_log_off_writes_the_metadata_the_log_filter_skips() {
        assert_eq!(per_route(&RoutePolicy::default()), None);
        assert_eq!(filter_config().request_rules, vec![subset_rule()], "without a route setting no log metadata is written");
        let config = per_route(&RoutePolicy { access_log_off: true, ..RoutePolicy::default() }).unwrap();
        let [rule, subset] = config.request_rules.as_slice() else { panic!("{config:?}") };
        assert_eq!(subset, &subset_rule(), "the route's setting keeps the subset slot");
        assert!(subset.remove && subset.on_header_missing.is_none(), "the slot header goes; none: nothing written");
        let slot = subset.on_header_present.as_ref().unwrap();
        assert_eq!((slot.metadata_namespace.as_str(), slot.key.as_str(), slot.value.as_str()), ("envoy.lb", SUBSET_METADATA_KEY, ""), "the header's value");
        // Written whether the header is there or not.
        for pair in [&rule.on_header_present, &rule.on_header_missing] {
            let pair = pair.as_ref().unwrap();
            assert_eq!((pair.metadata_namespace.as_str(), pair.key.as_str(), pair.value.as_str()), (NAMESPACE, KEY, OFF));
        }
        assert!(!rule.remove, "the request's header stays");

        let Some(access_log_filter::FilterSpecifier::AndFilter(both)) = log_filter().filter_specifier else { panic!() };
        let [marked, routed] = both.filters.as_slice() else { panic!("{both:?}") };
        let Some(access_log_filter::FilterSpecifier::HeaderFilter(HeaderFilter { header: Some(header) })) = marked.filter_specifier.clone() else { panic!("{marked:?}") };
        assert_eq!(header.name, ":wasm-ingress-unlogged", "a pseudo-header: no client can send it");
        assert_eq!((header.header_match_specifier, header.invert_match), (Some(header_matcher::HeaderMatchSpecifier::PresentMatch(true)), true), "logged without it");
        let Some(access_log_filter::FilterSpecifier::MetadataFilter(filter)) = routed.filter_specifier.clone() else { panic!() };
        assert_eq!(filter.match_if_key_not_found, Some(BoolValue { value: true }), "no metadata: logged");
        let matcher = filter.matcher.unwrap();
        assert_eq!((matcher.filter.as_str(), matcher.invert), (NAMESPACE, false));
        let Some(value_matcher::MatchPattern::StringMatch(value)) = matcher.value.unwrap().match_pattern else { panic!() };
        assert_eq!(value.match_pattern, Some(string_matcher::MatchPattern::Exact(ON.into())), "`off` is not logged");
        assert_eq!(matcher.path, vec![PathSegment { segment: Some(path_segment::Segment::Key(KEY.into())) }]);
    }
}
