//! ingress-nginx client certificates (`auth-tls-*`) as a pure decision. Envoy does the TLS part:
//! the HTTPS listener has a filter chain for each such host's SNI whose TLS context asks for a
//! client certificate and validates it against the host's CA (a certificate that fails validation
//! ends the handshake). What is left is per request, here:
//! - the request must have come over that host's chain: its SNI must be its `Host` (nginx answers
//!   421 when a client negotiated another name and asks for a host that verifies clients); without
//!   SNI (a client that dialled an address) it is judged as a request without a certificate, as
//!   nginx judges it, and one with a certificate nobody checked against this CA answers 421;
//! - without a certificate, `required` (`auth-tls-verify-client: on`) answers 400, as nginx's
//!   "No required SSL certificate was sent", or redirects to `auth-tls-error-page`;
//! - what passes gets `ssl-client-verify` (nginx's `$ssl_client_verify`: `SUCCESS` or `NONE`;
//!   `optional_no_ca` certificates are not checked, so `FAILED:unverified`).
//!
//! `auth-tls-verify-client: off` asks for nothing: every request passes with `NONE` (the client's
//! `ssl-client-*` headers still dropped), over any connection.
//!
//! Plain HTTP never carries a certificate. nginx serves it without asking; here only redirects
//! (ssl-redirect sends the client to HTTPS) and ACME HTTP-01 challenges pass, the rest is refused
//! 403 (a host that asks for client certificates is never served without one by mistake). With
//! `auth-tls-match-cn`, as nginx, every plain-HTTP request is 403 `client certificate
//! unauthorized` first: its `server` matches the (empty) subject before any redirect.

use regex::Regex;

use crate::hostname::host_of;
use crate::limits::MAX_LOCATION_BYTES;
use crate::table::ClientCertificate;

/// The request header that tells the upstream the verdict (nginx's `ssl-client-verify`).
pub const VERIFY_HEADER: &str = "ssl-client-verify";
/// The headers Envoy's route sets from the certificate (when there is one); a client's own copies
/// are dropped on hosts with a rule.
pub const CERTIFICATE_HEADERS: [&str; 3] = ["ssl-client-subject-dn", "ssl-client-issuer-dn", "ssl-client-cert"];

/// The path prefix of ACME HTTP-01 challenges, served over plain HTTP.
const ACME_CHALLENGE: &[u8] = b"/.well-known/acme-challenge/";

/// nginx's answer to a request without the required certificate (status 400, its page 496).
pub const NO_CERTIFICATE_BODY: &str = crate::decision::nginx_page!("400 No required SSL certificate was sent", "400 Bad Request", "No required SSL certificate was sent");
/// The answer to a request for this host over a connection negotiated for another name.
pub const MISDIRECTED_BODY: &str = crate::decision::nginx_page!("421 Misdirected Request");
/// The answer to a plain-HTTP request to such a host that is not redirected: nginx's 403, as
/// ingress-nginx's `$ssl_client_verify != SUCCESS` check returns it.
pub const PLAIN_HTTP_BODY: &str = crate::decision::FORBIDDEN_BODY;

/// What the connection says about TLS (read from Envoy only for hosts with a rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection<'a> {
    /// The connection is TLS (terminated by Envoy).
    pub tls: bool,
    /// The SNI the client sent (empty: none).
    pub server_name: &'a [u8],
    /// The client presented a certificate (Envoy validated it unless `optional_no_ca`).
    pub peer_certificate: bool,
    /// The certificate's subject DN (empty without one), read only for a rule with `match_cn`.
    pub subject: &'a str,
}

