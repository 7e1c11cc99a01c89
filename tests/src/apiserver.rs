//! A stand-in Kubernetes API server over real HTTP, so `wasm-ingress serve --kubeconfig` can be run
//! end to end (kube-rs client, watchers, leader election, status and Events writers) without a
//! cluster. It keeps objects per collection and speaks the subset of the API the control plane
//! uses:
//! - LIST: the collection's objects (one namespace or all; `fieldSelector` on `type`/`metadata.*`
//!   with `=`/`==`/`!=`) and the current `resourceVersion`;
//! - WATCH: a chunked stream of newline-delimited watch events from the given `resourceVersion` on,
//!   as the real one; a version older than the last [`ApiServer::compact`] gets the `410 Expired`
//!   ERROR event etcd compaction makes the real one send, so the client must relist;
//! - GET/POST/PUT/DELETE of named objects (PUT with optimistic concurrency: a stale
//!   `metadata.resourceVersion` is a 409) and JSON merge patches, `/status` included.
//!
//! Anything else (an unknown collection, a label selector) is a 404/400 `Status` that a test notices.
//! The test drives it synchronously — [`ApiServer::apply`], [`ApiServer::delete`],
//! [`ApiServer::close_watches`], [`ApiServer::compact`] — and reads what the controller wrote with
//! [`ApiServer::get`], [`ApiServer::list`] and [`ApiServer::requests`]. It serves from its own thread
//! and runtime on 127.0.0.1 and stops when dropped.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::loopback::LoopbackServer;

/// The collections the control plane reads and writes: (API prefix, plural resource, kind).
const COLLECTIONS: &[(&str, &str, &str)] = &[
    ("/apis/networking.k8s.io/v1", "ingresses", "Ingress"),
    ("/apis/networking.k8s.io/v1", "ingressclasses", "IngressClass"),
    ("/api/v1", "services", "Service"),
    ("/apis/discovery.k8s.io/v1", "endpointslices", "EndpointSlice"),
    ("/api/v1", "secrets", "Secret"),
    ("/api/v1", "configmaps", "ConfigMap"),
    ("/apis/coordination.k8s.io/v1", "leases", "Lease"),
    ("/apis/events.k8s.io/v1", "events", "Event"),
];

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// The JSON body (`Null` when empty or not JSON).
    pub body: Value,
}

impl RecordedRequest {
    pub fn is_watch(&self) -> bool {
        self.method == "GET" && self.query.get("watch").map(String::as_str) == Some("true")
    }
}

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
type Key = (String, String);

#[derive(Default)]
struct Collection {
    objects: BTreeMap<Key, Value>,
    /// Every watch event since the last compaction: (resourceVersion, the event).
    history: Vec<(u64, Value)>,
    watchers: Vec<Watcher>,
}

struct Watcher {
    namespace: Option<String>,
    selector: FieldSelector,
    sender: mpsc::UnboundedSender<Bytes>,
}

impl Watcher {
    fn wants(&self, event: &Value) -> bool {
        let object = &event["object"];
        self.namespace.as_deref().is_none_or(|ns| object["metadata"]["namespace"].as_str() == Some(ns)) && self.selector.matches(object)
    }
}

#[derive(Default)]
struct Inner {
    /// The last resourceVersion handed out (one counter for every collection, as etcd's).
    revision: u64,
    /// Watches from a version below this get `410 Expired`.
    compacted: u64,
    collections: BTreeMap<String, Collection>,
    requests: Vec<RecordedRequest>,
}

/// The stand-in API server; see the module documentation.
pub struct ApiServer {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    _server: LoopbackServer,
}

