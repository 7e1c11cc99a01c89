//! ingress-nginx's sticky cookie (`affinity: cookie`) as its canary decisions see it. ingress-nginx
//! writes the cookie as `<endpoint key>|<backend key>`, and with a canary on the route a request
//! whose cookie names the main backend stays on it (canary rules included: even the canary header
//! loses), one whose cookie names the canary goes there (unless the canary Ingress says
//! `affinity-canary-behavior: legacy`), and only other requests meet the canary rules.
//!
//! Here Envoy's hash policy makes the cookie (`name="<hash>"`) and picks the endpoint from it, so
//! the filter adds the backend part on the way back ([`mark`]: the cluster it chose; the `=`
//! padding of the persistent cookie's base64 comes off, so that no `=` is in the value) and, on
//! the way in, reads it ([`backend_of`]) and takes it off again ([`unmarked`], the padding put
//! back) so that Envoy reads the value it made. The backend key is a digest of the cluster name ([`backend_key`]): opaque
//! and the same in every worker and release, as ingress-nginx's MD5 of the backend name. Pure.

use crate::canary::cookie_value;
use crate::subset::fnv1a;
use crate::table::Canary;

/// What separates the endpoint part from the backend part, as in ingress-nginx.
const DELIMITER: u8 = b'|';

/// The backend key of `cluster` in the sticky cookie (16 hex digits): of its Service port only
/// (`namespace/service/port`, without the `~options` suffix), as ingress-nginx keys it by
/// `namespace-service-port`, so a client stays on its backend when the upstream's options change.
pub fn backend_key(cluster: &str) -> String {
    let service_port = cluster.split_once('~').map_or(cluster, |(base, _)| base);
    format!("{:016x}", fnv1a(service_port.as_bytes()))
}

/// The backend part of cookie `name` in a `Cookie` header: what follows its last `|` (quotes
/// around the value ignored); `None` without the cookie or the part.
pub fn backend_of<'c>(cookies: &'c [u8], name: &str) -> Option<&'c [u8]> {
    let value = unquoted(cookie_value(cookies, name.as_bytes())?);
    let at = value.iter().rposition(|&b| b == DELIMITER)?;
    value.get(at + 1..)
}

/// Which backend the sticky cookie keeps the request on: `Some(false)` the main one (`main` is
/// its cluster), `Some(true)` the canary (not with `legacy_affinity`), `None` the canary rules
/// decide.
pub fn sticks_to_canary(backend: Option<&[u8]>, main: &str, canary: &Canary) -> Option<bool> {
    let backend = backend?;
    if backend == backend_key(main).as_bytes() {
        Some(false)
    } else if !canary.legacy_affinity && backend == backend_key(&canary.cluster).as_bytes() {
        Some(true)
    } else {
        None
    }
}

/// The `Cookie` header with cookie `name`'s backend part taken off (every occurrence); `None`
/// when nothing changes.
pub fn unmarked(cookies: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut changed = false;
    let pairs: Vec<Vec<u8>> = cookies
        .split(|&b| b == b';')
        .map(|pair| {
            let trimmed = pair.trim_ascii();
            let Some(eq) = trimmed.iter().position(|&b| b == b'=') else { return trimmed.to_vec() };
            let (key, value) = (trimmed[..eq].trim_ascii(), trimmed[eq + 1..].trim_ascii());
            if !key.eq_ignore_ascii_case(name.as_bytes()) {
                return trimmed.to_vec();
            }
            let inner = unquoted(value);
            let Some(at) = inner.iter().rposition(|&b| b == DELIMITER) else { return trimmed.to_vec() };
            changed = true;
            pair_with(key, value, &padded(&inner[..at]))
        })
        .collect();
    changed.then(|| pairs.join(&b"; "[..]))
}

