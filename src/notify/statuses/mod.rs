//! Commit statuses: `pending` when a deploy is requested, `success` or `failure` when the
//! platform reports its outcome, posted to the forge named by `git.report.provider`.
//!
//! The API origin comes only from the app's `git.repo`, never from a webhook payload:
//! [`target`] reads it once, [`request`] builds each call and [`check_answer`] reads the
//! forge's answer. Only public APIs are known: github.com or GitHub Enterprise Server,
//! GitLab (a subpath install is not supported: the whole path is the project's),
//! Gitea and Forgejo (the last two path segments are owner/repo, anything before them
//! the install's base path), and Bitbucket Cloud.

use serde_json::{json, Value};

use super::{Forge, State};
use crate::model::OutboundRequest;
use crate::support::secret::Secret;

/// `git.report.provider`: the forge to post statuses to.
pub fn forge_named(s: &str) -> Result<Forge, &'static str> {
    Ok(match s {
        "github" => Forge::Github,
        "gitlab" => Forge::Gitlab,
        "gitea" => Forge::Gitea,
        "forgejo" => Forge::Forgejo,
        "bitbucket" => Forge::Bitbucket,
        "gogs" => return Err("Gogs has no commit status API"),
        "gitee" => return Err(GITEE),
        _ => return Err("must be one of github, gitlab, gitea, forgejo, bitbucket"),
    })
}

const GITEE: &str = "Gitee has no commit status API";

/// The forge of a public host in `git.repo`; `None` for any other host (a self-hosted
/// forge: the user names the provider) or an unreadable `repo`.
pub fn guess_forge(repo: &str) -> Option<Result<Forge, &'static str>> {
    Some(Ok(match parse(repo).ok()?.host.as_str() {
        "github.com" => Forge::Github,
        "gitlab.com" => Forge::Gitlab,
        "bitbucket.org" => Forge::Bitbucket,
        "codeberg.org" => Forge::Forgejo,
        "gitea.com" => Forge::Gitea,
        "gitee.com" => return Some(Err(GITEE)),
        _ => return None,
    }))
}

/// Where an app's commit statuses go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub forge: Forge,
    /// `scheme://host[:port]` the API calls go to (`https://api.github.com` for
    /// github.com), for the outbound allow-list.
    pub origin: String,
    /// The repository's API URL, which each call extends.
    api: String,
}

/// `git.repo` taken apart: lowercase host, the API's origin, path segments without `.git`.
struct Repo<'a> {
    host: String,
    origin: String,
    segments: Vec<&'a str>,
}

fn parse(repo: &str) -> Result<Repo<'_>, &'static str> {
    let repo = repo.trim();
    if repo.is_empty() {
        return Err("git.report needs git.repo");
    }
    if repo.contains(['?', '#']) {
        return Err("git.repo must not have a query or a fragment");
    }
    let (scheme, authority, path) = match repo.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            (scheme.to_ascii_lowercase(), authority, path)
        }
        // scp-like: [user@]host:path, no slash before the colon
        None => match repo.split_once(':') {
            Some((authority, path)) if !authority.contains('/') => ("scp".into(), authority, path),
            _ => return Err(NOT_A_URL),
        },
    };
    let host_port = match authority.rsplit_once('@') {
        Some((user, _)) if user.contains(':') => return Err("git.repo must not hold a password"),
        Some((_, host_port)) => host_port,
        None => authority,
    };
    let (host, port) = match host_port.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (host_port, None),
    };
    let host = host.to_ascii_lowercase();
    let port_ok =
        port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok());
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        || !port_ok
    {
        return Err("git.repo has no valid host");
    }
    let origin = match (scheme.as_str(), port) {
        ("http" | "https", Some(port)) => format!("{scheme}://{host}:{port}"),
        ("http" | "https", None) => format!("{scheme}://{host}"),
        // the API of a forge reached over ssh is assumed at https://host (no ssh port)
        ("ssh" | "scp", _) => format!("https://{host}"),
        _ => return Err(NOT_A_URL),
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() < 2 {
        return Err("git.repo must name a repository: host/owner/repo");
    }
    let valid = |s: &&str| {
        !s.bytes().all(|b| b == b'.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    if !segments.iter().all(valid) {
        return Err("git.repo's path segments may hold only letters, digits, '-', '.', '_' and '~', and not be empty, . or ..");
    }
    Ok(Repo {
        host,
        origin,
        segments,
    })
}

const NOT_A_URL: &str = "git.repo must be an https://, http://, ssh:// or git@host:owner/repo URL";

/// Where `forge`'s statuses for the repository `repo` (`git.repo`) go.
pub fn target(forge: Forge, repo: &str) -> Result<Target, &'static str> {
    let Repo {
        host,
        origin,
        segments,
    } = parse(repo)?;
    let two = |why| match segments[..] {
        [owner, repo] => Ok(format!("{owner}/{repo}")),
        _ => Err(why),
    };
    let (origin, api) = match forge {
        Forge::Github if host == "github.com" => {
            let repo = two("a GitHub repository URL is https://github.com/owner/repo")?;
            (
                "https://api.github.com".to_string(),
                format!("https://api.github.com/repos/{repo}"),
            )
        }
        Forge::Github => {
            let repo = two("a GitHub repository URL is https://host/owner/repo")?;
            let api = format!("{origin}/api/v3/repos/{repo}");
            (origin, api)
        }
        Forge::Gitlab => {
            let id: String =
                form_urlencoded::byte_serialize(segments.join("/").as_bytes()).collect();
            let api = format!("{origin}/api/v4/projects/{id}");
            (origin, api)
        }
        Forge::Gitea | Forge::Forgejo => {
            let (base, repo) = segments.split_at(segments.len() - 2);
            let base: String = base.iter().map(|s| format!("/{s}")).collect();
            let api = format!("{origin}{base}/api/v1/repos/{}/{}", repo[0], repo[1]);
            (origin, api)
        }
        Forge::Bitbucket if host == "bitbucket.org" => {
            let repo = two("a Bitbucket repository URL is https://bitbucket.org/workspace/repo")?;
            (
                "https://api.bitbucket.org".to_string(),
                format!("https://api.bitbucket.org/2.0/repositories/{repo}"),
            )
        }
        Forge::Bitbucket => {
            return Err("Bitbucket statuses need a bitbucket.org repository (Bitbucket Cloud)")
        }
    };
    Ok(Target { forge, origin, api })
}

