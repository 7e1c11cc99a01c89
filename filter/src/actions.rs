//! Actions: what a matched route does to a request, as plain values — which weighted backend is
//! picked, how `:path` is rewritten (ingress-nginx `rewrite-target` templates, Gateway API
//! `ReplacePrefix`), which `:authority` and policy are sent; a redirect's `Location` is built by
//! `redirect`. Pure functions over strings; no matching (that is `matcher`), no proxy-wasm (that is
//! `host`).
//!
//! `PathRewrite::Template` follows nginx `rewrite <regex> <target> break`, which ingress-nginx
//! generates for `rewrite-target`: the WHOLE path is replaced by the target, `$0`…`$9` are the
//! captures of the route's regex (a group that did not take part is empty), the request's query
//! string is appended (`?q`, or `&q` when the target has a query of its own), and a target ending in
//! `?` drops the request's query string (nginx's documented escape hatch).
//!
//! Hardening: a rewrite never produces a path longer than [`MAX_REWRITTEN_PATH_BYTES`] (its length
//! is computed before anything is allocated; too long: that request gets 414), and the rewritten
//! path has its dot segments resolved and its repeated slashes merged (`.`, `..` and their `%2e`
//! spellings), so captures cannot reassemble a traversal the incoming path did not have.

use regex::Regex;

use std::borrow::Cow;

use crate::decision::{Outcome, URI_TOO_LONG_BODY};
use crate::limits::MAX_REWRITTEN_PATH_BYTES;
use crate::redirect;
use crate::request::RequestParts;
use crate::table::{PathRewrite, RouteAction, WeightedBackend};

/// The request path as the matcher saw it, and how the route matched it.
#[derive(Debug, Clone, Copy)]
pub struct MatchedPath<'p> {
    /// `:path` before `?`/`#` (lossily decoded if it was not UTF-8).
    pub path: &'p str,
    /// The query string after `?` (without the `?`); `None` when the request had no `?`.
    pub query: Option<&'p str>,
    /// How many leading bytes of `path` the route matched: the whole path for `Exact`, the
    /// normalised prefix for `Prefix` (`0` for `/`), the regex match for `Regex`, `0` for fallbacks.
    pub matched_len: usize,
    /// The route's compiled (start-anchored) regex, for a `Regex` route.
    pub regex: Option<&'p Regex>,
}

/// Sum of the backend weights (as `u64`, so it cannot overflow).
pub fn total_weight(backends: &[WeightedBackend]) -> u64 {
    backends.iter().map(|b| u64::from(b.weight)).sum()
}

/// Pick a backend in proportion to its weight; `random` may be any value. Zero-weight backends are
/// never picked unless every weight is zero (then the first one is).
pub fn pick_backend(backends: &[WeightedBackend], random: u64) -> Option<&WeightedBackend> {
    let total = total_weight(backends);
    if total == 0 {
        return backends.first();
    }
    let mut ticket = random % total;
    for backend in backends {
        let weight = u64::from(backend.weight);
        if ticket < weight {
            return Some(backend);
        }
        ticket -= weight;
    }
    backends.last()
}

/// Turn a route action into the outcome for `request`. `matched` is `None` when no route matched
/// (host fallback, default backend): then rewrites are skipped.
pub fn apply<'t>(
    action: &'t RouteAction,
    request: &RequestParts<'_>,
    matched: Option<&MatchedPath<'_>>,
    random: u64,
) -> Outcome<'t> {
    match action {
        RouteAction::Respond(respond) => Outcome::Respond { status: respond.status, body: &respond.body, cors: respond.cors.as_deref() },
        RouteAction::Redirect(target) => redirect::outcome(target, request),
        RouteAction::Forward(forward) => {
            let Some(backend) = pick_backend(&forward.backends, random) else {
                // `compile` refuses an empty backend list; answer like Envoy would for no upstream.
                return Outcome::Respond { status: 503, body: "no backend\n", cors: None };
            };
            let path = match (&forward.rewrite, matched) {
                (Some(rewrite), Some(matched)) => match rewrite_path(rewrite, matched) {
                    Some(path) => Some(path),
                    None => return Outcome::Respond { status: 414, body: URI_TOO_LONG_BODY, cors: None },
                },
                _ => None,
            };
            Outcome::Forward { cluster: &backend.cluster, path, forward }
        }
    }
}

