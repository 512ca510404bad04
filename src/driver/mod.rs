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
//! What both wings share: what a listener serves ([`endpoint`]), the one
//! accept loop ([`listener`]), what they say when accepting must wait
//! ([`pressure`]), who the client is behind a load balancer
//! ([`proxy_protocol`]), the byte stream of a connection, plain or TLS, and
//! the only place that tells a session what moved ([`transport`], over
//! [`transmit`], [`sendfile`] and [`tls`]), the clock ([`clock`]), what each
//! signal means and the graceful shutdown ([`signals`]), and the panic
//! boundary ([`contain`]).
//!
//! Everything before the first turn (certificates, listeners, logs, giving up
//! root) is startup's, in `src/server/`.

mod clock;
pub(crate) mod contain;
mod endpoint;
mod event_loop;
mod listener;
mod pressure;
mod proxy_protocol;
mod sendfile;
mod signals;
mod threaded;
mod tls;
mod transmit;
mod transport;

pub(crate) use endpoint::{Endpoint, Endpoints};
pub(crate) use event_loop::run as run_loops;
pub(crate) use signals::ProcessReload;
pub(crate) use threaded::run as run_threads;
pub(crate) use tls::TlsConfig;
