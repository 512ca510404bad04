//! What the static site remembers between requests: the answer to "what does
//! this URL path resolve to", with the file's bytes (small files) or its open
//! descriptor (larger ones), least-recently-used out.
//!
//! An entry holds everything a request for a URL path needed: how the path
//! resolved, which representation was chosen (identity or a precompressed
//! sidecar), its validators, and its content. A hit costs no look at the file
//! (a large file still costs its `sendfile`): the entry is dropped when inotify
//! says anything it depends on changed ([`watch`](super::watch)), and the
//! changes are taken in before every read of a request, so an edit is served
//! from the next request on. Where no watch could be had, an
//! entry is trusted for [`REVALIDATE_AFTER`] and then revalidated by resolving
//! the path again and comparing the file's identity (device, inode, size,
//! modification time to the nanosecond): unchanged, small files keep their
//! bytes; changed, everything is read again (nginx's `open_file_cache_valid
//! 1s`).
//!
//! Two bounds: the bytes held for small files, and the descriptors held open
//! for large ones (each is one of the process's file descriptors). The cache is
//! shared by every connection of a loop (and by every thread in the threaded
//! models), behind a mutex that the single loop never contends.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Representation;
use super::watch::Watch;
use crate::app::encoding::Codings;
use crate::app::lru::{Lru, lock};
use crate::stats::CacheStats;

/// How long a cached answer nothing watches is trusted without looking at the
/// file system.
pub(super) const REVALIDATE_AFTER: Duration = Duration::from_secs(1);

/// How much the cache may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// All cached bytes together; 0 keeps no file in memory.
    pub total_bytes: usize,
    /// Largest file kept in memory. Larger files go out with sendfile.
    pub file_bytes: usize,
    /// Open descriptors kept for larger files; 0 opens them for every request.
    pub open_files: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            total_bytes: 4 << 20,
            file_bytes: 64 << 10,
            open_files: 128,
        }
    }
}

/// What a request for a URL path with a given set of accepted codings found.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Key {
    pub url_path: String,
    /// Which precompressed codings the client accepts: the same path may
    /// resolve to a different file for a different client.
    pub accepted: Codings,
}

/// Where a cached file's bytes are.
#[derive(Clone, Debug)]
pub(super) enum Content {
    /// A small file, read into memory.
    Bytes(Arc<[u8]>),
    /// A larger file, kept open (sendfile takes an offset, so one descriptor
    /// serves any number of responses at once).
    Open(Arc<File>),
}

#[derive(Clone, Debug)]
pub(super) struct Cached {
    pub representation: Arc<Representation>,
    pub content: Content,
}

/// The result of a lookup.
pub(super) enum Lookup {
    /// Recent enough to serve as is.
    Fresh(Cached),
    /// Present but due for revalidation.
    Stale(Cached),
    Miss,
}

/// An entry as stored: whether inotify watches what it depends on.
#[derive(Clone, Debug)]
struct Entry {
    cached: Cached,
    watched: bool,
}

pub(super) struct FileCache {
    limits: CacheLimits,
    /// Small files' bytes, weighed in bytes.
    memory: Mutex<Lru<Key, Entry>>,
    /// Larger files' descriptors, weighed one each.
    open: Mutex<Lru<Key, Entry>>,
    /// The directories the entries depend on, watched; `None` without inotify.
    watch: Option<Mutex<Watch<Key>>>,
    /// Counts the batches of changes applied: an entry read while one was
    /// applied by another thread is not stored (it may be what was replaced).
    generation: AtomicU64,
    /// Hits, misses and what is held, for the status page.
    stats: Arc<CacheStats>,
}

/// What an entry about to be read depends on, registered before it is read:
/// a change from then on is heard of.
pub(super) struct Dependency {
    watched: bool,
    generation: u64,
}

