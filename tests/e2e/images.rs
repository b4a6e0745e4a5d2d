//! Image registries end to end: Docker Hub, Harbor, Quay, GHCR and Aliyun ACR pushes
//! through the real component, to `POST /hooks/{app}/image/{token}`.

use serde_json::{json, Value};

use crate::support::*;

/// The image token of every app here (`image.token` may be set in a `PUT`).
const TOKEN: &str = "e2e-image-token-5b7d1c9a0f3e";

/// Creates `shop` with the image trigger on for `image` (merged over the token).
async fn image_app(gw: &Gateway, image: Value) -> Value {
    let mut section = json!({"enabled": true, "token": TOKEN});
    for (k, v) in image.as_object().unwrap() {
        section[k] = v.clone();
    }
    gw.create_app(
        "shop",
        json!({"image": section, "deploy": {"target": "generic", "path": "/v1/apps/shop/deploy"}}),
    )
    .await
}

/// The headers a registry sends (`<registry>/<fixture>.headers.json`).
fn headers_of(registry: &str) -> Vec<(String, String)> {
    let name = if registry == "ghcr" {
        "published"
    } else {
        "push"
    };
    let text = fixture(&format!("{registry}/{name}.headers.json"));
    let v: Value = serde_json::from_slice(&text).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

/// POSTs `body` to the image hook with `token`, the registry's headers, `extra` headers
/// (which replace same-named ones; an empty value removes one) and, for GitHub, a
/// signature made with `TOKEN`.
async fn push(
    gw: &Gateway,
    registry: &str,
    token: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value) {
    let mut headers = headers_of(registry);
    if registry == "ghcr" {
        headers.push(("x-hub-signature-256".into(), sign(TOKEN, body)));
    }
    for (name, value) in extra {
        headers.retain(|(n, _)| n != name);
        if !value.is_empty() {
            headers.push((name.to_string(), value.to_string()));
        }
    }
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    gw.call(
        "POST",
        &format!("/hooks/shop/image/{token}"),
        &headers,
        body,
    )
    .await
}

/// One registry's fixture, the app's `image.repository`, and what the deploy call says.
struct Case {
    registry: &'static str,
    fixture: &'static str,
    configured: &'static str,
    tag: &'static str,
    provider: &'static str,
    repository: &'static str,
    digest: Option<&'static str>,
}

const CASES: [Case; 6] = [
    Case {
        registry: "dockerhub",
        fixture: "dockerhub/push.json",
        configured: "acme/shop",
        tag: "latest",
        provider: "dockerhub",
        repository: "docker.io/acme/shop",
        digest: None,
    },
    Case {
        registry: "harbor",
        fixture: "harbor/push.json",
        configured: "harbor.acme.example/shop/web",
        tag: "v2.3.1",
        provider: "harbor",
        repository: "harbor.acme.example/shop/web",
        digest: Some("sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8"),
    },
    Case {
        registry: "harbor",
        fixture: "harbor/push-cloudevents.json",
        configured: "harbor.acme.example/shop/web:v2.3.1",
        tag: "v2.3.1",
        provider: "harbor",
        repository: "harbor.acme.example/shop/web",
        digest: Some("sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8"),
    },
    Case {
        registry: "quay",
        fixture: "quay/push.json",
        configured: "quay.io/acme/shop",
        tag: "latest",
        provider: "quay",
        repository: "quay.io/acme/shop",
        digest: None,
    },
    Case {
        registry: "ghcr",
        fixture: "ghcr/published.json",
        configured: "ghcr.io/Acme/shop",
        tag: "v1.2.0",
        provider: "ghcr",
        repository: "ghcr.io/acme/shop",
        digest: Some("sha256:3da1996a8115d7616457760d9920b815241d0a03b34cf5f04e9a0e9d8de37498"),
    },
    Case {
        registry: "acr",
        fixture: "acr/push.json",
        configured: "registry.cn-hangzhou.aliyuncs.com/acme/shop",
        tag: "v1.0.2",
        provider: "acr",
        repository: "registry.cn-hangzhou.aliyuncs.com/acme/shop",
        digest: Some("sha256:457f4aa83fc9a6663ab9d1b0a6e2dce25a12a943ed5bf2c1747c58d48bbb4917"),
    },
];

#[tokio::test(flavor = "multi_thread")]
async fn every_registry_deploys_the_pushed_image_with_exactly_the_expected_call() {
    for case in &CASES {
        let gw = Gateway::new();
        image_app(&gw, json!({"repository": case.configured, "tag": case.tag})).await;
        let body = fixture(case.fixture);
        let (status, answer) = push(&gw, case.registry, TOKEN, &[], &body).await;
        assert_eq!(status, 202, "{}: {answer}", case.fixture);
        let delivery = match case.registry {
            "ghcr" => "9f6a1c2e-c9f1-11f0-8a3b-4c9367dc0958".to_string(),
            _ => sha256_hex(&body),
        };
        assert_eq!(answer["delivery"], delivery.as_str(), "{}", case.fixture);

        let calls = gw.platform.requests();
        assert_eq!(calls.len(), 1, "{}", case.fixture);
        let call = &calls[0];
        assert_eq!(
            (call.method.as_str(), call.uri.as_str()),
            ("POST", "https://console.example.com/v1/apps/shop/deploy")
        );
        assert_eq!(call.header("idempotency-key"), Some(delivery.as_str()));
        assert_eq!(
            call.header("authorization"),
            Some(format!("Bearer {PLATFORM_TOKEN}").as_str())
        );
        let sent = call.json();
        let status_url = sent["status_url"].as_str().unwrap_or_default();
        assert!(status_url.contains("/hooks/shop/status/"), "{status_url}");
        assert_eq!(
            sent,
            json!({
                "app": "shop",
                "trigger": "image",
                "provider": case.provider,
                "delivery": delivery,
                "repository": null,
                "branch": null,
                "tag": null,
                "commit": null,
                "image": {"repository": case.repository, "tag": case.tag, "digest": case.digest},
                "received_at": sent["received_at"],
                "status_url": sent["status_url"],
            }),
            "{}",
            case.fixture
        );
        // the registry's token is never forwarded
        assert!(!call.text().contains(TOKEN), "{}", case.fixture);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_answers_like_an_unknown_app() {
    let gw = Gateway::new();
    image_app(&gw, json!({"repository": "acme/shop"})).await;
    let body = fixture("dockerhub/push.json");
    let (unknown_status, unknown) = gw
        .call(
            "POST",
            &format!("/hooks/nope/image/{TOKEN}"),
            &[("content-type", "application/json")],
            &body,
        )
        .await;
    assert_eq!(unknown_status, 404);
    for case in &CASES {
        let body = fixture(case.fixture);
        let (status, answer) =
            push(&gw, case.registry, "e2e-wrong-token-000000000", &[], &body).await;
        assert_eq!(status, 404, "{}: {answer}", case.fixture);
        assert_eq!(answer, unknown, "{}", case.fixture);
    }
    assert_eq!(gw.calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn official_images_match_however_they_are_written() {
    let official = fixture_with("dockerhub/push.json", |v| {
        v["repository"]["repo_name"] = json!("nginx");
        v["repository"]["namespace"] = json!("library");
        v["repository"]["name"] = json!("nginx");
    });
    for configured in [
        "nginx",
        "library/nginx",
        "docker.io/library/nginx:latest",
        "index.docker.io/nginx",
    ] {
        let gw = Gateway::new();
        image_app(&gw, json!({"repository": configured})).await;
        let (status, answer) = push(&gw, "dockerhub", TOKEN, &[], &official).await;
        assert_eq!(status, 202, "{configured}: {answer}");
        assert_eq!(
            gw.platform.requests()[0].json()["image"]["repository"],
            "docker.io/library/nginx"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_rules_decide_which_pushes_deploy() {
    // tag: the pushed tag must equal it
    let gw = Gateway::new();
    image_app(&gw, json!({"repository": "acme/shop", "tag": "stable"})).await;
    let (status, answer) = push(
        &gw,
        "dockerhub",
        TOKEN,
        &[],
        &fixture("dockerhub/push.json"),
    )
    .await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("ignored")),
        "{answer}"
    );
    assert!(
        answer["reason"].as_str().unwrap().contains("latest"),
        "{answer}"
    );
    let stable = fixture_with("dockerhub/push.json", |v| {
        v["push_data"]["tag"] = json!("stable")
    });
    let (status, answer) = push(&gw, "dockerhub", TOKEN, &[], &stable).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(gw.calls(), 1);

    // tag_pattern: matched in full, `tag` unused; of several pushed tags the first match
    let gw = Gateway::new();
    image_app(
        &gw,
        json!({"repository": "quay.io/acme/shop", "tag": "latest", "tag_pattern": r"v\d+\.\d+\.\d+"}),
    )
    .await;
    let several = fixture_with("quay/push.json", |v| {
        v["updated_tags"] = json!(["latest", "v3.0.0-rc1", "v3.0.0", "v3.0.1"]);
    });
    let (status, answer) = push(&gw, "quay", TOKEN, &[], &several).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(gw.platform.requests()[0].json()["image"]["tag"], "v3.0.0");
    let no_match = fixture_with("quay/push.json", |v| {
        v["updated_tags"] = json!(["latest", "v3.0.0-rc1", "xv3.0.0"]);
    });
    let (status, answer) = push(&gw, "quay", TOKEN, &[], &no_match).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("ignored")),
        "{answer}"
    );
    assert!(
        answer["reason"].as_str().unwrap().contains("tag_pattern"),
        "{answer}"
    );
    assert_eq!(gw.calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn untagged_pushes_and_other_repositories_are_ignored() {
    let gw = Gateway::new();
    image_app(
        &gw,
        json!({"repository": "harbor.acme.example/shop/web", "tag": "v2.3.1"}),
    )
    .await;
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "digest-only",
            fixture("harbor/push-digest.json"),
            "untagged",
        ),
        (
            "other repository",
            fixture_with("harbor/push.json", |v| {
                v["event_data"]["repository"]["repo_full_name"] = json!("shop/admin");
            }),
            "harbor.acme.example/shop/admin",
        ),
        (
            "other host",
            fixture_with("harbor/push.json", |v| {
                v["event_data"]["resources"][0]["resource_url"] =
                    json!("harbor.other.example/shop/web:v2.3.1");
            }),
            "harbor.other.example/shop/web",
        ),
    ];
    for (what, body, why) in &cases {
        let (status, answer) = push(&gw, "harbor", TOKEN, &[], body).await;
        assert_eq!(
            (status, answer["result"].as_str()),
            (200, Some("ignored")),
            "{what}: {answer}"
        );
        assert!(
            answer["reason"].as_str().unwrap().contains(why),
            "{what}: {answer}"
        );
    }

    let gw2 = Gateway::new();
    image_app(
        &gw2,
        json!({"repository": "ghcr.io/acme/shop", "tag": "v1.2.0"}),
    )
    .await;
    let untagged = fixture_with("ghcr/published.json", |v| {
        v["package"]["package_version"]["container_metadata"]["tag"]["name"] = json!("");
    });
    let (status, answer) = push(&gw2, "ghcr", TOKEN, &[], &untagged).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("ignored")),
        "{answer}"
    );
    assert_eq!(gw.calls() + gw2.calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn ghcr_signature_ping_and_other_actions() {
    let gw = Gateway::new();
    image_app(
        &gw,
        json!({"repository": "ghcr.io/acme/shop", "tag": "v1.2.0"}),
    )
    .await;
    let body = fixture("ghcr/published.json");

    let wrong = sign("not-the-token", &body);
    let (status, answer) = push(
        &gw,
        "ghcr",
        TOKEN,
        &[("x-hub-signature-256", &wrong)],
        &body,
    )
    .await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (401, Some("rejected")),
        "{answer}"
    );
    assert!(!answer.to_string().contains(TOKEN));
    let (status, _) = push(
        &gw,
        "ghcr",
        TOKEN,
        &[("x-hub-signature-256", "sha256=zz")],
        &body,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(gw.calls(), 0);

    let (status, answer) = push(
        &gw,
        "ghcr",
        TOKEN,
        &[("x-github-event", "ping"), ("x-github-delivery", "ping-1")],
        &fixture("ghcr/ping.json"),
    )
    .await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("pong")),
        "{answer}"
    );

    let updated = fixture_with("ghcr/published.json", |v| v["action"] = json!("updated"));
    let (status, answer) = push(
        &gw,
        "ghcr",
        TOKEN,
        &[("x-github-delivery", "upd-1")],
        &updated,
    )
    .await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("ignored")),
        "{answer}"
    );
    assert_eq!(gw.calls(), 0);

    // without a signature header the path token alone authenticates
    let (status, answer) = push(&gw, "ghcr", TOKEN, &[("x-hub-signature-256", "")], &body).await;
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = push(&gw, "ghcr", TOKEN, &[], &body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate")),
        "the same X-GitHub-Delivery: {answer}"
    );
    assert_eq!(gw.calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn harbor_authorization_header_must_carry_the_token() {
    let gw = Gateway::new();
    image_app(
        &gw,
        json!({"repository": "harbor.acme.example/shop/web", "tag": "v2.3.1"}),
    )
    .await;
    let body = fixture("harbor/push.json");
    for wrong in ["Bearer nope", "Basic YWRtaW46SGFyYm9yMTIzNDU=", "nope"] {
        let (status, answer) = push(&gw, "harbor", TOKEN, &[("authorization", wrong)], &body).await;
        assert_eq!(status, 401, "{wrong}: {answer}");
    }
    assert_eq!(gw.calls(), 0);
    // the fixture's header is `Bearer <token>`; the bare token works too
    let (status, answer) = push(&gw, "harbor", TOKEN, &[("authorization", TOKEN)], &body).await;
    assert_eq!(status, 202, "{answer}");
    let other = fixture_with("harbor/push.json", |v| v["occur_at"] = json!(1764065697));
    let (status, answer) = push(&gw, "harbor", TOKEN, &[], &other).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(gw.calls(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_unknown_and_repeated_pushes() {
    let gw = Gateway::new();
    image_app(&gw, json!({"repository": "acme/shop"})).await;
    gw.admin("POST", "/api/apps/shop/triggers/image/disable", None)
        .await;
    let body = fixture("dockerhub/push.json");
    let (status, answer) = push(&gw, "dockerhub", TOKEN, &[], &body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (403, Some("rejected")),
        "{answer}"
    );
    gw.admin("POST", "/api/apps/shop/triggers/image/enable", None)
        .await;

    let (status, answer) = push(&gw, "dockerhub", TOKEN, &[], br#"{"hello": "world"}"#).await;
    assert_eq!(status, 400, "{answer}");
    let reason = answer["reason"].as_str().unwrap();
    for name in ["Docker Hub", "Harbor", "Quay", "GHCR", "Aliyun ACR"] {
        assert!(reason.contains(name), "{reason}");
    }
    let (status, _) = push(
        &gw,
        "dockerhub",
        TOKEN,
        &[("content-type", "text/plain")],
        &body,
    )
    .await;
    assert_eq!(status, 415);

    // no delivery id: the body hash de-duplicates a resend
    let (status, first) = push(&gw, "dockerhub", TOKEN, &[], &body).await;
    assert_eq!(status, 202, "{first}");
    let (status, second) = push(&gw, "dockerhub", TOKEN, &[], &body).await;
    assert_eq!(
        (status, second["result"].as_str()),
        (200, Some("duplicate")),
        "{second}"
    );
    assert_eq!(gw.calls(), 1);
    // the legacy callback_url is never called
    assert!(gw
        .platform
        .requests()
        .iter()
        .all(|c| !c.uri.contains("registry.hub.docker.com")));

    // the delivery log names the registry
    let (_, log) = gw.admin("GET", "/api/apps/shop/deliveries", None).await;
    let newest = &log["deliveries"][0];
    assert_eq!(
        (newest["trigger"].as_str(), newest["provider"].as_str()),
        (Some("image"), Some("dockerhub")),
        "{log}"
    );
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn image_bodies_over_64_kib_are_413_before_anything_else() {
    let gw = Gateway::new();
    image_app(
        &gw,
        json!({"enabled": true, "repository": "docker.io/acme/shop"}),
    )
    .await;
    let path = format!("/hooks/shop/image/{TOKEN}");
    let json = [("content-type", "application/json")];
    let big = vec![b' '; 64 * 1024 + 1];
    let (status, answer) = gw.call("POST", &path, &json, &big).await;
    assert_eq!(status, 413, "{answer}");
    let exact = vec![b' '; 64 * 1024];
    let (status, answer) = gw.call("POST", &path, &json, &exact).await;
    assert_eq!(
        status, 400,
        "64 KiB is within the limit (and is not a payload): {answer}"
    );
    assert_eq!(gw.calls(), 0);
}
