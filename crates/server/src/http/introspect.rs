//! Token introspection (RFC 7662). The caller must authenticate as a
//! confidential client. Access tokens Gatehouse can open (its own JWEs and
//! opaque tokens) and refresh tokens are answered; anything revoked,
//! expired or unknown is `{"active":false}`.
//!
//! Only an entitled caller learns about a token (RFC 7662 2.2, 4): the
//! client it was issued to, or a client linked to a resource server whose
//! audience the token carries (`gatehouse resources update AUD --client
//! ID`); refresh tokens only to their own client. Anyone else gets
//! `{"active":false}`, exactly as for an unknown token. A caller given more
//! than [`MAX_INACTIVE_PER_MINUTE`] inactive answers in a minute gets 429
//! until the minute is over (no guessing oracle).
//! A caller that accepts `application/token-introspection+jwt` gets the
//! answer as a signed JWT (RFC 9701).

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use gatehouse_storage::model::Client;
use serde::Serialize;
use serde_json::{json, Value};

use super::{client_auth, error::AppError, form::Params};
use crate::{
    oauth::{AuthMethod, ClientId},
    state::AppState,
    tokens::{claims::AccessTokenClaims, AccessClaims},
};

/// Inactive answers one calling client may get per minute.
pub const MAX_INACTIVE_PER_MINUTE: u32 = 600;

/// Whether `caller` may learn about this access token: it was issued to
/// the caller, or its audience is an API the caller is linked to.
async fn entitled(state: &AppState, at: &AccessClaims, caller: &str) -> Result<bool, AppError> {
    if at.claims.client_id == caller {
        return Ok(true);
    }
    let resources = state.registry.resources().await?;
    Ok(resources
        .get(&at.claims.aud)
        .is_some_and(|r| r.record.clients.iter().any(|c| c == caller)))
}

/// The claims of a JWT introspection answer (RFC 9701 5).
#[derive(Serialize)]
struct IntrospectionJwt<'a> {
    iss: &'a str,
    aud: &'a ClientId,
    iat: i64,
    token_introspection: Value,
}

/// An active access token's introspection answer (RFC 7662 2.2): the
/// token's own claims beside `active` and `token_type`.
#[derive(Serialize)]
struct ActiveAccessToken {
    active: bool,
    token_type: &'static str,
    #[serde(flatten)]
    claims: AccessTokenClaims,
}

/// Answers as JSON, or as a signed JWT when the caller asked for
/// `application/token-introspection+jwt` (RFC 9701 4).
fn answer(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Client,
    v: Value,
) -> Result<Response, AppError> {
    let wants_jwt = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| {
            a.split(',').any(|m| {
                m.split(';').next().is_some_and(|m| {
                    m.trim()
                        .eq_ignore_ascii_case("application/token-introspection+jwt")
                })
            })
        });
    Ok(if wants_jwt {
        let alg = caller.id_token_signed_response_alg;
        let c = IntrospectionJwt {
            iss: &state.settings.issuer,
            aud: &caller.id,
            iat: state.now(),
            token_introspection: v,
        };
        let jwt = state.keys.sign(alg, "token-introspection+jwt", &c)?;
        let mut r = jwt.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/token-introspection+jwt"),
        );
        r
    } else {
        Json(v).into_response()
    })
}

/// `POST /introspect` (RFC 7662 2.1).
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    super::form::require_form(&headers)?;
    let p = Params::parse(&body)?;
    let caller = client_auth::authenticate(&state, &headers, &p).await?;
    if caller.method == AuthMethod::None {
        return Err(crate::error::OAuthError::invalid_client(
            false,
            "introspection requires client authentication",
        )
        .into());
    }
    let now = state.now();
    let caller_id = caller.client.id.as_str();
    if let Some(secs) = state.introspection_misses.blocked(caller_id, now) {
        return Err(AppError::Throttled(secs));
    }
    let token = p.require("token")?;
    let hint = p.get("token_type_hint");

    // RFC 7662 2.1: the hint only changes the order of the look-ups.
    let access_first = hint != Some("refresh_token");
    if access_first {
        if let Some(v) = access_answer(&state, token, caller_id).await? {
            return answer(&state, &headers, &caller.client, v);
        }
    }
    if token.len() <= 256 {
        if let Some(rt) = state.store.refresh_token(&state.hasher.hash(token)).await? {
            let live = rt.used_at.is_none() && rt.revoked_at.is_none() && rt.expires_at > now;
            if live && rt.client_id == caller.client.id {
                return answer(
                    &state,
                    &headers,
                    &caller.client,
                    json!({
                        "active": true,
                        "token_type": "refresh_token",
                        "scope": rt.scope,
                        "client_id": rt.client_id,
                        "sub": rt.user_id,
                        "iss": state.settings.issuer,
                        "exp": rt.expires_at,
                        "iat": rt.created_at,
                        "auth_time": rt.auth_time,
                    }),
                );
            }
        }
    }
    if !access_first {
        if let Some(v) = access_answer(&state, token, caller_id).await? {
            return answer(&state, &headers, &caller.client, v);
        }
    }
    state.introspection_misses.record(caller_id, now);
    answer(&state, &headers, &caller.client, json!({ "active": false }))
}

/// The active answer for an access token the caller is entitled to see.
async fn access_answer(
    state: &AppState,
    token: &str,
    caller: &str,
) -> Result<Option<Value>, AppError> {
    let Some(at) = state.tokens.read_access_token(token).await? else {
        return Ok(None);
    };
    if !entitled(state, &at, caller).await? {
        return Ok(None);
    }
    // A bound token: `token_type` DPoP and its `cnf` (RFC 9449 6.2).
    let out = ActiveAccessToken {
        active: true,
        token_type: crate::tokens::token_type(at.claims.cnf.as_ref().map(|c| &c.jkt)),
        claims: at.claims,
    };
    Ok(Some(serde_json::to_value(out).map_err(|e| {
        AppError::Internal(format!("introspection answer: {e}"))
    })?))
}
