//! Real Envoy for end-to-end tests: writes a bootstrap (given as structured JSON, never text
//! templates) to a temporary file, starts `envoy` with its output captured to a log file, waits
//! until the admin `/ready` endpoint answers `200`, and kills it on drop. If the test is panicking
//! when the guard drops, Envoy's log is printed so the failure explains itself.
//!
//! Also usable with a bootstrap file produced elsewhere (e.g. the control plane's `bootstrap`
//! command): [`Envoy::start_file`].

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use serde_json::{json, Value};

use crate::paths;

/// Options for starting Envoy.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// `--concurrency` (worker threads).
    pub concurrency: u32,
    /// `--log-level`.
    pub log_level: String,
    /// How long to wait for `/ready`.
    pub ready_timeout: Duration,
    /// Extra command-line arguments.
    pub extra_args: Vec<String>,
}

impl Default for EnvoyOptions {
    fn default() -> Self {
        EnvoyOptions {
            concurrency: 1,
            log_level: "info".into(),
            ready_timeout: Duration::from_secs(60),
            extra_args: Vec::new(),
        }
    }
}

/// A running Envoy. Killed (and reaped) on drop.
pub struct Envoy {
    child: Child,
    admin: SocketAddr,
    log_path: PathBuf,
    /// Holds the bootstrap and log files for the lifetime of the process.
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Envoy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envoy").field("admin", &self.admin).field("log_path", &self.log_path).finish()
    }
}

/// Minimal blocking HTTP/1.1 GET (`Connection: close`) returning status and body; for admin calls.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| anyhow!("no HTTP status in {:?}", text.chars().take(80).collect::<String>()))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// One response read from a kept-alive HTTP/1.1 connection: the status, the head (lowercased,
/// for header checks) and exactly `Content-Length` bytes of body, so the connection can carry the
/// next request. `None` once the peer closed the connection or sent no status line.
pub fn read_kept_response(stream: &mut TcpStream) -> Option<KeptResponse> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok())?;
    let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(KeptResponse { status, head, body: String::from_utf8_lossy(&body).into_owned() })
}

/// What [`read_kept_response`] read.
#[derive(Debug)]
pub struct KeptResponse {
    pub status: u16,
    /// Status line and headers, lowercased.
    pub head: String,
    pub body: String,
}

/// The admin port of a bootstrap, if it has one.
fn admin_port(bootstrap: &Value) -> Option<u16> {
    bootstrap
        .pointer("/admin/address/socket_address/port_value")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
}

impl Envoy {
    /// Start Envoy with `bootstrap` (JSON). If it has no `admin` section, one on 127.0.0.1 with a
    /// free port is added.
    pub fn start(bootstrap: &Value) -> anyhow::Result<Envoy> {
        Envoy::start_with(bootstrap, &EnvoyOptions::default())
    }

    pub fn start_with(bootstrap: &Value, options: &EnvoyOptions) -> anyhow::Result<Envoy> {
        let mut bootstrap = bootstrap.clone();
        let admin = match admin_port(&bootstrap) {
            Some(port) => port,
            None => {
                let port = paths::free_port()?;
                let object = bootstrap.as_object_mut().ok_or_else(|| anyhow!("bootstrap must be a JSON object"))?;
                object.insert(
                    "admin".into(),
                    json!({"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}),
                );
                port
            }
        };
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("envoy.json");
        std::fs::write(&config, serde_json::to_vec_pretty(&bootstrap)?)?;
        Envoy::spawn(dir, &config, admin, options)
    }

    /// Start Envoy with an existing bootstrap file (JSON or YAML) whose admin listens on
    /// `127.0.0.1:admin_port`.
    pub fn start_file(config: &Path, admin_port: u16, options: &EnvoyOptions) -> anyhow::Result<Envoy> {
        let dir = tempfile::tempdir()?;
        Envoy::spawn(dir, config, admin_port, options)
    }

    fn spawn(dir: tempfile::TempDir, config: &Path, admin_port: u16, options: &EnvoyOptions) -> anyhow::Result<Envoy> {
        let binary = paths::envoy()?;
        let log_path = dir.path().join("envoy.log");
        let log = std::fs::File::create(&log_path)?;
        let log_err = log.try_clone()?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(config)
            .arg("--disable-hot-restart")
            .arg("--concurrency")
            .arg(options.concurrency.to_string())
            .arg("--log-level")
            .arg(&options.log_level)
            .args(&options.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut envoy = Envoy { child, admin: SocketAddr::from(([127, 0, 0, 1], admin_port)), log_path, _dir: dir };
        envoy.wait_ready(options.ready_timeout)?;
        Ok(envoy)
    }

    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("envoy exited ({status}) before becoming ready; log:\n{}", self.logs());
            }
            if let Ok((200, _)) = http_get(self.admin, "/ready", Duration::from_secs(1)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("envoy not ready within {timeout:?}; log:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The admin interface address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// GET an admin path (e.g. `/stats?filter=wasm`, `/config_dump`).
    pub fn admin_get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        http_get(self.admin, path, Duration::from_secs(5))
    }

    /// Envoy's output so far.
    pub fn logs(&self) -> String {
        std::fs::read(&self.log_path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }

    /// Whether Envoy is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- envoy log ({}) ----\n{}\n---- end of envoy log ----", self.log_path.display(), self.logs());
        }
    }
}
