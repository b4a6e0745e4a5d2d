//! The platform's outcome report through the real component: the deploy call carries a
//! `status_url`; a report to it shows in the delivery log; a forged one does not.

use serde_json::{json, Value};

use crate::support::*;

/// The path of an absolute URL (what runtime-host serves).
fn path_of(url: &str) -> &str {
    &url[url.find("/hooks/").expect("a hooks URL")..]
}

#[tokio::test]
async fn the_platform_reports_the_outcome_to_the_status_url() {
    let gw = Gateway::new();
    let app = gw.shop().await;
    let secret = git_secret(&app);
    let (status, _) = gw
        .github("shop", &secret, "push", "outcome-1", &push_for("outcome-1"))
        .await;
    assert_eq!(status, 202);
    let sent = gw.platform.requests().last().unwrap().json();
    let url = sent["status_url"]
        .as_str()
        .expect("a status_url")
        .to_string();
    assert!(url.contains("/hooks/shop/status/"), "{url}");

    let json = [("content-type", "application/json")];
    let forged = format!("{}{}", &url[..url.len() - 4], "0000");
    let report = json!({"state": "failed", "url": "https://platform.example/builds/7",
                        "description": "tests failed"});
    let (status, answer) = gw
        .call(
            "POST",
            path_of(&forged),
            &json,
            report.to_string().as_bytes(),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = gw
        .call("POST", path_of(&url), &json, report.to_string().as_bytes())
        .await;
    assert_eq!(
        (status, &answer["result"]),
        (200, &json!("recorded")),
        "{answer}"
    );
    let (status, answer) = gw
        .call("POST", path_of(&url), &json, br#"{"state": "succeeded"}"#)
        .await;
    assert_eq!(status, 409, "final: {answer}");

    let (_, log) = gw.admin("GET", "/api/apps/shop/deliveries", None).await;
    let entry: &Value = &log["deliveries"][0];
    assert_eq!(entry["id"], "outcome-1");
    assert_eq!(entry["outcome"]["state"], "failed");
    assert_eq!(entry["outcome"]["url"], "https://platform.example/builds/7");
    assert_eq!(entry["outcome"]["description"], "tests failed");
}
