//! The Kubernetes API source: kube-rs watchers + reflector stores for Ingress, IngressClass, Service,
//! EndpointSlice, Secret and ConfigMap, turned into complete `ClusterState` snapshots
//! published (debounced) on a `tokio::sync::watch` channel — the same seam as the manifests folder.
//!
//! Resilience is the watcher's: it relists on `410 Gone` (the reflector keeps serving the old objects
//! until the relist is complete), resumes from bookmarks, and `default_backoff()` spaces out retries
//! on errors. Readiness turns true only once every initial list has completed (an `InitDone` from each
//! of the six watchers) and the first complete snapshot is published; it never goes back to false —
//! a relist keeps the last complete state in place.
//!
//! Secrets: service-account tokens, registry credentials, bootstrap tokens and Helm releases are
//! kept out of the watch by its field selector ([`SECRET_FIELD_SELECTOR`]); TLS and Opaque Secrets
//! (basic-auth users) are watched, and of those only the ones an Ingress names (`spec.tls[].secretName`,
//! `proxy-ssl-secret`, `auth-secret`, in its own namespace; `auth-tls-secret`, in any) are put into
//! the snapshot. ConfigMaps likewise: every one is watched (the reflector holds them, without
//! `managedFields` or `kubectl apply`'s last-applied copy, as every object), and only those an Ingress names (`custom-headers`, `auth-proxy-set-headers`)
//! reach the snapshot. Which Ingresses are ours (IngressClass, legacy annotation, default class) is decided by translation, not here: this module must not interpret
//! objects, translate, or write anything to the API server.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, SelectAll};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::NamespaceResourceScope;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Config, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::{ClusterState, ObjectKey, ObjectKind};

pub use super::access::{AccessScope, ApiAccess, RequestAccess};

/// The annotation naming the Secret that verifies HTTPS backends.
const PROXY_SSL_SECRET: &str = "nginx.ingress.kubernetes.io/proxy-ssl-secret";

/// Field selector that keeps the Secrets we never use (service-account and bootstrap tokens,
/// registry credentials, Helm releases) out of our watch. A field selector cannot say "TLS or
/// Opaque", so the types are excluded one by one.
pub const SECRET_FIELD_SELECTOR: &str = "type!=kubernetes.io/service-account-token,type!=kubernetes.io/dockerconfigjson,type!=kubernetes.io/dockercfg,type!=bootstrap.kubernetes.io/token,type!=helm.sh/release.v1";

/// The annotation naming the Secret with basic-auth users.
const AUTH_SECRET: &str = "nginx.ingress.kubernetes.io/auth-secret";

/// The annotation naming the Secret with the CA of client certificates (`namespace/name` may name
/// another namespace, as in ingress-nginx: a CA bundle is public).
const AUTH_TLS_SECRET: &str = "nginx.ingress.kubernetes.io/auth-tls-secret";

/// How long changes are gathered before one snapshot is published.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(20);

/// What this source reads.
pub const API_ACCESS: &[ApiAccess] = &[
    ApiAccess { group: "networking.k8s.io", resource: "ingresses", verbs: &["list", "watch"], scope: AccessScope::Cluster },
    ApiAccess { group: "networking.k8s.io", resource: "ingressclasses", verbs: &["list", "watch"], scope: AccessScope::Cluster },
    // `get` too: status.rs reads the Envoy Service named by --status-service when it is outside the
    // watched namespace.
    ApiAccess { group: "", resource: "services", verbs: &["get", "list", "watch"], scope: AccessScope::Cluster },
    ApiAccess { group: "discovery.k8s.io", resource: "endpointslices", verbs: &["list", "watch"], scope: AccessScope::Cluster },
    ApiAccess { group: "", resource: "secrets", verbs: &["list", "watch"], scope: AccessScope::Cluster },
    ApiAccess { group: "", resource: "configmaps", verbs: &["list", "watch"], scope: AccessScope::Cluster },
];

/// What to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeSourceConfig {
    /// Watch one namespace only (`--namespace`); IngressClasses are cluster-scoped and always watched.
    pub namespace: Option<String>,
    /// Changes within this window are published as one snapshot.
    pub debounce: Duration,
    /// ConfigMaps kept besides those the Ingresses name: the `serve` flags' (`--add-headers`,
    /// `--proxy-set-headers`).
    pub config_maps: BTreeSet<ObjectKey>,
}

