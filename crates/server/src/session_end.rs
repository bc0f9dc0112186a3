//! Ending sessions and telling clients: RP-initiated logout and the
//! account page end one session (the account page also tells one client
//! that she withdrew her consent); a forced logout (`gatehouse sessions
//! revoke`) ends every session of a user, deletes her codes not yet
//! redeemed, revokes her refresh tokens, puts her live access tokens on
//! the revocation list, and sends back-channel logout tokens (OpenID
//! Connect Back-Channel Logout 1.0) to each client she used.

use std::time::Duration;

use gatehouse_storage::model::{Session, User};
use serde::Serialize;

use crate::{
    error::Error,
    oauth::{ClientId, UserId},
    outbound::OutboundError,
    state::AppState,
};

/// The outcome of one back-channel delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub client_id: ClientId,
    pub uri: String,
    pub delivered: bool,
    pub attempts: u32,
}

/// What a forced logout did.
#[derive(Debug, Clone, Serialize)]
pub struct ForcedLogout {
    pub sub: UserId,
    pub sessions_ended: usize,
    pub refresh_tokens_revoked: u64,
    pub access_tokens_revoked: bool,
    pub backchannel: Vec<Delivery>,
    /// Authorization codes issued but not yet redeemed, now deleted.
    pub codes_deleted: u64,
}

/// POSTs a logout token with a timeout and up to three attempts (1 s, then
/// 2 s apart), through the guarded client (never to an internal host).
/// Succeeds on 200 or 204 (section 2.8).
async fn deliver(state: &AppState, uri: &str, token: &str) -> (bool, u32) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let sent = state.http.post_form(uri, &[("logout_token", token)]).await;
        match sent {
            Ok(s) if s.as_u16() == 200 || s.as_u16() == 204 => return (true, attempt),
            Ok(s) => {
                tracing::warn!(%uri, status = s.as_u16(), attempt, "back-channel logout refused")
            }
            // The target is internal: trying again would not change that.
            Err(e @ OutboundError::Refused(_)) => {
                tracing::warn!(%uri, error = %e, "back-channel logout not sent");
                return (false, attempt);
            }
            Err(e) => tracing::warn!(%uri, error = %e, attempt, "back-channel logout failed"),
        }
        if attempt >= 3 {
            return (false, attempt);
        }
        tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
    }
}

/// Sends back-channel logout for session `session` to every client that
/// received tokens through it and registered a `backchannel_logout_uri`.
pub async fn notify(state: &AppState, session: &Session) -> Result<Vec<Delivery>, Error> {
    let mut out = Vec::new();
    for client_id in state.store.session_clients(&session.sid).await? {
        out.extend(notify_client(state, &client_id, session).await?);
    }
    Ok(out)
}

/// Sends back-channel logout for `session` to `client_id`, if it
/// registered a `backchannel_logout_uri`.
async fn notify_client(
    state: &AppState,
    client_id: &str,
    session: &Session,
) -> Result<Option<Delivery>, Error> {
    // One client that cannot be read or signed for must not keep the
    // others from hearing of the logout.
    let client = match state.registry.client(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(None),
        Err(e) if e.is_unavailable() => return Err(e.into()),
        Err(e) => {
            tracing::error!(%client_id, error = %e, "back-channel logout skipped: client unreadable");
            return Ok(None);
        }
    };
    let Some(uri) = client.backchannel_logout_uri.clone() else {
        return Ok(None);
    };
    let token = match state
        .tokens
        .issue_logout_token(&client, &session.user_id, Some(&session.sid))
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(%client_id, error = %e, "back-channel logout skipped: no logout token");
            return Ok(None);
        }
    };
    let (delivered, attempts) = deliver(state, &uri, &token).await;
    Ok(Some(Delivery {
        client_id: client.id.clone(),
        uri,
        delivered,
        attempts,
    }))
}

/// Tells `client_id`, in the background, that each of `sessions` through
/// which it received tokens has ended for it (the user withdrew her
/// consent): a back-channel logout per such session.
pub fn notify_client_in_background(state: &AppState, client_id: String, sessions: Vec<Session>) {
    let state = state.clone();
    tokio::spawn(async move {
        for s in &sessions {
            let used = match state.store.session_clients(&s.sid).await {
                Ok(clients) => clients.contains(&client_id),
                Err(e) => {
                    tracing::warn!(error = ?e, "back-channel logout failed");
                    return;
                }
            };
            if !used {
                continue;
            }
            if let Err(e) = notify_client(&state, &client_id, s).await {
                tracing::warn!(error = ?e, "back-channel logout failed");
                return;
            }
        }
    });
}

/// Sends back-channel logout in the background: the user's logout never
/// waits for a client.
pub fn notify_in_background(state: &AppState, session: Session) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = notify(&state, &session).await {
            tracing::warn!(error = ?e, "back-channel logout failed");
        }
    });
}

/// Ends every session of `user`, deletes her unredeemed codes (and denies
/// her device approvals not yet redeemed), revokes her
/// refresh and access tokens and notifies her clients. Takes effect on
/// every instance's next request: sessions, codes and refresh tokens are
/// read from the database, and access tokens are checked against the
/// revocation list on every use. Sessions go first (no new code can be
/// issued), then codes (none can be redeemed), then the tokens.
pub async fn force_logout(state: &AppState, user: &User) -> Result<ForcedLogout, Error> {
    let sessions = state.store.sessions_of_user(&user.id).await?;
    state.store.delete_sessions_of_user(&user.id).await?;
    let codes_deleted = state.store.delete_pending_codes_of_user(&user.id).await?;
    state
        .store
        .deny_unredeemed_device_approvals(&user.id, None, state.now())
        .await?;
    let refresh = state
        .store
        .revoke_refresh_tokens_of_user(&user.id, state.now())
        .await?;
    state.tokens.revoke_subject_tokens(&user.id).await?;
    // A device approval that committed while the above ran, and redeemed
    // before the subject's cut-off existed, left a refresh token and an
    // approval behind: once more, now that every later redemption sees
    // the cut-off and is refused.
    state
        .store
        .deny_unredeemed_device_approvals(&user.id, None, state.now())
        .await?;
    let refresh = refresh
        + state
            .store
            .revoke_refresh_tokens_of_user(&user.id, state.now())
            .await?;
    crate::audit::emit(
        &crate::audit::Event::ForcedLogout {
            user_id: &user.id,
            sessions_ended: sessions.len(),
        },
        state.now(),
    );
    let mut backchannel = Vec::new();
    for s in &sessions {
        backchannel.extend(notify(state, s).await?);
    }
    Ok(ForcedLogout {
        sub: user.id.clone(),
        sessions_ended: sessions.len(),
        refresh_tokens_revoked: refresh,
        access_tokens_revoked: true,
        backchannel,
        codes_deleted,
    })
}
