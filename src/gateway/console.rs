//! The console: `GET /` leads to `/console/`, whose files (`console/` in the repository:
//! HTML, CSS and JavaScript modules, no framework) are embedded in the component,
//! gzip-compressed at build time (`build.rs`). Each is served with an entity tag
//! (`If-None-Match` answers `304`), `Cache-Control: no-cache` (revalidated on every
//! load, so a new version shows at once), and headers that keep the page to itself: a
//! strict `Content-Security-Policy` (no inline script or style, nothing from elsewhere,
//! no framing), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
//! `X-Frame-Options: DENY`.

use super::{Request, Response};

/// One embedded file.
pub(super) struct Asset {
    pub(super) name: &'static str,
    pub(super) content_type: &'static str,
    /// A quoted entity tag, from the file's bytes.
    pub(super) etag: &'static str,
    /// The uncompressed length (for the size report).
    #[allow(dead_code)]
    pub(super) raw_len: usize,
    pub(super) gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// Where the console lives.
pub const CONSOLE_PATH: &str = "/console/";

/// Everything the page may load: itself, its scripts and styles, and the admin API on
/// the same origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The console's answer for `path`, or `None` when the path is not the console's.
pub(super) fn handle(req: &Request, path: &str) -> Option<Response> {
    if path == "/" || path == "/console" {
        let mut response = with_safety_headers(Response::empty(302));
        response
            .headers
            .push(("location".into(), CONSOLE_PATH.into()));
        return Some(response);
    }
    let file = path.strip_prefix(CONSOLE_PATH)?;
    let file = if file.is_empty() { "index.html" } else { file };
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return Some(text(404, "not found\n"));
    };
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        let mut response = text(405, "the console is read with GET\n");
        response.headers.push(("allow".into(), "GET, HEAD".into()));
        return Some(response);
    }
    if req.headers.get("if-none-match").is_some_and(|tags| {
        tags.split(',')
            .any(|t| matches!(t.trim(), "*") || t.trim() == asset.etag)
    }) {
        let mut response = with_safety_headers(Response::empty(304));
        response.headers.push(("etag".into(), asset.etag.into()));
        return Some(response);
    }
    if !accepts_gzip(req.headers.get("accept-encoding").unwrap_or_default()) {
        return Some(text(
            406,
            "the console is sent gzip-compressed, and this client does not accept gzip \
             (Accept-Encoding): open it in a browser\n",
        ));
    }
    let mut response = with_safety_headers(Response {
        status: 200,
        headers: vec![
            ("content-type".into(), asset.content_type.into()),
            ("content-encoding".into(), "gzip".into()),
            ("vary".into(), "accept-encoding".into()),
            ("etag".into(), asset.etag.into()),
            ("cache-control".into(), "no-cache".into()),
        ],
        body: if req.method == "HEAD" {
            Vec::new()
        } else {
            asset.gzip.to_vec()
        },
        after: None,
    });
    if req.method == "HEAD" {
        response
            .headers
            .push(("content-length".into(), asset.gzip.len().to_string()));
    }
    Some(response)
}

/// Does `Accept-Encoding` allow gzip (`gzip` or `*`, without `q=0`)?
fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        // `q=0` (also `0.`, `0.0`, … `0.000`) refuses; read as text, not as a float,
        // which would bring float parsing into the component.
        let refused = parts.any(|p| {
            p.trim().strip_prefix("q=").is_some_and(|q| {
                let q = q.trim();
                q.starts_with('0')
                    && q.len() <= 5
                    && q[1..].trim_start_matches('.').bytes().all(|b| b == b'0')
                    && q[1..].matches('.').count() <= 1
            })
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

fn text(status: u16, body: &str) -> Response {
    with_safety_headers(Response {
        status,
        headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
        body: body.as_bytes().to_vec(),
        after: None,
    })
}

fn with_safety_headers(mut response: Response) -> Response {
    response.headers.extend(
        [
            ("content-security-policy", CONTENT_SECURITY_POLICY),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
        ]
        .map(|(n, v)| (n.to_string(), v.to_string())),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn gzip_is_accepted_unless_refused() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, gzip;q=0.8"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip(""));
        assert!(!accepts_gzip("br"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("gzip; q=0.000"));
        assert!(accepts_gzip("gzip;q=0.5"));
        assert!(accepts_gzip("gzip;q=0.001"));
        assert!(!accepts_gzip("identity"));
    }
}
