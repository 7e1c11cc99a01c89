//! ingress-nginx's per-client request limits: `limit-rps`, `limit-rpm`, `limit-burst-multiplier`,
//! `limit-connections` and the exempt clients of `limit-allowlist` (old name `limit-whitelist`). ingress-nginx writes
//! `limit_req` with a zone per Ingress keyed by the client address, `burst = rate × multiplier`
//! (default 5), `nodelay`, and answers 503 past it; a `geo` block turns the key of allow-listed
//! clients empty, which nginx does not limit. Here that is Envoy's local rate limit on the route,
//! one token bucket per client address and per Ingress, per Envoy instance (as nginx's zones are
//! per pod), with the allow-listed addresses outside it. `limit-connections` is nginx's
//! `limit_conn` in a zone per Ingress keyed the same way (503 past it): Envoy has no per-client
//! concurrency limit, so the filter counts (see `wasm_ingress_filter::connections`). Pure.

use std::collections::BTreeMap;

use crate::model::{Cidr, Severity};

use super::annotations::{parse_ranges, AnnotationNote};
use super::behaviour::Reader;

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &["limit-allowlist", "limit-burst-multiplier", "limit-connections", "limit-rpm", "limit-rps", "limit-whitelist"];

const DEFAULT_BURST_MULTIPLIER: u64 = 5;

/// A per-client request rate (before it knows its Ingress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRate {
    /// Requests per `per_minute ? minute : second`.
    pub requests: u32,
    pub per_minute: bool,
    /// Requests a client may make at once (the bucket's size).
    pub burst: u32,
    /// Client addresses never limited (`limit-allowlist`), sorted.
    pub exempt: Vec<Cidr>,
}

/// A per-client cap on requests in progress (`limit-connections`, before it knows its Ingress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionCap {
    /// Requests one client may have in progress at once; at least 1.
    pub limit: u32,
    /// Client addresses never limited (`limit-allowlist`), sorted.
    pub exempt: Vec<Cidr>,
}

/// The per-client limits of an Ingress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientLimits {
    /// `limit-rps` / `limit-rpm`; `limit-rps` wins (only one applies here).
    pub rate: Option<RequestRate>,
    /// `limit-connections`.
    pub connections: Option<ConnectionCap>,
    /// (annotation, reason) of a value ingress-nginx rejects the Ingress for.
    pub refused: Option<(String, String)>,
}

/// The per-client limits of an Ingress. `0` (or no value) is no limit, as in ingress-nginx.
pub fn parse(annotations: &BTreeMap<String, String>) -> (ClientLimits, Vec<AnnotationNote>) {
    let mut reader = Reader::new(annotations);
    // ingress-nginx's `ValidateInt` (Go's Atoi) on these three: another value rejects the Ingress.
    for name in ["limit-connections", "limit-rps", "limit-rpm"] {
        if let Some(value) = reader.get(name).filter(|v| !v.is_empty() && !is_go_int(v)) {
            let reason = format!("{value:?} is not a whole number");
            reader.refuse(name, reason);
        }
    }
    let connections = reader.integer("limit-connections").filter(|n| *n > 0).map(saturate);
    let rps = reader.integer("limit-rps").filter(|n| *n > 0);
    let rpm = reader.integer("limit-rpm").filter(|n| *n > 0);
    let multiplier = burst_multiplier(&mut reader, rps.is_some() || rpm.is_some());
    if rps.is_some() && rpm.is_some() {
        reader.note("limit-rpm", Severity::Warning, "limit-rps is also set and is the one applied (ingress-nginx applies both)".into());
    }
    let exempt = exempt_clients(&mut reader);
    let connections = connections.map(|limit| ConnectionCap { limit, exempt: exempt.clone() });
    let rate = rps.map(|n| (n, false)).or(rpm.map(|n| (n, true))).map(|(requests, per_minute)| RequestRate {
        requests: saturate(requests),
        per_minute,
        burst: saturate(requests.saturating_mul(multiplier)),
        exempt,
    });
    (ClientLimits { rate, connections, refused: reader.refused }, reader.notes)
}

/// `limit-burst-multiplier`, read as ingress-nginx does: not a whole number, the default (5);
/// 0 or less beside a rate, a burst nginx refuses (`limit_req … burst=0` fails `nginx -t`, so the
/// admission webhook rejects the Ingress): the Ingress is refused.
fn burst_multiplier(reader: &mut Reader<'_>, limited: bool) -> u64 {
    let Some(value) = reader.get("limit-burst-multiplier").map(|v| v.trim().to_string()) else {
        return DEFAULT_BURST_MULTIPLIER;
    };
    match value.parse::<i64>() {
        Ok(multiplier) if multiplier > 0 => multiplier.unsigned_abs(),
        Ok(_) if limited => {
            reader.refuse("limit-burst-multiplier", format!("{value:?} makes the burst (rate × multiplier) 0 or less, which nginx refuses"));
            DEFAULT_BURST_MULTIPLIER
        }
        Ok(_) => DEFAULT_BURST_MULTIPLIER,
        Err(_) => {
            let message = format!("{value:?} is not a whole number (as ingress-nginx reads it); the default ({DEFAULT_BURST_MULTIPLIER}) applies");
            reader.note("limit-burst-multiplier", Severity::Warning, message);
            DEFAULT_BURST_MULTIPLIER
        }
    }
}

