//! Refresh tokens: opaque, stored as hashes, rotated on every use, grouped
//! in families (one family per grant) for reuse detection.

use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    QueryFilter, Set,
};

use crate::{
    entity::refresh_tokens as rt,
    error::corrupt,
    model::{RefreshToken, TokenRecord},
    status::record_access_token_in,
    Store, StoreError,
};

impl TryFrom<rt::Model> for RefreshToken {
    type Error = StoreError;
    fn try_from(m: rt::Model) -> Result<Self, StoreError> {
        Ok(RefreshToken {
            amr: serde_json::from_str(&m.amr).map_err(|e| corrupt("refresh amr", e))?,
            token_hash: m.token_hash,
            family_id: m.family_id,
            client_id: m.client_id.into(),
            user_id: m.user_id.into(),
            scope: m.scope,
            resource: m.resource,
            auth_time: m.auth_time,
            sid: m.sid,
            acr: m.acr,
            successor_hash: m.successor_hash,
            created_at: m.created_at,
            expires_at: m.expires_at,
            used_at: m.used_at,
            revoked_at: m.revoked_at,
            dpop_jkt: m.dpop_jkt.map(Into::into),
        })
    }
}

fn active(t: &RefreshToken) -> rt::ActiveModel {
    rt::ActiveModel {
        token_hash: Set(t.token_hash.clone()),
        family_id: Set(t.family_id.clone()),
        client_id: Set(t.client_id.to_string()),
        user_id: Set(t.user_id.to_string()),
        scope: Set(t.scope.clone()),
        resource: Set(t.resource.clone()),
        auth_time: Set(t.auth_time),
        sid: Set(t.sid.clone()),
        acr: Set(t.acr.clone()),
        amr: Set(serde_json::Value::from(t.amr.clone()).to_string()),
        successor_hash: Set(t.successor_hash.clone()),
        created_at: Set(t.created_at),
        expires_at: Set(t.expires_at),
        used_at: Set(t.used_at),
        revoked_at: Set(t.revoked_at),
        dpop_jkt: Set(t.dpop_jkt.as_ref().map(ToString::to_string)),
    }
}

/// How long a rotated refresh token may come back for its successor (a
/// retry), as long as that successor has never been used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryWindow {
    /// Any time while the successor is unused: the token alone is useless
    /// to a thief (confidential clients, sender-constrained tokens).
    Unlimited,
    /// Only this many seconds after the rotation (bearer tokens of public
    /// clients: a longer window would be a window for a thief).
    Seconds(i64),
}

impl RetryWindow {
    fn admits(self, used_at: i64, now: i64) -> bool {
        match self {
            RetryWindow::Unlimited => true,
            RetryWindow::Seconds(s) => now - used_at <= s,
        }
    }
}

/// Why a refresh token cannot be used at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshRefusal {
    /// No such token.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Revoked (its grant, its user or its client).
    Revoked,
}

/// The outcome of presenting a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefreshUse {
    /// First use: the token was rotated; `successor` is now stored.
    Rotated(RefreshToken),
    /// The token was rotated before and its successor is still unused: a
    /// retry (lost response, two tabs, an answer that never arrived).
    /// Nothing changed; the caller hands out the same successor again.
    Retry(RefreshToken),
    /// A rotated token came back outside its [`RetryWindow`], or after its
    /// successor was used: the whole family has now been revoked.
    Reused { family_id: String },
    /// Unknown, expired or revoked: nothing was written.
    Invalid(RefreshRefusal),
}

pub(crate) async fn create_refresh_token_in<C: ConnectionTrait>(
    c: &C,
    t: &RefreshToken,
) -> Result<(), StoreError> {
    active(t).insert(c).await?;
    Ok(())
}

async fn revoke_family_in<C: ConnectionTrait>(
    c: &C,
    family_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    revoke_until_settled(c, with(rt::Column::FamilyId, family_id), family_id, now).await
}

