//! The servers under test, how each is started, and the configuration it gets.
//!
//! Every subject serves the same fixture site on a port of its own, keeps idle
//! connections for 60 s, serves up to a million requests per connection, logs
//! nothing per request, and runs on one core. Beyond that each peer gets its
//! best documented configuration for the workload: nginx without `tcp_nopush`
//! (which stalls it on small and pipelined responses: 36.5k against 94.2k
//! requests/s pipelined, measured here), and again with it for large files,
//! where its documentation recommends it; h2o with one thread; Caddy with
//! `GOMAXPROCS=1`. The exact configuration is printed in the report.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::machine::on_path;
use crate::{Cell, lifeline, ports, procs};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// oneloop with these extra arguments.
    Oneloop(Vec<String>),
    /// nginx; `nopush` turns `tcp_nopush` on (large files only).
    Nginx {
        nopush: bool,
    },
    /// nginx with `limit_conn` and `limit_req` at the abuse bench's settings.
    NginxLimited,
    Lighttpd,
    H2o,
    Caddy,
    /// The canned responder: a ceiling, not a server.
    Ceiling,
}

#[derive(Clone, Debug)]
pub struct Subject {
    pub name: String,
    pub kind: Kind,
    /// CPUs the server is pinned to (`taskset -c`).
    pub cpus: String,
    /// Serves HTTPS (the TLS workloads) instead of HTTP.
    pub tls: bool,
}

/// What every subject serves: the site, and the certificate for HTTPS.
pub struct Fixture {
    pub site: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct Running {
    pub child: Child,
    pub port: u16,
    /// The command line and any configuration file, for the report.
    pub described: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM to the whole group first, so nginx's workers go too; what
        // is left after 3 s is killed.
        let group = self.child.id() as i32;
        lifeline::stop(group, libc::SIGTERM);
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        lifeline::stop(group, libc::SIGKILL);
        let _ = self.child.wait();
        lifeline::stopped(group);
    }
}

/// Every subject available on this machine, in report order: the plain ones,
/// then the same servers over HTTPS.
pub fn available(cpus_for_one: &'static str, cpus_for_two: &'static str) -> Vec<Subject> {
    let subject = |name: &str, kind: Kind, cpus: &str, tls| Subject {
        name: name.to_string(),
        kind,
        cpus: cpus.to_string(),
        tls,
    };
    let oneloop = |args: &[&str]| Kind::Oneloop(args.iter().map(|a| a.to_string()).collect());
    let mut subjects = vec![
        subject("ceiling", Kind::Ceiling, cpus_for_one, false),
        subject("oneloop loop", oneloop(&[]), cpus_for_one, false),
        subject(
            "oneloop threads",
            oneloop(&["--model", "threads"]),
            cpus_for_one,
            false,
        ),
        subject(
            "oneloop pool",
            oneloop(&["--model", "pool", "--threads", "64"]),
            cpus_for_one,
            false,
        ),
        subject(
            "oneloop loop x2",
            oneloop(&["--workers", "2"]),
            cpus_for_two,
            false,
        ),
    ];
    let peers = [
        ("nginx", Kind::Nginx { nopush: false }),
        ("nginx tcp_nopush", Kind::Nginx { nopush: true }),
        ("lighttpd", Kind::Lighttpd),
        ("h2o", Kind::H2o),
        ("caddy", Kind::Caddy),
    ];
    for (name, kind) in &peers {
        if on_path(kind.program()) {
            subjects.push(subject(name, kind.clone(), cpus_for_one, false));
        }
    }
    subjects.push(subject("oneloop loop", oneloop(&[]), cpus_for_one, true));
    for (name, kind) in peers {
        if kind.serves_tls() && on_path(kind.program()) {
            subjects.push(subject(name, kind, cpus_for_one, true));
        }
    }
    subjects
}

impl Kind {
    fn program(&self) -> &'static str {
        match self {
            Kind::Oneloop(_) => "oneloop",
            Kind::Nginx { .. } | Kind::NginxLimited => "nginx",
            Kind::Lighttpd => "lighttpd",
            Kind::H2o => "h2o",
            Kind::Caddy => "caddy",
            Kind::Ceiling => "ceiling",
        }
    }

    /// Whether the subject has an HTTPS configuration here (lighttpd's needs
    /// its TLS module, a package of its own on Debian).
    fn serves_tls(&self) -> bool {
        match self {
            Kind::Nginx { nopush } => !nopush,
            Kind::NginxLimited => false,
            Kind::Lighttpd => lighttpd_module_dir().join("mod_openssl.so").exists(),
            Kind::H2o | Kind::Caddy | Kind::Oneloop(_) => true,
            Kind::Ceiling => false,
        }
    }
}

