//! Dynamic client registration (RFC 7591) and its management protocol
//! (RFC 7592), protected by initial access tokens that
//! `gatehouse registration-token create` prints.
//!
//! Policy: a registration gets at most what its initial access token
//! allows (`registration-token create --scope ... --grant-type ...`;
//! without them the code flow with refresh tokens and the OIDC scopes).
//! Omitted `grant_types` mean authorization_code and refresh_token, as far
//! as the policy allows them; an omitted `scope` means every API scope of
//! the policy. The policy stays with the client: an update (PUT) cannot go
//! beyond it either.
//!
//! Secret rotation: an update (PUT) that carries `"rotate_client_secret":
//! true` is answered with a new `client_secret`; the old one stops working
//! at once (its hash, and for client_secret_jwt its sealed copy, are
//! replaced). Without it the secret stays. A `client_secret` in an update
//! must equal the current one (RFC 7592 2.2).

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use gatehouse_storage::model::{Client, RegistrationPolicy};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::error::AppError;
use crate::{
    audit::{self, Event},
    clients::{build, check_policy, new_secret, revise, ClientSpec, SpecError},
    oauth::{ErrorCode, GrantType},
    secrets::random_token,
    state::AppState,
};

/// Client metadata (RFC 7591 2; OIDC Registration 2). Unknown members are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Metadata {
    client_id: Option<String>,
    client_name: Option<String>,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    grant_types: Vec<String>,
    response_types: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    scope: Option<String>,
    id_token_signed_response_alg: Option<String>,
    jwks: Option<Value>,
    jwks_uri: Option<String>,
    backchannel_logout_uri: Option<String>,
    token_endpoint_auth_signing_alg: Option<String>,
    /// Gatehouse extension: PKCE on every authorization request.
    require_pkce: Option<bool>,
    /// Gatehouse extension: also accept the token endpoint URL as a client
    /// assertion's `aud` (weaker; for libraries that send it).
    legacy_assertion_audience: bool,
    /// RFC 9449 5.2: every access token must be DPoP-bound.
    dpop_bound_access_tokens: bool,
    /// RFC 9126 6: authorization requests only through `/par`.
    require_pushed_authorization_requests: bool,
    /// RFC 7592 2.2: if present in an update, must be the current secret.
    client_secret: Option<String>,
    /// Gatehouse extension for updates: issue a new client secret.
    rotate_client_secret: bool,
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_owned())
}

fn metadata_error(e: SpecError) -> AppError {
    match e {
        SpecError::RedirectUri(d) => AppError::oauth(ErrorCode::InvalidRedirectUri, d),
        SpecError::Metadata(d) => AppError::oauth(ErrorCode::InvalidClientMetadata, d),
        SpecError::Internal(d) => AppError::Internal(d),
    }
}

/// The client's ID token algorithm must be one the operator publishes
/// keys for (`signing_algs`), or its ID tokens could not be signed.
fn published_alg(state: &AppState, c: &Client) -> Result<(), AppError> {
    crate::config::check_signing_alg(
        &state.settings.rotation.signing_algs,
        "id_token_signed_response_alg",
        c.id_token_signed_response_alg,
    )
    .map_err(|d| AppError::oauth(ErrorCode::InvalidClientMetadata, d))
}

fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Metadata, AppError> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json_type {
        return Err(AppError::oauth(
            ErrorCode::InvalidClientMetadata,
            "the body must be application/json",
        ));
    }
    serde_json::from_slice(body).map_err(|_| {
        AppError::oauth(
            ErrorCode::InvalidClientMetadata,
            "the body is not valid client metadata JSON",
        )
    })
}

