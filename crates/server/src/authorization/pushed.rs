//! Pushed authorization requests (RFC 9126): a request a client sent to
//! `/par`, checked there in full and kept in the database for
//! [`PAR_LIFETIME`] seconds under the keyed hash of its `request_uri`'s
//! random part; then presented at `/authorize` with the same `client_id`
//! and redeemed once (one conditional write, one winner across instances).
//! What follows is an ordinary authorization transaction on the stored
//! request: it is the transaction that must finish in time, not the
//! pushed request. The policy that demands pushing (per client and
//! server-wide, RFC 9126 5 and 6) is here too.

use gatehouse_storage::{
    model::{Client, PushedRequest, Redemption},
    StoreError,
};

use super::{
    checks::Reply,
    request::{AuthorizationRequest, Checked, Received, Rejection, Via},
};
use crate::{
    i18n::{self, Msg},
    oauth::ErrorCode,
    secrets::random_token,
    state::AppState,
};

/// How long a pushed request can be redeemed, in seconds (`expires_in`).
pub const PAR_LIFETIME: i64 = 60;

/// The prefix of every `request_uri` `/par` hands out (RFC 9126 2.2).
pub const URN_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Longest random part accepted (ours are 43 characters).
const MAX_ID_LEN: usize = 128;

/// What `/par` answers (RFC 9126 2.2).
#[derive(Debug)]
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: i64,
}

/// Keeps a checked request for its client to redeem: a new random
/// `request_uri`, of which the store keeps only the keyed hash.
pub async fn push(state: &AppState, checked: &Checked) -> Result<Pushed, StoreError> {
    let id = random_token();
    let now = state.now();
    let request = serde_json::to_string(&checked.request)
        .map_err(|e| StoreError::Corrupt(format!("authorization request: {e}")))?;
    state
        .store
        .create_pushed_request(&PushedRequest {
            id_hash: state.hasher.hash(&id),
            client_id: checked.request.client_id.clone(),
            request,
            created_at: now,
            expires_at: now + PAR_LIFETIME,
            redeemed_at: None,
        })
        .await?;
    Ok(Pushed {
        request_uri: format!("{URN_PREFIX}{id}"),
        expires_in: PAR_LIFETIME,
    })
}

/// The request `/authorize` received, checked: a pushed one when it
/// carries a `request_uri` of ours (every other parameter but `client_id`
/// ignored, RFC 9126 4), else the parameters (or request object) it
/// carries, through [`super::validate`].
pub async fn receive(state: &AppState, received: &Received) -> Result<Checked, Rejection> {
    match received.get("request_uri") {
        Some(uri) if received.via == Via::Authorize && uri.starts_with(URN_PREFIX) => {
            redeem(state, received, &uri[URN_PREFIX.len()..]).await
        }
        _ => super::validate(state, received).await,
    }
}

/// Redeems the pushed request `id` for the request's `client_id`, and
/// checks it again against the client's registration as it is now. Any
/// failure is a page (400): neither the stored redirect URI nor the one in
/// the query can be trusted for a request that cannot be redeemed.
async fn redeem(state: &AppState, received: &Received, id: &str) -> Result<Checked, Rejection> {
    if received.duplicate.as_deref() == Some("client_id") {
        return Err(Rejection::Page(Msg::RepeatedClientOrRedirect));
    }
    let client_id = received
        .get("client_id")
        .ok_or(Rejection::Page(Msg::NoClient))?;
    let client = state
        .registry
        .client(client_id)
        .await?
        .ok_or(Rejection::Page(Msg::UnknownClient))?;
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(Rejection::Page(Msg::RequestUriUnknown));
    }
    let found = state
        .store
        .redeem_pushed_request(&state.hasher.hash(id), client.id.as_str(), state.now())
        .await?;
    let pushed = match found {
        Redemption::Redeemed(p) => p,
        Redemption::OtherClient => {
            tracing::warn!(client_id = %client.id, "request_uri presented with another client_id");
            return Err(Rejection::Page(Msg::RequestUriOtherClient));
        }
        Redemption::Used => {
            tracing::warn!(client_id = %client.id, "request_uri presented again");
            return Err(Rejection::Page(Msg::RequestUriUsed));
        }
        Redemption::Expired => return Err(Rejection::Page(Msg::RequestUriExpired)),
        Redemption::Unknown => return Err(Rejection::Page(Msg::RequestUriUnknown)),
    };
    let request: AuthorizationRequest = serde_json::from_str(&pushed.request)
        .map_err(|e| StoreError::Corrupt(format!("pushed authorization request: {e}")))?;
    // The pages speak the languages the pushed request asked for.
    i18n::prefer(&request.ui_locales);
    super::recheck(state, &client, &request).await?;
    Ok(Checked { request, client })
}

/// A request sent to `/authorize` directly, from a client or server that
/// requires pushing (RFC 9126 5, 6): `invalid_request`.
pub fn check_required(
    state: &AppState,
    reply: &Reply,
    client: &Client,
    received: &Received,
) -> Result<(), Rejection> {
    if received.via == Via::Pushed {
        return Ok(());
    }
    if client.require_pushed_authorization_requests {
        return Err(reply.reject(
            ErrorCode::InvalidRequest,
            "this client must use pushed authorization requests (POST /par, then request_uri)",
        ));
    }
    if state.settings.require_pushed_authorization_requests {
        return Err(reply.reject(
            ErrorCode::InvalidRequest,
            "this server requires pushed authorization requests (POST /par, then request_uri)",
        ));
    }
    Ok(())
}
