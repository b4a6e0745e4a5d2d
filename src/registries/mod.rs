//! Image registries: each one reads its own push notification into one normalised
//! [`ImageEvent`].
//!
//! Image hooks are authenticated before any of this by the path token `image.token`
//! (compared in constant time by the caller; a wrong token is a 404). [`authenticate`]
//! adds the checks some registries can do on top: GitHub's signature and Harbor's
//! configurable `Authorization` header. [`detect`] then picks the registry, in this order:
//!
//! 1. an `X-GitHub-Event` header → GHCR (GitHub `package` events);
//! 2. `event_data` (Harbor's default format) or a `type` starting with `harbor.` (its
//!    CloudEvents format) → Harbor;
//! 3. `updated_tags` or `docker_url` → Quay;
//! 4. `push_data` and `repository.region` → Aliyun ACR;
//! 5. `push_data` and `repository` → Docker Hub.
//!
//! Registries send no delivery id, except GHCR (`X-GitHub-Delivery`): the caller falls
//! back to the body hash.

mod acr;
mod dockerhub;
mod ghcr;
mod harbor;
mod quay;
mod reference;
pub mod tagpattern;

pub use acr::Acr;
pub use dockerhub::DockerHub;
pub use ghcr::Ghcr;
pub use harbor::Harbor;
pub use quay::Quay;
pub use reference::{normalize_image, DOCKER_HUB};

use serde_json::Value;

use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::support::secret::Secret;

/// One pushed tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedTag {
    pub tag: String,
    /// The manifest digest, when the registry says it (Docker Hub and Quay do not).
    pub digest: Option<String>,
}

/// An image push, normalised across registries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePush {
    /// The pushed repository, normalised, without tag: e.g. `docker.io/library/nginx`.
    pub repository: String,
    /// The pushed tags in the registry's order. Untagged (digest-only) pushes have none.
    pub tags: Vec<PushedTag>,
}

/// What a registry notification says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageEvent {
    /// A ping or test delivery.
    Ping,
    Push(ImagePush),
    /// Anything else (pulls, deletions, scans, ...): why it does not deploy.
    Other(&'static str),
}

/// One registry's notification dialect.
pub trait Registry: Sync {
    fn provider(&self) -> Provider;

    /// Reads the (authenticated) JSON payload.
    fn parse(&self, headers: &Headers, payload: &Value) -> Result<ImageEvent, Error>;
}

/// Registries we recognise, for the 400 answer.
pub const SUPPORTED: &str = "Docker Hub, Harbor, Quay, GHCR (GitHub package events) and Aliyun ACR";

/// Whether GitHub sent this (GHCR notifications are GitHub `package` webhooks).
pub fn from_github(headers: &Headers) -> bool {
    headers.contains("x-github-event")
}

/// The checks beyond the path token, on the raw body:
///
/// - `X-Hub-Signature-256` (GitHub), when present, must be the HMAC-SHA256 of the body
///   under `image.token`, which is then the GitHub webhook's secret;
/// - `Authorization` (Harbor's "Auth Header"), when present and not empty, must be
///   `image.token`, as `Bearer <token>` or the bare token.
pub fn authenticate(headers: &Headers, body: &[u8], token: &Secret) -> Result<(), Error> {
    if headers.contains("x-hub-signature-256") {
        crate::providers::verify_hub_signature(headers, "x-hub-signature-256", body, token)?;
    }
    if let Some(value) = headers.get_nonempty("authorization") {
        let given = headers.bearer().unwrap_or(value);
        if !token.matches(given.as_bytes()) {
            return Err(Error::Unauthorized("invalid authorization header"));
        }
    }
    Ok(())
}

/// Picks the registry from the headers and the payload's shape (order: module docs).
pub fn detect(headers: &Headers, payload: &Value) -> Result<&'static dyn Registry, Error> {
    let has = |key: &str| payload.get(key).is_some();
    let harbor_type =
        || crate::providers::str_at(payload, "/type").is_some_and(|t| t.starts_with("harbor."));
    Ok(if from_github(headers) {
        &Ghcr
    } else if has("event_data") || harbor_type() {
        &Harbor
    } else if has("updated_tags") || has("docker_url") {
        &Quay
    } else if has("push_data") && payload.pointer("/repository/region").is_some() {
        &Acr
    } else if has("push_data") && has("repository") {
        &DockerHub
    } else {
        return Err(Error::UnknownProvider(SUPPORTED));
    })
}

/// A real tag (Docker's grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`), not a digest that a
/// registry put in the tag field of an untagged push.
pub(crate) fn is_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
}

/// Adds `tag` with its digest (`sha256:<hex>`) to `tags`, if it is a real tag.
pub(crate) fn add_tag(tags: &mut Vec<PushedTag>, tag: Option<&str>, digest: Option<&str>) {
    if let Some(tag) = tag.filter(|t| is_tag(t)) {
        tags.push(PushedTag {
            tag: tag.to_string(),
            digest: digest.filter(|d| d.contains(':')).map(String::from),
        });
    }
}

