//! The checks of one hook request for a known app, after its route and body size:
//! content type → authentication → trigger enabled → payload → rules. No I/O.

use std::borrow::Cow;

use super::deploy::DeployEvent;
use super::pipeline::{Facts, Outcome};
use super::route::HookKind;
use super::rules::{git_rules, image_rules};
use crate::error::Error;
use crate::model::{Headers, Provider, Trigger};
use crate::providers::{self, GitEvent, Push};
use crate::registries::{self, ImageEvent};
use crate::state::app::App;
use crate::state::delivery::{self, Alias, Dedupe, Delivery};
use crate::support::crypto::sha256_hex;

/// How the body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BodyKind {
    Json,
    /// `application/x-www-form-urlencoded` with the JSON in `payload=`.
    Form,
    Empty,
}

/// The 415 check: JSON (`application/json`, `*+json`) or form; no type only for an empty body.
pub(super) fn body_kind(headers: &Headers, body: &[u8]) -> Result<BodyKind, Error> {
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
pub(super) fn json_payload(kind: BodyKind, body: &[u8]) -> Result<Cow<'_, [u8]>, Error> {
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

/// Longest delivery id used as given; longer or odd ones are replaced by their hash.
const MAX_ID_LEN: usize = 128;

/// A delivery named by the sender's id (`None`: the body hash names it).
pub(super) fn delivery_from(id: Option<&str>, body: &[u8]) -> Delivery {
    match id {
        Some(id)
            if id.len() <= MAX_ID_LEN && id.bytes().all(|c| c.is_ascii_graphic() && c != b'/') =>
        {
            Delivery::new(id, Dedupe::Forever)
        }
        Some(odd) => Delivery::new(sha256_hex(odd.as_bytes()), Dedupe::Forever),
        None => Delivery::new(sha256_hex(body), Dedupe::BodyHash),
    }
}

/// The push's own name, from its ref and the commits the ref moved between: most
/// providers do not sign their delivery id, so a captured push resent under a new id is
/// still the same push. A real second push moves the ref from another `before`.
fn same_push(push: &Push) -> Option<Alias> {
    let before = push.before.as_deref()?;
    let after = &push.head.as_ref()?.id;
    let name = format!("{}\n{before}\n{after}", push.git_ref);
    Some(Alias {
        id: format!("push-{}", sha256_hex(name.as_bytes())),
        ttl_ms: delivery::BODY_HASH_TTL_MS,
    })
}

/// Checks a hook request for `app` (already routed and size-checked), in order:
/// content type → authentication → enabled → payload → rules. What it learns on the way
/// (who sent it, which delivery) goes into `facts`, also when a later check fails.
///
/// `fresh_id` names an API delivery that carries no `Idempotency-Key` (each is new).
pub(super) fn check(
    app: &App,
    kind: &HookKind<'_>,
    headers: &Headers,
    body: &[u8],
    now_ms: u64,
    facts: &mut Facts,
    fresh_id: &mut dyn FnMut() -> String,
) -> Result<Outcome<DeployEvent>, Error> {
    let body_kind = body_kind(headers, body)?;
    let event = |trigger, provider, delivery: &Delivery| DeployEvent {
        trigger,
        provider,
        delivery: delivery.id.clone(),
        repository: None,
        branch: None,
        tag: None,
        commit: None,
        image: None,
        received_at_ms: now_ms,
        note: None,
        status_url: None,
    };
    match kind {
        HookKind::Git => {
            let provider = providers::detect(headers)?;
            facts.provider = Some(provider.provider());
            let delivery = facts.delivery.insert(delivery_from(
                provider.delivery_id(headers).as_deref(),
                body,
            ));
            provider.verify(headers, body, &app.git.secret, now_ms)?;
            facts.authenticated = true;
            if let Some((id, ttl_ms)) = provider.replay_name(headers) {
                delivery.aliases.push(Alias { id, ttl_ms });
            }
            if !app.git.enabled {
                return Err(Error::TriggerDisabled(Trigger::Git));
            }
            let json = json_payload(body_kind, body)?;
            Ok(
                match provider.parse(headers, &json, app.git.paths.active())? {
                    GitEvent::Ping => Outcome::Pong,
                    GitEvent::Other(event) => {
                        Outcome::Ignored(format!("{event:?} events do not deploy, only pushes"))
                    }
                    GitEvent::Push(push) => match git_rules(app, &push) {
                        Err(why) => Outcome::Ignored(why),
                        Ok(decided) => {
                            delivery.aliases.extend(same_push(&push));
                            Outcome::Deploy(DeployEvent {
                                repository: Some(push.web_url),
                                branch: decided.branch,
                                tag: decided.tag,
                                note: decided.note,
                                commit: push.head,
                                ..event(Trigger::Git, provider.provider(), delivery)
                            })
                        }
                    },
                },
            )
        }
        HookKind::Api => {
            facts.provider = Some(Provider::Api);
            let delivery = facts
                .delivery
                .insert(match headers.get_nonempty("idempotency-key") {
                    Some(key) => delivery_from(Some(key), body),
                    None => Delivery::new(fresh_id(), Dedupe::Never),
                });
            // Decoded and parsed once: the secret may be in it, and it must be JSON.
            let parsed = json_payload(body_kind, body).and_then(|j| {
                crate::support::json::parse(&j)
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
            facts.authenticated = true;
            if !app.api.enabled {
                return Err(Error::TriggerDisabled(Trigger::Api));
            }
            parsed?;
            Ok(Outcome::Deploy(event(
                Trigger::Api,
                Provider::Api,
                delivery,
            )))
        }
        // The path token was checked before (a wrong one is a 404).
        HookKind::Image { .. } => {
            let github = registries::from_github(headers);
            if github {
                facts.provider = Some(Provider::Ghcr);
            }
            let id = headers.get_nonempty("x-github-delivery").filter(|_| github);
            let delivery = facts.delivery.insert(delivery_from(id, body));
            registries::authenticate(headers, body, &app.image.token)?;
            facts.authenticated = true;
            if !app.image.enabled {
                return Err(Error::TriggerDisabled(Trigger::Image));
            }
            let json = json_payload(body_kind, body)?;
            let payload = providers::parse_json(&json, "image webhook")?;
            let registry = registries::detect(headers, &payload)?;
            facts.provider = Some(registry.provider());
            Ok(match registry.parse(headers, &payload)? {
                ImageEvent::Ping => Outcome::Pong,
                ImageEvent::Other(why) => Outcome::Ignored(why.into()),
                ImageEvent::Push(push) => match image_rules(app, push) {
                    Err(why) => Outcome::Ignored(why),
                    Ok(image) => Outcome::Deploy(DeployEvent {
                        image: Some(image),
                        ..event(Trigger::Image, registry.provider(), delivery)
                    }),
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::gateway::deploy::ImageInfo;
    use crate::gateway::rules::tests::app;

    const TOKEN: &str = "image-token-0123456789";

    fn evaluate(
        app: &App,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> (Facts, Result<Outcome<DeployEvent>, Error>) {
        let headers = Headers::new(
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .chain([("content-type".into(), "application/json".into())]),
        );
        let kind = HookKind::Image { token: TOKEN };
        let mut facts = Facts::default();
        let body = body.to_string();
        let checked = check(
            app,
            &kind,
            &headers,
            body.as_bytes(),
            1_000,
            &mut facts,
            &mut || unreachable!("image deliveries are named by their id or body"),
        );
        (facts, checked)
    }

    #[test]
    fn a_docker_hub_push_deploys_with_the_pushed_image() {
        let app = app(json!({"enabled": true, "repository": "acme/shop", "token": TOKEN}));
        let body =
            json!({"push_data": {"tag": "latest"}, "repository": {"repo_name": "acme/shop"}});
        let (facts, checked) = evaluate(&app, &[], &body);
        assert_eq!(facts.provider, Some(Provider::Dockerhub));
        let delivery = facts.delivery.unwrap();
        assert_eq!(
            (delivery.id.as_str(), delivery.dedupe),
            (
                sha256_hex(body.to_string().as_bytes()).as_str(),
                Dedupe::BodyHash
            )
        );
        let Ok(Outcome::Deploy(event)) = checked else {
            panic!("{checked:?}")
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
        let status = |(_, checked): (Facts, Result<_, Error>)| checked.err().map(|e| e.status());
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
        let (facts, checked) = evaluate(
            &app,
            &headers,
            &json!({"zen": "Keep it logically awesome."}),
        );
        assert_eq!(facts.provider, Some(Provider::Ghcr));
        assert_eq!(facts.delivery.unwrap().id, "gh-1");
        assert_eq!(checked, Ok(Outcome::Pong));
    }
}
