//! App lifecycle and delivery guarantees: switches, rotation, persistence, load.

use std::sync::Arc;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_concurrent_distinct_deliveries_make_two_hundred_calls() {
    let gw = Arc::new(Gateway::new());
    let secret = git_secret(&gw.shop().await);
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let (gw, secret) = (gw.clone(), secret.clone());
            tokio::spawn(async move {
                let id = format!("dist-{n}");
                gw.github("shop", &secret, "push", &id, &push_for(&id))
                    .await
            })
        })
        .collect();
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        assert_eq!(status, 202, "{answer}");
    }
    let calls = gw.platform.requests();
    assert_eq!(calls.len(), 200);
    let mut keys: Vec<_> = calls
        .iter()
        .map(|c| c.header("idempotency-key").unwrap().to_string())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 200, "one call per delivery");
    let (_, log) = gw.admin("GET", "/api/apps/shop/deliveries", None).await;
    assert_eq!(
        log["deliveries"].as_array().unwrap().len(),
        50,
        "the log keeps the last 50 under load"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kv_file_keeps_apps_and_deployed_deliveries_across_a_restart() {
    let dir = std::env::temp_dir().join(format!("autodeploy-e2e-{}", std::process::id()));
    // The whole directory: the database comes with -wal, -shm and .lock files.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kv.db");
    let body = fixture("github/push.json");

    let first = Gateway::with_kv_file(&path);
    let app = first.shop().await;
    let secret = git_secret(&app);
    let (status, _) = first
        .github("shop", &secret, "push", "persist-1", &body)
        .await;
    assert_eq!(status, 202);
    drop(first);
    // The deployed delivery left its done record, and no claim counter.
    let stored = Gateway::kv_file_store(&path);
    let keys: Vec<&String> = stored.keys().collect();
    assert!(keys.iter().any(|k| *k == "done/shop/persist-1"), "{keys:?}");
    assert!(!keys.iter().any(|k| k.starts_with("claim/")), "{keys:?}");

    let second = Gateway::with_kv_file(&path);
    let (status, read) = second.admin("GET", "/api/apps/shop", None).await;
    assert_eq!(
        (status, &read["git"]["secret"]),
        (200, &app["git"]["secret"])
    );
    let (status, answer) = second
        .github("shop", &secret, "push", "persist-1", &body)
        .await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(second.calls(), 0);
    let (_, log) = second.admin("GET", "/api/apps/shop/deliveries", None).await;
    assert_eq!(
        log["deliveries"][1]["result"], "deployed",
        "the log persisted too"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn switches_rotation_and_status_for_every_trigger() {
    let gw = Gateway::new();
    let app = gw.shop().await;

    let (status, answer) = gw
        .admin("POST", "/api/apps/shop/triggers/image/enable", None)
        .await;
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("image.repository")),
        "{answer}"
    );
    gw.admin(
        "PUT",
        "/api/apps/shop",
        Some(json!({"git": {"enabled": true}, "api": {"enabled": true},
                    "image": {"repository": "docker.io/acme/shop"},
                    "deploy": {"path": "/v1/apps/shop/deploy"}})),
    )
    .await;
    for trigger in ["git", "image", "api"] {
        for (action, on) in [("disable", false), ("enable", true)] {
            let (status, answer) = gw
                .admin(
                    "POST",
                    &format!("/api/apps/shop/triggers/{trigger}/{action}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{trigger} {action}: {answer}");
            assert_eq!(answer[trigger]["enabled"], on);
        }
    }
    let (status, _) = gw
        .admin("POST", "/api/apps/shop/triggers/svn/enable", None)
        .await;
    assert_eq!(status, 400);

    let (_, rotated) = gw
        .admin("POST", "/api/apps/shop/triggers/image/rotate", None)
        .await;
    let (old, new) = (
        app["image"]["token"].as_str().unwrap(),
        rotated["image"]["token"].as_str().unwrap(),
    );
    assert_ne!(old, new);
    assert!(rotated["hooks"]["image"].as_str().unwrap().ends_with(new));
    let (status, _) = gw
        .call(
            "POST",
            &format!("/hooks/shop/image/{old}"),
            &[("content-type", "application/json")],
            b"{}",
        )
        .await;
    assert_eq!(status, 404, "the old image URL is dead at once");

    let (_, rotated) = gw
        .admin("POST", "/api/apps/shop/triggers/api/rotate", None)
        .await;
    let old_key = format!("Bearer {}", app["api"]["secret_key"].as_str().unwrap());
    let (status, _) = gw
        .call(
            "POST",
            "/hooks/shop/api",
            &[("authorization", &old_key)],
            b"",
        )
        .await;
    assert_eq!(status, 401);
    let new_key = format!("Bearer {}", rotated["api"]["secret_key"].as_str().unwrap());
    let (status, _) = gw
        .call(
            "POST",
            "/hooks/shop/api",
            &[("authorization", &new_key)],
            b"",
        )
        .await;
    assert_eq!(status, 202);

    let (status, answer) = gw
        .admin("PUT", "/api/apps/shop/status", Some(json!({"state": "x"})))
        .await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("state")));
    let (status, answer) = gw
        .admin("PUT", "/api/apps/shop/status", Some(json!({"status": ""})))
        .await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("status")));
    let (status, answer) = gw
        .admin(
            "PUT",
            "/api/apps/shop/status",
            Some(json!({"status": "stopped"})),
        )
        .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("stopped")));
    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/api",
            &[("authorization", &new_key)],
            b"",
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["reason"].as_str().unwrap().contains("stopped"));
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_methods_and_unknown_apps() {
    let gw = Gateway::new();
    gw.shop().await;
    for (method, path) in [
        ("POST", "/api/apps"),
        ("POST", "/api/apps/shop"),
        ("GET", "/api/apps/shop/triggers/git/enable"),
    ] {
        let (status, answer) = gw.admin(method, path, None).await;
        assert_eq!(status, 405, "{method} {path}: {answer}");
    }
    for path in ["/api/apps/nope", "/api/apps/nope/deliveries"] {
        let (status, _) = gw.admin("GET", path, None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = gw
        .admin("POST", "/api/apps/nope/triggers/git/enable", None)
        .await;
    assert_eq!(status, 404);
}

/// Over real HTTP with a chunked body (no Content-Length), so the limit is enforced while
/// the component reads the stream.
#[tokio::test(flavor = "multi_thread")]
async fn the_body_limit_holds_for_a_chunked_body_over_http() {
    let gw = Gateway::new();
    let app = gw.shop().await;
    let server = gw.host.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr();
    let serving = server.spawn();

    let auth = format!("Bearer {}", app["api"]["secret_key"].as_str().unwrap());
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /hooks/shop/api HTTP/1.1\r\nhost: {addr}\r\nauthorization: {auth}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 16 * 1024];
    for _ in 0..5 {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        stream.write_all(&chunk).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(gw.calls(), 0);
    serving.abort();
}

/// Served over real HTTP, the access log says how much of a deploy's time was the
/// platform's (the outbound call), and says nothing of the sort where no call was made.
#[tokio::test(flavor = "multi_thread")]
async fn the_access_log_shows_the_time_spent_waiting_for_the_platform() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    gw.platform
        .set_delay(Some(std::time::Duration::from_millis(120)));
    let server = gw.host.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr();
    let serving = server.spawn();

    let body = fixture("github/push.json");
    let post = |signature: String| {
        let head = push_head(addr, "timed-1", &signature, body.len());
        let body = body.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(&body).await.unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.unwrap();
            String::from_utf8_lossy(&answer).into_owned()
        }
    };
    let answer = post(sign("not-the-secret", &body)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let answer = post(sign(&secret, &body)).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert_eq!(gw.calls(), 1);

    let lines = gw.host.access_logs();
    let hooks: Vec<&String> = lines.iter().filter(|l| l.contains("/hooks/")).collect();
    assert_eq!(hooks.len(), 2, "{lines:?}");
    assert!(
        hooks[0].starts_with("POST /hooks/shop/git 401 "),
        "{lines:?}"
    );
    assert!(
        !hooks[0].contains("outbound"),
        "no call was made: {lines:?}"
    );
    let outbound_ms: f64 = hooks[1]
        .strip_prefix("POST /hooks/shop/git 202 ")
        .and_then(|rest| rest.split_once(" (outbound "))
        .and_then(|(_, ms)| ms.strip_suffix("ms)"))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no outbound time: {lines:?}"));
    assert!(outbound_ms >= 120.0, "{lines:?}");
    serving.abort();
}

/// A sender that hangs up while the platform is still answering does not cut the
/// delivery short: the instance finishes on its own, the deploy is recorded, and the
/// sender's retry is answered as a duplicate instead of finding the delivery claimed.
#[tokio::test(flavor = "multi_thread")]
async fn a_sender_hanging_up_mid_deploy_does_not_cut_the_delivery_short() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    gw.platform
        .set_delay(Some(std::time::Duration::from_millis(400)));
    let server = gw.host.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr();
    let serving = server.spawn();

    let body = fixture("github/push.json");
    let head = push_head(addr, "hung-up-1", &sign(&secret, &body), body.len());
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    drop(stream); // the sender gives up while the platform is still answering

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gw
        .host
        .logs()
        .iter()
        .any(|l| l.contains("id=hung-up-1") && l.contains("result=deployed"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the delivery was never recorded: {:?}",
            gw.host.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(gw.calls(), 1);
    gw.platform.set_delay(None);
    let (status, answer) = gw.github("shop", &secret, "push", "hung-up-1", &body).await;
    assert_eq!(status, 200, "the retry is a duplicate: {answer}");
    assert_eq!(gw.calls(), 1, "and makes no second call");
    serving.abort();
}

/// The head of a GitHub push delivery to `/hooks/shop/git`, sent by hand over HTTP/1.1.
fn push_head(addr: std::net::SocketAddr, delivery: &str, signature: &str, length: usize) -> String {
    format!(
        "POST /hooks/shop/git HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         x-github-event: push\r\nx-github-delivery: {delivery}\r\n\
         x-hub-signature-256: {signature}\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
    )
}
