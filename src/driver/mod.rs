//! Drivers: what moves bytes between sockets and sessions. Each one holds the
//! same [`Session`](crate::session::Session) per connection (core and
//! application behind a few verbs); they differ only in how they wait for
//! sockets to be ready. Two wings:
//!
//! - [`event_loop`]: one mio readiness loop (the point of oneloop); with
//!   `--workers N`, N independent loops, each with its own `SO_REUSEPORT`
//!   listeners, sharing nothing, the way nginx runs worker processes.
//! - [`threaded`]: a thread per connection, or a fixed pool, over blocking
//!   sockets, for comparison.
//!
//! What both wings share: where they listen ([`ports`]: bound here or passed
//! by systemd), the listening sockets and the accept loop ([`listener`]), what
//! they say when accepting must wait ([`pressure`]), who the client is behind
//! a load balancer ([`proxy_protocol`]), writing a session's output ([`transmit`], [`sendfile`]),
//! TLS as a layer of the byte stream ([`tls`]), the clock ([`clock`]), what
//! each signal means and the graceful shutdown ([`signals`]), and the panic
//! boundary ([`contain`]).

mod clock;
pub(crate) mod contain;
mod event_loop;
mod listener;
mod ports;
mod pressure;
mod proxy_protocol;
mod sendfile;
mod signals;
mod threaded;
mod tls;
mod transmit;

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::access_log::AccessLog;
use crate::app::{App, Gate, Scope};
use crate::clients::Clients;
use crate::config::{Config, Model};
use crate::logging;
use crate::session::Service;
use crate::stats::{DriverKind, DriverStats, Registry};
use crate::system::{self, Jail};
use event_loop::{EventLoop, LoopConfig};
use ports::Listening;
pub use proxy_protocol::ProxyConfig;
use signals::ProcessReload;
use threaded::{Shared, ThreadedConfig};
use tls::TlsConfig;

/// What a listener serves: the service its connections' sessions share, and
/// the TLS it speaks, if any.
#[derive(Clone)]
struct Endpoint {
    service: Arc<Service>,
    tls: Option<Arc<TlsConfig>>,
}

/// Binds the configured addresses, says where it listens, and serves until a
/// graceful shutdown completes.
pub fn run(mut config: Config) -> io::Result<()> {
    let mut tls = match &config.tls {
        Some(files) => Some(TlsConfig::load(&files.cert, &files.key).map_err(io::Error::other)?),
        None => None,
    };
    let workers = match config.model {
        Model::Loop => config.workers.max(1),
        Model::Threads | Model::Pool => 1,
    };
    system::raise_limit(system::Needs {
        max_connections: config.max_connections,
        cached_files_per_loop: config.app.site.as_ref().map_or(0, |s| s.cache.open_files),
        loops: workers,
    });
    let listening = Listening::open(&config, tls.is_some(), workers)?;
    system::connect_notify();
    let mut access_log = config
        .access_log
        .as_ref()
        .map(AccessLog::open)
        .transpose()?;
    // Everything that needed root is open: give it up before the first
    // request. The names the files will have inside a chroot are worked out
    // first, while the paths they are known by still lead to them.
    if let Some(jail) = config.privileges.jail.clone() {
        rename_inside(&jail, &mut config, tls.as_mut(), access_log.as_mut());
    }
    if let Some(account) = &config.privileges.account {
        hand_logs_to(account.uid, access_log.as_mut());
    }
    config
        .privileges
        .give_up(listening.is_public())
        .map_err(io::Error::other)?;
    let tls = tls.map(Arc::new);
    // Said once everything is ready to serve (the loops exist, the log is open).
    let urls = listening.describe();
    let ready = || {
        log::info!("listening on {urls} ({})", describe_model(&config, workers));
        system::notify(&format!("READY=1\nSTATUS=listening on {urls}"));
    };
    let https_port = listening.https_port();
    let listening_is_public = listening.is_public();
    let Listening {
        ports,
        per_loop: mut bound,
        ..
    } = listening;
    // What the status page reads: every driver's counters and every cache's.
    let stats = Registry::new();
    // One table of clients for the whole process: a client's connections
    // count together, whichever loop or thread serves them.
    let clients = config.clients.any().then(|| {
        Clients::new(
            config.clients.clone(),
            config.max_connections,
            stats.refusals(),
        )
    });
    // A driver's endpoints: one application per driver (and so one cache),
    // counting into the driver's counters.
    let endpoints = |driver: &Arc<DriverStats>| -> Vec<Endpoint> {
        ports
            .iter()
            .map(|port| Endpoint {
                service: match port.redirect {
                    true => redirect_service(&config, https_port, driver, &clients),
                    false => service(&config, &stats, driver, &clients),
                },
                tls: tls.clone().filter(|_| port.tls),
            })
            .collect()
    };
    if let Some(gate) = &config.app.auth {
        describe_auth(gate, tls.is_some(), listening_is_public);
    }
    let process = ProcessReload {
        tls: tls.clone(),
        auth: config.app.auth.clone(),
    };
    match config.model {
        Model::Loop => {
            let drivers = || stats.driver(DriverKind::Loop);
            run_loops(
                bound, drivers, endpoints, access_log, process, &config, ready,
            )
        }
        Model::Threads | Model::Pool => {
            let driver = stats.driver(DriverKind::Threads);
            let shared = Arc::new(Shared {
                endpoints: endpoints(&driver),
                stats: driver,
                proxy: config.proxy.clone(),
                registry: Arc::default(),
                access_log: access_log.map(Mutex::new),
            });
            let threaded = ThreadedConfig {
                model: config.model,
                threads: config.threads.max(1),
                max_connections: config.max_connections,
                shutdown_timeout: config.shutdown_timeout,
            };
            let listeners = bound.pop().unwrap_or_default();
            threaded::run(listeners, shared, process, threaded, ready)
        }
    }
}

