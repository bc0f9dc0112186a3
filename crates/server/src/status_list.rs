//! The token status list (IETF draft-ietf-oauth-status-list): resource
//! servers learn that an access token was revoked without a call per token.
//!
//! Every JWE access token carries `status.status_list = {idx, uri}`. Global
//! indices are never reused: each instance reserves a block of
//! [`BLOCK`] indices with one database write, so issuance stays write-free.
//! List `n` covers global indices `n * LIST_BITS .. (n + 1) * LIST_BITS`.
//! The signed list is built from the revoked indices (one indexed read),
//! one build per list at a time, cached briefly per instance and dropped
//! at once when this instance revokes something in that list (other lists
//! stay cached); other instances' revocations show within [`CACHE_FOR`],
//! and at resource servers within the token's `ttl`.
//!
//! The endpoint is public, so a miss must be cheap: each instance keeps a
//! high-water mark (the first index nobody had reserved when it last
//! looked; read at start, after each of its own reservations and every
//! couple of seconds). Lists below the mark exist; a list beyond the next
//! one is answered 404 from memory, with no lock and no database. Only the
//! list just above the mark (where another instance's fresh block appears
//! first) reads the mark again before answering: one read at a time, at
//! most one per [`MARK_REFRESH_EVERY`], and every request waits for a read
//! that began after it arrived, so a fresh block never answers 404.

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
use gatehouse_keys::Alg;
use serde_json::{json, Map, Value};

use crate::{http::error::AppError, state::AppState};

/// Indices per list: 2^20 one-bit statuses, 128 KiB before compression.
pub const LIST_BITS: i64 = 1 << 20;
/// Indices an instance reserves at once (divides [`LIST_BITS`], so a block
/// never spans two lists).
pub const BLOCK: i64 = 1024;
/// How long an instance reuses a list it built.
pub const CACHE_FOR: Duration = Duration::from_secs(5);
/// The high-water mark is read from the database at most this often.
pub const MARK_REFRESH_EVERY: Duration = Duration::from_millis(250);
/// After a failed block reservation, how long requests fail at once.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// The algorithm status list tokens are signed with.
const LIST_ALG: Alg = Alg::ES256;

/// Per-instance state: the reserved block, the high-water mark and the
/// built lists.
#[derive(Debug, Default)]
pub struct StatusLists {
    block: tokio::sync::Mutex<Block>,
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
    /// been reserved.
    pub fn new(high_water: i64) -> StatusLists {
        StatusLists {
            mark: AtomicI64::new(high_water),
            ..StatusLists::default()
        }
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

/// The reserved block: `next..end`, empty when `next == end`.
#[derive(Debug, Default)]
struct Block {
    next: i64,
    end: i64,
    /// When reserving last failed: while the database is away, requests
    /// fail at once instead of queueing behind each other's timeouts.
    failed_at: Option<Instant>,
}

/// A token's place in the status lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusIndex(pub i64);

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
pub fn encode_list(
    list_id: i64,
    revoked: impl IntoIterator<Item = i64>,
) -> Result<String, AppError> {
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
        .map_err(|e| AppError::Internal(format!("status list compression: {e}")))
}

impl AppState {
    /// The next status index for a new access token. One database write
    /// per [`BLOCK`] tokens.
    pub async fn next_status_index(&self) -> Result<StatusIndex, AppError> {
        let mut b = self.status_lists.block.lock().await;
        if b.next >= b.end {
            if b.failed_at
                .is_some_and(|t| t.elapsed() < RETRY_AFTER_FAILURE)
            {
                return Err(AppError::Unavailable);
            }
            match self.store.reserve_status_block(BLOCK).await {
                Ok(start) => {
                    self.status_lists
                        .mark
                        .fetch_max(start + BLOCK, Ordering::SeqCst);
                    *b = Block {
                        next: start,
                        end: start + BLOCK,
                        failed_at: None,
                    }
                }
                Err(e) => {
                    b.failed_at = Some(Instant::now());
                    return Err(e.into());
                }
            }
        }
        let idx = b.next;
        b.next += 1;
        Ok(StatusIndex(idx))
    }

    /// The URL of status list `list_id`.
    pub fn status_list_uri(&self, list_id: i64) -> String {
        self.settings.endpoint(&format!("/statuslists/{list_id}"))
    }

    /// The `status` claim of a token (draft-ietf-oauth-status-list 6.1).
    pub fn status_claim(&self, s: StatusIndex) -> Value {
        json!({ "status_list": { "idx": s.idx(), "uri": self.status_list_uri(s.list_id()) } })
    }

    /// Drops this instance's built copies of `lists` after a revocation
    /// here; other lists stay cached.
    pub fn forget_status_lists(&self, lists: &[i64]) {
        let Ok(slots) = self.status_lists.lists.lock() else {
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
    pub async fn refresh_status_mark(&self) -> Result<(), AppError> {
        let high_water = self.store.status_high_water().await?;
        self.status_lists
            .mark
            .fetch_max(high_water, Ordering::SeqCst);
        Ok(())
    }

    /// Reads the mark again unless a read that began after `asked`
    /// succeeded already; at most one read per [`MARK_REFRESH_EVERY`].
    async fn refresh_status_mark_after(&self, asked: Instant) -> Result<(), AppError> {
        let Ok(mut last) =
            tokio::time::timeout(CACHE_FOR, self.status_lists.mark_refresh.lock()).await
        else {
            return Err(AppError::Unavailable);
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
        self.refresh_status_mark().await?;
        last.succeeded = true;
        Ok(())
    }

    /// The signed status list token for `list_id`, or `None` when no index
    /// of that list has been reserved yet.
    pub async fn status_list_token(&self, list_id: i64) -> Result<Option<Bytes>, AppError> {
        let asked = Instant::now();
        let lists = &self.status_lists;
        if list_id < 0 || list_id > lists.lists_known() {
            // Far beyond the mark: from memory, no lock, no database.
            return Ok(None);
        }
        if list_id == lists.lists_known() {
            // Just above: another instance may have started this list.
            self.refresh_status_mark_after(asked).await?;
            if list_id >= lists.lists_known() {
                return Ok(None);
            }
        }
        let Some(slot) = lists.slot(list_id) else {
            return Err(AppError::Internal("status list slots poisoned".into()));
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
            return Err(AppError::Unavailable);
        };
        if let Some(hit) = slot.cached() {
            return Ok(Some(hit));
        }
        let now = self.now();
        let generation = slot.generation.load(Ordering::SeqCst);
        let revoked = self.store.revoked_status_indices(list_id, now).await?;
        let ttl = self.settings.lifetimes.status_list;
        let mut claims = Map::new();
        claims.insert("sub".into(), self.status_list_uri(list_id).into());
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
            // Checked under the slot's lock, which `forget_status_lists`
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
