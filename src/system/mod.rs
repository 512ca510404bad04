//! What the server asks of the host system at start: enough descriptors, and
//! leave to give up root once it holds what needed root. Each module owns one
//! of these dealings with the operating system, so that the drivers only ever
//! see listening sockets and a ready process.

mod descriptors;
mod privileges;

pub(crate) use descriptors::{Needs, raise_limit};
pub use privileges::{Account, Jail, Privileges};