/// A push of `reference` (normalised here) with `tags`.
pub(crate) fn push(reference: &str, tags: Vec<PushedTag>) -> ImageEvent {
    ImageEvent::Push(ImagePush {
        repository: normalize_image(reference).repository,
        tags,
    })
}

/// The non-empty string at `pointer`, or a 400 saying that `what` is missing.
pub(crate) fn required<'v>(
    value: &'v Value,
    pointer: &str,
    what: &'static str,
) -> Result<&'v str, Error> {
    match crate::providers::str_at(value, pointer) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(missing(what)),
    }
}

#[cold]
pub(crate) fn missing(what: &'static str) -> Error {
    Error::BadPayload(format!("{what} is missing"))
}

/// The host of `url` (`https://quay.io/repository/...` → `quay.io`).
pub(crate) fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::headers;
    use serde_json::json;

    #[test]
    fn detection_order() {
        let none = headers(&[]);
        let cases: &[(Value, Provider)] = &[
            (
                json!({"type": "PUSH_ARTIFACT", "event_data": {}}),
                Provider::Harbor,
            ),
            (
                json!({"specversion": "1.0", "type": "harbor.artifact.pushed", "data": {}}),
                Provider::Harbor,
            ),
            (
                json!({"updated_tags": ["v1"], "docker_url": "quay.io/a/b"}),
                Provider::Quay,
            ),
            (
                json!({"push_data": {"tag": "v1"}, "repository": {"region": "cn-hangzhou"}}),
                Provider::Acr,
            ),
            (
                json!({"push_data": {"tag": "v1"}, "repository": {"repo_name": "a/b"}}),
                Provider::Dockerhub,
            ),
        ];
        for (payload, provider) in cases {
            assert_eq!(
                detect(&none, payload).unwrap().provider(),
                *provider,
                "{payload}"
            );
        }
        let github = headers(&[("x-github-event", "package")]);
        assert_eq!(
            detect(&github, &json!({"push_data": {}, "repository": {}}))
                .unwrap()
                .provider(),
            Provider::Ghcr
        );
        let unknown = detect(&none, &json!({"ref": "refs/heads/main"}))
            .err()
            .unwrap();
        assert_eq!(unknown.status(), 400);
        assert!(
            unknown.reason().contains("Docker Hub, Harbor, Quay, GHCR"),
            "{}",
            unknown.reason()
        );
    }

    #[test]
    fn authentication_beyond_the_path_token() {
        let token = Secret::new("image-token-0123456789");
        let body = br#"{"action":"published"}"#;
        let signature = format!(
            "sha256={}",
            crate::support::crypto::hex(&crate::support::crypto::hmac_sha256(
                token.expose().as_bytes(),
                body
            ))
        );
        let ok: &[&[(&str, &str)]] = &[
            &[],
            &[("x-hub-signature-256", &signature)],
            &[("authorization", "Bearer image-token-0123456789")],
            &[("authorization", "image-token-0123456789")],
            // an empty header carries nothing to check
            &[("authorization", " ")],
        ];
        for h in ok {
            assert_eq!(authenticate(&headers(h), body, &token), Ok(()), "{h:?}");
        }
        let bad: &[&[(&str, &str)]] = &[
            &[("x-hub-signature-256", "sha256=00")],
            &[("x-hub-signature-256", "")],
            &[("x-hub-signature-256", "sha1=abc")],
            &[("authorization", "Bearer wrong")],
            &[("authorization", "Bearer ")],
            &[("authorization", "Basic aW1hZ2UtdG9rZW4=")],
        ];
        for h in bad {
            assert_eq!(
                authenticate(&headers(h), body, &token).map_err(|e| e.status()),
                Err(401),
                "{h:?}"
            );
        }
        // a signature over another body fails
        assert!(authenticate(
            &headers(&[("x-hub-signature-256", &signature)]),
            b"{}",
            &token
        )
        .is_err());
    }

    #[test]
    fn tags_digests_and_hosts() {
        assert!(is_tag("v1.2.3") && is_tag("latest") && is_tag("_x"));
        assert!(!is_tag("") && !is_tag("sha256:abc") && !is_tag("-x") && !is_tag("a/b"));
        let mut tags = Vec::new();
        add_tag(&mut tags, Some("sha256:abc"), Some("sha256:abc"));
        add_tag(&mut tags, None, Some("sha256:abc"));
        add_tag(&mut tags, Some("v1"), Some("sha256:abc"));
        add_tag(&mut tags, Some("v2"), Some(""));
        assert_eq!(
            tags,
            [
                PushedTag {
                    tag: "v1".into(),
                    digest: Some("sha256:abc".into())
                },
                PushedTag {
                    tag: "v2".into(),
                    digest: None
                }
            ]
        );
        assert_eq!(
            required(&serde_json::json!({"a": ""}), "/a", "a").map_err(|e| e.reason()),
            Err("malformed payload: a is missing".to_string())
        );
        assert_eq!(url_host("https://quay.io/repository/a/b"), Some("quay.io"));
        assert_eq!(
            url_host("quay.example.com:8443/a/b"),
            Some("quay.example.com:8443")
        );
        assert_eq!(url_host(""), None);
    }
}
