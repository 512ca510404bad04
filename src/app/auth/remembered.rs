//! Credentials verified recently, so that a browser sending the same
//! `Authorization` header with every request costs one password hash, not
//! one per request (an argon2 check takes tens of milliseconds, all of them
//! the loop's).
//!
//! Neither passwords nor headers are kept: an entry is keyed by an
//! HMAC-SHA256 of the header under a key drawn at start, so what is in memory
//! cannot be turned back into a password, and (the key being secret) cannot
//! be matched by a forged header either; a lookup by digest reveals nothing
//! through its timing. Entries last [`REMEMBER_FOR`], and a reload of the
//! password file forgets them all.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::hmac;
use ring::rand::SystemRandom;

use crate::app::lru::{Lru, lock};

/// How long a verified credential is trusted without checking it again.
pub(super) const REMEMBER_FOR: Duration = Duration::from_secs(5 * 60);
/// Credentials remembered at once.
const ENTRIES: usize = 1024;

type Digest = [u8; 32];

pub(super) struct Remembered {
    key: hmac::Key,
    /// The digest of a header, and whose it is.
    entries: Mutex<Lru<Digest, Arc<str>>>,
}

impl Remembered {
    pub(super) fn new() -> Result<Remembered, String> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| "no randomness for the credential cache".to_owned())?;
        Ok(Remembered {
            key,
            entries: Mutex::new(Lru::new(ENTRIES)),
        })
    }

    /// The user whose credentials these are, if they were verified lately.
    pub(super) fn recall(&self, credentials: &[u8], now: Instant) -> Option<Arc<str>> {
        let digest = self.digest(credentials);
        let mut entries = lock(&self.entries);
        let (user, verified) = entries.touch(&digest)?;
        if now.saturating_duration_since(verified) >= REMEMBER_FOR {
            entries.remove(&digest);
            return None;
        }
        Some(user)
    }

    pub(super) fn remember(&self, credentials: &[u8], user: &str, now: Instant) {
        let digest = self.digest(credentials);
        lock(&self.entries).insert(digest, Arc::from(user), 1, now);
    }

    pub(super) fn forget_all(&self) {
        *lock(&self.entries) = Lru::new(ENTRIES);
    }

    fn digest(&self, credentials: &[u8]) -> Digest {
        let tag = hmac::sign(&self.key, credentials);
        let mut digest = [0u8; 32];
        for (byte, tagged) in digest.iter_mut().zip(tag.as_ref()) {
            *byte = *tagged;
        }
        digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_for_a_while_and_forgets_on_demand() {
        let remembered = Remembered::new().unwrap();
        let t0 = Instant::now();
        assert_eq!(remembered.recall(b"Basic YTpi", t0), None);
        remembered.remember(b"Basic YTpi", "a", t0);
        assert_eq!(remembered.recall(b"Basic YTpi", t0).as_deref(), Some("a"));
        assert_eq!(remembered.recall(b"Basic YTpj", t0), None, "another header");
        assert_eq!(remembered.recall(b"Basic YTpi", t0 + REMEMBER_FOR), None);
        remembered.remember(b"Basic YTpi", "a", t0);
        remembered.forget_all();
        assert_eq!(remembered.recall(b"Basic YTpi", t0), None);
    }

    #[test]
    fn so_many_credentials_are_remembered_at_most() {
        let remembered = Remembered::new().unwrap();
        let t0 = Instant::now();
        for n in 0..ENTRIES + 500 {
            remembered.remember(format!("Basic {n}").as_bytes(), "a", t0);
        }
        assert_eq!(lock(&remembered.entries).len(), ENTRIES);
        let last = format!("Basic {}", ENTRIES + 499);
        assert!(remembered.recall(last.as_bytes(), t0).is_some());
        assert!(
            remembered.recall(b"Basic 0", t0).is_none(),
            "the oldest went"
        );
    }

    #[test]
    fn digests_depend_on_a_key_of_this_process() {
        let (one, two) = (Remembered::new().unwrap(), Remembered::new().unwrap());
        assert_ne!(one.digest(b"Basic YTpi"), two.digest(b"Basic YTpi"));
        assert_eq!(one.digest(b"Basic YTpi"), one.digest(b"Basic YTpi"));
    }
}
