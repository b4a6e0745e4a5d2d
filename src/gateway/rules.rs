//! The rules that decide whether a verified push deploys this app: the git rules, the
//! image rules, and the app status checked just before the call.

use super::deploy::ImageInfo;
use crate::error::Error;
use crate::providers::rules::{mentions_keyword, parse_ref, repo_matches, skip_marker, GitRef};
use crate::providers::{Files, Push};
use crate::registries::tagpattern::TagPattern;
use crate::registries::{normalize_image, ImagePush, PushedTag};
use crate::state::app::{App, PathRules};
use crate::support::glob::{self, PathFilter};

/// What the git rules decided for a push that deploys.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct GitDeploy {
    /// The branch pushed, for a branch push.
    pub branch: Option<String>,
    /// The tag pushed, for a tag push.
    pub tag: Option<String>,
    /// A rule that could not be checked, and why (said in the answer and the log).
    pub note: Option<String>,
}

/// The git rules, in order; `Err` is the reason the push is ignored.
///
/// ref (a branch, or a tag matching `git.tags`) → not a deletion → repository →
/// branch → skip marker → keyword → paths. A tag push is the deliberate act: it skips
/// the last three.
pub(super) fn git_rules(app: &App, push: &Push) -> Result<GitDeploy, String> {
    let branch = match parse_ref(&push.git_ref) {
        GitRef::Branch(b) => b,
        GitRef::Tag(t) if push.deleted => return Err(format!("tag {t} was deleted")),
        GitRef::Tag(t) => return tag_rules(app, push, t),
        GitRef::Other(r) => return Err(format!("{r} is not a branch or a tag")),
    };
    if push.deleted {
        return Err(format!("branch {branch} was deleted"));
    }
    repository_rule(app, push)?;
    if !glob::name_matches(&app.git.branch, branch) {
        return Err(if glob::is_literal(&app.git.branch) {
            format!("branch {branch} is not {}", app.git.branch)
        } else {
            format!("branch {branch} does not match {}", app.git.branch)
        });
    }
    let message = push
        .head
        .as_ref()
        .map(|c| c.message.as_str())
        .unwrap_or_default();
    if let Some(marker) = skip_marker(message) {
        return Err(format!("the head commit message says {marker}"));
    }
    if !mentions_keyword(message, &app.git.keyword) {
        return Err(format!(
            "no @{} in the head commit message",
            app.git.keyword
        ));
    }
    Ok(GitDeploy {
        branch: Some(branch.into()),
        tag: None,
        note: path_rules(&app.git.paths, &push.files)?,
    })
}

fn repository_rule(app: &App, push: &Push) -> Result<(), String> {
    if repo_matches(&app.git.repo, push.urls.iter().map(String::as_str)) {
        Ok(())
    } else {
        Err(format!(
            "repository {} is not {}",
            push.web_url, app.git.repo
        ))
    }
}

/// A tag push deploys when `git.tags` matches the tag.
fn tag_rules(app: &App, push: &Push, tag: &str) -> Result<GitDeploy, String> {
    let Some(pattern) = app.git.tags.as_deref() else {
        return Err(format!(
            "tag push ({tag}) does not deploy: git.tags is not set"
        ));
    };
    repository_rule(app, push)?;
    if !glob::name_matches(pattern, tag) {
        return Err(format!("tag {tag} does not match git.tags {pattern}"));
    }
    Ok(GitDeploy {
        branch: None,
        tag: Some(tag.into()),
        note: None,
    })
}

/// `git.paths`: `Err` when no changed file counts; `Ok(Some(note))` when the payload
/// cannot show every changed file, so the push deploys unchecked.
fn path_rules(rules: &PathRules, files: &Files) -> Result<Option<String>, String> {
    if !rules.active() {
        return Ok(None);
    }
    let unchecked = |why: &str| Ok(Some(format!("git.paths not checked: {why}")));
    match files {
        Files::Listed(files) if files.is_empty() => {
            unchecked("the push's commits list no changed file (empty or merge commits)")
        }
        Files::Listed(files) => {
            let filter = PathFilter::new(&rules.include, &rules.exclude);
            if files.iter().any(|f| filter.passes(f)) {
                Ok(None)
            } else {
                Err(match files.len() {
                    1 => "the 1 changed file does not match git.paths".to_string(),
                    n => format!("none of the {n} changed files matches git.paths"),
                })
            }
        }
        Files::Unknown(why) => unchecked(why),
        Files::NotRead => unchecked("the push's files were not read"),
    }
}

