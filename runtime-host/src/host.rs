//! The runtime (engine, compiled component, pre-instantiation) and the host (variables,
//! key-value store, outbound HTTP, logs) that runs one fresh instance per request.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, Resource, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

use crate::bindings;
use crate::bindings::fermyon::spin::{key_value, variables};
use crate::bindings::wasi::keyvalue::{atomics, batch, store as wkv};
use crate::fake::FakePlatform;
use crate::kv::{
    Bucket, Cas, CasOutcome, FileBackend, KvBackend, KvError, MemoryBackend, SpinStore,
    DEFAULT_STORE,
};
use crate::logs::{GuestOutput, LogBook, DEFAULT_LOG_CAPACITY};
use crate::outbound::Outbound;
use crate::redis::RedisBackend;
use crate::trigger::{Decision, TriggerRequest};
use crate::vars::{VarError, Variables};

/// Where `cargo build --target wasm32-wasip2 --release` puts the component, relative to
/// the workspace root.
pub const COMPONENT_RELATIVE_PATH: &str = "target/wasm32-wasip2/release/autodeploy.wasm";

/// The prefix of guest output lines echoed to the host's stderr.
pub const GUEST_LOG_PREFIX: &str = "[autodeploy] ";

/// The prefix of the host's access-log lines on stderr.
pub const ACCESS_LOG_PREFIX: &str = "[host] ";

fn wt<T>(r: wasmtime::Result<T>) -> anyhow::Result<T> {
    r.map_err(anyhow::Error::from)
}

// ---------------------------------------------------------------------------------------
// Runtime

