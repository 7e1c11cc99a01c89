//! ingress-nginx canary decisions, made as its balancer's `route_to_alternative_balancer` makes
//! them: the canary header first (`always` / `never`, or the configured value, or a match of the
//! configured pattern), then the canary cookie (`always` / `never`), then the weight. Anything a
//! rule does not recognise falls through to the next rule. Pure: the request's headers come
//! through [`HeaderLookup`], so the host shim reads a header only when a rule needs it.

use regex::Regex;

use crate::request::HeaderLookup;
use crate::table::{Canary, CanaryHeaderRule};


/// Whether the request goes to the canary. `pattern` is the compiled
/// [`CanaryHeaderRule::Pattern`] of `canary` (`None` for other rules); `random` is any value.
pub fn chooses_canary(canary: &Canary, pattern: Option<&Regex>, headers: &impl HeaderLookup, random: u64) -> bool {
    if let Some(rule) = &canary.header {
        if let Some(value) = headers.header(&rule.name) {
            if let Some(decided) = header_decides(&rule.rule, pattern, &value) {
                return decided;
            }
        }
    }
    if let Some(name) = &canary.cookie {
        let cookies = headers.header("cookie").unwrap_or_default();
        match cookie_value(&cookies, name.as_bytes()) {
            Some(b"always") => return true,
            Some(b"never") => return false,
            _ => {}
        }
    }
    by_weight(canary.weight, canary.weight_total, random)
}

/// What the canary header's `value` decides: `Some(true)` canary, `Some(false)` primary, `None`
/// the next rule decides.
fn header_decides(rule: &CanaryHeaderRule, pattern: Option<&Regex>, value: &[u8]) -> Option<bool> {
    match rule {
        CanaryHeaderRule::AlwaysNever => match value {
            b"always" => Some(true),
            b"never" => Some(false),
            _ => None,
        },
        CanaryHeaderRule::Value(expected) => (value == expected.as_bytes()).then_some(true),
        CanaryHeaderRule::Pattern(_) => {
            let text = String::from_utf8_lossy(value);
            pattern.is_some_and(|regex| regex.is_match(&text)).then_some(true)
        }
        CanaryHeaderRule::PresentMeansPrimary => Some(false),
    }
}

