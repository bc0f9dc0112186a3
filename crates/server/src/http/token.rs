//! The token endpoint (RFC 6749 3.2, 4.1.3, 4.4.2, 6; OIDC Core 3.1.3;
//! RFC 8628 3.4 the device code; RFC 8693 2 token exchange).
//! Authenticates the client, parses the form into a [`TokenRequest`], then
//! hands over to one file per grant type in `grants/`. Every answer carries `Cache-Control: no-store` and `Pragma: no-cache`
//! (RFC 6749 5.1), set by path around the router (`http::layers`).
//! A DPoP proof (RFC 9449 5) binds the access token, and a public
//! client's refresh token, to the proof's key.

use axum::{
    body::Bytes,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
    Json,
};

use super::{client_auth, error::AppError, form::Params};
use crate::{
    dpop::ProofRequest,
    grants::{self, PresentedToken, TokenRequest},
    oauth::{ErrorCode, GrantType, TokenTypeUri},
    state::AppState,
};

/// The form of an allowed grant type as a [`TokenRequest`]: each parameter
/// the grant reads, a missing required one `invalid_request` naming it.
fn token_request(grant: GrantType, p: &Params) -> Result<TokenRequest, AppError> {
    let owned = |name| p.get(name).map(str::to_owned);
    Ok(match grant {
        GrantType::AuthorizationCode => TokenRequest::AuthorizationCode {
            code: p.require("code")?.to_owned(),
            redirect_uri: p.require("redirect_uri")?.to_owned(),
            code_verifier: owned("code_verifier"),
        },
        GrantType::RefreshToken => TokenRequest::RefreshToken {
            refresh_token: p.require("refresh_token")?.to_owned(),
            scope: owned("scope"),
        },
        GrantType::ClientCredentials => TokenRequest::ClientCredentials {
            scope: owned("scope"),
            resource: owned("resource"),
        },
        GrantType::DeviceCode => TokenRequest::DeviceCode {
            device_code: p.require("device_code")?.to_owned(),
        },
        GrantType::TokenExchange => TokenRequest::TokenExchange {
            subject: PresentedToken {
                token: p.require("subject_token")?.to_owned(),
                token_type: token_type(p.require("subject_token_type")?, "subject_token_type")?,
            },
            // RFC 8693 2.1: actor_token_type is required with actor_token
            // and must not be sent without it.
            actor: match (p.get("actor_token"), p.get("actor_token_type")) {
                (None, None) => None,
                (Some(token), Some(t)) => Some(PresentedToken {
                    token: token.to_owned(),
                    token_type: token_type(t, "actor_token_type")?,
                }),
                (Some(_), None) => {
                    return Err(AppError::invalid_request(
                        "actor_token requires actor_token_type",
                    ))
                }
                (None, Some(_)) => {
                    return Err(AppError::invalid_request(
                        "actor_token_type must not be sent without actor_token",
                    ))
                }
            },
            resource: owned("resource"),
            audience: owned("audience"),
            scope: owned("scope"),
            requested_token_type: p
                .get("requested_token_type")
                .map(|t| token_type(t, "requested_token_type"))
                .transpose()?,
        },
    })
}

/// A token type identifier (RFC 8693 3) sent as `param`; one Gatehouse
/// does not know is `invalid_request` (RFC 8693 2.2.2).
fn token_type(value: &str, param: &str) -> Result<TokenTypeUri, AppError> {
    value.parse().map_err(|_| {
        AppError::invalid_request(format!(
            "unsupported {param}; use {} or {}",
            TokenTypeUri::AccessToken,
            TokenTypeUri::IdToken
        ))
    })
}

/// `POST /token` (RFC 6749 3.2; RFC 9449 5).
pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let r = answer(&state, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    super::dpop::with_nonce(&state, r)
}

