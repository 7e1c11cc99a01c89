//! What compilation refuses, and that `check` and `check_route` agree with it: every refusal
//! names the host, route, origin and field.

use super::*;

#[test]
fn regex_floods_and_rewrite_bombs_are_refused_at_compile_time() {
    use crate::limits::{MAX_REGEX_PATTERN_BYTES, MAX_REGEX_ROUTES_PER_HOST, MAX_REWRITE_SUBSTITUTIONS};
    let flood: Vec<Route> = (0..=MAX_REGEX_ROUTES_PER_HOST).map(|i| regex(&format!("/f{i}/"), "c")).collect();
    let error = CompiledTable::compile(RouteTable { schema: SCHEMA_VERSION, hosts: vec![vhost("h", flood)], ..RouteTable::default() })
        .err()
        .map(|e| (e.route, e.reason));
    assert_eq!(error, Some((Some(MAX_REGEX_ROUTES_PER_HOST), format!("more than {MAX_REGEX_ROUTES_PER_HOST} regex routes on one host"))));
    let long = regex(&"a".repeat(MAX_REGEX_PATTERN_BYTES + 1), "c");
    assert!(check_route(&long).is_err_and(|e| e.contains("bytes, more than")));
    let bomb = |n: usize| Route {
        path: PathMatch::Regex("/b(.*)".into()),
        action: RouteAction::Forward(Forward { rewrite: Some(PathRewrite::Template("$0".repeat(n))), ..forward_fields("c") }),
        origin: Origin::default(),
        https_redirect: None,
        answer_headers: Vec::new(),
    };
    assert!(check_route(&bomb(MAX_REWRITE_SUBSTITUTIONS)).is_ok());
    assert!(check_route(&bomb(MAX_REWRITE_SUBSTITUTIONS + 1)).is_err_and(|e| e.contains("substitutions")));
    assert!(check_route(&bomb(600)).is_err_and(|e| e.contains("rewrite template is 1200 bytes")));
}

#[test]
fn check_agrees_with_compile() {
    let base = |hosts: Vec<VirtualHost>| RouteTable { schema: SCHEMA_VERSION, hosts, ..RouteTable::default() };
    let limited = RouteAction::Forward(Forward {
        connection_limit: Some(Box::new(crate::table::ConnectionLimit { zone: "a b".into(), limit: 1, exempt: vec![], status: 503 })),
        ..match forward_with(None, None, &[("c", 1)]) {
            RouteAction::Forward(forward) => forward,
            _ => unreachable!(),
        }
    });
    let tables = [
        base(vec![vhost("a", vec![exact("/x", "c"), regex("/y(.*)", "c")])]),
        base(vec![vhost("a", vec![]), vhost("a", vec![])]),
        base(vec![vhost("a", vec![regex("(", "c")])]),
        base(vec![vhost("a", vec![Route { path: PathMatch::Prefix("/".into()), action: limited, origin: Origin::default(), https_redirect: None, answer_headers: Vec::new() }])]),
        RouteTable { schema: SCHEMA_VERSION + 1, ..RouteTable::default() },
    ];
    let outcomes: Vec<bool> = tables.iter().map(|t| CompiledTable::check(t).is_ok()).collect();
    assert_eq!(outcomes, [true, false, false, false, false]);
    for table in tables {
        assert_eq!(CompiledTable::check(&table).err(), CompiledTable::compile(table).err());
    }
}

fn compile_error(hosts: Vec<VirtualHost>) -> CompileError {
    CompiledTable::compile(RouteTable { schema: SCHEMA_VERSION, version: "v".into(), hosts, default_backend: None, ..RouteTable::default() })
        .expect_err("table must be refused")
}

