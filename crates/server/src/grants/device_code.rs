//! The device authorization grant at the token endpoint (RFC 8628 3.4,
//! 3.5): the device polls with its device code until the user decides at
//! `/device`.
//!
//! Each poll is recorded (one conditional write): one sooner than the
//! interval after the last, or racing another, gets `slow_down` and makes
//! the interval 5 seconds longer for good. Then `authorization_pending`
//! until the user decides, `access_denied` after a denial, `expired_token`
//! after ten minutes. An approval is redeemed once, in one conditional
//! write with the grant's first rows (of N concurrent polls, across
//! instances, exactly one gets tokens); the tokens are those of the code
//! flow (an ID token for `openid`, a refresh token only for
//! `offline_access`). A device code presented again after that revokes
//! what it produced (as a replayed code does, RFC 6749 10.5: the first
//! redeemer may have been a thief), unless it comes within the interval
//! after the redemption: a poll racing it, sent early or twice by the
//! client itself, is told to slow down.

use gatehouse_storage::model::{DeviceApproval, DeviceAuthorization, DevicePoll};

use crate::{
    dpop::Proof,
    error::{Error, OAuthError},
    grants::AuthenticatedClient,
    oauth::ScopeSet,
    state::AppState,
    tokens::{new_jti, TokenResponse},
};

fn invalid_grant(d: &'static str) -> Error {
    OAuthError::InvalidGrant(d.into()).into()
}

/// Polls with `device_code` (RFC 8628 3.4) and, once approved, answers
/// with the tokens.
pub async fn exchange(
    state: &AppState,
    auth: &AuthenticatedClient,
    device_code: &str,
    proof: Option<&Proof>,
) -> Result<TokenResponse, Error> {
    let now = state.now();
    let client = &auth.client;
    let hash = state.hasher.hash(device_code);
    let (authorization, approval) = match state
        .store
        .poll_device_authorization(&hash, &client.id, now)
        .await?
    {
        DevicePoll::Approved(d, a) => (d, a),
        DevicePoll::Pending => {
            return Err(OAuthError::AuthorizationPending(
                "the user has not yet approved or denied the request".into(),
            )
            .into())
        }
        DevicePoll::SlowDown { interval } => {
            return Err(OAuthError::SlowDown(
                format!("polling too fast: wait at least {interval} seconds between requests")
                    .into(),
            )
            .into())
        }
        DevicePoll::Denied => {
            return Err(OAuthError::AccessDenied("the user denied the request".into()).into())
        }
        DevicePoll::Expired => {
            return Err(OAuthError::ExpiredToken(
                "the device code has expired: start a new device authorization".into(),
            )
            .into())
        }
        DevicePoll::OtherClient => {
            return Err(invalid_grant(
                "the device code was issued to another client",
            ))
        }
        DevicePoll::Unknown => return Err(invalid_grant(
            "the device code is unknown: it was never issued here, or it expired and was removed",
        )),
        DevicePoll::Replayed {
            family_id,
            access_token_jti,
            access_token_expires_at,
        } => {
            tracing::warn!(client_id = %client.id, "device code used again; revoking the tokens it produced");
            super::revoke_redeemed(state, &family_id, access_token_jti, access_token_expires_at)
                .await?;
            return Err(invalid_grant(
                "the device code has already been used; the tokens issued for it are revoked",
            ));
        }
    };
    if let Some(p) = proof {
        p.record(state).await?;
    }
    issue(state, auth, &authorization, &approval, proof).await
}

/// The tokens of an approved device authorization, made before it is
/// redeemed and written with the redemption.
async fn issue(
    state: &AppState,
    auth: &AuthenticatedClient,
    d: &DeviceAuthorization,
    approval: &DeviceApproval,
    proof: Option<&Proof>,
) -> Result<TokenResponse, Error> {
    let now = state.now();
    let client = &auth.client;
    let jkt = proof.map(|p| &p.jkt);
    let user = match state.store.user_by_id(&approval.user_id).await? {
        Some(u) if !u.disabled => u,
        _ => {
            return Err(invalid_grant(
                "the user who approved this device is disabled or deleted",
            ))
        }
    };
    // A forced logout (or the client's tokens revoked) after the sign-in
    // that approved it, racing the approval: no tokens.
    if state
        .tokens
        .cut_off_since(&user.id, &client.id, approval.auth_time)
        .await?
    {
        return Err(OAuthError::AccessDenied(
            "the user's sessions were ended after this approval".into(),
        )
        .into());
    }
    let scope = ScopeSet::parse(&d.scope)
        .map_err(|_| Error::Internal("a stored device authorization scope is invalid".into()))?;
    let grant = super::UserTokenInput {
        client,
        user: &user,
        scope: &scope,
        resource: d.resource.as_deref(),
        auth_time: approval.auth_time,
        acr: approval.acr.as_deref(),
        amr: &approval.amr,
        sid: None,
        nonce: None,
        family: &d.family_id,
        jti: new_jti(),
        jkt,
    };
    let (response, writes) = super::first_tokens(state, auth, &grant).await?;
    let lifetime_bound = super::access_lifetime_bound(state, client);
    if !state
        .store
        .redeem_device_code(
            &d.device_code_hash,
            now,
            &grant.jti,
            now + lifetime_bound,
            &writes,
        )
        .await?
    {
        // Another poll redeemed it in between, or it expired meanwhile.
        return Err(invalid_grant(
            "the device code was redeemed by another request or has expired",
        ));
    }
    Ok(response)
}
