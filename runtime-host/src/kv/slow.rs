//! [`SlowBackend`]: another backend with a delay before every call, for tests of what a
//! slow store does to a request.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{CasOutcome, KvBackend, KvError};

/// Waits `delay` (without blocking a thread: `tokio::time::sleep`) before every call,
/// then hands the call to the wrapped backend. Set it on a host with
/// [`HostBuilder::kv_delay`](crate::HostBuilder::kv_delay).
#[derive(Clone)]
pub struct SlowBackend {
    inner: Arc<dyn KvBackend>,
    delay: Duration,
}

impl SlowBackend {
    /// `inner`, with `delay` before each of its calls.
    pub fn new(inner: Arc<dyn KvBackend>, delay: Duration) -> Self {
        Self { inner, delay }
    }

    /// The delay before each call.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    async fn wait(&self) {
        tokio::time::sleep(self.delay).await;
    }
}

#[async_trait]
impl KvBackend for SlowBackend {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.wait().await;
        self.inner.get(store, key).await
    }

    async fn set(&self, store: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        self.wait().await;
        self.inner.set(store, key, value).await
    }

    async fn delete(&self, store: &str, key: &str) -> Result<(), KvError> {
        self.wait().await;
        self.inner.delete(store, key).await
    }

    async fn exists(&self, store: &str, key: &str) -> Result<bool, KvError> {
        self.wait().await;
        self.inner.exists(store, key).await
    }

    async fn keys(&self, store: &str) -> Result<Vec<String>, KvError> {
        self.wait().await;
        self.inner.keys(store).await
    }

    async fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        self.wait().await;
        self.inner.increment(store, key, delta).await
    }

    async fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<CasOutcome, KvError> {
        self.wait().await;
        self.inner
            .compare_and_swap(store, key, expected, value)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::Instant;

    use super::*;
    use crate::kv::tests::{decimal, exercise_semantics};
    use crate::kv::{MemoryBackend, DEFAULT_STORE};

    const DELAY: Duration = Duration::from_millis(100);

    /// `call`'s result, after checking it waited the delay once (not twice).
    async fn once<T>(name: &str, call: impl Future<Output = Result<T, KvError>>) -> T {
        let start = Instant::now();
        let result = call.await.unwrap();
        let took = start.elapsed();
        assert!(took >= DELAY, "{name} took {took:?}, less than the delay");
        assert!(took < DELAY * 2, "{name} took {took:?}, the delay twice");
        result
    }

    /// Every call waits the delay, once, then does what the wrapped backend does.
    #[tokio::test]
    async fn every_call_waits_the_delay_once() {
        let memory = MemoryBackend::new();
        let kv = SlowBackend::new(Arc::new(memory.clone()), DELAY);
        let s = DEFAULT_STORE;
        once("set", kv.set(s, "k", b"v".to_vec())).await;
        assert_eq!(once("get", kv.get(s, "k")).await, Some(b"v".to_vec()));
        assert!(once("exists", kv.exists(s, "k")).await);
        assert_eq!(once("keys", kv.keys(s)).await, ["k"]);
        assert_eq!(once("increment", kv.increment(s, "n", 2)).await, 2);
        let cas = kv.compare_and_swap(s, "c", None, vec![1]);
        assert_eq!(once("compare_and_swap", cas).await, CasOutcome::Swapped);
        once("delete", kv.delete(s, "k")).await;
        let data = memory.snapshot();
        assert_eq!(data[s].keys().collect::<Vec<_>>(), ["c", "n"]);

        let fast = SlowBackend::new(Arc::new(MemoryBackend::new()), Duration::ZERO);
        exercise_semantics(&fast, decimal).await;
    }
}
