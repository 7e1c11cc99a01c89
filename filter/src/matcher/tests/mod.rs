//! Table-driven tests of the matcher: Ingress host and path semantics (the Kubernetes docs and
//! the conformance suite), redirects, rewrites, and what compilation refuses.

use super::*;

mod refusals;
use crate::table::{CanaryHeader, HostPart, Location, PathMatch, PathPart, PathRewrite, Route, VirtualHost, WeightedBackend, SCHEMA_VERSION};

fn prefix(value: &str, cluster: &str) -> Route {
    Route { path: PathMatch::Prefix(value.into()), action: RouteAction::forward_to(cluster), origin: Origin::default(), https_redirect: None, answer_headers: Vec::new() }
}
fn exact(value: &str, cluster: &str) -> Route {
    Route { path: PathMatch::Exact(value.into()), action: RouteAction::forward_to(cluster), origin: Origin::default(), https_redirect: None, answer_headers: Vec::new() }
}
fn regex(value: &str, cluster: &str) -> Route {
    Route { path: PathMatch::Regex(value.into()), action: RouteAction::forward_to(cluster), origin: Origin::default(), https_redirect: None, answer_headers: Vec::new() }
}
fn vhost(host: &str, routes: Vec<Route>) -> VirtualHost {
    VirtualHost { host: host.into(), routes, fallback: None, fallback_https_redirect: None, implicit_root: None, app_root: None, client_certificate: None }
}
fn table(hosts: Vec<VirtualHost>, default: Option<&str>) -> CompiledTable {
    CompiledTable::compile(RouteTable {
        schema: SCHEMA_VERSION,
        version: "test".into(),
        hosts,
        default_backend: default.map(RouteAction::forward_to),
        ..RouteTable::default()
    })
    .expect("test table compiles")
}

/// What a user would observe: the cluster the request goes to, or `status <n>`.
fn served_by(table: &CompiledTable, authority: &str, path: &str) -> String {
    served_by_bytes(table, authority.as_bytes(), path.as_bytes())
}
fn served_by_bytes(table: &CompiledTable, authority: &[u8], path: &[u8]) -> String {
    served(table, &RequestParts::new(authority, path))
}
fn served(table: &CompiledTable, request: &RequestParts<'_>) -> String {
    match table.route(request, 0).outcome {
        Outcome::Forward { cluster, .. } => cluster.to_string(),
        Outcome::Respond { status, .. } => format!("status {status}"),
        Outcome::Redirect { status, location, .. } => format!("redirect {status} {location}"),
    }
}

/// Every row of the "Examples" table of the Kubernetes Ingress concept page
/// (kubernetes.io/docs/concepts/services-networking/ingress/#examples). Each rule's backend is
/// named after its kind and path; "default" is the default backend.
#[test]
fn kubernetes_ingress_path_examples_table() {
    struct Row {
        rules: &'static [(&'static str, &'static str)],
        requests: &'static [&'static str],
        expected: &'static str,
    }
    let rows = [
        Row { rules: &[("Prefix", "/")], requests: &["/", "/foo", "/aaa/bbb/ccc", "/x?y=z"], expected: "Prefix:/" },
        Row { rules: &[("Exact", "/foo")], requests: &["/foo"], expected: "Exact:/foo" },
        Row { rules: &[("Exact", "/foo")], requests: &["/bar"], expected: "default" },
        Row { rules: &[("Exact", "/foo")], requests: &["/foo/"], expected: "default" },
        Row { rules: &[("Exact", "/foo/")], requests: &["/foo"], expected: "default" },
        Row { rules: &[("Prefix", "/foo")], requests: &["/foo", "/foo/"], expected: "Prefix:/foo" },
        Row { rules: &[("Prefix", "/foo/")], requests: &["/foo", "/foo/"], expected: "Prefix:/foo/" },
        Row { rules: &[("Prefix", "/aaa/bb")], requests: &["/aaa/bbb"], expected: "default" },
        Row { rules: &[("Prefix", "/aaa/bbb")], requests: &["/aaa/bbb"], expected: "Prefix:/aaa/bbb" },
        Row { rules: &[("Prefix", "/aaa/bbb/")], requests: &["/aaa/bbb"], expected: "Prefix:/aaa/bbb/" },
        Row { rules: &[("Prefix", "/aaa/bbb")], requests: &["/aaa/bbb/"], expected: "Prefix:/aaa/bbb" },
        Row { rules: &[("Prefix", "/aaa/bbb")], requests: &["/aaa/bbb/ccc"], expected: "Prefix:/aaa/bbb" },
        Row { rules: &[("Prefix", "/aaa/bbb")], requests: &["/aaa/bbbxyz"], expected: "default" },
        Row { rules: &[("Prefix", "/"), ("Prefix", "/aaa")], requests: &["/aaa/ccc"], expected: "Prefix:/aaa" },
        Row {
            rules: &[("Prefix", "/"), ("Prefix", "/aaa"), ("Prefix", "/aaa/bbb")],
            requests: &["/aaa/bbb"],
            expected: "Prefix:/aaa/bbb",
        },
        Row {
            rules: &[("Prefix", "/"), ("Prefix", "/aaa"), ("Prefix", "/aaa/bbb")],
            requests: &["/ccc"],
            expected: "Prefix:/",
        },
        Row { rules: &[("Prefix", "/aaa")], requests: &["/ccc"], expected: "default" },
        Row { rules: &[("Prefix", "/foo"), ("Exact", "/foo")], requests: &["/foo"], expected: "Exact:/foo" },
    ];
    for row in rows {
        // Both rule orders: precedence must not depend on the order of Prefix/Exact rules.
        for reversed in [false, true] {
            let mut routes: Vec<Route> = row
                .rules
                .iter()
                .map(|&(kind, path)| {
                    let name = format!("{kind}:{path}");
                    if kind == "Exact" { exact(path, &name) } else { prefix(path, &name) }
                })
                .collect();
            if reversed {
                routes.reverse();
            }
            let compiled = table(vec![vhost("", routes)], Some("default"));
            for request in row.requests {
                assert_eq!(served_by(&compiled, "any.example", request), row.expected, "rules {:?} request {request}", row.rules);
            }
        }
    }
}

/// The "Hostname wildcards" table of the Kubernetes Ingress concept page.
#[test]
fn kubernetes_ingress_hostname_wildcards_table() {
    let compiled = table(vec![vhost("*.foo.com", vec![prefix("/", "wildcard-foo-com")])], None);
    let rows = [
        ("bar.foo.com", "wildcard-foo-com"), // matches based on shared suffix
        ("baz.bar.foo.com", "status 404"),   // wildcard only covers a single DNS label
        ("foo.com", "status 404"),           // wildcard only covers a single DNS label
    ];
    for (host, expected) in rows {
        assert_eq!(served_by(&compiled, host, "/"), expected, "host {host}");
    }
}

