//! Harbor: `type: PUSH_ARTIFACT` with `event_data.resources[]` (`tag`, `digest`,
//! `resource_url`) and `event_data.repository.repo_full_name`; the registry host is the
//! one in `resource_url`. Harbor's CloudEvents format (`type: harbor.artifact.pushed`,
//! the same data under `data`) is read too. Harbor signs nothing, but it can send a
//! configured `Authorization` header, which [`super::authenticate`] checks.
//!
//! <https://goharbor.io/docs/main/working-with-projects/project-configuration/configure-webhooks/>

use serde_json::Value;

use super::{add_tag, missing, push, required, ImageEvent, Registry};
use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::providers::str_at;

pub struct Harbor;

impl Registry for Harbor {
    fn provider(&self) -> Provider {
        Provider::Harbor
    }

    fn parse(&self, _headers: &Headers, payload: &Value) -> Result<ImageEvent, Error> {
        let kind = str_at(payload, "/type").unwrap_or_default();
        let data = match kind {
            "PUSH_ARTIFACT" => payload.get("event_data"),
            "harbor.artifact.pushed" => payload.get("data"),
            _ => return Ok(ImageEvent::Other("only Harbor PUSH_ARTIFACT events deploy")),
        }
        .ok_or_else(|| missing("event_data"))?;
        let resources = data
            .get("resources")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut host = "";
        let mut tags = Vec::new();
        for r in resources {
            if let Some((h, _)) = str_at(r, "/resource_url").and_then(|u| u.split_once('/')) {
                host = h;
            }
            add_tag(&mut tags, str_at(r, "/tag"), str_at(r, "/digest"));
        }
        if host.is_empty() {
            return Err(missing("resources[].resource_url"));
        }
        let name = required(
            data,
            "/repository/repo_full_name",
            "repository.repo_full_name",
        )?;
        Ok(push(&format!("{host}/{name}"), tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::headers;
    use crate::registries::{ImagePush, PushedTag};
    use serde_json::json;

    fn parse(payload: Value) -> Result<ImageEvent, Error> {
        Harbor.parse(&headers(&[]), &payload)
    }

    #[test]
    fn parses_tagged_pushes_in_both_formats() {
        let data = json!({
            "resources": [
                {"digest": "sha256:aaa", "tag": "v2.1.0",
                 "resource_url": "harbor.example.com/team/shop:v2.1.0"},
                {"digest": "sha256:aaa", "tag": "stable",
                 "resource_url": "harbor.example.com/team/shop:stable"}
            ],
            "repository": {"name": "shop", "namespace": "team",
                           "repo_full_name": "team/shop", "repo_type": "private"}
        });
        let expected = ImageEvent::Push(ImagePush {
            repository: "harbor.example.com/team/shop".into(),
            tags: vec![
                PushedTag {
                    tag: "v2.1.0".into(),
                    digest: Some("sha256:aaa".into()),
                },
                PushedTag {
                    tag: "stable".into(),
                    digest: Some("sha256:aaa".into()),
                },
            ],
        });
        let default = json!({"type": "PUSH_ARTIFACT", "occur_at": 1, "operator": "admin",
                             "event_data": data.clone()});
        assert_eq!(parse(default).unwrap(), expected);
        let cloud = json!({"specversion": "1.0", "id": "x", "type": "harbor.artifact.pushed",
                           "data": data, "operator": "admin"});
        assert_eq!(parse(cloud).unwrap(), expected);
    }

    #[test]
    fn digest_only_pushes_have_no_tags() {
        // Harbor puts the digest in `tag` when an artifact is pushed by digest.
        let payload = json!({"type": "PUSH_ARTIFACT", "event_data": {
            "resources": [{"digest": "sha256:954b", "tag": "sha256:954b",
                           "resource_url": "localhost/harbor/alpine@sha256:954b"}],
            "repository": {"repo_full_name": "harbor/alpine"}}});
        let ImageEvent::Push(p) = parse(payload).unwrap() else {
            panic!("not a push")
        };
        assert_eq!(p.repository, "localhost/harbor/alpine");
        assert!(p.tags.is_empty());
    }

    #[test]
    fn other_events_and_malformed_pushes() {
        let pulled = json!({"type": "PULL_ARTIFACT", "event_data": {}});
        assert!(
            matches!(parse(pulled), Ok(ImageEvent::Other(why)) if why.contains("PUSH_ARTIFACT"))
        );
        for payload in [
            json!({"type": "PUSH_ARTIFACT"}),
            json!({"type": "PUSH_ARTIFACT", "event_data": {"resources": [],
                   "repository": {"repo_full_name": "a/b"}}}),
            json!({"type": "PUSH_ARTIFACT", "event_data": {
                   "resources": [{"tag": "v1", "resource_url": "h.example.com/a/b:v1"}]}}),
        ] {
            assert!(
                matches!(parse(payload.clone()), Err(Error::BadPayload(_))),
                "{payload}"
            );
        }
    }
}
