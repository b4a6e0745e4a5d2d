//! An app's ring: the bounded memory of its claims, which keeps the store's keys per app
//! constant however many deliveries arrive.
//!
//! Every claim takes the next slot (`ring/{app}/{seq % CAPACITY}`, `seq` from the atomic
//! counter `ring/{app}/seq`) and writes there the names it claims and its window. The
//! claim that held the slot before, [`CAPACITY`] claims ago, is evicted as the slot is
//! taken: its done records (those still written under its `seq`: a later claim of the
//! same name owns a record it rewrote) and its window counters (a counter at 0 after a
//! refused attempt, at 1 after a crash) are deleted. A counter is deleted only once its
//! window is past the claim's lapse, so no claimant can still be counting on it; in the
//! rare case that the ring turns faster than that (over [`CAPACITY`] claims for one app
//! in two minutes), the young counter is left alone.
//!
//! So the keys a delivery leaves are found from the ring, never by listing the store,
//! and deleting an app walks its ring ([`clear`]).

use serde_json::{json, Value};

use super::{claim_key, done_key, record_seq, NEIGHBOURS};
use crate::state::{Kv, StoreError};

/// Slots per app: a delivery id is remembered until this many newer claims of its app
/// have been made (and, for ids with a time limit, no longer than that).
pub const CAPACITY: i64 = 1000;

fn seq_key(app: &str) -> String {
    format!("ring/{app}/seq")
}

fn slot_key(app: &str, slot: i64) -> String {
    format!("ring/{app}/{slot}")
}

/// Takes the next slot for a claim of `names` in `window`, evicting its previous holder.
/// Returns the claim's sequence number.
pub(super) fn take_slot(
    kv: &dyn Kv,
    app: &str,
    names: &[&str],
    window: u64,
) -> Result<i64, StoreError> {
    let seq = kv.increment(&seq_key(app), 1)?;
    let slot = slot_key(app, seq.rem_euclid(CAPACITY));
    if let Some(raw) = kv.get(&slot)? {
        evict(kv, app, &raw, Some(window))?;
    }
    let value = json!({"seq": seq, "window": window, "names": names});
    kv.set(&slot, value.to_string().as_bytes())?;
    Ok(seq)
}

/// Deletes what the claim in slot value `raw` left. `now_window: None` deletes its
/// counters whatever their age (the app is being deleted).
fn evict(kv: &dyn Kv, app: &str, raw: &[u8], now_window: Option<u64>) -> Result<(), StoreError> {
    let Ok(slot) = crate::support::json::parse(raw) else {
        return Ok(());
    };
    let (Some(seq), Some(window)) = (
        slot.get("seq").and_then(Value::as_i64),
        slot.get("window").and_then(Value::as_u64),
    ) else {
        return Ok(());
    };
    let lapsed = now_window.is_none_or(|now| now > window + NEIGHBOURS + 1);
    let names = slot.get("names").and_then(Value::as_array);
    for name in names.into_iter().flatten().filter_map(Value::as_str) {
        let done = done_key(app, name);
        if let Some(record) = kv.get(&done)? {
            if record_seq(&record) == Some(seq) || now_window.is_none() {
                kv.delete(&done)?;
            }
        }
        if lapsed {
            kv.delete(&claim_key(app, name, window))?;
        }
    }
    Ok(())
}

/// Deletes every key the app's claims left, and the ring itself (when the app is deleted).
pub fn clear(kv: &dyn Kv, app: &str) -> Result<(), StoreError> {
    if !kv.exists(&seq_key(app))? {
        return Ok(());
    }
    for slot in 0..CAPACITY {
        let key = slot_key(app, slot);
        if let Some(raw) = kv.get(&key)? {
            evict(kv, app, &raw, None)?;
            kv.delete(&key)?;
        }
    }
    kv.delete(&seq_key(app))
}
