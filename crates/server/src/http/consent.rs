//! The consent page (OIDC Core 3.1.2.4): the user approves the scopes a
//! client asks for, in an authorization transaction of this browser
//! (`tx`). Consent is remembered per user, client and scope; approving
//! marks the transaction and continues it, denying ends it with
//! `access_denied` (for a device authorization, RFC 8628: records the
//! denial the device's next poll gets).

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use tera::Context;

use super::{
    authorize::{self, see_other, transaction, tx_param, urlencode},
    error::AppError,
    form::Params,
};
use gatehouse_storage::model::{Session, User};

use crate::{
    authorization::{decide::needed, levels::Needed, redirect_host, Checked},
    http::session,
    i18n::Msg,
    state::AppState,
    views,
};

#[derive(Serialize)]
struct ScopeView {
    name: String,
    description: String,
}

/// What a scope lets a client do, in words (the consent and account pages).
pub(crate) fn describe(scope: &str) -> String {
    match scope {
        "openid" => Msg::ScopeOpenid,
        "profile" => Msg::ScopeProfile,
        "email" => Msg::ScopeEmail,
        "offline_access" => Msg::ScopeOfflineAccess,
        other => Msg::ScopeApi {
            scope: other.to_owned(),
        },
    }
    .text()
}

fn to_login(tx_id: &str) -> Response {
    see_other(&format!("/login?tx={}", urlencode(tx_id)))
}

/// `None` when the session is at the level the request needs; else back
/// to the transaction, which asks for the step-up (or ends unmet). A
/// consent given below the level would let a later `prompt=none` issue a
/// code without the user's second factor ever approving it.
async fn below_level(
    state: &AppState,
    checked: &Checked,
    tx_id: &str,
    session: &Session,
    user: &User,
) -> Option<Response> {
    match needed(state, checked, session, user).await {
        Ok(Needed::Enough) => None,
        Ok(Needed::StepUp(_) | Needed::Unmet) => Some(see_other(&format!(
            "/authorize/continue?tx={}",
            urlencode(tx_id)
        ))),
        Err(e) => Some(AppError::from(e).into_page_response()),
    }
}

/// `GET /consent?tx=..`: asks the signed-in user to approve the client's scopes.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let id = tx_param(raw.as_deref());
    let (tx, checked) = match transaction::load(&state, &headers, id.as_deref()).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (session, user) = match session::current(&state, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return to_login(&tx.id),
        Err(e) => return e.into_page_response(),
    };
    if let Some(r) = below_level(&state, &checked, &tx.id, &session, &user).await {
        return r;
    }
    let (csrf, cookie) = session::csrf_token(&state, &headers);
    let req = &checked.request;
    let scopes: Vec<ScopeView> = req
        .scope
        .iter()
        .map(|s| ScopeView {
            name: s.to_owned(),
            description: describe(s),
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("csrf", &csrf);
    ctx.insert("tx", &tx.id);
    ctx.insert("client_name", &checked.client.name);
    ctx.insert("client_host", &redirect_host(&req.redirect_uri));
    // A device authorization (RFC 8628 5.4): the code, to compare with the
    // device's screen, and the warning that the device is another one.
    ctx.insert(
        "device_user_code",
        &req.device.as_ref().map(|d| d.user_code.as_str()),
    );
    ctx.insert("username", &user.username);
    ctx.insert("scopes", &scopes);
    let mut r = views::page(StatusCode::OK, "consent.html", &ctx);
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// `POST /consent`: records the decision; on approval sends the browser on
/// to continue the transaction, on refusal ends it and returns
/// `access_denied` to the client.
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if super::form::require_form(&headers).is_err() {
        return AppError::page(Msg::ConsentFormNotSent).into_response();
    }
    let Ok(p) = Params::parse(&body) else {
        return AppError::page(Msg::ConsentFormNotSent).into_response();
    };
    if let Err(e) = session::check_csrf(&state, &headers, p.get("csrf").unwrap_or("")) {
        return e.into_page_response();
    }
    let (tx, checked) = match transaction::load(&state, &headers, p.get("tx")).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (session, user) = match session::current(&state, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return to_login(&tx.id),
        Err(e) => return e.into_page_response(),
    };
    let req = &checked.request;
    if p.get("decision") != Some("allow") {
        if let Some(device) = &req.device {
            return super::device_verification::finish(&state, &tx, device, None).await;
        }
        return match tx.consume(&state, None).await {
            Ok(()) => authorize::user_denied(&state, &checked),
            Err(e) => transaction::page(e),
        };
    }
    if let Some(r) = below_level(&state, &checked, &tx.id, &session, &user).await {
        return r;
    }
    let mut granted = match state.store.consented_scopes(&user.id, &req.client_id).await {
        Ok(g) => g,
        Err(e) => return AppError::from(e).into_page_response(),
    };
    for s in req.scope.iter() {
        if !granted.iter().any(|g| g == s) {
            granted.push(s.to_owned());
        }
    }
    granted.sort();
    if let Err(e) = state
        .store
        .save_consent(&user.id, &req.client_id, &granted, state.now())
        .await
    {
        return AppError::from(e).into_page_response();
    }
    crate::audit::emit(
        &crate::audit::Event::ConsentGranted {
            user_id: &user.id,
            client_id: &req.client_id,
            scope: &granted.join(" "),
        },
        state.now(),
    );
    match tx.record_consent(&state, &session).await {
        Ok(()) => see_other(&format!("/authorize/continue?tx={}", urlencode(&tx.id))),
        Err(e) => transaction::page(e),
    }
}
