//! GitLab, Gitee, Gogs, Gitea, Forgejo and Bitbucket Cloud end to end: each provider's
//! fixture delivery (`tests/fixtures/<provider>/`), re-signed with the app's secret, through
//! the real component.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::*;

/// A delivery as a provider sends it: the fixture's body and headers.
#[derive(Clone)]
pub(crate) struct Delivery {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Delivery {
    /// `tests/fixtures/<name>.json` with `<name>.headers.json`.
    pub(crate) fn fixture(name: &str) -> Delivery {
        let headers: Value =
            serde_json::from_slice(&fixture(&format!("{name}.headers.json"))).unwrap();
        Delivery {
            headers: headers
                .as_object()
                .unwrap()
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.as_str().unwrap().to_string()))
                .collect(),
            body: fixture(&format!("{name}.json")),
        }
    }

    /// The fixture with JSON pointer edits applied to its body.
    pub(crate) fn edited(name: &str, edits: &[(&str, Value)]) -> Delivery {
        let mut delivery = Delivery::fixture(name);
        let mut body: Value = serde_json::from_slice(&delivery.body).unwrap();
        for (pointer, value) in edits {
            *body
                .pointer_mut(pointer)
                .unwrap_or_else(|| panic!("{name}: no {pointer}")) = value.clone();
        }
        delivery.body = serde_json::to_vec(&body).unwrap();
        delivery
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn set(mut self, name: &str, value: &str) -> Delivery {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Every signature or token header the fixture carries, recomputed for `secret` the
    /// way the provider computes it (Gitee: a fresh timestamped signature). GitHub's
    /// legacy SHA-1 header, which Gitea also sends, is dropped: nothing checks it.
    pub(crate) fn signed(mut self, secret: &str) -> Delivery {
        let hex = hex_hmac(secret, &self.body);
        let gitee_ms = now_ms().to_string();
        let mut out = Vec::new();
        for (name, value) in self.headers {
            let value = match name.as_str() {
                "x-hub-signature-256" => format!("sha256={hex}"),
                "x-hub-signature" if value.starts_with("sha256=") => format!("sha256={hex}"),
                "x-hub-signature" => continue,
                "x-gitea-signature" | "x-gogs-signature" | "x-forgejo-signature" => hex.clone(),
                "x-gitlab-token" => secret.to_string(),
                "x-gitee-timestamp" => gitee_ms.clone(),
                "x-gitee-token" => gitee_sign(secret, &gitee_ms),
                _ => value,
            };
            out.push((name, value));
        }
        self.headers = out;
        self
    }

    pub(crate) async fn send(&self, gw: &Gateway, app: &str) -> (u16, Value) {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        gw.call("POST", &format!("/hooks/{app}/git"), &headers, &self.body)
            .await
    }
}

fn hex_hmac(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Gitee's documented signature: `base64(HMAC-SHA256(key, timestamp + "\n" + key))`.
fn gitee_sign(key: &str, timestamp_ms: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp_ms}\n{key}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

/// A gateway with the app `shop` watching `repo`'s `main`; answers its git secret.
async fn gateway_for(repo: &str) -> (Gateway, String) {
    let gw = Gateway::new();
    let app = gw
        .create_app(
            "shop",
            json!({
                "git": {"enabled": true, "repo": repo, "branch": "main"},
                "deploy": {"target": "generic", "path": "/v1/apps/shop/deploy"}
            }),
        )
        .await;
    let secret = git_secret(&app);
    (gw, secret)
}

/// The delivery deploys, and the one call names the provider, the repository and the
/// head commit the fixture's `.expected.json` describes.
async fn assert_deploys(gw: &Gateway, fixture: &str, delivery: &Delivery, provider: &str) {
    let expected: Value = serde_json::from_slice(&crate::support::fixture(&format!(
        "{fixture}.expected.json"
    )))
    .unwrap();
    let before = gw.calls();
    let (status, answer) = delivery.send(gw, "shop").await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (202, Some("deployed")),
        "{fixture}: {answer}"
    );
    let calls = gw.platform.requests();
    assert_eq!(calls.len(), before + 1, "{fixture}: one call");
    let sent = calls.last().unwrap().json();
    assert_eq!(sent["provider"], provider, "{fixture}: {sent}");
    assert_eq!(sent["trigger"], "git");
    assert_eq!(sent["repository"], expected["web_url"], "{fixture}");
    assert_eq!(sent["branch"], "main");
    assert_eq!(sent["commit"], expected["head"], "{fixture}");
    assert_eq!(sent["commit"]["author"], "Ann Developer");
    assert!(sent["commit"]["message"]
        .as_str()
        .unwrap()
        .contains("@deploy"));
    assert_eq!(sent["delivery"], answer["delivery"]);
    if let Some(id) = expected["delivery"].as_str() {
        assert_eq!(
            answer["delivery"], id,
            "{fixture}: the provider's delivery id"
        );
    }
}

/// Each delivery is answered 200 `ignored` with a reason containing its `why`, and no call.
async fn assert_ignored(gw: &Gateway, cases: Vec<(&str, Delivery, &str)>) {
    let before = gw.calls();
    for (what, delivery, why) in cases {
        let (status, answer) = delivery.send(gw, "shop").await;
        assert_eq!(
            (status, answer["result"].as_str()),
            (200, Some("ignored")),
            "{what}: {answer}"
        );
        let reason = answer["reason"].as_str().unwrap();
        assert!(
            reason.contains(why),
            "{what}: {reason:?} should say {why:?}"
        );
    }
    assert_eq!(gw.calls(), before, "ignored deliveries make no call");
}

async fn assert_status(gw: &Gateway, what: &str, delivery: &Delivery, want: (u16, &str)) {
    let (status, answer) = delivery.send(gw, "shop").await;
    assert_eq!(
        (status, answer["result"].as_str().unwrap_or_default()),
        want,
        "{what}: {answer}"
    );
}

async fn assert_unauthorized(gw: &Gateway, what: &str, delivery: &Delivery, secret: &str) {
    let before = gw.calls();
    let (status, answer) = delivery.send(gw, "shop").await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (401, Some("rejected")),
        "{what}: {answer}"
    );
    assert!(!answer.to_string().contains(secret), "{what}: {answer}");
    assert_eq!(gw.calls(), before, "{what}: no call");
}

