//! Key-value storage behind the Spin `key-value` and `wasi:keyvalue` interfaces.
//!
//! Both interfaces reach the same [`KvBackend`], so for the store `default` they see the
//! same data, as on Spin. A backend is a trait object (`Arc<dyn KvBackend>`): add another
//! one by implementing the trait and passing it to
//! [`HostBuilder::kv_backend`](crate::HostBuilder::kv_backend).
//!
//! Three backends ship:
//!
//! - [`MemoryBackend`]: a map in memory, shared by every instance of one host.
//! - [`FileBackend`] (`--kv-file`): an SQLite database in Spin's own format (table
//!   `spin_key_value`, store `default`), so it is interchangeable with the
//!   `.spin/sqlite_key_value.db` of `spin up`. WAL mode with `synchronous=FULL`: every
//!   write is durable before the call returns. Calls run on blocking threads; reads do
//!   not wait for writes. One host per file, enforced with a lock on `<file>.lock`.
//! - [`RedisBackend`]: one Redis database shared by any number of hosts, as Spin shares a
//!   `redis` store between nodes.
//!
//! And one wrapper, [`SlowBackend`], that delays every call of another backend (for
//! tests: [`HostBuilder::kv_delay`](crate::HostBuilder::kv_delay)).
//!
//! Counters written by `increment` are stored as each backend's Spin counterpart stores
//! them: the 8 little-endian bytes of the `i64` in the SQLite file (Spin's SQLite store),
//! the decimal ASCII in Redis (`INCRBY`, as Spin's Redis store) and in memory. The
//! component only reads counters through `increment`, so it sees no difference.
//!
//! This module holds what the backends share: the trait, the errors, and the planning of
//! a change against the map the memory backend keeps (`memory.rs`; `file.rs` runs SQL,
//! `redis.rs` talks to Redis).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

mod file;
mod memory;
mod redis;
mod slow;

pub use self::file::FileBackend;
pub use self::memory::MemoryBackend;
pub use self::redis::{RedisBackend, DEFAULT_TIMEOUT as REDIS_TIMEOUT};
pub use self::slow::SlowBackend;

/// The only store label/identifier this host opens (Spin's `key_value_stores = ["default"]`).
pub const DEFAULT_STORE: &str = "default";

/// A backend failure, reported to the guest as `error::other(message)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvError(pub String);

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KvError {}

/// The outcome of [`KvBackend::compare_and_swap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The value was still the expected one and has been replaced.
    Swapped,
    /// The value had changed; this is the current one (`None`: the key is absent).
    Conflict(Option<Vec<u8>>),
}

/// A key-value backend: named stores of byte values.
///
/// Implementations must make `increment` and `compare_and_swap` atomic with respect to
/// every other operation on the same key, and a write must be visible to every later
/// read (of any instance of the host) once it has returned.
#[async_trait]
pub trait KvBackend: Send + Sync + 'static {
    /// The value of `key`, or `None` when absent.
    async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;
    /// Set `key` to `value`, replacing any previous value.
    async fn set(&self, store: &str, key: &str, value: Vec<u8>) -> Result<(), KvError>;
    /// Remove `key`; removing an absent key is not an error.
    async fn delete(&self, store: &str, key: &str) -> Result<(), KvError>;
    /// Whether `key` exists.
    async fn exists(&self, store: &str, key: &str) -> Result<bool, KvError> {
        Ok(self.get(store, key).await?.is_some())
    }
    /// Every key of the store, in any order.
    async fn keys(&self, store: &str) -> Result<Vec<String>, KvError>;
    /// Atomically add `delta` to the counter at `key` and return the new value. An absent
    /// key counts from 0; a value that is not a counter in the backend's encoding (see the
    /// module docs) is an error, and so is an overflow; either leaves the value as it was.
    async fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, KvError>;
    /// Atomically set `key` to `value` if its current value is `expected` (`None`: the key
    /// must be absent).
    async fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<CasOutcome, KvError>;
}

/// All stores: store name → key → value.
pub type KvData = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

