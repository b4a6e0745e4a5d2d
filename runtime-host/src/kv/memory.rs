//! The in-memory backend: one map shared by every instance of one host.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{
    keys_of, lock, plan_cas, plan_delete, plan_increment, read_value, CasOutcome, Change,
    KvBackend, KvData, KvError,
};

/// Every store in memory; clones of one backend (and every instance of one host) share it.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    data: Arc<Mutex<KvData>>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of everything stored.
    pub fn snapshot(&self) -> KvData {
        lock(&self.data).clone()
    }
}

#[async_trait]
impl KvBackend for MemoryBackend {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(read_value(&lock(&self.data), store, key))
    }

    async fn set(&self, store: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        Change::Set(store.into(), key.into(), value).apply(&mut lock(&self.data));
        Ok(())
    }

    async fn delete(&self, store: &str, key: &str) -> Result<(), KvError> {
        let mut data = lock(&self.data);
        plan_delete(&data, store, key).apply(&mut data);
        Ok(())
    }

    async fn keys(&self, store: &str) -> Result<Vec<String>, KvError> {
        Ok(keys_of(&lock(&self.data), store))
    }

    async fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        let mut data = lock(&self.data);
        let (change, next) = plan_increment(&data, store, key, delta)?;
        change.apply(&mut data);
        Ok(next)
    }

    async fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<CasOutcome, KvError> {
        let mut data = lock(&self.data);
        let (change, outcome) = plan_cas(&data, store, key, expected, value);
        change.apply(&mut data);
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::tests::exercise_semantics;

    #[tokio::test]
    async fn memory_semantics() {
        exercise_semantics(&MemoryBackend::new(), crate::kv::tests::decimal).await;
    }
}
