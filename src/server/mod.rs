//! Startup: everything the process does before the first turn of a loop, in
//! the order it does it, each step a function. The drivers (`src/driver/`)
//! take over from [`run`]'s last step and only move bytes.
//!
//! 0. `pid_file::check`: refuse to start if `--pid-file` names a live
//!    process (another server), before anything is bound;
//! 1. [`load_certificate`]: read `--tls-cert` and `--tls-key` (as root, if
//!    started as root: the key is often root's alone);
//! 2. [`raise_descriptor_limit`]: enough descriptors for `--max-connections`;
//! 3. [`listen`]: the sockets systemd passed, or those the flags ask for;
//!    then `--pid-file` is written (removed again when `run` returns);
//! 4. tell systemd's socket we exist (`connect_notify`), before any drop;
//! 5. [`open_access_log`];
//! 6. [`give_up_root`]: fork the keeper of root's files if a reload will
//!    need them ([`start_keeper`]), rename what will be reopened into the
//!    chroot, hand root's log files to the user, chroot, setgid, setuid;
//!    then warn of each folder the user cannot use (`system::warn_unusable`);
//! 7. [`Services`]: the application, its caches and counters, the per-client
//!    limits, for each driver;
//! 8. say what the password gate costs, then hand the listeners, the
//!    services and what the process reloads to the model's driver, which says
//!    `listening on ...` and `READY=1` once its loops exist.
//!
//! The order matters: the certificate and the listeners need root and come
//! first; the files the server reopens later are named as they will be seen
//! from inside a chroot before root goes; nothing after step 6 runs as root.

mod listen;
mod reload;

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::access_log::AccessLog;
use crate::clients::Clients;
use crate::config::{Config, Model};
use crate::driver::{self, Endpoint, Endpoints, ProcessReload, TlsConfig};
use crate::logging;
use crate::pid_file::{self, PidFile};
use crate::session::Service;
use crate::stats::{DriverKind, DriverStats, Registry};
use crate::system::{self, Jail};
use listen::Listening;

/// Binds the configured addresses, gives up root, says where it listens, and
/// serves until a graceful shutdown completes.
pub fn run(mut config: Config) -> io::Result<()> {
    if let Some(path) = &config.pid_file {
        pid_file::check(path)?;
    }
    let mut tls = load_certificate(&config)?;
    let loops = loops(&config);
    raise_descriptor_limit(&config, loops);
    let listening = listen(&config, tls.is_some(), loops)?;
    // Held to the end of `run`: dropping it removes the file.
    let mut pid_file = config.pid_file.as_deref().map(PidFile::write).transpose()?;
    if let (Some(jail), Some(file)) = (&config.privileges.jail, pid_file.as_mut())
        && let Some(inside) = config.pid_file.as_deref().and_then(|p| jail.inside(p))
    {
        file.rename(inside);
    }
    system::connect_notify();
    let mut access_log = open_access_log(&config)?;
    let folders = system::folders_needed(&config);
    give_up_root(
        &mut config,
        tls.as_mut(),
        access_log.as_mut(),
        listening.is_public(),
    )?;
    system::warn_unusable(&folders, &system::who(&config));
    let tls = tls.map(Arc::new);
    if let Some(gate) = &config.app.auth {
        gate.describe(tls.is_some(), listening.is_public());
    }
    let urls = listening.describe();
    let model = describe_model(&config, loops);
    let ready = move || {
        log::info!("listening on {urls} ({model})");
        system::notify(&format!("READY=1\nSTATUS=listening on {urls}"));
    };
    let services = Services::new(&config, &listening, tls.clone());
    let process = ProcessReload {
        config: reload::of(&config, tls.clone()),
        tls,
        auth: config.app.auth.clone(),
    };
    let Listening { per_loop, .. } = listening;
    match config.model {
        Model::Loop => driver::run_loops(per_loop, &services, access_log, process, &config, ready),
        Model::Threads | Model::Pool => {
            driver::run_threads(per_loop, &services, access_log, process, &config, ready)
        }
    }
}

/// How many event loops run: `--workers` for the loop model, else one
/// acceptor.
fn loops(config: &Config) -> usize {
    match config.model {
        Model::Loop => config.workers.max(1),
        Model::Threads | Model::Pool => 1,
    }
}

