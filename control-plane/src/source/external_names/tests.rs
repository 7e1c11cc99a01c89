//! The ExternalName stage's pure core: what a name asks for, and what translation makes of the
//! merged addresses (clusters, ports, diagnostics), replayed from ingress-nginx's
//! `servicebackend/service_externalname.go` cases.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::{merge, names, target, Lookup, Merged, Settings, Target};
use crate::model::Severity;
use crate::source::files::{ManifestSet, SourceSnapshot};
use crate::translate::ingress::{translate, TranslateOptions};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn external_names_are_checked_as_ingress_nginx_checks_them() {
    let cases: [(&str, Result<Target, ()>); 11] = [
        ("httpbun.example.com", Ok(Target::Name("httpbun.example.com".into()))),
        ("httpbun.example.com.", Ok(Target::Name("httpbun.example.com".into()))),
        ("echo", Ok(Target::Name("echo".into()))),
        ("10.1.2.3", Ok(Target::Address(ip("10.1.2.3")))),
        ("2001:db8::1", Ok(Target::Address(ip("2001:db8::1")))),
        ("127.0.0.1", Err(())),
        ("::1", Err(())),
        ("localhost", Err(())),
        ("localhost.", Err(())),
        ("Invalid_Name.example", Err(())),
        ("", Err(())),
    ];
    for (name, expected) in cases {
        assert_eq!(target(name).map_err(|_| ()), expected, "{name:?}");
    }
}

const INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: echo, namespace: web}
spec:
  ingressClassName: wasm-ingress
  rules:
  - host: echo
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: ext, port: PORT}}}
"#;

fn service(external_name: &str, ports: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata: {{name: ext, namespace: web}}\nspec: {{type: ExternalName, externalName: {external_name:?}, ports: {ports}}}\n")
}

fn source(service: &str, port: &str) -> Arc<SourceSnapshot> {
    let mut set = ManifestSet::default();
    let files = BTreeMap::from([("ingress.yaml".into(), Ok(INGRESS.replace("PORT", port))), ("service.yaml".into(), Ok(service.to_string()))]);
    set.apply_scan(files, Vec::new());
    Arc::new(set.snapshot())
}

/// The endpoints of the only cluster translation makes, and the diagnostics about the Service.
fn served(snapshot: &SourceSnapshot) -> (Vec<String>, Vec<(Severity, String)>) {
    let options = TranslateOptions { ingress_class: "wasm-ingress".into(), ..TranslateOptions::default() };
    let translation = translate(&snapshot.state, &options);
    let endpoints = translation.model.clusters.values().flat_map(|c| c.endpoints.iter().map(|e| format!("{}:{}", e.address, e.port))).collect();
    let about_service = snapshot.diagnostics.iter().chain(&translation.diagnostics).filter(|d| d.object.kind == "Service" || d.message.contains("Service web/ext"));
    (endpoints, about_service.map(|d| (d.severity, d.message.clone())).collect())
}

