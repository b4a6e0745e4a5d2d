//! Every image registry's parse (Docker Hub, Harbor, Quay, Aliyun ACR detected from the
//! body; GHCR from a signed GitHub `package` event), through `evaluate` on the image hook.
#![no_main]

use autodeploy::evaluate;
use autodeploy_fuzz::{config, headers, hmac_hex, NOW_MS, TOKEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let ct = ("Content-Type", "application/json".to_string());
    let h = match sel % 3 {
        0 => headers(&[ct]),
        1 => headers(&[ct, ("X-GitHub-Event", "package".into()), ("X-GitHub-Delivery", "d".into()),
                       ("X-Hub-Signature-256", format!("sha256={}", hmac_hex(TOKEN, body)))]),
        _ => headers(&[ct, ("Authorization", "Bearer x".into())]),
    };
    let path = format!("/hooks/shop/image/{TOKEN}");
    let _ = evaluate(&config(), "POST", &path, &h, body, NOW_MS);
});
