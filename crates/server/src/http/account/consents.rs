//! `POST /account/consents/revoke`: the user withdraws what she allowed a
//! client. What the client holds for her goes (her refresh tokens there
//! and the access tokens of those grants), and the consent with it: the
//! client must ask again. The client hears by back-channel logout for each of
//! her sessions through which it got tokens. Needs a recent sign-in.

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};

use super::{posted_recently, see_other, Done};
use crate::{
    audit::{self, Event},
    http::error::AppError,
    i18n::Msg,
    session_end,
    state::AppState,
};

/// `POST /account/consents/revoke`.
pub async fn revoke_consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (signed, p) = match posted_recently(&state, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(client_id) = p.get("client_id") else {
        return AppError::page(Msg::NoAppNamed).into_page_response();
    };
    match revoke(&state, &signed.user.id, client_id).await {
        Ok(true) => Done::ConsentRevoked.back(),
        // Revoked already (another tab): the page shows what is left.
        Ok(false) => see_other("/account"),
        Err(e) => e.into_page_response(),
    }
}

/// Whether there was a consent to revoke.
async fn revoke(state: &AppState, user_id: &str, client_id: &str) -> Result<bool, AppError> {
    // The tokens first: should this fail, the consent is still listed and
    // she can try again.
    let mut refresh = state
        .tokens
        .revoke_user_client_tokens(user_id, client_id)
        .await?;
    if !state.store.delete_consent(user_id, client_id).await? {
        return Ok(false);
    }
    // A grant the client got between the two (single sign-on still found
    // the consent) goes too; from now on it must ask her again.
    refresh += state
        .tokens
        .revoke_user_client_tokens(user_id, client_id)
        .await?;
    audit::emit(&Event::ConsentRevoked { user_id, client_id }, state.now());
    tracing::info!(sub = %user_id, %client_id, refresh_tokens_revoked = refresh, "consent revoked");
    let sessions = state.store.sessions_of_user(user_id).await?;
    session_end::notify_client_in_background(state, client_id.to_owned(), sessions);
    Ok(true)
}
