//! Knowing at once when a cached file changes.
//!
//! On Linux, inotify, on the directories the cached files are reached
//! through ([`inotify`]). Elsewhere (macOS and the BSDs) nothing is watched:
//! the cache trusts an entry for a second and then looks again ([`timed`],
//! where the choice against kqueue's vnode events is argued).
//!
//! Each cache entry depends on some (directory, name) pairs: every component
//! of the URL path under ROOT (a rename or a retargeted symlink anywhere on the
//! way changes what the path means), and the real file, with its precompressed
//! sidecars (one appearing changes which representation is chosen): those are
//! not registered apart, since an event for `a.txt.gz` is taken for `a.txt`
//! too, which keeps a file's registrations to one name. The
//! directories are watched, once each, for anything that changes a name or
//! what it names (writes, attributes, creation, deletion, renames both ways);
//! an event for a name drops the entries that depend on it, and an event about
//! a directory itself (deleted, moved, unmounted) drops all that depend on it.
//!
//! Changes are read before the bytes of every request are (the session asks,
//! one `read` that says `EAGAIN` when nothing changed), so a change made before
//! a request was sent is seen by that request. The descriptor is also a
//! readiness source like a socket: the event loop registers it in its own poll
//! and drains it when it turns readable, so what a change made stale (a
//! deleted file's descriptor, its bytes) goes at once, not at the next request.
//!
//! Where a watch cannot be had (the per-user limit,
//! `fs.inotify.max_user_watches`, is reached; or inotify is missing), the
//! entry is trusted for a second only, as on the systems without inotify,
//! and the log says so once.
//! inotify sees changes made through this kernel: a file changed by another
//! machine on a network file system is not seen until it is revalidated.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[cfg(target_os = "linux")]
mod inotify;
#[cfg(target_os = "linux")]
pub(super) use self::inotify::Watch;

#[cfg(not(target_os = "linux"))]
mod timed;
#[cfg(not(target_os = "linux"))]
pub(super) use timed::Watch;

/// What a file at `real`, reached by `literal` (ROOT joined with the decoded
/// URL path, symlinks unresolved), depends on: each component of `literal`
/// under `root`, and the real file's name in its directory (which stands for
/// its sidecars' too).
pub(super) fn dependencies(root: &Path, literal: &Path, real: &Path) -> Vec<(PathBuf, OsString)> {
    let mut on = Vec::new();
    if let Ok(relative) = literal.strip_prefix(root) {
        let mut dir = root.to_path_buf();
        for component in relative.components() {
            let name = component.as_os_str().to_owned();
            on.push((dir.clone(), name.clone()));
            dir.push(name);
        }
    }
    if let (Some(dir), Some(name)) = (real.parent(), real.file_name()) {
        on.push((dir.to_path_buf(), name.to_owned()));
    }
    on.sort();
    on.dedup();
    on
}