fn lock(data: &Mutex<KvData>) -> MutexGuard<'_, KvData> {
    // A panic while holding the lock cannot leave a half-applied change behind (every
    // change is computed first and stored with one assignment), so poison is harmless.
    data.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read_value(data: &KvData, store: &str, key: &str) -> Option<Vec<u8>> {
    data.get(store).and_then(|s| s.get(key)).cloned()
}

/// Parse a stored counter: the decimal ASCII of an `i64`.
pub(crate) fn parse_counter(value: &[u8]) -> Result<i64, KvError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| KvError("increment: the stored value is not an integer".to_string()))
}

/// The new counter value for `increment`, without storing it.
fn next_counter(current: Option<&[u8]>, delta: i64) -> Result<i64, KvError> {
    let base = match current {
        None => 0,
        Some(v) => parse_counter(v)?,
    };
    base.checked_add(delta)
        .ok_or_else(|| KvError("increment: the counter would overflow".to_string()))
}

/// A single change, computed under the lock and then applied.
enum Change {
    None,
    Set(String, String, Vec<u8>),
    Delete(String, String),
}

impl Change {
    fn apply(self, data: &mut KvData) {
        match self {
            Change::None => {}
            Change::Set(store, key, value) => {
                data.entry(store).or_default().insert(key, value);
            }
            Change::Delete(store, key) => {
                if let Some(s) = data.get_mut(&store) {
                    s.remove(&key);
                    if s.is_empty() {
                        data.remove(&store);
                    }
                }
            }
        }
    }
}

/// Plan an operation against the current data: the change to make and the result.
fn plan_increment(
    data: &KvData,
    store: &str,
    key: &str,
    delta: i64,
) -> Result<(Change, i64), KvError> {
    let current = data.get(store).and_then(|s| s.get(key));
    let next = next_counter(current.map(Vec::as_slice), delta)?;
    Ok((
        Change::Set(store.into(), key.into(), next.to_string().into_bytes()),
        next,
    ))
}

fn plan_cas(
    data: &KvData,
    store: &str,
    key: &str,
    expected: Option<Vec<u8>>,
    value: Vec<u8>,
) -> (Change, CasOutcome) {
    let current = read_value(data, store, key);
    if current == expected {
        (
            Change::Set(store.into(), key.into(), value),
            CasOutcome::Swapped,
        )
    } else {
        (Change::None, CasOutcome::Conflict(current))
    }
}

fn plan_delete(data: &KvData, store: &str, key: &str) -> Change {
    if data.get(store).is_some_and(|s| s.contains_key(key)) {
        Change::Delete(store.into(), key.into())
    } else {
        Change::None
    }
}

