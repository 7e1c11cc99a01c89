//! RDS route configurations as bytes, and the make-before-break merge of their policies.
//!
//! The route policies live in the virtual host's generic matcher: an `exact_match_map` keyed by the
//! policy header (see `translate::envoy`). That map is a protobuf `map`, which prost encodes in
//! `HashMap` order — a different order on every build — so identical content would get new bytes,
//! a new content-hash version and a push on every rebuild. [`encode`] writes the same message with
//! the map entries sorted by key instead (protobuf accepts fields in any order, so the bytes decode
//! to the same message). [`retain_entries`] adds to a new configuration the policies of the one
//! Envoy has that the new one dropped, so a route table still naming them never meets an unknown
//! key (`stream` uses it until Envoy has ACKed the table that stopped naming them).
//!
//! Pure: no I/O, no state; it knows the shape `translate::routes` builds (the policies' map at the
//! top, or behind a matcher list's `on_no_match`) and nothing else.

use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::xds::r#type::matcher::v3::matcher::matcher_tree::{MatchMap, TreeType};
use envoy_types::pb::xds::r#type::matcher::v3::matcher::{on_match, MatcherTree, MatcherType, OnMatch};
use envoy_types::pb::xds::r#type::matcher::v3::Matcher;
use prost::encoding::{encode_key, encode_varint, WireType};
use prost::{Message, Name};

/// `RouteConfiguration.virtual_hosts`, `VirtualHost.matcher`, `Matcher.matcher_tree`,
/// `MatcherTree.exact_match_map`, `MatchMap.map` (field numbers of Envoy's protos).
const VIRTUAL_HOSTS_TAG: u32 = 2;
const MATCHER_TAG: u32 = 21;
const MATCHER_TREE_TAG: u32 = 2;
const EXACT_MATCH_MAP_TAG: u32 = 2;
const MAP_TAG: u32 = 1;
/// `Matcher.on_no_match`, `OnMatch.matcher`, `OnMatch.keep_matching`.
const ON_NO_MATCH_TAG: u32 = 3;
const ON_MATCH_MATCHER_TAG: u32 = 1;
const ON_MATCH_KEEP_MATCHING_TAG: u32 = 3;

/// The configuration as an `Any`, with [`encode`]'s bytes.
pub fn pack(config: &RouteConfiguration) -> Any {
    Any { type_url: RouteConfiguration::type_url(), value: encode(config) }
}

/// Protobuf bytes of `config` that depend only on its content (map entries sorted by key).
pub fn encode(config: &RouteConfiguration) -> Vec<u8> {
    let shell = RouteConfiguration { virtual_hosts: Vec::new(), ..config.clone() };
    let mut buf = shell.encode_to_vec();
    for host in &config.virtual_hosts {
        length_delimited(VIRTUAL_HOSTS_TAG, &encode_virtual_host(host), &mut buf);
    }
    buf
}

fn length_delimited(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
}

fn encode_virtual_host(host: &VirtualHost) -> Vec<u8> {
    let shell = VirtualHost { matcher: None, ..host.clone() };
    let mut buf = shell.encode_to_vec();
    if let Some(matcher) = &host.matcher {
        length_delimited(MATCHER_TAG, &encode_matcher(matcher), &mut buf);
    }
    buf
}

/// The policies' exact map is written sorted, wherever it sits on the chain of `on_no_match`
/// matchers (behind the TRACE refusal's list); anything else has no map in what
/// `translate::routes` builds and is left to prost.
fn encode_matcher(matcher: &Matcher) -> Vec<u8> {
    let Some(MatcherType::MatcherTree(MatcherTree { input, tree_type: Some(TreeType::ExactMatchMap(map)) })) =
        &matcher.matcher_type
    else {
        return encode_in_front(matcher);
    };
    let mut buf = Matcher { matcher_type: None, on_no_match: matcher.on_no_match.clone() }.encode_to_vec();
    let mut tree = MatcherTree { input: input.clone(), tree_type: None }.encode_to_vec();
    length_delimited(EXACT_MATCH_MAP_TAG, &encode_sorted_map(map), &mut tree);
    length_delimited(MATCHER_TREE_TAG, &tree, &mut buf);
    buf
}

/// A matcher in front of the policies: its own fields by prost, its `on_no_match` matcher by
/// [`encode_matcher`].
fn encode_in_front(matcher: &Matcher) -> Vec<u8> {
    let Some(OnMatch { on_match: Some(on_match::OnMatch::Matcher(nested)), keep_matching }) = matcher.on_no_match.as_deref() else {
        return matcher.encode_to_vec();
    };
    let mut buf = Matcher { matcher_type: matcher.matcher_type.clone(), on_no_match: None }.encode_to_vec();
    let mut on_no_match = Vec::new();
    length_delimited(ON_MATCH_MATCHER_TAG, &encode_matcher(nested), &mut on_no_match);
    if *keep_matching {
        prost::encoding::bool::encode(ON_MATCH_KEEP_MATCHING_TAG, keep_matching, &mut on_no_match);
    }
    length_delimited(ON_NO_MATCH_TAG, &on_no_match, &mut buf);
    buf
}

fn encode_sorted_map(map: &MatchMap) -> Vec<u8> {
    let mut entries: Vec<(&String, &OnMatch)> = map.map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut buf = Vec::new();
    for (key, value) in entries {
        let mut entry = Vec::new();
        prost::encoding::string::encode(1, key, &mut entry);
        prost::encoding::message::encode(2, value, &mut entry);
        length_delimited(MAP_TAG, &entry, &mut buf);
    }
    buf
}

