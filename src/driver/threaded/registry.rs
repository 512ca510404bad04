//! The live connections of the threaded models, as the acceptor sees them: how
//! many there are (for the connection cap), and a handle on each socket so a
//! graceful shutdown can reach threads blocked in `read`.
//!
//! The event loop needs none of this: it holds its connections itself.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use slab::Slab;

struct Entry {
    stream: TcpStream,
    idle: Arc<AtomicBool>,
}

#[derive(Default)]
pub(crate) struct Registry {
    /// Set when a graceful shutdown begins.
    pub draining: AtomicBool,
    live: Mutex<Slab<Entry>>,
    /// Woken whenever a connection ends (the acceptor may be waiting for a slot,
    /// or for the last connection of a shutdown).
    waker: Mutex<Option<mio::Waker>>,
}

/// A connection's place in the registry; dropping it gives the place up.
pub(crate) struct Registered {
    registry: Arc<Registry>,
    key: usize,
    idle: Arc<AtomicBool>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.unregister(self.key);
    }
}

impl Registered {
    /// Marks the connection as waiting for a new request (or not). A shutdown
    /// closes the reading side of idle connections to wake their threads.
    pub(crate) fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::SeqCst);
    }
}

impl Registry {
    fn live(&self) -> MutexGuard<'_, Slab<Entry>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn set_waker(&self, waker: mio::Waker) {
        *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(waker);
    }

    pub(crate) fn register(self: &Arc<Self>, stream: TcpStream) -> Registered {
        let idle = Arc::new(AtomicBool::new(false));
        let key = self.live().insert(Entry {
            stream,
            idle: Arc::clone(&idle),
        });
        Registered {
            registry: Arc::clone(self),
            key,
            idle,
        }
    }

    fn unregister(&self, key: usize) {
        self.live().try_remove(key);
        if let Some(waker) = self
            .waker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = waker.wake();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.live().len()
    }

    /// Starts a graceful shutdown: busy connections finish their exchange and
    /// close; idle ones are woken (their reading side shut) and close at once.
    pub(crate) fn begin_drain(&self) {
        // SeqCst pairs with the connection thread's `set_idle` then `draining`
        // check: either it sees `draining` before it blocks, or we see it idle.
        self.draining.store(true, Ordering::SeqCst);
        for (_, entry) in self.live().iter() {
            if entry.idle.load(Ordering::SeqCst) {
                let _ = entry.stream.shutdown(Shutdown::Read);
            }
        }
    }

    /// The grace period is over: every connection's socket is shut.
    pub(crate) fn close_all(&self) {
        for (_, entry) in self.live().iter() {
            let _ = entry.stream.shutdown(Shutdown::Both);
        }
    }
}
