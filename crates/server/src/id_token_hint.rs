//! `id_token_hint` (OIDC Core 3.1.2.1; RP-Initiated Logout 1.0 section 2):
//! an ID token this issuer signed, possibly expired.
//!
//! Gatehouse signs other JWTs with the same keys (the inner JWS of an
//! access token, which a resource server sees after decrypting it; logout
//! tokens; status lists; signed introspection answers). Each of those
//! carries its own `typ`, so only a JWS whose `typ` is `JWT` or absent, with
//! our `iss`, a `sub` and an `aud`, passes as an ID token. Token exchange
//! (RFC 8693) reads its ID-token subjects here too, and checks the expiry.

use gatehouse_keys::SIGNING_ALGS;
use serde_json::Value;

use crate::state::AppState;

/// What a valid hint says.
#[derive(Debug, Clone)]
pub struct IdTokenHint {
    pub sub: String,
    /// The audiences (client ids) the ID token was issued to.
    pub aud: Vec<String>,
    /// Its expiry, when it has one (a hint may have expired; a token
    /// exchange's subject may not).
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub auth_time: Option<i64>,
    pub acr: Option<String>,
}

/// Why a hint was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HintError {
    #[error("id_token_hint is not signed by this issuer's keys")]
    Signature,
    #[error("id_token_hint is not an ID token (its typ is that of another kind of token)")]
    NotAnIdToken,
    #[error("id_token_hint was issued by another issuer")]
    OtherIssuer,
    #[error("id_token_hint lacks sub or aud")]
    Incomplete,
}

/// Checks `token` as an ID token this issuer signed. Expiry is not checked:
/// a hint may have expired (OIDC Core 3.1.2.1).
pub fn read(state: &AppState, token: &str) -> Result<IdTokenHint, HintError> {
    let v = state
        .keys
        .verify(token, &SIGNING_ALGS)
        .map_err(|_| HintError::Signature)?;
    match v.header.get("typ") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(HintError::NotAnIdToken),
    }
    if v.claims.get("iss").and_then(Value::as_str) != Some(state.settings.issuer.as_str()) {
        return Err(HintError::OtherIssuer);
    }
    let sub = v
        .claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(HintError::Incomplete)?;
    let aud: Vec<String> = match v.claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or(HintError::Incomplete)?,
        _ => return Err(HintError::Incomplete),
    };
    if aud.is_empty() {
        return Err(HintError::Incomplete);
    }
    Ok(IdTokenHint {
        sub: sub.to_owned(),
        aud,
        exp: v.claims.get("exp").and_then(Value::as_i64),
        iat: v.claims.get("iat").and_then(Value::as_i64),
        auth_time: v.claims.get("auth_time").and_then(Value::as_i64),
        acr: v
            .claims
            .get("acr")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}
