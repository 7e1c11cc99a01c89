//! Header lists kept in ConfigMaps, read as ingress-nginx (v1.15) reads them:
//! `custom-headers` (response headers on every answer of the Ingress's paths, nginx's
//! `more_set_headers` at the location) and `auth-proxy-set-headers` (headers on the auth request,
//! `proxy_set_header` in the auth location). Pure: the ConfigMap comes from the state; what cannot
//! be honoured is a reason the caller turns into ingress-nginx's denied location (503).
//!
//! ingress-nginx's quirks, kept: both annotations are looked up as `namespace/name` (a bare name
//! is never found, so it denies the location); `custom-headers` may name a ConfigMap of any
//! namespace, `auth-proxy-set-headers` only of the Ingress's own; every `custom-headers` header
//! must be listed in `global-allowed-response-headers` (empty by default, so nothing is allowed
//! until the operator lists it); `custom-headers` values are literal (`$` is not a variable),
//! `auth-proxy-set-headers` values are nginx templates.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use wasm_ingress_filter::table::AuthHeader;

use crate::model::Severity;
use crate::state::ObjectKey;

use super::annotations::AnnotationNote;
use super::variables::{Allowed, Template};
use super::NGINX_PREFIX;

/// The annotation names (after the prefix) this module reads (`auth-proxy-set-headers` is read by
/// `auth`, through [`parse_reference`]).
pub const NAMES: &[&str] = &["custom-headers"];

/// What a ConfigMap annotation names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapRef {
    /// `namespace/name`.
    Qualified(ObjectKey),
    /// Anything else that passed the character check (`name`, `a/b/c`): ingress-nginx looks it up
    /// as a key and never finds it.
    Unqualified(String),
}

impl std::fmt::Display for MapRef {
    /// `namespace/name`, or the value as written.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MapRef::Qualified(key) => key.fmt(f),
            MapRef::Unqualified(value) => f.write_str(value),
        }
    }
}

impl MapRef {
    /// The ConfigMap's key, when it can be found at all.
    pub fn key(&self) -> Option<&ObjectKey> {
        match self {
            MapRef::Qualified(key) => Some(key),
            MapRef::Unqualified(_) => None,
        }
    }
}

/// An annotation value naming a ConfigMap. `Ok(None)`: empty; `Err`: characters ingress-nginx's
/// validation refuses (letters, digits and `-._~/:` only), which makes it ignore the annotation.
pub fn parse_reference(value: &str) -> Result<Option<MapRef>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || "-._~/:".contains(c)) {
        return Err(format!("{value:?} has characters ingress-nginx's validation refuses (letters, digits and -._~/: only)"));
    }
    Ok(Some(match value.split('/').collect::<Vec<_>>().as_slice() {
        [namespace, name] if !namespace.is_empty() && !name.is_empty() => MapRef::Qualified(ObjectKey::new(*namespace, *name)),
        _ => MapRef::Unqualified(value.to_string()),
    }))
}

/// Read `custom-headers`: the reference, and a warning for a value ingress-nginx ignores.
pub fn parse(annotations: &BTreeMap<String, String>) -> (Option<MapRef>, Vec<AnnotationNote>) {
    let key = format!("{NGINX_PREFIX}custom-headers");
    match annotations.get(&key).map(|value| parse_reference(value)) {
        None | Some(Ok(None)) => (None, Vec::new()),
        Some(Ok(reference)) => (reference, Vec::new()),
        Some(Err(reason)) => (None, vec![(key, Severity::Warning, format!("{reason}; ignored, as ingress-nginx ignores it"))]),
    }
}

/// The entries of the ConfigMap `reference` names, each key a header name; or why there are none
/// to use.
fn entries<'c>(reference: &MapRef, lookup: impl Fn(&ObjectKey) -> Option<&'c ConfigMap>) -> Result<Vec<(&'c String, &'c String)>, String> {
    let config_map = match reference {
        MapRef::Qualified(key) => lookup(key).ok_or_else(|| format!("ConfigMap {key} not found"))?,
        MapRef::Unqualified(value) => {
            return Err(format!("ConfigMap {value:?} not found: ingress-nginx looks it up as namespace/name (write <namespace>/{value})"))
        }
    };
    let entries: Vec<(&String, &String)> = config_map.data.iter().flatten().collect();
    match entries.iter().find(|(name, _)| !is_header_name(name)) {
        Some((name, _)) => Err(format!("ConfigMap {reference}: {name:?} is not a header name (letters, digits, - and _)")),
        None => Ok(entries),
    }
}

/// ingress-nginx's check of a header name (its `^[a-zA-Z\d\-_]+$`), in these ConfigMaps and in
/// `auth-response-headers`.
pub(super) fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// ingress-nginx's check of a `custom-headers` value: not empty, visible ASCII and spaces.
fn is_custom_header_value(value: &str) -> bool {
    !value.is_empty() && value.chars().all(|c| c == ' ' || c.is_ascii_graphic())
}

