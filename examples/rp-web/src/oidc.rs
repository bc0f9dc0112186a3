//! Talking to Gatehouse with the `openidconnect` crate: discovery (cached
//! for a few minutes, so key rotation reaches the app), the authorization
//! URL, the code exchange with ID token validation, and the logout URL.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use openidconnect::{
    core::{
        CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
        CoreClientAuthMethod, CoreGrantType, CoreIdToken, CoreJsonWebKey,
        CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
        CoreResponseType, CoreSubjectIdentifierType,
    },
    AccessTokenHash, AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret,
    CsrfToken, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    LogoutProviderMetadata, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadata, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use url::Url;

use crate::{config::Config, pages::PageError};

/// How long discovery (and with it the JWKS) is reused.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// Timeout for every request to Gatehouse.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// RFC 9207 support, advertised in discovery.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct IssParameterMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}
impl AdditionalProviderMetadata for IssParameterMetadata {}

/// Discovery with `end_session_endpoint` and the RFC 9207 flag.
type Metadata = ProviderMetadata<
    LogoutProviderMetadata<IssParameterMetadata>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The client as built from discovery: authorization endpoint set, token
/// and userinfo endpoints as discovered.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// One discovery result.
struct Provider {
    client: Client,
    issuer: String,
    end_session: Option<EndSessionUrl>,
    iss_parameter_supported: bool,
    fetched: Instant,
}

/// What `/login` must remember to finish the flow in `/callback`.
pub struct Pending {
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

/// The result of a successful sign-in.
#[derive(Clone)]
pub struct SignedIn {
    /// The validated ID token claims as JSON.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The raw ID token, kept for `id_token_hint` at logout.
    pub id_token: CoreIdToken,
}

/// The relying party: configuration, HTTP client, cached discovery.
pub struct Oidc {
    config: Config,
    http: openidconnect::reqwest::Client,
    provider: Mutex<Option<Arc<Provider>>>,
}

impl Oidc {
    /// Builds the relying party; nothing is fetched until the first request.
    pub fn new(config: Config) -> Result<Self, crate::Error> {
        // No redirects: the OpenID Connect endpoints never redirect, and
        // following them would open the app to SSRF.
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| crate::Error::Http(e.to_string()))?;
        Ok(Oidc {
            config,
            http,
            provider: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The cached discovery result, fetched again once it is older than
    /// [`DISCOVERY_TTL`].
    async fn provider(&self) -> Result<Arc<Provider>, PageError> {
        let mut cached = self.provider.lock().await;
        if let Some(p) = cached.as_ref() {
            if p.fetched.elapsed() < DISCOVERY_TTL {
                return Ok(p.clone());
            }
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| PageError::internal(format!("The issuer URL is invalid: {e}")))?;
        let meta = Metadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| {
                PageError::unavailable(format!(
                    "Could not read the identity provider's configuration: {e}"
                ))
            })?;
        let redirect = RedirectUrl::new(self.config.redirect_uri())
            .map_err(|e| PageError::internal(format!("The redirect URI is invalid: {e}")))?;
        let extra = meta.additional_metadata();
        let end_session = extra.end_session_endpoint.clone();
        let iss_parameter_supported = extra
            .additional_metadata
            .authorization_response_iss_parameter_supported
            .unwrap_or(false);
        let issuer = meta.issuer().to_string();
        let client = CoreClient::from_provider_metadata(
            meta,
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        let p = Arc::new(Provider {
            client,
            issuer,
            end_session,
            iss_parameter_supported,
            fetched: Instant::now(),
        });
        *cached = Some(p.clone());
        Ok(p)
    }

    /// A fresh authorization URL (code flow, PKCE S256, state, nonce) and
    /// what to remember for the callback.
    pub async fn authorization_url(&self) -> Result<(Url, Pending), PageError> {
        let provider = self.provider().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = provider
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok((
            url,
            Pending {
                state,
                nonce,
                verifier,
            },
        ))
    }

    /// Checks the RFC 9207 `iss` parameter of the authorization response:
    /// when present it must be the issuer; when the provider advertises
    /// support it must be present.
    pub async fn check_iss(&self, iss: Option<&str>) -> Result<(), PageError> {
        let provider = self.provider().await?;
        match iss {
            Some(iss) if iss == provider.issuer => Ok(()),
            Some(_) => Err(PageError::bad_request(
                "The response came from another identity provider (iss mismatch).",
            )),
            None if provider.iss_parameter_supported => Err(PageError::bad_request(
                "The response carries no iss parameter although the identity provider sends it.",
            )),
            None => Ok(()),
        }
    }

    /// Redeems the code with the PKCE verifier and validates the ID token:
    /// signature against the JWKS, issuer, audience, expiry, nonce, and
    /// at_hash against the access token.
    pub async fn finish(&self, code: String, pending: Pending) -> Result<SignedIn, PageError> {
        let provider = self.provider().await?;
        let client = &provider.client;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| PageError::internal(format!("No token endpoint: {e}")))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| PageError::bad_gateway(format!("The code exchange failed: {e}")))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| PageError::bad_gateway("The token response has no ID token."))?;
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &pending.nonce)
            .map_err(|e| PageError::bad_gateway(format!("The ID token is invalid: {e}")))?;
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token
                .signing_alg()
                .map_err(|e| PageError::bad_gateway(format!("The ID token is invalid: {e}")))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| PageError::bad_gateway(format!("The ID token is invalid: {e}")))?;
            let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
                .map_err(|e| PageError::bad_gateway(format!("Cannot check at_hash: {e}")))?;
            if actual != *expected {
                return Err(PageError::bad_gateway(
                    "The ID token does not match the access token (at_hash).",
                ));
            }
        }
        let claims = match serde_json::to_value(claims) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => return Err(PageError::internal("Cannot read the ID token claims.")),
        };
        Ok(SignedIn {
            claims,
            id_token: id_token.clone(),
        })
    }

    /// The URL that ends the Gatehouse session (RP-Initiated Logout), or
    /// `None` when the provider has no end_session_endpoint.
    pub async fn logout_url(
        &self,
        id_token: &CoreIdToken,
        state: CsrfToken,
    ) -> Result<Option<Url>, PageError> {
        let provider = self.provider().await?;
        let Some(endpoint) = provider.end_session.clone() else {
            return Ok(None);
        };
        let home = PostLogoutRedirectUrl::new(self.config.home_uri())
            .map_err(|e| PageError::internal(format!("The home URL is invalid: {e}")))?;
        Ok(Some(
            LogoutRequest::from(endpoint)
                .set_id_token_hint(id_token)
                .set_client_id(ClientId::new(self.config.client_id.clone()))
                .set_post_logout_redirect_uri(home)
                .set_state(state)
                .http_get_url(),
        ))
    }
}
