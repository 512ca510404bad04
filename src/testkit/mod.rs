//! The product, driven in-process: what the fuzz targets and the property tests
//! run (feature `harness`; the unit tests have it anyway).
//!
//! Not a stand-in. A [`FixtureSite`] is a real temporary ROOT with the files a
//! real site has (UTF-8 and space names, directories with and without an index,
//! precompressed sidecars, a file too large for the cache, symlinks in and out,
//! a dotfile) and a `/files/` store of its own, served by the real [`App`] with
//! listings on. [`wire`] drives one real `Session` over it, the way a driver
//! does, with a fake clock, and checks the memory bounds after every step.
//! [`conversation`] builds structured requests from arbitrary bytes, for
//! libFuzzer and proptest alike; [`h2_conversation`] says them in HTTP/2,
//! framed every way a client may, among the connection's other frames;
//! [`answers`] reads either protocol's answer back, to compare them.
//!
//! [`App`]: crate::app::App

pub mod answers;
pub mod conversation;
pub mod h2_conversation;
pub mod parsers;
mod site;
pub mod wire;

pub use site::FixtureSite;
pub use wire::{Transcript, assert_split_invariant, seeded_cuts};
