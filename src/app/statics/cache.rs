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
//! Two bounds, both on what the cache really holds: bytes of memory (every
//! entry's whole footprint: its key, the file's path, type and validators,
//! its serialized header blocks, its registrations with the watch, and a
//! small file's bytes, compressed or not) and descriptors held open for
//! large files (each is one of the process's file descriptors). An entry is
//! a file as a URL path names it, however the path was spelled: `//a`,
//! `/./a`, `/%61` and `/a` are one key ([`Key::for_path`]), so a client that
//! spells one file a hundred thousand ways gets a hundred thousand hits, not
//! as many entries. The cache is shared by every connection of a loop (and by
//! every thread in the threaded models), behind a mutex that the single loop
//! never contends.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Representation;
use super::resolve::{self, Visibility};
use super::watch::Watch;
use crate::app::encoding::Codings;
use crate::app::lru::{Lru, Weight, lock};
use crate::stats::CacheStats;

/// How long a cached answer nothing watches is trusted without looking at the
/// file system.
pub(super) const REVALIDATE_AFTER: Duration = Duration::from_secs(1);

/// How much the cache may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// Everything the cache holds in memory: small files' bytes and every
    /// entry's own footprint; 0 caches nothing.
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
    /// Whose entry it is: the site, and the options it was served with.
    scope: u64,
    /// The URL path in its one spelling: segments decoded and encoded again
    /// as unreserved characters and escapes, `//` and `.` dropped, a
    /// trailing slash kept (`/docs` is a redirect, `/docs/` a directory).
    path: String,
    /// Which precompressed codings the client accepts: the same path may
    /// resolve to a different file for a different client.
    accepted: Codings,
}

impl Key {
    /// The key of `url_path` (as sent, without the query), or `None` when
    /// the path is refused whatever it names (a stray `%`, `..`, a hidden
    /// name): such answers are not cached.
    pub(super) fn for_path(
        scope: u64,
        url_path: &str,
        accepted: Codings,
        visibility: Visibility,
    ) -> Option<Key> {
        Some(Key {
            scope,
            path: resolve::normalise(url_path, visibility)?,
            accepted,
        })
    }

    /// The memory this key costs wherever it is held.
    fn footprint(&self) -> usize {
        std::mem::size_of::<Key>() + self.path.capacity()
    }
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

impl Cached {
    /// What holding this costs: its memory in bytes (what it points to and
    /// the structures that file it), and the descriptor a large file keeps.
    fn weight(&self, key: &Key, registrations: usize) -> Weight {
        let representation = &*self.representation;
        let fields = &representation.fields;
        let texts = [
            representation.content_type.capacity(),
            representation.validators.etag.capacity(),
            representation.validators.last_modified_text.capacity(),
            representation.path.as_os_str().len(),
            fields.validators.heap_bytes(),
            fields.described.heap_bytes(),
            fields.full.heap_bytes(),
        ];
        let (content, files) = match &self.content {
            Content::Bytes(bytes) => (bytes.len(), 0),
            Content::Open(_) => (std::mem::size_of::<File>(), 1),
        };
        Weight {
            bytes: ENTRY_OVERHEAD
                + key.footprint()
                + std::mem::size_of::<Representation>()
                + texts.iter().sum::<usize>()
                + content
                + registrations * REGISTRATION_BYTES,
            files,
        }
    }
}

/// What an entry costs besides what it holds: its slot in the map and in the
/// recency order, the reference counts of what it shares.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Entry>() + 96;

/// What one registration with the watch costs, about: a shared key, its
/// slot among its name's dependents, and its share of the name itself (a
/// file's own name is registered for it alone; its directories' are shared
/// with every entry below them). Between two prunings the registrations of
/// entries already gone can reach as many again ([`Watch::retain`]).
const REGISTRATION_BYTES: usize = 64;

/// An entry as stored: whether inotify watches what it depends on.
#[derive(Clone, Debug)]
struct Entry {
    cached: Cached,
    watched: bool,
}

pub(crate) struct FileCache {
    limits: CacheLimits,
    /// Every entry, bounded in bytes (small files' and every entry's own)
    /// and in descriptors (large files', one each).
    entries: Mutex<Lru<Arc<Key>, Entry>>,
    /// The directories the entries depend on, watched; `None` without inotify.
    watch: Option<Mutex<Watch<Arc<Key>>>>,
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
    /// The (directory, name) pairs registered.
    registrations: usize,
    generation: u64,
}

impl Dependency {
    /// A later registration for the same entry, of everything it depends
    /// on once its sidecar is known: it is watched only if that is too. The
    /// first registration's generation stays, the earlier and so the safer.
    pub(super) fn registered_more(&mut self, more: Dependency) {
        self.watched &= more.watched;
        self.registrations = self.registrations.max(more.registrations);
    }
}

impl FileCache {
    pub(super) fn new(limits: CacheLimits, stats: Arc<CacheStats>) -> FileCache {
        FileCache {
            limits,
            entries: Mutex::new(Lru::bounded_by(limits.capacity())),
            watch: Watch::new(super::SIDECARS).map(Mutex::new),
            generation: AtomicU64::new(0),
            stats,
        }
    }

