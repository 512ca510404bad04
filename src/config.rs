//! Everything the server is configured with, in one place, with its defaults.
//!
//! The protocol limits and timeouts live with the core (`http::limits`), the
//! application's knobs with the application (`app::AppConfig`); this file gathers
//! them with the server-wide ones. `cli.rs` fills it from the command line.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::app::AppConfig;
use crate::cidr::Cidr;
use crate::clients::{ClientLimits, ConnectionCap};
use crate::http::Settings;
use crate::system::Privileges;

/// How connections are driven (`--model`). Every model runs the same core and
/// application.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Model {
    /// One mio readiness loop per worker (the default, and the point of oneloop).
    #[default]
    Loop,
    /// One OS thread per connection, blocking sockets.
    Threads,
    /// A fixed pool of threads taking accepted connections from a queue.
    Pool,
}

/// The certificate and key that switch the listener to HTTPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// A PEM chain, the server's own certificate first.
    pub cert: PathBuf,
    /// A PEM private key: PKCS#8, RSA or EC.
    pub key: PathBuf,
}

/// Where the access log goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    File(PathBuf),
}

#[derive(Clone, Debug)]
pub struct Config {
    /// Addresses to listen on (a name given to `--bind` may resolve to several).
    pub bind: Vec<IpAddr>,
    /// 0 asks the system for a free port; the log says which one it gave.
    pub port: u16,
    /// With these, `port` speaks HTTPS.
    pub tls: Option<TlsFiles>,
    /// A plaintext port that answers every request with a 308 to HTTPS.
    pub redirect_http: Option<u16>,
    pub app: AppConfig,
    pub http: Settings,
    /// Connections held at once. At the cap the listener is left unaccepted (the
    /// kernel's backlog holds newcomers) until a connection closes.
    pub max_connections: usize,
    /// How long in-flight responses may take to finish after SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
    pub access_log: Option<LogTarget>,
    /// How its lines are written.
    pub access_log_format: crate::access_log::Format,
    pub model: Model,
    /// Threads in the `pool` model.
    pub threads: usize,
    /// Independent loops (each with its own SO_REUSEPORT listener) in the `loop` model.
    pub workers: usize,
    /// Who the server becomes once its listeners are bound and its files open.
    pub privileges: Privileges,
    /// Connections begin with a PROXY header from one of these peers.
    pub proxy: Option<ProxyConfig>,
    /// What one client may do: connect at all, hold so many connections,
    /// make so many requests a second.
    pub clients: ClientLimits,
    /// The certificates the sites of a configuration file name (a site's
    /// `cert` is an index into them), beside `tls`, the default one.
    pub site_certs: Vec<TlsFiles>,
    /// With `--config`: the command line as given, which SIGHUP reads again
    /// with the file.
    pub reload_from: Option<Vec<OsString>>,
    /// The configuration file that command line names.
    pub config_file: Option<PathBuf>,
    /// Where the process id is written once the listeners are bound, and
    /// removed at a graceful exit (`--pid-file`).
    pub pid_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            port: 4221,
            tls: None,
            redirect_http: None,
            app: AppConfig {
                builtins: true,
                ..AppConfig::default()
            },
            http: Settings::default(),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(10),
            access_log: None,
            access_log_format: crate::access_log::Format::default(),
            model: Model::Loop,
            threads: 64,
            workers: 1,
            privileges: Privileges::default(),
            proxy: None,
            clients: ClientLimits {
                connections_per_ip: Some(ConnectionCap::default_for_the_network()),
                ..ClientLimits::default()
            },
            site_certs: Vec::new(),
            reload_from: None,
            config_file: None,
            pid_file: None,
        }
    }
}

impl Config {
    /// The sites of a configuration file, compiled, as `--check-config`
    /// prints them.
    pub fn describe_sites(&self) -> Option<String> {
        self.app.sites.as_ref().map(|sites| sites.describe())
    }

    /// Each site's name and its own access log (`access-log` in its
    /// `[[site]]` table), as the configuration was loaded at start.
    pub(crate) fn site_access_logs(&self) -> Vec<(String, PathBuf)> {
        self.app
            .sites
            .as_ref()
            .map(|sites| sites.access_logs())
            .unwrap_or_default()
    }

    /// Whether any access log is kept (the main one, or a site's): the
    /// sessions then keep what their lines need.
    pub(crate) fn keeps_access_log(&self) -> bool {
        self.access_log.is_some() || !self.site_access_logs().is_empty()
    }
}

/// Who may send a PROXY header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    pub trusted: Vec<Cidr>,
}

impl ProxyConfig {
    pub(crate) fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted.iter().any(|range| range.contains(peer))
    }

    /// Whether a connection from `peer` may stay (said in the log if not).
    pub(crate) fn admits(&self, peer: SocketAddr) -> bool {
        let trusted = self.trusts(peer.ip());
        if !trusted {
            log::debug!("{peer} is not a trusted proxy (--trusted-proxy): closed");
        }
        trusted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trusted_peers_may_speak_it() {
        let config = ProxyConfig {
            trusted: vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()],
        };
        assert!(config.trusts("10.1.2.3".parse().unwrap()));
        assert!(config.trusts("::1".parse().unwrap()));
        assert!(!config.trusts("127.0.0.1".parse().unwrap()));
    }
}
