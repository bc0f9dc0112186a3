//! Signing and encryption keys, and the state transitions of their lifecycle.
//!
//! Every mutation runs in one transaction that starts by bumping the `keys`
//! epoch. That first write serializes concurrent key changes on both
//! backends (a row lock on PostgreSQL, the write lock on SQLite), so two
//! instances rotating at the same moment produce exactly one rotation, and a
//! crash at any step rolls the whole change back.

use async_trait::async_trait;
use gatehouse_keys::{Alg, KeyStore, KeyUse, Kid, StoreFailure};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};

use crate::{
    entity::keys,
    error::corrupt,
    guarded::Txn,
    model::{KeyRecord, KeyState},
    Store, StoreError,
};

impl TryFrom<keys::Model> for KeyRecord {
    type Error = StoreError;
    fn try_from(m: keys::Model) -> Result<Self, StoreError> {
        Ok(KeyRecord {
            state: KeyState::parse(&m.state).ok_or_else(|| corrupt("key state", &m.state))?,
            kid: m.kid.into(),
            key_use: m.r#use.parse().map_err(|e| corrupt("key use", e))?,
            alg: m.alg.parse().map_err(|e| corrupt("key alg", e))?,
            sealed_private_key: m.sealed_private_key,
            public_jwk: m.public_jwk,
            created_at: m.created_at,
            activated_at: m.activated_at,
            retired_at: m.retired_at,
            revoked_at: m.revoked_at,
        })
    }
}

fn active_model(k: &KeyRecord, now: i64) -> keys::ActiveModel {
    keys::ActiveModel {
        kid: Set(k.kid.to_string()),
        r#use: Set(k.key_use.as_str().to_owned()),
        alg: Set(k.alg.as_str().to_owned()),
        state: Set(k.state.as_str().to_owned()),
        sealed_private_key: Set(k.sealed_private_key.clone()),
        public_jwk: Set(k.public_jwk.clone()),
        created_at: Set(k.created_at),
        activated_at: Set(k.activated_at),
        retired_at: Set(k.retired_at),
        revoked_at: Set(k.revoked_at),
        updated_at: Set(now),
    }
}

pub use gatehouse_keys::{KeyRevocation as Revocation, Rotation};

async fn of_kind<C: ConnectionTrait>(
    c: &C,
    key_use: KeyUse,
    alg: Alg,
    state: KeyState,
) -> Result<Vec<keys::Model>, StoreError> {
    Ok(keys::Entity::find()
        .filter(keys::Column::Use.eq(key_use.as_str()))
        .filter(keys::Column::Alg.eq(alg.as_str()))
        .filter(keys::Column::State.eq(state.as_str()))
        .order_by_asc(keys::Column::CreatedAt)
        .order_by_asc(keys::Column::Kid)
        .all(c)
        .await?)
}

async fn set_state(
    txn: &Txn,
    kid: &str,
    from: KeyState,
    to: KeyState,
    now: i64,
) -> Result<bool, StoreError> {
    let mut q = keys::Entity::update_many()
        .col_expr(keys::Column::State, to.as_str().into())
        .col_expr(keys::Column::UpdatedAt, now.into());
    q = match to {
        KeyState::Active => q.col_expr(keys::Column::ActivatedAt, now.into()),
        KeyState::Retired => q.col_expr(keys::Column::RetiredAt, now.into()),
        KeyState::Revoked => q.col_expr(keys::Column::RevokedAt, now.into()),
        KeyState::Next => q,
    };
    let res = q
        .filter(keys::Column::Kid.eq(kid))
        .filter(keys::Column::State.eq(from.as_str()))
        .exec(txn)
        .await?;
    Ok(res.rows_affected == 1)
}

