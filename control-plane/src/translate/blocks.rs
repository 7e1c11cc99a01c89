//! ingress-nginx's global blocks by request header (ConfigMap `block-user-agents`,
//! `block-referers`) -> an RBAC filter of its own, first in every HTTP filter chain. Pure; typed
//! protos only.
//!
//! ingress-nginx writes each list as an nginx `map` of `$http_user_agent` / `$http_referer` and
//! `if ($block_ua) { return 403; }` at the top of every `server`, its default server included:
//! a listed client gets 403 on every host before any location is chosen — before redirects,
//! authentication or the allow-lists. Here the filter sits before the wasm filter (and has no
//! per-route setting), so it refuses the same requests at the same point. The map's entries keep
//! nginx's meaning: a string is compared with the whole value without case (nginx lowercases
//! both), `~regex` is found anywhere in the value, `~*regex` without case, and an empty or missing
//! header matches nothing. Envoy's matchers compare whole values, so a regex `P` becomes
//! `(?s:.)*(?:P)(?s:.)*`. A pattern is taken only if the `regex` crate takes it (no look-around,
//! no back-references) and RE2 too (`translate::re2`), and it compiles small enough (see
//! [`REGEX_SIZE_LIMIT`]), so `serve` refuses what Envoy would refuse. `block-cidrs` is not here: it is the deny list of routes
//! without address lists of their own (see `translate::ingress::annotations`).

use std::collections::HashMap;

use envoy_types::pb::envoy::config::rbac::v3::{permission, principal, rbac, Permission, Policy, Principal, Rbac as RbacRules};
use envoy_types::pb::envoy::config::route::v3::{header_matcher, HeaderMatcher};
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac;
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, RegexMatcher, StringMatcher};

/// The filter's name (the route RBAC filter, `envoy.filters.http.rbac`, is another one).
pub const BLOCK_FILTER: &str = "wasm-ingress.block-headers";

/// The longest entry taken (nginx has no limit; Envoy's RE2 refuses programs past the
/// bootstrap's `RE2_MAX_PROGRAM_SIZE`).
const MAX_ENTRY: usize = 400;

/// The most memory the `regex` crate may give an entry's pattern (as Envoy matches it). Its
/// program takes 35–100 bytes per instruction of RE2's (measured: `x{500}`, a list of crawler
/// names), so an entry under this limit stays under ~30 000 RE2 instructions, a third of what
/// the bootstrap lets Envoy take: `serve` refuses what Envoy would, never Envoy the listeners.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Words nginx's `map` reads as its own parameters, not as values.
const MAP_PARAMETERS: [&str; 4] = ["default", "hostnames", "include", "volatile"];

/// The `serve` flags of the global blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct HeaderBlocks {
    /// User-Agent values answered 403 on every host, comma-separated (ConfigMap
    /// `block-user-agents`): a string (whole value, any case), `~regex` or `~*regex` (any case),
    /// found anywhere in the value, as entries of nginx's `map`.
    #[arg(long, value_delimiter = ',', value_parser = MapEntry::parse)]
    pub block_user_agents: Vec<MapEntry>,
    /// Referer values answered 403 on every host, comma-separated, as `--block-user-agents`
    /// (ConfigMap `block-referers`).
    #[arg(long, value_delimiter = ',', value_parser = MapEntry::parse)]
    pub block_referers: Vec<MapEntry>,
}

/// One entry of an nginx `map` of a header's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapEntry {
    /// The whole value, compared without ASCII case (kept lower case).
    Exact(String),
    /// A regular expression found anywhere in the value; `ignore_case` for `~*`.
    Regex { pattern: String, ignore_case: bool },
}

impl MapEntry {
    /// An entry as ingress-nginx writes it into the `map` (trimmed; nginx's quotes and its `\`
    /// before a parameter name taken off). What nginx would refuse to load is refused.
    pub fn parse(text: &str) -> Result<MapEntry, String> {
        let trimmed = text.trim();
        let (entry, quoted) = unquote(trimmed);
        if entry.is_empty() {
            return Err("an empty entry".into());
        }
        if entry.len() > MAX_ENTRY {
            return Err(format!("an entry longer than {MAX_ENTRY} characters"));
        }
        if !quoted && has_bare_space(entry) {
            return Err(format!("{trimmed:?} has a space, which nginx's map refuses unless it is escaped (\\ ) or the entry quoted"));
        }
        if let Some(pattern) = entry.strip_prefix("~*") {
            return regex(pattern, true);
        }
        if let Some(pattern) = entry.strip_prefix('~') {
            return regex(pattern, false);
        }
        if MAP_PARAMETERS.contains(&entry) {
            return Err(format!("{entry:?} is a parameter of nginx's map, not a value (\\{entry} is the string)"));
        }
        let literal = entry.strip_prefix('\\').unwrap_or(entry);
        Ok(MapEntry::Exact(literal.to_ascii_lowercase()))
    }

