//! Client-address ranges as nginx's `allow`/`deny` and `geo` read them: `a.b.c.d/n`, `x::y/n` or a
//! bare address, and whether an address is in one of them. Pure. Envoy's RBAC matches the address
//! lists of routes; the filter matches only where its own decision needs the answer first:
//! `limit-connections`' exempt clients, the lists of a `satisfy: any` route, and the addresses
//! the default server refuses (`RouteTable::default_server_denied`).

use std::net::IpAddr;

/// Most addresses and blocks in one list (a route's lists together, or the default server's).
pub const MAX_RANGES: usize = 1024;

/// Every entry of `ranges` is an address or a block, and there are at most [`MAX_RANGES`].
pub fn check_ranges<'r>(ranges: impl IntoIterator<Item = &'r String>) -> Result<(), String> {
    for (i, range) in ranges.into_iter().enumerate() {
        if i == MAX_RANGES {
            return Err(format!("more than {MAX_RANGES} address ranges"));
        }
        if parse(range).is_none() {
            return Err(format!("range {range:?} is not an address or CIDR block"));
        }
    }
    Ok(())
}

/// Whether `client` (an address without port) is in one of `ranges`; an address that does not
/// parse is in none.
pub fn listed(ranges: &[String], client: &str) -> bool {
    any_contains(ranges.iter().filter_map(|range| parse(range)), client)
}

/// `ranges` read once (what does not parse left out), for [`in_ranges`] on every request.
pub fn parse_all(ranges: &[String]) -> Vec<(IpAddr, u32)> {
    ranges.iter().filter_map(|range| parse(range)).collect()
}

/// [`listed`] for ranges [`parse_all`] read.
pub fn in_ranges(ranges: &[(IpAddr, u32)], client: &str) -> bool {
    any_contains(ranges.iter().copied(), client)
}

/// Whether one of `ranges` contains `client`; an address that does not parse is in none.
fn any_contains(mut ranges: impl Iterator<Item = (IpAddr, u32)>, client: &str) -> bool {
    let Ok(address) = client.parse::<IpAddr>() else { return false };
    ranges.any(|(network, bits)| contains(network, bits, address))
}

/// `a.b.c.d/n`, `x::y/n` or a bare address (all its bits).
pub fn parse(range: &str) -> Option<(IpAddr, u32)> {
    let (address, bits) = match range.split_once('/') {
        Some((address, bits)) => (address.parse::<IpAddr>().ok()?, bits.parse::<u32>().ok()?),
        None => {
            let address = range.parse::<IpAddr>().ok()?;
            (address, if address.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if address.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((address, bits))
}

fn contains(network: IpAddr, bits: u32, address: IpAddr) -> bool {
    match (network, address) {
        (IpAddr::V4(network), IpAddr::V4(address)) => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(network) & mask == u32::from(address) & mask
        }
        (IpAddr::V6(network), IpAddr::V6(address)) => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(network) & mask == u128::from(address) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_like_nginx_geo() {
        let ranges: Vec<String> = ["10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "0.0.0.0/0"].iter().map(|s| s.to_string()).collect();
        let cases = [
            (&ranges[..1], "10.200.3.4", true),
            (&ranges[..1], "11.0.0.1", false),
            (&ranges[1..2], "192.168.1.7", true),
            (&ranges[1..2], "192.168.1.8", false),
            (&ranges[2..3], "2001:db8:1::5", true),
            (&ranges[2..3], "2001:db9::5", false),
            (&ranges[..1], "::ffff:10.0.0.1", false),
            (&ranges[3..4], "8.8.8.8", true),
            (&ranges[..3], "not-an-address", false),
        ];
        for (ranges, client, expected) in cases {
            assert_eq!(listed(ranges, client), expected, "{client} in {ranges:?}");
            assert_eq!(in_ranges(&parse_all(ranges), client), expected, "{client} in {ranges:?}, read once");
        }
    }
}