#[test]
fn compile_errors_name_host_route_and_origin() {
    let mut bad = regex("/ok", "x");
    bad.path = PathMatch::Regex("/(unclosed".into());
    bad.origin = Origin::new("default", "shop", "spec.rules[0].http.paths[1]");
    let error = compile_error(vec![vhost("shop.example.com", vec![prefix("/", "a"), bad])]);
    assert_eq!(error.host.as_deref(), Some("shop.example.com"));
    assert_eq!(error.route, Some(1));
    assert_eq!(error.origin.to_string(), "default/shop: spec.rules[0].http.paths[1]");
    let text = error.to_string();
    assert!(text.contains("shop.example.com") && text.contains("route 1") && text.contains("invalid regex"), "{text}");
    assert!(text.contains("default/shop: spec.rules[0].http.paths[1]"), "{text}");
}

#[test]
fn invalid_tables_are_refused() {
    let empty_backends = Route {
        path: PathMatch::Prefix("/".into()),
        action: forward_with(None, None, &[]),
        origin: Origin::default(),
        https_redirect: None,
        answer_headers: Vec::new(),
    };
    let zero_weights = Route {
        path: PathMatch::Prefix("/".into()),
        action: forward_with(None, None, &[("a", 0), ("b", 0)]),
        origin: Origin::default(),
        https_redirect: None,
        answer_headers: Vec::new(),
    };
    let injected_host = Route {
        path: PathMatch::Prefix("/".into()),
        action: forward_with(None, Some("a.com\r\nx-evil: 1"), &[("a", 1)]),
        origin: Origin::default(),
        https_redirect: None,
        answer_headers: Vec::new(),
    };
    let nginx_variable = Route {
        path: PathMatch::Regex("/(.*)".into()),
        action: forward_with(Some(PathRewrite::Template("/$host/$1".into())), None, &[("a", 1)]),
        origin: Origin::default(),
        https_redirect: None,
        answer_headers: Vec::new(),
    };
    let with_canary = |edit: &dyn Fn(&mut Canary)| {
        let mut canary = Canary {
            cluster: "b".into(),
            header: Some(CanaryHeader { name: "x-canary".into(), rule: CanaryHeaderRule::AlwaysNever }),
            cookie: None,
            weight: 0,
            weight_total: 100,
            origin: Origin::default(),
            legacy_affinity: false,
        };
        edit(&mut canary);
        let mut route = prefix("/", "a");
        if let RouteAction::Forward(forward) = &mut route.action {
            forward.canary = Some(Box::new(canary));
        }
        vec![vhost("a", vec![route])]
    };
    let header = |name: &str, rule: CanaryHeaderRule| Some(CanaryHeader { name: name.into(), rule });
    let cases: Vec<(&str, Vec<VirtualHost>, &str)> = vec![
        ("canary header upper case", with_canary(&|c| c.header = header("X-Canary", CanaryHeaderRule::AlwaysNever)), "lower case"),
        ("canary header injection", with_canary(&|c| c.header = header("x\r\nb", CanaryHeaderRule::AlwaysNever)), "letters, digits"),
        ("canary bad pattern", with_canary(&|c| c.header = header("x", CanaryHeaderRule::Pattern("[".into()))), "invalid regex"),
        ("canary value injection", with_canary(&|c| c.header = header("x", CanaryHeaderRule::Value("a\nb".into()))), "control character"),
        ("canary value padded", with_canary(&|c| c.header = header("x", CanaryHeaderRule::Value("a ".into()))), "ends with a space"),
        ("canary cookie", with_canary(&|c| c.cookie = Some("a;b".into())), "cookie name"),
        ("canary total 0", with_canary(&|c| c.weight_total = 0), "weight_total is 0"),
        ("canary cluster", with_canary(&|c| c.cluster = ClusterName::default()), "cluster is empty"),
        ("empty backends", vec![vhost("a", vec![empty_backends])], "no backends"),
        ("zero weights", vec![vhost("a", vec![zero_weights])], "weight 0"),
        ("header injection", vec![vhost("a", vec![injected_host])], "control character"),
        ("nginx variable", vec![vhost("a", vec![nginx_variable])], "nginx variables"),
        ("relative exact", vec![vhost("a", vec![exact("foo", "x")])], "must start with '/'"),
        ("prefix with query", vec![vhost("a", vec![prefix("/a?b", "x")])], "could never match"),
        ("duplicate host", vec![vhost("a", vec![]), vhost("A", vec![])], "more than once"),
        ("duplicate hostless", vec![vhost("", vec![]), vhost("", vec![])], "more than once"),
        ("bare star", vec![vhost("*", vec![])], "`*`"),
        ("inner star", vec![vhost("a.*.com", vec![])], "`*`"),
        ("wildcard without domain", vec![vhost("*.", vec![])], "wildcard"),
        ("host with port", vec![vhost("a.com:80", vec![])], "port"),
        ("implicit root", vec![VirtualHost { implicit_root: Some(forward_with(None, None, &[])), ..vhost("a", vec![]) }], "implicit_root: Forward has no backends"),
    ];
    for (name, hosts, reason) in cases {
        let error = compile_error(hosts);
        assert!(error.reason.contains(reason), "{name}: {error}");
    }
    let wrong_schema = CompiledTable::compile(RouteTable { schema: 2, ..RouteTable::default() }).expect_err("schema 2");
    assert!(wrong_schema.reason.contains("schema 2"), "{wrong_schema}");
    let bad_default = CompiledTable::compile(RouteTable {
        schema: SCHEMA_VERSION,
        default_backend: Some(RouteAction::respond(99, "")),
        ..RouteTable::default()
    })
    .expect_err("status 99");
    assert!(bad_default.reason.contains("default_backend"), "{bad_default}");
}

