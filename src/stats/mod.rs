//! What the status page shows: counters kept where things happen (each
//! driver, each session, each file cache) and summed when someone looks.
//!
//! Each set of counters belongs to one driver (an event loop, or the threaded
//! models' connections together) or one cache, and is registered with the
//! process's [`Registry`] when it is made. The counters are atomics with
//! relaxed ordering: a status page needs a picture that is right to within a
//! request, never a point of synchronisation, and an uncontended relaxed
//! increment costs the loop a few nanoseconds.

pub(crate) mod live;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every set of counters in the process.
#[derive(Debug)]
pub(crate) struct Registry {
    started: Instant,
    drivers: Mutex<Vec<Arc<DriverStats>>>,
    caches: Mutex<Vec<Arc<CacheStats>>>,
    refusals: Arc<Refusals>,
    /// The name of each site slot given out so far, by slot.
    sites: Mutex<Vec<String>>,
}

impl Registry {
    pub(crate) fn new() -> Arc<Registry> {
        Arc::new(Registry {
            started: Instant::now(),
            drivers: Mutex::default(),
            caches: Mutex::default(),
            refusals: Arc::default(),
            sites: Mutex::default(),
        })
    }

    /// The slot the site called `name` is counted in: the one it had
    /// before if it had one (a reload keeps a site's counts by its name),
    /// else a new one while there are fewer than [`MAX_SITES`], else
    /// [`SiteSlot::OTHER`]. Called when a set of sites is put to work, never
    /// per request.
    pub(crate) fn site_slot(&self, name: &str) -> SiteSlot {
        let mut names = lock(&self.sites);
        if let Some(slot) = names.iter().position(|n| n == name) {
            return SiteSlot::at(slot);
        }
        if names.len() >= MAX_SITES {
            return SiteSlot::OTHER;
        }
        names.push(name.to_owned());
        SiteSlot::at(names.len() - 1)
    }

    /// The process's counts of clients turned away by the limits.
    pub(crate) fn refusals(&self) -> Arc<Refusals> {
        Arc::clone(&self.refusals)
    }

    /// A new set of counters for one driver.
    pub(crate) fn driver(&self, kind: DriverKind) -> Arc<DriverStats> {
        let stats = Arc::new(DriverStats::new(kind));
        lock(&self.drivers).push(Arc::clone(&stats));
        stats
    }

    /// A new set of counters for one file cache.
    pub(crate) fn cache(&self) -> Arc<CacheStats> {
        let stats = Arc::new(CacheStats::default());
        lock(&self.caches).push(Arc::clone(&stats));
        stats
    }

    /// Everything summed, as of now.
    pub(crate) fn snapshot(&self, now: Instant) -> Snapshot {
        let mut snapshot = Snapshot {
            uptime: now.saturating_duration_since(self.started),
            responses: vec![0; RESPONSE_SLOTS],
            ..Snapshot::default()
        };
        let empty = || SiteSnapshot {
            name: String::new(),
            responses: vec![0; RESPONSE_SLOTS],
            sent_bytes: 0,
        };
        let mut sites: Vec<SiteSnapshot> = (0..SITE_SLOTS).map(|_| empty()).collect();
        for driver in lock(&self.drivers).iter() {
            driver.add_to(&mut snapshot);
            driver.add_sites_to(&mut sites);
        }
        for cache in lock(&self.caches).iter() {
            cache.add_to(&mut snapshot.cache);
        }
        snapshot.refused = self.refusals.snapshot();
        let names = lock(&self.sites);
        let name = |slot: usize| match names.get(slot) {
            Some(name) => Some(name.as_str()),
            None => (slot == SiteSlot::OTHER.index()).then_some("other"),
        };
        snapshot.sites = sites
            .into_iter()
            .enumerate()
            .filter(|(_, site)| site.sent_bytes > 0 || site.responses.iter().any(|&n| n > 0))
            .filter_map(|(slot, site)| {
                Some(SiteSnapshot {
                    name: name(slot)?.to_owned(),
                    ..site
                })
            })
            .collect();
        snapshot
    }
}