impl ApiServer {
    /// Listen on a free 127.0.0.1 port and serve from a thread of its own.
    pub fn start() -> anyhow::Result<ApiServer> {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let served = Arc::clone(&inner);
        let server = LoopbackServer::start("stand-in-apiserver", move |stream| {
            let inner = Arc::clone(&served);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| handle(Arc::clone(&inner), request));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        })?;
        Ok(ApiServer { addr: server.addr, inner, _server: server })
    }

    /// A kubeconfig (YAML) pointing at this server over plain HTTP, default namespace `default`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: http://{}\nusers:\n- name: stand-in\n  user: {{}}\ncontexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: stand-in\n    namespace: default\ncurrent-context: stand-in\n",
            self.addr
        )
    }

    /// Create or replace `object` (by its apiVersion, kind, namespace and name), as `kubectl apply`
    /// would: watchers see ADDED or MODIFIED. Returns the object as stored.
    pub fn apply(&self, object: Value) -> anyhow::Result<Value> {
        let collection = collection_of(&object)?;
        let key = key_of(&object).ok_or_else(|| anyhow!("object without metadata.name: {object}"))?;
        Ok(self.lock().store(&collection, key, object))
    }

    /// [`ApiServer::apply`] each of `objects`.
    pub fn apply_all(&self, objects: impl IntoIterator<Item = Value>) -> anyhow::Result<()> {
        objects.into_iter().try_for_each(|object| self.apply(object).map(drop))
    }

    /// Delete the object `object` names (watchers see DELETED); false if there was none.
    pub fn delete(&self, object: &Value) -> anyhow::Result<bool> {
        let collection = collection_of(object)?;
        let key = key_of(object).ok_or_else(|| anyhow!("object without metadata.name: {object}"))?;
        Ok(self.lock().remove(&collection, &key).is_some())
    }

    /// The stored object of `kind` (as in [`COLLECTIONS`]) `namespace`/`name`.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let (prefix, resource, _) = COLLECTIONS.iter().find(|(_, _, k)| *k == kind)?;
        let inner = self.lock();
        inner.collections.get(&format!("{prefix}/{resource}"))?.objects.get(&(namespace.to_string(), name.to_string())).cloned()
    }

    /// Every stored object of `kind`.
    pub fn list(&self, kind: &str) -> Vec<Value> {
        let Some((prefix, resource, _)) = COLLECTIONS.iter().find(|(_, _, k)| *k == kind) else { return Vec::new() };
        let inner = self.lock();
        inner.collections.get(&format!("{prefix}/{resource}")).map(|c| c.objects.values().cloned().collect()).unwrap_or_default()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// End every open watch (as the real server does at `timeoutSeconds` or on restart): clients
    /// watch again from the last version they saw.
    pub fn close_watches(&self) {
        for collection in self.lock().collections.values_mut() {
            collection.watchers.clear();
        }
    }

    /// Forget the event history (etcd compaction, which takes a version of its own) and end every
    /// open watch: a client watching again from any version it saw gets `410 Expired` and must
    /// list again.
    pub fn compact(&self) {
        let mut inner = self.lock();
        inner.revision += 1;
        inner.compacted = inner.revision;
        for collection in inner.collections.values_mut() {
            collection.history.clear();
            collection.watchers.clear();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }
}

impl Drop for ApiServer {
    /// Watch streams end first, so their connections close; the server stops after.
    fn drop(&mut self) {
        self.close_watches();
    }
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `"/api/v1/services"` for a v1 Service, and so on; unknown kinds are an error.
fn collection_of(object: &Value) -> anyhow::Result<String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let prefix = if api_version == "v1" { "/api/v1".to_string() } else { format!("/apis/{api_version}") };
    COLLECTIONS
        .iter()
        .find(|(p, _, k)| *p == prefix && *k == kind)
        .map(|(p, resource, _)| format!("{p}/{resource}"))
        .with_context(|| format!("the stand-in API server does not keep {api_version} {kind}"))
}

fn key_of(object: &Value) -> Option<Key> {
    let metadata = &object["metadata"];
    let name = metadata["name"].as_str().filter(|name| !name.is_empty())?;
    Some((metadata["namespace"].as_str().unwrap_or_default().to_string(), name.to_string()))
}

impl Inner {
    /// Store `object` under `key` with the next resourceVersion and tell the watchers.
    fn store(&mut self, collection: &str, key: Key, mut object: Value) -> Value {
        self.revision += 1;
        let revision = self.revision;
        let entry = self.collections.entry(collection.to_string()).or_default();
        let previous = entry.objects.get(&key);
        let uid = previous.and_then(|p| p["metadata"]["uid"].as_str().map(str::to_string)).unwrap_or_else(|| format!("uid-{revision}"));
        let created = previous.map(|p| p["metadata"]["creationTimestamp"].clone()).unwrap_or_else(|| json!(creation_timestamp(revision)));
        let event_type = if previous.is_some() { "MODIFIED" } else { "ADDED" };
        merge_string_data(&mut object);
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("resourceVersion".into(), json!(revision.to_string()));
            metadata.insert("uid".into(), json!(uid));
            metadata.insert("creationTimestamp".into(), created);
        }
        entry.objects.insert(key, object.clone());
        entry.publish(revision, json!({"type": event_type, "object": object.clone()}));
        object
    }

    fn remove(&mut self, collection: &str, key: &Key) -> Option<Value> {
        self.revision += 1;
        let revision = self.revision;
        let entry = self.collections.get_mut(collection)?;
        let mut object = entry.objects.remove(key)?;
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        entry.publish(revision, json!({"type": "DELETED", "object": object.clone()}));
        Some(object)
    }
}

