//! One module per grant type. Each checks its grant's rules and asks the
//! token builder for tokens.
//!
//! A user grant runs in three steps so that a fault never spends a code or
//! a refresh token without delivering its successor: prepare the access
//! token (no write; its status index comes from the instance's reserved
//! block), then one transaction that redeems or rotates and stores the
//! token's record, then seal (sign, encrypt) in memory.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use std::sync::Arc;

use gatehouse_storage::model::{Client, User};

use crate::{
    http::error::AppError,
    oauth::{ErrorCode, ScopeSet},
    registry::Resource,
    state::AppState,
    tokens::{AccessGrant, Audience, IdGrant, PreparedAccess, TokenResponse},
};

/// What a user grant (authorization code or refresh) hands to the token
/// builder: the same facts for the access token and the ID token.
pub struct UserGrant<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    pub scope: &'a ScopeSet,
    pub resource: Option<&'a str>,
    pub auth_time: i64,
    pub acr: Option<&'a str>,
    pub amr: &'a [String],
    pub sid: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub family: &'a str,
    pub jti: String,
}

/// Fixes the access token of a user grant before the grant's own write
/// (see [`PreparedAccess`]): the grant then stores the token's record in
/// the same transaction as its redemption or rotation.
pub async fn prepare_access(
    state: &AppState,
    g: &UserGrant<'_>,
) -> Result<PreparedAccess, AppError> {
    let audience = audience(state, g.resource).await?;
    state
        .prepare_access_token(AccessGrant {
            client: g.client,
            user: Some(g.user),
            scope: g.scope,
            audience,
            auth_time: Some(g.auth_time),
            acr: g.acr,
            jti: g.jti.clone(),
            family: Some(g.family),
        })
        .await
}

/// After the grant's write: seals the access token and, for `openid`,
/// issues the ID token bound to it by `at_hash`; answers with the given
/// refresh token. Memory and CPU only, so nothing written can be lost here.
pub fn user_tokens(
    state: &AppState,
    g: &UserGrant<'_>,
    access: PreparedAccess,
    refresh_token: Option<String>,
) -> Result<TokenResponse, AppError> {
    let access = state.seal_access_token(access)?;
    let id_token = if g.scope.contains("openid") {
        Some(state.issue_id_token(IdGrant {
            client: g.client,
            user: g.user,
            scope: g.scope,
            nonce: g.nonce,
            auth_time: g.auth_time,
            acr: g.acr,
            amr: g.amr,
            sid: g.sid,
            access_token: Some(&access.token),
        })?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_token,
        id_token,
        scope: g.scope.to_string(),
    })
}

/// The audience of an access token from the RFC 8707 `resource` parameter:
/// a registered resource server, else Gatehouse itself.
pub async fn audience(state: &AppState, resource: Option<&str>) -> Result<Audience, AppError> {
    match resource {
        None => Ok(Audience::Own),
        Some(r) => {
            let all = state.registry.resources().await?;
            let found: Option<Arc<Resource>> = all.get(r).cloned();
            found.map(Audience::Resource).ok_or_else(|| {
                AppError::oauth(
                    ErrorCode::InvalidTarget,
                    "resource is not a registered resource server",
                )
            })
        }
    }
}
