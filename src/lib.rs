//! autodeploy: continuous-deployment webhooks, verified and decided at the edge.
//!
//! The crate is a plain-Rust core (providers, signatures, rules, app records, the
//! deploy call and the whole request flow over the [`service::Host`] trait), plus a thin
//! component layer compiled for `wasm32` only that maps Spin's HTTP, variables and
//! key-value APIs onto it and exports `autodeploy:gateway/trigger`.

pub mod admin;
pub mod app;
pub mod crypto;
pub mod delivery;
pub mod deliverylog;
pub mod deploy;
pub mod error;
pub mod evaluate;
pub mod hook;
pub mod json;
pub mod model;
pub mod providers;
pub mod registries;
pub mod rules;
pub mod secret;
pub mod service;
pub mod store;
pub mod tagpattern;
pub mod time;

#[cfg(target_arch = "wasm32")]
mod component;
