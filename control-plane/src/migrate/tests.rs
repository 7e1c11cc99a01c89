//! Table tests of the classification, and golden reports (text and JSON) of a small cluster of
//! realistic Ingresses (`testdata/`). `UPDATE_GOLDEN=1 cargo test -p wasm-ingress migrate` rewrites
//! the goldens; review the diff like code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::model::ObjectRef;
use crate::source::files::load_dir;
use crate::translate::ingress::{translate_with_notes, TranslateOptions};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/migrate/testdata")
}

fn said(severity: Severity, message: &str) -> Diagnostic {
    Diagnostic {
        object: ObjectRef { kind: "Ingress".into(), namespace: "default".into(), name: "x".into() },
        field: "metadata.annotations[nginx.ingress.kubernetes.io/x]".into(),
        message: message.into(),
        severity,
    }
}

#[test]
fn an_annotation_is_classified_by_the_registry_then_by_what_translation_said() {
    let warning = said(Severity::Warning, "a warning");
    let error = said(Severity::Error, "an error");
    let cases: &[(&str, &[&Diagnostic], Class, &str)] = &[
        ("rewrite-target", &[], Class::Same, "same"),
        ("app-root", &[&warning], Class::Differs, "same"),
        ("limit-rps", &[], Class::Differs, "differs"),
        ("proxy-buffering", &[&warning], Class::Differs, "no effect"),
        ("limit-rate", &[&warning], Class::NotSupported, "not yet"),
        ("server-snippet", &[&warning], Class::NotSupported, "never applied"),
        ("satisfy", &[], Class::Differs, "differs"),
        ("auth-tls-secret", &[&error], Class::Refused, "differs"),
        ("auth-url", &[&error], Class::Refused, "differs"),
        ("secure-backends", &[&warning], Class::Same, "unknown"),
    ];
    for (name, diagnostics, class, status) in cases {
        let report = classify(name, "v", diagnostics);
        assert_eq!((report.class, report.status), (*class, *status), "{name}");
        assert_eq!(report.detail.is_empty(), *class == Class::Same && *status != "unknown", "{name}: {}", report.detail);
    }
    // Values that behave as in ingress-nginx although the row differs: same, saying why, unless
    // translation warned about this value.
    let value_cases: &[(&str, &str, &[&Diagnostic], Class)] = &[
        ("proxy-send-timeout", "300", &[], Class::Same),
        ("proxy-send-timeout", "300", &[&warning], Class::Differs),
        ("backend-protocol", "HTTPS", &[], Class::Same),
        ("backend-protocol", "GRPC", &[], Class::Differs),
        ("proxy-buffering", "off", &[&warning], Class::Same),
        ("proxy-buffering", "on", &[&warning], Class::Differs),
        ("load-balance", "round_robin", &[&error], Class::Refused),
    ];
    for (name, value, diagnostics, class) in value_cases {
        let report = classify(name, value, diagnostics);
        assert_eq!(report.class, *class, "{name}: {value:?}");
        assert!(!report.detail.is_empty(), "{name}: {value:?}");
    }
    // The detail is what translation said, else the documented difference.
    assert_eq!(classify("auth-url", "v", &[&error]).detail, "an error");
    assert!(classify("limit-rps", "10", &[]).detail.starts_with("Differs: the bucket refills"));
}

fn migrate(configmap: Option<&str>) -> Report {
    let (state, problems) = load_dir(&testdata().join("cluster"));
    assert!(problems.is_empty(), "{problems:?}");
    let reading = configmap.map(|file| {
        let text = std::fs::read_to_string(testdata().join(file)).unwrap();
        let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let data: BTreeMap<String, String> = serde_yaml::from_value(value["data"].clone()).unwrap();
        configmap::read(&data)
    });
    let options = TranslateOptions {
        ingress_class: "nginx".into(),
        controller_name: "k8s.io/ingress-nginx".into(),
        defaults: reading.as_ref().map(|r| r.defaults.clone()).unwrap_or_default(),
        ..TranslateOptions::default()
    };
    let (translation, notes) = translate_with_notes(&state, &options);
    let scope = Scope { ingress_class: "nginx".into(), controller: "k8s.io/ingress-nginx".into() };
    report(&state, &translation, &notes, &scope, reading.map(|r| r.settings))
}

