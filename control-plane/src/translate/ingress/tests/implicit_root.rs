//! ingress-nginx's implicit `/` location of a host -> `VirtualHost::implicit_root`: the oldest
//! Ingress naming the host keeps its checks in front of the 404 of the paths no rule takes.

use wasm_ingress_filter::table::NOT_FOUND_CLUSTER;

use crate::model::Cidr;

use super::*;

/// A password list with the user `alice` (`{PLAIN}pw`).
const HTPASSWD_SECRET: &str = r#"
---
apiVersion: v1
kind: Secret
metadata: {name: htpasswd}
data: {auth: YWxpY2U6e1BMQUlOfXB3Cg==}
"#;

fn root_forward<'t>(translation: &'t Translation, host: &str) -> &'t Forward {
    match &host_of(translation, host).implicit_root {
        Some(RouteAction::Forward(forward)) => forward,
        other => panic!("{host}: {other:?}"),
    }
}

fn root_policy<'t>(translation: &'t Translation, host: &str) -> &'t RoutePolicy {
    let key = &root_forward(translation, host).policy;
    translation.model.policies.get(key).unwrap_or_else(|| panic!("{host}: policy {key:?} is not in the model"))
}

#[test]
fn the_oldest_ingress_naming_a_host_guards_the_paths_no_rule_takes() {
    let translation = run(&[
        ingress(
            "z-old",
            &format!("{}{}", created("2024-01-01T00:00:00Z"), &nginx(&[("whitelist-source-range", "10.0.0.0/8"), ("limit-rps", "5"), ("proxy-read-timeout", "300")])[..]),
            &[rule("shop.example.com", &[path("/app", "Prefix", "a", 80)])],
        ),
        ingress("a-young", &created("2025-01-01T00:00:00Z"), &[rule("shop.example.com", &[path("/other", "Prefix", "a", 80)])]),
    ]
    .concat());
    let forward = root_forward(&translation, "shop.example.com");
    assert_eq!(forward.backends.len(), 1);
    assert_eq!(forward.backends[0].cluster, NOT_FOUND_CLUSTER);
    let policy = root_policy(&translation, "shop.example.com");
    assert!(policy.answers_not_found);
    assert_eq!(policy.allow_sources, vec![Cidr::parse("10.0.0.0/8").unwrap()]);
    assert_eq!(policy.rate_limit.as_ref().map(|rate| (rate.requests, rate.zone.as_str())), Some((5, "default/z-old")));
    // What only an upstream would see is the default's: no two such policies differ by it.
    assert_eq!(policy.upstream_idle_timeout, RoutePolicy::default().upstream_idle_timeout);
    // The routes keep their own Ingress's policy.
    let RouteAction::Forward(app) = &route_at(&translation, "shop.example.com", "/app").action else { panic!() };
    assert!(!translation.model.policies[&app.policy].answers_not_found);
    let (_, notes) = translate_with_notes(&state(&format!("{OUR_CLASS}{BACKENDS}{}", ingress("n", &nginx(&[("limit-rps", "5")]), &[rule("n.example.com", &[path("/app", "Prefix", "a", 80)])]))), &TranslateOptions::default());
    assert_eq!(notes.implicit_roots.get("n.example.com").map(ToString::to_string).as_deref(), Some("default/n"));
    assert!(CompiledTable::check(&translation.model.route_table).is_ok());
}

#[test]
fn the_filters_own_checks_of_the_oldest_ingress_guard_the_implicit_root() {
    let basic = nginx(&[("auth-type", "basic"), ("auth-secret", "htpasswd"), ("auth-realm", "Staff only"), ("limit-connections", "2")]);
    let translation = run(&[HTPASSWD_SECRET, &ingress("staff", &basic, &[rule("staff.example.com", &[path("/admin", "Prefix", "a", 80)])])].concat());
    let forward = root_forward(&translation, "staff.example.com");
    assert_eq!(forward.basic_auth.as_ref().map(|basic| basic.realm.as_str()), Some("Staff only"));
    assert_eq!(forward.connection_limit.as_ref().map(|limit| limit.limit), Some(2));
    assert!(root_policy(&translation, "staff.example.com").answers_not_found);
}

