//! The one outbound deploy call, and how its answer is read.

use serde_json::{json, Value};

use crate::error::Error;
use crate::model::{OutboundRequest, Provider, Trigger};
use crate::providers::Commit;
use crate::state::app::{App, DeployTarget};
use crate::support::secret::Secret;

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
    /// The branch pushed; `None` for a tag push.
    pub branch: Option<String>,
    /// The tag pushed; `None` for a branch push.
    pub tag: Option<String>,
    pub commit: Option<Commit>,
    pub image: Option<ImageInfo>,
    pub received_at_ms: u64,
    /// A rule that could not be checked, and why: said in the answer and the log, not
    /// sent to the platform.
    pub note: Option<String>,
    /// Where the platform reports how the deploy ended (generic target only).
    pub status_url: Option<String>,
}

/// The longest commit message a delivery log entry keeps for a redeploy (cut at a
/// character boundary).
pub const KEPT_MESSAGE_BYTES: usize = 4096;

impl DeployEvent {
    /// What the delivery log keeps of a deployed event, for a redeploy: the deploy body's
    /// members that name what was deployed (no secret; the message cut to
    /// [`KEPT_MESSAGE_BYTES`]).
    pub fn kept(&self) -> Value {
        json!({
            "repository": self.repository,
            "branch": self.branch,
            "tag": self.tag,
            "commit": self.commit.as_ref().map(|c| json!({
                "id": c.id,
                "message": crate::support::text::cut(&c.message, KEPT_MESSAGE_BYTES),
                "author": c.author,
            })),
            "image": self.image.as_ref().map(|i| json!({
                "repository": i.repository, "tag": i.tag, "digest": i.digest,
            })),
        })
    }

    /// A manual deploy (trigger and provider `manual`) of what [`kept`](Self::kept) wrote.
    pub fn manual_from_kept(kept: &Value, delivery: String, received_at_ms: u64) -> DeployEvent {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        DeployEvent {
            trigger: Trigger::Manual,
            provider: Provider::Manual,
            delivery,
            repository: s(kept, "repository"),
            branch: s(kept, "branch"),
            tag: s(kept, "tag"),
            commit: kept
                .get("commit")
                .filter(|c| c.is_object())
                .map(|c| Commit {
                    id: s(c, "id").unwrap_or_default(),
                    message: s(c, "message").unwrap_or_default(),
                    author: s(c, "author").unwrap_or_default(),
                }),
            image: kept
                .get("image")
                .filter(|i| i.is_object())
                .map(|i| ImageInfo {
                    repository: s(i, "repository").unwrap_or_default(),
                    tag: s(i, "tag").unwrap_or_default(),
                    digest: s(i, "digest"),
                }),
            received_at_ms,
            note: None,
            status_url: None,
        }
    }
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
                "tag": event.tag,
                "commit": event.commit.as_ref().map(|c| json!({
                    "id": c.id, "message": c.message, "author": c.author,
                })),
                "image": event.image.as_ref().map(|i| json!({
                    "repository": i.repository, "tag": i.tag, "digest": i.digest,
                })),
                "received_at": crate::support::time::rfc3339(event.received_at_ms),
                "status_url": event.status_url,
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
        DeployTarget::Generic { .. } => Err(Error::Platform {
            why: format!("the platform answered HTTP {status}"),
            status: Some(status),
        }),
        DeployTarget::Rainbond { .. } => {
            // Rainbond answers `{"code", "msg", "msg_show", "data"}`: `msg_show` is the
            // message for people, `msg` the one for programs; some errors are a bare JSON
            // string. Its "component status does not support it" refusal comes as HTTP
            // 400 (or even 200) with `msg_show: 组件状态不支持` and `msg: component is
            // closed, not support`.
            let parsed: Value = crate::support::json::parse(body).unwrap_or_default();
            let msg = ["msg_show", "msg"]
                .iter()
                .find_map(|k| {
                    parsed
                        .get(k)
                        .and_then(Value::as_str)
                        .filter(|m| !m.is_empty())
                })
                .or(parsed.as_str())
                .map(platform_message);
            const STATUS_NOT_SUPPORTED: &str = "组件状态不支持";
            let closed = parsed
                .get("msg")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if String::from_utf8_lossy(body).contains(STATUS_NOT_SUPPORTED)
                || msg
                    .as_deref()
                    .is_some_and(|m| m.contains(STATUS_NOT_SUPPORTED))
                || closed.starts_with("component is closed")
            {
                return Err(Error::PlatformConflict {
                    why: format!(
                        "Rainbond: the component's status does not support a deploy ({})",
                        msg.as_deref().unwrap_or(STATUS_NOT_SUPPORTED)
                    ),
                    status,
                });
            }
            // A 2xx is Rainbond's acceptance only with its own `"code": 200`: a proxy's
            // login page or error page in a 2xx deployed nothing.
            let code = parsed.get("code").and_then(Value::as_u64);
            if accepted && code == Some(200) {
                return Ok(());
            }
            Err(Error::Platform {
                why: match (msg, code) {
                    (Some(m), _) => format!("Rainbond answered HTTP {status}: {m}"),
                    (None, None) if accepted => {
                        format!("HTTP {status} without Rainbond's answer (a proxy in between?)")
                    }
                    (None, _) => format!("Rainbond answered HTTP {status}"),
                },
                status: Some(status),
            })
        }
    }
}

