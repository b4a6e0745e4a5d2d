//! Every git provider's verify + parse + rules, through `evaluate` on `/hooks/shop/git`.
//! The first byte picks the provider (and whether the signature is right); the rest is
//! the body, signed with the app's secret so that fuzzed payloads reach the parser.
#![no_main]

use autodeploy::evaluate;
use autodeploy_fuzz::{config, headers, hmac_hex, NOW_MS, SECRET};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let sig = if sel & 0x80 == 0 { hmac_hex(SECRET, body) } else { hmac_hex("wrong", body) };
    let ct = ("Content-Type", "application/json".to_string());
    let h = match sel % 8 {
        0 => headers(&[ct, ("X-GitHub-Event", "push".into()), ("X-GitHub-Delivery", "d".into()),
                       ("X-Hub-Signature-256", format!("sha256={sig}"))]),
        1 => headers(&[ct, ("X-Gitlab-Event", "Push Hook".into()), ("X-Gitlab-Token",
                       if sel & 0x80 == 0 { SECRET.into() } else { "wrong".into() })]),
        2 => headers(&[ct, ("X-Gitee-Event", "Push Hook".into()), ("X-Gitee-Token",
                       if sel & 0x80 == 0 { SECRET.into() } else { "wrong".into() })]),
        3 => headers(&[ct, ("X-Gogs-Event", "push".into()), ("X-Gogs-Delivery", "d".into()),
                       ("X-Gogs-Signature", sig)]),
        4 => headers(&[ct, ("X-Gitea-Event", "push".into()), ("X-Gitea-Delivery", "d".into()),
                       ("X-Gitea-Signature", sig)]),
        5 => headers(&[ct, ("X-Forgejo-Event", "push".into()), ("X-Forgejo-Delivery", "d".into()),
                       ("X-Forgejo-Signature", sig)]),
        6 => headers(&[ct, ("X-Event-Key", "repo:push".into()), ("X-Request-UUID", "d".into()),
                       ("X-Hub-Signature", format!("sha256={sig}"))]),
        // Form-encoded GitHub (`payload=`).
        _ => headers(&[("Content-Type", "application/x-www-form-urlencoded".into()),
                       ("X-GitHub-Event", "push".into()),
                       ("X-Hub-Signature-256", format!("sha256={sig}"))]),
    };
    let _ = evaluate(&config(), "POST", "/hooks/shop/git", &h, body, NOW_MS);
});
