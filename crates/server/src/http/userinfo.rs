//! The UserInfo endpoint (OIDC Core 5.3) with bearer tokens per RFC 6750:
//! in the Authorization header, or in a form body (RFC 6750 2.2).

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    Json,
};

use super::{error::AppError, form::Params};
use crate::{
    oauth::ErrorCode,
    state::AppState,
    tokens::claims::{UserClaims, UserinfoClaims},
};

/// A malformed request (RFC 6750 3.1 `invalid_request`: 400 with a Bearer
/// challenge).
fn malformed(description: impl Into<std::borrow::Cow<'static, str>>) -> AppError {
    AppError::Bearer {
        code: Some(ErrorCode::InvalidRequest),
        description: description.into(),
    }
}

/// The bearer token of a request: header or form body, never both (RFC 6750
/// 2); `None` without either. Another scheme than Bearer is answered like
/// no credentials, with a challenge and no error code (RFC 6750 3.1: "an
/// unsupported authentication method"); a malformed request is
/// `invalid_request`. With a Bearer
/// header a POST body that is not a form is ignored (OIDC Core 5.3.1 needs
/// only the header; a token in the body must be a form, RFC 6750 2.2).
pub fn bearer(
    headers: &HeaderMap,
    method: &Method,
    body: &[u8],
) -> Result<Option<String>, AppError> {
    let from_header = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| malformed("malformed Authorization header"))?;
            let (scheme, token) = v.split_once(' ').unwrap_or((v, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AppError::Bearer {
                    code: None,
                    description: "use the Bearer scheme".into(),
                });
            }
            let token = token.trim();
            if token.is_empty() {
                return Err(malformed("the Bearer token is empty"));
            }
            Some(token.to_owned())
        }
    };
    let from_body = if method == Method::POST && !body.is_empty() {
        match super::form::require_form(headers) {
            Ok(()) => Params::parse(body)
                .map_err(|e| match e {
                    AppError::OAuth(e) => malformed(e.into_parts().1),
                    other => other,
                })?
                .get("access_token")
                .map(str::to_owned),
            Err(_) if from_header.is_some() => None,
            Err(_) => {
                return Err(malformed(
                    "an access token in the body must be application/x-www-form-urlencoded",
                ))
            }
        }
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(malformed("send the access token in one place only")),
        (a, b) => Ok(a.or(b)),
    }
}

/// `GET /userinfo` and `POST /userinfo`.
pub async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let Some(token) = bearer(&headers, &method, &body)? else {
        return Err(AppError::Bearer {
            code: None,
            description: "".into(),
        });
    };
    let Some(at) = state.tokens.read_access_token(&token).await? else {
        return Err(AppError::invalid_token(
            "the access token is invalid, expired or revoked",
        ));
    };
    if at.claims.aud != state.settings.endpoint("/userinfo") {
        return Err(AppError::invalid_token(
            "the access token is not for the userinfo endpoint",
        ));
    }
    if !at.scope.contains("openid") {
        let mut r = StatusCode::FORBIDDEN.into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", scope=\"openid\"",
            ),
        );
        return Ok(r);
    }
    // From a recent read while the database is away (`recent_reads`).
    let user = match state.user_recently(&at.claims.sub).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(AppError::invalid_token("the user is no longer active")),
    };
    Ok(Json(UserinfoClaims {
        user: UserClaims::of(&user, &at.scope),
        sub: user.id.clone(),
    })
    .into_response())
}
