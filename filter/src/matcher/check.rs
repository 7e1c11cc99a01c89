//! Table validation: what [`super::CompiledTable::compile`] refuses besides the indexes' own
//! conditions, and the per-route checks the control plane runs before it puts a route in a table.
//! Every value that ends up in a header is header-safe, every template and regex is bounded, and
//! every refusal names the field.

use regex::Regex;

use super::paths::{compile_route_regex, insert_prefix, PrefixHit};
use super::{REGEX_DFA_SIZE_LIMIT, REGEX_SIZE_LIMIT};
use crate::actions;
use crate::limits::{
    answer_header_value_ok, MAX_ANSWER_HEADERS, MAX_ANSWER_HEADER_VALUE_BYTES, MAX_AUTH_RESPONSE_HEADERS, MAX_CANARY_NAME_BYTES, MAX_PASSWORD_FIELD_BYTES, MAX_POLICY_KEY_BYTES, MAX_REGEX_PATTERN_BYTES, MAX_REGEX_ROUTES,
    MAX_REQUEST_PATH_BYTES, MAX_REWRITE_SUBSTITUTIONS, MAX_REWRITE_TEMPLATE_BYTES,
};
use crate::redirect::check_redirect;
use crate::table::{AnswerHeader, ANSWER_OWN_HEADERS, Canary, CanaryHeaderRule, Cors, ExternalAuth, Forward, PathMatch, PathRewrite, ResponseRewrite, Route, RouteAction, RouteTable, VirtualHost, MIN_ERROR_PAGE_TOKEN, SCHEMA_VERSION};

/// Check one route on its own (regex compiles, path is indexable, action and `https_redirect` are
/// well-formed), so the control plane can drop a bad route with a diagnostic instead of sending a
/// table the filter refuses. A host's `app_root` is checked with [`check_redirect`].
pub fn check_route(route: &Route) -> Result<(), String> {
    match &route.path {
        PathMatch::Exact(value) => check_literal_path("Exact", value)?,
        PathMatch::Prefix(value) => {
            check_literal_path("Prefix", value)?;
            let mut probe = matchit::Router::new();
            insert_prefix(&mut probe, value, PrefixHit { route: 0, prefix_len: 0 })?;
        }
        PathMatch::Regex(pattern) => {
            compile_route_regex(pattern)?;
        }
    }
    check_route_answers(route)
}

/// What a route answers with: its action, its `https_redirect` if any, and the headers of the
/// filter's own answers.
pub(super) fn check_route_answers(route: &Route) -> Result<(), String> {
    check_action(&route.action)?;
    check_answer_headers(&route.answer_headers)?;
    match &route.https_redirect {
        Some(redirect) => check_redirect(redirect).map_err(|e| format!("https_redirect: {e}")),
        None => Ok(()),
    }
}

/// `answer_headers`: bounded, lower-case header names other than pseudo-headers and the ones the
/// answers make themselves, printable ASCII values.
fn check_answer_headers(headers: &[AnswerHeader]) -> Result<(), String> {
    if headers.len() > MAX_ANSWER_HEADERS {
        return Err(format!("answer_headers: more than {MAX_ANSWER_HEADERS}"));
    }
    for header in headers {
        check_lower_case_token("answer header", &header.name)?;
        if ANSWER_OWN_HEADERS.contains(&header.name.as_str()) {
            return Err(format!("answer header {:?} is one the answer sets itself", header.name));
        }
        if !answer_header_value_ok(&header.value) {
            return Err(format!("answer header {}: value is empty, over {MAX_ANSWER_HEADER_VALUE_BYTES} bytes or not printable ASCII", header.name));
        }
    }
    Ok(())
}

