//! The DPoP replay cache: each (key thumbprint, `jti`) accepted once while
//! its proof's `iat` is within the window (RFC 9449 11.1), in bounded memory.
//!
//! Entries are SHA-256 digests of the pair (fixed size whatever the
//! `jti`), each kept until its proof can no longer pass the `iat` check.
//! Expired entries are dropped first (a min-heap on the expiry makes that
//! cheap). When the cache is still full, a new proof is refused
//! ([`Remember::Full`]) rather than a live entry forgotten: forgetting one
//! would let that proof be replayed, while refusing costs only availability,
//! and only until the oldest entry expires (at most twice the window).
//! One key may hold at most an eighth of the cache: a client flooding
//! with its own key is refused alone, and the other clients' proofs still
//! find room.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use sha2::{Digest, Sha256};

/// The cache's key for a proof: SHA-256 of its key's thumbprint and `jti`.
type Entry = [u8; 32];

/// What [`ReplayCache::remember`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Remember {
    /// First sighting: remembered until its expiry.
    Fresh,
    /// Seen before, within the window: a replay.
    Replay,
    /// Not seen, but the cache is full of live entries; the earliest
    /// expires in this many seconds.
    Full { retry_after: u64 },
}

#[derive(Debug)]
pub(crate) struct ReplayCache {
    capacity: usize,
    seen: HashSet<Entry>,
    /// (expiry, entry, its key's digest), earliest first.
    expiries: BinaryHeap<Reverse<(i64, Entry, Entry)>>,
    /// Live entries per key (digest of the thumbprint).
    per_key: HashMap<Entry, usize>,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        ReplayCache {
            capacity,
            seen: HashSet::new(),
            expiries: BinaryHeap::new(),
            per_key: HashMap::new(),
        }
    }

    /// The most live entries one key may hold.
    fn per_key_limit(&self) -> usize {
        (self.capacity / 8).max(1)
    }

    /// Records the proof (`jkt`, `jti`) as used until `expires` (Unix
    /// seconds; it is dropped once `now` is past it). A replay is reported
    /// as such even when the cache is full.
    pub(crate) fn remember(&mut self, jkt: &str, jti: &str, expires: i64, now: i64) -> Remember {
        self.purge(now);
        let entry = digest(jkt, jti);
        if self.seen.contains(&entry) {
            return Remember::Replay;
        }
        let key = Sha256::digest(jkt.as_bytes()).into();
        let held = self.per_key.get(&key).copied().unwrap_or(0);
        if self.seen.len() >= self.capacity || held >= self.per_key_limit() {
            let earliest = self.expiries.peek().map_or(now, |Reverse((at, _, _))| *at);
            let retry_after = earliest.saturating_sub(now).saturating_add(1).max(1);
            return Remember::Full {
                retry_after: u64::try_from(retry_after).unwrap_or(1),
            };
        }
        self.seen.insert(entry);
        *self.per_key.entry(key).or_insert(0) += 1;
        self.expiries.push(Reverse((expires, entry, key)));
        Remember::Fresh
    }

    /// Drops the entries whose expiry is before `now`.
    fn purge(&mut self, now: i64) {
        while let Some(Reverse((at, entry, key))) = self.expiries.peek().copied() {
            if at >= now {
                break;
            }
            self.expiries.pop();
            self.seen.remove(&entry);
            if let Some(n) = self.per_key.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    self.per_key.remove(&key);
                }
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

fn digest(jkt: &str, jti: &str) -> Entry {
    // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
    let mut h = Sha256::new();
    h.update((jkt.len() as u64).to_be_bytes());
    h.update(jkt.as_bytes());
    h.update(jti.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_accepted_once_until_it_expires() {
        let mut c = ReplayCache::new(10);
        assert_eq!(c.remember("k", "j1", 160, 100), Remember::Fresh);
        assert_eq!(c.remember("k", "j1", 160, 150), Remember::Replay);
        assert_eq!(c.remember("k", "j1", 160, 160), Remember::Replay);
        // Another key with the same jti is another proof.
        assert_eq!(c.remember("k2", "j1", 160, 160), Remember::Fresh);
        // Past their expiry both entries are gone (the proof's iat check
        // refuses such proofs by then).
        assert_eq!(c.remember("k", "j1", 300, 161), Remember::Fresh);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn the_pair_is_not_ambiguous() {
        assert_ne!(digest("ab", "c"), digest("a", "bc"));
    }

    #[test]
    fn when_full_new_proofs_are_refused_and_replays_stay_replays() {
        let mut c = ReplayCache::new(3);
        for (i, exp) in [(0, 130), (1, 120), (2, 140)] {
            assert_eq!(
                c.remember(&format!("k{i}"), &format!("j{i}"), exp, 100),
                Remember::Fresh
            );
        }
        assert_eq!(
            c.remember("k3", "j3", 150, 100),
            Remember::Full { retry_after: 21 }
        );
        for i in 0..3 {
            assert_eq!(
                c.remember(&format!("k{i}"), &format!("j{i}"), 0, 110),
                Remember::Replay
            );
        }
        // The earliest expiry passes: room for one.
        assert_eq!(c.remember("k3", "j3", 150, 121), Remember::Fresh);
        assert_eq!(
            c.remember("k4", "j4", 150, 121),
            Remember::Full { retry_after: 10 }
        );
        assert_eq!(c.remember("k0", "j0", 0, 125), Remember::Replay);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn one_key_cannot_take_the_whole_cache() {
        let mut c = ReplayCache::new(16);
        for i in 0..2 {
            assert_eq!(
                c.remember("flood", &format!("j{i}"), 160, 100),
                Remember::Fresh
            );
        }
        assert!(matches!(
            c.remember("flood", "j2", 160, 100),
            Remember::Full { .. }
        ));
        assert_eq!(c.remember("flood", "j0", 160, 100), Remember::Replay);
        assert_eq!(c.remember("honest", "j0", 160, 100), Remember::Fresh);
        // Once the flood's entries expire, its key has room again.
        assert_eq!(c.remember("flood", "j2", 300, 161), Remember::Fresh);
        assert_eq!(c.per_key.len(), 1);
    }
}
