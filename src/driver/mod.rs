//! Drivers: what moves bytes between sockets and sessions. Each one runs the same
//! [`Session`](crate::session::Session) (core and application); they differ only
//! in how they wait for sockets to be ready.
//!
//! - [`event_loop`]: one mio readiness loop (the point of oneloop).

pub mod buffers;
pub mod event_loop;
pub mod listener;
pub mod sendfile;
pub mod timers;
pub mod transmit;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::app::App;
use crate::config::Config;
use event_loop::{EventLoop, LoopConfig};

/// Binds the configured address, says where it listens, and serves until a
/// graceful shutdown completes.
pub fn run(config: Config) -> io::Result<()> {
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = listener::bind(addr, false)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    log::info!("listening on http://{local}");

    let app = Arc::new(App::new(&config.app));
    let loop_config = LoopConfig {
        settings: config.http,
        max_connections: config.max_connections,
        shutdown_timeout: config.shutdown_timeout,
        handle_signals: true,
        access_log: config.access_log.clone(),
    };
    EventLoop::new(listener, app, loop_config)?.run()
}
