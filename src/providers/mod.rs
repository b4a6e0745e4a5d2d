//! Git providers: each one detects, verifies and parses its own webhooks into one
//! normalised [`GitEvent`].

mod bitbucket;
mod gitea;
mod gitee;
mod github;
mod gitlab;
mod gogs;
pub mod rules;

pub use bitbucket::Bitbucket;
pub use gitea::Gitea;
pub use gitee::Gitee;
pub(crate) use github::verify_hub_signature;
pub use github::GitHub;
pub use gitlab::GitLab;
pub use gogs::Gogs;

use serde_json::Value;

use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::providers::rules::is_zero_sha;
use crate::support::crypto::{unhex, verify_hmac_sha256};
use crate::support::secret::Secret;

/// A git push, normalised across providers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// The full ref, e.g. `refs/heads/main`.
    pub git_ref: String,
    /// The repository's web URL (sent to the platform).
    pub web_url: String,
    /// Every URL the repository is known by (web, clone, ssh), for matching `git.repo`.
    pub urls: Vec<String>,
    /// The push deleted the ref.
    pub deleted: bool,
    /// The commit the ref now points at; `None` for deletions.
    pub head: Option<Commit>,
    /// The commit the ref pointed at before the push (all zeros for a new ref), when the
    /// provider says. With the ref and the head it names the push, whatever the delivery
    /// id: a real second push moves the ref from another commit.
    pub before: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub id: String,
    pub message: String,
    pub author: String,
}

/// What a verified git webhook says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GitEvent {
    /// A ping or test delivery.
    Ping,
    Push(Push),
    /// Any other event (issues, pull requests, ...), by the provider's name for it.
    Other(String),
}

/// One git provider's webhook dialect.
pub trait GitProvider: Sync {
    fn provider(&self) -> Provider;

    /// The provider's own delivery id header, when it sends one.
    fn delivery_id(&self, headers: &Headers) -> Option<String>;

    /// Authenticates the raw body with the app's git secret, in constant time.
    fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        secret: &Secret,
        now_ms: u64,
    ) -> Result<(), Error>;

    /// Parses the (already verified, decoded) JSON payload.
    fn parse(&self, headers: &Headers, json: &[u8]) -> Result<GitEvent, Error>;

    /// Another name for the delivery, and how long it is remembered after a deploy, when
    /// the provider's authentication can be replayed with another body (Gitee's).
    fn replay_name(&self, _headers: &Headers) -> Option<(String, u64)> {
        None
    }
}

/// Providers we recognise.
pub const SUPPORTED: &str = "GitHub, GitLab, Gitee, Gogs, Gitea, Forgejo and Bitbucket Cloud";

/// Picks the provider from the request headers.
///
/// The order matters: Forgejo also sends Gitea's headers, Gitea also sends Gogs' and
/// GitHub's (`X-Gogs-Event`, `X-GitHub-Event`, ...), and Gogs may send GitHub's; so the
/// most specific header wins.
pub fn detect(headers: &Headers) -> Result<&'static dyn GitProvider, Error> {
    let has = |name| headers.contains(name);
    Ok(if has("x-forgejo-event") {
        &Gitea::FORGEJO
    } else if has("x-gitea-event") {
        &Gitea::GITEA
    } else if has("x-gogs-event") {
        &Gogs
    } else if has("x-gitee-event") {
        &Gitee
    } else if has("x-github-event") {
        &GitHub
    } else if has("x-gitlab-event") {
        &GitLab
    } else if has("x-event-key") {
        &Bitbucket
    } else {
        return Err(Error::UnknownProvider(SUPPORTED));
    })
}

/// Checks a hex HMAC-SHA256 of the body (the first non-empty header of `names`), in
/// constant time. An empty header is a missing signature: Gitea sends one when the hook
/// has no secret.
pub(crate) fn verify_hex_hmac(
    headers: &Headers,
    names: &[&str],
    body: &[u8],
    secret: &Secret,
) -> Result<(), Error> {
    let value = names
        .iter()
        .find_map(|name| headers.get_nonempty(name))
        .ok_or(Error::Unauthorized("missing signature"))?;
    check_hex_hmac(Some(value), body, secret)
}

/// `hex` must be the hex HMAC-SHA256 of `body` under the secret; `None` = malformed.
pub(crate) fn check_hex_hmac(hex: Option<&str>, body: &[u8], secret: &Secret) -> Result<(), Error> {
    let signature = hex
        .and_then(unhex)
        .ok_or(Error::Unauthorized("invalid signature"))?;
    if secret.is_empty() || !verify_hmac_sha256(secret.expose().as_bytes(), body, &signature) {
        return Err(Error::Unauthorized("invalid signature"));
    }
    Ok(())
}

