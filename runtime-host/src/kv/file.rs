//! The file backend (`--kv-file`): an SQLite database in Spin's own format, so the file
//! `spin up` keeps in `.spin/sqlite_key_value.db` and this host's `--kv-file` are
//! interchangeable.
//!
//! The SQL is Spin's, from `crates/key-value-spin/src/store.rs` (spinframework/spin):
//! one table `spin_key_value(store, key, value)` keyed by `(store, key)`, the store name
//! in `store` (`default`), counters as the 8 little-endian bytes of an `i64`.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{
    named_params, params, Connection, OpenFlags, OptionalExtension, TransactionBehavior,
};

use super::{CasOutcome, KvBackend, KvData, KvError};

// Spin's statements, verbatim (whitespace included: SQLite keeps the table's text).
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS spin_key_value (
                           store TEXT NOT NULL,
                           key   TEXT NOT NULL,
                           value BLOB NOT NULL,

                           PRIMARY KEY (store, key)
                        )";
const GET: &str = "SELECT value FROM spin_key_value WHERE store=$1 AND key=$2";
const SET: &str = "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT(store, key) DO UPDATE SET value=$3";
const DELETE: &str = "DELETE FROM spin_key_value WHERE store=$1 AND key=$2";
const KEYS: &str = "SELECT key FROM spin_key_value WHERE store=$1";
const SWAP: &str = "UPDATE spin_key_value SET value=:new_value WHERE store=:name and key=:key and value=:old_value";

/// How long a statement waits for a lock another connection holds (a reader during a
/// checkpoint, or an outside `sqlite3` shell) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle read connections kept open for reuse.
const IDLE_READERS: usize = 4;

/// Every store in one SQLite database file, in Spin's format.
///
/// ```sql
/// CREATE TABLE spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL,
///                              value BLOB NOT NULL, PRIMARY KEY (store, key))
/// ```
///
/// The guest's store is the rows with `store = 'default'`. `increment` stores its counter
/// as the 8 little-endian bytes of an `i64`, as Spin's SQLite store does; any other
/// existing value (another length) makes `increment` fail and stay unchanged (Spin
/// panics there), and so does an overflow.
///
/// **Durable before the answer**: the database is in WAL mode with `synchronous=FULL`,
/// so every write's transaction is fsynced to the log before the call returns; a crash
/// loses no answered write and never leaves a torn one. Calls run on tokio's blocking
/// threads, never on the async workers: writes go through one connection in turn (they
/// wait for each other's fsync), reads through their own connections and do not wait
/// for writes. `increment` and `compare_and_swap` are each one transaction.
///
/// **One host per file**: `open` takes an exclusive advisory lock (`flock`) on the
/// sidecar `<file>.lock`, holding the owner's process id, and refuses a file another host
/// holds. Hosts that share a store share a [`RedisBackend`](crate::RedisBackend).
///
/// A missing file is an empty store, created with mode `0600` (it holds secrets), its
/// directory too. A file that is not an SQLite database (the JSON file of earlier
/// versions, say) is an error at open and is left as it is. The file stays in WAL mode:
/// Spin opens it as it is; keep the `-wal` file beside it while a host runs.
#[derive(Clone)]
pub struct FileBackend {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Declared last, so released last: after the connections closed and the log was
    /// checkpointed, the next host may open the file.
    _lock: File,
}

/// A failure inside one call: SQLite's, or the backend's own.
enum Fail {
    Sql(rusqlite::Error),
    Kv(KvError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl FileBackend {
    /// Open (or create) the database at `path` and take its lock.
    pub fn open(path: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .with_context(|| format!("creating directory {}", dir.display()))?;
        }
        let lock = take_lock(&path)?;
        // SQLite would create the file readable by all; make it first, private.
        match private_file().write(true).create_new(true).open(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("creating key-value file {}", path.display()))
            }
        }
        let writer = open_writer(&path).map_err(|e| not_a_store(&path, e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                _lock: lock,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A copy of everything stored (reads the file: blocking).
    pub fn snapshot(&self) -> Result<KvData, KvError> {
        self.inner.read(|conn| {
            let mut data = KvData::new();
            let mut stmt = conn.prepare("SELECT store, key, value FROM spin_key_value")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let value = blob(row, 2)?;
                data.entry(row.get(0)?)
                    .or_default()
                    .insert(row.get(1)?, value);
            }
            Ok(data)
        })
    }

    /// Run `f` on a blocking thread.
    async fn blocking<R, F>(&self, f: F) -> Result<R, KvError>
    where
        R: Send + 'static,
        F: FnOnce(&Inner) -> Result<R, KvError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| KvError(format!("key-value task failed: {e}")))?
    }
}

impl Inner {
    fn error(&self, fail: Fail) -> KvError {
        match fail {
            Fail::Sql(e) => KvError(format!("key-value file {}: {e}", self.path.display())),
            Fail::Kv(e) => e,
        }
    }

    /// Run `f` on a read connection (from the pool, or a new one).
    fn read<R>(&self, f: impl FnOnce(&Connection) -> Result<R, Fail>) -> Result<R, KvError> {
        let idle = guard(&self.readers).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => open_reader(&self.path).map_err(|e| self.error(e.into()))?,
        };
        let result = f(&conn);
        let mut idle = guard(&self.readers);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result.map_err(|e| self.error(e))
    }

    /// Run `f` on the write connection, alone.
    fn write<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R, Fail>) -> Result<R, KvError> {
        f(&mut guard(&self.writer)).map_err(|e| self.error(e))
    }
}

