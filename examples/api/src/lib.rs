//! An example API protected by Gatehouse access tokens.
//!
//! Every route takes [`BearerClaims`], so a request without a valid token
//! never reaches the handler (401). It accepts `Authorization: Bearer`
//! and, when the verifier has a DPoP base URL, `Authorization: DPoP` with
//! a `DPoP` proof (RFC 9449). The handler then checks the scope it
//! needs and answers 403 `insufficient_scope` (RFC 6750 §3.1) without it.

use std::sync::Arc;

use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gatehouse_verifier::{BearerClaims, Verifier};
use serde_json::json;

/// The scope `GET /orders` requires.
pub const ORDERS_READ: &str = "orders:read";

/// The API's routes; `verifier` checks every bearer token.
pub fn router(verifier: Arc<Verifier>) -> Router {
    Router::new()
        .route("/orders", get(list_orders))
        .with_state(verifier)
}

/// 403 with the RFC 6750 challenge naming the missing scope.
fn insufficient_scope(scope: &str) -> Response {
    let mut resp = (
        StatusCode::FORBIDDEN,
        Json(json!({ "error": "insufficient_scope" })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
    )) {
        resp.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    resp
}

async fn list_orders(BearerClaims(claims): BearerClaims) -> Response {
    if !claims.has_scope(ORDERS_READ) {
        return insufficient_scope(ORDERS_READ);
    }
    Json(json!({
        "caller": { "sub": claims.sub, "client_id": claims.client_id },
        "orders": [
            { "id": "ord-1001", "item": "teapot", "quantity": 1 },
            { "id": "ord-1002", "item": "cups", "quantity": 6 }
        ]
    }))
    .into_response()
}
