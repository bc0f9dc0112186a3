//! The last successful reads of revocation state and of users, so that
//! introspection and userinfo of Gatehouse's own access tokens can answer
//! for a short while when the database is away.
//!
//! Every successful read is recorded with the (injected) time it was made.
//! When a read fails with `Unavailable`, the answer may rely on a recorded
//! read at most `outage_staleness_secs` old, for every key the read needed
//! (a token's jti, its subject, its client, its grant); if any key has no
//! read that recent, the answer is 503. So "active" is never answered from
//! nothing, and a revocation made (anywhere) in the last
//! `outage_staleness_secs` before the outage may be missed, as it may be
//! at a resource server caching the status list.
//!
//! Memory is bounded: two generations of at most [`MAX_ENTRIES`] keys each;
//! the older generation is dropped once everything in it is too old to be
//! used, and a full generation records no new keys (those then answer 503
//! during an outage).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use gatehouse_storage::{model::User, Store};

use crate::{error::Error, state::AppState};

/// Keys per generation.
const MAX_ENTRIES: usize = 65_536;

/// Recorded reads of values `V` by key.
#[derive(Debug)]
pub struct LastReads<V> {
    inner: Mutex<Generations<V>>,
}

#[derive(Debug)]
struct Generations<V> {
    /// When `current` began.
    started: i64,
    current: HashMap<String, (i64, V)>,
    previous: HashMap<String, (i64, V)>,
}

impl<V> Default for LastReads<V> {
    fn default() -> Self {
        LastReads {
            inner: Mutex::new(Generations {
                started: i64::MIN,
                current: HashMap::new(),
                previous: HashMap::new(),
            }),
        }
    }
}

impl<V: Clone> LastReads<V> {
    /// Runs `f` on the generations, after turning them over when the
    /// current one began more than `staleness` ago (everything older than
    /// the previous generation is then too old to use).
    fn with<T>(&self, now: i64, staleness: i64, f: impl FnOnce(&mut Generations<V>) -> T) -> T {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        // A clock that stepped back also starts over: ages must never be
        // negative.
        if now.saturating_sub(g.started) > staleness || now < g.started {
            g.previous = std::mem::take(&mut g.current);
            g.started = now;
        }
        f(&mut g)
    }

    /// Records that `key` read as `value` at `now`.
    pub fn record(&self, key: &str, value: V, now: i64, staleness: i64) {
        self.with(now, staleness, |g| {
            if g.current.len() < MAX_ENTRIES || g.current.contains_key(key) {
                g.current.insert(key.to_owned(), (now, value));
            }
        });
    }

    /// The value `key` read as less than `staleness` seconds before `now`
    /// (whole seconds: never when `staleness` is 0).
    pub fn get(&self, key: &str, now: i64, staleness: i64) -> Option<V> {
        if staleness <= 0 {
            return None;
        }
        self.with(now, staleness, |g| {
            [&g.current, &g.previous]
                .into_iter()
                .filter_map(|m| m.get(key))
                .find(|(at, _)| (0..staleness).contains(&now.saturating_sub(*at)))
                .map(|(_, v)| v.clone())
        })
    }
}

/// This instance's recorded reads.
#[derive(Debug, Default)]
pub struct RecentReads {
    /// Revocation-list keys: when each was added, `None` when absent.
    revocations: LastReads<Option<i64>>,
    /// Users by id (without their password hash); `None` when not found.
    users: LastReads<Option<Arc<User>>>,
}

impl RecentReads {
    /// The revocation-list entries among `keys` (with the time each was
    /// added): read from `store`, or while it is away from reads of
    /// every key at most `outage_staleness_secs` old.
    pub async fn revocation_entries(
        &self,
        store: &Store,
        keys: &[String],
        now: i64,
        staleness: i64,
    ) -> Result<Vec<(String, i64)>, Error> {
        let cache = &self.revocations;
        match store.revocation_entries(keys).await {
            Ok(hits) => {
                for k in keys {
                    let at = hits.iter().find(|(h, _)| h == k).map(|(_, at)| *at);
                    cache.record(k, at, now, staleness);
                }
                Ok(hits)
            }
            Err(e) if e.is_unavailable() => {
                let mut hits = Vec::new();
                for k in keys {
                    match cache.get(k, now, staleness) {
                        Some(Some(at)) => hits.push((k.clone(), at)),
                        Some(None) => {}
                        None => return Err(e.into()),
                    }
                }
                tracing::debug!("database away: revocation state answered from a recent read");
                Ok(hits)
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl AppState {
    fn staleness(&self) -> i64 {
        self.settings.outage_staleness_secs
    }

    /// A user by id for userinfo: read from the database, or while it is
    /// away from a read at most `outage_staleness_secs` old.
    pub async fn user_recently(&self, id: &str) -> Result<Option<Arc<User>>, Error> {
        let (now, staleness) = (self.now(), self.staleness());
        let cache = &self.recent_reads.users;
        match self.store.user_by_id(id).await {
            Ok(user) => {
                let user = user.map(|u| {
                    Arc::new(User {
                        password_hash: String::new(),
                        ..u
                    })
                });
                cache.record(id, user.clone(), now, staleness);
                Ok(user)
            }
            Err(e) if e.is_unavailable() => match cache.get(id, now, staleness) {
                Some(user) => {
                    tracing::debug!("database away: user answered from a recent read");
                    Ok(user)
                }
                None => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_read_answers_for_staleness_seconds() {
        let r = LastReads::<u8>::default();
        assert_eq!(r.get("k", 100, 10), None, "nothing from nothing");
        r.record("k", 1, 100, 10);
        assert_eq!(r.get("k", 100, 10), Some(1));
        assert_eq!(r.get("k", 109, 10), Some(1));
        assert_eq!(r.get("k", 110, 10), None, "ten seconds old is too old");
        r.record("k", 2, 111, 10);
        assert_eq!(r.get("k", 115, 10), Some(2), "the newest read");
    }

    #[test]
    fn zero_staleness_never_answers() {
        let r = LastReads::<u8>::default();
        r.record("k", 1, 100, 0);
        assert_eq!(r.get("k", 100, 0), None);
    }

    #[test]
    fn a_clock_stepping_back_makes_no_read_fresh() {
        let r = LastReads::<u8>::default();
        r.record("k", 1, 100, 10);
        assert_eq!(r.get("k", 50, 10), None, "a read from the future");
    }

    #[test]
    fn old_generations_are_dropped_and_fresh_reads_kept() {
        let r = LastReads::<u8>::default();
        r.record("old", 1, 100, 10);
        r.record("fresh", 2, 109, 10);
        // Turned over at 111: both move to the previous generation, where
        // a read recent enough still answers.
        assert_eq!(r.get("fresh", 111, 10), Some(2));
        assert_eq!(r.get("old", 111, 10), None);
        // Turned over again at 122: the previous generation is gone, and
        // nothing in it was recent enough any more.
        assert_eq!(r.get("fresh", 122, 10), None);
        let g = r.inner.lock().unwrap();
        assert!(g.previous.is_empty() && g.current.is_empty());
    }

    #[test]
    fn a_full_generation_records_no_new_keys() {
        let r = LastReads::<u8>::default();
        for i in 0..MAX_ENTRIES {
            r.record(&i.to_string(), 1, 100, 10);
        }
        r.record("one too many", 1, 100, 10);
        assert_eq!(r.get("one too many", 100, 10), None);
        r.record("0", 2, 101, 10);
        assert_eq!(r.get("0", 101, 10), Some(2), "known keys are updated");
    }
}
