//! Docker Hub: `push_data.tag` and `repository.repo_name` (`namespace/name`; official
//! images have no namespace). No signature and no digest: the path token authenticates.
//!
//! The payload's `callback_url` belongs to a legacy validation flow; it is never called.
//!
//! <https://docs.docker.com/docker-hub/repos/manage/webhooks/>

use serde_json::Value;

use super::{add_tag, push, required, ImageEvent, Registry, DOCKER_HUB};
use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::providers::str_at;

pub struct DockerHub;

impl Registry for DockerHub {
    fn provider(&self) -> Provider {
        Provider::Dockerhub
    }

    fn parse(&self, _headers: &Headers, payload: &Value) -> Result<ImageEvent, Error> {
        let name = required(payload, "/repository/repo_name", "repository.repo_name")?;
        let mut tags = Vec::new();
        add_tag(&mut tags, str_at(payload, "/push_data/tag"), None);
        Ok(push(&format!("{DOCKER_HUB}/{name}"), tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::headers;
    use crate::registries::{ImagePush, PushedTag};
    use serde_json::json;

    fn push(payload: Value) -> ImagePush {
        match DockerHub.parse(&headers(&[]), &payload).unwrap() {
            ImageEvent::Push(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_user_and_official_images() {
        let p = push(json!({
            "callback_url": "https://registry.hub.docker.com/u/acme/shop/hook/x/",
            "push_data": {"pushed_at": 1417566161, "pusher": "ci", "tag": "v1.4.2"},
            "repository": {"repo_name": "acme/shop", "namespace": "acme", "name": "shop"}
        }));
        assert_eq!(p.repository, "docker.io/acme/shop");
        assert_eq!(
            p.tags,
            vec![PushedTag {
                tag: "v1.4.2".into(),
                digest: None
            }]
        );
        let official = push(json!({
            "push_data": {"tag": "1.27"},
            "repository": {"repo_name": "nginx", "name": "nginx", "is_official": true}
        }));
        assert_eq!(official.repository, "docker.io/library/nginx");
    }

    #[test]
    fn untagged_and_malformed() {
        let untagged = push(json!({"push_data": {"tag": ""}, "repository": {"repo_name": "a/b"}}));
        assert!(untagged.tags.is_empty());
        assert!(matches!(
            DockerHub.parse(&headers(&[]), &json!({"push_data": {}, "repository": {}})),
            Err(Error::BadPayload(_))
        ));
    }
}
