//! Moving the front of a session's output onto a socket: one `writev` for the
//! leading in-memory segments (a response head and a small body, or a burst of
//! pipelined responses, in one system call), or one `sendfile` for a file range.
//!
//! Shared by every driver: the loop calls it on non-blocking sockets and stops at
//! `WouldBlock`; the threaded drivers call it on blocking ones.

use std::fmt;
use std::io::{self, IoSlice, Write};
use std::os::fd::AsRawFd;

use super::sendfile::{SendFile, send_file};
use crate::http::Front;

/// Slices handed to one `writev` (well under the kernel's IOV_MAX of 1024).
pub(crate) const MAX_SLICES: usize = 64;

/// What one write moved, and how: the trace says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Written {
    pub bytes: usize,
    pub how: How,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum How {
    /// `writev` of this many in-memory slices (`sendmsg` with `MSG_MORE` when a
    /// file range follows them).
    Writev { slices: usize },
    /// `sendfile` of a file range.
    Sendfile,
    /// A file range read with `pread` and written, where sendfile is refused.
    Copied,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wrote {} bytes by ", self.bytes)?;
        match self.how {
            How::Writev { slices: 1 } => f.write_str("writev (1 slice)"),
            How::Writev { slices } => write!(f, "writev ({slices} slices)"),
            How::Sendfile => f.write_str("sendfile"),
            How::Copied => f.write_str("pread and write"),
        }
    }
}

/// Writes once what `front` shows of a session's output (its memory
/// segments filled into `slices`); the caller reports the bytes with
/// `Session::written`. Nothing queued writes nothing (0 bytes).
pub(super) fn write_once<S: Write + AsRawFd>(
    socket: &mut S,
    front: Front<'_>,
    slices: &[IoSlice<'_>],
    scratch: &mut Vec<u8>,
) -> io::Result<Written> {
    let written = match front {
        Front::Empty => {
            return Ok(Written {
                bytes: 0,
                how: How::Writev { slices: 0 },
            });
        }
        Front::Memory {
            count,
            file_follows,
        } => {
            let slices = slices.get(..count).unwrap_or_default();
            let bytes = if file_follows {
                write_before_file(socket, slices)?
            } else {
                socket.write_vectored(slices)?
            };
            Written {
                bytes,
                how: How::Writev { slices: count },
            }
        }
        Front::File { file, offset, len } => match send_file(socket, file, offset, len, scratch)? {
            SendFile::Sent(bytes) => Written {
                bytes,
                how: How::Sendfile,
            },
            SendFile::Copied(bytes) => Written {
                bytes,
                how: How::Copied,
            },
        },
    };
    if written.bytes == 0 {
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
