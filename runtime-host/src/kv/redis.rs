//! The Redis backend: one key-value store shared by several hosts, as Spin shares a
//! `redis` key-value store between the instances of an app on many nodes.
//!
//! - Keys are `<store>:<key>` (`default:app/shop`), so stores never see each other's
//!   keys; [`keys`](KvBackend::keys) lists its own store's keys with `SCAN MATCH
//!   <store>:*` (never `KEYS`, which blocks Redis) and strips the prefix.
//! - `increment` is `INCRBY`: atomic in Redis, and the counter is stored as the decimal
//!   ASCII of an `i64`, as with the other backends. Redis refuses a value that is not a
//!   canonical decimal integer (`"007"`, `" 1"`) and an overflow: both are errors.
//! - `compare_and_swap` is one Lua script (GET, compare, SET), atomic because Redis runs a
//!   script alone. `WATCH`/`MULTI`/`EXEC` would need a connection of its own; this one is
//!   multiplexed.
//!
//! The connection is one multiplexed connection per backend (redis-rs's
//! `ConnectionManager`), made on first use: a host starts while Redis is down and serves
//! as soon as it is up. Failures are [`KvError`]s, which the component answers with a 503:
//!
//! - every operation is bounded by a timeout ([`DEFAULT_TIMEOUT`], 2 s): a dead, silent or
//!   unreachable Redis gives an error within it, never a hang;
//! - a lost connection is made again by the next operations (the manager reconnects on
//!   I/O errors; each attempt is one connect, bounded by the same timeout), so the
//!   backend recovers by itself when Redis is back; after a timeout the connection is
//!   replaced too, as it may be half-open (Redis gone without a word);
//! - an operation whose connection was refused never reached Redis: it is tried once more
//!   on the fresh connection. Reads and plain writes (`GET`, `EXISTS`, `SCAN`, `SET`,
//!   `DEL`) are also tried once more after a dropped connection, as repeating them is
//!   harmless; `INCRBY` and the swap are not (they may have been applied), so they fail.

use std::future::Future;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, RedisResult, Script, Value};
use async_trait::async_trait;
use tokio::sync::Mutex;

use super::{CasOutcome, KvBackend, KvError};

/// How long one Redis operation may take, connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Keys listed per `SCAN` round trip.
const SCAN_COUNT: usize = 500;

/// `KEYS[1]` = key, `ARGV[1]` = `1` when a value is expected (else the key must be
/// absent), `ARGV[2]` = the expected value, `ARGV[3]` = the new value. Answers `{1}`
/// when swapped, `{0}` when the key is absent, `{0, current}` otherwise.
const CAS_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if not current then return {0} end
  if current ~= ARGV[2] then return {0, current} end
elseif current then
  return {0, current}
end
redis.call('SET', KEYS[1], ARGV[3])
return {1}
";

/// Every store in one Redis database (see the module documentation).
pub struct RedisBackend {
    client: Client,
    shown: String,
    timeout: Duration,
    /// Made by the first operation that needs it; dropped after a timeout.
    connection: Mutex<Option<ConnectionManager>>,
    cas: Script,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.shown)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Whether a failed command may be sent once more.
#[derive(Clone, Copy)]
enum Retry {
    /// Only when it cannot have reached Redis (the connection was refused).
    IfNotSent,
    /// Also after a dropped connection: repeating it is harmless.
    Idempotent,
}

impl RedisBackend {
    /// A backend for `url` (`redis://[:password@]host[:port][/db]`, or
    /// `redis+unix:///path?db=N`), with the [`DEFAULT_TIMEOUT`]. Only the URL is checked
    /// here; the connection is made by the first operation.
    pub fn open(url: &str) -> anyhow::Result<Self> {
        let shown = display_url(url);
        let client = Client::open(url)
            .map_err(|e| anyhow::anyhow!("Redis URL {shown}: {}", describe(&e)))?;
        Ok(Self {
            client,
            shown,
            timeout: DEFAULT_TIMEOUT,
            connection: Mutex::new(None),
            cas: Script::new(CAS_SCRIPT),
        })
    }

