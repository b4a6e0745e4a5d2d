//! Notifications and commit statuses: configured through the admin API, decided with a
//! delivery's answer, sent after it, recorded on the delivery.

use serde_json::{json, Value};

use super::super::fake::FakeHost;
use super::{create, push, GITHUB_SECRET};

const SLACK_URL: &str = "https://hooks.slack.com/services/T0001/B0001/slack-url-secret-xyz";
const DING_URL: &str = "https://oapi.dingtalk.com/robot/send?access_token=ding-token-secret";
const DING_SECRET: &str = "SECding-signing-secret-0123456789";
const GITHUB_TOKEN: &str = "ghp_report-token-secret-0123456789";
const HEAD: &str = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";

/// `shop` with a Slack channel (every event), a DingTalk channel (refusals and failures
/// only) and commit statuses on GitHub.
fn notified(host: &FakeHost) -> Value {
    create(
        host,
        json!({
            "git": {"enabled": true, "repo": "https://github.com/acme/shop", "branch": "main",
                    "secret": GITHUB_SECRET,
                    "report": {"token": GITHUB_TOKEN}},
            "deploy": {"target": "generic", "path": "/v1/apps/shop/deploy"},
            "notify": [
                {"type": "slack", "url": SLACK_URL},
                {"type": "dingtalk", "url": DING_URL, "secret": DING_SECRET,
                 "events": ["refused", "failed"]},
            ]
        }),
    )
}

fn sent_urls(host: &FakeHost) -> Vec<String> {
    host.sent.borrow().iter().map(|r| r.url.clone()).collect()
}

/// No secret of another service in `text`.
fn assert_no_secrets(text: &str) {
    for secret in [
        "slack-url-secret-xyz",
        "ding-token-secret",
        DING_SECRET,
        GITHUB_TOKEN,
    ] {
        assert!(!text.contains(secret), "{secret} leaked in {text}");
    }
}

#[test]
fn get_masks_the_urls_and_tokens_of_other_services_and_a_put_of_the_mask_keeps_them() {
    let host = FakeHost::default();
    let shown = notified(&host);
    assert_no_secrets(&shown.to_string());
    let masked = |v: &Value, origin: &str| {
        let url = v.as_str().unwrap();
        assert!(url.starts_with(&format!("{origin}/***")), "{url}");
        assert_eq!(url.len(), origin.len() + 4 + 8, "{url}");
    };
    masked(&shown["notify"][0]["url"], "https://hooks.slack.com");
    masked(&shown["notify"][1]["url"], "https://oapi.dingtalk.com");
    assert_eq!(shown["notify"][1]["secret"], "***");
    assert_eq!(shown["notify"][1]["events"], json!(["refused", "failed"]));
    assert_eq!(
        shown["notify"][0]["events"],
        json!(["requested", "refused", "succeeded", "failed"])
    );
    assert_eq!(
        shown["git"]["report"],
        json!({"provider": "github", "token": "***"})
    );

    // What GET showed, sent back: every credential kept.
    let mut body = shown.clone();
    body.as_object_mut().unwrap().remove("hooks");
    let again = host.admin("PUT", "/api/apps/shop", &body);
    assert_eq!(again.status(), 200, "{}", again.text());
    let stored = crate::state::app::load(&host.kv, "shop").unwrap().unwrap();
    assert_eq!(stored.notify[0].url.expose(), SLACK_URL);
    assert_eq!(stored.notify[1].url.expose(), DING_URL);
    assert_eq!(
        stored.notify[1].secret.as_ref().unwrap().expose(),
        DING_SECRET
    );
    assert_eq!(
        stored.git.report.as_ref().unwrap().token.expose(),
        GITHUB_TOKEN
    );

    // Removing the first channel keeps the second's URL and secret from its mask.
    let mut fewer = body.clone();
    fewer["notify"].as_array_mut().unwrap().remove(0);
    let put = host.admin("PUT", "/api/apps/shop", &fewer);
    assert_eq!(put.status(), 200, "{}", put.text());
    let stored = crate::state::app::load(&host.kv, "shop").unwrap().unwrap();
    assert_eq!(stored.notify.len(), 1);
    assert_eq!(stored.notify[0].url.expose(), DING_URL);
    assert_eq!(
        stored.notify[0].secret.as_ref().unwrap().expose(),
        DING_SECRET
    );

    // A mask of another type's URL, or of no stored URL: the URL itself is needed.
    let slack_mask = shown["notify"][0]["url"].as_str().unwrap();
    body["notify"] = json!([{"type": "discord", "url": slack_mask}]);
    let masked = host.admin("PUT", "/api/apps/shop", &body);
    assert_eq!(masked.status(), 400);
    assert_eq!(masked.json()["field"], "notify[0].url", "{}", masked.text());
    assert_no_secrets(&host.log_text());
}

