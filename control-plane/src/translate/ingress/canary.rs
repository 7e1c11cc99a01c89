//! ingress-nginx canary Ingresses (`canary: "true"`). A canary Ingress serves nothing of its own:
//! each of its paths attaches to the path of a main (non-canary) Ingress with the same host, path
//! and pathType, and the filter then sends some of that path's requests to the canary's Service —
//! by header, then cookie, then weight ([`wasm_ingress_filter::canary`]). Everything else about the
//! request (rewrites, timeouts, TLS to the backend, access control) is the main Ingress's.
//!
//! Semantics are ingress-nginx's (`mergeAlternativeBackends` and `route_to_alternative_balancer`),
//! quirks included:
//! - the canary joins the main path's **upstream** (its Service port), so every path of every host
//!   that sends to that Service port gets the canary, not only the path it was written for;
//! - the first (oldest) canary of an upstream is the one used; a canary of the main's own Service
//!   does nothing; a canary whose host or path no main Ingress serves is dropped (404 there);
//! - a canary's `spec.defaultBackend` joins the upstreams of the host-less rules' paths (the
//!   `spec.defaultBackend` of main Ingresses never get a canary here: a difference);
//! - `canary-by-header-value` wins over `-pattern`; a pattern the regex engine refuses makes the
//!   header's mere presence keep requests on the main Service;
//! - with `affinity: cookie` on the main Ingress the canary's cluster is sticky too and a client
//!   stays on the backend its cookie names (`affinity-canary-behavior: sticky`, the default; see
//!   [`wasm_ingress_filter::affinity`]); `legacy` gives the canary no sticky cookie;
//! - a main backend without ready endpoints answers 503 to every request, the canary's too (its
//!   balancer is gone, and the canary hangs off it); a canary without ready endpoints leaves every
//!   request to the main backend;
//! - `canary-weight-total` counts only above 100; canary annotations without `canary: "true"` are
//!   an error and the Ingress is served as a normal one.
//!
//! Pure: parsed annotations and the hosts being built in, canaries attached and notes out.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use wasm_ingress_filter::matcher::{check_basic_chars, check_token, compile_header_regex};
use wasm_ingress_filter::cluster::ClusterName;
use wasm_ingress_filter::table::{Canary, CanaryHeader, CanaryHeaderRule, RouteAction};

use crate::model::{Balance, ObjectRef, Severity, UpstreamOptions};
use crate::state::ObjectKey;

use super::annotations::{AnnotationNote, NGINX_PREFIX};
use super::backends::{ingress_ref, Backends};
use super::behaviour::Reader;
use super::{normalize_host, Diagnostics, HostBuild, PathType};

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &[
    "canary",
    "canary-by-cookie",
    "canary-by-header",
    "canary-by-header-pattern",
    "canary-by-header-value",
    "canary-weight",
    "canary-weight-total",
    "affinity-canary-behavior",
];

/// ingress-nginx counts `canary-weight-total` only above this.
const MIN_WEIGHT_TOTAL: u32 = 100;

/// How a canary Ingress takes requests (its annotations), before it knows its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryRules {
    pub header: Option<CanaryHeader>,
    pub cookie: Option<String>,
    pub weight: u32,
    pub weight_total: u32,
    /// `affinity-canary-behavior: legacy`: the canary takes none of the main Ingress's sticky
    /// cookie (see [`Canary::legacy_affinity`]).
    pub legacy_affinity: bool,
}

/// The canary rules of an Ingress with `canary: "true"`; `None` for any other Ingress.
pub fn parse(annotations: &BTreeMap<String, String>) -> (Option<CanaryRules>, Vec<AnnotationNote>) {
    let mut reader = Reader::new(annotations);
    let enabled = reader.boolean("canary").unwrap_or(false);
    if !enabled {
        let set: Vec<&str> = NAMES[1..].iter().copied().filter(|name| *name != "affinity-canary-behavior").filter(|name| reader.get(name).is_some_and(|v| !v.trim().is_empty())).collect();
        if let Some(first) = set.first() {
            reader.note(first, Severity::Error, format!("canary annotations ({}) without canary: \"true\"; ignored, the Ingress is served as a main Ingress (as ingress-nginx)", set.join(", ")));
        }
        return (None, reader.notes);
    }
    let header = reader_checked(&mut reader, "canary-by-header", check_token).map(|name| CanaryHeader {
        name: name.to_ascii_lowercase().replace('_', "-"),
        rule: header_rule(&mut reader),
    });
    let cookie = reader_checked(&mut reader, "canary-by-cookie", check_basic_chars);
    let weight = reader.integer("canary-weight").map_or(0, saturate);
    let weight_total = reader.integer("canary-weight-total").map_or(MIN_WEIGHT_TOTAL, saturate).max(MIN_WEIGHT_TOTAL);
    let legacy_affinity = affinity_behaviour(&mut reader);
    (Some(CanaryRules { header, cookie, weight, weight_total, legacy_affinity }), reader.notes)
}

