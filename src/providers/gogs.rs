//! Gogs: `X-Gogs-Event`, `X-Gogs-Delivery`, `X-Gogs-Signature: <hex HMAC-SHA256 of the
//! body>`.
//!
//! The signature is checked over the raw body, so hooks must send `application/json`: with
//! the form content type the signature covers the JSON inside `payload=`, not the body
//! sent, and the delivery is refused (401).
//!
//! `push` deploys. Gogs sends no `head_commit`: the head is the commit in `commits`
//! (newest first) whose `id` is `after`. The "Test Delivery" button sends a `push` of the default branch's head
//! with `before == after`, which no real push has: a ping. A pushed tag comes only as a
//! `create` event, read as that tag's push ([`tag_created`]). Branch and tag deletions
//! come as `delete` events, and other events are ignored.
//!
//! <https://gogs.io/docs/features/webhook>

use super::{changed_files, github_style_push, is_test_delivery, keys_for, parse_push};
use super::{str_at, strings_at, verify_hex_hmac, Commit, Files, GitEvent, GitProvider};
use super::{Listing, Push};
use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::support::secret::Secret;

/// What a Gogs push is read by: GitHub's shape, with the head commit in `commits`.
const KEYS: &[&str] = &[
    "ref",
    "before",
    "after",
    "deleted",
    "commits",
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

pub struct Gogs;

/// Gogs cuts a push's commit list to its `[ui] FEED_MAX_COMMIT_NUM` (5 unless changed)
/// and sends no count: a list that long may be cut.
const LISTING: Listing = Listing {
    name: "Gogs",
    total: None,
    cut_flag: None,
    max_commits: Some(5),
    max_files: None,
};

impl GitProvider for Gogs {
    fn provider(&self) -> Provider {
        Provider::Gogs
    }

    fn delivery_id(&self, headers: &Headers) -> Option<String> {
        headers.get_nonempty("x-gogs-delivery").map(String::from)
    }

    fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        secret: &Secret,
        _now_ms: u64,
    ) -> Result<(), Error> {
        verify_hex_hmac(headers, &["x-gogs-signature"], body, secret)
    }

    fn parse(&self, headers: &Headers, json: &[u8], files: bool) -> Result<GitEvent, Error> {
        match headers.get("x-gogs-event").unwrap_or_default() {
            "push" => {
                let p = parse_push(json, "Gogs push", &keys_for(KEYS, files))?;
                if is_test_delivery(&p) {
                    return Ok(GitEvent::Ping);
                }
                let mut push = github_style_push(&p, &[], "Gogs push")?;
                if files {
                    push.files = changed_files(&p, &LISTING);
                }
                Ok(GitEvent::Push(push))
            }
            "create" => tag_created(json),
            other => Ok(GitEvent::Other(other.to_string())),
        }
    }
}

/// Gogs announces a pushed tag only as a `create` event (`ref_type: "tag"`, the short
/// name in `ref`, the commit in `sha`): read as a push of `refs/tags/{ref}` with no
/// message. A created branch also comes as a `push`, which is the one read.
fn tag_created(json: &[u8]) -> Result<GitEvent, Error> {
    let p = parse_push(json, "Gogs create", CREATE_KEYS)?;
    if str_at(&p, "/ref_type") != Some("tag") {
        return Ok(GitEvent::Other("create".into()));
    }
    let bad = |member: &str| Error::BadPayload(format!("Gogs create without {member}"));
    let tag = str_at(&p, "/ref")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("ref"))?;
    let sha = str_at(&p, "/sha")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("sha"))?;
    Ok(GitEvent::Push(Push {
        git_ref: format!("refs/tags/{tag}"),
        web_url: str_at(&p, "/repository/html_url")
            .unwrap_or_default()
            .into(),
        urls: strings_at(
            &p,
            &[
                "/repository/html_url",
                "/repository/clone_url",
                "/repository/ssh_url",
            ],
        ),
        deleted: false,
        head: Some(Commit {
            id: sha.into(),
            message: String::new(),
            author: String::new(),
        }),
        before: None,
        files: Files::NotRead,
    }))
}

/// What a Gogs `create` is read by.
const CREATE_KEYS: &[&str] = &[
    "ref",
    "ref_type",
    "sha",
    "repository",
    "html_url",
    "clone_url",
    "ssh_url",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::headers;

    /// `python3 -c 'import hmac,hashlib; print(hmac.new(b"gogs-hook-secret",
    /// b"{\"ref\":\"refs/heads/main\"}", hashlib.sha256).hexdigest())'`
    const BODY: &[u8] = br#"{"ref":"refs/heads/main"}"#;
    const SIGNATURE: &str = "850664fede53f24a3912b9aa380c08f7b385d3263bce1c6f371f27c0c8dc31f5";

    #[test]
    fn known_answer_and_rejections() {
        let secret = Secret::new("gogs-hook-secret");
        let ok = headers(&[("x-gogs-signature", SIGNATURE)]);
        assert_eq!(Gogs.verify(&ok, BODY, &secret, 0), Ok(()));
        assert_eq!(
            Gogs.verify(&ok, b"{\"ref\":\"refs/heads/dev\"}", &secret, 0),
            Err(Error::Unauthorized("invalid signature"))
        );
        assert_eq!(
            Gogs.verify(&ok, BODY, &Secret::new("other"), 0),
            Err(Error::Unauthorized("invalid signature"))
        );
        let prefixed = format!("sha256={SIGNATURE}");
        for (case, why) in [
            (vec![], "missing signature"),
            (vec![("x-gogs-signature", "")], "missing signature"),
            (
                vec![("x-gogs-signature", &SIGNATURE[..62])],
                "invalid signature",
            ),
            (
                vec![("x-gogs-signature", prefixed.as_str())],
                "invalid signature",
            ),
            // GitHub's header does not stand in for Gogs'
            (
                vec![("x-hub-signature-256", prefixed.as_str())],
                "missing signature",
            ),
        ] {
            assert_eq!(
                Gogs.verify(&headers(&case), BODY, &secret, 0),
                Err(Error::Unauthorized(why)),
                "{case:?}"
            );
        }
    }

    #[test]
    fn the_head_is_the_first_commit_and_a_test_delivery_is_a_ping() {
        let h = headers(&[("x-gogs-event", "push")]);
        let body = br#"{"ref":"refs/heads/main","before":"a","after":"c",
            "commits":[{"id":"c","message":"newest","author":{"name":"C"}},
                       {"id":"b","message":"older","author":{"name":"B"}}]}"#;
        let GitEvent::Push(p) = Gogs.parse(&h, body, false).unwrap() else {
            panic!("not a push")
        };
        assert_eq!(p.head.unwrap().id, "c");
        let test = br#"{"ref":"refs/heads/main","before":"c","after":"c","commits":[]}"#;
        assert_eq!(Gogs.parse(&h, test, false), Ok(GitEvent::Ping));
    }
}
