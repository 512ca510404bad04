//! The threaded models, for comparison with the loop: the same sessions over
//! blocking sockets.
//!
//! - `threads`: every accepted connection gets an OS thread of its own.
//! - `pool --threads N`: N threads take accepted connections from a queue, each
//!   serving one connection to its end. With N connections busy, newcomers are
//!   accepted but wait in the queue, unanswered, until a thread is free; that is
//!   the model's known weakness (a handful of idle keep-alive clients can hold
//!   every thread), and the benchmarks show it.
//!
//! The acceptor itself is a small mio loop over the listeners, the signal pipe
//! and a waker, running the same accept loop and shutdown as the event loop;
//! only the connections are served by blocking threads ([`blocking`]).

mod blocking;
mod registry;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use super::endpoint::Endpoints;
use super::listener::{ACCEPT_BACKOFF, Accepted, Acceptor};
use super::pressure::Pressure;
use super::signals::{ProcessReload, Signal, Signals};
use crate::access_log::AccessLog;
use crate::config::{Config, Model};
use crate::stats::DriverKind;
use blocking::Shared;
use registry::Registered;

const SIGNALS: Token = Token(0);
const WAKER: Token = Token(1);
/// Listener `i` (one per bound address) has token `FIRST_LISTENER + i`.
const FIRST_LISTENER: usize = 2;

/// Stack for a connection thread. Deflate (for gzip) in a debug build needs
/// more than 256 KiB; 1 MiB leaves room, and pages never touched cost nothing.
const THREAD_STACK: usize = 1024 * 1024;

struct ThreadedConfig {
    /// `Threads` or `Pool`.
    model: Model,
    /// Threads in the pool.
    threads: usize,
    max_connections: usize,
    shutdown_timeout: Duration,
}

/// An accepted connection for a thread: its socket, its peer, its id, its
/// place in the registry, and the endpoint its listener serves (by index).
type Job = (std::net::TcpStream, SocketAddr, usize, Registered, usize);

/// The queue the pool's threads take connections from.
#[derive(Default)]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

impl Queue {
    fn push(&self, job: Job) {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(job);
        self.ready.notify_one();
    }

