//! The UserInfo endpoint (OIDC Core 5.3) with bearer tokens per RFC 6750
//! (in the Authorization header, or in a form body, RFC 6750 2.2) and
//! DPoP-bound tokens per RFC 9449 7 (`Authorization: DPoP` and a proof).

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::{IntoResponse, Response},
    Json,
};

use super::{
    error::{dpop_algs, AppError},
    form::Params,
};
use crate::{
    dpop::{Proof, ProofRequest},
    error::Error,
    oauth::{ErrorCode, Jkt},
    state::AppState,
    tokens::claims::{UserClaims, UserinfoClaims},
};

/// A malformed request (RFC 6750 3.1 `invalid_request`: 400 with a Bearer
/// challenge).
fn malformed(description: impl Into<std::borrow::Cow<'static, str>>) -> AppError {
    AppError::Bearer {
        code: Some(ErrorCode::InvalidRequest),
        description: description.into(),
    }
}

/// A refusal under the DPoP scheme (RFC 9449 7.1).
fn dpop_refused(
    code: ErrorCode,
    description: impl Into<std::borrow::Cow<'static, str>>,
) -> AppError {
    AppError::Dpop {
        code,
        description: description.into(),
    }
}

/// How the access token was presented.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// RFC 6750: whoever holds it may use it.
    Bearer(String),
    /// RFC 9449 7.1: with a proof of the key it is bound to.
    Dpop(String),
}

/// The access token of a request: header (Bearer or DPoP) or form body
/// (Bearer), never both (RFC 6750 2); `None` without either. Another
/// scheme is answered like no credentials, with a challenge and no error
/// code (RFC 6750 3.1: "an unsupported authentication method"); a
/// malformed request is `invalid_request`. With a header a POST body that
/// is not a form is ignored (OIDC Core 5.3.1 needs only the header; a
/// token in the body must be a form, RFC 6750 2.2).
pub fn presented(
    headers: &HeaderMap,
    method: &Method,
    body: &[u8],
) -> Result<Option<Presented>, AppError> {
    let from_header = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| malformed("malformed Authorization header"))?;
            let (scheme, token) = v.split_once(' ').unwrap_or((v, ""));
            let dpop = scheme.eq_ignore_ascii_case("dpop");
            if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AppError::Bearer {
                    code: None,
                    description: "use the Bearer or the DPoP scheme".into(),
                });
            }
            let token = token.trim().to_owned();
            if token.is_empty() {
                return Err(malformed("the access token is empty"));
            }
            Some(if dpop {
                Presented::Dpop(token)
            } else {
                Presented::Bearer(token)
            })
        }
    };
    let from_body = if method == Method::POST && !body.is_empty() {
        match super::form::require_form(headers) {
            Ok(()) => Params::parse(body)
                .map_err(|e| match e {
                    AppError::OAuth(e) => malformed(e.into_parts().1),
                    other => other,
                })?
                .get("access_token")
                .map(|t| Presented::Bearer(t.to_owned())),
            Err(_) if from_header.is_some() => None,
            Err(_) => {
                return Err(malformed(
                    "an access token in the body must be application/x-www-form-urlencoded",
                ))
            }
        }
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(malformed("send the access token in one place only")),
        (a, b) => Ok(a.or(b)),
    }
}

