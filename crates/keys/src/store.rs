//! What the key ring needs from a database: the [`KeyStore`] trait, the key
//! record it stores and the outcomes of its lifecycle changes. The storage
//! crate implements the trait; this crate never sees SQL.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use gatehouse_jose::{Alg, KeyUse};
use gatehouse_protocol::Kid;

use crate::StoreFailure;

/// Where a key stands in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not yet used.
    Next,
    /// Signs (or is the current encryption key).
    Active,
    /// Still published and usable for verification or decryption.
    Retired,
    /// Withdrawn at once.
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Revoked => "revoked",
        }
    }
    pub fn parse(s: &str) -> Option<KeyState> {
        Some(match s {
            "next" => KeyState::Next,
            "active" => KeyState::Active,
            "retired" => KeyState::Retired,
            "revoked" => KeyState::Revoked,
            _ => return None,
        })
    }
}

/// A key as stored: the private half sealed under the key-encryption key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub kid: Kid,
    pub key_use: KeyUse,
    pub alg: Alg,
    pub state: KeyState,
    pub sealed_private_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("use", &self.key_use)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("sealed_private_key", &"<hidden>")
            .finish_non_exhaustive()
    }
}

/// What a rotation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The key that became active.
    pub activated: Kid,
    /// The key that was active and is now retired, if any.
    pub retired: Option<Kid>,
    /// The freshly inserted next key.
    pub next: Kid,
}

/// What a revocation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRevocation {
    pub kid: Kid,
    /// The state the key was in before.
    pub was: KeyState,
    /// When the revoked key was active: the key that took over.
    pub activated: Option<Kid>,
    /// The next key inserted to keep one in reserve, if any.
    pub next: Option<Kid>,
}

/// The key ring's view of the database. Every change bumps the `keys`
/// epoch in the same transaction, and concurrent changes from several
/// instances serialize: exactly one of two simultaneous rotations happens.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The `keys` epoch: changes whenever any key changes.
    async fn keys_epoch(&self) -> Result<i64, StoreFailure>;

    /// Every key, oldest first, in every state.
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreFailure>;

    /// Makes sure `(key_use, alg)` has an active and a next key, inserting
    /// the given candidates where a role is empty. Returns the kids
    /// inserted. Concurrent callers insert once between them.
    async fn ensure_keys(
        &self,
        key_use: KeyUse,
        alg: Alg,
        active: KeyRecord,
        next: KeyRecord,
        now: i64,
    ) -> Result<Vec<Kid>, StoreFailure>;

    /// Inserts `key` as a next key.
    async fn add_next_key(&self, key: KeyRecord, now: i64) -> Result<(), StoreFailure>;

    /// Rotates `(key_use, alg)`: next → active, active → retired, and
    /// `new_next` inserted. With `expected_next`, only if that is still the
    /// next key (a compare-and-swap). `None` if nothing rotated.
    async fn rotate_keys(
        &self,
        key_use: KeyUse,
        alg: Alg,
        expected_next: Option<&str>,
        new_next: KeyRecord,
        now: i64,
    ) -> Result<Option<Rotation>, StoreFailure>;

    /// Withdraws `kid` at once; `replacement` becomes the next key where
    /// one is needed.
    async fn revoke_key(
        &self,
        kid: &str,
        replacement: KeyRecord,
        now: i64,
    ) -> Result<KeyRevocation, StoreFailure>;

    /// Deletes retired keys retired before `cutoff`; returns how many.
    async fn prune_retired_keys(&self, cutoff: i64) -> Result<u64, StoreFailure>;
}
