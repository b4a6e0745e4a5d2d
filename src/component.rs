//! The component layer (wasm32 only): Spin's HTTP entry, variables, key-value and
//! outbound HTTP mapped onto the core's [`Host`], and the `trigger` export.

use std::cell::OnceCell;
use std::time::Duration;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types as http};
use spin_sdk::wit::wasi::keyvalue::{atomics, store as wasi_kv};
use wasi::io::streams::StreamError;

use crate::model::{Headers, OutboundRequest};
use crate::service::{self, BodyError, Host, Request, Response};
use crate::store::{Kv, StoreError};

/// Most bytes read of a platform answer (only its status and a short message matter).
const MAX_ANSWER: usize = 64 * 1024;

/// Bytes as text: moved when they are UTF-8 (header values nearly always are), else
/// converted lossily.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[spin_sdk::http_component]
fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let host = SpinHost::default();
    let headers = Headers::new(
        req.headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, text(value))),
    );
    let request = Request {
        method: method_name(&req.method()),
        path: req.path_with_query().unwrap_or_else(|| "/".into()),
        headers,
        scheme: req.scheme().map(|s| match s {
            http::Scheme::Http => "http".into(),
            http::Scheme::Https => "https".into(),
            http::Scheme::Other(other) => other,
        }),
        authority: req.authority(),
    };
    let mut read_body = |limit: usize| read_incoming(&req, limit);
    let response = service::handle(&host, &request, &mut read_body);
    respond(out, response);
}

fn method_name(m: &http::Method) -> String {
    match m {
        http::Method::Get => "GET".into(),
        http::Method::Head => "HEAD".into(),
        http::Method::Post => "POST".into(),
        http::Method::Put => "PUT".into(),
        http::Method::Delete => "DELETE".into(),
        http::Method::Connect => "CONNECT".into(),
        http::Method::Options => "OPTIONS".into(),
        http::Method::Trace => "TRACE".into(),
        http::Method::Patch => "PATCH".into(),
        http::Method::Other(other) => other.clone(),
    }
}

/// Reads the request body, stopping as soon as it passes `limit`.
fn read_incoming(req: &IncomingRequest, limit: usize) -> Result<Vec<u8>, BodyError> {
    let body = req
        .consume()
        .map_err(|()| BodyError::Io("body already consumed".into()))?;
    let mut data = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| BodyError::Io("no body stream".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    if data.len() + chunk.len() > limit {
                        return Err(BodyError::TooLarge);
                    }
                    data.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(BodyError::Io(e.to_debug_string()))
                }
            }
        }
    }
    drop(body);
    Ok(data)
}

fn respond(out: ResponseOutparam, response: Response) {
    let mut fields: Vec<(String, Vec<u8>)> = response
        .headers
        .into_iter()
        .map(|(n, v)| (n, v.into_bytes()))
        .collect();
    fields.push((
        "content-length".into(),
        response.body.len().to_string().into_bytes(),
    ));
    let headers = http::Fields::from_list(&fields).unwrap_or_else(|_| http::Fields::new());
    let resp = http::OutgoingResponse::new(headers);
    let _ = resp.set_status_code(response.status);
    let body = resp.body().expect("a new response has a body");
    out.set(resp);
    write_all(&body, &response.body);
    let _ = http::OutgoingBody::finish(body, None);
}

fn write_all(body: &http::OutgoingBody, bytes: &[u8]) -> bool {
    let Ok(stream) = body.write() else {
        return false;
    };
    bytes
        .chunks(4096)
        .all(|chunk| stream.blocking_write_and_flush(chunk).is_ok())
}

/// The Spin host of one request: stores are opened on first use.
#[derive(Default)]
struct SpinHost {
    kv: OnceCell<Result<SpinKv, StoreError>>,
}

struct SpinKv {
    store: spin_sdk::key_value::Store,
    bucket: wasi_kv::Bucket,
}

impl SpinKv {
    fn open() -> Result<SpinKv, StoreError> {
        let store = spin_sdk::key_value::Store::open_default()
            .map_err(|e| StoreError(format!("open key-value store default: {e}")))?;
        let bucket = wasi_kv::open("default")
            .map_err(|e| StoreError(format!("open wasi:keyvalue bucket default: {e:?}")))?;
        Ok(SpinKv { store, bucket })
    }
}

fn kv_err(e: impl std::fmt::Debug) -> StoreError {
    StoreError(format!("{e:?}"))
}

impl Kv for SpinKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(key).map_err(kv_err)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.store.set(key, value).map_err(kv_err)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.store.delete(key).map_err(kv_err)
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.store.exists(key).map_err(kv_err)
    }
    fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.store.get_keys().map_err(kv_err)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(&self.bucket, key, delta).map_err(kv_err)
    }
}

impl Host for SpinHost {
    fn kv(&self) -> Result<&dyn Kv, StoreError> {
        match self.kv.get_or_init(SpinKv::open) {
            Ok(kv) => Ok(kv),
            Err(e) => Err(e.clone()),
        }
    }

    fn var(&self, name: &str) -> Option<String> {
        spin_sdk::variables::get(name).ok()
    }

    fn send(&self, req: &OutboundRequest, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
        send(req, timeout)
    }

