//! Notifications and commit statuses through the real component, served over HTTP by
//! runtime-host as `make run` serves it, to a platform, a chat receiver and a GitLab
//! API on loopback (no fake): the calls go out after the provider's answer, signed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use autodeploy_host::Host;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// One request the loopback server received.
#[derive(Clone)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.path, String::from_utf8_lossy(&self.body))
    }
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A server on loopback that plays the platform (`/deploy`: `202` at once), and the
/// chat receiver and GitLab API (every other path): those answer only once `release`
/// is sent, so that whatever waits for them waits visibly.
struct Loopback {
    origin: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    release: tokio::sync::watch::Sender<bool>,
}

impl Loopback {
    async fn start() -> Loopback {
        use hyper::service::service_fn;
        use wasmtime_wasi_http::io::TokioIo;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (release, released) = tokio::sync::watch::channel(false);
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (record, released) = (record.clone(), released.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (record, mut released) = (record.clone(), released.clone());
                        async move {
                            use http_body_util::BodyExt;
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes().to_vec();
                            let path = parts.uri.path().to_string();
                            let headers = parts
                                .headers
                                .iter()
                                .map(|(n, v)| {
                                    (n.to_string(), v.to_str().unwrap_or("?").to_string())
                                })
                                .collect();
                            record.lock().unwrap().push(Seen {
                                path: path.clone(),
                                headers,
                                body,
                            });
                            let status = if path == "/deploy" {
                                202
                            } else {
                                let _ = released.wait_for(|r| *r).await;
                                200
                            };
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .body(http_body_util::Full::new(bytes::Bytes::from("{}")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Loopback {
            origin,
            seen,
            release,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Sends `raw` (a whole HTTP/1.1 request with `Connection: close`) to `authority` and
/// reads the answer to its end.
async fn exchange(authority: &str, raw: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SLACK_PATH: &str = "/chat/services/T0001/B0001/slack-path-secret";
const GITLAB_TOKEN: &str = "glpat-e2e-report-token-5d1c";
const GITLAB_SECRET: &str = "gitlab-hook-secret-e2e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_is_told_after_the_answer_signed_and_marked_on_the_commit() {
    // The platform, the chat receiver and the forge's API: three origins, each allowed
    // by its own entry of spin.toml.
    let (platform, chat, forge) = (
        Loopback::start().await,
        Loopback::start().await,
        Loopback::start().await,
    );
    // Under the repository's own spin.toml, whose allowed_outbound_hosts must let these
    // calls out through the notify_origin and git_origin variables.
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/spin.toml");
    let host = Host::builder(runtime())
        .manifest(manifest)
        .var("admin_token", ADMIN_TOKEN)
        .var("platform_url", &platform.origin)
        .var("notify_origin", &chat.origin)
        .var("git_origin", &forge.origin)
        .echo_logs(false)
        .build()
        .unwrap();
    let server = host.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let authority = server.local_addr().to_string();
    server.spawn();
    let gw = Gateway::around(host);
    let repo = format!("{}/acme/shop", forge.origin);
    let app = gw
        .create_app(
            "shop",
            json!({
                "git": {"enabled": true, "repo": repo, "secret": GITLAB_SECRET,
                        "report": {"provider": "gitlab", "token": GITLAB_TOKEN}},
                "deploy": {"target": "generic", "path": "/deploy"},
                "notify": [
                    {"type": "webhook", "url": format!("{}/receiver", chat.origin),
                     "secret": WEBHOOK_SECRET},
                    {"type": "slack", "url": format!("{}{SLACK_PATH}", chat.origin)},
                ]
            }),
        )
        .await;
    let shown = app["notify"][1]["url"].as_str().unwrap();
    assert!(
        shown.starts_with(&format!("{}/***", chat.origin)),
        "{shown}"
    );
    assert!(!shown.contains("slack-path-secret"), "{shown}");

    // A GitLab push of the app's repository, over TCP.
    let body = fixture_with("gitlab/push.json", |v| {
        v["project"]["web_url"] = json!(repo);
    });
    let head = format!(
        "POST /hooks/shop/git HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         X-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: {GITLAB_SECRET}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let answer = exchange(&authority, &[head.as_bytes(), &body].concat()).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");

    // The answer is in while the receivers still hold theirs: had the component called
    // them first, each call would have waited out its 5 s and failed.
    assert_eq!(platform.seen().len(), 1);
    assert_eq!(platform.seen()[0].path, "/deploy");
    let (held, statuses) = (chat.seen(), forge.seen());
    assert!(
        held.len() + statuses.len() <= 1,
        "one call at a time, after the answer: {held:?} {statuses:?}"
    );
    chat.release.send(true).unwrap();
    forge.release.send(true).unwrap();

    let mut notices = Value::Null;
    for _ in 0..200 {
        let (_, log) = gw.admin("GET", "/api/apps/shop/deliveries", None).await;
        notices = log["deliveries"][0]["notices"].clone();
        if notices.as_array().is_some_and(|n| n.len() == 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let sent: Vec<(&str, &Value)> = notices
        .as_array()
        .unwrap_or_else(|| panic!("no notices: {notices}"))
        .iter()
        .map(|n| (n["to"].as_str().unwrap(), &n["ok"]))
        .collect();
    assert_eq!(
        sent,
        [
            ("webhook#0", &json!(true)),
            ("slack#1", &json!(true)),
            ("git.report", &json!(true))
        ],
        "{notices}"
    );

    let seen = chat.seen();
    let sha = "1a954628a960aaef81d7b2d4521929579f3541e6";
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["/receiver", SLACK_PATH]);
    let statuses = forge.seen();
    assert_eq!(statuses.len(), 1);
    let status_path = format!("/api/v4/projects/acme%2Fshop/statuses/{sha}");
    assert_eq!(statuses[0].path, status_path);

    // The webhook, as a Standard Webhooks library checks it.
    let hook = &seen[0];
    let (id, timestamp) = (hook.header("webhook-id"), hook.header("webhook-timestamp"));
    let key = base64_decode(WEBHOOK_SECRET.strip_prefix("whsec_").unwrap());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&hook.body);
    let expected = format!("v1,{}", base64_encode(&mac.finalize().into_bytes()));
    assert_eq!(hook.header("webhook-signature"), expected);
    assert!(id.starts_with("msg_"), "{id}");
    let event = hook.json();
    assert_eq!(event["type"], "deploy.requested", "{event}");
    assert_eq!(event["data"]["app"], "shop");
    assert_eq!(event["data"]["provider"], "gitlab");
    assert_eq!(event["data"]["commit"]["id"], sha);

    let slack = seen[1].json();
    let text = slack["text"].as_str().unwrap_or_else(|| panic!("{slack}"));
    assert!(text.contains("shop") && text.contains("1a95462"), "{text}");

    let status = &statuses[0];
    assert_eq!(status.header("private-token"), GITLAB_TOKEN);
    assert_eq!(status.json()["state"], "pending");
    assert_eq!(status.json()["name"], "autodeploy/shop");

    // A test message to the webhook goes out at once, and says so.
    let (code, sent) = gw.admin("POST", "/api/apps/shop/notify/0/test", None).await;
    assert_eq!((code, &sent["result"]), (200, &json!("sent")), "{sent}");
    assert_eq!(chat.seen().last().unwrap().json()["type"], "test");

    let logs = gw.host.logs().join("\n");
    assert!(logs.contains("to=git.report event=requested ok"), "{logs}");
    for secret in [
        "slack-path-secret",
        GITLAB_TOKEN,
        WEBHOOK_SECRET,
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ] {
        assert!(!logs.contains(secret), "{secret} in the log");
        assert!(!answer.contains(secret), "{secret} in the answer");
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}
