//! A captured request sent again under another name: a Gitee signature with another
//! body, a push with a fresh delivery id.

use serde_json::{json, Value};

use super::super::fake::{FakeHost, START_MS};
use super::{create, fixture, github, push_with, shop, GITHUB_SECRET};
use crate::state::delivery::BODY_HASH_TTL_MS;
use crate::support::crypto::{base64, hex, hmac_sha256, sha256_hex};

const GITEE_SECRET: &str = "gitee-signing-key-0123456789";

/// `base64(HMAC-SHA256(key, timestamp + "\n" + key))`, Gitee's signature.
fn gitee_token(timestamp: &str) -> String {
    let signed = format!("{timestamp}\n{GITEE_SECRET}");
    base64(&hmac_sha256(GITEE_SECRET.as_bytes(), signed.as_bytes()))
}

fn gitee(host: &FakeHost, timestamp: &str, token: &str, body: &[u8]) -> (u16, String) {
    host.request(
        "POST",
        "/hooks/shop/git",
        &[
            ("content-type", "application/json"),
            ("user-agent", "git-oschina-hook"),
            ("x-gitee-event", "Push Hook"),
            ("x-gitee-timestamp", timestamp),
            ("x-gitee-token", token),
        ],
        body,
    )
    .result()
}

/// The Gitee fixture push with another head commit and message: another push, so only
/// the signature can make it a duplicate.
fn gitee_push(message: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("gitee/push.json")).unwrap();
    let id = &sha256_hex(message.as_bytes())[..40];
    v["after"] = json!(id);
    v["head_commit"]["id"] = json!(id);
    v["head_commit"]["message"] = json!(message);
    serde_json::to_vec(&v).unwrap()
}

/// One Gitee signature deploys at most once: the same timestamp and token with any
/// other body (in either of the signature's encodings) is a duplicate, for as long as the
/// signature verifies; a new signature deploys.
#[test]
fn a_gitee_signature_deploys_once() {
    let host = FakeHost::default();
    create(
        &host,
        json!({"git": {"enabled": true, "branch": "main", "secret": GITEE_SECRET},
               "deploy": {"target": "generic", "path": "/deploy"}}),
    );
    let timestamp = START_MS.to_string();
    let token = gitee_token(&timestamp);
    let first = gitee_push("Fix rounding @deploy");
    assert_eq!(
        gitee(&host, &timestamp, &token, &first),
        (202, "deployed".into())
    );
    let forged = gitee_push("Ship the attacker's build @deploy");
    assert_eq!(
        gitee(&host, &timestamp, &token, &forged),
        (200, "duplicate".into())
    );
    let encoded = token
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    assert_ne!(encoded, token, "the test token needs characters to encode");
    host.advance(59 * 60 * 1000);
    assert_eq!(
        gitee(&host, &timestamp, &encoded, &forged),
        (200, "duplicate".into())
    );
    // An hour and a minute on, the signature has expired: a 401, not a deploy.
    host.advance(2 * 60 * 1000);
    assert_eq!(gitee(&host, &timestamp, &token, &forged).0, 401);
    assert_eq!(host.calls(), 1);

    let fresh = host.now_ms.get().to_string();
    assert_eq!(
        gitee(&host, &fresh, &gitee_token(&fresh), &forged),
        (202, "deployed".into())
    );
    assert_eq!(host.calls(), 2);
}

/// A captured push resent under a fresh delivery id (GitHub does not sign its id) is the
/// same push: a duplicate for 10 minutes after its deploy. A real second push of the
/// same commit moves the ref from another `before`, and deploys.
#[test]
fn the_same_push_under_another_id_is_a_duplicate() {
    let host = FakeHost::default();
    shop(&host);
    let body = fixture("github/push.json");
    let send = |id: &str, body: &[u8]| github(&host, GITHUB_SECRET, "push", id, body).result();
    assert_eq!(send("d-1", &body), (202, "deployed".into()));
    assert_eq!(send("d-2", &body), (200, "duplicate".into()));
    // Another body (whitespace, a reordered member) is still the same push.
    let mut reshaped = b"  ".to_vec();
    reshaped.extend_from_slice(&body);
    assert_eq!(send("d-3", &reshaped), (200, "duplicate".into()));
    assert_eq!(host.calls(), 1);

    // The same head pushed again after the ref moved elsewhere: another push.
    let repushed = push_with(|p| p["before"] = json!("9".repeat(40)));
    assert_eq!(send("d-4", &repushed), (202, "deployed".into()));
    // Another branch's push of the same commits is not this one either (it is ignored
    // by the branch rule, not called a duplicate).
    let other_ref = push_with(|p| p["ref"] = json!("refs/heads/dev"));
    assert_eq!(send("d-5", &other_ref).1, "ignored");
    assert_eq!(host.calls(), 2);

    // Ten minutes after its deploy, the same push under a new id deploys again.
    host.advance(BODY_HASH_TTL_MS + 1);
    assert_eq!(send("d-6", &body), (202, "deployed".into()));
    assert_eq!(host.calls(), 3);
}

/// The same push from GitLab (`before`) and Bitbucket Cloud (`old.target.hash`), resent
/// under a new id, is a duplicate; the same head from another `before` deploys.
#[test]
fn gitlab_and_bitbucket_pushes_are_named_by_their_commits() {
    for (name, secret, id_header, before) in [
        (
            "gitlab/push",
            "fixture-gitlab-token",
            "x-gitlab-event-uuid",
            "/before",
        ),
        (
            "bitbucket/push",
            "fixture-bitbucket-secret",
            "x-request-uuid",
            "/push/changes/0/old/target/hash",
        ),
    ] {
        let host = FakeHost::default();
        create(
            &host,
            json!({"git": {"enabled": true, "branch": "main", "secret": secret},
                   "deploy": {"target": "generic", "path": "/deploy"}}),
        );
        let send = |id: &str, body: &[u8]| {
            let headers: Value =
                serde_json::from_slice(&fixture(&format!("{name}.headers.json"))).unwrap();
            let signature = format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), body)));
            let mut headers: Vec<(String, String)> = headers
                .as_object()
                .unwrap()
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.as_str().unwrap().to_string()))
                .filter(|(n, _)| n != id_header && n != "x-hub-signature")
                .collect();
            headers.push((id_header.into(), id.into()));
            if name.starts_with("bitbucket") {
                headers.push(("x-hub-signature".into(), signature));
            }
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            host.request("POST", "/hooks/shop/git", &headers, body)
                .result()
        };
        let body = fixture(&format!("{name}.json"));
        assert_eq!(send("d-1", &body), (202, "deployed".into()), "{name}");
        assert_eq!(send("d-2", &body), (200, "duplicate".into()), "{name}");
        let mut moved: Value = serde_json::from_slice(&body).unwrap();
        *moved.pointer_mut(before).unwrap() = json!("9".repeat(40));
        let moved = serde_json::to_vec(&moved).unwrap();
        assert_eq!(send("d-3", &moved), (202, "deployed".into()), "{name}");
        assert_eq!(host.calls(), 2, "{name}");
    }
}
