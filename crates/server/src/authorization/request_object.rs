//! Request objects (RFC 9101): an authorization request sent as a JWT
//! (`request`), signed with one of the keys the client registered for
//! private_key_jwt (`jwks` or `jwks_uri`), at `/authorize` or `/par`.
//!
//! Two steps. [`open`] checks what proves who made the object (size, an
//! asymmetric `alg` of [`ALGS`], `typ`, the signature with the key of the
//! outer `client_id`) and, only then, turns its claims into the request's
//! parameters: parameters outside the object are ignored (RFC 9101 5),
//! except `client_id`, which names the key. A failure there is a page: no
//! redirect URI can be trusted yet. [`check_claims`] then checks the JWT
//! claims once the object's redirect URI is trusted, so its failures go
//! back to the client as `invalid_request_object` (RFC 9101 6.3); [`spend`]
//! records its `jti` last, once the whole request passed.

use std::collections::HashMap;

use gatehouse_keys::{Alg, JoseError, PublicKey};
use gatehouse_storage::{model::Client, StoreError};
use serde_json::{Map, Value};

use super::{
    checks::Reply,
    request::{Received, Rejection},
};
use crate::{
    error::Error,
    i18n::Msg,
    oauth::{ErrorCode, ASSERTION_ALGS},
    state::AppState,
};

/// The algorithms a request object may be signed with: those of
/// private_key_jwt assertions (discovery's
/// `request_object_signing_alg_values_supported`). Never `none`, never HMAC.
pub const ALGS: [Alg; 4] = ASSERTION_ALGS;

/// The longest a request object may be valid: `exp` at most this many
/// seconds after `nbf`, or after `iat` without `nbf`, or after its arrival
/// without either.
pub const MAX_LIFETIME: i64 = 3600;

/// Clock skew allowed on `exp` and `nbf`, in seconds.
const LEEWAY: i64 = 30;

/// The largest request object accepted, in bytes (JOSE's own cap).
const MAX_LEN: usize = gatehouse_keys::jose::MAX_TOKEN_LEN;

/// Most parameters an object may carry (as many as a form).
const MAX_PARAMS: usize = 64;

/// The `typ` values accepted (RFC 9101 4, RFC 7515 4.1.9: the
/// `application/` prefix may be left out; compared without case). Absent
/// is accepted too.
const TYPES: [&str; 2] = ["oauth-authz-req+jwt", "jwt"];

/// A request object whose signature checked out: its claims, kept until
/// [`check_claims`] and [`spend`] have seen them.
#[derive(Clone, Debug)]
pub struct RequestObject {
    claims: Map<String, Value>,
}

/// The request an object carries, as the parameters of `outer` (a
/// request with `request`): its signature checked with a key of the
/// client `outer` names. Only `client_id` is taken from outside.
pub async fn open(state: &AppState, outer: &Received, jwt: &str) -> Result<Received, Rejection> {
    let client_id = outer
        .get("client_id")
        .ok_or(Rejection::Page(Msg::NoClient))?;
    let client = state
        .registry
        .client(client_id)
        .await?
        .ok_or(Rejection::Page(Msg::UnknownClient))?;
    let claims = verify(state, &client, jwt).await.map_err(|reason| {
        tracing::info!(client_id = %client.id, reason, "request object refused");
        Rejection::Page(Msg::RequestObjectRefused {
            reason: reason.to_owned(),
        })
    })?;
    let mut params = params_of(&claims);
    params.insert("client_id".to_owned(), client.id.to_string());
    Ok(Received {
        too_many: params.len() > MAX_PARAMS,
        params,
        duplicate: None,
        via: outer.via,
        object: Some(RequestObject { claims }),
    })
}

/// The request parameters an object's claims carry: strings as they
/// are, other values as JSON text (`max_age` as a number, `claims` as an
/// object, OIDC Core 6.1); null and empty values count as absent.
fn params_of(claims: &Map<String, Value>) -> HashMap<String, String> {
    let mut params = HashMap::new();
    for (name, value) in claims {
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !text.is_empty() {
            params.insert(name.clone(), text);
        }
    }
    params
}

/// The header checks made before any key is looked up: size, a compact
/// JWS (not a JWE), `alg` one of [`ALGS`], `typ` accepted, a `kid`;
/// returns the kid.
fn check_header(jwt: &str) -> Result<String, &'static str> {
    if jwt.len() > MAX_LEN {
        return Err("the request object is larger than 16 KiB");
    }
    if jwt.split('.').count() == 5 {
        return Err("encrypted request objects are not supported; send a signed JWT");
    }
    let header =
        gatehouse_keys::peek_header(jwt).map_err(|_| "the request object is not a compact JWS")?;
    match header.get("alg").and_then(Value::as_str) {
        Some("none") => return Err("unsigned request objects (alg none) are not accepted"),
        Some(a) if ALGS.iter().any(|x| x.as_str() == a) => {}
        _ => return Err("the request object's alg must be RS256, PS256, ES256 or EdDSA"),
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(t)) if typ_ok(t) => {}
        Some(_) => return Err("the request object's typ must be oauth-authz-req+jwt or JWT"),
    }
    header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or("the request object's header has no kid")
}

