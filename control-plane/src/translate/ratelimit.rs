//! Per-client request limits of a route policy -> Envoy's local rate limit filter. Pure; typed
//! protos only.
//!
//! A limited route carries a complete `LocalRateLimit` (Envoy keeps its buckets per route): one
//! descriptor keyed by the client address with its value left blank, so Envoy keeps a token bucket
//! per address it sees (an LRU of [`MAX_CLIENTS`]), `burst + 1` tokens refilled with `requests` per
//! second or minute; the route's own bucket is never consumed. Past the limit Envoy answers the
//! policy's status, ingress-nginx's `limit-req-status-code` (503 unless `serve` says otherwise).
//! The address is the connection manager's view of the client, nginx's `$remote_addr`. The filter
//! sits after the wasm filter, whose choice of route its per-route setting follows; its own
//! configuration enforces nothing.
//!
//! Exempt clients (`limit-allowlist`): the RBAC filter before this one judges the address against
//! shadow rules (see `translate::access`) and leaves its verdict in dynamic metadata; the
//! descriptor then also holds that verdict and only `denied` (not exempt, or no verdict at all)
//! has a per-client bucket. An exempt client's descriptor matches none, so only the route's
//! never-consumed bucket applies: it is not limited.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::route::v3::{rate_limit, RateLimit};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::{rate_limit_descriptor, LocalRateLimitDescriptor};
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::envoy::r#type::metadata::v3::{metadata_key, MetadataKey};
use envoy_types::pb::envoy::r#type::v3::{fractional_percent, FractionalPercent, HttpStatus, TokenBucket};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

use crate::model::{ClientRateLimit, RoutePolicy};
use crate::translate::access::{RBAC_FILTER, SHADOW_DENIED, SHADOW_RESULT_KEY};
use crate::translate::edge::proto_duration;

/// The local rate limit filter's name, under which routes carry their [`per_route`] setting.
pub const RATE_LIMIT_FILTER: &str = "envoy.filters.http.local_ratelimit";
/// Stats prefix of the filter.
const STAT_PREFIX: &str = "client_limits";
/// The descriptor key Envoy's `remote_address` action produces.
const REMOTE_ADDRESS: &str = "remote_address";
/// The descriptor key of the RBAC shadow verdict (exempt clients: `allowed`).
const EXEMPTION: &str = "limit_exemption";
/// Client addresses whose buckets one route keeps (least recently seen are dropped first; nginx's
/// default 5 MB zone holds about 80 000).
pub const MAX_CLIENTS: u32 = 100_000;
/// The filter's own configuration: no bucket, enabled for no request, so nothing is limited unless
/// a route says so.
pub fn filter_config() -> LocalRateLimit {
    LocalRateLimit { stat_prefix: STAT_PREFIX.to_string(), ..Default::default() }
}

/// The route's rate limit setting, if its policy limits requests.
pub fn per_route(policy: &RoutePolicy) -> Option<LocalRateLimit> {
    let limit = policy.rate_limit.as_ref()?;
    let all = || RuntimeFractionalPercent {
        default_value: Some(FractionalPercent { numerator: 100, denominator: fractional_percent::DenominatorType::Hundred as i32 }),
        runtime_key: String::new(),
    };
    Some(LocalRateLimit {
        stat_prefix: STAT_PREFIX.to_string(),
        status: Some(HttpStatus { code: i32::from(limit.status) }),
        // Required on a route; never consumed (see `always_consume_default_token_bucket`).
        token_bucket: Some(bucket(u32::MAX, u32::MAX, Duration::from_secs(1))),
        filter_enabled: Some(all()),
        filter_enforced: Some(all()),
        descriptors: vec![LocalRateLimitDescriptor {
            entries: descriptor_entries(limit),
            token_bucket: Some(client_bucket(limit)),
            shadow_mode: false,
        }],
        rate_limits: vec![RateLimit { actions: actions(limit), ..Default::default() }],
        max_dynamic_descriptors: Some(UInt32Value { value: MAX_CLIENTS }),
        always_consume_default_token_bucket: Some(BoolValue { value: false }),
        ..Default::default()
    })
}

/// The descriptor that has a bucket per client: (the exemption verdict `denied`, when some clients
/// are exempt), any client address.
fn descriptor_entries(limit: &ClientRateLimit) -> Vec<rate_limit_descriptor::Entry> {
    let entry = |key: &str, value: &str| rate_limit_descriptor::Entry { key: key.to_string(), value: value.to_string() };
    let mut entries = Vec::new();
    if !limit.exempt.is_empty() {
        entries.push(entry(EXEMPTION, SHADOW_DENIED));
    }
    entries.push(entry(REMOTE_ADDRESS, ""));
    entries
}

