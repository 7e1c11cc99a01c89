//! Which certificate each TLS name gets, end to end through translation: ingress-nginx's claim of a
//! rule host by the certificate's names, key types in the SNI guard, and the hosts the controller's
//! own certificate shields.

use super::*;

fn servers(translation: &Translation) -> Vec<(&str, Vec<&str>)> {
    translation.model.tls_servers.iter().map(|s| (s.certificate.as_str(), s.server_names.iter().map(String::as_str).collect())).collect()
}

fn plain_ingress(name: &str, namespace: &str, hosts: &[&str]) -> String {
    let rules: Vec<String> = hosts.iter().map(|h| rule(h, &[path("/", "Prefix", "a", 80)])).collect();
    ingress_with_spec(name, &format!(", namespace: {namespace}"), &format!("{{ingressClassName: wasm, rules: [{}]}}", rules.join(", ")))
}

#[test]
fn a_rule_host_its_ingress_certificate_names_is_served_with_it_and_any_other_with_the_default_certificate() {
    let wildcard = self_signed(&["*.corp.example", "corp.example"]);
    let yaml = [
        namespaced_tls_secret("a", "wild", &wildcard),
        // Lists a.corp.example only; b.corp.example is named by the certificate, other.example not.
        ingress_with_spec(
            "site",
            ", namespace: a",
            &format!(
                "{{ingressClassName: wasm, tls: [{{hosts: [a.corp.example], secretName: wild}}], rules: [{}, {}, {}]}}",
                rule("a.corp.example", &[path("/", "Prefix", "a", 80)]),
                rule("b.corp.example", &[path("/", "Prefix", "a", 80)]),
                rule("other.example", &[path("/", "Prefix", "a", 80)])
            ),
        ),
    ]
    .concat();
    let translation = run(&yaml);
    assert_eq!(servers(&translation), [("a/wild", vec!["a.corp.example", "b.corp.example"])]);
    assert_eq!(route_at(&translation, "b.corp.example", "/").https_redirect, https(308, true), "redirected to HTTPS as a TLS host");
    // other.example: no certificate names it, so ingress-nginx gives it the default certificate,
    // and a host with a certificate is redirected to HTTPS.
    assert_eq!(route_at(&translation, "other.example", "/").https_redirect, https(308, true), "redirected with the default certificate");
    assert_eq!(
        diagnostic_lines(&translation).into_iter().filter(|line| line.contains("spec.tls")).collect::<Vec<_>>(),
        ["warning: Ingress a/site: spec.tls: host \"other.example\" is in no TLS entry of this Ingress and no certificate of them names it: it is served over HTTPS with the default certificate (--default-ssl-certificate, else the self-signed one), as ingress-nginx does, and still redirected to HTTPS (list it in spec.tls[].hosts, or set ssl-redirect: \"false\")"]
    );
    assert!(translation.model.shielded_names.is_empty(), "{:?}", translation.model.shielded_names);
    // An Ingress without TLS entries leaves its hosts plain.
    let plain = run(&plain_ingress("web", "a", &["plain.example"]));
    assert_eq!(route_at(&plain, "plain.example", "/").https_redirect, None);
}

#[test]
fn an_ecdsa_certificate_naming_an_rsa_claimants_host_is_not_offered() {
    // Envoy offers the ECDSA certificate carrying a name to every client that can do ECDSA,
    // wherever the RSA one is listed: ordering cannot protect the claimant.
    let intruder = self_signed(&["evil.example", "rsa.example.com"]);
    let yaml = [
        namespaced_tls_secret("victim", "rsa", &(RSA_CRT.to_string(), RSA_KEY.to_string())),
        namespaced_tls_secret("evil", "ec", &intruder),
        tls_ingress("site", &format!(", namespace: victim{}", created("2024-01-01T00:00:00Z")), "[{hosts: [rsa.example.com], secretName: rsa}]", &["rsa.example.com"]),
        tls_ingress("intruder", &format!(", namespace: evil{}", created("2024-02-01T00:00:00Z")), "[{hosts: [evil.example], secretName: ec}]", &["evil.example"]),
    ]
    .concat();
    let translation = run(&yaml);
    assert_eq!(servers(&translation), [("victim/rsa", vec!["rsa.example.com"])]);
    assert!(!translation.model.certificates.contains_key("evil/ec"));
    let lines = diagnostic_lines(&translation);
    let expected = "error: Ingress evil/intruder: spec.tls: Secret evil/ec: its certificate also names \"rsa.example.com\", which is served with Secret victim/rsa; it is not offered, so that it cannot capture that name's TLS connections (evil.example get the default certificate)";
    assert!(lines.iter().any(|l| l == expected), "{lines:#?}");
}

