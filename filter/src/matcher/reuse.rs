//! Compiling a table from its JSON while reusing the hosts of the table before it. A route change
//! touches a few hosts, but every `on_configure` gets the whole table (megabytes at 10 000
//! Ingresses), and parsing it was most of the cost, paid on Envoy's main thread and on every
//! worker. [`HostCache`] keeps each host of the last accepted table under its exact JSON text; the
//! next table's hosts are only delimited (serde_json's `RawValue`, no allocation per field), and
//! a host whose text is byte for byte one of the cache's is taken as it was — parsed, checked
//! and with its path index built. Only the other hosts are parsed and compiled. What spans hosts
//! (names, limits, header patterns, password lists) and the table's own settings are built anew
//! each time, so a table compiled here is the one [`CompiledTable::compile`] makes of the same
//! JSON. Pure: the host shim keeps one cache per VM.

use std::rc::Rc;

use foldhash::HashMap;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{CompileError, CompiledHost, CompiledTable};
use crate::table::{RouteTable, VirtualHost};

/// The hosts of the last table [`HostCache::load`] accepted, by their JSON text (foldhash, as the
/// host index: the keys come from the table, never from clients).
///
/// A VM's first table is parsed whole, as without a cache, and only its JSON and hosts are kept
/// (`first`): the texts are delimited when a second table comes. Envoy checks every new
/// configuration in a fresh VM that never gets a second one (its canary, on the main thread,
/// before the workers get the configuration), so that check costs no more than a plain parse.
#[derive(Debug, Default)]
pub struct HostCache {
    hosts: HashMap<Rc<str>, Rc<CompiledHost>>,
    first: Option<FirstTable>,
}

/// A VM's first accepted table: its JSON, and its hosts in that JSON's order.
#[derive(Debug)]
struct FirstTable {
    json: Box<[u8]>,
    hosts: Vec<Rc<CompiledHost>>,
}

/// A table [`HostCache::load`] accepted, and how many of its hosts were the last table's.
#[derive(Debug)]
pub struct Loaded {
    pub table: CompiledTable,
    pub reused: usize,
}

/// Why [`HostCache::load`] refused a table.
#[derive(Debug)]
pub enum LoadError {
    /// Not JSON of the schema (an unknown field included).
    Json(serde_json::Error),
    /// JSON of the schema that does not compile.
    Compile(CompileError),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Json(e) => write!(f, "not valid JSON for this filter: {e}"),
            LoadError::Compile(e) => write!(f, "refused: {e}"),
        }
    }
}

/// The table's JSON with each host left as text, and the other fields as a JSON object of their
/// own, which [`RouteTable`]'s `Deserialize` then reads exactly as it reads a whole table (an
/// unknown field refused, the control plane's field order kept). A field given twice is refused,
/// `hosts` included, as the derived `Deserialize` refuses it.
struct Outline<'a> {
    hosts: Vec<&'a RawValue>,
    settings: String,
}

impl<'de> Deserialize<'de> for Outline<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Outline<'de>, D::Error> {
        deserializer.deserialize_map(OutlineVisitor)
    }
}

struct OutlineVisitor;

impl<'de> Visitor<'de> for OutlineVisitor {
    type Value = Outline<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a route table (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Outline<'de>, A::Error> {
        let mut hosts = None;
        let mut settings = String::from("{");
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            if key == "hosts" {
                hosts = Some(map.next_value::<Vec<&'de RawValue>>()?);
                continue;
            }
            let value: &'de RawValue = map.next_value()?;
            if settings.len() > 1 {
                settings.push(',');
            }
            settings.push_str(&serde_json::to_string(&key).map_err(de::Error::custom)?);
            settings.push(':');
            settings.push_str(value.get());
        }
        settings.push('}');
        Ok(Outline { hosts: hosts.unwrap_or_default(), settings })
    }
}

