//! Public keys: JWK parsing with every refusal (private or symmetric keys,
//! wrong type or curve, weak RSA moduli, points off P-256), RFC 7638
//! thumbprints, and the ready verifier or encrypter behind each key.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
#[cfg(feature = "openssl")]
use josekit::jwe::{self, JweEncrypter};
#[cfg(feature = "openssl")]
use josekit::jwk::Jwk;
#[cfg(feature = "openssl")]
use josekit::jws::{self, JwsVerifier};
#[cfg(feature = "openssl")]
use josekit::JoseError as JosekitError;
#[cfg(feature = "openssl")]
use openssl::bn::BigNumContext;
#[cfg(feature = "openssl")]
use openssl::ec::{EcGroup, EcPoint};
#[cfg(feature = "openssl")]
use openssl::nid::Nid;
#[cfg(feature = "openssl")]
use openssl::pkey::{Id, PKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::alg::KeyKind;
use crate::checks::is_p256_point;
use crate::key::{RSA_MAX_BITS, RSA_MIN_BITS};
use crate::{b64, shorten, Alg, Backend, JoseError, KeyUse};

/// Largest JWK JSON text accepted.
const MAX_JWK_LEN: usize = 16 * 1024;
/// JWK members that only a private or symmetric key has.
pub(crate) const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Wipe the private members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`)
/// of a parsed JWK in place: every string in them is overwritten with
/// zeros and left empty.
pub(crate) fn wipe_private_members(jwk: &mut Map<String, Value>) {
    fn wipe(value: &mut Value) {
        match value {
            Value::String(text) => zeroize::Zeroize::zeroize(text),
            Value::Array(items) => items.iter_mut().for_each(wipe),
            Value::Object(members) => members.values_mut().for_each(wipe),
            _ => {}
        }
    }
    for name in PRIVATE_JWK_MEMBERS {
        if let Some(value) = jwk.get_mut(*name) {
            wipe(value);
        }
    }
}

/// A parsed private JWK whose private members are wiped from memory when
/// it is dropped, on every path.
///
/// What this cannot reach: the caller's JSON text (borrowed), and the
/// copies serde_json makes while parsing (a string with escapes goes
/// through its scratch buffer, and the members parsed before a syntax
/// error are dropped unwiped inside serde_json).
#[cfg(feature = "rustcrypto")]
pub(crate) struct PrivateJwkMap(pub(crate) Map<String, Value>);

#[cfg(feature = "rustcrypto")]
impl Drop for PrivateJwkMap {
    fn drop(&mut self) {
        wipe_private_members(&mut self.0);
    }
}

/// A josekit private JWK whose private members are wiped from memory when
/// it is dropped, on every path (josekit's `Jwk` does not wipe itself).
///
/// What this cannot reach: besides what [`PrivateJwkMap`] cannot, the
/// copies josekit makes inside `Jwk::from_bytes` (a JWK it refuses is
/// dropped there) and the bytes it decodes while building an OpenSSL key
/// from the JWK. The DER it returns is the caller's to wipe, and OpenSSL
/// wipes its own keys when freed.
#[cfg(feature = "openssl")]
pub(crate) struct PrivateJwk(Jwk);

#[cfg(feature = "openssl")]
impl PrivateJwk {
    /// Parse a JWK with josekit.
    pub(crate) fn from_json(json: &str) -> Result<PrivateJwk, JosekitError> {
        Jwk::from_bytes(json.as_bytes()).map(PrivateJwk)
    }
}

#[cfg(feature = "openssl")]
impl std::ops::Deref for PrivateJwk {
    type Target = Jwk;

    fn deref(&self) -> &Jwk {
        &self.0
    }
}

#[cfg(feature = "openssl")]
impl Drop for PrivateJwk {
    fn drop(&mut self) {
        let jwk = std::mem::replace(&mut self.0, Jwk::new(""));
        let mut members: Map<String, Value> = jwk.into();
        wipe_private_members(&mut members);
    }
}

/// The ready-made josekit object behind a public key.
pub(crate) enum PublicOp {
    #[cfg(feature = "openssl")]
    Verify(Box<dyn JwsVerifier>),
    #[cfg(feature = "openssl")]
    Encrypt(Box<dyn JweEncrypter>),
    /// ECDH-ES+A256KW to a P-256 key held as an OpenSSL key ([`crate::ec`]).
    #[cfg(feature = "openssl")]
    EcdhEs(Box<crate::ec::EcdhEsEncrypter>),
    /// An encryption key known by its public part only: built without
    /// OpenSSL, nothing can encrypt to it (a decryption key's public half).
    #[cfg(not(feature = "openssl"))]
    PublicOnly,
    /// A pure-Rust signature verifier ([`Backend::RustCrypto`]).
    #[cfg(feature = "rustcrypto")]
    Pure(Box<crate::rustcrypto::PureVerifier>),
}

pub(crate) struct PublicInner {
    pub(crate) alg: Alg,
    pub(crate) kid: Option<String>,
    /// Public members plus kid/use/alg; nothing else from the input survives.
    pub(crate) jwk: Map<String, Value>,
    thumbprint: String,
    pub(crate) op: PublicOp,
}

/// A validated public JWK with a ready josekit verifier (signature algs) or
/// encrypter (encryption algs). Cheap to clone (shared).
#[derive(Clone)]
pub struct PublicKey(pub(crate) Arc<PublicInner>);

/// Read a string member of a JWK; `None` if absent, an error if not a string.
fn jwk_str<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, JoseError> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JoseError::InvalidKey(format!(
            "JWK member {name} must be a string"
        ))),
    }
}

/// Read a required base64url JWK member: its text and decoded bytes.
fn jwk_b64<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<(&'a str, Vec<u8>), JoseError> {
    let text = jwk_str(jwk, name)?
        .ok_or_else(|| JoseError::InvalidKey(format!("JWK member {name} is required")))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JoseError::InvalidKey(format!("JWK member {name} is not base64url")))?;
    Ok((text, bytes))
}

/// The bit length of a big-endian unsigned integer (leading zero bytes
/// and bits ignored; 0 for zero).
fn bit_len(bytes: &[u8]) -> usize {
    match bytes.iter().position(|&b| b != 0) {
        None => 0,
        Some(first) => (bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize,
    }
}

/// Whether `x`, `y` are the affine coordinates of a point on the curve of
/// `kind` (P-256 through the shared check; P-384 and P-521 through
/// OpenSSL's point decoding, which refuses points off the curve).
#[cfg(feature = "openssl")]
fn is_ec_point(kind: KeyKind, x: &[u8], y: &[u8]) -> bool {
    let (nid, len) = match kind {
        KeyKind::P256 => return is_p256_point(x, y),
        KeyKind::P384 => (Nid::SECP384R1, 48),
        KeyKind::P521 => (Nid::SECP521R1, 66),
        KeyKind::Rsa | KeyKind::Ed25519 => return false,
    };
    if x.len() != len || y.len() != len {
        return false;
    }
    let (Ok(group), Ok(mut ctx)) = (EcGroup::from_curve_name(nid), BigNumContext::new()) else {
        return false;
    };
    let mut encoded = Vec::with_capacity(1 + 2 * len);
    encoded.push(0x04);
    encoded.extend_from_slice(x);
    encoded.extend_from_slice(y);
    EcPoint::from_bytes(&group, &encoded, &mut ctx)
        .and_then(|point| point.is_on_curve(&group, &mut ctx))
        .unwrap_or(false)
}

/// Without OpenSSL only P-256 points are checked: P-384 and P-521 keys
/// (ES384, ES512) are refused before this, as unsupported.
#[cfg(not(feature = "openssl"))]
fn is_ec_point(kind: KeyKind, x: &[u8], y: &[u8]) -> bool {
    kind == KeyKind::P256 && is_p256_point(x, y)
}

/// Whether `x` is an Ed25519 public key: a point ed25519-dalek decodes
/// that is not of small order (a small-order key would accept forged
/// signatures under lax verification rules), and, built with OpenSSL,
/// 32 bytes OpenSSL accepts. One rule for both backends.
fn is_ed25519_key(x: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 32]>::try_from(x) else {
        return false;
    };
    let decoded = ed25519_dalek::VerifyingKey::from_bytes(&bytes);
    #[cfg(feature = "openssl")]
    if PKey::public_key_from_raw_bytes(x, Id::ED25519).is_err() {
        return false;
    }
    decoded.is_ok_and(|key| !key.is_weak())
}

impl PublicKey {
    /// Parse a public JWK that carries its own `alg`.
    pub fn from_jwk_json(json: &str) -> Result<PublicKey, JoseError> {
        Self::from_jwk_json_with_alg(json, None)
    }

    /// Parse a public JWK; its `alg` member wins, else `alg` is used, else
    /// it is refused. Private or symmetric keys, a `use` that contradicts the
    /// algorithm, the wrong key type or curve, RSA moduli outside 2048..=8192
    /// bits or even, RSA exponents that are even, below 3 or above
    /// 2^33 - 1, EC points off their curve and small-order Ed25519 points
    /// are all refused with `InvalidKey`, on both backends.
    pub fn from_jwk_json_with_alg(json: &str, alg: Option<Alg>) -> Result<PublicKey, JoseError> {
        if json.len() > MAX_JWK_LEN {
            return Err(JoseError::InvalidKey("JWK is too large".to_owned()));
        }
        let value: Value = serde_json::from_str(json)
            .map_err(|_| JoseError::InvalidKey("JWK is not valid JSON".to_owned()))?;
        Self::from_jwk_value(&value, alg)
    }

    /// As [`PublicKey::from_jwk_json_with_alg`], for an already-parsed JWK
    /// (for example one element of a client's `jwks`).
    pub fn from_jwk_value(jwk: &Value, alg: Option<Alg>) -> Result<PublicKey, JoseError> {
        match jwk {
            Value::Object(map) => Self::from_jwk_map(map, alg, false, Backend::default()),
            _ => Err(JoseError::InvalidKey(
                "JWK must be a JSON object".to_owned(),
            )),
        }
    }

    /// As [`PublicKey::from_jwk_value`], for a key that only verifies
    /// signatures (an issuer's JWKS in a resource server): the
    /// verification-only algorithms ES384/512, RS384/512 and PS384/512
    /// are accepted too, as the JWK's `alg` or as `alg`.
    pub fn from_jwk_value_for_verification(
        jwk: &Value,
        alg: Option<Alg>,
    ) -> Result<PublicKey, JoseError> {
        Self::from_jwk_value_for_verification_with(jwk, alg, Backend::default())
    }

    /// As [`PublicKey::from_jwk_value_for_verification`], verifying with
    /// the chosen backend. On [`Backend::RustCrypto`], ES384 and ES512 keys
    /// are refused with [`JoseError::Unsupported`].
    pub fn from_jwk_value_for_verification_with(
        jwk: &Value,
        alg: Option<Alg>,
        backend: Backend,
    ) -> Result<PublicKey, JoseError> {
        match jwk {
            Value::Object(map) => Self::from_jwk_map(map, alg, true, backend),
            _ => Err(JoseError::InvalidKey(
                "JWK must be a JSON object".to_owned(),
            )),
        }
    }

    pub(crate) fn from_jwk_map(
        jwk: &Map<String, Value>,
        alg: Option<Alg>,
        verification: bool,
        backend: Backend,
    ) -> Result<PublicKey, JoseError> {
        if PRIVATE_JWK_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(JoseError::InvalidKey(
                "JWK contains private key members; only public keys are accepted".to_owned(),
            ));
        }
        let kty = jwk_str(jwk, "kty")?
            .ok_or_else(|| JoseError::InvalidKey("JWK member kty is required".to_owned()))?;
        if kty == "oct" {
            return Err(JoseError::InvalidKey(
                "symmetric (kty oct) keys are not accepted".to_owned(),
            ));
        }
        let alg = match jwk_str(jwk, "alg")? {
            Some(name) if verification => Alg::from_verification_name(name)?,
            Some(name) => name.parse::<Alg>()?,
            None => alg.ok_or_else(|| {
                JoseError::InvalidKey("JWK has no alg and none was given".to_owned())
            })?,
        };
        if alg.is_verify_only() && !verification {
            return Err(JoseError::InvalidKey(format!(
                "{alg} is accepted for verification only"
            )));
        }
        let kind = alg.kind();
        if kty != kind.kty() {
            return Err(JoseError::InvalidKey(format!(
                "{alg} needs a {} key, not kty {}",
                kind.kty(),
                shorten(kty)
            )));
        }
        if let Some(key_use) = jwk_str(jwk, "use")? {
            if key_use != alg.key_use().as_str() {
                return Err(JoseError::InvalidKey(format!(
                    "JWK use {} contradicts alg {alg}",
                    shorten(key_use)
                )));
            }
        }
        let kid = jwk_str(jwk, "kid")?.map(str::to_owned);

        // Rebuild the JWK from validated public members only.
        let mut clean = Map::new();
        clean.insert("kty".into(), kty.into());
        let canonical = match kind {
            KeyKind::Rsa => {
                let (n_text, n) = jwk_b64(jwk, "n")?;
                let (e_text, e) = jwk_b64(jwk, "e")?;
                let n_bits = bit_len(&n);
                if !(RSA_MIN_BITS as usize..=RSA_MAX_BITS as usize).contains(&n_bits) {
                    return Err(JoseError::InvalidKey(format!(
                        "RSA modulus must be {RSA_MIN_BITS} to {RSA_MAX_BITS} bits, not {n_bits}"
                    )));
                }
                // An odd modulus (a product of odd primes), and an odd
                // exponent of at least 3 and at most 2^33 - 1 (so below
                // the modulus): what the pure backend's rsa crate accepts,
                // checked here for both backends alike (OpenSSL takes an
                // even modulus).
                if n.last().is_none_or(|b| b & 1 == 0) {
                    return Err(JoseError::InvalidKey("RSA modulus is not valid".to_owned()));
                }
                let e_bits = bit_len(&e);
                let e_odd = e.last().is_some_and(|b| b & 1 == 1);
                if !(2..=33).contains(&e_bits) || !e_odd {
                    return Err(JoseError::InvalidKey(
                        "RSA exponent is not valid".to_owned(),
                    ));
                }
                clean.insert("n".into(), n_text.into());
                clean.insert("e".into(), e_text.into());
                format!(r#"{{"e":"{e_text}","kty":"RSA","n":"{n_text}"}}"#)
            }
            KeyKind::P256 | KeyKind::P384 | KeyKind::P521 => {
                // Without OpenSSL, ES384 and ES512 are refused before any
                // point check (there is nothing to verify them with).
                #[cfg(not(feature = "openssl"))]
                if kind != KeyKind::P256 {
                    return Err(crate::rustcrypto::unsupported(alg));
                }
                let crv = kind.crv();
                if jwk_str(jwk, "crv")? != Some(crv) {
                    return Err(JoseError::InvalidKey(format!("{alg} needs curve {crv}")));
                }
                let (x_text, x) = jwk_b64(jwk, "x")?;
                let (y_text, y) = jwk_b64(jwk, "y")?;
                if !is_ec_point(kind, &x, &y) {
                    return Err(JoseError::InvalidKey(format!(
                        "EC key is not a valid {crv} point"
                    )));
                }
                clean.insert("crv".into(), crv.into());
                clean.insert("x".into(), x_text.into());
                clean.insert("y".into(), y_text.into());
                format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x_text}","y":"{y_text}"}}"#)
            }
            KeyKind::Ed25519 => {
                if jwk_str(jwk, "crv")? != Some("Ed25519") {
                    return Err(JoseError::InvalidKey(format!("{alg} needs curve Ed25519")));
                }
                let (x_text, x) = jwk_b64(jwk, "x")?;
                if !is_ed25519_key(&x) {
                    return Err(JoseError::InvalidKey(
                        "OKP key is not a valid Ed25519 public key".to_owned(),
                    ));
                }
                clean.insert("crv".into(), "Ed25519".into());
                clean.insert("x".into(), x_text.into());
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x_text}"}}"#)
            }
        };
        if let Some(kid) = &kid {
            clean.insert("kid".into(), kid.as_str().into());
        }
        clean.insert("use".into(), alg.key_use().as_str().into());
        clean.insert("alg".into(), alg.as_str().into());

        // RFC 7638: SHA-256 over the required members in lexicographic order
        // with no whitespace. The values are validated base64url, so they
        // need no JSON escaping.
        let thumbprint = b64(Sha256::digest(canonical.as_bytes()));

        let op = match backend {
            #[cfg(feature = "openssl")]
            Backend::OpenSsl => Self::openssl_op(alg, &clean)
                .map_err(|_| JoseError::InvalidKey(format!("JWK is not a usable {alg} key")))?,
            #[cfg(not(feature = "openssl"))]
            Backend::RustCrypto if alg.key_use() == KeyUse::Enc => PublicOp::PublicOnly,
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => {
                PublicOp::Pure(Box::new(crate::rustcrypto::PureVerifier::new(alg, &clean)?))
            }
        };
        Ok(PublicKey(Arc::new(PublicInner {
            alg,
            kid,
            jwk: clean,
            thumbprint,
            op,
        })))
    }

    #[cfg(feature = "openssl")]
    fn josekit_op(alg: Alg, clean: &Map<String, Value>) -> Result<PublicOp, JosekitError> {
        let jwk = Jwk::from_map(clean.clone())?;
        Ok(match alg {
            Alg::RS256 => PublicOp::Verify(Box::new(jws::RS256.verifier_from_jwk(&jwk)?)),
            Alg::PS256 => PublicOp::Verify(Box::new(jws::PS256.verifier_from_jwk(&jwk)?)),
            Alg::ES256 => PublicOp::Verify(Box::new(jws::ES256.verifier_from_jwk(&jwk)?)),
            Alg::EdDSA => PublicOp::Verify(Box::new(jws::EdDSA.verifier_from_jwk(&jwk)?)),
            Alg::ES384 => PublicOp::Verify(Box::new(jws::ES384.verifier_from_jwk(&jwk)?)),
            Alg::ES512 => PublicOp::Verify(Box::new(jws::ES512.verifier_from_jwk(&jwk)?)),
            Alg::RS384 => PublicOp::Verify(Box::new(jws::RS384.verifier_from_jwk(&jwk)?)),
            Alg::RS512 => PublicOp::Verify(Box::new(jws::RS512.verifier_from_jwk(&jwk)?)),
            Alg::PS384 => PublicOp::Verify(Box::new(jws::PS384.verifier_from_jwk(&jwk)?)),
            Alg::PS512 => PublicOp::Verify(Box::new(jws::PS512.verifier_from_jwk(&jwk)?)),
            Alg::RsaOaep256 => {
                PublicOp::Encrypt(Box::new(jwe::RSA_OAEP_256.encrypter_from_jwk(&jwk)?))
            }
            Alg::EcdhEsA256kw => {
                return Err(JosekitError::InvalidKeyFormat(
                    std::io::Error::other("ECDH-ES keys are not josekit's").into(),
                ))
            }
        })
    }

    /// The OpenSSL-backed operation of a validated public JWK: ECDH-ES
    /// keys as OpenSSL keys for [`crate::ec`], the others through josekit.
    #[cfg(feature = "openssl")]
    fn openssl_op(alg: Alg, clean: &Map<String, Value>) -> Result<PublicOp, JoseError> {
        if alg == Alg::EcdhEsA256kw {
            let (_, x) = jwk_b64(clean, "x")?;
            let (_, y) = jwk_b64(clean, "y")?;
            let encrypter = crate::ec::EcdhEsEncrypter::new(&x, &y)?;
            return Ok(PublicOp::EcdhEs(Box::new(encrypter)));
        }
        Self::josekit_op(alg, clean).map_err(|_| JoseError::InvalidKey(String::new()))
    }

    pub fn kid(&self) -> Option<&str> {
        self.0.kid.as_deref()
    }

    pub fn alg(&self) -> Alg {
        self.0.alg
    }

    pub fn key_use(&self) -> KeyUse {
        self.0.alg.key_use()
    }

    /// The JWK: public members plus kid (if any), use and alg.
    pub fn jwk_json(&self) -> Value {
        Value::Object(self.0.jwk.clone())
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub fn thumbprint(&self) -> String {
        self.0.thumbprint.clone()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.0.kid)
            .field("alg", &self.0.alg)
            .field("thumbprint", &self.0.thumbprint)
            .finish()
    }
}

#[cfg(all(test, feature = "openssl"))]
mod tests;
