//! The rules for each field of an app record.

use crate::support::glob;

fn printable(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() || c.is_whitespace())
}

pub(super) fn validate_repo(s: &str) -> Result<(), &'static str> {
    if s.len() > 512 || !printable(s) {
        return Err("must be a repository URL without spaces (at most 512 characters)");
    }
    Ok(())
}

/// The most patterns in each of `git.paths.include` and `git.paths.exclude`.
pub(super) const MAX_PATH_PATTERNS: usize = 50;

/// A branch name as git accepts it, or a glob of names ([`glob::is_literal`] tells
/// which).
pub(super) fn validate_branch(s: &str) -> Result<(), &'static str> {
    if glob::is_literal(s) {
        validate_branch_name(s)
    } else {
        validate_name_pattern(s)
    }
}

/// `git.tags`: a glob of tag names (a plain name is one tag).
pub(super) fn validate_tags(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || glob::is_literal(s) {
        // `""` unsets it; a plain name is checked like a branch name (git's rules for
        // both are the same).
        return match s {
            "" => Ok(()),
            _ => validate_branch_name(s)
                .map_err(|_| "must be a valid git tag name or a glob such as \"v*\""),
        };
    }
    validate_name_pattern(s)
}

/// A glob of branch or tag names: a valid pattern with no whitespace.
fn validate_name_pattern(s: &str) -> Result<(), &'static str> {
    if !printable(s) {
        return Err("must be a pattern without spaces, such as \"release/*\"");
    }
    glob::validate(s)
}

/// One of `git.paths.include` or `exclude`: a gitignore-style glob.
pub(super) fn validate_path_pattern(s: &str) -> Result<(), &'static str> {
    glob::validate(s)
}

/// A branch name as git accepts it (`git check-ref-format --branch`), without `refs/heads/`.
fn validate_branch_name(s: &str) -> Result<(), &'static str> {
    const WHY: &str = "must be a valid git branch name, e.g. \"main\" or \"release/1.x\", or a glob such as \"release/*\"";
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

pub(super) fn validate_keyword(s: &str) -> Result<(), &'static str> {
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

pub(super) fn validate_secret(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
        return Err("must be 1 to 256 characters without control characters");
    }
    Ok(())
}

/// Image tokens sit in a URL path.
pub(super) fn validate_token(s: &str) -> Result<(), &'static str> {
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

pub(super) fn validate_image_repository(s: &str) -> Result<(), &'static str> {
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
pub(super) fn validate_tag(s: &str) -> Result<(), &'static str> {
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

pub(super) fn validate_tag_pattern(s: &str) -> Result<(), &'static str> {
    if s.len() > 256 {
        return Err("must be at most 256 characters");
    }
    crate::registries::tagpattern::TagPattern::new(s)
        .map(|_| ())
        .map_err(|_| "invalid regular expression")
}

/// The path is appended to `platform_url`; it must keep the call on that origin.
pub(super) fn validate_deploy_path(s: &str) -> Result<(), &'static str> {
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

pub(super) fn validate_service_id(s: &str) -> Result<(), &'static str> {
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

pub(super) fn validate_status(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.len() > 64 || !printable(s) {
        return Err("must be a non-empty word such as \"running\"");
    }
    Ok(())
}
