//! Incremental translation: when only Ingresses changed, translate again the hosts they touch —
//! not the whole state — and splice the result into the last translation.
//!
//! Translation interacts only within a host (paths conflict, regex mode, app-root and fallbacks
//! are per host; the oldest Ingress of a host wins), so the **affected** Ingresses are those of
//! our class that name one of the changed Ingresses' hosts (old or new), closed over the other
//! hosts those Ingresses name. They are translated alone (the same [`translate`], on the state
//! with only them as Ingresses), and their virtual hosts, policies, clusters, diagnostics and
//! served/denied marks replace the last translation's for those hosts and Ingresses.
//!
//! What crosses hosts, or reaches the model beyond a host's routes, makes the change a full
//! translation instead ([`retranslate`] answers why): a change to anything but Ingresses,
//! `--host-ownership=namespace`, canaries, `from-to-www-redirect` or `server-alias` anywhere
//! (they join hosts or upstreams across Ingresses); a changed Ingress whose TLS claims change (its
//! `spec.tls`, its age, or — when it has TLS entries — its rules' hosts; an Ingress added or
//! removed with TLS entries); among the affected Ingresses a catch-all default backend, external
//! or basic auth, client certificates, upstream client certificates, ssl-passthrough or
//! ssl-ciphers (they feed TLS listeners, auth clusters or password lists shared by the whole
//! model); a wildcard TLS name covering an affected host; a last table cut to fit or refused; a
//! spliced table the filter would refuse, too large, or at the regex cap. With TLS claims
//! unchanged, certificates, TLS servers and listeners are the last translation's, and so are the
//! `spec.tls` diagnostics of the affected Ingresses.
//!
//! The result equals a full translation (the tests check it change by change), except that
//! [`EndpointReads`](crate::model::EndpointReads) keep what the last translation read for the
//! affected Ingresses' old backends: a superset, which only makes an EndpointSlice change to
//! such a Service translate again instead of taking the endpoint fast path; and certificate
//! expiry warnings are those of the last full translation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::networking::v1::{Ingress, IngressTLS};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use wasm_ingress_filter::cluster::ClusterName;
use wasm_ingress_filter::limits::MAX_REGEX_ROUTES;
use wasm_ingress_filter::matcher::CompiledTable;
use wasm_ingress_filter::table::{PathMatch, RouteTable};

use crate::model::{Diagnostic, Translation};
use crate::state::{ClusterState, ObjectKey, ObjectKind};

use super::endpoints::replaced;
use super::claims;
use super::translator::complete_table;
use super::{covers, normalize_host, retain_used_clusters, OurClasses, parse_annotations, table_size, translate, HostOwnership, TranslateOptions, NGINX_PREFIX};

/// More changed Ingresses than this in one change: translate everything.
const MAX_CHANGED: usize = 64;
/// More affected Ingresses than this: translating everything costs about as much.
const MAX_AFFECTED: usize = 1024;
/// Passes over the Ingresses to close the affected hosts (each pass that adds none ends it).
const MAX_PASSES: usize = 8;

/// Annotations (after the nginx prefix; prefixes of names) that join hosts or upstreams across
/// Ingresses: any Ingress of ours carrying one makes every change a full translation.
const ACROSS_HOSTS: [&str; 3] = ["canary", "from-to-www-redirect", "server-alias"];
/// Annotations (prefixes) whose effect reaches the model beyond the Ingress's routes: TLS
/// listeners, auth clusters, password lists, client certificates.
const BEYOND_ROUTES: [&str; 7] = ["auth-type", "auth-url", "auth-tls-", "proxy-ssl-", "ssl-passthrough", "ssl-ciphers", "ssl-prefer-server-ciphers"];

/// Why a change is translated in full.
pub type FullBecause = &'static str;

/// `after`'s translation, made from `last` (the translation of `before`) by translating again
/// only the Ingresses the change affects; `Err` says why it must be a full translation.
/// `options` must be those `last` was made with, but for `now` (the expiry warnings are `last`'s).
pub fn retranslate(last: &Translation, before: &ClusterState, after: &ClusterState, options: &TranslateOptions) -> Result<Translation, FullBecause> {
    let mut translation = last.clone();
    retranslate_in_place(&mut translation, before, after, options)?;
    Ok(translation)
}

