//! Token revocation (RFC 7009). Refresh tokens revoke their whole family;
//! access tokens go on the revocation list until they expire. Unknown
//! tokens still get 200 (RFC 7009 2.2).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{client_auth, error::AppError, form::Params};
use crate::state::AppState;

/// `POST /revoke` (RFC 7009 2.1).
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    super::form::require_form(&headers)?;
    let p = Params::parse(&body)?;
    let caller = client_auth::authenticate(&state, &headers, &p).await?;
    let token = p.require("token")?;
    if token.len() <= 256 {
        if let Some(rt) = state.store.refresh_token(&state.hasher.hash(token)).await? {
            if rt.client_id == caller.client.id {
                state.tokens.revoke_grant(&rt.family_id).await?;
            }
            return Ok(ok());
        }
    }
    if let Some(at) = state.tokens.read_access_token(token).await? {
        if at.claims.client_id == caller.client.id {
            state.tokens.revoke_access_token(&at).await?;
        }
    }
    Ok(ok())
}

fn ok() -> Response {
    StatusCode::OK.into_response()
}
