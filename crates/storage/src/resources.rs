//! Resource servers: the APIs that accept Gatehouse access tokens.

use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder, Set};

use gatehouse_protocol::ClientId;

use crate::{entity::resource_servers, error::corrupt, model::ResourceServer, Store, StoreError};

impl TryFrom<resource_servers::Model> for ResourceServer {
    type Error = StoreError;
    fn try_from(m: resource_servers::Model) -> Result<Self, StoreError> {
        Ok(ResourceServer {
            scopes: serde_json::from_str(&m.scopes).map_err(|e| corrupt("resource scopes", e))?,
            clients: serde_json::from_str(&m.clients)
                .map_err(|e| corrupt("resource clients", e))?,
            allow_exchange_from: serde_json::from_str(&m.allow_exchange_from)
                .map_err(|e| corrupt("resource allow_exchange_from", e))?,
            audience: m.audience,
            encryption_jwk: m.encryption_jwk,
            signing_alg: m
                .signing_alg
                .parse()
                .map_err(|e| corrupt("resource signing_alg", e))?,
            token_format: m
                .token_format
                .parse()
                .map_err(|e| corrupt("resource token_format", e))?,
            access_token_lifetime: m.access_token_lifetime,
            created_at: m.created_at,
        })
    }
}

fn active(r: &ResourceServer) -> resource_servers::ActiveModel {
    resource_servers::ActiveModel {
        audience: Set(r.audience.clone()),
        encryption_jwk: Set(r.encryption_jwk.clone()),
        signing_alg: Set(r.signing_alg.as_str().to_owned()),
        token_format: Set(r.token_format.as_str().to_owned()),
        access_token_lifetime: Set(r.access_token_lifetime),
        scopes: Set(serde_json::Value::from(r.scopes.clone()).to_string()),
        created_at: Set(r.created_at),
        clients: Set(ids(&r.clients)),
        allow_exchange_from: Set(ids(&r.allow_exchange_from)),
    }
}

/// A list of client ids as stored: JSON text.
fn ids(list: &[ClientId]) -> String {
    serde_json::Value::from(list.iter().map(ToString::to_string).collect::<Vec<_>>()).to_string()
}

impl Store {
    /// Registers a resource server. A duplicate audience is [`StoreError::Conflict`].
    pub async fn create_resource(&self, r: &ResourceServer) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        Store::bump_epoch(&txn, "resources").await?;
        active(r)
            .insert(&txn)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("resource server {:?} exists", r.audience))
                }
                other => other,
            })?;
        txn.commit().await?;
        Ok(())
    }

    /// Replaces a resource server's settings (its audience stays).
    pub async fn update_resource(&self, r: &ResourceServer) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        Store::bump_epoch(&txn, "resources").await?;
        active(r).update(&txn).await.map_err(|e| match e {
            sea_orm::DbErr::RecordNotUpdated => {
                StoreError::NotFound(format!("no resource server {:?}", r.audience))
            }
            other => other.into(),
        })?;
        txn.commit().await?;
        Ok(())
    }

    /// One resource server by audience.
    pub async fn resource(&self, audience: &str) -> Result<Option<ResourceServer>, StoreError> {
        resource_servers::Entity::find_by_id(audience.to_owned())
            .one(&self.db)
            .await?
            .map(ResourceServer::try_from)
            .transpose()
    }

    /// Every resource server, by audience. One whose stored settings this
    /// release cannot read (an algorithm or token format a newer release
    /// wrote) is left out and logged, so the others keep working.
    pub async fn list_resources(&self) -> Result<Vec<ResourceServer>, StoreError> {
        let mut out = Vec::new();
        for m in resource_servers::Entity::find()
            .order_by_asc(resource_servers::Column::Audience)
            .all(&self.db)
            .await?
        {
            let audience = m.audience.clone();
            match ResourceServer::try_from(m) {
                Ok(r) => out.push(r),
                Err(e) => tracing::error!(%audience, error = %e, "resource server skipped"),
            }
        }
        Ok(out)
    }

    /// Deletes a resource server. Returns false when there was none.
    pub async fn delete_resource(&self, audience: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        Store::bump_epoch(&txn, "resources").await?;
        let res = resource_servers::Entity::delete_by_id(audience.to_owned())
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(res.rows_affected == 1)
    }
}
