//! Passkeys and WebAuthn ceremonies. A ceremony is taken (read and
//! deleted) once: of two instances finishing the same ceremony, one wins.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::{
    entity::{passkeys, webauthn_ceremonies as wc},
    model::{Ceremony, PasskeyRecord},
    Store, StoreError,
};

impl From<passkeys::Model> for PasskeyRecord {
    fn from(m: passkeys::Model) -> Self {
        PasskeyRecord {
            credential_id: m.credential_id,
            user_id: m.user_id.into(),
            name: m.name,
            credential: m.credential,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            counter: m.counter,
            backup_eligible: m.backup_eligible,
            backup_state: m.backup_state,
        }
    }
}

impl Store {
    /// Stores a new passkey. A credential id already registered (to anyone)
    /// is [`StoreError::Conflict`].
    pub async fn create_passkey(&self, p: &PasskeyRecord) -> Result<(), StoreError> {
        passkeys::ActiveModel {
            credential_id: Set(p.credential_id.clone()),
            user_id: Set(p.user_id.to_string()),
            name: Set(p.name.clone()),
            credential: Set(p.credential.clone()),
            created_at: Set(p.created_at),
            last_used_at: Set(p.last_used_at),
            counter: Set(p.counter),
            backup_eligible: Set(p.backup_eligible),
            backup_state: Set(p.backup_state),
        }
        .insert(&self.db)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict("this passkey is already registered".into())
            }
            other => other,
        })?;
        Ok(())
    }

    /// A user's passkeys, oldest first.
    pub async fn passkeys_of_user(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError> {
        Ok(passkeys::Entity::find()
            .filter(passkeys::Column::UserId.eq(user_id))
            .order_by_asc(passkeys::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(PasskeyRecord::from)
            .collect())
    }

    /// The passkey with this credential id.
    pub async fn passkey(&self, credential_id: &str) -> Result<Option<PasskeyRecord>, StoreError> {
        Ok(passkeys::Entity::find_by_id(credential_id.to_owned())
            .one(&self.db)
            .await?
            .map(PasskeyRecord::from))
    }

    /// Records a use: the updated credential (counter, backup state) and
    /// when. Only a counter that moved forward (or stayed at 0, for
    /// authenticators without one) is written: a slower concurrent use
    /// cannot set it back.
    pub async fn record_passkey_use(
        &self,
        credential_id: &str,
        credential: &str,
        counter: i64,
        backup_state: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        use sea_orm::Condition;
        let res = passkeys::Entity::update_many()
            .col_expr(passkeys::Column::Credential, credential.into())
            .col_expr(passkeys::Column::Counter, counter.into())
            .col_expr(passkeys::Column::BackupState, backup_state.into())
            .col_expr(passkeys::Column::LastUsedAt, Some(now).into())
            .filter(passkeys::Column::CredentialId.eq(credential_id))
            .filter(
                Condition::any()
                    .add(passkeys::Column::Counter.lt(counter))
                    .add(passkeys::Column::Counter.eq(0)),
            )
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Removes one of the user's passkeys. Returns whether it was hers.
    pub async fn delete_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
    ) -> Result<bool, StoreError> {
        let res = passkeys::Entity::delete_many()
            .filter(passkeys::Column::UserId.eq(user_id))
            .filter(passkeys::Column::CredentialId.eq(credential_id))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Removes every passkey of a user (an operator's `users mfa reset`).
    pub async fn delete_passkeys_of_user(&self, user_id: &str) -> Result<u64, StoreError> {
        Ok(passkeys::Entity::delete_many()
            .filter(passkeys::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Stores a ceremony in progress under the keyed hash of its id.
    pub async fn put_ceremony(
        &self,
        id_hash: &str,
        c: &Ceremony,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        wc::ActiveModel {
            id_hash: Set(id_hash.to_owned()),
            kind: Set(c.kind.clone()),
            user_id: Set(c.user_id.as_ref().map(|u| u.to_string())),
            state: Set(c.state.clone()),
            session_hash: Set(c.session_hash.clone()),
            created_at: Set(now),
            expires_at: Set(expires_at),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Takes the ceremony `id_hash` of `kind`: returns it and deletes it,
    /// once. An expired, unknown, already taken ceremony, or one of
    /// another kind, is `None` (and the wrong kind is left alone).
    pub async fn take_ceremony(
        &self,
        id_hash: &str,
        kind: &str,
        now: i64,
    ) -> Result<Option<Ceremony>, StoreError> {
        let Some(m) = wc::Entity::find_by_id(id_hash.to_owned())
            .filter(wc::Column::Kind.eq(kind))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let gone = wc::Entity::delete_many()
            .filter(wc::Column::IdHash.eq(id_hash))
            .exec(&self.db)
            .await?;
        if gone.rows_affected != 1 || m.expires_at <= now {
            return Ok(None);
        }
        Ok(Some(Ceremony {
            kind: m.kind,
            user_id: m.user_id.map(Into::into),
            state: m.state,
            session_hash: m.session_hash,
        }))
    }

    /// Deletes expired ceremonies (housekeeping).
    pub async fn prune_ceremonies(&self, now: i64) -> Result<u64, StoreError> {
        Ok(wc::Entity::delete_many()
            .filter(wc::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
