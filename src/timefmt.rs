//! Calendar formatting of wall-clock times, in UTC: the access log's Common Log
//! Format time and the directory listing's dates. (HTTP dates themselves come
//! from the httpdate crate.)

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC calendar time, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Civil {
    pub(crate) fn from_system_time(time: SystemTime) -> Civil {
        let secs = match time.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(before) => -(before.duration().as_secs() as i64),
        };
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: of_day / 3600,
            minute: of_day % 3600 / 60,
            second: of_day % 60,
        }
    }

    /// `10/Oct/2000:13:55:36 +0000`, the Common Log Format's time.
    pub(crate) fn common_log(&self) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
            self.day,
            MONTHS[(self.month - 1) as usize],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }

    /// `2000-10-10T13:55:36Z` (RFC 3339, UTC), the JSON access log's time.
    pub(crate) fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `2000-10-10 13:55`, for listings.
    pub(crate) fn short(&self) -> String {
        format!(
            "{}-{:02}-{:02} {:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_secs(971_186_136);
        let civil = Civil::from_system_time(t);
        assert_eq!(civil.common_log(), "10/Oct/2000:13:55:36 +0000");
        assert_eq!(civil.short(), "2000-10-10 13:55");
        assert_eq!(
            Civil::from_system_time(UNIX_EPOCH).short(),
            "1970-01-01 00:00"
        );
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(Civil::from_system_time(leap).short(), "2000-02-29 00:00");
    }

    #[test]
    fn agrees_with_httpdate_over_many_days() {
        for day in (0..40_000).step_by(37) {
            let t = UNIX_EPOCH + Duration::from_secs(day * 86_400 + 45_296);
            let civil = Civil::from_system_time(t);
            let http = httpdate::fmt_http_date(t);
            // "Sun, 06 Nov 1994 08:49:37 GMT"
            let expected_day: u32 = http[5..7].parse().unwrap();
            let expected_year: i64 = http[12..16].parse().unwrap();
            assert_eq!(
                (civil.day, civil.year),
                (expected_day, expected_year),
                "{http}"
            );
            assert_eq!((civil.hour, civil.minute, civil.second), (12, 34, 56));
        }
    }
}
