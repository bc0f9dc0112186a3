//! Token status lists (IETF draft-ietf-oauth-status-list): decoding the
//! compressed bit array, and the per-list cache.
//!
//! A status list is a byte array, zlib-compressed (RFC 1950), base64url
//! encoded without padding. With `bits` bits per token (1, 2, 4 or 8), the
//! status of token `idx` is the `bits`-wide value starting at bit
//! `(idx * bits) % 8` of byte `idx * bits / 8`, bits counted from the least
//! significant one. 0 is VALID, 1 INVALID (revoked), 2 SUSPENDED; other
//! values are application-specific.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Largest decompressed status list accepted (a zlib bomb stops here):
/// 16 MiB, 134 million one-bit statuses.
pub const MAX_STATUS_LIST_BYTES: usize = 16 * 1024 * 1024;
/// Most status lists cached at once (lists are per issuer, so few).
pub(crate) const MAX_CACHED_LISTS: usize = 64;

/// The status value of a valid token.
pub const STATUS_VALID: u8 = 0;
/// The status value of a revoked token.
pub const STATUS_INVALID: u8 = 1;

/// A decoded status list.
#[derive(Clone, PartialEq, Eq)]
pub struct StatusList {
    bits: u8,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for StatusList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusList")
            .field("bits", &self.bits)
            .field("len", &self.len())
            .finish()
    }
}

impl StatusList {
    /// Decodes `lst` (base64url without padding of the zlib-compressed
    /// array) with `bits` bits per status. `None` for anything malformed:
    /// a `bits` other than 1, 2, 4, 8, bad base64url, bad zlib, or more
    /// than [`MAX_STATUS_LIST_BYTES`] once decompressed.
    pub fn decode(lst: &str, bits: u8) -> Option<StatusList> {
        if !matches!(bits, 1 | 2 | 4 | 8) {
            return None;
        }
        let compressed = URL_SAFE_NO_PAD.decode(lst).ok()?;
        let mut bytes = Vec::new();
        let limit = MAX_STATUS_LIST_BYTES as u64 + 1;
        flate2::read::ZlibDecoder::new(compressed.as_slice())
            .take(limit)
            .read_to_end(&mut bytes)
            .ok()?;
        if bytes.len() > MAX_STATUS_LIST_BYTES {
            return None;
        }
        Some(StatusList { bits, bytes })
    }

    /// How many statuses the list holds.
    pub fn len(&self) -> u64 {
        self.bytes.len() as u64 * 8 / u64::from(self.bits)
    }

    /// Whether the list holds no status at all.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The status of token `idx`, or `None` beyond the end of the list.
    pub fn get(&self, idx: u64) -> Option<u8> {
        let bits = u64::from(self.bits);
        let first_bit = idx.checked_mul(bits)?;
        let byte = usize::try_from(first_bit / 8).ok()?;
        let shift = (first_bit % 8) as u32;
        let mask = ((1u16 << self.bits) - 1) as u8;
        self.bytes.get(byte).map(|b| (b >> shift) & mask)
    }
}

/// One cached list.
pub(crate) struct CachedList {
    pub list: Arc<StatusList>,
    /// When the list must be fetched again.
    pub refresh_at: Instant,
    /// The list's own `exp` (Unix seconds), past which it is not used.
    pub exp: Option<i64>,
    /// Last failed refresh (retries are spaced out).
    pub last_failure: Option<Instant>,
}

/// The cache of status lists, by URI.
#[derive(Default)]
pub(crate) struct StatusCache {
    pub lists: HashMap<String, CachedList>,
    /// URIs whose first fetch failed, and when (retries are spaced out).
    pub failures: HashMap<String, Instant>,
}

impl StatusCache {
    /// Makes room for one more list: drops the one due for refresh first.
    pub fn make_room(&mut self) {
        if self.lists.len() >= MAX_CACHED_LISTS {
            if let Some(oldest) = self
                .lists
                .iter()
                .min_by_key(|(_, c)| c.refresh_at)
                .map(|(k, _)| k.clone())
            {
                self.lists.remove(&oldest);
            }
        }
        if self.failures.len() >= MAX_CACHED_LISTS {
            self.failures.clear();
        }
    }
}

/// `Cache-Control: max-age` of a response, in seconds. `no-store` and
/// `no-cache` count as 0 (the caller's floor applies); `None` when the
/// header is missing or says nothing usable.
pub(crate) fn max_age(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let mut found = None;
    for value in headers.get_all(reqwest::header::CACHE_CONTROL) {
        let Ok(text) = value.to_str() else { continue };
        for directive in text.split(',') {
            let d = directive.trim();
            let lower = d.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                return Some(0);
            }
            if let Some(v) = lower.strip_prefix("max-age=") {
                if found.is_none() {
                    found = v.trim_matches('"').parse::<u64>().ok();
                }
            }
        }
    }
    found
}

