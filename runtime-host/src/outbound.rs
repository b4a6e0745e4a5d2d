//! The guest's outbound HTTP (`wasi:http/outgoing-handler`) over kept-alive connections.
//!
//! wasmtime-wasi-http's `default_send_request` opens a new TCP connection (and for
//! `https`, builds a TLS configuration and shakes hands) for every request, then closes
//! it. Here a connection whose answer was read to the end goes back to a small pool per
//! scheme and authority, and the next call to the same platform takes it. Everything
//! else is as in `default_send_request`: the same timeouts (connect, first byte, between
//! body frames), the same errors, the same root certificates.
//!
//! A kept connection the server closed before it took the request is not an error: the
//! request comes back untouched (hyper's `try_send_request`) and goes out on a new
//! connection. A request that was written and then lost is an error, as it would be on
//! a fresh connection; the platform call carries an `Idempotency-Key` for that case.
//!
//! A connection idle for `IDLE_FOR` is closed, by the next call to that platform or by a
//! reaper task that runs while any connection is idle; at most `MAX_IDLE` are kept per
//! platform.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Scheme;
use hyper::body::{Body, Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// How long an idle connection is kept: below common servers' keep-alive timeouts
/// (Node's is 5 s), so a kept connection is rarely one the server is closing.
const IDLE_FOR: Duration = Duration::from_secs(4);

/// Idle connections kept per scheme and authority; more are closed.
const MAX_IDLE: usize = 32;

/// When `RequestOptions` sets no timeout (as `default_send_request`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

type Key = (bool, String);

struct Idle {
    sender: SendRequest<WasiBody>,
    since: Instant,
}

impl Idle {
    /// Still worth keeping: idle for less than `idle_for`, and not closed by the server.
    fn keep(&self, idle_for: Duration) -> bool {
        self.since.elapsed() < idle_for && !self.sender.is_closed()
    }
}

#[derive(Default)]
struct Pool {
    idle: HashMap<Key, Vec<Idle>>,
    /// A reaper task is running (it ends when nothing is idle).
    reaping: bool,
}

/// Kept-alive outbound connections, shared by every instance of one host.
pub(crate) struct Outbound {
    pool: Mutex<Pool>,
    idle_for: Duration,
    tls: OnceLock<Arc<rustls::ClientConfig>>,
}

impl Default for Outbound {
    fn default() -> Self {
        Self {
            pool: Mutex::default(),
            idle_for: IDLE_FOR,
            tls: OnceLock::new(),
        }
    }
}

/// What `send` hands back: the answer, whose body returns the connection to the pool
/// when read to the end.
pub(crate) type Answer = http::Response<WasiBody>;

impl Outbound {
    /// Sends `request` (absolute URI) and waits for the answer's head.
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Answer, HttpError> {
        let uri = request.uri();
        let authority = uri.authority().ok_or(HttpError::HttpRequestUriInvalid)?;
        let tls = uri.scheme() == Some(&Scheme::HTTPS);
        let authority = match authority.port() {
            Some(_) => authority.to_string(),
            None => format!("{authority}:{}", if tls { 443 } else { 80 }),
        };
        let timeout = |pick: fn(&RequestOptions) -> Option<Duration>| {
            options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
        };
        let connect_timeout = timeout(|o| o.connect_timeout);
        let first_byte = timeout(|o| o.first_byte_timeout);
        let between_bytes = timeout(|o| o.between_bytes_timeout).max(Duration::from_nanos(1));
        // On the wire the request line carries only the path (no proxy).
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
            .build()
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let key = (tls, authority);

        loop {
            let (mut sender, kept) = match self.take(&key) {
                Some(sender) => (sender, true),
                None => (self.connect(&key, connect_timeout).await?, false),
            };
            let sent = tokio::time::timeout(first_byte, sender.try_send_request(request)).await;
            match sent {
                Err(_) => return Err(HttpError::ConnectionReadTimeout),
                Ok(Ok(answer)) => {
                    let (head, incoming) = answer.into_parts();
                    let body = AnswerBody {
                        incoming,
                        between_bytes,
                        idle_timer: Box::pin(tokio::time::sleep(between_bytes)),
                        keep: Some((self.clone(), key, sender)),
                    };
                    return Ok(http::Response::from_parts(
                        head,
                        http_body_util::BodyExt::boxed_unsync(body),
                    ));
                }
                Ok(Err(mut error)) => match error.take_message() {
                    // A kept connection closed before it took the request: try again.
                    Some(back) if kept => request = back,
                    _ => return Err(error.into_error().into()),
                },
            }
        }
    }

    /// The most recently used idle connection to `key` that still looks usable.
    fn take(&self, key: &Key) -> Option<SendRequest<WasiBody>> {
        let mut pool = self.lock();
        let list = pool.idle.get_mut(key)?;
        while let Some(Idle { sender, since }) = list.pop() {
            if since.elapsed() < self.idle_for && sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns a connection once it is ready for another request; a connection the
    /// server closes meanwhile (or one still busy after `idle_for`) is dropped.
    fn give_back(self: Arc<Self>, key: Key, mut sender: SendRequest<WasiBody>) {
        tokio::spawn(async move {
            if let Ok(Ok(())) = tokio::time::timeout(self.idle_for, sender.ready()).await {
                let mut pool = self.lock();
                let list = pool.idle.entry(key).or_default();
                list.retain(|i| i.keep(self.idle_for));
                if list.len() < MAX_IDLE {
                    list.push(Idle {
                        sender,
                        since: Instant::now(),
                    });
                }
                if !pool.reaping {
                    pool.reaping = true;
                    drop(pool);
                    tokio::spawn(self.reap());
                }
            }
        });
    }

    /// Closes each idle connection when it has been idle for `idle_for` (dropping its
    /// sender ends the connection); ends when none is left.
    async fn reap(self: Arc<Self>) {
        // Should the runtime drop this task unfinished, the next give-back starts another.
        struct Unfinished(Option<Arc<Outbound>>);
        impl Drop for Unfinished {
            fn drop(&mut self) {
                if let Some(outbound) = self.0.take() {
                    outbound.lock().reaping = false;
                }
            }
        }
        let mut unfinished = Unfinished(Some(self.clone()));
        loop {
            let next = {
                let mut pool = self.lock();
                pool.idle.retain(|_, list| {
                    list.retain(|i| i.keep(self.idle_for));
                    !list.is_empty()
                });
                match pool.idle.values().flatten().map(|i| i.since).min() {
                    Some(oldest) => oldest + self.idle_for,
                    None => {
                        pool.reaping = false;
                        unfinished.0 = None;
                        return;
                    }
                }
            };
            tokio::time::sleep_until(next.into()).await;
        }
    }

    /// A new connection (TCP, then TLS for `https`), driven by a task of its own for as
    /// long as it lives.
    async fn connect(
        &self,
        (tls, authority): &Key,
        timeout: Duration,
    ) -> Result<SendRequest<WasiBody>, HttpError> {
        let tcp = match tokio::time::timeout(timeout, TcpStream::connect(authority)).await {
            Ok(stream) => stream.map_err(HttpError::Connect)?,
            Err(_) => return Err(HttpError::ConnectionTimeout),
        };
        let _ = tcp.set_nodelay(true);
        if *tls {
            let name = server_name(authority).map_err(HttpError::InvalidDnsNameError)?;
            let config = self.tls.get_or_init(|| {
                let roots = rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.into(),
                };
                Arc::new(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(roots)
                        .with_no_client_auth(),
                )
            });
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let stream = match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
                Ok(stream) => stream.map_err(HttpError::Tls)?,
                Err(_) => return Err(HttpError::ConnectionTimeout),
            };
            handshake(stream, timeout).await
        } else {
            handshake(tcp, timeout).await
        }
    }
}

async fn handshake<S>(stream: S, timeout: Duration) -> Result<SendRequest<WasiBody>, HttpError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let handshake = hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream));
    let (sender, conn) = tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// The TLS server name of `host:port` (an IP literal, bracketed for IPv6, or a name).
