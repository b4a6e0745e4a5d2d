//! Gitee: `X-Gitee-Event`, and `X-Gitee-Token` holding either the webhook's password as
//! it is, or — with a signing key — `base64(HMAC-SHA256(key, timestamp + "\n" + key))`
//! where `timestamp` is `X-Gitee-Timestamp` (milliseconds), accepted within one hour of
//! now. Gitee's documentation URL-encodes the signature; what it sends is plain base64,
//! so both are accepted.
//!
//! The signature does not cover the body, and Gitee sends no delivery id: deliveries are
//! de-duplicated by the body's hash ([`GitProvider::delivery_id`] is `None`).
//!
//! `Push Hook` and `Tag Push Hook` are read the same way (the rules tell a `refs/tags/…`
//! ref apart: it deploys only when `git.tags` names the tag). The "Test" button sends
//! `X-Gitee-Ping: true`: a ping.
//!
//! <https://help.gitee.com/webhook/gitee-webhook-push-data-format>,
//! <https://help.gitee.com/webhook/how-to-verify-webhook-keys>

use super::{changed_files, github_style_push, keys_for, parse_push, GitEvent, GitProvider};
use super::{Listing, GITHUB_STYLE_KEYS};
use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::support::crypto::{unbase64, unhex, verify_hmac_sha256};
use crate::support::secret::Secret;

/// Gitee lists at most 10 commits of a push: `commits_more_than_ten` says when it left
/// some out, `total_commits_count` counts them all.
const LISTING: Listing = Listing {
    name: "Gitee",
    total: Some("total_commits_count"),
    cut_flag: Some("commits_more_than_ten"),
    max_commits: None,
    max_files: None,
};

pub struct Gitee;

/// How far `X-Gitee-Timestamp` may be from now, either way.
pub const MAX_SKEW_MS: u64 = 60 * 60 * 1000;

/// How long a signature that deployed is remembered: longer than the two hours
/// (either side of its timestamp) during which it verifies.
pub const SIGNATURE_REMEMBERED_MS: u64 = 2 * MAX_SKEW_MS + 10 * 60 * 1000;

const INVALID: Error = Error::Unauthorized("invalid token");

impl GitProvider for Gitee {
    fn provider(&self) -> Provider {
        Provider::Gitee
    }

    fn delivery_id(&self, _headers: &Headers) -> Option<String> {
        None
    }

    fn verify(
        &self,
        headers: &Headers,
        _body: &[u8],
        secret: &Secret,
        now_ms: u64,
    ) -> Result<(), Error> {
        let token = headers
            .get_nonempty("x-gitee-token")
            .ok_or(Error::Unauthorized("missing token"))?;
        if secret.matches(token.as_bytes()) {
            return Ok(());
        }
        let timestamp = headers.get_nonempty("x-gitee-timestamp").ok_or(INVALID)?;
        let ms: u64 = timestamp.parse().map_err(|_| INVALID)?;
        // Checked before the signature, so the answer says nothing about the signature.
        if ms.abs_diff(now_ms) > MAX_SKEW_MS {
            return Err(Error::Unauthorized("expired token"));
        }
        let signature = percent_decode(token)
            .and_then(|t| unbase64(&t))
            .ok_or(INVALID)?;
        let key = secret.expose();
        let signed = format!("{timestamp}\n{key}");
        if key.is_empty() || !verify_hmac_sha256(key.as_bytes(), signed.as_bytes(), &signature) {
            return Err(INVALID);
        }
        Ok(())
    }

    /// The signature covers only the timestamp: without this name, one captured
    /// `X-Gitee-Token` would deploy any body, once per body, for an hour. Named by the
    /// timestamp and the decoded signature (its URL-encoded and plain forms are one).
    fn replay_name(&self, headers: &Headers) -> Option<(String, u64)> {
        let timestamp = headers.get_nonempty("x-gitee-timestamp")?;
        let token = headers.get_nonempty("x-gitee-token")?;
        let signature = percent_decode(token).and_then(|t| unbase64(&t))?;
        let mut named = timestamp.as_bytes().to_vec();
        named.push(b'\n');
        named.extend_from_slice(&signature);
        Some((
            format!("gitee-{}", crate::support::crypto::sha256_hex(&named)),
            SIGNATURE_REMEMBERED_MS,
        ))
    }

    fn parse(&self, headers: &Headers, json: &[u8], files: bool) -> Result<GitEvent, Error> {
        if headers.get("x-gitee-ping") == Some("true") {
            return Ok(GitEvent::Ping);
        }
        match headers.get("x-gitee-event").unwrap_or_default() {
            "Push Hook" | "Tag Push Hook" | "push_hooks" | "tag_push_hooks" => {
                let p = parse_push(json, "Gitee push", &keys_for(GITHUB_STYLE_KEYS, files))?;
                let mut push = github_style_push(&p, &[], "Gitee push")?;
                if files {
                    push.files = changed_files(&p, &LISTING);
                }
                Ok(GitEvent::Push(push))
            }
            other => Ok(GitEvent::Other(other.to_string())),
        }
    }
}

