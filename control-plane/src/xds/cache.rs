//! The versioned snapshot: per xDS type, the resources by name and a version that is a content
//! hash, published to every ADS stream on a `tokio::sync::watch` channel.
//!
//! Versions are SHA-256 over the resources sorted by name (each resource hashed over its name, type
//! URL and encoded bytes), so an identical rebuild has identical versions and [`SnapshotCache::update`]
//! publishes nothing. A stream that serves only some names of a type (EDS, SDS, ECDS) versions its
//! response with the same function over just those resources ([`Snapshot::select`]).
//!
//! This module holds no per-stream state (that is `stream`) and does no network I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::google::protobuf::Any;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::resources::{NamedResource, ResourceType};

/// One resource and the hash of its content.
#[derive(Debug, Clone, PartialEq)]
struct HashedResource {
    resource: Any,
    hash: [u8; 32],
}

/// All resources of one type.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TypeSnapshot {
    version: String,
    /// Shared with the snapshots that hold the same resource.
    resources: BTreeMap<String, Arc<HashedResource>>,
}

impl TypeSnapshot {
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.resources.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }
}

/// What a stream sends for one type: a version and the resources (sorted by name).
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub version: String,
    /// The resources' names, in the same order.
    pub names: Vec<String>,
    pub resources: Vec<Any>,
}

/// Every resource Envoy gets, by type. A snapshot without a type (the initial, empty one) means
/// "not built yet": streams wait instead of sending an empty configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// Shared: a snapshot made by [`Snapshot::replacing`] holds the other types of the one before.
    types: BTreeMap<ResourceType, Arc<TypeSnapshot>>,
}

impl Snapshot {
    /// The snapshot before the first build: no type is ready.
    pub fn empty() -> Snapshot {
        Snapshot::default()
    }

    /// A snapshot with every type of [`ResourceType::ALL`] (types missing from `by_type` are empty).
    /// Two resources of one type with the same name: the last one is kept.
    pub fn new(by_type: BTreeMap<ResourceType, Vec<NamedResource>>) -> Snapshot {
        Snapshot::new_keeping(by_type, &Snapshot::empty(), &BTreeMap::new())
    }

    /// As [`Snapshot::new`], plus the resources of `previous` that `kept` names, shared as they
    /// are instead of encoded and hashed again (a rebuild whose clusters did not change). A kept
    /// name `previous` lacks is left out, so keep only names `previous` has
    /// ([`Snapshot::resource_hash`]); a resource of `by_type` wins over a kept one of its name.
    pub fn new_keeping(
        mut by_type: BTreeMap<ResourceType, Vec<NamedResource>>,
        previous: &Snapshot,
        kept: &BTreeMap<ResourceType, Vec<&str>>,
    ) -> Snapshot {
        let mut types = BTreeMap::new();
        for resource_type in ResourceType::ALL {
            let mut resources = BTreeMap::new();
            if let (Some(before), Some(names)) = (previous.types.get(&resource_type), kept.get(&resource_type)) {
                for name in names {
                    if let Some((name, resource)) = before.resources.get_key_value(*name) {
                        resources.insert(name.clone(), Arc::clone(resource));
                    }
                }
            }
            for named in by_type.remove(&resource_type).unwrap_or_default() {
                let hash = resource_hash(&named.name, &named.resource);
                resources.insert(named.name, Arc::new(HashedResource { resource: named.resource, hash }));
            }
            let version = content_version(resources.iter().map(|(name, r)| (name.as_str(), &r.hash)));
            types.insert(resource_type, Arc::new(TypeSnapshot { version, resources }));
        }
        Snapshot { types }
    }

    /// This snapshot with `resources` of `resource_type` put in place of those of the same names
    /// (or added). Only that type is copied and versioned again; the others are shared.
    pub fn replacing(&self, resource_type: ResourceType, resources: Vec<NamedResource>) -> Snapshot {
        let mut types = self.types.clone();
        let mut replaced = types.get(&resource_type).map(|t| (**t).clone()).unwrap_or_default();
        for named in resources {
            let hash = resource_hash(&named.name, &named.resource);
            replaced.resources.insert(named.name, Arc::new(HashedResource { resource: named.resource, hash }));
        }
        replaced.version = content_version(replaced.resources.iter().map(|(name, r)| (name.as_str(), &r.hash)));
        types.insert(resource_type, Arc::new(replaced));
        Snapshot { types }
    }

    /// Whether any type is present (false only for [`Snapshot::empty`]).
    pub fn is_built(&self) -> bool {
        !self.types.is_empty()
    }

