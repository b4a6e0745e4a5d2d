//! The platform's outcome report through the real component: the deploy call carries a
//! `status_url`; a report to it shows in the delivery log; a forged one does not.

use std::time::Duration;

use autodeploy_host::{DemoPlatform, Host};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// `make run`'s demo platform reports each deploy it accepted as succeeded, through the
/// call's `status_url`: the gateway served over HTTP on loopback, as `make run` serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_platform_reports_succeeded() {
    let demo = DemoPlatform::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
        .report_after(Duration::ZERO);
    let platform_url = format!("http://{}", demo.local_addr());
    tokio::spawn(demo.run());
    let host = Host::builder(runtime())
        .var("admin_token", ADMIN_TOKEN)
        .var("platform_url", &platform_url)
        .echo_logs(false)
        .build()
        .unwrap();
    let server = host.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let authority = server.local_addr().to_string();
    server.spawn();
    let gw = Gateway::around(host);
    let app = gw.shop().await;
    let key = app["api"]["secret_key"].as_str().unwrap().to_string();

    // The hook goes over TCP, so that the status URL names the server's address.
    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let head = format!(
        "POST /hooks/shop/api HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nIdempotency-Key: demo-1\r\nContent-Length: 2\r\n\
         Connection: close\r\n\r\n{{}}"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");

    let mut outcome = Value::Null;
    for _ in 0..100 {
        let (_, log) = gw.admin("GET", "/api/apps/shop/deliveries", None).await;
        outcome = log["deliveries"][0]["outcome"].clone();
        if !outcome.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(outcome["state"], "succeeded", "{outcome}");
    assert_eq!(outcome["description"], "demo platform: nothing was built");
}
