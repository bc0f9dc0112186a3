//! The passkey pages: signing in with a passkey and no username
//! (`purpose=signin`), a passkey as the second factor of a signed-in user
//! (`purpose=second`), and registering one from the account (`/account/passkeys`).
//!
//! Each ceremony is two form posts: `.../begin` starts it and renders the
//! page whose one script (allowed by its hash) calls WebAuthn and posts
//! the browser's answer to the finishing route. Every failure (an expired
//! or replayed ceremony, a credential for another RP or origin, a cloned
//! authenticator) is a page with what went wrong and an audit event, never
//! a 500 and never a session.

use axum::{
    body::Bytes,
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Extension,
};
use gatehouse_protocol::{Acr, Amr};
use std::net::{IpAddr, SocketAddr};
use tera::Context;

use super::{
    account::{posted_recently, Done},
    authorize::{see_other, transaction, urlencode},
    error::AppError,
    form::Params,
    session,
};
use crate::{
    audit::{self, Event},
    authorization::{decide::factors_of, Checked, Transaction},
    client_ip,
    i18n::Msg,
    passkeys::{Begun, PasskeyError, Used},
    state::AppState,
    views,
};

/// The fields of one passkey page.
struct PageText {
    title: Msg,
    lead: Msg,
    button: Msg,
    action: &'static str,
    mode: &'static str,
    purpose: &'static str,
}

/// JSON inside `<script type="application/json">`: nothing in it may close
/// the element (a username could hold `</script>`).
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn render(
    state: &AppState,
    headers: &HeaderMap,
    begun: &Begun,
    tx: Option<&str>,
    text: &PageText,
) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    let mut ctx = Context::new();
    ctx.insert("csrf", &csrf);
    ctx.insert("tx", &tx);
    ctx.insert("ceremony", &begun.ceremony);
    ctx.insert("options", &script_safe(&begun.options));
    ctx.insert("script", views::PASSKEY_SCRIPT);
    ctx.insert("title", &text.title.text());
    ctx.insert("lead", &text.lead.text());
    ctx.insert("button", &text.button.text());
    ctx.insert("action", text.action);
    ctx.insert("mode", text.mode);
    ctx.insert("purpose", text.purpose);
    let mut r = views::page(StatusCode::OK, "passkey.html", &ctx);
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

fn ip_of(
    state: &AppState,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = peer.map(|Extension(ConnectInfo(a))| a);
    client_ip::resolve(peer, headers, &state.settings.trusted_proxies)
}