/// `GET /userinfo` and `POST /userinfo` (OIDC Core 5.3; RFC 9449 7).
pub async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut r = answer(&state, &method, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    // Both schemes are accepted: a refusal for want of credentials also
    // names the DPoP proof algorithms (RFC 9449 7.1).
    if r.status() == StatusCode::UNAUTHORIZED
        && r.headers()
            .get(header::WWW_AUTHENTICATE)
            .is_some_and(|v| v.as_bytes().starts_with(b"Bearer"))
    {
        if let Ok(v) = HeaderValue::from_str(&format!("DPoP {}", dpop_algs())) {
            r.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
    }
    super::dpop::with_nonce(&state, r)
}

/// A DPoP failure as a DPoP challenge (RFC 9449 7.1).
fn as_challenge(e: Error) -> AppError {
    match e {
        Error::OAuth(e) => {
            let (code, description, _) = e.into_parts();
            dpop_refused(code, description)
        }
        e => e.into(),
    }
}

/// The proof of a token presented under the DPoP scheme, checked but not
/// yet recorded: a proof refused is answered with a DPoP challenge.
fn proof_of(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    token: &str,
) -> Result<Proof, AppError> {
    let req = ProofRequest {
        method: method.as_str(),
        path: "/userinfo",
        access_token: Some(token),
    };
    match super::dpop::verified(state, headers, req) {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(dpop_refused(
            ErrorCode::InvalidDpopProof,
            "the DPoP scheme needs a DPoP proof header",
        )),
        Err(e) => Err(as_challenge(e)),
    }
}

async fn answer(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, AppError> {
    let Some(presented) = presented(headers, method, body)? else {
        return Err(AppError::Bearer {
            code: None,
            description: "".into(),
        });
    };
    let (token, proof) = match &presented {
        Presented::Bearer(t) => (t.as_str(), None),
        Presented::Dpop(t) => (t.as_str(), Some(proof_of(state, method, headers, t)?)),
    };
    let proven: Option<&Jkt> = proof.as_ref().map(|p| &p.jkt);
    let refused = |d: &'static str| match presented {
        Presented::Bearer(_) => AppError::invalid_token(d),
        Presented::Dpop(_) => dpop_refused(ErrorCode::InvalidToken, d),
    };
    let Some(at) = state.tokens.read_access_token(token).await? else {
        return Err(refused("the access token is invalid, expired or revoked"));
    };
    // A bound token only with a proof of its key (RFC 9449 7.2); an
    // unbound one only as a bearer token (RFC 9449 7.1).
    match (at.claims.cnf.as_ref().map(|c| &c.jkt), proven) {
        (Some(bound), Some(j)) if bound == j => {}
        (Some(_), Some(_)) => {
            return Err(dpop_refused(
                ErrorCode::InvalidToken,
                "the DPoP proof is not of the key the access token is bound to",
            ))
        }
        (Some(_), None) => {
            return Err(dpop_refused(
                ErrorCode::InvalidToken,
                "the access token is DPoP-bound: present it with the DPoP scheme and a proof",
            ))
        }
        (None, Some(_)) => {
            return Err(dpop_refused(
                ErrorCode::InvalidToken,
                "the access token is not DPoP-bound: present it with the Bearer scheme",
            ))
        }
        (None, None) => {}
    }
    // A live token bound to the proof's key: only now is the proof's jti
    // recorded, so a stranger's proof with no token behind it writes
    // nothing.
    if let Some(p) = &proof {
        p.record(state).await.map_err(as_challenge)?;
    }
    if at.claims.aud != state.settings.endpoint("/userinfo") {
        return Err(refused("the access token is not for the userinfo endpoint"));
    }
    if !at.scope.contains("openid") {
        // In the scheme the token came with (RFC 6750 3.1; RFC 9449 7.1).
        let challenge = match presented {
            Presented::Bearer(_) => {
                "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", scope=\"openid\""
            }
            Presented::Dpop(_) => "DPoP error=\"insufficient_scope\", scope=\"openid\"",
        };
        let mut r = StatusCode::FORBIDDEN.into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        return Ok(r);
    }
    // From a recent read while the database is away (`recent_reads`).
    let user = match state.user_recently(&at.claims.sub).await? {
        Some(u) if !u.disabled => u,
        _ => return Err(refused("the user is no longer active")),
    };
    Ok(Json(UserinfoClaims {
        user: UserClaims::of(&user, &at.scope),
        sub: user.id.clone(),
    })
    .into_response())
}