/// `custom-headers`: the ConfigMap's entries as response headers (name as written, value literal),
/// each of them allowed by `allowed` (`global-allowed-response-headers`, compared exactly as
/// ingress-nginx does). `Err`: why the location is denied.
pub fn response_headers<'c>(
    reference: &MapRef,
    lookup: impl Fn(&ObjectKey) -> Option<&'c ConfigMap>,
    allowed: &[String],
) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    for (name, value) in entries(reference, lookup)? {
        if !is_custom_header_value(value) {
            return Err(format!("ConfigMap {reference}: the value of {name} is empty or has characters ingress-nginx refuses"));
        }
        if !allowed.iter().any(|a| a == name) {
            return Err(format!(
                "header {name} is not allowed: list it in --global-allowed-response-headers (ingress-nginx's global-allowed-response-headers, empty by default)"
            ));
        }
        headers.push((name.clone(), value.clone()));
    }
    Ok(headers)
}

/// `auth-proxy-set-headers` of an Ingress in `namespace`: the ConfigMap's entries as auth-request
/// headers (names lower case, values nginx templates the filter fills). `Err`: why the location
/// is denied.
pub fn auth_headers<'c>(
    reference: &MapRef,
    namespace: &str,
    lookup: impl Fn(&ObjectKey) -> Option<&'c ConfigMap>,
) -> Result<Vec<AuthHeader>, String> {
    if let Some(key) = reference.key().filter(|key| key.namespace != namespace) {
        return Err(format!("ConfigMap {key} is in another namespace, which ingress-nginx does not allow (allow-cross-namespace-resources is off)"));
    }
    let mut headers = Vec::new();
    for (name, value) in entries(reference, lookup)? {
        let header = AuthHeader { name: name.to_ascii_lowercase(), value: value.clone() };
        if header.name == "host" {
            return Err(format!("ConfigMap {reference}: the auth request's Host is the auth-url's; it cannot be set"));
        }
        wasm_ingress_filter::auth::check_header_template(value).map_err(|reason| format!("ConfigMap {reference}: the value of {name} {reason}"))?;
        headers.push(header);
    }
    if headers.len() > wasm_ingress_filter::limits::MAX_AUTH_RESPONSE_HEADERS {
        return Err(format!("ConfigMap {reference} has more than {} headers", wasm_ingress_filter::limits::MAX_AUTH_RESPONSE_HEADERS));
    }
    Ok(headers)
}

/// The headers of `serve --add-headers` and `--proxy-set-headers` (ingress-nginx's ConfigMap
/// `add-headers`, `proxy-set-headers`), for every Ingress: names lower case, values nginx
/// templates resolved per location (ingress-nginx writes them unescaped, so nginx reads their
/// variables).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalHeaders {
    /// Set on every response (`add-headers`).
    pub response: TemplateHeaders,
    /// Set on every request sent upstream (`proxy-set-headers`).
    pub request: TemplateHeaders,
}

/// Headers by lower-case name, with nginx templates as values.
pub type TemplateHeaders = Vec<(String, Template)>;

/// The `--add-headers` entries the filter sets on its answers to requests no route takes (the
/// route table's `answer_headers`): those with a literal value that the filter may set (not
/// `Location`, `Content-Type`, … which its answers set themselves), at most as many as it takes.
pub fn default_answer_headers(global: &GlobalHeaders) -> Vec<wasm_ingress_filter::table::AnswerHeader> {
    use wasm_ingress_filter::limits::{answer_header_value_ok, MAX_ANSWER_HEADERS};
    global
        .response
        .iter()
        .filter(|(name, _)| !wasm_ingress_filter::table::ANSWER_OWN_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| Some(wasm_ingress_filter::table::AnswerHeader { name: name.clone(), value: value.literal()? }))
        .filter(|header| answer_header_value_ok(&header.value))
        .take(MAX_ANSWER_HEADERS)
        .collect()
}

/// The usable entries of the global header ConfigMap `key`, and one reason per entry left out.
/// A missing ConfigMap sets nothing, as ingress-nginx only logs it; an entry it would write into
/// nginx's configuration as is — a name that is not a header name, a variable this controller
/// cannot fill, `Host` upstream — is left out with a warning instead. An empty value removes the
/// header, as in nginx.
pub fn global_headers<'c>(
    key: &ObjectKey,
    upstream: bool,
    lookup: impl Fn(&ObjectKey) -> Option<&'c ConfigMap>,
) -> (TemplateHeaders, Vec<(String, String)>) {
    let Some(config_map) = lookup(key) else {
        return (Vec::new(), vec![(String::new(), format!("ConfigMap {key} not found: no headers are set from it (ingress-nginx only logs this too)"))]);
    };
    let mut headers: TemplateHeaders = Vec::new();
    let mut left_out = Vec::new();
    for (name, value) in config_map.data.iter().flatten() {
        let field = format!("data[{name}]");
        let lower = name.to_ascii_lowercase();
        let parsed = if !is_header_name(name) {
            Err("not a header name (letters, digits, - and _)".to_string())
        } else if value.trim().is_empty() {
            // nginx's `proxy_set_header Name ""` sends no such header, the client's included, and
            // headers-more's `more_set_headers "Name: "` removes the upstream's.
            Ok(Template::text(""))
        } else if upstream && lower == "host" {
            Err("the Host sent upstream is the request's (upstream-vhost sets another per Ingress)".to_string())
        } else if headers.len() >= MAX_GLOBAL_HEADERS {
            Err(format!("more than {MAX_GLOBAL_HEADERS} headers"))
        } else {
            Template::parse(value, Allowed::Everything)
        };
        match parsed {
            Ok(template) => headers.push((lower, template)),
            Err(reason) => left_out.push((field, format!("{reason}; this header is not set"))),
        }
    }
    (headers, left_out)
}

