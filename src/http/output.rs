//! The write queue: everything a connection has to send, in order, as segments.
//!
//! A segment is bytes in memory (response heads, small bodies, cached files) or a
//! range of an open file, which the driver hands to `sendfile(2)`. A 1 GiB file
//! therefore costs the queue one segment and the process no buffer, and a slow
//! reader costs its queue, not memory for every byte it has yet to read.
//!
//! The queue also remembers where each response ends in the byte stream, so that
//! the number of responses still in flight bounds pipelining (backpressure), and
//! so that whoever keeps accounts (the session, for the access log) learns when
//! each response has gone and how many of its body bytes really left.

use std::collections::VecDeque;
use std::fs::File;
use std::io::IoSlice;
use std::sync::Arc;

use super::response::Chunk;

/// Small writes are copied into the tail segment up to this size, so that a burst
/// of pipelined responses goes out in one `writev`.
const COALESCE_LIMIT: usize = 16 * 1024;

#[derive(Debug)]
enum Segment {
    Bytes {
        data: Vec<u8>,
        sent: usize,
    },
    /// Shared bytes, `data[sent..end]` still to go.
    Shared {
        data: Arc<[u8]>,
        sent: usize,
        end: usize,
    },
    File {
        file: Arc<File>,
        offset: u64,
        remaining: u64,
    },
}

impl Segment {
    fn unsent_in_memory(&self) -> usize {
        match self {
            Segment::Bytes { data, sent } => data.len() - sent,
            Segment::Shared { sent, end, .. } => end - sent,
            Segment::File { .. } => 0,
        }
    }
}

/// What the driver should send next.
pub(crate) enum Front<'a> {
    /// Nothing is queued.
    Empty,
    /// In-memory bytes in the first `count` slices: write them with `writev`.
    /// `file_follows` says a file range comes right after them, so the driver
    /// can ask the kernel to hold a short head back and send it with the
    /// file's first bytes (`MSG_MORE`) instead of in a packet of its own.
    Memory { count: usize, file_follows: bool },
    /// A file range: send it with `sendfile`.
    File {
        file: &'a File,
        offset: u64,
        len: u64,
    },
}

/// Where one queued response ends in the byte stream.
#[derive(Debug)]
struct InFlight {
    exchange: u64,
    body_start: u64,
    end: u64,
}

/// A response that left the queue, completely or (when the connection died) not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// The exchange it answered (numbered from 1 on each connection).
    pub exchange: u64,
    /// Body bytes that were written to the socket.
    pub body_bytes: u64,
    pub complete: bool,
}

#[derive(Debug)]
pub(crate) struct WriteQueue {
    segments: VecDeque<Segment>,
    /// Unsent bytes held in memory (file ranges are not counted: they are on disk).
    buffered: usize,
    /// Bytes handed to the socket over the connection's life.
    written: u64,
    /// Bytes queued over the connection's life.
    queued: u64,
    in_flight: VecDeque<InFlight>,
}

