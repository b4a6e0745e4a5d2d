//! The key-value store as the core sees it, and the keys it uses.
//!
//! Keys: `app/{name}` and `apps/index` (the sorted app names); `done/{app}/{name}`
//! (deployed deliveries, under each of their names); `claim/{app}/{name}/{window}`
//! (claim counters); `ring/{app}/seq` and `ring/{app}/{slot}` (the last 1,000 claims and
//! what each left); `log/{app}/seq` and `log/{app}/{slot}` (the bounded delivery log);
//! `log/{app}/rejected/seq` and `log/{app}/rejected/{slot}` (refusals before authentication).

pub(crate) mod app;
pub(crate) mod delivery;
pub(crate) mod log;

/// A store failure; the text is for the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl From<StoreError> for crate::error::Error {
    fn from(e: StoreError) -> Self {
        crate::error::Error::Store(e.0)
    }
}

/// The Spin key-value store `default` (`fermyon:spin/key-value` and `wasi:keyvalue`).
pub trait Kv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    fn exists(&self, key: &str) -> Result<bool, StoreError>;
    fn keys(&self) -> Result<Vec<String>, StoreError>;
    /// Atomically adds `delta` to the counter at `key` (absent = 0) and returns the result.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
    /// Compare-and-swap: writes `value` only if the key still holds `expected` (`None`:
    /// absent). `false` when it did not, because another writer got there first.
    fn swap(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, StoreError>;
}

/// An in-memory store for native tests.
#[cfg(test)]
#[derive(Default)]
pub struct MemKv {
    pub map: std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
    pub fail: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl MemKv {
    fn check(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Vec<u8>>>, StoreError>
    {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError("injected failure".into()));
        }
        Ok(self.map.lock().unwrap())
    }
}

#[cfg(test)]
impl Kv for MemKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.check()?.get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.check()?.insert(key.into(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check()?.remove(key);
        Ok(())
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.check()?.contains_key(key))
    }
    fn keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.check()?.keys().cloned().collect())
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let mut map = self.check()?;
        let current = map
            .get(key)
            .map(|v| String::from_utf8_lossy(v).parse::<i64>().unwrap_or(0))
            .unwrap_or(0);
        let next = current + delta;
        map.insert(key.into(), next.to_string().into_bytes());
        Ok(next)
    }
    fn swap(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, StoreError> {
        let mut map = self.check()?;
        if map.get(key).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        map.insert(key.into(), value.to_vec());
        Ok(true)
    }
}

/// The memory store with a hook called before every operation, as `(operation, key,
/// the store)`: tests record writes, fail some, or let another writer in between.
#[cfg(test)]
pub struct Hooked<F: FnMut(&str, &str, &MemKv) -> Result<(), StoreError>> {
    pub kv: MemKv,
    pub hook: std::cell::RefCell<F>,
}

#[cfg(test)]
impl<F: FnMut(&str, &str, &MemKv) -> Result<(), StoreError>> Hooked<F> {
    pub fn new(hook: F) -> Self {
        Hooked {
            kv: MemKv::default(),
            hook: std::cell::RefCell::new(hook),
        }
    }

    fn before(&self, op: &str, key: &str) -> Result<(), StoreError> {
        (self.hook.borrow_mut())(op, key, &self.kv)
    }
}

#[cfg(test)]
impl<F: FnMut(&str, &str, &MemKv) -> Result<(), StoreError>> Kv for Hooked<F> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.before("get", key)?;
        self.kv.get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.before("set", key)?;
        self.kv.set(key, value)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.before("delete", key)?;
        self.kv.delete(key)
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.before("exists", key)?;
        self.kv.exists(key)
    }
    fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.before("keys", "")?;
        self.kv.keys()
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.before("increment", key)?;
        self.kv.increment(key, delta)
    }
    fn swap(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, StoreError> {
        self.before("swap", key)?;
        self.kv.swap(key, expected, value)
    }
}
