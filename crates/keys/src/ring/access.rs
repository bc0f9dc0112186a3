//! Access tokens encrypted to resource servers, made so that Gatehouse can
//! open them again without the resource server's private key.
//!
//! The content-encryption key (CEK) of each token is not random but derived
//! from the key-encryption key and the token's id:
//! `HMAC-SHA-256(HMAC-SHA-256(kek, "gatehouse access-token cek v1"), jti)`.
//! It is wrapped to the resource server's key exactly like a random CEK
//! (RSA-OAEP-256 or ECDH-ES+A256KW), so resource servers decrypt the token
//! with any standard JOSE library. Gatehouse, given the jti (from the
//! sealed `gh_ref` header member), derives the CEK again and decrypts: the
//! AES-GCM tag authenticates the protected header and the ciphertext, so a
//! genuine header on a made-up body fails. The resource server learns the
//! CEK of its own tokens and could re-encrypt anything under it, so the
//! nested JWS is then verified against a still-trusted signing key and its
//! jti must be the one the CEK was derived from: only the token Gatehouse
//! signed opens, and revoking its signing key ends it everywhere.
//!
//! Every CEK encrypts exactly one token (jti values are random and never
//! reused), so deterministic keys do not repeat an AES-GCM key and nonce
//! pair; HMAC-SHA-256 is a PRF, so the CEK of one token says nothing about
//! another's.

use serde_json::{Map, Value};

use super::KeyRing;
use crate::jose::{decrypt_with_cek, encrypt_with_cek};
use crate::{Alg, Kek, KeyError, PublicKey, VerifiedJws};

/// Label of the subkey (of the KEK) that access-token CEKs derive from.
pub(super) const ACCESS_TOKEN_CEK_LABEL: &[u8] = b"gatehouse access-token cek v1";
/// Longest token id a CEK is derived for (Gatehouse's are 36-character UUIDs).
const MAX_JTI_LEN: usize = 256;

impl KeyRing {
    /// The CEK of the access token `jti`.
    fn access_token_cek(&self, jti: &str) -> Result<Kek, KeyError> {
        if jti.is_empty() || jti.len() > MAX_JTI_LEN {
            return Err(KeyError::invalid_token("unusable token id"));
        }
        Ok(self.access_token_key.derive(jti.as_bytes()))
    }

    /// Encrypts `payload` (the signed access token whose `jti` claim is
    /// `jti`) to `recipient`, a resource server's key, with the CEK derived
    /// for `jti`. Header rules as in [`crate::encrypt`].
    pub fn encrypt_access_token(
        &self,
        payload: &str,
        recipient: &PublicKey,
        jti: &str,
        cty: Option<&str>,
        extra: Option<&Map<String, Value>>,
    ) -> Result<String, KeyError> {
        let cek = self.access_token_cek(jti)?;
        Ok(encrypt_with_cek(
            payload,
            recipient,
            cek.bytes(),
            cty,
            extra,
        )?)
    }

    /// Opens an access token made by [`KeyRing::encrypt_access_token`] for
    /// `jti` (on any instance sharing the KEK) and returns its nested JWS's
    /// header and claims. Fails unless the token decrypts under the CEK of
    /// `jti`, the nested JWS verifies with one of `allowed` under a signing
    /// key this ring still trusts (not revoked, not deleted), and its `jti`
    /// claim is `jti`. Expiry, issuer and type are the caller's to check.
    pub fn open_access_token(
        &self,
        token: &str,
        jti: &str,
        allowed: &[Alg],
    ) -> Result<VerifiedJws, KeyError> {
        let cek = self.access_token_cek(jti)?;
        let (_, payload) = decrypt_with_cek(token, cek.bytes())?;
        let jws = std::str::from_utf8(&payload)
            .map_err(|_| KeyError::invalid_token("nested token is not text"))?;
        let verified = self.verify(jws, allowed)?;
        if verified.claims.get("jti").and_then(Value::as_str) != Some(jti) {
            return Err(KeyError::invalid_token(
                "token id does not match the one it was encrypted for",
            ));
        }
        Ok(verified)
    }
}