/// `affinity-canary-behavior`: `legacy`, else ingress-nginx's default `sticky` (a value its
/// validation refuses counts as unset: a warning).
fn affinity_behaviour(reader: &mut Reader<'_>) -> bool {
    match reader.get("affinity-canary-behavior").map(str::trim) {
        Some("legacy") => true,
        None | Some("" | "sticky") => false,
        Some(other) => {
            reader.note("affinity-canary-behavior", Severity::Warning, format!("{other:?} is not \"sticky\" or \"legacy\"; \"sticky\" (the default) applies"));
            false
        }
    }
}

fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Annotation `name` when `check` (the filter's own, so the table never carries what the filter
/// refuses) passes it, else `None` with a warning: header names by [`check_token`]
/// (`[A-Za-z0-9_-]`), cookie names and header values by [`check_basic_chars`] (ingress-nginx's
/// `BasicCharsRegex`: `v1.2`, `canary.flag`).
fn reader_checked(reader: &mut Reader<'_>, name: &str, check: fn(&str, &str) -> Result<(), String>) -> Option<String> {
    let value = reader.get(name)?.trim();
    if value.is_empty() {
        return None;
    }
    if let Err(reason) = check(name, value) {
        reader.note(name, Severity::Warning, format!("{reason}; ignored (as ingress-nginx)"));
        return None;
    }
    Some(value.to_string())
}

/// ingress-nginx validates `canary-by-header-value` with its spaces removed and then uses the
/// value as written: `Do Canary` is a value.
fn check_basic_chars_but_spaces(what: &str, value: &str) -> Result<(), String> {
    check_basic_chars(what, &super::validators::spaceless(value))
}

/// ingress-nginx's `IsValidRegex` (see `validators::regex_chars`).
fn check_regex_chars(what: &str, pattern: &str) -> Result<(), String> {
    super::validators::regex_chars(pattern).map_err(|reason| format!("{what}: {reason}"))
}

/// `canary-by-header-value`, else `-pattern`, else always/never.
fn header_rule(reader: &mut Reader<'_>) -> CanaryHeaderRule {
    if let Some(value) = reader_checked(reader, "canary-by-header-value", check_basic_chars_but_spaces) {
        return CanaryHeaderRule::Value(value);
    }
    let Some(pattern) = reader_checked(reader, "canary-by-header-pattern", check_regex_chars) else {
        return CanaryHeaderRule::AlwaysNever;
    };
    let pattern = pattern.as_str();
    match compile_header_regex(pattern) {
        Ok(_) => CanaryHeaderRule::Pattern(pattern.to_string()),
        Err(reason) => {
            let message = format!("{reason}; a request carrying the header stays on the main Service, as ingress-nginx does when its regex fails");
            reader.note("canary-by-header-pattern", Severity::Warning, message);
            CanaryHeaderRule::PresentMeansPrimary
        }
    }
}

/// The diagnostics of a canary Ingress: its canary annotations' notes, and a warning for every
/// other ingress-nginx annotation (the main Ingress's apply, as in ingress-nginx).
pub(super) fn report(object: &ObjectRef, ingress: &Ingress, notes: Vec<AnnotationNote>, diagnostics: &mut Diagnostics) {
    let is_canary = |key: &str| key.strip_prefix(NGINX_PREFIX).is_some_and(|name| NAMES.contains(&name));
    for (key, severity, message) in notes.into_iter().filter(|(key, _, _)| is_canary(key)) {
        diagnostics.push(object.clone(), format!("metadata.annotations[{key}]"), severity, message);
    }
    for key in ingress.metadata.annotations.iter().flatten().map(|(key, _)| key) {
        if key.starts_with(NGINX_PREFIX) && !is_canary(key) {
            let message = "ignored on a canary Ingress: the main Ingress's annotations apply to its requests (as in ingress-nginx)".to_string();
            diagnostics.push(object.clone(), format!("metadata.annotations[{key}]"), Severity::Warning, message);
        }
    }
}

/// A canary Ingress waiting to be attached (collected oldest first).
pub(super) struct CanaryIngress<'i> {
    pub(super) key: ObjectKey,
    pub(super) ingress: &'i Ingress,
    pub(super) rules: CanaryRules,
}

