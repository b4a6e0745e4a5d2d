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
//! - [`Server`]: serving over HTTP/1.1 within [`ServerLimits`] (timeouts on heads,
//!   bodies and idle connections; caps on connections, requests in flight and buffered
//!   bytes): a request's body is read whole before it takes a slot.
//!
//! Only the store `default` opens (as with Spin's `key_value_stores = ["default"]`).
//!
//! With a Spin manifest ([`HostBuilder::manifest`], `--manifest`), the host applies its
//! `[variables]` defaults and enforces its component's `allowed_outbound_hosts` as Spin
//! does ([`AllowList`]): a call elsewhere fails with `HttpRequestDenied`, and the host's log
//! ([`Host::access_logs`]) names the origin denied. Without one, every origin is allowed.
//!
//! The crate, by concern: `runtime.rs` (engine, pooling allocator, compiled component),
//! `builder.rs` ([`HostBuilder`]), `host.rs` ([`Host`]: one fresh instance per call),
//! `incoming.rs` (the incoming handler on one request), `server.rs` (serving over HTTP,
//! the access log), `limits.rs` ([`ServerLimits`]), `conn.rs` (a connection's head and
//! idle timers, shedding), `body.rs` (reading a body whole before it takes a slot), `ctx.rs` (what one instance reaches; the outbound hooks), `vars.rs`
//! (Spin variables), `manifest.rs` ([`Manifest`]: what `spin.toml` says), `allow.rs`
//! (`allowed_outbound_hosts`), `kv_bindings.rs` (Spin key-value and `wasi:keyvalue`), `kv/` (one
//! file per store backend), `outbound.rs` (kept-alive outbound connections), `fake.rs`
//! ([`FakePlatform`]), `demo.rs` ([`DemoPlatform`]), `logs.rs`, `trigger.rs` (the
//! `trigger` export's types) and `bindings.rs` (the generated WIT bindings).
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

pub mod allow;
mod bindings;
mod body;
mod builder;
mod conn;
mod ctx;
mod demo;
mod fake;
mod host;
mod incoming;
pub mod kv;
mod kv_bindings;
mod limits;
mod logs;
pub mod manifest;
mod outbound;
mod runtime;
mod server;
mod trigger;
pub mod vars;

pub use allow::AllowList;
pub use builder::HostBuilder;
pub use demo::DemoPlatform;
pub use fake::{FakePlatform, RecordedRequest};
pub use host::Host;
pub use kv::{FileBackend, KvBackend, MemoryBackend, RedisBackend, REDIS_TIMEOUT};
pub use limits::{ServerLimits, MAX_BODY_BYTES};
pub use logs::{ACCESS_LOG_PREFIX, DEFAULT_LOG_CAPACITY, GUEST_LOG_PREFIX};
pub use manifest::Manifest;
pub use runtime::{Runtime, COMPONENT_RELATIVE_PATH, MAX_INSTANCES};
pub use server::{access_line, redact_path, Server, MAX_LOGGED_PATH, ROUTES};
pub use trigger::{is_secret_header, Decision, OutboundRequest, TriggerRequest};
pub use vars::Variables;
