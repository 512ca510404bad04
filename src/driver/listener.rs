//! The one accept loop every driver runs over its listening sockets (the
//! event loop and the threaded models' acceptor). The sockets are opened at
//! start (`server::listen`).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpStream;

/// After `accept` fails for want of descriptors or kernel memory, how long every
/// driver waits before accepting again: retrying at once would spin, waiting for
/// the listener to signal again would stall (it is edge-triggered).
pub(super) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Transient `accept` errors in a row (a client that reset before we accepted
/// it: ECONNABORTED, EPROTO) tolerated before pausing like for exhaustion.
const TRANSIENT_FAILURES: u32 = 64;

/// What one call of [`Acceptor::next`] found.
#[derive(Debug)]
pub(super) enum Accepted {
    /// A connection, who it is from, and the listener (by index) it came to.
    Connection(TcpStream, SocketAddr, usize),
    /// Every listener said `WouldBlock`: nothing is waiting.
    Drained,
    /// Accepting cannot succeed now (out of descriptors, or too many errors in a
    /// row); the caller pauses for [`ACCEPT_BACKOFF`]. Connections stay in the
    /// kernel's backlog, and accepting again at once would fail the same way, in
    /// a busy loop.
    Pause(io::Error),
}

/// The accept loop over a driver's listeners, one connection per call.
///
/// Listeners are edge-triggered: an event says "became readable", once. So a
/// driver takes connections until [`Accepted::Drained`], and wherever it stops
/// for another reason (its connection cap, a pause) it must remember to come
/// back: nothing will wake it for the connections already waiting.
#[derive(Debug, Default)]
pub(super) struct Acceptor {
    /// The listener to try first: they take turns, so a busy one cannot keep
    /// another's clients waiting.
    next: usize,
    failures: u32,
}

impl Acceptor {
    pub(super) fn next(&mut self, listeners: &[mio::net::TcpListener]) -> Accepted {
        let count = listeners.len();
        for turn in 0..count {
            let index = (self.next + turn) % count;
            let Some(listener) = listeners.get(index) else {
                continue;
            };
            loop {
                match listener.accept() {
                    Ok((socket, peer)) => {
                        self.next = index;
                        self.failures = 0;
                        // On a dual-stack socket an IPv4 client shows as
                        // `::ffff:192.0.2.1`; it is `192.0.2.1` for the log,
                        // the status page and the password gate alike.
                        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                        return Accepted::Connection(socket, peer, index);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if is_resource_exhaustion(&e) => return Accepted::Pause(e),
                    Err(e) => {
                        // ECONNABORTED and friends concern one connection, not
                        // the listener: carry on with the next, within reason.
                        log::debug!("accept: {e}");
                        self.failures += 1;
                        if self.failures >= TRANSIENT_FAILURES {
                            self.failures = 0;
                            return Accepted::Pause(e);
                        }
                    }
                }
            }
        }
        self.next = (self.next + 1) % count.max(1);
        Accepted::Drained
    }
}

/// Whether an `accept` error means the process or the system is out of
/// descriptors or kernel memory: every accept will fail until something is
/// released, so accepting must pause (`ACCEPT_BACKOFF`).
pub(super) fn is_resource_exhaustion(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
