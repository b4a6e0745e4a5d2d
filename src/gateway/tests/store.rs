//! Running for a year: a store that hangs, claims taken when claiming, records that
//! cannot be written, keys per app that stay bounded, deleting an app, and the app list
//! from its index, page by page.

use serde_json::{json, Value};

use super::super::fake::{FakeHost, START_MS};
use super::{push, shop};
use crate::gateway::DEPLOY_DEADLINE_MS;
use crate::state::Kv;

/// Store keys that mention the app `shop`.
fn shop_keys(host: &FakeHost) -> Vec<String> {
    host.kv
        .keys()
        .unwrap()
        .into_iter()
        .filter(|k| k.contains("shop"))
        .collect()
}

/// A store that hangs and comes back: the request is past the deadline when it could
/// deploy, so it does not (503), and its claim is released: the provider's retry
/// deploys, once.
#[test]
fn a_request_that_waited_for_the_store_past_the_deadline_does_not_deploy() {
    let host = FakeHost::default();
    shop(&host);
    // Each store call takes a second: loading the app, claiming… past 5 s.
    host.store_delay_ms.set(1_000);
    let late = push(&host, "d-1");
    assert_eq!(late.result(), (503, "failed".into()), "{}", late.text());
    let reason = late.json()["reason"].as_str().unwrap().to_string();
    assert!(
        reason.starts_with("not deployed: the request waited ")
            && reason.contains(&format!("longer than the {DEPLOY_DEADLINE_MS} ms")),
        "{reason}"
    );
    assert_eq!(host.calls(), 0);

    host.store_delay_ms.set(0);
    assert_eq!(push(&host, "d-1").result(), (202, "deployed".into()));
    assert_eq!(push(&host, "d-1").result(), (200, "duplicate".into()));
    assert_eq!(host.calls(), 1);
}

/// A store that is slow but not past the deadline deploys.
#[test]
fn a_slow_store_within_the_deadline_still_deploys() {
    let host = FakeHost::default();
    shop(&host);
    host.store_delay_ms.set(100);
    assert_eq!(push(&host, "d-1").result(), (202, "deployed".into()));
    assert_eq!(host.calls(), 1);
}

/// The claim's window is the one of the moment of claiming: a request that arrived at
/// the end of a window and claimed in the next one counts in the next one.
#[test]
fn the_claim_is_taken_when_claiming() {
    let host = FakeHost::default();
    shop(&host);
    // Arrive 1 ms before a window ends; the store takes 1 ms per call.
    let window = 30_000;
    let arrival = (START_MS / window + 1) * window - 1;
    host.now_ms.set(arrival);
    host.store_delay_ms.set(1);
    host.answer(Ok((500, Vec::new()))); // refused: the claim is released, its counter stays
    assert_eq!(push(&host, "d-1").result(), (502, "failed".into()));
    let counters: Vec<String> = shop_keys(&host)
        .into_iter()
        .filter(|k| k.starts_with("claim/"))
        .collect();
    // The delivery id and the same-push name, both in the next window.
    assert_eq!(counters.len(), 2, "{counters:?}");
    let next = format!("/{}", arrival / window + 1);
    assert!(counters.iter().all(|c| c.ends_with(&next)), "{counters:?}");
    assert!(counters.contains(&format!("claim/shop/d-1{next}")));
}

/// The most keys one app can have: its record, the delivery log and its list of
/// refusals before authentication, the ring, and per ring slot up to three names, each
/// with a done record and a window counter.
const BOUND: usize =
    1 + 51 + 21 + 1 + crate::state::delivery::ring::CAPACITY as usize * (1 + 3 * 2);

/// 10,000 deployed and 1,000 refused deliveries (some refused before authentication)
/// for one app leave at most the bound.
#[test]
fn keys_per_app_stay_bounded_through_the_gateway() {
    let host = FakeHost::default();
    shop(&host);
    let fixture = String::from_utf8(super::fixture("github/push.json")).unwrap();
    for n in 0..11_000u32 {
        host.advance(3_000);
        // Each a push of its own (another before and after).
        let body = fixture
            .replace(
                "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
                &format!("{n:040x}"),
            )
            .replace(
                "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
                &format!("{:040x}", n + 1),
            );
        let body = body.as_bytes();
        let refused = n % 11 == 10;
        let forged = refused && n % 7 == 0;
        if refused && !forged {
            host.answer(Ok((500, Vec::new())));
        }
        let secret = if forged {
            "not the secret"
        } else {
            super::GITHUB_SECRET
        };
        let answer = super::github(&host, secret, "push", &format!("d-{n}"), body);
        let expected = match (refused, forged) {
            (_, true) => 401,
            (true, false) => 502,
            (false, false) => 202,
        };
        assert_eq!(answer.status(), expected, "{n}: {}", answer.text());
    }
    let keys = shop_keys(&host);
    assert!(keys.len() <= BOUND, "{} keys, bound {BOUND}", keys.len());
    // Without the ring, every delivery would have left a record or a counter.
    assert!(keys.len() < 11_000 / 3, "{} keys", keys.len());
}

