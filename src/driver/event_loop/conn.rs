//! One connection as the loop sees it: a non-blocking socket, its session, and
//! what the socket last said about its readiness.
//!
//! mio registers sockets edge-triggered: an event means "became ready", once.
//! So a connection remembers `readable` and `writable` (an event said so, and no
//! `WouldBlock` since), and [`flush`](Conn::flush) and [`fill`](Conn::fill) go
//! on until the socket says `WouldBlock`, or, reading plaintext, until a read
//! returns less than it asked for: that also says the socket is drained
//! (epoll(7)), and saves the read that would only say `WouldBlock`, one of
//! the four system calls a small request costs. Not once the peer has closed
//! its side, though: its FIN may wait behind those bytes, and having arrived
//! already, it brings no new event. Stopping for any other reason (the
//! turn's budget, backpressure) means the loop must come back on its own:
//! nothing will wake it for those bytes.

use std::io::{self, Read as _};
use std::net::Shutdown;
use std::time::Instant;

use mio::Interest;
use mio::net::TcpStream;

use super::buffers::BufferPool;
use crate::driver::proxy_protocol::{self, Taken};
use crate::driver::tls::{Filled, Tls};
use crate::driver::transmit::write_once;
use crate::http::Now;
use crate::session::Session;
use crate::stats::Phase;

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
    pub session: Session,
    /// Tells this connection's timers apart from a later one's in the same slot.
    pub serial: u64,
    /// Ready to read: an event said so and no read has hit `WouldBlock` since.
    pub readable: bool,
    /// An event said the peer closed its side (or the socket failed): the end
    /// waits behind whatever bytes are left, so a short read proves nothing.
    pub read_closed: bool,
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
    /// Its TLS, when its listener speaks HTTPS.
    pub tls: Option<Box<Tls>>,
    /// A bug panicked in this connection's work; it is answering 500 and closing.
    pub panicked: bool,
    /// What the status page last counted it as doing.
    pub phase: Phase,
    /// Its first bytes must be a PROXY header (`--proxy-protocol`), not yet
    /// taken.
    pub awaiting_proxy_header: bool,
}

