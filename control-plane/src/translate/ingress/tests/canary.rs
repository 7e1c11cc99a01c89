//! Canary Ingresses: how they attach to main Ingresses, with ingress-nginx's cases
//! (test/e2e/annotations/canary.go, controller_test.go `TestMergeAlternativeBackends`).

use wasm_ingress_filter::table::{Canary, CanaryHeader, CanaryHeaderRule, Origin};

use crate::model::Balance;

use super::*;

fn main_ingress(host: &str, path_type: &str) -> String {
    ingress("main", &created("2024-01-01T00:00:00Z"), &[rule(host, &[path("/info", path_type, "a", 80)])])
}

fn canary_ingress(name: &str, timestamp: &str, annotations: &[(&str, &str)], host: &str, path_type: &str, service: &str, port: i32) -> String {
    let metadata = format!("{}{}", created(timestamp), nginx(annotations));
    ingress(name, &metadata, &[rule(host, &[path("/info", path_type, service, port)])])
}

fn canary_of<'t>(translation: &'t Translation, host: &str, path: &str) -> Option<&'t Canary> {
    match &route_at(translation, host, path).action {
        RouteAction::Forward(forward) => forward.canary.as_deref(),
        other => panic!("{host}{path}: {other:?}"),
    }
}

fn by_header(name: &str, rule: CanaryHeaderRule) -> Option<CanaryHeader> {
    Some(CanaryHeader { name: name.into(), rule })
}

#[test]
fn a_canary_lends_its_service_to_the_main_path_and_serves_nothing_of_its_own() {
    for (name, canary_time) in [("created after", "2024-02-01T00:00:00Z"), ("created before", "2023-01-01T00:00:00Z")] {
        let translation = run(&[
            main_ingress("foo", "Prefix"),
            canary_ingress("canary", canary_time, &[("canary", "true"), ("canary-by-header", "CanaryByHeader")], "foo", "Prefix", "b", 8080),
        ]
        .concat());
        let route = route_at(&translation, "foo", "/info");
        let RouteAction::Forward(forward) = &route.action else { panic!("{name}: {route:?}") };
        assert_eq!(forward.backends[0].cluster, cluster_name("default", "a", 80), "{name}");
        let expected = Canary {
            cluster: cluster_name("default", "b", 8080),
            header: by_header("canarybyheader", CanaryHeaderRule::AlwaysNever),
            cookie: None,
            weight: 0,
            weight_total: 100,
            origin: Origin::new("default", "canary", ""),
            legacy_affinity: false,
        };
        assert_eq!(forward.canary.as_deref(), Some(&expected), "{name}");
        assert_eq!(host_of(&translation, "foo").routes.len(), 1, "{name}: the canary's path is not a route");
        assert!(translation.model.clusters.contains_key(&expected.cluster), "{name}");
        assert!(translation.served_ingresses.contains(&ObjectKey::new("default", "canary")), "{name}");
        assert!(translation.diagnostics.is_empty(), "{name}: {:#?}", diagnostic_lines(&translation));
    }
}

#[test]
fn a_canary_without_a_matching_main_path_is_dropped() {
    let cases = [
        ("no main Ingress at all", String::new(), "foo", "Prefix"),
        ("another host", main_ingress("bar", "Prefix"), "foo", "Prefix"),
        ("another pathType", main_ingress("foo", "Exact"), "foo", "Prefix"),
    ];
    for (name, main, host, path_type) in cases {
        let translation = run(&[main, canary_ingress("canary", "2024-02-01T00:00:00Z", &[("canary", "true"), ("canary-weight", "100")], host, path_type, "b", 8080)].concat());
        assert!(translation.model.route_table.hosts.iter().all(|h| h.host != "foo" || h.routes.iter().all(|r| match &r.action {
            RouteAction::Forward(f) => f.canary.is_none(),
            _ => true,
        })), "{name}");
        assert!(!translation.model.route_table.hosts.iter().any(|h| h.host == "foo" && name == "no main Ingress at all"), "{name}: the canary's host is not served (404)");
        assert!(!translation.model.clusters.contains_key(&cluster_name("default", "b", 8080)), "{name}");
        assert!(!translation.served_ingresses.contains(&ObjectKey::new("default", "canary")), "{name}");
        let lines = diagnostic_lines(&translation);
        assert!(lines.iter().any(|l| l.contains("no main Ingress serves host \"foo\" path \"/info\"")), "{name}: {lines:#?}");
    }
}

