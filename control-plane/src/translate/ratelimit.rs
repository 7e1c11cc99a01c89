//! Per-client request limits of a route policy -> Envoy's local rate limit filter. Pure; typed
//! protos only.
//!
//! A limited route carries a complete `LocalRateLimit` (Envoy keeps its buckets per route): one
//! descriptor keyed by the client address with its value left blank, so Envoy keeps a token bucket
//! per address it sees (an LRU of [`MAX_CLIENTS`]), `burst` tokens refilled with `requests` per
//! second or minute; the route's own bucket is never consumed. Past the limit Envoy answers 503,
//! ingress-nginx's `limit-req-status-code`. The address is the connection manager's view of the
//! client, nginx's `$remote_addr`. The filter sits after the wasm filter, whose choice of route
//! its per-route setting follows; its own configuration enforces nothing.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::route::v3::{rate_limit, RateLimit};
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::{rate_limit_descriptor, LocalRateLimitDescriptor};
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::envoy::r#type::v3::{fractional_percent, FractionalPercent, HttpStatus, TokenBucket};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

use crate::model::{ClientRateLimit, RoutePolicy};
use crate::translate::edge::proto_duration;

/// The local rate limit filter's name, under which routes carry their [`per_route`] setting.
pub const RATE_LIMIT_FILTER: &str = "envoy.filters.http.local_ratelimit";
/// Stats prefix of the filter.
const STAT_PREFIX: &str = "client_limits";
/// The descriptor key Envoy's `remote_address` action produces.
const REMOTE_ADDRESS: &str = "remote_address";
/// Client addresses whose buckets one route keeps (least recently seen are dropped first; nginx's
/// default 5 MB zone holds about 80 000).
pub const MAX_CLIENTS: u32 = 100_000;
/// What Envoy answers past the limit (ingress-nginx's `limit-req-status-code` default).
pub const LIMITED_STATUS: u32 = 503;

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
        status: Some(HttpStatus { code: LIMITED_STATUS as i32 }),
        // Required on a route; never consumed (see `always_consume_default_token_bucket`).
        token_bucket: Some(bucket(u32::MAX, u32::MAX, Duration::from_secs(1))),
        filter_enabled: Some(all()),
        filter_enforced: Some(all()),
        descriptors: vec![LocalRateLimitDescriptor {
            entries: vec![rate_limit_descriptor::Entry { key: REMOTE_ADDRESS.to_string(), value: String::new() }],
            token_bucket: Some(client_bucket(limit)),
            shadow_mode: false,
        }],
        rate_limits: vec![RateLimit {
            actions: vec![rate_limit::Action {
                action_specifier: Some(rate_limit::action::ActionSpecifier::RemoteAddress(rate_limit::action::RemoteAddress {})),
            }],
            ..Default::default()
        }],
        max_dynamic_descriptors: Some(UInt32Value { value: MAX_CLIENTS }),
        always_consume_default_token_bucket: Some(BoolValue { value: false }),
        ..Default::default()
    })
}

fn client_bucket(limit: &ClientRateLimit) -> TokenBucket {
    let period = if limit.per_minute { Duration::from_secs(60) } else { Duration::from_secs(1) };
    bucket(limit.burst.max(limit.requests).max(1), limit.requests.max(1), period)
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
        let limit = ClientRateLimit { zone: "default/api".into(), requests: 5, per_minute: false, burst: 25 };
        let config = per_route(&RoutePolicy { rate_limit: Some(limit), ..RoutePolicy::default() }).unwrap();
        assert_eq!(config.status.unwrap().code, 503);
        let descriptor = &config.descriptors[0];
        assert_eq!((descriptor.entries[0].key.as_str(), descriptor.entries[0].value.as_str()), ("remote_address", ""));
        let bucket = descriptor.token_bucket.unwrap();
        assert_eq!((bucket.max_tokens, bucket.tokens_per_fill.unwrap().value), (25, 5));
        assert_eq!(bucket.fill_interval.unwrap().seconds, 1);
        assert_eq!(config.always_consume_default_token_bucket, Some(BoolValue { value: false }));
        let per_minute = ClientRateLimit { zone: "default/api".into(), requests: 60, per_minute: true, burst: 300 };
        let config = per_route(&RoutePolicy { rate_limit: Some(per_minute), ..RoutePolicy::default() }).unwrap();
        assert_eq!(config.descriptors[0].token_bucket.unwrap().fill_interval.unwrap().seconds, 60);
    }
}
