//! Bitbucket Cloud: `X-Event-Key`, `X-Request-UUID`, and (when the webhook has a secret)
//! `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>`.
//!
//! `repo:push` deploys. One push may update several refs (`push.changes[]`); the first
//! change whose `new` is a branch is read, else the first change (a tag, or a deletion,
//! which has `new: null` and names the ref in `old`; a change without `new`, or a `new`
//! without its `target`, is malformed). The head commit is `new.target`; its author is the git author's name from `author.raw`
//! (`Name <email>`), else the Bitbucket account's display name. `diagnostics:ping` is a
//! ping; other events are ignored.
//!
//! <https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/#Push>,
//! <https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/#Secure-webhooks>

use serde_json::Value;

use super::github::verify_hub_signature;
use super::{parse_push, str_at, Commit, Files, GitEvent, GitProvider, Push};
use crate::error::Error;
use crate::model::{Headers, Provider};
use crate::support::secret::Secret;

pub struct Bitbucket;

impl GitProvider for Bitbucket {
    fn provider(&self) -> Provider {
        Provider::Bitbucket
    }

    fn delivery_id(&self, headers: &Headers) -> Option<String> {
        headers.get_nonempty("x-request-uuid").map(String::from)
    }

    fn verify(
        &self,
        headers: &Headers,
        body: &[u8],
        secret: &Secret,
        _now_ms: u64,
    ) -> Result<(), Error> {
        verify_hub_signature(headers, "x-hub-signature", body, secret)
    }

    fn parse(&self, headers: &Headers, json: &[u8], files: bool) -> Result<GitEvent, Error> {
        match headers.get("x-event-key").unwrap_or_default() {
            "diagnostics:ping" => Ok(GitEvent::Ping),
            "repo:push" => {
                let mut push = push(&parse_push(json, "Bitbucket push", KEYS)?)?;
                if files {
                    push.files =
                        Files::Unknown("Bitbucket Cloud does not list changed files".into());
                }
                Ok(GitEvent::Push(push))
            }
            other => Ok(GitEvent::Other(other.to_string())),
        }
    }
}

/// Every member [`push`] and [`author_name`] read.
const KEYS: &[&str] = &[
    "push",
    "changes",
    "new",
    "old",
    "type",
    "name",
    "target",
    "hash",
    "message",
    "author",
    "raw",
    "user",
    "display_name",
    "repository",
    "full_name",
    "links",
    "html",
    "href",
];

fn push(p: &Value) -> Result<Push, Error> {
    let bad = |why: &str| Error::BadPayload(format!("Bitbucket push {why}"));
    let changes = p
        .pointer("/push/changes")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("without push.changes"))?;
    let change = changes
        .iter()
        .find(|c| str_at(c, "/new/type") == Some("branch"))
        .or(changes.first())
        .ok_or_else(|| bad("with no change"))?;
    // `new` is always sent, `null` when the ref was deleted; a branch or tag always
    // names its commit in `target`. Without them the push is malformed, not a deletion.
    let new = change.get("new").ok_or_else(|| bad("change without new"))?;
    let new = new.is_object().then_some(new);
    if new.is_some_and(|n| !n.get("target").is_some_and(Value::is_object)) {
        return Err(bad("ref without target"));
    }
    let named = new
        .or(change.get("old").filter(|o| o.is_object()))
        .ok_or_else(|| bad("change without new or old ref"))?;
    let name = str_at(named, "/name").ok_or_else(|| bad("ref without name"))?;
    let git_ref = match str_at(named, "/type").unwrap_or_default() {
        "branch" => format!("refs/heads/{name}"),
        "tag" => format!("refs/tags/{name}"),
        other => format!("refs/{other}/{name}"),
    };
    let head = new
        .and_then(|n| n.get("target"))
        .filter(|t| t.is_object())
        .map(|t| Commit {
            id: str_at(t, "/hash").unwrap_or_default().into(),
            message: str_at(t, "/message").unwrap_or_default().into(),
            author: author_name(t),
        });
    let full_name = str_at(p, "/repository/full_name").unwrap_or_default();
    let canonical = format!("https://bitbucket.org/{full_name}");
    let web_url = str_at(p, "/repository/links/html/href")
        .filter(|u| !u.is_empty())
        .map_or_else(|| canonical.clone(), String::from);
    let mut urls = vec![web_url.clone()];
    if !full_name.is_empty() && canonical != web_url {
        urls.push(canonical);
    }
    // A new ref has no `old`: its push is named by an empty `before`.
    let before = str_at(change, "/old/target/hash")
        .unwrap_or_default()
        .into();
    Ok(Push {
        git_ref,
        deleted: head.is_none(),
        head,
        before: Some(before),
        files: Files::NotRead,
        web_url,
        urls,
    })
}

