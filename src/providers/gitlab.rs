//! GitLab: `X-Gitlab-Event`, `X-Gitlab-Event-UUID` (or `Idempotency-Key`), and the
//! webhook's "Secret token" sent as it is in `X-Gitlab-Token`.
//!
//! `Push Hook` and `Tag Push Hook` are read the same way (the rules tell a `refs/tags/…`
//! ref apart: it deploys only when `git.tags` names the tag). The head commit is the one
//! whose `id` is `checkout_sha` (`commits` run oldest to newest and hold at most 20); a
//! deletion has a null `checkout_sha` and a zero `after`. GitLab always sends both
//! members: a push without either is malformed (400), not a deletion. GitLab's "Test"
//! button sends a `Push Hook` built from the default branch's latest commits, which cannot
//! be told apart from a real push: it is treated as one.
//!
//! <https://docs.gitlab.com/user/project/integrations/webhook_events/#push-events>

use serde_json::Value;

use super::{
    changed_files, commit, keys_for, parse_push, str_at, strings_at, Commit, Files, GitEvent,
    GitProvider, Listing, Push,
};
use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::providers::rules::is_zero_sha;
use crate::support::secret::Secret;

/// Every member a GitLab push is read by (below and in [`commit`]).
const KEYS: &[&str] = &[
    "ref",
    "before",
    "after",
    "checkout_sha",
    "commits",
    "id",
    "message",
    "author",
    "name",
    "project",
    "web_url",
    "git_http_url",
    "git_ssh_url",
];

pub struct GitLab;

/// GitLab lists at most 20 commits of a push; `total_commits_count` counts them all.
const LISTING: Listing = Listing {
    name: "GitLab",
    total: Some("total_commits_count"),
    cut_flag: None,
    max_commits: None,
    max_files: None,
};

impl GitProvider for GitLab {
    fn provider(&self) -> Provider {
        Provider::Gitlab
    }

    fn delivery_id(&self, headers: &Headers) -> Option<String> {
        headers
            .get_nonempty("x-gitlab-event-uuid")
            .or_else(|| headers.get_nonempty("idempotency-key"))
            .map(String::from)
    }

    fn verify(
        &self,
        headers: &Headers,
        _body: &[u8],
        secret: &Secret,
        _now_ms: u64,
    ) -> Result<(), Error> {
        let token = headers
            .get_nonempty("x-gitlab-token")
            .ok_or(Error::Unauthorized("missing token"))?;
        if secret.matches(token.as_bytes()) {
            Ok(())
        } else {
            Err(Error::Unauthorized("invalid token"))
        }
    }

    fn parse(&self, headers: &Headers, json: &[u8], files: bool) -> Result<GitEvent, Error> {
        match headers.get("x-gitlab-event").unwrap_or_default() {
            "Push Hook" | "Tag Push Hook" => {
                let p = parse_push(json, "GitLab push", &keys_for(KEYS, files))?;
                let bad = |member: &str| Error::BadPayload(format!("GitLab push without {member}"));
                let git_ref = str_at(&p, "/ref").ok_or_else(|| bad("ref"))?;
                // Both are always sent (`checkout_sha` is `null` on a deletion): a push
                // without them is malformed, not a deletion.
                let after = str_at(&p, "/after")
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| bad("after"))?;
                if p.get("checkout_sha").is_none() {
                    return Err(bad("checkout_sha"));
                }
                let deleted = is_zero_sha(after);
                let head = str_at(&p, "/checkout_sha")
                    .filter(|sha| !sha.is_empty() && !deleted)
                    .map(|sha| {
                        p.get("commits")
                            .and_then(Value::as_array)
                            .and_then(|cs| cs.iter().find(|c| str_at(c, "/id") == Some(sha)))
                            .map_or_else(
                                // no new commit pushed, or more than the 20 listed
                                || Commit {
                                    id: sha.into(),
                                    message: String::new(),
                                    author: String::new(),
                                },
                                commit,
                            )
                    });
                Ok(GitEvent::Push(Push {
                    git_ref: git_ref.into(),
                    deleted: head.is_none(),
                    head,
                    before: str_at(&p, "/before")
                        .filter(|b| !b.is_empty())
                        .map(String::from),
                    files: if files {
                        changed_files(&p, &LISTING)
                    } else {
                        Files::NotRead
                    },
                    web_url: str_at(&p, "/project/web_url").unwrap_or_default().into(),
                    urls: strings_at(
                        &p,
                        &[
                            "/project/web_url",
                            "/project/git_http_url",
                            "/project/git_ssh_url",
                        ],
                    ),
                }))
            }
            other => Ok(GitEvent::Other(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::headers;

    #[test]
    fn the_token_must_equal_the_secret() {
        let secret = Secret::new("glpat-like-secret-token");
        let ok = headers(&[("x-gitlab-token", "glpat-like-secret-token")]);
        assert_eq!(GitLab.verify(&ok, b"{}", &secret, 0), Ok(()));
        for (case, why) in [
            (vec![], "missing token"),
            (vec![("x-gitlab-token", "")], "missing token"),
            (
                vec![("x-gitlab-token", "glpat-like-secret-toke")],
                "invalid token",
            ),
            (
                vec![("x-gitlab-token", "GLPAT-LIKE-SECRET-TOKEN")],
                "invalid token",
            ),
        ] {
            assert_eq!(
                GitLab.verify(&headers(&case), b"{}", &secret, 0),
                Err(Error::Unauthorized(why)),
                "{case:?}"
            );
        }
        assert!(GitLab.verify(&ok, b"{}", &Secret::new(""), 0).is_err());
    }

    #[test]
    fn the_head_is_the_checkout_sha_commit() {
        let h = headers(&[("x-gitlab-event", "Push Hook")]);
        let body = br#"{"object_kind":"push","ref":"refs/heads/main","after":"bbb",
            "checkout_sha":"bbb","project":{"web_url":"https://gitlab.com/a/b"},
            "commits":[{"id":"aaa","message":"old @deploy","author":{"name":"A"}},
                       {"id":"bbb","message":"new","author":{"name":"B"}}]}"#;
        let GitEvent::Push(p) = GitLab.parse(&h, body, false).unwrap() else {
            panic!("not a push")
        };
        assert_eq!(p.head.unwrap().author, "B");
        // no commits listed (a new branch at an existing commit): the id alone
        let body = br#"{"ref":"refs/heads/x","after":"ccc","checkout_sha":"ccc","commits":[]}"#;
        let GitEvent::Push(p) = GitLab.parse(&h, body, false).unwrap() else {
            panic!("not a push")
        };
        assert!(!p.deleted);
        assert_eq!(p.head.unwrap().id, "ccc");
    }

    #[test]
    fn a_push_without_after_or_checkout_sha_is_malformed_not_a_deletion() {
        let h = headers(&[("x-gitlab-event", "Push Hook")]);
        for (body, why) in [
            (
                &br#"{"ref":"refs/heads/main","checkout_sha":"ccc","commits":[]}"#[..],
                "after",
            ),
            (
                br#"{"ref":"refs/heads/main","after":"","checkout_sha":null}"#,
                "after",
            ),
            (
                br#"{"ref":"refs/heads/main","after":"ccc","commits":[]}"#,
                "checkout_sha",
            ),
        ] {
            assert_eq!(
                GitLab.parse(&h, body, false),
                Err(Error::BadPayload(format!("GitLab push without {why}")))
            );
        }
    }
}
