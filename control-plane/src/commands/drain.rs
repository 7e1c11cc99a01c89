//! `drain-on-stop`: a companion process in Envoy's pod. When Kubernetes stops the pod it sends
//! this process SIGTERM at once, while Envoy's `preStop` sleep keeps Envoy serving; this process
//! then fails Envoy's health check through its admin API (`POST /healthcheck/fail`), which makes
//! Envoy drain every listener: each HTTP/1.1 response says `Connection: close` and HTTP/2
//! connections get GOAWAY, so clients with keep-alive connections move to other pods before
//! Envoy's own SIGTERM closes them — as nginx closes its keep-alive connections when it shuts
//! down gracefully. Envoy's distroless image has no program that could send that POST from a
//! `preStop` hook; the control plane's image has this one. A thin shell: wait for the signal,
//! send one request (retried a bounded number of times), exit.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::DrainArgs;

/// Envoy's admin path that fails its health check, and with it starts the drain.
pub const HEALTH_CHECK_FAIL_PATH: &str = "/healthcheck/fail";

/// Attempts at the admin request, and the pause between two: Envoy may be restarting.
const ATTEMPTS: u32 = 10;
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

pub fn run(args: DrainArgs) -> anyhow::Result<ExitCode> {
    super::serve::init_tracing();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        // Both handlers exist before the line that says so: a signal sent after it is seen.
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        tracing::info!(envoy_admin = %args.envoy_admin, "waiting for SIGTERM to drain Envoy");
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        fail_health_check(args.envoy_admin).await?;
        tracing::info!(envoy_admin = %args.envoy_admin, "Envoy's health check failed: it tells its clients to close their connections while it drains");
        Ok(ExitCode::SUCCESS)
    })
}

/// `POST /healthcheck/fail` to Envoy's admin until it answers 200, at most [`ATTEMPTS`] times.
async fn fail_health_check(admin: SocketAddr) -> anyhow::Result<()> {
    let mut attempt = 1;
    loop {
        let error = match tokio::time::timeout(ATTEMPT_TIMEOUT, post(admin, HEALTH_CHECK_FAIL_PATH)).await {
            Ok(Ok(200)) => return Ok(()),
            Ok(Ok(status)) => anyhow!("Envoy's admin answered {status}"),
            Ok(Err(error)) => error,
            Err(_) => anyhow!("no answer within {ATTEMPT_TIMEOUT:?}"),
        };
        if attempt == ATTEMPTS {
            return Err(error.context(format!("cannot fail Envoy's health check at http://{admin}{HEALTH_CHECK_FAIL_PATH} ({ATTEMPTS} attempts)")));
        }
        tracing::warn!(%error, attempt, "Envoy's admin did not fail its health check; trying again");
        attempt += 1;
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// One HTTP/1.1 `POST` without a body; the response's status.
async fn post(admin: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let stream = tokio::net::TcpStream::connect(admin).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let request = hyper::Request::post(path).header(hyper::header::HOST, admin.to_string()).body(Empty::<Bytes>::new())?;
    let status = sender.send_request(request).await?.status().as_u16();
    driver.abort();
    Ok(status)
}
