//! Exactly one deploy per delivery id, across any number of instances sharing the store.
//!
//! A delivery is *done* once the platform accepted it (`done/…`, kept forever for
//! provider ids, 10 minutes for body hashes). While it is being deployed it is *claimed*.
//!
//! Claims use only the store's atomic `increment`, in 30-second windows: a claimant
//! increments the counter of the current window, then reads the counters of the two
//! windows on each side; it owns the delivery only if its increment returned 1 and those
//! neighbours are all 0, else it takes its increment back and answers `in_progress`. Of
//! two concurrent claimants (within ±2 windows) at least one sees the other's increment,
//! so at most one owns the delivery. A claim is released (decremented) when the attempt
//! ends; if the instance dies mid-deploy, the claim lapses once the clock has moved three
//! windows on: 60 to 90 seconds later.
//!
//! After a deploy that was recorded as done, the claim's counter is deleted instead, so
//! the store does not keep a dead counter per delivery. That is safe: the done record is
//! written before the counter goes, and a claimant that owns a counter looks at the
//! record again, so whoever takes the counter after it went answers `duplicate`. A
//! stray counter an unlucky interleaving leaves behind (`0` or `-1`) never reads as a
//! claim.

use crate::state::{Kv, StoreError};

/// A delivery's identity for de-duplication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    /// How long the id is remembered after a deploy: provider ids forever, body hashes
    /// for 10 minutes (a later identical push deploys again), or not at all.
    pub dedupe: Dedupe,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dedupe {
    Forever,
    BodyHash,
    Never,
}

const WINDOW_MS: u64 = 30_000;
const NEIGHBOURS: u64 = 2;
/// How long a body-hash id is remembered after its deploy.
pub const BODY_HASH_TTL_MS: u64 = 10 * 60 * 1000;

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This attempt owns the delivery; release it when done.
    Owned(ClaimToken),
    /// Already deployed.
    Duplicate,
    /// Another attempt owns it right now.
    InProgress,
}

/// Proof of ownership: the window counter to decrement on release.
#[derive(Debug, PartialEq, Eq)]
pub struct ClaimToken {
    key: Option<String>,
}

fn done_key(app: &str, id: &str) -> String {
    format!("done/{app}/{id}")
}

fn claim_key(app: &str, id: &str, window: u64) -> String {
    format!("claim/{app}/{id}/{window}")
}

/// Was this delivery deployed (and is it still remembered)?
pub fn is_done(
    kv: &dyn Kv,
    app: &str,
    delivery: &Delivery,
    now_ms: u64,
) -> Result<bool, StoreError> {
    if delivery.dedupe == Dedupe::Never {
        return Ok(false);
    }
    let Some(raw) = kv.get(&done_key(app, &delivery.id))? else {
        return Ok(false);
    };
    let until = crate::support::json::parse(&raw)
        .ok()
        .and_then(|v| v.get("until").and_then(|u| u.as_u64()));
    Ok(until.is_none_or(|until| now_ms < until))
}

fn counter(kv: &dyn Kv, key: &str) -> Result<i64, StoreError> {
    // `exists` first so that reading a neighbour does not create it.
    if kv.exists(key)? {
        kv.increment(key, 0)
    } else {
        Ok(0)
    }
}

/// Claims `delivery` for one deploy attempt.
pub fn claim(
    kv: &dyn Kv,
    app: &str,
    delivery: &Delivery,
    now_ms: u64,
) -> Result<Claim, StoreError> {
    if delivery.dedupe == Dedupe::Never {
        return Ok(Claim::Owned(ClaimToken { key: None }));
    }
    if is_done(kv, app, delivery, now_ms)? {
        return Ok(Claim::Duplicate);
    }
    let window = now_ms / WINDOW_MS;
    let key = claim_key(app, &delivery.id, window);
    let mut owned = kv.increment(&key, 1)? == 1;
    for w in window.saturating_sub(NEIGHBOURS)..=window + NEIGHBOURS {
        if !owned {
            break;
        }
        if w != window && counter(kv, &claim_key(app, &delivery.id, w))? > 0 {
            owned = false;
        }
    }
    let token = ClaimToken { key: Some(key) };
    if !owned {
        release(kv, token)?;
        return Ok(Claim::InProgress);
    }
    // A concurrent attempt may have finished between our first look and our claim.
    if is_done(kv, app, delivery, now_ms)? {
        release(kv, token)?;
        return Ok(Claim::Duplicate);
    }
    Ok(Claim::Owned(token))
}

/// Ends an attempt: the delivery may be claimed again (after a failure) at once.
pub fn release(kv: &dyn Kv, token: ClaimToken) -> Result<(), StoreError> {
    match token.key {
        Some(key) => kv.increment(&key, -1).map(|_| ()),
        None => Ok(()),
    }
}

