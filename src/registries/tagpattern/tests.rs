//! The engine against its syntax, and against regex-lite on a spread of patterns.

use super::TagPattern;

#[test]
fn matches_in_full_only() {
    let p = TagPattern::new(r"v\d+\.\d+\.\d+").unwrap();
    assert!(p.matches("v1.2.3"));
    assert!(!p.matches("v1.2.3-rc1"));
    assert!(!p.matches("xv1.2.3"));
    let alt = TagPattern::new("latest|stable").unwrap();
    assert!(alt.matches("stable"));
    assert!(!alt.matches("latest-2"));
    assert!(TagPattern::new("^release-[0-9]{8}$")
        .unwrap()
        .matches("release-20261125"));
}

#[test]
fn refuses_what_it_does_not_support() {
    for bad in [
        "(", ")", "[a-", "a{2,1}", "*a", "a**", r"\b", "(?i)a", "a{1001}", r"\", "[z-a]", "a^",
    ] {
        assert!(TagPattern::new(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn no_catastrophic_backtracking() {
    let p = TagPattern::new("(a+)+b").unwrap();
    assert!(!p.matches(&"a".repeat(5000)));
    let p = TagPattern::new("(a|aa)*c").unwrap();
    assert!(!p.matches(&"a".repeat(5000)));
}

/// The same answers as the `regex` family (regex-lite) on a spread of patterns and tags.
#[test]
fn agrees_with_regex_lite() {
    let patterns = [
        r"v\d+\.\d+\.\d+",
        r"v?[0-9]+(\.[0-9]+){1,2}(-rc\d+)?",
        "latest|stable|edge",
        "(?:main|release)-[a-f0-9]{7}",
        r"[^-]+-\w{2,}",
        r"prod-.*",
        r".+-(amd64|arm64)",
        r"\d{4}\.\d{2}\.\d{2}",
        "a{2,}b?",
        "[a-c-]+",
        r"[\w.]+",
        "(ab|a)(bc|c)",
        "x*y*z*",
        "",
    ];
    let tags = [
        "",
        "v1.2.3",
        "1.2",
        "1.2.3.4",
        "v1.2-rc1",
        "latest",
        "stable",
        "main-abcdef0",
        "release-1234567",
        "main-ABCDEF0",
        "foo-ba",
        "foo-b",
        "-ab",
        "prod-",
        "prod-eu-1",
        "build-amd64",
        "build-386",
        "2026.11.25",
        "aa",
        "aab",
        "ab",
        "a-c",
        "abc",
        "x.y_z",
        "zz",
        "xyz",
        "yx",
    ];
    for p in patterns {
        let ours = TagPattern::new(p).unwrap();
        let theirs = regex_lite::Regex::new(&format!("^(?:{p})$")).unwrap();
        for t in tags {
            assert_eq!(
                ours.matches(t),
                theirs.is_match(t),
                "pattern {p:?} tag {t:?}"
            );
        }
    }
}
