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
//! What both wings share: the listening sockets and the accept loop
//! ([`listener`]), writing a session's output ([`transmit`], [`sendfile`]),
//! the clock ([`clock`]), signals and the graceful shutdown ([`shutdown`]), and
//! the panic boundary ([`contain`]).

mod clock;
pub(crate) mod contain;
mod event_loop;
mod listener;
mod sendfile;
mod shutdown;
mod threaded;
mod transmit;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use crate::access_log::AccessLog;
use crate::app::App;
use crate::config::{Config, Model};
use crate::session::Service;
use event_loop::{EventLoop, LoopConfig};
use threaded::{Shared, ThreadedConfig};

/// Binds the configured addresses, says where it listens, and serves until a
/// graceful shutdown completes.
pub fn run(config: Config) -> io::Result<()> {
    let workers = match config.model {
        Model::Loop => config.workers.max(1),
        Model::Threads | Model::Pool => 1,
    };
    let mut listeners = bind_all(&config.bind, config.port, workers)?;
    // Said once everything is ready to serve (the loops exist, the log is open).
    let urls: Vec<String> = listeners
        .first()
        .into_iter()
        .flatten()
        .map(|l| l.local_addr().map(|a| format!("http://{a}")))
        .collect::<io::Result<_>>()?;
    let ready = || {
        log::info!(
            "listening on {} ({})",
            urls.join(" and "),
            describe_model(&config, workers)
        )
    };
    match config.model {
        Model::Loop => run_loops(listeners, &config, ready),
        Model::Threads | Model::Pool => {
            let access_log = config.access_log.as_ref().map(AccessLog::open);
            let shared = Arc::new(Shared {
                service: service(&config),
                registry: Arc::default(),
                access_log: access_log.transpose()?.map(Mutex::new),
            });
            let threaded = ThreadedConfig {
                model: config.model,
                threads: config.threads.max(1),
                max_connections: config.max_connections,
                shutdown_timeout: config.shutdown_timeout,
            };
            let listeners = listeners.pop().unwrap_or_default();
            threaded::run(listeners, shared, threaded, ready)
        }
    }
}

/// The application and the protocol settings every session of one driver
/// shares.
fn service(config: &Config) -> Arc<Service> {
    Service::new(
        App::new(&config.app),
        config.http,
        config.access_log.is_some(),
    )
}

/// For each of `workers` loops, one listener per address; with several
/// workers they share each address through `SO_REUSEPORT`. With port 0 the
/// first address picks the port and every other listener joins it.
fn bind_all(
    addresses: &[IpAddr],
    port: u16,
    workers: usize,
) -> io::Result<Vec<Vec<std::net::TcpListener>>> {
    let options = listener::BindOptions {
        reuse_port: workers > 1,
        // `::` alone takes IPv4 too; beside other addresses it must not.
        v6_only: addresses.len() > 1,
    };
    let mut port = port;
    let mut first_worker = Vec::with_capacity(addresses.len());
    for &ip in addresses {
        let addr = SocketAddr::new(ip, port);
        let bound = listener::bind(addr, options)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        port = bound.local_addr()?.port();
        first_worker.push(bound);
    }
    let shared: Vec<SocketAddr> = first_worker
        .iter()
        .map(std::net::TcpListener::local_addr)
        .collect::<io::Result<_>>()?;
    let mut all = vec![first_worker];
    for _ in 1..workers {
        let worker = shared
            .iter()
            .map(|&addr| listener::bind(addr, options))
            .collect::<io::Result<_>>()?;
        all.push(worker);
    }
    Ok(all)
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
    listeners: Vec<Vec<std::net::TcpListener>>,
    config: &Config,
    ready: impl FnOnce(),
) -> io::Result<()> {
    // The connection budget is the process's, split evenly: each loop holds its
    // own connections, and the kernel picks the loop a newcomer meets.
    let per_loop = config.max_connections.div_ceil(listeners.len());
    let mut loops = Vec::with_capacity(listeners.len());
    for worker in listeners {
        let loop_config = LoopConfig {
            max_connections: per_loop,
            shutdown_timeout: config.shutdown_timeout,
            access_log: config.access_log.clone(),
        };
        loops.push(EventLoop::new(worker, service(config), loop_config)?);
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