impl KubeSourceConfig {
    pub fn new(namespace: Option<String>) -> KubeSourceConfig {
        KubeSourceConfig { namespace, debounce: DEFAULT_DEBOUNCE, config_maps: BTreeSet::new() }
    }
}

/// A running Kubernetes source: the latest complete snapshot, and whether the initial lists are done.
#[derive(Debug)]
pub struct KubeSource {
    /// Starts as an empty state; the first real snapshot arrives together with `ready == true`.
    pub state: watch::Receiver<Arc<ClusterState>>,
    /// `true` once every watcher has completed its initial list and a snapshot has been published.
    pub ready: watch::Receiver<bool>,
    /// The watch loop; it runs until aborted (watch errors are retried with backoff, never fatal).
    pub task: JoinHandle<()>,
}

/// A client from `--kubeconfig PATH`, or else the usual inference (in-cluster service account
/// first, then `$KUBECONFIG` / `~/.kube/config`).
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, kube::Error> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?
        }
        None => Config::infer().await.map_err(kube::Error::InferConfig)?,
    };
    Client::try_from(config)
}

/// Start watching (inside a Tokio runtime); see [`run`]. Abort `task` to stop.
pub fn spawn(client: Client, config: KubeSourceConfig) -> KubeSource {
    let (state_tx, state) = watch::channel(Arc::new(ClusterState::default()));
    let (ready_tx, ready) = watch::channel(false);
    let task = tokio::spawn(run(client, config, state_tx, ready_tx));
    KubeSource { state, ready, task }
}

/// One complete snapshot, then stop: the watchers `serve` uses, aborted once every initial list is
/// done (read-only commands such as `migrate`). `None` if the lists do not complete within
/// `timeout` (never a partial state).
pub async fn snapshot(client: Client, config: KubeSourceConfig, timeout: Duration) -> Option<Arc<ClusterState>> {
    let mut source = spawn(client, config);
    let listed = tokio::time::timeout(timeout, source.ready.wait_for(|ready| *ready)).await;
    source.task.abort();
    matches!(listed, Ok(Ok(_))).then(|| Arc::clone(&source.state.borrow()))
}

/// The five watched kinds: those of a `ClusterState`.
type WatchedKind = ObjectKind;

const WATCHED_KINDS: usize = ObjectKind::ALL.len();

/// What one watcher tells the loop.
enum Signal {
    /// An initial list (or a relist after `410 Gone`) is complete and in the store.
    Listed(WatchedKind),
    /// An object was added, modified or deleted.
    Changed(WatchedKind),
    /// Nothing the snapshot needs (list pages are buffered by the reflector until `Listed`).
    Nothing,
    /// A watch/list error; the watcher retries on its own, after a backoff.
    Failed(WatchedKind, watcher::Error),
}

/// The reflector stores the snapshot is built from.
struct Stores {
    ingresses: Store<Ingress>,
    ingress_classes: Store<IngressClass>,
    services: Store<Service>,
    endpoint_slices: Store<EndpointSlice>,
    secrets: Store<Secret>,
    config_maps: Store<ConfigMap>,
    /// ConfigMaps kept whatever the Ingresses name (see [`KubeSourceConfig::config_maps`]).
    flag_config_maps: BTreeSet<ObjectKey>,
}

