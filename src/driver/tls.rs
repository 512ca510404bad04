//! HTTPS: TLS as a layer of the driver's byte stream, not of the protocol.
//!
//! rustls is sans-I/O like the core: ciphertext from the socket goes into a
//! `ServerConnection`, plaintext comes out of it into the session's lent read
//! buffer; the session's output (memory slices, or a file range read with
//! `pread` into the driver's scratch buffer) goes into it, and ciphertext goes
//! to the socket. The session and the core never know.
//!
//! Two rules keep the edge-triggered loop honest and the memory bounded:
//!
//! - **Reading**: plaintext is taken out of rustls only while the session wants
//!   bytes; what it does not want yet stays in rustls, and no more ciphertext is
//!   read until it does (rustls bounds what it holds).
//! - **Writing**: the next slice of the session's output (at most [`SLICE`]
//!   bytes) is encrypted only once the ciphertext before it has all left, and
//!   the session is told those bytes were `written` only then. So a slow reader
//!   holds one slice of ciphertext, never its whole response; a 1 GiB file goes
//!   out in 16 KiB slices through one shared buffer; and the session's send
//!   timeout, its close after the last byte, and the access log's byte counts
//!   mean what they mean without TLS.
//!
//! What TLS costs: a file range can no longer go through `sendfile` (the bytes
//! must be encrypted in user space), so it is read into memory slice by slice,
//! and each connection holds rustls's state (a few KiB) and at most one slice
//! of ciphertext.

use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::transmit::MAX_SLICES;
use crate::app::{FileIdentity, LoadedSites};
use crate::config::TlsFiles;
use crate::http::Front;
use crate::system::keeper;

/// Most plaintext encrypted at once: one TLS record's worth.
pub(crate) const SLICE: usize = 16 * 1024;

/// TLS sessions remembered for resumption by ID (TLS 1.2); TLS 1.3 resumes
/// with tickets, which cost the server no memory.
const SESSION_CACHE: usize = 1024;

/// The certificates a listener serves, reloadable while it runs: the
/// default one (`--tls-cert`), and those of the sites of a configuration
/// file, chosen by the name the client asks for (SNI).
pub(crate) struct TlsConfig {
    files: Mutex<Files>,
    /// Which certificate a name gets: the site that name is for.
    sites: Option<LoadedSites>,
    current: Mutex<Loaded>,
}

/// The files the certificates are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Files {
    default: Option<TlsFiles>,
    sites: Vec<TlsFiles>,
    /// ALPN offers `h2` before `http/1.1` (unless `--no-http2`).
    http2: bool,
}

struct Loaded {
    config: Arc<ServerConfig>,
    /// What the files were when they were read, to tell whether a reload has
    /// anything new to read.
    identities: Option<Vec<(FileIdentity, FileIdentity)>>,
}

impl TlsConfig {
    /// Reads the default certificate and key (a PEM chain, the server's
    /// certificate first; a PEM PKCS#8, RSA or EC key) and those of the
    /// sites, and checks that each pair belongs together. `sites` says
    /// which name gets which of the sites' certificates.
    pub(crate) fn load(
        default: Option<&TlsFiles>,
        site_certs: &[TlsFiles],
        sites: Option<LoadedSites>,
        http2: bool,
    ) -> Result<TlsConfig, String> {
        let files = Files {
            default: default.cloned(),
            sites: site_certs.to_vec(),
            http2,
        };
        let loaded = load(&files, sites.as_ref())?;
        Ok(TlsConfig {
            files: Mutex::new(files),
            sites,
            current: Mutex::new(loaded),
        })
    }

    /// From now on, reload the default certificate from these paths (the
    /// same files, named from inside a `--chroot`).
    pub(crate) fn rename(&mut self, cert: PathBuf, key: PathBuf) {
        let files = self.files.get_mut().unwrap_or_else(|p| p.into_inner());
        files.default = Some(TlsFiles { cert, key });
    }

    /// The files of the default certificate.
    pub(crate) fn paths(&self) -> Option<(PathBuf, PathBuf)> {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files
            .default
            .as_ref()
            .map(|f| (f.cert.clone(), f.key.clone()))
    }

