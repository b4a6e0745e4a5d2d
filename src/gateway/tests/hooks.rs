//! Webhooks over HTTP: the order of checks, the one deploy call, de-duplication, the
//! delivery log, and what never shows.

use serde_json::{json, Value};

use super::super::fake::{FakeHost, PLATFORM_TOKEN};
use super::{create, fixture, github, push, push_with, shop, sign, GITHUB_SECRET};

const FIXTURE_ID: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

fn deliveries(host: &FakeHost) -> Vec<Value> {
    list(host, "deliveries")
}

/// The deliveries refused before authentication.
fn rejected(host: &FakeHost) -> Vec<Value> {
    list(host, "rejected")
}

fn list(host: &FakeHost, name: &str) -> Vec<Value> {
    let answer = host.admin("GET", "/api/apps/shop/deliveries", &Value::Null);
    assert_eq!(answer.status(), 200, "{}", answer.text());
    answer.json()[name].as_array().unwrap().clone()
}

fn set_status(host: &FakeHost, status: &str) {
    let answer = host.admin("PUT", "/api/apps/shop/status", &json!({"status": status}));
    assert_eq!(answer.status(), 200, "{}", answer.text());
}

#[test]
fn a_signed_push_makes_one_deploy_call_and_a_resend_is_a_duplicate() {
    let host = FakeHost::default();
    shop(&host);
    // The fixture exactly as GitHub sent it, with its own signature headers.
    let headers: Value = serde_json::from_slice(&fixture("github/push.headers.json")).unwrap();
    let headers: Vec<(String, String)> = headers
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, v)| (n.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let body = fixture("github/push.json");
    let answer = host.request("POST", "/hooks/shop/git", &headers, &body);
    assert_eq!(
        answer.json(),
        json!({"result": "deployed", "reason": "the platform accepted the deploy (HTTP 202)",
               "app": "shop", "delivery": FIXTURE_ID})
    );
    assert_eq!(answer.status(), 202);

    let sent = host.sent.borrow();
    assert_eq!(sent.len(), 1);
    let call = &sent[0];
    assert_eq!(
        (call.method.as_str(), call.url.as_str()),
        ("POST", "https://platform.example.com/v1/apps/shop/deploy")
    );
    let bearer = format!("Bearer {PLATFORM_TOKEN}");
    assert_eq!(
        call.headers,
        vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("idempotency-key".to_string(), FIXTURE_ID.to_string()),
            ("authorization".to_string(), bearer),
        ]
    );
    let body: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(
        body,
        json!({
            "app": "shop", "trigger": "git", "provider": "github", "delivery": FIXTURE_ID,
            "repository": "https://github.com/acme/shop", "branch": "main", "tag": null,
            "commit": {"id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
                       "message": "Fix checkout rounding\n\nRound totals half-even. @deploy",
                       "author": "Ann Developer"},
            "image": null, "received_at": "2026-11-25T09:30:00.000Z",
            "status_url": format!("https://hooks.example.com/hooks/shop/status/1/{}",
                                  status_token(1, FIXTURE_ID)),
        })
    );
    drop(sent);

    host.advance(60_000);
    let again = host.request("POST", "/hooks/shop/git", &headers, &body_of_fixture());
    assert_eq!(again.result(), (200, "duplicate".into()));
    assert_eq!(host.calls(), 1, "a resent delivery is not deployed again");

    let log = deliveries(&host);
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["result"], "duplicate");
    assert_eq!(
        log[1],
        json!({"id": FIXTURE_ID, "at": "2026-11-25T09:30:00.000Z", "trigger": "git",
               "provider": "github", "result": "deployed",
               "reason": "the platform accepted the deploy (HTTP 202)", "platform_status": 202,
               "outcome": null, "notices": null})
    );
}

fn body_of_fixture() -> Vec<u8> {
    fixture("github/push.json")
}

