//! Plain Rust mirrors of the WIT types of `autodeploy:gateway/trigger@0.1.0`.

use crate::bindings::exports::autodeploy::gateway::trigger as wit;
use crate::server::redact_path;

/// The inbound webhook request (`inbound-request`). Its `Debug` hides credentials: the
/// path as the access log shows it, header values of [`is_secret_header`] names as
/// `***`, and the body's length only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TriggerRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// Path with query, e.g. `/hooks/shop/git`.
    pub path: String,
    /// Headers as received: name (any case) and value.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl TriggerRequest {
    /// A request with no headers and an empty body.
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_string(),
            path: path.to_string(),
            ..Self::default()
        }
    }

    /// Add a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// The one outbound HTTP request that performs the deploy (`outbound-request`). Its
/// `Debug` hides credentials: the URL without user info or query, header values of
/// [`is_secret_header`] names as `***`, and the body's length only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OutboundRequest {
    /// `POST`, ...
    pub method: String,
    /// Absolute URL on the configured platform origin.
    pub url: String,
    /// Headers to send: name (any case) and value.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl OutboundRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

impl std::fmt::Debug for TriggerRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerRequest")
            .field("method", &self.method)
            .field("path", &redact_path(&self.path))
            .field("headers", &Headers(&self.headers))
            .field("body", &Length(self.body.len()))
            .finish()
    }
}

impl std::fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundRequest")
            .field("method", &self.method)
            .field("url", &redact_url(&self.url))
            .field("headers", &Headers(&self.headers))
            .field("body", &Length(self.body.len()))
            .finish()
    }
}

/// Whether a header's value may be a credential: a name with `auth`, `token`, `secret`,
/// `signature`, `key` (but `Idempotency-Key`), `cookie`, `password` or `session` in it,
/// e.g. `Authorization`, `X-Gitlab-Token`, `X-Hub-Signature-256`, `X-Api-Key`.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name != "idempotency-key"
        && [
            "auth",
            "token",
            "secret",
            "signature",
            "key",
            "cookie",
            "password",
            "session",
        ]
        .iter()
        .any(|word| name.contains(word))
}

/// Headers with the values of [`is_secret_header`] names shown as `***`.
struct Headers<'a>(&'a [(String, String)]);

impl std::fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, value)| {
                let shown = if is_secret_header(name) { "***" } else { value };
                (name, shown)
            }))
            .finish()
    }
}

/// A body, shown as its length.
struct Length(usize);

impl std::fmt::Debug for Length {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// A URL with any user info shown as `***@` and any query as `?***`.
fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, _)) => (base, "?***"),
        None => (url, ""),
    };
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    format!("{base}{query}")
}

/// The decision of `evaluate` (`decision`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A provider's ping or test delivery.
    Pong,
    /// A valid event the rules filter out; the reason says which rule.
    Ignore(String),
    /// Refused with this HTTP status and public reason.
    Reject {
        /// The HTTP status the gateway answers.
        status: u16,
        /// The public reason.
        reason: String,
    },
    /// Send exactly this request, once.
    Deploy(OutboundRequest),
}

impl From<&TriggerRequest> for wit::InboundRequest {
    fn from(r: &TriggerRequest) -> Self {
        wit::InboundRequest {
            method: r.method.clone(),
            path: r.path.clone(),
            headers: r.headers.clone(),
            body: r.body.clone(),
        }
    }
}

impl From<wit::OutboundRequest> for OutboundRequest {
    fn from(r: wit::OutboundRequest) -> Self {
        OutboundRequest {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<wit::Decision> for Decision {
    fn from(d: wit::Decision) -> Self {
        match d {
            wit::Decision::Pong => Decision::Pong,
            wit::Decision::Ignore(reason) => Decision::Ignore(reason),
            wit::Decision::Reject(r) => Decision::Reject {
                status: r.status,
                reason: r.reason,
            },
            wit::Decision::Deploy(r) => Decision::Deploy(r.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-v4lue";

    #[test]
    fn debug_never_shows_credentials() {
        let inbound =
            TriggerRequest::new("POST", &format!("/hooks/shop/image/{SECRET}?t={SECRET}"))
                .header("Authorization", &format!("Bearer {SECRET}"))
                .header("X-Gitlab-Token", SECRET)
                .header("X-Hub-Signature-256", &format!("sha256={SECRET}"))
                .header("X-Api-Key", SECRET)
                .header("Cookie", &format!("session={SECRET}"))
                .header("Content-Type", "application/json")
                .body(format!(r#"{{"secret_key":"{SECRET}"}}"#));
        let shown = format!("{inbound:?} {inbound:#?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("/hooks/shop/image/***"), "{shown}");
        assert!(shown.contains("application/json"), "{shown}");
        assert!(shown.contains("X-Gitlab-Token"), "{shown}");
        assert!(
            shown.contains(&format!("<{} bytes>", inbound.body.len())),
            "{shown}"
        );

        let outbound = OutboundRequest {
            method: "POST".into(),
            url: format!("https://user:{SECRET}@console.example.com/deploy?token={SECRET}"),
            headers: vec![
                ("authorization".into(), format!("Bearer {SECRET}")),
                ("idempotency-key".into(), "d1".into()),
            ],
            body: format!(r#"{{"secret_key":"{SECRET}"}}"#).into_bytes(),
        };
        let shown = format!("{outbound:?} {outbound:#?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(
            shown.contains("https://***@console.example.com/deploy?***"),
            "{shown}"
        );
        assert!(shown.contains("\"d1\""), "{shown}");
        let decision = Decision::Deploy(outbound);
        assert!(!format!("{decision:?}").contains(SECRET));
    }
}