#[test]
fn the_canary_joins_the_main_upstream_everywhere_it_is_used_and_the_oldest_canary_wins() {
    let other_host = ingress("other", &created("2024-01-02T00:00:00Z"), &[rule("bar", &[path("/elsewhere", "Prefix", "a", 80), path("/b", "Prefix", "b", 8080)])]);
    let translation = run(&[
        main_ingress("foo", "Prefix"),
        other_host,
        canary_ingress("first", "2024-02-01T00:00:00Z", &[("canary", "true"), ("canary-weight", "30")], "foo", "Prefix", "b", 8080),
        canary_ingress("second", "2024-03-01T00:00:00Z", &[("canary", "true"), ("canary-weight", "90")], "foo", "Prefix", "idle", 80),
        canary_ingress("third", "2024-04-01T00:00:00Z", &[("canary", "true"), ("canary-weight", "90")], "foo", "Prefix", "b", 8080),
    ]
    .concat());
    let first = canary_of(&translation, "foo", "/info").expect("canary on its own path");
    assert_eq!((first.origin.to_string().as_str(), first.weight), ("default/first", 30));
    let elsewhere = canary_of(&translation, "bar", "/elsewhere").expect("ingress-nginx attaches per upstream");
    assert_eq!(elsewhere, first);
    assert_eq!(canary_of(&translation, "bar", "/b"), None, "another upstream is untouched");
    assert!(!translation.served_ingresses.contains(&ObjectKey::new("default", "second")));
    assert!(!translation.served_ingresses.contains(&ObjectKey::new("default", "third")));
    let lines = diagnostic_lines(&translation);
    let said = "default/third: spec.rules[0].http.paths[0].backend: the upstream of host \"foo\" path \"/info\" (Prefix) already has the older canary Ingress default/first";
    assert!(lines.iter().any(|l| l.contains(said)), "{lines:#?}");
}

#[test]
fn canary_rules_read_like_ingress_nginx() {
    // (name, annotations besides canary: "true", header, cookie, weight, weight total)
    type Case<'c> = (&'c str, Vec<(&'c str, &'c str)>, Option<CanaryHeader>, Option<&'c str>, u32, u32);
    let cases: Vec<Case<'_>> = vec![
        ("value wins over pattern", vec![("canary-by-header", "X-Canary"), ("canary-by-header-value", "DoCanary"), ("canary-by-header-pattern", "^Do")], by_header("x-canary", CanaryHeaderRule::Value("DoCanary".into())), None, 0, 100),
        ("pattern", vec![("canary-by-header", "x_canary"), ("canary-by-header-pattern", "^Do[A-Z][a-z]+y$")], by_header("x-canary", CanaryHeaderRule::Pattern("^Do[A-Z][a-z]+y$".into())), None, 0, 100),
        ("refused pattern", vec![("canary-by-header", "x"), ("canary-by-header-pattern", "[][**da?$&*"), ("canary-by-cookie", "CanaryByCookie")], by_header("x", CanaryHeaderRule::PresentMeansPrimary), Some("CanaryByCookie"), 0, 100),
        ("bad header name", vec![("canary-by-header", "x canary"), ("canary-weight", "5")], None, None, 5, 100),
        ("total at most 100 counts as 100", vec![("canary-weight", "5"), ("canary-weight-total", "10")], None, None, 5, 100),
        ("total above 100", vec![("canary-weight", "1000"), ("canary-weight-total", "1000")], None, None, 1000, 1000),
        ("bad weight", vec![("canary-weight", "half")], None, None, 0, 100),
        // ingress-nginx's BasicCharsRegex for values and cookie names: versions, dotted names.
        ("dotted value and cookie", vec![("canary-by-header", "X-Version"), ("canary-by-header-value", "v1.2"), ("canary-by-cookie", "canary.flag")], by_header("x-version", CanaryHeaderRule::Value("v1.2".into())), Some("canary.flag"), 0, 100),
        ("value outside its characters", vec![("canary-by-header", "X-Version"), ("canary-by-header-value", "v#1"), ("canary-weight", "5")], by_header("x-version", CanaryHeaderRule::AlwaysNever), None, 5, 100),
        // Validated with its spaces removed, used as written.
        ("value with a space", vec![("canary-by-header", "X-Canary"), ("canary-by-header-value", "Do Canary")], by_header("x-canary", CanaryHeaderRule::Value("Do Canary".into())), None, 0, 100),
        // ingress-nginx's IsValidRegex refuses it: always/never only.
        ("pattern outside its characters", vec![("canary-by-header", "X-Canary"), ("canary-by-header-pattern", "^Do#Canary$")], by_header("x-canary", CanaryHeaderRule::AlwaysNever), None, 0, 100),
    ];
    for (name, extra, header, cookie, weight, weight_total) in cases {
        let mut annotations = vec![("canary", "true")];
        annotations.extend(extra);
        let translation = run(&[main_ingress("foo", "Prefix"), canary_ingress("canary", "2024-02-01T00:00:00Z", &annotations, "foo", "Prefix", "b", 8080)].concat());
        let canary = canary_of(&translation, "foo", "/info").unwrap_or_else(|| panic!("{name}: not attached"));
        assert_eq!((&canary.header, canary.cookie.as_deref(), canary.weight, canary.weight_total), (&header, cookie, weight, weight_total), "{name}");
    }
}

