//! The path index of one virtual host: a hash map for `Exact`, an ordered list of anchored regexes
//! for `Regex`, and one `matchit` radix tree for `Prefix` (prefix `/a/b` is inserted as `/a/b`,
//! `/a/b/` and `/a/b/{*rest}`; matchit prefers the longest static match and backtracks to shorter
//! catch-alls). The prefix `/`, which matches every path and is the only prefix of most hosts, is
//! kept beside the tree, as the match of last resort, so such hosts build no tree. A lookup is an
//! exact probe, the regexes in table order, then the tree, then `/`.

use std::collections::HashSet;

use foldhash::HashMap;

use regex::Regex;

use super::check::{check_literal_path, check_route_answers};
use super::{CompileError, REGEX_DFA_SIZE_LIMIT, REGEX_SIZE_LIMIT};
use crate::limits::{MAX_REGEX_PATTERN_BYTES, MAX_REGEX_ROUTES_PER_HOST};
use crate::table::{PathMatch, Route};

/// The path indexes of one virtual host.
#[derive(Debug, Default)]
pub(super) struct PathIndex {
    /// `Exact` value -> route index (first one wins on duplicates).
    exact: HashMap<String, usize>,
    /// `Regex` routes in table order, compiled as `^(?:pattern)`.
    regexes: Vec<(usize, Regex)>,
    /// `Prefix` routes other than `/`; `None` when the host has none.
    prefixes: Option<matchit::Router<PrefixHit>>,
    /// The `Prefix` `/` route (the first one), which every path starting with `/` matches.
    root: Option<PrefixHit>,
}

/// What the prefix router stores: which route, and how long its normalised prefix is (the part of
/// the request path that `ReplacePrefix` replaces).
#[derive(Debug, Clone, Copy)]
pub(super) struct PrefixHit {
    pub(super) route: usize,
    pub(super) prefix_len: usize,
}

/// Compile a route regex the way the matcher uses it: anchored at the start, not at the end.
pub(super) fn compile_route_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_REGEX_PATTERN_BYTES {
        return Err(format!("regex is {} bytes, more than the {MAX_REGEX_PATTERN_BYTES} allowed", pattern.len()));
    }
    regex::RegexBuilder::new(&format!("^(?:{pattern})"))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regex {pattern:?}: {e}"))
}

/// A Prefix value without its trailing slashes (`/` becomes the empty prefix that matches all).
fn normalize_prefix(value: &str) -> &str {
    value.trim_end_matches('/')
}

/// Escape matchit's special characters (`{`, `}`) so the value is a static route.
fn escape_matchit(value: &str) -> String {
    value.replace('{', "{{").replace('}', "}}")
}

/// Insert the three matchit routes that together mean "element-wise prefix `value`":
/// the prefix itself, the prefix with a trailing slash, and everything below it.
pub(super) fn insert_prefix(router: &mut matchit::Router<PrefixHit>, value: &str, hit: PrefixHit) -> Result<(), String> {
    let normalized = normalize_prefix(value);
    let escaped = escape_matchit(normalized);
    let mut routes = Vec::with_capacity(3);
    if !escaped.is_empty() {
        routes.push(escaped.clone());
    }
    routes.push(format!("{escaped}/"));
    routes.push(format!("{escaped}/{{*rest}}"));
    for route in routes {
        router
            .insert(route.as_str(), hit)
            .map_err(|e| format!("Prefix path {value:?} cannot be indexed (matchit route {route:?}): {e}"))?;
    }
    Ok(())
}

/// Which route of a host matched, and what the rewrite needs to know about the match.
pub(super) struct PathHit<'i> {
    pub(super) route: usize,
    /// Length of the matched part of the path (exact: all; prefix: the normalised prefix; regex:
    /// the regex match).
    pub(super) matched_len: usize,
    /// The route's regex, for a `Regex` route (its captures feed `PathRewrite::Template`).
    pub(super) regex: Option<&'i Regex>,
}

impl PathIndex {
    pub(super) fn compile(host: &str, routes: &[Route]) -> Result<PathIndex, CompileError> {
        let mut index = PathIndex::default();
        let mut prefix_router: Option<matchit::Router<PrefixHit>> = None;
        let mut seen_prefixes: HashSet<&str> = HashSet::new();
        for (i, route) in routes.iter().enumerate() {
            let error = |reason: String| CompileError {
                host: Some(host.to_string()),
                route: Some(i),
                origin: Box::new(route.origin.clone()),
                reason,
            };
            check_route_answers(route).map_err(error)?;
            match &route.path {
                PathMatch::Exact(value) => {
                    check_literal_path("Exact", value).map_err(error)?;
                    index.exact.entry(value.clone()).or_insert(i);
                }
                PathMatch::Prefix(value) => {
                    check_literal_path("Prefix", value).map_err(error)?;
                    let normalized = normalize_prefix(value);
                    // The first route with a given prefix wins, like the first Exact.
                    if normalized.is_empty() {
                        index.root.get_or_insert(PrefixHit { route: i, prefix_len: 0 });
                    } else if seen_prefixes.insert(normalized) {
                        let router = prefix_router.get_or_insert_with(matchit::Router::new);
                        insert_prefix(router, value, PrefixHit { route: i, prefix_len: normalized.len() })
                            .map_err(error)?;
                    }
                }
                PathMatch::Regex(pattern) => {
                    if index.regexes.len() >= MAX_REGEX_ROUTES_PER_HOST {
                        return Err(error(format!(
                            "more than {MAX_REGEX_ROUTES_PER_HOST} regex routes on one host"
                        )));
                    }
                    let regex = compile_route_regex(pattern).map_err(error)?;
                    index.regexes.push((i, regex));
                }
            }
        }
        index.prefixes = prefix_router;
        Ok(index)
    }

    pub(super) fn lookup(&self, path: &str) -> Option<PathHit<'_>> {
        if let Some(&route) = self.exact.get(path) {
            return Some(PathHit { route, matched_len: path.len(), regex: None });
        }
        for (route, regex) in &self.regexes {
            if let Some(m) = regex.find(path) {
                return Some(PathHit { route: *route, matched_len: m.end(), regex: Some(regex) });
            }
        }
        let in_tree = self.prefixes.as_ref().and_then(|router| router.at(path).ok()).map(|hit| *hit.value);
        let hit = in_tree.or(self.root.filter(|_| path.starts_with('/')))?;
        Some(PathHit { route: hit.route, matched_len: hit.prefix_len, regex: None })
    }
}
