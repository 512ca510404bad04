//! The command line: flags, their help, and their translation into a [`Config`].
//!
//! Every mistake a user can make here (a bad flag, a missing folder, a size that
//! does not parse) is reported before the server starts, with a non-zero exit.

use std::net::{IpAddr, Ipv6Addr, ToSocketAddrs};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

mod sites;
mod with_file;

pub use with_file::CliError;

use crate::access_log::Format;
use crate::app::auth::{check_realm, check_user_name, hash_line};
use crate::app::{
    CacheLimits, DEFAULT_MAX_ENTRIES, Gate, Scope, StaticConfig, StatusConfig, Visibility,
};
use crate::cidr::Cidr;
use crate::clients::{AccessRules, ClientLimits, ConnectionCap, Rate};
use crate::config::{Config, LogTarget, Model, ProxyConfig, TlsFiles};
use crate::http::MAX_HEADERS_CEILING;
use crate::system::{Account, Jail, Privileges, read_password};

#[derive(Parser, Debug)]
#[command(
    name = "oneloop",
    version,
    about = "An HTTP/1.1 and HTTP/2 server whose whole concurrency is one readiness loop.",
    after_help = "Sizes take an optional K, M or G suffix (powers of 1024); durations are seconds \
                  with an optional fraction, or carry an ms/s/m suffix.\n\
                  RUST_LOG (e.g. RUST_LOG=oneloop=trace) overrides -v/-q."
)]
pub struct Cli {
    /// Folder to serve as a static site (without it, `/` answers an empty 200).
    pub root: Option<PathBuf>,

    /// Read settings and sites from this TOML file: every long flag is a key
    /// of the same name, [[site]] tables add virtual hosts with their rules
    /// (docs/configuration.md). The command line overrides the file. SIGHUP
    /// reads it again.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Check FILE as --config would read it, print the configuration in
    /// effect and exit: 0 if it is good, 1 with every error if not.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    pub check_config: Option<PathBuf>,

    /// Address to listen on: an IP address, `[::1]`, or a name (every address
    /// it resolves to is bound).
    #[arg(long, default_value = "127.0.0.1", value_parser = parse_bind, value_name = "ADDR")]
    pub bind: BindAddresses,

    /// Port to listen on; 0 picks a free one (the log says which).
    #[arg(short, long, default_value_t = 4221)]
    pub port: u16,

    /// Serve HTTPS on --port with this certificate chain (PEM, the server's own
    /// first; certbot's fullchain.pem). Needs --tls-key. SIGHUP reloads it.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, RSA or EC; certbot's privkey.pem).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Also listen for plaintext HTTP on PORT and answer every request with a
    /// 308 to the same host, path and query over HTTPS.
    #[arg(long, value_name = "PORT", requires = "tls_cert")]
    pub redirect_http: Option<u16>,

    /// Send Strict-Transport-Security with this max-age on HTTPS responses
    /// (31536000 is a year).
    #[arg(long, value_name = "SECONDS", requires = "tls_cert")]
    pub hsts: Option<u64>,

    /// Speak HTTP/1.1 only: no `h2` in ALPN over TLS, and no HTTP/2 by prior
    /// knowledge on cleartext (whose preface is then a bad request).
    #[arg(long)]
    pub no_http2: bool,

    /// Folder behind /files/{name}: GET and HEAD read a file, POST writes one
    /// (anyone who can reach the port may, unless --auth-file). Served with
    /// or without --no-builtins.
    #[arg(long, value_name = "DIR")]
    pub directory: Option<PathBuf>,

    /// No demo endpoints: no /echo/, no /user-agent, and no empty 200 at /
    /// without ROOT (what a public host wants). /files/ stays, with --directory.
    #[arg(long)]
    pub no_builtins: bool,

    /// Answer directories that have no index.html with an HTML listing.
    #[arg(long)]
    pub listing: bool,

    /// Most entries one listing shows; the page says how many it left out.
    #[arg(long, default_value_t = DEFAULT_MAX_ENTRIES, value_name = "N")]
    pub listing_max_entries: usize,

    /// Never gzip files on the fly (by default small text files are gzipped,
    /// once, as they are cached, for clients that accept it).
    #[arg(long)]
    pub no_compress: bool,

    /// Serve dotfiles (names starting with '.'); hidden (404) by default.
    #[arg(long)]
    pub hidden: bool,

