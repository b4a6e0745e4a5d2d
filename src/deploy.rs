//! The one outbound deploy call (contract §6), and how its answer is read.

use serde_json::json;

use crate::app::{App, DeployTarget};
use crate::error::Error;
use crate::model::{OutboundRequest, Provider, Trigger};
use crate::providers::Commit;
use crate::secret::Secret;

/// Where deploy calls go: `platform_url` and `platform_token`.
#[derive(Clone, Debug)]
pub struct PlatformConfig {
    origin: String,
    token: Option<Secret>,
}

impl PlatformConfig {
    /// `url` must be an `http(s)://` origin; a trailing slash is dropped.
    pub fn new(url: Option<&str>, token: Option<&str>) -> Result<Self, Error> {
        let url = url
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| Error::Config("platform_url is not set".into()))?;
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| {
                Error::Config("platform_url must start with http:// or https://".into())
            })?;
        if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', '@', ' ']) {
            return Err(Error::Config(
                "platform_url must be an origin such as https://console.example.com".into(),
            ));
        }
        Ok(PlatformConfig {
            origin: url.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()).map(Secret::new),
        })
    }
}

/// A pushed image, as the platform should deploy it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// Normalised reference without tag, e.g. `docker.io/library/nginx`.
    pub repository: String,
    pub tag: String,
    pub digest: Option<String>,
}

/// Everything the deploy call says about a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployEvent {
    pub trigger: Trigger,
    pub provider: Provider,
    pub delivery: String,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub commit: Option<Commit>,
    pub image: Option<ImageInfo>,
    pub received_at_ms: u64,
}

/// Builds the deploy call for `event` to `app`'s deploy target.
pub fn build_request(app: &App, platform: &PlatformConfig, event: &DeployEvent) -> OutboundRequest {
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("idempotency-key".to_string(), event.delivery.clone()),
    ];
    let (url, body) = match &app.deploy.target {
        DeployTarget::Generic { path } => {
            if let Some(token) = &platform.token {
                headers.push(("authorization".into(), format!("Bearer {}", token.expose())));
            }
            let body = json!({
                "app": app.name,
                "trigger": event.trigger.as_str(),
                "provider": event.provider.as_str(),
                "delivery": event.delivery,
                "repository": event.repository,
                "branch": event.branch,
                "commit": event.commit.as_ref().map(|c| json!({
                    "id": c.id, "message": c.message, "author": c.author,
                })),
                "image": event.image.as_ref().map(|i| json!({
                    "repository": i.repository, "tag": i.tag, "digest": i.digest,
                })),
                "received_at": crate::time::rfc3339(event.received_at_ms),
            });
            (format!("{}{path}", platform.origin), body)
        }
        DeployTarget::Rainbond {
            service_id,
            secret_key,
        } => (
            format!("{}/console/custom/deploy/{service_id}", platform.origin),
            json!({"secret_key": secret_key.expose()}),
        ),
    };
    OutboundRequest {
        method: "POST".into(),
        url,
        headers,
        body: serde_json::to_vec(&body).expect("JSON values serialise"),
    }
}

/// Reads the platform's answer: `Ok` when the deploy was accepted.
pub fn interpret_answer(target: &DeployTarget, status: u16, body: &[u8]) -> Result<(), Error> {
    let accepted = (200..300).contains(&status);
    match target {
        DeployTarget::Generic { .. } if accepted => Ok(()),
        DeployTarget::Generic { .. } => Err(Error::Platform(format!(
            "the platform answered HTTP {status}"
        ))),
        DeployTarget::Rainbond { .. } => {
            let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
            let code = parsed
                .as_ref()
                .and_then(|v| v.get("code"))
                .and_then(|c| c.as_u64());
            let msg = parsed
                .as_ref()
                .and_then(|v| v.get("msg_show").or_else(|| v.get("msg")))
                .and_then(|m| m.as_str())
                .map(|m| m.chars().take(200).collect::<String>());
            if accepted && code.is_none_or(|c| c == 200) {
                return Ok(());
            }
            let text = String::from_utf8_lossy(body);
            if text.contains("组件状态不支持") {
                return Err(Error::PlatformConflict(format!(
                    "Rainbond: the component's status does not support a deploy ({})",
                    msg.as_deref().unwrap_or("组件状态不支持")
                )));
            }
            Err(Error::Platform(match msg {
                Some(m) => format!("Rainbond answered HTTP {status}: {m}"),
                None => format!("Rainbond answered HTTP {status}"),
            }))
        }
    }
}
