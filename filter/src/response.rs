//! ingress-nginx's `proxy-redirect-from`/`-to` and `proxy-cookie-domain`/`-path`: nginx's
//! `proxy_redirect`, `proxy_cookie_domain` and `proxy_cookie_path` applied to the upstream's
//! response headers, as pure functions over header values (Envoy has no header rewrite that
//! replaces part of a value, so the filter does it, only for routes that ask).
//!
//! - `proxy_redirect FROM TO`: a `Location` (or the URL of a `Refresh`) that starts with `FROM`
//!   (case-sensitive) has that prefix replaced by `TO`; a `Location` made relative that way gets
//!   the request's `scheme://host` in front when the route asks (nginx's `absolute_redirect`).
//! - `proxy_cookie_domain FROM TO`: a `Set-Cookie` whose `domain` attribute equals `FROM`
//!   (case-insensitive, a leading dot ignored and kept) gets `TO` instead.
//! - `proxy_cookie_path FROM TO`: a `Set-Cookie` whose `path` attribute starts with `FROM`
//!   (case-sensitive) has that prefix replaced by `TO`.
//!
//! As nginx: every `Set-Cookie` is handled on its own, attribute names match case-insensitively,
//! every matching attribute is rewritten, a cookie whose first pair has no `=` is left alone, and
//! a rewritten cookie is rebuilt as `k=v; k2=v2; flag` (spaces around parts trimmed).
//! `FROM` and `TO` may use the nginx variables of [`crate::auth::SIGNIN_VARIABLES`]; they are
//! filled once per request ([`Rewrites::for_request`]). A result longer than
//! [`MAX_LOCATION_BYTES`] leaves the header unchanged.
//!
//! ingress-nginx's `session-cookie-conditional-samesite-none` lives here too: for a user agent
//! its list says mishandles `SameSite=None` ([`same_site_none_compatible`]), the sticky cookie
//! (set by Envoy's hash policy, seen here on the way back) loses that attribute, as ingress-nginx
//! then sets its cookie without `SameSite`.

use crate::auth::{expand, Original};
use crate::limits::MAX_LOCATION_BYTES;
use crate::table::{Replacement, ResponseRewrite};

/// One route's rewrites with their variables filled for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrites {
    pub redirect: Option<(String, String)>,
    pub cookie_domain: Option<(String, String)>,
    pub cookie_path: Option<(String, String)>,
    /// `scheme://host` put in front of a `Location` the rewrite makes relative.
    pub origin: Option<String>,
    /// The cookie whose `SameSite=None` is dropped (this request's user agent mishandles it).
    pub strip_samesite_none: Option<String>,
    /// The sticky cookie (name, backend key) a new `Set-Cookie` of which gets the backend mark
    /// (see [`crate::affinity::mark`]).
    pub mark_cookie: Option<(String, String)>,
    /// The `Expires` date that cookie gets (`session-cookie-expires`, a [`crate::affinity::cookie_time`]).
    pub cookie_expires: Option<String>,
}

impl Rewrites {
    /// `rewrite` for the request `original` and its `User-Agent` (read only when the route has
    /// a conditional `SameSite=None`); a pair whose expansion fails (too long) is dropped.
    pub fn for_request(rewrite: &ResponseRewrite, original: &Original<'_>, user_agent: Option<&[u8]>) -> Rewrites {
        let fill = |pair: &Option<Replacement>| pair.as_ref().and_then(|r| Some((expand(&r.from, original)?, expand(&r.to, original)?)));
        Rewrites {
            redirect: fill(&rewrite.redirect),
            cookie_domain: fill(&rewrite.cookie_domain),
            cookie_path: fill(&rewrite.cookie_path),
            origin: rewrite.absolute_redirects.then(|| expand("$scheme://$host", original)).flatten(),
            strip_samesite_none: rewrite.conditional_samesite_none.clone().filter(|_| !same_site_none_compatible(user_agent)),
            mark_cookie: None,
            cookie_expires: None,
        }
    }

    /// Whether `Set-Cookie` headers need reading.
    pub fn rewrites_cookies(&self) -> bool {
        self.cookie_domain.is_some() || self.cookie_path.is_some() || self.strip_samesite_none.is_some() || self.mark_cookie.is_some()
    }

    /// The new `Location`, if it changes.
    pub fn location(&self, value: &[u8]) -> Option<Vec<u8>> {
        let new = self.redirected(value)?;
        match &self.origin {
            Some(origin) if new.first() == Some(&b'/') => bounded(origin.as_bytes().iter().chain(&new).copied().collect()),
            _ => Some(new),
        }
    }

