//! One connection served to its end over a blocking `std::net` socket: the
//! driver the threaded models share.
//!
//! It holds the same `Session` as the loop and speaks the same verbs. Where
//! the loop waits for readiness, this waits inside `read` and `write`, with the
//! socket's timeout set to the session's next deadline before each call, so the
//! header, keep-alive, body and send timeouts mean the same thing here. What
//! blocking I/O cannot do:
//!
//! - read and write at once: a client that pipelines while it is being sent a
//!   large response is read only once the response has been written;
//! - wait for one of several connections: each needs a thread of its own.
//!
//! Bytes move through the same [`Transport`] as the loop's, over the blocking
//! socket: plain or TLS, it is the transport that tells the session what
//! moved.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::registry::{Registered, Registry};
use crate::access_log::AccessLog;
use crate::config::ProxyConfig;
use crate::driver::clock::Clock;
use crate::driver::contain;
use crate::driver::endpoint::Endpoint;
use crate::driver::proxy_protocol;
use crate::driver::transport::{Received, Transport};
use crate::http::READ_SIZE;
use crate::session::Session;
use crate::stats::{DriverStats, Phase};

/// Everything a connection thread shares with the others.
pub(super) struct Shared {
    /// What each listener serves, by the index the acceptor hands on.
    pub(super) endpoints: Vec<Endpoint>,
    pub(super) registry: Arc<Registry>,
    pub(super) access_log: Option<Mutex<AccessLog>>,
    /// Every connection thread's counters, for the status page.
    pub(super) stats: Arc<DriverStats>,
    /// Connections begin with a PROXY header, from trusted peers only.
    pub(super) proxy: Option<ProxyConfig>,
}

impl Shared {
    /// SIGHUP or SIGUSR1: the access log is reopened (after a rotation).
    pub(super) fn reopen_access_log(&self) {
        if let Some(log) = &self.access_log {
            let reopened = log.lock().unwrap_or_else(|p| p.into_inner()).reopen();
            if let Err(e) = reopened {
                log::error!("{e}; still writing to the old file");
            }
        }
    }
}

/// Serves `stream` (registered by the acceptor) until the connection ends.
pub(super) fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    id: usize,
    registration: Registered,
    endpoint: usize,
    shared: &Shared,
) {
    let Some(endpoint) = shared.endpoints.get(endpoint) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_nonblocking(false);
    let mut stream = stream;
    let mut session = Session::new(id, Arc::clone(&endpoint.service), peer.ip(), Instant::now());
    let mut peer = peer;
    if shared.proxy.is_some() {
        match take_proxy_header(&mut stream, &session) {
            Ok(Some(client)) => {
                peer = client;
                session.set_client(client.ip());
            }
            Ok(None) => {}
            Err(e) => {
                log::debug!("#{id}: no PROXY header from {peer} ({e}): closed");
                return;
            }
        }
    }
    // The client is known: the limits decide (a denial without a PROXY
    // header was decided at accept; asking again costs a lookup, not a byte).
    let clock = Clock::default();
    if !session.admit(clock.reading()) {
        log::debug!("#{id}: {} is denied: closed", session.client());
        return;
    }
    // A thread's connection keeps its buffer: the thread's stack dwarfs it.
    session.lend_buffer(vec![0; READ_SIZE]);
    let transport = match Transport::accept(stream, endpoint.tls.as_deref()) {
        Ok(transport) => transport,
        Err(e) => {
            log::warn!("TLS for {peer}: {e}");
            return;
        }
    };
    let phase = transport.first_phase();
    shared.stats.opened(phase);
    BlockingConnection {
        transport,
        peer,
        id,
        session,
        clock,
        scratch: Vec::new(),
        draining: false,
        phase,
    }
    .run(shared, &registration);
}

/// Reads the PROXY header, waiting at most until the session's first
/// deadline: the client it names, if any.
fn take_proxy_header(stream: &mut TcpStream, session: &Session) -> io::Result<Option<SocketAddr>> {
    let wait = session
        .deadline()
        .map(|d| d.saturating_duration_since(Instant::now()));
    stream.set_read_timeout(wait.filter(|w| !w.is_zero()))?;
    proxy_protocol::take_blocking(stream)
}

struct BlockingConnection {
    transport: Transport<TcpStream>,
    peer: SocketAddr,
    id: usize,
    session: Session,
    /// This thread's clock.
    clock: Clock,
    scratch: Vec<u8>,
    draining: bool,
    /// What the status page last counted it as doing.
    phase: Phase,
}

/// Whether a connection goes on after one step.
enum Step {
    Continue,
    Closed,
}

