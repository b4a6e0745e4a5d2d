//! What runtime-host reads of a Spin manifest (`spin.toml`, version 2): the application's
//! `[variables]` and the served component's `allowed_outbound_hosts`.
//!
//! - `[variables]`: each is `{ default = "…" }` or `{ required = true }` (exactly one of
//!   them, as Spin requires), with optional `secret` and `description`. A variable with no
//!   value (from `--var` or the environment) takes its default; a required one with no
//!   value is an error when the host is built.
//! - the component: the one `[component.<id>]` table, or, when there are several, the one
//!   named `autodeploy`. Its `allowed_outbound_hosts` (none: no outbound calls at all, as
//!   on Spin) are resolved against the variables once their defaults are applied: see
//!   [`AllowList`].
//!
//! The rest of the manifest (triggers, sources, key-value stores, build) is not read.

use std::path::Path;

use anyhow::{bail, Context as _};

use crate::allow::AllowList;
use crate::vars::{validate_name, Variables, ENV_PREFIX};

/// The component chosen when a manifest has several.
pub const COMPONENT_NAME: &str = "autodeploy";

/// The parts of a `spin.toml` runtime-host uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The application's variables, by name.
    pub variables: Vec<ManifestVariable>,
    /// The id of the component whose permissions apply (`autodeploy`).
    pub component: String,
    /// That component's `allowed_outbound_hosts`, as written (templates unresolved).
    pub allowed_outbound_hosts: Vec<String>,
}

/// One entry of the manifest's `[variables]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ManifestVariable {
    pub name: String,
    /// The value when none is given (`None` for a required variable).
    pub default: Option<String>,
    pub required: bool,
    pub secret: bool,
}

/// A secret variable's default is not shown.
impl std::fmt::Debug for ManifestVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let default = match (&self.default, self.secret) {
            (Some(_), true) => Some("***"),
            (d, _) => d.as_deref(),
        };
        f.debug_struct("ManifestVariable")
            .field("name", &self.name)
            .field("default", &default)
            .field("required", &self.required)
            .field("secret", &self.secret)
            .finish()
    }
}

impl Manifest {
    /// Read and parse the manifest at `path`.
    pub fn load(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the manifest {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("manifest {}", path.display()))
    }

    /// Parse a manifest's text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let doc: toml::Table = text.parse().context("not valid TOML")?;
        match doc.get("spin_manifest_version") {
            Some(toml::Value::Integer(2)) => {}
            Some(other) => {
                bail!("spin_manifest_version is {other}: only version 2 manifests are supported")
            }
            None => bail!("no spin_manifest_version: only version 2 manifests are supported"),
        }
        let variables = match doc.get("variables") {
            None => Vec::new(),
            Some(toml::Value::Table(table)) => table
                .iter()
                .map(|(name, v)| {
                    parse_variable(name, v).with_context(|| format!("[variables] {name}"))
                })
                .collect::<anyhow::Result<_>>()?,
            Some(_) => bail!("[variables] is not a table"),
        };
        let components = match doc.get("component") {
            Some(toml::Value::Table(table)) => table,
            Some(_) => bail!("[component] is not a table of components"),
            None => bail!("no [component.<id>] table"),
        };
        let (component, table) = match components.len() {
            0 => bail!("no [component.<id>] table"),
            1 => components.iter().next().expect("one component"),
            _ => components.get_key_value(COMPONENT_NAME).with_context(|| {
                let ids: Vec<&str> = components.keys().map(String::as_str).collect();
                format!(
                    "several components ({}) and none is named {COMPONENT_NAME:?}: \
                         cannot tell which one is served",
                    ids.join(", ")
                )
            })?,
        };
        let Some(table) = table.as_table() else {
            bail!("[component.{component}] is not a table");
        };
        let allowed_outbound_hosts = match table.get("allowed_outbound_hosts") {
            None => Vec::new(),
            Some(toml::Value::Array(entries)) => entries
                .iter()
                .map(|e| match e {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => bail!(
                        "[component.{component}] allowed_outbound_hosts: {other} is not a string"
                    ),
                })
                .collect::<anyhow::Result<_>>()?,
            Some(_) => {
                bail!("[component.{component}] allowed_outbound_hosts is not a list of strings")
            }
        };
        Ok(Self {
            variables,
            component: component.clone(),
            allowed_outbound_hosts,
        })
    }

    /// Give every declared variable without a value in `vars` its default. Fails, naming
    /// them, when required variables have no value.
    pub fn apply_defaults(&self, vars: &mut Variables) -> anyhow::Result<()> {
        let mut missing = Vec::new();
        for var in &self.variables {
            if vars.get(&var.name).is_ok() {
                continue;
            }
            match &var.default {
                Some(default) => vars.set(&var.name, default),
                None => missing.push(var.name.as_str()),
            }
        }
        match missing.as_slice() {
            [] => Ok(()),
            [name] => bail!(
                "required variable {name} has no value: set it with --var {name}=… or {}",
                env_name(name)
            ),
            names => bail!(
                "required variables {} have no value: set them with --var NAME=… or \
                 {ENV_PREFIX}NAME",
                names.join(", ")
            ),
        }
    }

    /// The component's `allowed_outbound_hosts`, resolved against `vars` (apply the
    /// defaults first: [`apply_defaults`](Self::apply_defaults)).
    pub fn allow_list(&self, vars: &Variables) -> anyhow::Result<AllowList> {
        AllowList::parse(&self.allowed_outbound_hosts, vars)
            .with_context(|| format!("[component.{}]", self.component))
    }
}