/// A commit object in GitHub's shape (`id`, `message`, `author.name`), which Gitea,
/// Forgejo, Gogs, Gitee and GitLab all use.
pub(crate) fn commit(c: &Value) -> Commit {
    Commit {
        id: str_at(c, "/id").unwrap_or_default().into(),
        message: str_at(c, "/message").unwrap_or_default().into(),
        author: str_at(c, "/author/name").unwrap_or_default().into(),
    }
}

/// The strings at `pointers` that are present and non-empty.
pub(crate) fn strings_at(value: &Value, pointers: &[&str]) -> Vec<String> {
    pointers
        .iter()
        .filter_map(|p| str_at(value, p))
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// A push in GitHub's shape, which Gitea, Forgejo, Gogs and Gitee copy: `ref`, `after`,
/// `deleted`, `head_commit`, `commits`, `repository.{html_url, clone_url, ssh_url, ...}`.
///
/// `ref` and `after` are sent by every one of them with every push, and `always` names
/// the provider's other members it documents as always present (GitHub's `head_commit`,
/// `null` on a deletion): a push without one is malformed, never a branch deletion.
/// Only a `deleted: true` or a zero `after` is a deletion.
///
/// The head is `head_commit`; without one (Gitea before 1.15, Gitea's mirror-sync
/// pushes, Gogs), the commit in `commits` whose `id` is `after`; when `commits` does not
/// list it either (a new branch at an existing commit), `after` alone, with no message.
pub(crate) fn github_style_push(p: &Value, always: &[&str], what: &str) -> Result<Push, Error> {
    let bad = |member: &str| Error::BadPayload(format!("{what} without {member}"));
    let git_ref = str_at(p, "/ref").ok_or_else(|| bad("ref"))?;
    let after = str_at(p, "/after")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| bad("after"))?;
    if let Some(missing) = always.iter().find(|m| p.get(**m).is_none()) {
        return Err(bad(missing));
    }
    let deleted = p.get("deleted").and_then(Value::as_bool) == Some(true) || is_zero_sha(after);
    let head = (!deleted).then(|| {
        p.get("head_commit")
            .filter(|c| c.is_object())
            .or_else(|| commit_with_id(p, after))
            .map_or_else(
                || Commit {
                    id: after.into(),
                    message: String::new(),
                    author: String::new(),
                },
                commit,
            )
    });
    Ok(Push {
        git_ref: git_ref.into(),
        deleted: head.is_none(),
        head,
        before: str_at(p, "/before")
            .filter(|b| !b.is_empty())
            .map(String::from),
        web_url: str_at(p, "/repository/html_url").unwrap_or_default().into(),
        urls: strings_at(
            p,
            &[
                "/repository/html_url",
                "/repository/clone_url",
                "/repository/ssh_url",
                "/repository/git_url",
                "/repository/git_http_url",
                "/repository/git_ssh_url",
            ],
        ),
    })
}

/// The commit in the push's `commits` whose `id` is `id`, in whatever order they run.
pub(crate) fn commit_with_id<'p>(p: &'p Value, id: &str) -> Option<&'p Value> {
    p.get("commits")?
        .as_array()?
        .iter()
        .find(|c| str_at(c, "/id") == Some(id))
}

/// Gitea's and Gogs' "Test delivery" is a push of the default branch's head with
/// `before == after`, which a real push never has (git sends no update that changes
/// nothing).
pub(crate) fn is_test_delivery(p: &Value) -> bool {
    let before = str_at(p, "/before");
    before.is_some() && before == str_at(p, "/after")
}

/// Parses a JSON payload, describing failures without echoing it.
pub(crate) fn parse_json(json: &[u8], what: &str) -> Result<Value, Error> {
    object(crate::support::json::parse(json), what)
}

/// A parsed payload that must be a JSON object; failures described without echoing it.
fn object(parsed: Result<Value, serde_json::Error>, what: &str) -> Result<Value, Error> {
    let value = parsed.map_err(|e| {
        Error::BadPayload(format!("{what}: {}", crate::error::describe_json_error(&e)))
    })?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(Error::BadPayload(format!("{what}: expected a JSON object")))
    }
}

/// The member names a GitHub-style push is read by ([`github_style_push`], [`commit`],
/// [`is_test_delivery`]); GitHub, Gitee and Gitea read nothing else.
pub(crate) const GITHUB_STYLE_KEYS: &[&str] = &[
    "ref",
    "before",
    "after",
    "deleted",
    "head_commit",
    "id",
    "message",
    "author",
    "name",
    "repository",
    "html_url",
    "clone_url",
    "ssh_url",
    "git_url",
    "git_http_url",
    "git_ssh_url",
];