    /// The descriptor that turns readable when a change waits to be applied.
    pub(crate) fn watch_fd(&self) -> Option<RawFd> {
        Some(lock(self.watch.as_ref()?).fd())
    }

    /// Drops the entries whose files changed. Called before every request is
    /// read (by the session) and whenever the watch is readable (by the loop).
    pub(crate) fn apply_changes(&self) {
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
            *lock(&self.entries) = Lru::bounded_by(self.limits.capacity());
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
    pub(super) fn depend(&self, key: &Arc<Key>, on: &[(PathBuf, OsString)]) -> Dependency {
        let watched = !on.is_empty()
            && self.watch.as_ref().is_some_and(|w| {
                let mut watch = lock(w);
                let watched = watch.depend(key, on);
                if watch.crowded() {
                    // The watch's lock, then the entries': the order insert
                    // and apply_changes take them in too.
                    let entries = lock(&self.entries);
                    watch.retain(|k| k == key || entries.contains(k));
                }
                watched
            });
        Dependency {
            watched,
            registrations: on.len(),
            generation: self.generation.load(Ordering::Relaxed),
        }
    }

    /// Whether a file of `len` bytes is kept in memory (otherwise it is kept
    /// open, if descriptors may be kept at all).
    pub(super) fn holds_in_memory(&self, len: u64) -> bool {
        len <= self.limits.file_bytes as u64 && len <= self.limits.total_bytes as u64
    }

    pub(super) fn lookup(&self, key: &Key, now: Instant) -> Lookup {
        let found = lock(&self.entries).touch(key);
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
    pub(super) fn insert(
        &self,
        key: Arc<Key>,
        cached: Cached,
        dependency: Dependency,
        now: Instant,
    ) {
        // Changes are applied under the watch's lock, so under it an entry is
        // either stored before a change is applied (and dropped by it) or
        // sees the generation moved on (and is not stored).
        let _applying = self.watch.as_ref().map(lock);
        if self.generation.load(Ordering::Relaxed) != dependency.generation {
            self.remove(&key);
            return;
        }
        let weight = cached.weight(&key, dependency.registrations);
        let entry = Entry {
            watched: dependency.watched,
            cached,
        };
        lock(&self.entries).insert(key, entry, weight, now);
        self.publish_held();
    }

    /// Forgets an entry.
    pub(super) fn remove(&self, key: &Key) {
        lock(&self.entries).remove(key);
        self.publish_held();
    }

    /// Bytes held in memory, every entry's footprint included.
    #[cfg(test)]
    fn bytes_held(&self) -> usize {
        lock(&self.entries).used().bytes
    }

    /// Descriptors held open.
    #[cfg(test)]
    fn files_held(&self) -> usize {
        lock(&self.entries).used().files
    }

    /// Keys the watch holds registrations for (only inotify's watch holds
    /// any).
    #[cfg(all(test, target_os = "linux"))]
    fn registrations(&self) -> usize {
        self.watch.as_ref().map_or(0, |w| lock(w).registrations())
    }

    fn publish_held(&self) {
        let entries = lock(&self.entries);
        self.stats
            .set_held(entries.used().bytes, entries.used().files, entries.len());
    }
}

impl CacheLimits {
    fn capacity(&self) -> Weight {
        Weight {
            bytes: self.total_bytes,
            files: self.open_files,
        }
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
        Arc::new(
            Representation {
                path: PathBuf::from("/srv/site/x"),
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
            }
            .finished(),
        )
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

    fn key(path: &str) -> Arc<Key> {
        Arc::new(Key {
            scope: 0,
            path: path.into(),
            accepted: Codings::NONE,
        })
    }

    /// Stores `cached` under `path`, depending on nothing.
    fn store(cache: &FileCache, path: &str, cached: Cached, now: Instant) {
        let key = key(path);
        let dependency = cache.depend(&key, &[]);
        cache.insert(key, cached, dependency, now);
    }

    /// What an entry for a two-byte path (`/a`) holding `cached` weighs.
    fn weight_of(cached: &Cached) -> Weight {
        cached.weight(&key("/a"), 0)
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
        store(&cache, "/a", in_memory(10), t0);
        store(&cache, "/b", open_file(), t0);
        assert!(matches!(cache.lookup(&key("/a"), t0), Lookup::Fresh(_)));
        assert!(matches!(
            cache.lookup(&key("/a"), t0 + REVALIDATE_AFTER),
            Lookup::Stale(_)
        ));
        assert!(matches!(cache.lookup(&key("/c"), t0), Lookup::Miss));
        let counted = registry.snapshot(t0).cache;
        assert_eq!(
            (counted.hits, counted.revalidations, counted.misses),
            (1, 1, 1)
        );
        let held = weight_of(&in_memory(10)) + weight_of(&open_file());
        assert_eq!(
            (counted.bytes_held, counted.files_open, counted.entries),
            (held.bytes as u64, 1, 2)
        );
        cache.remove(&key("/a"));
        cache.remove(&key("/b"));
        assert_eq!(registry.snapshot(t0).cache.bytes_held, 0);
    }

    #[test]
    fn an_entry_weighs_all_it_holds_not_only_the_file() {
        let small = weight_of(&in_memory(13));
        let compared = |len| weight_of(&in_memory(len)).bytes - small.bytes;
        assert_eq!(compared(1013), 1000, "the file's bytes count");
        // Its key, path, type, validators and three header blocks count too:
        // a 13-byte file is several hundred bytes held.
        let texts = "/a".len()
            + "/srv/site/x".len()
            + "text/plain".len()
            + "\"e\"".len()
            + "Thu, 01 Jan 1970 00:00:00 GMT".len();
        assert!(small.bytes > 13 + texts + 200, "{small:?}");
        let long_key = in_memory(13).weight(&key(&format!("/{}", "x".repeat(4000))), 0);
        assert!(long_key.bytes >= small.bytes + 3999, "{long_key:?}");
        let registered = in_memory(13).weight(&key("/a"), 5);
        assert_eq!(registered.bytes, small.bytes + 5 * REGISTRATION_BYTES);
        let open = weight_of(&open_file());
        assert_eq!(open.files, 1);
        assert!(open.bytes > texts, "an open file's entry is memory too");
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let one = weight_of(&in_memory(10)).bytes;
        let cache = FileCache::new(limits(3 * one, 30, 0), Arc::default());
        let t0 = Instant::now();
        for path in ["/a", "/b", "/c"] {
            store(&cache, path, in_memory(10), t0);
        }
        let _ = cache.lookup(&key("/a"), t0); // a is now the most recent
        store(&cache, "/d", in_memory(10), t0);
        assert!(
            matches!(cache.lookup(&key("/b"), t0), Lookup::Miss),
            "b was oldest"
        );
        assert!(matches!(cache.lookup(&key("/a"), t0), Lookup::Fresh(_)));
        assert_eq!(cache.bytes_held(), 3 * one);
    }

    #[test]
    fn descriptors_are_bounded_apart_from_bytes() {
        let cache = FileCache::new(limits(64 << 10, 50, 2), Arc::default());
        let t0 = Instant::now();
        store(&cache, "/small", in_memory(40), t0);
        for path in ["/big1", "/big2", "/big3"] {
            store(&cache, path, open_file(), t0);
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
        store(&cache, "/big", in_memory(101), Instant::now());
        assert_eq!(cache.bytes_held(), 0);
        store(&cache, "/open", open_file(), Instant::now());
        assert_eq!(cache.files_held(), 0, "no descriptors may be kept");
        let none = FileCache::new(limits(0, 20, 10), Arc::default());
        store(&none, "/open", open_file(), Instant::now());
        assert_eq!(
            (none.bytes_held(), none.files_held()),
            (0, 0),
            "no memory, so not even an open file's entry"
        );
    }

    #[test]
    fn the_bytes_held_never_pass_the_limit_whatever_the_keys() {
        let total = 64 << 10;
        let cache = FileCache::new(limits(total, 1024, 8), Arc::default());
        let t0 = Instant::now();
        for n in 0..5000usize {
            // Keys of every length up to a request line's, small files and
            // open ones.
            let path = format!("/{n}{}", "x".repeat(n % 3000));
            let cached = match n % 7 {
                0 => open_file(),
                _ => in_memory(n % 1000),
            };
            store(&cache, &path, cached, t0);
            assert!(
                cache.bytes_held() <= total,
                "after {n}: {}",
                cache.bytes_held()
            );
            assert!(cache.files_held() <= 8);
        }
        assert!(cache.bytes_held() > total / 2, "and the cache is used");
    }

    // The change is heard through inotify; elsewhere entries wait out their
    // revalidation time instead (see `watch`).
    #[cfg(target_os = "linux")]
    #[test]
    fn registrations_do_not_outlive_their_entries_for_long() {
        // Thousands of keys depending on one file, in a cache that holds
        // three entries.
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::write(base.join("a"), "a").unwrap();
        let one = in_memory(10).weight(&key("/a/0000"), 1).bytes;
        let cache = FileCache::new(limits(3 * one, 30, 0), Arc::default());
        let on = [(base.clone(), OsString::from("a"))];
        let t0 = Instant::now();
        for n in 0..5000 {
            let key = key(&format!("/a/{n:04}"));
            let dependency = cache.depend(&key, &on);
            cache.insert(key, in_memory(10), dependency, t0);
        }
        assert!(
            cache.registrations() <= 1024 + 1,
            "{} registrations for 3 entries",
            cache.registrations()
        );
        // The entries still held are still heard of.
        let held = key("/a/4999");
        assert!(matches!(cache.lookup(&held, t0), Lookup::Fresh(_)));
        std::fs::write(base.join("a"), "A").unwrap();
        cache.apply_changes();
        assert!(matches!(cache.lookup(&held, t0), Lookup::Miss));
    }

    #[test]
    fn an_entry_moves_between_kinds_when_its_file_does() {
        let cache = FileCache::new(CacheLimits::default(), Arc::default());
        let t0 = Instant::now();
        store(&cache, "/a", in_memory(10), t0);
        store(&cache, "/a", open_file(), t0);
        assert_eq!(cache.bytes_held(), weight_of(&open_file()).bytes);
        assert_eq!(cache.files_held(), 1);
        store(&cache, "/a", in_memory(25), t0);
        assert_eq!(
            (cache.bytes_held(), cache.files_held()),
            (weight_of(&in_memory(25)).bytes, 0)
        );
    }

    #[test]
    fn spellings_of_one_path_are_one_key() {
        let visibility = Visibility::default();
        let k = |path| Key::for_path(0, path, Codings::NONE, visibility);
        assert_eq!(k("//a/./b%2Ec"), k("/a/b.c"));
        assert_eq!(k("/%61/b.c"), k("/a/b.c"));
        assert_ne!(k("/a/"), k("/a"), "a trailing slash is a different request");
        assert_ne!(
            Key::for_path(
                0,
                "/a",
                Codings::from(crate::app::encoding::Coding::Gzip),
                visibility
            ),
            k("/a"),
            "nor is another set of codings"
        );
        assert_ne!(
            Key::for_path(1, "/a", Codings::NONE, visibility),
            k("/a"),
            "nor is another site's"
        );
        assert_eq!(k("/../a"), None, "refused paths have no key");
    }
}
