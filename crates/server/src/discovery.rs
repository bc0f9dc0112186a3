//! The discovery documents (OIDC Discovery 1.0 section 3, RFC 8414 section 2),
//! rendered once at start-up: the issuer is fixed for a process's life, so
//! requests are served from these bytes.

use gatehouse_keys::{Alg, HmacAlg};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    config::Settings,
    oauth::{GrantType, STANDARD_SCOPES},
};

/// The rendered document and its ETag.
#[derive(Debug)]
pub struct Discovery {
    pub body: std::sync::Arc<[u8]>,
    pub etag: String,
}

impl Discovery {
    pub fn new(s: &Settings) -> Discovery {
        let e = |p: &str| s.endpoint(p);
        // Exactly the algorithms the operator publishes keys for.
        let sig_algs: Vec<&str> = s.rotation.signing_algs.iter().map(|a| a.as_str()).collect();
        // Client assertions: private_key_jwt's signatures, then
        // client_secret_jwt's MACs.
        let assertion_algs: Vec<&str> = crate::oauth::ASSERTION_ALGS
            .iter()
            .map(|a| a.as_str())
            .chain(HmacAlg::ALL.iter().map(|a| a.as_str()))
            .collect();
        let grant_types = [
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
            GrantType::DeviceCode,
            GrantType::TokenExchange,
        ];
        let mut doc = json!({
            "issuer": s.issuer,
            "authorization_endpoint": e("/authorize"),
            "token_endpoint": e("/token"),
            "userinfo_endpoint": e("/userinfo"),
            "jwks_uri": e("/jwks"),
            "introspection_endpoint": e("/introspect"),
            "revocation_endpoint": e("/revoke"),
            "end_session_endpoint": e("/logout"),
            "registration_endpoint": e("/register"),
            "scopes_supported": STANDARD_SCOPES,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "grant_types_supported": grant_types,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": sig_algs,
            "userinfo_signing_alg_values_supported": [],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
            "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"],
            "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
            "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "at_hash", "name", "preferred_username", "email", "email_verified"],
            "claims_parameter_supported": true,
            "acr_values_supported": gatehouse_protocol::Acr::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            "request_parameter_supported": true,
            "request_uri_parameter_supported": false,
            "request_object_signing_alg_values_supported": crate::authorization::request_object::ALGS.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            "pushed_authorization_request_endpoint": e("/par"),
            "require_pushed_authorization_requests": s.require_pushed_authorization_requests,
            "require_request_uri_registration": false,
            "authorization_response_iss_parameter_supported": true,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "ui_locales_supported": crate::i18n::Lang::ALL.iter().map(|l| l.tag()).collect::<Vec<_>>(),
            "claim_types_supported": ["normal"],
            "access_token_signing_alg_values_supported": [Alg::ES256.as_str(), Alg::RS256.as_str(), Alg::PS256.as_str(), Alg::EdDSA.as_str()],
            // RFC 9449 5.1: proofs are checked at /token and /userinfo.
            "dpop_signing_alg_values_supported": crate::dpop::PROOF_ALGS.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        });
        // Past the json! macro's recursion limit, added one by one.
        if let Some(o) = doc.as_object_mut() {
            o.insert(
                "device_authorization_endpoint".into(),
                e("/device_authorization").into(),
            );
        }
        let body: std::sync::Arc<[u8]> = std::sync::Arc::from(doc.to_string().into_bytes());
        let etag = format!("\"{}\"", hex16(&Sha256::digest(&body)));
        Discovery { body, etag }
    }
}

fn hex16(d: &[u8]) -> String {
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}
