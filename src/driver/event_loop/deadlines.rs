//! Connection deadlines for the loop: a min-heap of (deadline, connection).
//!
//! The loop's `poll` timeout is the nearest deadline. Entries are never removed
//! when a deadline moves; instead each connection remembers the one deadline it
//! armed, and a popped entry that does not match it is stale and skipped. A
//! deadline that moves later is not re-armed at all: when the earlier entry fires,
//! the connection is asked again and re-arms for the real time. Stale entries are
//! swept when they outnumber the live ones, so the heap stays proportional to the
//! number of connections.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Which connection a deadline belongs to: its slab key and the serial number
/// that tells it apart from a later connection reusing the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Owner {
    pub(super) key: usize,
    pub(super) serial: u64,
}

#[derive(Debug, Default)]
pub(super) struct Deadlines {
    heap: BinaryHeap<Reverse<(Instant, Owner)>>,
}

impl Deadlines {
    pub(super) fn arm(&mut self, at: Instant, owner: Owner) {
        self.heap.push(Reverse((at, owner)));
    }

    /// The nearest deadline, stale or not (waking early for a stale one is harmless).
    pub(super) fn nearest(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Moves every entry due by `now` into `due`, earliest first.
    pub(super) fn take_due(&mut self, now: Instant, due: &mut Vec<(Instant, Owner)>) {
        while let Some(Reverse((at, _))) = self.heap.peek()
            && *at <= now
        {
            if let Some(Reverse(entry)) = self.heap.pop() {
                due.push(entry);
            }
        }
    }

    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Drops every entry `is_live` rejects.
    pub(super) fn sweep(&mut self, mut is_live: impl FnMut(Instant, Owner) -> bool) {
        self.heap
            .retain(|Reverse((at, owner))| is_live(*at, *owner));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_only_when_due() {
        let t0 = Instant::now();
        let mut deadlines = Deadlines::default();
        let owner = |key| Owner { key, serial: 0 };
        deadlines.arm(t0 + Duration::from_secs(2), owner(2));
        deadlines.arm(t0 + Duration::from_secs(1), owner(1));
        assert_eq!(deadlines.nearest(), Some(t0 + Duration::from_secs(1)));
        let mut due = Vec::new();
        deadlines.take_due(t0, &mut due);
        assert!(due.is_empty());
        deadlines.take_due(t0 + Duration::from_secs(5), &mut due);
        let keys: Vec<usize> = due.iter().map(|(_, o)| o.key).collect();
        assert_eq!(keys, vec![1, 2], "earliest first");
        assert!(deadlines.is_empty());
    }

    #[test]
    fn sweeping_keeps_only_live_entries() {
        let t0 = Instant::now();
        let mut deadlines = Deadlines::default();
        for key in 0..10 {
            deadlines.arm(t0, Owner { key, serial: 0 });
        }
        deadlines.sweep(|_, owner| owner.key % 2 == 0);
        assert_eq!(deadlines.len(), 5);
    }
}
