//! The device verification page (RFC 8628 3.3): `/device`, the
//! `verification_uri`. The user enters the code her device shows
//! (prefilled from `verification_uri_complete`, and still confirmed with a
//! button: RFC 8628 5.4); a right code starts an authorization transaction
//! for the device authorization, which goes through the same sign-in,
//! second factor and consent pages as `/authorize` (the consent page
//! always asks, shows the code and warns that the device is another one)
//! and ends here with the decision recorded (see
//! `authorization::device`).
//!
//! Entered codes count per address (IPv6 per /64), per site (IPv6 per
//! /48) and per browser (its session cookie, else its CSRF cookie), right
//! or wrong, before the look-up; beyond the limits every code is refused (429 with
//! `Retry-After`) until the minute is over, so guessing gains nothing.

use std::net::SocketAddr;

use axum::{
    body::Bytes,
    extract::{ConnectInfo, RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Extension,
};
use gatehouse_storage::model::{Session, User};
use tera::Context;

use super::{
    authorize::{self, transaction, Started},
    error::AppError,
    form::Params,
    session,
};
use crate::{
    authorization::{
        self,
        device::{self, DecideError, DeviceRequest, UserCode},
        Checked, Rejection, Transaction,
    },
    i18n::Msg,
    state::AppState,
    views,
};

/// `GET /device[?user_code=..]`: the form, prefilled with the code from
/// `verification_uri_complete`; nothing is looked up or decided.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let typed = authorize::query_param(q.as_deref(), "user_code")
        .filter(|c| c.len() <= 32)
        .unwrap_or_default();
    form(&state, &headers, StatusCode::OK, &typed, None)
}

/// `POST /device`: a code entered (CSRF-checked). A right one starts the
/// authorization; a wrong one shows the form again (400), the same for an
/// unknown, expired or already answered code.
pub async fn post(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if super::form::require_form(&headers).is_err() {
        return AppError::page(Msg::FormNotSent).into_response();
    }
    let Ok(p) = Params::parse(&body) else {
        return AppError::page(Msg::FormNotSent).into_response();
    };
    if let Err(e) = session::check_csrf(&state, &headers, p.get("csrf").unwrap_or("")) {
        return e.into_page_response();
    }
    let typed = p.get("user_code").unwrap_or("");
    let ip = authorize::caller_ip(&state, peer, &headers);
    // Every entry is counted before it is looked up (RFC 8628 5.1).
    let now = state.now();
    let limits = &state.device_limits;
    let ip_key = crate::client_ip::rate_key(ip);
    let counted = limits
        .entries_by_ip
        .take(&ip_key, now)
        .and_then(|()| {
            limits
                .entries_by_site
                .take(&crate::client_ip::wide_rate_key(ip), now)
        })
        .and_then(|()| {
            limits
                .entries_by_browser
                .take(&browser_key(&state, &headers), now)
        });
    if let Err(retry_after) = counted {
        tracing::info!(ip = %ip_key, "too many user codes entered");
        let mut r = form(
            &state,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            "",
            Some(Msg::DeviceTooManyCodes),
        );
        if let Ok(v) = header::HeaderValue::from_str(&retry_after.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let found = match UserCode::parse(typed) {
        Some(code) => match device::request_for(&state, &code).await {
            Ok(found) => found,
            Err(e) => return AppError::from(e).into_page_response(),
        },
        None => None,
    };
    let Some(request) = found else {
        let shown: String = typed.chars().take(32).collect();
        return form(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            &shown,
            Some(Msg::DeviceCodeWrong),
        );
    };
    let client = match state.registry.client(&request.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return AppError::page(Msg::ClientGone).into_response(),
        Err(e) => return AppError::from(e).into_page_response(),
    };
    match authorization::recheck(&state, &client, &request).await {
        Ok(()) => {}
        Err(Rejection::Redirect { description, .. }) => return refused(&description),
        Err(r) => return authorize::reject(&state, r),
    }
    let checked = Checked { request, client };
    authorize::advance(&state, &headers, &checked, Started::New(ip)).await
}

/// The key wrong codes count under for this browser: its session cookie,
/// else its CSRF cookie (which every POST here has), hashed.
fn browser_key(state: &AppState, headers: &HeaderMap) -> String {
    let cookie = session::read_cookie(state, headers, "session")
        .or_else(|| session::read_cookie(state, headers, "csrf"))
        .unwrap_or_default();
    state.hasher.hash(&format!("device-browser:{cookie}"))
}

/// The code form, with `error` if any.
fn form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    typed: &str,
    error: Option<Msg>,
) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    let mut ctx = Context::new();
    ctx.insert("csrf", &csrf);
    ctx.insert("user_code", typed);
    ctx.insert("error", &error.map(|m| m.text()));
    ctx.insert("outcome", &Option::<&str>::None);
    let mut r = views::page(status, "device.html", &ctx);
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// Ends `tx` with the user's decision on its device authorization
/// (`approved_by` the signed-in user, or denied) and says so on a page.
pub async fn finish(
    state: &AppState,
    tx: &Transaction,
    device: &DeviceRequest,
    approved_by: Option<(&Session, &User)>,
) -> Response {
    let approved = approved_by.is_some();
    match device::decide(state, tx, device, approved_by).await {
        Ok(()) => {
            if let Some((_, user)) = approved_by {
                tracing::info!(client_id = %tx.request.client_id, user_id = %user.id, "device authorization approved");
            } else {
                tracing::info!(client_id = %tx.request.client_id, "device authorization denied");
            }
            let mut ctx = Context::new();
            ctx.insert("csrf", "");
            ctx.insert("user_code", "");
            ctx.insert("error", &Option::<String>::None);
            ctx.insert("outcome", if approved { "approved" } else { "denied" });
            views::page(StatusCode::OK, "device.html", &ctx)
        }
        Err(DecideError::Gone) => AppError::page(Msg::DeviceGone).into_response(),
        Err(DecideError::Tx(e)) => transaction::page(e),
    }
}

/// An error for a device authorization's transaction: a page (there is no
/// redirect URI to send it to). The device keeps polling until the
/// authorization expires.
pub fn refused(description: &str) -> Response {
    refused_with(StatusCode::BAD_REQUEST, description)
}

/// [`refused`] with `status` (503 for a limit that ends within the
/// minute, said by `Retry-After`).
pub fn refused_with(status: StatusCode, description: &str) -> Response {
    let mut r = AppError::Page {
        status,
        message: Msg::DeviceRefused {
            reason: description.to_owned(),
        },
    }
    .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
    }
    r
}