/// The spec a registrant asks for, with the policy's defaults where the
/// metadata is silent (RFC 7591 2: the server chooses defaults).
fn spec(m: Metadata, policy: &RegistrationPolicy) -> Result<ClientSpec, AppError> {
    if !m.response_types.is_empty() && m.response_types != ["code"] {
        return Err(AppError::oauth(
            ErrorCode::InvalidClientMetadata,
            "only the response type code is supported",
        ));
    }
    let grant_types = if m.grant_types.is_empty() {
        [GrantType::AuthorizationCode, GrantType::RefreshToken]
            .into_iter()
            .filter(|g| policy.grant_types.contains(g))
            .map(|g| g.as_str().to_owned())
            .collect()
    } else {
        m.grant_types
    };
    Ok(ClientSpec {
        name: m.client_name.unwrap_or_else(|| "Unnamed client".into()),
        redirect_uris: m.redirect_uris,
        post_logout_redirect_uris: m.post_logout_redirect_uris,
        grant_types,
        auth_method: m.token_endpoint_auth_method,
        scopes: m
            .scope
            .map(|s| {
                s.split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_else(|| policy.scopes.clone()),
        id_token_signing_alg: m.id_token_signed_response_alg,
        jwks: m.jwks.map(|v| v.to_string()),
        jwks_uri: m.jwks_uri,
        backchannel_logout_uri: m.backchannel_logout_uri,
        access_token_ttl: None,
        token_endpoint_auth_signing_alg: m.token_endpoint_auth_signing_alg,
        require_pkce: m.require_pkce.unwrap_or(false),
        legacy_assertion_audience: m.legacy_assertion_audience,
        dpop_bound_access_tokens: m.dpop_bound_access_tokens,
        require_pushed_authorization_requests: m.require_pushed_authorization_requests,
    })
}

fn describe(state: &AppState, c: &Client) -> serde_json::Map<String, Value> {
    let mut o = serde_json::Map::new();
    o.insert("client_id".into(), c.id.as_str().into());
    o.insert("client_id_issued_at".into(), c.created_at.into());
    o.insert("client_name".into(), c.name.clone().into());
    o.insert("redirect_uris".into(), json!(c.redirect_uris));
    o.insert(
        "post_logout_redirect_uris".into(),
        json!(c.post_logout_redirect_uris),
    );
    o.insert("grant_types".into(), json!(c.grant_types));
    o.insert("response_types".into(), json!(c.response_types));
    o.insert(
        "token_endpoint_auth_method".into(),
        c.token_endpoint_auth_method.as_str().into(),
    );
    o.insert(
        "id_token_signed_response_alg".into(),
        c.id_token_signed_response_alg.as_str().into(),
    );
    if !c.scopes.is_empty() {
        o.insert("scope".into(), c.scopes.join(" ").into());
    }
    if let Some(u) = &c.backchannel_logout_uri {
        o.insert("backchannel_logout_uri".into(), u.clone().into());
    }
    if let Some(a) = &c.token_endpoint_auth_signing_alg {
        o.insert("token_endpoint_auth_signing_alg".into(), a.clone().into());
    }
    o.insert("require_pkce".into(), c.require_pkce.into());
    o.insert(
        "dpop_bound_access_tokens".into(),
        c.dpop_bound_access_tokens.into(),
    );
    o.insert(
        "require_pushed_authorization_requests".into(),
        c.require_pushed_authorization_requests.into(),
    );
    // RFC 7591 3.2.1: the response carries every registered metadata value.
    if let Some(j) = c
        .jwks
        .as_deref()
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
    {
        o.insert("jwks".into(), j);
    }
    if let Some(u) = &c.jwks_uri {
        o.insert("jwks_uri".into(), u.clone().into());
    }
    if c.legacy_assertion_audience {
        o.insert("legacy_assertion_audience".into(), true.into());
    }
    o.insert(
        "registration_client_uri".into(),
        state
            .settings
            .endpoint(&format!("/register/{}", c.id))
            .into(),
    );
    o
}

fn created(body: Value, status: StatusCode) -> Response {
    (status, Json(body)).into_response()
}

/// `POST /register` (RFC 7591 3).
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let Some(token) = bearer(&headers) else {
        return Err(AppError::invalid_token(
            "an initial access token is required",
        ));
    };
    let token_hash = state.hasher.hash(&token);
    if token.len() > 256
        || !state
            .store
            .spend_registration_token(&token_hash, state.now())
            .await?
    {
        return Err(AppError::invalid_token(
            "the initial access token is invalid, expired or used up",
        ));
    }
    let policy = state
        .store
        .registration_token_policy(&token_hash)
        .await?
        .ok_or_else(|| AppError::Internal("a spent registration token vanished".into()))?;
    // A client_secret in the request is ignored: the server issues it.
    let spec = spec(parse(&headers, &body)?, &policy)?;
    let (mut client, secret) = build(
        spec,
        &state.hasher,
        &state.sealer,
        state.now(),
        &state.settings.outbound,
    )
    .map_err(metadata_error)?;
    check_policy(&client, &policy, None).map_err(metadata_error)?;
    published_alg(&state, &client)?;
    let rat = random_token();
    client.registration_token_hash = Some(state.hasher.hash(&rat));
    client.registration_policy = Some(policy);
    state.store.create_client(&client).await?;
    audit::emit(
        &Event::ClientRegistered {
            client_id: &client.id,
        },
        state.now(),
    );
    let mut o = describe(&state, &client);
    if let Some(s) = secret {
        o.insert("client_secret".into(), s.into());
        o.insert("client_secret_expires_at".into(), 0.into());
    }
    o.insert("registration_access_token".into(), rat.into());
    Ok(created(Value::Object(o), StatusCode::CREATED))
}

async fn authorized(state: &AppState, headers: &HeaderMap, id: &str) -> Result<Client, AppError> {
    let deny = || AppError::invalid_token("the registration access token is invalid");
    let token = bearer(headers).ok_or_else(deny)?;
    let client = state.store.client(id).await?.ok_or_else(deny)?;
    let presented = state.hasher.hash(&token);
    let ok = client
        .registration_token_hash
        .as_deref()
        .is_some_and(|h| bool::from(h.as_bytes().ct_eq(presented.as_bytes())));
    if ok {
        Ok(client)
    } else {
        Err(deny())
    }
}

/// `GET /register/{client_id}` (RFC 7592 2.1).
pub async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let c = authorized(&state, &headers, &id).await?;
    Ok(created(Value::Object(describe(&state, &c)), StatusCode::OK))
}

