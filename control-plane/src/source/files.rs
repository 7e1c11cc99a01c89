//! The manifests-folder source: Kubernetes YAML files in a folder become a `ClusterState`, once
//! ([`load_dir`], for `validate` / `explain`) or continuously ([`watch`], for `serve`).
//!
//! It reads `.yaml` / `.yml` files (recursively, multi-document, `kind: List` expanded) and keeps
//! `Ingress` (networking.k8s.io/v1), `IngressClass` (networking.k8s.io/v1), `Service` (v1),
//! `EndpointSlice` (discovery.k8s.io/v1), `Secret` (v1, `kubernetes.io/tls` and `Opaque`) and
//! `ConfigMap` (v1: header lists named by `custom-headers` and `auth-proxy-set-headers`); other
//! kinds are ignored quietly. Namespaced objects without a namespace get `default`. Names starting
//! with `.` are skipped (editor swap files, and the `..data` / `..2024_…` entries of a mounted
//! ConfigMap, whose files are reached through the top-level symlinks). Problems are
//! [`Diagnostic`]s of kind `File` (name: the file's path, field: `document[i]`, 0-based) — never
//! fatal. Files are read in sorted path order; an object defined twice (same kind, namespace and
//! name) is taken from the first file and the other definition gets a diagnostic.
//!
//! This module must not interpret objects (which Ingress is ours, what a path means): that is
//! `translate::ingress`.
//!
//! # Watching (the API `serve` uses)
//!
//! ```ignore
//! let folder: FolderWatch = source::files::watch(dir)?;        // inside a Tokio runtime
//! let mut updates: tokio::sync::watch::Receiver<Arc<SourceSnapshot>> = folder.updates.clone();
//! // `*updates.borrow()` is already the complete first snapshot; then:
//! while updates.changed().await.is_ok() {
//!     let snapshot = updates.borrow_and_update().clone();     // SourceSnapshot { state, diagnostics }
//!     // translate(&snapshot.state, …); report snapshot.diagnostics alongside translation's
//! }
//! // Keep `folder` alive as long as updates are wanted: dropping it stops the watcher.
//! ```
//!
//! - Any change (create, edit, delete, rename of files or folders) triggers a rescan of the whole
//!   folder after [`QUIET_PERIOD`] without further events (at most [`MAX_DEBOUNCE`] after the first
//!   event). A snapshot is published only if some file's content changed. The rescan lists every
//!   file but reads only those whose [`Fingerprint`] (device, inode, size, modification time)
//!   changed or that are younger than [`SETTLED_AFTER`]; only files whose text changed are parsed
//!   again, and only the kinds whose objects changed are merged again (the other kinds' maps are
//!   handed on, so `serve` can tell an EndpointSlice-only change).
//! - A file that fails to parse (half-written, invalid YAML, an object that does not deserialize),
//!   cannot be read, or became empty keeps serving the objects of its last version that was taken
//!   (a diagnostic says so); a deleted file removes its objects. On first sight a partly invalid
//!   file serves the documents that did parse.
//!
//! The pure part ([`ManifestSet`]: scan result in, snapshot out) has no timing and no I/O, so it is
//! unit-tested directly; [`scan_dir`] is the only file-system reader; the notify shell is small.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use serde::Deserialize;
use tokio::sync::{watch as watch_channel, Notify};
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::model::{Diagnostic, ObjectRef, Severity};
use crate::state::{ClusterState, ObjectKey, ObjectKind};

/// A rescan waits until no event came for this long…
pub const QUIET_PERIOD: Duration = Duration::from_millis(10);
/// …but never longer than this after the first event (a file written continuously still applies).
pub const MAX_DEBOUNCE: Duration = Duration::from_secs(1);
/// Files larger than this are refused with a diagnostic (manifests are small; this is a guard).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// How deep sub-folders are followed (guards against symlink loops).
pub const MAX_DEPTH: usize = 16;

/// The namespace of namespaced objects that do not name one (as `kubectl apply` does).
pub const DEFAULT_NAMESPACE: &str = "default";
/// The only Secret type kept.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";
/// The type of the Secrets that hold basic-auth users (`auth-secret`), the default type.
pub const OPAQUE_SECRET_TYPE: &str = "Opaque";

/// What the folder source publishes: the objects, plus the problems found reading the files.
#[derive(Debug, Clone, Default)]
pub struct SourceSnapshot {
    pub state: ClusterState,
    /// Sorted; kind `File` for unreadable files and documents, or the object's kind for duplicates.
    pub diagnostics: Vec<Diagnostic>,
}

/// Load every manifest under `dir` (recursive, `.yaml`/`.yml`, multi-document). Unreadable files and
/// objects are reported as diagnostics (kind `File`), never fatal. A missing folder is a diagnostic
/// too; callers that want to refuse it check `dir.is_dir()` first.
pub fn load_dir(dir: &Path) -> (ClusterState, Vec<Diagnostic>) {
    let mut set = ManifestSet::default();
    let (files, scan_diagnostics) = scan_dir(dir);
    set.apply_scan(files, scan_diagnostics);
    let snapshot = set.snapshot();
    (snapshot.state, snapshot.diagnostics)
}

// ---------------------------------------------------------------------------------------------
// Parsing one file (pure)
// ---------------------------------------------------------------------------------------------

/// One object read from a manifest, already defaulted (namespace) and filtered (TLS Secrets only).
// Variants differ in size, but a manifest holds few objects and each is moved once into the state.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ManifestObject {
    Ingress(Arc<Ingress>),
    IngressClass(Arc<IngressClass>),
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    Secret(Arc<Secret>),
    ConfigMap(Arc<ConfigMap>),
}

