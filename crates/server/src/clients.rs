//! Client registration rules, shared by the admin command and (later)
//! dynamic registration: metadata is validated into a [`Client`] and a
//! secret is generated where the auth method needs one.

use gatehouse_keys::{Alg, KeyUse, PublicKey, SecretHasher};
use gatehouse_storage::model::Client;

use crate::{
    oauth::{validate_redirect_uri, AuthMethod, GrantType},
    session::random_token,
};

/// What a registrant asks for, before validation.
#[derive(Debug, Default, Clone)]
pub struct ClientSpec {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub auth_method: Option<String>,
    pub scopes: Vec<String>,
    pub id_token_signing_alg: Option<String>,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub access_token_ttl: Option<i64>,
}

/// Why a registration was refused: the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    RedirectUri(String),
    #[error("{0}")]
    Metadata(String),
}

/// The usable signing keys of a JWK Set (JSON text): each needs a `kid`
/// and an `alg` among RS256, PS256, ES256, EdDSA. Others are skipped.
pub fn parse_jwks(text: &str) -> Result<Vec<PublicKey>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|_| "jwks is not a JSON JWK Set".to_owned())?;
    let keys = v
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| "jwks must be {\"keys\": [...]}".to_owned())?;
    Ok(keys
        .iter()
        .filter_map(|k| PublicKey::from_jwk_value(k, None).ok())
        .filter(|k| k.key_use() == KeyUse::Sig && k.kid().is_some())
        .collect())
}

/// Validates a spec into a new client (with a fresh id) and its secret in
/// clear, shown once; only its keyed hash is kept.
pub fn build(
    spec: ClientSpec,
    hasher: &SecretHasher,
    now: i64,
) -> Result<(Client, Option<String>), SpecError> {
    let name = spec.name.trim().to_owned();
    if name.is_empty() || name.len() > 200 {
        return Err(SpecError::Metadata(
            "client name must be 1 to 200 characters".into(),
        ));
    }
    let grant_types: Vec<GrantType> = if spec.grant_types.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        spec.grant_types
            .iter()
            .map(|g| g.parse())
            .collect::<Result<_, _>>()
            .map_err(SpecError::Metadata)?
    };
    let method: AuthMethod = match &spec.auth_method {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => m.parse().map_err(SpecError::Metadata)?,
    };
    if method == AuthMethod::PrivateKeyJwt {
        match (&spec.jwks, &spec.jwks_uri) {
            (Some(_), Some(_)) => {
                return Err(SpecError::Metadata(
                    "give jwks or jwks_uri, not both".into(),
                ))
            }
            (None, None) => {
                return Err(SpecError::Metadata(
                    "private_key_jwt needs the client's public keys: jwks or jwks_uri".into(),
                ))
            }
            (Some(j), None) => {
                let keys = parse_jwks(j).map_err(SpecError::Metadata)?;
                if keys.is_empty() {
                    return Err(SpecError::Metadata(
                        "jwks holds no usable signing key (each needs kid and alg)".into(),
                    ));
                }
            }
            (None, Some(u)) => validate_redirect_uri(u)
                .map_err(|e| SpecError::Metadata(e.replace("redirect URI", "jwks_uri")))?,
        }
    }
    if method == AuthMethod::None && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(SpecError::Metadata(
            "a public client (auth method none) cannot use client_credentials".into(),
        ));
    }
    let uses_code = grant_types.contains(&GrantType::AuthorizationCode);
    if uses_code && spec.redirect_uris.is_empty() {
        return Err(SpecError::RedirectUri(
            "the authorization_code grant needs at least one --redirect-uri".into(),
        ));
    }
    for u in spec
        .redirect_uris
        .iter()
        .chain(&spec.post_logout_redirect_uris)
    {
        validate_redirect_uri(u).map_err(SpecError::RedirectUri)?;
    }
    if let Some(u) = &spec.backchannel_logout_uri {
        validate_redirect_uri(u).map_err(SpecError::Metadata)?;
    }
    let alg = match &spec.id_token_signing_alg {
        None => Alg::RS256,
        Some(a) => {
            let alg: Alg = a
                .parse()
                .map_err(|e: gatehouse_keys::KeyError| SpecError::Metadata(e.to_string()))?;
            if alg.key_use() != KeyUse::Sig {
                return Err(SpecError::Metadata(format!(
                    "{alg} is not a signing algorithm"
                )));
            }
            alg
        }
    };
    for s in &spec.scopes {
        if s.is_empty() || s.contains(' ') {
            return Err(SpecError::Metadata(format!("invalid scope {s:?}")));
        }
    }
    if let Some(t) = spec.access_token_ttl {
        if !(30..=86_400).contains(&t) {
            return Err(SpecError::Metadata(
                "access token lifetime must be 30 to 86400 seconds".into(),
            ));
        }
    }
    let secret = method.uses_secret().then(random_token);
    let client = Client {
        id: uuid::Uuid::new_v4().simple().to_string(),
        secret_hash: secret.as_deref().map(|s| hasher.hash(s)),
        name,
        redirect_uris: spec.redirect_uris,
        post_logout_redirect_uris: spec.post_logout_redirect_uris,
        grant_types: grant_types.iter().map(|g| g.as_str().to_owned()).collect(),
        response_types: if uses_code {
            vec!["code".to_owned()]
        } else {
            Vec::new()
        },
        token_endpoint_auth_method: method.as_str().to_owned(),
        scopes: spec.scopes,
        jwks: spec.jwks,
        jwks_uri: spec.jwks_uri,
        id_token_signed_response_alg: alg.as_str().to_owned(),
        access_token_lifetime: spec.access_token_ttl,
        refresh_token_lifetime: None,
        backchannel_logout_uri: spec.backchannel_logout_uri,
        registration_token_hash: None,
        created_at: now,
        updated_at: now,
    };
    Ok((client, secret))
}
