//! [`ServerLimits`]: how long a client may take and how much of the server it may hold.
//!
//! The numbers follow the webhook providers: GitHub, GitLab, Gitea and the registries
//! give up on a delivery after about 10 seconds, so a request still arriving after that
//! is one nobody waits for; a real sender writes its head in milliseconds and its body
//! (a push is rarely above 100 KB) well inside that.

use std::time::Duration;

use crate::runtime::MAX_INSTANCES;

/// The largest body the host buffers for the component: the component's own largest
/// limit (`GIT_BODY_LIMIT` in `src/gateway/route.rs`, 5 MiB). A larger declared body is
/// not read (the component answers 413 from its `Content-Length`); a larger chunked one
/// is cut one byte past this, which the component also answers 413.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// Timeouts and bounds of a [`Server`](crate::Server): [`ServerLimits::default`] is what
/// `autodeploy-host serve` uses; tests set short ones.
///
/// A request's body is read whole, within [`body_timeout`](Self::body_timeout), before
/// it takes an instance slot: a slow body holds a connection and its buffer, never a
/// slot. A connection beyond [`max_connections`](Self::max_connections), or a request
/// beyond [`max_in_flight`](Self::max_in_flight) or the body budget, is answered
/// `503 Service Unavailable` with `Retry-After: 1` at once and closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// From a connection's start, or the first byte of a request on a kept-alive
    /// connection, until the request's head is complete (default 5 s: a head is a few
    /// KB). The connection is then closed without an answer.
    pub header_read_timeout: Duration,
    /// From the head until the whole body has arrived (default 10 s, the providers'
    /// own delivery timeout). The answer is `408 Request Timeout`, and the connection
    /// is closed.
    pub body_timeout: Duration,
    /// Longest wait for the next piece of a body (default 5 s): a body that stalls is
    /// cut before the whole-body deadline. Answered like `body_timeout`.
    pub body_between_bytes: Duration,
    /// How long a kept-alive connection may wait for its next request (default 60 s: as
    /// long as the usual reverse proxies keep idle upstream connections, e.g. nginx's
    /// `keepalive_timeout`; set the proxy's at or below it).
    pub idle_timeout: Duration,
    /// Connections open at once (default 4096). Keep the process's file-descriptor limit
    /// (`ulimit -n`) above it: `autodeploy-host serve` lowers it to fit that limit.
    pub max_connections: usize,
    /// Requests with their whole body, waiting for or running in an instance (default
    /// 2 × [`MAX_INSTANCES`]: every slot busy and as many queued).
    pub max_in_flight: usize,
    /// The largest body buffered for the component (default [`MAX_BODY_BYTES`]).
    pub max_body: usize,
    /// Bytes of request bodies buffered at once across all connections (default
    /// 256 MiB, ~50 bodies of the largest size; real pushes are far smaller).
    pub max_buffered_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            body_between_bytes: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_in_flight: 2 * MAX_INSTANCES as usize,
            max_body: MAX_BODY_BYTES,
            max_buffered_bytes: 256 << 20,
        }
    }
}
