//! P-256 on OpenSSL with every key parsed once (feature `openssl`): the
//! ES256 signer and the ECDH-ES+A256KW key wrapping behind each access
//! token to a resource server, and the A256GCM sealing of every JWE we
//! make.
//!
//! Design choice: these call OpenSSL's primitives directly instead of
//! josekit, which rebuilds keys from JWK or DER and round-trips headers
//! through JSON maps on every token. What is left per token is what the
//! algorithms need (RFC 7518 3.4, 4.6, 4.4, 5.3): one ephemeral key (the
//! P-256 group built once), one point multiplication against the
//! recipient's point, held as an OpenSSL key since it was parsed (and
//! checked on the curve), one SHA-256 for the Concat KDF, one AES key
//! wrap, one ECDSA signature over a SHA-256 digest with a key opened once
//! (no DER: R and S are read directly), and AES-GCM through a cipher
//! fetched once. The low-level EC calls skip the EVP layer, which on
//! OpenSSL 3 copies every fresh ephemeral key into the provider and checks
//! the recipient's key again per token: that alone cost more than the
//! key agreement itself (docs/benchmarks.md §7).
//! Decryption stays on josekit, behind [`crate::checks`].

use std::sync::LazyLock;

use openssl::bn::{BigNum, BigNumContext};
use openssl::cipher::Cipher;
use openssl::cipher_ctx::{CipherCtx, CipherCtxFlags};
use openssl::ec::{EcKey, EcPoint, PointConversionForm};
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::pkey::{PKeyRef, Private, Public};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::checks::{GCM_IV_LEN, GCM_TAG_LEN};
use crate::kdf::a256kw_kek;
use crate::key::p256_group;
use crate::JoseError;

mod secret_point;
use secret_point::SecretPoint;

/// Length of a P-256 coordinate, scalar and shared secret.
const P256_LEN: usize = 32;
/// Length of the content-encryption key of A256GCM.
pub(crate) const CEK_LEN: usize = 32;
/// Length of a 256-bit key wrapped with AES key wrap (RFC 3394 adds 8 bytes).
const WRAPPED_CEK_LEN: usize = CEK_LEN + 8;

/// AES-256-GCM and AES-256 key wrap, fetched from the provider once
/// (a legacy `EVP_aes_256_gcm()` is fetched again on every use in
/// OpenSSL 3).
static AES_256_GCM: LazyLock<Result<Cipher, ErrorStack>> =
    LazyLock::new(|| Cipher::fetch(None, "AES-256-GCM", None));
static AES_256_WRAP: LazyLock<Result<Cipher, ErrorStack>> =
    LazyLock::new(|| Cipher::fetch(None, "AES-256-WRAP", None));

fn crypto(context: &'static str) -> impl Fn(ErrorStack) -> JoseError {
    move |err| JoseError::Crypto(format!("{context}: {err}"))
}

/// An ES256 signing key, opened once.
pub(crate) struct Es256Signer(EcKey<Private>);

impl Es256Signer {
    /// The signer of an opened P-256 private key.
    pub(crate) fn new(pkey: &PKeyRef<Private>) -> Result<Es256Signer, ErrorStack> {
        pkey.ec_key().map(Es256Signer)
    }

    /// The JWS signature of `input` (RFC 7518 3.4): ECDSA over its
    /// SHA-256, as R and S of 32 big-endian bytes each (not DER).
    pub(crate) fn sign(&self, input: &[u8]) -> Result<Vec<u8>, ErrorStack> {
        let digest = Sha256::digest(input);
        let signature = EcdsaSig::sign(&digest, &self.0)?;
        let mut raw = signature.r().to_vec_padded(P256_LEN as i32)?;
        raw.extend_from_slice(&signature.s().to_vec_padded(P256_LEN as i32)?);
        Ok(raw)
    }
}

/// A recipient's P-256 public key for ECDH-ES+A256KW, held as the OpenSSL
/// key the key agreement needs.
pub(crate) struct EcdhEsEncrypter(EcKey<Public>);

