//! The servers under test, how each is started, and the configuration it gets.
//!
//! Every subject serves the same fixture site on its own port, keeps idle
//! connections for 60 s, serves up to a million requests per connection, logs
//! nothing per request, and sends files with sendfile. Those are the defaults
//! that differ between the servers; everything else is left at each one's own
//! default, and the exact configuration is printed in the report.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::machine::on_path;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// oneloop with these extra arguments.
    Oneloop(Vec<String>),
    Nginx,
    Lighttpd,
    /// The canned responder: a ceiling, not a server.
    Ceiling,
}

#[derive(Clone, Debug)]
pub struct Subject {
    pub name: String,
    pub kind: Kind,
    /// CPUs the server is pinned to (`taskset -c`).
    pub cpus: &'static str,
}

pub struct Running {
    pub child: Child,
    pub port: u16,
    /// The command line and any configuration file, for the report.
    pub described: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM first, so nginx takes its workers with it.
        // SAFETY: kill(2) on a child we started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every subject available on this machine, in report order.
pub fn available(cpus_for_one: &'static str, cpus_for_two: &'static str) -> Vec<Subject> {
    let oneloop = |name: &str, args: &[&str], cpus| Subject {
        name: name.to_string(),
        kind: Kind::Oneloop(args.iter().map(|a| a.to_string()).collect()),
        cpus,
    };
    let mut subjects = vec![
        Subject {
            name: "ceiling".into(),
            kind: Kind::Ceiling,
            cpus: cpus_for_one,
        },
        oneloop("oneloop loop", &[], cpus_for_one),
        oneloop("oneloop threads", &["--model", "threads"], cpus_for_one),
        oneloop(
            "oneloop pool",
            &["--model", "pool", "--threads", "64"],
            cpus_for_one,
        ),
        oneloop("oneloop loop x2", &["--workers", "2"], cpus_for_two),
    ];
    if on_path("nginx") {
        subjects.push(Subject {
            name: "nginx".into(),
            kind: Kind::Nginx,
            cpus: cpus_for_one,
        });
    }
    if on_path("lighttpd") {
        subjects.push(Subject {
            name: "lighttpd".into(),
            kind: Kind::Lighttpd,
            cpus: cpus_for_one,
        });
    }
    subjects
}

impl Subject {
    /// Whether the subject can answer a request for `path` the way the
    /// workload means it (lighttpd has no echo endpoint; the ceiling answers
    /// everything with 13 bytes, so it only stands for small responses).
    pub fn serves(&self, path: &str) -> bool {
        match self.kind {
            Kind::Ceiling => path == "/13.txt" || path.starts_with("/echo/"),
            Kind::Lighttpd => !path.starts_with("/echo/"),
            _ => true,
        }
    }

    /// A short name for files and CSV.
    pub fn slug(&self) -> String {
        self.name.replace(' ', "-")
    }

    pub fn start(
        &self,
        port: u16,
        site: &Path,
        workdir: &Path,
        binaries: &Path,
    ) -> io::Result<Running> {
        let dir = workdir.join(self.slug());
        std::fs::create_dir_all(&dir)?;
        let pin = |program: &str| -> Command {
            if on_path("taskset") {
                let mut command = Command::new("taskset");
                command.args(["-c", self.cpus, program]);
                command
            } else {
                Command::new(program)
            }
        };
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
            Kind::Nginx => {
                let config = nginx_config(port, site, &dir);
                let path = dir.join("nginx.conf");
                std::fs::write(&path, &config)?;
                let mut command = pin("nginx");
                command.args([
                    "-p",
                    &dir.display().to_string(),
                    "-c",
                    &path.display().to_string(),
                ]);
                (
                    command,
                    format!("nginx -p {} -c nginx.conf\n\n{config}", dir.display()),
                )
            }
            Kind::Lighttpd => {
                let config = lighttpd_config(port, site, &dir);
                let path = dir.join("lighttpd.conf");
                std::fs::write(&path, &config)?;
                let mut command = pin("lighttpd");
                command.args(["-D", "-f", &path.display().to_string()]);
                (command, format!("lighttpd -D -f lighttpd.conf\n\n{config}"))
            }
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        drain(child.stdout.take());
        drain(child.stderr.take());
        let running = Running {
            child,
            port,
            described,
        };
        wait_until_listening(port, Duration::from_secs(10))?;
        Ok(running)
    }
}

/// Keeps reading a child's output so it never blocks on a full pipe.
fn drain(stream: Option<impl io::Read + Send + 'static>) {
    if let Some(stream) = stream {
        std::thread::spawn(move || for _ in BufReader::new(stream).lines() {});
    }
}

fn wait_until_listening(port: u16, within: Duration) -> io::Result<()> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("nothing listens on port {port}"),
    ))
}

/// nginx as close to oneloop as it goes: one worker, no access log, sendfile,
/// the same keep-alive, an open-file cache revalidated every second, and
/// `/echo/x` answered with `x`.
fn nginx_config(port: u16, site: &Path, dir: &Path) -> String {
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
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    # oneloop keeps small files' metadata (and bytes) for a second before it
    # looks again; this is nginx's nearest equivalent.
    open_file_cache max=1000 inactive=20s;
    open_file_cache_valid 1s;
    server_tokens off;
    types {{
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
        listen 127.0.0.1:{port} backlog=4096;
        root {site};
        location ~ ^/echo/(.*)$ {{
            default_type text/plain;
            return 200 $1;
        }}
    }}
}}
"#,
        dir = dir.display(),
        site = site.display(),
    )
}

/// lighttpd with the same intent (its stat cache is on by default; it has no
/// way to echo a path segment, so it sits out the echo workload).
fn lighttpd_config(port: u16, site: &Path, dir: &Path) -> String {
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
"#,
        site = site.display(),
        dir = dir.display(),
    )
}

/// Where the release binaries are, after `cargo build --release`.
pub fn release_dir(workspace: &Path) -> PathBuf {
    workspace.join("target/release")
}
