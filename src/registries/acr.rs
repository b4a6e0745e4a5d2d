//! Aliyun Container Registry (ACR) triggers: `push_data.tag` and `push_data.digest`,
//! `repository.repo_full_name` (`namespace/name`) and `repository.region`, whose registry
//! host is `registry.<region>.aliyuncs.com`. No signature: the path token authenticates.
//!
//! <https://www.alibabacloud.com/help/en/acr/user-guide/manage-webhooks>

use serde_json::Value;

use super::{add_tag, missing, push, required, ImageEvent, Registry};
use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::providers::str_at;

pub struct Acr;

impl Registry for Acr {
    fn provider(&self) -> Provider {
        Provider::Acr
    }

    fn parse(&self, _headers: &Headers, payload: &Value) -> Result<ImageEvent, Error> {
        let region = required(payload, "/repository/region", "repository.region")?;
        if !region
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        {
            return Err(missing("a valid repository.region"));
        }
        let name = required(
            payload,
            "/repository/repo_full_name",
            "repository.repo_full_name",
        )?;
        let mut tags = Vec::new();
        add_tag(
            &mut tags,
            str_at(payload, "/push_data/tag"),
            str_at(payload, "/push_data/digest"),
        );
        Ok(push(
            &format!("registry.{region}.aliyuncs.com/{name}"),
            tags,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::headers;
    use crate::registries::PushedTag;
    use serde_json::json;

    #[test]
    fn parses_the_documented_payload() {
        let payload = json!({
            "push_data": {
                "digest": "sha256:457f4aa83fc9a6663ab9d1b0a6e2dce25a12a943ed5bf2c1747c58d48bbb4917",
                "pushed_at": "2016-11-29 12:25:46",
                "tag": "latest"
            },
            "repository": {
                "date_created": "2016-10-28 21:31:42",
                "name": "repoTest",
                "namespace": "namespace",
                "region": "cn-hangzhou",
                "repo_authentication_type": "NO_CERTIFIED",
                "repo_full_name": "namespace/repoTest",
                "repo_origin_type": "NO_CERTIFIED",
                "repo_type": "PUBLIC"
            }
        });
        let ImageEvent::Push(p) = Acr.parse(&headers(&[]), &payload).unwrap() else {
            panic!("not a push")
        };
        assert_eq!(
            p.repository,
            "registry.cn-hangzhou.aliyuncs.com/namespace/repotest"
        );
        assert_eq!(
            p.tags,
            vec![PushedTag {
                tag: "latest".into(),
                digest: Some(
                    "sha256:457f4aa83fc9a6663ab9d1b0a6e2dce25a12a943ed5bf2c1747c58d48bbb4917"
                        .into()
                )
            }]
        );
    }

    #[test]
    fn rejects_odd_regions_and_missing_names() {
        for repository in [
            json!({"region": "cn-hangzhou.evil.com/x", "repo_full_name": "a/b"}),
            json!({"region": "", "repo_full_name": "a/b"}),
            json!({"region": "cn-hangzhou"}),
        ] {
            let payload = json!({"push_data": {"tag": "v1"}, "repository": repository});
            assert!(
                matches!(
                    Acr.parse(&headers(&[]), &payload),
                    Err(Error::BadPayload(_))
                ),
                "{payload}"
            );
        }
    }
}
