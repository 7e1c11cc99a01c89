//! The corpus in `tests/malformed/`: each broken manifest gets its precise diagnostic (its
//! `# expect:` lines), and a healthy Ingress in the same folder keeps being served — one bad object
//! never takes the others down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use wasm_ingress::source::files::load_dir;
use wasm_ingress::translate::ingress::{translate, TranslateOptions};
use wasm_ingress_filter::table::RouteAction;

const GOOD: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: good, namespace: default}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: good-1, namespace: default, labels: {kubernetes.io/service-name: good}}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: [10.0.0.9]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: good, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  ingressClassName: wasm
  rules:
  - host: good.example.com
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: good, port: {number: 80}}}}]
"#;

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/malformed");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn each_malformed_manifest_gets_its_diagnostic_and_the_rest_keeps_serving() {
    let files = corpus();
    assert!(files.len() >= 10, "the corpus is there: {files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expected: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# expect: ")).collect();
        assert!(!expected.is_empty(), "{}: no `# expect:` line", file.display());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
        std::fs::copy(file, dir.path().join(file.file_name().unwrap())).unwrap();

        let (state, mut diagnostics) = load_dir(dir.path());
        let translation = translate(&state, &TranslateOptions::default());
        diagnostics.extend(translation.diagnostics.iter().cloned());
        let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        for want in &expected {
            if !lines.iter().any(|l| l.contains(want)) {
                failures.push(format!("{}: no diagnostic contains {want:?}; got {lines:#?}", file.display()));
            }
        }
        let good = translation.model.route_table.hosts.iter().find(|h| h.host == "good.example.com");
        let served = good.and_then(|h| h.routes.first()).map(|r| r.action.clone());
        if served != Some(RouteAction::forward_to("default/good/80")) {
            failures.push(format!("{}: the healthy Ingress is no longer served as before: {served:?}", file.display()));
        }
        if translation.model.clusters.get("default/good/80").is_none_or(|c| c.endpoints.is_empty()) {
            failures.push(format!("{}: the healthy Ingress lost its endpoints", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
