//! `endpoints::reread` against a full translation: for every EndpointSlice-only change it
//! accepts, the refreshed translation is exactly what translating again gives; the changes routing
//! depends on (a Service port gaining its first or losing its last ready endpoint) are refused.

use std::sync::Arc;

use super::*;
use crate::translate::ingress::endpoints::reread;

/// `/a` -> Service a (named port http), `/b` -> Service b, `/idle` -> Service idle (no endpoints),
/// with Service idle as the `default-backend`.
fn ingresses() -> String {
    let annotations = annotated(&[("nginx.ingress.kubernetes.io/default-backend", "idle")]);
    ingress(
        "shop",
        &annotations,
        &[rule("shop.example", &[named_port_path("/a", "a", "http"), path("/b", "Prefix", "b", 8080), path("/idle", "Prefix", "idle", 80)])],
    )
}

fn manifests(backends: &str) -> ClusterState {
    state(&format!("{OUR_CLASS}{backends}{}", ingresses()))
}

const IDLE_SLICE: &str = "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: idle-1, labels: {kubernetes.io/service-name: idle}}\naddressType: IPv4\nports: [{port: 80}]\nendpoints:\n- {addresses: [10.0.2.1]}\n";

#[test]
fn endpoint_only_changes_are_refreshed_exactly_or_refused() {
    struct Case {
        name: &'static str,
        backends: String,
        refuse_local: bool,
        /// `Some(changed clusters)`: refreshed; `None`: refused.
        refreshed: Option<Vec<ClusterName>>,
    }
    let a = cluster_name("default", "a", 80);
    let cases = [
        Case { name: "an address changes", backends: BACKENDS.replace("10.0.0.2]", "10.0.0.7]"), refuse_local: false, refreshed: Some(vec![a.clone()]) },
        Case {
            name: "one of several endpoints stops being ready",
            backends: BACKENDS.replace("[10.0.0.2], conditions: {ready: true}", "[10.0.0.2], conditions: {ready: false}"),
            refuse_local: false,
            refreshed: Some(vec![a.clone()]),
        },
        Case {
            name: "an address that is not IPv4 appears beside a good one (a diagnostic on the slice)",
            backends: BACKENDS.replace("[10.0.1.1]", "[10.0.1.1, \"fd00::9\"]"),
            refuse_local: false,
            refreshed: Some(vec![]),
        },
        Case {
            name: "a loopback address appears in Kubernetes mode (an error on the slice)",
            backends: BACKENDS.replace("[10.0.1.1]", "[10.0.1.1, 127.0.0.1]"),
            refuse_local: true,
            refreshed: Some(vec![]),
        },
        Case {
            name: "a slice no Ingress reads changes",
            backends: BACKENDS.replace("10.9.9.9", "10.9.9.8"),
            refuse_local: false,
            refreshed: Some(vec![]),
        },
        Case {
            name: "a Service loses its last ready endpoint (the default backend would answer)",
            backends: BACKENDS.replace("- {addresses: [10.0.1.1]}", "- {addresses: [10.0.1.1], conditions: {ready: false}}"),
            refuse_local: false,
            refreshed: None,
        },
        Case {
            name: "the default-backend Service gets its first endpoint",
            backends: format!("{BACKENDS}{IDLE_SLICE}"),
            refuse_local: false,
            refreshed: None,
        },
        Case {
            name: "every address of a Service refused as loopback",
            backends: BACKENDS.replace("[10.0.1.1]", "[127.0.0.1]"),
            refuse_local: true,
            refreshed: None,
        },
    ];
    for case in cases {
        let options = TranslateOptions { refuse_local_endpoints: case.refuse_local, ..TranslateOptions::default() };
        let before_state = manifests(BACKENDS);
        let before = translate(&before_state, &options);
        assert!(!before.endpoint_reads.queries.is_empty(), "{}: the translation records what it read", case.name);
        let after_state = manifests(&case.backends);
        assert_eq!(
            before_state.ingresses, after_state.ingresses,
            "{}: the fixture changes EndpointSlices only",
            case.name
        );
        let translated = translate(&after_state, &options);
        // As the sources hand them on: the slices that did not change are the same objects.
        let shared: BTreeMap<_, _> = after_state
            .endpoint_slices
            .iter()
            .map(|(key, slice)| match before_state.endpoint_slices.get(key) {
                Some(old) if old == slice => (key.clone(), Arc::clone(old)),
                _ => (key.clone(), Arc::clone(slice)),
            })
            .collect();
        let mut refreshed = before.clone();
        let changed = reread(&before.endpoint_reads, &before_state.endpoint_slices, &shared, case.refuse_local).map(|r| r.apply(&mut refreshed));
        // Every slice parsed again (not shared): every Service read again, the same result.
        let mut all_reread = before.clone();
        let all_changed = reread(&before.endpoint_reads, &before_state.endpoint_slices, &after_state.endpoint_slices, case.refuse_local)
            .map(|r| r.apply(&mut all_reread));
        assert_eq!(changed, all_changed, "{}", case.name);
        assert_eq!(refreshed, all_reread, "{}", case.name);
        match (changed, case.refreshed) {
            (Some(changed), Some(expected)) => {
                assert_eq!(refreshed, translated, "{}: refreshed = translated again", case.name);
                assert_eq!(changed.into_iter().collect::<Vec<_>>(), expected, "{}", case.name);
            }
            (None, None) => assert!(
                translated.model.route_table != before.model.route_table || translated.diagnostics != before.diagnostics,
                "{}: refused, and translating again does change more than endpoints",
                case.name
            ),
            (changed, expected) => panic!("{}: refreshed {changed:?}, expected {expected:?}", case.name),
        }
    }
}
