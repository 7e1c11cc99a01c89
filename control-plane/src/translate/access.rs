//! Client-address limits of a route policy -> Envoy's RBAC filter. Pure; typed protos only.
//!
//! ingress-nginx writes `deny` lines for `denylist-source-range`, then `allow` lines for the allow
//! list and `deny all`; nginx takes the first rule that matches, so a denied block wins over an
//! allowed one, and a client neither list names is refused only when there is an allow list. Here
//! that is one RBAC `ALLOW` policy per route: principal = (any allowed block, or anyone without an
//! allow list) AND NOT (any denied block). Envoy answers others 403, as nginx does.
//!
//! A rate-limited route with exempt clients (`limit-allowlist`) also carries *shadow* rules that
//! allow exactly those addresses: they enforce nothing, but the filter writes their verdict
//! (`allowed` / `denied`) into the request's dynamic metadata, which the local rate limit reads
//! to leave exempt clients out of its buckets (see `translate::ratelimit`). Envoy does the CIDR
//! matching in both places.
//!
//! The address is RBAC's `remote_ip`: the client as the connection manager sees it (the peer, or
//! the trusted `X-Forwarded-For` hop once `xff_num_trusted_hops` is set), which is nginx's
//! `$remote_addr`. The filter sits after the wasm filter (which picks the route, so its per-route
//! setting applies) in every chain, WebSocket upgrades included; its own configuration enforces
//! nothing, so routes without limits pass untouched.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::rbac::v3::{permission, principal, rbac, Permission, Policy, Principal, Rbac as RbacRules};
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::{Rbac, RbacPerRoute};
use envoy_types::pb::google::protobuf::UInt32Value;

use crate::model::{Cidr, RoutePolicy};

/// The RBAC filter's name, under which routes carry their [`per_route`] setting.
pub const RBAC_FILTER: &str = "envoy.filters.http.rbac";
/// The one policy name of a route's rules.
const POLICY_NAME: &str = "source-ranges";
/// The one policy name of a route's shadow rules.
const EXEMPT_POLICY_NAME: &str = "limit-exempt";
/// Where the RBAC filter writes its shadow rules' verdict: dynamic metadata of this namespace
/// (the filter's name) and key; the value is [`SHADOW_ALLOWED`] or [`SHADOW_DENIED`].
pub const SHADOW_RESULT_KEY: &str = "shadow_engine_result";
pub const SHADOW_DENIED: &str = "denied";

/// The filter's own configuration: no rules, so nothing is enforced unless a route says so.
pub fn filter_config() -> Rbac {
    Rbac::default()
}

/// The route's RBAC setting, if its policy limits client addresses or exempts some from its
/// request limit.
pub fn per_route(policy: &RoutePolicy) -> Option<RbacPerRoute> {
    let exempt = policy.rate_limit.as_ref().map(|limit| limit.exempt.as_slice()).unwrap_or_default();
    let rules = source_rules(policy);
    let shadow_rules = (!exempt.is_empty()).then(|| allow(EXEMPT_POLICY_NAME, any_of(exempt)));
    if rules.is_none() && shadow_rules.is_none() {
        return None;
    }
    Some(RbacPerRoute { rbac: Some(Rbac { rules, shadow_rules, ..Default::default() }) })
}

/// The enforced rules: allow-list AND NOT deny-list.
fn source_rules(policy: &RoutePolicy) -> Option<RbacRules> {
    if policy.allow_sources.is_empty() && policy.deny_sources.is_empty() {
        return None;
    }
    let allowed = if policy.allow_sources.is_empty() {
        Principal { identifier: Some(principal::Identifier::Any(true)) }
    } else {
        any_of(&policy.allow_sources)
    };
    let mut ids = vec![allowed];
    if !policy.deny_sources.is_empty() {
        ids.push(Principal { identifier: Some(principal::Identifier::NotId(Box::new(any_of(&policy.deny_sources)))) });
    }
    Some(allow(POLICY_NAME, Principal { identifier: Some(principal::Identifier::AndIds(principal::Set { ids })) }))
}

/// Rules of one `ALLOW` policy: any request of `principal`.
fn allow(name: &str, principal: Principal) -> RbacRules {
    RbacRules {
        action: rbac::Action::Allow as i32,
        // One entry: prost encodes this map deterministically.
        policies: HashMap::from([(
            name.to_string(),
            Policy {
                permissions: vec![Permission { rule: Some(permission::Rule::Any(true)) }],
                principals: vec![principal],
                ..Default::default()
            },
        )]),
        ..Default::default()
    }
}

