//! ingress-nginx `limit-connections`: at most N requests of one client address in progress at once
//! per zone (an Ingress), as nginx's `limit_conn` with a zone per Ingress keyed by the client
//! address; past it the request is answered 503. Envoy has no per-client concurrency limit (its
//! circuit breakers count per cluster, its local rate limit counts requests per time), so the
//! filter counts.
//!
//! The counts live in proxy-wasm shared data, which Envoy keeps once per process for the VM id and
//! shares between every worker (as an nginx zone is shared by the workers of one pod). They are
//! spread over [`SLOTS`] keys chosen by a hash of zone and address; a slot's value is a short text
//! list of `count zone address` lines for the clients with requests in progress, and a count that
//! drops to zero is removed, so the memory held is bounded by the requests in progress, never by
//! the number of clients ever seen. This module is the pure part — the slot of a client, taking and
//! giving back one count in a slot's value (the exemption is [`crate::address::listed`]); `host` reads and writes the slot
//! with compare-and-swap and gives the count back when the request ends (`on_log`).

use crate::address;
use crate::table::ConnectionLimit;

/// Number of shared-data keys the counts are spread over.
pub const SLOTS: u64 = 1024;

/// Most clients (zone and address pairs) with requests in progress in one slot. A request that
/// would add one more is let through uncounted (see [`Take::Full`]).
pub const MAX_ENTRIES_PER_SLOT: usize = 64;

/// Compare-and-swap attempts to take a count before the request is let through uncounted.
pub const MAX_TAKE_ATTEMPTS: usize = 16;

/// Compare-and-swap attempts to give a count back (a count not given back would limit its client
/// for as long as the process runs, so this tries much harder than taking).
pub const MAX_RELEASE_ATTEMPTS: usize = 256;

/// Longest zone name.
pub const MAX_ZONE_BYTES: usize = 512;

/// Most exempt ranges of one limit.
pub const MAX_EXEMPT_RANGES: usize = 256;

/// The shared-data key of the slot that counts `client`'s requests in `zone`.
pub fn slot_key(zone: &str, client: &str) -> String {
    // FNV-1a: stable across workers and restarts of the VM, which must agree on the slot.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in zone.bytes().chain([0]).chain(client.bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("wasm-ingress/connections/{}", hash % SLOTS)
}

/// The result of taking one count in a slot's value.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// The slot's new value, with the client's count one higher.
    Taken(Vec<u8>),
    /// The client already has `limit` requests in progress: answer 503.
    Over,
    /// The slot holds [`MAX_ENTRIES_PER_SLOT`] other clients: the request is let through
    /// uncounted (so that many addresses crowding one slot cannot get other clients refused).
    Full,
}

/// One `count zone address` line of a slot's value.
struct Entry<'v> {
    count: u32,
    zone: &'v str,
    client: &'v str,
}

/// The entries of a slot's value; a line that does not parse (never written by this module) is
/// dropped.
fn entries(value: &[u8]) -> Vec<Entry<'_>> {
    let text = std::str::from_utf8(value).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let count = fields.next()?.parse().ok()?;
            let (zone, client) = (fields.next()?, fields.next()?);
            (fields.next().is_none() && count > 0).then_some(Entry { count, zone, client })
        })
        .collect()
}

fn encode(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = String::new();
    for entry in entries {
        out.push_str(&format!("{} {} {}\n", entry.count, entry.zone, entry.client));
    }
    out.into_bytes()
}

/// Take one count for `client` in `zone` from a slot's `value` (empty: no entries).
pub fn take(value: &[u8], zone: &str, client: &str, limit: u32) -> Take {
    let mut entries = entries(value);
    let held = entries.len();
    match entries.iter_mut().find(|e| e.zone == zone && e.client == client) {
        Some(entry) if entry.count >= limit => return Take::Over,
        Some(entry) => entry.count += 1,
        None if limit == 0 => return Take::Over,
        None if held >= MAX_ENTRIES_PER_SLOT => return Take::Full,
        None => entries.push(Entry { count: 1, zone, client }),
    }
    Take::Taken(encode(&entries))
}

/// Give one count of `client` in `zone` back: the slot's new value, or `None` when the slot has no
/// such count (nothing to write).
pub fn release(value: &[u8], zone: &str, client: &str) -> Option<Vec<u8>> {
    let mut entries = entries(value);
    let at = entries.iter().position(|e| e.zone == zone && e.client == client)?;
    match entries.get_mut(at) {
        Some(entry) if entry.count > 1 => entry.count -= 1,
        _ => {
            entries.remove(at);
        }
    }
    Some(encode(&entries))
}

