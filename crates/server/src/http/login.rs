//! The login page: a server-rendered form, a CSRF token, argon2id behind it
//! (at most one check per core at a time, `password::Gate`), throttling
//! that strangers cannot turn into a lockout (`throttle`, `device`), and a
//! new server-side session and device cookie on success.
//!
//! Reached with `tx` (an authorization transaction of this browser), it
//! names the client and, after the sign-in, records it on the transaction
//! and continues it (`/authorize/continue`); reached without, it signs in
//! and shows the account page.

use axum::{
    body::Bytes,
    extract::{ConnectInfo, RawQuery, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::Response,
    Extension,
};
use std::net::{IpAddr, SocketAddr};

use tera::Context;

use super::{
    authorize::{see_other, transaction, tx_param, urlencode},
    error::AppError,
    form::Params,
};
use crate::{
    audit::{self, Event, SignInFailure},
    authorization::{redirect_host, Checked, Transaction},
    client_ip,
    http::{device, session},
    i18n::Msg,
    password,
    state::AppState,
    views,
};

/// The transaction a sign-in is for, with its client.
type ForTx = Option<(Transaction, Checked)>;

/// The `login_hint` of `GET /login`'s query.
fn login_hint_param(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "login_hint")
        .map(|(_, v)| v.into_owned())
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    tx: &ForTx,
    username: &str,
    error: Option<&Msg>,
) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    let mut ctx = Context::new();
    ctx.insert("csrf", &csrf);
    ctx.insert("tx", &tx.as_ref().map(|(t, _)| t.id.as_str()));
    ctx.insert("username", username);
    ctx.insert("error", &error.map(Msg::text));
    // The client's name, and where the user will go (RFC 7591 5).
    ctx.insert(
        "client_name",
        &tx.as_ref().map(|(_, c)| c.client.name.as_str()),
    );
    ctx.insert(
        "client_host",
        &tx.as_ref()
            .map(|(_, c)| redirect_host(&c.request.redirect_uri)),
    );
    ctx.insert("passkeys", &state.passkeys.enabled());
    ctx.insert("autofill_script", crate::views::AUTOFILL_SCRIPT);
    // No password check could start: the page says so itself.
    ctx.insert("busy", &(status == StatusCode::SERVICE_UNAVAILABLE));
    let mut r = views::page(status, "login.html", &ctx);
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// `GET /login`: the sign-in form.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let tx = match tx_param(raw.as_deref()) {
        None => None,
        Some(id) => match transaction::load(&state, &headers, Some(&id)).await {
            Ok(x) => Some(x),
            Err(r) => return r,
        },
    };
    let hint = login_hint_param(raw.as_deref())
        .or_else(|| tx.as_ref().and_then(|(_, c)| c.request.login_hint.clone()))
        .unwrap_or_default();
    let hint: String = hint.chars().take(256).collect();
    render(&state, &headers, StatusCode::OK, &tx, &hint, None).await
}

/// `POST /login`: checks the credentials, starts a session, and continues
/// the authorization transaction, if any (303).
pub async fn post(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(a))| a);
    let ip = client_ip::resolve(peer, &headers, &state.settings.trusted_proxies);
    match login(&state, &headers, &body, ip).await {
        Ok(r) => r,
        Err(e) => e.into_page_response(),
    }
}

