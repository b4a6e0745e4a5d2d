//! The gateway's HTTP behaviour, written against the [`Host`] trait so that it runs the
//! same in the component (Spin) and in native tests.

use std::time::Duration;

use serde_json::json;

use crate::app::App;
use crate::delivery::{self, Claim};
use crate::deliverylog::{self, Entry};
use crate::deploy::{build_request, interpret_answer, PlatformConfig};
use crate::error::Error;
use crate::hook::{self, Delivery, HookKind, Verdict};
use crate::model::{Headers, OutboundRequest};
use crate::store::{app_key, Kv, StoreError};

/// How long the platform has to answer in full.
pub const PLATFORM_TIMEOUT: Duration = Duration::from_secs(8);

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
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(value).expect("JSON values serialise"),
        }
    }

    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
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
        return crate::admin::handle(host, req, path, read_body);
    }
    if path.starts_with("/hooks/") {
        return handle_hook(host, req, read_body);
    }
    Response::json(
        404,
        &json!({"result": "rejected", "reason": "not found", "app": null, "delivery": null}),
    )
}

/// The body within `limit`: the declared length is checked first, then the bytes read.
pub(crate) fn read_limited(
    req: &Request,
    limit: usize,
    read_body: ReadBody<'_>,
) -> Result<Vec<u8>, Error> {
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
pub(crate) fn public_base(host: &dyn Host, req: &Request) -> String {
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

pub(crate) fn load_app(kv: &dyn Kv, name: &str) -> Result<Option<App>, StoreError> {
    match kv.get(&app_key(name))? {
        None => Ok(None),
        Some(raw) => crate::json::parse(&raw)
            .map_err(|e| e.to_string())
            .and_then(|v| App::from_stored(name, &v).map_err(|e| e.error))
            .map(Some)
            .map_err(|e| StoreError(format!("stored app {name} is unreadable: {e}"))),
    }
}

/// How a delivery ended.
enum Outcome {
    Deployed {
        platform_status: u16,
    },
    Pong,
    Ignored(String),
    Duplicate,
    Failed {
        error: Error,
        platform_status: Option<u16>,
    },
}

impl Outcome {
    fn status(&self) -> u16 {
        match self {
            Outcome::Deployed { .. } => 202,
            Outcome::Pong | Outcome::Ignored(_) | Outcome::Duplicate => 200,
            Outcome::Failed { error, .. } => error.status(),
        }
    }

    fn result(&self) -> &'static str {
        match self {
            Outcome::Deployed { .. } => "deployed",
            Outcome::Pong => "pong",
            Outcome::Ignored(_) => "ignored",
            Outcome::Duplicate => "duplicate",
            Outcome::Failed { error, .. } => error.result(),
        }
    }

    fn reason(&self) -> String {
        match self {
            Outcome::Deployed { platform_status } => {
                format!("the platform accepted the deploy (HTTP {platform_status})")
            }
            Outcome::Pong => "pong".into(),
            Outcome::Ignored(why) => why.clone(),
            Outcome::Duplicate => "this delivery was already deployed".into(),
            Outcome::Failed { error, .. } => error.reason(),
        }
    }

    fn platform_status(&self) -> Option<u16> {
        match self {
            Outcome::Deployed { platform_status } => Some(*platform_status),
            Outcome::Failed {
                platform_status, ..
            } => *platform_status,
            _ => None,
        }
    }
}

fn hook_answer(
    status: u16,
    result: &str,
    reason: &str,
    app: Option<&str>,
    delivery: Option<&str>,
) -> Response {
    Response::json(
        status,
        &json!({"result": result, "reason": reason, "app": app, "delivery": delivery}),
    )
}

fn reject(error: &Error, app: Option<&str>) -> Response {
    hook_answer(error.status(), error.result(), &error.reason(), app, None)
}

fn handle_hook(host: &dyn Host, req: &Request, read_body: ReadBody<'_>) -> Response {
    let started = host.now_ms();
    if req.method != "POST" {
        let mut r = reject(&Error::MethodNotAllowed, None);
        r.headers.push(("allow".into(), "POST".into()));
        return r;
    }
    let Some(route) = hook::parse_route(&req.path) else {
        return reject(&Error::NotFound, None);
    };
    let kv = match host.kv() {
        Ok(kv) => kv,
        Err(e) => return store_down(host, e, route.app),
    };
    let app = match load_app(kv, route.app) {
        Ok(Some(app)) => app,
        Ok(None) => return reject(&Error::NotFound, None),
        Err(e) => return store_down(host, e, route.app),
    };
    let trigger = route.kind.trigger();
    let mut log = DeliveryLog {
        host,
        kv,
        app: &app.name,
        trigger: trigger.as_str(),
        started,
    };

    if let HookKind::Image { token } = route.kind {
        if !app.image.token.matches(token.as_bytes()) {
            let error = Error::NotFound;
            log.write(
                None,
                None,
                &Outcome::Failed {
                    error: error.clone(),
                    platform_status: None,
                },
            );
            return reject(&error, None);
        }
    }
    let body = match read_limited(req, route.kind.body_limit(), read_body) {
        Ok(body) => body,
        Err(error) => {
            let response = reject(&error, Some(&app.name));
            log.write(
                None,
                None,
                &Outcome::Failed {
                    error,
                    platform_status: None,
                },
            );
            return response;
        }
    };

    let mut fresh = [0u8; 16];
    host.fill_random(&mut fresh);
    let fresh_id = crate::crypto::hex(&fresh);
    let eval = hook::evaluate_hook(&app, &route.kind, &req.headers, &body, started, &fresh_id);
    let provider = eval.provider.map(|p| p.as_str());
    let delivery = eval.delivery;
    let outcome = match eval.verdict {
        Err(error) => Outcome::Failed {
            error,
            platform_status: None,
        },
        Ok(Verdict::Pong) => Outcome::Pong,
        Ok(Verdict::Ignore(why)) => Outcome::Ignored(why),
        Ok(Verdict::Deploy(event)) => {
            let delivery = delivery.as_ref().expect("a deploy verdict has a delivery");
            deploy(host, kv, &app, delivery, &event)
        }
    };
    let id = delivery.as_ref().map(|d| d.id.as_str());
    log.write(provider, id, &outcome);
    hook_answer(
        outcome.status(),
        outcome.result(),
        &outcome.reason(),
        Some(&app.name),
        id,
    )
}

/// De-duplicate, check the status, call the platform once, record the result.
fn deploy(
    host: &dyn Host,
    kv: &dyn Kv,
    app: &App,
    delivery: &Delivery,
    event: &crate::deploy::DeployEvent,
) -> Outcome {
    let failed = |error: Error| Outcome::Failed {
        error,
        platform_status: None,
    };
    let token = match delivery::claim(kv, &app.name, delivery, event.received_at_ms) {
        Ok(Claim::Owned(token)) => token,
        Ok(Claim::Duplicate) => return Outcome::Duplicate,
        Ok(Claim::InProgress) => return failed(Error::InProgress),
        Err(e) => return failed(e.into()),
    };
    let attempt = (|| {
        hook::status_gate(app).map_err(failed)?;
        let platform = PlatformConfig::new(
            host.var("platform_url").as_deref(),
            host.var("platform_token").as_deref(),
        )
        .map_err(failed)?;
        let request = build_request(app, &platform, event);
        let (status, body) = host
            .send(&request, PLATFORM_TIMEOUT)
            .map_err(|why| failed(Error::Platform(why)))?;
        interpret_answer(&app.deploy.target, status, &body).map_err(|error| Outcome::Failed {
            error,
            platform_status: Some(status),
        })?;
        Ok(status)
    })();
    match attempt {
        Ok(status) => {
            if let Err(e) = delivery::finish(kv, &app.name, delivery, host.now_ms(), token) {
                // The deploy happened: answering 2xx is right, and the platform got the
                // Idempotency-Key should the provider retry anyway.
                host.log(&format!(
                    "app={} delivery={} deployed, but {}",
                    app.name, delivery.id, e.0
                ));
            }
            Outcome::Deployed {
                platform_status: status,
            }
        }
        Err(failed) => {
            if let Err(e) = delivery::release(kv, token) {
                host.log(&format!(
                    "app={} delivery={} claim not released: {}",
                    app.name, delivery.id, e.0
                ));
            }
            failed
        }
    }
}

fn store_down(host: &dyn Host, e: StoreError, app: &str) -> Response {
    host.log(&format!("app={app} store unavailable: {}", e.0));
    reject(&Error::Store(e.0), Some(app))
}

/// Writes the delivery log entry and the operator's log line.
struct DeliveryLog<'a> {
    host: &'a dyn Host,
    kv: &'a dyn Kv,
    app: &'a str,
    trigger: &'static str,
    started: u64,
}

impl DeliveryLog<'_> {
    fn write(&mut self, provider: Option<&str>, id: Option<&str>, outcome: &Outcome) {
        let now = self.host.now_ms();
        let detail = match outcome {
            Outcome::Failed { error, .. } => error.detail(),
            other => other.reason(),
        };
        self.host.log(&format!(
            "delivery app={} trigger={} provider={} id={} result={} status={} platform_status={} duration_ms={} reason={:?}",
            self.app,
            self.trigger,
            provider.unwrap_or("-"),
            id.unwrap_or("-"),
            outcome.result(),
            outcome.status(),
            outcome.platform_status().map_or("-".to_string(), |s| s.to_string()),
            now.saturating_sub(self.started),
            detail,
        ));
        let entry = Entry {
            id: id.map(String::from),
            at: crate::time::rfc3339(self.started),
            trigger: self.trigger.into(),
            provider: provider.map(String::from),
            result: outcome.result().into(),
            reason: outcome.reason(),
            platform_status: outcome.platform_status(),
        };
        if let Err(e) = deliverylog::append(self.kv, self.app, entry) {
            self.host.log(&format!(
                "app={} delivery log not written: {}",
                self.app, e.0
            ));
        }
    }
}