/// Attach every canary (oldest first) to the upstreams of the main paths it names. Returns the
/// canaries used somewhere (they count as served).
pub(super) fn attach(
    canaries: &[CanaryIngress<'_>],
    hosts: &mut BTreeMap<String, HostBuild>,
    backends: &mut Backends<'_>,
    diagnostics: &mut Diagnostics,
) -> Vec<ObjectKey> {
    let mut used = Vec::new();
    for canary in canaries {
        let mut attached = false;
        for target in targets(canary, diagnostics) {
            attached |= attach_one(canary, &target, hosts, backends, diagnostics);
        }
        if attached {
            used.push(canary.key.clone());
        }
    }
    used
}

/// One canary backend and the main paths it looks for: (host, path, pathType) of a rule, or every
/// host-less path for `spec.defaultBackend`.
struct Target<'i> {
    field: String,
    backend: &'i IngressBackend,
    host: String,
    path: Option<(String, PathType)>,
}

fn targets<'i>(canary: &CanaryIngress<'i>, diagnostics: &mut Diagnostics) -> Vec<Target<'i>> {
    let object = ingress_ref(&canary.key);
    let Some(spec) = canary.ingress.spec.as_ref() else { return Vec::new() };
    let mut out: Vec<Target<'i>> = spec
        .default_backend
        .iter()
        .map(|backend| Target { field: "spec.defaultBackend".into(), backend, host: String::new(), path: None })
        .collect();
    for (rule_index, rule) in spec.rules.iter().flatten().enumerate() {
        let host = match normalize_host(rule.host.as_deref().unwrap_or_default()) {
            Ok(host) => host,
            Err(reason) => {
                diagnostics.push(object.clone(), format!("spec.rules[{rule_index}].host"), Severity::Error, format!("{reason}; rule skipped"));
                continue;
            }
        };
        for (path_index, http_path) in rule.http.iter().flat_map(|h| &h.paths).enumerate() {
            let Some(path_type) = PathType::parse(&http_path.path_type) else { continue };
            let path = http_path.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into());
            let field = format!("spec.rules[{rule_index}].http.paths[{path_index}].backend");
            out.push(Target { field, backend: &http_path.backend, host: host.clone(), path: Some((path, path_type)) });
        }
    }
    out
}

/// Attach one canary backend; `true` if some main path now has it.
fn attach_one(
    canary: &CanaryIngress<'_>,
    target: &Target<'_>,
    hosts: &mut BTreeMap<String, HostBuild>,
    backends: &mut Backends<'_>,
    diagnostics: &mut Diagnostics,
) -> bool {
    let object = ingress_ref(&canary.key);
    let describe = || match &target.path {
        Some((path, path_type)) => format!("host {:?} path {path:?} ({path_type:?})", target.host),
        None => "the host-less rules".to_string(),
    };
    let main = match main_upstream(hosts.get(&target.host), target) {
        Ok(main) => main,
        Err(why) => {
            let message = match &target.path {
                Some(_) => format!("{why} {}; this canary path is not used (as ingress-nginx, which drops it)", describe()),
                // ingress-nginx joins it to a catch-all main Ingress's `spec.defaultBackend`; we do not.
                None => format!("{why} {}; this canary's spec.defaultBackend is not used (ingress-nginx would join it to a catch-all main Ingress's spec.defaultBackend; this controller does not, see docs/annotations.md, canary)", describe()),
            };
            diagnostics.push(object, target.field.clone(), Severity::Warning, message);
            return false;
        }
    };
    if backends.clusters.get(&main.2).is_some_and(|cluster| cluster.endpoints.is_empty()) {
        let message = format!(
            "the main backend of {} has no ready endpoints: requests answer 503, those for the canary too, until it has (as ingress-nginx, whose canary hangs off the main backend's balancer)",
            describe()
        );
        diagnostics.push(object, target.field.clone(), Severity::Warning, message);
        return false;
    }
    let options = main.1.clone();
    let Some(first) = backends.resolve_canary(&canary.key, &target.field, target.backend, &options, diagnostics) else {
        let message = format!("the canary's backend cannot be served (no Service, port or ready endpoint); {} keeps its main backend only", describe());
        diagnostics.push(object, target.field.clone(), Severity::Warning, message);
        return false;
    };
    if first.service_port_part() == main.0 {
        let message = format!("the canary sends to the same Service port as the main Ingress of {}; it has no effect (as in ingress-nginx)", describe());
        diagnostics.push(object, target.field.clone(), Severity::Warning, message);
        return false;
    }
    let mut attached = false;
    for candidate in hosts.values_mut().flat_map(|build| build.candidates.iter_mut()) {
        attached |= join(&mut candidate.action, &candidate.upstream, &main.0, canary, target, backends, diagnostics);
    }
    if let Some(older) = (!attached).then(|| older_canary(hosts, &main.0)).flatten() {
        let message = format!("the upstream of {} already has the older canary Ingress {older}; this one is not used (as ingress-nginx, where the first canary of an upstream wins)", describe());
        diagnostics.push(object, target.field.clone(), Severity::Warning, message);
    }
    attached
}

