//! The Redis backend's tests: most need the test run's Redis (`AUTODEPLOY_TEST_REDIS`).

use super::*;
use crate::kv::DEFAULT_STORE;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The Redis of the test run (`make test` starts one), on database `db`: the tests of
/// this module use databases 1 to 4, each its own, so they run in parallel.
fn test_url(db: u8) -> String {
    let url = std::env::var("AUTODEPLOY_TEST_REDIS").unwrap_or_else(|_| {
        panic!(
            "AUTODEPLOY_TEST_REDIS is not set: the Redis tests need a real Redis. Run them \
             through `make test` (or `scripts/with-redis.sh cargo test …`), which starts \
             one; skip them with `cargo test -- --skip redis`"
        )
    });
    with_db(&url, db)
}

/// `url` with its database replaced by `db`.
fn with_db(url: &str, db: u8) -> String {
    let (scheme, rest) = url.split_once("://").expect("a redis:// URL");
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    format!("{scheme}://{authority}/{db}")
}

/// A backend on an emptied database `db`.
async fn fresh(db: u8) -> RedisBackend {
    let url = test_url(db);
    let client = Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    ::redis::cmd("FLUSHDB")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    RedisBackend::open(&url).unwrap()
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn redis_semantics_match_the_other_backends() {
    let kv = fresh(1).await;
    crate::kv::tests::exercise_semantics(&kv, crate::kv::tests::decimal).await;
    // Empty and binary values round-trip.
    kv.set(DEFAULT_STORE, "empty", Vec::new()).await.unwrap();
    assert_eq!(kv.get(DEFAULT_STORE, "empty").await.unwrap(), Some(vec![]));
    kv.set(DEFAULT_STORE, "bin", vec![0, 0xff, 13, 10])
        .await
        .unwrap();
    assert_eq!(
        kv.compare_and_swap(DEFAULT_STORE, "bin", Some(vec![0, 0xff, 13, 10]), vec![1])
            .await
            .unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(
        kv.compare_and_swap(DEFAULT_STORE, "empty", None, b"x".to_vec())
            .await
            .unwrap(),
        CasOutcome::Conflict(Some(vec![]))
    );
    assert_eq!(
        kv.compare_and_swap(DEFAULT_STORE, "empty", Some(vec![]), b"x".to_vec())
            .await
            .unwrap(),
        CasOutcome::Swapped
    );
    // A counter reads back as the decimal ASCII Redis stores.
    assert_eq!(
        kv.increment(DEFAULT_STORE, "neg", i64::MIN).await.unwrap(),
        i64::MIN
    );
    assert_eq!(
        kv.get(DEFAULT_STORE, "neg").await.unwrap(),
        Some(i64::MIN.to_string().into_bytes())
    );
    assert!(kv.increment(DEFAULT_STORE, "neg", -1).await.is_err());
    kv.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_increment_and_cas_are_atomic_across_connections() {
    // Two backends: two connections, as two hosts have.
    let a: Arc<dyn KvBackend> = Arc::new(fresh(2).await);
    let b: Arc<dyn KvBackend> = Arc::new(RedisBackend::open(&test_url(2)).unwrap());
    let mut tasks = Vec::new();
    for n in 0..200 {
        let kv = if n % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            kv.increment(DEFAULT_STORE, "n", 1).await.unwrap()
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort();
    assert_eq!(seen, (1..=200).collect::<Vec<_>>());
    assert_eq!(
        a.get(DEFAULT_STORE, "n").await.unwrap(),
        Some(b"200".to_vec())
    );

    // Exactly one claimant wins a swap on an absent key, and one on a present one.
    for expected in [None, Some(b"start".to_vec())] {
        if let Some(v) = &expected {
            a.set(DEFAULT_STORE, "claim", v.clone()).await.unwrap();
        } else {
            a.delete(DEFAULT_STORE, "claim").await.unwrap();
        }
        let mut tasks = Vec::new();
        for i in 0..40u8 {
            let kv = if i % 2 == 0 { a.clone() } else { b.clone() };
            let expected = expected.clone();
            tasks.push(tokio::spawn(async move {
                kv.compare_and_swap(DEFAULT_STORE, "claim", expected, vec![i])
                    .await
                    .unwrap()
            }));
        }
        let mut winners = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                CasOutcome::Swapped => winners.push(i as u8),
                CasOutcome::Conflict(current) => assert!(current.is_some()),
            }
        }
        assert_eq!(winners.len(), 1, "{expected:?}: {winners:?}");
        assert_eq!(
            a.get(DEFAULT_STORE, "claim").await.unwrap(),
            Some(winners.clone())
        );
    }
}

#[tokio::test]
async fn redis_keys_are_prefixed_by_store_and_listed_by_scan() {
    let kv = fresh(3).await;
    for n in 0..1200 {
        kv.set(DEFAULT_STORE, &format!("done/shop/{n}"), b"{}".to_vec())
            .await
            .unwrap();
    }
    kv.set(DEFAULT_STORE, "app/shop", b"{}".to_vec())
        .await
        .unwrap();
    kv.set("other", "app/blog", b"{}".to_vec()).await.unwrap();
    kv.set("def*", "x", b"{}".to_vec()).await.unwrap();

    // In Redis: `<store>:<key>`.
    let client = Client::open(test_url(3).as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let raw: Option<Vec<u8>> = ::redis::cmd("GET")
        .arg("default:app/shop")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(raw, Some(b"{}".to_vec()));
    ::redis::cmd("SET")
        .arg("stray")
        .arg("1")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();

    // Several SCAN pages; only this store's keys, without the prefix.
    let keys = kv.keys(DEFAULT_STORE).await.unwrap();
    assert_eq!(keys.len(), 1201);
    assert!(keys.contains(&"app/shop".to_string()));
    assert!(keys.iter().all(|k| !k.starts_with("default:")));
    assert_eq!(kv.keys("other").await.unwrap(), ["app/blog"]);
    // Glob characters in a store name are literal.
    assert_eq!(kv.keys("def*").await.unwrap(), ["x"]);
    assert!(kv.keys("nothing").await.unwrap().is_empty());
    assert_eq!(kv.get("other", "app/shop").await.unwrap(), None);
}

#[tokio::test]
async fn redis_down_is_a_store_error_within_the_timeout() {
    let kv = RedisBackend::open(&format!("redis://127.0.0.1:{}/0", dead_port())).unwrap();
    assert_eq!(kv.timeout(), DEFAULT_TIMEOUT);
    let start = Instant::now();
    let err = kv.get(DEFAULT_STORE, "k").await.unwrap_err();
    assert!(err.0.contains("Redis is unavailable"), "{err}");
    assert!(kv.increment(DEFAULT_STORE, "n", 1).await.is_err());
    assert!(kv
        .compare_and_swap(DEFAULT_STORE, "c", None, vec![1])
        .await
        .is_err());
    assert!(kv.keys(DEFAULT_STORE).await.is_err());
    assert!(kv.ping().await.is_err());
    assert!(start.elapsed() < DEFAULT_TIMEOUT, "{:?}", start.elapsed());
}

#[tokio::test]
async fn redis_silent_is_a_store_error_within_the_timeout() {
    // Accepts connections (the kernel does, from the backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "redis://127.0.0.1:{}/0",
        silent.local_addr().unwrap().port()
    );
    let kv = RedisBackend::open(&url)
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    for _ in 0..2 {
        let start = Instant::now();
        let err = kv.set(DEFAULT_STORE, "k", b"v".to_vec()).await.unwrap_err();
        let took = start.elapsed();
        assert!(err.0.contains("within 300 ms"), "{err}");
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }
    drop(silent);
}

/// A Redis impostor on a loopback port that answers `+OK` to every command while
/// `answering` is set, else nothing; it counts the connections it accepts.
fn impostor() -> (u16, Arc<AtomicBool>, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answering = Arc::new(AtomicBool::new(true));
    let connections = Arc::new(AtomicUsize::new(0));
    let (a, c) = (answering.clone(), connections.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            c.fetch_add(1, Ordering::SeqCst);
            let answering = a.clone();
            std::thread::spawn(move || serve_ok(stream, &answering));
        }
    });
    (port, answering, connections)
}