/// A password check slower than this is worth a warning: every client of the
/// loop waits that long for each uncached login.
const SLOW_PASSWORD_CHECK: Duration = Duration::from_millis(100);

/// Inside a chroot, the server's files go by the names they have there:
/// what it serves (checked at start to be inside), and what it reopens and
/// reloads on a signal (if outside, they keep their old names, and reopening
/// them fails with a message; a warning at start said so).
fn rename_inside(
    jail: &Jail,
    config: &mut Config,
    tls: Option<&mut TlsConfig>,
    access_log: Option<&mut AccessLog>,
) {
    let inside = |path: &Path| jail.inside(path).unwrap_or_else(|| path.to_path_buf());
    if let Some(site) = config.app.site.as_mut() {
        site.root = inside(&site.root);
    }
    if let Some(dir) = config.app.files_dir.as_mut() {
        *dir = inside(dir);
    }
    if let Some(tls) = tls {
        let (cert, key) = tls.paths();
        let renamed = (inside(cert), inside(key));
        tls.rename(renamed.0, renamed.1);
    }
    if let Some(file) = access_log.and_then(AccessLog::file_mut) {
        let renamed = inside(file.path());
        file.rename(renamed);
    }
    if let Some(path) = logging::file_path() {
        logging::rename_file(inside(&path));
    }
    if let Some(gate) = &config.app.auth {
        gate.rename(inside(&gate.path()));
    }
}

/// Before root is given up for `uid`: the log files root owns become the
/// user's, so that a signal can reopen them later (logrotate's `nocreate`
/// leaves their making to the server, and a SIGHUP may come with no rotation
/// at all). A failure costs only the reopening, so it is a warning.
fn hand_logs_to(uid: u32, access_log: Option<&mut AccessLog>) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // already the user: the files are the user's own
    }
    let access = access_log
        .and_then(AccessLog::file_mut)
        .map_or(Ok(()), |file| file.hand_to(uid));
    for handed in [access, logging::hand_file_to(uid)] {
        if let Err(e) = handed {
            log::warn!("cannot give the log to --user, so it cannot be reopened: {e}");
        }
    }
}

