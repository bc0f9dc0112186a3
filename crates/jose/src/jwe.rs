//! Compact JWE: encryption to a recipient's public key (RSA-OAEP-256 or
//! ECDH-ES+A256KW, always A256GCM), decryption with Gatehouse's own private
//! keys, direct symmetric encryption (`alg: dir`), and encryption under a
//! caller-chosen content-encryption key.

use std::borrow::Borrow;

#[cfg(feature = "openssl")]
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
#[cfg(feature = "openssl")]
use base64::Engine as _;
#[cfg(feature = "openssl")]
use josekit::jwe::enc::A256GCM;
#[cfg(feature = "openssl")]
use josekit::jwe::{self, JweContentEncryption as _, JweEncrypter, JweHeader};
#[cfg(feature = "openssl")]
use josekit::JoseError as JosekitError;
#[cfg(feature = "openssl")]
use rand::rngs::OsRng;
#[cfg(feature = "openssl")]
use rand::RngCore;
use serde_json::{Map, Value};
#[cfg(feature = "openssl")]
use zeroize::Zeroizing;

use crate::checks::split_jwe;
#[cfg(feature = "openssl")]
use crate::checks::{decode_header, jwe_part, ENC_A256GCM, GCM_IV_LEN, GCM_TAG_LEN, MAX_TOKEN_LEN};
#[cfg(feature = "openssl")]
use crate::jwk::PublicOp;
use crate::key::PrivateOp;
#[cfg(feature = "openssl")]
use crate::{b64, ec, shorten, PublicKey};
use crate::{JoseError, PrivateKey};

#[cfg(feature = "openssl")]
/// JWE header members that Gatehouse sets itself or that change processing,
/// so `encrypt` does not take them from `extra_header`.
const RESERVED_JWE_HEADER: &[&str] = &[
    "alg", "enc", "zip", "crit", "kid", "cty", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c",
    "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256",
];

#[cfg(feature = "openssl")]
/// Encrypt `payload` to `recipient` as a compact JWE: the recipient's alg
/// (RSA-OAEP-256 or ECDH-ES+A256KW), `enc` A256GCM, `kid` = the recipient's
/// kid if it has one, `cty` if given (pass "JWT" for a nested token), and the
/// `extra_header` members (not marked critical; string values only, and
/// members Gatehouse sets or that change processing, such as `zip` or
/// `crit`, are refused). No compression.
pub fn encrypt(
    payload: &str,
    recipient: &PublicKey,
    cty: Option<&str>,
    extra_header: Option<&Map<String, Value>>,
) -> Result<String, JoseError> {
    if let PublicOp::EcdhEs(encrypter) = &recipient.0.op {
        let cek = ec::random_cek()?;
        return encrypt_ecdh_es(payload, recipient, encrypter, &cek, cty, extra_header);
    }
    let (encrypter, header) = jwe_header(recipient, cty, extra_header)?;
    jwe::serialize_compact(payload.as_bytes(), &header, encrypter)
        .map_err(|err| JoseError::Crypto(format!("JWE encryption failed: {err}")))
}

#[cfg(feature = "openssl")]
/// Refuse the caller's header members that Gatehouse sets itself or that
/// change processing, and any that is not a string. Every encrypting path
/// calls this first, so all of them write the same headers and refuse the
/// same input: the fast ECDH-ES path writes the members as they are, while
/// josekit's header type-checks some names itself (`typ`, `iss`, `sub`,
/// `url`: strings; `nonce`: base64url), so the rule is the stricter of the
/// two for every name.
fn check_extra_header(extra_header: Option<&Map<String, Value>>) -> Result<(), JoseError> {
    for (name, value) in extra_header.into_iter().flatten() {
        if RESERVED_JWE_HEADER.contains(&name.as_str()) {
            return Err(JoseError::InvalidKey(format!(
                "JWE header member {} cannot be set by the caller",
                shorten(name)
            )));
        }
        let Value::String(text) = value else {
            return Err(JoseError::InvalidKey(format!(
                "JWE header member {} must be a string",
                shorten(name)
            )));
        };
        if name == "nonce" && URL_SAFE_NO_PAD.decode(text).is_err() {
            return Err(JoseError::InvalidKey(
                "JWE header member \"nonce\" must be base64url".to_owned(),
            ));
        }
    }
    Ok(())
}