impl Subject {
    /// Whether the subject takes part in a workload: over its protocol, and
    /// able to answer it the way the workload means (only nginx and oneloop
    /// echo a path segment; the ceiling answers everything with 13 bytes; nginx
    /// with tcp_nopush is the large-file configuration).
    pub fn serves(&self, cell: &Cell) -> bool {
        if self.tls != cell.tls {
            return false;
        }
        let echo = cell.path.starts_with("/echo/");
        match self.kind {
            Kind::Ceiling => (cell.path == "/13.txt" || echo) && !cell.close,
            Kind::Nginx { nopush: true } => cell.large,
            Kind::Lighttpd | Kind::H2o | Kind::Caddy => !echo,
            Kind::Nginx { nopush: false } | Kind::Oneloop(_) => true,
            Kind::NginxLimited => false,
        }
    }

    /// A short name for files and CSV.
    pub fn slug(&self) -> String {
        let slug: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        if self.tls { slug + "-tls" } else { slug }
    }

    /// The name with its protocol, for the list of configurations.
    pub fn title(&self) -> String {
        if self.tls {
            format!("{} (HTTPS)", self.name)
        } else {
            self.name.clone()
        }
    }

    /// Starts the subject on a free port and waits until its own process
    /// listens there: a child that exits, or a port another process answers
    /// on, is an error, never a subject measured.
    pub fn start(&self, fixture: &Fixture, workdir: &Path, binaries: &Path) -> io::Result<Running> {
        let port = ports::free().map_err(io::Error::other)?;
        let dir = workdir.join(self.slug());
        std::fs::create_dir_all(&dir)?;
        let pin = |program: &str| -> Command {
            if on_path("taskset") {
                let mut command = Command::new("taskset");
                command.args(["-c", &self.cpus, program]);
                command
            } else {
                Command::new(program)
            }
        };
        let configured = |name: &str, config: String| -> io::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, config)?;
            Ok(path)
        };
        let tls = self.tls.then_some(fixture);
        let site = &fixture.site;
        let (mut command, described) = match &self.kind {
            Kind::Oneloop(extra) => {
                let program = binaries.join("oneloop");
                let mut args: Vec<String> = vec![
                    site.display().to_string(),
                    "--port".into(),
                    port.to_string(),
                    "--max-connections".into(),
                    "19000".into(),
                    "--keep-alive-timeout".into(),
                    "60".into(),
                ];
                if let Some(tls) = tls {
                    args.extend([
                        "--tls-cert".into(),
                        tls.cert.display().to_string(),
                        "--tls-key".into(),
                        tls.key.display().to_string(),
                    ]);
                }
                args.extend(extra.iter().cloned());
                let mut command = pin(&program.display().to_string());
                command.args(&args);
                (command, format!("oneloop {}", args.join(" ")))
            }
            Kind::Ceiling => {
                let program = binaries.join("ceiling");
                let mut command = pin(&program.display().to_string());
                command.args(["--port", &port.to_string()]);
                (command, format!("ceiling --port {port}"))
            }
            Kind::Nginx { .. } | Kind::NginxLimited => {
                let nopush = self.kind == (Kind::Nginx { nopush: true });
                let limits = self.kind == Kind::NginxLimited;
                let config = nginx_config(port, site, &dir, nopush, limits, tls);
                let path = configured("nginx.conf", config.clone())?;
                let mut command = pin("nginx");
                command.args(["-p", &dir.display().to_string(), "-c"]);
                command.arg(&path);
                (command, format!("nginx -c nginx.conf\n\n{config}"))
            }
            Kind::Lighttpd => {
                let config = lighttpd_config(port, site, &dir, tls);
                let path = configured("lighttpd.conf", config.clone())?;
                let mut command = pin("lighttpd");
                command.args(["-D", "-m"]);
                command.arg(lighttpd_module_dir());
                command.arg("-f").arg(&path);
                (command, format!("lighttpd -D -f lighttpd.conf\n\n{config}"))
            }
            Kind::H2o => {
                let config = h2o_config(port, site, &dir, tls);
                let path = configured("h2o.conf", config.clone())?;
                let mut command = pin("h2o");
                command.arg("-c").arg(&path);
                (command, format!("h2o -c h2o.conf\n\n{config}"))
            }
            Kind::Caddy => {
                let config = caddy_config(port, site, tls);
                let path = configured("Caddyfile", config.clone())?;
                let mut command = pin("caddy");
                command.args(["run", "--adapter", "caddyfile", "--config"]);
                command.arg(&path);
                // One core's worth of Go scheduler, and its state kept here.
                command
                    .env("GOMAXPROCS", "1")
                    .env("HOME", &dir)
                    .env("XDG_DATA_HOME", &dir)
                    .env("XDG_CONFIG_HOME", &dir);
                (
                    command,
                    format!(
                        "GOMAXPROCS=1 caddy run --adapter caddyfile --config Caddyfile\n\n{config}"
                    ),
                )
            }
        };
        lifeline::tie(&mut command);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        lifeline::started(child.id() as i32);
        drain(child.stdout.take());
        drain(child.stderr.take());
        let mut running = Running {
            child,
            port,
            described,
        };
        running.wait_until_listening(Duration::from_secs(10))?;
        Ok(running)
    }
}

