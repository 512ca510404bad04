//! Opening the listening socket.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Connections the kernel may queue before we accept them. It caps this at
/// `net.core.somaxconn` (4096 on current kernels); std's default of 128 drops
/// connections under a burst of a few hundred clients.
const BACKLOG: i32 = 4096;

/// After `accept` fails for want of descriptors or kernel memory, how long every
/// driver waits before accepting again: retrying at once would spin, waiting for
/// the listener to signal again would stall (it is edge-triggered).
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Whether an `accept` error means the process or the system is out of
/// descriptors or kernel memory: every accept will fail until something is
/// released, so accepting must pause (`ACCEPT_BACKOFF`).
pub fn is_resource_exhaustion(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// How a listening socket is set up.
#[derive(Clone, Copy, Debug, Default)]
pub struct BindOptions {
    /// Several listeners (one per worker loop) share the address, and the
    /// kernel spreads connections across them.
    pub reuse_port: bool,
    /// An IPv6 listener takes IPv6 only (so `::` can sit beside `0.0.0.0`).
    pub v6_only: bool,
}

/// Binds a non-blocking listener.
pub fn bind(addr: SocketAddr, options: BindOptions) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if options.reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(options.v6_only)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}