/// The new `:path` (with query string) for a rewrite; `None` when it would be longer than
/// [`MAX_REWRITTEN_PATH_BYTES`].
pub fn rewrite_path(rewrite: &PathRewrite, matched: &MatchedPath<'_>) -> Option<String> {
    let path = match rewrite {
        PathRewrite::Template(template) => expand_template(template, matched)?,
        PathRewrite::ReplacePrefix(replacement) => replace_prefix(replacement, matched)?,
    };
    let (path_part, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path.as_str(), None),
    };
    match normalize_segments(path_part) {
        Cow::Borrowed(_) => Some(path),
        Cow::Owned(mut normalized) => {
            if let Some(query) = query {
                normalized.push('?');
                normalized.push_str(query);
            }
            Some(normalized)
        }
    }
}

/// How many `$N` substitutions a template makes.
pub fn substitutions(template: &str) -> usize {
    let bytes = template.as_bytes();
    bytes.windows(2).filter(|w| w[0] == b'$' && w[1].is_ascii_digit()).count()
}

/// The literal pieces and capture numbers of a template, in order (`"/v2/$1"` -> `/v2/`, `1`).
enum Piece<'t> {
    Literal(&'t str),
    Group(usize),
}

fn pieces(template: &str) -> impl Iterator<Item = Piece<'_>> {
    let bytes = template.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= bytes.len() {
            return None;
        }
        if bytes[at] == b'$' && bytes.get(at + 1).is_some_and(u8::is_ascii_digit) {
            let group = usize::from(bytes[at + 1] - b'0');
            at += 2;
            return Some(Piece::Group(group));
        }
        let start = at;
        at += 1;
        while at < bytes.len() && !(bytes[at] == b'$' && bytes.get(at + 1).is_some_and(u8::is_ascii_digit)) {
            at += 1;
        }
        // `$` and digits are ASCII, so `start..at` is on char boundaries.
        template.get(start..at).map(Piece::Literal)
    })
}

/// nginx `rewrite` semantics; see the module docs. `None` if the result would be too long.
fn expand_template(template: &str, matched: &MatchedPath<'_>) -> Option<String> {
    let captures = matched.regex.and_then(|regex| regex.captures(matched.path));
    let whole = matched.path.get(..matched.matched_len).unwrap_or("");
    let (template, drop_query) = match template.strip_suffix('?') {
        Some(stripped) => (stripped, true),
        None => (template, false),
    };
    let group = |n: usize| -> &str {
        match &captures {
            Some(caps) => caps.get(n).map(|m| m.as_str()).unwrap_or(""),
            None if n == 0 => whole,
            None => "",
        }
    };
    let query = if drop_query { None } else { matched.query.filter(|q| !q.is_empty()) };
    // Length first: a template of many `$0` over a long path must not allocate its result.
    let mut length = 1 + query.map_or(0, |q| q.len() + 1);
    for piece in pieces(template) {
        length += match piece {
            Piece::Literal(text) => text.len(),
            Piece::Group(n) => group(n).len(),
        };
    }
    if length > MAX_REWRITTEN_PATH_BYTES {
        return None;
    }
    let mut out = String::with_capacity(length);
    for piece in pieces(template) {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Group(n) => out.push_str(group(n)),
        }
    }
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    if let Some(query) = query {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(query);
    }
    Some(out)
}

/// Gateway API `ReplacePrefixMatch`: the matched prefix is replaced, the rest of the path kept, with
/// exactly one `/` at the seam and `/` for an empty result. `None` if the result would be too long.
fn replace_prefix(replacement: &str, matched: &MatchedPath<'_>) -> Option<String> {
    let rest = matched.path.get(matched.matched_len..).unwrap_or("");
    let head = replacement.trim_end_matches('/');
    let length = head.len() + rest.len() + 2 + matched.query.map_or(0, str::len);
    if length > MAX_REWRITTEN_PATH_BYTES {
        return None;
    }
    let mut out = String::with_capacity(length);
    out.push_str(head);
    out.push_str(rest);
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    if let Some(query) = matched.query {
        out.push('?');
        out.push_str(query);
    }
    Some(out)
}

