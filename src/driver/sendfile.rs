//! Sending a range of a file to a socket.
//!
//! On Linux, `sendfile(2)` moves the file's pages from the page cache to the
//! socket inside the kernel: no read into user space, no buffer per client. Where
//! it is not available (another OS, or a file system that refuses it) the range
//! goes through a plain `pread` into the caller's scratch buffer and a `write`.

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
    let count = len.min(MAX_PER_CALL) as usize;
    if count == 0 {
        return Ok(SendFile::Sent(0));
    }
    #[cfg(target_os = "linux")]
    match sendfile(socket, file, offset, count) {
        Ok(sent) => return Ok(SendFile::Sent(sent)),
        Err(e)
            if !matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
            ) =>
        {
            return Err(e);
        }
        Err(_) => {} // not supported for this file: fall back
    }
    read_and_write(socket, file, offset, count, scratch).map(SendFile::Copied)
}

#[cfg(target_os = "linux")]
fn sendfile<S: AsRawFd>(socket: &S, file: &File, offset: u64, count: usize) -> io::Result<usize> {
    const _: () = assert!(
        std::mem::size_of::<libc::off_t>() == 8,
        "64-bit file offsets"
    );
    let mut position = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
    // SAFETY: both descriptors are open for the duration of the call, and
    // `position` is a valid, exclusively borrowed off_t.
    let sent =
        unsafe { libc::sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut position, count) };
    match sent {
        0 => Err(file_shrank()),
        n if n > 0 => Ok(n as usize),
        _ => Err(io::Error::last_os_error()),
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
