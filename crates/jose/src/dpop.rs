//! DPoP proofs (RFC 9449 4.2 and 4.3): checking one against the request
//! it came with. Pure: the caller keeps the replay store (`jti` seen
//! before), the nonces and the policy; this module says whether the proof
//! is well formed, signed by the key it carries, for this method and URL,
//! fresh, and bound to the access token presented with it (`ath`), and
//! returns the key's thumbprint (`jkt`, RFC 7638) to bind tokens to.
//!
//! Every refusal is a [`DpopError`] whose text is the `error_description`
//! of `invalid_dpop_proof`: it names the rule broken and never quotes the
//! proof.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{
    checks::split_jws_with_own_key, jws::check_signature, Alg, Backend, KeyUse, PublicKey,
};

/// The longest proof accepted, in bytes (an RSA-4096 key in the header
/// fits in well under this).
pub const MAX_PROOF_LEN: usize = 8 * 1024;
/// The `typ` a proof must carry.
pub const PROOF_TYP: &str = "dpop+jwt";
/// The longest `jti` accepted, in bytes (the replay store keeps them).
pub const MAX_JTI_LEN: usize = 256;

/// What the proof must match: the request it came with.
#[derive(Clone, Copy, Debug)]
pub struct DpopRequest<'a> {
    /// The HTTP method, as sent (`POST`).
    pub method: &'a str,
    /// The request's URL without query and fragment, as the server is
    /// reached by its clients (its issuer and the path).
    pub url: &'a str,
    /// Now, in Unix seconds.
    pub now: i64,
    /// How far `iat` may be from now, either way, in seconds.
    pub max_skew: i64,
    /// The signature algorithms accepted.
    pub algs: &'a [Alg],
    /// The access token presented with the proof (`Authorization: DPoP`),
    /// whose hash the proof must carry as `ath`; `None` at the token
    /// endpoint.
    pub access_token: Option<&'a str>,
}

/// A proof that passed: the key's thumbprint and what the caller still
/// decides on (`jti` replay, `nonce`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpopProof {
    /// RFC 7638 thumbprint (SHA-256, base64url) of the proof's key.
    pub jkt: String,
    /// The proof's unique id: accept it once within the `iat` window.
    pub jti: String,
    pub iat: i64,
    /// The server nonce the proof carries, if any.
    pub nonce: Option<String>,
}

