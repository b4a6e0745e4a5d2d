//! The component layer (wasm32 only): Spin's HTTP entry maps the incoming request onto
//! the gateway; `host` is the gateway's [`Host`](crate::gateway::Host) over Spin's
//! variables, key-value store, clock and stderr; `outbound` sends the deploy call
//! through wasi-http; `trigger` is the `autodeploy:gateway/trigger` export.

mod host;
mod outbound;
mod trigger;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::wit::wasi::http0_2_0::types as http;
use wasi::io::streams::StreamError;

use crate::gateway::{self, BodyError, Request, Response};
use crate::model::Headers;

/// Bytes as text: moved when they are UTF-8 (header values nearly always are), else
/// converted lossily.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[spin_sdk::http_component]
fn handle(req: IncomingRequest, out: ResponseOutparam) {
    let host = host::SpinHost::default();
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
    let mut response = gateway::handle(&host, &request, &mut read_body);
    let after = response.after.take();
    respond(out, response);
    // Spin keeps running the handler after the response is sent: notifications and
    // commit statuses go out now, without delaying the provider's answer.
    if let Some(after) = after {
        gateway::followup::run(&host, after);
    }
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

pub(crate) fn write_all(body: &http::OutgoingBody, bytes: &[u8]) -> bool {
    let Ok(stream) = body.write() else {
        return false;
    };
    bytes
        .chunks(4096)
        .all(|chunk| stream.blocking_write_and_flush(chunk).is_ok())
}
