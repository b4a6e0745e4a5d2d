//! Quay "Repository Push" notifications: `updated_tags` (the pushed tags), `docker_url` (`quay.io/namespace/name`, the host of
//! self-hosted Quay included) and `homepage`. No signature and no digest: the path
//! token authenticates. Quay's other notifications (builds, vulnerabilities) carry
//! `docker_url` without `updated_tags` and are ignored.
//!
//! <https://docs.quay.io/guides/notifications.html>

use serde_json::Value;

use super::{add_tag, missing, push, required, url_host, ImageEvent, Registry};
use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::providers::str_at;

pub struct Quay;

impl Registry for Quay {
    fn provider(&self) -> Provider {
        Provider::Quay
    }

    fn parse(&self, _headers: &Headers, payload: &Value) -> Result<ImageEvent, Error> {
        let Some(tags) = payload.get("updated_tags").and_then(Value::as_array) else {
            return Ok(ImageEvent::Other(
                "only Quay repository push notifications deploy",
            ));
        };
        let reference = match str_at(payload, "/docker_url").filter(|u| !u.is_empty()) {
            Some(url) => url.to_string(),
            None => {
                let host = str_at(payload, "/homepage").and_then(url_host);
                let host = host.ok_or_else(|| missing("docker_url"))?;
                let name = required(payload, "/repository", "repository")?;
                format!("{host}/{name}")
            }
        };
        let mut pushed = Vec::new();
        for tag in tags {
            add_tag(&mut pushed, tag.as_str(), None);
        }
        Ok(push(&reference, pushed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::headers;
    use serde_json::json;

    fn parse(payload: Value) -> Result<ImageEvent, Error> {
        Quay.parse(&headers(&[]), &payload)
    }

    fn tags(event: &ImageEvent) -> Vec<&str> {
        match event {
            ImageEvent::Push(p) => p.tags.iter().map(|t| t.tag.as_str()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_the_documented_push() {
        let event = parse(json!({
            "name": "shop", "repository": "acme/shop", "namespace": "acme",
            "docker_url": "quay.io/acme/shop",
            "homepage": "https://quay.io/repository/acme/shop",
            "updated_tags": ["v3", "latest"]
        }))
        .unwrap();
        assert_eq!(tags(&event), ["v3", "latest"]);
        let ImageEvent::Push(p) = event else {
            unreachable!()
        };
        assert_eq!(p.repository, "quay.io/acme/shop");
        assert!(p.tags.iter().all(|t| t.digest.is_none()));
    }

    #[test]
    fn homepage_fallback() {
        let event = parse(json!({
            "repository": "acme/shop",
            "homepage": "https://quay.example.com/repository/acme/shop",
            "updated_tags": ["latest"]
        }))
        .unwrap();
        assert_eq!(tags(&event), ["latest"]);
        let ImageEvent::Push(p) = event else {
            unreachable!()
        };
        assert_eq!(p.repository, "quay.example.com/acme/shop");
    }

    #[test]
    fn builds_are_ignored_and_nameless_pushes_rejected() {
        let build = json!({"build_id": "x", "docker_url": "quay.io/a/b", "docker_tags": ["v1"]});
        assert!(matches!(parse(build), Ok(ImageEvent::Other(_))));
        assert!(matches!(
            parse(json!({"updated_tags": ["v1"]})),
            Err(Error::BadPayload(_))
        ));
    }
}
