//! Incremental translation against the full one: table-driven changes (which are spliced, which
//! are translated in full and why) and seeded random change sequences over Ingresses with the
//! per-host features (regex mode, rewrites, conflicts, fallbacks, app-root, policies, denials),
//! each spliced result compared with a full translation of the same state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;
use crate::source::files::ManifestSet;

const BASE: &str = r#"
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: wasm}
spec: {controller: wasm-ingress.dev/controller}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: web}
spec: {ports: [{name: http, port: 80}, {name: admin, port: 81}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, namespace: web, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: admin, port: 8081}]
endpoints: [{addresses: [10.0.0.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: web}
spec: {ports: [{port: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: b-1, namespace: web, labels: {kubernetes.io/service-name: b}}
addressType: IPv4
ports: [{port: 9000}]
endpoints: [{addresses: [10.0.1.1, "not-an-address"]}]
---
apiVersion: v1
kind: Service
metadata: {name: idle, namespace: web}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: errors, namespace: web}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: errors-1, namespace: web, labels: {kubernetes.io/service-name: errors}}
addressType: IPv4
ports: [{port: 8000}]
endpoints: [{addresses: [10.0.2.1]}]
"#;

fn state(yaml: &str) -> ClusterState {
    let mut set = ManifestSet::default();
    set.apply_scan(BTreeMap::from([(PathBuf::from("test.yaml"), Ok(yaml.to_string()))]), Vec::new());
    set.snapshot().state
}

/// `state` with the Ingress `yaml` added or replaced (every other object stays the same one).
fn put(state: &ClusterState, yaml: &str) -> ClusterState {
    let ingress: Ingress = serde_yaml::from_str(yaml).unwrap();
    let key = ObjectKey::new(ingress.metadata.namespace.clone().unwrap(), ingress.metadata.name.clone().unwrap());
    let mut next = state.clone();
    Arc::make_mut(&mut next.ingresses).insert(key, Arc::new(ingress));
    next
}

fn remove(state: &ClusterState, namespace: &str, name: &str) -> ClusterState {
    let mut next = state.clone();
    Arc::make_mut(&mut next.ingresses).remove(&ObjectKey::new(namespace, name));
    next
}

/// An Ingress of `web` in class `class`, created at second `age`, with `rules` (YAML flow
/// sequence items) and extra `spec` entries.
fn ingress(name: &str, class: &str, age: u32, annotations: &[(&str, &str)], rules: &[String], spec: &str) -> String {
    ingress_in("web", name, class, age, annotations, rules, spec)
}

fn ingress_in(namespace: &str, name: &str, class: &str, age: u32, annotations: &[(&str, &str)], rules: &[String], spec: &str) -> String {
    let annotations: Vec<String> = annotations.iter().map(|(k, v)| format!("{NGINX_PREFIX}{k}: {v:?}")).collect();
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: {namespace}, creationTimestamp: \"2024-01-01T00:{:02}:{:02}Z\", annotations: {{{}}}}}\nspec: {{ingressClassName: {class}, rules: [{}]{spec}}}\n",
        age / 60,
        age % 60,
        annotations.join(", "),
        rules.join(", ")
    )
}

fn rule(host: &str, paths: &[(&str, &str, &str, u16)]) -> String {
    let paths: Vec<String> = paths
        .iter()
        .map(|(path, kind, service, port)| format!("{{path: {path:?}, pathType: {kind}, backend: {{service: {{name: {service}, port: {{number: {port}}}}}}}}}"))
        .collect();
    let host = if host.is_empty() { String::new() } else { format!("host: {host:?}, ") };
    format!("{{{host}http: {{paths: [{}]}}}}", paths.join(", "))
}

/// The incremental result is the full translation (endpoint reads may be a superset).
fn assert_same(incremental: &Translation, full: &Translation, context: &str) {
    assert_eq!(incremental.model.route_table, full.model.route_table, "{context}: route table");
    assert_eq!(incremental.model, full.model, "{context}: model");
    assert_eq!(incremental.diagnostics, full.diagnostics, "{context}: diagnostics");
    assert_eq!(incremental.served_ingresses, full.served_ingresses, "{context}: served");
    assert_eq!(incremental.denied_ingresses, full.denied_ingresses, "{context}: denied");
    assert_eq!(incremental.loaded_ingresses, full.loaded_ingresses, "{context}: loaded");
    for (query, ready) in &full.endpoint_reads.queries {
        assert_eq!(incremental.endpoint_reads.queries.get(query), Some(ready), "{context}: endpoint read {query:?}");
    }
    for (cluster, query) in &full.endpoint_reads.clusters {
        assert_eq!(incremental.endpoint_reads.clusters.get(cluster), Some(query), "{context}: endpoint read of {cluster}");
    }
}

fn base() -> ClusterState {
    let shop = ingress("shop", "wasm", 1, &[], &[rule("shop.example", &[("/", "Prefix", "a", 80), ("/api", "Prefix", "b", 8080)])], "");
    let blog = ingress("blog", "wasm", 2, &[("use-regex", "true")], &[rule("blog.example", &[("/p/[0-9]+", "ImplementationSpecific", "a", 80)])], "");
    let both = ingress("both", "wasm", 3, &[], &[rule("blog.example", &[("/about", "Exact", "b", 8080)]), rule("docs.example", &[("/", "Prefix", "a", 80)])], "");
    state(&format!("{BASE}---\n{shop}---\n{blog}---\n{both}"))
}

#[test]
fn ingress_changes_within_hosts_are_spliced_and_equal_a_full_translation() {
    let other_host = ingress("new", "wasm", 9, &[], &[rule("new.example", &[("/", "Prefix", "a", 80)])], "");
    let same_host = ingress("new", "wasm", 0, &[("rewrite-target", "/$1")], &[rule("shop.example", &[("/v1/(.*)", "Prefix", "b", 8080), ("/api", "Prefix", "a", 80)])], "");
    let moved = ingress("both", "wasm", 3, &[], &[rule("docs.example", &[("/", "Prefix", "b", 8080)])], "");
    let other_class = ingress("shop", "other", 1, &[], &[rule("shop.example", &[("/", "Prefix", "a", 80)])], "");
    let fallback = ingress("new", "wasm", 9, &[("whitelist-source-range", "nonsense")], &[rule("", &[("/x", "Exact", "idle", 80)])], ", defaultBackend: {service: {name: b, port: {number: 8080}}}");
    let before = base();
    let cases = [
        ("a new Ingress on its own host", put(&before, &other_host)),
        ("an older Ingress takes a path and turns the host to regex mode", put(&before, &same_host)),
        ("an Ingress leaves one of its two hosts", put(&before, &moved)),
        ("an Ingress leaves our class", put(&before, &other_class)),
        ("an Ingress goes", remove(&before, "web", "blog")),
        ("a denied host-less Ingress with a fallback", put(&before, &fallback)),
    ];
    let options = TranslateOptions::default();
    let last = translate(&before, &options);
    for (name, after) in cases {
        let incremental = retranslate(&last, &before, &after, &options).unwrap_or_else(|why| panic!("{name}: translated in full: {why}"));
        assert_same(&incremental, &translate(&after, &options), name);
    }
}

#[test]
fn a_tls_ingress_changing_only_its_paths_is_spliced_with_its_claims_and_their_diagnostics() {
    // The tenant's certificate also names b.example, which web's Secret (naming e.example too) serves: the guard
    // refuses it — a decision about hosts the change does not touch, kept from the last
    // translation with the Ingress's other `spec.tls` diagnostics.
    let tls = ", tls: [{hosts: [e.example], secretName: evil}]";
    let web = ingress("be", "wasm", 1, &[], &[rule("b.example", &[("/", "Prefix", "a", 80)])], ", tls: [{hosts: [b.example], secretName: cert-be}]");
    let tenant = |path: &str| ingress_in("tenant", "t", "wasm", 2, &[], &[rule("e.example", &[(path, "Prefix", "b", 8080)])], tls);
    let before = state(&format!("{BASE}{}---\n{web}---\n{}", tls_secrets(), tenant("/")));
    let options = TranslateOptions::default();
    let last = translate(&before, &options);
    assert!(last.diagnostics.iter().any(|d| d.object.name == "t" && d.message.contains("it is not offered")), "{:#?}", last.diagnostics);
    let after = put(&before, &tenant("/shop"));
    let incremental = retranslate(&last, &before, &after, &options).unwrap_or_else(|why| panic!("translated in full: {why}"));
    assert_same(&incremental, &translate(&after, &options), "paths changed, TLS kept");
    let moved = ingress_in("tenant", "t", "wasm", 3, &[], &[rule("e.example", &[("/", "Prefix", "b", 8080)])], tls);
    assert_eq!(retranslate(&last, &before, &put(&before, &moved), &options).err(), Some("an Ingress's TLS entries changed"), "a new age changes who wins a name");
}

#[test]
fn changes_that_cross_hosts_or_reach_beyond_routes_are_translated_in_full() {
    let tls = ingress("new", "wasm", 9, &[], &[rule("shop.example", &[("/t", "Prefix", "a", 80)])], ", tls: [{hosts: [shop.example], secretName: s}]");
    let canary = ingress("new", "wasm", 9, &[("canary", "true"), ("canary-weight", "10")], &[rule("docs.example", &[("/", "Prefix", "b", 8080)])], "");
    let auth = ingress("new", "wasm", 9, &[("auth-url", "http://auth.example/check")], &[rule("else.example", &[("/", "Prefix", "a", 80)])], "");
    let catch_all = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: new, namespace: web}\nspec: {ingressClassName: wasm, defaultBackend: {service: {name: a, port: {number: 80}}}}\n";
    let plain = ingress("new", "wasm", 9, &[], &[rule("new.example", &[("/", "Prefix", "a", 80)])], "");
    let wildcard = ingress("wild", "wasm", 8, &[], &[rule("*.example", &[("/", "Prefix", "b", 8080)])], ", tls: [{hosts: [\"*.example\"], secretName: s}]");
    let service = "apiVersion: v1\nkind: Service\nmetadata: {name: c, namespace: web}\nspec: {ports: [{port: 80}]}\n";
    struct Case {
        name: &'static str,
        before: ClusterState,
        after: ClusterState,
        options: TranslateOptions,
        because: &'static str,
    }
    let options = TranslateOptions::default();
    let with_service = state(&format!("{BASE}---\n{service}"));
    let start = base();
    let base = || start.clone();
    let wild = put(&base(), &wildcard);
    let with_canary = put(&base(), &canary);
    let cases = [
        Case { name: "a Service changes too", before: base(), after: { let mut s = put(&base(), &plain); s.services = with_service.services.clone(); s }, options: options.clone(), because: "other than Ingresses" },
        Case { name: "TLS entries", before: base(), after: put(&base(), &tls), options: options.clone(), because: "TLS" },
        Case { name: "a canary anywhere", before: base(), after: put(&base(), &canary), options: options.clone(), because: "canary" },
        Case { name: "a canary goes", before: with_canary.clone(), after: remove(&with_canary, "web", "new"), options: options.clone(), because: "canary" },
        Case { name: "external auth", before: base(), after: put(&base(), &auth), options: options.clone(), because: "auth" },
        Case { name: "the catch-all", before: base(), after: put(&base(), catch_all), options: options.clone(), because: "catch-all" },
        Case { name: "a wildcard TLS name covers the host", before: wild.clone(), after: put(&wild, &plain), options: options.clone(), because: "wildcard" },
        Case {
            name: "hosts owned by namespaces",
            before: base(),
            after: put(&base(), &plain),
            options: TranslateOptions { host_ownership: HostOwnership::Namespace, ..options.clone() },
            because: "host-ownership",
        },
    ];
    for case in cases {
        let last = translate(&case.before, &case.options);
        match retranslate(&last, &case.before, &case.after, &case.options) {
            Ok(_) => panic!("{}: spliced", case.name),
            Err(why) => assert!(why.contains(case.because), "{}: {why}", case.name),
        }
    }
}

