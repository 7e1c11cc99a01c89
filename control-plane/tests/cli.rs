//! `wasm-ingress validate` and `wasm-ingress explain`, run as the built binary on manifest folders
//! written to a temporary directory (and on the repository's `examples/`). They assert what a user
//! sees: the lines printed and the exit status.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-ingress");

const BACKENDS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- {addresses: [10.0.0.1]}
- {addresses: [10.0.0.2], conditions: {ready: false}}
"#;

const SHOP: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: wasm
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
      - {path: /gone, pathType: Prefix, backend: {service: {name: missing, port: {number: 80}}}}
"#;

const REWRITE: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: legacy
  annotations: {nginx.ingress.kubernetes.io/rewrite-target: /$2}
spec:
  ingressClassName: wasm
  rules:
  - host: legacy.example.com
    http:
      paths:
      - {path: "/old(/|$)(.*)", pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 80}}}}
"#;

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn wasm_ingress(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run wasm-ingress")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn path_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

#[test]
fn validate_accepts_the_examples_folder() {
    let output = wasm_ingress(&["validate", examples_dir().to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(!text.contains("error:"), "{text}");
    assert!(!text.contains("warning:"), "{text}");
    let summary = text.lines().last().unwrap();
    assert!(summary.contains("0 errors, 0 warnings; 7 Ingresses of 7 served"), "{summary}");
    assert!(summary.contains("1 TLS server"), "{summary}");
}

#[test]
fn validate_reports_every_problem_with_object_and_field_and_exits_1() {
    let bad_host = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bad-host, namespace: team}
spec:
  ingressClassName: wasm
  rules:
  - host: "shop.example.com:8080"
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
"#;
    let dir = folder(&[
        ("backends.yaml", BACKENDS),
        ("apps/shop.yaml", SHOP),
        ("apps/bad-host.yml", bad_host),
        ("broken.yaml", "apiVersion: v1\nkind: [oops\n"),
    ]);
    let output = wasm_ingress(&["validate", path_arg(dir.path())]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let broken = dir.path().join("broken.yaml");
    let expected_lines = [
        "error: Ingress team/bad-host: spec.rules[0].host: host \"shop.example.com:8080\" must be a DNS name without port or path; rule skipped".to_owned(),
        "warning: Ingress default/shop: spec.rules[0].http.paths[1].backend.service.name: Service default/missing not found; requests answer 503".to_owned(),
        format!("error: File {}: document[0]: invalid YAML", broken.display()),
    ];
    for expected in &expected_lines {
        assert!(text.lines().any(|line| line.starts_with(expected.as_str())), "missing {expected:?} in:\n{text}");
    }
    let summary = text.lines().last().unwrap();
    assert!(summary.contains("2 errors, 1 warning; 1 Ingress of 2 served"), "{summary}");
}

#[test]
fn validate_with_only_warnings_exits_0_but_prints_them() {
    let dir = folder(&[("backends.yaml", BACKENDS), ("shop.yaml", SHOP)]);
    let output = wasm_ingress(&["validate", path_arg(dir.path())]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("warning: Ingress default/shop: spec.rules[0].http.paths[1].backend.service.name: Service default/missing not found"), "{text}");
}

#[test]
fn validate_honours_the_ingress_class_flag() {
    let dir = folder(&[("backends.yaml", BACKENDS), ("shop.yaml", SHOP)]);
    let output = wasm_ingress(&["validate", path_arg(dir.path()), "--ingress-class", "other"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("0 Ingresses of 1 served"), "{text}");
    assert!(text.contains("1 Ingress of another class ignored (class \"wasm\": --ingress-class wasm serves them)"), "{text}");

    // ingress-nginx's Ingresses under the default flags: the summary and explain name the flags.
    let nginx_class = "{apiVersion: networking.k8s.io/v1, kind: IngressClass, metadata: {name: nginx}, spec: {controller: k8s.io/ingress-nginx}}";
    let dir = folder(&[("backends.yaml", BACKENDS), ("class.yaml", nginx_class), ("main.yaml", &nginx_ingress("main", "{}"))]);
    let hint = "class \"nginx\" of controller k8s.io/ingress-nginx: --ingress-class nginx --controller-name k8s.io/ingress-nginx serves them";
    let text = stdout(&wasm_ingress(&["validate", path_arg(dir.path())]));
    assert!(text.contains(&format!("1 Ingress of another class ignored ({hint})")), "{text}");
    let text = stdout(&wasm_ingress(&["explain", path_arg(dir.path()), "--url", "http://main.example.com/"]));
    assert!(text.contains(&format!("note:      no Ingress of this folder is served with these flags; {hint}")), "{text}");
    let text = stdout(&wasm_ingress(&["validate", path_arg(dir.path()), "--ingress-class", "nginx", "--controller-name", "k8s.io/ingress-nginx"]));
    assert!(text.contains("1 Ingress of 1 served") && !text.contains("another class"), "{text}");
}

#[test]
fn validate_of_a_missing_folder_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let output = wasm_ingress(&["validate", path_arg(&missing)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a folder"));
}

#[test]
fn explain_names_ingress_rule_backend_endpoints_and_rewritten_upstream_path() {
    let dir = folder(&[("backends.yaml", BACKENDS), ("legacy.yaml", REWRITE)]);
    let output =
        wasm_ingress(&["explain", path_arg(dir.path()), "--url", "http://Legacy.Example.com:8080/OLD/items?id=7"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    for expected in [
        "host:      \"legacy.example.com\" matches the host \"legacy.example.com\"",
        "mode:      ingress-nginx regex mode (Ingress default/legacy sets nginx.ingress.kubernetes.io/rewrite-target)",
        "route:     regex \"(?i)/old(/|$)(.*)\" from Ingress default/legacy: spec.rules[0].http.paths[0]",
        "backend:   cluster default/web/80: endpoints 10.0.0.1:8080",
        "upstream:  GET /items?id=7 (rewritten by rewrite-target \"/$2\")",
        "result:    proxied to default/web/80",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

const GUARDED: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: guarded
  annotations:
    nginx.ingress.kubernetes.io/backend-protocol: GRPC
    nginx.ingress.kubernetes.io/proxy-connect-timeout: "30"
    nginx.ingress.kubernetes.io/whitelist-source-range: 10.0.0.0/8
    nginx.ingress.kubernetes.io/denylist-source-range: 10.6.6.6
    nginx.ingress.kubernetes.io/configuration-snippet: |
      more_set_headers "X-Frame-Options: DENY";
spec:
  ingressClassName: wasm
  rules:
  - host: grpc.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#;

#[test]
fn explain_shows_how_the_backend_is_spoken_to_and_who_may_reach_it() {
    let dir = folder(&[("backends.yaml", BACKENDS), ("guarded.yaml", GUARDED)]);
    let output = wasm_ingress(&["explain", path_arg(dir.path()), "--url", "http://grpc.example.com/svc.Api/Call"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    for expected in [
        "endpoints 10.0.0.1:8080 over HTTP/2, connect timeout 30s",
        "bodies of any size",
        "clients allowed: 10.0.0.0/8 (others 403); clients refused (403): 10.6.6.6/32",
        "response header x-frame-options: DENY (replaced)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn explain_says_why_a_request_is_a_404() {
    let dir = folder(&[("backends.yaml", BACKENDS), ("shop.yaml", SHOP)]);
    let output = wasm_ingress(&["explain", path_arg(dir.path()), "--url", "http://shop.example.com/other"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("route:     none: no path of host \"shop.example.com\" matches \"/other\""), "{text}");
    assert!(text.contains("Prefix \"/api\""), "the host's paths are listed: {text}");
    assert!(text.contains("result:    404 answered by the filter"), "{text}");

    let output = wasm_ingress(&["explain", path_arg(dir.path()), "--url", "http://nobody.example.com/"]);
    let text = stdout(&output);
    assert!(text.contains("host:      \"nobody.example.com\" matches no Ingress host"), "{text}");
    assert!(text.contains("result:    404"), "{text}");
    assert!(!text.contains("access:"), "{text}");

    // With --block-cidrs, the default server refuses those clients; a named host's 404 does not.
    let blocked = |url: &str| stdout(&wasm_ingress(&["explain", path_arg(dir.path()), "--block-cidrs", "203.0.113.0/24,10.0.0.1", "--url", url]));
    let text = blocked("http://nobody.example.com/");
    assert!(text.contains("access:    clients in --block-cidrs (10.0.0.1/32, 203.0.113.0/24) get 403 instead"), "{text}");
    assert!(!blocked("http://shop.example.com/other").contains("access:"));
}

#[test]
fn explain_shows_the_checks_of_a_hosts_implicit_root() {
    let admin = GUARDED.replace("name: guarded", "name: admin").replace("path: /,", "path: /admin,");
    let dir = folder(&[("backends.yaml", BACKENDS), ("admin.yaml", &admin)]);
    let text = stdout(&wasm_ingress(&["explain", path_arg(dir.path()), "--url", "http://grpc.example.com/other"]));
    for expected in [
        "ingress-nginx's implicit \"/\" location of the host answers, with the checks of the oldest Ingress naming it (default/admin), then ingress-nginx's own default backend",
        "backend:   none: once the checks below pass, Envoy answers 404 itself",
        "a cluster Envoy does not have is answered 404; clients allowed: 10.0.0.0/8 (others 403); clients refused (403): 10.6.6.6/32",
        "result:    404 from Envoy, once the checks above let the request in",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("upstream:"), "nothing goes upstream: {text}");
}

#[test]
fn explain_says_why_a_request_is_a_503() {
    let dir = folder(&[("backends.yaml", BACKENDS), ("shop.yaml", SHOP)]);
    let output = wasm_ingress(&["explain", path_arg(dir.path()), "--url", "http://shop.example.com/gone/x"]);
    let text = stdout(&output);
    assert!(text.contains("result:    503 answered by the filter"), "{text}");
    assert!(
        text.contains("  warning: Ingress default/shop: spec.rules[0].http.paths[1].backend.service.name: Service default/missing not found"),
        "the reason is shown: {text}"
    );
}

#[test]
fn explain_names_the_certificate_for_https() {
    let url = "https://secure.localhost/";
    let output = wasm_ingress(&["explain", examples_dir().to_str().unwrap(), "--url", url]);
    let text = stdout(&output);
    assert!(text.contains("tls:       SNI \"secure.localhost\" is served with certificate default/demo-tls"), "{text}");
    let output = wasm_ingress(&["explain", examples_dir().to_str().unwrap(), "--url", "https://demo.localhost/a"]);
    let text = stdout(&output);
    assert!(text.contains("tls:       no certificate for SNI \"demo.localhost\""), "{text}");
}

#[test]
fn explain_names_an_ingress_s_own_cipher_suites() {
    let strict = nginx_ingress("strict", r#"{nginx.ingress.kubernetes.io/ssl-ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384:HIGH"}"#);
    let dir = folder(&[("backends.yaml", BACKENDS), ("strict.yaml", &strict)]);
    let output = wasm_ingress(&["explain", path_arg(dir.path()), "--ingress-class", "nginx", "--url", "https://strict.example.com/"]);
    let text = stdout(&output);
    assert!(text.contains("tls:       TLS 1.2 clients must use one of ECDHE-ECDSA-AES256-GCM-SHA384 (ssl-ciphers)"), "{text}");
    let output = wasm_ingress(&["validate", "--ingress-class", "nginx", path_arg(dir.path())]);
    assert!(stdout(&output).contains("HIGH left out"), "{}", stdout(&output));
}

#[test]
fn more_block_cidrs_than_the_filter_takes_stop_the_command() {
    let many = (0..=1024).map(|i| format!("10.{}.{}.1", i / 256, i % 256)).collect::<Vec<_>>().join(",");
    let output = wasm_ingress(&["validate", examples_dir().to_str().unwrap(), "--block-cidrs", &many]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--block-cidrs: 1025 block-cidrs entries, more than the 1024"), "{}", String::from_utf8_lossy(&output.stderr));
    let fits = (0..1024).map(|i| format!("10.{}.{}.1", i / 256, i % 256)).collect::<Vec<_>>().join(",");
    assert_eq!(wasm_ingress(&["validate", examples_dir().to_str().unwrap(), "--block-cidrs", &fits]).status.code(), Some(0));
}

#[test]
fn a_log_format_variable_envoy_cannot_log_stops_serve_with_its_name() {
    let dir = folder(&[]);
    let output = wasm_ingress(&["serve", "--manifests", path_arg(dir.path()), "--log-format-upstream", "$remote_addr $cookie_session"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--log-format-upstream") && stderr.contains("nginx variable $cookie_session is not supported in the access log"), "{stderr}");
}

/// `--header`: what a canary's header and cookie rules decide for the request (ingress-nginx's
/// canary e2e "should route requests to the correct upstream if mainline ingress is created
/// before the canary ingress": the header `always` / `never`, else the weight).
#[test]
fn explain_decides_a_canary_by_the_request_s_headers() {
    let main = nginx_ingress("main", "{}");
    let annotations = r#"{nginx.ingress.kubernetes.io/canary: "true", nginx.ingress.kubernetes.io/canary-by-header: CanaryByHeader, nginx.ingress.kubernetes.io/canary-by-cookie: CanaryByCookie, nginx.ingress.kubernetes.io/canary-weight: "30"}"#;
    // The same host and path as `main`, another name and Service.
    let canary = nginx_ingress("main", annotations).replace("name: main,", "name: main-canary,").replace("name: web,", "name: web-canary,");
    let canary_backend = BACKENDS.replace("name: web}", "name: web-canary}").replace("web-1", "web-canary-1").replace("service-name: web}", "service-name: web-canary}");
    let dir = folder(&[("backends.yaml", BACKENDS), ("canary-backends.yaml", &canary_backend), ("main.yaml", &main), ("canary.yaml", &canary)]);
    let explain_canary = |headers: &[&str]| {
        let mut args = vec!["explain", path_arg(dir.path()), "--ingress-class", "nginx", "--url", "http://main.example.com/"];
        for header in headers {
            args.extend(["--header", header]);
        }
        let text = stdout(&wasm_ingress(&args));
        assert!(text.contains("canary:    cluster default/web-canary/80"), "{text}");
        let verdict = text.lines().find_map(|l| l.trim().strip_prefix("this request ")).unwrap_or_else(|| panic!("{text}"));
        let result = text.lines().find_map(|l| l.strip_prefix("result:    ")).unwrap_or_else(|| panic!("{text}"));
        (verdict.split(" (").next().unwrap_or_default().to_string(), result.to_string())
    };
    let verdict = |headers: &[&str]| explain_canary(headers).0;
    // The result line names where the verdict sends the request.
    assert_eq!(explain_canary(&["CanaryByHeader: always"]).1, "proxied to default/web-canary/80 (the canary)");
    assert_eq!(explain_canary(&["CanaryByHeader: never"]).1, "proxied to default/web/80");
    assert_eq!(explain_canary(&[]).1, "proxied to default/web/80, or to the canary default/web-canary/80 by weight");
    assert_eq!(verdict(&[]), "is sent by weight");
    assert_eq!(verdict(&["CanaryByHeader: always"]), "goes to the canary");
    assert_eq!(verdict(&["canarybyheader: never", "Cookie: CanaryByCookie=always"]), "goes to the backend", "the header decides first");
    assert_eq!(verdict(&["CanaryByHeader: other", "Cookie: a=1; CanaryByCookie=always"]), "goes to the canary", "then the cookie");
    let output = wasm_ingress(&["explain", path_arg(dir.path()), "--url", "http://main.example.com/", "--header", "no colon"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn explain_refuses_a_non_http_url() {
    let output = wasm_ingress(&["explain", examples_dir().to_str().unwrap(), "--url", "ftp://demo.localhost/"]);
    assert_eq!(output.status.code(), Some(2));
}

/// An Ingress of class `nginx` with the given annotations (YAML flow map), on `BACKENDS`' Service.
fn nginx_ingress(name: &str, annotations: &str) -> String {
    format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: {name}, annotations: {annotations}}}
spec:
  ingressClassName: nginx
  rules:
  - host: {name}.example.com
    http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{name: http}}}}}}}}]}}
"#
    )
}

#[test]
fn migrate_exits_0_when_every_ingress_behaves_identically() {
    let same = nginx_ingress("same", r#"{nginx.ingress.kubernetes.io/ssl-redirect: "false", nginx.ingress.kubernetes.io/proxy-body-size: 8m}"#);
    let wasm_class = SHOP; // class `wasm`: not migrated, not reported
    let dir = folder(&[("backends.yaml", BACKENDS), ("same.yaml", &same), ("shop.yaml", wasm_class)]);
    let output = wasm_ingress(&["migrate", path_arg(dir.path())]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("IDENTICAL default/same"), "{text}");
    assert!(!text.contains("default/shop"), "{text}");
    assert!(text.contains("Summary: 1 of 1 Ingress will behave identically"), "{text}");
    assert!(!text.contains('\x1b'), "colour when stdout is not a terminal:\n{text}");
}

#[test]
fn migrate_exits_1_when_something_differs_and_2_when_something_is_refused() {
    let differs = nginx_ingress("differs", r#"{nginx.ingress.kubernetes.io/limit-rate: "100"}"#);
    let dir = folder(&[("backends.yaml", BACKENDS), ("differs.yaml", &differs)]);
    let output = wasm_ingress(&["migrate", path_arg(dir.path())]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("DIFFERS default/differs"), "{text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with("not supported limit-rate: \"100\": not applied")), "{text}");

    let refused = nginx_ingress("refused", r#"{nginx.ingress.kubernetes.io/auth-tls-secret: default/ca}"#);
    let dir = folder(&[("backends.yaml", BACKENDS), ("differs.yaml", &differs), ("refused.yaml", &refused)]);
    let output = wasm_ingress(&["migrate", path_arg(dir.path()), "--output", "json"]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["schema"], "wasm-ingress.dev/migrate/v1");
    assert_eq!(report["ingresses"][0]["ingress"], "default/refused");
    assert_eq!(report["ingresses"][0]["verdict"], "refused");
    assert_eq!(report["ingresses"][0]["annotations"][0]["class"], "refused");
    assert_eq!(report["summary"]["differs"], 1);
    assert_eq!(report["configmap"], serde_json::Value::Null);
}

#[test]
fn migrate_reads_the_ingress_nginx_configmap() {
    let configmap = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: ingress-nginx-controller, namespace: ingress-nginx}
data:
  whitelist-source-range: 10.0.0.0/8
"#;
    let same = nginx_ingress("same", "{}");
    let dir = folder(&[("backends.yaml", BACKENDS), ("same.yaml", &same)]);
    let cm = tempfile::tempdir().unwrap();
    std::fs::write(cm.path().join("cm.yaml"), configmap).unwrap();
    let cm_path = cm.path().join("cm.yaml");
    let output = wasm_ingress(&["migrate", path_arg(dir.path()), "--configmap", cm_path.to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("serve these settings with: wasm-ingress serve --whitelist-source-range=10.0.0.0/8"), "{text}");
    // A value `serve` refuses would leave the restriction off: refused.
    std::fs::write(&cm_path, configmap.replace("10.0.0.0/8", "10.0.0.0/8, ~*bot\n  block-user-agents: \"~(?<=x)\"")).unwrap();
    let output = wasm_ingress(&["migrate", path_arg(dir.path()), "--configmap", cm_path.to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.contains("refused       whitelist-source-range: \"10.0.0.0/8, ~*bot\": \"~*bot\" is not an IP address"), "{text}");
    assert!(text.contains("refused       block-user-agents: \"~(?<=x)\": \"(?<=x)\" is not a regular expression Envoy's RE2 takes (look-around"), "{text}");
}
