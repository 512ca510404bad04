//! The sans-I/O HTTP/1.1 core: bytes in, events out; responses in, bytes (and file
//! ranges) out. Nothing here touches a socket, a clock or a thread.
//!
//! Read [`conn`] first: it owns the connection state machine and says how a driver
//! uses it. The other modules each own one decision it relies on:
//!
//! - [`head`]: where a request head ends and whether it parses (over `httparse`);
//! - [`target`]: the request-target's path and query, and what a Host may be;
//! - [`framing`]: what the head says about the body and the connection;
//! - [`body`]: decoding Content-Length and chunked bodies incrementally;
//! - [`response`] and [`output`]: what the application answers, and the write
//!   queue of memory and file segments it becomes;
//! - [`buffer`], [`date`], [`limits`], [`status`], [`tokens`]: the supporting cast.

pub mod body;
pub mod buffer;
pub mod conn;
pub mod date;
pub mod error;
pub mod framing;
#[cfg(any(test, feature = "harness"))]
pub mod harness;
pub mod head;
pub mod limits;
pub mod output;
pub mod request;
pub mod response;
pub mod status;
pub(crate) mod target;
pub mod tokens;

pub use conn::{Connection, Event, ExchangeRecord, Now, Settings, State};
pub use error::ProtocolError;
pub use limits::{Limits, Timeouts};
pub use request::{Method, RequestHead, Version};
pub use response::{Body, Chunk, Response};
pub use status::StatusCode;
