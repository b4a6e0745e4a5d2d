//! Commit statuses (placeholder until the builders land).

use super::{Forge, State};
use crate::model::OutboundRequest;
use crate::support::secret::Secret;

pub fn forge_named(s: &str) -> Result<Forge, &'static str> {
    match s {
        "github" => Ok(Forge::Github),
        "gitlab" => Ok(Forge::Gitlab),
        "gitea" => Ok(Forge::Gitea),
        "forgejo" => Ok(Forge::Forgejo),
        "bitbucket" => Ok(Forge::Bitbucket),
        "gogs" => Err("Gogs has no commit status API"),
        "gitee" => Err("Gitee has no commit status API"),
        _ => Err("must be github, gitlab, gitea, forgejo or bitbucket"),
    }
}

pub fn guess_forge(repo: &str) -> Option<Result<Forge, &'static str>> {
    if repo.contains("github.com") {
        Some(Ok(Forge::Github))
    } else {
        None
    }
}

pub struct Target {
    pub forge: Forge,
    pub origin: String,
    api: String,
}

pub fn target(forge: Forge, repo: &str) -> Result<Target, &'static str> {
    let path = repo.strip_prefix("https://github.com/").ok_or("bad repo")?;
    Ok(Target {
        forge,
        origin: "https://api.github.com".into(),
        api: format!("https://api.github.com/repos/{}", path.trim_end_matches(".git")),
    })
}

pub fn valid_sha(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn request(
    target: &Target,
    token: &Secret,
    sha: &str,
    state: State,
    context: &str,
    description: &str,
    target_url: Option<&str>,
) -> OutboundRequest {
    let state = match state {
        State::Pending => "pending",
        State::Success => "success",
        State::Failure => "failure",
    };
    OutboundRequest {
        method: "POST".into(),
        url: format!("{}/statuses/{sha}", target.api),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), format!("Bearer {}", token.expose())),
        ],
        body: serde_json::to_vec(&serde_json::json!({"state": state, "context": context,
            "description": description, "target_url": target_url}))
        .unwrap(),
    }
}

pub fn check_answer(status: u16, _body: &[u8]) -> Result<(), String> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}
