//! What each signal means, and the graceful shutdown, the same for every driver.
//!
//! - SIGTERM or SIGINT begins a graceful shutdown: the driver stops accepting,
//!   idle connections close at once, those in the middle of an exchange finish
//!   it (with `Connection: close`) for up to the grace period, and then the
//!   driver returns. A second one ends it at once.
//! - SIGUSR1 reopens the logs (the access log and `--log-file`): logrotate
//!   renames them, signals, and the next line goes to a new file.
//! - SIGHUP reopens the logs too, and reloads: the TLS certificate and key are
//!   read again (certbot renews them in place) for the connections to come,
//!   and so is the `--auth-file`.
//!
//! The signals arrive through a self-pipe registered with the driver's poll,
//! like any socket: no handler runs our code in signal context.

use std::io;
use std::time::{Duration, Instant};

use std::sync::Arc;

use mio::{Interest, Registry, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook_mio::v1_0::Signals as SignalPipe;

use super::tls::TlsConfig;
use crate::app::Gate;
use crate::logging;
use crate::system;

/// What a signal event asks of the driver.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Signal {
    /// A spurious wake-up: nothing was pending.
    None,
    /// Reopen the log files.
    Reopen,
    /// Reopen the log files, and read the certificate, its key and the
    /// password file again.
    Reload,
    /// Begin a graceful shutdown.
    Begin,
    /// A second shutdown signal: exit now.
    ExitNow,
}

/// What the whole process reloads on SIGHUP and reopens on SIGUSR1, besides
/// each driver's own access log. One driver holds it (the first event loop,
/// or the threaded models' acceptor), so that it is done once however many
/// loops hear the signal.
#[derive(Default)]
pub(crate) struct ProcessReload {
    pub(crate) tls: Option<Arc<TlsConfig>>,
    pub(crate) auth: Option<Arc<Gate>>,
    /// With `--config`: read the file again and serve what it says now.
    pub(crate) config: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl ProcessReload {
    pub(super) fn reopen_logs(&self) {
        logging::reopen();
    }

    pub(super) fn reload(&self) {
        self.reopen_logs();
        if let Some(reread) = &self.config {
            // The file names the certificates; reading it reloads them.
            reread();
        } else if let Some(tls) = &self.tls {
            tls.reload();
        }
        if let Some(gate) = &self.auth {
            gate.reload();
        }
    }
}

pub(super) struct Signals {
    pipe: SignalPipe,
    grace: Duration,
    /// Set when the shutdown begins: the moment its grace period ends.
    deadline: Option<Instant>,
}

impl Signals {
    /// Watches SIGINT, SIGTERM, SIGHUP and SIGUSR1 through `registry`, under
    /// `token`; a graceful shutdown will last at most `grace`.
    pub(super) fn watch(registry: &Registry, token: Token, grace: Duration) -> io::Result<Signals> {
        let mut pipe = SignalPipe::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1])?;
        registry.register(&mut pipe, token, Interest::READABLE)?;
        Ok(Signals {
            pipe,
            grace,
            deadline: None,
        })
    }

    /// Reads the pending signals after their event; `live` connections remain.
    pub(super) fn on_event(&mut self, live: usize, now: Instant) -> Signal {
        let (mut reloads, mut reopens, mut stops) = (0, 0, 0);
        for signal in self.pipe.pending() {
            match signal {
                SIGHUP => reloads += 1,
                SIGUSR1 => reopens += 1,
                _ => stops += 1,
            }
        }
        if stops == 0 {
            if reloads > 0 {
                log::info!("SIGHUP: reopening the logs, reloading");
                return Signal::Reload;
            }
            if reopens > 0 {
                log::info!("SIGUSR1: reopening the logs");
                return Signal::Reopen;
            }
            return Signal::None;
        }
        if self.deadline.is_some() || stops > 1 {
            log::info!("second signal: exiting now");
            return Signal::ExitNow;
        }
        log::info!(
            "shutting down: finishing {live} connections (up to {:?})",
            self.grace
        );
        self.deadline = Some(now + self.grace);
        system::notify("STOPPING=1");
        Signal::Begin
    }

    /// When the grace period ends, once a shutdown has begun.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether a shutdown is over: every connection closed, or the grace
    /// period spent (the driver then drops the `live` ones left).
    pub(super) fn shutdown_is_over(&self, live: usize, now: Instant) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        if live == 0 {
            log::info!("shutdown complete");
            return true;
        }
        if now >= deadline {
            log::info!("shutdown grace period over: dropping {live} connections");
            return true;
        }
        false
    }
}
