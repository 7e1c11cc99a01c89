//! Which certificate Envoy offers for a TLS server name, and keeping a tenant's certificate from
//! being offered for a name its Ingress did not win. Pure: names in, an order and refusals out.
//!
//! Envoy's HTTPS listener holds every certificate in one filter chain (one route table for all
//! hosts) and picks one per connection as its `DefaultTlsCertificateSelector` does: the certificate
//! with a DNS subjectAltName equal to the SNI, else one whose `*.rest` covers the SNI's first
//! label, else the first certificate; when two certificates carry the same name, the earlier one
//! wins. A certificate's SANs are chosen by whoever made it, so a tenant could put another tenant's
//! host in them and be offered for it — over the victim's own certificate, if listed earlier, or
//! over a wildcard the victim relies on.
//!
//! [`guard`] first orders the certificates so that, for every claimed name, the claimant comes
//! before the others carrying that name; then it asks, as Envoy would, which certificate each
//! claimed name (and, under `--host-ownership=namespace`, each owned host) gets, and refuses every
//! tenant certificate that would be offered for a name it was not given — repeating, since a
//! refusal hands its names to the next certificate, until nothing changes. Certificates with the
//! same chain are the same certificate here: a wildcard copied into several namespaces is fine.
//! The `--default-ssl-certificate` is listed first (Envoy offers the first to clients with no or an
//! unknown SNI), so its names win over everyone's; it is never refused, the loss is reported.

use std::collections::{BTreeMap, BTreeSet};

/// One certificate as the guard sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// SDS name (`namespace/secret`).
    pub name: String,
    /// Namespace of its Secret.
    pub namespace: String,
    /// The names Envoy selects it by (`tls::certificate_names`).
    pub names: Vec<String>,
    /// What makes two candidates the same certificate (the PEM chain).
    pub identity: String,
}

/// Who a refused certificate would have taken a name from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Victim {
    /// The name is claimed in a TLS entry with this certificate.
    Certificate(String),
    /// The host belongs to this namespace (`--host-ownership=namespace`) and no TLS entry claims it.
    Namespace(String),
}

/// A certificate left out of the listener, and the first name it would have captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub certificate: String,
    pub server_name: String,
    pub victim: Victim,
}

/// A claimed name for which Envoy offers the default certificate instead of the claimant's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadowed {
    pub server_name: String,
    pub certificate: String,
}

/// What to list and what not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Guarded {
    /// Tenant certificates in the order Envoy must list them (after the default one).
    pub order: Vec<String>,
    pub refused: Vec<Refusal>,
    pub shadowed: Vec<Shadowed>,
}

/// Order `tenants` and refuse those that would capture names. `claims`: server name (`*.x`
/// allowed) -> certificate name; `owners`: host -> namespace, empty unless hosts are owned.
pub fn guard(
    default: Option<&Candidate>,
    tenants: &[Candidate],
    claims: &BTreeMap<String, String>,
    owners: &BTreeMap<String, String>,
) -> Guarded {
    let by_name: BTreeMap<&str, &Candidate> = tenants.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut order = precedence_order(tenants, claims);
    let probes = probes(tenants, claims, owners);
    let mut guarded = Guarded::default();
    // Each pass refuses at least one certificate or ends the loop.
    for _ in 0..=tenants.len() {
        let listed: Vec<&Candidate> = default.into_iter().chain(order.iter().filter_map(|n| by_name.get(n.as_str()).copied())).collect();
        let slots = Slots::new(&listed);
        guarded.shadowed.clear();
        let mut refused_now: Option<Refusal> = None;
        for probe in &probes {
            let Some(winner) = slots.pick(probe).map(|i| listed[i]) else { continue };
            let rightful = lookup(claims, probe)
                .and_then(|name| by_name.get(name.as_str()).copied().or(default.filter(|d| &d.name == name)));
            let is_default = default.is_some_and(|d| d.name == winner.name);
            match judge(winner, rightful, lookup(owners, probe), is_default) {
                Verdict::Fine => {}
                Verdict::Shadowed(certificate) => {
                    guarded.shadowed.push(Shadowed { server_name: probe.clone(), certificate });
                }
                Verdict::Capture(victim) => {
                    refused_now = Some(Refusal { certificate: winner.name.clone(), server_name: probe.clone(), victim });
                    break;
                }
            }
        }
        let Some(refusal) = refused_now else { break };
        order.retain(|name| *name != refusal.certificate);
        guarded.refused.push(refusal);
    }
    guarded.order = order;
    guarded
}