/// Revokes every live refresh token matching `which` (`what` names it in
/// the log), repeating the `UPDATE` until it finds nothing more. On
/// PostgreSQL an `UPDATE` that waited for a rotation's row lock does not
/// see the successor that rotation inserted (READ COMMITTED rechecks only
/// rows it saw at its start); the next pass does, and a rotation of a
/// revoked token fails, so the loop ends. On SQLite the second pass finds
/// nothing.
async fn revoke_until_settled<C: ConnectionTrait>(
    c: &C,
    which: Condition,
    what: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let mut total = 0;
    // Each pass after the first only finds successors of rotations that
    // were in flight; a handful of passes is plenty.
    for _ in 0..16 {
        let n = rt::Entity::update_many()
            .col_expr(rt::Column::RevokedAt, now.into())
            .filter(which.clone())
            .filter(rt::Column::RevokedAt.is_null())
            .exec(c)
            .await?
            .rows_affected;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
    tracing::warn!(%what, "refresh-token revocation still finding live tokens after 16 passes");
    Ok(total)
}

/// The refresh tokens whose `column` is `value`.
fn with(column: rt::Column, value: &str) -> Condition {
    Condition::all().add(column.eq(value))
}

impl Store {
    /// Stores a new refresh token (the first of its family).
    pub async fn create_refresh_token(&self, t: &RefreshToken) -> Result<(), StoreError> {
        create_refresh_token_in(&self.db, t).await
    }

    /// Looks a refresh token up by hash, whatever its state.
    pub async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshToken>, StoreError> {
        rt::Entity::find_by_id(token_hash.to_owned())
            .one(&self.db)
            .await?
            .map(RefreshToken::try_from)
            .transpose()
    }

    /// Rotates `token_hash` to `successor` (whose fields the caller derives
    /// from the old token with [`RefreshUse`]'s data: pass a closure).
    ///
    /// `access_token` is the record of the access token issued with the
    /// successor: it is written in the same transaction as the rotation
    /// (and for a retry), so either the client can be handed everything or
    /// nothing was spent.
    ///
    /// The conditional `UPDATE ... WHERE used_at IS NULL` is the first
    /// statement of the transaction, so of N concurrent callers exactly one
    /// rotates; the others see a used token and are judged as retries or
    /// reuse by `retry` and the successor's state.
    pub async fn use_refresh_token(
        &self,
        token_hash: &str,
        successor_hash: &str,
        now: i64,
        retry: RetryWindow,
        make_successor: impl FnOnce(&RefreshToken) -> RefreshToken,
        access_token: Option<&TokenRecord>,
    ) -> Result<RefreshUse, StoreError> {
        let txn = self.db.begin().await?;
        let res = rt::Entity::update_many()
            .col_expr(rt::Column::UsedAt, now.into())
            .col_expr(rt::Column::SuccessorHash, successor_hash.into())
            .filter(rt::Column::TokenHash.eq(token_hash))
            .filter(rt::Column::UsedAt.is_null())
            .filter(rt::Column::RevokedAt.is_null())
            .filter(rt::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        let Some(m) = rt::Entity::find_by_id(token_hash.to_owned())
            .one(&txn)
            .await?
        else {
            txn.rollback().await?;
            return Ok(RefreshUse::Invalid(RefreshRefusal::Unknown));
        };
        let old = RefreshToken::try_from(m)?;
        if res.rows_affected == 1 {
            let succ = make_successor(&old);
            active(&succ).insert(&txn).await?;
            if let Some(r) = access_token {
                record_access_token_in(&txn, r).await?;
            }
            txn.commit().await?;
            return Ok(RefreshUse::Rotated(succ));
        }
        if old.revoked_at.is_some() {
            txn.rollback().await?;
            return Ok(RefreshUse::Invalid(RefreshRefusal::Revoked));
        }
        if old.expires_at <= now {
            txn.rollback().await?;
            return Ok(RefreshUse::Invalid(RefreshRefusal::Expired));
        }
        // Used before. A retry if the window admits it and the successor is
        // untouched (never used, not revoked, not expired). The check is a
        // no-op conditional write on the successor: it holds the
        // successor's row until the commit, so a revocation cannot slip in
        // between the check and the record written for the retry.
        if let (Some(used_at), Some(h)) = (old.used_at, &old.successor_hash) {
            if retry.admits(used_at, now) {
                let held = rt::Entity::update_many()
                    .col_expr(
                        rt::Column::SuccessorHash,
                        Expr::col(rt::Column::SuccessorHash).into(),
                    )
                    .filter(rt::Column::TokenHash.eq(h.as_str()))
                    .filter(rt::Column::UsedAt.is_null())
                    .filter(rt::Column::RevokedAt.is_null())
                    .filter(rt::Column::ExpiresAt.gt(now))
                    .exec(&txn)
                    .await?;
                let successor = match held.rows_affected {
                    1 => rt::Entity::find_by_id(h.clone()).one(&txn).await?,
                    _ => None,
                };
                if let Some(s) = successor {
                    let successor = RefreshToken::try_from(s)?;
                    match access_token {
                        Some(r) => {
                            record_access_token_in(&txn, r).await?;
                            txn.commit().await?;
                        }
                        None => txn.rollback().await?,
                    }
                    return Ok(RefreshUse::Retry(successor));
                }
            }
        }
        revoke_family_in(&txn, &old.family_id, now).await?;
        txn.commit().await?;
        Ok(RefreshUse::Reused {
            family_id: old.family_id,
        })
    }

    /// Revokes every refresh token of a family (a grant). Returns how many.
    pub async fn revoke_refresh_family(
        &self,
        family_id: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        revoke_family_in(&self.db, family_id, now).await
    }

    /// Revokes every refresh token issued to a client (the client is being
    /// deleted). Returns how many.
    pub async fn revoke_refresh_tokens_of_client(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        revoke_until_settled(
            &self.db,
            with(rt::Column::ClientId, client_id),
            client_id,
            now,
        )
        .await
    }

    /// The grants (families) a client holds: those of its refresh tokens,
    /// authorization codes and approved device authorizations still
    /// stored, each once.
    pub async fn grants_of_client(&self, client_id: &str) -> Result<Vec<String>, StoreError> {
        self.grants_where(client_id, None).await
    }

    /// The grants (families) `client_id` holds for `user_id`: those of its
    /// refresh tokens, authorization codes and approved device
    /// authorizations still stored, each once.
    pub async fn grants_of_user_at_client(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        self.grants_where(client_id, Some(user_id)).await
    }

    async fn grants_where(
        &self,
        client_id: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        use crate::entity::authorization_codes as codes;
        use sea_orm::{QuerySelect, QueryTrait};
        let mut out: Vec<String> = rt::Entity::find()
            .select_only()
            .column(rt::Column::FamilyId)
            .distinct()
            .filter(rt::Column::ClientId.eq(client_id))
            .apply_if(user_id, |q, u| q.filter(rt::Column::UserId.eq(u)))
            .into_tuple()
            .all(&self.db)
            .await?;
        let from_codes: Vec<String> = codes::Entity::find()
            .select_only()
            .column(codes::Column::FamilyId)
            .distinct()
            .filter(codes::Column::ClientId.eq(client_id))
            .apply_if(user_id, |q, u| q.filter(codes::Column::UserId.eq(u)))
            .into_tuple()
            .all(&self.db)
            .await?;
        out.extend(from_codes);
        // Device authorizations (RFC 8628) once approved: their grant may
        // have no refresh token and no code.
        use crate::entity::device_authorizations as dev;
        let from_devices: Vec<String> = dev::Entity::find()
            .select_only()
            .column(dev::Column::FamilyId)
            .distinct()
            .filter(dev::Column::ClientId.eq(client_id))
            .filter(dev::Column::UserId.is_not_null())
            .apply_if(user_id, |q, u| q.filter(dev::Column::UserId.eq(u)))
            .into_tuple()
            .all(&self.db)
            .await?;
        out.extend(from_devices);
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Revokes every refresh token of a user (forced logout).
    pub async fn revoke_refresh_tokens_of_user(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        revoke_until_settled(&self.db, with(rt::Column::UserId, user_id), user_id, now).await
    }

    /// Revokes every refresh token `client_id` holds for `user_id` (she
    /// withdrew her consent on the account page). Returns how many.
    pub async fn revoke_refresh_tokens_of_user_at_client(
        &self,
        user_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let which = with(rt::Column::UserId, user_id).add(rt::Column::ClientId.eq(client_id));
        let what = format!("{user_id} at {client_id}");
        revoke_until_settled(&self.db, which, &what, now).await
    }

    /// Deletes the refresh tokens of families in which no token lives
    /// past `cutoff`. Rotated tokens stay as long as their family could
    /// still be used: reuse detection needs them.
    pub async fn prune_refresh_tokens(&self, cutoff: i64) -> Result<u64, StoreError> {
        use sea_orm::sea_query::Query;
        let live = Query::select()
            .column(rt::Column::FamilyId)
            .from(rt::Entity)
            .and_where(rt::Column::ExpiresAt.gte(cutoff))
            .to_owned();
        Ok(rt::Entity::delete_many()
            .filter(rt::Column::FamilyId.not_in_subquery(live))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
