//! The token endpoint (RFC 6749 3.2, 4.1.3, 4.4.2, 6; OIDC Core 3.1.3).
//! Authenticates the client, then hands over to one file per grant type in
//! `grants/`. Every answer carries `Cache-Control: no-store` (RFC 6749 5.1).

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};

use super::{client_auth, error::AppError, form::Params};
use crate::{
    grants,
    oauth::{ErrorCode, GrantType},
    state::AppState,
};

/// `POST /token`.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    super::form::require_form(&headers)?;
    let params = Params::parse(&body)?;
    let grant = params.require("grant_type")?;
    let grant: Option<GrantType> = grant.parse().ok();
    let client = client_auth::authenticate(&state, &headers, &params).await?;
    let Some(grant) = grant else {
        return Err(AppError::oauth(
            ErrorCode::UnsupportedGrantType,
            "grant_type is not supported",
        ));
    };
    if !client
        .client
        .grant_types
        .iter()
        .any(|g| g == grant.as_str())
    {
        return Err(AppError::oauth(
            ErrorCode::UnauthorizedClient,
            "this client may not use this grant type",
        ));
    }
    let response = match grant {
        GrantType::AuthorizationCode => {
            grants::authorization_code::exchange(&state, &client, &params).await?
        }
        GrantType::RefreshToken => {
            grants::refresh_token::exchange(&state, &client, &params).await?
        }
        GrantType::ClientCredentials => {
            grants::client_credentials::exchange(&state, &client, &params).await?
        }
    };
    let format = if response.access_token.contains('.') {
        "jwe"
    } else {
        "opaque"
    };
    state
        .metrics
        .tokens_issued
        .get_or_create(&crate::metrics::TokenLabels {
            grant: grant.as_str().to_owned(),
            format: format.to_owned(),
        })
        .inc();
    let mut r = Json(response).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(r)
}
