//! The structural checks every token and key gets before any key is
//! touched: the size cap, refusal of `crit` and of header members that carry
//! or point to a key (`jwk`, `jku`, `x5u`, `x5c`), exact JWE part lengths,
//! and ECDH-ES ephemeral-key point validation. One copy, used by the
//! server and by resource-server verifiers alike.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::{Alg, JoseError, KeyUse, VerifiedJws};

/// Largest compact JWS or JWE accepted, checked before any parsing.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// JWS header parameters that are refused: a token must never name or carry
/// its own verification key, nor demand extensions we do not implement.
const REFUSED_JWS_HEADER: &[&str] = &["jwk", "jku", "x5u", "x5c", "crit"];
/// The only JWE content encryption Gatehouse uses and accepts.
pub(crate) const ENC_A256GCM: &str = "A256GCM";
/// AES-GCM IV and tag lengths for A256GCM.
pub(crate) const GCM_IV_LEN: usize = 12;
pub(crate) const GCM_TAG_LEN: usize = 16;
/// Length of a 256-bit CEK wrapped with AES key wrap (RFC 3394 adds 8 bytes).
const A256KW_WRAPPED_CEK_LEN: usize = 40;
/// Largest RSA-wrapped key accepted: an 8192-bit modulus.
const RSA_MAX_WRAPPED_KEY_LEN: usize = 8192 / 8;

/// Whether 32-byte `x`, `y` are the affine coordinates of a point on P-256.
/// This is the guard against the invalid-curve attack on ECDH. The `p256`
/// crate's SEC1 decoding refuses coordinates >= p and points off the curve
/// (P-256 has cofactor 1, so there is no small-subgroup point to refuse
/// besides infinity, which the uncompressed encoding cannot express).
pub fn is_p256_point(x: &[u8], y: &[u8]) -> bool {
    if x.len() != 32 || y.len() != 32 {
        return false;
    }
    let mut encoded = [0u8; 65];
    encoded[0] = 0x04;
    encoded[1..33].copy_from_slice(x);
    encoded[33..].copy_from_slice(y);
    p256::PublicKey::from_sec1_bytes(&encoded).is_ok()
}

/// Decode a compact-serialization header segment into a JSON object.
pub(crate) fn decode_header(segment: &str) -> Result<Map<String, Value>, JoseError> {
    const BAD: JoseError = JoseError::InvalidToken("malformed header");
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| BAD)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(header)) => Ok(header),
        _ => Err(BAD),
    }
}

/// The protected header of a compact JWS or JWE, decoded but not
/// authenticated: for routing (which key, which kind of token) before the
/// real check, never for a decision.
pub fn peek_header(token: &str) -> Result<Map<String, Value>, JoseError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JoseError::InvalidToken("token too large"));
    }
    let first = token
        .split('.')
        .next()
        .ok_or(JoseError::InvalidToken("malformed header"))?;
    decode_header(first)
}

/// The header checks every JWS gets, whoever verifies it: no `crit` (no
/// extensions we do not implement) and no member that carries or points to
/// a key (`jwk`, `jku`, `x5u`, `x5c`): the key is always the verifier's
/// choice, by `kid`.
pub fn check_jws_header(header: &Map<String, Value>) -> Result<(), JoseError> {
    if header.contains_key("crit") {
        return Err(JoseError::InvalidToken(
            "critical header parameters are not supported",
        ));
    }
    if REFUSED_JWS_HEADER
        .iter()
        .any(|name| header.contains_key(*name))
    {
        return Err(JoseError::InvalidToken(
            "header must not carry or point to a key",
        ));
    }
    Ok(())
}

/// The three segments of a compact JWS and its decoded header, after the
/// checks every JWS gets before any key is touched: size cap, structure,
/// no `crit`, and no header member that carries or points to a key.
pub(crate) struct JwsParts<'a> {
    pub(crate) header: Map<String, Value>,
    pub(crate) signing_input: &'a str,
    payload_b64: &'a str,
    signature_b64: &'a str,
}