    /// Serve symlinks that lead outside ROOT; refused (404) by default.
    #[arg(long)]
    pub follow_symlinks: bool,

    /// Memory for the file cache, all it holds counted: small files' bytes and
    /// every entry's key, names and header blocks, open files' entries too
    /// (with --listing, a quarter keeps rendered listings); 0 caches nothing.
    #[arg(long, default_value = "4M", value_parser = parse_size, value_name = "BYTES")]
    pub cache_bytes: u64,

    /// Largest file kept in the cache; larger ones go out with sendfile.
    #[arg(long, default_value = "64K", value_parser = parse_size, value_name = "BYTES")]
    pub cache_file_bytes: u64,

    /// Descriptors of larger files kept open (and their lookups remembered)
    /// until they change (checked every second where they cannot be watched); 0
    /// opens them on every request.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub cache_open_files: usize,

    /// Write a line per response to PATH ('-' for stdout), in
    /// --access-log-format. SIGHUP and SIGUSR1 reopen it (after logrotate
    /// renamed it).
    #[arg(long, value_name = "PATH")]
    pub access_log: Option<PathBuf>,

    /// The access log's lines: combined (the Combined Log Format), vhost
    /// (the same, the Host first) or json (an object per line). The text
    /// formats end with the request's duration in microseconds.
    #[arg(long, value_enum, default_value_t = Format::Combined, value_name = "FORMAT")]
    pub access_log_format: Format,

    /// Write the process id to PATH once listening (removed at a graceful
    /// stop), for scripts and logrotate to signal this server alone. A file
    /// that names a running process stops the start; a stale one is replaced.
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,

    /// Write the server's own log (start, warnings, errors) to PATH instead
    /// of stderr. SIGHUP and SIGUSR1 reopen it.
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,

    /// Most connections held at once (split evenly between --workers loops);
    /// beyond it new ones wait in the kernel's backlog.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,

    /// Most connections one client (an address; an IPv6 /64) may hold at once;
    /// one more is answered 503 with Retry-After and closed. 0: no cap. The
    /// default leaves loopback clients alone (this host: a benchmark, a proxy
    /// in front); a cap given here holds them too.
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<u32>,

    /// Requests a second one client may make (a token bucket per address);
    /// one more is answered 429 with Retry-After, and its connection stays
    /// open. Off by default.
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    pub rate_per_ip: Option<f64>,

    /// Requests one client may make at once above --rate-per-ip (default: R,
    /// a second's worth).
    #[arg(long, value_name = "B", requires = "rate_per_ip")]
    pub rate_burst: Option<u32>,

    /// Close connections from this range at accept, before reading a byte
    /// (10.0.0.0/8, 2001:db8::/32, one address). Repeatable; with --allow,
    /// the longest matching prefix decides.
    #[arg(long, value_name = "CIDR")]
    pub deny: Vec<Cidr>,

    /// Accept connections only from this range (and what no --deny inside
    /// it excludes). Repeatable.
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<Cidr>,

    /// Longest request line (→ 414).
    #[arg(long, default_value = "8K", value_parser = parse_size, value_name = "BYTES")]
    pub max_request_line: u64,

    /// Largest request head, request line and fields together (→ 431).
    #[arg(long, default_value = "32K", value_parser = parse_size, value_name = "BYTES")]
    pub max_head_bytes: u64,

    /// Most header fields in one request (→ 431).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_headers: usize,

    /// Largest request body (→ 413, decided before reading when the length is declared).
    #[arg(long, default_value = "64M", value_parser = parse_size, value_name = "BYTES")]
    pub max_body_bytes: u64,

    /// Time allowed for a whole request head, from its first byte (→ 408).
    #[arg(long, default_value = "10", value_parser = parse_timeout, value_name = "SECS")]
    pub header_timeout: Duration,

    /// Time an idle keep-alive connection is kept between requests.
    #[arg(long, default_value = "15", value_parser = parse_timeout, value_name = "SECS")]
    pub keep_alive_timeout: Duration,

    /// Longest pause inside a request body (→ 408).
    #[arg(long, default_value = "30", value_parser = parse_timeout, value_name = "SECS")]
    pub body_timeout: Duration,

    /// Longest pause in a client's reading of a response before it is dropped.
    #[arg(long, default_value = "30", value_parser = parse_timeout, value_name = "SECS")]
    pub send_timeout: Duration,

