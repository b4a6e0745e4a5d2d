//! [`HostBuilder`]: variables, manifest, key-value backend, outbound interception and
//! logging of a [`Host`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::allow::AllowList;
use crate::ctx::Shared;
use crate::fake::FakePlatform;
use crate::host::Host;
use crate::kv::{FileBackend, KvBackend, MemoryBackend, RedisBackend, SlowBackend};
use crate::logs::{LogBook, ACCESS_LOG_PREFIX, DEFAULT_LOG_CAPACITY, GUEST_LOG_PREFIX};
use crate::manifest::Manifest;
use crate::runtime::Runtime;
use crate::vars::Variables;

/// Configures a [`Host`]: `Host::builder(runtime).var(..).build()`.
pub struct HostBuilder {
    runtime: Runtime,
    vars: Variables,
    manifest: Option<PathBuf>,
    allowed_outbound_hosts: Option<Vec<String>>,
    kv_file: Option<PathBuf>,
    kv_redis: Option<String>,
    kv_backend: Option<Arc<dyn KvBackend>>,
    kv_delay: Option<Duration>,
    fake: Option<FakePlatform>,
    echo_logs: bool,
    log_capacity: usize,
}

impl HostBuilder {
    /// Set Spin variable `name` (lowercased) to `value`; it wins over the environment.
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.set(name, value);
        self
    }

    /// Also take variables from `SPIN_VARIABLE_<NAME>` environment variables (those not
    /// set with [`var`](Self::var)).
    pub fn vars_from_env(mut self) -> Self {
        self.vars.fill_from_env(std::env::vars());
        self
    }

    /// Run as the Spin manifest at `path` (a `spin.toml`) says, as `spin up` would: its
    /// `[variables]` give their defaults to the variables with no value (a required one
    /// with no value makes [`build`](Self::build) fail), and its component's
    /// `allowed_outbound_hosts` (templates resolved from the variables) decide which
    /// origins the component may call: any other call fails with `HttpRequestDenied`
    /// and a line in the host's log ([`Host::access_logs`]). See [`Manifest`].
    ///
    /// Without a manifest (the default), every origin is allowed.
    pub fn manifest(mut self, path: impl Into<PathBuf>) -> Self {
        self.manifest = Some(path.into());
        self
    }

    /// Allow the component to call only these origins, Spin's `allowed_outbound_hosts`
    /// entries (`https://api.example.com`, `http://127.0.0.1:3001`, `{{ platform_url }}`…:
    /// see [`AllowList`]); templates are resolved when the host is built. Wins over the
    /// list of a [`manifest`](Self::manifest) (whose variable defaults still apply).
    pub fn allowed_outbound_hosts<S: AsRef<str>>(mut self, entries: &[S]) -> Self {
        self.allowed_outbound_hosts =
            Some(entries.iter().map(|e| e.as_ref().to_string()).collect());
        self
    }

    /// Keep the key-value store in this SQLite file, in Spin's format: the
    /// `.spin/sqlite_key_value.db` of `spin up` can be given here and the other way
    /// round (default: in memory). [`build`](HostBuilder::build) fails if another host
    /// has the file open; see [`FileBackend`].
    pub fn kv_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.kv_file = Some(path.into());
        self
    }

    /// Keep the key-value store in Redis at `url` (e.g. `redis://127.0.0.1:6379/0`), with
    /// the keys of store `default` under `default:`: hosts on the same Redis database
    /// share their data, as instances of one Spin app on many nodes do. Wins over
    /// [`kv_file`](Self::kv_file). The URL is checked by [`build`](HostBuilder::build);
    /// the connection is made on first use (see [`RedisBackend`]).
    pub fn kv_redis(mut self, url: impl Into<String>) -> Self {
        self.kv_redis = Some(url.into());
        self
    }

    /// Use this key-value backend (wins over [`kv_redis`](Self::kv_redis) and
    /// [`kv_file`](Self::kv_file)); share one backend between hosts to share their data.
    pub fn kv_backend(mut self, backend: Arc<dyn KvBackend>) -> Self {
        self.kv_backend = Some(backend);
        self
    }

    /// Make every key-value call wait `delay` before it runs, whatever the backend (a
    /// [`SlowBackend`] around it): for tests of requests whose store is slow.
    pub fn kv_delay(mut self, delay: Duration) -> Self {
        self.kv_delay = Some(delay);
        self
    }

    /// Answer outbound HTTP with `fake` instead of the network (default: real calls).
    pub fn fake_platform(mut self, fake: FakePlatform) -> Self {
        self.fake = Some(fake);
        self
    }

    /// Whether guest log lines and access-log lines are echoed to stderr (default: yes).
    /// They are kept in memory either way.
    pub fn echo_logs(mut self, echo: bool) -> Self {
        self.echo_logs = echo;
        self
    }

    /// How many guest log lines (and access-log lines) are kept (default 10 000).
    pub fn log_capacity(mut self, lines: usize) -> Self {
        self.log_capacity = lines;
        self
    }

    /// Build the host: reads the manifest, if any (fails when it is invalid, when a
    /// required variable has no value, or when an `allowed_outbound_hosts` entry is
    /// invalid or names a variable with no value), and opens the key-value file, or checks
    /// the Redis URL, if any.
    pub fn build(self) -> anyhow::Result<Host> {
        let mut vars = self.vars;
        let manifest = self.manifest.as_deref().map(Manifest::load).transpose()?;
        let in_manifest = || match &self.manifest {
            Some(path) => format!("manifest {}", path.display()),
            None => "allowed_outbound_hosts".to_string(),
        };
        if let Some(manifest) = &manifest {
            manifest
                .apply_defaults(&mut vars)
                .with_context(in_manifest)?;
        }
        let allow = match (&self.allowed_outbound_hosts, &manifest) {
            (Some(entries), _) => AllowList::parse(entries, &vars)?,
            (None, Some(manifest)) => manifest.allow_list(&vars).with_context(in_manifest)?,
            (None, None) => AllowList::any(),
        };
        let kv = choose_kv(self.kv_backend, self.kv_redis, self.kv_file, self.kv_delay)?;
        let echo = |prefix: &str| self.echo_logs.then(|| prefix.to_string());
        Ok(Host {
            runtime: self.runtime,
            shared: Arc::new(Shared {
                vars,
                allow,
                kv,
                logs: Arc::new(LogBook::new(self.log_capacity, echo(GUEST_LOG_PREFIX))),
                access: Arc::new(LogBook::new(self.log_capacity, echo(ACCESS_LOG_PREFIX))),
                fake: self.fake,
                outbound: Arc::default(),
            }),
        })
    }
}

