//! The key-value interfaces the guest imports — `fermyon:spin/key-value@2.0.0` and
//! `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2` — over the host's one
//! [`KvBackend`](crate::KvBackend), so both see the same data. Only the store `default`
//! opens (Spin's `key_value_stores = ["default"]`).

use wasmtime::component::Resource;

use crate::bindings::fermyon::spin::key_value;
use crate::bindings::wasi::keyvalue::{atomics, batch, store as wkv};
use crate::ctx::Ctx;
use crate::kv::{CasOutcome, KvError, DEFAULT_STORE};

// The representations behind the WIT resources (see `bindings.rs`).

/// A Spin `key-value.store` handle: the name of an opened store.
pub struct SpinStore {
    name: String,
}

/// A `wasi:keyvalue/store.bucket` handle: the name of an opened store.
pub struct Bucket {
    name: String,
}

/// A `wasi:keyvalue/atomics.cas` handle: a key and the value it had when the handle was
/// made (the expected value of the swap).
pub struct Cas {
    store: String,
    key: String,
    current: Option<Vec<u8>>,
}

// ---------------------------------------------------------------------------------------
// fermyon:spin/key-value@2.0.0

fn spin_err(e: KvError) -> key_value::Error {
    key_value::Error::Other(e.0)
}

impl Ctx {
    fn spin_store(&self, this: &Resource<SpinStore>) -> wasmtime::Result<String> {
        Ok(self.table.get(this)?.name.clone())
    }

    fn bucket(&self, this: &Resource<Bucket>) -> wasmtime::Result<String> {
        Ok(self.table.get(this)?.name.clone())
    }
}

impl key_value::Host for Ctx {}

impl key_value::HostStore for Ctx {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<SpinStore>, key_value::Error>> {
        if label != DEFAULT_STORE {
            return Ok(Err(key_value::Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(SpinStore { name: label })?))
    }

