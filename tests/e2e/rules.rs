//! The git rules of issue 18 through the real component: path filters with a provider
//! that lists every changed file (GitHub), one whose list is cut (GitLab) and one that
//! lists none (Bitbucket Cloud); branch patterns; tag releases (GitHub's tag push and
//! Gogs' `create`); skip markers.

use serde_json::{json, Value};

use crate::git_providers::Delivery;
use crate::support::*;

/// A gateway whose app `shop` takes any repository, with `git` merged into its git
/// section; answers the git secret.
async fn gateway_with(git: Value) -> (Gateway, String) {
    let gw = Gateway::new();
    let mut section = json!({"enabled": true, "repo": ""});
    for (k, v) in git.as_object().unwrap() {
        section[k] = v.clone();
    }
    let app = gw
        .create_app(
            "shop",
            json!({"git": section,
                   "deploy": {"target": "generic", "path": "/v1/apps/shop/deploy"}}),
        )
        .await;
    let secret = git_secret(&app);
    (gw, secret)
}

/// Sends `delivery` and checks its result; answers the reason.
async fn expect(gw: &Gateway, what: &str, delivery: &Delivery, want: (u16, &str)) -> String {
    let (status, answer) = delivery.send(gw, "shop").await;
    assert_eq!(
        (status, answer["result"].as_str().unwrap_or_default()),
        want,
        "{what}: {answer}"
    );
    answer["reason"].as_str().unwrap().to_string()
}

/// The app's delivery log, newest first.
async fn log(gw: &Gateway) -> Vec<Value> {
    let (status, body) = gw.admin("GET", "/api/apps/shop/deliveries", None).await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn path_filters_deploy_what_changed_and_say_when_they_cannot_tell() {
    let (gw, secret) = gateway_with(json!({
        "paths": {"include": ["services/api", "Cargo.lock"], "exclude": ["**/*.md"]}
    }))
    .await;

    // GitHub lists every changed file: the fixture changed only src/checkout.rs
    let github = Delivery::fixture("github/push").signed(&secret);
    let why = expect(&gw, "github, no match", &github, (200, "ignored")).await;
    assert_eq!(why, "the 1 changed file does not match git.paths");
    let readme = Delivery::edited(
        "github/push",
        &[(
            "/commits/0/modified",
            json!(["services/api/README.md", "web/index.html"]),
        )],
    )
    .set("x-github-delivery", "rules-github-2")
    .signed(&secret);
    let why = expect(&gw, "github, excluded", &readme, (200, "ignored")).await;
    assert_eq!(why, "none of the 2 changed files matches git.paths");
    assert_eq!(gw.calls(), 0);

    let api = Delivery::edited(
        "github/push",
        &[
            ("/commits/0/modified", json!(["web/index.html"])),
            ("/commits/0/added", json!(["services/api/v2/handler.go"])),
        ],
    )
    .set("x-github-delivery", "rules-github-3")
    .signed(&secret);
    let why = expect(&gw, "github, match", &api, (202, "deployed")).await;
    assert_eq!(why, "the platform accepted the deploy (HTTP 202)");
    let sent = gw.platform.requests().last().unwrap().json();
    assert_eq!(
        (&sent["branch"], &sent["tag"]),
        (&json!("main"), &Value::Null)
    );

    // GitLab listed 20 of 35 commits: the rule cannot be decided, so the push deploys
    let gitlab = Delivery::fixture("gitlab/push-many").signed(&secret);
    let why = expect(&gw, "gitlab, cut list", &gitlab, (202, "deployed")).await;
    let note = "git.paths not checked: GitLab listed 20 of the push's 35 commits";
    assert_eq!(
        why,
        format!("the platform accepted the deploy (HTTP 202); {note}")
    );
    // Bitbucket Cloud lists no files at all
    let bitbucket = Delivery::fixture("bitbucket/push").signed(&secret);
    let why = expect(&gw, "bitbucket", &bitbucket, (202, "deployed")).await;
    assert!(
        why.ends_with("git.paths not checked: Bitbucket Cloud does not list changed files"),
        "{why}"
    );
    assert_eq!(gw.calls(), 3);

    // the delivery log says the same, newest first
    let entries = log(&gw).await;
    let reasons: Vec<&str> = entries
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons[0].contains("Bitbucket Cloud does not list"),
        "{reasons:?}"
    );
    assert!(reasons[1].ends_with(note), "{reasons:?}");
    assert_eq!(reasons[3], "none of the 2 changed files matches git.paths");
}

#[tokio::test]
async fn branch_patterns_tag_releases_and_skip_markers() {
    let (gw, secret) = gateway_with(json!({"branch": "{main,release/*}", "tags": "v[0-9]*"})).await;

    // a new branch release/1.4 at an existing commit matches the pattern; the call
    // names the branch pushed, not the pattern
    let created = Delivery::fixture("github/push-created").signed(&secret);
    expect(&gw, "release branch", &created, (202, "deployed")).await;
    let sent = gw.platform.requests().last().unwrap().json();
    assert_eq!(sent["branch"], "release/1.4");

    // a skip marker wins over the keyword
    let skipped = Delivery::edited(
        "github/push",
        &[(
            "/head_commit/message",
            json!("Fix typo [Skip Deploy]\n\n@deploy"),
        )],
    )
    .signed(&secret);
    let why = expect(&gw, "skip marker", &skipped, (200, "ignored")).await;
    assert_eq!(why, "the head commit message says [skip deploy]");

    // tag releases: GitHub's push of refs/tags/v1.4.0, and Gogs' `create` of a tag
    let tag = Delivery::fixture("github/push-tag").signed(&secret);
    expect(&gw, "github tag", &tag, (202, "deployed")).await;
    let sent = gw.platform.requests().last().unwrap().json();
    assert_eq!(
        (&sent["branch"], &sent["tag"], &sent["commit"]["id"]),
        (
            &Value::Null,
            &json!("v1.4.0"),
            &json!("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c")
        )
    );
    let gogs = Delivery::fixture("gogs/create-tag").signed(&secret);
    expect(&gw, "gogs tag", &gogs, (202, "deployed")).await;
    let sent = gw.platform.requests().last().unwrap().json();
    assert_eq!(
        (&sent["provider"], &sent["branch"], &sent["tag"]),
        (&json!("gogs"), &Value::Null, &json!("v1.4.0"))
    );
    let nightly = Delivery::edited("gitlab/push-tag", &[("/ref", json!("refs/tags/nightly"))])
        .signed(&secret);
    let why = expect(&gw, "other tag", &nightly, (200, "ignored")).await;
    assert_eq!(why, "tag nightly does not match git.tags v[0-9]*");
    assert_eq!(gw.calls(), 3);
}
