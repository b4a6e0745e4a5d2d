//! The one parser of app JSON: a `PUT` body, or a record as stored.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::validate::*;
use super::{
    ApiConfig, App, DeployConfig, DeployTarget, GitConfig, GitReport, ImageConfig, PathRules,
    DEFAULT_ALLOWED_STATUSES, DEFAULT_BRANCH, DEFAULT_KEYWORD, DEFAULT_STATUS, DEFAULT_TAG, MASK,
    MAX_CHANNELS,
};
use crate::error::Error;
use crate::notify::{channels, statuses, Channel, ChannelKind, Event};
use crate::support::secret::Secret;

/// A CSPRNG: fills the buffer with random bytes.
type Rng<'a> = &'a mut dyn FnMut(&mut [u8]);

impl App {
    /// Builds an app from a `PUT` body. `existing` is the app being replaced: its secrets
    /// (and status) are kept when the body omits them; missing secrets of a new app are
    /// generated with `fill` (a CSPRNG).
    pub fn from_put(
        name: &str,
        body: &[u8],
        existing: Option<&App>,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<App, Error> {
        let value: Value = crate::support::json::parse(body).map_err(|e| {
            Error::invalid(format!("body: {}", crate::error::describe_json_error(&e)))
        })?;
        App::parse(name, &value, existing, Some(fill))
    }

    /// Reads an app as stored (or as `GET` shows it): the same format as a `PUT` body,
    /// with every secret present.
    pub fn from_stored(name: &str, value: &Value) -> Result<App, Error> {
        App::parse(name, value, None, None)
    }

    /// The one parser of app JSON. Without `fill`, a missing secret is an error.
    fn parse(
        name: &str,
        value: &Value,
        existing: Option<&App>,
        mut fill: Option<Rng<'_>>,
    ) -> Result<App, Error> {
        let root = value
            .as_object()
            .ok_or_else(|| Error::invalid("body: expected a JSON object"))?;
        let root = Obj::new(
            root,
            "",
            &[
                "name", "hooks", "git", "image", "api", "deploy", "status", "notify",
            ],
        )?;

        let put = fill.is_some();
        let mut secret =
            |given: Option<String>, old: Option<&Secret>| match (given, old, fill.as_mut()) {
                (Some(s), _, _) => Ok(Secret::new(s)),
                (None, Some(old), _) => Ok(old.clone()),
                (None, None, Some(fill)) => Ok(Secret::generate(*fill)),
                (None, None, None) => Err(Error::invalid("stored app lacks a secret")),
            };

        let git = root.section(
            "git",
            &[
                "enabled", "repo", "branch", "keyword", "tags", "paths", "secret", "report",
            ],
        )?;
        let paths = git.object("paths", "git.paths", &["include", "exclude"])?;
        let paths = PathRules {
            include: paths
                .string_list("include", validate_path_pattern)?
                .unwrap_or_default(),
            exclude: paths
                .string_list("exclude", validate_path_pattern)?
                .unwrap_or_default(),
        };
        for (list, name) in [(&paths.include, "include"), (&paths.exclude, "exclude")] {
            if list.len() > MAX_PATH_PATTERNS {
                return Err(Error::field(
                    format!("git.paths.{name}"),
                    format!("at most {MAX_PATH_PATTERNS} patterns"),
                ));
            }
        }
        let repo = git.string("repo", validate_repo)?.unwrap_or_default();
        let report = parse_report(&git, &repo, existing, put)?;
        let git = GitConfig {
            enabled: git.bool("enabled")?.unwrap_or(false),
            repo,
            branch: git
                .string("branch", validate_branch)?
                .unwrap_or_else(|| DEFAULT_BRANCH.into()),
            keyword: git
                .string("keyword", validate_keyword)?
                .unwrap_or_else(|| DEFAULT_KEYWORD.into()),
            tags: git.nullable_string("tags", validate_tags)?,
            paths,
            secret: secret(
                git.string("secret", validate_secret)?,
                existing.map(|a| &a.git.secret),
            )?,
            report,
        };

        let image = root.section(
            "image",
            &["enabled", "repository", "tag", "tag_pattern", "token"],
        )?;
        let image = ImageConfig {
            enabled: image.bool("enabled")?.unwrap_or(false),
            repository: image.nullable_string("repository", validate_image_repository)?,
            tag: image
                .string("tag", validate_tag)?
                .unwrap_or_else(|| DEFAULT_TAG.into()),
            tag_pattern: image.nullable_string("tag_pattern", validate_tag_pattern)?,
            token: secret(
                image.string("token", validate_token)?,
                existing.map(|a| &a.image.token),
            )?,
        };
        if image.enabled && image.repository.is_none() {
            return Err(Error::field(
                "image.repository",
                "required when the image trigger is enabled",
            ));
        }

        let api = root.section("api", &["enabled", "secret_key"])?;
        let api = ApiConfig {
            enabled: api.bool("enabled")?.unwrap_or(false),
            secret_key: secret(
                api.string("secret_key", validate_secret)?,
                existing.map(|a| &a.api.secret_key),
            )?,
        };

        if root.map.get("deploy").is_none() {
            return Err(Error::field("deploy", "required"));
        }
        let deploy = root.section(
            "deploy",
            &[
                "target",
                "path",
                "service_id",
                "secret_key",
                "allowed_statuses",
            ],
        )?;
        let allowed_statuses = deploy
            .string_list("allowed_statuses", validate_status)?
            .unwrap_or_else(|| DEFAULT_ALLOWED_STATUSES.map(String::from).to_vec());
        let target = match deploy.string("target", |_| Ok(()))?.as_deref() {
            None | Some("generic") => {
                deploy.forbid(&["service_id", "secret_key"], "generic")?;
                DeployTarget::Generic {
                    path: deploy
                        .string("path", validate_deploy_path)?
                        .ok_or_else(|| Error::field("deploy.path", "required"))?,
                }
            }
            Some("rainbond") => {
                deploy.forbid(&["path"], "rainbond")?;
                DeployTarget::Rainbond {
                    service_id: deploy
                        .string("service_id", validate_service_id)?
                        .ok_or_else(|| Error::field("deploy.service_id", "required"))?,
                    secret_key: Secret::new(
                        deploy
                            .string("secret_key", validate_secret)?
                            .ok_or_else(|| Error::field("deploy.secret_key", "required"))?,
                    ),
                }
            }
            Some(_) => {
                return Err(Error::field(
                    "deploy.target",
                    "must be \"generic\" or \"rainbond\"",
                ))
            }
        };

        let status = match root.string("status", validate_status)? {
            Some(s) => s,
            None => existing
                .map(|a| a.status.clone())
                .unwrap_or_else(|| DEFAULT_STATUS.into()),
        };

        let notify = parse_channels(root.map.get("notify"), existing, fill.as_mut())?;

        Ok(App {
            name: name.to_string(),
            git,
            image,
            api,
            deploy: DeployConfig {
                target,
                allowed_statuses,
            },
            status,
            notify,
        })
    }
}

/// A secret field of a `PUT` body that may be sent back as `GET` showed it: [`MASK`]
/// keeps `old` (a mask with nothing to keep is an error).
fn unmask(
    given: Option<String>,
    old: Option<&Secret>,
    field: impl Fn() -> String,
) -> Result<Option<Secret>, Error> {
    match given {
        Some(s) if s == MASK => old
            .cloned()
            .map(Some)
            .ok_or_else(|| Error::field(field(), "is masked: send the value itself")),
        Some(s) => Ok(Some(Secret::new(s))),
        None => Ok(None),
    }
}

/// `git.report`: `{"provider", "token"}`, or `null`. The provider may be left out when
/// `git.repo`'s host names it (github.com, gitlab.com, …).
fn parse_report(
    git: &Obj<'_>,
    repo: &str,
    existing: Option<&App>,
    put: bool,
) -> Result<Option<GitReport>, Error> {
    let report = git.object("report", "git.report", &["provider", "token"])?;
    if git.map.get("report").is_none_or(Value::is_null) {
        return Ok(None);
    }
    if repo.is_empty() {
        return Err(Error::field(
            "git.report",
            "needs git.repo: the statuses go to that repository's forge",
        ));
    }
    let forge = match report.string("provider", |_| Ok(()))? {
        Some(name) => {
            statuses::forge_named(&name).map_err(|why| Error::field("git.report.provider", why))?
        }
        None => match statuses::guess_forge(repo) {
            Some(guess) => guess.map_err(|why| Error::field("git.report.provider", why))?,
            None => return Err(Error::field(
                "git.report.provider",
                "required for a self-hosted git.repo: github, gitlab, gitea, forgejo or bitbucket",
            )),
        },
    };
    statuses::target(forge, repo).map_err(|why| Error::field("git.repo", why))?;
    let old = existing
        .and_then(|a| a.git.report.as_ref())
        .map(|r| &r.token);
    let token = unmask(
        report.string("token", validate_secret)?,
        if put { old } else { None },
        || "git.report.token".into(),
    )?
    .or_else(|| old.filter(|_| put).cloned())
    .ok_or_else(|| Error::field("git.report.token", "required"))?;
    Ok(Some(GitReport { forge, token }))
}

/// `notify`: a list of `{"type", "url", "secret", "events"}`.
fn parse_channels(
    value: Option<&Value>,
    existing: Option<&App>,
    mut fill: Option<&mut Rng<'_>>,
) -> Result<Vec<Channel>, Error> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) if items.len() <= MAX_CHANNELS => items,
        Some(Value::Array(_)) => {
            return Err(Error::field(
                "notify",
                format!("at most {MAX_CHANNELS} channels"),
            ))
        }
        Some(_) => return Err(Error::field("notify", "expected a list of channels")),
    };
    let mut channels = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let map = item
            .as_object()
            .ok_or_else(|| Error::field(format!("notify[{i}]"), "expected an object"))?;
        let c = Obj::new(
            map,
            format!("notify[{i}]"),
            &["type", "url", "secret", "events"],
        )?;
        let kind = c
            .string("type", |t| {
                ChannelKind::parse(t)
                    .map(|_| ())
                    .ok_or("must be webhook, slack, discord, dingtalk, wecom or feishu")
            })?
            .and_then(|t| ChannelKind::parse(&t))
            .ok_or_else(|| Error::field(c.path("type"), "required"))?;
        // A channel sent back as GET showed it keeps the stored URL and secret of the
        // channel its masked URL stands for (of the same type, anywhere in the list).
        let url = c
            .string("url", |_| Ok(()))?
            .ok_or_else(|| Error::field(c.path("url"), "required"))?;
        let old = existing.filter(|_| fill.is_some()).and_then(|a| {
            a.notify
                .iter()
                .find(|old| old.kind == kind && channels::masked(old.url.expose()) == url)
        });
        let url = match old {
            Some(old) => Ok(old.url.clone()),
            None if url.contains("***") => Err("is masked: send the URL itself"),
            None => channels::validate_url(kind, &url).map(|()| Secret::new(url)),
        }
        .map_err(|why| Error::field(c.path("url"), why))?;
        let given = c.nullable_string("secret", |_| Ok(()))?;
        if let Some(s) = given.as_deref().filter(|s| *s != MASK) {
            channels::validate_secret(kind, s)
                .map_err(|why| Error::field(c.path("secret"), why))?;
        }
        let kept = old.and_then(|old| old.secret.as_ref());
        let mut secret = unmask(given, kept, || c.path("secret"))?;
        if kind == ChannelKind::Webhook && secret.is_none() {
            // Every webhook is signed: one left out is kept, a new one is generated, as
            // the triggers' secrets are.
            secret = match (kept, fill.as_mut()) {
                (Some(kept), _) => Some(kept.clone()),
                (None, Some(fill)) => {
                    Some(Secret::new(channels::generate_webhook_secret(&mut **fill)))
                }
                (None, None) => return Err(Error::invalid("stored channel lacks a secret")),
            };
        }
        let mut events: Vec<Event> = Vec::new();
        for e in c
            .string_list("events", |e| {
                Event::parse(e)
                    .map(|_| ())
                    .ok_or("each must be requested, refused, succeeded or failed")
            })?
            .map_or(Event::ALL.to_vec(), |l| {
                l.iter().filter_map(|e| Event::parse(e)).collect()
            })
        {
            if !events.contains(&e) {
                events.push(e);
            }
        }
        channels.push(Channel {
            kind,
            url,
            secret,
            events,
        });
    }
    Ok(channels)
}