/// Check an action on its own (used for routes, host fallbacks and the default backend): a
/// `Forward` has at least one backend, non-zero total weight, header-safe cluster, template and
/// host values and a well-formed policy key; a `Respond` has a status in 200..=599; a `Redirect`
/// passes [`check_redirect`].
pub fn check_action(action: &RouteAction) -> Result<(), String> {
    match action {
        RouteAction::Forward(forward) => check_forward(forward),
        RouteAction::Respond(respond) if (200..=599).contains(&respond.status) => {
            respond.cors.as_deref().map_or(Ok(()), |cors| check_cors(cors).map_err(|e| format!("cors: {e}")))
        }
        RouteAction::Respond(respond) => Err(format!("Respond status {} is outside 200..=599", respond.status)),
        RouteAction::Redirect(redirect) => {
            check_redirect(redirect)?;
            redirect.cors.as_deref().map_or(Ok(()), |cors| check_cors(cors).map_err(|e| format!("cors: {e}")))
        }
    }
}

fn check_forward(forward: &Forward) -> Result<(), String> {
    if forward.backends.is_empty() {
        return Err("Forward has no backends".into());
    }
    if actions::total_weight(&forward.backends) == 0 {
        return Err("Forward backends all have weight 0".into());
    }
    for backend in &forward.backends {
        check_header_value("backend cluster", &backend.cluster)?;
    }
    match &forward.rewrite {
        Some(PathRewrite::Template(template)) => check_template(template)?,
        Some(PathRewrite::ReplacePrefix(replacement)) => check_replace_prefix(replacement)?,
        None => {}
    }
    if let Some(host) = &forward.host_rewrite {
        check_header_value("host_rewrite", host)?;
    }
    if let Some(canary) = &forward.canary {
        check_canary(canary).map_err(|e| format!("canary: {e}"))?;
    }
    if let Some(cors) = &forward.cors {
        check_cors(cors).map_err(|e| format!("cors: {e}"))?;
    }
    if let Some(auth) = &forward.auth {
        check_auth(auth).map_err(|e| format!("auth: {e}"))?;
    }
    if let Some(basic) = &forward.basic_auth {
        if basic.realm.len() > MAX_PASSWORD_FIELD_BYTES || basic.realm.contains(|c: char| c.is_control()) {
            return Err(format!("basic_auth: realm is longer than {MAX_PASSWORD_FIELD_BYTES} bytes or has control characters"));
        }
    }
    if let Some(response) = &forward.response {
        check_response(response).map_err(|e| format!("response: {e}"))?;
    }
    if let Some(limit) = &forward.connection_limit {
        crate::connections::check(limit).map_err(|e| format!("connection_limit: {e}"))?;
    }
    let has_auth = forward.basic_auth.is_some() || forward.auth.is_some();
    if let Some(any) = &forward.satisfy_any {
        crate::satisfy::check(any, has_auth).map_err(|e| format!("satisfy_any: {e}"))?;
    }
    if let Some(lists) = &forward.lists_first {
        if forward.satisfy_any.is_some() {
            return Err("lists_first with satisfy_any".into());
        }
        crate::satisfy::check(lists, has_auth).map_err(|e| format!("lists_first: {e}"))?;
    }
    if let Some(name) = &forward.affinity_cookie {
        check_cookie_name("affinity cookie", name).map_err(|e| format!("affinity_cookie: {e}"))?;
    }
    if let Some(key) = &forward.subset_hash {
        check_subset_hash(key).map_err(|e| format!("subset_hash: {e}"))?;
    }
    check_policy_key(&forward.policy)
}

/// Each `from` and `to` of a route's response rewrites is a template the sign-in rules accept
/// (known variables, no spaces or control characters, bounded); an empty `from` would match
/// every value.
fn check_response(response: &ResponseRewrite) -> Result<(), String> {
    let pairs = [("redirect", &response.redirect), ("cookie_domain", &response.cookie_domain), ("cookie_path", &response.cookie_path)];
    for (name, pair) in pairs {
        let Some(pair) = pair else { continue };
        if pair.from.is_empty() {
            return Err(format!("{name}: empty from"));
        }
        crate::auth::check_template(&pair.from).map_err(|e| format!("{name}: from {e}"))?;
        crate::auth::check_template(&pair.to).map_err(|e| format!("{name}: to {e}"))?;
    }
    if let Some(cookie) = &response.conditional_samesite_none {
        check_cookie_name("conditional_samesite_none", cookie)?;
    }
    Ok(())
}

