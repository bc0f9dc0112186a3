//! How the authorization endpoint answers: the response (query or
//! form_post, always with `iss`: RFC 9207), and errors sent back to the
//! client, at once or through a page with a link (RFC 9700 4.11.2).

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use tera::Context;
use url::Url;

use crate::{
    authorization::{redirect_host, Checked, Confirm, Rejection, ResponseMode},
    http::error::{self, AppError},
    i18n::Msg,
    oauth::ErrorCode,
    state::AppState,
    views,
};

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
                return AppError::page(Msg::RedirectUriInvalid).into_response();
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
        Err(_) => AppError::page(Msg::RedirectTargetInvalid).into_response(),
    }
}

pub fn reject(state: &AppState, r: Rejection) -> Response {
    match r {
        Rejection::Page(message) => AppError::page(message).into_response(),
        Rejection::Store(e) => match AppError::from(e) {
            AppError::Unavailable => error::unavailable_page(),
            e => e.into_response(),
        },
        Rejection::Internal(detail) => AppError::Internal(detail).into_response(),
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
                return AppError::page(Msg::RedirectUriInvalid).into_response();
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
    checked: &Checked,
    code: ErrorCode,
    description: &str,
) -> Response {
    if checked.request.device.is_some() {
        let status = match code {
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        return crate::http::device_verification::refused_with(status, description);
    }
    let req = &checked.request;
    reject(
        state,
        Rejection::Redirect {
            to: req.redirect_uri.clone(),
            mode: req.response_mode,
            state: req.state.clone(),
            code,
            description: description.to_owned(),
            confirm: Confirm::for_client(&checked.client),
        },
    )
}

/// Sends `access_denied` back at once: the user decided on the consent
/// page, which showed the client's name and redirect host.
pub fn user_denied(state: &AppState, checked: &Checked) -> Response {
    let req = &checked.request;
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