    /// Envoy's matcher of the whole value, and whether an empty value must be left out (a
    /// regex that matches the empty string: nginx never tries regexes on an empty value).
    fn matcher(&self) -> (StringMatcher, bool) {
        match self {
            MapEntry::Exact(value) => (StringMatcher { match_pattern: Some(string_matcher::MatchPattern::Exact(value.clone())), ignore_case: true }, false),
            MapEntry::Regex { pattern, ignore_case } => {
                let flags = if *ignore_case { "(?i)" } else { "" };
                let anywhere = format!("(?s:.)*(?:{flags}{pattern})(?s:.)*");
                let empty_matches = regex::Regex::new(&format!("{flags}{pattern}")).is_ok_and(|r| r.is_match(""));
                (re2(&anywhere), empty_matches)
            }
        }
    }
}

impl std::fmt::Display for MapEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MapEntry::Exact(value) => write!(f, "{value}"),
            MapEntry::Regex { pattern, ignore_case: true } => write!(f, "~*{pattern}"),
            MapEntry::Regex { pattern, ignore_case: false } => write!(f, "~{pattern}"),
        }
    }
}

/// Whether `entry` has whitespace nginx's configuration reader would take as the end of the
/// word: one not escaped with `\` (nginx keeps `\ ` as written, which a regex reads as a space).
fn has_bare_space(entry: &str) -> bool {
    let mut escaped = false;
    for c in entry.chars() {
        if c.is_whitespace() && !escaped {
            return true;
        }
        escaped = c == '\\' && !escaped;
    }
    false
}

/// The entry without nginx's quotes, and whether it had them.
fn unquote(text: &str) -> (&str, bool) {
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|rest| rest.strip_suffix(quote)) {
            return (inner, true);
        }
    }
    (text, false)
}

fn regex(pattern: &str, ignore_case: bool) -> Result<MapEntry, String> {
    if pattern.is_empty() {
        return Err("an empty regular expression".into());
    }
    regex::Regex::new(pattern).map_err(|e| {
        // The crate's message points at the pattern over several lines; its last line says why.
        let message = e.to_string();
        let why = message.lines().last().unwrap_or_default().trim().trim_start_matches("error: ").to_string();
        format!("{pattern:?} is not a regular expression Envoy's RE2 takes ({why})")
    })?;
    if let Some(reason) = super::re2::refuses(pattern) {
        return Err(format!("{pattern:?} has {reason}"));
    }
    let entry = MapEntry::Regex { pattern: pattern.to_string(), ignore_case };
    let (matcher, _) = entry.matcher();
    if let Some(string_matcher::MatchPattern::SafeRegex(re)) = &matcher.match_pattern {
        regex::RegexBuilder::new(&re.regex)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|_| format!("{pattern:?} compiles too large for Envoy (a counted repetition like {{500}}, or too many alternatives)"))?;
    }
    Ok(entry)
}

fn re2(regex: &str) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(string_matcher::MatchPattern::SafeRegex(RegexMatcher {
            regex: regex.to_string(),
            // Envoy's default engine, RE2 (naming it is deprecated).
            engine_type: None,
        })),
        ignore_case: false,
    }
}

impl HeaderBlocks {
    /// The filter's configuration: `None` without blocks (the filter is then left out).
    pub fn filter_config(&self) -> Option<Rbac> {
        let policies: HashMap<String, Policy> = [("block-user-agents", "user-agent", &self.block_user_agents), ("block-referers", "referer", &self.block_referers)]
            .into_iter()
            .filter(|(_, _, entries)| !entries.is_empty())
            .map(|(name, header, entries)| {
                let policy = Policy {
                    permissions: vec![Permission { rule: Some(permission::Rule::Any(true)) }],
                    principals: entries.iter().map(|entry| principal(header, entry)).collect(),
                    ..Default::default()
                };
                (name.to_string(), policy)
            })
            .collect();
        if policies.is_empty() {
            return None;
        }
        Some(Rbac { rules: Some(RbacRules { action: rbac::Action::Deny as i32, policies, ..Default::default() }), ..Default::default() })
    }
}

/// Requests whose `header` the entry matches.
fn principal(header: &str, entry: &MapEntry) -> Principal {
    let (matcher, not_empty) = entry.matcher();
    let matches = header_principal(header, matcher);
    if !not_empty {
        return matches;
    }
    let non_empty = header_principal(header, re2("(?s:.)+"));
    Principal { identifier: Some(principal::Identifier::AndIds(principal::Set { ids: vec![matches, non_empty] })) }
}

