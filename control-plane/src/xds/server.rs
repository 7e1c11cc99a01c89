//! The ADS gRPC server (tonic): a thin async loop per stream around `stream::StreamState`.
//!
//! Each Envoy stream gets its own task that waits on two inputs — Envoy's next request and the
//! next published snapshot — feeds them to the state machine, sends the responses it returns, and
//! logs/counts its events; while Envoy stands by a rejection, a third input is the timer that
//! sends the rejected responses again (1 s, doubling to a minute). Any number of Envoys may
//! connect. Streams end when Envoy disconnects or when the snapshot channel closes (shutdown). Both ADS protocols are served: state of the world
//! (`api_type: GRPC`) and delta (`DELTA_GRPC`, our bootstrap's default), the second as a
//! translation around the first (`delta`).
//!
//! With `ServerOptions::tls` the server speaks only mutual TLS: a client without a certificate
//! signed by the xDS CA never gets an HTTP/2 connection (rustls refuses the handshake). Streams and
//! request sizes are capped, so a client cannot exhaust the control plane.
//!
//! No protocol decisions here: they are all in `stream`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use futures::Stream;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

use super::cache::Snapshot;
use super::rejections::Rejections;
use super::delta::DeltaStream;
use super::resources::ResourceType;
use super::stream::{StreamEvent, StreamState};
use crate::metrics::Metrics;

/// Responses buffered per stream before the stream task waits for Envoy to read.
const STREAM_BUFFER: usize = 16;

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// How the ADS server protects itself: mutual TLS, and caps on streams and request sizes.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `Some`: only clients with a certificate from the configured CA get a connection.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// Most ADS streams served at once; more are refused with `RESOURCE_EXHAUSTED`.
    pub max_streams: usize,
    /// Largest request message accepted (bytes).
    pub max_request_bytes: usize,
}

impl Default for ServerOptions {
    fn default() -> ServerOptions {
        ServerOptions { tls: None, max_streams: 1024, max_request_bytes: 4 * 1024 * 1024 }
    }
}

/// HTTP/2 streams per connection: Envoy uses one ADS stream; a few spare for reconnect races.
const MAX_STREAMS_PER_CONNECTION: u32 = 8;

/// The tonic service: hands each stream the snapshot channel and the metrics.
#[derive(Debug, Clone)]
pub struct AdsService {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    metrics: Arc<Metrics>,
    /// One permit per open stream.
    streams: Arc<tokio::sync::Semaphore>,
    /// Standing NACKs of every stream.
    rejections: Arc<watch::Sender<Rejections>>,
}

