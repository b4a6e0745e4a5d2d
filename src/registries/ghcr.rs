//! GHCR: GitHub `package` webhooks (`X-GitHub-Event: package`, delivery id in
//! `X-GitHub-Delivery`). A container push is `action: published` with the tag and digest
//! in `package.package_version.container_metadata.tag` (`name`, `digest`); the repository
//! is `ghcr.io/<package.owner.login>/<package.name>`, lowercased. GitHub's signature is
//! checked by [`super::authenticate`] with `image.token` as the webhook secret.
//!
//! <https://docs.github.com/en/webhooks/webhook-events-and-payloads#package>

use serde_json::Value;

use super::{add_tag, push, required, ImageEvent, Registry};
use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::providers::str_at;

pub struct Ghcr;

impl Registry for Ghcr {
    fn provider(&self) -> Provider {
        Provider::Ghcr
    }

    fn parse(&self, headers: &Headers, payload: &Value) -> Result<ImageEvent, Error> {
        match headers.get("x-github-event").unwrap_or_default().trim() {
            "ping" => return Ok(ImageEvent::Ping),
            "package" => {}
            _ => return Ok(ImageEvent::Other("only GitHub package events deploy")),
        }
        if str_at(payload, "/action") != Some("published") {
            return Ok(ImageEvent::Other("only published package events deploy"));
        }
        let owner = required(payload, "/package/owner/login", "package.owner.login")?;
        let name = required(payload, "/package/name", "package.name")?;
        let kind = str_at(payload, "/package/package_type")
            .or_else(|| str_at(payload, "/package/ecosystem"))
            .unwrap_or_default();
        if !kind.eq_ignore_ascii_case("container") && !kind.eq_ignore_ascii_case("docker") {
            return Ok(ImageEvent::Other("only container packages deploy"));
        }
        let mut tags = Vec::new();
        if let Some(tag) = payload.pointer("/package/package_version/container_metadata/tag") {
            add_tag(&mut tags, str_at(tag, "/name"), str_at(tag, "/digest"));
        }
        Ok(push(&format!("ghcr.io/{owner}/{name}"), tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::headers;
    use crate::registries::{ImagePush, PushedTag};
    use serde_json::json;

    fn parse(event: &str, payload: Value) -> Result<ImageEvent, Error> {
        Ghcr.parse(&headers(&[("x-github-event", event)]), &payload)
    }

    fn published(package_type: &str, tag: &str) -> Value {
        json!({
            "action": "published",
            "package": {
                "name": "Shop", "namespace": "Acme", "package_type": package_type,
                "owner": {"login": "Acme"},
                "package_version": {
                    "name": "sha256:c0ffee",
                    "container_metadata": {"tag": {"name": tag, "digest": "sha256:c0ffee"}}
                }
            }
        })
    }

    #[test]
    fn parses_a_published_container() {
        assert_eq!(
            parse("package", published("CONTAINER", "v1.2.0")).unwrap(),
            ImageEvent::Push(ImagePush {
                repository: "ghcr.io/acme/shop".into(),
                tags: vec![PushedTag {
                    tag: "v1.2.0".into(),
                    digest: Some("sha256:c0ffee".into())
                }],
            })
        );
        let ImageEvent::Push(untagged) = parse("package", published("container", "")).unwrap()
        else {
            panic!("not a push")
        };
        assert!(untagged.tags.is_empty());
    }

    #[test]
    fn ping_other_actions_types_and_events() {
        assert_eq!(
            parse("ping", json!({"zen": "hi"})).unwrap(),
            ImageEvent::Ping
        );
        let mut updated = published("CONTAINER", "v1");
        updated["action"] = json!("updated");
        assert!(
            matches!(parse("package", updated), Ok(ImageEvent::Other(w)) if w.contains("published"))
        );
        assert!(matches!(
            parse("package", published("npm", "1.0.0")),
            Ok(ImageEvent::Other(_))
        ));
        assert!(matches!(parse("push", json!({})), Ok(ImageEvent::Other(_))));
        assert!(matches!(
            parse("package", json!({"action": "published"})),
            Err(Error::BadPayload(_))
        ));
    }
}