/// `weight` out of `total` requests (a `total` of 0 is read as 1).
fn by_weight(weight: u32, total: u32, random: u64) -> bool {
    let total = u64::from(total.max(1));
    random % total < u64::from(weight)
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`), the name compared without regard
/// to case as nginx's `$cookie_` variables do; the first occurrence wins.
pub fn cookie_value<'c>(cookies: &'c [u8], name: &[u8]) -> Option<&'c [u8]> {
    cookies.split(|&b| b == b';').find_map(|pair| {
        let pair = trim(pair);
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (key, value) = (trim(&pair[..eq]), trim(&pair[eq + 1..]));
        key.eq_ignore_ascii_case(name).then_some(value)
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::table::{CanaryHeader, Origin};

    struct Headers(HashMap<&'static str, &'static str>);

    impl HeaderLookup for Headers {
        fn header(&self, name: &str) -> Option<Vec<u8>> {
            self.0.get(name).map(|v| v.as_bytes().to_vec())
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> Headers {
        Headers(pairs.iter().copied().collect())
    }

    fn canary(rule: Option<CanaryHeaderRule>, cookie: Option<&str>, weight: u32) -> Canary {
        Canary {
            cluster: "default/canary/80".into(),
            header: rule.map(|rule| CanaryHeader { name: "x-canary".into(), rule }),
            cookie: cookie.map(String::from),
            weight,
            weight_total: 100,
            origin: Origin::default(),
            legacy_affinity: false,
        }
    }

    /// Cases from ingress-nginx's test/e2e/annotations/canary.go, weight 0 unless said.
    #[test]
    fn header_then_cookie_then_weight_as_in_ingress_nginx_e2e() {
        let pattern = Regex::new("^Do[A-Z][a-z]+y$").ok();
        let value = || Some(CanaryHeaderRule::Value("DoCanary".into()));
        type Row<'r> = (&'r str, Canary, Option<&'r Regex>, Vec<(&'static str, &'static str)>, bool);
        let rows: Vec<Row<'_>> = vec![
            ("no header", canary(Some(CanaryHeaderRule::AlwaysNever), None, 0), None, vec![], false),
            ("always", canary(Some(CanaryHeaderRule::AlwaysNever), None, 0), None, vec![("x-canary", "always")], true),
            ("never", canary(Some(CanaryHeaderRule::AlwaysNever), None, 100), None, vec![("x-canary", "never")], false),
            ("bad value", canary(Some(CanaryHeaderRule::AlwaysNever), None, 0), None, vec![("x-canary", "badheadervalue")], false),
            ("Always is not always", canary(Some(CanaryHeaderRule::AlwaysNever), None, 0), None, vec![("x-canary", "Always")], false),
            ("value", canary(value(), None, 0), None, vec![("x-canary", "DoCanary")], true),
            ("value: always means nothing", canary(value(), None, 0), None, vec![("x-canary", "always")], false),
            ("value: never falls through to weight", canary(value(), None, 100), None, vec![("x-canary", "never")], true),
            ("pattern", canary(Some(CanaryHeaderRule::Pattern("^Do[A-Z][a-z]+y$".into())), None, 0), pattern.as_ref(), vec![("x-canary", "DoCanary")], true),
            ("pattern is case-sensitive", canary(Some(CanaryHeaderRule::Pattern("^Do[A-Z][a-z]+y$".into())), None, 0), pattern.as_ref(), vec![("x-canary", "Docanary")], false),
            ("refused pattern: header keeps the primary", canary(Some(CanaryHeaderRule::PresentMeansPrimary), Some("CanaryByCookie"), 100), None, vec![("x-canary", "DoCanary"), ("cookie", "CanaryByCookie=always")], false),
            ("refused pattern: no header, cookie decides", canary(Some(CanaryHeaderRule::PresentMeansPrimary), Some("CanaryByCookie"), 0), None, vec![("cookie", "CanaryByCookie=always")], true),
            ("other header value, cookie always", canary(value(), Some("CanaryByCookie"), 0), None, vec![("x-canary", "other"), ("cookie", "a=b; CanaryByCookie=always")], true),
            ("cookie never beats weight", canary(None, Some("Canary-By-Cookie"), 100), None, vec![("cookie", "Canary-By-Cookie=never")], false),
            ("bad cookie value falls to weight", canary(None, Some("Canary-By-Cookie"), 0), None, vec![("cookie", "Canary-By-Cookie=badcookievalue")], false),
            ("cookie name any case", canary(None, Some("Canary-By-Cookie"), 0), None, vec![("cookie", "canary-by-cookie=always")], true),
            ("header always beats cookie never", canary(Some(CanaryHeaderRule::AlwaysNever), Some("c"), 0), None, vec![("x-canary", "always"), ("cookie", "c=never")], true),
            ("weight 100", canary(None, None, 100), None, vec![], true),
        ];
        for (name, canary, pattern, pairs, expected) in rows {
            for random in [0, 37, 99, u64::MAX] {
                assert_eq!(chooses_canary(&canary, pattern, &headers(&pairs), random), expected, "{name} (random {random})");
            }
        }
    }

    #[test]
    fn weight_is_a_share_of_the_total() {
        let mut config = canary(None, None, 30);
        let share = (0..1000u64).filter(|&r| chooses_canary(&config, None, &headers(&[]), r)).count();
        assert_eq!(share, 300);
        config.weight_total = 1000;
        config.weight = 1000;
        assert!((0..1000u64).all(|r| chooses_canary(&config, None, &headers(&[]), r)));
        config.weight = 0;
        assert!(!(0..1000u64).any(|r| chooses_canary(&config, None, &headers(&[]), r)));
    }

    #[test]
    fn cookie_values_are_found_in_any_cookie_header_shape() {
        let rows: [(&[u8], Option<&[u8]>); 6] = [
            (b"c=always", Some(b"always")),
            (b"a=1;c=never", Some(b"never")),
            (b" a=1 ;  C = always ", Some(b"always")),
            (b"cc=always; c", None),
            (b"=always; xc=1", None),
            (b"", None),
        ];
        for (header, expected) in rows {
            assert_eq!(cookie_value(header, b"c"), expected, "{}", String::from_utf8_lossy(header));
        }
    }
}
