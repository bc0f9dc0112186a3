//! JOSE alone: algorithms, key generation and JWK parsing, compact JWS
//! signing and verification, compact JWE encryption and decryption, JWKS
//! rendering, and the structural checks every token gets first.
//!
//! Design choice: untrusted input (tokens, client JWKs) is checked here
//! ([`checks`]) before it reaches josekit/OpenSSL: size caps, an algorithm
//! allow-list, refusal of header parameters that would let a token choose
//! its own key (`jwk`, `jku`, `x5u`, `x5c`) or change processing rules
//! (`crit`, `zip`), exact lengths for every binary JWE part, and ECDH-ES
//! ephemeral keys on P-256. The server and resource-server verifiers both
//! use this crate, so a check written once protects both. No storage, no
//! async runtime, no HTTP; sealing private keys at rest is the caller's
//! business (this crate hands out and takes PKCS#8 DER).

mod alg;
pub mod checks;
pub mod dpop;
#[cfg(feature = "openssl")]
mod ec;
mod error;
mod jwe;
mod jwk;
mod jwks;
mod jws;
mod kdf;
mod key;
#[cfg(feature = "rustcrypto")]
mod rustcrypto;

#[cfg(all(test, feature = "rustcrypto"))]
mod fixture_tests;
#[cfg(all(test, feature = "openssl"))]
mod fuzz;
#[cfg(all(test, feature = "openssl"))]
mod testutil;

#[cfg(not(any(feature = "openssl", feature = "rustcrypto")))]
compile_error!("gatehouse-jose needs feature `openssl`, `rustcrypto` or both");

pub use alg::{Alg, HmacAlg, KeyUse};
pub use checks::{peek_header, MAX_TOKEN_LEN};
pub use error::JoseError;
pub use jwe::decrypt;
#[cfg(feature = "openssl")]
pub use jwe::{decrypt_dir, decrypt_with_cek, encrypt, encrypt_dir, encrypt_with_cek};
pub use jwk::PublicKey;
pub use jwks::render_jwks;
#[cfg(feature = "openssl")]
pub use jws::sign;
pub use jws::{peek_claims, verify, verify_capped, verify_hmac, UnverifiedJws, VerifiedJws};
pub use key::PrivateKey;
#[cfg(feature = "openssl")]
pub use key::{generate_key_pair, KeyPair};

/// Which cryptography a verifying key uses. Gatehouse itself (signing,
/// encryption, key generation) always uses OpenSSL; a resource server's
/// verifier may choose the pure-Rust backend (feature `rustcrypto`) for
/// signature verification and ECDH-ES+A256KW decryption. Built without
/// feature `openssl`, the crate has only the verifying side (no signing,
/// encryption or key generation) and the pure-Rust backend is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// josekit on OpenSSL: every algorithm.
    #[cfg(feature = "openssl")]
    #[default]
    OpenSsl,
    /// Pure Rust (p256, rsa public-key operations, ed25519-dalek, aes-gcm):
    /// ES256, RS256/384/512, PS256/384/512 and EdDSA verification and
    /// ECDH-ES+A256KW decryption; RSA-OAEP-256 decryption and ES384/ES512
    /// are refused with [`JoseError::Unsupported`].
    #[cfg(feature = "rustcrypto")]
    #[cfg_attr(not(feature = "openssl"), default)]
    RustCrypto,
}

impl Backend {
    /// Whether this backend verifies signatures made with `alg`.
    pub fn verifies(self, alg: Alg) -> bool {
        match self {
            #[cfg(feature = "openssl")]
            Backend::OpenSsl => alg.key_use() == KeyUse::Sig,
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => {
                alg.key_use() == KeyUse::Sig && !matches!(alg, Alg::ES384 | Alg::ES512)
            }
        }
    }
}

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Caller-supplied text quoted in an error message, cut to a sane length.
fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}...")
    }
}

#[cfg(feature = "openssl")]
fn openssl_err(context: &'static str) -> impl Fn(openssl::error::ErrorStack) -> JoseError {
    move |err| JoseError::Crypto(format!("{context}: {err}"))
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(all(test, not(feature = "openssl")))]
mod tests {
    use super::*;

    #[test]
    fn without_openssl_the_default_backend_is_rustcrypto() {
        assert_eq!(Backend::default(), Backend::RustCrypto);
    }
}