    /// Reads the files again if they changed (certbot renews them in place):
    /// new connections get the new certificates, open ones keep theirs. A
    /// broken new file is reported and the old certificates kept.
    pub(crate) fn reload(&self) {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.identities.is_some() && current.identities == identities(&files) {
            return; // another loop of this process has reloaded it already
        }
        self.swap(&mut current, &files);
    }

    /// Serves the certificates of a configuration read again (SIGHUP with
    /// `--config`), whether or not their files changed.
    pub(crate) fn replace(&self, default: Option<&TlsFiles>, site_certs: &[TlsFiles]) -> bool {
        let http2 = self.files.lock().unwrap_or_else(|p| p.into_inner()).http2;
        let files = Files {
            default: default.cloned(),
            sites: site_certs.to_vec(),
            http2,
        };
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let swapped = self.swap(&mut current, &files);
        if swapped {
            *self.files.lock().unwrap_or_else(|p| p.into_inner()) = files;
        }
        swapped
    }

    fn swap(&self, current: &mut Loaded, files: &Files) -> bool {
        match load(files, self.sites.as_ref()) {
            Ok(loaded) => {
                *current = loaded;
                match (&files.default, files.sites.len()) {
                    (Some(default), 0) => {
                        log::info!("TLS certificate reloaded from {}", default.cert.display());
                    }
                    (default, sites) => log::info!(
                        "TLS certificates reloaded, {} of them",
                        usize::from(default.is_some()) + sites
                    ),
                }
                true
            }
            Err(error) => {
                log::error!("TLS certificate not reloaded, keeping the old one: {error}");
                false
            }
        }
    }

    /// The TLS state for a new connection, with the current certificates.
    pub(crate) fn accept(&self) -> Result<Tls, rustls::Error> {
        let config = Arc::clone(
            &self
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .config,
        );
        Ok(Tls {
            conn: ServerConnection::new(config)?,
            unflushed: 0,
            handshake_told: false,
            server_name_told: false,
            turn: Counters::default(),
        })
    }
}

fn identities(files: &Files) -> Option<Vec<(FileIdentity, FileIdentity)>> {
    let of = |path: &Path| std::fs::metadata(path).ok().map(|m| FileIdentity::of(&m));
    files
        .default
        .iter()
        .chain(&files.sites)
        .map(|f| Some((of(&f.cert)?, of(&f.key)?)))
        .collect()
}

/// Chooses the certificate for a handshake by the name it asks for: the
/// certificate of the site that name is for, else the default one.
#[derive(Debug)]
struct ByName {
    default: Option<Arc<CertifiedKey>>,
    sites: Vec<Arc<CertifiedKey>>,
    names: Option<LoadedSites>,
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let site = self
            .names
            .as_ref()
            .and_then(|n| n.cert_for(hello.server_name()));
        site.and_then(|i| self.sites.get(i))
            .or(self.default.as_ref())
            .cloned()
    }
}

fn load(files: &Files, names: Option<&LoadedSites>) -> Result<Loaded, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let default = files
        .default
        .as_ref()
        .map(|f| certified(f, "--tls-cert", "--tls-key", &provider))
        .transpose()?;
    let sites = files
        .sites
        .iter()
        .map(|f| certified(f, "tls-cert", "tls-key", &provider).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let resolver = ByName {
        default: default.map(Arc::new),
        sites,
        names: names.cloned(),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    // The server's order decides (rustls picks the first of ours the client
    // offers): HTTP/2 when the client can, HTTP/1.1 otherwise.
    config.alpn_protocols = if files.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| format!("TLS: {e}"))?;
    Ok(Loaded {
        config: Arc::new(config),
        identities: identities(files),
    })
}