fn server_name(
    authority: &str,
) -> Result<rustls::pki_types::ServerName<'static>, rustls::pki_types::InvalidDnsNameError> {
    use rustls::pki_types::ServerName;
    if let Ok(addr) = authority.parse::<std::net::SocketAddr>() {
        return Ok(ServerName::from(addr.ip()));
    }
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    Ok(ServerName::try_from(host)?.to_owned())
}

/// The answer's body: each frame must come within `between_bytes`; at its end the
/// connection goes back to the pool.
struct AnswerBody {
    incoming: Incoming,
    between_bytes: Duration,
    idle_timer: Pin<Box<tokio::time::Sleep>>,
    keep: Option<(Arc<Outbound>, Key, SendRequest<WasiBody>)>,
}

impl AnswerBody {
    fn finished(&mut self) {
        if let Some((pool, key, sender)) = self.keep.take() {
            pool.give_back(key, sender);
        }
    }
}

impl Body for AnswerBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => {
                self.finished();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.keep = None;
                let e = if e.is_timeout() {
                    HttpError::HttpResponseTimeout
                } else {
                    HttpError::from(e)
                };
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = tokio::time::Instant::now() + self.between_bytes;
                self.idle_timer.as_mut().reset(deadline);
                if self.incoming.is_end_stream() {
                    self.finished();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.idle_timer.as_mut().poll(cx));
                self.keep = None;
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use tokio::net::TcpListener;

