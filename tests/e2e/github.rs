//! GitHub end to end: signed pushes through the real component.

use serde_json::{json, Value};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn signed_push_deploys_with_exactly_the_expected_call() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let body = fixture("github/push.json");
    let (status, answer) = gw
        .github(
            "shop",
            &secret,
            "push",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            &body,
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer,
        json!({"result": "deployed", "reason": answer["reason"], "app": "shop",
               "delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"})
    );

    let calls = gw.platform.requests();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.uri, "https://console.example.com/v1/apps/shop/deploy");
    assert_eq!(
        call.header("authorization"),
        Some(format!("Bearer {PLATFORM_TOKEN}").as_str())
    );
    assert_eq!(
        call.header("idempotency-key"),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    );
    assert_eq!(call.header("content-type"), Some("application/json"));
    assert_eq!(
        call.header("content-length"),
        Some(call.body.len().to_string().as_str())
    );
    let sent = call.json();
    let received_at = sent["received_at"]
        .as_str()
        .expect("received_at")
        .to_string();
    assert!(
        received_at.len() == 24 && received_at.ends_with('Z') && received_at.as_bytes()[10] == b'T',
        "RFC 3339 UTC: {received_at}"
    );
    let id = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let status_url = sent["status_url"].as_str().expect("status_url").to_string();
    assert!(
        status_url.ends_with(&format!("/hooks/shop/status/1/{}", status_token(1, id))),
        "{status_url}"
    );
    assert_eq!(
        sent,
        fixture_push_deploy_body_with(id, &received_at, json!(status_url))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redelivery_is_a_duplicate_without_a_second_call() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let body = fixture("github/push.json");
    let (status, _) = gw.github("shop", &secret, "push", "d-1", &body).await;
    assert_eq!(status, 202);
    let (status, answer) = gw.github("shop", &secret, "push", "d-1", &body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    assert_eq!(gw.calls(), 1);
    // the same push under a new delivery id (GitHub does not sign the id) is the same
    // push: a duplicate too
    let (status, answer) = gw.github("shop", &secret, "push", "d-2", &body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    assert_eq!(gw.calls(), 1);
    // another push (the ref moved from another commit) deploys
    let (status, _) = gw
        .github("shop", &secret, "push", "d-3", &push_for("d-3"))
        .await;
    assert_eq!(status, 202);
    assert_eq!(gw.calls(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn form_encoded_push_deploys() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let json = fixture("github/push.json");
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", std::str::from_utf8(&json).unwrap())
        .finish();
    let signature = sign(&secret, body.as_bytes());
    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/git",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-github-event", "push"),
                ("x-github-delivery", "form-1"),
                ("x-hub-signature-256", &signature),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        gw.platform.requests()[0].json()["commit"]["author"],
        "Ann Developer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pushes_the_rules_filter_out_are_ignored_without_a_call() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let no_keyword = fixture_with("github/push.json", |v| {
        v["head_commit"]["message"] = json!("Fix checkout rounding, ping ops@deploy.io");
    });
    let other_branch = fixture_with("github/push.json", |v| {
        v["ref"] = json!("refs/heads/develop")
    });
    let other_repo = fixture_with("github/push.json", |v| {
        v["repository"]["html_url"] = json!("https://github.com/acme/blog");
        v["repository"]["clone_url"] = json!("https://github.com/acme/blog.git");
        v["repository"]["ssh_url"] = json!("git@github.com:acme/blog.git");
        v["repository"]["git_url"] = json!("git://github.com/acme/blog.git");
    });
    let cases: [(&str, &str, Vec<u8>, &str); 5] = [
        ("no keyword", "push", no_keyword, "no @deploy"),
        ("other branch", "push", other_branch, "develop"),
        ("tag", "push", fixture("github/push-tag.json"), "tag"),
        (
            "deletion",
            "push",
            fixture("github/push-delete.json"),
            "deleted",
        ),
        ("other repository", "push", other_repo, "acme/blog"),
    ];
    for (i, (what, event, body, why)) in cases.iter().enumerate() {
        let (status, answer) = gw
            .github("shop", &secret, event, &format!("ign-{i}"), body)
            .await;
        assert_eq!(status, 200, "{what}: {answer}");
        assert_eq!(answer["result"], "ignored", "{what}: {answer}");
        assert!(
            answer["reason"].as_str().unwrap().contains(why),
            "{what}: {answer}"
        );
    }
    let (status, answer) = gw
        .github(
            "shop",
            &secret,
            "issues",
            "ign-x",
            b"{\"action\":\"opened\"}",
        )
        .await;
    assert_eq!((status, answer["result"].as_str()), (200, Some("ignored")));
    assert_eq!(gw.calls(), 0, "ignored deliveries make no call");
}

/// GitHub always sends `after` and `head_commit` (`null` on a deletion): a push without
/// one is malformed, neither a deploy nor a branch deletion.
#[tokio::test(flavor = "multi_thread")]
async fn a_push_without_after_or_head_commit_is_a_400() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    for member in ["after", "head_commit"] {
        let body = fixture_with("github/push.json", |v| {
            v.as_object_mut().unwrap().remove(member);
        });
        let (status, answer) = gw
            .github("shop", &secret, "push", &format!("no-{member}"), &body)
            .await;
        assert_eq!(
            (status, answer["reason"].as_str()),
            (
                400,
                Some(format!("malformed payload: GitHub push without {member}").as_str())
            ),
            "{answer}"
        );
    }
    assert_eq!(gw.calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_missing_or_foreign_signatures_are_401() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let body = fixture("github/push.json");

    let (status, answer) = gw
        .github("shop", "not-the-secret", "push", "s-1", &body)
        .await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (401, Some("rejected")),
        "{answer}"
    );
    assert!(!answer.to_string().contains(&secret));

    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let signature = sign(&secret, &body);
    let (status, _) = gw
        .call(
            "POST",
            "/hooks/shop/git",
            &[
                ("content-type", "application/json"),
                ("x-github-event", "push"),
                ("x-hub-signature-256", &signature),
            ],
            &tampered,
        )
        .await;
    assert_eq!(status, 401, "a body that is not the signed one");

    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/git",
            &[
                ("content-type", "application/json"),
                ("x-github-event", "push"),
            ],
            &body,
        )
        .await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["reason"], "missing signature");
    assert_eq!(gw.calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn ping_is_pong() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let (status, answer) = gw
        .github("shop", &secret, "ping", "p-1", &fixture("github/ping.json"))
        .await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("pong")),
        "{answer}"
    );
    assert_eq!(gw.calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_app_and_bad_routes_are_404() {
    let gw = Gateway::new();
    let body = fixture("github/push.json");
    for path in [
        "/hooks/nope/git",
        "/hooks/Shop/git",
        "/hooks/shop/svn",
        "/hooks/-x/git",
        "/elsewhere",
    ] {
        let (status, answer) = gw
            .call(
                "POST",
                path,
                &[
                    ("content-type", "application/json"),
                    ("x-github-event", "push"),
                ],
                &body,
            )
            .await;
        assert_eq!(status, 404, "{path}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_failure_is_502_and_the_retry_deploys_once() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let body = fixture("github/push.json");
    gw.platform.set_status(500);
    let (status, answer) = gw.github("shop", &secret, "push", "retry-1", &body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (502, Some("failed")),
        "{answer}"
    );
    gw.platform.set_status(200);
    let (status, answer) = gw.github("shop", &secret, "push", "retry-1", &body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (202, Some("deployed")),
        "{answer}"
    );
    let (status, answer) = gw.github("shop", &secret, "push", "retry-1", &body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    let calls = gw.platform.requests();
    assert_eq!(calls.len(), 2, "one failed attempt and one deploy");
    assert!(calls
        .iter()
        .all(|c| c.header("idempotency-key") == Some("retry-1")));
}

/// A platform may answer from the request's head and close the connection without
/// reading the body. The guest's write of the rest of the body then fails, but the
/// answer is what says whether the deploy happened: a 2xx is `deployed` (a 502 would make
/// the provider retry an accepted deploy), a refusal is still a 502. The long commit
/// message makes the deploy body longer than the host buffers (two 4 KiB writes), so
/// here the write fails every time.
#[tokio::test(flavor = "multi_thread")]
async fn a_platform_answering_before_reading_the_body_is_heard() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let body = fixture_with("github/push.json", |v| {
        let message = format!("Ship it @deploy\n\n{}", "Long release notes. ".repeat(1000));
        v["head_commit"]["message"] = json!(message);
    });
    gw.platform.set_answer_unread(true);
    let (status, answer) = gw.github("shop", &secret, "push", "early-1", &body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (202, Some("deployed")),
        "{answer}"
    );
    gw.platform.set_status(500);
    let body = fixture_with("github/push.json", |v| {
        let message = format!("Ship it @deploy\n\n{}", "Long release notes. ".repeat(1000));
        v["head_commit"]["message"] = json!(message);
        v["before"] = json!("1".repeat(40)); // another push
    });
    let (status, answer) = gw.github("shop", &secret, "push", "early-2", &body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (502, Some("failed")),
        "{answer}"
    );
    assert_eq!(gw.calls(), 2);
}

/// The component gives the platform 8 s to answer. A platform that takes 30 s is given up
/// on at that bound: the answer is a 502 `failed` ("deploy failed: …"), and it comes after
/// 8 s, well before the platform would have answered. (The upper bound leaves 4 s for a
/// loaded machine; the platform would take 30.)
#[tokio::test(flavor = "multi_thread")]
async fn a_platform_that_does_not_answer_in_8_seconds_is_502_after_8_seconds() {
    use std::time::Duration;

    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    gw.platform.set_delay(Some(Duration::from_secs(30)));
    let body = fixture("github/push.json");
    let started = std::time::Instant::now();
    let (status, answer) = gw.github("shop", &secret, "push", "slow-1", &body).await;
    let took = started.elapsed();
    assert_eq!(
        (status, answer["result"].as_str()),
        (502, Some("failed")),
        "{answer}"
    );
    // The wording depends on which 8 s timer the guest sees first (its own deadline, or
    // the first-byte timeout it gave the host), so only its start is checked here; the
    // times below are what show the bound.
    let reason = answer["reason"].as_str().unwrap();
    assert!(reason.starts_with("deploy failed: "), "{reason}");
    assert!(took >= Duration::from_secs(8), "gave up early: {took:?}");
    assert!(
        took < Duration::from_secs(12),
        "waited past the bound: {took:?}"
    );
    gw.platform.set_delay(None);
    let (status, _) = gw.github("shop", &secret, "push", "slow-1", &body).await;
    assert_eq!(status, 202, "the provider's retry deploys");
}

#[tokio::test(flavor = "multi_thread")]
async fn disabled_trigger_is_403_and_not_deployable_status_is_409() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let body = fixture("github/push.json");

    gw.admin("POST", "/api/apps/shop/triggers/git/disable", None)
        .await;
    let (status, answer) = gw.github("shop", &secret, "push", "g-1", &body).await;
    assert_eq!(status, 403, "{answer}");
    gw.admin("POST", "/api/apps/shop/triggers/git/enable", None)
        .await;

    let (status, _) = gw
        .admin(
            "PUT",
            "/api/apps/shop/status",
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = gw.github("shop", &secret, "push", "g-1", &body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (409, Some("rejected")),
        "{answer}"
    );
    assert!(answer["reason"].as_str().unwrap().contains("closed"));
    assert_eq!(gw.calls(), 0);

    gw.admin(
        "PUT",
        "/api/apps/shop/status",
        Some(json!({"status": "abnormal"})),
    )
    .await;
    let (status, _) = gw.github("shop", &secret, "push", "g-1", &body).await;
    assert_eq!(
        status, 202,
        "the refused delivery was not recorded, so it deploys now"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn method_size_and_content_type_are_checked_first() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let (status, answer) = gw.call("GET", "/hooks/shop/git", &[], b"").await;
    assert_eq!(status, 405, "{answer}");

    let big = vec![b' '; 5 * 1024 * 1024 + 1];
    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/git",
            &[
                ("content-type", "application/json"),
                ("x-github-event", "push"),
            ],
            &big,
        )
        .await;
    assert_eq!(status, 413, "{answer}");

    let body = fixture("github/push.json");
    let signature = sign(&secret, &body);
    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/git",
            &[
                ("content-type", "text/plain"),
                ("x-github-event", "push"),
                ("x-hub-signature-256", &signature),
            ],
            &body,
        )
        .await;
    assert_eq!(status, 415, "{answer}");
    assert_eq!(gw.calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_sends_of_one_delivery_deploy_once() {
    let gw = std::sync::Arc::new(Gateway::new());
    let secret = git_secret(&gw.shop().await);
    gw.platform
        .set_delay(Some(std::time::Duration::from_millis(300)));
    let body = std::sync::Arc::new(fixture("github/push.json"));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (gw, body, secret) = (gw.clone(), body.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            gw.github("shop", &secret, "push", "same-1", &body).await
        }));
    }
    let mut results: Vec<(u16, Value)> = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(gw.calls(), 1, "exactly one deploy call");
    let deployed = results.iter().filter(|(s, _)| *s == 202).count();
    assert_eq!(deployed, 1);
    for (status, answer) in &results {
        assert!(
            matches!(
                (*status, answer["result"].as_str().unwrap()),
                (202, "deployed") | (409, "in_progress") | (200, "duplicate")
            ),
            "{status} {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_delivery_id_the_body_hash_deduplicates() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let body = fixture("github/push.json");
    let signature = sign(&secret, &body);
    let headers = [
        ("content-type", "application/json"),
        ("x-github-event", "push"),
        ("x-hub-signature-256", signature.as_str()),
    ];
    let (status, first) = gw.call("POST", "/hooks/shop/git", &headers, &body).await;
    assert_eq!(status, 202, "{first}");
    let (status, second) = gw.call("POST", "/hooks/shop/git", &headers, &body).await;
    assert_eq!(
        (status, second["result"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(first["delivery"], second["delivery"]);
    assert_eq!(
        first["delivery"].as_str().unwrap().len(),
        64,
        "hex SHA-256 of the body"
    );
    assert_eq!(gw.calls(), 1);
}

/// The component runs on a 128 KiB shadow stack (build.rs). The members a provider reads
/// are built with the parser's nesting limit: the deepest it accepts (127 levels below
/// the top) still deploys, anything deeper is a 400, never a trap. Members nobody reads
/// are skipped without recursion, so depth there costs no stack and is not refused.
#[tokio::test(flavor = "multi_thread")]
async fn deeply_nested_payloads_are_parsed_or_refused_not_crashed() {
    let gw = Gateway::new();
    let secret = git_secret(&gw.shop().await);
    let push: Value = serde_json::from_slice(&fixture("github/push.json")).unwrap();
    // `depth` levels of arrays in place of the member at `pointer`.
    let nested = |pointer: &str, depth: usize| {
        let mut with = push.clone();
        *with.pointer_mut(pointer).unwrap() = Value::from("@nested@");
        // a push of its own for each shape (the same push would be a duplicate)
        with["before"] = json!(format!("{depth:020x}{:020x}", pointer.len()));
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        serde_json::to_string(&with)
            .unwrap()
            .replacen("\"@nested@\"", &arrays, 1)
            .into_bytes()
    };
    // `repository.name` is kept by the parser (other providers read members called
    // `name`) but GitHub's decision does not use it; `repository.owner` is skipped.
    let read = |depth| nested("/repository/name", depth);
    let unread = |depth| nested("/repository/owner", depth);

    let (status, answer) = gw
        .github("shop", &secret, "push", "deep-125", &read(125))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["result"], "deployed");

    let (status, answer) = gw
        .github("shop", &secret, "push", "deep-5000", &read(5000))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["result"], "rejected");
    assert_eq!(gw.platform.requests().len(), 1);

    let (status, answer) = gw
        .github("shop", &secret, "push", "deep-unread", &unread(5000))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(gw.platform.requests().len(), 2);
}