/// As [`retranslate`], into `last` itself: no copy of the whole translation (at 10 000 Ingresses
/// the first copy, into memory never touched, made the first change's splice take 104 ms instead
/// of 35; the later ones cost 5–10 ms each). Returns the clusters the splice added or replaced;
/// every other cluster is the one `last` had. On `Err`, `last`'s route table and policies may be partly spliced (its clusters,
/// diagnostics and marks are not): the caller must replace it with a full translation.
pub fn retranslate_in_place(last: &mut Translation, before: &ClusterState, after: &ClusterState, options: &TranslateOptions) -> Result<BTreeSet<ClusterName>, FullBecause> {
    if before.changed_kinds(after) != BTreeSet::from([ObjectKind::Ingress]) {
        return Err("objects other than Ingresses changed");
    }
    if options.host_ownership != HostOwnership::Merge {
        return Err("--host-ownership=namespace");
    }
    if options.defaults.global_auth.global_auth_url.is_some() {
        return Err("--global-auth-url: every Ingress uses auth");
    }
    if last.diagnostics.iter().any(|d| d.object.kind == "RouteTable" || d.message.starts_with(table_size::NOT_SERVED)) {
        return Err("the last route table was refused or cut to fit");
    }
    let changed = replaced(&before.ingresses, &after.ingresses);
    if changed.len() > 2 * MAX_CHANGED {
        return Err("too many Ingresses changed at once");
    }
    // IngressClasses did not change: one reading serves both states.
    let classes = OurClasses::new(after, options);
    let mut hosts = BTreeSet::new();
    let mut redone: BTreeSet<ObjectKey> = BTreeSet::new();
    for (key, ingress) in changed {
        if redone.insert(key.clone()) {
            same_tls_claims(key, before, after, &classes)?;
        }
        if super::catch_all(options, ingress) {
            return Err("a catch-all Ingress under --disable-catch-all");
        }
        if classes.contain(ingress) {
            // The old version too: a canary that goes takes its share off other hosts' paths.
            if across_hosts(ingress) {
                return Err(ACROSS_HOSTS_REASON);
            }
            self_contained(ingress)?;
            hosts.extend(own_hosts(ingress));
        }
    }
    let affected = affected(after, &classes, &mut hosts)?;
    for ingress in affected.values() {
        self_contained(ingress)?;
    }
    redone.extend(affected.keys().cloned());
    let alone = ClusterState { ingresses: Arc::new(affected), ..after.clone() };
    splice(last, translate(&alone, options), &hosts, &redone, options)
}

/// Whether Ingress `key` claims the same TLS names with the same Secrets, at the same age, before
/// and after: then every TLS claim, certificate and listener is what it was, and so are the
/// Ingress's `spec.tls` diagnostics (see [`splice`]).
fn same_tls_claims(key: &ObjectKey, before: &ClusterState, after: &ClusterState, classes: &OurClasses) -> Result<(), FullBecause> {
    fn claims<'s>(key: &ObjectKey, state: &'s ClusterState, classes: &OurClasses) -> Option<TlsClaims<'s>> {
        state.ingresses.get(key).filter(|ingress| classes.contain(ingress)).and_then(|ingress| tls_claims(ingress))
    }
    if claims(key, before, classes) == claims(key, after, classes) {
        Ok(())
    } else {
        Err("an Ingress's TLS entries changed")
    }
}

/// An Ingress's TLS entries, its age and its rules' hosts.
type TlsClaims<'i> = (&'i Vec<IngressTLS>, Option<&'i Time>, Vec<String>);

