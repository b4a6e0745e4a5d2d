//! Apps in the store: one record per app (`app/{name}`) and an index of their names
//! (`apps/index`), so the app list never lists the store's keys (on Spin's Redis store
//! that is `KEYS *`, which blocks Redis for every client).
//!
//! Every write is a compare-and-swap against the value read, retried on conflict: a
//! platform's status report that read the app before an admin's rotation cannot write
//! the old secret back. The index is a sorted JSON array of names, updated the same
//! way; a writer reads it back after its swap and tries again should its name be
//! missing (Spin's SQLite store swaps a key that was absent with a plain upsert, so two
//! first writers could otherwise overwrite each other).

use serde_json::Value;

use super::App;
use crate::error::Error;
use crate::state::{Kv, StoreError};

const INDEX_KEY: &str = "apps/index";
/// Apps per page of the app list when `limit` is not given, and at most.
pub const PAGE_DEFAULT: usize = 50;
pub const PAGE_MAX: usize = 200;
/// Swaps tried before giving up on a contended key (each retry re-reads it).
const SWAP_TRIES: usize = 16;

fn app_key(name: &str) -> String {
    format!("app/{name}")
}

fn parse(name: &str, raw: &[u8]) -> Result<App, StoreError> {
    crate::support::json::parse(raw)
        .map_err(|e| e.to_string())
        .and_then(|v| App::from_stored(name, &v).map_err(|e| e.reason()))
        .map_err(|e| StoreError(format!("stored app {name} is unreadable: {e}")))
}

fn to_bytes(app: &App) -> Vec<u8> {
    serde_json::to_vec(&app.to_json()).expect("apps serialise")
}

fn contended(what: &str) -> Error {
    Error::Store(format!(
        "{what}: still changed by other writers after {SWAP_TRIES} tries"
    ))
}

/// The app `name`, if there is one.
pub fn load(kv: &dyn Kv, name: &str) -> Result<Option<App>, StoreError> {
    kv.get(&app_key(name))?
        .map(|raw| parse(name, &raw))
        .transpose()
}

/// Changes the app `name` with `change`, atomically: `change` runs again on the fresh
/// record when another writer changed it meanwhile. `Ok(None)` when there is no such app.
pub fn update(
    kv: &dyn Kv,
    name: &str,
    change: &mut dyn FnMut(&mut App) -> Result<(), Error>,
) -> Result<Option<App>, Error> {
    let key = app_key(name);
    for _ in 0..SWAP_TRIES {
        let Some(raw) = kv.get(&key)? else {
            return Ok(None);
        };
        let mut app = parse(name, &raw)?;
        change(&mut app)?;
        if kv.swap(&key, Some(&raw), &to_bytes(&app))? {
            return Ok(Some(app));
        }
    }
    Err(contended(&format!("app {name}")))
}

/// Creates or replaces the app `name` with what `build` makes of the current record
/// (`None`: there is none), atomically, and lists it in the index. Returns the app and
/// whether it was created.
pub fn create_or_replace(
    kv: &dyn Kv,
    name: &str,
    build: &mut dyn FnMut(Option<&App>) -> Result<App, Error>,
) -> Result<(App, bool), Error> {
    let key = app_key(name);
    for _ in 0..SWAP_TRIES {
        let raw = kv.get(&key)?;
        let old = raw.as_deref().map(|r| parse(name, r)).transpose()?;
        let app = build(old.as_ref())?;
        if old.is_none() {
            // Indexed first: an indexed name without a record is skipped by the list,
            // a record missing from the index would be invisible.
            change_index(kv, name, true)?;
        }
        if kv.swap(&key, raw.as_deref(), &to_bytes(&app))? {
            return Ok((app, old.is_none()));
        }
    }
    Err(contended(&format!("app {name}")))
}

/// Forgets the app record and its name in the index (its other keys are the caller's).
pub fn delete(kv: &dyn Kv, name: &str) -> Result<(), Error> {
    kv.delete(&app_key(name))?;
    change_index(kv, name, false)
}

/// The index's raw value and names. A store written before the index existed has none:
/// it is built once from the store's keys (the only time they are listed).
fn read_index(kv: &dyn Kv) -> Result<(Option<Vec<u8>>, Vec<String>), StoreError> {
    match kv.get(INDEX_KEY)? {
        Some(raw) => {
            let names = crate::support::json::parse(&raw)
                .ok()
                .and_then(|v| {
                    v.as_array().map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                })
                .ok_or_else(|| StoreError(format!("{INDEX_KEY} is unreadable")))?;
            Ok((Some(raw), names))
        }
        None => {
            let mut names: Vec<String> = kv
                .keys()?
                .into_iter()
                .filter_map(|k| k.strip_prefix("app/").map(String::from))
                .collect();
            names.sort();
            Ok((None, names))
        }
    }
}

