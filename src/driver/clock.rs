//! The drivers' clock: read once per loop turn (or per blocking call), and
//! formatted at most once a second, into the two texts the server writes
//! dates in: the `Date` header (IMF-fixdate, RFC 9110 section 5.6.7) and the
//! access log's Common Log Format time.
//!
//! The protocol core and the application never read a clock: they get a
//! [`Now`] from here through every session verb, which is also what makes
//! their timeouts testable without sleeping.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::access_log::LogTime;
use crate::http::Now;
use crate::timefmt::Civil;

#[derive(Debug)]
pub(crate) struct Clock {
    instant: Instant,
    wall: SystemTime,
    /// The whole second the texts are for.
    second: u64,
    date: String,
    log_time: String,
    log_time_rfc3339: String,
}

impl Default for Clock {
    fn default() -> Self {
        let mut clock = Clock {
            instant: Instant::now(),
            wall: SystemTime::now(),
            second: u64::MAX,
            date: String::new(),
            log_time: String::new(),
            log_time_rfc3339: String::new(),
        };
        clock.format();
        clock
    }
}

impl Clock {
    /// Reads the clocks; reformats the texts only when the second has changed.
    pub(crate) fn tick(&mut self) -> Instant {
        self.instant = Instant::now();
        self.wall = SystemTime::now();
        self.format();
        self.instant
    }

    /// The last reading, for the core and the application.
    pub(crate) fn reading(&self) -> Now<'_> {
        Now {
            instant: self.instant,
            wall: self.wall,
            date: &self.date,
        }
    }

    /// The last reading as the access log writes it: `10/Oct/2000:13:55:36
    /// +0000` in the text formats, `2000-10-10T13:55:36Z` in JSON.
    pub(crate) fn log_time(&self) -> LogTime<'_> {
        LogTime {
            common: &self.log_time,
            rfc3339: &self.log_time_rfc3339,
        }
    }

    fn format(&mut self) {
        let second = self
            .wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        if second != self.second {
            self.second = second;
            let whole = UNIX_EPOCH + Duration::from_secs(second);
            self.date = httpdate::fmt_http_date(whole);
            let civil = Civil::from_system_time(whole);
            self.log_time = civil.common_log();
            self.log_time_rfc3339 = civil.rfc3339();
        }
    }
}

/// The time to tell a session right after an I/O call. A loop's turn has one
/// reading for everything it does ([`TurnTime`]); a blocking thread reads
/// its clock again ([`Clock`]), since the call may have waited for seconds,
/// and a body's or a send's timeout counts from when bytes really moved.
pub(crate) trait Time {
    fn now(&mut self) -> Now<'_>;
}

impl Time for Clock {
    fn now(&mut self) -> Now<'_> {
        self.tick();
        self.reading()
    }
}

/// One loop turn's reading, the same for every call in the turn.
pub(crate) struct TurnTime<'a>(pub(crate) Now<'a>);

impl Time for TurnTime<'_> {
    fn now(&mut self) -> Now<'_> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_both_texts_for_the_same_second() {
        let mut clock = Clock {
            wall: UNIX_EPOCH + Duration::from_millis(784_111_777_500),
            ..Clock::default()
        };
        clock.second = u64::MAX;
        clock.format();
        assert_eq!(clock.reading().date, "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(clock.log_time().common, "06/Nov/1994:08:49:37 +0000");
        assert_eq!(clock.log_time().rfc3339, "1994-11-06T08:49:37Z");
        clock.wall += Duration::from_millis(400);
        clock.format();
        assert_eq!(
            clock.second, 784_111_777,
            "the same second is not reformatted"
        );
        clock.wall += Duration::from_secs(1);
        clock.format();
        assert_eq!(clock.reading().date, "Sun, 06 Nov 1994 08:49:38 GMT");
    }
}
