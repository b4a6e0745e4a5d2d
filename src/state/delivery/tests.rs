use super::*;
use crate::state::{Hooked, MemKv};

fn d(id: &str, dedupe: Dedupe) -> Delivery {
    Delivery::new(id, dedupe)
}

fn owned(c: Claim) -> ClaimToken {
    match c {
        Claim::Owned(token) => token,
        other => panic!("expected to own the claim, got {other:?}"),
    }
}

/// The store's keys other than the ring's own.
fn claim_and_done_keys(kv: &MemKv) -> Vec<String> {
    kv.keys()
        .unwrap()
        .into_iter()
        .filter(|k| !k.starts_with("ring/"))
        .collect()
}

#[test]
fn one_owner_then_duplicate() {
    let kv = MemKv::default();
    let del = d("abc", Dedupe::Forever);
    let token = owned(claim(&kv, "shop", &del, 1_000).unwrap());
    assert_eq!(claim(&kv, "shop", &del, 1_001).unwrap(), Claim::InProgress);
    finish(&kv, "shop", &del, 1_002, token).unwrap();
    assert_eq!(claim(&kv, "shop", &del, 1_003).unwrap(), Claim::Duplicate);
    // ids are per app
    owned(claim(&kv, "blog", &del, 1_003).unwrap());
}

