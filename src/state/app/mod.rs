//! App records: what is stored and how `GET` shows it. How records are kept in the store
//! (atomically, with an index of names) is in `store`, how a `PUT` body becomes one in
//! `parse`, the rules for each field in `validate`.

mod parse;
mod store;
mod validate;

pub use store::{create_or_replace, delete, load, page, update, PAGE_DEFAULT, PAGE_MAX};

use serde_json::{json, Value};

use crate::error::Error;
use crate::model::Trigger;
use crate::notify::{channels, Channel, Forge};
use crate::support::secret::Secret;

/// An app as stored (secrets included). `GET` shows it with `hooks` added.
#[derive(Clone, Debug)]
pub struct App {
    pub name: String,
    pub git: GitConfig,
    pub image: ImageConfig,
    pub api: ApiConfig,
    pub deploy: DeployConfig,
    pub status: String,
    /// Where to tell people what happened (at most [`MAX_CHANNELS`]).
    pub notify: Vec<Channel>,
}

/// The most notification channels an app has.
pub const MAX_CHANNELS: usize = 10;

/// `git.report`: commit statuses posted to the forge of `git.repo`.
#[derive(Clone, Debug)]
pub struct GitReport {
    pub forge: Forge,
    pub token: Secret,
}

/// What `GET` shows instead of a stored secret; sent back in a `PUT`, it keeps the secret.
pub const MASK: &str = "***";

#[derive(Clone, Debug)]
pub struct GitConfig {
    pub enabled: bool,
    /// Web or clone URL of the only repository allowed to trigger; `""` = any.
    pub repo: String,
    /// A branch name, or a glob of names (`release/*`, `{main,staging}`).
    pub branch: String,
    /// `@keyword` that must appear in the head commit message; `""` = every push.
    pub keyword: String,
    /// A glob of tag names whose pushes deploy (`v*`); `None`: tag pushes do not.
    pub tags: Option<String>,
    /// Which changed files make a branch push deploy.
    pub paths: PathRules,
    pub secret: Secret,
    /// Commit statuses, when set.
    pub report: Option<GitReport>,
}

/// `git.paths`: gitignore-style globs of the files that count
/// ([`PathFilter`](crate::support::glob::PathFilter)). Both empty: every push counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathRules {
    /// Empty: every file.
    pub include: Vec<String>,
    /// Wins over `include`.
    pub exclude: Vec<String>,
}

