//! The token status list (IETF draft-ietf-oauth-status-list): resource
//! servers learn that an access token was revoked without a call per token.
//!
//! Every JWE access token carries `status.status_list = {idx, uri}`. Global
//! indices are never reused: each instance reserves blocks of them with one
//! database write each, so issuance stays write-free. Blocks are powers of
//! two from [`BLOCK`] up, aligned to their size (so one never spans two
//! lists). Beside the block in use an instance keeps spare blocks, refilled
//! in the background and sized to the last minute's issuance rate
//! ([`reserve`]), at most `status_index_reserve_max` indices in all: while
//! the database is away, tokens go on being issued until they are spent.
//! A block held in memory is never given back; indices still held when an
//! instance stops are never used (their bits stay 0).
//! List `n` covers global indices `n * LIST_BITS .. (n + 1) * LIST_BITS`.
//! The signed list is built from the revoked indices (one indexed read),
//! one build per list at a time, cached briefly per instance and dropped
//! at once when this instance revokes something in that list (other lists
//! stay cached); other instances' revocations show within [`CACHE_FOR`],
//! and at resource servers within the token's `ttl`.
//!
//! The endpoint is public, so a miss must be cheap: each instance keeps a
//! high-water mark (the first index nobody had reserved when it last
//! looked; read at start, after each of its own reservations, spares
//! included, and every couple of seconds). Lists below the mark exist; a
//! list beyond the next one is answered 404 from memory, with no lock and
//! no database. Only the
//! list just above the mark (where another instance's fresh block appears
//! first) reads the mark again before answering: one read at a time, at
//! most one per [`MARK_REFRESH_EVERY`], and every request waits for a read
//! that began after it arrived, so a fresh block never answers 404.

pub mod reserve;

use std::{
    collections::HashMap,
    io::Write,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::body::Bytes;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use flate2::{write::ZlibEncoder, Compression};
use gatehouse_keys::{Alg, Clock, KeyRing};
use gatehouse_storage::Store;
use serde_json::{json, Map};

use self::reserve::Reserve;
use crate::{config::Settings, error::Error};

/// Indices per list: 2^20 one-bit statuses, 128 KiB before compression.
pub const LIST_BITS: i64 = 1 << 20;
/// The smallest block of indices an instance reserves at once (larger
/// ones are powers of two too: every block divides [`LIST_BITS`]).
pub const BLOCK: i64 = 1024;
/// How long an instance reuses a list it built.
pub const CACHE_FOR: Duration = Duration::from_secs(5);
/// The high-water mark is read from the database at most this often.
pub const MARK_REFRESH_EVERY: Duration = Duration::from_millis(250);
/// After a failed block reservation, how long no other is tried (requests
/// that find nothing held fail at once).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// The algorithm status list tokens are signed with.
const LIST_ALG: Alg = Alg::ES256;

/// The status lists of one instance: the reserved indices, the
/// high-water mark and the built lists, and what it needs to keep them.
#[derive(Debug)]
pub struct StatusLists {
    settings: Arc<Settings>,
    store: Store,
    keys: Arc<KeyRing>,
    clock: Arc<dyn Clock>,
    /// The indices held; locked only for bookkeeping, never across an await.
    reserve: Mutex<Reserve>,
    /// Held while a block is reserved: one reservation at a time.
    reserving: tokio::sync::Mutex<()>,
    /// When reserving last failed.
    failed_at: Mutex<Option<Instant>>,
    /// The origin of the seconds the issuance rate is counted in.
    started: Instant,
    /// The first global index known to be unreserved: lists that start
    /// below it exist. Only grows.
    mark: AtomicI64,
    /// Held while the mark is read from the database.
    mark_refresh: tokio::sync::Mutex<MarkRefresh>,
    /// One slot per existing list asked for.
    lists: Mutex<HashMap<i64, Arc<ListSlot>>>,
}

/// The last read of the mark.
#[derive(Debug, Default)]
struct MarkRefresh {
    started: Option<Instant>,
    succeeded: bool,
}

/// One list: its build lock and its built token.
#[derive(Debug, Default)]
struct ListSlot {
    /// Held while the list is built.
    building: tokio::sync::Mutex<()>,
    /// Bumped by every local revocation in this list: a list built from a
    /// read made before the bump is not cached.
    generation: AtomicU64,
    built: Mutex<Option<(Instant, Bytes)>>,
}

impl ListSlot {
    fn cached(&self) -> Option<Bytes> {
        let b = self.built.lock().ok()?;
        let (at, jwt) = b.as_ref()?;
        (at.elapsed() < CACHE_FOR).then(|| jwt.clone())
    }
}

impl StatusLists {
    /// The state of an instance starting when `high_water` indices have
    /// been reserved, holding at most `status_index_reserve_max` indices.
    pub fn new(
        settings: Arc<Settings>,
        store: Store,
        keys: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
        high_water: i64,
    ) -> StatusLists {
        StatusLists {
            reserve: Mutex::new(Reserve::new(settings.status_index_reserve_max)),
            settings,
            store,
            keys,
            clock,
            reserving: tokio::sync::Mutex::default(),
            failed_at: Mutex::default(),
            started: Instant::now(),
            mark: AtomicI64::new(high_water),
            mark_refresh: tokio::sync::Mutex::default(),
            lists: Mutex::default(),
        }
    }

    fn reserve(&self) -> std::sync::MutexGuard<'_, Reserve> {
        self.reserve
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Indices this instance holds reserved and has not handed out yet.
    pub fn held(&self) -> i64 {
        self.reserve().held()
    }

    /// Seconds since this instance started, for the issuance rate.
    fn second(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    fn failed_recently(&self) -> bool {
        self.failed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|t| t.elapsed() < RETRY_AFTER_FAILURE)
    }

    /// How many lists exist according to the mark.
    fn lists_known(&self) -> i64 {
        let mark = self.mark.load(Ordering::SeqCst);
        mark.saturating_add(LIST_BITS - 1) / LIST_BITS
    }

    fn slot(&self, list_id: i64) -> Option<Arc<ListSlot>> {
        let mut lists = self.lists.lock().ok()?;
        Some(lists.entry(list_id).or_default().clone())
    }
}

/// A token's place in the status lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusIndex(pub i64);

/// A token's `status` claim (draft-ietf-oauth-status-list 6.1): where its
/// revocation bit lives.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusClaim {
    pub status_list: StatusListRef,
}