fn env_name(name: &str) -> String {
    format!("{ENV_PREFIX}{}", name.to_ascii_uppercase())
}

fn parse_variable(name: &str, value: &toml::Value) -> anyhow::Result<ManifestVariable> {
    validate_name(name).map_err(|e| anyhow::anyhow!(e))?;
    let Some(table) = value.as_table() else {
        bail!("expected a table such as {{ default = \"…\" }} or {{ required = true }}");
    };
    let mut var = ManifestVariable {
        name: name.to_string(),
        default: None,
        required: false,
        secret: false,
    };
    for (key, v) in table {
        match (key.as_str(), v) {
            ("default", toml::Value::String(s)) => var.default = Some(s.clone()),
            ("required", toml::Value::Boolean(b)) => var.required = *b,
            ("secret", toml::Value::Boolean(b)) => var.secret = *b,
            ("description", toml::Value::String(_)) => {}
            ("default" | "description", _) => bail!("{key} must be a string"),
            ("required" | "secret", _) => bail!("{key} must be true or false"),
            _ => bail!("unknown field {key:?} (expected default, required, secret, description)"),
        }
    }
    if var.required == var.default.is_some() {
        bail!("must be `required = true` or have a `default`, not both or neither (as in Spin)");
    }
    Ok(var)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO_MANIFEST: &str = include_str!("../../spin.toml");

    #[test]
    fn reads_the_repository_manifest() {
        let m = Manifest::parse(REPO_MANIFEST).unwrap();
        assert_eq!(m.component, "autodeploy");
        assert!(m
            .allowed_outbound_hosts
            .iter()
            .any(|h| h == "{{ platform_url }}"));
        let admin = m
            .variables
            .iter()
            .find(|v| v.name == "admin_token")
            .unwrap();
        assert!(admin.required && admin.secret && admin.default.is_none());
        let platform_url = m
            .variables
            .iter()
            .find(|v| v.name == "platform_url")
            .unwrap();
        assert!(platform_url.required);

        // Without the required variables: an error naming them.
        let err = m.apply_defaults(&mut Variables::new()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("admin_token") && msg.contains("platform_url"),
            "{msg}"
        );

        // With them, the defaults fill the rest and the list allows the platform.
        let mut vars = Variables::new();
        vars.set("admin_token", "a");
        vars.set("platform_url", "http://127.0.0.1:3001");
        m.apply_defaults(&mut vars).unwrap();
        assert_eq!(vars.get("platform_token").unwrap(), "");
        assert_eq!(vars.get("admin_token").unwrap(), "a");
        let allow = m.allow_list(&vars).unwrap();
        assert!(allow.allows(&"http://127.0.0.1:3001/v1/apps/shop/deploy".parse().unwrap()));
        assert!(!allow.allows(&"http://127.0.0.1:3002/".parse().unwrap()));
        assert!(!allow.allows(&"https://example.com/".parse().unwrap()));
    }

    const MANIFEST: &str = r#"
spin_manifest_version = 2

[application]
name = "x"

[variables]
admin_token = { required = true, secret = true }
platform_url = { required = true }
status_url = { default = "https://unset.invalid", description = "where to report" }
extra_host = { default = "" }

[component.autodeploy]
source = "x.wasm"
allowed_outbound_hosts = [
    "{{ platform_url }}",
    "{{ status_url }}",
    "https://{{ extra_host }}",
    "https://api.github.com",
]
"#;

    #[test]
    fn defaults_fill_templated_entries_and_explicit_values_win() {
        let m = Manifest::parse(MANIFEST).unwrap();
        let mut vars = Variables::new();
        vars.set("admin_token", "a");
        vars.set("platform_url", "https://console.example.com");
        m.apply_defaults(&mut vars).unwrap();
        let allow = m.allow_list(&vars).unwrap();
        // The empty `extra_host` entry is left out.
        assert_eq!(
            allow.to_string(),
            r#"["https://console.example.com", "https://unset.invalid", "https://api.github.com"]"#
        );

        let mut vars = Variables::new();
        vars.set("admin_token", "a");
        vars.set("platform_url", "https://console.example.com");
        vars.set("status_url", "http://127.0.0.1:9000");
        m.apply_defaults(&mut vars).unwrap();
        let allow = m.allow_list(&vars).unwrap();
        assert!(allow.allows(&"http://127.0.0.1:9000/status".parse().unwrap()));
        assert!(!allow.allows(&"https://unset.invalid/".parse().unwrap()));

        // One required variable missing: named, with how to set it.
        let mut vars = Variables::new();
        vars.set("admin_token", "a");
        let err = m.apply_defaults(&mut vars).unwrap_err().to_string();
        assert!(
            err.contains("platform_url") && err.contains("SPIN_VARIABLE_PLATFORM_URL"),
            "{err}"
        );
        assert!(!err.contains("admin_token"), "{err}");
    }

    #[test]
    fn chooses_the_component() {
        let one = "spin_manifest_version = 2\n[component.other]\nallowed_outbound_hosts = [\"https://a.example\"]\n";
        let m = Manifest::parse(one).unwrap();
        assert_eq!(m.component, "other");
        assert_eq!(m.allowed_outbound_hosts, ["https://a.example"]);

        let several = "spin_manifest_version = 2\n\
            [component.other]\nallowed_outbound_hosts = [\"https://a.example\"]\n\
            [component.autodeploy]\nallowed_outbound_hosts = [\"https://b.example\"]\n";
        let m = Manifest::parse(several).unwrap();
        assert_eq!(m.component, "autodeploy");
        assert_eq!(m.allowed_outbound_hosts, ["https://b.example"]);

        let ambiguous = "spin_manifest_version = 2\n[component.a]\n[component.b]\n";
        let err = format!("{:#}", Manifest::parse(ambiguous).unwrap_err());
        assert!(err.contains("autodeploy") && err.contains("a, b"), "{err}");

        // No allowed_outbound_hosts: no outbound calls at all, as on Spin.
        let none = Manifest::parse("spin_manifest_version = 2\n[component.a]\n").unwrap();
        let allow = none.allow_list(&Variables::new()).unwrap();
        assert!(!allow.allows(&"https://example.com/".parse().unwrap()));
    }

    #[test]
    fn invalid_manifests_are_refused() {
        for bad in [
            "not toml [",
            "[component.a]\n",
            "spin_manifest_version = \"1\"\n[component.a]\n",
            "spin_manifest_version = 2\n",
            "spin_manifest_version = 2\n[variables]\nx = { }\n[component.a]\n",
            "spin_manifest_version = 2\n[variables]\nx = { required = true, default = \"d\" }\n[component.a]\n",
            "spin_manifest_version = 2\n[variables]\nx = { default = 1 }\n[component.a]\n",
            "spin_manifest_version = 2\n[variables]\nx = { default = \"\", colour = \"red\" }\n[component.a]\n",
            "spin_manifest_version = 2\n[variables]\nBad-Name = { default = \"\" }\n[component.a]\n",
            "spin_manifest_version = 2\n[variables]\nx = \"plain\"\n[component.a]\n",
            "spin_manifest_version = 2\n[component.a]\nallowed_outbound_hosts = \"https://a.example\"\n",
            "spin_manifest_version = 2\n[component.a]\nallowed_outbound_hosts = [1]\n",
        ] {
            assert!(Manifest::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn debug_hides_secret_defaults() {
        let m = Manifest::parse(
            "spin_manifest_version = 2\n[variables]\nt = { default = \"s3cr3t\", secret = true }\n[component.a]\n",
        )
        .unwrap();
        let shown = format!("{m:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
