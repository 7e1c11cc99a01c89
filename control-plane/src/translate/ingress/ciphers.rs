//! `ssl-ciphers`: the TLS 1.2 cipher suites of an Ingress's hosts, nginx's `ssl_ciphers` at
//! server level. Pure: annotations in, the suites per host out; the HTTPS listener gives each such
//! host its own SNI filter chain with them (`translate::envoy`).
//!
//! The value is an OpenSSL cipher string. Envoy's BoringSSL takes only cipher names (a name it
//! does not know would make Envoy refuse the whole listener), so the names of
//! [`TLS12_CIPHERS`](crate::translate::edge::TLS12_CIPHERS) are
//! kept in the order written and everything else — OpenSSL keywords (`HIGH`, `!aNULL`,
//! `@STRENGTH`), names BoringSSL dropped (RC4, DHE, CAMELLIA, …) — is left out with a warning
//! (parts are separated by `:` or spaces, as OpenSSL reads them);
//! with no name left, the listener's suites (`serve --tls-ciphers`) apply. TLS 1.3 suites are
//! BoringSSL's own and not configurable, as in nginx's `ssl_ciphers`. As ingress-nginx, a value
//! with characters its validation refuses rejects the Ingress, and the oldest Ingress of a host
//! that sets one decides the host's suites (a server-level setting).
//!
//! `ssl-prefer-server-ciphers` (nginx's `ssl_prefer_server_ciphers`, server level too): Envoy
//! already picks the TLS 1.2 suite by its own order, as nginx with `on`; `"false"` gives the host
//! its own SNI filter chain whose TLS context takes the client's order (`prefer_client_ciphers`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use k8s_openapi::api::networking::v1::Ingress;
use wasm_ingress_filter::table::VirtualHost;

use crate::model::Severity;
use crate::state::ObjectKey;
use crate::translate::edge::TLS12_CIPHERS as SUPPORTED;

use super::annotations::AnnotationNote;
use super::NGINX_PREFIX;

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &["ssl-ciphers", "ssl-prefer-server-ciphers"];

/// What an `ssl-ciphers` value asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ciphers {
    /// Not set (or empty).
    Off,
    /// These suites (at least one), and the parts left out.
    Suites { suites: Vec<String>, left_out: Vec<String> },
    /// Nothing Envoy can use: the listener's suites apply.
    NoneUsable(Vec<String>),
    /// Characters ingress-nginx's validation refuses: the Ingress is rejected, as there.
    Refused(String),
}

/// ingress-nginx's `regexValidSSLCipher` (`annotations/sslcipher`), matched with the spaces taken
/// out, as its validator does.
static VALID: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^(?:(?:[A-Za-z0-9!:+\-_])*(?:@STRENGTH)*(?:@SECLEVEL=[0-5])*(?:@STRENGTH)*)*$").ok());

/// Read an `ssl-ciphers` value.
pub fn read(value: &str) -> Ciphers {
    let value = value.trim();
    if value.is_empty() {
        return Ciphers::Off;
    }
    let without_spaces: String = value.chars().filter(|c| *c != ' ').collect();
    if !VALID.as_ref().is_some_and(|valid| valid.is_match(&without_spaces)) {
        return Ciphers::Refused(format!(
            "{value:?} is not a cipher string ingress-nginx's validation accepts (letters, digits, !:+-_ and spaces, @STRENGTH, @SECLEVEL=0-5)"
        ));
    }
    let (mut suites, mut left_out) = (Vec::new(), Vec::new());
    // OpenSSL separates a cipher string's parts with `:` or spaces.
    for part in value.split([':', ' ']).filter(|p| !p.is_empty()) {
        match SUPPORTED.iter().find(|name| name.eq_ignore_ascii_case(part)) {
            Some(name) if !suites.iter().any(|s| s == name) => suites.push(name.to_string()),
            Some(_) => {}
            None => left_out.push(part.to_string()),
        }
    }
    if suites.is_empty() {
        Ciphers::NoneUsable(left_out)
    } else {
        Ciphers::Suites { suites, left_out }
    }
}

/// One Ingress's `ssl-ciphers`, read.
#[derive(Debug, Default)]
pub struct CipherAnnotation {
    /// The suites to use (none: the listener's).
    pub suites: Option<Vec<String>>,
    pub notes: Vec<AnnotationNote>,
    /// (annotation, reason) when ingress-nginx would reject the Ingress.
    pub refused: Option<(String, String)>,
    /// `ssl-prefer-server-ciphers`: `Some(false)`, the client's order of TLS 1.2 suites wins.
    pub server_preference: Option<bool>,
}