/// An external auth's request parts are header-safe, its path absolute, its response header
/// names lower-case tokens (at most [`MAX_AUTH_RESPONSE_HEADERS`]) and its sign-in template uses
/// known variables only.
fn check_auth(auth: &ExternalAuth) -> Result<(), String> {
    check_header_value("cluster", &auth.cluster)?;
    if let Some(cache) = &auth.cache {
        crate::auth_cache::check(cache).map_err(|e| format!("cache: {e}"))?;
    }
    if let Some(authority) = &auth.authority {
        check_header_value("authority", authority)?;
    }
    if !auth.path.starts_with('/') || auth.path.len() > MAX_REQUEST_PATH_BYTES {
        return Err(format!("path {:?} is not an absolute path of at most {MAX_REQUEST_PATH_BYTES} bytes", auth.path));
    }
    check_header_value("path", &auth.path)?;
    if let Some(method) = &auth.method {
        check_token("method", method)?;
    }
    if let Some(signin) = &auth.signin {
        crate::auth::check_template(signin).map_err(|e| format!("signin {e}"))?;
    }
    if auth.response_headers.len() > MAX_AUTH_RESPONSE_HEADERS {
        return Err(format!("more than {MAX_AUTH_RESPONSE_HEADERS} response headers"));
    }
    for name in &auth.response_headers {
        check_lower_case_token("response header", name)?;
    }
    if let Some(redirect) = &auth.request_redirect {
        check_header_value("request_redirect", redirect)?;
    }
    if auth.set_headers.len() > MAX_AUTH_RESPONSE_HEADERS {
        return Err(format!("more than {MAX_AUTH_RESPONSE_HEADERS} set headers"));
    }
    for header in &auth.set_headers {
        check_lower_case_token("set header", &header.name)?;
        if header.name.starts_with(':') || header.name == "host" {
            return Err(format!("set header {:?} is not a header name other than host", header.name));
        }
        crate::auth::check_header_template(&header.value).map_err(|e| format!("set header {}: {e}", header.name))?;
    }
    if auth.timeout_ms == 0 {
        return Err("timeout_ms is 0".into());
    }
    Ok(())
}

/// A CORS rule's policy keys are well-formed and its origin pattern compiles.
fn check_cors(cors: &Cors) -> Result<(), String> {
    check_policy_key(&cors.policy)?;
    check_policy_key(&cors.preflight_policy)?;
    if let Some(pattern) = &cors.origin_pattern {
        compile_header_regex(pattern)?;
    }
    check_answer_headers(&cors.answer_headers)
}

/// A canary's cluster is header-safe, its header and cookie names are tokens (header names lower
/// case), its pattern compiles and its weight total is not 0.
fn check_canary(canary: &Canary) -> Result<(), String> {
    check_header_value("cluster", &canary.cluster)?;
    if let Some(header) = &canary.header {
        check_lower_case_token("header name", &header.name)?;
        match &header.rule {
            CanaryHeaderRule::Value(value) => {
                // Inner spaces are the value's own (`Do Canary`, which ingress-nginx takes); a
                // space at either end could never match (Envoy trims header values).
                check_header_value("header value", &value.replace(' ', ""))?;
                if value.starts_with(' ') || value.ends_with(' ') {
                    return Err(format!("header value {value:?} starts or ends with a space"));
                }
            }
            CanaryHeaderRule::Pattern(pattern) => drop(compile_header_regex(pattern)?),
            CanaryHeaderRule::AlwaysNever | CanaryHeaderRule::PresentMeansPrimary => {}
        }
    }
    if let Some(cookie) = &canary.cookie {
        check_basic_chars("cookie name", cookie)?;
    }
    if canary.weight_total == 0 {
        return Err("weight_total is 0".into());
    }
    Ok(())
}