    async fn get(
        &mut self,
        this: Resource<SpinStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, key_value::Error>> {
        let store = self.spin_store(&this)?;
        Ok(self.shared.kv.get(&store, &key).await.map_err(spin_err))
    }

    async fn set(
        &mut self,
        this: Resource<SpinStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let store = self.spin_store(&this)?;
        Ok(self
            .shared
            .kv
            .set(&store, &key, value)
            .await
            .map_err(spin_err))
    }

    async fn delete(
        &mut self,
        this: Resource<SpinStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), key_value::Error>> {
        let store = self.spin_store(&this)?;
        Ok(self.shared.kv.delete(&store, &key).await.map_err(spin_err))
    }

    async fn exists(
        &mut self,
        this: Resource<SpinStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, key_value::Error>> {
        let store = self.spin_store(&this)?;
        Ok(self.shared.kv.exists(&store, &key).await.map_err(spin_err))
    }

    async fn get_keys(
        &mut self,
        this: Resource<SpinStore>,
    ) -> wasmtime::Result<Result<Vec<String>, key_value::Error>> {
        let store = self.spin_store(&this)?;
        Ok(self.shared.kv.keys(&store).await.map_err(spin_err))
    }

    async fn drop(&mut self, this: Resource<SpinStore>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2

fn wkv_err(e: KvError) -> wkv::Error {
    wkv::Error::Other(e.0)
}

impl wkv::Host for Ctx {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, wkv::Error>> {
        if identifier != DEFAULT_STORE {
            return Ok(Err(wkv::Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(Bucket { name: identifier })?))
    }
}

impl wkv::HostBucket for Ctx {
    async fn get(
        &mut self,
        this: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wkv::Error>> {
        let store = self.bucket(&this)?;
        Ok(self.shared.kv.get(&store, &key).await.map_err(wkv_err))
    }

    async fn set(
        &mut self,
        this: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wkv::Error>> {
        let store = self.bucket(&this)?;
        Ok(self
            .shared
            .kv
            .set(&store, &key, value)
            .await
            .map_err(wkv_err))
    }

    async fn delete(
        &mut self,
        this: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), wkv::Error>> {
        let store = self.bucket(&this)?;
        Ok(self.shared.kv.delete(&store, &key).await.map_err(wkv_err))
    }

    async fn exists(
        &mut self,
        this: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, wkv::Error>> {
        let store = self.bucket(&this)?;
        Ok(self.shared.kv.exists(&store, &key).await.map_err(wkv_err))
    }

    async fn list_keys(
        &mut self,
        this: Resource<Bucket>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<wkv::KeyResponse, wkv::Error>> {
        let store = self.bucket(&this)?;
        if cursor.is_some() {
            // Every key comes in the first page, so there is never a cursor to pass back.
            return Ok(Err(wkv::Error::Other(
                "list-keys: cursors are not supported".to_string(),
            )));
        }
        Ok(self
            .shared
            .kv
            .keys(&store)
            .await
            .map(|keys| wkv::KeyResponse { keys, cursor: None })
            .map_err(wkv_err))
    }

    async fn drop(&mut self, this: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl atomics::Host for Ctx {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, wkv::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(self
            .shared
            .kv
            .increment(&store, &key, delta)
            .await
            .map_err(wkv_err))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let cas = self.table.delete(cas)?;
        let outcome = self
            .shared
            .kv
            .compare_and_swap(&cas.store, &cas.key, cas.current, value)
            .await;
        Ok(match outcome {
            Ok(CasOutcome::Swapped) => Ok(()),
            Ok(CasOutcome::Conflict(current)) => {
                let retry = self.table.push(Cas {
                    store: cas.store,
                    key: cas.key,
                    current,
                })?;
                Err(atomics::CasError::CasFailed(retry))
            }
            Err(e) => Err(atomics::CasError::StoreError(wkv_err(e))),
        })
    }
}

impl atomics::HostCas for Ctx {
    async fn new(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, wkv::Error>> {
        let store = self.bucket(&bucket)?;
        let current = match self.shared.kv.get(&store, &key).await {
            Ok(v) => v,
            Err(e) => return Ok(Err(wkv_err(e))),
        };
        Ok(Ok(self.table.push(Cas {
            store,
            key,
            current,
        })?))
    }

    async fn current(
        &mut self,
        this: Resource<Cas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wkv::Error>> {
        Ok(Ok(self.table.get(&this)?.current.clone()))
    }

    async fn drop(&mut self, this: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

impl batch::Host for Ctx {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, wkv::Error>> {
        let store = self.bucket(&bucket)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match self.shared.kv.get(&store, &key).await {
                Ok(value) => out.push((key, value)),
                Err(e) => return Ok(Err(wkv_err(e))),
            }
        }
        Ok(Ok(out))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), wkv::Error>> {
        let store = self.bucket(&bucket)?;
        for (key, value) in key_values {
            if let Err(e) = self.shared.kv.set(&store, &key, value).await {
                return Ok(Err(wkv_err(e)));
            }
        }
        Ok(Ok(()))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), wkv::Error>> {
        let store = self.bucket(&bucket)?;
        for key in keys {
            if let Err(e) = self.shared.kv.delete(&store, &key).await {
                return Ok(Err(wkv_err(e)));
            }
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::test_support::{ctx, shared};

    #[tokio::test]
    async fn spin_and_wasi_keyvalue_share_the_default_store() {
        use atomics::{Host as _, HostCas as _};

        let shared = shared(None);
        let mut c = ctx(&shared);

        // Only `default` opens.
        assert!(matches!(
            key_value::HostStore::open(&mut c, "other".into())
                .await
                .unwrap(),
            Err(key_value::Error::NoSuchStore)
        ));
        assert!(matches!(
            wkv::Host::open(&mut c, "other".into()).await.unwrap(),
            Err(wkv::Error::NoSuchStore)
        ));

        let store = key_value::HostStore::open(&mut c, "default".into())
            .await
            .unwrap()
            .unwrap();
        let store2 = Resource::<SpinStore>::new_borrow(store.rep());
        key_value::HostStore::set(&mut c, store2, "k".into(), b"v".to_vec())
            .await
            .unwrap()
            .unwrap();

        let bucket = wkv::Host::open(&mut c, "default".into())
            .await
            .unwrap()
            .unwrap();
        let b = || Resource::<Bucket>::new_borrow(bucket.rep());
        assert_eq!(
            wkv::HostBucket::get(&mut c, b(), "k".into())
                .await
                .unwrap()
                .unwrap(),
            Some(b"v".to_vec())
        );

        // increment through wasi:keyvalue, read through Spin as decimal ASCII.
        assert_eq!(c.increment(b(), "n".into(), 1).await.unwrap().unwrap(), 1);
        assert_eq!(c.increment(b(), "n".into(), 2).await.unwrap().unwrap(), 3);
        let store_rep = store.rep();
        let s = || Resource::<SpinStore>::new_borrow(store_rep);
        assert_eq!(
            key_value::HostStore::get(&mut c, s(), "n".into())
                .await
                .unwrap()
                .unwrap(),
            Some(b"3".to_vec())
        );
        // On a non-integer value: an error.
        assert!(c.increment(b(), "k".into(), 1).await.unwrap().is_err());

        // cas: swap succeeds when unchanged, fails with a fresh handle otherwise.
        let cas = c.new(b(), "c".into()).await.unwrap().unwrap();
        assert_eq!(
            c.current(Resource::new_borrow(cas.rep()))
                .await
                .unwrap()
                .unwrap(),
            None
        );
        let stale = c.new(b(), "c".into()).await.unwrap().unwrap();
        c.swap(cas, b"first".to_vec()).await.unwrap().unwrap();
        let retry = match c.swap(stale, b"second".to_vec()).await.unwrap() {
            Err(atomics::CasError::CasFailed(retry)) => retry,
            other => panic!("expected cas-failed, got {:?}", other.map(|_| ())),
        };
        assert_eq!(
            c.current(Resource::new_borrow(retry.rep()))
                .await
                .unwrap()
                .unwrap(),
            Some(b"first".to_vec())
        );
        c.swap(retry, b"second".to_vec()).await.unwrap().unwrap();
        assert_eq!(
            key_value::HostStore::get(&mut c, s(), "c".into())
                .await
                .unwrap()
                .unwrap(),
            Some(b"second".to_vec())
        );

        // keys, exists, delete and batch agree.
        let mut keys = key_value::HostStore::get_keys(&mut c, s())
            .await
            .unwrap()
            .unwrap();
        keys.sort();
        assert_eq!(keys, ["c", "k", "n"]);
        let listed = wkv::HostBucket::list_keys(&mut c, b(), None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(listed.keys.len(), 3);
        assert_eq!(listed.cursor, None);
        batch::Host::delete_many(&mut c, b(), vec!["c".into(), "zz".into()])
            .await
            .unwrap()
            .unwrap();
        assert!(!key_value::HostStore::exists(&mut c, s(), "c".into())
            .await
            .unwrap()
            .unwrap());
        let many = batch::Host::get_many(&mut c, b(), vec!["k".into(), "c".into()])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            many,
            [("k".into(), Some(b"v".to_vec())), ("c".into(), None)]
        );

        key_value::HostStore::drop(&mut c, store).await.unwrap();
        wkv::HostBucket::drop(&mut c, bucket).await.unwrap();
        // A dropped handle traps.
        assert!(key_value::HostStore::get(&mut c, s(), "k".into())
            .await
            .is_err());
    }
}
