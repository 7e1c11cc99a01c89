//! Redirects (ingress-nginx `ssl-redirect`, `app-root`, `permanent-redirect`, `temporal-redirect`,
//! `from-to-www-redirect`): the checks a [`Redirect`] must pass before a table is accepted, and the
//! `Location` a redirect gives one request, as pure functions over the table and [`RequestParts`].
//! No matching (that is `matcher`), no proxy-wasm (that is `host`).
//!
//! Whatever the request sends, a `Location` is a safe header value: it is at most
//! [`MAX_LOCATION_BYTES`] long (measured before anything is allocated; longer: that request gets
//! 414), and bytes taken from the request that could break the header or the URL (control
//! characters, spaces, non-ASCII, and in the host anything that could end it early or be
//! percent-decoded into such a character) are written as `%XX` rather than refused, so a hostile
//! request still gets a well-formed answer.

use crate::decision::{Outcome, URI_TOO_LONG_BODY};
use crate::limits::MAX_LOCATION_BYTES;
use crate::hostname::host_of;
use crate::request::RequestParts;
use crate::table::{HostPart, Location, PathPart, Redirect};

/// Check a redirect on its own (route action, `https_redirect`, `app_root`): status in 300..=308,
/// and a location that always produces a header-safe URL. The error names the faulty field.
pub fn check_redirect(redirect: &Redirect) -> Result<(), String> {
    if !(300..=308).contains(&redirect.status) {
        return Err(format!("redirect status {} is outside 300..=308", redirect.status));
    }
    match &redirect.location {
        Location::Url { url } => check_text("redirect url", url),
        Location::FromRequest { scheme, host, path } => {
            if let Some(scheme) = scheme {
                if scheme != "http" && scheme != "https" {
                    return Err(format!("redirect scheme {scheme:?} is neither \"http\" nor \"https\""));
                }
            }
            if let HostPart::WithListenerPort(name) = host {
                check_host_name(name)?;
            }
            match path {
                PathPart::Fixed(fixed) if !fixed.starts_with('/') => {
                    Err(format!("redirect path {fixed:?} must start with '/'"))
                }
                PathPart::Fixed(fixed) => check_text("redirect path", fixed),
                PathPart::RequestUri { .. } => Ok(()),
            }
        }
    }
}

/// Table text written into a `Location`: non-empty, not longer than a whole `Location` may be, and
/// without control characters or spaces.
fn check_text(what: &str, text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if text.len() > MAX_LOCATION_BYTES {
        return Err(format!("{what} is {} bytes, more than the {MAX_LOCATION_BYTES} allowed", text.len()));
    }
    if text.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(format!("{what} {text:?} contains a control character or space"));
    }
    Ok(())
}

/// The host of `WithListenerPort` is followed by `:port`, so it must be a bare host name.
fn check_host_name(name: &str) -> Result<(), String> {
    check_text("redirect host", name)?;
    if name.bytes().any(|b| matches!(b, b'/' | b':' | b'?' | b'#' | b'@' | b'\\')) {
        return Err(format!("redirect host {name:?} must be a bare host name, without a port, '/', '?', '#', '@' or '\\'"));
    }
    Ok(())
}

/// Whether `location` depends on the request's scheme (`x-forwarded-proto`).
pub fn reads_scheme(location: &Location) -> bool {
    matches!(location, Location::FromRequest { scheme: None, .. })
}

/// Whether `location` depends on the port the client connected to (`x-forwarded-port`).
pub fn reads_listener_port(location: &Location) -> bool {
    matches!(location, Location::FromRequest { host: HostPart::WithListenerPort(_), .. })
}

/// The outcome of answering `request` with `redirect`: the redirect, or 414 when its `Location`
/// would be too long.
pub fn outcome<'t>(redirect: &'t Redirect, request: &RequestParts<'_>) -> Outcome<'t> {
    match location(&redirect.location, request) {
        Some(location) => Outcome::Redirect { status: redirect.status, location, cors: redirect.cors.as_deref() },
        None => Outcome::Respond { status: 414, body: URI_TOO_LONG_BODY, cors: None },
    }
}

