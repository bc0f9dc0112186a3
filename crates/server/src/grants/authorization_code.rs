//! The authorization code grant (RFC 6749 4.1.3; RFC 7636 4.6; OIDC Core 3.1.3).
//!
//! A code is single use, lives 60 seconds, and is bound to its client, its
//! redirect URI and its PKCE challenge. Redemption is one conditional write,
//! so of N concurrent redemptions exactly one succeeds. A replayed code
//! revokes what the first redemption issued (RFC 6749 10.5).

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use gatehouse_storage::model::{CodeRedemption, RefreshToken};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    http::{client_auth::Authenticated, error::AppError, form::Params},
    oauth::{ErrorCode, GrantType, ScopeSet},
    state::AppState,
    tokens::{new_jti, TokenResponse},
};

fn invalid_grant(d: &'static str) -> AppError {
    AppError::oauth(ErrorCode::InvalidGrant, d)
}

/// Exchanges a code for tokens.
pub async fn exchange(
    state: &AppState,
    auth: &Authenticated,
    p: &Params,
) -> Result<TokenResponse, AppError> {
    let code = p.require("code")?;
    let redirect_uri = p.require("redirect_uri")?;
    let verifier = p.get("code_verifier");
    let now = state.now();
    let client = &auth.client;

    let jti = new_jti();
    // Upper bound for the revocation entry; the exact lifetime is chosen at issuance.
    let at_exp_bound = now
        + state
            .settings
            .lifetimes
            .access_token
            .max(client.access_token_lifetime.unwrap_or(0))
            .max(86_400);
    let code = match state
        .store
        .redeem_code(&state.hasher.hash(code), now, &jti, at_exp_bound)
        .await?
    {
        CodeRedemption::Redeemed(c) => c,
        CodeRedemption::Replayed {
            family_id,
            access_token_jti,
            access_token_expires_at,
        } => {
            tracing::warn!(client_id = %client.id, "authorization code replayed; revoking the tokens it produced");
            // The grant: its refresh tokens and every access token issued
            // from it, JWE and opaque, not only the first one.
            state.revoke_grant(&family_id).await?;
            if let (Some(j), Some(exp)) = (access_token_jti, access_token_expires_at) {
                state.store.revoke_jti(&j, exp, now).await?;
                state.store.revoke_opaque_token(&j, now).await?;
            }
            return Err(invalid_grant(
                "the authorization code has already been used; the tokens issued for it are revoked",
            ));
        }
        CodeRedemption::Invalid => {
            return Err(invalid_grant(
                "the authorization code is invalid or expired",
            ))
        }
    };
    if code.client_id != client.id {
        return Err(invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if code.redirect_uri != redirect_uri {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&code.code_challenge, verifier) {
        (Some(challenge), Some(v)) => {
            let valid = (43..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()));
            if !valid || !bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
                return Err(invalid_grant(
                    "code_verifier does not match the code challenge",
                ));
            }
        }
        (Some(_), None) => return Err(invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(invalid_grant(
                "code_verifier was sent but no code challenge was",
            ))
        }
        (None, None) => {}
    }
    let user = match state.store.user_by_id(&code.user_id).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(invalid_grant("the user is no longer active")),
    };
    let scope =
        ScopeSet::parse(&code.scope).map_err(|_| invalid_grant("stored scope is invalid"))?;
    let refresh_token = if scope.contains("offline_access")
        && client
            .grant_types
            .iter()
            .any(|g| g == GrantType::RefreshToken.as_str())
    {
        let (token, hash) = state.new_refresh_token();
        state
            .store
            .create_refresh_token(&RefreshToken {
                token_hash: hash,
                family_id: code.family_id.clone(),
                client_id: client.id.clone(),
                user_id: user.id.clone(),
                scope: scope.to_string(),
                resource: code.resource.clone(),
                auth_time: code.auth_time,
                sid: code.sid.clone(),
                acr: code.acr.clone(),
                amr: code.amr.clone(),
                successor_hash: None,
                created_at: now,
                expires_at: now
                    + client
                        .refresh_token_lifetime
                        .unwrap_or(state.settings.lifetimes.refresh_token),
                used_at: None,
                revoked_at: None,
            })
            .await?;
        Some(token)
    } else {
        None
    };
    super::user_tokens(
        state,
        super::UserGrant {
            client,
            user: &user,
            scope: &scope,
            resource: code.resource.as_deref(),
            auth_time: code.auth_time,
            acr: code.acr.as_deref(),
            amr: &code.amr,
            sid: code.sid.as_deref(),
            nonce: code.nonce.as_deref(),
            family: &code.family_id,
            jti,
        },
        refresh_token,
    )
    .await
}
