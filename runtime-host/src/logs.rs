//! Guest stdout/stderr capture and the host's bounded in-memory logs.

use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How many guest log lines (and access-log lines) a host keeps by default; older ones
/// are dropped.
pub const DEFAULT_LOG_CAPACITY: usize = 10_000;

/// The prefix of guest output lines echoed to the host's stderr.
pub const GUEST_LOG_PREFIX: &str = "[autodeploy] ";

/// The prefix of the host's access-log lines on stderr.
pub const ACCESS_LOG_PREFIX: &str = "[host] ";

/// Longest unterminated run of guest output held before it is cut into a line.
const MAX_LINE: usize = 64 * 1024;

/// Longest line kept (and echoed): the rest is cut, with `…[+N bytes]` saying how much.
pub const MAX_KEPT_LINE: usize = 4 * 1024;

/// Most bytes of lines one log book keeps; the oldest lines are dropped to stay below.
pub const MAX_KEPT_BYTES: usize = 8 * 1024 * 1024;

/// A bounded list of log lines (at most `capacity` lines, each cut to
/// [`MAX_KEPT_LINE`], [`MAX_KEPT_BYTES`] in all), optionally echoed to the host's stderr
/// with a prefix.
pub(crate) struct LogBook {
    lines: Mutex<Lines>,
    capacity: usize,
    max_bytes: usize,
    echo_prefix: Option<String>,
}

#[derive(Default)]
struct Lines {
    lines: VecDeque<String>,
    bytes: usize,
}

impl LogBook {
    pub(crate) fn new(capacity: usize, echo_prefix: Option<String>) -> Self {
        Self::with_max_bytes(capacity, MAX_KEPT_BYTES, echo_prefix)
    }

    fn with_max_bytes(capacity: usize, max_bytes: usize, echo_prefix: Option<String>) -> Self {
        Self {
            lines: Mutex::default(),
            capacity: capacity.max(1),
            max_bytes,
            echo_prefix,
        }
    }

    pub(crate) fn push(&self, line: String) {
        let line = match cut(&line, MAX_KEPT_LINE) {
            std::borrow::Cow::Borrowed(_) => line,
            std::borrow::Cow::Owned(cut) => cut,
        };
        if let Some(prefix) = &self.echo_prefix {
            echo(prefix, &line);
        }
        let mut book = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        while !book.lines.is_empty()
            && (book.lines.len() >= self.capacity || book.bytes + line.len() > self.max_bytes)
        {
            if let Some(old) = book.lines.pop_front() {
                book.bytes -= old.len();
            }
        }
        book.bytes += line.len();
        book.lines.push_back(line);
    }

    pub(crate) fn snapshot(&self) -> Vec<String> {
        let book = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        book.lines.iter().cloned().collect()
    }

    pub(crate) fn clear(&self) {
        *self.lines.lock().unwrap_or_else(|p| p.into_inner()) = Lines::default();
    }
}

/// `text` cut to at most `max` bytes (on a character boundary), with `…[+N bytes]`
/// saying how many were left out.
pub(crate) fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[+{} bytes]", &text[..end], text.len() - end).into()
}

/// How long the stderr writer waits after a write before taking the next batch: lines
/// that arrive meanwhile go out together, and no request wakes the writer but the first
/// one after a write.
const ECHO_BATCH: std::time::Duration = std::time::Duration::from_millis(5);

/// Most bytes queued for stderr; beyond it (a stderr nobody reads) echoes are dropped.
const ECHO_MAX_PENDING: usize = 8 * 1024 * 1024;

/// Lines waiting for the stderr writer, and the writer's wake-up call.
struct EchoQueue {
    pending: Mutex<Vec<u8>>,
    ready: Condvar,
}