/// The `Location` for `request`; `None` when it would be longer than [`MAX_LOCATION_BYTES`].
///
/// - `Url`: the URL as written.
/// - `FromRequest`: `<scheme>://<host><path>`. The scheme is the given one, else the request's. The
///   host is the request's host lower-cased without its port (`RequestHost`), the authority as sent
///   (`RequestAuthority`), or the given name with `:` and the listener port, which defaults to the
///   scheme's port when unknown (`WithListenerPort`). The path is the request's path and query
///   (empty counts as `/`), less one `/` ending the whole URI when trimming; or the given path.
pub fn location(location: &Location, request: &RequestParts<'_>) -> Option<String> {
    match location {
        Location::Url { url } => assemble(&[Part::Text(url)]),
        Location::FromRequest { scheme, host, path } => from_request(scheme.as_deref(), host, path, request),
    }
}

fn from_request(scheme: Option<&str>, host: &HostPart, path: &PathPart, request: &RequestParts<'_>) -> Option<String> {
    let scheme = scheme.unwrap_or(if request.https { "https" } else { "http" });
    let port_text;
    let (host, port) = match host {
        HostPart::RequestHost => (Part::Host { bytes: host_of(request.authority), lower: true }, Part::Text("")),
        HostPart::RequestHostWithPort(port) => {
            port_text = format!(":{port}");
            (Part::Host { bytes: host_of(request.authority), lower: true }, Part::Text(&port_text))
        }
        HostPart::RequestAuthority => (Part::Host { bytes: request.authority, lower: false }, Part::Text("")),
        HostPart::WithListenerPort(name) => {
            let default = if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 };
            port_text = format!(":{}", request.listener_port.unwrap_or(default));
            (Part::Host { bytes: name.as_bytes(), lower: false }, Part::Text(&port_text))
        }
    };
    let [slash, path] = path_parts(path, request.path);
    assemble(&[Part::Text(scheme), Part::Text("://"), host, port, slash, path])
}

/// The path of a `FromRequest` location, as a separating `/` (empty unless the path lacks one, so
/// no path — `*`, `.evil.com` — can extend the host) and the path itself.
fn path_parts<'a>(path: &'a PathPart, uri: &'a [u8]) -> [Part<'a>; 2] {
    match path {
        PathPart::Fixed(fixed) => [Part::Text(if fixed.starts_with('/') { "" } else { "/" }), Part::Text(fixed)],
        PathPart::RequestUri { trim_trailing_slash } => {
            let uri: &[u8] = if uri.is_empty() { b"/" } else { uri };
            let slash = if uri.starts_with(b"/") { "" } else { "/" };
            // ingress-nginx drops one `/` ending the whole URI, query included: `/a/?q` stays.
            let uri = if *trim_trailing_slash { uri.strip_suffix(b"/").unwrap_or(uri) } else { uri };
            [Part::Text(slash), Part::Path(uri)]
        }
    }
}

