//! The pure export decides as the HTTP handler does, from the same pipeline.

use serde_json::{json, Value};

use super::super::fake::{FakeHost, PLATFORM_TOKEN, START_MS};
use super::super::trigger::{evaluate, Decision};
use super::{fixture, push, push_with, shop, sign, GITHUB_SECRET};
use crate::model::Headers;

fn config(app: &Value) -> String {
    json!({"app": app, "platform_url": "https://platform.example.com",
           "platform_token": PLATFORM_TOKEN})
    .to_string()
}

fn github(event: &str, body: &[u8]) -> Headers {
    Headers::new(
        [
            ("content-type", "application/json".to_string()),
            ("x-github-event", event.to_string()),
            ("x-github-delivery", "d-1".to_string()),
            ("x-hub-signature-256", sign(GITHUB_SECRET, body)),
        ]
        .map(|(n, v)| (n.to_string(), v)),
    )
}

fn reject(status: u16, reason: &str) -> Decision {
    Decision::Reject {
        status,
        reason: reason.into(),
    }
}

/// The same call, but for `status_url`: the export has no delivery log to record an
/// outcome in, so its body says `null` there.
#[test]
fn the_export_makes_the_same_call_as_the_http_handler() {
    let host = FakeHost::default();
    let app = shop(&host);
    assert_eq!(push(&host, "d-1").status(), 202);
    let mut sent = host.sent.borrow()[0].clone();
    let mut body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert!(body["status_url"].is_string(), "{body}");
    body["status_url"] = serde_json::Value::Null;
    sent.body = serde_json::to_vec(&body).unwrap();

    let body = fixture("github/push.json");
    let decision = evaluate(
        &config(&app),
        "POST",
        "/hooks/shop/git",
        &github("push", &body),
        &body,
        START_MS,
    );
    assert_eq!(decision, Decision::Deploy(sent));
}

#[test]
fn the_export_answers_in_the_same_order() {
    let host = FakeHost::default();
    let app = shop(&host);
    let config = config(&app);
    let body = fixture("github/push.json");
    let headers = github("push", &body);
    let run = |config: &str, method: &str, path: &str, headers: &Headers, body: &[u8]| {
        evaluate(config, method, path, headers, body, START_MS)
    };

    let ping = fixture("github/ping.json");
    assert_eq!(
        run(
            &config,
            "POST",
            "/hooks/shop/git",
            &github("ping", &ping),
            &ping
        ),
        Decision::Pong
    );
    let dev = push_with(|v| v["ref"] = json!("refs/heads/dev"));
    assert_eq!(
        run(
            &config,
            "POST",
            "/hooks/shop/git",
            &github("push", &dev),
            &dev
        ),
        Decision::Ignore("branch dev is not main".into())
    );
    assert_eq!(
        run(&config, "GET", "/hooks/shop/git", &headers, &body),
        reject(405, "method not allowed: webhooks are POST requests")
    );
    assert_eq!(
        run(&config, "POST", "/hooks/other/git", &headers, &body),
        reject(404, "not found"),
        "the config's app only"
    );
    let big = vec![b' '; 5 * 1024 * 1024 + 1];
    assert_eq!(
        run(&config, "POST", "/hooks/shop/git", &headers, &big),
        reject(413, "payload too large: the limit is 5242880 bytes")
    );
    assert_eq!(
        run(
            &config,
            "POST",
            "/hooks/shop/git",
            &github("push", b"{}"),
            &body
        ),
        reject(401, "invalid signature")
    );
    let mut stopped = app.clone();
    stopped["status"] = json!("stopped");
    assert_eq!(
        run(
            &self::config(&stopped),
            "POST",
            "/hooks/shop/git",
            &headers,
            &body
        ),
        reject(409, "app status \"stopped\" does not allow a deploy")
    );
    let no_platform = json!({"app": app}).to_string();
    assert_eq!(
        run(&no_platform, "POST", "/hooks/shop/git", &headers, &body),
        reject(500, "gateway misconfigured: platform_url is not set")
    );
    let Decision::Reject { status, reason } =
        run("not json", "POST", "/hooks/shop/git", &headers, &body)
    else {
        panic!("an invalid config is a reject")
    };
    assert_eq!(status, 500);
    assert!(
        reason.starts_with("invalid config: invalid JSON"),
        "{reason}"
    );
}

#[test]
fn api_deliveries_without_a_key_get_an_id_from_the_time_and_body() {
    let host = FakeHost::default();
    let app = shop(&host);
    let headers = Headers::new([(
        "authorization".to_string(),
        "Bearer api-secret-key-0123456789".to_string(),
    )]);
    let id = |now: u64| match evaluate(&config(&app), "POST", "/hooks/shop/api", &headers, b"", now)
    {
        Decision::Deploy(call) => call
            .headers
            .iter()
            .find(|(n, _)| n == "idempotency-key")
            .map(|(_, v)| v.clone())
            .unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        id(START_MS),
        id(START_MS),
        "pure: the same input, the same call"
    );
    assert_ne!(id(START_MS), id(START_MS + 1));
    assert_eq!(id(START_MS).len(), 32);
}
