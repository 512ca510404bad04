//! A least-recently-used map whose entries have weights (bytes, descriptors)
//! and whose total weight is bounded. The file cache, the listing cache, the
//! verified credentials and the failed logins are each one of these behind a
//! mutex.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

struct Slot<V> {
    value: V,
    weight: usize,
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
    capacity: usize,
    used: usize,
    slots: HashMap<K, Slot<V>>,
    /// Every key once, under its slot's `filed` tick. A filed tick is never
    /// later than the last use, so the smallest one whose slot was not used
    /// since is the least recently used entry.
    order: BTreeMap<u64, K>,
    next_tick: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> Lru<K, V> {
    pub(super) fn new(capacity: usize) -> Lru<K, V> {
        Lru {
            capacity,
            used: 0,
            slots: HashMap::new(),
            order: BTreeMap::new(),
            next_tick: 0,
        }
    }

    /// The entry and when it was stored, now the most recently used.
    ///
    /// A hit only notes the tick: the order is brought up to date when an
    /// eviction meets the entry (see [`Lru::evict_one`]), so a hit, which is
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

    /// Evicts the least recently used entry; false if there is none. Entries
    /// used since they were filed are filed again under their last use on
    /// the way: each use is refiled at most once.
    fn evict_one(&mut self) -> bool {
        while let Some((filed, oldest)) = self.order.pop_first() {
            let Some(slot) = self.slots.get_mut(&oldest) else {
                continue;
            };
            if slot.tick != filed {
                slot.filed = slot.tick;
                self.order.insert(slot.tick, oldest);
                continue;
            }
            if let Some(evicted) = self.slots.remove(&oldest) {
                self.used -= evicted.weight;
            }
            return true;
        }
        false
    }

    /// Stores an entry at `now`, evicting the least recently used
    /// until it fits; one heavier than the whole capacity is not stored.
    pub(super) fn insert(&mut self, key: K, value: V, weight: usize, now: Instant) {
        self.remove(&key);
        if weight > self.capacity {
            return;
        }
        while self.used + weight > self.capacity {
            if !self.evict_one() {
                break;
            }
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        self.order.insert(tick, key.clone());
        self.used += weight;
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
            self.order.remove(&old.filed);
            self.used -= old.weight;
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
    pub(super) fn used(&self) -> usize {
        self.used
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
        assert_eq!(lru.used(), 30);
        lru.insert("huge", 5, 31, t0);
        assert_eq!(lru.touch(&"huge"), None, "heavier than the capacity");
        lru.insert("a", 6, 5, t0);
        assert_eq!(lru.used(), 25, "re-inserting replaces the old weight");
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
            2,
            "a refiled entry is removed from the order too"
        );
        lru.insert("f", 0, 1, t0);
        lru.insert("g", 0, 1, t0);
        assert!(lru.touch(&"d").is_none(), "d, used before e, went first");
        assert_eq!(lru.order.len(), lru.slots.len(), "every key filed once");
    }
}