fn serve_ok(stream: std::net::TcpStream, answering: &AtomicBool) -> Option<()> {
    use std::io::{BufRead, Read, Write};
    let mut writer = stream.try_clone().ok()?;
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    loop {
        // A command: `*<n>` then n times `$<len>` and the bytes.
        line.clear();
        reader.read_line(&mut line).ok().filter(|&n| n > 0)?;
        let n: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
        for _ in 0..n {
            line.clear();
            reader.read_line(&mut line).ok()?;
            let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
            reader.read_exact(&mut vec![0; len + 2]).ok()?;
        }
        if answering.load(Ordering::SeqCst) {
            writer.write_all(b"+OK\r\n").ok()?;
        }
    }
}

#[tokio::test]
async fn redis_a_connection_that_stops_answering_is_replaced() {
    let (port, answering, connections) = impostor();
    let kv = RedisBackend::open(&format!("redis://127.0.0.1:{port}/0"))
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    kv.set(DEFAULT_STORE, "k", b"1".to_vec()).await.unwrap();
    kv.set(DEFAULT_STORE, "k", b"2".to_vec()).await.unwrap();
    assert_eq!(connections.load(Ordering::SeqCst), 1);

    answering.store(false, Ordering::SeqCst);
    let start = Instant::now();
    let err = kv.set(DEFAULT_STORE, "k", b"3".to_vec()).await.unwrap_err();
    assert!(err.0.contains("no answer"), "{err}");
    assert!(start.elapsed() < Duration::from_millis(1500));

    // The next operation does not wait on the silent connection: it makes another.
    answering.store(true, Ordering::SeqCst);
    kv.set(DEFAULT_STORE, "k", b"4".to_vec()).await.unwrap();
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[test]
fn urls_are_shown_without_passwords() {
    assert_eq!(
        display_url("redis://127.0.0.1:6379/0"),
        "redis://127.0.0.1:6379/0"
    );
    assert_eq!(
        display_url("redis://:hunter2@cache.internal:6380/3"),
        "redis://:***@cache.internal:6380/3"
    );
    assert_eq!(
        display_url("redis://app:p@ss:w@rd@cache/1"),
        "redis://app:***@cache/1"
    );
    assert_eq!(
        display_url("redis+unix:///run/redis.sock?db=2&pass=hunter2"),
        "redis+unix:///run/redis.sock?db=2&pass=***"
    );
    let kv = RedisBackend::open("redis://:hunter2@127.0.0.1:1/0").unwrap();
    assert!(!format!("{kv:?}").contains("hunter2"));
    assert!(RedisBackend::open("http://example.com").is_err());
}

#[test]
fn scan_patterns_escape_globs() {
    assert_eq!(scan_pattern("default"), "default:*");
    assert_eq!(scan_pattern("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\:*");
}
