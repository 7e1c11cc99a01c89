//! ingress-nginx's `proxy-redirect-from`/`-to`, `proxy-cookie-domain` and `proxy-cookie-path` →
//! the filter's response-header rewrites (`wasm_ingress_filter::response`). Pure.
//!
//! Semantics are ingress-nginx's (controller v1.15; `internal/ingress/annotations/proxy`,
//! `nginx.tmpl`) on nginx's `proxy_redirect` / `proxy_cookie_*`:
//! - `proxy-redirect-from: off` (the default) or `default` writes no rewrite that can match (nginx's
//!   `default` rewrites its internal upstream name, which no backend sends); a URL needs
//!   `proxy-redirect-to` too, else nothing is written (nginx's implicit `default` applies); `-to`
//!   alone does nothing. A replacement that starts with `/` yields an absolute `Location`
//!   (`scheme://host/…`) unless `relative-redirects`, as nginx's `absolute_redirect`.
//! - `proxy-cookie-domain: FROM TO` and `proxy-cookie-path: FROM TO`, or `off`.
//! - Values ingress-nginx's validation refuses (it allows only letters, digits and `-._~/:,?&=`
//!   in redirects and paths — no `$`, so no nginx variables — and exactly two such tokens for the
//!   domain) are ignored with a warning, as ingress-nginx ignores them and logs it. A path value
//!   that is not two tokens (nginx would not load it) is ignored with a warning.
//! - Differs: nginx's regular-expression forms (`~…`) are not supported (a warning; ignored).
//!
//! Nothing here restricts access, so nothing fails closed.

use std::collections::BTreeMap;

use wasm_ingress_filter::table::{Replacement, ResponseRewrite};

use crate::model::Severity;

use super::annotations::AnnotationNote;
use super::behaviour::Reader;

/// The annotation names (after the prefix) this module reads.
pub const NAMES: &[&str] = &["proxy-cookie-domain", "proxy-cookie-path", "proxy-redirect-from", "proxy-redirect-to"];

/// The response rewrites of an Ingress's paths, if it asks for any that apply.
pub fn parse(annotations: &BTreeMap<String, String>) -> (Option<ResponseRewrite>, Vec<AnnotationNote>) {
    let mut reader = Reader::new(annotations);
    let relative = reader.boolean("relative-redirects").unwrap_or(false);
    let redirect = redirect(&mut reader);
    let rewrite = ResponseRewrite {
        absolute_redirects: redirect.as_ref().is_some_and(|r| r.to.starts_with('/')) && !relative,
        redirect,
        cookie_domain: pair(&mut reader, "proxy-cookie-domain", DOMAIN_CHARS).map(|(from, to)| Replacement {
            // nginx drops one leading dot of both at load time (and keeps the cookie's own).
            from: from.strip_prefix('.').unwrap_or(&from).to_string(),
            to: to.strip_prefix('.').unwrap_or(&to).to_string(),
        }),
        cookie_path: pair(&mut reader, "proxy-cookie-path", URL_CHARS).map(|(from, to)| Replacement { from, to }),
        conditional_samesite_none: None, // the sticky cookie's, added with the balancing annotations
    };
    let any = rewrite.redirect.is_some() || rewrite.cookie_domain.is_some() || rewrite.cookie_path.is_some();
    (any.then_some(rewrite), reader.notes)
}

/// What ingress-nginx's `URLIsValidRegex` allows in `proxy-redirect-*` and `proxy-cookie-path`.
const URL_CHARS: &str = "-._~/:,?&=";
/// What its `cookieDomainRegex` allows in each `proxy-cookie-domain` token.
const DOMAIN_CHARS: &str = "-._~/:";

