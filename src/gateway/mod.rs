//! The gateway's HTTP behaviour, written against the [`Host`] trait so that it runs the
//! same in the component (Spin) and in native tests (`fake`).
//!
//! `handle` routes a request: `/healthz`, the admin API (`admin`), or a webhook
//! (`hooks`). A webhook goes through the decision `pipeline` (its `route`, the `checks`
//! and the `rules`), then the `deploy` call; `trigger` is the same pipeline as a pure
//! function, for the WIT export.

mod admin;
mod checks;
mod console;
mod deploy;
pub(crate) mod followup;
mod hooks;
mod manual;
mod outcome;
mod pipeline;
mod route;
mod rules;
pub(crate) mod trigger;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde_json::json;

use crate::error::Error;
use crate::model::{Headers, OutboundRequest};
use crate::state::{Kv, StoreError};

/// How long the platform has to answer in full.
pub const PLATFORM_TIMEOUT: Duration = Duration::from_secs(8);

/// A deploy call starts at most this long after its request arrived, else the request
/// is answered 503 and its claim released. Providers give up on a webhook after about
/// 10 s (GitHub, GitLab); a request that waited longer (a store that hung, then came
/// back) would deploy behind its sender's back, possibly after a newer push.
pub const DEPLOY_DEADLINE_MS: u64 = 5_000;

/// What the gateway needs from its host.
pub trait Host {
    /// The key-value store `default`.
    fn kv(&self) -> Result<&dyn Kv, StoreError>;
    /// A Spin variable; `None` when unset.
    fn var(&self, name: &str) -> Option<String>;
    /// Sends `req` and reads the whole answer within `timeout`: `(status, body)`.
    fn send(&self, req: &OutboundRequest, timeout: Duration) -> Result<(u16, Vec<u8>), String>;
    /// Unix time in milliseconds.
    fn now_ms(&self) -> u64;
    /// Fills `buf` from a CSPRNG.
    fn fill_random(&self, buf: &mut [u8]);
    /// One line of the operator's log (never a secret).
    fn log(&self, line: &str);
}

/// An inbound request, body not yet read.
pub struct Request {
    pub method: String,
    /// Path with query.
    pub path: String,
    pub headers: Headers,
    /// `http` / `https`, when the host knows it.
    pub scheme: Option<String>,
    /// `host[:port]`, when the host knows it (else the `Host` header is used).
    pub authority: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    Io(String),
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Calls to make once the response has gone out ([`followup::run`]).
    pub after: Option<followup::Followup>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(value).expect("JSON values serialise"),
            after: None,
        }
    }

    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            after: None,
        }
    }
}

/// Reads the body up to `limit` bytes (more → `TooLarge`, without reading the rest).
pub type ReadBody<'a> = &'a mut dyn FnMut(usize) -> Result<Vec<u8>, BodyError>;

/// Handles one request.
pub fn handle(host: &dyn Host, req: &Request, read_body: ReadBody<'_>) -> Response {
    let path = req.path.split('?').next().unwrap_or_default();
    if path == "/healthz" {
        return Response::json(200, &json!({"status": "ok"}));
    }
    if path == "/api" || path.starts_with("/api/") {
        return admin::handle(host, req, path, read_body);
    }
    if let Some(parts) = outcome::route(path) {
        return outcome::handle(host, req, read_body, parts);
    }
    if path.starts_with("/hooks/") {
        return hooks::handle(host, req, read_body);
    }
    if let Some(response) = console::handle(req, path) {
        return response;
    }
    Response::json(
        404,
        &json!({"result": "rejected", "reason": "not found", "app": null, "delivery": null}),
    )
}

/// The body within `limit`: the declared length is checked first, then the bytes read.
fn read_limited(req: &Request, limit: usize, read_body: ReadBody<'_>) -> Result<Vec<u8>, Error> {
    let declared = req
        .headers
        .get("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::PayloadTooLarge { limit });
    }
    read_body(limit).map_err(|e| match e {
        BodyError::TooLarge => Error::PayloadTooLarge { limit },
        BodyError::Io(why) => Error::BadPayload(format!("could not read the body: {why}")),
    })
}

/// The base URL of webhook URLs: `public_url`, else the request's scheme and host.
fn public_base(host: &dyn Host, req: &Request) -> String {
    if let Some(url) = host.var("public_url").filter(|u| !u.trim().is_empty()) {
        return url.trim().trim_end_matches('/').to_string();
    }
    let scheme = req.scheme.as_deref().unwrap_or("http");
    let authority = req
        .authority
        .as_deref()
        .filter(|a| !a.is_empty())
        .or_else(|| req.headers.get("host"))
        .unwrap_or("localhost");
    format!("{scheme}://{authority}")
}