    // The clock and stderr are called through their WASI 0.2 interfaces, not std:
    // std reaches them through wasi-libc, and the fallback build's libc is the preview1
    // one, which makes the linker add the 10 KB preview1 adapter for two calls.
    fn now_ms(&self) -> u64 {
        let now = wasi::clocks::wall_clock::now();
        now.seconds * 1000 + u64::from(now.nanoseconds / 1_000_000)
    }

    fn fill_random(&self, buf: &mut [u8]) {
        let bytes = wasi::random::random::get_random_bytes(buf.len() as u64);
        buf.copy_from_slice(&bytes);
    }

    fn log(&self, line: &str) {
        let mut text = Vec::with_capacity(line.len() + 1);
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
        let stderr = wasi::cli::stderr::get_stderr();
        // One call writes at most 4096 bytes.
        for chunk in text.chunks(4096) {
            if stderr.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
}

/// One outbound call through wasi-http, bounded as a whole by `timeout` (connect, first
/// byte, and the full answer).
fn send(req: &OutboundRequest, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
    let (scheme, rest) = req
        .url
        .split_once("://")
        .ok_or_else(|| format!("bad platform URL {}", req.url))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut fields: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
        .collect();
    fields.push((
        "content-length".into(),
        req.body.len().to_string().into_bytes(),
    ));
    let headers = http::Fields::from_list(&fields).map_err(|e| format!("headers: {e:?}"))?;
    let outgoing = http::OutgoingRequest::new(headers);
    let method = if req.method == "POST" {
        http::Method::Post
    } else {
        http::Method::Other(req.method.clone())
    };
    let _ = outgoing.set_method(&method);
    let _ = outgoing.set_scheme(Some(&if scheme == "https" {
        http::Scheme::Https
    } else {
        http::Scheme::Http
    }));
    let _ = outgoing.set_authority(Some(authority));
    let _ = outgoing.set_path_with_query(Some(path));
    let body = outgoing
        .body()
        .map_err(|()| "request body unavailable".to_string())?;

    let nanos = timeout.as_nanos() as u64;
    let options = http::RequestOptions::new();
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));
    let deadline = wasi::clocks::monotonic_clock::subscribe_duration(nanos);

    let future = outgoing_handler::handle(outgoing, Some(options))
        .map_err(|e| format!("could not send: {e:?}"))?;
    // A platform may answer before it has read the body, and close the connection: then
    // the write fails, but the answer (if there is one) is what says whether the deploy
    // was accepted. A body that could not be written is dropped unfinished.
    let unwritten = !write_all(&body, &req.body);
    if unwritten {
        drop(body);
    } else {
        http::OutgoingBody::finish(body, None)
            .map_err(|e| format!("could not finish the request body: {e:?}"))?;
    }

    let response = loop {
        if let Some(result) = future.get() {
            break result
                .map_err(|()| "response already taken".to_string())?
                .map_err(|e| {
                    if unwritten {
                        format!("could not write the request body: {e:?}")
                    } else {
                        format!("platform unreachable: {e:?}")
                    }
                })?;
        }
        let ready = wasi::io::poll::poll(&[&future.subscribe(), &deadline]);
        if ready.contains(&1) && future.get().is_none() {
            return Err(format!("no answer within {} s", timeout.as_secs()));
        }
    };
    let status = response.status();
    let incoming = response
        .consume()
        .map_err(|()| "response body unavailable".to_string())?;
    let mut data = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| "response body unavailable".to_string())?;
        loop {
            match stream.read(64 * 1024) {
                Ok(chunk) if chunk.is_empty() => {
                    let ready = wasi::io::poll::poll(&[&stream.subscribe(), &deadline]);
                    if ready == [1] {
                        return Err(format!(
                            "answer not complete within {} s",
                            timeout.as_secs()
                        ));
                    }
                }
                Ok(chunk) => {
                    if data.len() < MAX_ANSWER {
                        data.extend_from_slice(&chunk);
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(format!("answer interrupted: {}", e.to_debug_string()))
                }
            }
        }
    }
    drop(incoming);
    Ok((status, data))
}

mod bindings {
    wit_bindgen::generate!({
        world: "trigger-export",
        path: "wit",
    });
}

use bindings::exports::autodeploy::gateway::trigger::{
    Decision, Guest, InboundRequest, OutboundRequest as WitOutbound, Rejection,
};

struct Trigger;

impl Guest for Trigger {
    fn evaluate(config: String, request: InboundRequest, now_ms: u64) -> Decision {
        let headers = Headers::new(request.headers);
        match crate::evaluate::evaluate(
            &config,
            &request.method,
            &request.path,
            &headers,
            &request.body,
            now_ms,
        ) {
            crate::evaluate::Decision::Pong => Decision::Pong,
            crate::evaluate::Decision::Ignore(why) => Decision::Ignore(why),
            crate::evaluate::Decision::Reject { status, reason } => {
                Decision::Reject(Rejection { status, reason })
            }
            crate::evaluate::Decision::Deploy(r) => Decision::Deploy(WitOutbound {
                method: r.method,
                url: r.url,
                headers: r.headers,
                body: r.body,
            }),
        }
    }
}

bindings::export!(Trigger with_types_in bindings);
