//! What the server asks of the host system: enough descriptors, leave to give
//! up root once it holds what needed root (and a keeper of root's files for
//! reloads after that), systemd's sockets and ear, and a
//! password typed without echo. Each module owns one
//! of these dealings with the operating system, so that the drivers only ever
//! see listening sockets and a ready process.

mod descriptors;
pub(crate) mod keeper;
mod privileges;
mod systemd;
mod terminal;
mod usable;

pub(crate) use descriptors::{Needs, raise_limit};
pub(crate) use privileges::{Account, Jail, Privileges};
pub(crate) use systemd::{PassedSocket, connect_notify, notify, passed_sockets};
pub(crate) use terminal::read_password;
pub(crate) use usable::{needs as folders_needed, warn_unusable, who};
