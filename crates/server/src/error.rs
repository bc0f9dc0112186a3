//! The protocol core's errors: [`OAuthError`], one variant per RFC error
//! code Gatehouse answers with, and [`Error`], what a core operation (a
//! grant, the token issuer, the status lists) can fail with. They know
//! nothing of HTTP: `http::error` alone turns them into responses.

use std::borrow::Cow;

use gatehouse_keys::KeyError;
use gatehouse_storage::StoreError;

use crate::oauth::ErrorCode;

/// An `error_description` (RFC 6749 5.2): what the client did wrong, never
/// a stored value or an internal detail.
pub type Description = Cow<'static, str>;

/// An OAuth error (RFC 6749 5.2, RFC 6750 3.1, RFC 7591 3.2.2, RFC 8707,
/// OIDC Core 3.1.2.6), each with its `error_description`. `Display` is the
/// wire string of the code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request")]
    InvalidRequest(Description),
    /// `basic` is true when the client tried HTTP Basic authentication, so
    /// the answer carries `WWW-Authenticate: Basic` (RFC 6749 5.2).
    #[error("invalid_client")]
    InvalidClient {
        description: Description,
        basic: bool,
    },
    #[error("invalid_grant")]
    InvalidGrant(Description),
    #[error("unauthorized_client")]
    UnauthorizedClient(Description),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType(Description),
    #[error("unsupported_response_type")]
    UnsupportedResponseType(Description),
    #[error("invalid_scope")]
    InvalidScope(Description),
    #[error("invalid_target")]
    InvalidTarget(Description),
    #[error("access_denied")]
    AccessDenied(Description),
    #[error("server_error")]
    ServerError(Description),
    #[error("temporarily_unavailable")]
    TemporarilyUnavailable(Description),
    #[error("login_required")]
    LoginRequired(Description),
    #[error("consent_required")]
    ConsentRequired(Description),
    #[error("interaction_required")]
    InteractionRequired(Description),
    #[error("invalid_token")]
    InvalidToken(Description),
    #[error("invalid_redirect_uri")]
    InvalidRedirectUri(Description),
    #[error("invalid_client_metadata")]
    InvalidClientMetadata(Description),
    #[error("unsupported_token_type")]
    UnsupportedTokenType(Description),
    #[error("request_not_supported")]
    RequestNotSupported(Description),
    #[error("request_uri_not_supported")]
    RequestUriNotSupported(Description),
    #[error("invalid_request_object")]
    InvalidRequestObject(Description),
    #[error("insufficient_scope")]
    InsufficientScope(Description),
    #[error("unmet_authentication_requirements")]
    UnmetAuthenticationRequirements(Description),
    /// RFC 9449 5 and 7.1.
    #[error("invalid_dpop_proof")]
    InvalidDpopProof(Description),
    /// RFC 9449 8 and 9: the proof must carry the nonce the answer's
    /// `DPoP-Nonce` header gives.
    #[error("use_dpop_nonce")]
    UseDpopNonce(Description),
    /// RFC 8628 3.5.
    #[error("authorization_pending")]
    AuthorizationPending(Description),
    /// RFC 8628 3.5.
    #[error("slow_down")]
    SlowDown(Description),
    /// RFC 8628 3.5.
    #[error("expired_token")]
    ExpiredToken(Description),
}

