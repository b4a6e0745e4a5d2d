//! [`Host`]: one fresh `Store` and instance per call, over what the host shares
//! (variables, key-value data, outbound interception, logs). Incoming HTTP requests are
//! in `incoming.rs`, serving over a socket in `server.rs`.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::ResourceTable;
use wasmtime::Store;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;

use crate::allow::AllowList;
use crate::ctx::{Ctx, Hooks, Shared};
use crate::fake::FakePlatform;
use crate::kv::KvBackend;
use crate::logs::GuestOutput;
use crate::runtime::{wt, Runtime};
use crate::trigger::{Decision, TriggerRequest};
use crate::vars::Variables;

/// Runs the component: one fresh `Store` and instance per request, sharing variables,
/// key-value data, outbound interception and logs. Cheap to clone, `Send + Sync`;
/// concurrent calls run concurrently.
#[derive(Clone)]
pub struct Host {
    pub(crate) runtime: Runtime,
    pub(crate) shared: Arc<Shared>,
}

impl Host {
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

    /// The origins the component may call: the manifest's `allowed_outbound_hosts`, or
    /// every origin without a manifest (see [`HostBuilder::manifest`]).
    ///
    /// [`HostBuilder::manifest`]: crate::HostBuilder::manifest
    pub fn allowed_outbound_hosts(&self) -> &AllowList {
        &self.shared.allow
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

    /// The host's own log lines: access-log lines (`METHOD PATH STATUS DURATION`, image
    /// tokens redacted) of requests served by [`serve`](Self::serve), and a line for each
    /// outbound call denied by `allowed_outbound_hosts` (`outbound request to ORIGIN
    /// denied: …`, the origin without path or query).
    pub fn access_logs(&self) -> Vec<String> {
        self.shared.access.snapshot()
    }

    pub(crate) fn access_log(&self, line: String) {
        self.shared.access.push(line);
    }

    /// Wait for a free instance slot; hold the permit until the store is dropped.
    pub(crate) async fn slot(&self) -> anyhow::Result<OwnedSemaphorePermit> {
        self.runtime
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .context("the runtime is shutting down")
    }

    pub(crate) fn new_store(&self) -> Store<Ctx> {
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