#[async_trait]
impl KvBackend for FileBackend {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let (store, key) = (store.to_string(), key.to_string());
        self.blocking(move |db| db.read(|conn| get(conn, &store, &key)))
            .await
    }

    async fn set(&self, store: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        let (store, key) = (store.to_string(), key.to_string());
        self.blocking(move |db| {
            db.write(|conn| {
                conn.prepare_cached(SET)?
                    .execute(params![store, key, value])?;
                Ok(())
            })
        })
        .await
    }

    async fn delete(&self, store: &str, key: &str) -> Result<(), KvError> {
        let (store, key) = (store.to_string(), key.to_string());
        self.blocking(move |db| {
            db.write(|conn| {
                conn.prepare_cached(DELETE)?.execute(params![store, key])?;
                Ok(())
            })
        })
        .await
    }

    async fn keys(&self, store: &str) -> Result<Vec<String>, KvError> {
        let store = store.to_string();
        self.blocking(move |db| {
            db.read(|conn| {
                let mut stmt = conn.prepare_cached(KEYS)?;
                let keys = stmt
                    .query_map(params![store], |row| row.get::<_, String>(0))?
                    .collect::<Result<_, _>>()?;
                Ok(keys)
            })
        })
        .await
    }

    async fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        let (store, key) = (store.to_string(), key.to_string());
        self.blocking(move |db| {
            db.write(|conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let current = match get(&tx, &store, &key)? {
                    None => 0,
                    Some(value) => decode_counter(&value).map_err(Fail::Kv)?,
                };
                let next = current.checked_add(delta).ok_or_else(|| {
                    Fail::Kv(KvError("increment: the counter would overflow".into()))
                })?;
                tx.prepare_cached(SET)?
                    .execute(params![store, key, next.to_le_bytes()])?;
                tx.commit()?;
                Ok(next)
            })
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
        let (store, key) = (store.to_string(), key.to_string());
        self.blocking(move |db| {
            db.write(|conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let current = get(&tx, &store, &key)?;
                if current != expected {
                    return Ok(CasOutcome::Conflict(current));
                }
                match expected {
                    // Spin's swap: the row changes only if it still holds the old value.
                    Some(old) => {
                        let changed = tx.prepare_cached(SWAP)?.execute(named_params! {
                            ":name": store,
                            ":key": key,
                            ":old_value": old,
                            ":new_value": value,
                        })?;
                        if changed != 1 {
                            // Equal bytes, but stored as TEXT by another writer.
                            return Err(Fail::Kv(KvError(
                                "compare-and-swap: the stored value is not a BLOB".into(),
                            )));
                        }
                    }
                    None => {
                        tx.prepare_cached(SET)?
                            .execute(params![store, key, value])?;
                    }
                }
                tx.commit()?;
                Ok(CasOutcome::Swapped)
            })
        })
        .await
    }
}

fn guard<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside a call drops its transaction, which rolls back: nothing half-done.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The value of `key` in `store` (Spin's `get`).
fn get(conn: &Connection, store: &str, key: &str) -> Result<Option<Vec<u8>>, Fail> {
    Ok(conn
        .prepare_cached(GET)?
        .query_row(params![store, key], |row| blob(row, 0))
        .optional()?)
}

/// Column `i` as bytes: a BLOB as Spin writes it, or TEXT that a person put there.
fn blob(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Vec<u8>> {
    match row.get_ref(i)? {
        ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Ok(bytes.to_vec()),
        other => Err(rusqlite::Error::InvalidColumnType(
            i,
            "value".into(),
            other.data_type(),
        )),
    }
}

/// A counter as Spin's `increment` stores it: the 8 little-endian bytes of an `i64`.
pub(crate) fn decode_counter(value: &[u8]) -> Result<i64, KvError> {
    <[u8; 8]>::try_from(value)
        .map(i64::from_le_bytes)
        .map_err(|_| {
            KvError(format!(
                "increment: the stored value is not a counter (8 little-endian bytes, as Spin \
                 stores them; this one has {})",
                value.len()
            ))
        })
}

fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!(
                "cannot switch to WAL mode (journal mode is {mode})"
            )),
        ));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute(CREATE_TABLE, [])?;
    Ok(conn)
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// The error for a file SQLite cannot use, saying what the file should be.
fn not_a_store(path: &Path, e: rusqlite::Error) -> anyhow::Error {
    let json = fs::read(path).is_ok_and(|b| b.trim_ascii_start().starts_with(b"{"));
    let hint = if json {
        " — it looks like the JSON file of an earlier autodeploy-host, which is not \
         converted: move it aside to start with an empty store"
    } else {
        " — --kv-file takes an SQLite database in Spin's format (as `spin up` keeps in \
         .spin/sqlite_key_value.db), or a new file"
    };
    anyhow::anyhow!("key-value file {}: {e}{hint}", path.display())
}

/// `<file>.lock`, the sidecar whose `flock` marks the file's owner.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Take the exclusive lock on `<path>.lock`, or say who holds it.
fn take_lock(path: &Path) -> anyhow::Result<File> {
    let lock_path = lock_path(path);
    let mut file = private_file()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .with_context(|| format!("opening lock file {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut owner = String::new();
            let _ = file.read_to_string(&mut owner);
            let owner = match owner.trim() {
                "" => String::new(),
                pid => format!(" (process {pid})"),
            };
            anyhow::bail!(
                "key-value file {} is in use by another host{owner}, which holds {}: one host \
                 per file — stop the other host, or give hosts that share a store --kv-redis",
                path.display(),
                lock_path.display()
            );
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", lock_path.display()))
        }
    }
    // For the message above, in the next host that tries.
    file.set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .with_context(|| format!("writing lock file {}", lock_path.display()))?;
    Ok(file)
}

#[cfg(test)]
mod tests;
