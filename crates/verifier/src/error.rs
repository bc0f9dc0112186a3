//! The verifier's one error type: why a token (or the configuration) was refused.

pub use gatehouse_jose::dpop::DpopError;

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
    /// The token is bound to a DPoP key (`cnf.jkt`) but was presented as a
    /// bearer token (RFC 9449 7.2): it needs the DPoP scheme and a proof.
    #[error("the token is DPoP-bound: present it with Authorization: DPoP and a DPoP proof")]
    DpopBound,
    /// The token was presented with the DPoP scheme but is not bound to a
    /// key (no `cnf.jkt`), so no proof can show possession (RFC 9449 7.1).
    #[error("the token is not DPoP-bound: present it with Authorization: Bearer")]
    NotDpopBound,
    /// The proof is signed with another key than the token is bound to
    /// (RFC 9449 4.3 step 12, 7.1).
    #[error("the DPoP proof's key is not the key the token is bound to")]
    DpopKeyMismatch,
    /// The DPoP proof failed a check of RFC 9449 4.3 (its text names it).
    #[error("{0}")]
    DpopProof(DpopError),
    /// The request does not carry exactly one DPoP proof where one is
    /// needed: none, more than one `DPoP` header, one that is not text, or a
    /// proof sent with the Bearer scheme (RFC 9449 4.3 step 1, 7.1).
    #[error("{0}")]
    DpopRequest(&'static str),
    /// The proof (key and `jti`) was already used within its `iat` window
    /// (RFC 9449 11.1).
    #[error("the DPoP proof was already used")]
    DpopReplay,
    /// The proof passed every check but the replay cache is full of live
    /// entries: refused rather than remembered in place of one (which would
    /// let that one be replayed). Retry after `retry_after` seconds.
    #[error("too many DPoP proofs at once; retry in {retry_after} s")]
    DpopReplayCacheFull {
        /// Seconds until the earliest entry expires.
        retry_after: u64,
    },
    /// A token was presented with the DPoP scheme to a verifier without
    /// DPoP ([`crate::VerifierConfig::dpop_base_url`] unset).
    #[error("this API does not accept the DPoP scheme")]
    DpopDisabled,
}

impl VerifierError {
    /// The error code of the refusal's `WWW-Authenticate` challenge:
    /// `invalid_dpop_proof` for a missing, malformed, failed or replayed
    /// proof (RFC 9449 7.1), `invalid_token` for everything else (RFC 6750
    /// 3.1, and RFC 9449 7.1 for a token whose key binding does not match).
    pub fn oauth_error(&self) -> &'static str {
        match self {
            VerifierError::DpopProof(_)
            | VerifierError::DpopRequest(_)
            | VerifierError::DpopReplay => "invalid_dpop_proof",
            _ => "invalid_token",
        }
    }
}