/// Sites counted one by one; any further one is counted as `other`.
pub(crate) const MAX_SITES: usize = 64;

/// Slots of per-site counters: one per site, then `other`.
const SITE_SLOTS: usize = MAX_SITES + 1;

/// Which site's counters a response counts in (see
/// [`Registry::site_slot`]): an index into fixed arrays, so counting costs
/// no lookup, no allocation and no lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SiteSlot(u8);

impl SiteSlot {
    /// What no site answered: no site named the request's host and there is
    /// no default site, no sites at all, or more than [`MAX_SITES`].
    pub(crate) const OTHER: SiteSlot = SiteSlot(MAX_SITES as u8);

    fn at(index: usize) -> SiteSlot {
        u8::try_from(index)
            .ok()
            .filter(|&i| usize::from(i) < MAX_SITES)
            .map_or(SiteSlot::OTHER, SiteSlot)
    }

    fn index(self) -> usize {
        usize::from(self.0).min(MAX_SITES)
    }
}

/// One site's counters.
#[derive(Debug)]
struct SiteCounters {
    responses: [AtomicU64; RESPONSE_SLOTS],
    sent_bytes: AtomicU64,
}

impl Default for SiteCounters {
    fn default() -> SiteCounters {
        SiteCounters {
            responses: std::array::from_fn(|_| AtomicU64::new(0)),
            sent_bytes: AtomicU64::new(0),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a connection is doing, as the status page counts it (the way
/// nginx's stub_status has reading, writing and waiting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Its TLS handshake is under way.
    Handshake,
    /// A request (its head or its body) is arriving.
    Reading,
    /// An answer is being made or sent.
    Writing,
    /// Idle between requests (keep-alive).
    Waiting,
    /// Finishing: no more requests will be read.
    Closing,
}

impl Phase {
    pub(crate) const ALL: [Phase; 5] = [
        Phase::Handshake,
        Phase::Reading,
        Phase::Writing,
        Phase::Waiting,
        Phase::Closing,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Handshake => "handshake",
            Phase::Reading => "reading",
            Phase::Writing => "writing",
            Phase::Waiting => "waiting",
            Phase::Closing => "closing",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Which kind of driver keeps a set of counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DriverKind {
    /// An event loop: it also counts its turns.
    Loop,
    /// The threaded models' connections.
    Threads,
}

/// Buckets of the events-per-turn histogram: 0, 1, 2-3, 4-7, ..., 512 and up.
pub(crate) const EVENT_BUCKETS: usize = 11;

/// The bucket `events` falls in.
fn bucket(events: usize) -> usize {
    match events {
        0 => 0,
        n => (usize::BITS - n.leading_zeros()).min(EVENT_BUCKETS as u32 - 1) as usize,
    }
}

/// The largest count in bucket `index` (`None` for the last, unbounded one).
pub(crate) fn bucket_bound(index: usize) -> Option<u64> {
    match index {
        0 => Some(0),
        i if i + 1 < EVENT_BUCKETS => Some((1u64 << i) - 1),
        _ => None,
    }
}

/// The statuses counted one by one: every one oneloop answers with. Any
/// other is counted in its class (`1xx` ... `5xx`), after these.
pub(crate) const CODES: [u16; 31] = [
    200, 201, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 406, 408, 411, 412,
    413, 414, 416, 417, 421, 429, 431, 500, 501, 503, 505, 507,
];

/// Counters of responses: one per code of [`CODES`], then one per class.
pub(crate) const RESPONSE_SLOTS: usize = CODES.len() + 5;

/// The slot `code` is counted in: a binary search of 31 sorted codes (five
/// comparisons), no allocation, no lock.
fn response_slot(code: u16) -> usize {
    match CODES.binary_search(&code) {
        Ok(index) => index,
        Err(_) => CODES.len() + usize::from(code / 100).clamp(1, 5) - 1,
    }
}

/// What slot `index` counts: a code, or a class (`4xx`).
pub(crate) fn response_label(index: usize) -> String {
    match CODES.get(index) {
        Some(code) => code.to_string(),
        None => format!("{}xx", index - CODES.len() + 1),
    }
}

/// Why a request was refused, by the status it was answered with: the
/// protocol's limits, its malformed requests, the password gate.
pub(crate) const REJECTIONS: [(u16, &str); 6] = [
    (400, "bad_request"),
    (401, "unauthorized"),
    (408, "timeout"),
    (413, "body_too_large"),
    (414, "request_line_too_long"),
    (431, "head_too_large"),
];

/// One driver's counters.
#[derive(Debug)]
pub(crate) struct DriverStats {
    kind: DriverKind,
    /// Open connections by phase.
    phases: [AtomicI64; 5],
    accepted: AtomicU64,
    requests: AtomicU64,
    body_bytes: AtomicU64,
    /// Responses answered, by status ([`response_slot`]).
    responses: [AtomicU64; RESPONSE_SLOTS],
    /// Responses and bytes by site ([`SiteSlot`]), boxed: 18 KiB.
    sites: Box<[SiteCounters]>,
    turns: AtomicU64,
    events: AtomicU64,
    events_per_turn: [AtomicU64; EVENT_BUCKETS],
    timers: AtomicU64,
    accept_pauses: AtomicU64,
    /// What the loop last published of itself (event loops only).
    live: Mutex<Option<live::LoopView>>,
    /// The status page asked for views since the loop last published one.
    view_wanted: AtomicBool,
}

impl DriverStats {
    fn new(kind: DriverKind) -> DriverStats {
        DriverStats {
            kind,
            phases: Default::default(),
            accepted: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
            responses: std::array::from_fn(|_| AtomicU64::new(0)),
            sites: (0..SITE_SLOTS).map(|_| SiteCounters::default()).collect(),
            turns: AtomicU64::new(0),
            events: AtomicU64::new(0),
            events_per_turn: Default::default(),
            timers: AtomicU64::new(0),
            accept_pauses: AtomicU64::new(0),
            live: Mutex::new(None),
            view_wanted: AtomicBool::new(false),
        }
    }

    /// Whether the status page asked for a new view since the loop last
    /// published one.
    pub(crate) fn view_wanted(&self) -> bool {
        self.view_wanted.load(Relaxed)
    }

    /// A loop's view of itself, replacing the last one it published.
    pub(crate) fn publish(&self, view: live::LoopView) {
        *lock(&self.live) = Some(view);
        self.view_wanted.store(false, Relaxed);
    }

    /// A connection was accepted, in `phase`.
    pub(crate) fn opened(&self, phase: Phase) {
        self.accepted.fetch_add(1, Relaxed);
        self.phases[phase.index()].fetch_add(1, Relaxed);
    }

    /// A connection went from one phase to another.
    pub(crate) fn moved(&self, from: Phase, to: Phase) {
        if from != to {
            self.phases[from.index()].fetch_sub(1, Relaxed);
            self.phases[to.index()].fetch_add(1, Relaxed);
        }
    }

    /// A connection in `phase` closed.
    pub(crate) fn closed(&self, phase: Phase) {
        self.phases[phase.index()].fetch_sub(1, Relaxed);
    }

    /// A response of `site` went out whole or cut short, with this much of
    /// its body.
    pub(crate) fn delivered(&self, body_bytes: u64, site: SiteSlot) {
        self.requests.fetch_add(1, Relaxed);
        self.body_bytes.fetch_add(body_bytes, Relaxed);
        self.sites[site.index()]
            .sent_bytes
            .fetch_add(body_bytes, Relaxed);
    }

    /// A request was answered with `code` by `site` (counted as it is
    /// queued, whether or not the client reads it).
    pub(crate) fn answered(&self, code: u16, site: SiteSlot) {
        let slot = response_slot(code);
        self.responses[slot].fetch_add(1, Relaxed);
        self.sites[site.index()].responses[slot].fetch_add(1, Relaxed);
    }

    fn add_sites_to(&self, totals: &mut [SiteSnapshot]) {
        for (total, site) in totals.iter_mut().zip(self.sites.iter()) {
            total.sent_bytes += site.sent_bytes.load(Relaxed);
            for (sum, count) in total.responses.iter_mut().zip(&site.responses) {
                *sum += count.load(Relaxed);
            }
        }
    }

    /// A loop turn that handled `events` readiness events.
    pub(crate) fn turn(&self, events: usize) {
        self.turns.fetch_add(1, Relaxed);
        self.events
            .fetch_add(u64::try_from(events).unwrap_or(u64::MAX), Relaxed);
        self.events_per_turn[bucket(events)].fetch_add(1, Relaxed);
    }

    /// Timers in the loop's heap now.
    pub(crate) fn set_timers(&self, armed: usize) {
        self.timers
            .store(u64::try_from(armed).unwrap_or(u64::MAX), Relaxed);
    }

    /// Accepting was held back (the cap, or no descriptors).
    pub(crate) fn accept_paused(&self) {
        self.accept_pauses.fetch_add(1, Relaxed);
    }

    fn add_to(&self, snapshot: &mut Snapshot) {
        for (total, count) in snapshot.connections.iter_mut().zip(&self.phases) {
            *total += u64::try_from(count.load(Relaxed)).unwrap_or(0);
        }
        snapshot.accepted += self.accepted.load(Relaxed);
        snapshot.requests += self.requests.load(Relaxed);
        snapshot.body_bytes += self.body_bytes.load(Relaxed);
        for (total, count) in snapshot.responses.iter_mut().zip(&self.responses) {
            *total += count.load(Relaxed);
        }
        snapshot.accept_pauses += self.accept_pauses.load(Relaxed);
        if let Some(view) = lock(&self.live).as_ref() {
            snapshot.live.push(view.clone());
        }
        // Someone is looking: each loop publishes again at the start of its
        // next turn (the next request for the page wakes an idle one).
        self.view_wanted.store(true, Relaxed);
        if self.kind == DriverKind::Loop {
            snapshot.loops += 1;
            snapshot.turns += self.turns.load(Relaxed);
            snapshot.events += self.events.load(Relaxed);
            snapshot.timers += self.timers.load(Relaxed);
            for (total, count) in snapshot
                .events_per_turn
                .iter_mut()
                .zip(&self.events_per_turn)
            {
                *total += count.load(Relaxed);
            }
        }
    }
}

/// Clients turned away by the per-client limits (`src/clients/`), by reason.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    /// Closed at accept: `--deny`, or not in `--allow`.
    pub(crate) denied: AtomicU64,
    /// Answered 503: over `--max-connections-per-ip`.
    pub(crate) too_many_connections: AtomicU64,
    /// Answered 429: over `--rate-per-ip`.
    pub(crate) rate_limited: AtomicU64,
}

impl Refusals {
    fn snapshot(&self) -> RefusedSnapshot {
        RefusedSnapshot {
            denied: self.denied.load(Relaxed),
            too_many_connections: self.too_many_connections.load(Relaxed),
            rate_limited: self.rate_limited.load(Relaxed),
        }
    }
}

/// One file cache's counters.
#[derive(Debug, Default)]
pub(crate) struct CacheStats {
    hits: AtomicU64,
    revalidations: AtomicU64,
    misses: AtomicU64,
    bytes_held: AtomicU64,
    files_open: AtomicU64,
    entries: AtomicU64,
}

impl CacheStats {
    /// Served from the cache without a system call.
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Relaxed);
    }

    /// Found, but old enough to be checked against the file system.
    pub(crate) fn revalidated(&self) {
        self.revalidations.fetch_add(1, Relaxed);
    }

    pub(crate) fn missed(&self) {
        self.misses.fetch_add(1, Relaxed);
    }

    /// What the cache holds now: bytes (every entry's whole footprint),
    /// open descriptors, entries.
    pub(crate) fn set_held(&self, bytes: usize, files_open: usize, entries: usize) {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        self.bytes_held.store(count(bytes), Relaxed);
        self.files_open.store(count(files_open), Relaxed);
        self.entries.store(count(entries), Relaxed);
    }

    fn add_to(&self, totals: &mut CacheSnapshot) {
        totals.hits += self.hits.load(Relaxed);
        totals.revalidations += self.revalidations.load(Relaxed);
        totals.misses += self.misses.load(Relaxed);
        totals.bytes_held += self.bytes_held.load(Relaxed);
        totals.files_open += self.files_open.load(Relaxed);
        totals.entries += self.entries.load(Relaxed);
    }
}

/// Every counter of the process, summed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub uptime: Duration,
    /// Open connections, by [`Phase::ALL`]'s order.
    pub connections: [u64; 5],
    pub accepted: u64,
    pub requests: u64,
    pub body_bytes: u64,
    /// Responses by status, in [`response_label`]'s slots.
    /// (A vector: arrays this long have no `Default`; a snapshot is made
    /// per scrape, never per request.)
    pub responses: Vec<u64>,
    pub accept_pauses: u64,
    /// Event loops (none in the threaded models).
    pub loops: u64,
    pub turns: u64,
    pub events: u64,
    pub events_per_turn: [u64; EVENT_BUCKETS],
    pub timers: u64,
    pub cache: CacheSnapshot,
    pub refused: RefusedSnapshot,
    /// Each event loop's view of itself, as it last published it.
    pub live: Vec<live::LoopView>,
    /// The sites that answered or sent anything, in the order their slots
    /// were given, `other` last.
    pub sites: Vec<SiteSnapshot>,
}

/// One site's counters, summed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SiteSnapshot {
    pub name: String,
    /// By status, in [`response_label`]'s slots.
    pub responses: Vec<u64>,
    /// Response body bytes sent.
    pub sent_bytes: u64,
}