/// The engine, the compiled component and its pre-instantiation: built once per process
/// and shared (cheap to clone, `Send + Sync`).
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    path: PathBuf,
    engine: Engine,
    /// One permit per instance slot of the engine's pool: a request waits for a slot
    /// instead of failing when every slot is in use.
    slots: Arc<Semaphore>,
    component: Component,
    proxy: ProxyPre<Ctx>,
    trigger: Option<bindings::RuntimeHostPre<Ctx>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Build the engine, compile the component at `path` and pre-instantiate it against
    /// every import this host provides (an import the host does not provide fails here).
    pub fn load(path: impl AsRef<Path>) -> anyhow::Result<Runtime> {
        let path = path.as_ref().to_path_buf();
        let bytes = std::fs::read(&path)
            .with_context(|| format!("reading component {}", path.display()))?;

        let engine = new_engine()?;
        let component = wt(Component::new(&engine, &bytes))
            .with_context(|| format!("compiling component {}", path.display()))?;

        let mut linker = Linker::<Ctx>::new(&engine);
        wt(wasmtime_wasi::p2::add_to_linker_async(&mut linker))?;
        wt(wasmtime_wasi_http::p2::add_only_http_to_linker_async(
            &mut linker,
        ))?;
        wt(bindings::RuntimeHost::add_to_linker::<Ctx, HasSelf<Ctx>>(
            &mut linker,
            |ctx| ctx,
        ))?;

        let pre: InstancePre<Ctx> = wt(linker.instantiate_pre(&component))
            .with_context(|| format!("linking component {}", path.display()))?;
        let proxy = wt(ProxyPre::new(pre.clone())).with_context(|| {
            format!(
                "component {} does not export wasi:http/incoming-handler@0.2",
                path.display()
            )
        })?;
        let trigger = bindings::RuntimeHostPre::new(pre).ok();

        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                path,
                engine,
                slots: Arc::new(Semaphore::new(MAX_INSTANCES as usize)),
                component,
                proxy,
                trigger,
            }),
        })
    }

    /// `<workspace>/target/wasm32-wasip2/release/autodeploy.wasm`: the workspace is the
    /// parent of this crate's directory at compile time; when that file does not exist
    /// but `./target/wasm32-wasip2/release/autodeploy.wasm` does, that one.
    pub fn default_component_path() -> PathBuf {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let built = workspace.join(COMPONENT_RELATIVE_PATH);
        if !built.exists() {
            let local = PathBuf::from(COMPONENT_RELATIVE_PATH);
            if local.exists() {
                return local;
            }
        }
        built
    }

    /// The component file this runtime was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The component's import names, e.g. `wasi:http/outgoing-handler@0.2.0`.
    pub fn imports(&self) -> Vec<String> {
        let ty = self.inner.component.component_type();
        ty.imports(&self.inner.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// The component's export names, e.g. `wasi:http/incoming-handler@0.2.0`.
    pub fn exports(&self) -> Vec<String> {
        let ty = self.inner.component.component_type();
        ty.exports(&self.inner.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// Whether the component exports `autodeploy:gateway/trigger@0.1.0`.
    pub fn has_trigger(&self) -> bool {
        self.inner.trigger.is_some()
    }
}

/// How many instances may be alive at once (the pooling allocator's slots). A request
/// beyond that waits for a slot.
pub const MAX_INSTANCES: u32 = 1000;

/// The largest linear memory one instance may grow to. The biggest input is a 5 MiB git
/// body, parsed once; 256 MiB leaves room and bounds what a hostile body can cost.
const MAX_MEMORY_BYTES: usize = 256 << 20;

/// How much of a linear memory stays resident when its slot is reset for the next
/// instance: reset in place instead of `madvise`, so the next request takes no page
/// faults there. On Linux ≥ 6.7 the `PAGEMAP_SCAN` ioctl finds the pages the instance
/// dirtied and only those are reset (a `memset` of all 512 KiB was 9% of the host's CPU
/// per request); elsewhere the whole region is `memset`. The component (`build.rs`) puts
/// a 128 KiB stack, then its data, then its heap at the bottom of memory: 512 KiB holds
/// a typical request's whole working set. Measured with `perf stat` under load: page
/// faults per request 14 → ~1.
const MEMORY_KEEP_RESIDENT: usize = 512 << 10;

/// The same for tables (the component's function table is a few KiB).
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Slots whose memory needs `madvise` are reset in batches: one TLB shootdown across
/// the server's threads per batch instead of one per instance.
const DECOMMIT_BATCH: usize = 32;

/// An engine with the pooling instance allocator: every instance's memory, tables,
/// async stack and metadata come from slots reserved once and reset (copy-on-write
/// from the component's memory image) when the instance ends, instead of being mapped
/// and unmapped per request. When the pool cannot be reserved (a tight address-space
/// limit), fall back to on-demand allocation; [`MAX_INSTANCES`] still bounds how many
/// instances are alive at once.
fn new_engine() -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(MAX_INSTANCES)
        // The component is one core module plus the toolchain's small shim modules.
        .max_core_instances_per_component(8)
        .total_core_instances(MAX_INSTANCES * 4)
        .max_memories_per_component(2)
        .total_memories(MAX_INSTANCES)
        .max_tables_per_component(4)
        .total_tables(MAX_INSTANCES * 2)
        .total_stacks(MAX_INSTANCES)
        .max_memory_size(MAX_MEMORY_BYTES)
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .decommit_batch_size(DECOMMIT_BATCH)
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config.wasm_component_model(true);
    if std::env::var_os("AUTODEPLOY_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let on_demand = config.clone();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).or_else(|e| {
        eprintln!(
            "{ACCESS_LOG_PREFIX}pooling allocator unavailable ({e}); allocating per instance"
        );
        wt(Engine::new(&on_demand))
    })
}

// ---------------------------------------------------------------------------------------
// Per-instance state

/// The data of one `Store`: everything one instance (one request) can reach.
pub(crate) struct Ctx {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Hooks,
    shared: Arc<Shared>,
}

/// What every instance of one host shares.
struct Shared {
    vars: Variables,
    kv: Arc<dyn KvBackend>,
    logs: Arc<LogBook>,
    access: Arc<LogBook>,
    fake: Option<FakePlatform>,
    /// Kept-alive connections for the guest's outbound calls.
    outbound: Arc<Outbound>,
}

struct Hooks {
    /// The fake platform or the kept-alive connections, whichever this host uses.
    shared: Arc<Shared>,
    /// Time this instance spent waiting for outbound calls (until each answer's
    /// headers), in microseconds: the access log shows it next to the total.
    outbound_us: Arc<AtomicU64>,
}

impl Hooks {
    fn new(shared: &Arc<Shared>) -> Self {
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

// ---------------------------------------------------------------------------------------
// Host builder

/// Configures a [`Host`]: `Host::builder(runtime).var(..).build()`.
pub struct HostBuilder {
    runtime: Runtime,
    vars: Variables,
    kv_file: Option<PathBuf>,
    kv_redis: Option<String>,
    kv_backend: Option<Arc<dyn KvBackend>>,
    fake: Option<FakePlatform>,
    echo_logs: bool,
    log_capacity: usize,
}

impl HostBuilder {
    /// Set Spin variable `name` (lowercased) to `value`; it wins over the environment.
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.set(name, value);
        self
    }

    /// Also take variables from `SPIN_VARIABLE_<NAME>` environment variables (those not
    /// set with [`var`](Self::var)).
    pub fn vars_from_env(mut self) -> Self {
        self.vars.fill_from_env(std::env::vars());
        self
    }

    /// Keep the key-value store in this JSON file (default: in memory).
    pub fn kv_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.kv_file = Some(path.into());
        self
    }

    /// Keep the key-value store in Redis at `url` (e.g. `redis://127.0.0.1:6379/0`), with
    /// the keys of store `default` under `default:`: hosts on the same Redis database
    /// share their data, as instances of one Spin app on many nodes do. Wins over
    /// [`kv_file`](Self::kv_file). The URL is checked by [`build`](HostBuilder::build);
    /// the connection is made on first use (see [`RedisBackend`]).
    pub fn kv_redis(mut self, url: impl Into<String>) -> Self {
        self.kv_redis = Some(url.into());
        self
    }

    /// Use this key-value backend (wins over [`kv_redis`](Self::kv_redis) and
    /// [`kv_file`](Self::kv_file)); share one backend between hosts to share their data.
    pub fn kv_backend(mut self, backend: Arc<dyn KvBackend>) -> Self {
        self.kv_backend = Some(backend);
        self
    }

    /// Answer outbound HTTP with `fake` instead of the network (default: real calls).
    pub fn fake_platform(mut self, fake: FakePlatform) -> Self {
        self.fake = Some(fake);
        self
    }

    /// Whether guest log lines and access-log lines are echoed to stderr (default: yes).
    /// They are kept in memory either way.
    pub fn echo_logs(mut self, echo: bool) -> Self {
        self.echo_logs = echo;
        self
    }

    /// How many guest log lines (and access-log lines) are kept (default 10 000).
    pub fn log_capacity(mut self, lines: usize) -> Self {
        self.log_capacity = lines;
        self
    }

    /// Build the host (opens the key-value file, or checks the Redis URL, if any).
    pub fn build(self) -> anyhow::Result<Host> {
        let kv: Arc<dyn KvBackend> = match (self.kv_backend, self.kv_redis, self.kv_file) {
            (Some(backend), _, _) => backend,
            (None, Some(url), _) => Arc::new(RedisBackend::open(&url)?),
            (None, None, Some(path)) => Arc::new(FileBackend::open(path)?),
            (None, None, None) => Arc::new(MemoryBackend::new()),
        };
        let echo = |prefix: &str| self.echo_logs.then(|| prefix.to_string());
        Ok(Host {
            runtime: self.runtime,
            shared: Arc::new(Shared {
                vars: self.vars,
                kv,
                logs: Arc::new(LogBook::new(self.log_capacity, echo(GUEST_LOG_PREFIX))),
                access: Arc::new(LogBook::new(self.log_capacity, echo(ACCESS_LOG_PREFIX))),
                fake: self.fake,
                outbound: Arc::default(),
            }),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Host

/// Runs the component: one fresh `Store` and instance per request, sharing variables,
/// key-value data, outbound interception and logs. Cheap to clone, `Send + Sync`;
/// concurrent calls run concurrently.
#[derive(Clone)]
pub struct Host {
    runtime: Runtime,
    shared: Arc<Shared>,
}

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
    /// Start configuring a host for `runtime`.
    pub fn builder(runtime: Runtime) -> HostBuilder {
        HostBuilder {
            runtime,
            vars: Variables::new(),
            kv_file: None,
            kv_redis: None,
            kv_backend: None,
            fake: None,
            echo_logs: true,
            log_capacity: DEFAULT_LOG_CAPACITY,
        }
    }

    /// The runtime this host runs.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The key-value backend (to inspect or seed the stores directly).
    pub fn kv(&self) -> Arc<dyn KvBackend> {
        self.shared.kv.clone()
    }

    /// The variables the component sees.
    pub fn variables(&self) -> &Variables {
        &self.shared.vars
    }

    /// The fake platform, if outbound calls are intercepted.
    pub fn fake(&self) -> Option<&FakePlatform> {
        self.shared.fake.as_ref()
    }

    /// The guest's stdout and stderr lines so far (the last 10 000 by default), oldest
    /// first.
    pub fn logs(&self) -> Vec<String> {
        self.shared.logs.snapshot()
    }

    /// Forget the guest log lines kept so far.
    pub fn clear_logs(&self) {
        self.shared.logs.clear();
    }

    /// The host's own access-log lines (`METHOD PATH STATUS DURATION`, image tokens
    /// redacted) of requests served by [`serve`](Self::serve).
    pub fn access_logs(&self) -> Vec<String> {
        self.shared.access.snapshot()
    }

    pub(crate) fn access_log(&self, line: String) {
        self.shared.access.push(line);
    }

    /// Wait for a free instance slot; hold the permit until the store is dropped.
    async fn slot(&self) -> anyhow::Result<OwnedSemaphorePermit> {
        self.runtime
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .context("the runtime is shutting down")
    }

    fn new_store(&self) -> Store<Ctx> {
        let mut wasi = WasiCtx::builder();
        wasi.stdout(GuestOutput::new(self.shared.logs.clone()));
        wasi.stderr(GuestOutput::new(self.shared.logs.clone()));
        let ctx = Ctx {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: Hooks::new(&self.shared),
            shared: self.shared.clone(),
        };
        Store::new(&self.runtime.inner.engine, ctx)
    }

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

    /// Call the component's `autodeploy:gateway/trigger.evaluate` in a fresh instance.
    pub async fn evaluate(
        &self,
        config: &str,
        req: &TriggerRequest,
        now_ms: u64,
    ) -> anyhow::Result<Decision> {
        let pre = self
            .runtime
            .inner
            .trigger
            .as_ref()
            .context("the component does not export autodeploy:gateway/trigger@0.1.0")?;
        let _slot = self.slot().await?;
        let mut store = self.new_store();
        let instance = wt(pre.instantiate_async(&mut store).await)?;
        let decision = wt(instance
            .autodeploy_gateway_trigger()
            .call_evaluate(&mut store, config, &req.into(), now_ms)
            .await)?;
        Ok(decision.into())
    }
}

/// Make the request look like one a server received: absolute URI with scheme `http`
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

// ---------------------------------------------------------------------------------------
// fermyon:spin/variables@2.0.0

impl variables::Host for Ctx {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        Ok(self.shared.vars.get(&name).map_err(|e| match e {
            VarError::InvalidName(m) => variables::Error::InvalidName(m),
            VarError::Undefined(n) => variables::Error::Undefined(n),
        }))
    }
}

// ---------------------------------------------------------------------------------------
// fermyon:spin/key-value@2.0.0

fn spin_err(e: KvError) -> key_value::Error {
    key_value::Error::Other(e.0)
}

impl Ctx {
    fn spin_store(&self, this: &Resource<SpinStore>) -> wasmtime::Result<String> {
        Ok(self.table.get(this)?.name.clone())
    }

    fn bucket(&self, this: &Resource<Bucket>) -> wasmtime::Result<String> {
        Ok(self.table.get(this)?.name.clone())
    }
}

impl key_value::Host for Ctx {}

impl key_value::HostStore for Ctx {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<SpinStore>, key_value::Error>> {
        if label != DEFAULT_STORE {
            return Ok(Err(key_value::Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(SpinStore { name: label })?))
    }

    async fn get(
        &mut self,
        this: Resource<SpinStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, key_value::Error>> {
        let store = self.spin_store(&this)?;
        Ok(self.shared.kv.get(&store, &key).await.map_err(spin_err))
    }

    async fn set(
        &mut self,
        this: Resource<SpinStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let store = self.spin_store(&this)?;
        Ok(self
            .shared
            .kv
            .set(&store, &key, value)
            .await
            .map_err(spin_err))
    }

    async fn delete(
        &mut self,
        this: Resource<SpinStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let store = self.spin_store(&this)?;
        Ok(self.shared.kv.delete(&store, &key).await.map_err(spin_err))
    }

    async fn exists(
        &mut self,
        this: Resource<SpinStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, key_value::Error>> {
        let store = self.spin_store(&this)?;
        Ok(self.shared.kv.exists(&store, &key).await.map_err(spin_err))
    }

    async fn get_keys(
        &mut self,
        this: Resource<SpinStore>,
    ) -> wasmtime::Result<Result<Vec<String>, key_value::Error>> {
        let store = self.spin_store(&this)?;
        Ok(self.shared.kv.keys(&store).await.map_err(spin_err))
    }

    async fn drop(&mut self, this: Resource<SpinStore>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2

fn wkv_err(e: KvError) -> wkv::Error {
    wkv::Error::Other(e.0)
}

impl wkv::Host for Ctx {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, wkv::Error>> {
        if identifier != DEFAULT_STORE {
            return Ok(Err(wkv::Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(Bucket { name: identifier })?))
    }
}

impl wkv::HostBucket for Ctx {
    async fn get(
        &mut self,
        this: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wkv::Error>> {
        let store = self.bucket(&this)?;
        Ok(self.shared.kv.get(&store, &key).await.map_err(wkv_err))
    }

    async fn set(
        &mut self,
        this: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wkv::Error>> {
        let store = self.bucket(&this)?;
        Ok(self
            .shared
            .kv
            .set(&store, &key, value)
            .await
            .map_err(wkv_err))
    }

    async fn delete(
        &mut self,
        this: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), wkv::Error>> {
        let store = self.bucket(&this)?;
        Ok(self.shared.kv.delete(&store, &key).await.map_err(wkv_err))
    }

    async fn exists(
        &mut self,
        this: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, wkv::Error>> {
        let store = self.bucket(&this)?;
        Ok(self.shared.kv.exists(&store, &key).await.map_err(wkv_err))
    }

    async fn list_keys(
        &mut self,
        this: Resource<Bucket>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<wkv::KeyResponse, wkv::Error>> {
        let store = self.bucket(&this)?;
        if cursor.is_some() {
            // Every key comes in the first page, so there is never a cursor to pass back.
            return Ok(Err(wkv::Error::Other(
                "list-keys: cursors are not supported".to_string(),
            )));
        }
        Ok(self
            .shared
            .kv
            .keys(&store)
            .await
            .map(|keys| wkv::KeyResponse { keys, cursor: None })
            .map_err(wkv_err))
    }

    async fn drop(&mut self, this: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl atomics::Host for Ctx {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, wkv::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(self
            .shared
            .kv
            .increment(&store, &key, delta)
            .await
            .map_err(wkv_err))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let cas = self.table.delete(cas)?;
        let outcome = self
            .shared
            .kv
            .compare_and_swap(&cas.store, &cas.key, cas.current, value)
            .await;
        Ok(match outcome {
            Ok(CasOutcome::Swapped) => Ok(()),
            Ok(CasOutcome::Conflict(current)) => {
                let retry = self.table.push(Cas {
                    store: cas.store,
                    key: cas.key,
                    current,
                })?;
                Err(atomics::CasError::CasFailed(retry))
            }
            Err(e) => Err(atomics::CasError::StoreError(wkv_err(e))),
        })
    }
}

impl atomics::HostCas for Ctx {
    async fn new(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, wkv::Error>> {
        let store = self.bucket(&bucket)?;
        let current = match self.shared.kv.get(&store, &key).await {
            Ok(v) => v,
            Err(e) => return Ok(Err(wkv_err(e))),
        };
        Ok(Ok(self.table.push(Cas {
            store,
            key,
            current,
        })?))
    }

    async fn current(
        &mut self,
        this: Resource<Cas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wkv::Error>> {
        Ok(Ok(self.table.get(&this)?.current.clone()))
    }

    async fn drop(&mut self, this: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl batch::Host for Ctx {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, wkv::Error>> {
        let store = self.bucket(&bucket)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match self.shared.kv.get(&store, &key).await {
                Ok(value) => out.push((key, value)),
                Err(e) => return Ok(Err(wkv_err(e))),
            }
        }
        Ok(Ok(out))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), wkv::Error>> {
        let store = self.bucket(&bucket)?;
        for (key, value) in key_values {
            if let Err(e) = self.shared.kv.set(&store, &key, value).await {
                return Ok(Err(wkv_err(e)));
            }
        }
        Ok(Ok(()))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), wkv::Error>> {
        let store = self.bucket(&bucket)?;
        for key in keys {
            if let Err(e) = self.shared.kv.delete(&store, &key).await {
                return Ok(Err(wkv_err(e)));
            }
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn shared(fake: Option<FakePlatform>) -> Arc<Shared> {
        let mut vars = Variables::new();
        vars.set("admin_token", "s3cret");
        Arc::new(Shared {
            vars,
            kv: Arc::new(MemoryBackend::new()),
            logs: Arc::new(LogBook::new(100, None)),
            access: Arc::new(LogBook::new(100, None)),
            fake,
            outbound: Arc::default(),
        })
    }

    fn ctx(shared: &Arc<Shared>) -> Ctx {
        Ctx {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            hooks: Hooks::new(shared),
            shared: shared.clone(),
        }
    }

    #[tokio::test]
    async fn variables_interface() {
        let shared = shared(None);
        let mut c = ctx(&shared);
        use variables::Host as _;
        assert_eq!(
            c.get("admin_token".into()).await.unwrap().unwrap(),
            "s3cret"
        );
        assert!(matches!(
            c.get("platform_url".into()).await.unwrap(),
            Err(variables::Error::Undefined(n)) if n == "platform_url"
        ));
        assert!(matches!(
            c.get("ADMIN_TOKEN".into()).await.unwrap(),
            Err(variables::Error::InvalidName(_))
        ));
    }

    #[tokio::test]
    async fn spin_and_wasi_keyvalue_share_the_default_store() {
        use atomics::{Host as _, HostCas as _};

        let shared = shared(None);
        let mut c = ctx(&shared);

        // Only `default` opens.
        assert!(matches!(
            key_value::HostStore::open(&mut c, "other".into())
                .await
                .unwrap(),
            Err(key_value::Error::NoSuchStore)
        ));
        assert!(matches!(
            wkv::Host::open(&mut c, "other".into()).await.unwrap(),
            Err(wkv::Error::NoSuchStore)
        ));

        let store = key_value::HostStore::open(&mut c, "default".into())
            .await
            .unwrap()
            .unwrap();
        let store2 = Resource::<SpinStore>::new_borrow(store.rep());
        key_value::HostStore::set(&mut c, store2, "k".into(), b"v".to_vec())
            .await
            .unwrap()
            .unwrap();

        let bucket = wkv::Host::open(&mut c, "default".into())
            .await
            .unwrap()
            .unwrap();
        let b = || Resource::<Bucket>::new_borrow(bucket.rep());
        assert_eq!(
            wkv::HostBucket::get(&mut c, b(), "k".into())
                .await
                .unwrap()
                .unwrap(),
            Some(b"v".to_vec())
        );

        // increment through wasi:keyvalue, read through Spin as decimal ASCII.
        assert_eq!(c.increment(b(), "n".into(), 1).await.unwrap().unwrap(), 1);
        assert_eq!(c.increment(b(), "n".into(), 2).await.unwrap().unwrap(), 3);
        let store_rep = store.rep();
        let s = || Resource::<SpinStore>::new_borrow(store_rep);
        assert_eq!(
            key_value::HostStore::get(&mut c, s(), "n".into())
                .await
                .unwrap()
                .unwrap(),
            Some(b"3".to_vec())
        );
        // On a non-integer value: an error.
        assert!(c.increment(b(), "k".into(), 1).await.unwrap().is_err());

        // cas: swap succeeds when unchanged, fails with a fresh handle otherwise.
        let cas = c.new(b(), "c".into()).await.unwrap().unwrap();
        assert_eq!(
            c.current(Resource::new_borrow(cas.rep()))
                .await
                .unwrap()
                .unwrap(),
            None
        );
        let stale = c.new(b(), "c".into()).await.unwrap().unwrap();
        c.swap(cas, b"first".to_vec()).await.unwrap().unwrap();
        let retry = match c.swap(stale, b"second".to_vec()).await.unwrap() {
            Err(atomics::CasError::CasFailed(retry)) => retry,
            other => panic!("expected cas-failed, got {:?}", other.map(|_| ())),
        };
        assert_eq!(
            c.current(Resource::new_borrow(retry.rep()))
                .await
                .unwrap()
                .unwrap(),
            Some(b"first".to_vec())
        );
        c.swap(retry, b"second".to_vec()).await.unwrap().unwrap();
        assert_eq!(
            key_value::HostStore::get(&mut c, s(), "c".into())
                .await
                .unwrap()
                .unwrap(),
            Some(b"second".to_vec())
        );

        // keys, exists, delete and batch agree.
        let mut keys = key_value::HostStore::get_keys(&mut c, s())
            .await
            .unwrap()
            .unwrap();
        keys.sort();
        assert_eq!(keys, ["c", "k", "n"]);
        let listed = wkv::HostBucket::list_keys(&mut c, b(), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(listed.keys.len(), 3);
        assert_eq!(listed.cursor, None);
        batch::Host::delete_many(&mut c, b(), vec!["c".into(), "zz".into()])
            .await
            .unwrap()
            .unwrap();
        assert!(!key_value::HostStore::exists(&mut c, s(), "c".into())
            .await
            .unwrap()
            .unwrap());
        let many = batch::Host::get_many(&mut c, b(), vec!["k".into(), "c".into()])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            many,
            [("k".into(), Some(b"v".to_vec())), ("c".into(), None)]
        );

        key_value::HostStore::drop(&mut c, store).await.unwrap();
        wkv::HostBucket::drop(&mut c, bucket).await.unwrap();
        // A dropped handle traps.
        assert!(key_value::HostStore::get(&mut c, s(), "k".into())
            .await
            .is_err());
    }

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
