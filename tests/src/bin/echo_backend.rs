//! echo-backend: a tiny, fast HTTP backend for end-to-end tests and benchmarks.
//!
//! `echo-backend --listen 127.0.0.1:PORT --name NAME` answers every request with JSON
//! `{"backend": NAME, "method", "path" (path and query as received), "host", "headers": {name: value}}`
//! and the header `x-backend: NAME`, over HTTP/1.1 or h2c. A WebSocket-style upgrade
//! (`Connection: upgrade` + `Upgrade: websocket`) is answered with `101 Switching Protocols` and a
//! correct `Sec-WebSocket-Accept`, after which the raw bytes are echoed back (no frame parsing).
//! The request body is read and its length reported as `body_bytes`; `version` is the HTTP
//! version the request came in (`HTTP/1.1`, `HTTP/2.0`). With `--tls-cert`/`--tls-key` it speaks
//! only TLS (ALPN h2 and http/1.1), and with `--tls-client-ca` it also demands a client
//! certificate signed by that CA (for the `backend-protocol: HTTPS` and `proxy-ssl-*` tests). Test knobs, as request
//! headers: `x-echo-delay-ms: N` waits N ms before answering; `x-echo-chunks: N` with
//! `x-echo-gap-ms: G` answers a body of N lines `chunk\n`, one every G ms (a slow stream), instead
//! of the JSON; `x-echo-status: N` answers with status N (the body still the echo), and
//! `x-echo-error-page-status: N` with N instead when the request carries `X-Code` (an error-page
//! service that answers a status of its own); each
//! `x-echo-response-header: NAME: VALUE` adds that header to the answer (repeat it for several).
//! It prints `echo-backend NAME listening on ADDR` once bound (port 0 picks a free port), which is
//! how the harness learns the address. It must stay dependency-light and never do work per
//! request beyond building the answer.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncWriteExt as _;

#[derive(Parser, Debug)]
#[command(name = "echo-backend", about = "HTTP echo backend for wasm-ingress tests and benchmarks")]
struct Args {
    /// Address to listen on (127.0.0.x:PORT; port 0 picks a free one).
    #[arg(long)]
    listen: SocketAddr,
    /// Name reported in the `backend` field and the `x-backend` header.
    #[arg(long)]
    name: String,
    /// PEM certificate chain: serve TLS only (with `--tls-key`).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// PEM CA bundle: with TLS, a client certificate signed by it is required.
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<std::path::PathBuf>,
}

/// RFC 6455 §1.3: the GUID appended to `Sec-WebSocket-Key` before hashing.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// SHA-1 (FIPS 180-4), only for `Sec-WebSocket-Accept`; not for anything security-relevant.
fn sha1(message: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let mut data = message.to_vec();
    let bit_len = (message.len() as u64).wrapping_mul(8);
    data.push(0x80);
    while data.len() % 64 != 56 {
        data.push(0);
    }
    data.extend_from_slice(&bit_len.to_be_bytes());
    for block in data.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (slot, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *slot = slot.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, v) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
fn websocket_accept(key: &[u8]) -> String {
    let mut input = key.to_vec();
    input.extend_from_slice(WEBSOCKET_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha1(&input))
}

fn header_has_token(request: &Request<Incoming>, name: hyper::header::HeaderName, token: &str) -> bool {
    request.headers().get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

fn empty() -> BoxBody<Bytes, Infallible> {
    Full::new(Bytes::new()).boxed()
}

fn echo_body<B>(name: &str, request: &Request<B>, body_bytes: usize) -> Bytes {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (header_name, value) in request.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(header_name.as_str().to_string())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(&value);
            })
            .or_insert(value);
    }
    let host = request
        .headers()
        .get(hyper::header::HOST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let path = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let body = serde_json::json!({
        "backend": name,
        "method": request.method().as_str(),
        "path": path,
        "host": host,
        "headers": headers,
        "body_bytes": body_bytes,
        "version": format!("{:?}", request.version()),
    });
    Bytes::from(body.to_string())
}

