//! Which certificate Envoy offers for a TLS server name, and keeping a tenant's certificate from
//! being offered for a name its Ingress did not win. Pure: names in, an order, refusals and the
//! controller certificate's names out.
//!
//! Envoy's HTTPS listener holds every certificate in one filter chain (one route table for all
//! hosts) and picks one per connection as its `DefaultTlsCertificateSelector` does ([`Slots`]):
//! among the certificates with a DNS subjectAltName equal to the SNI, else those whose `*.rest`
//! covers the SNI's first label, the ECDSA one if the client offers its curve, else the RSA one,
//! else the first certificate listed; per name and key type the earlier certificate wins; with no
//! SNI, the first certificate the client can use. A certificate's SANs are chosen by whoever made
//! it, so a tenant could put another tenant's host in them and be offered for it — over the
//! victim's own certificate if listed earlier or of the key type the client prefers, or over a
//! wildcard the victim relies on.
//!
//! [`guard`] first orders the certificates so that, for every claimed name, the claimant comes
//! before the others carrying that name; then it asks, as Envoy would for each kind of client,
//! which certificate each claimed name (and, under `--host-ownership=namespace`, each owned host)
//! gets, and refuses every tenant certificate that would be offered for a name it was not given —
//! repeating, since a refusal hands its names to the next certificate, until nothing changes.
//! Certificates with the same chain are the same certificate here: a wildcard copied into several
//! namespaces is fine. The listing starts with the **fronts**: the `--default-ssl-certificate` if
//! any, then the controller's own certificate (ECDSA P-256, so that a client with no SNI never
//! scans on to a tenant's); their names win over everyone's, they are never refused, and what they
//! take from a claimant is reported. [`shield`] then finds the hosts served without a TLS claim
//! (ingress-nginx offers them its default certificate) that a tenant's certificate would still be
//! offered for — a wildcard of another namespace over a plain host — and the controller's
//! certificate names them exactly, so it is offered instead.

use std::collections::{BTreeMap, BTreeSet};

pub use crate::model::CertificateKey as Key;

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
    pub key: Key,
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

/// A claimed name for which Envoy offers a front certificate instead of the claimant's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadowed {
    pub server_name: String,
    pub certificate: String,
}

/// What to list and what not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Guarded {
    /// Tenant certificates in the order Envoy must list them (after the fronts).
    pub order: Vec<String>,
    pub refused: Vec<Refusal>,
    pub shadowed: Vec<Shadowed>,
}

/// The kinds of client whose certificate Envoy picks differently: one that cannot do ECDSA, a
/// browser (P-256 and P-384, no P-521), one offering every curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    RsaOnly,
    Browser,
    AllCurves,
}

const CLIENTS: [Client; 3] = [Client::RsaOnly, Client::Browser, Client::AllCurves];

impl Client {
    /// Whether Envoy selects a certificate with `key` for this client outright (an RSA one is
    /// only a fallback for a client that can do ECDSA).
    fn takes(self, key: Key) -> bool {
        match (self, key) {
            (Client::RsaOnly, key) => key == Key::Rsa,
            (_, Key::Rsa) => false,
            (Client::Browser, Key::EcdsaP521) => false,
            _ => true,
        }
    }
}

