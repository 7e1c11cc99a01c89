//! Where the test harness finds the artifacts it drives: the Envoy binary, the built filter `.wasm`,
//! the control-plane binary and the echo backend. Each comes from an environment variable (set by
//! the Makefile) or a default path under the workspace root. A missing artifact is a hard failure
//! with a message saying how to build it: these tests never skip.

use std::path::{Path, PathBuf};

/// Tells the user how to get every artifact.
const BUILD_HINT: &str = "run `make build envoy` from the workspace root";

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".."))
}

/// `$var` if set and non-empty, else `default` (relative to the workspace root); must exist.
fn locate(var: &str, default: &str, what: &str) -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os(var) {
        Some(value) if !value.is_empty() => PathBuf::from(value),
        _ => workspace_root().join(default),
    };
    if path.is_file() {
        Ok(path)
    } else {
        anyhow::bail!("{what} not found at {} (set {var} or {BUILD_HINT})", path.display())
    }
}

/// Real Envoy 1.40 (V8): `$WASM_INGRESS_ENVOY`, default `.venv/envoy`.
pub fn envoy() -> anyhow::Result<PathBuf> {
    locate("WASM_INGRESS_ENVOY", ".venv/envoy", "Envoy binary")
}

/// The built filter: `$WASM_INGRESS_FILTER_WASM`, default
/// `target/wasm32-wasip1/release/wasm_ingress_filter.wasm`.
pub fn filter_wasm() -> anyhow::Result<PathBuf> {
    locate(
        "WASM_INGRESS_FILTER_WASM",
        "target/wasm32-wasip1/release/wasm_ingress_filter.wasm",
        "filter .wasm",
    )
}

/// The control plane: `$WASM_INGRESS_BIN`, default `target/release/wasm-ingress`.
pub fn control_plane() -> anyhow::Result<PathBuf> {
    locate("WASM_INGRESS_BIN", "target/release/wasm-ingress", "control-plane binary")
}

/// The echo backend: `$WASM_INGRESS_ECHO_BACKEND`, default `target/release/echo-backend`.
pub fn echo_backend() -> anyhow::Result<PathBuf> {
    locate("WASM_INGRESS_ECHO_BACKEND", "target/release/echo-backend", "echo-backend binary")
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, release it),
/// never one this process handed out before: the kernel may give a just-released port again, and
/// two of a test's processes then fail to bind the same port (seen in CI: Envoy's admin port was
/// the control plane's). Racy across processes by nature; good enough for processes that take a
/// port on the command line.
pub fn free_port() -> anyhow::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..64 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return Ok(port);
        }
    }
    anyhow::bail!("no port on 127.0.0.1 that this process has not used already (64 tries)")
}
