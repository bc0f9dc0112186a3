//! Clients: the applications that send users here.

use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder, Set};

use gatehouse_protocol::GrantType;

use crate::{
    entity::clients,
    error::corrupt,
    model::{Client, RegistrationPolicy},
    Store, StoreError,
};

fn list(s: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}
fn json<T: serde::Serialize>(v: &[T]) -> String {
    serde_json::to_value(v).map_or_else(|_| "[]".to_owned(), |v| v.to_string())
}

/// The grant types this release knows, in stored order. A name it does not
/// know was written by a newer release (a rolling upgrade, a rollback): it
/// is left out, so the client cannot use that grant on this instance, and
/// logged, rather than making the whole client unreadable.
fn known(names: Vec<String>) -> Vec<GrantType> {
    names
        .into_iter()
        .filter_map(|n| match n.parse() {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::warn!(error = %e, "stored grant type ignored by this release");
                None
            }
        })
        .collect()
}

/// Serde form of [`known`], for the stored registration policy.
pub(crate) fn known_grant_types<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<GrantType>, D::Error> {
    Ok(known(serde::Deserialize::deserialize(d)?))
}

impl TryFrom<clients::Model> for Client {
    type Error = StoreError;
    fn try_from(m: clients::Model) -> Result<Self, StoreError> {
        Ok(Client {
            redirect_uris: list(&m.redirect_uris, "client redirect_uris")?,
            post_logout_redirect_uris: list(
                &m.post_logout_redirect_uris,
                "client post_logout_redirect_uris",
            )?,
            grant_types: known(list(&m.grant_types, "client grant_types")?),
            response_types: list(&m.response_types, "client response_types")?,
            scopes: list(&m.scopes, "client scopes")?,
            id: m.id.into(),
            secret_hash: m.secret_hash,
            name: m.name,
            token_endpoint_auth_method: m
                .token_endpoint_auth_method
                .parse()
                .map_err(|e| corrupt("client token_endpoint_auth_method", e))?,
            jwks: m.jwks,
            jwks_uri: m.jwks_uri,
            id_token_signed_response_alg: m
                .id_token_signed_response_alg
                .parse()
                .map_err(|e| corrupt("client id_token_signed_response_alg", e))?,
            access_token_lifetime: m.access_token_lifetime,
            refresh_token_lifetime: m.refresh_token_lifetime,
            backchannel_logout_uri: m.backchannel_logout_uri,
            registration_token_hash: m.registration_token_hash,
            created_at: m.created_at,
            updated_at: m.updated_at,
            client_secret_sealed: m.client_secret_sealed,
            token_endpoint_auth_signing_alg: m.token_endpoint_auth_signing_alg,
            require_pkce: m.require_pkce,
            dpop_bound_access_tokens: m.dpop_bound_access_tokens,
            registration_policy: m
                .registration_policy
                .as_deref()
                .map(|p| {
                    serde_json::from_str::<RegistrationPolicy>(p)
                        .map_err(|e| corrupt("client registration_policy", e))
                })
                .transpose()?,
            legacy_assertion_audience: m.legacy_assertion_audience,
            require_acr: m
                .require_acr
                .as_deref()
                .map(|a| a.parse().map_err(|e| corrupt("client require_acr", e)))
                .transpose()?,
            require_pushed_authorization_requests: m.require_pushed_authorization_requests,
        })
    }
}

fn active(c: &Client) -> clients::ActiveModel {
    clients::ActiveModel {
        id: Set(c.id.to_string()),
        secret_hash: Set(c.secret_hash.clone()),
        name: Set(c.name.clone()),
        redirect_uris: Set(json(&c.redirect_uris)),
        post_logout_redirect_uris: Set(json(&c.post_logout_redirect_uris)),
        grant_types: Set(json(&c.grant_types)),
        response_types: Set(json(&c.response_types)),
        token_endpoint_auth_method: Set(c.token_endpoint_auth_method.as_str().to_owned()),
        scopes: Set(json(&c.scopes)),
        jwks: Set(c.jwks.clone()),
        jwks_uri: Set(c.jwks_uri.clone()),
        id_token_signed_response_alg: Set(c.id_token_signed_response_alg.as_str().to_owned()),
        access_token_lifetime: Set(c.access_token_lifetime),
        refresh_token_lifetime: Set(c.refresh_token_lifetime),
        backchannel_logout_uri: Set(c.backchannel_logout_uri.clone()),
        registration_token_hash: Set(c.registration_token_hash.clone()),
        created_at: Set(c.created_at),
        updated_at: Set(c.updated_at),
        client_secret_sealed: Set(c.client_secret_sealed.clone()),
        token_endpoint_auth_signing_alg: Set(c.token_endpoint_auth_signing_alg.clone()),
        require_pkce: Set(c.require_pkce),
        dpop_bound_access_tokens: Set(c.dpop_bound_access_tokens),
        registration_policy: Set(c
            .registration_policy
            .as_ref()
            .map(|p| serde_json::json!(p).to_string())),
        legacy_assertion_audience: Set(c.legacy_assertion_audience),
        require_acr: Set(c.require_acr.map(|a| a.as_str().to_owned())),
        require_pushed_authorization_requests: Set(c.require_pushed_authorization_requests),
    }
}

impl Store {
    /// Registers a client. A duplicate id is [`StoreError::Conflict`].
    pub async fn create_client(&self, c: &Client) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        Store::bump_epoch(&txn, "clients").await?;
        active(c).insert(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Replaces a client's registration (RFC 7592 update). Grant types
    /// the stored row holds that this release does not know (a newer
    /// release wrote them) are kept: a write-back never erases them.
    pub async fn update_client(&self, c: &Client) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        Store::bump_epoch(&txn, "clients").await?;
        let mut row = active(c);
        if let Some(old) = clients::Entity::find_by_id(c.id.to_string())
            .one(&txn)
            .await?
        {
            let mut names: Vec<String> = c.grant_types.iter().map(|g| g.to_string()).collect();
            names.extend(
                list(&old.grant_types, "client grant_types")?
                    .into_iter()
                    .filter(|n| n.parse::<GrantType>().is_err()),
            );
            row.grant_types = Set(json(&names));
        }
        row.update(&txn).await.map_err(|e| match e {
            sea_orm::DbErr::RecordNotUpdated => {
                StoreError::NotFound(format!("no client {:?}", c.id))
            }
            other => other.into(),
        })?;
        txn.commit().await?;
        Ok(())
    }

    /// Looks a client up by id.
    pub async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        clients::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(Client::try_from)
            .transpose()
    }

    /// Every client, oldest first. One whose stored settings this release
    /// cannot read (an auth method or algorithm a newer release wrote) is
    /// left out and logged, so the others stay listed.
    pub async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        let mut out = Vec::new();
        for m in clients::Entity::find()
            .order_by_asc(clients::Column::CreatedAt)
            .order_by_asc(clients::Column::Id)
            .all(&self.db)
            .await?
        {
            let id = m.id.clone();
            match Client::try_from(m) {
                Ok(c) => out.push(c),
                Err(e) => tracing::error!(client_id = %id, error = %e, "client skipped"),
            }
        }
        Ok(out)
    }

    /// Deletes a client. Returns false when there was none.
    pub async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        Store::bump_epoch(&txn, "clients").await?;
        let res = clients::Entity::delete_by_id(id.to_owned())
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(res.rows_affected == 1)
    }
}