#[test]
fn put_refuses_what_the_host_would_not_call() {
    let host = FakeHost::default();
    let app = |notify: Value, report: Value, repo: &str| {
        json!({
            "git": {"repo": repo, "report": report},
            "deploy": {"target": "generic", "path": "/deploy"},
            "notify": notify,
        })
    };
    let refused = |body: Value, field: &str| {
        let put = host.admin("PUT", "/api/apps/shop", &body);
        assert_eq!(put.status(), 400, "{}", put.text());
        assert_eq!(put.json()["field"], field, "{}", put.text());
        put.json()["error"].as_str().unwrap().to_string()
    };
    let receiver = json!([{"type": "webhook", "url": "https://hooks.acme.dev/autodeploy"}]);
    let why = refused(app(receiver.clone(), Value::Null, ""), "notify[0].url");
    assert!(why.contains("https://hooks.acme.dev"), "{why}");
    assert!(why.contains("notify_origin"), "{why}");
    // A Slack-type channel at another host is just as refused.
    refused(
        app(
            json!([{"type": "slack", "url": "http://127.0.0.1:9/x"}]),
            Value::Null,
            "",
        ),
        "notify[0].url",
    );
    refused(
        app(
            json!([{"type": "teams", "url": SLACK_URL}]),
            Value::Null,
            "",
        ),
        "notify[0].type",
    );
    refused(
        app(
            json!([{"type": "slack", "url": SLACK_URL, "events": ["deployed"]}]),
            Value::Null,
            "",
        ),
        "notify[0].events",
    );
    refused(
        app(
            json!([{"type": "slack", "url": SLACK_URL, "secret": "x"}]),
            Value::Null,
            "",
        ),
        "notify[0].secret",
    );
    let eleven: Vec<Value> = (0..11)
        .map(|_| json!({"type": "slack", "url": SLACK_URL}))
        .collect();
    refused(app(json!(eleven), Value::Null, ""), "notify");

    // Commit statuses: the forge's API must be allowed, and Gogs and Gitee have none.
    let report = json!({"token": GITHUB_TOKEN});
    refused(app(Value::Null, report.clone(), ""), "git.report");
    let gitlab = json!({"provider": "gitlab", "token": GITHUB_TOKEN});
    let why = refused(
        app(
            Value::Null,
            gitlab.clone(),
            "https://git.acme.dev/team/shop",
        ),
        "git.report",
    );
    assert!(why.contains("git_origin"), "{why}");
    refused(
        app(
            Value::Null,
            report.clone(),
            "https://git.acme.dev/team/shop",
        ),
        "git.report.provider",
    );
    let gogs = json!({"provider": "gogs", "token": GITHUB_TOKEN});
    let why = refused(
        app(Value::Null, gogs, "https://gogs.acme.dev/team/shop"),
        "git.report.provider",
    );
    assert!(why.contains("Gogs"), "{why}");
    let why = refused(
        app(Value::Null, report.clone(), "https://gitee.com/acme/shop"),
        "git.report.provider",
    );
    assert!(why.contains("Gitee"), "{why}");

    // The self-hosted origins the variables name are allowed.
    host.set_var("notify_origin", "https://hooks.acme.dev");
    host.set_var("git_origin", "https://git.acme.dev");
    let put = host.admin(
        "PUT",
        "/api/apps/shop",
        &app(receiver, gitlab, "https://git.acme.dev/team/shop"),
    );
    assert_eq!(put.status(), 201, "{}", put.text());
    // A webhook channel without a secret gets one, in the Standard Webhooks format.
    let stored = crate::state::app::load(&host.kv, "shop").unwrap().unwrap();
    let secret = stored.notify[0]
        .secret
        .as_ref()
        .unwrap()
        .expose()
        .to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(put.json()["notify"][0]["secret"], "***");
    // The placeholder default names no origin anyone may call.
    host.set_var("notify_origin", "https://unset.invalid");
    refused(
        app(
            json!([{"type": "webhook", "url": "https://unset.invalid/x"}]),
            Value::Null,
            "",
        ),
        "notify[0].url",
    );
}

