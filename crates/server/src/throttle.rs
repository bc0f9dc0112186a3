//! Throttling of guessing, built so that nobody can use it to lock someone
//! else out (OWASP "Slow down online guessing attacks with device
//! cookies"):
//!
//! - Sign-in from a browser without a device cookie of the account: keyed
//!   on (account, client IP) with growing delays (after `FREE_FAILURES`
//!   failures 1 s, then 2, 4, ... up to 5 min), and on the account alone
//!   with a limit: past `ACCOUNT_LIMIT` such failures, browsers without the
//!   account's device cookie wait `ACCOUNT_LOCKOUT` after each new failure,
//!   and past `ACCOUNT_HARD_LIMIT` a day.
//! - Sign-in from a browser with a valid device cookie of the account:
//!   keyed on that cookie alone (growing delays), so strangers' failures
//!   never slow the account's own devices down.
//! - Client authentication: keyed on the client id, counted only for wrong
//!   credentials and consulted only then: a client presenting its correct
//!   secret or a valid assertion is never throttled.
//!
//! Checking a key and counting the attempt are one step under one lock
//! ([`Throttle::attempt`]): an attempt counts as a failure until it is
//! known to have succeeded, so concurrent guesses cannot all slip past the
//! check. Keys are a salted SHA-256 digest (fixed size, no usernames kept
//! in memory) and the table holds at most `MAX_ENTRIES`. Counters live in
//! each instance's memory and use the injected clock; an hour of quiet
//! starts a key over (a day for an account's limit key, which past
//! `ACCOUNT_HARD_LIMIT` failures refuses browsers without the device
//! cookie until then; eviction drops account keys last).

use std::{collections::HashMap, net::IpAddr, sync::Mutex};

use sha2::{Digest, Sha256};

/// Failures allowed on a delay key before delays start.
const FREE_FAILURES: u32 = 5;
/// Longest delay, in seconds.
const MAX_DELAY: i64 = 300;
/// Failures of an account from browsers without its device cookie before
/// such browsers are held off.
pub const ACCOUNT_LIMIT: u32 = 20;
/// Seconds browsers without a device cookie wait after each failure past
/// the limit.
pub const ACCOUNT_LOCKOUT: i64 = 900;
/// Failures of an account from browsers without its device cookie after
/// which such browsers are refused until the account has been quiet for
/// `ACCOUNT_QUIET` (NIST SP 800-63B 5.2.2: at most 100 consecutive
/// failures); the account's own devices still get through.
pub const ACCOUNT_HARD_LIMIT: u32 = 100;
/// Seconds of quiet after which a key starts over.
const QUIET: i64 = 3600;
/// Seconds of quiet after which an account's limit key starts over: a day,
/// so waiting out an hour does not buy a fresh allowance.
const ACCOUNT_QUIET: i64 = 86_400;
/// Entries kept at most.
const MAX_ENTRIES: usize = 100_000;

/// What a key counts, which decides how it throttles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Sign-in failures of one account from one client IP (no device cookie).
    AccountIp,
    /// Sign-in failures of one account from browsers without its device cookie.
    Account,
    /// Sign-in failures from one device cookie.
    Device,
    /// Failed authentication of one client.
    Client,
    /// Wrong second-factor codes of one account (only someone who knows
    /// the password gets that far, so no stranger can hold it off).
    SecondFactor,
}

impl Scope {
    /// The name used in audit lines and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AccountIp => "account_ip",
            Scope::Account => "account",
            Scope::Device => "device",
            Scope::Client => "client",
            Scope::SecondFactor => "second_factor",
        }
    }

    /// Seconds of quiet after which a key of this scope starts over.
    fn quiet(self) -> i64 {
        match self {
            Scope::Account => ACCOUNT_QUIET,
            _ => QUIET,
        }
    }

    /// Until when a key of this scope is held off, after `failures`
    /// counted failures the last of which was at `last`.
    fn blocked_until(self, failures: u32, last: i64) -> i64 {
        match self {
            Scope::Account if failures >= ACCOUNT_HARD_LIMIT => last + ACCOUNT_QUIET,
            Scope::Account if failures >= ACCOUNT_LIMIT => last + ACCOUNT_LOCKOUT,
            Scope::Account => 0,
            _ if failures > FREE_FAILURES => {
                let exp = (failures - FREE_FAILURES - 1).min(16);
                last + (1i64 << exp).min(MAX_DELAY)
            }
            _ => 0,
        }
    }
}

