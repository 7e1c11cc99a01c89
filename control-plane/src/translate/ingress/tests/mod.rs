//! Translation tables: manifests (YAML, parsed by the real folder source) in -> model out, with
//! expected values built by the same helpers production uses (`cluster_name`, `regex_match`,
//! `unavailable`, `RouteAction::forward_to`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use wasm_ingress_filter::table::{ClientCertificate, Forward, Origin, HostPart, Location, PathMatch, PathPart, PathRewrite, Redirect, Route, RouteAction, VirtualHost};

use super::*;
use crate::model::{Endpoint, HeaderValue, RoutePolicy, Severity, TlsServer, UpstreamCluster};
use crate::source::files::ManifestSet;

// ---------------------------------------------------------------------------------------------
// Fixture builders (YAML, so the tests read like manifests)
// ---------------------------------------------------------------------------------------------

const OUR_CLASS: &str = "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: wasm}\nspec: {controller: wasm-ingress.dev/controller}\n";

/// Service `a` (port 80 named http -> endpoints :8080, one not ready), Service `b` (unnamed port
/// 8080 -> endpoints :9000), Service `idle` (port 80, no endpoints).
const BACKENDS: &str = r#"
---
apiVersion: v1
kind: Service
metadata: {name: a}
spec: {ports: [{name: http, port: 80, targetPort: 8080}, {name: admin, port: 81}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: admin, port: 8081}]
endpoints:
- {addresses: [10.0.0.2], conditions: {ready: true}}
- {addresses: [10.0.0.1]}
- {addresses: [10.0.0.3], conditions: {ready: false}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-2, labels: {kubernetes.io/service-name: a}}
addressType: IPv6
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: ["fd00::1"]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-other-namespace, namespace: other, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.9.9.9]}
---
apiVersion: v1
kind: Service
metadata: {name: b}
spec: {ports: [{port: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: b-1, labels: {kubernetes.io/service-name: b}}
addressType: IPv4
ports: [{port: 9000}]
endpoints:
- {addresses: [10.0.1.1]}
---
apiVersion: v1
kind: Service
metadata: {name: idle}
spec: {ports: [{port: 80}]}
"#;

fn path(path: &str, path_type: &str, service: &str, port: i32) -> String {
    format!(
        r#"{{path: "{path}", pathType: {path_type}, backend: {{service: {{name: {service}, port: {{number: {port}}}}}}}}}"#
    )
}

fn named_port_path(path: &str, service: &str, port_name: &str) -> String {
    format!(
        r#"{{path: "{path}", pathType: Prefix, backend: {{service: {{name: {service}, port: {{name: {port_name}}}}}}}}}"#
    )
}

fn rule(host: &str, paths: &[String]) -> String {
    format!(r#"{{host: "{host}", http: {{paths: [{}]}}}}"#, paths.join(", "))
}

fn hostless_rule(paths: &[String]) -> String {
    format!(r#"{{http: {{paths: [{}]}}}}"#, paths.join(", "))
}

/// An Ingress of class `wasm`; `metadata` is extra flow-mapping entries (`, annotations: {…}`).
fn ingress(name: &str, metadata: &str, rules: &[String]) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}{metadata}}}\nspec: {{ingressClassName: wasm, rules: [{}]}}\n",
        rules.join(", ")
    )
}

fn ingress_with_spec(name: &str, metadata: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}{metadata}}}\nspec: {spec}\n"
    )
}

