//! One connection as the loop sees it: a non-blocking socket, its session, and
//! what the socket last said about its readiness.
//!
//! mio registers sockets edge-triggered: an event means "became ready", once.
//! So a connection remembers `readable` and `writable` (an event said so, and no
//! `WouldBlock` since), and [`flush`](Conn::flush) and [`fill`](Conn::fill) go
//! on until the socket says `WouldBlock`. Stopping for any other reason (the
//! turn's budget, backpressure) means the loop must come back on its own:
//! nothing will wake it for those bytes.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::time::Instant;

use mio::Interest;
use mio::net::TcpStream;

use super::buffers::BufferPool;
use crate::driver::transmit::write_once;
use crate::http::Now;
use crate::session::Session;

/// Reads one connection may do in one turn before others get theirs.
const READS_PER_TURN: usize = 16;
/// Bytes one connection may write in one turn before others get theirs.
const WRITE_BYTES_PER_TURN: usize = 4 << 20;

/// A connection's share of one loop turn: after it, the connection waits for
/// the next turn so that one fast client cannot starve the others.
#[derive(Debug)]
pub(super) struct Budget {
    reads: usize,
    bytes: usize,
    spent: bool,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            reads: READS_PER_TURN,
            bytes: WRITE_BYTES_PER_TURN,
            spent: false,
        }
    }
}

impl Budget {
    /// Whether the connection stopped with work left (it goes on the loop's
    /// `again` list).
    pub(super) fn is_spent(&self) -> bool {
        self.spent
    }
}

pub(super) struct Conn {
    /// The driver's name for the connection: its slab key and mio token.
    pub key: usize,
    pub socket: TcpStream,
    pub peer: SocketAddr,
    pub session: Session,
    /// Tells this connection's timers apart from a later one's in the same slot.
    pub serial: u64,
    /// Ready to read: an event said so and no read has hit `WouldBlock` since.
    pub readable: bool,
    /// Ready to write, likewise.
    pub writable: bool,
    /// The interest currently registered with the poll.
    pub interest: Interest,
    /// The deadline this connection has a timer armed for.
    pub timer: Option<Instant>,
    /// Its timer fired: its next turn starts by handing the session the time.
    pub timer_fired: bool,
    /// The server is shutting down: its next turn starts by draining it.
    pub drain: bool,
    /// A bug panicked in this connection's work; it is answering 500 and closing.
    pub panicked: bool,
}

impl Conn {
    /// Writes what the session has queued until the socket would block, the
    /// queue is empty, or the budget is spent; true if it wrote anything.
    pub(super) fn flush(
        &mut self,
        now: Now<'_>,
        budget: &mut Budget,
        scratch: &mut Vec<u8>,
    ) -> bool {
        let key = self.key;
        let mut wrote = false;
        while self.writable && self.session.has_output() {
            if budget.bytes == 0 {
                budget.spent = true;
                break;
            }
            match write_once(&mut self.socket, &self.session, scratch) {
                Ok(written) => {
                    log::trace!("#{key}: {written}");
                    budget.bytes = budget.bytes.saturating_sub(written.bytes);
                    self.session.written(written.bytes, now);
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The socket buffer is full: WRITABLE interest will say when
                    // it has room again.
                    log::trace!("#{key}: write would block");
                    self.writable = false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("#{key}: write: {e}");
                    self.session.abort();
                }
            }
        }
        if self.session.take_shutdown_request() {
            // Our last response is out; tell the client we are done, and
            // linger reading whatever it still sends.
            log::trace!("#{key}: shutdown(write), lingering");
            let _ = self.socket.shutdown(Shutdown::Write);
        }
        wrote
    }

    /// Reads while the socket is readable and the session wants bytes, until
    /// `WouldBlock` or the budget is spent; true if a read happened (bytes,
    /// EOF, an error: each is worth another look at the connection).
    pub(super) fn fill(
        &mut self,
        now: Now<'_>,
        budget: &mut Budget,
        pool: &mut BufferPool,
    ) -> bool {
        let key = self.key;
        let mut read = false;
        while self.readable && self.session.wants_read() && !self.session.is_closed() {
            if budget.reads == 0 {
                budget.spent = true;
                break;
            }
            if self.session.needs_buffer() {
                self.session.lend_buffer(pool.take());
            }
            match self.socket.read(self.session.read_buffer()) {
                Ok(0) => {
                    log::trace!("#{key}: read EOF");
                    self.readable = false;
                    self.session.received_eof(now);
                }
                Ok(n) => {
                    log::trace!("#{key}: read {n} bytes");
                    budget.reads -= 1;
                    self.session.received(n, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Drained: the next READABLE event says when more arrives.
                    log::trace!("#{key}: read would block");
                    self.readable = false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::debug!("#{key}: read: {e}");
                    self.session.abort();
                }
            }
            read = true;
            // What was read may have queued responses: write them before
            // reading more, so a pipelining client is answered as it sends.
            if self.session.has_output() && self.writable {
                break;
            }
        }
        read
    }

    /// The interest to register: WRITABLE only while the socket has refused
    /// output the session still holds, so a connection whose responses fit in
    /// the socket buffer never costs an `epoll_ctl`.
    pub(super) fn wanted_interest(&self) -> Interest {
        if self.session.has_output() && !self.writable {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }
}