impl PathRules {
    /// Do the rules filter at all? (Only then are a push's files read.)
    pub fn active(&self) -> bool {
        !self.include.is_empty() || !self.exclude.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct ImageConfig {
    pub enabled: bool,
    pub repository: Option<String>,
    pub tag: String,
    pub tag_pattern: Option<String>,
    pub token: Secret,
}

#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub enabled: bool,
    pub secret_key: Secret,
}

#[derive(Clone, Debug)]
pub struct DeployConfig {
    pub target: DeployTarget,
    pub allowed_statuses: Vec<String>,
}

#[derive(Clone, Debug)]
pub enum DeployTarget {
    /// `POST {platform_url}{path}` with the generic JSON body.
    Generic { path: String },
    /// Rainbond's own API trigger: `POST {platform_url}/console/custom/deploy/{service_id}`.
    Rainbond {
        service_id: String,
        secret_key: Secret,
    },
}

pub const DEFAULT_BRANCH: &str = "main";
pub const DEFAULT_KEYWORD: &str = "deploy";
pub const DEFAULT_TAG: &str = "latest";
pub const DEFAULT_STATUS: &str = "running";
pub const DEFAULT_ALLOWED_STATUSES: [&str; 2] = ["running", "abnormal"];

/// `[a-z0-9][a-z0-9-]{0,62}`
pub fn valid_app_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

impl App {
    /// The app as stored: everything, secrets included.
    pub fn to_json(&self) -> Value {
        let deploy = match &self.deploy.target {
            DeployTarget::Generic { path } => json!({
                "target": "generic",
                "path": path,
                "allowed_statuses": self.deploy.allowed_statuses,
            }),
            DeployTarget::Rainbond {
                service_id,
                secret_key,
            } => json!({
                "target": "rainbond",
                "service_id": service_id,
                "secret_key": secret_key.expose(),
                "allowed_statuses": self.deploy.allowed_statuses,
            }),
        };
        json!({
            "name": self.name,
            "git": {
                "enabled": self.git.enabled,
                "repo": self.git.repo,
                "branch": self.git.branch,
                "keyword": self.git.keyword,
                "tags": self.git.tags,
                "paths": {"include": self.git.paths.include, "exclude": self.git.paths.exclude},
                "secret": self.git.secret.expose(),
                "report": self.git.report.as_ref().map(|r| json!({
                    "provider": r.forge.as_str(), "token": r.token.expose(),
                })),
            },
            "image": {
                "enabled": self.image.enabled,
                "repository": self.image.repository,
                "tag": self.image.tag,
                "tag_pattern": self.image.tag_pattern,
                "token": self.image.token.expose(),
            },
            "api": {
                "enabled": self.api.enabled,
                "secret_key": self.api.secret_key.expose(),
            },
            "deploy": deploy,
            "status": self.status,
            "notify": self.notify.iter().map(|c| json!({
                "type": c.kind.as_str(),
                "url": c.url.expose(),
                "secret": c.secret.as_ref().map(Secret::expose),
                "events": c.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }

    /// The app as `GET` shows it: the stored record plus ready-to-paste webhook URLs
    /// under `base` (the public URL of the gateway, without a trailing slash).
    pub fn view(&self, base: &str) -> Value {
        let mut value = self.to_json();
        let name = &self.name;
        value["hooks"] = json!({
            "git": format!("{base}/hooks/{name}/git"),
            "image": format!("{base}/hooks/{name}/image/{}", self.image.token.expose()),
            "api": format!("{base}/hooks/{name}/api"),
        });
        // The URLs and tokens that reach other services are shown masked: they are
        // credentials of those services, not of this app.
        if self.git.report.is_some() {
            value["git"]["report"]["token"] = json!(MASK);
        }
        for (shown, channel) in value["notify"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .zip(&self.notify)
        {
            shown["url"] = json!(channels::masked(channel.url.expose()));
            if channel.secret.is_some() {
                shown["secret"] = json!(MASK);
            }
        }
        value
    }

    pub fn enabled(&self, trigger: Trigger) -> bool {
        match trigger {
            Trigger::Git => self.git.enabled,
            Trigger::Image => self.image.enabled,
            Trigger::Api => self.api.enabled,
            Trigger::Manual => true,
        }
    }

    /// The per-trigger switch. Enabling the image trigger needs a repository.
    pub fn set_enabled(&mut self, trigger: Trigger, on: bool) -> Result<(), Error> {
        match trigger {
            Trigger::Git => self.git.enabled = on,
            Trigger::Image => {
                if on && self.image.repository.is_none() {
                    return Err(Error::field(
                        "image.repository",
                        "required when the image trigger is enabled",
                    ));
                }
                self.image.enabled = on
            }
            Trigger::Api => self.api.enabled = on,
            Trigger::Manual => return Err(Error::field("trigger", "must be git, image or api")),
        }
        Ok(())
    }

    /// Replaces the trigger's secret; the old one stops working at once.
    pub fn rotate(&mut self, trigger: Trigger, fill: &mut dyn FnMut(&mut [u8])) {
        let fresh = Secret::generate(fill);
        match trigger {
            Trigger::Git => self.git.secret = fresh,
            Trigger::Image => self.image.token = fresh,
            Trigger::Api => self.api.secret_key = fresh,
            Trigger::Manual => {}
        }
    }

    /// The status the platform reports, held to the same rule as in a `PUT` body (else
    /// the record could not be read back).
    pub fn set_status(&mut self, status: String) -> Result<(), Error> {
        validate::validate_status(&status).map_err(|why| Error::field("status", why))?;
        self.status = status;
        Ok(())
    }

    pub fn status_allows_deploy(&self) -> bool {
        self.deploy.allowed_statuses.contains(&self.status)
    }
}
