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
//! and the **session** ([`Session`]) joins one connection's core to it: it is
//! the one thing a driver holds per connection. The logs (`access_log`,
//! [`logging`], `log_file`), the command line (`cli`), the configuration
//! (`config`) and calendar dates (`timefmt`) are the supporting cast. docs/architecture.md suggests a reading
//! order.
//!
//! What is public is what may be touched from outside:
//!
//! - running the server: [`Cli`], [`Config`], [`logging::init`], [`run`];
//! - the driver's interface: [`Session`] and its verbs, over a [`Service`],
//!   with time as [`Now`] and output as [`Front`];
//! - the application's interface: [`App`] answers a [`RequestHead`] with a
//!   [`Reply`].
//!
//! `testkit` (feature `harness`, and the tests) drives the product in-process
//! for the fuzz targets and the property tests.

mod access_log;
mod app;
mod cidr;
mod cli;
mod clients;
mod config;
mod driver;
mod http;
mod log_file;
pub mod logging;
mod server;
mod session;
pub mod stats;
mod system;
#[cfg(any(test, feature = "harness"))]
pub mod testkit;
mod timefmt;

// Running the server.
pub use cli::Cli;
pub use config::{Config, LogTarget, Model};
pub use driver::contain::log_panics;
pub use server::run;

// The driver's interface.
pub use http::{Front, Limits, Now, Settings, Timeouts};
pub use session::{Service, Session};

// The application's interface.
pub use app::{App, AppConfig, BodySink, Reply};
pub use http::{Body, Chunk, Method, RequestHead, Response, StatusCode, Version};
