//! One connection's clock: hyper's timer, the deadline on a request's head, and the
//! quick answer to a connection the server has no room for.
//!
//! hyper starts its header-read timer when it starts waiting for a request, also on a
//! kept-alive connection between requests: that timer is set to the idle timeout. The
//! shorter head deadline runs from the connection's start, and on a kept-alive
//! connection from the first byte of the next request, in [`HeadTimed`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// hyper's timer on tokio's clock (what hyper-util's `TokioTimer` does). Without one,
/// hyper's header-read timeout is off.
#[derive(Clone, Debug)]
pub(crate) struct TokioTimer;

impl hyper::rt::Timer for TokioTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(TokioSleep(Box::pin(tokio::time::sleep(duration))))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(TokioSleep(Box::pin(tokio::time::sleep_until(
            deadline.into(),
        ))))
    }
}

struct TokioSleep(Pin<Box<tokio::time::Sleep>>);

impl Future for TokioSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for TokioSleep {}

/// Where a connection is: receiving a request's head, serving a request (its body is
/// read under the body deadlines), or idle between requests (under hyper's timer).
const HEAD: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;

/// The phase of one connection, shared by its stream and its requests.
#[derive(Clone)]
pub(crate) struct Phase(Arc<AtomicU8>);

impl Phase {
    /// A request's head has arrived.
    pub(crate) fn busy(&self) {
        self.0.store(BUSY, Ordering::Release);
    }

    /// A request's answer has been written: the connection waits for the next.
    pub(crate) fn idle(&self) {
        let _ = self
            .0
            .compare_exchange(BUSY, IDLE, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// A stream whose reads fail with `TimedOut` once a request's head has taken longer than
/// `header_read` (hyper then closes the connection).
pub(crate) struct HeadTimed<S> {
    inner: S,
    phase: Phase,
    header_read: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<S> HeadTimed<S> {
    /// A new connection: its first head is due `header_read` from now.
    pub(crate) fn new(inner: S, header_read: Duration) -> (Self, Phase) {
        let phase = Phase(Arc::new(AtomicU8::new(HEAD)));
        let timed = Self {
            inner,
            phase: phase.clone(),
            header_read,
            deadline: Box::pin(tokio::time::sleep(header_read)),
        };
        (timed, phase)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadTimed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.phase.0.load(Ordering::Acquire) {
            HEAD => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the request head took too long",
                    )));
                }
                Pin::new(&mut this.inner).poll_read(cx, buf)
            }
            IDLE => {
                let before = buf.filled().len();
                let read = Pin::new(&mut this.inner).poll_read(cx, buf);
                let started = matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before;
                if started
                    && this
                        .phase
                        .0
                        .compare_exchange(IDLE, HEAD, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    let due = tokio::time::Instant::now() + this.header_read;
                    this.deadline.as_mut().reset(due);
                }
                read
            }
            _ => Pin::new(&mut this.inner).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadTimed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How long a shed connection gets to take its answer.
const SHED_WITHIN: Duration = Duration::from_secs(1);

/// Answer a connection the server has no room for: `503` with `Retry-After: 1`, then
/// close. What the client sent is read and dropped meanwhile, so the close is a clean
/// one (closing with unread data resets the connection, which can lose the answer).
pub(crate) fn shed(mut stream: TcpStream) {
    tokio::spawn(async move {
        let body = "the server is at its connection limit; retry shortly\n";
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n\
             content-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(SHED_WITHIN, async {
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 2048];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, io::Error>(())
        })
        .await;
    });
}
