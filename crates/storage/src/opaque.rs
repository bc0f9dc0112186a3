//! Opaque access tokens: looked up by hash on every use, revocable at once.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::{entity::opaque_tokens as ot, model::OpaqueToken, Store, StoreError};

impl From<ot::Model> for OpaqueToken {
    fn from(m: ot::Model) -> Self {
        OpaqueToken {
            token_hash: m.token_hash,
            jti: m.jti,
            client_id: m.client_id.into(),
            user_id: m.user_id.map(Into::into),
            scope: m.scope,
            audience: m.audience,
            auth_time: m.auth_time,
            created_at: m.created_at,
            expires_at: m.expires_at,
            revoked_at: m.revoked_at,
            family_id: m.family_id,
            dpop_jkt: m.dpop_jkt.map(Into::into),
            act: m.act,
        }
    }
}

pub(crate) async fn create_opaque_token_in<C: ConnectionTrait>(
    c: &C,
    t: &OpaqueToken,
) -> Result<(), StoreError> {
    ot::ActiveModel {
        token_hash: Set(t.token_hash.clone()),
        jti: Set(t.jti.clone()),
        client_id: Set(t.client_id.to_string()),
        user_id: Set(t.user_id.as_ref().map(ToString::to_string)),
        scope: Set(t.scope.clone()),
        audience: Set(t.audience.clone()),
        auth_time: Set(t.auth_time),
        created_at: Set(t.created_at),
        expires_at: Set(t.expires_at),
        revoked_at: Set(t.revoked_at),
        family_id: Set(t.family_id.clone()),
        dpop_jkt: Set(t.dpop_jkt.as_ref().map(ToString::to_string)),
        act: Set(t.act.clone()),
    }
    .insert(c)
    .await?;
    Ok(())
}

impl Store {
    /// Stores an opaque access token.
    pub async fn create_opaque_token(&self, t: &OpaqueToken) -> Result<(), StoreError> {
        create_opaque_token_in(&self.db, t).await
    }

    /// The token with this hash, whatever its state (callers check expiry and revocation).
    pub async fn opaque_token(&self, token_hash: &str) -> Result<Option<OpaqueToken>, StoreError> {
        Ok(ot::Entity::find_by_id(token_hash.to_owned())
            .one(&self.db)
            .await?
            .map(OpaqueToken::from))
    }

    /// Revokes an opaque token by jti. Returns whether one was live.
    pub async fn revoke_opaque_token(&self, jti: &str, now: i64) -> Result<bool, StoreError> {
        Ok(ot::Entity::update_many()
            .col_expr(ot::Column::RevokedAt, now.into())
            .filter(ot::Column::Jti.eq(jti))
            .filter(ot::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?
            .rows_affected
            == 1)
    }

    /// Revokes every opaque token of a grant (refresh family). Returns how many.
    pub async fn revoke_opaque_family(&self, family_id: &str, now: i64) -> Result<u64, StoreError> {
        Ok(ot::Entity::update_many()
            .col_expr(ot::Column::RevokedAt, now.into())
            .filter(ot::Column::FamilyId.eq(family_id))
            .filter(ot::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Revokes every opaque token issued to a client. Returns how many.
    pub async fn revoke_opaque_tokens_of_client(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        Ok(ot::Entity::update_many()
            .col_expr(ot::Column::RevokedAt, now.into())
            .filter(ot::Column::ClientId.eq(client_id))
            .filter(ot::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Deletes opaque tokens expired before `cutoff`.
    pub async fn prune_opaque_tokens(&self, cutoff: i64) -> Result<u64, StoreError> {
        Ok(ot::Entity::delete_many()
            .filter(ot::Column::ExpiresAt.lt(cutoff))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
