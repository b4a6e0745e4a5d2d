//! Guest stdout/stderr capture and the host's bounded in-memory logs.

use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How many guest log lines (and access-log lines) a host keeps by default; older ones
/// are dropped.
pub const DEFAULT_LOG_CAPACITY: usize = 10_000;

/// Longest line kept; a longer unterminated run is cut into pieces of this size.
const MAX_LINE: usize = 64 * 1024;

/// A bounded list of log lines, optionally echoed to the host's stderr with a prefix.
pub(crate) struct LogBook {
    lines: Mutex<VecDeque<String>>,
    capacity: usize,
    echo_prefix: Option<String>,
}

impl LogBook {
    pub(crate) fn new(capacity: usize, echo_prefix: Option<String>) -> Self {
        Self {
            lines: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            echo_prefix,
        }
    }

    pub(crate) fn push(&self, line: String) {
        if let Some(prefix) = &self.echo_prefix {
            echo(format!("{prefix}{line}"));
        }
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    pub(crate) fn snapshot(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        lines.iter().cloned().collect()
    }

    pub(crate) fn clear(&self) {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Writes `line` to stderr from one writer thread: lines that arrive while it writes
/// go out together in one `write`, instead of one unbuffered `write` per line on the
/// request path (measured: 4–5% of the server's CPU under load). Lines keep their order;
/// the writer flushes whenever it has nothing more queued.
fn echo(line: String) {
    static WRITER: OnceLock<Option<Sender<String>>> = OnceLock::new();
    let writer = WRITER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::Builder::new()
            .name("log-echo".into())
            .spawn(move || {
                let mut out = io::BufWriter::with_capacity(64 * 1024, io::stderr());
                while let Ok(line) = rx.recv() {
                    let _ = writeln!(out, "{line}");
                    while let Ok(line) = rx.try_recv() {
                        let _ = writeln!(out, "{line}");
                    }
                    let _ = out.flush();
                }
            })
            .ok()
            .map(|_| tx)
    });
    match writer {
        Some(tx) => {
            if let Err(mpsc::SendError(line)) = tx.send(line) {
                eprintln!("{line}");
            }
        }
        None => eprintln!("{line}"),
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
}