/// A throttle key: its scope and a salted digest of what it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    scope: Scope,
    digest: [u8; 16],
}

impl Key {
    pub fn scope(&self) -> Scope {
        self.scope
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    last: i64,
}

impl Entry {
    fn blocked_until(&self, scope: Scope) -> i64 {
        scope.blocked_until(self.failures, self.last)
    }
}

/// An attempt counted by [`Throttle::attempt`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Attempt {
    /// Set when this attempt, if it fails, holds a key off: its scope and
    /// the seconds it is held off for (the "throttle engaged" moment).
    pub engages: Option<(Scope, i64)>,
}

/// The failure counters.
#[derive(Debug)]
pub struct Throttle {
    salt: [u8; 32],
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle {
            salt: crate::secrets::random_bytes(),
            entries: Mutex::default(),
        }
    }
}

impl Throttle {
    fn key(&self, scope: Scope, parts: &[&[u8]]) -> Key {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update([scope as u8]);
        for p in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            h.update(u64::try_from(p.len()).unwrap_or(u64::MAX).to_be_bytes());
            h.update(p);
        }
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&h.finalize()[..16]);
        Key { scope, digest }
    }

    /// The sign-in keys of `account` (a normalized username) for a browser
    /// without its device cookie, at `ip`.
    pub fn untrusted_login(&self, account: &str, ip: Option<IpAddr>) -> Vec<Key> {
        let ip = ip.map(|i| i.to_string()).unwrap_or_default();
        vec![
            self.key(Scope::AccountIp, &[account.as_bytes(), ip.as_bytes()]),
            self.key(Scope::Account, &[account.as_bytes()]),
        ]
    }

    /// The sign-in key of a browser holding a valid device cookie (its nonce).
    pub fn device_login(&self, nonce: &str) -> Vec<Key> {
        vec![self.key(Scope::Device, &[nonce.as_bytes()])]
    }

    /// The key of an account's wrong second-factor codes.
    pub fn second_factor(&self, user_id: &str) -> Vec<Key> {
        vec![self.key(Scope::SecondFactor, &[user_id.as_bytes()])]
    }

    /// The key of a client's failed authentications.
    pub fn client(&self, client_id: &str) -> Key {
        self.key(Scope::Client, &[client_id.as_bytes()])
    }

    /// Seconds the longest-held of `keys` must still wait, if any is held off now.
    pub fn wait(&self, keys: &[Key], now: i64) -> Option<i64> {
        let map = self.entries.lock().ok()?;
        keys.iter()
            .filter_map(|k| {
                let until = map.get(k)?.blocked_until(k.scope);
                (until > now).then_some(until - now)
            })
            .max()
    }

    /// Checks `keys` and, if none is held off, counts an attempt on each,
    /// in one step. The attempt stays counted as a failure unless
    /// [`Throttle::succeed`] or [`Throttle::refund`] follows. `Err` carries
    /// the seconds to wait.
    pub fn attempt(&self, keys: &[Key], now: i64) -> Result<Attempt, i64> {
        let Ok(mut map) = self.entries.lock() else {
            // A poisoned lock (a panic elsewhere): do not throttle.
            return Ok(Attempt::default());
        };
        let mut wait = 0;
        for k in keys {
            if let Some(e) = map.get(k) {
                let until = e.blocked_until(k.scope);
                if until > now && now - e.last <= k.scope.quiet() {
                    wait = wait.max(until - now);
                }
            }
        }
        if wait > 0 {
            return Err(wait);
        }
        if map.len() + keys.len() > MAX_ENTRIES {
            evict(&mut map, now);
        }
        let mut attempt = Attempt::default();
        for k in keys {
            let e = map.entry(*k).or_insert(Entry {
                failures: 0,
                last: now,
            });
            // A key starts over the moment its quiet time is up, which is
            // also when the longest hold ends: a failure sent right then
            // cannot keep a held-off key held off.
            if now - e.last >= k.scope.quiet() {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
            let until = e.blocked_until(k.scope);
            if until > now && attempt.engages.is_none() {
                attempt.engages = Some((k.scope, until - now));
            }
        }
        Ok(attempt)
    }

    /// The attempt on `keys` succeeded: delay keys are cleared; an
    /// account's limit key only gets this attempt back (a success from
    /// one place does not wipe out the failures strangers piled up).
    pub fn succeed(&self, keys: &[Key]) {
        let Ok(mut map) = self.entries.lock() else {
            return;
        };
        for k in keys {
            match k.scope {
                Scope::Account => refund_one(&mut map, k),
                _ => {
                    map.remove(k);
                }
            }
        }
    }

    /// The attempt on `keys` never happened (the server was busy or the
    /// database away): it is taken back.
    pub fn refund(&self, keys: &[Key]) {
        if let Ok(mut map) = self.entries.lock() {
            for k in keys {
                refund_one(&mut map, k);
            }
        }
    }
}

