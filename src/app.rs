//! App records: what is stored, how a `PUT` body becomes one, and how `GET` shows it.

use serde_json::{json, Map, Value};

use crate::model::Trigger;
use crate::secret::Secret;

/// An app as stored (secrets included). `GET` shows it with `hooks` added.
#[derive(Clone, Debug)]
pub struct App {
    pub name: String,
    pub git: GitConfig,
    pub image: ImageConfig,
    pub api: ApiConfig,
    pub deploy: DeployConfig,
    pub status: String,
}

#[derive(Clone, Debug)]
pub struct GitConfig {
    pub enabled: bool,
    /// Web or clone URL of the only repository allowed to trigger; `""` = any.
    pub repo: String,
    pub branch: String,
    /// `@keyword` that must appear in the head commit message; `""` = every push.
    pub keyword: String,
    pub secret: Secret,
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

/// A CSPRNG: fills the buffer with random bytes.
pub type Rng<'a> = &'a mut dyn FnMut(&mut [u8]);

/// An admin API error: status, message and the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    pub status: u16,
    pub error: String,
    pub field: Option<String>,
}

impl AdminError {
    pub fn new(status: u16, error: impl Into<String>) -> Self {
        AdminError {
            status,
            error: error.into(),
            field: None,
        }
    }

    pub fn field(field: impl Into<String>, error: impl Into<String>) -> Self {
        let field = field.into();
        AdminError {
            status: 400,
            error: format!("{field}: {}", error.into()),
            field: Some(field),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"error": self.error, "field": self.field})
    }
}

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
    /// Builds an app from a `PUT` body. `existing` is the app being replaced: its secrets
    /// (and status) are kept when the body omits them; missing secrets of a new app are
    /// generated with `fill` (a CSPRNG).
    pub fn from_put(
        name: &str,
        body: &[u8],
        existing: Option<&App>,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<App, AdminError> {
        let value: Value = crate::json::parse(body).map_err(|e| {
            AdminError::new(
                400,
                format!("body: {}", crate::error::describe_json_error(&e)),
            )
        })?;
        App::parse(name, &value, existing, Some(fill))
    }

    /// Reads an app as stored (or as `GET` shows it): the same format as a `PUT` body,
    /// with every secret present.
    pub fn from_stored(name: &str, value: &Value) -> Result<App, AdminError> {
        App::parse(name, value, None, None)
    }

    /// The one parser of app JSON. Without `fill`, a missing secret is an error.
    fn parse(
        name: &str,
        value: &Value,
        existing: Option<&App>,
        mut fill: Option<Rng<'_>>,
    ) -> Result<App, AdminError> {
        let root = value
            .as_object()
            .ok_or_else(|| AdminError::new(400, "body: expected a JSON object"))?;
        let root = Obj::new(
            root,
            "",
            &["name", "hooks", "git", "image", "api", "deploy", "status"],
        )?;

        let mut secret =
            |given: Option<String>, old: Option<&Secret>| match (given, old, fill.as_mut()) {
                (Some(s), _, _) => Ok(Secret::new(s)),
                (None, Some(old), _) => Ok(old.clone()),
                (None, None, Some(fill)) => Ok(Secret::generate(*fill)),
                (None, None, None) => Err(AdminError::new(500, "stored app lacks a secret")),
            };

        let git = root.section("git", &["enabled", "repo", "branch", "keyword", "secret"])?;
        let git = GitConfig {
            enabled: git.bool("enabled")?.unwrap_or(false),
            repo: git.string("repo", validate_repo)?.unwrap_or_default(),
            branch: git
                .string("branch", validate_branch)?
                .unwrap_or_else(|| DEFAULT_BRANCH.into()),
            keyword: git
                .string("keyword", validate_keyword)?
                .unwrap_or_else(|| DEFAULT_KEYWORD.into()),
            secret: secret(
                git.string("secret", validate_secret)?,
                existing.map(|a| &a.git.secret),
            )?,
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
            return Err(AdminError::field(
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
            return Err(AdminError::field("deploy", "required"));
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
                        .ok_or_else(|| AdminError::field("deploy.path", "required"))?,
                }
            }
            Some("rainbond") => {
                deploy.forbid(&["path"], "rainbond")?;
                DeployTarget::Rainbond {
                    service_id: deploy
                        .string("service_id", validate_service_id)?
                        .ok_or_else(|| AdminError::field("deploy.service_id", "required"))?,
                    secret_key: Secret::new(
                        deploy
                            .string("secret_key", validate_secret)?
                            .ok_or_else(|| AdminError::field("deploy.secret_key", "required"))?,
                    ),
                }
            }
            Some(_) => {
                return Err(AdminError::field(
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
        })
    }

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
                "secret": self.git.secret.expose(),
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
        value
    }

    pub fn enabled(&self, trigger: Trigger) -> bool {
        match trigger {
            Trigger::Git => self.git.enabled,
            Trigger::Image => self.image.enabled,
            Trigger::Api => self.api.enabled,
        }
    }

    /// The per-trigger switch. Enabling the image trigger needs a repository.
    pub fn set_enabled(&mut self, trigger: Trigger, on: bool) -> Result<(), AdminError> {
        match trigger {
            Trigger::Git => self.git.enabled = on,
            Trigger::Image => {
                if on && self.image.repository.is_none() {
                    return Err(AdminError::field(
                        "image.repository",
                        "required when the image trigger is enabled",
                    ));
                }
                self.image.enabled = on
            }
            Trigger::Api => self.api.enabled = on,
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
        }
    }

    pub fn status_allows_deploy(&self) -> bool {
        self.deploy.allowed_statuses.contains(&self.status)
    }
}

/// A JSON object being validated: every key must be known, every error names its field.
/// The root, or one of its sections (`git.`, `deploy.`, …); field paths are only built
/// for an error.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    /// `""` for the root.
    section: &'static str,
}

