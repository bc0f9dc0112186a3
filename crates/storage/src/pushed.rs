//! Pushed authorization requests (RFC 9126): stored when `/par` accepts
//! one, redeemed exactly once (one conditional write: one winner across
//! instances) by the client that pushed it, before it expires; deleted by
//! housekeeping after.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::{
    entity::pushed_authorization_requests as par,
    model::{PushedRequest, Redemption},
    Store, StoreError,
};

impl From<par::Model> for PushedRequest {
    fn from(m: par::Model) -> Self {
        PushedRequest {
            id_hash: m.id_hash,
            client_id: m.client_id.into(),
            request: m.request,
            created_at: m.created_at,
            expires_at: m.expires_at,
            redeemed_at: m.redeemed_at,
        }
    }
}

impl Store {
    /// Stores a pushed request. A duplicate id is [`StoreError::Conflict`].
    pub async fn create_pushed_request(&self, p: &PushedRequest) -> Result<(), StoreError> {
        par::ActiveModel {
            id_hash: Set(p.id_hash.clone()),
            client_id: Set(p.client_id.to_string()),
            request: Set(p.request.clone()),
            created_at: Set(p.created_at),
            expires_at: Set(p.expires_at),
            redeemed_at: Set(p.redeemed_at),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Redeems the pushed request `id_hash` for `client_id` at `now`: one
    /// conditional update (same client, not redeemed, not expired), so of
    /// N concurrent callers exactly one gets [`Redemption::Redeemed`]. A
    /// miss says why, and leaves the row as it was (another client's
    /// attempt does not spend it).
    pub async fn redeem_pushed_request(
        &self,
        id_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Redemption, StoreError> {
        // The conditional write first: SQLite takes its write lock at once.
        let txn = self.db.begin().await?;
        let res = par::Entity::update_many()
            .col_expr(par::Column::RedeemedAt, now.into())
            .filter(par::Column::IdHash.eq(id_hash))
            .filter(par::Column::ClientId.eq(client_id))
            .filter(par::Column::RedeemedAt.is_null())
            .filter(par::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        let row = par::Entity::find_by_id(id_hash.to_owned())
            .one(&txn)
            .await?;
        txn.commit().await?;
        Ok(match row {
            Some(m) if res.rows_affected == 1 => Redemption::Redeemed(m.into()),
            None => Redemption::Unknown,
            Some(m) if m.client_id != client_id => Redemption::OtherClient,
            Some(m) if m.redeemed_at.is_some() => Redemption::Used,
            Some(_) => Redemption::Expired,
        })
    }

    /// Deletes pushed requests that expired before `now` (redeemed ones
    /// are kept until then, so a second use is told it was used).
    pub async fn prune_pushed_requests(&self, now: i64) -> Result<u64, StoreError> {
        Ok(par::Entity::delete_many()
            .filter(par::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
