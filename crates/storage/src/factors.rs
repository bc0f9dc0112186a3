//! Second factors: a user's TOTP factor and recovery codes. The TOTP secret
//! arrives sealed and recovery codes hashed; every "use once" is a
//! conditional update, so two instances never accept the same code.

use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter,
    QueryOrder, Set,
};

use crate::{
    entity::{recovery_codes, totp_factors, users},
    model::{RecoveryCode, TotpFactor},
    Store, StoreError,
};

impl From<totp_factors::Model> for TotpFactor {
    fn from(m: totp_factors::Model) -> Self {
        TotpFactor {
            user_id: m.user_id.into(),
            secret_sealed: m.secret_sealed,
            created_at: m.created_at,
            confirmed_at: m.confirmed_at,
            last_step: m.last_step,
        }
    }
}

impl Store {
    /// The user's TOTP factor, confirmed or waiting for its first code.
    pub async fn totp_factor(&self, user_id: &str) -> Result<Option<TotpFactor>, StoreError> {
        Ok(totp_factors::Entity::find_by_id(user_id.to_owned())
            .one(&self.db)
            .await?
            .map(TotpFactor::from))
    }

    /// Starts a TOTP enrolment, replacing one that was never confirmed. A
    /// confirmed factor is [`StoreError::Conflict`]: it must be removed
    /// first.
    pub async fn begin_totp(
        &self,
        user_id: &str,
        secret_sealed: Vec<u8>,
        now: i64,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        totp_factors::Entity::delete_many()
            .filter(totp_factors::Column::UserId.eq(user_id))
            .filter(totp_factors::Column::ConfirmedAt.is_null())
            .exec(&txn)
            .await?;
        totp_factors::ActiveModel {
            user_id: Set(user_id.to_owned()),
            secret_sealed: Set(secret_sealed),
            created_at: Set(now),
            confirmed_at: Set(None),
            last_step: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict("a TOTP factor is already enrolled".into())
            }
            other => other,
        })?;
        txn.commit().await?;
        Ok(())
    }

    /// Confirms a pending enrolment created after `created_after` with the
    /// code of `step`. False when there is none (expired, already
    /// confirmed, removed meanwhile).
    pub async fn confirm_totp(
        &self,
        user_id: &str,
        created_after: i64,
        step: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let res = totp_factors::Entity::update_many()
            .col_expr(totp_factors::Column::ConfirmedAt, Some(now).into())
            .col_expr(totp_factors::Column::LastStep, Some(step).into())
            .filter(totp_factors::Column::UserId.eq(user_id))
            .filter(totp_factors::Column::ConfirmedAt.is_null())
            .filter(totp_factors::Column::CreatedAt.gt(created_after))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Accepts the code of time step `step` once: true only if `step` is
    /// later than every step accepted before (RFC 6238 5.2: a code is
    /// never accepted twice), in one conditional update.
    pub async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let res = totp_factors::Entity::update_many()
            .col_expr(totp_factors::Column::LastStep, Some(step).into())
            .filter(totp_factors::Column::UserId.eq(user_id))
            .filter(totp_factors::Column::ConfirmedAt.is_not_null())
            .filter(
                Condition::any()
                    .add(totp_factors::Column::LastStep.is_null())
                    .add(totp_factors::Column::LastStep.lt(step)),
            )
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Removes the user's TOTP factor and recovery codes (they belong to
    /// it). Returns whether there was a factor.
    pub async fn delete_totp(&self, user_id: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let res = totp_factors::Entity::delete_many()
            .filter(totp_factors::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        recovery_codes::Entity::delete_many()
            .filter(recovery_codes::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(res.rows_affected > 0)
    }

    /// Replaces the user's recovery codes with `hashes` (new codes make
    /// the old ones void).
    pub async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        recovery_codes::Entity::delete_many()
            .filter(recovery_codes::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        if !hashes.is_empty() {
            recovery_codes::Entity::insert_many(hashes.iter().map(|h| {
                recovery_codes::ActiveModel {
                    code_hash: Set(h.clone()),
                    user_id: Set(user_id.to_owned()),
                    created_at: Set(now),
                    used_at: Set(None),
                }
            }))
            .exec(&txn)
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Spends one recovery code of the user: true once, false ever after
    /// (and for a code of anyone else).
    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let res = recovery_codes::Entity::update_many()
            .col_expr(recovery_codes::Column::UsedAt, Expr::value(Some(now)))
            .filter(recovery_codes::Column::CodeHash.eq(code_hash))
            .filter(recovery_codes::Column::UserId.eq(user_id))
            .filter(recovery_codes::Column::UsedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// The user's recovery codes (when made, when used), used ones last.
    pub async fn recovery_codes(&self, user_id: &str) -> Result<Vec<RecoveryCode>, StoreError> {
        Ok(recovery_codes::Entity::find()
            .filter(recovery_codes::Column::UserId.eq(user_id))
            .order_by_asc(recovery_codes::Column::UsedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| RecoveryCode {
                created_at: m.created_at,
                used_at: m.used_at,
            })
            .collect())
    }

    /// Whether the user must sign in with a second factor (set by an
    /// operator). [`StoreError::NotFound`] for an unknown user id.
    pub async fn set_mfa_required(
        &self,
        user_id: &str,
        required: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        let res = users::Entity::update_many()
            .col_expr(users::Column::MfaRequired, required.into())
            .col_expr(users::Column::UpdatedAt, now.into())
            .filter(users::Column::Id.eq(user_id))
            .exec(&self.db)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound(format!("no user with id {user_id:?}")));
        }
        Ok(())
    }

    /// Sets a user's password hash. [`StoreError::NotFound`] for an unknown user id.
    pub async fn set_password_hash(
        &self,
        user_id: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let res = users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, password_hash.into())
            .col_expr(users::Column::UpdatedAt, now.into())
            .filter(users::Column::Id.eq(user_id))
            .exec(&self.db)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound(format!("no user with id {user_id:?}")));
        }
        Ok(())
    }
}
