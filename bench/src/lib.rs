//! Shared inputs of the benchmarks: fixtures, signing, the app config and headers, so
//! the criterion benches, the component bench and the load test all send the same thing.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// The git secret of the benchmark app `shop`.
pub const GIT_SECRET: &str = "bench-git-secret-0123456789abcdef";
/// The image token of the benchmark app `shop`.
pub const IMAGE_TOKEN: &str = "bench-image-token-0123456789abcdef";
/// A fixed `now` (ms since the epoch), so every run decides the same.
pub const NOW_MS: u64 = 1_795_601_696_789;

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> Vec<u8> {
    // bench/ or bench/core/: the repository root is the first ancestor with fixtures.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("tests/fixtures").is_dir())
        .expect("tests/fixtures above the bench crate");
    let path: PathBuf = root.join("tests/fixtures").join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `sha256=<hex HMAC-SHA256 of body>`, as GitHub sends it in `X-Hub-Signature-256`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::from("sha256=");
    for b in tag {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The app `shop` as `PUT /api/apps/shop` takes it: git trigger on `main`, keyword
/// `deploy`; image trigger on `docker.io/acme/shop:latest`.
pub fn app_json() -> Value {
    json!({
        "name": "shop",
        "git": {"enabled": true, "repo": "https://github.com/acme/shop", "branch": "main",
                "keyword": "deploy", "secret": GIT_SECRET},
        "image": {"enabled": true, "repository": "docker.io/acme/shop", "tag": "latest",
                  "tag_pattern": null, "token": IMAGE_TOKEN},
        "api": {"enabled": false, "secret_key": "bench-api-key-0123456789abcdef"},
        "deploy": {"target": "generic", "path": "/v1/apps/shop/deploy",
                   "allowed_statuses": ["running", "abnormal"]},
        "status": "running"
    })
}

/// The `config` argument of `autodeploy::evaluate` for the app `shop`.
pub fn evaluate_config() -> String {
    json!({
        "app": app_json(),
        "platform_url": "https://console.example.com",
        "platform_token": "bench-platform-token",
    })
    .to_string()
}

/// [`evaluate_config`] with path filters on the app, as a monorepo would set them: the
/// push's changed files are then read and matched.
pub fn evaluate_config_with_paths() -> String {
    let mut app = app_json();
    app["git"]["paths"] = json!({"include": ["services/api/**", "src/**", "Cargo.lock"],
                                 "exclude": ["**/*.md", "docs/"]});
    json!({
        "app": app,
        "platform_url": "https://console.example.com",
        "platform_token": "bench-platform-token",
    })
    .to_string()
}

/// The GitHub push fixture (one commit, message with `@deploy`).
pub fn github_push() -> Vec<u8> {
    fixture("github/push.json")
}

/// The fixture push's `before`: replaced to make each deploy a push of its own.
pub const PUSH_BEFORE: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

/// The GitHub push fixture moved from another commit (`before` = `n` in 40 hex digits):
/// the same bytes but for those 40, and a push of its own, so it deploys (the same push
/// under a new delivery id is a duplicate).
pub fn github_push_from(n: u64) -> Vec<u8> {
    let push = String::from_utf8(github_push()).unwrap();
    assert!(push.contains(PUSH_BEFORE));
    push.replace(PUSH_BEFORE, &format!("{n:040x}")).into_bytes()
}

/// The GitHub push fixture on another branch (valid, but ignored).
pub fn github_push_other_branch() -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&github_push()).unwrap();
    v["ref"] = json!("refs/heads/feature-x");
    serde_json::to_vec(&v).unwrap()
}

/// The GitHub push fixture with `n` commits (the head commit last), pretty-printed as
/// GitHub sends it.
pub fn github_push_commits(n: usize) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&github_push()).unwrap();
    let head = v["head_commit"].clone();
    let mut commits = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = head.clone();
        if i + 1 < n {
            let id = format!("{i:040x}");
            c["id"] = json!(id);
            c["url"] = json!(format!("https://github.com/acme/shop/commit/{id}"));
            c["message"] = json!(format!("Step {i} of the refactoring\n\nNo deploy yet."));
            c["modified"] = json!([format!("src/module_{i}.rs"), "Cargo.lock"]);
        }
        commits.push(c);
    }
    v["commits"] = Value::Array(commits);
    serde_json::to_vec_pretty(&v).unwrap()
}

/// The headers GitHub sends with a push (`delivery` as `X-GitHub-Delivery`).
pub fn github_headers(body: &[u8], secret: &str, delivery: &str) -> Vec<(String, String)> {
    [
        ("Content-Type", "application/json".to_string()),
        ("User-Agent", "GitHub-Hookshot/a1b2c3d".to_string()),
        ("X-GitHub-Event", "push".to_string()),
        ("X-GitHub-Delivery", delivery.to_string()),
        ("X-GitHub-Hook-ID", "520147622".to_string()),
        ("X-Hub-Signature-256", sign(secret, body)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The headers Docker Hub sends.
pub fn dockerhub_headers() -> Vec<(String, String)> {
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("User-Agent".into(), "Go-http-client/1.1".into()),
    ]
}