impl AdsService {
    pub fn new(
        snapshots: watch::Receiver<Arc<Snapshot>>,
        metrics: Arc<Metrics>,
        max_streams: usize,
        rejections: Arc<watch::Sender<Rejections>>,
    ) -> AdsService {
        AdsService { snapshots, metrics, streams: Arc::new(tokio::sync::Semaphore::new(max_streams.max(1))), rejections }
    }
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsService {
    type StreamAggregatedResourcesStream = ResponseStream<DiscoveryResponse>;
    type DeltaAggregatedResourcesStream = ResponseStream<DeltaDiscoveryResponse>;

    async fn stream_aggregated_resources(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        self.open::<StreamState>(request)
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        self.open::<DeltaStream>(request)
    }
}

impl AdsService {
    /// Start serving one stream of protocol `P` in a task of its own.
    fn open<P: Protocol>(&self, request: Request<Streaming<P::Request>>) -> Result<Response<ResponseStream<P::Response>>, Status> {
        let peer = request.remote_addr().map(|a| a.to_string()).unwrap_or_else(|| "unknown".into());
        let Ok(permit) = Arc::clone(&self.streams).try_acquire_owned() else {
            tracing::warn!(%peer, "ADS stream refused: --xds-max-streams reached");
            return Err(Status::resource_exhausted("too many ADS streams"));
        };
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        let (snapshots, metrics) = (self.snapshots.clone(), Arc::clone(&self.metrics));
        let rejections = Arc::clone(&self.rejections);
        tokio::spawn(async move {
            let shared = StreamShared { metrics: Arc::clone(&metrics), rejections: Arc::clone(&rejections) };
            let node = run_stream::<P>(request.into_inner(), snapshots, sender, shared, peer).await;
            if let Some(node) = node {
                if rejections.send_if_modified(|r| r.forget_node(&node)) {
                    metrics.xds_rejections.set(i64::try_from(rejections.borrow().len()).unwrap_or(i64::MAX));
                }
            }
            drop(permit);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

/// One ADS protocol's per-stream state machine, as the stream loop drives it.
trait Protocol: Send + Sized + 'static {
    type Request: prost::Message + Default + Send + 'static;
    type Response: Send + 'static;
    /// The protocol's name in logs.
    const NAME: &'static str;
    fn new(snapshot: Arc<Snapshot>) -> Self;
    /// `Err`: end the stream with this status.
    fn on_request(&mut self, request: Self::Request) -> Result<(Vec<Self::Response>, Vec<StreamEvent>), Status>;
    fn on_snapshot(&mut self, snapshot: Arc<Snapshot>) -> (Vec<Self::Response>, Vec<StreamEvent>);
    fn node_id(&self) -> Option<&str>;
    /// How many times the standing rejections were sent again, if any can be.
    fn rejected_resends(&self) -> Option<u32>;
    fn resend_rejected(&mut self) -> (Vec<Self::Response>, Vec<StreamEvent>);
    /// Type URL, version, nonce and resource count of a response, for the push log.
    fn describe(response: &Self::Response) -> (&str, &str, &str, usize);
}

impl Protocol for StreamState {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;
    const NAME: &'static str = "state of the world";
    fn new(snapshot: Arc<Snapshot>) -> Self {
        StreamState::new(snapshot)
    }
    fn on_request(&mut self, request: DiscoveryRequest) -> Result<(Vec<DiscoveryResponse>, Vec<StreamEvent>), Status> {
        let step = StreamState::on_request(self, request);
        Ok((step.responses, step.events))
    }
    fn on_snapshot(&mut self, snapshot: Arc<Snapshot>) -> (Vec<DiscoveryResponse>, Vec<StreamEvent>) {
        let step = StreamState::on_snapshot(self, snapshot);
        (step.responses, step.events)
    }
    fn node_id(&self) -> Option<&str> {
        StreamState::node_id(self)
    }
    fn rejected_resends(&self) -> Option<u32> {
        StreamState::rejected_resends(self)
    }
    fn resend_rejected(&mut self) -> (Vec<DiscoveryResponse>, Vec<StreamEvent>) {
        let step = StreamState::resend_rejected(self);
        (step.responses, step.events)
    }
    fn describe(response: &DiscoveryResponse) -> (&str, &str, &str, usize) {
        (&response.type_url, &response.version_info, &response.nonce, response.resources.len())
    }
}

impl Protocol for DeltaStream {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;
    const NAME: &'static str = "delta";
    fn new(snapshot: Arc<Snapshot>) -> Self {
        DeltaStream::new(snapshot)
    }
    fn on_request(&mut self, request: DeltaDiscoveryRequest) -> Result<(Vec<DeltaDiscoveryResponse>, Vec<StreamEvent>), Status> {
        let step = DeltaStream::on_request(self, request);
        match step.exhausted {
            Some(reason) => Err(Status::resource_exhausted(reason)),
            None => Ok((step.responses, step.events)),
        }
    }
    fn on_snapshot(&mut self, snapshot: Arc<Snapshot>) -> (Vec<DeltaDiscoveryResponse>, Vec<StreamEvent>) {
        let step = DeltaStream::on_snapshot(self, snapshot);
        (step.responses, step.events)
    }
    fn node_id(&self) -> Option<&str> {
        DeltaStream::node_id(self)
    }
    fn rejected_resends(&self) -> Option<u32> {
        DeltaStream::rejected_resends(self)
    }
    fn resend_rejected(&mut self) -> (Vec<DeltaDiscoveryResponse>, Vec<StreamEvent>) {
        let step = DeltaStream::resend_rejected(self);
        (step.responses, step.events)
    }
    fn describe(response: &DeltaDiscoveryResponse) -> (&str, &str, &str, usize) {
        (&response.type_url, &response.system_version_info, &response.nonce, response.resources.len() + response.removed_resources.len())
    }
}

/// Decrements the stream gauge however the stream ends.
struct StreamGauge(Arc<Metrics>);

impl StreamGauge {
    fn open(metrics: Arc<Metrics>) -> StreamGauge {
        metrics.xds_connected_streams.inc();
        StreamGauge(metrics)
    }
}

impl Drop for StreamGauge {
    fn drop(&mut self) {
        self.0.xds_connected_streams.dec();
    }
}

/// What every stream reports to.
struct StreamShared {
    metrics: Arc<Metrics>,
    rejections: Arc<watch::Sender<Rejections>>,
}

/// Serve one stream until it ends; returns the node id, if Envoy sent one.
async fn run_stream<P: Protocol>(
    mut requests: Streaming<P::Request>,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    sender: mpsc::Sender<Result<P::Response, Status>>,
    shared: StreamShared,
    peer: String,
) -> Option<String> {
    let metrics = Arc::clone(&shared.metrics);
    let _gauge = StreamGauge::open(Arc::clone(&metrics));
    let mut state = P::new(snapshots.borrow_and_update().clone());
    tracing::debug!(%peer, protocol = P::NAME, "ADS stream opened");
    // When to send the rejected responses again, while a rejection stands.
    let mut resend_at: Option<tokio::time::Instant> = None;
    let reason = loop {
        let (responses, events) = tokio::select! {
            request = requests.message() => match request {
                Ok(Some(request)) => match state.on_request(request) {
                    Ok(step) => step,
                    Err(status) => {
                        let reason = format!("refused: {}", status.message());
                        tracing::warn!(node = state.node_id().unwrap_or(""), %peer, %reason, "ADS stream ended by the control plane");
                        let _ = sender.send(Err(status)).await;
                        break reason;
                    }
                },
                Ok(None) => break "Envoy closed the stream".to_string(),
                Err(status) => break format!("stream error: {}", status.message()),
            },
            changed = snapshots.changed() => match changed {
                Ok(()) => state.on_snapshot(snapshots.borrow_and_update().clone()),
                Err(_) => break "control plane shutting down".to_string(),
            },
            () = sender.closed() => break "Envoy went away".to_string(),
            () = tokio::time::sleep_until(resend_at.unwrap_or_else(tokio::time::Instant::now)), if resend_at.is_some() => {
                tracing::info!(
                    node = state.node_id().unwrap_or(""),
                    resends = state.rejected_resends().unwrap_or(0),
                    "sending rejected configuration again (a rejection can pass: Envoy could not create the wasm VM, a file it reads was missing)"
                );
                state.resend_rejected()
            }
        };
        let node = state.node_id().unwrap_or("");
        report(&events, node, &shared, &peer);
        let mut delivered = true;
        for response in responses {
            let (type_url, version, nonce, resources) = P::describe(&response);
            let resource_type = ResourceType::from_type_url(type_url);
            tracing::debug!(
                node,
                r#type = resource_type.map(ResourceType::label).unwrap_or(""),
                %version,
                %nonce,
                resources,
                "xDS push"
            );
            if sender.send(Ok(response)).await.is_err() {
                delivered = false;
                break;
            }
            if let Some(resource_type) = resource_type {
                metrics.count_push(resource_type);
            }
        }
        if !delivered {
            break "Envoy went away".to_string();
        }
        resend_at = state.rejected_resends().map(|resends| {
            resend_at.filter(|at| *at > tokio::time::Instant::now()).unwrap_or_else(|| tokio::time::Instant::now() + resend_delay(resends))
        });
    };
    tracing::info!(node = state.node_id().unwrap_or(""), %peer, %reason, protocol = P::NAME, "ADS stream closed");
    state.node_id().map(str::to_string)
}

/// Longest wait before a rejected response is sent again.
const MAX_RESEND_DELAY: Duration = Duration::from_secs(60);

/// The wait before sending a rejected response again after `resends` earlier tries: 1 s, doubling
/// up to [`MAX_RESEND_DELAY`]. A rejection that stands (bad content) costs Envoy one validation a
/// minute; one that passes (a VM that failed to start) is over within a second.
fn resend_delay(resends: u32) -> Duration {
    Duration::from_secs(1u64 << resends.min(6)).min(MAX_RESEND_DELAY)
}

fn report(events: &[StreamEvent], node: &str, shared: &StreamShared, peer: &str) {
    let metrics = &shared.metrics;
    for event in events {
        if shared.rejections.send_if_modified(|r| r.record(node, event)) {
            metrics.xds_rejections.set(i64::try_from(shared.rejections.borrow().len()).unwrap_or(i64::MAX));
        }
        match event {
            StreamEvent::NodeIdentified { node_id, cluster } => {
                tracing::info!(node = %node_id, %cluster, %peer, "Envoy connected (ADS stream)");
            }
            StreamEvent::Acked { resource_type, version } => {
                tracing::debug!(node, r#type = resource_type.label(), %version, "ACK");
            }
            StreamEvent::Nacked { resource_type, rejected_version, last_accepted_version, error_detail } => {
                metrics.count_nack(*resource_type);
                tracing::warn!(
                    node,
                    r#type = resource_type.label(),
                    %rejected_version,
                    %last_accepted_version,
                    %error_detail,
                    "Envoy rejected configuration (NACK); it keeps serving the last accepted version"
                );
            }
            StreamEvent::StaleNonce { resource_type, nonce } => {
                tracing::debug!(node, r#type = resource_type.label(), %nonce, "stale nonce ignored");
            }
            StreamEvent::UnknownType { type_url } => {
                tracing::warn!(node, %type_url, "request for an xDS type we do not serve; ignored");
            }
        }
    }
}

/// Serve ADS on `listener` until `shutdown` completes. In-flight streams end when the snapshot
/// channel closes (drop the `SnapshotCache`) — do that before or together with `shutdown`.
pub async fn serve(
    listener: TcpListener,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    metrics: Arc<Metrics>,
    rejections: Arc<watch::Sender<Rejections>>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let service = AggregatedDiscoveryServiceServer::new(AdsService::new(snapshots, metrics, options.max_streams, rejections))
        .max_decoding_message_size(options.max_request_bytes);
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION));
    if let Some(tls) = options.tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeMap;

    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
    use envoy_types::pb::google::protobuf::Any;
    use envoy_types::pb::google::rpc::Status as RpcStatus;
    use tokio_stream::StreamExt;

    use super::super::cache::SnapshotCache;
    use super::super::resources::NamedResource;
    use super::*;

    fn clusters(content: &str) -> Snapshot {
        Snapshot::new(BTreeMap::from([(
            ResourceType::Cluster,
            vec![NamedResource {
                name: "default/web/80".into(),
                resource: Any { type_url: ResourceType::Cluster.type_url().into(), value: content.as_bytes().to_vec() },
            }],
        )]))
    }

    /// Two clients on one server: both get the snapshot, a rebuild reaches both, a NACK is counted.
    #[tokio::test]
    async fn several_streams_get_pushes_and_nacks_are_counted() {
        let cache = SnapshotCache::new();
        cache.update(clusters("v1"));
        let metrics = Arc::new(Metrics::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let rejections = Arc::new(watch::channel(Rejections::default()).0);
        let mut standing = rejections.subscribe();
        let server = tokio::spawn(serve(listener, cache.subscribe(), Arc::clone(&metrics), Arc::clone(&rejections), ServerOptions::default(), async {
            let _ = stopped.await;
        }));

        let mut streams = Vec::new();
        for id in ["envoy-a", "envoy-b"] {
            let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{address}")).await.unwrap();
            let (requests, outgoing) = mpsc::channel::<DiscoveryRequest>(8);
            requests
                .send(DiscoveryRequest {
                    node: Some(Node { id: id.into(), ..Default::default() }),
                    type_url: ResourceType::Cluster.type_url().into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let responses =
                client.stream_aggregated_resources(ReceiverStream::new(outgoing)).await.unwrap().into_inner();
            streams.push((requests, responses));
        }
        let timeout = Duration::from_secs(10);
        let mut first = Vec::new();
        for (_, responses) in &mut streams {
            let response = tokio::time::timeout(timeout, responses.next()).await.unwrap().unwrap().unwrap();
            assert_eq!(response.resources[0].value, b"v1");
            first.push(response);
        }
        // Both ACK; then a rebuild.
        for ((requests, _), response) in streams.iter().zip(&first) {
            requests
                .send(DiscoveryRequest {
                    version_info: response.version_info.clone(),
                    type_url: response.type_url.clone(),
                    response_nonce: response.nonce.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        cache.update(clusters("v2"));
        let mut second = Vec::new();
        for (_, responses) in &mut streams {
            let response = tokio::time::timeout(timeout, responses.next()).await.unwrap().unwrap().unwrap();
            assert_eq!(response.resources[0].value, b"v2");
            second.push(response);
        }
        // envoy-a rejects v2.
        streams[0]
            .0
            .send(DiscoveryRequest {
                version_info: first[0].version_info.clone(),
                type_url: second[0].type_url.clone(),
                response_nonce: second[0].nonce.clone(),
                error_detail: Some(RpcStatus { code: 3, message: "bad cluster".into(), details: vec![] }),
                ..Default::default()
            })
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + timeout;
        while !metrics.encode().contains("xds_nacks_total{type=\"cds\"} 1") {
            assert!(tokio::time::Instant::now() < deadline, "NACK not counted:\n{}", metrics.encode());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(metrics.encode().contains("xds_connected_streams 2"));
        let standing = standing.wait_for(|r| !r.is_empty()).await.unwrap().clone();
        let rejection = standing.iter().next().unwrap();
        assert_eq!((rejection.node.as_str(), rejection.error_detail.as_str()), ("envoy-a", "bad cluster"));
        assert_eq!(rejection.last_accepted_version, first[0].version_info);
        assert!(metrics.encode().contains("xds_rejections 1"), "{}", metrics.encode());

        // A second later envoy-a is sent v2 again (a rejection can pass); it ACKs, and the
        // rejection clears.
        let again = tokio::time::timeout(timeout, streams[0].1.next()).await.unwrap().unwrap().unwrap();
        assert_eq!((again.resources[0].value.as_slice(), &again.version_info), (b"v2".as_slice(), &second[0].version_info));
        assert_ne!(again.nonce, second[0].nonce);
        assert!(metrics.encode().contains("xds_pushes_total{type=\"cds\"} 5"), "{}", metrics.encode());
        streams[0]
            .0
            .send(DiscoveryRequest {
                version_info: again.version_info.clone(),
                type_url: again.type_url.clone(),
                response_nonce: again.nonce.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut cleared = rejections.subscribe();
        tokio::time::timeout(timeout, cleared.wait_for(Rejections::is_empty)).await.unwrap().unwrap();

        // Shutdown: closing the snapshot channel ends the streams, then the server stops.
        drop(cache);
        for (_, responses) in &mut streams {
            let end = tokio::time::timeout(timeout, responses.next()).await.unwrap();
            assert!(end.as_ref().is_none_or(|r| r.is_err()), "stream should end: {end:?}");
        }
        let _ = stop.send(());
        tokio::time::timeout(timeout, server).await.unwrap().unwrap().unwrap();
    }

    /// A delta client over a real socket: the first push has the cluster, a rebuild sends the
    /// changed one, and a stream that ends frees its slot.
    #[tokio::test]
    async fn delta_streams_are_served() {
        let cache = SnapshotCache::new();
        cache.update(clusters("v1"));
        let metrics = Arc::new(Metrics::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let rejections = Arc::new(watch::channel(Rejections::default()).0);
        let options = ServerOptions { max_streams: 1, ..ServerOptions::default() };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, cache.subscribe(), Arc::clone(&metrics), rejections, options, async {
            let _ = stopped.await;
        }));
        let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{address}")).await.unwrap();
        let (requests, outgoing) = mpsc::channel::<DeltaDiscoveryRequest>(8);
        let subscribe = DeltaDiscoveryRequest {
            node: Some(Node { id: "envoy-delta".into(), ..Default::default() }),
            type_url: ResourceType::Cluster.type_url().into(),
            initial_resource_versions: [("default/old/80".to_string(), "v0".to_string())].into(),
            ..Default::default()
        };
        requests.send(subscribe).await.unwrap();
        let mut responses = client.delta_aggregated_resources(ReceiverStream::new(outgoing)).await.unwrap().into_inner();
        let timeout = Duration::from_secs(10);
        let first = tokio::time::timeout(timeout, responses.next()).await.unwrap().unwrap().unwrap();
        let names: Vec<&str> = first.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!((names, first.removed_resources.clone()), (vec!["default/web/80"], vec!["default/old/80".to_string()]));
        requests
            .send(DeltaDiscoveryRequest { type_url: first.type_url.clone(), response_nonce: first.nonce.clone(), ..Default::default() })
            .await
            .unwrap();
        cache.update(clusters("v2"));
        let second = tokio::time::timeout(timeout, responses.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(second.resources[0].resource.as_ref().unwrap().value, b"v2");
        assert!(second.removed_resources.is_empty());
        // One stream allowed: a second client is refused while the first is open.
        let (_more, idle) = mpsc::channel::<DeltaDiscoveryRequest>(1);
        let refused = client.delta_aggregated_resources(ReceiverStream::new(idle)).await;
        assert_eq!(refused.err().map(|status| status.code()), Some(tonic::Code::ResourceExhausted));
        // Subscriptions add up over requests: past the cap the stream ends, and its slot is free.
        let names: Vec<String> = (0..=super::super::delta::MAX_SUBSCRIBED_NAMES).map(|i| format!("e{i}")).collect();
        let endpoints = DeltaDiscoveryRequest { type_url: ResourceType::Endpoint.type_url().into(), resource_names_subscribe: names, ..Default::default() };
        requests.send(endpoints).await.unwrap();
        let end = tokio::time::timeout(timeout, responses.next()).await.unwrap();
        assert_eq!(end.map(|r| r.map(drop).map_err(|status| status.code())), Some(Err(tonic::Code::ResourceExhausted)));
        let deadline = tokio::time::Instant::now() + timeout;
        while !metrics.encode().contains("xds_connected_streams 0") {
            assert!(tokio::time::Instant::now() < deadline, "stream not closed:\n{}", metrics.encode());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(cache);
        let _ = stop.send(());
        tokio::time::timeout(timeout, server).await.unwrap().unwrap().unwrap();
    }
}
