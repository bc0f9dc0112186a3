//! Authorization transactions: created when `/authorize` needs the user,
//! found only from the browser they are bound to and only until they
//! expire, marked with the sign-in performed and the consent given during
//! them, and consumed
//! exactly once (one conditional write: one winner across instances).

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};

use crate::{
    codes::create_code_in,
    entity::authorization_transactions as tx,
    model::{AuthCode, AuthorizationTx, TxLookup, TxSignIn},
    Store, StoreError,
};

impl From<tx::Model> for AuthorizationTx {
    fn from(m: tx::Model) -> Self {
        let sign_in = match (m.session_id_hash, m.auth_time) {
            (Some(session_id_hash), Some(auth_time)) => Some(TxSignIn {
                session_id_hash,
                auth_time,
            }),
            _ => None,
        };
        AuthorizationTx {
            id_hash: m.id_hash,
            browser_hash: m.browser_hash,
            request: m.request,
            sign_in,
            consented_at: m.consented_at,
            consent_session_hash: m.consent_session_hash,
            created_at: m.created_at,
            expires_at: m.expires_at,
            consumed_at: m.consumed_at,
        }
    }
}

impl Store {
    /// Stores a new authorization transaction.
    pub async fn create_authorization_tx(&self, t: &AuthorizationTx) -> Result<(), StoreError> {
        tx::ActiveModel {
            id_hash: Set(t.id_hash.clone()),
            browser_hash: Set(t.browser_hash.clone()),
            request: Set(t.request.clone()),
            session_id_hash: Set(t.sign_in.as_ref().map(|s| s.session_id_hash.clone())),
            auth_time: Set(t.sign_in.as_ref().map(|s| s.auth_time)),
            consented_at: Set(t.consented_at),
            consent_session_hash: Set(t.consent_session_hash.clone()),
            created_at: Set(t.created_at),
            expires_at: Set(t.expires_at),
            consumed_at: Set(t.consumed_at),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// The transaction `id_hash` as this browser (`browser_hash`) may see
    /// it at `now`: another browser's, or an expired one, is unknown.
    pub async fn find_authorization_tx(
        &self,
        id_hash: &str,
        browser_hash: &str,
        now: i64,
    ) -> Result<TxLookup, StoreError> {
        let found = tx::Entity::find_by_id(id_hash.to_owned())
            .filter(tx::Column::BrowserHash.eq(browser_hash))
            .filter(tx::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await?;
        Ok(match found {
            None => TxLookup::Unknown,
            Some(m) if m.consumed_at.is_some() => TxLookup::Consumed,
            Some(m) => TxLookup::Live(m.into()),
        })
    }

    /// Records the sign-in performed during a live transaction of this
    /// browser. `false` when there is none (expired, consumed, unknown).
    pub async fn mark_authorization_tx_signed_in(
        &self,
        id_hash: &str,
        browser_hash: &str,
        sign_in: &TxSignIn,
        now: i64,
    ) -> Result<bool, StoreError> {
        let res = tx::Entity::update_many()
            .col_expr(
                tx::Column::SessionIdHash,
                sign_in.session_id_hash.clone().into(),
            )
            .col_expr(tx::Column::AuthTime, sign_in.auth_time.into())
            .filter(tx::Column::IdHash.eq(id_hash))
            .filter(tx::Column::BrowserHash.eq(browser_hash))
            .filter(tx::Column::ConsumedAt.is_null())
            .filter(tx::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Records that the user of the session `session_id_hash` approved on
    /// the consent page during a live transaction of this browser. `false`
    /// when there is none.
    pub async fn mark_authorization_tx_consented(
        &self,
        id_hash: &str,
        browser_hash: &str,
        session_id_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let res = tx::Entity::update_many()
            .col_expr(tx::Column::ConsentedAt, now.into())
            .col_expr(
                tx::Column::ConsentSessionHash,
                session_id_hash.to_owned().into(),
            )
            .filter(tx::Column::IdHash.eq(id_hash))
            .filter(tx::Column::BrowserHash.eq(browser_hash))
            .filter(tx::Column::ConsumedAt.is_null())
            .filter(tx::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Consumes a live transaction of this browser in one conditional
    /// write, storing `code` (the code it ends with, if any) in the same
    /// transaction: of N concurrent callers exactly one gets `true`, and
    /// only its code exists.
    pub async fn consume_authorization_tx(
        &self,
        id_hash: &str,
        browser_hash: &str,
        now: i64,
        code: Option<&AuthCode>,
    ) -> Result<bool, StoreError> {
        // The conditional write first: SQLite takes its write lock at once.
        let txn = self.db.begin().await?;
        let res = tx::Entity::update_many()
            .col_expr(tx::Column::ConsumedAt, now.into())
            .filter(tx::Column::IdHash.eq(id_hash))
            .filter(tx::Column::BrowserHash.eq(browser_hash))
            .filter(tx::Column::ConsumedAt.is_null())
            .filter(tx::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if res.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        if let Some(c) = code {
            create_code_in(&txn, c).await?;
        }
        txn.commit().await?;
        Ok(true)
    }

    /// How many transactions are live (neither expired nor consumed) at
    /// `now`.
    pub async fn count_live_authorization_txs(&self, now: i64) -> Result<u64, StoreError> {
        Ok(tx::Entity::find()
            .filter(tx::Column::ConsumedAt.is_null())
            .filter(tx::Column::ExpiresAt.gt(now))
            .count(&self.db)
            .await?)
    }

    /// Deletes transactions that expired before `now` (consumed ones are
    /// kept until then, so a second continuation is told it was used).
    pub async fn prune_authorization_txs(&self, now: i64) -> Result<u64, StoreError> {
        Ok(tx::Entity::delete_many()
            .filter(tx::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