/// Step 1: the certificate and its key, read while the process may still be
/// root.
fn load_certificate(config: &Config) -> io::Result<Option<TlsConfig>> {
    if config.tls.is_none() && config.site_certs.is_empty() {
        return Ok(None);
    }
    let sites = config.app.sites.clone();
    TlsConfig::load(
        config.tls.as_ref(),
        &config.site_certs,
        sites,
        config.http.http2,
    )
    .map(Some)
    .map_err(io::Error::other)
}

/// Step 2: the soft descriptor limit raised, with a warning when
/// `--max-connections` cannot fit even so.
fn raise_descriptor_limit(config: &Config, loops: usize) {
    system::raise_limit(system::Needs {
        max_connections: config.max_connections,
        cached_files_per_loop: config.app.site.as_ref().map_or(0, |s| s.cache.open_files),
        loops,
    });
}

/// Step 3: the listeners, one set per loop.
fn listen(config: &Config, tls: bool, loops: usize) -> io::Result<Listening> {
    Listening::open(config, tls, loops)
}

/// Step 5: the access log, opened while the process may still be root.
fn open_access_log(config: &Config) -> io::Result<Option<AccessLog>> {
    AccessLog::for_config(config)
}

/// Step 6: everything that needed root is open, so root goes. The names the
/// files will have inside a chroot are worked out first, while the paths
/// they are known by still lead to them, and the log files root made are
/// handed to the user so that a signal can reopen them.
fn give_up_root(
    config: &mut Config,
    tls: Option<&mut TlsConfig>,
    access_log: Option<&mut AccessLog>,
    public: bool,
) -> io::Result<()> {
    let mut access_log = access_log;
    start_keeper(config, tls.as_deref());
    if let Some(jail) = config.privileges.jail.clone() {
        rename_inside(&jail, config, tls, access_log.as_deref_mut());
    }
    if let Some(account) = &config.privileges.account {
        hand_logs_to(account.uid, access_log);
    }
    config.privileges.give_up(public).map_err(io::Error::other)
}

/// Before root goes, if what a reload reads may be root's alone (a key, the
/// configuration file, the password file): the keeper, a child that stays
/// root to read those files again on a SIGHUP (`system::keeper`).
fn start_keeper(config: &Config, tls: Option<&TlsConfig>) {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let giving_up = config.privileges.account.is_some() || config.privileges.jail.is_some();
    let files = reloaded_files(config, tls);
    if !root || !giving_up || (files.is_empty() && config.config_file.is_none()) {
        return;
    }
    // Worked out now, while the paths still lead where they did at start.
    let jail_names = config.privileges.jail.as_ref().map(|jail| {
        files
            .iter()
            .chain(&config.config_file)
            .filter_map(|file| Some((file.clone(), jail.inside(file)?)))
            .collect()
    });
    let command_line = config.reload_from.clone();
    let named_by_config = Box::new(move || {
        let cli = crate::cli::Cli::from_command_line(command_line.clone()?).ok()?;
        let fresh = cli.into_config().ok()?;
        Some(reloaded_files(&fresh, None))
    });
    let allowed = system::keeper::Allowed {
        files,
        config: config.config_file.clone(),
        named_by_config,
        jail_names,
    };
    match system::keeper::start(allowed) {
        Ok(pid) => log::info!(
            "root's files (certificates, keys, configuration, passwords) are read again on \
             SIGHUP by a keeper process that stays root for that alone (pid {pid})"
        ),
        Err(e) => log::warn!(
            "cannot start the keeper of root's files ({e}): once root is given up, a SIGHUP \
             cannot read a key or file that only root may read; a restart will"
        ),
    }
}

