//! The gateway's host in Spin: variables, the key-value store (Spin's and
//! `wasi:keyvalue`'s atomics over the same store), the clock, randomness and stderr.

use std::cell::OnceCell;
use std::time::Duration;

use spin_sdk::wit::wasi::keyvalue::{atomics, store as wasi_kv};

use crate::gateway::Host;
use crate::model::OutboundRequest;
use crate::state::{Kv, StoreError};

/// The Spin host of one request: stores are opened on first use.
#[derive(Default)]
pub(super) struct SpinHost {
    kv: OnceCell<Result<SpinKv, StoreError>>,
}

struct SpinKv {
    store: spin_sdk::key_value::Store,
    bucket: wasi_kv::Bucket,
}

impl SpinKv {
    fn open() -> Result<SpinKv, StoreError> {
        let store = spin_sdk::key_value::Store::open_default()
            .map_err(|e| StoreError(format!("open key-value store default: {e}")))?;
        let bucket = wasi_kv::open("default")
            .map_err(|e| StoreError(format!("open wasi:keyvalue bucket default: {e:?}")))?;
        Ok(SpinKv { store, bucket })
    }
}

fn kv_err(e: impl std::fmt::Debug) -> StoreError {
    StoreError(format!("{e:?}"))
}

impl Kv for SpinKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(key).map_err(kv_err)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.store.set(key, value).map_err(kv_err)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.store.delete(key).map_err(kv_err)
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.store.exists(key).map_err(kv_err)
    }
    fn keys(&self) -> Result<Vec<String>, StoreError> {
        self.store.get_keys().map_err(kv_err)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(&self.bucket, key, delta).map_err(kv_err)
    }
    fn swap(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, StoreError> {
        let cas = atomics::Cas::new(&self.bucket, key).map_err(kv_err)?;
        if cas.current().map_err(kv_err)?.as_deref() != expected {
            return Ok(false);
        }
        match atomics::swap(cas, value) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(kv_err(e)),
        }
    }
}

impl Host for SpinHost {
    fn kv(&self) -> Result<&dyn Kv, StoreError> {
        match self.kv.get_or_init(SpinKv::open) {
            Ok(kv) => Ok(kv),
            Err(e) => Err(e.clone()),
        }
    }

    fn var(&self, name: &str) -> Option<String> {
        spin_sdk::variables::get(name).ok()
    }

    fn send(&self, req: &OutboundRequest, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
        super::outbound::send(req, timeout)
    }

    // The clock and stderr are called through their WASI 0.2 interfaces, not std:
    // std reaches them through wasi-libc, and the fallback build's libc is the preview1
    // one, which makes the linker add the 10 KB preview1 adapter for two calls.
    fn now_ms(&self) -> u64 {
        let now = wasi::clocks::wall_clock::now();
        now.seconds * 1000 + u64::from(now.nanoseconds / 1_000_000)
    }

    fn fill_random(&self, buf: &mut [u8]) {
        let bytes = wasi::random::random::get_random_bytes(buf.len() as u64);
        buf.copy_from_slice(&bytes);
    }

    fn log(&self, line: &str) {
        let mut text = Vec::with_capacity(line.len() + 1);
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
        let stderr = wasi::cli::stderr::get_stderr();
        // One call writes at most 4096 bytes.
        for chunk in text.chunks(4096) {
            if stderr.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
}