static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();

impl<'a> Obj<'a> {
    fn new(
        map: &'a Map<String, Value>,
        section: &'static str,
        known: &[&str],
    ) -> Result<Self, AdminError> {
        let obj = Obj { map, section };
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(AdminError::field(obj.path(unknown), "unknown field"));
        }
        Ok(obj)
    }

    fn path(&self, key: &str) -> String {
        match self.section {
            "" => key.to_string(),
            section => format!("{section}.{key}"),
        }
    }

    /// A section of the root; absent or `null` reads as empty (all defaults).
    fn section(&self, key: &'static str, known: &[&str]) -> Result<Obj<'a>, AdminError> {
        debug_assert!(self.section.is_empty(), "sections are one level deep");
        match self.map.get(key) {
            None | Some(Value::Null) => Obj::new(EMPTY.get_or_init(Map::new), key, known),
            Some(Value::Object(map)) => Obj::new(map, key, known),
            Some(_) => Err(AdminError::field(self.path(key), "expected an object")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, AdminError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(AdminError::field(self.path(key), "expected true or false")),
        }
    }

    fn string(
        &self,
        key: &str,
        check: fn(&str) -> Result<(), &'static str>,
    ) -> Result<Option<String>, AdminError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => check(s)
                .map(|()| Some(s.clone()))
                .map_err(|why| AdminError::field(self.path(key), why)),
            Some(_) => Err(AdminError::field(self.path(key), "expected a string")),
        }
    }

    /// Like `string`, for fields whose absence is shown as `null` (and `""` means unset).
    fn nullable_string(
        &self,
        key: &str,
        check: fn(&str) -> Result<(), &'static str>,
    ) -> Result<Option<String>, AdminError> {
        Ok(self.string(key, check)?.filter(|s| !s.is_empty()))
    }

    fn string_list(
        &self,
        key: &str,
        check: fn(&str) -> Result<(), &'static str>,
    ) -> Result<Option<Vec<String>>, AdminError> {
        let bad = || AdminError::field(self.path(key), "expected a list of strings");
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    let s = item.as_str().ok_or_else(bad)?;
                    check(s).map_err(|why| AdminError::field(self.path(key), why))?;
                    Ok(s.to_string())
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad()),
        }
    }

    /// Fields that belong to another deploy target.
    fn forbid(&self, keys: &[&str], target: &str) -> Result<(), AdminError> {
        match keys.iter().find(|k| self.map.contains_key(**k)) {
            Some(k) => Err(AdminError::field(
                self.path(k),
                format!("not used by the {target} target"),
            )),
            None => Ok(()),
        }
    }
}

