//! External auth annotations -> the route's auth rule and the auth service's cluster.

use crate::model::{AuthService, AuthTarget, ValuePart};

use super::*;

#[test]
fn auth_url_gives_every_path_an_auth_rule_and_the_model_its_service() {
    let oauth = nginx(&[
        ("auth-url", "http://oauth2-proxy.auth.svc.cluster.local:4180/oauth2/auth"),
        ("auth-signin", "https://$host/oauth2/start?rd=$escaped_request_uri"),
        ("auth-response-headers", "X-Auth-Request-User"),
        ("proxy-read-timeout", "5"),
    ]);
    let translation = run(&[
        ingress("app", &oauth, &[rule("app.example.com", &[path("/", "Prefix", "a", 80), path("/api", "Prefix", "a", 80)])]),
        ingress("self", &nginx(&[("auth-url", "https://$host/oauth2/auth")]), &[rule("self.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("broken", &nginx(&[("auth-url", "oauth2/auth")]), &[rule("broken.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("open", "", &[rule("open.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat());
    let auth_at = |host: &str, p: &str| match &route_at(&translation, host, p).action {
        RouteAction::Forward(forward) => forward.auth.clone(),
        other => panic!("{host}{p}: {other:?}"),
    };
    let app = auth_at("app.example.com", "/").expect("an auth rule");
    assert_eq!(app.cluster, "wasm-ingress:auth:http://oauth2-proxy.auth.svc.cluster.local:4180");
    assert_eq!((app.authority.as_deref(), app.path.as_str()), (Some("oauth2-proxy.auth.svc.cluster.local"), "/oauth2/auth"));
    assert_eq!(app.signin.as_deref(), Some("https://$host/oauth2/start?rd=$escaped_request_uri"), "a URL that has the parameter is kept");
    assert_eq!((app.response_headers.clone(), app.timeout_ms), (vec!["x-auth-request-user".to_string()], 5000));
    assert_eq!(auth_at("app.example.com", "/api"), Some(app.clone()));
    let own = auth_at("self.example.com", "/").expect("an auth rule");
    assert_eq!((own.cluster.as_str(), own.authority.as_deref()), ("wasm-ingress:auth:https://self", None));
    assert_eq!(auth_at("open.example.com", "/"), None);
    assert_eq!(route_at(&translation, "broken.example.com", "/").action, RouteAction::respond(503, denied_body(503)));

    let services: Vec<&AuthService> = translation.model.auth_services.values().collect();
    assert_eq!(
        services,
        [
            &AuthService { tls: false, target: AuthTarget::Dns { host: "oauth2-proxy.auth.svc.cluster.local".into(), port: 4180 } },
            &AuthService { tls: true, target: AuthTarget::OwnListener },
        ]
    );
    let lines = diagnostic_lines(&translation);
    assert!(
        lines.iter().any(|l| l.starts_with("error: Ingress default/broken: metadata.annotations[nginx.ingress.kubernetes.io/auth-url]: could not parse auth-url")),
        "{lines:#?}"
    );
}

#[test]
fn basic_auth_gives_paths_a_rule_and_the_table_the_secrets_users() {
    let secret = r#"
---
apiVersion: v1
kind: Secret
metadata: {name: htpasswd}
data: {auth: YWxpY2U6e1BMQUlOfXB3CmJvYjokMnkkMTUkN0J5aE5HRXV0bFd6SDh3TlcvYjFSdS9FdjVtNGxNWk1uSDRlWHpzZFZpMUxOS0VtSlJsYm0K}
"#;
    let basic = |secret: &str| nginx(&[("auth-type", "basic"), ("auth-secret", secret), ("auth-realm", "Staff only")]);
    let translation = run(&[
        secret.to_string(),
        ingress("staff", &basic("htpasswd"), &[rule("staff.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("missing", &basic("nope"), &[rule("missing.example.com", &[path("/", "Prefix", "a", 80)])]),
        // The same Secret read as htdigest lines: another list of the table.
        ingress("digest", &nginx(&[("auth-type", "digest"), ("auth-secret", "htpasswd"), ("auth-realm", "Staff only")]), &[rule("digest.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat());
    let RouteAction::Forward(digest) = &route_at(&translation, "digest.example.com", "/").action else { panic!("not forwarded") };
    let digest = digest.basic_auth.as_deref().expect("a digest rule");
    assert_eq!((digest.digest, digest.passwords.as_str()), (true, "default/htpasswd:auth-file:digest"));
    assert!(translation.model.route_table.passwords.contains_key(&digest.passwords));
    let RouteAction::Forward(forward) = &route_at(&translation, "staff.example.com", "/").action else { panic!("not forwarded") };
    let rule = forward.basic_auth.as_deref().expect("a basic-auth rule");
    assert_eq!((rule.realm.as_str(), rule.passwords.as_str()), ("Staff only", "default/htpasswd:auth-file"));
    let users = &translation.model.route_table.passwords[&rule.passwords];
    assert_eq!(users.keys().collect::<Vec<_>>(), ["alice", "bob"]);
    assert_eq!(route_at(&translation, "missing.example.com", "/").action, RouteAction::respond(503, denied_body(503)));
    let lines = diagnostic_lines(&translation);
    for expected in [
        "warning: Ingress default/staff: metadata.annotations[nginx.ingress.kubernetes.io/auth-secret]: Secret default/htpasswd: the passwords of bob use a format not checked here",
        "error: Ingress default/missing: metadata.annotations[nginx.ingress.kubernetes.io/auth-secret]: Secret default/nope not found; every path of this Ingress answers 503",
        "warning: Ingress default/digest: metadata.annotations[nginx.ingress.kubernetes.io/auth-secret]: Secret default/htpasswd: the entries of alice, bob are not htdigest lines of realm \"Staff only\"",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(expected)), "missing {expected:?} in {lines:#?}");
    }
}

#[test]
fn configmap_headers_reach_responses_and_auth_requests_or_deny_the_ingress() {
    let config_maps = r#"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: response-headers, namespace: default}
data: {X-Frame-Options: DENY, X-Literal: "$remote_addr"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: auth-headers, namespace: default}
data: {X-Tenant: acme, X-Client: "$remote_addr"}
"#;
    let with = |pairs: &[(&str, &str)]| nginx(pairs);
    let auth_url = ("auth-url", "http://auth.example/check");
    let yaml = [
        config_maps.to_string(),
        ingress("headers", &with(&[("custom-headers", "default/response-headers")]), &[rule("headers.example", &[path("/", "Prefix", "a", 80)])]),
        ingress("bare", &with(&[("custom-headers", "response-headers")]), &[rule("bare.example", &[path("/", "Prefix", "a", 80)])]),
        ingress("missing", &with(&[("custom-headers", "default/nope")]), &[rule("missing.example", &[path("/", "Prefix", "a", 80)])]),
        ingress("auth", &with(&[auth_url, ("auth-proxy-set-headers", "default/auth-headers")]), &[rule("auth.example", &[path("/", "Prefix", "a", 80)])]),
        ingress("foreign", &with(&[auth_url, ("auth-proxy-set-headers", "other/auth-headers")]), &[rule("foreign.example", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat();
    let state = state(&format!("{OUR_CLASS}{BACKENDS}{yaml}"));
    let allowing = |headers: &[&str]| TranslateOptions {
        defaults: NginxDefaults { global_allowed_response_headers: headers.iter().map(|h| h.to_string()).collect(), ..NginxDefaults::default() },
        ..TranslateOptions::default()
    };
    let translation = translate(&state, &allowing(&["X-Frame-Options", "X-Literal"]));
    let RouteAction::Forward(forward) = &route_at(&translation, "headers.example", "/").action else { panic!("headers.example is served") };
    let set = &translation.model.policies[&forward.policy].response_headers_set;
    let set: Vec<(String, String)> = set.iter().map(|(k, v)| (k.clone(), v.envoy_format())).collect();
    assert_eq!(set, [("x-frame-options".to_string(), "DENY".to_string()), ("x-literal".to_string(), "$remote_addr".to_string())]);
    // The same headers for the filter's own answers on those paths (its redirects, 401s, …).
    let answer: Vec<(&str, &str)> =
        route_at(&translation, "headers.example", "/").answer_headers.iter().map(|h| (h.name.as_str(), h.value.as_str())).collect();
    assert_eq!(answer, [("x-frame-options", "DENY"), ("x-literal", "$remote_addr")]);
    assert!(route_at(&translation, "auth.example", "/").answer_headers.is_empty(), "no custom-headers: none");
    let RouteAction::Forward(forward) = &route_at(&translation, "auth.example", "/").action else { panic!("auth.example is served") };
    let headers: Vec<(String, String)> = forward.auth.as_ref().expect("auth").set_headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect();
    assert_eq!(headers, [("x-client".to_string(), "$remote_addr".to_string()), ("x-tenant".to_string(), "acme".to_string())]);
    for host in ["bare.example", "missing.example", "foreign.example"] {
        assert_eq!(route_at(&translation, host, "/").action, RouteAction::respond(503, denied_body(503)), "{host}");
    }
    let lines = diagnostic_lines(&translation);
    for want in [
        "error: Ingress default/bare: metadata.annotations[nginx.ingress.kubernetes.io/custom-headers]: ConfigMap \"response-headers\" not found: ingress-nginx looks it up as namespace/name",
        "error: Ingress default/missing: metadata.annotations[nginx.ingress.kubernetes.io/custom-headers]: ConfigMap default/nope not found; every path",
        "error: Ingress default/foreign: metadata.annotations[nginx.ingress.kubernetes.io/auth-proxy-set-headers]: ConfigMap other/auth-headers is in another namespace",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(want)), "{want}\n{lines:#?}");
    }

    // ingress-nginx's default allow-list is empty: the Ingress is denied until the header is listed.
    let strict = translate(&state, &allowing(&["X-Frame-Options"]));
    assert_eq!(route_at(&strict, "headers.example", "/").action, RouteAction::respond(503, denied_body(503)));
    assert!(diagnostic_lines(&strict).iter().any(|l| l.contains("header X-Literal is not allowed: list it in --global-allowed-response-headers")));
}

/// `serve --add-headers` / `--proxy-set-headers` (ingress-nginx's ConfigMap `add-headers`,
/// `proxy-set-headers`): every Ingress's responses and upstream requests get the ConfigMap's
/// entries, below the headers an Ingress sets itself; entries nginx could not use are left out
/// with a warning on the ConfigMap, and a missing ConfigMap sets nothing (a warning).
#[test]
fn global_header_configmaps_reach_every_ingress_below_its_own_headers() {
    let config_maps = r#"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: add, namespace: ingress-nginx}
data: {X-Frame-Options: SAMEORIGIN, X-Served-To: "$remote_addr", X-Team: global, "bad name": x, X-Powered-By: ""}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: set, namespace: ingress-nginx}
data: {X-Upstream: "$namespace/$service_name", X-Team: global, Host: evil.example, X-Empty: ""}
"#;
    let yaml = [
        config_maps.to_string(),
        ingress("plain", "", &[rule("plain.example", &[path("/", "Prefix", "a", 80)])]),
        ingress("own", &nginx(&[("configuration-snippet", "more_set_headers X-Team:own;\nproxy_set_header X-Team own;")]), &[rule("own.example", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat();
    let state = state(&format!("{OUR_CLASS}{BACKENDS}{yaml}"));
    let key = |name: &str| Some(ObjectKey::new("ingress-nginx", name));
    let options = |add: &str, set: &str| TranslateOptions {
        defaults: NginxDefaults { add_headers: key(add), proxy_set_headers: key(set), ..NginxDefaults::default() },
        ..TranslateOptions::default()
    };
    let translation = translate(&state, &options("add", "set"));
    let policy = |host: &str| {
        let RouteAction::Forward(forward) = &route_at(&translation, host, "/").action else { panic!("{host} is served") };
        translation.model.policies[&forward.policy].clone()
    };
    let formatted = |headers: &BTreeMap<String, HeaderValue>| -> Vec<(String, String)> { headers.iter().map(|(k, v)| (k.clone(), v.envoy_format())).collect() };
    let plain = policy("plain.example");
    let served_to = HeaderValue(vec![ValuePart::ClientAddress]).envoy_format();
    let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> { items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
    assert_eq!(formatted(&plain.response_headers_set), pairs(&[("x-frame-options", "SAMEORIGIN"), ("x-served-to", &served_to), ("x-team", "global")]));
    assert_eq!(formatted(&plain.request_headers), pairs(&[("x-empty", ""), ("x-team", "global"), ("x-upstream", "default/a")]), "location variables filled in; no Host");
    // An empty value removes the header, as nginx: the client's copy never goes upstream (Envoy
    // removes every header the route sets before adding the non-empty ones), and the backend's
    // never reaches the client.
    assert_eq!(plain.response_headers_remove, ["x-powered-by"]);
    let route = crate::translate::routes::policy_route("p", &plain, (false, std::time::Duration::from_secs(60)));
    assert_eq!(route.request_headers_to_remove, ["x-empty", "x-team", "x-upstream"]);
    // The Ingress's own headers win; the filter's own answers get the literal ones only.
    let own = policy("own.example");
    assert_eq!(own.response_headers_set.get("x-team").map(HeaderValue::envoy_format).as_deref(), Some("own"));
    assert_eq!(own.request_headers.get("x-team").map(HeaderValue::envoy_format).as_deref(), Some("own"));
    let answer: Vec<(&str, &str)> = route_at(&translation, "plain.example", "/").answer_headers.iter().map(|h| (h.name.as_str(), h.value.as_str())).collect();
    assert_eq!(answer, [("x-frame-options", "SAMEORIGIN"), ("x-team", "global")], "a value that needs the request is left out of them");
    // The same on the filter's answers to requests no route takes (nginx's `http`-level headers).
    let unrouted: Vec<(&str, &str)> = translation.model.route_table.answer_headers.iter().map(|h| (h.name.as_str(), h.value.as_str())).collect();
    assert_eq!(unrouted, answer);
    let lines = diagnostic_lines(&translation);
    for want in [
        "warning: ConfigMap ingress-nginx/add: data[bad name]: --add-headers: not a header name",
        "warning: ConfigMap ingress-nginx/set: data[Host]: --proxy-set-headers: the Host sent upstream is the request's",
    ] {
        assert!(lines.iter().any(|l| l.starts_with(want)), "{want}\n{lines:#?}");
    }
    assert!(lines.iter().all(|l| !l.starts_with("error")), "{lines:#?}");

    // A ConfigMap that does not exist: nothing set, a warning (ingress-nginx only logs it).
    let missing = translate(&state, &options("nope", "set"));
    let RouteAction::Forward(forward) = &route_at(&missing, "plain.example", "/").action else { panic!("served") };
    assert!(missing.model.policies[&forward.policy].response_headers_set.is_empty());
    assert!(missing.model.route_table.answer_headers.is_empty());
    assert!(diagnostic_lines(&missing).iter().any(|l| l.starts_with("warning: ConfigMap ingress-nginx/nope: --add-headers: ConfigMap ingress-nginx/nope not found")));
}

#[test]
fn no_auth_locations_leave_the_credentials_out_and_give_the_lists_back_to_envoy() {
    let secret = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: htpasswd}\ndata: {auth: YWxpY2U6e1BMQUlOfXB3Cg==}\n";
    let protected = nginx(&[
        ("auth-type", "basic"),
        ("auth-secret", "htpasswd"),
        ("auth-url", "http://oauth2-proxy.auth.svc.cluster.local:4180/oauth2/auth"),
        ("whitelist-source-range", "10.0.0.0/8"),
        ("satisfy", "any"),
    ]);
    let paths = [path("/", "Prefix", "a", 80), path("/.well-known/acme-challenge/token", "Prefix", "a", 80), path("/.well-known/acme-challengeX", "Prefix", "a", 80)];
    let translation = run(&[secret.to_string(), ingress("app", &protected, &[rule("app.example.com", &paths)])].concat());
    let forward_at = |p: &str| match &route_at(&translation, "app.example.com", p).action {
        RouteAction::Forward(forward) => forward.clone(),
        other => panic!("{p}: {other:?}"),
    };
    let site = forward_at("/");
    assert!(site.auth.is_some() && site.basic_auth.is_some() && site.satisfy_any.is_some());
    assert!(translation.model.policies.get(&site.policy).is_none_or(|p| p.allow_sources.is_empty()), "satisfy any: the filter checks the lists");
    // ingress-nginx's default no-auth-locations is a prefix of the Ingress path.
    for acme in ["/.well-known/acme-challenge/token", "/.well-known/acme-challengeX"] {
        let challenge = forward_at(acme);
        assert_eq!((challenge.auth, challenge.basic_auth, challenge.satisfy_any, challenge.lists_first), (None, None, None, None), "{acme}");
        let lists = &translation.model.policies[&challenge.policy].allow_sources;
        assert_eq!(lists, &vec![crate::model::Cidr::parse("10.0.0.0/8").unwrap()], "{acme}: Envoy's RBAC keeps the allow-list");
    }

    // `--no-auth-locations` replaces the list; an empty entry exempts nothing.
    let defaults = NginxDefaults { no_auth_locations: vec!["/public".into(), " ".into()], ..NginxDefaults::default() };
    let options = TranslateOptions { defaults, ..TranslateOptions::default() };
    let paths = [path("/public/x", "Prefix", "a", 80), path("/.well-known/acme-challenge/", "Prefix", "a", 80)];
    let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{secret}{}", ingress("app", &protected, &[rule("app.example.com", &paths)]))), &options);
    let basic_at = |p: &str| match &route_at(&translation, "app.example.com", p).action {
        RouteAction::Forward(forward) => forward.basic_auth.is_some(),
        other => panic!("{p}: {other:?}"),
    };
    assert!(!basic_at("/public/x"));
    assert!(basic_at("/.well-known/acme-challenge/"));
}

#[test]
fn global_auth_guards_every_ingress_without_its_own_unless_it_opts_out() {
    let flags = GlobalAuthFlags {
        global_auth_url: Some("http://oauth2-proxy.auth.svc.cluster.local:4180/oauth2/auth".into()),
        global_auth_signin: Some("https://login.example.com/start".into()),
        global_auth_response_headers: Some("X-Auth-Request-User".into()),
        ..GlobalAuthFlags::default()
    };
    let options = TranslateOptions { defaults: NginxDefaults { global_auth: flags, ..NginxDefaults::default() }, ..TranslateOptions::default() };
    let own = nginx(&[("auth-url", "http://own.auth.svc.cluster.local/check")]);
    let manifests = [
        ingress("plain", "", &[rule("plain.example.com", &[path("/", "Prefix", "a", 80), path("/.well-known/acme-challenge/", "Prefix", "a", 80)])]),
        ingress("own", &own, &[rule("own.example.com", &[path("/", "Prefix", "a", 80)])]),
        ingress("public", &nginx(&[("enable-global-auth", "false")]), &[rule("public.example.com", &[path("/", "Prefix", "a", 80)])]),
    ]
    .concat();
    let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{manifests}")), &options);
    let auth_at = |host: &str, p: &str| match &route_at(&translation, host, p).action {
        RouteAction::Forward(forward) => forward.auth.clone(),
        other => panic!("{host}{p}: {other:?}"),
    };
    let global = auth_at("plain.example.com", "/").expect("the global auth");
    assert_eq!((global.path.as_str(), global.signin.as_deref()), ("/oauth2/auth", Some("https://login.example.com/start?rd=$pass_access_scheme://$http_host$escaped_request_uri")));
    assert_eq!(global.response_headers, ["x-auth-request-user"]);
    assert_eq!(auth_at("plain.example.com", "/.well-known/acme-challenge/"), None, "no-auth-locations");
    assert_eq!(auth_at("own.example.com", "/").map(|a| a.path), Some("/check".to_string()), "an Ingress's own auth-url wins");
    assert_eq!(auth_at("public.example.com", "/"), None, "enable-global-auth: \"false\"");
    assert!(translation.model.auth_services.values().any(|s| s.cluster_name() == global.cluster));

    // Flags the parser refuses deny, never open (the commands refuse them before translating).
    let bad = GlobalAuthFlags { global_auth_url: Some("oauth2/auth".into()), ..GlobalAuthFlags::default() };
    assert!(crate::translate::ingress::global_auth(&bad).unwrap_err().contains("--global-auth-url"));
    let signin_alone = GlobalAuthFlags { global_auth_signin: Some("https://login.example.com".into()), ..GlobalAuthFlags::default() };
    assert!(crate::translate::ingress::global_auth(&signin_alone).is_err(), "a companion without the URL does nothing: refused");
    let options = TranslateOptions { defaults: NginxDefaults { global_auth: bad, ..NginxDefaults::default() }, ..TranslateOptions::default() };
    let translation = translate(&state(&format!("{OUR_CLASS}{BACKENDS}{manifests}")), &options);
    assert_eq!(route_at(&translation, "plain.example.com", "/").action, RouteAction::respond(503, denied_body(503)));
}
