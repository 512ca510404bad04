//! The readiness loop: one `mio::Poll`, every connection in a `Slab`, no threads.
//!
//! # One turn of the loop ([`EventLoop::run`])
//!
//! 1. `poll` sleeps until a socket is ready, a signal arrives, or the nearest
//!    deadline passes; then the clock is read once for the whole turn, and the
//!    deadlines that have come are taken from the heap.
//! 2. For each event, by its [`Source`]: the signal pipe → reload (SIGHUP),
//!    or begin (or, the second time, end) a shutdown; a file watch → drop
//!    the cache entries of changed files; a listener → accept until
//!    `WouldBlock` (or the cap); a connection → its turn.
//! 3. Connections that ran out of their share of the turn get another.
//! 4. Connections whose deadline came get a turn that starts with it.
//! 5. The access log's lines from this turn are written.
//!
//! # One connection's turn ([`Conn::turn`], in `conn.rs`)
//!
//! The loop hands a connection the reason for its turn ([`Wake`]); it
//! writes what its session has queued, reads what the socket holds, and goes
//! round again while either moved anything (the session answers inside those
//! calls, so new input is answered before more is read); then it settles:
//! gives back the read buffer and registers the interest it needs now, or
//! says it is closed. The loop logs what it delivered, closes it, or drives
//! it again and arms its deadline. Each `WouldBlock` is decided where it
//! happens, in `conn.rs`.
//!
//! Run `RUST_LOG=oneloop=trace` to watch it: docs/architecture.md reads a
//! trace line by line.

mod buffers;
mod conn;
mod deadlines;
mod source;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll};
use slab::Slab;

use super::clock::Clock;
use super::contain;
use super::endpoint::{Endpoint, Endpoints};
use super::listener::{ACCEPT_BACKOFF, Accepted, Acceptor};
use super::pressure::Pressure;
use super::signals::{ProcessReload, Signal, Signals};
use super::transport::Transport;
use crate::access_log::AccessLog;
use crate::config::{Config, ProxyConfig};
use crate::session::{Service, Session};
use crate::stats::live::{self, RecentTurns, TurnView};
use crate::stats::{DriverKind, DriverStats};
use buffers::BufferPool;
use conn::{Conn, Lent, Readiness, Settled, Wake};
use deadlines::{Deadlines, Owner};
use source::Source;

/// Runs one loop per set of listeners: the last on this thread, the others
/// on threads of their own. Each has its own application (and so its own
/// caches), shared by its sessions and by nothing else: the loops share
/// nothing. `ready` is called once every loop exists.
pub(crate) fn run(
    per_loop: Vec<Vec<(std::net::TcpListener, usize)>>,
    endpoints: &impl Endpoints,
    access_log: Option<AccessLog>,
    process: ProcessReload,
    config: &Config,
    ready: impl FnOnce(),
) -> io::Result<()> {
    // The connection budget is the process's, split evenly: each loop holds its
    // own connections, and the kernel picks the loop a newcomer meets.
    let max_connections = config
        .max_connections
        .div_ceil(per_loop.len().max(1))
        .min(source::MAX_CONNECTIONS);
    let mut loops = Vec::with_capacity(per_loop.len());
    let mut process = Some(process);
    for listeners in per_loop {
        let (stats, served) = endpoints.for_driver(DriverKind::Loop);
        let settings = LoopSettings {
            max_connections,
            shutdown_timeout: config.shutdown_timeout,
            // Each loop writes through a descriptor of its own, with no lock.
            access_log: access_log.as_ref().map(AccessLog::try_clone).transpose()?,
            // The first loop does what is done once per process.
            process: process.take(),
            proxy: config.proxy.clone(),
            stats,
        };
        loops.push(EventLoop::new(listeners, served, settings)?);
    }
    let last = loops
        .pop()
        .ok_or_else(|| io::Error::other("no event loop"))?;
    let others: Vec<_> = loops
        .into_iter()
        .enumerate()
        .map(|(n, event_loop)| {
            std::thread::Builder::new()
                .name(format!("loop-{}", n + 1))
                .spawn(move || event_loop.run())
        })
        .collect::<io::Result<_>>()?;
    ready();
    let mut result = last.run();
    for worker in others {
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = result.and(Err(e)),
            Err(_) => result = result.and(Err(io::Error::other("an event loop panicked"))),
        }
    }
    result
}