enum Verdict {
    Fine,
    /// The default certificate takes a name claimed with this one.
    Shadowed(String),
    Capture(Victim),
}

/// Whether offering `winner` for a name is right. `rightful`: the certificate the name is claimed
/// with; `owner`: the namespace owning it (namespace ownership only). A certificate of the
/// claimant's own namespace is only reordered, never refused: a tenant cannot capture from itself.
fn judge(winner: &Candidate, rightful: Option<&Candidate>, owner: Option<&String>, is_default: bool) -> Verdict {
    match rightful {
        Some(rightful) if rightful.identity == winner.identity => Verdict::Fine,
        Some(rightful) if is_default => Verdict::Shadowed(rightful.name.clone()),
        Some(rightful) if rightful.namespace == winner.namespace => Verdict::Fine,
        Some(rightful) => Verdict::Capture(Victim::Certificate(rightful.name.clone())),
        None => match owner {
            Some(namespace) if !is_default && *namespace != winner.namespace => Verdict::Capture(Victim::Namespace(namespace.clone())),
            _ => Verdict::Fine,
        },
    }
}

/// The claim (or owner) for `server_name`: exact, else the wildcard covering its first label.
fn lookup<'a>(map: &'a BTreeMap<String, String>, server_name: &str) -> Option<&'a String> {
    map.get(server_name).or_else(|| {
        let (_, rest) = server_name.split_once('.')?;
        map.get(&format!("*.{rest}"))
    })
}

/// The names whose certificate matters: every claimed or owned name, and every exact certificate
/// name a wildcard claim or owner covers (a SAN `a.example.com` beats a claimed `*.example.com`).
/// A wildcard name is probed as itself: Envoy finds no exact `*.x` and falls to the wildcard.
fn probes(tenants: &[Candidate], claims: &BTreeMap<String, String>, owners: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut probes: BTreeSet<String> = claims.keys().chain(owners.keys()).cloned().collect();
    for name in tenants.iter().flat_map(|c| &c.names).filter(|n| !n.starts_with("*.")) {
        if lookup(claims, name).is_some() || lookup(owners, name).is_some() {
            probes.insert(name.clone());
        }
    }
    probes
}

/// Envoy's map from name pattern (`.x` for `*.x`) to the first certificate carrying it.
struct Slots(BTreeMap<String, usize>);

impl Slots {
    fn new(listed: &[&Candidate]) -> Slots {
        let mut slots = BTreeMap::new();
        for (index, candidate) in listed.iter().enumerate() {
            for name in &candidate.names {
                slots.entry(pattern_key(name).to_string()).or_insert(index);
            }
        }
        Slots(slots)
    }

    /// Index of the certificate Envoy offers for `sni`; `None`: no name matches (the first one).
    fn pick(&self, sni: &str) -> Option<usize> {
        if let Some(index) = self.0.get(sni) {
            return Some(*index);
        }
        let dot = sni.find('.')?;
        self.0.get(&sni[dot..]).copied()
    }
}

fn pattern_key(name: &str) -> &str {
    name.strip_prefix('*').filter(|rest| rest.starts_with('.')).unwrap_or(name)
}