/// The canary Ingress already joined to a path that sends to `service_port`, if any.
fn older_canary(hosts: &BTreeMap<String, HostBuild>, service_port: &str) -> Option<String> {
    hosts.values().flat_map(|build| &build.candidates).find_map(|candidate| {
        let RouteAction::Forward(forward) = &candidate.action else { return None };
        let sends_there = forward.backends.first().is_some_and(|b| b.cluster.service_port_part() == service_port);
        forward.canary.as_ref().filter(|_| sends_there).map(|canary| canary.origin.to_string())
    })
}

/// The Service port (and how it is spoken to, and its cluster) of the first main path the target
/// names, or why there is none.
fn main_upstream(build: Option<&HostBuild>, target: &Target<'_>) -> Result<(String, UpstreamOptions, ClusterName), &'static str> {
    let mut named = build.into_iter().flat_map(|b| &b.candidates).filter(|candidate| match &target.path {
        Some((path, path_type)) => candidate.path == *path && candidate.path_type == *path_type,
        None => true,
    });
    let mut seen = false;
    let found = named.find_map(|candidate| {
        seen = true;
        let RouteAction::Forward(forward) = &candidate.action else { return None };
        let cluster = &forward.backends.first()?.cluster;
        Some((cluster.service_port_part().to_string(), candidate.upstream.clone(), cluster.clone()))
    });
    match (found, seen) {
        (Some(main), _) => Ok(main),
        (None, true) => Err("the main Ingress does not send to a Service (missing Service or port, redirect, or denied) on"),
        (None, false) => Err("no main Ingress serves"),
    }
}

/// Give `action` the canary if it forwards to `service_port` and has none yet (the oldest canary
/// of an upstream wins). The canary's cluster is spoken to as the action's own cluster is.
fn join(
    action: &mut RouteAction,
    options: &UpstreamOptions,
    service_port: &str,
    canary: &CanaryIngress<'_>,
    target: &Target<'_>,
    backends: &mut Backends<'_>,
    diagnostics: &mut Diagnostics,
) -> bool {
    let RouteAction::Forward(forward) = action else { return false };
    let sends_there = forward.backends.first().is_some_and(|b| b.cluster.service_port_part() == service_port);
    if !sends_there || forward.canary.is_some() {
        return false;
    }
    // `legacy`: the canary does not inherit the main Ingress's sticky cookie (Envoy then sets
    // none for it: a round-robin cluster computes no hash).
    let legacy = canary.rules.legacy_affinity && forward.affinity_cookie.is_some();
    let options = &UpstreamOptions { balance: if legacy { Balance::RoundRobin } else { options.balance }, ..options.clone() };
    let Some(cluster) = backends.resolve_canary(&canary.key, &target.field, target.backend, options, diagnostics) else { return false };
    let rules = &canary.rules;
    forward.canary = Some(Box::new(Canary {
        cluster,
        header: rules.header.clone(),
        cookie: rules.cookie.clone(),
        weight: rules.weight,
        weight_total: rules.weight_total,
        origin: canary.key.origin(""),
        legacy_affinity: rules.legacy_affinity,
    }));
    true
}