impl Collection {
    fn publish(&mut self, revision: u64, event: Value) {
        let line = event_line(&event);
        self.watchers.retain(|watcher| !watcher.wants(&event) || watcher.sender.send(line.clone()).is_ok());
        self.history.push((revision, event));
    }
}

/// A Secret's `stringData`, merged into `data` (base64) as the API server stores it.
fn merge_string_data(object: &mut Value) {
    use base64::Engine as _;
    let Some(fields) = object.as_object_mut() else { return };
    let Some(Value::Object(strings)) = fields.remove("stringData") else { return };
    let data = fields.entry("data").or_insert_with(|| json!({}));
    for (key, text) in strings {
        data[key] = json!(base64::engine::general_purpose::STANDARD.encode(text.as_str().unwrap_or_default()));
    }
}

fn event_line(event: &Value) -> Bytes {
    let mut line = serde_json::to_vec(event).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// Creation times increase with the version (second resolution, as the API's), so "the oldest
/// Ingress" is the first applied.
fn creation_timestamp(revision: u64) -> String {
    let seconds = revision % 60;
    let minutes = (revision / 60) % 60;
    let hours = (revision / 3600) % 24;
    let days = 1 + revision / 86_400 % 28;
    format!("2026-01-{days:02}T{hours:02}:{minutes:02}:{seconds:02}Z")
}

/// `fieldSelector`: `path=value`, `path==value` and `path!=value` terms on dotted paths.
#[derive(Debug, Clone, Default)]
struct FieldSelector(Vec<(Vec<String>, bool, String)>);

impl FieldSelector {
    fn parse(text: &str) -> FieldSelector {
        let terms = text.split(',').filter(|term| !term.is_empty()).filter_map(|term| {
            let (path, equal, value) = if let Some((path, value)) = term.split_once("!=") {
                (path, false, value)
            } else {
                let (path, value) = term.split_once('=')?;
                (path, true, value.trim_start_matches('='))
            };
            Some((path.split('.').map(str::to_string).collect(), equal, value.to_string()))
        });
        FieldSelector(terms.collect())
    }

    fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, equal, value)| {
            let field = path.iter().fold(object, |v, segment| &v[segment.as_str()]);
            (field.as_str().unwrap_or_default() == value) == *equal
        })
    }
}

/// A request path split the API's way.
#[derive(Debug, PartialEq)]
struct ApiPath {
    /// `/api/v1/services`, whatever the namespace.
    collection: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

impl ApiPath {
    fn parse(path: &str) -> Option<ApiPath> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (prefix, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => (format!("/api/{version}"), rest),
            ["apis", group, version, rest @ ..] => (format!("/apis/{group}/{version}"), rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", namespace, rest @ ..] if !rest.is_empty() => (Some((*namespace).to_string()), rest),
            _ => (None, rest),
        };
        let (resource, name, subresource) = match rest {
            [resource] => (*resource, None, None),
            [resource, name] => (*resource, Some((*name).to_string()), None),
            [resource, name, subresource] => (*resource, Some((*name).to_string()), Some((*subresource).to_string())),
            _ => return None,
        };
        COLLECTIONS.iter().any(|(p, r, _)| *p == prefix && *r == resource).then(|| ApiPath {
            collection: format!("{prefix}/{resource}"),
            namespace,
            name,
            subresource,
        })
    }

