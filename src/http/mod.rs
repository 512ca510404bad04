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
//! - [`buffer`], [`limits`], [`status`], [`tokens`]: the supporting cast.

mod body;
mod buffer;
mod conn;
mod error;
mod framing;
#[cfg(test)]
mod harness;
mod head;
mod limits;
mod output;
mod request;
mod response;
mod status;
mod target;
mod tokens;

// What the crate root makes public (the driver's and the application's
// interfaces).
pub(crate) use conn::{Now, Settings};
#[cfg(any(test, feature = "harness"))]
pub use limits::Limits;
#[cfg(not(any(test, feature = "harness")))]
pub(crate) use limits::Limits;
pub(crate) use output::Front;
pub(crate) use request::{Method, RequestHead, Version};
pub(crate) use response::Fields;
pub(crate) use response::{Body, Chunk, Response};
pub(crate) use status::StatusCode;

// What the rest of the crate works with (the HTTP/2 core among it, which
// shares the input buffer, the write queue and the request parser).
pub(crate) use buffer::{InputBuffer, READ_SIZE};
pub(crate) use conn::State;
pub(crate) use conn::{Connection, Event, Failure};
pub(crate) use error::ProtocolError;
pub(crate) use framing::expectation;
pub(crate) use head::parse as parse_head;
pub(crate) use limits::MAX_HEADERS_CEILING;
pub(crate) use output::Delivered;
pub(crate) use output::WriteQueue;
pub(crate) use tokens::{list_elements, weighted};

// What the fuzz targets feed directly (through `crate::testkit::parsers`).
#[cfg(any(test, feature = "harness"))]
pub(crate) use framing::semantics;
#[cfg(any(test, feature = "harness"))]
pub(crate) use head::HeadScanner;

/// A parsed head from text, for the application's unit tests.
#[cfg(test)]
pub(crate) use request::tests::head as test_head;
