//! The outbound pool against platforms on loopback (HTTP and HTTPS).

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
    let ca = include_bytes!("../../tests/fixtures/tls/ca.pem");
    roots
        .add(CertificateDer::from_pem_slice(ca).unwrap())
        .unwrap();
    roots
}

fn localhost_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let cert = include_bytes!("../../tests/fixtures/tls/localhost.pem");
    let key = include_bytes!("../../tests/fixtures/tls/localhost.key");
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
