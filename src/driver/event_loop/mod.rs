//! The readiness loop: one `mio::Poll`, every connection in a `Slab`, no threads.
//!
//! # One turn of the loop ([`EventLoop::run`])
//!
//! 1. `poll` sleeps until a socket is ready, a signal arrives, or the nearest
//!    deadline passes; then the clock is read once for the whole turn, and the
//!    timers that are due are taken from the heap.
//! 2. For each event: a listener → accept until `WouldBlock` (or the cap); a
//!    connection → note which way it is ready and [`drive`](EventLoop::drive)
//!    it; the signal pipe → reload (SIGHUP), or begin (or, the second time,
//!    end) a shutdown; a file watch → drop the cache entries of changed files.
//! 3. Connections that used up their share of the turn are driven again.
//! 4. Connections whose timer was due are driven, their turn starting with the
//!    deadline.
//! 5. The access log's lines from this turn are written.
//!
//! # One connection's turn ([`EventLoop::turn`])
//!
//! Flush what its session has queued, fill its session with what the socket
//! holds, and go round again while either moved anything (the session answers
//! inside those calls, so new input is answered before more is read); then
//! settle: give back the read buffer, log, close, or register the interest it
//! needs now and arm its timer. Each `WouldBlock` is decided where it happens,
//! in [`conn`].
//!
//! Run `RUST_LOG=oneloop=trace` to watch it: docs/architecture.md reads a
//! trace line by line.

mod buffers;
mod conn;
mod timers;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::Endpoint;
use super::clock::Clock;
use super::contain;
use super::listener::{ACCEPT_BACKOFF, Accepted, Acceptor};
use super::pressure::Pressure;
use super::proxy_protocol::ProxyConfig;
use super::signals::{ProcessReload, Signal, Signals};
use super::tls::TlsConfig;
use crate::access_log::AccessLog;
use crate::session::{Service, Session};
use crate::stats::{DriverStats, Phase};
use buffers::BufferPool;
use conn::{Budget, Conn};
use timers::{TimerOwner, Timers};

const SIGNALS: Token = Token(usize::MAX);
/// The file watch of endpoint `i` has token `FIRST_WATCH - i`.
const FIRST_WATCH: usize = usize::MAX - 1;
/// Listener `i` (one per bound address) has token `FIRST_LISTENER - i`; slab
/// keys count up from 0, so the two never meet.
const FIRST_LISTENER: usize = usize::MAX - 64;

/// What the loop needs besides its listeners and their endpoints.
pub(super) struct LoopConfig {
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
    /// Its own descriptor on the access log, if there is one.
    pub access_log: Option<AccessLog>,
    /// What the process reloads on SIGHUP, for the one loop that does it.
    pub process: Option<ProcessReload>,
    /// This loop's counters, for the status page.
    pub stats: Arc<DriverStats>,
    /// Connections begin with a PROXY header, from trusted peers only.
    pub proxy: Option<ProxyConfig>,
}

pub(super) struct EventLoop {
    poll: Poll,
    /// One per bound port and address; empty once a shutdown has begun.
    listeners: Vec<TcpListener>,
    /// What each listener serves (the service its sessions share, its TLS),
    /// by the listener's index.
    endpoints: Vec<Endpoint>,
    /// The services whose file caches tell of changes through a descriptor
    /// registered here, by token.
    watches: Vec<(Token, Arc<Service>)>,
    acceptor: Acceptor,
    signals: Signals,
    conns: Slab<Conn>,
    max_connections: usize,
    clock: Clock,
    timers: Timers,
    /// The timers due this turn, taken from the heap at its start.
    due: Vec<(Instant, TimerOwner)>,
    access_log: Option<AccessLog>,
    /// Set in the first loop only.
    process: Option<ProcessReload>,
    buffers: BufferPool,
    /// For the rare file that cannot be `sendfile`d.
    scratch: Vec<u8>,
    /// Connections to drive again this turn (they used up their share).
    again: VecDeque<usize>,
    turns: u64,
    next_serial: u64,
    /// Accepting stopped at the connection cap: resume when one closes.
    accept_at_cap: bool,
    /// Accepting paused after running out of descriptors: resume at this time.
    accept_paused_until: Option<Instant>,
    /// Warnings when accepting has to wait.
    pressure: Pressure,
    /// This loop's counters, for the status page.
    stats: Arc<DriverStats>,
    proxy: Option<ProxyConfig>,
}