/// The verdict for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<'t> {
    /// Go on with routing's outcome; set [`VERIFY_HEADER`] to this value.
    Pass(&'static str),
    /// Answer with this status and body.
    Respond(u16, &'static str),
    /// Redirect (302) to the error page.
    Redirect(&'t str),
}

/// nginx's answer when the subject does not match `auth-tls-match-cn` (status 403).
pub const UNAUTHORIZED_BODY: &str = "client certificate unauthorized";

/// Check one request to a host with `rule` (`subject_pattern`: its compiled `match_cn`).
/// `authority` is the request's host (a port is ignored); `redirected`: routing answers with a
/// redirect; `path`: the request's `:path`.
pub fn check<'t>(
    rule: &'t ClientCertificate,
    subject_pattern: Option<&Regex>,
    connection: Connection<'_>,
    authority: &[u8],
    redirected: bool,
    path: &[u8],
) -> Verdict<'t> {
    // nginx checks `auth-tls-match-cn` in the `server`, before any location's redirect: with no
    // certificate to read (`off`, plain HTTP) the subject is empty.
    let without_certificate = rule.off || !connection.tls;
    if without_certificate && subject_pattern.is_some_and(|pattern| !pattern.is_match("")) {
        return Verdict::Respond(403, UNAUTHORIZED_BODY);
    }
    if rule.off {
        return Verdict::Pass("NONE");
    }
    if !connection.tls {
        return if redirected || path.starts_with(ACME_CHALLENGE) {
            Verdict::Pass("NONE")
        } else {
            Verdict::Respond(403, PLAIN_HTTP_BODY)
        };
    }
    // Without SNI the handshake took the listener's default chain, which asks for no certificate:
    // as nginx (its default server's handshake, then the `Host`'s server), the request is judged
    // as one without a certificate; one that came anyway was not checked against this host's CA.
    let misdirected = match connection.server_name {
        b"" => connection.peer_certificate,
        name => !name.eq_ignore_ascii_case(host_of(authority)),
    };
    if misdirected {
        return Verdict::Respond(421, MISDIRECTED_BODY);
    }
    let verdict = presence(rule, connection);
    match (verdict, subject_pattern) {
        (Verdict::Pass(_), Some(pattern)) if !pattern.is_match(connection.subject) => Verdict::Respond(403, UNAUTHORIZED_BODY),
        (verdict, _) => verdict,
    }
}

/// The verdict on whether a certificate was presented (and checked).
fn presence<'t>(rule: &'t ClientCertificate, connection: Connection<'_>) -> Verdict<'t> {
    match (connection.peer_certificate, rule.verified) {
        (true, true) => Verdict::Pass("SUCCESS"),
        (true, false) => Verdict::Pass("FAILED:unverified"),
        (false, _) if !rule.required => Verdict::Pass("NONE"),
        (false, _) => match &rule.error_page {
            Some(page) => Verdict::Redirect(page),
            None => Verdict::Respond(400, NO_CERTIFICATE_BODY),
        },
    }
}

/// Refuse an error page the filter could not send as a `Location`: empty, longer than
/// [`MAX_LOCATION_BYTES`], or with control characters or spaces.
pub fn check_rule(rule: &ClientCertificate) -> Result<(), String> {
    rule.error_page.as_deref().map_or(Ok(()), check_error_page)
}

