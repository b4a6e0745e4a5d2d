//! Deliveries refused before authentication: their own bounded list beside the log, so
//! that a flood of them cannot push the real deliveries out of it.

use serde_json::Value;

use super::super::fake::FakeHost;
use super::{github, push, shop};
use crate::state::log::{CAPACITY, REJECTED_CAPACITY};

/// `GET /api/apps/shop/deliveries`: `(deliveries, rejected)`.
fn lists(host: &FakeHost) -> (Vec<Value>, Vec<Value>) {
    let answer = host.admin("GET", "/api/apps/shop/deliveries", &Value::Null);
    assert_eq!(answer.status(), 200, "{}", answer.text());
    let json = answer.json();
    let list = |name: &str| json[name].as_array().unwrap().clone();
    (list("deliveries"), list("rejected"))
}

#[test]
fn sixty_bad_signatures_after_a_deploy_leave_the_deploy_in_the_log() {
    let host = FakeHost::default();
    shop(&host);
    assert_eq!(push(&host, "real-1").result(), (202, "deployed".into()));
    let body = super::fixture("github/push.json");
    for n in 0..60 {
        let forged = github(
            &host,
            "not-the-secret",
            "push",
            &format!("forged-{n}"),
            &body,
        );
        assert_eq!(forged.result(), (401, "rejected".into()));
    }
    let (deliveries, rejected) = lists(&host);
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(
        (&deliveries[0]["id"], &deliveries[0]["result"]),
        (&Value::from("real-1"), &Value::from("deployed"))
    );
    assert_eq!(rejected.len(), REJECTED_CAPACITY as usize);
    assert_eq!(rejected[0]["id"], "forged-59", "newest first");
    assert_eq!(rejected[19]["id"], "forged-40");
    assert!(rejected
        .iter()
        .all(|e| e["result"] == "rejected" && e["reason"] == "invalid signature"));

    // the keys stay bounded, and go with the app
    let log_keys = || {
        let map = host.kv.map.lock().unwrap();
        map.keys().filter(|k| k.starts_with("log/shop/")).count()
    };
    assert!(log_keys() <= (CAPACITY + 1 + REJECTED_CAPACITY + 1) as usize);
    assert_eq!(
        host.admin("DELETE", "/api/apps/shop", &Value::Null)
            .status(),
        204
    );
    assert_eq!(log_keys(), 0);
}

/// Everything refused before the signature, token or secret was checked goes to
/// `rejected`; everything after it, to `deliveries`.
#[test]
fn refusals_before_authentication_are_listed_apart() {
    let host = FakeHost::default();
    let app = shop(&host);
    let token = app["image"]["token"].as_str().unwrap().to_string();
    let json = [("content-type", "application/json")];
    let post = |path: &str, headers: &[(&str, &str)], body: &[u8]| {
        host.request("POST", path, headers, body).status()
    };
    // before authentication: wrong image token, 413, 415, unknown provider, 401 (api)
    assert_eq!(
        post("/hooks/shop/image/wrong-token-0123456789", &json, b"{}"),
        404
    );
    let big = vec![b' '; 64 * 1024 + 1];
    assert_eq!(
        post(&format!("/hooks/shop/image/{token}"), &json, &big),
        413
    );
    assert_eq!(
        post("/hooks/shop/git", &[("content-type", "text/plain")], b"x"),
        415
    );
    assert_eq!(post("/hooks/shop/git", &json, b"{}"), 400);
    assert_eq!(
        post("/hooks/shop/api", &json, br#"{"secret_key": "nope"}"#),
        401
    );
    // after it: the image trigger is off (403), a malformed push (400)
    assert_eq!(
        post(&format!("/hooks/shop/image/{token}"), &json, b"{}"),
        403
    );
    let malformed = super::push_with(|v| {
        v.as_object_mut().unwrap().remove("after");
    });
    let answer = github(&host, super::GITHUB_SECRET, "push", "m-1", &malformed);
    assert_eq!(answer.status(), 400);

    let (deliveries, rejected) = lists(&host);
    let statuses = |list: &[Value]| -> Vec<String> {
        list.iter()
            .map(|e| format!("{}:{}", e["trigger"].as_str().unwrap(), e["reason"]))
            .collect()
    };
    assert_eq!(rejected.len(), 5, "{:?}", statuses(&rejected));
    assert_eq!(deliveries.len(), 2, "{:?}", statuses(&deliveries));
    assert_eq!(rejected[0]["reason"], "invalid secret_key");
    assert_eq!(rejected[4]["reason"], "not found");
    assert_eq!(deliveries[0]["id"], "m-1");
    assert_eq!(deliveries[1]["reason"], "the image trigger is disabled");
}
