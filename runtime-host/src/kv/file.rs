//! The JSON-file backend (`--kv-file`): the map in memory, persisted to one file on every
//! write, durably and atomically.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;

use super::{
    keys_of, lock, plan_cas, plan_delete, plan_increment, read_value, CasOutcome, Change,
    KvBackend, KvData, KvError,
};

/// Every store in memory, persisted to one JSON file on every write.
///
/// The file looks like this (keys sorted; the file is rewritten whole on every write):
///
/// ```json
/// {
///   "format": "autodeploy-host-kv/1",
///   "stores": {
///     "default": {
///       "app:shop": "{\"name\":\"shop\"}",
///       "counter": "3",
///       "raw": { "base64": "AAEC/w==" }
///     }
///   }
/// }
/// ```
///
/// A value that is valid UTF-8 is stored as a JSON string; any other value as an object
/// `{"base64": "<standard base64 with padding>"}`. A missing file is an empty store (it is
/// created by the first write; a missing directory is created at open); a file that does not parse is an error at load, so a bad
/// file is never overwritten. The file is created with mode `0600` (it holds secrets).
///
/// Each write computes the new map, writes it to `.<name>.tmp-<pid>-<n>` in the same
/// directory, fsyncs it, renames it over the data file and fsyncs the directory; only
/// then is the change visible to readers and the call returns. If any step fails, the
/// change is not applied and the guest gets an error.
///
/// One process should own a file: two hosts writing the same file would overwrite each
/// other's changes. Hosts that share a store share a [`RedisBackend`](crate::RedisBackend).
#[derive(Clone)]
pub struct FileBackend {
    inner: Arc<FileInner>,
}

struct FileInner {
    path: PathBuf,
    data: Mutex<KvData>,
    seq: AtomicU64,
}

const FILE_FORMAT: &str = "autodeploy-host-kv/1";

impl FileBackend {
    /// Load `path` (a missing file is an empty store).
    pub fn open(path: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("creating directory {}: {e}", dir.display()))?;
        }
        let data = match fs::read(&path) {
            Ok(bytes) => decode_file(&bytes)
                .map_err(|e| anyhow::anyhow!("key-value file {}: {e}", path.display()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => KvData::new(),
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("reading key-value file {}", path.display())))
            }
        };
        Ok(Self {
            inner: Arc::new(FileInner {
                path,
                data: Mutex::new(data),
                seq: AtomicU64::new(0),
            }),
        })
    }

    /// The data file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A copy of everything stored.
    pub fn snapshot(&self) -> KvData {
        lock(&self.inner.data).clone()
    }

    /// Run a planned write on a blocking thread: plan under the lock, persist the new map,
    /// then publish it. Nothing changes unless the file write succeeded.
    async fn write<R, F>(&self, plan: F) -> Result<R, KvError>
    where
        R: Send + 'static,
        F: FnOnce(&KvData) -> Result<(Change, R), KvError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.write(plan))
            .await
            .map_err(|e| KvError(format!("key-value write task failed: {e}")))?
    }
}

impl FileInner {
    fn write<R>(
        &self,
        plan: impl FnOnce(&KvData) -> Result<(Change, R), KvError>,
    ) -> Result<R, KvError> {
        let mut data = lock(&self.data);
        let (change, result) = plan(&data)?;
        if matches!(change, Change::None) {
            return Ok(result);
        }
        let mut next = data.clone();
        change.apply(&mut next);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        persist(&self.path, &next, seq).map_err(|e| {
            KvError(format!(
                "writing key-value file {}: {e}",
                self.path.display()
            ))
        })?;
        *data = next;
        Ok(result)
    }
}

#[async_trait]
impl KvBackend for FileBackend {
    async fn get(&self, store: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(read_value(&lock(&self.inner.data), store, key))
    }

    async fn set(&self, store: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        let (store, key) = (store.to_string(), key.to_string());
        self.write(move |_| Ok((Change::Set(store, key, value), ())))
            .await
    }

