//! `image.tag_pattern`: a regular expression a pushed tag must match in full.

/// A compiled tag pattern, anchored at both ends.
pub struct TagPattern(regex_lite::Regex);

impl TagPattern {
    pub fn new(pattern: &str) -> Result<TagPattern, regex_lite::Error> {
        regex_lite::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(1 << 16)
            .build()
            .map(TagPattern)
    }

    pub fn matches(&self, tag: &str) -> bool {
        self.0.is_match(tag)
    }
}

#[cfg(test)]
mod tests {
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
        assert!(TagPattern::new("(").is_err());
    }
}
