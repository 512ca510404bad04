//! The table of clients: one slot per address seen, of a size fixed at start.
//!
//! A slot holds what the limits need to know of one client: how many
//! connections it holds now, and its bucket of request tokens. A connection
//! admitted holds its client's slot by index (a [`Hold`](super::Hold)), so a
//! request's check costs no lookup at all; the address is hashed once per
//! connection.
//!
//! The table never grows and allocates nothing once made: the map is sized
//! for every slot, and a new address takes a slot no connection holds, the
//! least recently seen of them (nginx's `limit_req` zones do the same with
//! their shared memory). A slot some connection holds is never taken; the
//! table has more slots than the server has connections, so there is always
//! one that is free.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// A client as the limits count it: an IPv4 address, or an IPv6 /64 (one
/// host usually has a whole /64 to itself, so counting its addresses one by
/// one would let it take as many slots as it likes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    V4(u32),
    V6(u64),
}

impl ClientKey {
    pub(crate) fn of(ip: IpAddr) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientKey::V4(v4.to_bits()),
            IpAddr::V6(v6) => ClientKey::V6((v6.to_bits() >> 64) as u64),
        }
    }
}

/// A slot's index.
pub(crate) type SlotId = u32;

/// No slot: the end of the list.
const NONE: SlotId = SlotId::MAX;

/// What is known of one client.
#[derive(Debug)]
struct Slot {
    key: ClientKey,
    /// Connections it holds now; while any, the slot is not on the list.
    connections: u32,
    /// Request tokens left, and when they were last counted.
    tokens: f64,
    counted: Instant,
    /// The list of slots nobody holds, most recently seen first.
    newer: SlotId,
    older: SlotId,
}

/// A token bucket's settings: `per_second` tokens added, `burst` at most held.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bucket {
    pub per_second: f64,
    pub burst: f64,
}

#[derive(Debug)]
pub(super) struct Table {
    index: HashMap<ClientKey, SlotId>,
    slots: Vec<Slot>,
    capacity: usize,
    /// The most and the least recently seen slot nobody holds.
    newest: SlotId,
    oldest: SlotId,
}

/// Why a client could not be given a slot.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Full {
    /// It holds as many connections as it may.
    AtItsCap,
    /// Every slot is held (more clients than the table was made for).
    NoSlot,
}

impl Table {
    /// A table of `capacity` slots (at least one), with all its memory.
    pub(super) fn new(capacity: usize) -> Table {
        let capacity = capacity.clamp(1, NONE as usize);
        Table {
            index: HashMap::with_capacity(capacity),
            slots: Vec::with_capacity(capacity),
            capacity,
            newest: NONE,
            oldest: NONE,
        }
    }

    /// A connection of `key` begins: its slot (found, or taken from the least
    /// recently seen), unless it already holds `cap` connections.
    pub(super) fn connect(
        &mut self,
        key: ClientKey,
        cap: Option<u32>,
        bucket: Option<Bucket>,
        now: Instant,
    ) -> Result<SlotId, Full> {
        let id = match self.index.get(&key) {
            Some(&id) => id,
            None => self.take_slot(key, bucket, now)?,
        };
        let slot = self.slot_mut(id).ok_or(Full::NoSlot)?;
        if cap.is_some_and(|cap| slot.connections >= cap) {
            return Err(Full::AtItsCap);
        }
        slot.connections += 1;
        if slot.connections == 1 {
            self.unlink(id);
        }
        Ok(id)
    }

