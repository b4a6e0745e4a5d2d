//! Glob patterns, matched by the `fast-glob` crate: branch and tag names, and
//! gitignore-style path filters.
//!
//! Syntax: `*` (any characters but `/`), `**` (any path segments), `?`, `[…]` (`[!…]`
//! negates), `{a,b}`, and `\` to take the next character literally (`\{`).

/// The longest pattern we accept.
pub const MAX_PATTERN: usize = 256;

/// Is `s` a plain name, with none of the characters that make a pattern (`*`, `?`, `[`,
/// `{`, `\`)? Git refuses `*`, `?`, `[` and `\` in ref names, so a branch name without
/// a brace matches only itself, as before patterns existed.
pub fn is_literal(s: &str) -> bool {
    !s.contains(['*', '?', '[', '{', '\\'])
}

/// Checks a pattern as a user wrote it: at most [`MAX_PATTERN`] bytes, no control
/// characters, valid syntax, and no leading `!` (the crate would read it as "not").
pub fn validate(pattern: &str) -> Result<(), &'static str> {
    if pattern.is_empty() || pattern.len() > MAX_PATTERN {
        return Err("must be a pattern of 1 to 256 characters");
    }
    if pattern.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    if pattern.starts_with('!') {
        return Err("a leading ! is not supported (write \\! for the character)");
    }
    fast_glob::validate(pattern).map_err(|e| match e.kind {
        fast_glob::ErrorKind::UnclosedBrace => "has a { without its }",
        fast_glob::ErrorKind::UnclosedBracket => "has a [ without its ]",
        fast_glob::ErrorKind::TrailingBackslash => "ends with a lone \\",
        _ => "has too many or too deeply nested {…} groups",
    })
}

/// Does the branch or tag `name` match `pattern`? A [literal](is_literal) pattern
/// matches only the same name; `*` does not cross a `/` (`release/*` is not
/// `release/1/hotfix`, `release/**` is).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    if is_literal(pattern) {
        pattern == name
    } else {
        fast_glob::glob_match(pattern, name)
    }
}

/// Path filters, gitignore-style, against paths from the repository's root:
/// - a pattern with a `/` at its start or in its middle is anchored at the root
///   (`/build`, `services/api`); one without matches at any depth (`*.md`, `docs`);
/// - a pattern that names a directory matches every file below it (`services/api`
///   matches `services/api/main.go`); a trailing `/` matches only below (`docs/`).
#[derive(Debug)]
pub struct PathFilter {
    include: Vec<Compiled>,
    exclude: Vec<Compiled>,
}

/// One pattern as the crate matches it: the file itself (unless the pattern ends in
/// `/`) and anything below it.
#[derive(Debug)]
struct Compiled {
    itself: Option<String>,
    below: String,
}

impl Compiled {
    fn new(pattern: &str) -> Compiled {
        let dir_only = pattern.ends_with('/');
        let trimmed = pattern.trim_end_matches('/');
        let body = match trimmed.strip_prefix('/') {
            Some(anchored) => anchored.to_string(),
            None if trimmed.contains('/') => trimmed.to_string(),
            None => format!("**/{trimmed}"),
        };
        Compiled {
            below: format!("{body}/**"),
            itself: (!dir_only).then_some(body),
        }
    }

    fn matches(&self, path: &str) -> bool {
        self.itself
            .as_deref()
            .is_some_and(|p| fast_glob::glob_match(p, path))
            || fast_glob::glob_match(&self.below, path)
    }
}

impl PathFilter {
    /// Patterns must have passed [`validate`].
    pub fn new(include: &[String], exclude: &[String]) -> PathFilter {
        let compile = |list: &[String]| list.iter().map(|p| Compiled::new(p)).collect();
        PathFilter {
            include: compile(include),
            exclude: compile(exclude),
        }
    }