fn any_of(blocks: &[Cidr]) -> Principal {
    let ids = blocks
        .iter()
        .map(|block| Principal {
            identifier: Some(principal::Identifier::RemoteIp(CidrRange {
                address_prefix: block.address.to_string(),
                prefix_len: Some(UInt32Value { value: u32::from(block.prefix_len) }),
            })),
        })
        .collect();
    Principal { identifier: Some(principal::Identifier::OrIds(principal::Set { ids })) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|t| Cidr::parse(t).unwrap()).collect()
    }

    fn principal_of(policy: &RoutePolicy) -> Principal {
        let rules = per_route(policy).unwrap().rbac.unwrap().rules.unwrap();
        assert_eq!(rules.action, rbac::Action::Allow as i32);
        let policy = &rules.policies[POLICY_NAME];
        assert_eq!(policy.permissions, vec![Permission { rule: Some(permission::Rule::Any(true)) }]);
        policy.principals[0].clone()
    }

    fn remote(text: &str) -> Principal {
        let block = Cidr::parse(text).unwrap();
        Principal {
            identifier: Some(principal::Identifier::RemoteIp(CidrRange {
                address_prefix: block.address.to_string(),
                prefix_len: Some(UInt32Value { value: u32::from(block.prefix_len) }),
            })),
        }
    }

    fn or(ids: Vec<Principal>) -> Principal {
        Principal { identifier: Some(principal::Identifier::OrIds(principal::Set { ids })) }
    }

    fn and(ids: Vec<Principal>) -> Principal {
        Principal { identifier: Some(principal::Identifier::AndIds(principal::Set { ids })) }
    }

    #[test]
    fn no_limits_no_setting() {
        assert_eq!(per_route(&RoutePolicy::default()), None);
    }

    #[test]
    fn exempt_clients_are_shadow_rules_that_enforce_nothing() {
        let limit = crate::model::ClientRateLimit {
            zone: "default/api".into(),
            requests: 5,
            per_minute: false,
            burst: 25,
            exempt: cidrs(&["10.0.0.0/8", "::1"]),
            status: 503,
        };
        let policy = RoutePolicy { rate_limit: Some(limit.clone()), ..RoutePolicy::default() };
        let rbac = per_route(&policy).unwrap().rbac.unwrap();
        assert_eq!(rbac.rules, None, "nobody is refused");
        let shadow = rbac.shadow_rules.unwrap();
        assert_eq!(shadow.action, rbac::Action::Allow as i32);
        assert_eq!(shadow.policies[EXEMPT_POLICY_NAME].principals, vec![or(vec![remote("10.0.0.0/8"), remote("::1")])]);
        let no_exemption = crate::model::ClientRateLimit { exempt: Vec::new(), ..limit };
        assert_eq!(per_route(&RoutePolicy { rate_limit: Some(no_exemption), ..RoutePolicy::default() }), None);
    }

    #[test]
    fn allow_list_allows_its_blocks_only() {
        let policy = RoutePolicy { allow_sources: cidrs(&["10.0.0.0/8", "::1"]), ..RoutePolicy::default() };
        assert_eq!(principal_of(&policy), and(vec![or(vec![remote("10.0.0.0/8"), remote("::1")])]));
    }

    #[test]
    fn deny_list_wins_over_the_allow_list_and_alone_allows_the_rest() {
        let both = RoutePolicy {
            allow_sources: cidrs(&["10.0.0.0/8"]),
            deny_sources: cidrs(&["10.1.0.0/16"]),
            ..RoutePolicy::default()
        };
        let not = |p: Principal| Principal { identifier: Some(principal::Identifier::NotId(Box::new(p))) };
        assert_eq!(principal_of(&both), and(vec![or(vec![remote("10.0.0.0/8")]), not(or(vec![remote("10.1.0.0/16")]))]));
        let deny_only = RoutePolicy { deny_sources: cidrs(&["192.0.2.7"]), ..RoutePolicy::default() };
        let anyone = Principal { identifier: Some(principal::Identifier::Any(true)) };
        assert_eq!(principal_of(&deny_only), and(vec![anyone, not(or(vec![remote("192.0.2.7")]))]));
    }
}