/// kubernetes-sigs/ingress-controller-conformance features/host_rules.feature.
#[test]
fn conformance_host_rules() {
    let compiled = table(
        vec![
            vhost("*.foo.com", vec![prefix("/", "wildcard-foo-com")]),
            vhost("foo.bar.com", vec![prefix("/", "foo-bar-com")]),
        ],
        None,
    );
    let rows = [
        ("foo.bar.com", "foo-bar-com"),
        ("subdomain.bar.com", "status 404"),
        ("bar.foo.com", "wildcard-foo-com"),
        ("baz.bar.foo.com", "status 404"),
        ("foo.com", "status 404"),
    ];
    for (host, expected) in rows {
        assert_eq!(served_by(&compiled, host, "/"), expected, "host {host}");
    }
}

/// kubernetes-sigs/ingress-controller-conformance features/path_rules.feature (no default
/// backend: misses are 404).
#[test]
fn conformance_path_rules() {
    let compiled = table(
        vec![
            vhost("exact-path-rules", vec![exact("/foo", "foo-exact")]),
            vhost(
                "prefix-path-rules",
                vec![
                    prefix("/foo", "foo-prefix"),
                    prefix("/aaa/bbb", "aaa-slash-bbb-prefix"),
                    prefix("/aaa", "aaa-prefix"),
                ],
            ),
            vhost("mixed-path-rules", vec![prefix("/foo", "foo-prefix"), exact("/foo", "foo-exact")]),
            vhost(
                "trailing-slash-path-rules",
                vec![prefix("/aaa/bbb/", "aaa-slash-bbb-slash-prefix"), exact("/foo/", "foo-slash-exact")],
            ),
        ],
        None,
    );
    let rows = [
        ("exact-path-rules", "/foo", "foo-exact"),
        ("exact-path-rules", "/foo/", "status 404"),
        ("exact-path-rules", "/FOO", "status 404"),
        ("exact-path-rules", "/bar", "status 404"),
        ("prefix-path-rules", "/foo", "foo-prefix"),
        ("prefix-path-rules", "/foo/", "foo-prefix"),
        ("prefix-path-rules", "/FOO", "status 404"),
        ("prefix-path-rules", "/aaa/bbb", "aaa-slash-bbb-prefix"),
        ("prefix-path-rules", "/aaa/bbb/ccc", "aaa-slash-bbb-prefix"),
        ("prefix-path-rules", "/aaa/ccc", "aaa-prefix"),
        ("prefix-path-rules", "/aaaccc", "status 404"),
        ("mixed-path-rules", "/foo", "foo-exact"),
        ("mixed-path-rules", "/foo/x", "foo-prefix"),
        ("trailing-slash-path-rules", "/aaa/bbb", "aaa-slash-bbb-slash-prefix"),
        ("trailing-slash-path-rules", "/aaa/bbb/", "aaa-slash-bbb-slash-prefix"),
        ("trailing-slash-path-rules", "/foo", "status 404"),
        ("trailing-slash-path-rules", "/foo/", "foo-slash-exact"),
    ];
    for (host, path, expected) in rows {
        assert_eq!(served_by(&compiled, host, path), expected, "host {host} path {path}");
    }
}

/// kubernetes-sigs/ingress-controller-conformance features/default_backend.feature: no rules
/// match and no default backend -> 404.
#[test]
fn conformance_default_backend_is_404_without_one() {
    let compiled = table(vec![vhost("foo.bar", vec![prefix("/only", "svc")])], None);
    for path in ["/test", "/", "/onlyx"] {
        let decision = compiled.route(&RequestParts::new(b"foo.bar", path.as_bytes()), 0);
        assert_eq!(decision.via, Via::NotFound, "path {path}");
        assert_eq!(decision.outcome, Outcome::Respond { status: 404, body: NOT_FOUND_BODY, cors: None });
    }
}

#[test]
fn host_matching_ignores_case_port_and_one_trailing_dot() {
    let compiled = table(
        vec![vhost("foo.example.com", vec![prefix("/", "foo")]), vhost("*.wild.com", vec![prefix("/", "wild")])],
        None,
    );
    let rows = [
        ("foo.example.com", "foo"),
        ("FOO.Example.COM", "foo"),
        ("foo.example.com:8080", "foo"),
        ("foo.example.com.", "foo"),
        ("foo.example.com.:443", "foo"),
        ("A.WILD.COM:80", "wild"),
        ("foo.example.co", "status 404"),
        ("xfoo.example.com", "status 404"),
        (".wild.com", "status 404"),
        ("[::1]:8080", "status 404"),
        ("", "status 404"),
    ];
    for (host, expected) in rows {
        assert_eq!(served_by(&compiled, host, "/"), expected, "host {host:?}");
    }
}

#[test]
fn exact_host_beats_wildcard_beats_hostless() {
    let compiled = table(
        vec![
            vhost("", vec![prefix("/", "hostless")]),
            vhost("*.example.com", vec![prefix("/", "wildcard")]),
            vhost("api.example.com", vec![prefix("/", "exact")]),
        ],
        None,
    );
    assert_eq!(served_by(&compiled, "api.example.com", "/"), "exact");
    assert_eq!(served_by(&compiled, "www.example.com", "/"), "wildcard");
    assert_eq!(served_by(&compiled, "a.b.example.com", "/"), "hostless");
    assert_eq!(served_by(&compiled, "example.com", "/"), "hostless");
    assert_eq!(served_by(&compiled, "", "/"), "hostless");
    assert_eq!(served_by_bytes(&compiled, b"\xff.example.com", b"/"), "hostless");
}

#[test]
fn selected_host_never_falls_through_to_another_entrys_paths() {
    let mut with_fallback = vhost("b.com", vec![prefix("/b", "b")]);
    with_fallback.fallback = Some(RouteAction::forward_to("b-fallback"));
    let hosts = vec![
        vhost("a.com", vec![prefix("/a", "a")]),
        with_fallback,
        vhost("*.a.com", vec![prefix("/w", "w")]),
        vhost("", vec![prefix("/", "hostless")]),
    ];
    let compiled = table(hosts.clone(), Some("default"));
    assert_eq!(served_by(&compiled, "a.com", "/x"), "default");
    assert_eq!(served_by(&compiled, "x.a.com", "/x"), "default");
    assert_eq!(served_by(&compiled, "b.com", "/x"), "b-fallback");
    let decision = compiled.route(&RequestParts::new(b"b.com", b"/x"), 0);
    assert_eq!((decision.vhost, decision.via, decision.route), (Some("b.com"), Via::HostFallback, None));
    let decision = compiled.route(&RequestParts::new(b"a.com", b"/x"), 0);
    assert_eq!((decision.vhost, decision.via), (Some("a.com"), Via::DefaultBackend));

    let without_default = table(hosts, None);
    assert_eq!(served_by(&without_default, "a.com", "/x"), "status 404");
    assert_eq!(served_by(&without_default, "other.com", "/x"), "hostless");
}