/// The sign-in form again, with a message, a status and `Retry-After`.
async fn again(
    state: &AppState,
    headers: &HeaderMap,
    (status, retry_after): (StatusCode, Option<i64>),
    tx: &ForTx,
    typed: &str,
    message: &Msg,
) -> Response {
    let shown: String = typed.chars().take(256).collect();
    let mut r = render(state, headers, status, tx, &shown, Some(message)).await;
    if let Some(v) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn too_many(secs: i64) -> Msg {
    Msg::TooManyAttempts { count: secs }
}

async fn login(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    ip: Option<IpAddr>,
) -> Result<Response, AppError> {
    super::form::require_form(headers).map_err(|_| AppError::page(Msg::SignInFormNotSent))?;
    let p = Params::parse(body).map_err(|_| AppError::page(Msg::SignInFormNotSent))?;
    session::check_csrf(state, headers, p.get("csrf").unwrap_or(""))?;
    let tx = match p.get("tx").filter(|t| !t.is_empty()) {
        None => None,
        Some(id) => match transaction::load(state, headers, Some(id)).await {
            Ok(x) => Some(x),
            Err(r) => return Ok(r),
        },
    };
    let typed = p.get("username").unwrap_or("");
    let username = crate::username::normalize(typed);
    let password = p.get("password").unwrap_or("").to_owned();
    let now = state.now();
    // A browser with a valid device cookie of this account is throttled on
    // its own; any other on (account, IP) and on the account's limit.
    let device = device::valid_for(state, headers, &username, now);
    let keys = match &device {
        Some(nonce) => state.throttle.device_login(nonce),
        None => state.throttle.untrusted_login(&username, ip),
    };
    // Held off already: answer before queueing for a password check.
    if let Some(secs) = state.throttle.wait(&keys, now) {
        let r = (StatusCode::TOO_MANY_REQUESTS, Some(secs));
        return Ok(again(state, headers, r, &tx, typed, &too_many(secs)).await);
    }
    let Ok(permit) = password::Gate::global().acquire().await else {
        tracing::warn!("password checks are saturated; sign-in turned away");
        let r = (StatusCode::SERVICE_UNAVAILABLE, Some(1));
        return Ok(again(state, headers, r, &tx, typed, &Msg::Busy).await);
    };
    // Check and count in one step: concurrent guesses cannot all pass.
    let now = state.now();
    let attempt = match state.throttle.attempt(&keys, now) {
        Ok(a) => a,
        Err(secs) => {
            let r = (StatusCode::TOO_MANY_REQUESTS, Some(secs));
            return Ok(again(state, headers, r, &tx, typed, &too_many(secs)).await);
        }
    };

    // Unknown user, disabled user, wrong and empty password all take one
    // argon2 evaluation and get the same answer: no user enumeration.
    let user = if username.is_empty() || username.len() > 256 {
        Ok(None)
    } else {
        state.store.user_by_username(&username).await
    };
    let user = user.inspect_err(|_| state.throttle.refund(&keys))?;
    let phc = user
        .as_ref()
        .filter(|u| !u.disabled)
        .map(|u| u.password_hash.clone());
    let ok = permit.verify(password, phc).await;
    let known_device = device.is_some();
    let user = match user {
        Some(u) if ok => u,
        other => {
            let reason = match &other {
                None => SignInFailure::UnknownAccount,
                Some(u) if u.disabled => SignInFailure::Disabled,
                Some(_) => SignInFailure::WrongPassword,
            };
            let user_id = other.as_ref().map(|u| u.id.as_str());
            tracing::info!("login failed");
            audit::emit(
                &Event::SignInFailed {
                    user_id,
                    ip,
                    reason,
                    known_device,
                },
                now,
            );
            if let Some((scope, retry_after)) = attempt.engages {
                audit::emit(
                    &Event::ThrottleEngaged {
                        scope: scope.as_str(),
                        retry_after,
                        user_id,
                        client_id: None,
                        ip,
                    },
                    now,
                );
            }
            state
                .metrics
                .logins
                .get_or_create(&crate::metrics::OutcomeLabels {
                    outcome: "failure".into(),
                })
                .inc();
            let r = (StatusCode::UNAUTHORIZED, None);
            let msg = Msg::IncorrectCredentials;
            return Ok(again(state, headers, r, &tx, typed, &msg).await);
        }
    };
    state.throttle.succeed(&keys);
    state
        .metrics
        .logins
        .get_or_create(&crate::metrics::OutcomeLabels {
            outcome: "success".into(),
        })
        .inc();
    let amr = vec![gatehouse_protocol::Amr::Pwd.as_str().to_owned()];
    let acr = gatehouse_protocol::Acr::Pwd;
    let (session, cookie) = session::start(state, headers, &user, amr, acr, ip).await?;
    tracing::info!(sub = %user.id, "login succeeded");
    audit::emit(
        &Event::SignInSucceeded {
            user_id: &user.id,
            ip,
            known_device,
        },
        now,
    );
    let mut r = match &tx {
        // The account page asks for the second factor if the account has one.
        None => see_other("/account"),
        Some((t, _)) => match t.record_sign_in(state, &session).await {
            Ok(()) => see_other(&format!("/authorize/continue?tx={}", urlencode(&t.id))),
            Err(e) => transaction::page(e),
        },
    };
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    if let Some(c) = device::issue(state, &username, now) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(r)
}

/// `GET /`: the account page (which sends a browser not signed in to
/// the sign-in page).
pub async fn home() -> Response {
    see_other("/account")
}
