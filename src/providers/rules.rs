//! The rules that turn a verified push into "deploy" or "ignored".

/// Does `message` call for a deploy with `@keyword`?
///
/// The mention must be a whole token: the character before `@` is the start of the
/// message or not one of `A-Za-z0-9._%+-` (so `ops@deploy.io` is an e-mail address, not a
/// mention), and the character after the keyword is the end or not one of `A-Za-z0-9_-`
/// (so `@deployment` does not count, but `(@deploy)` and `@deploy.` do). Case-sensitive.
/// An empty keyword matches every message.
pub fn mentions_keyword(message: &str, keyword: &str) -> bool {
    if keyword.is_empty() {
        return true;
    }
    let bytes = message.as_bytes();
    let before_ok = |i: usize| {
        i == 0 || {
            let c = bytes[i - 1];
            !(c.is_ascii_alphanumeric() || b"._%+-".contains(&c))
        }
    };
    let after_ok = |end: usize| {
        end == bytes.len() || {
            let c = bytes[end];
            !(c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        }
    };
    message.match_indices('@').any(|(at, _)| {
        message[at + 1..].starts_with(keyword) && before_ok(at) && after_ok(at + 1 + keyword.len())
    })
}

/// The markers that make a head commit skip its deploy, whatever the keyword.
pub const SKIP_MARKERS: [&str; 4] = ["[skip deploy]", "[deploy skip]", "[skip cd]", "[cd skip]"];

/// The first skip marker in `message`, compared without regard to ASCII case
/// (`[Skip Deploy]` counts). Looked for at each `[`, without copying the message.
pub fn skip_marker(message: &str) -> Option<&'static str> {
    let bytes = message.as_bytes();
    message.match_indices('[').find_map(|(at, _)| {
        SKIP_MARKERS.into_iter().find(|m| {
            bytes
                .get(at..at + m.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(m.as_bytes()))
        })
    })
}

/// What a git ref names.
#[derive(Debug, PartialEq, Eq)]
pub enum GitRef<'a> {
    Branch(&'a str),
    Tag(&'a str),
    Other(&'a str),
}

/// Classifies `refs/heads/feature/x` as the branch `feature/x` (slashes kept),
/// `refs/tags/v1` as a tag; a bare name is taken as a branch.
pub fn parse_ref(full: &str) -> GitRef<'_> {
    if let Some(branch) = full.strip_prefix("refs/heads/") {
        GitRef::Branch(branch)
    } else if let Some(tag) = full.strip_prefix("refs/tags/") {
        GitRef::Tag(tag)
    } else if full.starts_with("refs/") {
        GitRef::Other(full)
    } else {
        GitRef::Branch(full)
    }
}

/// A git commit id made only of zeros: what providers send as `after` of a deletion.
pub fn is_zero_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|c| c == b'0')
}

/// Normalises a repository URL the way Argo CD compares them: scheme, user, `.git`
/// suffix, trailing slashes and case do not matter, and the scp-like
/// `git@host:owner/repo` form equals `https://host/owner/repo`.
pub fn normalize_repo_url(url: &str) -> String {
    let mut s = url.trim().to_ascii_lowercase();
    if let Some(pos) = s.find("://") {
        s.drain(..pos + 3);
    } else if let Some(colon) = s.find(':') {
        // scp-like syntax: [user@]host:path (no scheme, no slash before the colon).
        if !s[..colon].contains('/') {
            s.replace_range(colon..=colon, "/");
        }
    }
    if let Some(at) = s.find('@') {
        if !s[..at].contains('/') {
            s.drain(..=at);
        }
    }
    while s.ends_with('/') {
        s.pop();
    }
    if let Some(stripped) = s.strip_suffix(".git") {
        s.truncate(stripped.len());
    }
    s
}

