//! One connection as the loop sees it: its transport (the socket, and TLS),
//! its session, and what the socket last said about its readiness. The loop
//! hands it a turn with the reason for it ([`Wake`]); the connection runs
//! the turn itself and says how it ended ([`Settled`]).
//!
//! mio registers sockets edge-triggered: an event means "became ready", once.
//! So a connection remembers `readable` and `writable` (an event said so, and
//! no `WouldBlock` since), and [`flush`](Conn::flush) and [`fill`](Conn::fill)
//! go on until the socket says `WouldBlock`, or, reading plaintext, until a
//! read returns less than it asked for: that also says the socket is drained
//! (epoll(7)), and saves the read that would only say `WouldBlock`, one of
//! the four system calls a small request costs. Not once the peer has closed
//! its side, though: its FIN may wait behind those bytes, and having arrived
//! already, it brings no new event. Stopping for any other reason (the
//! turn's budget, backpressure) means the loop must come back on its own:
//! nothing will wake it for those bytes.

use std::io;
use std::net::IpAddr;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::buffers::BufferPool;
use crate::access_log::Entry;
use crate::driver::clock::TurnTime;
use crate::driver::proxy_protocol::{self, Taken};
use crate::driver::transport::{Received, Transport};
use crate::http::Now;
use crate::session::Session;
use crate::stats::Phase;
use crate::stats::live::ConnView;

/// Reads one connection may do in one turn before others get theirs.
const READS_PER_TURN: usize = 16;
/// Bytes one connection may write in one turn before others get theirs.
const WRITE_BYTES_PER_TURN: usize = 4 << 20;

/// Why a connection gets a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wake {
    /// It was just accepted.
    Accepted,
    /// A readiness event.
    Ready(Readiness),
    /// Its deadline has come.
    Deadline,
    /// The server is shutting down.
    Shutdown,
    /// It ran out of its share of the last turn with work left.
    OutOfBudget,
}

/// What a readiness event said, or what the connection knows of its socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Readiness {
    /// Ready to read: an event said so and no read has hit `WouldBlock` since.
    pub(super) readable: bool,
    /// The peer closed its side (or the socket failed): the end waits behind
    /// whatever bytes are left, so a short read proves nothing.
    pub(super) read_closed: bool,
    /// Ready to write, likewise.
    pub(super) writable: bool,
}

impl Readiness {
    /// What an event says. A hang-up or an error is reported by the next read
    /// or write, so both count as readiness.
    pub(super) fn of(event: &mio::event::Event) -> Readiness {
        let failed = event.is_error();
        Readiness {
            readable: event.is_readable() || event.is_read_closed() || failed,
            read_closed: event.is_read_closed() || failed,
            writable: event.is_writable() || event.is_write_closed() || failed,
        }
    }
}

/// How a turn ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Settled {
    /// The session is closed: the loop closes the socket.
    Closed,
    /// Still open; `again` when it stopped with work left (the loop drives it
    /// again this turn).
    Open { again: bool },
}

/// What the loop lends a connection for one turn.
pub(super) struct Lent<'a> {
    pub(super) now: Now<'a>,
    pub(super) buffers: &'a mut BufferPool,
    /// For the rare file that cannot be `sendfile`d, and TLS's file slices.
    pub(super) scratch: &'a mut Vec<u8>,
    pub(super) registry: &'a Registry,
}

/// A connection's share of one loop turn: after it, the connection waits for
/// the next turn so that one fast client cannot starve the others.
#[derive(Debug)]
struct Budget {
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

pub(super) struct Conn {
    /// The loop's name for the connection: its slab key and mio token.
    key: usize,
    /// Tells this connection's deadlines apart from a later one's in the
    /// same slot.
    serial: u64,
    transport: Transport<TcpStream>,
    session: Session,
    readiness: Readiness,
    /// The interest the poll has for it now.
    registered: Interest,
    /// The deadline armed in the loop's heap for it.
    armed: Option<Instant>,
    /// What the status page last counted it as doing.
    phase: Phase,
    /// Its first bytes must be a PROXY header (`--proxy-protocol`), not yet
    /// taken.
    proxy_header_owed: bool,
    /// A bug panicked in its work; it is answering 500 and closing.
    panicked: bool,
}

impl Conn {
    /// A connection just accepted and registered READABLE under `key`.
    pub(super) fn new(
        key: usize,
        serial: u64,
        transport: Transport<TcpStream>,
        session: Session,
        proxy_header_owed: bool,
    ) -> Conn {
        let phase = transport.first_phase();
        Conn {
            key,
            serial,
            transport,
            session,
            readiness: Readiness {
                writable: true,
                ..Readiness::default()
            },
            registered: Interest::READABLE,
            armed: None,
            phase,
            proxy_header_owed,
            panicked: false,
        }
    }

    pub(super) fn serial(&self) -> u64 {
        self.serial
    }

    pub(super) fn phase(&self) -> Phase {
        self.phase
    }

