//! A least-recently-used map whose entries have weights and whose total weight
//! is bounded. The file cache, the listing cache, the verified credentials and
//! the failed logins are each one of these behind a mutex.
//!
//! A weight has two dimensions: bytes of memory, and descriptors held open.
//! Most maps weigh only one (bytes, or a count of entries as bytes of one
//! each); the file cache weighs both, since an open file costs a descriptor
//! and the memory of its entry. Bytes over the bound evict the least recently
//! used entry of any kind; descriptors over it evict the least recently used
//! entry that holds one, so large files never push small ones out for want of
//! a descriptor.
//!
//! Every operation costs O(log n) at most, whatever was inserted before: a
//! hit notes a tick, and the order catches up when an eviction meets the
//! entry.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// What an entry costs, or what a map may hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Weight {
    pub bytes: usize,
    pub files: usize,
}

impl Weight {
    /// `bytes` of memory, no descriptor.
    pub(super) const fn bytes(bytes: usize) -> Weight {
        Weight { bytes, files: 0 }
    }

    fn fits_within(self, capacity: Weight) -> bool {
        self.bytes <= capacity.bytes && self.files <= capacity.files
    }

    /// Which recency order an entry of this weight is filed in.
    fn order(self) -> usize {
        usize::from(self.files > 0)
    }
}

impl std::ops::Add for Weight {
    type Output = Weight;
    fn add(self, other: Weight) -> Weight {
        Weight {
            bytes: self.bytes.saturating_add(other.bytes),
            files: self.files.saturating_add(other.files),
        }
    }
}

impl std::ops::Sub for Weight {
    type Output = Weight;
    fn sub(self, other: Weight) -> Weight {
        Weight {
            bytes: self.bytes.saturating_sub(other.bytes),
            files: self.files.saturating_sub(other.files),
        }
    }
}

impl From<usize> for Weight {
    fn from(bytes: usize) -> Weight {
        Weight::bytes(bytes)
    }
}

struct Slot<V> {
    value: V,
    weight: Weight,
    /// When the entry was stored: for a cache, when it was last checked
    /// against what it caches.
    checked: Instant,
    /// When it was last used, in ticks.
    tick: u64,
    /// The tick the recency order files it under: its `tick` when it was
    /// filed, which later uses leave behind (see [`Lru::touch`]).
    filed: u64,
}

pub(super) struct Lru<K, V> {
    capacity: Weight,
    used: Weight,
    slots: HashMap<K, Slot<V>>,
    /// Every key once, under its slot's `filed` tick: in the first order the
    /// entries that hold no descriptor, in the second those that do. A filed
    /// tick is never later than the last use, so in each order the smallest
    /// one whose slot was not used since is its least recently used entry.
    orders: [BTreeMap<u64, K>; 2],
    next_tick: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    /// A map of at most `capacity` (bytes, or a count).
    pub(super) fn new(capacity: usize) -> Lru<K, V> {
        Lru::bounded_by(Weight::bytes(capacity))
    }

    /// A map bounded in bytes and in descriptors.
    pub(super) fn bounded_by(capacity: Weight) -> Lru<K, V> {
        Lru {
            capacity,
            used: Weight::default(),
            slots: HashMap::new(),
            orders: [BTreeMap::new(), BTreeMap::new()],
            next_tick: 0,
        }
    }

    /// The entry and when it was stored, now the most recently used.
    ///
    /// A hit only notes the tick: the order is brought up to date when an
    /// eviction meets the entry (see [`Lru::oldest`]), so a hit, which is
    /// every request for a cached file, costs one hash lookup and no
    /// reordering.
    pub(super) fn touch<Q>(&mut self, key: &Q) -> Option<(V, Instant)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = self.slots.get_mut(key)?;
        slot.tick = self.next_tick;
        self.next_tick += 1;
        Some((slot.value.clone(), slot.checked))
    }

    /// The filed tick of the least recently used entry of `order`. Entries
    /// used since they were filed are filed again under their last use on
    /// the way: each use is refiled at most once.
    fn oldest(&mut self, order: usize) -> Option<u64> {
        loop {
            let (&filed, key) = self.orders[order].first_key_value()?;
            let last_use = self.slots.get(key).map(|slot| slot.tick);
            match last_use {
                Some(tick) if tick == filed => return Some(filed),
                _ => {
                    let (_, key) = self.orders[order].pop_first()?;
                    if let (Some(tick), Some(slot)) = (last_use, self.slots.get_mut(&key)) {
                        slot.filed = tick;
                        self.orders[order].insert(tick, key);
                    }
                }
            }
        }
    }

    /// Evicts the least recently used entry (of `order`, or of either);
    /// false if there is none.
    fn evict_one(&mut self, order: Option<usize>) -> bool {
        let order = match order {
            Some(order) => order,
            None => match (self.oldest(0), self.oldest(1)) {
                (Some(plain), Some(open)) => usize::from(open < plain),
                (Some(_), None) => 0,
                (None, Some(_)) => 1,
                (None, None) => return false,
            },
        };
        if self.oldest(order).is_none() {
            return false;
        }
        let Some((_, key)) = self.orders[order].pop_first() else {
            return false;
        };
        if let Some(evicted) = self.slots.remove(&key) {
            self.used = self.used - evicted.weight;
        }
        true
    }

    /// Stores an entry at `now`, evicting the least recently used until it
    /// fits; one heavier than the whole capacity is not stored.
    pub(super) fn insert(&mut self, key: K, value: V, weight: impl Into<Weight>, now: Instant) {
        let weight = weight.into();
        self.remove(&key);
        if !weight.fits_within(self.capacity) {
            return;
        }
        while self.used.files + weight.files > self.capacity.files {
            if !self.evict_one(Some(1)) {
                break;
            }
        }
        while self.used.bytes + weight.bytes > self.capacity.bytes {
            if !self.evict_one(None) {
                break;
            }
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        self.orders[weight.order()].insert(tick, key.clone());
        self.used = self.used + weight;
        self.slots.insert(
            key,
            Slot {
                value,
                weight,
                checked: now,
                tick,
                filed: tick,
            },
        );
    }

    pub(super) fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(old) = self.slots.remove(key) {
            self.orders[old.weight.order()].remove(&old.filed);
            self.used = self.used - old.weight;
        }
    }

    /// Whether `key` is held, without making it more recent.
    pub(super) fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.slots.contains_key(key)
    }

    /// The total weight held.
    pub(super) fn used(&self) -> Weight {
        self.used
    }

    /// Entries held.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }
}

