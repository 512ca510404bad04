//! HTTPS for the black-box tests: a certificate made at test time (rcgen),
//! and a client that speaks plain TCP or TLS, so that every suite runs over
//! both without a line of its own changing.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// A certificate and its key, as PEM files.
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes a self-signed certificate for `localhost` and 127.0.0.1 (and ::1),
/// written as `NAME.crt` and `NAME.key` in this test process's scratch folder.
pub fn make_identity(name: &str) -> Identity {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let made = rcgen::generate_simple_self_signed(names).expect("a test certificate");
    let dir = scratch_dir();
    let identity = Identity {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&identity.cert, made.cert.pem()).unwrap();
    std::fs::write(&identity.key, made.signing_key.serialize_pem()).unwrap();
    identity
}

/// A folder under Cargo's scratch space for integration tests, one per process.
pub fn scratch_dir() -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The certificate every HTTPS model in this process serves.
fn default_identity() -> &'static Identity {
    static IDENTITY: OnceLock<Identity> = OnceLock::new();
    IDENTITY.get_or_init(|| make_identity("server"))
}

/// The flags that make a server speak HTTPS with the default certificate.
pub fn server_args() -> Vec<String> {
    let identity = default_identity();
    vec![
        "--tls-cert".into(),
        identity.cert.to_string_lossy().into_owned(),
        "--tls-key".into(),
        identity.key.to_string_lossy().into_owned(),
    ]
}

/// The default certificate's file, for curl's `--cacert`.
pub fn certificate_path() -> String {
    default_identity().cert.to_string_lossy().into_owned()
}

/// A client configuration that trusts the certificates in `files`, offering
/// ALPN `http/1.1` as browsers do.
pub fn client_config(trusted: &[&std::path::Path]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for file in trusted {
        for cert in CertificateDer::pem_file_iter(file).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

fn default_client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| client_config(&[&default_identity().cert])))
}

/// A connection to the server under test: plain TCP, or TLS over it.
pub struct Client {
    tcp: TcpStream,
    tls: Option<ClientConnection>,
    nonblocking: bool,
}

impl Client {
    pub fn new(tcp: TcpStream, tls: bool) -> Client {
        let tls = tls.then(|| connection(default_client_config(), &tcp));
        Client {
            tcp,
            tls,
            nonblocking: false,
        }
    }

    /// A TLS client with its own configuration (other trusted certificates).
    pub fn with_config(tcp: TcpStream, config: Arc<ClientConfig>) -> Client {
        let tls = Some(connection(config, &tcp));
        Client {
            tcp,
            tls,
            nonblocking: false,
        }
    }

    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_read_timeout(timeout)
    }

    /// Over TLS too: rustls keeps what the socket would not take and sends it
    /// before the next read.
    pub fn set_nonblocking(&mut self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking = nonblocking;
        self.tcp.set_nonblocking(nonblocking)
    }

    /// Shuts the TCP connection's side (over TLS too: no close_notify, as
    /// most clients do it).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.tcp.shutdown(how)
    }

    /// Waits (within the read timeout) for the server to send something, and
    /// says how many bytes wait, without taking them: 0 once it has closed.
    /// Over TLS, something means application data (a response), not the
    /// session tickets a TLS 1.3 server sends after its handshake.
    pub fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return self.tcp.peek(buf);
        };
        while tls.is_handshaking() {
            tls.complete_io(&mut self.tcp)?;
        }
        loop {
            let state = tls
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if state.plaintext_bytes_to_read() > 0 {
                return Ok(state.plaintext_bytes_to_read().min(buf.len()));
            }
            if state.peer_has_closed() || tls.read_tls(&mut self.tcp)? == 0 {
                return Ok(0);
            }
        }
    }

    /// The TLS session, once the handshake is done.
    pub fn tls(&self) -> Option<&ClientConnection> {
        self.tls.as_ref()
    }

    /// Runs the handshake now (it otherwise happens with the first read or write).
    pub fn handshake(&mut self) -> io::Result<()> {
        if let Some(tls) = self.tls.as_mut() {
            while tls.is_handshaking() {
                tls.complete_io(&mut self.tcp)?;
            }
        }
        Ok(())
    }
}

fn connection(config: Arc<ClientConfig>, tcp: &TcpStream) -> ClientConnection {
    let ip = tcp.peer_addr().expect("a connected socket").ip();
    ClientConnection::new(config, ServerName::IpAddress(ip.into())).expect("a TLS client")
}

impl Read for Client {
    /// Over TLS, as a full-duplex client reads: what earlier writes left in
    /// rustls is pushed as far as the socket takes it now, without waiting,
    /// and then it reads. (rustls's `Stream::read` would first wait to write
    /// it all: against a server that stops reading a client that does not
    /// read, each would wait for the other.)
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return self.tcp.read(buf);
        };
        while tls.is_handshaking() {
            tls.complete_io(&mut self.tcp)?;
        }
        loop {
            match tls.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return done,
            }
            if tls.wants_write() {
                self.tcp.set_nonblocking(true)?;
                let pushed = write_what_fits(tls, &mut self.tcp);
                self.tcp.set_nonblocking(self.nonblocking)?;
                pushed?;
            }
            if tls.read_tls(&mut self.tcp)? > 0 {
                tls.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            } else {
                // EOF: the reader now says whether it was clean.
                let _ = tls.process_new_packets();
                return tls.reader().read(buf);
            }
        }
    }
}

/// Writes pending ciphertext until the (non-blocking) socket would block.
fn write_what_fits(tls: &mut ClientConnection, tcp: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(tcp) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Write for Client {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.tls.as_mut() {
            None => self.tcp.write(buf),
            Some(tls) => rustls::Stream::new(tls, &mut self.tcp).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.tls.as_mut() {
            None => self.tcp.flush(),
            Some(tls) => rustls::Stream::new(tls, &mut self.tcp).flush(),
        }
    }
}

/// Whether a read error means the server closed: a reset, or (over TLS) a TCP
/// close without close_notify.
pub fn is_a_close(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}
