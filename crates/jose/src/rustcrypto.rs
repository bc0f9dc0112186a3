//! The pure-Rust verifying side (feature `rustcrypto`): ES256, RS256/384/512,
//! PS256/384/512 and EdDSA signature verification, and ECDH-ES+A256KW /
//! A256GCM decryption with a P-256 private key. RSA here is public-key
//! operations only (signature verification), never RSA private-key
//! operations (RUSTSEC-2023-0071); RSA-OAEP decryption and ES384/ES512
//! stay on the OpenSSL backend and are refused clearly.

use aes::cipher::{BlockDecrypt, KeyInit};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::kdf::concat_kdf;
use crate::{Alg, JoseError};

/// The refusal of RSA-OAEP-256 decryption on this backend.
pub(crate) const RSA_OAEP_UNSUPPORTED: &str = "RSA-OAEP-256 decryption needs the openssl backend";

/// A ready pure-Rust signature verifier.
pub(crate) enum PureVerifier {
    Es256(p256::ecdsa::VerifyingKey),
    Pkcs1(rsa::RsaPublicKey, Alg),
    Pss(rsa::RsaPublicKey, Alg),
    Ed25519(ed25519_dalek::VerifyingKey),
}

pub(crate) fn unsupported(alg: Alg) -> JoseError {
    JoseError::Unsupported(match alg {
        Alg::ES384 => "ES384 verification needs the openssl backend",
        Alg::ES512 => "ES512 verification needs the openssl backend",
        Alg::RsaOaep256 => RSA_OAEP_UNSUPPORTED,
        _ => "this algorithm needs the openssl backend",
    })
}

fn member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, JoseError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
        .ok_or_else(|| JoseError::InvalidKey(format!("JWK member {name} is required")))
}

/// The uncompressed SEC1 form of a P-256 point; `None` unless both
/// coordinates are 32 bytes (a 31 + 33 split would name another point).
fn sec1_point(x: &[u8], y: &[u8]) -> Option<Vec<u8>> {
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    Some(point)
}

impl PureVerifier {
    /// The verifier for `alg` from an already validated public JWK.
    pub(crate) fn new(alg: Alg, jwk: &Map<String, Value>) -> Result<PureVerifier, JoseError> {
        let bad = || JoseError::InvalidKey(format!("JWK is not a usable {alg} key"));
        let rsa_key = || {
            let n = rsa::BigUint::from_bytes_be(&member(jwk, "n")?);
            let e = rsa::BigUint::from_bytes_be(&member(jwk, "e")?);
            rsa::RsaPublicKey::new_with_max_size(n, e, crate::key::RSA_MAX_BITS as usize)
                .map_err(|_| bad())
        };
        Ok(match alg {
            Alg::ES256 => {
                let point = sec1_point(&member(jwk, "x")?, &member(jwk, "y")?).ok_or_else(bad)?;
                PureVerifier::Es256(
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(|_| bad())?,
                )
            }
            Alg::RS256 | Alg::RS384 | Alg::RS512 => PureVerifier::Pkcs1(rsa_key()?, alg),
            Alg::PS256 | Alg::PS384 | Alg::PS512 => PureVerifier::Pss(rsa_key()?, alg),
            Alg::EdDSA => {
                let x: [u8; 32] = member(jwk, "x")?.try_into().map_err(|_| bad())?;
                PureVerifier::Ed25519(
                    ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| bad())?,
                )
            }
            Alg::ES384 | Alg::ES512 | Alg::RsaOaep256 | Alg::EcdhEsA256kw => {
                return Err(unsupported(alg))
            }
        })
    }

    /// Whether `signature` is a valid signature of `input`.
    pub(crate) fn verify(&self, input: &[u8], signature: &[u8]) -> bool {
        use rsa::signature::Verifier as _;
        match self {
            PureVerifier::Es256(key) => {
                p256::ecdsa::Signature::from_slice(signature).is_ok_and(|sig| {
                    p256::ecdsa::signature::Verifier::verify(key, input, &sig).is_ok()
                })
            }
            PureVerifier::Pkcs1(key, alg) => {
                use rsa::pkcs1v15::{Signature, VerifyingKey};
                let Ok(sig) = Signature::try_from(signature) else {
                    return false;
                };
                let key = key.clone();
                match alg {
                    Alg::RS256 => VerifyingKey::<rsa::sha2::Sha256>::new(key).verify(input, &sig),
                    Alg::RS384 => VerifyingKey::<rsa::sha2::Sha384>::new(key).verify(input, &sig),
                    _ => VerifyingKey::<rsa::sha2::Sha512>::new(key).verify(input, &sig),
                }
                .is_ok()
            }
            PureVerifier::Pss(key, alg) => {
                use rsa::pss::{Signature, VerifyingKey};
                let Ok(sig) = Signature::try_from(signature) else {
                    return false;
                };
                let key = key.clone();
                match alg {
                    Alg::PS256 => VerifyingKey::<rsa::sha2::Sha256>::new(key).verify(input, &sig),
                    Alg::PS384 => VerifyingKey::<rsa::sha2::Sha384>::new(key).verify(input, &sig),
                    _ => VerifyingKey::<rsa::sha2::Sha512>::new(key).verify(input, &sig),
                }
                .is_ok()
            }
            PureVerifier::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(input, &sig).is_ok()),
        }
    }
}