    async fn delete(&self, store: &str, key: &str) -> Result<(), KvError> {
        let (store, key) = (store.to_string(), key.to_string());
        self.write(move |data| Ok((plan_delete(data, &store, &key), ())))
            .await
    }

    async fn keys(&self, store: &str) -> Result<Vec<String>, KvError> {
        Ok(keys_of(&lock(&self.inner.data), store))
    }

    async fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        let (store, key) = (store.to_string(), key.to_string());
        self.write(move |data| plan_increment(data, &store, &key, delta))
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
        self.write(move |data| Ok(plan_cas(data, &store, &key, expected, value)))
            .await
    }
}

/// The JSON text of the whole map (see [`FileBackend`] for the format).
fn encode_file(data: &KvData) -> Vec<u8> {
    use serde_json::{json, Map, Value};
    let mut stores = Map::new();
    for (store, entries) in data {
        let mut m = Map::new();
        for (key, value) in entries {
            let v = match std::str::from_utf8(value) {
                Ok(s) => Value::String(s.to_string()),
                Err(_) => {
                    json!({ "base64": base64::engine::general_purpose::STANDARD.encode(value) })
                }
            };
            m.insert(key.clone(), v);
        }
        stores.insert(store.clone(), Value::Object(m));
    }
    let doc = json!({ "format": FILE_FORMAT, "stores": stores });
    let mut out = serde_json::to_vec_pretty(&doc).expect("a JSON value always serialises");
    out.push(b'\n');
    out
}

/// Parse the JSON text of the whole map (see [`FileBackend`] for the format).
fn decode_file(bytes: &[u8]) -> Result<KvData, String> {
    use serde_json::Value;
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let obj = doc.as_object().ok_or("expected a JSON object")?;
    match obj.get("format") {
        Some(Value::String(f)) if f == FILE_FORMAT => {}
        Some(other) => return Err(format!("unknown format {other}")),
        None => return Err("missing \"format\"".into()),
    }
    let mut data = KvData::new();
    let Some(stores) = obj.get("stores") else {
        return Ok(data);
    };
    let stores = stores.as_object().ok_or("\"stores\" must be an object")?;
    for (store, entries) in stores {
        let entries = entries
            .as_object()
            .ok_or_else(|| format!("store {store:?} must be an object"))?;
        let mut m = BTreeMap::new();
        for (key, value) in entries {
            let bytes = match value {
                Value::String(s) => s.clone().into_bytes(),
                Value::Object(o) if o.len() == 1 && o.contains_key("base64") => {
                    let b64 = o["base64"]
                        .as_str()
                        .ok_or_else(|| format!("{store}/{key}: base64 must be a string"))?;
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|e| format!("{store}/{key}: bad base64: {e}"))?
                }
                _ => {
                    return Err(format!(
                        "{store}/{key}: a value must be a string or {{\"base64\": …}}"
                    ))
                }
            };
            m.insert(key.clone(), bytes);
        }
        if !m.is_empty() {
            data.insert(store.clone(), m);
        }
    }
    Ok(data)
}