    /// A connection of the slot's client ended.
    pub(super) fn disconnect(&mut self, id: SlotId) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        slot.connections = slot.connections.saturating_sub(1);
        if slot.connections == 0 {
            self.link_newest(id);
        }
    }

    /// Takes a request token from the slot's client; if none is left, the
    /// seconds until one is.
    pub(super) fn take_token(
        &mut self,
        id: SlotId,
        bucket: Bucket,
        now: Instant,
    ) -> Result<(), f64> {
        let Some(slot) = self.slot_mut(id) else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(slot.counted).as_secs_f64();
        slot.tokens = (slot.tokens + elapsed * bucket.per_second).min(bucket.burst);
        slot.counted = now;
        if slot.tokens >= 1.0 {
            slot.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - slot.tokens) / bucket.per_second)
        }
    }

    /// Connections the client of `key` holds now.
    #[cfg(test)]
    pub(super) fn connections(&self, key: ClientKey) -> u32 {
        self.index
            .get(&key)
            .and_then(|&id| self.slots.get(id as usize))
            .map_or(0, |slot| slot.connections)
    }

    /// Clients known now.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    fn slot_mut(&mut self, id: SlotId) -> Option<&mut Slot> {
        self.slots.get_mut(id as usize)
    }

    /// A slot for a client not in the table: a new one while there is room,
    /// then the least recently seen that nobody holds.
    fn take_slot(
        &mut self,
        key: ClientKey,
        bucket: Option<Bucket>,
        now: Instant,
    ) -> Result<SlotId, Full> {
        let fresh = Slot {
            key,
            connections: 0,
            tokens: bucket.map_or(0.0, |b| b.burst),
            counted: now,
            newer: NONE,
            older: NONE,
        };
        let id = if self.slots.len() < self.capacity {
            self.slots.push(fresh);
            (self.slots.len() - 1) as SlotId
        } else {
            let id = self.oldest;
            self.unlink(id);
            let slot = self.slot_mut(id).ok_or(Full::NoSlot)?;
            let forgotten = std::mem::replace(slot, fresh).key;
            self.index.remove(&forgotten);
            id
        };
        self.index.insert(key, id);
        self.link_newest(id);
        Ok(id)
    }

    /// Takes a slot off the list of those nobody holds.
    fn unlink(&mut self, id: SlotId) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        let (newer, older) = (slot.newer, slot.older);
        slot.newer = NONE;
        slot.older = NONE;
        if let Some(n) = self.slot_mut(newer) {
            n.older = older;
        } else if self.newest == id {
            self.newest = older;
        }
        if let Some(o) = self.slot_mut(older) {
            o.newer = newer;
        } else if self.oldest == id {
            self.oldest = newer;
        }
    }

    /// Puts a slot nobody holds at the front of the list: seen just now.
    fn link_newest(&mut self, id: SlotId) {
        let previous = self.newest;
        if let Some(slot) = self.slot_mut(id) {
            slot.older = previous;
            slot.newer = NONE;
        }
        match self.slot_mut(previous) {
            Some(p) => p.newer = id,
            None => self.oldest = id,
        }
        self.newest = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn v4(last: u8) -> ClientKey {
        ClientKey::of(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(a), ClientKey::of(b));
        assert_ne!(ClientKey::of(a), ClientKey::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ClientKey::of(mapped), v4(7));
    }

    #[test]
    fn a_client_holds_at_most_its_cap_and_gets_it_back() {
        let now = Instant::now();
        let mut table = Table::new(8);
        let held: Vec<SlotId> = (0..3)
            .map(|_| table.connect(v4(1), Some(3), None, now).unwrap())
            .collect();
        assert_eq!(
            table.connect(v4(1), Some(3), None, now),
            Err(Full::AtItsCap)
        );
        assert!(
            table.connect(v4(2), Some(3), None, now).is_ok(),
            "others are not held back"
        );
        table.disconnect(held[0]);
        assert_eq!(table.connections(v4(1)), 2);
        assert!(table.connect(v4(1), Some(3), None, now).is_ok());
    }

    #[test]
    fn the_table_keeps_its_size_and_forgets_the_least_recently_seen() {
        let now = Instant::now();
        let mut table = Table::new(4);
        for last in 1..=4 {
            let id = table.connect(v4(last), None, None, now).unwrap();
            table.disconnect(id);
        }
        // Seen again: now the most recent.
        let id = table.connect(v4(1), None, None, now).unwrap();
        table.disconnect(id);
        let id = table.connect(v4(5), None, None, now).unwrap();
        table.disconnect(id);
        assert_eq!(table.len(), 4);
        assert!(table.index.contains_key(&v4(1)));
        assert!(
            !table.index.contains_key(&v4(2)),
            "2 was the least recently seen"
        );
        for last in 6..200 {
            let id = table.connect(v4(last), None, None, now).unwrap();
            table.disconnect(id);
            assert_eq!(table.len(), 4);
        }
        assert_eq!(table.slots.capacity(), 4, "and it never grew");
        assert!(table.index.capacity() >= 4);
    }

    #[test]
    fn a_held_slot_is_never_taken() {
        let now = Instant::now();
        let mut table = Table::new(2);
        let a = table.connect(v4(1), None, None, now).unwrap();
        let _b = table.connect(v4(2), None, None, now).unwrap();
        assert_eq!(table.connect(v4(3), None, None, now), Err(Full::NoSlot));
        table.disconnect(a);
        assert!(
            table.connect(v4(3), None, None, now).is_ok(),
            "1's slot, now free"
        );
        assert_eq!(table.connections(v4(2)), 1, "2 kept its slot");
    }

    #[test]
    fn a_bucket_lets_a_burst_through_then_its_rate() {
        let t0 = Instant::now();
        let bucket = Bucket {
            per_second: 2.0,
            burst: 3.0,
        };
        let mut table = Table::new(4);
        let id = table.connect(v4(1), None, Some(bucket), t0).unwrap();
        for _ in 0..3 {
            assert_eq!(table.take_token(id, bucket, t0), Ok(()));
        }
        let wait = table.take_token(id, bucket, t0).unwrap_err();
        assert!((wait - 0.5).abs() < 1e-9, "{wait}");
        let later = t0 + Duration::from_millis(500);
        assert_eq!(table.take_token(id, bucket, later), Ok(()));
        assert!(table.take_token(id, bucket, later).is_err());
        // A long pause refills the burst, never more.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(table.take_token(id, bucket, much_later), Ok(()));
        }
        assert!(table.take_token(id, bucket, much_later).is_err());
        // Its bucket outlives its connections while its slot does.
        table.disconnect(id);
        let again = table
            .connect(v4(1), None, Some(bucket), much_later)
            .unwrap();
        assert!(table.take_token(again, bucket, much_later).is_err());
    }
}
