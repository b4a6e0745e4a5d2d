//! The HTTP server (`spin up`-like): each request runs in a fresh instance, and an
//! access-log line (secrets redacted, the path cut to 1 KiB) is written for it. Slow
//! clients are bounded by [`ServerLimits`]: `conn.rs` times a request's head, `body.rs`
//! reads its body whole before it takes an instance slot.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use percent_encoding::percent_decode_str;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::Error as HttpError;

use crate::body::{self, read_whole, BodyError};
use crate::conn::{shed, HeadTimed, Phase, TokioTimer};
use crate::host::Host;
use crate::incoming::{detach, report_guest, GuestRun};
use crate::limits::ServerLimits;
use crate::logs::{cut, ACCESS_LOG_PREFIX};

/// The routes the component serves (printed on start).
pub const ROUTES: [&str; 6] = [
    "/ (the console)",
    "/api/apps/{app}",
    "/hooks/{app}/git",
    "/hooks/{app}/image/{token}",
    "/hooks/{app}/api",
    "/healthz",
];

/// A bound listener serving a [`Host`]; see [`Host::bind`].
pub struct Server {
    host: Host,
    listener: TcpListener,
    addr: SocketAddr,
    limits: ServerLimits,
}

impl Host {
    /// Bind `addr` (port 0 picks a free port); [`Server::run`] then serves it, with the
    /// default [`ServerLimits`] unless [`Server::limits`] sets others.
    pub async fn bind(&self, addr: SocketAddr) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr()?;
        Ok(Server {
            host: self.clone(),
            listener,
            addr,
            limits: ServerLimits::default(),
        })
    }

    /// Serve HTTP/1.1 on `addr` until the process ends: each request runs in a fresh
    /// instance of the component.
    pub async fn serve(&self, addr: SocketAddr) -> anyhow::Result<()> {
        self.bind(addr).await?.run().await
    }

    /// Run one request, whose body has been read, in the component; also says how long
    /// the guest waited for outbound calls.
    async fn serve_one(
        &self,
        req: hyper::Request<Full<Bytes>>,
        peer: SocketAddr,
    ) -> (hyper::Response<HyperOutgoingBody>, Option<Duration>) {
        match self.handle(req, Some(peer)).await {
            // The guest may still be writing the body: the body drives it.
            Ok(handled) => {
                let guest = handled.guest;
                let response = handled
                    .response
                    .map(|body| GuestBody::new(body, guest).boxed_unsync());
                (response, handled.outbound)
            }
            Err(e) => {
                eprintln!("{ACCESS_LOG_PREFIX}error: {e:#}");
                (text_response(500, "internal server error\n"), None)
            }
        }
    }
}

/// What every connection of one running server shares.
struct Serving {
    host: Host,
    limits: ServerLimits,
    /// One permit per request with its whole body, until it is answered.
    in_flight: Arc<Semaphore>,
    /// Bytes of bodies being buffered (in KiB).
    budget: Arc<Semaphore>,
}

impl Serving {
    /// Serve one request: read its body whole (under the body deadlines, before it takes
    /// an instance slot), run it in the component, and write the access-log line.
    async fn serve(
        &self,
        req: hyper::Request<Incoming>,
        peer: SocketAddr,
        phase: Phase,
    ) -> hyper::Response<HyperOutgoingBody> {
        let start = Instant::now();
        let method = req.method().clone();
        let path = req
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_else(|| "/".to_string());
        let (parts, body) = req.into_parts();
        let declared = parts
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let mut outbound = None;
        let mut close = true;
        let mut held = Held::default();
        let mut response = match read_whole(body, declared, &self.limits, &self.budget).await {
            Err(BodyError::TimedOut) => {
                text_response(408, "the request body did not arrive in time\n")
            }
            Err(BodyError::OverBudget) => busy_response(),
            Err(BodyError::Client) => text_response(400, "the request body was cut off\n"),
            Ok(buffered) => match self.in_flight.clone().try_acquire_owned() {
                Err(_) => busy_response(),
                Ok(permit) => {
                    close = buffered.cut;
                    held = Held {
                        _in_flight: Some(permit),
                        _budget: buffered.budget,
                    };
                    let req = hyper::Request::from_parts(parts, Full::new(buffered.bytes));
                    let (response, waited) = self.host.serve_one(req, peer).await;
                    outbound = waited;
                    response
                }
            },
        };
        if close {
            response.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
        }
        self.host.access_log(access_line(
            method.as_str(),
            &path,
            response.status().as_u16(),
            start.elapsed(),
            outbound,
        ));
        response.map(|body| {
            Tracked {
                body,
                phase,
                _held: held,
            }
            .boxed_unsync()
        })
    }
}