/// One ECDH-ES+A256KW key wrapping: the ephemeral public key's affine
/// coordinates (for the `epk` header member) and the wrapped CEK.
pub(crate) struct WrappedCek {
    pub(crate) epk_x: [u8; P256_LEN],
    pub(crate) epk_y: [u8; P256_LEN],
    pub(crate) encrypted_key: [u8; WRAPPED_CEK_LEN],
}

impl EcdhEsEncrypter {
    /// The encrypter of the P-256 point (`x`, `y`), which the caller has
    /// checked is on the curve; OpenSSL checks it again, once.
    pub(crate) fn new(x: &[u8], y: &[u8]) -> Result<EcdhEsEncrypter, JoseError> {
        let bad = || JoseError::InvalidKey("EC key is not a valid P-256 point".to_owned());
        if x.len() != P256_LEN || y.len() != P256_LEN {
            return Err(bad());
        }
        let group = p256_group().map_err(crypto("P-256 group"))?;
        let mut encoded = [0u8; 1 + 2 * P256_LEN];
        encoded[0] = 0x04;
        encoded[1..=P256_LEN].copy_from_slice(x);
        encoded[1 + P256_LEN..].copy_from_slice(y);
        let mut ctx = BigNumContext::new().map_err(crypto("P-256 point"))?;
        let point = EcPoint::from_bytes(group, &encoded, &mut ctx).map_err(|_| bad())?;
        let key = EcKey::from_public_key(group, &point).map_err(|_| bad())?;
        key.check_key().map_err(|_| bad())?;
        Ok(EcdhEsEncrypter(key))
    }

    /// Wrap `cek` to this key (RFC 7518 4.6, key agreement with key
    /// wrapping): a fresh ephemeral key, ECDH with it, the Concat KDF with
    /// algorithm id "ECDH-ES+A256KW" and empty `apu`/`apv`, and AES-256
    /// key wrap (RFC 3394) of the CEK under the derived key.
    pub(crate) fn wrap(&self, cek: &[u8; CEK_LEN]) -> Result<WrappedCek, JoseError> {
        let err = crypto("ECDH-ES key agreement");
        let group = p256_group().map_err(&err)?;
        let ephemeral = EcKey::generate(group).map_err(&err)?;
        let mut ctx = BigNumContext::new_secure().map_err(&err)?;
        let encoded = ephemeral
            .public_key()
            .to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut ctx)
            .map_err(&err)?;
        let (Some(x), Some(y)) = (
            encoded.get(1..=P256_LEN),
            encoded.get(1 + P256_LEN..1 + 2 * P256_LEN),
        ) else {
            return Err(JoseError::Crypto("ephemeral key encoding".to_owned()));
        };
        let mut wrapped = WrappedCek {
            epk_x: [0u8; P256_LEN],
            epk_y: [0u8; P256_LEN],
            encrypted_key: [0u8; WRAPPED_CEK_LEN],
        };
        wrapped.epk_x.copy_from_slice(x);
        wrapped.epk_y.copy_from_slice(y);

        // ECDH (RFC 7518 4.6.2's Z): the x coordinate of the ephemeral
        // scalar times the recipient's point, exactly what OpenSSL's
        // ECDH_compute_key does (P-256 has cofactor 1), without the EVP
        // layer, which would copy the fresh ephemeral key into the
        // provider and check the recipient's key again on every token.
        // The recipient's point was checked on the curve when parsed; the
        // multiplication is OpenSSL's constant-time one for a secret scalar.
        // The shared point is the secret: it is wiped when freed
        // ([`SecretPoint`]), on every path out of here; its coordinates go
        // to secure-heap numbers (wiped when freed) and Z to a buffer wiped
        // on drop.
        let mut shared = SecretPoint::new(group).map_err(&err)?;
        shared
            .mul2(
                group,
                self.0.public_key(),
                ephemeral.private_key(),
                &mut ctx,
            )
            .map_err(&err)?;
        let mut shared_x = BigNum::new_secure().map_err(&err)?;
        let mut shared_y = BigNum::new_secure().map_err(&err)?;
        shared
            .affine_coordinates(group, &mut shared_x, &mut shared_y, &mut ctx)
            .map_err(&err)?;
        let x = Zeroizing::new(shared_x.to_vec_padded(P256_LEN as i32).map_err(&err)?);
        if x.len() != P256_LEN {
            return Err(JoseError::Crypto("ECDH shared secret length".to_owned()));
        }
        // Copied in place: no unwiped temporary of the secret.
        let mut z = Zeroizing::new([0u8; P256_LEN]);
        z.copy_from_slice(&x);
        let kek = a256kw_kek(&z);
        aes256_key_wrap(&kek, cek, &mut wrapped.encrypted_key)?;
        Ok(wrapped)
    }
}