/// A form post's fields, after the form and CSRF checks.
fn form(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Params, AppError> {
    let bad = || AppError::page(Msg::FormNotSent);
    super::form::require_form(headers).map_err(|_| bad())?;
    let p = Params::parse(body).map_err(|_| bad())?;
    session::check_csrf(state, headers, p.get("csrf").unwrap_or(""))?;
    Ok(p)
}

async fn load_tx(
    state: &AppState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<Option<(Transaction, Checked)>, Response> {
    match p.get("tx").filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(id) => transaction::load(state, headers, Some(id)).await.map(Some),
    }
}

/// The page for a failed ceremony, and its audit event.
fn failed(e: PasskeyError, user_id: Option<&str>, ip: Option<IpAddr>, now: i64) -> Response {
    let e = match e {
        PasskeyError::Store(se) => return AppError::from(se).into_page_response(),
        PasskeyError::Internal(detail) => {
            tracing::error!(%detail, "passkey ceremony failed");
            return AppError::Internal(detail).into_page_response();
        }
        other => other,
    };
    let (status, reason) = match &e {
        PasskeyError::Disabled => (StatusCode::NOT_FOUND, "disabled"),
        PasskeyError::Expired => (StatusCode::BAD_REQUEST, "expired"),
        PasskeyError::Malformed => (StatusCode::BAD_REQUEST, "malformed"),
        PasskeyError::UnknownCredential => (StatusCode::UNAUTHORIZED, "unknown_credential"),
        PasskeyError::CounterWentBack => (StatusCode::UNAUTHORIZED, "counter_went_back"),
        PasskeyError::Refused(_) => (StatusCode::UNAUTHORIZED, "refused"),
        PasskeyError::Duplicate => (StatusCode::CONFLICT, "duplicate"),
        PasskeyError::TooMany => (StatusCode::CONFLICT, "too_many"),
        PasskeyError::Store(_) | PasskeyError::Internal(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    };
    if let PasskeyError::Refused(detail) = &e {
        tracing::info!(user_id, %detail, "a passkey was not accepted");
    }
    if matches!(e, PasskeyError::CounterWentBack) {
        tracing::warn!(
            user_id,
            "a passkey's counter went backwards: possibly a cloned authenticator"
        );
    }
    audit::emit(
        &Event::PasskeyRefused {
            user_id,
            reason,
            ip,
        },
        now,
    );
    let message = match e {
        PasskeyError::Disabled => Msg::PasskeyDisabled,
        PasskeyError::Expired => Msg::PasskeyExpired,
        PasskeyError::Malformed => Msg::PasskeyMalformed,
        PasskeyError::UnknownCredential => Msg::PasskeyUnknown,
        PasskeyError::CounterWentBack => Msg::PasskeyCounter,
        PasskeyError::Refused(_) => Msg::PasskeyRefused,
        PasskeyError::Duplicate => Msg::PasskeyDuplicate,
        PasskeyError::TooMany => Msg::PasskeyTooMany {
            count: i64::try_from(crate::passkeys::MAX_PASSKEYS).unwrap_or(i64::MAX),
        },
        PasskeyError::Store(_) | PasskeyError::Internal(_) => Msg::ServerTitle,
    };
    AppError::Page { status, message }.into_page_response()
}

/// `POST /login/passkey/begin`: starts a sign-in with a passkey
/// (`purpose=signin`, no username) or a passkey second factor
/// (`purpose=second`, for the signed-in user).
pub async fn begin(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ip = ip_of(&state, peer, &headers);
    let p = match form(&state, &headers, &body) {
        Ok(p) => p,
        Err(e) => return e.into_page_response(),
    };
    let tx = match load_tx(&state, &headers, &p).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let tx_id = tx.as_ref().map(|(t, _)| t.id.clone());
    let now = state.now();
    if p.get("purpose") == Some("second") {
        let (s, user) = match session::current(&state, &headers).await {
            Ok(Some(c)) => c,
            Ok(None) => return see_other("/login"),
            Err(e) => return e.into_page_response(),
        };
        return match state.passkeys.begin_authentication(&state, &s, &user).await {
            Ok(Some(b)) => render(
                &state,
                &headers,
                &b,
                tx_id.as_deref(),
                &PageText {
                    title: Msg::PasskeySecondTitle,
                    lead: Msg::PasskeySecondLead,
                    button: Msg::PasskeyUse,
                    action: "/login/passkey",
                    mode: "get",
                    purpose: "second",
                },
            ),
            Ok(None) => AppError::page(Msg::NoPasskey).into_page_response(),
            Err(e) => failed(e, Some(&user.id), ip, now),
        };
    }
    // Anyone may start one: bounded per client IP like transactions.
    let key = format!("passkey:{}", crate::client_ip::rate_key(ip));
    if state.authorization_starts.blocked(&key, now).is_some() {
        return AppError::Page {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: Msg::TooManyPasskeyStarts,
        }
        .into_page_response();
    }
    state.authorization_starts.record(&key, now);
    if p.get("purpose") == Some("autofill") {
        return autofill(&state, ip, now).await;
    }
    match state.passkeys.begin_discovery(&state).await {
        Ok(b) => render(
            &state,
            &headers,
            &b,
            tx_id.as_deref(),
            &PageText {
                title: Msg::PasskeySignInTitle,
                lead: Msg::PasskeySignInLead,
                button: Msg::PasskeyUse,
                action: "/login/passkey",
                mode: "get",
                purpose: "signin",
            },
        ),
        Err(e) => failed(e, None, ip, now),
    }
}

/// The sign-in page's autofill (WebAuthn conditional mediation): the
/// ceremony and its options as JSON, for the page's script, which posts
/// the answer to `/login/passkey` like the passkey page does.
async fn autofill(state: &AppState, ip: Option<IpAddr>, now: i64) -> Response {
    match state.passkeys.begin_discovery(state).await {
        Ok(b) => {
            let options: serde_json::Value = serde_json::from_str(&b.options).unwrap_or_default();
            let body = serde_json::json!({ "ceremony": b.ceremony, "options": options });
            let mut r = (StatusCode::OK, axum::Json(body)).into_response();
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            r
        }
        Err(e) => failed(e, None, ip, now),
    }
}

/// `POST /login/passkey`: finishes a passkey sign-in or second factor.
pub async fn finish(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ip = ip_of(&state, peer, &headers);
    let p = match form(&state, &headers, &body) {
        Ok(p) => p,
        Err(e) => return e.into_page_response(),
    };
    let tx = match load_tx(&state, &headers, &p).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let ceremony = p.get("ceremony").unwrap_or("");
    let credential = p.get("credential").unwrap_or("");
    let now = state.now();
    let onward = match &tx {
        Some((t, _)) => format!("/authorize/continue?tx={}", urlencode(&t.id)),
        None => "/account".to_owned(),
    };
    if p.get("purpose") == Some("second") {
        let (s, user) = match session::current(&state, &headers).await {
            Ok(Some(c)) => c,
            Ok(None) => return see_other("/login"),
            Err(e) => return e.into_page_response(),
        };
        let used = match state
            .passkeys
            .finish_authentication(&state, &s, &user, ceremony, credential)
            .await
        {
            Ok(u) => u,
            Err(e) => return failed(e, Some(&user.id), ip, now),
        };
        emit_used(&user.id, &used, ip, now);
        return match raise_with_passkey(&state, &s, used.user_verified).await {
            Ok(Some((_, cookie))) => transaction::with_cookie(see_other(&onward), cookie),
            Ok(None) => see_other("/login"),
            Err(e) => e.into_page_response(),
        };
    }
    let (user, used) = match state
        .passkeys
        .finish_discovery(&state, ceremony, credential)
        .await
    {
        Ok(x) => x,
        Err(e) => return failed(e, None, ip, now),
    };
    // A passkey with user verification is two factors in one.
    let mut amr: Vec<String> = used.amr().iter().map(|a| a.as_str().to_owned()).collect();
    if used.user_verified {
        amr.push(Amr::Mfa.as_str().to_owned());
    }
    let level: Acr = used.level();
    let (session, cookie) = match session::start(&state, &headers, &user, amr, level, ip).await {
        Ok(x) => x,
        Err(e) => return e.into_page_response(),
    };
    emit_used(&user.id, &used, ip, now);
    audit::emit(
        &Event::SignInSucceeded {
            user_id: &user.id,
            ip,
            known_device: false,
        },
        now,
    );
    let r = match &tx {
        None => see_other("/account"),
        Some((t, _)) => match t.record_sign_in(&state, &session).await {
            Ok(()) => see_other(&onward),
            Err(e) => transaction::page(e),
        },
    };
    transaction::with_cookie(r, cookie)
}

/// Raises `s` after a passkey used with or without user verification:
/// its methods and `mfa` join the session's, and its level rises to the
/// passkey's, under a new id (`session::raise`). `None` when the session
/// ended meanwhile.
async fn raise_with_passkey(
    state: &AppState,
    s: &gatehouse_storage::model::Session,
    user_verified: bool,
) -> Result<Option<(gatehouse_storage::model::Session, Option<HeaderValue>)>, AppError> {
    let used = Used {
        credential_id: String::new(),
        user_verified,
    };
    let mut amr = s.amr.clone();
    for m in used.amr().into_iter().chain([Amr::Mfa]) {
        if !amr.iter().any(|a| a == m.as_str()) {
            amr.push(m.as_str().to_owned());
        }
    }
    let level = crate::authorization::levels::session_level(s).max(used.level());
    session::raise(state, s, level, &amr).await
}

fn emit_used(user_id: &str, used: &Used, ip: Option<IpAddr>, now: i64) {
    audit::emit(
        &Event::PasskeyUsed {
            user_id,
            credential_id: &used.credential_id,
            user_verified: used.user_verified,
            ip,
        },
        now,
    );
}

/// `POST /account/passkeys/begin`: starts registering a passkey.
pub async fn register_begin(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ip = ip_of(&state, peer, &headers);
    let (session, user) = match posted_recently(&state, &headers, &body).await {
        Ok((s, _)) => (s.session, s.user),
        Err(r) => return r,
    };
    match state
        .passkeys
        .begin_registration(&state, &session, &user)
        .await
    {
        Ok(b) => render(
            &state,
            &headers,
            &b,
            None,
            &PageText {
                title: Msg::PasskeyRegisterTitle,
                lead: Msg::PasskeyRegisterLead,
                button: Msg::PasskeyCreate,
                action: "/account/passkeys",
                mode: "create",
                purpose: "register",
            },
        ),
        Err(e) => failed(e, Some(&user.id), ip, state.now()),
    }
}

/// `POST /account/passkeys`: finishes registering a passkey.
pub async fn register_finish(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ip = ip_of(&state, peer, &headers);
    let (session, user, p) = match posted_recently(&state, &headers, &body).await {
        Ok((s, p)) => (s.session, s.user, p),
        Err(r) => return r,
    };
    let now = state.now();
    let before = match factors_of(&state, &user).await {
        Ok(f) => f,
        Err(e) => return AppError::from(e).into_page_response(),
    };
    match state
        .passkeys
        .finish_registration(
            &state,
            &session,
            &user,
            p.get("ceremony").unwrap_or(""),
            p.get("credential").unwrap_or(""),
            p.get("name").unwrap_or(""),
        )
        .await
    {
        Ok(record) => {
            audit::emit(
                &Event::PasskeyRegistered {
                    user_id: &user.id,
                    credential_id: &record.credential_id,
                },
                now,
            );
            if !before.any() {
                if let Err(e) = crate::factors::first_factor_added(&state, &user).await {
                    return AppError::from(e).into_page_response();
                }
            }
            // The session stays at its level: a credential made in a
            // session proves nothing about who signed it in (whoever stole
            // the password could add one). The account page asks for the
            // new passkey before anything else.
            Done::PasskeyAdded.back()
        }
        Err(e) => failed(e, Some(&user.id), ip, now),
    }
}

/// `POST /account/passkeys/remove`: removes one of the user's passkeys.
pub async fn remove(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (user, p) = match posted_recently(&state, &headers, &body).await {
        Ok((s, p)) => (s.user, p),
        Err(r) => return r,
    };
    let id = p.get("credential_id").unwrap_or("");
    match state.store.delete_passkey(&user.id, id).await {
        Ok(true) => {
            audit::emit(
                &Event::PasskeyRemoved {
                    user_id: &user.id,
                    credential_id: id,
                },
                state.now(),
            );
            Done::PasskeyRemoved.back()
        }
        Ok(false) => AppError::page(Msg::NoSuchPasskey).into_page_response(),
        Err(e) => AppError::from(e).into_page_response(),
    }
}
