//! Moving the front of a write queue onto a socket: one `writev` for the leading
//! in-memory segments (a response head and a small body, or a burst of pipelined
//! responses, in one system call), or one `sendfile` for a file range.
//!
//! Shared by every driver: the loop calls it on non-blocking sockets and stops at
//! `WouldBlock`; the threaded drivers call it on blocking ones.

use std::io::{self, IoSlice, Write};
use std::os::fd::AsRawFd;

use super::sendfile::send_file;
use crate::http::output::{Front, WriteQueue};

/// Slices handed to one `writev` (well under the kernel's IOV_MAX of 1024).
const MAX_SLICES: usize = 64;

/// Writes once from the front of `queue`; returns the bytes written, 0 only when
/// nothing is queued. The caller reports them with `Connection::written`.
pub fn write_once<S: Write + AsRawFd, R>(
    socket: &mut S,
    queue: &WriteQueue<R>,
    scratch: &mut Vec<u8>,
) -> io::Result<usize> {
    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
    let written = match queue.front(&mut slices) {
        Front::Empty => return Ok(0),
        Front::Memory(count) => socket.write_vectored(&slices[..count])?,
        Front::File { file, offset, len } => send_file(socket, file, offset, len, scratch)?,
    };
    if written == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    Ok(written)
}
