//! Client authentication at the token, pushed authorization request,
//! introspection and revocation endpoints (RFC 6749 2.3; OIDC Core 9): client_secret_basic,
//! client_secret_post, client_secret_jwt and private_key_jwt (RFC 7523 JWT
//! assertions, one code path), and none (public clients, identified only).
//!
//! Secrets of basic and post clients are checked as keyed hashes in
//! constant time. A client_secret_jwt client's assertion is an HMAC
//! (HS256, HS384 or HS512 only) made with the secret itself, which a hash
//! cannot check: for those clients the secret is also stored sealed with
//! the key-encryption key (AES-256-GCM, bound to the client id), opened
//! inside the keys crate only to check the MAC (constant-time comparison;
//! a secret shorter than the hash size is refused, RFC 7518 3.2). The
//! registered method decides how an assertion is checked, never its header.

use axum::http::{header, HeaderMap};
use base64::{engine::general_purpose::STANDARD, Engine};
use gatehouse_keys::{Alg, HmacAlg};
use gatehouse_storage::model::Client;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{error::AppError, form::Params};
use crate::{
    error::OAuthError,
    grants::AuthenticatedClient,
    oauth::{AuthMethod, ASSERTION_ALGS},
    state::AppState,
};

/// The description of a refused client id or secret: the same whether the
/// id is unknown or the secret wrong.
const AUTHENTICATION_FAILED: &str = "client authentication failed";

fn invalid_client(basic: bool, description: &'static str) -> AppError {
    OAuthError::invalid_client(basic, description).into()
}

/// Decodes `Authorization: Basic` (RFC 7617) into the form-decoded client
/// id and secret (RFC 6749 2.3.1). Every copy of the secret is wiped when
/// dropped.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, Zeroizing<String>)>, AppError> {
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
        return Err(invalid_client(
            true,
            "unsupported authentication scheme; use Basic",
        ));
    }
    let raw = Zeroizing::new(
        STANDARD
            .decode(rest.trim())
            .map_err(|_| invalid_client(true, "Basic credentials are not valid base64"))?,
    );
    let text = std::str::from_utf8(&raw)
        .map_err(|_| invalid_client(true, "Basic credentials are not valid UTF-8"))?;
    let Some((id, secret)) = text.split_once(':') else {
        return Err(invalid_client(
            true,
            "Basic credentials must be client_id:client_secret",
        ));
    };
    let decode = |s: &str| -> Zeroizing<String> {
        Zeroizing::new(
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default(),
        )
    };
    let mut id = decode(id);
    Ok(Some((std::mem::take(&mut *id), decode(secret))))
}

/// The families of registered methods. Within the shared-secret family a
/// client registered for client_secret_basic may send its secret in the
/// body and one registered for client_secret_post may send it in Basic:
/// the secret is the same, only its transport differs, and widely used
/// libraries pick one or the other by default. Across families nothing is
/// interchangeable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    SharedSecret,
    SecretJwt,
    PrivateKeyJwt,
    Public,
}

impl Family {
    fn of(method: AuthMethod) -> Family {
        match method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => Family::SharedSecret,
            AuthMethod::ClientSecretJwt => Family::SecretJwt,
            AuthMethod::PrivateKeyJwt => Family::PrivateKeyJwt,
            AuthMethod::None => Family::Public,
        }
    }
}

/// The registered method of `client`, and `Ok` when the request's method
/// belongs to the same family; otherwise `invalid_client` naming both
/// (client ids are public, RFC 6749 2.2, so the registered method is no
/// secret).
fn check_family(client: &Client, used: AuthMethod, basic: bool) -> Result<AuthMethod, AppError> {
    let registered = client.token_endpoint_auth_method;
    if Family::of(registered) == Family::of(used) {
        return Ok(registered);
    }
    let used = match used {
        AuthMethod::None => "no client credentials (none)",
        other => other.as_str(),
    };
    Err(invalid_client_owned(
        basic,
        format!(
            "client is registered for {}; the request used {used}",
            registered.as_str()
        ),
    ))
}

fn invalid_client_owned(basic: bool, description: String) -> AppError {
    OAuthError::invalid_client(basic, description).into()
}

