//! A fake deploy platform: intercepts the component's outbound HTTP calls (no network).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// One outbound request the component made, as the platform would have received it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The full URI: `scheme://authority/path?query`.
    pub uri: String,
    /// Every header in order, names lowercase (values lossily decoded as UTF-8).
    pub headers: Vec<(String, String)>,
    /// The whole body (empty when the platform answered without reading it:
    /// [`FakePlatform::set_answer_unread`]).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (any case), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    ///
    /// When the body is not JSON (this is a test helper: the panic message shows the body).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "outbound {} {} body is not JSON ({e}): {:?}",
                self.method,
                self.uri,
                self.text()
            )
        })
    }
}

struct State {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    delay: Option<Duration>,
    unread: bool,
    requests: Vec<RecordedRequest>,
}

/// The fake platform. Clones share state: keep one in the test, give a clone to
/// [`HostBuilder::fake_platform`](crate::HostBuilder::fake_platform).
///
/// Every outbound request is recorded (body fully read, unless told not to) and
/// answered with the current status (default 200), body (default `{}`) and extra
/// headers (default none; a `content-type: application/json` is added unless the
/// headers set one), after the current delay if any. When the guest set a first-byte
/// timeout shorter than the delay, the call fails with `connection-read-timeout` once
/// that timeout elapses, as a real slow server would.
#[derive(Clone)]
pub struct FakePlatform {
    state: Arc<Mutex<State>>,
}

impl Default for FakePlatform {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FakePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("FakePlatform")
            .field("status", &s.status)
            .field("delay", &s.delay)
            .field("requests", &s.requests.len())
            .finish()
    }
}

impl FakePlatform {
    /// Answers `200 {}` at once.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                status: 200,
                body: b"{}".to_vec(),
                headers: Vec::new(),
                delay: None,
                unread: false,
                requests: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The status of every following answer.
    pub fn set_status(&self, status: u16) {
        self.lock().status = status;
    }

    /// The body of every following answer.
    pub fn set_body(&self, body: impl Into<Vec<u8>>) {
        self.lock().body = body.into();
    }

    /// Extra headers of every following answer.
    pub fn set_headers(&self, headers: Vec<(String, String)>) {
        self.lock().headers = headers;
    }

    /// Wait this long (after reading the request) before answering; `None`: at once.
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.lock().delay = delay;
    }

    /// Answer from the request's head, dropping the body unread, as a server that
    /// answers early and closes the connection: the guest's write of the rest of the
    /// body fails (the host buffers two writes).
    pub fn set_answer_unread(&self, unread: bool) {
        self.lock().unread = unread;
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Record `request` and answer it (the body of `WasiHttpHooks::send_request`).
    pub(crate) async fn answer(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let (parts, body) = request.into_parts();
        let unread = self.lock().unread;
        let body = if unread {
            drop(body);
            Vec::new()
        } else {
            body.collect().await?.to_bytes().to_vec()
        };
        let recorded = RecordedRequest {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
        };
        let (status, answer_body, headers, delay) = {
            let mut s = self.lock();
            s.requests.push(recorded);
            (s.status, s.body.clone(), s.headers.clone(), s.delay)
        };
        if let Some(delay) = delay {
            match options.and_then(|o| o.first_byte_timeout) {
                Some(timeout) if timeout < delay => {
                    tokio::time::sleep(timeout).await;
                    return Err(HttpError::ConnectionReadTimeout);
                }
                _ => tokio::time::sleep(delay).await,
            }
        }
        let mut response = http::Response::builder().status(status);
        let has_content_type = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        if !has_content_type {
            response = response.header("content-type", "application/json");
        }
        for (name, value) in &headers {
            response = response.header(name.as_str(), value.as_str());
        }
        let body = Full::new(Bytes::from(answer_body))
            .map_err(|never| match never {})
            .boxed_unsync();
        response
            .body(body)
            .map_err(|_| HttpError::HttpProtocolError)
    }
}