/// Most headers one global header ConfigMap sets.
const MAX_GLOBAL_HEADERS: usize = 64;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn config_map(pairs: &[(&str, &str)]) -> ConfigMap {
        ConfigMap { data: Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()), ..ConfigMap::default() }
    }

    fn qualified(namespace: &str, name: &str) -> MapRef {
        MapRef::Qualified(ObjectKey::new(namespace, name))
    }

    #[test]
    fn references_are_namespace_slash_name_as_ingress_nginx_looks_them_up() {
        let rows: [(&str, Result<Option<MapRef>, ()>); 6] = [
            ("", Ok(None)),
            ("web/headers", Ok(Some(qualified("web", "headers")))),
            (" web/headers ", Ok(Some(qualified("web", "headers")))),
            ("headers", Ok(Some(MapRef::Unqualified("headers".into())))),
            ("a/b/c", Ok(Some(MapRef::Unqualified("a/b/c".into())))),
            ("web/head ers", Err(())),
        ];
        for (value, want) in rows {
            assert_eq!(parse_reference(value).map_err(|_| ()), want, "{value:?}");
        }
    }

    #[test]
    fn custom_headers_need_the_configmap_valid_entries_and_the_allow_list() {
        let maps: BTreeMap<ObjectKey, ConfigMap> = BTreeMap::from([
            (ObjectKey::new("web", "ok"), config_map(&[("My-Custom-Header", "42"), ("My-Custom-Header-Dollar", "$remote_addr")])),
            (ObjectKey::new("web", "bad-name"), config_map(&[("My Header", "1")])),
            (ObjectKey::new("web", "empty-value"), config_map(&[("My-Custom-Header", "")])),
            (ObjectKey::new("web", "newline"), config_map(&[("My-Custom-Header", "a\nb")])),
        ]);
        let lookup = |key: &ObjectKey| maps.get(key);
        let both = vec!["My-Custom-Header".to_string(), "My-Custom-Header-Dollar".to_string()];
        let got = response_headers(&qualified("web", "ok"), lookup, &both).unwrap();
        assert_eq!(
            got,
            vec![("My-Custom-Header".into(), "42".into()), ("My-Custom-Header-Dollar".into(), "$remote_addr".into())],
            "values are literal"
        );
        let rows: [(MapRef, &[String], &str); 7] = [
            (qualified("web", "ok"), &[], "not allowed"),
            (qualified("web", "ok"), &both[..1], "My-Custom-Header-Dollar is not allowed"),
            (qualified("web", "missing"), &both, "ConfigMap web/missing not found"),
            (MapRef::Unqualified("ok".into()), &both, "namespace/name"),
            (qualified("web", "bad-name"), &both, "not a header name"),
            (qualified("web", "empty-value"), &both, "empty"),
            (qualified("web", "newline"), &both, "characters"),
        ];
        for (reference, allowed, want) in rows {
            let error = response_headers(&reference, lookup, allowed).unwrap_err();
            assert!(error.contains(want), "{reference:?}: {error}");
        }
    }

    #[test]
    fn auth_headers_are_templates_from_the_ingress_namespace() {
        let maps: BTreeMap<ObjectKey, ConfigMap> = BTreeMap::from([
            (ObjectKey::new("web", "auth"), config_map(&[("My-Custom-Header", "42"), ("X-Client", "$remote_addr")])),
            (ObjectKey::new("web", "vars"), config_map(&[("X-Auth", "$http_authorization")])),
            (ObjectKey::new("web", "host"), config_map(&[("Host", "other")])),
            (ObjectKey::new("other", "auth"), config_map(&[("A", "1")])),
        ]);
        let lookup = |key: &ObjectKey| maps.get(key);
        let got = auth_headers(&qualified("web", "auth"), "web", lookup).unwrap();
        let header = |name: &str, value: &str| AuthHeader { name: name.into(), value: value.into() };
        assert_eq!(got, vec![header("my-custom-header", "42"), header("x-client", "$remote_addr")]);
        let rows = [
            (qualified("other", "auth"), "another namespace"),
            (qualified("web", "missing"), "not found"),
            (MapRef::Unqualified("auth".into()), "namespace/name"),
            (qualified("web", "vars"), "$http_authorization"),
            (qualified("web", "host"), "Host"),
        ];
        for (reference, want) in rows {
            let error = auth_headers(&reference, "web", lookup).unwrap_err();
            assert!(error.contains(want), "{reference:?}: {error}");
        }
    }
}