/// `.` or its percent-encoded spelling (compared as bytes: a segment may hold any UTF-8).
fn is_dot(segment: &str) -> bool {
    segment == "." || segment.eq_ignore_ascii_case("%2e")
}

/// `..` in any mix of literal and percent-encoded dots.
fn is_dot_dot(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let dot = |part: &[u8]| part == b"." || part.eq_ignore_ascii_case(b"%2e");
    match bytes.len() {
        2 => bytes == b"..",
        4 => (dot(&bytes[..1]) && dot(&bytes[1..])) || (dot(&bytes[..3]) && dot(&bytes[3..])),
        6 => dot(&bytes[..3]) && dot(&bytes[3..]),
        _ => false,
    }
}

/// RFC 3986 `remove_dot_segments` plus merged slashes, on a path that starts with `/`. Borrowed when
/// there is nothing to change (the common case costs no allocation).
fn normalize_segments(path: &str) -> Cow<'_, str> {
    let clean = !path.contains("//") && path.split('/').all(|s| !is_dot(s) && !is_dot_dot(s));
    if clean {
        return Cow::Borrowed(path);
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split('/') {
        trailing_slash = segment.is_empty() || is_dot(segment) || is_dot_dot(segment);
        if is_dot_dot(segment) {
            kept.pop();
        } else if !trailing_slash {
            kept.push(segment);
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn rewrite(rewrite: &PathRewrite, matched: &MatchedPath<'_>) -> String {
        rewrite_path(rewrite, matched).expect("the rewrite must fit")
    }

    fn anchored(pattern: &str) -> Regex {
        Regex::new(&format!("^(?:{pattern})")).unwrap()
    }

    /// Run a Template rewrite the way the matcher would for a Regex route.
    fn template_on_regex(pattern: &str, template: &str, request: &str) -> String {
        let (path, query) = match request.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (request, None),
        };
        let regex = anchored(pattern);
        let matched_len = regex.find(path).map(|m| m.end()).expect("the route regex must match the request");
        let matched = MatchedPath { path, query, matched_len, regex: Some(&regex) };
        rewrite(&PathRewrite::Template(template.into()), &matched)
    }

    #[test]
    fn rewrite_target_follows_the_ingress_nginx_docs_examples() {
        // kubernetes.github.io/ingress-nginx/examples/rewrite/: path `/something(/|$)(.*)`,
        // rewrite-target `/$2` (ingress-nginx writes the location regex case-insensitive).
        let cases = [
            ("/something", "/"),
            ("/something/", "/"),
            ("/something/new", "/new"),
            ("/SOMETHING/new", "/new"),
            ("/something/new?x=1", "/new?x=1"),
            ("/something/a/b/c?x=1&y=2", "/a/b/c?x=1&y=2"),
        ];
        for (request, expected) in cases {
            assert_eq!(template_on_regex("(?i)/something(/|$)(.*)", "/$2", request), expected, "request {request}");
        }
    }

    #[test]
    fn rewrite_target_with_app_prefix_and_single_capture() {
        // Common ingress-nginx form: path `/api(/|$)(.*)` + target `/v2/$2`; and `/foo/?(.*)` + `/$1`.
        assert_eq!(template_on_regex("(?i)/api(/|$)(.*)", "/v2/$2", "/api/users/7"), "/v2/users/7");
        assert_eq!(template_on_regex("(?i)/foo/?(.*)", "/$1", "/foo/bar"), "/bar");
        assert_eq!(template_on_regex("(?i)/foo/?(.*)", "/$1", "/foo"), "/");
    }

    #[test]
    fn rewrite_target_captures_beyond_the_pattern_are_empty_and_dollar_zero_is_the_match() {
        assert_eq!(template_on_regex("/a(/b)?", "/x$1$5", "/a/c"), "/x");
        assert_eq!(template_on_regex("/a(/b)?", "/x$0", "/a/b/c"), "/x/a/b");
    }

    #[test]
    fn rewrite_target_replaces_the_whole_path_not_only_the_match() {
        // nginx `rewrite "(?i)/foo" /bar break;` sends `/foo/anything` to `/bar`.
        assert_eq!(template_on_regex("(?i)/foo", "/bar", "/foo/anything"), "/bar");
    }

    #[test]
    fn rewrite_target_query_handling_matches_nginx() {
        // Target with its own query: the request's is appended with `&`.
        assert_eq!(template_on_regex("/s(/|$)(.*)", "/search?q=$2", "/s/cats?page=2"), "/search?q=cats&page=2");
        assert_eq!(template_on_regex("/s(/|$)(.*)", "/search?q=$2", "/s/cats"), "/search?q=cats");
        // Target ending in `?`: the request's query is dropped.
        assert_eq!(template_on_regex("/s(/|$)(.*)", "/$2?", "/s/cats?page=2"), "/cats");
        // Empty query: nothing appended.
        assert_eq!(template_on_regex("/s(/|$)(.*)", "/$2", "/s/cats?"), "/cats");
    }

    #[test]
    fn rewrite_target_result_always_starts_with_a_slash() {
        assert_eq!(template_on_regex("/s/(.*)", "$1", "/s/cats"), "/cats");
        assert_eq!(template_on_regex("/s/(.*)", "$1", "/s/"), "/");
    }

    #[test]
    fn template_on_a_literal_route_replaces_the_whole_path_without_captures() {
        let matched = MatchedPath { path: "/app/x", query: Some("a=1"), matched_len: 4, regex: None };
        assert_eq!(rewrite(&PathRewrite::Template("/".into()), &matched), "/?a=1");
        assert_eq!(rewrite(&PathRewrite::Template("/new$1".into()), &matched), "/new?a=1");
        assert_eq!(rewrite(&PathRewrite::Template("/m$0".into()), &matched), "/m/app?a=1");
    }

    #[test]
    fn replace_prefix_follows_the_gateway_api_table() {
        // (normalised matched prefix, request path, replacement, expected)
        let cases = [
            ("/foo", "/foo/bar", "/xyz", "/xyz/bar"),
            ("/foo", "/foo/bar", "/xyz/", "/xyz/bar"),
            ("/foo", "/foo", "/xyz", "/xyz"),
            ("/foo", "/foo/", "/xyz", "/xyz/"),
            ("/foo", "/foo", "", "/"),
            ("/foo", "/foo/", "", "/"),
            ("/foo", "/foo/bar", "", "/bar"),
            ("/foo", "/foo", "/", "/"),
            ("/foo", "/foo/bar", "/", "/bar"),
            ("", "/foo/bar", "/xyz", "/xyz/foo/bar"),
        ];
        for (prefix, path, replacement, expected) in cases {
            let matched = MatchedPath { path, query: None, matched_len: prefix.len(), regex: None };
            assert_eq!(
                rewrite(&PathRewrite::ReplacePrefix(replacement.into()), &matched),
                expected,
                "prefix {prefix:?} path {path:?} replacement {replacement:?}"
            );
        }
    }

    #[test]
    fn replace_prefix_keeps_the_query_string() {
        let matched = MatchedPath { path: "/foo/bar", query: Some("x=1&y"), matched_len: 4, regex: None };
        assert_eq!(rewrite(&PathRewrite::ReplacePrefix("/v2".into()), &matched), "/v2/bar?x=1&y");
    }

    fn backends(weights: &[u32]) -> Vec<WeightedBackend> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| WeightedBackend { cluster: format!("c{i}").into(), weight })
            .collect()
    }

    #[test]
    fn weighted_pick_is_proportional_to_weight() {
        let list = backends(&[1, 3, 0, 6]);
        let mut counts = [0usize; 4];
        for random in 0..10_000u64 {
            let picked = pick_backend(&list, random).unwrap();
            let i: usize = picked.cluster[1..].parse().unwrap();
            counts[i] += 1;
        }
        assert_eq!(counts, [1_000, 3_000, 0, 6_000]);
    }

    #[test]
    fn weighted_pick_accepts_any_random_value() {
        let list = backends(&[u32::MAX, u32::MAX]);
        assert_eq!(pick_backend(&list, u64::MAX).map(|b| b.cluster.as_str()), Some("c1"));
        assert_eq!(pick_backend(&list, 0).map(|b| b.cluster.as_str()), Some("c0"));
        assert!(pick_backend(&[], 7).is_none());
    }

    #[test]
    fn rewrite_cannot_reassemble_a_traversal_or_double_slash() {
        // Captures that are dots on their own, or empty groups that leave `//`.
        assert_eq!(template_on_regex("/a/(.)(.)", "/x/$1$2/y", "/a/.."), "/y");
        assert_eq!(template_on_regex("/a/(.*)", "/static/$1", "/a/%2e%2e/%2E%2e/etc/passwd"), "/etc/passwd");
        assert_eq!(template_on_regex("/a/(.*)", "/static/$1", "/a/.%2e/x"), "/x");
        assert_eq!(template_on_regex("/a(/|$)(.*)", "/$1/$2", "/a"), "/");
        assert_eq!(template_on_regex("/a/(.*)", "/b/./$1?", "/a/c/?q"), "/b/c/");
        // A query string is never touched.
        assert_eq!(template_on_regex("/a/(.*)", "/b/$1", "/a/c?p=../x//y"), "/b/c?p=../x//y");
        // Dots inside a segment are just characters.
        assert_eq!(template_on_regex("/a/(.*)", "/b/$1", "/a/..x/y..z"), "/b/..x/y..z");
    }

    #[test]
    fn rewrite_bombs_answer_414_without_building_the_result() {
        let bomb = "$0".repeat(16);
        let long = format!("/a/{}", "x".repeat(1000));
        let regex = anchored("/a/.*");
        let matched = MatchedPath { path: &long, query: None, matched_len: long.len(), regex: Some(&regex) };
        assert_eq!(rewrite_path(&PathRewrite::Template(bomb.clone()), &matched), None);
        let action = RouteAction::Forward(crate::table::Forward {
            backends: backends(&[1]),
            rewrite: Some(PathRewrite::Template(bomb)),
            host_rewrite: None,
            policy: String::new(),
            canary: None,
            cors: None,
            auth: None,
            basic_auth: None,
            connection_limit: None,
            satisfy_any: None,
            lists_first: None,
            response: None,
            subset_hash: None,
            affinity_cookie: None,
            affinity_cookie_expires: None,
        });
        let request = RequestParts::new(b"a", long.as_bytes());
        assert_eq!(apply(&action, &request, Some(&matched), 0), Outcome::Respond { status: 414, body: URI_TOO_LONG_BODY, cors: None });
        // The same template over a short path fits.
        let short = "/a/x";
        let matched = MatchedPath { path: short, query: None, matched_len: short.len(), regex: Some(&regex) };
        assert_eq!(rewrite_path(&PathRewrite::Template("$0".repeat(16)), &matched).map(|p| p.len()), Some(64));
    }

    #[test]
    fn multibyte_segments_never_split_inside_a_character() {
        // Found by the `request` fuzz target: 4-byte segments that are not dots.
        for segment in ["é..", "..é", "€.", "%2é", "ü%2e"] {
            let path = format!("/a/{segment}");
            assert_eq!(template_on_regex("/a/(.*)", "/b/$1", &path), format!("/b/{segment}"));
        }
        assert_eq!(template_on_regex("/a/(.*)", "/b/$1", "/a/.%2E/c"), "/c");
    }

    #[test]
    fn substitutions_are_counted() {
        assert_eq!(substitutions("/$1/x/$2$0"), 3);
        assert_eq!(substitutions("/$x/$"), 0);
    }
}