#[cfg(feature = "openssl")]
/// A compact ECDH-ES+A256KW / A256GCM JWE of `payload` under `cek`
/// ([`crate::ec`]): the protected header (`alg`, `enc`, `kid`, `cty`, the
/// caller's members, `epk`) written directly as JSON, then AES-GCM with it
/// as additional data.
fn encrypt_ecdh_es(
    payload: &str,
    recipient: &PublicKey,
    encrypter: &ec::EcdhEsEncrypter,
    cek: &[u8; ec::CEK_LEN],
    cty: Option<&str>,
    extra_header: Option<&Map<String, Value>>,
) -> Result<String, JoseError> {
    check_extra_header(extra_header)?;
    let unencodable = |_| JoseError::InvalidKey("unencodable JWE header".to_owned());
    let wrapped = encrypter.wrap(cek)?;
    let mut header = Vec::with_capacity(256);
    header.extend_from_slice(br#"{"alg":"ECDH-ES+A256KW","enc":"A256GCM""#);
    if let Some(kid) = recipient.kid() {
        header.extend_from_slice(br#","kid":"#);
        serde_json::to_writer(&mut header, kid).map_err(unencodable)?;
    }
    if let Some(cty) = cty {
        header.extend_from_slice(br#","cty":"#);
        serde_json::to_writer(&mut header, cty).map_err(unencodable)?;
    }
    for (name, value) in extra_header.into_iter().flatten() {
        header.push(b',');
        serde_json::to_writer(&mut header, name).map_err(unencodable)?;
        header.push(b':');
        serde_json::to_writer(&mut header, value).map_err(unencodable)?;
    }
    header.extend_from_slice(br#","epk":{"kty":"EC","crv":"P-256","x":""#);
    header.extend_from_slice(b64(wrapped.epk_x).as_bytes());
    header.extend_from_slice(br#"","y":""#);
    header.extend_from_slice(b64(wrapped.epk_y).as_bytes());
    header.extend_from_slice(br#""}}"#);
    compact_jwe(&header, &wrapped.encrypted_key, cek, payload)
}

#[cfg(feature = "openssl")]
/// The compact serialization (RFC 7516 7.1) of a JWE with protected header
/// `header` (JSON text), wrapped key `encrypted_key` (empty for `dir`), and
/// `payload` sealed with A256GCM under `cek` and a fresh IV.
fn compact_jwe(
    header: &[u8],
    encrypted_key: &[u8],
    cek: &[u8],
    payload: &str,
) -> Result<String, JoseError> {
    let iv = ec::random_iv()?;
    let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 160);
    URL_SAFE_NO_PAD.encode_string(header, &mut token);
    let (ciphertext, tag) = ec::gcm_seal(cek, &iv, payload.as_bytes(), token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(encrypted_key, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(iv, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(ciphertext, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut token);
    Ok(token)
}

#[cfg(feature = "openssl")]
/// The recipient's encrypter and the protected header of a JWE to it:
/// `alg`, `enc` A256GCM, `kid`, `cty` if given, and the caller's members
/// (those Gatehouse sets or that change processing are refused).
fn jwe_header<'a>(
    recipient: &'a PublicKey,
    cty: Option<&str>,
    extra_header: Option<&Map<String, Value>>,
) -> Result<(&'a dyn JweEncrypter, JweHeader), JoseError> {
    let PublicOp::Encrypt(encrypter) = &recipient.0.op else {
        return Err(JoseError::InvalidKey(format!(
            "{} keys cannot encrypt",
            recipient.0.alg
        )));
    };
    let mut header = Map::new();
    header.insert("alg".into(), recipient.0.alg.as_str().into());
    header.insert("enc".into(), ENC_A256GCM.into());
    if let Some(kid) = &recipient.0.kid {
        header.insert("kid".into(), kid.as_str().into());
    }
    if let Some(cty) = cty {
        header.insert("cty".into(), cty.into());
    }
    check_extra_header(extra_header)?;
    for (name, value) in extra_header.into_iter().flatten() {
        header.insert(name.clone(), value.clone());
    }
    let header = JweHeader::from_map(header)
        .map_err(|_| JoseError::InvalidKey("JWE header member has the wrong type".to_owned()))?;
    Ok((encrypter.as_ref(), header))
}

#[cfg(feature = "openssl")]
/// Encrypt `payload` for Gatehouse itself as a compact JWE with direct
/// symmetric encryption (RFC 7518 4.5, `alg: dir`, `enc: A256GCM`): the key
/// is the content-encryption key, so there is no key agreement or wrapping,
/// and the encrypted-key part is empty. For tokens Gatehouse is both sender
/// and only recipient of. Header rules as in [`encrypt`].
pub fn encrypt_dir(
    payload: &str,
    key: &[u8],
    kid: &str,
    cty: Option<&str>,
    extra_header: Option<&Map<String, Value>>,
) -> Result<String, JoseError> {
    check_extra_header(extra_header)?;
    let mut header = Map::new();
    header.insert("alg".into(), "dir".into());
    header.insert("enc".into(), ENC_A256GCM.into());
    header.insert("kid".into(), kid.into());
    if let Some(cty) = cty {
        header.insert("cty".into(), cty.into());
    }
    for (name, value) in extra_header.into_iter().flatten() {
        header.insert(name.clone(), value.clone());
    }
    let header = serde_json::to_vec(&header)
        .map_err(|_| JoseError::InvalidKey("unencodable JWE header".to_owned()))?;
    compact_jwe(&header, &[], key, payload)
}

#[cfg(feature = "openssl")]
/// Decrypt a compact JWE made by [`encrypt_dir`]. `key_for` gets the
/// header's `kid` and returns the key, if it is one of Gatehouse's. The
/// same refusals as [`decrypt`], plus: `alg` must be `dir` and the
/// encrypted-key part empty. Returns the header and the plaintext.
pub fn decrypt_dir<F, K>(
    token: &str,
    key_for: F,
) -> Result<(Map<String, Value>, Vec<u8>), JoseError>
where
    F: Fn(&str) -> Option<K>,
    K: AsRef<[u8]>,
{
    if token.len() > MAX_TOKEN_LEN {
        return Err(JoseError::InvalidToken("token too large"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, "", iv_b64, ciphertext_b64, tag_b64] = parts[..] else {
        return Err(JoseError::InvalidToken(
            "not a compact JWE with direct encryption",
        ));
    };
    let header = decode_header(header_b64)?;
    if header.contains_key("zip") || header.contains_key("crit") {
        return Err(JoseError::InvalidToken("zip and crit are not accepted"));
    }
    if header.get("alg").and_then(Value::as_str) != Some("dir") {
        return Err(JoseError::InvalidToken("algorithm not allowed"));
    }
    if header.get("enc").and_then(Value::as_str) != Some(ENC_A256GCM) {
        return Err(JoseError::InvalidToken(
            "content encryption must be A256GCM",
        ));
    }
    let key = header
        .get("kid")
        .and_then(Value::as_str)
        .and_then(&key_for)
        .ok_or(JoseError::InvalidToken("no decryption key for this kid"))?;
    let iv = jwe_part(iv_b64)?;
    let ciphertext = jwe_part(ciphertext_b64)?;
    let tag = jwe_part(tag_b64)?;
    if iv.len() != GCM_IV_LEN || tag.len() != GCM_TAG_LEN {
        return Err(JoseError::InvalidToken("malformed JWE"));
    }
    let plaintext = A256GCM
        .decrypt(
            key.as_ref(),
            Some(&iv),
            &ciphertext,
            header_b64.as_bytes(),
            Some(&tag),
        )
        .map_err(|_| JoseError::InvalidToken("decryption failed"))?;
    Ok((header, plaintext))
}

/// Decrypt a compact JWE addressed to one of Gatehouse's own encryption
/// keys. `lookup` gets the header `kid` (or `None` if the token has none)
/// and returns the candidate keys as anything iterable over `PrivateKey`,
/// `&PrivateKey` or `Arc<PrivateKey>` (an `Option` for a kid map, a `Vec`
/// for "all current keys"); those whose alg matches the header are tried in
/// order. Returns the header and the plaintext.
///
/// Refused before any private-key operation: everything
/// [`crate::checks`] refuses (tokens over 16 KiB, `zip`, `crit`, an alg
/// other than RSA-OAEP-256 / ECDH-ES+A256KW, an enc other than A256GCM, an
/// ECDH-ES ephemeral key that is not a P-256 point, parts of the wrong
/// length).
pub fn decrypt<F, I>(token: &str, lookup: F) -> Result<(Map<String, Value>, Vec<u8>), JoseError>
where
    F: Fn(Option<&str>) -> I,
    I: IntoIterator,
    I::Item: Borrow<PrivateKey>,
{
    let parts = split_jwe(token)?;
    let kid = parts.header.get("kid").and_then(Value::as_str);
    // josekit's form of the header, built only when a josekit decrypter
    // is tried (the pure backend reads the header as parsed by serde_json).
    #[cfg(feature = "openssl")]
    let mut josekit_header: Option<JweHeader> = None;

    let mut tried = false;
    for candidate in lookup(kid) {
        let key: &PrivateKey = candidate.borrow();
        if key.alg() != parts.alg {
            continue;
        }
        match &key.0.op {
            #[cfg(feature = "openssl")]
            PrivateOp::Decrypt(decrypter) => {
                tried = true;
                let header = match josekit_header.take() {
                    Some(header) => header,
                    None => JweHeader::from_map(parts.header.clone())
                        .map_err(|_| JoseError::InvalidToken("malformed header"))?,
                };
                // RFC 7516 §11.5: if unwrapping the CEK fails, go on with a
                // random CEK so a bad wrapped key and a bad ciphertext fail
                // alike.
                let cek = Zeroizing::new(
                    match decrypter.decrypt(Some(&parts.encrypted_key), &A256GCM, &header) {
                        Ok(cek) if cek.len() == A256GCM.key_len() => cek.into_owned(),
                        _ => {
                            let mut random = vec![0u8; A256GCM.key_len()];
                            OsRng.fill_bytes(&mut random);
                            random
                        }
                    },
                );
                if let Ok(plaintext) = parts.open(&cek) {
                    return Ok((parts.header, plaintext));
                }
                josekit_header = Some(header);
            }
            #[cfg(feature = "rustcrypto")]
            PrivateOp::PureEcdh(ecdh) => {
                tried = true;
                let cek = ecdh.unwrap_cek(&parts.header, &parts.encrypted_key);
                if let Ok(plaintext) = parts.open_pure(cek.as_ref()) {
                    return Ok((parts.header, plaintext));
                }
            }
            #[cfg(feature = "openssl")]
            PrivateOp::Sign(_) => {}
        }
    }
    Err(JoseError::InvalidToken(if tried {
        "decryption failed"
    } else {
        "no decryption key for this kid and algorithm"
    }))
}

#[cfg(feature = "openssl")]
/// Encrypt `payload` to `recipient` exactly as [`encrypt`] does (same
/// header rules, same key wrapping), except that the content-encryption
/// key is the caller's `cek` instead of a random one. The recipient
/// unwraps and decrypts as usual; whoever can derive `cek` again opens the
/// token without the recipient's private key ([`decrypt_with_cek`]). Use
/// each `cek` for one token only.
pub fn encrypt_with_cek(
    payload: &str,
    recipient: &PublicKey,
    cek: &[u8],
    cty: Option<&str>,
    extra_header: Option<&Map<String, Value>>,
) -> Result<String, JoseError> {
    if let PublicOp::EcdhEs(encrypter) = &recipient.0.op {
        let cek: &[u8; ec::CEK_LEN] = cek.try_into().map_err(|_| {
            JoseError::InvalidKey("content-encryption key must be 256 bits".to_owned())
        })?;
        return encrypt_ecdh_es(payload, recipient, encrypter, cek, cty, extra_header);
    }
    let crypto = |err: JosekitError| JoseError::Crypto(format!("JWE encryption failed: {err}"));
    let (encrypter, in_header) = jwe_header(recipient, cty, extra_header)?;
    // The same steps as josekit's compact serialization: ask the algorithm
    // for a CEK of its own (only direct key agreement has one), then wrap
    // ours; ECDH-ES adds its ephemeral key to the output header.
    let mut out_header = in_header.clone();
    if encrypter
        .compute_content_encryption_key(&A256GCM, &in_header, &mut out_header)
        .map_err(crypto)?
        .is_some()
    {
        return Err(JoseError::InvalidKey(format!(
            "{} does not wrap a content-encryption key",
            recipient.0.alg
        )));
    }
    let encrypted_key = encrypter
        .encrypt(cek, &in_header, &mut out_header)
        .map_err(crypto)?
        .ok_or_else(|| JoseError::Crypto("JWE encryption gave no wrapped key".to_owned()))?;
    let header = serde_json::to_vec(out_header.claims_set())
        .map_err(|_| JoseError::InvalidKey("unencodable JWE header".to_owned()))?;
    compact_jwe(&header, &encrypted_key, cek, payload)
}

#[cfg(feature = "openssl")]
/// Decrypt a compact JWE made by [`encrypt_with_cek`] with its
/// content-encryption key `cek`; the wrapped key is not used. The same
/// refusals as [`decrypt`]. The AES-GCM tag authenticates the protected
/// header and the ciphertext, so any change to either (a header copied
/// onto another body, a made-up body) fails. Returns the header and the
/// plaintext.
pub fn decrypt_with_cek(
    token: &str,
    cek: &[u8],
) -> Result<(Map<String, Value>, Vec<u8>), JoseError> {
    let parts = split_jwe(token)?;
    let plaintext = parts
        .open(cek)
        .map_err(|_| JoseError::InvalidToken("decryption failed"))?;
    Ok((parts.header, plaintext))
}

#[cfg(all(test, feature = "openssl"))]
mod tests;
