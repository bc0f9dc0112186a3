//! The verifier's one error type: why a token (or the configuration) was refused.

/// Why a token (or the configuration) was refused. `Display` never includes
/// the token itself.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VerifierError {
    /// Not a well-formed token (size, structure, encoding, header members).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The JWE could not be decrypted with the API's key.
    #[error("token could not be decrypted: {0}")]
    Decrypt(&'static str),
    /// The nested JWS signature is invalid or its algorithm is not allowed.
    #[error("invalid token signature: {0}")]
    Signature(&'static str),
    /// The JWS `kid` is not in the issuer's JWKS (even after a refetch).
    #[error("token signed with an unknown key")]
    UnknownKey,
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("token from the wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("token for another audience")]
    WrongAudience,
    /// The JWS `typ` is not `at+jwt` (e.g. an ID token).
    #[error("not an access token (typ)")]
    WrongType,
    /// The JWKS (or discovery document) could not be fetched or parsed.
    #[error("JWKS unavailable: {0}")]
    Jwks(String),
    /// The token's status list says it is revoked (status INVALID).
    #[error("token revoked")]
    Revoked,
    /// The token's status list gives another non-valid status (2 is
    /// SUSPENDED; others are application-specific).
    #[error("token status is not valid ({0})")]
    StatusNotValid(u8),
    /// The status check could not be done: the token's status claim is
    /// malformed or names a list outside the issuer, or the list could not
    /// be fetched, verified or read. The token is refused (fail closed).
    #[error("token status unavailable: {0}")]
    StatusList(&'static str),
    /// The verifier's configuration is invalid.
    #[error("invalid verifier configuration: {0}")]
    Config(String),
}
