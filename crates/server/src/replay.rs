//! One-time values (the `jti` of client assertions) that must never be
//! accepted twice, recorded in the database, and in memory while the
//! database is away.
//!
//! While the database answers, a value is recorded there with one
//! conditional insert, which every instance sees. While it is away
//! (`StoreError::Unavailable`), this instance records the value in a
//! bounded memory cache instead and accepts it; a value found there is
//! refused until it expires, even after the database is back. Values
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

use crate::{http::error::AppError, state::AppState};

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
}

/// What recording a value in memory found.
#[derive(Debug, PartialEq, Eq)]
enum Recorded {
    New,
    Seen,
    Full,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
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

    /// Records `key` until `expires_at`, unless it is there already or the
    /// cache is full of unexpired values.
    fn record(&self, key: &str, expires_at: i64, now: i64) -> Recorded {
        let d = digest(key);
        let mut inner = self.lock();
        if inner.seen.get(&d).is_some_and(|exp| *exp > now) {
            return Recorded::Seen;
        }
        if inner.seen.len() >= MAX_SEEN && inner.purged_at != now {
            inner.purged_at = now;
            inner.seen.retain(|_, exp| *exp > now);
            inner.pending.retain(|(_, exp)| *exp > now);
        }
        if inner.seen.len() >= MAX_SEEN {
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
    pub async fn record_once(&self, key: &str, expires_at: i64) -> Result<bool, AppError> {
        let now = self.now();
        if self.replay.seen(key, now) {
            return Ok(false);
        }
        match self.store.record_once(key, expires_at, now).await {
            Ok(first) => Ok(first),
            Err(e) if e.is_unavailable() => match self.replay.record(key, expires_at, now) {
                Recorded::New => {
                    tracing::debug!("database away: one-time value recorded in memory");
                    Ok(true)
                }
                Recorded::Seen => Ok(false),
                Recorded::Full => Err(AppError::Unavailable),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the values recorded in memory during an outage to the
    /// database, so other instances refuse them too; stops at the first
    /// failure and keeps the rest for the next call. Expired values are
    /// dropped.
    pub async fn flush_replay_records(&self) -> Result<(), AppError> {
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
}
