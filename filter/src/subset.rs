//! ingress-nginx's `upstream-hash-by-subset` (its `chashsubset` balancer): requests with the same
//! hash key reach one subset of `upstream-hash-by-subset-size` endpoints, spread at random within
//! it. Envoy has no such balancer, but it has a subset load balancer that picks among the
//! endpoints whose metadata match the request's. So the work is split three ways:
//! - the filter hashes the route's key (a header, cookie, query argument or the client address)
//!   into one of [`SLOTS`] slots ([`slot`]) and sends it in [`SUBSET_HEADER`];
//! - Envoy's header-to-metadata filter moves the header into the `envoy.lb` metadata, and the
//!   cluster's subset load balancer picks at random among the endpoints listing that slot under
//!   [`SUBSET_METADATA_KEY`];
//! - the control plane cuts a cluster's sorted endpoints into subsets as ingress-nginx does
//!   ([`subsets`]: consecutive runs of `size`, the last one filled up from the first endpoints) and
//!   lists on each endpoint the slots whose subset ([`subset_of_slot`]) holds it.
//!
//! The slot never depends on the endpoints, so endpoint changes touch EDS only, never the route
//! table. [`subset_of_slot`] is a jump consistent hash: a subset added or removed moves only the
//! slots it takes or gives up. Pure, no allocation but [`subsets`].

use serde::{Deserialize, Serialize};

use crate::canary::cookie_value;
use crate::request::split_path;

/// The request header carrying the slot from the filter to Envoy's header-to-metadata filter,
/// which removes it. Envoy removes any client-sent value before the filter runs (HCM early header
/// mutation), so no client can choose a subset.
pub const SUBSET_HEADER: &str = "x-wasm-ingress-subset";

/// The key, in the `envoy.lb` metadata of the request and of each endpoint, of the slot(s).
pub const SUBSET_METADATA_KEY: &str = "wasm-ingress-subset";

/// How many slots keys hash into. Each one is a subset Envoy builds per cluster (of
/// `upstream-hash-by-subset-size` endpoints); enough that subsets get a near-even share of keys.
pub const SLOTS: u32 = 128;

/// Where a route's hash key comes from (the nginx variable of `upstream-hash-by`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum HashKey {
    /// A request header, lower case (`$http_x_user` → `x-user`); `:path` is the client's own
    /// path with its query (`$request_uri`, before any rewrite), `:authority` the host (`$host`).
    Header { name: String },
    /// A cookie's value (`$cookie_NAME`; the name compared without regard to case, as nginx).
    Cookie { name: String },
    /// A query argument's value (`$arg_NAME`; the name compared without regard to case, as nginx).
    Query { name: String },
    /// The client's address (`$remote_addr`).
    SourceIp,
}

impl HashKey {
    /// The name this key reads, for checks; `None` for [`HashKey::SourceIp`].
    pub fn name(&self) -> Option<&str> {
        match self {
            HashKey::Header { name } | HashKey::Cookie { name } | HashKey::Query { name } => Some(name),
            HashKey::SourceIp => None,
        }
    }
}

/// The slot of a key's value (an absent value hashes as empty, as nginx's empty variable does:
/// every such request reaches one subset). FNV-1a, folded: the same in every worker and release.
pub fn slot(value: &[u8]) -> u32 {
    let hash = fnv1a(value);
    let folded = hash ^ (hash >> 32);
    // The remainder is below SLOTS, so it fits.
    u32::try_from(folded % u64::from(SLOTS)).unwrap_or(0)
}

/// FNV-1a (64 bits) of `bytes`: a fixed digest, the same in every worker and release.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The value of query argument `name` in `:path` (first occurrence; names compared without regard
/// to case, as nginx's `$arg_`); raw, not decoded, as nginx's variable.
pub fn query_arg<'p>(path: &'p [u8], name: &[u8]) -> Option<&'p [u8]> {
    let (_, query) = split_path(path);
    query?.split(|&b| b == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        key.eq_ignore_ascii_case(name).then_some(value)
    })
}

/// The key's value for a request, from the `cookie` header, the path or a header the caller
/// reads; `None`: the request has none.
pub fn key_value<'r>(key: &HashKey, path: &'r [u8], cookies: Option<&'r [u8]>) -> Option<&'r [u8]> {
    match key {
        HashKey::Query { name } => query_arg(path, name.as_bytes()),
        HashKey::Cookie { name } => cookies.and_then(|cookies| cookie_value(cookies, name.as_bytes())),
        HashKey::Header { name } if name == ":path" => Some(path),
        HashKey::Header { .. } | HashKey::SourceIp => None,
    }
}

