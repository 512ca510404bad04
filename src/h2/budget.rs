//! When a peer's frames stop being use and start being abuse.
//!
//! Some frames make the server work and serve nothing: a SETTINGS or a PING
//! is answered, an empty DATA frame, a PRIORITY or an unknown frame is
//! parsed and dropped, and a stream the peer resets (CVE-2023-44487, "rapid
//! reset") was opened and answered for nothing. Each is fine now and then;
//! a flood of them is an attack that no stream limit stops. So each kind
//! has a budget per window of time, which the peer's useful work (streams
//! it let us finish) raises: past it, the connection ends with GOAWAY
//! ENHANCE_YOUR_CALM, and every other connection goes on being served.
//!
//! The numbers are nginx's and h2o's order of magnitude: nginx allows a
//! reset per stream it finished plus some slack, and h2o 100 per second of
//! "idle" frames. A browser that cancels a dozen streams as a user clicks
//! away, or a client pinging every few seconds, is nowhere near.

use std::time::{Duration, Instant};

/// How long the counts run before they start again.
const WINDOW: Duration = Duration::from_secs(10);
/// Frames that do no work, per window, before any stream is finished.
const CHATTER_FLOOR: u32 = 1000;
/// More of them allowed for each stream finished in the window.
const CHATTER_PER_STREAM: u32 = 8;
/// Streams the peer resets per window, before any is finished.
const RESET_FLOOR: u32 = 100;

#[derive(Debug)]
pub(super) struct Budget {
    since: Instant,
    chatter: u32,
    resets: u32,
    finished: u32,
}

/// What was spent over its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Overspent {
    Chatter,
    Resets,
}

impl Budget {
    pub(super) fn new(now: Instant) -> Budget {
        Budget {
            since: now,
            chatter: 0,
            resets: 0,
            finished: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        if now.duration_since(self.since) >= WINDOW {
            *self = Budget::new(now);
        }
    }

    /// A stream was answered in full: the peer did some work.
    pub(super) fn finished(&mut self, now: Instant) {
        self.roll(now);
        self.finished = self.finished.saturating_add(1);
    }

    /// A frame that served nothing.
    pub(super) fn chatter(&mut self, now: Instant) -> Result<(), Overspent> {
        self.roll(now);
        self.chatter = self.chatter.saturating_add(1);
        let allowed =
            CHATTER_FLOOR.saturating_add(self.finished.saturating_mul(CHATTER_PER_STREAM));
        if self.chatter > allowed {
            return Err(Overspent::Chatter);
        }
        Ok(())
    }

    /// The peer reset a stream we had not finished.
    pub(super) fn reset(&mut self, now: Instant) -> Result<(), Overspent> {
        self.roll(now);
        self.resets = self.resets.saturating_add(1);
        if self.resets > RESET_FLOOR.saturating_add(self.finished / 2) {
            return Err(Overspent::Resets);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_and_work_buys_room() {
        let start = Instant::now();
        let mut budget = Budget::new(start);
        for _ in 0..CHATTER_FLOOR {
            assert_eq!(budget.chatter(start), Ok(()));
        }
        assert_eq!(budget.chatter(start), Err(Overspent::Chatter));

        let mut budget = Budget::new(start);
        for _ in 0..10 {
            budget.finished(start);
        }
        for _ in 0..RESET_FLOOR + 5 {
            assert_eq!(budget.reset(start), Ok(()));
        }
        assert_eq!(budget.reset(start), Err(Overspent::Resets));
    }

    #[test]
    fn the_counts_start_again_after_the_window() {
        let start = Instant::now();
        let mut budget = Budget::new(start);
        for _ in 0..RESET_FLOOR {
            assert_eq!(budget.reset(start), Ok(()));
        }
        assert_eq!(budget.reset(start + WINDOW), Ok(()));
    }
}
