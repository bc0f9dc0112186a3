//! `GET /metrics` (the instruments are in `crate::metrics`) and the route
//! layer that counts and times every request.

use std::time::Instant;

use super::error::{AppError, DatabaseUnavailable};
use crate::{
    metrics::{HttpLabels, RouteLabels},
    state::AppState,
};
use axum::{
    extract::{MatchedPath, Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// Middleware (a route layer, so the matched route is known): counts and
/// times every request.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method()).to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let m = &state.metrics;
    if resp.extensions().get::<DatabaseUnavailable>().is_some() {
        m.count_database_unavailable();
    }
    m.http_requests
        .get_or_create(&HttpLabels {
            route: route.clone(),
            method,
            status: resp.status().as_u16(),
        })
        .inc();
    m.http_latency
        .get_or_create(&RouteLabels { route })
        .observe(start.elapsed().as_secs_f64());
    resp
}

/// The method as a metric label, from a closed set: any client may send
/// any extension method (RFC 9110 9.1) to a route, and each distinct label
/// would be a new series kept for good.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// `GET /metrics` on the main listener: needs `Authorization: Bearer
/// <metrics_token>` (RFC 6750 2.1); without a configured token the route
/// does not exist here (404, as any unknown path).
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = &state.settings.metrics_token else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({ "error": "not_found" })),
        )
            .into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match presented {
        Some(t) if token.matches(t) => scrape(&state),
        // RFC 6750 3.1: a request without credentials gets no error code.
        None => AppError::Bearer {
            code: None,
            description: "metrics need a bearer token".into(),
        }
        .into_response(),
        Some(_) => AppError::invalid_token("the metrics token is wrong").into_response(),
    }
}

/// `GET /metrics` on the `--metrics-listen` address: no token.
pub async fn metrics_open(State(state): State<AppState>) -> Response {
    scrape(&state)
}

/// Every instrument as OpenMetrics text; reads memory only.
fn scrape(state: &AppState) -> Response {
    let Ok(body) = crate::metrics::encode_all(state) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}
