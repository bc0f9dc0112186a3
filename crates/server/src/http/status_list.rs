//! `GET /statuslists/{id}`: a status list token (IETF
//! draft-ietf-oauth-status-list, section 8 "Status List Request"; the token
//! format is section 5.1). Resource servers fetch it to learn which access
//! tokens were revoked, without a call per token.

use axum::{
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use super::error::AppError;
use crate::state::AppState;

const MEDIA_TYPE: &str = "application/statuslist+jwt";

/// Does the `Accept` header (if any) allow the status list JWT?
fn accepts_jwt(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return true;
    };
    let Ok(accept) = accept.to_str() else {
        return false;
    };
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim();
        // RFC 9110 12.4.2: q=0 means "not acceptable".
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !refused
            && (media.eq_ignore_ascii_case(MEDIA_TYPE)
                || media.eq_ignore_ascii_case("application/*")
                || media == "*/*")
    })
}

/// `GET /statuslists/{id}` (draft-ietf-oauth-status-list section 8.1):
/// `200` with `Content-Type: application/statuslist+jwt` and
/// `Cache-Control: public, max-age=<ttl>`; `404` for a list that does not
/// exist; `406` when `Accept` rules out the JWT form (section 8.2 also
/// defines a CWT form, which Gatehouse does not offer).
pub async fn status_list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    // Canonical decimal only: "007" or "+7" would alias list 7 in caches.
    let Some(list_id) = id
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0 && n.to_string() == id)
    else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    if !accepts_jwt(&headers) {
        return Ok(StatusCode::NOT_ACCEPTABLE.into_response());
    }
    let Some(jwt) = state.status_lists.list_token(list_id).await? else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let cache = format!("public, max-age={}", state.settings.lifetimes.status_list);
    let mut r = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE))],
        jwt,
    )
        .into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    // Section 8.1: the list is public; browsers' resource servers may fetch it.
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(r)
}
