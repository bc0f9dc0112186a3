//! Client authentication at the token, introspection and revocation
//! endpoints (RFC 6749 2.3; OIDC Core 9): client_secret_basic,
//! client_secret_post, and none (public clients, identified only).

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use base64::{engine::general_purpose::STANDARD, Engine};
use gatehouse_storage::model::Client;
use subtle::ConstantTimeEq;

use super::{error::AppError, form::Params};
use crate::{
    oauth::{AuthMethod, ErrorCode},
    state::AppState,
};

/// An authenticated (or, for `none`, identified) client.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub client: Arc<Client>,
    pub method: AuthMethod,
}

fn invalid_client(basic: bool, description: &'static str) -> AppError {
    AppError::OAuth {
        code: ErrorCode::InvalidClient,
        description: description.into(),
        basic,
    }
}

/// Decodes `Authorization: Basic` (RFC 7617) into the form-decoded client
/// id and secret (RFC 6749 2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = value
        .to_str()
        .map_err(|_| invalid_client(true, "malformed Authorization header"))?;
    let Some((scheme, rest)) = v.split_once(' ') else {
        return Err(invalid_client(true, "malformed Authorization header"));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid_client(true, "unsupported authentication scheme"));
    }
    let raw = STANDARD
        .decode(rest.trim())
        .map_err(|_| invalid_client(true, "malformed Basic credentials"))?;
    let text =
        String::from_utf8(raw).map_err(|_| invalid_client(true, "malformed Basic credentials"))?;
    let Some((id, secret)) = text.split_once(':') else {
        return Err(invalid_client(true, "malformed Basic credentials"));
    };
    let decode = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((decode(id), decode(secret))))
}

/// Authenticates the client of a request. Every failure is `invalid_client`
/// (401), with `WWW-Authenticate: Basic` when Basic was tried; using two
/// methods at once is `invalid_request` (RFC 6749 2.3).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Authenticated, AppError> {
    let basic = basic_credentials(headers)?;
    let used_basic = basic.is_some();
    if params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some() {
        if used_basic || params.get("client_secret").is_some() {
            return Err(AppError::invalid_request(
                "more than one client authentication method was used",
            ));
        }
        return Err(invalid_client(
            false,
            "client assertions are not accepted for this client",
        ));
    }
    let (client_id, secret, method) = match basic {
        Some((id, secret)) => {
            if params.get("client_secret").is_some() {
                return Err(AppError::invalid_request(
                    "more than one client authentication method was used",
                ));
            }
            if params.get("client_id").is_some_and(|b| b != id) {
                return Err(AppError::invalid_request(
                    "client_id does not match the authenticated client",
                ));
            }
            (id, Some(secret), AuthMethod::ClientSecretBasic)
        }
        None => {
            let Some(id) = params.get("client_id") else {
                return Err(invalid_client(false, "client authentication is required"));
            };
            match params.get("client_secret") {
                Some(s) => (
                    id.to_owned(),
                    Some(s.to_owned()),
                    AuthMethod::ClientSecretPost,
                ),
                None => (id.to_owned(), None, AuthMethod::None),
            }
        }
    };
    if client_id.is_empty() || client_id.len() > 255 {
        return Err(invalid_client(used_basic, "client authentication failed"));
    }
    let client = state.registry.client(&client_id).await?;
    // Hash even when the client is unknown, so timing does not reveal which ids exist.
    let presented = secret.as_deref().map(|s| state.hasher.hash(s));
    let Some(client) = client else {
        return Err(invalid_client(used_basic, "client authentication failed"));
    };
    if client.token_endpoint_auth_method != method.as_str() {
        return Err(invalid_client(used_basic, "client authentication failed"));
    }
    if method.uses_secret() {
        let ok = match (&presented, &client.secret_hash) {
            (Some(p), Some(stored)) => bool::from(p.as_bytes().ct_eq(stored.as_bytes())),
            _ => false,
        };
        if !ok {
            return Err(invalid_client(used_basic, "client authentication failed"));
        }
    }
    Ok(Authenticated { client, method })
}
