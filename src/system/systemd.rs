//! systemd: the listening sockets it passes (socket activation), and telling
//! it how the service is doing (`sd_notify`), without libsystemd.
//!
//! **Socket activation.** systemd binds the ports in `oneloop.socket` (port 80
//! needs no root in the server then), starts the service, and passes the
//! listeners as descriptors 3, 4, ... with `LISTEN_FDS` saying how many,
//! `LISTEN_PID` saying for which process (a child that inherited the variables
//! must not take them), and `LISTEN_FDNAMES` their `FileDescriptorName=`s.
//!
//! **Notification.** With `Type=notify`, systemd waits for `READY=1` before it
//! calls the service started, and shows `STATUS=` in `systemctl status`. The
//! datagram socket named by `NOTIFY_SOCKET` is connected once at start, so that
//! notifications still reach it from inside a `--chroot`.
//!
//! Both are plain environment variables and descriptors, so nothing here is
//! Linux's but the abstract socket names: elsewhere no systemd sets them and
//! nothing happens, and a launcher that speaks the protocol (`systemfd` on a
//! Mac, for one) still hands its listeners over.

use std::io;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_PASSED: RawFd = 3;

/// A listening socket systemd passed, with its `FileDescriptorName=`.
#[derive(Debug)]
pub(crate) struct PassedSocket {
    pub listener: TcpListener,
    pub name: Option<String>,
}

/// The listeners systemd passed to this process, or `None` if it passed none.
pub(crate) fn passed_sockets() -> Result<Option<Vec<PassedSocket>>, String> {
    let variable = |name| std::env::var(name).ok();
    let Some(pid) = variable("LISTEN_PID") else {
        return Ok(None);
    };
    if pid.trim().parse::<u32>() != Ok(std::process::id()) {
        // Meant for another process (we inherited it): not ours to take.
        return Ok(None);
    }
    let count: RawFd = variable("LISTEN_FDS")
        .and_then(|n| n.trim().parse().ok())
        .filter(|n| (1..=1024).contains(n))
        .ok_or("LISTEN_FDS is not a number of sockets")?;
    let names: Vec<String> = variable("LISTEN_FDNAMES")
        .map(|names| names.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut sockets = Vec::new();
    for (index, fd) in (FIRST_PASSED..FIRST_PASSED + count).enumerate() {
        check_listening_tcp(fd).map_err(|e| format!("socket {fd} passed by systemd: {e}"))?;
        // SAFETY: systemd hands this descriptor to this process (LISTEN_PID
        // says so) and nothing else in it has taken it: from here it is ours.
        let listener = unsafe { TcpListener::from_raw_fd(fd) };
        // Not inherited by anything we might start, and never blocking the loop.
        set_cloexec(fd).map_err(|e| format!("socket {fd}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("socket {fd}: {e}"))?;
        let name = names
            .get(index)
            .filter(|name| !name.is_empty() && *name != "unknown")
            .cloned();
        sockets.push(PassedSocket { listener, name });
    }
    Ok(Some(sockets))
}

/// Whether `fd` is a TCP socket that listens (the kind a `ListenStream=` of an
/// IP address and port gives).
fn check_listening_tcp(fd: RawFd) -> io::Result<()> {
    let option = |level, name| -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `length` bytes into `value`.
        let status =
            unsafe { libc::getsockopt(fd, level, name, (&raw mut value).cast(), &mut length) };
        if status != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(value)
    };
    let kind = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
    // The family from the bound address (getsockname): SO_DOMAIN would say
    // it in one call, but macOS has none.
    // SAFETY: the caller owns `fd`, open for the duration of this call.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let bound = socket2::SockRef::from(&borrowed).local_addr()?;
    if !bound.is_ipv4() && !bound.is_ipv6() {
        return Err(kind("not an IP socket (oneloop listens on TCP ports only)"));
    }
    if option(libc::SOL_SOCKET, libc::SO_TYPE)? != libc::SOCK_STREAM {
        return Err(kind("not a stream socket (use ListenStream=)"));
    }
    if option(libc::SOL_SOCKET, libc::SO_ACCEPTCONN)? == 0 {
        return Err(kind("not listening (Accept=yes is not supported)"));
    }
    Ok(())
}

fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The connected notification socket, when systemd gave one.
static NOTIFY: OnceLock<UnixDatagram> = OnceLock::new();

/// Connects to `NOTIFY_SOCKET`, if set; call before a `--chroot`.
pub(crate) fn connect_notify() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let connected = UnixDatagram::unbound().and_then(|socket| {
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
        match bytes.strip_prefix(b"@") {
            // An abstract socket: a name, not a file (Linux's alone).
            #[cfg(target_os = "linux")]
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                socket.connect_addr(&address)?;
            }
            #[cfg(not(target_os = "linux"))]
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "abstract sockets exist on Linux only",
                ));
            }
            None => socket.connect(&path)?,
        }
        Ok(socket)
    });
    match connected {
        Ok(socket) => {
            let _ = NOTIFY.set(socket);
        }
        Err(e) => log::warn!("NOTIFY_SOCKET {}: {e}", path.to_string_lossy()),
    }
}

/// Tells systemd `state` (`READY=1`, `STOPPING=1`, `STATUS=...`), if it listens.
pub(crate) fn notify(state: &str) {
    if let Some(socket) = NOTIFY.get()
        && let Err(e) = socket.send(state.as_bytes())
    {
        log::debug!("sd_notify {state:?}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listening_tcp_sockets_are_taken() {
        use std::os::fd::AsRawFd;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(check_listening_tcp(listener.as_raw_fd()).is_ok());
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let error = check_listening_tcp(client.as_raw_fd()).unwrap_err();
        assert!(error.to_string().contains("not listening"), "{error}");
        let datagram = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let error = check_listening_tcp(datagram.as_raw_fd()).unwrap_err();
        assert!(error.to_string().contains("ListenStream"), "{error}");
        let (unix, _) = std::os::unix::net::UnixStream::pair().unwrap();
        let error = check_listening_tcp(unix.as_raw_fd()).unwrap_err();
        assert!(error.to_string().contains("TCP ports only"), "{error}");
    }
}
