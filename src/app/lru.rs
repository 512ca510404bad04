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
    /// Position in the recency order.
    tick: u64,
}

pub(super) struct Lru<K, V> {
    capacity: usize,
    used: usize,
    slots: HashMap<K, Slot<V>>,
    /// Recency order: the smallest tick is the least recently used.
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

    /// The entry and when it was stored, moved to the recent end.
    pub(super) fn touch<Q>(&mut self, key: &Q) -> Option<(V, Instant)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = self.slots.get_mut(key)?;
        // Reuse the key the order held rather than cloning one.
        if let Some(owned) = self.order.remove(&slot.tick) {
            slot.tick = self.next_tick;
            self.order.insert(slot.tick, owned);
        }
        self.next_tick += 1;
        Some((slot.value.clone(), slot.checked))
    }

    /// Stores an entry at `now`, evicting the least recently used
    /// until it fits; one heavier than the whole capacity is not stored.
    pub(super) fn insert(&mut self, key: K, value: V, weight: usize, now: Instant) {
        self.remove(&key);
        if weight > self.capacity {
            return;
        }
        while self.used + weight > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(evicted) = self.slots.remove(&oldest) {
                self.used -= evicted.weight;
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
            },
        );
    }

    pub(super) fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(old) = self.slots.remove(key) {
            self.order.remove(&old.tick);
            self.used -= old.weight;
        }
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
}
