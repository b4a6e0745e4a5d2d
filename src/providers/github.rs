//! GitHub: `X-GitHub-Event`, `X-GitHub-Delivery`, `X-Hub-Signature-256: sha256=<hex>`.
//!
//! <https://docs.github.com/en/webhooks/webhook-events-and-payloads#push>

use super::{
    changed_files, check_hex_hmac, github_style_push, keys_for, parse_push, GitEvent, GitProvider,
    Listing, GITHUB_STYLE_KEYS,
};
use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::support::secret::Secret;

pub struct GitHub;

/// GitHub lists at most 2,048 commits of a push, and at most 3,000 files of a commit
/// ("Webhook events and payloads", `push`), with no count of what it left out.
const LISTING: Listing = Listing {
    name: "GitHub",
    total: None,
    cut_flag: None,
    max_commits: Some(2048),
    max_files: Some(3000),
};

impl GitProvider for GitHub {
    fn provider(&self) -> Provider {
        Provider::Github
    }

    fn delivery_id(&self, headers: &Headers) -> Option<String> {
        headers.get_nonempty("x-github-delivery").map(String::from)
    }

    fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        secret: &Secret,
        _now_ms: u64,
    ) -> Result<(), Error> {
        verify_hub_signature(headers, "x-hub-signature-256", body, secret)
    }

    fn parse(&self, headers: &Headers, json: &[u8], files: bool) -> Result<GitEvent, Error> {
        match headers.get("x-github-event").unwrap_or_default() {
            "ping" => Ok(GitEvent::Ping),
            "push" => {
                let keys = keys_for(GITHUB_STYLE_KEYS, files);
                let p = parse_push(json, "GitHub push", &keys)?;
                // `head_commit` is always sent (`null` on a deletion)
                let mut push = github_style_push(&p, &["head_commit"], "GitHub push")?;
                if files {
                    push.files = changed_files(&p, &LISTING);
                }
                Ok(GitEvent::Push(push))
            }
            other => Ok(GitEvent::Other(other.to_string())),
        }
    }
}

/// `<header>: sha256=<hex HMAC-SHA256 of the body>`, as GitHub and Bitbucket send it.
pub(crate) fn verify_hub_signature(
    headers: &Headers,
    header: &str,
    body: &[u8],
    secret: &Secret,
) -> Result<(), Error> {
    let value = headers
        .get_nonempty(header)
        .ok_or(Error::Unauthorized("missing signature"))?;
    check_hex_hmac(value.strip_prefix("sha256="), body, secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::headers;

    /// GitHub's documented example: secret "It's a Secret to Everybody", payload
    /// "Hello, World!" (docs: "Validating webhook deliveries").
    #[test]
    fn github_documentation_vector() {
        let h = headers(&[(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        let secret = Secret::new("It's a Secret to Everybody");
        assert_eq!(GitHub.verify(&h, b"Hello, World!", &secret, 0), Ok(()));
        assert_eq!(
            GitHub.verify(&h, b"Hello, World?", &secret, 0),
            Err(Error::Unauthorized("invalid signature"))
        );
        assert_eq!(
            GitHub.verify(&h, b"Hello, World!", &Secret::new("wrong"), 0),
            Err(Error::Unauthorized("invalid signature"))
        );
    }

    #[test]
    fn missing_partial_and_malformed_signatures_fail() {
        let secret = Secret::new("s");
        let cases: &[&[(&str, &str)]] = &[
            &[],
            &[("x-hub-signature-256", "")],
            &[("x-hub-signature-256", "sha1=abcd")],
            &[("x-hub-signature-256", "sha256=zz")],
            &[("x-hub-signature-256", "sha256=757107ea")],
            // the legacy SHA-1 header alone is not enough
            &[(
                "x-hub-signature",
                "sha1=0000000000000000000000000000000000000000",
            )],
        ];
        for case in cases {
            assert!(
                GitHub.verify(&headers(case), b"{}", &secret, 0).is_err(),
                "{case:?}"
            );
        }
    }

    #[test]
    fn parses_ping_push_and_other_events() {
        let ping = headers(&[("x-github-event", "ping")]);
        assert_eq!(GitHub.parse(&ping, b"{}", false), Ok(GitEvent::Ping));
        let issues = headers(&[("x-github-event", "issues")]);
        assert_eq!(
            GitHub.parse(&issues, b"{}", false),
            Ok(GitEvent::Other("issues".into()))
        );

        let push = headers(&[("x-github-event", "push")]);
        let body = br#"{"ref":"refs/heads/feature/x","after":"abc","deleted":false,
            "head_commit":{"id":"abc","message":"go @deploy","author":{"name":"Ann"}},
            "repository":{"html_url":"https://github.com/a/b","clone_url":"https://github.com/a/b.git",
            "ssh_url":"git@github.com:a/b.git","git_url":"git://github.com/a/b.git"}}"#;
        let GitEvent::Push(p) = GitHub.parse(&push, body, false).unwrap() else {
            panic!("not a push")
        };
        assert_eq!(p.git_ref, "refs/heads/feature/x");
        assert!(!p.deleted);
        assert_eq!(p.web_url, "https://github.com/a/b");
        assert_eq!(p.head.unwrap().author, "Ann");

        let deletion =
            br#"{"ref":"refs/heads/x","after":"0000000000000000000000000000000000000000",
            "deleted":true,"head_commit":null,"repository":{"html_url":"https://github.com/a/b"}}"#;
        let GitEvent::Push(p) = GitHub.parse(&push, deletion, false).unwrap() else {
            panic!("not a push")
        };
        assert!(p.deleted);
        assert!(p.head.is_none());

        // `after` and `head_commit` are always sent: without them, malformed, not a deletion
        for (body, why) in [
            (
                &br#"{"ref":"refs/heads/main","head_commit":null,"repository":{}}"#[..],
                "after",
            ),
            (
                br#"{"ref":"refs/heads/main","after":"abc","repository":{}}"#,
                "head_commit",
            ),
        ] {
            assert_eq!(
                GitHub.parse(&push, body, false),
                Err(Error::BadPayload(format!("GitHub push without {why}")))
            );
        }
        assert!(matches!(
            GitHub.parse(&push, b"{\"ref\":1}", false),
            Err(Error::BadPayload(_))
        ));
        assert!(matches!(
            GitHub.parse(&push, b"not json", false),
            Err(Error::BadPayload(_))
        ));
    }
}
