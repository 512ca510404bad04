//! One connection served to its end over a blocking `std::net` socket: the
//! driver the threaded models share.
//!
//! It runs the same `Session` as the loop. Where the loop waits for readiness,
//! this waits inside `read` and `write`, with the socket's timeout set to the
//! core's next deadline before each call, so the header, keep-alive, body and
//! send timeouts mean the same thing here. What blocking I/O cannot do:
//!
//! - read and write at once: a client that pipelines while it is being sent a
//!   large response is read only once the response has been written;
//! - wait for one of several connections: each needs a thread of its own.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::contain;
use super::registry::{Registered, Registry};
use super::transmit::write_once;
use crate::access_log::AccessLog;
use crate::app::App;
use crate::http::buffer::READ_SIZE;
use crate::http::date::DateCache;
use crate::http::{Now, Settings};
use crate::session::Session;

/// Everything a connection thread shares with the others.
pub struct Shared {
    pub app: Arc<App>,
    pub settings: Settings,
    pub registry: Arc<Registry>,
    pub access_log: Option<std::sync::Mutex<AccessLog>>,
}

/// Serves `stream` (registered by the acceptor) until the connection ends.
pub fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    id: usize,
    registration: Registered,
    shared: &Shared,
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_nonblocking(false);
    let mut connection = BlockingConnection {
        stream,
        peer,
        id,
        session: Session::new(id, shared.settings, Instant::now()),
        dates: DateCache::new(SystemTime::now()),
        scratch: Vec::new(),
        draining: false,
    };
    connection
        .session
        .conn_mut()
        .attach_buffer(vec![0; READ_SIZE]);
    connection.run(shared, &registration);
}

struct BlockingConnection {
    stream: TcpStream,
    peer: SocketAddr,
    id: usize,
    session: Session,
    /// This thread's Date text, formatted at most once a second.
    dates: DateCache,
    scratch: Vec<u8>,
    draining: bool,
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
                Ok(Step::Continue) => {}
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
                    let recovered = contain::catch(|| {
                        self.with_clock(|session, now| session.recover_from_panic(now));
                    });
                    if recovered.is_err() {
                        return;
                    }
                }
            }
        }
        self.log_delivered(shared);
        log::trace!("#{}: closed ({})", self.id, self.peer);
    }

    /// Answers what is buffered, writes it all, then waits for input or a deadline.
    fn step(&mut self, shared: &Shared, registration: &Registered) -> Step {
        if !self.draining && shared.registry.draining.load(Ordering::SeqCst) {
            self.draining = true;
            self.session.conn_mut().drain();
        }
        self.with_clock(|session, now| session.process(&shared.app, now));
        self.write_all_queued(shared);
        if self.session.conn_mut().take_shutdown_request() {
            let _ = self.stream.shutdown(Shutdown::Write);
        }
        self.log_delivered(shared);
        if self.session.conn().is_closed() {
            return Step::Closed;
        }
        if self.session.conn().wants_read() {
            let idle = self.session.conn().state() == crate::http::State::Idle;
            registration.set_idle(idle);
            // Checked after marking ourselves idle: a shutdown that began
            // in between either sees us idle and wakes us, or is seen here.
            if idle && !self.draining && shared.registry.draining.load(Ordering::SeqCst) {
                registration.set_idle(false);
                return Step::Continue;
            }
            self.read_once();
            registration.set_idle(false);
        } else if !self.session.conn().has_output() {
            // Nothing to read, nothing to write, not closed: only time can
            // move it (a deadline). Wait for it rather than spin.
            self.sleep_until_deadline();
        }
        Step::Continue
    }

    fn with_clock<T>(&mut self, f: impl FnOnce(&mut Session, Now<'_>) -> T) -> T {
        let now = Instant::now();
        self.dates.update(SystemTime::now());
        let clock = Now {
            instant: now,
            date: self.dates.as_str(),
        };
        f(&mut self.session, clock)
    }

    /// How long the next blocking call may wait: until the core's deadline.
    fn time_left(&self) -> Option<Duration> {
        self.session.conn().poll_timeout().map(|deadline| {
            // A zero timeout means "forever" to setsockopt: wait at least 1 ms.
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        })
    }

    fn on_deadline(&mut self) {
        self.with_clock(|session, now| session.conn_mut().handle_timeout(now));
    }

    fn write_all_queued(&mut self, shared: &Shared) {
        while self.session.conn().has_output() {
            let _ = self.stream.set_write_timeout(self.time_left());
            let result = write_once(
                &mut self.stream,
                self.session.conn().output(),
                &mut self.scratch,
            );
            match result {
                Ok(n) => {
                    self.session.conn_mut().written(n, Instant::now());
                    // Room in the queue may let buffered pipelined requests in.
                    self.with_clock(|session, now| session.process(&shared.app, now));
                }
                Err(e) if is_timeout(&e) => self.on_deadline(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("#{}: write: {e}", self.id);
                    self.session.abort();
                }
            }
        }
    }

    fn read_once(&mut self) {
        let _ = self.stream.set_read_timeout(self.time_left());
        let conn = self.session.conn_mut();
        match self.stream.read(conn.read_buffer()) {
            Ok(0) => conn.received_eof(Instant::now()),
            Ok(n) => conn.received(n, Instant::now()),
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
            let delivered = self.session.conn_mut().take_delivered();
            if !delivered.is_empty()
                && let Ok(mut log) = log.lock()
            {
                log.record(self.peer.ip(), delivered, SystemTime::now());
                // No loop turn to wait for: write now.
                log.flush();
            }
        }
    }
}

/// A socket timeout shows up as WouldBlock (or TimedOut on some systems).
fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