impl HostCache {
    /// Parse and compile the table `json`, reusing the hosts it shares with the last table this
    /// cache accepted. On success the cache holds this table's hosts; on failure it is unchanged.
    pub fn load(&mut self, json: &[u8]) -> Result<Loaded, LoadError> {
        if self.hosts.is_empty() && self.first.is_none() {
            return self.load_first(json);
        }
        if let Some(first) = self.first.take() {
            self.hosts = keyed(&first.json, first.hosts);
        }
        let outline: Outline<'_> = serde_json::from_slice(json).map_err(LoadError::Json)?;
        let settings: RouteTable = serde_json::from_str(&outline.settings).map_err(LoadError::Json)?;
        super::check_settings(&settings).map_err(|reason| LoadError::Compile(CompileError::table(reason)))?;
        let mut next = HashMap::with_capacity_and_hasher(outline.hosts.len(), Default::default());
        let mut hosts = Vec::with_capacity(outline.hosts.len());
        let mut reused = 0;
        for raw in outline.hosts {
            let text = raw.get();
            let (key, host) = match self.hosts.get_key_value(text) {
                Some((key, host)) => {
                    reused += 1;
                    (Rc::clone(key), Rc::clone(host))
                }
                None => {
                    let vhost: VirtualHost = serde_json::from_str(text).map_err(LoadError::Json)?;
                    (Rc::from(text), Rc::new(CompiledHost::compile(vhost).map_err(LoadError::Compile)?))
                }
            };
            next.insert(key, Rc::clone(&host));
            hosts.push(host);
        }
        let table = CompiledTable::assemble(settings, hosts).map_err(LoadError::Compile)?;
        self.hosts = next;
        Ok(Loaded { table, reused })
    }

    /// The whole table parsed and compiled at once; its JSON and hosts kept for [`keyed`].
    fn load_first(&mut self, json: &[u8]) -> Result<Loaded, LoadError> {
        // As the outline: an object (serde would also read a struct from an array by position).
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(LoadError::Json(de::Error::custom("a route table must be a JSON object")));
        }
        let table = RouteTable::from_json(json).map_err(LoadError::Json)?;
        let table = CompiledTable::compile(table).map_err(LoadError::Compile)?;
        self.first = Some(FirstTable { json: Box::from(json), hosts: table.hosts().to_vec() });
        Ok(Loaded { table, reused: 0 })
    }
}

