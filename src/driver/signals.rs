//! What each signal means, and the graceful shutdown, the same for every driver.
//!
//! - SIGTERM or SIGINT begins a graceful shutdown: the driver stops accepting,
//!   idle connections close at once, those in the middle of an exchange finish
//!   it (with `Connection: close`) for up to the grace period, and then the
//!   driver returns. A second one ends it at once.
//! - SIGHUP reloads: the TLS certificate and key are read again (certbot
//!   renews them in place) for the connections to come.
//!
//! The signals arrive through a self-pipe registered with the driver's poll,
//! like any socket: no handler runs our code in signal context.

use std::io;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals as SignalPipe;

/// What a signal event asks of the driver.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Signal {
    /// A spurious wake-up: nothing was pending.
    None,
    /// Read the TLS certificate and key again.
    Reload,
    /// Begin a graceful shutdown.
    Begin,
    /// A second shutdown signal: exit now.
    ExitNow,
}

pub(super) struct Signals {
    pipe: SignalPipe,
    grace: Duration,
    /// Set when the shutdown begins: the moment its grace period ends.
    deadline: Option<Instant>,
}

impl Signals {
    /// Watches SIGINT, SIGTERM and SIGHUP through `registry`, under `token`;
    /// a graceful shutdown will last at most `grace`.
    pub(super) fn watch(registry: &Registry, token: Token, grace: Duration) -> io::Result<Signals> {
        let mut pipe = SignalPipe::new([SIGINT, SIGTERM, SIGHUP])?;
        registry.register(&mut pipe, token, Interest::READABLE)?;
        Ok(Signals {
            pipe,
            grace,
            deadline: None,
        })
    }

    /// Reads the pending signals after their event; `live` connections remain.
    pub(super) fn on_event(&mut self, live: usize, now: Instant) -> Signal {
        let (mut reloads, mut stops) = (0, 0);
        for signal in self.pipe.pending() {
            if signal == SIGHUP {
                reloads += 1;
            } else {
                stops += 1;
            }
        }
        if stops == 0 {
            if reloads == 0 {
                return Signal::None;
            }
            log::info!("SIGHUP: reloading");
            return Signal::Reload;
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