    /// The new `Refresh` (`5; url=…`), if its URL changes (never made absolute, as nginx).
    pub fn refresh(&self, value: &[u8]) -> Option<Vec<u8>> {
        let start = find_ignore_case(value, b"url=")? + 4;
        let url = self.redirected(value.get(start..)?)?;
        bounded(value.get(..start)?.iter().chain(&url).copied().collect())
    }

    fn redirected(&self, url: &[u8]) -> Option<Vec<u8>> {
        let (from, to) = self.redirect.as_ref()?;
        replace_prefix(url, from.as_bytes(), to.as_bytes())
    }

    /// The new `Set-Cookie`, if its `domain` or `path` changes, it loses `SameSite=None` or it
    /// is the sticky cookie and gets its backend mark.
    pub fn set_cookie(&self, value: &[u8]) -> Option<Vec<u8>> {
        let marked = self.mark_cookie.as_ref().and_then(|(name, backend)| crate::affinity::mark(value, name, backend, self.cookie_expires.as_deref()));
        let value = marked.as_deref().unwrap_or(value);
        let rewritten = self.rewrite_set_cookie(value);
        rewritten.or(marked)
    }

    fn rewrite_set_cookie(&self, value: &[u8]) -> Option<Vec<u8>> {
        let parts: Vec<&[u8]> = value.split(|&b| b == b';').map(|part| part.trim_ascii()).filter(|part| !part.is_empty()).collect();
        let first = parts.first()?;
        let equals = first.iter().position(|&b| b == b'=')?;
        let strip = self.strip_samesite_none.as_ref().is_some_and(|name| first.get(..equals).is_some_and(|n| n.trim_ascii() == name.as_bytes()));
        let mut changed = false;
        let mut out = first.to_vec();
        for part in parts.iter().skip(1) {
            if strip && is_samesite_none(part) {
                changed = true;
                continue;
            }
            let new = self.attribute(part);
            changed |= new.is_some();
            out.extend_from_slice(b"; ");
            out.extend_from_slice(new.as_deref().unwrap_or(part));
        }
        if !changed {
            return None;
        }
        bounded(out)
    }

    /// One cookie attribute (`name=value`, trimmed), rewritten if it changes.
    fn attribute(&self, attribute: &[u8]) -> Option<Vec<u8>> {
        let equals = attribute.iter().position(|&b| b == b'=')?;
        let (name, value) = (attribute.get(..equals)?.trim_ascii(), attribute.get(equals + 1..)?.trim_ascii());
        let new_value = if name.eq_ignore_ascii_case(b"domain") {
            let (from, to) = self.cookie_domain.as_ref()?;
            replace_domain(value, from.as_bytes(), to.as_bytes())?
        } else if name.eq_ignore_ascii_case(b"path") {
            let (from, to) = self.cookie_path.as_ref()?;
            replace_prefix(value, from.as_bytes(), to.as_bytes())?
        } else {
            return None;
        };
        Some([name, b"="].concat().into_iter().chain(new_value).collect())
    }
}

/// A `SameSite=None` attribute (any case, spaces around `=` allowed).
/// An HTTP status as Envoy writes it (three digits, 100–599); anything else is none.
pub fn status_code(value: &[u8]) -> Option<u16> {
    let status: u16 = std::str::from_utf8(value).ok().filter(|v| v.len() == 3 && v.bytes().all(|b| b.is_ascii_digit()))?.parse().ok()?;
    (100..=599).contains(&status).then_some(status)
}

fn is_samesite_none(attribute: &[u8]) -> bool {
    let Some(equals) = attribute.iter().position(|&b| b == b'=') else { return false };
    let (name, value) = (&attribute[..equals], &attribute[equals + 1..]);
    name.trim_ascii().eq_ignore_ascii_case(b"samesite") && value.trim_ascii().eq_ignore_ascii_case(b"none")
}

/// ingress-nginx's `same_site_none_compatible` (its `lua/util/same_site.lua`, from Chromium's
/// list of clients that reject or mishandle `SameSite=None`): not a user agent containing
/// `Chrome/4`, `Chrome/5` or `Chrome/6` (so Chrome 40–69, wider than Chromium's 51–66, as
/// ingress-nginx matches), `CPU iPhone OS 12`, `iPad; CPU OS 12`, or Safari on macOS 10.14
/// (`Macintosh`, `Intel Mac OS X 10_14`, `Safari`, no `Chrome`). No user agent: compatible.
pub fn same_site_none_compatible(user_agent: Option<&[u8]>) -> bool {
    let Some(agent) = user_agent else { return true };
    let has = |needle: &[u8]| agent.windows(needle.len()).any(|window| window == needle);
    let old_chrome = [b"Chrome/4", b"Chrome/5", b"Chrome/6"].iter().any(|needle| has(*needle));
    let ios_12 = has(b"CPU iPhone OS 12") || has(b"iPad; CPU OS 12");
    let mojave_safari = has(b"Macintosh") && has(b"Intel Mac OS X 10_14") && has(b"Safari") && !has(b"Chrome");
    !(old_chrome || ios_12 || mojave_safari)
}

