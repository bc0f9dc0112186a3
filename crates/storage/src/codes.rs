//! Authorization codes: single use, short lived, bound to client, redirect
//! URI and PKCE challenge.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::{
    entity::authorization_codes as codes,
    error::corrupt,
    model::{AuthCode, CodeLookup, CodeRedemption, GrantWrites},
    refresh::create_refresh_token_in,
    status::record_access_token_in,
    Store, StoreError,
};

impl TryFrom<codes::Model> for AuthCode {
    type Error = StoreError;
    fn try_from(m: codes::Model) -> Result<Self, StoreError> {
        Ok(AuthCode {
            amr: serde_json::from_str(&m.amr).map_err(|e| corrupt("code amr", e))?,
            code_hash: m.code_hash,
            client_id: m.client_id.into(),
            user_id: m.user_id.into(),
            redirect_uri: m.redirect_uri,
            scope: m.scope,
            nonce: m.nonce,
            code_challenge: m.code_challenge,
            resource: m.resource,
            auth_time: m.auth_time,
            sid: m.sid,
            acr: m.acr,
            family_id: m.family_id,
            created_at: m.created_at,
            expires_at: m.expires_at,
            dpop_jkt: m.dpop_jkt.map(Into::into),
        })
    }
}

/// Stores a freshly issued code on `conn` (the pool or a transaction).
pub(crate) async fn create_code_in<C: ConnectionTrait>(
    conn: &C,
    c: &AuthCode,
) -> Result<(), StoreError> {
    codes::ActiveModel {
        code_hash: Set(c.code_hash.clone()),
        client_id: Set(c.client_id.to_string()),
        user_id: Set(c.user_id.to_string()),
        redirect_uri: Set(c.redirect_uri.clone()),
        scope: Set(c.scope.clone()),
        nonce: Set(c.nonce.clone()),
        code_challenge: Set(c.code_challenge.clone()),
        resource: Set(c.resource.clone()),
        auth_time: Set(c.auth_time),
        sid: Set(c.sid.clone()),
        acr: Set(c.acr.clone()),
        amr: Set(serde_json::Value::from(c.amr.clone()).to_string()),
        family_id: Set(c.family_id.clone()),
        access_token_jti: Set(None),
        access_token_expires_at: Set(None),
        created_at: Set(c.created_at),
        expires_at: Set(c.expires_at),
        dpop_jkt: Set(c.dpop_jkt.as_ref().map(ToString::to_string)),
        consumed_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Stores a freshly issued code.
    pub async fn create_code(&self, c: &AuthCode) -> Result<(), StoreError> {
        create_code_in(&self.db, c).await
    }

    /// Looks a code up without consuming it (a read: the caller checks the
    /// code's bindings, then redeems it with [`Store::redeem_code`], whose
    /// conditional write still decides between concurrent redemptions).
    pub async fn find_code(&self, code_hash: &str, now: i64) -> Result<CodeLookup, StoreError> {
        let Some(m) = codes::Entity::find_by_id(code_hash.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(CodeLookup::Unknown);
        };
        let used = m.consumed_at.is_some();
        let expired = m.expires_at <= now;
        let code = AuthCode::try_from(m)?;
        Ok(match (used, expired) {
            (true, _) => CodeLookup::Used(code),
            (false, true) => CodeLookup::Expired,
            (false, false) => CodeLookup::Live(code),
        })
    }

    /// Redeems a code in one conditional write: of N concurrent callers
    /// exactly one gets [`CodeRedemption::Redeemed`]. The jti and expiry of
    /// the access token about to be issued are recorded with it, so a later
    /// replay can revoke that token, and `writes` (the grant's first refresh
    /// token, the access token's record) are written in the same
    /// transaction: a failure leaves the code unspent.
    ///
    /// The caller checks client, redirect URI and PKCE before, on the code
    /// [`Store::find_code`] returned, so a request that fails them does not
    /// consume the code.
    pub async fn redeem_code(
        &self,
        code_hash: &str,
        now: i64,
        access_token_jti: &str,
        access_token_expires_at: i64,
        writes: &GrantWrites,
    ) -> Result<CodeRedemption, StoreError> {
        // The conditional write first: SQLite takes its write lock at once.
        let txn = self.db.begin().await?;
        let res = codes::Entity::update_many()
            .col_expr(codes::Column::ConsumedAt, now.into())
            .col_expr(codes::Column::AccessTokenJti, access_token_jti.into())
            .col_expr(
                codes::Column::AccessTokenExpiresAt,
                access_token_expires_at.into(),
            )
            .filter(codes::Column::CodeHash.eq(code_hash))
            .filter(codes::Column::ConsumedAt.is_null())
            .filter(codes::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        let Some(m) = codes::Entity::find_by_id(code_hash.to_owned())
            .one(&txn)
            .await?
        else {
            txn.rollback().await?;
            return Ok(CodeRedemption::Invalid);
        };
        if res.rows_affected == 1 {
            if let Some(t) = &writes.refresh_token {
                create_refresh_token_in(&txn, t).await?;
            }
            if let Some(r) = &writes.access_token {
                record_access_token_in(&txn, r).await?;
            }
            txn.commit().await?;
            return Ok(CodeRedemption::Redeemed(AuthCode::try_from(m)?));
        }
        txn.rollback().await?;
        if m.consumed_at.is_some() {
            return Ok(CodeRedemption::Replayed {
                family_id: m.family_id,
                access_token_jti: m.access_token_jti,
                access_token_expires_at: m.access_token_expires_at,
            });
        }
        Ok(CodeRedemption::Invalid)
    }

    /// Deletes a user's codes that were never redeemed (forced logout: a
    /// code issued before must not outlive it). Redeemed codes stay, so a
    /// replay is still recognised. Returns how many were deleted.
    pub async fn delete_pending_codes_of_user(&self, user_id: &str) -> Result<u64, StoreError> {
        Ok(codes::Entity::delete_many()
            .filter(codes::Column::UserId.eq(user_id))
            .filter(codes::Column::ConsumedAt.is_null())
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Deletes codes that expired before `cutoff`. Consumed codes are kept
    /// until then so that a replay is recognised as one.
    pub async fn prune_codes(&self, cutoff: i64) -> Result<u64, StoreError> {
        Ok(codes::Entity::delete_many()
            .filter(codes::Column::ExpiresAt.lt(cutoff))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