/// ingress-nginx has no balancer for a backend without endpoints (`balancer.lua`), so a canary
/// scaled to zero (or not ready yet) leaves every request to the main backend, not 503.
#[test]
fn a_canary_without_ready_endpoints_leaves_the_requests_to_the_main_backend() {
    let translation = run(&[
        main_ingress("foo", "Prefix"),
        canary_ingress("canary", "2024-02-01T00:00:00Z", &[("canary", "true"), ("canary-weight", "100")], "foo", "Prefix", "idle", 80),
    ]
    .concat());
    assert_eq!(canary_of(&translation, "foo", "/info"), None);
    let lines = diagnostic_lines(&translation);
    assert!(lines.iter().any(|l| l.contains("default/canary") && l.contains("keeps its main backend only")), "{lines:#?}");
}

/// And a main backend without endpoints has no balancer either, so its canary is never consulted:
/// every request answers 503, those the canary's rules pick too (`balancer.lua` `get_balancer`
/// returns nil before `route_to_alternative_balancer`).
#[test]
fn a_main_backend_without_ready_endpoints_answers_503_canary_or_not() {
    let main = ingress("main", &created("2024-01-01T00:00:00Z"), &[rule("foo", &[path("/info", "Prefix", "idle", 80)])]);
    let canary = canary_ingress("canary", "2024-02-01T00:00:00Z", &[("canary", "true"), ("canary-by-header", "always-canary")], "foo", "Prefix", "b", 8080);
    let translation = run(&[main, canary].concat());
    assert_eq!(canary_of(&translation, "foo", "/info"), None, "the main's empty cluster answers (Envoy: 503)");
    let lines = diagnostic_lines(&translation);
    assert!(lines.iter().any(|l| l.contains("default/canary") && l.contains("has no ready endpoints: requests answer 503")), "{lines:#?}");
    assert!(!translation.model.clusters.contains_key(&cluster_name("default", "b", 8080)), "the canary's cluster is not sent");
}

#[test]
fn what_a_canary_does_not_do() {
    // Canary annotations without canary: "true" -> an ordinary Ingress (which loses the path).
    let not_enabled = run(&[main_ingress("foo", "Prefix"), canary_ingress("canary", "2024-02-01T00:00:00Z", &[("canary-weight", "50")], "foo", "Prefix", "b", 8080)].concat());
    assert_eq!(canary_of(&not_enabled, "foo", "/info"), None);
    let lines = diagnostic_lines(&not_enabled);
    assert!(lines.iter().any(|l| l.contains("without canary: \"true\"")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("already served by the older Ingress default/main")), "{lines:#?}");

    // A canary of the main's own Service does nothing.
    let same = run(&[main_ingress("foo", "Prefix"), canary_ingress("canary", "2024-02-01T00:00:00Z", &[("canary", "true"), ("canary-weight", "50")], "foo", "Prefix", "a", 80)].concat());
    assert_eq!(canary_of(&same, "foo", "/info"), None);

    // A canary's own access annotations neither deny nor protect: the main Ingress's apply.
    let auth = run(&[main_ingress("foo", "Prefix"), canary_ingress("canary", "2024-02-01T00:00:00Z", &[("canary", "true"), ("auth-url", "http://auth/"), ("canary-weight", "50")], "foo", "Prefix", "b", 8080)].concat());
    assert!(canary_of(&auth, "foo", "/info").is_some());
    assert!(auth.denied_ingresses.is_empty());
    let lines = diagnostic_lines(&auth);
    assert!(lines.iter().any(|l| l.contains("auth-url") && l.contains("ignored on a canary Ingress")), "{lines:#?}");
}