fn allowed(token: &str, extra: &str) -> bool {
    !token.is_empty() && token.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// `proxy-redirect-from` and `-to`, when both give something nginx applies.
fn redirect(reader: &mut Reader<'_>) -> Option<Replacement> {
    let to = reader.get("proxy-redirect-to").map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let Some(from) = reader.get("proxy-redirect-from").map(str::trim).filter(|v| !v.is_empty()).map(str::to_string) else {
        if to.as_deref().is_some_and(|to| to != "off") {
            reader.note("proxy-redirect-to", Severity::Warning, "has no effect without proxy-redirect-from (as in ingress-nginx)".into());
        }
        return None;
    };
    match from.as_str() {
        "off" => return None,
        "default" => {
            let why = "\"default\" rewrites nginx's internal upstream name, which no backend sends: no effect (as in ingress-nginx)";
            reader.note("proxy-redirect-from", Severity::Warning, why.into());
            return None;
        }
        _ => {}
    }
    let from = checked(reader, "proxy-redirect-from", &from)?;
    let Some(to) = to.filter(|to| to != "off") else {
        reader.note("proxy-redirect-from", Severity::Warning, "has no effect without proxy-redirect-to (as in ingress-nginx); Location is passed unchanged".into());
        return None;
    };
    let to = checked(reader, "proxy-redirect-to", &to)?;
    Some(Replacement { from, to })
}

/// A redirect value ingress-nginx accepts and this translation supports.
fn checked(reader: &mut Reader<'_>, name: &str, value: &str) -> Option<String> {
    if value.starts_with('~') {
        reader.note(name, Severity::Warning, format!("{value:?}: nginx regular expressions are not supported; ignored"));
        return None;
    }
    if !allowed(value, URL_CHARS) {
        let why = format!("{value:?}: ingress-nginx ignores this value (only letters, digits and {URL_CHARS} are allowed; no nginx variables); ignored too");
        reader.note(name, Severity::Warning, why);
        return None;
    }
    Some(value.to_string())
}

/// `FROM TO` of a `proxy-cookie-*` annotation (`off`: none), tokens made of `chars`.
fn pair(reader: &mut Reader<'_>, name: &str, chars: &str) -> Option<(String, String)> {
    let value = reader.get(name).map(str::trim).filter(|v| !v.is_empty() && *v != "off")?.to_string();
    let tokens: Vec<&str> = value.split_whitespace().collect();
    let [from, to] = tokens.as_slice() else {
        reader.note(name, Severity::Warning, format!("{value:?} is not \"off\" or two values (FROM TO), which nginx needs; ignored"));
        return None;
    };
    if from.starts_with('~') {
        reader.note(name, Severity::Warning, format!("{value:?}: nginx regular expressions are not supported; ignored"));
        return None;
    }
    if !allowed(from, chars) || !allowed(to, chars) {
        let why = format!("{value:?}: ingress-nginx ignores this value (only letters, digits and {chars} are allowed; no nginx variables); ignored too");
        reader.note(name, Severity::Warning, why);
        return None;
    }
    Some((from.to_string(), to.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::annotations::NGINX_PREFIX;
    use super::*;

    fn parsed(pairs: &[(&str, &str)]) -> (Option<ResponseRewrite>, Vec<String>) {
        let annotations = pairs.iter().map(|(k, v)| (format!("{NGINX_PREFIX}{k}"), v.to_string())).collect();
        let (rewrite, notes) = parse(&annotations);
        (rewrite, notes.into_iter().map(|(key, _, message)| format!("{key}: {message}")).collect())
    }

    /// Annotations, the redirect expected (`None`: no rewrite at all), a note expected ("": none).
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<Option<Replacement>>, &'a str);

    fn replacement(from: &str, to: &str) -> Option<Replacement> {
        Some(Replacement { from: from.into(), to: to.into() })
    }

    #[test]
    fn proxy_redirect_needs_both_annotations_as_ingress_nginx_writes_it() {
        let cases: &[Case<'_>] = &[
            (&[("proxy-redirect-from", "http://demo.local/"), ("proxy-redirect-to", "http://demo.local/gateway/")], Some(replacement("http://demo.local/", "http://demo.local/gateway/")), ""),
            (&[("proxy-redirect-from", "hello.com"), ("proxy-redirect-to", "goodbye.com")], Some(replacement("hello.com", "goodbye.com")), ""),
            (&[("proxy-redirect-from", "off"), ("proxy-redirect-to", "goodbye.com")], None, ""),
            (&[("proxy-redirect-from", "default"), ("proxy-redirect-to", "goodbye.com")], None, "no backend sends"),
            (&[("proxy-redirect-to", "goodbye.com")], None, "without proxy-redirect-from"),
            (&[("proxy-redirect-from", "hello.com")], None, "without proxy-redirect-to"),
            (&[("proxy-redirect-from", "hello.com"), ("proxy-redirect-to", "off")], None, "without proxy-redirect-to"),
            (&[("proxy-redirect-from", "$scheme://$host/"), ("proxy-redirect-to", "/")], None, "ingress-nginx ignores this value"),
            (&[("proxy-redirect-from", "http://a/ x"), ("proxy-redirect-to", "/")], None, "ingress-nginx ignores this value"),
            (&[("proxy-redirect-from", "~^http://a/(.*)"), ("proxy-redirect-to", "/$1")], None, "regular expressions"),
        ];
        for (annotations, expected, note) in cases {
            let (rewrite, notes) = parsed(annotations);
            assert_eq!(rewrite.map(|r| r.redirect), expected.clone(), "{annotations:?}");
            match note {
                &"" => assert!(notes.is_empty(), "{annotations:?}: {notes:?}"),
                note => assert!(notes.iter().any(|n| n.contains(note)), "{annotations:?}: {notes:?}"),
            }
        }
    }

    #[test]
    fn a_relative_replacement_gives_an_absolute_location_unless_relative_redirects() {
        let redirect = [("proxy-redirect-from", "http://backend:8080/"), ("proxy-redirect-to", "/")];
        assert!(parsed(&redirect).0.unwrap().absolute_redirects);
        let relative = [redirect[0], redirect[1], ("relative-redirects", "true")];
        assert!(!parsed(&relative).0.unwrap().absolute_redirects);
        let absolute_to = [("proxy-redirect-from", "http://backend:8080/"), ("proxy-redirect-to", "https://shop.example/")];
        assert!(!parsed(&absolute_to).0.unwrap().absolute_redirects);
    }

    #[test]
    fn cookie_domain_and_path_take_two_tokens_or_off() {
        let (rewrite, notes) = parsed(&[("proxy-cookie-domain", ".old.domain  .new.domain"), ("proxy-cookie-path", "/one/ /")]);
        let rewrite = rewrite.unwrap();
        assert_eq!(rewrite.cookie_domain, replacement("old.domain", "new.domain"), "one leading dot dropped, as nginx");
        assert_eq!(rewrite.cookie_path, replacement("/one/", "/"));
        assert_eq!(rewrite.redirect, None);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(parsed(&[("proxy-cookie-domain", "off"), ("proxy-cookie-path", "off")]), (None, vec![]));
        for (name, value, note) in [
            ("proxy-cookie-domain", "example.org", "two values"),
            ("proxy-cookie-domain", "a b c", "two values"),
            ("proxy-cookie-domain", "a; b", "ingress-nginx ignores"),
            ("proxy-cookie-domain", "~a b", "regular expressions"),
            ("proxy-cookie-path", "/one/", "two values"),
            ("proxy-cookie-path", "/$x/ /", "ingress-nginx ignores"),
        ] {
            let (rewrite, notes) = parsed(&[(name, value)]);
            assert_eq!(rewrite, None, "{name}: {value}");
            assert!(notes.iter().any(|n| n.contains(note)), "{name}: {value}: {notes:?}");
        }
    }
}
