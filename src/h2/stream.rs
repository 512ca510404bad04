//! One stream of an HTTP/2 connection (RFC 9113 section 5.1), as the server
//! sees it: a stream is made by the peer's HEADERS and lives until both
//! sides have ended it (or one reset it), so only the two "half-closed"
//! flags are needed to tell open, half-closed (remote), half-closed (local)
//! and closed apart; an idle stream is one not made yet (its id above the
//! last one seen), and a closed one is no longer in the table.
//!
//! A stream answered before its request body ended (a 405 to a POST, a 413)
//! stays half-closed (local) while the rest of the body arrives: its frames
//! are still checked (content-length, trailers, windows), their bytes
//! dropped, up to [`DRAIN_ALLOWANCE`]; past that, or past the body timeout,
//! it is reset with NO_ERROR, as section 8.1 allows.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::http::Chunk;

/// Bytes of a request body nobody reads that a stream drains before it is
/// reset: enough for a form or a small upload the answer refused, so the
/// client ends the request as it meant to; a large one is stopped.
pub(super) const DRAIN_ALLOWANCE: u64 = 64 * 1024;

#[derive(Debug)]
pub(super) struct Stream {
    /// The exchange the application and the access log know it by.
    pub exchange: u64,
    /// The peer sent END_STREAM: half-closed (remote).
    pub remote_ended: bool,
    /// Every frame of the response is queued: half-closed (local).
    pub local_ended: bool,
    /// The application asked for the request body and has not answered.
    pub wants_body: bool,
    pub answered: bool,
    pub is_head: bool,
    /// What the DATA frames must add up to, when the request said.
    pub content_length: Option<u64>,
    /// Body bytes received so far.
    pub received: u64,
    /// Body bytes nobody reads that may still be dropped before the stream
    /// is reset ([`DRAIN_ALLOWANCE`] at first).
    pub drain_left: u64,
    /// What the peer may still send on this stream before a WINDOW_UPDATE.
    pub recv_window: i64,
    /// Bytes the application took since the last WINDOW_UPDATE we sent.
    pub recv_unacked: u32,
    /// What we may still send on this stream.
    pub send_window: i64,
    /// The response body not yet framed, and its length.
    pub pending: VecDeque<Chunk>,
    pub pending_len: u64,
    /// The response body's length, and how much of it is framed.
    pub body_len: u64,
    pub sent: u64,
    /// Waiting in the connection's queue of streams to frame.
    pub scheduled: bool,
}

impl Stream {
    pub(super) fn new(exchange: u64, recv_window: i64, send_window: i64) -> Stream {
        Stream {
            exchange,
            remote_ended: false,
            local_ended: false,
            wants_body: false,
            answered: false,
            is_head: false,
            content_length: None,
            received: 0,
            drain_left: DRAIN_ALLOWANCE,
            recv_window,
            recv_unacked: 0,
            send_window,
            pending: VecDeque::new(),
            pending_len: 0,
            body_len: 0,
            sent: 0,
            scheduled: false,
        }
    }

    /// Whether the application is reading a body that has not ended.
    pub(super) fn reading(&self) -> bool {
        self.wants_body && !self.remote_ended
    }

    /// Whether the response is all queued and the request body still
    /// arriving, for nobody: half-closed (local).
    pub(super) fn draining(&self) -> bool {
        self.local_ended && !self.remote_ended
    }

    /// Whether it waits for the peer's bytes (the body timeout's concern).
    pub(super) fn awaits_input(&self) -> bool {
        self.reading() || self.draining()
    }

    /// Whether its next DATA frame waits for nothing but the connection.
    pub(super) fn can_send(&self) -> bool {
        self.send_window > 0 && self.pending_len > 0
    }

    /// Queues the response body. Bytes larger than a frame become shared
    /// bytes, so that cutting frames from them copies nothing.
    pub(super) fn set_body(&mut self, chunks: Vec<Chunk>, frame_size: usize) {
        for chunk in chunks {
            let chunk = match chunk {
                Chunk::Bytes(bytes) if bytes.len() > frame_size => {
                    let range = 0..bytes.len();
                    Chunk::Shared {
                        data: Arc::from(bytes),
                        range,
                    }
                }
                other => other,
            };
            self.pending_len += chunk.len();
            self.pending.push_back(chunk);
        }
        self.body_len = self.pending_len;
    }

    /// Takes the next `n` bytes of the body, as the chunks (or parts of
    /// chunks) that hold them, for one DATA frame.
    pub(super) fn take(&mut self, mut n: u64, into: &mut impl FnMut(Chunk)) {
        self.pending_len -= n.min(self.pending_len);
        self.sent += n;
        while n > 0 {
            let Some(chunk) = self.pending.front_mut() else {
                return;
            };
            let len = chunk.len();
            if len <= n {
                n -= len;
                if let Some(whole) = self.pending.pop_front() {
                    into(whole);
                }
                continue;
            }
            let part = n as usize;
            match chunk {
                Chunk::Bytes(bytes) => into(Chunk::Bytes(bytes.drain(..part).collect())),
                Chunk::Shared { data, range } => {
                    let start = range.start;
                    range.start += part;
                    into(Chunk::Shared {
                        data: Arc::clone(data),
                        range: start..start + part,
                    });
                }
                Chunk::File { file, offset, len } => {
                    into(Chunk::File {
                        file: Arc::clone(file),
                        offset: *offset,
                        len: n,
                    });
                    *offset += n;
                    *len -= n;
                }
            }
            n = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(chunk: &Chunk) -> Vec<u8> {
        match chunk {
            Chunk::Bytes(bytes) => bytes.clone(),
            Chunk::Shared { data, range } => data[range.clone()].to_vec(),
            Chunk::File { .. } => panic!("no file here"),
        }
    }

    #[test]
    fn frames_are_cut_across_chunks_in_order() {
        let mut stream = Stream::new(1, 0, 0);
        let big: Vec<u8> = (0..=255u8).cycle().take(40).collect();
        stream.set_body(
            vec![Chunk::Bytes(b"abc".to_vec()), Chunk::Bytes(big.clone())],
            16,
        );
        assert_eq!(stream.pending_len, 43);
        assert!(matches!(stream.pending[1], Chunk::Shared { .. }));
        let mut out = Vec::new();
        for n in [2, 10, 31] {
            stream.take(n, &mut |chunk| out.extend(bytes(&chunk)));
        }
        let mut expected = b"abc".to_vec();
        expected.extend(big);
        assert_eq!(out, expected);
        assert_eq!(stream.pending_len, 0);
        assert_eq!(stream.sent, 43);
        assert!(stream.pending.is_empty());
    }
}
