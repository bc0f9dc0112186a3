//! The status-list indices one instance holds reserved: the block in use
//! and spare blocks, sized to the recent issuance rate, so tokens go on
//! being issued without the database for about [`OUTAGE_COVER_SECS`].
//!
//! Pure bookkeeping (no database, no clock of its own): the caller passes
//! the current second and performs the reservations this asks for.

use std::collections::VecDeque;

use super::BLOCK;

/// How long the spare indices should last at the issuance rate of the
/// last minute (of the seconds seen, for an instance younger than that).
pub const OUTAGE_COVER_SECS: i64 = 60;
/// Seconds of issuance the rate is counted over.
const RATE_WINDOW: usize = 60;

/// `next..end`; empty when `next == end`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Range {
    next: i64,
    end: i64,
}

impl Range {
    fn left(&self) -> i64 {
        self.end - self.next
    }
}

/// Indices handed out per second over the last [`RATE_WINDOW`] seconds.
#[derive(Debug)]
struct Recent {
    /// `(second, count)`, at `second % RATE_WINDOW`.
    buckets: [(u64, i64); RATE_WINDOW],
}

impl Recent {
    fn record(&mut self, sec: u64) {
        let Some(b) = self.buckets.get_mut(sec as usize % RATE_WINDOW) else {
            return;
        };
        if b.0 != sec {
            *b = (sec, 0);
        }
        b.1 += 1;
    }

    fn last_window(&self, sec: u64) -> i64 {
        self.buckets
            .iter()
            .filter(|(s, _)| *s <= sec && s + RATE_WINDOW as u64 > sec)
            .map(|(_, c)| c)
            .sum()
    }
}

/// The reserve of one instance.
#[derive(Debug)]
pub struct Reserve {
    /// Most indices held at once (a power of two, at least two blocks).
    max: i64,
    current: Range,
    spares: VecDeque<Range>,
    recent: Recent,
    /// A background reservation is under way.
    pub refilling: bool,
}

impl Reserve {
    pub fn new(max: i64) -> Reserve {
        Reserve {
            max,
            current: Range::default(),
            spares: VecDeque::new(),
            recent: Recent {
                buckets: [(0, 0); RATE_WINDOW],
            },
            refilling: false,
        }
    }

    /// The next index, from the block in use or else the oldest spare;
    /// `None` when nothing is held. `sec` counts toward the rate.
    pub fn take(&mut self, sec: u64) -> Option<i64> {
        while self.current.left() <= 0 {
            self.current = self.spares.pop_front()?;
        }
        let idx = self.current.next;
        self.current.next += 1;
        self.recent.record(sec);
        Some(idx)
    }

    /// Adds a reserved block `start..start + size`.
    pub fn add(&mut self, start: i64, size: i64) {
        self.spares.push_back(Range {
            next: start,
            end: start + size,
        });
    }

    /// Indices held beyond the block in use.
    pub fn spare(&self) -> i64 {
        self.spares.iter().map(Range::left).sum()
    }

    /// Every index held (left in the block in use, and the spares).
    pub fn held(&self) -> i64 {
        self.current.left().max(0) + self.spare()
    }

    /// The size of the block to reserve now, if one is wanted: the spares
    /// should cover what the last minute's rate would issue in
    /// [`OUTAGE_COVER_SECS`], and always at least one [`BLOCK`]. A power of
    /// two (so it divides the list size), at most half the maximum (so the
    /// block in use and a spare always fit), never above what the maximum
    /// leaves room for.
    pub fn wanted(&self, sec: u64) -> Option<i64> {
        // The rate over the seconds seen so far (an instance younger than
        // the window has not seen a whole one).
        let observed = i64::try_from((sec + 1).min(RATE_WINDOW as u64)).unwrap_or(1);
        let rate_cover = self.recent.last_window(sec) * OUTAGE_COVER_SECS / observed;
        let target = rate_cover.max(BLOCK);
        let spare = self.spare();
        if spare >= target {
            return None;
        }
        let room = (self.max - self.held()).min(self.max / 2);
        let cap = floor_pow2(room);
        let size = ceil_pow2(target - spare).max(BLOCK).min(cap);
        (size >= BLOCK).then_some(size)
    }
}

/// The largest power of two not above `n` (0 for `n < 1`).
fn floor_pow2(n: i64) -> i64 {
    if n < 1 {
        return 0;
    }
    1 << (63 - n.leading_zeros())
}