/// The list and index of a [`StatusClaim`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusListRef {
    pub idx: i64,
    pub uri: String,
}

impl StatusIndex {
    pub fn list_id(self) -> i64 {
        self.0 / LIST_BITS
    }
    pub fn idx(self) -> i64 {
        self.0 % LIST_BITS
    }
}

/// The `lst` member of list `list_id` from revoked global indices (others
/// are ignored): the list as bytes (bit `i % 8` of byte `i / 8`, least
/// significant first; 1 = revoked), zlib-compressed (RFC 1950), base64url.
pub fn encode_list(list_id: i64, revoked: impl IntoIterator<Item = i64>) -> Result<String, Error> {
    let mut bytes = vec![0u8; (LIST_BITS / 8) as usize];
    for g in revoked {
        let s = StatusIndex(g);
        if g < 0 || s.list_id() != list_id {
            continue;
        }
        let i = s.idx() as usize;
        bytes[i / 8] |= 1 << (i % 8);
    }
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    z.write_all(&bytes)
        .and_then(|_| z.finish())
        .map(|c| URL_SAFE_NO_PAD.encode(c))
        .map_err(|e| Error::Internal(format!("status list compression: {e}")))
}

impl StatusLists {
    /// Now, in Unix seconds, from the injected clock.
    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The next status index for a new access token: from memory while
    /// anything is held (a spare running low is refilled in the
    /// background); only when nothing is held does the request itself
    /// reserve a block (one database write).
    pub async fn next_index(self: &Arc<Self>) -> Result<StatusIndex, Error> {
        if let Some(s) = self.take_index() {
            return Ok(s);
        }
        let Ok(_one) = tokio::time::timeout(CACHE_FOR, self.reserving.lock()).await else {
            return Err(Error::Unavailable);
        };
        // The reservation this request waited for may have filled it.
        if let Some(s) = self.take_index() {
            return Ok(s);
        }
        if self.failed_recently() && !self.store.database_up() {
            // The database is away: fail at once rather than queue. Once
            // the health state says it is back, try at once.
            return Err(Error::Unavailable);
        }
        let size = self.reserve().wanted(self.second()).unwrap_or(BLOCK);
        self.reserve_block(size).await?;
        self.take_index().ok_or(Error::Unavailable)
    }

    /// An index from memory, if any is held; starts a background refill
    /// when the spares run below what the recent rate wants.
    fn take_index(self: &Arc<Self>) -> Option<StatusIndex> {
        let sec = self.second();
        let mut r = self.reserve();
        let idx = r.take(sec)?;
        if !r.refilling && r.wanted(sec).is_some() && !self.failed_recently() {
            r.refilling = true;
            let this = Arc::clone(self);
            tokio::spawn(async move { this.refill().await });
        }
        Some(StatusIndex(idx))
    }

    /// The background refill: one block of the size wanted now.
    async fn refill(&self) {
        {
            let _one = self.reserving.lock().await;
            let wanted = self.reserve().wanted(self.second());
            if let Some(size) = wanted {
                if let Err(e) = self.reserve_block(size).await {
                    tracing::warn!(error = %e, "could not reserve spare status-list indices; will retry");
                }
            }
        }
        self.reserve().refilling = false;
    }

    /// Reserves `size` indices (one write) and adds them to the reserve.
    async fn reserve_block(&self, size: i64) -> Result<(), Error> {
        match self.store.reserve_status_block(size).await {
            Ok(start) => {
                self.mark.fetch_max(start + size, Ordering::SeqCst);
                self.reserve().add(start, size);
                Ok(())
            }
            Err(e) => {
                *self
                    .failed_at
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
                Err(e.into())
            }
        }
    }

    /// The URL of status list `list_id`.
    pub fn list_uri(&self, list_id: i64) -> String {
        self.settings.endpoint(&format!("/statuslists/{list_id}"))
    }