/// What an Ingress's TLS claims depend on: its entries, its age (the oldest wins a name) and its
/// rules' hosts (claimed by an entry without hosts, or by a certificate that names them); `None`
/// when it claims nothing (no entries, no spec, or a value ingress-nginx rejects, which serves
/// nothing of the Ingress).
fn tls_claims(ingress: &Ingress) -> Option<TlsClaims<'_>> {
    let spec = ingress.spec.as_ref()?;
    let entries = spec.tls.as_ref().filter(|tls| !tls.is_empty())?;
    let (nginx, _) = parse_annotations(ingress.metadata.annotations.as_ref(), ingress.metadata.namespace.as_deref().unwrap_or_default());
    if nginx.behaviour.refused.is_some() && nginx.denied.is_none() {
        return None;
    }
    // Rule hosts: an entry without hosts serves them all, and a certificate that names one serves
    // it even when no entry lists it.
    Some((entries, ingress.metadata.creation_timestamp.as_ref(), own_hosts(ingress)))
}

/// Whether `ingress`'s translation stays within its hosts' routes (its TLS claims are checked by
/// [`same_tls_claims`]).
fn self_contained(ingress: &Ingress) -> Result<(), FullBecause> {
    if let Some(spec) = &ingress.spec {
        if spec.rules.as_ref().is_none_or(Vec::is_empty) && spec.default_backend.is_some() {
            return Err("an affected Ingress is the catch-all default backend");
        }
    }
    if nginx_annotations(ingress).any(|name| BEYOND_ROUTES.iter().any(|prefix| name.starts_with(prefix))) {
        return Err("an affected Ingress uses auth, client certificates, ssl-passthrough or ssl-ciphers");
    }
    Ok(())
}

const ACROSS_HOSTS_REASON: FullBecause = "an Ingress uses canary, from-to-www-redirect or server-alias";

fn across_hosts(ingress: &Ingress) -> bool {
    nginx_annotations(ingress).any(|name| ACROSS_HOSTS.iter().any(|prefix| name.starts_with(prefix)))
}

fn nginx_annotations(ingress: &Ingress) -> impl Iterator<Item = &str> {
    ingress.metadata.annotations.iter().flatten().filter_map(|(name, _)| name.strip_prefix(NGINX_PREFIX))
}

/// The hosts an Ingress names: its rules' (the host-less ones as `""`) and its TLS entries'.
fn own_hosts(ingress: &Ingress) -> Vec<String> {
    let rules = ingress.spec.iter().flat_map(|spec| spec.rules.iter().flatten()).map(|rule| rule.host.as_deref().unwrap_or_default());
    rules.chain(tls_names(ingress)).filter_map(|host| normalize_host(host).ok()).collect()
}

/// The names an Ingress's TLS entries list, as written.
fn tls_names(ingress: &Ingress) -> impl Iterator<Item = &str> {
    ingress.spec.iter().flat_map(|spec| spec.tls.iter().flatten()).flat_map(|entry| entry.hosts.iter().flatten()).map(String::as_str)
}

/// Our Ingresses that name one of `hosts`, closed: `hosts` grows by the other hosts they name
/// until no Ingress adds one.
fn affected(state: &ClusterState, classes: &OurClasses, hosts: &mut BTreeSet<String>) -> Result<BTreeMap<ObjectKey, Arc<Ingress>>, FullBecause> {
    let mut ours = Vec::new();
    for (key, ingress) in state.ingresses.iter().filter(|(_, ingress)| classes.contain(ingress)) {
        if across_hosts(ingress) {
            return Err(ACROSS_HOSTS_REASON);
        }
        ours.push((key, ingress, own_hosts(ingress)));
    }
    let mut affected = BTreeMap::new();
    for _ in 0..MAX_PASSES {
        let known = hosts.len();
        for (key, ingress, names) in &ours {
            if !affected.contains_key(*key) && names.iter().any(|name| hosts.contains(name)) {
                affected.insert((*key).clone(), Arc::clone(ingress));
                hosts.extend(names.iter().cloned());
            }
        }
        if affected.len() > MAX_AFFECTED {
            return Err("the change affects too many Ingresses");
        }
        if hosts.len() == known {
            // The TLS names that may cover a host other than themselves (ssl-redirect's test).
            let wildcards: BTreeSet<String> = ours.iter().flat_map(|(_, ingress, _)| tls_names(ingress)).filter(|name| name.starts_with("*.")).map(str::to_ascii_lowercase).collect();
            if hosts.iter().any(|host| covers(&wildcards, host)) {
                return Err("a wildcard name covers an affected host");
            }
            return Ok(affected);
        }
    }
    Err("the affected hosts did not close")
}