fn printable(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn validate_repo(s: &str) -> Result<(), &'static str> {
    if s.len() > 512 || !printable(s) {
        return Err("must be a repository URL without spaces (at most 512 characters)");
    }
    Ok(())
}

/// A branch name as git accepts it (`git check-ref-format --branch`), without `refs/heads/`.
fn validate_branch(s: &str) -> Result<(), &'static str> {
    const WHY: &str = "must be a valid git branch name, e.g. \"main\" or \"release/1.x\"";
    let bad = s.is_empty()
        || s.len() > 255
        || s.starts_with('-')
        || s.starts_with('/')
        || s.ends_with('/')
        || s.ends_with('.')
        || s.ends_with(".lock")
        || s.contains("..")
        || s.contains("//")
        || s.contains("@{")
        || s == "@"
        || s.starts_with("refs/")
        || s.split('/').any(|part| part.starts_with('.'))
        || s.chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        Err(WHY)
    } else {
        Ok(())
    }
}

fn validate_keyword(s: &str) -> Result<(), &'static str> {
    if s.len() > 64
        || !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.')
    {
        return Err(
            "must be letters, digits, '_', '-' or '.' (without the @), or \"\" for every push",
        );
    }
    Ok(())
}

fn validate_secret(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
        return Err("must be 1 to 256 characters without control characters");
    }
    Ok(())
}

/// Image tokens sit in a URL path.
fn validate_token(s: &str) -> Result<(), &'static str> {
    if s.len() < 16
        || s.len() > 128
        || !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        return Err("must be 16 to 128 characters of A-Z a-z 0-9 - _");
    }
    Ok(())
}

fn validate_image_repository(s: &str) -> Result<(), &'static str> {
    let ok = s.len() <= 255
        && !s.starts_with('/')
        && s.bytes().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || b"._-/:".contains(&c)
                || c.is_ascii_uppercase()
        });
    if !ok || s.contains('@') {
        return Err(
            "must be an image repository such as \"docker.io/acme/shop\" (no tag or digest)",
        );
    }
    Ok(())
}

/// Docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn validate_tag(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || b"_.-".contains(&c));
    if ok {
        Ok(())
    } else {
        Err("must be a Docker tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
    }
}

fn validate_tag_pattern(s: &str) -> Result<(), &'static str> {
    if s.len() > 256 {
        return Err("must be at most 256 characters");
    }
    crate::tagpattern::TagPattern::new(s)
        .map(|_| ())
        .map_err(|_| "invalid regular expression")
}

/// The path is appended to `platform_url`; it must keep the call on that origin.
fn validate_deploy_path(s: &str) -> Result<(), &'static str> {
    if !s.starts_with('/')
        || s.starts_with("//")
        || !printable(s)
        || s.contains('#')
        || s.contains('\\')
    {
        return Err("must be an absolute path such as \"/v1/apps/shop/deploy\"");
    }
    Ok(())
}

fn validate_service_id(s: &str) -> Result<(), &'static str> {
    if s.is_empty()
        || s.len() > 128
        || !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        return Err("must be letters, digits, '-' or '_'");
    }
    Ok(())
}

fn validate_status(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 64 || !printable(s) {
        return Err("must be a non-empty word such as \"running\"");
    }
    Ok(())
}