/// What a loop needs besides its listeners and their endpoints.
struct LoopSettings {
    max_connections: usize,
    shutdown_timeout: Duration,
    /// Its own descriptor on the access log, if there is one.
    access_log: Option<AccessLog>,
    /// What the process reloads on SIGHUP, for the one loop that does it.
    process: Option<ProcessReload>,
    /// This loop's counters, for the status page.
    stats: Arc<DriverStats>,
    /// Connections begin with a PROXY header, from trusted peers only.
    proxy: Option<ProxyConfig>,
}

struct EventLoop {
    poll: Poll,
    /// One per bound port and address; empty once a shutdown has begun.
    listeners: Vec<TcpListener>,
    /// What each listener serves (the service its sessions share, its TLS),
    /// by the listener's index.
    endpoints: Vec<Endpoint>,
    /// The services whose file caches tell of changes through a descriptor
    /// registered here, by watch index.
    watches: Vec<Arc<Service>>,
    acceptor: Acceptor,
    signals: Signals,
    conns: Slab<Conn>,
    clock: Clock,
    deadlines: Deadlines,
    /// The deadlines that came this turn, taken from the heap at its start.
    due: Vec<(Instant, Owner)>,
    buffers: BufferPool,
    /// For the rare file that cannot be `sendfile`d, and TLS's file slices.
    scratch: Vec<u8>,
    /// Connections to drive again this turn (they used up their share).
    again: VecDeque<usize>,
    turns: u64,
    /// When the turn in hand began, and what it found.
    turn_began: Instant,
    turn_view: TurnView,
    /// The last turns, and when the loop last published a view of itself.
    recent: RecentTurns,
    published: Option<Instant>,
    next_serial: u64,
    /// Accepting stopped at the connection cap: resume when one closes.
    accept_at_cap: bool,
    /// Accepting paused after running out of descriptors: resume at this time.
    accept_paused_until: Option<Instant>,
    /// Warnings when accepting has to wait.
    pressure: Pressure,
    settings: LoopSettings,
}

