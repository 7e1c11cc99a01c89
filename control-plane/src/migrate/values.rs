//! Annotations whose row in `docs/annotations.md` says `differs` or `no effect` although the
//! difference shows only for some values: for the values named here this controller does what
//! ingress-nginx does, so `migrate` reports them `same` (saying why) and flags only what a user
//! will notice. A rule applies only when translating the value said nothing that makes it differ
//! (see `classify`); values are read as ingress-nginx reads them.

/// Why `value` of the annotation `name` (after the prefix) behaves as in ingress-nginx, if it does
/// although the annotation's row says it differs.
pub fn same_for(name: &str, value: &str) -> Option<&'static str> {
    let value = value.trim();
    let is = |word: &str| value.eq_ignore_ascii_case(word);
    match name {
        // Translation warns when it differs from `proxy-read-timeout` (or is not a number).
        "proxy-send-timeout" if value.parse::<u64>().is_ok() => Some("equal to proxy-read-timeout, whose value Envoy's one idle timer applies in both directions: the same timeout nginx sets for reads and writes"),
        "backend-protocol" if is("HTTP") || is("HTTPS") => Some("HTTP, or HTTPS with nginx's proxy_ssl defaults (no SNI, the certificate not checked); the differences are GRPC/GRPCS's"),
        "proxy-buffering" if is("off") => Some("Envoy streams responses, as nginx does with buffering off (ingress-nginx's default)"),
        "proxy-request-buffering" if is("on") => Some("the body is buffered before it goes upstream and proxy-body-size counts it, as nginx's default"),
        "proxy-http-version" if value == "1.1" => Some("HTTP/1.1 is what Envoy speaks to backends"),
        "load-balance" if value == "round_robin" => Some("round robin per Envoy worker, as per nginx worker"),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::translate::ingress::registry::{self, Support};

    #[test]
    fn only_the_values_that_behave_as_in_ingress_nginx_are_the_same() {
        let cases: &[(&str, &str, bool)] = &[
            ("proxy-send-timeout", "3600", true),
            ("proxy-send-timeout", "3600s", false),
            ("backend-protocol", "HTTPS", true),
            ("backend-protocol", " https ", true),
            ("backend-protocol", "GRPC", false),
            ("backend-protocol", "AUTO_HTTP", false),
            ("proxy-buffering", "off", true),
            ("proxy-buffering", "on", false),
            ("proxy-request-buffering", "on", true),
            ("proxy-request-buffering", "off", false),
            ("proxy-http-version", "1.1", true),
            ("proxy-http-version", "1.0", false),
            ("load-balance", "round_robin", true),
            ("load-balance", "ewma", false),
            ("limit-rps", "10", false),
        ];
        for (name, value, same) in cases {
            assert_eq!(same_for(name, value).is_some(), *same, "{name}: {value:?}");
        }
    }

    #[test]
    fn every_rule_is_for_an_annotation_documented_as_differing() {
        for name in ["proxy-send-timeout", "backend-protocol", "proxy-buffering", "proxy-request-buffering", "proxy-http-version", "load-balance"] {
            let support = registry::lookup(name).map(|e| e.support);
            assert!(matches!(support, Some(Support::Differs | Support::NoEffect)), "{name}: {support:?}");
        }
    }
}
