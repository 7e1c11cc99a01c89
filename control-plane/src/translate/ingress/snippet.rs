//! The header statements of a `configuration-snippet`, read into typed header operations — never
//! text into Envoy. People mostly use snippets to add security headers (`more_set_headers
//! "X-Frame-Options: DENY";`, `add_header … always;`); those statements become route-policy
//! header operations that Envoy applies. A snippet with any other statement is not applied at
//! all (a warning names the statement), so that half a snippet never runs.
//!
//! Understood (nginx syntax: `;`-terminated statements, single/double quotes, `\` escapes, `#`
//! comments):
//! - `more_set_headers "Name: value" …` — set (replace) response headers; `"Name:"` clears one;
//! - `more_clear_headers Name …` — remove response headers (no wildcards);
//! - `add_header Name value [always]` — append a response header (nginx adds it to 2xx/3xx answers
//!   only without `always`; Envoy adds it to every answer: a note says so);
//! - `proxy_set_header Name value` (and `grpc_set_header`) / `more_set_input_headers "Name: value"` — set request headers
//!   sent upstream; `proxy_set_header Upgrade $http_upgrade` and `Connection "upgrade"` (the
//!   WebSocket idiom) are accepted as no-ops: Envoy upgrades WebSockets itself.
//!
//! Values may use the nginx variables [`super::variables`] knows (the location's own, as Linkerd's
//! `proxy_set_header l5d-dst-override $service_name.$namespace.svc.cluster.local:$service_port`,
//! and per-request ones Envoy fills in); any other variable makes the snippet not applied. Names
//! must be HTTP tokens other than `host` (in either direction) and values free of control
//! characters, so no snippet can make Envoy refuse the configuration. Pure.

use std::collections::BTreeMap;

use super::variables::{Allowed, Template};

/// Header operations a snippet asks for. Names are lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnippetHeaders {
    pub request_set: BTreeMap<String, Template>,
    pub response_set: BTreeMap<String, Template>,
    pub response_add: Vec<(String, Template)>,
    pub response_remove: Vec<String>,
    /// Differences worth a warning (e.g. `add_header` without `always`).
    pub notes: Vec<String>,
}

/// Longest header value accepted from a snippet.
const MAX_VALUE_BYTES: usize = 8 * 1024;

/// Read a snippet; `Err` says why it is not applied.
pub fn parse(snippet: &str) -> Result<SnippetHeaders, String> {
    let mut headers = SnippetHeaders::default();
    for statement in statements(snippet)? {
        let Some((directive, args)) = statement.split_first() else { continue };
        match directive.as_str() {
            "more_set_headers" => {
                for arg in options_free(directive, args)? {
                    match name_value(arg)? {
                        (name, Some(value)) => {
                            headers.response_set.insert(name, value);
                        }
                        (name, None) => headers.response_remove.push(name),
                    }
                }
            }
            "more_clear_headers" => {
                for arg in options_free(directive, args)? {
                    if arg.contains('*') {
                        return Err(format!("more_clear_headers {arg:?}: wildcards are not supported"));
                    }
                    headers.response_remove.push(header_name(arg)?);
                }
            }
            "add_header" => {
                let (name, value, always) = match args {
                    [name, value] => (name, value, false),
                    [name, value, always] if always == "always" => (name, value, true),
                    _ => return Err("add_header takes a name, a value and an optional \"always\"".into()),
                };
                if !always {
                    headers.notes.push(format!(
                        "add_header {name} without \"always\": nginx adds it to 2xx/3xx answers only, Envoy to every answer"
                    ));
                }
                headers.response_add.push((header_name(name)?, header_value(value)?));
            }
            // nginx applies `grpc_set_header` to gRPC backends and `proxy_set_header` to the others;
            // Envoy sets request headers for both (the Linkerd snippet sets the same header with each).
            "proxy_set_header" | "grpc_set_header" => match args {
                [name, value] if is_websocket_idiom(name, value) => {}
                [name, value] => {
                    headers.request_set.insert(header_name(name)?, header_value(value)?);
                }
                _ => return Err("proxy_set_header takes a name and a value".into()),
            },
            "more_set_input_headers" => {
                for arg in options_free(directive, args)? {
                    match name_value(arg)? {
                        (name, Some(value)) => {
                            headers.request_set.insert(name, value);
                        }
                        (name, None) => return Err(format!("more_set_input_headers {name:?}: clearing request headers is not supported")),
                    }
                }
            }
            other => return Err(format!("{other:?} is not a header statement")),
        }
    }
    headers.response_remove.sort();
    headers.response_remove.dedup();
    Ok(headers)
}

