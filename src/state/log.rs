//! The per-app delivery log: the last 50 deliveries, in a ring of store slots, and beside
//! it the last 20 deliveries refused before they were authenticated, in a ring of their
//! own.
//!
//! Each entry takes a sequence number from its ring's atomic counter and writes its own
//! slot (`seq % capacity`), so concurrent deliveries never overwrite each other's entries
//! and a ring never grows past its capacity. Entries hold no secret and no payload.
//!
//! Anyone who knows a hook's URL can post to it, so refusals that happen before the
//! signature, token or secret is checked (401, a wrong image token, 413, 415, an unknown
//! provider, an unreadable body) go to the [`Ring::Rejected`] ring: a flood of them
//! cannot push the real deliveries out of [`Ring::Main`].
//!
//! Keys per app: `log/{app}/seq` and `log/{app}/{0…49}` (main);
//! `log/{app}/rejected/seq` and `log/{app}/rejected/{0…19}` (rejected). App names have
//! no `/`, so no app's keys fall in another's.

use serde_json::{json, Value};

use crate::state::{Kv, StoreError};

/// The main log's capacity.
pub const CAPACITY: u64 = 50;
/// The capacity of the list of deliveries refused before authentication.
pub const REJECTED_CAPACITY: u64 = 20;

/// One of an app's two lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ring {
    /// Every delivery that got past authentication (or failed after it).
    Main,
    /// Deliveries refused before they were authenticated.
    Rejected,
}

impl Ring {
    pub fn capacity(self) -> u64 {
        match self {
            Ring::Main => CAPACITY,
            Ring::Rejected => REJECTED_CAPACITY,
        }
    }

    /// The prefix of the ring's keys (`log/{app}` or `log/{app}/rejected`).
    fn prefix(self, app: &str) -> String {
        match self {
            Ring::Main => format!("log/{app}"),
            Ring::Rejected => format!("log/{app}/rejected"),
        }
    }

    fn seq_key(self, app: &str) -> String {
        format!("{}/seq", self.prefix(app))
    }

    fn slot_key(self, app: &str, slot: i64) -> String {
        format!("{}/{slot}", self.prefix(app))
    }
}

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
    /// For a deployed delivery, what was deployed (`DeployEvent::kept`: repository,
    /// branch, commit, image), kept for a redeploy.
    pub event: Option<Value>,
    /// How the deploy ended, as the platform reported it through the delivery's
    /// `status_url`: `{"state", "url", "description", "at"}`.
    pub outcome: Option<Value>,
    /// The calls made after the answer (notifications, commit statuses) and how each
    /// went: `[{"to", "event", "ok", "error"}]`.
    pub notices: Option<Value>,
}

impl Entry {
    /// The entry as the deliveries answer shows it (the kept event is for redeploys).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "at": self.at, "trigger": self.trigger, "provider": self.provider,
            "result": self.result, "reason": self.reason, "platform_status": self.platform_status,
            "outcome": self.outcome, "notices": self.notices,
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
            event: v.get("event").filter(|e| e.is_object()).cloned(),
            outcome: v.get("outcome").filter(|o| o.is_object()).cloned(),
            notices: v.get("notices").filter(|n| n.is_array()).cloned(),
        })
    }
}

/// Writes `entry` as the ring's next; answers its number.
pub fn append(kv: &dyn Kv, app: &str, ring: Ring, entry: Entry) -> Result<i64, StoreError> {
    let seq = reserve(kv, app, ring)?;
    write_at(kv, app, ring, seq, entry)?;
    Ok(seq)
}

