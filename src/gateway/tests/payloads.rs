//! Git payloads as the providers send them, through the whole hook flow: members a
//! provider always sends, and the head commit of pushes that come without `head_commit`.

use serde_json::{json, Value};

use super::super::fake::FakeHost;
use super::{create, fixture, github, push_with, shop, GITHUB_SECRET};
use crate::support::crypto::{hex, hmac_sha256};

/// The Gitea fixtures' secret.
const GITEA_SECRET: &str = "fixture-gitea-secret";

/// `tests/fixtures/<name>.headers.json` as request headers.
fn fixture_headers(name: &str) -> Vec<(String, String)> {
    let headers: Value = serde_json::from_slice(&fixture(&format!("{name}.headers.json"))).unwrap();
    headers
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn a_github_push_without_after_or_head_commit_is_malformed_not_a_deletion() {
    let host = FakeHost::default();
    shop(&host);
    for member in ["after", "head_commit"] {
        let body = push_with(|v| {
            v.as_object_mut().unwrap().remove(member);
        });
        let answer = github(&host, GITHUB_SECRET, "push", &format!("no-{member}"), &body);
        assert_eq!(answer.result(), (400, "rejected".into()), "{member}");
        assert_eq!(
            answer.json()["reason"],
            format!("malformed payload: GitHub push without {member}")
        );
    }
    // a real deletion: `head_commit` is there, and null
    let deletion = fixture("github/push-delete.json");
    let deleted = github(&host, GITHUB_SECRET, "push", "del-1", &deletion);
    assert_eq!(deleted.result(), (200, "ignored".into()));
    assert_eq!(host.calls(), 0);
}

/// The app `shop` watching the Gitea fixtures' repository.
fn gitea_shop(host: &FakeHost) {
    create(
        host,
        json!({
            "git": {"enabled": true, "repo": "https://gitea.acme.example/acme/shop",
                    "branch": "main", "secret": GITEA_SECRET},
            "deploy": {"target": "generic", "path": "/v1/apps/shop/deploy"}
        }),
    );
}

/// Posts `body` with the headers of the fixture `name`, signed anew and named `id`.
fn gitea_post(host: &FakeHost, name: &str, id: &str, body: &[u8]) -> super::Answered {
    let signature = hex(&hmac_sha256(GITEA_SECRET.as_bytes(), body));
    let headers: Vec<(String, String)> = fixture_headers(name)
        .into_iter()
        .map(|(n, v)| match n.as_str() {
            "x-gitea-signature" | "x-gogs-signature" => (n, signature.clone()),
            n if n.ends_with("-delivery") => (n.to_string(), id.to_string()),
            _ => (n, v),
        })
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    host.request("POST", "/hooks/shop/git", &headers, body)
}

/// Gitea before 1.15 sent `"head_commit": null` with every push (go-gitea/gitea#16282),
/// and mirror-sync pushes came without the member until 2023 (#23215): the head is the
/// commit in `commits` that `after` names, with its message and author.
#[test]
fn a_gitea_push_without_head_commit_deploys_the_commit_after_names() {
    let host = FakeHost::default();
    gitea_shop(&host);
    let body = fixture("gitea/push-1.14.json");
    let parsed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(parsed["head_commit"], Value::Null, "the 1.14 format");
    let answer = gitea_post(&host, "gitea/push-1.14", "g-114", &body);
    assert_eq!(
        answer.result(),
        (202, "deployed".into()),
        "{}",
        answer.text()
    );
    let commit = json!({"id": "1a954628a960aaef81d7b2d4521929579f3541e6",
                        "message": "Fix checkout rounding\n\nRound totals half-even. @deploy\n",
                        "author": "Ann Developer"});
    let sent = host.sent_json(0);
    assert_eq!(
        (&sent["provider"], &sent["commit"]),
        (&json!("gitea"), &commit)
    );

    // the member absent, and the head listed last: found by its id all the same (later
    // than 10 minutes: the same push sooner is a duplicate, whatever its id)
    host.advance(crate::state::delivery::BODY_HASH_TTL_MS + 1);
    let mut mirror = parsed.clone();
    mirror.as_object_mut().unwrap().remove("head_commit");
    mirror["commits"].as_array_mut().unwrap().reverse();
    let mirror = serde_json::to_vec(&mirror).unwrap();
    let answer = gitea_post(&host, "gitea/push-1.14", "g-mirror", &mirror);
    assert_eq!(
        answer.result(),
        (202, "deployed".into()),
        "{}",
        answer.text()
    );
    assert_eq!(host.sent_json(1)["commit"], commit);

    // `@deploy` only in another commit of the push: not the head's, ignored
    let mut older = parsed;
    older["commits"][0]["message"] = json!("Fix checkout rounding\n");
    older["commits"][1]["message"] = json!("Add rounding tests @deploy\n");
    let older = serde_json::to_vec(&older).unwrap();
    let answer = gitea_post(&host, "gitea/push-1.14", "g-older", &older);
    assert_eq!(
        answer.result(),
        (200, "ignored".into()),
        "{}",
        answer.text()
    );
    assert_eq!(host.calls(), 2);
}
