//! The one error type of the gateway, for webhook deliveries and the admin API alike,
//! mapped once to a status and a public message. Public messages never contain a secret
//! or a hint at one; details for the operator go to the log through [`Error::detail`].

use crate::model::Trigger;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 405 on a hook: webhooks are POSTs.
    MethodNotAllowed,
    /// 405 on an admin route.
    MethodNotAllowedOn { method: String, path: String },
    /// 404: unknown route or app, or a wrong image token (indistinguishable on purpose).
    NotFound,
    /// 404 on the admin API, naming the app.
    AppNotFound(String),
    /// 404: an admin trigger action other than enable, disable and rotate.
    UnknownAction,
    /// 404: a redeploy of a delivery that is not among the app's recent deployed ones.
    DeliveryNotFound,
    /// 413: the body is over the route's limit.
    PayloadTooLarge { limit: usize },
    /// 415: neither JSON nor form-encoded.
    UnsupportedMediaType(String),
    /// 401: missing or wrong signature, token or secret. The text says which of these
    /// was missing or wrong, never what the right value is.
    Unauthorized(&'static str),
    /// 403: the trigger's switch is off.
    TriggerDisabled(Trigger),
    /// 400: the payload could not be read.
    BadPayload(String),
    /// 400: no supported provider sent this.
    UnknownProvider(&'static str),
    /// 400: an admin request body or value is not valid; names the field when there is one.
    Invalid { field: Option<String>, why: String },
    /// 409 `in_progress`: the same delivery is being deployed right now.
    InProgress,
    /// 409: the app's status does not allow a deploy.
    StatusNotDeployable(String),
    /// 409: the platform says the app cannot be deployed in its current state.
    PlatformConflict { why: String, status: u16 },
    /// 502: the platform refused (`status`), timed out or could not be reached.
    Platform { why: String, status: Option<u16> },
    /// 503: the key-value store failed.
    Store(String),
    /// 503: the request is older than a deploy may start after
    /// ([`DEPLOY_DEADLINE_MS`](crate::gateway::DEPLOY_DEADLINE_MS)): its provider has given
    /// up on it, and a newer push may have deployed since.
    TooLate { waited_ms: u64 },
    /// 500: a configuration problem on our side (e.g. `platform_url` unset).
    Config(String),
}

impl Error {
    /// A 400 naming `field`: the message reads `field: why`.
    pub fn field(field: impl Into<String>, why: impl Into<String>) -> Error {
        Error::Invalid {
            field: Some(field.into()),
            why: why.into(),
        }
    }

    /// A 400 about the request as a whole.
    pub fn invalid(why: impl Into<String>) -> Error {
        Error::Invalid {
            field: None,
            why: why.into(),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::MethodNotAllowed | Error::MethodNotAllowedOn { .. } => 405,
            Error::NotFound
            | Error::AppNotFound(_)
            | Error::UnknownAction
            | Error::DeliveryNotFound => 404,
            Error::PayloadTooLarge { .. } => 413,
            Error::UnsupportedMediaType(_) => 415,
            Error::Unauthorized(_) => 401,
            Error::TriggerDisabled(_) => 403,
            Error::BadPayload(_) | Error::UnknownProvider(_) | Error::Invalid { .. } => 400,
            Error::InProgress | Error::StatusNotDeployable(_) | Error::PlatformConflict { .. } => {
                409
            }
            Error::Platform { .. } => 502,
            Error::Store(_) | Error::TooLate { .. } => 503,
            Error::Config(_) => 500,
        }
    }

    /// The `result` field of a hook's answer.
    pub fn result(&self) -> &'static str {
        match self {
            Error::InProgress => "in_progress",
            Error::Platform { .. } | Error::Store(_) | Error::TooLate { .. } | Error::Config(_) => {
                "failed"
            }
            _ => "rejected",
        }
    }

    /// The public message (a hook answer's `reason`, an admin answer's `error`): safe to
    /// show the sender.
    pub fn reason(&self) -> String {
        match self {
            Error::MethodNotAllowed => "method not allowed: webhooks are POST requests".into(),
            Error::MethodNotAllowedOn { method, path } => {
                format!("method {method} not allowed on {path}")
            }
            Error::NotFound => "not found".into(),
            Error::AppNotFound(name) => format!("app {name} not found"),
            Error::UnknownAction => "unknown action: use enable, disable or rotate".into(),
            Error::DeliveryNotFound => format!(
                "no deployed delivery of this id among the app's last {} deliveries: only a \
                 delivery that deployed can be redeployed",
                crate::state::log::CAPACITY
            ),
            Error::PayloadTooLarge { limit } => {
                format!("payload too large: the limit is {limit} bytes")
            }
            Error::UnsupportedMediaType(got) => format!(
                "unsupported content type {got:?}: send application/json or \
                 application/x-www-form-urlencoded (payload=)"
            ),
            Error::Unauthorized(what) => (*what).into(),
            Error::TriggerDisabled(t) => format!("the {} trigger is disabled", t.as_str()),
            Error::BadPayload(why) => format!("malformed payload: {why}"),
            Error::UnknownProvider(supported) => {
                format!("unknown provider: supported are {supported}")
            }
            Error::Invalid {
                field: Some(field),
                why,
            } => format!("{field}: {why}"),
            Error::Invalid { field: None, why } => why.clone(),
            Error::InProgress => "this delivery is being deployed right now".into(),
            Error::StatusNotDeployable(status) => {
                format!("app status {status:?} does not allow a deploy")
            }
            Error::PlatformConflict { why, .. } => why.clone(),
            Error::Platform { why, .. } => format!("deploy failed: {why}"),
            Error::Store(_) => "the key-value store is unavailable".into(),
            Error::TooLate { waited_ms } => format!(
                "not deployed: the request waited {waited_ms} ms in the gateway, longer than \
                 the {} ms after which a deploy no longer starts (its sender has given up); \
                 send it again",
                crate::gateway::DEPLOY_DEADLINE_MS
            ),
            Error::Config(why) => format!("gateway misconfigured: {why}"),
        }
    }

    /// The operator's view, for the log (still never a secret).
    pub fn detail(&self) -> String {
        match self {
            Error::Store(detail) => format!("store error: {detail}"),
            other => other.reason(),
        }
    }

    /// The field an admin error is about.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// The platform's HTTP status, when it answered.
    pub fn platform_status(&self) -> Option<u16> {
        match self {
            Error::Platform { status, .. } => *status,
            Error::PlatformConflict { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The admin API's error body: `{"error": <public message>, "field": <field or null>}`.
    pub fn to_admin_json(&self) -> serde_json::Value {
        serde_json::json!({"error": self.reason(), "field": self.field_name()})
    }
}

/// Describes a JSON error without echoing the payload (serde's messages may quote values,
/// and a value may be a secret someone typed into the wrong field).
pub fn describe_json_error(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let msg = err.to_string();
    let kind = match err.classify() {
        Category::Syntax => "invalid JSON".to_string(),
        Category::Eof => "truncated JSON".to_string(),
        Category::Io => "unreadable body".to_string(),
        Category::Data => match msg.split_once(" at line") {
            Some((m, _)) if m.starts_with("missing field") => m.to_string(),
            _ => "unexpected JSON structure".to_string(),
        },
    };
    format!("{kind} at line {} column {}", err.line(), err.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_do_not_echo_values() {
        let err = serde_json::from_str::<std::collections::HashMap<String, u32>>(
            r#"{"secret_key": "s3cr3t-value"}"#,
        )
        .unwrap_err();
        let text = describe_json_error(&err);
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("line 1"), "{text}");
    }

    #[test]
    fn statuses_and_results() {
        assert_eq!(Error::InProgress.status(), 409);
        assert_eq!(Error::InProgress.result(), "in_progress");
        let refused = Error::Platform {
            why: "x".into(),
            status: Some(500),
        };
        assert_eq!((refused.status(), refused.result()), (502, "failed"));
        assert_eq!(refused.platform_status(), Some(500));
        assert_eq!(Error::Store("redis down".into()).result(), "failed");
        assert!(!Error::Store("redis down".into()).reason().contains("redis"));
        assert_eq!(Error::TriggerDisabled(Trigger::Git).status(), 403);
        let field = Error::field("git.branch", "must be a valid git branch name");
        assert_eq!(field.status(), 400);
        assert_eq!(
            field.to_admin_json(),
            serde_json::json!({"error": "git.branch: must be a valid git branch name",
                               "field": "git.branch"})
        );
    }
}
