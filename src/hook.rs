//! Webhook evaluation: from a request for one app to a verdict, with no I/O.
//!
//! Checks run in the contract's order: method → route → body size → content type →
//! authentication → trigger enabled → payload → rules. What comes after the rules
//! (de-duplication, the app status, the call itself) needs state and lives in `service`;
//! `evaluate` (the WIT export) applies the status gate itself.

use std::borrow::Cow;

use crate::app::App;
use crate::crypto::sha256_hex;
use crate::deploy::{DeployEvent, ImageInfo};
use crate::error::Error;
use crate::model::{Headers, Provider, Trigger};
use crate::providers::{self, GitEvent, Push};
use crate::registries::{self, normalize_image, ImageEvent, ImagePush, PushedTag};
use crate::rules::{mentions_keyword, parse_ref, repo_matches, GitRef};
use crate::tagpattern::TagPattern;

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
        // An empty body reads as `{}`: `curl -X POST -H 'Content-Type: application/json'`
        // with only a bearer token is a fine API call.
        BodyKind::Json if body.is_empty() => Ok(Cow::Borrowed(b"{}")),
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
                // Decoded and parsed once: the secret may be in it, and it must be JSON.
                let parsed = json_payload(body_kind, body).and_then(|j| {
                    crate::json::parse(&j)
                        .map_err(|_| Error::BadPayload("the body is not JSON".into()))
                });
                let given = match headers.bearer() {
                    Some(token) => Some(token),
                    None => parsed
                        .as_ref()
                        .ok()
                        .and_then(|v| v.get("secret_key")?.as_str()),
                };
                let given = given.ok_or(Error::Unauthorized("missing secret_key"))?;
                if !app.api.secret_key.matches(given.as_bytes()) {
                    return Err(Error::Unauthorized("invalid secret_key"));
                }
                if !app.api.enabled {
                    return Err(Error::TriggerDisabled(Trigger::Api));
                }
                parsed?;
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
            // The path token was checked by the caller (a wrong one is a 404).
            HookKind::Image { .. } => {
                let github = registries::from_github(headers);
                if github {
                    eval.provider = Some(Provider::Ghcr);
                }
                let id = headers.get_nonempty("x-github-delivery").filter(|_| github);
                let delivery = delivery_from(id, body, "");
                eval.delivery = Some(delivery.clone());
                registries::authenticate(headers, body, &app.image.token)?;
                if !app.image.enabled {
                    return Err(Error::TriggerDisabled(Trigger::Image));
                }
                let json = json_payload(body_kind, body)?;
                let payload = providers::parse_json(&json, "image webhook")?;
                let registry = registries::detect(headers, &payload)?;
                eval.provider = Some(registry.provider());
                Ok(match registry.parse(headers, &payload)? {
                    ImageEvent::Ping => Verdict::Pong,
                    ImageEvent::Other(why) => Verdict::Ignore(why.into()),
                    ImageEvent::Push(push) => match image_rules(app, push) {
                        Err(why) => Verdict::Ignore(why),
                        Ok(image) => Verdict::Deploy(Box::new(DeployEvent {
                            trigger: Trigger::Image,
                            provider: registry.provider(),
                            delivery: delivery.id,
                            repository: None,
                            branch: None,
                            commit: None,
                            image: Some(image),
                            received_at_ms: now_ms,
                        })),
                    },
                })
            }
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

/// The image rules, in order; `Ok` is the pushed image to deploy, `Err` the reason the
/// push is ignored. Repositories compare after [`normalize_image`]; with `tag_pattern` set
/// the first pushed tag it matches in full deploys, else the first equal to `tag`.
fn image_rules(app: &App, mut push: ImagePush) -> Result<ImageInfo, String> {
    let wanted = app
        .image
        .repository
        .as_deref()
        .map(|r| normalize_image(r).repository)
        .ok_or("image.repository is not set")?;
    if push.repository != wanted {
        return Err(format!("repository {} is not {wanted}", push.repository));
    }
    if push.tags.is_empty() {
        return Err("untagged (digest-only) pushes do not deploy".into());
    }
    let pattern = match app.image.tag_pattern.as_deref() {
        Some(p) => Some(
            TagPattern::new(p)
                .map_err(|_| "image.tag_pattern is not a valid regular expression".to_string())?,
        ),
        None => None,
    };
    let wanted = |tag: &str| match &pattern {
        Some(p) => p.matches(tag),
        None => tag == app.image.tag,
    };
    if let Some(i) = push.tags.iter().position(|t| wanted(&t.tag)) {
        let PushedTag { tag, digest } = push.tags.swap_remove(i);
        return Ok(ImageInfo {
            repository: push.repository,
            tag,
            digest,
        });
    }
    let mut tags = String::new();
    for t in push.tags.iter().take(5) {
        if !tags.is_empty() {
            tags.push_str(", ");
        }
        tags.push_str(&t.tag);
    }
    Err(match &app.image.tag_pattern {
        Some(p) => format!("tag {tags} does not match tag_pattern {p}"),
        None => format!("tag {tags} is not {}", app.image.tag),
    })
}

#[cfg(test)]
mod image_rule_tests {
    use serde_json::{json, Value};

    use super::*;

    const TOKEN: &str = "image-token-0123456789";

    fn app(image: Value) -> App {
        let body = json!({"image": image, "deploy": {"target": "generic", "path": "/deploy"}});
        App::from_put(
            "shop",
            body.to_string().as_bytes(),
            None,
            &mut |b: &mut [u8]| b.fill(7),
        )
        .unwrap()
    }

