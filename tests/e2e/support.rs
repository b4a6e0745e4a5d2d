//! The harness: one compiled component per process (a `OnceLock`), a fresh host and store
//! per test.

use std::sync::OnceLock;
use std::time::Duration;

use autodeploy_host::{FakePlatform, Host, HostBuilder, Runtime};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const ADMIN_TOKEN: &str = "e2e-admin-token-3f9a";
pub const PLATFORM_URL: &str = "https://console.example.com";
pub const PLATFORM_TOKEN: &str = "e2e-platform-token-77c1";
pub const HOST_HEADER: &str = "hooks.example.com";

pub fn runtime() -> Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let path = Runtime::default_component_path();
        assert!(
            path.exists(),
            "{} is missing: run `make component` (make test does)",
            path.display()
        );
        Runtime::load(&path).expect("the component compiles and links")
    })
    .clone()
}

/// A gateway with its own in-memory store and fake platform.
pub struct Gateway {
    pub host: Host,
    pub platform: FakePlatform,
}

impl Gateway {
    pub fn new() -> Gateway {
        Gateway::with_vars(&[])
    }

    pub fn with_vars(extra: &[(&str, &str)]) -> Gateway {
        Gateway::build(extra, |b| b)
    }

    /// A gateway whose store is the SQLite file at `path` (runtime-host's `--kv-file`).
    pub fn with_kv_file(path: &std::path::Path) -> Gateway {
        Gateway::build(&[], |b| b.kv_file(path))
    }

    /// The store `default` of the `--kv-file` at `path`, as the next host opens it: the
    /// gateway that wrote it must be gone (one host per file).
    pub fn kv_file_store(path: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
        let kv =
            autodeploy_host::FileBackend::open(path).expect("the file opens once its host is gone");
        kv.snapshot().unwrap().remove("default").unwrap_or_default()
    }

    /// A gateway whose store is the Redis database at `url` (runtime-host's `--kv-redis`),
    /// with its own fake platform: gateways on one database share apps and deliveries,
    /// as the instances of a Spin app on several nodes do.
    pub fn with_redis(url: &str) -> Gateway {
        Gateway::build(&[], |b| b.kv_redis(url))
    }

    /// A gateway on `store` (shared with other gateways, as instances share Spin's
    /// store), each of whose calls waits `delay` first: a slow store.
    pub fn with_store(
        store: std::sync::Arc<dyn autodeploy_host::KvBackend>,
        delay: Duration,
    ) -> Gateway {
        Gateway::build(&[], |b| b.kv_backend(store).kv_delay(delay))
    }

    /// A gateway around a host built by the caller (one that calls a real platform, say):
    /// its `platform` is not the host's and sees no call.
    pub fn around(host: Host) -> Gateway {
        Gateway {
            host,
            platform: FakePlatform::new(),
        }
    }

    fn build(extra: &[(&str, &str)], store: impl FnOnce(HostBuilder) -> HostBuilder) -> Gateway {
        let platform = FakePlatform::new();
        platform.set_status(202);
        let mut builder = Host::builder(runtime())
            .var("admin_token", ADMIN_TOKEN)
            .var("platform_url", PLATFORM_URL)
            .var("platform_token", PLATFORM_TOKEN)
            .fake_platform(platform.clone())
            .echo_logs(false);
        for (name, value) in extra {
            builder = builder.var(name, value);
        }
        Gateway {
            host: store(builder).build().expect("host builds"),
            platform,
        }
    }

    /// Any request; answers (status, headers, body bytes).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, http::HeaderMap, Vec<u8>) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", HOST_HEADER);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = self
            .host
            .send(req.body(body.to_vec()).unwrap())
            .await
            .expect("the component answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.into_body())
    }