/// As [`split_jws_capped`], for a JWS that carries its own key in a `jwk`
/// header (a DPoP proof, RFC 9449 4.2): `jwk` is allowed, the other
/// key-carrying members (`jku`, `x5u`, `x5c`) and `crit` are not. The
/// caller must check that key against what it expects (a thumbprint).
pub(crate) fn split_jws_with_own_key(
    token: &str,
    max_len: usize,
) -> Result<JwsParts<'_>, JoseError> {
    if token.len() > max_len {
        return Err(JoseError::InvalidToken("token too large"));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::InvalidToken("not a compact JWS"));
    };
    let header = decode_header(header_b64)?;
    if header.contains_key("crit") {
        return Err(JoseError::InvalidToken(
            "critical header parameters are not supported",
        ));
    }
    if ["jku", "x5u", "x5c"]
        .iter()
        .any(|n| header.contains_key(*n))
    {
        return Err(JoseError::InvalidToken("header must not point to a key"));
    }
    Ok(JwsParts {
        header,
        signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
        payload_b64,
        signature_b64,
    })
}

pub(crate) fn split_jws(token: &str) -> Result<JwsParts<'_>, JoseError> {
    split_jws_capped(token, MAX_TOKEN_LEN)
}

/// [`split_jws`] with the caller's size cap instead of [`MAX_TOKEN_LEN`].
pub(crate) fn split_jws_capped(token: &str, max_len: usize) -> Result<JwsParts<'_>, JoseError> {
    if token.len() > max_len {
        return Err(JoseError::InvalidToken("token too large"));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::InvalidToken("not a compact JWS"));
    };
    let header = decode_header(header_b64)?;
    check_jws_header(&header)?;
    Ok(JwsParts {
        header,
        signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
        payload_b64,
        signature_b64,
    })
}

impl JwsParts<'_> {
    pub(crate) fn signature(&self) -> Result<Vec<u8>, JoseError> {
        URL_SAFE_NO_PAD
            .decode(self.signature_b64)
            .map_err(|_| JoseError::InvalidToken("malformed signature"))
    }

    pub(crate) fn payload(&self) -> Result<Vec<u8>, JoseError> {
        URL_SAFE_NO_PAD
            .decode(self.payload_b64)
            .map_err(|_| JoseError::InvalidToken("malformed payload"))
    }

    pub(crate) fn alg(&self) -> Result<&str, JoseError> {
        self.header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(JoseError::InvalidToken("missing alg"))
    }

    /// The payload as a JSON object, with the header.
    pub(crate) fn into_verified(self) -> Result<VerifiedJws, JoseError> {
        let payload = self.payload()?;
        match serde_json::from_slice(&payload) {
            Ok(Value::Object(claims)) => Ok(VerifiedJws {
                header: self.header,
                claims,
            }),
            _ => Err(JoseError::InvalidToken("payload is not a JSON object")),
        }
    }
}

/// Check the ECDH-ES ephemeral public key: an EC point on P-256, refused
/// before any key agreement (the invalid-curve attack).
pub fn check_epk(header: &Map<String, Value>) -> Result<(), JoseError> {
    let epk = header
        .get("epk")
        .and_then(Value::as_object)
        .ok_or(JoseError::InvalidToken("missing ephemeral key"))?;
    let member = |name: &str| epk.get(name).and_then(Value::as_str);
    if member("kty") != Some("EC") || member("crv") != Some("P-256") {
        return Err(JoseError::InvalidToken("ephemeral key must be on P-256"));
    }
    let coordinate = |name: &str| {
        member(name)
            .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
            .ok_or(JoseError::InvalidToken("malformed ephemeral key"))
    };
    if !is_p256_point(&coordinate("x")?, &coordinate("y")?) {
        return Err(JoseError::InvalidToken(
            "ephemeral key is not a valid P-256 point",
        ));
    }
    Ok(())
}

/// Decode one binary JWE part.
pub(crate) fn jwe_part(segment: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JoseError::InvalidToken("malformed JWE"))
}

/// A compact JWE with a wrapped key (RSA-OAEP-256 or ECDH-ES+A256KW,
/// A256GCM), after every check that needs no key.
pub(crate) struct JweParts<'a> {
    /// The protected header exactly as it appears in the token (the AAD).
    header_b64: &'a str,
    pub(crate) header: Map<String, Value>,
    pub(crate) alg: Alg,
    pub(crate) encrypted_key: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