#[test]
fn a_deploy_is_told_after_the_answer_and_recorded_on_the_delivery() {
    let host = FakeHost::default();
    notified(&host);
    let answered = push(&host, "d-1");
    assert_eq!(answered.result(), (202, "deployed".into()));
    assert_eq!(
        host.sent_before_answer.get(),
        1,
        "only the deploy call is made before the answer"
    );
    let urls = sent_urls(&host);
    assert_eq!(
        urls,
        [
            "https://platform.example.com/v1/apps/shop/deploy".to_string(),
            SLACK_URL.to_string(),
            format!("https://api.github.com/repos/acme/shop/statuses/{HEAD}"),
        ],
        "DingTalk hears only refusals and failures"
    );
    let slack = host.sent_json(1).to_string();
    assert!(
        slack.contains("shop") && slack.contains("0d1a26e"),
        "{slack}"
    );
    let status = host.sent_json(2);
    assert_eq!(status["state"], "pending");
    assert_eq!(status["context"], "autodeploy/shop");

    let notices = &super::delivery_entry(&host, "d-1")["notices"];
    assert_eq!(notices[0]["to"], "slack#0");
    assert_eq!(notices[0]["event"], "requested");
    assert_eq!(notices[0]["ok"], true);
    assert_eq!(notices[1]["to"], "git.report");
    assert_eq!(notices[1]["ok"], true);
    assert_no_secrets(&host.log_text());
    assert_no_secrets(&answered.text());
}

