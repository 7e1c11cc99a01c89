//! The request as routing sees it: the raw bytes of `:authority` and `:path`, whether it came over
//! HTTPS and on which port, plus the byte-level helpers that read an authority and a path. A leaf
//! module shared by `matcher` (which selects hosts and paths with it) and `redirect` (which builds
//! `Location`s from it), so neither has to import the other. No proxy-wasm, no allocation.

use std::borrow::Cow;

/// Request headers read only when a matched route needs them (canary rules, CORS): the host shim
/// answers with a host call, tests with a map. Names are lower case.
pub trait HeaderLookup {
    /// The value of header `name`, if the request has it.
    fn header(&self, name: &str) -> Option<Vec<u8>>;
}

/// The request parts routing looks at, as raw bytes (headers need not be UTF-8).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestParts<'a> {
    /// `:authority` (or Host), possibly with a port, any case. Empty if missing.
    pub authority: &'a [u8],
    /// `:path` including any query string. Empty if missing.
    pub path: &'a [u8],
    /// The request came over HTTPS (`x-forwarded-proto: https`, which Envoy sets from the
    /// connection). Only read by the host shim when [`crate::matcher::CompiledTable::needs_scheme`].
    pub https: bool,
    /// The port the client connected to (`x-forwarded-port`). `None`: unknown; a `Location` that
    /// needs it then uses its scheme's default port (443 for `https`, 80 for `http`). Only read by
    /// the host shim when [`crate::matcher::CompiledTable::needs_listener_port`].
    pub listener_port: Option<u16>,
    /// A trusted load balancer's `X-Forwarded-Host` (empty: none, or not trusted). Only the HTTPS
    /// redirect reads it: its host is nginx's `$best_http_host` ([`best_host`]).
    pub forwarded_host: &'a [u8],
}

impl<'a> RequestParts<'a> {
    /// A plain-HTTP request on an unknown port: what a caller without connection details (tests,
    /// `explain`) routes.
    pub fn new(authority: &'a [u8], path: &'a [u8]) -> RequestParts<'a> {
        RequestParts { authority, path, https: false, listener_port: None, forwarded_host: b"" }
    }
}

/// Split `:path` into the matched path (before `?` or `#`) and the query string (after `?`, without
/// it; `None` when there is no `?`).
pub(crate) fn split_path(path: &[u8]) -> (&[u8], Option<&[u8]>) {
    match path.iter().position(|&b| b == b'?' || b == b'#') {
        Some(i) if path[i] == b'?' => (&path[..i], Some(&path[i + 1..])),
        Some(i) => (&path[..i], None),
        None => (path, None),
    }
}

/// `bytes` as text, invalid UTF-8 replaced by U+FFFD as [`String::from_utf8_lossy`] does; borrowed
/// when valid. Validation first: it reads ASCII a word at a time, where `from_utf8_lossy` steps byte
/// by byte (a tenth of a route lookup, on every request path).
pub(crate) fn text(bytes: &[u8]) -> Cow<'_, str> {
    std::str::from_utf8(bytes).map_or_else(|_| String::from_utf8_lossy(bytes), Cow::Borrowed)
}

/// ingress-nginx's `$best_http_host` under `use-forwarded-headers`: the first entry of the
/// client's `X-Forwarded-Host` (`lua_ingress.lua`'s `parse_x_forwarded_host`), trimmed, when it
/// is a plausible host (visible ASCII, no `/`), else `authority`.
pub fn best_host<'a>(authority: &'a [u8], forwarded_host: Option<&'a [u8]>) -> &'a [u8] {
    let first = forwarded_host.and_then(|value| value.split(|&b| b == b',').next()).map(<[u8]>::trim_ascii);
    match first {
        Some(host) if !host.is_empty() && host.iter().all(|&b| b.is_ascii_graphic() && b != b'/') => host,
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_from_utf8_lossy_borrowed_when_valid() {
        let rows: [&[u8]; 6] = [b"", b"/plain/path", "/caf\u{e9}/\u{1f600}".as_bytes(), b"/bad\xff/x", b"/cut\xe2\x82", b"\xc0\xaf/overlong"];
        for bytes in rows {
            assert_eq!(text(bytes), String::from_utf8_lossy(bytes), "{bytes:?}");
            assert_eq!(matches!(text(bytes), Cow::Borrowed(_)), std::str::from_utf8(bytes).is_ok(), "{bytes:?}");
        }
    }

    #[test]
    fn the_best_host_is_the_first_forwarded_host_that_is_one() {
        let rows: [(Option<&[u8]>, &[u8]); 8] = [
            (None, b"site.test"),
            (Some(b"myhost"), b"myhost"),
            // forwarded_headers.go: "myhost.com, another.host,example.net" -> myhost.com
            (Some(b"myhost.com, another.host,example.net"), b"myhost.com"),
            (Some(b" spaced.test:8443 ,x"), b"spaced.test:8443"),
            (Some(b"two words"), b"site.test"),
            (Some(b""), b"site.test"),
            (Some(b"a/b"), b"site.test"),
            (Some(b"bad\x01"), b"site.test"),
        ];
        for (forwarded, want) in rows {
            assert_eq!(best_host(b"site.test", forwarded), want, "{forwarded:?}");
        }
    }

    #[test]
    fn split_path_stops_at_query_or_fragment() {
        assert_eq!(split_path(b"/a?b#c"), (&b"/a"[..], Some(&b"b#c"[..])));
        assert_eq!(split_path(b"/a#b?c"), (&b"/a"[..], None));
        assert_eq!(split_path(b"/a"), (&b"/a"[..], None));
    }
}
