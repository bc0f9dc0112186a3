//! The consent page (OIDC Core 3.1.2.4): the user approves the scopes a
//! client asks for. Consent is remembered per user, client and scope.

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use tera::Context;

use super::{
    authorize::{self, authorize_query, see_other, validate, AuthRequest},
    error::AppError,
    form::Params,
};
use crate::{session, state::AppState, views};

#[derive(Debug, Deserialize)]
pub struct ConsentQuery {
    #[serde(rename = "return")]
    return_to: Option<String>,
}

#[derive(Serialize)]
struct ScopeView {
    name: String,
    description: String,
}

fn describe(scope: &str) -> String {
    match scope {
        "openid" => "Sign you in with your Gatehouse account".into(),
        "profile" => "Your name and username".into(),
        "email" => "Your email address".into(),
        "offline_access" => "Stay signed in when you are not using it".into(),
        other => format!("Access the API permission \u{201c}{other}\u{201d}"),
    }
}

async fn request_from(
    state: &AppState,
    return_to: Option<&str>,
) -> Result<(String, AuthRequest), Response> {
    let Some(r) = return_to.filter(|r| r.len() <= 8192) else {
        return Err(AppError::page("This consent request is incomplete.").into_response());
    };
    let Some(q) = authorize_query(r) else {
        return Err(AppError::page("This consent request is incomplete.").into_response());
    };
    match validate(state, q.as_bytes()).await {
        Ok(req) => Ok((r.to_owned(), req)),
        Err(crate::authorization::Rejection::Page(m)) => {
            Err(AppError::page(m).into_page_response())
        }
        Err(crate::authorization::Rejection::Store(e)) => {
            Err(AppError::from(e).into_page_response())
        }
        Err(_) => {
            Err(AppError::page("This authorization request is no longer valid.").into_response())
        }
    }
}

/// `GET /consent`: asks the signed-in user to approve the client's scopes.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let return_to = raw
        .and_then(|r| serde_urlencoded::from_str::<ConsentQuery>(&r).ok())
        .and_then(|q| q.return_to);
    let (return_to, req) = match request_from(&state, return_to.as_deref()).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let user = match session::current(&state, &headers).await {
        Ok(Some((_, u))) => u,
        Ok(None) => {
            return see_other(&format!(
                "/login?return={}",
                authorize::urlencode(&return_to)
            ))
        }
        Err(e) => return e.into_page_response(),
    };
    let (csrf, cookie) = session::csrf_token(&state, &headers);
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
    ctx.insert("return_to", &return_to);
    ctx.insert("client_name", &req.checked.client.name);
    ctx.insert("client_host", &authorize::redirect_host(&req.redirect_uri));
    ctx.insert("username", &user.username);
    ctx.insert("scopes", &scopes);
    let mut r = views::page(StatusCode::OK, "consent.html", &ctx);
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// `POST /consent`: records the decision and continues the authorization
/// request, or returns `access_denied` to the client.
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if super::form::require_form(&headers).is_err() {
        return AppError::page("The consent form was not sent correctly.").into_response();
    }
    let Ok(p) = Params::parse(&body) else {
        return AppError::page("The consent form was not sent correctly.").into_response();
    };
    if let Err(e) = session::check_csrf(&state, &headers, p.get("csrf").unwrap_or("")) {
        return e.into_page_response();
    }
    let (return_to, req) = match request_from(&state, p.get("return")).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let user = match session::current(&state, &headers).await {
        Ok(Some((_, u))) => u,
        Ok(None) => {
            return see_other(&format!(
                "/login?return={}",
                authorize::urlencode(&return_to)
            ))
        }
        Err(e) => return e.into_page_response(),
    };
    match p.get("decision") {
        Some("allow") => {
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
            see_other(&return_to)
        }
        _ => authorize::user_denied(&state, &req),
    }
}
