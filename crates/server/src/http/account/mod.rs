//! `/account`: the signed-in user's own page, rendered on the server with
//! no JavaScript. It lists where she is signed in (each session can be
//! ended), her second factors (an authenticator app set up or removed, new
//! recovery codes, her passkeys, registered and removed in
//! `http::passkey`), a password change, and the clients she allowed
//! (each can be revoked).
//!
//! Only a session at her account's level sees it (otherwise the step-up
//! page first, as `second_factor::account_needs_step_up` says). Every form
//! posts form-encoded, carries the CSRF token (double submit) and is
//! checked against the session read again. Changes to how she signs in or
//! to what a client may do also need a sign-in within the last
//! [`RECENT_SIGN_IN`] seconds; otherwise a page asks her to sign in again
//! and the sign-in leads back here. Ending a session does not: signing
//! out a lost device must never wait for a password.

mod consents;
mod password;
mod second_factors;
mod sessions;
mod view;

use axum::{
    extract::{RawQuery, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::Response,
};
use gatehouse_storage::model::{Session, User};
use tera::Context;

pub use consents::revoke_consent;
pub use password::change_password;
pub use second_factors::{begin_totp, confirm_totp, new_recovery_codes, remove_totp};
pub use sessions::end_session;

use super::{
    authorize::{see_other, urlencode},
    error::AppError,
    form::Params,
    second_factor::account_needs_step_up,
    session,
};
use crate::{i18n::Msg, state::AppState, views};

/// How recent a sign-in must be, in seconds, for a sensitive change.
pub const RECENT_SIGN_IN: i64 = 600;

/// The signed-in user, her session at the level her account needs.
pub(crate) struct Signed {
    pub(crate) session: Session,
    pub(crate) user: User,
}

/// The signed-in user of this browser, or where she must go first: the
/// sign-in page, or the step-up page.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Signed, Response> {
    let (session, user) = match session::current(state, headers).await {
        Ok(Some(x)) => x,
        Ok(None) => return Err(see_other("/login")),
        Err(e) => return Err(e.into_page_response()),
    };
    match account_needs_step_up(state, &session, &user).await {
        Ok(false) => Ok(Signed { session, user }),
        Ok(true) => Err(see_other("/login/second-factor")),
        Err(e) => Err(AppError::from(e).into_page_response()),
    }
}

/// A form of the page, posted: form-encoded, its CSRF token right, and
/// the session, read again, still signed in at the account's level.
async fn posted(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Signed, Params), Response> {
    let bad_form = || AppError::page(Msg::FormNotSent).into_page_response();
    super::form::require_form(headers).map_err(|_| bad_form())?;
    let p = Params::parse(body).map_err(|_| bad_form())?;
    session::check_csrf(state, headers, p.get("csrf").unwrap_or(""))
        .map_err(AppError::into_page_response)?;
    Ok((signed_in(state, headers).await?, p))
}

/// A form of a sensitive change, posted: as [`posted`], and the session's
/// primary authentication at most [`RECENT_SIGN_IN`] seconds old (else the
/// sign-in-again page). The one place this rule lives: the account page's
/// forms and the passkey registration use it.
pub(crate) async fn posted_recently(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Signed, Params), Response> {
    let (signed, p) = posted(state, headers, body).await?;
    match sign_in_again(state, &signed) {
        Some(r) => Err(r),
        None => Ok((signed, p)),
    }
}

/// For a sensitive change: the sign-in-again page, unless the session's
/// primary authentication is at most [`RECENT_SIGN_IN`] seconds old.
fn sign_in_again(state: &AppState, signed: &Signed) -> Option<Response> {
    if state.now() - signed.session.auth_time <= RECENT_SIGN_IN {
        return None;
    }
    Some(sign_in_again_page(&signed.user.username))
}

/// The page that asks `username` to sign in again before a sensitive
/// change (403): a link to the sign-in page with her name filled in,
/// which leads back to the account page.
pub(crate) fn sign_in_again_page(username: &str) -> Response {
    let mut ctx = Context::new();
    ctx.insert(
        "login_url",
        &format!("/login?login_hint={}", urlencode(username)),
    );
    ctx.insert("minutes", &(RECENT_SIGN_IN / 60));
    views::page(StatusCode::FORBIDDEN, "sign_in_again.html", &ctx)
}

/// What a finished change says on the page it leads back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Done {
    SessionEnded,
    TotpRemoved,
    TotpAlreadySetUp,
    PasswordChanged,
    ConsentRevoked,
    PasskeyAdded,
    PasskeyRemoved,
}

impl Done {
    const ALL: [Done; 7] = [
        Done::SessionEnded,
        Done::TotpRemoved,
        Done::TotpAlreadySetUp,
        Done::PasswordChanged,
        Done::ConsentRevoked,
        Done::PasskeyAdded,
        Done::PasskeyRemoved,
    ];

    /// The value of `done` in the page's query.
    fn key(self) -> &'static str {
        match self {
            Done::SessionEnded => "session-ended",
            Done::TotpRemoved => "totp-removed",
            Done::TotpAlreadySetUp => "totp-exists",
            Done::PasswordChanged => "password-changed",
            Done::ConsentRevoked => "consent-revoked",
            Done::PasskeyAdded => "passkey-added",
            Done::PasskeyRemoved => "passkey-removed",
        }
    }

    fn message(self) -> Msg {
        match self {
            Done::SessionEnded => Msg::SessionEnded,
            Done::TotpRemoved => Msg::TotpRemoved,
            Done::TotpAlreadySetUp => Msg::TotpAlreadySetUp,
            Done::PasswordChanged => Msg::PasswordChanged,
            Done::ConsentRevoked => Msg::ConsentRevoked,
            Done::PasskeyAdded => Msg::PasskeyAdded,
            Done::PasskeyRemoved => Msg::PasskeyRemoved,
        }
    }

    fn from_query(query: Option<&str>) -> Option<Done> {
        let value = form_urlencoded::parse(query?.as_bytes())
            .find(|(k, _)| k == "done")
            .map(|(_, v)| v.into_owned())?;
        Done::ALL.into_iter().find(|d| d.key() == value)
    }

    /// Back to the account page, saying this (303).
    pub(crate) fn back(self) -> Response {
        see_other(&format!("/account?done={}", self.key()))
    }
}

/// `GET /account`.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let signed = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let notice = Done::from_query(raw.as_deref()).map(Done::message);
    let page = view::Page {
        status: StatusCode::OK,
        notice,
        password_error: None,
    };
    view::render(&state, &headers, &signed, page).await
}

/// Appends a Set-Cookie header, if any.
fn with_cookie(mut r: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}
