//! `json::parse` builds exactly what serde_json builds and fails where it fails;
//! `json::parse_keeping` builds serde_json's value minus the members it was not asked
//! for (it may accept more: skipped members are not held to the nesting limit).
#![no_main]

use autodeploy::json::{parse, parse_keeping};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const KEEP: &[&str] = &["ref", "after", "id", "name", "commits", "repository", "html_url", "a"];

fn prune(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| KEEP.contains(&k.as_str()));
            m.values_mut().for_each(prune);
        }
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let want = serde_json::from_slice::<Value>(data);
    match (&want, parse(data)) {
        (Ok(w), Ok(got)) => assert_eq!(w, &got),
        (Err(_), Err(_)) => {}
        (w, got) => panic!("serde_json: {w:?}, json::parse: {got:?}"),
    }
    if let Ok(mut w) = want {
        prune(&mut w);
        assert_eq!(parse_keeping(data, KEEP).expect("serde_json accepted it"), w);
    }
});