    /// Time in-flight responses get to finish after SIGTERM or SIGINT (0 drops
    /// them at once).
    #[arg(long, default_value = "10", value_parser = parse_duration, value_name = "SECS")]
    pub shutdown_timeout: Duration,

    /// How connections are served: one readiness loop, a thread per connection,
    /// or a fixed pool of threads (the last two for comparison).
    #[arg(long, value_enum, default_value_t = Model::Loop)]
    pub model: Model,

    /// Threads in the pool model.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub threads: usize,

    /// Independent event loops (loop model), each with its own SO_REUSEPORT listener.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub workers: usize,

    /// Ask for a user name and password (Basic authentication) with the users
    /// of PATH: `user:hash` lines, argon2 or bcrypt (make them with
    /// --hash-password, or htpasswd -B). Without TLS, passwords cross the
    /// network in clear. SIGHUP reads it again.
    #[arg(long, value_name = "PATH")]
    pub auth_file: Option<PathBuf>,

    /// Ask for credentials for uploads (POST /files/) only; reading stays open.
    #[arg(long, requires = "auth_file")]
    pub auth_uploads_only: bool,

    /// The realm browsers show when they ask for credentials.
    #[arg(
        long,
        value_name = "TEXT",
        default_value = "oneloop",
        requires = "auth_file"
    )]
    pub auth_realm: String,

    /// Print the --auth-file line for USER and exit: the password is read from
    /// stdin (asked twice, without echo, at a terminal) and hashed with argon2id.
    #[arg(long, value_name = "USER", exclusive = true)]
    pub hash_password: Option<String>,

    /// Every connection begins with a PROXY header (v1 or v2, as HAProxy and
    /// cloud load balancers send it) naming the client, who is then the one
    /// logged, held off and shown the status page. Needs --trusted-proxy.
    #[arg(long)]
    pub proxy_protocol: bool,

    /// The load balancers allowed to connect with --proxy-protocol (others
    /// are closed at once): a range (10.0.0.0/8) or one address. Repeatable.
    #[arg(long, value_name = "CIDR", requires = "proxy_protocol")]
    pub trusted_proxy: Vec<Cidr>,

    /// Serve a status page at PATH (e.g. /.status): connections by state,
    /// requests, bytes, loop turns, cache hits; JSON with Accept:
    /// application/json, Prometheus at PATH/metrics. Loopback clients only,
    /// unless --status-allow.
    #[arg(long, value_name = "PATH", value_parser = parse_status_path)]
    pub status: Option<String>,

    /// Also show the status page to clients in this range (10.0.0.0/8,
    /// 2001:db8::/32, or one address). Repeatable.
    #[arg(long, value_name = "CIDR", requires = "status")]
    pub status_allow: Vec<Cidr>,

    /// Once the listeners are bound and the logs open, give up root and run
    /// as this user (its groups too). Lets a server started as root serve
    /// port 80 without keeping root's rights.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Run as this group instead of --user's own.
    #[arg(long, value_name = "NAME", requires = "user")]
    pub group: Option<String>,

    /// Before giving up root, confine the server to DIR (chroot): ROOT and
    /// --directory must be inside it, and log files outside it cannot be
    /// reopened (certificates are read again from anywhere, as root).
    #[arg(long, value_name = "DIR", requires = "user")]
    pub chroot: Option<PathBuf>,

    /// More logging: -v for debug, -vv for a trace of every readiness event and state change.
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Log errors only.
    #[arg(short, long)]
    pub quiet: bool,

    /// What the configuration file said, once read.
    #[arg(skip)]
    file: Option<with_file::FileSettings>,
}

/// The addresses `--bind` names, in the order the resolver gave them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindAddresses(pub Vec<IpAddr>);