    /// One turn: the reason for it first (a readiness event noted, a deadline
    /// or a shutdown told to the session), then bytes moved both ways until
    /// neither moves or the budget is spent, then settled.
    pub(super) fn turn(&mut self, wake: Wake, lent: &mut Lent<'_>) -> Settled {
        match wake {
            Wake::Ready(event) => {
                self.readiness.readable |= event.readable;
                self.readiness.read_closed |= event.read_closed;
                self.readiness.writable |= event.writable;
            }
            Wake::Deadline => {
                log::trace!("#{}: deadline", self.key);
                self.session.on_deadline(lent.now);
            }
            Wake::Shutdown => self.session.drain(lent.now),
            Wake::Accepted | Wake::OutOfBudget => {}
        }
        let mut budget = Budget::default();
        if self.take_proxy_header(lent.now) {
            self.move_bytes(&mut budget, lent);
        }
        self.settle(budget.spent, lent)
    }

    /// Writes what is queued, reads what has come, and again while either
    /// moved anything: the session answers inside those calls, so what was
    /// read is answered (and written) before more is read.
    fn move_bytes(&mut self, budget: &mut Budget, lent: &mut Lent<'_>) {
        loop {
            let wrote = self.flush(budget, lent);
            let read = self.fill(budget, lent);
            if budget.spent || !(wrote || read) {
                return;
            }
        }
    }