/// Ends an attempt the platform accepted. The delivery is recorded as done first, and
/// only then does the claim's counter go: the order the module documentation relies on.
/// Should the record fail, the claim is released instead, as after a failure, and the
/// error says so (the deploy happened, but a retry would deploy again).
pub fn finish(
    kv: &dyn Kv,
    app: &str,
    delivery: &Delivery,
    now_ms: u64,
    token: ClaimToken,
) -> Result<(), StoreError> {
    if let Err(e) = mark_done(kv, app, delivery, now_ms) {
        let released = match release(kv, token) {
            Ok(()) => String::new(),
            Err(r) => format!("; claim not released: {}", r.0),
        };
        return Err(StoreError(format!(
            "not recorded as done: {}{released}",
            e.0
        )));
    }
    match token.key {
        Some(key) => kv
            .delete(&key)
            .map_err(|e| StoreError(format!("claim counter not deleted: {}", e.0))),
        None => Ok(()),
    }
}

/// Records that the platform accepted `delivery`.
fn mark_done(kv: &dyn Kv, app: &str, delivery: &Delivery, now_ms: u64) -> Result<(), StoreError> {
    let record = match delivery.dedupe {
        Dedupe::Never => return Ok(()),
        Dedupe::Forever => serde_json::json!({"at": now_ms}),
        Dedupe::BodyHash => serde_json::json!({"at": now_ms, "until": now_ms + BODY_HASH_TTL_MS}),
    };
    kv.set(&done_key(app, &delivery.id), record.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MemKv;

    fn d(id: &str, dedupe: Dedupe) -> Delivery {
        Delivery {
            id: id.into(),
            dedupe,
        }
    }

    #[test]
    fn one_owner_then_duplicate() {
        let kv = MemKv::default();
        let del = d("abc", Dedupe::Forever);
        let Claim::Owned(token) = claim(&kv, "shop", &del, 1_000).unwrap() else {
            panic!("first claim must own")
        };
        assert_eq!(claim(&kv, "shop", &del, 1_001).unwrap(), Claim::InProgress);
        mark_done(&kv, "shop", &del, 1_002).unwrap();
        release(&kv, token).unwrap();
        assert_eq!(claim(&kv, "shop", &del, 1_003).unwrap(), Claim::Duplicate);
        // ids are per app
        assert!(matches!(
            claim(&kv, "blog", &del, 1_003).unwrap(),
            Claim::Owned(_)
        ));
    }

    /// The store's writes, in order, as `set key` / `delete key`.
    #[derive(Default)]
    struct Writes {
        kv: MemKv,
        log: std::sync::Mutex<Vec<String>>,
    }

    impl Kv for Writes {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.kv.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
            self.log.lock().unwrap().push(format!("set {key}"));
            self.kv.set(key, value)
        }
        fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.log.lock().unwrap().push(format!("delete {key}"));
            self.kv.delete(key)
        }
        fn exists(&self, key: &str) -> Result<bool, StoreError> {
            self.kv.exists(key)
        }
        fn keys(&self) -> Result<Vec<String>, StoreError> {
            self.kv.keys()
        }
        fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
            self.kv.increment(key, delta)
        }
    }

    /// The done record is written before the counter goes: in the other order, an
    /// attempt could claim the delivery between the two and deploy it again.
    #[test]
    fn finish_records_before_it_deletes_the_counter() {
        let kv = Writes::default();
        let del = d("abc", Dedupe::Forever);
        let Claim::Owned(token) = claim(&kv, "shop", &del, 1_000).unwrap() else {
            panic!()
        };
        finish(&kv, "shop", &del, 1_001, token).unwrap();
        assert_eq!(
            *kv.log.lock().unwrap(),
            [
                "set done/shop/abc",
                &format!("delete {}", claim_key("shop", "abc", 0))
            ]
        );
    }

    /// Finished deliveries leave their done record only. A claimant that raced the
    /// finish (incremented before the delete, released after) leaves a counter that
    /// claims nothing: the delivery stays a duplicate, and other ones are unaffected.
    #[test]
    fn a_finished_delivery_keeps_no_counter() {
        let kv = MemKv::default();
        let del = d("abc", Dedupe::Forever);
        let Claim::Owned(token) = claim(&kv, "shop", &del, 1_000).unwrap() else {
            panic!("first claim must own")
        };
        finish(&kv, "shop", &del, 1_001, token).unwrap();
        assert_eq!(kv.keys().unwrap(), ["done/shop/abc"]);
        assert_eq!(claim(&kv, "shop", &del, 1_002).unwrap(), Claim::Duplicate);
        assert_eq!(kv.keys().unwrap(), ["done/shop/abc"]);

        // A racing claimant's increment lands before the delete, its release after it.
        let del = d("xyz", Dedupe::Forever);
        let Claim::Owned(token) = claim(&kv, "shop", &del, 2_000).unwrap() else {
            panic!()
        };
        let racer = claim_key("shop", "xyz", 2_000 / WINDOW_MS);
        assert_eq!(kv.increment(&racer, 1).unwrap(), 2);
        finish(&kv, "shop", &del, 2_001, token).unwrap();
        assert_eq!(kv.increment(&racer, -1).unwrap(), -1);
        assert_eq!(claim(&kv, "shop", &del, 2_002).unwrap(), Claim::Duplicate);
        assert_eq!(
            claim(&kv, "shop", &del, 2_002 + 61_000).unwrap(),
            Claim::Duplicate
        );
        let other = d("other", Dedupe::Forever);
        assert!(matches!(
            claim(&kv, "shop", &other, 2_003).unwrap(),
            Claim::Owned(_)
        ));
    }

    /// A finish whose record cannot be written says so, and does not delete the counter
    /// (that would let a concurrent attempt deploy at once): the store was down, so the
    /// claim stays until it lapses, and then the delivery can be deployed again.
    #[test]
    fn a_finish_that_cannot_record_keeps_the_claim() {
        let kv = MemKv::default();
        let del = d("abc", Dedupe::Forever);
        let Claim::Owned(token) = claim(&kv, "shop", &del, 1_000).unwrap() else {
            panic!()
        };
        kv.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let e = finish(&kv, "shop", &del, 1_001, token).unwrap_err();
        assert_eq!(
            e.0,
            "not recorded as done: injected failure; claim not released: injected failure"
        );
        kv.fail.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(kv.keys().unwrap(), [claim_key("shop", "abc", 0)]);
        assert_eq!(claim(&kv, "shop", &del, 1_002).unwrap(), Claim::InProgress);
        assert!(matches!(
            claim(&kv, "shop", &del, 1_000 + 3 * WINDOW_MS).unwrap(),
            Claim::Owned(_)
        ));
    }

    #[test]
    fn released_claim_can_be_retried_at_once() {
        let kv = MemKv::default();
        let del = d("abc", Dedupe::Forever);
        let Claim::Owned(token) = claim(&kv, "shop", &del, 5_000).unwrap() else {
            panic!()
        };
        release(&kv, token).unwrap();
        assert!(matches!(
            claim(&kv, "shop", &del, 5_001).unwrap(),
            Claim::Owned(_)
        ));
    }

    #[test]
    fn abandoned_claim_lapses_after_60_to_90_seconds() {
        let kv = MemKv::default();
        let del = d("abc", Dedupe::Forever);
        let start = 1_000 * WINDOW_MS + WINDOW_MS - 1; // the last ms of a window
        assert!(matches!(
            claim(&kv, "shop", &del, start).unwrap(),
            Claim::Owned(_)
        ));
        for later in [1, 30_000, 59_999] {
            assert_eq!(
                claim(&kv, "shop", &del, start + later).unwrap(),
                Claim::InProgress,
                "+{later}"
            );
        }
        assert!(matches!(
            claim(&kv, "shop", &del, start + 60_001).unwrap(),
            Claim::Owned(_)
        ));

        let kv = MemKv::default();
        let start = 1_000 * WINDOW_MS; // the first ms of a window
        assert!(matches!(
            claim(&kv, "shop", &del, start).unwrap(),
            Claim::Owned(_)
        ));
        assert_eq!(
            claim(&kv, "shop", &del, start + 89_999).unwrap(),
            Claim::InProgress
        );
        assert!(matches!(
            claim(&kv, "shop", &del, start + 90_000).unwrap(),
            Claim::Owned(_)
        ));
    }

    #[test]
    fn body_hash_ids_are_forgotten_after_ten_minutes() {
        let kv = MemKv::default();
        let del = d("hash", Dedupe::BodyHash);
        let Claim::Owned(t) = claim(&kv, "shop", &del, 0).unwrap() else {
            panic!()
        };
        mark_done(&kv, "shop", &del, 10).unwrap();
        release(&kv, t).unwrap();
        assert_eq!(
            claim(&kv, "shop", &del, 10 + BODY_HASH_TTL_MS - 1).unwrap(),
            Claim::Duplicate
        );
        assert!(matches!(
            claim(&kv, "shop", &del, 10 + BODY_HASH_TTL_MS).unwrap(),
            Claim::Owned(_)
        ));
    }

    #[test]
    fn never_deduped_deliveries_always_own() {
        let kv = MemKv::default();
        let del = d("x", Dedupe::Never);
        assert!(matches!(
            claim(&kv, "shop", &del, 0).unwrap(),
            Claim::Owned(_)
        ));
        assert!(matches!(
            claim(&kv, "shop", &del, 0).unwrap(),
            Claim::Owned(_)
        ));
        assert!(kv.keys().unwrap().is_empty());
    }

    #[test]
    fn store_failure_is_an_error_not_a_claim() {
        let kv = MemKv::default();
        kv.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(claim(&kv, "shop", &d("x", Dedupe::Forever), 0).is_err());
    }
}