fn created(timestamp: &str) -> String {
    format!(r#", creationTimestamp: "{timestamp}""#)
}

fn annotated(pairs: &[(&str, &str)]) -> String {
    let entries: Vec<String> = pairs.iter().map(|(k, v)| format!(r#""{k}": "{v}""#)).collect();
    format!(", annotations: {{{}}}", entries.join(", "))
}

/// Parse manifests with the real folder source; the fixtures themselves must be clean.
fn state(yaml: &str) -> ClusterState {
    let mut set = ManifestSet::default();
    set.apply_scan(BTreeMap::from([(PathBuf::from("test.yaml"), Ok(yaml.to_string()))]), Vec::new());
    let snapshot = set.snapshot();
    assert!(snapshot.diagnostics.is_empty(), "fixture does not parse: {:?}", snapshot.diagnostics);
    snapshot.state
}

fn run(yaml: &str) -> Translation {
    translate(&state(&format!("{OUR_CLASS}{BACKENDS}{yaml}")), &TranslateOptions::default())
}

// Expected values, built with production helpers.

fn forward(namespace: &str, service: &str, port: i32) -> RouteAction {
    RouteAction::forward_to(cluster_name(namespace, service, port))
}

fn rewritten(action: RouteAction, template: &str) -> RouteAction {
    match action {
        RouteAction::Forward(forward) => {
            RouteAction::Forward(Forward { rewrite: Some(PathRewrite::Template(template.into())), ..forward })
        }
        other => other,
    }
}

fn route(path: PathMatch, action: RouteAction, origin: &str) -> Route {
    Route { path, action, origin: Origin::parse(origin), https_redirect: None, answer_headers: Vec::new() }
}

fn vhost(host: &str, routes: Vec<Route>) -> VirtualHost {
    VirtualHost { host: host.into(), routes, fallback: None, fallback_https_redirect: None, implicit_root: None, app_root: None, client_certificate: None }
}

fn exact(p: &str) -> PathMatch {
    PathMatch::Exact(p.into())
}

fn prefix(p: &str) -> PathMatch {
    PathMatch::Prefix(p.into())
}

fn diagnostic_lines(translation: &Translation) -> Vec<String> {
    translation.diagnostics.iter().map(ToString::to_string).collect()
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

struct RouteCase {
    name: &'static str,
    manifests: String,
    hosts: Vec<VirtualHost>,
    /// Each entry must equal one diagnostic line; no other diagnostic may exist.
    diagnostics: Vec<&'static str>,
}

#[test]
fn routes_by_table() {
    let cases = vec![
        RouteCase {
            name: "prefix_and_exact_paths_forward_to_service_port_clusters",
            manifests: ingress("shop", "", &[rule("shop.example.com", &[path("/api", "Prefix", "a", 80), path("/login", "Exact", "b", 8080)])]),
            hosts: vec![vhost(
                "shop.example.com",
                vec![
                    route(exact("/login"), forward("default", "b", 8080), "default/shop: spec.rules[0].http.paths[1]"),
                    route(prefix("/api"), forward("default", "a", 80), "default/shop: spec.rules[0].http.paths[0]"),
                ],
            )],
            diagnostics: vec![],
        },
        RouteCase {
            name: "implementation_specific_is_prefix_and_named_port_resolves_to_its_number",
            manifests: ingress(
                "shop",
                "",
                &[rule("shop.example.com", &[path("/docs", "ImplementationSpecific", "b", 8080), named_port_path("/", "a", "admin")])],
            ),
            hosts: vec![vhost(
                "shop.example.com",
                vec![
                    route(prefix("/docs"), forward("default", "b", 8080), "default/shop: spec.rules[0].http.paths[0]"),
                    route(prefix("/"), forward("default", "a", 81), "default/shop: spec.rules[0].http.paths[1]"),
                ],
            )],
            diagnostics: vec![],
        },
        RouteCase {
            name: "missing_service_or_port_answers_503_and_the_rest_keeps_working",
            manifests: ingress(
                "shop",
                "",
                &[rule(
                    "shop.example.com",
                    &[path("/gone", "Prefix", "nope", 80), path("/wrong-port", "Prefix", "a", 9999), named_port_path("/bad-name", "a", "grpc"), path("/ok", "Prefix", "a", 80)],
                )],
            ),
            hosts: vec![vhost(
                "shop.example.com",
                vec![
                    route(prefix("/wrong-port"), unavailable(), "default/shop: spec.rules[0].http.paths[1]"),
                    route(prefix("/bad-name"), unavailable(), "default/shop: spec.rules[0].http.paths[2]"),
                    route(prefix("/gone"), unavailable(), "default/shop: spec.rules[0].http.paths[0]"),
                    route(prefix("/ok"), forward("default", "a", 80), "default/shop: spec.rules[0].http.paths[3]"),
                ],
            )],
            diagnostics: vec![
                "warning: Ingress default/shop: spec.rules[0].http.paths[0].backend.service.name: Service default/nope not found; requests answer 503",
                "warning: Ingress default/shop: spec.rules[0].http.paths[1].backend.service.port: Service default/a has no port 9999; requests answer 503",
                "warning: Ingress default/shop: spec.rules[0].http.paths[2].backend.service.port: Service default/a has no port named \"grpc\"; requests answer 503",
            ],
        },
        RouteCase {
            // ingress-nginx's quirk: the Ingress's port may name the Service port's targetPort.
            name: "a_port_that_is_the_services_target_port_picks_that_service_port",
            manifests: ingress("shop", "", &[rule("shop.example.com", &[path("/", "Prefix", "a", 8080)])]),
            hosts: vec![vhost("shop.example.com", vec![route(prefix("/"), forward("default", "a", 80), "default/shop: spec.rules[0].http.paths[0]")])],
            diagnostics: vec![
                "warning: Ingress default/shop: spec.rules[0].http.paths[0].backend.service.port: Service default/a has no port 8080; its port 80 has that targetPort and is used, as ingress-nginx picks (other controllers read the Ingress's port as the Service's)",
            ],
        },
        RouteCase {
            name: "service_without_ready_endpoints_is_still_routed_with_a_warning",
            manifests: ingress("shop", "", &[rule("shop.example.com", &[path("/", "Prefix", "idle", 80)])]),
            hosts: vec![vhost("shop.example.com", vec![route(prefix("/"), forward("default", "idle", 80), "default/shop: spec.rules[0].http.paths[0]")])],
            diagnostics: vec![
                "warning: Ingress default/shop: spec.rules[0].http.paths[0].backend.service: Service default/idle port 80 has no ready endpoints; requests answer 503",
            ],
        },
        RouteCase {
            name: "default_backend_without_endpoints_or_missing_changes_nothing",
            manifests: ingress("shop", ", annotations: {nginx.ingress.kubernetes.io/default-backend: idle}", &[rule("shop.example.com", &[path("/", "Prefix", "nope", 80)])])
                + &ingress("other", ", annotations: {nginx.ingress.kubernetes.io/default-backend: missing}", &[rule("other.example.com", &[path("/", "Prefix", "idle", 80)])]),
            hosts: vec![
                vhost("other.example.com", vec![route(prefix("/"), forward("default", "idle", 80), "default/other: spec.rules[0].http.paths[0]")]),
                vhost("shop.example.com", vec![route(prefix("/"), unavailable(), "default/shop: spec.rules[0].http.paths[0]")]),
            ],
            diagnostics: vec![
                "warning: Ingress default/other: metadata.annotations[nginx.ingress.kubernetes.io/default-backend]: Service default/missing not found; no default backend for this Ingress",
                "warning: Ingress default/other: spec.rules[0].http.paths[0].backend.service: Service default/idle port 80 has no ready endpoints; requests answer 503",
                "warning: Ingress default/shop: metadata.annotations[nginx.ingress.kubernetes.io/default-backend]: Service default/idle port 80 has no ready endpoints; no default backend for this Ingress",
                "warning: Ingress default/shop: spec.rules[0].http.paths[0].backend.service.name: Service default/nope not found; requests answer 503",
            ],
        },
        RouteCase {
            name: "hosts_are_lower_cased_wildcards_kept_hostless_rules_go_to_empty_host",
            manifests: ingress(
                "shop",
                "",
                &[
                    rule("Shop.Example.COM", &[path("/", "Prefix", "a", 80)]),
                    rule("*.apps.example.com", &[path("/", "Prefix", "b", 8080)]),
                    hostless_rule(&[path("/", "Prefix", "b", 8080)]),
                ],
            ),
            hosts: vec![
                vhost("", vec![route(prefix("/"), forward("default", "b", 8080), "default/shop: spec.rules[2].http.paths[0]")]),
                vhost("*.apps.example.com", vec![route(prefix("/"), forward("default", "b", 8080), "default/shop: spec.rules[1].http.paths[0]")]),
                vhost("shop.example.com", vec![route(prefix("/"), forward("default", "a", 80), "default/shop: spec.rules[0].http.paths[0]")]),
            ],
            diagnostics: vec![],
        },
        RouteCase {
            name: "invalid_hosts_skip_their_rule_only",
            manifests: ingress(
                "shop",
                "",
                &[
                    rule("10.0.0.1", &[path("/", "Prefix", "a", 80)]),
                    rule("shop.example.com:8080", &[path("/", "Prefix", "a", 80)]),
                    rule("foo.*.example.com", &[path("/", "Prefix", "a", 80)]),
                    rule("ok.example.com", &[path("/", "Prefix", "a", 80)]),
                ],
            ),
            hosts: vec![vhost("ok.example.com", vec![route(prefix("/"), forward("default", "a", 80), "default/shop: spec.rules[3].http.paths[0]")])],
            diagnostics: vec![
                "error: Ingress default/shop: spec.rules[0].host: host \"10.0.0.1\" is an IP address; Ingress hosts must be DNS names; rule skipped",
                "error: Ingress default/shop: spec.rules[1].host: host \"shop.example.com:8080\" must be a DNS name without port or path; rule skipped",
                "error: Ingress default/shop: spec.rules[2].host: host \"foo.*.example.com\" is not a valid DNS name (a wildcard must be the whole first label: *.example.com); rule skipped",
            ],
        },
        RouteCase {
            name: "path_without_leading_slash_or_path_type_is_skipped",
            manifests: ingress(
                "shop",
                "",
                &[rule(
                    "shop.example.com",
                    &[path("api", "Prefix", "a", 80), path("/x", "Fuzzy", "a", 80), path("/ok", "Prefix", "a", 80)],
                )],
            ),
            hosts: vec![vhost("shop.example.com", vec![route(prefix("/ok"), forward("default", "a", 80), "default/shop: spec.rules[0].http.paths[2]")])],
            diagnostics: vec![
                "error: Ingress default/shop: spec.rules[0].http.paths[0].path: path \"api\" must start with \"/\"; path skipped",
                "error: Ingress default/shop: spec.rules[0].http.paths[1].pathType: unknown pathType \"Fuzzy\" (Exact, Prefix or ImplementationSpecific); path skipped",
            ],
        },
        RouteCase {
            name: "ingresses_sharing_a_host_merge_and_the_oldest_wins_a_conflict",
            manifests: [
                ingress("young", &created("2024-06-01T00:00:00Z"), &[rule("shop.example.com", &[path("/api/", "Prefix", "b", 8080), path("/young", "Prefix", "b", 8080)])]),
                ingress("old", &created("2024-01-01T00:00:00Z"), &[rule("shop.example.com", &[path("/api", "Prefix", "a", 80)])]),
            ]
            .concat(),
            hosts: vec![vhost(
                "shop.example.com",
                vec![
                    route(prefix("/young"), forward("default", "b", 8080), "default/young: spec.rules[0].http.paths[1]"),
                    route(prefix("/api"), forward("default", "a", 80), "default/old: spec.rules[0].http.paths[0]"),
                ],
            )],
            diagnostics: vec![
                "error: Ingress default/young: spec.rules[0].http.paths[0]: host \"shop.example.com\" path \"/api/\" (Prefix) is already served by the older Ingress default/old (spec.rules[0].http.paths[0]); path ignored",
            ],
        },
        RouteCase {
            name: "without_timestamps_the_conflict_goes_to_namespace_then_name",
            manifests: [
                ingress("b-second", "", &[rule("shop.example.com", &[path("/", "Exact", "b", 8080)])]),
                ingress("a-first", "", &[rule("shop.example.com", &[path("/", "Exact", "a", 80)])]),
            ]
            .concat(),
            hosts: vec![vhost("shop.example.com", vec![route(exact("/"), forward("default", "a", 80), "default/a-first: spec.rules[0].http.paths[0]")])],
            diagnostics: vec![
                "error: Ingress default/b-second: spec.rules[0].http.paths[0]: host \"shop.example.com\" path \"/\" (Exact) is already served by the older Ingress default/a-first (spec.rules[0].http.paths[0]); path ignored",
            ],
        },
        RouteCase {
            // ingress-nginx's sortIngressSlice: created in the same second, `namespace/name`
            // descending (pathtype_exact.go's exact-suffix keeps /exact over duplicated-prefix).
            name: "created_in_the_same_second_the_later_name_is_the_older_as_ingress_nginx",
            manifests: [
                ingress("exact-suffix", &created("2024-01-01T00:00:00Z"), &[rule("shop.example.com", &[path("/", "Exact", "b", 8080)])]),
                ingress("duplicated-prefix", &created("2024-01-01T00:00:00Z"), &[rule("shop.example.com", &[path("/", "Exact", "a", 80)])]),
            ]
            .concat(),
            hosts: vec![vhost("shop.example.com", vec![route(exact("/"), forward("default", "b", 8080), "default/exact-suffix: spec.rules[0].http.paths[0]")])],
            diagnostics: vec![
                "error: Ingress default/duplicated-prefix: spec.rules[0].http.paths[0]: host \"shop.example.com\" path \"/\" (Exact) is already served by the older Ingress default/exact-suffix (spec.rules[0].http.paths[0]); path ignored",
            ],
        },
        RouteCase {
            name: "exact_and_prefix_on_the_same_path_do_not_conflict",
            manifests: ingress("shop", "", &[rule("shop.example.com", &[path("/a", "Prefix", "a", 80), path("/a", "Exact", "b", 8080)])]),
            hosts: vec![vhost(
                "shop.example.com",
                vec![
                    route(exact("/a"), forward("default", "b", 8080), "default/shop: spec.rules[0].http.paths[1]"),
                    route(prefix("/a"), forward("default", "a", 80), "default/shop: spec.rules[0].http.paths[0]"),
                ],
            )],
            diagnostics: vec![],
        },
        RouteCase {
            name: "rewrite_target_turns_every_path_of_the_host_into_ordered_case_insensitive_regexes",
            manifests: [
                ingress(
                    "rewrite",
                    &annotated(&[(REWRITE_TARGET, "/$2")]),
                    &[rule("shop.example.com", &[path("/something(/|$)(.*)", "ImplementationSpecific", "a", 80)])],
                ),
                ingress("plain", "", &[rule("shop.example.com", &[path("/", "Prefix", "b", 8080), path("/exact", "Exact", "b", 8080), path("/zzzzz", "Prefix", "b", 8080)])]),
                ingress("other-host", "", &[rule("other.example.com", &[path("/x", "Prefix", "b", 8080)])]),
            ]
            .concat(),
            hosts: vec![
                vhost("other.example.com", vec![route(prefix("/x"), forward("default", "b", 8080), "default/other-host: spec.rules[0].http.paths[0]")]),
                vhost(
                    "shop.example.com",
                    vec![
                        route(regex_match("/something(/|$)(.*)"), rewritten(forward("default", "a", 80), "/$2"), "default/rewrite: spec.rules[0].http.paths[0]"),
                        route(regex_match("/zzzzz"), forward("default", "b", 8080), "default/plain: spec.rules[0].http.paths[2]"),
                        route(regex_match("/exact"), forward("default", "b", 8080), "default/plain: spec.rules[0].http.paths[1]"),
                        route(regex_match("/"), forward("default", "b", 8080), "default/plain: spec.rules[0].http.paths[0]"),
                    ],
                ),
            ],
            diagnostics: vec![],
        },
        RouteCase {
            name: "use_regex_alone_enables_regex_mode_without_rewrite",
            manifests: ingress("re", &annotated(&[(USE_REGEX, "true")]), &[rule("shop.example.com", &[path("/foo/.*", "Prefix", "a", 80)])]),
            hosts: vec![vhost("shop.example.com", vec![route(regex_match("/foo/.*"), forward("default", "a", 80), "default/re: spec.rules[0].http.paths[0]")])],
            diagnostics: vec![],
        },
        RouteCase {
            name: "rewrite_target_equal_to_the_path_does_nothing",
            manifests: ingress("same", &annotated(&[(REWRITE_TARGET, "/app")]), &[rule("shop.example.com", &[path("/app", "Prefix", "a", 80)])]),
            hosts: vec![vhost("shop.example.com", vec![route(prefix("/app"), forward("default", "a", 80), "default/same: spec.rules[0].http.paths[0]")])],
            diagnostics: vec![],
        },
        RouteCase {
            name: "regex_mode_ties_go_to_reverse_byte_order_then_age",
            manifests: [
                ingress("old", &[created("2024-01-01T00:00:00Z"), annotated(&[(USE_REGEX, "true")])].concat(), &[rule("h.example.com", &[path("/aa", "Prefix", "a", 80), path("/bb", "Prefix", "a", 80)])]),
                ingress("new", &created("2024-02-01T00:00:00Z"), &[rule("h.example.com", &[path("/aa", "Exact", "b", 8080)])]),
            ]
            .concat(),
            hosts: vec![vhost(
                "h.example.com",
                vec![
                    route(regex_match("/bb"), forward("default", "a", 80), "default/old: spec.rules[0].http.paths[1]"),
                    route(regex_match("/aa"), forward("default", "a", 80), "default/old: spec.rules[0].http.paths[0]"),
                ],
            )],
            diagnostics: vec![
                "error: Ingress default/new: spec.rules[0].http.paths[0]: host \"h.example.com\" path \"(?i)/aa\" (regex) is already served by the older Ingress default/old (spec.rules[0].http.paths[0]); path ignored",
            ],
        },
        RouteCase {
            name: "unsupported_annotations_warn_and_change_nothing",
            manifests: ingress(
                "shop",
                &annotated(&[("nginx.ingress.kubernetes.io/limit-rate", "100"), ("nginx.ingress.kubernetes.io/configuration-snippet", "x")]),
                &[rule("shop.example.com", &[path("/", "Prefix", "a", 80)])],
            ),
            hosts: vec![vhost("shop.example.com", vec![route(prefix("/"), forward("default", "a", 80), "default/shop: spec.rules[0].http.paths[0]")])],
            diagnostics: vec![
                "warning: Ingress default/shop: metadata.annotations[nginx.ingress.kubernetes.io/configuration-snippet]: only header statements of a snippet are applied, and \"x\" is not a header statement; the snippet is not applied (the rest of the Ingress is served)",
                "warning: Ingress default/shop: metadata.annotations[nginx.ingress.kubernetes.io/limit-rate]: annotation nginx.ingress.kubernetes.io/limit-rate is not supported yet; ignored",
            ],
        },
        RouteCase {
            name: "resource_backend_is_unsupported_and_skipped",
            manifests: ingress_with_spec(
                "bucket",
                "",
                r#"{ingressClassName: wasm, rules: [{host: s.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {resource: {kind: Bucket, name: b}}}]}}]}"#,
            ),
            hosts: vec![vhost("s.example.com", vec![])],
            diagnostics: vec!["error: Ingress default/bucket: spec.rules[0].http.paths[0].backend.resource: resource backends are not supported; skipped"],
        },
    ];
    for case in cases {
        let translation = run(&case.manifests);
        assert_eq!(translation.model.route_table.hosts, case.hosts, "{}", case.name);
        let mut lines = diagnostic_lines(&translation);
        let mut expected: Vec<String> = case.diagnostics.iter().map(|s| s.to_string()).collect();
        lines.sort();
        expected.sort();
        assert_eq!(lines, expected, "{}", case.name);
    }
}

#[test]
fn invalid_regex_is_reported_and_skipped_while_other_paths_stay() {
    let translation = run(&ingress(
        "re",
        &annotated(&[(USE_REGEX, "true")]),
        &[rule(
            "shop.example.com",
            &[path("/ok/(.*)", "Prefix", "a", 80), path("/broken/(unclosed", "Prefix", "a", 80)],
        )],
    ));
    let hosts = &translation.model.route_table.hosts;
    assert_eq!(
        hosts,
        &vec![vhost(
            "shop.example.com",
            vec![route(
                regex_match("/ok/(.*)"),
                forward("default", "a", 80),
                "default/re: spec.rules[0].http.paths[0]"
            )]
        )]
    );
    let lines = diagnostic_lines(&translation);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("error: Ingress default/re: spec.rules[0].http.paths[1].path: "), "{lines:?}");
    assert!(lines[0].ends_with("; path skipped"), "{lines:?}");
}

// ---------------------------------------------------------------------------------------------
// Class selection
// ---------------------------------------------------------------------------------------------

#[test]
fn ingress_class_decides_what_is_served() {
    let simple_rules = r#"rules: [{host: h.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}}]"#;
    let default_class = "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: wasm-default, annotations: {ingressclass.kubernetes.io/is-default-class: \"true\"}}\nspec: {controller: wasm-ingress.dev/controller}\n";
    let foreign_class = "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: nginx}\nspec: {controller: k8s.io/ingress-nginx}\n";
    let alias_class = "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: ours-too}\nspec: {controller: wasm-ingress.dev/controller}\n";
    struct Case {
        name: &'static str,
        classes: String,
        metadata: String,
        spec_class: &'static str,
        served: bool,
    }
    let cases = [
        Case {
            name: "class name equals --ingress-class",
            classes: String::new(),
            metadata: String::new(),
            spec_class: "ingressClassName: wasm, ",
            served: true,
        },
        Case {
            name: "class object with our controller",
            classes: alias_class.into(),
            metadata: String::new(),
            spec_class: "ingressClassName: ours-too, ",
            served: true,
        },
        Case {
            name: "class object of another controller",
            classes: foreign_class.into(),
            metadata: String::new(),
            spec_class: "ingressClassName: nginx, ",
            served: false,
        },
        Case {
            name: "unknown class name",
            classes: String::new(),
            metadata: String::new(),
            spec_class: "ingressClassName: traefik, ",
            served: false,
        },
        Case {
            name: "legacy annotation ours",
            classes: String::new(),
            metadata: annotated(&[(LEGACY_CLASS_ANNOTATION, "wasm")]),
            spec_class: "",
            served: true,
        },
        Case {
            name: "legacy annotation other",
            classes: String::new(),
            metadata: annotated(&[(LEGACY_CLASS_ANNOTATION, "nginx")]),
            spec_class: "",
            served: false,
        },
        Case {
            name: "no class, our class is default",
            classes: default_class.into(),
            metadata: String::new(),
            spec_class: "",
            served: true,
        },
        Case {
            name: "no class, no default class",
            classes: alias_class.into(),
            metadata: String::new(),
            spec_class: "",
            served: false,
        },
    ];
    for case in cases {
        let yaml = format!(
            "{}{BACKENDS}{}",
            case.classes,
            ingress_with_spec("i", &case.metadata, &format!("{{{}{simple_rules}}}", case.spec_class))
        );
        let (translation, notes) = translate_with_notes(&state(&yaml), &TranslateOptions::default());
        let served = !translation.model.route_table.hosts.is_empty();
        assert_eq!(served, case.served, "{}", case.name);
        assert_eq!(
            translation.served_ingresses.contains(&ObjectKey::new("default", "i")),
            case.served,
            "{}",
            case.name
        );
        assert_eq!(notes.ignored_ingresses.contains(&ObjectKey::new("default", "i")), !case.served, "{}", case.name);
        assert!(
            translation.diagnostics.is_empty(),
            "{}: ignored Ingresses get no diagnostic: {:?}",
            case.name,
            translation.diagnostics
        );
    }
}

#[test]
fn adopting_ingress_nginx_class_serves_its_ingresses_unedited() {
    // `serve --ingress-class nginx --controller-name k8s.io/ingress-nginx`, beside ingress-nginx.
    let simple_rules = |host: &str| {
        format!("rules: [{{host: {host}, http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: a, port: {{number: 80}}}}}}}}]}}}}]")
    };
    let nginx_class = "---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: nginx, annotations: {ingressclass.kubernetes.io/is-default-class: \"true\"}}\nspec: {controller: k8s.io/ingress-nginx}\n";
    let yaml = format!(
        "{nginx_class}{BACKENDS}{}{}{}{}",
        ingress_with_spec("by-name", "", &format!("{{ingressClassName: nginx, {}}}", simple_rules("a.example.com"))),
        ingress_with_spec("legacy", &annotated(&[(LEGACY_CLASS_ANNOTATION, "nginx")]), &format!("{{{}}}", simple_rules("b.example.com"))),
        ingress_with_spec("classless", "", &format!("{{{}}}", simple_rules("c.example.com"))),
        ingress_with_spec("theirs", "", &format!("{{ingressClassName: wasm, {}}}", simple_rules("d.example.com"))),
    );
    let options = TranslateOptions {
        ingress_class: "nginx".into(),
        controller_name: "k8s.io/ingress-nginx".into(),
        ..TranslateOptions::default()
    };
    let (translation, notes) = translate_with_notes(&state(&yaml), &options);
    let served: Vec<String> = translation.served_ingresses.iter().map(ToString::to_string).collect();
    // The class by name, the legacy annotation, and (the nginx class being the default) no class.
    assert_eq!(served, ["default/by-name", "default/classless", "default/legacy"]);
    assert_eq!(notes.ignored_ingresses.iter().map(ToString::to_string).collect::<Vec<_>>(), ["default/theirs"]);
    // The class object is ingress-nginx's own: no complaint about its controller.
    assert!(translation.diagnostics.is_empty(), "{:?}", translation.diagnostics);
}

/// ingress-nginx writes its address on every Ingress of its store, served or not; an Ingress whose
/// annotation value it refuses is not in it, nor one of another class.
#[test]
fn status_is_ours_on_every_ingress_ingress_nginx_would_load() {
    let shop = || [rule("shop.example", &[path("/", "Prefix", "a", 80)])];
    let yaml = [
        ingress("first", &created("2024-01-01T00:00:00Z"), &shop()),
        ingress("shadowed", &created("2024-02-01T00:00:00Z"), &shop()),
        ingress_with_spec("tls-only", "", "{ingressClassName: wasm, tls: [{hosts: [x.example], secretName: missing}]}"),
        ingress("refused", &annotated(&[("nginx.ingress.kubernetes.io/auth-type", "kerberos")]), &[rule("refused.example", &[path("/", "Prefix", "a", 80)])]),
        ingress_with_spec("theirs", "", "{ingressClassName: other, rules: [{host: theirs.example, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}}]}"),
    ]
    .concat();
    let translation = run(&yaml);
    let names = |set: &BTreeSet<ObjectKey>| set.iter().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(names(&translation.served_ingresses), ["default/first"]);
    assert_eq!(names(&translation.loaded_ingresses), ["default/first", "default/shadowed", "default/tls-only"]);
}

#[test]
fn class_named_like_ours_but_owned_by_another_controller_is_reported() {
    let yaml = "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: wasm}\nspec: {controller: k8s.io/ingress-nginx}\n";
    let translation = translate(&state(yaml), &TranslateOptions::default());
    assert_eq!(
        diagnostic_lines(&translation),
        ["warning: IngressClass wasm: spec.controller: controller is \"k8s.io/ingress-nginx\", not \"wasm-ingress.dev/controller\": Ingresses of class \"wasm\" are not served by this controller"]
    );
}

// ---------------------------------------------------------------------------------------------
// Clusters and endpoints
// ---------------------------------------------------------------------------------------------

#[test]
fn clusters_hold_ready_endpoints_matched_by_port_name() {
    let translation = run(&ingress(
        "shop",
        "",
        &[rule(
            "shop.example.com",
            &[
                path("/a", "Prefix", "a", 80),
                path("/admin", "Prefix", "a", 81),
                path("/b", "Prefix", "b", 8080),
                path("/idle", "Prefix", "idle", 80),
            ],
        )],
    ));
    let endpoint = |address: &str, port: u16| Endpoint { address: address.into(), port };
    let expected: BTreeMap<ClusterName, UpstreamCluster> = [
        // nil `ready` counts as ready; `ready: false` is left out; IPv6 slices too; other namespaces never.
        (
            cluster_name("default", "a", 80),
            vec![endpoint("10.0.0.1", 8080), endpoint("10.0.0.2", 8080), endpoint("fd00::1", 8080)],
        ),
        (cluster_name("default", "a", 81), vec![endpoint("10.0.0.1", 8081), endpoint("10.0.0.2", 8081)]),
        (cluster_name("default", "b", 8080), vec![endpoint("10.0.1.1", 9000)]),
        (cluster_name("default", "idle", 80), vec![]),
    ]
    .into_iter()
    .map(|(name, endpoints)| (name.clone(), UpstreamCluster { name, endpoints, options: Default::default() }))
    .collect();
    assert_eq!(translation.model.clusters, expected);
}

/// Hand-made EndpointSlices of a Service without a selector: one without ports, or with ports
/// but no names, is reached on the Service port's numeric targetPort (ingress-nginx's fallback);
/// one whose ports have other names serves other ports.
#[test]
fn slices_without_port_names_are_reached_on_the_target_port() {
    let manual = r#"
---
apiVersion: v1
kind: Service
metadata: {name: manual}
spec: {ports: [{name: web, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: manual-1, labels: {kubernetes.io/service-name: manual}}
addressType: IPv4
endpoints:
- {addresses: [10.0.5.1]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: manual-2, labels: {kubernetes.io/service-name: manual}}
addressType: IPv4
ports: [{port: 8080}]
endpoints:
- {addresses: [10.0.5.2]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: manual-3, labels: {kubernetes.io/service-name: manual}}
addressType: IPv4
ports: [{name: metrics, port: 9100}]
endpoints:
- {addresses: [10.0.5.3]}
"#;
    let translation = run(&[manual.to_string(), ingress("shop", "", &[rule("shop.example.com", &[path("/", "Prefix", "manual", 80)])])].concat());
    let endpoints = &translation.model.clusters[&cluster_name("default", "manual", 80)].endpoints;
    let endpoint = |address: &str| Endpoint { address: address.into(), port: 8080 };
    assert_eq!(endpoints, &[endpoint("10.0.5.1"), endpoint("10.0.5.2")]);
}

#[test]
fn clusters_of_paths_that_lost_a_conflict_are_not_sent() {
    let translation = run(&[
        ingress("a-first", "", &[rule("h.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("b-second", "", &[rule("h.example.com", &[path("/", "Prefix", "b", 8080)])]),
    ]
    .concat());
    let names: Vec<_> = translation.model.clusters.keys().cloned().collect();
    assert_eq!(names, [cluster_name("default", "a", 80)]);
}

// ---------------------------------------------------------------------------------------------
// Default backends
// ---------------------------------------------------------------------------------------------

#[test]
fn default_backend_without_rules_is_the_catch_all_and_with_rules_the_hosts_fallback() {
    let translation = run(&[
        ingress_with_spec("catch-all", &created("2024-01-01T00:00:00Z"), "{ingressClassName: wasm, defaultBackend: {service: {name: b, port: {number: 8080}}}}"),
        ingress_with_spec("later-catch-all", &created("2024-02-01T00:00:00Z"), "{ingressClassName: wasm, defaultBackend: {service: {name: a, port: {number: 80}}}}"),
        ingress_with_spec(
            "shop",
            &created("2024-03-01T00:00:00Z"),
            r#"{ingressClassName: wasm, defaultBackend: {service: {name: a, port: {number: 81}}}, rules: [{host: shop.example.com, http: {paths: [{path: /api, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}}]}"#,
        ),
        ingress_with_spec(
            "shop-too",
            &created("2024-04-01T00:00:00Z"),
            r#"{ingressClassName: wasm, defaultBackend: {service: {name: b, port: {number: 8080}}}, rules: [{host: shop.example.com}]}"#,
        ),
    ]
    .concat());
    let table = &translation.model.route_table;
    assert_eq!(table.default_backend, Some(forward("default", "b", 8080)));
    assert_eq!(
        table.hosts,
        vec![VirtualHost {
            host: "shop.example.com".into(),
            routes: vec![route(
                prefix("/api"),
                forward("default", "a", 80),
                "default/shop: spec.rules[0].http.paths[0]"
            )],
            fallback: Some(forward("default", "a", 81)),
            fallback_https_redirect: None,
            implicit_root: None,
            app_root: None,
            client_certificate: None,
        }]
    );
    assert_eq!(
        diagnostic_lines(&translation),
        [
            "error: Ingress default/later-catch-all: spec.defaultBackend: the catch-all default backend is already set by the older Ingress default/catch-all; ignored",
            "error: Ingress default/shop-too: spec.defaultBackend: host \"shop.example.com\" already takes its default backend from the older Ingress default/shop; ignored for this host",
        ]
    );
    let served: Vec<String> = translation.served_ingresses.iter().map(ToString::to_string).collect();
    assert_eq!(served, ["default/catch-all", "default/shop"]);
    assert!(translation.model.clusters.contains_key(&cluster_name("default", "a", 81)));

    // `--disable-catch-all` (ingress-nginx's flag): every Ingress with a spec.defaultBackend is
    // left out, rules and all.
    let options = TranslateOptions { disable_catch_all: true, ..TranslateOptions::default() };
    let fixture = [
        ingress_with_spec("catch-all", &created("2024-01-01T00:00:00Z"), "{ingressClassName: wasm, defaultBackend: {service: {name: b, port: {number: 8080}}}}"),
        ingress("plain", "", &[rule("blog.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress_with_spec(
            "shop",
            &created("2024-03-01T00:00:00Z"),
            r#"{ingressClassName: wasm, defaultBackend: {service: {name: a, port: {number: 81}}}, rules: [{host: shop.example.com, http: {paths: [{path: /api, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}}]}"#,
        ),
    ]
    .concat();
    let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{fixture}")), &options);
    assert_eq!(translation.model.route_table.default_backend, None);
    let hosts: Vec<&str> = translation.model.route_table.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(hosts, ["blog.example.com"]);
    let served: Vec<String> = translation.served_ingresses.iter().map(ToString::to_string).collect();
    assert_eq!(served, ["default/plain"]);
    let ignored = "spec.defaultBackend: ignored: it has a spec.defaultBackend and catch-all Ingresses are disabled (--disable-catch-all), as in ingress-nginx";
    assert_eq!(
        diagnostic_lines(&translation),
        [format!("warning: Ingress default/catch-all: {ignored}"), format!("warning: Ingress default/shop: {ignored}")]
    );
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

const EC_CRT: &str = include_str!("../testdata/ec.crt");
const EC_KEY: &str = include_str!("../testdata/ec-sec1.key");
const RSA_CRT: &str = include_str!("../testdata/rsa.crt");
const RSA_KEY: &str = include_str!("../testdata/rsa-pkcs1.key");

fn tls_secret_yaml(name: &str, cert: &str, key: &str) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "---\napiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata: {{name: {name}}}\ndata: {{tls.crt: {}, tls.key: {}}}\n",
        b64(cert),
        b64(key)
    )
}

fn tls_ingress(name: &str, metadata: &str, tls: &str, hosts: &[&str]) -> String {
    let rules: Vec<String> = hosts.iter().map(|h| rule(h, &[path("/", "Prefix", "a", 80)])).collect();
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}{metadata}}}\nspec: {{ingressClassName: wasm, tls: {tls}, rules: [{}]}}\n",
        rules.join(", ")
    )
}

#[test]
fn tls_entries_become_sni_servers_with_checked_certificates() {
    let translation = run(&[
        tls_secret_yaml("ec", EC_CRT, EC_KEY),
        // An Opaque Secret with the same keys serves too (External Secrets, `kubectl create secret
        // generic`), as ingress-nginx reads tls.crt and tls.key whatever the type.
        tls_secret_yaml("rsa", RSA_CRT, RSA_KEY).replace("type: kubernetes.io/tls", "type: Opaque"),
        tls_secret_yaml("mismatch", EC_CRT, RSA_KEY),
        tls_secret_yaml("garbage", "not a cert", EC_KEY),
        tls_ingress("old", &created("2024-01-01T00:00:00Z"), r#"[{hosts: [A.example.com, "*.wild.example.com"], secretName: ec}]"#, &["a.example.com"]),
        // No hosts in the entry: the Ingress's rule hosts.
        tls_ingress("implicit", &created("2024-02-01T00:00:00Z"), "[{secretName: rsa}]", &["b.example.com", "c.example.com"]),
        // a.example.com is already the old Ingress's (another Secret); d.example.com is free.
        tls_ingress("young", &created("2024-03-01T00:00:00Z"), "[{hosts: [a.example.com, d.example.com], secretName: rsa}]", &["d.example.com"]),
        tls_ingress(
            "broken",
            &created("2024-04-01T00:00:00Z"),
            "[{hosts: [e.example.com], secretName: mismatch}, {hosts: [f.example.com], secretName: garbage}, {hosts: [g.example.com], secretName: missing}]",
            &["e.example.com"],
        ),
    ]
    .concat());
    assert_eq!(
        translation.model.tls_servers,
        vec![
            TlsServer {
                server_names: vec!["*.wild.example.com".into(), "a.example.com".into()],
                certificate: "default/ec".into()
            },
            TlsServer {
                server_names: vec!["b.example.com".into(), "c.example.com".into(), "d.example.com".into()],
                certificate: "default/rsa".into()
            },
        ]
    );
    let certificates: Vec<_> = translation.model.certificates.keys().cloned().collect();
    assert_eq!(certificates, ["default/ec", "default/rsa"]);
    assert_eq!(translation.model.certificates["default/rsa"].cert_chain_pem, RSA_CRT);
    assert_eq!(translation.model.certificates["default/rsa"].private_key_pem, RSA_KEY);
    // The test certificates name ec.example.com and rsa.example.com only: each TLS host they serve
    // is also warned about (`a_tls_host_its_certificate_does_not_name_is_warned`), left out here.
    let lines: Vec<String> = diagnostic_lines(&translation).into_iter().filter(|l| !l.contains("its certificate does not name")).collect();
    assert_eq!(
        lines,
        [
            "error: Ingress default/broken: spec.tls[0].secretName: Secret default/mismatch the private key in tls.key does not belong to the certificate in tls.crt (the certificate's key type differs from the private key's); TLS entry skipped: its hosts are served over HTTPS with the default certificate (--default-ssl-certificate, else the self-signed one), as ingress-nginx does, and still redirected to HTTPS",
            "error: Ingress default/broken: spec.tls[1].secretName: Secret default/garbage tls.crt contains no PEM certificate; TLS entry skipped: its hosts are served over HTTPS with the default certificate (--default-ssl-certificate, else the self-signed one), as ingress-nginx does, and still redirected to HTTPS",
            "error: Ingress default/broken: spec.tls[2].secretName: Secret default/missing not found; TLS entry skipped: its hosts are served over HTTPS with the default certificate (--default-ssl-certificate, else the self-signed one), as ingress-nginx does, and still redirected to HTTPS",
            "error: Ingress default/young: spec.tls[0]: server name \"a.example.com\" is already served with Secret default/ec by the older Ingress default/old; ignored for this name",
        ]
    );
    // The broken Ingress is still served (over HTTPS with the default certificate).
    assert!(translation.model.route_table.hosts.iter().any(|h| h.host == "e.example.com"));
    assert!(translation.served_ingresses.contains(&ObjectKey::new("default", "broken")));
}

// ---------------------------------------------------------------------------------------------
// Whole-table properties
// ---------------------------------------------------------------------------------------------

#[test]
fn version_is_the_content_hash_and_changes_only_with_content() {
    let yaml = ingress("shop", "", &[rule("shop.example.com", &[path("/", "Prefix", "a", 80)])]);
    let first = run(&yaml).model.route_table;
    let again = run(&yaml).model.route_table;
    assert_eq!(first.schema, wasm_ingress_filter::table::SCHEMA_VERSION);
    assert_eq!(first.version.len(), 64);
    assert_eq!(first.version, again.version, "identical input, identical version");
    let mut unversioned = first.clone();
    unversioned.version.clear();
    assert_eq!(first.version, hex::encode(sha2::Sha256::digest(unversioned.to_json().as_bytes())));
    let changed = run(&yaml.replace("path: \"/\"", "path: \"/x\"")).model.route_table;
    assert_ne!(first.version, changed.version);
}

#[test]
fn translation_is_deterministic_across_input_order() {
    let a = ingress("a", "", &[rule("h.example.com", &[path("/a", "Prefix", "a", 80)])]);
    let b = ingress(
        "b",
        "",
        &[
            rule("h.example.com", &[path("/b", "Prefix", "b", 8080)]),
            rule("g.example.com", &[path("/", "Prefix", "b", 8080)]),
        ],
    );
    let one = run(&format!("{a}{b}"));
    let two = run(&format!("{b}{a}"));
    assert_eq!(one, two);
}

#[test]
fn empty_state_gives_an_empty_valid_table() {
    let translation = translate(&ClusterState::default(), &TranslateOptions::default());
    assert!(translation.model.route_table.hosts.is_empty());
    assert_eq!(translation.model.route_table.schema, wasm_ingress_filter::table::SCHEMA_VERSION);
    assert!(translation.diagnostics.is_empty());
    assert!(translation.diagnostics.iter().all(|d| d.severity != Severity::Error));
}

#[test]
fn hosts_are_validated_by_table() {
    let cases: &[(&str, Option<&str>)] = &[
        ("", Some("")),
        ("Foo.Example.com", Some("foo.example.com")),
        ("*.example.com", Some("*.example.com")),
        ("*.com", Some("*.com")),
        ("a-b.c1.example", Some("a-b.c1.example")),
        ("localhost", Some("localhost")),
        ("*", None),
        ("foo.*.com", None),
        ("-foo.com", None),
        ("foo_bar.com", None),
        ("foo.com.", None),
        ("1.2.3.4", None),
        ("[::1]", None),
        ("foo.com:80", None),
        ("foo.com/x", None),
    ];
    for (input, expected) in cases {
        assert_eq!(normalize_host(input).ok().as_deref(), *expected, "{input:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Fail closed
// ---------------------------------------------------------------------------------------------

#[test]
fn access_controls_that_cannot_be_enforced_serve_the_ingress_closed() {
    let denied = |status| RouteAction::respond(status, denied_body(status));
    let translation = run(&[
        // Protected app: its two paths and its host fallback answer 403, not the backend.
        ingress_with_spec(
            "protected",
            &format!("{}{}", created("2024-01-01T00:00:00Z"), annotated(&[("nginx.ingress.kubernetes.io/configuration-snippet", "deny all;")])),
            &format!(
                "{{ingressClassName: wasm, defaultBackend: {{service: {{name: a, port: {{number: 80}}}}}}, rules: [{}]}}",
                rule("app.example.com", &[path("/", "Prefix", "a", 80), path("/admin", "Prefix", "does-not-exist", 80)])
            ),
        ),
        // A younger Ingress on the same host cannot serve the protected paths open.
        ingress(
            "younger",
            &created("2025-01-01T00:00:00Z"),
            &[rule("app.example.com", &[path("/admin", "Prefix", "b", 8080), path("/public", "Prefix", "b", 8080)])],
        ),
        // Basic auth without its Secret answers 503, as ingress-nginx's denied location.
        ingress("broken-auth", &annotated(&[("nginx.ingress.kubernetes.io/auth-type", "basic")]), &[rule("auth.example.com", &[path("/", "Prefix", "a", 80)])]),
        // Unaffected.
        ingress("open", "", &[rule("open.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat());
    let table = &translation.model.route_table;
    let host = |name: &str| table.hosts.iter().find(|h| h.host == name).unwrap();
    let app = host("app.example.com");
    let action_of = |vhost: &VirtualHost, p: &str| vhost.routes.iter().find(|r| r.path == prefix(p)).map(|r| r.action.clone());
    assert_eq!(action_of(app, "/"), Some(denied(403)));
    assert_eq!(action_of(app, "/admin"), Some(denied(403)), "the older, protected Ingress keeps the path even with a missing Service");
    assert_eq!(action_of(app, "/public"), Some(forward("default", "b", 8080)), "the younger Ingress's own path is its own");
    assert_eq!(app.fallback, Some(denied(403)));
    assert_eq!(action_of(host("auth.example.com"), "/"), Some(denied(503)));
    assert_eq!(action_of(host("open.example.com"), "/"), Some(forward("default", "a", 80)));
    let denied_names: Vec<String> = translation.denied_ingresses.iter().map(ToString::to_string).collect();
    assert_eq!(denied_names, ["default/broken-auth", "default/protected"]);
    let lines = diagnostic_lines(&translation);
    for expected in [
        "error: Ingress default/protected: metadata.annotations[nginx.ingress.kubernetes.io/configuration-snippet]: this snippet restricts access (\"deny\"), which raw snippets never do here; every path of this Ingress answers 403 (fail closed)",
        "error: Ingress default/broken-auth: metadata.annotations[nginx.ingress.kubernetes.io/auth-secret]: auth-type basic needs auth-secret, the Secret with the users; every path of this Ingress answers 503 (fail closed, as ingress-nginx denies the location)",
    ] {
        assert!(lines.iter().any(|l| l == expected), "missing {expected:?} in {lines:#?}");
    }
    // The clusters of denied paths are not sent.
    assert!(!translation.model.clusters.contains_key(&cluster_name("default", "does-not-exist", 80)));
}

#[test]
fn kubernetes_mode_refuses_loopback_link_local_and_metadata_endpoints() {
    let yaml = format!(
        "{OUR_CLASS}{}{}",
        r#"
---
apiVersion: v1
kind: Service
metadata: {name: sneaky}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: sneaky-1, labels: {kubernetes.io/service-name: sneaky}}
addressType: IPv4
ports: [{port: 8080}]
endpoints:
- {addresses: [127.0.0.1, 169.254.169.254, 0.0.0.0, 10.0.0.5]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: sneaky-2, labels: {kubernetes.io/service-name: sneaky}}
addressType: IPv6
ports: [{port: 8080}]
endpoints:
- {addresses: ["::1", "fe80::1", "::ffff:127.0.0.1", "fd00:ec2::254", "fd00::5"]}
"#,
        ingress("app", "", &[rule("app.example.com", &[path("/", "Prefix", "sneaky", 80)])])
    );
    let state = state(&yaml);
    let options = TranslateOptions { refuse_local_endpoints: true, ..TranslateOptions::default() };
    let translation = translate(&state, &options);
    let cluster = &translation.model.clusters[&cluster_name("default", "sneaky", 80)];
    let addresses: Vec<&str> = cluster.endpoints.iter().map(|e| e.address.as_str()).collect();
    assert_eq!(addresses, ["10.0.0.5", "fd00::5"]);
    let errors: Vec<String> = diagnostic_lines(&translation).into_iter().filter(|l| l.starts_with("error: EndpointSlice")).collect();
    assert_eq!(errors.len(), 2, "one per slice: {errors:#?}");
    assert!(errors[0].contains("default/sneaky-1: endpoints: address \"127.0.0.1\" is a loopback address"), "{}", errors[0]);
    // File mode (local demos) keeps loopback backends.
    let translation = translate(&state, &TranslateOptions::default());
    assert_eq!(translation.model.clusters[&cluster_name("default", "sneaky", 80)].endpoints.len(), 9);
}

#[test]
fn host_ownership_by_namespace_refuses_other_namespaces_rules() {
    let yaml = [
        ingress("owner", &format!(", namespace: team-a{}", created("2024-01-01T00:00:00Z")), &[rule("shop.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("same-team", &format!(", namespace: team-a{}", created("2024-06-01T00:00:00Z")), &[rule("shop.example.com", &[path("/api", "Prefix", "a", 80)])]),
        // Its TLS entry lists its own host only: ingress-nginx gives every rule host of such an
        // Ingress the default certificate (and the redirect), team-a's host too unless owned.
        ingress("intruder", &format!(", namespace: team-b{}", created("2025-01-01T00:00:00Z")), &[rule("shop.example.com", &[path("/admin", "Prefix", "a", 80)]), rule("b.example.com", &[path("/", "Prefix", "a", 80)])])
            .replace("spec: {ingressClassName: wasm, rules:", "spec: {ingressClassName: wasm, tls: [{hosts: [b.example.com]}], rules:"),
    ]
    .concat();
    let state = state(&format!("{OUR_CLASS}{BACKENDS}{yaml}"));
    let paths_of = |translation: &Translation, host: &str| -> Vec<String> {
        let vhost = translation.model.route_table.hosts.iter().find(|h| h.host == host).unwrap();
        vhost.routes.iter().map(|r| r.origin.to_string()).collect()
    };
    // Default: merged, as ingress-nginx.
    let merged = translate(&state, &TranslateOptions::default());
    assert_eq!(paths_of(&merged, "shop.example.com").len(), 3);
    // By namespace: team-b's rule for team-a's host is refused; its own host is served.
    let options = TranslateOptions { host_ownership: HostOwnership::Namespace, ..TranslateOptions::default() };
    let owned = translate(&state, &options);
    assert_eq!(paths_of(&owned, "shop.example.com"), ["team-a/same-team: spec.rules[0].http.paths[0]", "team-a/owner: spec.rules[0].http.paths[0]"]);
    assert_eq!(paths_of(&owned, "b.example.com"), ["team-b/intruder: spec.rules[1].http.paths[0]"]);
    assert_eq!(route_at(&owned, "shop.example.com", "/").https_redirect, None, "team-a's host is not made a TLS host by team-b");
    assert_eq!(route_at(&owned, "b.example.com", "/").https_redirect, https(308, true));
    assert_eq!(route_at(&merged, "shop.example.com", "/").https_redirect, https(308, true), "merged, as ingress-nginx");
    let lines = diagnostic_lines(&owned);
    let expected = "error: Ingress team-b/intruder: spec.rules[0].host: host \"shop.example.com\" belongs to namespace \"team-a\" (its oldest Ingress, team-a/owner, claimed it first); rule refused (--host-ownership=namespace)";
    assert!(lines.iter().any(|l| l == expected), "{lines:#?}");
}

fn self_signed(names: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

fn namespaced_tls_secret(namespace: &str, name: &str, (cert, key): &(String, String)) -> String {
    tls_secret_yaml(name, cert, key).replace(&format!("metadata: {{name: {name}}}"), &format!("metadata: {{name: {name}, namespace: {namespace}}}"))
}

/// ingress-nginx warns when a TLS host is not among its certificate's names (its clients get the
/// default certificate); a wildcard name covers one label, and a host it names is not warned.
#[test]
fn a_tls_host_its_certificate_does_not_name_is_warned() {
    let yaml = [
        namespaced_tls_secret("default", "shop", &self_signed(&["shop.example.com", "*.pay.example.com"])),
        tls_ingress("shop", "", "[{hosts: [shop.example.com, eu.pay.example.com, wrong.example.com, a.b.pay.example.com], secretName: shop}]", &["shop.example.com"]),
    ]
    .concat();
    let lines = diagnostic_lines(&run(&yaml));
    let unnamed: Vec<&String> = lines.iter().filter(|l| l.contains("does not name")).collect();
    let warning = |host: &str| {
        format!("warning: Ingress default/shop: spec.tls[0]: Secret default/shop: its certificate does not name \"{host}\" (it names *.pay.example.com, shop.example.com): a client asking for \"{host}\" gets another TLS entry's certificate that names it, if one does, else the default certificate (--default-ssl-certificate, else the self-signed one), as ingress-nginx does, and still redirected to HTTPS")
    };
    assert_eq!(unnamed, [&warning("a.b.pay.example.com"), &warning("wrong.example.com")], "{lines:#?}");
}

#[test]
fn a_certificate_naming_another_namespaces_server_name_is_not_offered() {
    let shop = self_signed(&["*.shop.example.com"]);
    let intruder = self_signed(&["evil.example.com", "pay.shop.example.com"]);
    let yaml = [
        namespaced_tls_secret("shop", "wildcard", &shop),
        namespaced_tls_secret("evil", "tls", &intruder),
        // A certificate of the shop's own namespace naming the same host is only ordered.
        namespaced_tls_secret("shop", "extra", &self_signed(&["extra.example.com", "pay.shop.example.com"])),
        tls_ingress("store", &format!(", namespace: shop{}", created("2024-01-01T00:00:00Z")), r#"[{hosts: ["*.shop.example.com"], secretName: wildcard}]"#, &["*.shop.example.com"]),
        tls_ingress("intruder", &format!(", namespace: evil{}", created("2024-02-01T00:00:00Z")), "[{hosts: [evil.example.com], secretName: tls}]", &["evil.example.com"]),
        tls_ingress("extra", &format!(", namespace: shop{}", created("2024-03-01T00:00:00Z")), "[{hosts: [extra.example.com], secretName: extra}]", &["extra.example.com"]),
    ]
    .concat();
    let translation = run(&yaml);
    let servers: Vec<(&str, Vec<&str>)> = translation
        .model
        .tls_servers
        .iter()
        .map(|s| (s.certificate.as_str(), s.server_names.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(servers, [("shop/extra", vec!["extra.example.com"]), ("shop/wildcard", vec!["*.shop.example.com"])]);
    assert!(!translation.model.certificates.contains_key("evil/tls"));
    let expected = "error: Ingress evil/intruder: spec.tls: Secret evil/tls: its certificate also names \"pay.shop.example.com\", which is served with Secret shop/wildcard; it is not offered, so that it cannot capture that name's TLS connections (evil.example.com get the default certificate)";
    let lines = diagnostic_lines(&translation);
    assert!(lines.iter().any(|l| l == expected), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("Secret shop/extra")), "{lines:#?}");
}

// ---------------------------------------------------------------------------------------------
// Redirects and route policies (ingress-nginx annotations, first half)
// ---------------------------------------------------------------------------------------------

const NGINX: &str = "nginx.ingress.kubernetes.io/";

fn nginx(pairs: &[(&str, &str)]) -> String {
    let full: Vec<(String, &str)> = pairs.iter().map(|(k, v)| (format!("{NGINX}{k}"), *v)).collect();
    let borrowed: Vec<(&str, &str)> = full.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    annotated(&borrowed)
}

fn tls_redirect_ingress(name: &str, metadata: &str, host: &str, paths: &[String]) -> String {
    ingress_with_spec(
        name,
        metadata,
        &format!("{{ingressClassName: wasm, tls: [{{hosts: [{host}], secretName: missing-secret}}], rules: [{}]}}", rule(host, paths)),
    )
}

fn host_of<'t>(translation: &'t Translation, host: &str) -> &'t VirtualHost {
    translation.model.route_table.hosts.iter().find(|h| h.host == host).unwrap_or_else(|| panic!("no host {host}"))
}

fn route_at<'t>(translation: &'t Translation, host: &str, path: &str) -> &'t Route {
    host_of(translation, host).routes.iter().find(|r| r.path == prefix(path)).unwrap_or_else(|| panic!("no {host}{path}"))
}

fn https(status: u16, trim: bool) -> Option<Redirect> {
    Some(Redirect {
        status,
        location: Location::FromRequest {
            scheme: Some("https".into()),
            host: HostPart::RequestHost,
            path: PathPart::RequestUri { trim_trailing_slash: trim },
        },
        cors: None,
    })
}

#[test]
fn https_redirect_follows_ingress_nginx_defaults_and_annotations() {
    let translation = run(&[
        // TLS (even with a missing Secret, as ingress-nginx): redirected with 308, except ACME.
        tls_redirect_ingress("tls", "", "tls.example.com", &[path("/", "Prefix", "a", 80), path("/.well-known/acme-challenge", "Prefix", "a", 80)]),
        tls_redirect_ingress("opt-out", &nginx(&[("ssl-redirect", "false")]), "optout.example.com", &[path("/", "Prefix", "a", 80)]),
        ingress("forced", &nginx(&[("force-ssl-redirect", "true"), ("preserve-trailing-slash", "true")]), &[rule("forced.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("plain", "", &[rule("plain.example.com", &[path("/", "Prefix", "a", 80)])]),
        // A TLS entry without secretName: the default certificate, still redirected (ingress-nginx).
        ingress_with_spec(
            "unnamed",
            "",
            &format!("{{ingressClassName: wasm, tls: [{{hosts: [unnamed.example.com]}}], rules: [{}]}}", rule("unnamed.example.com", &[path("/", "Prefix", "a", 80)])),
        ),
    ]
    .concat());
    let cases: [(&str, &str, Option<Redirect>); 6] = [
        ("tls.example.com", "/", https(308, true)),
        ("unnamed.example.com", "/", https(308, true)),
        ("tls.example.com", "/.well-known/acme-challenge", None),
        ("optout.example.com", "/", None),
        ("forced.example.com", "/", https(308, false)),
        ("plain.example.com", "/", None),
    ];
    for (host, p, expected) in cases {
        assert_eq!(route_at(&translation, host, p).https_redirect, expected, "{host}{p}");
    }
    // A path no rule matches: ingress-nginx's implicit `/` location, with the oldest Ingress's
    // annotations, redirects it the same way.
    let fallbacks: [(&str, Option<Redirect>); 5] = [
        ("tls.example.com", https(308, true)),
        ("unnamed.example.com", https(308, true)),
        ("optout.example.com", None),
        ("forced.example.com", https(308, false)),
        ("plain.example.com", None),
    ];
    for (host, expected) in fallbacks {
        assert_eq!(host_of(&translation, host).fallback_https_redirect, expected, "{host}");
    }
    let lines = diagnostic_lines(&translation);
    assert!(lines.iter().any(|l| l.starts_with("warning: Ingress default/unnamed: spec.tls[0].secretName: no secretName: its hosts are served over HTTPS with the default certificate")), "{lines:#?}");
}

#[test]
fn the_oldest_ingress_naming_a_host_decides_the_redirect_of_its_unmatched_paths() {
    let translation = run(&[
        tls_redirect_ingress("z-old", &format!("{}{}", created("2024-01-01T00:00:00Z"), &nginx(&[("ssl-redirect", "false")])[..]), "both.example.com", &[path("/old", "Prefix", "a", 80)]),
        tls_redirect_ingress("a-young", &created("2025-01-01T00:00:00Z"), "both.example.com", &[path("/young", "Prefix", "a", 80)]),
    ]
    .concat());
    assert_eq!(route_at(&translation, "both.example.com", "/young").https_redirect, https(308, true));
    assert_eq!(route_at(&translation, "both.example.com", "/old").https_redirect, None);
    assert_eq!(host_of(&translation, "both.example.com").fallback_https_redirect, None, "the older Ingress's ssl-redirect: \"false\"");
}

/// ingress-nginx's catch-all server `_` makes its root location before any Ingress: a host-less
/// rule's Ingress redirects its own paths, never the unmatched ones of unknown hosts.
#[test]
fn unknown_hosts_unmatched_paths_are_not_redirected() {
    let translation = run(&ingress("hostless", &nginx(&[("force-ssl-redirect", "true")]), &[hostless_rule(&[path("/foo", "Prefix", "a", 80)])]));
    assert_eq!(route_at(&translation, "", "/foo").https_redirect, https(308, true));
    assert_eq!(host_of(&translation, "").fallback_https_redirect, None);
}

#[test]
fn ssl_redirect_default_and_code_come_from_the_configmap_flags() {
    let mut options = TranslateOptions::default();
    options.defaults.ssl_redirect = false;
    options.defaults.http_redirect_code = 301;
    let yaml = [
        tls_redirect_ingress("tls", "", "tls.example.com", &[path("/", "Prefix", "a", 80)]),
        ingress("forced", &nginx(&[("force-ssl-redirect", "true")]), &[rule("forced.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat();
    let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{yaml}")), &options);
    assert_eq!(route_at(&translation, "tls.example.com", "/").https_redirect, None);
    assert_eq!(route_at(&translation, "forced.example.com", "/").https_redirect, https(301, true));
    // ConfigMap force-ssl-redirect: every host, TLS or not, unless its Ingress says "false".
    let mut options = TranslateOptions::default();
    options.defaults.force_ssl_redirect = true;
    let yaml = [
        ingress("plain", "", &[rule("plain.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("optout", &nginx(&[("force-ssl-redirect", "false")]), &[rule("optout.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat();
    let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{yaml}")), &options);
    assert_eq!(route_at(&translation, "plain.example.com", "/").https_redirect, https(308, true));
    assert_eq!(route_at(&translation, "optout.example.com", "/").https_redirect, None);
    // ConfigMap no-tls-redirect-locations (settings/no_tls_redirect_locations.go): its prefixes of
    // the Ingress path are never redirected, not even forced; it replaces the ACME default.
    let mut options = TranslateOptions::default();
    options.defaults.no_tls_redirect_locations = vec!["/check-no-tls".into(), " ".into()];
    let paths = [path("/check-no-tls", "Prefix", "a", 80), path("/check-no-tls-either", "Prefix", "a", 80), path("/other", "Prefix", "a", 80), path("/.well-known/acme-challenge", "Prefix", "a", 80)];
    let yaml = ingress("forced", &nginx(&[("force-ssl-redirect", "true")]), &[rule("forced.example.com", &paths)]);
    let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{yaml}")), &options);
    let redirect_at = |p: &str| route_at(&translation, "forced.example.com", p).https_redirect.clone();
    assert_eq!(
        ["/check-no-tls", "/check-no-tls-either", "/other", "/.well-known/acme-challenge"].map(redirect_at),
        [None, None, https(308, true), https(308, true)]
    );
}

#[test]
fn use_port_in_redirects_writes_the_https_port_into_the_https_redirect() {
    let with_port = |port: u16| {
        let mut redirect = https(308, true);
        if let Some(Redirect { location: Location::FromRequest { host, .. }, .. }) = redirect.as_mut() {
            *host = HostPart::RequestHostWithPort(port);
        }
        redirect
    };
    let yaml = [
        tls_redirect_ingress("port", &nginx(&[("use-port-in-redirects", "true")]), "port.example.com", &[path("/", "Prefix", "a", 80)]),
        tls_redirect_ingress("plain", "", "plain.example.com", &[path("/", "Prefix", "a", 80)]),
        tls_redirect_ingress("off", &nginx(&[("use-port-in-redirects", "false")]), "off.example.com", &[path("/", "Prefix", "a", 80)]),
    ]
    .concat();
    let translate_with = |defaults: NginxDefaults| {
        let options = TranslateOptions { defaults, ..TranslateOptions::default() };
        let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{yaml}")), &options);
        ["port", "plain", "off"].map(|host| route_at(&translation, &format!("{host}.example.com"), "/").https_redirect.clone())
    };
    // ingress-nginx's `https://host:443/uri` (its HTTPS port), or `--https-redirect-port`'s.
    assert_eq!(translate_with(NginxDefaults::default()), [with_port(443), https(308, true), https(308, true)]);
    let moved = NginxDefaults { https_redirect_port: Some(8443), ..NginxDefaults::default() };
    assert_eq!(translate_with(moved), [with_port(8443), with_port(8443), with_port(8443)]);
    // ConfigMap `use-port-in-redirects: "true"`: every Ingress unless it says "false".
    let all = NginxDefaults { use_port_in_redirects: true, ..NginxDefaults::default() };
    assert_eq!(translate_with(all), [with_port(443), with_port(443), https(308, true)]);
}

#[test]
fn app_root_and_explicit_redirects() {
    let translation = run(&[
        ingress("root", &nginx(&[("app-root", "/app1")]), &[rule("root.example.com", &[path("/other", "Prefix", "a", 80)])]),
        ingress("perm", &nginx(&[("permanent-redirect", "https://new.example.com"), ("permanent-redirect-code", "308")]), &[rule("perm.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress(
            "both",
            &nginx(&[("permanent-redirect", "https://p.example.com"), ("temporal-redirect", "https://t.example.com"), ("temporal-redirect-code", "399")]),
            &[rule("both.example.com", &[path("/", "Prefix", "a", 80)])],
        ),
        ingress("relative", &nginx(&[("permanent-redirect", "/new-location")]), &[rule("rel.example.com", &[path("/", "Prefix", "a", 80)])]),
        // ingress-nginx's redirect.go: the backend Service does not exist, the redirect still answers.
        ingress("orphan", &nginx(&[("permanent-redirect", "http://redirect.example.com")]), &[rule("orphan.example.com", &[path("/something", "Prefix", "nowhere", 80)])]),
        ingress("bad-root", &nginx(&[("app-root", "http://x")]), &[rule("badroot.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("huge-root", &nginx(&[("app-root", &format!("/{}", "a".repeat(9000)))]), &[rule("hugeroot.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress(
            "cors",
            &nginx(&[("permanent-redirect", "https://new.example.com"), ("enable-cors", "true"), ("cors-allow-origin", "https://app.example.com")]),
            &[rule("cors.example.com", &[path("/", "Prefix", "a", 80)])],
        ),
    ]
    .concat());
    assert_eq!(host_of(&translation, "hugeroot.example.com").app_root, None, "one the filter would refuse is dropped, not the table");
    assert_eq!(
        host_of(&translation, "root.example.com").app_root,
        Some(Redirect { status: 302, location: Location::FromRequest { scheme: None, host: HostPart::RequestAuthority, path: PathPart::Fixed("/app1".into()) }, cors: None })
    );
    let redirect_of = |host: &str| route_at(&translation, host, "/").action.clone();
    assert_eq!(redirect_of("perm.example.com"), RouteAction::Redirect(Redirect { status: 308, location: Location::Url { url: "https://new.example.com".into() }, cors: None }));
    assert_eq!(
        redirect_of("both.example.com"),
        RouteAction::Redirect(Redirect { status: 302, location: Location::Url { url: "https://t.example.com".into() }, cors: None }),
        "temporal wins; a code outside 300..=307 falls back to 302"
    );
    assert_eq!(
        redirect_of("rel.example.com"),
        RouteAction::Redirect(Redirect { status: 301, location: Location::FromRequest { scheme: None, host: HostPart::RequestHost, path: PathPart::Fixed("/new-location".into()) }, cors: None })
    );
    assert_eq!(
        route_at(&translation, "orphan.example.com", "/something").action,
        RouteAction::Redirect(Redirect { status: 301, location: Location::Url { url: "http://redirect.example.com".into() }, cors: None })
    );
    assert_eq!(host_of(&translation, "badroot.example.com").app_root, None);
    // With enable-cors the redirect carries the CORS rule: its preflight policy is Envoy's 204.
    let RouteAction::Redirect(redirect) = redirect_of("cors.example.com") else { panic!("not a redirect") };
    assert_eq!(redirect.location, Location::Url { url: "https://new.example.com".into() });
    let cors = redirect.cors.expect("the CORS rule");
    assert!(cors.origin_pattern.as_deref().is_some_and(|p| p.contains("app\\.example\\.com")), "{cors:?}");
    assert!(translation.model.policies[&cors.preflight_policy].preflight);
    assert!(translation.model.policies[&cors.policy].cors.is_some());
    let lines = diagnostic_lines(&translation);
    assert!(lines.iter().any(|l| l.contains("temporal-redirect-code") && l.contains("399")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("app-root") && l.contains("\"http://x\" is not a path")), "{lines:#?}");
}

/// Values ingress-nginx's validators refuse make its annotation extractor reject the whole
/// Ingress (v1.15: `Extract` returns the validation error): not served here either, an error
/// naming the annotation; other Ingresses are untouched.
#[test]
fn values_ingress_nginx_validation_refuses_reject_the_ingress() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("permanent-redirect", &[("permanent-redirect", "https://x.example.com/$request_uri")]),
        ("permanent-redirect", &[("permanent-redirect", "https://x.example.com/a!b")]),
        ("temporal-redirect", &[("temporal-redirect", "https://x.example.com/a(b)")]),
        ("permanent-redirect-code", &[("permanent-redirect-code", "abc")]),
        ("temporal-redirect-code", &[("temporal-redirect", "https://t.example.com"), ("temporal-redirect-code", "3o2")]),
        ("relative-redirects", &[("permanent-redirect", "/new"), ("relative-redirects", "yes")]),
        ("from-to-www-redirect", &[("from-to-www-redirect", "on")]),
        ("connection-proxy-header", &[("connection-proxy-header", "upgrade")]),
        ("custom-http-errors", &[("custom-http-errors", "302,404")]),
        ("x-forwarded-prefix", &[("x-forwarded-prefix", "/a,b?c=1"), ("rewrite-target", "/")]),
        // Validated even where it would have no effect (no rewrite), and `{}` is refused.
        ("x-forwarded-prefix", &[("x-forwarded-prefix", "/${namespace}")]),
        ("upstream-vhost", &[("upstream-vhost", "a@b.example.com")]),
        // A refusal wins over a value that only denies (503), whatever the order.
        ("load-balance", &[("whitelist-source-range", "10.0.0.0/33"), ("load-balance", "foo")]),
        // The validators of `validators.rs`, one each.
        ("auth-type", &[("auth-type", "kerberos")]),
        ("auth-realm", &[("auth-type", "basic"), ("auth-secret", "users"), ("auth-realm", "Restricted, staff only")]),
        ("default-backend", &[("default-backend", "default/web")]),
        ("ssl-passthrough", &[("ssl-passthrough", "yes")]),
        ("auth-tls-match-cn", &[("auth-tls-secret", "default/ca"), ("auth-tls-match-cn", "client.example.com")]),
    ];
    for (annotation, pairs) in cases {
        let translation = run(&[
            ingress("bad", &nginx(pairs), &[rule("bad.example.com", &[path("/", "Prefix", "a", 80)])]),
            ingress("good", "", &[rule("good.example.com", &[path("/", "Prefix", "a", 80)])]),
        ]
        .concat());
        assert!(translation.model.route_table.hosts.iter().all(|h| h.host != "bad.example.com"), "{pairs:?}");
        assert_eq!(route_at(&translation, "good.example.com", "/").action, forward("default", "a", 80));
        let lines = diagnostic_lines(&translation);
        let prefix = format!("error: Ingress default/bad: metadata.annotations[nginx.ingress.kubernetes.io/{annotation}]");
        assert!(lines.iter().any(|l| l.starts_with(&prefix) && l.contains("not served")), "{pairs:?}: {lines:#?}");
    }
}

/// What ingress-nginx serves despite a value it cannot use: a temporal redirect whose scheme is
/// not http(s) drops the redirect (the permanent one too); a rewrite target with characters its
/// validator refuses is dropped ("defaulting to empty"); `connection-proxy-header` takes spaces.
#[test]
fn values_ingress_nginx_ignores_leave_the_ingress_served() {
    let translation = run(&[
        ingress("ftp", &nginx(&[("temporal-redirect", "ftp://t.example.com"), ("permanent-redirect", "https://p.example.com")]), &[rule("ftp.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("upper", &nginx(&[("temporal-redirect", "HTTPS://t.example.com/x")]), &[rule("upper.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("query", &nginx(&[("rewrite-target", "/new?x=1")]), &[rule("query.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("close", &nginx(&[("connection-proxy-header", " keep-alive ")]), &[rule("close.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat());
    assert_eq!(route_at(&translation, "ftp.example.com", "/").action, forward("default", "a", 80));
    let upper = RouteAction::Redirect(Redirect { status: 302, location: Location::Url { url: "HTTPS://t.example.com/x".into() }, cors: None });
    assert_eq!(route_at(&translation, "upper.example.com", "/").action, upper, "Go lower-cases the scheme it checks");
    assert_eq!(route_at(&translation, "query.example.com", "/").action, forward("default", "a", 80), "no rewrite");
    let RouteAction::Forward(close) = &route_at(&translation, "close.example.com", "/").action else { panic!("not forwarded") };
    assert_eq!(translation.model.policies[&close.policy].request_headers.get("connection"), Some(&HeaderValue::text("keep-alive")));
    let lines = diagnostic_lines(&translation);
    assert!(lines.iter().all(|l| !l.starts_with("error")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("default/query") && l.contains("no rewrite")), "{lines:#?}");
}

#[test]
fn from_to_www_redirect_adds_the_other_name_unless_it_is_defined() {
    let translation = run(&[
        ingress("bare", &nginx(&[("from-to-www-redirect", "true")]), &[rule("shop.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("www", &nginx(&[("from-to-www-redirect", "true")]), &[rule("www.blog.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("both", &nginx(&[("from-to-www-redirect", "true")]), &[rule("docs.example.com", &[path("/", "Prefix", "a", 80)]), rule("www.docs.example.com", &[path("/", "Prefix", "b", 8080)])]),
    ]
    .concat());
    let www_of = |to: &str| Some(RouteAction::Redirect(behaviour::www_redirect(to, &NginxDefaults::default())));
    assert_eq!(host_of(&translation, "www.shop.example.com").fallback, www_of("shop.example.com"));
    assert_eq!(host_of(&translation, "blog.example.com").fallback, www_of("www.blog.example.com"));
    assert_eq!(route_at(&translation, "www.docs.example.com", "/").action, forward("default", "b", 8080), "a defined host is never replaced");
}

#[test]
fn server_alias_serves_the_whole_host_under_more_names_as_ingress_nginx() {
    let aliased = |time: &str, aliases: &str| format!("{}{}", created(time), nginx(&[("server-alias", aliases)]));
    let translation = run(&[
        ingress("site", &aliased("2024-01-01T00:00:00Z", "Alias.example.com, other.example.com, *.site.example.com"), &[rule("site.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("site-api", &aliased("2024-01-02T00:00:00Z", "late.example.com"), &[rule("site.example.com", &[path("/api", "Prefix", "b", 8080)])]),
        ingress("other", &created("2024-01-03T00:00:00Z"), &[rule("other.example.com", &[path("/", "Prefix", "b", 8080)])]),
        ingress("thief", &aliased("2024-01-04T00:00:00Z", "alias.example.com, shared.example.com"), &[rule("thief.example.com", &[path("/", "Prefix", "b", 8080)])]),
        ingress("latest", &aliased("2024-01-05T00:00:00Z", "shared.example.com"), &[rule("a.example.com", &[path("/latest", "Prefix", "b", 8080)])]),
    ]
    .concat());
    for name in ["alias.example.com", "*.site.example.com"] {
        assert_eq!(route_at(&translation, name, "/").action, forward("default", "a", 80), "{name}: the host's own paths");
        assert_eq!(route_at(&translation, name, "/api").action, forward("default", "b", 8080), "{name}: every Ingress's paths of the host");
    }
    assert_eq!(route_at(&translation, "other.example.com", "/").action, forward("default", "b", 8080), "a defined host is never an alias");
    assert!(translation.model.route_table.hosts.iter().all(|h| h.host != "late.example.com"), "the oldest Ingress gives the aliases");
    assert_eq!(route_at(&translation, "thief.example.com", "/").action, forward("default", "b", 8080));
    let lines = diagnostic_lines(&translation);
    let alias_warning = |ingress: &str, text: &str| {
        lines.iter().any(|l| l.starts_with(&format!("warning: Ingress default/{ingress}: metadata.annotations[{NGINX}server-alias]")) && l.contains(text))
    };
    assert!(alias_warning("site", "alias \"other.example.com\" of host \"site.example.com\" is a host some Ingress defines"), "{lines:#?}");
    assert!(alias_warning("site-api", "already takes its aliases from the older Ingress default/site"), "{lines:#?}");
    assert!(alias_warning("thief", "is already an alias of host \"site.example.com\""), "{lines:#?}");
    // A name two hosts ask for: nginx keeps the first `server` block naming it, and ingress-nginx
    // writes them in host-name order, so the newer Ingress's `a.example.com` takes it.
    assert_eq!(route_at(&translation, "shared.example.com", "/latest").action, forward("default", "b", 8080));
    assert!(alias_warning("thief", "alias \"shared.example.com\" of host \"thief.example.com\" is already an alias of host \"a.example.com\""), "{lines:#?}");
}

#[test]
fn default_backend_answers_with_ingress_nginx_headers_for_a_backend_without_endpoints_or_service() {
    let translation = run(&ingress(
        "shop",
        &nginx(&[("default-backend", "b")]),
        &[rule("shop.example.com", &[path("/gone", "Prefix", "nope", 80), named_port_path("/idle", "idle", "web"), path("/ok", "Prefix", "a", 80)])],
    ));
    let forward_of = |path: &str| match &route_at(&translation, "shop.example.com", path).action {
        RouteAction::Forward(forward) => forward.clone(),
        other => panic!("{other:?}"),
    };
    let (gone, ok) = (forward_of("/gone"), forward_of("/ok"));
    let clusters = |f: &Forward| f.backends.iter().map(|b| b.cluster.clone()).collect::<Vec<_>>();
    assert_eq!(clusters(&gone), ["default/b/8080"], "the default backend's first port");
    assert_eq!(clusters(&forward_of("/idle")), ["default/b/8080"]);
    assert_eq!(clusters(&ok), ["default/a/80"]);
    assert_eq!(ok.policy, "", "a backend with endpoints keeps the Ingress's policy");
    let headers = &translation.model.policies[&gone.policy].request_headers;
    let expected = [
        ("x-code", "503"),
        ("x-format", "%REQ(accept)%"),
        ("x-ingress-name", "shop"),
        ("x-namespace", "default"),
        ("x-service-name", "nope"),
        ("x-service-port", "80"),
    ];
    assert_eq!(headers.iter().map(|(k, v)| (k.as_str(), v.envoy_format())).collect::<Vec<_>>(), expected.map(|(k, v)| (k, v.to_string())));
    assert_eq!(translation.model.clusters["default/b/8080"].endpoints.len(), 1);
    let lines = diagnostic_lines(&translation);
    assert!(lines.contains(&"warning: Ingress default/shop: spec.rules[0].http.paths[0].backend.service.name: Service default/nope not found; the default-backend Service default/b answers instead".to_string()), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("Service default/idle has no port named \"web\"; the default-backend Service default/b answers instead")), "{lines:#?}");
}

#[test]
fn custom_http_errors_name_the_default_backend_cluster_in_the_policy_and_the_table() {
    let translation = run(&[
        ingress("shop", &nginx(&[("custom-http-errors", "503,404"), ("default-backend", "b")]), &[rule("shop.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("bare", &nginx(&[("custom-http-errors", "404")]), &[rule("bare.example.com", &[path("/", "Prefix", "a", 80)])]),
        // nginx fetches error pages over plain HTTP whatever the path's protocol.
        ingress("secure", &nginx(&[("custom-http-errors", "502"), ("default-backend", "b"), ("backend-protocol", "HTTPS")]), &[rule("secure.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat());
    let errors_of = |host: &str| match &route_at(&translation, host, "/").action {
        RouteAction::Forward(forward) => translation.model.policies[&forward.policy].custom_errors.clone().expect("custom errors"),
        other => panic!("{other:?}"),
    };
    let shop = errors_of("shop.example.com");
    assert_eq!((shop.codes, shop.cluster.as_deref()), (vec![404, 503], Some("default/b/8080")));
    let identity: Vec<(&str, &str)> = shop.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(identity, [("x-namespace", "default"), ("x-ingress-name", "shop"), ("x-service-name", "a"), ("x-service-port", "80")]);
    assert_eq!(errors_of("bare.example.com").cluster, None, "no default backend: Envoy answers 404");
    assert_eq!(translation.model.route_table.error_page_clusters, ["default/b/8080"]);
    assert_eq!(translation.model.route_table.error_page_token, PLACEHOLDER_ERROR_PAGE_TOKEN, "the options' token");
    assert_eq!(shop.token, PLACEHOLDER_ERROR_PAGE_TOKEN, "the request carries the same");
    assert!(translation.model.clusters.contains_key("default/b/8080"), "kept although no route forwards to it");
    assert_eq!(errors_of("secure.example.com").cluster.as_deref(), Some("default/b/8080"), "the same plain cluster for an HTTPS path");
    assert_eq!(translation.model.clusters["default/b/8080"].options.tls, None);
}

#[test]
fn custom_http_errors_of_the_configmap_reach_every_ingress_without_its_own() {
    let yaml = [
        ingress("plain", "", &[rule("plain.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("own", &nginx(&[("custom-http-errors", "404"), ("default-backend", "b")]), &[rule("own.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("pages", &nginx(&[("default-backend", "b")]), &[rule("pages.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("passes", &nginx(&[("disable-proxy-intercept-errors", "true")]), &[rule("passes.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat();
    let with = |codes: Vec<u16>, service: Option<&str>| {
        let defaults = NginxDefaults { custom_http_errors: codes, ..NginxDefaults::default() };
        let options = TranslateOptions { defaults, default_backend_service: service.map(|s| ObjectKey::new("default", s)), ..TranslateOptions::default() };
        let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{yaml}")), &options);
        ["plain", "own", "pages", "passes"].map(|host| match &route_at(&translation, &format!("{host}.example.com"), "/").action {
            RouteAction::Forward(forward) => translation.model.policies.get(&forward.policy).and_then(|p| p.custom_errors.clone()).map(|e| (e.codes, e.cluster.as_deref().map(String::from))),
            other => panic!("{other:?}"),
        })
    };
    let global = |codes: &[u16], cluster: Option<&str>| Some((codes.to_vec(), cluster.map(String::from)));
    // nginx's `error_page` of the http level: every location without its own, answered by the
    // global default backend (not the Ingress's own `default-backend`), sorted and once each.
    assert_eq!(
        with(vec![503, 404, 503], Some("idle-less")),
        [global(&[404, 503], None), global(&[404], Some("default/b/8080")), global(&[404, 503], None), None],
        "a global Service that does not exist: the codes answer 404"
    );
    assert_eq!(
        with(vec![503], Some("b")),
        [global(&[503], Some("default/b/8080")), global(&[404], Some("default/b/8080")), global(&[503], Some("default/b/8080")), None]
    );
    assert_eq!(with(Vec::new(), Some("b")), [None, global(&[404], Some("default/b/8080")), None, None], "nothing global: as before");
}

#[test]
fn default_backend_service_answers_what_no_ingress_serves_and_custom_errors_without_their_own() {
    let yaml = [
        ingress("shop", &nginx(&[("custom-http-errors", "404")]), &[rule("shop.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("own", &nginx(&[("custom-http-errors", "404"), ("default-backend", "idle")]), &[rule("own.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat();
    let with = |service: Option<&str>| {
        let options = TranslateOptions { default_backend_service: service.map(|s| ObjectKey::new("default", s)), ..TranslateOptions::default() };
        translate_with_notes(&state(&format!("{OUR_CLASS}{BACKENDS}{yaml}")), &options)
    };
    let (translation, notes) = with(Some("b"));
    assert_eq!(translation.model.route_table.default_backend, Some(forward("default", "b", 8080)), "the catch-all");
    assert_eq!(notes.default_backend.as_ref().map(ToString::to_string).as_deref(), Some("--default-backend-service default/b"));
    let errors_of = |translation: &Translation, host: &str| match &route_at(translation, host, "/").action {
        RouteAction::Forward(forward) => translation.model.policies[&forward.policy].custom_errors.clone().expect("custom errors"),
        other => panic!("{other:?}"),
    };
    assert_eq!(errors_of(&translation, "shop.example.com").cluster.as_deref(), Some("default/b/8080"));
    // An own default-backend without endpoints gives way to the global one, as ingress-nginx's.
    assert_eq!(errors_of(&translation, "own.example.com").cluster.as_deref(), Some("default/b/8080"));
    assert!(!diagnostic_lines(&translation).iter().any(|l| l.contains("answer 404")), "{:#?}", diagnostic_lines(&translation));

    // A global Service without endpoints (or none at all): the filter's 404, and a warning.
    for service in [Some("idle"), None] {
        let (translation, notes) = with(service);
        assert_eq!((translation.model.route_table.default_backend.as_ref(), notes.default_backend.as_ref()), (None, None), "{service:?}");
        assert_eq!(errors_of(&translation, "shop.example.com").cluster, None);
        let lines = diagnostic_lines(&translation);
        assert!(lines.iter().any(|l| l.contains("default/shop") && l.contains("the listed codes answer 404")), "{lines:#?}");
    }
    let lines = diagnostic_lines(&with(Some("idle")).0);
    assert!(lines.iter().any(|l| l.contains("Service default/idle port 80 has no ready endpoints; --default-backend-service unused")), "{lines:#?}");
}

#[test]
fn route_policies_are_shared_by_equal_annotations_and_the_default_needs_no_key() {
    let translation = run(&[
        ingress("big-1", &nginx(&[("proxy-body-size", "8m"), ("proxy-read-timeout", "3600")]), &[rule("one.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("big-2", &nginx(&[("proxy-read-timeout", "3600"), ("proxy-body-size", "8M")]), &[rule("two.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("unlimited", &nginx(&[("proxy-body-size", "0"), ("proxy-next-upstream", "off")]), &[rule("three.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("defaults", &nginx(&[("proxy-body-size", "1m"), ("proxy-read-timeout", "60s")]), &[rule("four.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("vhost", &nginx(&[("upstream-vhost", "internal.example.com:8080")]), &[rule("five.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("vhost-variable", &nginx(&[("upstream-vhost", "$host.internal")]), &[rule("six.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("quiet", &nginx(&[("enable-access-log", "false")]), &[rule("seven.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("logged", &nginx(&[("enable-access-log", "true")]), &[rule("eight.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("unclear", &nginx(&[("enable-access-log", "no")]), &[rule("nine.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat());
    let host_rewrite_of = |host: &str| match &route_at(&translation, host, "/").action {
        RouteAction::Forward(forward) => forward.host_rewrite.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(host_rewrite_of("five.example.com").as_deref(), Some("internal.example.com:8080"));
    assert_eq!(host_rewrite_of("six.example.com"), None, "$host is known only per request: not applied");
    let policy_of = |host: &str| match &route_at(&translation, host, "/").action {
        RouteAction::Forward(forward) => forward.policy.clone(),
        other => panic!("{other:?}"),
    };
    let big = RoutePolicy {
        max_body_bytes: Some(8 << 20),
        upstream_idle_timeout: std::time::Duration::from_secs(3600),
        tries: 3,
        request_headers: Default::default(),
        ..RoutePolicy::default()
    };
    let unlimited = RoutePolicy { max_body_bytes: None, tries: 1, ..RoutePolicy::default() };
    assert_eq!(policy_of("one.example.com"), big.key());
    assert_eq!(policy_of("two.example.com"), big.key(), "equal policies share one key");
    assert_eq!(policy_of("three.example.com"), unlimited.key());
    assert_eq!(policy_of("four.example.com"), "", "1m and a bad timeout are the defaults: no key");
    // enable-access-log: "false" is a policy of its own; "true" (the default) and a value
    // ingress-nginx cannot read (its default, with a warning) are the default policy.
    let quiet = RoutePolicy { access_log_off: true, ..RoutePolicy::default() };
    assert_ne!(quiet.key(), RoutePolicy::default().key());
    let expected = BTreeMap::from([(big.key(), big), (unlimited.key(), unlimited), (quiet.key(), quiet.clone())]);
    assert_eq!(translation.model.policies, expected);
    assert_eq!(translation.model.default_policy, RoutePolicy::default());
    assert_eq!(translation.model.hsts.as_deref(), Some("max-age=31536000; includeSubDomains"));
    assert_eq!(policy_of("seven.example.com"), quiet.key());
    assert_eq!((policy_of("eight.example.com"), policy_of("nine.example.com")), (String::new(), String::new()));
    let lines = diagnostic_lines(&translation);
    assert!(lines.iter().any(|l| l.contains("enable-access-log") && l.contains("\"no\"")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("proxy-read-timeout") && l.contains("\"60s\" is not a whole number")), "{lines:#?}");
}

#[test]
fn a_body_size_the_buffer_filter_cannot_count_is_warned() {
    let translation = run(&ingress("huge", &nginx(&[("proxy-body-size", "8g")]), &[rule("huge.example.com", &[path("/", "Prefix", "a", 80)])]));
    let lines = diagnostic_lines(&translation);
    assert!(lines.iter().any(|l| l.contains("proxy-body-size") && l.contains("4 GiB or more")), "{lines:#?}");
}

/// Linkerd's ingress-nginx setup: `upstream-vhost` or a snippet's `l5d-dst-override` names each
/// path's own Service with the location's variables.
#[test]
fn location_variables_name_each_paths_own_service() {
    let linkerd = "proxy_set_header l5d-dst-override $service_name.$namespace.svc.cluster.local:$service_port;\nproxy_set_header X-Real-IP $remote_addr;";
    let translation = run(&[
        ingress("vhost", &nginx(&[("upstream-vhost", "$service_name.$namespace.svc.cluster.local")]), &[rule("vhost.example.com", &[path("/a", "Prefix", "a", 80), path("/b", "Prefix", "b", 8080)])]),
        ingress("snippet", &nginx(&[("configuration-snippet", linkerd)]), &[rule("snippet.example.com", &[path("/a", "Prefix", "a", 80), path("/b", "Prefix", "b", 8080)])]),
        ingress("vhost-path", &nginx(&[("upstream-vhost", "$location_path.example")]), &[rule("path.example.com", &[path("/a", "Prefix", "a", 80)])]),
        ingress("prefix", &nginx(&[("x-forwarded-prefix", "/$ingress_name$location_path"), ("rewrite-target", "/")]), &[rule("prefix.example.com", &[path("/a", "Prefix", "a", 80)])]),
        // buildProxyPass sets it beside a rewrite only.
        ingress("no-rewrite", &nginx(&[("x-forwarded-prefix", "/p")]), &[rule("no-rewrite.example.com", &[path("/a", "Prefix", "a", 80)])]),
    ]
    .concat());
    let forward_at = |host: &str, path: &str| match &route_at(&translation, host, path).action {
        RouteAction::Forward(forward) => forward.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(forward_at("vhost.example.com", "/a").host_rewrite.as_deref(), Some("a.default.svc.cluster.local"));
    assert_eq!(forward_at("vhost.example.com", "/b").host_rewrite.as_deref(), Some("b.default.svc.cluster.local"));
    assert_eq!(forward_at("path.example.com", "/a").host_rewrite, None);
    let sent = |path: &str| {
        let policy = &translation.model.policies[&forward_at("snippet.example.com", path).policy];
        policy.request_headers.iter().map(|(name, value)| (name.clone(), value.envoy_format())).collect::<Vec<_>>()
    };
    let real_ip = ("x-real-ip".to_string(), "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%".to_string());
    assert_eq!(sent("/a"), [("l5d-dst-override".to_string(), "a.default.svc.cluster.local:80".to_string()), real_ip.clone()]);
    assert_eq!(sent("/b"), [("l5d-dst-override".to_string(), "b.default.svc.cluster.local:8080".to_string()), real_ip]);
    // rewrite-target puts the host in regex mode: its one route is `(?i)/a`.
    let RouteAction::Forward(rewritten) = &host_of(&translation, "prefix.example.com").routes[0].action else { panic!("not forwarded") };
    let prefix = &translation.model.policies[&rewritten.policy].request_headers["x-forwarded-prefix"];
    assert_eq!(prefix.envoy_format(), "/prefix/a");
    let bare = forward_at("no-rewrite.example.com", "/a").policy;
    assert!(translation.model.policies.get(&bare).is_none_or(|p| !p.request_headers.contains_key("x-forwarded-prefix")));
    let lines = diagnostic_lines(&translation);
    assert!(lines.iter().any(|l| l.contains("upstream-vhost") && l.contains("$location_path is not part of a host name")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("default/no-rewrite") && l.contains("has no effect without rewrite-target")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("configuration-snippet")), "the snippet is applied: {lines:#?}");
}

#[test]
fn body_sizes_read_like_nginx() {
    let cases = [("0", Some(None)), ("1024", Some(Some(1024))), ("8k", Some(Some(8192))), ("8m", Some(Some(8 << 20))), ("2G", Some(Some(2 << 30))), ("8b", None), ("m", None), ("-1", None), ("1.5m", None)];
    for (text, expected) in cases {
        assert_eq!(behaviour::parse_body_size(text).map(|s| s.0), expected, "{text:?}");
    }
}

/// nginx.tmpl writes `proxy_ssl_certificate` and `proxy_ssl_name` outside the CA's guard: a
/// `proxy-ssl-secret` with a key pair and no `ca.crt` still sends the client certificate and the
/// name, and checks nothing.
#[test]
fn a_proxy_ssl_secret_without_ca_sends_its_client_certificate() {
    let pair = namespaced_tls_secret("default", "pair-only", &self_signed(&["client.example.com"]));
    let annotations = nginx(&[
        ("backend-protocol", "HTTPS"),
        ("proxy-ssl-secret", "default/pair-only"),
        ("proxy-ssl-verify", "on"),
        ("proxy-ssl-name", "api.internal"),
        ("proxy-ssl-server-name", "on"),
    ]);
    let translation = run(&[pair, ingress("mtls", &annotations, &[rule("mtls.example.com", &[path("/", "Prefix", "a", 80)])])].concat());
    let RouteAction::Forward(forward) = &route_at(&translation, "mtls.example.com", "/").action else { panic!("served") };
    let tls = translation.model.clusters[&forward.backends[0].cluster].options.tls.clone().expect("TLS upstream");
    assert_eq!((tls.client_certificate.as_deref(), tls.server_name.as_deref(), tls.verify), (Some("default/pair-only"), Some("api.internal"), None));
}

#[test]
fn backend_protocols_make_clusters_of_their_own_and_bad_proxy_ssl_secrets_deny() {
    let translation = run(&[
        ingress("plain", "", &[rule("plain.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("grpc", &nginx(&[("backend-protocol", "GRPC")]), &[rule("grpc.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("grpc-too", &nginx(&[("backend-protocol", " grpc ")]), &[rule("grpc2.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("https", &nginx(&[("backend-protocol", "HTTPS"), ("proxy-connect-timeout", "30")]), &[rule("https.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("bogus", &nginx(&[("backend-protocol", "SPDY")]), &[rule("bogus.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("fcgi", &nginx(&[("backend-protocol", "FCGI")]), &[rule("fcgi.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("no-secret", &nginx(&[("backend-protocol", "HTTPS"), ("proxy-ssl-secret", "default/gone")]), &[rule("nosecret.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("elsewhere", &nginx(&[("backend-protocol", "HTTPS"), ("proxy-ssl-secret", "other/ca")]), &[rule("elsewhere.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat());
    let cluster_of = |host: &str| match &route_at(&translation, host, "/").action {
        RouteAction::Forward(forward) => forward.backends[0].cluster.clone(),
        other => panic!("{host}: {other:?}"),
    };
    let base = cluster_name("default", "a", 80);
    let grpc = crate::model::UpstreamOptions { http2: true, ..Default::default() };
    let https = crate::model::UpstreamOptions {
        tls: Some(Default::default()),
        connect_timeout: std::time::Duration::from_secs(30),
        ..Default::default()
    };
    assert_eq!(cluster_of("plain.example.com"), base);
    assert_eq!(cluster_of("bogus.example.com"), base, "an unknown protocol keeps HTTP");
    assert_eq!(cluster_of("grpc.example.com"), grpc.cluster_name(&base));
    assert_eq!(cluster_of("grpc2.example.com"), grpc.cluster_name(&base), "case and spaces do not matter");
    assert_eq!(cluster_of("https.example.com"), https.cluster_name(&base));
    let clusters = &translation.model.clusters;
    assert_eq!(clusters.len(), 3, "{:?}", clusters.keys());
    assert_eq!(clusters[&grpc.cluster_name(&base)].options, grpc);
    assert_eq!(clusters[&https.cluster_name(&base)].endpoints, clusters[&base].endpoints, "same endpoints, another way to speak");
    // gRPC streams: its routes buffer nothing.
    let grpc_policy = match &route_at(&translation, "grpc.example.com", "/").action {
        RouteAction::Forward(forward) => translation.model.policies[&forward.policy].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(grpc_policy.max_body_bytes, None);
    assert_eq!(route_at(&translation, "fcgi.example.com", "/").action, unavailable());
    for host in ["nosecret.example.com", "elsewhere.example.com"] {
        assert_eq!(route_at(&translation, host, "/").action, RouteAction::respond(503, denied_body(503)), "{host}");
    }
    let lines = diagnostic_lines(&translation);
    for expected in ["\"SPDY\" is not one of", "FCGI: Envoy has no FastCGI client", "Secret default/gone not found", "another namespace"] {
        assert!(lines.iter().any(|l| l.contains(expected)), "{expected}: {lines:#?}");
    }
}

/// ingress-nginx's `/` location of a host has the oldest Ingress's annotations and its default
/// backend: a `permanent-redirect` answers there too (its `return` comes before `proxy_pass`);
/// not for host-less rules, whose catch-all server keeps no redirect.
#[test]
fn a_redirecting_ingress_redirects_where_its_default_backend_answers() {
    let spec = |host: &str| format!("{{ingressClassName: wasm, defaultBackend: {{service: {{name: a, port: {{number: 80}}}}}}, rules: [{}]}}", rule(host, &[path("/x", "Prefix", "a", 80)]));
    let moved = nginx(&[("permanent-redirect", "https://new.example.com/")]);
    let translation = run(&[ingress_with_spec("moved", &moved, &spec("old.example.com")), ingress_with_spec("hostless", &moved, &spec(""))].concat());
    let Some(RouteAction::Redirect(redirect)) = &host_of(&translation, "old.example.com").fallback else { panic!("{:?}", host_of(&translation, "old.example.com").fallback) };
    let location = wasm_ingress_filter::table::Location::Url { url: "https://new.example.com/".into() };
    assert_eq!((redirect.status, &redirect.location), (301, &location));
    assert!(matches!(host_of(&translation, "").fallback, Some(RouteAction::Forward(_))), "host-less: the default backend");
}

#[test]
fn source_ranges_become_the_route_policy_of_every_path_and_the_host_fallback() {
    let translation = run(&[
        ingress_with_spec(
            "office",
            &nginx(&[("whitelist-source-range", "10.0.0.0/8, 192.168.1.1"), ("denylist-source-range", "10.6.6.0/24")]),
            &format!(
                "{{ingressClassName: wasm, defaultBackend: {{service: {{name: a, port: {{number: 80}}}}}}, rules: [{}]}}",
                rule("office.example.com", &[path("/", "Prefix", "a", 80), path("/b", "Prefix", "b", 8080)])
            ),
        ),
        ingress("bad", &nginx(&[("denylist-source-range", "10.0.0.0/40")]), &[rule("bad.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat());
    let policy_key = |action: &RouteAction| match action {
        RouteAction::Forward(forward) => forward.policy.clone(),
        other => panic!("{other:?}"),
    };
    let cidrs = |list: &[&str]| list.iter().map(|t| crate::model::Cidr::parse(t).unwrap()).collect::<Vec<_>>();
    let key = policy_key(&route_at(&translation, "office.example.com", "/").action);
    let policy = &translation.model.policies[&key];
    assert_eq!(policy.allow_sources, cidrs(&["10.0.0.0/8", "192.168.1.1"]));
    assert_eq!(policy.deny_sources, cidrs(&["10.6.6.0/24"]));
    assert_eq!(policy_key(&route_at(&translation, "office.example.com", "/b").action), key);
    let fallback = host_of(&translation, "office.example.com").fallback.clone().unwrap();
    assert_eq!(policy_key(&fallback), key, "the host fallback is limited too");
    assert!(!translation.denied_ingresses.iter().any(|k| k.name == "office"));
    assert_eq!(route_at(&translation, "bad.example.com", "/").action, RouteAction::respond(503, denied_body(503)));
}

#[test]
fn configmap_source_ranges_are_annotation_defaults_and_block_cidrs_the_deny_list_of_paths_without_lists() {
    let yaml = [
        ingress("plain", "", &[rule("plain.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("allows", &nginx(&[("allowlist-source-range", "10.1.0.0/16")]), &[rule("allows.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("denies", &nginx(&[("denylist-source-range", "10.9.9.9")]), &[rule("denies.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat();
    let cidrs = |list: &[&str]| list.iter().map(|t| crate::model::Cidr::parse(t).unwrap()).collect::<Vec<_>>();
    // (allow, deny) of each Ingress's route policy, and the Ingresses warned that block-cidrs
    // leaves them out.
    let with = |allow: &[&str], deny: &[&str], block: &[&str]| {
        let defaults = NginxDefaults { whitelist_source_range: cidrs(allow), denylist_source_range: cidrs(deny), block_cidrs: cidrs(block), ..NginxDefaults::default() };
        let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{yaml}")), &TranslateOptions { defaults, ..TranslateOptions::default() });
        let lists = ["plain", "allows", "denies"].map(|host| match &route_at(&translation, &format!("{host}.example.com"), "/").action {
            RouteAction::Forward(forward) => {
                let policy = translation.model.policies.get(&forward.policy).unwrap_or(&translation.model.default_policy);
                (policy.allow_sources.iter().map(ToString::to_string).collect::<Vec<_>>(), policy.deny_sources.iter().map(ToString::to_string).collect::<Vec<_>>())
            }
            other => panic!("{other:?}"),
        });
        let warned: Vec<String> = translation.diagnostics.iter().filter(|d| d.message.contains("--block-cidrs")).map(|d| d.object.name.clone()).collect();
        (lists, warned)
    };
    let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (none, one_allow, one_deny) = (list(&[]), list(&["10.1.0.0/16"]), list(&["10.9.9.9/32"]));
    assert_eq!(with(&[], &[], &[]), ([(none.clone(), none.clone()), (one_allow.clone(), none.clone()), (none.clone(), one_deny.clone())], Vec::new()), "no ConfigMap lists: the annotations alone");
    // The ConfigMap's lists fill in what the annotations leave out, each on its own.
    assert_eq!(
        with(&["192.168.0.0/16", "10.0.0.1"], &["192.168.6.6"], &[]).0,
        [
            (list(&["10.0.0.1/32", "192.168.0.0/16"]), list(&["192.168.6.6/32"])),
            (one_allow.clone(), list(&["192.168.6.6/32"])),
            (list(&["10.0.0.1/32", "192.168.0.0/16"]), one_deny.clone()),
        ]
    );
    // block-cidrs: the deny list of paths without lists; an Ingress with its own is left alone
    // (nginx's inheritance), and warned.
    assert_eq!(
        with(&[], &[], &["203.0.113.0/24"]),
        ([(none.clone(), list(&["203.0.113.0/24"])), (one_allow.clone(), none.clone()), (none.clone(), one_deny.clone())], list(&["allows", "denies"]))
    );
    // With a ConfigMap allow list every path has a list of its own: block-cidrs reaches none, as
    // in ingress-nginx (only the Ingresses whose own annotations leave it out are warned).
    let (lists, warned) = with(&["192.168.0.0/16"], &[], &["203.0.113.0/24"]);
    assert_eq!(lists[0], (list(&["192.168.0.0/16"]), none.clone()));
    assert_eq!(warned, list(&["allows", "denies"]));
    // The default server's `location /` has no list of its own whatever the ConfigMap's lists:
    // block-cidrs is the table's default_server_denied, sorted and without repeats.
    for allow in [&[][..], &["192.168.0.0/16"]] {
        let defaults = NginxDefaults { whitelist_source_range: cidrs(allow), block_cidrs: cidrs(&["203.0.113.0/24", "10.0.0.1", "203.0.113.0/24"]), ..NginxDefaults::default() };
        let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{yaml}")), &TranslateOptions { defaults, ..TranslateOptions::default() });
        assert_eq!(translation.model.route_table.default_server_denied, list(&["10.0.0.1/32", "203.0.113.0/24"]), "{allow:?}");
    }
    let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{yaml}")), &TranslateOptions::default());
    assert!(translation.model.route_table.default_server_denied.is_empty());
}

mod auth;
mod canary;
mod cors;
mod endpoints;
mod implicit_root;
mod sni;

#[test]
fn proxy_send_timeout_is_only_reported_when_it_would_differ_from_the_read_timeout() {
    let notes_for = |pairs: &[(&str, &str)]| {
        let annotations: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (format!("{NGINX}{k}"), v.to_string())).collect();
        let (_, notes) = parse_annotations(Some(&annotations), "default");
        notes.into_iter().filter(|(key, _, _)| key.ends_with("proxy-send-timeout")).count()
    };
    assert_eq!(notes_for(&[("proxy-read-timeout", "600"), ("proxy-send-timeout", "600")]), 0, "the one timer does what both ask");
    assert_eq!(notes_for(&[("proxy-read-timeout", "600"), ("proxy-send-timeout", "30")]), 1);
    assert_eq!(notes_for(&[("proxy-send-timeout", "120")]), 1);
}

/// ingress-nginx reads booleans with Go's `strconv.ParseBool` (`GetBoolAnnotation`): `True`, `1`,
/// `t`, `F`, `0`, ... are booleans too (serviceupstream.go and others write "True").
#[test]
fn booleans_read_as_go_parses_them() {
    let parsed = |pairs: &[(&str, &str)]| {
        let annotations: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (format!("{NGINX}{k}"), v.to_string())).collect();
        parse_annotations(Some(&annotations), "default")
    };
    for yes in ["1", "t", "T", "TRUE", "true", "True"] {
        let (nginx, notes) = parsed(&[("use-regex", yes), ("service-upstream", yes), ("ssl-passthrough", yes)]);
        assert!(nginx.use_regex && nginx.upstream.service_upstream == Some(true) && nginx.ssl_passthrough, "{yes}");
        assert!(notes.iter().all(|(key, _, _)| key.ends_with("ssl-passthrough")), "{yes}: {notes:?}");
    }
    for no in ["0", "f", "F", "FALSE", "false", "False"] {
        let (nginx, _) = parsed(&[("use-regex", no), ("service-upstream", no), ("enable-global-auth", no)]);
        assert!(!nginx.use_regex && nginx.upstream.service_upstream == Some(false) && nginx.global_auth_off, "{no}");
    }
    let (nginx, notes) = parsed(&[("use-regex", "yes")]);
    assert!(!nginx.use_regex && notes.len() == 1, "{notes:?}");
}

/// serviceupstream.go's "when enabling in the configmap": `--service-upstream` (ConfigMap
/// `service-upstream: "true"`) sends to the cluster IP unless the Ingress says "false".
#[test]
fn service_upstream_is_the_default_that_an_ingress_can_turn_off() {
    let service = "---\napiVersion: v1\nkind: Service\nmetadata: {name: cip}\nspec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080}]}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: cip-1, labels: {kubernetes.io/service-name: cip}}\naddressType: IPv4\nports: [{name: http, port: 8080}]\nendpoints:\n- {addresses: [10.0.0.7]}\n";
    let yaml = format!(
        "{OUR_CLASS}{service}{}{}",
        ingress("on", "", &[rule("on.example.com", &[path("/", "Prefix", "cip", 80)])]),
        ingress("off", &nginx(&[("service-upstream", "false")]), &[rule("off.example.com", &[path("/", "Prefix", "cip", 80)])]),
    );
    let mut options = TranslateOptions::default();
    options.defaults.service_upstream = true;
    let translation = translate(&state(&yaml), &options);
    let addresses = |service_upstream: bool| -> Vec<String> {
        let cluster = translation.model.clusters.values().find(|c| c.options.service_upstream == service_upstream).expect("a cluster");
        cluster.endpoints.iter().map(|e| format!("{}:{}", e.address, e.port)).collect()
    };
    assert_eq!(addresses(true), ["10.96.0.10:80"], "the cluster IP and Service port");
    assert_eq!(addresses(false), ["10.0.0.7:8080"], "service-upstream: false keeps the endpoints");
}

/// proxy.go's "should build proxy next upstream" writes `proxy_next_upstream_tries 888888`: nearly
/// unlimited in nginx, as is 0; here both are capped at the most tries offered.
#[test]
fn proxy_next_upstream_tries_beyond_the_cap_are_capped_not_dropped() {
    let tries_of = |value: &str| {
        let annotations: BTreeMap<String, String> = [(format!("{NGINX}proxy-next-upstream-tries"), value.to_string())].into();
        let (parsed, notes) = parse_annotations(Some(&annotations), "default");
        (parsed.behaviour.tries, notes.len())
    };
    assert_eq!(tries_of("5"), (Some(5), 0));
    assert_eq!(tries_of("888888"), (Some(10), 1));
    assert_eq!(tries_of("0"), (Some(10), 1));
    assert_eq!(tries_of("-1"), (None, 1), "not a count: the default");
}

/// `proxy-next-upstream-timeout` caps the tries at what fits when each try is a connection that
/// times out after `proxy-connect-timeout` (nginx tries the next endpoint only while less than the
/// timeout has passed since the first try).
#[test]
fn proxy_next_upstream_timeout_caps_the_tries_by_the_connect_timeout() {
    let tries_of = |pairs: &[(&str, &str)], default_timeout: u64| {
        let annotations: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (format!("{NGINX}{k}"), v.to_string())).collect();
        let (parsed, _) = parse_annotations(Some(&annotations), "default");
        let defaults = NginxDefaults { proxy_next_upstream_timeout: default_timeout, ..NginxDefaults::default() };
        let ingress = ObjectKey::new("default", "x");
        let location = super::variables::Location { ingress: &ingress, service_name: "s", service_port: "80", path: "/" };
        parsed.policy(&defaults, &location).tries
    };
    type Annotations<'a> = &'a [(&'a str, &'a str)];
    let table: [(Annotations, u64, u32); 9] = [
        (&[], 0, 3),                                                   // no timeout: the tries
        (&[("proxy-next-upstream-timeout", "30")], 0, 3),              // 6 connect timeouts fit
        (&[("proxy-next-upstream-timeout", "7")], 0, 2),               // tries begin at 0 s and 5 s
        (&[("proxy-next-upstream-timeout", "5")], 0, 1),               // at 5 s the time is up
        (&[("proxy-next-upstream-timeout", "1")], 0, 1),               // never fewer than one try
        (&[("proxy-next-upstream-timeout", "7"), ("proxy-connect-timeout", "2")], 0, 3),
        (&[("proxy-next-upstream-timeout", "0")], 5, 3),               // the annotation's 0 wins over the default
        (&[], 5, 1),                                                   // --proxy-next-upstream-timeout 5
        (&[("proxy-next-upstream-timeout", "soon")], 7, 2),            // not a number: the default
    ];
    for (pairs, default_timeout, expected) in table {
        assert_eq!(tries_of(pairs, default_timeout), expected, "{pairs:?} default {default_timeout}");
    }
}

#[test]
fn client_certificates_are_asked_for_by_host_as_ingress_nginx_servers() {
    use base64::Engine;
    let (ca_pem, _) = self_signed(&["client-ca"]);
    let ca_secret = format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: client-ca}}\ndata: {{ca.crt: {}}}\n",
        base64::engine::general_purpose::STANDARD.encode(&ca_pem)
    );
    let at = |time: &str, pairs: &[(&str, &str)]| format!("{}{}", created(time), nginx(pairs));
    let on = [("auth-tls-secret", "default/client-ca"), ("auth-tls-pass-certificate-to-upstream", "true"), ("server-alias", "alt.example.com")];
    let translation = run(&[
        ca_secret.clone(),
        ingress("first", &at("2024-01-01T00:00:00Z", &on), &[rule("mtls.example.com", &[path("/a", "Prefix", "a", 80)])]),
        ingress("second", &created("2024-01-02T00:00:00Z"), &[rule("mtls.example.com", &[path("/b", "Prefix", "b", 8080)])]),
        ingress("third", &at("2024-01-03T00:00:00Z", &[("auth-tls-secret", "default/client-ca"), ("auth-tls-verify-client", "optional")]), &[rule("mtls.example.com", &[path("/c", "Prefix", "a", 80)])]),
        ingress("hostless", &at("2024-01-04T00:00:00Z", &[("auth-tls-secret", "default/client-ca")]), &[hostless_rule(&[path("/h", "Prefix", "a", 80)])]),
        ingress("missing", &at("2024-01-05T00:00:00Z", &[("auth-tls-secret", "default/nope")]), &[rule("missing.example.com", &[path("/", "Prefix", "a", 80)])]),
        // An older Ingress of that host, without client certificates of its own.
        ingress("neighbour", &created("2024-01-04T12:00:00Z"), &[rule("missing.example.com", &[path("/other", "Prefix", "b", 8080)])]),
        ingress("open", "", &[rule("open.example.com", &[path("/", "Prefix", "a", 80)])]),
        // `off`: nothing asked (no chain of its own), but the upstream gets ssl-client-verify: NONE.
        ingress("off", &at("2024-01-07T00:00:00Z", &[("auth-tls-secret", "default/client-ca"), ("auth-tls-verify-client", "off")]), &[rule("off.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat());
    let required = Some(ClientCertificate { required: true, verified: true, error_page: None, match_cn: None, off: false });
    let off = Some(ClientCertificate { required: false, verified: false, error_page: None, match_cn: None, off: true });
    assert_eq!(host_of(&translation, "off.example.com").client_certificate, off);
    for host in ["mtls.example.com", "alt.example.com"] {
        assert_eq!(host_of(&translation, host).client_certificate, required, "{host}: the oldest Ingress decides, aliases too");
    }
    assert_eq!(host_of(&translation, "open.example.com").client_certificate, None);
    let policy_at = |path: &str| match &route_at(&translation, "mtls.example.com", path).action {
        RouteAction::Forward(forward) => translation.model.policies.get(&forward.policy).cloned().unwrap_or_default(),
        other => panic!("{other:?}"),
    };
    for path in ["/a", "/b", "/c"] {
        assert_eq!(policy_at(path).client_certificate_headers, Some(true), "{path}: every Ingress's paths of the host");
    }
    let validation: Vec<(&str, u32, bool, bool)> = translation
        .model
        .client_validation
        .iter()
        .map(|(host, v)| (host.as_str(), v.max_depth, v.verify, v.ca_pem == ca_pem && v.crl_pem.is_none()))
        .collect();
    assert_eq!(validation, [("alt.example.com", 1, true, true), ("mtls.example.com", 1, true, true)]);
    assert_eq!(route_at(&translation, "missing.example.com", "/").action, RouteAction::respond(403, denied_body(403)));
    // ingress-nginx's AuthTLSError closes the whole server: the neighbour's paths too.
    let closed = host_of(&translation, "missing.example.com");
    assert_eq!(route_at(&translation, "missing.example.com", "/other").action, RouteAction::respond(403, denied_body(403)));
    assert_eq!(closed.fallback, Some(RouteAction::respond(403, denied_body(403))));
    assert!(closed.routes.iter().all(|r| r.https_redirect.is_none()));
    assert!(translation.model.route_table.hosts.iter().filter(|h| h.host.is_empty()).all(|h| h.routes.is_empty()), "host-less paths skipped");

    // Another Ingress of the host cannot pass its TLS through, around the check.
    let passing = ingress("passing", &at("2024-01-06T00:00:00Z", &[("ssl-passthrough", "true")]), &[rule("mtls.example.com", &[path("/", "Prefix", "b", 8080)])]);
    let mut options = TranslateOptions::default();
    options.defaults.enable_ssl_passthrough = true;
    let first = ingress("first", &at("2024-01-01T00:00:00Z", &on), &[rule("mtls.example.com", &[path("/a", "Prefix", "a", 80)])]);
    let yaml = format!("{OUR_CLASS}{BACKENDS}{ca_secret}{first}{passing}");
    let passed = translate(&state(&yaml), &options);
    assert!(passed.model.passthrough.is_empty(), "{:?}", passed.model.passthrough);
    assert!(diagnostic_lines(&passed).iter().any(|l| l.contains("asks for client certificates (Ingress default/first); not passed through")));
    // A wildcard is never passed through (ingress-nginx matches the SNI exactly; Envoy's chain for
    // `*.example.com` would take every name below it): served with TLS terminated.
    let wild = ingress("wild", &at("2024-01-06T00:00:00Z", &[("ssl-passthrough", "true")]), &[rule("*.example.com", &[path("/", "Prefix", "b", 8080)])]);
    let wild = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{wild}")), &options);
    assert!(wild.model.passthrough.is_empty(), "{:?}", wild.model.passthrough);
    assert!(matches!(route_at(&wild, "*.example.com", "/").action, RouteAction::Forward(_)));
    assert!(diagnostic_lines(&wild).iter().any(|l| l.starts_with("warning: Ingress default/wild: metadata.annotations[nginx.ingress.kubernetes.io/ssl-passthrough]: host \"*.example.com\" is a wildcard")));
    // Without a `/` path on the host there is nothing to pass the TLS to: said, and TLS terminated.
    let rootless = ingress("rootless", &at("2024-01-06T00:00:00Z", &[("ssl-passthrough", "true")]), &[rule("tcp.example.com", &[path("/api", "Prefix", "b", 8080)])]);
    let translated = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{rootless}")), &options);
    assert!(translated.model.passthrough.is_empty(), "{:?}", translated.model.passthrough);
    assert!(diagnostic_lines(&translated).iter().any(|l| l.starts_with("warning: Ingress default/rootless: metadata.annotations[nginx.ingress.kubernetes.io/ssl-passthrough]: host \"tcp.example.com\" has no `/` path")));
    // As ingress-nginx, the host's `/` location is the target, whichever Ingress's path it is: a
    // newer Ingress's here, and an older one's over the passthrough Ingress's own `/`.
    let owner = ingress("owner", &at("2024-01-07T00:00:00Z", &[]), &[rule("tcp.example.com", &[path("/", "Prefix", "a", 80)])]);
    let translated = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{rootless}{owner}")), &options);
    let target = |t: &Translation, host: &str| t.model.passthrough.get(host).map(|p| p.cluster.to_string());
    assert_eq!(target(&translated, "tcp.example.com"), Some("default/a/80".to_string()));
    let older = ingress("older", &at("2024-01-01T00:00:00Z", &[]), &[rule("tcp.example.com", &[path("/", "Prefix", "a", 80)])]);
    let own_root = ingress("own-root", &at("2024-01-06T00:00:00Z", &[("ssl-passthrough", "true")]), &[rule("tcp.example.com", &[path("/", "Prefix", "b", 8080)])]);
    let translated = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{older}{own_root}")), &options);
    assert_eq!(target(&translated, "tcp.example.com"), Some("default/a/80".to_string()), "the older Ingress's `/` wins");
    let lines = diagnostic_lines(&translation);
    for expected in [
        "warning: Ingress default/third: metadata.annotations[nginx.ingress.kubernetes.io/auth-tls-secret]: host \"mtls.example.com\" already takes its client-certificate settings from the older Ingress default/first",
        "error: Ingress default/hostless: spec.rules[0].host: a rule without host has no server name to ask client certificates for",
        "error: Ingress default/missing: metadata.annotations[nginx.ingress.kubernetes.io/auth-tls-secret]: Secret default/nope does not exist",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(expected)), "missing {expected:?} in {lines:#?}");
    }
}

#[test]
fn limit_connections_counts_per_ingress_on_every_path_and_exempts_the_allowlist() {
    let translation = run(&[
        ingress("capped", &nginx(&[("limit-connections", "8"), ("limit-allowlist", "10.0.0.0/8, 192.0.2.7")]), &[rule("one.example.com", &[path("/", "Prefix", "a", 80), path("/api", "Prefix", "a", 80)])]),
        ingress("zero", &nginx(&[("limit-connections", "0")]), &[rule("two.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("bad", &nginx(&[("limit-connections", "eight")]), &[rule("three.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat());
    let limit_of = |host: &str, p: &str| match &route_at(&translation, host, p).action {
        RouteAction::Forward(forward) => forward.connection_limit.as_deref().cloned(),
        other => panic!("{other:?}"),
    };
    let capped = wasm_ingress_filter::table::ConnectionLimit {
        zone: "default/capped".into(),
        limit: 8,
        exempt: vec!["10.0.0.0/8".into(), "192.0.2.7/32".into()],
        status: 503,
    };
    let table = [
        ("one.example.com", "/", Some(capped.clone())),
        ("one.example.com", "/api", Some(capped)),
        ("two.example.com", "/", None),
    ];
    for (host, p, expected) in table {
        assert_eq!(limit_of(host, p), expected, "{host}{p}");
    }
    // ingress-nginx's ValidateInt rejects the Ingress: not served.
    assert!(translation.model.route_table.hosts.iter().all(|h| h.host != "three.example.com"));
    let lines = diagnostic_lines(&translation);
    assert!(
        lines.iter().any(|l| l.starts_with("error: Ingress default/bad") && l.contains("limit-connections") && l.contains("not a whole number") && l.contains("not served")),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains("limit-connections") && l.contains("not supported")), "{lines:#?}");
    wasm_ingress_filter::matcher::CompiledTable::compile(translation.model.route_table.clone()).expect("the filter accepts the table");

    // `serve --limit-conn-status-code 429` (ConfigMap `limit-conn-status-code`).
    let yaml = ingress("capped", &nginx(&[("limit-connections", "8")]), &[rule("one.example.com", &[path("/", "Prefix", "a", 80)])]);
    let defaults = NginxDefaults { limit_conn_status_code: 429, ..NginxDefaults::default() };
    let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{yaml}")), &TranslateOptions { defaults, ..TranslateOptions::default() });
    match &route_at(&translation, "one.example.com", "/").action {
        RouteAction::Forward(forward) => assert_eq!(forward.connection_limit.as_ref().map(|limit| limit.status), Some(429)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn answer_headers_carry_custom_headers_over_the_snippets_and_leave_out_what_an_answer_sets_itself() {
    let snippet = "more_set_headers \"X-Frame-Options: SAMEORIGIN\";";
    let annotations: BTreeMap<String, String> = [(format!("{NGINX}configuration-snippet"), snippet.to_string())].into();
    let (mut parsed, _) = parse_annotations(Some(&annotations), "default");
    let pairs = [("X-Frame-Options", "DENY"), ("Location", "https://elsewhere/"), ("X-Team", "shop"), ("x-team", "other"), ("X-Env", "prod")];
    parsed.custom_headers = pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    let answer: Vec<(String, String)> = parsed.answer_headers().into_iter().map(|h| (h.name, h.value)).collect();
    let expected = [("x-env", "prod"), ("x-frame-options", "DENY"), ("x-team", "other")].map(|(n, v)| (n.to_string(), v.to_string()));
    // nginx.tmpl writes custom-headers' more_set_headers after the snippet, in the map's sorted
    // order: the last one of a header wins.
    assert_eq!(answer, expected, "custom-headers over the snippet, the last spelling wins, Location left out");
}

#[test]
fn affinity_canary_behavior_is_read_on_canaries_sticky_by_default() {
    let parse = |pairs: &[(&str, &str)]| {
        let annotations: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (format!("{NGINX}{k}"), v.to_string())).collect();
        let (parsed, notes) = parse_annotations(Some(&annotations), "default");
        let notes: Vec<_> = notes.into_iter().filter(|(key, _, _)| key.ends_with("affinity-canary-behavior")).map(|(_, severity, _)| severity).collect();
        (parsed.canary.map(|rules| rules.legacy_affinity), notes)
    };
    let canary = ("canary", "true");
    assert_eq!(parse(&[canary]), (Some(false), vec![]), "sticky by default");
    assert_eq!(parse(&[canary, ("affinity-canary-behavior", "sticky")]), (Some(false), vec![]));
    assert_eq!(parse(&[canary, ("affinity-canary-behavior", "legacy")]), (Some(true), vec![]));
    assert_eq!(parse(&[canary, ("affinity-canary-behavior", "other")]), (Some(false), vec![Severity::Warning]), "refused by ingress-nginx: the default");
    assert_eq!(parse(&[("affinity-canary-behavior", "legacy")]), (None, vec![]), "on a main Ingress it does nothing, as in ingress-nginx");
}

/// ConfigMap `load-balance: ewma` as `serve --load-balance ewma`: every backend without an
/// annotation of its own.
#[test]
fn load_balance_flag_is_the_default_the_annotation_overrides() {
    let yaml = [
        ingress("plain", "", &[rule("plain.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("rr", &annotated(&[(&format!("{NGINX}load-balance"), "round_robin")]), &[rule("rr.example.com", &[path("/", "Prefix", "b", 8080)])]),
    ]
    .concat();
    let defaults = NginxDefaults { load_balance: crate::model::Balance::LeastRequest, ..NginxDefaults::default() };
    let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{yaml}")), &TranslateOptions { defaults, ..TranslateOptions::default() });
    // A cluster whose options are not the defaults is named with their hash after `~`.
    let balance = |service: &str, port: i32| {
        let plain = cluster_name("default", service, port);
        let found = translation.model.clusters.iter().find(|(name, _)| name.as_str().split('~').next() == Some(plain.as_str()));
        found.map(|(_, cluster)| cluster.options.balance)
    };
    assert_eq!(balance("a", 80), Some(crate::model::Balance::LeastRequest));
    assert_eq!(balance("b", 8080), Some(crate::model::Balance::RoundRobin));
}

#[test]
fn hash_subsets_send_the_key_from_the_filter_and_balance_the_cluster_by_subset() {
    let metadata = annotated(&[(&format!("{NGINX}upstream-hash-by"), "$arg_tenant"), (&format!("{NGINX}upstream-hash-by-subset"), "true")]);
    let translation = run(&ingress("shop", &metadata, &[rule("shop.example.com", &[path("/", "Prefix", "a", 80)])]));
    let [vhost] = translation.model.route_table.hosts.as_slice() else { panic!("{:?}", translation.model.route_table.hosts) };
    let RouteAction::Forward(forward) = &vhost.routes[0].action else { panic!("{:?}", vhost.routes[0].action) };
    assert_eq!(forward.subset_hash.as_deref(), Some(&wasm_ingress_filter::subset::HashKey::Query { name: "tenant".into() }));
    let policy = translation.model.policies.get(&forward.policy).cloned().unwrap_or_default();
    assert_eq!(policy.hash, None, "no Envoy hash policy: the subset balancer picks at random within the subset");
    let [cluster] = translation.model.clusters.values().collect::<Vec<_>>()[..] else { panic!("{:?}", translation.model.clusters) };
    assert_eq!(cluster.options.balance, crate::model::Balance::HashSubset { size: 3 });
    assert_eq!(cluster.endpoints.len(), 3, "the Service's endpoints");
}
