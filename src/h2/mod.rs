//! The sans-I/O HTTP/2 core (RFC 9113), beside the HTTP/1.1 one and behind
//! the same [`Session`](crate::session::Session) verbs, so every driver
//! serves it unchanged. Bytes in, events out; responses in, frames (and
//! file ranges) out; nothing here touches a socket, a clock or a thread.
//!
//! Read [`conn`] first: it owns the connection's state and says how frames
//! become events and responses become frames. The other modules each own
//! one decision it relies on:
//!
//! - [`frame`]: what a frame is, and each type's rules (section 6);
//! - [`hpack`]: header compression (RFC 7541), with its bounds;
//! - [`request`]: what a header block must be to be a request (section 8),
//!   and the `RequestHead` it becomes;
//! - [`response`]: what a `Response` becomes on the wire;
//! - [`stream`]: one stream's state, windows and body to send;
//! - [`budget`]: when frames that do nothing become an attack;
//! - [`error`]: the error codes, and which errors end what.

mod budget;
mod conn;
mod error;
mod frame;
mod hpack;
mod request;
mod response;
mod stream;

pub(crate) use conn::{Connection, Event, PREFACE};
// What the product harness (`src/testkit/`) uses: the bound it checks the
// input against, Huffman coding for the clients it plays, and the reading
// of our own response blocks.
#[cfg(any(test, feature = "harness"))]
pub(crate) use conn::input_bound;
#[cfg(any(test, feature = "harness"))]
pub(crate) use hpack::{decode_response_block, huffman_encode};