fn header_principal(header: &str, matcher: StringMatcher) -> Principal {
    Principal {
        identifier: Some(principal::Identifier::Header(HeaderMatcher {
            name: header.to_string(),
            header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(matcher)),
            ..Default::default()
        })),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_as_nginx_map_reads_them() {
        let exact = |s: &str| Ok(MapEntry::Exact(s.into()));
        let re = |p: &str, ignore_case| Ok(MapEntry::Regex { pattern: p.into(), ignore_case });
        let cases: &[(&str, Result<MapEntry, ()>)] = &[
            ("Mozilla/5.0", exact("mozilla/5.0")),
            ("  curl/8.0 ", exact("curl/8.0")),
            ("~*bot", re("bot", true)),
            ("~^Wget", re("^Wget", false)),
            ("\"Bad Bot 1.0\"", exact("bad bot 1.0")),
            ("'~*bad bot'", re("bad bot", true)),
            ("\\default", exact("default")),
            ("default", Err(())),
            ("hostnames", Err(())),
            ("Bad Bot", Err(())),
            // ingress-nginx's own e2e value (settings/global_access_block.go): an escaped space.
            ("~*chrome\\/68\\.0\\.3440\\.106\\ safari\\/537\\.36", re("chrome\\/68\\.0\\.3440\\.106\\ safari\\/537\\.36", true)),
            ("Alpha\\ Bot", exact("alpha\\ bot")),
            ("", Err(())),
            ("~", Err(())),
            ("~*(?=x)", Err(())),
            ("~(a", Err(())),
            ("~*(x{300}){300}", Err(())),
            ("~(x{100}){100}", Err(())),
            ("~(x{30}){30}", re("(x{30}){30}", false)),
            ("~x{500}", re("x{500}", false)),
        ];
        for (text, expected) in cases {
            assert_eq!(MapEntry::parse(text).map_err(|_| ()), *expected, "{text:?}");
        }
        assert!(MapEntry::parse(&"a".repeat(MAX_ENTRY + 1)).is_err());
    }

    /// Whether the matcher accepts `value`, evaluated as Envoy does (whole value; exact without case).
    fn accepts(entry: &MapEntry, value: &str) -> bool {
        let (matcher, not_empty) = entry.matcher();
        if not_empty && value.is_empty() {
            return false;
        }
        match matcher.match_pattern.unwrap() {
            string_matcher::MatchPattern::Exact(text) => matcher.ignore_case && text.eq_ignore_ascii_case(value),
            string_matcher::MatchPattern::SafeRegex(re) => regex::Regex::new(&format!("^(?:{})$", re.regex)).unwrap().is_match(value),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_regex_is_found_anywhere_a_string_is_the_whole_value() {
        let cases: &[(&str, &str, bool)] = &[
            ("~*bot", "Mozilla/5.0 (compatible; Googlebot/2.1)", true),
            ("~*bot", "Mozilla/5.0 (X11)", false),
            ("~bot", "GoogleBOT", false),
            ("~^curl/", "curl/8.4.0", true),
            ("~^curl/", "xcurl/8.4.0", false),
            ("~7\\.0$", "curl/7.0", true),
            ("curl/8.4.0", "CURL/8.4.0", true),
            ("curl/8.4.0", "curl/8.4.0 extra", false),
            ("~.*", "", false),
            ("~.*", "anything", true),
            ("~*(a|b)", "xBx", true),
            ("~*chrome\\/68\\.0\\.3440\\.106\\ safari\\/537\\.36", "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/68.0.3440.106 Safari/537.36", true),
            ("~*example\\.com", "example.com", true),
            ("qwerty", "qwerty123", false),
        ];
        for (entry, value, blocked) in cases {
            assert_eq!(accepts(&MapEntry::parse(entry).unwrap(), value), *blocked, "{entry} on {value:?}");
        }
    }

    #[test]
    fn one_deny_policy_per_header_and_none_without_entries() {
        assert_eq!(HeaderBlocks::default().filter_config(), None);
        let blocks = HeaderBlocks { block_user_agents: vec![MapEntry::parse("~*bot").unwrap(), MapEntry::parse("~.*").unwrap()], block_referers: Vec::new() };
        let rules = blocks.filter_config().unwrap().rules.unwrap();
        assert_eq!(rules.action, rbac::Action::Deny as i32);
        assert_eq!(rules.policies.keys().collect::<Vec<_>>(), ["block-user-agents"]);
        let principals = &rules.policies["block-user-agents"].principals;
        let Some(principal::Identifier::Header(header)) = &principals[0].identifier else { panic!("{principals:?}") };
        assert_eq!(header.name, "user-agent");
        let Some(principal::Identifier::AndIds(both)) = &principals[1].identifier else { panic!("an empty value is left out: {principals:?}") };
        assert_eq!(both.ids.len(), 2);
    }
}
