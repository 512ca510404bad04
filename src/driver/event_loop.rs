//! The readiness loop: one `mio::Poll`, every connection in a `Slab`, no threads.
//!
//! # The loop, one turn
//!
//! 1. `poll` sleeps until a socket is ready, a signal arrives, or the nearest
//!    connection deadline passes.
//! 2. For each event: the listener → [`accept`](EventLoop::accept) until
//!    `WouldBlock`; a connection → note which way it is ready and
//!    [`drive`](EventLoop::drive) it; the signal pipe → begin a graceful shutdown.
//! 3. Connections that used up their fair share of this turn are driven again.
//! 4. Expired deadlines are handed to their connections.
//! 5. The access log's lines from this turn are written.
//!
//! # Readiness, edge-triggered
//!
//! mio registers sockets edge-triggered: an event says "this became readable",
//! once, not "this is readable" on every poll. So every connection remembers
//! whether it is still `readable`/`writable` (ready, and no `WouldBlock` seen since
//! the event), and the loop keeps reading or writing until the socket says
//! `WouldBlock`. Stopping early for any other reason (fairness, backpressure, the
//! connection cap) means remembering to come back: nothing will wake us for it.
//!
//! WRITABLE interest is registered only while output is queued and the socket
//! refused some of it; a connection whose responses fit in the socket buffer is
//! never re-registered at all.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use super::buffers::BufferPool;
use super::contain;
use super::listener::{ACCEPT_BACKOFF, is_resource_exhaustion};
use super::timers::{TimerOwner, Timers};
use super::transmit::write_once;
use crate::access_log::AccessLog;
use crate::app::App;
use crate::config::LogTarget;
use crate::http::date::DateCache;
use crate::http::{Now, Settings};
use crate::session::Session;

const SIGNALS: Token = Token(usize::MAX);
/// Listener `i` (one per bound address) has token `FIRST_LISTENER - i`; slab
/// keys count up from 0, so the two never meet.
const FIRST_LISTENER: usize = usize::MAX - 1;

/// Reads one connection may do in one turn before others get theirs.
const READS_PER_TURN: usize = 16;
/// Bytes one connection may write in one turn before others get theirs.
const WRITE_BYTES_PER_TURN: usize = 4 << 20;

/// What the loop needs besides a listener.
pub struct LoopConfig {
    pub settings: Settings,
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
    /// Watch SIGINT/SIGTERM (a test harness that runs loops in threads may not).
    pub handle_signals: bool,
    pub access_log: Option<LogTarget>,
}

/// One connection as the loop sees it.
struct Conn {
    socket: TcpStream,
    peer: SocketAddr,
    session: Session,
    /// Tells this connection's timers apart from a later one's in the same slot.
    serial: u64,
    /// Ready to read: an event said so and no read has hit `WouldBlock` since.
    readable: bool,
    /// Ready to write, likewise.
    writable: bool,
    /// The interest currently registered with the poll.
    interest: Interest,
    /// The deadline this connection has a timer armed for.
    timer: Option<Instant>,
    /// Its timer fired: its next turn starts by handing the session the time.
    timer_fired: bool,
    /// A bug panicked in this connection's work; it is answering 500 and closing.
    panicked: bool,
}

pub struct EventLoop {
    poll: Poll,
    /// One per bound address; empty once a shutdown has begun.
    listeners: Vec<TcpListener>,
    signals: Option<Signals>,
    conns: Slab<Conn>,
    app: Arc<App>,
    config: LoopConfig,
    timers: Timers,
    dates: DateCache,
    /// The wall-clock time of this turn (for the access log).
    wall: SystemTime,
    access_log: Option<AccessLog>,
    buffers: BufferPool,
    /// For the rare file that cannot be `sendfile`d.
    scratch: Vec<u8>,
    /// Connections to drive again this turn (they used up their share).
    again: VecDeque<usize>,
    next_serial: u64,
    /// Accepting stopped at the connection cap: resume when one closes.
    accept_at_cap: bool,
    /// Accepting paused after running out of descriptors: resume at this time.
    accept_paused_until: Option<Instant>,
    /// Set when a shutdown begins: the moment the grace period ends.
    shutdown_deadline: Option<Instant>,
}