/// One Ingress's `ssl-ciphers` and `ssl-prefer-server-ciphers`: the suites, the order, the notes,
/// and why ingress-nginx would reject it.
pub fn parse(annotations: &BTreeMap<String, String>) -> CipherAnnotation {
    let mut parsed = parse_suites(annotations);
    let key = format!("{NGINX_PREFIX}ssl-prefer-server-ciphers");
    // Go's `strconv.ParseBool`, as ingress-nginx's `GetBoolAnnotation`.
    if let Some(value) = annotations.get(&key).map(|v| v.trim()) {
        match super::behaviour::go_bool(value) {
            Some(prefer) => parsed.server_preference = Some(prefer),
            None => {
                let note = format!("must be \"true\" or \"false\", not {value:?}; Envoy's order of suites applies (nginx's \"on\")");
                parsed.notes.push((key, Severity::Warning, note));
            }
        }
    }
    parsed
}

fn parse_suites(annotations: &BTreeMap<String, String>) -> CipherAnnotation {
    let key = format!("{NGINX_PREFIX}ssl-ciphers");
    match annotations.get(&key).map(|v| read(v)) {
        None | Some(Ciphers::Off) => CipherAnnotation::default(),
        Some(Ciphers::Suites { suites, left_out }) if left_out.is_empty() => CipherAnnotation { suites: Some(suites), ..Default::default() },
        Some(Ciphers::Suites { suites, left_out }) => {
            let note = format!("{} left out: Envoy takes only the TLS 1.2 cipher names BoringSSL knows", left_out.join(", "));
            CipherAnnotation { suites: Some(suites), notes: vec![(key, Severity::Warning, note)], ..Default::default() }
        }
        Some(Ciphers::NoneUsable(left_out)) => {
            let note = format!(
                "no cipher name Envoy knows ({} left out; names such as ECDHE-ECDSA-AES128-GCM-SHA256 only); the HTTPS listener's suites (serve --tls-ciphers) apply",
                left_out.join(", ")
            );
            CipherAnnotation { notes: vec![(key, Severity::Warning, note)], ..Default::default() }
        }
        Some(Ciphers::Refused(reason)) => CipherAnnotation { refused: Some((key, reason)), ..Default::default() },
    }
}

/// The suites of each host: from the oldest Ingress (of `ours`, oldest first) with rules for it
/// that sets `ssl-ciphers` (a canary's own is ignored, as its other server-level annotations).
pub fn host_suites(ours: &[(&ObjectKey, &Ingress)]) -> BTreeMap<String, Vec<String>> {
    super::server_settings(ours, |_, annotations| match parse(annotations) {
        CipherAnnotation { suites: Some(suites), refused: None, .. } => Some(suites),
        _ => None,
    })
}

/// Whether each host takes the client's order of suites: from the oldest Ingress with rules for
/// it that sets `ssl-prefer-server-ciphers` (`true`: the client's order).
pub fn host_client_preference(ours: &[(&ObjectKey, &Ingress)]) -> BTreeMap<String, bool> {
    super::server_settings(ours, |_, annotations| match parse(annotations) {
        CipherAnnotation { server_preference: Some(server), refused: None, .. } => Some(!server),
        _ => None,
    })
}