/// `seconds` (or `default` when `None`) clamped to `[min, max]`.
pub(crate) fn clamp(
    seconds: Option<u64>,
    default: Duration,
    min: Duration,
    max: Duration,
) -> Duration {
    seconds
        .map(Duration::from_secs)
        .unwrap_or(default)
        .clamp(min, max)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// Encodes statuses as the draft says, independently of `get`.
    fn encode(statuses: &[u8], bits: u8) -> String {
        let per_byte = 8 / bits as usize;
        let mut bytes = vec![0u8; statuses.len().div_ceil(per_byte)];
        for (i, s) in statuses.iter().enumerate() {
            bytes[i / per_byte] |= s << ((i % per_byte) * bits as usize);
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&bytes).unwrap();
        URL_SAFE_NO_PAD.encode(z.finish().unwrap())
    }

    #[test]
    fn decodes_the_drafts_one_bit_example() {
        // draft-ietf-oauth-status-list, section 4.1: statuses
        // [1,0,0,1,1,1,0,1, 1,1,0,0,0,1,0,1] are the bytes 0xB9 0xA3.
        let statuses = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1];
        let lst = encode(&statuses, 1);
        let list = StatusList::decode(&lst, 1).unwrap();
        assert_eq!(list.bytes, vec![0xB9, 0xA3]);
        assert_eq!(list.len(), 16);
        for (i, s) in statuses.iter().enumerate() {
            assert_eq!(list.get(i as u64), Some(*s), "idx {i}");
        }
        assert_eq!(list.get(16), None);
        assert_eq!(list.get(u64::MAX), None);
        // The draft's own encoding of that list decodes the same way.
        let drafts = StatusList::decode("eNrbuRgAAhcBXQ", 1).unwrap();
        assert_eq!(drafts.bytes, vec![0xB9, 0xA3]);
    }

    #[test]
    fn decodes_wider_statuses_and_a_large_sparse_list() {
        let statuses: Vec<u8> = (0..40).map(|i| (i % 3) as u8).collect();
        for bits in [2u8, 4, 8] {
            let list = StatusList::decode(&encode(&statuses, bits), bits).unwrap();
            for (i, s) in statuses.iter().enumerate() {
                assert_eq!(list.get(i as u64), Some(*s), "bits {bits} idx {i}");
            }
        }
        // 1 million one-bit statuses, one revoked: compresses to little.
        let mut big = vec![0u8; 1_000_000];
        big[765_432] = 1;
        let lst = encode(&big, 1);
        assert!(lst.len() < 2_000, "{}", lst.len());
        let list = StatusList::decode(&lst, 1).unwrap();
        assert_eq!(list.get(765_432), Some(1));
        assert_eq!(list.get(765_431), Some(0));
        assert_eq!(list.get(765_433), Some(0));
        assert_eq!(list.get(999_999), Some(0));
    }

    #[test]
    fn refuses_malformed_lists_and_bombs() {
        let ok = encode(&[1, 0], 1);
        assert!(StatusList::decode(&ok, 3).is_none());
        assert!(StatusList::decode(&ok, 0).is_none());
        assert!(StatusList::decode("not base64!", 1).is_none());
        assert!(StatusList::decode(&format!("{ok}=="), 1).is_none());
        // Raw deflate or plain bytes are not zlib.
        assert!(StatusList::decode(&URL_SAFE_NO_PAD.encode([0xB9, 0xA3]), 1).is_none());
        // 17 MiB of zeros compress to a few KiB but are refused.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; MAX_STATUS_LIST_BYTES + 1024 * 1024])
            .unwrap();
        let bomb = URL_SAFE_NO_PAD.encode(z.finish().unwrap());
        assert!(bomb.len() < 64 * 1024);
        assert!(StatusList::decode(&bomb, 1).is_none());
    }

    #[test]
    fn cache_control_max_age() {
        use reqwest::header::{HeaderMap, HeaderValue, CACHE_CONTROL};
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(max_age(&h("public, max-age=300")), Some(300));
        assert_eq!(max_age(&h("Max-Age=\"60\", public")), Some(60));
        assert_eq!(max_age(&h("no-store")), Some(0));
        assert_eq!(max_age(&h("max-age=60, no-cache")), Some(0));
        assert_eq!(max_age(&h("public")), None);
        assert_eq!(max_age(&h("max-age=soon")), None);
        assert_eq!(max_age(&HeaderMap::new()), None);
        let (min, max) = (Duration::from_secs(30), Duration::from_secs(3600));
        let d = Duration::from_secs(600);
        assert_eq!(clamp(Some(300), d, min, max), Duration::from_secs(300));
        assert_eq!(clamp(Some(0), d, min, max), min);
        assert_eq!(clamp(Some(u64::MAX), d, min, max), max);
        assert_eq!(clamp(None, d, min, max), d);
    }
}
