//! Host names, read one way everywhere: the filter routing a request's authority, `explain`
//! describing one, the control plane checking an Ingress rule's host, and `bootstrap` checking the
//! xDS server's name. A [`HostName`] is lower case, without port and without a trailing dot, so two
//! spellings nginx treats as one host (`Shop.Example.com.:80`, `shop.example.com`) are one value.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

/// The longest DNS name (RFC 1035), without the trailing dot.
const MAX_NAME_BYTES: usize = 253;
/// The longest DNS label.
const MAX_LABEL_BYTES: usize = 63;

/// The host of an authority, as sent: its port removed (also for `[v6]:port`) and one trailing dot
/// removed (`foo.com.` is `foo.com`, as nginx treats it). Case is left alone.
pub fn host_of(authority: &[u8]) -> &[u8] {
    let host: &[u8] = if authority.first() == Some(&b'[') {
        match authority.iter().position(|&b| b == b']') {
            Some(end) => &authority[..=end],
            None => authority,
        }
    } else {
        match authority.iter().position(|&b| b == b':') {
            Some(colon) => &authority[..colon],
            None => authority,
        }
    };
    host.strip_suffix(b".").unwrap_or(host)
}

/// [`host_of`], lower-cased, borrowed when it already is: what the filter looks hosts up by on
/// every request. `None` if it is empty or not UTF-8.
///
/// One pass finds the port and any upper-case letter (every request pays it; a wasm instruction
/// per byte counts); an IPv6 literal takes [`host_of`].
pub fn normalized_authority(authority: &[u8]) -> Option<Cow<'_, str>> {
    let (host, upper) = if authority.first() == Some(&b'[') {
        let host = host_of(authority);
        (host, host.iter().any(u8::is_ascii_uppercase))
    } else {
        let mut upper = false;
        let mut end = authority.len();
        for (i, &b) in authority.iter().enumerate() {
            if b == b':' {
                end = i;
                break;
            }
            upper |= b.is_ascii_uppercase();
        }
        let host = authority.get(..end).unwrap_or(authority);
        (host.strip_suffix(b".").unwrap_or(host), upper)
    };
    let host = std::str::from_utf8(host).ok().filter(|host| !host.is_empty())?;
    Some(if upper { Cow::Owned(host.to_ascii_lowercase()) } else { Cow::Borrowed(host) })
}

/// A host name as routing compares it: lower case, no port, no trailing dot.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostName(String);

impl HostName {
    /// The host a request's authority (`Host` / `:authority`) names; `None` if it is empty or not
    /// UTF-8. The filter routes by exactly this (see [`normalized_authority`]).
    pub fn of_authority(authority: &[u8]) -> Option<HostName> {
        normalized_authority(authority).map(|host| HostName(host.into_owned()))
    }

    /// An Ingress rule's `host`: empty (every host), a DNS name, or `*.` and a DNS name; never an
    /// IP address, a port or a path. The error says what is wrong with it.
    pub fn ingress_rule(host: &str) -> Result<HostName, String> {
        let host = host.to_ascii_lowercase();
        if host.is_empty() {
            return Ok(HostName(host));
        }
        if host.parse::<IpAddr>().is_ok() || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
            return Err(format!("host {host:?} is an IP address; Ingress hosts must be DNS names"));
        }
        if host.contains(':') || host.contains('/') {
            return Err(format!("host {host:?} must be a DNS name without port or path"));
        }
        let name = host.strip_prefix("*.").unwrap_or(&host);
        if host.len() > MAX_NAME_BYTES || !is_dns_name(name) {
            let hint = if name.contains('*') { " (a wildcard must be the whole first label: *.example.com)" } else { "" };
            return Err(format!("host {host:?} is not a valid DNS name{hint}"));
        }
        Ok(HostName(host))
    }

    /// A server's DNS name (`xds.example.svc`, a trailing dot allowed and dropped); no wildcard.
    pub fn dns(name: &str) -> Result<HostName, String> {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if !is_dns_name(&name) {
            return Err(format!("{name:?} is not a DNS name"));
        }
        Ok(HostName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 1123: lower-case dot-separated labels of letters, digits and inner hyphens, 1-63 bytes
/// each, 253 in all.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_BYTES
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn host_of_drops_the_port_and_one_trailing_dot_but_keeps_ipv6_brackets() {
        let rows: [(&[u8], &[u8]); 7] = [
            (b"Example.COM:8080", b"Example.COM"),
            (b"example.com.", b"example.com"),
            (b"example.com.:443", b"example.com"),
            (b"[::1]:8080", b"[::1]"),
            (b"[::1]", b"[::1]"),
            (b"[::1", b"[::1"),
            (b"", b""),
        ];
        for (authority, host) in rows {
            assert_eq!(host_of(authority), host, "{}", String::from_utf8_lossy(authority));
        }
    }

    #[test]
    fn one_host_name_for_every_spelling_of_an_authority() {
        let rows: [(&[u8], Option<&str>); 12] = [
            (b"Shop.Example.COM.:8080", Some("shop.example.com")),
            (b"shop.example.com", Some("shop.example.com")),
            (b"[::1]:8080", Some("[::1]")),
            (b"[FE80::A]:443", Some("[fe80::a]")),
            (b"Example.COM:1", Some("example.com")),
            (b"Example.COM.", Some("example.com")),
            (b"CAF\xc3\x89.Test", Some("caf\u{c9}.test")),
            (b":80", None),
            (b".", None),
            (b".:80", None),
            (b"", None),
            (b"\xff\xfe.com", None),
        ];
        for (authority, host) in rows {
            assert_eq!(HostName::of_authority(authority).as_ref().map(HostName::as_str), host, "{:?}", String::from_utf8_lossy(authority));
            // The one-pass reading is host_of's, lower-cased.
            let reference = std::str::from_utf8(host_of(authority)).ok().filter(|h| !h.is_empty()).map(str::to_ascii_lowercase);
            assert_eq!(normalized_authority(authority).map(Cow::into_owned), reference, "{:?}", String::from_utf8_lossy(authority));
        }
        assert!(matches!(normalized_authority(b"shop.example.com:80"), Some(Cow::Borrowed("shop.example.com"))));
    }

    #[test]
    fn ingress_rule_hosts_are_dns_names_or_wildcards() {
        let ok = [("", ""), ("Foo.Example.com", "foo.example.com"), ("*.example.com", "*.example.com"), ("a-1.b", "a-1.b")];
        for (host, want) in ok {
            assert_eq!(HostName::ingress_rule(host).map(HostName::into_string), Ok(want.to_string()), "{host:?}");
        }
        let bad = [
            ("10.0.0.1", "IP address"),
            ("[::1]", "IP address"),
            ("foo.com:80", "without port"),
            ("foo.com/x", "without port or path"),
            ("foo.*.com", "whole first label"),
            ("-foo.com", "not a valid DNS name"),
            ("foo.com.", "not a valid DNS name"),
            ("*.", "not a valid DNS name"),
        ];
        for (host, reason) in bad {
            let error = HostName::ingress_rule(host).expect_err(host);
            assert!(error.contains(reason), "{host:?}: {error}");
        }
        let long = format!("{}.com", "a.".repeat(130));
        assert!(HostName::ingress_rule(&long).is_err());
    }

    #[test]
    fn server_names_may_end_with_a_dot() {
        assert_eq!(HostName::dns("XDS.example.svc.").map(HostName::into_string), Ok("xds.example.svc".into()));
        assert!(HostName::dns("*.example.svc").is_err() && HostName::dns("").is_err() && HostName::dns("a..b").is_err());
    }
}