/// A platform's message, fit for an answer: at most 200 characters.
fn platform_message(m: &str) -> String {
    m.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rainbond_app() -> App {
        let body = br#"{"deploy": {"target": "rainbond", "service_id": "9f2c7d1e4b",
                        "secret_key": "rb-key-123"}}"#;
        App::from_put("shop", body, None, &mut |b: &mut [u8]| b.fill(7)).unwrap()
    }

    #[test]
    fn rainbond_call_is_its_own_api_trigger() {
        let app = rainbond_app();
        let platform =
            PlatformConfig::new(Some("https://console.example.com/"), Some("platform-token"))
                .unwrap();
        let event = DeployEvent {
            trigger: Trigger::Api,
            provider: Provider::Api,
            delivery: "d-1".into(),
            repository: None,
            branch: None,
            tag: None,
            commit: None,
            image: None,
            received_at_ms: 0,
            note: None,
            status_url: None,
        };
        let req = build_request(&app, &platform, &event);
        assert_eq!(req.method, "POST");
        assert_eq!(
            req.url,
            "https://console.example.com/console/custom/deploy/9f2c7d1e4b"
        );
        assert_eq!(req.body, br#"{"secret_key":"rb-key-123"}"#);
        assert!(req
            .headers
            .contains(&("idempotency-key".into(), "d-1".into())));
        assert!(!req.headers.iter().any(|(n, _)| n == "authorization"));
    }

    #[test]
    fn rainbond_answers() {
        let target = rainbond_app().deploy.target;
        let ok = r#"{"code": 200, "msg": "success", "msg_show": "重新构建成功",
                     "data": {"bean": {}, "list": []}}"#;
        assert_eq!(interpret_answer(&target, 200, ok.as_bytes()), Ok(()));

        let closed = r#"{"code": 200, "msg": "component is closed, not support",
                         "msg_show": "组件状态不支持", "data": {"bean": {}, "list": []}}"#;
        for status in [400, 200] {
            let err = interpret_answer(&target, status, closed.as_bytes()).unwrap_err();
            assert_eq!(err.status(), 409, "{err:?}");
            assert!(err.reason().contains("组件状态不支持"), "{}", err.reason());
        }
        // the same refusal with its message escaped as \uXXXX
        let escaped = r#"{"code": 200, "msg_show": "\u7ec4\u4ef6\u72b6\u6001\u4e0d\u652f\u6301"}"#;
        assert_eq!(
            interpret_answer(&target, 400, escaped.as_bytes())
                .unwrap_err()
                .status(),
            409
        );

        let wrong_key = r#"{"code": 400, "msg": "failed", "msg_show": "密钥错误", "data": {}}"#;
        let err = interpret_answer(&target, 400, wrong_key.as_bytes()).unwrap_err();
        assert_eq!((err.status(), err.result()), (502, "failed"));
        assert!(err.reason().contains("密钥错误"), "{}", err.reason());

        let bare = br#""component not exist""#;
        let err = interpret_answer(&target, 400, bare).unwrap_err();
        assert!(
            err.reason().contains("component not exist"),
            "{}",
            err.reason()
        );
        let refused_in_200 = br#"{"code": 412, "msg": "deploy app error", "msg_show": "x"}"#;
        assert_eq!(
            interpret_answer(&target, 200, refused_in_200)
                .unwrap_err()
                .status(),
            502
        );
        // a proxy's login page in a 200 deployed nothing
        let page = interpret_answer(&target, 200, b"<html><body>Sign in</body></html>");
        let page = page.unwrap_err();
        assert_eq!((page.status(), page.platform_status()), (502, Some(200)));
        assert!(
            page.reason().contains("without Rainbond's answer"),
            "{}",
            page.reason()
        );
        assert_eq!(
            interpret_answer(&target, 502, b"<html>")
                .unwrap_err()
                .status(),
            502
        );
    }
}
