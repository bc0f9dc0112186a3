//! The JOSE crate's one error type.

/// Everything that can go wrong with a key or a JOSE operation. Messages
/// never contain key material or token contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// A token (JWS or JWE) is malformed, has a bad signature, an algorithm
    /// outside the allow-list, an unknown kid, or is otherwise not acceptable.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// A JWK or algorithm given by an operator or a client is not usable.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// Private-key bytes handed to [`crate::PrivateKey::from_pkcs8`] are not
    /// a PKCS#8 private key.
    #[error("the private key is not PKCS#8 DER")]
    UnreadableKey,
    /// The operation or algorithm is not available on the chosen backend
    /// (for example RSA-OAEP-256 decryption on the pure-Rust backend).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// An unexpected failure inside the crypto library.
    #[error("crypto failure: {0}")]
    Crypto(String),
}