impl Server {
    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve with these timeouts and bounds instead of the defaults.
    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Accept connections until the process ends (or the task is aborted).
    pub async fn run(self) -> anyhow::Result<()> {
        let limits = self.limits;
        let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let serving = Arc::new(Serving {
            host: self.host,
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
            budget: body::budget(&limits),
            limits,
        });
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    eprintln!("{ACCESS_LOG_PREFIX}accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                shed(stream);
                continue;
            };
            let serving = serving.clone();
            tokio::spawn(async move {
                let _connection = permit;
                let (io, phase) = HeadTimed::new(stream, serving.limits.header_read_timeout);
                let idle = serving.limits.idle_timeout;
                let service = service_fn(move |req| {
                    let serving = serving.clone();
                    let phase = phase.clone();
                    phase.busy();
                    async move { Ok::<_, Infallible>(serving.serve(req, peer, phase).await) }
                });
                // Errors here are the client going away mid-request, or a timeout:
                // nothing to do. hyper's header timer starts whenever it waits for a
                // request, so it is the idle timeout; `HeadTimed` keeps the head's.
                let _ = http1::Builder::new()
                    .timer(TokioTimer)
                    .header_read_timeout(idle)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(io), service)
                    .await;
            });
        }
    }

    /// Run [`run`](Self::run) on a new task.
    pub fn spawn(self) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        tokio::spawn(self.run())
    }
}

/// What an answered request holds until its answer has been written.
#[derive(Default)]
struct Held {
    _in_flight: Option<OwnedSemaphorePermit>,
    _budget: Option<OwnedSemaphorePermit>,
}

/// A response body that, once written (dropped), marks its connection idle and lets go
/// of what its request held.
struct Tracked {
    body: HyperOutgoingBody,
    phase: Phase,
    _held: Held,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.phase.idle();
    }
}

/// A response body that also drives the rest of its guest's run (the guest writes the
/// body, and may log after it), on the connection's own task. If the connection drops
/// the body first (the client went away), the guest finishes on a task of its own:
/// whatever it still does (a delivery log entry) is not cut short.
struct GuestBody {
    body: HyperOutgoingBody,
    guest: Option<GuestRun>,
}

impl GuestBody {
    fn new(body: HyperOutgoingBody, guest: GuestRun) -> Self {
        Self {
            body,
            guest: Some(guest),
        }
    }
}

impl Body for GuestBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if let Some(guest) = self.guest.as_mut() {
            if let Poll::Ready(result) = guest.as_mut().poll(cx) {
                self.guest = None;
                report_guest(result);
            }
        }
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for GuestBody {
    fn drop(&mut self) {
        if let Some(guest) = self.guest.take() {
            detach(guest);
        }
    }
}

/// The answer to a request the server has no room for: `503` with `Retry-After: 1`.
fn busy_response() -> hyper::Response<HyperOutgoingBody> {
    let mut response = text_response(503, "the server is busy; retry shortly\n");
    response.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from_static("1"),
    );
    response
}

fn text_response(status: u16, text: &'static str) -> hyper::Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("valid status");
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The longest path an access-log line shows; the rest is cut, with a marker.
pub const MAX_LOGGED_PATH: usize = 1024;

/// One access-log line: `METHOD PATH STATUS DURATION`, with the path redacted by
/// [`redact_path`] and cut to [`MAX_LOGGED_PATH`] bytes (`…[+N bytes]` says how much
/// was left out), and `(outbound DURATION)` when the guest waited for outbound calls
/// (the deploy call) before it answered: that much of the duration was the other
/// side's. Headers and bodies are never logged.
pub fn access_line(
    method: &str,
    path_and_query: &str,
    status: u16,
    elapsed: Duration,
    outbound: Option<Duration>,
) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut line = format!(
        "{method} {} {status} {:.1}ms",
        cut(&redact_path(path_and_query), MAX_LOGGED_PATH),
        ms(elapsed)
    );
    if let Some(outbound) = outbound {
        line.push_str(&format!(" (outbound {:.1}ms)", ms(outbound)));
    }
    line
}