fn keys_of(data: &KvData, store: &str) -> Vec<String> {
    data.get(store)
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fs;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A fresh, empty directory for one test.
    pub(crate) fn temp_dir(tag: &str) -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "autodeploy-host-kv-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// How the memory and Redis backends store a counter: decimal ASCII.
    pub(crate) fn decimal(n: i64) -> Vec<u8> {
        n.to_string().into_bytes()
    }

    /// How the file backend stores a counter, as Spin's SQLite store: 8 bytes LE.
    pub(crate) fn le_bytes(n: i64) -> Vec<u8> {
        n.to_le_bytes().to_vec()
    }

    /// The behaviour every backend shares (the Redis backend's tests run it too);
    /// `counter` is how the backend stores a counter.
    pub(crate) async fn exercise_semantics(kv: &dyn KvBackend, counter: fn(i64) -> Vec<u8>) {
        let s = DEFAULT_STORE;
        assert_eq!(kv.get(s, "a").await.unwrap(), None);
        assert!(!kv.exists(s, "a").await.unwrap());
        kv.set(s, "a", b"1".to_vec()).await.unwrap();
        assert_eq!(kv.get(s, "a").await.unwrap(), Some(b"1".to_vec()));
        assert!(kv.exists(s, "a").await.unwrap());
        // Stores are separate.
        assert_eq!(kv.get("other", "a").await.unwrap(), None);

        // increment: absent key starts from 0, stored in the backend's encoding.
        assert_eq!(kv.increment(s, "n", 1).await.unwrap(), 1);
        assert_eq!(kv.increment(s, "n", 5).await.unwrap(), 6);
        assert_eq!(kv.increment(s, "n", -10).await.unwrap(), -4);
        assert_eq!(kv.get(s, "n").await.unwrap(), Some(counter(-4)));
        // An existing counter, set by hand, counts on.
        kv.set(s, "m", counter(1)).await.unwrap();
        assert_eq!(kv.increment(s, "m", 2).await.unwrap(), 3);
        // Not a counter → error, value untouched.
        kv.set(s, "t", b"text".to_vec()).await.unwrap();
        assert!(kv.increment(s, "t", 1).await.is_err());
        assert_eq!(kv.get(s, "t").await.unwrap(), Some(b"text".to_vec()));
        kv.set(s, "max", counter(i64::MAX)).await.unwrap();
        assert!(kv.increment(s, "max", 1).await.is_err());
        assert_eq!(kv.get(s, "max").await.unwrap(), Some(counter(i64::MAX)));

        // compare-and-swap.
        assert_eq!(
            kv.compare_and_swap(s, "c", None, b"x".to_vec())
                .await
                .unwrap(),
            CasOutcome::Swapped
        );
        assert_eq!(
            kv.compare_and_swap(s, "c", None, b"y".to_vec())
                .await
                .unwrap(),
            CasOutcome::Conflict(Some(b"x".to_vec()))
        );
        assert_eq!(
            kv.compare_and_swap(s, "c", Some(b"x".to_vec()), b"z".to_vec())
                .await
                .unwrap(),
            CasOutcome::Swapped
        );
        assert_eq!(kv.get(s, "c").await.unwrap(), Some(b"z".to_vec()));
        kv.delete(s, "c").await.unwrap();
        assert_eq!(
            kv.compare_and_swap(s, "c", Some(b"z".to_vec()), b"w".to_vec())
                .await
                .unwrap(),
            CasOutcome::Conflict(None)
        );

        kv.delete(s, "a").await.unwrap();
        kv.delete(s, "a").await.unwrap(); // absent: fine
        let mut keys = kv.keys(s).await.unwrap();
        keys.sort();
        assert_eq!(keys, vec!["m", "max", "n", "t"]);
        assert!(kv.keys("nothing").await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn increments_are_atomic() {
        let mem: Arc<dyn KvBackend> = Arc::new(MemoryBackend::new());
        let dir = temp_dir("atomic");
        let file: Arc<dyn KvBackend> = Arc::new(FileBackend::open(dir.join("kv.db")).unwrap());
        for kv in [mem, file] {
            let mut tasks = Vec::new();
            for _ in 0..20 {
                let kv = kv.clone();
                tasks.push(tokio::spawn(async move {
                    kv.increment(DEFAULT_STORE, "n", 1).await.unwrap()
                }));
            }
            let mut seen = Vec::new();
            for t in tasks {
                seen.push(t.await.unwrap());
            }
            seen.sort();
            assert_eq!(seen, (1..=20).collect::<Vec<_>>());
            // Exactly one claimant wins a CAS on an absent key.
            let mut tasks = Vec::new();
            for i in 0..10u8 {
                let kv = kv.clone();
                tasks.push(tokio::spawn(async move {
                    kv.compare_and_swap(DEFAULT_STORE, "claim", None, vec![i])
                        .await
                        .unwrap()
                }));
            }
            let mut wins = 0;
            for t in tasks {
                if t.await.unwrap() == CasOutcome::Swapped {
                    wins += 1;
                }
            }
            assert_eq!(wins, 1);
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn counters_parse() {
        assert_eq!(parse_counter(b"-12").unwrap(), -12);
        assert!(parse_counter(b"1.5").is_err());
        assert!(parse_counter(b"").is_err());
        assert!(parse_counter(&[0xff]).is_err());
    }
}