/// A subset hash key names a lower-case header (or `:path` / `:authority`), or a cookie or query
/// argument by token.
fn check_subset_hash(key: &crate::subset::HashKey) -> Result<(), String> {
    use crate::subset::HashKey;
    match key {
        HashKey::Header { name } if name == ":path" || name == ":authority" => Ok(()),
        HashKey::Header { name } => check_lower_case_token("header name", name),
        HashKey::Cookie { name } => check_token("cookie name", name),
        HashKey::Query { name } => check_token("query argument", name),
        HashKey::SourceIp => Ok(()),
    }
}

/// A header or cookie name: 1..=MAX_CANARY_NAME_BYTES of `[A-Za-z0-9_-]` (the characters
/// ingress-nginx accepts in canary header and cookie names).
pub fn check_token(what: &str, name: &str) -> Result<(), String> {
    check_chars(what, name, b"-_", "letters, digits, '-' or '_'")
}

/// `value` is 1..=MAX_CANARY_NAME_BYTES of ASCII letters, digits and `extra` (`Err` says so,
/// with `described`).
fn check_chars(what: &str, value: &str, extra: &[u8], described: &str) -> Result<(), String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || extra.contains(&b);
    if value.is_empty() || value.len() > MAX_CANARY_NAME_BYTES || !value.bytes().all(allowed) {
        return Err(format!("{what} {value:?} is not 1 to {MAX_CANARY_NAME_BYTES} {described}"));
    }
    Ok(())
}

/// A sticky cookie's name: a [`check_token`] that may also hold `.` and `~` (RFC 6265 token
/// characters ingress-nginx's `BasicCharsRegex` allows, as in `SERVER.ID`).
pub fn check_cookie_name(what: &str, name: &str) -> Result<(), String> {
    check_chars(what, name, b"-_.~", "letters, digits, '-', '_', '.' or '~'")
}

/// A canary cookie name or header value: 1..=MAX_CANARY_NAME_BYTES of ingress-nginx's
/// `BasicCharsRegex` (`[A-Za-z0-9/\-._~:]`), which it validates them with (`v1.2`, `canary.flag`).
pub fn check_basic_chars(what: &str, value: &str) -> Result<(), String> {
    check_chars(what, value, b"/-._~:", "letters, digits or '/', '-', '.', '_', '~', ':'")
}

/// A header name the table carries: a [`check_token`] in lower case.
fn check_lower_case_token(what: &str, name: &str) -> Result<(), String> {
    check_token(what, name)?;
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("{what} {name:?} is not lower case"));
    }
    Ok(())
}

/// Compile a header pattern (a canary header's, a CORS origin's): unanchored, as ingress-nginx's
/// `ngx.re.match` without options.
pub fn compile_header_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_REGEX_PATTERN_BYTES {
        return Err(format!("regex is {} bytes, more than the {MAX_REGEX_PATTERN_BYTES} allowed", pattern.len()));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regex {pattern:?}: {e}"))
}

fn check_template(template: &str) -> Result<(), String> {
    check_header_value("rewrite template", template)?;
    if template.len() > MAX_REWRITE_TEMPLATE_BYTES {
        return Err(format!(
            "rewrite template is {} bytes, more than the {MAX_REWRITE_TEMPLATE_BYTES} allowed",
            template.len()
        ));
    }
    let bytes = template.as_bytes();
    let variable = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'$' && !bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
    if variable {
        return Err(format!(
            "rewrite template {template:?}: only $0..$9 (regex captures) are supported after '$', not nginx variables"
        ));
    }
    let substitutions = actions::substitutions(template);
    if substitutions > MAX_REWRITE_SUBSTITUTIONS {
        return Err(format!(
            "rewrite template has {substitutions} $N substitutions, more than the {MAX_REWRITE_SUBSTITUTIONS} allowed"
        ));
    }
    Ok(())
}

fn check_replace_prefix(replacement: &str) -> Result<(), String> {
    if !replacement.is_empty() && !replacement.starts_with('/') {
        return Err(format!("ReplacePrefix value {replacement:?} must start with '/'"));
    }
    if replacement.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b == b'#') {
        return Err(format!("ReplacePrefix value {replacement:?} contains a control character, space, '?' or '#'"));
    }
    Ok(())
}