    fn kind(&self) -> (&'static str, &'static str) {
        COLLECTIONS
            .iter()
            .find(|(p, r, _)| format!("{p}/{r}") == self.collection)
            .map(|(p, _, kind)| (p.trim_start_matches("/api/").trim_start_matches("/apis/"), *kind))
            .unwrap_or(("v1", "Unknown"))
    }
}

type Body = BoxBody<Bytes, Infallible>;

async fn handle(inner: Arc<Mutex<Inner>>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|collected| collected.to_bytes()).unwrap_or_default();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()).into_owned().collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let mut inner = lock(&inner);
    inner.requests.push(recorded.clone());
    let Some(path) = ApiPath::parse(&recorded.path) else {
        return Ok(status(StatusCode::NOT_FOUND, "NotFound", &format!("the stand-in does not serve {}", recorded.path)));
    };
    Ok(match (&parts.method, &path.name) {
        (&Method::GET, None) if recorded.is_watch() => inner.watch(&path, &recorded.query),
        (&Method::GET, None) => inner.list(&path, &recorded.query),
        (&Method::GET, Some(name)) => inner.read(&path, name),
        (&Method::POST, None) => inner.create(&path, recorded.body),
        (&Method::PUT, Some(name)) => inner.replace(&path, name, recorded.body),
        (&Method::PATCH, Some(name)) => inner.patch(&path, name, &recorded.body),
        (&Method::DELETE, Some(name)) => inner.delete_named(&path, name),
        _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &format!("{} {}", parts.method, recorded.path)),
    })
}

impl Inner {
    fn list(&self, path: &ApiPath, query: &BTreeMap<String, String>) -> Response<Body> {
        if query.contains_key("labelSelector") {
            return status(StatusCode::BAD_REQUEST, "BadRequest", "the stand-in does not implement label selectors");
        }
        let selector = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or_default());
        let items: Vec<&Value> = self
            .collections
            .get(&path.collection)
            .into_iter()
            .flat_map(|collection| collection.objects.iter())
            .filter(|((namespace, _), _)| path.namespace.as_ref().is_none_or(|ns| ns == namespace))
            .map(|(_, object)| object)
            .filter(|object| selector.matches(object))
            .collect();
        let (api_version, kind) = path.kind();
        json_response(
            StatusCode::OK,
            &json!({"apiVersion": api_version, "kind": format!("{kind}List"),
                    "metadata": {"resourceVersion": self.revision.to_string()}, "items": items}),
        )
    }

    fn watch(&mut self, path: &ApiPath, query: &BTreeMap<String, String>) -> Response<Body> {
        let from = query.get("resourceVersion").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let (sender, receiver) = mpsc::unbounded_channel();
        if from < self.compacted {
            let expired = json!({"type": "ERROR", "object": {"apiVersion": "v1", "kind": "Status", "metadata": {},
                "status": "Failure", "reason": "Expired", "code": 410,
                "message": format!("too old resource version: {from} ({})", self.compacted)}});
            let _ = sender.send(event_line(&expired));
        } else {
            let watcher = Watcher {
                namespace: path.namespace.clone(),
                selector: FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or_default()),
                sender,
            };
            let collection = self.collections.entry(path.collection.clone()).or_default();
            for (_, event) in collection.history.iter().filter(|(revision, event)| *revision > from && watcher.wants(event)) {
                let _ = watcher.sender.send(event_line(event));
            }
            collection.watchers.push(watcher);
        }
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|line| (Ok::<_, Infallible>(Frame::data(line)), receiver))
        });
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .unwrap_or_else(|_| Response::new(empty()))
    }

    fn read(&self, path: &ApiPath, name: &str) -> Response<Body> {
        match self.object(path, name) {
            Some(object) => json_response(StatusCode::OK, object),
            None => not_found(path, name),
        }
    }

    fn create(&mut self, path: &ApiPath, mut object: Value) -> Response<Body> {
        if let Some(namespace) = &path.namespace {
            object["metadata"]["namespace"] = json!(namespace);
        }
        let Some(key) = key_of(&object) else {
            return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", "metadata.name: Required value");
        };
        if self.collections.get(&path.collection).is_some_and(|c| c.objects.contains_key(&key)) {
            return status(StatusCode::CONFLICT, "AlreadyExists", &format!("\"{}\" already exists", key.1));
        }
        json_response(StatusCode::CREATED, &self.store(&path.collection, key, object))
    }

    fn replace(&mut self, path: &ApiPath, name: &str, object: Value) -> Response<Body> {
        let Some(current) = self.object(path, name) else { return not_found(path, name) };
        let sent = object["metadata"]["resourceVersion"].as_str();
        if sent.is_some_and(|version| Some(version) != current["metadata"]["resourceVersion"].as_str()) {
            return status(StatusCode::CONFLICT, "Conflict", "the object has been modified; please apply your changes to the latest version and try again");
        }
        let key = (path.namespace.clone().unwrap_or_default(), name.to_string());
        json_response(StatusCode::OK, &self.store(&path.collection, key, object))
    }

    /// A JSON merge patch (RFC 7386), on the object or its `/status`.
    fn patch(&mut self, path: &ApiPath, name: &str, patch: &Value) -> Response<Body> {
        let Some(mut object) = self.object(path, name).cloned() else { return not_found(path, name) };
        if path.subresource.as_deref().is_some_and(|sub| sub != "status") {
            return status(StatusCode::NOT_FOUND, "NotFound", "the stand-in only patches /status");
        }
        merge_patch(&mut object, patch);
        let key = (path.namespace.clone().unwrap_or_default(), name.to_string());
        json_response(StatusCode::OK, &self.store(&path.collection, key, object))
    }

    fn delete_named(&mut self, path: &ApiPath, name: &str) -> Response<Body> {
        let key = (path.namespace.clone().unwrap_or_default(), name.to_string());
        match self.remove(&path.collection, &key) {
            Some(object) => json_response(StatusCode::OK, &object),
            None => not_found(path, name),
        }
    }

    fn object(&self, path: &ApiPath, name: &str) -> Option<&Value> {
        let key = (path.namespace.clone().unwrap_or_default(), name.to_string());
        self.collections.get(&path.collection)?.objects.get(&key)
    }
}

fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(fields) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (field, value) in fields {
        if let Some(object) = target.as_object_mut() {
            if value.is_null() {
                object.remove(field);
            } else {
                merge_patch(object.entry(field.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

fn empty() -> Body {
    BodyExt::boxed(Full::new(Bytes::new()))
}

fn json_response(code: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(Full::new(Bytes::from(serde_json::to_vec(body).unwrap_or_default()))))
        .unwrap_or_else(|_| Response::new(empty()))
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    json_response(
        code,
        &json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                "reason": reason, "message": message, "code": code.as_u16()}),
    )
}

fn not_found(path: &ApiPath, name: &str) -> Response<Body> {
    status(StatusCode::NOT_FOUND, "NotFound", &format!("{} \"{name}\" not found", path.collection))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_the_apis_way() {
        let parsed = |p: &str| ApiPath::parse(p).map(|a| (a.collection, a.namespace, a.name, a.subresource));
        let some = |s: &str| Some(s.to_string());
        assert_eq!(parsed("/api/v1/services"), Some(("/api/v1/services".into(), None, None, None)));
        assert_eq!(parsed("/api/v1/namespaces/shop/secrets"), Some(("/api/v1/secrets".into(), some("shop"), None, None)));
        assert_eq!(
            parsed("/apis/networking.k8s.io/v1/namespaces/shop/ingresses/cart/status"),
            Some(("/apis/networking.k8s.io/v1/ingresses".into(), some("shop"), some("cart"), some("status")))
        );
        assert_eq!(parsed("/apis/networking.k8s.io/v1/ingressclasses/wasm"), Some(("/apis/networking.k8s.io/v1/ingressclasses".into(), None, some("wasm"), None)));
        assert_eq!(parsed("/api/v1/pods"), None);
        assert_eq!(parsed("/healthz"), None);
    }

    #[test]
    fn field_selectors_compare_dotted_fields() {
        let secret = json!({"type": "kubernetes.io/tls", "metadata": {"name": "a"}});
        let matches = |s: &str| FieldSelector::parse(s).matches(&secret);
        assert!(matches("type!=kubernetes.io/service-account-token,type!=helm.sh/release.v1"));
        assert!(!matches("type!=kubernetes.io/tls"));
        assert!(matches("metadata.name=a"));
        assert!(matches("metadata.name==a"));
        assert!(!matches("metadata.name=b"));
        assert!(matches(""));
    }

    #[test]
    fn string_data_is_stored_as_data() {
        let mut secret = json!({"kind": "Secret", "data": {"a": "eA=="}, "stringData": {"b": "y"}});
        merge_string_data(&mut secret);
        assert_eq!(secret, json!({"kind": "Secret", "data": {"a": "eA==", "b": "eQ=="}}));
    }

    #[test]
    fn merge_patches_replace_add_and_remove_fields() {
        let mut object = json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "status": {}});
        merge_patch(&mut object, &json!({"metadata": {"labels": {"x": null, "y": "2"}}, "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.9"}]}}}));
        assert_eq!(object, json!({"metadata": {"name": "a", "labels": {"y": "2"}}, "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.9"}]}}}));
    }
}
