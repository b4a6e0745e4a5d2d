//! What one instance (one request) can reach: the data of its `Store`, what every
//! instance of one host shares, and the outbound-HTTP hooks (a fake platform or the
//! kept-alive connections).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

use crate::allow::{self, AllowList};
use crate::fake::FakePlatform;
use crate::kv::KvBackend;
use crate::logs::LogBook;
use crate::outbound::Outbound;
use crate::vars::Variables;

/// The data of one `Store`: everything one instance (one request) can reach.
pub(crate) struct Ctx {
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) hooks: Hooks,
    pub(crate) shared: Arc<Shared>,
}

/// What every instance of one host shares.
pub(crate) struct Shared {
    pub(crate) vars: Variables,
    /// The origins the component may call (the manifest's `allowed_outbound_hosts`).
    pub(crate) allow: AllowList,
    pub(crate) kv: Arc<dyn KvBackend>,
    pub(crate) logs: Arc<LogBook>,
    pub(crate) access: Arc<LogBook>,
    pub(crate) fake: Option<FakePlatform>,
    /// Kept-alive connections for the guest's outbound calls.
    pub(crate) outbound: Arc<Outbound>,
}

pub(crate) struct Hooks {
    /// The fake platform or the kept-alive connections, whichever this host uses.
    shared: Arc<Shared>,
    /// Time this instance spent waiting for outbound calls (until each answer's
    /// headers), in microseconds: the access log shows it next to the total.
    pub(crate) outbound_us: Arc<AtomicU64>,
}

