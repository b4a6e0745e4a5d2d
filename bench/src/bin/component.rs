//! Component costs in runtime-host: size, compile + pre-instantiate (`Runtime::load`),
//! and per-request cost of a fresh instance (the host instantiates from its
//! `InstancePre` for every request, as Spin does):
//!
//! - `send GET /healthz`: instantiate + the smallest handler (no store, no outbound);
//! - `evaluate (trigger export)`: instantiate + the whole pure decision for the GitHub
//!   push, to compare with the native `evaluate` of the criterion bench;
//! - `POST /hooks/shop/git` with a wrong signature → 401: the cheapest hook (the store
//!   is read and the delivery log written, no platform call);
//! - `send POST git push → deploy`: the whole webhook path in process (in-memory store,
//!   a fake platform answering 202, a new push and delivery id per request).
//!
//! Usage: `component [COMPONENT] [ITERATIONS]`; prints a Markdown table.

use std::time::{Duration, Instant};

use autodeploy_bench as b;
use autodeploy_host::{FakePlatform, Host, Runtime, TriggerRequest};

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    format!(
        "{:.1} | {:.1} | {:.1} | {}",
        us(mean),
        us(v[v.len() / 2]),
        us(v[(v.len() * 99 / 100).min(v.len() - 1)]),
        v.len()
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .map(Into::into)
        .unwrap_or_else(Runtime::default_component_path);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2000);

    let size = std::fs::metadata(&path)?.len();
    let mut loads = Vec::new();
    let mut runtime = None;
    for _ in 0..3 {
        let t = Instant::now();
        let r = Runtime::load(&path)?;
        loads.push(t.elapsed());
        runtime = Some(r);
    }
    let runtime = runtime.unwrap();
    let platform = FakePlatform::new();
    platform.set_status(202);
    let host = Host::builder(runtime)
        .var("admin_token", "bench-admin-token")
        .var("platform_url", "https://console.example.com")
        .var("platform_token", "bench-platform-token")
        .fake_platform(platform.clone())
        .log_capacity(16)
        .build()?;

    // The app, through the admin API.
    let put = http::Request::put("/api/apps/shop")
        .header("host", "hooks.example.com")
        .header("authorization", "Bearer bench-admin-token")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&b::app_json())?)?;
    let r = host.send(put).await?;
    anyhow::ensure!(r.status().is_success(), "PUT app: {}", r.status());

    let warm = n / 10;
    let mut healthz = Vec::with_capacity(n);
    for i in 0..n + warm {
        let req = http::Request::get("/healthz")
            .header("host", "hooks.example.com")
            .body(Vec::new())?;
        let t = Instant::now();
        let r = host.send(req).await?;
        let e = t.elapsed();
        assert_eq!(r.status(), 200);
        if i >= warm {
            healthz.push(e);
        }
    }

    let body = b::github_push();
    let config = b::evaluate_config();
    let mut req = TriggerRequest::new("POST", "/hooks/shop/git");
    for (k, v) in b::github_headers(&body, b::GIT_SECRET, "d-1") {
        req = req.header(&k, &v);
    }
    let req = req.body(body.clone());
    let mut eval = Vec::with_capacity(n);
    for i in 0..n + warm {
        let t = Instant::now();
        let d = host.evaluate(&config, &req, b::NOW_MS).await?;
        let e = t.elapsed();
        assert!(matches!(d, autodeploy_host::Decision::Deploy(_)), "{d:?}");
        if i >= warm {
            eval.push(e);
        }
    }

    // The cheapest hook: the store is read and written, the signature does not match.
    let mut invalid = Vec::with_capacity(n);
    for i in 0..n + warm {
        let mut rq = http::Request::post("/hooks/shop/git").header("host", "hooks.example.com");
        for (k, v) in b::github_headers(&body, "not-the-secret", "bench-invalid") {
            rq = rq.header(k, v);
        }
        let rq = rq.body(body.clone())?;
        let t = Instant::now();
        let r = host.send(rq).await?;
        let e = t.elapsed();
        anyhow::ensure!(r.status() == 401, "invalid: {} {:?}", r.status(), r.body());
        if i >= warm {
            invalid.push(e);
        }
        if i % 256 == 0 {
            host.clear_logs();
        }
    }

    let mut deploy = Vec::with_capacity(n);
    for i in 0..n + warm {
        let mut rq = http::Request::post("/hooks/shop/git").header("host", "hooks.example.com");
        // A push of its own each time, signed before the clock starts.
        let body = b::github_push_from(i as u64);
        for (k, v) in b::github_headers(&body, b::GIT_SECRET, &format!("bench-{i}")) {
            rq = rq.header(k, v);
        }
        let rq = rq.body(body)?;
        let t = Instant::now();
        let r = host.send(rq).await?;
        let e = t.elapsed();
        anyhow::ensure!(r.status() == 202, "deploy: {} {:?}", r.status(), r.body());
        if i >= warm {
            deploy.push(e);
        }
        if i % 256 == 0 {
            host.clear_logs();
        }
    }

    println!("| component | value |");
    println!("|---|---|");
    println!("| size | {size} bytes |");
    let ms = |d: &Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
    println!(
        "| `Runtime::load` (compile + pre-instantiate), 3 runs | {} |",
        loads.iter().map(ms).collect::<Vec<_>>().join(", ")
    );
    println!();
    println!("| per request, in process (µs) | mean | p50 | p99 | n |");
    println!("|---|---|---|---|---|");
    println!("| instantiate + `GET /healthz` | {} |", stats(healthz));
    println!("| instantiate + trigger `evaluate` (GitHub push → deploy) | {} |", stats(eval));
    println!("| instantiate + `POST /hooks/shop/git` → 401 (invalid signature, memory store) | {} |", stats(invalid));
    println!("| instantiate + `POST /hooks/shop/git` → 202 (memory store, fake platform) | {} |", stats(deploy));
    Ok(())
}
