//! The authorization endpoint (RFC 6749 4.1.1; OIDC Core 3.1.2; RFC 7636;
//! RFC 8707; RFC 9207): HTTP around the checks in [`crate::authorization`].
//!
//! An unknown client or an unregistered redirect URI gets an error page and
//! never a redirect (RFC 6749 4.1.2.1). Every other error goes back to the
//! client's redirect URI with `error`, `state` and `iss`: at once for a
//! client an administrator registered, through a page with a link for one
//! that registered itself (RFC 9700 4.11.2).

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use gatehouse_storage::model::{AuthCode, Session, User};
use tera::Context;
use url::Url;

use super::{error::AppError, form::Params};
pub use crate::authorization::redirect_host;
use crate::{
    authorization::{
        self, AuthorizationRequest, Checked, Confirm, Received, Rejection, ResponseMode,
    },
    oauth::ErrorCode,
    secrets::random_token,
    session,
    state::AppState,
    views,
};

/// A checked authorization request with the parameters as received (to
/// rebuild the request after login or consent).
#[derive(Clone, Debug)]
pub struct AuthRequest {
    pub checked: Checked,
    pub params: Params,
}

impl std::ops::Deref for AuthRequest {
    type Target = AuthorizationRequest;
    fn deref(&self) -> &AuthorizationRequest {
        &self.checked.request
    }
}

/// Parses the request's parameters at the edge and runs the checks
/// (also used again after login and consent).
pub async fn validate(state: &AppState, raw: &[u8]) -> Result<AuthRequest, Rejection> {
    let (params, duplicate, too_many) = Params::parse_lenient(raw);
    let received = Received {
        params: params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        duplicate,
        too_many,
    };
    let checked = authorization::validate(state, &received).await?;
    Ok(AuthRequest { checked, params })
}

/// Sends the authorization response (success or error) to the client.
pub fn respond(
    state: &AppState,
    to: &str,
    mode: ResponseMode,
    mut pairs: Vec<(&'static str, String)>,
) -> Response {
    pairs.push(("iss", state.settings.issuer.clone()));
    match mode {
        ResponseMode::Query => {
            let Ok(mut url) = Url::parse(to) else {
                return AppError::page("The redirect_uri is not a valid URL.").into_response();
            };
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in &pairs {
                    q.append_pair(k, v);
                }
            }
            see_other(url.as_str())
        }
        ResponseMode::FormPost => {
            let mut ctx = Context::new();
            ctx.insert("action", to);
            ctx.insert("params", &pairs);
            views::page(StatusCode::OK, "form_post.html", &ctx)
        }
    }
}

/// A 303 See Other to `location`.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(header::LOCATION, v);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(_) => AppError::page("The redirect target is not a valid URL.").into_response(),
    }
}

fn reject(state: &AppState, r: Rejection) -> Response {
    match r {
        Rejection::Page(message) => AppError::page(message).into_response(),
        Rejection::Store(e) => match AppError::from(e) {
            AppError::Unavailable => super::error::unavailable_page(),
            e => e.into_response(),
        },
        Rejection::Redirect {
            to,
            mode,
            state: st,
            code,
            description,
            confirm,
        } => {
            let mut pairs = vec![
                ("error", code.as_str().to_owned()),
                ("error_description", description.clone()),
            ];
            if let Some(s) = st {
                pairs.push(("state", s));
            }
            match confirm {
                None => respond(state, &to, mode, pairs),
                Some(c) => confirm_page(state, &c, &to, mode, pairs, code, &description),
            }
        }
    }
}

/// The error shown on a page, with a link (or, for form_post, a button)
/// that delivers it to the client only if the user chooses to follow it.
fn confirm_page(
    state: &AppState,
    confirm: &Confirm,
    to: &str,
    mode: ResponseMode,
    mut pairs: Vec<(&'static str, String)>,
    code: ErrorCode,
    description: &str,
) -> Response {
    pairs.push(("iss", state.settings.issuer.clone()));
    let mut ctx = Context::new();
    ctx.insert("client_name", &confirm.client_name);
    ctx.insert("client_host", &redirect_host(to));
    ctx.insert("error", code.as_str());
    ctx.insert("description", description);
    match mode {
        ResponseMode::Query => {
            let Ok(mut url) = Url::parse(to) else {
                return AppError::page("The redirect_uri is not a valid URL.").into_response();
            };
            url.query_pairs_mut().extend_pairs(pairs.iter());
            ctx.insert("link", url.as_str());
        }
        ResponseMode::FormPost => {
            ctx.insert("action", to);
            ctx.insert("params", &pairs);
        }
    }
    views::page(StatusCode::BAD_REQUEST, "authorize_error.html", &ctx)
}

/// Sends an error Gatehouse found in a validated request back to its
/// client (through a page for a client that registered itself).
pub fn reject_to_client(
    state: &AppState,
    req: &AuthRequest,
    code: ErrorCode,
    description: &str,
) -> Response {
    reject(
        state,
        Rejection::Redirect {
            to: req.redirect_uri.clone(),
            mode: req.response_mode,
            state: req.state.clone(),
            code,
            description: description.to_owned(),
            confirm: Confirm::for_client(&req.checked.client),
        },
    )
}

/// Sends `access_denied` back at once: the user decided on the consent
/// page, which showed the client's name and redirect host.
pub fn user_denied(state: &AppState, req: &AuthRequest) -> Response {
    reject(
        state,
        Rejection::Redirect {
            to: req.redirect_uri.clone(),
            mode: req.response_mode,
            state: req.state.clone(),
            code: ErrorCode::AccessDenied,
            description: "the user denied the request".to_owned(),
            confirm: None,
        },
    )
}

/// The request as a local `/authorize?...` URL, with `prompt` rewritten so
/// that coming back after login or consent does not ask again.
pub fn return_url(req: &AuthRequest, drop_prompts: &[&str]) -> String {
    let mut p = req.params.clone();
    let kept: Vec<&str> = p
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty() && !drop_prompts.contains(v))
        .collect();
    p.set("prompt", Some(kept.join(" ")));
    format!("/authorize?{}", p.to_query())
}

