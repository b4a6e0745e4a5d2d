//! A store that answers slowly (Spin's Redis store blocking while Redis is away): a
//! request that waited past the deploy deadline is not deployed, and its retry deploys
//! once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use autodeploy_host::MemoryBackend;

use crate::support::*;

/// Two instances on one store; every store call of the first takes half a second. A push to
/// the first reaches its deploy call long after the 5 s deadline (GitHub gave up after
/// 10 s): `503 failed`, no call, the claim released. The provider's retry, to the other
/// instance, deploys once; a third delivery of it is a duplicate.
#[tokio::test(flavor = "multi_thread")]
async fn a_push_that_waited_past_the_deadline_is_not_deployed_and_its_retry_is() {
    let store = Arc::new(MemoryBackend::new());
    let slow = Gateway::with_store(store.clone(), Duration::from_millis(500));
    let fast = Gateway::with_store(store, Duration::ZERO);
    let secret = git_secret(&fast.shop().await);
    let body = push_for("late-1");

    let start = Instant::now();
    let (status, answer) = slow.github("shop", &secret, "push", "late-1", &body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (503, Some("failed")),
        "{answer}"
    );
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("not deployed: the request waited"),
        "{reason}"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        slow.calls(),
        0,
        "no deploy call for a request past the deadline"
    );

    let (status, answer) = fast.github("shop", &secret, "push", "late-1", &body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (202, Some("deployed")),
        "the claim was released: {answer}"
    );
    let (status, answer) = fast.github("shop", &secret, "push", "late-1", &body).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    assert_eq!((slow.calls(), fast.calls()), (0, 1));
}