impl Running {
    /// The URL of `path` on this server.
    pub fn url(&self, path: &str, tls: bool) -> String {
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until one of the child's own processes listens on its port.
    fn wait_until_listening(&mut self, within: Duration) -> io::Result<()> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            self.check_alive()?;
            if ports::held_by(self.port, &procs::tree(self.child.id())) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let other = if ports::listening_inodes(self.port).is_empty() {
            "nothing listens there"
        } else {
            "another process listens there"
        };
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "not listening on port {} after {within:?}: {other}",
                self.port
            ),
        ))
    }

    /// An error if the child has exited.
    pub fn check_alive(&mut self) -> io::Result<()> {
        match self.child.try_wait()? {
            Some(status) => Err(io::Error::other(format!("the server exited ({status})"))),
            None => Ok(()),
        }
    }

    /// The server's processes now, checked: alive, still holding its port,
    /// and resident in memory. Anything else stops the run.
    pub fn verified(&mut self) -> io::Result<Vec<u32>> {
        self.check_alive()?;
        let pids = procs::tree(self.child.id());
        if !ports::held_by(self.port, &pids) {
            return Err(io::Error::other(format!(
                "its processes no longer hold port {}",
                self.port
            )));
        }
        if procs::rss_kib(&pids) == 0 {
            return Err(io::Error::other("its resident memory reads 0"));
        }
        Ok(pids)
    }
}

/// Keeps reading a child's output so it never blocks on a full pipe.
fn drain(stream: Option<impl io::Read + Send + 'static>) {
    if let Some(stream) = stream {
        std::thread::spawn(move || for _ in BufReader::new(stream).lines() {});
    }
}

/// nginx as close to oneloop as it goes: one worker, no access log, sendfile,
/// the same keep-alive, an open-file cache, and `/echo/x` answered with `x`.
/// `tcp_nopush` (TCP_CORK around sendfile) only where asked: it saves packets
/// on large files and stalls small and pipelined responses.
fn nginx_config(
    port: u16,
    site: &Path,
    dir: &Path,
    nopush: bool,
    limits: bool,
    tls: Option<&Fixture>,
) -> String {
    // The abuse bench's limits, as oneloop's --max-connections-per-ip,
    // --rate-per-ip and --rate-burst give them (src/abuse.rs).
    let (zones, limit) = if limits {
        use crate::limits::{CONNECTIONS_PER_IP, RATE_BURST, RATE_PER_IP};
        (
            format!(
                "    limit_conn_zone $binary_remote_addr zone=perip:10m;\n    \
                 limit_req_zone $binary_remote_addr zone=rate:10m rate={RATE_PER_IP}r/s;\n    \
                 limit_conn_status 503;\n    limit_req_status 429;\n"
            ),
            format!(
                "        limit_conn perip {CONNECTIONS_PER_IP};\n        \
                 limit_req zone=rate burst={RATE_BURST} nodelay;\n"
            ),
        )
    } else {
        (String::new(), String::new())
    };
    let ssl = tls.map_or(String::new(), |tls| {
        format!(
            "        ssl_certificate {};\n        ssl_certificate_key {};\n",
            tls.cert.display(),
            tls.key.display()
        )
    });
    format!(
        r#"daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 19000;
    use epoll;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush {nopush};
    tcp_nodelay on;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    # Descriptors and metadata of files kept, looked at again every second:
    # nginx's nearest equivalent of oneloop's file cache.
    open_file_cache max=1000 inactive=20s;
    open_file_cache_valid 1s;
    server_tokens off;
{zones}    types {{
        text/plain txt;
        application/octet-stream bin;
    }}
    default_type application/octet-stream;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port}{listen_ssl} backlog=4096;
{ssl}{limit}        root {site};
        location ~ ^/echo/(.*)$ {{
            default_type text/plain;
            return 200 $1;
        }}
    }}
}}
"#,
        dir = dir.display(),
        site = site.display(),
        nopush = if nopush { "on" } else { "off" },
        listen_ssl = if tls.is_some() { " ssl" } else { "" },
    )
}

