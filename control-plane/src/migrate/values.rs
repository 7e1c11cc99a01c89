//! Annotations whose row in `docs/annotations.md` says `differs` or `no effect` although the
//! difference shows only for some values: for the values named here this controller does what
//! ingress-nginx does, so `migrate` reports them `same` (saying why) and flags only what a user
//! will notice. A rule applies only when translating the value said nothing that makes it differ
//! (see `classify`); values are read as ingress-nginx reads them.

/// One rule: the annotation (after the prefix), which of its values behave as in ingress-nginx,
/// and why.
struct Rule {
    name: &'static str,
    same: fn(&str) -> bool,
    why: &'static str,
}

const RULES: &[Rule] = &[
    // Translation warns when it differs from `proxy-read-timeout` (or is not a number).
    Rule {
        name: "proxy-send-timeout",
        same: |value| value.parse::<u64>().is_ok(),
        why: "equal to proxy-read-timeout, whose value Envoy's one idle timer applies in both directions: the same timeout nginx sets for reads and writes",
    },
    Rule {
        name: "backend-protocol",
        same: |value| value.eq_ignore_ascii_case("HTTP") || value.eq_ignore_ascii_case("HTTPS"),
        why: "HTTP, or HTTPS with nginx's proxy_ssl defaults (no SNI, the certificate not checked); the differences are GRPC/GRPCS's",
    },
    Rule {
        name: "proxy-buffering",
        same: |value| value.eq_ignore_ascii_case("off"),
        why: "Envoy streams responses, as nginx does with buffering off (ingress-nginx's default)",
    },
    Rule {
        name: "proxy-request-buffering",
        same: |value| value.eq_ignore_ascii_case("on"),
        why: "the body is buffered before it goes upstream and proxy-body-size counts it, as nginx's default",
    },
    Rule { name: "proxy-http-version", same: |value| value == "1.1", why: "HTTP/1.1 is what Envoy speaks to backends" },
    Rule { name: "load-balance", same: |value| value == "round_robin", why: "round robin per Envoy worker, as per nginx worker" },
];

/// Why `value` of the annotation `name` (after the prefix) behaves as in ingress-nginx, if it does
/// although the annotation's row says it differs.
pub fn same_for(name: &str, value: &str) -> Option<&'static str> {
    RULES.iter().find(|rule| rule.name == name && (rule.same)(value.trim())).map(|rule| rule.why)
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
        for rule in RULES {
            let support = registry::lookup(rule.name).map(|e| e.support);
            assert!(matches!(support, Some(Support::Differs | Support::NoEffect)), "{}: {support:?}", rule.name);
        }
    }
}