impl FileCache {
    pub(super) fn new(limits: CacheLimits, stats: Arc<CacheStats>) -> FileCache {
        FileCache {
            limits,
            memory: Mutex::new(Lru::new(limits.total_bytes)),
            open: Mutex::new(Lru::new(limits.open_files)),
            watch: Watch::new().map(Mutex::new),
            generation: AtomicU64::new(0),
            stats,
        }
    }

    /// The descriptor that turns readable when a change waits to be applied.
    pub(super) fn watch_fd(&self) -> Option<RawFd> {
        Some(lock(self.watch.as_ref()?).fd())
    }

    /// Drops the entries whose files changed. Called before every request is
    /// read (by the session) and whenever the watch is readable (by the loop).
    pub(super) fn apply_changes(&self) {
        let Some(watch) = self.watch.as_ref() else {
            return;
        };
        // Held until the entries are gone: another thread sharing this cache
        // (the threaded models) that looks at the same moment finds nothing
        // to read, and must then wait here rather than serve what this one is
        // about to drop.
        let mut watch = lock(watch);
        let mut stale = Vec::new();
        let mut everything = false;
        watch.changes(|key| stale.push(key), || everything = true);
        if stale.is_empty() && !everything {
            return;
        }
        self.generation.fetch_add(1, Ordering::Relaxed);
        if everything {
            *lock(&self.memory) = Lru::new(self.limits.total_bytes);
            *lock(&self.open) = Lru::new(self.limits.open_files);
        }
        for key in stale {
            self.remove(&key);
        }
        self.publish_held();
    }

    /// Registers what `key` depends on, before it is read. Registrations of
    /// keys no longer held (evicted, dropped, or never stored) are pruned
    /// when they pile up, so that hostile URL spellings of one file cannot
    /// grow them without bound.
    pub(super) fn depend(&self, key: &Key, on: &[(PathBuf, OsString)]) -> Dependency {
        let watched = !on.is_empty()
            && self.watch.as_ref().is_some_and(|w| {
                let mut watch = lock(w);
                let watched = watch.depend(key, on);
                if watch.crowded() {
                    // The watch's lock, then the entries': the order insert
                    // and apply_changes take them in too.
                    let (memory, open) = (lock(&self.memory), lock(&self.open));
                    watch.retain(|k| k == key || memory.contains(k) || open.contains(k));
                }
                watched
            });
        Dependency {
            watched,
            generation: self.generation.load(Ordering::Relaxed),
        }
    }

    /// Whether a file of `len` bytes is kept in memory (otherwise it is kept
    /// open, if descriptors may be kept at all).
    pub(super) fn holds_in_memory(&self, len: u64) -> bool {
        len <= self.limits.file_bytes as u64 && len <= self.limits.total_bytes as u64
    }

    pub(super) fn lookup(&self, key: &Key, now: Instant) -> Lookup {
        let found = lock(&self.memory)
            .touch(key)
            .or_else(|| lock(&self.open).touch(key));
        match found {
            Some((entry, checked))
                if entry.watched || now.duration_since(checked) < REVALIDATE_AFTER =>
            {
                self.stats.hit();
                Lookup::Fresh(entry.cached)
            }
            Some((entry, _)) => {
                self.stats.revalidated();
                Lookup::Stale(entry.cached)
            }
            None => {
                self.stats.missed();
                Lookup::Miss
            }
        }
    }

    /// Stores (or refreshes) an entry checked at `now`, read after its
    /// `dependency` was registered. Not stored if changes were applied since
    /// (by another thread): what was read may be what they replaced.
    pub(super) fn insert(&self, key: Key, cached: Cached, dependency: Dependency, now: Instant) {
        // Changes are applied under the watch's lock, so under it an entry is
        // either stored before a change is applied (and dropped by it) or
        // sees the generation moved on (and is not stored).
        let _applying = self.watch.as_ref().map(lock);
        // An entry may move between kinds when its file grows or shrinks.
        self.remove(&key);
        if self.generation.load(Ordering::Relaxed) != dependency.generation {
            return;
        }
        let entry = Entry {
            watched: dependency.watched,
            cached,
        };
        match &entry.cached.content {
            Content::Bytes(bytes) => {
                let weight = bytes.len();
                lock(&self.memory).insert(key, entry, weight, now);
            }
            Content::Open(_) => lock(&self.open).insert(key, entry, 1, now),
        }
        self.publish_held();
    }