impl Store {
    /// Every key, oldest first, in every state. A key whose algorithm this
    /// release does not know (a newer release made it) is left out and
    /// logged: this instance can neither use nor publish it, and the keys it
    /// does know stay usable.
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let mut out = Vec::new();
        for m in keys::Entity::find()
            .order_by_asc(keys::Column::CreatedAt)
            .order_by_asc(keys::Column::Kid)
            .all(&self.db)
            .await?
        {
            if m.alg.parse::<Alg>().is_err() || m.r#use.parse::<KeyUse>().is_err() {
                tracing::warn!(kid = %m.kid, alg = %m.alg, key_use = %m.r#use, "stored key ignored: algorithm or use unknown to this release");
                continue;
            }
            out.push(KeyRecord::try_from(m)?);
        }
        Ok(out)
    }

    /// Makes sure `(use, alg)` has an active and a next key, inserting the
    /// given candidates (state ignored: the first missing role is filled
    /// first) where a role is empty. Returns the kids inserted. Concurrent
    /// callers insert once between them.
    pub async fn ensure_keys(
        &self,
        key_use: KeyUse,
        alg: Alg,
        active: KeyRecord,
        next: KeyRecord,
        now: i64,
    ) -> Result<Vec<Kid>, StoreError> {
        let txn = self.db.begin().await?;
        Store::bump_epoch(&txn, "keys").await?;
        let mut inserted = Vec::new();
        if of_kind(&txn, key_use, alg, KeyState::Active)
            .await?
            .is_empty()
        {
            let mut k = active;
            k.state = KeyState::Active;
            k.activated_at = Some(now);
            active_model(&k, now).insert(&txn).await?;
            inserted.push(k.kid);
        }
        if of_kind(&txn, key_use, alg, KeyState::Next)
            .await?
            .is_empty()
        {
            let mut k = next;
            k.state = KeyState::Next;
            active_model(&k, now).insert(&txn).await?;
            inserted.push(k.kid);
        }
        if inserted.is_empty() {
            txn.rollback().await?;
        } else {
            txn.commit().await?;
        }
        Ok(inserted)
    }

    /// Adds a key in state `next`.
    pub async fn add_next_key(&self, mut k: KeyRecord, now: i64) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        Store::bump_epoch(&txn, "keys").await?;
        k.state = KeyState::Next;
        active_model(&k, now).insert(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Rotates `(use, alg)`: the oldest next key becomes active, the active
    /// key retires, `new_next` is inserted as next. With `expected_next`,
    /// the rotation happens only if that key is still the oldest next key:
    /// the compare-and-swap that makes a scheduled rotation happen once
    /// across a cluster. Returns `None` when there was nothing to do.
    pub async fn rotate_keys(
        &self,
        key_use: KeyUse,
        alg: Alg,
        expected_next: Option<&str>,
        mut new_next: KeyRecord,
        now: i64,
    ) -> Result<Option<Rotation>, StoreError> {
        let txn = self.db.begin().await?;
        Store::bump_epoch(&txn, "keys").await?;
        let Some(next) = of_kind(&txn, key_use, alg, KeyState::Next)
            .await?
            .into_iter()
            .next()
        else {
            txn.rollback().await?;
            return Ok(None);
        };
        if expected_next.is_some_and(|kid| kid != next.kid) {
            txn.rollback().await?;
            return Ok(None);
        }
        let old_active = of_kind(&txn, key_use, alg, KeyState::Active).await?;
        if !set_state(&txn, &next.kid, KeyState::Next, KeyState::Active, now).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        let mut retired = None;
        for old in old_active {
            set_state(&txn, &old.kid, KeyState::Active, KeyState::Retired, now).await?;
            retired = Some(old.kid.into());
        }
        new_next.state = KeyState::Next;
        active_model(&new_next, now).insert(&txn).await?;
        txn.commit().await?;
        Ok(Some(Rotation {
            activated: next.kid.into(),
            retired,
            next: new_next.kid,
        }))
    }

    /// Withdraws a key at once. If it was active, the oldest next key takes
    /// over; `replacement` is inserted as next whenever the revocation used
    /// up the reserve. [`StoreError::NotFound`] for an unknown or already
    /// revoked kid.
    pub async fn revoke_key(
        &self,
        kid: &str,
        mut replacement: KeyRecord,
        now: i64,
    ) -> Result<Revocation, StoreError> {
        let txn = self.db.begin().await?;
        Store::bump_epoch(&txn, "keys").await?;
        let Some(model) = keys::Entity::find_by_id(kid.to_owned()).one(&txn).await? else {
            return Err(StoreError::NotFound(format!("no key with kid {kid:?}")));
        };
        let rec = KeyRecord::try_from(model)?;
        if rec.state == KeyState::Revoked {
            return Err(StoreError::NotFound(format!(
                "key {kid:?} is already revoked"
            )));
        }
        set_state(&txn, kid, rec.state, KeyState::Revoked, now).await?;
        let mut out = Revocation {
            kid: kid.into(),
            was: rec.state,
            activated: None,
            next: None,
        };
        if rec.state == KeyState::Active {
            if let Some(next) = of_kind(&txn, rec.key_use, rec.alg, KeyState::Next)
                .await?
                .into_iter()
                .next()
            {
                set_state(&txn, &next.kid, KeyState::Next, KeyState::Active, now).await?;
                out.activated = Some(next.kid.into());
            } else {
                // No reserve was published: the replacement must sign at once.
                replacement.state = KeyState::Active;
                replacement.activated_at = Some(now);
                active_model(&replacement, now).insert(&txn).await?;
                out.activated = Some(replacement.kid);
                txn.commit().await?;
                return Ok(out);
            }
        }
        if of_kind(&txn, rec.key_use, rec.alg, KeyState::Next)
            .await?
            .is_empty()
        {
            replacement.state = KeyState::Next;
            active_model(&replacement, now).insert(&txn).await?;
            out.next = Some(replacement.kid);
        }
        txn.commit().await?;
        Ok(out)
    }

    /// Deletes retired keys retired before `cutoff` (every token they
    /// produced has expired). Returns how many went.
    pub async fn prune_retired_keys(&self, cutoff: i64) -> Result<u64, StoreError> {
        let txn = self.db.begin().await?;
        Store::bump_epoch(&txn, "keys").await?;
        let res = keys::Entity::delete_many()
            .filter(keys::Column::State.eq(KeyState::Retired.as_str()))
            .filter(keys::Column::RetiredAt.lt(cutoff))
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            txn.rollback().await?;
        } else {
            txn.commit().await?;
        }
        Ok(res.rows_affected)
    }
}