/// The hosts of an accepted table (`json`, compiled into `hosts` in its order) by their text; none
/// if the two do not line up (they always do: the same JSON was compiled).
fn keyed(json: &[u8], hosts: Vec<Rc<CompiledHost>>) -> HashMap<Rc<str>, Rc<CompiledHost>> {
    match serde_json::from_slice::<Outline<'_>>(json) {
        Ok(outline) if outline.hosts.len() == hosts.len() => outline.hosts.iter().map(|raw| Rc::from(raw.get())).zip(hosts).collect(),
        _ => HashMap::default(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::matcher::{Outcome, RequestParts};
    use crate::table::{Route, RouteAction, SCHEMA_VERSION};

    fn vhost(host: &str, routes: &[(&str, &str)]) -> VirtualHost {
        let routes = routes
            .iter()
            .map(|(path, cluster)| Route {
                path: crate::table::PathMatch::Prefix((*path).into()),
                action: RouteAction::forward_to(*cluster),
                origin: Default::default(),
                https_redirect: None,
                answer_headers: Vec::new(),
            })
            .collect();
        VirtualHost { host: host.into(), routes, fallback: None, fallback_https_redirect: None, implicit_root: None, app_root: None, client_certificate: None }
    }

    fn json(hosts: Vec<VirtualHost>, default: Option<&str>) -> String {
        RouteTable { schema: SCHEMA_VERSION, version: "v".into(), hosts, default_backend: default.map(RouteAction::forward_to), ..RouteTable::default() }.to_json()
    }

    fn served(table: &CompiledTable, authority: &str, path: &str) -> String {
        match table.route(&RequestParts::new(authority.as_bytes(), path.as_bytes()), 0).outcome {
            Outcome::Forward { cluster, .. } => cluster.to_string(),
            Outcome::Respond { status, .. } => format!("status {status}"),
            Outcome::Redirect { status, location, .. } => format!("redirect {status} {location}"),
        }
    }

    fn shop(cluster: &str) -> VirtualHost {
        vhost("shop.example", &[("/", "ns/shop/80"), ("/api", cluster)])
    }

    /// One table of a sequence: its hosts and default backend, how many hosts the cache should
    /// reuse, and (host, path, what serves it).
    type Step = (Vec<VirtualHost>, Option<&'static str>, usize, Vec<(&'static str, &'static str, &'static str)>);

    /// Each step is a table after the one before: how many hosts were reused, and which cluster
    /// serves each request — the same as a table compiled from scratch.
    #[test]
    fn a_changed_host_is_compiled_again_and_the_others_are_reused() {
        let blog = || vhost("blog.example", &[("/", "ns/blog/80")]);
        let steps: Vec<Step> = vec![
            (vec![shop("ns/api/80"), blog()], None, 0, vec![("shop.example", "/api/x", "ns/api/80"), ("blog.example", "/", "ns/blog/80"), ("new.example", "/", "status 404")]),
            // the shop's /api moves: the blog is reused
            (vec![shop("ns/api-v2/80"), blog()], None, 1, vec![("shop.example", "/api/x", "ns/api-v2/80"), ("blog.example", "/", "ns/blog/80")]),
            // a new host and a default backend: both old hosts reused, table settings read anew
            (vec![shop("ns/api-v2/80"), blog(), vhost("new.example", &[("/", "ns/new/80")])], Some("ns/default/80"), 2, vec![("new.example", "/", "ns/new/80"), ("other.example", "/", "ns/default/80"), ("shop.example", "/api", "ns/api-v2/80")]),
            // a host removed, and the table's order changed
            (vec![vhost("new.example", &[("/", "ns/new/80")]), shop("ns/api-v2/80")], None, 2, vec![("blog.example", "/", "status 404"), ("new.example", "/", "ns/new/80"), ("shop.example", "/", "ns/shop/80")]),
        ];
        let mut cache = HostCache::default();
        for (i, (hosts, default, reused, requests)) in steps.into_iter().enumerate() {
            let text = json(hosts.clone(), default);
            let loaded = cache.load(text.as_bytes()).unwrap_or_else(|e| panic!("step {i}: {e}"));
            assert_eq!(loaded.reused, reused, "step {i}");
            let fresh = CompiledTable::compile(RouteTable::from_json(text.as_bytes()).unwrap()).unwrap();
            for (authority, path, expected) in requests {
                assert_eq!(served(&loaded.table, authority, path), expected, "step {i}: {authority}{path}");
                assert_eq!(served(&fresh, authority, path), expected, "step {i}: {authority}{path} from scratch");
            }
            assert_eq!(loaded.table.host_count(), hosts.len());
        }
    }

    /// What the table's own `Deserialize` refuses is refused here too, and a refused table leaves
    /// the cache as it was: the next table reuses the last accepted one's hosts.
    #[test]
    fn refusals_are_those_of_the_table_and_keep_the_cache() {
        // A first table (parsed whole) must be an object too, as every later one.
        assert!(RouteTable::from_json(b"[1]").is_ok(), "serde reads a struct from an array");
        let first = HostCache::default().load(b" [1]").expect_err("an array").to_string();
        assert!(first.contains("must be a JSON object"), "{first}");
        let mut cache = HostCache::default();
        let good = json(vec![shop("ns/api/80")], None);
        cache.load(good.as_bytes()).unwrap();
        let cases: Vec<(String, &str)> = vec![
            (good.replacen("\"schema\":1", "\"schema\":1,\"unknown\":true", 1), "unknown field `unknown`"),
            (good.replacen("\"host\":", "\"surprise\":1,\"host\":", 1), "unknown field `surprise`"),
            (good.replacen("\"schema\":1", "\"schema\":99", 1), "schema 99 is not supported"),
            (json(vec![shop("ns/api/80"), shop("ns/api/80")], None), "shop.example"),
            (json(vec![vhost("x.example", &[("/", "bad cluster")])], None), "x.example"),
            ("{\"schema\":1,\"hosts\":[{]}".to_string(), "not valid JSON"),
            (format!("{{\"hosts\":[],{}", &good[1..]), "duplicate field `hosts`"),
            (format!("{{\"version\":\"x\",{}", &good[1..]), "duplicate field `version`"),
            ("[]".to_string(), "not valid JSON"),
        ];
        for (text, expected) in cases {
            let error = cache.load(text.as_bytes()).expect_err(&text).to_string();
            assert!(error.contains(expected), "{text}: {error}");
            let whole = RouteTable::from_json(text.as_bytes()).map_err(drop).and_then(|table| CompiledTable::compile(table).map_err(drop));
            assert!(whole.is_err(), "the whole table is refused too: {text}");
        }
        assert_eq!(cache.load(good.as_bytes()).unwrap().reused, 1);
    }
}