impl Hooks {
    pub(crate) fn new(shared: &Arc<Shared>) -> Self {
        Self {
            shared: shared.clone(),
            outbound_us: Arc::new(AtomicU64::new(0)),
        }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>
    {
        let shared = self.shared.clone();
        let outbound_us = self.outbound_us.clone();
        Box::new(async move {
            // As Spin does: a call to an origin outside `allowed_outbound_hosts` fails with
            // `HttpRequestDenied`, whether the platform is real or fake. The log names the
            // origin only: paths and queries can carry secrets.
            if !shared.allow.allows(request.uri()) {
                let origin = allow::origin(request.uri());
                shared.access.push(format!(
                    "outbound request to {origin} denied: not in allowed_outbound_hosts {} \
                     (add \"{origin}\" to allow it)",
                    shared.allow
                ));
                return Err(HttpError::HttpRequestDenied);
            }
            let start = Instant::now();
            let answer = match &shared.fake {
                Some(fake) => fake.answer(request, options).await,
                None => shared.outbound.send(request, options).await,
            };
            let waited = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            outbound_us.fetch_add(waited, Ordering::Relaxed);
            // Connections are driven by tasks of their own: nothing for the caller to poll.
            answer.map(|response| (response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A context with no component behind it, to call the host's interfaces directly.

    use super::*;
    use crate::kv::MemoryBackend;

    /// A host's shared state: `admin_token=s3cret`, an in-memory store, `fake` if any.
    pub(crate) fn shared(fake: Option<FakePlatform>) -> Arc<Shared> {
        let mut vars = Variables::new();
        vars.set("admin_token", "s3cret");
        Arc::new(Shared {
            vars,
            allow: AllowList::any(),
            kv: Arc::new(MemoryBackend::new()),
            logs: Arc::new(LogBook::new(100, None)),
            access: Arc::new(LogBook::new(100, None)),
            fake,
            outbound: Arc::default(),
        })
    }

    /// One instance's context over `shared`.
    pub(crate) fn ctx(shared: &Arc<Shared>) -> Ctx {
        Ctx {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            hooks: Hooks::new(shared),
            shared: shared.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    use super::test_support::shared;
    use super::*;

    fn outbound(body: &'static str) -> http::Request<WasiBody> {
        http::Request::post("https://console.example.com/v1/apps/shop/deploy?x=1")
            .header("Authorization", "Bearer t")
            .header("Idempotency-Key", "d1")
            .body(
                Full::new(Bytes::from_static(body.as_bytes()))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap()
    }

    async fn call(
        hooks: &mut Hooks,
        req: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(u16, Vec<u8>), HttpError> {
        let fut = hooks.send_request(req, options, Box::new(async { Ok(()) }));
        let (response, _io) = Box::into_pin(fut).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes().to_vec();
        Ok((status, body))
    }

    /// Outside `allowed_outbound_hosts`, a call fails with `HttpRequestDenied` before it
    /// reaches the platform (fake here), and the host's log names the origin only.
    #[tokio::test]
    async fn calls_outside_the_allow_list_are_denied_and_logged_by_origin() {
        let fake = FakePlatform::new();
        let mut vars = Variables::new();
        vars.set("platform_url", "https://console.example.com");
        let shared = Arc::new(Shared {
            allow: AllowList::parse(&["{{ platform_url }}"], &vars).unwrap(),
            ..Arc::into_inner(shared(Some(fake.clone()))).unwrap()
        });
        let mut hooks = Hooks::new(&shared);
        assert_eq!(
            call(&mut hooks, outbound("1"), None).await.unwrap().0,
            200,
            "the platform's origin is allowed"
        );
        for uri in [
            "https://elsewhere.example.com/v1/s3cret-path?token=s3cret",
            "http://console.example.com/v1/s3cret-path",
            "https://console.example.com:8443/v1/s3cret-path",
        ] {
            let mut req = outbound("2");
            *req.uri_mut() = uri.parse().unwrap();
            assert!(
                matches!(
                    call(&mut hooks, req, None).await,
                    Err(HttpError::HttpRequestDenied)
                ),
                "{uri}"
            );
        }
        assert_eq!(
            fake.requests().len(),
            1,
            "denied calls never reach the platform"
        );
        let log = shared.access.snapshot();
        assert_eq!(log.len(), 3, "{log:?}");
        for (line, origin) in log.iter().zip([
            "https://elsewhere.example.com",
            "http://console.example.com",
            "https://console.example.com:8443",
        ]) {
            assert!(
                line.starts_with(&format!("outbound request to {origin} denied: ")),
                "{line}"
            );
            assert!(!line.contains("s3cret"), "{line}");
        }
    }

    #[tokio::test]
    async fn fake_platform_records_and_answers() {
        let fake = FakePlatform::new();
        let mut hooks = Hooks::new(&shared(Some(fake.clone())));
        assert_eq!(
            call(&mut hooks, outbound(r#"{"app":"shop"}"#), None)
                .await
                .unwrap(),
            (200, b"{}".to_vec())
        );
        fake.set_status(503);
        fake.set_body("busy");
        assert_eq!(
            call(&mut hooks, outbound("2"), None).await.unwrap(),
            (503, b"busy".to_vec())
        );
        let reqs = fake.requests();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].method, "POST");
        assert_eq!(
            reqs[0].uri,
            "https://console.example.com/v1/apps/shop/deploy?x=1"
        );
        assert_eq!(reqs[0].header("authorization"), Some("Bearer t"));
        assert_eq!(reqs[0].header("IDEMPOTENCY-KEY"), Some("d1"));
        assert!(reqs[0].headers.iter().all(|(n, _)| *n == n.to_lowercase()));
        assert_eq!(reqs[0].json()["app"], "shop");
        assert_eq!(reqs[1].body, b"2");

        // A delay longer than the guest's first-byte timeout is a read timeout.
        fake.set_delay(Some(Duration::from_millis(300)));
        let options = RequestOptions {
            first_byte_timeout: Some(Duration::from_millis(50)),
            ..Default::default()
        };
        let start = std::time::Instant::now();
        assert!(matches!(
            call(&mut hooks, outbound("3"), Some(options)).await,
            Err(HttpError::ConnectionReadTimeout)
        ));
        assert!(start.elapsed() < Duration::from_millis(250));
        // Otherwise the answer comes after the delay.
        let start = std::time::Instant::now();
        assert_eq!(call(&mut hooks, outbound("4"), None).await.unwrap().0, 503);
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert_eq!(fake.requests().len(), 4);
    }
}
