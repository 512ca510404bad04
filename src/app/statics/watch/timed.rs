//! The watch where there is no inotify (macOS, FreeBSD and the other BSDs):
//! none. Every cache entry is trusted for a second
//! ([`REVALIDATE_AFTER`](super::super::cache::REVALIDATE_AFTER)) and then
//! revalidated by resolving and `stat`ing its path again, the path Linux takes
//! too when its watches run out, and what nginx's `open_file_cache_valid`
//! does on every system.
//!
//! Why not kqueue's `EVFILT_VNODE`, the one way these kernels tell of a
//! file's changes:
//! - it watches an open descriptor, not a name: one descriptor held per
//!   directory on every cached path and per cached file, beside the
//!   connections' (macOS starts a process with a soft limit of 256, and a
//!   cache of a thousand files would need a thousand more);
//! - a directory's `NOTE_WRITE` says that some name in it changed, not which:
//!   an upload landing in a folder, or a log rotating beside the site, would
//!   drop every entry under that folder, and narrowing it down is a `stat`
//!   of every name, the revalidation this does anyway, once a second at most;
//! - the only machines here to test on are Linux ones: on the BSDs and macOS
//!   the server is type-checked, not run, and code that decides whether a
//!   stale file is served should not be the one part that is never run.
//!
//! A second of staleness after a deploy is what a static server on these
//! systems has always had; the cost is a `stat` per path per second.

use std::convert::Infallible;
use std::ffi::OsString;
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::Once;

/// A watch that cannot be had: no value of this type exists, so every
/// method below is unreachable, and the cache takes its unwatched path.
pub(in crate::app::statics) struct Watch<K> {
    never: Infallible,
    keys: PhantomData<K>,
}

impl<K> Watch<K> {
    /// None, and the log says once (at info: it is this system's way, not a
    /// fault) how the cache keeps fresh instead.
    pub(in crate::app::statics) fn new(_sidecars: &'static [&'static str]) -> Option<Watch<K>> {
        static SAID: Once = Once::new();
        SAID.call_once(|| {
            log::info!("no inotify on this system: cached files are looked at again after a second")
        });
        None
    }

    pub(in crate::app::statics) fn fd(&self) -> RawFd {
        match self.never {}
    }

    pub(in crate::app::statics) fn depend(
        &mut self,
        _key: &K,
        _on: &[(PathBuf, OsString)],
    ) -> bool {
        match self.never {}
    }

    pub(in crate::app::statics) fn changes(
        &mut self,
        _stale: impl FnMut(K),
        _everything: impl FnMut(),
    ) {
        match self.never {}
    }

    pub(in crate::app::statics) fn crowded(&self) -> bool {
        match self.never {}
    }

    pub(in crate::app::statics) fn retain(&mut self, _keep: impl Fn(&K) -> bool) {
        match self.never {}
    }
}
