//! DPoP at the edge (RFC 9449): the request's one `DPoP` header handed to
//! the core's check (`crate::dpop`), and the server nonce on answers.

use crate::{
    dpop::{self, ProofRequest},
    error::{Error, OAuthError},
    state::AppState,
};
use axum::{
    http::{HeaderMap, HeaderName, HeaderValue},
    response::Response,
};

/// The request header carrying a proof (RFC 9449 4.1).
pub const DPOP: HeaderName = HeaderName::from_static("dpop");
/// The answer header carrying the server's nonce (RFC 9449 8.1).
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// The request's proof: `None` without a `DPoP` header; more than one, or
/// one that is not text, is `invalid_dpop_proof` (RFC 9449 4.3, check 1).
pub fn proof(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    let mut all = headers.get_all(&DPOP).iter();
    let Some(first) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(OAuthError::InvalidDpopProof(
            "send one DPoP header, not several".into(),
        ));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| OAuthError::InvalidDpopProof("the DPoP header is not a JWS".into()))
}

/// Checks the request's proof, if it has one, without writing: the caller
/// records its `jti` ([`dpop::Proof::record`]) once the rest of the request
/// has been checked.
pub fn verified(
    state: &AppState,
    headers: &HeaderMap,
    req: ProofRequest<'_>,
) -> Result<Option<dpop::Proof>, Error> {
    match proof(headers)? {
        None => Ok(None),
        Some(p) => Ok(Some(dpop::verify(state, p, req)?)),
    }
}

/// With nonces on, every answer of an endpoint that takes proofs carries
/// the current nonce (RFC 9449 8.2: a new nonce on any answer), so a
/// client always has a fresh one without an extra round trip.
pub fn with_nonce(state: &AppState, mut r: Response) -> Response {
    if state.settings.dpop.nonce {
        if let Ok(v) = HeaderValue::from_str(&state.dpop_nonces.current(state.now())) {
            r.headers_mut().insert(DPOP_NONCE, v);
        }
    }
    r
}
