//! One accepted connection: what it is doing (waiting for a request head,
//! idle between requests, or serving a request), the deadline that follows,
//! and the wrappers that observe it: the socket ([`TrackedIo`]: bytes read
//! start a request head; hyper's own head-only error answers are rewritten
//! into the JSON error body) and the service ([`TrackedService`]: a request
//! is in flight from the call until hyper drops its response body).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::raw_errors;

/// What a connection is doing, as far as its deadlines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Receiving a request head (from its first byte, or from the accept
    /// for a new connection): bounded by the header-read timeout.
    Head { since: Instant },
    /// Between two requests of a keep-alive connection: bounded by the idle timeout.
    Idle { since: Instant },
    /// At least one request is being served (its response not yet handed
    /// over): not bounded here (bodies and runs have their own deadlines).
    Busy,
}

/// The shared state of one connection.
#[derive(Debug)]
pub(super) struct ConnState {
    inner: Mutex<Inner>,
    changed: Notify,
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    in_flight: usize,
}

impl ConnState {
    /// A connection just accepted: it owes its first request head.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                phase: Phase::Head { since: Instant::now() },
                in_flight: 0,
            }),
            changed: Notify::new(),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A poisoned lock only means a panic elsewhere mid-update; the state
        // is a plain value and still usable.
        let mut guard = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// Bytes arrived: an idle connection starts receiving a request head.
    fn on_read(&self) {
        let started = self.with(|s| match s.phase {
            Phase::Idle { .. } => {
                s.phase = Phase::Head { since: Instant::now() };
                true
            }
            _ => false,
        });
        if started {
            self.changed.notify_one();
        }
    }

    /// hyper called the service: a request is in flight until the guard's
    /// response body is dropped.
    fn begin_request(self: &Arc<Self>) -> InFlight {
        self.with(|s| {
            s.in_flight += 1;
            s.phase = Phase::Busy;
        });
        self.changed.notify_one();
        InFlight(Arc::clone(self))
    }

    fn end_request(&self) {
        self.with(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            if s.in_flight == 0 {
                s.phase = Phase::Idle { since: Instant::now() };
            }
        });
        self.changed.notify_one();
    }

    /// No request is in flight (hyper's automatic error answers are only
    /// ever written then).
    fn nothing_in_flight(&self) -> bool {
        self.with(|s| s.in_flight == 0)
    }

    /// A request is being served.
    pub(super) fn is_busy(&self) -> bool {
        self.with(|s| s.phase == Phase::Busy)
    }

    /// When the connection must be closed if nothing changes, and why;
    /// `None` while a request is in flight.
    pub(super) fn deadline(
        &self,
        header_read_timeout: Duration,
        idle_timeout: Duration,
    ) -> Option<(Instant, &'static str)> {
        self.with(|s| match s.phase {
            Phase::Head { since } => Some((since + header_read_timeout, "request head not received in time")),
            Phase::Idle { since } => Some((since + idle_timeout, "keep-alive connection idle")),
            Phase::Busy => None,
        })
    }

    /// Resolves when the phase may have changed (a permit is kept when
    /// nobody waits, so no change is missed).
    pub(super) async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// A request in flight; dropping it ends the request.
#[derive(Debug)]
pub(super) struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// A response body that keeps its request in flight until hyper drops it
/// (after the last byte was handed to the connection).
#[derive(Debug)]
pub(super) struct TrackedBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A hyper service that marks its connection busy for each request.
#[derive(Debug, Clone)]
pub(super) struct TrackedService<S> {
    inner: S,
    conn: Arc<ConnState>,
}

impl<S> TrackedService<S> {
    pub(super) fn new(inner: S, conn: Arc<ConnState>) -> Self {
        Self { inner, conn }
    }
}

impl<S, R, B> hyper::service::Service<R> for TrackedService<S>
where
    S: hyper::service::Service<R, Response = hyper::Response<B>>,
    S::Future: Send + 'static,
    B: Body + Unpin,
{
    type Response = hyper::Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: R) -> Self::Future {
        let in_flight = self.conn.begin_request();
        let future = self.inner.call(req);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|inner| TrackedBody {
                inner,
                _in_flight: in_flight,
            }))
        })
    }
}

/// The accepted socket, observed: reads move an idle connection to
/// "receiving a head", and the head-only error answers hyper writes by
/// itself (400, 414, 431 for a request it could not parse) are replaced by
/// the same answer with the JSON error body (`raw_errors`).
#[derive(Debug)]
pub(super) struct TrackedIo<T> {
    inner: T,
    conn: Arc<ConnState>,
    /// A replacement answer being written, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> TrackedIo<T> {
    pub(super) fn new(inner: T, conn: Arc<ConnState>) -> Self {
        Self {
            inner,
            conn,
            replacement: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> TrackedIo<T> {
    /// Writes what is left of the replacement answer.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = self.replacement.as_mut() {
            if *written >= bytes.len() {
                break;
            }
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.on_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.replacement.is_some() {
            // hyper closes the connection after its automatic answer; it
            // writes nothing else, and nothing else may follow ours.
            return match self.poll_replacement(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Ready(Ok(buf.len())),
            };
        }
        if self.conn.nothing_in_flight() {
            if let Some(answer) = raw_errors::json_answer_for(buf) {
                self.replacement = Some((answer, 0));
                // Taken whole; the rest is written by later polls (flush, shutdown).
                return match self.poll_replacement(cx) {
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    _ => Poll::Ready(Ok(buf.len())),
                };
            }
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then hands every write over as one contiguous
    // buffer, so an automatic answer is always seen whole.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn phases_and_deadlines() {
        let conn = ConnState::new();
        let (h, i) = (Duration::from_secs(1), Duration::from_secs(5));
        let (at, why) = conn.deadline(h, i).unwrap();
        assert_eq!(why, "request head not received in time");
        assert_eq!(at, Instant::now() + h);
        let first = conn.begin_request();
        assert!(conn.is_busy());
        assert!(conn.deadline(h, i).is_none());
        let second = conn.begin_request();
        drop(first);
        assert!(conn.is_busy(), "still one request in flight");
        drop(second);
        let (at, why) = conn.deadline(h, i).unwrap();
        assert_eq!(why, "keep-alive connection idle");
        assert_eq!(at, Instant::now() + i);
        tokio::time::advance(Duration::from_secs(2)).await;
        conn.on_read();
        let (at, why) = conn.deadline(h, i).unwrap();
        assert_eq!(why, "request head not received in time");
        assert_eq!(at, Instant::now() + h);
    }

    #[tokio::test]
    async fn a_parse_error_answer_is_rewritten_and_others_are_not() {
        let conn = ConnState::new();
        let (client, server) = tokio::io::duplex(4096);
        let mut io = TrackedIo::new(server, Arc::clone(&conn));
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A normal answer while a request is in flight passes untouched.
        let in_flight = conn.begin_request();
        io.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        drop(in_flight);
        // hyper's automatic answer with nothing in flight is replaced.
        io.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n")
            .await
            .unwrap();
        io.shutdown().await.unwrap();
        drop(io);
        let mut seen = String::new();
        let mut client = client;
        client.read_to_string(&mut seen).await.unwrap();
        let (first, rest) = seen.split_at("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n".len());
        assert_eq!(first, "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        assert!(rest.starts_with("HTTP/1.1 431 "), "{rest}");
        assert!(rest.contains("content-type: application/json\r\n"), "{rest}");
        assert!(rest.ends_with(r#""code":"HEADERS_TOO_LARGE"}"#), "{rest}");
    }
}