fn golden(name: &str, actual: &str) {
    let path = testdata().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(expected == actual, "{name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it):\n{actual}");
}

#[test]
fn the_report_on_a_small_cluster_matches_its_golden_text_and_json() {
    let report = migrate(Some("configmap.yaml"));
    golden("report.txt", &render::text(&report, false));
    golden("report.json", &(serde_json::to_string_pretty(&report).unwrap() + "\n"));
}

#[test]
fn verdicts_what_is_lost_and_the_exit_status_are_what_a_user_would_conclude() {
    let report = migrate(None);
    let verdict = |name: &str| report.ingresses.iter().find(|i| i.ingress == name).map(|i| i.verdict);
    // Another controller's Ingress is not reported.
    assert_eq!(verdict("admin/legacy"), None);
    assert_eq!(report.summary.ingresses, 7);
    assert_eq!(verdict("shop/web"), Some(Verdict::Identical));
    assert_eq!(verdict("shop/web-canary"), Some(Verdict::Identical));
    // limit-rps differs in how the bucket refills; the mirror gets the request's path as sent upstream.
    assert_eq!(verdict("shop/api"), Some(Verdict::Differs));
    // Custom error pages are not applied: what the blog loses.
    assert_eq!(verdict("blog/site"), Some(Verdict::Differs));
    // Client certificates fail closed; a missing htpasswd Secret too; a path already served is refused.
    assert_eq!(verdict("admin/dashboard"), Some(Verdict::Refused));
    assert_eq!(verdict("admin/metrics"), Some(Verdict::Refused));
    assert_eq!(verdict("shop/api-copy"), Some(Verdict::Refused));
    // Worst first.
    assert_eq!(report.ingresses[0].verdict, Verdict::Refused);
    assert_eq!(report.ingresses.last().map(|i| i.verdict), Some(Verdict::Identical));
    assert_eq!(report.exit_code(), 2);
    // The blog is in regex mode because of the shop's Ingress on the same host, and shares it.
    let blog = report.ingresses.iter().find(|i| i.ingress == "blog/site").unwrap();
    assert!(blog.findings.iter().any(|f| f.message.contains("regex mode because Ingress shop/web")), "{:?}", blog.findings);
    assert!(blog.findings.iter().any(|f| f.message.contains("also has rules in namespace(s) shop")), "{:?}", blog.findings);
    let lost: Vec<(&str, Class)> = report.summary.losses.iter().map(|l| (l.annotation.as_str(), l.class)).collect();
    assert!(lost.contains(&("auth-tls-secret", Class::Refused)), "{lost:?}");
    assert!(lost.contains(&("custom-http-errors", Class::Differs)), "{lost:?}");
    assert!(!lost.iter().any(|(name, _)| *name == "rewrite-target"), "{lost:?}");
}

#[test]
fn a_configmap_whose_global_restriction_serve_refuses_is_refused_and_its_defaults_apply() {
    let report = migrate(Some("configmap.yaml"));
    let settings = report.configmap.as_ref().unwrap();
    let class = |key: &str| settings.iter().find(|s| s.key == key).map(|s| s.class);
    assert_eq!(class("proxy-body-size"), Some(Class::Same));
    assert_eq!(class("use-forwarded-headers"), Some(Class::Differs));
    assert_eq!(class("block-cidrs"), Some(Class::Same));
    let mut data = BTreeMap::new();
    data.insert("whitelist-source-range".to_string(), "10.0.0.0/8, office".to_string());
    let reading = configmap::read(&data);
    assert_eq!(reading.settings[0].class, Class::Refused);
    let only_identical = Report { configmap: Some(reading.settings), ingresses: Vec::new(), ..report };
    assert_eq!(only_identical.exit_code(), 2);
}