/// Each row fails its own check and every later one too: the answer is its own.
#[test]
fn each_check_wins_over_every_later_one() {
    let host = FakeHost::default();
    let app = shop(&host);
    let token = app["image"]["token"].as_str().unwrap().to_string();
    let good = body_of_fixture();
    let big = vec![b'x'; 5 * 1024 * 1024 + 1];
    let not_json = b"{not json".to_vec();
    let bad_sig = "sha256=00";
    let signed = |body: &[u8]| sign(GITHUB_SECRET, body);
    let request = |method: &str, path: &str, content_type: &str, signature: &str, body: &[u8]| {
        host.request(
            method,
            path,
            &[
                ("content-type", content_type),
                ("x-github-event", "push"),
                ("x-github-delivery", "d-order"),
                ("x-hub-signature-256", signature),
            ],
            body,
        )
    };

    // With the app stopped and the trigger off, everything after the route fails too.
    set_status(&host, "stopped");
    host.admin("POST", "/api/apps/shop/triggers/git/disable", &Value::Null);

    let method = request("GET", "/hooks/nope/git", "text/plain", bad_sig, &big);
    assert_eq!(method.result(), (405, "rejected".into()));
    assert_eq!(method.header("allow"), Some("POST"));
    assert_eq!(method.json()["app"], Value::Null);

    let route = request("POST", "/hooks/nope/git", "text/plain", bad_sig, &big);
    assert_eq!(route.result(), (404, "rejected".into()));
    let wrong_token = request(
        "POST",
        "/hooks/shop/image/wrong-token-0123456789",
        "text/plain",
        bad_sig,
        &big,
    );
    assert_eq!(wrong_token.result(), (404, "rejected".into()));
    assert_eq!(
        wrong_token.json()["app"],
        Value::Null,
        "a wrong token names no app"
    );
    let image = request(
        "POST",
        &format!("/hooks/shop/image/{token}"),
        "text/plain",
        bad_sig,
        &big,
    );
    assert_eq!(image.result(), (413, "rejected".into()));

    let size = request("POST", "/hooks/shop/git", "text/plain", bad_sig, &big);
    assert_eq!(size.result(), (413, "rejected".into()));
    let media = request("POST", "/hooks/shop/git", "text/plain", bad_sig, &not_json);
    assert_eq!(media.result(), (415, "rejected".into()));
    let auth = request(
        "POST",
        "/hooks/shop/git",
        "application/json",
        bad_sig,
        &not_json,
    );
    assert_eq!(auth.result(), (401, "rejected".into()));
    let switch = request(
        "POST",
        "/hooks/shop/git",
        "application/json",
        &signed(&not_json),
        &not_json,
    );
    assert_eq!(switch.result(), (403, "rejected".into()));

    host.admin("POST", "/api/apps/shop/triggers/git/enable", &Value::Null);
    let payload = request(
        "POST",
        "/hooks/shop/git",
        "application/json",
        &signed(&not_json),
        &not_json,
    );
    assert_eq!(payload.result(), (400, "rejected".into()));
    let dev = push_with(|v| v["ref"] = json!("refs/heads/dev"));
    let rules = request(
        "POST",
        "/hooks/shop/git",
        "application/json",
        &signed(&dev),
        &dev,
    );
    assert_eq!(
        rules.result(),
        (200, "ignored".into()),
        "rules before the status"
    );

    // a delivery being deployed right now: its claim is held
    let window = host.now_ms.get() / 30_000;
    host.kv
        .map
        .lock()
        .unwrap()
        .insert(format!("claim/shop/d-order/{window}"), b"1".to_vec());
    let busy = request(
        "POST",
        "/hooks/shop/git",
        "application/json",
        &signed(&good),
        &good,
    );
    assert_eq!(
        busy.result(),
        (409, "in_progress".into()),
        "the claim before the status"
    );
    host.kv.map.lock().unwrap().clear();
    shop(&host);
    set_status(&host, "stopped");

    let status = request(
        "POST",
        "/hooks/shop/git",
        "application/json",
        &signed(&good),
        &good,
    );
    assert_eq!(status.result(), (409, "rejected".into()));
    assert_eq!(
        status.json()["reason"],
        "app status \"stopped\" does not allow a deploy"
    );
    assert_eq!(host.calls(), 0, "nothing refused reaches the platform");

    // a refused attempt left no claim: once the app runs, the same delivery deploys
    set_status(&host, "running");
    let deployed = request(
        "POST",
        "/hooks/shop/git",
        "application/json",
        &signed(&good),
        &good,
    );
    assert_eq!(deployed.result(), (202, "deployed".into()));
    set_status(&host, "stopped");
    let duplicate = request(
        "POST",
        "/hooks/shop/git",
        "application/json",
        &signed(&good),
        &good,
    );
    assert_eq!(
        duplicate.result(),
        (200, "duplicate".into()),
        "duplicates before the status"
    );
    assert_eq!(host.calls(), 1);
}

