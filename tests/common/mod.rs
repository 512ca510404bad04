//! Black-box harness: start the real `oneloop` binary on an ephemeral port and
//! talk to it over raw TCP, or raw TLS for the HTTPS models.
#![allow(dead_code)] // each test file uses its own part of the harness

pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use tls::Client;

/// A command that runs the oneloop binary under test. With `ONELOOP_RUNNER`
/// set (`make platforms-run` sets it to `qemu-arm-static -L /usr/arm-linux-gnueabihf`,
/// say), the binary is another architecture's and runs under that emulator:
/// these machines do not register qemu with binfmt, so it is called by name.
pub fn oneloop() -> Command {
    let binary = env!("CARGO_BIN_EXE_oneloop");
    let runner = std::env::var("ONELOOP_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(emulator) => {
            let mut command = Command::new(emulator);
            command.args(words).arg(binary);
            command
        }
        None => Command::new(binary),
    }
}

/// How many times slower than on this machine's own CPU the server may run:
/// `ONELOOP_SLOWDOWN`, which the emulated runs set (`.ci/platforms`), or 1.
/// Only waits for the server to *finish* a long piece of work (starting, a
/// client that never reads) stretch by it; no test of a timeout does (those
/// run natively only).
pub fn slowdown() -> u32 {
    std::env::var("ONELOOP_SLOWDOWN")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

/// Why a server did not say where it listens.
#[derive(Debug)]
enum NeverStarted {
    /// The child process never became oneloop.
    NeverExeced,
    /// It ran, and said nothing of an address: the message, with its log.
    Silent(String),
}

impl std::fmt::Display for NeverStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NeverStarted::NeverExeced => write!(f, "oneloop's process never reached exec"),
            NeverStarted::Silent(message) => f.write_str(message),
        }
    }
}

/// Whether the tests run oneloop under an emulator (`ONELOOP_RUNNER`).
fn emulated() -> bool {
    std::env::var_os("ONELOOP_RUNNER").is_some_and(|r| !r.is_empty())
}

/// Whether process `pid` runs the oneloop binary (itself or under the
/// emulator), as its command line says; true where that cannot be read.
fn execed_oneloop(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains(env!("CARGO_BIN_EXE_oneloop")),
        Err(_) => true,
    }
}

/// How long any single read may wait before a test fails instead of hanging.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The ways oneloop can serve: the black-box suites run against every one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// One event loop (the default).
    Loop,
    /// Two event loops sharing the port through SO_REUSEPORT.
    Workers,
    /// A thread per connection.
    Threads,
    /// A fixed pool of threads.
    Pool,
    /// One event loop, over HTTPS.
    LoopTls,
    /// A thread per connection, over HTTPS.
    ThreadsTls,
}

impl Model {
    pub fn args(self) -> Vec<String> {
        let args: &[&str] = match self {
            Model::Loop | Model::LoopTls => &[],
            Model::Workers => &["--workers", "2"],
            Model::Threads | Model::ThreadsTls => &["--model", "threads"],
            Model::Pool => &["--model", "pool", "--threads", "16"],
        };
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if self.tls() {
            args.extend(tls::server_args());
        }
        args
    }

    /// Whether clients speak TLS to it.
    pub fn tls(self) -> bool {
        matches!(self, Model::LoopTls | Model::ThreadsTls)
    }
}

/// Turns each `fn name(model: Model)` into one test per model:
/// `name::event_loop`, `name::workers`, `name::threads`, `name::pool`, and
/// over HTTPS `name::event_loop_tls` and `name::threads_tls`.
#[macro_export]
macro_rules! every_model {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn event_loop() {
                    super::$name(super::common::Model::Loop)
                }
                #[test]
                fn workers() {
                    super::$name(super::common::Model::Workers)
                }
                #[test]
                fn threads() {
                    super::$name(super::common::Model::Threads)
                }
                #[test]
                fn pool() {
                    super::$name(super::common::Model::Pool)
                }
                #[test]
                fn event_loop_tls() {
                    super::$name(super::common::Model::LoopTls)
                }
                #[test]
                fn threads_tls() {
                    super::$name(super::common::Model::ThreadsTls)
                }
            }
        )*
    };
}

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    /// Whether it serves HTTPS (its clients then speak TLS).
    pub tls: bool,
    /// Tells the thread following a `--log-file` to stop.
    stopped: Arc<AtomicBool>,
}