impl Cli {
    /// Checks the arguments against the system and builds the configuration.
    /// Several errors (a configuration file's) come one per line.
    pub fn into_config(mut self) -> Result<Config, String> {
        let file = self.file.take();
        let mut config = Config {
            bind: self.bind.0,
            port: self.port,
            max_connections: self.max_connections,
            shutdown_timeout: self.shutdown_timeout,
            ..Config::default()
        };
        for (value, flag) in [
            (self.max_connections, "--max-connections"),
            (self.threads, "--threads"),
            (self.workers, "--workers"),
            (self.listing_max_entries, "--listing-max-entries"),
        ] {
            if value == 0 {
                return Err(format!("{flag} must be at least 1"));
            }
        }
        config.model = self.model;
        config.tls = self
            .tls_cert
            .zip(self.tls_key)
            .map(|(cert, key)| TlsFiles { cert, key });
        config.redirect_http = self.redirect_http;
        config.http.strict_transport_max_age = self.hsts;
        config.http.http2 = !self.no_http2;
        config.threads = self.threads;
        config.workers = self.workers;
        if let Some(dir) = self.directory {
            config.app.files_dir = Some(existing_dir(&dir, "--directory")?);
        }
        // What every site serves its files with, its folder aside.
        let statics = StaticConfig {
            root: PathBuf::new(),
            listing: self.listing,
            listing_max_entries: self.listing_max_entries,
            visibility: Visibility {
                hidden: self.hidden,
                follow_symlinks: self.follow_symlinks,
            },
            cache: CacheLimits {
                total_bytes: usize_of(self.cache_bytes, "--cache-bytes")?,
                file_bytes: usize_of(self.cache_file_bytes, "--cache-file-bytes")?,
                open_files: self.cache_open_files,
            },
            compress: !self.no_compress,
        };
        if let Some(root) = &self.root {
            config.app.site = Some(StaticConfig {
                root: existing_dir(root, "ROOT")?,
                ..statics.clone()
            });
        }
        if let Some(file) = &file {
            let defaults = sites::Defaults {
                statics: &statics,
                root: config.app.site.clone(),
                realm: &self.auth_realm,
            };
            let (sites, certs, mut errors) = sites::configure(file, &defaults);
            let at = file.path.display();
            let compiled = crate::app::LoadedSites::compile(sites).map_err(|list| {
                errors.extend(list.iter().map(|e| format!("{at}: {e}")));
            });
            let loaded = match compiled {
                Ok(loaded) if errors.is_empty() => loaded,
                _ => return Err(errors.join("\n")),
            };
            config.app.sites = Some(loaded);
            config.site_certs = certs;
            config.reload_from = Some(file.command_line.clone());
            config.config_file = Some(file.path.clone());
        }
        config.app.builtins = !self.no_builtins;
        if let Some(path) = &self.auth_file {
            check_realm(&self.auth_realm)?;
            let scope = match self.auth_uploads_only {
                true => Scope::Uploads,
                false => Scope::Everything,
            };
            config.app.auth = Some(Arc::new(Gate::load(path, &self.auth_realm, scope)?));
        }
        if self.proxy_protocol {
            if self.trusted_proxy.is_empty() {
                return Err(
                    "--proxy-protocol needs --trusted-proxy: who may say who the client is".into(),
                );
            }
            config.proxy = Some(ProxyConfig {
                trusted: self.trusted_proxy,
            });
        }
        config.clients = ClientLimits {
            connections_per_ip: match self.max_connections_per_ip {
                None => Some(ConnectionCap::default_for_the_network()),
                Some(n) => NonZeroU32::new(n).map(|max| ConnectionCap {
                    max,
                    loopback: true,
                }),
            },
            rate: self
                .rate_per_ip
                .filter(|r| *r > 0.0)
                .map(|per_second| Rate {
                    per_second,
                    burst: self.rate_burst.unwrap_or(per_second.ceil() as u32).max(1),
                }),
            rules: AccessRules::new(self.allow, self.deny),
        };
        if self.rate_burst == Some(0) {
            return Err("--rate-burst must be at least 1".into());
        }
        config.app.status = self.status.map(|path| StatusConfig {
            path,
            allow: self.status_allow,
        });
        config.privileges = Privileges {
            account: self
                .user
                .as_deref()
                .map(|user| Account::look_up(user, self.group.as_deref()))
                .transpose()?,
            jail: self.chroot.as_deref().map(Jail::new).transpose()?,
        };
        config.privileges.check()?;
        config.access_log_format = self.access_log_format;
        config.pid_file = self.pid_file.map(|path| absolute(&path)).transpose()?;
        config.access_log = self.access_log.map(|path| {
            if path.as_os_str() == "-" {
                LogTarget::Stdout
            } else {
                LogTarget::File(path)
            }
        });

        let limits = &mut config.http.limits;
        limits.max_request_line = usize_of(self.max_request_line, "--max-request-line")?;
        limits.max_head_bytes = usize_of(self.max_head_bytes, "--max-head-bytes")?;
        limits.max_body_bytes = self.max_body_bytes;
        if self.max_headers == 0 || self.max_headers > MAX_HEADERS_CEILING {
            return Err(format!(
                "--max-headers must be between 1 and {MAX_HEADERS_CEILING}"
            ));
        }
        limits.max_headers = self.max_headers;
        // The request line is part of the head: a smaller head bounds it too.
        limits.max_request_line = limits.max_request_line.min(limits.max_head_bytes);

        let timeouts = &mut config.http.timeouts;
        timeouts.header = self.header_timeout;
        timeouts.keep_alive = self.keep_alive_timeout;
        timeouts.body = self.body_timeout;
        timeouts.send = self.send_timeout;
        if let Some(jail) = &config.privileges.jail {
            if file.as_ref().is_some_and(|f| !f.sites.is_empty()) {
                // The sites' folders, certificates and password files would
                // have to be named from inside the jail, and reread there.
                return Err("--chroot does not go with [[site]] tables: confine the \
                            server with systemd's RootDirectory= or ProtectSystem= instead"
                    .into());
            }
            check_jail(jail, &config, self.log_file.as_deref())?;
        }
        Ok(config)
    }