/// The last check before the call: the app's status must allow a deploy.
pub(super) fn status_gate(app: &App) -> Result<(), Error> {
    if app.status_allows_deploy() {
        Ok(())
    } else {
        Err(Error::StatusNotDeployable(app.status.clone()))
    }
}

/// The image rules, in order; `Ok` is the pushed image to deploy, `Err` the reason the
/// push is ignored. Repositories compare after [`normalize_image`]; with `tag_pattern` set
/// the first pushed tag it matches in full deploys, else the first equal to `tag`.
pub(super) fn image_rules(app: &App, mut push: ImagePush) -> Result<ImageInfo, String> {
    let wanted = app
        .image
        .repository
        .as_deref()
        .map(|r| normalize_image(r).repository)
        .ok_or("image.repository is not set")?;
    if push.repository != wanted {
        return Err(format!("repository {} is not {wanted}", push.repository));
    }
    if push.tags.is_empty() {
        return Err("untagged (digest-only) pushes do not deploy".into());
    }
    let pattern = match app.image.tag_pattern.as_deref() {
        Some(p) => Some(
            TagPattern::new(p)
                .map_err(|_| "image.tag_pattern is not a valid regular expression".to_string())?,
        ),
        None => None,
    };
    let wanted = |tag: &str| match &pattern {
        Some(p) => p.matches(tag),
        None => tag == app.image.tag,
    };
    if let Some(i) = push.tags.iter().position(|t| wanted(&t.tag)) {
        let PushedTag { tag, digest } = push.tags.swap_remove(i);
        return Ok(ImageInfo {
            repository: push.repository,
            tag,
            digest,
        });
    }
    let mut tags = String::new();
    for t in push.tags.iter().take(5) {
        if !tags.is_empty() {
            tags.push_str(", ");
        }
        tags.push_str(&t.tag);
    }
    Err(match &app.image.tag_pattern {
        Some(p) => format!("tag {tags} does not match tag_pattern {p}"),
        None => format!("tag {tags} is not {}", app.image.tag),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::{json, Value};

    use super::*;

    /// `PUT` of an app with `section` set to `value` and a generic deploy target.
    fn put(section: &str, value: Value) -> Result<App, Error> {
        let mut body = json!({"deploy": {"target": "generic", "path": "/deploy"}});
        body[section] = value;
        App::from_put(
            "shop",
            body.to_string().as_bytes(),
            None,
            &mut |b: &mut [u8]| b.fill(7),
        )
    }

    /// An app with the image section `image` and a generic deploy target.
    pub(in crate::gateway) fn app(image: Value) -> App {
        put("image", image).unwrap()
    }

    fn push(repository: &str, tags: &[&str]) -> ImagePush {
        ImagePush {
            repository: repository.into(),
            tags: tags
                .iter()
                .map(|t| PushedTag {
                    tag: t.to_string(),
                    digest: Some(format!("sha256:{t}")),
                })
                .collect(),
        }
    }

    fn git_app(git: Value) -> App {
        put("git", git).unwrap()
    }

    /// A push of `git_ref` whose head says `message` and whose commits changed `files`.
    fn git_push(git_ref: &str, message: &str, files: Files) -> Push {
        Push {
            git_ref: git_ref.into(),
            web_url: "https://github.com/acme/shop".into(),
            urls: vec!["https://github.com/acme/shop".into()],
            deleted: false,
            head: Some(crate::providers::Commit {
                id: "abc".into(),
                message: message.into(),
                author: "Ann".into(),
            }),
            before: Some("def".into()),
            files,
        }
    }

    fn listed(files: &[&str]) -> Files {
        Files::Listed(files.iter().map(|f| f.to_string()).collect())
    }

    /// Each rule, one row each: the app's `git` section, the push, and what the rules
    /// say (`Ok`: branch, tag and note of the deploy; `Err`: a part of the reason).
    #[test]
    fn git_rules_table() {
        type Want = Result<
            (
                Option<&'static str>,
                Option<&'static str>,
                Option<&'static str>,
            ),
            &'static str,
        >;
        let heads = |b: &str| format!("refs/heads/{b}");
        let go = "ship it @deploy";
        let none = Files::NotRead;
        let rows: Vec<(Value, Push, Want)> = vec![
            // branches: a name, or a glob
            (json!({}), git_push(&heads("main"), go, none.clone()), Ok((Some("main"), None, None))),
            (json!({}), git_push(&heads("dev"), go, none.clone()), Err("branch dev is not main")),
            (json!({"branch": "release/*"}), git_push(&heads("release/1.4"), go, none.clone()),
                Ok((Some("release/1.4"), None, None))),
            (json!({"branch": "release/*"}), git_push(&heads("release/1/fix"), go, none.clone()),
                Err("branch release/1/fix does not match release/*")),
            (json!({"branch": "{main,staging}"}), git_push(&heads("staging"), go, none.clone()),
                Ok((Some("staging"), None, None))),
            // skip markers, with or without the keyword, whatever the keyword
            (json!({}), git_push(&heads("main"), "fix typo [skip deploy] @deploy", none.clone()),
                Err("the head commit message says [skip deploy]")),
            (json!({"keyword": ""}), git_push(&heads("main"), "docs [CD SKIP]", none.clone()),
                Err("says [cd skip]")),
            (json!({"keyword": "ship"}), git_push(&heads("main"), "@ship [deploy skip]", none.clone()),
                Err("says [deploy skip]")),
            (json!({}), git_push(&heads("main"), "@deploy [skip ci]", none.clone()),
                Ok((Some("main"), None, None))),
            (json!({}), git_push(&heads("main"), "no keyword", none.clone()),
                Err("no @deploy in the head commit message")),
            // tags: ignored unless git.tags matches; then no keyword, marker or paths
            (json!({}), git_push("refs/tags/v1.4.0", go, none.clone()),
                Err("tag push (v1.4.0) does not deploy: git.tags is not set")),
            (json!({"tags": "v*"}), git_push("refs/tags/v1.4.0", "[skip deploy]", none.clone()),
                Ok((None, Some("v1.4.0"), None))),
            (json!({"tags": "v*", "paths": {"include": ["api/**"]}}),
                git_push("refs/tags/v2", "", listed(&["web/x"])), Ok((None, Some("v2"), None))),
            (json!({"tags": "v[0-9]*"}), git_push("refs/tags/nightly", go, none.clone()),
                Err("tag nightly does not match git.tags v[0-9]*")),
            (json!({"tags": "v*", "repo": "https://github.com/acme/other"}),
                git_push("refs/tags/v1", go, none.clone()), Err("repository")),
            (json!({}), git_push("refs/pull/1/head", go, none.clone()), Err("is not a branch or a tag")),
            // paths: one changed file that passes is enough; exclude wins
            (json!({"paths": {"include": ["services/api"]}}),
                git_push(&heads("main"), go, listed(&["web/a.ts", "services/api/main.go"])),
                Ok((Some("main"), None, None))),
            (json!({"paths": {"include": ["services/api"]}}),
                git_push(&heads("main"), go, listed(&["web/a.ts", "web/b.ts"])),
                Err("none of the 2 changed files matches git.paths")),
            (json!({"paths": {"include": ["services/api"], "exclude": ["*.md"]}}),
                git_push(&heads("main"), go, listed(&["services/api/README.md"])),
                Err("the 1 changed file does not match git.paths")),
            (json!({"paths": {"exclude": ["docs/"]}}),
                git_push(&heads("main"), go, listed(&["docs/a.md", "Cargo.toml"])),
                Ok((Some("main"), None, None))),
            // ...and when the payload cannot tell, the push deploys and says why
            (json!({"paths": {"include": ["services/api"]}}),
                git_push(&heads("main"), go, Files::Unknown("GitLab listed 20 of the push's 35 commits".into())),
                Ok((Some("main"), None, Some("git.paths not checked: GitLab listed 20 of the push's 35 commits")))),
            (json!({"paths": {"include": ["services/api"]}}),
                git_push(&heads("main"), go, listed(&[])),
                Ok((Some("main"), None, Some("git.paths not checked: the push's commits list no changed file (empty or merge commits)")))),
            // the markers and the keyword come before the paths
            (json!({"paths": {"include": ["services/api"]}}),
                git_push(&heads("main"), "[skip cd] @deploy", listed(&["services/api/x"])),
                Err("says [skip cd]")),
        ];
        for (git, push, want) in rows {
            let got = git_rules(&git_app(git.clone()), &push);
            let ok = match (&got, want) {
                (Ok(d), Ok((branch, tag, note))) => {
                    d.branch.as_deref() == branch
                        && d.tag.as_deref() == tag
                        && d.note.as_deref() == note
                }
                (Err(why), Err(part)) => why.contains(part),
                _ => false,
            };
            assert!(ok, "{git} {}: got {got:?}, want {want:?}", push.git_ref);
        }
    }

    #[test]
    fn git_patterns_are_checked_at_put() {
        let put = |git: Value| put("git", git).map(|_| ()).map_err(|e| e.reason());
        assert_eq!(
            put(json!({"branch": "release/*", "tags": "v*",
                              "paths": {"include": ["a/**"], "exclude": ["*.md"]}})),
            Ok(())
        );
        for (git, field) in [
            (json!({"branch": "release/{a"}), "git.branch"),
            (json!({"branch": "a b*"}), "git.branch"),
            (json!({"tags": "v[0-9"}), "git.tags"),
            (json!({"tags": "bad..tag"}), "git.tags"),
            (json!({"paths": {"include": ["!x"]}}), "git.paths.include"),
            (json!({"paths": {"exclude": [""]}}), "git.paths.exclude"),
            (json!({"paths": {"exclude": "docs/"}}), "git.paths.exclude"),
            (json!({"paths": {"only": []}}), "git.paths.only"),
            (
                json!({"paths": {"include": vec!["a"; 51]}}),
                "git.paths.include",
            ),
        ] {
            let why = put(git.clone()).unwrap_err();
            assert!(why.starts_with(field), "{git}: {why}");
        }
    }

    #[test]
    fn repository_and_tag_rules() {
        let nginx = app(json!({"enabled": true, "repository": "nginx"}));
        let official = "docker.io/library/nginx";
        assert_eq!(
            image_rules(&nginx, push(official, &["latest"]))
                .unwrap()
                .tag,
            "latest"
        );
        let other = image_rules(&nginx, push("docker.io/acme/nginx", &["latest"])).unwrap_err();
        assert!(other.contains("docker.io/acme/nginx"), "{other}");
        let tag = image_rules(&nginx, push(official, &["1.27"])).unwrap_err();
        assert!(tag.contains("1.27") && tag.contains("latest"), "{tag}");
        let untagged = image_rules(&nginx, push(official, &[])).unwrap_err();
        assert!(untagged.contains("untagged"), "{untagged}");

        // several pushed tags: the first that matches deploys
        let pinned = app(
            json!({"enabled": true, "repository": "quay.io/acme/shop:ignored",
                                "tag": "stable"}),
        );
        let p = push("quay.io/acme/shop", &["v3", "stable", "latest"]);
        assert_eq!(image_rules(&pinned, p).unwrap().tag, "stable");

        // with a pattern, `tag` is not used and the match is in full
        let pattern = app(json!({"enabled": true, "repository": "ghcr.io/acme/shop",
                                 "tag": "latest", "tag_pattern": r"v\d+\.\d+\.\d+"}));
        let p = push(
            "ghcr.io/acme/shop",
            &["latest", "v1.2.3-rc1", "v1.2.3", "v1.2.4"],
        );
        let chosen = image_rules(&pattern, p).unwrap();
        assert_eq!(
            (chosen.tag.as_str(), chosen.digest.as_deref()),
            ("v1.2.3", Some("sha256:v1.2.3"))
        );
        let none = image_rules(&pattern, push("ghcr.io/acme/shop", &["latest"])).unwrap_err();
        assert!(none.contains("tag_pattern"), "{none}");
    }
}