/// One certificate chain and its key, read and checked to belong together;
/// errors name the files by the keys (`--tls-cert` or a site's `tls-cert`)
/// that gave them.
fn certified(
    files: &TlsFiles,
    cert_key: &str,
    key_key: &str,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let (cert, key) = (&files.cert, &files.key);
    // Through the keeper once root is given up: a key is often root's alone.
    let read = |path: &Path, flag: &str| {
        keeper::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
    };
    let chain_pem = read(cert, cert_key)?;
    let key_pem = read(key, key_key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{cert_key} {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "{cert_key} {}: no PEM certificate in it",
            cert.display()
        ));
    }
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("{key_key} {}: {e}", key.display()))?;
    CertifiedKey::from_der(chain, private_key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => format!(
            "{key_key} {} does not belong to the certificate in {cert_key} {} \
             (is it the key of another certificate?)",
            key.display(),
            cert.display()
        ),
        e => format!(
            "{cert_key} {} and {key_key} {}: {e}",
            cert.display(),
            key.display()
        ),
    })
}

/// Bytes before and after encryption, for the debug log of each turn.
#[derive(Debug, Default)]
struct Counters {
    cipher_in: usize,
    plain_in: usize,
    plain_out: usize,
    cipher_out: usize,
}

/// One connection's TLS: the rustls session, and what a driver must
/// remember around it. It knows nothing of the HTTP session: the transport
/// (`transport.rs`) moves bytes between the two.
pub(crate) struct Tls {
    conn: ServerConnection,
    /// Plaintext encrypted whose ciphertext has not all left yet: the session
    /// hears it was written once it has.
    unflushed: usize,
    handshake_told: bool,
    /// Whether the session has heard which name the handshake was for.
    server_name_told: bool,
    turn: Counters,
}

/// What one [`Tls::take_plaintext`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plaintext {
    /// This many decrypted bytes, into the buffer given.
    Bytes(usize),
    /// None held now.
    None,
    /// The client will send nothing more (a close_notify, or a TCP close
    /// without one: the same to HTTP/1.1, whose messages carry their own
    /// lengths).
    Closed,
}

