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

/// The bearer token of a request: header or form body, never both (RFC 6750 2).
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
                .map_err(|_| AppError::invalid_token("malformed Authorization header"))?;
            match v.split_once(' ') {
                Some((scheme, t))
                    if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() =>
                {
                    Some(t.trim().to_owned())
                }
                _ => {
                    return Err(AppError::Bearer {
                        code: Some(ErrorCode::InvalidRequest),
                        description: "use the Bearer scheme".into(),
                    })
                }
            }
        }
    };
    let from_body = if method == Method::POST && !body.is_empty() {
        super::form::require_form(headers)?;
        Params::parse(body)?.get("access_token").map(str::to_owned)
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(AppError::invalid_request(
            "send the access token in one place only",
        )),
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