/// An `error_page` the filter can send as a `Location`.
pub fn check_error_page(page: &str) -> Result<(), String> {
    if page.is_empty() || page.len() > MAX_LOCATION_BYTES {
        return Err(format!("client_certificate.error_page must be 1 to {MAX_LOCATION_BYTES} bytes"));
    }
    if page.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("client_certificate.error_page has control characters or spaces".into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn rule(required: bool, verified: bool, error_page: Option<&str>) -> ClientCertificate {
        ClientCertificate { required, verified, error_page: error_page.map(String::from), match_cn: None, off: false }
    }

    fn tls<'a>(server_name: &'a [u8], peer_certificate: bool) -> Connection<'a> {
        Connection { tls: true, server_name, peer_certificate, subject: if peer_certificate { "CN=alice,O=example" } else { "" } }
    }

    #[test]
    fn verdicts_follow_ingress_nginx() {
        let on = rule(true, true, None);
        let optional = rule(false, true, None);
        let no_ca = rule(false, false, None);
        let error_page = rule(true, true, Some("https://errors.example.com/cert"));
        let plain = Connection { tls: false, server_name: b"", peer_certificate: false, subject: "" };
        // (rule, connection, authority, redirected, path, verdict)
        type Case<'a> = (&'a ClientCertificate, Connection<'a>, &'a [u8], bool, &'a [u8], Verdict<'a>);
        let cases: &[Case<'_>] = &[
            (&on, tls(b"mtls.example.com", true), b"mtls.example.com", false, b"/", Verdict::Pass("SUCCESS")),
            (&on, tls(b"mtls.example.com", true), b"MTLS.example.com:8443", false, b"/", Verdict::Pass("SUCCESS")),
            // The host the filter routed by: one trailing dot is the same host (as nginx's $host).
            (&on, tls(b"mtls.example.com", true), b"mtls.example.com.:8443", false, b"/", Verdict::Pass("SUCCESS")),
            (&on, tls(b"mtls.example.com", false), b"mtls.example.com", false, b"/", Verdict::Respond(400, NO_CERTIFICATE_BODY)),
            (&on, tls(b"mtls.example.com", false), b"mtls.example.com", true, b"/", Verdict::Respond(400, NO_CERTIFICATE_BODY)),
            (&error_page, tls(b"mtls.example.com", false), b"mtls.example.com", false, b"/", Verdict::Redirect("https://errors.example.com/cert")),
            (&on, tls(b"other.example.com", true), b"mtls.example.com", false, b"/", Verdict::Respond(421, MISDIRECTED_BODY)),
            // No SNI (a client that dialled an address): no certificate was asked for, so as nginx
            // 400 or the error page; a certificate that came anyway was not checked: 421.
            (&on, tls(b"", false), b"mtls.example.com", false, b"/", Verdict::Respond(400, NO_CERTIFICATE_BODY)),
            (&error_page, tls(b"", false), b"mtls.example.com", false, b"/", Verdict::Redirect("https://errors.example.com/cert")),
            (&optional, tls(b"", false), b"mtls.example.com", false, b"/", Verdict::Pass("NONE")),
            (&on, tls(b"", true), b"mtls.example.com", false, b"/", Verdict::Respond(421, MISDIRECTED_BODY)),
            (&optional, tls(b"mtls.example.com", false), b"mtls.example.com", false, b"/", Verdict::Pass("NONE")),
            (&optional, tls(b"mtls.example.com", true), b"mtls.example.com", false, b"/", Verdict::Pass("SUCCESS")),
            (&no_ca, tls(b"mtls.example.com", true), b"mtls.example.com", false, b"/", Verdict::Pass("FAILED:unverified")),
            (&on, plain, b"mtls.example.com", true, b"/", Verdict::Pass("NONE")),
            (&on, plain, b"mtls.example.com", false, b"/.well-known/acme-challenge/token", Verdict::Pass("NONE")),
            (&on, plain, b"mtls.example.com", false, b"/", Verdict::Respond(403, PLAIN_HTTP_BODY)),
            (&optional, plain, b"mtls.example.com", false, b"/", Verdict::Respond(403, PLAIN_HTTP_BODY)),
        ];
        assert!(check_rule(&error_page).is_ok() && check_rule(&on).is_ok());
        // auth-tls-match-cn: the subject must match, anywhere (nginx's `!~`), after the other checks.
        let alice = Regex::new("CN=alice").unwrap();
        let bob = Regex::new("CN=bob").unwrap();
        let host: &[u8] = b"mtls.example.com";
        assert_eq!(check(&on, Some(&alice), tls(host, true), host, false, b"/"), Verdict::Pass("SUCCESS"));
        assert_eq!(check(&on, Some(&bob), tls(host, true), host, false, b"/"), Verdict::Respond(403, UNAUTHORIZED_BODY));
        assert_eq!(check(&optional, Some(&bob), tls(host, false), host, false, b"/"), Verdict::Respond(403, UNAUTHORIZED_BODY));
        assert_eq!(check(&on, Some(&bob), tls(host, false), host, false, b"/"), Verdict::Respond(400, NO_CERTIFICATE_BODY));
        // Over plain HTTP match-cn sees an empty subject before the redirect to HTTPS or an ACME
        // challenge (nginx's `server`-level `if`), unless its pattern matches that.
        assert_eq!(check(&on, Some(&bob), plain, host, true, b"/"), Verdict::Respond(403, UNAUTHORIZED_BODY));
        assert_eq!(check(&on, Some(&bob), plain, host, false, b"/.well-known/acme-challenge/t"), Verdict::Respond(403, UNAUTHORIZED_BODY));
        assert_eq!(check(&on, Some(&Regex::new("^$|CN=bob").unwrap()), plain, host, true, b"/"), Verdict::Pass("NONE"));
        // `off`: nothing asked, over HTTP or HTTPS, SNI or not; match-cn sees an empty subject.
        let off = ClientCertificate { off: true, ..rule(false, false, None) };
        for connection in [plain, tls(b"other.example.com", false), tls(b"", true)] {
            assert_eq!(check(&off, None, connection, host, false, b"/"), Verdict::Pass("NONE"));
            assert_eq!(check(&off, Some(&bob), connection, host, false, b"/"), Verdict::Respond(403, UNAUTHORIZED_BODY));
        }
        assert!(check_rule(&rule(true, true, Some("https://x/a b"))).is_err());
        assert!(check_rule(&rule(true, true, Some(""))).is_err());
        for (rule, connection, authority, redirected, path, expected) in cases {
            assert_eq!(&check(rule, None, *connection, authority, *redirected, path), expected, "{connection:?} {:?}", String::from_utf8_lossy(authority));
        }
    }
}
