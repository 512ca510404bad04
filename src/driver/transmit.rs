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
        Front::Memory {
            count,
            file_follows: true,
        } => write_before_file(socket, &slices[..count])?,
        Front::Memory { count, .. } => socket.write_vectored(&slices[..count])?,
        Front::File { file, offset, len } => send_file(socket, file, offset, len, scratch)?,
    };
    if written == 0 {
        return Err(io::ErrorKind::WriteZero.into());
    }
    Ok(written)
}

/// Writes a response head that a file range follows. With `MSG_MORE` the kernel
/// holds a short write back until the file's bytes join it (as `TCP_CORK` would,
/// without two more system calls), so the head does not leave in a packet of
/// its own and the client does not wake up twice for one response.
#[cfg(target_os = "linux")]
fn write_before_file<S: AsRawFd>(socket: &mut S, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid ("no address, no control data").
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with iovec on Unix.
    message.msg_iov = slices.as_ptr() as *mut libc::iovec;
    message.msg_iovlen = slices.len() as _;
    // SAFETY: the descriptor is open and `message` points at live slices.
    let sent = unsafe {
        libc::sendmsg(
            socket.as_raw_fd(),
            &message,
            libc::MSG_MORE | libc::MSG_NOSIGNAL,
        )
    };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

#[cfg(not(target_os = "linux"))]
fn write_before_file<S: Write>(socket: &mut S, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    socket.write_vectored(slices)
}