/// The actions that make a request's descriptor, in the order of [`descriptor_entries`].
fn actions(limit: &ClientRateLimit) -> Vec<rate_limit::Action> {
    use rate_limit::action::{meta_data, ActionSpecifier, MetaData, RemoteAddress};
    let mut actions = Vec::new();
    if !limit.exempt.is_empty() {
        let verdict = MetaData {
            descriptor_key: EXEMPTION.to_string(),
            metadata_key: Some(MetadataKey {
                key: RBAC_FILTER.to_string(),
                path: vec![metadata_key::PathSegment {
                    segment: Some(metadata_key::path_segment::Segment::Key(SHADOW_RESULT_KEY.to_string())),
                }],
            }),
            // No verdict (the RBAC filter did not run): limited, never exempt.
            default_value: SHADOW_DENIED.to_string(),
            source: meta_data::Source::Dynamic as i32,
            skip_if_absent: false,
        };
        actions.push(rate_limit::Action { action_specifier: Some(ActionSpecifier::Metadata(verdict)) });
    }
    actions.push(rate_limit::Action { action_specifier: Some(ActionSpecifier::RemoteAddress(RemoteAddress {})) });
    actions
}

fn client_bucket(limit: &ClientRateLimit) -> TokenBucket {
    let period = if limit.per_minute { Duration::from_secs(60) } else { Duration::from_secs(1) };
    // nginx's `limit_req … burst=B nodelay` lets B + 1 requests through at once: the first has no
    // excess, the next B are the burst.
    bucket(limit.burst.saturating_add(1).max(limit.requests).max(1), limit.requests.max(1), period)
}

fn bucket(max_tokens: u32, tokens_per_fill: u32, fill_interval: Duration) -> TokenBucket {
    TokenBucket {
        max_tokens,
        tokens_per_fill: Some(UInt32Value { value: tokens_per_fill }),
        fill_interval: Some(proto_duration(fill_interval)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_limited_route_keeps_a_bucket_per_client_address() {
        assert_eq!(per_route(&RoutePolicy::default()), None);
        let limit = ClientRateLimit { zone: "default/api".into(), requests: 5, per_minute: false, burst: 25, exempt: Vec::new(), status: 503 };
        let config = per_route(&RoutePolicy { rate_limit: Some(limit), ..RoutePolicy::default() }).unwrap();
        assert_eq!(config.status.unwrap().code, 503);
        let descriptor = &config.descriptors[0];
        assert_eq!((descriptor.entries[0].key.as_str(), descriptor.entries[0].value.as_str()), ("remote_address", ""));
        let bucket = descriptor.token_bucket.unwrap();
        assert_eq!((bucket.max_tokens, bucket.tokens_per_fill.unwrap().value), (26, 5), "nginx lets burst + 1 through at once");
        assert_eq!(bucket.fill_interval.unwrap().seconds, 1);
        assert_eq!(config.always_consume_default_token_bucket, Some(BoolValue { value: false }));
        let per_minute = ClientRateLimit { zone: "default/api".into(), requests: 60, per_minute: true, burst: 300, exempt: Vec::new(), status: 429 };
        let config = per_route(&RoutePolicy { rate_limit: Some(per_minute), ..RoutePolicy::default() }).unwrap();
        assert_eq!(config.descriptors[0].token_bucket.unwrap().fill_interval.unwrap().seconds, 60);
        assert_eq!(config.status.unwrap().code, 429, "--limit-req-status-code");
        let no_burst = ClientRateLimit { zone: "default/api".into(), requests: 5, per_minute: false, burst: 0, exempt: Vec::new(), status: 503 };
        let config = per_route(&RoutePolicy { rate_limit: Some(no_burst), ..RoutePolicy::default() }).unwrap();
        assert_eq!(config.descriptors[0].token_bucket.unwrap().max_tokens, 5, "a second's worth at least: Envoy refills once a second");
    }

    #[test]
    fn exempt_clients_add_the_rbac_verdict_to_the_descriptor() {
        let exempt = vec![crate::model::Cidr::parse("10.0.0.0/8").unwrap()];
        let limit = ClientRateLimit { zone: "default/api".into(), requests: 5, per_minute: false, burst: 25, exempt, status: 503 };
        let config = per_route(&RoutePolicy { rate_limit: Some(limit), ..RoutePolicy::default() }).unwrap();
        let entries: Vec<(&str, &str)> = config.descriptors[0].entries.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(entries, [("limit_exemption", "denied"), ("remote_address", "")]);
        let actions = &config.rate_limits[0].actions;
        let Some(rate_limit::action::ActionSpecifier::Metadata(verdict)) = &actions[0].action_specifier else { panic!("{actions:?}") };
        assert_eq!((verdict.descriptor_key.as_str(), verdict.default_value.as_str()), ("limit_exemption", "denied"));
        assert_eq!(verdict.metadata_key.as_ref().unwrap().key, "envoy.filters.http.rbac");
        assert!(matches!(actions[1].action_specifier, Some(rate_limit::action::ActionSpecifier::RemoteAddress(_))));
    }
}