fn refund_one(map: &mut HashMap<Key, Entry>, k: &Key) {
    if let Some(e) = map.get_mut(k) {
        e.failures = e.failures.saturating_sub(1);
        if e.failures == 0 {
            map.remove(k);
        }
    }
}

/// Makes room: drops keys past their quiet time, then, if still over half
/// full, the keys with the fewest failures, oldest first (held-off keys
/// last): a flood of made-up usernames, one failure each, goes before an
/// account's real count.
fn evict(map: &mut HashMap<Key, Entry>, now: i64) {
    map.retain(|k, e| now - e.last < k.scope.quiet());
    if map.len() <= MAX_ENTRIES / 2 {
        return;
    }
    let mut by_age: Vec<(Key, (bool, u32, i64))> = map
        .iter()
        .map(|(k, e)| (*k, (e.blocked_until(k.scope) > now, e.failures, e.last)))
        .collect();
    by_age.sort_by_key(|(_, order)| *order);
    let excess = map.len() - MAX_ENTRIES / 2;
    for (k, _) in by_age.into_iter().take(excess) {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn delays_grow_and_cap_and_reset() {
        let t = Throttle::default();
        let k = vec![t.client("app")];
        for _ in 0..5 {
            assert!(t.attempt(&k, 1000).unwrap().engages.is_none());
        }
        assert_eq!(
            t.attempt(&k, 1000).unwrap().engages,
            Some((Scope::Client, 1))
        );
        assert_eq!(t.wait(&k, 1000), Some(1));
        assert_eq!(t.attempt(&k, 1000).unwrap_err(), 1);
        t.attempt(&k, 1001).unwrap();
        assert_eq!(t.wait(&k, 1001), Some(2));
        let mut now = 1001;
        for _ in 0..30 {
            now += MAX_DELAY;
            t.attempt(&k, now).unwrap();
        }
        assert_eq!(t.wait(&k, now), Some(MAX_DELAY));
        t.succeed(&k);
        assert_eq!(t.wait(&k, now), None);
    }

    #[test]
    fn the_account_limit_holds_off_and_survives_a_success() {
        let t = Throttle::default();
        let mut now = 0;
        for i in 0..ACCOUNT_LIMIT {
            // A new IP each time: only the account key adds up.
            let ip: IpAddr = format!("10.0.{}.{}", i / 200, i % 200).parse().unwrap();
            t.attempt(&t.untrusted_login("alice", Some(ip)), now)
                .unwrap();
            now += 1;
        }
        let fresh = t.untrusted_login("alice", Some("192.0.2.1".parse().unwrap()));
        assert_eq!(t.attempt(&fresh, now).unwrap_err(), ACCOUNT_LOCKOUT - 1);
        // The account's device is keyed apart and goes through.
        let device = t.device_login("nonce-1");
        t.attempt(&device, now).unwrap();
        t.succeed(&device);
        // Another account is untouched.
        t.attempt(&t.untrusted_login("bob", None), now).unwrap();
        now += ACCOUNT_LOCKOUT;
        let a = t.attempt(&fresh, now).unwrap();
        assert_eq!(a.engages, Some((Scope::Account, ACCOUNT_LOCKOUT)));
        // Success gives back this attempt only: the account stays at the limit.
        t.succeed(&fresh);
        assert_eq!(t.wait(&fresh, now), Some(ACCOUNT_LOCKOUT));
    }

    /// Waiting out an hour buys no fresh allowance, and past the hard
    /// limit browsers without the device cookie are refused for a day of
    /// quiet (NIST SP 800-63B 5.2.2), while the account's device goes on.
    #[test]
    fn the_account_limit_survives_quiet_hours_and_hardens_at_100() {
        let t = Throttle::default();
        let mut now = 0;
        let mut failures = 0;
        let mut i = 0;
        while failures < ACCOUNT_HARD_LIMIT {
            i += 1;
            let ip: IpAddr = format!("10.1.{}.{}", i / 200, i % 200).parse().unwrap();
            if t.attempt(&t.untrusted_login("carol", Some(ip)), now)
                .is_ok()
            {
                failures += 1;
            }
            // An hour and a bit between tries: the account key keeps counting.
            now += QUIET + 1;
            assert!(now < 100 * 86_400, "the limit never hardened");
        }
        let fresh = t.untrusted_login("carol", Some("192.0.2.9".parse().unwrap()));
        let wait = t.attempt(&fresh, now).unwrap_err();
        assert!(wait > ACCOUNT_LOCKOUT, "held off for the day: {wait}");
        let device = t.device_login("nonce-carol");
        t.attempt(&device, now).unwrap();
        // The hold ends exactly when the key starts over: a failure sent
        // at that moment does not renew the hold.
        // The last counted failure was one step (QUIET + 1) ago.
        let last = now - (QUIET + 1);
        now = last + ACCOUNT_QUIET - 1;
        assert!(t.attempt(&fresh, now).is_err());
        now = last + ACCOUNT_QUIET;
        assert!(t.attempt(&fresh, now).unwrap().engages.is_none());
    }

    /// A flood of sign-ins with made-up usernames (an account key and an
    /// account+IP key each) does not evict an account's real count.
    #[test]
    fn a_flood_of_keys_does_not_flush_an_accounts_count() {
        let t = Throttle::default();
        for i in 0..(ACCOUNT_LIMIT - 1) {
            let ip: IpAddr = format!("10.2.0.{i}").parse().unwrap();
            t.attempt(&t.untrusted_login("dave", Some(ip)), 0).unwrap();
        }
        let flooder: IpAddr = "198.51.100.1".parse().unwrap();
        for i in 0..MAX_ENTRIES {
            t.attempt(&t.untrusted_login(&format!("junk-{i}"), Some(flooder)), 1)
                .unwrap();
        }
        let fresh = t.untrusted_login("dave", Some("192.0.2.7".parse().unwrap()));
        let a = t.attempt(&fresh, 2).unwrap();
        assert_eq!(
            a.engages,
            Some((Scope::Account, ACCOUNT_LOCKOUT)),
            "the 20th failure still reaches the limit"
        );
    }

    #[test]
    fn keys_are_digests_and_the_table_is_bounded() {
        let t = Throttle::default();
        assert_ne!(t.client("ab"), t.untrusted_login("ab", None)[1]);
        assert_ne!(
            t.untrusted_login("a", Some("10.0.0.1".parse().unwrap()))[0],
            t.untrusted_login("a1", Some("0.0.0.1".parse().unwrap()))[0]
        );
        let held = t.client("held");
        for _ in 0..=FREE_FAILURES {
            t.attempt(&[held], 0).unwrap();
        }
        for i in 0..(MAX_ENTRIES + 10) {
            t.attempt(&[t.client(&i.to_string())], 0).unwrap();
        }
        let len = t.entries.lock().unwrap().len();
        assert!(len <= MAX_ENTRIES, "{len}");
        assert_eq!(t.wait(&[held], 0), Some(1), "held-off keys go last");
    }
}