/// The smallest power of two not below `n` (1 for `n < 1`).
fn ceil_pow2(n: i64) -> i64 {
    if n <= 1 {
        return 1;
    }
    let f = floor_pow2(n);
    if f == n {
        f
    } else {
        f.saturating_mul(2)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Takes `n` indices in second `sec`; asserts each was held.
    fn issue(r: &mut Reserve, n: i64, sec: u64) -> Vec<i64> {
        (0..n).map(|_| r.take(sec).unwrap()).collect()
    }

    #[test]
    fn powers_of_two() {
        assert_eq!(floor_pow2(0), 0);
        assert_eq!(floor_pow2(1), 1);
        assert_eq!(floor_pow2(1023), 512);
        assert_eq!(floor_pow2(1024), 1024);
        assert_eq!(ceil_pow2(1024), 1024);
        assert_eq!(ceil_pow2(1025), 2048);
        assert_eq!(ceil_pow2(-5), 1);
    }

    #[test]
    fn an_idle_instance_wants_one_block_then_one_spare() {
        let mut r = Reserve::new(65_536);
        assert_eq!(r.take(0), None, "nothing held yet");
        assert_eq!(r.wanted(0), Some(BLOCK));
        r.add(0, BLOCK);
        assert_eq!(r.take(0), Some(0));
        // The block is in use now: one spare block is wanted beyond it.
        assert_eq!(r.spare(), 0);
        assert_eq!(r.wanted(0), Some(BLOCK));
        r.add(4096, BLOCK);
        assert_eq!(r.wanted(0), None, "one spare block is enough at this rate");
        assert_eq!(r.held(), 2 * BLOCK - 1);
    }

    #[test]
    fn the_spare_follows_the_last_minutes_rate() {
        let mut r = Reserve::new(65_536);
        r.add(0, BLOCK);
        r.add(BLOCK, BLOCK);
        // 100 tokens a second over the 30 seconds this instance has lived:
        // spares for a minute at that rate, 6,000, are wanted.
        let mut next = 2 * BLOCK;
        for sec in 0..30 {
            issue(&mut r, 100, sec);
            while let Some(size) = r.wanted(sec) {
                r.add(next, size);
                next += size;
            }
        }
        assert!(r.spare() >= 6000, "spare {}", r.spare());
        assert!(
            r.spare() < 2 * 6000 + BLOCK,
            "not wildly more: {}",
            r.spare()
        );
        // A quiet minute later the rate has fallen: nothing more is wanted,
        // and nothing held is given back.
        let held = r.held();
        assert_eq!(r.wanted(200), None);
        assert_eq!(r.held(), held);
    }

    #[test]
    fn blocks_are_powers_of_two_within_the_maximum() {
        let max = 8192;
        let mut r = Reserve::new(max);
        let mut next = 0;
        for sec in 0..60 {
            issue_or_refill(&mut r, 1000, sec, &mut next, max);
        }
    }

    /// Issues `n`, refilling whenever asked, and checks every rule.
    fn issue_or_refill(r: &mut Reserve, n: i64, sec: u64, next: &mut i64, max: i64) {
        for _ in 0..n {
            if let Some(size) = r.wanted(sec) {
                assert_eq!(size.count_ones(), 1, "a power of two: {size}");
                assert!((BLOCK..=max / 2).contains(&size), "{size}");
                r.add(*next, size);
                *next += size;
                assert!(r.held() <= max, "held {} > {max}", r.held());
            }
            r.take(sec).unwrap();
        }
    }

    #[test]
    fn at_the_maximum_nothing_more_is_wanted() {
        let mut r = Reserve::new(2 * BLOCK);
        r.add(0, BLOCK);
        r.add(BLOCK, BLOCK);
        // A rate of 1,500 a minute would want 1,500 spare indices ...
        issue(&mut r, 1500, 0);
        assert_eq!(r.held(), 2 * BLOCK - 1500);
        assert_eq!(r.wanted(0), Some(BLOCK));
        r.add(2 * BLOCK, BLOCK);
        // ... but beside the block in use only one block fits.
        assert_eq!(r.spare(), BLOCK);
        assert_eq!(r.wanted(0), None, "held {}", r.held());
        assert!(r.held() <= 2 * BLOCK);
    }

    #[test]
    fn indices_are_handed_out_once_in_order_of_reservation() {
        let mut r = Reserve::new(65_536);
        r.add(10_240, BLOCK);
        r.add(2048, 2 * BLOCK);
        let got = issue(&mut r, 3 * BLOCK, 0);
        let want: Vec<i64> = (10_240..10_240 + BLOCK)
            .chain(2048..2048 + 2 * BLOCK)
            .collect();
        assert_eq!(got, want);
        assert_eq!(r.take(0), None);
    }
}