    /// Does a change to `path` count? An empty include list takes every path; an
    /// exclude wins over an include.
    pub fn passes(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        (self.include.is_empty() || self.include.iter().any(|c| c.matches(path)))
            && !self.exclude.iter().any(|c| c.matches(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> PathFilter {
        let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        PathFilter::new(&own(include), &own(exclude))
    }

    #[test]
    fn names_literal_or_pattern() {
        let table = [
            ("main", "main", true),
            ("main", "main2", false),
            ("release/*", "release/1.2", true),
            ("release/*", "release/1/hotfix", false),
            ("release/**", "release/1/hotfix", true),
            ("{main,staging}", "staging", true),
            ("{main,staging}", "dev", false),
            ("v[0-9]*", "v1.2.0", true),
            ("v[0-9]*", "vnext", false),
            ("v?.*", "v1.0", true),
            // a literal brace, escaped; unescaped it is a group
            (r"feature\{x}", "feature{x}", true),
            ("feature{x}", "feature{x}", false),
            ("feature{x}", "featurex", true),
            // a plain name with characters a glob would read specially is still literal
            ("!hotfix", "!hotfix", true),
        ];
        for (pattern, name, want) in table {
            assert_eq!(name_matches(pattern, name), want, "{pattern} vs {name}");
        }
    }

    #[test]
    fn validation() {
        for good in [
            "main",
            "release/*",
            "{main,staging}",
            "v*",
            r"a\{b}",
            "**/*.md",
        ] {
            assert_eq!(validate(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "{main",
            "[ab",
            "trailing\\",
            "!main*",
            "a\nb",
            &"x".repeat(257),
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_gitignore_style() {
        // (pattern, path, matches)
        let table = [
            // no slash: at any depth, file or directory
            ("*.md", "README.md", true),
            ("*.md", "docs/guide/intro.md", true),
            ("*.md", "docs/guide/intro.mdx", false),
            ("docs", "docs/a.txt", true),
            ("docs", "web/docs/a.txt", true),
            ("docs", "documentation/a.txt", false),
            // a slash in the middle or at the start: from the root
            ("services/api", "services/api/main.go", true),
            ("services/api", "services/api", true),
            ("services/api", "old/services/api/main.go", false),
            ("services/api", "services/api-gateway/main.go", false),
            ("/build", "build/out.js", true),
            ("/build", "web/build/out.js", false),
            ("services/*/Dockerfile", "services/api/Dockerfile", true),
            ("services/*/Dockerfile", "services/api/v2/Dockerfile", false),
            ("services/**/Dockerfile", "services/api/v2/Dockerfile", true),
            ("services/{api,web}/**", "services/web/src/app.ts", true),
            ("services/{api,web}/**", "services/jobs/src/app.ts", false),
            // a trailing slash: only what is below a directory
            ("docs/", "docs/a.txt", true),
            ("docs/", "docs", false),
            ("src/**/*.rs", "src/a/b/c.rs", true),
            ("src/**/*.rs", "src/c.rs", true),
            ("[Mm]akefile", "Makefile", true),
            ("file?.txt", "sub/file1.txt", true),
        ];
        for (pattern, path, want) in table {
            assert_eq!(
                filter(&[pattern], &[]).passes(path),
                want,
                "{pattern} vs {path}"
            );
        }
    }

    #[test]
    fn include_and_exclude() {
        // empty include: everything
        assert!(filter(&[], &[]).passes("anything/at/all"));
        // exclude wins over include
        let f = filter(&["services/api"], &["*.md", "services/api/testdata/"]);
        assert!(f.passes("services/api/main.go"));
        assert!(!f.passes("services/api/README.md"));
        assert!(!f.passes("services/api/testdata/x.json"));
        assert!(!f.passes("web/index.html"));
        // only excludes: everything else counts
        let f = filter(&[], &["docs/**"]);
        assert!(f.passes("src/main.rs"));
        assert!(!f.passes("docs/index.md"));
    }
}