/// A policy key is sent as a header and looked up by Envoy as is, so it is kept to `[0-9a-z-]`.
/// Empty: the default policy.
fn check_policy_key(key: &str) -> Result<(), String> {
    if key.len() > MAX_POLICY_KEY_BYTES {
        return Err(format!("policy key is {} bytes, more than the {MAX_POLICY_KEY_BYTES} allowed", key.len()));
    }
    if !key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(format!("policy key {key:?} may only contain lower-case letters, digits and '-'"));
    }
    Ok(())
}

/// Exact and Prefix values are absolute paths without query or fragment (those are never part of
/// the matched path, so such a rule could never match).
pub(super) fn check_literal_path(kind: &str, value: &str) -> Result<(), String> {
    if !value.starts_with('/') {
        return Err(format!("{kind} path {value:?} must start with '/'"));
    }
    if value.contains(['?', '#']) {
        return Err(format!("{kind} path {value:?} contains '?' or '#' and could never match (the query is not part of the path)"));
    }
    Ok(())
}

/// Values that end up in a request header must be non-empty and free of control characters and
/// spaces (no header injection, no values Envoy would reject).
fn check_header_value(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if value.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(format!("{what} {value:?} contains a control character or space"));
    }
    Ok(())
}


/// The checks of a table's own settings (everything but its hosts): schema, default backend,
/// answer headers, address ranges, error pages. Run once per table, before its hosts.
pub(super) fn check_settings(table: &RouteTable) -> Result<(), String> {
    if table.schema != SCHEMA_VERSION {
        return Err(format!(
            "schema {} is not supported (this filter understands schema {SCHEMA_VERSION})",
            table.schema
        ));
    }
    if let Some(default) = &table.default_backend {
        check_action(default).map_err(|e| format!("default_backend: {e}"))?;
    }
    check_answer_headers(&table.answer_headers).map_err(|e| format!("table {e}"))?;
    crate::address::check_ranges(&table.default_server_denied).map_err(|e| format!("default_server_denied: {e}"))?;
    for cluster in &table.error_page_clusters {
        check_header_value("error page cluster", cluster)?;
    }
    if !table.error_page_clusters.windows(2).all(|pair| pair[0] < pair[1]) {
        return Err("error_page_clusters must be sorted without duplicates".into());
    }
    let token = &table.error_page_token;
    if !table.error_page_clusters.is_empty() && (token.len() < MIN_ERROR_PAGE_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic())) {
        return Err(format!("error_page_token must have at least {MIN_ERROR_PAGE_TOKEN} printable characters and no space"));
    }
    Ok(())
}

/// The table-wide limit on regex routes, over all its hosts.
pub(super) fn check_regex_count(vhosts: &[&VirtualHost]) -> Result<(), String> {
    let regex_routes = vhosts.iter().flat_map(|h| &h.routes).filter(|r| matches!(r.path, PathMatch::Regex(_))).count();
    if regex_routes > MAX_REGEX_ROUTES {
        return Err(format!("{regex_routes} regex routes, more than the {MAX_REGEX_ROUTES} allowed"));
    }
    Ok(())
}

/// What a host answers with besides its routes: its `fallback` (and `fallback_https_redirect`),
/// its `implicit_root` and its `app_root`.
pub(super) fn check_host_answers(vhost: &VirtualHost) -> Result<(), String> {
    if let Some(fallback) = &vhost.fallback {
        check_action(fallback).map_err(|e| format!("fallback: {e}"))?;
    }
    if let Some(redirect) = &vhost.fallback_https_redirect {
        check_redirect(redirect).map_err(|e| format!("fallback_https_redirect: {e}"))?;
    }
    if let Some(root) = &vhost.implicit_root {
        check_action(root).map_err(|e| format!("implicit_root: {e}"))?;
    }
    if let Some(app_root) = &vhost.app_root {
        check_redirect(app_root).map_err(|e| format!("app_root: {e}"))?;
    }
    if let Some(rule) = &vhost.client_certificate {
        crate::client_cert::check_rule(rule)?;
    }
    Ok(())
}
