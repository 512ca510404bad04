//! Limits per client, as nginx's `limit_conn`, `limit_req`, `allow` and
//! `deny` give them: who may connect at all ([`rules`]), how many connections
//! one client may hold, and how many requests a second it may make.
//!
//! A client is its address (the one a trusted proxy's PROXY header names,
//! when there is one), an IPv6 client its /64 ([`table::ClientKey`]). What
//! the limits remember of each lives in one table of fixed size for the whole
//! process, shared by every loop and thread behind a mutex that the single
//! loop never contends ([`table`]). A connection that is admitted holds its
//! client's slot until it closes ([`Hold`]), and its requests take their
//! tokens from that slot without a lookup.
//!
//! What a client over a limit gets:
//!
//! - denied by `--allow`/`--deny`: closed before a byte is read;
//! - over `--max-connections-per-ip`: `503 Service Unavailable` with
//!   `Retry-After`, and the connection closes (over TLS, once the handshake
//!   is done: no answer can be sent before it);
//! - over `--rate-per-ip`: `429 Too Many Requests` with `Retry-After`; the
//!   connection stays open for the requests that follow.
//!
//! Each refusal is counted by reason for the status page, and the two with
//! an answer go to the access log like any response.

pub(crate) mod rules;
pub(crate) mod table;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};

use std::time::Instant;

use crate::stats::Refusals;
pub(crate) use rules::AccessRules;
use table::{Bucket, ClientKey, Full, SlotId, Table};

/// How many clients the table holds at least, whatever the connection cap.
pub(crate) const MIN_TABLE: usize = 4096;

/// What `--max-connections-per-ip` is unless told: a browser opens six
/// connections to a host, so 64 lets ten browsers behind one NAT work at
/// once, while it takes 16 addresses to fill the default 1,024 slots.
pub(crate) const DEFAULT_CONNECTIONS_PER_IP: NonZeroU32 = NonZeroU32::new(64).unwrap();

/// The limits, as configured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientLimits {
    /// Connections one client may hold at once.
    pub connections_per_ip: Option<ConnectionCap>,
    /// Requests a second, and the burst allowed above it.
    pub rate: Option<Rate>,
    /// Who may connect.
    pub rules: AccessRules,
}

/// `--max-connections-per-ip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionCap {
    pub max: NonZeroU32,
    /// Whether loopback clients are held to it too. The default cap is for
    /// the network: on loopback the client is this host (a benchmark, a
    /// health check, a proxy in front that sends no PROXY header, whose
    /// every client would share one address), so only a cap given on the
    /// command line applies there.
    pub loopback: bool,
}

impl ConnectionCap {
    /// The cap when none is given.
    pub fn default_for_the_network() -> ConnectionCap {
        ConnectionCap {
            max: DEFAULT_CONNECTIONS_PER_IP,
            loopback: false,
        }
    }

    /// The cap that applies to `client`, if any.
    fn for_client(self, client: IpAddr) -> Option<u32> {
        (self.loopback || !client.to_canonical().is_loopback()).then_some(self.max.get())
    }
}

/// `--rate-per-ip` and `--rate-burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl ClientLimits {
    /// Whether any limit is set (without one, nothing is counted at all).
    pub fn any(&self) -> bool {
        self.connections_per_ip.is_some() || self.rate.is_some() || !self.rules.is_empty()
    }

    fn bucket(&self) -> Option<Bucket> {
        self.rate.map(|rate| Bucket {
            per_second: rate.per_second,
            burst: f64::from(rate.burst.max(1)),
        })
    }

    /// Whether connections need a slot in the table.
    fn counts_clients(&self) -> bool {
        self.connections_per_ip.is_some() || self.rate.is_some()
    }
}

/// What became of a connection asking to be served.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Served; it holds its client's slot, when there are limits to keep.
    Admitted(Option<Hold>),
    /// The client holds as many connections as it may: answer 503, close.
    TooManyConnections { retry_after: u32 },
    /// Not allowed to connect: close now.
    Denied,
}

/// The limits and what they remember, for the whole process.
#[derive(Debug)]
pub(crate) struct Clients {
    limits: ClientLimits,
    bucket: Option<Bucket>,
    table: Mutex<Table>,
    refusals: Arc<Refusals>,
}

impl Clients {
    /// The limits, with a table big enough for `max_connections` clients at
    /// once (and at least [`MIN_TABLE`]), counting refusals into `refusals`.
    pub(crate) fn new(
        limits: ClientLimits,
        max_connections: usize,
        refusals: Arc<Refusals>,
    ) -> Arc<Clients> {
        let size = match limits.counts_clients() {
            true => max_connections.saturating_mul(2).max(MIN_TABLE),
            false => 0,
        };
        Arc::new(Clients {
            bucket: limits.bucket(),
            limits,
            table: Mutex::new(Table::new(size)),
            refusals,
        })
    }

    /// Whether `client` may connect at all (`--allow`, `--deny`); counted if
    /// not.
    pub(crate) fn allows(&self, client: IpAddr) -> bool {
        let allowed = self.limits.rules.admits(client);
        if !allowed {
            self.refusals.denied.fetch_add(1, Relaxed);
        }
        allowed
    }

