//! Throttling of guessing: failed logins per account and per client IP,
//! and failed client authentication per client id. Growing delays, never a
//! permanent lockout (which would let an attacker lock users out): after
//! `FREE_FAILURES` failures a key waits 1 s, then 2, 4, ... up to 5 min; a
//! success clears it. Counters live in each instance's memory (several
//! instances each enforce their own limit) and use the injected clock.

use std::{collections::HashMap, sync::Mutex};

/// Failures allowed before delays start.
const FREE_FAILURES: u32 = 5;
/// Longest delay, in seconds.
const MAX_DELAY: i64 = 300;
/// Entries kept at most; the oldest half is dropped beyond it.
const MAX_ENTRIES: usize = 100_000;

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    blocked_until: i64,
    last: i64,
}

/// The failure counters.
#[derive(Debug, Default)]
pub struct Throttle {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    /// Seconds `key` must still wait, if it is throttled now.
    pub fn wait(&self, key: &str, now: i64) -> Option<i64> {
        let map = self.entries.lock().ok()?;
        let e = map.get(key)?;
        (e.blocked_until > now).then_some(e.blocked_until - now)
    }

    /// Seconds the first throttled key among `keys` must wait.
    pub fn wait_any(&self, keys: &[String], now: i64) -> Option<i64> {
        keys.iter().filter_map(|k| self.wait(k, now)).max()
    }

    /// Records a failure for each key.
    pub fn fail(&self, keys: &[String], now: i64) {
        let Ok(mut map) = self.entries.lock() else {
            return;
        };
        if map.len() >= MAX_ENTRIES {
            let mut by_age: Vec<(String, i64)> =
                map.iter().map(|(k, e)| (k.clone(), e.last)).collect();
            by_age.sort_by_key(|(_, last)| *last);
            for (k, _) in by_age.into_iter().take(MAX_ENTRIES / 2) {
                map.remove(&k);
            }
        }
        for k in keys {
            let e = map.entry(k.clone()).or_insert(Entry {
                failures: 0,
                blocked_until: 0,
                last: now,
            });
            // A key quiet for an hour starts over.
            if now - e.last > 3600 {
                *e = Entry {
                    failures: 0,
                    blocked_until: 0,
                    last: now,
                };
            }
            e.failures += 1;
            e.last = now;
            if e.failures > FREE_FAILURES {
                let exp = (e.failures - FREE_FAILURES - 1).min(16);
                e.blocked_until = now + (1i64 << exp).min(MAX_DELAY);
            }
        }
    }

    /// Clears the keys after a success.
    pub fn succeed(&self, keys: &[String]) {
        if let Ok(mut map) = self.entries.lock() {
            for k in keys {
                map.remove(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_cap_and_reset() {
        let t = Throttle::default();
        let k = vec!["user:alice".to_owned()];
        for _ in 0..5 {
            t.fail(&k, 1000);
            assert_eq!(t.wait_any(&k, 1000), None);
        }
        t.fail(&k, 1000);
        assert_eq!(t.wait_any(&k, 1000), Some(1));
        t.fail(&k, 1001);
        assert_eq!(t.wait_any(&k, 1001), Some(2));
        for _ in 0..30 {
            t.fail(&k, 2000);
        }
        assert_eq!(t.wait_any(&k, 2000), Some(MAX_DELAY));
        t.succeed(&k);
        assert_eq!(t.wait_any(&k, 2000), None);
    }
}
