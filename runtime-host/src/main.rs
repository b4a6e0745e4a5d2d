//! `autodeploy-host serve`: serve the autodeploy component over HTTP like `spin up`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use autodeploy_host::{
    vars, DemoPlatform, Host, RedisBackend, Runtime, ServerLimits, COMPONENT_RELATIVE_PATH, ROUTES,
};

const USAGE: &str = "\
autodeploy-host — serve the autodeploy WebAssembly component like `spin up`

USAGE:
    autodeploy-host serve [OPTIONS] [COMPONENT]

ARGS:
    COMPONENT               the component to serve
                            [default: target/wasm32-wasip2/release/autodeploy.wasm]

OPTIONS:
    --listen ADDR           address to listen on [default: 127.0.0.1:3000]
    --var NAME=VALUE        set a Spin variable (repeatable); wins over the environment
    --manifest PATH         run as this Spin manifest says, like `spin up`: its
                            [variables] give their defaults (a required variable
                            with no value is an error), and only the origins in the
                            component's allowed_outbound_hosts may be called (others
                            fail with HttpRequestDenied and a line in the log)
                            [default: ./spin.toml if it exists, else no manifest:
                            every origin allowed]
    --no-manifest           ignore ./spin.toml: no variable defaults, every origin
                            allowed
    --kv-file PATH          keep the key-value store in this SQLite file, in Spin's
                            format (a `spin up` .spin/sqlite_key_value.db works too);
                            every write is durable before the response; one host per
                            file; default: in memory
    --kv-redis URL          keep the key-value store in Redis, e.g.
                            redis://127.0.0.1:6379/0 (redis://:PASSWORD@HOST:PORT/DB):
                            hosts on the same database share apps and deliveries, so
                            several can serve behind one load balancer
    --demo-platform ADDR    also start a stub deploy platform on ADDR that answers every
                            call 202 {\"accepted\":true}, prints it to stdout, and two
                            seconds later reports it succeeded to its status_url
    --header-timeout SECS   time a request's head may take [default: 5]
    --body-timeout SECS     time a request's body may take after its head, read whole
                            before the request takes an instance [default: 10]
    --idle-timeout SECS     time a kept-alive connection may wait for its next request
                            [default: 60]
    --max-connections N     connections open at once; more are answered 503
                            [default: 4096, lowered to fit the open-files limit]
    --max-in-flight N       requests waiting for or running in an instance; more are
                            answered 503 with Retry-After [default: 2000]
    -h, --help              print this help

ENVIRONMENT:
    SPIN_VARIABLE_<NAME>    a Spin variable, e.g. SPIN_VARIABLE_ADMIN_TOKEN=… sets admin_token

VARIABLES (read by the component):
    admin_token             (required) bearer token of the admin API
    platform_url            (required) origin of the deploy platform, e.g.
                            https://console.example.com: every deploy call goes there
    platform_token          bearer token sent with generic deploy calls
    public_url              base URL providers reach the gateway at, for webhook URLs
                            (else the request's own scheme and host)
";

#[derive(Default, PartialEq)]
struct Options {
    listen: Option<SocketAddr>,
    vars: Vec<(String, String)>,
    manifest: Option<PathBuf>,
    no_manifest: bool,
    kv_file: Option<PathBuf>,
    kv_redis: Option<String>,
    demo_platform: Option<SocketAddr>,
    component: Option<PathBuf>,
    limits: ServerLimits,
}

/// Variable values and the Redis URL's password are secrets: `Debug` shows the
/// variables' names and the URL as `--kv-redis` prints it.
impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.vars.iter().map(|(n, _)| n.as_str()).collect();
        let redis = self.kv_redis.as_deref().map(redact_userinfo);
        f.debug_struct("Options")
            .field("listen", &self.listen)
            .field("vars", &names)
            .field("manifest", &self.manifest)
            .field("no_manifest", &self.no_manifest)
            .field("kv_file", &self.kv_file)
            .field("kv_redis", &redis)
            .field("demo_platform", &self.demo_platform)
            .field("component", &self.component)
            .field("limits", &self.limits)
            .finish()
    }
}

/// `scheme://user:password@host/…` as `scheme://***@host/…`.
fn redact_userinfo(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            return format!("{scheme}://***@{}", &rest[at + 1..]);
        }
    }
    url.to_string()
}