/// Every done record is written before any counter goes: in the other order, an
/// attempt could claim the delivery between the two and deploy it again.
#[test]
fn finish_records_before_it_deletes_the_counters() {
    let log = std::cell::RefCell::new(Vec::new());
    let kv = Hooked::new(|op: &str, key: &str, _: &MemKv| {
        if op == "set" || op == "delete" {
            log.borrow_mut().push(format!("{op} {key}"));
        }
        Ok(())
    });
    let mut del = d("abc", Dedupe::Forever);
    del.aliases.push(Alias {
        id: "push-1".into(),
        ttl_ms: 600_000,
    });
    let token = owned(claim(&kv, "shop", &del, 1_000).unwrap());
    log.borrow_mut().clear();
    finish(&kv, "shop", &del, 1_001, token).unwrap();
    assert_eq!(
        *log.borrow(),
        [
            "set done/shop/abc".to_string(),
            "set done/shop/push-1".into(),
            format!("delete {}", claim_key("shop", "abc", 0)),
            format!("delete {}", claim_key("shop", "push-1", 0)),
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
    let token = owned(claim(&kv, "shop", &del, 1_000).unwrap());
    finish(&kv, "shop", &del, 1_001, token).unwrap();
    assert_eq!(claim_and_done_keys(&kv), ["done/shop/abc"]);
    assert_eq!(claim(&kv, "shop", &del, 1_002).unwrap(), Claim::Duplicate);
    assert_eq!(claim_and_done_keys(&kv), ["done/shop/abc"]);

    // A racing claimant's increment lands before the delete, its release after it.
    let del = d("xyz", Dedupe::Forever);
    let token = owned(claim(&kv, "shop", &del, 2_000).unwrap());
    let racer = claim_key("shop", "xyz", 2_000 / WINDOW_MS);
    assert_eq!(kv.increment(&racer, 1).unwrap(), 2);
    finish(&kv, "shop", &del, 2_001, token).unwrap();
    assert_eq!(kv.increment(&racer, -1).unwrap(), -1);
    assert_eq!(claim(&kv, "shop", &del, 2_002).unwrap(), Claim::Duplicate);
    assert_eq!(
        claim(&kv, "shop", &del, 2_002 + 61_000).unwrap(),
        Claim::Duplicate
    );
    owned(claim(&kv, "shop", &d("other", Dedupe::Forever), 2_003).unwrap());
}

/// A finish whose record cannot be written tries again; if the store stays down it says
/// so and keeps the claim (a release would let a redelivery deploy a second time at
/// once): the delivery is `in_progress` until the claim lapses.
#[test]
fn a_finish_that_cannot_record_keeps_the_claim() {
    let kv = MemKv::default();
    let del = d("abc", Dedupe::Forever);
    let token = owned(claim(&kv, "shop", &del, 1_000).unwrap());
    kv.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let e = finish(&kv, "shop", &del, 1_001, token).unwrap_err();
    assert_eq!(
        e.0,
        "not recorded as done (3 tries): injected failure; the claim is kept until it lapses"
    );
    kv.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(claim_and_done_keys(&kv), [claim_key("shop", "abc", 0)]);
    assert_eq!(kv.increment(&claim_key("shop", "abc", 0), 0).unwrap(), 1);
    assert_eq!(claim(&kv, "shop", &del, 1_002).unwrap(), Claim::InProgress);
    owned(claim(&kv, "shop", &del, 1_000 + 3 * WINDOW_MS).unwrap());
}

/// A store whose first `failures` writes of done records fail.
fn flaky(failures: usize) -> Hooked<impl FnMut(&str, &str, &MemKv) -> Result<(), StoreError>> {
    let mut left = failures;
    Hooked::new(move |op: &str, key: &str, _: &MemKv| {
        if op == "set" && key.starts_with("done/") && left > 0 {
            left -= 1;
            return Err(StoreError("flaky".into()));
        }
        Ok(())
    })
}

#[test]
fn a_record_that_fails_once_is_written_on_the_retry() {
    let kv = flaky(2);
    let del = d("abc", Dedupe::Forever);
    let token = owned(claim(&kv, "shop", &del, 1_000).unwrap());
    finish(&kv, "shop", &del, 1_001, token).unwrap();
    assert_eq!(claim(&kv, "shop", &del, 1_002).unwrap(), Claim::Duplicate);
}

#[test]
fn released_claim_can_be_retried_at_once() {
    let kv = MemKv::default();
    let del = d("abc", Dedupe::Forever);
    let token = owned(claim(&kv, "shop", &del, 5_000).unwrap());
    release(&kv, token).unwrap();
    owned(claim(&kv, "shop", &del, 5_001).unwrap());
}

#[test]
fn abandoned_claim_lapses_after_60_to_90_seconds() {
    let kv = MemKv::default();
    let del = d("abc", Dedupe::Forever);
    let start = 1_000 * WINDOW_MS + WINDOW_MS - 1; // the last ms of a window
    owned(claim(&kv, "shop", &del, start).unwrap());
    for later in [1, 30_000, 59_999] {
        assert_eq!(
            claim(&kv, "shop", &del, start + later).unwrap(),
            Claim::InProgress,
            "+{later}"
        );
    }
    owned(claim(&kv, "shop", &del, start + 60_001).unwrap());

    let kv = MemKv::default();
    let start = 1_000 * WINDOW_MS; // the first ms of a window
    owned(claim(&kv, "shop", &del, start).unwrap());
    assert_eq!(
        claim(&kv, "shop", &del, start + 89_999).unwrap(),
        Claim::InProgress
    );
    owned(claim(&kv, "shop", &del, start + 90_000).unwrap());
}

#[test]
fn body_hash_ids_are_forgotten_after_ten_minutes() {
    let kv = MemKv::default();
    let del = d("hash", Dedupe::BodyHash);
    let t = owned(claim(&kv, "shop", &del, 0).unwrap());
    finish(&kv, "shop", &del, 10, t).unwrap();
    assert_eq!(
        claim(&kv, "shop", &del, 10 + BODY_HASH_TTL_MS - 1).unwrap(),
        Claim::Duplicate
    );
    owned(claim(&kv, "shop", &del, 10 + BODY_HASH_TTL_MS).unwrap());
}

/// Two deliveries with different ids and one alias (the same push sent again under a
/// new id) deploy once while the alias is remembered; after that, the second deploys.
#[test]
fn an_alias_makes_another_id_a_duplicate_for_its_time() {
    let kv = MemKv::default();
    let with_alias = |id: &str| Delivery {
        aliases: vec![Alias {
            id: "push-same".into(),
            ttl_ms: 600_000,
        }],
        ..d(id, Dedupe::Forever)
    };
    let first = with_alias("one");
    let token = owned(claim(&kv, "shop", &first, 0).unwrap());
    // While the first is in flight, the replay is in progress; after, a duplicate.
    assert_eq!(
        claim(&kv, "shop", &with_alias("two"), 1).unwrap(),
        Claim::InProgress
    );
    finish(&kv, "shop", &first, 2, token).unwrap();
    assert_eq!(
        claim(&kv, "shop", &with_alias("two"), 3).unwrap(),
        Claim::Duplicate
    );
    owned(claim(&kv, "shop", &with_alias("two"), 2 + 600_000).unwrap());
    // The id itself is still remembered.
    assert_eq!(
        claim(&kv, "shop", &with_alias("one"), 2 + 600_000).unwrap(),
        Claim::Duplicate
    );
}

#[test]
fn never_deduped_deliveries_always_own() {
    let kv = MemKv::default();
    let del = d("x", Dedupe::Never);
    owned(claim(&kv, "shop", &del, 0).unwrap());
    owned(claim(&kv, "shop", &del, 0).unwrap());
    assert!(kv.keys().unwrap().is_empty());
}

#[test]
fn store_failure_is_an_error_not_a_claim() {
    let kv = MemKv::default();
    kv.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(claim(&kv, "shop", &d("x", Dedupe::Forever), 0).is_err());
}

/// The keys one app can have from claims: the ring's slots and counter, and per slot
/// the done record and counter of each of its names (here one name per delivery).
const BOUND_ONE_NAME: usize = 1 + ring::CAPACITY as usize * 3;

/// 10,000 deployed and 1,000 refused deliveries, one every few seconds, leave at most
/// the bound; the newest are remembered, the oldest forgotten; a crashed claim's counter
/// goes with its slot.
#[test]
fn keys_per_app_stay_bounded() {
    let kv = MemKv::default();
    let mut now = 1_000_000_000;
    // A crash: claimed, never finished nor released.
    owned(claim(&kv, "shop", &d("crashed", Dedupe::Forever), now).unwrap());
    for n in 0..11_000 {
        now += 3_000;
        let del = d(&format!("d{n}"), Dedupe::Forever);
        let token = owned(claim(&kv, "shop", &del, now).unwrap());
        if n % 11 == 10 {
            release(&kv, token).unwrap(); // refused: the platform said no
        } else {
            finish(&kv, "shop", &del, now, token).unwrap();
        }
    }
    let keys = kv.keys().unwrap();
    assert!(
        keys.len() <= BOUND_ONE_NAME,
        "{} keys, bound {BOUND_ONE_NAME}",
        keys.len()
    );
    let counters = keys.iter().filter(|k| k.starts_with("claim/")).count();
    assert!(counters <= 100, "{counters} counters left");
    assert!(!keys.iter().any(|k| k.contains("/crashed")), "{keys:?}");
    assert_eq!(
        claim(&kv, "shop", &d("d10998", Dedupe::Forever), now).unwrap(),
        Claim::Duplicate
    );
    owned(claim(&kv, "shop", &d("d0", Dedupe::Forever), now).unwrap());
}

#[test]
fn clearing_the_ring_removes_every_key_of_the_app() {
    let kv = MemKv::default();
    let mut now = 1_000_000_000;
    for n in 0..50 {
        now += 1_000;
        let mut del = d(&format!("d{n}"), Dedupe::Forever);
        del.aliases.push(Alias {
            id: format!("push-{n}"),
            ttl_ms: 600_000,
        });
        let token = owned(claim(&kv, "shop", &del, now).unwrap());
        match n % 3 {
            0 => finish(&kv, "shop", &del, now, token).unwrap(),
            1 => release(&kv, token).unwrap(),
            _ => drop(token), // crashed
        }
    }
    owned(claim(&kv, "blog", &d("x", Dedupe::Forever), now).unwrap());
    ring::clear(&kv, "shop").unwrap();
    let left = kv.keys().unwrap();
    assert!(left.iter().all(|k| k.contains("/blog/")), "{left:?}");
}

/// Only the record fails (the counters work): the claim is still kept, not released, so
/// a redelivery before it lapses is `in_progress`, not a second deploy.
#[test]
fn a_record_that_keeps_failing_leaves_the_claim_held() {
    let kv = flaky(usize::MAX);
    let del = d("abc", Dedupe::Forever);
    let token = owned(claim(&kv, "shop", &del, 1_000).unwrap());
    assert!(finish(&kv, "shop", &del, 1_001, token).is_err());
    assert_eq!(claim(&kv, "shop", &del, 1_002).unwrap(), Claim::InProgress);
    assert_eq!(claim(&kv, "shop", &del, 60_000).unwrap(), Claim::InProgress);
}
