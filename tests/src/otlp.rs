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

use crate::loopback::LoopbackServer;

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
    _server: LoopbackServer,
}

impl OtlpCollector {
    /// Listen on a free 127.0.0.1 port, serving from a thread of its own.
    pub fn start() -> anyhow::Result<OtlpCollector> {
        let exports = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&exports);
        let server = LoopbackServer::start("stand-in-otlp-collector", move |stream| {
            let exports = Arc::clone(&recorded);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| handle(Arc::clone(&exports), request));
                let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        })?;
        Ok(OtlpCollector { addr: server.addr, exports, _server: server })
    }

    /// Every request received so far.
    pub fn exports(&self) -> Vec<Export> {
        self.exports.lock().unwrap_or_else(PoisonError::into_inner).clone()
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
