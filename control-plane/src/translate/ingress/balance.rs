//! How an endpoint is picked, by ingress-nginx annotation: `load-balance`, `upstream-hash-by` and
//! `affinity: cookie` with its `session-cookie-*` companions. Precedence is ingress-nginx's
//! balancer's: cookie affinity, then `upstream-hash-by`, then `load-balance`. Both hashing ones
//! make the cluster a consistent-hash ring ([`Balance::RingHash`]) keyed by the route's
//! [`HashOn`]; Envoy sets the sticky cookie when a request has none, as ingress-nginx sets it
//! when it picks a new endpoint.
//!
//! Values ingress-nginx refuses: a bad `load-balance` or `upstream-hash-by` rejects the whole
//! Ingress (as its annotation validation does); a bad `session-cookie-*` value falls back to its
//! default with a warning. Pure.

use std::collections::BTreeMap;

use wasm_ingress_filter::subset::HashKey;

use crate::model::{AffinityCookie, Balance, HashOn, Severity};

use super::annotations::AnnotationNote;
use super::behaviour::Reader;

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &[
    "affinity",
    "affinity-mode",
    "load-balance",
    "session-cookie-change-on-failure",
    "session-cookie-domain",
    "session-cookie-expires",
    "session-cookie-max-age",
    "session-cookie-name",
    "session-cookie-conditional-samesite-none",
    "session-cookie-path",
    "session-cookie-samesite",
    "session-cookie-secure",
    "upstream-hash-by",
    "upstream-hash-by-subset",
    "upstream-hash-by-subset-size",
];

const DEFAULT_COOKIE_NAME: &str = "INGRESSCOOKIE";

/// What the balancing annotations of one Ingress ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Balancing {
    /// `None`: no annotation chose; `serve --load-balance` applies.
    pub balance: Option<Balance>,
    pub hash: Option<Hashing>,
    /// (annotation, reason) of a value ingress-nginx rejects the Ingress for.
    pub refused: Option<(String, String)>,
    /// `session-cookie-conditional-samesite-none` with `SameSite=None`: the sticky cookie's name,
    /// whose `SameSite=None` the filter drops for user agents that mishandle it.
    pub conditional_samesite_none: Option<String>,
}

impl Balancing {
    /// The sticky cookie's name (`affinity: cookie`).
    pub fn affinity_cookie(&self) -> Option<&str> {
        match &self.hash {
            Some(Hashing::Cookie { name, .. }) => Some(name),
            _ => None,
        }
    }

    /// `session-cookie-expires` of the sticky cookie, in seconds.
    pub fn affinity_cookie_expires(&self) -> Option<u64> {
        match &self.hash {
            Some(Hashing::Cookie { expires, .. }) => *expires,
            _ => None,
        }
    }

    /// The filter's subset key (`upstream-hash-by-subset`); `None` without subsets.
    pub fn subset_key(&self) -> Option<HashKey> {
        let Some(Hashing::Subset(on)) = &self.hash else { return None };
        match on {
            HashOn::Header(name) => Some(HashKey::Header { name: name.clone() }),
            HashOn::Cookie(name) => Some(HashKey::Cookie { name: name.clone() }),
            HashOn::QueryParameter(name) => Some(HashKey::Query { name: name.clone() }),
            HashOn::SourceIp => Some(HashKey::SourceIp),
            HashOn::AffinityCookie(_) => None,
        }
    }
}

/// The hash of a route, before the path of the route is known (the cookie's default `Path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hashing {
    /// `affinity: cookie`; `path: None` means the route's own path; `expires`: the seconds of
    /// `session-cookie-expires`, which the filter writes as the cookie's `Expires` date.
    Cookie { name: String, path: Option<String>, max_age: Option<u64>, expires: Option<u64>, attributes: Vec<(String, String)>, secure: bool, persistent: bool },
    By(HashOn),
    /// `upstream-hash-by` with `upstream-hash-by-subset`: the filter sends the key's slot, the
    /// cluster balances over subsets ([`Balance::HashSubset`]); no Envoy hash policy.
    Subset(HashOn),
}