/// Watch until aborted, publishing complete snapshots on `state` (at most one per `debounce`
/// window) and `true` on `ready` after the first one.
#[tracing::instrument(skip_all, fields(namespace = config.namespace.as_deref().unwrap_or("<all>")))]
pub async fn run(
    client: Client,
    config: KubeSourceConfig,
    state: watch::Sender<Arc<ClusterState>>,
    ready: watch::Sender<bool>,
) {
    let namespace = config.namespace.as_deref();
    let mut streams: SelectAll<BoxStream<'static, Signal>> = SelectAll::new();
    let (ingresses, stream) =
        reflect(namespaced_api(&client, namespace), watcher::Config::default(), WatchedKind::Ingress);
    streams.push(stream);
    let (ingress_classes, stream) =
        reflect(Api::all(client.clone()), watcher::Config::default(), WatchedKind::IngressClass);
    streams.push(stream);
    let (services, stream) =
        reflect(namespaced_api(&client, namespace), watcher::Config::default(), WatchedKind::Service);
    streams.push(stream);
    let (endpoint_slices, stream) =
        reflect(namespaced_api(&client, namespace), watcher::Config::default(), WatchedKind::EndpointSlice);
    streams.push(stream);
    let (secrets, stream) = reflect(
        namespaced_api(&client, namespace),
        watcher::Config::default().fields(SECRET_FIELD_SELECTOR),
        WatchedKind::Secret,
    );
    streams.push(stream);
    let (config_maps, stream) =
        reflect(namespaced_api(&client, namespace), watcher::Config::default(), WatchedKind::ConfigMap);
    streams.push(stream);
    let stores = Stores { ingresses, ingress_classes, services, endpoint_slices, secrets, config_maps, flag_config_maps: config.config_maps.clone() };

    let mut listed: BTreeSet<WatchedKind> = BTreeSet::new();
    // The kinds changed since the last snapshot: the others' maps are handed on from it.
    let mut changed_kinds: BTreeSet<WatchedKind> = BTreeSet::new();
    let mut published = ClusterState::default();
    let mut dirty = false;
    let debounce = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(debounce);
    loop {
        tokio::select! {
            signal = streams.next() => {
                let Some(signal) = signal else {
                    tracing::error!("every Kubernetes watch stream ended");
                    return;
                };
                let changed = match signal {
                    Signal::Listed(kind) => {
                        if listed.insert(kind) {
                            tracing::info!(?kind, "initial list complete");
                        } else {
                            tracing::info!(?kind, "relist complete");
                        }
                        changed_kinds.insert(kind);
                        true
                    }
                    Signal::Changed(kind) => {
                        tracing::trace!(?kind, "object changed");
                        changed_kinds.insert(kind);
                        true
                    }
                    Signal::Nothing => false,
                    Signal::Failed(kind, error) => {
                        tracing::warn!(?kind, %error, "Kubernetes watch failed; retrying with backoff");
                        false
                    }
                };
                if changed && !dirty {
                    dirty = true;
                    debounce.as_mut().reset(tokio::time::Instant::now() + config.debounce);
                }
            }
            () = &mut debounce, if dirty => {
                dirty = false;
                if listed.len() == WATCHED_KINDS {
                    let snapshot = stores.snapshot(&published, &std::mem::take(&mut changed_kinds));
                    published = snapshot.clone();
                    tracing::debug!(
                        ingresses = snapshot.ingresses.len(),
                        services = snapshot.services.len(),
                        endpoint_slices = snapshot.endpoint_slices.len(),
                        secrets = snapshot.secrets.len(),
                        "publishing cluster state"
                    );
                    state.send_replace(Arc::new(snapshot));
                    ready.send_if_modified(|ready| !std::mem::replace(ready, true));
                }
            }
        }
    }
}

fn namespaced_api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// A watcher (default backoff) feeding a reflector store, mapped to `Signal`s.
fn reflect<K>(api: Api<K>, config: watcher::Config, kind: WatchedKind) -> (Store<K>, BoxStream<'static, Signal>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(drop_unread_metadata)
        .reflect(writer)
        .map(move |event| match event {
            Ok(watcher::Event::InitDone) => Signal::Listed(kind),
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => Signal::Changed(kind),
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => Signal::Nothing,
            Err(error) => Signal::Failed(kind, error),
        })
        .boxed();
    (reader, stream)
}

/// `kubectl apply`'s copy of the whole object (a Secret's data included).
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What the stores need not keep of an object: its `managedFields` and `kubectl apply`'s
/// last-applied copy, never read and often the largest part of it (the copy of a Secret is its
/// key material a second time).
fn drop_unread_metadata<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