/// Does the push's repository (any of its URLs) match the configured `repo`?
/// An empty `repo` accepts any repository.
pub fn repo_matches<'a>(configured: &str, urls: impl IntoIterator<Item = &'a str>) -> bool {
    if configured.trim().is_empty() {
        return true;
    }
    let want = normalize_repo_url(configured);
    urls.into_iter()
        .filter(|u| !u.is_empty())
        .any(|u| normalize_repo_url(u) == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_whole_token() {
        let yes = [
            "fix: cache @deploy",
            "@deploy",
            "(@deploy)",
            "ship it @deploy.",
            "@deploy, please",
            "line one\n@deploy\nline three",
            "x @deployment then @deploy",
            "[@deploy]",
        ];
        let no = [
            "@deployment",
            "ops@deploy.io",
            "deploy",
            "@Deploy",
            "@deploy_now",
            "@deploy-prod",
            "a.@deploy",
            "a+@deploy",
            "",
            "@",
        ];
        for m in yes {
            assert!(mentions_keyword(m, "deploy"), "should match: {m:?}");
        }
        for m in no {
            assert!(!mentions_keyword(m, "deploy"), "should not match: {m:?}");
        }
    }

    #[test]
    fn keyword_with_multibyte_text_around() {
        assert!(mentions_keyword("修复 @deploy 完成", "deploy"));
        assert!(mentions_keyword("é@deploy", "deploy"));
        // `é` is not one of A-Za-z0-9_- so the keyword ends there.
        assert!(mentions_keyword("@deployé", "deploy"));
    }

    #[test]
    fn empty_keyword_matches_everything() {
        assert!(mentions_keyword("", ""));
        assert!(mentions_keyword("anything", ""));
    }

    #[test]
    fn skip_markers_in_any_case_anywhere() {
        let table = [
            ("fix typo [skip deploy]", Some("[skip deploy]")),
            ("[Deploy Skip] docs", Some("[deploy skip]")),
            ("a\n\n[SKIP CD]", Some("[skip cd]")),
            ("x [cd skip] and [skip deploy]", Some("[cd skip]")),
            ("修复 [skip deploy] 完成", Some("[skip deploy]")),
            ("[skip ci] @deploy", None),
            ("[skip  deploy]", None),
            ("skip deploy", None),
            ("[skip deplo", None),
            ("", None),
        ];
        for (message, want) in table {
            assert_eq!(skip_marker(message), want, "{message:?}");
        }
    }

    #[test]
    fn refs() {
        assert_eq!(parse_ref("refs/heads/main"), GitRef::Branch("main"));
        assert_eq!(
            parse_ref("refs/heads/feature/x"),
            GitRef::Branch("feature/x")
        );
        assert_eq!(parse_ref("refs/tags/v1.0"), GitRef::Tag("v1.0"));
        assert_eq!(
            parse_ref("refs/pull/1/head"),
            GitRef::Other("refs/pull/1/head")
        );
        assert_eq!(parse_ref("main"), GitRef::Branch("main"));
    }

    #[test]
    fn zero_sha() {
        assert!(is_zero_sha("0000000000000000000000000000000000000000"));
        assert!(!is_zero_sha("0000000000000000000000000000000000000001"));
        assert!(!is_zero_sha(""));
    }

    #[test]
    fn repo_urls_compare_like_argo_cd() {
        let same = [
            "https://github.com/acme/shop",
            "https://github.com/acme/shop.git",
            "http://github.com/Acme/Shop/",
            "git@github.com:acme/shop.git",
            "ssh://git@github.com/acme/shop.git",
            "git://github.com/acme/shop.git",
            "github.com/acme/shop",
        ];
        for u in same {
            assert_eq!(normalize_repo_url(u), "github.com/acme/shop", "{u}");
        }
        assert_ne!(
            normalize_repo_url("https://github.com/acme/shop2"),
            normalize_repo_url("https://github.com/acme/shop")
        );
        assert!(repo_matches("", ["https://x/y"]));
        assert!(repo_matches(
            "git@github.com:acme/shop.git",
            ["", "https://github.com/acme/shop"]
        ));
        assert!(!repo_matches(
            "https://github.com/acme/other",
            ["https://github.com/acme/shop"]
        ));
    }
}
