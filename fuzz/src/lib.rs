//! Shared pieces of the fuzz targets: the app config, signing, provider headers.

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

pub const SECRET: &str = "fuzz-git-secret-0123456789abcdef";
pub const TOKEN: &str = "fuzz-image-token-0123456789abcdef";
pub const NOW_MS: u64 = 1_795_601_696_789;

/// The `config` of `autodeploy::evaluate`: git and image triggers enabled,
/// no repository filter, so a payload that parses gets as far as the rules allow.
pub fn config() -> String {
    json!({
        "app": {
            "name": "shop",
            "git": {"enabled": true, "repo": "", "branch": "main", "keyword": "deploy", "secret": SECRET},
            "image": {"enabled": true, "repository": "docker.io/acme/shop", "tag": "latest",
                      "tag_pattern": null, "token": TOKEN},
            "api": {"enabled": true, "secret_key": "fuzz-api-key-0123456789abcdef"},
            "deploy": {"target": "generic", "path": "/v1/apps/shop/deploy", "allowed_statuses": ["running"]},
            "status": "running"
        },
        "platform_url": "https://console.example.com",
        "platform_token": "tok"
    })
    .to_string()
}

/// Lowercase hex HMAC-SHA256 of `body` with `secret`.
pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn headers(pairs: &[(&str, String)]) -> autodeploy::model::Headers {
    autodeploy::model::Headers::new(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
}
