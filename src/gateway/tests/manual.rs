//! "Deploy now" and "Redeploy": manual deliveries through the admin API.

use serde_json::{json, Value};

use super::super::fake::{FakeHost, ADMIN_TOKEN};
use super::{push, shop};
use crate::state::Kv;

/// `POST path` as the admin, with `idempotency` as `Idempotency-Key` when given.
fn post(host: &FakeHost, path: &str, body: &Value, idempotency: Option<&str>) -> super::Answered {
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let mut headers = vec![
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(key) = idempotency {
        headers.push(("idempotency-key", key));
    }
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    host.request("POST", path, &headers, &body)
}

fn deliveries(host: &FakeHost) -> Vec<Value> {
    let log = host
        .admin("GET", "/api/apps/shop/deliveries", &Value::Null)
        .json();
    log["deliveries"].as_array().unwrap().clone()
}

/// Without a body, a deploy of the app's repository and branch; trigger and provider
/// `manual`; a new delivery id each time; in the log like any delivery.
#[test]
fn deploy_now_calls_the_platform_as_a_manual_delivery() {
    let host = FakeHost::default();
    shop(&host);
    let answer = post(&host, "/api/apps/shop/deploy", &Value::Null, None);
    assert_eq!(
        answer.result(),
        (202, "deployed".into()),
        "{}",
        answer.text()
    );
    let id = answer.json()["delivery"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "a new random id");
    let sent = host.sent_json(0);
    assert_eq!(
        (&sent["trigger"], &sent["provider"], &sent["delivery"]),
        (&json!("manual"), &json!("manual"), &json!(id))
    );
    assert_eq!(
        (
            &sent["repository"],
            &sent["branch"],
            &sent["commit"],
            &sent["image"]
        ),
        (
            &json!("https://github.com/acme/shop"),
            &json!("main"),
            &Value::Null,
            &Value::Null
        )
    );
    let keyed = host.sent.borrow()[0]
        .headers
        .contains(&("idempotency-key".into(), id.clone()));
    assert!(keyed, "the platform gets the id as Idempotency-Key");

    // Another "Deploy now" is another delivery.
    let again = post(&host, "/api/apps/shop/deploy", &Value::Null, None);
    assert_eq!(again.result(), (202, "deployed".into()));
    assert_eq!(host.calls(), 2);
    let log = deliveries(&host);
    assert_eq!(log.len(), 2);
    assert_eq!(
        (
            &log[1]["id"],
            &log[1]["trigger"],
            &log[1]["provider"],
            &log[1]["result"]
        ),
        (
            &json!(id),
            &json!("manual"),
            &json!("manual"),
            &json!("deployed")
        )
    );
}

/// The body names a branch and a commit; the caller's `Idempotency-Key` makes a retry a
/// duplicate; a bad body is a 400 naming its field, with no call.
#[test]
fn deploy_now_takes_a_branch_a_commit_and_an_idempotency_key() {
    let host = FakeHost::default();
    shop(&host);
    let body = json!({"branch": "release/1.2", "commit": {"id": "abc123", "message": "Ship", "author": "Ann"}});
    let first = post(&host, "/api/apps/shop/deploy", &body, Some("console-1"));
    assert_eq!(first.result(), (202, "deployed".into()), "{}", first.text());
    assert_eq!(first.json()["delivery"], "console-1");
    let sent = host.sent_json(0);
    assert_eq!(
        (&sent["branch"], &sent["tag"]),
        (&json!("release/1.2"), &Value::Null)
    );
    assert_eq!(
        sent["commit"],
        json!({"id": "abc123", "message": "Ship", "author": "Ann"})
    );
    let retry = post(&host, "/api/apps/shop/deploy", &body, Some("console-1"));
    assert_eq!(retry.result(), (200, "duplicate".into()));
    assert_eq!(host.calls(), 1);

    // a commit named by its id alone
    let by_id = post(
        &host,
        "/api/apps/shop/deploy",
        &json!({"commit": "def456"}),
        None,
    );
    assert_eq!(by_id.status(), 202, "{}", by_id.text());
    assert_eq!(
        host.sent_json(1)["commit"],
        json!({"id": "def456", "message": "", "author": ""})
    );

    for (bad, field) in [
        (json!({"branch": ""}), "branch"),
        (json!({"branch": 7}), "branch"),
        (json!({"commit": {"message": "no id"}}), "commit.id"),
        (json!({"branch": "main", "tag": "v1"}), "tag"),
        (json!({"tag": ""}), "tag"),
        (json!(["main"]), ""),
    ] {
        let answer = post(&host, "/api/apps/shop/deploy", &bad, None);
        assert_eq!(answer.status(), 400, "{bad}: {}", answer.text());
        let named = answer.json()["field"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(named, field, "{bad}");
    }
    assert_eq!(host.calls(), 2);
}

/// The app's status gates a manual deploy as any other; an unknown app is a 404; the
/// admin token is required.
#[test]
fn deploy_now_is_gated_and_guarded() {
    let host = FakeHost::default();
    shop(&host);
    let closed = host.admin("PUT", "/api/apps/shop/status", &json!({"status": "closed"}));
    assert_eq!(closed.status(), 200, "{}", closed.text());
    let answer = post(&host, "/api/apps/shop/deploy", &Value::Null, None);
    assert_eq!(answer.status(), 409, "{}", answer.text());
    assert_eq!(deliveries(&host)[0]["result"], "rejected");

    assert_eq!(
        post(&host, "/api/apps/nope/deploy", &Value::Null, None).status(),
        404
    );
    let anonymous = host.request("POST", "/api/apps/shop/deploy", &[], b"");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(host.calls(), 0);
}

/// A deployed push redeploys: the same repository, branch and commit as a new manual
/// delivery. A delivery that did not deploy, or an unknown id, is a 404.
#[test]
fn redeploy_sends_what_a_delivery_deployed_again() {
    let host = FakeHost::default();
    shop(&host);
    assert_eq!(push(&host, "d-1").result(), (202, "deployed".into()));
    let original = host.sent_json(0);

    let answer = post(
        &host,
        "/api/apps/shop/deliveries/d-1/redeploy",
        &Value::Null,
        None,
    );
    assert_eq!(
        answer.result(),
        (202, "deployed".into()),
        "{}",
        answer.text()
    );
    let sent = host.sent_json(1);
    for member in ["repository", "branch", "commit", "image"] {
        assert_eq!(sent[member], original[member], "{member}");
    }
    assert_eq!(
        (&sent["trigger"], &sent["provider"]),
        (&json!("manual"), &json!("manual"))
    );
    assert_ne!(sent["delivery"], original["delivery"]);
    // and again: each redeploy is a delivery of its own
    let again = post(
        &host,
        "/api/apps/shop/deliveries/d-1/redeploy",
        &Value::Null,
        None,
    );
    assert_eq!(again.status(), 202);
    assert_eq!(host.calls(), 3);

    // the platform refuses one: not redeployable
    host.answer(Ok((500, Vec::new())));
    let other = super::push_with(|p| p["before"] = json!("1".repeat(40)));
    let refused = super::github(&host, super::GITHUB_SECRET, "push", "d-2", &other);
    assert_eq!(refused.status(), 502);
    for id in ["d-2", "nope"] {
        let answer = post(
            &host,
            &format!("/api/apps/shop/deliveries/{id}/redeploy"),
            &Value::Null,
            None,
        );
        assert_eq!(answer.status(), 404, "{id}: {}", answer.text());
    }
    assert_eq!(host.calls(), 4);
}

/// The log keeps what a deployed delivery deployed (not shown in the deliveries answer),
/// with a long message cut to 4 KiB at a character boundary; it holds no secret.
#[test]
fn the_log_keeps_the_deployed_event_without_secrets() {
    let host = FakeHost::default();
    shop(&host);
    assert_eq!(push(&host, "d-1").status(), 202);
    assert_eq!(deliveries(&host)[0].get("event"), None, "not in the answer");
    let newest = |host: &FakeHost| -> Value {
        let seq = host.kv.get("log/shop/seq").unwrap().unwrap();
        let seq: i64 = String::from_utf8(seq).unwrap().parse().unwrap();
        let raw = host
            .kv
            .get(&format!("log/shop/{}", seq % 50))
            .unwrap()
            .unwrap();
        serde_json::from_slice(&raw).unwrap()
    };
    let entry = newest(&host);
    assert_eq!(entry["event"]["branch"], "main");
    assert_eq!(
        entry["event"]["commit"]["id"],
        "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
    );
    assert!(!entry.to_string().contains(super::GITHUB_SECRET));

    let long = "é".repeat(5000); // 10,000 bytes
    let body = json!({"commit": {"id": "abc", "message": long}});
    assert_eq!(
        post(&host, "/api/apps/shop/deploy", &body, None).status(),
        202
    );
    let message = newest(&host)["event"]["commit"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(message.len(), 4096);
    // the deploy itself carried the whole message
    let sent = host.sent_json(1)["commit"]["message"]
        .as_str()
        .unwrap()
        .len();
    assert_eq!(sent, 10_000);
}

/// "Deploy now" may name a tag instead of a branch (the body's `branch` is then null);
/// with a branch pattern and nothing named, no branch is sent; a redeploy of a tag
/// deploy sends the tag again.
#[test]
fn deploy_now_names_a_tag_and_a_branch_pattern_is_never_sent() {
    let host = FakeHost::default();
    shop(&host);
    let tagged = post(
        &host,
        "/api/apps/shop/deploy",
        &json!({"tag": "v1.4.0"}),
        None,
    );
    assert_eq!(tagged.status(), 202, "{}", tagged.text());
    let sent = host.sent_json(0);
    assert_eq!(
        (&sent["branch"], &sent["tag"]),
        (&Value::Null, &json!("v1.4.0"))
    );
    let id = tagged.json()["delivery"].as_str().unwrap().to_string();
    let again = post(
        &host,
        &format!("/api/apps/shop/deliveries/{id}/redeploy"),
        &Value::Null,
        None,
    );
    assert_eq!(again.status(), 202, "{}", again.text());
    assert_eq!(host.sent_json(1)["tag"], "v1.4.0");

    let patterned = host.admin(
        "PUT",
        "/api/apps/shop",
        &json!({"git": {"enabled": true, "branch": "release/*"},
                "deploy": {"target": "generic", "path": "/v1/apps/shop/deploy"}}),
    );
    assert_eq!(patterned.status(), 200, "{}", patterned.text());
    let now = post(&host, "/api/apps/shop/deploy", &Value::Null, None);
    assert_eq!(now.status(), 202, "{}", now.text());
    let sent = host.sent_json(2);
    assert_eq!(
        (&sent["branch"], &sent["tag"]),
        (&Value::Null, &Value::Null)
    );
}