impl Tls {
    /// Reads ciphertext from the socket once and decrypts it (0 at EOF). A TLS
    /// error (a failed handshake, plaintext HTTP on the TLS port) comes back as
    /// `InvalidData`, after one try at sending rustls's alert.
    pub(crate) fn read_ciphertext<S: Read + Write>(
        &mut self,
        id: usize,
        socket: &mut S,
    ) -> io::Result<usize> {
        let read = self.conn.read_tls(socket)?;
        if read == 0 {
            return Ok(0);
        }
        self.turn.cipher_in += read;
        if let Err(error) = self.conn.process_new_packets() {
            // Debug, not a warning: anyone can send garbage to the port.
            log::debug!("#{id}: TLS: {error}; closing");
            let _ = self.conn.write_tls(socket);
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        self.tell_handshake(id);
        Ok(read)
    }

    /// Decrypted bytes rustls holds, into `buffer`.
    pub(crate) fn take_plaintext(&mut self, buffer: &mut [u8]) -> io::Result<Plaintext> {
        match self.conn.reader().read(buffer) {
            Ok(0) => Ok(Plaintext::Closed),
            Ok(n) => {
                self.turn.plain_in += n;
                Ok(Plaintext::Bytes(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Plaintext::None),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Plaintext::Closed),
            Err(e) => Err(e),
        }
    }

    /// Whether rustls holds decrypted bytes not taken yet: they are already
    /// out of the socket, so no readiness event will announce them.
    pub(crate) fn holds_plaintext(&mut self) -> bool {
        self.conn
            .process_new_packets()
            .is_ok_and(|state| state.plaintext_bytes_to_read() > 0)
    }

    /// Sends the ciphertext rustls holds until none is left (true) or the
    /// socket takes no more (false: `WouldBlock`, or a blocking socket's
    /// timeout); adds what left to `sent`.
    pub(crate) fn send_ciphertext<S: Write>(
        &mut self,
        socket: &mut S,
        sent: &mut usize,
    ) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(socket) {
                Ok(n) => {
                    self.turn.cipher_out += n;
                    *sent += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The plaintext encrypted since the last call whose ciphertext has all
    /// left (call once [`send_ciphertext`](Self::send_ciphertext) sent
    /// everything): what the session may count as written.
    pub(crate) fn take_flushed(&mut self) -> usize {
        std::mem::take(&mut self.unflushed)
    }

    /// Encrypts the next slice (at most [`SLICE`] bytes) of what `front`
    /// shows of the session's output, a file range read into `scratch`;
    /// returns its length, counted as written once its ciphertext has left.
    pub(crate) fn encrypt(
        &mut self,
        front: Front<'_>,
        slices: &[IoSlice<'_>],
        scratch: &mut Vec<u8>,
    ) -> io::Result<usize> {
        let taken = self.encrypt_front(front, slices, scratch)?;
        self.unflushed += taken;
        self.turn.plain_out += taken;
        Ok(taken)
    }

    fn encrypt_front(
        &mut self,
        front: Front<'_>,
        slices: &[IoSlice<'_>],
        scratch: &mut Vec<u8>,
    ) -> io::Result<usize> {
        let mut writer = self.conn.writer();
        match front {
            Front::Empty => Ok(0),
            Front::Memory { count, .. } => {
                // Every slice up to SLICE bytes in one write, so that rustls
                // seals them into as few records as their length needs: an
                // HTTP/2 answer is a HEADERS frame, a DATA frame's head and
                // its bytes, which written one by one were three records
                // (three seals, three record overheads) for a 13-byte file.
                let mut parts = [IoSlice::new(&[]); MAX_SLICES];
                let (mut n, mut total) = (0, 0);
                for (place, slice) in parts.iter_mut().zip(slices.iter().take(count)) {
                    if total == SLICE {
                        break;
                    }
                    let part = slice
                        .get(..slice.len().min(SLICE - total))
                        .unwrap_or_default();
                    *place = IoSlice::new(part);
                    n += 1;
                    total += part.len();
                }
                let taken = writer.write_vectored(parts.get(..n).unwrap_or_default())?;
                if taken == 0 && total > 0 {
                    return Err(io::Error::from(io::ErrorKind::WriteZero));
                }
                Ok(taken)
            }
            Front::File { file, offset, len } => {
                let want = len.min(SLICE as u64) as usize;
                let read = read_slice(file, offset, want, scratch)?;
                writer.write_all(read)?;
                Ok(read.len())
            }
        }
    }

    /// Whether the handshake is still under way.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether ciphertext waits to be sent (a handshake message, an alert,
    /// the rest of a slice).
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Before the socket is shut or closed: tell the client, if the socket will
    /// take it now (a best effort: a close_notify is a courtesy to HTTP/1.1).
    pub(crate) fn close_notify<S: Write>(&mut self, socket: &mut S) {
        self.conn.send_close_notify();
        let _ = self.conn.write_tls(socket);
    }

    /// At debug level, the bytes before and after encryption since the last
    /// call (a driver calls it once per turn of the connection).
    pub(crate) fn log_turn(&mut self, id: usize) {
        let turn = std::mem::take(&mut self.turn);
        if turn.cipher_in + turn.cipher_out > 0 {
            log::debug!(
                "#{id}: TLS: read {} B of ciphertext ({} B plaintext), sent {} B plaintext as {} B",
                turn.cipher_in,
                turn.plain_in,
                turn.plain_out,
                turn.cipher_out
            );
        }
    }

    /// The protocol version agreed, as access logs write it (nginx's
    /// `$ssl_protocol`): `TLSv1.3` or `TLSv1.2`, the only two offered.
    /// Whether ALPN agreed on HTTP/2.
    pub(crate) fn agreed_http2(&self) -> bool {
        self.conn.alpn_protocol() == Some(b"h2")
    }

    pub(crate) fn protocol(&self) -> &'static str {
        match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        }
    }

    /// Once the handshake is done, and once only: the name the client asked
    /// for (SNI), if it named one.
    pub(crate) fn take_server_name(&mut self) -> Option<Option<String>> {
        if self.conn.is_handshaking() || std::mem::replace(&mut self.server_name_told, true) {
            return None;
        }
        Some(self.conn.server_name().map(str::to_owned))
    }

    /// The handshake's progress at trace level; what it agreed, at debug level,
    /// once it is done.
    fn tell_handshake(&mut self, id: usize) {
        if self.conn.is_handshaking() {
            let reply = if self.conn.wants_write() {
                "; its reply is ready"
            } else {
                ""
            };
            log::trace!("#{id}: TLS handshake in progress{reply}");
            return;
        }
        if std::mem::replace(&mut self.handshake_told, true) {
            return;
        }
        let version = self.conn.protocol_version().map(|v| format!("{v:?}"));
        let suite = self
            .conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()));
        let alpn = self
            .conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        log::debug!(
            "#{id}: TLS handshake done: {}, {}, ALPN {}, SNI {}",
            version.as_deref().unwrap_or("?"),
            suite.as_deref().unwrap_or("?"),
            alpn.as_deref().unwrap_or("none"),
            self.conn.server_name().unwrap_or("none"),
        );
    }
}

/// Reads `want` bytes of `file` at `offset` into `scratch`; a file shorter than
/// promised is an error, as for sendfile.
fn read_slice<'a>(
    file: &File,
    offset: u64,
    want: usize,
    scratch: &'a mut Vec<u8>,
) -> io::Result<&'a [u8]> {
    if scratch.len() < want {
        scratch.resize(want, 0);
    }
    let buffer = scratch.get_mut(..want).unwrap_or_default();
    let read = file.read_at(buffer, offset)?;
    if read == 0 && want > 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "file shorter than its response",
        ));
    }
    Ok(scratch.get(..read).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore};

    use super::*;

    /// A server `Tls` and a client that trusts it, their handshake done in
    /// memory.
    fn connected() -> (Tls, ClientConnection) {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let files = TlsFiles {
            cert: dir.path().join("c.pem"),
            key: dir.path().join("k.pem"),
        };
        std::fs::write(&files.cert, made.cert.pem()).unwrap();
        std::fs::write(&files.key, made.signing_key.serialize_pem()).unwrap();
        let config = TlsConfig::load(Some(&files), &[], None, true).unwrap();
        let mut server = config.accept().unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(made.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client_config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = ClientConnection::new(Arc::new(client_config), name).unwrap();
        while client.is_handshaking() || server.is_handshaking() {
            let mut wire = Vec::new();
            client.write_tls(&mut wire).unwrap();
            server.conn.read_tls(&mut Cursor::new(wire)).unwrap();
            server.conn.process_new_packets().unwrap();
            let mut wire = Vec::new();
            server.conn.write_tls(&mut wire).unwrap();
            client.read_tls(&mut Cursor::new(wire)).unwrap();
            client.process_new_packets().unwrap();
        }
        (server, client)
    }

    /// The TLS records in `wire`: each a 5-byte header and its length.
    fn records(mut wire: &[u8]) -> usize {
        let mut count = 0;
        while let [_, _, _, high, low, ..] = *wire {
            let len = usize::from(u16::from_be_bytes([high, low]));
            wire = wire.get(5 + len..).unwrap_or_default();
            count += 1;
        }
        count
    }

    /// An HTTP/2 answer is three slices (HEADERS, a DATA head, the bytes);
    /// they go out sealed in one record, and the client reads them whole.
    #[test]
    fn the_slices_of_one_front_are_sealed_in_one_record() {
        let (mut server, mut client) = connected();
        // What the handshake left (session tickets) goes first.
        server.conn.write_tls(&mut Vec::new()).unwrap();
        let parts: [&[u8]; 3] = [b"headers:", b"data head:", b"hello, world\n"];
        let slices = parts.map(IoSlice::new);
        let front = Front::Memory {
            count: 3,
            file_follows: false,
        };
        let taken = server.encrypt(front, &slices, &mut Vec::new()).unwrap();
        assert_eq!(taken, parts.concat().len());
        let mut wire = Vec::new();
        server.conn.write_tls(&mut wire).unwrap();
        assert_eq!(records(&wire), 1);
        client.read_tls(&mut Cursor::new(wire)).unwrap();
        client.process_new_packets().unwrap();
        let mut plain = Vec::new();
        let _ = client.reader().read_to_end(&mut plain);
        assert_eq!(plain, parts.concat());
    }
}