/// A JSON object being validated: every key must be known, every error names its field.
/// The root, or one of its sections (`git.`, `deploy.`, …); field paths are only built
/// for an error.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    /// `""` for the root.
    section: Cow<'static, str>,
}

static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();

impl<'a> Obj<'a> {
    fn new(
        map: &'a Map<String, Value>,
        section: impl Into<Cow<'static, str>>,
        known: &[&str],
    ) -> Result<Self, Error> {
        let obj = Obj {
            map,
            section: section.into(),
        };
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Error::field(obj.path(unknown), "unknown field"));
        }
        Ok(obj)
    }

    fn path(&self, key: &str) -> String {
        match &*self.section {
            "" => key.to_string(),
            section => format!("{section}.{key}"),
        }
    }

    /// A section of the root; absent or `null` reads as empty (all defaults).
    fn section(&self, key: &'static str, known: &[&str]) -> Result<Obj<'a>, Error> {
        debug_assert!(self.section.is_empty(), "sections are one level deep");
        self.object(key, key, known)
    }

    /// The object at `key`, whose field paths start with `path` (`git.paths`); absent
    /// or `null` reads as empty.
    fn object(&self, key: &str, path: &'static str, known: &[&str]) -> Result<Obj<'a>, Error> {
        match self.map.get(key) {
            None | Some(Value::Null) => Obj::new(EMPTY.get_or_init(Map::new), path, known),
            Some(Value::Object(map)) => Obj::new(map, path, known),
            Some(_) => Err(Error::field(self.path(key), "expected an object")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(Error::field(self.path(key), "expected true or false")),
        }
    }

    fn string(
        &self,
        key: &str,
        check: fn(&str) -> Result<(), &'static str>,
    ) -> Result<Option<String>, Error> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => check(s)
                .map(|()| Some(s.clone()))
                .map_err(|why| Error::field(self.path(key), why)),
            Some(_) => Err(Error::field(self.path(key), "expected a string")),
        }
    }

    /// Like `string`, for fields whose absence is shown as `null` (and `""` means unset).
    fn nullable_string(
        &self,
        key: &str,
        check: fn(&str) -> Result<(), &'static str>,
    ) -> Result<Option<String>, Error> {
        Ok(self.string(key, check)?.filter(|s| !s.is_empty()))
    }

    fn string_list(
        &self,
        key: &str,
        check: fn(&str) -> Result<(), &'static str>,
    ) -> Result<Option<Vec<String>>, Error> {
        let bad = || Error::field(self.path(key), "expected a list of strings");
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    let s = item.as_str().ok_or_else(bad)?;
                    check(s).map_err(|why| Error::field(self.path(key), why))?;
                    Ok(s.to_string())
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad()),
        }
    }

    /// Fields that belong to another deploy target.
    fn forbid(&self, keys: &[&str], target: &str) -> Result<(), Error> {
        match keys.iter().find(|k| self.map.contains_key(**k)) {
            Some(k) => Err(Error::field(
                self.path(k),
                format!("not used by the {target} target"),
            )),
            None => Ok(()),
        }
    }
}