    pub fn get(&self, resource_type: ResourceType) -> Option<&TypeSnapshot> {
        self.types.get(&resource_type).map(Arc::as_ref)
    }

    pub fn version(&self, resource_type: ResourceType) -> Option<&str> {
        self.types.get(&resource_type).map(|t| t.version.as_str())
    }

    /// Whether the snapshot has a resource of `resource_type` for each of `names` (sorted, as a
    /// `BTreeMap`'s keys): one walk beside its own sorted names.
    pub fn holds_all<'a>(&self, resource_type: ResourceType, mut names: impl Iterator<Item = &'a String>) -> bool {
        let mut held = self.types.get(&resource_type).map(|t| t.resources.keys()).into_iter().flatten().peekable();
        names.all(|name| {
            while held.next_if(|h| *h < name).is_some() {}
            held.next_if(|h| *h == name).is_some()
        })
    }

    /// The content hash of one resource, if the snapshot has it.
    pub fn resource_hash(&self, resource_type: ResourceType, name: &str) -> Option<[u8; 32]> {
        Some(self.types.get(&resource_type)?.resources.get(name)?.hash)
    }

    /// The content hash of `resource` named `name`: the snapshot's own when it holds that very
    /// content (a byte comparison), else computed (a resource kept from an older snapshot).
    pub fn hash_of(&self, resource_type: ResourceType, name: &str, resource: &Any) -> [u8; 32] {
        match self.types.get(&resource_type).and_then(|t| t.resources.get(name)) {
            Some(held) if held.resource == *resource => held.hash,
            _ => resource_hash(name, resource),
        }
    }

    /// A snapshot of `(type, name, content)` entries, each resource's bytes being `content`
    /// (tests of the stream machines).
    #[cfg(test)]
    pub fn of_contents(entries: &[(ResourceType, &str, &str)]) -> Arc<Snapshot> {
        let mut by_type: BTreeMap<ResourceType, Vec<NamedResource>> = BTreeMap::new();
        for (t, name, content) in entries {
            by_type.entry(*t).or_default().push(NamedResource {
                name: name.to_string(),
                resource: Any { type_url: t.type_url().to_string(), value: content.as_bytes().to_vec() },
            });
        }
        Arc::new(Snapshot::new(by_type))
    }

    /// Whether both snapshots hold the very same resource of that name (shared, not rebuilt).
    #[cfg(test)]
    pub fn shares(&self, other: &Snapshot, resource_type: ResourceType, name: &str) -> bool {
        let one = |s: &Snapshot| s.types.get(&resource_type).and_then(|t| t.resources.get(name)).cloned();
        matches!((one(self), one(other)), (Some(a), Some(b)) if Arc::ptr_eq(&a, &b))
    }

    /// The version [`Snapshot::select`] would give, without copying any resource.
    pub fn selection_version(&self, resource_type: ResourceType, names: Option<&BTreeSet<String>>) -> Option<String> {
        let snapshot = self.types.get(&resource_type)?;
        let Some(names) = names else { return Some(snapshot.version.clone()) };
        let chosen = names.iter().filter_map(|name| snapshot.resources.get_key_value(name));
        Some(content_version(chosen.map(|(name, r)| (name.as_str(), &r.hash))))
    }

    /// The resources to send for `resource_type`: all of them when `names` is `None` (wildcard),
    /// else those of `names` that exist (a requested name we do not have is simply absent, as in
    /// state-of-the-world xDS). `None` if the type is not built yet.
    pub fn select(&self, resource_type: ResourceType, names: Option<&BTreeSet<String>>) -> Option<Selection> {
        self.select_where(resource_type, names, |_, _| true)
    }

    /// [`Snapshot::select`] holding only the resources `keep` says yes to (by name and content
    /// hash), the others never copied; the version stays the whole selection's, which is what
    /// the client holds once it applied them.
    pub fn select_where(
        &self,
        resource_type: ResourceType,
        names: Option<&BTreeSet<String>>,
        keep: impl Fn(&str, &[u8; 32]) -> bool,
    ) -> Option<Selection> {
        let snapshot = self.types.get(&resource_type)?;
        let chosen: Vec<(&String, &Arc<HashedResource>)> = match names {
            None => snapshot.resources.iter().collect(),
            Some(names) => names.iter().filter_map(|name| snapshot.resources.get_key_value(name)).collect(),
        };
        let version = match names {
            None => snapshot.version.clone(),
            Some(_) => content_version(chosen.iter().map(|(name, r)| (name.as_str(), &r.hash))),
        };
        let (names, resources) =
            chosen.into_iter().filter(|(name, r)| keep(name, &r.hash)).map(|(name, r)| (name.clone(), r.resource.clone())).unzip();
        Some(Selection { version, names, resources })
    }
}

