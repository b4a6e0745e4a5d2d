//! One error type for webhook deliveries, mapped to the contract's statuses and public
//! reasons. Public reasons never contain a secret or a hint at one; details for the
//! operator go to the log through `detail`.

use crate::model::Trigger;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 405: webhooks are POSTs.
    MethodNotAllowed,
    /// 404: unknown route or app, or a wrong image token (indistinguishable on purpose).
    NotFound,
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
    /// 409 `in_progress`: the same delivery is being deployed right now.
    InProgress,
    /// 409: the app's status does not allow a deploy.
    StatusNotDeployable(String),
    /// 409: the platform says the app cannot be deployed in its current state.
    PlatformConflict(String),
    /// 502: the platform refused, timed out or could not be reached.
    Platform(String),
    /// 503: the key-value store failed.
    Store(String),
    /// 500: a configuration problem on our side (e.g. `platform_url` unset).
    Config(String),
}

impl Error {
    pub fn status(&self) -> u16 {
        match self {
            Error::MethodNotAllowed => 405,
            Error::NotFound => 404,
            Error::PayloadTooLarge { .. } => 413,
            Error::UnsupportedMediaType(_) => 415,
            Error::Unauthorized(_) => 401,
            Error::TriggerDisabled(_) => 403,
            Error::BadPayload(_) | Error::UnknownProvider(_) => 400,
            Error::InProgress | Error::StatusNotDeployable(_) | Error::PlatformConflict(_) => 409,
            Error::Platform(_) => 502,
            Error::Store(_) => 503,
            Error::Config(_) => 500,
        }
    }

    /// The `result` field of the answer.
    pub fn result(&self) -> &'static str {
        match self {
            Error::InProgress => "in_progress",
            Error::Platform(_) | Error::Store(_) | Error::Config(_) => "failed",
            _ => "rejected",
        }
    }

    /// The `reason` field of the answer: safe to show the sender.
    pub fn reason(&self) -> String {
        match self {
            Error::MethodNotAllowed => "method not allowed: webhooks are POST requests".into(),
            Error::NotFound => "not found".into(),
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
            Error::InProgress => "this delivery is being deployed right now".into(),
            Error::StatusNotDeployable(status) => {
                format!("app status {status:?} does not allow a deploy")
            }
            Error::PlatformConflict(why) => why.clone(),
            Error::Platform(why) => format!("deploy failed: {why}"),
            Error::Store(_) => "the key-value store is unavailable".into(),
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
        assert_eq!(Error::Platform("x".into()).status(), 502);
        assert_eq!(Error::Platform("x".into()).result(), "failed");
        assert_eq!(Error::Store("redis down".into()).result(), "failed");
        assert!(!Error::Store("redis down".into()).reason().contains("redis"));
        assert_eq!(Error::TriggerDisabled(Trigger::Git).status(), 403);
    }
}