    /// A request whose answer is JSON (or empty → null).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Value) {
        let (status, _, body) = self.request(method, path, headers, body).await;
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or_else(|_| {
                panic!("answer is not JSON: {}", String::from_utf8_lossy(&body))
            })
        };
        (status, value)
    }

    /// An admin call with the right token.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.call(
            method,
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            &body,
        )
        .await
    }

    /// Creates an app (201) and returns it as GET shows it.
    pub async fn create_app(&self, name: &str, body: Value) -> Value {
        let (status, app) = self
            .admin("PUT", &format!("/api/apps/{name}"), Some(body))
            .await;
        assert_eq!(status, 201, "create {name}: {app}");
        app
    }

    /// The usual app: GitHub push to main with @deploy deploys.
    pub async fn shop(&self) -> Value {
        self.create_app(
            "shop",
            json!({
                "git": {"enabled": true, "repo": "https://github.com/acme/shop", "branch": "main"},
                "api": {"enabled": true},
                "deploy": {"target": "generic", "path": "/v1/apps/shop/deploy"}
            }),
        )
        .await
    }

    /// A GitHub delivery signed with `secret`.
    pub async fn github(
        &self,
        app: &str,
        secret: &str,
        event: &str,
        delivery: &str,
        body: &[u8],
    ) -> (u16, Value) {
        let signature = sign(secret, body);
        self.call(
            "POST",
            &format!("/hooks/{app}/git"),
            &[
                ("content-type", "application/json"),
                ("user-agent", "GitHub-Hookshot/a1b2c3d"),
                ("x-github-event", event),
                ("x-github-delivery", delivery),
                ("x-github-hook-id", "520147622"),
                ("x-hub-signature-256", &signature),
            ],
            body,
        )
        .await
    }

    pub fn calls(&self) -> usize {
        self.platform.requests().len()
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, computed independently of the component.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

pub fn fixture(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The fixture push `github/push.json` as if its ref had moved from a commit named after
/// `delivery`: the same bytes but for `before`, and a push of its own for each delivery
/// id (the same push under another id is a duplicate for 10 minutes), so retries of one
/// id send the same push.
pub fn push_for(delivery: &str) -> Vec<u8> {
    let push = String::from_utf8(fixture("github/push.json")).unwrap();
    let before = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    assert!(push.contains(before));
    let digest = Sha256::digest(delivery.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    push.replace(before, &hex[..40]).into_bytes()
}

/// A fixture with JSON edits applied.
pub fn fixture_with(path: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(path)).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

pub fn git_secret(app: &Value) -> String {
    app["git"]["secret"]
        .as_str()
        .expect("git.secret")
        .to_string()
}

/// The generic deploy body the fixture `github/push.json` makes for app `shop`.
pub fn fixture_push_deploy_body(delivery: &str, received_at: &str) -> Value {
    fixture_push_deploy_body_with(delivery, received_at, Value::Null)
}

/// [`fixture_push_deploy_body`] with its `status_url` (`null` from the trigger export).
pub fn fixture_push_deploy_body_with(
    delivery: &str,
    received_at: &str,
    status_url: Value,
) -> Value {
    json!({
        "app": "shop",
        "trigger": "git",
        "provider": "github",
        "delivery": delivery,
        "repository": "https://github.com/acme/shop",
        "branch": "main",
        "tag": null,
        "commit": {
            "id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "message": "Fix checkout rounding\n\nRound totals half-even. @deploy",
            "author": "Ann Developer"
        },
        "image": null,
        "received_at": received_at,
        "status_url": status_url,
    })
}

/// The `status_url` token for entry `seq` of the app `shop`, from its definition:
/// 128 bits of `HMAC(HMAC(admin_token, "autodeploy status_url v1"), "shop\n{seq}\n{id}")`.
pub fn status_token(seq: i64, delivery: &str) -> String {
    let mac = |key: &[u8], data: &[u8]| {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes()
    };
    let key = mac(ADMIN_TOKEN.as_bytes(), b"autodeploy status_url v1");
    let token = mac(&key, format!("shop\n{seq}\n{delivery}").as_bytes());
    token[..16].iter().map(|b| format!("{b:02x}")).collect()
}
