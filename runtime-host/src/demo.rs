//! The demo deploy platform (`--demo-platform`): a stub that accepts every deploy call
//! and prints it, credentials hidden, for local walk-throughs; a moment later it reports
//! the deploy succeeded to the call's `status_url`, as a platform would once its build
//! ended, so the console shows an outcome.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use tokio::net::TcpListener;
use wasmtime_wasi_http::io::TokioIo;

/// A stub deploy platform for local walk-throughs (`--demo-platform`): answers every
/// request `202 {"accepted":true}` and prints each call to stdout (method, path, headers
/// with `authorization` shown as `Bearer ***`, and the body with any JSON `secret_key`
/// value shown as `***` and the token of its `status_url` too).
pub struct DemoPlatform {
    listener: TcpListener,
    addr: SocketAddr,
    report_after: Duration,
}

/// How long the demo platform "builds" before it reports the outcome.
pub const DEMO_BUILD_TIME: Duration = Duration::from_secs(2);

impl DemoPlatform {
    /// Bind `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (demo platform): {e}"))?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            report_after: DEMO_BUILD_TIME,
        })
    }

    /// Report outcomes after `delay` instead of [`DEMO_BUILD_TIME`].
    pub fn report_after(mut self, delay: Duration) -> Self {
        self.report_after = delay;
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve until the process ends.
    pub async fn run(self) -> anyhow::Result<()> {
        loop {
            let (stream, _) = match self.listener.accept().await {
                Ok(conn) => conn,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let delay = self.report_after;
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<Incoming>| async move {
                    let (parts, body) = req.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .unwrap_or_default();
                    println!("{}", describe_call(&parts, &body));
                    if let Some(url) = status_url(&body) {
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            match report_succeeded(&url).await {
                                Ok(status) => println!(
                                    "[platform] reported \"succeeded\" to the status URL -> {status}"
                                ),
                                Err(e) => println!("[platform] could not report the outcome: {e}"),
                            }
                        });
                    }
                    let mut response = hyper::Response::new(Full::new(Bytes::from_static(
                        br#"{"accepted":true}"#,
                    )));
                    *response.status_mut() = hyper::StatusCode::ACCEPTED;
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(response)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

/// The `status_url` of a deploy call's JSON body, when it has one.
fn status_url(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    json.get("status_url")?.as_str().map(String::from)
}

/// `POST {url}` with `{"state": "succeeded", …}` over plain HTTP (the demo runs on
/// loopback; an `https` URL is left alone): answers the gateway's status.
async fn report_succeeded(url: &str) -> anyhow::Result<u16> {
    let uri: http::Uri = url.parse()?;
    if uri.scheme_str() != Some("http") {
        anyhow::bail!("only http:// status URLs are reported by the demo ({url})");
    }
    let authority = uri
        .authority()
        .ok_or_else(|| anyhow::anyhow!("no host in {url}"))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((authority.host(), port)).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let body = br#"{"state":"succeeded","description":"demo platform: nothing was built"}"#;
    let request = hyper::Request::post(uri.path())
        .header(hyper::header::HOST, authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(body)))?;
    Ok(sender.send_request(request).await?.status().as_u16())
}

/// The text the demo platform prints for one call.
pub fn describe_call(parts: &http::request::Parts, body: &[u8]) -> String {
    let path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let mut out = format!("[platform] {} {path}\n", parts.method);
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        let shown = if *name == http::header::AUTHORIZATION {
            // Bytes, not `str` slicing: a value may be short or not ASCII.
            let scheme = value.as_bytes().get(..7);
            if scheme.is_some_and(|s| s.eq_ignore_ascii_case(b"bearer ")) {
                "Bearer ***".to_string()
            } else {
                "***".to_string()
            }
        } else {
            value.into_owned()
        };
        out.push_str(&format!("[platform]   {name}: {shown}\n"));
    }
    let body = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut json) => {
            redact_secret_keys(&mut json);
            json.to_string()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    out.push_str(&format!("[platform]   body: {body}\n"));
    out.push_str("[platform] -> 202 {\"accepted\":true}");
    out
}

fn redact_secret_keys(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "secret_key" && v.is_string() {
                    *v = serde_json::Value::String("***".to_string());
                } else if let (true, Some(url)) = (k == "status_url", v.as_str()) {
                    // The URL is a capability: its last segment, the token, stays hidden.
                    let shown = match url.rsplit_once('/') {
                        Some((path, _)) => format!("{path}/***"),
                        None => "***".to_string(),
                    };
                    *v = serde_json::Value::String(shown);
                } else {
                    redact_secret_keys(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_secret_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_platform_hides_credentials() {
        let (parts, ()) = http::Request::builder()
            .method("POST")
            .uri("/console/custom/deploy/svc1")
            .header("authorization", "Bearer platform-secret")
            .header("idempotency-key", "d1")
            .body(())
            .unwrap()
            .into_parts();
        let text = describe_call(
            &parts,
            br#"{"secret_key":"rb-secret","app":"shop",
                 "status_url":"http://127.0.0.1:3000/hooks/shop/status/7/0f1e2d3c4b5a69788796a5b4c3d2e1f0"}"#,
        );
        assert!(text.contains("[platform] POST /console/custom/deploy/svc1"));
        assert!(text.contains("authorization: Bearer ***"));
        assert!(text.contains("idempotency-key: d1"));
        assert!(text.contains(r#""secret_key":"***""#));
        assert!(!text.contains("platform-secret"));
        assert!(!text.contains("rb-secret"));
        assert!(text.contains(r#""status_url":"http://127.0.0.1:3000/hooks/shop/status/7/***""#));
        assert!(!text.contains("0f1e2d3c"), "{text}");
    }

    #[test]
    fn short_and_non_ascii_authorization_values_are_hidden_without_panicking() {
        // "Bearer" + 'é' puts byte 7 inside a character; the others are short.
        let values: [&[u8]; 6] = [
            "Bearer\u{e9}s3cret".as_bytes(),
            "B\u{e9}arer s3cret".as_bytes(),
            "\u{e9}\u{e9}\u{e9}\u{e9}".as_bytes(),
            b"\xffBearer s3cret",
            b"s3c",
            b"",
        ];
        for value in values {
            let (parts, ()) = http::Request::post("/deploy")
                .header(
                    "authorization",
                    http::HeaderValue::from_bytes(value).unwrap(),
                )
                .body(())
                .unwrap()
                .into_parts();
            let text = describe_call(&parts, b"");
            assert!(text.contains("authorization: ***"), "{text}");
            assert!(!text.contains("s3c"), "{text}");
        }
        let (parts, ()) = http::Request::post("/deploy")
            .header("authorization", "bEaReR s3cret")
            .body(())
            .unwrap()
            .into_parts();
        assert!(describe_call(&parts, b"").contains("authorization: Bearer ***"));
    }
}