/// A numeric test-knob header.
fn knob(request: &Request<Incoming>, name: &str) -> Option<u64> {
    request.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `count` lines `chunk\n`, one every `gap`.
fn slow_stream(count: u64, gap: std::time::Duration) -> BoxBody<Bytes, Infallible> {
    let chunks = futures::stream::unfold(0u64, move |sent| async move {
        if sent >= count {
            return None;
        }
        tokio::time::sleep(gap).await;
        Some((Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"chunk\n"))), sent + 1))
    });
    StreamBody::new(chunks).boxed()
}

async fn handle(name: Arc<str>, mut request: Request<Incoming>) -> Result<Response<BoxBody<Bytes, Infallible>>, Infallible> {
    let wants_websocket = header_has_token(&request, hyper::header::CONNECTION, "upgrade")
        && header_has_token(&request, hyper::header::UPGRADE, "websocket");
    if wants_websocket {
        let accept = request.headers().get("sec-websocket-key").map(|key| websocket_accept(key.as_bytes()));
        let upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let (mut reader, mut writer) = tokio::io::split(&mut io);
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
                let _ = writer.shutdown().await;
            }
        });
        let mut response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(hyper::header::CONNECTION, "upgrade")
            .header(hyper::header::UPGRADE, "websocket")
            .header("x-backend", name.as_ref());
        if let Some(accept) = accept {
            response = response.header("sec-websocket-accept", accept);
        }
        return Ok(response.body(Full::new(Bytes::new()).boxed()).unwrap_or_else(|_| Response::new(empty())));
    }
    if let Some(delay) = knob(&request, "x-echo-delay-ms") {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let error_page_status = request.headers().contains_key("x-code").then(|| knob(&request, "x-echo-error-page-status")).flatten();
    let status = error_page_status.or_else(|| knob(&request, "x-echo-status")).and_then(|s| u16::try_from(s).ok()).and_then(|s| StatusCode::from_u16(s).ok());
    let mut response = Response::builder().status(status.unwrap_or(StatusCode::OK)).header("x-backend", name.as_ref());
    for asked in request.headers().get_all("x-echo-response-header") {
        if let Some((header, value)) = asked.to_str().ok().and_then(|v| v.split_once(':')) {
            response = response.header(header.trim(), value.trim());
        }
    }
    if let Some(count) = knob(&request, "x-echo-chunks") {
        let gap = std::time::Duration::from_millis(knob(&request, "x-echo-gap-ms").unwrap_or(0));
        return Ok(response.body(slow_stream(count, gap)).unwrap_or_else(|_| Response::new(empty())));
    }
    let (parts, body) = request.into_parts();
    let body_bytes = body.collect().await.map(|collected| collected.to_bytes().len()).unwrap_or(0);
    let body = echo_body(&name, &Request::from_parts(parts, ()), body_bytes);
    let response = response.header(hyper::header::CONTENT_TYPE, "application/json").body(Full::new(body).boxed());
    Ok(response.unwrap_or_else(|_| Response::new(empty())))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let local = listener.local_addr()?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "echo-backend {} listening on {local}", args.name)?;
        stdout.flush()?;
    }
    let name: Arc<str> = Arc::from(args.name.as_str());
    let tls = tls_acceptor(&args)?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let name = Arc::clone(&name);
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| handle(Arc::clone(&name), request));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).await;
                    }
                }
                None => {
                    let _ = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).await;
                }
            }
        });
    }
}

/// The TLS acceptor `--tls-cert`/`--tls-key`/`--tls-client-ca` ask for, if any.
fn tls_acceptor(args: &Args) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    use tokio_rustls::rustls;
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else { return Ok(None) };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let read_certs = |path: &std::path::Path| -> anyhow::Result<Vec<_>> {
        let pem = std::fs::read(path)?;
        Ok(rustls_pemfile::certs(&mut pem.as_slice()).collect::<Result<Vec<_>, _>>()?)
    };
    let chain = read_certs(cert)?;
    let key_pem = std::fs::read(key)?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())?.ok_or_else(|| anyhow::anyhow!("no private key in {key:?}"))?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider)).with_safe_default_protocol_versions()?;
    let builder = match &args.tls_client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots.add(cert)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_accept_matches_rfc_6455_example() {
        assert_eq!(websocket_accept(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn sha1_matches_known_vectors() {
        let hex = |d: [u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }
}