/// ingress-nginx's implicit `/` location: a path no route of a host takes is the host's
/// `implicit_root`'s, unless the host's own fallback or a catch-all Ingress takes it; the
/// controller's default backend only answers hosts without one.
#[test]
fn the_implicit_root_comes_after_fallbacks_and_a_catch_all_ingress() {
    let guarded = |mut host: VirtualHost| {
        let RouteAction::Forward(mut root) = RouteAction::forward_to(crate::table::NOT_FOUND_CLUSTER) else { unreachable!() };
        root.policy = "p404".into();
        host.implicit_root = Some(RouteAction::Forward(root));
        host
    };
    let with_fallback = VirtualHost { fallback: Some(RouteAction::forward_to("b-fallback")), ..guarded(vhost("b.com", vec![prefix("/app", "b")])) };
    let hosts = vec![guarded(vhost("a.com", vec![prefix("/app", "a")])), with_fallback, vhost("c.com", vec![prefix("/app", "c")])];
    let without_default = table(hosts.clone(), None);
    let decision = without_default.route(&RequestParts::new(b"a.com", b"/x"), 0);
    assert_eq!((decision.vhost, decision.via), (Some("a.com"), Via::ImplicitRoot));
    let Outcome::Forward { cluster, forward, path } = decision.outcome else { panic!("{:?}", decision.outcome) };
    assert_eq!((cluster, forward.policy.as_str(), path), (crate::table::NOT_FOUND_CLUSTER, "p404", None));
    assert_eq!(served_by(&without_default, "a.com", "/app/x"), "a");
    assert_eq!(served_by(&without_default, "b.com", "/x"), "b-fallback");
    assert_eq!(served_by(&without_default, "c.com", "/x"), "status 404");
    assert_eq!(served_by(&without_default, "z.com", "/x"), "status 404");
    let controllers_default = table(hosts.clone(), Some("default"));
    assert_eq!(served_by(&controllers_default, "a.com", "/x"), crate::table::NOT_FOUND_CLUSTER);
    assert_eq!(served_by(&controllers_default, "c.com", "/x"), "default");
    let catch_all = CompiledTable::compile(RouteTable {
        schema: SCHEMA_VERSION,
        hosts,
        default_backend: Some(RouteAction::forward_to("catch-all")),
        default_backend_is_catch_all: true,
        ..RouteTable::default()
    })
    .unwrap();
    assert_eq!(served_by(&catch_all, "a.com", "/x"), "catch-all");
    assert_eq!(served_by(&catch_all, "a.com", "/app"), "a");
}

#[test]
fn unmatched_host_without_hostless_entry_uses_default_backend_then_404() {
    let hosts = vec![vhost("a.com", vec![prefix("/", "a")])];
    let compiled = table(hosts.clone(), Some("default"));
    let decision = compiled.route(&RequestParts::new(b"z.com", b"/"), 0);
    assert_eq!((decision.vhost, decision.via), (None, Via::DefaultBackend));
    assert_eq!(served_by(&table(hosts, None), "z.com", "/"), "status 404");
}

#[test]
fn respond_actions_are_answered_by_the_filter() {
    let mut host = vhost("a.com", vec![Route {
        path: PathMatch::Prefix("/gone".into()),
        action: RouteAction::respond(503, "service missing"),
        origin: Origin::parse("default/a: spec.rules[0].http.paths[0]"),
        https_redirect: None,
        answer_headers: Vec::new(),
    }]);
    host.fallback = Some(RouteAction::respond(418, ""));
    let compiled = table(vec![host], None);
    let decision = compiled.route(&RequestParts::new(b"a.com", b"/gone/x"), 0);
    assert_eq!(decision.outcome, Outcome::Respond { status: 503, body: "service missing", cors: None });
    assert_eq!(decision.route.map(|r| r.origin.to_string()), Some("default/a: spec.rules[0].http.paths[0]".to_string()));
    assert_eq!(served_by(&compiled, "a.com", "/other"), "status 418");
}

#[test]
fn query_string_and_fragment_never_take_part_in_matching() {
    let compiled = table(vec![vhost("", vec![exact("/foo", "exact"), prefix("/bar", "prefix")])], None);
    let rows = [
        ("/foo?x=1", "exact"),
        ("/foo?/bar", "exact"),
        ("/foo#frag", "exact"),
        ("/bar?foo", "prefix"),
        ("/barx?/bar", "status 404"),
        ("/?/foo", "status 404"),
    ];
    for (path, expected) in rows {
        assert_eq!(served_by(&compiled, "h", path), expected, "path {path}");
    }
}

#[test]
fn path_precedence_exact_then_first_regex_then_longest_prefix() {
    let compiled = table(
        vec![vhost(
            "",
            vec![
                prefix("/api/v1/users", "long-prefix"),
                regex("/api/v[0-9]+", "regex-1"),
                regex("/api", "regex-2"),
                exact("/api/v1/users", "exact"),
                prefix("/", "root"),
            ],
        )],
        None,
    );
    let rows = [
        ("/api/v1/users", "exact"),
        ("/api/v1/users/7", "regex-1"), // regex beats the longer Prefix (ingress-nginx: regex locations first)
        ("/api/x", "regex-2"),
        ("/apix", "regex-2"), // regex is not element-wise and not anchored at the end
        ("/x/api/v1", "root"), // regex is anchored at the start
        ("/", "root"),
    ];
    for (path, expected) in rows {
        assert_eq!(served_by(&compiled, "h", path), expected, "path {path}");
    }
}

#[test]
fn first_of_duplicate_paths_wins() {
    let compiled = table(
        vec![vhost("", vec![exact("/e", "e1"), exact("/e", "e2"), prefix("/p/", "p1"), prefix("/p", "p2")])],
        None,
    );
    assert_eq!(served_by(&compiled, "h", "/e"), "e1");
    assert_eq!(served_by(&compiled, "h", "/p/x"), "p1");
    // `/` is kept beside the prefix tree: the first one still wins, and it covers only paths.
    let compiled = table(vec![vhost("", vec![prefix("/", "r1"), prefix("//", "r2"), exact("/e", "e")])], None);
    for (path, expected) in [("/", "r1"), ("/x/y", "r1"), ("/e", "e"), ("*", "status 404")] {
        assert_eq!(served_by(&compiled, "h", path), expected, "path {path}");
    }
}

