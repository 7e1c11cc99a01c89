//! The admin HTTP server (axum): `/healthz` (the process is up), `/readyz` (the first snapshot has
//! been built, so Envoy would get a real configuration; the body lists the NACKs standing now —
//! the control plane stays ready, Envoy serves its last accepted configuration) and `/metrics`
//! (OpenMetrics text).
//!
//! It only reports; it must not change anything (no config endpoints, no debug mutations).

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::xds::rejections::Rejections;

/// OpenMetrics text, as prometheus-client encodes it.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone)]
struct AdminState {
    ready: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    rejections: watch::Receiver<Rejections>,
}

/// The admin routes; `ready` turns true once the first snapshot is built.
pub fn router(ready: watch::Receiver<bool>, metrics: Arc<Metrics>, rejections: watch::Receiver<Rejections>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { ready, metrics, rejections })
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, String) {
    if *state.ready.borrow() {
        (StatusCode::OK, format!("ready\n{}", state.rejections.borrow().describe()))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: no configuration built yet\n".to_string())
    }
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], state.metrics.encode())
}

/// Serve the admin routes on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    ready: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    rejections: watch::Receiver<Rejections>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(ready, metrics, rejections)).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn get(address: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await.unwrap().unwrap();
        response
    }

    #[tokio::test]
    async fn readyz_turns_ready_after_the_first_snapshot() {
        let (ready_tx, ready) = watch::channel(false);
        let metrics = Arc::new(Metrics::new());
        metrics.count_push(crate::xds::resources::ResourceType::Listener);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (rejected, rejections) = watch::channel(Rejections::default());
        let server = tokio::spawn(serve(listener, ready, metrics, rejections, async {
            let _ = stopped.await;
        }));

        assert!(get(address, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 503"));
        ready_tx.send(true).unwrap();
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 200"));
        // A standing NACK is listed; the control plane stays ready.
        rejected.send_modify(|r| {
            r.record(
                "envoy-0",
                &crate::xds::stream::StreamEvent::Nacked {
                    resource_type: crate::xds::resources::ResourceType::Cluster,
                    rejected_version: "v2".into(),
                    last_accepted_version: "v1".into(),
                    error_detail: "bad cluster".into(),
                },
            );
        });
        let readyz = get(address, "/readyz").await;
        assert!(readyz.starts_with("HTTP/1.1 200"), "{readyz}");
        assert!(readyz.ends_with("ready\nrejected: node=envoy-0 type=cds version=v2 (serving v1): bad cluster\n"), "{readyz}");
        let metrics = get(address, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"));
        assert!(metrics.contains("xds_pushes_total{type=\"lds\"} 1"), "{metrics}");
        assert!(get(address, "/nope").await.starts_with("HTTP/1.1 404"));

        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap().unwrap();
    }
}
