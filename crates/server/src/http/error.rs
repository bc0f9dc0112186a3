//! The HTTP layer's error type and the only mapping of errors to HTTP.
//!
//! Every handler returns `Result<_, AppError>`: the core's [`Error`] and
//! [`OAuthError`] convert into it, and it adds what only HTTP knows (a
//! bearer challenge, an HTML page). Internal failures are logged
//! here with their detail and answered with a generic body: nothing about
//! the database, keys or code paths reaches a client.

use std::borrow::Cow;

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use gatehouse_keys::KeyError;
use gatehouse_storage::StoreError;
use serde_json::json;

use crate::{
    error::{Error, OAuthError},
    i18n::Msg,
    oauth::ErrorCode,
    views,
};

/// What went wrong, in terms the HTTP layer knows how to answer.
#[derive(Debug)]
pub enum AppError {
    /// An OAuth error answered as JSON (RFC 6749 5.2); an `invalid_client`
    /// of a client that tried HTTP Basic carries `WWW-Authenticate: Basic`.
    OAuth(OAuthError),
    /// A bearer-token failure at a protected resource (RFC 6750 3): 400
    /// for `invalid_request`, 403 for `insufficient_scope`, else 401, each
    /// with a `WWW-Authenticate: Bearer` challenge.
    Bearer {
        code: Option<ErrorCode>,
        description: Cow<'static, str>,
    },
    /// A DPoP-bound token or its proof refused at a protected resource
    /// (RFC 9449 7.1): 401 with a `WWW-Authenticate: DPoP` challenge
    /// naming the error and the proof algorithms accepted.
    Dpop {
        code: ErrorCode,
        description: Cow<'static, str>,
    },
    /// A failure shown to a person as an HTML page (no redirect is safe),
    /// in the request's language.
    Page { status: StatusCode, message: Msg },
    /// The database is away: answer 503 and let the client retry.
    Unavailable,
    /// Too many failures for this client or account: 429 with Retry-After.
    Throttled(i64),
    /// Too many requests of some kind (not failures) in the current
    /// window: 429 with Retry-After (seconds) and what was too many.
    TooManyRequests {
        retry_after: i64,
        description: &'static str,
    },
    /// Anything else: logged, answered as a generic 500.
    Internal(String),
}

impl AppError {
    /// An OAuth JSON error.
    pub fn oauth(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> AppError {
        AppError::OAuth(OAuthError::new(code, description))
    }
    /// `invalid_request` with a description.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> AppError {
        AppError::oauth(ErrorCode::InvalidRequest, description)
    }
    /// An HTML error page with status 400.
    pub fn page(message: Msg) -> AppError {
        AppError::Page {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
    /// An invalid or missing bearer token.
    pub fn invalid_token(description: impl Into<Cow<'static, str>>) -> AppError {
        AppError::Bearer {
            code: Some(ErrorCode::InvalidToken),
            description: description.into(),
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::OAuth(e) => write!(f, "{e}: {}", e.description()),
            AppError::Bearer { description, .. } | AppError::Dpop { description, .. } => {
                write!(f, "invalid token: {description}")
            }
            AppError::Page { message, .. } => write!(f, "{message}"),
            AppError::Unavailable => f.write_str("the database is unavailable"),
            AppError::Throttled(secs) => write!(f, "too many failed attempts; retry in {secs} s"),
            AppError::TooManyRequests { description, .. } => f.write_str(description),
            AppError::Internal(detail) => f.write_str(detail),
        }
    }
}

impl std::error::Error for AppError {}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        match e {
            Error::OAuth(e) => e.into(),
            Error::Unavailable => AppError::Unavailable,
            Error::Throttled(secs) => AppError::Throttled(secs),
            Error::Internal(detail) => AppError::Internal(detail),
        }
    }
}

impl From<OAuthError> for AppError {
    fn from(e: OAuthError) -> Self {
        AppError::OAuth(e)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        Error::from(e).into()
    }
}

impl From<KeyError> for AppError {
    fn from(e: KeyError) -> Self {
        Error::from(e).into()
    }
}