impl Stores {
    /// The stores' objects: the kinds in `changed` read again, the others' maps taken from
    /// `previous` (shared, not copied). The Secrets are read again when the Ingresses changed too
    /// (they decide which Secrets are kept).
    fn snapshot(&self, previous: &ClusterState, changed: &BTreeSet<ObjectKind>) -> ClusterState {
        let mut state = previous.clone();
        if changed.contains(&ObjectKind::Ingress) {
            state.ingresses = Arc::new(by_key(&self.ingresses));
        }
        if changed.contains(&ObjectKind::IngressClass) {
            state.ingress_classes = Arc::new(by_key(&self.ingress_classes));
        }
        if changed.contains(&ObjectKind::Service) {
            state.services = Arc::new(by_key(&self.services));
        }
        if changed.contains(&ObjectKind::EndpointSlice) {
            state.endpoint_slices = Arc::new(by_key(&self.endpoint_slices));
        }
        if changed.contains(&ObjectKind::Secret) || changed.contains(&ObjectKind::Ingress) {
            let wanted = referenced_secrets(state.ingresses.values().map(Arc::as_ref));
            state.secrets = shared_if_same(&previous.secrets, named(&self.secrets, &wanted));
        }
        if changed.contains(&ObjectKind::ConfigMap) || changed.contains(&ObjectKind::Ingress) {
            let mut wanted = referenced_config_maps(state.ingresses.values().map(Arc::as_ref));
            wanted.extend(self.flag_config_maps.iter().cloned());
            state.config_maps = shared_if_same(&previous.config_maps, named(&self.config_maps, &wanted));
        }
        state
    }
}

/// `previous` itself when `next` holds the very same objects (an Ingress change that names the
/// same Secrets keeps the Secrets unchanged, so translation can stay incremental), else `next`.
fn shared_if_same<K>(previous: &Arc<BTreeMap<ObjectKey, Arc<K>>>, next: BTreeMap<ObjectKey, Arc<K>>) -> Arc<BTreeMap<ObjectKey, Arc<K>>> {
    let same = previous.len() == next.len() && previous.iter().zip(&next).all(|((a, x), (b, y))| a == b && Arc::ptr_eq(x, y));
    if same {
        Arc::clone(previous)
    } else {
        Arc::new(next)
    }
}

/// The store's objects by key (shared with the store, not copied).
fn by_key<K>(store: &Store<K>) -> BTreeMap<ObjectKey, Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.state().into_iter().map(|object| (ObjectKey::new(object.namespace().unwrap_or_default(), object.name_any()), object)).collect()
}

/// The store's objects that `wanted` names (shared with the store, not copied).
fn named<K>(store: &Store<K>, wanted: &BTreeSet<ObjectKey>) -> BTreeMap<ObjectKey, Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut objects = by_key(store);
    objects.retain(|key, _| wanted.contains(key));
    objects
}

/// The Secrets named by `spec.tls[].secretName` and by the `proxy-ssl-secret` and `auth-secret`
/// annotations of these Ingresses, in each Ingress's namespace (translation refuses a reference to
/// another one), and by `auth-tls-secret` (in any namespace).
pub fn referenced_secrets<'a>(ingresses: impl IntoIterator<Item = &'a Ingress>) -> BTreeSet<ObjectKey> {
    let mut keys = BTreeSet::new();
    for ingress in ingresses {
        let namespace = ingress.namespace().unwrap_or_default();
        for annotation in [PROXY_SSL_SECRET, AUTH_SECRET] {
            let value = ingress.annotations().get(annotation).map(|v| v.trim());
            match value.map(|v| v.split_once('/').unwrap_or((namespace.as_str(), v))) {
                Some((ns, name)) if ns == namespace && !name.is_empty() => {
                    keys.insert(ObjectKey::new(namespace.clone(), name));
                }
                _ => {}
            }
        }
        if let Some(value) = ingress.annotations().get(AUTH_TLS_SECRET).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            let (ns, name) = value.split_once('/').unwrap_or((namespace.as_str(), value));
            keys.insert(ObjectKey::new(ns, name));
        }
        let tls = ingress.spec.as_ref().and_then(|spec| spec.tls.as_ref());
        for entry in tls.into_iter().flatten() {
            if let Some(name) = entry.secret_name.as_deref().filter(|name| !name.is_empty()) {
                keys.insert(ObjectKey::new(namespace.clone(), name));
            }
        }
    }
    keys
}

