//! `autodeploy-host`: the reference wasmtime host of the autodeploy component.
//!
//! It serves the component like `spin up` would — wasi 0.2, `wasi:http` (incoming and
//! outgoing), Spin variables (`fermyon:spin/variables@2.0.0`) and the Spin key-value
//! store (`fermyon:spin/key-value@2.0.0`, and `wasi:keyvalue` store/atomics/batch
//! `@0.2.0-draft2` over the same data) — and lets tests drive the real component with no
//! network.
//!
//! - [`Runtime`]: engine + compiled component + pre-instantiation, built once per
//!   process (compiling takes a while: keep it in a `OnceLock`).
//! - [`Host`]: variables, key-value backend ([`MemoryBackend`] by default,
//!   [`FileBackend`] with [`HostBuilder::kv_file`], [`RedisBackend`] shared by several
//!   hosts with [`HostBuilder::kv_redis`]), outbound HTTP (real, over connections kept
//!   alive between calls to the same platform, or a [`FakePlatform`]) and the guest's
//!   log lines. Every request runs in a fresh
//!   instance, as on Spin; concurrent requests run concurrently. Instances come from
//!   wasmtime's pooling allocator ([`MAX_INSTANCES`] slots per [`Runtime`]); a request
//!   beyond that waits for a slot.
//!
//! Only the store `default` opens (as with Spin's `key_value_stores = ["default"]`).
//!
//! ```no_run
//! use autodeploy_host::{FakePlatform, Host, Runtime};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let runtime = Runtime::load(Runtime::default_component_path())?;
//! let platform = FakePlatform::new();
//! platform.set_status(202);
//! let host = Host::builder(runtime)
//!     .var("admin_token", "admin-secret")
//!     .var("platform_url", "https://console.example.com")
//!     .fake_platform(platform.clone())
//!     .build()?;
//!
//! let response = host
//!     .send(
//!         http::Request::get("/healthz")
//!             .header("host", "hooks.example.com")
//!             .body(Vec::new())?,
//!     )
//!     .await?;
//! assert_eq!(response.status(), 200);
//! println!("guest said: {:?}", host.logs());
//! println!("deploy calls: {:?}", platform.requests());
//!
//! // Or serve it over HTTP (port 0 picks a free port).
//! let server = host.bind("127.0.0.1:0".parse()?).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.run().await?;
//! # Ok(())
//! # }
//! ```

mod bindings;
mod fake;
mod host;
pub mod kv;
mod logs;
mod outbound;
mod redis;
mod server;
mod trigger;
pub mod vars;

pub use crate::redis::{RedisBackend, DEFAULT_TIMEOUT as REDIS_TIMEOUT};
pub use fake::{FakePlatform, RecordedRequest};
pub use host::{
    Host, HostBuilder, Runtime, ACCESS_LOG_PREFIX, COMPONENT_RELATIVE_PATH, GUEST_LOG_PREFIX,
    MAX_INSTANCES,
};
pub use kv::{FileBackend, KvBackend, MemoryBackend};
pub use logs::DEFAULT_LOG_CAPACITY;
pub use server::{access_line, redact_path, DemoPlatform, Server, ROUTES};
pub use trigger::{Decision, OutboundRequest, TriggerRequest};
pub use vars::Variables;