impl Hashing {
    /// The hash of a route whose Ingress path is `route_path`.
    pub fn on(&self, route_path: &str) -> HashOn {
        match self {
            Hashing::By(on) | Hashing::Subset(on) => on.clone(),
            Hashing::Cookie { name, path, max_age, attributes, secure, persistent, .. } => HashOn::AffinityCookie(AffinityCookie {
                name: name.clone(),
                path: path.clone().unwrap_or_else(|| route_path.to_string()),
                max_age: *max_age,
                attributes: attributes.clone(),
                secure: *secure,
                persistent: *persistent,
            }),
        }
    }
}

/// Read the balancing annotations of one Ingress.
pub fn parse(annotations: &BTreeMap<String, String>) -> (Balancing, Vec<AnnotationNote>) {
    let mut reader = Reader::new(annotations);
    let mut balancing = Balancing::default();
    match reader.get("load-balance").map(str::trim).filter(|v| !v.is_empty()) {
        None => {}
        Some("round_robin") => balancing.balance = Some(Balance::RoundRobin),
        Some("ewma") => {
            reader.note("load-balance", Severity::Warning, "ewma: Envoy's least-request balancer is used (the nearest to nginx's latency-weighted one)".into());
            balancing.balance = Some(Balance::LeastRequest);
        }
        Some(other @ ("chash" | "chashsubset" | "sticky_balanced" | "sticky_persistent")) => {
            reader.note("load-balance", Severity::Warning, format!("{other} is chosen by affinity or upstream-hash-by, not by this annotation; round robin applies"));
        }
        Some(other) => balancing.refused = Some(("load-balance".into(), format!("{other:?} is not one of round_robin, ewma, chash, chashsubset, sticky_balanced, sticky_persistent"))),
    }
    if let Some(value) = reader.get("upstream-hash-by").map(|v| v.replace(' ', "")).filter(|v| !v.is_empty()) {
        match hash_by(&value) {
            Ok(Some(on)) if reader.boolean("upstream-hash-by-subset").unwrap_or(false) => balancing.hash = Some(Hashing::Subset(on)),
            Ok(Some(on)) => balancing.hash = Some(Hashing::By(on)),
            Ok(None) => reader.note("upstream-hash-by", Severity::Warning, format!("{value:?}: only one of $request_uri, $uri, $host, $remote_addr, $http_*, $cookie_*, $arg_* is supported; not applied (the load-balance setting applies)")),
            Err(reason) => balancing.refused = Some(("upstream-hash-by".into(), reason)),
        }
    }
    match reader.get("affinity").map(str::trim) {
        None | Some("") => {}
        Some("cookie") => {
            let sticky = cookie(&mut reader);
            balancing.conditional_samesite_none = conditional_samesite_none(&mut reader, &sticky);
            balancing.hash = Some(sticky);
        }
        Some(other) => reader.note("affinity", Severity::Warning, format!("{other:?} is not \"cookie\"; no affinity (as ingress-nginx)")),
    }
    balancing.balance = match &balancing.hash {
        Some(Hashing::Subset(_)) => Some(Balance::HashSubset { size: subset_size(&mut reader) }),
        Some(_) => Some(Balance::RingHash),
        None => balancing.balance,
    };
    (balancing, reader.notes)
}

/// ingress-nginx's default `upstream-hash-by-subset-size`.
const DEFAULT_SUBSET_SIZE: u32 = 3;

/// `upstream-hash-by-subset-size`: a positive number, else the default with a warning (a subset of
/// more endpoints than the Service has is all of them, as in ingress-nginx).
fn subset_size(reader: &mut Reader<'_>) -> u32 {
    let Some(value) = reader.get("upstream-hash-by-subset-size").map(str::trim) else { return DEFAULT_SUBSET_SIZE };
    match value.parse::<u32>() {
        Ok(size) if size > 0 => size,
        _ => {
            reader.note("upstream-hash-by-subset-size", Severity::Warning, format!("{value:?} is not a positive number; {DEFAULT_SUBSET_SIZE} is used"));
            DEFAULT_SUBSET_SIZE
        }
    }
}