/// Authenticates the client of a request. Every failure is `invalid_client`
/// (401), with `WWW-Authenticate: Basic` when Basic was tried; using two
/// methods at once is `invalid_request` (RFC 6749 2.3). An unknown id and a
/// wrong secret are both "client authentication failed"; a malformed
/// request or a method of the wrong family says what was wrong. A secret is
/// never echoed, nor how close a wrong one came.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<AuthenticatedClient, AppError> {
    let basic = basic_credentials(headers)?;
    let used_basic = basic.is_some();
    if params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some() {
        if used_basic || params.get("client_secret").is_some() {
            return Err(AppError::invalid_request(
                "more than one client authentication method was used",
            ));
        }
        return assertion(state, params).await;
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
                return Err(invalid_client(false, "no client authentication was sent"));
            };
            match params.get("client_secret") {
                Some(s) => (
                    id.to_owned(),
                    Some(Zeroizing::new(s.to_owned())),
                    AuthMethod::ClientSecretPost,
                ),
                None => (id.to_owned(), None, AuthMethod::None),
            }
        }
    };
    if client_id.is_empty() || client_id.len() > 255 {
        return Err(invalid_client(
            used_basic,
            "client_id must be 1 to 255 characters",
        ));
    }
    let client = state.registry.client(&client_id).await?;
    let presented = secret.as_deref().map(|s| state.hasher.hash(s));
    drop(secret);
    // An unknown id and a wrong secret get the same answer; the detail goes
    // to the debug log only. (The family check below names the registered
    // method, so whether an id exists is no secret: client ids are public,
    // RFC 6749 2.2.)
    let Some(client) = client else {
        tracing::debug!(client_id = ?client_id, "client authentication failed: unknown client_id");
        return Err(invalid_client(used_basic, AUTHENTICATION_FAILED));
    };
    check_family(&client, method, used_basic)?;
    if method.uses_secret() {
        let ok = match (&presented, &client.secret_hash) {
            (Some(p), Some(stored)) => bool::from(p.as_bytes().ct_eq(stored.as_bytes())),
            _ => false,
        };
        if !ok {
            tracing::debug!(client_id = %client.id, "client authentication failed: wrong secret");
            throttle_failure(state, &client.id)?;
            return Err(invalid_client(used_basic, AUTHENTICATION_FAILED));
        }
    }
    Ok(AuthenticatedClient { client, method })
}

/// RFC 7523 2.2: the assertion type of a JWT client assertion.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// MAC algorithms accepted on client_secret_jwt assertions.
const ASSERTION_HMAC_ALGS: [HmacAlg; 3] = HmacAlg::ALL;

/// A JWT client assertion (RFC 7523 2.2 and 3; OIDC Core 9), for both
/// private_key_jwt (signed with one of the client's registered keys) and
/// client_secret_jwt (MACed with the client secret, which is kept sealed
/// for exactly this). Which one applies is the client's registered method,
/// never the token's choice: a private_key_jwt client's HS256 assertion and
/// a client_secret_jwt client's RS256 assertion both fail, as does `none`.
/// Then the same rules for both: `iss` = `sub` = client id, `aud` exactly
/// the issuer identifier (see [`audience_ok`]), `exp` at most five minutes
/// ahead, and a `jti` never seen before.
async fn assertion(state: &AppState, params: &Params) -> Result<AuthenticatedClient, AppError> {
    let fail = |d: &'static str| invalid_client(false, d);
    if params.get("client_assertion_type") != Some(JWT_BEARER) {
        return Err(fail(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ));
    }
    let jwt = params
        .get("client_assertion")
        .ok_or_else(|| fail("client_assertion is missing"))?;
    if jwt.len() > 8 * 1024 {
        return Err(fail("the client assertion is larger than 8 KiB"));
    }
    // Who claims to be speaking (checked again after verification).
    let unverified = gatehouse_keys::peek_claims(jwt)
        .map_err(|_| fail("the client assertion is not a compact JWS with a JSON payload"))?;
    let kid = unverified
        .header
        .get("kid")
        .and_then(|k| k.as_str())
        .unwrap_or_default()
        .to_owned();
    // What the request used, for the message when it is the wrong family.
    let used = match unverified.header.get("alg").and_then(|a| a.as_str()) {
        Some(a) if a.parse::<HmacAlg>().is_ok() => AuthMethod::ClientSecretJwt,
        _ => AuthMethod::PrivateKeyJwt,
    };
    let client_id = unverified
        .claims
        .get("iss")
        .and_then(|v| v.as_str())
        .ok_or_else(|| fail("the client assertion has no iss"))?;
    if params.get("client_id").is_some_and(|c| c != client_id) {
        return Err(fail("client_id does not match the client assertion's iss"));
    }
    if client_id.is_empty() || client_id.len() > 255 {
        return Err(fail("the client assertion's iss is not a client_id"));
    }
    let client = state
        .registry
        .client(client_id)
        .await?
        .ok_or_else(|| fail("the client assertion's iss is an unknown client_id"))?;
    let method = check_family(&client, used, false)?;
    // The registered algorithm, if any, narrows the allow-list to itself.
    let registered = client.token_endpoint_auth_signing_alg.as_deref();
    let verified = match method {
        AuthMethod::PrivateKeyJwt => {
            let algs: Vec<Alg> = ASSERTION_ALGS
                .into_iter()
                .filter(|a| registered.is_none_or(|r| r == a.as_str()))
                .collect();
            let keys = match (&client.jwks, &client.jwks_uri) {
                (Some(j), _) => crate::clients::parse_jwks(j).unwrap_or_default(),
                (None, Some(uri)) => state.registry.client_jwks(&state.http, uri, &kid).await,
                (None, None) => Vec::new(),
            };
            match gatehouse_keys::verify(jwt, &algs, |k| {
                keys.iter().find(|x| x.kid() == Some(k)).cloned()
            }) {
                Ok(v) => v,
                Err(e) => {
                    throttle_failure(state, &client.id)?;
                    return Err(refused(&e.into()));
                }
            }
        }
        AuthMethod::ClientSecretJwt => {
            let algs: Vec<HmacAlg> = ASSERTION_HMAC_ALGS
                .into_iter()
                .filter(|a| registered.is_none_or(|r| r == a.as_str()))
                .collect();
            let sealed = client.client_secret_sealed.as_deref().ok_or_else(|| {
                AppError::Internal(format!("client {} has no sealed secret", client.id))
            })?;
            match state.sealer.verify_jws(&client.id, sealed, jwt, &algs) {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(client_id = %client.id, reason = %e, "client_secret_jwt assertion refused");
                    // A MAC failure is a wrong secret: counted like Basic's.
                    throttle_failure(state, &client.id)?;
                    return Err(refused(&e));
                }
            }
        }
        _ => return Err(fail("the client is not registered for a JWT assertion")),
    };
    let c = verified.claims;
    let s = |k: &str| c.get(k).and_then(|v| v.as_str());
    let now = state.now();
    if s("iss") != Some(client.id.as_str()) || s("sub") != Some(client.id.as_str()) {
        return Err(fail(
            "the client assertion's iss and sub must both be the client_id",
        ));
    }
    if !audience_ok(state, &client, c.get("aud")) {
        return Err(fail(if client.legacy_assertion_audience {
            "the client assertion's aud must be the issuer or the token endpoint URL, as a string or a one-element array"
        } else {
            "the client assertion's aud must be the issuer"
        }));
    }
    let exp = c
        .get("exp")
        .and_then(|v| v.as_i64())
        .ok_or_else(|| fail("the client assertion has no numeric exp"))?;
    let leeway = 30;
    if exp + leeway <= now {
        return Err(fail("the client assertion has expired"));
    }
    if exp > now + 300 + leeway {
        return Err(fail(
            "the client assertion's exp is more than 5 minutes ahead",
        ));
    }
    let jti = s("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| fail("the client assertion needs a jti of 1 to 256 characters"))?;
    // In the database, or in memory while it is away (`replay`).
    if !state
        .record_once(&format!("assertion:{}:{jti}", client.id), exp + leeway)
        .await?
    {
        tracing::warn!(client_id = %client.id, "client assertion replayed");
        return Err(fail(
            "the client assertion was already used (its jti was seen before)",
        ));
    }
    Ok(AuthenticatedClient { client, method })
}