#[test]
fn check_route_reports_what_compile_would_refuse() {
    assert_eq!(check_route(&prefix("/a{b}/*:c", "x")), Ok(()));
    assert_eq!(check_route(&regex("(?i)/something(/|$)(.*)", "x")), Ok(()));
    let error = check_route(&regex("/(", "x")).expect_err("bad regex");
    assert!(error.contains("invalid regex"), "{error}");
    let error = check_route(&prefix("relative", "x")).expect_err("relative");
    assert!(error.contains("must start with '/'"), "{error}");
    let huge = regex(&format!("/({})", "a{1000}".repeat(100)), "x");
    assert!(check_route(&huge).is_err(), "a regex over the size limit is refused");
}

#[test]
fn bad_redirects_and_policy_keys_are_refused_naming_the_field() {
    let bad_status = Route { action: RouteAction::Redirect(redirect_to(200, Location::Url { url: "http://a".into() })), ..prefix("/", "") };
    let bad_https_redirect = Route {
        https_redirect: Some(redirect_to(308, Location::FromRequest { scheme: Some("ftp".into()), host: HostPart::RequestHost, path: PathPart::default() })),
        answer_headers: Vec::new(),
        ..prefix("/", "a")
    };
    let policy = |key: &str| Route {
        action: RouteAction::Forward(Forward { policy: key.into(), ..forward_fields("c") }),
        ..prefix("/", "")
    };
    let mut bad_app_root = vhost("a", vec![]);
    bad_app_root.app_root = Some(app_root("foo"));
    let mut bad_fallback = vhost("a", vec![]);
    bad_fallback.fallback = Some(RouteAction::Redirect(from_to_www("a.com:80")));
    let cors_redirect = |origin: &str, policy: &str| {
        let cors = crate::table::Cors {
            origin_pattern: Some(origin.into()),
            policy: policy.into(),
            preflight_policy: "pp".into(),
            answer_headers: Vec::new(),
            echo_origin: true,
        };
        let redirect = Redirect { cors: Some(Box::new(cors)), ..redirect_to(301, Location::Url { url: "http://a".into() }) };
        Route { action: RouteAction::Redirect(redirect), ..prefix("/", "") }
    };
    let cases: Vec<(&str, Vec<VirtualHost>, &str)> = vec![
        ("redirect status", vec![vhost("a", vec![bad_status])], "redirect status 200 is outside 300..=308"),
        ("https_redirect scheme", vec![vhost("a", vec![bad_https_redirect.clone()])], "https_redirect: redirect scheme \"ftp\""),
        ("app_root path", vec![bad_app_root], "app_root: redirect path \"foo\" must start with '/'"),
        ("fallback host", vec![bad_fallback], "fallback: redirect host \"a.com:80\" must be a bare host name"),
        ("policy charset", vec![vhost("a", vec![policy("Timeout_60")])], "policy key \"Timeout_60\" may only contain"),
        ("policy length", vec![vhost("a", vec![policy(&"a".repeat(65))])], "policy key is 65 bytes, more than the 64 allowed"),
        ("redirect cors origin", vec![vhost("a", vec![cors_redirect("(", "pc")])], "cors: "),
        ("redirect cors policy", vec![vhost("a", vec![cors_redirect("^a$", "P C")])], "cors: policy key \"P C\""),
    ];
    for (name, hosts, reason) in cases {
        let error = compile_error(hosts);
        assert!(error.to_string().contains(reason), "{name}: {error}");
    }
    assert_eq!(check_route(&policy(&"a".repeat(64))), Ok(()));
    assert_eq!(check_route(&policy("timeout-60s-0")), Ok(()));
    assert!(check_route(&policy("a b")).is_err());
    assert!(check_route(&bad_https_redirect).is_err_and(|e| e.starts_with("https_redirect: redirect scheme")));
    assert!(check_redirect(&app_root("/foo")).is_ok());
    assert_eq!(check_route(&cors_redirect("(?i)^https://a\\.example$", "pc")), Ok(()));

    use crate::subset::HashKey;
    let subset = |key: HashKey| Route {
        action: RouteAction::Forward(Forward { subset_hash: Some(Box::new(key)), ..forward_fields("c") }),
        ..prefix("/", "")
    };
    for good in [HashKey::Header { name: ":path".into() }, HashKey::Header { name: "x-user".into() }, HashKey::Cookie { name: "SID".into() }, HashKey::SourceIp] {
        assert_eq!(check_route(&subset(good.clone())), Ok(()), "{good:?}");
    }
    for bad in [HashKey::Header { name: "X-User".into() }, HashKey::Header { name: ":method".into() }, HashKey::Query { name: "a=b".into() }, HashKey::Cookie { name: String::new() }] {
        assert!(check_route(&subset(bad.clone())).is_err_and(|e| e.starts_with("subset_hash: ")), "{bad:?}");
    }
}

