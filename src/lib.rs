//! autodeploy: continuous-deployment webhooks, verified and decided at the edge.
//!
//! The crate is a plain-Rust core plus a thin component layer. The layers, each using
//! only the ones before it:
//!
//! - [`model`] and [`error`]: the shared vocabulary and the one error type;
//! - `support`: JSON, time, crypto and secrets;
//! - `providers` and `registries`: each git provider and image registry detects,
//!   verifies and parses its own webhooks into one normalised event;
//! - `state`: the key-value store as the core sees it, app records, delivery claims and
//!   the delivery log;
//! - `notify`: the request builders of the calls beyond the deploy call: chat and
//!   webhook notifications, commit statuses;
//! - `gateway`: the HTTP behaviour over a `Host` trait (router, the decision pipeline,
//!   the hook flow, the deploy call, the admin API, the pure `trigger` export);
//! - `spin` (wasm32 only): Spin's HTTP entry, variables, key-value and outbound HTTP
//!   mapped onto the gateway's `Host`, and the `autodeploy:gateway/trigger` export.
//!
//! The public API is what the benchmarks and fuzz targets use.

mod error;
pub mod model;

// The HTTP side is reached from the Spin entry (wasm32) and from the native tests.
#[cfg_attr(not(any(target_arch = "wasm32", test)), allow(dead_code))]
mod gateway;
mod notify;
mod providers;
mod registries;
mod state;
mod support;

#[cfg(target_arch = "wasm32")]
mod spin;

pub use gateway::trigger::{evaluate, Decision};
pub use registries::normalize_image;
pub use registries::tagpattern::TagPattern;
pub use state::app::App;
pub use support::json;
