//! Compact JWS: signing with an opened private key, verification against
//! public keys or a shared HMAC secret, and unverified peeking for routing.

#[cfg(feature = "openssl")]
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
#[cfg(feature = "openssl")]
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::checks::{split_jws, split_jws_capped, MAX_TOKEN_LEN};
use crate::jwk::PublicOp;
#[cfg(feature = "openssl")]
use crate::key::PrivateOp;
#[cfg(feature = "openssl")]
use crate::{shorten, PrivateKey};
use crate::{Alg, HmacAlg, JoseError, KeyUse, PublicKey};

/// A compact JWS decoded without checking its signature (see
/// [`peek_claims`]). A distinct type from [`VerifiedJws`] so the two cannot
/// be confused.
#[derive(Clone, Debug)]
pub struct UnverifiedJws {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

/// Header and claims of a compact JWS, with the structural checks of
/// [`verify`] but no signature check: to learn who claims to have signed
/// (a client assertion's `iss` and `kid`) before looking the key up.
pub fn peek_claims(token: &str) -> Result<UnverifiedJws, JoseError> {
    let v = split_jws(token)?.into_verified()?;
    Ok(UnverifiedJws {
        header: v.header,
        claims: v.claims,
    })
}

/// Sign `claims` as a compact JWS with header `{"alg", "kid", "typ"}`.
#[cfg(feature = "openssl")]
pub fn sign<C: serde::Serialize + ?Sized>(
    key: &PrivateKey,
    typ: &str,
    claims: &C,
) -> Result<String, JoseError> {
    let PrivateOp::Sign(signer) = &key.0.op else {
        return Err(JoseError::InvalidKey(format!(
            "key {} ({}) is not a signing key",
            shorten(&key.0.kid),
            key.0.alg
        )));
    };
    let mut header = Map::new();
    header.insert("alg".into(), key.0.alg.as_str().into());
    header.insert("kid".into(), key.0.kid.as_str().into());
    header.insert("typ".into(), typ.into());
    sign_with_header(signer, header, claims)
}

/// Signs `claims` under `header` (which names the algorithm of `signer`).
#[cfg(feature = "openssl")]
pub(crate) fn sign_with_header<C: serde::Serialize + ?Sized>(
    signer: &crate::key::Signer,
    header: Map<String, Value>,
    claims: &C,
) -> Result<String, JoseError> {
    let header = Value::Object(header).to_string();
    let payload = serde_json::to_vec(claims)
        .map_err(|err| JoseError::Crypto(format!("claims serialization: {err}")))?;

    let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 360);
    URL_SAFE_NO_PAD.encode_string(header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let signature = signer
        .sign(token.as_bytes())
        .map_err(|err| JoseError::Crypto(format!("signing failed: {err}")))?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// A JWS whose signature checked out. The claims are NOT validated (exp,
/// iss, aud and the like are the caller's job).
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

/// Verify a compact JWS whose payload is a JSON object.
///
/// The header is checked before any key is touched: at most 16 KiB, a `kid`
/// is required, `alg` must be a signature algorithm in `allowed` (so `none`
/// and HS* never pass), and `jwk`, `jku`, `x5u`, `x5c` and `crit` are
/// refused. `lookup` maps the kid to a key, whose alg must equal the
/// header's. Errors are `InvalidToken` with a short reason that never quotes
/// the token.
pub fn verify(
    token: &str,
    allowed: &[Alg],
    lookup: impl Fn(&str) -> Option<PublicKey>,
) -> Result<VerifiedJws, JoseError> {
    verify_capped(token, MAX_TOKEN_LEN, allowed, lookup)
}

/// [`verify`] with the caller's size cap instead of [`MAX_TOKEN_LEN`]: for
/// larger signed documents such as a token status list (up to 1 MiB).
pub fn verify_capped(
    token: &str,
    max_len: usize,
    allowed: &[Alg],
    lookup: impl Fn(&str) -> Option<PublicKey>,
) -> Result<VerifiedJws, JoseError> {
    let (header, payload) = verify_payload(token, max_len, allowed, lookup)?;
    match serde_json::from_slice(&payload) {
        Ok(Value::Object(claims)) => Ok(VerifiedJws { header, claims }),
        _ => Err(JoseError::InvalidToken("payload is not a JSON object")),
    }
}

/// [`verify`] up to and including the signature check; returns the header
/// and the raw payload bytes.
fn verify_payload(
    token: &str,
    max_len: usize,
    allowed: &[Alg],
    lookup: impl Fn(&str) -> Option<PublicKey>,
) -> Result<(Map<String, Value>, Vec<u8>), JoseError> {
    let parts = split_jws_capped(token, max_len)?;
    let alg = Alg::from_verification_name(parts.alg()?)
        .ok()
        .filter(|alg| alg.key_use() == KeyUse::Sig && allowed.contains(alg))
        .ok_or(JoseError::InvalidToken("algorithm not allowed"))?;
    let kid = parts
        .header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(JoseError::InvalidToken("missing kid"))?;
    let key = lookup(kid).ok_or(JoseError::InvalidToken("unknown kid"))?;
    if key.alg() != alg {
        return Err(JoseError::InvalidToken("algorithm does not match the key"));
    }
    check_signature(&parts, &key)?;
    let payload = parts.payload()?;
    Ok((parts.header, payload))
}

/// Checks the signature of `parts` with `key` (whose algorithm the caller
/// has matched to the header's).
pub(crate) fn check_signature(
    parts: &crate::checks::JwsParts<'_>,
    key: &PublicKey,
) -> Result<(), JoseError> {
    let signature = parts.signature()?;
    let valid = match &key.0.op {
        #[cfg(feature = "openssl")]
        PublicOp::Verify(verifier) => verifier
            .verify(parts.signing_input.as_bytes(), &signature)
            .is_ok(),
        #[cfg(feature = "rustcrypto")]
        PublicOp::Pure(verifier) => verifier.verify(parts.signing_input.as_bytes(), &signature),
        #[cfg(feature = "openssl")]
        PublicOp::Encrypt(_) | PublicOp::EcdhEs(_) => {
            return Err(JoseError::InvalidToken("algorithm does not match the key"))
        }
        #[cfg(not(feature = "openssl"))]
        PublicOp::PublicOnly => {
            return Err(JoseError::InvalidToken("algorithm does not match the key"))
        }
    };
    if !valid {
        return Err(JoseError::InvalidToken("bad signature"));
    }
    Ok(())
}

/// Whether `mac` is the HMAC of `input` under `key`, compared in constant
/// time (the hmac crate's `verify_slice`).
fn hmac_matches(alg: HmacAlg, key: &[u8], input: &[u8], mac: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    fn check<M: Mac + hmac::digest::KeyInit>(key: &[u8], input: &[u8], mac: &[u8]) -> bool {
        match <M as Mac>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(input);
                m.verify_slice(mac).is_ok()
            }
            Err(_) => false,
        }
    }
    match alg {
        HmacAlg::HS256 => check::<Hmac<sha2::Sha256>>(key, input, mac),
        HmacAlg::HS384 => check::<Hmac<sha2::Sha384>>(key, input, mac),
        HmacAlg::HS512 => check::<Hmac<sha2::Sha512>>(key, input, mac),
    }
}

