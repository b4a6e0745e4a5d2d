//! [`HostBuilder`]: variables, key-value backend, outbound interception and logging of a
//! [`Host`].

use std::path::PathBuf;
use std::sync::Arc;

use crate::ctx::Shared;
use crate::fake::FakePlatform;
use crate::host::Host;
use crate::kv::{FileBackend, KvBackend, MemoryBackend, RedisBackend};
use crate::logs::{LogBook, ACCESS_LOG_PREFIX, DEFAULT_LOG_CAPACITY, GUEST_LOG_PREFIX};
use crate::runtime::Runtime;
use crate::vars::Variables;

/// Configures a [`Host`]: `Host::builder(runtime).var(..).build()`.
pub struct HostBuilder {
    runtime: Runtime,
    vars: Variables,
    kv_file: Option<PathBuf>,
    kv_redis: Option<String>,
    kv_backend: Option<Arc<dyn KvBackend>>,
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

    /// Keep the key-value store in this JSON file (default: in memory).
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

    /// Build the host (opens the key-value file, or checks the Redis URL, if any).
    pub fn build(self) -> anyhow::Result<Host> {
        let kv: Arc<dyn KvBackend> = match (self.kv_backend, self.kv_redis, self.kv_file) {
            (Some(backend), _, _) => backend,
            (None, Some(url), _) => Arc::new(RedisBackend::open(&url)?),
            (None, None, Some(path)) => Arc::new(FileBackend::open(path)?),
            (None, None, None) => Arc::new(MemoryBackend::new()),
        };
        let echo = |prefix: &str| self.echo_logs.then(|| prefix.to_string());
        Ok(Host {
            runtime: self.runtime,
            shared: Arc::new(Shared {
                vars: self.vars,
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
            kv_file: None,
            kv_redis: None,
            kv_backend: None,
            fake: None,
            echo_logs: true,
            log_capacity: DEFAULT_LOG_CAPACITY,
        }
    }
}