#[test]
fn longest_prefix_wins_with_backtracking_across_branches() {
    let compiled = table(
        vec![vhost(
            "",
            vec![
                prefix("/", "root"),
                prefix("/foo", "foo"),
                prefix("/foobar", "foobar"),
                prefix("/foo/bar/baz", "foo-bar-baz"),
                prefix("/f", "f"),
            ],
        )],
        None,
    );
    let rows = [
        ("/foob", "root"),
        ("/fo", "root"),
        ("/f", "f"),
        ("/f/oo", "f"),
        ("/foo", "foo"),
        ("/foo/", "foo"),
        ("/foo/bar", "foo"),
        ("/foo/bar/ba", "foo"),
        ("/foo/bar/baz", "foo-bar-baz"),
        ("/foo/bar/baz/", "foo-bar-baz"),
        ("/foo/bar/bazz", "foo"),
        ("/foobar", "foobar"),
        ("/foobar/x", "foobar"),
        ("/foobarx", "root"),
        ("//foo", "root"),
        ("/foo//bar", "foo"),
    ];
    for (path, expected) in rows {
        assert_eq!(served_by(&compiled, "h", path), expected, "path {path}");
    }
}

/// `{`, `}`, `*` and `:` are special to matchit (or were, in older versions); they must be plain
/// characters in our Exact and Prefix paths.
#[test]
fn matchit_special_characters_are_literal_path_characters() {
    let compiled = table(
        vec![vhost(
            "",
            vec![
                prefix("/a{b}", "braces"),
                prefix("/{*rest}", "fake-catch-all"),
                prefix("/users/:id", "colon"),
                prefix("/star/*", "star"),
                prefix("/{", "open"),
                prefix("/}}", "close2"),
                exact("/x{y}z", "exact-braces"),
                exact("/{id}", "exact-param-like"),
            ],
        )],
        None,
    );
    let rows = [
        ("/a{b}", "braces"),
        ("/a{b}/c", "braces"),
        ("/aXb", "status 404"),
        ("/a{b}c", "status 404"),
        ("/{*rest}", "fake-catch-all"),
        ("/{*rest}/deeper", "fake-catch-all"),
        ("/anything/else", "status 404"),
        ("/users/:id", "colon"),
        ("/users/:id/x", "colon"),
        ("/users/7", "status 404"),
        ("/star/*", "star"),
        ("/star/*/x", "star"),
        ("/star/x", "status 404"),
        ("/{", "open"),
        ("/{/x", "open"),
        ("/}}", "close2"),
        ("/}", "status 404"),
        ("/x{y}z", "exact-braces"),
        ("/xyz", "status 404"),
        ("/{id}", "exact-param-like"),
        ("/7", "status 404"),
    ];
    for (path, expected) in rows {
        assert_eq!(served_by(&compiled, "h", path), expected, "path {path}");
    }
}

#[test]
fn odd_and_hostile_requests_never_panic() {
    let compiled = table(vec![vhost("", vec![prefix("/a", "a"), regex("(?i)/r(/|$)(.*)", "r")])], Some("default"));
    // Over 8 KiB: 414 before any matching, as nginx's request-line limit.
    let huge = format!("/a/{}", "x".repeat(1 << 20));
    assert_eq!(served_by(&compiled, "h", &huge), "status 414");
    let long = format!("/a/{}", "x".repeat(8000));
    assert_eq!(served_by(&compiled, "h", &long), "a");
    let deep_r = format!("/r/{}", "y/".repeat(4000));
    assert_eq!(served_by(&compiled, "h", &deep_r), "r");
    let deep = "/a".repeat(4096);
    assert_eq!(served_by(&compiled, "h", &deep), "a");
    assert_eq!(served_by_bytes(&compiled, b"h", b"/a/\xff\xfe"), "a");
    assert_eq!(served_by_bytes(&compiled, b"\xc3\x28:\xff", b"/a"), "a");
    assert_eq!(served_by(&compiled, "h", ""), "default");
    assert_eq!(served_by(&compiled, "h", "*"), "default");
    assert_eq!(served_by(&compiled, "h", "?"), "default");
    assert_eq!(served_by(&compiled, "", ""), "default");
    assert_eq!(served_by(&compiled, &"h".repeat(100_000), "/a"), "a");
}

fn forward_with(rewrite: Option<PathRewrite>, host_rewrite: Option<&str>, backends: &[(&str, u32)]) -> RouteAction {
    RouteAction::Forward(Forward {
        backends: backends.iter().map(|&(c, w)| WeightedBackend { cluster: c.into(), weight: w }).collect(),
        rewrite,
        host_rewrite: host_rewrite.map(String::from),
        ..forward_fields("unused")
    })
}

#[test]
fn rewrite_target_through_the_matcher() {
    let compiled = table(
        vec![vhost(
            "rewrite.bar.com",
            vec![
                Route {
                    path: PathMatch::Regex("(?i)/something(/|$)(.*)".into()),
                    action: forward_with(Some(PathRewrite::Template("/$2".into())), None, &[("svc", 1)]),
                    origin: Origin::default(),
                    https_redirect: None,
                    answer_headers: Vec::new(),
                },
                Route {
                    path: PathMatch::Prefix("/app/".into()),
                    action: forward_with(Some(PathRewrite::ReplacePrefix("/".into())), Some("internal.svc"), &[("app", 1)]),
                    origin: Origin::default(),
                    https_redirect: None,
                    answer_headers: Vec::new(),
                },
                Route {
                    path: PathMatch::Prefix("/plain".into()),
                    action: forward_with(Some(PathRewrite::Template("/".into())), None, &[("plain", 1)]),
                    origin: Origin::default(),
                    https_redirect: None,
                    answer_headers: Vec::new(),
                },
            ],
        )],
        None,
    );
    let rows: [(&str, &str, Option<&str>, Option<&str>); 8] = [
        ("/something", "svc", Some("/"), None),
        ("/something/", "svc", Some("/"), None),
        ("/something/new", "svc", Some("/new"), None),
        ("/something/new?x=1", "svc", Some("/new?x=1"), None),
        ("/Something/New", "svc", Some("/New"), None),
        ("/app/v1/x?q", "app", Some("/v1/x?q"), Some("internal.svc")),
        ("/app", "app", Some("/"), Some("internal.svc")),
        ("/plain/deep/path?k=v", "plain", Some("/?k=v"), None),
    ];
    for (path, cluster, new_path, authority) in rows {
        let decision = compiled.route(&RequestParts::new(b"rewrite.bar.com", path.as_bytes()), 0);
        let Outcome::Forward { cluster: got, path: got_path, forward } = decision.outcome else { panic!("path {path}: {:?}", decision.outcome) };
        assert_eq!((got, got_path.as_deref(), forward.host_rewrite.as_deref(), forward.policy.as_str()), (cluster, new_path, authority, ""), "path {path}");
    }
}