    /// A connection from `client` asks to be served. Its [`Hold`], if it
    /// gets one, must be given back with [`release`](Self::release) when it
    /// closes.
    pub(crate) fn admit(&self, client: IpAddr, now: Instant) -> Admission {
        if !self.allows(client) {
            return Admission::Denied;
        }
        if !self.limits.counts_clients() {
            return Admission::Admitted(None);
        }
        let cap = self
            .limits
            .connections_per_ip
            .and_then(|cap| cap.for_client(client));
        let connected = self
            .table()
            .connect(ClientKey::of(client), cap, self.bucket, now);
        match connected {
            Ok(slot) => Admission::Admitted(Some(Hold { slot })),
            Err(Full::AtItsCap | Full::NoSlot) => {
                self.refusals.too_many_connections.fetch_add(1, Relaxed);
                Admission::TooManyConnections { retry_after: 1 }
            }
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Clients the table knows now.
    #[cfg(test)]
    fn known(&self) -> usize {
        self.table().len()
    }

    /// A request on a connection holding `hold`: `Err` with the whole
    /// seconds to wait when its client has made too many lately
    /// (`--rate-per-ip`).
    pub(crate) fn take_request(&self, hold: Hold, now: Instant) -> Result<(), u32> {
        let Some(bucket) = self.bucket else {
            return Ok(());
        };
        let taken = self.table().take_token(hold.slot, bucket, now);
        taken.map_err(|wait| {
            self.refusals.rate_limited.fetch_add(1, Relaxed);
            // At least a second: Retry-After counts whole seconds.
            wait.ceil().clamp(1.0, f64::from(u32::MAX)) as u32
        })
    }

    /// The connection holding `hold` has closed.
    pub(crate) fn release(&self, hold: Hold) {
        self.table().disconnect(hold.slot);
    }
}

/// An admitted connection's hold on its client's slot: four bytes, since
/// every connection carries one (the session gives it back when it is
/// dropped, however the connection ends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hold {
    slot: SlotId,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn clients(limits: ClientLimits) -> (Arc<Clients>, Arc<Refusals>) {
        let refusals = Arc::new(Refusals::default());
        (Clients::new(limits, 16, Arc::clone(&refusals)), refusals)
    }

    #[test]
    fn without_limits_nothing_is_held_or_counted() {
        let (clients, _) = clients(ClientLimits::default());
        assert!(matches!(
            clients.admit(ip("192.0.2.1"), Instant::now()),
            Admission::Admitted(None)
        ));
        assert_eq!(clients.known(), 0);
    }

    #[test]
    fn connections_over_the_cap_are_refused_until_one_closes() {
        let (clients, refusals) = clients(ClientLimits {
            connections_per_ip: Some(ConnectionCap {
                max: NonZeroU32::new(2).unwrap(),
                loopback: true,
            }),
            ..ClientLimits::default()
        });
        let now = Instant::now();
        let Admission::Admitted(Some(first)) = clients.admit(ip("192.0.2.1"), now) else {
            panic!("admitted with a hold");
        };
        let _second = clients.admit(ip("192.0.2.1"), now);
        assert!(matches!(
            clients.admit(ip("192.0.2.1"), now),
            Admission::TooManyConnections { retry_after: 1 }
        ));
        assert!(matches!(
            clients.admit(ip("192.0.2.2"), now),
            Admission::Admitted(Some(_))
        ));
        clients.release(first);
        assert!(matches!(
            clients.admit(ip("192.0.2.1"), now),
            Admission::Admitted(Some(_))
        ));
        assert_eq!(refusals.too_many_connections.load(Relaxed), 1);
    }

    #[test]
    fn the_default_cap_leaves_loopback_alone() {
        let (clients, _) = clients(ClientLimits {
            connections_per_ip: Some(ConnectionCap {
                max: NonZeroU32::new(1).unwrap(),
                loopback: false,
            }),
            ..ClientLimits::default()
        });
        let now = Instant::now();
        let holds: Vec<_> = (0..5)
            .map(|_| clients.admit(ip("127.0.0.1"), now))
            .collect();
        assert!(
            holds
                .iter()
                .all(|a| matches!(a, Admission::Admitted(Some(_))))
        );
        let _one = clients.admit(ip("192.0.2.1"), now);
        assert!(matches!(
            clients.admit(ip("192.0.2.1"), now),
            Admission::TooManyConnections { .. }
        ));
        assert_eq!(
            ConnectionCap::default_for_the_network().max,
            DEFAULT_CONNECTIONS_PER_IP
        );
    }

    #[test]
    fn requests_over_the_rate_wait_for_a_token() {
        let (clients, refusals) = clients(ClientLimits {
            rate: Some(Rate {
                per_second: 0.5,
                burst: 2,
            }),
            ..ClientLimits::default()
        });
        let now = Instant::now();
        let Admission::Admitted(Some(hold)) = clients.admit(ip("2001:db8::1"), now) else {
            panic!("admitted with a hold");
        };
        assert_eq!(clients.take_request(hold, now), Ok(()));
        assert_eq!(clients.take_request(hold, now), Ok(()));
        assert_eq!(
            clients.take_request(hold, now),
            Err(2),
            "a token every two seconds"
        );
        assert_eq!(refusals.rate_limited.load(Relaxed), 1);
        // Another connection of the same /64 shares the bucket.
        let Admission::Admitted(Some(other)) = clients.admit(ip("2001:db8::2"), now) else {
            panic!("admitted with a hold");
        };
        assert!(clients.take_request(other, now).is_err());
    }

    #[test]
    fn denied_clients_are_counted() {
        let (clients, refusals) = clients(ClientLimits {
            rules: AccessRules::new(vec![], vec!["192.0.2.0/24".parse().unwrap()]),
            ..ClientLimits::default()
        });
        assert!(matches!(
            clients.admit(ip("192.0.2.9"), Instant::now()),
            Admission::Denied
        ));
        assert!(!clients.allows(ip("192.0.2.10")));
        assert!(clients.allows(ip("198.51.100.1")));
        assert_eq!(refusals.denied.load(Relaxed), 2);
    }
}