#[test]
fn a_refused_or_unreachable_platform_is_a_502_and_a_retry_deploys() {
    let host = FakeHost::default();
    shop(&host);
    host.answer(Ok((500, b"boom".to_vec())));
    let refused = push(&host, "d-1");
    assert_eq!(refused.result(), (502, "failed".into()));
    assert_eq!(
        refused.json()["reason"],
        "deploy failed: the platform answered HTTP 500"
    );
    host.answer(Err("connection refused".into()));
    let unreachable = push(&host, "d-1");
    assert_eq!(unreachable.result(), (502, "failed".into()));
    assert_eq!(
        unreachable.json()["reason"],
        "deploy failed: connection refused"
    );
    let retried = push(&host, "d-1");
    assert_eq!(retried.result(), (202, "deployed".into()));
    assert_eq!(host.calls(), 3);
    let log = deliveries(&host);
    let statuses: Vec<&Value> = log.iter().map(|e| &e["platform_status"]).collect();
    assert_eq!(statuses, [&json!(202), &Value::Null, &json!(500)]);
}

#[test]
fn an_unset_platform_url_is_a_500_and_no_call() {
    let host = FakeHost::default();
    shop(&host);
    host.unset_var("platform_url");
    let answer = push(&host, "d-1");
    assert_eq!(answer.result(), (500, "failed".into()));
    assert_eq!(
        answer.json()["reason"],
        "gateway misconfigured: platform_url is not set"
    );
    assert_eq!(host.calls(), 0);
    host.set_var("platform_url", "https://platform.example.com");
    assert_eq!(push(&host, "d-1").result(), (202, "deployed".into()));
}

#[test]
fn a_store_that_fails_is_a_503_that_names_no_detail() {
    let host = FakeHost::default();
    shop(&host);
    host.break_store(true);
    let answer = push(&host, "d-1");
    assert_eq!(answer.result(), (503, "failed".into()));
    assert_eq!(
        answer.json(),
        json!({"result": "failed", "reason": "the key-value store is unavailable",
               "app": "shop", "delivery": null})
    );
    assert!(
        host.log_text()
            .contains("app=shop store unavailable: injected failure"),
        "{}",
        host.log_text()
    );
    assert_eq!(host.calls(), 0);
}

#[test]
fn a_wrong_image_token_answers_like_an_unknown_app_and_is_logged() {
    let host = FakeHost::default();
    shop(&host);
    let answer = host.request(
        "POST",
        "/hooks/shop/image/not-the-token-0123456789",
        &[("content-type", "application/json")],
        b"{}",
    );
    let unknown = host.request(
        "POST",
        "/hooks/nope/image/not-the-token-0123456789",
        &[("content-type", "application/json")],
        b"{}",
    );
    assert_eq!(answer.text(), unknown.text());
    assert_eq!(answer.status(), 404);
    assert!(deliveries(&host).is_empty());
    let log = rejected(&host);
    assert_eq!(log.len(), 1);
    assert_eq!(
        (&log[0]["trigger"], &log[0]["result"], &log[0]["reason"]),
        (&json!("image"), &json!("rejected"), &json!("not found"))
    );
}

