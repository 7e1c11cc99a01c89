//! The route table within what the filter accepts: the filter refuses a table whose JSON is larger
//! than [`MAX_TABLE_JSON_BYTES`] (Envoy then NACKs the whole update and keeps its last table, or
//! has none), so the control plane leaves out the newest Ingresses' routes until the table fits —
//! the oldest Ingresses keep being served, as the oldest wins a conflict — and says so on each one
//! left out. At 10 000 Ingresses of the benchmark the table is 3.9 MiB; 100 000 make 41 MB.

use std::collections::{BTreeMap, BTreeSet};

use wasm_ingress_filter::limits::MAX_TABLE_JSON_BYTES;
use wasm_ingress_filter::table::RouteTable;

use crate::state::ObjectKey;

/// What the checked table may weigh: the cap less room for what is added after the check (the
/// version, the error-page token and clusters).
pub const LIMIT: usize = MAX_TABLE_JSON_BYTES - 64 * 1024;

/// How the diagnostic of an Ingress left out begins (the table's size follows).
pub const NOT_SERVED: &str = "not served: the route table would be";

/// Leave out whole Ingresses' routes, newest first by `age` (larger is newer), until the table's
/// JSON (`bytes` now) is at most `limit`; hosts left with nothing to answer go too. Returns the
/// Ingresses left out, newest first.
pub fn fit<A: Ord>(table: &mut RouteTable, bytes: usize, limit: usize, age: impl Fn(&ObjectKey) -> A) -> Vec<ObjectKey> {
    if bytes <= limit {
        return Vec::new();
    }
    let mut weights: BTreeMap<ObjectKey, usize> = BTreeMap::new();
    for route in table.hosts.iter().flat_map(|host| &host.routes) {
        if let Some(ingress) = ObjectKey::of_origin(&route.origin) {
            // Each route is one element of its host's array: its JSON and a comma.
            *weights.entry(ingress).or_default() += serde_json::to_vec(route).map_or(0, |json| json.len() + 1);
        }
    }
    let mut newest_first: Vec<(A, ObjectKey)> = weights.keys().map(|key| (age(key), key.clone())).collect();
    newest_first.sort_by(|a, b| b.cmp(a));
    let mut left = bytes;
    let mut dropped = Vec::new();
    for (_, key) in newest_first {
        if left <= limit {
            break;
        }
        left = left.saturating_sub(weights.get(&key).copied().unwrap_or(0));
        dropped.push(key);
    }
    let out: BTreeSet<&ObjectKey> = dropped.iter().collect();
    for host in &mut table.hosts {
        host.routes.retain(|route| ObjectKey::of_origin(&route.origin).is_none_or(|key| !out.contains(&key)));
    }
    table.hosts.retain(|host| !host.routes.is_empty() || host.fallback.is_some() || host.app_root.is_some() || host.fallback_https_redirect.is_some());
    dropped
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use wasm_ingress_filter::table::{Origin, PathMatch, Route, RouteAction, VirtualHost, SCHEMA_VERSION};

    use super::*;

    fn route(ingress: &str, path: &str) -> Route {
        Route {
            path: PathMatch::Prefix(path.into()),
            action: RouteAction::forward_to("default/app/80"),
            origin: Origin::new("default", ingress, "spec.rules[0].http.paths[0]"),
            https_redirect: None,
            answer_headers: Vec::new(),
        }
    }

    fn table() -> RouteTable {
        let host = |name: &str, routes| VirtualHost { host: name.into(), routes, fallback: None, fallback_https_redirect: None, implicit_root: None, app_root: None, client_certificate: None };
        RouteTable {
            schema: SCHEMA_VERSION,
            hosts: vec![
                host("a.test", vec![route("old", "/a"), route("new", "/n1")]),
                host("b.test", vec![route("middle", "/b")]),
                host("n.test", vec![route("new", "/n2")]),
            ],
            ..RouteTable::default()
        }
    }

    fn bytes(table: &RouteTable) -> usize {
        serde_json::to_vec(table).unwrap().len()
    }

    #[test]
    fn the_newest_ingresses_are_left_out_until_the_table_fits() {
        let age = |key: &ObjectKey| match key.name.as_str() {
            "old" => 1,
            "middle" => 2,
            _ => 3,
        };
        let full = table();
        let size = bytes(&full);
        // Room for everything: nothing changes.
        let mut same = full.clone();
        assert!(fit(&mut same, size, size, age).is_empty());
        assert_eq!(same, full);
        // One byte short: the newest Ingress goes, with its host that had nothing else.
        let mut fitted = full.clone();
        assert_eq!(fit(&mut fitted, size, size - 1, age), [ObjectKey::new("default", "new")]);
        assert!(bytes(&fitted) < size);
        let left: Vec<(&str, Vec<String>)> = fitted.hosts.iter().map(|h| (h.host.as_str(), h.routes.iter().map(|r| r.origin.name().to_string()).collect())).collect();
        assert_eq!(left, [("a.test", vec!["old".to_string()]), ("b.test", vec!["middle".to_string()])]);
        // Room for the oldest alone.
        let mut oldest = full.clone();
        let limit = bytes(&fitted) - 1;
        assert_eq!(fit(&mut oldest, size, limit, age), [ObjectKey::new("default", "new"), ObjectKey::new("default", "middle")]);
        assert!(bytes(&oldest) <= limit, "the estimate never leaves the table over the limit");
    }
}
