//! Sending a range of a file to a socket.
//!
//! `sendfile(2)` moves the file's pages from the page cache to the socket
//! inside the kernel: no read into user space, no buffer per client. Linux,
//! FreeBSD and macOS each have one, with three signatures; all three may send
//! part of what was asked on a non-blocking socket, and say how much. Where
//! the call is refused (a file system that does not support it) the range goes
//! through a plain `pread` into the caller's scratch buffer and a `write`.
//!
//! Offsets are 64 bits on every target, 32-bit ARM included, so a file past
//! 2 GiB is served whole: `sendfile64` on Linux (glibc's `off_t` is 32 bits
//! there), and FreeBSD's and macOS's `off_t`, 64 bits everywhere.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// Most bytes handed to one call, so one large file cannot hold a thread (or the
/// loop, on a fast client) inside the kernel for long.
const MAX_PER_CALL: u64 = 2 << 20;

/// Bytes read per call on the fallback path.
const FALLBACK_CHUNK: usize = 64 * 1024;

/// How many bytes went, and by which path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SendFile {
    /// By `sendfile(2)`, inside the kernel.
    Sent(usize),
    /// Through the scratch buffer (`pread` and `write`).
    Copied(usize),
}

/// Sends up to `len` bytes of `file` from `offset`; says how many were sent.
/// A file that turns out shorter than promised is an error: the response's
/// Content-Length can no longer be honoured.
pub(super) fn send_file<S: Write + AsRawFd>(
    socket: &mut S,
    file: &File,
    offset: u64,
    len: u64,
    scratch: &mut Vec<u8>,
) -> io::Result<SendFile> {
    // At most MAX_PER_CALL, which fits a usize on every target.
    let count = len.min(MAX_PER_CALL) as usize;
    if count == 0 {
        return Ok(SendFile::Sent(0));
    }
    match sendfile(socket, file, offset, count) {
        Ok(sent) => return Ok(SendFile::Sent(sent)),
        Err(e) if !refused(&e) => return Err(e),
        Err(_) => {} // not supported for this file: fall back
    }
    read_and_write(socket, file, offset, count, scratch).map(SendFile::Copied)
}

/// Whether `sendfile` refused this file or socket (rather than failed to
/// send), so that a copy will do.
fn refused(e: &io::Error) -> bool {
    // A list, not a pattern: ENOTSUP and EOPNOTSUPP are one value on Linux
    // and two on the BSDs.
    const REFUSALS: [i32; 5] = [
        libc::EINVAL,
        libc::ENOSYS,
        libc::EOPNOTSUPP,
        libc::ENOTSUP,
        libc::ENOTSOCK,
    ];
    e.raw_os_error()
        .is_some_and(|code| REFUSALS.contains(&code))
}

/// An offset as the platform's 64-bit offset type.
fn offset_of<T: TryFrom<u64>>(offset: u64) -> io::Result<T> {
    T::try_from(offset).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))
}

/// Linux: `sendfile64(out, in, &offset, count)` returns what it sent, 0 at
/// the end of the file.
#[cfg(target_os = "linux")]
fn sendfile<S: AsRawFd>(socket: &S, file: &File, offset: u64, count: usize) -> io::Result<usize> {
    let mut position: libc::off64_t = offset_of(offset)?;
    // SAFETY: both descriptors are open for the duration of the call, and
    // `position` is a valid, exclusively borrowed off64_t.
    let sent =
        unsafe { libc::sendfile64(socket.as_raw_fd(), file.as_raw_fd(), &mut position, count) };
    match sent {
        0 => Err(file_shrank()),
        n if n > 0 => Ok(n as usize),
        _ => Err(io::Error::last_os_error()),
    }
}

/// FreeBSD: `sendfile(in, out, offset, count, headers, &sent, flags)` returns
/// -1 with EAGAIN (or EINTR) when it sent only part, and says how much in
/// `sent`; 0 bytes sent without an error is the end of the file.
#[cfg(target_os = "freebsd")]
fn sendfile<S: AsRawFd>(socket: &S, file: &File, offset: u64, count: usize) -> io::Result<usize> {
    let mut sent: libc::off_t = 0;
    // SAFETY: both descriptors are open for the duration of the call, no
    // header list is passed, and `sent` is a valid, exclusively borrowed off_t.
    let result = unsafe {
        libc::sendfile(
            file.as_raw_fd(),
            socket.as_raw_fd(),
            offset_of(offset)?,
            count,
            std::ptr::null_mut(),
            &mut sent,
            0,
        )
    };
    partial(result, sent)
}

/// macOS: `sendfile(in, out, offset, &len, headers, flags)` takes the count
/// in `len` and leaves what it sent there, with -1 and EAGAIN when that was
/// only part.
#[cfg(any(target_os = "macos", target_os = "ios"))]
fn sendfile<S: AsRawFd>(socket: &S, file: &File, offset: u64, count: usize) -> io::Result<usize> {
    let mut len: libc::off_t = offset_of(count as u64)?;
    // SAFETY: both descriptors are open for the duration of the call, no
    // header list is passed, and `len` is a valid, exclusively borrowed off_t.
    let result = unsafe {
        libc::sendfile(
            file.as_raw_fd(),
            socket.as_raw_fd(),
            offset_of(offset)?,
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    partial(result, len)
}

/// Elsewhere, every range is copied.
#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "macos",
    target_os = "ios"
)))]
fn sendfile<S: AsRawFd>(_: &S, _: &File, _: u64, _: usize) -> io::Result<usize> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// The BSDs' answer: bytes sent count even when the call says EAGAIN or
/// EINTR; none sent and no error is the end of the file.
#[cfg(any(target_os = "freebsd", target_os = "macos", target_os = "ios"))]
fn partial(result: libc::c_int, sent: libc::off_t) -> io::Result<usize> {
    let error = (result != 0).then(io::Error::last_os_error);
    match (usize::try_from(sent).unwrap_or(0), error) {
        (0, None) => Err(file_shrank()),
        (0, Some(e)) => Err(e),
        (n, None) => Ok(n),
        (n, Some(e))
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(n)
        }
        (_, Some(e)) => Err(e),
    }
}

fn read_and_write<S: Write>(
    socket: &mut S,
    file: &File,
    offset: u64,
    count: usize,
    scratch: &mut Vec<u8>,
) -> io::Result<usize> {
    let want = count.min(FALLBACK_CHUNK);
    if scratch.len() < want {
        scratch.resize(want, 0);
    }
    let read = file.read_at(scratch.get_mut(..want).unwrap_or_default(), offset)?;
    if read == 0 {
        return Err(file_shrank());
    }
    // Whatever the socket does not take now is read again next time: simpler
    // than keeping a per-connection copy, and this is the rare path.
    socket.write(scratch.get(..read).unwrap_or_default())
}

fn file_shrank() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "file shorter than its response",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn sends_the_requested_range() {
        let path = std::env::temp_dir().join(format!("oneloop-sendfile-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let file = File::open(&path).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let mut scratch = Vec::new();
        assert_eq!(
            send_file(&mut server, &file, 3, 4, &mut scratch).unwrap(),
            SendFile::Sent(4)
        );
        assert_eq!(
            read_and_write(&mut server, &file, 8, 2, &mut scratch).unwrap(),
            2
        );
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"345689");
        let past_end = send_file(&mut client, &file, 10, 5, &mut scratch).unwrap_err();
        assert_eq!(past_end.kind(), io::ErrorKind::UnexpectedEof);
        std::fs::remove_file(path).unwrap();
    }
}