impl SiteSnapshot {
    /// The statuses it answered at least once, and how many times.
    pub(crate) fn responses_by_status(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        let counted = self.responses.iter().enumerate();
        counted
            .filter(|(_, count)| **count > 0)
            .map(|(index, count)| (response_label(index), *count))
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RefusedSnapshot {
    pub denied: u64,
    pub too_many_connections: u64,
    pub rate_limited: u64,
}

impl Snapshot {
    pub(crate) fn open_connections(&self) -> u64 {
        self.connections.iter().sum()
    }

    /// The responses answered with `code`.
    pub(crate) fn responses_with(&self, code: u16) -> u64 {
        self.responses
            .get(response_slot(code))
            .copied()
            .unwrap_or(0)
    }

    /// The statuses answered at least once, and how many times.
    pub(crate) fn responses_by_status(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        let counted = self.responses.iter().enumerate();
        counted
            .filter(|(_, count)| **count > 0)
            .map(|(index, count)| (response_label(index), *count))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CacheSnapshot {
    pub hits: u64,
    pub revalidations: u64,
    pub misses: u64,
    pub bytes_held: u64,
    pub files_open: u64,
    pub entries: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fall_in_power_of_two_buckets() {
        let cases = [
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 2),
            (4, 3),
            (7, 3),
            (8, 4),
            (511, 9),
        ];
        for (events, expected) in cases {
            assert_eq!(bucket(events), expected, "{events}");
        }
        assert_eq!(bucket(512), 10);
        assert_eq!(bucket(usize::MAX), 10);
        assert_eq!(bucket_bound(0), Some(0));
        assert_eq!(bucket_bound(1), Some(1));
        assert_eq!(bucket_bound(2), Some(3));
        assert_eq!(bucket_bound(9), Some(511));
        assert_eq!(bucket_bound(10), None);
    }

    #[test]
    fn responses_count_by_code_and_else_by_class() {
        assert!(
            CODES.windows(2).all(|w| w[0] < w[1]),
            "sorted, for the search"
        );
        let registry = Registry::new();
        let (one, two) = (
            registry.driver(DriverKind::Loop),
            registry.driver(DriverKind::Loop),
        );
        for code in [200, 200, 404, 418, 599, 102] {
            one.answered(code, SiteSlot::OTHER);
        }
        two.answered(404, SiteSlot::OTHER);
        let snapshot = registry.snapshot(Instant::now());
        assert_eq!(snapshot.responses_with(200), 2);
        assert_eq!(snapshot.responses_with(404), 2, "summed over the drivers");
        let all: Vec<(String, u64)> = snapshot.responses_by_status().collect();
        let all: Vec<(&str, u64)> = all.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        assert_eq!(
            all,
            [("200", 2), ("404", 2), ("1xx", 1), ("4xx", 1), ("5xx", 1)]
        );
    }

    #[test]
    fn sites_keep_their_slots_by_name_and_count_apart() {
        let registry = Registry::new();
        let a = registry.site_slot("a.example");
        let b = registry.site_slot("b.example");
        assert_eq!(registry.site_slot("a.example"), a, "a reload keeps it");
        assert_ne!(a, b);
        for n in 0..MAX_SITES {
            registry.site_slot(&format!("s{n}.example"));
        }
        assert_eq!(registry.site_slot("late.example"), SiteSlot::OTHER);
        let driver = registry.driver(DriverKind::Loop);
        driver.answered(200, a);
        driver.answered(404, a);
        driver.answered(404, b);
        driver.delivered(7, a);
        driver.answered(200, SiteSlot::OTHER);
        let snapshot = registry.snapshot(Instant::now());
        let names: Vec<&str> = snapshot.sites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["a.example", "b.example", "other"],
            "only those counted"
        );
        let of = |i: usize| snapshot.sites[i].responses_by_status().collect::<Vec<_>>();
        assert_eq!(of(0), [("200".to_owned(), 1), ("404".to_owned(), 1)]);
        assert_eq!(of(1), [("404".to_owned(), 1)]);
        assert_eq!(snapshot.sites[0].sent_bytes, 7);
        assert_eq!(snapshot.responses_with(404), 2, "the totals still sum them");
    }

    #[test]
    fn a_snapshot_sums_every_driver_and_cache() {
        let registry = Registry::new();
        let first = registry.driver(DriverKind::Loop);
        let second = registry.driver(DriverKind::Loop);
        let threads = registry.driver(DriverKind::Threads);
        first.opened(Phase::Reading);
        first.moved(Phase::Reading, Phase::Writing);
        first.delivered(100, SiteSlot::OTHER);
        first.moved(Phase::Writing, Phase::Waiting);
        second.opened(Phase::Handshake);
        threads.opened(Phase::Reading);
        threads.closed(Phase::Reading);
        first.turn(3);
        second.turn(0);
        threads.turn(5); // threads keep no turns: not counted
        first.set_timers(2);
        first.accept_paused();
        let cache = registry.cache();
        cache.hit();
        cache.hit();
        cache.missed();
        cache.set_held(4096, 1, 3);
        let snapshot = registry.snapshot(Instant::now());
        assert_eq!(snapshot.connections, [1, 0, 0, 1, 0]);
        assert_eq!(snapshot.open_connections(), 2);
        assert_eq!(snapshot.accepted, 3);
        assert_eq!((snapshot.requests, snapshot.body_bytes), (1, 100));
        assert_eq!((snapshot.loops, snapshot.turns, snapshot.events), (2, 2, 3));
        assert_eq!(snapshot.events_per_turn[0], 1);
        assert_eq!(snapshot.events_per_turn[2], 1);
        assert_eq!((snapshot.timers, snapshot.accept_pauses), (2, 1));
        assert_eq!(
            snapshot.cache,
            CacheSnapshot {
                hits: 2,
                revalidations: 0,
                misses: 1,
                bytes_held: 4096,
                files_open: 1,
                entries: 3,
            }
        );
    }
}