fn is_websocket_idiom(name: &str, value: &str) -> bool {
    (name.eq_ignore_ascii_case("upgrade") && value == "$http_upgrade")
        || (name.eq_ignore_ascii_case("connection") && matches!(value, "upgrade" | "Upgrade" | "$connection_upgrade"))
}

/// The arguments of a headers-more directive, which must not use its `-s`/`-t` filters.
fn options_free<'a>(directive: &str, args: &'a [String]) -> Result<&'a [String], String> {
    match args.iter().find(|a| a.starts_with('-')) {
        Some(option) => Err(format!("{directive} {option}: status and type filters are not supported")),
        None if args.is_empty() => Err(format!("{directive} needs an argument")),
        None => Ok(args),
    }
}

/// `Name: value` (value `None` for `Name:` or `Name`).
fn name_value(arg: &str) -> Result<(String, Option<Template>), String> {
    let (name, value) = match arg.split_once(':') {
        Some((name, value)) => (name, value.trim()),
        None => (arg, ""),
    };
    let name = header_name(name.trim())?;
    if value.is_empty() {
        return Ok((name, None));
    }
    Ok((name, Some(header_value(value)?)))
}

/// An HTTP token other than `host`, lower-cased (Envoy refuses a configuration that adds or
/// removes `host` in either direction).
fn header_name(name: &str) -> Result<String, String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || name.len() > 256 || !name.chars().all(token) || name.contains('$') {
        return Err(format!("{name:?} is not a header name"));
    }
    if name.eq_ignore_ascii_case("host") {
        return Err("the Host header cannot be set or cleared here (upstream-vhost sets it upstream)".into());
    }
    Ok(name.to_ascii_lowercase())
}

fn header_value(value: &str) -> Result<Template, String> {
    if value.len() > MAX_VALUE_BYTES || value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!("{value:?} is not a header value"));
    }
    Template::parse(value, Allowed::Everything).map_err(|e| format!("{value:?}: {e}"))
}