impl Server {
    /// Starts `oneloop --port 0 ARGS...` (unless ARGS name a port) and waits
    /// for it to say where it listens.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// Starts the server in `model` with `args`.
    pub fn start_model(model: Model, args: &[&str]) -> Server {
        let model_args = model.args();
        let mut all: Vec<&str> = model_args.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        Server::start(&all)
    }

    /// Starts `model` with a `/files/` store in `dir`, and `flags`.
    pub fn start_store(model: Model, dir: &std::path::Path, flags: &[&str]) -> Server {
        let dir = dir.to_str().expect("a UTF-8 temporary path");
        let mut args = vec!["--directory", dir];
        args.extend_from_slice(flags);
        Server::start_model(model, &args)
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(args, env, None)
    }

    /// Starts the server with a descriptor limit (`ulimit -n`) of `soft`, which
    /// it may raise up to `hard`.
    pub fn start_with_descriptor_limit(args: &[&str], soft: u64, hard: u64) -> Server {
        Server::spawn(args, &[], Some((soft, hard)))
    }

    fn spawn(args: &[&str], env: &[(&str, &str)], nofile: Option<(u64, u64)>) -> Server {
        let mut command = oneloop();
        if let Some((soft, hard)) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
            unsafe {
                command.pre_exec(move || {
                    // rlim_t is 32 bits on 32-bit ARM; the tests' limits fit.
                    let rlimit = libc::rlimit {
                        rlim_cur: soft as libc::rlim_t,
                        rlim_max: hard as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        if !args.contains(&"--port") {
            command.args(["--port", "0"]);
        }
        command.args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        Server::from_command(command, args)
    }

    /// Starts `command`, which runs oneloop with `args` (perhaps through a
    /// wrapper), and waits for it to say where it listens.
    pub fn from_command(mut command: Command, args: &[&str]) -> Server {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match Server::try_from_command(&mut command, args) {
            Ok(server) => server,
            // qemu-user forks a guest with many threads (a test binary's)
            // unreliably: now and then the child hangs before it reaches
            // exec. That is the emulator's, not the server's: one retry.
            Err(NeverStarted::NeverExeced) if emulated() => {
                eprintln!("the emulator's fork hung before exec; starting oneloop again");
                match Server::try_from_command(&mut command, args) {
                    Ok(server) => server,
                    Err(e) => panic!("{e}"),
                }
            }
            Err(e) => panic!("{e}"),
        }
    }

    fn try_from_command(command: &mut Command, args: &[&str]) -> Result<Server, NeverStarted> {
        let mut child = command.spawn().expect("start oneloop");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stopped = Arc::new(AtomicBool::new(false));
        let (sink, tx) = (Arc::clone(&log), addr_tx.clone());
        // Keep draining stderr for the server's whole life, so it never blocks
        // on a full pipe, and keep it for the tests to read.
        std::thread::spawn(move || collect_lines(BufReader::new(stderr), &sink, tx));
        // With --log-file, the server's log is that file: follow it.
        if let Some(path) = args
            .iter()
            .position(|a| *a == "--log-file")
            .and_then(|i| args.get(i + 1))
        {
            let tail = Tail::open(path, Arc::clone(&stopped));
            let sink = Arc::clone(&log);
            std::thread::spawn(move || collect_lines(BufReader::new(tail), &sink, addr_tx));
        }
        // Starting is a long job under an emulator on a busy machine.
        let addr = match addr_rx.recv_timeout(IO_TIMEOUT * slowdown()) {
            Ok(addr) => addr.parse().expect("a socket address in the log"),
            Err(_) => {
                // A child still running that is not oneloop never reached
                // exec; one that has exited (a zombie's command line is
                // empty) did, and failed.
                let running = matches!(child.try_wait(), Ok(None));
                let execed = !running || execed_oneloop(child.id());
                let _ = child.kill();
                let status = child.wait();
                if !execed {
                    return Err(NeverStarted::NeverExeced);
                }
                return Err(NeverStarted::Silent(format!(
                    "oneloop did not start ({status:?}); its log:\n{}",
                    log.lock().unwrap()
                )));
            }
        };
        let tls = args.contains(&"--tls-cert");
        Ok(Server {
            child,
            addr,
            log,
            tls,
            stopped,
        })
    }

    /// A new connection: plain TCP, or TLS to an HTTPS server (the handshake
    /// happens with the first read or write).
    pub fn connect(&self) -> Client {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client::new(stream, self.tls)
    }

    /// A new connection from another loopback address (`127.0.0.N`): another
    /// client, as the server counts clients.
    pub fn connect_from(&self, source: std::net::Ipv4Addr) -> Client {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("a socket");
        socket
            .bind(&SocketAddr::from((source, 0)).into())
            .expect("bind to a loopback address");
        socket.connect(&self.addr.into()).expect("connect");
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client::new(stream, self.tls)
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// What curl needs to trust this server (nothing for plain HTTP).
    pub fn curl_trust(&self) -> Vec<String> {
        if self.tls {
            vec!["--cacert".into(), tls::certificate_path()]
        } else {
            Vec::new()
        }
    }

    /// One request on a fresh connection; the response to it.
    pub fn request(&self, raw: &str) -> Response {
        let mut stream = self.connect();
        stream.write_all(raw.as_bytes()).unwrap();
        read_response(&mut stream, raw.starts_with("HEAD "))
    }

    /// `GET path` on a fresh connection.
    pub fn get(&self, path: &str) -> Response {
        self.request(&format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (the server goes on, or not).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Sends a signal and waits for the exit status.
    pub fn signal_and_wait(&mut self, signal: i32) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        self.wait_exit(IO_TIMEOUT)
            .expect("server exits after the signal")
    }

    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// CPU time the server has used so far (user and system).
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the parenthesised command name; utime and stime are the
        // 14th and 15th fields overall, in clock ticks.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<u64> = after
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis((fields[11] + fields[12]) * 1000 / ticks)
    }

    /// Resident set size now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// Peak resident set size so far, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// A memory figure from /proc/PID/status, in KiB.
    fn status_kib(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// The soft descriptor limit it runs with, from /proc.
    pub fn descriptor_limit(&self) -> u64 {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.pid())).unwrap();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .expect("a descriptor limit");
        line.split_whitespace().nth(3).unwrap().parse().unwrap()
    }

    /// Open descriptors, from /proc.
    pub fn open_descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Gathers the server's log lines into `sink`, and sends the address of the
/// first "listening on" line.
fn collect_lines(
    lines: impl BufRead,
    sink: &Mutex<String>,
    addr_tx: std::sync::mpsc::Sender<String>,
) {
    let mut addr_tx = Some(addr_tx);
    for line in lines.lines() {
        let Ok(line) = line else { break };
        {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
        if let Some(tx) = addr_tx.as_ref()
            && let Some(rest) = line
                .split("listening on http://")
                .nth(1)
                .or_else(|| line.split("listening on https://").nth(1))
        {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            let _ = tx.send(addr.to_string());
            addr_tx = None;
        }
    }
}

/// A file read as it grows (`tail -f`), until the server is dropped.
struct Tail {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    stopped: Arc<AtomicBool>,
}

impl Tail {
    fn open(path: &str, stopped: Arc<AtomicBool>) -> Tail {
        Tail {
            path: path.into(),
            file: None,
            stopped,
        }
    }
}

impl Read for Tail {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while !self.stopped.load(Ordering::Relaxed) {
            if self.file.is_none() {
                // The server creates it: wait for it to exist.
                self.file = std::fs::File::open(&self.path).ok();
            }
            if let Some(file) = self.file.as_mut() {
                let n = file.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(0)
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// (name, value) in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The head exactly as received.
    pub raw_head: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads a response head, up to and including its blank line.
pub fn read_head(stream: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => panic!(
                "connection closed inside a response head: {:?}",
                String::from_utf8_lossy(&head)
            ),
            Ok(_) => head.push(byte[0]),
            Err(e) => panic!(
                "reading a response head: {e}; got so far {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    String::from_utf8(head).expect("an ASCII head")
}

/// Reads one response: the head, then a body of Content-Length bytes (none for
/// HEAD, 1xx, 204 and 304), or until EOF when there is no length.
pub fn read_response(stream: &mut impl Read, head_request: bool) -> Response {
    let raw_head = read_head(stream);
    let mut lines = raw_head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(
        parts.next(),
        Some("HTTP/1.1"),
        "status line {status_line:?}"
    );
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let reason = parts.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (name, value) = l.split_once(": ").expect("a header line");
            (name.to_string(), value.to_string())
        })
        .collect();
    let mut response = Response {
        status,
        reason,
        headers,
        body: Vec::new(),
        raw_head,
    };
    if head_request || status < 200 || status == 204 || status == 304 {
        return response;
    }
    match response.header("content-length") {
        Some(len) => {
            let len: usize = len.parse().expect("a numeric Content-Length");
            response.body = vec![0; len];
            stream
                .read_exact(&mut response.body)
                .expect("the whole body");
        }
        None => {
            stream
                .read_to_end(&mut response.body)
                .expect("a body up to EOF");
        }
    }
    response
}

/// Whether the server closes the connection (EOF, or a reset) within `within`,
/// with no further bytes.
pub fn closes_within(stream: &mut Client, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => tls::is_a_close(&e),
    }
}

/// Writes `raw` and then closes the sending side.
pub fn send_and_half_close(stream: &mut Client, raw: &[u8]) {
    stream.write_all(raw).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
}

/// Reads everything until the server closes.
pub fn read_all(stream: &mut Client) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all);
    all
}

/// Polls `condition` until it holds or `within` passes.
pub fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Skips the calling test, saying why where a person sees it. Cargo shows a
/// passing test's output only when asked, so the reason also goes, one line
/// per test, to the file `make test` reads at its end to list what was
/// skipped (`ONELOOP_SKIP_LOG`, set by the Makefile; else under target/tmp).
/// The caller returns after this.
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    let line = format!("{} {test}: {reason}\n", env!("CARGO_CRATE_NAME"));
    eprint!("skipped: {line}");
    let log = std::env::var_os("ONELOOP_SKIP_LOG").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("skipped.txt"),
        std::path::PathBuf::from,
    );
    // One short append per line: lines of tests running at once never mix.
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = appended {
        eprintln!("(could not note it in {}: {e})", log.display());
    }
}

/// `oneloop --hash-password USER` with `stdin` as its input: what it did.
pub fn hash_password(user: &str, stdin: &str) -> std::process::Output {
    let mut child = oneloop()
        .args(["--hash-password", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A name it cannot store is refused before stdin is read, so the child
    // may already be gone when the password arrives: a broken pipe here is
    // that refusal, and the exit status judges it.
    let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    if let Err(error) = written {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
    }
    child.wait_with_output().unwrap()
}

/// `oneloop --hash-password USER`, the password on stdin: the line it prints.
pub fn hash_line(user: &str, password: &str) -> String {
    let output = hash_password(user, &format!("{password}\n"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .trim_end()
        .to_owned()
}

/// Whether `curl` is on PATH; tests that need it say so when it is not.
pub fn have_curl() -> bool {
    Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
