//! `server-alias`: more names for a host, as ingress-nginx's `server_name` aliases. An alias serves
//! exactly what its host serves (every path of every Ingress on that host, its default backend,
//! redirects and policies), because in nginx it is one more name of the same `server` block. As in
//! ingress-nginx: the oldest Ingress of a host that sets aliases gives them (later ones are
//! ignored with a warning), a name some Ingress defines as a host is never an alias, and a name
//! two hosts ask for goes to the host first in name order (ingress-nginx writes its `server`
//! blocks sorted by host name, and nginx keeps the first `server_name` of a name). Pure.

use std::collections::BTreeMap;

use wasm_ingress_filter::table::VirtualHost;

use crate::model::Severity;
use crate::state::ObjectKey;

use super::annotations::{AnnotationNote, NGINX_PREFIX};
use super::backends::ingress_ref;
use super::{normalize_host, Diagnostics};

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &["server-alias"];

const ANNOTATION: &str = "server-alias";

/// The alias names of one Ingress: comma-separated, trimmed, lower-case, deduplicated, in order.
/// A name that is not a DNS name (or `*.` wildcard) is skipped with a warning; nginx's regular
/// expression names (`~…`) are not applied.
pub fn parse(annotations: &BTreeMap<String, String>) -> (Vec<String>, Vec<AnnotationNote>) {
    let key = format!("{NGINX_PREFIX}{ANNOTATION}");
    let mut aliases: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    let Some(value) = annotations.get(&key) else { return (aliases, notes) };
    for text in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match normalize_host(text) {
            Ok(alias) if !aliases.contains(&alias) => aliases.push(alias),
            Ok(_) => {}
            Err(reason) => notes.push((key.clone(), Severity::Warning, format!("alias {text:?} skipped: {reason}"))),
        }
    }
    (aliases, notes)
}

/// One host's aliases and the Ingress that gave them.
#[derive(Debug)]
struct Claim {
    host: String,
    ingress: ObjectKey,
    aliases: Vec<String>,
}

/// The aliases asked for, in the order Ingresses are translated (oldest first).
#[derive(Debug, Default)]
pub struct AliasClaims {
    claims: Vec<Claim>,
}

impl AliasClaims {
    /// `ingress` (translated in age order) asks for `aliases` on one of its rule hosts.
    pub fn claim(&mut self, host: &str, ingress: &ObjectKey, aliases: &[String], diagnostics: &mut Diagnostics) {
        if aliases.is_empty() {
            return;
        }
        let field = format!("metadata.annotations[{NGINX_PREFIX}{ANNOTATION}]");
        if host.is_empty() {
            let message = "a rule without host already answers every name no other rule has; no alias added".to_string();
            diagnostics.push(ingress_ref(ingress), field, Severity::Warning, message);
            return;
        }
        if let Some(first) = self.claims.iter().find(|c| c.host == host) {
            if first.ingress != *ingress {
                let message = format!(
                    "host {host:?} already takes its aliases from the older Ingress {}; ignored for this host (as ingress-nginx)",
                    first.ingress
                );
                diagnostics.push(ingress_ref(ingress), field, Severity::Warning, message);
            }
            return;
        }
        self.claims.push(Claim { host: host.to_string(), ingress: ingress.clone(), aliases: aliases.to_vec() });
    }

    /// The virtual hosts the aliases add: a copy of their host's, under the alias name. `defined`
    /// holds the translated hosts (an alias never replaces one). `served` gets alias → host.
    pub fn virtual_hosts(
        &self,
        defined: &[VirtualHost],
        served: &mut BTreeMap<String, String>,
        diagnostics: &mut Diagnostics,
    ) -> Vec<VirtualHost> {
        let by_name: BTreeMap<&str, &VirtualHost> = defined.iter().map(|v| (v.host.as_str(), v)).collect();
        let mut taken: BTreeMap<&str, &Claim> = BTreeMap::new();
        let mut added = Vec::new();
        let mut claims: Vec<&Claim> = self.claims.iter().collect();
        claims.sort_by(|a, b| a.host.cmp(&b.host));
        for claim in claims {
            let Some(original) = by_name.get(claim.host.as_str()) else { continue }; // every path was refused
            for alias in claim.aliases.iter().filter(|a| **a != claim.host) {
                let conflict = if by_name.contains_key(alias.as_str()) {
                    Some("is a host some Ingress defines, which serves it".to_string())
                } else {
                    taken.get(alias.as_str()).map(|first| {
                        format!("is already an alias of host {:?} (Ingress {}; nginx keeps the first server block naming it, in host-name order)", first.host, first.ingress)
                    })
                };
                if let Some(reason) = conflict {
                    let field = format!("metadata.annotations[{NGINX_PREFIX}{ANNOTATION}]");
                    let message = format!("alias {alias:?} of host {:?} {reason}; alias ignored (as ingress-nginx)", claim.host);
                    diagnostics.push(ingress_ref(&claim.ingress), field, Severity::Warning, message);
                    continue;
                }
                taken.insert(alias, claim);
                served.insert(alias.clone(), claim.host.clone());
                added.push(VirtualHost { host: alias.clone(), ..(*original).clone() });
            }
        }
        added
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(value: &str) -> (Vec<String>, usize) {
        let annotations = BTreeMap::from([(format!("{NGINX_PREFIX}server-alias"), value.to_string())]);
        let (aliases, notes) = parse(&annotations);
        (aliases, notes.len())
    }

    #[test]
    fn aliases_are_read_like_ingress_nginx() {
        let cases: &[(&str, &[&str], usize)] = &[
            ("foo.com", &["foo.com"], 0),
            ("foo.com, BAR.com ,foo.com", &["foo.com", "bar.com"], 0),
            (" , ", &[], 0),
            ("*.foo.com,~^www\\d+\\.foo\\.com$", &["*.foo.com"], 1),
            ("10.0.0.1,foo.com:80,ok.io", &["ok.io"], 2),
        ];
        for (value, expected, warnings) in cases {
            let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            assert_eq!(read(value), (expected, *warnings), "{value}");
        }
    }
}