/// One piece of a `Location`, and which of its bytes are written as `%XX`.
#[derive(Debug, Clone, Copy)]
enum Part<'a> {
    /// Table text (checked at compile time), written as is; control characters and spaces are
    /// still escaped, because this function must be safe on any table.
    Text(&'a str),
    /// Bytes of a host (lower-cased when `lower`): anything but host-name, IP-literal and port
    /// characters is escaped, so no byte can end the host (`/`, `?`, `#`, `@`, `\`) or be
    /// percent-decoded by the client into one (`%`).
    Host { bytes: &'a [u8], lower: bool },
    /// Bytes of a request path and query: anything but visible ASCII is escaped (a header value
    /// must not carry control characters, and the host call takes UTF-8).
    Path(&'a [u8]),
}

/// RFC 3986 reg-name (unreserved and sub-delims), IP-literal brackets and the port's `:`.
fn host_keeps(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]".contains(&b)
}

fn path_keeps(b: u8) -> bool {
    b.is_ascii_graphic()
}

fn text_escapes(c: char) -> bool {
    c.is_ascii_control() || c == ' '
}

impl Part<'_> {
    fn len(&self) -> usize {
        let escaped = |bytes: &[u8], keeps: fn(u8) -> bool| -> usize {
            bytes.iter().map(|&b| if keeps(b) { 1 } else { 3 }).sum()
        };
        match *self {
            Part::Text(text) => text.chars().map(|c| if text_escapes(c) { 3 } else { c.len_utf8() }).sum(),
            Part::Host { bytes, .. } => escaped(bytes, host_keeps),
            Part::Path(bytes) => escaped(bytes, path_keeps),
        }
    }

    fn write(&self, out: &mut String) {
        match *self {
            Part::Text(text) => {
                for c in text.chars() {
                    if text_escapes(c) {
                        push_escaped(out, c as u8);
                    } else {
                        out.push(c);
                    }
                }
            }
            Part::Host { bytes, lower } => {
                for &b in bytes {
                    push_byte(out, if lower { b.to_ascii_lowercase() } else { b }, host_keeps);
                }
            }
            Part::Path(bytes) => bytes.iter().for_each(|&b| push_byte(out, b, path_keeps)),
        }
    }
}

/// `keeps` only accepts ASCII, so a kept byte is a whole character.
fn push_byte(out: &mut String, b: u8, keeps: fn(u8) -> bool) {
    if keeps(b) {
        out.push(char::from(b));
    } else {
        push_escaped(out, b);
    }
}