/// AES-256 key wrap (RFC 3394 2.2.1, the A256KW of RFC 7518 4.4) of a
/// 256-bit key into `out`.
fn aes256_key_wrap(
    kek: &[u8; 32],
    key: &[u8; CEK_LEN],
    out: &mut [u8; WRAPPED_CEK_LEN],
) -> Result<(), JoseError> {
    let err = crypto("AES key wrap");
    let cipher = AES_256_WRAP.as_ref().map_err(|e| err(e.clone()))?;
    let mut ctx = CipherCtx::new().map_err(&err)?;
    ctx.set_flags(CipherCtxFlags::FLAG_WRAP_ALLOW);
    ctx.encrypt_init(Some(cipher), Some(kek), None)
        .map_err(&err)?;
    let written = ctx.cipher_update(key, Some(out)).map_err(&err)?;
    if written != WRAPPED_CEK_LEN {
        return Err(JoseError::Crypto(
            "AES key wrap gave a short key".to_owned(),
        ));
    }
    Ok(())
}

/// A fresh random 256-bit content-encryption key (OpenSSL's DRBG).
pub(crate) fn random_cek() -> Result<Zeroizing<[u8; CEK_LEN]>, JoseError> {
    let mut cek = Zeroizing::new([0u8; CEK_LEN]);
    openssl::rand::rand_priv_bytes(cek.as_mut()).map_err(crypto("random CEK"))?;
    Ok(cek)
}

/// A fresh random AES-GCM IV.
pub(crate) fn random_iv() -> Result<[u8; GCM_IV_LEN], JoseError> {
    let mut iv = [0u8; GCM_IV_LEN];
    openssl::rand::rand_bytes(&mut iv).map_err(crypto("random IV"))?;
    Ok(iv)
}

/// A256GCM encryption (RFC 7518 5.3) of `plaintext` under `cek` and `iv`,
/// with `aad` (the protected header's base64url text) authenticated too.
/// Returns the ciphertext and the 128-bit tag.
pub(crate) fn gcm_seal(
    cek: &[u8],
    iv: &[u8; GCM_IV_LEN],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<(Vec<u8>, [u8; GCM_TAG_LEN]), JoseError> {
    let err = crypto("JWE encryption failed");
    if cek.len() != CEK_LEN {
        return Err(JoseError::InvalidKey(
            "content-encryption key must be 256 bits".to_owned(),
        ));
    }
    let cipher = AES_256_GCM.as_ref().map_err(|e| err(e.clone()))?;
    let mut ctx = CipherCtx::new().map_err(&err)?;
    ctx.encrypt_init(Some(cipher), Some(cek), Some(iv))
        .map_err(&err)?;
    ctx.cipher_update(aad, None).map_err(&err)?;
    let mut ciphertext = Vec::with_capacity(plaintext.len() + 16);
    ctx.cipher_update_vec(plaintext, &mut ciphertext)
        .map_err(&err)?;
    ctx.cipher_final_vec(&mut ciphertext).map_err(&err)?;
    let mut tag = [0u8; GCM_TAG_LEN];
    ctx.tag(&mut tag).map_err(&err)?;
    Ok((ciphertext, tag))
}

#[cfg(test)]
mod tests;