    /// Bound every operation by `timeout` instead of [`DEFAULT_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The URL, with any password replaced by `***` (for logs).
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// The timeout of one operation.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Check that Redis answers (`PING`), within the timeout.
    pub async fn ping(&self) -> Result<(), KvError> {
        self.run("ping", Retry::Idempotent, |mut c| async move {
            ::redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await
        .map(drop)
    }

    /// The connection, made now if there is none (concurrent operations wait for one
    /// attempt rather than each making their own).
    async fn connection(&self) -> RedisResult<ConnectionManager> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = &*slot {
            return Ok(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            // One connect per attempt: the next operation makes the next attempt, so
            // nothing sleeps in a backoff while Redis is already back.
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// After a timeout the connection may be half-open (Redis gone without closing it,
    /// e.g. after a failover), which the manager would never notice: the next operation
    /// makes a new one. Operations in flight keep the old one.
    fn forget_connection(&self) {
        if let Ok(mut slot) = self.connection.try_lock() {
            *slot = None;
        }
    }

    /// Run `op` on the connection, once more if `retry` allows it, all within the
    /// timeout.
    async fn run<T, F, Fut>(&self, what: &str, retry: Retry, op: F) -> Result<T, KvError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let attempts = async {
            let mut tried = false;
            loop {
                let result = match self.connection().await {
                    Ok(conn) => op(conn).await,
                    Err(e) => Err(e),
                };
                match result {
                    Err(e) if !tried && may_retry(&e, retry) => tried = true,
                    other => return other,
                }
            }
        };
        match tokio::time::timeout(self.timeout, attempts).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if e.is_timeout() => Err(self.no_answer(what)),
            Ok(Err(e)) => Err(KvError(format!("redis {what}: {}", describe(&e)))),
            Err(_) => Err(self.no_answer(what)),
        }
    }

    fn no_answer(&self, what: &str) -> KvError {
        self.forget_connection();
        KvError(format!(
            "redis {what}: Redis is unavailable (no answer from {} within {} ms)",
            self.shown,
            self.timeout.as_millis()
        ))
    }

    fn key(store: &str, key: &str) -> String {
        format!("{store}:{key}")
    }
}

fn may_retry(e: &RedisError, retry: Retry) -> bool {
    e.is_connection_refusal() || matches!(retry, Retry::Idempotent) && e.is_connection_dropped()
}

/// The error as the guest and the log see it: what failed, with no URL (it may hold a
/// password).
fn describe(e: &RedisError) -> String {
    if e.is_io_error() {
        format!("Redis is unavailable ({e})")
    } else {
        e.to_string()
    }
}

/// `url` with its password replaced by `***`, for logs and errors.
pub fn display_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{}", hide_pass(tail)),
            None => format!("{scheme}://{authority}{}", hide_pass(tail)),
        },
        None => format!("{scheme}://{authority}{}", hide_pass(tail)),
    }
}

/// The path and query of a URL with the value of a `pass=` parameter (unix sockets)
/// replaced by `***`.
fn hide_pass(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name @ ("pass" | "password"), _)) => format!("{name}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// `SCAN`'s `MATCH` pattern for the keys of `store`: the prefix, glob characters escaped.
fn scan_pattern(store: &str) -> String {
    let mut pattern = String::with_capacity(store.len() + 2);
    for c in store.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str(":*");
    pattern
}

#[async_trait]
impl KvBackend for RedisBackend {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let key = Self::key(store, key);
        self.run("get", Retry::Idempotent, |mut c| {
            let key = key.clone();
            async move { ::redis::cmd("GET").arg(key).query_async(&mut c).await }
        })
        .await
    }

    async fn set(&self, store: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        let key = Self::key(store, key);
        self.run("set", Retry::Idempotent, |mut c| {
            let (key, value) = (key.clone(), value.clone());
            async move {
                ::redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .query_async(&mut c)
                    .await
            }
        })
        .await
    }

    async fn delete(&self, store: &str, key: &str) -> Result<(), KvError> {
        let key = Self::key(store, key);
        self.run("delete", Retry::Idempotent, |mut c| {
            let key = key.clone();
            async move {
                ::redis::cmd("DEL")
                    .arg(key)
                    .query_async::<i64>(&mut c)
                    .await
                    .map(drop)
            }
        })
        .await
    }

    async fn exists(&self, store: &str, key: &str) -> Result<bool, KvError> {
        let key = Self::key(store, key);
        self.run("exists", Retry::Idempotent, |mut c| {
            let key = key.clone();
            async move { ::redis::cmd("EXISTS").arg(key).query_async(&mut c).await }
        })
        .await
    }

    /// One `SCAN` round trip per page, each bounded by the timeout.
    async fn keys(&self, store: &str) -> Result<Vec<String>, KvError> {
        let pattern = scan_pattern(store);
        let prefix = format!("{store}:");
        let mut keys = std::collections::BTreeSet::new();
        let mut cursor = 0u64;
        loop {
            let (next, page): (u64, Vec<Vec<u8>>) = self
                .run("keys", Retry::Idempotent, |mut c| {
                    let pattern = pattern.clone();
                    async move {
                        ::redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(pattern)
                            .arg("COUNT")
                            .arg(SCAN_COUNT)
                            .query_async(&mut c)
                            .await
                    }
                })
                .await?;
            // Only UTF-8 keys can have been written through this interface; SCAN may
            // answer a key twice.
            keys.extend(
                page.into_iter()
                    .filter_map(|k| String::from_utf8(k).ok())
                    .filter_map(|k| k.strip_prefix(&prefix).map(String::from)),
            );
            if next == 0 {
                return Ok(keys.into_iter().collect());
            }
            cursor = next;
        }
    }

    async fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        let key = Self::key(store, key);
        self.run("increment", Retry::IfNotSent, |mut c| {
            let key = key.clone();
            async move {
                ::redis::cmd("INCRBY")
                    .arg(key)
                    .arg(delta)
                    .query_async(&mut c)
                    .await
            }
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<CasOutcome, KvError> {
        let key = Self::key(store, key);
        let answer: Vec<Value> = self
            .run("compare-and-swap", Retry::IfNotSent, |mut c| {
                let mut call = self.cas.key(&key);
                match &expected {
                    Some(v) => call.arg("1").arg(v.as_slice()),
                    None => call.arg("0").arg(""),
                };
                call.arg(value.as_slice());
                async move { call.invoke_async(&mut c).await }
            })
            .await?;
        match answer.as_slice() {
            [Value::Int(1)] => Ok(CasOutcome::Swapped),
            [Value::Int(0)] => Ok(CasOutcome::Conflict(None)),
            [Value::Int(0), Value::BulkString(current)] => {
                Ok(CasOutcome::Conflict(Some(current.clone())))
            }
            other => Err(KvError(format!(
                "redis compare-and-swap: unexpected answer {other:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
