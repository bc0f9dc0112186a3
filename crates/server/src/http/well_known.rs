//! Discovery (OIDC Discovery 1.0 section 4; RFC 8414 section 3) and the JWK
//! Set (RFC 7517 section 5), served from bytes rendered ahead of time.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use crate::state::AppState;

fn cached(headers: &HeaderMap, body: Arc<[u8]>, etag: &str, max_age: i64) -> Response {
    let cache = format!("public, max-age={max_age}");
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
        .unwrap_or(false);
    let mut r = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            axum::body::Bytes::from_owner(body),
        )
            .into_response()
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

/// `GET /.well-known/openid-configuration` (OIDC Discovery 1.0 section 4) and
/// `GET /.well-known/oauth-authorization-server` (RFC 8414 section 3).
pub async fn discovery(State(state): State<AppState>, headers: HeaderMap) -> Response {
    cached(
        &headers,
        state.discovery.body.clone(),
        &state.discovery.etag,
        3600,
    )
}

/// `GET /jwks` (the `jwks_uri`, RFC 7517 section 5): published keys in every
/// state but revoked. `max-age` is shorter than the pre-publication window,
/// so relying parties see a next key before it signs.
pub async fn jwks(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let snap = state.keys.snapshot();
    cached(
        &headers,
        snap.jwks(),
        snap.jwks_etag(),
        state.keys.policy().jwks_max_age,
    )
}
