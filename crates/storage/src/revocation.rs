//! The revocation list: ids (jti) of stateless access tokens withdrawn
//! before their expiry. Entries are pruned once the token would have expired.

use sea_orm::{sea_query::OnConflict, ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::{entity::revoked_tokens as rev, Store, StoreError};

impl Store {
    /// Adds a jti to the revocation list (idempotent).
    pub async fn revoke_jti(&self, jti: &str, expires_at: i64, now: i64) -> Result<(), StoreError> {
        rev::Entity::insert(rev::ActiveModel {
            jti: Set(jti.to_owned()),
            expires_at: Set(expires_at),
            created_at: Set(now),
        })
        .on_conflict(OnConflict::column(rev::Column::Jti).do_nothing().to_owned())
        .do_nothing()
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// Is this jti on the revocation list? One indexed read.
    pub async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(rev::Entity::find_by_id(jti.to_owned())
            .one(&self.db)
            .await?
            .is_some())
    }

    /// The entries among `keys` that are on the list, with the time each
    /// was added: one indexed read for a token's jti, subject and grant.
    pub async fn revocation_entries(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(rev::Entity::find()
            .filter(rev::Column::Jti.is_in(keys.iter().cloned()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| (m.jti, m.created_at))
            .collect())
    }

    /// Adds or refreshes an entry: for cut-off entries ("every token of this
    /// subject issued until now") the newest time wins.
    pub async fn revoke_key_until(
        &self,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        rev::Entity::insert(rev::ActiveModel {
            jti: Set(key.to_owned()),
            expires_at: Set(expires_at),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(rev::Column::Jti)
                .update_columns([rev::Column::ExpiresAt, rev::Column::CreatedAt])
                .to_owned(),
        )
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// Records a one-time value (a client assertion's jti) until
    /// `expires_at`. Returns false when it was recorded before: a replay.
    pub async fn record_once(
        &self,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let res = rev::Entity::insert(rev::ActiveModel {
            jti: Set(key.to_owned()),
            expires_at: Set(expires_at),
            created_at: Set(now),
        })
        .on_conflict(OnConflict::column(rev::Column::Jti).do_nothing().to_owned())
        .do_nothing()
        .exec_without_returning(&self.db)
        .await?;
        Ok(matches!(res, sea_orm::TryInsertResult::Inserted(n) if n == 1))
    }

    /// How many entries the list holds (for metrics).
    pub async fn revocation_list_size(&self) -> Result<u64, StoreError> {
        use sea_orm::PaginatorTrait;
        Ok(rev::Entity::find().count(&self.db).await?)
    }

    /// Removes entries whose tokens have expired anyway.
    pub async fn prune_revoked(&self, now: i64) -> Result<u64, StoreError> {
        Ok(rev::Entity::delete_many()
            .filter(rev::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