/// A P-256 private key for ECDH-ES+A256KW, on the pure backend.
pub(crate) struct EcdhKey(p256::SecretKey);

impl EcdhKey {
    /// The key of a private EC JWK (`d`, and `x`, `y` that must match it).
    /// Returns the key and the matching public JWK members.
    pub(crate) fn from_jwk(jwk: &Map<String, Value>) -> Result<EcdhKey, JoseError> {
        let bad = || JoseError::InvalidKey("private JWK is not a usable P-256 key".to_owned());
        if jwk.get("crv").and_then(Value::as_str) != Some("P-256") {
            return Err(bad());
        }
        let d = Zeroizing::new(member(jwk, "d")?);
        let secret = p256::SecretKey::from_slice(&d).map_err(|_| bad())?;
        let point = sec1_point(&member(jwk, "x")?, &member(jwk, "y")?).ok_or_else(bad)?;
        let public = p256::PublicKey::from_sec1_bytes(&point).map_err(|_| bad())?;
        if secret.public_key() != public {
            return Err(JoseError::InvalidKey(
                "private JWK's x and y do not match its d".to_owned(),
            ));
        }
        Ok(EcdhKey(secret))
    }

    /// The content-encryption key of an ECDH-ES+A256KW JWE whose header
    /// passed the structural checks (so `epk` is a P-256 point). On any
    /// failure, a random key (RFC 7516 11.5), so the caller's AES-GCM
    /// check fails as a bad ciphertext would.
    pub(crate) fn unwrap_cek(
        &self,
        header: &Map<String, Value>,
        encrypted_key: &[u8],
    ) -> Zeroizing<[u8; 32]> {
        self.try_unwrap(header, encrypted_key).unwrap_or_else(|| {
            let mut random = Zeroizing::new([0u8; 32]);
            OsRng.fill_bytes(random.as_mut());
            random
        })
    }

    fn try_unwrap(
        &self,
        header: &Map<String, Value>,
        encrypted_key: &[u8],
    ) -> Option<Zeroizing<[u8; 32]>> {
        let epk = header.get("epk")?.as_object()?;
        let coordinate = |name: &str| {
            epk.get(name)
                .and_then(Value::as_str)
                .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
        };
        let point = sec1_point(&coordinate("x")?, &coordinate("y")?)?;
        let epk = p256::PublicKey::from_sec1_bytes(&point).ok()?;
        let shared = p256::ecdh::diffie_hellman(self.0.to_nonzero_scalar(), epk.as_affine());
        let party = |name: &str| match header.get(name) {
            None => Some(Vec::new()),
            Some(v) => v.as_str().and_then(|t| URL_SAFE_NO_PAD.decode(t).ok()),
        };
        let kek = concat_kdf(
            shared.raw_secret_bytes().as_slice(),
            Alg::EcdhEsA256kw.as_str(),
            &party("apu")?,
            &party("apv")?,
            32,
        );
        let cek = aes256_key_unwrap(&kek, encrypted_key)?;
        Some(Zeroizing::new(cek.as_slice().try_into().ok()?))
    }
}

/// AES-256 key unwrap (RFC 3394 2.2.2, the A256KW of RFC 7518 4.4);
/// `None` if the integrity check fails.
pub(crate) fn aes256_key_unwrap(kek: &[u8], wrapped: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    const IV: [u8; 8] = [0xA6; 8];
    if !wrapped.len().is_multiple_of(8) || wrapped.len() < 24 {
        return None;
    }
    let cipher = aes::Aes256::new_from_slice(kek).ok()?;
    let n = wrapped.len() / 8 - 1;
    let mut a = [0u8; 8];
    a.copy_from_slice(&wrapped[..8]);
    let mut r = Zeroizing::new(wrapped[8..].to_vec());
    for j in (0..6u64).rev() {
        for i in (1..=n).rev() {
            let t = (n as u64) * j + i as u64;
            let mut block = aes::Block::default();
            for (k, byte) in a.iter().enumerate() {
                block[k] = byte ^ t.to_be_bytes()[k];
            }
            block[8..].copy_from_slice(&r[(i - 1) * 8..i * 8]);
            cipher.decrypt_block(&mut block);
            a.copy_from_slice(&block[..8]);
            r[(i - 1) * 8..i * 8].copy_from_slice(&block[8..]);
        }
    }
    // The integrity check value, compared in constant time.
    bool::from(a.ct_eq(&IV)).then_some(r)
}

/// A256GCM decryption: `ciphertext` and `tag` under `cek` and `iv`, with
/// the protected header's base64url text as additional data.
pub(crate) fn gcm_open(
    cek: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, JoseError> {
    const FAILED: JoseError = JoseError::InvalidToken("decryption failed");
    let cipher = Aes256Gcm::new_from_slice(cek).map_err(|_| FAILED)?;
    if iv.len() != 12 {
        return Err(FAILED);
    }
    let mut msg = Vec::with_capacity(ciphertext.len() + tag.len());
    msg.extend_from_slice(ciphertext);
    msg.extend_from_slice(tag);
    cipher
        .decrypt(Nonce::from_slice(iv), Payload { msg: &msg, aad })
        .map_err(|_| FAILED)
}

#[cfg(all(test, feature = "openssl"))]
mod tests;
