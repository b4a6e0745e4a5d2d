//! End-to-end tests: the real release component (`make component`) in runtime-host, with
//! a fake deploy platform. One binary, so wasmtime compiles the component once.

mod admin;
mod api;
mod git_providers;
mod github;
mod images;
mod lifecycle;
mod rainbond;
mod redis;
mod support;
mod world;