#[test]
fn answer_headers_must_be_bounded_lower_case_names_with_printable_values() {
    use crate::limits::{MAX_ANSWER_HEADERS, MAX_ANSWER_HEADER_VALUE_BYTES};
    use crate::table::AnswerHeader;
    let with = |headers: Vec<(&str, String)>| Route {
        answer_headers: headers.into_iter().map(|(name, value)| AnswerHeader { name: name.into(), value }).collect(),
        ..exact("/x", "c")
    };
    let ok = |value: &str| vec![("x-frame-options", value.to_string())];
    assert!(check_route(&with(ok("DENY"))).is_ok());
    assert!(check_route(&with(ok("max-age=1; includeSubDomains"))).is_ok(), "spaces are fine");
    let many: Vec<(&str, String)> = (0..=MAX_ANSWER_HEADERS).map(|_| ("x-a", "1".to_string())).collect();
    let refused = [
        with(ok("")),
        with(ok("a\r\nset-cookie: x=1")),
        with(ok("caf\u{e9}")),
        with(ok(&"v".repeat(MAX_ANSWER_HEADER_VALUE_BYTES + 1))),
        with(vec![("X-Frame-Options", "DENY".into())]),
        with(vec![("x frame", "DENY".into())]),
        with(vec![(":status", "200".into())]),
        with(vec![("location", "https://evil.example/".into())]),
        with(vec![("content-type", "text/html".into())]),
        with(many),
    ];
    for route in refused {
        assert!(check_route(&route).is_err(), "{:?}", route.answer_headers);
    }
}