/// A positive number of seconds, e.g. `10` or `0.5`.
fn seconds(flag: &str, v: &str) -> Result<Duration, String> {
    match v.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("{flag}: {v:?} is not a positive number of seconds")),
    }
}

/// A positive count.
fn count(flag: &str, v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag}: {v:?} is not a positive whole number")),
    }
}

// Built once per run: the size of `Serve` does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
enum Command {
    Help,
    Serve(Options),
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => return Ok(Command::Help),
        Some("serve") => {}
        Some(other) => return Err(format!("unknown command {other:?} (expected `serve`)")),
    }
    let mut opts = Options::default();
    let mut positional_only = false;
    while let Some(arg) = it.next() {
        if positional_only || !arg.starts_with('-') || arg == "-" {
            if opts.component.is_some() {
                return Err(format!("unexpected argument {arg:?}"));
            }
            opts.component = Some(PathBuf::from(arg));
            continue;
        }
        if arg == "--" {
            positional_only = true;
            continue;
        }
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        if arg == "--no-manifest" {
            opts.no_manifest = true;
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        match flag {
            "--listen" => {
                let v = value()?;
                opts.listen = Some(v.parse().map_err(|_| {
                    format!("--listen: {v:?} is not an address like 127.0.0.1:3000")
                })?);
            }
            "--var" => {
                let v = value()?;
                opts.vars
                    .push(vars::parse_assignment(&v).map_err(|e| format!("--var: {e}"))?);
            }
            "--manifest" => opts.manifest = Some(PathBuf::from(value()?)),
            "--kv-file" => opts.kv_file = Some(PathBuf::from(value()?)),
            "--kv-redis" => opts.kv_redis = Some(value()?),
            "--demo-platform" => {
                let v = value()?;
                opts.demo_platform = Some(v.parse().map_err(|_| {
                    format!("--demo-platform: {v:?} is not an address like 127.0.0.1:3001")
                })?);
            }
            "--header-timeout" => {
                opts.limits.header_read_timeout = seconds(flag, &value()?)?;
            }
            "--body-timeout" => opts.limits.body_timeout = seconds(flag, &value()?)?,
            "--idle-timeout" => opts.limits.idle_timeout = seconds(flag, &value()?)?,
            "--max-connections" => opts.limits.max_connections = count(flag, &value()?)?,
            "--max-in-flight" => opts.limits.max_in_flight = count(flag, &value()?)?,
            _ => return Err(format!("unknown option {flag:?}")),
        }
    }
    if opts.manifest.is_some() && opts.no_manifest {
        return Err("--manifest and --no-manifest are exclusive".to_string());
    }
    if opts.kv_file.is_some() && opts.kv_redis.is_some() {
        return Err("--kv-file and --kv-redis are exclusive: choose one store".to_string());
    }
    Ok(Command::Serve(opts))
}

/// The manifest to run as: the one given, else `./spin.toml` when it exists (unless
/// `--no-manifest`), else none.
fn manifest_path(opts: &Options) -> Option<PathBuf> {
    if opts.no_manifest {
        return None;
    }
    if let Some(path) = &opts.manifest {
        return Some(path.clone());
    }
    let local = PathBuf::from(DEFAULT_MANIFEST);
    local.is_file().then_some(local)
}

/// The manifest read when none is given: `spin.toml` in the current directory, as with
/// `spin up`.
const DEFAULT_MANIFEST: &str = "spin.toml";

