//! The `Date` header value (IMF-fixdate, RFC 9110 section 5.6.7), formatted at most
//! once per second.
//!
//! The core never reads a clock: the driver owns a `DateCache`, refreshes it with
//! the wall-clock time once per loop turn, and hands its text to every response.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct DateCache {
    second: u64,
    text: String,
}

impl DateCache {
    pub fn new(now: SystemTime) -> DateCache {
        let mut cache = DateCache {
            second: u64::MAX,
            text: String::new(),
        };
        cache.update(now);
        cache
    }

    /// Reformats only when the second has changed; returns whether it did.
    pub fn update(&mut self, now: SystemTime) -> bool {
        let second = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        if second == self.second {
            return false;
        }
        self.second = second;
        self.text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(second));
        true
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT`
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_imf_fixdate_once_per_second() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let mut cache = DateCache::new(t);
        assert_eq!(cache.as_str(), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert!(!cache.update(t + Duration::from_millis(999)));
        assert!(cache.update(t + Duration::from_secs(1)));
        assert_eq!(cache.as_str(), "Sun, 06 Nov 1994 08:49:38 GMT");
    }
}
