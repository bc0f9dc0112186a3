//! `POST /account/sessions/end`: the user ends one of her sessions, named
//! by its public id (`sid`). Its clients hear of it by back-channel
//! logout; ending this browser's own session signs her out here. No
//! recent sign-in is needed: ending a session only takes access away.

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};

use super::{posted, see_other, with_cookie, Done};
use crate::{
    audit::{self, Event},
    http::{error::AppError, session},
    i18n::Msg,
    session_end,
    state::AppState,
};

/// `POST /account/sessions/end`.
pub async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (signed, p) = match posted(&state, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(sid) = p.get("sid") else {
        return AppError::page(Msg::NoSessionNamed).into_page_response();
    };
    let ended = match state.store.delete_user_session(&signed.user.id, sid).await {
        Ok(e) => e,
        Err(e) => return AppError::from(e).into_page_response(),
    };
    // Already gone (another tab, expiry): the page shows what is left.
    let Some(ended) = ended else {
        return see_other("/account");
    };
    audit::emit(
        &Event::SessionEnded {
            user_id: &signed.user.id,
            sid: &ended.sid,
        },
        state.now(),
    );
    let here = ended.sid == signed.session.sid;
    session_end::notify_in_background(&state, ended);
    if here {
        return with_cookie(
            see_other("/login"),
            session::set_cookie(&state, "session", "", Some(0)),
        );
    }
    Done::SessionEnded.back()
}
