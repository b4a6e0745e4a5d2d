//! The per-app delivery log: the last 50 deliveries, in a ring of store slots.
//!
//! Each entry takes a sequence number from the store's atomic counter and writes its own
//! slot (`seq % 50`), so concurrent deliveries never overwrite each other's entries and
//! the log never grows past 50. Entries hold no secret and no payload.

use serde_json::{json, Value};

use crate::state::{Kv, StoreError};

pub const CAPACITY: u64 = 50;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: Option<String>,
    /// RFC 3339 UTC.
    pub at: String,
    pub trigger: String,
    pub provider: Option<String>,
    pub result: String,
    pub reason: String,
    pub platform_status: Option<u16>,
}

impl Entry {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "at": self.at, "trigger": self.trigger, "provider": self.provider,
            "result": self.result, "reason": self.reason, "platform_status": self.platform_status,
        })
    }

    fn from_json(v: &Value) -> Option<Entry> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        Some(Entry {
            id: s("id"),
            at: s("at")?,
            trigger: s("trigger")?,
            provider: s("provider"),
            result: s("result")?,
            reason: s("reason").unwrap_or_default(),
            platform_status: v
                .get("platform_status")
                .and_then(Value::as_u64)
                .and_then(|n| u16::try_from(n).ok()),
        })
    }
}

fn seq_key(app: &str) -> String {
    format!("log/{app}/seq")
}

fn slot_key(app: &str, slot: i64) -> String {
    format!("log/{app}/{slot}")
}

pub fn append(kv: &dyn Kv, app: &str, entry: Entry) -> Result<(), StoreError> {
    let seq = kv.increment(&seq_key(app), 1)?;
    let mut slot = entry.to_json();
    slot["seq"] = json!(seq);
    let bytes = serde_json::to_vec(&slot).expect("entries serialise");
    kv.set(&slot_key(app, seq.rem_euclid(CAPACITY as i64)), &bytes)
}

/// The entries, newest first.
pub fn read(kv: &dyn Kv, app: &str) -> Result<Vec<Entry>, StoreError> {
    if !kv.exists(&seq_key(app))? {
        return Ok(Vec::new());
    }
    let mut slots = Vec::new();
    for i in 0..CAPACITY as i64 {
        if let Some(raw) = kv.get(&slot_key(app, i))? {
            let Ok(v) = crate::support::json::parse(&raw) else {
                continue;
            };
            if let (Some(seq), Some(entry)) =
                (v.get("seq").and_then(Value::as_i64), Entry::from_json(&v))
            {
                slots.push((seq, entry));
            }
        }
    }
    slots.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
    Ok(slots.into_iter().map(|(_, e)| e).collect())
}

/// Forgets the log (when the app is deleted).
pub fn clear(kv: &dyn Kv, app: &str) -> Result<(), StoreError> {
    for i in 0..CAPACITY as i64 {
        kv.delete(&slot_key(app, i))?;
    }
    kv.delete(&seq_key(app))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemKv;

    fn entry(n: usize) -> Entry {
        Entry {
            id: Some(format!("d{n}")),
            at: "2026-01-01T00:00:00.000Z".into(),
            trigger: "git".into(),
            provider: Some("github".into()),
            result: "deployed".into(),
            reason: "ok".into(),
            platform_status: Some(202),
        }
    }

    #[test]
    fn keeps_the_last_fifty_newest_first() {
        let kv = MemKv::default();
        for n in 0..120 {
            append(&kv, "shop", entry(n)).unwrap();
        }
        let entries = read(&kv, "shop").unwrap();
        assert_eq!(entries.len(), 50);
        assert_eq!(entries[0].id.as_deref(), Some("d119"));
        assert_eq!(entries[49].id.as_deref(), Some("d70"));
        assert!(kv.keys().unwrap().len() <= 51);
        assert!(read(&kv, "other").unwrap().is_empty());
        clear(&kv, "shop").unwrap();
        assert!(read(&kv, "shop").unwrap().is_empty());
    }
}