/// Order `tenants` after `fronts` and refuse those that would capture names. `claims`: server
/// name (`*.x` allowed) -> certificate name; `owners`: host -> namespace, empty unless hosts are
/// owned.
pub fn guard(fronts: &[Candidate], tenants: &[Candidate], claims: &BTreeMap<String, String>, owners: &BTreeMap<String, String>) -> Guarded {
    let by_name: BTreeMap<&str, &Candidate> = tenants.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut order = precedence_order(tenants, claims);
    let probes = probes(tenants, claims, owners);
    let mut guarded = Guarded::default();
    // Each pass refuses at least one certificate or ends the loop.
    for _ in 0..=tenants.len() {
        let listed: Vec<&Candidate> = fronts.iter().chain(order.iter().filter_map(|n| by_name.get(n.as_str()).copied())).collect();
        let slots = Slots::new(&listed);
        guarded.shadowed.clear();
        let mut refused_now: Option<Refusal> = None;
        'probes: for probe in &probes {
            let rightful = lookup(claims, probe)
                .and_then(|name| by_name.get(name.as_str()).copied().or(fronts.iter().find(|d| &d.name == name)));
            let mut shadowed = None;
            for client in CLIENTS {
                // No name matches: Envoy offers the first certificate, whoever claimed it.
                let Some(index) = slots.pick(probe, client) else { continue };
                match judge(listed[index], rightful, lookup(owners, probe), index < fronts.len()) {
                    Verdict::Fine => {}
                    Verdict::Shadowed(certificate) => shadowed = Some(Shadowed { server_name: probe.clone(), certificate }),
                    Verdict::Capture(victim) => {
                        refused_now = Some(Refusal { certificate: listed[index].name.clone(), server_name: probe.clone(), victim });
                        break 'probes;
                    }
                }
            }
            guarded.shadowed.extend(shadowed);
        }
        let Some(refusal) = refused_now else { break };
        order.retain(|name| *name != refusal.certificate);
        guarded.refused.push(refusal);
    }
    guarded.order = order;
    guarded
}

/// The hosts (`*.x` allowed) served without a TLS claim, and the exact names of `listed`
/// certificates under such a wildcard host, for which Envoy would offer a client that can do
/// ECDSA a tenant's certificate (`listed`: fronts, then tenants in order): the controller's
/// certificate (a front, ECDSA P-256) must name them. Clients that cannot do ECDSA are not
/// covered: the controller's certificate is ECDSA only.
pub fn shield(listed: &[&Candidate], fronts: usize, claims: &BTreeMap<String, String>, plain_hosts: &BTreeSet<String>) -> Vec<String> {
    let plain: BTreeMap<String, String> =
        plain_hosts.iter().filter(|host| lookup(claims, host).is_none()).map(|host| (host.clone(), String::new())).collect();
    // A wildcard over a claimed name is not shielded: the controller's `*.x` would be offered for
    // that name too (the claimant's certificate, if a wildcard itself, comes later).
    let mut probes: BTreeSet<&String> = plain.keys().filter(|host| !wildcard_over_claims(host, claims)).collect();
    for name in listed.iter().flat_map(|c| &c.names).filter(|n| !n.starts_with("*.")) {
        if lookup(claims, name).is_none() && lookup(&plain, name).is_some() {
            probes.insert(name);
        }
    }
    let slots = Slots::new(listed);
    let to_tenant = |probe: &str, client| slots.pick(probe, client).is_some_and(|index| index >= fronts);
    probes.into_iter().filter(|probe| [Client::Browser, Client::AllCurves].into_iter().any(|client| to_tenant(probe, client))).cloned().collect()
}

/// Whether `host` is a wildcard `*.x` and a claimed name is `y.x`.
fn wildcard_over_claims(host: &str, claims: &BTreeMap<String, String>) -> bool {
    let Some(rest) = host.strip_prefix('*') else { return false };
    claims.keys().any(|name| name.find('.').is_some_and(|dot| &name[dot..] == rest))
}

enum Verdict {
    Fine,
    /// A front certificate takes a name claimed with this one.
    Shadowed(String),
    Capture(Victim),
}

