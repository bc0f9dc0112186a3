//! Device authorizations (RFC 8628): stored by `POST /device_authorization`,
//! decided once at `/device` (in the same transaction that ends the
//! browser's authorization transaction), polled at the token endpoint
//! (each poll recorded by one conditional write, so polls faster than the
//! interval, parallel ones included, are told to slow down), and redeemed
//! once (one conditional write: one winner across instances).

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::{
    entity::{authorization_transactions as tx, device_authorizations as dev},
    error::corrupt,
    model::{
        DeviceApproval, DeviceAuthorization, DeviceDecided, DeviceDecision, DevicePoll, GrantWrites,
    },
    refresh::create_refresh_token_in,
    status::record_access_token_in,
    Store, StoreError,
};

/// The status column's values.
const PENDING: &str = "pending";
const APPROVED: &str = "approved";
const DENIED: &str = "denied";
const CONSUMED: &str = "consumed";

/// How much a poll that came too soon adds to the interval (RFC 8628 3.5).
pub const SLOW_DOWN_STEP: i64 = 5;
/// The longest interval slowing down leads to: a client polling less
/// often than this is never told to slow down.
pub const MAX_INTERVAL: i64 = 60;
/// Seconds after a redemption during which a poll is taken for one that
/// raced it (`slow_down`), not for a replay (which revokes).
pub const REDEMPTION_GRACE: i64 = 5;

impl From<&dev::Model> for DeviceAuthorization {
    fn from(m: &dev::Model) -> Self {
        DeviceAuthorization {
            device_code_hash: m.device_code_hash.clone(),
            user_code_hash: m.user_code_hash.clone(),
            client_id: m.client_id.clone().into(),
            scope: m.scope.clone(),
            resource: m.resource.clone(),
            interval: m.interval,
            family_id: m.family_id.clone(),
            created_at: m.created_at,
            expires_at: m.expires_at,
        }
    }
}

/// The approval an approved row carries.
fn approval(m: &dev::Model) -> Result<DeviceApproval, StoreError> {
    match (&m.user_id, m.auth_time) {
        (Some(user_id), Some(auth_time)) => Ok(DeviceApproval {
            user_id: user_id.clone().into(),
            auth_time,
            acr: m.acr.clone(),
            amr: match &m.amr {
                Some(a) => serde_json::from_str(a).map_err(|e| corrupt("device amr", e))?,
                None => Vec::new(),
            },
        }),
        _ => Err(StoreError::Corrupt(
            "an approved device authorization has no user".into(),
        )),
    }
}

