//! When accepting has to wait, and what the operator is told about it.
//!
//! Two things hold newcomers back: the connection cap (`--max-connections`),
//! and running out of descriptors (`accept` fails with EMFILE). Either can
//! happen thousands of times a minute on a busy host, and either is worth
//! knowing at default verbosity, so each is a warning at most once a minute,
//! with how many times it happened since the last one and what to do about it.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::DriverStats;

/// The shortest time between two warnings about the same thing.
const WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Counts occurrences of one thing and says when to warn about them.
#[derive(Debug, Default)]
struct Alarm {
    last_warning: Option<Instant>,
    /// Occurrences since the last warning, the current one included.
    count: u64,
}

impl Alarm {
    /// One more occurrence at `now`: how many to report, if it is time to.
    fn ring(&mut self, now: Instant) -> Option<u64> {
        self.count += 1;
        let due = self
            .last_warning
            .is_none_or(|last| now.duration_since(last) >= WARNING_INTERVAL);
        if !due {
            return None;
        }
        self.last_warning = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// The warnings one accepting driver gives (each worker loop has its own).
#[derive(Debug)]
pub(super) struct Pressure {
    at_cap: Alarm,
    exhausted: Alarm,
    /// Where each pause is counted, for the status page.
    stats: Arc<DriverStats>,
}

impl Pressure {
    pub(super) fn new(stats: Arc<DriverStats>) -> Pressure {
        Pressure {
            at_cap: Alarm::default(),
            exhausted: Alarm::default(),
            stats,
        }
    }

    /// Connections are waiting and `held` are open, the most allowed.
    pub(super) fn at_cap(&mut self, held: usize, now: Instant) {
        self.stats.accept_paused();
        log::debug!("at the connection cap ({held}): not accepting");
        if let Some(count) = self.at_cap.ring(now) {
            log::warn!(
                "at the connection cap ({held} open): new clients wait in the kernel's backlog \
                 until one closes ({} since the last warning); raise --max-connections if the \
                 host can take more",
                times(count)
            );
        }
    }

    /// `accept` failed for want of descriptors or memory; accepting pauses
    /// for `backoff`.
    pub(super) fn exhausted(&mut self, error: &io::Error, backoff: Duration, now: Instant) {
        self.stats.accept_paused();
        log::debug!("accept: {error}; pausing for {backoff:?}");
        if let Some(count) = self.exhausted.ring(now) {
            let advice = match error.raw_os_error() {
                Some(libc::EMFILE) => {
                    "the process is out of descriptors: raise `ulimit -n` (LimitNOFILE= under \
                     systemd) or lower --max-connections"
                }
                _ => "the system is out of descriptors or memory",
            };
            log::warn!(
                "cannot accept: {error}; {advice}; new clients wait, retried every {backoff:?} \
                 ({} since the last warning)",
                times(count)
            );
        }
    }
}

fn times(count: u64) -> String {
    match count {
        1 => "once".to_owned(),
        n => format!("{n} times"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alarm_warns_at_once_then_at_most_once_a_minute_with_a_count() {
        let start = Instant::now();
        let mut alarm = Alarm::default();
        assert_eq!(alarm.ring(start), Some(1), "the first time is told at once");
        for second in 1..60 {
            assert_eq!(alarm.ring(start + Duration::from_secs(second)), None);
        }
        assert_eq!(
            alarm.ring(start + Duration::from_secs(60)),
            Some(60),
            "a minute later: every occurrence since, this one included"
        );
        assert_eq!(alarm.ring(start + Duration::from_secs(61)), None);
        assert_eq!(alarm.ring(start + Duration::from_secs(600)), Some(2));
    }

    #[test]
    fn counts_read_as_words() {
        assert_eq!(times(1), "once");
        assert_eq!(times(37), "37 times");
    }
}
