//! The key ring against an in-memory [`KeyStore`]: what it asks of its
//! store, without a database (the scenarios on real databases, both
//! backends, are in crates/storage/tests/key_ring).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::{ManualClock, StoreFailure};

/// Keys in a vector and an epoch bumped by every change.
#[derive(Default)]
struct MemoryStore {
    inner: Mutex<(i64, Vec<KeyRecord>)>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct MemoryError(&'static str);

fn failure(what: &'static str) -> StoreFailure {
    StoreFailure::new(false, MemoryError(what))
}

fn oldest(keys: &[KeyRecord], alg: Alg, state: KeyState) -> Option<usize> {
    keys.iter()
        .enumerate()
        .filter(|(_, k)| k.alg == alg && k.state == state)
        .min_by_key(|(_, k)| (k.created_at, k.kid.clone()))
        .map(|(i, _)| i)
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn keys_epoch(&self) -> Result<i64, StoreFailure> {
        Ok(self.inner.lock().unwrap().0)
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreFailure> {
        Ok(self.inner.lock().unwrap().1.clone())
    }

    async fn ensure_keys(
        &self,
        _key_use: KeyUse,
        alg: Alg,
        mut active: KeyRecord,
        mut next: KeyRecord,
        now: i64,
    ) -> Result<Vec<Kid>, StoreFailure> {
        let mut guard = self.inner.lock().unwrap();
        guard.0 += 1;
        let mut inserted = Vec::new();
        if oldest(&guard.1, alg, KeyState::Active).is_none() {
            active.state = KeyState::Active;
            active.activated_at = Some(now);
            inserted.push(active.kid.clone());
            guard.1.push(active);
        }
        if oldest(&guard.1, alg, KeyState::Next).is_none() {
            next.state = KeyState::Next;
            inserted.push(next.kid.clone());
            guard.1.push(next);
        }
        Ok(inserted)
    }

    async fn add_next_key(&self, mut key: KeyRecord, _now: i64) -> Result<(), StoreFailure> {
        let mut guard = self.inner.lock().unwrap();
        guard.0 += 1;
        key.state = KeyState::Next;
        guard.1.push(key);
        Ok(())
    }

    async fn rotate_keys(
        &self,
        _key_use: KeyUse,
        alg: Alg,
        expected_next: Option<&str>,
        mut new_next: KeyRecord,
        now: i64,
    ) -> Result<Option<Rotation>, StoreFailure> {
        let mut guard = self.inner.lock().unwrap();
        guard.0 += 1;
        let Some(next) = oldest(&guard.1, alg, KeyState::Next) else {
            return Ok(None);
        };
        if expected_next.is_some_and(|kid| kid != guard.1[next].kid) {
            return Ok(None);
        }
        let retired = oldest(&guard.1, alg, KeyState::Active).map(|i| {
            guard.1[i].state = KeyState::Retired;
            guard.1[i].retired_at = Some(now);
            guard.1[i].kid.clone()
        });
        guard.1[next].state = KeyState::Active;
        guard.1[next].activated_at = Some(now);
        let activated = guard.1[next].kid.clone();
        new_next.state = KeyState::Next;
        let next_kid = new_next.kid.clone();
        guard.1.push(new_next);
        Ok(Some(Rotation {
            activated,
            retired,
            next: next_kid,
        }))
    }

    async fn revoke_key(
        &self,
        _kid: &str,
        _replacement: KeyRecord,
        _now: i64,
    ) -> Result<KeyRevocation, StoreFailure> {
        Err(failure("revocation is tested on real databases"))
    }

    async fn prune_retired_keys(&self, _cutoff: i64) -> Result<u64, StoreFailure> {
        Ok(0)
    }
}

fn claims() -> serde_json::Map<String, serde_json::Value> {
    serde_json::json!({"iss": "https://gatehouse.test", "sub": "alice"})
        .as_object()
        .unwrap()
        .clone()
}

async fn ring() -> Arc<KeyRing> {
    let clock = ManualClock::default();
    clock.set(1_700_000_000);
    KeyRing::open(
        MemoryStore::default(),
        Kek::generate(),
        RotationPolicy {
            signing_algs: vec![Alg::ES256],
            ..RotationPolicy::default()
        },
        Arc::new(clock),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn opens_on_any_key_store_and_signs_with_the_active_key() {
    let ring = ring().await;
    let snap = ring.snapshot();
    // ES256 and the own encryption key, each active and next.
    assert_eq!(snap.keys().len(), 4);
    let token = ring.sign(Alg::ES256, "JWT", &claims()).unwrap();
    let verified = ring.verify(&token, &[Alg::ES256]).unwrap();
    assert_eq!(verified.claims, claims());
    let jwks: serde_json::Value = serde_json::from_slice(&snap.jwks()).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn rotation_goes_through_the_store_and_old_tokens_still_verify() {
    let ring = ring().await;
    let before = ring.sign(Alg::ES256, "JWT", &claims()).unwrap();
    let done = ring.rotate(Some(KeyUse::Sig), None).await.unwrap();
    assert_eq!(done.len(), 1);
    let after = ring.sign(Alg::ES256, "JWT", &claims()).unwrap();
    assert_ne!(
        crate::peek_header(&before).unwrap()["kid"],
        crate::peek_header(&after).unwrap()["kid"]
    );
    assert!(ring.verify(&before, &[Alg::ES256]).is_ok());
    assert!(ring.verify(&after, &[Alg::ES256]).is_ok());
}

#[tokio::test]
async fn store_failures_keep_their_kind() {
    let ring = ring().await;
    let kid = ring.snapshot().keys()[0].kid.clone();
    match ring.revoke(&kid).await {
        Err(KeyError::Store(failure)) => assert!(!failure.is_unavailable()),
        other => panic!("expected a store failure, got {other:?}"),
    }
}

/// New key ids are 8 base64url characters, never beginning with `-` (an
/// operator types them after `gatehouse keys revoke`), and do not repeat.
#[test]
fn new_kids_are_short_and_never_begin_with_a_dash() {
    let kids: std::collections::HashSet<String> = (0..5_000).map(|_| new_kid()).collect();
    assert_eq!(kids.len(), 5_000);
    for kid in &kids {
        assert_eq!(kid.len(), 8, "{kid}");
        assert!(!kid.starts_with('-'), "{kid}");
        assert!(kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}