/// lighttpd with the same intent (its stat cache is on by default; it has no
/// way to echo a path segment, so it sits out the echo workload).
fn lighttpd_config(port: u16, site: &Path, dir: &Path, tls: Option<&Fixture>) -> String {
    let ssl = tls.map_or(String::new(), |tls| {
        format!(
            "server.modules += (\"mod_openssl\")\nssl.engine = \"enable\"\nssl.pemfile = \"{}\"\nssl.privkey = \"{}\"\n",
            tls.cert.display(),
            tls.key.display()
        )
    });
    format!(
        r#"server.document-root = "{site}"
server.bind = "127.0.0.1"
server.port = {port}
server.pid-file = "{dir}/lighttpd.pid"
server.errorlog = "{dir}/error.log"
server.event-handler = "linux-sysepoll"
server.network-backend = "sendfile"
server.max-fds = 20000
server.max-connections = 9000
server.max-keep-alive-requests = 1000000
server.max-keep-alive-idle = 60
server.listen-backlog = 4096
mimetype.assign = (".txt" => "text/plain", ".bin" => "application/octet-stream")
{ssl}"#,
        site = site.display(),
        dir = dir.display(),
    )
}

/// Where Debian puts lighttpd's modules (its TLS module among them).
fn lighttpd_module_dir() -> PathBuf {
    PathBuf::from("/usr/lib/lighttpd")
}

/// h2o with one thread (its default is one per core) serving the folder. No
/// pid file: started as root, h2o writes it after dropping to `nobody`.
fn h2o_config(port: u16, site: &Path, dir: &Path, tls: Option<&Fixture>) -> String {
    let ssl = tls.map_or(String::new(), |tls| {
        format!(
            "  ssl:\n    certificate-file: {}\n    key-file: {}\n",
            tls.cert.display(),
            tls.key.display()
        )
    });
    format!(
        r#"listen:
  host: 127.0.0.1
  port: {port}
{ssl}num-threads: 1
max-connections: 19000
http1-request-timeout: 60
error-log: {dir}/error.log
hosts:
  default:
    paths:
      /:
        file.dir: {site}
"#,
        site = site.display(),
        dir = dir.display(),
    )
}

/// Caddy serving the folder with `file_server`: no admin endpoint (several
/// Caddys run at once), no automatic HTTPS (the certificate is given), idle
/// connections kept 60 s.
fn caddy_config(port: u16, site: &Path, tls: Option<&Fixture>) -> String {
    let (scheme, tls_line) = match tls {
        Some(tls) => (
            "https",
            format!("\ttls {} {}\n", tls.cert.display(), tls.key.display()),
        ),
        None => ("http", String::new()),
    };
    format!(
        "{{\n\tadmin off\n\tauto_https off\n\tservers {{\n\t\ttimeouts {{\n\t\t\tidle 60s\n\t\t}}\n\t}}\n}}\n\
         {scheme}://127.0.0.1:{port} {{\n\tbind 127.0.0.1\n{tls_line}\troot * {site}\n\tfile_server\n}}\n",
        site = site.display(),
    )
}

/// Where the release binaries are, after `cargo build --release`.
pub fn release_dir(workspace: &Path) -> PathBuf {
    workspace.join("target/release")
}
