//! Counting events per key in fixed one-minute windows, in memory and with
//! the injected clock: introspection uses it to cap the inactive answers
//! one client gets (so the endpoint is no oracle for guessing tokens).
//! Memory is bounded: at most `MAX_KEYS` keys; beyond that, keys whose
//! window has ended are dropped, then the oldest windows not blocked.

use std::{collections::HashMap, sync::Mutex};

/// Length of a window, in seconds.
const WINDOW: i64 = 60;
/// Keys kept at most.
const MAX_KEYS: usize = 10_000;

/// Per-key counters of the current window.
#[derive(Debug)]
pub struct RateWindow {
    limit: u32,
    counts: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateWindow {
    /// Allows `limit` events per key and minute.
    pub fn new(limit: u32) -> RateWindow {
        RateWindow {
            limit,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `key` may act again, if it used up its window.
    pub fn blocked(&self, key: &str, now: i64) -> Option<i64> {
        let map = self.counts.lock().ok()?;
        let (start, n) = *map.get(key)?;
        (now < start + WINDOW && n >= self.limit).then_some(start + WINDOW - now)
    }

    /// Counts one event for `key` if its window has room, under one lock
    /// (no burst of concurrent callers gets past the limit); else the
    /// seconds until it may act again.
    pub fn take(&self, key: &str, now: i64) -> Result<(), i64> {
        let Ok(mut map) = self.counts.lock() else {
            return Ok(());
        };
        if let Some(&(start, n)) = map.get(key) {
            if now < start + WINDOW && n >= self.limit {
                return Err(start + WINDOW - now);
            }
        }
        self.count(&mut map, key, now);
        Ok(())
    }

    /// Counts one event for `key`.
    pub fn record(&self, key: &str, now: i64) {
        if let Ok(mut map) = self.counts.lock() {
            self.count(&mut map, key, now);
        }
    }

    /// Counts one event for `key` in `map`, making room first when it is
    /// full: keys whose window has ended go, then the oldest of those not
    /// blocked (a flood of new keys does not free the blocked ones), and
    /// only then the oldest of all.
    fn count(&self, map: &mut HashMap<String, (i64, u32)>, key: &str, now: i64) {
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            map.retain(|_, (start, _)| now < *start + WINDOW);
            let limit = self.limit;
            let blocking = |n: u32| n >= limit;
            if map.len() >= MAX_KEYS {
                let mut starts: Vec<i64> = map
                    .values()
                    .filter(|(_, n)| !blocking(*n))
                    .map(|(s, _)| *s)
                    .collect();
                starts.sort_unstable();
                if let Some(cut) = starts.get(starts.len() / 2).copied() {
                    map.retain(|_, (start, n)| blocking(*n) || *start > cut);
                }
            }
            if map.len() >= MAX_KEYS {
                let mut starts: Vec<i64> = map.values().map(|(s, _)| *s).collect();
                starts.sort_unstable();
                let cut = starts.get(MAX_KEYS / 2).copied().unwrap_or(now);
                map.retain(|_, (start, _)| *start > cut);
            }
        }
        let e = map.entry(key.to_owned()).or_insert((now, 0));
        if now >= e.0 + WINDOW {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_ends() {
        let w = RateWindow::new(3);
        for _ in 0..3 {
            assert_eq!(w.blocked("a", 100), None);
            w.record("a", 100);
        }
        assert_eq!(w.blocked("a", 100), Some(60));
        assert_eq!(w.blocked("a", 159), Some(1));
        assert_eq!(w.blocked("b", 100), None, "keys are separate");
        assert_eq!(w.blocked("a", 160), None);
        w.record("a", 160);
        assert_eq!(w.blocked("a", 160), None, "a new window starts over");
    }

    #[test]
    fn take_counts_and_refuses_in_one_step() {
        let w = RateWindow::new(2);
        assert_eq!(w.take("a", 100), Ok(()));
        assert_eq!(w.take("a", 101), Ok(()));
        assert_eq!(w.take("a", 102), Err(58));
        assert_eq!(w.take("a", 160), Ok(()), "a new window");
    }

    #[test]
    fn a_flood_of_new_keys_keeps_the_blocked_ones() {
        let w = RateWindow::new(2);
        w.record("attacker", 0);
        w.record("attacker", 0);
        for i in 0..(MAX_KEYS as i64 * 2) {
            w.record(&format!("k{i}"), 1 + i / 1000);
        }
        assert!(w.blocked("attacker", 30).is_some(), "still blocked");
    }

    #[test]
    fn memory_stays_bounded() {
        let w = RateWindow::new(1);
        for i in 0..(MAX_KEYS as i64 + 10) {
            w.record(&format!("k{i}"), i);
        }
        let len = w.counts.lock().map(|m| m.len()).unwrap_or(usize::MAX);
        assert!(len <= MAX_KEYS, "{len} keys kept");
    }
}
