//! The device authorization endpoint (RFC 8628 3.1, 3.2): a device that
//! cannot show a browser (a TV, a command-line tool) asks for a device code
//! to poll the token endpoint with and a user code for its user to enter
//! at `/device` on another device. The client authenticates as at the
//! token endpoint (a public client sends its `client_id`: RFC 8628 3.1),
//! must be registered for the device grant, and asks for `scope` (and
//! `resource`, RFC 8707) with the same rules as at `/authorize`. Every
//! answer carries `Cache-Control: no-store` (`http::layers`).

use std::net::SocketAddr;

use axum::{
    body::Bytes,
    extract::{ConnectInfo, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde_json::json;

use super::{client_auth, error::AppError, form::Params};
use crate::{
    authorization::device::{self, LIFETIME},
    oauth::{AuthMethod, ErrorCode, GrantType},
    state::AppState,
};

/// `POST /device_authorization` (RFC 8628 3.1 the request; 3.2 the answer:
/// 200 with `device_code`, `user_code`, `verification_uri`,
/// `verification_uri_complete`, `expires_in`, `interval`; errors as at the
/// token endpoint, RFC 6749 5.2; 429 when a client or an address starts
/// too many).
pub async fn start(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&state, peer, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn answer(
    state: &AppState,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, AppError> {
    super::form::require_form(headers)?;
    let params = Params::parse(body)?;
    let client = client_auth::authenticate(state, headers, &params).await?;
    let client = &client.client;
    if !client.grant_types.contains(&GrantType::DeviceCode) {
        return Err(AppError::oauth(
            ErrorCode::UnauthorizedClient,
            format!("this client may not use the device authorization grant ({}); register it with that grant type", GrantType::DeviceCode),
        ));
    }
    // Each start is a row: counted (before anything else, in one step
    // each) per address with the authorization transactions started
    // there, per site, and, for a confidential client, per client. A
    // public client's id is no secret: a per-client budget would let
    // anyone use it up for all its users.
    let now = state.now();
    let ip = super::authorize::caller_ip(state, peer, headers);
    let limits = &state.device_limits;
    let ip_key = crate::client_ip::rate_key(ip);
    let counted = state
        .authorization_starts
        .take(&ip_key, now)
        .and_then(|()| {
            limits
                .starts_by_site
                .take(&crate::client_ip::wide_rate_key(ip), now)
        });
    if let Err(retry_after) = counted {
        tracing::warn!(ip = %ip_key, "too many device authorizations from one address");
        return Err(AppError::TooManyRequests {
            retry_after,
            description: "too many authorization requests from this network",
        });
    }
    let confidential = client.token_endpoint_auth_method != AuthMethod::None;
    if confidential {
        if let Err(retry_after) = limits.starts_by_client.take(&client.id, now) {
            tracing::warn!(client_id = %client.id, "too many device authorizations for one client");
            return Err(AppError::TooManyRequests {
                retry_after,
                description: "too many device authorizations for this client",
            });
        }
    }
    let (scope, resource) =
        device::check_scope(state, client, params.get("scope"), params.get("resource")).await?;
    let started = device::start(state, client, &scope, resource).await?;
    let shown = started.user_code.display();
    let verification_uri = format!("{}/device", state.settings.issuer);
    tracing::debug!(client_id = %client.id, "device authorization started");
    Ok(Json(json!({
        "device_code": started.device_code,
        "user_code": shown,
        "verification_uri_complete": format!("{verification_uri}?user_code={shown}"),
        "verification_uri": verification_uri,
        "expires_in": LIFETIME,
        "interval": device::INTERVAL,
    }))
    .into_response())
}