/// xorshift64*: a seeded sequence, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const HOSTS: [&str; 6] = ["a.example", "b.example", "c.example", "d.example", "e.example", ""];
const PATHS: [&str; 7] = ["/", "/api", "/api/", "/v1/(.*)", "/static", "/x", "/p/[0-9]+"];
const BACKENDS: [(&str, u16); 5] = [("a", 80), ("b", 8080), ("idle", 80), ("missing", 80), ("a", 81)];
/// Per-host annotations (the incremental path's whole domain).
const ANNOTATIONS: [(&str, &str); 14] = [
    ("use-regex", "true"),
    ("rewrite-target", "/$1"),
    ("app-root", "/app"),
    ("permanent-redirect", "https://moved.example/"),
    ("limit-rps", "5"),
    ("enable-cors", "true"),
    ("proxy-body-size", "8m"),
    ("whitelist-source-range", "10.0.0.0/8"),
    ("whitelist-source-range", "not-a-range"),
    ("custom-http-errors", "404,503"),
    ("default-backend", "errors"),
    ("backend-protocol", "GRPC"),
    ("load-balance", "ewma"),
    ("upstream-hash-by", "$request_uri"),
];

/// The TLS Secrets of the random states: `web/cert-a` (a.example), `web/cert-ab` (a.example and
/// b.example), `web/cert-c` (c.example), `web/cert-be` and `tenant/evil` (both b.example and
/// e.example: when each serves one of them, no order offers each its own, so the guard refuses the
/// tenant's).
fn tls_secrets() -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let secret = |namespace: &str, name: &str, names: &[&str]| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap().self_signed(&key).unwrap();
        format!(
            "---\napiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata: {{name: {name}, namespace: {namespace}}}\ndata: {{tls.crt: {}, tls.key: {}}}\n",
            b64(&cert.pem()),
            b64(&key.serialize_pem())
        )
    };
    [secret("web", "cert-a", &["a.example"]), secret("web", "cert-ab", &["a.example", "b.example"]), secret("web", "cert-c", &["c.example"]), secret("web", "cert-be", &["b.example", "e.example"]), secret("tenant", "evil", &["b.example", "e.example"])].concat()
}

