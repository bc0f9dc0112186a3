//! The refresh token grant (RFC 6749 6; RFC 9700 4.14.2).
//!
//! Refresh tokens rotate on every use. One rule for retries: a rotated token
//! presented again while its successor has never been used receives that
//! same successor (two tabs, a lost response, an answer that was a 5xx).
//! For a token only its client can use ([`Possession::Proven`]: a
//! confidential client, later a sender-constrained token) this holds with no
//! time limit; for a bearer token of a public client only within
//! `refresh_grace` seconds, since a thief could use a longer window. Any
//! other reuse revokes the whole family. Scope may narrow, never widen.

use gatehouse_protocol::Acr;
use gatehouse_storage::{
    model::{Client, RefreshToken, User},
    RefreshRefusal, RefreshUse, RetryWindow,
};

use crate::{
    audit::{self, Event},
    authorization::levels,
    dpop::Proof,
    error::{Error, OAuthError},
    grants::AuthenticatedClient,
    oauth::{AuthMethod, ScopeSet},
    state::AppState,
    tokens::{new_jti, TokenResponse},
};

fn invalid_grant(d: &'static str) -> Error {
    OAuthError::InvalidGrant(d.into()).into()
}

/// Whether presenting a refresh token takes more than holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Possession {
    /// The presenter proved who it is: a confidential client authenticated
    /// (a stolen token alone is useless). Sender-constrained (DPoP-bound)
    /// tokens belong here too.
    Proven,
    /// A bearer token of a public client: whoever holds it can use it.
    Bearer,
}

impl Possession {
    /// What the presenter of a refresh token proved: a DPoP-bound token
    /// (whose proof was checked) or a confidential client's.
    pub fn of(auth: &AuthenticatedClient, bound: bool) -> Possession {
        match auth.method {
            AuthMethod::None if bound => Possession::Proven,
            AuthMethod::None => Possession::Bearer,
            AuthMethod::ClientSecretBasic
            | AuthMethod::ClientSecretPost
            | AuthMethod::ClientSecretJwt
            | AuthMethod::PrivateKeyJwt => Possession::Proven,
        }
    }

    /// How long a rotated token may come back for its unused successor.
    pub fn retry_window(self, refresh_grace: i64) -> RetryWindow {
        match self {
            Possession::Proven => RetryWindow::Unlimited,
            Possession::Bearer => RetryWindow::Seconds(refresh_grace),
        }
    }
}

fn refused(r: RefreshRefusal) -> Error {
    invalid_grant(match r {
        RefreshRefusal::Unknown => "the refresh token is unknown",
        RefreshRefusal::Expired => "the refresh token has expired",
        RefreshRefusal::Revoked => "the refresh token has been revoked",
    })
}

