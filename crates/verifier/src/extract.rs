//! The axum extractor (feature `axum`): the access token of a request,
//! under the Bearer scheme (RFC 6750) or the DPoP scheme (RFC 9449 7).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, OriginalUri};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::{Claims, Verifier, VerifierError};

/// The verified claims of the request's access token, whichever scheme
/// carried it (an API does not know which its clients use):
///
/// - `Authorization: Bearer <token>` (RFC 6750 2.1): an unbound token.
///   A DPoP-bound token (with `cnf.jkt`) is refused (RFC 9449 7.2).
/// - `Authorization: DPoP <token>` with exactly one `DPoP: <proof>` header
///   (RFC 9449 7.1), when [`crate::VerifierConfig::dpop_base_url`] is set:
///   checked by [`Verifier::verify_dpop`] with the request's method and
///   path (never its `Host` header).
///
/// Takes the [`Verifier`] from the router state (`Arc<Verifier>: FromRef<S>`).
/// Refusals are `401` with `WWW-Authenticate` (RFC 6750 3, RFC 9449 7.1),
/// see [`BearerRejection`]. The name predates DPoP and is kept for existing
/// users.
#[derive(Debug, Clone)]
pub struct BearerClaims(pub Claims);

/// Why [`BearerClaims`] refused a request, and the answer it makes.
#[derive(Debug)]
pub enum BearerRejection {
    /// No (usable) credentials at an API without DPoP:
    /// `WWW-Authenticate: Bearer realm="<audience>"`.
    Missing {
        /// The realm advertised in the challenge.
        realm: String,
    },
    /// A token sent with the Bearer scheme was refused (or the DPoP scheme
    /// at an API without DPoP): `Bearer error="invalid_token"`.
    Invalid(VerifierError),
    /// No (usable) credentials at an API that accepts DPoP: both
    /// challenges, as two `WWW-Authenticate` fields (RFC 9110 11.6.1),
    /// `Bearer realm="<audience>"` then `DPoP algs="<algs>"`.
    MissingEither {
        /// The realm advertised in the Bearer challenge.
        realm: String,
        /// The `algs` of the DPoP challenge, space-separated.
        dpop_algs: String,
    },
    /// Refused under DPoP's rules: a request with the DPoP scheme, a
    /// DPoP-bound token sent as a bearer token, or a proof sent with the
    /// Bearer scheme: `DPoP error="invalid_dpop_proof"` or
    /// `error="invalid_token"` ([`VerifierError::oauth_error`]), with
    /// `algs`. A full replay cache is `503` with `Retry-After` instead.
    Dpop {
        /// Why.
        error: VerifierError,
        /// The `algs` of the DPoP challenge, space-separated.
        dpop_algs: String,
    },
}

/// A quoted-string's content (RFC 9110 5.6.4) made of visible ASCII only,
/// without `"` or `\`: attacker text (quoted in some errors) cannot end
/// the string or break the header.
fn quotable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| *c != '"' && *c != '\\')
        .collect()
}

fn challenge(headers: &mut HeaderMap, value: String, fallback: &'static str) {
    let v = HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(fallback));
    headers.append(WWW_AUTHENTICATE, v);
}