/// Every check a compact JWE with a wrapped key gets before any key is
/// touched (size cap, structure, no `zip` or `crit`, an encryption alg,
/// `enc` A256GCM, exact part lengths and, for ECDH-ES, an ephemeral key on
/// P-256); returns its protected header. For
/// recipients that decrypt with their own JOSE library, such as
/// resource-server verifiers.
pub fn check_jwe(token: &str) -> Result<Map<String, Value>, JoseError> {
    split_jwe(token).map(|parts| parts.header)
}

/// Split and check a compact JWE before any key is touched: size cap,
/// structure, no `zip` or `crit`, an alg of [`KeyUse::Enc`], enc A256GCM,
/// a string kid if any, exact part lengths (IV 12 bytes, tag 16 bytes,
/// wrapped key 40 bytes for ECDH-ES+A256KW; a short GCM tag would weaken
/// authentication) and, for ECDH-ES, an ephemeral key on P-256.
pub(crate) fn split_jwe(token: &str) -> Result<JweParts<'_>, JoseError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JoseError::InvalidToken("token too large"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, key_b64, iv_b64, ciphertext_b64, tag_b64] = parts[..] else {
        return Err(JoseError::InvalidToken("not a compact JWE"));
    };
    let header = decode_header(header_b64)?;
    if header.contains_key("zip") {
        return Err(JoseError::InvalidToken("compressed JWE is not accepted"));
    }
    if header.contains_key("crit") {
        return Err(JoseError::InvalidToken(
            "critical header parameters are not supported",
        ));
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(|alg| alg.parse::<Alg>().ok())
        .filter(|alg| alg.key_use() == KeyUse::Enc)
        .ok_or(JoseError::InvalidToken("algorithm not allowed"))?;
    if header.get("enc").and_then(Value::as_str) != Some(ENC_A256GCM) {
        return Err(JoseError::InvalidToken(
            "content encryption must be A256GCM",
        ));
    }
    if header.get("kid").is_some_and(|kid| !kid.is_string()) {
        return Err(JoseError::InvalidToken("malformed kid"));
    }
    let encrypted_key = jwe_part(key_b64)?;
    let iv = jwe_part(iv_b64)?;
    let ciphertext = jwe_part(ciphertext_b64)?;
    let tag = jwe_part(tag_b64)?;
    if iv.len() != GCM_IV_LEN || tag.len() != GCM_TAG_LEN {
        return Err(JoseError::InvalidToken("malformed JWE"));
    }
    let key_len_ok = match alg {
        Alg::EcdhEsA256kw => encrypted_key.len() == A256KW_WRAPPED_CEK_LEN,
        _ => !encrypted_key.is_empty() && encrypted_key.len() <= RSA_MAX_WRAPPED_KEY_LEN,
    };
    if !key_len_ok {
        return Err(JoseError::InvalidToken("malformed JWE"));
    }
    if alg == Alg::EcdhEsA256kw {
        check_epk(&header)?;
    }
    Ok(JweParts {
        header_b64,
        header,
        alg,
        encrypted_key,
        iv,
        ciphertext,
        tag,
    })
}

impl JweParts<'_> {
    /// [`JweParts::open`] with the pure-Rust AES-256-GCM.
    #[cfg(feature = "rustcrypto")]
    pub(crate) fn open_pure(&self, cek: &[u8]) -> Result<Vec<u8>, JoseError> {
        crate::rustcrypto::gcm_open(
            cek,
            &self.iv,
            &self.ciphertext,
            &self.tag,
            self.header_b64.as_bytes(),
        )
    }

    /// AES-256-GCM decryption with `cek`; the tag authenticates the
    /// protected header (as it appears in the token) and the ciphertext.
    #[cfg(feature = "openssl")]
    pub(crate) fn open(&self, cek: &[u8]) -> Result<Vec<u8>, josekit::JoseError> {
        josekit::jwe::enc::A256GCM.decrypt(
            cek,
            Some(&self.iv),
            &self.ciphertext,
            self.header_b64.as_bytes(),
            Some(&self.tag),
        )
    }
}

#[cfg(all(test, feature = "openssl"))]
mod tests;