async fn answer(state: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<Response, AppError> {
    super::form::require_form(headers)?;
    let params = Params::parse(body)?;
    let grant = params.require("grant_type")?;
    let grant: Option<GrantType> = grant.parse().ok();
    let client = client_auth::authenticate(state, headers, &params).await?;
    let Some(grant) = grant else {
        return Err(AppError::oauth(
            ErrorCode::UnsupportedGrantType,
            "grant_type is not supported",
        ));
    };
    if !client.client.grant_types.contains(&grant) {
        return Err(AppError::oauth(
            ErrorCode::UnauthorizedClient,
            "this client may not use this grant type",
        ));
    }
    let request = token_request(grant, &params)?;
    let proof = super::dpop::verified(
        state,
        headers,
        ProofRequest {
            method: "POST",
            path: "/token",
            access_token: None,
        },
    )?;
    let response = grants::exchange(state, &client, &request, proof.as_ref()).await?;
    let format = if response.access_token.contains('.') {
        "jwe"
    } else {
        "opaque"
    };
    state
        .metrics
        .tokens_issued
        .get_or_create(&crate::metrics::TokenLabels {
            grant: request.grant_type().as_str().to_owned(),
            format: format.to_owned(),
        })
        .inc();
    Ok(Json(response).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(grant: GrantType, form: &str) -> Result<TokenRequest, AppError> {
        token_request(grant, &Params::parse(form.as_bytes()).unwrap())
    }

    fn missing(r: Result<TokenRequest, AppError>) -> String {
        match r {
            Err(AppError::OAuth(crate::error::OAuthError::InvalidRequest(d))) => d.into_owned(),
            other => panic!("expected invalid_request, got {other:?}"),
        }
    }

    #[test]
    fn each_grant_reads_its_parameters() {
        assert_eq!(
            parse(
                GrantType::AuthorizationCode,
                "code=c&redirect_uri=https%3A%2F%2Fa.example%2Fcb&code_verifier=v&scope=x"
            )
            .unwrap(),
            TokenRequest::AuthorizationCode {
                code: "c".into(),
                redirect_uri: "https://a.example/cb".into(),
                code_verifier: Some("v".into()),
            }
        );
        assert_eq!(
            parse(GrantType::RefreshToken, "refresh_token=r&scope=").unwrap(),
            TokenRequest::RefreshToken {
                refresh_token: "r".into(),
                scope: None,
            }
        );
        let cc = parse(
            GrantType::ClientCredentials,
            "scope=a+b&resource=https%3A%2F%2Fapi",
        )
        .unwrap();
        assert_eq!(cc.grant_type(), GrantType::ClientCredentials);
        assert_eq!(
            cc,
            TokenRequest::ClientCredentials {
                scope: Some("a b".into()),
                resource: Some("https://api".into()),
            }
        );
    }

    #[test]
    fn token_exchange_reads_its_parameters_and_known_token_types() {
        let at = "urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token";
        let r = parse(
            GrantType::TokenExchange,
            &format!(
                "subject_token=s&subject_token_type={at}&actor_token=a&actor_token_type={at}\
                 &resource=https%3A%2F%2Fc&audience=https%3A%2F%2Fc&scope=read\
                 &requested_token_type={at}"
            ),
        )
        .unwrap();
        assert_eq!(r.grant_type(), GrantType::TokenExchange);
        let token = |t: &str| PresentedToken {
            token: t.into(),
            token_type: TokenTypeUri::AccessToken,
        };
        assert_eq!(
            r,
            TokenRequest::TokenExchange {
                subject: token("s"),
                actor: Some(token("a")),
                resource: Some("https://c".into()),
                audience: Some("https://c".into()),
                scope: Some("read".into()),
                requested_token_type: Some(TokenTypeUri::AccessToken),
            }
        );
        let debug = format!("{r:?}");
        assert!(
            !debug.contains("\"s\"") && !debug.contains("\"a\""),
            "{debug}"
        );

        assert_eq!(
            missing(parse(
                GrantType::TokenExchange,
                &format!("subject_token_type={at}")
            )),
            "missing parameter subject_token"
        );
        assert_eq!(
            missing(parse(GrantType::TokenExchange, "subject_token=s")),
            "missing parameter subject_token_type"
        );
        assert!(missing(parse(
            GrantType::TokenExchange,
            "subject_token=s&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"
        ))
        .starts_with("unsupported subject_token_type"));
        assert_eq!(
            missing(parse(
                GrantType::TokenExchange,
                &format!("subject_token=s&subject_token_type={at}&actor_token=a")
            )),
            "actor_token requires actor_token_type"
        );
    }

    #[test]
    fn a_missing_parameter_is_named_first_come_first_named() {
        assert_eq!(
            missing(parse(GrantType::AuthorizationCode, "code_verifier=v")),
            "missing parameter code"
        );
        assert_eq!(
            missing(parse(GrantType::AuthorizationCode, "code=c")),
            "missing parameter redirect_uri"
        );
        assert_eq!(
            missing(parse(GrantType::RefreshToken, "scope=a")),
            "missing parameter refresh_token"
        );
    }

    #[test]
    fn token_request_debug_hides_secrets() {
        for (grant, form) in [
            (GrantType::RefreshToken, "refresh_token=SECRETVALUE&scope=openid"),
            (
                GrantType::AuthorizationCode,
                "code=SECRETVALUE&redirect_uri=https%3A%2F%2Fa.example%2Fcb&code_verifier=SECRETVALUE2",
            ),
        ] {
            let debug = format!("{:?}", parse(grant, form).unwrap());
            assert!(!debug.contains("SECRETVALUE"), "{debug}");
            assert!(debug.contains("<hidden>"), "{debug}");
        }
        let debug = format!(
            "{:?}",
            parse(
                GrantType::AuthorizationCode,
                "code=c&redirect_uri=https%3A%2F%2Fa.example%2Fcb"
            )
            .unwrap()
        );
        assert!(debug.contains("code_verifier: None"), "{debug}");

        let kek = gatehouse_keys::Kek::generate();
        let (client, secret) = crate::clients::build(
            crate::clients::ClientSpec {
                name: "debug".into(),
                grant_types: vec!["client_credentials".into()],
                ..crate::clients::ClientSpec::default()
            },
            &gatehouse_keys::SecretHasher::new(&kek),
            &gatehouse_keys::SecretSealer::new(&kek),
            0,
            &crate::outbound::OutboundPolicy::default(),
        )
        .unwrap();
        let hash = client.secret_hash.clone().unwrap();
        let id = client.id.clone();
        let debug = format!(
            "{:?}",
            grants::AuthenticatedClient {
                client: std::sync::Arc::new(client),
                method: crate::oauth::AuthMethod::ClientSecretBasic,
            }
        );
        assert!(
            debug.contains(id.as_str()) && debug.contains("ClientSecretBasic"),
            "{debug}"
        );
        assert!(!debug.contains(&hash), "{debug}");
        assert!(!debug.contains(&secret.unwrap()), "{debug}");
    }
}
