//! Login sessions and their cookies, and the CSRF token of every form.
//!
//! The session cookie holds an opaque 256-bit id; the store keeps only its
//! keyed hash. A new id is issued at every login (no fixation) and at
//! every step-up (a privilege change). In
//! production the cookie is `__Host-` prefixed, Secure, HttpOnly and
//! SameSite=Lax; an http loopback issuer (development) drops `Secure` and
//! with it the prefix, which browsers only accept on Secure cookies.

use axum::http::{header, HeaderMap, HeaderValue};
use gatehouse_storage::model::{Session, User};
use subtle::ConstantTimeEq;

use super::error::AppError;
use crate::{secrets::random_token, state::AppState};

fn cookie_name(state: &AppState, base: &str) -> String {
    if state.settings.dev_mode {
        format!("gatehouse_{base}")
    } else {
        format!("__Host-gatehouse_{base}")
    }
}

pub(crate) fn set_cookie(
    state: &AppState,
    base: &str,
    value: &str,
    max_age: Option<i64>,
) -> Option<HeaderValue> {
    let secure = if state.settings.dev_mode {
        ""
    } else {
        "; Secure"
    };
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{age}",
        cookie_name(state, base)
    ))
    .ok()
}

/// The value of a cookie in the request, if present.
pub fn read_cookie(state: &AppState, headers: &HeaderMap, base: &str) -> Option<String> {
    let name = cookie_name(state, base);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The live session of this browser and its (enabled) user.
pub async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(Session, User)>, AppError> {
    let Some(id) = read_cookie(state, headers, "session") else {
        return Ok(None);
    };
    let now = state.now();
    let hash = state.hasher.hash(&id);
    let Some(session) = state
        .store
        .live_session(&hash, now, state.settings.lifetimes.session_idle)
        .await?
    else {
        return Ok(None);
    };
    let Some(user) = state.store.user_by_id(&session.user_id).await? else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    if now - session.last_seen_at > 60 {
        state.store.touch_session(&hash, now).await?;
    }
    Ok(Some((session, user)))
}

/// Starts a session for `user` at level `acr` (`amr`), ending the
/// browser's previous one; records where it started (IP, browser) for the
/// account page. Returns the session and its Set-Cookie header.
pub async fn start(
    state: &AppState,
    headers: &HeaderMap,
    user: &User,
    amr: Vec<String>,
    acr: gatehouse_protocol::Acr,
    ip: Option<std::net::IpAddr>,
) -> Result<(Session, Option<HeaderValue>), AppError> {
    if let Some(old) = read_cookie(state, headers, "session") {
        state.store.delete_session(&state.hasher.hash(&old)).await?;
    }
    let id = random_token();
    let now = state.now();
    let session = Session {
        id_hash: state.hasher.hash(&id),
        sid: uuid::Uuid::new_v4().to_string(),
        user_id: user.id.clone(),
        auth_time: now,
        amr,
        acr: Some(acr.as_str().to_owned()),
        created_at: now,
        last_seen_at: now,
        expires_at: now + state.settings.lifetimes.session_max_age,
        ip: ip.map(|i| i.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().filter(|c| !c.is_control()).take(255).collect()),
    };
    state.store.create_session(&session).await?;
    Ok((session, set_cookie(state, "session", &id, None)))
}

/// Raises `session` to `acr` (`amr`) after a second factor, under a new
/// id: a privilege change gets a new cookie, so a copy of the old one
/// taken before is worth nothing (OWASP Session Management). Returns the
/// session as it is now and, when its id was renewed, the Set-Cookie to
/// send; `None` when the session ended meanwhile.
pub async fn raise(
    state: &AppState,
    session: &Session,
    acr: gatehouse_protocol::Acr,
    amr: &[String],
) -> Result<Option<(Session, Option<HeaderValue>)>, AppError> {
    let id = random_token();
    let new_hash = state.hasher.hash(&id);
    let Some(now) = state
        .store
        .raise_session(&session.id_hash, &new_hash, acr, amr)
        .await?
    else {
        return Ok(None);
    };
    let cookie = if now.id_hash == new_hash {
        set_cookie(state, "session", &id, None)
    } else {
        None
    };
    Ok(Some((now, cookie)))
}

/// Ends the browser's session. Returns the ended session and a cookie that clears it.
pub async fn end(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Option<Session>, Option<HeaderValue>), AppError> {
    let ended = match read_cookie(state, headers, "session") {
        Some(id) => state.store.delete_session(&state.hasher.hash(&id)).await?,
        None => None,
    };
    Ok((ended, set_cookie(state, "session", "", Some(0))))
}

/// The CSRF token for a form: the browser's CSRF cookie, or a new one
/// (then also returns the Set-Cookie to send).
pub fn csrf_token(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match read_cookie(state, headers, "csrf") {
        Some(t) => (t, None),
        None => {
            let t = random_token();
            let c = set_cookie(state, "csrf", &t, None);
            (t, c)
        }
    }
}

/// Checks a submitted CSRF token against the cookie (double submit), in constant time.
pub fn check_csrf(state: &AppState, headers: &HeaderMap, submitted: &str) -> Result<(), AppError> {
    let ok = read_cookie(state, headers, "csrf")
        .map(|c| !submitted.is_empty() && bool::from(c.as_bytes().ct_eq(submitted.as_bytes())))
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(AppError::Page {
            status: axum::http::StatusCode::FORBIDDEN,
            message: crate::i18n::Msg::FormExpired,
        })
    }
}
