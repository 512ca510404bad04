//! What the static site remembers between requests: the answer to "what does
//! this URL path resolve to", with the file's bytes (small files) or its open
//! descriptor (larger ones), least-recently-used out.
//!
//! An entry holds everything a request for a URL path needed: how the path
//! resolved, which representation was chosen (identity or a precompressed
//! sidecar), its validators, and its content. A hit younger than
//! [`REVALIDATE_AFTER`] costs no system call at all (a large file still costs its
//! `sendfile`); an older one is revalidated by resolving the path again and
//! comparing the file's identity (device, inode, size, modification time to the
//! nanosecond): unchanged, small files keep their bytes; changed, everything is
//! read again. So an edited file is served stale for at most a second, the bound
//! nginx's `open_file_cache_valid 1s` gives.
//!
//! Two bounds: the bytes held for small files, and the descriptors held open
//! for large ones (each is one of the process's file descriptors). The cache is
//! shared by every connection of a loop (and by every thread in the threaded
//! models), behind a mutex that the single loop never contends.

use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Representation;
use crate::app::encoding::Codings;
use crate::app::lru::{Lru, lock};
use crate::stats::CacheStats;

/// How long a cached answer is trusted without looking at the file system.
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

pub(super) struct FileCache {
    limits: CacheLimits,
    /// Small files' bytes, weighed in bytes.
    memory: Mutex<Lru<Key, Cached>>,
    /// Larger files' descriptors, weighed one each.
    open: Mutex<Lru<Key, Cached>>,
    /// Hits, misses and what is held, for the status page.
    stats: Arc<CacheStats>,
}

impl FileCache {
    pub(super) fn new(limits: CacheLimits, stats: Arc<CacheStats>) -> FileCache {
        FileCache {
            limits,
            memory: Mutex::new(Lru::new(limits.total_bytes)),
            open: Mutex::new(Lru::new(limits.open_files)),
            stats,
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
            Some((cached, checked)) if now.duration_since(checked) < REVALIDATE_AFTER => {
                self.stats.hit();
                Lookup::Fresh(cached)
            }
            Some((cached, _)) => {
                self.stats.revalidated();
                Lookup::Stale(cached)
            }
            None => {
                self.stats.missed();
                Lookup::Miss
            }
        }
    }

    /// Stores (or refreshes) an entry checked at `now`.
    pub(super) fn insert(&self, key: Key, cached: Cached, now: Instant) {
        // An entry may move between kinds when its file grows or shrinks.
        self.remove(&key);
        match &cached.content {
            Content::Bytes(bytes) => {
                let weight = bytes.len();
                lock(&self.memory).insert(key, cached, weight, now);
            }
            Content::Open(_) => lock(&self.open).insert(key, cached, 1, now),
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
            vary: false,
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
        cache.insert(key("/a"), in_memory(10), t0);
        cache.insert(key("/big"), open_file(), t0);
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
        cache.insert(key("/a"), in_memory(10), t0);
        cache.insert(key("/b"), in_memory(10), t0);
        cache.insert(key("/c"), in_memory(10), t0);
        let _ = cache.lookup(&key("/a"), t0); // a is now the most recent
        cache.insert(key("/d"), in_memory(10), t0);
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
        cache.insert(key("/small"), in_memory(40), t0);
        for path in ["/big1", "/big2", "/big3"] {
            cache.insert(key(path), open_file(), t0);
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
        cache.insert(key("/big"), in_memory(101), Instant::now());
        assert_eq!(cache.bytes_held(), 0);
        cache.insert(key("/open"), open_file(), Instant::now());
        assert_eq!(cache.files_held(), 0, "no descriptors may be kept");
    }

    #[test]
    fn an_entry_moves_between_kinds_when_its_file_does() {
        let cache = FileCache::new(CacheLimits::default(), Arc::default());
        let t0 = Instant::now();
        cache.insert(key("/a"), in_memory(10), t0);
        cache.insert(key("/a"), open_file(), t0);
        assert_eq!(cache.bytes_held(), 0);
        assert_eq!(cache.files_held(), 1);
        cache.insert(key("/a"), in_memory(25), t0);
        assert_eq!((cache.bytes_held(), cache.files_held()), (25, 0));
    }
}
