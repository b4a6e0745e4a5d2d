//! Reading a request's body whole, under deadlines and a shared byte budget, before the
//! request takes an instance slot: a client that sends its body slowly (or never) holds
//! its own connection and buffer, not one of the component's instances.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::limits::ServerLimits;

/// The budget is counted in KiB (a semaphore counts in `u32` steps).
const KIB: usize = 1024;

/// A body read whole (or cut one byte past the limit).
pub(crate) struct Buffered {
    pub(crate) bytes: Bytes,
    /// Not all of the body was read (it is larger than the limit): the connection
    /// cannot serve another request.
    pub(crate) cut: bool,
    /// This body's share of the byte budget, held until the request is answered.
    pub(crate) budget: Option<OwnedSemaphorePermit>,
}

/// Why a body was not read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// It did not arrive within the body deadline, or stalled between pieces.
    TimedOut,
    /// The shared budget of buffered bytes is spent.
    OverBudget,
    /// The client broke the body off (or sent a malformed one).
    Client,
}

/// The byte budget of a server's buffered bodies.
pub(crate) fn budget(limits: &ServerLimits) -> Arc<Semaphore> {
    let kib = (limits.max_buffered_bytes / KIB).min(Semaphore::MAX_PERMITS);
    Arc::new(Semaphore::new(kib))
}

/// Read `body` whole: it must end within `limits.body_timeout`, with no gap longer than
/// `limits.body_between_bytes`. A body declared (`Content-Length`) larger than
/// `limits.max_body` is not read at all (the component answers 413 from the header); a
/// longer one is cut one byte past the limit (the component answers 413 on reading it).
pub(crate) async fn read_whole(
    mut body: Incoming,
    declared: Option<u64>,
    limits: &ServerLimits,
    budget: &Arc<Semaphore>,
) -> Result<Buffered, BodyError> {
    let keep = limits.max_body.saturating_add(1);
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return Ok(Buffered {
            bytes: Bytes::new(),
            cut: true,
            budget: None,
        });
    }
    let deadline = Instant::now() + limits.body_timeout;
    let mut buf = BytesMut::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    let mut held_kib = 0usize;
    loop {
        let due = deadline.min(Instant::now() + limits.body_between_bytes);
        let frame = match tokio::time::timeout_at(due, body.frame()).await {
            Err(_) => return Err(BodyError::TimedOut),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(BodyError::Client),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers: nothing the component reads
        };
        let take = data.len().min(keep - buf.len());
        let need_kib = (buf.len() + take).div_ceil(KIB);
        if need_kib > held_kib {
            let more = u32::try_from(need_kib - held_kib).map_err(|_| BodyError::OverBudget)?;
            let permit = budget
                .clone()
                .try_acquire_many_owned(more)
                .map_err(|_| BodyError::OverBudget)?;
            match held.as_mut() {
                Some(held) => held.merge(permit),
                None => held = Some(permit),
            }
            held_kib = need_kib;
        }
        buf.extend_from_slice(&data[..take]);
        if buf.len() == keep {
            return Ok(Buffered {
                bytes: buf.freeze(),
                cut: true,
                budget: held,
            });
        }
    }
    Ok(Buffered {
        bytes: buf.freeze(),
        cut: false,
        budget: held,
    })
}
