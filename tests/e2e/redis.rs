//! Scale-out: two hosts on one real Redis (runtime-host's `--kv-redis`), as two Spin
//! instances behind one load balancer. Apps are shared, a delivery deploys exactly once
//! whichever host gets it, and while Redis is down the hooks answer 503 and lose nothing.
//!
//! These tests need a real Redis: `make test` (scripts/with-redis.sh) starts one and
//! passes its URL in `AUTODEPLOY_TEST_REDIS`. Without it they fail, saying so; skip them
//! by hand with `cargo test -- --skip redis`. Each test empties a database of its own
//! (5 to 15; runtime-host's unit tests use 1 to 4), so they run in parallel; the test
//! that stops Redis starts a `redis-server` of its own.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

const ENV: &str = "AUTODEPLOY_TEST_REDIS";

/// The test run's Redis URL.
fn test_redis() -> String {
    std::env::var(ENV).unwrap_or_else(|_| {
        panic!(
            "{ENV} is not set: the Redis tests need a real Redis. Run them through `make test` \
             (or `scripts/with-redis.sh cargo test …`), which starts one; skip them with \
             `cargo test -- --skip redis`"
        )
    })
}

/// The test run's Redis on database `db`, emptied.
fn fresh_db(db: u8) -> String {
    let url = test_redis();
    let (scheme, rest) = url.split_once("://").expect("a redis:// URL");
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let url = format!("{scheme}://{authority}/{db}");
    let mut conn = connect(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
    redis::cmd("FLUSHDB").query::<()>(&mut conn).unwrap();
    url
}

/// A plain connection to `url` (the component's store is not involved), bounded by 5 s.
fn connect(url: &str) -> redis::RedisResult<redis::Connection> {
    let timeout = Duration::from_secs(5);
    let conn = redis::Client::open(url)?.get_connection_with_timeout(timeout)?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    Ok(conn)
}

/// Whether the Redis at `url` answers `PING`.
fn answers(url: &str) -> bool {
    connect(url)
        .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn))
        .is_ok_and(|pong| pong == "PONG")
}