#[test]
fn a_canary_is_spoken_to_like_the_main_backend() {
    let main = ingress("main", &format!("{}{}", created("2024-01-01T00:00:00Z"), nginx(&[("backend-protocol", "GRPC")])), &[rule("foo", &[path("/info", "Prefix", "a", 80)])]);
    let translation = run(&[main, canary_ingress("canary", "2024-02-01T00:00:00Z", &[("canary", "true"), ("backend-protocol", "HTTPS")], "foo", "Prefix", "b", 8080)].concat());
    let grpc = crate::model::UpstreamOptions { http2: true, ..Default::default() };
    let canary = canary_of(&translation, "foo", "/info").expect("attached");
    assert_eq!(canary.cluster, grpc.cluster_name(&cluster_name("default", "b", 8080)));
    assert_eq!(translation.model.clusters[&canary.cluster].options, grpc);
}

#[test]
fn a_sticky_main_makes_its_canary_sticky_unless_the_canary_says_legacy() {
    let sticky_main = ingress("main", &format!("{}{}", created("2024-01-01T00:00:00Z"), nginx(&[("affinity", "cookie"), ("session-cookie-name", "aff")])), &[rule("foo", &[path("/info", "Prefix", "a", 80)])]);
    for (behaviour, legacy, canary_balance) in [(None, false, Balance::RingHash), (Some("sticky"), false, Balance::RingHash), (Some("legacy"), true, Balance::RoundRobin)] {
        let mut annotations = vec![("canary", "true"), ("canary-weight", "1")];
        annotations.extend(behaviour.map(|value| ("affinity-canary-behavior", value)));
        let translation = run(&[sticky_main.clone(), canary_ingress("canary", "2024-02-01T00:00:00Z", &annotations, "foo", "Prefix", "b", 8080)].concat());
        let RouteAction::Forward(forward) = &route_at(&translation, "foo", "/info").action else { panic!() };
        assert_eq!(forward.affinity_cookie.as_deref(), Some("aff"), "{behaviour:?}");
        let canary = forward.canary.as_deref().expect("attached");
        assert_eq!(canary.legacy_affinity, legacy, "{behaviour:?}");
        assert_eq!(translation.model.clusters[&canary.cluster].options.balance, canary_balance, "{behaviour:?}: the canary's cluster");
        assert_eq!(translation.model.clusters[&forward.backends[0].cluster].options.balance, Balance::RingHash, "{behaviour:?}: the main's");
    }
    // Without affinity on the main Ingress there is no sticky cookie to follow.
    let translation = run(&[main_ingress("foo", "Prefix"), canary_ingress("canary", "2024-02-01T00:00:00Z", &[("canary", "true"), ("affinity", "cookie")], "foo", "Prefix", "b", 8080)].concat());
    let RouteAction::Forward(forward) = &route_at(&translation, "foo", "/info").action else { panic!() };
    assert_eq!(forward.affinity_cookie, None);
    assert_eq!(translation.model.clusters[&forward.canary.as_deref().unwrap().cluster].options.balance, Balance::RoundRobin, "the canary's own affinity is ignored");
}

/// A canary Ingress with a value ingress-nginx's validators refuse is rejected like any other:
/// nothing of it attaches, the main path serves its own backend.
#[test]
fn a_canary_with_a_refused_value_is_not_attached() {
    let translation = run(&[
        main_ingress("foo", "Prefix"),
        canary_ingress("canary", "2024-02-01T00:00:00Z", &[("canary", "true"), ("canary-weight", "100"), ("load-balance", "foo")], "foo", "Prefix", "b", 8080),
    ]
    .concat());
    assert_eq!(canary_of(&translation, "foo", "/info"), None);
    let lines = diagnostic_lines(&translation);
    assert!(lines.iter().any(|l| l.starts_with("error: Ingress default/canary: metadata.annotations[nginx.ingress.kubernetes.io/load-balance]") && l.contains("not served")), "{lines:#?}");
}