/// Why a proof was refused (the `error_description` of
/// `invalid_dpop_proof`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    #[error("the DPoP proof is not a compact JWS of at most 8 KiB: {0}")]
    Malformed(&'static str),
    #[error("the DPoP proof's typ must be dpop+jwt")]
    Typ,
    #[error("the DPoP proof's alg is not one of dpop_signing_alg_values_supported")]
    Alg,
    #[error("the DPoP proof's header must carry the public key (jwk) it is signed with: {0}")]
    Key(String),
    #[error("the DPoP proof's signature does not verify with its jwk")]
    Signature,
    #[error("the DPoP proof's {0} claim is missing or not well formed")]
    Claim(&'static str),
    #[error("the DPoP proof's htm does not match the request's method")]
    Method,
    #[error("the DPoP proof's htu does not match the request's URL")]
    Url,
    #[error("the DPoP proof's iat is too far from the server's time")]
    Stale,
    #[error("the DPoP proof's ath does not match the access token")]
    AccessTokenHash,
}

/// Checks `proof` against the request `req` (RFC 9449 4.3, steps 1 to 11
/// but the replay and nonce checks, which need state), verifying its
/// signature with the default [`Backend`].
pub fn verify_proof(proof: &str, req: &DpopRequest<'_>) -> Result<DpopProof, DpopError> {
    verify_proof_with(proof, req, Backend::default())
}

/// As [`verify_proof`], verifying the signature with `backend` (a
/// resource server's verifier uses the backend it was configured with).
pub fn verify_proof_with(
    proof: &str,
    req: &DpopRequest<'_>,
    backend: Backend,
) -> Result<DpopProof, DpopError> {
    let parts = split_jws_with_own_key(proof, MAX_PROOF_LEN).map_err(|e| match e {
        crate::JoseError::InvalidToken(why) => DpopError::Malformed(why),
        _ => DpopError::Malformed("not a compact JWS"),
    })?;
    let header = &parts.header;
    if header.get("typ").and_then(Value::as_str) != Some(PROOF_TYP) {
        return Err(DpopError::Typ);
    }
    let alg = parts
        .alg()
        .ok()
        .and_then(|name| Alg::from_verification_name(name).ok())
        .filter(|alg| alg.key_use() == KeyUse::Sig && req.algs.contains(alg))
        .ok_or(DpopError::Alg)?;
    let jwk = header
        .get("jwk")
        .ok_or_else(|| DpopError::Key("no jwk".to_owned()))?;
    check_rsa_size(jwk)?;
    let key = PublicKey::from_jwk_value_for_verification_with(jwk, Some(alg), backend)
        .map_err(|e| DpopError::Key(e.to_string()))?;
    if key.alg() != alg {
        return Err(DpopError::Key("its alg is not the proof's".to_owned()));
    }
    check_signature(&parts, &key).map_err(|_| DpopError::Signature)?;
    let payload = parts
        .payload()
        .map_err(|_| DpopError::Malformed("malformed payload"))?;
    let claims: Map<String, Value> = match serde_json::from_slice(&payload) {
        Ok(Value::Object(c)) => c,
        _ => return Err(DpopError::Malformed("payload is not a JSON object")),
    };
    let text = |name: &'static str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .ok_or(DpopError::Claim(name))
    };
    let jti = text("jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(DpopError::Claim("jti"));
    }
    if text("htm")? != req.method {
        return Err(DpopError::Method);
    }
    if normalized(text("htu")?) != normalized(req.url) {
        return Err(DpopError::Url);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or(DpopError::Claim("iat"))?;
    let skew = iat.checked_sub(req.now).map(i64::unsigned_abs);
    if skew.is_none_or(|d| d > req.max_skew.unsigned_abs()) {
        return Err(DpopError::Stale);
    }
    if let Some(token) = req.access_token {
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
        if claims.get("ath").and_then(Value::as_str) != Some(expected.as_str()) {
            return Err(DpopError::AccessTokenHash);
        }
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(DpopError::Claim("nonce")),
    };
    Ok(DpopProof {
        jkt: key.thumbprint(),
        jti: jti.to_owned(),
        iat,
        nonce,
    })
}

/// A proof of `key` (the client's side, RFC 9449 4.2): header `typ`
/// `dpop+jwt`, the key's `alg` and its public `jwk`; `claims` as given
/// (`jti`, `htm`, `htu`, `iat`, and `ath` or `nonce` when needed). For
/// clients and benchmarks written in Rust.
#[cfg(feature = "openssl")]
pub fn sign_proof(key: &crate::PrivateKey, claims: &Value) -> Result<String, crate::JoseError> {
    let crate::key::PrivateOp::Sign(signer) = &key.0.op else {
        return Err(crate::JoseError::InvalidKey(
            "a DPoP proof needs a signing key".into(),
        ));
    };
    let mut header = Map::new();
    header.insert("typ".into(), PROOF_TYP.into());
    header.insert("alg".into(), key.alg().as_str().into());
    header.insert("jwk".into(), key.public_key().jwk_json());
    crate::jws::sign_with_header(signer, header, claims)
}

/// Anyone can send a proof, so its key must be cheap to check with: an
/// RSA key of 2048 to 4096 bits with the exponent 65537 (an 8192-bit
/// modulus or a huge exponent would make each refusal cost milliseconds).
fn check_rsa_size(jwk: &Value) -> Result<(), DpopError> {
    if jwk.get("kty").and_then(Value::as_str) != Some("RSA") {
        return Ok(());
    }
    let n = jwk
        .get("n")
        .and_then(Value::as_str)
        .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
        .ok_or_else(|| DpopError::Key("an RSA key needs n".to_owned()))?;
    let bits = (n.len() * 8).saturating_sub(n.first().map_or(8, |b| b.leading_zeros() as usize));
    if !(2048..=4096).contains(&bits) {
        return Err(DpopError::Key(
            "an RSA proof key must have 2048 to 4096 bits".to_owned(),
        ));
    }
    if jwk.get("e").and_then(Value::as_str) != Some("AQAB") {
        return Err(DpopError::Key(
            "an RSA proof key's exponent must be 65537 (AQAB)".to_owned(),
        ));
    }
    Ok(())
}

/// A URL for comparing `htu` (RFC 9449 4.3: without query and fragment,
/// RFC 3986 6.2.2 and 6.2.3 normalization): scheme and host in lower case,
/// the scheme's default port dropped, an empty path as `/`.
fn normalized(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut authority = authority.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    if let Some(port) = default {
        if let Some(stripped) = authority.strip_suffix(port) {
            authority = stripped.to_owned();
        }
    }
    format!("{scheme}://{authority}{path}")
}

#[cfg(all(test, feature = "openssl"))]
mod tests;
