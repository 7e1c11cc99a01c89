//! The host index: which entry of a table's `hosts` serves a request's authority. Exact names and
//! wildcard suffixes (`*.foo.com` is stored as `foo.com` and looked up with the request host minus
//! its first label) are hash maps; the host-less entry answers the rest.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::request::host_of;

/// The host index: entries of `table.hosts` by the names they serve.
#[derive(Debug, Default)]
pub(super) struct HostNames {
    /// Lower-case exact host -> index.
    exact: HashMap<String, usize>,
    /// Wildcard suffix (`foo.com` for `*.foo.com`) -> index.
    wildcard: HashMap<String, usize>,
    /// Index of the host-less (`""`) entry.
    hostless: Option<usize>,
}

/// The host part of an authority, lower-cased: port removed (also for `[v6]:port`), one trailing
/// dot removed (`foo.com.` is `foo.com`, as nginx treats it). `None` if it is not UTF-8 or empty.
fn normalize_authority(authority: &[u8]) -> Option<Cow<'_, str>> {
    let host = host_of(authority);
    if host.is_empty() {
        return None;
    }
    let host = std::str::from_utf8(host).ok()?;
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}


impl HostNames {
    /// Register entry `i` under `host`; refuses a malformed or repeated name.
    pub(super) fn insert(&mut self, host: &str, i: usize) -> Result<(), String> {
        let name = host.to_ascii_lowercase();
        let duplicate = if name.is_empty() {
            self.hostless.replace(i).is_some()
        } else if let Some(suffix) = name.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err("a wildcard host must be `*.` followed by a domain without `*`".into());
            }
            self.wildcard.insert(suffix.to_string(), i).is_some()
        } else {
            if name.contains('*') {
                return Err("`*` is only allowed as the whole first label (`*.foo.com`)".into());
            }
            if name.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b':' || b == b'/') {
                return Err("a host must not contain a port, '/', spaces or control characters".into());
            }
            self.exact.insert(name, i).is_some()
        };
        if duplicate {
            return Err("the host appears more than once in the table".into());
        }
        Ok(())
    }

    /// Index of the entry serving `authority`: exact, then wildcard, then host-less.
    pub(super) fn select(&self, authority: &[u8]) -> Option<usize> {
        if let Some(host) = normalize_authority(authority) {
            if let Some(&i) = self.exact.get(host.as_ref()) {
                return Some(i);
            }
            if let Some((label, suffix)) = host.split_once('.') {
                if !label.is_empty() {
                    if let Some(&i) = self.wildcard.get(suffix) {
                        return Some(i);
                    }
                }
            }
        }
        self.hostless
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_authority;

    #[test]
    fn ipv6_literal_authority_loses_only_its_port() {
        assert_eq!(normalize_authority(b"[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(normalize_authority(b"[::1]").as_deref(), Some("[::1]"));
        assert_eq!(normalize_authority(b"Example.COM:1").as_deref(), Some("example.com"));
        assert_eq!(normalize_authority(b":80"), None);
        assert_eq!(normalize_authority(b"\xff\xfe.com"), None);
    }
}
