//! Outbound calls (the deploy call, notifications, commit statuses) through
//! `wasi:http/outgoing-handler`.

use std::time::Duration;

use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types as http};
use wasi::io::streams::StreamError;

use super::write_all;
use crate::model::OutboundRequest;

/// Most bytes read of a platform answer (only its status and a short message matter).
const MAX_ANSWER: usize = 64 * 1024;

/// One outbound call through wasi-http, bounded as a whole by `timeout` (connect, first
/// byte, and the full answer).
pub(super) fn send(req: &OutboundRequest, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
    let (scheme, rest) = req
        .url
        .split_once("://")
        // Never the URL itself: a chat service's URL is its credential.
        .ok_or_else(|| "not an absolute URL".to_string())?;
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
                        format!("unreachable: {e:?}")
                    }
                })?;
        }
        // An answer that came with the deadline still counts: it is taken at the top of
        // the loop (`get` hands it out once, so it is not asked for here).
        let ready = wasi::io::poll::poll(&[&future.subscribe(), &deadline]);
        if !ready.contains(&0) {
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