impl ManifestObject {
    /// `Ingress`, `Service`, … as in `kind:`.
    pub fn kind(&self) -> &'static str {
        self.object_kind().as_str()
    }

    pub fn object_kind(&self) -> ObjectKind {
        match self {
            ManifestObject::Ingress(_) => ObjectKind::Ingress,
            ManifestObject::IngressClass(_) => ObjectKind::IngressClass,
            ManifestObject::Service(_) => ObjectKind::Service,
            ManifestObject::EndpointSlice(_) => ObjectKind::EndpointSlice,
            ManifestObject::Secret(_) => ObjectKind::Secret,
            ManifestObject::ConfigMap(_) => ObjectKind::ConfigMap,
        }
    }

    fn metadata(&self) -> &ObjectMeta {
        match self {
            ManifestObject::Ingress(o) => &o.metadata,
            ManifestObject::IngressClass(o) => &o.metadata,
            ManifestObject::Service(o) => &o.metadata,
            ManifestObject::EndpointSlice(o) => &o.metadata,
            ManifestObject::Secret(o) => &o.metadata,
            ManifestObject::ConfigMap(o) => &o.metadata,
        }
    }

    /// `namespace/name` (empty namespace for the cluster-scoped IngressClass).
    pub fn key(&self) -> ObjectKey {
        let meta = self.metadata();
        let namespace = match self {
            ManifestObject::IngressClass(_) => String::new(),
            _ => meta.namespace.clone().unwrap_or_default(),
        };
        ObjectKey::new(namespace, meta.name.clone().unwrap_or_default())
    }
}

/// The objects of one file and the problems found in it.
#[derive(Debug, Clone, Default)]
pub struct ParsedFile {
    pub objects: Vec<ManifestObject>,
    pub diagnostics: Vec<Diagnostic>,
}

fn file_ref(file: &str) -> ObjectRef {
    ObjectRef { kind: "File".into(), namespace: String::new(), name: file.into() }
}

fn file_diagnostic(file: &str, field: String, severity: Severity, message: String) -> Diagnostic {
    Diagnostic { object: file_ref(file), field, message, severity }
}

/// Parse one manifest file's text. `file` names it in diagnostics.
pub fn parse_manifests(file: &str, text: &str) -> ParsedFile {
    let mut parsed = ParsedFile::default();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let field = format!("document[{index}]");
        match serde_yaml::Value::deserialize(document) {
            Ok(value) => parse_value(file, &field, value, &mut parsed),
            Err(error) => {
                parsed.diagnostics.push(file_diagnostic(
                    file,
                    field,
                    Severity::Error,
                    format!("invalid YAML: {error}"),
                ));
                // The YAML stream cannot be resynchronised after a syntax error.
                break;
            }
        }
    }
    parsed
}

fn parse_value(file: &str, field: &str, value: serde_yaml::Value, parsed: &mut ParsedFile) {
    if value.is_null() {
        return; // an empty document (`---` twice, or a comment-only file)
    }
    let Some(mapping) = value.as_mapping() else {
        parsed.diagnostics.push(file_diagnostic(
            file,
            field.into(),
            Severity::Error,
            "not a Kubernetes object (expected a mapping with apiVersion and kind)".into(),
        ));
        return;
    };
    let text_of = |key: &str| mapping.get(key).and_then(serde_yaml::Value::as_str).map(str::to_owned);
    let (Some(api_version), Some(kind)) = (text_of("apiVersion"), text_of("kind")) else {
        parsed.diagnostics.push(file_diagnostic(
            file,
            field.into(),
            Severity::Error,
            "not a Kubernetes object: apiVersion and kind are required".into(),
        ));
        return;
    };
    let object = match (api_version.as_str(), kind.as_str()) {
        ("networking.k8s.io/v1", "Ingress") => decode(file, field, &kind, value, parsed).map(|o| ManifestObject::Ingress(Arc::new(o))),
        ("networking.k8s.io/v1", "IngressClass") => {
            decode(file, field, &kind, value, parsed).map(|o| ManifestObject::IngressClass(Arc::new(o)))
        }
        ("v1", "Service") => decode(file, field, &kind, value, parsed).map(|o| ManifestObject::Service(Arc::new(o))),
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            decode(file, field, &kind, value, parsed).map(|o| ManifestObject::EndpointSlice(Arc::new(o)))
        }
        ("v1", "Secret") => decode::<Secret>(file, field, &kind, value, parsed).and_then(|mut secret| {
            match secret.type_.as_deref() {
                Some(TLS_SECRET_TYPE) | Some(OPAQUE_SECRET_TYPE) | None => {
                    // As the API server stores it: `stringData` merged into `data`.
                    for (key, text) in secret.string_data.take().unwrap_or_default() {
                        secret.data.get_or_insert_with(Default::default).insert(key, k8s_openapi::ByteString(text.into_bytes()));
                    }
                    Some(ManifestObject::Secret(Arc::new(secret)))
                }
                Some(other) => {
                    tracing::debug!(file, field, "ignoring a Secret of type {other} (only {TLS_SECRET_TYPE} and {OPAQUE_SECRET_TYPE} are read)");
                    None
                }
            }
        }),
        ("v1", "ConfigMap") => decode(file, field, &kind, value, parsed).map(|o| ManifestObject::ConfigMap(Arc::new(o))),
        (_, "List") => {
            parse_list(file, field, mapping, parsed);
            None
        }
        (_, "Ingress" | "IngressClass" | "EndpointSlice") => {
            parsed.diagnostics.push(file_diagnostic(
                file,
                field.into(),
                Severity::Warning,
                format!("{kind} of apiVersion {api_version} is not supported (use the v1 API of its group); ignored"),
            ));
            None
        }
        _ => {
            tracing::debug!(file, field, %api_version, %kind, "ignoring a kind the control plane does not read");
            None
        }
    };
    let Some(object) = object else { return };
    if object.metadata().name.as_deref().unwrap_or_default().is_empty() {
        parsed.diagnostics.push(file_diagnostic(
            file,
            field.into(),
            Severity::Error,
            format!("{kind}: metadata.name is required"),
        ));
        return;
    }
    parsed.objects.push(with_default_namespace(object));
}

