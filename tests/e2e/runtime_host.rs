//! runtime-host itself with the real component: many instances at once, serving over
//! HTTP with a redacted access log, the `--kv-file` store's content, deploy calls to
//! a real platform on loopback over kept-alive connections (no fake), and the manifest's
//! `allowed_outbound_hosts` enforced as on Spin.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use autodeploy_host::Host;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn healthz_answers_200_also_fifty_at_once() {
    let gw = Gateway::new();
    let (status, _, body) = gw.request("GET", "/healthz", &[], b"").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let gw = Arc::new(gw);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let gw = gw.clone();
            tokio::spawn(async move { gw.request("GET", "/healthz", &[], b"").await.0 })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_http_with_the_image_token_redacted_in_the_access_log() {
    let gw = Gateway::new();
    let server = gw.host.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr();
    let serving = server.spawn();

    for (path, status) in [("/healthz", 200), ("/hooks/shop/image/tok3n-s3cret", 404)] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{text}");
    }
    let access = gw.host.access_logs();
    assert_eq!(access.len(), 2, "{access:?}");
    assert!(access[0].starts_with("POST /healthz 200 "), "{access:?}");
    assert!(
        access[1].starts_with("POST /hooks/shop/image/*** 404 "),
        "{access:?}"
    );
    assert!(access.iter().all(|l| !l.contains("tok3n")), "{access:?}");
    serving.abort();
}

/// An API-trigger delivery with its `Idempotency-Key`, authenticated with `key`.
async fn api_hook(gw: &Gateway, key: &str, delivery: &str) -> (u16, Value) {
    let bearer = format!("Bearer {key}");
    gw.call(
        "POST",
        "/hooks/shop/api",
        &[
            ("authorization", &bearer),
            ("content-type", "application/json"),
            ("idempotency-key", delivery),
        ],
        b"{}",
    )
    .await
}

