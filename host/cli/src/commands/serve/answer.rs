//! Answers: a response body handed to the client in pieces, each piece a
//! step of its connection ([`connections`](super::connections)).
//!
//! The body holds what its request holds until the client has taken it
//! all: its place in the queue (so memory in answers still waiting for a
//! slow client stays within the queue's bound) and its request's steps (so
//! a client that stops reading is closed after the read timeout). A batch's
//! answer is streamed: its next chunk is decided while the client takes
//! this one, and waiting for it is the server's time, not the client's.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use super::connections::RequestSteps;
use super::limits::Ticket;

/// The largest piece handed over at once: what must be taken within the
/// read timeout of the piece before.
const PIECE_BYTES: usize = 16 << 10;

/// A response whose body is an [`AnswerBody`].
pub type Answer = hyper::Response<AnswerBody>;

/// A streamed answer was cut short: what follows could not be given (its
/// receipts could not be written). The client sees an incomplete answer.
#[derive(Debug)]
pub struct Cut(pub String);

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the answer was cut short: {}", self.0)
    }
}

impl std::error::Error for Cut {}

/// The body of an answer: bytes at hand, and, for a streamed batch, the
/// chunks still to come.
pub struct AnswerBody {
    pending: Bytes,
    rest: Option<mpsc::Receiver<Result<Bytes, Cut>>>,
    steps: Option<RequestSteps>,
    _ticket: Option<Ticket>,
}

impl AnswerBody {
    /// A body of these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> AnswerBody {
        AnswerBody { pending: bytes.into(), rest: None, steps: None, _ticket: None }
    }

    /// A body of `first`, then of whatever arrives on `rest` until it closes.
    pub fn streamed(first: Bytes, rest: mpsc::Receiver<Result<Bytes, Cut>>) -> AnswerBody {
        AnswerBody { pending: first, rest: Some(rest), steps: None, _ticket: None }
    }

    /// Holds the request's place in the queue until the answer is taken.
    pub fn holding(mut self, ticket: Ticket) -> AnswerBody {
        self._ticket = Some(ticket);
        self
    }

    /// Records the client's taking of this answer as its request's steps.
    pub fn watched(mut self, steps: RequestSteps) -> AnswerBody {
        steps.answering();
        self.steps = Some(steps);
        self
    }
}

impl Body for AnswerBody {
    type Data = Bytes;
    type Error = Cut;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Cut>>> {
        let this = &mut *self;
        loop {
            if !this.pending.is_empty() {
                let piece = this.pending.split_to(this.pending.len().min(PIECE_BYTES));
                if let Some(steps) = &this.steps {
                    steps.answering();
                }
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            let Some(rest) = &mut this.rest else { return Poll::Ready(None) };
            match rest.poll_recv(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.pending = chunk,
                Poll::Ready(Some(Err(cut))) => {
                    this.rest = None;
                    return Poll::Ready(Some(Err(cut)));
                }
                Poll::Ready(None) => {
                    this.rest = None;
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    // The next chunk is being decided: the server's time.
                    if let Some(steps) = &this.steps {
                        steps.deciding();
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.rest.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.rest {
            None => SizeHint::with_exact(self.pending.len() as u64),
            Some(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_body_comes_in_pieces_and_streams_to_its_end() {
        let whole = AnswerBody::full(vec![b'x'; 40 << 10]);
        assert_eq!(whole.size_hint().exact(), Some(40 << 10));
        let mut whole = whole;
        let mut sizes = Vec::new();
        while let Some(frame) = whole.frame().await {
            sizes.push(frame.unwrap().into_data().unwrap().len());
        }
        assert_eq!(sizes, [16 << 10, 16 << 10, 8 << 10]);

        let (sender, receiver) = mpsc::channel(1);
        let streamed = AnswerBody::streamed(Bytes::from_static(b"a\n"), receiver);
        assert_eq!(streamed.size_hint().exact(), None);
        tokio::spawn(async move {
            sender.send(Ok(Bytes::from_static(b"b\n"))).await.unwrap();
            sender.send(Err(Cut("receipts".into()))).await.unwrap();
        });
        let mut streamed = streamed;
        assert_eq!(streamed.frame().await.unwrap().unwrap().into_data().unwrap(), "a\n");
        assert_eq!(streamed.frame().await.unwrap().unwrap().into_data().unwrap(), "b\n");
        assert!(streamed.frame().await.unwrap().is_err(), "a cut ends it with an error");
        assert!(streamed.frame().await.is_none());
    }
}
