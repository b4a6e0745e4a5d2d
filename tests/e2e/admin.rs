//! The admin API through the real component.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn every_admin_route_needs_the_admin_token() {
    let gw = Gateway::new();
    gw.shop().await;
    let routes = [
        ("GET", "/api/apps"),
        ("GET", "/api/apps/shop"),
        ("PUT", "/api/apps/shop"),
        ("DELETE", "/api/apps/shop"),
        ("POST", "/api/apps/shop/triggers/git/rotate"),
        ("PUT", "/api/apps/shop/status"),
        ("GET", "/api/apps/shop/deliveries"),
    ];
    for (method, path) in routes {
        for auth in [None, Some("Bearer wrong-token"), Some(ADMIN_TOKEN)] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
            let (status, answer) = gw.call(method, path, &headers, b"{}").await;
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {answer}");
            assert!(answer["error"].is_string());
        }
    }
    let (status, _) = gw.call("GET", "/healthz", &[], b"").await;
    assert_eq!(status, 200, "healthz needs no token");
}

#[tokio::test(flavor = "multi_thread")]
async fn create_read_replace_list_delete() {
    let gw = Gateway::new();
    let app = gw.shop().await;
    for secret in [
        &app["git"]["secret"],
        &app["image"]["token"],
        &app["api"]["secret_key"],
    ] {
        let s = secret.as_str().unwrap();
        assert!(s.len() >= 32, "generated secrets are long: {s}");
    }
    assert_ne!(app["git"]["secret"], app["api"]["secret_key"]);
    assert_eq!(
        app["hooks"]["git"],
        "http://hooks.example.com/hooks/shop/git"
    );
    assert_eq!(
        app["hooks"]["image"],
        format!(
            "http://hooks.example.com/hooks/shop/image/{}",
            app["image"]["token"].as_str().unwrap()
        )
    );
    assert_eq!(app["git"]["keyword"], "deploy");
    assert_eq!(app["image"]["tag"], "latest");
    assert_eq!(
        app["deploy"]["allowed_statuses"],
        json!(["running", "abnormal"])
    );
    assert_eq!(app["status"], "running");

    let (status, read) = gw.admin("GET", "/api/apps/shop", None).await;
    assert_eq!((status, &read), (200, &app));

    // replace: secrets kept when omitted; an omitted section is a disabled trigger
    let (status, replaced) = gw
        .admin(
            "PUT",
            "/api/apps/shop",
            Some(json!({"git": {"enabled": true, "branch": "release/2.x"},
                                                    "deploy": {"path": "/v2/deploy"}})),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["git"]["secret"], app["git"]["secret"]);
    assert_eq!(replaced["git"]["branch"], "release/2.x");
    assert_eq!(replaced["api"]["enabled"], false);
    assert_eq!(replaced["api"]["secret_key"], app["api"]["secret_key"]);

    gw.create_app("blog", json!({"deploy": {"path": "/v1/apps/blog/deploy"}}))
        .await;
    let (status, list) = gw.admin("GET", "/api/apps", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["blog", "shop"]);

    let (status, body) = gw.admin("DELETE", "/api/apps/shop", None).await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, _) = gw.admin("GET", "/api/apps/shop", None).await;
    assert_eq!(status, 404);
    let (status, _) = gw.admin("DELETE", "/api/apps/shop", None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn public_url_builds_the_webhook_urls() {
    let gw = Gateway::with_vars(&[("public_url", "https://hooks.acme.example/")]);
    let app = gw.shop().await;
    assert_eq!(
        app["hooks"]["git"],
        "https://hooks.acme.example/hooks/shop/git"
    );
    assert_eq!(
        app["hooks"]["api"],
        "https://hooks.acme.example/hooks/shop/api"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_bodies_are_400_naming_the_field() {
    let gw = Gateway::new();
    let cases = [
        (json!({"deploy": {"path": "/x"}, "colour": "red"}), "colour"),
        (
            json!({"deploy": {"path": "/x"}, "git": {"brnch": "main"}}),
            "git.brnch",
        ),
        (json!({"git": {"enabled": true}}), "deploy"),
        (json!({"deploy": {"path": "relative"}}), "deploy.path"),
        (
            json!({"deploy": {"path": "//evil.example/x"}}),
            "deploy.path",
        ),
        (
            json!({"deploy": {"path": "/x"}, "git": {"branch": "a..b"}}),
            "git.branch",
        ),
        (
            json!({"deploy": {"path": "/x"}, "git": {"enabled": "yes"}}),
            "git.enabled",
        ),
        (
            json!({"deploy": {"path": "/x"}, "image": {"tag_pattern": "v(\\d+"}}),
            "image.tag_pattern",
        ),
        (
            json!({"deploy": {"path": "/x"}, "image": {"enabled": true}}),
            "image.repository",
        ),
        (
            json!({"deploy": {"target": "rainbond", "service_id": "abc"}}),
            "deploy.secret_key",
        ),
        (json!({"deploy": {"target": "k8s"}}), "deploy.target"),
    ];
    for (body, field) in cases {
        let (status, answer) = gw.admin("PUT", "/api/apps/shop", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    let (status, answer) = gw
        .call(
            "PUT",
            "/api/apps/shop",
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            b"{not json",
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = gw
        .admin(
            "PUT",
            "/api/apps/Bad_Name",
            Some(json!({"deploy": {"path": "/x"}})),
        )
        .await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("name")));
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_the_git_secret_retires_the_old_one_at_once() {
    let gw = Gateway::new();
    let old = git_secret(&gw.shop().await);
    let (status, rotated) = gw
        .admin("POST", "/api/apps/shop/triggers/git/rotate", None)
        .await;
    assert_eq!(status, 200);
    let new = git_secret(&rotated);
    assert_ne!(old, new);
    let body = fixture("github/push.json");
    let (status, _) = gw.github("shop", &old, "push", "rot-1", &body).await;
    assert_eq!(status, 401);
    let (status, _) = gw.github("shop", &new, "push", "rot-1", &body).await;
    assert_eq!(status, 202);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_delivery_log_records_every_delivery_without_secrets() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let body = fixture("github/push.json");
    gw.github("shop", "wrong", "push", "log-1", &body).await;
    gw.github("shop", &secret, "push", "log-2", &body).await;
    gw.github("shop", &secret, "push", "log-2", &body).await;
    let (status, log) = gw.admin("GET", "/api/apps/shop/deliveries", None).await;
    assert_eq!(status, 200);
    let entries = log["deliveries"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    assert_eq!(summary, [("log-2", "duplicate"), ("log-2", "deployed")]);
    // the bad signature was refused before authentication: listed apart
    let rejected = log["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{log}");
    assert_eq!(
        (
            &rejected[0]["id"],
            &rejected[0]["result"],
            &rejected[0]["reason"]
        ),
        (
            &json!("log-1"),
            &json!("rejected"),
            &json!("invalid signature")
        )
    );
    assert_eq!(entries[1]["platform_status"], 202);
    assert_eq!(entries[1]["provider"], "github");
    assert_eq!(entries[1]["trigger"], "git");
    assert!(entries[1]["at"].as_str().unwrap().ends_with('Z'));
    let text = log.to_string();
    assert!(!text.contains(&secret) && !text.contains(PLATFORM_TOKEN));
    assert!(!text.contains("Round totals"), "no payload in the log");

    for n in 0..60 {
        gw.github("shop", &secret, "ping", &format!("many-{n}"), b"{}")
            .await;
    }
    let (_, log) = gw.admin("GET", "/api/apps/shop/deliveries", None).await;
    let entries = log["deliveries"].as_array().unwrap();
    assert_eq!(entries.len(), 50, "bounded to the last 50");
    assert_eq!(entries[0]["id"], "many-59");
}

/// Forged posts cannot push a real delivery out of the log: refusals before
/// authentication have their own list, bounded to 20.
#[tokio::test(flavor = "multi_thread")]
async fn sixty_bad_signatures_after_a_deploy_leave_the_deploy_in_the_log() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let body = fixture("github/push.json");
    let (status, _) = gw.github("shop", &secret, "push", "real-1", &body).await;
    assert_eq!(status, 202);
    for n in 0..60 {
        let (status, _) = gw
            .github("shop", "forged", "push", &format!("forged-{n}"), &body)
            .await;
        assert_eq!(status, 401);
    }
    let (status, log) = gw.admin("GET", "/api/apps/shop/deliveries", None).await;
    assert_eq!(status, 200);
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{log}");
    assert_eq!(
        (&deliveries[0]["id"], &deliveries[0]["result"]),
        (&json!("real-1"), &json!("deployed"))
    );
    let rejected = log["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 20, "bounded");
    assert_eq!(rejected[0]["id"], "forged-59", "newest first");
    assert!(rejected.iter().all(|e| e["reason"] == "invalid signature"));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_a_hook_answer_or_the_log() {
    let gw = Gateway::new();
    let app = gw.shop().await;
    let secrets = [
        git_secret(&app),
        app["api"]["secret_key"].as_str().unwrap().to_string(),
        app["image"]["token"].as_str().unwrap().to_string(),
        PLATFORM_TOKEN.to_string(),
        ADMIN_TOKEN.to_string(),
    ];
    let body = fixture("github/push.json");
    let mut answers = Vec::new();
    answers.push(gw.github("shop", &secrets[0], "push", "x-1", &body).await.1);
    answers.push(gw.github("shop", "nope", "push", "x-2", &body).await.1);
    gw.platform.set_status(500);
    answers.push(gw.github("shop", &secrets[0], "push", "x-3", &body).await.1);
    let api_auth = format!("Bearer {}", secrets[1]);
    answers.push(
        gw.call(
            "POST",
            "/hooks/shop/api",
            &[("authorization", &api_auth)],
            b"",
        )
        .await
        .1,
    );
    answers.push(
        gw.call(
            "POST",
            "/hooks/shop/api",
            &[("content-type", "application/json")],
            br#"{"secret_key": 12}"#,
        )
        .await
        .1,
    );
    // The image hook over real HTTP, so that its path (the token) reaches the access log.
    let server = gw.host.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr();
    let serving = server.spawn();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /hooks/shop/image/{} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: 2\r\nconnection: close\r\n\r\n{{}}",
        secrets[2]
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    serving.abort();
    answers.push(Value::from(String::from_utf8_lossy(&answer).into_owned()));
    let access = gw.host.access_logs();
    assert!(
        access
            .iter()
            .any(|l| l.starts_with("POST /hooks/shop/image/*** ")),
        "the image hook is in the access log: {access:?}"
    );
    let everything = format!(
        "{answers:?}\n{}\n{}",
        gw.host.logs().join("\n"),
        gw.host.access_logs().join("\n")
    );
    for secret in &secrets {
        assert!(
            !everything.contains(secret.as_str()),
            "a secret leaked:\n{everything}"
        );
    }
    assert!(
        gw.host
            .logs()
            .iter()
            .any(|l| l.contains("delivery app=shop")),
        "one log line per delivery"
    );
}

/// Status reports racing rotations: every rotation's secret survives (each app write
/// is a compare-and-swap through `wasi:keyvalue/atomics`), and every report lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_status_updates_never_undo_a_rotation() {
    // Every store call takes 5 ms, so reads and writes of the app interleave.
    let store = std::sync::Arc::new(autodeploy_host::MemoryBackend::new());
    let gw = std::sync::Arc::new(Gateway::with_store(
        store,
        std::time::Duration::from_millis(5),
    ));
    gw.shop().await;
    for round in 0..5 {
        let mut reports = Vec::new();
        for n in 0..16 {
            let gw = gw.clone();
            let status = if n % 2 == 0 { "running" } else { "abnormal" };
            reports.push(tokio::spawn(async move {
                gw.admin(
                    "PUT",
                    "/api/apps/shop/status",
                    Some(json!({"status": status})),
                )
                .await
                .0
            }));
        }
        let (status, rotated) = gw
            .admin("POST", "/api/apps/shop/triggers/git/rotate", None)
            .await;
        assert_eq!(status, 200, "{rotated}");
        for report in reports {
            assert_eq!(report.await.unwrap(), 200);
        }
        let (_, app) = gw.admin("GET", "/api/apps/shop", None).await;
        assert_eq!(
            app["git"]["secret"], rotated["git"]["secret"],
            "round {round}: a status report wrote an old secret back"
        );
    }
}

/// `GET /api/apps` pages through an index of names.
#[tokio::test(flavor = "multi_thread")]
async fn the_app_list_pages() {
    let gw = Gateway::new();
    for name in ["c", "a", "b"] {
        gw.create_app(
            name,
            json!({"deploy": {"target": "generic", "path": "/deploy"}}),
        )
        .await;
    }
    let (status, first) = gw.admin("GET", "/api/apps?limit=2", None).await;
    assert_eq!(status, 200, "{first}");
    let names = |page: &Value| -> Vec<String> {
        page["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&first), ["a", "b"]);
    assert_eq!(first["next"], "b");
    let (_, second) = gw.admin("GET", "/api/apps?limit=2&after=b", None).await;
    assert_eq!(names(&second), ["c"]);
    assert_eq!(second["next"], Value::Null);
}

/// "Deploy now" and "Redeploy" through the component: manual deliveries with their own
/// ids, the caller's `Idempotency-Key` honoured, what a push deployed sent again.
#[tokio::test(flavor = "multi_thread")]
async fn deploy_now_and_redeploy() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("idempotency-key", "console-7"),
    ];
    let body = br#"{"branch": "release/2", "commit": "9fceb02"}"#;
    let (status, answer) = gw
        .call("POST", "/api/apps/shop/deploy", &headers, body)
        .await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (202, Some("deployed")),
        "{answer}"
    );
    assert_eq!(answer["delivery"], "console-7");
    let (status, answer) = gw
        .call("POST", "/api/apps/shop/deploy", &headers, body)
        .await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    let calls = gw.platform.requests();
    assert_eq!(calls.len(), 1);
    let sent: Value = serde_json::from_slice(&calls[0].body).unwrap();
    assert_eq!(
        (
            &sent["trigger"],
            &sent["provider"],
            &sent["branch"],
            &sent["commit"]["id"]
        ),
        (
            &json!("manual"),
            &json!("manual"),
            &json!("release/2"),
            &json!("9fceb02")
        )
    );
    assert_eq!(calls[0].header("idempotency-key"), Some("console-7"));

    let push = push_for("d-1");
    let (status, _) = gw.github("shop", &secret, "push", "d-1", &push).await;
    assert_eq!(status, 202);
    // GitHub's Redeliver reuses the id: a duplicate. Redeploy deploys it again.
    let (status, _) = gw.github("shop", &secret, "push", "d-1", &push).await;
    assert_eq!(status, 200);
    let (status, answer) = gw
        .admin("POST", "/api/apps/shop/deliveries/d-1/redeploy", None)
        .await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (202, Some("deployed")),
        "{answer}"
    );
    let calls = gw.platform.requests();
    assert_eq!(calls.len(), 3);
    let pushed: Value = serde_json::from_slice(&calls[1].body).unwrap();
    let again: Value = serde_json::from_slice(&calls[2].body).unwrap();
    for member in ["repository", "branch", "commit"] {
        assert_eq!(again[member], pushed[member], "{member}");
    }
    assert_eq!(again["trigger"], "manual");
    let (status, _) = gw
        .admin("POST", "/api/apps/shop/deliveries/unknown/redeploy", None)
        .await;
    assert_eq!(status, 404);
    let (_, log) = gw.admin("GET", "/api/apps/shop/deliveries", None).await;
    let triggers: Vec<&str> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["manual", "git", "git", "manual", "manual"]);
}
