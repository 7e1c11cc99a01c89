//! The host index: which entry of a table's `hosts` serves a request's authority. Exact names and
//! wildcard suffixes (`*.foo.com` is stored as `foo.com` and looked up with the request host minus
//! its first label) are hash maps (foldhash, seeded when the VM starts from the clock, wasm having
//! no address randomisation: the keys come from the table, never from clients, and a lookup costs
//! a fraction of SipHash's); the host-less entry answers the rest.

use foldhash::HashMap;

use crate::hostname::normalized_authority;

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
        if let Some(host) = normalized_authority(authority) {
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
