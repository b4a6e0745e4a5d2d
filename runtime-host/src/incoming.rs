//! Incoming requests: run the component's `wasi:http/incoming-handler` on one request in
//! a fresh instance, and let the guest keep running after it has answered (it may
//! stream its body, and it records the delivery after the platform's answer).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{Error as HttpError, WasiHttpView};

use crate::host::Host;
use crate::logs::ACCESS_LOG_PREFIX;
use crate::runtime::wt;

/// The response of the component's incoming handler, and the rest of the guest's run
/// (it may stream the body after the head; it ends with the guest's result).
pub(crate) struct Handled {
    pub(crate) response: hyper::Response<HyperOutgoingBody>,
    /// The rest of the guest's run.
    pub(crate) guest: GuestRun,
    /// How long the guest waited for outbound calls before it answered.
    pub(crate) outbound: Option<Duration>,
}

/// The rest of one guest's run once it has set its response (it may still be writing
/// the body, or logging): the caller drives it alongside the body, on its own task.
pub(crate) type GuestRun = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Let a guest's run finish on a task of its own (its caller went away: the client
/// closed the connection). The guest must not be cut short: after a platform accepted a
/// deploy it still records the delivery, or a retry would find it claimed forever.
pub(crate) fn detach(guest: GuestRun) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(async move { report_guest(guest.await) })),
        Err(_) => eprintln!("{ACCESS_LOG_PREFIX}error: a guest was dropped outside the runtime"),
    }
}

/// Reports how a guest's run ended, once it ended after its answer (nobody waits for it).
pub(crate) fn report_guest(result: anyhow::Result<()>) {
    if let Err(e) = result {
        eprintln!("{ACCESS_LOG_PREFIX}error: {e:#}");
    }
}

/// Owns a guest's run while [`Host::handle`] waits for its answer; dropped before that
/// (the connection closed), it detaches the run instead of cancelling it.
struct Running(Option<GuestRun>);

impl Running {
    fn take(&mut self) -> GuestRun {
        self.0.take().expect("the guest's run is taken once")
    }

    /// Run the guest to its end here (dropped meanwhile, the run is detached).
    async fn finish(&mut self) -> anyhow::Result<()> {
        let result = self.0.as_mut().expect("the guest's run is set").await;
        self.0 = None;
        result
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(guest) = self.0.take() {
            detach(guest);
        }
    }
}

impl Host {
    /// Run the component's `wasi:http/incoming-handler` on `req` in a fresh instance and
    /// return the whole response.
    ///
    /// The request is completed as a server would see it: the URI gets scheme `http`
    /// and the authority of the URI or else the `Host` header (else `localhost`), and a
    /// missing `Host` header is added. Spin's `spin-*` request headers are set as
    /// `spin up` sets them for the route `/...`.
    pub async fn send(
        &self,
        req: http::Request<Vec<u8>>,
    ) -> anyhow::Result<http::Response<Vec<u8>>> {
        let req = req.map(|body| Full::new(Bytes::from(body)));
        let Handled {
            response, guest, ..
        } = self.handle(req, None).await?;
        let (parts, body) = response.into_parts();
        // Drive the guest while reading its body, and wait for it to finish (its log
        // lines are all in by then).
        let (body, finished) = tokio::join!(body.collect(), guest);
        let body = body
            .map_err(|e| anyhow!("reading the response body: {e}"))?
            .to_bytes()
            .to_vec();
        finished?;
        Ok(http::Response::from_parts(parts, body))
    }

