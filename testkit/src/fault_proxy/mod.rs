//! A scriptable HTTP/1.1 fault proxy for reliability tests.
//!
//! [`FaultProxy`] listens on 127.0.0.1 in front of one local upstream (moto, the fake OSS, a fake
//! RDS API, a fake WeCom robot, a download source). It forwards each request head byte for byte,
//! so `Host` (which the fake OSS routes on) and request signatures stay valid. Bodies stream both
//! ways through 64 KiB buffers and are never held whole, so objects of any size pass through.
//! A test installs [`Rule`]s that pick requests by method, path and header and make the proxy
//! delay, answer, truncate, drop or reset them.
//!
//! The proxy sends no requests of its own beyond one upstream connection per client request, and
//! its thread and connections stop when the handle is dropped.
//!
//! NOTE: `CONNECT`, protocol upgrades (`101 Switching Protocols`) and TLS are not supported,
//! because our clients speak plain HTTP/1.1 to the local clouds.

mod body;
mod connection;
mod rules;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use anyhow::{Context, ensure};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use connection::{Shared, serve_connection};
pub use rules::{Action, Match, Rule, SeenRequest};

/// A running fault proxy on its own thread and Tokio runtime. It can be started from synchronous
/// code and outlives the runtime of the test that created it. Dropping the handle stops it.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a random 127.0.0.1 port in front of `upstream`.
    ///
    /// Fails when `upstream` is not a loopback address, because tests must not send traffic
    /// anywhere else, or when the listener, runtime or thread cannot be created.
    pub fn start(upstream: SocketAddr) -> anyhow::Result<FaultProxy> {
        ensure!(
            upstream.ip().is_loopback(),
            "fault proxy upstream {upstream} is not a loopback address: start the server on 127.0.0.1"
        );
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .context("failed to bind the fault proxy to 127.0.0.1")?;
        listener
            .set_nonblocking(true)
            .context("failed to make the fault proxy listener non-blocking")?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("failed to build the fault proxy runtime")?;
        let shared = Arc::new(Shared {
            upstream,
            script: Mutex::default(),
            seen: Mutex::default(),
            seen_count: watch::Sender::new(0),
        });
        let (shutdown, shutdown_signal) = oneshot::channel();
        let task_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        () = accept_loop(listener, task_shared) => {}
                        _ = shutdown_signal => {}
                    }
                });
                // Dropping the runtime here cancels every connection task.
            })
            .context("failed to start the fault proxy thread")?;
        tracing::debug!(%addr, %upstream, "fault proxy started");
        Ok(FaultProxy {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Returns the address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Returns the proxy's base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Returns the upstream server the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Appends a rule to the script. Rules apply to requests whose head arrives after this call.
    pub fn add_rule(&self, rule: Rule) {
        self.script().add(rule);
    }

    /// Removes every rule and its match counter, so the proxy forwards everything again.
    pub fn clear_rules(&self) {
        self.script().clear();
    }

    /// Returns every request received so far, in arrival order, with what the proxy did.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until the proxy has received at least `count` request heads in total. A request
    /// counts as soon as its head is read, before any delay or forwarding.
    pub async fn wait_for_requests(&self, count: usize) {
        let mut seen = self.shared.seen_count.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = seen.wait_for(|seen| *seen >= count).await;
    }

    fn script(&self) -> std::sync::MutexGuard<'_, rules::Script> {
        self.shared
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "fault proxy could not register its listener");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, Arc::clone(&shared)));
            }
            Err(error) => {
                // Accept errors such as EMFILE are usually transient, so wait briefly and retry.
                tracing::warn!(%error, "fault proxy failed to accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
