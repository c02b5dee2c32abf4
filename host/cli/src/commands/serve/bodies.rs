//! Request bodies: read whole within a size limit and the read timeout, or
//! refused; and, when a request is answered before its body has arrived
//! (413, 401, 404, 503...), read to its end and thrown away for a while.
//!
//! Why the lingering read: many clients (Python's `urllib`, `requests`)
//! send their whole body before they read the answer. A server that answers
//! early and closes leaves the body's rest unread, and the kernel then
//! resets the connection, so the client sees `Broken pipe` or `Connection
//! reset` instead of the answer. So the rest is read and discarded, up to
//! [`LINGER_FACTOR`] times the body limit and within the read timeout, and
//! only then is the connection closed. A body whose declared length is over
//! the limit is refused before any of it is read (and before it takes a
//! place in the queue); a client that asked `Expect: 100-continue` is told
//! 413 instead of being invited to send it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};

/// How much more than the body limit is read and discarded after an early answer.
pub const LINGER_FACTOR: u64 = 4;
/// The least that is read and discarded after an early answer.
const LINGER_AT_LEAST: u64 = 4 << 20;

/// Why a body was not read whole.
#[derive(Debug, PartialEq, Eq)]
pub enum Unread {
    /// It is (or is declared) longer than the limit.
    TooLarge,
    /// It did not arrive within the read timeout.
    TimedOut,
    /// The connection broke, or the framing was invalid.
    Broken,
}

/// Whether the body's declared length is over `limit`: refused before it is read.
pub fn declared_over(body: &Incoming, limit: usize) -> bool {
    body.size_hint().lower() > limit as u64
}

/// Reads `body` whole, within `limit` bytes and `timeout`. It is copied
/// once into a buffer of its declared length (or grown as it arrives), so
/// memory is the body and one frame.
pub async fn read(body: &mut Incoming, limit: usize, timeout: Duration) -> Result<Bytes, Unread> {
    if declared_over(body, limit) {
        return Err(Unread::TooLarge);
    }
    let declared = body.size_hint().exact().map_or(0, |length| length as usize);
    let mut bytes = Vec::with_capacity(declared.min(limit));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(Unread::TimedOut),
            Ok(None) => return Ok(Bytes::from(bytes)),
            Ok(Some(Err(_))) => return Err(Unread::Broken),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(Unread::TooLarge);
            }
            bytes.extend_from_slice(&data);
        }
    }
}

/// Reads what is left of `body` and throws it away, in the background: up
/// to [`LINGER_FACTOR`] times `limit` (at least 4 MiB) within `timeout`.
/// The connection stays open meanwhile, so the client can finish sending
/// and read the answer; then it closes (or, if the whole body was read,
/// carries on).
pub fn linger(mut body: Incoming, limit: usize, timeout: Duration) {
    if body.is_end_stream() {
        return;
    }
    let most = (limit as u64).saturating_mul(LINGER_FACTOR).max(LINGER_AT_LEAST);
    tokio::spawn(async move {
        let mut discarded = 0_u64;
        let _ = tokio::time::timeout(timeout, async {
            while let Some(Ok(frame)) = body.frame().await {
                discarded += frame.data_ref().map_or(0, |data| data.len() as u64);
                if discarded > most {
                    return;
                }
            }
        })
        .await;
    });
}
