//! Webhook evaluation: from a request for one app to a verdict, with no I/O.
//!
//! Checks run in the contract's order: method → route → body size → content type →
//! authentication → trigger enabled → payload → rules. What comes after the rules
//! (de-duplication, the app status, the call itself) needs state and lives in `service`;
//! `evaluate` (the WIT export) applies the status gate itself.

use std::borrow::Cow;

use crate::app::App;
use crate::crypto::sha256_hex;
use crate::deploy::DeployEvent;
use crate::error::Error;
use crate::model::{Headers, Provider, Trigger};
use crate::providers::{self, GitEvent, Push};
use crate::rules::{mentions_keyword, parse_ref, repo_matches, GitRef};

/// Body limits, enforced while reading, before any verification.
pub const GIT_BODY_LIMIT: usize = 5 * 1024 * 1024;
pub const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// `/hooks/{app}/git`, `/hooks/{app}/image/{token}`, `/hooks/{app}/api`.
#[derive(Debug, PartialEq, Eq)]
pub struct HookRoute<'a> {
    pub app: &'a str,
    pub kind: HookKind<'a>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum HookKind<'a> {
    Git,
    Image { token: &'a str },
    Api,
}

impl HookKind<'_> {
    pub fn trigger(&self) -> Trigger {
        match self {
            HookKind::Git => Trigger::Git,
            HookKind::Image { .. } => Trigger::Image,
            HookKind::Api => Trigger::Api,
        }
    }

    pub fn body_limit(&self) -> usize {
        match self {
            HookKind::Git => GIT_BODY_LIMIT,
            _ => SMALL_BODY_LIMIT,
        }
    }
}

/// Parses a hook path (query ignored). `None` for anything else, including app names
/// outside `[a-z0-9][a-z0-9-]{0,62}`.
pub fn parse_route(path: &str) -> Option<HookRoute<'_>> {
    let path = path.split('?').next().unwrap_or_default();
    let rest = path.strip_prefix("/hooks/")?;
    let mut parts = rest.split('/');
    let app = parts.next()?;
    if !crate::app::valid_app_name(app) {
        return None;
    }
    let kind = match (parts.next()?, parts.next(), parts.next()) {
        ("git", None, _) => HookKind::Git,
        ("api", None, _) => HookKind::Api,
        ("image", Some(token), None) if !token.is_empty() => HookKind::Image { token },
        _ => return None,
    };
    Some(HookRoute { app, kind })
}

/// How the body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    /// `application/x-www-form-urlencoded` with the JSON in `payload=`.
    Form,
    Empty,
}

/// The 415 check: JSON (`application/json`, `*+json`) or form; no type only for an empty body.
pub fn body_kind(headers: &Headers, body: &[u8]) -> Result<BodyKind, Error> {
    let Some(value) = headers.get("content-type") else {
        return if body.is_empty() {
            Ok(BodyKind::Empty)
        } else {
            Err(Error::UnsupportedMediaType("none".into()))
        };
    };
    let media = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        m if m.starts_with("application/") && m.ends_with("+json") => Ok(BodyKind::Json),
        _ => Err(Error::UnsupportedMediaType(
            media.chars().take(100).collect(),
        )),
    }
}

/// The JSON document inside the body (after authentication: a 400, not a 415).
pub fn json_payload(kind: BodyKind, body: &[u8]) -> Result<Cow<'_, [u8]>, Error> {
    match kind {
        BodyKind::Json => Ok(Cow::Borrowed(body)),
        BodyKind::Empty => Ok(Cow::Borrowed(b"{}")),
        BodyKind::Form => form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| Cow::Owned(v.into_owned().into_bytes()))
            .ok_or_else(|| Error::BadPayload("form body without a payload= field".into())),
    }
}

/// What evaluation decided before any state is consulted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pong,
    Ignore(String),
    Deploy(Box<DeployEvent>),
}

/// A delivery's identity for de-duplication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    /// How long the id is remembered after a deploy: provider ids forever, body hashes
    /// for 10 minutes (a later identical push deploys again), `None` = not de-duplicated.
    pub dedupe: Dedupe,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dedupe {
    Forever,
    BodyHash,
    Never,
}

/// Everything known about one evaluated delivery, for the answer and the log.
#[derive(Debug)]
pub struct Evaluation {
    pub provider: Option<Provider>,
    pub delivery: Option<Delivery>,
    pub verdict: Result<Verdict, Error>,
}

/// Longest delivery id used as given; longer or odd ones are replaced by their hash.
const MAX_ID_LEN: usize = 128;

fn delivery_from(id: Option<&str>, body: &[u8], fresh_id: &str) -> Delivery {
    match id {
        Some(id)
            if id.len() <= MAX_ID_LEN && id.bytes().all(|c| c.is_ascii_graphic() && c != b'/') =>
        {
            Delivery {
                id: id.to_string(),
                dedupe: Dedupe::Forever,
            }
        }
        Some(odd) => Delivery {
            id: sha256_hex(odd.as_bytes()),
            dedupe: Dedupe::Forever,
        },
        None if fresh_id.is_empty() => Delivery {
            id: sha256_hex(body),
            dedupe: Dedupe::BodyHash,
        },
        None => Delivery {
            id: fresh_id.to_string(),
            dedupe: Dedupe::Never,
        },
    }
}