/// `PUT /register/{client_id}` (RFC 7592 2.2): replaces the metadata; the
/// client id and registration access token stay, and so does the secret
/// unless `rotate_client_secret` asks for a new one.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    let old = authorized(&state, &headers, &id).await?;
    let mut m = parse(&headers, &body)?;
    if m.client_id.as_deref() != Some(id.as_str()) {
        return Err(AppError::oauth(
            ErrorCode::InvalidClientMetadata,
            "client_id must be present and match",
        ));
    }
    if let Some(presented) = m.client_secret.take() {
        let current = old
            .secret_hash
            .as_deref()
            .is_some_and(|h| state.hasher.matches(&presented, h));
        if !current {
            return Err(AppError::oauth(
                ErrorCode::InvalidClientMetadata,
                "client_secret is not the current secret; a client cannot choose its own",
            ));
        }
    }
    let rotate = std::mem::take(&mut m.rotate_client_secret);
    // Registered before policies were kept: nothing beyond the default.
    let policy = old.registration_policy.clone().unwrap_or_default();
    let mut new = revise(
        &old,
        spec(m, &policy)?,
        state.now(),
        &state.settings.outbound,
    )
    .map_err(metadata_error)?;
    // A client may make itself stricter, never looser: what it (or the
    // operator, `clients update`) turned on stays on through its updates.
    new.require_pushed_authorization_requests |= old.require_pushed_authorization_requests;
    new.dpop_bound_access_tokens |= old.dpop_bound_access_tokens;
    new.require_pkce |= old.require_pkce;
    check_policy(&new, &policy, Some(&old)).map_err(metadata_error)?;
    published_alg(&state, &new)?;
    let method = old.token_endpoint_auth_method;
    let fresh = if rotate {
        if !method.uses_secret() {
            return Err(AppError::oauth(
                ErrorCode::InvalidClientMetadata,
                "this client has no secret to rotate",
            ));
        }
        new_secret(method, &old.id, &state.hasher, &state.sealer).map_err(metadata_error)?
    } else {
        None
    };
    if let Some(s) = &fresh {
        new.secret_hash = Some(s.hash.clone());
        new.client_secret_sealed.clone_from(&s.sealed);
    }
    let updated = new;
    state.store.update_client(&updated).await?;
    audit::emit(
        &Event::ClientUpdated {
            client_id: &updated.id,
        },
        state.now(),
    );
    // This instance drops the old registration (and a rotated secret) at
    // once; other instances within their epoch poll (about 2 s).
    if let Err(e) = state.registry.refresh().await {
        tracing::warn!(error = %e, "client cache refresh after an update failed");
    }
    let mut o = describe(&state, &updated);
    if let Some(s) = fresh {
        tracing::info!(client_id = %updated.id, "client secret rotated");
        o.insert("client_secret".into(), s.secret.into());
        o.insert("client_secret_expires_at".into(), 0.into());
    }
    Ok(created(Value::Object(o), StatusCode::OK))
}

/// `DELETE /register/{client_id}` (RFC 7592 2.3): the client's tokens are
/// revoked first (the RFC's SHOULD), then the client is deleted, so a
/// failure in between leaves revoked tokens, never live tokens of a
/// deleted client.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let c = authorized(&state, &headers, &id).await?;
    state.tokens.revoke_client_tokens(&c.id).await?;
    state.store.delete_client(&c.id).await?;
    audit::emit(&Event::ClientDeleted { client_id: &c.id }, state.now());
    // This instance forgets the client at once; others within their epoch
    // poll (about 2 s).
    if let Err(e) = state.registry.refresh().await {
        tracing::warn!(error = %e, "client cache refresh after a deletion failed");
    }
    tracing::info!(client_id = %c.id, "client deleted; its tokens are revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
#[path = "register_fuzz.rs"]
mod fuzz;