/// `value` with the prefix `from` replaced by `to`, if it starts with `from` (case-sensitive).
fn replace_prefix(value: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    let rest = value.strip_prefix(from)?;
    bounded(to.iter().chain(rest).copied().collect())
}

/// A cookie domain equal to `from` (case-insensitive; a leading dot ignored and kept) becomes `to`.
fn replace_domain(value: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    let dot = value.first() == Some(&b'.');
    let domain = if dot { value.get(1..)? } else { value };
    if !domain.eq_ignore_ascii_case(from) {
        return None;
    }
    bounded(if dot { [b".", to].concat() } else { to.to_vec() })
}

fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window.eq_ignore_ascii_case(needle))
}

fn bounded(value: Vec<u8>) -> Option<Vec<u8>> {
    (value.len() <= MAX_LOCATION_BYTES).then_some(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn pair(from: &str, to: &str) -> Option<(String, String)> {
        Some((from.to_string(), to.to_string()))
    }

    fn text(value: Option<Vec<u8>>) -> Option<String> {
        value.map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn only_three_digit_statuses_from_100_to_599_are_statuses() {
        for (value, want) in [(&b"200"[..], Some(200)), (b"599", Some(599)), (b"100", Some(100)), (b"099", None), (b"600", None), (b"20", None), (b"+20", None), (b"2000", None), (b"", None), (b"\xff00", None)] {
            assert_eq!(status_code(value), want, "{value:?}");
        }
    }

    #[test]
    fn location_and_refresh_have_the_from_prefix_replaced_case_sensitively() {
        let rewrites = Rewrites { redirect: pair("http://demo.local/", "http://demo.local/gateway/"), ..Rewrites::default() };
        let cases = [
            ("http://demo.local/login?x=1", Some("http://demo.local/gateway/login?x=1")),
            ("http://demo.local/", Some("http://demo.local/gateway/")),
            ("HTTP://demo.local/login", None),
            ("https://demo.local/login", None),
            ("/relative", None),
            ("", None),
        ];
        for (location, expected) in cases {
            assert_eq!(text(rewrites.location(location.as_bytes())).as_deref(), expected, "{location:?}");
        }
        assert_eq!(text(rewrites.refresh(b"5; URL=http://demo.local/next")).as_deref(), Some("5; URL=http://demo.local/gateway/next"));
        assert_eq!(text(rewrites.refresh(b"5; url=http://other/next")), None);
        assert_eq!(text(rewrites.refresh(b"5")), None);
        assert_eq!(Rewrites::default().location(b"http://demo.local/x"), None, "no proxy_redirect: unchanged");
    }

    #[test]
    fn cookie_domain_is_replaced_when_equal_ignoring_case_and_a_leading_dot() {
        let rewrites = Rewrites { cookie_domain: pair("localhost", "example.org"), ..Rewrites::default() };
        let cases = [
            ("sid=1; Domain=localhost; Path=/", Some("sid=1; Domain=example.org; Path=/")),
            ("sid=1; domain=.LocalHost", Some("sid=1; domain=.example.org")),
            ("sid=1; Domain=sub.localhost", None),
            ("sid=1; Path=/", None),
            ("domain=localhost", None),
        ];
        for (cookie, expected) in cases {
            assert_eq!(text(rewrites.set_cookie(cookie.as_bytes())).as_deref(), expected, "{cookie:?}");
        }
    }

    #[test]
    fn cookie_path_has_the_from_prefix_replaced_case_sensitively() {
        let rewrites = Rewrites { cookie_path: pair("/two/", "/"), cookie_domain: pair("a", "b"), ..Rewrites::default() };
        let cases = [
            ("id=7; path=/two/some/uri/; HttpOnly", Some("id=7; path=/some/uri/; HttpOnly")),
            ("id=7;Path=/two/;Domain=A", Some("id=7; Path=/; Domain=b")),
            ("id=7 ;  path = /two/x ; Secure;", Some("id=7; path=/x; Secure")),
            ("flag; Path=/two/", None),
            ("id=7; Path=/two/a; Path=/two/b", Some("id=7; Path=/a; Path=/b")),
            ("id=7; Path=/TWO/x", None),
            ("id=7; Path=/one/two/", None),
            ("id=7; Secure", None),
        ];
        for (cookie, expected) in cases {
            assert_eq!(text(rewrites.set_cookie(cookie.as_bytes())).as_deref(), expected, "{cookie:?}");
        }
    }

    #[test]
    fn user_agents_are_judged_as_ingress_nginx_judges_them() {
        let cases = [
            ("Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36", false),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/66.0.3359.181 Safari/537.36", false),
            ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/45.0.2454.85 Safari/537.36", false),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1", false),
            ("Mozilla/5.0 (iPad; CPU OS 12_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", false),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Safari/605.1.15", false),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/74.0.3729.169 Safari/537.36", true),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 13_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.0.5 Mobile/15E148 Safari/604.1", true),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", true),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:72.0) Gecko/20100101 Firefox/72.0", true),
            ("curl/8.5.0", true),
        ];
        for (agent, compatible) in cases {
            assert_eq!(same_site_none_compatible(Some(agent.as_bytes())), compatible, "{agent}");
        }
        assert!(same_site_none_compatible(None), "no user agent: SameSite=None is kept, as ingress-nginx");
    }

    #[test]
    fn the_sticky_cookie_loses_samesite_none_for_incompatible_agents_only() {
        let rewrite = ResponseRewrite { conditional_samesite_none: Some("route".into()), ..ResponseRewrite::default() };
        let original = Original::default();
        let old = Rewrites::for_request(&rewrite, &original, Some(b"Mozilla/5.0 (X11) Chrome/60.0 Safari/537.36"));
        let new = Rewrites::for_request(&rewrite, &original, Some(b"Mozilla/5.0 (X11) Chrome/120.0 Safari/537.36"));
        assert!(old.rewrites_cookies() && !new.rewrites_cookies());
        let cases = [
            ("route=\"abc\"; Max-Age=3600; Path=/; SameSite=None; HttpOnly", Some("route=\"abc\"; Max-Age=3600; Path=/; HttpOnly")),
            ("route=abc; samesite = none", Some("route=abc")),
            ("route=abc; SameSite=Lax", None),
            ("other=abc; SameSite=None", None),
            ("routes=abc; SameSite=None", None),
        ];
        for (cookie, expected) in cases {
            assert_eq!(text(old.set_cookie(cookie.as_bytes())).as_deref(), expected, "{cookie:?}");
            assert_eq!(new.set_cookie(cookie.as_bytes()), None, "a compatible agent keeps {cookie:?}");
        }
    }

    #[test]
    fn variables_are_filled_per_request_and_results_are_bounded() {
        let rewrite = ResponseRewrite {
            redirect: Some(Replacement { from: "$scheme://$host/".into(), to: "$scheme://$http_host/app/".into() }),
            cookie_domain: None,
            cookie_path: Some(Replacement { from: "/".into(), to: "/app/".into() }),
            absolute_redirects: false,
            conditional_samesite_none: None,
        };
        let original = Original { authority: b"Shop.Example:8443", uri: b"/x", https: true, ..Original::default() };
        let rewrites = Rewrites::for_request(&rewrite, &original, None);
        assert_eq!(rewrites.redirect, pair("https://shop.example/", "https://Shop.Example:8443/app/"));
        assert!(rewrites.rewrites_cookies());
        assert_eq!(text(rewrites.location(b"https://shop.example/login")).as_deref(), Some("https://Shop.Example:8443/app/login"));
        let absolute = Rewrites::for_request(
            &ResponseRewrite { redirect: Some(Replacement { from: "http://backend:8080/".into(), to: "/".into() }), absolute_redirects: true, ..ResponseRewrite::default() },
            &original,
            None,
        );
        assert_eq!(text(absolute.location(b"http://backend:8080/next")).as_deref(), Some("https://shop.example/next"), "nginx's absolute_redirect");
        assert_eq!(text(absolute.refresh(b"0; url=http://backend:8080/next")).as_deref(), Some("0; url=/next"), "Refresh stays relative");
        assert_eq!(text(absolute.location(b"/other")), None, "a Location the rule does not match is left as it is");
        let long = format!("https://shop.example/{}", "a".repeat(MAX_LOCATION_BYTES));
        assert_eq!(rewrites.location(long.as_bytes()), None, "too long: left unchanged");
    }
}
