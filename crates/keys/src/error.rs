//! The keys crate's one error type.

use gatehouse_jose::JoseError;

/// Everything that can go wrong with key material, a JOSE operation or the
/// key store. Messages never contain key material or token contents.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A JOSE operation failed: an invalid token or key, or a crypto failure.
    #[error(transparent)]
    Jose(#[from] JoseError),
    /// A key-encryption key or sealed key could not be used (wrong KEK, corrupt data).
    #[error("key unsealing failed: {0}")]
    Unseal(&'static str),
    /// The key store failed while loading or saving keys.
    #[error(transparent)]
    Store(#[from] StoreFailure),
}

impl KeyError {
    /// A token (JWS or JWE) that is not acceptable, for `reason`.
    pub const fn invalid_token(reason: &'static str) -> KeyError {
        KeyError::Jose(JoseError::InvalidToken(reason))
    }

    /// A key or algorithm that is not usable.
    pub fn invalid_key(reason: impl Into<String>) -> KeyError {
        KeyError::Jose(JoseError::InvalidKey(reason.into()))
    }

    /// An unexpected failure (crypto library, background task).
    pub fn crypto(reason: impl Into<String>) -> KeyError {
        KeyError::Jose(JoseError::Crypto(reason.into()))
    }

    /// Why a token was refused, if that is what this error is.
    pub fn invalid_token_reason(&self) -> Option<&'static str> {
        match self {
            KeyError::Jose(JoseError::InvalidToken(reason)) => Some(reason),
            _ => None,
        }
    }
}

/// A key store failure, as the store reports it: whether the database is
/// unavailable (the server answers 503 then) and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct StoreFailure {
    unavailable: bool,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreFailure {
    /// A failure of the store; `unavailable` when the database cannot be
    /// reached (as opposed to a query or data error).
    pub fn new(unavailable: bool, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreFailure {
            unavailable,
            source: Box::new(source),
        }
    }

    /// Whether the database was unavailable.
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }
}