impl IntoResponse for BearerRejection {
    fn into_response(self) -> Response {
        let mut resp = StatusCode::UNAUTHORIZED.into_response();
        let headers = resp.headers_mut();
        match self {
            BearerRejection::Missing { realm } => {
                let realm = quotable(&realm);
                challenge(headers, format!("Bearer realm=\"{realm}\""), "Bearer");
            }
            BearerRejection::Invalid(e) => {
                let description = quotable(&e.to_string());
                challenge(
                    headers,
                    format!("Bearer error=\"invalid_token\", error_description=\"{description}\""),
                    "Bearer",
                );
            }
            BearerRejection::MissingEither { realm, dpop_algs } => {
                let realm = quotable(&realm);
                challenge(headers, format!("Bearer realm=\"{realm}\""), "Bearer");
                let algs = quotable(&dpop_algs);
                challenge(headers, format!("DPoP algs=\"{algs}\""), "DPoP");
            }
            BearerRejection::Dpop {
                error: VerifierError::DpopReplayCacheFull { retry_after },
                ..
            } => {
                // Not the client's fault, nor a credential problem: the
                // API is busy until the earliest remembered proof expires.
                let mut resp = StatusCode::SERVICE_UNAVAILABLE.into_response();
                resp.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(retry_after));
                return resp;
            }
            BearerRejection::Dpop { error, dpop_algs } => {
                let description = quotable(&error.to_string());
                let algs = quotable(&dpop_algs);
                challenge(
                    headers,
                    format!(
                        "DPoP error=\"{}\", error_description=\"{description}\", algs=\"{algs}\"",
                        error.oauth_error()
                    ),
                    "DPoP",
                );
            }
        }
        resp
    }
}

/// The request's credentials, by scheme.
enum Credentials<'a> {
    None,
    Bearer(&'a str),
    Dpop(&'a str),
}

fn credentials(headers: &HeaderMap) -> Credentials<'_> {
    let parsed = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(scheme, rest)| (scheme, rest.trim()))
        .filter(|(_, token)| !token.is_empty());
    match parsed {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Credentials::Bearer(token)
        }
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("dpop") => Credentials::Dpop(token),
        _ => Credentials::None,
    }
}

/// The request's one DPoP proof (RFC 9449 4.3 step 1).
fn one_proof(headers: &HeaderMap) -> Result<&str, VerifierError> {
    let mut proofs = headers.get_all("dpop").iter();
    let proof = proofs.next().ok_or(VerifierError::DpopRequest(
        "the request has no DPoP proof (DPoP header)",
    ))?;
    if proofs.next().is_some() {
        return Err(VerifierError::DpopRequest(
            "the request has more than one DPoP header",
        ));
    }
    proof
        .to_str()
        .map_err(|_| VerifierError::DpopRequest("the DPoP header is not a compact JWS"))
}

impl<S> FromRequestParts<S> for BearerClaims
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<Verifier>::from_ref(state);
        let dpop_algs = verifier.dpop_algs().map(str::to_owned);
        let dpop = |error| match &dpop_algs {
            Some(algs) => BearerRejection::Dpop {
                error,
                dpop_algs: algs.clone(),
            },
            None => BearerRejection::Invalid(error),
        };
        match credentials(&parts.headers) {
            Credentials::None => Err(match &dpop_algs {
                Some(algs) => BearerRejection::MissingEither {
                    realm: verifier.audience().to_owned(),
                    dpop_algs: algs.clone(),
                },
                None => BearerRejection::Missing {
                    realm: verifier.audience().to_owned(),
                },
            }),
            Credentials::Bearer(token) => {
                if dpop_algs.is_some() && parts.headers.contains_key("dpop") {
                    return Err(dpop(VerifierError::DpopRequest(
                        "a DPoP proof came with the Bearer scheme: use Authorization: DPoP",
                    )));
                }
                verifier.verify(token).await.map(BearerClaims).map_err(|e| {
                    if e == VerifierError::DpopBound {
                        dpop(e)
                    } else {
                        BearerRejection::Invalid(e)
                    }
                })
            }
            Credentials::Dpop(token) => {
                if dpop_algs.is_none() {
                    return Err(BearerRejection::Invalid(VerifierError::DpopDisabled));
                }
                let proof = one_proof(&parts.headers).map_err(dpop)?;
                // The path as the router received it (before any nesting
                // stripped a prefix); the base URL is configured, never
                // taken from the Host header.
                let path = parts
                    .extensions
                    .get::<OriginalUri>()
                    .map_or_else(|| parts.uri.path(), |u| u.0.path());
                verifier
                    .verify_dpop(token, proof, parts.method.as_str(), path)
                    .await
                    .map(BearerClaims)
                    .map_err(dpop)
            }
        }
    }
}