/// The files a reload reads: the certificates and keys (those `tls` loaded,
/// or the configuration's), and the password files (`--auth-file`, and the
/// sites' and their rules').
fn reloaded_files(config: &Config, tls: Option<&TlsConfig>) -> Vec<std::path::PathBuf> {
    let default = tls.and_then(TlsConfig::paths).or_else(|| {
        let files = config.tls.as_ref()?;
        Some((files.cert.clone(), files.key.clone()))
    });
    let mut files: Vec<_> = default.into_iter().flat_map(|(c, k)| [c, k]).collect();
    for site in &config.site_certs {
        files.extend([site.cert.clone(), site.key.clone()]);
    }
    files.extend(config.app.auth.as_ref().map(|gate| gate.path()));
    if let Some(sites) = &config.app.sites {
        files.extend(sites.password_files());
    }
    files
}

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
    // With a keeper, the files a reload reads keep the names they had at
    // start: the keeper reads them by those, outside the chroot, and knows
    // the names inside it of those that are inside (`start_keeper`).
    let kept = system::keeper::running();
    if let Some(tls) = tls
        && let Some((cert, key)) = tls.paths()
        && !kept
    {
        tls.rename(inside(&cert), inside(&key));
    }
    for file in access_log.into_iter().flat_map(AccessLog::files_mut) {
        let renamed = inside(file.path());
        file.rename(renamed);
    }
    if let Some(path) = logging::file_path() {
        logging::rename_file(inside(&path));
    }
    if let Some(gate) = &config.app.auth
        && !kept
    {
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
    let files = access_log.into_iter().flat_map(AccessLog::files_mut);
    let access: Vec<_> = files.map(|file| file.hand_to(uid)).collect();
    for handed in access.into_iter().chain([logging::hand_file_to(uid)]) {
        if let Err(e) = handed {
            log::warn!("cannot give the log to --user, so it cannot be reopened: {e}");
        }
    }
}

fn describe_model(config: &Config, loops: usize) -> String {
    match config.model {
        Model::Loop if loops > 1 => format!("{loops} event loops"),
        Model::Loop => "one event loop".to_owned(),
        Model::Threads => "a thread per connection".to_owned(),
        Model::Pool => format!("a pool of {} threads", config.threads.max(1)),
    }
}

/// Step 7: what each driver's sessions share, made for each driver as it is
/// started: one application (and so one set of caches) per driver, counting
/// into the driver's own counters and the process's registry, with the
/// per-client limits of the whole process.
struct Services<'a> {
    config: &'a Config,
    ports: Vec<listen::Port>,
    https_port: u16,
    tls: Option<Arc<TlsConfig>>,
    stats: Arc<Registry>,
    clients: Option<Arc<Clients>>,
}

impl<'a> Services<'a> {
    fn new(config: &'a Config, listening: &Listening, tls: Option<Arc<TlsConfig>>) -> Services<'a> {
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
        Services {
            config,
            ports: listening.ports.clone(),
            https_port: listening.https_port(),
            tls,
            stats,
            clients,
        }
    }

    /// A driver's endpoints, by port: the service its connections' sessions
    /// share (the site, or the redirect to HTTPS) and the TLS they speak.
    fn endpoints(&self, driver: &Arc<DriverStats>) -> Vec<Endpoint> {
        self.ports
            .iter()
            .map(|port| Endpoint {
                service: match port.redirect {
                    true => self.redirect_service(driver),
                    false => self.site_service(driver),
                },
                tls: self.tls.clone().filter(|_| port.tls),
            })
            .collect()
    }

    /// The service of the site's ports.
    fn site_service(&self, driver: &Arc<DriverStats>) -> Arc<Service> {
        let config = self.config;
        Service::limited(
            crate::app::App::new(&config.app, &self.stats),
            config.http,
            config.keeps_access_log(),
            Arc::clone(driver),
            self.clients.clone(),
        )
    }

    /// The redirect listener's: every request answered with a 308 to HTTPS,
    /// and no Strict-Transport-Security (RFC 6797 section 7.2: never over
    /// plain HTTP).
    fn redirect_service(&self, driver: &Arc<DriverStats>) -> Arc<Service> {
        let mut settings = self.config.http;
        settings.strict_transport_max_age = None;
        Service::limited(
            crate::app::App::redirect_to_https(self.https_port),
            settings,
            self.config.keeps_access_log(),
            Arc::clone(driver),
            self.clients.clone(),
        )
    }
}

impl Endpoints for Services<'_> {
    fn for_driver(&self, kind: DriverKind) -> (Arc<DriverStats>, Vec<Endpoint>) {
        let stats = self.stats.driver(kind);
        let endpoints = self.endpoints(&stats);
        (stats, endpoints)
    }
}