/// A `redis-server` of the test's own, that it can stop and start again on the same
/// port. Its data survives a crash (append-only file, fsynced on every write), as a
/// production Redis behind the store's keeps it; the process is killed when dropped.
struct OwnRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = std::env::temp_dir().join(format!(
            "autodeploy-e2e-redis-{}-{port}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = OwnRedis {
            port,
            dir,
            child: None,
        };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Start the server (again) and wait until it answers.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): it is on PATH after `make test` installs it"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers(&self.url()) {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} does not answer: {}",
                std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kill the server (SIGKILL: a crash, not a clean shutdown) and wait until it is gone.
    fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!answers(&self.url()), "Redis is down");
    }

    /// Freeze (`SIGSTOP`) or thaw (`SIGCONT`) the server: connections stay open and
    /// nothing answers, as with a Redis that hangs or a network that drops packets.
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Both hosts' deploy calls, by `Idempotency-Key`, sorted.
fn deployed(gateways: &[&Gateway]) -> Vec<String> {
    let mut keys: Vec<String> = gateways
        .iter()
        .flat_map(|gw| gw.platform.requests())
        .map(|call| call.header("idempotency-key").unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

fn result(answer: &Value) -> &str {
    answer["result"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_an_app_created_on_one_host_is_served_by_the_other() {
    let url = fresh_db(5);
    let (a, b) = (Gateway::with_redis(&url), Gateway::with_redis(&url));
    let app = a.shop().await;

    let (status, read) = b.admin("GET", "/api/apps/shop", None).await;
    assert_eq!((status, &read), (200, &app));
    let (status, list) = b.admin("GET", "/api/apps", None).await;
    assert_eq!(
        (status, &list["apps"][0]["name"]),
        (200, &Value::from("shop"))
    );
    // In Redis, under the store's prefix.
    let mut conn = connect(&url).unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg("default:app/shop")
        .query(&mut conn)
        .unwrap();
    assert!(exists);

    // A signed push through the second host deploys; the first knows it is done.
    let secret = git_secret(&app);
    let (status, answer) = b
        .github("shop", &secret, "push", "shared-1", &push_for("shared-1"))
        .await;
    assert_eq!((status, result(&answer)), (202, "deployed"), "{answer}");
    let (status, answer) = a
        .github("shop", &secret, "push", "shared-1", &push_for("shared-1"))
        .await;
    assert_eq!((status, result(&answer)), (200, "duplicate"), "{answer}");
    assert_eq!((a.calls(), b.calls()), (0, 1));
    let (_, log) = a.admin("GET", "/api/apps/shop/deliveries", None).await;
    let results: Vec<&str> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["duplicate", "deployed"], "{log}");

    // A rotation on one host holds on the other at once.
    let (_, rotated) = b
        .admin("POST", "/api/apps/shop/triggers/git/rotate", None)
        .await;
    let body = push_for("shared-2");
    let (status, _) = a.github("shop", &secret, "push", "shared-2", &body).await;
    assert_eq!(status, 401);
    let (status, _) = a
        .github("shop", &git_secret(&rotated), "push", "shared-2", &body)
        .await;
    assert_eq!(status, 202);
    assert_eq!(deployed(&[&a, &b]), ["shared-1", "shared-2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_one_delivery_sent_a_hundred_times_to_two_hosts_deploys_once() {
    let url = fresh_db(6);
    let (a, b) = (
        Arc::new(Gateway::with_redis(&url)),
        Arc::new(Gateway::with_redis(&url)),
    );
    let secret = git_secret(&a.shop().await);
    for gw in [&a, &b] {
        gw.platform.set_delay(Some(Duration::from_millis(300)));
    }
    let body = Arc::new(fixture("github/push.json"));
    let tasks: Vec<_> = (0..100)
        .map(|n| {
            let gw = if n % 2 == 0 { a.clone() } else { b.clone() };
            let (body, secret) = (body.clone(), secret.clone());
            tokio::spawn(async move { gw.github("shop", &secret, "push", "same-1", &body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        answers.push((status, result(&answer).to_string()));
    }
    let deployed_answers = answers.iter().filter(|(s, _)| *s == 202).count();
    assert_eq!(deployed_answers, 1, "{answers:?}");
    for (status, result) in &answers {
        assert!(
            matches!(
                (*status, result.as_str()),
                (202, "deployed") | (409, "in_progress") | (200, "duplicate")
            ),
            "{status} {result}"
        );
    }
    assert_eq!(deployed(&[&a, &b]), ["same-1"]);
    let (status, answer) = b.github("shop", &secret, "push", "same-1", &body).await;
    assert_eq!((status, result(&answer)), (200, "duplicate"));
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_two_hundred_distinct_deliveries_across_two_hosts_make_two_hundred_calls() {
    let url = fresh_db(7);
    let (a, b) = (
        Arc::new(Gateway::with_redis(&url)),
        Arc::new(Gateway::with_redis(&url)),
    );
    let secret = git_secret(&a.shop().await);
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let gw = if n % 2 == 0 { a.clone() } else { b.clone() };
            let secret = secret.clone();
            tokio::spawn(async move {
                let id = format!("dist-{n:03}");
                gw.github("shop", &secret, "push", &id, &push_for(&id))
                    .await
            })
        })
        .collect();
    for task in tasks {
        let (status, answer) = task.await.unwrap();
        assert_eq!(status, 202, "{answer}");
    }
    assert_eq!((a.calls(), b.calls()), (100, 100));
    let expected: Vec<String> = (0..200).map(|n| format!("dist-{n:03}")).collect();
    assert_eq!(deployed(&[&a, &b]), expected, "one call per delivery");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_answers_503_and_the_retries_deploy_once_it_is_back() {
    test_redis(); // redis-server is on PATH where make test runs.
    let mut redis = OwnRedis::start();
    let (a, b) = (
        Gateway::with_redis(&redis.url()),
        Gateway::with_redis(&redis.url()),
    );
    let secret = git_secret(&a.shop().await);
    let (status, _) = a
        .github("shop", &secret, "push", "before", &push_for("before"))
        .await;
    assert_eq!(status, 202);

    redis.kill();
    let ids: Vec<String> = (0..6).map(|n| format!("down-{n}")).collect();
    for (n, id) in ids.iter().chain(["before".to_string()].iter()).enumerate() {
        let gw = if n % 2 == 0 { &a } else { &b };
        let start = Instant::now();
        let (status, answer) = gw.github("shop", &secret, "push", id, &push_for(id)).await;
        assert_eq!((status, result(&answer)), (503, "failed"), "{id}: {answer}");
        let reason = answer["reason"].as_str().unwrap();
        assert!(reason.contains("store is unavailable"), "{reason}");
        assert!(!reason.contains("127.0.0.1"), "no detail leaks: {reason}");
        assert!(start.elapsed() < Duration::from_secs(5), "{id}: no hang");
    }
    let (status, _) = b.admin("GET", "/api/apps/shop", None).await;
    assert_eq!(status, 503, "the admin API too");
    assert_eq!(
        deployed(&[&a, &b]),
        ["before"],
        "no deploy while Redis is down"
    );

    // Redis is back (same port, its data intact): the providers' retries, each to the
    // other host this time, deploy every delivery once.
    redis.restart();
    for (n, id) in ids.iter().enumerate() {
        let gw = if n % 2 == 0 { &b } else { &a };
        let (status, answer) = gw.github("shop", &secret, "push", id, &push_for(id)).await;
        assert_eq!(
            (status, result(&answer)),
            (202, "deployed"),
            "{id}: {answer}"
        );
    }
    // And a further resend, to either host, is a duplicate.
    for id in ids.iter().chain(["before".to_string()].iter()) {
        for gw in [&a, &b] {
            let (status, answer) = gw.github("shop", &secret, "push", id, &push_for(id)).await;
            assert_eq!(
                (status, result(&answer)),
                (200, "duplicate"),
                "{id}: {answer}"
            );
        }
    }

    // A crash and restart while no request comes: the first delivery after it deploys,
    // on either host (their connections died with the old process).
    redis.kill();
    redis.restart();
    for (id, gw) in [("quiet-a", &a), ("quiet-b", &b)] {
        let (status, answer) = gw.github("shop", &secret, "push", id, &push_for(id)).await;
        assert_eq!(
            (status, result(&answer)),
            (202, "deployed"),
            "{id}: {answer}"
        );
    }

    let mut expected = vec!["before".to_string(), "quiet-a".into(), "quiet-b".into()];
    expected.extend(ids);
    expected.sort();
    assert_eq!(deployed(&[&a, &b]), expected, "each delivery deployed once");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_that_stops_answering_gets_503_within_the_timeout_not_a_hang() {
    test_redis(); // redis-server is on PATH where make test runs.
    let redis = OwnRedis::start();
    let (a, b) = (
        Gateway::with_redis(&redis.url()),
        Gateway::with_redis(&redis.url()),
    );
    let secret = git_secret(&a.shop().await);

    redis.signal("-STOP");
    for (id, gw) in [("frozen-a", &a), ("frozen-b", &b)] {
        let start = Instant::now();
        let (status, answer) = gw.github("shop", &secret, "push", id, &push_for(id)).await;
        let took = start.elapsed();
        assert_eq!((status, result(&answer)), (503, "failed"), "{id}: {answer}");
        // One store operation times out (2 s), and the component gives up at once.
        assert!(took >= autodeploy_host::REDIS_TIMEOUT, "{id}: {took:?}");
        assert!(took < Duration::from_secs(5), "{id}: {took:?}");
    }
    assert_eq!(deployed(&[&a, &b]), Vec::<String>::new());

    redis.signal("-CONT");
    for (id, gw) in [("frozen-a", &b), ("frozen-b", &a)] {
        let (status, answer) = gw.github("shop", &secret, "push", id, &push_for(id)).await;
        assert_eq!(
            (status, result(&answer)),
            (202, "deployed"),
            "{id}: {answer}"
        );
    }
    assert_eq!(deployed(&[&a, &b]), ["frozen-a", "frozen-b"]);
}
