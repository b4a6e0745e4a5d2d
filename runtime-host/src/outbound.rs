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
mod tests;
