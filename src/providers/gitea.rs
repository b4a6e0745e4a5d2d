//! Gitea and Forgejo: `X-Gitea-Event` / `X-Forgejo-Event`, `X-Gitea-Delivery` /
//! `X-Forgejo-Delivery`, and `X-Gitea-Signature` / `X-Forgejo-Signature: <hex
//! HMAC-SHA256 of the body>`.
//!
//! Both also send Gogs' and GitHub's headers (`X-Gogs-Event`, `X-GitHub-Event`,
//! `X-Hub-Signature-256`, ...), and Forgejo sends Gitea's: [`super::detect`] looks for
//! Forgejo's, then Gitea's, before the others. Without a secret Gitea sends the signature
//! header empty: that is a missing signature (401), never a pass.
//!
//! The signature is checked over the raw body, so hooks must send `application/json`: with
//! the form content type the signature covers the JSON inside `payload=`, not the body
//! sent, and the delivery is refused (401).
//!
//! `push` deploys, with `head_commit` as the head. Gitea before 1.15 sent `head_commit`
//! empty (`null`, go-gitea/gitea#16282), and mirror-sync pushes came without one until
//! 2023 (#23215): then the head is the commit in `commits` whose `id` is `after` (the
//! list runs newest first in old versions, oldest first in new ones, so its position
//! says nothing). The "Test Delivery" button sends a
//! `push` of the default branch's head (or of a fake zero commit in an empty repository)
//! with `before == after`, which no real push has: a ping. Deletions come as `delete`
//! events; a push with a zero `after` is a deletion too.
//!
//! <https://docs.gitea.com/usage/webhooks>, <https://forgejo.org/docs/latest/user/webhooks/>

use super::{changed_files, github_style_push, is_test_delivery, keys_for, parse_push};
use super::{verify_hex_hmac, GitEvent, GitProvider, Listing};
use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::support::secret::Secret;

/// What a Gitea push is read by: GitHub's shape, and `commits` for the pushes that come
/// without a head commit.
const KEYS: &[&str] = &[
    "ref",
    "before",
    "after",
    "deleted",
    "head_commit",
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

/// Gitea, or Forgejo (its fork, which names itself in its own headers and sends Gitea's
/// too): each header is looked up by its names in order.
pub struct Gitea {
    provider: Provider,
    event: &'static [&'static str],
    delivery: &'static [&'static str],
    signature: &'static [&'static str],
}

impl Gitea {
    pub const GITEA: Gitea = Gitea {
        provider: Provider::Gitea,
        event: &["x-gitea-event"],
        delivery: &["x-gitea-delivery"],
        signature: &["x-gitea-signature"],
    };
    pub const FORGEJO: Gitea = Gitea {
        provider: Provider::Forgejo,
        event: &["x-forgejo-event", "x-gitea-event"],
        delivery: &["x-forgejo-delivery", "x-gitea-delivery"],
        signature: &["x-forgejo-signature", "x-gitea-signature"],
    };
}

impl GitProvider for Gitea {
    fn provider(&self) -> Provider {
        self.provider
    }

    fn delivery_id(&self, headers: &Headers) -> Option<String> {
        self.delivery
            .iter()
            .find_map(|name| headers.get_nonempty(name))
            .map(String::from)
    }

    fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        secret: &Secret,
        _now_ms: u64,
    ) -> Result<(), Error> {
        verify_hex_hmac(headers, self.signature, body, secret)
    }

    fn parse(&self, headers: &Headers, json: &[u8], files: bool) -> Result<GitEvent, Error> {
        let event = self
            .event
            .iter()
            .find_map(|name| headers.get(name))
            .unwrap_or_default();
        if event != "push" {
            return Ok(GitEvent::Other(event.to_string()));
        }
        let p = parse_push(json, "Gitea push", &keys_for(KEYS, files))?;
        if is_test_delivery(&p) {
            return Ok(GitEvent::Ping);
        }
        let mut push = github_style_push(&p, &[], "Gitea push")?;
        if files {
            // Gitea and Forgejo cut the list to `[ui] FEED_MAX_COMMIT_NUM` (5 unless
            // changed); `total_commits` counts them all.
            push.files = changed_files(
                &p,
                &Listing {
                    name: match self.provider {
                        Provider::Forgejo => "Forgejo",
                        _ => "Gitea",
                    },
                    total: Some("total_commits"),
                    cut_flag: None,
                    max_commits: None,
                    max_files: None,
                },
            );
        }
        Ok(GitEvent::Push(push))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::headers;

    /// `python3 -c 'import hmac,hashlib; print(hmac.new(b"gitea-hook-secret",
    /// b"{\"ref\":\"refs/heads/main\"}", hashlib.sha256).hexdigest())'`
    const BODY: &[u8] = br#"{"ref":"refs/heads/main"}"#;
    const SIGNATURE: &str = "4f402aed19d549de47630a1df6fa588e641728bf465173db2b5a7183be562bc3";

    #[test]
    fn known_answer_for_gitea_and_forgejo() {
        let secret = Secret::new("gitea-hook-secret");
        let gitea = headers(&[("x-gitea-signature", SIGNATURE)]);
        let forgejo = headers(&[("x-forgejo-signature", SIGNATURE)]);
        assert_eq!(Gitea::GITEA.verify(&gitea, BODY, &secret, 0), Ok(()));
        assert_eq!(Gitea::FORGEJO.verify(&forgejo, BODY, &secret, 0), Ok(()));
        assert_eq!(Gitea::FORGEJO.verify(&gitea, BODY, &secret, 0), Ok(()));
        assert_eq!(
            Gitea::GITEA.verify(&forgejo, BODY, &secret, 0),
            Err(Error::Unauthorized("missing signature"))
        );
        assert_eq!(
            Gitea::GITEA.verify(&gitea, b"{}", &secret, 0),
            Err(Error::Unauthorized("invalid signature"))
        );
    }

    #[test]
    fn an_empty_signature_is_missing_not_a_pass() {
        // what Gitea sends for a hook without a secret
        let empty = headers(&[
            ("x-gitea-signature", ""),
            ("x-gogs-signature", ""),
            ("x-hub-signature", ""),
            ("x-hub-signature-256", ""),
        ]);
        for secret in ["gitea-hook-secret", ""] {
            assert_eq!(
                Gitea::GITEA.verify(&empty, BODY, &Secret::new(secret), 0),
                Err(Error::Unauthorized("missing signature"))
            );
        }
        // a Gogs signature alone is not Gitea's
        let gogs = headers(&[("x-gogs-signature", SIGNATURE)]);
        assert!(Gitea::GITEA
            .verify(&gogs, BODY, &Secret::new("gitea-hook-secret"), 0)
            .is_err());
    }

    #[test]
    fn delivery_and_event_names() {
        let h = headers(&[
            ("x-forgejo-delivery", "f-1"),
            ("x-gitea-delivery", "g-1"),
            ("x-gitea-event", "issues"),
        ]);
        assert_eq!(Gitea::FORGEJO.delivery_id(&h).as_deref(), Some("f-1"));
        assert_eq!(Gitea::GITEA.delivery_id(&h).as_deref(), Some("g-1"));
        assert_eq!(
            Gitea::FORGEJO.parse(&h, b"{}", false),
            Ok(GitEvent::Other("issues".into()))
        );
        assert_eq!(Gitea::FORGEJO.provider(), Provider::Forgejo);
        assert_eq!(Gitea::GITEA.provider(), Provider::Gitea);
    }
}
