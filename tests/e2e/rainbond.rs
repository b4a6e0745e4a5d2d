//! The Rainbond deploy target: the gateway calls Rainbond's own API trigger, and the fake
//! platform answers the way Rainbond's console does.

use serde_json::json;

use crate::support::*;

const SERVICE_ID: &str = "9f2c7d1e4b8a4c21b0e6d5f3a7c9e1b2";
const RAINBOND_KEY: &str = "rb-secret-key-Zq81";

/// `shop` with the API trigger on and the Rainbond target; answers the bearer header.
async fn rainbond_shop(gw: &Gateway) -> String {
    let app = gw
        .create_app(
            "shop",
            json!({
                "api": {"enabled": true},
                "deploy": {"target": "rainbond", "service_id": SERVICE_ID,
                           "secret_key": RAINBOND_KEY}
            }),
        )
        .await;
    format!("Bearer {}", app["api"]["secret_key"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn rainbond_accepts_with_exactly_its_api_trigger_call() {
    let gw = Gateway::new();
    let bearer = rainbond_shop(&gw).await;
    gw.platform.set_status(200);
    gw.platform.set_body(fixture("rainbond/deploy-ok.json"));
    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/api",
            &[("authorization", &bearer), ("idempotency-key", "rb-1")],
            b"",
        )
        .await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (202, Some("deployed")),
        "{answer}"
    );
    let calls = gw.platform.requests();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(
        call.uri,
        format!("https://console.example.com/console/custom/deploy/{SERVICE_ID}")
    );
    assert_eq!(call.body, br#"{"secret_key":"rb-secret-key-Zq81"}"#);
    assert_eq!(call.header("idempotency-key"), Some("rb-1"));
    assert_eq!(
        call.header("authorization"),
        None,
        "platform_token is not sent to Rainbond"
    );
    assert!(!answer.to_string().contains(RAINBOND_KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn rainbond_refusals_map_to_409_and_502_and_a_retry_deploys_once() {
    let gw = Gateway::new();
    let bearer = rainbond_shop(&gw).await;
    let headers = [
        ("authorization", bearer.as_str()),
        ("idempotency-key", "rb-retry-7"),
    ];

    // the component is closed: Rainbond answers 400 with 组件状态不支持
    gw.platform.set_status(400);
    gw.platform
        .set_body(fixture("rainbond/status-not-supported.json"));
    let (status, answer) = gw.call("POST", "/hooks/shop/api", &headers, b"").await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (409, Some("rejected")),
        "{answer}"
    );
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("组件状态不支持"),
        "{answer}"
    );

    // a wrong key: 400 密钥错误 → 502 naming Rainbond's message
    gw.platform.set_body(fixture("rainbond/wrong-key.json"));
    let (status, answer) = gw.call("POST", "/hooks/shop/api", &headers, b"").await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (502, Some("failed")),
        "{answer}"
    );
    assert!(
        answer["reason"].as_str().unwrap().contains("密钥错误"),
        "{answer}"
    );
    assert!(!answer.to_string().contains(RAINBOND_KEY));

    // neither was deployed, so the retry deploys; a retry after that is a duplicate
    gw.platform.set_status(200);
    gw.platform.set_body(fixture("rainbond/deploy-ok.json"));
    let (status, answer) = gw.call("POST", "/hooks/shop/api", &headers, b"").await;
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = gw.call("POST", "/hooks/shop/api", &headers, b"").await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    let calls = gw.platform.requests();
    assert_eq!(calls.len(), 3, "two refusals and one deploy");
    assert!(calls
        .iter()
        .all(|c| c.header("idempotency-key") == Some("rb-retry-7")));

    // the delivery log keeps Rainbond's status and reasons, never the key
    let (_, log) = gw.admin("GET", "/api/apps/shop/deliveries", None).await;
    let results: Vec<_> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["result"].as_str().unwrap(), d["platform_status"].as_u64()))
        .collect();
    assert_eq!(
        results,
        [
            ("duplicate", None),
            ("deployed", Some(200)),
            ("failed", Some(400)),
            ("rejected", Some(400)),
        ]
    );
    assert!(!log.to_string().contains(RAINBOND_KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn rainbond_success_code_in_a_2xx_is_required() {
    let gw = Gateway::new();
    let bearer = rainbond_shop(&gw).await;
    gw.platform.set_status(200);
    gw.platform.set_body(
        json!({"code": 412, "msg": "deploy app error", "msg_show": "构建失败", "data": {}})
            .to_string(),
    );
    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/api",
            &[("authorization", &bearer)],
            b"",
        )
        .await;
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("构建失败"),
        "{answer}"
    );
}