/// One nginx variable as Envoy's hash input; `Ok(None)` for a valid value we cannot map.
fn hash_by(value: &str) -> Result<Option<HashOn>, String> {
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || "-_${}".contains(c)) {
        return Err(format!("{value:?} may only hold letters, digits and -_${{}} (as ingress-nginx checks it)"));
    }
    let variable = value.strip_prefix("${").and_then(|v| v.strip_suffix('}')).or_else(|| value.strip_prefix('$'));
    let Some(variable) = variable.filter(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) else { return Ok(None) };
    Ok(match variable {
        "request_uri" | "uri" => Some(HashOn::Header(":path".into())),
        "host" | "http_host" => Some(HashOn::Header(":authority".into())),
        "remote_addr" | "binary_remote_addr" => Some(HashOn::SourceIp),
        _ => {
            if let Some(header) = super::variables::prefixed_header(variable, "http_") {
                Some(HashOn::Header(header))
            } else if let Some(name) = variable.strip_prefix("cookie_").filter(|n| !n.is_empty()) {
                Some(HashOn::Cookie(name.to_string()))
            } else {
                variable.strip_prefix("arg_").filter(|n| !n.is_empty()).map(|name| HashOn::QueryParameter(name.to_string()))
            }
        }
    })
}

/// The cookie's name when it is `SameSite=None` and `session-cookie-conditional-samesite-none`
/// is `true` (without `SameSite=None` the annotation does nothing, as in ingress-nginx).
fn conditional_samesite_none(reader: &mut Reader<'_>, sticky: &Hashing) -> Option<String> {
    if !reader.boolean("session-cookie-conditional-samesite-none").unwrap_or(false) {
        return None;
    }
    let Hashing::Cookie { name, attributes, .. } = sticky else { return None };
    attributes.iter().any(|(k, v)| k == "SameSite" && v.eq_ignore_ascii_case("none")).then(|| name.clone())
}

/// `affinity: cookie` and its `session-cookie-*` companions.
fn cookie(reader: &mut Reader<'_>) -> Hashing {
    let token = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let name = match reader.get("session-cookie-name").map(str::trim).filter(|v| !v.is_empty()) {
        // The filter's own check: letters, digits, `-_.~` (`SERVER.ID`).
        Some(name) if wasm_ingress_filter::matcher::check_cookie_name("session-cookie-name", name).is_ok() => name.to_string(),
        Some(name) => {
            reader.note("session-cookie-name", Severity::Warning, format!("{name:?} may only hold letters, digits, '-', '_', '.' and '~'; {DEFAULT_COOKIE_NAME} is used"));
            DEFAULT_COOKIE_NAME.to_string()
        }
        None => DEFAULT_COOKIE_NAME.to_string(),
    };
    let path = reader.get("session-cookie-path").map(str::trim).filter(|p| !p.is_empty() && p.starts_with('/') && !p.contains([';', ' '])).map(String::from);
    if path.is_none() && reader.get("use-regex").map(str::trim).and_then(super::behaviour::go_bool) == Some(true) {
        // ingress-nginx's controller warns the same (affinity.go's e2e case).
        let note = "should be set when use-regex is true: the cookie's Path is otherwise the Ingress path as written, a regular expression that browsers match literally";
        reader.note("session-cookie-path", Severity::Warning, note.into());
    }
    let seconds = |reader: &mut Reader<'_>, name: &str| reader.get(name).and_then(|v| v.trim().parse::<u64>().ok());
    let expires = seconds(reader, "session-cookie-expires");
    let max_age = seconds(reader, "session-cookie-max-age").or(expires);
    let mut attributes = Vec::new();
    if let Some(domain) = reader.get("session-cookie-domain").map(str::trim).filter(|d| !d.is_empty()) {
        if domain.chars().all(|c| token(c) || c == '.') {
            attributes.push(("Domain".to_string(), domain.to_string()));
        }
    }
    if let Some(samesite) = reader.get("session-cookie-samesite").map(str::trim).filter(|s| !s.is_empty()) {
        // ingress-nginx's cookie library (lua-resty-cookie's `bake`) writes the attribute only
        // for these exact spellings and drops any other: `lax` gives a cookie without SameSite.
        if ["None", "Lax", "Strict"].contains(&samesite) {
            attributes.push(("SameSite".to_string(), samesite.to_string()));
        } else {
            let note = format!("{samesite:?}: ingress-nginx writes SameSite only for None, Lax or Strict (that case); the cookie gets none, as there");
            reader.note("session-cookie-samesite", Severity::Warning, note);
        }
    }
    let secure = reader.get("session-cookie-secure").map(str::trim).and_then(super::behaviour::go_bool) == Some(true);
    let persistent = affinity_mode(reader) | change_on_failure(reader);
    Hashing::Cookie { name, path, max_age, expires, attributes, secure, persistent }
}

