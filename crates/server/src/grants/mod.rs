//! One module per grant type. Each checks its grant's rules and asks the
//! token builder for tokens.
//!
//! A user grant runs in two steps so that a fault never spends a code or a
//! refresh token without delivering its successor: make the whole answer
//! (no write; the access token's status index comes from the instance's
//! reserved block; signing and encrypting in memory), then one transaction
//! that redeems or rotates and stores the access token's row with it.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;
mod request;
pub mod token_exchange;

pub use request::{AuthenticatedClient, PresentedToken, TokenRequest};

use std::sync::Arc;

use gatehouse_storage::model::{Client, GrantWrites, RefreshToken, TokenRecord, User};

use crate::{
    dpop::Proof,
    error::{Error, OAuthError},
    oauth::{AuthMethod, GrantType, Jkt, ScopeSet},
    registry::Resource,
    state::AppState,
    tokens::{
        token_type, AccessClaimsInput, Audience, IdClaimsInput, PreparedAccess, TokenResponse,
    },
};

/// Answers a token request of `client` (already allowed to use its grant
/// type) with the grant the request is for.
///
/// `proof` is the request's DPoP proof (RFC 9449 5), checked but not yet
/// recorded: each grant records it once its own checks have passed,
/// before it spends anything. The access token is bound to its key, and
/// so is a public client's refresh token.
pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    request: &TokenRequest,
    proof: Option<&Proof>,
) -> Result<TokenResponse, Error> {
    if proof.is_none() && client.client.dpop_bound_access_tokens {
        return Err(OAuthError::InvalidDpopProof(
            "this client is registered with dpop_bound_access_tokens: send a DPoP proof".into(),
        )
        .into());
    }
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            authorization_code::exchange(
                state,
                client,
                code,
                redirect_uri,
                code_verifier.as_deref(),
                proof,
            )
            .await
        }
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => refresh_token::exchange(state, client, refresh_token, scope.as_deref(), proof).await,
        TokenRequest::ClientCredentials { scope, resource } => {
            client_credentials::exchange(
                state,
                client,
                scope.as_deref(),
                resource.as_deref(),
                proof,
            )
            .await
        }
        TokenRequest::DeviceCode { device_code } => {
            device_code::exchange(state, client, device_code, proof).await
        }
        TokenRequest::TokenExchange {
            subject,
            actor,
            resource,
            audience,
            scope,
            requested_token_type,
        } => {
            token_exchange::exchange(
                state,
                client,
                &token_exchange::Request {
                    subject,
                    actor: actor.as_ref(),
                    resource: resource.as_deref(),
                    audience: audience.as_deref(),
                    scope: scope.as_deref(),
                    requested_token_type: *requested_token_type,
                },
                proof,
            )
            .await
        }
    }
}

/// What a user grant (authorization code or refresh) hands to the token
/// builder: the same facts for the access token and the ID token.
pub struct UserTokenInput<'a> {
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
    /// The DPoP key the access token is bound to, if any.
    pub jkt: Option<&'a Jkt>,
}

/// The first refresh token of a user grant, when it asked for
/// `offline_access` and its client has the refresh grant: the token and
/// its row. A public client's is bound to the DPoP key of the request
/// (RFC 9449 5); a confidential client proves its holder by its
/// authentication.
fn first_refresh_token(
    state: &AppState,
    auth: &AuthenticatedClient,
    g: &UserTokenInput<'_>,
) -> Option<(String, RefreshToken)> {
    let client = &auth.client;
    if !(g.scope.contains("offline_access")
        && client.grant_types.contains(&GrantType::RefreshToken))
    {
        return None;
    }
    let now = state.now();
    let (token, hash) = state.tokens.new_refresh_token();
    let row = RefreshToken {
        token_hash: hash,
        family_id: g.family.to_owned(),
        client_id: client.id.clone(),
        user_id: g.user.id.clone(),
        scope: g.scope.to_string(),
        resource: g.resource.map(str::to_owned),
        auth_time: g.auth_time,
        sid: g.sid.map(str::to_owned),
        acr: g.acr.map(str::to_owned),
        amr: g.amr.to_vec(),
        successor_hash: None,
        created_at: now,
        expires_at: now
            + client
                .refresh_token_lifetime
                .unwrap_or(state.settings.lifetimes.refresh_token),
        used_at: None,
        revoked_at: None,
        dpop_jkt: g.jkt.filter(|_| auth.method == AuthMethod::None).cloned(),
    };
    Some((token, row))
}

