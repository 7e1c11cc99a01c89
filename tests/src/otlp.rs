//! A stand-in OpenTelemetry collector: an OTLP/gRPC server (HTTP/2 without TLS, as collectors
//! listen on 4317) on loopback that records each `Export` request and answers it with an empty
//! `ExportTraceServiceResponse`. Tests read what reached it: the gRPC method and the protobuf
//! body, whose strings (service name, span attributes) appear as written.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response};
use tokio::sync::oneshot;

/// One request the collector received.
#[derive(Debug, Clone)]
pub struct Export {
    /// The gRPC method, e.g. `/opentelemetry.proto.collector.trace.v1.TraceService/Export`.
    pub path: String,
    /// The gRPC message (the 5-byte frame header removed).
    pub message: Vec<u8>,
}

impl Export {
    /// Whether the message holds `text` (protobuf strings are stored as written).
    pub fn contains(&self, text: &str) -> bool {
        self.message.windows(text.len()).any(|window| window == text.as_bytes())
    }
}

/// The stand-in collector; stops when dropped.
pub struct OtlpCollector {
    pub addr: SocketAddr,
    exports: Arc<Mutex<Vec<Export>>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OtlpCollector {
    /// Listen on a free 127.0.0.1 port, serving from a thread of its own.
    pub fn start() -> anyhow::Result<OtlpCollector> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let exports = Arc::new(Mutex::new(Vec::new()));
        let (shutdown, stopped) = oneshot::channel();
        let recorded = Arc::clone(&exports);
        let thread = std::thread::Builder::new()
            .name("stand-in-otlp-collector".into())
            .spawn(move || runtime.block_on(accept(listener, recorded, stopped)))?;
        Ok(OtlpCollector { addr, exports, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// Every request received so far.
    pub fn exports(&self) -> Vec<Export> {
        self.exports.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Drop for OtlpCollector {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept(listener: tokio::net::TcpListener, exports: Arc<Mutex<Vec<Export>>>, mut stopped: oneshot::Receiver<()>) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => return,
        };
        let exports = Arc::clone(&exports);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| handle(Arc::clone(&exports), request));
            let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

async fn handle(exports: Arc<Mutex<Vec<Export>>>, request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_string();
    let body = request.into_body().collect().await.map(|collected| collected.to_bytes()).unwrap_or_default();
    let message = body.get(5..).unwrap_or_default().to_vec();
    exports.lock().unwrap_or_else(PoisonError::into_inner).push(Export { path, message });
    // An empty message, then `grpc-status: 0` in the trailers.
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames: Vec<Result<Frame<Bytes>, Infallible>> =
        vec![Ok(Frame::data(Bytes::from_static(&[0, 0, 0, 0, 0]))), Ok(Frame::trailers(trailers))];
    let body = StreamBody::new(futures::stream::iter(frames)).boxed();
    let mut response = Response::new(body);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    Ok(response)
}
