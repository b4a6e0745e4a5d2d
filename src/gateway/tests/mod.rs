//! The gateway through the native fake host: the hook flow, the admin API and the
//! trigger export, in milliseconds and without the component.

mod admin;
mod console;
mod hooks;
mod manual;
mod notify;
mod outcome;
mod payloads;
mod rejected;
mod replays;
mod store;
mod trigger;

use serde_json::{json, Value};

use super::fake::{Answered, FakeHost};
use crate::support::crypto::{hex, hmac_sha256};

/// The GitHub fixture's secret (its headers carry signatures made with it).
const GITHUB_SECRET: &str = "fixture-github-secret";

fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The usual app: a GitHub push to main with `@deploy` deploys; the API trigger is on.
fn shop(host: &FakeHost) -> Value {
    create(
        host,
        json!({
            "git": {"enabled": true, "repo": "https://github.com/acme/shop", "branch": "main",
                    "secret": GITHUB_SECRET},
            "api": {"enabled": true, "secret_key": "api-secret-key-0123456789"},
            "deploy": {"target": "generic", "path": "/v1/apps/shop/deploy"}
        }),
    )
}

/// Creates the app `shop` from `body` (a 201) and returns it as `GET` shows it.
fn create(host: &FakeHost, body: Value) -> Value {
    let created = host.admin("PUT", "/api/apps/shop", &body);
    assert_eq!(created.status(), 201, "{}", created.text());
    created.json()
}

/// The entry of `delivery` in `shop`'s delivery log, as the admin API shows it.
fn delivery_entry(host: &FakeHost, delivery: &str) -> Value {
    let log = host
        .admin("GET", "/api/apps/shop/deliveries", &Value::Null)
        .json();
    log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == delivery)
        .unwrap_or_else(|| panic!("{delivery} not in {log}"))
        .clone()
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
fn sign(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), body)))
}

/// A GitHub `event` delivery of `body`, signed with `secret`.
fn github(host: &FakeHost, secret: &str, event: &str, id: &str, body: &[u8]) -> Answered {
    let signature = sign(secret, body);
    host.request(
        "POST",
        "/hooks/shop/git",
        &[
            ("content-type", "application/json"),
            ("x-github-event", event),
            ("x-github-delivery", id),
            ("x-hub-signature-256", &signature),
        ],
        body,
    )
}

/// The fixture push (`@deploy` to main), signed with the right secret.
fn push(host: &FakeHost, id: &str) -> Answered {
    github(
        host,
        GITHUB_SECRET,
        "push",
        id,
        &fixture("github/push.json"),
    )
}

/// The fixture push with `edit` applied.
fn push_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture("github/push.json")).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}