/// The path as the access log shows it: image-hook tokens replaced by `***` (everything
/// after `/hooks/{app}/image/`), so are status-URL tokens (after
/// `/hooks/{app}/status/{seq}/`), and a query string, which could hold a secret, shown
/// as `?***`.
///
/// ```
/// use autodeploy_host::redact_path;
/// assert_eq!(redact_path("/hooks/shop/image/s3cret"), "/hooks/shop/image/***");
/// assert_eq!(redact_path("/hooks/shop/status/7/0cec9f"), "/hooks/shop/status/7/***");
/// assert_eq!(redact_path("/hooks/shop/git"), "/hooks/shop/git");
/// assert_eq!(redact_path("/api/apps?token=x"), "/api/apps?***");
/// ```
pub fn redact_path(path_and_query: &str) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let segments: Vec<&str> = path.split('/').collect();
    let named: Vec<(usize, &str)> = segments
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .collect();
    let is = |seg: &str, want: &str| {
        percent_decode_str(seg)
            .decode_utf8_lossy()
            .eq_ignore_ascii_case(want)
    };
    let mut out = match named.as_slice() {
        [(_, hooks), _, (image_at, image), rest @ ..]
            if is(hooks, "hooks") && is(image, "image") && !rest.is_empty() =>
        {
            format!("{}/***", segments[..=*image_at].join("/"))
        }
        // A status URL's last segment is its capability token.
        [(_, hooks), _, (_, status), (seq_at, _), rest @ ..]
            if is(hooks, "hooks") && is(status, "status") && !rest.is_empty() =>
        {
            format!("{}/***", segments[..=*seq_at].join("/"))
        }
        _ => path.to_string(),
    };
    if query.is_some_and(|q| !q.is_empty()) {
        out.push_str("?***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_tokens_are_redacted() {
        assert_eq!(
            redact_path("/hooks/shop/status/12/0cec9f00aa"),
            "/hooks/shop/status/12/***"
        );
        assert_eq!(
            redact_path("/hooks/shop/Status/12/tok/x"),
            "/hooks/shop/Status/12/***"
        );
        assert_eq!(
            redact_path("/hooks/shop/status/12"),
            "/hooks/shop/status/12"
        );
    }

    #[test]
    fn image_tokens_are_redacted() {
        assert_eq!(
            redact_path("/hooks/shop/image/abcDEF123"),
            "/hooks/shop/image/***"
        );
        assert_eq!(
            redact_path("/hooks/shop/image/abc/extra"),
            "/hooks/shop/image/***"
        );
        assert_eq!(
            redact_path("/hooks/shop/image/tok?x=1"),
            "/hooks/shop/image/***?***"
        );
        assert_eq!(
            redact_path("//hooks//shop/image/tok"),
            "//hooks//shop/image/***"
        );
        assert_eq!(
            redact_path("/hooks/shop/%69mage/tok"),
            "/hooks/shop/%69mage/***"
        );
        assert_eq!(
            redact_path("/HOOKS/shop/Image/tok"),
            "/HOOKS/shop/Image/***"
        );
        // Nothing to hide.
        assert_eq!(redact_path("/hooks/shop/image"), "/hooks/shop/image");
        assert_eq!(redact_path("/hooks/shop/image/"), "/hooks/shop/image/");
        assert_eq!(redact_path("/hooks/shop/git"), "/hooks/shop/git");
        assert_eq!(redact_path("/hooks/shop/api"), "/hooks/shop/api");
        assert_eq!(redact_path("/api/apps/image"), "/api/apps/image");
        assert_eq!(redact_path("/api/apps/shop"), "/api/apps/shop");
        assert_eq!(redact_path("/healthz"), "/healthz");
        assert_eq!(redact_path("/"), "/");
        assert_eq!(redact_path("/healthz?"), "/healthz");
    }

    #[test]
    fn access_lines_show_method_path_status_duration() {
        let line = access_line(
            "POST",
            "/hooks/shop/image/s3cr3t-token",
            202,
            Duration::from_micros(3250),
            None,
        );
        assert_eq!(line, "POST /hooks/shop/image/*** 202 3.2ms");
        assert!(!line.contains("s3cr3t"));
        let line = access_line(
            "POST",
            "/hooks/shop/git",
            202,
            Duration::from_micros(3250),
            Some(Duration::from_micros(2140)),
        );
        assert_eq!(line, "POST /hooks/shop/git 202 3.2ms (outbound 2.1ms)");
    }

    #[test]
    fn long_paths_are_cut_in_the_access_log() {
        let path = format!("/hooks/{}", "a".repeat(64 * 1024));
        let line = access_line("GET", &path, 404, Duration::from_millis(1), None);
        assert!(line.len() < MAX_LOGGED_PATH + 64, "{} bytes", line.len());
        let shown = MAX_LOGGED_PATH;
        assert!(
            line.contains(&format!("…[+{} bytes] 404", path.len() - shown)),
            "{line}"
        );
        // Cut on a character boundary.
        assert_eq!(cut("aé", 2), "a…[+2 bytes]");
        assert_eq!(cut("short", 5), "short");
    }
}
