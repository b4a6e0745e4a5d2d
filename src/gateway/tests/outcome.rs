//! The platform reports how a deploy ended through the delivery's `status_url`.

use serde_json::{json, Value};

use super::super::fake::FakeHost;
use super::hooks::status_token;
use super::{create, push, push_with, shop};

/// `POST url` (absolute, on the fake host) with `body`.
fn report(host: &FakeHost, url: &str, body: &Value) -> super::Answered {
    let path = url.strip_prefix("https://hooks.example.com").unwrap_or(url);
    host.request(
        "POST",
        path,
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn status_url(host: &FakeHost, call: usize) -> String {
    host.sent_json(call)["status_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no status_url in call {call}"))
        .to_string()
}

fn outcome(host: &FakeHost, delivery: &str) -> Value {
    super::delivery_entry(host, delivery)["outcome"].clone()
}

#[test]
fn the_platform_reports_building_then_a_final_outcome() {
    let host = FakeHost::default();
    shop(&host);
    assert_eq!(push(&host, "d-1").status(), 202);
    let url = status_url(&host, 0);
    assert_eq!(
        url,
        format!(
            "https://hooks.example.com/hooks/shop/status/1/{}",
            status_token(1, "d-1")
        )
    );
    assert_eq!(outcome(&host, "d-1"), Value::Null, "nothing reported yet");

    let building = report(&host, &url, &json!({"state": "building"}));
    assert_eq!(
        building.result(),
        (200, "recorded".into()),
        "{}",
        building.text()
    );
    assert_eq!(building.json()["delivery"], "d-1");
    assert_eq!(outcome(&host, "d-1")["state"], "building");
    // building again (a platform's retry, or progress) is fine
    let again = report(
        &host,
        &url,
        &json!({"state": "building", "description": "step 2/3"}),
    );
    assert_eq!(again.status(), 200);

    host.advance(90_000);
    let done = json!({"state": "succeeded", "url": "https://platform.example.com/builds/42",
                      "description": "built in 88 s", "extra": "ignored"});
    assert_eq!(
        report(&host, &url, &done).result(),
        (200, "recorded".into())
    );
    let recorded = outcome(&host, "d-1");
    assert_eq!(
        recorded,
        json!({"state": "succeeded", "url": "https://platform.example.com/builds/42",
               "description": "built in 88 s", "at": "2026-11-25T09:31:30.000Z"})
    );
    // final: the same again is idempotent, another state is refused, nothing changes
    let same = report(&host, &url, &done);
    assert_eq!(same.result(), (200, "unchanged".into()));
    for other in ["failed", "building"] {
        let refused = report(&host, &url, &json!({"state": other}));
        assert_eq!(refused.status(), 409, "{other}: {}", refused.text());
        assert!(refused.json()["reason"]
            .as_str()
            .unwrap()
            .contains("final: succeeded"));
    }
    assert_eq!(outcome(&host, "d-1"), recorded);
}

#[test]
fn forged_other_and_expired_urls_and_bad_reports_are_refused() {
    let host = FakeHost::default();
    shop(&host);
    assert_eq!(push(&host, "d-1").status(), 202);
    let url = status_url(&host, 0);
    let second = push_with(|p| p["before"] = json!("1".repeat(40)));
    assert_eq!(
        super::github(&host, super::GITHUB_SECRET, "push", "d-2", &second).status(),
        202
    );
    let url2 = status_url(&host, 1);
    let ok = json!({"state": "failed"});

    // a wrong token, the first delivery's token on the second's entry, a seq never taken,
    // another app, a malformed seq: all unknown
    let (base, token) = url.rsplit_once('/').unwrap();
    let forged = format!("{base}/{}", "0".repeat(32));
    let swapped = format!("{}/{token}", url2.rsplit_once('/').unwrap().0);
    let future = format!("https://hooks.example.com/hooks/shop/status/99/{token}");
    let other_app = url.replace("/hooks/shop/", "/hooks/nope/");
    let bad_seq = format!("https://hooks.example.com/hooks/shop/status/x/{token}");
    for (what, u) in [
        ("forged", &forged),
        ("swapped", &swapped),
        ("future", &future),
        ("other app", &other_app),
        ("bad seq", &bad_seq),
    ] {
        let r = report(&host, u, &ok);
        assert_eq!(r.result(), (404, "rejected".into()), "{what}: {}", r.text());
        assert_eq!(r.json()["app"], Value::Null, "{what}: a 404 names no app");
    }
    assert_eq!(outcome(&host, "d-1"), Value::Null);
    assert_eq!(outcome(&host, "d-2"), Value::Null);

    // bad reports name their field; GET is not a report
    for (body, field) in [
        (json!({"state": "done"}), "state"),
        (json!({}), "state"),
        (
            json!({"state": "failed", "url": "javascript:alert(1)"}),
            "url",
        ),
        (json!({"state": "failed", "description": 7}), "description"),
    ] {
        let r = report(&host, &url, &body);
        assert_eq!(r.status(), 400, "{body}: {}", r.text());
        assert_eq!(r.json()["field"], field, "{body}");
    }
    let get = host.request(
        "GET",
        url.strip_prefix("https://hooks.example.com").unwrap(),
        &[],
        b"",
    );
    assert_eq!(get.status(), 405);

    // 50 more deliveries push d-1 out of the log: its URL has expired
    for n in 0..50 {
        let body = push_with(|p| p["before"] = json!(format!("{n:040x}")));
        let id = format!("more-{n}");
        assert_eq!(
            super::github(&host, super::GITHUB_SECRET, "push", &id, &body).status(),
            202
        );
    }
    let expired = report(&host, &url, &ok);
    assert_eq!(expired.status(), 410, "{}", expired.text());
    // a new admin token makes the outstanding URLs unknown
    let latest = status_url(&host, 51);
    host.set_var("admin_token", "another-admin-token-0123456789abcd");
    assert_eq!(report(&host, &latest, &ok).status(), 404);
}

/// Deploy now carries a status URL too; Rainbond, which reports nothing back, gets none.
#[test]
fn manual_deploys_have_one_and_rainbond_has_none() {
    let host = FakeHost::default();
    shop(&host);
    let now = host.admin("POST", "/api/apps/shop/deploy", &Value::Null);
    assert_eq!(now.status(), 202, "{}", now.text());
    let url = status_url(&host, 0);
    let id = now.json()["delivery"].as_str().unwrap().to_string();
    assert_eq!(
        report(&host, &url, &json!({"state": "succeeded"})).status(),
        200
    );
    assert_eq!(outcome(&host, &id)["state"], "succeeded");

    let host = FakeHost::default();
    create(
        &host,
        json!({"git": {"enabled": true, "secret": super::GITHUB_SECRET},
               "deploy": {"target": "rainbond", "service_id": "abc", "secret_key": "rb-key"}}),
    );
    push(&host, "d-1"); // the fake platform does not answer as Rainbond: a 502
    let sent = host.sent_json(0);
    assert_eq!(sent, json!({"secret_key": "rb-key"}));
    assert_eq!(outcome(&host, "d-1"), Value::Null);
}

/// A report that comes before the deploy call was answered (its entry number is taken,
/// its entry not written yet) is told to retry; a number never taken is unknown.
#[test]
fn a_report_ahead_of_the_calls_answer_is_told_to_retry() {
    use crate::gateway::Host;
    use crate::state::log::{self, Ring};

    let host = FakeHost::default();
    shop(&host);
    assert_eq!(push(&host, "d-1").status(), 202);
    // what a second deploy does just before its call: take entry number 2
    let kv = host.kv().unwrap();
    assert_eq!(log::reserve(kv, "shop", Ring::Main).unwrap(), 2);
    let early = format!(
        "https://hooks.example.com/hooks/shop/status/2/{}",
        status_token(2, "d-2")
    );
    let r = report(&host, &early, &json!({"state": "building"}));
    assert_eq!(r.result(), (409, "in_progress".into()), "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    let never = format!(
        "https://hooks.example.com/hooks/shop/status/3/{}",
        status_token(3, "d-3")
    );
    assert_eq!(
        report(&host, &never, &json!({"state": "building"})).status(),
        404
    );
}
