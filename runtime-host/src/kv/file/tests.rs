//! The file backend's tests: Spin's format both ways, durability, one host per file.

use super::*;
use crate::kv::tests::{exercise_semantics, le_bytes, temp_dir};
use crate::kv::DEFAULT_STORE;

/// A database as `spin up` makes it: Spin's statement, Spin's default (rollback) journal.
fn spin_made(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.execute(CREATE_TABLE, []).unwrap();
    conn
}

fn spin_set(conn: &Connection, key: &str, value: &[u8]) {
    conn.execute(SET, params![DEFAULT_STORE, key, value])
        .unwrap();
}

/// Every row of the file, read with SQLite directly: (store, key, value, typeof(value)).
fn rows(path: &Path) -> Vec<(String, String, Vec<u8>, String)> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn
        .prepare("SELECT store, key, value, typeof(value) FROM spin_key_value ORDER BY store, key")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows
}

#[tokio::test]
async fn file_semantics() {
    let dir = temp_dir("sem");
    exercise_semantics(&FileBackend::open(dir.join("kv.db")).unwrap(), le_bytes).await;
    fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn file_store_survives_reopen() {
    let dir = temp_dir("reopen");
    let path = dir.join("state").join("kv.db");
    {
        let kv = FileBackend::open(&path).unwrap();
        kv.set(DEFAULT_STORE, "app:shop", br#"{"name":"shop"}"#.to_vec())
            .await
            .unwrap();
        kv.set(DEFAULT_STORE, "bin", vec![0, 1, 2, 0xff])
            .await
            .unwrap();
        kv.set(DEFAULT_STORE, "empty", vec![]).await.unwrap();
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
    assert_eq!(kv.get(DEFAULT_STORE, "empty").await.unwrap(), Some(vec![]));
    assert_eq!(kv.get("other", "k").await.unwrap(), Some(b"v".to_vec()));
    assert_eq!(kv.get(DEFAULT_STORE, "gone").await.unwrap(), None);
    assert_eq!(kv.increment(DEFAULT_STORE, "n", 1).await.unwrap(), 42);
    let snapshot = kv.snapshot().unwrap();
    assert_eq!(snapshot["other"]["k"], b"v");
    assert_eq!(snapshot[DEFAULT_STORE].len(), 4, "{snapshot:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [path.clone(), lock_path(&path)] {
            let mode = fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }
    drop(kv);
    fs::remove_dir_all(dir).unwrap();
}

/// What the backend writes is what Spin's SQLite store writes: Spin's table and nothing
/// else, store `default`, values as BLOBs, a counter as 8 little-endian bytes.
#[tokio::test]
async fn file_has_spins_schema_and_rows() {
    let dir = temp_dir("schema");
    let path = dir.join("kv.db");
    let kv = FileBackend::open(&path).unwrap();
    kv.set(DEFAULT_STORE, "app/shop", br#"{"name":"shop"}"#.to_vec())
        .await
        .unwrap();
    kv.increment(DEFAULT_STORE, "seq/shop", 300).await.unwrap();
    kv.increment(DEFAULT_STORE, "seq/shop", -2).await.unwrap();
    kv.compare_and_swap(DEFAULT_STORE, "claim", None, b"x".to_vec())
        .await
        .unwrap();
    // Read while the host runs (WAL: the committed rows are in the log), then after.
    let expected = vec![
        (
            "default".to_string(),
            "app/shop".to_string(),
            br#"{"name":"shop"}"#.to_vec(),
            "blob".to_string(),
        ),
        (
            "default".into(),
            "claim".into(),
            b"x".to_vec(),
            "blob".into(),
        ),
        (
            "default".into(),
            "seq/shop".into(),
            298i64.to_le_bytes().to_vec(),
            "blob".into(),
        ),
    ];
    assert_eq!(rows(&path), expected);
    drop(kv);
    assert_eq!(rows(&path), expected);

    let conn = Connection::open(&path).unwrap();
    let schema: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let spin_table = CREATE_TABLE.replace("IF NOT EXISTS ", "");
    assert_eq!(
        schema,
        vec![
            (
                "table".to_string(),
                "spin_key_value".to_string(),
                Some(spin_table)
            ),
            (
                "index".into(),
                "sqlite_autoindex_spin_key_value_1".into(),
                None
            ),
        ]
    );
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal", "the file stays in WAL mode");
    drop(conn);
    fs::remove_dir_all(dir).unwrap();
}

/// A database `spin up` made (rollback journal, a counter as Spin stores it) is read as
/// it is, and keeps counting.
#[tokio::test]
async fn file_reads_a_database_spin_made() {
    let dir = temp_dir("spin-made");
    let path = dir.join("sqlite_key_value.db");
    let conn = spin_made(&path);
    spin_set(&conn, "app/shop", br#"{"name":"shop"}"#);
    spin_set(&conn, "seq/shop", &7i64.to_le_bytes());
    spin_set(&conn, "short", &[1, 2, 3]);
    conn.execute(SET, params!["another-store", "k", b"v".to_vec()])
        .unwrap();
    drop(conn);

    let kv = FileBackend::open(&path).unwrap();
    assert_eq!(
        kv.get(DEFAULT_STORE, "app/shop").await.unwrap(),
        Some(br#"{"name":"shop"}"#.to_vec())
    );
    let mut keys = kv.keys(DEFAULT_STORE).await.unwrap();
    keys.sort();
    assert_eq!(keys, ["app/shop", "seq/shop", "short"]);
    assert_eq!(kv.increment(DEFAULT_STORE, "seq/shop", 1).await.unwrap(), 8);
    // A value of another length is no counter: an error, and the value stays.
    let err = kv.increment(DEFAULT_STORE, "short", 1).await.unwrap_err();
    assert!(err.0.contains("not a counter"), "{err}");
    assert_eq!(
        kv.get(DEFAULT_STORE, "short").await.unwrap(),
        Some(vec![1, 2, 3])
    );
    assert_eq!(
        kv.get("another-store", "k").await.unwrap(),
        Some(b"v".to_vec())
    );
    drop(kv);
    fs::remove_dir_all(dir).unwrap();
}

/// A second host on the same file refuses to start, saying why; once the first is gone
/// the file opens again.
#[tokio::test]
async fn file_second_open_refuses_while_the_first_holds_it() {
    let dir = temp_dir("lock");
    let path = dir.join("kv.db");
    let first = FileBackend::open(&path).unwrap();
    first.set(DEFAULT_STORE, "k", b"v".to_vec()).await.unwrap();

    let err = FileBackend::open(&path)
        .err()
        .expect("a second open fails")
        .to_string();
    assert!(err.contains("is in use by another host"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(
        err.contains(&format!("process {}", std::process::id())),
        "{err}"
    );
    assert!(err.contains("--kv-redis"), "{err}");
    // The refused open changed nothing.
    assert_eq!(
        first.get(DEFAULT_STORE, "k").await.unwrap(),
        Some(b"v".to_vec())
    );

    // Clones share the one lock; dropping the last releases it.
    let clone = first.clone();
    drop(first);
    assert!(FileBackend::open(&path).is_err());
    drop(clone);
    let again = FileBackend::open(&path).unwrap();
    assert_eq!(
        again.get(DEFAULT_STORE, "k").await.unwrap(),
        Some(b"v".to_vec())
    );
    drop(again);
    fs::remove_dir_all(dir).unwrap();
}

/// Many tasks incrementing at once on the worker threads: no increment is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_concurrent_increments_give_the_total() {
    let dir = temp_dir("increments");
    let path = dir.join("kv.db");
    let kv = Arc::new(FileBackend::open(&path).unwrap());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let kv = kv.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    kv.increment(DEFAULT_STORE, "n", 1).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(kv.increment(DEFAULT_STORE, "n", 0).await.unwrap(), 400);
    assert_eq!(
        kv.get(DEFAULT_STORE, "n").await.unwrap(),
        Some(400i64.to_le_bytes().to_vec())
    );
    drop(kv);
    fs::remove_dir_all(dir).unwrap();
}

/// Durable before the answer: WAL with a full fsync per commit, and an answered write is
/// in the file for any other reader (another connection, as another process would be).
#[tokio::test]
async fn file_writes_are_durable_and_visible_when_answered() {
    let dir = temp_dir("durable");
    let path = dir.join("kv.db");
    let kv = FileBackend::open(&path).unwrap();
    {
        let writer = guard(&kv.inner.writer);
        let mode: String = writer
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = writer
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            (mode.as_str(), sync),
            ("wal", 2),
            "WAL with synchronous=FULL"
        );
    }
    let outside = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let read = |key: &str| -> Option<Vec<u8>> {
        outside
            .query_row(GET, params![DEFAULT_STORE, key], |r| r.get(0))
            .optional()
            .unwrap()
    };
    kv.set(DEFAULT_STORE, "k", b"v".to_vec()).await.unwrap();
    assert_eq!(read("k"), Some(b"v".to_vec()));
    assert_eq!(
        kv.compare_and_swap(DEFAULT_STORE, "k", Some(b"v".to_vec()), b"w".to_vec())
            .await
            .unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(read("k"), Some(b"w".to_vec()));
    kv.delete(DEFAULT_STORE, "k").await.unwrap();
    assert_eq!(read("k"), None);
    drop(outside);
    drop(kv);
    fs::remove_dir_all(dir).unwrap();
}

/// A file that is not a database (the JSON of earlier versions, or anything else) is an
/// error that says so, and is left as it was.
#[test]
fn file_that_is_not_a_database_is_refused_and_kept() {
    let dir = temp_dir("bad");
    let path = dir.join("kv.json");
    let json = br#"{"format":"autodeploy-host-kv/1","stores":{}}"#;
    for (content, hint) in [
        (&json[..], "JSON file of an earlier autodeploy-host"),
        (
            b"not a database, not json",
            "SQLite database in Spin's format",
        ),
    ] {
        fs::write(&path, content).unwrap();
        let err = FileBackend::open(&path).err().expect("refused").to_string();
        assert!(err.contains(hint), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert_eq!(fs::read(&path).unwrap(), content);
    }
    // The refused file is not locked: a good file opens in the same process.
    fs::remove_file(&path).unwrap();
    FileBackend::open(&path).unwrap();
    fs::remove_dir_all(dir).unwrap();
}
