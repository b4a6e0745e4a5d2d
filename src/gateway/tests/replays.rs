//! A captured request sent again under another name: a Gitee signature with another
//! body, a push with a fresh delivery id.

use serde_json::{json, Value};

use super::super::fake::{FakeHost, START_MS};
use super::{create, fixture};
use crate::support::crypto::{base64, hmac_sha256};

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

/// The Gitee fixture push with another head commit message (a different body).
fn gitee_push(message: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("gitee/push.json")).unwrap();
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