/// A commit id as [`request`] accepts it: 7 to 64 hex digits.
pub fn valid_sha(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The longest description sent (GitHub's limit, in characters; applied to every forge).
const MAX_DESCRIPTION: usize = 140;
/// The longest Bitbucket status key.
const MAX_BITBUCKET_KEY: usize = 40;

/// `s` cut to at most `n` characters.
fn chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// The call that sets `sha`'s status named `context` (the caller checked [`valid_sha`]).
/// `target_url: None` leaves the link out; Bitbucket requires one (`url`), so the caller
/// always gives it there: without it, Bitbucket refuses the call and [`check_answer`]
/// says why.
pub fn request(
    target: &Target,
    token: &Secret,
    sha: &str,
    state: State,
    context: &str,
    description: &str,
    target_url: Option<&str>,
) -> OutboundRequest {
    let token = token.expose();
    let description = chars(description, MAX_DESCRIPTION);
    let mut headers = vec![("content-type", "application/json".to_string())];
    let (url, mut body, url_member) = match target.forge {
        Forge::Github | Forge::Gitea | Forge::Forgejo => {
            if target.forge == Forge::Github {
                headers.extend([
                    ("authorization", format!("Bearer {token}")),
                    ("accept", "application/vnd.github+json".into()),
                    ("x-github-api-version", "2022-11-28".into()),
                    ("user-agent", "autodeploy".into()),
                ]);
            } else {
                headers.push(("authorization", format!("token {token}")));
            }
            let state = match state {
                State::Pending => "pending",
                State::Success => "success",
                State::Failure => "failure",
            };
            let body = json!({"state": state, "description": description, "context": context});
            (format!("{}/statuses/{sha}", target.api), body, "target_url")
        }
        Forge::Gitlab => {
            headers.push(("private-token", token.to_string()));
            let state = match state {
                State::Pending => "pending",
                State::Success => "success",
                State::Failure => "failed",
            };
            let body = json!({"state": state, "name": context, "description": description});
            (format!("{}/statuses/{sha}", target.api), body, "target_url")
        }
        Forge::Bitbucket => {
            headers.push(("authorization", format!("Bearer {token}")));
            let state = match state {
                State::Pending => "INPROGRESS",
                State::Success => "SUCCESSFUL",
                State::Failure => "FAILED",
            };
            let body = json!({
                "key": chars(context, MAX_BITBUCKET_KEY),
                "state": state,
                "name": context,
                "description": description,
            });
            let url = format!("{}/commit/{sha}/statuses/build", target.api);
            (url, body, "url")
        }
    };
    if let (Some(link), Some(members)) = (target_url, body.as_object_mut()) {
        members.insert(url_member.into(), link.into());
    }
    OutboundRequest {
        method: "POST".into(),
        url,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        body: serde_json::to_vec(&body).expect("JSON values serialise"),
    }
}

/// The longest forge message kept in an error.
const MAX_MESSAGE: usize = 200;

/// Reads the forge's answer: `Ok` for 2xx, else `HTTP {status}` and the forge's own
/// message when its JSON has one (`message`, as GitHub, GitLab and Gitea say it, or
/// Bitbucket's `error.message`, or GitLab's string `error`).
pub fn check_answer(status: u16, body: &[u8]) -> Result<(), String> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let parsed = crate::support::json::parse(body).unwrap_or_default();
    let message = [
        &parsed["message"],
        &parsed["error"]["message"],
        &parsed["error"],
    ]
    .into_iter()
    .find_map(|m| {
        let text = match m {
            Value::String(s) => s.clone(),
            // GitLab's validation errors: {"message": {"state": ["is invalid"]}}
            Value::Object(_) | Value::Array(_) => m.to_string(),
            _ => return None,
        };
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Some(text.trim().to_string()).filter(|t| !t.is_empty())
    });
    Err(match message {
        Some(m) => format!("HTTP {status}: {}", chars(&m, MAX_MESSAGE)),
        None => format!("HTTP {status}"),
    })
}

#[cfg(test)]
mod tests;