/// Counts a wrong secret or an invalid assertion of a registered client.
/// Only wrong credentials are ever throttled (429 once the client's
/// failures pile up): the correct secret or a valid assertion is checked
/// first and always passes, so others' failures cannot lock a client out.
fn throttle_failure(state: &AppState, client_id: &str) -> Result<(), AppError> {
    let now = state.now();
    match state
        .throttle
        .attempt(&[state.throttle.client(client_id)], now)
    {
        Ok(attempt) => {
            if let Some((scope, retry_after)) = attempt.engages {
                crate::audit::emit(
                    &crate::audit::Event::ThrottleEngaged {
                        scope: scope.as_str(),
                        retry_after,
                        user_id: None,
                        client_id: Some(client_id),
                        ip: None,
                    },
                    now,
                );
            }
            Ok(())
        }
        Err(secs) => Err(AppError::Throttled(secs)),
    }
}

/// The `aud` of a client assertion (draft-ietf-oauth-rfc7523bis): exactly
/// the issuer identifier, as a string or a one-element array. Prefix
/// matches and longer arrays are refused: an assertion made for another
/// server (or for several) must not be replayable here, which is the
/// audience-injection attack on private_key_jwt. A client registered with
/// `legacy_assertion_audience` (documented as weaker) may also name the
/// token endpoint URL, which some libraries send by default, or the pushed
/// authorization request endpoint URL (RFC 9126 2).
fn audience_ok(state: &AppState, client: &Client, aud: Option<&serde_json::Value>) -> bool {
    let one = match aud {
        Some(serde_json::Value::String(a)) => a.as_str(),
        Some(serde_json::Value::Array(v)) if v.len() == 1 => match v.first() {
            Some(serde_json::Value::String(a)) => a.as_str(),
            _ => return false,
        },
        _ => return false,
    };
    one == state.settings.issuer
        || (client.legacy_assertion_audience
            && (one == state.settings.endpoint("/token") || one == state.settings.endpoint("/par")))
}

/// Why an assertion's signature or MAC was refused, in the keys crate's
/// own words (fixed phrases such as "algorithm not allowed", "unknown
/// kid", "bad signature"; never key material or how close a MAC came).
fn refused(e: &gatehouse_keys::KeyError) -> AppError {
    let reason = e
        .invalid_token_reason()
        .unwrap_or("it could not be verified");
    invalid_client_owned(false, format!("the client assertion was refused: {reason}"))
}

#[cfg(test)]
#[path = "client_auth_fuzz.rs"]
mod fuzz;
