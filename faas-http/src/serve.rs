//! Serving a warp filter: the accept loop over hyper 1's HTTP/1 connections
//! with their bounds ([`ConnectionLimits`]), graceful shutdown with a grace
//! period, and the start-up / shutdown clean-up.

use std::future::Future;
use std::net::SocketAddr;

use std::sync::Arc;

use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinHandle;

use connection::{ConnState, TrackedIo, TrackedService};

use crate::engine::Cleanup;
use crate::ServerError;

mod connection;
mod raw_errors;

/// A server running in the background (tests, embedding).
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Stops at once, as a crash would: the listener and every connection
    /// are dropped without answering in-flight requests, and no clean-up
    /// runs. The address is free again when this returns (tests restart a
    /// server on it).
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Bounds of every HTTP/1.1 connection a server accepts
/// (`LOWCODE_FAAS_HEADER_READ_TIMEOUT_MS`, `LOWCODE_FAAS_IDLE_TIMEOUT_MS`,
/// `LOWCODE_FAAS_MAX_CONNECTIONS`; the head caps are code defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest a client may take to send a request head, counted from the
    /// accept for a new connection and from the first byte of the head on a
    /// keep-alive connection. A client that says nothing, or sends its
    /// headers one byte at a time, is disconnected after this. Default 10 s.
    pub header_read_timeout: std::time::Duration,
    /// Longest a keep-alive connection may stay idle between the end of an
    /// answer and the first byte of the next request; then it is closed.
    /// Default 30 s.
    pub idle_timeout: std::time::Duration,
    /// Most connections open at once. At the cap the server accepts no new
    /// connection (they wait in the listen backlog, and are accepted as
    /// soon as one closes); the open ones keep being served. Default 512.
    pub max_connections: usize,
    /// Largest request head (request line and headers) in bytes; beyond it
    /// the request is answered `431 HEADERS_TOO_LARGE` and the connection
    /// closed. Default 64 KiB.
    pub max_header_bytes: usize,
    /// Most headers in one request (beyond: `431 HEADERS_TOO_LARGE`). Default 100.
    pub max_headers: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(30),
            max_connections: 512,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// Binds `addr`, runs the start-up clean-up, and returns the bound address
/// and the future that serves `filter` until `shutdown` resolves, lets
/// in-flight requests finish for at most `grace` (then aborts them), and runs
/// the shutdown clean-up. At shutdown, connections with no request in
/// flight (idle keep-alive ones, and those still sending a head) are closed
/// at once: only requests being served are waited for.
///
/// Connections are HTTP/1.1 with keep-alive, bounded by `limits`.
pub async fn serve_filter(
    filter: warp::filters::BoxedFilter<(warp::reply::Response,)>,
    addr: SocketAddr,
    grace: std::time::Duration,
    limits: ConnectionLimits,
    cleanup: Cleanup,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()>), ServerError> {
    let bind_error = |e: std::io::Error| ServerError::Bind {
        addr,
        message: e.to_string(),
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    cleanup.run("start-up").await;
    let run = async move {
        let mut http = hyper::server::conn::http1::Builder::new();
        // hyper's own head timer runs from the moment it waits for a head
        // (idle time included); ours are tighter, this is the backstop.
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout.saturating_add(limits.idle_timeout))
            .max_header_size(limits.max_header_bytes)
            .max_headers(limits.max_headers)
            .keep_alive(true);
        let http = Arc::new(http);
        let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = tokio::task::JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        'accept: loop {
            // A free slot first: at the cap, new connections stay in the backlog.
            let slot = loop {
                tokio::select! {
                    () = &mut shutdown => break 'accept,
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    slot = Arc::clone(&slots).acquire_owned() => match slot {
                        Ok(slot) => break slot,
                        Err(_) => break 'accept,
                    },
                }
            };
            let accepted = loop {
                tokio::select! {
                    () = &mut shutdown => break 'accept,
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    accepted = listener.accept() => break accepted,
                }
            };
            match accepted {
                Ok((io, _peer)) => {
                    let serve = serve_connection(Arc::clone(&http), filter.clone(), io, limits, stop_rx.clone());
                    connections.spawn(async move {
                        serve.await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    drop(slot);
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "grace period over; aborting in-flight requests"
            );
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        }
        cleanup.run("shutdown").await;
    };
    Ok((bound, run))
}

/// Serves one connection within its limits until it ends, its deadline
/// passes with nothing in flight, or the server stops (then it is closed at
/// once when idle, else after its in-flight request).
async fn serve_connection(
    http: Arc<hyper::server::conn::http1::Builder>,
    filter: warp::filters::BoxedFilter<(warp::reply::Response,)>,
    io: tokio::net::TcpStream,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let state = ConnState::new();
    let service = TrackedService::new(
        hyper_util::service::TowerToHyperService::new(warp::service(filter)),
        Arc::clone(&state),
    );
    let io = hyper_util::rt::TokioIo::new(TrackedIo::new(io, Arc::clone(&state)));
    let mut connection = std::pin::pin!(http.serve_connection(io, service));
    let mut stopping = false;
    loop {
        let deadline = state.deadline(limits.header_read_timeout, limits.idle_timeout);
        let expired = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %faas_ports::report::Report(&e), "connection ended with an error");
                }
                return;
            }
            () = expired => {
                // Still the same deadline (a change would have been seen first)?
                let now = state.deadline(limits.header_read_timeout, limits.idle_timeout);
                if let Some((at, why)) = now {
                    if at <= tokio::time::Instant::now() {
                        tracing::debug!(reason = why, "closing the connection");
                        return;
                    }
                }
            }
            () = state.changed() => {}
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_err() || *stop.borrow() {
                    if !state.is_busy() {
                        return;
                    }
                    // hyper answers the request in flight, then closes.
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Serves a filter in the background; stop it with [`RunningServer::shutdown`].
pub async fn spawn_filter(
    filter: warp::filters::BoxedFilter<(warp::reply::Response,)>,
    addr: SocketAddr,
    grace: std::time::Duration,
    limits: ConnectionLimits,
    cleanup: Cleanup,
) -> Result<RunningServer, ServerError> {
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, run) = serve_filter(filter, addr, grace, limits, cleanup, async move {
        let _ = rx.await;
    })
    .await?;
    let task = tokio::spawn(run);
    Ok(RunningServer {
        addr,
        shutdown: Some(tx),
        task,
    })
}
