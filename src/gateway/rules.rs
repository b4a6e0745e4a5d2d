//! The rules that decide whether a verified push deploys this app: the git rules, the
//! image rules, and the app status checked just before the call.

use super::deploy::ImageInfo;
use crate::error::Error;
use crate::providers::rules::{mentions_keyword, parse_ref, repo_matches, GitRef};
use crate::providers::Push;
use crate::registries::tagpattern::TagPattern;
use crate::registries::{normalize_image, ImagePush, PushedTag};
use crate::state::app::App;

/// The git rules, in order; `Err` is the reason the push is ignored.
pub(super) fn git_rules(app: &App, push: &Push) -> Result<(), String> {
    let branch = match parse_ref(&push.git_ref) {
        GitRef::Branch(b) => b,
        GitRef::Tag(t) => return Err(format!("tag push ({t}) does not deploy")),
        GitRef::Other(r) => return Err(format!("{r} is not a branch")),
    };
    if push.deleted {
        return Err(format!("branch {branch} was deleted"));
    }
    if !repo_matches(&app.git.repo, push.urls.iter().map(String::as_str)) {
        return Err(format!(
            "repository {} is not {}",
            push.web_url, app.git.repo
        ));
    }
    if branch != app.git.branch {
        return Err(format!("branch {branch} is not {}", app.git.branch));
    }
    let message = push
        .head
        .as_ref()
        .map(|c| c.message.as_str())
        .unwrap_or_default();
    if !mentions_keyword(message, &app.git.keyword) {
        return Err(format!(
            "no @{} in the head commit message",
            app.git.keyword
        ));
    }
    Ok(())
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

    /// An app with the image section `image` and a generic deploy target.
    pub(in crate::gateway) fn app(image: Value) -> App {
        let body = json!({"image": image, "deploy": {"target": "generic", "path": "/deploy"}});
        App::from_put(
            "shop",
            body.to_string().as_bytes(),
            None,
            &mut |b: &mut [u8]| b.fill(7),
        )
        .unwrap()
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
