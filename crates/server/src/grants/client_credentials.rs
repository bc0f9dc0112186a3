//! The client credentials grant (RFC 6749 4.4). No user; `sub` is the
//! client id. With a JWE access token this path does no database write and
//! at most one read (the client, usually cached).

use crate::{
    http::{client_auth::Authenticated, error::AppError, form::Params},
    oauth::{AuthMethod, ErrorCode, ScopeSet, STANDARD_SCOPES},
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
    let audience = super::audience(state, p.get("resource")).await?;
    for s in scope.iter() {
        let user_scope = STANDARD_SCOPES.contains(&s);
        let defined = match &audience {
            Audience::Resource(r) => r.record.scopes.iter().any(|x| x == s),
            Audience::Own => false,
        };
        let allowed = client.scopes.is_empty() || client.scopes.iter().any(|x| x == s);
        if user_scope || !defined || !allowed {
            return Err(AppError::oauth(
                ErrorCode::InvalidScope,
                "a requested scope is unknown or not allowed for this client",
            ));
        }
    }
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
