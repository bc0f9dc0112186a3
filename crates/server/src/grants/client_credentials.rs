//! The client credentials grant (RFC 6749 4.4). No user; `sub` is the
//! client id. With a JWE access token this path does no database write and
//! at most one read (the client, usually cached).

use crate::{
    http::{client_auth::Authenticated, error::AppError, form::Params},
    oauth::{AuthMethod, ErrorCode, ScopeSet},
    scopes::{self, Subject},
    state::AppState,
    tokens::{new_jti, AccessGrant, Audience, TokenResponse},
};

/// Issues an access token to the client itself.
pub async fn exchange(
    state: &AppState,
    auth: &Authenticated,
    p: &Params,
) -> Result<TokenResponse, AppError> {
    if auth.method == AuthMethod::None {
        return Err(AppError::oauth(
            ErrorCode::UnauthorizedClient,
            "public clients may not use client_credentials",
        ));
    }
    let client = &auth.client;
    let scope = ScopeSet::parse(p.get("scope").unwrap_or(""))
        .map_err(|e| AppError::oauth(ErrorCode::InvalidScope, e))?;
    let resources = state.registry.resources().await?;
    let named = match p.get("resource") {
        None => None,
        Some(r) => Some(resources.get(r).cloned().ok_or_else(|| {
            AppError::oauth(
                ErrorCode::InvalidTarget,
                "resource is not a registered resource server",
            )
        })?),
    };
    // Only API scopes the client was given, of the one API the token is
    // for (RFC 8707 2); without `resource` the API is implied by them.
    let audience = scopes::resolve(client, &scope, named.as_ref(), &resources, Subject::Client)
        .map_err(|d| AppError::oauth(ErrorCode::InvalidScope, d))?
        .map_or(Audience::Own, Audience::Resource);
    let access = state
        .issue_access_token(AccessGrant {
            client,
            user: None,
            scope: &scope,
            audience,
            auth_time: None,
            acr: None,
            jti: new_jti(),
            family: None,
        })
        .await?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        refresh_token: None,
        id_token: None,
        scope: scope.to_string(),
    })
}
