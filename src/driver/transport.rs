//! A connection's byte stream: the socket, and its TLS when its listener
//! speaks HTTPS. This is the one place in the drivers that tells a
//! [`Session`] what was read or written; the loop and the threaded drivers
//! both hold a [`Transport`] and ask it to move bytes, never branching on
//! TLS themselves.
//!
//! ```text
//!            Plain                               Tls
//! read:   socket → session.read_buffer()      socket → rustls → session.read_buffer()
//! write:  session.front() → writev/sendfile   session.front() → rustls → socket
//! ```
//!
//! What TLS changes, and this module hides:
//!
//! - the socket is read while the handshake needs bytes, even when the
//!   session wants none (a session may hold an answer before the handshake
//!   that must carry it is done: a client turned away at accept);
//! - decrypted bytes rustls holds are already off the socket, so no
//!   readiness event will announce them ([`Transport::holds_plaintext`]);
//! - the session's output waits for the end of the handshake, and the
//!   session hears `written(n)` only once a slice's ciphertext has all left
//!   (`tls.rs`), so its send timeout, its close after the last byte and the
//!   access log's byte counts mean what they mean without TLS;
//! - a file range cannot be `sendfile`d: it is read into `scratch` a bounded
//!   slice at a time and encrypted.
//!
//! The socket may be blocking (the threaded drivers, whose socket timeouts
//! come back as `WouldBlock` or `TimedOut`) or not (the loop, which stops at
//! `WouldBlock`): the transport does one step per call and lets the driver
//! decide what a refusal means.

use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;

use std::io::IoSlice;

use super::clock::Time;
use super::tls::{Plaintext, Tls, TlsConfig};
use super::transmit::{MAX_SLICES, Written, write_once};
use crate::session::Session;
use crate::stats::Phase;

/// A stream socket as a transport needs it: readable, writable, with a
/// descriptor for `sendfile`, and shut one way or both.
pub(crate) trait Socket: io::Read + io::Write + AsRawFd {
    fn shut(&self, how: Shutdown) -> io::Result<()>;
}

impl Socket for mio::net::TcpStream {
    fn shut(&self, how: Shutdown) -> io::Result<()> {
        self.shutdown(how)
    }
}

impl Socket for std::net::TcpStream {
    fn shut(&self, how: Shutdown) -> io::Result<()> {
        self.shutdown(how)
    }
}

/// A connection's byte stream.
pub(crate) enum Transport<S> {
    Plain(S),
    Tls(S, Box<Tls>),
}

/// What one [`Transport::read`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// `n` bytes came off the socket (through TLS, ciphertext); `short` when
    /// plaintext fewer than the buffer had room for arrived: the socket held
    /// no more (no promise under TLS, whose records do not fill buffers).
    Bytes { n: usize, short: bool },
    /// Plaintext TLS had already decrypted went to the session; nothing was
    /// read (the session answers it before more is read).
    Held,
    /// The peer closed its sending side.
    Eof,
    /// Nothing is wanted now: nothing was read.
    Nothing,
}

/// What one [`Transport::write`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Plaintext left, as the trace tells.
    Plain(Written),
    /// Ciphertext left.
    Tls { bytes: usize },
}

impl std::fmt::Display for Sent {
    /// As the trace says it: `wrote 269 bytes by writev (1 slice)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sent::Plain(written) => written.fmt(f),
            Sent::Tls { bytes } => write!(f, "wrote {bytes} bytes of TLS"),
        }
    }
}

impl Sent {
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Sent::Plain(written) => written.bytes,
            Sent::Tls { bytes } => *bytes,
        }
    }
}

impl<S: Socket> Transport<S> {
    /// The byte stream of a socket just accepted: plain, or TLS with the
    /// certificate current now when its listener speaks HTTPS.
    pub(crate) fn accept(
        socket: S,
        tls: Option<&TlsConfig>,
    ) -> Result<Transport<S>, rustls::Error> {
        Ok(match tls {
            Some(config) => Transport::Tls(socket, Box::new(config.accept()?)),
            None => Transport::Plain(socket),
        })
    }

    pub(crate) fn socket(&self) -> &S {
        match self {
            Transport::Plain(socket) | Transport::Tls(socket, _) => socket,
        }
    }

    pub(crate) fn socket_mut(&mut self) -> &mut S {
        match self {
            Transport::Plain(socket) | Transport::Tls(socket, _) => socket,
        }
    }

    /// Whether to read from the socket: the session wants bytes, or a TLS
    /// handshake does.
    pub(crate) fn wants_read(&self, session: &Session) -> bool {
        let handshaking = match self {
            Transport::Plain(_) => false,
            Transport::Tls(_, tls) => tls.is_handshaking(),
        };
        !session.is_closed() && (session.wants_read() || handshaking)
    }

    /// Whether anything can be written now: the session's output, or (TLS)
    /// ciphertext rustls holds; the session's output waits for the end of a
    /// handshake.
    pub(crate) fn has_bytes_to_send(&self, session: &Session) -> bool {
        match self {
            Transport::Plain(_) => session.has_output(),
            Transport::Tls(_, tls) => {
                tls.wants_write() || (session.has_output() && !tls.is_handshaking())
            }
        }
    }

