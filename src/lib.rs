//! oneloop: an HTTP/1.1 server whose whole concurrency is one readiness loop.
//!
//! Read it top-down:
//!
//! - [`http`]: the sans-I/O protocol core. Bytes in, events out; responses in,
//!   bytes and file ranges out. Start at [`http::conn`], the state machine.
//! - [`app`]: the application. A parsed request in, a response out: built-in
//!   endpoints, the `/files/` store, static files.
//! - [`session`]: the seam where one connection's core meets the application.
//! - [`driver`]: what moves bytes between sockets and sessions. Start at
//!   [`driver::event_loop`], the mio loop.
//! - [`config`] and [`cli`]: every knob, its default, and the command line.
//! - [`access_log`], [`timefmt`]: the Combined Log Format and the dates it needs.
//! - `testkit` (feature `harness`): the product driven in-process, for the
//!   fuzz targets and the property tests.

pub mod access_log;
pub mod app;
pub mod cli;
pub mod config;
pub mod driver;
pub mod http;
pub mod session;
#[cfg(any(test, feature = "harness"))]
pub mod testkit;
pub mod timefmt;
