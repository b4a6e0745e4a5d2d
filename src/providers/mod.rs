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
    /// The files the push changed, read only when the app's rules filter on paths.
    pub files: Files,
}

/// The files a push changed, as far as its payload shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Files {
    /// Not read: the app has no path filters.
    #[default]
    NotRead,
    /// Every file the push's commits added, modified or removed, each once, sorted.
    Listed(Vec<String>),
    /// The payload cannot show every changed file, and why.
    Unknown(String),
}

/// The most changed files a push's rules look at: past it, the path filters are not
/// checked (the push deploys).
pub const MAX_FILES: usize = 10_000;

/// How a provider lists a push's commits, to tell a complete list from a cut one.
pub(crate) struct Listing {
    /// The provider's name, for the reason.
    pub name: &'static str,
    /// The member that counts every commit of the push (GitLab's `total_commits_count`).
    pub total: Option<&'static str>,
    /// A member that is `true` when the list was cut (Gitee's `commits_more_than_ten`).
    pub cut_flag: Option<&'static str>,
    /// The most commits the provider lists, when it says so but sends no count.
    pub max_commits: Option<usize>,
    /// The most files the provider lists per commit.
    pub max_files: Option<usize>,
}

/// The members [`changed_files`] reads, for [`parse_push`]'s list.
pub(crate) const FILE_KEYS: &[&str] = &[
    "commits",
    "id",
    "added",
    "modified",
    "removed",
    "total_commits_count",
    "total_commits",
    "commits_more_than_ten",
];

/// `keys` and, when the app filters on paths, [`FILE_KEYS`].
pub(crate) fn keys_for<'k>(keys: &'k [&'k str], files: bool) -> std::borrow::Cow<'k, [&'k str]> {
    if files {
        keys.iter().chain(FILE_KEYS).copied().collect()
    } else {
        std::borrow::Cow::Borrowed(keys)
    }
}

/// The files changed by the commits of a GitHub-shaped `commits` list (`added`,
/// `modified`, `removed` per commit; a rename is a removal and an addition), or why the
/// payload cannot show them all.
pub(crate) fn changed_files(p: &Value, listing: &Listing) -> Files {
    let unknown = |why: String| Files::Unknown(why);
    let Some(commits) = p.get("commits").and_then(Value::as_array) else {
        return unknown(format!("{} sent no commit list", listing.name));
    };
    if commits.is_empty() {
        return unknown(
            "the push lists no commits (a new branch at an existing commit, or a force push \
             to an older one)"
                .into(),
        );
    }
    let listed = commits.len();
    if let Some(total) = listing.total.and_then(|k| p.get(k)?.as_u64()) {
        if total > listed as u64 {
            return unknown(format!(
                "{} listed {listed} of the push's {total} commits",
                listing.name
            ));
        }
    }
    if listing
        .cut_flag
        .is_some_and(|k| p.get(k).and_then(Value::as_bool) == Some(true))
    {
        return unknown(format!(
            "{} listed only {listed} of the push's commits",
            listing.name
        ));
    }
    if let Some(max) = listing.max_commits.filter(|max| listed >= *max) {
        return unknown(format!(
            "{} lists at most {max} commits of a push, and listed {listed}",
            listing.name
        ));
    }
    // Each path once, in order: a JSON object is the set, because the component carries
    // its code already (a sorted `Vec` or a `BTreeSet` of its own added 3 KB).
    let mut files = serde_json::Map::new();
    for c in commits {
        let mut in_commit = 0;
        for list in ["added", "modified", "removed"] {
            let Some(paths) = c.get(list).and_then(Value::as_array) else {
                return unknown(format!("{} did not list a commit's files", listing.name));
            };
            in_commit += paths.len();
            for path in paths.iter().filter_map(Value::as_str) {
                files.insert(path.to_string(), Value::Null);
            }
        }
        if let Some(max) = listing.max_files.filter(|max| in_commit >= *max) {
            return unknown(format!(
                "{} lists at most {max} files of a commit, and listed {in_commit}",
                listing.name
            ));
        }
        if files.len() > MAX_FILES {
            return unknown(format!("the push changed more than {MAX_FILES} files"));
        }
    }
    let files = files.into_iter().map(|(path, _)| path).collect();
    Files::Listed(files)
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

    /// Parses the (already verified, decoded) JSON payload; with `files`, a push's
    /// changed files are read too (else [`Files::NotRead`]).
    fn parse(&self, headers: &Headers, json: &[u8], files: bool) -> Result<GitEvent, Error>;

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
        files: Files::NotRead,
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
mod tests;