/// Tenants sorted so that each claimant precedes the other certificates carrying the name it
/// claims at the same level (exact, or the same wildcard); ties and cycles by name.
fn precedence_order(tenants: &[Candidate], claims: &BTreeMap<String, String>) -> Vec<String> {
    let mut before: BTreeMap<&str, BTreeSet<&str>> = tenants.iter().map(|c| (c.name.as_str(), BTreeSet::new())).collect();
    for (server_name, claimant) in claims {
        let Some(owner) = tenants.iter().find(|c| &c.name == claimant) else { continue };
        let Some(key) = owner.names.iter().map(|n| pattern_key(n)).find(|key| covers(key, server_name)) else { continue };
        for other in tenants.iter().filter(|c| c.identity != owner.identity) {
            if other.names.iter().any(|n| pattern_key(n) == key) {
                if let Some(set) = before.get_mut(other.name.as_str()) {
                    set.insert(owner.name.as_str());
                }
            }
        }
    }
    let mut order = Vec::with_capacity(tenants.len());
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    while placed.len() < before.len() {
        let ready = before.iter().find(|(name, deps)| !placed.contains(*name) && deps.iter().all(|d| placed.contains(d)));
        // A cycle: take the first unplaced by name; the simulation then refuses what still captures.
        let next = ready.or_else(|| before.iter().find(|(name, _)| !placed.contains(*name))).map(|(name, _)| *name);
        let Some(next) = next else { break };
        placed.insert(next);
        order.push(next.to_string());
    }
    order
}