/// The setting (suites, or order) of each served server name (a `server-alias` name, `aliases`:
/// alias -> host, takes its host's).
pub fn apply<T: Clone>(hosts: &BTreeMap<String, T>, aliases: &BTreeMap<String, String>, virtual_hosts: &[VirtualHost]) -> BTreeMap<String, T> {
    virtual_hosts
        .iter()
        .filter_map(|vhost| {
            let host = aliases.get(&vhost.host).unwrap_or(&vhost.host);
            hosts.get(host).map(|suites| (vhost.host.clone(), suites.clone()))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn openssl_strings_keep_the_names_envoy_knows() {
        let suites = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let rows = [
            ("", Ciphers::Off),
            (
                "ECDHE-ECDSA-AES256-GCM-SHA384:ecdhe-rsa-aes128-gcm-sha256:ECDHE-ECDSA-AES256-GCM-SHA384",
                Ciphers::Suites { suites: suites(&["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"]), left_out: vec![] },
            ),
            (
                "ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256:!aNULL",
                Ciphers::Suites { suites: suites(&["ECDHE-RSA-AES128-GCM-SHA256"]), left_out: suites(&["DHE-RSA-AES128-GCM-SHA256", "!aNULL"]) },
            ),
            ("HIGH:!aNULL:!MD5", Ciphers::NoneUsable(suites(&["HIGH", "!aNULL", "!MD5"]))),
        ];
        for (value, want) in rows {
            assert_eq!(read(value), want, "{value:?}");
        }
        // ingress-nginx's sslciphers.go "keep ssl ciphers": its validation takes `@STRENGTH` and
        // `@SECLEVEL=n`; OpenSSL separates parts with spaces too.
        assert!(!matches!(read("ALL:!aNULL:!EXPORT56:RC4+RSA:+HIGH:+MEDIUM:+LOW:+SSLv2:+EXP:@STRENGTH:@SECLEVEL=0"), Ciphers::Refused(_)));
        assert_eq!(
            read("AES128-SHA AES256-SHA @STRENGTH"),
            Ciphers::Suites { suites: suites(&["AES128-SHA", "AES256-SHA"]), left_out: suites(&["@STRENGTH"]) }
        );
        for refused in ["ALL:@SECLEVEL=6", "ALL;HIGH", "ALL,HIGH", "ALL:@FOO", "ALL\"; evil"] {
            assert!(matches!(read(refused), Ciphers::Refused(_)), "{refused:?} is refused by ingress-nginx's validation");
        }
    }

    /// An Ingress `web/<name>` with one rule for `host` and one annotation (after the prefix).
    fn annotated(name: &str, annotation: &str, value: &str, host: &str) -> (ObjectKey, Ingress) {
        let json = serde_json::json!({
            "metadata": {"name": name, "namespace": "web", "annotations": {format!("{NGINX_PREFIX}{annotation}"): value}},
            "spec": {"rules": [{"host": host}]}
        });
        (ObjectKey::new("web", name), serde_json::from_value(json).unwrap())
    }

    #[test]
    fn the_oldest_ingress_of_a_host_decides_and_aliases_follow_their_host() {
        let ingress = |name: &str, ciphers: &str, host: &str| annotated(name, "ssl-ciphers", ciphers, host);
        let (a, b, c) = (ingress("a", "AES128-SHA", "shop.test"), ingress("b", "AES256-SHA", "shop.test"), ingress("c", "HIGH", "blog.test"));
        let ours = [(&a.0, &a.1), (&b.0, &b.1), (&c.0, &c.1)];
        let hosts = host_suites(&ours);
        assert_eq!(hosts, BTreeMap::from([("shop.test".to_string(), vec!["AES128-SHA".to_string()])]));
        let vhost = |host: &str| VirtualHost { host: host.into(), ..VirtualHost::default() };
        let aliases = BTreeMap::from([("www.shop.test".to_string(), "shop.test".to_string())]);
        let applied = apply(&hosts, &aliases, &[vhost("shop.test"), vhost("www.shop.test"), vhost("blog.test")]);
        assert_eq!(applied.keys().collect::<Vec<_>>(), ["shop.test", "www.shop.test"]);
    }

    #[test]
    fn ssl_prefer_server_ciphers_false_gives_the_client_the_order_and_the_oldest_ingress_decides() {
        let ingress = |name: &str, prefer: &str, host: &str| annotated(name, "ssl-prefer-server-ciphers", prefer, host);
        let (a, b, c, d) = (
            ingress("a", "false", "shop.test"),
            ingress("b", "true", "shop.test"),
            ingress("c", "true", "blog.test"),
            ingress("d", "no", "docs.test"),
        );
        let ours = [(&a.0, &a.1), (&b.0, &b.1), (&c.0, &c.1), (&d.0, &d.1)];
        let hosts = host_client_preference(&ours);
        assert_eq!(hosts, BTreeMap::from([("shop.test".to_string(), true), ("blog.test".to_string(), false)]), "{hosts:?}");
        let unreadable = parse(d.1.metadata.annotations.as_ref().unwrap());
        assert_eq!(unreadable.server_preference, None);
        assert!(unreadable.notes.iter().any(|(key, _, note)| key.ends_with("ssl-prefer-server-ciphers") && note.contains("\"no\"")), "{:?}", unreadable.notes);
    }
}