impl OAuthError {
    /// The error of `code` with `description` (`invalid_client` without
    /// the Basic challenge).
    pub fn new(code: ErrorCode, description: impl Into<Description>) -> OAuthError {
        let d = description.into();
        match code {
            ErrorCode::InvalidRequest => OAuthError::InvalidRequest(d),
            ErrorCode::InvalidClient => OAuthError::InvalidClient {
                description: d,
                basic: false,
            },
            ErrorCode::InvalidGrant => OAuthError::InvalidGrant(d),
            ErrorCode::UnauthorizedClient => OAuthError::UnauthorizedClient(d),
            ErrorCode::UnsupportedGrantType => OAuthError::UnsupportedGrantType(d),
            ErrorCode::UnsupportedResponseType => OAuthError::UnsupportedResponseType(d),
            ErrorCode::InvalidScope => OAuthError::InvalidScope(d),
            ErrorCode::InvalidTarget => OAuthError::InvalidTarget(d),
            ErrorCode::AccessDenied => OAuthError::AccessDenied(d),
            ErrorCode::ServerError => OAuthError::ServerError(d),
            ErrorCode::TemporarilyUnavailable => OAuthError::TemporarilyUnavailable(d),
            ErrorCode::LoginRequired => OAuthError::LoginRequired(d),
            ErrorCode::ConsentRequired => OAuthError::ConsentRequired(d),
            ErrorCode::InteractionRequired => OAuthError::InteractionRequired(d),
            ErrorCode::InvalidToken => OAuthError::InvalidToken(d),
            ErrorCode::InvalidRedirectUri => OAuthError::InvalidRedirectUri(d),
            ErrorCode::InvalidClientMetadata => OAuthError::InvalidClientMetadata(d),
            ErrorCode::UnsupportedTokenType => OAuthError::UnsupportedTokenType(d),
            ErrorCode::RequestNotSupported => OAuthError::RequestNotSupported(d),
            ErrorCode::RequestUriNotSupported => OAuthError::RequestUriNotSupported(d),
            ErrorCode::InvalidRequestObject => OAuthError::InvalidRequestObject(d),
            ErrorCode::InsufficientScope => OAuthError::InsufficientScope(d),
            ErrorCode::UnmetAuthenticationRequirements => {
                OAuthError::UnmetAuthenticationRequirements(d)
            }
            ErrorCode::InvalidDpopProof => OAuthError::InvalidDpopProof(d),
            ErrorCode::UseDpopNonce => OAuthError::UseDpopNonce(d),
            ErrorCode::AuthorizationPending => OAuthError::AuthorizationPending(d),
            ErrorCode::SlowDown => OAuthError::SlowDown(d),
            ErrorCode::ExpiredToken => OAuthError::ExpiredToken(d),
        }
    }

    /// `invalid_client`, with the Basic challenge when `basic`.
    pub fn invalid_client(basic: bool, description: impl Into<Description>) -> OAuthError {
        OAuthError::InvalidClient {
            description: description.into(),
            basic,
        }
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            OAuthError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            OAuthError::InvalidClient { .. } => ErrorCode::InvalidClient,
            OAuthError::InvalidGrant(_) => ErrorCode::InvalidGrant,
            OAuthError::UnauthorizedClient(_) => ErrorCode::UnauthorizedClient,
            OAuthError::UnsupportedGrantType(_) => ErrorCode::UnsupportedGrantType,
            OAuthError::UnsupportedResponseType(_) => ErrorCode::UnsupportedResponseType,
            OAuthError::InvalidScope(_) => ErrorCode::InvalidScope,
            OAuthError::InvalidTarget(_) => ErrorCode::InvalidTarget,
            OAuthError::AccessDenied(_) => ErrorCode::AccessDenied,
            OAuthError::ServerError(_) => ErrorCode::ServerError,
            OAuthError::TemporarilyUnavailable(_) => ErrorCode::TemporarilyUnavailable,
            OAuthError::LoginRequired(_) => ErrorCode::LoginRequired,
            OAuthError::ConsentRequired(_) => ErrorCode::ConsentRequired,
            OAuthError::InteractionRequired(_) => ErrorCode::InteractionRequired,
            OAuthError::InvalidToken(_) => ErrorCode::InvalidToken,
            OAuthError::InvalidRedirectUri(_) => ErrorCode::InvalidRedirectUri,
            OAuthError::InvalidClientMetadata(_) => ErrorCode::InvalidClientMetadata,
            OAuthError::UnsupportedTokenType(_) => ErrorCode::UnsupportedTokenType,
            OAuthError::RequestNotSupported(_) => ErrorCode::RequestNotSupported,
            OAuthError::RequestUriNotSupported(_) => ErrorCode::RequestUriNotSupported,
            OAuthError::InvalidRequestObject(_) => ErrorCode::InvalidRequestObject,
            OAuthError::InsufficientScope(_) => ErrorCode::InsufficientScope,
            OAuthError::UnmetAuthenticationRequirements(_) => {
                ErrorCode::UnmetAuthenticationRequirements
            }
            OAuthError::InvalidDpopProof(_) => ErrorCode::InvalidDpopProof,
            OAuthError::UseDpopNonce(_) => ErrorCode::UseDpopNonce,
            OAuthError::AuthorizationPending(_) => ErrorCode::AuthorizationPending,
            OAuthError::SlowDown(_) => ErrorCode::SlowDown,
            OAuthError::ExpiredToken(_) => ErrorCode::ExpiredToken,
        }
    }

    /// Whether the client tried HTTP Basic (only ever true for `invalid_client`).
    pub fn basic(&self) -> bool {
        matches!(self, OAuthError::InvalidClient { basic: true, .. })
    }

    /// The `error_description`.
    pub fn description(&self) -> &str {
        self.description_ref()
    }

    /// The code, the description and the Basic bit, taken apart (errors
    /// are the cold path: the description is cloned, a static one for free).
    pub fn into_parts(self) -> (ErrorCode, Description, bool) {
        let (code, basic) = (self.code(), self.basic());
        (code, self.description_ref().clone(), basic)
    }

    /// The one match over every variant's description.
    fn description_ref(&self) -> &Description {
        match self {
            OAuthError::InvalidClient { description, .. } => description,
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidGrant(d)
            | OAuthError::UnauthorizedClient(d)
            | OAuthError::UnsupportedGrantType(d)
            | OAuthError::UnsupportedResponseType(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::InvalidTarget(d)
            | OAuthError::InvalidDpopProof(d)
            | OAuthError::UseDpopNonce(d)
            | OAuthError::AuthorizationPending(d)
            | OAuthError::SlowDown(d)
            | OAuthError::ExpiredToken(d)
            | OAuthError::AccessDenied(d)
            | OAuthError::ServerError(d)
            | OAuthError::TemporarilyUnavailable(d)
            | OAuthError::LoginRequired(d)
            | OAuthError::ConsentRequired(d)
            | OAuthError::InteractionRequired(d)
            | OAuthError::InvalidToken(d)
            | OAuthError::InvalidRedirectUri(d)
            | OAuthError::InvalidClientMetadata(d)
            | OAuthError::UnsupportedTokenType(d)
            | OAuthError::RequestNotSupported(d)
            | OAuthError::RequestUriNotSupported(d)
            | OAuthError::InvalidRequestObject(d)
            | OAuthError::InsufficientScope(d)
            | OAuthError::UnmetAuthenticationRequirements(d) => d,
        }
    }
}