/// `GET /authorize` (OIDC Core 3.1.2.1: query parameters).
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    handle(&state, &headers, q.unwrap_or_default().as_bytes()).await
}

/// `POST /authorize` (OIDC Core 3.1.2.1: form-serialized parameters).
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if super::form::require_form(&headers).is_err() {
        return AppError::page("The authorization request must be form-encoded.").into_response();
    }
    handle(&state, &headers, &body).await
}

async fn handle(state: &AppState, headers: &HeaderMap, raw: &[u8]) -> Response {
    let req = match validate(state, raw).await {
        Ok(r) => r,
        Err(r) => return reject(state, r),
    };
    match proceed(state, headers, &req).await {
        Ok(r) => r,
        Err(AppError::Unavailable) => reject_to_client(
            state,
            &req,
            ErrorCode::TemporarilyUnavailable,
            "try again shortly",
        ),
        Err(AppError::Internal(detail)) => {
            tracing::error!(%detail, "authorization failed");
            reject_to_client(state, &req, ErrorCode::ServerError, "internal error")
        }
        Err(e) => e.into_response(),
    }
}

async fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
) -> Result<Response, AppError> {
    let now = state.now();
    let current = session::current(state, headers).await?;
    let needs_login = match &current {
        None => true,
        Some((s, u)) => {
            req.prompt.login
                || req.prompt.select_account
                || (req.max_age.is_some_and(|m| now - s.auth_time > m)
                    && !super::sign_in::signed_in_for(state, req, s, now))
                || req.hint_sub.as_deref().is_some_and(|h| h != u.id)
        }
    };
    if needs_login {
        if req.prompt.none {
            return Ok(reject_to_client(
                state,
                req,
                ErrorCode::LoginRequired,
                "the user is not signed in",
            ));
        }
        let back = return_url(req, &["login", "select_account"]);
        let mut to = format!("/login?return={}", urlencode(&back));
        if let Some(h) = &req.login_hint {
            to.push_str(&format!("&login_hint={}", urlencode(h)));
        }
        return Ok(see_other(&to));
    }
    let Some((session, user)) = current else {
        return Err(AppError::Internal("session vanished".into()));
    };

    let granted = state
        .store
        .consented_scopes(&user.id, &req.client_id)
        .await?;
    let missing = req.scope.iter().any(|s| !granted.iter().any(|g| g == s));
    if req.prompt.consent || missing {
        if req.prompt.none {
            return Ok(reject_to_client(
                state,
                req,
                ErrorCode::ConsentRequired,
                "the user has not consented to these scopes",
            ));
        }
        return Ok(see_other(&format!(
            "/consent?return={}",
            urlencode(&return_url(req, &["consent"]))
        )));
    }
    issue_code(state, req, &session, &user).await
}

/// Issues the authorization code and sends it to the client.
pub async fn issue_code(
    state: &AppState,
    req: &AuthRequest,
    session: &Session,
    user: &User,
) -> Result<Response, AppError> {
    let now = state.now();
    let code = random_token();
    state
        .store
        .create_code(&AuthCode {
            code_hash: state.hasher.hash(&code),
            client_id: req.client_id.clone(),
            user_id: user.id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scope: req.scope.to_string(),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.as_ref().map(|c| c.as_str().to_owned()),
            resource: req.resource.clone(),
            auth_time: session.auth_time,
            sid: Some(session.sid.clone()),
            acr: session.acr.clone(),
            amr: session.amr.clone(),
            family_id: uuid::Uuid::new_v4().to_string(),
            created_at: now,
            expires_at: now + state.settings.lifetimes.code,
        })
        .await?;
    state
        .store
        .add_session_client(&session.sid, &req.client_id, now)
        .await?;
    let mut pairs = vec![("code", code)];
    if let Some(s) = &req.state {
        pairs.push(("state", s.clone()));
    }
    Ok(respond(state, &req.redirect_uri, req.response_mode, pairs))
}

/// Percent-encodes a query component.
pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Extracts the authorization request bytes from a local return URL, which
/// must be `/authorize?...` (no open redirect through login or consent).
pub fn authorize_query(return_to: &str) -> Option<&str> {
    return_to.strip_prefix("/authorize?")
}