    fn push(repository: &str, tags: &[&str]) -> ImagePush {
        ImagePush {
            repository: repository.into(),
            tags: tags
                .iter()
                .map(|t| PushedTag {
                    tag: t.to_string(),
                    digest: Some(format!("sha256:{t}")),
                })
                .collect(),
        }
    }

    #[test]
    fn repository_and_tag_rules() {
        let nginx = app(json!({"enabled": true, "repository": "nginx"}));
        let official = "docker.io/library/nginx";
        assert_eq!(
            image_rules(&nginx, push(official, &["latest"]))
                .unwrap()
                .tag,
            "latest"
        );
        let other = image_rules(&nginx, push("docker.io/acme/nginx", &["latest"])).unwrap_err();
        assert!(other.contains("docker.io/acme/nginx"), "{other}");
        let tag = image_rules(&nginx, push(official, &["1.27"])).unwrap_err();
        assert!(tag.contains("1.27") && tag.contains("latest"), "{tag}");
        let untagged = image_rules(&nginx, push(official, &[])).unwrap_err();
        assert!(untagged.contains("untagged"), "{untagged}");

        // several pushed tags: the first that matches deploys
        let pinned = app(
            json!({"enabled": true, "repository": "quay.io/acme/shop:ignored",
                                "tag": "stable"}),
        );
        let p = push("quay.io/acme/shop", &["v3", "stable", "latest"]);
        assert_eq!(image_rules(&pinned, p).unwrap().tag, "stable");

        // with a pattern, `tag` is not used and the match is in full
        let pattern = app(json!({"enabled": true, "repository": "ghcr.io/acme/shop",
                                 "tag": "latest", "tag_pattern": r"v\d+\.\d+\.\d+"}));
        let p = push(
            "ghcr.io/acme/shop",
            &["latest", "v1.2.3-rc1", "v1.2.3", "v1.2.4"],
        );
        let chosen = image_rules(&pattern, p).unwrap();
        assert_eq!(
            (chosen.tag.as_str(), chosen.digest.as_deref()),
            ("v1.2.3", Some("sha256:v1.2.3"))
        );
        let none = image_rules(&pattern, push("ghcr.io/acme/shop", &["latest"])).unwrap_err();
        assert!(none.contains("tag_pattern"), "{none}");
    }

    fn evaluate(app: &App, headers: &[(&str, &str)], body: &Value) -> Evaluation {
        let headers = Headers::new(
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .chain([("content-type".into(), "application/json".into())]),
        );
        let kind = HookKind::Image { token: TOKEN };
        evaluate_hook(app, &kind, &headers, body.to_string().as_bytes(), 1_000, "")
    }

    #[test]
    fn a_docker_hub_push_deploys_with_the_pushed_image() {
        let app = app(json!({"enabled": true, "repository": "acme/shop", "token": TOKEN}));
        let body =
            json!({"push_data": {"tag": "latest"}, "repository": {"repo_name": "acme/shop"}});
        let eval = evaluate(&app, &[], &body);
        assert_eq!(eval.provider, Some(Provider::Dockerhub));
        let delivery = eval.delivery.unwrap();
        assert_eq!(
            (delivery.id.as_str(), delivery.dedupe),
            (
                sha256_hex(body.to_string().as_bytes()).as_str(),
                Dedupe::BodyHash
            )
        );
        let Ok(Verdict::Deploy(event)) = eval.verdict else {
            panic!("{:?}", eval.verdict)
        };
        assert_eq!(
            (
                event.trigger,
                event.provider,
                event.repository,
                event.commit
            ),
            (Trigger::Image, Provider::Dockerhub, None, None)
        );
        assert_eq!(
            event.image,
            Some(ImageInfo {
                repository: "docker.io/acme/shop".into(),
                tag: "latest".into(),
                digest: None
            })
        );
    }

    #[test]
    fn checks_run_in_order() {
        let disabled = app(json!({"enabled": false, "repository": "acme/shop", "token": TOKEN}));
        let body =
            json!({"push_data": {"tag": "latest"}, "repository": {"repo_name": "acme/shop"}});
        let status = |eval: Evaluation| eval.verdict.map_err(|e| e.status()).err();
        // authentication before the switch
        let wrong = [("authorization", "Bearer nope")];
        assert_eq!(status(evaluate(&disabled, &wrong, &body)), Some(401));
        assert_eq!(status(evaluate(&disabled, &[], &body)), Some(403));
        // the switch before the payload
        assert_eq!(
            status(evaluate(&disabled, &[], &json!({"x": 1}))),
            Some(403)
        );
        let enabled = app(json!({"enabled": true, "repository": "acme/shop", "token": TOKEN}));
        let unknown = evaluate(&enabled, &[], &json!({"ref": "refs/heads/main"}));
        assert_eq!(status(unknown), Some(400));
    }

    #[test]
    fn ghcr_uses_the_github_delivery_id() {
        let app = app(json!({"enabled": true, "repository": "ghcr.io/acme/shop", "token": TOKEN}));
        let headers = [("x-github-event", "ping"), ("x-github-delivery", "gh-1")];
        let eval = evaluate(
            &app,
            &headers,
            &json!({"zen": "Keep it logically awesome."}),
        );
        assert_eq!(eval.provider, Some(Provider::Ghcr));
        assert_eq!(eval.delivery.unwrap().id, "gh-1");
        assert_eq!(eval.verdict, Ok(Verdict::Pong));
    }
}