/// The annotations naming a ConfigMap (`namespace/name`, the only form ingress-nginx finds).
const CONFIG_MAP_ANNOTATIONS: [&str; 2] =
    ["nginx.ingress.kubernetes.io/custom-headers", "nginx.ingress.kubernetes.io/auth-proxy-set-headers"];

/// The ConfigMaps these Ingresses name in `custom-headers` and `auth-proxy-set-headers`.
pub fn referenced_config_maps<'a>(ingresses: impl IntoIterator<Item = &'a Ingress>) -> BTreeSet<ObjectKey> {
    let mut keys = BTreeSet::new();
    for ingress in ingresses {
        for annotation in CONFIG_MAP_ANNOTATIONS {
            let value = ingress.annotations().get(annotation).map(|v| v.trim());
            if let Some((namespace, name)) = value.and_then(|v| v.split_once('/')) {
                if !namespace.is_empty() && !name.is_empty() {
                    keys.insert(ObjectKey::new(namespace, name));
                }
            }
        }
    }
    keys
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn ingress(json: serde_json::Value) -> Ingress {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn referenced_secrets_are_taken_from_tls_entries_and_proxy_ssl_in_the_ingress_namespace() {
        let shop = ingress(serde_json::json!({
            "metadata": {"name": "shop", "namespace": "default"},
            "spec": {"tls": [
                {"hosts": ["shop.example.com"], "secretName": "shop-tls"},
                {"hosts": ["api.example.com"], "secretName": "api-tls"},
                {"hosts": ["nosecret.example.com"]},
                {"hosts": ["empty.example.com"], "secretName": ""}
            ]}
        }));
        let blog = ingress(serde_json::json!({
            "metadata": {"name": "blog", "namespace": "blog"},
            "spec": {"tls": [{"secretName": "shop-tls"}]}
        }));
        let plain = ingress(serde_json::json!({"metadata": {"name": "plain", "namespace": "default"}, "spec": {}}));
        let proxy_ssl = |name: &str, value: &str| {
            ingress(serde_json::json!({
                "metadata": {"name": name, "namespace": "api",
                             "annotations": {"nginx.ingress.kubernetes.io/proxy-ssl-secret": value}},
                "spec": {}
            }))
        };
        let (own, qualified, foreign) = (proxy_ssl("a", "backend-ca"), proxy_ssl("b", "api/mtls"), proxy_ssl("c", "kube-system/x"));
        let basic = ingress(serde_json::json!({
            "metadata": {"name": "d", "namespace": "api", "annotations": {"nginx.ingress.kubernetes.io/auth-secret": "htpasswd"}},
            "spec": {}
        }));
        let client_ca = |name: &str, value: &str| {
            ingress(serde_json::json!({
                "metadata": {"name": name, "namespace": "web", "annotations": {"nginx.ingress.kubernetes.io/auth-tls-secret": value}},
                "spec": {}
            }))
        };
        let (local_ca, shared_ca) = (client_ca("e", "client-ca"), client_ca("f", "pki/root-ca"));
        let keys = referenced_secrets([&shop, &blog, &plain, &own, &qualified, &foreign, &basic, &local_ca, &shared_ca]);
        let expected: BTreeSet<ObjectKey> = [
            ObjectKey::new("default", "shop-tls"),
            ObjectKey::new("default", "api-tls"),
            ObjectKey::new("blog", "shop-tls"),
            ObjectKey::new("api", "backend-ca"),
            ObjectKey::new("api", "mtls"),
            ObjectKey::new("api", "htpasswd"),
            ObjectKey::new("web", "client-ca"),
            ObjectKey::new("pki", "root-ca"),
        ]
        .into_iter()
        .collect();
        assert_eq!(keys, expected);
    }

    #[test]
    fn referenced_config_maps_are_the_namespace_slash_name_values() {
        let with = |annotations: serde_json::Value| ingress(serde_json::json!({"metadata": {"name": "a", "namespace": "web", "annotations": annotations}}));
        let headers = with(serde_json::json!({"nginx.ingress.kubernetes.io/custom-headers": " shared/headers "}));
        let auth = with(serde_json::json!({"nginx.ingress.kubernetes.io/auth-proxy-set-headers": "web/auth-headers"}));
        let bare = with(serde_json::json!({"nginx.ingress.kubernetes.io/custom-headers": "headers"}));
        let keys = referenced_config_maps([&headers, &auth, &bare]);
        assert_eq!(keys, BTreeSet::from([ObjectKey::new("shared", "headers"), ObjectKey::new("web", "auth-headers")]));
    }

    #[test]
    fn a_snapshot_reads_again_only_the_kinds_that_changed() {
        fn store<K>(objects: Vec<K>) -> Store<K>
        where
            K: Resource<DynamicType = ()> + Clone + 'static,
        {
            let (reader, mut writer) = reflector::store();
            for object in objects {
                writer.apply_watcher_event(&watcher::Event::Apply(object));
            }
            reader
        }
        let shop = ingress(serde_json::json!({
            "metadata": {"name": "shop", "namespace": "web", "annotations": {"nginx.ingress.kubernetes.io/custom-headers": "web/shop-headers"}},
            "spec": {"tls": [{"hosts": ["shop.example"], "secretName": "shop-tls"}]}
        }));
        let config_map = |name: &str| -> ConfigMap {
            serde_json::from_value(serde_json::json!({"metadata": {"name": name, "namespace": "web"}, "data": {"X-A": "1"}})).unwrap()
        };
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "shop-1", "namespace": "web", "labels": {"kubernetes.io/service-name": "shop"}},
            "addressType": "IPv4", "endpoints": []
        }))
        .unwrap();
        let secret: Secret = serde_json::from_value(serde_json::json!({"metadata": {"name": "shop-tls", "namespace": "web"}})).unwrap();
        let stores = Stores {
            ingresses: store(vec![shop]),
            ingress_classes: store(vec![]),
            services: store(vec![]),
            endpoint_slices: store(vec![slice]),
            secrets: store(vec![secret]),
            config_maps: store(vec![config_map("shop-headers"), config_map("unrelated")]),
            flag_config_maps: BTreeSet::new(),
        };
        let all: BTreeSet<ObjectKind> = ObjectKind::ALL.into_iter().collect();
        let first = stores.snapshot(&ClusterState::default(), &all);
        assert_eq!((first.ingresses.len(), first.endpoint_slices.len(), first.secrets.len(), first.config_maps.len()), (1, 1, 1, 1));
        for (changed, expected) in [
            (vec![], vec![]),
            (vec![ObjectKind::EndpointSlice], vec![ObjectKind::EndpointSlice]),
            // The Secrets and ConfigMaps kept depend on the Ingresses: read again, but the same
            // objects keep the same maps.
            (vec![ObjectKind::Ingress], vec![ObjectKind::Ingress]),
            (vec![ObjectKind::Ingress, ObjectKind::Secret], vec![ObjectKind::Ingress]),
            // A kind read again whose kept objects are the very same ones keeps its map.
            (vec![ObjectKind::ConfigMap], vec![]),
            (vec![ObjectKind::Service, ObjectKind::Secret], vec![ObjectKind::Service]),
        ] {
            let next = stores.snapshot(&first, &changed.iter().copied().collect());
            assert_eq!(first.changed_kinds(&next).into_iter().collect::<Vec<_>>(), expected, "{changed:?}");
            assert_eq!(next.secrets.len(), 1, "{changed:?}: the Secret an Ingress names is kept");
            assert_eq!(next.config_maps.keys().collect::<Vec<_>>(), [&ObjectKey::new("web", "shop-headers")], "{changed:?}");
        }
        // An Ingress that stops naming them: the Secrets and ConfigMaps go too.
        let plain = Stores { ingresses: store(vec![ingress(serde_json::json!({"metadata": {"name": "shop", "namespace": "web"}}))]), ..stores };
        let next = plain.snapshot(&first, &BTreeSet::from([ObjectKind::Ingress]));
        assert_eq!(first.changed_kinds(&next).into_iter().collect::<Vec<_>>(), vec![ObjectKind::Ingress, ObjectKind::Secret, ObjectKind::ConfigMap]);
        assert_eq!((next.secrets.len(), next.config_maps.len()), (0, 0));
    }
}