impl EventLoop {
    pub fn new(
        listeners: Vec<std::net::TcpListener>,
        app: Arc<App>,
        config: LoopConfig,
    ) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let mut registered = Vec::with_capacity(listeners.len());
        for (i, listener) in listeners.into_iter().enumerate() {
            let mut listener = TcpListener::from_std(listener);
            poll.registry().register(
                &mut listener,
                Token(FIRST_LISTENER - i),
                Interest::READABLE,
            )?;
            registered.push(listener);
        }
        let signals = if config.handle_signals {
            let mut signals = Signals::new([SIGINT, SIGTERM])?;
            poll.registry()
                .register(&mut signals, SIGNALS, Interest::READABLE)?;
            Some(signals)
        } else {
            None
        };
        let access_log = config
            .access_log
            .as_ref()
            .map(AccessLog::open)
            .transpose()?;
        let wall = SystemTime::now();
        Ok(EventLoop {
            wall,
            access_log,
            poll,
            listeners: registered,
            signals,
            conns: Slab::with_capacity(config.max_connections.min(4096)),
            app,
            config,
            timers: Timers::default(),
            dates: DateCache::new(SystemTime::now()),
            buffers: BufferPool::new(64),
            scratch: Vec::new(),
            again: VecDeque::new(),
            next_serial: 0,
            accept_at_cap: false,
            accept_paused_until: None,
            shutdown_deadline: None,
        })
    }

    /// Runs until a graceful shutdown completes.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue; // a signal interrupted the wait; its pipe will tell us
                }
                return Err(error);
            }
            let now = Instant::now();
            self.wall = SystemTime::now();
            self.dates.update(self.wall);

            for event in events.iter() {
                match event.token() {
                    SIGNALS => {
                        if self.on_signals(now) {
                            log::info!("second signal: exiting now");
                            return Ok(());
                        }
                    }
                    Token(token) if token > FIRST_LISTENER - self.listeners.len() => {
                        if let Err(message) =
                            contain::catch(|| self.accept(FIRST_LISTENER - token, now))
                        {
                            log::error!("bug while accepting: {message}");
                        }
                    }
                    Token(key) => {
                        let Some(conn) = self.conns.get_mut(key) else {
                            continue; // closed earlier in this turn
                        };
                        log::trace!(
                            "#{key}: event{}{}{}{}",
                            if event.is_readable() { " readable" } else { "" },
                            if event.is_writable() { " writable" } else { "" },
                            if event.is_read_closed() {
                                " read-closed"
                            } else {
                                ""
                            },
                            if event.is_error() { " error" } else { "" },
                        );
                        // A hang-up or an error is reported by the next read or
                        // write, so both count as readiness.
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            conn.readable = true;
                        }
                        if event.is_writable() || event.is_write_closed() || event.is_error() {
                            conn.writable = true;
                        }
                        self.drive(key, now);
                    }
                }
            }

            for key in std::mem::take(&mut self.again) {
                self.drive(key, now);
            }
            self.expire_timers(now);
            if self.accept_paused_until.is_some_and(|until| now >= until) {
                self.accept_paused_until = None;
                self.accept_everywhere(now);
            }
            if let Some(log) = self.access_log.as_mut() {
                log.flush();
            }
            if let Some(deadline) = self.shutdown_deadline {
                if self.conns.is_empty() {
                    log::info!("shutdown complete");
                    return Ok(());
                }
                if now >= deadline {
                    log::info!(
                        "shutdown grace period over: dropping {} connections",
                        self.conns.len()
                    );
                    return Ok(());
                }
            }
        }
    }

    /// How long `poll` may sleep: until the nearest deadline, or not at all if
    /// some connection is waiting for its next share of the loop.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let deadlines = [
            self.timers.next_deadline(),
            self.accept_paused_until,
            self.shutdown_deadline,
        ];
        let nearest = deadlines.into_iter().flatten().min()?;
        // Round up: waking a millisecond early would spin until the deadline.
        let wait = nearest.saturating_duration_since(Instant::now());
        Some(wait + Duration::from_micros(999))
    }

    /// Accepts on every listener: after a pause, or when the cap lifts, none of
    /// them will tell us again about the connections already waiting.
    fn accept_everywhere(&mut self, now: Instant) {
        for index in 0..self.listeners.len() {
            self.accept(index, now);
        }
    }

    /// Accepts on listener `index` until it says `WouldBlock`, or the cap is reached.
    fn accept(&mut self, index: usize, now: Instant) {
        let mut failures = 0;
        loop {
            if self.accept_paused_until.is_some() {
                return;
            }
            let Some(listener) = self.listeners.get(index) else {
                return; // shutting down
            };
            if self.conns.len() >= self.config.max_connections {
                // Edge-triggered: the listener will not tell us again about the
                // connections waiting in its backlog, so remember to come back.
                self.accept_at_cap = true;
                log::debug!(
                    "at the connection cap ({}): not accepting",
                    self.conns.len()
                );
                return;
            }
            match listener.accept() {
                Ok((socket, peer)) => self.add_connection(socket, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_resource_exhaustion(&e) => {
                    // The connection stays in the backlog; accepting again at
                    // once would fail the same way, in a busy loop.
                    log::warn!("accept: {e}; pausing for {ACCEPT_BACKOFF:?}");
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
                Err(e) => {
                    // ECONNABORTED and friends concern one connection, not the
                    // listener: carry on with the next, within reason.
                    log::debug!("accept: {e}");
                    failures += 1;
                    if failures >= 64 {
                        self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                        return;
                    }
                }
            }
        }
    }

    fn add_connection(&mut self, mut socket: TcpStream, peer: SocketAddr, now: Instant) {
        // Responses are written whole; Nagle would only delay the last segment.
        let _ = socket.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut socket, Token(key), Interest::READABLE)
        {
            log::warn!("register {peer}: {e}");
            return;
        }
        self.next_serial += 1;
        log::trace!("#{key}: accepted {peer}");
        entry.insert(Conn {
            socket,
            peer,
            session: Session::new(key, self.config.settings, now),
            serial: self.next_serial,
            readable: false,
            writable: true,
            interest: Interest::READABLE,
            timer: None,
            timer_fired: false,
            panicked: false,
        });
        self.arm_timer(key);
    }

    /// Drives one connection inside the panic boundary: a bug in its work costs
    /// that connection, never the loop and the connections it holds.
    fn drive(&mut self, key: usize, now: Instant) {
        if let Err(message) = contain::catch(|| self.turn(key, now)) {
            self.contain(key, &message, now);
        }
    }

    /// After a panic in a connection's turn: log it, let the session answer
    /// 500 if it still can, and drive it to its close. A second panic on the
    /// same connection drops it on the spot.
    fn contain(&mut self, key: usize, message: &str, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let clock = Now {
            instant: now,
            date: self.dates.as_str(),
        };
        let recovered = !conn.panicked && {
            conn.panicked = true;
            contain::report(key, conn.session.request_line().as_deref(), message);
            contain::catch(|| conn.session.recover_from_panic(clock)).is_ok()
        };
        if recovered {
            self.drive(key, now);
        } else {
            log::error!("#{key}: dropped after a second panic ({message})");
            if contain::catch(|| self.close(key, now)).is_err() {
                self.conns.try_remove(key);
            }
        }
    }

    /// Moves one connection as far as it can go: answer what is buffered, write
    /// until `WouldBlock`, read until `WouldBlock`, and again while that helps.
    fn turn(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let clock = Now {
            instant: now,
            date: self.dates.as_str(),
        };
        if std::mem::take(&mut conn.timer_fired) {
            conn.session.conn_mut().handle_timeout(clock);
        }
        let mut reads = 0;
        let mut written = 0;
        let mut out_of_turn = false;
        loop {
            conn.session.process(&self.app, clock);
            let mut progress = false;

            // Write what is queued.
            while conn.writable && conn.session.conn().has_output() {
                if written >= WRITE_BYTES_PER_TURN {
                    out_of_turn = true;
                    break;
                }
                match write_once(
                    &mut conn.socket,
                    conn.session.conn().output(),
                    &mut self.scratch,
                ) {
                    Ok(n) => {
                        log::trace!("#{key}: wrote {n} bytes");
                        conn.session.conn_mut().written(n, now);
                        written += n;
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        log::trace!("#{key}: write would block");
                        conn.writable = false;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        log::debug!("#{key}: write: {e}");
                        conn.session.abort();
                    }
                }
            }
            if conn.session.conn_mut().take_shutdown_request() {
                // Our last response is out; tell the client we are done, and
                // linger reading whatever it still sends.
                log::trace!("#{key}: shutdown(write), lingering");
                let _ = conn.socket.shutdown(Shutdown::Write);
            }
            if conn.session.conn().is_closed() {
                break;
            }

            // Read what has arrived.
            if conn.readable && conn.session.conn().wants_read() {
                if reads >= READS_PER_TURN {
                    out_of_turn = true;
                    break;
                }
                if !conn.session.conn().has_buffer() {
                    conn.session.conn_mut().attach_buffer(self.buffers.take());
                }
                match conn.socket.read(conn.session.conn_mut().read_buffer()) {
                    Ok(0) => {
                        log::trace!("#{key}: read EOF");
                        conn.session.conn_mut().received_eof(now);
                        conn.readable = false;
                    }
                    Ok(n) => {
                        log::trace!("#{key}: read {n} bytes");
                        conn.session.conn_mut().received(n, now);
                        reads += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        log::trace!("#{key}: read would block");
                        conn.readable = false;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        log::debug!("#{key}: read: {e}");
                        conn.session.abort();
                    }
                }
                // Whatever the read did (bytes, EOF, WouldBlock, an error)
                // changed something worth another look; WouldBlock ends it.
                progress = true;
            }
            if !progress {
                break;
            }
        }

        if let Some(buffer) = conn.session.conn_mut().detach_idle_buffer() {
            self.buffers.put(buffer);
        }
        if let Some(log) = self.access_log.as_mut() {
            log.record(
                conn.peer.ip(),
                conn.session.conn_mut().take_delivered(),
                self.wall,
            );
        }
        if conn.session.conn().is_closed() {
            self.close(key, now);
            return;
        }

        // WRITABLE only while the socket has refused output we still hold.
        let wanted = if conn.session.conn().has_output() && !conn.writable {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if wanted != conn.interest {
            log::trace!("#{key}: interest {wanted:?}");
            if let Err(e) = self
                .poll
                .registry()
                .reregister(&mut conn.socket, Token(key), wanted)
            {
                log::warn!("#{key}: reregister: {e}");
                conn.session.abort();
                self.close(key, now);
                return;
            }
            conn.interest = wanted;
        }
        if out_of_turn {
            self.again.push_back(key);
        }
        self.arm_timer(key);
    }

    /// Arms a timer for the connection's deadline, unless one at least as early
    /// is armed already (a later deadline is found when the early timer fires).
    fn arm_timer(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(deadline) = conn.session.conn().poll_timeout() else {
            return;
        };
        if conn.timer.is_some_and(|armed| armed <= deadline) {
            return;
        }
        conn.timer = Some(deadline);
        self.timers.arm(
            deadline,
            TimerOwner {
                key,
                serial: conn.serial,
            },
        );
        // Superseded entries stay in the heap until swept.
        if self.timers.len() > 4 * self.conns.len() + 1024 {
            let conns = &self.conns;
            self.timers.sweep(|at, owner| {
                conns
                    .get(owner.key)
                    .is_some_and(|c| c.serial == owner.serial && c.timer == Some(at))
            });
        }
    }

    fn expire_timers(&mut self, now: Instant) {
        while let Some((at, owner)) = self.timers.pop_due(now) {
            let Some(conn) = self.conns.get_mut(owner.key) else {
                continue;
            };
            if conn.serial != owner.serial || conn.timer != Some(at) {
                continue; // superseded
            }
            conn.timer = None;
            conn.timer_fired = true;
            log::trace!("#{}: timer", owner.key);
            // Whatever the deadline means (a 408 to send, a close, a later
            // deadline to arm), the connection's turn takes it from here.
            self.drive(owner.key, now);
        }
    }

    fn close(&mut self, key: usize, now: Instant) {
        if !self.conns.contains(key) {
            return;
        }
        let mut conn = self.conns.remove(key);
        if let Some(log) = self.access_log.as_mut() {
            // Responses cut short by the close are logged with what was sent.
            log.record(
                conn.peer.ip(),
                conn.session.conn_mut().take_delivered(),
                self.wall,
            );
        }
        log::trace!(
            "#{key}: closed ({} after {} requests)",
            conn.peer,
            conn.session.conn().served()
        );
        // Closing the descriptor removes it from the epoll set. An event already
        // fetched for this token in this turn may reach a newer connection in the
        // same slot: it only makes that one try a read or write, which is harmless.
        drop(conn);
        if self.accept_at_cap {
            self.accept_at_cap = false;
            self.accept_everywhere(now);
        }
    }

    /// Returns true when the loop should exit at once (a second signal).
    fn on_signals(&mut self, now: Instant) -> bool {
        let Some(signals) = self.signals.as_mut() else {
            return false;
        };
        let received = signals.pending().count();
        if received == 0 {
            return false;
        }
        if self.shutdown_deadline.is_some() || received > 1 {
            return true;
        }
        log::info!(
            "shutting down: finishing {} connections (up to {:?})",
            self.conns.len(),
            self.config.shutdown_timeout
        );
        self.shutdown_deadline = Some(now + self.config.shutdown_timeout);
        for mut listener in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.session.conn_mut().drain();
            }
            self.drive(key, now);
        }
        false
    }
}
