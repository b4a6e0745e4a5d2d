//! Hook routes: `/hooks/{app}/git`, `/hooks/{app}/image/{token}`, `/hooks/{app}/api`.

use crate::model::Trigger;
use crate::state::app::valid_app_name;

/// Body limits, enforced while reading, before any verification.
pub const GIT_BODY_LIMIT: usize = 5 * 1024 * 1024;
pub const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// `/hooks/{app}/git`, `/hooks/{app}/image/{token}`, `/hooks/{app}/api`.
#[derive(Debug, PartialEq, Eq)]
pub struct HookRoute<'a> {
    pub app: &'a str,
    pub kind: HookKind<'a>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum HookKind<'a> {
    Git,
    Image { token: &'a str },
    Api,
}

impl HookKind<'_> {
    pub fn trigger(&self) -> Trigger {
        match self {
            HookKind::Git => Trigger::Git,
            HookKind::Image { .. } => Trigger::Image,
            HookKind::Api => Trigger::Api,
        }
    }

    pub fn body_limit(&self) -> usize {
        match self {
            HookKind::Git => GIT_BODY_LIMIT,
            _ => SMALL_BODY_LIMIT,
        }
    }
}

/// Parses a hook path (query ignored). `None` for anything else, including app names
/// outside `[a-z0-9][a-z0-9-]{0,62}`.
pub fn parse_route(path: &str) -> Option<HookRoute<'_>> {
    let path = path.split('?').next().unwrap_or_default();
    let rest = path.strip_prefix("/hooks/")?;
    let mut parts = rest.split('/');
    let app = parts.next()?;
    if !valid_app_name(app) {
        return None;
    }
    let kind = match (parts.next()?, parts.next(), parts.next()) {
        ("git", None, _) => HookKind::Git,
        ("api", None, _) => HookKind::Api,
        ("image", Some(token), None) if !token.is_empty() => HookKind::Image { token },
        _ => return None,
    };
    Some(HookRoute { app, kind })
}
