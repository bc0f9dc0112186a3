//! The axum extractor (feature `axum`).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::{Claims, Verifier, VerifierError};

/// The verified claims of the request's `Authorization: Bearer` token.
///
/// Takes the [`Verifier`] from the router state (`Arc<Verifier>: FromRef<S>`).
/// A request without a bearer token is refused with `401` and
/// `WWW-Authenticate: Bearer realm="<audience>"`; an invalid token with `401`
/// and `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3).
#[derive(Debug, Clone)]
pub struct BearerClaims(pub Claims);

/// Why [`BearerClaims`] refused a request.
#[derive(Debug)]
pub enum BearerRejection {
    /// No (usable) `Authorization: Bearer` header.
    Missing {
        /// The realm advertised in the challenge.
        realm: String,
    },
    /// The token was refused.
    Invalid(VerifierError),
}

impl IntoResponse for BearerRejection {
    fn into_response(self) -> Response {
        let challenge = match &self {
            BearerRejection::Missing { realm } => {
                let realm: String = realm
                    .chars()
                    .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
                    .collect();
                format!("Bearer realm=\"{realm}\"")
            }
            BearerRejection::Invalid(e) => {
                let description = e.to_string().replace(['"', '\\'], "");
                format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
            }
        };
        let mut resp = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(WWW_AUTHENTICATE, v);
        } else {
            resp.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl<S> FromRequestParts<S> for BearerClaims
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<Verifier>::from_ref(state);
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(BearerRejection::Missing {
                realm: verifier.audience().to_owned(),
            });
        };
        verifier
            .verify(token)
            .await
            .map(BearerClaims)
            .map_err(BearerRejection::Invalid)
    }
}