/// A limit the filter can count with: a limit of at least 1, a zone of visible ASCII without
/// spaces, and exempt ranges that parse.
pub fn check(limit: &ConnectionLimit) -> Result<(), String> {
    if limit.limit == 0 {
        return Err("limit must be at least 1".into());
    }
    if !(400..=599).contains(&limit.status) {
        return Err(format!("status {} is not 400 to 599", limit.status));
    }
    if limit.zone.is_empty() || limit.zone.len() > MAX_ZONE_BYTES || !limit.zone.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("zone must be 1 to {MAX_ZONE_BYTES} visible ASCII characters without spaces"));
    }
    if limit.exempt.len() > MAX_EXEMPT_RANGES {
        return Err(format!("more than {MAX_EXEMPT_RANGES} exempt ranges"));
    }
    match limit.exempt.iter().find(|range| address::parse(range).is_none()) {
        Some(bad) => Err(format!("exempt range {bad:?} is not an address or CIDR block")),
        None => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn taken(take: Take) -> Vec<u8> {
        match take {
            Take::Taken(value) => value,
            other => panic!("expected a count taken, got {other:?}"),
        }
    }

    #[test]
    fn counts_per_zone_and_client_up_to_the_limit() {
        let mut slot = Vec::new();
        for _ in 0..3 {
            slot = taken(take(&slot, "default/app", "10.0.0.1", 3));
        }
        assert_eq!(take(&slot, "default/app", "10.0.0.1", 3), Take::Over);
        slot = taken(take(&slot, "default/app", "10.0.0.2", 3));
        slot = taken(take(&slot, "default/other", "10.0.0.1", 3));
        assert_eq!(String::from_utf8(slot.clone()).unwrap(), "3 default/app 10.0.0.1\n1 default/app 10.0.0.2\n1 default/other 10.0.0.1\n");
        slot = release(&slot, "default/app", "10.0.0.1").unwrap();
        slot = taken(take(&slot, "default/app", "10.0.0.1", 3));
        assert_eq!(take(&slot, "default/app", "10.0.0.1", 3), Take::Over, "a freed count is taken again");
        assert_ne!(take(&slot, "default/app", "10.0.0.1", 4), Take::Over, "a higher limit of a new table applies");
    }

    #[test]
    fn a_count_at_zero_is_removed_and_unknown_releases_write_nothing() {
        let slot = taken(take(b"", "z", "::1", 1));
        let slot = release(&slot, "z", "::1").unwrap();
        assert!(slot.is_empty(), "no entry is kept for a client without requests in progress");
        assert_eq!(release(&slot, "z", "::1"), None);
        assert_eq!(release(b"2 z 10.0.0.1\n", "y", "10.0.0.1"), None);
        assert_eq!(release(b"garbage line\n1 z a\n", "z", "a"), Some(Vec::new()), "unparsable lines are dropped");
    }

    #[test]
    fn a_full_slot_lets_new_clients_through_uncounted() {
        let mut slot = Vec::new();
        for i in 0..MAX_ENTRIES_PER_SLOT {
            slot = taken(take(&slot, "z", &format!("10.0.0.{i}"), 1));
        }
        assert_eq!(take(&slot, "z", "10.0.1.1", 1), Take::Full);
        assert_eq!(take(&slot, "z", "10.0.0.0", 1), Take::Over, "a counted client is still limited");
    }

    #[test]
    fn slots_are_stable_and_spread() {
        assert_eq!(slot_key("default/app", "10.0.0.1"), slot_key("default/app", "10.0.0.1"));
        let slots: std::collections::HashSet<String> = (0..=255).map(|i| slot_key("default/app", &format!("10.0.0.{i}"))).collect();
        assert!(slots.len() > 200, "256 clients land in {} slots", slots.len());
        assert!(slot_key("z", "a").starts_with("wasm-ingress/connections/"));
    }

    #[test]
    fn check_refuses_what_cannot_be_counted() {
        let limit = |limit: u32, zone: &str, exempt: &[&str]| ConnectionLimit {
            zone: zone.into(),
            limit,
            exempt: exempt.iter().map(|s| s.to_string()).collect(),
            status: ConnectionLimit::DEFAULT_STATUS,
        };
        assert!(check(&limit(8, "default/app", &["10.0.0.0/8", "::1"])).is_ok());
        assert!(check(&limit(0, "default/app", &[])).is_err());
        assert!(check(&limit(1, "", &[])).is_err());
        assert!(check(&limit(1, "a b", &[])).is_err());
        assert!(check(&limit(1, "a\nb", &[])).is_err());
        assert!(check(&limit(1, "z", &["10.0.0.0/33"])).is_err());
        assert!(check(&limit(1, "z", &["example.com"])).is_err());
        for (status, ok) in [(429, true), (400, true), (599, true), (399, false), (600, false), (200, false)] {
            assert_eq!(check(&ConnectionLimit { status, ..limit(1, "z", &[]) }).is_ok(), ok, "status {status}");
        }
    }
}