/// Whether pattern `key` (`.x` for `*.x`) is how Envoy would select for `server_name`.
fn covers(key: &str, server_name: &str) -> bool {
    key == server_name
        || (key.starts_with('.') && server_name.find('.').is_some_and(|dot| &server_name[dot..] == key))
        || server_name.strip_prefix('*') == Some(key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn cert(name: &str, names: &[&str]) -> Candidate {
        Candidate {
            name: name.into(),
            namespace: name.split('/').next().unwrap().into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            identity: format!("chain of {name}"),
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    fn refused(guarded: &Guarded) -> Vec<(&str, &str)> {
        guarded.refused.iter().map(|r| (r.certificate.as_str(), r.server_name.as_str())).collect()
    }

    #[test]
    fn envoy_picks_exact_then_one_label_wildcard_then_nothing() {
        let a = cert("a/x", &["*.example.com", "example.com"]);
        let b = cert("b/y", &["shop.example.com", "*.example.com"]);
        let listed = [&a, &b];
        let slots = Slots::new(&listed);
        let cases = [
            ("shop.example.com", Some(1)),
            ("www.example.com", Some(0)),
            ("example.com", Some(0)),
            ("a.b.example.com", None),
            ("*.example.com", Some(0)),
            ("other.org", None),
        ];
        for (sni, expected) in cases {
            assert_eq!(slots.pick(sni), expected, "{sni}");
        }
    }

    #[test]
    fn cases() {
        struct Case {
            what: &'static str,
            tenants: Vec<Candidate>,
            claims: Vec<(&'static str, &'static str)>,
            owners: Vec<(&'static str, &'static str)>,
            order: Vec<&'static str>,
            refused: Vec<(&'static str, &'static str)>,
        }
        let cases = [
            Case {
                what: "disjoint certificates: name order, nothing refused",
                tenants: vec![cert("b/b", &["b.com"]), cert("a/a", &["a.com"])],
                claims: vec![("a.com", "a/a"), ("b.com", "b/b")],
                owners: vec![],
                order: vec!["a/a", "b/b"],
                refused: vec![],
            },
            Case {
                what: "an attacker listed first by name carries the victim's name: reordered, and refused for nothing",
                tenants: vec![cert("a/evil", &["evil.com", "victim.com"]), cert("v/tls", &["victim.com"])],
                claims: vec![("evil.com", "a/evil"), ("victim.com", "v/tls")],
                owners: vec![],
                order: vec!["v/tls", "a/evil"],
                refused: vec![],
            },
            Case {
                what: "an exact SAN under the victim's wildcard cannot be outranked: refused",
                tenants: vec![cert("a/evil", &["evil.com", "shop.victim.com"]), cert("v/wild", &["*.victim.com"])],
                claims: vec![("evil.com", "a/evil"), ("*.victim.com", "v/wild")],
                owners: vec![],
                order: vec!["v/wild"],
                refused: vec![("a/evil", "shop.victim.com")],
            },
            Case {
                what: "two namespaces' certificates naming each other's claimed host: no order is safe, both refused",
                tenants: vec![cert("a/a", &["a.com", "b.com"]), cert("b/b", &["b.com", "a.com"])],
                claims: vec![("a.com", "a/a"), ("b.com", "b/b")],
                owners: vec![],
                order: vec![],
                refused: vec![("a/a", "b.com"), ("b/b", "a.com")],
            },
            Case {
                what: "the same, within one namespace: reordered only (a tenant cannot capture from itself)",
                tenants: vec![cert("a/new", &["a.com", "b.com"]), cert("a/old", &["b.com", "a.com"])],
                claims: vec![("a.com", "a/new"), ("b.com", "a/old")],
                owners: vec![],
                order: vec!["a/new", "a/old"],
                refused: vec![],
            },
            Case {
                what: "the same wildcard copied into two namespaces is one certificate",
                tenants: vec![
                    Candidate { identity: "wild".into(), ..cert("a/wild", &["*.corp.com"]) },
                    Candidate { identity: "wild".into(), ..cert("b/wild", &["*.corp.com"]) },
                ],
                claims: vec![("a.corp.com", "a/wild"), ("b.corp.com", "b/wild")],
                owners: vec![],
                order: vec!["a/wild", "b/wild"],
                refused: vec![],
            },
            Case {
                what: "merge mode: a SAN for a host nobody claims for TLS is allowed",
                tenants: vec![cert("a/a", &["a.com", "plain.com"])],
                claims: vec![("a.com", "a/a")],
                owners: vec![],
                order: vec!["a/a"],
                refused: vec![],
            },
            Case {
                what: "namespace mode: a SAN for another namespace's host is refused",
                tenants: vec![cert("a/a", &["a.com", "plain.com"])],
                claims: vec![("a.com", "a/a")],
                owners: vec![("a.com", "a"), ("plain.com", "b")],
                order: vec![],
                refused: vec![("a/a", "plain.com")],
            },
            Case {
                what: "namespace mode: a wildcard over another namespace's host is refused too",
                tenants: vec![cert("a/wild", &["*.corp.com"])],
                claims: vec![("a.corp.com", "a/wild")],
                owners: vec![("a.corp.com", "a"), ("b.corp.com", "b")],
                order: vec![],
                refused: vec![("a/wild", "b.corp.com")],
            },
        ];
        for case in cases {
            let guarded = guard(None, &case.tenants, &map(&case.claims), &map(&case.owners));
            assert_eq!(guarded.order, case.order, "{}", case.what);
            assert_eq!(refused(&guarded), case.refused, "{}", case.what);
            assert!(guarded.shadowed.is_empty(), "{}", case.what);
        }
    }

    #[test]
    fn refusal_names_the_victim() {
        let tenants = [cert("a/evil", &["x.victim.com"]), cert("v/wild", &["*.victim.com"])];
        let guarded = guard(None, &tenants, &map(&[("*.victim.com", "v/wild")]), &BTreeMap::new());
        assert_eq!(guarded.refused[0].victim, Victim::Certificate("v/wild".into()));
        let guarded = guard(None, &tenants[..1], &BTreeMap::new(), &map(&[("x.victim.com", "v")]));
        assert_eq!(guarded.refused[0].victim, Victim::Namespace("v".into()));
    }

    #[test]
    fn the_default_certificate_is_never_refused_and_what_it_takes_is_reported() {
        let default = cert("admin/default", &["*.corp.com", "shop.corp.com"]);
        let tenants = [cert("shop/tls", &["shop.corp.com"]), cert("api/tls", &["api.corp.com"])];
        let claims = map(&[("shop.corp.com", "shop/tls"), ("api.corp.com", "api/tls")]);
        let guarded = guard(Some(&default), &tenants, &claims, &BTreeMap::new());
        assert!(guarded.refused.is_empty());
        assert_eq!(guarded.order, vec!["api/tls", "shop/tls"]);
        assert_eq!(guarded.shadowed, vec![Shadowed { server_name: "shop.corp.com".into(), certificate: "shop/tls".into() }]);
    }
}
