//! One-time values (the `jti` of client assertions) that must never be
//! accepted twice, recorded in the database, and in memory while the
//! database is away.
//!
//! While the database answers, a value is recorded there with one
//! conditional insert, which every instance sees, and remembered in a
//! bounded memory cache. Only while the health state says the database is
//! down (not for a busy pool or a full disk: those answer 503) does this
//! instance record the value in memory alone and accept it; a value found
//! in memory is refused until it expires, even after the database is back.
//! Memory can prove a value unseen here only if it never had to forget an
//! unexpired one: after it did, the memory path answers 503 until that
//! value would have expired. Values
//! recorded in memory are written to the database once it answers again
//! (the background loop calls [`AppState::flush_replay_records`]), so from
//! then on the other instances refuse them too. The weaker guarantee: while
//! the database is away, each instance knows only what it saw itself, so
//! one assertion can be accepted once per instance during the outage.
//! When the memory cache is full of unexpired values, a value that cannot
//! be recorded anywhere is answered 503, never accepted.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

use sha2::{Digest, Sha256};

use crate::{error::Error, state::AppState};

/// Values kept in memory at most (32-byte digests: about 4 MiB full).
const MAX_SEEN: usize = 65_536;
/// Values waiting to be written to the database at most; beyond this the
/// cross-instance refusal after the outage is best effort.
const MAX_PENDING: usize = 16_384;

/// The values recorded in memory while the database was away.
#[derive(Debug, Default)]
pub struct ReplayCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Digest of the value → when it expires.
    seen: HashMap<[u8; 32], i64>,
    /// Not yet written to the database: value, expiry.
    pending: Vec<(String, i64)>,
    /// When expired values were last dropped (at most once a second).
    purged_at: i64,
    /// A value accepted through the database could not be remembered (the
    /// cache was full): until this time memory cannot prove a value unseen.
    forgot_until: i64,
}

/// What recording a value in memory found.
#[derive(Debug, PartialEq, Eq)]
enum Recorded {
    New,
    Seen,
    Full,
}

/// The longest key stored as it is; the store's column holds 255 bytes.
const MAX_PLAIN_KEY: usize = 128;

/// `key` as stored: as it is when short, else its SHA-256 digest (a
/// client's 256-byte `jti` behind a prefix would not fit the column).
fn stored_key(key: &str) -> std::borrow::Cow<'_, str> {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
    if key.len() <= MAX_PLAIN_KEY {
        return key.into();
    }
    format!("sha256:{}", URL_SAFE_NO_PAD.encode(digest(key))).into()
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl Inner {
    /// Whether one more value fits (expired values are dropped first, at
    /// most once a second).
    fn make_room(&mut self, now: i64) -> bool {
        if self.seen.len() >= MAX_SEEN && self.purged_at != now {
            self.purged_at = now;
            self.seen.retain(|_, exp| *exp > now);
            self.pending.retain(|(_, exp)| *exp > now);
        }
        self.seen.len() < MAX_SEEN
    }
}

impl ReplayCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `key` was recorded here and has not expired.
    fn seen(&self, key: &str, now: i64) -> bool {
        let inner = self.lock();
        if inner.seen.is_empty() {
            return false;
        }
        inner.seen.get(&digest(key)).is_some_and(|exp| *exp > now)
    }

    /// Remembers `key`, accepted through the database, until `expires_at`;
    /// when the cache is full, notes that memory forgot something.
    fn remember(&self, key: &str, expires_at: i64, now: i64) {
        let d = digest(key);
        let mut inner = self.lock();
        if !inner.make_room(now) {
            inner.forgot_until = inner.forgot_until.max(expires_at);
            return;
        }
        inner.seen.insert(d, expires_at);
    }

    /// Records `key` until `expires_at`, unless it is there already, the
    /// cache is full of unexpired values, or memory forgot a value that may
    /// still be presented.
    fn record(&self, key: &str, expires_at: i64, now: i64) -> Recorded {
        let d = digest(key);
        let mut inner = self.lock();
        if inner.seen.get(&d).is_some_and(|exp| *exp > now) {
            return Recorded::Seen;
        }
        if now < inner.forgot_until || !inner.make_room(now) {
            return Recorded::Full;
        }
        inner.seen.insert(d, expires_at);
        if inner.pending.len() < MAX_PENDING {
            inner.pending.push((key.to_owned(), expires_at));
        }
        Recorded::New
    }

    /// The values not yet written to the database (taken out).
    fn take_pending(&self) -> Vec<(String, i64)> {
        std::mem::take(&mut self.lock().pending)
    }

    /// Puts back values that could not be written yet.
    fn put_back(&self, mut rest: Vec<(String, i64)>) {
        let mut inner = self.lock();
        rest.append(&mut inner.pending);
        rest.truncate(MAX_PENDING);
        inner.pending = rest;
    }
}

