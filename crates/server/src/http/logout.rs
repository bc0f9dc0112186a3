//! RP-Initiated Logout 1.0 (`end_session_endpoint`). A valid
//! `id_token_hint` for the signed-in user logs out at once; otherwise the
//! user confirms on a page. The hint must be an ID token of this issuer
//! (not any JWS it signed) and, when `client_id` is given, name it in its
//! `aud`. The browser is sent to
//! `post_logout_redirect_uri` only when it is registered for the client
//! exactly; a tampered hint is refused without any redirect.

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::Response,
};
use tera::Context;
use url::Url;

use super::{authorize::see_other, error::AppError, form::Params};
use gatehouse_storage::model::Client;

use crate::{
    http::session,
    i18n::{self, Msg, UiLocales},
    id_token_hint::{self, HintError},
    state::AppState,
    views,
};

struct LogoutRequest {
    hint_sub: Option<String>,
    client_name: Option<String>,
    redirect: Option<String>,
}

async fn validate(state: &AppState, p: &Params) -> Result<LogoutRequest, AppError> {
    // The pages of this logout speak the RP's `ui_locales` (section 2).
    if let Some(ui) = p.get("ui_locales") {
        i18n::prefer(&UiLocales::parse(ui));
    }
    let hint = match p.get("id_token_hint") {
        None => None,
        Some(t) => Some(id_token_hint::read(state, t).map_err(|e| {
            AppError::page(match e {
                HintError::Signature => Msg::LogoutHintSignature,
                HintError::NotAnIdToken => Msg::LogoutHintNotIdToken,
                HintError::OtherIssuer => Msg::LogoutHintOtherIssuer,
                HintError::Incomplete => Msg::LogoutHintIncomplete,
            })
        })?),
    };
    // The client is the one named, which must be an audience of the hint;
    // without client_id, the hint's only audience.
    let client_id = match (p.get("client_id"), &hint) {
        (Some(c), Some(h)) if !h.aud.iter().any(|a| a == c) => {
            return Err(AppError::page(Msg::LogoutClientNotAudience))
        }
        (Some(c), _) => Some(c.to_owned()),
        (None, Some(h)) if h.aud.len() == 1 => h.aud.first().cloned(),
        (None, _) => None,
    };
    let hint_sub = hint.map(|h| h.sub);
    // A client this release cannot read (settings a newer release wrote)
    // still lets the user sign out: no redirect, the signed-out page.
    let client = match &client_id {
        Some(id) => match state.registry.client(id).await {
            Ok(c) => c,
            Err(e) if e.is_unavailable() => return Err(e.into()),
            Err(e) => {
                tracing::error!(client_id = %id, error = %e, "logout without redirect: client unreadable");
                None
            }
        },
        None => None,
    };
    // RP-Initiated Logout 1.0 section 2: without an ID token confirming
    // the request, a self-registered client's URI is nobody's word (an
    // open redirector otherwise); the signed-out page is shown instead.
    let confirmed = |c: &Client| hint_sub.is_some() || !c.dynamically_registered();
    let redirect = match (p.get("post_logout_redirect_uri"), &client) {
        (Some(uri), Some(c))
            if confirmed(c) && c.post_logout_redirect_uris.iter().any(|r| r == uri) =>
        {
            let mut u = Url::parse(uri).map_err(|_| AppError::page(Msg::LogoutRedirectInvalid))?;
            if let Some(s) = p.get("state") {
                u.query_pairs_mut().append_pair("state", s);
            }
            Some(u.to_string())
        }
        _ => None,
    };
    Ok(LogoutRequest {
        hint_sub,
        client_name: client.map(|c| c.name.clone()),
        redirect,
    })
}

async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    req: &LogoutRequest,
) -> Result<Response, AppError> {
    let (ended, cookie) = session::end(state, headers).await?;
    if let Some(s) = ended {
        crate::session_end::notify_in_background(state, s);
    }
    let mut r = match &req.redirect {
        Some(to) => see_other(to),
        None => {
            let mut ctx = Context::new();
            ctx.insert("done", &true);
            views::page(StatusCode::OK, "logout.html", &ctx)
        }
    };
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(r)
}

/// `GET /logout` (RP-Initiated Logout 1.0 section 2).
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    initiate(&state, &headers, q.unwrap_or_default()).await
}

/// Logs out at once when a valid hint names the signed-in user (or nobody
/// is signed in); otherwise asks for confirmation.
async fn initiate(state: &AppState, headers: &HeaderMap, raw: String) -> Response {
    let run = async {
        let p = Params::parse(raw.as_bytes()).map_err(|_| AppError::page(Msg::LogoutMalformed))?;
        let req = validate(state, &p).await?;
        let current = session::current(state, headers).await?;
        let hint_matches = match (&req.hint_sub, &current) {
            (Some(h), Some((_, u))) => *h == u.id,
            (Some(_), None) => true,
            _ => false,
        };
        if hint_matches || current.is_none() {
            return finish(state, headers, &req).await;
        }
        let (csrf, cookie) = session::csrf_token(state, headers);
        let mut ctx = Context::new();
        ctx.insert("done", &false);
        ctx.insert("csrf", &csrf);
        ctx.insert("return_to", &raw);
        ctx.insert("client_name", &req.client_name);
        let mut r = views::page(StatusCode::OK, "logout.html", &ctx);
        if let Some(c) = cookie {
            r.headers_mut().append(header::SET_COOKIE, c);
        }
        Ok::<Response, AppError>(r)
    };
    run.await.unwrap_or_else(AppError::into_page_response)
}

/// `POST /logout`: the confirmation form (carrying the original request in
/// `return`), or an RP posting the logout parameters directly.
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        super::form::require_form(&headers).map_err(|_| AppError::page(Msg::LogoutFormNotSent))?;
        let form = Params::parse(&body).map_err(|_| AppError::page(Msg::LogoutFormNotSent))?;
        if form.get("csrf").is_none() {
            // An RP posting the parameters (RP-Initiated Logout 1.0 section 2): same as GET.
            return Ok(initiate(
                &state,
                &headers,
                String::from_utf8_lossy(&body).into_owned(),
            )
            .await);
        }
        session::check_csrf(&state, &headers, form.get("csrf").unwrap_or(""))?;
        let original = Params::parse(form.get("return").unwrap_or("").as_bytes())
            .map_err(|_| AppError::page(Msg::LogoutMalformed))?;
        let req = validate(&state, &original).await?;
        if form.get("decision") == Some("logout") {
            finish(&state, &headers, &req).await
        } else {
            Ok(see_other("/"))
        }
    };
    run.await.unwrap_or_else(AppError::into_page_response)
}
