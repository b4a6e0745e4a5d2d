//! The API trigger: `POST /hooks/{app}/api` with the app's secret key.

use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn bearer_or_body_secret_deploys_and_wrong_or_disabled_do_not() {
    let gw = Gateway::new();
    let app = gw.shop().await;
    let key = app["api"]["secret_key"].as_str().unwrap();

    let bearer = format!("Bearer {key}");
    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/api",
            &[("authorization", &bearer)],
            b"",
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/api",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            b"",
        )
        .await;
    assert_eq!(
        status, 202,
        "a JSON content type with an empty body: {answer}"
    );
    let body = json!({"secret_key": key}).to_string();
    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/api",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let calls = gw.platform.requests();
    assert_eq!(
        calls.len(),
        3,
        "without an Idempotency-Key every call is a new delivery"
    );
    assert_ne!(
        calls[0].header("idempotency-key"),
        calls[1].header("idempotency-key")
    );
    let sent = calls[0].json();
    assert_eq!(
        (sent["trigger"].as_str(), sent["provider"].as_str()),
        (Some("api"), Some("api"))
    );
    assert!(sent["commit"].is_null() && sent["repository"].is_null() && sent["image"].is_null());

    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/api",
            &[("authorization", "Bearer nope")],
            b"",
        )
        .await;
    assert_eq!(status, 401, "{answer}");
    let (status, _) = gw.call("POST", "/hooks/shop/api", &[], b"").await;
    assert_eq!(status, 401);

    gw.admin("POST", "/api/apps/shop/triggers/api/disable", None)
        .await;
    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/api",
            &[("authorization", &bearer)],
            b"",
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(gw.calls(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_makes_a_repeat_a_duplicate() {
    let gw = Gateway::new();
    let app = gw.shop().await;
    let bearer = format!("Bearer {}", app["api"]["secret_key"].as_str().unwrap());
    let headers = [
        ("authorization", bearer.as_str()),
        ("idempotency-key", "ci-run-4411"),
    ];
    let (status, _) = gw.call("POST", "/hooks/shop/api", &headers, b"").await;
    assert_eq!(status, 202);
    let (status, answer) = gw.call("POST", "/hooks/shop/api", &headers, b"").await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(
        gw.platform.requests()[0].header("idempotency-key"),
        Some("ci-run-4411")
    );
    assert_eq!(gw.calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_body_secrets_and_oversized_bodies_are_refused() {
    let gw = Gateway::new();
    let app = gw.shop().await;
    let key = app["api"]["secret_key"].as_str().unwrap();
    let json_type = [("content-type", "application/json")];
    for body in [
        json!({"secret_key": "nope"}),
        json!({"secret_key": ""}),
        json!({"secret_key": 42}),
        json!({"other": key}),
    ] {
        let (status, answer) = gw
            .call(
                "POST",
                "/hooks/shop/api",
                &json_type,
                body.to_string().as_bytes(),
            )
            .await;
        assert_eq!(
            (status, answer["result"].as_str()),
            (401, Some("rejected")),
            "{body}: {answer}"
        );
        assert!(!answer.to_string().contains(key));
    }

    // 64 KiB is the limit, checked before the secret is looked at
    let mut big = json!({"secret_key": key, "pad": ""});
    big["pad"] = json!("x".repeat(64 * 1024));
    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/api",
            &json_type,
            big.to_string().as_bytes(),
        )
        .await;
    assert_eq!(status, 413, "{answer}");
    let bearer = format!("Bearer {key}");
    let (status, _) = gw
        .call(
            "POST",
            "/hooks/shop/api",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            &vec![b' '; 64 * 1024 + 1],
        )
        .await;
    assert_eq!(status, 413);

    // just under the limit is fine
    let mut fits = json!({"secret_key": key, "pad": ""});
    let room = 64 * 1024 - fits.to_string().len();
    fits["pad"] = json!("x".repeat(room));
    let body = fits.to_string();
    assert_eq!(body.len(), 64 * 1024);
    let (status, answer) = gw
        .call("POST", "/hooks/shop/api", &json_type, body.as_bytes())
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(gw.calls(), 1);
}