#[test]
fn weighted_backends_follow_the_random_argument() {
    let compiled = table(
        vec![vhost("", vec![Route {
            path: PathMatch::Prefix("/".into()),
            action: forward_with(None, None, &[("stable", 9), ("canary", 1)]),
            origin: Origin::default(),
            https_redirect: None,
            answer_headers: Vec::new(),
        }])],
        None,
    );
    let mut canary = 0;
    for random in 0..1000u64 {
        if let Outcome::Forward { cluster: "canary", .. } =
            compiled.route(&RequestParts::new(b"h", b"/"), random).outcome
        {
            canary += 1;
        }
    }
    assert_eq!(canary, 100);
}

#[test]
fn a_canary_route_names_both_clusters_and_decides_with_its_compiled_pattern() {
    let mut route = prefix("/info", "default/main/80");
    if let RouteAction::Forward(forward) = &mut route.action {
        forward.canary = Some(Box::new(Canary {
            cluster: "default/canary/80".into(),
            header: Some(CanaryHeader { name: "x-canary".into(), rule: CanaryHeaderRule::Pattern("^Do[A-Z][a-z]+y$".into()) }),
            cookie: None,
            weight: 0,
            weight_total: 100,
            origin: Origin::parse("default/info-canary"),
            legacy_affinity: false,
        }));
    }
    let table = table(vec![vhost("foo", vec![route])], None);
    let Outcome::Forward { cluster, forward, .. } = table.route(&RequestParts::new(b"foo", b"/info"), 0).outcome else {
        panic!("not forwarded");
    };
    let canary = forward.canary.as_deref().expect("a canary on the route");
    assert_eq!(cluster, "default/main/80");
    struct One(&'static str);
    impl HeaderLookup for One {
        fn header(&self, name: &str) -> Option<Vec<u8>> {
            (name == "x-canary").then(|| self.0.as_bytes().to_vec())
        }
    }
    assert!(table.chooses_canary(canary, &One("DoCanary"), 0));
    assert!(!table.chooses_canary(canary, &One("Docanary"), 0));
}

#[test]
fn error_page_clusters_are_found_only_with_the_token_and_when_listed() {
    const TOKEN: &str = "0123456789abcdef0123";
    let with = |clusters: &[&str], token: &str| CompiledTable::compile(RouteTable {
        schema: SCHEMA_VERSION,
        error_page_clusters: clusters.iter().map(|c| ClusterName::from(*c)).collect(),
        error_page_token: token.into(),
        ..RouteTable::default()
    });
    let table = with(&["default/errors/80", "shop/pages/8080~abc"], TOKEN).expect("valid");
    assert!(table.has_error_pages());
    let marked = |cluster: &str| format!("{TOKEN} {cluster}").into_bytes();
    assert_eq!(table.error_page_cluster(&marked("shop/pages/8080~abc")), Some("shop/pages/8080~abc"));
    assert_eq!(table.error_page_cluster(&marked("default/app/80")), None, "a cluster not listed for error pages");
    // What a client can send without the token: nothing is an error page.
    for value in ["shop/pages/8080~abc", " shop/pages/8080~abc", "0123456789abcdef012 shop/pages/8080~abc", "0123456789abcdef01234 shop/pages/8080~abc", "", " "] {
        assert_eq!(table.error_page_cluster(value.as_bytes()), None, "{value:?}");
    }
    assert!(!with(&[], "").expect("empty").has_error_pages());
    assert_eq!(with(&[], "").expect("empty").error_page_cluster(b" "), None, "no token, no clusters: nothing");
    let refused = [
        (&["b", "a"][..], TOKEN, "sorted"),
        (&["a", "a"][..], TOKEN, "sorted"),
        (&["bad\ncluster"][..], TOKEN, "error page cluster"),
        (&["a"][..], "", "error_page_token"),
        (&["a"][..], "short", "error_page_token"),
        (&["a"][..], "0123456789abcdef 0123", "error_page_token"),
    ];
    for (clusters, token, reason) in refused {
        let error = with(clusters, token).expect_err(reason);
        assert!(error.reason.contains(reason), "{clusters:?} {token:?}: {error}");
    }
}

#[test]
fn empty_table_routes_everything_to_404() {
    let compiled = table(vec![], None);
    assert_eq!(compiled.version(), "test");
    assert_eq!(served_by(&compiled, "a.com", "/"), "status 404");
}

#[test]
fn lookups_stay_correct_with_many_rules() {
    let routes: Vec<Route> = (0..10_000).map(|i| prefix(&format!("/svc{i}/api"), &format!("c{i}"))).collect();
    let hosts: Vec<VirtualHost> = (0..10_000).map(|i| vhost(&format!("h{i}.example.com"), vec![prefix("/", &format!("h{i}"))])).collect();
    let mut all = hosts;
    all.push(vhost("many.example.com", routes));
    let compiled = table(all, None);
    assert_eq!(served_by(&compiled, "many.example.com", "/svc9999/api/x"), "c9999");
    assert_eq!(served_by(&compiled, "many.example.com", "/svc42/api"), "c42");
    assert_eq!(served_by(&compiled, "many.example.com", "/svc42/apix"), "status 404");
    assert_eq!(served_by(&compiled, "h777.example.com", "/q"), "h777");
}

fn redirect_to(status: u16, location: Location) -> Redirect {
    Redirect { status, location, cors: None }
}
fn force_ssl_redirect() -> Redirect {
    let path = PathPart::RequestUri { trim_trailing_slash: true };
    redirect_to(308, Location::FromRequest { scheme: Some("https".into()), host: HostPart::RequestHost, path })
}
fn app_root(path: &str) -> Redirect {
    let location = Location::FromRequest { scheme: None, host: HostPart::RequestAuthority, path: PathPart::Fixed(path.into()) };
    redirect_to(302, location)
}
fn from_to_www(host: &str) -> Redirect {
    let path = PathPart::RequestUri { trim_trailing_slash: true };
    redirect_to(308, Location::FromRequest { scheme: None, host: HostPart::WithListenerPort(host.into()), path })
}
fn permanent_redirect(url: &str) -> RouteAction {
    RouteAction::Redirect(redirect_to(301, Location::Url { url: url.into() }))
}
fn with_https_redirect(mut route: Route) -> Route {
    route.https_redirect = Some(force_ssl_redirect());
    route
}
fn https<'a>(authority: &'a str, path: &'a str) -> RequestParts<'a> {
    RequestParts { https: true, ..RequestParts::new(authority.as_bytes(), path.as_bytes()) }
}

#[test]
fn app_root_answers_only_a_request_for_exactly_slash() {
    let mut host = vhost("approot.bar.com", vec![with_https_redirect(prefix("/", "root")), prefix("/api", "api")]);
    host.app_root = Some(app_root("/foo"));
    let compiled = table(vec![host], None);
    let rows = [
        // ingress-nginx e2e approot: `GET /` -> 302 `http://approot.bar.com/foo`.
        ("approot.bar.com", "/", "redirect 302 http://approot.bar.com/foo"),
        ("approot.bar.com:8080", "/", "redirect 302 http://approot.bar.com:8080/foo"),
        ("approot.bar.com", "/?a=b", "redirect 302 http://approot.bar.com/foo"),
        // Not exactly `/`: the routes decide (here the force-ssl-redirect of `/`).
        ("approot.bar.com", "/x", "redirect 308 https://approot.bar.com/x"),
        ("approot.bar.com", "//", "redirect 308 https://approot.bar.com/"),
        ("approot.bar.com", "/api/v1", "api"),
    ];
    for (authority, path, expected) in rows {
        assert_eq!(served_by(&compiled, authority, path), expected, "{authority}{path}");
    }
    let decision = compiled.route(&RequestParts::new(b"approot.bar.com", b"/"), 0);
    assert_eq!((decision.vhost, decision.via, decision.route), (Some("approot.bar.com"), Via::AppRoot, None));
    // Over HTTPS the app-root keeps the request's scheme.
    assert_eq!(served(&compiled, &https("approot.bar.com", "/")), "redirect 302 https://approot.bar.com/foo");
}

#[test]
fn app_root_applies_even_when_no_route_covers_slash() {
    let mut host = vhost("approot.bar.com", vec![prefix("/only", "only")]);
    host.app_root = Some(app_root("/only"));
    let compiled = table(vec![host], None);
    assert_eq!(served_by(&compiled, "approot.bar.com", "/"), "redirect 302 http://approot.bar.com/only");
    assert_eq!(served_by(&compiled, "other.com", "/"), "status 404");
}

#[test]
fn https_redirect_answers_plain_http_and_lets_https_through() {
    let compiled = table(vec![vhost("forcesslredirect.bar.com", vec![with_https_redirect(prefix("/", "svc"))])], None);
    let rows = [
        // ingress-nginx e2e forcesslredirect: `GET /` -> 308 `https://forcesslredirect.bar.com`.
        ("/", "redirect 308 https://forcesslredirect.bar.com"),
        ("/a/", "redirect 308 https://forcesslredirect.bar.com/a"),
        ("/a/?q", "redirect 308 https://forcesslredirect.bar.com/a/?q"),
    ];
    for (path, expected) in rows {
        assert_eq!(served_by(&compiled, "forcesslredirect.bar.com", path), expected, "{path}");
        assert_eq!(served(&compiled, &https("forcesslredirect.bar.com", path)), "svc", "{path} over https");
    }
    let decision = compiled.route(&RequestParts::new(b"forcesslredirect.bar.com", b"/"), 0);
    assert_eq!(decision.via, Via::Route);
    assert!(decision.route.is_some_and(|r| r.https_redirect.is_some()));
}

#[test]
fn preserve_trailing_slash_redirect_keeps_the_slash() {
    let mut route = prefix("/", "svc");
    let path = PathPart::RequestUri { trim_trailing_slash: false };
    route.https_redirect =
        Some(redirect_to(308, Location::FromRequest { scheme: Some("https".into()), host: HostPart::RequestHost, path }));
    let compiled = table(vec![vhost("forcesslredirect.bar.com", vec![route])], None);
    assert_eq!(served_by(&compiled, "forcesslredirect.bar.com", "/"), "redirect 308 https://forcesslredirect.bar.com/");
}

/// settings/tls.go "should not use ports or X-Forwarded-Host during the HTTP to HTTPS redirection":
/// behind a trusted load balancer (`use-forwarded-headers`), the redirect names its host, without
/// its port (nginx's `redirect_host()` of `$best_http_host`); routing still goes by `Host`.
#[test]
fn the_https_redirect_names_a_trusted_load_balancers_host() {
    let compiled = table(vec![vhost("settings-tls", vec![with_https_redirect(prefix("/", "svc"))])], None);
    let behind = |forwarded: &'static str| RequestParts { forwarded_host: forwarded.as_bytes(), ..RequestParts::new(b"settings-tls", b"/") };
    assert_eq!(served(&compiled, &behind("example.com:80")), "redirect 308 https://example.com");
    assert_eq!(served(&compiled, &behind("Public.example, inner")), "redirect 308 https://public.example");
    assert_eq!(served(&compiled, &behind("")), "redirect 308 https://settings-tls");
    let unknown = RequestParts { forwarded_host: b"settings-tls", ..RequestParts::new(b"other", b"/") };
    assert!(!served(&compiled, &unknown).starts_with("redirect"), "the host is routed by Host");
}

#[test]
fn routes_without_https_redirect_ignore_the_scheme() {
    let gone = Route { action: RouteAction::respond(503, "gone"), ..prefix("/gone", "") };
    let compiled = table(vec![vhost("a.com", vec![prefix("/", "svc"), gone, with_https_redirect(prefix("/secure", "secure"))])], None);
    for path in ["/", "/x?y", "/gone/1"] {
        assert_eq!(served_by(&compiled, "a.com", path), served(&compiled, &https("a.com", path)), "{path}");
    }
    assert_eq!(served_by(&compiled, "a.com", "/gone/1"), "status 503");
    assert_eq!(served_by(&compiled, "a.com", "/x"), "svc");
}

#[test]
fn redirect_actions_answer_from_routes_fallbacks_and_the_default_backend() {
    let permanent = Route { action: permanent_redirect("http://redirect.example.com"), ..prefix("/", "") };
    let mut www = vhost("www.fromtowwwredirect.bar.com", vec![]);
    www.fallback = Some(RouteAction::Redirect(from_to_www("fromtowwwredirect.bar.com")));
    let compiled = CompiledTable::compile(RouteTable {
        schema: SCHEMA_VERSION,
        hosts: vec![vhost("redirect.bar.com", vec![permanent]), www],
        default_backend: Some(permanent_redirect("https://default.example.com/")),
        ..RouteTable::default()
    })
    .expect("compiles");
    let rows = [
        // ingress-nginx e2e redirect: permanent-redirect -> 301 with exactly the URL.
        ("redirect.bar.com", "/any/path?q=1", "redirect 301 http://redirect.example.com"),
        // ingress-nginx e2e fromtowwwredirect: -> 308 `http://fromtowwwredirect.bar.com:80/foo`.
        ("www.fromtowwwredirect.bar.com", "/foo", "redirect 308 http://fromtowwwredirect.bar.com:80/foo"),
        ("unknown.com", "/", "redirect 301 https://default.example.com/"),
    ];
    for (authority, path, expected) in rows {
        assert_eq!(served_by(&compiled, authority, path), expected, "{authority}{path}");
    }
    let port_8443 = RequestParts { listener_port: Some(8443), ..https("www.fromtowwwredirect.bar.com", "/") };
    assert_eq!(served(&compiled, &port_8443), "redirect 308 https://fromtowwwredirect.bar.com:8443");
}

#[test]
fn a_redirect_too_long_for_a_header_answers_414() {
    let mut host = vhost("approot.bar.com", vec![]);
    host.app_root = Some(app_root("/foo"));
    let compiled = table(vec![host], None);
    let authority = format!("approot.bar.com:{}", "9".repeat(crate::limits::MAX_LOCATION_BYTES));
    assert_eq!(served_by(&compiled, &authority, "/"), "status 414");
}

#[test]
fn policy_key_is_carried_into_the_forward_outcome() {
    let slow = Route {
        action: RouteAction::Forward(Forward { policy: "timeout-60s".into(), ..forward_fields("slow") }),
        ..prefix("/slow", "")
    };
    let compiled = table(vec![vhost("a.com", vec![slow, prefix("/", "plain")])], None);
    let outcome = |path: &str| compiled.route(&RequestParts::new(b"a.com", path.as_bytes()), 0).outcome;
    let policy = |path: &str| match outcome(path) {
        Outcome::Forward { cluster, path: None, forward } => (cluster, forward.policy.clone()),
        other => panic!("{path}: {other:?}"),
    };
    assert_eq!(policy("/slow/x"), ("slow", "timeout-60s".to_string()));
    assert_eq!(policy("/x"), ("plain", String::new()));
}

fn forward_fields(cluster: &str) -> Forward {
    match RouteAction::forward_to(cluster) {
        RouteAction::Forward(forward) => forward,
        other => panic!("forward_to gave {other:?}"),
    }
}

#[test]
fn the_table_says_whether_routing_reads_the_scheme_or_the_listener_port() {
    let with_default = |default_backend: RouteAction| RouteTable {
        schema: SCHEMA_VERSION,
        default_backend: Some(default_backend),
        ..RouteTable::default()
    };
    let with_host = |routes: Vec<Route>, app_root: Option<Redirect>, fallback: Option<RouteAction>| RouteTable {
        schema: SCHEMA_VERSION,
        hosts: vec![VirtualHost { host: "a.com".into(), routes, fallback, fallback_https_redirect: None, implicit_root: None, app_root, client_certificate: None }],
        ..RouteTable::default()
    };
    let url = permanent_redirect("http://r.example.com");
    let www = RouteAction::Redirect(from_to_www("a.com"));
    let redirecting_host = RouteTable {
        schema: SCHEMA_VERSION,
        hosts: vec![VirtualHost { host: "a.com".into(), fallback_https_redirect: Some(force_ssl_redirect()), ..VirtualHost::default() }],
        ..RouteTable::default()
    };
    let rows: [(&str, RouteTable, (bool, bool)); 8] = [
        ("plain routes", with_host(vec![prefix("/", "a")], None, None), (false, false)),
        ("fallback_https_redirect", redirecting_host, (true, false)),
        ("fixed url route", with_host(vec![Route { action: url.clone(), ..prefix("/", "") }], None, None), (false, false)),
        ("fixed url default", with_default(url), (false, false)),
        // `https_redirect` needs the scheme to know whether it applies, even with a fixed scheme.
        ("https_redirect", with_host(vec![with_https_redirect(prefix("/", "a"))], None, None), (true, false)),
        ("app_root", with_host(vec![], Some(app_root("/foo")), None), (true, false)),
        ("from-to-www fallback", with_host(vec![], None, Some(www.clone())), (true, true)),
        ("from-to-www default", with_default(www), (true, true)),
    ];
    for (name, table, expected) in rows {
        let compiled = CompiledTable::compile(table).expect("compiles");
        assert_eq!((compiled.needs_scheme(), compiled.needs_listener_port()), expected, "{name}");
    }
}

/// ingress-nginx's implicit `/` location of a host: a plain-HTTP request no route matches gets
/// the host's `fallback_https_redirect`, before its fallback; HTTPS requests and matched routes
/// are untouched, and another host is not redirected.
#[test]
fn unmatched_plain_http_requests_of_a_host_follow_its_https_redirect() {
    let mut redirected = vhost("tls.example", vec![exact("/app", "app")]);
    redirected.fallback_https_redirect = Some(force_ssl_redirect());
    redirected.fallback = Some(RouteAction::forward_to("fallback"));
    let compiled = table(vec![redirected, vhost("plain.example", vec![exact("/app", "plain")])], Some("default"));
    let rows: [(&str, &str, bool, &str); 6] = [
        ("tls.example", "/other?q=1", false, "redirect 308 https://tls.example/other?q=1"),
        ("tls.example", "/other", true, "fallback"),
        ("tls.example", "/app", false, "app"),
        ("plain.example", "/other", false, "default"),
        // nginx trims the trailing slash (without preserve-trailing-slash), and writes the host lower case.
        ("TLS.example:80", "/", false, "redirect 308 https://tls.example"),
        ("tls.example", "/app/x", false, "redirect 308 https://tls.example/app/x"),
    ];
    for (host, path, https, expected) in rows {
        let request = RequestParts { https, ..RequestParts::new(host.as_bytes(), path.as_bytes()) };
        assert_eq!(served(&compiled, &request), expected, "{host}{path} https={https}");
        if expected.starts_with("redirect 308") {
            assert_eq!(compiled.route(&request, 0).via, Via::HostHttpsRedirect);
        }
    }
}

/// ingress-nginx's default server (`_`) answers `/healthz` (200: cloud load balancers' health
/// checks on port 80) and `/nginx_status` (403 from outside the pod) from its own prefix
/// locations, for requests no Ingress host takes; a host-less route that nginx would prefer (an
/// exact path, a prefix at least as long, a regex) still wins, and a named host is never touched.
#[test]
fn the_default_server_answers_healthz_and_nginx_status_as_ingress_nginx() {
    let hostless = vhost("", vec![prefix("/", "catch"), prefix("/healthz/deep", "deep"), exact("/nginx_status", "status-page")]);
    let compiled = table(vec![vhost("app.example", vec![prefix("/", "app")]), hostless], Some("default"));
    let rows = [
        ("app.example", "/healthz", "app"),
        ("unknown.example", "/healthz", "status 200"),
        ("unknown.example", "/healthz?probe=1", "status 200"),
        ("unknown.example", "/healthzX", "status 200"),
        ("unknown.example", "/healthz/deep/x", "deep"),
        ("unknown.example", "/nginx_status", "status-page"),
        ("unknown.example", "/nginx_status/x", "status 403"),
        ("", "/healthz", "status 200"),
        ("unknown.example", "/other", "catch"),
    ];
    for (host, path, expected) in rows {
        assert_eq!(served_by(&compiled, host, path), expected, "{host}{path}");
    }
    let bare = table(vec![vhost("app.example", vec![prefix("/", "app")])], None);
    assert_eq!(bare.route(&RequestParts::new(b"1.2.3.4", b"/healthz"), 0).via, Via::DefaultServer);
    assert_eq!(served_by(&bare, "1.2.3.4", "/nginx_status"), "status 403");
    assert_eq!(served_by(&bare, "1.2.3.4", "/other"), "status 404");
    let regex_mode = table(vec![vhost("", vec![regex("(?i)/.*", "regex")])], None);
    assert_eq!(served_by(&regex_mode, "x", "/healthz"), "regex", "nginx tries regex locations after the longest prefix");
}

/// `app.example` with `/api`, a host-less `/hl` if `hostless`, and `default` as the default backend.
fn default_server_table(hostless: bool, default: Option<&str>) -> RouteTable {
    let mut hosts = vec![vhost("app.example", vec![prefix("/api", "api")])];
    if hostless {
        hosts.push(vhost("", vec![prefix("/hl", "hostless")]));
    }
    RouteTable { schema: SCHEMA_VERSION, hosts, default_backend: default.map(RouteAction::forward_to), ..RouteTable::default() }
}

/// ingress-nginx's default server logs nothing by default (`enable-access-log-for-default-backend`):
/// the filter's 404 for its `location /` unless the table says to, its `/healthz` and
/// `/nginx_status` never; a named host's answers, routes and forwards to a default backend always.
#[test]
fn only_the_default_servers_answers_stay_out_of_the_access_log() {
    let unlogged = |logged: bool, hostless: bool, default: Option<&str>, catch_all: bool, host: &str, path: &str| {
        let table = RouteTable { default_backend_is_catch_all: catch_all, default_server_logged: logged, ..default_server_table(hostless, default) };
        let compiled = CompiledTable::compile(table).expect("compiles");
        compiled.default_server_unlogged(&compiled.route(&RequestParts::new(host.as_bytes(), path.as_bytes()), 0))
    };
    // (default server logged, a host-less entry too, default backend, it is a catch-all Ingress's, host, path, left out)
    let rows = [
        (false, false, None, false, "unknown.example", "/x", true),
        (false, false, Some("default"), false, "unknown.example", "/x", false),
        (false, false, None, false, "", "/x", true),
        (false, false, None, false, "unknown.example", "/healthz", true),
        (false, false, None, false, "unknown.example", "/nginx_status", true),
        (true, false, None, false, "unknown.example", "/x", false),
        (true, false, Some("default"), false, "unknown.example", "/x", false),
        (true, false, None, false, "unknown.example", "/healthz", true),
        (false, false, Some("catch-all"), true, "unknown.example", "/x", false),
        (false, false, None, false, "app.example", "/other", false),
        (false, false, Some("default"), false, "app.example", "/other", false),
        (false, false, None, false, "app.example", "/api/x", false),
        (false, true, None, false, "unknown.example", "/hl/x", false),
        (false, true, Some("default"), false, "unknown.example", "/elsewhere", false),
        (false, true, None, false, "unknown.example", "/elsewhere", true),
    ];
    for (logged, hostless, default, catch_all, host, path, expected) in rows {
        assert_eq!(unlogged(logged, hostless, default, catch_all, host, path), expected, "{host}{path} logged={logged} hostless={hostless} default={default:?} catch_all={catch_all}");
    }
}

/// `--block-cidrs` on the default server: only its `location /` (a host no Ingress names, or a
/// path no host-less route takes, answered 404 or by the default backend) is guarded; a named
/// host's answers, routes (their policies have the lists) and `/healthz` are not.
#[test]
fn default_server_denied_guards_only_the_default_servers_root_location() {
    let guarded = |hostless: bool, default: Option<&str>, denied: &[&str], host: &str, path: &str| {
        let table = RouteTable { default_server_denied: denied.iter().map(|s| s.to_string()).collect(), ..default_server_table(hostless, default) };
        let compiled = CompiledTable::compile(table).expect("compiles");
        compiled.default_server_guards(&compiled.route(&RequestParts::new(host.as_bytes(), path.as_bytes()), 0))
    };
    let block: &[&str] = &["10.0.0.0/8"];
    // (a host-less entry too, default backend, denied, host, path, guarded)
    let rows = [
        (false, None, block, "unknown.example", "/x", true),
        (false, Some("default"), block, "unknown.example", "/x", true),
        (false, None, block, "", "/x", true),
        (false, None, &[], "unknown.example", "/x", false),
        (false, None, block, "app.example", "/other", false),
        (false, Some("default"), block, "app.example", "/other", false),
        (false, None, block, "app.example", "/api/x", false),
        (false, None, block, "unknown.example", "/healthz", false),
        (true, None, block, "unknown.example", "/hl/x", false),
        (true, Some("default"), block, "unknown.example", "/elsewhere", true),
    ];
    for (hostless, default, denied, host, path, expected) in rows {
        assert_eq!(guarded(hostless, default, denied, host, path), expected, "{host}{path} hostless={hostless} default={default:?} denied={denied:?}");
    }
    let table = RouteTable { schema: SCHEMA_VERSION, default_server_denied: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()], ..RouteTable::default() };
    let compiled = CompiledTable::compile(table).expect("compiles");
    for (client, denied) in [("10.1.2.3", true), ("11.0.0.1", false), ("2001:db8::5", true), ("", false)] {
        assert_eq!(compiled.default_server_denies(client), denied, "{client:?}");
    }
}
