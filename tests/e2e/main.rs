//! End-to-end tests: the real release component (`make component`) in runtime-host, with
//! a fake deploy platform (or a real one on loopback), and runtime-host's own checks with
//! the component (`runtime_host.rs`). One binary, so wasmtime compiles the component once
//! per run: every test takes the one `Runtime` of `support::runtime()`.

mod admin;
mod api;
mod console;
mod git_providers;
mod github;
mod images;
mod lifecycle;
mod notify;
mod outcome;
mod rainbond;
mod redis;
mod rules;
mod runtime_host;
mod slow_clients;
mod slow_store;
mod support;
mod world;