/// The claims of `jwt` if it is a request object `client` signed; else
/// why not, in words an `error_description` can carry.
async fn verify(
    state: &AppState,
    client: &Client,
    jwt: &str,
) -> Result<Map<String, Value>, &'static str> {
    let kid = check_header(jwt)?;
    let kid = kid.as_str();
    let keys: Vec<PublicKey> =
        match (&client.jwks, &client.jwks_uri) {
            (Some(j), _) => crate::clients::parse_jwks(j).unwrap_or_default(),
            (None, Some(uri)) => state.registry.client_jwks(&state.http, uri, kid).await,
            (None, None) => return Err(
                "the client has no registered keys (jwks or jwks_uri) to verify request objects",
            ),
        };
    let verified = gatehouse_keys::verify(jwt, &ALGS, |k| {
        keys.iter().find(|x| x.kid() == Some(k)).cloned()
    })
    .map_err(|e| match e {
        JoseError::InvalidToken("bad signature") => "the request object's signature is not valid",
        JoseError::InvalidToken("unknown kid") => {
            "the request object's kid is not one of the client's registered keys"
        }
        JoseError::InvalidToken("algorithm does not match the key") => {
            "the request object's alg is not the alg of the client's key"
        }
        JoseError::InvalidToken(reason) => reason,
        _ => "the request object could not be verified",
    })?;
    Ok(verified.claims)
}

/// Whether `typ` is one of [`TYPES`], with or without `application/`.
fn typ_ok(typ: &str) -> bool {
    let lower = typ.to_ascii_lowercase();
    let bare = lower.strip_prefix("application/").unwrap_or(&lower);
    TYPES.contains(&bare)
}

/// The JWT claims of a verified object (RFC 9101 4, 6.3): `iss` and
/// `client_id` are the client; `aud` is the issuer (a string, or an array
/// holding it); `exp` required, not past, at most [`MAX_LIFETIME`] after
/// `nbf` (or `iat`, or now); `nbf`, if any, not in the future; a `jti`;
/// no `request` or `request_uri` inside.
pub fn check_claims(
    state: &AppState,
    reply: &Reply,
    client: &Client,
    object: &RequestObject,
) -> Result<(), Rejection> {
    let refuse = |d: &str| Err(reply.reject(ErrorCode::InvalidRequestObject, d));
    let c = &object.claims;
    let s = |k: &str| c.get(k).and_then(Value::as_str);
    let int = |k: &str| c.get(k).and_then(Value::as_i64);
    if c.contains_key("request") || c.contains_key("request_uri") {
        return refuse("a request object must not contain request or request_uri");
    }
    if s("iss") != Some(client.id.as_str()) {
        return refuse("the request object's iss must be the client_id");
    }
    if s("client_id") != Some(client.id.as_str()) {
        return refuse(
            "the request object's client_id must be present and match the client_id parameter",
        );
    }
    let issuer = state.settings.issuer.as_str();
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => a == issuer,
        Some(Value::Array(v)) => v.iter().any(|a| a.as_str() == Some(issuer)),
        _ => false,
    };
    if !aud_ok {
        return refuse(
            "the request object's aud must be the issuer (a string, or an array holding it)",
        );
    }
    let now = state.now();
    let Some(exp) = int("exp") else {
        return refuse("the request object has no numeric exp");
    };
    // Times are the client's numbers: compared without arithmetic on
    // them that could overflow, and never far in the future (an object
    // dated ahead would stay usable, and its jti remembered, that long).
    if exp.saturating_add(LEEWAY) <= now {
        return refuse("the request object has expired");
    }
    if exp > now.saturating_add(MAX_LIFETIME + LEEWAY) {
        return refuse("the request object's exp is more than 60 minutes ahead");
    }
    if c.contains_key("nbf") && int("nbf").is_none() {
        return refuse("the request object's nbf is not a number");
    }
    if int("nbf").is_some_and(|nbf| nbf.saturating_sub(LEEWAY) > now) {
        return refuse("the request object is not valid yet (nbf is in the future)");
    }
    if int("iat").is_some_and(|iat| iat.saturating_sub(LEEWAY) > now) {
        return refuse("the request object's iat is in the future");
    }
    let start = int("nbf").or_else(|| int("iat")).unwrap_or(now);
    if exp.saturating_sub(start) > MAX_LIFETIME {
        return refuse("the request object's exp is more than 60 minutes after its nbf (or iat)");
    }
    if !s("jti").is_some_and(|j| !j.is_empty() && j.len() <= 256) {
        return refuse("the request object needs a jti of 1 to 256 characters");
    }
    Ok(())
}

/// Records the object's `jti` (single use: `jar:{client_id}:{jti}`), until
/// its `exp`; a second time is `invalid_request_object`. Called once
/// [`check_claims`] and every other check passed.
pub async fn spend(
    state: &AppState,
    reply: &Reply,
    client: &Client,
    object: &RequestObject,
) -> Result<(), Rejection> {
    let c = &object.claims;
    let jti = c.get("jti").and_then(Value::as_str).unwrap_or_default();
    let exp = c.get("exp").and_then(Value::as_i64).unwrap_or_default();
    let key = format!("jar:{}:{jti}", client.id);
    match state.record_once(&key, exp.saturating_add(LEEWAY)).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::warn!(client_id = %client.id, "request object replayed");
            Err(reply.reject(
                ErrorCode::InvalidRequestObject,
                "the request object was already used (its jti was seen before)",
            ))
        }
        Err(Error::Unavailable) => Err(Rejection::Store(StoreError::Unavailable(
            "one-time values cannot be recorded".to_owned(),
        ))),
        Err(e) => Err(Rejection::Internal(e.to_string())),
    }
}

#[cfg(test)]
#[path = "request_object_fuzz.rs"]
mod fuzz;