#[test]
fn a_denied_or_redirecting_oldest_ingress_answers_its_implicit_root_so() {
    let translation = run(&[
        ingress("bad-list", &nginx(&[("whitelist-source-range", "10.0.0.0/33")]), &[rule("bad.example.com", &[path("/app", "Prefix", "a", 80)])]),
        ingress("moved", &nginx(&[("permanent-redirect", "https://new.example.com/")]), &[rule("moved.example.com", &[path("/app", "Prefix", "a", 80)])]),
    ]
    .concat());
    assert_eq!(host_of(&translation, "bad.example.com").implicit_root, Some(RouteAction::respond(503, wasm_ingress_filter::decision::UNAVAILABLE_BODY)));
    let Some(RouteAction::Redirect(redirect)) = &host_of(&translation, "moved.example.com").implicit_root else { panic!("{:?}", host_of(&translation, "moved.example.com")) };
    assert_eq!(redirect.status, 301);
}

#[test]
fn no_implicit_root_where_it_would_change_nothing() {
    let translation = run(&[
        // Nothing restricts access or redirects: no annotations, upstream settings, a body limit,
        // headers or CORS (a 404 either way).
        ingress("plain", "", &[rule("plain.example.com", &[path("/app", "Prefix", "a", 80)])]),
        ingress("slow", &nginx(&[("proxy-read-timeout", "300"), ("upstream-hash-by", "$request_uri")]), &[rule("slow.example.com", &[path("/app", "Prefix", "a", 80)])]),
        ingress("shaped", &nginx(&[("proxy-body-size", "8m"), ("enable-cors", "true"), ("x-forwarded-prefix", "/p")]), &[rule("shaped.example.com", &[path("/app", "Prefix", "a", 80)])]),
        // A `/` path takes every path.
        ingress("all", &nginx(&[("whitelist-source-range", "10.0.0.0/8")]), &[rule("all.example.com", &[path("/", "Prefix", "a", 80)])]),
        // The host's spec.defaultBackend takes them.
        ingress_with_spec(
            "own-default",
            &nginx(&[("whitelist-source-range", "10.0.0.0/8")]),
            &format!("{{ingressClassName: wasm, defaultBackend: {{service: {{name: a, port: {{number: 80}}}}}}, rules: [{}]}}", rule("own.example.com", &[path("/app", "Prefix", "a", 80)])),
        ),
        // Rules without a host are ingress-nginx's default server, whose `/` is its own.
        ingress("hostless", &nginx(&[("whitelist-source-range", "10.0.0.0/8")]), &[hostless_rule(&[path("/app", "Prefix", "a", 80)])]),
    ]
    .concat());
    for host in ["plain.example.com", "slow.example.com", "shaped.example.com", "all.example.com", "own.example.com", ""] {
        assert_eq!(host_of(&translation, host).implicit_root, None, "{host:?}");
    }
    assert!(translation.model.policies.values().all(|policy| !policy.answers_not_found), "no policy left over: {:?}", translation.model.policies);
}

#[test]
fn the_controllers_default_backend_answers_behind_the_implicit_root_and_a_catch_all_comes_first() {
    let yaml = ingress("listed", &nginx(&[("whitelist-source-range", "10.0.0.0/8")]), &[rule("listed.example.com", &[path("/app", "Prefix", "a", 80)])]);
    let with_flag = TranslateOptions { default_backend_service: Some(ObjectKey::new("default", "b")), ..TranslateOptions::default() };
    let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{yaml}")), &with_flag);
    let forward = root_forward(&translation, "listed.example.com");
    assert_eq!(forward.backends[0].cluster, cluster_name("default", "b", 8080), "proxied to --default-backend-service, with the list");
    assert!(root_policy(&translation, "listed.example.com").allow_sources == vec![Cidr::parse("10.0.0.0/8").unwrap()]);
    assert!(!translation.model.route_table.default_backend_is_catch_all);
    assert!(translation.model.clusters.contains_key(&cluster_name("default", "b", 8080)));

    // A catch-all Ingress answers before any implicit root: the table says so.
    let catch_all = ingress_with_spec("catch-all", "", "{ingressClassName: wasm, defaultBackend: {service: {name: b, port: {number: 8080}}}}");
    let translation = run(&[yaml.as_str(), &catch_all].concat());
    assert!(translation.model.route_table.default_backend_is_catch_all);
    assert_eq!(root_forward(&translation, "listed.example.com").backends[0].cluster, NOT_FOUND_CLUSTER);
}
