//! The keys crate's one error type.

/// Everything that can go wrong with key material or a JOSE operation.
/// Messages never contain key material or token contents.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A token (JWS or JWE) is malformed, has a bad signature, an algorithm
    /// outside the allow-list, an unknown kid, or is otherwise not acceptable.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// A key-encryption key or sealed key could not be used (wrong KEK, corrupt data).
    #[error("key unsealing failed: {0}")]
    Unseal(&'static str),
    /// A JWK or algorithm given by an operator or a client is not usable.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// An unexpected failure inside the crypto library.
    #[error("crypto failure: {0}")]
    Crypto(String),
    /// Storage failed while loading or saving keys.
    #[error(transparent)]
    Storage(#[from] gatehouse_storage::StoreError),
}