impl Store {
    /// Stores a new device authorization. A user code already in use is
    /// [`StoreError::Conflict`] (the caller draws another).
    pub async fn create_device_authorization(
        &self,
        d: &DeviceAuthorization,
    ) -> Result<(), StoreError> {
        dev::ActiveModel {
            device_code_hash: Set(d.device_code_hash.clone()),
            user_code_hash: Set(d.user_code_hash.clone()),
            client_id: Set(d.client_id.to_string()),
            scope: Set(d.scope.clone()),
            resource: Set(d.resource.clone()),
            interval: Set(d.interval),
            last_polled_at: Set(None),
            status: Set(PENDING.to_owned()),
            user_id: Set(None),
            auth_time: Set(None),
            acr: Set(None),
            amr: Set(None),
            family_id: Set(d.family_id.clone()),
            access_token_jti: Set(None),
            access_token_expires_at: Set(None),
            created_at: Set(d.created_at),
            expires_at: Set(d.expires_at),
            decided_at: Set(None),
            consumed_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// The undecided, unexpired device authorization with this user code
    /// (`/device`); `None` for any other.
    pub async fn find_pending_device_authorization(
        &self,
        user_code_hash: &str,
        now: i64,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let found = dev::Entity::find()
            .filter(dev::Column::UserCodeHash.eq(user_code_hash))
            .filter(dev::Column::Status.eq(PENDING))
            .filter(dev::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await?;
        Ok(found.as_ref().map(DeviceAuthorization::from))
    }

    /// The device authorization `device_code_hash` while it is undecided
    /// and unexpired (a transaction continuing at `/device`).
    pub async fn device_authorization_pending(
        &self,
        device_code_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(dev::Entity::find_by_id(device_code_hash.to_owned())
            .filter(dev::Column::Status.eq(PENDING))
            .filter(dev::Column::ExpiresAt.gt(now))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// Ends the browser's authorization transaction (`tx_id_hash`,
    /// `browser_hash`) and records the user's decision on the device
    /// authorization it was for, in one transaction: both or neither.
    pub async fn decide_device_authorization(
        &self,
        tx_id_hash: &str,
        browser_hash: &str,
        device_code_hash: &str,
        now: i64,
        decision: &DeviceDecision,
    ) -> Result<DeviceDecided, StoreError> {
        // The conditional writes first: SQLite takes its write lock at once.
        let txn = self.db.begin().await?;
        let ended = tx::Entity::update_many()
            .col_expr(tx::Column::ConsumedAt, now.into())
            .filter(tx::Column::IdHash.eq(tx_id_hash))
            .filter(tx::Column::BrowserHash.eq(browser_hash))
            .filter(tx::Column::ConsumedAt.is_null())
            .filter(tx::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if ended.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(DeviceDecided::TxLost);
        }
        let mut update = dev::Entity::update_many().col_expr(dev::Column::DecidedAt, now.into());
        update = match decision {
            DeviceDecision::Deny => update.col_expr(dev::Column::Status, DENIED.into()),
            DeviceDecision::Approve(a) => update
                .col_expr(dev::Column::Status, APPROVED.into())
                .col_expr(dev::Column::UserId, a.user_id.to_string().into())
                .col_expr(dev::Column::AuthTime, a.auth_time.into())
                .col_expr(dev::Column::Acr, a.acr.clone().into())
                .col_expr(
                    dev::Column::Amr,
                    serde_json::Value::from(a.amr.clone()).to_string().into(),
                ),
        };
        let decided = update
            .filter(dev::Column::DeviceCodeHash.eq(device_code_hash))
            .filter(dev::Column::Status.eq(PENDING))
            .filter(dev::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if decided.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(DeviceDecided::DeviceLost);
        }
        txn.commit().await?;
        Ok(DeviceDecided::Decided)
    }

    /// Records a poll of `device_code_hash` by `client_id` at `now` and
    /// says what the client is told (RFC 8628 3.5). A poll sooner than the
    /// interval after the previous one (or racing another poll: the
    /// record is one conditional write) lengthens the interval by
    /// [`SLOW_DOWN_STEP`] seconds for this and every later poll, up to
    /// [`MAX_INTERVAL`]. A poll after the redemption is a replay, except
    /// within [`REDEMPTION_GRACE`] seconds of it. Another client's poll
    /// records nothing.
    pub async fn poll_device_authorization(
        &self,
        device_code_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<DevicePoll, StoreError> {
        let Some(m) = dev::Entity::find_by_id(device_code_hash.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(DevicePoll::Unknown);
        };
        if m.client_id != client_id {
            return Ok(DevicePoll::OtherClient);
        }
        if m.status == CONSUMED {
            // A poll within a few seconds of the redemption raced it (the
            // client's own, sent early or twice): told to slow down. Any
            // later one is a replay. The grace is fixed and counts from
            // the redemption, so nobody can stretch it.
            if m.consumed_at
                .is_some_and(|t| now < t.saturating_add(REDEMPTION_GRACE))
            {
                return Ok(DevicePoll::SlowDown {
                    interval: m.interval,
                });
            }
            return Ok(DevicePoll::Replayed {
                family_id: m.family_id,
                access_token_jti: m.access_token_jti,
                access_token_expires_at: m.access_token_expires_at,
            });
        }
        if m.expires_at <= now {
            return Ok(DevicePoll::Expired);
        }
        let too_soon = m
            .last_polled_at
            .is_some_and(|t| now < t.saturating_add(m.interval));
        let grown = m.interval.saturating_add(SLOW_DOWN_STEP).min(MAX_INTERVAL);
        let previous = match m.last_polled_at {
            Some(t) => dev::Column::LastPolledAt.eq(t),
            None => dev::Column::LastPolledAt.is_null(),
        };
        let mut update = dev::Entity::update_many().col_expr(dev::Column::LastPolledAt, now.into());
        if too_soon {
            update = update.col_expr(dev::Column::Interval, grown.into());
        }
        let recorded = update
            .filter(dev::Column::DeviceCodeHash.eq(device_code_hash))
            .filter(previous)
            .filter(dev::Column::Status.ne(CONSUMED))
            .exec(&self.db)
            .await?;
        if too_soon || recorded.rows_affected != 1 {
            if !too_soon {
                // Another poll was recorded in between: this one came too
                // soon after it (compare-and-set: racing polls add one
                // step, not one each).
                dev::Entity::update_many()
                    .col_expr(dev::Column::Interval, grown.into())
                    .filter(dev::Column::DeviceCodeHash.eq(device_code_hash))
                    .filter(dev::Column::Interval.eq(m.interval))
                    .filter(dev::Column::Status.ne(CONSUMED))
                    .exec(&self.db)
                    .await?;
            }
            return Ok(DevicePoll::SlowDown { interval: grown });
        }
        Ok(match m.status.as_str() {
            PENDING => DevicePoll::Pending,
            DENIED => DevicePoll::Denied,
            APPROVED => DevicePoll::Approved(DeviceAuthorization::from(&m), approval(&m)?),
            other => {
                return Err(StoreError::Corrupt(format!(
                    "device authorization status {other:?}"
                )))
            }
        })
    }

    /// Redeems an approved device authorization in one conditional write:
    /// of N concurrent callers exactly one gets `true`. The jti and expiry
    /// of the access token about to be issued are recorded with it (a
    /// replay revokes that token), and `writes` are written in the same
    /// transaction: a failure leaves it redeemable.
    pub async fn redeem_device_code(
        &self,
        device_code_hash: &str,
        now: i64,
        access_token_jti: &str,
        access_token_expires_at: i64,
        writes: &GrantWrites,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let res = dev::Entity::update_many()
            .col_expr(dev::Column::Status, CONSUMED.into())
            .col_expr(dev::Column::ConsumedAt, now.into())
            .col_expr(dev::Column::AccessTokenJti, access_token_jti.into())
            .col_expr(
                dev::Column::AccessTokenExpiresAt,
                access_token_expires_at.into(),
            )
            .filter(dev::Column::DeviceCodeHash.eq(device_code_hash))
            .filter(dev::Column::Status.eq(APPROVED))
            .filter(dev::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if res.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        if let Some(t) = &writes.refresh_token {
            create_refresh_token_in(&txn, t).await?;
        }
        if let Some(r) = &writes.access_token {
            record_access_token_in(&txn, r).await?;
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Denies a user's device authorizations that were approved but not
    /// redeemed yet, at `client_id` only if given (forced logout, a
    /// withdrawn consent: an approval given before must not outlive it).
    /// Returns how many.
    pub async fn deny_unredeemed_device_approvals(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<u64, StoreError> {
        use sea_orm::QueryTrait;
        Ok(dev::Entity::update_many()
            .col_expr(dev::Column::Status, DENIED.into())
            .col_expr(dev::Column::DecidedAt, now.into())
            .filter(dev::Column::UserId.eq(user_id))
            .apply_if(client_id, |q, c| q.filter(dev::Column::ClientId.eq(c)))
            .filter(dev::Column::Status.eq(APPROVED))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Deletes device authorizations that expired before `cutoff`.
    /// Redeemed ones are kept until then so that a replay is recognised.
    pub async fn prune_device_authorizations(&self, cutoff: i64) -> Result<u64, StoreError> {
        Ok(dev::Entity::delete_many()
            .filter(dev::Column::ExpiresAt.lt(cutoff))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