impl AppState {
    /// Records the one-time value `key` until `expires_at`. `Ok(false)`
    /// when it was recorded before: a replay. In the database when it
    /// answers; in memory when it is away (see the module documentation).
    pub async fn record_once(&self, key: &str, expires_at: i64) -> Result<bool, Error> {
        let now = self.now();
        let key = &stored_key(key);
        if self.replay.seen(key, now) {
            return Ok(false);
        }
        match self.store.record_once(key, expires_at, now).await {
            Ok(true) => {
                self.replay.remember(key, expires_at, now);
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(e) if e.is_unavailable() && !self.store.database_up() => {
                match self.replay.record(key, expires_at, now) {
                    Recorded::New => {
                        tracing::debug!("database away: one-time value recorded in memory");
                        Ok(true)
                    }
                    Recorded::Seen => Ok(false),
                    Recorded::Full => Err(Error::Unavailable),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the values recorded in memory during an outage to the
    /// database, so other instances refuse them too; stops at the first
    /// failure and keeps the rest for the next call. Expired values are
    /// dropped.
    pub async fn flush_replay_records(&self) -> Result<(), Error> {
        let now = self.now();
        let mut pending = self.replay.take_pending().into_iter();
        while let Some((key, exp)) = pending.next() {
            if exp <= now {
                continue;
            }
            if let Err(e) = self.store.record_once(&key, exp, now).await {
                let mut rest = vec![(key, exp)];
                rest.extend(pending);
                self.replay.put_back(rest);
                return Err(e.into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_stored_as_digests_that_fit_the_column() {
        let short = "assertion:c:j";
        assert_eq!(stored_key(short), short);
        let long = format!("dpop:{}:{}", "k".repeat(43), "j".repeat(256));
        let stored = stored_key(&long);
        assert!(
            stored.starts_with("sha256:") && stored.len() <= 64,
            "{stored}"
        );
        assert_ne!(stored, stored_key(&format!("{long}x")));
    }

    #[test]
    fn a_value_is_new_once_until_it_expires() {
        let c = ReplayCache::default();
        assert!(!c.seen("a", 100));
        assert_eq!(c.record("a", 200, 100), Recorded::New);
        assert_eq!(c.record("a", 200, 150), Recorded::Seen);
        assert!(c.seen("a", 199));
        assert!(!c.seen("a", 200), "expired");
        assert_eq!(c.record("a", 300, 200), Recorded::New);
        assert_eq!(c.take_pending().len(), 2);
        assert!(c.take_pending().is_empty());
        assert!(c.seen("a", 250), "flushed values are still refused here");
    }

    #[test]
    fn a_full_cache_drops_expired_values_or_refuses() {
        let c = ReplayCache::default();
        for i in 0..MAX_SEEN {
            assert_eq!(c.record(&i.to_string(), 10, 0), Recorded::New);
        }
        assert_eq!(c.record("late", 10, 5), Recorded::Full);
        assert_eq!(c.record("0", 10, 5), Recorded::Seen);
        // Once they have expired, they make room.
        assert_eq!(c.record("late", 20, 10), Recorded::New);
        assert!(c.take_pending().len() <= MAX_PENDING);
    }

    #[test]
    fn values_put_back_come_first_and_stay_bounded() {
        let c = ReplayCache::default();
        assert_eq!(c.record("new", 50, 0), Recorded::New);
        let pending = c.take_pending();
        assert_eq!(c.record("newer", 50, 0), Recorded::New);
        c.put_back(pending);
        let keys: Vec<String> = c.take_pending().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["new", "newer"]);
    }

    /// A value accepted through the database is remembered, so an outage
    /// cannot make it new again here; when memory had to forget one, it
    /// refuses to vouch for any value until that one would have expired.
    #[test]
    fn values_accepted_through_the_database_stay_refused() {
        let c = ReplayCache::default();
        c.remember("db", 100, 0);
        assert_eq!(c.record("db", 100, 50), Recorded::Seen);
        assert!(c.take_pending().is_empty(), "already in the database");

        let full = ReplayCache::default();
        for i in 0..MAX_SEEN {
            full.remember(&i.to_string(), 10, 0);
        }
        full.remember("forgotten", 300, 5);
        assert_eq!(full.record("forgotten", 300, 20), Recorded::Full);
        assert_eq!(full.record("other", 300, 299), Recorded::Full);
        assert_eq!(full.record("other", 400, 300), Recorded::New);
    }
}