/// Deleting an app removes every key its deliveries left (and the next app of that
/// name starts clean).
#[test]
fn deleting_an_app_removes_all_its_keys() {
    let host = FakeHost::default();
    shop(&host);
    for n in 0..30 {
        host.advance(1_000);
        if n % 3 == 1 {
            host.answer(Ok((500, Vec::new())));
        }
        // Each a push of its own: the ref moved from another commit.
        let body = super::push_with(|p| p["before"] = format!("{n:040x}").into());
        let answer = super::github(
            &host,
            super::GITHUB_SECRET,
            "push",
            &format!("d-{n}"),
            &body,
        );
        assert_eq!(answer.status(), if n % 3 == 1 { 502 } else { 202 });
    }
    // A claim whose instance died mid-deploy.
    let crashed =
        crate::state::delivery::Delivery::new("crashed", crate::state::delivery::Dedupe::Forever);
    crate::state::delivery::claim(&host.kv, "shop", &crashed, host.now_ms.get()).unwrap();
    assert!(shop_keys(&host).len() > 30);
    let deleted = host.admin("DELETE", "/api/apps/shop", &Value::Null);
    assert_eq!(deleted.status(), 204);
    assert_eq!(shop_keys(&host), Vec::<String>::new());
    shop(&host);
    assert_eq!(push(&host, "d-0").result(), (202, "deployed".into()));
}

fn names_of(answer: &Value) -> Vec<String> {
    answer["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

/// 2,000 apps list page by page, with a constant number of store reads per page and
/// never a listing of the store's keys.
#[test]
fn apps_list_page_by_page_from_the_index() {
    let host = FakeHost::default();
    let mut expected = Vec::new();
    for n in (0..2_000).rev() {
        let name = format!("app-{n:04}");
        let body = json!({"deploy": {"target": "generic", "path": "/deploy"}});
        let created = host.admin("PUT", &format!("/api/apps/{name}"), &body);
        assert_eq!(created.status(), 201, "{}", created.text());
        expected.push(name);
    }
    expected.sort();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        host.reset_store_calls();
        let path = match &after {
            Some(after) => format!("/api/apps?limit=200&after={after}"),
            None => "/api/apps?limit=200".to_string(),
        };
        let page = host.admin("GET", &path, &Value::Null);
        assert_eq!(page.status(), 200, "{}", page.text());
        assert_eq!(host.store_calls("keys"), 0);
        assert!(
            host.store_calls("get") <= 201,
            "{}",
            host.store_calls("get")
        );
        let page = page.json();
        seen.extend(names_of(&page));
        pages += 1;
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 10);
    assert_eq!(seen, expected);

    // The default page is 50; a limit out of range names the field.
    let first = host.admin("GET", "/api/apps", &Value::Null).json();
    assert_eq!(names_of(&first).len(), 50);
    assert_eq!(first["next"], "app-0049");
    let bad = host.admin("GET", "/api/apps?limit=201", &Value::Null);
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json()["field"], "limit");

    // A deleted app leaves the index.
    host.admin("DELETE", "/api/apps/app-0000", &Value::Null);
    let first = host.admin("GET", "/api/apps?limit=1", &Value::Null).json();
    assert_eq!(names_of(&first), ["app-0001"]);
}

/// A store written before the index existed: the first list builds the index from the
/// keys, once.
#[test]
fn a_store_without_an_index_lists_its_apps_once_from_the_keys() {
    let host = FakeHost::default();
    shop(&host);
    host.kv.delete("apps/index").unwrap();
    host.reset_store_calls();
    let listed = host.admin("GET", "/api/apps", &Value::Null).json();
    assert_eq!(names_of(&listed), ["shop"]);
    assert_eq!(host.store_calls("keys"), 1);
    host.reset_store_calls();
    host.admin("GET", "/api/apps", &Value::Null);
    assert_eq!(host.store_calls("keys"), 0);
}

/// Each app in the list comes with its newest delivery (a few store calls, not a read of
/// its whole log), so the console's list needs no call per app.
#[test]
fn the_app_list_shows_each_apps_newest_delivery() {
    let host = FakeHost::default();
    shop(&host);
    let quiet = json!({"deploy": {"target": "generic", "path": "/deploy"}});
    assert_eq!(host.admin("PUT", "/api/apps/quiet", &quiet).status(), 201);
    assert_eq!(push(&host, "d-1").status(), 202);
    assert_eq!(push(&host, "d-1").result().1, "duplicate");

    host.reset_store_calls();
    let list = host.admin("GET", "/api/apps", &Value::Null).json();
    assert!(
        host.store_calls("get") <= 1 + 2 + 2,
        "{}",
        host.store_calls("get")
    );
    let apps = list["apps"].as_array().unwrap();
    assert_eq!(apps[0]["name"], "quiet");
    assert_eq!(apps[0]["last_delivery"], Value::Null);
    assert_eq!(apps[1]["name"], "shop");
    let newest = &apps[1]["last_delivery"];
    assert_eq!(
        (&newest["id"], &newest["result"]),
        (&json!("d-1"), &json!("duplicate"))
    );
}