    /// The `status` claim of a token (draft-ietf-oauth-status-list 6.1).
    pub fn status_claim(&self, s: StatusIndex) -> StatusClaim {
        StatusClaim {
            status_list: StatusListRef {
                idx: s.idx(),
                uri: self.list_uri(s.list_id()),
            },
        }
    }

    /// Drops this instance's built copies of `lists` after a revocation
    /// here; other lists stay cached.
    pub fn forget(&self, lists: &[i64]) {
        let Ok(slots) = self.lists.lock() else {
            return;
        };
        for slot in lists.iter().filter_map(|id| slots.get(id)) {
            slot.generation.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut built) = slot.built.lock() {
                *built = None;
            }
        }
    }

    /// Reads the high-water mark from the database (the background poll).
    pub async fn refresh_mark(&self) -> Result<(), Error> {
        let high_water = self.store.status_high_water().await?;
        self.mark.fetch_max(high_water, Ordering::SeqCst);
        Ok(())
    }

    /// Reads the mark again unless a read that began after `asked`
    /// succeeded already; at most one read per [`MARK_REFRESH_EVERY`].
    async fn refresh_mark_after(&self, asked: Instant) -> Result<(), Error> {
        let Ok(mut last) = tokio::time::timeout(CACHE_FOR, self.mark_refresh.lock()).await else {
            return Err(Error::Unavailable);
        };
        if last.succeeded && last.started.is_some_and(|t| t >= asked) {
            return Ok(());
        }
        if let Some(t) = last.started {
            tokio::time::sleep_until((t + MARK_REFRESH_EVERY).into()).await;
        }
        *last = MarkRefresh {
            started: Some(Instant::now()),
            succeeded: false,
        };
        self.refresh_mark().await?;
        last.succeeded = true;
        Ok(())
    }

    /// The signed status list token for `list_id`, or `None` when no index
    /// of that list has been reserved yet.
    pub async fn list_token(&self, list_id: i64) -> Result<Option<Bytes>, Error> {
        let asked = Instant::now();
        if list_id < 0 || list_id > self.lists_known() {
            // Far beyond the mark: from memory, no lock, no database.
            return Ok(None);
        }
        if list_id == self.lists_known() {
            // Just above: another instance may have started this list.
            self.refresh_mark_after(asked).await?;
            if list_id >= self.lists_known() {
                return Ok(None);
            }
        }
        let Some(slot) = self.slot(list_id) else {
            return Err(Error::Internal("status list slots poisoned".into()));
        };
        if let Some(hit) = slot.cached() {
            return Ok(Some(hit));
        }
        // One build per list at a time: when a list lapses while many
        // resource servers ask for it, the first builds and the others find
        // it cached instead of each compressing 128 KiB and signing. While
        // the database is away a build hangs for the pool's timeout, so
        // waiters give up after a while rather than queue behind each other.
        let Ok(_building) = tokio::time::timeout(CACHE_FOR, slot.building.lock()).await else {
            return Err(Error::Unavailable);
        };
        if let Some(hit) = slot.cached() {
            return Ok(Some(hit));
        }
        let now = self.now();
        let generation = slot.generation.load(Ordering::SeqCst);
        let revoked = self.store.revoked_status_indices(list_id, now).await?;
        let ttl = self.settings.lifetimes.status_list;
        let mut claims = Map::new();
        claims.insert("sub".into(), self.list_uri(list_id).into());
        claims.insert("iat".into(), now.into());
        claims.insert(
            "exp".into(),
            (now + ttl + CACHE_FOR.as_secs() as i64).into(),
        );
        claims.insert("ttl".into(), ttl.into());
        claims.insert(
            "status_list".into(),
            json!({ "bits": 1, "lst": encode_list(list_id, revoked)? }),
        );
        let jwt = Bytes::from(self.keys.sign(LIST_ALG, "statuslist+jwt", &claims)?);
        if let Ok(mut built) = slot.built.lock() {
            // Checked under the slot's lock, which `forget`
            // takes after bumping: a revocation that raced this build keeps
            // its (possibly stale) list out of the cache.
            if slot.generation.load(Ordering::SeqCst) == generation {
                *built = Some((Instant::now(), jwt.clone()));
            }
        }
        Ok(Some(jwt))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn bits_are_counted_from_the_least_significant() {
        let lst = encode_list(0, [0, 9, 3, LIST_BITS + 4, -1]).unwrap();
        let z = URL_SAFE_NO_PAD.decode(lst).unwrap();
        let mut bytes = Vec::new();
        flate2::read::ZlibDecoder::new(&z[..])
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes.len() as i64, LIST_BITS / 8);
        assert_eq!(bytes[0], 0b0000_1001); // 0 and 3; the next list's 4 is not ours
        assert_eq!(bytes[1], 0b0000_0010); // 9
        assert!(bytes[2..].iter().all(|b| *b == 0));
    }

    #[test]
    fn an_empty_list_compresses_to_almost_nothing() {
        assert!(encode_list(0, []).unwrap().len() < 400);
    }
}
