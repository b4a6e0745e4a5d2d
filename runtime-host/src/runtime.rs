//! The runtime: the engine (with its pooling allocator), the compiled component and its
//! pre-instantiation against everything this host provides. Built once per process.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::Semaphore;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings;
use crate::ctx::Ctx;
use crate::logs::ACCESS_LOG_PREFIX;

/// Where `cargo build --target wasm32-wasip2 --release` puts the component, relative to
/// the workspace root.
pub const COMPONENT_RELATIVE_PATH: &str = "target/wasm32-wasip2/release/autodeploy.wasm";

/// A wasmtime result as an `anyhow` one.
pub(crate) fn wt<T>(r: wasmtime::Result<T>) -> anyhow::Result<T> {
    r.map_err(anyhow::Error::from)
}

/// The engine, the compiled component and its pre-instantiation: built once per process
/// and shared (cheap to clone, `Send + Sync`).
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    path: PathBuf,
    pub(crate) engine: Engine,
    /// One permit per instance slot of the engine's pool: a request waits for a slot
    /// instead of failing when every slot is in use.
    pub(crate) slots: Arc<Semaphore>,
    component: Component,
    pub(crate) proxy: ProxyPre<Ctx>,
    pub(crate) trigger: Option<bindings::RuntimeHostPre<Ctx>>,
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