    /// Whether TLS holds decrypted bytes the session has not taken: they
    /// are off the socket already, so no readiness event will announce them.
    pub(crate) fn holds_plaintext(&mut self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(_, tls) => tls.holds_plaintext(),
        }
    }

    /// One read: of plaintext into the session's buffer, or of ciphertext
    /// into rustls and what it decrypts into the session (or plaintext TLS
    /// held already). The session hears of it, at the `time` after the call;
    /// errors are the socket's (`WouldBlock` among them), or `InvalidData`
    /// for a TLS failure.
    pub(crate) fn read(
        &mut self,
        id: usize,
        session: &mut Session,
        time: &mut impl Time,
    ) -> io::Result<Received> {
        match self {
            Transport::Plain(socket) => {
                let room = session.read_buffer();
                let asked = room.len();
                let n = socket.read(room)?;
                if n == 0 {
                    session.received_eof(time.now());
                    return Ok(Received::Eof);
                }
                session.received(n, time.now());
                Ok(Received::Bytes {
                    n,
                    short: n < asked,
                })
            }
            Transport::Tls(socket, tls) => {
                if deliver(tls, session, time)? > 0 {
                    return Ok(Received::Held);
                }
                let wanted = session.wants_read() || tls.is_handshaking();
                if !wanted || session.is_closed() {
                    return Ok(Received::Nothing);
                }
                match tls.read_ciphertext(id, socket)? {
                    0 => {
                        session.received_eof(time.now());
                        Ok(Received::Eof)
                    }
                    n => {
                        deliver(tls, session, time)?;
                        Ok(Received::Bytes { n, short: false })
                    }
                }
            }
        }
    }

    /// One write from the front of the session's output: a `writev` or a
    /// `sendfile` of plaintext, or through TLS, ciphertext until the socket
    /// would take no more (`WouldBlock` only when nothing at all went). The
    /// session hears what left, at the `time` after the call.
    pub(crate) fn write(
        &mut self,
        session: &mut Session,
        time: &mut impl Time,
        scratch: &mut Vec<u8>,
    ) -> io::Result<Sent> {
        match self {
            Transport::Plain(socket) => {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let front = session.front(&mut slices);
                let written = write_once(socket, front, &slices, scratch)?;
                session.written(written.bytes, time.now());
                Ok(Sent::Plain(written))
            }
            Transport::Tls(socket, tls) => match flush(tls, socket, session, time, scratch)? {
                (0, true) => Err(io::ErrorKind::WouldBlock.into()),
                (bytes, _) => Ok(Sent::Tls { bytes }),
            },
        }
    }

    /// Our last response is out: tell the client we are done (a TLS
    /// close_notify first) and shut our sending side, to linger reading.
    pub(crate) fn shut_sending(&mut self) {
        self.say_goodbye();
        let _ = self.socket().shut(Shutdown::Write);
    }

    /// Before the socket is closed: a TLS connection says goodbye, if the
    /// socket takes it now (a courtesy to HTTP/1.1, which frames its own
    /// messages).
    pub(crate) fn say_goodbye(&mut self) {
        if let Transport::Tls(socket, tls) = self {
            tls.close_notify(socket);
        }
    }

    /// What the connection is doing, for the status page: its handshake, or
    /// what its session does.
    pub(crate) fn phase(&self, session: &Session) -> Phase {
        match self {
            Transport::Tls(_, tls) if tls.is_handshaking() => Phase::Handshake,
            _ => session.phase(),
        }
    }

    /// Whether it speaks TLS (for the status page at accept).
    pub(crate) fn first_phase(&self) -> Phase {
        match self {
            Transport::Plain(_) => Phase::Waiting,
            Transport::Tls(..) => Phase::Handshake,
        }
    }

    /// At debug level, TLS's bytes before and after encryption since the last
    /// call (once per turn of the connection).
    pub(crate) fn log_turn(&mut self, id: usize) {
        if let Transport::Tls(_, tls) = self {
            tls.log_turn(id);
        }
    }
}

/// Plaintext rustls holds, into the session while it wants bytes; how much
/// moved.
fn deliver(tls: &mut Tls, session: &mut Session, time: &mut impl Time) -> io::Result<usize> {
    if let Some(server_name) = tls.take_server_name() {
        // Before the first byte of plaintext: the session's requests are
        // answered by the site the handshake was for, or refused (421).
        session.secured(server_name.as_deref(), tls.protocol(), tls.agreed_http2());
    }
    let mut moved = 0;
    while session.wants_read() && !session.is_closed() {
        let buffer = session.read_buffer();
        if buffer.is_empty() {
            break;
        }
        match tls.take_plaintext(buffer)? {
            Plaintext::Bytes(n) => {
                moved += n;
                session.received(n, time.now());
            }
            Plaintext::Closed => session.received_eof(time.now()),
            Plaintext::None => break,
        }
    }
    Ok(moved)
}

/// Sends the ciphertext rustls holds, then encrypts the session's output a
/// slice at a time and sends that, until the socket takes no more or nothing
/// is left: the ciphertext bytes that left, and whether the socket refused
/// more. The session hears of a slice once all its ciphertext has left.
fn flush<S: io::Write>(
    tls: &mut Tls,
    socket: &mut S,
    session: &mut Session,
    time: &mut impl Time,
    scratch: &mut Vec<u8>,
) -> io::Result<(usize, bool)> {
    let mut sent = 0;
    loop {
        if !tls.send_ciphertext(socket, &mut sent)? {
            return Ok((sent, true));
        }
        let flushed = tls.take_flushed();
        if flushed > 0 {
            session.written(flushed, time.now());
        }
        if !session.has_output() || tls.is_handshaking() {
            return Ok((sent, false));
        }
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let front = session.front(&mut slices);
        tls.encrypt(front, &slices, scratch)?;
    }
}