    /// `--hash-password USER`: the password file line, from a password read
    /// on stdin.
    pub fn hash_password_line(user: &str) -> Result<String, String> {
        check_user_name(user).map_err(|e| format!("--hash-password: {e}"))?;
        let password = read_password(&format!("Password for {user}: "))
            .map_err(|e| format!("--hash-password: {e}"))?;
        hash_line(user, &password).map_err(|e| format!("--hash-password: {e}"))
    }

    /// The log filter the flags ask for (RUST_LOG, when set, wins).
    pub fn log_filter(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "oneloop=error",
            (false, 0) => "oneloop=info",
            (false, 1) => "oneloop=debug",
            (false, _) => "oneloop=trace",
        }
    }
}

/// What the server serves must be inside the `--chroot`; the logs it reopens
/// may be outside it, with a warning, since they then cannot be reopened.
/// Certificates, keys and password files may be anywhere: a chroot needs
/// root, and a server started as root that has them to reload keeps a root
/// keeper outside the jail to read them again (`system::keeper`).
fn check_jail(jail: &Jail, config: &Config, log_file: Option<&Path>) -> Result<(), String> {
    let served = [
        (config.app.site.as_ref().map(|site| &site.root), "ROOT"),
        (config.app.files_dir.as_ref(), "--directory"),
    ];
    for (path, what) in served {
        if let Some(path) = path
            && jail.inside(path).is_none()
        {
            return Err(format!(
                "{what} {} is outside --chroot {}",
                path.display(),
                jail.dir().display()
            ));
        }
    }
    let access_log = match &config.access_log {
        Some(LogTarget::File(path)) => Some(path.as_path()),
        _ => None,
    };
    let reopened = [(access_log, "--access-log"), (log_file, "--log-file")];
    for (path, what) in reopened {
        if let Some(path) = path
            && jail.inside(path).is_none()
        {
            log::warn!(
                "{what} {} is outside --chroot {}: it cannot be reopened after a signal",
                path.display(),
                jail.dir().display()
            );
        }
    }
    Ok(())
}

fn existing_dir(path: &Path, what: &str) -> Result<PathBuf, String> {
    let canonical = path
        .canonicalize()
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if !canonical.is_dir() {
        return Err(format!("{what} {}: not a directory", path.display()));
    }
    Ok(canonical)
}

/// A path made absolute against the folder the server starts in, so that
/// what is removed at exit is what was written at start.
fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn usize_of(value: u64, flag: &str) -> Result<usize, String> {
    usize::try_from(value).map_err(|_| format!("{flag} is too large"))
}

/// `4096`, `8K`, `64M`, `1G` (binary multiples).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, multiplier) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1 << 10),
        Some((i, 'm' | 'M')) => (&text[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("`{text}` is not a size (try 4096, 8K, 64M)"))
}

