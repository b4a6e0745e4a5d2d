//! Deploys the admin API asks for: "Deploy now" (`POST /api/apps/{app}/deploy`) and
//! "Redeploy" (`POST /api/apps/{app}/deliveries/{id}/redeploy`), trigger and provider
//! `manual`. Past the request, each is a delivery like a webhook's: the caller's
//! `Idempotency-Key` (else a new id) is claimed, the app's status gates it, the deadline
//! holds, the one deploy call is made, the delivery log records it and the answer is a
//! hook's `{"result", "reason", "app", "delivery"}`.

use serde_json::Value;

use super::checks::delivery_from;
use super::deploy::{build_request, DeployEvent, PlatformConfig};
use super::followup;
use super::hooks::{answer, deploy, end_claim, DeliveryLog, Ended};
use super::outcome;
use super::pipeline::Outcome;
use super::rules::status_gate;
use super::{Host, Request, Response, DEPLOY_DEADLINE_MS};
use crate::error::Error;
use crate::model::{Provider, Trigger};
use crate::providers::Commit;
use crate::state::app::App;
use crate::state::delivery::{self, Claim, Dedupe, Delivery};
use crate::state::log::{self, Ring};
use crate::state::Kv;

/// The longest branch name and commit id a "Deploy now" body may name.
const MAX_NAME: usize = 255;

/// `POST /api/apps/{app}/deploy`: a deploy now. The body is empty or
/// `{"branch" or "tag", "commit"}` (all optional; `commit` an id, or `{"id", "message",
/// "author"}`). Without a branch or a tag, the branch is the app's git branch when that
/// is a name, none when it is a pattern; the repository is the app's.
pub(super) fn deploy_now(
    host: &dyn Host,
    req: &Request,
    kv: &dyn Kv,
    app: &App,
    body: &[u8],
    started: u64,
) -> Result<Response, Error> {
    let Asked {
        branch,
        tag,
        commit,
    } = parse_body(body)?;
    let branch = match (&branch, &tag) {
        (None, None) => Some(app.git.branch.clone())
            .filter(|b| !b.is_empty() && crate::support::glob::is_literal(b)),
        _ => branch,
    };
    let kept = serde_json::json!({
        "repository": app.git.repo,
        "branch": branch,
        "tag": tag,
        "commit": commit.map(|c| serde_json::json!({
            "id": c.id, "message": c.message, "author": c.author,
        })),
        "image": null,
    });
    Ok(run(host, req, kv, app, &kept, started))
}

/// `POST /api/apps/{app}/deliveries/{id}/redeploy`: what the delivery `id` deployed,
/// deployed again as a new delivery. Only a deployed delivery still in the log qualifies.
pub(super) fn redeploy(
    host: &dyn Host,
    req: &Request,
    kv: &dyn Kv,
    app: &App,
    id: &str,
    started: u64,
) -> Result<Response, Error> {
    let entries = log::read(kv, &app.name, Ring::Main)?;
    let kept = entries
        .into_iter()
        .find(|e| e.id.as_deref() == Some(id) && e.result == "deployed")
        .and_then(|e| e.event)
        .ok_or(Error::DeliveryNotFound)?;
    Ok(run(host, req, kv, app, &kept, started))
}

/// What a "Deploy now" asks for.
#[derive(Default)]
struct Asked {
    branch: Option<String>,
    tag: Option<String>,
    commit: Option<Commit>,
}

