//! `POST /account/password`: a password change. The current password is
//! checked as at sign-in (argon2id under `password::Gate`, throttled on
//! the sign-in keys of this browser), the new one typed twice and held to
//! the password policy. On success her other sessions end (their clients
//! hear of it by back-channel logout); this one goes on.

use axum::{
    body::Bytes,
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::Response,
    Extension,
};
use std::net::{IpAddr, SocketAddr};

use super::{
    posted_recently,
    view::{self, Page, PasswordError, PasswordField},
    Done, Signed,
};
use crate::{
    audit::{self, Event},
    client_ip,
    http::{device, error::AppError, form::Params},
    i18n::Msg,
    password,
    password_policy::PolicyError,
    session_end,
    state::AppState,
};

/// Whether `new` may become a password under the operator's policy
/// (`password_policy`: length, at most 1 KiB, not a common password, not
/// her username or email name); else why not.
fn policy(state: &AppState, user: &gatehouse_storage::model::User, new: &str) -> Result<(), Msg> {
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let personal = [
        user.username.as_str(),
        user.email.as_deref().unwrap_or_default(),
    ];
    crate::password_policy::check(new, state.settings.password_min_length, &personal).map_err(|e| {
        match e {
            PolicyError::TooShort { min } => Msg::PasswordTooShort { count: count(min) },
            PolicyError::TooLong => Msg::PasswordTooLong {
                count: count(crate::password_policy::MAX_BYTES),
            },
            PolicyError::Common => Msg::PasswordCommon,
            PolicyError::Personal => Msg::PasswordPersonal,
        }
    })
}

/// `POST /account/password`.
pub async fn change_password(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(a))| a);
    let ip = client_ip::resolve(peer, &headers, &state.settings.trusted_proxies);
    let (signed, p) = match posted_recently(&state, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match change(&state, &headers, &signed, &p, ip).await {
        Ok(r) => r,
        Err(e) => e.into_page_response(),
    }
}

/// The account page again, with the form's error on `field`.
async fn refused(
    state: &AppState,
    headers: &HeaderMap,
    signed: &Signed,
    (status, retry_after): (StatusCode, Option<i64>),
    field: PasswordField,
    message: Msg,
) -> Response {
    let page = Page {
        status,
        notice: None,
        password_error: Some(PasswordError { field, message }),
    };
    let mut r = view::render(state, headers, signed, page).await;
    if let Some(v) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

async fn change(
    state: &AppState,
    headers: &HeaderMap,
    signed: &Signed,
    p: &Params,
    ip: Option<IpAddr>,
) -> Result<Response, AppError> {
    let user = &signed.user;
    let current = p.get("current_password").unwrap_or("");
    let new = p.get("new_password").unwrap_or("");
    let bad = (StatusCode::BAD_REQUEST, None);
    if current.is_empty() {
        let msg = Msg::EnterCurrentPassword;
        return Ok(refused(state, headers, signed, bad, PasswordField::Current, msg).await);
    }
    if let Err(msg) = policy(state, user, new) {
        return Ok(refused(state, headers, signed, bad, PasswordField::New, msg).await);
    }
    if p.get("new_password_again") != Some(new) {
        let msg = Msg::PasswordsDiffer;
        return Ok(refused(state, headers, signed, bad, PasswordField::Again, msg).await);
    }

    // As at sign-in: this browser's device cookie, else (account, IP).
    let now = state.now();
    let keys = match device::valid_for(state, headers, &user.username, now) {
        Some(nonce) => state.throttle.device_login(&nonce),
        None => state.throttle.untrusted_login(&user.username, ip),
    };
    let too_many = |secs: i64| Msg::TooManyAttempts { count: secs };
    if let Some(secs) = state.throttle.wait(&keys, now) {
        let r = (StatusCode::TOO_MANY_REQUESTS, Some(secs));
        let msg = too_many(secs);
        return Ok(refused(state, headers, signed, r, PasswordField::Current, msg).await);
    }
    let Ok(permit) = password::Gate::global().acquire().await else {
        tracing::warn!("password checks are saturated; password change turned away");
        let r = (StatusCode::SERVICE_UNAVAILABLE, Some(1));
        let msg = Msg::PasswordBusy;
        return Ok(refused(state, headers, signed, r, PasswordField::Current, msg).await);
    };
    let now = state.now();
    let attempt = match state.throttle.attempt(&keys, now) {
        Ok(a) => a,
        Err(secs) => {
            let r = (StatusCode::TOO_MANY_REQUESTS, Some(secs));
            let msg = too_many(secs);
            return Ok(refused(state, headers, signed, r, PasswordField::Current, msg).await);
        }
    };
    let hashed = permit
        .verify_then_hash(
            current.to_owned(),
            user.password_hash.clone(),
            new.to_owned(),
        )
        .await
        .inspect_err(|_| state.throttle.refund(&keys))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let Some(hash) = hashed else {
        tracing::info!(sub = %user.id, "password change refused: wrong current password");
        if let Some((scope, retry_after)) = attempt.engages {
            audit::emit(
                &Event::ThrottleEngaged {
                    scope: scope.as_str(),
                    retry_after,
                    user_id: Some(&user.id),
                    client_id: None,
                    ip,
                },
                now,
            );
        }
        let r = (StatusCode::UNAUTHORIZED, None);
        let msg = Msg::WrongCurrentPassword;
        return Ok(refused(state, headers, signed, r, PasswordField::Current, msg).await);
    };
    state.throttle.succeed(&keys);
    state.store.set_password_hash(&user.id, &hash, now).await?;
    audit::emit(
        &Event::PasswordChanged {
            user_id: &user.id,
            by: "user",
        },
        now,
    );
    // Whoever else is signed in with the old password is signed out.
    for other in state.store.sessions_of_user(&user.id).await? {
        if other.sid == signed.session.sid {
            continue;
        }
        if let Some(ended) = state
            .store
            .delete_user_session(&user.id, &other.sid)
            .await?
        {
            audit::emit(
                &Event::SessionEnded {
                    user_id: &user.id,
                    sid: &ended.sid,
                },
                now,
            );
            session_end::notify_in_background(state, ended);
        }
    }
    Ok(Done::PasswordChanged.back())
}
