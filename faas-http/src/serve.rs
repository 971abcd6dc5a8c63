//! Serving a warp filter: the accept loop over hyper 1's HTTP/1 connections
//! with their bounds ([`ConnectionLimits`]), graceful shutdown with a grace
//! period, and the start-up / shutdown clean-up.

use std::future::Future;
use std::net::SocketAddr;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::engine::Cleanup;
use crate::ServerError;

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

/// Bounds of every HTTP/1.1 connection a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest a client may take to send a request's headers; also how long
    /// a keep-alive connection may stay idle between two requests (hyper
    /// starts the header timer as soon as it waits for the next request). A
    /// client that sends its headers one byte at a time is cut off after
    /// this. Default 10 s.
    pub header_read_timeout: std::time::Duration,
    /// Largest request head (request line and headers) in bytes; beyond it
    /// the request is answered `431` and the connection closed. Default 64 KiB.
    pub max_header_bytes: usize,
    /// Most headers in one request (beyond: `431`). Default 100.
    pub max_headers: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: std::time::Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// Binds `addr`, runs the start-up clean-up, and returns the bound address
/// and the future that serves `filter` until `shutdown` resolves, lets
/// in-flight requests finish for at most `grace` (then aborts them), and runs
/// the shutdown clean-up.
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
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_header_size(limits.max_header_bytes)
            .max_headers(limits.max_headers)
            .keep_alive(true);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut connections = tokio::task::JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((io, _peer)) => {
                        let service = hyper_util::service::TowerToHyperService::new(warp::service(filter.clone()));
                        let connection = graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(io), service));
                        connections.spawn(async move {
                            if let Err(e) = connection.await {
                                tracing::debug!(error = %faas_ports::report::Report(&e), "connection ended with an error");
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(grace) => {
                tracing::warn!(grace_ms = grace.as_millis() as u64, "grace period over; aborting in-flight requests");
                connections.abort_all();
            }
        }
        while connections.join_next().await.is_some() {}
        cleanup.run("shutdown").await;
    };
    Ok((bound, run))
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
