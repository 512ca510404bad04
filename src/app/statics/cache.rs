//! A bounded in-memory cache of small files, least-recently-used out.
//!
//! An entry remembers everything a request for a URL path needed: how the path
//! resolved, which representation was chosen (identity or a precompressed
//! sidecar), its validators, and its bytes. A hit younger than
//! [`REVALIDATE_AFTER`] costs no system call at all; an older one is revalidated
//! by resolving the path again and comparing the file's identity (device, inode,
//! size, modification time to the nanosecond): unchanged, the bytes are reused;
//! changed, they are read again. So an edited file is served stale for at most a
//! second, the same bound nginx's `open_file_cache_valid` gives.
//!
//! The cache is shared by every connection of a loop (and by every thread in the
//! threaded models), behind a mutex that the single loop never contends.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Representation;

/// How long a cached answer is trusted without looking at the file system.
pub const REVALIDATE_AFTER: Duration = Duration::from_secs(1);

/// How much the cache may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// All cached bytes together; 0 turns the cache off.
    pub total_bytes: usize,
    /// Largest file cached. Larger files (and every file when the cache is off)
    /// go out with sendfile.
    pub file_bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            total_bytes: 4 << 20,
            file_bytes: 64 << 10,
        }
    }
}

/// What a request for a URL path with a given set of accepted encodings found.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub url_path: String,
    /// Which precompressed encodings the client accepts (bit 0 gzip, bit 1 br):
    /// the same path may resolve to a different file for a different client.
    pub accepted: u8,
}

#[derive(Clone, Debug)]
pub struct Cached {
    pub representation: Arc<Representation>,
    pub bytes: Arc<[u8]>,
}

/// The result of a lookup.
pub enum Lookup {
    /// Recent enough to serve as is.
    Fresh(Cached),
    /// Present but due for revalidation.
    Stale(Cached),
    Miss,
}

struct Slot {
    cached: Cached,
    checked: Instant,
    /// Position in the recency order.
    tick: u64,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<Key, Slot>,
    /// Recency order: the smallest tick is the least recently used.
    order: BTreeMap<u64, Key>,
    next_tick: u64,
    used: usize,
}

pub struct FileCache {
    limits: CacheLimits,
    inner: Mutex<Inner>,
}

impl FileCache {
    pub fn new(limits: CacheLimits) -> FileCache {
        FileCache {
            limits,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Whether a file of `len` bytes belongs in the cache.
    pub fn admits(&self, len: u64) -> bool {
        self.limits.total_bytes > 0
            && len <= self.limits.file_bytes as u64
            && len <= self.limits.total_bytes as u64
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent in
        // a way that matters to a cache: recover the guard.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn lookup(&self, key: &Key, now: Instant) -> Lookup {
        if self.limits.total_bytes == 0 {
            return Lookup::Miss;
        }
        let mut inner = self.lock();
        let inner = &mut *inner;
        let Some(slot) = inner.slots.get_mut(key) else {
            return Lookup::Miss;
        };
        // Move to the most recent end, reusing the key the order held.
        if let Some(owned) = inner.order.remove(&slot.tick) {
            slot.tick = inner.next_tick;
            inner.order.insert(slot.tick, owned);
        }
        inner.next_tick += 1;
        if now.duration_since(slot.checked) < REVALIDATE_AFTER {
            Lookup::Fresh(slot.cached.clone())
        } else {
            Lookup::Stale(slot.cached.clone())
        }
    }

    /// Stores (or refreshes) an entry checked at `now`, evicting the least
    /// recently used entries until everything fits.
    pub fn insert(&self, key: Key, cached: Cached, now: Instant) {
        let len = cached.bytes.len();
        if !self.admits(len as u64) {
            return;
        }
        self.remove(&key);
        let mut inner = self.lock();
        while inner.used + len > self.limits.total_bytes {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            if let Some(evicted) = inner.slots.remove(&oldest) {
                inner.used -= evicted.cached.bytes.len();
            }
        }
        let tick = inner.next_tick;
        inner.next_tick += 1;
        inner.order.insert(tick, key.clone());
        inner.used += len;
        inner.slots.insert(
            key,
            Slot {
                cached,
                checked: now,
                tick,
            },
        );
    }

    /// Forgets an entry.
    pub fn remove(&self, key: &Key) {
        let mut inner = self.lock();
        if let Some(old) = inner.slots.remove(key) {
            inner.order.remove(&old.tick);
            inner.used -= old.cached.bytes.len();
        }
    }

    /// Bytes held.
    pub fn used(&self) -> usize {
        self.lock().used
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::statics::conditional::Validators;
    use std::path::PathBuf;
    use std::time::UNIX_EPOCH;

    fn entry(len: usize) -> Cached {
        Cached {
            representation: Arc::new(Representation {
                path: PathBuf::from("/x"),
                len: len as u64,
                identity: (0, 0, len as u64, 0),
                validators: Validators::new("\"e\"".into(), UNIX_EPOCH),
                content_type: "text/plain".into(),
                encoding: None,
                vary: false,
            }),
            bytes: Arc::from(vec![0u8; len]),
        }
    }

    fn key(path: &str) -> Key {
        Key {
            url_path: path.into(),
            accepted: 0,
        }
    }

    #[test]
    fn fresh_then_stale() {
        let cache = FileCache::new(CacheLimits::default());
        let t0 = Instant::now();
        cache.insert(key("/a"), entry(10), t0);
        assert!(matches!(cache.lookup(&key("/a"), t0), Lookup::Fresh(_)));
        assert!(matches!(
            cache.lookup(&key("/a"), t0 + REVALIDATE_AFTER),
            Lookup::Stale(_)
        ));
        assert!(matches!(cache.lookup(&key("/b"), t0), Lookup::Miss));
    }

    #[test]
    fn evicts_the_least_recently_used() {
        let cache = FileCache::new(CacheLimits {
            total_bytes: 30,
            file_bytes: 30,
        });
        let t0 = Instant::now();
        cache.insert(key("/a"), entry(10), t0);
        cache.insert(key("/b"), entry(10), t0);
        cache.insert(key("/c"), entry(10), t0);
        let _ = cache.lookup(&key("/a"), t0); // a is now the most recent
        cache.insert(key("/d"), entry(10), t0);
        assert!(
            matches!(cache.lookup(&key("/b"), t0), Lookup::Miss),
            "b was oldest"
        );
        assert!(matches!(cache.lookup(&key("/a"), t0), Lookup::Fresh(_)));
        assert_eq!(cache.used(), 30);
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let cache = FileCache::new(CacheLimits {
            total_bytes: 100,
            file_bytes: 20,
        });
        cache.insert(key("/big"), entry(21), Instant::now());
        assert_eq!(cache.used(), 0);
        let off = FileCache::new(CacheLimits {
            total_bytes: 0,
            file_bytes: 20,
        });
        assert!(!off.admits(1));
    }

    #[test]
    fn replacing_an_entry_keeps_the_accounting_right() {
        let cache = FileCache::new(CacheLimits::default());
        let t0 = Instant::now();
        cache.insert(key("/a"), entry(10), t0);
        cache.insert(key("/a"), entry(25), t0);
        assert_eq!(cache.used(), 25);
    }
}