/// The subset, of `subsets`, that `slot` belongs to: a jump consistent hash (Lamping and Veach)
/// of the slot, mixed first (splitmix64's finaliser) since slots are small consecutive numbers.
/// `subsets` of 0 gives 0.
pub fn subset_of_slot(slot: u32, subsets: u32) -> u32 {
    let mut key = u64::from(slot).wrapping_add(0x9e37_79b9_7f4a_7c15);
    key = (key ^ (key >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    key = (key ^ (key >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    key ^= key >> 31;
    let (mut bucket, mut next): (i64, i64) = (-1, 0);
    while next < i64::from(subsets) {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        let scale = (1u64 << 31) as f64 / ((key >> 33) + 1) as f64;
        next = ((bucket + 1) as f64 * scale) as i64;
    }
    u32::try_from(bucket.max(0)).unwrap_or(0)
}

/// ingress-nginx's subsets of `endpoints` (indexes, in their order): `ceil(n / size)` runs of
/// `size` consecutive endpoints, the last run filled up with the first endpoints again, so every
/// subset has `size` members (fewer only when there are fewer endpoints than `size`). A `size`
/// of 0 counts as 1.
pub fn subsets(endpoints: usize, size: usize) -> Vec<Vec<usize>> {
    let size = size.max(1);
    if endpoints == 0 {
        return Vec::new();
    }
    let count = endpoints.div_ceil(size);
    (0..count)
        .map(|subset| {
            let members = (subset * size..(subset + 1) * size).map(|i| i % endpoints);
            let mut members: Vec<usize> = members.collect();
            members.sort_unstable();
            members.dedup();
            members
        })
        .collect()
}

/// The slots each endpoint lists (by endpoint index), for `endpoints` cut into subsets of `size`.
pub fn endpoint_slots(endpoints: usize, size: usize) -> Vec<Vec<u32>> {
    let subsets = subsets(endpoints, size);
    let count = u32::try_from(subsets.len()).unwrap_or(u32::MAX);
    let mut slots = vec![Vec::new(); endpoints];
    for slot in 0..SLOTS {
        let Some(members) = subsets.get(subset_of_slot(slot, count) as usize) else { continue };
        for &endpoint in members {
            slots[endpoint].push(slot);
        }
    }
    slots
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_runs_of_size_with_the_last_one_filled_up_as_in_ingress_nginx() {
        assert_eq!(subsets(6, 3), vec![vec![0, 1, 2], vec![3, 4, 5]]);
        assert_eq!(subsets(7, 3), vec![vec![0, 1, 2], vec![3, 4, 5], vec![0, 1, 6]]);
        assert_eq!(subsets(2, 3), vec![vec![0, 1]], "fewer endpoints than size: one subset of all");
        assert_eq!(subsets(3, 0), vec![vec![0], vec![1], vec![2]]);
        assert!(subsets(0, 3).is_empty());
    }

    #[test]
    fn every_slot_reaches_exactly_one_subset_and_the_subsets_share_them_evenly() {
        for (endpoints, size) in [(6, 3), (7, 3), (30, 3), (100, 5), (1, 3)] {
            let subsets = subsets(endpoints, size);
            let count = u32::try_from(subsets.len()).unwrap();
            let mut share = vec![0u32; subsets.len()];
            for slot in 0..SLOTS {
                let subset = subset_of_slot(slot, count);
                assert!(subset < count, "{slot} of {count}");
                share[subset as usize] += 1;
            }
            let fair = SLOTS / count;
            assert!(share.iter().all(|&s| s > 0 && s <= fair * 2 + 2), "{endpoints}/{size}: {share:?}");
            let slots = endpoint_slots(endpoints, size);
            for slot in 0..SLOTS {
                let holders = slots.iter().filter(|listed| listed.contains(&slot)).count();
                assert_eq!(holders, subsets[subset_of_slot(slot, count) as usize].len(), "slot {slot} held by its subset's members");
            }
        }
    }

    #[test]
    fn a_subset_added_moves_only_the_slots_it_takes() {
        let moved = (0..SLOTS).filter(|&slot| subset_of_slot(slot, 4) != subset_of_slot(slot, 5)).count();
        assert!(moved < SLOTS as usize / 3, "{moved} of {SLOTS} slots moved when a fifth subset came");
        assert!((0..SLOTS).all(|slot| subset_of_slot(slot, 4) == subset_of_slot(slot, 5) || subset_of_slot(slot, 5) == 4));
    }

    #[test]
    fn slots_are_stable_and_spread() {
        assert_eq!(slot(b"/"), slot(b"/"));
        let distinct: std::collections::BTreeSet<u32> = (0..1000).map(|i| slot(format!("/item/{i}").as_bytes())).collect();
        assert!(distinct.len() > 100, "{}", distinct.len());
        assert!((0..1000).all(|i| slot(format!("/{i}").as_bytes()) < SLOTS));
        assert_eq!(subset_of_slot(5, 0), 0);
        assert_eq!(subset_of_slot(5, 1), 0);
    }

    #[test]
    fn key_values_are_read_as_nginx_variables() {
        let path = b"/a?Tenant=t1&x&tenant=t2";
        let cases: [(HashKey, Option<&[u8]>); 6] = [
            (HashKey::Query { name: "tenant".into() }, Some(b"t1")),
            (HashKey::Query { name: "x".into() }, Some(b"")),
            (HashKey::Query { name: "y".into() }, None),
            (HashKey::Cookie { name: "sid".into() }, Some(b"42")),
            (HashKey::Header { name: ":path".into() }, Some(path)),
            (HashKey::SourceIp, None),
        ];
        for (key, expected) in cases {
            assert_eq!(key_value(&key, path, Some(b"a=1; SID=42")), expected, "{key:?}");
        }
        assert_eq!(query_arg(b"/a#x?tenant=1", b"tenant"), None, "a fragment is not a query");
    }
}