/// Parses a push payload like [`parse_json`], but keeps only the object members named in
/// `keep`, at any depth: everything else is checked to be JSON and skipped without being
/// built. A GitHub push is mostly `repository`, `sender` and `commits` fields nobody
/// reads; building them was most of the payload's cost. `keep` must name every member
/// the provider reads, at every level (`repository` and `html_url` for
/// `/repository/html_url`): a missing name reads as absent, which the provider table
/// test catches. Skipped values are walked without recursion, so only the kept members
/// count towards the parser's nesting limit.
pub(crate) fn parse_push(json: &[u8], what: &str, keep: &[&str]) -> Result<Value, Error> {
    object(crate::support::json::parse_keeping(json, keep), what)
}

/// The string at a JSON pointer (`/a/b`), if it is one.
pub(crate) fn str_at<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
}

#[cfg(test)]
pub(crate) mod testutil {
    use crate::model::Headers;

    pub fn headers(pairs: &[(&str, &str)]) -> Headers {
        Headers::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{json, Value};

    use super::testutil::headers;
    use super::*;

    /// The git providers' fixture folders under `tests/fixtures/`.
    const PROVIDERS: [&str; 7] = [
        "github",
        "gitlab",
        "gitee",
        "gogs",
        "gitea",
        "forgejo",
        "bitbucket",
    ];

    fn read_json(path: &Path) -> Value {
        let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// What the table compares: the event as the fixtures' `.expected.json` spell it.
    fn normalised(event: &GitEvent) -> Value {
        match event {
            GitEvent::Ping => json!({"event": "ping"}),
            GitEvent::Other(name) => json!({"event": format!("other:{name}")}),
            GitEvent::Push(p) => json!({
                "event": "push",
                "git_ref": p.git_ref,
                "deleted": p.deleted,
                "before": p.before,
                "web_url": p.web_url,
                "urls": p.urls,
                "head": p.head.as_ref().map(|c| json!({
                    "id": c.id, "message": c.message, "author": c.author,
                })),
            }),
        }
    }

    /// Every `tests/fixtures/<provider>/<name>.json` of a git provider is a delivery as the
    /// provider sends it, with its request headers in `<name>.headers.json` and the expected
    /// result in `<name>.expected.json`: the provider detected, the delivery id, the
    /// normalised event, and the `secret` the delivery was authenticated with.
    ///
    /// Signature headers were computed over the exact bytes of `<name>.json` with python3:
    /// hex ones (`X-Gogs-Signature`, `X-Gitea-Signature`, `X-Forgejo-Signature`, and after
    /// `sha256=` `X-Hub-Signature-256`, Bitbucket's `X-Hub-Signature`) as
    /// `hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()`, Gitee's token as
    /// `base64.b64encode(hmac.new(key, f"{timestamp}\n{key}".encode(), hashlib.sha256)
    /// .digest())`, checked at the `now_ms` of the expected file. GitLab's token, and Gitee's
    /// in password mode, are the secret itself.
    #[test]
    fn every_fixture_detects_verifies_and_parses_as_expected() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut seen = 0;
        for provider in PROVIDERS {
            let dir = root.join(provider);
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .filter_map(|entry| {
                    let name = entry.unwrap().file_name().into_string().unwrap();
                    name.strip_suffix(".expected.json").map(String::from)
                })
                .collect();
            names.sort();
            assert!(!names.is_empty(), "no fixtures for {provider}");
            for name in names {
                let what = format!("{provider}/{name}");
                let body = std::fs::read(dir.join(format!("{name}.json"))).unwrap();
                let expected = read_json(&dir.join(format!("{name}.expected.json")));
                let pairs = read_json(&dir.join(format!("{name}.headers.json")));
                let h = Headers::new(
                    pairs
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(n, v)| (n.clone(), v.as_str().unwrap().to_string())),
                );
                let secret = Secret::new(expected["secret"].as_str().unwrap());
                let now_ms = expected["now_ms"].as_u64().unwrap_or(0);

                let found = detect(&h).unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_eq!(found.provider().as_str(), expected["provider"], "{what}");
                assert_eq!(
                    found
                        .delivery_id(&h)
                        .map(Value::from)
                        .unwrap_or(Value::Null),
                    expected["delivery"],
                    "{what}"
                );
                assert_eq!(found.verify(&h, &body, &secret, now_ms), Ok(()), "{what}");
                let wrong = Secret::new(format!("{}x", secret.expose()));
                assert!(found.verify(&h, &body, &wrong, now_ms).is_err(), "{what}");

                let event = found
                    .parse(&h, &body)
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                let mut want = expected.clone();
                let want = want.as_object_mut().unwrap();
                for key in ["secret", "now_ms", "provider", "delivery"] {
                    want.remove(key);
                }
                assert_eq!(normalised(&event), Value::from(want.clone()), "{what}");
                seen += 1;
            }
        }
        assert!(seen >= 20, "only {seen} fixtures");
    }

