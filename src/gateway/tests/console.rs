//! The console's files as the component serves them.

use std::io::Read as _;

use super::super::console::CONTENT_SECURITY_POLICY;
use super::super::fake::FakeHost;

fn get(host: &FakeHost, path: &str, headers: &[(&str, &str)]) -> super::Answered {
    host.request("GET", path, headers, b"")
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut out)
        .expect("gzip");
    out
}

const GZIP: (&str, &str) = ("accept-encoding", "gzip, deflate, br");

#[test]
fn the_root_leads_to_the_console() {
    let host = FakeHost::default();
    let answer = get(&host, "/", &[]);
    assert_eq!(answer.status(), 302);
    assert_eq!(answer.header("location"), Some("/console/"));
}

#[test]
fn console_files_are_served_compressed_with_validators_and_a_strict_policy() {
    let host = FakeHost::default();
    for (path, content_type, needle) in [
        (
            "/console/",
            "text/html; charset=utf-8",
            r#"<script type="module" src="console.js">"#,
        ),
        (
            "/console/console.js",
            "text/javascript; charset=utf-8",
            "sessionStorage",
        ),
        ("/console/i18n.js", "text/javascript; charset=utf-8", "部署"),
        ("/console/console.css", "text/css; charset=utf-8", ".badge"),
    ] {
        let answer = get(&host, path, &[GZIP]);
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.header("content-type"), Some(content_type), "{path}");
        assert_eq!(answer.header("content-encoding"), Some("gzip"), "{path}");
        assert_eq!(answer.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(
            answer.header("content-security-policy"),
            Some(CONTENT_SECURITY_POLICY)
        );
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(answer.header("x-frame-options"), Some("DENY"));
        assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
        let body = gunzip(&answer.0.body);
        assert!(body.contains(needle), "{path}");

        // The entity tag revalidates: 304 without a body.
        let etag = answer.header("etag").expect("an etag").to_string();
        let again = get(&host, path, &[GZIP, ("if-none-match", &etag)]);
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.0.body.is_empty());
        let stale = get(&host, path, &[GZIP, ("if-none-match", "\"0\"")]);
        assert_eq!(stale.status(), 200, "{path}");
    }
}

#[test]
fn the_policy_allows_nothing_inline_or_from_elsewhere() {
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(CONTENT_SECURITY_POLICY.contains(part), "{part}");
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    // The pages need no exception: no inline script, style or handler, and the scripts
    // never turn text into HTML.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/console");
    let html = std::fs::read_to_string(format!("{dir}/index.html")).unwrap();
    assert!(!html.contains("<script>") && !html.contains("style=") && !html.contains(" on"));
    assert!(!html.contains("<style"));
    for js in ["console.js", "i18n.js"] {
        let code = std::fs::read_to_string(format!("{dir}/{js}")).unwrap();
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!code.contains(sink), "{js} uses {sink}");
        }
    }
}

#[test]
fn other_requests_get_clear_answers() {
    let host = FakeHost::default();
    assert_eq!(get(&host, "/console/", &[]).status(), 406, "no gzip");
    assert_eq!(
        get(&host, "/console/", &[("accept-encoding", "gzip;q=0")]).status(),
        406
    );
    assert_eq!(get(&host, "/console/nope.js", &[GZIP]).status(), 404);
    let post = host.request("POST", "/console/", &[GZIP], b"");
    assert_eq!(post.status(), 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = host.request("HEAD", "/console/console.js", &[GZIP], b"");
    assert_eq!(head.status(), 200);
    assert!(head.0.body.is_empty());
}
