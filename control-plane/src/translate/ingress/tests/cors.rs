//! CORS annotations -> the route's CORS rule and its two policies.

use crate::model::AllowOrigin;

use super::*;

#[test]
fn enable_cors_gives_routes_a_cors_rule_whose_policies_are_sent() {
    let translation = run(&[
        ingress("any", &nginx(&[("enable-cors", "true"), ("proxy-body-size", "8m")]), &[rule("any.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("list", &nginx(&[("enable-cors", "true"), ("cors-allow-origin", "https://app.example.com, https://*.example.org")]), &[rule("list.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("off", &nginx(&[("cors-allow-origin", "https://app.example.com")]), &[rule("off.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat());
    let forward_at = |host: &str| match &route_at(&translation, host, "/").action {
        RouteAction::Forward(forward) => forward.clone(),
        other => panic!("{host}: {other:?}"),
    };
    let any = forward_at("any.example.com");
    let rule = any.cors.as_deref().expect("a CORS rule");
    assert_eq!(rule.origin_pattern, None);
    let policies = &translation.model.policies;
    let (base, with_cors, preflight) = (&policies[&any.policy], &policies[&rule.policy], &policies[&rule.preflight_policy]);
    assert_eq!(base.max_body_bytes, Some(8 << 20));
    assert_eq!(with_cors.cors.as_ref().map(|c| c.allow_origin), Some(AllowOrigin::Any));
    assert_eq!(RoutePolicy { cors: None, ..with_cors.clone() }, *base, "the CORS policy is the route's plus its headers");
    assert_eq!(RoutePolicy { preflight: false, ..preflight.clone() }, *with_cors);

    let list = forward_at("list.example.com");
    let rule = list.cors.as_deref().expect("a CORS rule");
    assert_eq!(rule.origin_pattern.as_deref(), Some(r"(?i)((https://app\.example\.com)|(https://[A-Za-z0-9\-]+\.example\.org))$"));
    assert_eq!(policies[&rule.policy].cors.as_ref().map(|c| c.allow_origin), Some(AllowOrigin::RequestOrigin));
    assert_eq!(list.policy, "", "a request from another origin keeps the default policy");

    assert_eq!(forward_at("off.example.com").cors, None, "cors-* without enable-cors does nothing");
}

/// nginx's location keeps its CORS block when its Service does not exist (the upstream is never
/// reached), and has none when ingress-nginx denies it.
#[test]
fn a_missing_services_503_carries_the_cors_rule_and_a_denial_does_not() {
    let translation = run(&[
        ingress("gone", &nginx(&[("enable-cors", "true")]), &[rule("gone.example.com", &[path("/", "Prefix", "missing", 80)])]),
        ingress("denied", &nginx(&[("enable-cors", "true"), ("auth-type", "basic"), ("auth-secret", "no-such-secret")]), &[rule("denied.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat());
    let RouteAction::Respond(gone) = &route_at(&translation, "gone.example.com", "/").action else { panic!("not a 503") };
    assert_eq!(gone.status, 503);
    let rule = gone.cors.as_deref().expect("the CORS rule");
    assert!(translation.model.policies[&rule.preflight_policy].preflight, "its preflight policy is sent");
    let RouteAction::Respond(denied) = &route_at(&translation, "denied.example.com", "/").action else { panic!("not a denial") };
    assert_eq!((denied.status, denied.cors.as_ref()), (503, None));
}