fn push_escaped(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

/// Join the parts, measuring first so an oversized `Location` allocates nothing.
fn assemble(parts: &[Part<'_>]) -> Option<String> {
    let length: usize = parts.iter().map(Part::len).sum();
    if length > MAX_LOCATION_BYTES {
        return None;
    }
    let mut out = String::with_capacity(length);
    for part in parts {
        part.write(&mut out);
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn from_request(scheme: Option<&str>, host: HostPart, path: PathPart) -> Location {
        Location::FromRequest { scheme: scheme.map(String::from), host, path }
    }

    /// ingress-nginx `ssl-redirect` / `force-ssl-redirect` (trim) and with `preserve-trailing-slash`.
    fn ssl_redirect(trim_trailing_slash: bool) -> Location {
        from_request(Some("https"), HostPart::RequestHost, PathPart::RequestUri { trim_trailing_slash })
    }

    fn app_root(path: &str) -> Location {
        from_request(None, HostPart::RequestAuthority, PathPart::Fixed(path.into()))
    }

    fn from_to_www(host: &str) -> Location {
        from_request(None, HostPart::WithListenerPort(host.into()), PathPart::RequestUri { trim_trailing_slash: true })
    }

    fn request<'a>(authority: &'a str, path: &'a str) -> RequestParts<'a> {
        RequestParts::new(authority.as_bytes(), path.as_bytes())
    }

    fn at(location: &Location, request: &RequestParts<'_>) -> String {
        super::location(location, request).expect("the location fits")
    }

    #[test]
    fn ssl_redirect_drops_one_trailing_slash_of_the_whole_uri() {
        let rows = [
            // ingress-nginx e2e forcesslredirect: `GET /` -> `https://forcesslredirect.bar.com`.
            ("/", "https://forcesslredirect.bar.com"),
            ("", "https://forcesslredirect.bar.com"),
            ("/a/", "https://forcesslredirect.bar.com/a"),
            ("/a//", "https://forcesslredirect.bar.com/a/"),
            ("/a/?q", "https://forcesslredirect.bar.com/a/?q"),
            ("/a/?x=1/", "https://forcesslredirect.bar.com/a/?x=1"),
            ("/a?b=c", "https://forcesslredirect.bar.com/a?b=c"),
        ];
        for (path, expected) in rows {
            assert_eq!(at(&ssl_redirect(true), &request("forcesslredirect.bar.com", path)), expected, "path {path:?}");
        }
    }

    #[test]
    fn preserve_trailing_slash_keeps_the_uri_as_sent() {
        let rows = [
            // ingress-nginx e2e preservetrailingslash: `GET /` -> `https://forcesslredirect.bar.com/`.
            ("/", "https://forcesslredirect.bar.com/"),
            ("", "https://forcesslredirect.bar.com/"),
            ("/a/?q", "https://forcesslredirect.bar.com/a/?q"),
        ];
        for (path, expected) in rows {
            assert_eq!(at(&ssl_redirect(false), &request("forcesslredirect.bar.com", path)), expected, "path {path:?}");
        }
    }

    #[test]
    fn ssl_redirect_host_is_lower_case_without_port_or_trailing_dot() {
        let rows = [
            ("ForceSSLRedirect.Bar.com:8080", "https://forcesslredirect.bar.com/x"),
            ("example.com.", "https://example.com/x"),
            ("[::1]:8080", "https://[::1]/x"),
            ("[::1]", "https://[::1]/x"),
            // No authority at all still gives a well-formed (if host-less) answer.
            ("", "https:///x"),
        ];
        for (authority, expected) in rows {
            assert_eq!(at(&ssl_redirect(false), &request(authority, "/x")), expected, "authority {authority:?}");
        }
    }

    #[test]
    fn app_root_keeps_the_authority_as_sent_and_drops_the_query() {
        let rows = [
            // ingress-nginx e2e approot: `app-root: /foo`, `GET /` -> 302 `http://approot.bar.com/foo`.
            ("approot.bar.com", "/", false, "http://approot.bar.com/foo"),
            ("approot.bar.com:8080", "/", false, "http://approot.bar.com:8080/foo"),
            ("approot.bar.com", "/?a=b", false, "http://approot.bar.com/foo"),
            ("AppRoot.bar.com", "/", false, "http://AppRoot.bar.com/foo"),
            ("approot.bar.com", "/", true, "https://approot.bar.com/foo"),
            ("[::1]:8080", "/", false, "http://[::1]:8080/foo"),
        ];
        for (authority, path, https, expected) in rows {
            let request = RequestParts { https, ..request(authority, path) };
            assert_eq!(at(&app_root("/foo"), &request), expected, "{authority} {path} https={https}");
        }
    }

    #[test]
    fn from_to_www_always_writes_the_listener_port() {
        let location = from_to_www("fromtowwwredirect.bar.com");
        let rows: [(&str, bool, Option<u16>, &str); 5] = [
            // ingress-nginx e2e fromtowwwredirect: Host www.…, `GET /foo` -> `http://fromtowwwredirect.bar.com:80/foo`.
            ("/foo", false, None, "http://fromtowwwredirect.bar.com:80/foo"),
            ("/foo", false, Some(80), "http://fromtowwwredirect.bar.com:80/foo"),
            ("/", true, None, "https://fromtowwwredirect.bar.com:443"),
            ("/foo/?x=1", true, Some(8443), "https://fromtowwwredirect.bar.com:8443/foo/?x=1"),
            ("/foo/", false, Some(8080), "http://fromtowwwredirect.bar.com:8080/foo"),
        ];
        for (path, https, listener_port, expected) in rows {
            let request = RequestParts { https, listener_port, ..request("www.fromtowwwredirect.bar.com", path) };
            assert_eq!(at(&location, &request), expected, "{path} https={https} port={listener_port:?}");
        }
    }

    #[test]
    fn unknown_listener_port_defaults_to_the_locations_scheme() {
        let location = from_request(Some("https"), HostPart::WithListenerPort("a.com".into()), PathPart::Fixed("/x".into()));
        assert_eq!(at(&location, &request("www.a.com", "/")), "https://a.com:443/x");
    }

    #[test]
    fn permanent_redirect_url_is_written_verbatim() {
        // ingress-nginx e2e redirect: `permanent-redirect: http://redirect.example.com` -> exactly that.
        let location = Location::Url { url: "http://redirect.example.com".into() };
        for (authority, path) in [("a.com", "/"), ("b.com:81", "/x/y?z=1"), ("", "")] {
            assert_eq!(at(&location, &request(authority, path)), "http://redirect.example.com");
        }
        let relative = Location::Url { url: "/new-location".into() };
        assert_eq!(at(&relative, &request("a.com", "/x")), "/new-location");
    }

    #[test]
    fn request_bytes_never_put_control_characters_or_spaces_in_the_location() {
        let rows: [(&Location, &[u8], &[u8], &str); 6] = [
            (&ssl_redirect(false), b"a.com", b"/a\r\nSet-Cookie: x=1", "https://a.com/a%0D%0ASet-Cookie:%20x=1"),
            (&ssl_redirect(false), b"a.com", b"/\x00\x7f\xff\xc3\xa9", "https://a.com/%00%7F%FF%C3%A9"),
            (&ssl_redirect(false), b"A\r\n.com", b"/", "https://a%0D%0A.com/"),
            (&app_root("/foo"), b"a.com\r\nx: 1", b"/", "http://a.com%0D%0Ax:%201/foo"),
            (&app_root("/foo"), b"\xff\xfe", b"/", "http://%FF%FE/foo"),
            (&Location::Url { url: "http://a.com/\nx y".into() }, b"a.com", b"/", "http://a.com/%0Ax%20y"),
        ];
        for (location, authority, path, expected) in rows {
            let parts = RequestParts::new(authority, path);
            assert_eq!(at(location, &parts), expected, "{}", String::from_utf8_lossy(path));
        }
    }

    #[test]
    fn request_bytes_cannot_move_the_redirect_to_another_host() {
        let rows: [(&Location, &str, &str, &str); 5] = [
            // A userinfo or fragment smuggled after the port or inside the host is escaped.
            (&app_root("/foo"), "approot.bar.com:@evil.com", "/", "http://approot.bar.com:%40evil.com/foo"),
            (&app_root("/foo"), "evil%2ecom#@x.foo.com", "/", "http://evil%252ecom%23%40x.foo.com/foo"),
            (&app_root("/foo"), "evil.com/x?", "/", "http://evil.com%2Fx%3F/foo"),
            // A path without its leading `/` cannot continue the host.
            (&ssl_redirect(false), "a.com", ".evil.com/x", "https://a.com/.evil.com/x"),
            (&ssl_redirect(true), "a.com", "*", "https://a.com/*"),
        ];
        for (location, authority, path, expected) in rows {
            assert_eq!(at(location, &request(authority, path)), expected, "{authority} {path}");
        }
    }

    #[test]
    fn locations_longer_than_the_limit_are_refused() {
        let url = |n: usize| Location::Url { url: format!("http://a.com/{}", "x".repeat(n - 13)) };
        assert_eq!(location(&url(MAX_LOCATION_BYTES), &request("a", "/")).map(|l| l.len()), Some(MAX_LOCATION_BYTES));
        assert_eq!(location(&url(MAX_LOCATION_BYTES + 1), &request("a", "/")), None);
        let huge_authority = "a".repeat(MAX_LOCATION_BYTES);
        assert_eq!(location(&app_root("/foo"), &request(&huge_authority, "/")), None);
        // Escaping counts: 3000 control bytes take 9000 bytes escaped.
        let escaped_path = format!("/{}", "\x01".repeat(3000));
        assert_eq!(location(&ssl_redirect(false), &request("a.com", &escaped_path)), None);
        let redirect = Redirect { status: 308, location: app_root("/foo"), cors: None };
        assert_eq!(outcome(&redirect, &request(&huge_authority, "/")), Outcome::Respond { status: 414, body: URI_TOO_LONG_BODY, cors: None });
        assert_eq!(
            outcome(&redirect, &request("a.com", "/")),
            Outcome::Redirect { status: 308, location: "http://a.com/foo".into(), cors: None }
        );
    }

    #[test]
    fn only_locations_that_use_them_read_the_scheme_or_the_listener_port() {
        assert!(!reads_scheme(&ssl_redirect(true)));
        assert!(reads_scheme(&app_root("/foo")));
        assert!(reads_scheme(&from_to_www("a.com")));
        assert!(!reads_scheme(&Location::Url { url: "http://a".into() }));
        assert!(reads_listener_port(&from_to_www("a.com")));
        assert!(!reads_listener_port(&app_root("/foo")));
        assert!(!reads_listener_port(&Location::Url { url: "http://a".into() }));
    }

    #[test]
    fn check_redirect_accepts_the_ingress_nginx_redirects() {
        for location in [ssl_redirect(true), app_root("/foo"), from_to_www("a.com"), Location::Url { url: "http://r.example.com".into() }] {
            for status in [301, 302, 307, 308, 300] {
                assert_eq!(check_redirect(&Redirect { status, location: location.clone(), cors: None }), Ok(()), "{location:?}");
            }
        }
    }

    #[test]
    fn use_port_in_redirects_replaces_the_requests_port() {
        let with_port = from_request(Some("https"), HostPart::RequestHostWithPort(8443), PathPart::RequestUri { trim_trailing_slash: true });
        let request = RequestParts::new(b"Shop.Example:8080", b"/a/?q=1");
        assert_eq!(location(&with_port, &request).as_deref(), Some("https://shop.example:8443/a/?q=1"));
        let request = RequestParts::new(b"shop.example", b"/");
        assert_eq!(location(&with_port, &request).as_deref(), Some("https://shop.example:8443"));
    }

    #[test]
    fn check_redirect_names_what_is_wrong() {
        let url = |url: &str| Location::Url { url: url.into() };
        let scheme = |scheme: &str| from_request(Some(scheme), HostPart::RequestHost, PathPart::default());
        let fixed = |path: &str| from_request(None, HostPart::RequestHost, PathPart::Fixed(path.into()));
        let rows: Vec<(u16, Location, &str)> = vec![
            (200, url("http://a"), "redirect status 200 is outside 300..=308"),
            (309, url("http://a"), "redirect status 309"),
            (301, url(""), "redirect url is empty"),
            (301, url(&"a".repeat(MAX_LOCATION_BYTES + 1)), "redirect url is 8193 bytes, more than the 8192 allowed"),
            (301, url("http://a b"), "redirect url \"http://a b\" contains a control character or space"),
            (301, url("http://a\r\nx: y"), "control character"),
            (301, scheme("ftp"), "redirect scheme \"ftp\" is neither"),
            (301, scheme("HTTPS"), "redirect scheme \"HTTPS\""),
            (301, from_to_www(""), "redirect host is empty"),
            (301, from_to_www("a.com:80"), "bare host name"),
            (301, from_to_www("a.com/x"), "bare host name"),
            (301, from_to_www("evil.com#"), "bare host name"),
            (301, from_to_www("a com"), "control character or space"),
            (301, fixed("foo"), "redirect path \"foo\" must start with '/'"),
            (301, fixed(""), "must start with '/'"),
            (301, fixed("/a\tb"), "redirect path \"/a\\tb\" contains a control character"),
        ];
        for (status, location, expected) in rows {
            let error = check_redirect(&Redirect { status, location: location.clone(), cors: None }).expect_err("must be refused");
            assert!(error.contains(expected), "{location:?}: {error}");
        }
    }
}
