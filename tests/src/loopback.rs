//! A stand-in server's plumbing: a free 127.0.0.1 port, a thread and runtime of its own, an accept
//! loop that hands each connection to the server, and a stop when dropped. `apiserver` and `otlp`
//! are built on it.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A server running on its own thread; stops (and joins the thread) when dropped.
pub struct LoopbackServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopbackServer {
    /// Listen on a free 127.0.0.1 port and hand each accepted connection to `serve`, which spawns
    /// what answers it on the server's runtime.
    pub fn start(name: &str, serve: impl Fn(TcpStream) + Send + 'static) -> anyhow::Result<LoopbackServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || runtime.block_on(accept(listener, serve, stopped)))?;
        Ok(LoopbackServer { addr, shutdown: Some(shutdown), thread: Some(thread) })
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept(listener: TcpListener, serve: impl Fn(TcpStream), mut stopped: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => serve(stream),
                // Out of file descriptors and the like: wait rather than spin on the error.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            },
            _ = &mut stopped => return,
        }
    }
}