impl Selection {
    /// This selection plus `retained` resources it lacks (`name -> resource`), versioned over the
    /// union: a removal held back for make-before-break (see `stream`). Nothing retained: unchanged.
    pub fn retaining(self, retained: &BTreeMap<String, Any>) -> Selection {
        if retained.is_empty() {
            return self;
        }
        let mut all: BTreeMap<String, Any> = retained.clone();
        all.extend(self.names.into_iter().zip(self.resources));
        let hashes: Vec<(&str, [u8; 32])> = all.iter().map(|(name, r)| (name.as_str(), resource_hash(name, r))).collect();
        let version = content_version(hashes.iter().map(|(name, hash)| (*name, hash)));
        let (names, resources) = all.into_iter().unzip();
        Selection { version, names, resources }
    }
}

impl Selection {
    /// This selection with its resources replaced one for one (same names, same order), versioned
    /// over the new content: a route configuration merged for make-before-break (see `stream`).
    pub fn with_resources(self, resources: Vec<Any>) -> Selection {
        let hashes: Vec<[u8; 32]> = self.names.iter().zip(&resources).map(|(name, r)| resource_hash(name, r)).collect();
        let version = content_version(self.names.iter().map(String::as_str).zip(hashes.iter()));
        Selection { version, names: self.names, resources }
    }
}