impl WriteQueue {
    pub(crate) const fn new() -> WriteQueue {
        WriteQueue {
            segments: VecDeque::new(),
            buffered: 0,
            written: 0,
            queued: 0,
            in_flight: VecDeque::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Unsent bytes held in memory.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Responses queued and not yet completely written.
    pub(crate) fn responses_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Total bytes written over the connection's life.
    #[cfg(test)]
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Queues bytes, copying them onto the tail segment when both are small.
    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() && !self.coalesce(bytes) {
            self.push_owned(bytes.to_vec());
        }
    }

    /// Queues an owned buffer: copied onto the tail when both are small, kept
    /// as a segment of its own (no copy) otherwise.
    pub(crate) fn push_vec(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        let small = bytes.len() <= COALESCE_LIMIT / 4;
        if !(small && self.coalesce(&bytes)) {
            self.push_owned(bytes);
        }
    }

    /// Appends `bytes` to the tail segment if it is in memory and the two fit
    /// under the coalescing limit; false if they were not appended.
    fn coalesce(&mut self, bytes: &[u8]) -> bool {
        let Some(Segment::Bytes { data, .. }) = self.segments.back_mut() else {
            return false;
        };
        if data.len() + bytes.len() > COALESCE_LIMIT {
            return false;
        }
        data.extend_from_slice(bytes);
        self.account(bytes.len());
        true
    }

    fn push_owned(&mut self, data: Vec<u8>) {
        self.account(data.len());
        self.segments.push_back(Segment::Bytes { data, sent: 0 });
    }

    /// Queues one body chunk.
    pub(crate) fn push_chunk(&mut self, chunk: Chunk) {
        match chunk {
            Chunk::Bytes(bytes) => self.push_vec(bytes),
            Chunk::Shared { data, range } if range.len() <= COALESCE_LIMIT / 4 => {
                self.push_bytes(&data[range]);
            }
            Chunk::Shared { data, range } => {
                self.account(range.len());
                self.segments.push_back(Segment::Shared {
                    data,
                    sent: range.start,
                    end: range.end,
                });
            }
            Chunk::File { file, offset, len } => {
                if len > 0 {
                    self.queued += len;
                    self.segments.push_back(Segment::File {
                        file,
                        offset,
                        remaining: len,
                    });
                }
            }
        }
    }

    fn account(&mut self, len: usize) {
        self.buffered += len;
        self.queued += len as u64;
    }

    /// Marks the end of the response to `exchange`, whose body began at stream
    /// offset `body_start`. A response with nothing to send (possible only for
    /// an empty one, which has at least a head, so never) would be delivered
    /// by the next write.
    pub(crate) fn end_response(&mut self, exchange: u64, body_start: u64) {
        self.in_flight.push_back(InFlight {
            exchange,
            body_start,
            end: self.queued,
        });
    }

    /// Marks the end of the response to `exchange`, whose body (`body_len`
    /// bytes) went out in frames between other streams' (HTTP/2): exact
    /// once delivered; cut short, its bytes count as if they were the last
    /// before its end.
    pub(crate) fn end_stream_response(&mut self, exchange: u64, body_len: u64) {
        let body_start = self.queued.saturating_sub(body_len);
        self.end_response(exchange, body_start);
    }

    /// Bytes queued and not yet written, file ranges included.
    pub(crate) fn unsent(&self) -> u64 {
        self.queued - self.written
    }

    /// Stream offset of the next byte to be queued.
    pub(crate) fn queued(&self) -> u64 {
        self.queued
    }

    /// Describes the front of the queue; for memory, fills `slices` with the
    /// leading in-memory segments (up to the first file range).
    pub(crate) fn front<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> Front<'a> {
        let mut filled = 0;
        let mut file_follows = false;
        for segment in &self.segments {
            if filled == slices.len() {
                break;
            }
            match segment {
                Segment::Bytes { data, sent } => slices[filled] = IoSlice::new(&data[*sent..]),
                Segment::Shared { data, sent, end } => {
                    slices[filled] = IoSlice::new(&data[*sent..*end]);
                }
                Segment::File {
                    file,
                    offset,
                    remaining,
                } => {
                    if filled == 0 {
                        return Front::File {
                            file,
                            offset: *offset,
                            len: *remaining,
                        };
                    }
                    file_follows = true;
                    break;
                }
            }
            filled += 1;
        }
        if filled == 0 {
            Front::Empty
        } else {
            Front::Memory {
                count: filled,
                file_follows,
            }
        }
    }

    /// Records that the driver wrote `n` bytes from the front, and reports each
    /// response whose last byte that wrote.
    pub(crate) fn advance(&mut self, mut n: usize, delivered: &mut impl FnMut(Delivered)) {
        self.written += n as u64;
        while n > 0 {
            let Some(front) = self.segments.front_mut() else {
                debug_assert!(false, "advanced past the end of the queue");
                break;
            };
            let in_memory_before = front.unsent_in_memory();
            let done = match front {
                Segment::Bytes { data, sent } => advance_slice(data.len(), sent, &mut n),
                Segment::Shared { sent, end, .. } => advance_slice(*end, sent, &mut n),
                Segment::File {
                    offset, remaining, ..
                } => {
                    let step = (*remaining).min(n as u64);
                    *offset += step;
                    *remaining -= step;
                    n -= step as usize;
                    *remaining == 0
                }
            };
            self.buffered -= in_memory_before - front.unsent_in_memory();
            if done {
                self.segments.pop_front();
            }
        }
        while let Some(first) = self.in_flight.front()
            && first.end <= self.written
        {
            if let Some(done) = self.in_flight.pop_front() {
                delivered(Delivered {
                    exchange: done.exchange,
                    body_bytes: done.end.saturating_sub(done.body_start),
                    complete: true,
                });
            }
        }
    }

    /// Gives up on everything still queued (the connection is going away) and
    /// reports the responses that were cut short.
    pub(crate) fn abandon(&mut self, delivered: &mut impl FnMut(Delivered)) {
        self.segments.clear();
        self.buffered = 0;
        for cut in self.in_flight.drain(..) {
            delivered(Delivered {
                exchange: cut.exchange,
                body_bytes: self.written.clamp(cut.body_start, cut.end) - cut.body_start,
                complete: false,
            });
        }
    }
}

