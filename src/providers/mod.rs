//! Git providers: each one detects, verifies and parses its own webhooks into one
//! normalised [`GitEvent`].

mod github;

pub use github::GitHub;

use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::secret::Secret;

/// A git push, normalised across providers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// The full ref, e.g. `refs/heads/main`.
    pub git_ref: String,
    /// The repository's web URL (sent to the platform).
    pub web_url: String,
    /// Every URL the repository is known by (web, clone, ssh), for matching `git.repo`.
    pub urls: Vec<String>,
    /// The push deleted the ref.
    pub deleted: bool,
    /// The commit the ref now points at; `None` for deletions.
    pub head: Option<Commit>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub id: String,
    pub message: String,
    pub author: String,
}

/// What a verified git webhook says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GitEvent {
    /// A ping or test delivery.
    Ping,
    Push(Push),
    /// Any other event (issues, pull requests, ...), by the provider's name for it.
    Other(String),
}

/// One git provider's webhook dialect.
pub trait GitProvider: Sync {
    fn provider(&self) -> Provider;

    /// The provider's own delivery id header, when it sends one.
    fn delivery_id(&self, headers: &Headers) -> Option<String>;

    /// Authenticates the raw body with the app's git secret, in constant time.
    fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        secret: &Secret,
        now_ms: u64,
    ) -> Result<(), Error>;

    /// Parses the (already verified, decoded) JSON payload.
    fn parse(&self, headers: &Headers, json: &[u8]) -> Result<GitEvent, Error>;
}

/// Providers we recognise, in detection order.
pub const SUPPORTED: &str = "GitHub";

/// Picks the provider from the request headers.
pub fn detect(headers: &Headers) -> Result<&'static dyn GitProvider, Error> {
    if headers.contains("x-github-event") {
        return Ok(&GitHub);
    }
    Err(Error::UnknownProvider(SUPPORTED))
}

/// Parses a JSON payload, describing failures without echoing it.
pub(crate) fn parse_json(json: &[u8], what: &str) -> Result<serde_json::Value, Error> {
    let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| {
        Error::BadPayload(format!("{what}: {}", crate::error::describe_json_error(&e)))
    })?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(Error::BadPayload(format!("{what}: expected a JSON object")))
    }
}

/// The string at a JSON pointer (`/a/b`), if it is one.
pub(crate) fn str_at<'v>(value: &'v serde_json::Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(serde_json::Value::as_str)
}

#[cfg(test)]
pub(crate) mod testutil {
    use crate::model::Headers;

    pub fn headers(pairs: &[(&str, &str)]) -> Headers {
        Headers::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())))
    }
}