fn resource_hash(name: &str, resource: &Any) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [name.as_bytes(), resource.type_url.as_bytes(), resource.value.as_slice()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// Hash of `(name, resource hash)` pairs in the given (sorted) order; 16 hex characters.
fn content_version<'a>(resources: impl Iterator<Item = (&'a str, &'a [u8; 32])>) -> String {
    let mut hasher = Sha256::new();
    for (name, hash) in resources {
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        hasher.update(hash);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// Holds the current snapshot and publishes changes to every subscribed stream.
#[derive(Debug)]
pub struct SnapshotCache {
    sender: watch::Sender<Arc<Snapshot>>,
}

impl Default for SnapshotCache {
    fn default() -> Self {
        SnapshotCache::new()
    }
}

impl SnapshotCache {
    /// A cache holding the empty (not built) snapshot.
    pub fn new() -> SnapshotCache {
        let (sender, _) = watch::channel(Arc::new(Snapshot::empty()));
        SnapshotCache { sender }
    }

    /// A receiver that sees the current snapshot and every later one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.sender.subscribe()
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.sender.borrow().clone()
    }

    /// Replace the snapshot if any type's version differs, and return the types that changed
    /// (in push order). Identical content: nothing is published and the result is empty.
    pub fn update(&self, snapshot: Snapshot) -> Vec<ResourceType> {
        let mut changed = Vec::new();
        self.sender.send_if_modified(|current| {
            changed = ResourceType::ALL
                .into_iter()
                .filter(|t| current.version(*t) != snapshot.version(*t))
                .collect();
            if changed.is_empty() {
                return false;
            }
            *current = Arc::new(snapshot);
            true
        });
        changed
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn named(name: &str, value: &[u8]) -> NamedResource {
        NamedResource {
            name: name.to_string(),
            resource: Any { type_url: ResourceType::Endpoint.type_url().to_string(), value: value.to_vec() },
        }
    }

    fn endpoints(resources: Vec<NamedResource>) -> Snapshot {
        Snapshot::new(BTreeMap::from([(ResourceType::Endpoint, resources)]))
    }

    #[test]
    fn version_depends_on_content_not_on_input_order() {
        let a = endpoints(vec![named("a", b"1"), named("b", b"2")]);
        let b = endpoints(vec![named("b", b"2"), named("a", b"1")]);
        let c = endpoints(vec![named("a", b"1"), named("b", b"3")]);
        let d = endpoints(vec![named("a", b"1"), named("c", b"2")]);
        assert_eq!(a.version(ResourceType::Endpoint), b.version(ResourceType::Endpoint));
        assert_ne!(a.version(ResourceType::Endpoint), c.version(ResourceType::Endpoint), "content changed");
        assert_ne!(a.version(ResourceType::Endpoint), d.version(ResourceType::Endpoint), "name changed");
        assert_eq!(a.version(ResourceType::Listener), d.version(ResourceType::Listener), "untouched type");
        assert_eq!(a.version(ResourceType::Endpoint).map(str::len), Some(16));
    }

    #[test]
    fn holds_all_checks_sorted_names_against_the_snapshot_s() {
        let snapshot = endpoints(vec![named("b", b"1"), named("d", b"2"), named("f", b"3")]);
        let holds = |names: &[&str]| {
            let names: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
            snapshot.holds_all(ResourceType::Endpoint, names.iter())
        };
        let cases: [(&[&str], bool); 7] = [
            (&[], true),
            (&["b", "d", "f"], true),
            (&["d"], true),
            (&["f"], true),
            (&["a"], false),
            (&["b", "c"], false),
            (&["d", "g"], false),
        ];
        for (names, expected) in cases {
            assert_eq!(holds(names), expected, "{names:?}");
        }
        assert!(!snapshot.holds_all(ResourceType::Cluster, [String::from("b")].iter()), "a type it does not have");
    }

    #[test]
    fn replacing_resources_equals_building_the_whole_snapshot_again() {
        let mut by_type = BTreeMap::new();
        by_type.insert(ResourceType::Endpoint, vec![named("a", b"1"), named("b", b"2")]);
        by_type.insert(ResourceType::Cluster, vec![named("a", b"cluster")]);
        let before = Snapshot::new(by_type.clone());
        let replaced = before.replacing(ResourceType::Endpoint, vec![named("b", b"changed")]);
        by_type.insert(ResourceType::Endpoint, vec![named("a", b"1"), named("b", b"changed")]);
        assert_eq!(replaced, Snapshot::new(by_type), "same resources, same versions");
        assert_ne!(replaced.version(ResourceType::Endpoint), before.version(ResourceType::Endpoint));
        assert_eq!(replaced.version(ResourceType::Cluster), before.version(ResourceType::Cluster));
        assert!(
            std::ptr::eq(replaced.get(ResourceType::Cluster).unwrap(), before.get(ResourceType::Cluster).unwrap()),
            "the other types are shared, not copied"
        );
        assert_eq!(before.replacing(ResourceType::Endpoint, vec![]), before, "nothing replaced: the same snapshot");
    }

    #[test]
    fn empty_snapshot_has_no_types_and_built_has_all() {
        assert!(!Snapshot::empty().is_built());
        assert_eq!(Snapshot::empty().select(ResourceType::Listener, None), None);
        let built = endpoints(vec![]);
        assert!(built.is_built());
        for t in ResourceType::ALL {
            assert!(built.get(t).is_some(), "{t:?}");
        }
    }

    #[test]
    fn select_by_name_sends_only_existing_requested_resources() {
        let snapshot = endpoints(vec![named("a", b"1"), named("b", b"2"), named("c", b"3")]);
        let names: BTreeSet<String> = ["c", "a", "zzz"].into_iter().map(String::from).collect();
        let selection = snapshot.select(ResourceType::Endpoint, Some(&names)).unwrap();
        assert_eq!(selection.resources.iter().map(|r| r.value.clone()).collect::<Vec<_>>(), vec![b"1".to_vec(), b"3".to_vec()]);
        let all = snapshot.select(ResourceType::Endpoint, None).unwrap();
        assert_eq!(all.resources.len(), 3);
        assert_eq!(Some(all.version.as_str()), snapshot.version(ResourceType::Endpoint));
        assert_ne!(selection.version, all.version);
        // A subset's version only depends on the subset.
        let other = endpoints(vec![named("a", b"1"), named("b", b"changed"), named("c", b"3")]);
        assert_eq!(other.select(ResourceType::Endpoint, Some(&names)).unwrap().version, selection.version);
    }

    #[test]
    fn identical_rebuild_publishes_nothing() {
        let cache = SnapshotCache::new();
        let mut receiver = cache.subscribe();
        receiver.borrow_and_update();
        let first = cache.update(endpoints(vec![named("a", b"1")]));
        assert_eq!(first, ResourceType::ALL.to_vec(), "first build makes every type ready");
        assert!(receiver.has_changed().unwrap());
        receiver.borrow_and_update();
        assert_eq!(cache.update(endpoints(vec![named("a", b"1")])), vec![]);
        assert!(!receiver.has_changed().unwrap());
        assert_eq!(cache.update(endpoints(vec![named("a", b"2")])), vec![ResourceType::Endpoint]);
        assert!(receiver.has_changed().unwrap());
        assert_eq!(cache.current().get(ResourceType::Endpoint).unwrap().len(), 1);
    }
}