impl Host {
    /// Start configuring a host for `runtime`.
    pub fn builder(runtime: Runtime) -> HostBuilder {
        HostBuilder {
            runtime,
            vars: Variables::new(),
            manifest: None,
            allowed_outbound_hosts: None,
            kv_file: None,
            kv_redis: None,
            kv_backend: None,
            kv_delay: None,
            fake: None,
            echo_logs: true,
            log_capacity: DEFAULT_LOG_CAPACITY,
        }
    }
}

/// The key-value backend a builder's settings ask for.
fn choose_kv(
    backend: Option<Arc<dyn KvBackend>>,
    redis: Option<String>,
    file: Option<PathBuf>,
    delay: Option<Duration>,
) -> anyhow::Result<Arc<dyn KvBackend>> {
    let kv: Arc<dyn KvBackend> = match (backend, redis, file) {
        (Some(backend), _, _) => backend,
        (None, Some(url), _) => Arc::new(RedisBackend::open(&url)?),
        (None, None, Some(path)) => Arc::new(FileBackend::open(path)?),
        (None, None, None) => Arc::new(MemoryBackend::new()),
    };
    Ok(match delay {
        Some(delay) => Arc::new(SlowBackend::new(kv, delay)),
        None => kv,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::kv::DEFAULT_STORE;

    /// `kv_delay` slows the backend chosen otherwise (here a given one), every call.
    #[tokio::test]
    async fn kv_delay_wraps_whichever_backend_is_chosen() {
        let delay = Duration::from_millis(100);
        let memory = MemoryBackend::new();
        let kv = choose_kv(Some(Arc::new(memory.clone())), None, None, Some(delay)).unwrap();
        let start = Instant::now();
        kv.set(DEFAULT_STORE, "k", b"v".to_vec()).await.unwrap();
        assert_eq!(
            kv.get(DEFAULT_STORE, "k").await.unwrap(),
            Some(b"v".to_vec())
        );
        assert!(start.elapsed() >= delay * 2, "{:?}", start.elapsed());
        assert_eq!(
            memory.snapshot()[DEFAULT_STORE]["k"],
            b"v",
            "the given backend's data"
        );

        // Without it, no wrapper and no wait.
        let kv = choose_kv(None, None, None, None).unwrap();
        let start = Instant::now();
        kv.set(DEFAULT_STORE, "k", b"v".to_vec()).await.unwrap();
        assert!(start.elapsed() < delay, "{:?}", start.elapsed());
    }
}