/// Writes `prefix` and `line` to stderr from one writer thread, off the request path.
///
/// Measured under load: one unbuffered `write` per line cost 4–5% of the server's CPU;
/// a channel that woke the writer for each line cost two context switches per request
/// and about a tenth of the server's CPU. Here a line is appended to a shared buffer,
/// and only the first line after a write wakes the writer; it writes everything queued
/// in one `write`, then waits [`ECHO_BATCH`] before the next. Lines keep their order and
/// appear on stderr at most a few milliseconds late.
fn echo(prefix: &str, line: &str) {
    static QUEUE: OnceLock<Option<Arc<EchoQueue>>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let queue = Arc::new(EchoQueue {
            pending: Mutex::new(Vec::with_capacity(64 * 1024)),
            ready: Condvar::new(),
        });
        let writer = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("log-echo".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(64 * 1024);
                loop {
                    {
                        let mut pending = writer.pending.lock().unwrap_or_else(|p| p.into_inner());
                        while pending.is_empty() {
                            pending = writer
                                .ready
                                .wait(pending)
                                .unwrap_or_else(|p| p.into_inner());
                        }
                        std::mem::swap(&mut *pending, &mut batch);
                    }
                    let _ = io::stderr().write_all(&batch);
                    batch.clear();
                    std::thread::sleep(ECHO_BATCH);
                }
            })
            .ok()
            .map(|_| queue)
    });
    match queue {
        Some(queue) => {
            let mut pending = queue.pending.lock().unwrap_or_else(|p| p.into_inner());
            if pending.len() > ECHO_MAX_PENDING {
                // stderr is not being drained: drop the echo (the log book keeps the line).
                return;
            }
            let wake = pending.is_empty();
            pending.extend_from_slice(prefix.as_bytes());
            pending.extend_from_slice(line.as_bytes());
            pending.push(b'\n');
            drop(pending);
            if wake {
                queue.ready.notify_one();
            }
        }
        None => eprintln!("{prefix}{line}"),
    }
}

/// The unterminated tail of one guest stream; flushed as a last line when the instance
/// (and with it every handle to the stream) is dropped.
struct Pending {
    buf: Vec<u8>,
    book: Arc<LogBook>,
}

impl Pending {
    fn write(&mut self, mut data: &[u8]) {
        while let Some(i) = data.iter().position(|&b| b == b'\n') {
            self.buf.extend_from_slice(&data[..i]);
            self.emit();
            data = &data[i + 1..];
        }
        self.buf.extend_from_slice(data);
        while self.buf.len() > MAX_LINE {
            let rest = self.buf.split_off(MAX_LINE);
            self.emit();
            self.buf = rest;
        }
    }

    fn emit(&mut self) {
        let mut line = std::mem::take(&mut self.buf);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        self.book.push(String::from_utf8_lossy(&line).into_owned());
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.emit();
        }
    }
}

/// One guest stream (stdout or stderr of one instance): every write is split into lines
/// synchronously, so a line is in the [`LogBook`] as soon as the guest wrote it.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    pending: Arc<Mutex<Pending>>,
}

impl GuestOutput {
    pub(crate) fn new(book: Arc<LogBook>) -> Self {
        Self {
            pending: Arc::new(Mutex::new(Pending {
                buf: Vec::new(),
                book,
            })),
        }
    }

    fn write_bytes(&self, data: &[u8]) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(data);
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(1024 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_bounded_and_flushed_on_drop() {
        let book = Arc::new(LogBook::new(3, None));
        {
            let mut out = GuestOutput::new(book.clone());
            let mut other_handle = out.clone();
            OutputStream::write(&mut out, Bytes::from_static(b"one\r\ntw")).unwrap();
            OutputStream::write(&mut other_handle, Bytes::from_static(b"o\nthree\nfo")).unwrap();
            assert_eq!(book.snapshot(), ["one", "two", "three"]);
        }
        // The unterminated "fo" is flushed when the last handle goes; "one" falls out.
        assert_eq!(book.snapshot(), ["two", "three", "fo"]);
        book.clear();
        assert!(book.snapshot().is_empty());
    }

    #[test]
    fn kept_lines_and_bytes_are_capped() {
        // One long line is cut, with a marker saying how much.
        let book = LogBook::new(10, None);
        book.push("x".repeat(64 * 1024));
        let kept = book.snapshot();
        assert!(
            kept[0].len() < MAX_KEPT_LINE + 32,
            "{} bytes",
            kept[0].len()
        );
        assert!(kept[0].ends_with(&format!("…[+{} bytes]", 64 * 1024 - MAX_KEPT_LINE)));

        // Many lines: the total stays under the byte cap, the newest are kept.
        let book = LogBook::with_max_bytes(10_000, 10 * 1024, None);
        for i in 0..1000 {
            book.push(format!("{i:04}{}", "y".repeat(1000)));
        }
        let kept = book.snapshot();
        let bytes: usize = kept.iter().map(String::len).sum();
        assert!(bytes <= 10 * 1024, "{bytes} bytes kept");
        assert!(kept.last().unwrap().starts_with("0999"));
        assert_eq!(kept.len(), 10);

        // A host's books are capped by default.
        let book = LogBook::new(DEFAULT_LOG_CAPACITY, None);
        for _ in 0..DEFAULT_LOG_CAPACITY {
            book.push("z".repeat(MAX_LINE));
        }
        let bytes: usize = book.snapshot().iter().map(String::len).sum();
        assert!(bytes <= MAX_KEPT_BYTES, "{bytes} bytes kept");
    }
}
