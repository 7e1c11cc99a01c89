//! Echo backends for end-to-end tests: spawns the `echo-backend` binary (see `src/bin/echo_backend.rs`)
//! on a loopback address, learns the bound port from its first stdout line, and kills it on drop.
//! Each request it serves answers JSON naming the backend, so a test sees which backend got a
//! request and with which path, host and headers ([`Echo`]).

use std::io::{BufRead as _, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::paths;

/// How long a backend may take to print its listening address.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running echo backend. Killed (and reaped) on drop.
#[derive(Debug)]
pub struct EchoBackend {
    pub name: String,
    pub addr: SocketAddr,
    child: Child,
}

impl EchoBackend {
    /// Start `echo-backend --name NAME` on `ip` (any 127.0.0.x) with a port the OS picks.
    pub fn spawn(name: &str, ip: Ipv4Addr) -> anyhow::Result<EchoBackend> {
        EchoBackend::spawn_with(name, ip, &[])
    }

    /// As [`EchoBackend::spawn`], with more `echo-backend` arguments (`--tls-cert …`).
    pub fn spawn_with(name: &str, ip: Ipv4Addr, extra: &[&std::ffi::OsStr]) -> anyhow::Result<EchoBackend> {
        if !ip.is_loopback() {
            bail!("echo backends bind loopback addresses only, not {ip}");
        }
        let binary = paths::echo_backend()?;
        let mut child = Command::new(&binary)
            .arg("--listen")
            .arg(SocketAddr::from((ip, 0)).to_string())
            .arg("--name")
            .arg(name)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            bail!("echo-backend stdout not captured");
        };
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = match receiver.recv_timeout(STARTUP_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("echo-backend {name} did not report its address within {STARTUP_TIMEOUT:?}");
            }
        };
        let addr = line.trim().rsplit(' ').next().and_then(|a| a.parse::<SocketAddr>().ok());
        match addr {
            Some(addr) => Ok(EchoBackend { name: name.to_string(), addr, child }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("echo-backend {name} printed {line:?} instead of its address")
            }
        }
    }

    /// `127.0.0.1`-style host and port for Envoy cluster configs.
    pub fn ip(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What an echo backend answered: which backend, and the request as it arrived there.
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Eq)]
pub struct Echo {
    pub backend: String,
    pub method: String,
    /// Path and query as received by the backend.
    pub path: String,
    pub host: String,
    /// Lower-cased header names; repeated headers joined with ", ".
    pub headers: std::collections::BTreeMap<String, String>,
    /// Length of the request body the backend received.
    #[serde(default)]
    pub body_bytes: usize,
    /// HTTP version the backend received the request in (`HTTP/1.1`, `HTTP/2.0`).
    #[serde(default)]
    pub version: String,
}

impl Echo {
    /// Parse an echo-backend response body.
    pub fn parse(body: &[u8]) -> anyhow::Result<Echo> {
        serde_json::from_slice(body)
            .with_context(|| format!("not an echo-backend answer: {:?}", String::from_utf8_lossy(body)))
    }
}
