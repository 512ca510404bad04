//! Holding off a client that keeps failing to log in, and bounding what all
//! the password checks together may cost.
//!
//! A few failures are mistakes; more are guessing. After [`FREE_FAILURES`]
//! in a row, a client is held off for a second, then two, four, ... up to a
//! minute: while held off, its attempts are answered `429 Too Many Requests`
//! with `Retry-After`, without checking them, so guessing costs the server no
//! hashing and the guesser time. Nothing waits on the server's side: the loop
//! answers at once and goes on. A success, or a quarter of an hour without a
//! failure, clears the slate.
//!
//! Many clients guessing at once (one attempt each from many addresses) get
//! past that, so the checks themselves have a [`Budget`]: at most
//! [`CHECKS_PER_SECOND`] for the whole process, beyond which logins are
//! answered `503` with `Retry-After: 1`. A check stalls its loop for its hash's
//! time (28 ms for the argon2id `--hash-password` writes, on the 2-core
//! machine the benchmarks run on), so the budget bounds the stall to about a tenth of a
//! second in every second, whatever comes in; credentials already verified
//! (remembered) need no budget.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::app::lru::{Lru, lock};

/// Failures in a row a client may make before it is held off.
pub(super) const FREE_FAILURES: u32 = 5;
/// The first hold-off; each further failure doubles it.
const FIRST_HOLD: Duration = Duration::from_secs(1);
const LONGEST_HOLD: Duration = Duration::from_secs(60);
/// A client's failures are forgotten this long after its last one.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Clients remembered at once; the least recently failing go first.
const CLIENTS: usize = 4096;
/// Password checks the whole process makes in a second, at most.
pub(super) const CHECKS_PER_SECOND: u32 = 4;

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    held_until: Option<Instant>,
}

pub(super) struct Throttle {
    clients: Mutex<Lru<IpAddr, Failures>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            clients: Mutex::new(Lru::new(CLIENTS)),
        }
    }
}

impl Throttle {
    /// How much longer `client` is held off, if it is.
    pub(super) fn held_off(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let (failures, last) = lock(&self.clients).touch(&client)?;
        if now.saturating_duration_since(last) >= FORGET_AFTER {
            return None;
        }
        failures
            .held_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// `client` failed once more, at `now`: its failures in a row.
    pub(super) fn failed(&self, client: IpAddr, now: Instant) -> u32 {
        let mut clients = lock(&self.clients);
        let count = match clients.touch(&client) {
            Some((old, last)) if now.saturating_duration_since(last) < FORGET_AFTER => {
                old.count.saturating_add(1)
            }
            _ => 1,
        };
        let held_until = (count > FREE_FAILURES).then(|| now + hold(count));
        clients.insert(client, Failures { count, held_until }, 1, now);
        count
    }

    pub(super) fn succeeded(&self, client: IpAddr) {
        lock(&self.clients).remove(&client);
    }

    #[cfg(any(test, feature = "harness"))]
    pub(super) fn forget_all(&self) {
        *lock(&self.clients) = Lru::new(CLIENTS);
    }
}

/// A token bucket for password checks: [`CHECKS_PER_SECOND`] tokens, one
/// more every `1/CHECKS_PER_SECOND` of a second, up to that many.
pub(super) struct Budget {
    state: Mutex<(f64, Option<Instant>)>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            state: Mutex::new((f64::from(CHECKS_PER_SECOND), None)),
        }
    }
}

impl Budget {
    /// Takes a check from the budget, if there is one left at `now`.
    pub(super) fn take(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = &mut *state;
        let rate = f64::from(CHECKS_PER_SECOND);
        if let Some(last) = *last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * rate;
            *tokens = (*tokens + refill).min(rate);
        }
        *last = Some(now);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return true;
        }
        false
    }

    /// Full again.
    #[cfg(any(test, feature = "harness"))]
    pub(super) fn reset(&self) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) =
            (f64::from(CHECKS_PER_SECOND), None);
    }
}

/// How long the `count`th failure in a row holds a client off.
fn hold(count: u32) -> Duration {
    let doublings = count.saturating_sub(FREE_FAILURES + 1).min(16);
    FIRST_HOLD.saturating_mul(1 << doublings).min(LONGEST_HOLD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(last: u8) -> IpAddr {
        IpAddr::from([203, 0, 113, last])
    }

    #[test]
    fn holds_grow_from_a_second_to_a_minute() {
        assert_eq!(hold(FREE_FAILURES + 1), Duration::from_secs(1));
        assert_eq!(hold(FREE_FAILURES + 2), Duration::from_secs(2));
        assert_eq!(hold(FREE_FAILURES + 4), Duration::from_secs(8));
        assert_eq!(hold(FREE_FAILURES + 40), LONGEST_HOLD);
        assert_eq!(hold(u32::MAX), LONGEST_HOLD);
    }

    #[test]
    fn a_client_is_held_off_after_its_free_failures_and_only_it() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        for n in 1..=FREE_FAILURES {
            assert_eq!(throttle.failed(client(1), t0), n);
            assert_eq!(
                throttle.held_off(client(1), t0),
                None,
                "failure {n} is free"
            );
        }
        throttle.failed(client(1), t0);
        assert_eq!(
            throttle.held_off(client(1), t0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(throttle.held_off(client(2), t0), None, "others are not");
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(throttle.held_off(client(1), later), None, "the hold passes");
        throttle.failed(client(1), later);
        assert_eq!(
            throttle.held_off(client(1), later),
            Some(Duration::from_secs(2)),
            "and the next failure doubles it"
        );
    }

    #[test]
    fn the_budget_allows_so_many_checks_a_second() {
        let budget = Budget::default();
        let t0 = Instant::now();
        for n in 0..CHECKS_PER_SECOND {
            assert!(budget.take(t0), "check {n}");
        }
        assert!(!budget.take(t0), "spent");
        let quarter = Duration::from_secs(1) / CHECKS_PER_SECOND;
        assert!(
            budget.take(t0 + quarter),
            "one more after its share of a second"
        );
        assert!(!budget.take(t0 + quarter));
        let much_later = t0 + Duration::from_secs(60);
        for _ in 0..CHECKS_PER_SECOND {
            assert!(budget.take(much_later), "refilled, but no more than full");
        }
        assert!(!budget.take(much_later));
    }

    #[test]
    fn failures_are_remembered_for_so_many_clients_at_most() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        for n in 0..(CLIENTS as u32 + 1000) {
            throttle.failed(IpAddr::from(n.to_be_bytes()), t0);
        }
        assert_eq!(lock(&throttle.clients).len(), CLIENTS);
    }

    #[test]
    fn success_or_time_clears_the_slate() {
        let throttle = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES + 3 {
            throttle.failed(client(1), t0);
            throttle.failed(client(2), t0);
        }
        throttle.succeeded(client(1));
        assert_eq!(throttle.held_off(client(1), t0), None);
        assert_eq!(throttle.failed(client(1), t0), 1);
        let much_later = t0 + FORGET_AFTER;
        assert_eq!(throttle.held_off(client(2), much_later), None);
        assert_eq!(throttle.failed(client(2), much_later), 1, "forgotten");
    }
}