    /// Run the incoming handler; return once the guest has set its response.
    pub(crate) async fn handle<B>(
        &self,
        req: http::Request<B>,
        client: Option<SocketAddr>,
    ) -> anyhow::Result<Handled>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<HttpError>,
    {
        let req = prepare_request(req, client)?;
        let slot = self.slot().await?;
        let mut store = self.new_store();
        let outbound_us = store.data().hooks.outbound_us.clone();
        let proxy = wt(self.runtime.inner.proxy.instantiate_async(&mut store).await)
            .context("instantiating the component")?;
        let incoming = wt(store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let outparam = wt(store.data_mut().http().new_response_outparam(tx))?;

        // The guest runs on the caller's task, not a spawned one: a spawn hands the
        // request to another worker thread and back (two wake-ups per request).
        let guest: GuestRun = Box::pin(async move {
            let result = wt(proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await)
            .context("the component's incoming handler failed");
            // The instance's slot goes back to the pool with the store.
            drop(store);
            drop(slot);
            result
        });
        let mut running = Running(Some(guest));
        let mut rx = rx;
        let ended_first = {
            let guest = running.0.as_mut().expect("the guest's run is set");
            tokio::select! {
                biased;
                answer = &mut rx => Ok(answer),
                finished = guest => Err(finished),
            }
        };
        let answer = match ended_first {
            Ok(answer) => answer,
            Err(finished) => {
                // The guest ended before (or without) answering: keep its result.
                running.0 = Some(Box::pin(std::future::ready(finished)));
                rx.await
            }
        };
        let outbound = match outbound_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        };
        match answer {
            Ok(Ok(response)) => Ok(Handled {
                response,
                guest: running.take(),
                outbound,
            }),
            Ok(Err(code)) => {
                let _ = running.finish().await;
                bail!("the component answered with error code {code:?}")
            }
            Err(_) => {
                running.finish().await?;
                bail!("the component did not set a response")
            }
        }
    }
}

/// and the authority from the URI or the `Host` header, a `Host` header, and the
/// `spin-*` headers of the route `/...`.
fn prepare_request<B>(
    req: http::Request<B>,
    client: Option<SocketAddr>,
) -> anyhow::Result<http::Request<B>> {
    let (mut parts, body) = req.into_parts();
    let authority = match parts.uri.authority() {
        Some(a) => a.as_str().to_string(),
        None => match parts.headers.get(http::header::HOST) {
            Some(h) => h
                .to_str()
                .context("the Host header is not valid text")?
                .to_string(),
            None => "localhost".to_string(),
        },
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    parts.uri = http::Uri::builder()
        .scheme("http")
        .authority(authority.as_str())
        .path_and_query(path_and_query.as_str())
        .build()
        .context("building the request URI")?;
    if !parts.headers.contains_key(http::header::HOST) {
        parts
            .headers
            .insert(http::header::HOST, http::HeaderValue::from_str(&authority)?);
    }
    let path = parts.uri.path().to_string();
    let client = client
        .map(|a| a.to_string())
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let spin_headers = [
        ("spin-full-url", parts.uri.to_string()),
        ("spin-path-info", path),
        ("spin-matched-route", "/...".to_string()),
        ("spin-raw-component-route", "/...".to_string()),
        ("spin-component-route", String::new()),
        ("spin-base-path", "/".to_string()),
        ("spin-client-addr", client),
    ];
    for (name, value) in spin_headers {
        parts.headers.insert(
            http::HeaderName::from_static(name),
            http::HeaderValue::from_str(&value)?,
        );
    }
    Ok(http::Request::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_get_scheme_authority_and_spin_headers() {
        let req = http::Request::post("/hooks/shop/git?a=1")
            .header("host", "hooks.example.com:8443")
            .header("spin-client-addr", "spoofed")
            .body(())
            .unwrap();
        let req = prepare_request(req, Some("10.0.0.7:5555".parse().unwrap())).unwrap();
        assert_eq!(
            req.uri().to_string(),
            "http://hooks.example.com:8443/hooks/shop/git?a=1"
        );
        assert_eq!(
            req.headers()["spin-full-url"],
            "http://hooks.example.com:8443/hooks/shop/git?a=1"
        );
        assert_eq!(req.headers()["spin-path-info"], "/hooks/shop/git");
        assert_eq!(req.headers()["spin-client-addr"], "10.0.0.7:5555");

        // No Host header: the URI's authority, or localhost; a Host header is added.
        let req = prepare_request(http::Request::get("/healthz").body(()).unwrap(), None).unwrap();
        assert_eq!(req.uri().to_string(), "http://localhost/healthz");
        assert_eq!(req.headers()["host"], "localhost");
        let req = prepare_request(
            http::Request::get("http://gw.example.com/healthz")
                .body(())
                .unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(req.uri().to_string(), "http://gw.example.com/healthz");
        assert_eq!(req.headers()["host"], "gw.example.com");
    }
}