    fn pop(&self) -> Job {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(job) = jobs.pop_front() {
                return job;
            }
            jobs = self.ready.wait(jobs).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The acceptor's state.
struct Acceptance {
    poll: Poll,
    listeners: Vec<TcpListener>,
    /// The endpoint (an index in `Shared::endpoints`) each listener serves.
    routes: Vec<usize>,
    acceptor: Acceptor,
    signals: Signals,
    process: ProcessReload,
    shared: Arc<Shared>,
    queue: Arc<Queue>,
    config: ThreadedConfig,
    next_id: usize,
    paused_until: Option<Instant>,
    pressure: Pressure,
}

/// Serves the listeners of `per_loop` (the threaded models have one set)
/// with threads, until a graceful shutdown completes; `ready` is called once
/// the acceptor (and the pool) exist.
pub(crate) fn run(
    mut per_loop: Vec<Vec<(std::net::TcpListener, usize)>>,
    endpoints: &impl Endpoints,
    access_log: Option<AccessLog>,
    process: ProcessReload,
    config: &Config,
    ready: impl FnOnce(),
) -> io::Result<()> {
    let (stats, endpoints) = endpoints.for_driver(DriverKind::Threads);
    let shared = Arc::new(Shared {
        endpoints,
        stats,
        proxy: config.proxy.clone(),
        registry: Arc::default(),
        access_log: access_log.map(std::sync::Mutex::new),
    });
    let threaded = ThreadedConfig {
        model: config.model,
        threads: config.threads.max(1),
        max_connections: config.max_connections,
        shutdown_timeout: config.shutdown_timeout,
    };
    let listeners = per_loop.pop().unwrap_or_default();
    accept(listeners, shared, process, threaded, ready)
}

/// Accepts and dispatches until a graceful shutdown completes.
fn accept(
    listeners: Vec<(std::net::TcpListener, usize)>,
    shared: Arc<Shared>,
    process: ProcessReload,
    config: ThreadedConfig,
    ready: impl FnOnce(),
) -> io::Result<()> {
    let poll = Poll::new()?;
    let routes = listeners.iter().map(|(_, endpoint)| *endpoint).collect();
    let mut registered: Vec<TcpListener> = listeners
        .into_iter()
        .map(|(listener, _)| TcpListener::from_std(listener))
        .collect();
    for (i, listener) in registered.iter_mut().enumerate() {
        let token = Token(FIRST_LISTENER + i);
        poll.registry()
            .register(listener, token, Interest::READABLE)?;
    }
    let signals = Signals::watch(poll.registry(), SIGNALS, config.shutdown_timeout)?;
    shared
        .registry
        .set_waker(mio::Waker::new(poll.registry(), WAKER)?);
    let queue = Arc::new(Queue::default());
    if config.model == Model::Pool {
        start_pool(config.threads, &queue, &shared)?;
    }
    ready();
    let pressure = Pressure::new(Arc::clone(&shared.stats));
    Acceptance {
        pressure,
        poll,
        listeners: registered,
        routes,
        acceptor: Acceptor::default(),
        signals,
        process,
        shared,
        queue,
        config,
        next_id: 0,
        paused_until: None,
    }
    .run()
}

fn start_pool(threads: usize, queue: &Arc<Queue>, shared: &Arc<Shared>) -> io::Result<()> {
    for n in 0..threads {
        let (queue, shared) = (Arc::clone(queue), Arc::clone(shared));
        std::thread::Builder::new()
            .name(format!("pool-{n}"))
            .stack_size(THREAD_STACK)
            .spawn(move || {
                loop {
                    let (stream, peer, id, registration, endpoint) = queue.pop();
                    blocking::serve(stream, peer, id, registration, endpoint, &shared);
                }
            })?;
    }
    Ok(())
}

impl Acceptance {
    fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        loop {
            let deadlines = [self.paused_until, self.signals.deadline()];
            let timeout =
                deadlines.into_iter().flatten().min().map(|at| {
                    at.saturating_duration_since(Instant::now()) + Duration::from_millis(1)
                });
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            let signalled = events.iter().any(|event| event.token() == SIGNALS);
            let knocked = events.iter().any(|event| event.token().0 >= FIRST_LISTENER);
            if signalled {
                match self.signals.on_event(self.shared.registry.len(), now) {
                    Signal::ExitNow => return Ok(()),
                    Signal::Begin => self.begin_shutdown(),
                    Signal::Reopen => {
                        self.shared.reopen_access_log();
                        self.process.reopen_logs();
                    }
                    Signal::Reload => {
                        self.shared.reopen_access_log();
                        self.process.reload();
                    }
                    Signal::None => {}
                }
            }
            if self
                .signals
                .shutdown_is_over(self.shared.registry.len(), now)
            {
                // Threads still blocked in a read or write are woken by a
                // shut socket; the process then exits under them.
                self.shared.registry.close_all();
                return Ok(());
            }
            if self.paused_until.is_some_and(|until| now < until) {
                continue;
            }
            self.paused_until = None;
            let held = self.shared.registry.len();
            if knocked && held >= self.config.max_connections {
                // A newcomer is knocking while every slot is taken.
                self.pressure.at_cap(held, now);
            }
            self.accept(now);
        }
    }

    /// Accepts on every listener until `WouldBlock` or the cap; a closing
    /// connection wakes us (through the waker) to try again.
    fn accept(&mut self, now: Instant) {
        while self.shared.registry.len() < self.config.max_connections {
            match self.acceptor.next(&self.listeners) {
                Accepted::Connection(socket, peer, listener) => {
                    if self.shared.proxy.as_ref().is_some_and(|p| !p.admits(peer)) {
                        continue;
                    }
                    let endpoint = self.routes.get(listener).copied().unwrap_or_default();
                    // Without a PROXY header the peer is the client: one the
                    // limits deny is closed here, before a thread or a byte.
                    let service = self.shared.endpoints.get(endpoint).map(|e| &e.service);
                    if self.shared.proxy.is_none()
                        && service.is_some_and(|service| !service.allows(peer.ip()))
                    {
                        log::debug!("{peer} is denied (--allow, --deny): closed");
                        continue;
                    }
                    self.next_id += 1;
                    if let Err(e) = self.dispatch(socket, peer, endpoint) {
                        // No thread, or no descriptor to register it with.
                        self.pressure.exhausted(&e, ACCEPT_BACKOFF, now);
                        self.paused_until = Some(now + ACCEPT_BACKOFF);
                        return;
                    }
                }
                Accepted::Drained => return,
                Accepted::Pause(e) => {
                    self.pressure.exhausted(&e, ACCEPT_BACKOFF, now);
                    self.paused_until = Some(now + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    /// Hands one accepted connection to a thread.
    fn dispatch(
        &self,
        socket: mio::net::TcpStream,
        peer: SocketAddr,
        endpoint: usize,
    ) -> io::Result<()> {
        let id = self.next_id;
        let stream = std::net::TcpStream::from(std::os::fd::OwnedFd::from(socket));
        let registration = self.shared.registry.register(stream.try_clone()?);
        if self.config.model == Model::Pool {
            self.queue.push((stream, peer, id, registration, endpoint));
            return Ok(());
        }
        let shared = Arc::clone(&self.shared);
        // If the thread cannot be created, the closure (and with it the
        // stream and its registration) is dropped: the client sees a close.
        std::thread::Builder::new()
            .name(format!("conn-{id}"))
            .stack_size(THREAD_STACK)
            .spawn(move || blocking::serve(stream, peer, id, registration, endpoint, &shared))?;
        Ok(())
    }

    /// The first signal: stop accepting; busy connections finish their
    /// exchange, idle ones are woken and close.
    fn begin_shutdown(&mut self) {
        for mut listener in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.shared.registry.begin_drain();
    }
}
