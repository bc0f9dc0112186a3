//! The pushed authorization request endpoint (RFC 9126): the client
//! authenticates as at the token endpoint (a public client identifies
//! itself with `client_id`, RFC 9126 2), sends the whole authorization
//! request (plain, or as a signed request object), and gets back a
//! `request_uri` to send the browser to `/authorize` with. The request is
//! checked here with the same checks as at `/authorize`
//! (`authorization::validate`), so every error reaches the client as JSON
//! before a browser is involved. Every answer carries
//! `Cache-Control: no-store` (`http::layers`).

use std::net::SocketAddr;

use axum::{
    body::Bytes,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde_json::json;

use super::{client_auth, error::AppError, form::Params};
use crate::{
    authorization::{self, pushed, Received, Rejection, Via},
    dpop::ProofRequest,
    i18n::Msg,
    oauth::{AuthMethod, ErrorCode},
    state::AppState,
};

/// The parameters of client authentication (RFC 6749 2.3.1, RFC 7523 2.2):
/// not part of the authorization request.
const CLIENT_AUTH_PARAMS: [&str; 3] =
    ["client_secret", "client_assertion", "client_assertion_type"];

/// `POST /par` (RFC 9126 2.1 the request, 2.2 the answer: 201 Created with
/// `request_uri` and `expires_in`; 2.3 errors: those of RFC 6749 4.1.2.1 as
/// JSON 400, `invalid_client` 401, 405 for another method, 413 beyond 64
/// KiB, 429 when too many).
pub async fn push(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = answer(state.clone(), peer, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    super::dpop::with_nonce(&state, r)
}

async fn answer(
    state: AppState,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    super::form::require_form(&headers)?;
    let params = Params::parse(&body)?;
    let client = client_auth::authenticate(&state, &headers, &params).await?;
    if params.get("request_uri").is_some() {
        return Err(AppError::invalid_request(
            "request_uri must not be sent to the pushed authorization request endpoint",
        ));
    }
    if client.client.token_endpoint_auth_method == AuthMethod::None {
        // Anyone may push as a public client: each push is a row, so
        // pushes count with the authorization transactions started from
        // the same address.
        let ip = super::authorize::caller_ip(&state, peer, &headers);
        let key = crate::client_ip::rate_key(ip);
        let now = state.now();
        if let Some(retry_after) = state.authorization_starts.blocked(&key, now) {
            tracing::warn!(ip = %key, "too many pushed authorization requests");
            return Err(AppError::TooManyRequests {
                retry_after,
                description: "too many authorization requests from this network",
            });
        }
        state.authorization_starts.record(&key, now);
    }
    let mut fields: std::collections::HashMap<String, String> = params
        .iter()
        .filter(|(k, _)| !CLIENT_AUTH_PARAMS.contains(k))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    fields.insert("client_id".to_owned(), client.client.id.to_string());
    let received = Received {
        params: fields,
        via: Via::Pushed,
        ..Received::default()
    };
    // A DPoP proof here binds the code to its key (RFC 9449 10.1).
    let proof = super::dpop::verified(
        &state,
        &headers,
        ProofRequest {
            method: "POST",
            path: "/par",
            access_token: None,
        },
    )?;
    let mut checked = authorization::validate(&state, &received)
        .await
        .map_err(refused)?;
    if let Some(proof) = proof {
        if checked
            .request
            .dpop_jkt
            .as_ref()
            .is_some_and(|named| *named != proof.jkt)
        {
            return Err(AppError::oauth(
                ErrorCode::InvalidDpopProof,
                "the DPoP proof's key is not the one dpop_jkt names",
            ));
        }
        proof.record(&state).await?;
        checked.request.dpop_jkt = Some(proof.jkt);
    }
    let pushed = pushed::push(&state, &checked).await?;
    tracing::debug!(client_id = %client.client.id, "authorization request pushed");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "request_uri": pushed.request_uri,
            "expires_in": pushed.expires_in,
        })),
    )
        .into_response())
}

/// A refused request as the JSON error the client gets (RFC 9126 2.3):
/// what `/authorize` would show on a page or send to the redirect URI.
fn refused(r: Rejection) -> AppError {
    match r {
        Rejection::Page(Msg::RequestObjectRefused { reason }) => {
            AppError::oauth(ErrorCode::InvalidRequestObject, reason)
        }
        // In English, as every error_description.
        Rejection::Page(message) => AppError::invalid_request(message.to_string()),
        Rejection::Store(e) => e.into(),
        Rejection::Internal(detail) => AppError::Internal(detail),
        Rejection::Redirect {
            code, description, ..
        } => AppError::oauth(code, description),
    }
}