/// `Set-Cookie` value `set_cookie` with `backend` added to cookie `name`'s value (inside its
/// quotes) and, given `expires` (a [`cookie_time`]), an `Expires` attribute unless it has one;
/// `None` for another cookie or one already marked.
pub fn mark(set_cookie: &[u8], name: &str, backend: &str, expires: Option<&str>) -> Option<Vec<u8>> {
    let end = set_cookie.iter().position(|&b| b == b';').unwrap_or(set_cookie.len());
    let (first, rest) = set_cookie.split_at(end);
    let eq = first.iter().position(|&b| b == b'=')?;
    let (key, value) = (first[..eq].trim_ascii(), first[eq + 1..].trim_ascii());
    if key != name.as_bytes() || unquoted(value).contains(&DELIMITER) {
        return None;
    }
    // Without base64's `=` padding (Envoy's persistent cookie has it; [`unmarked`] puts it back),
    // so that a client that cuts `Set-Cookie` at every `=` still sends the value back whole.
    let inner = unquoted(value);
    let bare = &inner[..inner.iter().rposition(|&b| b != b'=').map_or(0, |last| last + 1)];
    let marked = [bare, &[DELIMITER], backend.as_bytes()].concat();
    let mut out = pair_with(key, value, &marked);
    out.extend_from_slice(rest);
    let has_expires = rest.split(|&b| b == b';').any(|attribute| attribute.trim_ascii().to_ascii_lowercase().starts_with(b"expires="));
    if let Some(expires) = expires.filter(|_| !has_expires) {
        out.extend_from_slice(b"; Expires=");
        out.extend_from_slice(expires.as_bytes());
    }
    Some(out)
}

