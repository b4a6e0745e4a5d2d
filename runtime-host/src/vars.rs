//! Spin application variables (`fermyon:spin/variables@2.0.0`): the values, and the
//! interface the guest reads them through.
//!
//! Names follow Spin's rules: lowercase ASCII letters, digits and `_`, starting with a
//! letter, no `__`, not ending in `_`. A lookup of a name that breaks them is
//! `invalid-name`; a valid name with no value is `undefined(name)`.
//!
//! Values come from `--var NAME=VALUE` / [`HostBuilder::var`](crate::HostBuilder::var)
//! (the name is lowercased) and from `SPIN_VARIABLE_<NAME>` environment variables (the
//! name uppercased in the environment, e.g. `SPIN_VARIABLE_ADMIN_TOKEN` → `admin_token`).
//! An explicit value wins over the environment.

use std::collections::BTreeMap;

use crate::bindings::fermyon::spin::variables;
use crate::ctx::Ctx;

/// The environment prefix Spin's environment-variable provider uses.
pub const ENV_PREFIX: &str = "SPIN_VARIABLE_";

/// Why a lookup failed; mirrors the WIT `variables.error` cases the host returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarError {
    /// The name breaks Spin's naming rules (the message says how).
    InvalidName(String),
    /// No value for this (valid) name.
    Undefined(String),
}

impl std::fmt::Display for VarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarError::InvalidName(m) => write!(f, "invalid variable name: {m}"),
            VarError::Undefined(n) => write!(f, "undefined variable {n:?}"),
        }
    }
}

impl std::error::Error for VarError {}

/// Variable values by (lowercase) name. Its `Debug` shows the names only: values are
/// tokens and secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

impl std::fmt::Debug for Variables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Variables")
            .field("names", &self.names().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Variables {
    /// No variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set `name` (lowercased) to `value`, replacing any earlier value.
    pub fn set(&mut self, name: &str, value: &str) {
        self.values
            .insert(name.to_ascii_lowercase(), value.to_string());
    }

    /// Set every `SPIN_VARIABLE_<NAME>` of `env` that is not set yet (explicit values win).
    pub fn fill_from_env<I, K, V>(&mut self, env: I)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (k, v) in env {
            if let Some(name) = k.as_ref().strip_prefix(ENV_PREFIX) {
                if name.is_empty() {
                    continue;
                }
                self.values
                    .entry(name.to_ascii_lowercase())
                    .or_insert_with(|| v.as_ref().to_string());
            }
        }
    }

    /// Look `name` up by Spin's rules.
    pub fn get(&self, name: &str) -> Result<String, VarError> {
        validate_name(name).map_err(VarError::InvalidName)?;
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| VarError::Undefined(name.to_string()))
    }

    /// The names that have a value.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

/// Check a variable name against Spin's rules; the error says which rule it breaks.
pub fn validate_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("a variable name must not be empty".to_string());
    };
    if !first.is_ascii_lowercase() {
        return Err(format!(
            "{name:?}: a variable name must start with a lowercase ASCII letter"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!(
            "{name:?}: a variable name may contain only lowercase ASCII letters, digits and '_'"
        ));
    }
    if name.contains("__") {
        return Err(format!(
            "{name:?}: a variable name must not contain consecutive underscores"
        ));
    }
    if name.ends_with('_') {
        return Err(format!(
            "{name:?}: a variable name must not end with an underscore"
        ));
    }
    Ok(())
}

/// Parse a `NAME=VALUE` command-line assignment (the value may contain `=`).
pub fn parse_assignment(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))?;
    let name = name.to_ascii_lowercase();
    validate_name(&name)?;
    Ok((name, value.to_string()))
}

/// `fermyon:spin/variables@2.0.0`: the guest's lookups.
impl variables::Host for Ctx {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        Ok(self.shared.vars.get(&name).map_err(|e| match e {
            VarError::InvalidName(m) => variables::Error::InvalidName(m),
            VarError::Undefined(n) => variables::Error::Undefined(n),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::test_support::{ctx, shared};

    #[test]
    fn lookups_follow_spin_rules() {
        let mut v = Variables::new();
        v.set("Admin_Token", "s3cret");
        v.set("platform_url", "https://console.example.com");
        assert_eq!(v.get("admin_token").unwrap(), "s3cret");
        assert_eq!(
            v.get("platform_url").unwrap(),
            "https://console.example.com"
        );
        assert_eq!(
            v.get("public_url"),
            Err(VarError::Undefined("public_url".into()))
        );
        assert!(matches!(
            v.get("Admin_Token"),
            Err(VarError::InvalidName(_))
        ));
        assert!(matches!(v.get(""), Err(VarError::InvalidName(_))));
        assert!(matches!(v.get("1abc"), Err(VarError::InvalidName(_))));
        assert!(matches!(v.get("a__b"), Err(VarError::InvalidName(_))));
        assert!(matches!(v.get("ab_"), Err(VarError::InvalidName(_))));
        assert!(matches!(v.get("a-b"), Err(VarError::InvalidName(_))));
    }

    #[test]
    fn env_fills_what_flags_do_not_set() {
        let mut v = Variables::new();
        // --var wins over the environment.
        v.set("admin_token", "from-flag");
        v.fill_from_env([
            ("SPIN_VARIABLE_ADMIN_TOKEN", "from-env"),
            ("SPIN_VARIABLE_PLATFORM_URL", "http://127.0.0.1:3001"),
            ("SPIN_VARIABLE_", "ignored"),
            ("PATH", "/usr/bin"),
        ]);
        assert_eq!(v.get("admin_token").unwrap(), "from-flag");
        assert_eq!(v.get("platform_url").unwrap(), "http://127.0.0.1:3001");
        assert_eq!(
            v.names().collect::<Vec<_>>(),
            ["admin_token", "platform_url"]
        );
    }

    #[test]
    fn debug_shows_names_not_values() {
        let mut v = Variables::new();
        v.set("admin_token", "s3cr3t-admin");
        v.set("platform_token", "s3cr3t-platform");
        let shown = format!("{v:?} {v:#?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("admin_token") && shown.contains("platform_token"));
    }

    #[test]
    fn assignments_parse() {
        assert_eq!(
            parse_assignment("PLATFORM_TOKEN=a=b").unwrap(),
            ("platform_token".to_string(), "a=b".to_string())
        );
        assert_eq!(
            parse_assignment("x=").unwrap(),
            ("x".to_string(), String::new())
        );
        assert!(parse_assignment("novalue").is_err());
        assert!(parse_assignment("bad-name=1").is_err());
    }

    #[tokio::test]
    async fn variables_interface() {
        let shared = shared(None);
        let mut c = ctx(&shared);
        use variables::Host as _;
        assert_eq!(
            c.get("admin_token".into()).await.unwrap().unwrap(),
            "s3cret"
        );
        assert!(matches!(
            c.get("platform_url".into()).await.unwrap(),
            Err(variables::Error::Undefined(n)) if n == "platform_url"
        ));
        assert!(matches!(
            c.get("ADMIN_TOKEN".into()).await.unwrap(),
            Err(variables::Error::InvalidName(_))
        ));
    }
}
