//! Child processes and sockets for the benchmark: spawn with a kill-on-drop guard, pick free
//! loopback ports, wait (bounded) for a port to accept, read a process's RSS, and a tiny blocking
//! HTTP/1.1 keep-alive client used for readiness probes, propagation polling and the long-lived
//! connection of the churn test. It must not hide failures: every wait has a deadline and says what
//! it waited for.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A spawned process, killed (SIGKILL) and reaped when dropped.
pub struct ChildGuard {
    pub name: String,
    pub child: Child,
}

impl ChildGuard {
    /// Spawn `command` with stdout/stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Result<ChildGuard> {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).with_context(|| format!("open {}", log.display()))?;
        let err = out.try_clone()?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = command.spawn().with_context(|| format!("spawn {name}: {command:?}"))?;
        Ok(ChildGuard { name: name.to_string(), child })
    }

    /// Like `spawn`, but stdout goes to /dev/null (Envoy's stdout access log).
    pub fn spawn_quiet_stdout(name: &str, mut command: Command, log: &Path) -> Result<ChildGuard> {
        let err = std::fs::OpenOptions::new().create(true).append(true).open(log).with_context(|| format!("open {}", log.display()))?;
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
        let child = command.spawn().with_context(|| format!("spawn {name}: {command:?}"))?;
        Ok(ChildGuard { name: name.to_string(), child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process already exited (with the tail of its log in the message).
    pub fn check_alive(&mut self, log: &Path) -> Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: String = tail.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            bail!("{} exited ({status}); log {}:\n{tail}", self.name, log.display());
        }
        Ok(())
    }
}

impl Drop for ChildGuard {
    /// SIGTERM (nginx's master then stops its workers; Envoy exits), up to 3 s, then SIGKILL for the
    /// process and any child it left (a SIGKILLed nginx master would orphan its workers).
    fn drop(&mut self) {
        let pid = self.child.id();
        let kids = children(pid);
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for kid in kids {
            // Only processes that are still our child's children (or orphans of it) are signalled.
            if std::fs::read_to_string(format!("/proc/{kid}/cmdline")).is_ok_and(|c| c.starts_with("nginx")) {
                let _ = Command::new("kill").args(["-KILL", &kid.to_string()]).stderr(Stdio::null()).status();
            }
        }
    }
}

/// A free loopback port (bound then released; good enough on a machine we do not race with).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Wait until `port` accepts TCP connections, at most `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration, what: &str) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr(port), Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what}: port {port} not accepting after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Resident set size (VmRSS) of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field_kib(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// A `kB` field of a /proc status file.
pub fn status_field_kib(file: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(file).ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// Children pids of a process (for nginx master -> worker).
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A blocking HTTP/1.1 client on one keep-alive connection.
pub struct KeepAliveClient {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

/// One response: status and whether the server asked to close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub closed: bool,
    /// The `x-bench-backend` header (a marked backend answered).
    pub backend_marker: Option<String>,
}

impl KeepAliveClient {
    pub fn connect(port: u16, timeout: Duration) -> Result<KeepAliveClient> {
        let stream = TcpStream::connect_timeout(&addr(port), timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(KeepAliveClient { reader, stream })
    }

    /// GET `path` with `Host: authority`; reads the whole response. An error means the connection
    /// is unusable (closed, reset, timed out).
    pub fn get(&mut self, authority: &str, path: &str) -> Result<Response> {
        write!(self.stream, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: wasm-ingress-bench\r\n\r\n")?;
        self.stream.flush()?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("connection closed by peer");
        }
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).with_context(|| format!("bad status line {line:?}"))?;
        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        let mut closed = false;
        let mut backend_marker = None;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("connection closed in headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => content_length = value.parse().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => closed = value.eq_ignore_ascii_case("close"),
                crate::gateways::BACKEND_MARKER_HEADER => backend_marker = Some(value.to_string()),
                _ => {}
            }
        }
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16).with_context(|| format!("bad chunk size {line:?}"))?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
            }
        } else if let Some(len) = content_length {
            let mut body = vec![0; len];
            self.reader.read_exact(&mut body)?;
        }
        Ok(Response { status, closed, backend_marker })
    }
}

/// Run a command to completion, failing with its output if it fails.
pub fn run(mut command: Command, what: &str) -> Result<String> {
    let output = command.output().with_context(|| format!("run {what}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        bail!("{what} failed ({}): {}\n{}", output.status, stdout, String::from_utf8_lossy(&output.stderr));
    }
    Ok(stdout)
}