/// `session-cookie-change-on-failure` (Go's `ParseBool`; anything else is `false`, as ingress-nginx
/// ignores it). When a request fails on the sticky endpoint and is tried on another, ingress-nginx
/// sets the cookie again for the endpoint that answered. Envoy's stateful session does exactly
/// that with a cookie naming the endpoint, so `true` gives the cookie of `affinity-mode:
/// persistent` in either mode: balanced mode then keeps a client on its endpoint while endpoints
/// are added, where ingress-nginx's ring would move some clients (`docs/annotations.md`).
fn change_on_failure(reader: &mut Reader<'_>) -> bool {
    match reader.get("session-cookie-change-on-failure").map(str::trim) {
        None | Some("") => false,
        Some(value) => match super::behaviour::go_bool(value) {
            Some(on) => on,
            None => {
                reader.note("session-cookie-change-on-failure", Severity::Warning, format!("must be \"true\" or \"false\", not {value:?}; treated as \"false\" (as ingress-nginx)"));
                false
            }
        },
    }
}

/// `affinity-mode`: `persistent`, else `balanced` (ingress-nginx's default; another value is
/// refused by its validation and the default applies, with a warning here).
fn affinity_mode(reader: &mut Reader<'_>) -> bool {
    match reader.get("affinity-mode").map(str::trim) {
        Some("persistent") => true,
        None | Some("" | "balanced") => false,
        Some(other) => {
            reader.note("affinity-mode", Severity::Warning, format!("{other:?} is not balanced or persistent; balanced is used (as ingress-nginx)"));
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Balancing {
        let annotations = pairs.iter().map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), v.to_string())).collect();
        parse(&annotations).0
    }

    #[test]
    fn precedence_is_affinity_then_hash_by_then_load_balance() {
        assert_eq!(read(&[]), Balancing::default());
        assert_eq!(read(&[("load-balance", "ewma")]).balance, Some(Balance::LeastRequest));
        assert_eq!(read(&[("load-balance", "round_robin")]).balance, Some(Balance::RoundRobin), "over serve --load-balance");
        let hashed = read(&[("load-balance", "ewma"), ("upstream-hash-by", "$request_uri")]);
        assert_eq!((hashed.balance, hashed.hash), (Some(Balance::RingHash), Some(Hashing::By(HashOn::Header(":path".into())))));
        let sticky = read(&[("upstream-hash-by", "$remote_addr"), ("affinity", "cookie"), ("session-cookie-name", "SERVERID")]);
        let Some(Hashing::Cookie { name, .. }) = &sticky.hash else { panic!("{sticky:?}") };
        assert_eq!(name, "SERVERID");
        assert_eq!(read(&[("affinity", "Cookie")]).hash, None, "case-sensitive, as ingress-nginx");
    }

    #[test]
    fn subsets_need_upstream_hash_by_lose_to_affinity_and_default_to_three() {
        let by_uri = ("upstream-hash-by", "$request_uri");
        let on = ("upstream-hash-by-subset", "true");
        let subset = |pairs: &[(&str, &str)]| {
            let annotations = pairs.iter().map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), v.to_string())).collect();
            let (balancing, notes) = parse(&annotations);
            (balancing.balance.unwrap_or_default(), balancing.subset_key(), notes.len())
        };
        let uri = Some(HashKey::Header { name: ":path".into() });
        assert_eq!(subset(&[by_uri, on]), (Balance::HashSubset { size: 3 }, uri.clone(), 0));
        assert_eq!(subset(&[by_uri, on, ("upstream-hash-by-subset-size", "5")]), (Balance::HashSubset { size: 5 }, uri.clone(), 0));
        assert_eq!(subset(&[by_uri, on, ("upstream-hash-by-subset-size", "0")]), (Balance::HashSubset { size: 3 }, uri, 1), "warned");
        assert_eq!(subset(&[("upstream-hash-by", "$arg_tenant"), on]).1, Some(HashKey::Query { name: "tenant".into() }));
        assert_eq!(subset(&[("upstream-hash-by", "$remote_addr"), on]).1, Some(HashKey::SourceIp));
        assert_eq!(subset(&[by_uri, ("upstream-hash-by-subset", "false")]).0, Balance::RingHash);
        assert_eq!(subset(&[on]), (Balance::RoundRobin, None, 0), "no key: the annotation does nothing");
        assert_eq!(subset(&[by_uri, on, ("affinity", "cookie")]).0, Balance::RingHash, "affinity wins");
    }

    #[test]
    fn samesite_is_written_for_its_three_spellings_and_cookie_names_may_hold_dots() {
        let attributes = |samesite: &str| match read(&[("affinity", "cookie"), ("session-cookie-samesite", samesite)]).hash {
            Some(Hashing::Cookie { attributes, .. }) => attributes,
            other => panic!("{other:?}"),
        };
        assert_eq!(attributes("Lax"), [("SameSite".to_string(), "Lax".to_string())]);
        assert_eq!(attributes("lax"), [], "lua-resty-cookie drops other spellings");
        let name = |name: &str| match read(&[("affinity", "cookie"), ("session-cookie-name", name)]).hash {
            Some(Hashing::Cookie { name, .. }) => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(name("SERVER.ID"), "SERVER.ID");
        assert_eq!(name("a/b"), DEFAULT_COOKIE_NAME);
    }

    #[test]
    fn conditional_samesite_none_names_the_cookie_only_with_samesite_none() {
        let conditional = |pairs: &[(&str, &str)]| read(&[&[("affinity", "cookie"), ("session-cookie-name", "route")], pairs].concat()).conditional_samesite_none;
        let on = ("session-cookie-conditional-samesite-none", "true");
        assert_eq!(conditional(&[("session-cookie-samesite", "None"), on]).as_deref(), Some("route"));
        assert_eq!(conditional(&[("session-cookie-samesite", "none"), on]), None, "no SameSite at all for `none` (lua-resty-cookie)");
        assert_eq!(conditional(&[("session-cookie-samesite", "Lax"), on]), None);
        assert_eq!(conditional(&[on]), None);
        assert_eq!(conditional(&[("session-cookie-samesite", "None")]), None);
        assert_eq!(conditional(&[("session-cookie-samesite", "None"), ("session-cookie-conditional-samesite-none", "false")]), None);
    }

    #[test]
    fn hash_by_variables_map_to_envoy_inputs_and_bad_values_reject_the_ingress() {
        let rows: [(&str, Option<HashOn>); 8] = [
            ("$request_uri", Some(HashOn::Header(":path".into()))),
            ("${remote_addr}", Some(HashOn::SourceIp)),
            ("$http_x_user_id", Some(HashOn::Header("x-user-id".into()))),
            ("$cookie_session", Some(HashOn::Cookie("session".into()))),
            ("$arg_tenant", Some(HashOn::QueryParameter("tenant".into()))),
            ("$host", Some(HashOn::Header(":authority".into()))),
            ("$host$request_uri", None),
            ("plain", None),
        ];
        for (value, expected) in rows {
            assert_eq!(read(&[("upstream-hash-by", value)]).hash, expected.map(Hashing::By), "{value}");
        }
        assert!(read(&[("upstream-hash-by", "$request_uri/x")]).refused.is_some());
        assert!(read(&[("load-balance", "least_conn")]).refused.is_some());
    }

    #[test]
    fn the_cookie_follows_ingress_nginx_defaults() {
        let Some(hash) = read(&[("affinity", "cookie")]).hash else { panic!() };
        assert_eq!(
            hash.on("/api"),
            HashOn::AffinityCookie(AffinityCookie { name: DEFAULT_COOKIE_NAME.into(), path: "/api".into(), max_age: None, attributes: vec![], secure: false, persistent: false })
        );
        let Some(hash) = read(&[
            ("affinity", "cookie"),
            ("session-cookie-path", "/something"),
            ("session-cookie-expires", "172800"),
            ("session-cookie-max-age", "259200"),
            ("session-cookie-domain", "foo.bar"),
            ("session-cookie-samesite", "Strict"),
            ("session-cookie-secure", "true"),
        ])
        .hash
        else {
            panic!()
        };
        let HashOn::AffinityCookie(cookie) = hash.on("/api") else { panic!() };
        assert_eq!((cookie.path.as_str(), cookie.max_age, cookie.secure), ("/something", Some(259_200), true));
        assert_eq!(cookie.attributes, [("Domain", "foo.bar"), ("SameSite", "Strict")].map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn affinity_mode_is_balanced_unless_persistent() {
        let persistent = |mode: Option<&str>| sticky(&[mode.map(|mode| ("affinity-mode", mode))]);
        assert_eq!(persistent(None), (false, 0));
        assert_eq!(persistent(Some("balanced")), (false, 0));
        assert_eq!(persistent(Some(" persistent ")), (true, 0));
        assert_eq!(persistent(Some("Persistent")), (false, 1), "case-sensitive, as ingress-nginx validates it");
    }

    /// affinity.go's "should warn user when use-regex is true and session-cookie-path is not set".
    #[test]
    fn a_regex_path_without_session_cookie_path_is_warned() {
        assert_eq!(sticky(&[Some(("use-regex", "true"))]).1, 1);
        assert_eq!(sticky(&[Some(("use-regex", "true")), Some(("session-cookie-path", "/foo"))]).1, 0);
        assert_eq!(sticky(&[Some(("use-regex", "false"))]).1, 0);
    }

    #[test]
    fn change_on_failure_gives_the_cookie_that_names_the_endpoint_in_either_mode() {
        let on_failure = |mode: &str, change: &str| sticky(&[Some(("affinity-mode", mode)), Some(("session-cookie-change-on-failure", change))]);
        assert_eq!(on_failure("balanced", "true"), (true, 0));
        assert_eq!(on_failure("balanced", "True"), (true, 0), "Go's ParseBool");
        assert_eq!(on_failure("persistent", "true"), (true, 0));
        assert_eq!(on_failure("balanced", "false"), (false, 0));
        assert_eq!(on_failure("persistent", "false"), (true, 0), "persistent stays persistent");
        assert_eq!(on_failure("balanced", "yes"), (false, 1), "not a Go boolean: false, with a warning");
    }

    /// `affinity: cookie` with `pairs`: (whether the cookie names the endpoint, diagnostics).
    fn sticky(pairs: &[Option<(&str, &str)>]) -> (bool, usize) {
        let pairs = [("affinity", "cookie")].into_iter().chain(pairs.iter().flatten().copied());
        let annotations = pairs.map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), v.to_string())).collect();
        let (balancing, notes) = parse(&annotations);
        let Some(HashOn::AffinityCookie(cookie)) = balancing.hash.map(|hash| hash.on("/")) else { panic!() };
        (cookie.persistent, notes.len())
    }
}
