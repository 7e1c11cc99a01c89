//! ingress-nginx's request mirroring: `mirror-target`, `mirror-host`, `mirror-request-body`.
//! ingress-nginx writes `mirror /_mirror-…;` and an internal location that `proxy_pass`es to the
//! target with `Host` set to `mirror-host` (default: the target's host); here that is Envoy's
//! request mirror policy on the Ingress's route policy, to a cluster found by DNS. Like nginx's,
//! the copy is fire and forget: its answer, or its failure, never reaches the client. Pure.
//!
//! Differences (warnings): the copy carries the request's path as sent upstream (the documented
//! `https://host$request_uri` form; another path in the target is not applied), and always its
//! body (`mirror-request-body: off` is not applied). A target Envoy cannot reach this way (`$host`,
//! other nginx variables in the host, not an `http(s)://` URL) turns mirroring off with a warning:
//! mirroring never restricts access, so nothing fails closed.

use std::collections::BTreeMap;

use crate::model::{AuthService, AuthTarget, Mirror, Severity};

use super::annotations::AnnotationNote;
use super::auth::split_port;
use super::behaviour::Reader;

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &["mirror-host", "mirror-request-body", "mirror-target"];

/// Target paths that mean "the request's own URI" (ingress-nginx's documented form).
const REQUEST_URI_PATHS: &[&str] = &["", "/", "$request_uri", "/$request_uri"];

/// The mirror of an Ingress, if it has a usable `mirror-target`.
pub fn parse(annotations: &BTreeMap<String, String>) -> (Option<Mirror>, Vec<AnnotationNote>) {
    let mut reader = Reader::new(annotations);
    let target = reader.get("mirror-target").map(str::trim).filter(|t| !t.is_empty());
    let Some(target) = target else {
        for name in ["mirror-host", "mirror-request-body"] {
            if reader.get(name).is_some() {
                reader.note(name, Severity::Warning, "has no effect without mirror-target (as in ingress-nginx); ignored".into());
            }
        }
        return (None, reader.notes);
    };
    let mirror = match parse_target(target) {
        Ok((service, host, path)) => {
            if !REQUEST_URI_PATHS.contains(&path) {
                reader.note(
                    "mirror-target",
                    Severity::Warning,
                    format!("the copy is sent with the request's own path, not {path:?} (only $request_uri is reproduced)"),
                );
            }
            let host = reader.get("mirror-host").map(str::trim).filter(|h| !h.is_empty()).unwrap_or(host).to_string();
            Some(Mirror { service, host })
        }
        Err(reason) => {
            reader.note("mirror-target", Severity::Warning, format!("{target:?} {reason}; requests are not mirrored"));
            None
        }
    };
    if mirror.is_some() && reader.get("mirror-request-body").is_some_and(|v| v.trim() == "off") {
        reader.note("mirror-request-body", Severity::Warning, "not applied: Envoy mirrors the request with its body".into());
    }
    (mirror, reader.notes)
}

/// `http(s)://host[:port][path]` -> (the service, the host for `Host`, the path).
fn parse_target(url: &str) -> Result<(AuthService, &str, &str), String> {
    let (tls, rest) = match url.split_once("://") {
        Some(("https", rest)) => (true, rest),
        Some(("http", rest)) => (false, rest),
        _ => return Err("is not an absolute http:// or https:// URL".into()),
    };
    if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces or control characters".into());
    }
    let split = rest.find(['/', '?', '$']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let (host, port) = split_port(authority).ok_or("has an invalid port")?;
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if host.is_empty() || host.contains("..") || !host.chars().all(valid) {
        return Err("has a host Envoy cannot resolve (nginx variables in the host are not supported)".into());
    }
    let port = port.unwrap_or(if tls { 443 } else { 80 });
    let target = AuthTarget::Dns { host: host.to_ascii_lowercase(), port };
    Ok((AuthService { tls, target }, host, path))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::translate::ingress::NGINX_PREFIX;

    fn run(pairs: &[(&str, &str)]) -> (Option<Mirror>, Vec<String>) {
        let annotations = pairs.iter().map(|(k, v)| (format!("{NGINX_PREFIX}{k}"), v.to_string())).collect();
        let (mirror, notes) = parse(&annotations);
        (mirror, notes.into_iter().map(|(key, _, message)| format!("{key}: {message}")).collect())
    }

    fn dns(tls: bool, host: &str, port: u16) -> AuthService {
        AuthService { tls, target: AuthTarget::Dns { host: host.into(), port } }
    }

    /// (annotations, the mirror's service and Host if any, how many warnings).
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<(AuthService, &'a str)>, usize);

    #[test]
    fn mirror_targets_as_ingress_nginx_documents_them() {
        let cases: &[Case] = &[
            (&[("mirror-target", "https://test.env.com/$request_uri")], Some((dns(true, "test.env.com", 443), "test.env.com")), 0),
            (&[("mirror-target", "http://Shadow.shop.svc:8080$request_uri")], Some((dns(false, "shadow.shop.svc", 8080), "Shadow.shop.svc")), 0),
            (&[("mirror-target", "http://10.0.0.9"), ("mirror-host", "shadow.example")], Some((dns(false, "10.0.0.9", 80), "shadow.example")), 0),
            // A fixed path is not reproduced: mirrored, with a warning.
            (&[("mirror-target", "http://shadow/copy")], Some((dns(false, "shadow", 80), "shadow")), 1),
            (&[("mirror-target", "https://m.example/$request_uri"), ("mirror-request-body", "off")], Some((dns(true, "m.example", 443), "m.example")), 1),
            (&[("mirror-target", "https://m.example/"), ("mirror-request-body", "on")], Some((dns(true, "m.example", 443), "m.example")), 0),
            // Not mirrored, with a warning.
            (&[("mirror-target", "https://$host/mirror")], None, 1),
            (&[("mirror-target", "ftp://m.example/")], None, 1),
            (&[("mirror-target", "http://m.example:99999/")], None, 1),
            // Companions alone do nothing, as in ingress-nginx.
            (&[("mirror-host", "x"), ("mirror-request-body", "off")], None, 2),
            (&[("mirror-target", "")], None, 0),
        ];
        for (pairs, expected, warnings) in cases {
            let (mirror, notes) = run(pairs);
            let got = mirror.map(|m| (m.service, m.host));
            let expected = expected.clone().map(|(service, host)| (service, host.to_string()));
            assert_eq!(got, expected, "{pairs:?}");
            assert_eq!(notes.len(), *warnings, "{pairs:?}: {notes:?}");
        }
    }
}