/// Says at start what Basic authentication guards and what a password check
/// costs the loop here; warns when passwords would cross the network in clear.
fn describe_auth(gate: &Gate, tls: bool, public: bool) {
    let guarded = match gate.scope() {
        Scope::Everything => "every request",
        Scope::Uploads => "uploads",
    };
    let (cost, hash) = gate.measure_check();
    log::info!(
        "Basic authentication for {guarded}: {} users; one password check takes {:.1} ms here \
         ({hash}), and verified credentials are remembered for 5 minutes",
        gate.users(),
        cost.as_secs_f64() * 1000.0
    );
    if cost > SLOW_PASSWORD_CHECK {
        log::warn!(
            "a password check stalls the loop for {:.0} ms; hashes made by --hash-password take \
             about 20",
            cost.as_secs_f64() * 1000.0
        );
    }
    if public && !tls {
        log::warn!(
            "Basic authentication over plain HTTP beyond loopback: passwords cross the network \
             in clear; serve HTTPS (--tls-cert), or keep oneloop behind a proxy that does"
        );
    }
}

/// The application and the protocol settings every session of one driver
/// shares, counting into `driver`, its clients held to `clients`.
fn service(
    config: &Config,
    stats: &Arc<Registry>,
    driver: &Arc<DriverStats>,
    clients: &Option<Arc<Clients>>,
) -> Arc<Service> {
    Service::limited(
        App::new(&config.app, stats),
        config.http,
        config.access_log.is_some(),
        Arc::clone(driver),
        clients.clone(),
    )
}

/// The redirect listener's: every request answered with a 308 to HTTPS, and no
/// Strict-Transport-Security (RFC 6797 section 7.2: never over plain HTTP).
fn redirect_service(
    config: &Config,
    https_port: u16,
    driver: &Arc<DriverStats>,
    clients: &Option<Arc<Clients>>,
) -> Arc<Service> {
    let mut settings = config.http;
    settings.strict_transport_max_age = None;
    Service::limited(
        App::redirect_to_https(https_port),
        settings,
        config.access_log.is_some(),
        Arc::clone(driver),
        clients.clone(),
    )
}

fn describe_model(config: &Config, workers: usize) -> String {
    match config.model {
        Model::Loop if workers > 1 => format!("{workers} event loops"),
        Model::Loop => "one event loop".to_owned(),
        Model::Threads => "a thread per connection".to_owned(),
        Model::Pool => format!("a pool of {} threads", config.threads.max(1)),
    }
}

/// Runs one loop per worker: the last on this thread, the others on threads
/// of their own. Each has its own application (and so its own caches), shared
/// by its sessions and by nothing else: the loops share nothing.
fn run_loops(
    bound: Vec<Vec<(std::net::TcpListener, usize)>>,
    drivers: impl Fn() -> Arc<DriverStats>,
    endpoints: impl Fn(&Arc<DriverStats>) -> Vec<Endpoint>,
    access_log: Option<AccessLog>,
    process: ProcessReload,
    config: &Config,
    ready: impl FnOnce(),
) -> io::Result<()> {
    // The connection budget is the process's, split evenly: each loop holds its
    // own connections, and the kernel picks the loop a newcomer meets.
    let per_loop = config.max_connections.div_ceil(bound.len());
    let mut loops = Vec::with_capacity(bound.len());
    let mut process = Some(process);
    for worker in bound {
        let loop_config = LoopConfig {
            max_connections: per_loop,
            shutdown_timeout: config.shutdown_timeout,
            // Each loop writes through a descriptor of its own, with no lock.
            access_log: access_log.as_ref().map(AccessLog::try_clone).transpose()?,
            // The first loop does what is done once per process.
            process: process.take(),
            proxy: config.proxy.clone(),
            stats: drivers(),
        };
        loops.push(EventLoop::new(
            worker,
            endpoints(&loop_config.stats),
            loop_config,
        )?);
    }
    let last = loops
        .pop()
        .ok_or_else(|| io::Error::other("no event loop"))?;
    let others: Vec<_> = loops
        .into_iter()
        .enumerate()
        .map(|(n, event_loop)| {
            std::thread::Builder::new()
                .name(format!("loop-{}", n + 1))
                .spawn(move || event_loop.run())
        })
        .collect::<io::Result<_>>()?;
    ready();
    let mut result = last.run();
    for worker in others {
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = result.and(Err(e)),
            Err(_) => result = result.and(Err(io::Error::other("an event loop panicked"))),
        }
    }
    result
}
