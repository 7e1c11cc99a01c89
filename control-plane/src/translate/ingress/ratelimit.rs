//! ingress-nginx's per-client request limits: `limit-rps`, `limit-rpm` and
//! `limit-burst-multiplier`. ingress-nginx writes `limit_req` with a zone per Ingress keyed by the
//! client address, `burst = rate × multiplier` (default 5), `nodelay`, and answers 503 past it;
//! here that is Envoy's local rate limit on the route, one token bucket per client address and per
//! Ingress, per Envoy instance (as nginx's zones are per pod). Pure.

use std::collections::BTreeMap;

use crate::model::Severity;

use super::annotations::AnnotationNote;
use super::behaviour::Reader;

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &["limit-burst-multiplier", "limit-rpm", "limit-rps"];

const DEFAULT_BURST_MULTIPLIER: u64 = 5;

/// A per-client request rate (before it knows its Ingress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRate {
    /// Requests per `per_minute ? minute : second`.
    pub requests: u32,
    pub per_minute: bool,
    /// Requests a client may make at once (the bucket's size).
    pub burst: u32,
}

/// The request limit of an Ingress; `limit-rps` wins over `limit-rpm` (only one applies here).
pub fn parse(annotations: &BTreeMap<String, String>) -> (Option<RequestRate>, Vec<AnnotationNote>) {
    let mut reader = Reader::new(annotations);
    let rps = reader.integer("limit-rps").filter(|n| *n > 0);
    let rpm = reader.integer("limit-rpm").filter(|n| *n > 0);
    let multiplier = reader.integer("limit-burst-multiplier").filter(|n| *n > 0).unwrap_or(DEFAULT_BURST_MULTIPLIER);
    if rps.is_some() && rpm.is_some() {
        reader.note("limit-rpm", Severity::Warning, "limit-rps is also set and is the one applied (ingress-nginx applies both)".into());
    }
    let rate = rps.map(|n| (n, false)).or(rpm.map(|n| (n, true))).map(|(requests, per_minute)| RequestRate {
        requests: saturate(requests),
        per_minute,
        burst: saturate(requests.saturating_mul(multiplier)),
    });
    (rate, reader.notes)
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
        parse(&annotations).0
    }

    #[test]
    fn rates_and_bursts_read_like_ingress_nginx() {
        assert_eq!(read(&[]), None);
        assert_eq!(read(&[("limit-rps", "0")]), None);
        assert_eq!(read(&[("limit-rps", "5")]), Some(RequestRate { requests: 5, per_minute: false, burst: 25 }));
        assert_eq!(read(&[("limit-rpm", "60"), ("limit-burst-multiplier", "2")]), Some(RequestRate { requests: 60, per_minute: true, burst: 120 }));
        assert!(!read(&[("limit-rps", "1"), ("limit-rpm", "60")]).unwrap().per_minute);
        assert_eq!(read(&[("limit-rps", "ten")]), None);
    }
}