/// Decodes `%XX` escapes (plain base64 has none, so this is a no-op for it).
fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&c, tail)) = rest.split_first() {
        if c == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            out.push(unhex(hex)?[0]);
            rest = &tail[2..];
        } else {
            out.push(c);
            rest = tail;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::headers;

    const KEY: &str = "bBg5lrt03VixkX85CNqYIcecC0SIGASE";
    const TIMESTAMP: &str = "1633679083918";
    /// Gitee's known answer for KEY and TIMESTAMP; also
    /// `python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(
    /// b"bBg5lrt03VixkX85CNqYIcecC0SIGASE", b"1633679083918\nbBg5lrt03VixkX85CNqYIcecC0SIGASE",
    /// hashlib.sha256).digest()).decode())'`.
    const SIGNATURE: &str = "Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck=";
    const NOW: u64 = 1_633_679_083_918;

    fn signed(token: &str, timestamp: &str) -> Headers {
        headers(&[("x-gitee-token", token), ("x-gitee-timestamp", timestamp)])
    }

    #[test]
    fn known_answer_plain_and_url_encoded() {
        let key = Secret::new(KEY);
        assert_eq!(
            Gitee.verify(&signed(SIGNATURE, TIMESTAMP), b"", &key, NOW),
            Ok(())
        );
        let encoded = "Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck%3D";
        assert_eq!(
            Gitee.verify(&signed(encoded, TIMESTAMP), b"", &key, NOW),
            Ok(())
        );
        let lowercase_escape = "Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVck%3d";
        assert_eq!(
            Gitee.verify(&signed(lowercase_escape, TIMESTAMP), b"", &key, NOW),
            Ok(())
        );
        // the body is not signed: any body passes with a good token
        assert_eq!(
            Gitee.verify(&signed(SIGNATURE, TIMESTAMP), b"{}", &key, NOW),
            Ok(())
        );
    }

    #[test]
    fn the_timestamp_must_be_within_an_hour() {
        let key = Secret::new(KEY);
        let h = signed(SIGNATURE, TIMESTAMP);
        for now in [NOW - MAX_SKEW_MS, NOW + MAX_SKEW_MS] {
            assert_eq!(Gitee.verify(&h, b"", &key, now), Ok(()));
        }
        for now in [
            NOW - MAX_SKEW_MS - 1,
            NOW + MAX_SKEW_MS + 1,
            NOW + 2 * MAX_SKEW_MS,
        ] {
            assert_eq!(
                Gitee.verify(&h, b"", &key, now),
                Err(Error::Unauthorized("expired token"))
            );
        }
    }

    #[test]
    fn wrong_signatures_keys_and_timestamps_fail() {
        let key = Secret::new(KEY);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "missing token"),
            (&[("x-gitee-token", "")], "missing token"),
            // a signature without its timestamp
            (&[("x-gitee-token", SIGNATURE)], "invalid token"),
            // the signature of another timestamp
            (
                &[
                    ("x-gitee-token", SIGNATURE),
                    ("x-gitee-timestamp", "1633679083919"),
                ],
                "invalid token",
            ),
            (
                &[
                    (
                        "x-gitee-token",
                        "Xvh4YPVe6l31XpDRL9J2yeaEXabsckIoUUschpXiVc",
                    ),
                    ("x-gitee-timestamp", TIMESTAMP),
                ],
                "invalid token",
            ),
            (
                &[
                    ("x-gitee-token", "not base64!"),
                    ("x-gitee-timestamp", TIMESTAMP),
                ],
                "invalid token",
            ),
            (
                &[("x-gitee-token", "%zz"), ("x-gitee-timestamp", TIMESTAMP)],
                "invalid token",
            ),
            (
                &[("x-gitee-token", SIGNATURE), ("x-gitee-timestamp", "soon")],
                "invalid token",
            ),
        ];
        for (case, why) in cases {
            assert_eq!(
                Gitee.verify(&headers(case), b"", &key, NOW),
                Err(Error::Unauthorized(why)),
                "{case:?}"
            );
        }
        let other = Secret::new("another signing key");
        assert!(Gitee
            .verify(&signed(SIGNATURE, TIMESTAMP), b"", &other, NOW)
            .is_err());
    }

    #[test]
    fn the_password_mode_compares_the_token_with_the_secret() {
        let password = Secret::new("plain-password-1");
        let h = signed("plain-password-1", TIMESTAMP);
        // the timestamp does not matter for a password
        assert_eq!(Gitee.verify(&h, b"", &password, 0), Ok(()));
        let h = headers(&[("x-gitee-token", "plain-password-1")]);
        assert_eq!(Gitee.verify(&h, b"", &password, 0), Ok(()));
        let h = headers(&[("x-gitee-token", "plain-password-2")]);
        assert_eq!(
            Gitee.verify(&h, b"", &password, 0),
            Err(Error::Unauthorized("invalid token"))
        );
        assert!(Gitee.verify(&h, b"", &Secret::new(""), 0).is_err());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Bb%2fc%3D").as_deref(), Some("a+b/c="));
        assert_eq!(percent_decode("abc").as_deref(), Some("abc"));
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("a%g0"), None);
    }
}
