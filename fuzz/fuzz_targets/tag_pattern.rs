//! The tag pattern compiler and matcher: `pattern\ntag`; never panics, never hangs.
#![no_main]

use autodeploy::TagPattern;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (pattern, tag) = s.split_once('\n').unwrap_or((s, "latest"));
    if let Ok(p) = TagPattern::new(pattern) {
        let _ = p.matches(tag);
    }
});
