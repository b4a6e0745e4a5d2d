//! Criterion benchmarks of the pure core: `autodeploy::evaluate` (config
//! parse + route + verify + parse + rules + outbound request) for a GitHub push (one
//! commit and 100 commits, for an app without and with path filters), its rejections,
//! and a Docker Hub push. Allocations per call
//! are counted with a counting global allocator and printed before the timings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use autodeploy::model::Headers;
use autodeploy::{evaluate, Decision};
use autodeploy_bench_core as b;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size() as u64, Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(n as u64, Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Case {
    name: &'static str,
    /// The app has path filters (else the plain bench app).
    paths: bool,
    path: String,
    headers: Headers,
    body: Vec<u8>,
    expect: fn(&Decision) -> bool,
}

fn cases() -> Vec<Case> {
    let git = "/hooks/shop/git".to_string();
    let push = b::github_push();
    let push100 = b::github_push_commits(100);
    let other = b::github_push_other_branch();
    let hub = b::fixture("dockerhub/push.json");
    let gh = |body: &[u8], secret: &str| Headers::new(b::github_headers(body, secret, "d-1"));
    vec![
        Case {
            paths: false,
            name: "github_push_deploy",
            path: git.clone(),
            headers: gh(&push, b::GIT_SECRET),
            body: push.clone(),
            expect: |d| matches!(d, Decision::Deploy(_)),
        },
        Case {
            paths: false,
            name: "github_push_100_commits_deploy",
            path: git.clone(),
            headers: gh(&push100, b::GIT_SECRET),
            body: push100.clone(),
            expect: |d| matches!(d, Decision::Deploy(_)),
        },
        Case {
            paths: false,
            name: "github_push_other_branch_ignored",
            path: git.clone(),
            headers: gh(&other, b::GIT_SECRET),
            body: other,
            expect: |d| matches!(d, Decision::Ignore(_)),
        },
        Case {
            paths: false,
            name: "github_push_bad_signature_401",
            path: git.clone(),
            headers: gh(&push, "wrong-secret"),
            body: push.clone(),
            expect: |d| matches!(d, Decision::Reject { status: 401, .. }),
        },
        Case {
            paths: false,
            name: "dockerhub_push_deploy",
            path: format!("/hooks/shop/image/{}", b::IMAGE_TOKEN),
            headers: Headers::new(b::dockerhub_headers()),
            body: hub,
            expect: |d| matches!(d, Decision::Deploy(_)),
        },
        Case {
            name: "github_push_paths_deploy",
            paths: true,
            path: git.clone(),
            headers: gh(&push, b::GIT_SECRET),
            body: push,
            expect: |d| matches!(d, Decision::Deploy(_)),
        },
        Case {
            name: "github_push_100_commits_paths_deploy",
            paths: true,
            path: git,
            headers: gh(&push100, b::GIT_SECRET),
            body: push100,
            expect: |d| matches!(d, Decision::Deploy(_)),
        },
    ]
}

fn bench(c: &mut Criterion) {
    let plain = b::evaluate_config();
    let with_paths = b::evaluate_config_with_paths();
    let config = |case: &Case| if case.paths { &with_paths } else { &plain };
    let cases = cases();
    println!("allocations per evaluate() call (counting global allocator):");
    for case in &cases {
        let run = || {
            evaluate(
                config(case),
                "POST",
                &case.path,
                &case.headers,
                &case.body,
                b::NOW_MS,
            )
        };
        let decision = run();
        assert!((case.expect)(&decision), "{}: {decision:?}", case.name);
        drop(decision);
        let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        drop(run());
        let (a1, b1) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        println!(
            "ALLOCS {:<34} body {:>6} B  {:>5} allocations  {:>8} bytes",
            case.name,
            case.body.len(),
            a1 - a0,
            b1 - b0
        );
    }
    let mut g = c.benchmark_group("evaluate");
    for case in &cases {
        g.throughput(Throughput::Bytes(case.body.len() as u64));
        g.bench_function(case.name, |bn| {
            bn.iter(|| {
                evaluate(
                    black_box(config(case)),
                    "POST",
                    black_box(&case.path),
                    black_box(&case.headers),
                    black_box(&case.body),
                    b::NOW_MS,
                )
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
