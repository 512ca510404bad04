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
//! The acceptor itself is a small mio loop over the listener, the signal pipe
//! and a waker, so that signals and the connection cap work as in the loop
//! model; only the connections are served by blocking threads.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use super::blocking::{self, Shared};
use super::listener::{ACCEPT_BACKOFF, is_resource_exhaustion};
use super::registry::Registered;

const SIGNALS: Token = Token(0);
const WAKER: Token = Token(1);
/// Listener `i` (one per bound address) has token `FIRST_LISTENER + i`.
const FIRST_LISTENER: usize = 2;

/// Stack for a connection thread. Deflate (for gzip) in a debug build needs
/// more than 256 KiB; 1 MiB leaves room, and pages never touched cost nothing.
const THREAD_STACK: usize = 1024 * 1024;

/// How accepted connections are handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    ThreadPerConnection,
    Pool { threads: usize },
}

pub struct ThreadedConfig {
    pub dispatch: Dispatch,
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
}

type Job = (std::net::TcpStream, SocketAddr, usize, Registered);

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

/// Accepts and dispatches until a graceful shutdown completes.
pub fn run(
    listeners: Vec<std::net::TcpListener>,
    shared: Arc<Shared>,
    config: ThreadedConfig,
    ready: impl FnOnce(),
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut listeners: Vec<TcpListener> =
        listeners.into_iter().map(TcpListener::from_std).collect();
    for (i, listener) in listeners.iter_mut().enumerate() {
        poll.registry()
            .register(listener, Token(FIRST_LISTENER + i), Interest::READABLE)?;
    }
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)?;
    shared
        .registry
        .set_waker(mio::Waker::new(poll.registry(), WAKER)?);

    let queue = Arc::new(Queue::default());
    if let Dispatch::Pool { threads } = config.dispatch {
        for n in 0..threads {
            let (queue, shared) = (Arc::clone(&queue), Arc::clone(&shared));
            std::thread::Builder::new()
                .name(format!("pool-{n}"))
                .stack_size(THREAD_STACK)
                .spawn(move || {
                    loop {
                        let (stream, peer, id, registration) = queue.pop();
                        blocking::serve(stream, peer, id, registration, &shared);
                    }
                })?;
        }
    }

    ready();
    let mut events = Events::with_capacity(64);
    let mut next_id = 0;
    let mut paused_until: Option<Instant> = None;
    let mut shutdown_deadline: Option<Instant> = None;
    loop {
        let timeout = [paused_until, shutdown_deadline]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(Instant::now()) + Duration::from_millis(1));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let now = Instant::now();
        for event in events.iter() {
            if event.token() == SIGNALS && signals.pending().count() > 0 {
                if shutdown_deadline.is_some() {
                    log::info!("second signal: exiting now");
                    return Ok(());
                }
                log::info!(
                    "shutting down: finishing {} connections (up to {:?})",
                    shared.registry.len(),
                    config.shutdown_timeout
                );
                for mut closing in std::mem::take(&mut listeners) {
                    let _ = poll.registry().deregister(&mut closing);
                }
                shared.registry.begin_drain();
                shutdown_deadline = Some(now + config.shutdown_timeout);
            }
        }
        if let Some(deadline) = shutdown_deadline {
            if shared.registry.is_empty() {
                log::info!("shutdown complete");
                return Ok(());
            }
            if now >= deadline {
                log::info!(
                    "shutdown grace period over: closing {} connections",
                    shared.registry.len()
                );
                shared.registry.close_all();
                return Ok(());
            }
            continue;
        }
        if paused_until.is_some_and(|until| now < until) {
            continue;
        }
        paused_until = None;
        // Accept on every listener until WouldBlock or the cap; a closing
        // connection wakes us (through the waker) to try again.
        'accepting: for listener in &listeners {
            while shared.registry.len() < config.max_connections {
                match listener.accept() {
                    Ok((socket, peer)) => {
                        next_id += 1;
                        if let Err(e) =
                            dispatch(socket, peer, next_id, &shared, &queue, config.dispatch)
                        {
                            log::warn!(
                                "cannot serve {peer}: {e}; pausing accepts for {ACCEPT_BACKOFF:?}"
                            );
                            paused_until = Some(now + ACCEPT_BACKOFF);
                            break 'accepting;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if is_resource_exhaustion(&e) => {
                        log::warn!("accept: {e}; pausing for {ACCEPT_BACKOFF:?}");
                        paused_until = Some(now + ACCEPT_BACKOFF);
                        break 'accepting;
                    }
                    Err(e) => log::debug!("accept: {e}"),
                }
            }
        }
    }
}

/// Hands one accepted connection to a thread.
fn dispatch(
    socket: mio::net::TcpStream,
    peer: SocketAddr,
    id: usize,
    shared: &Arc<Shared>,
    queue: &Arc<Queue>,
    how: Dispatch,
) -> io::Result<()> {
    let stream = std::net::TcpStream::from(std::os::fd::OwnedFd::from(socket));
    let registration = shared.registry.register(stream.try_clone()?);
    match how {
        Dispatch::Pool { .. } => queue.push((stream, peer, id, registration)),
        Dispatch::ThreadPerConnection => {
            let shared = Arc::clone(shared);
            // If the thread cannot be created, the closure (and with it the
            // stream and its registration) is dropped: the client sees a close.
            std::thread::Builder::new()
                .name(format!("conn-{id}"))
                .stack_size(THREAD_STACK)
                .spawn(move || blocking::serve(stream, peer, id, registration, &shared))?;
        }
    }
    Ok(())
}
