//! What the server asks of the host system at start: enough descriptors.
//! Each module owns one of these dealings with the operating system, so
//! that the drivers only ever see listening sockets and a ready process.

mod descriptors;

pub(crate) use descriptors::{Needs, raise_limit};