/// Verify a compact JWS MACed with a shared `secret` (HS256/384/512),
/// whose payload is a JSON object.
///
/// The same header checks as [`verify`] (size, no `crit`, no key-carrying
/// members), then: `alg` must be one of `allowed` (so `none` and every
/// asymmetric algorithm fail), and the secret must be at least as long as
/// the hash output (RFC 7518 3.2) or the token is refused whatever its MAC.
/// A `kid`, if present, is ignored: the secret is the caller's choice.
pub fn verify_hmac(
    token: &str,
    allowed: &[HmacAlg],
    secret: &[u8],
) -> Result<VerifiedJws, JoseError> {
    let parts = split_jws(token)?;
    let alg = parts
        .alg()?
        .parse::<HmacAlg>()
        .ok()
        .filter(|alg| allowed.contains(alg))
        .ok_or(JoseError::InvalidToken("algorithm not allowed"))?;
    if secret.len() < alg.min_key_len() {
        return Err(JoseError::InvalidToken(
            "secret is shorter than the algorithm's hash",
        ));
    }
    let signature = parts.signature()?;
    if !hmac_matches(alg, secret, parts.signing_input.as_bytes(), &signature) {
        return Err(JoseError::InvalidToken("bad signature"));
    }
    parts.into_verified()
}

#[cfg(all(test, feature = "openssl"))]
mod tests;