/// API deliveries on a `--kv-file` store: the app and each deployed delivery's record
/// are in the file; a host reloaded from it knows both; two copies of one delivery in
/// flight at once deploy once.
#[tokio::test(flavor = "multi_thread")]
async fn a_kv_file_holds_the_app_and_the_deployed_deliveries_of_the_api_trigger() {
    let dir = std::env::temp_dir().join(format!("autodeploy-e2e-api-kv-{}", std::process::id()));
    // The whole directory: the database comes with -wal, -shm and .lock files.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kv.db");

    let first = Gateway::with_kv_file(&path);
    let app = first.shop().await;
    let key = app["api"]["secret_key"].as_str().unwrap().to_string();
    let (status, answer) = api_hook(&first, &key, "d1").await;
    assert_eq!((status, &answer["result"]), (202, &json!("deployed")));
    let calls = first.platform.requests();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].uri, format!("{PLATFORM_URL}/v1/apps/shop/deploy"));
    assert_eq!(
        calls[0].header("authorization"),
        Some(format!("Bearer {PLATFORM_TOKEN}").as_str())
    );
    assert_eq!(calls[0].header("idempotency-key"), Some("d1"));
    assert_eq!(calls[0].json()["app"], "shop");
    drop(first);

    // The file holds the app as the admin API shows it, and the delivery's record.
    let stored = Gateway::kv_file_store(&path);
    let saved_app: Value =
        serde_json::from_slice(stored.get("app/shop").expect("app/shop is stored")).unwrap();
    assert_eq!(saved_app["name"], "shop");
    assert_eq!(saved_app["api"]["secret_key"], app["api"]["secret_key"]);
    assert!(
        stored.contains_key("done/shop/d1"),
        "the deployed delivery's record: {:?}",
        stored.keys()
    );

    // A host reloaded from the file knows the app and the delivery.
    let second = Gateway::with_kv_file(&path);
    let (status, answer) = api_hook(&second, &key, "d1").await;
    assert_eq!((status, &answer["result"]), (200, &json!("duplicate")));
    assert_eq!(second.calls(), 0);

    // Two copies of one delivery in flight at once: one deploys, the other is told so.
    second.platform.set_delay(Some(Duration::from_millis(800)));
    let (a, b) = tokio::join!(api_hook(&second, &key, "d2"), api_hook(&second, &key, "d2"));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [202, 409], "{a:?} {b:?}");
    assert_eq!(second.calls(), 1);
    // Written through to the file: what the next host will read.
    let kv = second.host.kv();
    assert!(
        kv.get("default", "done/shop/d2").await.unwrap().is_some(),
        "{:?}",
        kv.keys("default").await
    );

    let logs = second.host.logs();
    assert!(!logs.is_empty());
    assert!(
        logs.iter()
            .all(|l| !l.contains(&key) && !l.contains(PLATFORM_TOKEN)),
        "{logs:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A platform on loopback answering 202 to every call, from the request's head (without
/// reading its body, as a server may); it records each call's path, `Authorization` and
/// `Idempotency-Key`.
async fn loopback_platform() -> (std::net::SocketAddr, Arc<Mutex<Vec<[String; 3]>>>) {
    use hyper::service::service_fn;
    use wasmtime_wasi_http::io::TokioIo;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<[String; 3]>>> = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let header = |n: &str| {
                        let v = req.headers().get(n).map(|v| v.to_str().unwrap_or("?"));
                        v.unwrap_or("-").to_string()
                    };
                    seen.lock().unwrap().push([
                        req.uri().path().to_string(),
                        header("authorization"),
                        header("idempotency-key"),
                    ]);
                    async {
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .status(202)
                                .body(http_body_util::Full::new(bytes::Bytes::from(
                                    r#"{"accepted":true}"#,
                                )))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// Deploys through the real component to a platform on loopback over real HTTP (no
/// fake): each call arrives as the deploy request (path, bearer token, idempotency key),
/// whether it goes out on a new connection or on one kept from the call before
/// (runtime-host's `outbound.rs`).
///
/// The platform answers from the request's head without reading its body, and the
/// connection can then end before the guest has written the body (on a kept connection
/// the head goes out at once). The platform's 202 still counts: before the guest looked
/// at the answer after a failed body write, about half of the runs of this test failed
/// with "could not write the request body". (`github.rs`'s
/// `a_platform_answering_before_reading_the_body_is_heard` makes that write fail every
/// time.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_reach_a_real_platform_over_kept_connections() {
    let (addr, seen) = loopback_platform().await;
    let host = Host::builder(runtime())
        .var("admin_token", ADMIN_TOKEN)
        .var("platform_url", &format!("http://{addr}"))
        .var("platform_token", PLATFORM_TOKEN)
        .echo_logs(false)
        .build()
        .unwrap();
    let gw = Gateway::around(host);
    let app = gw.shop().await;
    let key = app["api"]["secret_key"].as_str().unwrap();
    for delivery in ["d1", "d2", "d3"] {
        let (status, answer) = api_hook(&gw, key, delivery).await;
        assert_eq!((status, &answer["result"]), (202, &json!("deployed")));
    }
    let bearer = format!("Bearer {PLATFORM_TOKEN}");
    let want: Vec<[String; 3]> = ["d1", "d2", "d3"]
        .iter()
        .map(|d| {
            [
                "/v1/apps/shop/deploy".to_string(),
                bearer.clone(),
                d.to_string(),
            ]
        })
        .collect();
    assert_eq!(*seen.lock().unwrap(), want);
}

/// The repository's `spin.toml`, as `make run` and `spin up` read it.
const REPO_MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/spin.toml");

/// A host run as `manifest` says, whose `platform_url` is the loopback platform at `addr`.
fn host_with_manifest(manifest: &std::path::Path, addr: std::net::SocketAddr) -> Host {
    Host::builder(runtime())
        .manifest(manifest)
        .var("admin_token", ADMIN_TOKEN)
        .var("platform_url", &format!("http://{addr}"))
        .var("platform_token", PLATFORM_TOKEN)
        .echo_logs(false)
        .build()
        .unwrap_or_else(|e| panic!("{}: {e:#}", manifest.display()))
}

/// A GitHub push to `shop` (created first) through the component.
async fn push(gw: &Gateway, delivery: &str) -> (u16, Value) {
    let secret = git_secret(&gw.shop().await);
    gw.github("shop", &secret, "push", delivery, &push_for(delivery))
        .await
}

/// Under the repository's own `spin.toml`, as on Spin: the manifest's defaults fill the
/// variables not given, `{{ platform_url }}` in `allowed_outbound_hosts` lets the deploy
/// call reach the platform, and the required variables must be given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_repository_manifest_a_push_deploys_to_platform_url() {
    let (addr, seen) = loopback_platform().await;
    let host = host_with_manifest(REPO_MANIFEST.as_ref(), addr);
    assert!(
        host.allowed_outbound_hosts().allows(
            &format!("http://{addr}/v1/apps/shop/deploy")
                .parse()
                .unwrap()
        ),
        "{}",
        host.allowed_outbound_hosts()
    );
    assert_eq!(
        host.variables().get("public_url").unwrap(),
        "",
        "the manifest's default"
    );
    let gw = Gateway::around(host);
    let (status, answer) = push(&gw, "allowed-1").await;
    assert_eq!(
        (status, &answer["result"]),
        (202, &json!("deployed")),
        "{answer}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0][0], "/v1/apps/shop/deploy");
    assert_eq!(seen[0][2], "allowed-1");
    let denied: Vec<String> = gw
        .host
        .access_logs()
        .into_iter()
        .filter(|l| l.contains("denied"))
        .collect();
    assert!(denied.is_empty(), "{denied:?}");

    // The manifest's required variables must have a value: the error names them.
    let err = Host::builder(runtime())
        .manifest(REPO_MANIFEST)
        .var("platform_url", "https://console.example.com")
        .build()
        .err()
        .expect("admin_token is required");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("admin_token") && !msg.contains("platform_url"),
        "{msg}"
    );
}

/// A deploy call to an origin the manifest's `allowed_outbound_hosts` does not list is
/// refused by the host, as Spin refuses it (`HttpRequestDenied`): the platform is never
/// called, the push is answered 502 `failed` (so the provider retries), and the host's
/// log says which origin was denied, without the call's path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_outside_allowed_outbound_hosts_is_denied_and_the_platform_never_called() {
    let (addr, seen) = loopback_platform().await;
    let dir = std::env::temp_dir().join(format!(
        "autodeploy-e2e-allowed-hosts-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("spin.toml");
    std::fs::write(
        &manifest,
        r#"spin_manifest_version = 2

[application]
name = "autodeploy"

[variables]
admin_token = { required = true, secret = true }
platform_url = { required = true }
platform_token = { default = "", secret = true }
public_url = { default = "" }

[[trigger.http]]
route = "/..."
component = "autodeploy"

[component.autodeploy]
source = "autodeploy.wasm"
allowed_outbound_hosts = ["https://example.com"]
key_value_stores = ["default"]
"#,
    )
    .unwrap();
    let gw = Gateway::around(host_with_manifest(&manifest, addr));
    std::fs::remove_dir_all(&dir).unwrap();

    let (status, answer) = push(&gw, "denied-1").await;
    assert_eq!(
        (status, &answer["result"]),
        (502, &json!("failed")),
        "{answer}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "the platform was called: {:?}",
        seen.lock().unwrap()
    );
    let origin = format!("http://{addr}");
    let denied: Vec<String> = gw
        .host
        .access_logs()
        .into_iter()
        .filter(|l| l.contains("denied"))
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert!(
        denied[0].starts_with(&format!("outbound request to {origin} denied: ")),
        "{denied:?}"
    );
    assert!(denied[0].contains("https://example.com"), "{denied:?}");
    assert!(!denied[0].contains("/v1/apps"), "no path: {denied:?}");
    // The component saw the error Spin gives it.
    let logs = gw.host.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("id=denied-1") && l.contains("HttpRequestDenied")),
        "{logs:?}"
    );
}