/// The component to serve: the one given, else `./target/…/autodeploy.wasm`, else the
/// one in this workspace's target directory. `Err` carries the path to report.
fn component_path(given: Option<PathBuf>) -> Result<PathBuf, PathBuf> {
    if let Some(path) = given {
        return if path.is_file() { Ok(path) } else { Err(path) };
    }
    let local = PathBuf::from(COMPONENT_RELATIVE_PATH);
    if local.is_file() {
        return Ok(local);
    }
    let built = Runtime::default_component_path();
    if built.is_file() {
        return Ok(built);
    }
    Err(local)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Serve(opts)) => opts,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let component = match component_path(opts.component.clone()) {
        Ok(path) => path,
        Err(path) => {
            eprintln!(
                "error: component not found: {}\n       run `make component` to build it (or pass its path)",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(opts, component)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(opts: Options, component: PathBuf) -> anyhow::Result<()> {
    let listen = opts
        .listen
        .unwrap_or_else(|| "127.0.0.1:3000".parse().expect("valid address"));
    eprintln!("compiling {} …", component.display());
    let path = component.clone();
    let runtime = tokio::task::spawn_blocking(move || Runtime::load(path)).await??;

    let mut builder = Host::builder(runtime);
    for (name, value) in &opts.vars {
        builder = builder.var(name, value);
    }
    builder = builder.vars_from_env();
    let manifest = manifest_path(&opts);
    if let Some(path) = &manifest {
        builder = builder.manifest(path);
    }
    if let Some(path) = &opts.kv_file {
        builder = builder.kv_file(path);
    }
    let redis = match &opts.kv_redis {
        Some(url) => {
            let redis = Arc::new(RedisBackend::open(url)?);
            builder = builder.kv_backend(redis.clone());
            Some(redis)
        }
        None => None,
    };
    let host = builder.build()?;

    let mut limits = opts.limits.clone();
    // Each connection is a file descriptor: beyond the limit, accepting fails and the
    // backlog waits instead of being answered 503. Keep room for files, Redis and
    // outbound connections.
    if let Some(fds) = open_files_limit() {
        let room = usize::try_from(fds.saturating_sub(256))
            .unwrap_or(usize::MAX)
            .max(16);
        if limits.max_connections > room {
            eprintln!(
                "warning: the open-files limit is {fds}: serving at most {room} connections \
                 (raise it with `ulimit -n` for the {} asked)",
                limits.max_connections
            );
            limits.max_connections = room;
        }
    }
    let server = host.bind(listen).await?.limits(limits);
    let addr = server.local_addr();
    let demo = match opts.demo_platform {
        Some(demo_addr) => Some(DemoPlatform::bind(demo_addr).await?),
        None => None,
    };

    println!("autodeploy-host: serving {}", component.display());
    println!("listening on http://{addr}");
    println!("routes:");
    for route in ROUTES {
        println!("  http://{addr}{route}");
    }
    match (&opts.kv_file, &redis) {
        (Some(path), _) => println!("key-value store: file {}", path.display()),
        (None, Some(redis)) => {
            println!("key-value store: redis {}", redis.url());
            // Serve either way: requests answer 503 until Redis answers.
            if let Err(e) = redis.ping().await {
                eprintln!("warning: {e}; requests answer 503 until Redis is reachable");
            }
        }
        (None, None) => println!("key-value store: in memory"),
    }
    let names: Vec<&str> = host.variables().names().collect();
    println!(
        "variables: {}",
        if names.is_empty() {
            "(none)".to_string()
        } else {
            names.join(", ")
        }
    );
    match &manifest {
        Some(path) => println!(
            "manifest: {} (allowed outbound hosts: {})",
            path.display(),
            host.allowed_outbound_hosts()
        ),
        None => println!("manifest: none (every outbound host allowed)"),
    }
    // With a manifest, a required variable with no value stopped the build.
    for required in ["admin_token", "platform_url"] {
        if manifest.is_none() && host.variables().get(required).is_err() {
            eprintln!(
                "warning: variable {required} is not set (--var {required}=… or SPIN_VARIABLE_{})",
                required.to_ascii_uppercase()
            );
        }
    }
    if let Some(demo) = demo {
        println!(
            "demo platform: http://{} (answers 202 {{\"accepted\":true}})",
            demo.local_addr()
        );
        tokio::spawn(demo.run());
    }
    server.run().await
}

/// The soft limit on open files (Linux: `/proc/self/limits`); `None` elsewhere or when
/// unlimited.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn parses_serve_options() {
        let cmd = parse_args(&args(&[
            "serve",
            "--listen",
            "0.0.0.0:8080",
            "--var",
            "ADMIN_TOKEN=a=b",
            "--var=platform_url=http://127.0.0.1:3001",
            "--manifest",
            "spin.toml",
            "--kv-file",
            "state.json",
            "--demo-platform=127.0.0.1:3001",
            "my.wasm",
        ]))
        .unwrap();
        assert_eq!(
            cmd,
            Command::Serve(Options {
                listen: Some("0.0.0.0:8080".parse().unwrap()),
                vars: vec![
                    ("admin_token".into(), "a=b".into()),
                    ("platform_url".into(), "http://127.0.0.1:3001".into()),
                ],
                manifest: Some("spin.toml".into()),
                no_manifest: false,
                kv_file: Some("state.json".into()),
                kv_redis: None,
                demo_platform: Some("127.0.0.1:3001".parse().unwrap()),
                component: Some("my.wasm".into()),
                limits: ServerLimits::default(),
            })
        );
        assert_eq!(
            parse_args(&args(&["serve"])).unwrap(),
            Command::Serve(Options::default())
        );
        assert_eq!(
            parse_args(&args(&["serve", "--kv-redis=redis://127.0.0.1:6379/0"])).unwrap(),
            Command::Serve(Options {
                kv_redis: Some("redis://127.0.0.1:6379/0".into()),
                ..Options::default()
            })
        );
    }

    #[test]
    fn help_and_errors() {
        assert_eq!(parse_args(&args(&[])).unwrap(), Command::Help);
        assert_eq!(parse_args(&args(&["--help"])).unwrap(), Command::Help);
        assert_eq!(parse_args(&args(&["serve", "-h"])).unwrap(), Command::Help);
        assert!(parse_args(&args(&["run"])).is_err());
        assert!(parse_args(&args(&["serve", "--listen"])).is_err());
        assert!(parse_args(&args(&["serve", "--listen", "nope"])).is_err());
        assert!(parse_args(&args(&["serve", "--var", "novalue"])).is_err());
        assert!(parse_args(&args(&["serve", "--bogus"])).is_err());
        assert!(parse_args(&args(&["serve", "a.wasm", "b.wasm"])).is_err());
        assert!(parse_args(&args(&["serve", "--kv-redis"])).is_err());
        assert!(parse_args(&args(&["serve", "--manifest"])).is_err());
        assert!(parse_args(&args(&["serve", "--manifest=spin.toml", "--no-manifest"])).is_err());
        assert!(parse_args(&args(&[
            "serve",
            "--kv-file",
            "s.json",
            "--kv-redis",
            "redis://127.0.0.1/0"
        ]))
        .is_err());
    }

    #[test]
    fn parses_limits() {
        let cmd = parse_args(&args(&[
            "serve",
            "--header-timeout",
            "2",
            "--body-timeout=0.5",
            "--idle-timeout",
            "30",
            "--max-connections",
            "100",
            "--max-in-flight=10",
        ]))
        .unwrap();
        let Command::Serve(opts) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(
            opts.limits,
            ServerLimits {
                header_read_timeout: Duration::from_secs(2),
                body_timeout: Duration::from_millis(500),
                idle_timeout: Duration::from_secs(30),
                max_connections: 100,
                max_in_flight: 10,
                ..ServerLimits::default()
            }
        );
        for bad in [
            &["serve", "--body-timeout", "0"][..],
            &["serve", "--header-timeout", "-1"],
            &["serve", "--idle-timeout", "soon"],
            &["serve", "--max-connections", "0"],
            &["serve", "--max-in-flight", "many"],
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_variable_values_and_the_redis_password() {
        let cmd = parse_args(&args(&[
            "serve",
            "--var",
            "admin_token=s3cr3t-admin",
            "--var=platform_token=s3cr3t-platform",
            "--kv-redis",
            "redis://:s3cr3t-redis@127.0.0.1:6379/0",
        ]))
        .unwrap();
        let shown = format!("{cmd:?} {cmd:#?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("admin_token") && shown.contains("platform_token"));
        assert!(shown.contains("redis://***@127.0.0.1:6379/0"), "{shown}");
    }

    #[test]
    fn the_manifest_is_the_one_given_else_spin_toml_here_unless_refused() {
        let Command::Serve(opts) = parse_args(&args(&["serve", "--manifest=a/spin.toml"])).unwrap()
        else {
            panic!()
        };
        assert_eq!(manifest_path(&opts), Some(PathBuf::from("a/spin.toml")));
        let Command::Serve(opts) = parse_args(&args(&["serve", "--no-manifest"])).unwrap() else {
            panic!()
        };
        assert_eq!(manifest_path(&opts), None);
        // Tests run in the package's directory, which has no spin.toml (the repository's
        // root does).
        assert!(!std::path::Path::new(DEFAULT_MANIFEST).exists());
        assert_eq!(manifest_path(&Options::default()), None);
    }

    #[test]
    fn missing_component_is_reported() {
        assert_eq!(
            component_path(Some("/nonexistent/x.wasm".into())),
            Err(PathBuf::from("/nonexistent/x.wasm"))
        );
    }
}
