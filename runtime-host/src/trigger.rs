//! Plain Rust mirrors of the WIT types of `autodeploy:gateway/trigger@0.1.0`.

use crate::bindings::exports::autodeploy::gateway::trigger as wit;

/// The inbound webhook request (`inbound-request`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// The one outbound HTTP request that performs the deploy (`outbound-request`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