#[test]
fn a_docker_hub_push_deploys_the_pushed_image_once_within_ten_minutes() {
    let host = FakeHost::default();
    let app = create(
        &host,
        json!({"image": {"enabled": true, "repository": "acme/shop"},
               "deploy": {"target": "generic", "path": "/deploy"}}),
    );
    let token = app["image"]["token"].as_str().unwrap().to_string();
    let body = fixture("dockerhub/push.json");
    let send = || {
        host.request(
            "POST",
            &format!("/hooks/shop/image/{token}"),
            &[("content-type", "application/json")],
            &body,
        )
    };
    assert_eq!(send().result(), (202, "deployed".into()));
    let call = host.sent_json(0);
    assert_eq!(
        (
            &call["provider"],
            &call["image"]["repository"],
            &call["commit"]
        ),
        (
            &json!("dockerhub"),
            &json!("docker.io/acme/shop"),
            &Value::Null
        )
    );
    host.advance(9 * 60_000);
    assert_eq!(send().result(), (200, "duplicate".into()));
    host.advance(2 * 60_000);
    assert_eq!(
        send().result(),
        (202, "deployed".into()),
        "remembered 10 minutes"
    );
    assert_eq!(host.calls(), 2);
}

#[test]
fn the_api_trigger_takes_a_bearer_or_a_body_secret_and_an_idempotency_key() {
    let host = FakeHost::default();
    shop(&host);
    let api = |headers: &[(&str, &str)], body: &str| {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        host.request("POST", "/hooks/shop/api", &all, body.as_bytes())
    };
    let bearer = "Bearer api-secret-key-0123456789";
    let first = api(&[("authorization", bearer)], "");
    let second = api(&[("authorization", bearer)], "");
    assert_eq!(first.result(), (202, "deployed".into()));
    assert_eq!(second.result(), (202, "deployed".into()));
    assert_ne!(
        first.json()["delivery"],
        second.json()["delivery"],
        "without a key every call is new"
    );
    let keyed = [("authorization", bearer), ("idempotency-key", "release-42")];
    assert_eq!(api(&keyed, "").result(), (202, "deployed".into()));
    assert_eq!(api(&keyed, "").result(), (200, "duplicate".into()));
    let in_body = api(&[], r#"{"secret_key": "api-secret-key-0123456789"}"#);
    assert_eq!(in_body.result(), (202, "deployed".into()));
    let wrong = api(&[], r#"{"secret_key": "nope"}"#);
    assert_eq!(wrong.result(), (401, "rejected".into()));
    assert_eq!(wrong.json()["reason"], "invalid secret_key");
    assert_eq!(api(&[], "").json()["reason"], "missing secret_key");
    assert_eq!(host.calls(), 4);
    let call = host.sent_json(2);
    assert_eq!(
        (&call["trigger"], &call["provider"], &call["delivery"]),
        (&json!("api"), &json!("api"), &json!("release-42"))
    );
}

#[test]
fn rainbond_refusing_for_the_component_status_is_a_409() {
    let host = FakeHost::default();
    create(
        &host,
        json!({"api": {"enabled": true, "secret_key": "api-secret-key-0123456789"},
               "deploy": {"target": "rainbond", "service_id": "9f2c7d1e4b",
                          "secret_key": "rainbond-key-0123"}}),
    );
    host.answer(Ok((400, fixture("rainbond/status-not-supported.json"))));
    let headers = [
        ("content-type", "application/json"),
        ("authorization", "Bearer api-secret-key-0123456789"),
    ];
    let answer = host.request("POST", "/hooks/shop/api", &headers, b"");
    assert_eq!(answer.result(), (409, "rejected".into()));
    let call = &host.sent.borrow()[0];
    assert_eq!(
        call.url,
        "https://platform.example.com/console/custom/deploy/9f2c7d1e4b"
    );
    assert_eq!(call.body, br#"{"secret_key":"rainbond-key-0123"}"#);
    assert_eq!(deliveries(&host)[0]["platform_status"], 400);
}

#[test]
fn pings_and_other_events_are_answered_without_a_call() {
    let host = FakeHost::default();
    shop(&host);
    let ping = github(
        &host,
        GITHUB_SECRET,
        "ping",
        "p-1",
        &fixture("github/ping.json"),
    );
    assert_eq!(ping.result(), (200, "pong".into()));
    let issues = github(
        &host,
        GITHUB_SECRET,
        "issues",
        "i-1",
        br#"{"action":"opened"}"#,
    );
    assert_eq!(issues.result(), (200, "ignored".into()));
    let no_keyword = push_with(|v| v["head_commit"]["message"] = json!("just a fix"));
    let quiet = github(&host, GITHUB_SECRET, "push", "q-1", &no_keyword);
    assert_eq!(quiet.result(), (200, "ignored".into()));
    assert_eq!(
        quiet.json()["reason"],
        "no @deploy in the head commit message"
    );
    assert_eq!(host.calls(), 0);
    let other = host.request("GET", "/elsewhere", &[], b"");
    assert_eq!(other.result(), (404, "rejected".into()));
    assert_eq!(host.request("GET", "/healthz", &[], b"").status(), 200);
}

#[test]
fn secrets_never_show_in_answers_or_the_log() {
    let host = FakeHost::default();
    let app = shop(&host);
    let image_token = app["image"]["token"].as_str().unwrap().to_string();
    let mut answers = Vec::new();
    answers.push(push(&host, "d-1").text());
    answers.push(github(&host, "wrong-secret", "push", "d-2", &body_of_fixture()).text());
    host.answer(Ok((500, PLATFORM_TOKEN.as_bytes().to_vec())));
    answers.push(push(&host, "d-3").text());
    answers.push(
        host.request(
            "POST",
            &format!("/hooks/shop/image/{image_token}"),
            &[("content-type", "application/json")],
            br#"{"secret_key": "api-secret-key-0123456789"}"#,
        )
        .text(),
    );
    answers.push(
        host.request(
            "POST",
            "/hooks/shop/api",
            &[("content-type", "application/json")],
            br#"{"secret_key": "api-secret-key-0123456789x"}"#,
        )
        .text(),
    );
    answers.push(
        host.admin("GET", "/api/apps/shop/deliveries", &Value::Null)
            .text(),
    );
    let shown = format!("{}\n{}", answers.join("\n"), host.log_text());
    for secret in [
        GITHUB_SECRET,
        PLATFORM_TOKEN,
        super::super::fake::ADMIN_TOKEN,
        "api-secret-key-0123456789",
        image_token.as_str(),
    ] {
        assert!(!shown.contains(secret), "{secret} shows in:\n{shown}");
    }
    assert!(shown.contains("result=deployed"), "{shown}");
}

#[test]
fn a_body_that_cannot_be_read_is_a_400_and_logged() {
    let host = FakeHost::default();
    shop(&host);
    let request = super::super::Request {
        method: "POST".into(),
        path: "/hooks/shop/git".into(),
        headers: crate::model::Headers::new([("content-type".into(), "application/json".into())]),
        scheme: None,
        authority: None,
    };
    let mut broken = |_: usize| Err(super::super::BodyError::Io("connection reset".into()));
    let answer = super::super::handle(&host, &request, &mut broken);
    assert_eq!(answer.status, 400);
    let reason = "malformed payload: could not read the body: connection reset";
    assert_eq!(rejected(&host)[0]["reason"], reason);
}

/// The token of a status URL, computed here from its definition: 128 bits of
/// `HMAC(HMAC(admin_token, "autodeploy status_url v1"), "shop\n{seq}\n{delivery}")`.
pub(super) fn status_token(seq: i64, delivery: &str) -> String {
    use crate::support::crypto::{hex, hmac_sha256};
    let key = hmac_sha256(
        super::super::fake::ADMIN_TOKEN.as_bytes(),
        b"autodeploy status_url v1",
    );
    hex(&hmac_sha256(&key, format!("shop\n{seq}\n{delivery}").as_bytes())[..16])
}