/// Whether offering `winner` for a name is right. `rightful`: the certificate the name is claimed
/// with; `owner`: the namespace owning it (namespace ownership only). A certificate of the
/// claimant's own namespace is only reordered, never refused: a tenant cannot capture from itself.
fn judge(winner: &Candidate, rightful: Option<&Candidate>, owner: Option<&String>, is_front: bool) -> Verdict {
    match rightful {
        Some(rightful) if rightful.identity == winner.identity => Verdict::Fine,
        Some(rightful) if is_front => Verdict::Shadowed(rightful.name.clone()),
        Some(rightful) if rightful.namespace == winner.namespace => Verdict::Fine,
        Some(rightful) => Verdict::Capture(Victim::Certificate(rightful.name.clone())),
        None => match owner {
            Some(namespace) if !is_front && *namespace != winner.namespace => Verdict::Capture(Victim::Namespace(namespace.clone())),
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

/// Envoy's map from name pattern (`.x` for `*.x`) to the first RSA and the first ECDSA
/// certificate carrying it, and the key of each listed certificate.
struct Slots {
    keys: Vec<Key>,
    names: BTreeMap<String, Pair>,
}

#[derive(Default)]
struct Pair {
    rsa: Option<usize>,
    ecdsa: Option<usize>,
}

impl Slots {
    fn new(listed: &[&Candidate]) -> Slots {
        let mut names: BTreeMap<String, Pair> = BTreeMap::new();
        for (index, candidate) in listed.iter().enumerate() {
            for name in &candidate.names {
                let pair = names.entry(pattern_key(name).to_string()).or_default();
                let slot = if candidate.key == Key::Rsa { &mut pair.rsa } else { &mut pair.ecdsa };
                slot.get_or_insert(index);
            }
        }
        Slots { keys: listed.iter().map(|c| c.key).collect(), names }
    }

    /// Index of the certificate Envoy offers `client` for `sni`; `None`: no name matches (Envoy
    /// offers the first certificate).
    fn pick(&self, sni: &str, client: Client) -> Option<usize> {
        let wildcard = || sni.get(1..)?.find('.').map(|dot| &sni[dot + 1..]).filter(|rest| rest.len() > 1);
        self.by_pattern(sni, client).or_else(|| wildcard().and_then(|rest| self.by_pattern(rest, client)))
    }

    /// The ECDSA certificate for `pattern` if the client takes its curve, else the RSA one (for a
    /// client that can do ECDSA, a fallback).
    fn by_pattern(&self, pattern: &str, client: Client) -> Option<usize> {
        let pair = self.names.get(pattern)?;
        pair.ecdsa.filter(|index| client.takes(self.keys[*index])).or(pair.rsa)
    }

    /// No SNI: the first certificate the client takes, else the first RSA one, else the first.
    #[cfg(test)]
    fn scan(&self, client: Client) -> usize {
        let usable = self.keys.iter().position(|key| client.takes(*key));
        usable.or_else(|| self.keys.iter().position(|key| *key == Key::Rsa)).unwrap_or(0)
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
            key: Key::EcdsaP256,
        }
    }

    fn rsa(name: &str, names: &[&str]) -> Candidate {
        Candidate { key: Key::Rsa, ..cert(name, names) }
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
            for client in CLIENTS.into_iter().skip(1) {
                assert_eq!(slots.pick(sni, client), expected, "{sni} {client:?}");
            }
        }
    }

    #[test]
    fn envoy_picks_by_key_type_before_list_order() {
        let victim = rsa("v/rsa", &["pay.example.com", "*.example.com"]);
        let intruder = cert("a/ec", &["pay.example.com"]);
        let p521 = Candidate { key: Key::EcdsaP521, ..cert("c/p521", &["*.example.com"]) };
        let listed = [&victim, &intruder, &p521];
        let slots = Slots::new(&listed);
        let cases = [
            // The same name: the ECDSA certificate for a client that can do ECDSA, however listed.
            ("pay.example.com", Client::RsaOnly, Some(0)),
            ("pay.example.com", Client::Browser, Some(1)),
            ("pay.example.com", Client::AllCurves, Some(1)),
            // A curve the client does not offer: the RSA certificate.
            ("www.example.com", Client::Browser, Some(0)),
            ("www.example.com", Client::AllCurves, Some(2)),
            ("www.example.com", Client::RsaOnly, Some(0)),
        ];
        for (sni, client, expected) in cases {
            assert_eq!(slots.pick(sni, client), expected, "{sni} {client:?}");
        }
        // An exact name only an ECDSA certificate carries: an RSA-only client falls to the wildcard.
        let exact_ec = cert("a/ec", &["pay.example.com"]);
        let listed = [&exact_ec, &victim];
        assert_eq!(Slots::new(&listed).pick("pay.example.com", Client::RsaOnly), Some(1));
    }

    #[test]
    fn without_sni_envoy_offers_the_first_certificate_the_client_takes() {
        let default = rsa("admin/default", &["corp.com"]);
        let controller = cert("controller", &["ingress.local"]);
        let tenant = Candidate { key: Key::EcdsaP384, ..cert("t/ec", &["t.com"]) };
        let tenant_rsa = rsa("t/rsa", &["t.com"]);
        // An RSA default alone in front: a client that can do ECDSA gets the tenant's.
        let listed = [&default, &tenant];
        assert_eq!(Slots::new(&listed).scan(Client::Browser), 1);
        // With the controller's ECDSA certificate after it, never a tenant's.
        let listed = [&default, &controller, &tenant, &tenant_rsa];
        let slots = Slots::new(&listed);
        assert_eq!([Client::RsaOnly, Client::Browser, Client::AllCurves].map(|c| slots.scan(c)), [0, 1, 1]);
        let listed = [&controller, &tenant, &tenant_rsa];
        assert_eq!(Slots::new(&listed).scan(Client::Browser), 0);
        // Without an RSA front, a client that cannot do ECDSA gets the first RSA certificate: the
        // gap the docs name.
        assert_eq!(Slots::new(&listed).scan(Client::RsaOnly), 2);
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
            Case {
                what: "an ECDSA certificate carrying an RSA claimant's name: no order helps (a client that can do ECDSA gets it wherever listed): refused",
                tenants: vec![rsa("v/tls", &["victim.com"]), cert("a/evil", &["evil.com", "victim.com"])],
                claims: vec![("evil.com", "a/evil"), ("victim.com", "v/tls")],
                owners: vec![],
                order: vec!["v/tls"],
                refused: vec![("a/evil", "victim.com")],
            },
            Case {
                what: "the same within one namespace: kept",
                tenants: vec![rsa("v/rsa", &["v.com"]), cert("v/ec", &["v.com"])],
                claims: vec![("v.com", "v/rsa")],
                owners: vec![],
                order: vec!["v/rsa", "v/ec"],
                refused: vec![],
            },
            Case {
                what: "an RSA certificate over an ECDSA claimant on a curve browsers lack: refused",
                tenants: vec![Candidate { key: Key::EcdsaP521, ..cert("v/p521", &["v.com"]) }, rsa("a/rsa", &["a.com", "v.com"])],
                claims: vec![("v.com", "v/p521"), ("a.com", "a/rsa")],
                owners: vec![],
                order: vec!["v/p521"],
                refused: vec![("a/rsa", "v.com")],
            },
        ];
        for case in cases {
            let guarded = guard(&[], &case.tenants, &map(&case.claims), &map(&case.owners));
            assert_eq!(guarded.order, case.order, "{}", case.what);
            assert_eq!(refused(&guarded), case.refused, "{}", case.what);
            assert!(guarded.shadowed.is_empty(), "{}", case.what);
        }
    }

    #[test]
    fn refusal_names_the_victim() {
        let tenants = [cert("a/evil", &["x.victim.com"]), cert("v/wild", &["*.victim.com"])];
        let guarded = guard(&[], &tenants, &map(&[("*.victim.com", "v/wild")]), &BTreeMap::new());
        assert_eq!(guarded.refused[0].victim, Victim::Certificate("v/wild".into()));
        let guarded = guard(&[], &tenants[..1], &BTreeMap::new(), &map(&[("x.victim.com", "v")]));
        assert_eq!(guarded.refused[0].victim, Victim::Namespace("v".into()));
    }

    #[test]
    fn the_default_certificate_is_never_refused_and_what_it_takes_is_reported() {
        let default = cert("admin/default", &["*.corp.com", "shop.corp.com"]);
        let tenants = [cert("shop/tls", &["shop.corp.com"]), cert("api/tls", &["api.corp.com"])];
        let claims = map(&[("shop.corp.com", "shop/tls"), ("api.corp.com", "api/tls")]);
        let guarded = guard(&[default], &tenants, &claims, &BTreeMap::new());
        assert!(guarded.refused.is_empty());
        assert_eq!(guarded.order, vec!["api/tls", "shop/tls"]);
        assert_eq!(guarded.shadowed, vec![Shadowed { server_name: "shop.corp.com".into(), certificate: "shop/tls".into() }]);
    }

    #[test]
    fn plain_hosts_a_tenant_would_be_offered_for_are_shielded() {
        let controller = cert("controller", &["ingress.local"]);
        let default = rsa("admin/default", &["*.admin.com"]);
        let wild = cert("a/wild", &["*.corp.com"]);
        let wild_rsa = rsa("a/wild-rsa", &["*.rsa.com"]);
        let exact = cert("a/exact", &["x.corp.com", "a.com"]);
        let admin_wild = cert("t/admin", &["*.admin.com"]);
        let fronts = [default.clone(), controller.clone()];
        let claims = map(&[("a.corp.com", "a/wild"), ("a.com", "a/exact")]);
        let set = |hosts: &[&str]| hosts.iter().map(|h| h.to_string()).collect::<BTreeSet<String>>();
        let cases: [(&str, &[&str], &[&str]); 8] = [
            ("another namespace's plain host under a tenant's wildcard", &["a.corp.com", "b.corp.com"], &["b.corp.com"]),
            ("an RSA wildcard: a client that can do ECDSA still gets it", &["b.rsa.com"], &["b.rsa.com"]),
            ("a plain host no certificate names", &["plain.org"], &[]),
            ("under the default's RSA wildcard and a tenant's ECDSA one of the same pattern", &["b.admin.com"], &["b.admin.com"]),
            ("a claimed host", &["a.com"], &[]),
            ("a plain wildcard host over a claimed name: left to the claimant, its exact names shielded", &["*.corp.com"], &["x.corp.com"]),
            ("a plain wildcard host over an unclaimed SAN", &["*.rsa.com"], &["*.rsa.com"]),
            ("a plain host a tenant's exact name covers", &["x.corp.com"], &["x.corp.com"]),
        ];
        let listed = [&fronts[0], &fronts[1], &wild, &wild_rsa, &exact, &admin_wild];
        for (what, hosts, shielded) in cases {
            assert_eq!(shield(&listed, 2, &claims, &set(hosts)), shielded.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{what}");
        }
        // The default's RSA wildcard loses to a tenant's ECDSA one of the same pattern; without
        // the tenant's it keeps the name.
        let listed = [&fronts[0], &fronts[1], &wild];
        assert!(shield(&listed, 2, &claims, &set(&["b.admin.com"])).is_empty());
        // A tenant's exact name under a plain wildcard host is shielded, the wildcard (which no
        // certificate covers) not.
        let listed = [&controller, &exact];
        assert_eq!(shield(&listed, 1, &BTreeMap::new(), &set(&["*.corp.com"])), vec!["x.corp.com"]);
        // Once the controller's certificate carries them, every client that can do ECDSA gets it,
        // and the claimed names keep their certificates.
        let shielded = shield(&[&controller, &wild, &exact], 1, &claims, &set(&["a.corp.com", "b.corp.com", "c.corp.com"]));
        assert_eq!(shielded, vec!["b.corp.com", "c.corp.com"]);
        let mut names = controller.names.clone();
        names.extend(shielded);
        let with = Candidate { names, ..controller };
        let listed = [&with, &wild, &exact];
        let slots = Slots::new(&listed);
        for sni in ["b.corp.com", "c.corp.com"] {
            assert_eq!(slots.pick(sni, Client::Browser), Some(0), "{sni}");
        }
        assert_eq!(slots.pick("a.corp.com", Client::Browser), Some(1));
        let guarded = guard(&[with], &[wild, exact], &claims, &BTreeMap::new());
        assert!(guarded.refused.is_empty() && guarded.shadowed.is_empty());
    }
}