impl AppError {
    /// The answer for a page a person looks at (login, consent, logout):
    /// the database being away is an HTML page with 503 and Retry-After,
    /// not the JSON an API client gets. Everything else as
    /// [`IntoResponse`].
    pub fn into_page_response(self) -> Response {
        match self {
            AppError::Unavailable => unavailable_page(),
            other => other.into_response(),
        }
    }
}

/// The database is away and the answer goes to a person (the login,
/// consent and logout pages; the authorization endpoint when no redirect to
/// the client is safe): an HTML error page with 503 and `Retry-After`.
pub fn unavailable_page() -> Response {
    let mut r = views::error_page(StatusCode::SERVICE_UNAVAILABLE, &Msg::Unavailable);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    database_unavailable(r)
}

/// The mark of a response answered 503 because the database is
/// unavailable, JSON or page alike: set only here, counted by
/// `http::metrics::track` (`gatehouse_db_unavailable_responses_total`).
#[derive(Clone, Copy, Debug)]
pub struct DatabaseUnavailable;

fn database_unavailable(mut r: Response) -> Response {
    r.extensions_mut().insert(DatabaseUnavailable);
    r
}

fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The `algs` auth-param of a DPoP challenge (RFC 9449 7.1).
pub fn dpop_algs() -> String {
    let algs: Vec<&str> = crate::dpop::PROOF_ALGS.iter().map(|a| a.as_str()).collect();
    format!("algs=\"{}\"", algs.join(" "))
}

/// 429 Too Many Requests (RFC 6585 4) with `Retry-After`.
fn too_many(secs: i64, description: String) -> Response {
    let mut r = no_store(
        (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({ "error": "too_many_requests", "error_description": description })),
        )
            .into_response(),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Quotes a value for an auth-param (RFC 9110 11.2): keeps printable
/// ASCII without `"` and `\\`, so the header is always valid (a
/// description may quote what a client sent).
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect()
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::OAuth(e) => {
                let (code, description, basic) = e.into_parts();
                let status = match code {
                    ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
                    ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::BAD_REQUEST,
                };
                let body = json!({ "error": code.as_str(), "error_description": description });
                let mut r = no_store((status, Json(body)).into_response());
                if code == ErrorCode::InvalidClient && basic {
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"gatehouse\", charset=\"UTF-8\""),
                    );
                }
                r
            }
            AppError::Bearer { code, description } => {
                let challenge = match code {
                    Some(c) => format!(
                        "Bearer realm=\"gatehouse\", error=\"{}\", error_description=\"{}\"",
                        c.as_str(),
                        quoted(&description)
                    ),
                    None => "Bearer realm=\"gatehouse\"".to_owned(),
                };
                // RFC 6750 3.1: the status follows the error code.
                let status = match code {
                    Some(ErrorCode::InvalidRequest) => StatusCode::BAD_REQUEST,
                    Some(ErrorCode::InsufficientScope) => StatusCode::FORBIDDEN,
                    _ => StatusCode::UNAUTHORIZED,
                };
                let mut r = no_store(status.into_response());
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                r
            }
            AppError::Dpop { code, description } => {
                let challenge = format!(
                    "DPoP error=\"{}\", error_description=\"{}\", {}",
                    code.as_str(),
                    quoted(&description),
                    dpop_algs()
                );
                let mut r = no_store(StatusCode::UNAUTHORIZED.into_response());
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                r
            }
            AppError::Page { status, message } => views::error_page(status, &message),
            AppError::Unavailable => {
                let mut r = no_store(
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        Json(json!({ "error": "temporarily_unavailable", "error_description": "the service is temporarily unavailable; retry shortly" })),
                    )
                        .into_response(),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                database_unavailable(r)
            }
            AppError::Throttled(secs) => too_many(
                secs,
                format!("too many failed attempts; retry in {secs} seconds"),
            ),
            AppError::TooManyRequests {
                retry_after,
                description,
            } => too_many(
                retry_after,
                format!("{description}; retry in {retry_after} seconds"),
            ),
            AppError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                no_store(
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Json(json!({ "error": "server_error", "error_description": "internal error" })),
                    )
                        .into_response(),
                )
            }
        }
    }
}