#[test]
fn a_failing_receiver_changes_nothing_of_the_answer_and_shows_on_the_delivery() {
    let host = FakeHost::default();
    notified(&host);
    host.answer(Ok((202, Vec::new())));
    host.answer(Err("connection refused".into()));
    host.answer(Ok((401, br#"{"message": "Bad credentials"}"#.to_vec())));
    let answered = push(&host, "d-1");
    assert_eq!(answered.result(), (202, "deployed".into()));
    let notices = &super::delivery_entry(&host, "d-1")["notices"];
    assert_eq!(notices[0]["ok"], false);
    assert_eq!(notices[0]["error"], "connection refused");
    assert_eq!(notices[1]["ok"], false);
    assert!(
        notices[1]["error"].as_str().unwrap().contains("401"),
        "{notices}"
    );
    assert!(host
        .log_text()
        .contains("to=slack#0 event=requested failed"));
    assert_no_secrets(&host.log_text());
}

#[test]
fn a_refused_deploy_is_told_to_the_channels_that_hear_refusals() {
    let host = FakeHost::default();
    notified(&host);
    host.answer(Ok((500, b"boom".to_vec())));
    let answered = push(&host, "d-1");
    assert_eq!(answered.status(), 502);
    let urls = sent_urls(&host);
    assert_eq!(urls.len(), 4, "{urls:?}");
    assert_eq!(urls[1], SLACK_URL);
    assert!(urls[2].starts_with(DING_URL), "{}", urls[2]);
    assert_eq!(host.sent_json(3)["state"], "failure");
    let ding = host.sent_json(2).to_string();
    assert!(ding.contains("500"), "the reason is told: {ding}");
    assert_eq!(
        super::delivery_entry(&host, "d-1")["notices"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // A status that does not allow deploys: refused too, with what would have deployed.
    let put = host.admin("PUT", "/api/apps/shop/status", &json!({"status": "closed"}));
    assert_eq!(put.status(), 200);
    let gated = push(&host, "d-2");
    assert_eq!(gated.status(), 409);
    let urls = sent_urls(&host);
    assert_eq!(urls.len(), 7, "no deploy call, three notices: {urls:?}");
    assert!(host.sent_json(5).to_string().contains("closed"));
}

#[test]
fn the_final_outcome_is_told_once() {
    let host = FakeHost::default();
    notified(&host);
    assert_eq!(push(&host, "d-1").status(), 202);
    let status_url = host.sent_json(0)["status_url"]
        .as_str()
        .unwrap()
        .to_string();
    let path = status_url
        .strip_prefix("https://hooks.example.com")
        .unwrap();
    let report = |body: &Value| {
        host.request(
            "POST",
            path,
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
    };
    let before = host.calls();
    assert_eq!(report(&json!({"state": "building"})).status(), 200);
    assert_eq!(host.calls(), before, "building is not told");
    host.advance(65_000);
    let done = report(
        &json!({"state": "failed", "url": "https://platform.example.com/b/9",
                              "description": "tests failed"}),
    );
    assert_eq!(done.result(), (200, "recorded".into()));
    assert_eq!(host.sent_before_answer.get(), before);
    let urls = sent_urls(&host);
    assert_eq!(urls.len(), before + 3, "slack, dingtalk, status: {urls:?}");
    let slack = host.sent_json(before).to_string();
    assert!(slack.contains("tests failed"), "{slack}");
    assert!(
        slack.contains("https://platform.example.com/b/9"),
        "{slack}"
    );
    assert!(slack.contains("1 min 5 s"), "the duration: {slack}");
    let status = host.sent_json(before + 2);
    assert_eq!(status["state"], "failure");
    assert_eq!(status["target_url"], "https://platform.example.com/b/9");
    assert_eq!(
        super::delivery_entry(&host, "d-1")["notices"]
            .as_array()
            .unwrap()
            .len(),
        2 + 3
    );

    // Said again: unchanged, and nobody is told twice.
    let again = report(&json!({"state": "failed"}));
    assert_eq!(again.result(), (200, "unchanged".into()));
    assert_eq!(host.calls(), before + 3);
}

#[test]
fn a_test_message_goes_out_at_once_and_says_how_it_went() {
    let host = FakeHost::default();
    notified(&host);
    host.answer(Ok((200, br#"{"errcode": 0, "errmsg": "ok"}"#.to_vec())));
    let sent = host.admin("POST", "/api/apps/shop/notify/1/test", &Value::Null);
    assert_eq!(sent.status(), 200, "{}", sent.text());
    assert_eq!(sent.json()["to"], "dingtalk#1");
    assert!(sent_urls(&host)[0].starts_with(DING_URL));

    host.answer(Ok((
        200,
        br#"{"errcode": 310000, "errmsg": "sign not match"}"#.to_vec(),
    )));
    let failed = host.admin("POST", "/api/apps/shop/notify/1/test", &Value::Null);
    assert_eq!(failed.status(), 502, "{}", failed.text());
    assert_eq!(failed.json()["result"], "failed");
    assert_no_secrets(&failed.text());

    let missing = host.admin("POST", "/api/apps/shop/notify/2/test", &Value::Null);
    assert_eq!(missing.status(), 404);
    let wrong = host.admin("GET", "/api/apps/shop/notify/0/test", &Value::Null);
    assert_eq!(wrong.status(), 405);
    assert_no_secrets(&host.log_text());
}

#[test]
fn every_forge_named_by_its_host_is_callable_without_a_variable() {
    let host = FakeHost::default();
    for (repo, provider) in [
        ("https://github.com/acme/shop", "github"),
        ("https://gitlab.com/acme/group/shop", "gitlab"),
        ("https://bitbucket.org/acme/shop", "bitbucket"),
        ("https://codeberg.org/acme/shop", "forgejo"),
        ("https://gitea.com/acme/shop", "gitea"),
    ] {
        let put = host.admin(
            "PUT",
            "/api/apps/shop",
            &json!({"git": {"repo": repo, "report": {"token": GITHUB_TOKEN}},
                    "deploy": {"target": "generic", "path": "/deploy"}}),
        );
        assert!(put.status() < 300, "{repo}: {}", put.text());
        assert_eq!(put.json()["git"]["report"]["provider"], provider);
    }
}
