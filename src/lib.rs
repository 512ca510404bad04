//! oneloop: an HTTP/1.1 server whose whole concurrency is one readiness loop.
//!
//! - [`http`]: the sans-I/O protocol core (bytes in, events out).
//! - [`app`]: the application: router, built-in endpoints, the `/files/` store.

pub mod app;
pub mod http;