/// Locks a cache. A panic while the lock was held (contained to its
/// connection) cannot leave an LRU inconsistent in a way that matters to a
/// cache: recover the guard rather than poison every later request.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(bytes: usize, files: usize) -> Weight {
        Weight { bytes, files }
    }

    #[test]
    fn evicts_the_least_recently_used_by_weight() {
        let t0 = Instant::now();
        let mut lru = Lru::new(30);
        lru.insert("a", 1, 10, t0);
        lru.insert("b", 2, 10, t0);
        lru.insert("c", 3, 10, t0);
        assert_eq!(lru.touch(&"a"), Some((1, t0)));
        lru.insert("d", 4, 10, t0);
        assert_eq!(lru.touch(&"b"), None, "b was the least recently used");
        assert_eq!(lru.used(), Weight::bytes(30));
        lru.insert("huge", 5, 31, t0);
        assert_eq!(lru.touch(&"huge"), None, "heavier than the capacity");
        lru.insert("a", 6, 5, t0);
        assert_eq!(
            lru.used(),
            Weight::bytes(25),
            "re-inserting replaces the old weight"
        );
    }

    #[test]
    fn uses_since_filing_count_at_eviction() {
        let t0 = Instant::now();
        let mut lru = Lru::new(3);
        for key in ["a", "b", "c"] {
            lru.insert(key, 0, 1, t0);
        }
        // Used in the order c, a, b (a twice): b is now the most recent and
        // c the least, though the order still files them as inserted.
        for key in ["c", "a", "a", "b"] {
            assert!(lru.touch(&key).is_some());
        }
        lru.insert("d", 0, 1, t0);
        assert!(lru.touch(&"c").is_none(), "c was the least recently used");
        lru.insert("e", 0, 1, t0);
        assert!(lru.touch(&"a").is_none(), "then a");
        for key in ["b", "d", "e"] {
            assert!(lru.touch(&key).is_some(), "{key} stays");
        }
        lru.remove(&"b");
        assert_eq!(
            lru.used(),
            Weight::bytes(2),
            "a refiled entry is removed from the order too"
        );
        lru.insert("f", 0, 1, t0);
        lru.insert("g", 0, 1, t0);
        assert!(lru.touch(&"d").is_none(), "d, used before e, went first");
        let filed: usize = lru.orders.iter().map(BTreeMap::len).sum();
        assert_eq!(filed, lru.slots.len(), "every key filed once");
    }

    #[test]
    fn descriptors_evict_only_entries_that_hold_one() {
        let t0 = Instant::now();
        let mut lru = Lru::bounded_by(files(100, 2));
        lru.insert("small", 0, files(10, 0), t0);
        lru.insert("big1", 0, files(10, 1), t0);
        lru.insert("big2", 0, files(10, 1), t0);
        assert!(lru.touch(&"big1").is_some());
        lru.insert("big3", 0, files(10, 1), t0);
        assert!(lru.touch(&"big2").is_none(), "the oldest open one went");
        assert!(lru.touch(&"small").is_some(), "not the older small one");
        assert_eq!(lru.used(), files(30, 2));
    }

    #[test]
    fn bytes_evict_the_least_recently_used_of_either_kind() {
        let t0 = Instant::now();
        let mut lru = Lru::bounded_by(files(30, 10));
        lru.insert("open", 0, files(10, 1), t0);
        lru.insert("small1", 0, files(10, 0), t0);
        lru.insert("small2", 0, files(10, 0), t0);
        lru.insert("small3", 0, files(10, 0), t0);
        assert!(lru.touch(&"open").is_none(), "the open one was the oldest");
        assert_eq!(lru.used(), files(30, 0));
        assert!(lru.touch(&"small1").is_some());
        lru.insert("open2", 0, files(10, 1), t0);
        assert!(lru.touch(&"small2").is_none(), "now a small one was");
        assert_eq!(lru.len(), 3);
    }

    #[test]
    fn nothing_heavier_than_the_capacity_in_either_dimension_is_held() {
        let t0 = Instant::now();
        let mut lru = Lru::bounded_by(files(100, 0));
        lru.insert("open", 0, files(1, 1), t0);
        assert_eq!(lru.len(), 0, "no descriptor may be kept");
        let mut lru: Lru<&str, i32> = Lru::bounded_by(files(0, 5));
        lru.insert("open", 0, files(1, 1), t0);
        assert_eq!(lru.len(), 0, "no memory may be used");
    }
}