/// Advances a byte segment's cursor; true when the segment is used up.
fn advance_slice(len: usize, sent: &mut usize, n: &mut usize) -> bool {
    let step = (len - *sent).min(*n);
    *sent += step;
    *n -= step;
    *sent == len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(_: Delivered) {}

    fn memory_front(queue: &WriteQueue) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); 8];
        match queue.front(&mut slices) {
            Front::Memory { count, .. } => slices[..count]
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect(),
            Front::Empty => Vec::new(),
            Front::File { .. } => panic!("file at the front"),
        }
    }

    #[test]
    fn small_writes_coalesce_into_one_segment() {
        let mut q = WriteQueue::new();
        q.push_bytes(b"HTTP/1.1 200 OK\r\n\r\n");
        q.push_vec(b"abc".to_vec());
        q.push_bytes(b"HTTP/1.1 404 Not Found\r\n\r\n");
        assert_eq!(q.segments.len(), 1);
        assert_eq!(q.buffered_bytes(), 19 + 3 + 26);
    }

    #[test]
    fn advancing_consumes_in_order_and_tracks_memory() {
        let mut q = WriteQueue::new();
        q.push_vec(vec![b'a'; COALESCE_LIMIT]);
        q.push_chunk(Chunk::Shared {
            data: Arc::from(vec![b'b'; COALESCE_LIMIT + 2]),
            range: 1..COALESCE_LIMIT + 1,
        });
        assert_eq!(q.buffered_bytes(), 2 * COALESCE_LIMIT);
        q.advance(COALESCE_LIMIT - 1, &mut ignore);
        assert_eq!(memory_front(&q).len(), 1 + COALESCE_LIMIT);
        q.advance(2, &mut ignore);
        assert_eq!(q.buffered_bytes(), COALESCE_LIMIT - 1);
        q.advance(COALESCE_LIMIT - 1, &mut ignore);
        assert!(q.is_empty());
        assert_eq!(q.buffered_bytes(), 0);
        assert_eq!(q.written(), 2 * COALESCE_LIMIT as u64);
    }

    #[test]
    fn responses_are_delivered_when_their_last_byte_is_written() {
        let mut q = WriteQueue::new();
        q.push_bytes(b"head1");
        let start = q.queued();
        q.push_bytes(b"body1");
        q.end_response(1, start);
        q.push_bytes(b"head2");
        let start = q.queued();
        q.push_bytes(b"body-two");
        q.end_response(2, start);
        assert_eq!(q.responses_in_flight(), 2);
        let mut delivered = Vec::new();
        q.advance(9, &mut |d| delivered.push(d));
        assert!(delivered.is_empty());
        q.advance(1, &mut |d| delivered.push(d));
        assert_eq!(
            delivered,
            vec![Delivered {
                exchange: 1,
                body_bytes: 5,
                complete: true
            }]
        );
        q.advance(8, &mut ignore);
        let mut cut = Vec::new();
        q.abandon(&mut |d| cut.push(d));
        assert_eq!(
            cut,
            vec![Delivered {
                exchange: 2,
                body_bytes: 3,
                complete: false
            }]
        );
    }

    #[test]
    fn file_ranges_go_to_the_front_alone() {
        let file = Arc::new(File::open("Cargo.toml").expect("Cargo.toml exists"));
        let mut q = WriteQueue::new();
        q.push_bytes(b"head");
        q.push_chunk(Chunk::File {
            file,
            offset: 10,
            len: 100,
        });
        q.push_bytes(b"tail");
        assert_eq!(memory_front(&q), b"head");
        let mut slices = [IoSlice::new(&[]); 8];
        assert!(matches!(
            q.front(&mut slices),
            Front::Memory {
                count: 1,
                file_follows: true
            }
        ));
        q.advance(4, &mut ignore);
        let file_front = |q: &WriteQueue| match q.front(&mut [IoSlice::new(&[]); 8]) {
            Front::File { offset, len, .. } => Some((offset, len)),
            _ => None,
        };
        assert_eq!(file_front(&q), Some((10, 100)));
        q.advance(60, &mut ignore);
        assert_eq!(file_front(&q), Some((70, 40)));
        q.advance(40, &mut ignore);
        assert_eq!(memory_front(&q), b"tail");
        assert_eq!(q.buffered_bytes(), 4);
    }
}