#[tokio::test(flavor = "multi_thread")]
async fn gitlab_push_hooks() {
    let (gw, secret) = gateway_for("https://gitlab.com/acme/shop").await;
    let push = Delivery::fixture("gitlab/push").signed(&secret);
    assert_deploys(&gw, "gitlab/push", &push, "gitlab").await;
    let (status, answer) = push.send(&gw, "shop").await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate"))
    );

    // the head is the checkout_sha commit (the last one), so only its message counts
    let older_mentions = Delivery::edited(
        "gitlab/push",
        &[
            ("/commits/0/message", json!("Add rounding tests @deploy")),
            ("/commits/1/message", json!("Fix checkout rounding")),
        ],
    );
    assert_ignored(
        &gw,
        vec![
            (
                "no keyword in the head",
                older_mentions.signed(&secret),
                "no @deploy",
            ),
            (
                "other branch",
                Delivery::edited("gitlab/push", &[("/ref", json!("refs/heads/develop"))])
                    .signed(&secret),
                "develop",
            ),
            (
                "tag",
                Delivery::fixture("gitlab/push-tag").signed(&secret),
                "tag push (v1.4.0)",
            ),
            (
                "deletion",
                Delivery::fixture("gitlab/push-delete").signed(&secret),
                "deleted",
            ),
            (
                "merge request",
                Delivery::fixture("gitlab/merge-request").signed(&secret),
                "Merge Request Hook",
            ),
        ],
    )
    .await;

    let wrong = Delivery::fixture("gitlab/push").set("x-gitlab-token", "not-the-secret");
    assert_unauthorized(&gw, "wrong token", &wrong, &secret).await;
    let (_, answer) = wrong.send(&gw, "shop").await;
    assert_eq!(answer["reason"], "invalid token");
    let mut missing = Delivery::fixture("gitlab/push");
    missing.headers.retain(|(n, _)| n != "x-gitlab-token");
    assert_unauthorized(&gw, "no token", &missing, &secret).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gitee_signatures_passwords_and_pushes() {
    let (gw, secret) = gateway_for("https://gitee.com/acme/shop").await;
    let push = Delivery::fixture("gitee/push").signed(&secret);
    assert_deploys(&gw, "gitee/push", &push, "gitee").await;

    // Gitee sends no delivery id: a redelivery of the same body (signed anew) is a duplicate
    let again = Delivery::fixture("gitee/push").signed(&secret);
    let (status, answer) = again.send(&gw, "shop").await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    assert_eq!(
        answer["delivery"].as_str().map(str::len),
        Some(64),
        "the body's SHA-256"
    );
    assert_eq!(gw.calls(), 1);

    // the URL-encoded form of the signature is accepted too
    let ts = now_ms().to_string();
    // (base64 of 32 bytes always ends in `=`, so there is always something to encode)
    let signature = gitee_sign(&secret, &ts);
    let encoded = utf8_percent_encode(&signature, NON_ALPHANUMERIC).to_string();
    assert_ne!(encoded, signature);
    let url_encoded = Delivery::edited("gitee/push", &[("/before", json!("1".repeat(40)))])
        .set("x-gitee-timestamp", &ts)
        .set("x-gitee-token", &encoded);
    let (status, answer) = url_encoded.send(&gw, "shop").await;
    assert_eq!(status, 202, "{answer}");

    assert_ignored(
        &gw,
        vec![
            (
                "no keyword",
                Delivery::edited(
                    "gitee/push",
                    &[("/head_commit/message", json!("Fix rounding"))],
                )
                .signed(&secret),
                "no @deploy",
            ),
            (
                "other branch",
                Delivery::edited("gitee/push", &[("/ref", json!("refs/heads/develop"))])
                    .signed(&secret),
                "develop",
            ),
            (
                "tag",
                Delivery::fixture("gitee/push-tag").signed(&secret),
                "tag push",
            ),
            (
                "deletion",
                Delivery::fixture("gitee/push-delete").signed(&secret),
                "deleted",
            ),
        ],
    )
    .await;
    assert_status(
        &gw,
        "the Test button",
        &Delivery::fixture("gitee/ping").signed(&secret),
        (200, "pong"),
    )
    .await;

    let two_hours_ago = (now_ms() - 2 * 3600 * 1000).to_string();
    let stale = Delivery::edited("gitee/push", &[("/hook_id", json!(1183203))])
        .set("x-gitee-timestamp", &two_hours_ago)
        .set("x-gitee-token", &gitee_sign(&secret, &two_hours_ago));
    assert_unauthorized(&gw, "a signature two hours old", &stale, &secret).await;
    let wrong_key = Delivery::edited("gitee/push", &[("/hook_id", json!(1183204))])
        .signed("not-the-signing-key");
    assert_unauthorized(&gw, "another key", &wrong_key, &secret).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gitee_password_mode_deploys() {
    let (gw, secret) = gateway_for("git@gitee.com:acme/shop.git").await;
    // WebHook 密码: the password itself in X-Gitee-Token (and in the body's `password`)
    let push = Delivery::edited(
        "gitee/push",
        &[("/password", json!(secret)), ("/sign", json!(""))],
    )
    .set("x-gitee-token", &secret);
    assert_deploys(&gw, "gitee/push", &push, "gitee").await;
    let wrong = Delivery::edited("gitee/push", &[("/hook_id", json!(7))])
        .set("x-gitee-timestamp", &now_ms().to_string())
        .set("x-gitee-token", "not-the-password");
    assert_unauthorized(&gw, "wrong password", &wrong, &secret).await;
    let (_, answer) = wrong.send(&gw, "shop").await;
    assert_eq!(answer["reason"], "invalid token");
}

#[tokio::test(flavor = "multi_thread")]
async fn gogs_pushes_and_test_deliveries() {
    let (gw, secret) = gateway_for("https://gogs.acme.example/acme/shop.git").await;
    let push = Delivery::fixture("gogs/push").signed(&secret);
    assert_deploys(&gw, "gogs/push", &push, "gogs").await;

    let zero = "0000000000000000000000000000000000000000";
    assert_ignored(
        &gw,
        vec![
            (
                // commits run newest first: the second one's mention does not count
                "no keyword in the head",
                Delivery::edited(
                    "gogs/push",
                    &[
                        ("/commits/0/message", json!("Fix rounding\n")),
                        ("/commits/1/message", json!("Add tests @deploy\n")),
                    ],
                )
                .signed(&secret),
                "no @deploy",
            ),
            (
                "other branch",
                Delivery::edited("gogs/push", &[("/ref", json!("refs/heads/develop"))])
                    .signed(&secret),
                "develop",
            ),
            (
                "tag",
                Delivery::edited("gogs/push", &[("/ref", json!("refs/tags/v1.4.0"))])
                    .signed(&secret),
                "tag push",
            ),
            (
                "deletion",
                Delivery::edited(
                    "gogs/push",
                    &[("/after", json!(zero)), ("/commits", json!([]))],
                )
                .signed(&secret),
                "deleted",
            ),
            (
                "branch create event",
                Delivery::fixture("gogs/create-branch").signed(&secret),
                "create",
            ),
            (
                "tag create event, git.tags unset",
                Delivery::fixture("gogs/create-tag").signed(&secret),
                "tag push (v1.4.0) does not deploy: git.tags is not set",
            ),
        ],
    )
    .await;
    assert_status(
        &gw,
        "Test Delivery",
        &Delivery::fixture("gogs/test").signed(&secret),
        (200, "pong"),
    )
    .await;

    let wrong = Delivery::fixture("gogs/push").signed("not-the-secret");
    assert_unauthorized(&gw, "wrong secret", &wrong, &secret).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gitea_is_detected_despite_its_gogs_and_github_headers() {
    let (gw, secret) = gateway_for("https://gitea.acme.example/acme/shop").await;
    let push = Delivery::fixture("gitea/push").signed(&secret);
    for extra in [
        "x-gogs-event",
        "x-gogs-signature",
        "x-github-event",
        "x-hub-signature-256",
    ] {
        assert!(push.header(extra).is_some(), "the fixture carries {extra}");
    }
    assert_deploys(&gw, "gitea/push", &push, "gitea").await;
    // Gitea before 1.15 sent `"head_commit": null`: the head is the commit `after` names
    // (the fixture's push moved from another commit: the same push would be a duplicate)
    let old =
        Delivery::edited("gitea/push-1.14", &[("/before", json!("1".repeat(40)))]).signed(&secret);
    assert_deploys(&gw, "gitea/push-1.14", &old, "gitea").await;
    let call = &gw.platform.requests()[0];
    assert_eq!(
        call.header("idempotency-key"),
        push.header("x-gitea-delivery")
    );

    let zero = "0000000000000000000000000000000000000000";
    assert_ignored(
        &gw,
        vec![
            (
                "no keyword",
                Delivery::edited(
                    "gitea/push",
                    &[("/head_commit/message", json!("Fix rounding\n"))],
                )
                .signed(&secret),
                "no @deploy",
            ),
            (
                "other branch",
                Delivery::edited("gitea/push", &[("/ref", json!("refs/heads/develop"))])
                    .signed(&secret),
                "develop",
            ),
            (
                "tag",
                Delivery::fixture("gitea/push-tag").signed(&secret),
                "tag push",
            ),
            (
                "deletion",
                Delivery::edited(
                    "gitea/push",
                    &[("/after", json!(zero)), ("/head_commit", json!(null))],
                )
                .signed(&secret),
                "deleted",
            ),
            (
                "delete event",
                Delivery::fixture("gitea/delete").signed(&secret),
                "delete",
            ),
        ],
    )
    .await;
    assert_status(
        &gw,
        "Test Delivery",
        &Delivery::fixture("gitea/test").signed(&secret),
        (200, "pong"),
    )
    .await;

    let wrong = Delivery::fixture("gitea/push").signed("not-the-secret");
    assert_unauthorized(&gw, "wrong secret", &wrong, &secret).await;
    // a hook without a secret: Gitea sends every signature header empty
    let mut unsigned = Delivery::fixture("gitea/push");
    for (name, value) in unsigned.headers.iter_mut() {
        if name.contains("signature") {
            value.clear();
        }
    }
    assert_unauthorized(&gw, "empty signature", &unsigned, &secret).await;
    let (_, answer) = unsigned.send(&gw, "shop").await;
    assert_eq!(answer["reason"], "missing signature");
}

#[tokio::test(flavor = "multi_thread")]
async fn forgejo_names_itself() {
    let (gw, secret) = gateway_for("https://codeberg.org/acme/shop").await;
    let push = Delivery::fixture("forgejo/push").signed(&secret);
    assert!(push.header("x-gitea-event").is_some());
    assert_deploys(&gw, "forgejo/push", &push, "forgejo").await;

    assert_ignored(
        &gw,
        vec![
            (
                "no keyword",
                Delivery::edited("forgejo/push", &[("/head_commit/message", json!("Fix\n"))])
                    .signed(&secret),
                "no @deploy",
            ),
            (
                "other branch",
                Delivery::edited("forgejo/push", &[("/ref", json!("refs/heads/develop"))])
                    .signed(&secret),
                "develop",
            ),
            (
                "tag",
                Delivery::edited("forgejo/push", &[("/ref", json!("refs/tags/v1.4.0"))])
                    .signed(&secret),
                "tag push",
            ),
            (
                "deletion",
                Delivery::edited(
                    "forgejo/push",
                    &[
                        ("/after", json!("0000000000000000000000000000000000000000")),
                        ("/head_commit", json!(null)),
                    ],
                )
                .signed(&secret),
                "deleted",
            ),
        ],
    )
    .await;

    let wrong = Delivery::fixture("forgejo/push").signed("not-the-secret");
    assert_unauthorized(&gw, "wrong secret", &wrong, &secret).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bitbucket_cloud_pushes() {
    let (gw, secret) = gateway_for("git@bitbucket.org:acme/shop.git").await;
    let push = Delivery::fixture("bitbucket/push").signed(&secret);
    assert_deploys(&gw, "bitbucket/push", &push, "bitbucket").await;

    let head = "/push/changes/0/new";
    assert_ignored(
        &gw,
        vec![
            (
                "no keyword",
                Delivery::edited(
                    "bitbucket/push",
                    &[(&format!("{head}/target/message"), json!("Fix rounding\n"))],
                )
                .signed(&secret),
                "no @deploy",
            ),
            (
                "other branch",
                Delivery::edited(
                    "bitbucket/push",
                    &[(&format!("{head}/name"), json!("develop"))],
                )
                .signed(&secret),
                "develop",
            ),
            (
                "tag",
                Delivery::fixture("bitbucket/push-tag").signed(&secret),
                "tag push",
            ),
            (
                "deletion",
                Delivery::fixture("bitbucket/push-delete").signed(&secret),
                "deleted",
            ),
            (
                "pull request",
                Delivery::fixture("bitbucket/pullrequest-created").signed(&secret),
                "pullrequest:created",
            ),
        ],
    )
    .await;
    assert_status(
        &gw,
        "diagnostics:ping",
        &Delivery::fixture("bitbucket/ping").signed(&secret),
        (200, "pong"),
    )
    .await;

    let wrong = Delivery::fixture("bitbucket/push").signed("not-the-secret");
    assert_unauthorized(&gw, "wrong secret", &wrong, &secret).await;
    // a webhook saved without a secret sends no signature at all
    let mut unsigned = Delivery::fixture("bitbucket/push");
    unsigned.headers.retain(|(n, _)| n != "x-hub-signature");
    assert_unauthorized(&gw, "no signature", &unsigned, &secret).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_provider_is_400_naming_the_supported_ones() {
    let (gw, _) = gateway_for("").await;
    let (status, answer) = gw
        .call(
            "POST",
            "/hooks/shop/git",
            &[
                ("content-type", "application/json"),
                ("user-agent", "SomeForge/1.0"),
                ("x-someforge-event", "push"),
            ],
            &fixture("gitlab/push.json"),
        )
        .await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (400, Some("rejected")),
        "{answer}"
    );
    let reason = answer["reason"].as_str().unwrap();
    for name in [
        "GitHub",
        "GitLab",
        "Gitee",
        "Gogs",
        "Gitea",
        "Forgejo",
        "Bitbucket",
    ] {
        assert!(reason.contains(name), "{reason:?} should name {name}");
    }
    assert_eq!(gw.calls(), 0);
}
