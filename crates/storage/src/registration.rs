//! Initial access tokens for dynamic client registration (RFC 7591 3).

use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set};

use crate::{
    entity::registration_tokens as reg, error::corrupt, model::RegistrationPolicy, Store,
    StoreError,
};

impl Store {
    /// Stores an initial access token (by hash) with the default policy.
    pub async fn create_registration_token(
        &self,
        token_hash: &str,
        expires_at: Option<i64>,
        uses: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.create_registration_token_with_policy(token_hash, expires_at, uses, None, now)
            .await
    }

    /// Stores an initial access token (by hash) and what registrations it
    /// allows (`None`: [`RegistrationPolicy::default`]).
    pub async fn create_registration_token_with_policy(
        &self,
        token_hash: &str,
        expires_at: Option<i64>,
        uses: Option<i64>,
        policy: Option<&RegistrationPolicy>,
        now: i64,
    ) -> Result<(), StoreError> {
        reg::ActiveModel {
            token_hash: Set(token_hash.to_owned()),
            expires_at: Set(expires_at),
            uses_left: Set(uses),
            created_at: Set(now),
            policy: Set(policy.map(|p| serde_json::json!(p).to_string())),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Spends one use of an initial access token in one conditional write.
    /// False when it is unknown, expired or used up.
    pub async fn spend_registration_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        use sea_orm::sea_query::Expr;
        let live = Condition::all()
            .add(reg::Column::TokenHash.eq(token_hash))
            .add(
                Condition::any()
                    .add(reg::Column::ExpiresAt.is_null())
                    .add(reg::Column::ExpiresAt.gt(now)),
            );
        let limited = reg::Entity::update_many()
            .col_expr(
                reg::Column::UsesLeft,
                Expr::col(reg::Column::UsesLeft).sub(1),
            )
            .filter(live.clone())
            .filter(reg::Column::UsesLeft.gt(0))
            .exec(&self.db)
            .await?;
        if limited.rows_affected == 1 {
            return Ok(true);
        }
        Ok(reg::Entity::find()
            .filter(live)
            .filter(reg::Column::UsesLeft.is_null())
            .one(&self.db)
            .await?
            .is_some())
    }

    /// The policy of an initial access token (live or not; a token's policy
    /// never changes). `None` when there is no such token.
    pub async fn registration_token_policy(
        &self,
        token_hash: &str,
    ) -> Result<Option<RegistrationPolicy>, StoreError> {
        let Some(row) = reg::Entity::find_by_id(token_hash.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        match row.policy {
            None => Ok(Some(RegistrationPolicy::default())),
            Some(p) => serde_json::from_str(&p)
                .map(Some)
                .map_err(|e| corrupt("registration token policy", e)),
        }
    }
}
