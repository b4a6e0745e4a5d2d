//! Exactly one deploy per delivery, across any number of instances sharing the store,
//! in a number of store keys per app that does not grow with the deliveries.
//!
//! A delivery has one or more *names*: the provider's delivery id (or the body's hash
//! when there is none), plus aliases that catch the same event sent again under another
//! id — the same push (app, ref, before, after) within 10 minutes, one Gitee signature
//! for as long as Gitee's clock window accepts it. Every name is claimed before the
//! deploy call and recorded as *done* (`done/{app}/{name}`) once the platform accepted
//! it; a delivery any of whose names is done is a duplicate.
//!
//! Claims use only the store's atomic `increment`, in 30-second windows: a claimant
//! increments the counter of the current window (`claim/{app}/{name}/{window}`), then
//! reads the counters of the two windows on each side; it owns the name only if its
//! increment returned 1 and those neighbours are all 0, else it takes its increment back
//! and answers `in_progress`. Of two concurrent claimants (within ±2 windows) at least
//! one sees the other's increment, so at most one owns the name. A claim is released
//! (decremented) when the attempt ends; if the instance dies mid-deploy, the claim lapses
//! once the clock has moved three windows on: 60 to 90 seconds later. The window is the
//! one of the moment of claiming, not of the request's arrival (a slow body does not
//! shorten the claim).
//!
//! After a deploy that was recorded as done, the claim's counter is deleted, so the
//! store does not keep a live counter per delivery. That is safe: the done record is
//! written before the counter goes, and a claimant that owns a counter looks at the
//! record again, so whoever takes the counter after it went answers `duplicate`. When
//! the record cannot be written, the claim is kept (not released) until it lapses, so
//! that a redelivery in the meantime is `in_progress` rather than a second deploy.
//!
//! What a claim leaves behind — done records, counters at 0 after a refused attempt or
//! at 1 after a crash — is owned by the app's [`ring`]: every claim takes the next of
//! [`ring::CAPACITY`] slots and, in taking it, deletes what the claim that held the slot
//! before left. Nothing scans the store.

pub(crate) mod ring;
#[cfg(test)]
mod tests;

use crate::state::{Kv, StoreError};

/// A delivery's identity for de-duplication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    /// How long the id is remembered after a deploy.
    pub dedupe: Dedupe,
    /// Other names of the same event, each remembered for its own time after a deploy.
    pub aliases: Vec<Alias>,
}

impl Delivery {
    pub fn new(id: impl Into<String>, dedupe: Dedupe) -> Delivery {
        Delivery {
            id: id.into(),
            dedupe,
            aliases: Vec::new(),
        }
    }

    /// Every name to claim, with how long it is remembered (`None`: as long as the ring
    /// keeps it).
    fn names(&self) -> Vec<(&str, Option<u64>)> {
        let own = match self.dedupe {
            Dedupe::Never => None,
            Dedupe::Forever => Some((self.id.as_str(), None)),
            Dedupe::BodyHash => Some((self.id.as_str(), Some(BODY_HASH_TTL_MS))),
        };
        own.into_iter()
            .chain(self.aliases.iter().map(|a| (a.id.as_str(), Some(a.ttl_ms))))
            .collect()
    }
}

/// Another name of a delivery, e.g. `push-<hash of ref, before and after>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    pub id: String,
    pub ttl_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dedupe {
    /// A provider's id: remembered as long as the app's ring keeps it (at least
    /// [`ring::CAPACITY`] claims of the app; see the docs for the horizon).
    Forever,
    /// A body hash: remembered for 10 minutes (a later identical push deploys again).
    BodyHash,
    /// Not remembered at all (an API call without `Idempotency-Key`).
    Never,
}

pub(crate) const WINDOW_MS: u64 = 30_000;
pub(crate) const NEIGHBOURS: u64 = 2;
/// How long a body-hash id is remembered after its deploy.
pub const BODY_HASH_TTL_MS: u64 = 10 * 60 * 1000;
/// How many times writing a done record is tried before the claim is left to lapse.
const RECORD_TRIES: usize = 3;

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This attempt owns the delivery; release it when done.
    Owned(ClaimToken),
    /// Already deployed.
    Duplicate,
    /// Another attempt owns it right now.
    InProgress,
}

/// Proof of ownership: the window counters to decrement on release, and the ring slot
/// the done records are written under.
#[derive(Debug, PartialEq, Eq)]
pub struct ClaimToken {
    keys: Vec<String>,
    seq: i64,
}

pub(crate) fn done_key(app: &str, name: &str) -> String {
    format!("done/{app}/{name}")
}

pub(crate) fn claim_key(app: &str, name: &str, window: u64) -> String {
    format!("claim/{app}/{name}/{window}")
}