impl BlockingConnection {
    /// Steps the connection to its end, each step inside the panic boundary:
    /// a bug costs this connection (answered 500 if it still can be), never
    /// the thread, so a pool keeps every one of its threads.
    fn run(&mut self, shared: &Shared, registration: &Registered) {
        let mut panicked = false;
        loop {
            match contain::catch(|| self.step(shared, registration)) {
                Ok(Step::Continue) => self.note_phase(&shared.stats),
                Ok(Step::Closed) => break,
                Err(message) => {
                    registration.set_idle(false);
                    if panicked {
                        log::error!("#{}: dropped after a second panic ({message})", self.id);
                        return;
                    }
                    panicked = true;
                    let line = self.session.request_line();
                    contain::report(self.id, line.as_deref(), &message);
                    self.clock.tick();
                    let now = self.clock.reading();
                    if contain::catch(|| self.session.recover_from_panic(now)).is_err() {
                        return;
                    }
                }
            }
        }
        self.log_delivered(shared);
        self.transport.say_goodbye();
        shared.stats.closed(self.phase);
        log::trace!("#{}: closed ({})", self.id, self.peer);
    }

    /// Counts the connection under what it is doing now.
    fn note_phase(&mut self, stats: &DriverStats) {
        let phase = self.transport.phase(&self.session);
        stats.moved(self.phase, phase);
        self.phase = phase;
    }

    /// Writes everything queued, then waits for input or a deadline.
    fn step(&mut self, shared: &Shared, registration: &Registered) -> Step {
        if !self.draining && shared.registry.draining.load(Ordering::SeqCst) {
            self.draining = true;
            self.clock.tick();
            self.session.drain(self.clock.reading());
        }
        self.write_all_queued();
        if self.session.take_shutdown_request() {
            self.transport.shut_sending();
        }
        self.log_delivered(shared);
        if self.session.is_closed() {
            return Step::Closed;
        }
        if self.transport.wants_read(&self.session) {
            let idle = self.session.is_idle();
            registration.set_idle(idle);
            // Checked after marking ourselves idle: a shutdown that began
            // in between either sees us idle and wakes us, or is seen here.
            if idle && !self.draining && shared.registry.draining.load(Ordering::SeqCst) {
                registration.set_idle(false);
                return Step::Continue;
            }
            self.read_once();
            registration.set_idle(false);
        } else if !self.transport.has_bytes_to_send(&self.session) {
            // Nothing to read, nothing to write, not closed: only time can
            // move it (a deadline). Wait for it rather than spin.
            self.sleep_until_deadline();
        }
        Step::Continue
    }

    /// How long the next blocking call may wait: until the session's deadline.
    fn time_left(&self) -> Option<Duration> {
        self.session.deadline().map(|deadline| {
            // A zero timeout means "forever" to setsockopt: wait at least 1 ms.
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        })
    }

    fn on_deadline(&mut self) {
        self.clock.tick();
        self.session.on_deadline(self.clock.reading());
    }

    /// Writes until nothing is left, each write waiting at most until the
    /// session's deadline (which it then hears of).
    fn write_all_queued(&mut self) {
        while self.transport.has_bytes_to_send(&self.session) && !self.session.is_closed() {
            let _ = self.transport.socket().set_write_timeout(self.time_left());
            let sent = self
                .transport
                .write(&mut self.session, &mut self.clock, &mut self.scratch);
            self.transport.log_turn(self.id);
            match sent {
                Ok(sent) => log::trace!("#{}: {sent}", self.id),
                Err(e) if is_timeout(&e) => self.on_deadline(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("#{}: write: {e}", self.id);
                    self.session.abort();
                }
            }
        }
    }

    /// One blocking read, waiting at most until the session's deadline (TLS
    /// first hands over any plaintext it holds); the clock is read after the
    /// call, since it may have waited.
    fn read_once(&mut self) {
        let _ = self.transport.socket().set_read_timeout(self.time_left());
        let received = self
            .transport
            .read(self.id, &mut self.session, &mut self.clock);
        match received {
            Ok(Received::Bytes { .. } | Received::Held | Received::Eof | Received::Nothing) => {}
            Err(e) if is_timeout(&e) => self.on_deadline(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("#{}: read: {e}", self.id);
                self.session.abort();
            }
        }
    }

    fn sleep_until_deadline(&mut self) {
        match self.time_left() {
            Some(wait) => {
                std::thread::sleep(wait);
                self.on_deadline();
            }
            None => self.session.abort(),
        }
    }

    fn log_delivered(&mut self, shared: &Shared) {
        if let Some(log) = &shared.access_log {
            let entries = self.session.take_log_entries();
            if !entries.is_empty()
                && let Ok(mut log) = log.lock()
            {
                log.record(self.peer.ip(), entries, self.clock.log_time());
                // No loop turn to wait for: write now.
                log.flush();
            }
        }
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
