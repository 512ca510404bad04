//! oneloop: an HTTP/1.1 server whose whole concurrency is one readiness loop.
//!
//! Two halves meet at one narrow seam:
//!
//! - **The sans-I/O protocol core** (`http`): bytes in, events out; responses
//!   in, bytes and file ranges out. It never touches a socket, a clock or a
//!   thread. Start at `http/conn.rs`, the state machine.
//! - **Thin drivers** (`driver`): what moves bytes between sockets and
//!   sessions. Start at `driver/event_loop/mod.rs`, the mio loop.
//!
//! Between them, the **application** (`app`) maps a parsed request to a reply,
//! and the **session** (`session`) joins one connection's core to it: it is
//! the one thing a driver holds per connection. Startup (`server`) does
//! everything before the first turn (`pid_file` among it). The logs (`access_log`, [`logging`],
//! `log_file`), the command line (`cli`), the configuration (`config`), the
//! per-client limits (`clients`), the counters (`stats`) and calendar dates
//! (`timefmt`) are the supporting cast. docs/architecture.md suggests a
//! reading order.
//!
//! # Visibility
//!
//! One rule, which the compiler holds the code to (`unreachable_pub`): an
//! item is as visible as its users need and no more. Bare `pub` is the
//! library's surface, what its two outside users touch: the binary (running
//! the server: [`Cli`], [`Config`], [`logging::init`], [`log_panics`],
//! [`run`]) and, with the `harness` feature, the fuzz targets and property
//! tests (`testkit`, which drives the real session and application
//! in-process). Everything else is `pub(crate)` where other modules use it,
//! `pub(super)` where only its parent does, and private otherwise.

#![warn(unreachable_pub)]

mod access_log;
mod app;
mod cidr;
mod cli;
mod clients;
mod config;
mod config_file;
mod driver;
mod h2;
mod http;
mod log_file;
pub mod logging;
mod pid_file;
mod server;
mod session;
mod stats;
mod system;
#[cfg(any(test, feature = "harness"))]
pub mod testkit;
mod timefmt;

// Running the server.
pub use cli::{Cli, CliError};
pub use config::Config;
pub use driver::contain::log_panics;
pub use server::run;