/// Adds (`present`) or removes `name` in the index, and checks that it took.
fn change_index(kv: &dyn Kv, name: &str, present: bool) -> Result<(), Error> {
    for _ in 0..SWAP_TRIES {
        let (raw, mut names) = read_index(kv)?;
        let at = names.binary_search_by(|n| n.as_str().cmp(name));
        match (at, present) {
            (Ok(_), true) | (Err(_), false) if raw.is_some() => return Ok(()),
            (Ok(_), true) | (Err(_), false) => {}
            (Err(i), true) => names.insert(i, name.to_string()),
            (Ok(i), false) => {
                names.remove(i);
            }
        }
        let bytes = serde_json::to_vec(&names).expect("names serialise");
        // Swapped or not, read it again: the loop ends once the index says so.
        kv.swap(INDEX_KEY, raw.as_deref(), &bytes)?;
    }
    Err(contended(INDEX_KEY))
}

/// One page of the app list.
pub struct Page {
    pub apps: Vec<App>,
    /// The name to ask for the next page `after`, when there are more apps.
    pub next: Option<String>,
}

/// Up to `limit` apps in name order after `after`: one read of the index, and one per
/// app on the page.
pub fn page(kv: &dyn Kv, after: Option<&str>, limit: usize) -> Result<Page, Error> {
    let (raw, names) = read_index(kv)?;
    if raw.is_none() {
        // Built from the keys just now: keep it, so that this was the last time.
        let bytes = serde_json::to_vec(&names).expect("names serialise");
        kv.swap(INDEX_KEY, None, &bytes)?;
    }
    let start = match after {
        Some(after) => names.partition_point(|n| n.as_str() <= after),
        None => 0,
    };
    let mut apps = Vec::with_capacity(limit);
    let mut next = None;
    for name in &names[start..] {
        if apps.len() == limit {
            next = apps.last().map(|a: &App| a.name.clone());
            break;
        }
        // A name whose record is gone (a delete that stopped halfway) is skipped.
        if let Some(app) = load(kv, name)? {
            apps.push(app);
        }
    }
    Ok(Page { apps, next })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::model::Trigger;
    use crate::state::{Hooked, MemKv};

    /// A status report that read the app before a rotation does not write the old secret
    /// back: its swap fails, it reads again and applies its change to the rotated app.
    #[test]
    fn an_update_racing_a_rotation_keeps_the_new_secret() {
        // Another writer rotates the git secret between this writer's read and its
        // swap, once it is armed.
        let armed = Cell::new(false);
        let rotated = std::cell::RefCell::new(String::new());
        let kv = Hooked::new(|op: &str, key: &str, inner: &MemKv| {
            if op == "swap" && key == "app/shop" && armed.replace(false) {
                let app = update(inner, "shop", &mut |app| {
                    app.rotate(Trigger::Git, &mut |buf| buf.fill(7));
                    Ok(())
                })
                .unwrap()
                .unwrap();
                rotated.replace(app.git.secret.expose().to_string());
            }
            Ok(())
        });
        let body = br#"{"git": {"secret": "old-secret-0123456789"},
                       "deploy": {"target": "generic", "path": "/deploy"}}"#;
        create_or_replace(&kv, "shop", &mut |old| {
            App::from_put("shop", body, old, &mut |buf| buf.fill(1))
        })
        .unwrap();
        armed.set(true);
        let app = update(&kv, "shop", &mut |app| app.set_status("abnormal".into()))
            .unwrap()
            .unwrap();
        assert!(!armed.get(), "the other writer ran");
        let rotated = rotated.borrow().clone();
        assert_ne!(rotated, "old-secret-0123456789");
        let stored = load(&kv, "shop").unwrap().unwrap();
        for app in [&app, &stored] {
            assert_eq!(app.status, "abnormal");
            assert_eq!(app.git.secret.expose(), rotated);
        }
    }

    /// The index lists every created app once, in order, and forgets deleted ones.
    #[test]
    fn the_index_follows_creates_and_deletes() {
        let kv = MemKv::default();
        for name in ["b", "a", "c", "a"] {
            create_or_replace(&kv, name, &mut |old| {
                let body = br#"{"deploy": {"target": "generic", "path": "/deploy"}}"#;
                App::from_put(name, body, old, &mut |buf| buf.fill(1))
            })
            .unwrap();
        }
        delete(&kv, "b").unwrap();
        let page = page(&kv, None, 10).unwrap();
        let names: Vec<&str> = page.apps.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(page.next, None);
    }
}