/// `kind: List` (what `kubectl get -o yaml` prints): each item is a document of its own.
fn parse_list(file: &str, field: &str, mapping: &serde_yaml::Mapping, parsed: &mut ParsedFile) {
    let Some(items) = mapping.get("items") else { return };
    let Some(items) = items.as_sequence() else {
        parsed.diagnostics.push(file_diagnostic(
            file,
            format!("{field}.items"),
            Severity::Error,
            "a List's items must be a sequence".into(),
        ));
        return;
    };
    for (index, item) in items.iter().enumerate() {
        parse_value(file, &format!("{field}.items[{index}]"), item.clone(), parsed);
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    file: &str,
    field: &str,
    kind: &str,
    value: serde_yaml::Value,
    parsed: &mut ParsedFile,
) -> Option<T> {
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(serde_yaml::Value::as_str)
        .unwrap_or("<unnamed>")
        .to_owned();
    match serde_yaml::from_value::<T>(value) {
        Ok(object) => Some(object),
        Err(error) => {
            parsed.diagnostics.push(file_diagnostic(
                file,
                field.into(),
                Severity::Error,
                format!("{kind} {name} is not a valid object: {error}"),
            ));
            None
        }
    }
}

fn with_default_namespace(mut object: ManifestObject) -> ManifestObject {
    let meta = match &mut object {
        ManifestObject::IngressClass(_) => return object,
        // Just parsed: not shared, so nothing is copied.
        ManifestObject::Ingress(o) => &mut Arc::make_mut(o).metadata,
        ManifestObject::Service(o) => &mut Arc::make_mut(o).metadata,
        ManifestObject::EndpointSlice(o) => &mut Arc::make_mut(o).metadata,
        ManifestObject::Secret(o) => &mut Arc::make_mut(o).metadata,
        ManifestObject::ConfigMap(o) => &mut Arc::make_mut(o).metadata,
    };
    if meta.namespace.as_deref().unwrap_or_default().is_empty() {
        meta.namespace = Some(DEFAULT_NAMESPACE.into());
    }
    object
}

// ---------------------------------------------------------------------------------------------
// The folder as a set of files (pure): scan in, snapshot out
// ---------------------------------------------------------------------------------------------

/// What reading one file gave: its text, or why it could not be read.
pub type FileRead = Result<String, String>;

/// The files of the folder, each with the objects it currently serves. Feed it complete scans
/// ([`ManifestSet::apply_scan`]); read the merged result with [`ManifestSet::snapshot`], which
/// rebuilds only the kinds whose objects changed and hands on the other kinds' maps.
#[derive(Debug)]
pub struct ManifestSet {
    files: BTreeMap<PathBuf, FileRecord>,
    scan_diagnostics: Vec<Diagnostic>,
    /// The kinds whose objects changed since the last snapshot (every kind before the first).
    dirty: BTreeSet<ObjectKind>,
    /// The last snapshot's objects.
    state: ClusterState,
    /// The last snapshot's diagnostics for objects defined twice, by kind.
    duplicates: BTreeMap<ObjectKind, Vec<Diagnostic>>,
}

impl Default for ManifestSet {
    fn default() -> ManifestSet {
        ManifestSet {
            files: BTreeMap::new(),
            scan_diagnostics: Vec::new(),
            dirty: ObjectKind::ALL.into_iter().collect(),
            state: ClusterState::default(),
            duplicates: BTreeMap::new(),
        }
    }
}

#[derive(Debug)]
struct FileRecord {
    /// What was read last time (to skip unchanged files).
    last_read: FileRead,
    /// The objects this file serves: from its last version that was taken.
    served: Vec<ManifestObject>,
    diagnostics: Vec<Diagnostic>,
}

/// The kinds whose objects (in order) differ between two versions of a file.
fn changed_kinds(before: &[ManifestObject], after: &[ManifestObject]) -> Vec<ObjectKind> {
    let of = |objects: &[ManifestObject], kind: ObjectKind| -> Vec<usize> {
        objects.iter().enumerate().filter(|(_, o)| o.object_kind() == kind).map(|(i, _)| i).collect()
    };
    ObjectKind::ALL
        .into_iter()
        .filter(|kind| {
            let (a, b) = (of(before, *kind), of(after, *kind));
            a.len() != b.len() || a.iter().zip(&b).any(|(i, j)| before[*i] != after[*j])
        })
        .collect()
}

impl ManifestSet {
    /// Replace the folder's content by a complete scan (every file present, by path). Files absent
    /// from `files` are removed with their objects. Returns whether anything changed.
    pub fn apply_scan(&mut self, files: BTreeMap<PathBuf, FileRead>, scan_diagnostics: Vec<Diagnostic>) -> bool {
        self.apply_scanned(files.into_iter().map(|(path, read)| (path, Some(read))).collect(), scan_diagnostics)
    }

    /// [`ManifestSet::apply_scan`] where `None` says a file did not change since the last scan
    /// (it keeps its record; a file seen for the first time must be read).
    pub fn apply_scanned(&mut self, files: BTreeMap<PathBuf, Option<FileRead>>, scan_diagnostics: Vec<Diagnostic>) -> bool {
        let mut changed = scan_diagnostics != self.scan_diagnostics;
        self.scan_diagnostics = scan_diagnostics;

        let gone: Vec<PathBuf> = self.files.keys().filter(|path| !files.contains_key(*path)).cloned().collect();
        for path in gone {
            if let Some(record) = self.files.remove(&path) {
                self.dirty.extend(record.served.iter().map(ManifestObject::object_kind));
                changed = true;
            }
        }

        for (path, read) in files {
            let Some(read) = read else { continue };
            if self.files.get(&path).is_some_and(|previous| previous.last_read == read) {
                continue;
            }
            changed = true;
            let previous = self.files.remove(&path);
            let before = previous.as_ref().map(|p| p.served.clone()).unwrap_or_default();
            let record = next_record(&path, read, previous);
            self.dirty.extend(changed_kinds(&before, &record.served));
            self.files.insert(path, record);
        }
        changed
    }

    /// Merge every file's objects (sorted file order; first definition of an object wins). The
    /// maps of kinds that did not change since the last snapshot are the same (shared) maps.
    pub fn snapshot(&mut self) -> SourceSnapshot {
        let dirty = std::mem::take(&mut self.dirty);
        let state = &mut self.state;
        for kind in &dirty {
            match kind {
                ObjectKind::Ingress => state.ingresses = Default::default(),
                ObjectKind::IngressClass => state.ingress_classes = Default::default(),
                ObjectKind::Service => state.services = Default::default(),
                ObjectKind::EndpointSlice => state.endpoint_slices = Default::default(),
                ObjectKind::Secret => state.secrets = Default::default(),
                ObjectKind::ConfigMap => state.config_maps = Default::default(),
            }
        }
        let mut diagnostics = self.scan_diagnostics.clone();
        let mut defined_in: BTreeMap<(ObjectKind, ObjectKey), &Path> = BTreeMap::new();
        for kind in &dirty {
            self.duplicates.remove(kind);
        }
        for (path, record) in &self.files {
            diagnostics.extend(record.diagnostics.iter().cloned());
            for object in record.served.iter().filter(|o| dirty.contains(&o.object_kind())) {
                let key = object.key();
                let kind = object.object_kind();
                if let Some(first) = defined_in.get(&(kind, key.clone())) {
                    self.duplicates.entry(kind).or_default().push(Diagnostic {
                        object: ObjectRef { kind: kind.as_str().into(), namespace: key.namespace.clone(), name: key.name.clone() },
                        field: String::new(),
                        message: format!("defined again in {}; the definition in {} is used", path.display(), first.display()),
                        severity: Severity::Error,
                    });
                    continue;
                }
                insert(state, key.clone(), object);
                defined_in.insert((kind, key), path);
            }
        }
        diagnostics.extend(self.duplicates.values().flatten().cloned());
        diagnostics.sort();
        diagnostics.dedup();
        SourceSnapshot { state: state.clone(), diagnostics }
    }
}

/// Put `object` into its kind's map (a fresh one: not shared yet, so nothing is copied; the
/// object itself is shared with the file's record).
fn insert(state: &mut ClusterState, key: ObjectKey, object: &ManifestObject) {
    match object.clone() {
        ManifestObject::Ingress(o) => {
            Arc::make_mut(&mut state.ingresses).insert(key, o);
        }
        ManifestObject::IngressClass(o) => {
            Arc::make_mut(&mut state.ingress_classes).insert(key, o);
        }
        ManifestObject::Service(o) => {
            Arc::make_mut(&mut state.services).insert(key, o);
        }
        ManifestObject::EndpointSlice(o) => {
            Arc::make_mut(&mut state.endpoint_slices).insert(key, o);
        }
        ManifestObject::Secret(o) => {
            Arc::make_mut(&mut state.secrets).insert(key, o);
        }
        ManifestObject::ConfigMap(o) => {
            Arc::make_mut(&mut state.config_maps).insert(key, o);
        }
    }
}

/// The record of a file whose content changed: take the new objects if the file is sound, else keep
/// serving what it served before.
fn next_record(path: &Path, read: FileRead, previous: Option<FileRecord>) -> FileRecord {
    let label = path.display().to_string();
    let previous_served = previous.map(|p| p.served).unwrap_or_default();
    let keep_note = |count: usize| {
        file_diagnostic(
            &label,
            String::new(),
            Severity::Warning,
            format!("still serving the {count} object(s) of this file's last valid version"),
        )
    };
    match &read {
        Err(reason) => {
            let mut diagnostics =
                vec![file_diagnostic(&label, String::new(), Severity::Error, format!("cannot read file: {reason}"))];
            if !previous_served.is_empty() {
                diagnostics.push(keep_note(previous_served.len()));
            }
            FileRecord { last_read: read, served: previous_served, diagnostics }
        }
        Ok(text) => {
            let parsed = parse_manifests(&label, text);
            let unsound = parsed.diagnostics.iter().any(|d| d.severity == Severity::Error);
            if unsound && !previous_served.is_empty() {
                let mut diagnostics = parsed.diagnostics;
                diagnostics.push(keep_note(previous_served.len()));
                return FileRecord { last_read: read, served: previous_served, diagnostics };
            }
            if text.trim().is_empty() && !previous_served.is_empty() {
                // Editors truncate before writing: an empty file is most likely half-written.
                let diagnostics = vec![file_diagnostic(
                    &label,
                    String::new(),
                    Severity::Warning,
                    format!(
                        "file is empty; still serving the {} object(s) of its last version (delete the file to remove them)",
                        previous_served.len()
                    ),
                )];
                return FileRecord { last_read: read, served: previous_served, diagnostics };
            }
            FileRecord { last_read: read, served: parsed.objects, diagnostics: parsed.diagnostics }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the folder (the only file-system access)
// ---------------------------------------------------------------------------------------------

/// Read every manifest file under `dir`: path -> text (or why it could not be read), plus
/// diagnostics for folders that could not be listed.
pub fn scan_dir(dir: &Path) -> (BTreeMap<PathBuf, FileRead>, Vec<Diagnostic>) {
    let (files, diagnostics, _) = scan_dir_cached(dir, &ReadCache::new());
    (files.into_iter().map(|(path, read)| (path, read.unwrap_or_else(|| Err("not read".into())))).collect(), diagnostics)
}

/// A file's identity and version as `stat` tells them: device, inode, size and modification time.
/// A replaced file (atomic rename, a ConfigMap's symlink swap) has another inode; one written in
/// place another size or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

/// Files are not trusted to be unchanged by their fingerprint until they are this old: the kernel
/// stamps modification times with a coarse clock, so two writes in one tick can leave equal
/// fingerprints (git's "racily clean" entries). A file younger than this is read on every scan.
const SETTLED_AFTER: Duration = Duration::from_secs(2);

/// The fingerprint of each file read by the last scan.
pub type ReadCache = BTreeMap<PathBuf, Fingerprint>;

/// [`scan_dir`], not reading a file whose fingerprint is the one in `cache` and that was already
/// settled then (`None`: unchanged since that scan); also returns the cache for the next scan.
pub fn scan_dir_cached(dir: &Path, cache: &ReadCache) -> (BTreeMap<PathBuf, Option<FileRead>>, Vec<Diagnostic>, ReadCache) {
    let mut files = BTreeMap::new();
    let mut diagnostics = Vec::new();
    let mut next = ReadCache::new();
    scan_into(dir, 0, &mut Scan { files: &mut files, diagnostics: &mut diagnostics, cache, next: &mut next });
    (files, diagnostics, next)
}

/// Where [`scan_into`] puts what it finds.
struct Scan<'a> {
    files: &'a mut BTreeMap<PathBuf, Option<FileRead>>,
    diagnostics: &'a mut Vec<Diagnostic>,
    cache: &'a ReadCache,
    next: &'a mut ReadCache,
}

fn fingerprint(metadata: &std::fs::Metadata) -> Fingerprint {
    use std::os::unix::fs::MetadataExt;
    Fingerprint { device: metadata.dev(), inode: metadata.ino(), len: metadata.len(), modified: metadata.modified().ok() }
}

/// Whether a file modified at `modified` is old enough for its fingerprint to be trusted.
fn settled(modified: Option<std::time::SystemTime>) -> bool {
    modified.and_then(|m| m.elapsed().ok()).is_some_and(|age| age >= SETTLED_AFTER)
}

/// The text of the file at `path` (whose metadata is `metadata`), or `None` when the cache says it
/// is unchanged.
fn read_file(path: &Path, metadata: &std::fs::Metadata, scan: &mut Scan<'_>) -> Option<FileRead> {
    if metadata.len() > MAX_FILE_BYTES {
        return Some(Err(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    let print = fingerprint(metadata);
    if scan.cache.get(path) == Some(&print) && settled(print.modified) {
        scan.next.insert(path.to_path_buf(), print);
        return None;
    }
    let read = std::fs::read_to_string(path).map_err(|e| e.to_string());
    if read.is_ok() {
        scan.next.insert(path.to_path_buf(), print);
    }
    Some(read)
}

fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

fn scan_into(dir: &Path, depth: usize, scan: &mut Scan<'_>) {
    let label = dir.display().to_string();
    if depth > MAX_DEPTH {
        scan.diagnostics.push(file_diagnostic(
            &label,
            String::new(),
            Severity::Warning,
            format!("folders nested deeper than {MAX_DEPTH} levels are not read"),
        ));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            scan.diagnostics.push(file_diagnostic(
                &label,
                String::new(),
                Severity::Error,
                format!("cannot list folder: {error}"),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .map(|entry| entry.path())
        .collect();
    paths.sort();
    for path in paths {
        // `metadata` follows symlinks (mounted ConfigMaps are symlinks to `..data/…`).
        let Ok(metadata) = std::fs::metadata(&path) else { continue };
        if metadata.is_dir() {
            scan_into(&path, depth + 1, scan);
        } else if metadata.is_file() && is_manifest(&path) {
            let read = read_file(&path, &metadata, scan);
            scan.files.insert(path, read);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Watching (notify shell)
// ---------------------------------------------------------------------------------------------

/// A watched manifests folder. `updates` always holds the latest complete snapshot. Dropping this
/// stops watching.
pub struct FolderWatch {
    pub updates: watch_channel::Receiver<Arc<SourceSnapshot>>,
    _watcher: notify::RecommendedWatcher,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FolderWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderWatch").finish_non_exhaustive()
    }
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start watching `dir`; must be called inside a Tokio runtime. The first snapshot is loaded before
/// this returns. Errors only if `dir` is not a folder or cannot be watched.
pub fn watch(dir: PathBuf) -> Result<FolderWatch, Error> {
    if !dir.is_dir() {
        return Err(Error::ManifestsDir { path: dir, reason: "not a folder (or does not exist)".into() });
    }
    let runtime =
        tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime { what: "the manifests watcher" })?;
    let wake = Arc::new(Notify::new());
    let wake_from_notify = Arc::clone(&wake);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        Ok(event) if is_change(&event.kind) => wake_from_notify.notify_one(),
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%error, "manifests watcher error; rescanning");
            wake_from_notify.notify_one();
        }
    })
    .map_err(|source| Error::Watch { path: dir.clone(), source })?;
    // Watch before the first scan, so that no change between the two is missed.
    watcher.watch(&dir, RecursiveMode::Recursive).map_err(|source| Error::Watch { path: dir.clone(), source })?;

    let mut set = ManifestSet::default();
    let (files, scan_diagnostics, cache) = scan_dir_cached(&dir, &ReadCache::new());
    set.apply_scanned(files, scan_diagnostics);
    let (sender, updates) = watch_channel::channel(Arc::new(set.snapshot()));
    let task = runtime.spawn(rescan_loop(dir, set, cache, sender, wake));
    Ok(FolderWatch { updates, _watcher: watcher, task })
}

/// Opening and reading files (ours included) is not a change; finishing a write is.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

async fn rescan_loop(
    dir: PathBuf,
    mut set: ManifestSet,
    mut cache: ReadCache,
    sender: watch_channel::Sender<Arc<SourceSnapshot>>,
    wake: Arc<Notify>,
) {
    loop {
        wake.notified().await;
        let first_event = Instant::now();
        loop {
            let left = MAX_DEBOUNCE.saturating_sub(first_event.elapsed());
            if left.is_zero() {
                break;
            }
            if tokio::time::timeout(QUIET_PERIOD.min(left), wake.notified()).await.is_err() {
                break; // quiet for QUIET_PERIOD
            }
        }
        let debounced = first_event.elapsed();
        let scan_from = dir.clone();
        let known = std::mem::take(&mut cache);
        let Ok((files, scan_diagnostics, read)) = tokio::task::spawn_blocking(move || scan_dir_cached(&scan_from, &known)).await else {
            continue;
        };
        cache = read;
        let scanned = first_event.elapsed();
        if set.apply_scanned(files, scan_diagnostics) {
            let applied = first_event.elapsed();
            let snapshot = set.snapshot();
            tracing::info!(
                ingresses = snapshot.state.ingresses.len(),
                services = snapshot.state.services.len(),
                diagnostics = snapshot.diagnostics.len(),
                ?debounced,
                ?scanned,
                ?applied,
                merged = ?first_event.elapsed(),
                "manifests folder changed"
            );
            if sender.send(Arc::new(snapshot)).is_err() {
                return; // nobody listens any more
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SHOP: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service: {name: shop, port: {number: 80}}
---
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: web}
spec:
  ports: [{name: http, port: 80}]
"#;

    fn scan(files: &[(&str, &str)]) -> BTreeMap<PathBuf, FileRead> {
        files.iter().map(|(p, t)| (PathBuf::from(p), Ok(t.to_string()))).collect()
    }

    fn kinds_and_keys(state: &ClusterState) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(state.ingresses.keys().map(|k| format!("Ingress {k}")));
        out.extend(state.ingress_classes.keys().map(|k| format!("IngressClass {k}")));
        out.extend(state.services.keys().map(|k| format!("Service {k}")));
        out.extend(state.endpoint_slices.keys().map(|k| format!("EndpointSlice {k}")));
        out.extend(state.secrets.keys().map(|k| format!("Secret {k}")));
        out
    }

    #[test]
    fn multi_document_file_yields_every_object_with_default_namespace() {
        let parsed = parse_manifests("a.yaml", SHOP);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let keys: Vec<_> = parsed.objects.iter().map(|o| format!("{} {}", o.kind(), o.key())).collect();
        assert_eq!(keys, ["Ingress default/shop", "Service web/shop"]);
    }

    #[test]
    fn kinds_are_kept_or_ignored_by_table() {
        struct Case {
            name: &'static str,
            yaml: &'static str,
            kept: &'static [&'static str],
            diagnostics: usize,
        }
        let cases = [
            Case {
                name: "tls secret kept",
                yaml: "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata: {name: s}\ndata: {}\n",
                kept: &["Secret default/s"],
                diagnostics: 0,
            },
            Case {
                name: "opaque secret kept (basic-auth users)",
                yaml: "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {auth: x}\n",
                kept: &["Secret default/s"],
                diagnostics: 0,
            },
            Case {
                name: "other secret types ignored quietly",
                yaml: "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/service-account-token\nmetadata: {name: s}\nstringData: {token: x}\n",
                kept: &[],
                diagnostics: 0,
            },
            Case {
                name: "ingress class is cluster scoped",
                yaml: "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: wasm}\nspec: {controller: x}\n",
                kept: &["IngressClass wasm"],
                diagnostics: 0,
            },
            Case {
                name: "endpoint slice kept",
                yaml: "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e, namespace: n}\naddressType: IPv4\nendpoints: []\n",
                kept: &["EndpointSlice n/e"],
                diagnostics: 0,
            },
            Case {
                name: "unknown kind ignored quietly",
                yaml: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
                kept: &[],
                diagnostics: 0,
            },
            Case {
                name: "old ingress api version is reported",
                yaml: "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: old}\n",
                kept: &[],
                diagnostics: 1,
            },
            Case {
                name: "list items are expanded",
                yaml: "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n",
                kept: &["Service default/a", "Service default/b"],
                diagnostics: 0,
            },
            Case { name: "empty documents are skipped", yaml: "---\n---\n# nothing\n", kept: &[], diagnostics: 0 },
            Case {
                name: "object without name is reported",
                yaml: "apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n",
                kept: &[],
                diagnostics: 1,
            },
            Case { name: "scalar document is reported", yaml: "just text\n", kept: &[], diagnostics: 1 },
            Case {
                name: "wrongly typed field is reported",
                yaml: "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: 80}\n",
                kept: &[],
                diagnostics: 1,
            },
        ];
        for case in cases {
            let parsed = parse_manifests("f.yaml", case.yaml);
            let kept: Vec<_> = parsed.objects.iter().map(|o| format!("{} {}", o.kind(), o.key())).collect();
            assert_eq!(kept, case.kept, "{}", case.name);
            assert_eq!(parsed.diagnostics.len(), case.diagnostics, "{}: {:?}", case.name, parsed.diagnostics);
        }
    }

    #[test]
    fn malformed_document_is_named_by_file_and_index() {
        let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\nkind: [unclosed\n";
        let parsed = parse_manifests("dir/bad.yaml", yaml);
        assert_eq!(parsed.objects.len(), 1, "documents before the broken one are kept");
        assert_eq!(parsed.diagnostics.len(), 1);
        let text = parsed.diagnostics[0].to_string();
        assert!(text.starts_with("error: File dir/bad.yaml: document[1]: invalid YAML"), "{text}");
    }

    #[test]
    fn duplicate_object_first_file_in_sorted_order_wins() {
        let mut set = ManifestSet::default();
        let a = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 1}]}\n";
        let b = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 2}]}\n";
        set.apply_scan(scan(&[("z.yaml", a), ("m.yaml", b)]), Vec::new());
        let snapshot = set.snapshot();
        let service = &snapshot.state.services[&ObjectKey::new("default", "s")];
        let port = service.spec.as_ref().and_then(|s| s.ports.as_ref()).map(|p| p[0].port);
        assert_eq!(port, Some(2), "m.yaml sorts before z.yaml");
        assert_eq!(snapshot.diagnostics.len(), 1);
        assert_eq!(
            snapshot.diagnostics[0].to_string(),
            "error: Service default/s: defined again in z.yaml; the definition in m.yaml is used"
        );
    }

    #[test]
    fn invalid_edit_keeps_serving_the_last_valid_version() {
        let mut set = ManifestSet::default();
        assert!(set.apply_scan(scan(&[("shop.yaml", SHOP)]), Vec::new()));
        // Cut inside a flow mapping: what a reader sees mid-write.
        let cut = SHOP.find("port: {number").unwrap() + "port: {num".len();
        let half_written = &SHOP[..cut];
        assert!(parse_manifests("x", half_written).diagnostics.iter().any(|d| d.severity == Severity::Error));
        assert!(set.apply_scan(scan(&[("shop.yaml", half_written)]), Vec::new()));
        let snapshot = set.snapshot();
        assert_eq!(kinds_and_keys(&snapshot.state), ["Ingress default/shop", "Service web/shop"]);
        assert!(
            snapshot.diagnostics.iter().any(|d| d.message.contains("still serving the 2 object(s)")),
            "{:?}",
            snapshot.diagnostics
        );
    }

    #[test]
    fn emptied_file_keeps_serving_but_deleted_file_stops() {
        let mut set = ManifestSet::default();
        set.apply_scan(scan(&[("shop.yaml", SHOP)]), Vec::new());
        set.apply_scan(scan(&[("shop.yaml", "")]), Vec::new());
        assert_eq!(kinds_and_keys(&set.snapshot().state).len(), 2);
        assert!(set.apply_scan(BTreeMap::new(), Vec::new()));
        let snapshot = set.snapshot();
        assert!(kinds_and_keys(&snapshot.state).is_empty());
        assert!(snapshot.diagnostics.is_empty());
    }

    #[test]
    fn unreadable_file_keeps_serving_and_is_reported() {
        let mut set = ManifestSet::default();
        set.apply_scan(scan(&[("shop.yaml", SHOP)]), Vec::new());
        let files = BTreeMap::from([(PathBuf::from("shop.yaml"), Err("permission denied".to_string()))]);
        set.apply_scan(files, Vec::new());
        let snapshot = set.snapshot();
        assert_eq!(kinds_and_keys(&snapshot.state).len(), 2);
        assert!(snapshot
            .diagnostics
            .iter()
            .any(|d| d.to_string() == "error: File shop.yaml: cannot read file: permission denied"));
    }

    #[test]
    fn valid_edit_replaces_objects_and_unchanged_scan_reports_no_change() {
        let mut set = ManifestSet::default();
        set.apply_scan(scan(&[("shop.yaml", SHOP)]), Vec::new());
        assert!(!set.apply_scan(scan(&[("shop.yaml", SHOP)]), Vec::new()));
        let edited = SHOP.replace("name: shop, namespace: web", "name: shop2, namespace: web");
        assert!(set.apply_scan(scan(&[("shop.yaml", &edited)]), Vec::new()));
        assert_eq!(kinds_and_keys(&set.snapshot().state), ["Ingress default/shop", "Service web/shop2"]);
    }

    #[test]
    fn a_snapshot_shares_the_maps_of_kinds_that_did_not_change() {
        let slice = |address: &str| {
            format!(
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: shop-1, namespace: web, labels: {{kubernetes.io/service-name: shop}}}}\naddressType: IPv4\nendpoints: [{{addresses: [{address}]}}]\nports: [{{name: http, port: 8080}}]\n"
            )
        };
        struct Case {
            name: &'static str,
            files: Vec<(&'static str, String)>,
            changed: Vec<ObjectKind>,
        }
        let base = vec![("shop.yaml", format!("{SHOP}\n---\n{}", slice("10.0.0.1"))), ("other.yaml", slice("10.0.0.9").replace("shop-1", "other-1"))];
        let cases = [
            Case { name: "nothing changed", files: base.clone(), changed: vec![] },
            Case {
                name: "a slice's address in a file that also holds an Ingress and a Service",
                files: vec![("shop.yaml", format!("{SHOP}\n---\n{}", slice("10.0.0.2"))), base[1].clone()],
                changed: vec![ObjectKind::EndpointSlice],
            },
            Case { name: "a file of slices removed", files: vec![base[0].clone()], changed: vec![ObjectKind::EndpointSlice] },
            Case {
                name: "an Ingress edited",
                files: vec![("shop.yaml", format!("{}\n---\n{}", SHOP.replace("/\n", "/x\n"), slice("10.0.0.1"))), base[1].clone()],
                changed: vec![ObjectKind::Ingress],
            },
            Case {
                name: "a new file with a Service",
                files: base.iter().cloned().chain([("more.yaml", SHOP.split("---").nth(1).unwrap_or_default().replace("name: shop,", "name: more,"))]).collect(),
                changed: vec![ObjectKind::Service],
            },
        ];
        for case in cases {
            let mut set = ManifestSet::default();
            set.apply_scan(base.iter().map(|(p, t)| (PathBuf::from(p), Ok(t.clone()))).collect(), Vec::new());
            let before = set.snapshot();
            set.apply_scan(case.files.iter().map(|(p, t)| (PathBuf::from(p), Ok(t.clone()))).collect(), Vec::new());
            let after = set.snapshot();
            let changed: Vec<ObjectKind> = before.state.changed_kinds(&after.state).into_iter().collect();
            assert_eq!(changed, case.changed, "{}", case.name);
            let fresh = {
                let mut fresh = ManifestSet::default();
                fresh.apply_scan(case.files.iter().map(|(p, t)| (PathBuf::from(p), Ok(t.clone()))).collect(), Vec::new());
                fresh.snapshot()
            };
            assert_eq!(kinds_and_keys(&after.state), kinds_and_keys(&fresh.state), "{}: same objects as a fresh load", case.name);
            assert_eq!(after.state.endpoint_slices, fresh.state.endpoint_slices, "{}", case.name);
            assert_eq!(after.state.ingresses, fresh.state.ingresses, "{}", case.name);
        }
    }

    #[test]
    fn first_sight_of_partly_invalid_file_serves_the_valid_documents() {
        let mut set = ManifestSet::default();
        let text = format!("{SHOP}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: x}}\nspec: {{ports: 80}}\n");
        set.apply_scan(scan(&[("shop.yaml", &text)]), Vec::new());
        let snapshot = set.snapshot();
        assert_eq!(kinds_and_keys(&snapshot.state), ["Ingress default/shop", "Service web/shop"]);
        assert_eq!(snapshot.diagnostics.len(), 1, "{:?}", snapshot.diagnostics);
    }

    #[test]
    fn load_dir_reads_recursively_in_sorted_order_and_skips_hidden_and_other_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
        std::fs::create_dir_all(dir.path().join("..data")).unwrap();
        std::fs::write(dir.path().join("sub/deeper/shop.yml"), SHOP).unwrap();
        std::fs::write(dir.path().join("..data/shop.yaml"), SHOP).unwrap();
        std::fs::write(dir.path().join(".shop.yaml.swp"), "garbage: [").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "garbage: [").unwrap();
        std::fs::write(
            dir.path().join("class.YAML"),
            "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: wasm}\n",
        )
        .unwrap();
        let (state, diagnostics) = load_dir(dir.path());
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(kinds_and_keys(&state), ["Ingress default/shop", "IngressClass wasm", "Service web/shop"]);
    }

    #[test]
    fn load_dir_of_missing_folder_is_a_diagnostic() {
        let dir = tempfile::tempdir().unwrap();
        let (state, diagnostics) = load_dir(&dir.path().join("nope"));
        assert!(state.ingresses.is_empty());
        assert_eq!(diagnostics.len(), 1);
        assert!(diagnostics[0].message.starts_with("cannot list folder"), "{diagnostics:?}");
    }

    /// Waits (bounded) until the published snapshot satisfies `done`.
    async fn wait_for(
        updates: &mut watch_channel::Receiver<Arc<SourceSnapshot>>,
        what: &str,
        done: impl Fn(&SourceSnapshot) -> bool,
    ) -> Arc<SourceSnapshot> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let current = updates.borrow_and_update().clone();
            if done(&current) {
                return current;
            }
            if tokio::time::timeout_at(deadline, updates.changed()).await.is_err() {
                panic!("timed out waiting for: {what}; last snapshot: {:?}", kinds_and_keys(&current.state));
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watcher_applies_create_edit_invalid_edit_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("class.yaml"),
            "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: wasm}\n",
        )
        .unwrap();
        let folder = watch(dir.path().to_path_buf()).unwrap();
        let mut updates = folder.updates.clone();
        assert_eq!(kinds_and_keys(&updates.borrow().state), ["IngressClass wasm"], "first snapshot is ready at once");

        let shop = dir.path().join("shop.yaml");
        std::fs::write(&shop, SHOP).unwrap();
        wait_for(&mut updates, "created file", |s| s.state.ingresses.len() == 1).await;

        std::fs::write(&shop, SHOP.replace("name: shop, namespace: web", "name: shop2, namespace: web")).unwrap();
        wait_for(&mut updates, "edited file", |s| s.state.services.contains_key(&ObjectKey::new("web", "shop2"))).await;

        std::fs::write(&shop, "apiVersion: v1\nkind: [").unwrap();
        let snapshot = wait_for(&mut updates, "diagnostic for invalid edit", |s| !s.diagnostics.is_empty()).await;
        assert_eq!(snapshot.state.ingresses.len(), 1, "invalid edit must not drop routes");
        assert!(snapshot.state.services.contains_key(&ObjectKey::new("web", "shop2")));

        std::fs::remove_file(&shop).unwrap();
        let snapshot = wait_for(&mut updates, "deleted file", |s| s.state.ingresses.is_empty()).await;
        assert!(snapshot.diagnostics.is_empty(), "{:?}", snapshot.diagnostics);
        assert_eq!(kinds_and_keys(&snapshot.state), ["IngressClass wasm"]);
    }

    #[test]
    fn watch_refuses_a_missing_folder() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _guard = runtime.enter();
        let dir = tempfile::tempdir().unwrap();
        let error = watch(dir.path().join("nope")).unwrap_err();
        assert!(error.to_string().contains("not a folder"), "{error}");
    }
}