impl From<StoreError> for StoreFailure {
    fn from(e: StoreError) -> Self {
        StoreFailure::new(e.is_unavailable(), e)
    }
}

/// The key ring's store: the methods above, errors reported as
/// [`StoreFailure`] (which keeps whether the database was unavailable).
#[async_trait]
impl KeyStore for Store {
    async fn keys_epoch(&self) -> Result<i64, StoreFailure> {
        Ok(self.epoch("keys").await?)
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreFailure> {
        Ok(Store::list_keys(self).await?)
    }

    async fn ensure_keys(
        &self,
        key_use: KeyUse,
        alg: Alg,
        active: KeyRecord,
        next: KeyRecord,
        now: i64,
    ) -> Result<Vec<Kid>, StoreFailure> {
        Ok(Store::ensure_keys(self, key_use, alg, active, next, now).await?)
    }

    async fn add_next_key(&self, key: KeyRecord, now: i64) -> Result<(), StoreFailure> {
        Ok(Store::add_next_key(self, key, now).await?)
    }

    async fn rotate_keys(
        &self,
        key_use: KeyUse,
        alg: Alg,
        expected_next: Option<&str>,
        new_next: KeyRecord,
        now: i64,
    ) -> Result<Option<Rotation>, StoreFailure> {
        Ok(Store::rotate_keys(self, key_use, alg, expected_next, new_next, now).await?)
    }

    async fn revoke_key(
        &self,
        kid: &str,
        replacement: KeyRecord,
        now: i64,
    ) -> Result<Revocation, StoreFailure> {
        Ok(Store::revoke_key(self, kid, replacement, now).await?)
    }

    async fn prune_retired_keys(&self, cutoff: i64) -> Result<u64, StoreFailure> {
        Ok(Store::prune_retired_keys(self, cutoff).await?)
    }
}