    /// Writes until the socket would block, nothing is left, or the budget is
    /// spent; true if it wrote anything.
    fn flush(&mut self, budget: &mut Budget, lent: &mut Lent<'_>) -> bool {
        let key = self.key;
        let mut wrote = false;
        // Not once the session is closed: after a failed write, TLS may
        // still hold ciphertext that will never go, and trying again would
        // spin here forever.
        while self.readiness.writable
            && self.transport.has_bytes_to_send(&self.session)
            && !self.session.is_closed()
        {
            if budget.bytes == 0 {
                budget.spent = true;
                break;
            }
            let mut time = TurnTime(lent.now);
            match self
                .transport
                .write(&mut self.session, &mut time, lent.scratch)
            {
                Ok(sent) => {
                    log::trace!("#{key}: {sent}");
                    budget.bytes = budget.bytes.saturating_sub(sent.bytes());
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The socket buffer is full: WRITABLE interest will say when
                    // it has room again.
                    log::trace!("#{key}: write would block");
                    self.readiness.writable = false;
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
            self.transport.shut_sending();
        }
        wrote
    }

    /// Reads while the socket is readable (or TLS holds plaintext already
    /// read) and bytes are wanted, until `WouldBlock` or the budget is spent;
    /// true if a read happened (bytes, EOF, an error: each is worth another
    /// look at the connection).
    fn fill(&mut self, budget: &mut Budget, lent: &mut Lent<'_>) -> bool {
        let key = self.key;
        let mut read = false;
        while (self.readiness.readable || self.transport.holds_plaintext())
            && self.transport.wants_read(&self.session)
        {
            if budget.reads == 0 {
                budget.spent = true;
                break;
            }
            if self.session.needs_buffer() {
                self.session.lend_buffer(lent.buffers.take());
            }
            match self
                .transport
                .read(key, &mut self.session, &mut TurnTime(lent.now))
            {
                Ok(Received::Bytes { n, short }) if short && !self.readiness.read_closed => {
                    // Less than asked: the socket held no more. Bytes that
                    // arrive from now on are a new edge, and a new event.
                    log::trace!("#{key}: read {n} bytes, drained");
                    budget.reads -= 1;
                    self.readiness.readable = false;
                }
                Ok(Received::Bytes { n, .. }) => {
                    log::trace!("#{key}: read {n} bytes");
                    budget.reads -= 1;
                }
                Ok(Received::Held) => log::trace!("#{key}: plaintext TLS held"),
                Ok(Received::Eof) => {
                    log::trace!("#{key}: read EOF");
                    self.readiness.readable = false;
                }
                Ok(Received::Nothing) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Drained: the next READABLE event says when more arrives.
                    log::trace!("#{key}: read would block");
                    self.readiness.readable = false;
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
            if self.readiness.writable && self.transport.has_bytes_to_send(&self.session) {
                break;
            }
        }
        read
    }

    /// After the bytes: the idle buffer goes back to the pool, and the
    /// connection is closed, or registered for the readiness it needs now.
    fn settle(&mut self, out_of_budget: bool, lent: &mut Lent<'_>) -> Settled {
        if let Some(buffer) = self.session.reclaim_buffer() {
            lent.buffers.put(buffer);
        }
        self.transport.log_turn(self.key);
        if self.session.is_closed() {
            return Settled::Closed;
        }
        let wanted = self.interest();
        if wanted != self.registered {
            log::trace!("#{}: interest {wanted:?}", self.key);
            let socket = self.transport.socket_mut();
            if let Err(e) = lent.registry.reregister(socket, Token(self.key), wanted) {
                log::warn!("#{}: reregister: {e}", self.key);
                self.session.abort();
                return Settled::Closed;
            }
            self.registered = wanted;
        }
        Settled::Open {
            again: out_of_budget,
        }
    }

    /// The interest its state calls for: WRITABLE only while the socket has
    /// refused bytes we still hold, so a connection whose responses fit in the
    /// socket buffer never costs an `epoll_ctl`.
    fn interest(&self) -> Interest {
        if self.transport.has_bytes_to_send(&self.session) && !self.readiness.writable {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Takes the PROXY header off the socket, if one is still owed: true once
    /// the session may have the socket. Until then it waits for the header's
    /// bytes (the session's idle deadline bounds the wait); without a valid
    /// header, or with one naming a client the limits deny, the connection
    /// is aborted.
    fn take_proxy_header(&mut self, now: Now<'_>) -> bool {
        if !self.proxy_header_owed {
            return true;
        }
        let key = self.key;
        while self.readiness.readable {
            match proxy_protocol::take_without_blocking(self.transport.socket_mut()) {
                Ok(Taken::Done(client)) => {
                    self.proxy_header_owed = false;
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
                Ok(Taken::Waiting) => self.readiness.readable = false,
                Ok(Taken::Refused(why)) => {
                    log::debug!("#{key}: {why} from {}: closed", self.session.client());
                    self.session.abort();
                    return false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readiness.readable = false,
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

    /// What the status page's live view shows of it, `now`.
    pub(super) fn view(&self, now: Instant) -> ConnView {
        let session = &self.session;
        ConnView {
            token: self.key,
            client: session.client(),
            state: session.state(),
            handshaking: self.transport.phase(session) == Phase::Handshake,
            streams: session.streams(),
            interest: match self.registered.is_writable() {
                true => "RW",
                false => "R",
            },
            queued: session.queued_bytes(),
            deadline_in: session
                .deadline()
                .map(|at| at.saturating_duration_since(now)),
            served: session.served(),
        }
    }

    /// What it is doing now, for the status page: the phase it was counted
    /// under, and the one it is in now (the same when nothing changed).
    pub(super) fn rephase(&mut self) -> (Phase, Phase) {
        let now = self.transport.phase(&self.session);
        (std::mem::replace(&mut self.phase, now), now)
    }

    /// The access log's entries for the responses gone since the last call,
    /// with the client they were for.
    pub(super) fn take_log_entries(&mut self) -> (IpAddr, Vec<Entry>) {
        (self.session.client(), self.session.take_log_entries())
    }

    /// Its deadline, if the loop must arm one for it: none armed yet, or an
    /// earlier one than armed (a later deadline is found when the early one
    /// comes, and the connection is asked again).
    pub(super) fn deadline_to_arm(&mut self) -> Option<Instant> {
        let deadline = self.session.deadline()?;
        if self.armed.is_some_and(|armed| armed <= deadline) {
            return None;
        }
        self.armed = Some(deadline);
        Some(deadline)
    }

    /// Whether a deadline that came from the heap is the one armed for this
    /// connection (not one it superseded, or a former connection's in the
    /// same slot); if so, it is no longer armed.
    pub(super) fn deadline_came(&mut self, at: Instant, serial: u64) -> bool {
        let current = self.serial == serial && self.armed == Some(at);
        if current {
            self.armed = None;
        }
        current
    }

    /// Whether the heap's entry `at` is still this connection's.
    pub(super) fn has_armed(&self, at: Instant, serial: u64) -> bool {
        self.serial == serial && self.armed == Some(at)
    }

    /// After a panic in its turn: the session answers 500 if it still can,
    /// and the connection closes. False if it had panicked before: the loop
    /// drops it on the spot.
    pub(super) fn recover(&mut self, message: &str, now: Now<'_>) -> bool {
        if std::mem::replace(&mut self.panicked, true) {
            return false;
        }
        crate::driver::contain::report(self.key, self.session.request_line().as_deref(), message);
        crate::driver::contain::catch(|| self.session.recover_from_panic(now)).is_ok()
    }

    /// Before the socket is closed: a TLS connection says goodbye. The
    /// requests it served and its client, for the trace.
    pub(super) fn close(mut self) -> (u64, IpAddr) {
        self.transport.say_goodbye();
        (self.session.served(), self.session.client())
        // Dropping the socket closes it, which also removes it from the
        // epoll set.
    }
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
    /// its client's slot in the per-client limits, four bytes and a tag;
    /// 280 to 288: it remembers, over TLS, which name its handshake was for,
    /// a pointer, null over plaintext; 288 to 296: the sites of the
    /// responses in flight, for the bytes each site sent, a pointer.)
    #[test]
    fn an_idle_connection_stays_small() {
        use std::mem::size_of;
        let sizes = [
            ("Conn", size_of::<Conn>(), 296),
            ("Session", size_of::<Session>(), 224),
            ("Connection", size_of::<crate::http::Connection>(), 144),
        ];
        for (name, size, bound) in sizes {
            println!("{name}: {size} bytes (at most {bound})");
            assert!(size <= bound, "{name} is {size} bytes, over {bound}");
        }
    }
}