impl EventLoop {
    /// A loop over `listeners`, each with the index of its endpoint among
    /// `endpoints`.
    pub(super) fn new(
        listeners: Vec<(std::net::TcpListener, usize)>,
        endpoints: Vec<Endpoint>,
        config: LoopConfig,
    ) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let mut registered = Vec::with_capacity(listeners.len());
        let mut served = Vec::with_capacity(listeners.len());
        for (i, (listener, endpoint)) in listeners.into_iter().enumerate() {
            let mut listener = TcpListener::from_std(listener);
            let token = Token(FIRST_LISTENER - i);
            poll.registry()
                .register(&mut listener, token, Interest::READABLE)?;
            registered.push(listener);
            let endpoint = endpoints.get(endpoint).cloned();
            served
                .push(endpoint.ok_or_else(|| io::Error::other("a listener without an endpoint"))?);
        }
        let signals = Signals::watch(poll.registry(), SIGNALS, config.shutdown_timeout)?;
        let watches = register_watches(poll.registry(), &served)?;
        Ok(EventLoop {
            poll,
            listeners: registered,
            endpoints: served,
            watches,
            acceptor: Acceptor::default(),
            signals,
            conns: Slab::with_capacity(config.max_connections.min(4096)),
            max_connections: config.max_connections,
            clock: Clock::default(),
            timers: Timers::default(),
            due: Vec::new(),
            access_log: config.access_log,
            process: config.process,
            buffers: BufferPool::new(64),
            scratch: Vec::new(),
            again: VecDeque::new(),
            turns: 0,
            next_serial: 0,
            accept_at_cap: false,
            accept_paused_until: None,
            pressure: Pressure::new(Arc::clone(&config.stats)),
            stats: config.stats,
            proxy: config.proxy,
        })
    }

    /// Runs until a graceful shutdown completes.
    pub(super) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            if let Err(error) = self.poll.poll(&mut events, self.poll_timeout()) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue; // a signal interrupted the wait; its pipe will tell us
                }
                return Err(error);
            }
            let now = self.clock.tick();
            self.turns += 1;
            self.timers.take_due(now, &mut self.due);
            let ready = events.iter().count();
            self.stats.turn(ready);
            log::trace!(
                "turn {}: {ready} events, {} timers due",
                self.turns,
                self.due.len()
            );
            for event in events.iter() {
                if self.on_event(event, now) == Signal::ExitNow {
                    return Ok(());
                }
            }
            for key in std::mem::take(&mut self.again) {
                self.drive(key, now);
            }
            for (at, owner) in std::mem::take(&mut self.due) {
                self.fire(at, owner, now);
            }
            if self.accept_paused_until.is_some_and(|until| now >= until) {
                self.accept_paused_until = None;
                self.accept(now);
            }
            if let Some(log) = self.access_log.as_mut() {
                log.flush();
            }
            self.stats.set_timers(self.timers.len());
            if self.signals.shutdown_is_over(self.conns.len(), now) {
                return Ok(());
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
            self.signals.deadline(),
        ];
        let nearest = deadlines.into_iter().flatten().min()?;
        // Round up: waking a millisecond early would spin until the deadline.
        let wait = nearest.saturating_duration_since(Instant::now());
        Some(wait + Duration::from_micros(999))
    }

    /// One readiness event: the signal pipe, a listener, or a connection.
    fn on_event(&mut self, event: &Event, now: Instant) -> Signal {
        match event.token() {
            SIGNALS => {
                let signal = self.signals.on_event(self.conns.len(), now);
                match signal {
                    Signal::Begin => self.begin_shutdown(now),
                    Signal::Reopen | Signal::Reload => self.reload(&signal),
                    Signal::None | Signal::ExitNow => {}
                }
                return signal;
            }
            Token(token) if token > FIRST_LISTENER => {
                // A file watch. Requests read later take the changes in
                // themselves (`Session::received`); this drops what they made
                // stale now, descriptors of deleted files included.
                log::trace!("files changed");
                if let Some((_, service)) = self.watches.iter().find(|(t, _)| t.0 == token) {
                    service.files_changed();
                }
            }
            Token(token) if token > FIRST_LISTENER - self.listeners.len() => {
                if self.conns.len() >= self.max_connections {
                    // A newcomer is knocking while every slot is taken.
                    self.pressure.at_cap(self.conns.len(), now);
                }
                self.accept(now);
            }
            Token(key) => {
                let Some(conn) = self.conns.get_mut(key) else {
                    return Signal::None; // closed earlier in this turn
                };
                log::trace!("#{key}: event{}", describe(event));
                // A hang-up or an error is reported by the next read or write,
                // so both count as readiness.
                conn.readable |= event.is_readable() || event.is_read_closed() || event.is_error();
                conn.read_closed |= event.is_read_closed() || event.is_error();
                conn.writable |= event.is_writable() || event.is_write_closed() || event.is_error();
                self.drive(key, now);
            }
        }
        Signal::None
    }

    /// Accepts until every listener says `WouldBlock`, or the cap is reached.
    fn accept(&mut self, now: Instant) {
        while self.accept_paused_until.is_none() && !self.listeners.is_empty() {
            if self.conns.len() >= self.max_connections {
                // Edge-triggered: the listener will not tell us again about the
                // connections waiting in its backlog, so remember to come back.
                self.accept_at_cap = true;
                return;
            }
            match self.acceptor.next(&self.listeners) {
                Accepted::Connection(socket, peer, listener) => {
                    if let Err(message) = contain::catch(|| self.add(socket, peer, listener, now)) {
                        log::error!("bug while accepting {peer}: {message}");
                    }
                }
                Accepted::Drained => return,
                Accepted::Pause(e) => {
                    self.pressure.exhausted(&e, ACCEPT_BACKOFF, now);
                    self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    fn add(&mut self, mut socket: TcpStream, peer: SocketAddr, listener: usize, now: Instant) {
        if self.proxy.as_ref().is_some_and(|proxy| !proxy.admits(peer)) {
            return;
        }
        let Some(endpoint) = self.endpoints.get(listener) else {
            return;
        };
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let mut session = Session::new(key, Arc::clone(&endpoint.service), peer.ip(), now);
        // Without a PROXY header the peer is the client, and the limits
        // decide now: a denied one is closed before a byte is read.
        if self.proxy.is_none() && !session.admit(self.clock.reading()) {
            log::debug!("{peer} is denied (--allow, --deny): closed");
            return;
        }
        let tls = match endpoint.tls.as_deref().map(TlsConfig::accept).transpose() {
            Ok(tls) => tls.map(Box::new),
            Err(e) => {
                log::warn!("TLS for {peer}: {e}");
                return;
            }
        };
        // Responses are written whole; Nagle would only delay the last segment.
        let _ = socket.set_nodelay(true);
        let registry = self.poll.registry();
        if let Err(e) = registry.register(&mut socket, Token(key), Interest::READABLE) {
            log::warn!("register {peer}: {e}");
            return;
        }
        self.next_serial += 1;
        log::trace!("#{key}: accepted {peer}");
        let phase = match tls {
            Some(_) => Phase::Handshake,
            None => Phase::Waiting,
        };
        self.stats.opened(phase);
        entry.insert(Conn {
            key,
            socket,
            session,
            tls,
            serial: self.next_serial,
            readable: false,
            read_closed: false,
            writable: true,
            interest: Interest::READABLE,
            timer: None,
            timer_fired: false,
            drain: false,
            panicked: false,
            phase,
            awaiting_proxy_header: self.proxy.is_some(),
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

    /// One connection's whole turn: flush, fill, again while either moved
    /// anything, then settle.
    fn turn(&mut self, key: usize, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let clock = self.clock.reading();
        if std::mem::take(&mut conn.timer_fired) {
            log::trace!("#{key}: deadline");
            conn.session.on_deadline(clock);
        }
        if std::mem::take(&mut conn.drain) {
            conn.session.drain(clock);
        }
        let mut budget = Budget::default();
        if conn.take_proxy_header(clock) {
            while !budget.is_spent()
                && (conn.flush(clock, &mut budget, &mut self.scratch)
                    | conn.fill(clock, &mut budget, &mut self.buffers))
            {}
        }
        self.settle(key, budget.is_spent(), now);
    }

    /// After a turn: the idle buffer goes back to the pool, the log gets what
    /// was delivered, and the connection is closed, or registered for the
    /// readiness it needs now, driven again this turn if it ran out of budget,
    /// and its timer armed.
    fn settle(&mut self, key: usize, out_of_turn: bool, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(buffer) = conn.session.reclaim_buffer() {
            self.buffers.put(buffer);
        }
        if let Some(tls) = conn.tls.as_deref_mut() {
            tls.log_turn(key);
        }
        if let Some(log) = self.access_log.as_mut() {
            let entries = conn.session.take_log_entries();
            log.record(conn.session.client(), entries, self.clock.log_time());
        }
        if conn.session.is_closed() {
            return self.close(key, now);
        }
        let phase = conn.phase();
        self.stats.moved(conn.phase, phase);
        conn.phase = phase;
        let wanted = conn.wanted_interest();
        if wanted != conn.interest {
            log::trace!("#{key}: interest {wanted:?}");
            let registry = self.poll.registry();
            if let Err(e) = registry.reregister(&mut conn.socket, Token(key), wanted) {
                log::warn!("#{key}: reregister: {e}");
                conn.session.abort();
                return self.close(key, now);
            }
            conn.interest = wanted;
        }
        if out_of_turn {
            self.again.push_back(key);
        }
        self.arm_timer(key);
    }

    /// After a panic in a connection's turn: log it, let the session answer
    /// 500 if it still can, and drive it to its close. A second panic on the
    /// same connection drops it on the spot.
    fn contain(&mut self, key: usize, message: &str, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let clock = self.clock.reading();
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

    fn close(&mut self, key: usize, now: Instant) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        if let Some(log) = self.access_log.as_mut() {
            // Responses cut short by the close are logged with what was sent.
            let entries = conn.session.take_log_entries();
            log.record(conn.session.client(), entries, self.clock.log_time());
        }
        conn.close_notify();
        self.stats.closed(conn.phase);
        let served = conn.session.served();
        let client = conn.session.client();
        log::trace!("#{key}: closed ({client} after {served} requests)");
        // Closing the descriptor removes it from the epoll set. An event already
        // fetched for this token in this turn may reach a newer connection in the
        // same slot: it only makes that one try a read or write, which is harmless.
        drop(conn);
        if std::mem::take(&mut self.accept_at_cap) {
            self.accept(now);
        }
    }

    /// Arms a timer for the connection's deadline, unless one at least as early
    /// is armed already (a later deadline is found when the early timer fires).
    fn arm_timer(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(deadline) = conn.session.deadline() else {
            return;
        };
        if conn.timer.is_some_and(|armed| armed <= deadline) {
            return;
        }
        conn.timer = Some(deadline);
        let owner = TimerOwner {
            key,
            serial: conn.serial,
        };
        self.timers.arm(deadline, owner);
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

    /// A due timer: its connection's turn starts with the deadline, unless the
    /// timer was superseded (the connection closed, or armed an earlier one).
    fn fire(&mut self, at: Instant, owner: TimerOwner, now: Instant) {
        let Some(conn) = self.conns.get_mut(owner.key) else {
            return;
        };
        if conn.serial != owner.serial || conn.timer != Some(at) {
            return;
        }
        conn.timer = None;
        conn.timer_fired = true;
        self.drive(owner.key, now);
    }

    /// SIGUSR1 reopens this loop's access log, and in the first loop the
    /// server's log; SIGHUP also reloads what the process reads at start.
    fn reload(&mut self, signal: &Signal) {
        if let Some(log) = self.access_log.as_mut()
            && let Err(e) = log.reopen()
        {
            log::error!("{e}; still writing to the old file");
        }
        match (&self.process, signal) {
            (Some(process), Signal::Reload) => process.reload(),
            (Some(process), _) => process.reopen_logs(),
            (None, _) => {}
        }
    }

    /// The first signal: stop accepting, and let every connection finish the
    /// exchange in hand (idle ones close at once).
    fn begin_shutdown(&mut self, now: Instant) {
        for mut listener in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.drain = true;
            }
            self.drive(key, now);
        }
    }
}

/// Registers the file watch of each distinct service of `endpoints` (several
/// listeners may share one), so that the loop hears of changed files the way
/// it hears of sockets.
fn register_watches(
    registry: &mio::Registry,
    endpoints: &[Endpoint],
) -> io::Result<Vec<(Token, Arc<Service>)>> {
    let mut watches: Vec<(Token, Arc<Service>)> = Vec::new();
    for endpoint in endpoints {
        let service = &endpoint.service;
        if watches.iter().any(|(_, known)| Arc::ptr_eq(known, service)) {
            continue;
        }
        if let Some(fd) = service.watch_fd() {
            let token = Token(FIRST_WATCH - watches.len());
            registry.register(&mut mio::unix::SourceFd(&fd), token, Interest::READABLE)?;
            watches.push((token, Arc::clone(service)));
        }
    }
    Ok(watches)
}

/// The readiness an event reports, for the trace.
fn describe(event: &Event) -> String {
    let flags = [
        (event.is_readable(), " readable"),
        (event.is_writable(), " writable"),
        (event.is_read_closed(), " read-closed"),
        (event.is_write_closed(), " write-closed"),
        (event.is_error(), " error"),
    ];
    flags
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| *name)
        .collect()
}
