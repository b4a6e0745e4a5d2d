//! The platform's report of how a deploy ended: `POST {status_url}` with
//! `{"state": "building|succeeded|failed", "url", "description"}`.
//!
//! A `status_url` is a capability for one delivery, so a platform can report without the
//! admin token: `{base}/hooks/{app}/status/{seq}/{token}`, where `seq` numbers the
//! delivery's entry in the app's delivery log (taken before the deploy call) and `token`
//! is an HMAC-SHA256 of the app, `seq` and the delivery id under a key derived from the
//! `admin_token` variable. It is valid while the entry is in the log (the app's last 50
//! deliveries); the outcome is written into that entry. `building` may be reported
//! again; `succeeded` and `failed` are final.

use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::{followup, read_limited, Host, ReadBody, Request, Response};
use crate::error::Error;
use crate::state::app::{self, App, DeployTarget};
use crate::state::log::{self, Ring};
use crate::state::Kv;
use crate::support::crypto::{hex, hmac_sha256};

/// The largest report body.
const BODY_LIMIT: usize = 8 * 1024;
/// The longest `url` and `description` kept.
const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 1024;

/// The key that signs status URLs, derived from the admin token (a new admin token makes
/// the outstanding URLs invalid).
fn key(admin_token: &str) -> [u8; 32] {
    hmac_sha256(admin_token.as_bytes(), b"autodeploy status_url v1")
}

/// 128 bits of `HMAC(key, app \n seq \n delivery)`, in hex.
fn token(key: &[u8; 32], app: &str, seq: i64, delivery: &str) -> String {
    let mac = hmac_sha256(key, format!("{app}\n{seq}\n{delivery}").as_bytes());
    hex(&mac[..16])
}

/// The `status_url` of delivery `delivery`, entry `seq` of `app`'s log, under `base`
/// (the gateway's public URL); `None` without an admin token to derive the key from.
fn status_url(host: &dyn Host, base: &str, app: &str, seq: i64, delivery: &str) -> Option<String> {
    let admin = host.var("admin_token").filter(|t| !t.is_empty())?;
    let token = token(&key(&admin), app, seq, delivery);
    Some(format!("{base}/hooks/{app}/status/{seq}/{token}"))
}

/// For a deploy to the generic target: takes the delivery's log entry number and
/// answers its `status_url` with it. Rainbond reports nothing back: none.
pub(super) fn reserve(
    host: &dyn Host,
    req: &Request,
    kv: &dyn Kv,
    app: &App,
    delivery: &str,
) -> Result<(Option<String>, Option<i64>), Error> {
    if !matches!(app.deploy.target, DeployTarget::Generic { .. }) {
        return Ok((None, None));
    }
    let seq = log::reserve(kv, &app.name, Ring::Main)?;
    let base = super::public_base(host, req);
    let url = status_url(host, &base, &app.name, seq, delivery);
    Ok((url, Some(seq)))
}

/// `/hooks/{app}/status/{seq}/{token}` → its parts.
pub(super) fn route(path: &str) -> Option<(&str, &str, &str)> {
    let rest = path.strip_prefix("/hooks/")?;
    let mut parts = rest.split('/');
    let (app, status, seq, token) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (status == "status" && parts.next().is_none()).then_some((app, seq, token))
}

/// What a report asks to record.
struct Report {
    state: &'static str,
    url: Option<String>,
    description: Option<String>,
}

fn parse_report(body: &[u8]) -> Result<Report, Error> {
    let value = crate::support::json::parse(body)
        .map_err(|e| Error::invalid(crate::error::describe_json_error(&e)))?;
    let object = value
        .as_object()
        .ok_or_else(|| Error::invalid("the body must be a JSON object"))?;
    let state = match object.get("state").and_then(Value::as_str) {
        Some("building") => "building",
        Some("succeeded") => "succeeded",
        Some("failed") => "failed",
        _ => {
            return Err(Error::field(
                "state",
                "must be \"building\", \"succeeded\" or \"failed\"",
            ))
        }
    };
    let text = |k: &str| match object.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::field(k, "must be a string")),
    };
    let url = text("url")?.filter(|u| !u.is_empty());
    if let Some(u) = &url {
        let web = u.starts_with("https://") || u.starts_with("http://");
        if !web || u.len() > MAX_URL || u.chars().any(|c| c.is_control() || c == ' ') {
            return Err(Error::field(
                "url",
                "must be an http:// or https:// URL of at most 2048 characters",
            ));
        }
    }
    let description = text("description")?
        .filter(|d| !d.is_empty())
        .map(|d| crate::support::text::cut(&d, MAX_DESCRIPTION).to_string());
    Ok(Report {
        state,
        url,
        description,
    })
}

/// An answer in the hooks' shape; like theirs, a 404 or 405 names no app.
fn answer(status: u16, result: &str, reason: &str, app: &str, delivery: Option<&str>) -> Response {
    let app = (status != 404 && status != 405).then_some(app);
    Response::json(
        status,
        &json!({"result": result, "reason": reason, "app": app, "delivery": delivery}),
    )
}