#[test]
fn plain_hosts_a_tenants_certificate_would_be_offered_for_are_named_by_the_controllers() {
    let wildcard = self_signed(&["*.corp.example"]);
    let yaml = [
        namespaced_tls_secret("a", "wild", &wildcard),
        tls_ingress("site", ", namespace: a", "[{hosts: [a.corp.example], secretName: wild}]", &["a.corp.example"]),
        // Another namespace's host under that wildcard, served over HTTP only: ingress-nginx
        // offers its default certificate there, never namespace a's.
        plain_ingress("other", "b", &["b.corp.example", "unrelated.example"]),
        // The same namespace's plain host too (the certificate belongs to another Ingress).
        plain_ingress("plain", "a", &["c.corp.example"]),
    ]
    .concat();
    let translation = run(&yaml);
    assert_eq!(servers(&translation), [("a/wild", vec!["a.corp.example"])]);
    assert_eq!(translation.model.shielded_names, ["b.corp.example", "c.corp.example"]);
    assert_eq!(route_at(&translation, "b.corp.example", "/").https_redirect, None, "still a plain host");
    // With the host claimed for TLS by its own Ingress, nothing to shield.
    let own = self_signed(&["b.corp.example"]);
    let yaml = [
        namespaced_tls_secret("a", "wild", &wildcard),
        namespaced_tls_secret("b", "own", &own),
        tls_ingress("site", ", namespace: a", "[{hosts: [a.corp.example], secretName: wild}]", &["a.corp.example"]),
        tls_ingress("other", ", namespace: b", "[{hosts: [b.corp.example], secretName: own}]", &["b.corp.example"]),
    ]
    .concat();
    assert!(run(&yaml).model.shielded_names.is_empty());
}

#[test]
fn a_server_alias_gets_its_hosts_certificate_when_that_certificate_names_it() {
    let wildcard = self_signed(&["*.corp.example"]);
    let aliases = nginx(&[("server-alias", "www.corp.example, other.example")]);
    let yaml = [
        namespaced_tls_secret("a", "wild", &wildcard),
        ingress_with_spec(
            "site",
            &format!(", namespace: a{aliases}"),
            &format!("{{ingressClassName: wasm, tls: [{{hosts: [site.corp.example], secretName: wild}}], rules: [{}]}}", rule("site.corp.example", &[path("/", "Prefix", "a", 80)])),
        ),
    ]
    .concat();
    let translation = run(&yaml);
    assert_eq!(servers(&translation), [("a/wild", vec!["site.corp.example", "www.corp.example"])]);
    assert!(translation.model.shielded_names.is_empty(), "{:?}", translation.model.shielded_names);
    assert_eq!(route_at(&translation, "other.example", "/").https_redirect, https(308, true), "an alias serves what its host serves");
    // A TLS entry listing the wildcard: the host is claimed by the certificate's name too (as
    // ingress-nginx's exact-then-certificate lookup), and so is the alias.
    let yaml = yaml.replace("hosts: [site.corp.example]", "hosts: [\"*.corp.example\"]");
    assert_eq!(servers(&run(&yaml)), [("a/wild", vec!["*.corp.example", "site.corp.example", "www.corp.example"])]);
}