/// A random Ingress; `kept`: the TLS entries and age to keep (a change of rules only).
fn random_ingress(rng: &mut Rng, namespace: &str, name: &str, kept: Option<(String, u32)>) -> (String, (String, u32)) {
    let mut rules = Vec::new();
    for _ in 0..1 + rng.below(2) {
        let host = *rng.pick(&HOSTS);
        let paths: Vec<(&str, &str, &str, u16)> = (0..1 + rng.below(2))
            .map(|_| {
                let (service, port) = *rng.pick(&BACKENDS);
                (*rng.pick(&PATHS), *rng.pick(&["Prefix", "Exact", "ImplementationSpecific"]), service, port)
            })
            .collect();
        rules.push(rule(host, &paths));
    }
    let annotations: Vec<(&str, &str)> = (0..rng.below(3)).map(|_| *rng.pick(&ANNOTATIONS)).collect::<BTreeMap<_, _>>().into_iter().collect();
    let (tls, age) = kept.unwrap_or_else(|| {
        let tls = match rng.below(6) {
            // The tenant's certificate names a name of web's: the guard refuses it (see `sni`).
            _ if namespace == "tenant" => format!(", tls: [{{hosts: [{}], secretName: evil}}]", rng.pick(&["e.example", "b.example"])),
            0 | 1 => format!(", tls: [{{hosts: [{:?}], secretName: {}}}]", rng.pick(&HOSTS[..5]), rng.pick(&["cert-a", "cert-ab", "cert-c", "cert-be", "evil", "missing"])),
            2 => format!(", tls: [{{secretName: {}}}]", rng.pick(&["cert-a", "cert-ab", "evil"])),
            _ => String::new(),
        };
        (tls, u32::try_from(rng.below(40)).unwrap())
    });
    let fallback = if rng.below(5) == 0 { ", defaultBackend: {service: {name: b, port: {number: 8080}}}" } else { "" };
    let class = if rng.below(10) == 0 { "other" } else { "wasm" };
    (ingress_in(namespace, name, class, age, &annotations, &rules, &format!("{fallback}{tls}")), (tls, age))
}

