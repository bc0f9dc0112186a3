//! Second factors: a user's TOTP factor and recovery codes. The TOTP secret
//! arrives sealed and recovery codes hashed; every "use once" is a
//! conditional update, so two instances never accept the same code.

use sea_orm::{
    sea_query::{Expr, OnConflict},
    ColumnTrait, Condition, EntityTrait, QueryFilter, Set,
};

use crate::{
    entity::{factor_failures, passkeys, recovery_codes, totp_factors, users},
    model::{Factors, RecoveryCode, TotpFactor},
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

    /// Starts a TOTP enrolment for the session `session_hash`, replacing
    /// one that was never confirmed, in one statement (two pages loading at
    /// once both succeed; the later secret wins). A confirmed factor is
    /// [`StoreError::Conflict`]: it must be removed first.
    pub async fn begin_totp(
        &self,
        user_id: &str,
        secret_sealed: Vec<u8>,
        session_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        use totp_factors::Column as C;
        let res = totp_factors::Entity::insert(totp_factors::ActiveModel {
            user_id: Set(user_id.to_owned()),
            secret_sealed: Set(secret_sealed),
            created_at: Set(now),
            confirmed_at: Set(None),
            last_step: Set(None),
            session_hash: Set(Some(session_hash.to_owned())),
        })
        .on_conflict(
            OnConflict::column(C::UserId)
                .update_columns([C::SecretSealed, C::CreatedAt, C::LastStep, C::SessionHash])
                .action_and_where(Expr::col((totp_factors::Entity, C::ConfirmedAt)).is_null())
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        if res == 0 {
            return Err(StoreError::Conflict(
                "a TOTP factor is already enrolled".into(),
            ));
        }
        Ok(())
    }

    /// Confirms a pending enrolment the session `session_hash` began after
    /// `created_after` with the code of `step`. False when there is none
    /// (expired, already confirmed, removed meanwhile, or begun by another
    /// session).
    pub async fn confirm_totp(
        &self,
        user_id: &str,
        session_hash: &str,
        created_after: i64,
        step: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let res = totp_factors::Entity::update_many()
            .col_expr(totp_factors::Column::ConfirmedAt, Some(now).into())
            .col_expr(totp_factors::Column::LastStep, Some(step).into())
            .filter(totp_factors::Column::UserId.eq(user_id))
            .filter(totp_factors::Column::ConfirmedAt.is_null())
            .filter(totp_factors::Column::SessionHash.eq(session_hash))
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

    /// The user's recovery codes (when made, when used): unused ones
    /// first, then used ones by when (sorted here: the backends order
    /// NULLs differently).
    pub async fn recovery_codes(&self, user_id: &str) -> Result<Vec<RecoveryCode>, StoreError> {
        let mut codes: Vec<RecoveryCode> = recovery_codes::Entity::find()
            .filter(recovery_codes::Column::UserId.eq(user_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| RecoveryCode {
                created_at: m.created_at,
                used_at: m.used_at,
            })
            .collect();
        codes.sort_by_key(|c| (c.used_at.is_some(), c.used_at, c.created_at));
        Ok(codes)
    }

    /// Counts one attempt at a second factor of the user as a failure
    /// until [`Store::clear_factor_failures`] says it succeeded, in one
    /// statement. Failures in a row start over after `window` seconds
    /// without one. Past `limit` in a row the attempt is not counted and
    /// the answer is the seconds until the account may try again: the hard
    /// limit holds across instances and restarts (NIST SP 800-63B 5.2.2).
    pub async fn count_factor_attempt(
        &self,
        user_id: &str,
        limit: u32,
        window: i64,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        use factor_failures::Column as C;
        let stale = Expr::col((factor_failures::Entity, C::LastFailedAt)).lte(now - window);
        let failures = Expr::case(stale.clone(), 1)
            .finally(Expr::col((factor_failures::Entity, C::Failures)).add(1));
        let counted = factor_failures::Entity::insert(factor_failures::ActiveModel {
            user_id: Set(user_id.to_owned()),
            failures: Set(1),
            last_failed_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(C::UserId)
                .value(C::Failures, failures)
                .value(C::LastFailedAt, now)
                .action_and_where(
                    Condition::any()
                        .add(stale)
                        .add(Expr::col((factor_failures::Entity, C::Failures)).lt(i64::from(limit)))
                        .into(),
                )
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        if counted == 1 {
            return Ok(None);
        }
        let last = factor_failures::Entity::find_by_id(user_id.to_owned())
            .one(&self.db)
            .await?
            .map_or(now, |m| m.last_failed_at);
        Ok(Some((last + window - now).max(1)))
    }

    /// The user's wrong second-factor codes in a row and when the last
    /// was, if any are counted.
    pub async fn factor_failures(&self, user_id: &str) -> Result<Option<(u32, i64)>, StoreError> {
        Ok(factor_failures::Entity::find_by_id(user_id.to_owned())
            .one(&self.db)
            .await?
            .map(|m| (u32::try_from(m.failures).unwrap_or(0), m.last_failed_at)))
    }

    /// Forgets the user's failed second-factor attempts (after a success,
    /// or an operator's reset).
    pub async fn clear_factor_failures(&self, user_id: &str) -> Result<(), StoreError> {
        factor_failures::Entity::delete_by_id(user_id.to_owned())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Which second factors the user has (a confirmed TOTP factor, any
    /// passkey), in one query.
    pub async fn factors_of_user(&self, user_id: &str) -> Result<Factors, StoreError> {
        use sea_orm::{sea_query::Query, FromQueryResult, QuerySelect};
        #[derive(FromQueryResult)]
        struct Row {
            totp: bool,
            passkey: bool,
        }
        let totp = Query::select()
            .expr(Expr::val(1))
            .from(totp_factors::Entity)
            .and_where(Expr::col((totp_factors::Entity, totp_factors::Column::UserId)).eq(user_id))
            .and_where(
                Expr::col((totp_factors::Entity, totp_factors::Column::ConfirmedAt)).is_not_null(),
            )
            .to_owned();
        let passkey = Query::select()
            .expr(Expr::val(1))
            .from(passkeys::Entity)
            .and_where(Expr::col((passkeys::Entity, passkeys::Column::UserId)).eq(user_id))
            .to_owned();
        let row = users::Entity::find_by_id(user_id.to_owned())
            .select_only()
            .expr_as(Expr::exists(totp), "totp")
            .expr_as(Expr::exists(passkey), "passkey")
            .into_model::<Row>()
            .one(&self.db)
            .await?;
        Ok(row.map_or_else(Factors::default, |r| Factors {
            totp: r.totp,
            passkey: r.passkey,
        }))
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