    use super::*;

    /// A platform on loopback that counts connections, requests and closed connections.
    /// `close` answers with `Connection: close`; `stall` sends the head and one chunk,
    /// then nothing.
    struct Platform {
        url: String,
        connections: Arc<AtomicUsize>,
        requests: Arc<AtomicUsize>,
        /// Connections that ended (the client closed them).
        closed: Arc<AtomicUsize>,
    }

    #[derive(Clone, Copy)]
    enum Mode {
        KeepAlive,
        Close,
        Stall,
    }

    /// One frame, then nothing, ever.
    struct Stall(bool);

    impl Body for Stall {
        type Data = Bytes;
        type Error = HttpError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
            if self.0 {
                return Poll::Pending;
            }
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from("{")))))
        }
    }

    async fn platform(mode: Mode) -> Platform {
        platform_over(mode, None).await
    }

    /// The platform, over HTTPS with `tls` (its URL then names `localhost`).
    async fn platform_over(mode: Mode, tls: Option<tokio_rustls::TlsAcceptor>) -> Platform {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = match tls {
            Some(_) => format!("https://localhost:{port}/deploy"),
            None => format!("http://127.0.0.1:{port}/deploy"),
        };
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let counters = (connections.clone(), requests.clone(), closed.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counters.0.fetch_add(1, Ordering::SeqCst);
                let (requests, closed) = (counters.1.clone(), counters.2.clone());
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        // A refused handshake (an untrusting client) just ends.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                serve(stream, mode, requests).await
                            }
                        }
                        None => serve(stream, mode, requests).await,
                    }
                    closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Platform {
            url,
            connections,
            requests,
            closed,
        }
    }

    /// Serves one connection until the client closes it (or it fails).
    async fn serve<S>(stream: S, mode: Mode, requests: Arc<AtomicUsize>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let service = service_fn(move |_req: http::Request<Incoming>| {
            requests.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut answer = http::Response::builder().status(202);
                if let Mode::Close = mode {
                    answer = answer.header("connection", "close");
                }
                let body: WasiBody = match mode {
                    Mode::Stall => Stall(false).boxed_unsync(),
                    _ => Full::new(Bytes::from(r#"{"accepted":true}"#))
                        .map_err(|never: Infallible| match never {})
                        .boxed_unsync(),
                };
                Ok::<_, Infallible>(answer.body(body).unwrap())
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    }

    fn post(url: &str) -> http::Request<WasiBody> {
        http::Request::post(url)
            .header("content-type", "application/json")
            .body(
                Full::new(Bytes::from(r#"{"deploy":true}"#))
                    .map_err(|never: Infallible| match never {})
                    .boxed_unsync(),
            )
            .unwrap()
    }

    fn options(between_bytes: Duration) -> Option<RequestOptions> {
        Some(RequestOptions {
            connect_timeout: Some(Duration::from_secs(5)),
            first_byte_timeout: Some(Duration::from_secs(5)),
            between_bytes_timeout: Some(between_bytes),
        })
    }

    async fn call(outbound: &Arc<Outbound>, url: &str) -> (u16, Bytes) {
        let answer = outbound
            .send(post(url), options(Duration::from_secs(5)))
            .await
            .unwrap();
        let status = answer.status().as_u16();
        (
            status,
            answer.into_body().collect().await.unwrap().to_bytes(),
        )
    }

    fn idle(outbound: &Outbound) -> usize {
        outbound.lock().idle.values().map(Vec::len).sum()
    }

    /// Waits (bounded) until `n` connections are idle in the pool.
    async fn until_idle(outbound: &Outbound, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while idle(outbound) != n {
            assert!(
                Instant::now() < deadline,
                "{} idle, not {n}",
                idle(outbound)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `n` calls, one after the other, to a fresh platform: all answered, all over the
    /// first call's connection.
    async fn one_after_another(outbound: &Arc<Outbound>, platform: &Platform, n: usize) {
        for _ in 0..n {
            let (status, body) = call(outbound, &platform.url).await;
            assert_eq!((status, &body[..]), (202, &br#"{"accepted":true}"#[..]));
            until_idle(outbound, 1).await;
        }
        assert_eq!(platform.requests.load(Ordering::SeqCst), n);
        assert_eq!(platform.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn calls_to_one_platform_share_a_kept_connection() {
        let platform = platform(Mode::KeepAlive).await;
        let outbound = Arc::new(Outbound::default());
        one_after_another(&outbound, &platform, 5).await;

        // Two at once need two connections; both are kept afterwards.
        let (a, b) = tokio::join!(
            call(&outbound, &platform.url),
            call(&outbound, &platform.url)
        );
        assert_eq!((a.0, b.0), (202, 202));
        until_idle(&outbound, 2).await;
        assert_eq!(platform.connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_platform_closes_is_not_reused() {
        let platform = platform(Mode::Close).await;
        let outbound = Arc::new(Outbound::default());
        for _ in 0..3 {
            assert_eq!(call(&outbound, &platform.url).await.0, 202);
        }
        assert_eq!(platform.connections.load(Ordering::SeqCst), 3);
        assert_eq!(idle(&outbound), 0);
    }

    /// A platform that closes each connection right after its answer, without saying
    /// so (`Connection: close`): as a server whose keep-alive timeout just passed. The
    /// closed connection is not handed out again (or, should it close just as a request
    /// is given to it, the unwritten request comes back and goes on a new one): no call
    /// fails.
    #[tokio::test]
    async fn a_kept_connection_the_platform_closed_is_replaced() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/deploy", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let c = connections.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
                    // the head, then the 15-byte body
                    let whole = |got: &[u8]| {
                        let head = got.windows(4).position(|w| w == b"\r\n\r\n");
                        head.is_some_and(|i| got.len() >= i + 4 + 15)
                    };
                    while !whole(&got) {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\nok";
                    let _ = stream.write_all(answer).await;
                });
            }
        });
        let outbound = Arc::new(Outbound::default());
        for _ in 0..5 {
            assert_eq!(call(&outbound, &url).await, (202, Bytes::from("ok")));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 5);
    }

    /// The race the test above can only hope to hit, played step by step: the platform
    /// closes an idle kept connection just before the pool hands it out, so the request
    /// is queued on a connection that has not yet seen the close. It comes back
    /// unwritten and goes to the platform on a new connection: the call succeeds and the
    /// platform gets it once. (The closing connection's peer is an in-memory pipe, and
    /// its driver is held back until the request is queued on it.)
    #[tokio::test]
    async fn a_request_queued_on_a_closing_kept_connection_goes_on_a_new_one() {
        let platform = platform(Mode::KeepAlive).await;
        let outbound = Arc::new(Outbound::default());
        let (ours, theirs) = tokio::io::duplex(4096);
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake::<_, WasiBody>(TokioIo::new(ours))
            .await
            .unwrap();
        let mut conn = Box::pin(conn);
        // Polled once, the connection wants a request: it looks usable to the pool.
        std::future::poll_fn(|cx| {
            assert!(conn.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        assert!(sender.is_ready());
        drop(theirs);
        let authority = platform.url["http://".len()..].split('/').next().unwrap();
        outbound
            .lock()
            .idle
            .entry((false, authority.to_string()))
            .or_default()
            .push(Idle {
                sender,
                since: Instant::now(),
            });

        let answer = tokio::spawn({
            let (outbound, url) = (outbound.clone(), platform.url.clone());
            async move { call(&outbound, &url).await }
        });
        // This runtime has one thread: the call runs until it waits for an answer.
        while idle(&outbound) != 0 {
            tokio::task::yield_now().await;
        }
        tokio::spawn(conn);
        let (status, body) = answer.await.unwrap();
        assert_eq!((status, &body[..]), (202, &br#"{"accepted":true}"#[..]));
        assert_eq!(platform.requests.load(Ordering::SeqCst), 1);
        assert_eq!(platform.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stalled_answer_times_out_and_its_connection_is_dropped() {
        let platform = platform(Mode::Stall).await;
        let outbound = Arc::new(Outbound::default());
        let answer = outbound
            .send(post(&platform.url), options(Duration::from_millis(200)))
            .await
            .unwrap();
        let error = answer.into_body().collect().await.unwrap_err();
        assert!(
            matches!(error, HttpError::ConnectionReadTimeout),
            "{error:?}"
        );
        assert_eq!(idle(&outbound), 0);
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let outbound = Arc::new(Outbound::default());
        let error = outbound
            .send(
                post(&format!("http://127.0.0.1:{port}/")),
                options(Duration::from_secs(1)),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, HttpError::Connect(_)), "{error:?}");
    }

    /// Waits (bounded) until `check` holds.
    async fn until(what: &str, check: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_without_a_later_call() {
        let platform = platform(Mode::KeepAlive).await;
        let outbound = Arc::new(Outbound {
            idle_for: Duration::from_millis(100),
            ..Outbound::default()
        });
        for round in 1..=2 {
            assert_eq!(call(&outbound, &platform.url).await.0, 202);
            until_idle(&outbound, 1).await;
            // No further call: the reaper closes it, then stops.
            until("the idle connection to close", || {
                platform.closed.load(Ordering::SeqCst) == round
            })
            .await;
            until("the reaper to stop", || !outbound.lock().reaping).await;
            assert_eq!(idle(&outbound), 0);
            assert_eq!(platform.connections.load(Ordering::SeqCst), round);
        }
    }

    /// The TLS material of `tests/fixtures/tls` (see its `regen.sh`).
    fn test_ca() -> rustls::RootCertStore {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        let mut roots = rustls::RootCertStore::empty();
        let ca = include_bytes!("../tests/fixtures/tls/ca.pem");
        roots
            .add(CertificateDer::from_pem_slice(ca).unwrap())
            .unwrap();
        roots
    }

    fn localhost_acceptor() -> tokio_rustls::TlsAcceptor {
        use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
        let cert = include_bytes!("../tests/fixtures/tls/localhost.pem");
        let key = include_bytes!("../tests/fixtures/tls/localhost.key");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(cert).unwrap()],
                PrivateKeyDer::from_pem_slice(key).unwrap(),
            )
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    #[tokio::test]
    async fn https_calls_check_the_certificate_and_share_a_connection() {
        let platform = platform_over(Mode::KeepAlive, Some(localhost_acceptor())).await;
        let trusting = Arc::new(Outbound {
            tls: OnceLock::from(Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(test_ca())
                    .with_no_client_auth(),
            )),
            ..Outbound::default()
        });
        one_after_another(&trusting, &platform, 3).await;

        // With the public roots only, the test CA's certificate is refused.
        let public = Arc::new(Outbound::default());
        let error = public
            .send(post(&platform.url), options(Duration::from_secs(5)))
            .await
            .unwrap_err();
        assert!(matches!(error, HttpError::Tls(_)), "{error:?}");
        assert_eq!(platform.requests.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn tls_server_names() {
        use rustls::pki_types::ServerName;
        assert_eq!(
            server_name("example.com:443").unwrap(),
            ServerName::try_from("example.com").unwrap()
        );
        assert_eq!(
            server_name("[::1]:443").unwrap(),
            ServerName::from(std::net::Ipv6Addr::LOCALHOST)
        );
        assert_eq!(
            server_name("127.0.0.1:8443").unwrap(),
            ServerName::from(std::net::Ipv4Addr::LOCALHOST)
        );
    }
}