#[test]
fn random_change_sequences_spliced_equal_full_translations() {
    let options = TranslateOptions::default();
    let secrets = tls_secrets();
    let (mut spliced, mut full_for_tls) = (0, 0);
    for seed in [1u64, 7, 42, 2026] {
        let mut rng = Rng(seed);
        let mut current = state(&format!("{BASE}{secrets}"));
        let mut kept: BTreeMap<String, (String, u32)> = BTreeMap::new();
        let namespace = |name: &str| if name.starts_with('t') { "tenant" } else { "web" };
        for n in 0..24 {
            let name = if n % 6 == 5 { format!("t{n}") } else { format!("i{n}") };
            let (yaml, tls) = random_ingress(&mut rng, namespace(&name), &name, None);
            kept.insert(name, tls);
            current = put(&current, &yaml);
        }
        let names: Vec<String> = kept.keys().cloned().collect();
        let mut last = translate(&current, &options);
        for step in 0..60 {
            let name = rng.pick(&names).clone();
            let next = match rng.below(5) {
                0 => remove(&current, namespace(&name), &name),
                1 => {
                    let (yaml, tls) = random_ingress(&mut rng, namespace(&name), &name, None);
                    kept.insert(name.clone(), tls);
                    put(&current, &yaml)
                }
                _ => put(&current, &random_ingress(&mut rng, namespace(&name), &name, kept.get(&name).cloned()).0),
            };
            let full = translate(&next, &options);
            let context = format!("seed {seed} step {step} ({name})");
            last = match retranslate(&last, &current, &next, &options) {
                Ok(incremental) => {
                    assert_same(&incremental, &full, &context);
                    spliced += 1;
                    incremental
                }
                Err(why) if why.contains("TLS") => {
                    full_for_tls += 1;
                    full
                }
                Err(why) => panic!("{context}: translated in full: {why}"),
            };
            current = next;
        }
    }
    assert!(spliced >= 120, "{spliced} of 240 changes spliced ({full_for_tls} translated in full for TLS)");
}