/// Evaluates a hook request for `app` (already routed and size-checked):
/// content type → authentication → enabled → payload → rules.
///
/// `fresh_id` names API deliveries that carry no `Idempotency-Key` (each is new).
pub fn evaluate_hook(
    app: &App,
    kind: &HookKind<'_>,
    headers: &Headers,
    body: &[u8],
    now_ms: u64,
    fresh_id: &str,
) -> Evaluation {
    let mut eval = Evaluation {
        provider: None,
        delivery: None,
        verdict: Err(Error::NotFound),
    };
    eval.verdict = (|| {
        let body_kind = body_kind(headers, body)?;
        match kind {
            HookKind::Git => {
                let provider = providers::detect(headers)?;
                eval.provider = Some(provider.provider());
                let delivery = delivery_from(provider.delivery_id(headers).as_deref(), body, "");
                eval.delivery = Some(delivery.clone());
                provider.verify(headers, body, &app.git.secret, now_ms)?;
                if !app.git.enabled {
                    return Err(Error::TriggerDisabled(Trigger::Git));
                }
                let json = json_payload(body_kind, body)?;
                match provider.parse(headers, &json)? {
                    GitEvent::Ping => Ok(Verdict::Pong),
                    GitEvent::Other(event) => Ok(Verdict::Ignore(format!(
                        "{event:?} events do not deploy, only pushes"
                    ))),
                    GitEvent::Push(push) => {
                        Ok(git_rules(app, &push).map_or_else(Verdict::Ignore, |()| {
                            let head = push.head.clone();
                            Verdict::Deploy(Box::new(DeployEvent {
                                trigger: Trigger::Git,
                                provider: provider.provider(),
                                delivery: delivery.id.clone(),
                                repository: Some(push.web_url.clone()),
                                branch: Some(app.git.branch.clone()),
                                commit: head,
                                image: None,
                                received_at_ms: now_ms,
                            }))
                        }))
                    }
                }
            }
            HookKind::Api => {
                eval.provider = Some(Provider::Api);
                let key = headers.get_nonempty("idempotency-key");
                let delivery = delivery_from(key, body, fresh_id);
                eval.delivery = Some(delivery.clone());
                let json = json_payload(body_kind, body).ok();
                let given = match headers.bearer() {
                    Some(token) => Some(token.to_string()),
                    None => json.as_deref().and_then(|j| {
                        let v: serde_json::Value = serde_json::from_slice(j).ok()?;
                        v.get("secret_key")?.as_str().map(String::from)
                    }),
                };
                let given = given.ok_or(Error::Unauthorized("missing secret_key"))?;
                if !app.api.secret_key.matches(given.as_bytes()) {
                    return Err(Error::Unauthorized("invalid secret_key"));
                }
                if !app.api.enabled {
                    return Err(Error::TriggerDisabled(Trigger::Api));
                }
                let json = json_payload(body_kind, body)?;
                if serde_json::from_slice::<serde_json::Value>(&json).is_err() {
                    return Err(Error::BadPayload("the body is not JSON".into()));
                }
                Ok(Verdict::Deploy(Box::new(DeployEvent {
                    trigger: Trigger::Api,
                    provider: Provider::Api,
                    delivery: delivery.id.clone(),
                    repository: None,
                    branch: None,
                    commit: None,
                    image: None,
                    received_at_ms: now_ms,
                })))
            }
            HookKind::Image { .. } => Err(Error::BadPayload(
                "image webhooks are not supported by this version".into(),
            )),
        }
    })();
    eval
}

/// The git rules, in order; `Err` is the reason the push is ignored.
fn git_rules(app: &App, push: &Push) -> Result<(), String> {
    let branch = match parse_ref(&push.git_ref) {
        GitRef::Branch(b) => b,
        GitRef::Tag(t) => return Err(format!("tag push ({t}) does not deploy")),
        GitRef::Other(r) => return Err(format!("{r} is not a branch")),
    };
    if push.deleted {
        return Err(format!("branch {branch} was deleted"));
    }
    if !repo_matches(&app.git.repo, push.urls.iter().map(String::as_str)) {
        return Err(format!(
            "repository {} is not {}",
            push.web_url, app.git.repo
        ));
    }
    if branch != app.git.branch {
        return Err(format!("branch {branch} is not {}", app.git.branch));
    }
    let message = push
        .head
        .as_ref()
        .map(|c| c.message.as_str())
        .unwrap_or_default();
    if !mentions_keyword(message, &app.git.keyword) {
        return Err(format!(
            "no @{} in the head commit message",
            app.git.keyword
        ));
    }
    Ok(())
}

/// The last check before the call: the app's status must allow a deploy.
pub fn status_gate(app: &App) -> Result<(), Error> {
    if app.status_allows_deploy() {
        Ok(())
    } else {
        Err(Error::StatusNotDeployable(app.status.clone()))
    }
}