/// Durably replace `path` with the encoding of `data`: temp file in the same directory,
/// fsync, rename, fsync the directory.
fn persist(path: &Path, data: &KvData, seq: u64) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{name}.tmp-{}-{seq}", std::process::id()));
    let bytes = encode_file(data);
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        #[cfg(unix)]
        fs::File::open(&dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::tests::{exercise_semantics, temp_dir};
    use crate::kv::DEFAULT_STORE;

    #[tokio::test]
    async fn file_semantics() {
        let dir = temp_dir("sem");
        exercise_semantics(&FileBackend::open(dir.join("kv.json")).unwrap()).await;
        fs::remove_dir_all(dir).unwrap();
    }
    #[tokio::test]
    async fn file_store_survives_reload() {
        let dir = temp_dir("reload");
        let path = dir.join("kv.json");
        {
            let kv = FileBackend::open(&path).unwrap();
            kv.set(DEFAULT_STORE, "app:shop", br#"{"name":"shop"}"#.to_vec())
                .await
                .unwrap();
            kv.set(DEFAULT_STORE, "bin", vec![0, 1, 2, 0xff])
                .await
                .unwrap();
            kv.set("other", "k", b"v".to_vec()).await.unwrap();
            kv.increment(DEFAULT_STORE, "n", 41).await.unwrap();
            kv.set(DEFAULT_STORE, "gone", b"x".to_vec()).await.unwrap();
            kv.delete(DEFAULT_STORE, "gone").await.unwrap();
        }
        let kv = FileBackend::open(&path).unwrap();
        assert_eq!(
            kv.get(DEFAULT_STORE, "app:shop").await.unwrap(),
            Some(br#"{"name":"shop"}"#.to_vec())
        );
        assert_eq!(
            kv.get(DEFAULT_STORE, "bin").await.unwrap(),
            Some(vec![0, 1, 2, 0xff])
        );
        assert_eq!(kv.get("other", "k").await.unwrap(), Some(b"v".to_vec()));
        assert_eq!(kv.get(DEFAULT_STORE, "gone").await.unwrap(), None);
        assert_eq!(kv.increment(DEFAULT_STORE, "n", 1).await.unwrap(), 42);

        // The file is readable: UTF-8 values as strings, others as base64.
        let text = fs::read_to_string(&path).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["stores"]["default"]["app:shop"], r#"{"name":"shop"}"#);
        assert_eq!(doc["stores"]["default"]["n"], "42");
        assert_eq!(doc["stores"]["default"]["bin"]["base64"], "AAEC/w==");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn file_write_goes_through_temp_and_rename() {
        let dir = temp_dir("rename");
        let path = dir.join("kv.json");
        let kv = FileBackend::open(&path).unwrap();
        kv.set(DEFAULT_STORE, "k", b"old".to_vec()).await.unwrap();

        // A hard link to the current file keeps the old contents after a write: the data
        // file was replaced (rename), not rewritten in place.
        let link = dir.join("before.json");
        fs::hard_link(&path, &link).unwrap();
        kv.set(DEFAULT_STORE, "k", b"new".to_vec()).await.unwrap();
        let old = decode_file(&fs::read(&link).unwrap()).unwrap();
        assert_eq!(old[DEFAULT_STORE]["k"], b"old");
        let new = decode_file(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(new[DEFAULT_STORE]["k"], b"new");

        // No temporary file is left behind.
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // A torn temporary file from a crash does not affect loading.
        fs::write(dir.join(".kv.json.tmp-1-0"), b"{\"format\": \"autod").unwrap();
        let again = FileBackend::open(&path).unwrap();
        assert_eq!(
            again.get(DEFAULT_STORE, "k").await.unwrap(),
            Some(b"new".to_vec())
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn failed_write_changes_nothing() {
        let dir = temp_dir("fail");
        let path = dir.join("sub").join("kv.json");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let kv = FileBackend::open(&path).unwrap();
        kv.set(DEFAULT_STORE, "k", b"v".to_vec()).await.unwrap();
        // Make the directory disappear: the next write cannot create its temp file.
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
        assert!(kv.set(DEFAULT_STORE, "k", b"w".to_vec()).await.is_err());
        assert!(kv.increment(DEFAULT_STORE, "n", 1).await.is_err());
        assert_eq!(
            kv.get(DEFAULT_STORE, "k").await.unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(kv.get(DEFAULT_STORE, "n").await.unwrap(), None);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_file_is_an_error_not_overwritten() {
        let dir = temp_dir("bad");
        let path = dir.join("kv.json");
        fs::write(&path, b"not json").unwrap();
        assert!(FileBackend::open(&path).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"not json");
        fs::write(
            &path,
            br#"{"format":"autodeploy-host-kv/1","stores":{"default":{"k":1}}}"#,
        )
        .unwrap();
        assert!(FileBackend::open(&path).is_err());
        fs::remove_dir_all(dir).unwrap();
    }
}
