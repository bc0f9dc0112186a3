//! The client credentials grant (RFC 6749 4.4). No user; `sub` is the
//! client id. With a JWE access token this path does no database write and
//! at most one read (the client, usually cached).

use crate::{
    dpop::Proof,
    error::{Error, OAuthError},
    grants::AuthenticatedClient,
    oauth::{AuthMethod, ScopeSet},
    scopes::{self, Subject},
    state::AppState,
    tokens::{new_jti, token_type, AccessClaimsInput, Audience, TokenResponse},
};

/// Issues an access token to the client itself.
pub async fn exchange(
    state: &AppState,
    auth: &AuthenticatedClient,
    scope: Option<&str>,
    resource: Option<&str>,
    proof: Option<&Proof>,
) -> Result<TokenResponse, Error> {
    if auth.method == AuthMethod::None {
        return Err(OAuthError::UnauthorizedClient(
            "public clients may not use client_credentials".into(),
        )
        .into());
    }
    // The client authenticated: its proof may be recorded.
    if let Some(p) = proof {
        p.record(state).await?;
    }
    let jkt = proof.map(|p| &p.jkt);
    let client = &auth.client;
    let scope =
        ScopeSet::parse(scope.unwrap_or("")).map_err(|e| OAuthError::InvalidScope(e.into()))?;
    let resources = state.registry.resources().await?;
    let named = match resource {
        None => None,
        Some(r) => Some(resources.get(r).cloned().ok_or_else(|| {
            OAuthError::InvalidTarget("resource is not a registered resource server".into())
        })?),
    };
    // Only API scopes the client was given, of the one API the token is
    // for (RFC 8707 2); without `resource` the API is implied by them.
    let audience = scopes::resolve(client, &scope, named.as_ref(), &resources, Subject::Client)
        .map_err(|d| OAuthError::InvalidScope(d.into()))?
        .map_or(Audience::Own, Audience::Resource);
    let access = state
        .tokens
        .issue_access_token(AccessClaimsInput {
            client,
            user: None,
            scope: &scope,
            audience,
            auth_time: None,
            acr: None,
            jti: new_jti(),
            family: None,
            jkt,
            exchange: None,
        })
        .await?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: token_type(jkt),
        expires_in: access.expires_in,
        refresh_token: None,
        id_token: None,
        scope: scope.to_string(),
        issued_token_type: None,
    })
}