/// A new user grant's answer and the rows its redemption writes with it:
/// the access token (and ID token for `openid`), and the first refresh
/// token for `offline_access`.
pub async fn first_tokens(
    state: &AppState,
    auth: &AuthenticatedClient,
    g: &UserTokenInput<'_>,
) -> Result<(TokenResponse, GrantWrites), Error> {
    let (refresh_token, refresh_row) = first_refresh_token(state, auth, g).unzip();
    let sealed = user_tokens(state, g, refresh_token).await?;
    Ok((
        sealed.response,
        GrantWrites {
            refresh_token: refresh_row,
            access_token: sealed.record,
        },
    ))
}

/// An upper bound of a first access token's lifetime, recorded with the
/// code or device code it was redeemed from, so that a replay revokes the
/// token for as long as it can live.
fn access_lifetime_bound(state: &AppState, client: &Client) -> i64 {
    state
        .settings
        .lifetimes
        .access_token
        .max(client.access_token_lifetime.unwrap_or(0))
        .max(86_400)
}

/// A code or device code presented again after its redemption (RFC 6749
/// 10.5): revokes the grant it started (its refresh tokens and every
/// access token issued from it, JWE and opaque) and the first access
/// token the redemption recorded.
async fn revoke_redeemed(
    state: &AppState,
    family_id: &str,
    access_token_jti: Option<String>,
    access_token_expires_at: Option<i64>,
) -> Result<(), Error> {
    state.tokens.revoke_grant(family_id).await?;
    if let (Some(j), Some(exp)) = (access_token_jti, access_token_expires_at) {
        let now = state.now();
        state.store.revoke_jti(&j, exp, now).await?;
        state.store.revoke_opaque_token(&j, now).await?;
    }
    Ok(())
}

/// Fixes the access token of a user grant (see [`PreparedAccess`]).
async fn prepare_access(state: &AppState, g: &UserTokenInput<'_>) -> Result<PreparedAccess, Error> {
    let audience = audience(state, g.resource).await?;
    state
        .tokens
        .prepare_access_token(AccessClaimsInput {
            client: g.client,
            user: Some(g.user),
            scope: g.scope,
            audience,
            auth_time: Some(g.auth_time),
            acr: g.acr,
            jti: g.jti.clone(),
            family: Some(g.family),
            jkt: g.jkt,
            exchange: None,
        })
        .await
}

/// A user grant's answer, made before the grant's write, and the access
/// token's row that write must store.
pub struct Sealed {
    pub response: TokenResponse,
    pub record: Option<TokenRecord>,
}

/// Seals the access token and, for `openid`, issues the ID token bound to
/// it by `at_hash`, answering with the given refresh token. Memory and CPU
/// only, and done before the grant's write: whatever fails here spends
/// nothing, and after the write nothing is left that can fail.
pub async fn user_tokens(
    state: &AppState,
    g: &UserTokenInput<'_>,
    refresh_token: Option<String>,
) -> Result<Sealed, Error> {
    let (access, record) = state
        .tokens
        .seal_access_token(prepare_access(state, g).await?)?;
    let id_token = if g.scope.contains("openid") {
        Some(state.tokens.issue_id_token(IdClaimsInput {
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
    Ok(Sealed {
        response: TokenResponse {
            access_token: access.token,
            token_type: token_type(g.jkt),
            expires_in: access.expires_in,
            refresh_token,
            id_token,
            scope: g.scope.to_string(),
            issued_token_type: None,
        },
        record,
    })
}

/// The audience of an access token from the RFC 8707 `resource` parameter:
/// a registered resource server, else Gatehouse itself.
pub async fn audience(state: &AppState, resource: Option<&str>) -> Result<Audience, Error> {
    match resource {
        None => Ok(Audience::Own),
        Some(r) => {
            let all = state.registry.resources().await?;
            let found: Option<Arc<Resource>> = all.get(r).cloned();
            found.map(Audience::Resource).ok_or_else(|| {
                OAuthError::InvalidTarget("resource is not a registered resource server".into())
                    .into()
            })
        }
    }
}