/// Rotates a refresh token and issues a fresh access token (and ID token).
pub async fn exchange(
    state: &AppState,
    auth: &AuthenticatedClient,
    presented: &str,
    scope: Option<&str>,
    proof: Option<&Proof>,
) -> Result<TokenResponse, Error> {
    let jkt = proof.map(|p| &p.jkt);
    let client = &auth.client;
    let now = state.now();
    let old_hash = state.hasher.hash(presented);

    // Cheap checks before any write: the token must be this client's.
    let Some(old) = state.store.refresh_token(&old_hash).await? else {
        return Err(refused(RefreshRefusal::Unknown));
    };
    if old.client_id != client.id {
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if old.revoked_at.is_some() {
        return Err(refused(RefreshRefusal::Revoked));
    }
    if old.expires_at <= now {
        return Err(refused(RefreshRefusal::Expired));
    }
    // A bound token needs a proof of its key (RFC 9449 5): refused before
    // anything is written, so a thief without the key neither spends it
    // nor sets off reuse detection.
    if let Some(bound) = &old.dpop_jkt {
        match jkt {
            Some(j) if j == bound => {}
            Some(_) => {
                return Err(invalid_grant(
                    "the refresh token is bound to another DPoP key",
                ))
            }
            None => {
                return Err(invalid_grant(
                    "the refresh token is bound to a DPoP key: send a DPoP proof of that key",
                ))
            }
        }
    }
    // The token is this client's, live, and its binding holds: the proof
    // may be recorded.
    if let Some(p) = proof {
        p.record(state).await?;
    }
    let granted = ScopeSet::parse(&old.scope)
        .map_err(|_| Error::Internal("a stored refresh scope is invalid".into()))?;
    let scope = match scope {
        None => granted.clone(),
        Some(s) => {
            let asked = ScopeSet::parse(s).map_err(|e| OAuthError::InvalidScope(e.into()))?;
            if !asked.is_subset(&granted) {
                return Err(OAuthError::InvalidScope(
                    "scope may only be narrowed on refresh".into(),
                )
                .into());
            }
            asked
        }
    };
    let user = match state.store.user_by_id(&old.user_id).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(invalid_grant("the user is no longer active")),
    };
    // A level the client or the user requires now, above the one this
    // grant was made at, ends it: the client signs the user in again.
    let granted_at = levels::level_of_amr(&old.amr);
    if granted_at < levels::policy_floor(client, &user) {
        return Err(invalid_grant(
            "the refresh token was granted at a lower authentication level than is now required; sign the user in again",
        ));
    }
    // A user who has a second factor always uses it: a grant made with
    // the password alone (before she added one) ends. One query, only for
    // one-factor grants.
    if granted_at < Acr::Mfa && state.store.factors_of_user(&user.id).await?.any() {
        return Err(invalid_grant(
            "the refresh token was granted with one factor before the user added a second; sign the user in again",
        ));
    }

    // The whole answer is made before the rotation, and the access token's
    // row is written in the rotation's transaction: if anything fails, the
    // presented token is not spent; if the answer is lost after the
    // commit, the retry rule hands out the same successor.
    let grant = super::UserTokenInput {
        client,
        user: &user,
        scope: &scope,
        resource: old.resource.as_deref(),
        auth_time: old.auth_time,
        acr: old.acr.as_deref(),
        amr: &old.amr,
        sid: old.sid.as_deref(),
        nonce: None,
        family: &old.family_id,
        jti: new_jti(),
        jkt,
    };
    // A public client's grant, once refreshed with a proof, stays bound
    // to that key (RFC 9449 5).
    let binding = old
        .dpop_jkt
        .clone()
        .or_else(|| jkt.filter(|_| auth.method == AuthMethod::None).cloned());
    let (successor, successor_hash) = state.tokens.successor_refresh_token(presented);
    let retry = Possession::of(auth, old.dpop_jkt.is_some())
        .retry_window(state.settings.lifetimes.refresh_grace);
    let sealed = match super::user_tokens(state, &grant, Some(successor)).await {
        Ok(s) => s,
        // A rotated token still meets reuse detection, even when no answer
        // can be made for it.
        Err(e) if old.used_at.is_some() => {
            let outcome = state
                .store
                .use_refresh_token(&old_hash, &successor_hash, now, retry, Clone::clone, None)
                .await?;
            judge(state, client, &user, outcome).await?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let lifetime = client
        .refresh_token_lifetime
        .unwrap_or(state.settings.lifetimes.refresh_token);
    let outcome = state
        .store
        .use_refresh_token(
            &old_hash,
            &successor_hash,
            now,
            retry,
            |old| RefreshToken {
                token_hash: successor_hash.clone(),
                successor_hash: None,
                created_at: now,
                expires_at: now + lifetime,
                used_at: None,
                revoked_at: None,
                dpop_jkt: binding.clone(),
                ..old.clone()
            },
            sealed.record.as_ref(),
        )
        .await?;
    let current = judge(state, client, &user, outcome).await?;
    if current.token_hash != successor_hash {
        return Err(Error::Internal("refresh successor mismatch".into()));
    }
    Ok(sealed.response)
}

/// The token the client may have from a rotation's outcome; reuse revokes
/// the grant.
async fn judge(
    state: &AppState,
    client: &Client,
    user: &User,
    outcome: RefreshUse,
) -> Result<RefreshToken, Error> {
    match outcome {
        RefreshUse::Rotated(t) | RefreshUse::Retry(t) => Ok(t),
        RefreshUse::Reused { family_id } => {
            tracing::warn!(client_id = %client.id, %family_id, "refresh token reuse detected; family revoked");
            audit::emit(
                &Event::RefreshReuseDetected {
                    client_id: &client.id,
                    user_id: Some(&user.id),
                },
                state.now(),
            );
            state.tokens.revoke_grant(&family_id).await?;
            Err(invalid_grant(
                "the refresh token has already been used; its grant is revoked",
            ))
        }
        RefreshUse::Invalid(r) => Err(refused(r)),
    }
}
