//! A mocked Kubernetes API server for tests without a cluster (as kube-rs's own tests and
//! controller-rs do): a `tower_test::mock::pair` behind a real `kube::Client`, answering like the
//! apiserver. LIST requests are answered from per-path queues (parked until the test queues a
//! response), WATCH requests get a streaming body the test writes events into, and every other
//! request is handed to the test to check and answer. Every request is recorded.
//!
//! Shared by the `kube_*.rs` tests; each uses a subset, hence the `dead_code` allowance.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::channel::{Channel, Sender};
use http_body_util::{Either, Full};
use kube::client::Body;
use kube::Client;
use tokio::sync::mpsc;
use wasm_ingress::source::kube::{AccessScope, ApiAccess, RequestAccess};

type MockBody = Either<Full<Bytes>, Channel<Bytes>>;
type Responder = tower_test::mock::SendResponse<Response<MockBody>>;

/// Bound for every wait in these tests.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Await `future`, failing the test with `what` if it takes longer than [`STEP_TIMEOUT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(STEP_TIMEOUT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {STEP_TIMEOUT:?} waiting for {what}"),
    }
}

/// One request as the apiserver saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: Method,
    pub path: String,
    /// Decoded query parameters.
    pub query: BTreeMap<String, String>,
    /// The JSON body (`Null` when empty).
    pub body: serde_json::Value,
    pub content_type: Option<String>,
}

impl RecordedRequest {
    pub fn is_watch(&self) -> bool {
        self.method == Method::GET && self.query.get("watch").map(String::as_str) == Some("true")
    }

    /// The request in RBAC terms (the control plane's own mapping, `RequestAccess::of`).
    pub fn access(&self) -> RequestAccess {
        RequestAccess::of(self.method.as_str(), &self.path, self.is_watch())
            .unwrap_or_else(|| panic!("not an API resource request: {} {}", self.method, self.path))
    }
}

/// Assert every recorded request is allowed by `declared` (the modules' `API_ACCESS` lists):
/// what the code sends must be exactly what the RBAC in `deploy/` is built from.
pub fn assert_declared(requests: &[RecordedRequest], declared: &[&[ApiAccess]], own_namespace: &str) {
    for request in requests {
        let RequestAccess { group, resource, verb, namespace } = request.access();
        let allowed = declared.iter().flat_map(|list| list.iter()).any(|access| {
            access.group == group
                && access.resource == resource
                && access.verbs.contains(&verb)
                && match access.scope {
                    AccessScope::Cluster => true,
                    AccessScope::OwnNamespace => namespace.as_deref() == Some(own_namespace),
                }
        });
        assert!(allowed, "request {} {} ({verb} {group}/{resource}) is not declared in any API_ACCESS", request.method, request.path);
    }
}

/// An open watch response: the test writes events into it.
pub struct WatchConnection {
    pub request: RecordedRequest,
    sender: Sender<Bytes>,
}

impl WatchConnection {
    /// Send one watch event (`{"type": …, "object": …}`), newline-delimited as the apiserver does.
    pub async fn send(&mut self, event: serde_json::Value) {
        let mut line = serde_json::to_vec(&event).unwrap();
        line.push(b'\n');
        within("the watch body to accept an event", self.sender.send_data(Bytes::from(line)))
            .await
            .expect("watch body receiver gone");
    }

    /// `resourceVersion` the watch started from.
    pub fn resource_version(&self) -> &str {
        self.request.query.get("resourceVersion").map(String::as_str).unwrap_or("")
    }
}

/// A request (not LIST/WATCH) for the test to answer.
pub struct PendingRequest {
    pub request: RecordedRequest,
    responder: Responder,
}

impl PendingRequest {
    pub fn respond(self, status: u16, body: serde_json::Value) {
        self.responder.send_response(json_response(status, &body));
    }
}

#[derive(Default)]
struct Routes {
    lists: HashMap<String, VecDeque<(u16, serde_json::Value)>>,
    parked_lists: HashMap<String, Vec<Responder>>,
    watch_senders: HashMap<String, mpsc::UnboundedSender<WatchConnection>>,
    watch_receivers: HashMap<String, mpsc::UnboundedReceiver<WatchConnection>>,
}