/// What Go's `strconv.Atoi` reads: an optional sign and decimal digits.
pub(super) fn is_go_int(value: &str) -> bool {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `limit-allowlist`, or without it its old name `limit-whitelist`. A list with an entry that is
/// not an address or block exempts nobody (a warning): the limit stays on for every client.
fn exempt_clients(reader: &mut Reader<'_>) -> Vec<Cidr> {
    let Some((name, value)) = ["limit-allowlist", "limit-whitelist"]
        .into_iter()
        .find_map(|name| reader.get(name).filter(|v| !v.trim().is_empty()).map(|v| (name, v)))
    else {
        return Vec::new();
    };
    match parse_ranges(value) {
        Ok(ranges) => ranges,
        Err(reason) => {
            reader.note(name, Severity::Warning, format!("{reason}; no client is exempt from the request limits"));
            Vec::new()
        }
    }
}

fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Option<RequestRate> {
        let annotations = pairs.iter().map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), v.to_string())).collect();
        parse(&annotations).0.rate
    }

    fn rate(requests: u32, per_minute: bool, burst: u32) -> Option<RequestRate> {
        Some(RequestRate { requests, per_minute, burst, exempt: Vec::new() })
    }

    #[test]
    fn rates_and_bursts_read_like_ingress_nginx() {
        assert_eq!(read(&[]), None);
        assert_eq!(read(&[("limit-rps", "0")]), None);
        assert_eq!(read(&[("limit-rps", "5")]), rate(5, false, 25));
        assert_eq!(read(&[("limit-rpm", "60"), ("limit-burst-multiplier", "2")]), rate(60, true, 120));
        assert_eq!(read(&[("limit-rps", "5"), ("limit-burst-multiplier", "many")]), rate(5, false, 25), "the default");
        assert!(!read(&[("limit-rps", "1"), ("limit-rpm", "60")]).unwrap().per_minute);
        assert_eq!(read(&[("limit-rps", "ten")]), None);
    }

    /// nginx refuses `burst=0` and below, so ingress-nginx's admission rejects such an Ingress;
    /// without a rate the multiplier is never written.
    #[test]
    fn a_burst_of_zero_or_less_refuses_the_ingress() {
        let refused = |pairs: &[(&str, &str)]| {
            let annotations = pairs.iter().map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), v.to_string())).collect();
            parse(&annotations).0.refused.map(|(name, _)| name)
        };
        let name = Some("nginx.ingress.kubernetes.io/limit-burst-multiplier".to_string());
        assert_eq!(refused(&[("limit-rps", "5"), ("limit-burst-multiplier", "0")]), name);
        assert_eq!(refused(&[("limit-rpm", "60"), ("limit-burst-multiplier", "-1")]), name);
        assert_eq!(refused(&[("limit-rps", "5"), ("limit-burst-multiplier", "1")]), None);
        assert_eq!(refused(&[("limit-connections", "5"), ("limit-burst-multiplier", "0")]), None, "limit_conn has no burst");
        assert_eq!(refused(&[("limit-burst-multiplier", "0")]), None);
    }

    #[test]
    fn allow_listed_clients_are_read_from_the_new_name_first() {
        let exempt = |pairs: &[(&str, &str)]| -> Vec<String> {
            read(pairs).unwrap().exempt.iter().map(|c| format!("{}/{}", c.address, c.prefix_len)).collect()
        };
        assert_eq!(exempt(&[("limit-rps", "5"), ("limit-whitelist", "10.0.0.0/8, 192.0.2.7")]), ["10.0.0.0/8", "192.0.2.7/32"]);
        assert_eq!(exempt(&[("limit-rps", "5"), ("limit-allowlist", "::1"), ("limit-whitelist", "10.0.0.0/8")]), ["::1/128"]);
        assert_eq!(exempt(&[("limit-rps", "5"), ("limit-allowlist", " "), ("limit-whitelist", "10.1.2.3/8")]), ["10.0.0.0/8"]);
        assert!(exempt(&[("limit-rps", "5"), ("limit-allowlist", "10.0.0.0/8, nope")]).is_empty(), "a bad list exempts nobody");
        let annotations = BTreeMap::from([
            ("nginx.ingress.kubernetes.io/limit-rps".to_string(), "5".to_string()),
            ("nginx.ingress.kubernetes.io/limit-allowlist".to_string(), "300.1.1.1".to_string()),
        ]);
        let notes = parse(&annotations).1;
        assert!(notes.iter().any(|(key, _, message)| key.ends_with("limit-allowlist") && message.contains("no client is exempt")), "{notes:?}");
    }

    #[test]
    fn connection_caps_read_like_ingress_nginx() {
        let cap = |pairs: &[(&str, &str)]| -> Option<(u32, Vec<String>)> {
            let annotations = pairs.iter().map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), v.to_string())).collect();
            let cap = parse(&annotations).0.connections?;
            Some((cap.limit, cap.exempt.iter().map(ToString::to_string).collect()))
        };
        assert_eq!(cap(&[]), None);
        assert_eq!(cap(&[("limit-connections", "0")]), None, "0 is no limit");
        assert_eq!(cap(&[("limit-connections", "-1")]), None);
        assert_eq!(cap(&[("limit-connections", "many")]), None);
        assert_eq!(cap(&[("limit-connections", " 8 ")]), Some((8, vec![])));
        assert_eq!(cap(&[("limit-connections", "8"), ("limit-whitelist", "10.0.0.0/8")]), Some((8, vec!["10.0.0.0/8".to_string()])));
        assert_eq!(cap(&[("limit-connections", "99999999999")]), Some((u32::MAX, vec![])));
        let annotations = BTreeMap::from([("nginx.ingress.kubernetes.io/limit-connections".to_string(), "8".to_string())]);
        assert_eq!(parse(&annotations).0.rate, None, "a connection cap alone limits no rate");
    }
}