/// `author.raw` is `Name <email>`; a commit by someone without an account has only that.
fn author_name(target: &Value) -> String {
    let raw = str_at(target, "/author/raw").unwrap_or_default();
    let name = raw.split('<').next().unwrap_or_default().trim();
    if name.is_empty() {
        str_at(target, "/author/user/display_name")
            .unwrap_or_default()
            .into()
    } else {
        name.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testutil::headers;

    /// `python3 -c 'import hmac,hashlib; print(hmac.new(b"bitbucket-hook-secret",
    /// b"{\"push\":{\"changes\":[]}}", hashlib.sha256).hexdigest())'`
    const BODY: &[u8] = br#"{"push":{"changes":[]}}"#;
    const SIGNATURE: &str =
        "sha256=0d7303b454f071f6e6aa444cc034f405ce915de1f1319f62b218d475e6dfa55b";

    #[test]
    fn known_answer_and_rejections() {
        let secret = Secret::new("bitbucket-hook-secret");
        let ok = headers(&[("x-hub-signature", SIGNATURE)]);
        assert_eq!(Bitbucket.verify(&ok, BODY, &secret, 0), Ok(()));
        assert_eq!(
            Bitbucket.verify(&ok, b"{}", &secret, 0),
            Err(Error::Unauthorized("invalid signature"))
        );
        // a webhook without a secret sends no signature: refused
        assert_eq!(
            Bitbucket.verify(&headers(&[]), BODY, &secret, 0),
            Err(Error::Unauthorized("missing signature"))
        );
        let bare = headers(&[("x-hub-signature", &SIGNATURE[7..])]);
        assert_eq!(
            Bitbucket.verify(&bare, BODY, &secret, 0),
            Err(Error::Unauthorized("invalid signature"))
        );
    }

    #[test]
    fn the_branch_change_wins_and_authors_come_from_raw() {
        let h = headers(&[("x-event-key", "repo:push")]);
        let body = br#"{"repository":{"full_name":"a/b"},"push":{"changes":[
            {"new":{"type":"tag","name":"v1","target":{"hash":"t"}}},
            {"new":{"type":"branch","name":"feature/x","target":{"hash":"c","message":"m",
              "author":{"raw":"Ann Dev <ann@example.com>","user":{"display_name":"Ann D."}}}}}]}}"#;
        let GitEvent::Push(p) = Bitbucket.parse(&h, body, false).unwrap() else {
            panic!("not a push")
        };
        assert_eq!(p.git_ref, "refs/heads/feature/x");
        assert_eq!(p.web_url, "https://bitbucket.org/a/b");
        let head = p.head.unwrap();
        assert_eq!((head.id.as_str(), head.author.as_str()), ("c", "Ann Dev"));

        let no_raw = serde_json::json!({"author": {"user": {"display_name": "Ann D."}}});
        assert_eq!(author_name(&no_raw), "Ann D.");

        for bad in [
            &b"{}"[..],
            br#"{"push":{"changes":[]}}"#,
            br#"{"push":{"changes":[{}]}}"#,
            // no `new` at all is not a deletion
            br#"{"push":{"changes":[{"old":{"type":"branch","name":"main","target":{"hash":"a"}}}]}}"#,
            // nor is a new branch without its commit
            br#"{"push":{"changes":[{"new":{"type":"branch","name":"main"},"old":null}]}}"#,
        ] {
            assert!(matches!(
                Bitbucket.parse(&h, bad, false),
                Err(Error::BadPayload(_))
            ));
        }
    }
}
