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
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn api(forge: Forge, repo: &str) -> (String, String) {
        let t = target(forge, repo).unwrap_or_else(|e| panic!("{repo}: {e}"));
        assert_eq!(t.forge, forge);
        (t.origin, t.api)
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn body(r: &OutboundRequest) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn forge_named_accepts_five_and_explains_the_others() {
        let named = [
            ("github", Forge::Github),
            ("gitlab", Forge::Gitlab),
            ("gitea", Forge::Gitea),
            ("forgejo", Forge::Forgejo),
            ("bitbucket", Forge::Bitbucket),
        ];
        for (name, forge) in named {
            assert_eq!(forge_named(name), Ok(forge));
        }
        assert_eq!(forge_named("gogs"), Err("Gogs has no commit status API"));
        assert_eq!(forge_named("gitee"), Err("Gitee has no commit status API"));
        for other in ["", "GitHub", "gitlab.com", "dockerhub"] {
            assert_eq!(
                forge_named(other),
                Err("must be one of github, gitlab, gitea, forgejo, bitbucket")
            );
        }
    }

    #[test]
    fn guess_forge_knows_the_public_hosts_only() {
        let known = [
            ("https://github.com/acme/shop", Forge::Github),
            ("git@github.com:acme/shop.git", Forge::Github),
            ("https://GitLab.com/group/sub/shop", Forge::Gitlab),
            ("https://x@bitbucket.org/acme/shop.git", Forge::Bitbucket),
            ("https://codeberg.org/acme/shop", Forge::Forgejo),
            ("ssh://git@gitea.com/acme/shop.git", Forge::Gitea),
        ];
        for (repo, forge) in known {
            assert_eq!(guess_forge(repo), Some(Ok(forge)), "{repo}");
        }
        let gitee = guess_forge("https://gitee.com/acme/shop");
        assert_eq!(gitee, Some(Err("Gitee has no commit status API")));
        for unknown in [
            "https://git.example.com/acme/shop",
            "https://github.com.evil.example/acme/shop",
            "https://api.github.com/acme/shop",
            "",
            "not a url",
        ] {
            assert_eq!(guess_forge(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn target_reads_every_form_of_repo_url() {
        let github = "https://api.github.com/repos/acme/shop";
        for repo in [
            "https://github.com/acme/shop",
            "https://github.com/acme/shop/",
            "https://github.com/acme/shop.git",
            "http://github.com/acme/shop",
            " https://GitHub.com/acme/shop ",
            "https://token@github.com/acme/shop.git",
            "git@github.com:acme/shop.git",
            "github.com:acme/shop",
            "ssh://git@github.com/acme/shop.git",
            "ssh://git@github.com:22/acme/shop.git",
        ] {
            let got = api(Forge::Github, repo);
            assert_eq!(
                got,
                ("https://api.github.com".into(), github.into()),
                "{repo}"
            );
        }
        let gitea = |o: &str| (o.to_string(), format!("{o}/api/v1/repos/acme/shop"));
        let cases = [
            (
                "https://git.example.com/acme/shop",
                gitea("https://git.example.com"),
            ),
            (
                "http://git.example.com:3000/acme/shop.git",
                gitea("http://git.example.com:3000"),
            ),
            (
                "ssh://git@git.example.com:2222/acme/shop.git",
                gitea("https://git.example.com"),
            ),
            (
                "git@git.example.com:acme/shop.git",
                gitea("https://git.example.com"),
            ),
            (
                "git@git.example.com:/acme/shop.git",
                gitea("https://git.example.com"),
            ),
        ];
        for (repo, want) in cases {
            assert_eq!(api(Forge::Gitea, repo), want, "{repo}");
        }
    }

    #[test]
    fn target_follows_each_forge_api_layout() {
        let ghes = api(Forge::Github, "https://ghe.acme.example:8443/acme/shop");
        let want = "https://ghe.acme.example:8443/api/v3/repos/acme/shop";
        assert_eq!(ghes, ("https://ghe.acme.example:8443".into(), want.into()));

        let gitlab = api(
            Forge::Gitlab,
            "https://gitlab.example.com/group/sub/shop.git",
        );
        let want = "https://gitlab.example.com/api/v4/projects/group%2Fsub%2Fshop";
        assert_eq!(gitlab, ("https://gitlab.example.com".into(), want.into()));
        let gitlab = api(Forge::Gitlab, "git@gitlab.com:acme/my-shop.v2.git");
        let want = "https://gitlab.com/api/v4/projects/acme%2Fmy-shop.v2";
        assert_eq!(gitlab, ("https://gitlab.com".into(), want.into()));

        let forgejo = api(Forge::Forgejo, "https://example.com/git/acme/shop");
        let want = "https://example.com/git/api/v1/repos/acme/shop";
        assert_eq!(forgejo, ("https://example.com".into(), want.into()));

        let bitbucket = api(Forge::Bitbucket, "git@bitbucket.org:acme/shop.git");
        let want = "https://api.bitbucket.org/2.0/repositories/acme/shop";
        assert_eq!(bitbucket, ("https://api.bitbucket.org".into(), want.into()));
    }

    #[test]
    fn target_refuses_what_it_cannot_read() {
        let refused = [
            (Forge::Github, "", "git.report needs git.repo"),
            (Forge::Github, "  ", "git.report needs git.repo"),
            (
                Forge::Gitea,
                "https://git.example.com/acme/shop?x=1",
                "git.repo must not have a query or a fragment",
            ),
            (
                Forge::Gitea,
                "https://git.example.com/acme/shop#readme",
                "git.repo must not have a query or a fragment",
            ),
            (
                Forge::Gitea,
                "https://me:hunter2@git.example.com/acme/shop",
                "git.repo must not hold a password",
            ),
            (
                Forge::Gitea,
                "ssh://git:pw@git.example.com/acme/shop",
                "git.repo must not hold a password",
            ),
            (Forge::Gitea, "ftp://git.example.com/acme/shop", NOT_A_URL),
            (Forge::Gitea, "/srv/git/shop.git", NOT_A_URL),
            (Forge::Gitea, "./a:b/c", NOT_A_URL),
            (
                Forge::Gitea,
                "https:///acme/shop",
                "git.repo has no valid host",
            ),
            (
                Forge::Gitea,
                "https://git.example.com:x/acme/shop",
                "git.repo has no valid host",
            ),
            (
                Forge::Gitea,
                "https://git.example.com:+80/acme/shop",
                "git.repo has no valid host",
            ),
            (
                Forge::Gitea,
                "https://git.example.com:70000/acme/shop",
                "git.repo has no valid host",
            ),
            (
                Forge::Gitea,
                "https://git_example.com/acme/shop",
                "git.repo has no valid host",
            ),
            (
                Forge::Gitea,
                "https://git.example.com",
                "git.repo must name a repository: host/owner/repo",
            ),
            (
                Forge::Gitea,
                "https://git.example.com/shop.git/",
                "git.repo must name a repository: host/owner/repo",
            ),
            (
                Forge::Gitea,
                "git@git.example.com:shop",
                "git.repo must name a repository: host/owner/repo",
            ),
            (
                Forge::Gitea,
                "https://git.example.com/acme/../shop",
                "git.repo's path segments may hold only letters, digits, '-', '.', '_' and '~', and not be empty, . or ..",
            ),
            (
                Forge::Gitea,
                "https://git.example.com/acme//shop",
                "git.repo's path segments may hold only letters, digits, '-', '.', '_' and '~', and not be empty, . or ..",
            ),
            (
                Forge::Gitea,
                "https://git.example.com/acme/sh%2Fop",
                "git.repo's path segments may hold only letters, digits, '-', '.', '_' and '~', and not be empty, . or ..",
            ),
            (
                Forge::Github,
                "https://github.com/acme/shop/tree/main",
                "a GitHub repository URL is https://github.com/owner/repo",
            ),
            (
                Forge::Github,
                "https://ghe.example.com/x/acme/shop",
                "a GitHub repository URL is https://host/owner/repo",
            ),
            (
                Forge::Bitbucket,
                "https://bitbucket.org/acme/shop/src",
                "a Bitbucket repository URL is https://bitbucket.org/workspace/repo",
            ),
            (
                Forge::Bitbucket,
                "https://bitbucket.acme.example/scm/acme/shop.git",
                "Bitbucket statuses need a bitbucket.org repository (Bitbucket Cloud)",
            ),
        ];
        for (forge, repo, why) in refused {
            assert_eq!(target(forge, repo), Err(why), "{repo}");
        }
    }

    #[test]
    fn github_request() {
        let t = target(Forge::Github, "https://github.com/acme/shop").unwrap();
        let token = Secret::new("ghp_secret");
        let link = Some("https://deploy.example/d/1");
        let r = request(
            &t,
            &token,
            SHA,
            State::Pending,
            "autodeploy/shop",
            "Deploy requested",
            link,
        );
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.url,
            format!("https://api.github.com/repos/acme/shop/statuses/{SHA}")
        );
        let want = headers(&[
            ("content-type", "application/json"),
            ("authorization", "Bearer ghp_secret"),
            ("accept", "application/vnd.github+json"),
            ("x-github-api-version", "2022-11-28"),
            ("user-agent", "autodeploy"),
        ]);
        assert_eq!(r.headers, want);
        let want = json!({"state": "pending", "target_url": "https://deploy.example/d/1",
            "description": "Deploy requested", "context": "autodeploy/shop"});
        assert_eq!(body(&r), want);
        for (state, name) in [(State::Success, "success"), (State::Failure, "failure")] {
            let r = request(&t, &token, SHA, state, "c", "d", None);
            assert_eq!(
                body(&r),
                json!({"state": name, "description": "d", "context": "c"})
            );
        }
    }

    #[test]
    fn gitlab_request() {
        let t = target(Forge::Gitlab, "https://gitlab.example.com/group/sub/shop").unwrap();
        let token = Secret::new("glpat-secret");
        let link = Some("https://deploy.example/d/1");
        let r = request(
            &t,
            &token,
            SHA,
            State::Failure,
            "autodeploy",
            "Deploy failed",
            link,
        );
        assert_eq!(r.method, "POST");
        let want = "https://gitlab.example.com/api/v4/projects/group%2Fsub%2Fshop/statuses/";
        assert_eq!(r.url, format!("{want}{SHA}"));
        let want = headers(&[
            ("content-type", "application/json"),
            ("private-token", "glpat-secret"),
        ]);
        assert_eq!(r.headers, want);
        let want = json!({"state": "failed", "name": "autodeploy",
            "target_url": "https://deploy.example/d/1", "description": "Deploy failed"});
        assert_eq!(body(&r), want);
        for (state, name) in [(State::Pending, "pending"), (State::Success, "success")] {
            let r = request(&t, &token, SHA, state, "c", "d", None);
            assert_eq!(
                body(&r),
                json!({"state": name, "name": "c", "description": "d"})
            );
        }
    }

    #[test]
    fn gitea_and_forgejo_request() {
        for forge in [Forge::Gitea, Forge::Forgejo] {
            let t = target(forge, "https://git.example.com/acme/shop").unwrap();
            let token = Secret::new("tea-secret");
            let link = Some("https://deploy.example/d/1");
            let r = request(
                &t,
                &token,
                SHA,
                State::Success,
                "autodeploy",
                "Deployed",
                link,
            );
            assert_eq!(r.method, "POST");
            let want = "https://git.example.com/api/v1/repos/acme/shop/statuses/";
            assert_eq!(r.url, format!("{want}{SHA}"));
            let want = headers(&[
                ("content-type", "application/json"),
                ("authorization", "token tea-secret"),
            ]);
            assert_eq!(r.headers, want);
            let want = json!({"state": "success", "target_url": "https://deploy.example/d/1",
                "description": "Deployed", "context": "autodeploy"});
            assert_eq!(body(&r), want);
            for (state, name) in [(State::Pending, "pending"), (State::Failure, "failure")] {
                let r = request(&t, &token, SHA, state, "c", "d", None);
                assert_eq!(
                    body(&r),
                    json!({"state": name, "description": "d", "context": "c"})
                );
            }
        }
    }

    #[test]
    fn bitbucket_request() {
        let t = target(Forge::Bitbucket, "https://bitbucket.org/acme/shop").unwrap();
        let token = Secret::new("bb-secret");
        let link = Some("https://deploy.example/d/1");
        let r = request(
            &t,
            &token,
            SHA,
            State::Pending,
            "autodeploy",
            "Deploying",
            link,
        );
        assert_eq!(r.method, "POST");
        let want = "https://api.bitbucket.org/2.0/repositories/acme/shop/commit/";
        assert_eq!(r.url, format!("{want}{SHA}/statuses/build"));
        let want = headers(&[
            ("content-type", "application/json"),
            ("authorization", "Bearer bb-secret"),
        ]);
        assert_eq!(r.headers, want);
        let want = json!({"key": "autodeploy", "state": "INPROGRESS", "name": "autodeploy",
            "url": "https://deploy.example/d/1", "description": "Deploying"});
        assert_eq!(body(&r), want);
        for (state, name) in [(State::Success, "SUCCESSFUL"), (State::Failure, "FAILED")] {
            let r = request(&t, &token, SHA, state, "c", "d", None);
            let want = json!({"key": "c", "state": name, "name": "c", "description": "d"});
            assert_eq!(body(&r), want);
        }
        // a key is at most 40 characters; the name stays whole
        let long = "autodeploy/production-eu-west/shop-frontend";
        let r = request(&t, &token, SHA, State::Success, long, "d", link);
        assert_eq!(body(&r)["key"], "autodeploy/production-eu-west/shop-front");
        assert_eq!(body(&r)["name"], long);
        let exactly_40 = &long[..40];
        let r = request(&t, &token, SHA, State::Success, exactly_40, "d", link);
        assert_eq!(body(&r)["key"], exactly_40);
    }

    #[test]
    fn descriptions_are_cut_to_140_characters() {
        let t = target(Forge::Gitea, "https://git.example.com/acme/shop").unwrap();
        let token = Secret::new("t");
        let long = "é".repeat(150);
        let r = request(&t, &token, SHA, State::Success, "c", &long, None);
        assert_eq!(body(&r)["description"], "é".repeat(140));
        let fits = "é".repeat(140);
        let r = request(&t, &token, SHA, State::Success, "c", &fits, None);
        assert_eq!(body(&r)["description"], fits);
    }

    #[test]
    fn valid_sha_is_7_to_64_hex_digits() {
        for yes in ["0123456", SHA, "ABCDEF0", &"a".repeat(64)] {
            assert!(valid_sha(yes), "{yes}");
        }
        for no in [
            "",
            "012345",
            "012345g",
            "../../x",
            &"a".repeat(65),
            "0123456 ",
        ] {
            assert!(!valid_sha(no), "{no}");
        }
    }

    #[test]
    fn check_answer_reads_the_forge_message() {
        assert_eq!(check_answer(201, b"{}"), Ok(()));
        assert_eq!(check_answer(200, b""), Ok(()));
        assert_eq!(check_answer(299, b"not json"), Ok(()));
        let refused = [
            (
                404,
                &br#"{"message":"Not Found","documentation_url":"x"}"#[..],
                "HTTP 404: Not Found",
            ),
            (
                401,
                br#"{"message":"401 Unauthorized"}"#,
                "HTTP 401: 401 Unauthorized",
            ),
            (
                400,
                br#"{"message":{"state":["is invalid"]}}"#,
                r#"HTTP 400: {"state":["is invalid"]}"#,
            ),
            (
                400,
                br#"{"error":"state does not have a valid value"}"#,
                "HTTP 400: state does not have a valid value",
            ),
            (
                400,
                br#"{"type":"error","error":{"message":"url: required"}}"#,
                "HTTP 400: url: required",
            ),
            (
                403,
                br#"{"message":" line one\nline two "}"#,
                "HTTP 403: line one line two",
            ),
            (502, b"<html>Bad Gateway</html>", "HTTP 502"),
            (500, br#"{"message":""}"#, "HTTP 500"),
            (400, br#"{"message":" ","error":"bad"}"#, "HTTP 400: bad"),
            (422, br#"{"message":42}"#, "HTTP 422"),
            (304, b"", "HTTP 304"),
            (199, b"", "HTTP 199"),
        ];
        for (status, answer, want) in refused {
            assert_eq!(
                check_answer(status, answer),
                Err(want.to_string()),
                "{want}"
            );
        }
        let long = format!(r#"{{"message":"{}"}}"#, "é".repeat(300));
        assert_eq!(
            check_answer(500, long.as_bytes()),
            Err(format!("HTTP 500: {}", "é".repeat(200)))
        );
    }
}