/// `--bind`: `127.0.0.1`, `::1`, `[::1]`, or a name such as `localhost`,
/// which binds every address it resolves to (as nginx's `listen` does).
fn parse_bind(text: &str) -> Result<BindAddresses, String> {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| BindAddresses(vec![IpAddr::V6(ip)]))
            .map_err(|_| format!("`{text}` is not an IPv6 address"));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(BindAddresses(vec![ip]));
    }
    // Checked before any lookup, so a typo never waits on a resolver.
    let is_name = !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !is_name {
        return Err(format!(
            "`{text}` is not an address or a host name (try 127.0.0.1, [::1], localhost)"
        ));
    }
    let resolved = (text, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{text}`: {e}"))?;
    let mut addresses: Vec<IpAddr> = Vec::new();
    for address in resolved {
        if !addresses.contains(&address.ip()) {
            addresses.push(address.ip());
        }
    }
    if addresses.is_empty() {
        return Err(format!("`{text}` resolves to no address"));
    }
    Ok(BindAddresses(addresses))
}

/// `--status`: an absolute path with no trailing slash, query or fragment,
/// in plain characters (it is compared with the decoded path as sent).
fn parse_status_path(text: &str) -> Result<String, String> {
    let plain = text.len() > 1
        && text.starts_with('/')
        && !text.ends_with('/')
        && !text.contains("//")
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-~".contains(&b));
    match plain {
        true => Ok(text.to_owned()),
        false => Err(format!(
            "`{text}` is not a status page path (try /.status: a leading slash, letters, \
             digits, `.`, `_`, `-`, `~`)"
        )),
    }
}

/// `--rate-per-ip`: requests a second, a fraction allowed (0.5 is one every
/// two seconds), 0 for none.
fn parse_rate(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0 && *r <= 1e9)
        .ok_or_else(|| format!("`{text}` is not a rate (requests a second: 10, 0.5)"))
}

/// A timeout: a duration that is not zero (a zero timeout would close every
/// connection at once).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err(format!("`{text}`: a timeout must be longer than zero")),
        duration => Ok(duration),
    }
}

/// `10`, `0.5`, `250ms`, `2s`, `1m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .and_then(|n| Duration::try_from_secs_f64(n * unit).ok())
        .ok_or_else(|| format!("`{text}` is not a duration (try 10, 0.5, 250ms)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("8K"), Ok(8192));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert!(parse_size("-1").is_err());
        assert!(parse_size("1T").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn timeouts_are_never_zero() {
        assert_eq!(parse_timeout("0.5"), Ok(Duration::from_millis(500)));
        for zero in ["0", "0s", "0ms", "0.0"] {
            assert!(parse_timeout(zero).is_err(), "{zero}");
        }
    }

    #[test]
    fn bind_takes_addresses_brackets_and_names() {
        let one = |ip: &str| Ok(BindAddresses(vec![ip.parse().unwrap()]));
        assert_eq!(parse_bind("127.0.0.1"), one("127.0.0.1"));
        assert_eq!(parse_bind("::1"), one("::1"));
        assert_eq!(parse_bind("[::1]"), one("::1"));
        assert_eq!(parse_bind(" 0.0.0.0 "), one("0.0.0.0"));
        let localhost = parse_bind("localhost").unwrap();
        assert!(!localhost.0.is_empty());
        assert!(localhost.0.iter().all(IpAddr::is_loopback), "{localhost:?}");
        for bad in ["[127.0.0.1]", "[::1", "bad host", "a..b", "", "-1"] {
            assert!(parse_bind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_paths_are_plain_absolute_paths() {
        assert_eq!(parse_status_path("/.status"), Ok("/.status".into()));
        assert_eq!(
            parse_status_path("/admin/status"),
            Ok("/admin/status".into())
        );
        for bad in [
            "",
            "/",
            "status",
            "/.status/",
            "/a b",
            "/a?b",
            "/a%20b",
            "//x",
        ] {
            assert!(parse_status_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_challenge_command_line_parses() {
        let dir = std::env::temp_dir();
        let cli = Cli::try_parse_from([
            "oneloop",
            "--port",
            "4221",
            "--directory",
            dir.to_str().unwrap(),
        ])
        .unwrap();
        let config = cli.into_config().unwrap();
        assert_eq!(config.port, 4221);
        assert!(config.app.files_dir.is_some());
    }

    #[test]
    fn a_missing_directory_is_refused_before_start() {
        let cli = Cli::try_parse_from(["oneloop", "--directory", "/no/such/dir"]).unwrap();
        let error = cli.into_config().unwrap_err();
        assert!(error.contains("--directory /no/such/dir"), "{error}");
    }
}