/// The exact-match map of a virtual host's matcher, if it has one: the matcher's own, or that of
/// the matcher its `on_no_match` goes on to (behind the TRACE refusal).
fn policy_map(host: &mut VirtualHost) -> Option<&mut MatchMap> {
    tree_map(host.matcher.as_mut()?, 4)
}

fn tree_map(matcher: &mut Matcher, depth: u8) -> Option<&mut MatchMap> {
    match (&mut matcher.matcher_type, matcher.on_no_match.as_deref_mut()) {
        (Some(MatcherType::MatcherTree(MatcherTree { tree_type: Some(TreeType::ExactMatchMap(map)), .. })), _) => Some(map),
        (_, Some(OnMatch { on_match: Some(on_match::OnMatch::Matcher(nested)), .. })) if depth > 0 => tree_map(nested, depth - 1),
        _ => None,
    }
}

/// `new` plus every policy entry of `old` (same virtual host name) that `new` lacks, re-encoded;
/// `None` when there is nothing to add or either side does not decode.
pub fn retain_entries(new: &Any, old: &Any) -> Option<Any> {
    let mut merged = RouteConfiguration::decode(new.value.as_slice()).ok()?;
    let mut old = RouteConfiguration::decode(old.value.as_slice()).ok()?;
    let mut added = false;
    for host in &mut merged.virtual_hosts {
        let Some(old_host) = old.virtual_hosts.iter_mut().find(|h| h.name == host.name) else { continue };
        let (Some(map), Some(old_map)) = (policy_map(host), policy_map(old_host)) else { continue };
        for (key, entry) in old_map.map.drain() {
            if let std::collections::hash_map::Entry::Vacant(slot) = map.map.entry(key) {
                slot.insert(entry);
                added = true;
            }
        }
    }
    added.then(|| pack(&merged))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::HashMap;

    use envoy_types::pb::xds::core::v3::TypedExtensionConfig;
    use envoy_types::pb::xds::r#type::matcher::v3::matcher::on_match;

    use super::*;

    fn entry(name: &str) -> OnMatch {
        OnMatch {
            on_match: Some(on_match::OnMatch::Action(TypedExtensionConfig { name: name.into(), typed_config: None })),
            keep_matching: false,
        }
    }

    fn config(keys: &[&str]) -> RouteConfiguration {
        let map: HashMap<String, OnMatch> = keys.iter().map(|k| (k.to_string(), entry(k))).collect();
        RouteConfiguration {
            name: "http".into(),
            virtual_hosts: vec![VirtualHost {
                name: "wasm-ingress".into(),
                domains: vec!["*".into()],
                matcher: Some(Matcher {
                    matcher_type: Some(MatcherType::MatcherTree(MatcherTree {
                        input: None,
                        tree_type: Some(TreeType::ExactMatchMap(MatchMap { map })),
                    })),
                    on_no_match: Some(Box::new(entry("fallback"))),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// `config` as `translate::routes` builds it: the policies behind a list (the TRACE refusal).
    fn behind_a_list(mut config: RouteConfiguration) -> RouteConfiguration {
        let host = &mut config.virtual_hosts[0];
        let policies = host.matcher.take().unwrap();
        host.matcher = Some(Matcher {
            matcher_type: Some(MatcherType::MatcherList(Default::default())),
            on_no_match: Some(Box::new(OnMatch { on_match: Some(on_match::OnMatch::Matcher(Box::new(policies))), keep_matching: false })),
        });
        config
    }

    /// Both shapes of the configuration with `keys`.
    fn shapes(keys: &[&str]) -> [RouteConfiguration; 2] {
        [config(keys), behind_a_list(config(keys))]
    }

    fn keys(any: &Any) -> Vec<String> {
        let mut decoded = RouteConfiguration::decode(any.value.as_slice()).unwrap();
        let mut keys: Vec<String> = policy_map(&mut decoded.virtual_hosts[0]).unwrap().map.keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn identical_content_gives_identical_bytes_whatever_the_map_order() {
        let many: Vec<String> = (0..64).map(|i| format!("p{i:02}")).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        for shape in 0..2 {
            let first = encode(&shapes(&names)[shape]);
            for _ in 0..8 {
                assert_eq!(encode(&shapes(&names)[shape]), first, "shape {shape}");
            }
        }
    }

    #[test]
    fn the_bytes_decode_to_the_same_message() {
        for original in shapes(&["a", "b", "c"]) {
            assert_eq!(RouteConfiguration::decode(encode(&original).as_slice()).unwrap(), original);
        }
    }

    #[test]
    fn retaining_adds_only_the_dropped_policies() {
        for (new, old) in shapes(&["default", "p-new"]).into_iter().zip(shapes(&["default", "p-old"])) {
            let (new, old) = (pack(&new), pack(&old));
            let merged = retain_entries(&new, &old).unwrap();
            assert_eq!(keys(&merged), vec!["default", "p-new", "p-old"]);
            assert_eq!(retain_entries(&new, &new), None, "nothing dropped: nothing to merge");
            assert_eq!(retain_entries(&new, &Any { type_url: String::new(), value: vec![0xff] }), None);
        }
    }

    /// What `translate::routes` builds has its policies where these functions look.
    #[test]
    fn the_translated_configuration_has_its_policies_found() {
        let model = crate::model::Model::default();
        let config = &crate::translate::routes::route_configurations(&model, std::time::Duration::from_secs(300))[0];
        let mut decoded = RouteConfiguration::decode(encode(config).as_slice()).unwrap();
        assert_eq!(&decoded, config);
        assert!(policy_map(&mut decoded.virtual_hosts[0]).is_some_and(|map| !map.map.is_empty()));
    }
}