/// Handles `POST /hooks/{app}/status/{seq}/{token}`.
pub(super) fn handle(
    host: &dyn Host,
    req: &Request,
    read_body: ReadBody<'_>,
    (app, seq, token): (&str, &str, &str),
) -> Response {
    let unknown = || answer(404, "rejected", "unknown status URL", app, None);
    if req.method != "POST" {
        let mut r = answer(405, "rejected", "method not allowed: use POST", app, None);
        r.headers.push(("allow".into(), "POST".into()));
        return r;
    }
    let Ok(seq) = seq.parse::<i64>() else {
        return unknown();
    };
    if !crate::state::app::valid_app_name(app) {
        return unknown();
    }
    let Some(admin) = host.var("admin_token").filter(|t| !t.is_empty()) else {
        return unknown();
    };
    let report = match read_limited(req, BODY_LIMIT, read_body).and_then(|b| parse_report(&b)) {
        Ok(r) => r,
        Err(e) => {
            // A bad report names its field, as the admin API's errors do.
            return Response::json(
                e.status(),
                &json!({"result": e.result(), "reason": e.reason(), "app": app,
                        "delivery": null, "field": e.field_name()}),
            );
        }
    };
    let kv = match host.kv() {
        Ok(kv) => kv,
        Err(e) => return store_down(host, app, &e.0),
    };
    match record(host, req, kv, &key(&admin), (app, seq, token), &report) {
        Ok(done) => done,
        Err(e) => store_down(host, app, &e.0),
    }
}

fn store_down(host: &dyn Host, app: &str, detail: &str) -> Response {
    host.log(&format!(
        "app={app} status report: store unavailable: {detail}"
    ));
    let e = Error::Store(detail.to_string());
    answer(e.status(), e.result(), &e.reason(), app, None)
}

/// Finds entry `seq`, checks the token against its delivery id, and writes the outcome.
fn record(
    host: &dyn Host,
    req: &Request,
    kv: &dyn Kv,
    key: &[u8; 32],
    (app, seq, given): (&str, i64, &str),
    report: &Report,
) -> Result<Response, crate::state::StoreError> {
    let mut after = None;
    let (status, result, reason, id): (u16, &str, String, Option<String>) =
        match find(kv, key, app, seq, given)? {
            Found::Entry(raw, mut entry, id, found) => {
                let before = entry
                    .get("outcome")
                    .and_then(|o| o.get("state"))
                    .and_then(Value::as_str)
                    .filter(|s| *s != "building");
                match before {
                    Some(last) if last == report.state => (
                        200,
                        "unchanged",
                        format!("the outcome is already {last}"),
                        Some(id),
                    ),
                    Some(last) => (
                        409,
                        "rejected",
                        format!("the outcome is final: {last}"),
                        Some(id),
                    ),
                    None => {
                        entry["outcome"] = json!({
                            "state": report.state,
                            "url": report.url,
                            "description": report.description,
                            "at": crate::support::time::rfc3339(host.now_ms()),
                        });
                        let bytes = serde_json::to_vec(&entry).expect("entries serialise");
                        let slot = log::slot_key(app, Ring::Main, seq);
                        if kv.swap(&slot, Some(&raw), &bytes)? {
                            host.log(&format!(
                                "outcome app={app} delivery={id} state={}",
                                report.state
                            ));
                            // A final outcome is told to the channels and the forge,
                            // once the platform has its answer.
                            after = Some(followup::for_outcome(host, req, &found, seq, &entry))
                                .filter(|f| !f.is_empty());
                            (
                                200,
                                "recorded",
                                format!("the outcome is {}", report.state),
                                Some(id),
                            )
                        } else {
                            // Another report, or the next delivery, wrote the slot first.
                            (
                                409,
                                "in_progress",
                                "the entry changed meanwhile: retry".into(),
                                None,
                            )
                        }
                    }
                }
            }
            Found::Expired => (
                410,
                "rejected",
                "expired status URL: the delivery is no longer among the app's last 50".into(),
                None,
            ),
            Found::NotYet => (
                409,
                "in_progress",
                "the deploy call has not been answered yet: retry shortly".into(),
                None,
            ),
            Found::Unknown => (404, "rejected", "unknown status URL".into(), None),
        };
    let mut response = answer(status, result, &reason, app, id.as_deref());
    response.after = after;
    if result == "in_progress" {
        response.headers.push(("retry-after".into(), "1".into()));
    }
    Ok(response)
}

/// What a status URL points at.
enum Found {
    /// The delivery's entry: its stored bytes, parsed, its id, and the app.
    Entry(Vec<u8>, Value, String, Box<App>),
    /// The entry has been overwritten by a newer delivery's.
    Expired,
    /// The number was taken but the entry is not written yet (the call is under way).
    NotYet,
    /// No such app or entry, or the token is not the entry's.
    Unknown,
}

fn find(
    kv: &dyn Kv,
    key: &[u8; 32],
    app: &str,
    seq: i64,
    given: &str,
) -> Result<Found, crate::state::StoreError> {
    let found = match app::load(kv, app)? {
        Some(found) if seq > 0 => found,
        _ => return Ok(Found::Unknown),
    };
    let Some(raw) = kv.get(&log::slot_key(app, Ring::Main, seq))? else {
        return not_written(kv, app, seq);
    };
    let Some(entry) = crate::support::json::parse(&raw)
        .ok()
        .filter(Value::is_object)
    else {
        return Ok(Found::Unknown);
    };
    let held = entry.get("seq").and_then(Value::as_i64).unwrap_or(0);
    if held > seq {
        return Ok(Found::Expired);
    }
    if held < seq {
        return not_written(kv, app, seq);
    }
    let id = entry.get("id").and_then(Value::as_str).unwrap_or_default();
    let want = token(key, app, seq, id);
    if id.is_empty() || !bool::from(want.as_bytes().ct_eq(given.as_bytes())) {
        return Ok(Found::Unknown);
    }
    let id = id.to_string();
    Ok(Found::Entry(raw, entry, id, Box::new(found)))
}

/// A number handed out but not written yet is a deploy under way; past the counter, none.
fn not_written(kv: &dyn Kv, app: &str, seq: i64) -> Result<Found, crate::state::StoreError> {
    Ok(if seq <= log::last_seq(kv, app, Ring::Main)? {
        Found::NotYet
    } else {
        Found::Unknown
    })
}