/// The statements of a snippet, each as its words (quotes removed, escapes resolved).
fn statements(snippet: &str) -> Result<Vec<Vec<String>>, String> {
    let mut statements = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = snippet.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' if !in_word => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' | '\'' => {
                let quote = c;
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err("a quote is not closed".into()),
                        Some(c) if c == quote => break,
                        Some('\\') => word.push(chars.next().ok_or("a quote is not closed")?),
                        Some(c) => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next().ok_or("a snippet cannot end with \\")?);
            }
            '{' | '}' => return Err("blocks ({ … }) are not header statements".into()),
            ';' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                if !words.is_empty() {
                    statements.push(std::mem::take(&mut words));
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    // The end of the snippet ends its last statement: ingress-nginx's own e2e test
    // (settings/proxy_host.go) writes `more_set_headers "Custom-Header: $proxy_host"` without `;`
    // and expects the header.
    if in_word {
        words.push(word);
    }
    if !words.is_empty() {
        statements.push(words);
    }
    Ok(statements)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, Template> {
        pairs.iter().map(|(k, v)| (k.to_string(), Template::text(v))).collect()
    }

    #[test]
    fn security_header_snippets_become_header_operations() {
        let snippet = r#"
            # hardening
            more_set_headers "X-Frame-Options: DENY";
            more_set_headers 'X-Content-Type-Options: nosniff' "Referrer-Policy: strict-origin-when-cross-origin";
            more_set_headers "Content-Security-Policy: default-src 'self'; img-src 'self' data: https:";
            add_header X-XSS-Protection "1; mode=block" always;
            more_clear_headers Server X-Powered-By;
            more_set_headers "X-Debug:";
            proxy_set_header X-Tenant acme;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        "#;
        let headers = parse(snippet).unwrap();
        assert_eq!(
            headers.response_set,
            map(&[
                ("x-frame-options", "DENY"),
                ("x-content-type-options", "nosniff"),
                ("referrer-policy", "strict-origin-when-cross-origin"),
                ("content-security-policy", "default-src 'self'; img-src 'self' data: https:"),
            ])
        );
        assert_eq!(headers.response_add, vec![("x-xss-protection".to_string(), Template::text("1; mode=block"))]);
        assert_eq!(headers.response_remove, vec!["server", "x-debug", "x-powered-by"]);
        assert_eq!(headers.request_set, map(&[("x-tenant", "acme")]));
        assert!(headers.notes.is_empty(), "{:?}", headers.notes);
        // settings/proxy_host.go's snippet has no final `;`; nginx serves it.
        let unended = parse("more_set_headers \"X-A: b\";\nmore_set_headers \"X-C: d\"\n").unwrap();
        assert_eq!(unended.response_set, map(&[("x-a", "b"), ("x-c", "d")]));
    }

    /// Linkerd's documented snippet for ingress-nginx, and per-request variables.
    #[test]
    fn header_values_may_use_the_locations_and_the_requests_variables() {
        let snippet = r#"
            proxy_set_header l5d-dst-override $service_name.$namespace.svc.cluster.local:$service_port;
            grpc_set_header l5d-dst-override $service_name.$namespace.svc.cluster.local:$service_port;
            proxy_set_header X-Real-IP $remote_addr;
            more_set_headers "X-Served-By: $ingress_name";
        "#;
        let headers = parse(snippet).unwrap();
        let ingress = crate::state::ObjectKey::new("emojivoto", "web-ingress");
        let location = super::super::variables::Location { ingress: &ingress, service_name: "web-svc", service_port: "80", path: "/" };
        let request: Vec<(&str, String)> = headers.request_set.iter().map(|(k, v)| (k.as_str(), v.resolve(&location).envoy_format())).collect();
        assert_eq!(
            request,
            [
                ("l5d-dst-override", "web-svc.emojivoto.svc.cluster.local:80".to_string()),
                ("x-real-ip", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%".to_string())
            ]
        );
        assert_eq!(headers.response_set["x-served-by"].resolve(&location).to_string(), "web-ingress");
    }

    #[test]
    fn add_header_without_always_is_applied_with_a_note() {
        let headers = parse("add_header Cache-Control \"no-store\";").unwrap();
        assert_eq!(headers.response_add, vec![("cache-control".to_string(), Template::text("no-store"))]);
        assert_eq!(headers.notes.len(), 1);
    }

    #[test]
    fn anything_else_keeps_the_whole_snippet_out_by_table() {
        let cases = [
            ("rewrite ^(/kibana)$ $1/ redirect;", "\"rewrite\" is not a header statement"),
            ("more_set_headers \"X-Frame-Options: DENY\";\nexpires 1d;", "\"expires\" is not a header statement"),
            ("more_set_headers \"X-Host: $host\";", "$host is not supported"),
            ("proxy_set_header X-Original-URI $request_uri;", "$request_uri is not supported"),
            ("more_set_headers -s 404 \"X-A: b\";", "status and type filters"),
            ("more_clear_headers 'X-Hidden-*';", "wildcards"),
            ("proxy_set_header Host example.com;", "Host header"),
            ("more_set_headers \"Host: example.com\";", "Host header"),
            ("more_clear_headers host;", "Host header"),
            ("add_header HOST x always;", "Host header"),
            ("more_set_headers \"Bad Name: x\";", "not a header name"),
            ("more_set_headers \"X-A: b;", "quote is not closed"),
            ("location /x { return 200; }", "blocks"),
            ("add_header X-A;", "add_header takes"),
        ];
        for (snippet, reason) in cases {
            let error = parse(snippet).unwrap_err();
            assert!(error.contains(reason), "{snippet:?}: {error}");
        }
    }

    #[test]
    fn control_characters_never_reach_a_header_value() {
        assert!(parse("more_set_headers \"X-A: a\\\nb\";").is_err());
        assert!(parse("add_header X-A \"a\u{7f}\" always;").is_err());
    }
}