/// Take the affected hosts and Ingresses into `translation` from `alone` (their translation
/// alone); returns the clusters added or replaced. Every check that can fail comes before the
/// clusters, diagnostics and marks change.
fn splice(translation: &mut Translation, alone: Translation, hosts: &BTreeSet<String>, redone: &BTreeSet<ObjectKey>, options: &TranslateOptions) -> Result<BTreeSet<ClusterName>, FullBecause> {
    if regex_routes(&translation.model.route_table) >= MAX_REGEX_ROUTES {
        return Err("the last route table is at the regex cap");
    }
    let model = &mut translation.model;
    let table = &mut model.route_table;
    let had: BTreeSet<String> = table.hosts.iter().map(|vhost| &vhost.host).filter(|host| hosts.contains(*host)).cloned().collect();
    table.hosts.retain(|vhost| !hosts.contains(&vhost.host));
    table.hosts.extend(alone.model.route_table.hosts.into_iter().filter(|vhost| hosts.contains(&vhost.host)));
    table.hosts.sort_by(|a, b| a.host.cmp(&b.host));
    if regex_routes(table) >= MAX_REGEX_ROUTES {
        return Err("the route table reaches the regex cap");
    }
    // The other hosts are the last table's, which passed the same check.
    if CompiledTable::check_except(table, |vhost| !hosts.contains(&vhost.host)).is_err() {
        return Err("the filter would refuse the spliced route table");
    }
    model.policies.extend(alone.model.policies);
    if complete_table(table, &mut model.policies, &options.error_page_token) > table_size::LIMIT {
        return Err("the route table is at its size limit");
    }
    let changed: BTreeSet<ClusterName> =
        alone.model.clusters.iter().filter(|(name, cluster)| model.clusters.get(*name) != Some(*cluster)).map(|(name, _)| name.clone()).collect();
    model.clusters.extend(alone.model.clusters);
    retain_used_clusters(&mut model.clusters, table);
    // Hosts came or went: which the controller's certificate must name (it depends on nothing
    // else a splice changes).
    let has: BTreeSet<&String> = model.route_table.hosts.iter().map(|vhost| &vhost.host).filter(|host| hosts.contains(*host)).collect();
    if had.iter().ne(has.iter().copied()) {
        model.shielded_names = claims::shielded_names(model);
    }

    // TLS claims are unchanged, but `alone` made them among the affected Ingresses only: their
    // `spec.tls` diagnostics stay the last translation's.
    let tls = |d: &Diagnostic| d.field.starts_with("spec.tls");
    let redone_ingress = |d: &Diagnostic| d.object.kind == "Ingress" && redone.contains(&ObjectKey::new(d.object.namespace.as_str(), d.object.name.as_str()));
    translation.diagnostics.retain(|d| tls(d) || !redone_ingress(d));
    translation.diagnostics.extend(alone.diagnostics.into_iter().filter(|d| !(tls(d) && redone_ingress(d))));
    translation.diagnostics.sort();
    translation.diagnostics.dedup();
    for marks in [&mut translation.served_ingresses, &mut translation.denied_ingresses, &mut translation.loaded_ingresses] {
        marks.retain(|key| !redone.contains(key));
    }
    translation.served_ingresses.extend(alone.served_ingresses);
    translation.denied_ingresses.extend(alone.denied_ingresses);
    translation.loaded_ingresses.extend(alone.loaded_ingresses);
    translation.endpoint_reads.queries.extend(alone.endpoint_reads.queries);
    translation.endpoint_reads.clusters.extend(alone.endpoint_reads.clusters);
    Ok(changed)
}

fn regex_routes(table: &RouteTable) -> usize {
    table.hosts.iter().flat_map(|vhost| &vhost.routes).filter(|route| matches!(route.path, PathMatch::Regex(_))).count()
}

#[cfg(test)]
mod tests;
