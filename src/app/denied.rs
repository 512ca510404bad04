//! Permission errors, logged once per path.
//!
//! A file the server may not read (a `0600` file owned by root, a `0700`
//! folder, once `--user` has dropped root) answers `403` or `404`, and the
//! client is told no more. The operator needs more: which path, and that it
//! is the system refusing, not a missing file. But a page that links to such
//! a file is asked for it on every visit, so one warning per path, not per
//! request.
//!
//! The memory is bounded whatever clients spell: what is remembered is a
//! 64-bit hash of each path (a collision only costs a warning), in a set of
//! at most [`MAX_PATHS`]; past that, one line says that further permission
//! errors go unlogged. The lock is taken only on a permission error, never
//! on a request that is served.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::path::Path;
use std::sync::{LazyLock, Mutex};

/// Paths remembered before further permission errors are no longer logged.
pub(crate) const MAX_PATHS: usize = 1024;

/// The process's memory of the paths already warned about.
static SEEN: LazyLock<Mutex<Once>> = LazyLock::new(|| Mutex::new(Once::new(MAX_PATHS)));

/// Notes that reaching `path` failed with `error`: a warning naming both the
/// first time a permission error (`EACCES`, `EPERM`) is met for this path.
/// Any other error (a missing file) is the client's business, and says
/// nothing.
pub(crate) fn note(path: &Path, error: &io::Error) {
    if !is_permission(error) {
        return;
    }
    let verdict = SEEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .first_time(path);
    match verdict {
        // `{:?}`: the path holds what a client spelled (decoded), and a
        // newline in it must not start a line of its own in the log.
        Verdict::New => log::warn!("{path:?}: {error} (the server runs as {})", who()),
        Verdict::Full => log::warn!(
            "{MAX_PATHS} paths refused by permissions so far: \
             further permission errors are not logged"
        ),
        Verdict::Seen | Verdict::Silent => {}
    }
}

/// Whether `error` is the system refusing us (not something missing).
fn is_permission(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EACCES | libc::EPERM))
        || error.kind() == io::ErrorKind::PermissionDenied
}

/// The account the process runs as, by uid (the name is not looked up: that
/// would read /etc/passwd, perhaps outside a chroot).
fn who() -> String {
    // SAFETY: geteuid has no preconditions.
    format!("uid {}", unsafe { libc::geteuid() })
}

/// What [`Once::first_time`] says of a path.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Not seen before: log it.
    New,
    /// Already logged.
    Seen,
    /// The set has just filled: say that nothing more will be logged.
    Full,
    /// Full before: say nothing.
    Silent,
}

/// A bounded memory of paths, by hash.
struct Once {
    hasher: RandomState,
    seen: HashSet<u64>,
    capacity: usize,
    full: bool,
}

impl Once {
    fn new(capacity: usize) -> Once {
        Once {
            hasher: RandomState::new(),
            seen: HashSet::new(),
            capacity,
            full: false,
        }
    }

    fn first_time(&mut self, path: &Path) -> Verdict {
        let hash = self.hasher.hash_one(path);
        if self.seen.contains(&hash) {
            return Verdict::Seen;
        }
        if self.seen.len() < self.capacity {
            self.seen.insert(hash);
            return Verdict::New;
        }
        match std::mem::replace(&mut self.full, true) {
            false => Verdict::Full,
            true => Verdict::Silent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_once_then_one_line_when_full() {
        let mut once = Once::new(2);
        let (a, b, c) = (Path::new("/a"), Path::new("/b"), Path::new("/c"));
        assert_eq!(once.first_time(a), Verdict::New);
        assert_eq!(once.first_time(a), Verdict::Seen);
        assert_eq!(once.first_time(b), Verdict::New);
        assert_eq!(once.first_time(c), Verdict::Full);
        assert_eq!(once.first_time(Path::new("/d")), Verdict::Silent);
        assert_eq!(once.first_time(b), Verdict::Seen, "still remembered");
        assert_eq!(once.seen.len(), 2, "bounded");
    }

    #[test]
    fn only_permission_errors_count() {
        assert!(is_permission(&io::Error::from_raw_os_error(libc::EACCES)));
        assert!(is_permission(&io::Error::from_raw_os_error(libc::EPERM)));
        assert!(!is_permission(&io::Error::from_raw_os_error(libc::ENOENT)));
        assert!(!is_permission(&io::Error::from_raw_os_error(libc::ELOOP)));
    }
}
