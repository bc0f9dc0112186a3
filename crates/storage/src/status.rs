//! The token status list (IETF OAuth Token Status List): every JWE access
//! token carries a global status index; revoked indices are recorded here.
//!
//! Indices are never reused. An instance reserves a block of them with one
//! atomic `UPDATE ... RETURNING` on the `status_index` counter, so issuing
//! an access token costs no write of its own. A block starts at a multiple
//! of its size (the indices skipped to get there are never used), so a
//! block whose size divides the list size never spans two lists. A row is written only for a
//! token bound to a user (so a grant or subject revocation can find it) or
//! for a token revoked one by one.

use sea_orm::{
    sea_query::{Expr, OnConflict, Query},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
};

use crate::{
    entity::{epochs, token_status as ts},
    model::TokenRecord,
    Store, StoreError,
};

/// One user-bound token's place in the status list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusEntry {
    /// The global index (list id times the list size, plus the index).
    pub idx: i64,
    pub list_id: i64,
    pub subject: Option<String>,
    pub family: Option<String>,
    pub expires_at: i64,
}

const COUNTER: &str = "status_index";

async fn record_token_status_in<C: ConnectionTrait>(
    c: &C,
    e: &StatusEntry,
) -> Result<(), StoreError> {
    ts::Entity::insert(ts::ActiveModel {
        idx: Set(e.idx),
        list_id: Set(e.list_id),
        subject: Set(e.subject.clone()),
        family: Set(e.family.clone()),
        expires_at: Set(e.expires_at),
        revoked: Set(false),
    })
    .on_conflict(OnConflict::column(ts::Column::Idx).do_nothing().to_owned())
    .do_nothing()
    .exec(c)
    .await?;
    Ok(())
}

/// Writes an issued access token's record on `c` (the store, or a grant's
/// transaction).
pub(crate) async fn record_access_token_in<C: ConnectionTrait>(
    c: &C,
    r: &TokenRecord,
) -> Result<(), StoreError> {
    match r {
        TokenRecord::Status(e) => record_token_status_in(c, e).await,
        TokenRecord::Opaque(t) => crate::opaque::create_opaque_token_in(c, t).await,
    }
}

impl Store {
    /// Reserves `size` (at least 1) consecutive global indices for this
    /// instance, starting at a multiple of `size`, and returns the first.
    /// One atomic statement on both backends.
    pub async fn reserve_status_block(&self, size: i64) -> Result<i64, StoreError> {
        let size = size.max(1);
        // Built with sea-query and run as a query: sea-orm's own
        // `exec_with_returning` refuses SQLite unless a feature is set.
        // value = ceil(value / size) * size + size (integer division on
        // both backends).
        let aligned = Expr::expr(Expr::col(epochs::Column::Value).add(size - 1))
            .div(size)
            .mul(size);
        let stmt = Query::update()
            .table(epochs::Entity)
            .value(epochs::Column::Value, Expr::expr(aligned).add(size))
            .and_where(epochs::Column::Name.eq(COUNTER))
            .returning_col(epochs::Column::Value)
            .to_owned();
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one(backend.build(&stmt))
            .await?
            .ok_or_else(|| StoreError::Corrupt("the status index counter is missing".into()))?;
        let end: i64 = row.try_get("", "value")?;
        Ok(end - size)
    }

    /// The first global index no instance has reserved yet.
    pub async fn status_high_water(&self) -> Result<i64, StoreError> {
        self.epoch(COUNTER).await
    }

    /// Records a user-bound token so that revoking its grant or its subject
    /// sets its bit.
    pub async fn record_token_status(&self, e: &StatusEntry) -> Result<(), StoreError> {
        record_token_status_in(&self.db, e).await
    }

    /// Writes what an issued access token needs stored (outside a grant's
    /// own transaction: client credentials).
    pub async fn record_access_token(&self, r: &TokenRecord) -> Result<(), StoreError> {
        record_access_token_in(&self.db, r).await
    }

    /// Marks one index revoked (idempotent).
    pub async fn revoke_status_index(
        &self,
        idx: i64,
        list_id: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        ts::Entity::insert(ts::ActiveModel {
            idx: Set(idx),
            list_id: Set(list_id),
            subject: Set(None),
            family: Set(None),
            expires_at: Set(expires_at),
            revoked: Set(true),
        })
        .on_conflict(
            OnConflict::column(ts::Column::Idx)
                .update_column(ts::Column::Revoked)
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Marks revoked every live token of a grant (refresh family); returns
    /// the lists that changed (sorted, each once).
    pub async fn revoke_status_family(
        &self,
        family: &str,
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        self.revoke_status_where(ts::Column::Family.eq(family), now)
            .await
    }

    /// Marks revoked every live token of a subject (forced logout); returns
    /// the lists that changed (sorted, each once).
    pub async fn revoke_status_subject(
        &self,
        subject: &str,
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        self.revoke_status_where(ts::Column::Subject.eq(subject), now)
            .await
    }

    /// One `UPDATE ... RETURNING list_id`, so the caller rebuilds exactly
    /// the lists that changed.
    async fn revoke_status_where(
        &self,
        filter: sea_orm::sea_query::SimpleExpr,
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let stmt = Query::update()
            .table(ts::Entity)
            .value(ts::Column::Revoked, true)
            .and_where(filter)
            .and_where(ts::Column::ExpiresAt.gt(now))
            .and_where(ts::Column::Revoked.eq(false))
            .returning_col(ts::Column::ListId)
            .to_owned();
        let backend = self.db.get_database_backend();
        let mut lists = self
            .db
            .query_all(backend.build(&stmt))
            .await?
            .iter()
            .map(|row| row.try_get::<i64>("", "list_id"))
            .collect::<Result<Vec<_>, _>>()?;
        lists.sort_unstable();
        lists.dedup();
        Ok(lists)
    }

    /// The global indices of list `list_id` whose tokens are revoked and
    /// not yet expired: one indexed read.
    pub async fn revoked_status_indices(
        &self,
        list_id: i64,
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        Ok(ts::Entity::find()
            .select_only()
            .column(ts::Column::Idx)
            .filter(ts::Column::ListId.eq(list_id))
            .filter(ts::Column::Revoked.eq(true))
            .filter(ts::Column::ExpiresAt.gt(now))
            .into_tuple::<i64>()
            .all(&self.db)
            .await?)
    }

    /// Removes the rows of tokens that have expired anyway.
    pub async fn prune_token_status(&self, now: i64) -> Result<u64, StoreError> {
        Ok(ts::Entity::delete_many()
            .filter(ts::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