impl EventLoop {
    /// A loop over `listeners`, each with the index of its endpoint among
    /// `endpoints`.
    fn new(
        listeners: Vec<(std::net::TcpListener, usize)>,
        endpoints: Vec<Endpoint>,
        settings: LoopSettings,
    ) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let mut registered = Vec::with_capacity(listeners.len());
        let mut served = Vec::with_capacity(listeners.len());
        for (i, (listener, endpoint)) in listeners.into_iter().enumerate() {
            let mut listener = TcpListener::from_std(listener);
            let token = Source::Listener(i).token()?;
            poll.registry()
                .register(&mut listener, token, Interest::READABLE)?;
            registered.push(listener);
            let endpoint = endpoints.get(endpoint).cloned();
            served
                .push(endpoint.ok_or_else(|| io::Error::other("a listener without an endpoint"))?);
        }
        let signals = Signals::watch(
            poll.registry(),
            Source::Signals.token()?,
            settings.shutdown_timeout,
        )?;
        let watches = register_watches(poll.registry(), &served)?;
        Ok(EventLoop {
            listeners: registered,
            endpoints: served,
            watches,
            acceptor: Acceptor::default(),
            signals,
            conns: Slab::with_capacity(settings.max_connections.min(4096)),
            clock: Clock::default(),
            deadlines: Deadlines::default(),
            due: Vec::new(),
            buffers: BufferPool::new(64),
            scratch: Vec::new(),
            again: VecDeque::new(),
            turns: 0,
            turn_began: Instant::now(),
            turn_view: TurnView {
                number: 0,
                events: 0,
                deadlines_due: 0,
                took: Duration::ZERO,
            },
            recent: RecentTurns::default(),
            published: None,
            next_serial: 0,
            accept_at_cap: false,
            accept_paused_until: None,
            pressure: Pressure::new(Arc::clone(&settings.stats)),
            settings,
            poll,
        })
    }

    /// Runs until a graceful shutdown completes: the loop's turn.
    fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = self.wait(&mut events)?;
            for event in events.iter() {
                match Source::of(event.token()) {
                    Source::Signals => {
                        if self.on_signal(now) == Signal::ExitNow {
                            return Ok(());
                        }
                    }
                    Source::Watch(i) => self.files_changed(i),
                    Source::Listener(_) => self.on_knock(now),
                    Source::Conn(key) => {
                        log::trace!("#{key}: event{}", describe(event));
                        self.drive(key, Wake::Ready(Readiness::of(event)), now);
                    }
                }
            }
            for key in std::mem::take(&mut self.again) {
                self.drive(key, Wake::OutOfBudget, now);
            }
            for (at, owner) in std::mem::take(&mut self.due) {
                self.deadline_came(at, owner, now);
            }
            self.end_turn(now);
            if self.signals.shutdown_is_over(self.conns.len(), now) {
                return Ok(());
            }
        }
    }

    /// Sleeps in `poll` until something is ready or the nearest deadline;
    /// reads the clock once for the turn, and takes the deadlines due.
    fn wait(&mut self, events: &mut Events) -> io::Result<Instant> {
        loop {
            match self.poll.poll(events, self.poll_timeout()) {
                Ok(()) => break,
                // A signal interrupted the wait; its pipe will tell us.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let now = self.clock.tick();
        self.turns += 1;
        self.deadlines.take_due(now, &mut self.due);
        let ready = events.iter().count();
        self.settings.stats.turn(ready);
        log::trace!(
            "turn {}: {ready} events, {} deadlines due",
            self.turns,
            self.due.len()
        );
        self.turn_began = now;
        self.turn_view = TurnView {
            number: self.turns,
            events: ready,
            deadlines_due: self.due.len(),
            took: Duration::ZERO,
        };
        self.publish_if_due(now);
        Ok(now)
    }

    /// Publishes a view of the loop for the status page, when the page has
    /// asked for one since the last (`stats::live`): at the start of a turn,
    /// so that a request for the page in this turn sees the loop as it woke.
    fn publish_if_due(&mut self, now: Instant) {
        if self.published.is_some() && !self.settings.stats.view_wanted() {
            return;
        }
        self.published = Some(now);
        let conns = self.conns.iter().map(|(_, conn)| conn.view(now));
        let view = live::view_of(now, &self.recent, conns);
        self.settings.stats.publish(view);
    }

    /// How long `poll` may sleep: until the nearest deadline, or not at all if
    /// some connection is waiting for its next share of the loop.
    fn poll_timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let deadlines = [
            self.deadlines.nearest(),
            self.accept_paused_until,
            self.signals.deadline(),
        ];
        let nearest = deadlines.into_iter().flatten().min()?;
        // Round up: waking a millisecond early would spin until the deadline.
        let wait = nearest.saturating_duration_since(Instant::now());
        Some(wait + Duration::from_micros(999))
    }

    /// The end of a turn: a paused accept resumes when its time has come, the
    /// access log writes the turn's lines, the counters learn the heap's size.
    fn end_turn(&mut self, now: Instant) {
        self.turn_view.took = self.turn_began.elapsed();
        self.recent.record(self.turn_view);
        if self.accept_paused_until.is_some_and(|until| now >= until) {
            self.accept_paused_until = None;
            self.accept(now);
        }
        if let Some(log) = self.settings.access_log.as_mut() {
            log.flush();
        }
        self.settings.stats.set_timers(self.deadlines.len());
    }

    /// The signal pipe is readable: what the signals ask for.
    fn on_signal(&mut self, now: Instant) -> Signal {
        let signal = self.signals.on_event(self.conns.len(), now);
        match signal {
            Signal::Begin => self.begin_shutdown(now),
            Signal::Reopen | Signal::Reload => self.reload(&signal),
            Signal::None | Signal::ExitNow => {}
        }
        signal
    }

    /// A file watch is readable. Requests read later take the changes in
    /// themselves (`Session::received`); this drops what they made stale
    /// now, descriptors of deleted files included.
    fn files_changed(&self, watch: usize) {
        log::trace!("files changed");
        if let Some(service) = self.watches.get(watch) {
            service.files_changed();
        }
    }

    /// A listener is readable: newcomers are knocking.
    fn on_knock(&mut self, now: Instant) {
        if self.conns.len() >= self.settings.max_connections {
            // A newcomer is knocking while every slot is taken.
            self.pressure.at_cap(self.conns.len(), now);
        }
        self.accept(now);
    }

    /// Accepts until every listener says `WouldBlock`, or the cap is reached.
    fn accept(&mut self, now: Instant) {
        while self.accept_paused_until.is_none() && !self.listeners.is_empty() {
            if self.conns.len() >= self.settings.max_connections {
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

    /// Takes one accepted connection in: admitted by the limits (a denied
    /// client is closed before a byte is read), its TLS begun, registered,
    /// and given its first turn.
    fn add(&mut self, socket: TcpStream, peer: SocketAddr, listener: usize, now: Instant) {
        let proxied = self.settings.proxy.as_ref();
        if proxied.is_some_and(|proxy| !proxy.admits(peer)) {
            return;
        }
        let Some(endpoint) = self.endpoints.get(listener) else {
            return;
        };
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let mut session = Session::new(key, Arc::clone(&endpoint.service), peer.ip(), now);
        // Without a PROXY header the peer is the client, and the limits
        // decide now; behind a balancer, once the header names the client.
        if proxied.is_none() && !session.admit(self.clock.reading()) {
            log::debug!("{peer} is denied (--allow, --deny): closed");
            return;
        }
        // Responses are written whole; Nagle would only delay the last segment.
        let _ = socket.set_nodelay(true);
        let mut transport = match Transport::accept(socket, endpoint.tls.as_deref()) {
            Ok(transport) => transport,
            Err(e) => {
                log::warn!("TLS for {peer}: {e}");
                return;
            }
        };
        let registered = Source::Conn(key).token().and_then(|token| {
            self.poll
                .registry()
                .register(transport.socket_mut(), token, Interest::READABLE)
        });
        if let Err(e) = registered {
            log::warn!("register {peer}: {e}");
            return;
        }
        self.next_serial += 1;
        log::trace!("#{key}: accepted {peer}");
        let conn = Conn::new(key, self.next_serial, transport, session, proxied.is_some());
        self.settings.stats.opened(conn.phase());
        entry.insert(conn);
        self.drive(key, Wake::Accepted, now);
    }

    /// Drives one connection's turn inside the panic boundary: a bug in its
    /// work costs that connection, never the loop and the connections it
    /// holds. Then what the turn left is settled.
    fn drive(&mut self, key: usize, wake: Wake, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return; // closed earlier in this turn
        };
        let mut lent = Lent {
            now: self.clock.reading(),
            buffers: &mut self.buffers,
            scratch: &mut self.scratch,
            registry: self.poll.registry(),
        };
        let settled = contain::catch(|| conn.turn(wake, &mut lent)).or_else(|message| {
            let recovered = conn.recover(&message, lent.now);
            match recovered.then(|| contain::catch(|| conn.turn(Wake::OutOfBudget, &mut lent))) {
                Some(Ok(settled)) => Ok(settled),
                _ => Err(message),
            }
        });
        match settled {
            Ok(settled) => self.after_turn(key, settled, now),
            Err(message) => {
                log::error!("#{key}: dropped after a second panic ({message})");
                if contain::catch(|| self.close(key, now)).is_err() {
                    self.conns.try_remove(key);
                }
            }
        }
    }

    /// After a connection's turn: the log gets what was delivered, the
    /// counters what it does now, and it is closed, or driven again this
    /// turn if it ran out of budget, with its deadline armed.
    fn after_turn(&mut self, key: usize, settled: Settled, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(log) = self.settings.access_log.as_mut() {
            let (client, entries) = conn.take_log_entries();
            log.record(client, entries, self.clock.log_time());
        }
        match settled {
            Settled::Closed => self.close(key, now),
            Settled::Open { again } => {
                let (was, is) = conn.rephase();
                self.settings.stats.moved(was, is);
                if again {
                    self.again.push_back(key);
                }
                self.arm_deadline(key);
            }
        }
    }

    fn close(&mut self, key: usize, now: Instant) {
        let Some(mut conn) = self.conns.try_remove(key) else {
            return;
        };
        if let Some(log) = self.settings.access_log.as_mut() {
            // Responses cut short by the close are logged with what was sent.
            let (client, entries) = conn.take_log_entries();
            log.record(client, entries, self.clock.log_time());
        }
        self.settings.stats.closed(conn.phase());
        let (served, client) = conn.close();
        log::trace!("#{key}: closed ({client} after {served} requests)");
        // An event already fetched for this token in this turn may reach a
        // newer connection in the same slot: it only makes that one try a
        // read or write, which is harmless.
        if std::mem::take(&mut self.accept_at_cap) {
            self.accept(now);
        }
    }

    /// Arms the connection's deadline in the heap, if it needs one armed.
    fn arm_deadline(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let Some(deadline) = conn.deadline_to_arm() else {
            return;
        };
        let owner = Owner {
            key,
            serial: conn.serial(),
        };
        self.deadlines.arm(deadline, owner);
        // Superseded entries stay in the heap until swept.
        if self.deadlines.len() > 4 * self.conns.len() + 1024 {
            let conns = &self.conns;
            self.deadlines.sweep(|at, owner| {
                conns
                    .get(owner.key)
                    .is_some_and(|conn| conn.has_armed(at, owner.serial))
            });
        }
    }

    /// A deadline from the heap has come: its connection's turn starts with
    /// it, unless it was superseded (the connection closed, or armed an
    /// earlier one).
    fn deadline_came(&mut self, at: Instant, owner: Owner, now: Instant) {
        let current = self
            .conns
            .get_mut(owner.key)
            .is_some_and(|conn| conn.deadline_came(at, owner.serial));
        if current {
            self.drive(owner.key, Wake::Deadline, now);
        }
    }

    /// SIGUSR1 reopens this loop's access log, and in the first loop the
    /// server's log; SIGHUP also reloads what the process reads at start.
    fn reload(&mut self, signal: &Signal) {
        if let Some(log) = self.settings.access_log.as_mut()
            && let Err(e) = log.reopen()
        {
            log::error!("{e}; still writing to the old file");
        }
        match (&self.settings.process, signal) {
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
            self.drive(key, Wake::Shutdown, now);
        }
    }
}

/// Registers the file watch of each distinct service of `endpoints` (several
/// listeners may share one), so that the loop hears of changed files the way
/// it hears of sockets.
fn register_watches(
    registry: &mio::Registry,
    endpoints: &[Endpoint],
) -> io::Result<Vec<Arc<Service>>> {
    let mut watches: Vec<Arc<Service>> = Vec::new();
    for endpoint in endpoints {
        let service = &endpoint.service;
        if watches.iter().any(|known| Arc::ptr_eq(known, service)) {
            continue;
        }
        if let Some(fd) = service.watch_fd() {
            let token = Source::Watch(watches.len()).token()?;
            registry.register(&mut mio::unix::SourceFd(&fd), token, Interest::READABLE)?;
            watches.push(Arc::clone(service));
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