    /// Forgets an entry.
    pub(super) fn remove(&self, key: &Key) {
        lock(&self.memory).remove(key);
        lock(&self.open).remove(key);
        self.publish_held();
    }

    /// Bytes held in memory.
    pub fn bytes_held(&self) -> usize {
        lock(&self.memory).used()
    }

    /// Descriptors held open.
    pub fn files_held(&self) -> usize {
        lock(&self.open).used()
    }

    /// Keys the watch holds registrations for.
    #[cfg(test)]
    fn registrations(&self) -> usize {
        self.watch.as_ref().map_or(0, |w| lock(w).registrations())
    }

    fn publish_held(&self) {
        self.stats.set_held(self.bytes_held(), self.files_held());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::open::FileIdentity;
    use crate::app::statics::conditional::Validators;
    use std::path::PathBuf;
    use std::time::UNIX_EPOCH;

    fn representation(len: usize) -> Arc<Representation> {
        Arc::new(Representation {
            path: PathBuf::from("/x"),
            len: len as u64,
            identity: FileIdentity {
                device: 0,
                inode: 0,
                len: len as u64,
                modified_ns: 0,
                changed_ns: 0,
            },
            validators: Validators::new("\"e\"".into(), UNIX_EPOCH),
            content_type: "text/plain".into(),
            coding: None,
            compressed_here: false,
            vary: false,
            fields: Default::default(),
        })
    }

    fn in_memory(len: usize) -> Cached {
        Cached {
            representation: representation(len),
            content: Content::Bytes(Arc::from(vec![0u8; len])),
        }
    }

    fn open_file() -> Cached {
        Cached {
            representation: representation(1 << 20),
            content: Content::Open(Arc::new(File::open("Cargo.toml").unwrap())),
        }
    }

    fn key(path: &str) -> Key {
        Key {
            url_path: path.into(),
            accepted: Codings::NONE,
        }
    }

    fn limits(total_bytes: usize, file_bytes: usize, open_files: usize) -> CacheLimits {
        CacheLimits {
            total_bytes,
            file_bytes,
            open_files,
        }
    }

    #[test]
    fn fresh_then_stale_each_counted() {
        let registry = crate::stats::Registry::new();
        let cache = FileCache::new(CacheLimits::default(), registry.cache());
        let t0 = Instant::now();
        cache.insert(key("/a"), in_memory(10), cache.depend(&key("/a"), &[]), t0);
        cache.insert(
            key("/big"),
            open_file(),
            cache.depend(&key("/big"), &[]),
            t0,
        );
        assert!(matches!(cache.lookup(&key("/a"), t0), Lookup::Fresh(_)));
        assert!(matches!(
            cache.lookup(&key("/a"), t0 + REVALIDATE_AFTER),
            Lookup::Stale(_)
        ));
        assert!(matches!(cache.lookup(&key("/b"), t0), Lookup::Miss));
        let counted = registry.snapshot(t0).cache;
        assert_eq!(
            (counted.hits, counted.revalidations, counted.misses),
            (1, 1, 1)
        );
        assert_eq!((counted.bytes_held, counted.files_open), (10, 1));
        cache.remove(&key("/a"));
        assert_eq!(registry.snapshot(t0).cache.bytes_held, 0);
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let cache = FileCache::new(limits(30, 30, 0), Arc::default());
        let t0 = Instant::now();
        cache.insert(key("/a"), in_memory(10), cache.depend(&key("/a"), &[]), t0);
        cache.insert(key("/b"), in_memory(10), cache.depend(&key("/b"), &[]), t0);
        cache.insert(key("/c"), in_memory(10), cache.depend(&key("/c"), &[]), t0);
        let _ = cache.lookup(&key("/a"), t0); // a is now the most recent
        cache.insert(key("/d"), in_memory(10), cache.depend(&key("/d"), &[]), t0);
        assert!(
            matches!(cache.lookup(&key("/b"), t0), Lookup::Miss),
            "b was oldest"
        );
        assert!(matches!(cache.lookup(&key("/a"), t0), Lookup::Fresh(_)));
        assert_eq!(cache.bytes_held(), 30);
    }

    #[test]
    fn descriptors_are_bounded_apart_from_bytes() {
        let cache = FileCache::new(limits(100, 50, 2), Arc::default());
        let t0 = Instant::now();
        cache.insert(
            key("/small"),
            in_memory(40),
            cache.depend(&key("/small"), &[]),
            t0,
        );
        for path in ["/big1", "/big2", "/big3"] {
            cache.insert(key(path), open_file(), cache.depend(&key(path), &[]), t0);
        }
        assert_eq!(cache.files_held(), 2);
        assert!(matches!(cache.lookup(&key("/big1"), t0), Lookup::Miss));
        assert!(
            matches!(cache.lookup(&key("/small"), t0), Lookup::Fresh(_)),
            "large files do not push small ones out"
        );
    }

    #[test]
    fn what_does_not_fit_is_not_held() {
        let cache = FileCache::new(limits(100, 20, 0), Arc::default());
        assert!(!cache.holds_in_memory(21));
        cache.insert(
            key("/big"),
            in_memory(101),
            cache.depend(&key("/big"), &[]),
            Instant::now(),
        );
        assert_eq!(cache.bytes_held(), 0);
        cache.insert(
            key("/open"),
            open_file(),
            cache.depend(&key("/open"), &[]),
            Instant::now(),
        );
        assert_eq!(cache.files_held(), 0, "no descriptors may be kept");
    }

    #[test]
    fn registrations_do_not_outlive_their_entries_for_long() {
        // Thousands of spellings of one file (`//a`, `/./a`, `/%61`...), each a
        // key, in a cache that holds three entries.
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::write(base.join("a"), "a").unwrap();
        let cache = FileCache::new(limits(30, 30, 0), Arc::default());
        let on = [(base.clone(), OsString::from("a"))];
        let t0 = Instant::now();
        for n in 0..5000 {
            let spelling = key(&format!("{}a", "/".repeat(n + 1)));
            let dependency = cache.depend(&spelling, &on);
            cache.insert(spelling, in_memory(10), dependency, t0);
        }
        assert!(
            cache.registrations() <= 1024 + 1,
            "{} registrations for 3 entries",
            cache.registrations()
        );
        // The entries still held are still heard of.
        let held = key(&format!("{}a", "/".repeat(5000)));
        assert!(matches!(cache.lookup(&held, t0), Lookup::Fresh(_)));
        std::fs::write(base.join("a"), "A").unwrap();
        cache.apply_changes();
        assert!(matches!(cache.lookup(&held, t0), Lookup::Miss));
    }

    #[test]
    fn an_entry_moves_between_kinds_when_its_file_does() {
        let cache = FileCache::new(CacheLimits::default(), Arc::default());
        let t0 = Instant::now();
        cache.insert(key("/a"), in_memory(10), cache.depend(&key("/a"), &[]), t0);
        cache.insert(key("/a"), open_file(), cache.depend(&key("/a"), &[]), t0);
        assert_eq!(cache.bytes_held(), 0);
        assert_eq!(cache.files_held(), 1);
        cache.insert(key("/a"), in_memory(25), cache.depend(&key("/a"), &[]), t0);
        assert_eq!((cache.bytes_held(), cache.files_held()), (25, 0));
    }
}