/// What a core operation fails with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request breaks a protocol rule: answered with its RFC error code.
    #[error("{}: {}", .0, .0.description())]
    OAuth(#[from] OAuthError),
    /// The database is away: the client should retry shortly.
    #[error("the database is unavailable")]
    Unavailable,
    /// Too many failures for this client or account: retry after this many seconds.
    #[error("too many failed attempts; retry in {0} s")]
    Throttled(i64),
    /// Anything else: logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// An OAuth error of `code` with `description`.
    pub fn oauth(code: ErrorCode, description: impl Into<Description>) -> Error {
        Error::OAuth(OAuthError::new(code, description))
    }

    /// `invalid_request` with a description.
    pub fn invalid_request(description: impl Into<Description>) -> Error {
        Error::OAuth(OAuthError::InvalidRequest(description.into()))
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            // The store logs the database going down and coming back once
            // each; one line per refused request would flood the log.
            tracing::debug!(error = %e, "database unavailable");
            Error::Unavailable
        } else {
            Error::Internal(format!("storage: {e}"))
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(e) if e.is_unavailable() => {
                tracing::debug!(error = %e, "database unavailable");
                Error::Unavailable
            }
            KeyError::Store(e) => Error::Internal(format!("storage: {e}")),
            other => Error::Internal(format!("keys: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_displays_its_wire_string() {
        use ErrorCode as C;
        for code in [
            C::InvalidRequest,
            C::InvalidClient,
            C::InvalidGrant,
            C::UnauthorizedClient,
            C::UnsupportedGrantType,
            C::UnsupportedResponseType,
            C::InvalidScope,
            C::InvalidTarget,
            C::AccessDenied,
            C::ServerError,
            C::TemporarilyUnavailable,
            C::LoginRequired,
            C::ConsentRequired,
            C::InteractionRequired,
            C::InvalidToken,
            C::InvalidRedirectUri,
            C::InvalidClientMetadata,
            C::UnsupportedTokenType,
            C::RequestNotSupported,
            C::RequestUriNotSupported,
            C::InvalidRequestObject,
            C::InsufficientScope,
        ] {
            let e = OAuthError::new(code, "why");
            assert_eq!(e.code(), code);
            assert_eq!(e.to_string(), code.as_str());
            assert_eq!(e.description(), "why");
            assert!(!e.basic());
        }
        assert!(OAuthError::invalid_client(true, "x").basic());
    }
}