#[test]
fn the_addresses_a_name_resolves_to_fill_the_backend_on_the_port_ingress_nginx_picks() {
    struct Case {
        name: &'static str,
        service: String,
        /// The Ingress backend's `port`.
        port: &'static str,
        lookup: Option<Lookup>,
        settings: Settings,
        endpoints: &'static [&'static str],
        /// Diagnostics about the Service (severity, a piece of the message).
        diagnostics: &'static [(Severity, &'static str)],
    }
    let found = |addresses: &[&str]| Some(Lookup::Addresses(addresses.iter().map(|a| ip(a)).collect()));
    let no_ports = || service("httpbun.example.com", "[]");
    let named = || service("httpbun.example.com", "[{name: echo, port: 80, targetPort: 8080}]");
    let cases = [
        Case {
            name: "no port defined: the Ingress's port number",
            service: no_ports(),
            port: "{number: 80}",
            lookup: found(&["10.0.0.9"]),
            settings: Settings::default(),
            endpoints: &["10.0.0.9:80"],
            diagnostics: &[],
        },
        Case {
            name: "a port defined: its targetPort",
            service: named(),
            port: "{number: 80}",
            lookup: found(&["10.0.0.9", "2001:db8::9"]),
            settings: Settings::default(),
            endpoints: &["10.0.0.9:8080", "2001:db8::9:8080"],
            diagnostics: &[],
        },
        Case {
            name: "a port name",
            service: named(),
            port: "{name: echo}",
            lookup: found(&["10.0.0.9"]),
            settings: Settings::default(),
            endpoints: &["10.0.0.9:8080"],
            diagnostics: &[],
        },
        Case {
            name: "a port name the Service does not have",
            service: named(),
            port: "{name: other}",
            lookup: found(&["10.0.0.9"]),
            settings: Settings::default(),
            endpoints: &[],
            diagnostics: &[(Severity::Warning, "has no port named \"other\"")],
        },
        Case {
            name: "an IP address as the name",
            service: service("10.0.0.7", "[]"),
            port: "{number: 8081}",
            lookup: None,
            settings: Settings::default(),
            endpoints: &["10.0.0.7:8081"],
            diagnostics: &[],
        },
        Case {
            name: "an invalid host does not resolve",
            service: service("invalid.hostname", "[]"),
            port: "{number: 80}",
            lookup: Some(Lookup::Failed("Name or service not known".into())),
            settings: Settings::default(),
            endpoints: &[],
            diagnostics: &[(Severity::Warning, "\"invalid.hostname\" does not resolve: Name or service not known; its paths answer 503"), (Severity::Warning, "no usable address of")],
        },
        Case {
            name: "not looked up yet",
            service: no_ports(),
            port: "{number: 80}",
            lookup: None,
            settings: Settings::default(),
            endpoints: &[],
            diagnostics: &[(Severity::Warning, "no usable address of")],
        },
        Case {
            name: "localhost is refused",
            service: service("localhost", "[]"),
            port: "{number: 80}",
            lookup: None,
            settings: Settings::default(),
            endpoints: &[],
            diagnostics: &[(Severity::Error, "is localhost: refused"), (Severity::Warning, "its name \"localhost\" is refused")],
        },
        Case {
            name: "--refuse-local-endpoints: a name that resolves to loopback and metadata addresses",
            service: no_ports(),
            port: "{number: 80}",
            lookup: found(&["127.0.0.1", "169.254.169.254", "10.0.0.9"]),
            settings: Settings { refuse_local: true, disabled: false },
            endpoints: &["10.0.0.9:80"],
            diagnostics: &[(Severity::Warning, "resolves to local addresses too (127.0.0.1, 169.254.169.254): skipped")],
        },
        Case {
            name: "--refuse-local-endpoints: a name that resolves to loopback only",
            service: no_ports(),
            port: "{number: 80}",
            lookup: found(&["127.0.0.1"]),
            settings: Settings { refuse_local: true, disabled: false },
            endpoints: &[],
            diagnostics: &[(Severity::Error, "resolves only to local addresses (127.0.0.1)"), (Severity::Warning, "no usable address of")],
        },
        Case {
            name: "--disable-svc-external-name: nothing is looked up, every ExternalName Service is refused",
            service: no_ports(),
            port: "{number: 80}",
            lookup: found(&["10.0.0.9"]),
            settings: Settings { refuse_local: false, disabled: true },
            endpoints: &[],
            diagnostics: &[(Severity::Error, "disabled (--disable-svc-external-name); its paths answer 503"), (Severity::Warning, "no usable address of")],
        },
    ];
    for case in cases {
        let source = source(&case.service, case.port);
        if case.settings.disabled {
            assert!(names(&source.state, case.settings).is_empty(), "{}: nothing to look up", case.name);
        }
        let lookups: BTreeMap<String, Lookup> = names(&source.state, Settings::default()).into_iter().filter_map(|name| Some((name, case.lookup.clone()?))).collect();
        let merged = merge(&source, &lookups, case.settings, &mut Merged::default());
        let (endpoints, diagnostics) = served(&merged);
        assert_eq!(endpoints, case.endpoints, "{}: endpoints", case.name);
        assert_eq!(diagnostics.len(), case.diagnostics.len(), "{}: {diagnostics:?}", case.name);
        for ((severity, message), (want_severity, want)) in diagnostics.iter().zip(case.diagnostics) {
            assert!(severity == want_severity && message.contains(want), "{}: {message:?} ({severity:?}) should contain {want:?}", case.name);
        }
    }
}

#[test]
fn an_unchanged_answer_keeps_the_very_same_endpoint_slices_and_a_changed_one_only_replaces_them() {
    let source = source(&service("httpbun.example.com", "[]"), "{number: 80}");
    let lookups = |address: &str| BTreeMap::from([("httpbun.example.com".to_string(), Lookup::Addresses(vec![ip(address)]))]);
    let mut merged = Merged::default();
    let first = merge(&source, &lookups("10.0.0.1"), Settings::default(), &mut merged);
    let again = merge(&source, &lookups("10.0.0.1"), Settings::default(), &mut merged);
    assert!(Arc::ptr_eq(&first.state.endpoint_slices, &again.state.endpoint_slices), "same answer, same map");
    let moved = merge(&source, &lookups("10.0.0.2"), Settings::default(), &mut merged);
    assert_eq!(first.state.changed_kinds(&moved.state), [crate::state::ObjectKind::EndpointSlice].into(), "only EndpointSlices changed");
    assert_eq!(served(&moved).0, ["10.0.0.2:80"]);
}

#[tokio::test]
async fn the_stage_passes_a_state_without_external_names_through_and_merges_one_with() {
    let (sender, receiver) = tokio::sync::watch::channel(None);
    let (mut out, task) = super::spawn(receiver, Settings::default());
    let plain = source(&service("x", "[]").replace("type: ExternalName, ", ""), "{number: 80}");
    let next = |out: &mut tokio::sync::watch::Receiver<Option<Arc<SourceSnapshot>>>| {
        let mut out = out.clone();
        async move {
            tokio::time::timeout(std::time::Duration::from_secs(5), out.changed()).await.expect("published within 5 s").unwrap();
            out.borrow_and_update().clone().unwrap()
        }
    };
    sender.send(Some(Arc::clone(&plain))).unwrap();
    let published = next(&mut out).await;
    assert!(Arc::ptr_eq(&published, &plain), "no ExternalName Service: the very same snapshot");
    out.borrow_and_update();

    let external = source(&service("10.0.0.7", "[]"), "{number: 8081}");
    sender.send(Some(external)).unwrap();
    let published = next(&mut out).await;
    assert_eq!(served(&published).0, ["10.0.0.7:8081"], "an address as the name needs no lookup");
    task.abort();
}