/// The body of a "Deploy now": nothing, or an object with `branch` or `tag`, and
/// `commit`.
fn parse_body(body: &[u8]) -> Result<Asked, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Asked::default());
    }
    let value = crate::support::json::parse(body)
        .map_err(|e| Error::invalid(crate::error::describe_json_error(&e)))?;
    let object = value
        .as_object()
        .ok_or_else(|| Error::invalid("the body must be a JSON object"))?;
    if let Some(unknown) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "branch" | "tag" | "commit"))
    {
        return Err(Error::field(
            unknown.as_str(),
            "unknown member: use branch or tag, and commit",
        ));
    }
    let name = |field: &str, v: &Value| -> Result<String, Error> {
        match v.as_str() {
            Some(s) if !s.is_empty() && s.len() <= MAX_NAME && !s.chars().any(char::is_control) => {
                Ok(s.to_string())
            }
            _ => Err(Error::field(
                field,
                format!("must be a non-empty string of at most {MAX_NAME} bytes"),
            )),
        }
    };
    let optional = |field: &str| match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => name(field, v).map(Some),
    };
    let (branch, tag) = (optional("branch")?, optional("tag")?);
    if branch.is_some() && tag.is_some() {
        return Err(Error::field("tag", "name a branch or a tag, not both"));
    }
    let commit = match object.get("commit") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => {
            let text = |k: &str| -> Result<String, Error> {
                match c.get(k) {
                    None | Some(Value::Null) => Ok(String::new()),
                    Some(Value::String(s)) if s.len() <= 64 * 1024 => Ok(s.clone()),
                    Some(_) => Err(Error::field(
                        format!("commit.{k}"),
                        "must be a string of at most 64 KiB",
                    )),
                }
            };
            if let Some(unknown) = c
                .keys()
                .find(|k| !matches!(k.as_str(), "id" | "message" | "author"))
            {
                return Err(Error::field(
                    format!("commit.{unknown}"),
                    "unknown member: use id, message and author",
                ));
            }
            let id = c
                .get("id")
                .ok_or_else(|| Error::field("commit.id", "required"))?;
            Some(Commit {
                id: name("commit.id", id)?,
                message: text("message")?,
                author: text("author")?,
            })
        }
        Some(v) => Some(Commit {
            id: name("commit", v)?,
            message: String::new(),
            author: String::new(),
        }),
    };
    Ok(Asked {
        branch,
        tag,
        commit,
    })
}

/// One manual delivery of `kept` (repository, branch, commit, image): claimed, gated,
/// deployed, logged and answered like a webhook's.
fn run(
    host: &dyn Host,
    req: &Request,
    kv: &dyn Kv,
    app: &App,
    kept: &Value,
    started: u64,
) -> Response {
    let delivery = match req.headers.get_nonempty("idempotency-key") {
        Some(key) => delivery_from(Some(key), b""),
        None => {
            let mut fresh = [0u8; 16];
            host.fill_random(&mut fresh);
            Delivery::new(crate::support::crypto::hex(&fresh), Dedupe::Never)
        }
    };
    let mut event = DeployEvent::manual_from_kept(kept, delivery.id.clone(), started);
    let mut token = None;
    let mut seq = None;
    let ended: Ended = (|| {
        match delivery::claim(kv, &app.name, &delivery, host.now_ms())? {
            Claim::Owned(owned) => token = Some(owned),
            Claim::Duplicate => return Ok(Outcome::Duplicate),
            Claim::InProgress => return Err(Error::InProgress),
        }
        status_gate(app)?;
        let platform = PlatformConfig::new(
            host.var("platform_url").as_deref(),
            host.var("platform_token").as_deref(),
        )?;
        let (url, taken) = outcome::reserve(host, req, kv, app, &delivery.id)?;
        event.status_url = url;
        seq = taken;
        let call = build_request(app, &platform, &event);
        let waited_ms = host.now_ms().saturating_sub(started);
        if waited_ms > DEPLOY_DEADLINE_MS {
            return Err(Error::TooLate { waited_ms });
        }
        deploy(host, app, &call).map(Outcome::Deploy)
    })();
    if let Some(token) = token {
        end_claim(host, kv, &app.name, &delivery, token, &ended);
    }
    let log = DeliveryLog {
        host,
        kv,
        app: &app.name,
        trigger: Trigger::Manual.as_str(),
        started,
    };
    let provider = Some(Provider::Manual.as_str());
    let seq = log.write(
        provider,
        Some(&delivery.id),
        (Ring::Main, seq),
        &ended,
        Some(&event),
    );
    let mut response = answer(&ended, Some(&app.name), Some(&delivery.id), None);
    let ending = followup::Ending {
        trigger: log.trigger,
        provider,
        delivery: Some(&delivery.id),
        seq,
        note: None,
    };
    response.after = Some(followup::for_delivery(
        host,
        req,
        app,
        &ended,
        Some(&event),
        ending,
    ))
    .filter(|f| !f.is_empty());
    response
}