/// The ring slot a done record was written under, if it says (records from before the
/// ring do not).
pub(crate) fn record_seq(raw: &[u8]) -> Option<i64> {
    crate::support::json::parse(raw).ok()?.get("seq")?.as_i64()
}

/// Is this name recorded as done (and still remembered)?
fn is_done(kv: &dyn Kv, app: &str, name: &str, now_ms: u64) -> Result<bool, StoreError> {
    let Some(raw) = kv.get(&done_key(app, name))? else {
        return Ok(false);
    };
    let until = crate::support::json::parse(&raw)
        .ok()
        .and_then(|v| v.get("until").and_then(|u| u.as_u64()));
    Ok(until.is_none_or(|until| now_ms < until))
}

fn any_done(
    kv: &dyn Kv,
    app: &str,
    names: &[(&str, Option<u64>)],
    now_ms: u64,
) -> Result<bool, StoreError> {
    for (name, _) in names {
        if is_done(kv, app, name, now_ms)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn counter(kv: &dyn Kv, key: &str) -> Result<i64, StoreError> {
    // `exists` first so that reading a neighbour does not create it.
    if kv.exists(key)? {
        kv.increment(key, 0)
    } else {
        Ok(0)
    }
}

/// Claims one name in `window`: its counter key when owned, `None` when another attempt
/// holds it (the increment is taken back).
fn claim_name(
    kv: &dyn Kv,
    app: &str,
    name: &str,
    window: u64,
) -> Result<Option<String>, StoreError> {
    let key = claim_key(app, name, window);
    let mut owned = kv.increment(&key, 1)? == 1;
    for w in window.saturating_sub(NEIGHBOURS)..=window + NEIGHBOURS {
        if !owned {
            break;
        }
        if w != window && counter(kv, &claim_key(app, name, w))? > 0 {
            owned = false;
        }
    }
    if owned {
        Ok(Some(key))
    } else {
        kv.increment(&key, -1)?;
        Ok(None)
    }
}

/// Claims `delivery` (every one of its names) for one deploy attempt, at `now_ms`.
pub fn claim(
    kv: &dyn Kv,
    app: &str,
    delivery: &Delivery,
    now_ms: u64,
) -> Result<Claim, StoreError> {
    let names = delivery.names();
    if names.is_empty() {
        return Ok(Claim::Owned(ClaimToken {
            keys: Vec::new(),
            seq: 0,
        }));
    }
    if any_done(kv, app, &names, now_ms)? {
        return Ok(Claim::Duplicate);
    }
    let window = now_ms / WINDOW_MS;
    let plain: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
    let seq = ring::take_slot(kv, app, &plain, window)?;
    let mut token = ClaimToken {
        keys: Vec::with_capacity(names.len()),
        seq,
    };
    for name in &plain {
        match claim_name(kv, app, name, window)? {
            Some(key) => token.keys.push(key),
            None => {
                release(kv, token)?;
                return Ok(Claim::InProgress);
            }
        }
    }
    // A concurrent attempt may have finished between our first look and our claim.
    if any_done(kv, app, &names, now_ms)? {
        release(kv, token)?;
        return Ok(Claim::Duplicate);
    }
    Ok(Claim::Owned(token))
}

/// Ends an attempt: the delivery may be claimed again (after a failure) at once.
pub fn release(kv: &dyn Kv, token: ClaimToken) -> Result<(), StoreError> {
    let mut first_error = None;
    for key in &token.keys {
        if let Err(e) = kv.increment(key, -1) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Ends an attempt the platform accepted. Every name is recorded as done first, and
/// only then do the claim's counters go: the order the module documentation relies on.
/// A record that cannot be written is tried again; should it still fail, the claim is
/// kept until it lapses (a redelivery meanwhile is `in_progress`, not a second deploy)
/// and the error says so.
pub fn finish(
    kv: &dyn Kv,
    app: &str,
    delivery: &Delivery,
    now_ms: u64,
    token: ClaimToken,
) -> Result<(), StoreError> {
    for (name, ttl) in delivery.names() {
        let mut record = serde_json::json!({"at": now_ms, "seq": token.seq});
        if let Some(ttl) = ttl {
            record["until"] = (now_ms + ttl).into();
        }
        let bytes = record.to_string();
        let mut result = Ok(());
        for _ in 0..RECORD_TRIES {
            result = kv.set(&done_key(app, name), bytes.as_bytes());
            if result.is_ok() {
                break;
            }
        }
        if let Err(e) = result {
            return Err(StoreError(format!(
                "not recorded as done ({RECORD_TRIES} tries): {}; the claim is kept until it \
                 lapses",
                e.0
            )));
        }
    }
    for key in &token.keys {
        kv.delete(key)
            .map_err(|e| StoreError(format!("claim counter not deleted: {}", e.0)))?;
    }
    Ok(())
}