#[test]
fn check_except_skips_only_the_hosts_already_checked() {
    let base = |hosts: Vec<VirtualHost>| RouteTable { schema: SCHEMA_VERSION, hosts, ..RouteTable::default() };
    let bad = vhost("bad", vec![regex("/(unclosed", "c")]);
    let table = base(vec![vhost("a", vec![exact("/x", "c")]), bad.clone()]);
    assert!(CompiledTable::check(&table).is_err_and(|e| e.host.as_deref() == Some("bad")));
    assert!(CompiledTable::check_except(&table, |_| false).is_err_and(|e| e.host.as_deref() == Some("bad")), "nothing skipped: as check");
    assert!(CompiledTable::check_except(&table, |vhost| vhost.host == "bad").is_ok(), "the host's own checks skipped");
    // What spans hosts is always checked: a host named twice, a table-level limit.
    let twice = base(vec![vhost("a", vec![]), vhost("a", vec![])]);
    assert!(CompiledTable::check_except(&twice, |_| true).is_err());
    let unknown_schema = RouteTable { schema: SCHEMA_VERSION + 1, ..table };
    assert!(CompiledTable::check_except(&unknown_schema, |_| true).is_err());
}

#[test]
fn address_lists_before_credentials_need_credentials_and_exclude_satisfy_any() {
    use crate::table::{BasicAuth, SatisfyAny};
    let lists = || Some(Box::new(SatisfyAny { allow: vec!["10.0.0.0/8".into()], deny: vec![] }));
    let basic = || Some(Box::new(BasicAuth { realm: "r".into(), passwords: "u:{SHA}x".into(), digest: false }));
    let route = |forward: Forward| Route { action: RouteAction::Forward(forward), ..prefix("/", "") };
    assert_eq!(check_route(&route(Forward { lists_first: lists(), basic_auth: basic(), ..forward_fields("c") })), Ok(()));
    let refused = [
        ("without credentials", Forward { lists_first: lists(), ..forward_fields("c") }),
        ("beside satisfy_any", Forward { lists_first: lists(), satisfy_any: lists(), basic_auth: basic(), ..forward_fields("c") }),
        ("a range that does not parse", Forward { lists_first: Some(Box::new(SatisfyAny { allow: vec!["10.0.0.0/33".into()], deny: vec![] })), basic_auth: basic(), ..forward_fields("c") }),
    ];
    for (case, forward) in refused {
        assert!(check_route(&route(forward)).is_err_and(|e| e.starts_with("lists_first")), "{case}");
    }
}

#[test]
fn default_server_denied_must_be_addresses_or_blocks_within_the_bound() {
    use crate::address::MAX_RANGES;
    let table = |denied: Vec<String>| RouteTable { schema: SCHEMA_VERSION, default_server_denied: denied, ..RouteTable::default() };
    assert!(CompiledTable::check(&table(vec!["10.0.0.0/8".into(), "192.0.2.7".into(), "2001:db8::/32".into()])).is_ok());
    let many: Vec<String> = (0..=MAX_RANGES).map(|i| format!("10.0.{}.{}", i / 256, i % 256)).collect();
    let refused = [(vec!["10.0.0.0/33".to_string()], "\"10.0.0.0/33\" is not an address"), (vec!["example.com".into()], "not an address"), (many, "more than 1024")];
    for (denied, reason) in refused {
        let error = CompiledTable::check(&table(denied)).err().map(|e| (e.host, e.reason));
        assert!(error.as_ref().is_some_and(|(host, why)| host.is_none() && why.starts_with("default_server_denied: ") && why.contains(reason)), "{error:?}");
    }
}