/// A time as nginx's `ngx.cookie_time` writes it, ingress-nginx's sticky cookie's `Expires`
/// (`Wed, 23-Dec-26 04:26:40 GMT`: two-digit year, dashes), from seconds since the epoch.
pub fn cookie_time(unix_seconds: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (days, second_of_day) = (unix_seconds / 86_400, unix_seconds % 86_400);
    // Days to a civil date (H. Hinnant's `civil_from_days`, for days on or after the epoch).
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 2 } else { month_from_march - 10 };
    let year = era * 400 + year_of_era + u64::from(month < 2);
    let name = |names: &[&'static str], index: u64| usize::try_from(index).ok().and_then(|i| names.get(i)).copied().unwrap_or("");
    format!(
        "{}, {day:02}-{}-{:02} {:02}:{:02}:{:02} GMT",
        name(&WEEKDAYS, days % 7),
        name(&MONTHS, month),
        year % 100,
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// A base64 value whose `=` padding [`mark`] took off, with it back (a multiple of 4 long);
/// anything else (the balanced cookie's 16 hex digits) as it is.
fn padded(value: &[u8]) -> Vec<u8> {
    let base64 = value.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    let missing = match value.len() % 4 {
        2 if base64 => 2,
        3 if base64 => 1,
        _ => 0,
    };
    [value, &b"=="[..missing]].concat()
}

/// `key=inner`, quoted as `value` was.
fn pair_with(key: &[u8], value: &[u8], inner: &[u8]) -> Vec<u8> {
    let quote: &[u8] = if unquoted(value).len() == value.len() { b"" } else { b"\"" };
    [key, b"=", quote, inner, quote].concat()
}

fn unquoted(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn canary(legacy_affinity: bool) -> Canary {
        Canary { cluster: "default/canary/80".into(), header: None, cookie: None, weight: 0, weight_total: 100, origin: Default::default(), legacy_affinity }
    }

    #[test]
    fn a_cookie_marked_with_a_backend_keeps_the_request_there_as_ingress_nginx() {
        let main = "default/main/80";
        let (main_key, canary_key) = (backend_key(main), backend_key("default/canary/80"));
        assert_ne!(main_key, canary_key);
        assert_eq!(main_key.len(), 16);
        assert_eq!(backend_key("default/main/80~494ea0984cd8"), main_key, "the Service port alone: an upstream option changed keeps the client");
        let cookie = |backend: &str| format!("a=1; aff=\"e3b0c442|{backend}\"").into_bytes();
        let cases = [
            (cookie(&main_key), false, Some(false)),
            (cookie(&canary_key), false, Some(true)),
            (cookie(&canary_key), true, None),
            (cookie(&main_key), true, Some(false)),
            (cookie("0123456789abcdef"), false, None),
            (b"aff=\"e3b0c442\"".to_vec(), false, None),
            (b"other=x".to_vec(), false, None),
        ];
        for (cookies, legacy, expected) in cases {
            let backend = backend_of(&cookies, "aff");
            assert_eq!(sticks_to_canary(backend, main, &canary(legacy)), expected, "{} legacy={legacy}", String::from_utf8_lossy(&cookies));
        }
    }

    #[test]
    fn the_mark_goes_on_envoys_cookie_and_comes_off_before_envoy_hashes_it() {
        let set = b"aff=\"e3b0c442\"; Max-Age=60; Path=/info; HttpOnly";
        let marked = mark(set, "aff", "0123456789abcdef", None).unwrap();
        assert_eq!(marked, b"aff=\"e3b0c442|0123456789abcdef\"; Max-Age=60; Path=/info; HttpOnly");
        assert_eq!(mark(&marked, "aff", "x", None), None, "marked once");
        assert_eq!(mark(set, "other", "x", None), None);
        assert_eq!(mark(b"aff=plain", "aff", "k", None).unwrap(), b"aff=plain|k");
        // Envoy's persistent cookie is padded base64: the padding comes off with the mark and
        // goes back with it (affinitymode.go's client cuts `Set-Cookie` at every `=`).
        for (envoy, sent) in [("MTI3LjAuMC4yMDE6ODA=", "MTI3LjAuMC4yMDE6ODA"), ("MTI3LjAuMC4yOjgw", "MTI3LjAuMC4yOjgw"), ("MTI3LjAuMC4yMDE6ODAw", "MTI3LjAuMC4yMDE6ODAw"), ("YQ==", "YQ")] {
            let marked = mark(format!("aff=\"{envoy}\"; Path=/").as_bytes(), "aff", "k", None).unwrap();
            assert_eq!(marked, format!("aff=\"{sent}|k\"; Path=/").as_bytes(), "{envoy}");
            assert_eq!(unmarked(format!("aff=\"{sent}|k\"").as_bytes(), "aff").unwrap(), format!("aff=\"{envoy}\"").as_bytes(), "{envoy}");
        }
        // session-cookie-expires: an Expires date, unless the cookie has one.
        let expires = Some("Wed, 23-Dec-26 04:26:40 GMT");
        assert_eq!(mark(b"aff=v; Max-Age=60", "aff", "k", expires).unwrap(), b"aff=v|k; Max-Age=60; Expires=Wed, 23-Dec-26 04:26:40 GMT");
        assert_eq!(mark(b"aff=v; expires=Thu, 01-Jan-70 00:00:00 GMT", "aff", "k", expires).unwrap(), b"aff=v|k; expires=Thu, 01-Jan-70 00:00:00 GMT");

        let sent = b"a=1; aff=\"e3b0c442|0123456789abcdef\"; b=2";
        assert_eq!(unmarked(sent, "aff").unwrap(), b"a=1; aff=\"e3b0c442\"; b=2");
        assert_eq!(unmarked(b"aff=plain|k", "aff").unwrap(), b"aff=plain");
        assert_eq!(unmarked(b"a=1; aff=\"e3b0c442\"", "aff"), None, "nothing to take off");
        assert_eq!(backend_of(sent, "aff"), Some(&b"0123456789abcdef"[..]));
    }

    #[test]
    fn cookie_times_are_written_as_nginx_writes_them() {
        // Python's time.strftime('%a, %d-%b-%y %H:%M:%S GMT', time.gmtime(t)).
        let rows = [
            (0, "Thu, 01-Jan-70 00:00:00 GMT"),
            (951_782_400, "Tue, 29-Feb-00 00:00:00 GMT"),
            (1_735_689_599, "Tue, 31-Dec-24 23:59:59 GMT"),
            (1_798_000_000, "Wed, 23-Dec-26 04:26:40 GMT"),
            (4_102_531_199, "Fri, 01-Jan-00 23:59:59 GMT"),
        ];
        for (seconds, written) in rows {
            assert_eq!(cookie_time(seconds), written, "{seconds}");
        }
    }
}