    #[test]
    fn detection_prefers_the_most_specific_header() {
        let provider = |pairs: &[(&str, &str)]| detect(&headers(pairs)).map(|p| p.provider());
        let all = [
            ("x-forgejo-event", "push"),
            ("x-gitea-event", "push"),
            ("x-gogs-event", "push"),
            ("x-gitee-event", "Push Hook"),
            ("x-github-event", "push"),
            ("x-gitlab-event", "Push Hook"),
            ("x-event-key", "repo:push"),
        ];
        let order = [
            Provider::Forgejo,
            Provider::Gitea,
            Provider::Gogs,
            Provider::Gitee,
            Provider::Github,
            Provider::Gitlab,
            Provider::Bitbucket,
        ];
        for (i, want) in order.into_iter().enumerate() {
            assert_eq!(provider(&all[i..]), Ok(want), "{:?}", &all[i..]);
        }
        let unknown = provider(&[("x-hub-signature-256", "sha256=00"), ("user-agent", "curl")]);
        assert_eq!(unknown, Err(Error::UnknownProvider(SUPPORTED)));
        for name in [
            "GitHub",
            "GitLab",
            "Gitee",
            "Gogs",
            "Gitea",
            "Forgejo",
            "Bitbucket",
        ] {
            assert!(SUPPORTED.contains(name), "{name}");
        }
    }

    #[test]
    fn github_style_pushes_without_a_head_commit() {
        // a new branch at an existing commit: no commit listed, the ref still moved
        let p = json!({"ref": "refs/heads/x", "before": "0000", "after": "abc", "commits": []});
        let push = github_style_push(&p, &[], "push").unwrap();
        assert!(!push.deleted);
        assert_eq!(push.head.unwrap().id, "abc");
        // the commit `after` names, wherever `commits` lists it
        let p = json!({"ref": "refs/heads/x", "after": "b", "head_commit": null, "commits": [
            {"id": "a", "message": "older @deploy", "author": {"name": "A"}},
            {"id": "b", "message": "newer", "author": {"name": "B"}}]});
        let head = github_style_push(&p, &[], "push").unwrap().head.unwrap();
        assert_eq!(
            (head.message.as_str(), head.author.as_str()),
            ("newer", "B")
        );
        let p = json!({"ref": "refs/heads/x", "after": "0000000000000000000000000000000000000000",
                       "head_commit": {"id": "abc"}});
        let push = github_style_push(&p, &[], "push").unwrap();
        assert!(push.deleted && push.head.is_none());
        assert!(github_style_push(&json!({}), &[], "push").is_err());
    }

    #[test]
    fn a_push_without_an_always_sent_member_is_malformed_not_a_deletion() {
        let full = json!({"ref": "refs/heads/main", "after": "abc", "head_commit": null});
        assert!(github_style_push(&full, &["head_commit"], "push").is_ok());
        for (member, why) in [
            ("ref", "ref"),
            ("after", "after"),
            ("head_commit", "head_commit"),
        ] {
            let mut p = full.clone();
            p.as_object_mut().unwrap().remove(member);
            assert_eq!(
                github_style_push(&p, &["head_commit"], "GitHub push"),
                Err(Error::BadPayload(format!("GitHub push without {why}"))),
                "{member}"
            );
        }
        for after in [json!(""), json!(null), json!(1)] {
            let p = json!({"ref": "refs/heads/main", "after": after, "head_commit": null});
            assert!(github_style_push(&p, &[], "push").is_err(), "{after}");
        }
    }

    /// The reference for [`parse_push`]: the full parse, then every member not in `keep`
    /// removed at every depth.
    fn pruned_by_hand(v: &mut Value, keep: &[&str]) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| keep.contains(&k.as_str()));
                m.values_mut().for_each(|v| pruned_by_hand(v, keep));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| pruned_by_hand(v, keep)),
            _ => {}
        }
    }

    #[test]
    fn the_pruned_parse_equals_the_full_parse_minus_unread_members() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut checked = 0;
        for dir in PROVIDERS {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.ends_with(".expected.json") || name.ends_with(".headers.json") {
                    continue;
                }
                let body = std::fs::read(&path).unwrap();
                let mut want = read_json(&path);
                pruned_by_hand(&mut want, GITHUB_STYLE_KEYS);
                let got = parse_push(&body, "push", GITHUB_STYLE_KEYS).unwrap();
                assert_eq!(got, want, "{}", path.display());
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} fixtures");
    }
}