/// Changes entry `seq` of the main log with `change`, unless a newer entry took its
/// slot (then `false`). A concurrent change to the same entry is retried.
pub fn amend(
    kv: &dyn Kv,
    app: &str,
    seq: i64,
    change: &dyn Fn(&mut Value),
) -> Result<bool, StoreError> {
    let key = slot_key(app, Ring::Main, seq);
    for _ in 0..5 {
        let Some(raw) = kv.get(&key)? else {
            return Ok(false);
        };
        let Some(mut entry) = crate::support::json::parse(&raw)
            .ok()
            .filter(|v| v.get("seq").and_then(Value::as_i64) == Some(seq))
        else {
            return Ok(false);
        };
        change(&mut entry);
        let bytes = serde_json::to_vec(&entry).expect("entries serialise");
        if kv.swap(&key, Some(&raw), &bytes)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Takes the ring's next sequence number for an entry written later with [`write_at`]
/// (a deploy's, whose `status_url` names it before the call).
pub fn reserve(kv: &dyn Kv, app: &str, ring: Ring) -> Result<i64, StoreError> {
    kv.increment(&ring.seq_key(app), 1)
}

/// Writes `entry` as number `seq` of the ring (into its slot, `seq % capacity`).
pub fn write_at(
    kv: &dyn Kv,
    app: &str,
    ring: Ring,
    seq: i64,
    entry: Entry,
) -> Result<(), StoreError> {
    let mut slot = entry.to_json();
    slot["seq"] = json!(seq);
    if let Some(event) = entry.event {
        slot["event"] = event;
    }
    let bytes = serde_json::to_vec(&slot).expect("entries serialise");
    kv.set(&slot_key(app, ring, seq), &bytes)
}

/// The key of the slot that holds entry number `seq`.
pub fn slot_key(app: &str, ring: Ring, seq: i64) -> String {
    ring.slot_key(app, seq.rem_euclid(ring.capacity() as i64))
}

/// The highest sequence number the ring has handed out (0 before the first).
pub fn last_seq(kv: &dyn Kv, app: &str, ring: Ring) -> Result<i64, StoreError> {
    kv.increment(&ring.seq_key(app), 0)
}

/// The ring's entries, newest first.
pub fn read(kv: &dyn Kv, app: &str, ring: Ring) -> Result<Vec<Entry>, StoreError> {
    if !kv.exists(&ring.seq_key(app))? {
        return Ok(Vec::new());
    }
    let mut slots = Vec::new();
    for i in 0..ring.capacity() as i64 {
        if let Some(raw) = kv.get(&ring.slot_key(app, i))? {
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

/// The ring's newest written entry, in at most four store calls (the app list shows it
/// for each app; [`read`] takes one per slot). The newest number may belong to a deploy
/// whose entry is not written yet: then the one before it.
pub fn newest(kv: &dyn Kv, app: &str, ring: Ring) -> Result<Option<Entry>, StoreError> {
    if !kv.exists(&ring.seq_key(app))? {
        return Ok(None);
    }
    let last = last_seq(kv, app, ring)?;
    for seq in [last, last - 1] {
        if seq <= 0 {
            break;
        }
        let Some(raw) = kv.get(&slot_key(app, ring, seq))? else {
            continue;
        };
        let Ok(v) = crate::support::json::parse(&raw) else {
            continue;
        };
        if v.get("seq").and_then(Value::as_i64) == Some(seq) {
            return Ok(Entry::from_json(&v));
        }
    }
    Ok(None)
}

/// Forgets both rings (when the app is deleted).
pub fn clear(kv: &dyn Kv, app: &str) -> Result<(), StoreError> {
    for ring in [Ring::Main, Ring::Rejected] {
        for i in 0..ring.capacity() as i64 {
            kv.delete(&ring.slot_key(app, i))?;
        }
        kv.delete(&ring.seq_key(app))?;
    }
    Ok(())
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
            event: None,
            outcome: None,
            notices: None,
        }
    }

    #[test]
    fn keeps_the_last_fifty_newest_first() {
        let kv = MemKv::default();
        for n in 0..120 {
            append(&kv, "shop", Ring::Main, entry(n)).unwrap();
        }
        let entries = read(&kv, "shop", Ring::Main).unwrap();
        assert_eq!(entries.len(), 50);
        assert_eq!(entries[0].id.as_deref(), Some("d119"));
        assert_eq!(newest(&kv, "shop", Ring::Main).unwrap(), Some(entry(119)));
        // a number taken for a deploy whose entry is not written yet: the one before
        reserve(&kv, "shop", Ring::Main).unwrap();
        assert_eq!(newest(&kv, "shop", Ring::Main).unwrap(), Some(entry(119)));
        assert_eq!(newest(&kv, "other", Ring::Main).unwrap(), None);
        assert_eq!(entries[49].id.as_deref(), Some("d70"));
        assert!(kv.keys().unwrap().len() <= 51);
        assert!(read(&kv, "other", Ring::Main).unwrap().is_empty());
        assert!(read(&kv, "shop", Ring::Rejected).unwrap().is_empty());
        clear(&kv, "shop").unwrap();
        assert!(read(&kv, "shop", Ring::Main).unwrap().is_empty());
    }

    #[test]
    fn the_rejected_ring_is_bounded_apart_and_cleared_with_the_log() {
        let kv = MemKv::default();
        append(&kv, "shop", Ring::Main, entry(0)).unwrap();
        for n in 1..=70 {
            append(&kv, "shop", Ring::Rejected, entry(n)).unwrap();
        }
        let main = read(&kv, "shop", Ring::Main).unwrap();
        assert_eq!(main, [entry(0)], "the main log keeps its entry");
        let rejected = read(&kv, "shop", Ring::Rejected).unwrap();
        assert_eq!(rejected.len(), 20);
        assert_eq!(rejected[0].id.as_deref(), Some("d70"));
        assert_eq!(rejected[19].id.as_deref(), Some("d51"));
        let keys = kv.keys().unwrap();
        assert_eq!(keys.len(), 2 + 20 + 1, "{keys:?}");
        clear(&kv, "shop").unwrap();
        assert!(kv.keys().unwrap().is_empty(), "{:?}", kv.keys().unwrap());
    }
}
