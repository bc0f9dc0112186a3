//! Token introspection (RFC 7662). The caller must authenticate as a
//! confidential client. Access tokens Gatehouse can open (its own JWEs and
//! opaque tokens) and refresh tokens are answered; anything revoked,
//! expired, unknown or belonging to another client is `{"active":false}`.
//! A caller that accepts `application/token-introspection+jwt` gets the
//! answer as a signed JWT (RFC 9701).

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use gatehouse_keys::Alg;
use gatehouse_storage::model::Client;
use serde_json::{json, Map, Value};

use super::{client_auth, error::AppError, form::Params};
use crate::{oauth::AuthMethod, state::AppState};

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
    let mut r = if wants_jwt {
        let alg: Alg = caller
            .id_token_signed_response_alg
            .parse()
            .unwrap_or(Alg::RS256);
        let mut c = Map::new();
        c.insert("iss".into(), state.settings.issuer.clone().into());
        c.insert("aud".into(), caller.id.clone().into());
        c.insert("iat".into(), state.now().into());
        c.insert("token_introspection".into(), v);
        let jwt = state.keys.sign(alg, "token-introspection+jwt", &c)?;
        let mut r = jwt.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/token-introspection+jwt"),
        );
        r
    } else {
        Json(v).into_response()
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
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
        return Err(AppError::OAuth {
            code: crate::oauth::ErrorCode::InvalidClient,
            description: "introspection requires client authentication".into(),
            basic: false,
        });
    }
    let token = p.require("token")?;
    let inactive = json!({ "active": false });
    let hint = p.get("token_type_hint");

    if hint != Some("refresh_token") {
        if let Some(at) = state.read_access_token(token).await? {
            let mut out = at.claims.clone();
            out.insert("active".into(), true.into());
            out.insert("token_type".into(), "Bearer".into());
            return answer(&state, &headers, &caller.client, Value::Object(out));
        }
    }
    if token.len() <= 256 {
        if let Some(rt) = state.store.refresh_token(&state.hasher.hash(token)).await? {
            let live =
                rt.used_at.is_none() && rt.revoked_at.is_none() && rt.expires_at > state.now();
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
    if hint == Some("refresh_token") {
        if let Some(at) = state.read_access_token(token).await? {
            let mut out = at.claims.clone();
            out.insert("active".into(), true.into());
            out.insert("token_type".into(), "Bearer".into());
            return answer(&state, &headers, &caller.client, Value::Object(out));
        }
    }
    answer(&state, &headers, &caller.client, inactive)
}