impl Conn {
    /// Writes what the session has queued (through TLS, if the connection
    /// speaks it) until the socket would block, nothing is left, or the budget
    /// is spent; true if it wrote anything.
    pub(super) fn flush(
        &mut self,
        now: Now<'_>,
        budget: &mut Budget,
        scratch: &mut Vec<u8>,
    ) -> bool {
        let key = self.key;
        let mut wrote = false;
        // Not once the session is closed: after a failed write, TLS may
        // still hold ciphertext that will never go, and trying again would
        // spin here forever.
        while self.writable && self.has_bytes_to_send() && !self.session.is_closed() {
            if budget.bytes == 0 {
                budget.spent = true;
                break;
            }
            match self.write_some(now, scratch) {
                Ok(0) => break,
                Ok(n) => {
                    budget.bytes = budget.bytes.saturating_sub(n);
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
            if let Some(tls) = self.tls.as_deref_mut() {
                tls.close_notify(&mut self.socket);
            }
            let _ = self.socket.shutdown(Shutdown::Write);
        }
        wrote
    }

    /// One write: of plaintext, a `writev` or a `sendfile`; through TLS,
    /// ciphertext until the socket blocks (reported as `WouldBlock` once
    /// nothing more went). Returns the bytes written.
    fn write_some(&mut self, now: Now<'_>, scratch: &mut Vec<u8>) -> io::Result<usize> {
        let key = self.key;
        let Some(tls) = self.tls.as_deref_mut() else {
            let written = write_once(&mut self.socket, &self.session, scratch)?;
            log::trace!("#{key}: {written}");
            self.session.written(written.bytes, now);
            return Ok(written.bytes);
        };
        let flushed = tls.flush(&mut self.socket, &mut self.session, scratch, now)?;
        if flushed.sent > 0 {
            log::trace!("#{key}: wrote {} bytes of TLS", flushed.sent);
        }
        match (flushed.sent, flushed.blocked) {
            (_, false) | (1.., true) => Ok(flushed.sent),
            (0, true) => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Reads while the socket is readable (or TLS holds plaintext already
    /// read) and the session wants bytes, until `WouldBlock` or the budget is
    /// spent; true if a read happened (bytes, EOF, an error: each is worth
    /// another look at the connection).
    pub(super) fn fill(
        &mut self,
        now: Now<'_>,
        budget: &mut Budget,
        pool: &mut BufferPool,
    ) -> bool {
        let key = self.key;
        let mut read = false;
        while (self.readable || self.tls_holds_plaintext()) && self.wants_read() {
            if budget.reads == 0 {
                budget.spent = true;
                break;
            }
            if self.session.needs_buffer() {
                self.session.lend_buffer(pool.take());
            }
            match self.read_some(now) {
                Ok(Read::Bytes(n)) => {
                    log::trace!("#{key}: read {n} bytes");
                    budget.reads -= 1;
                }
                Ok(Read::Drained(n)) => {
                    // Less than asked: the socket held no more. Bytes that
                    // arrive from now on are a new edge, and a new event.
                    log::trace!("#{key}: read {n} bytes, drained");
                    budget.reads -= 1;
                    self.readable = false;
                }
                Ok(Read::Eof) => {
                    log::trace!("#{key}: read EOF");
                    self.readable = false;
                }
                Ok(Read::Nothing) => break,
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
            if self.has_bytes_to_send() && self.writable {
                break;
            }
        }
        read
    }

    /// One read: of plaintext, into the session's buffer; through TLS, of
    /// ciphertext, decrypted into it (or plaintext TLS already held).
    fn read_some(&mut self, now: Now<'_>) -> io::Result<Read> {
        let Some(tls) = self.tls.as_deref_mut() else {
            let room = self.session.read_buffer();
            let asked = room.len();
            let n = self.socket.read(room)?;
            if n == 0 {
                self.session.received_eof(now);
                return Ok(Read::Eof);
            }
            self.session.received(n, now);
            return Ok(if n < asked && !self.read_closed {
                Read::Drained(n)
            } else {
                Read::Bytes(n)
            });
        };
        Ok(
            match tls.fill(self.key, &mut self.socket, &mut self.session, now)? {
                Filled::Read(n) => Read::Bytes(n),
                Filled::Plaintext => Read::Bytes(0),
                Filled::Eof => Read::Eof,
                Filled::NotWanted => Read::Nothing,
            },
        )
    }

    /// Whether the session has output, or TLS has ciphertext (a handshake
    /// message, an alert) waiting; the session's output waits for the end of
    /// the handshake.
    fn has_bytes_to_send(&self) -> bool {
        match self.tls.as_deref() {
            Some(tls) => tls.has_bytes_to_send(&self.session),
            None => self.session.has_output(),
        }
    }

    /// Whether the socket should be read: the session wants bytes, or a TLS
    /// handshake does.
    fn wants_read(&self) -> bool {
        match self.tls.as_deref() {
            Some(tls) => tls.wants_read(&self.session),
            None => self.session.wants_read() && !self.session.is_closed(),
        }
    }

    fn tls_holds_plaintext(&mut self) -> bool {
        self.tls.as_deref_mut().is_some_and(Tls::holds_plaintext)
    }

    /// Takes the PROXY header off the socket, if one is still owed: true once
    /// the session may have the socket. Until then it waits for the header's
    /// bytes (the session's idle deadline bounds the wait); without a valid
    /// header, or with one naming a client the limits deny, the connection
    /// is aborted.
    pub(super) fn take_proxy_header(&mut self, now: Now<'_>) -> bool {
        if !self.awaiting_proxy_header {
            return true;
        }
        let key = self.key;
        while self.readable {
            match proxy_protocol::take_without_blocking(&mut self.socket) {
                Ok(Taken::Done(client)) => {
                    self.awaiting_proxy_header = false;
                    if let Some(client) = client {
                        log::trace!("#{key}: PROXY header: the client is {client}");
                        self.session.set_client(client.ip());
                    }
                    // The client is known now: the limits decide.
                    let admitted = self.session.admit(now);
                    if !admitted {
                        log::debug!("#{key}: {} is denied: closed", self.session.client());
                    }
                    return admitted;
                }
                // Part of it has come: the rest will make the socket readable.
                Ok(Taken::Waiting) => self.readable = false,
                Ok(Taken::Refused(why)) => {
                    log::debug!("#{key}: {why} from {}: closed", self.session.client());
                    self.session.abort();
                    return false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("#{key}: reading the PROXY header: {e}");
                    self.session.abort();
                    return false;
                }
            }
        }
        false
    }

    /// What it is doing now, for the status page.
    pub(super) fn phase(&self) -> Phase {
        match &self.tls {
            Some(tls) if tls.is_handshaking() => Phase::Handshake,
            _ => self.session.phase(),
        }
    }

    /// The interest to register: WRITABLE only while the socket has refused
    /// bytes we still hold, so a connection whose responses fit in the socket
    /// buffer never costs an `epoll_ctl`.
    pub(super) fn wanted_interest(&self) -> Interest {
        if self.has_bytes_to_send() && !self.writable {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Before the socket is closed: a TLS connection says goodbye.
    pub(super) fn close_notify(&mut self) {
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.close_notify(&mut self.socket);
        }
    }
}

/// What one read did.
enum Read {
    /// Bytes came (through TLS, 0 means plaintext TLS already held).
    Bytes(usize),
    /// Fewer bytes than there was room for: the socket is drained.
    Drained(usize),
    /// The client closed its side.
    Eof,
    /// Nothing was wanted.
    Nothing,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each idle connection costs the loop, struct by struct: its slab
    /// entry is a `Conn`, holding its `Session`, holding its `Connection`;
    /// everything a connection needs only at work is boxed away while it is
    /// idle. The harness measures the whole (about 300 bytes of RSS per idle
    /// connection at 10,000, docs/benchmarks.md); a change that grows one of
    /// these past its bound should say why. (272 to 280: the session holds
    /// its client's slot in the per-client limits, four bytes and a tag.)
    #[test]
    fn an_idle_connection_stays_small() {
        use std::mem::size_of;
        let sizes = [
            ("Conn", size_of::<Conn>(), 280),
            ("Session", size_of::<Session>(), 208),
            ("Connection", size_of::<crate::http::Connection>(), 144),
        ];
        for (name, size, bound) in sizes {
            println!("{name}: {size} bytes (at most {bound})");
            assert!(size <= bound, "{name} is {size} bytes, over {bound}");
        }
    }
}