impl Routes {
    fn watch_channel(&mut self, path: &str) {
        if !self.watch_senders.contains_key(path) {
            let (tx, rx) = mpsc::unbounded_channel();
            self.watch_senders.insert(path.to_string(), tx);
            self.watch_receivers.insert(path.to_string(), rx);
        }
    }
}

/// The fake apiserver. Dropping it stops answering.
pub struct FakeApiServer {
    pub client: Client,
    routes: Arc<Mutex<Routes>>,
    log: Arc<Mutex<Vec<RecordedRequest>>>,
    others: mpsc::UnboundedReceiver<PendingRequest>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json_response(status: u16, body: &serde_json::Value) -> Response<MockBody> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json")
        .body(Either::Left(Full::new(Bytes::from(serde_json::to_vec(body).unwrap()))))
        .unwrap()
}

async fn record(request: Request<Body>) -> RecordedRequest {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
    let content_type = request.headers().get("content-type").map(|value| value.to_str().unwrap().to_string());
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    RecordedRequest { method, path, query, body, content_type }
}

impl FakeApiServer {
    pub fn start() -> FakeApiServer {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<MockBody>>();
        let client = Client::new(service, "default");
        let routes = Arc::new(Mutex::new(Routes::default()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (others_tx, others) = mpsc::unbounded_channel();
        let task = {
            let routes = Arc::clone(&routes);
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                while let Some((request, responder)) = handle.next_request().await {
                    let request = record(request).await;
                    log.lock().unwrap().push(request.clone());
                    let mut routes = routes.lock().unwrap();
                    if request.is_watch() {
                        let (sender, body) = Channel::new(16);
                        responder.send_response(
                            Response::builder()
                                .status(200)
                                .header("content-type", "application/json")
                                .body(Either::Right(body))
                                .unwrap(),
                        );
                        routes.watch_channel(&request.path);
                        let path = request.path.clone();
                        let _ = routes.watch_senders[&path].send(WatchConnection { request, sender });
                    } else if request.method == Method::GET && request.access().verb == "list" {
                        match routes.lists.get_mut(&request.path).and_then(VecDeque::pop_front) {
                            Some((code, list)) => responder.send_response(json_response(code, &list)),
                            None => routes.parked_lists.entry(request.path.clone()).or_default().push(responder),
                        }
                    } else {
                        let _ = others_tx.send(PendingRequest { request, responder });
                    }
                }
            })
        };
        FakeApiServer { client, routes, log, others, task }
    }

    /// Queue the response to the next LIST of `path` (answers a parked LIST at once).
    pub fn queue_list(&self, path: &str, list: serde_json::Value) {
        self.queue_list_response(path, 200, list);
    }

    /// Queue any response (e.g. an error `Status`) to the next LIST of `path`.
    pub fn queue_list_response(&self, path: &str, code: u16, body: serde_json::Value) {
        let mut routes = self.routes.lock().unwrap();
        if let Some(responder) = routes.parked_lists.get_mut(path).and_then(|parked| (!parked.is_empty()).then(|| parked.remove(0))) {
            responder.send_response(json_response(code, &body));
        } else {
            routes.lists.entry(path.to_string()).or_default().push_back((code, body));
        }
    }

    /// The watches the code opens on `path`, in order. Call once per path.
    pub fn watches(&self, path: &str) -> mpsc::UnboundedReceiver<WatchConnection> {
        let mut routes = self.routes.lock().unwrap();
        routes.watch_channel(path);
        routes.watch_receivers.remove(path).expect("watches() called twice for one path")
    }

    /// The next request that is neither LIST nor WATCH.
    pub async fn next_request(&mut self) -> PendingRequest {
        within("the next API request", self.others.recv()).await.expect("fake apiserver stopped")
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.lock().unwrap().clone()
    }
}

/// The next watch connection on a `watches()` receiver, bounded in time.
pub async fn next_watch(watches: &mut mpsc::UnboundedReceiver<WatchConnection>, what: &str) -> WatchConnection {
    within(what, watches.recv()).await.expect("fake apiserver stopped")
}

/// A `Status` body as the apiserver sends with errors.
pub fn status(code: u16, reason: &str, message: &str) -> serde_json::Value {
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}
