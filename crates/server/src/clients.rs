//! Client registration rules, shared by the admin command and dynamic
//! registration: metadata is validated into a [`Client`] and a secret is
//! generated where the auth method needs one. Secrets are kept as a keyed
//! hash; for client_secret_jwt also sealed with the key-encryption key,
//! since the HMAC of an assertion can only be checked with the secret.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use gatehouse_keys::{Alg, HmacAlg, KeyUse, PublicKey, SecretHasher, SecretSealer};
use gatehouse_storage::model::{Client, RegistrationPolicy};

use gatehouse_protocol::UnknownName;

use crate::{
    oauth::{validate_redirect_uri, AuthMethod, ClientId, GrantType, ScopeSet, STANDARD_SCOPES},
    outbound::OutboundPolicy,
    secrets::{random_bytes, random_token},
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
    /// The one JWS algorithm the client's assertions must use
    /// (`token_endpoint_auth_signing_alg`): HS256/384/512 for
    /// client_secret_jwt, RS256/PS256/ES256/EdDSA for private_key_jwt.
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// Every authorization request must carry a PKCE challenge, even where
    /// the general rule would let this client omit it.
    pub require_pkce: bool,
    /// Also accept the token endpoint URL as an assertion's `aud`
    /// (client_secret_jwt and private_key_jwt only).
    pub legacy_assertion_audience: bool,
    /// Every access token must be DPoP-bound (RFC 9449 5.2).
    pub dpop_bound_access_tokens: bool,
    /// Authorization requests only through `/par` (RFC 9126 6).
    pub require_pushed_authorization_requests: bool,
}

impl ClientSpec {
    /// The spec an existing client was built from, to change a few fields
    /// and validate the whole again (`clients update`, RFC 7592 update).
    pub fn of(c: &Client) -> ClientSpec {
        ClientSpec {
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            grant_types: c.grant_types.iter().map(ToString::to_string).collect(),
            auth_method: Some(c.token_endpoint_auth_method.to_string()),
            scopes: c.scopes.clone(),
            id_token_signing_alg: Some(c.id_token_signed_response_alg.to_string()),
            jwks: c.jwks.clone(),
            jwks_uri: c.jwks_uri.clone(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            access_token_ttl: c.access_token_lifetime,
            token_endpoint_auth_signing_alg: c.token_endpoint_auth_signing_alg.clone(),
            require_pkce: c.require_pkce,
            legacy_assertion_audience: c.legacy_assertion_audience,
            dpop_bound_access_tokens: c.dpop_bound_access_tokens,
            require_pushed_authorization_requests: c.require_pushed_authorization_requests,
        }
    }
}

/// Why a registration was refused: the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    RedirectUri(String),
    #[error("{0}")]
    Metadata(String),
    /// The secret could not be sealed (not the registrant's fault).
    #[error("{0}")]
    Internal(String),
}

/// A freshly generated client secret: the clear value (shown once), its
/// keyed hash, and for client_secret_jwt the sealed value.
pub struct NewSecret {
    pub secret: String,
    pub hash: String,
    pub sealed: Option<Vec<u8>>,
}

/// Generates a secret for `client_id` authenticating with `method`, or
/// `None` when the method has no secret. client_secret_jwt secrets are 64
/// random bytes (86 base64url characters, so the HMAC key is at least the
/// 64-byte hash size even for HS512, RFC 7518 3.2); the others 32 bytes.
pub fn new_secret(
    method: AuthMethod,
    client_id: &str,
    hasher: &SecretHasher,
    sealer: &SecretSealer,
) -> Result<Option<NewSecret>, SpecError> {
    if !method.uses_secret() {
        return Ok(None);
    }
    let secret = if method == AuthMethod::ClientSecretJwt {
        URL_SAFE_NO_PAD.encode(random_bytes::<64>())
    } else {
        random_token()
    };
    let sealed = if method == AuthMethod::ClientSecretJwt {
        Some(
            sealer
                .seal(client_id, &secret)
                .map_err(|e| SpecError::Internal(format!("sealing the client secret: {e}")))?,
        )
    } else {
        None
    };
    Ok(Some(NewSecret {
        hash: hasher.hash(&secret),
        secret,
        sealed,
    }))
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
/// clear, shown once; only its keyed hash is kept (and, for
/// client_secret_jwt, the secret sealed with the key-encryption key).
pub fn build(
    spec: ClientSpec,
    hasher: &SecretHasher,
    sealer: &SecretSealer,
    now: i64,
    outbound: &OutboundPolicy,
) -> Result<(Client, Option<String>), SpecError> {
    let id = ClientId::new(uuid::Uuid::new_v4().simple().to_string());
    let mut client = validate(spec, id, now, outbound)?;
    let method = client.token_endpoint_auth_method;
    let secret = new_secret(method, &client.id, hasher, sealer)?;
    client.secret_hash = secret.as_ref().map(|s| s.hash.clone());
    client.client_secret_sealed = secret.as_ref().and_then(|s| s.sealed.clone());
    Ok((client, secret.map(|s| s.secret)))
}

/// Validates a changed spec for an existing client: everything is checked
/// as for a new one; the id, secret, registration access token and policy,
/// refresh-token lifetime, creation time and required authentication level
/// stay. The auth method cannot change (the secret, or its absence,
/// belongs to it).
///
/// The required level (`require_acr`) is the operator's alone: a spec has
/// no field for it, so neither registration nor an RFC 7592 update can set
/// or clear it; `clients update --require-acr` sets it on the result.
pub fn revise(
    old: &Client,
    spec: ClientSpec,
    now: i64,
    outbound: &OutboundPolicy,
) -> Result<Client, SpecError> {
    if spec.grant_types.is_empty() {
        // Its stored grant types are all unknown to this release: the
        // default (the code flow) would widen it, so it must be said.
        return Err(SpecError::Metadata(
            "this client has no grant type this release knows; give the grant types, or update it with the release that registered them".into(),
        ));
    }
    let new = validate(spec, old.id.clone(), now, outbound)?;
    if new.token_endpoint_auth_method != old.token_endpoint_auth_method {
        return Err(SpecError::Metadata(
            "token_endpoint_auth_method cannot change; register a new client instead".into(),
        ));
    }
    Ok(Client {
        secret_hash: old.secret_hash.clone(),
        client_secret_sealed: old.client_secret_sealed.clone(),
        registration_token_hash: old.registration_token_hash.clone(),
        registration_policy: old.registration_policy.clone(),
        refresh_token_lifetime: old.refresh_token_lifetime,
        created_at: old.created_at,
        require_acr: old.require_acr,
        ..new
    })
}

/// Refuses a registration (or, with `before`, an update of one) that asks
/// for more than its policy allows: a grant type or an API scope the
/// initial access token did not grant, or the device grant (never
/// self-registered; an update keeps it if the client had it). The OIDC
/// scopes are always allowed.
pub fn check_policy(
    client: &Client,
    policy: &RegistrationPolicy,
    before: Option<&Client>,
) -> Result<(), SpecError> {
    // The device flow's consent page can show only the client's name (no
    // redirect host): a self-chosen name would be a phishing tool. An
    // update keeps it where the operator gave it (`clients update`).
    let device = |c: &Client| c.grant_types.contains(&GrantType::DeviceCode);
    if device(client) && !before.is_some_and(device) {
        return Err(SpecError::Metadata(format!(
            "grant type {} is only for clients an administrator registers",
            GrantType::DeviceCode
        )));
    }
    if let Some(g) = client.grant_types.iter().find(|g| {
        !policy.grant_types.contains(g) && !before.is_some_and(|b| b.grant_types.contains(g))
    }) {
        return Err(SpecError::Metadata(format!(
            "grant type {g} is not allowed for this registration"
        )));
    }
    if let Some(s) = client
        .scopes
        .iter()
        .find(|s| !STANDARD_SCOPES.contains(&s.as_str()) && !policy.scopes.contains(s))
    {
        return Err(SpecError::Metadata(format!(
            "scope {s} is not allowed for this registration"
        )));
    }
    Ok(())
}

/// Checks a spec into a client with the given id and no secret yet.
fn validate(
    spec: ClientSpec,
    id: ClientId,
    now: i64,
    outbound: &OutboundPolicy,
) -> Result<Client, SpecError> {
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
            .map_err(|e: UnknownName| SpecError::Metadata(e.to_string()))?
    };
    let method: AuthMethod = match &spec.auth_method {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => m
            .parse()
            .map_err(|e: UnknownName| SpecError::Metadata(e.to_string()))?,
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
            (None, Some(_)) => {}
        }
    } else if spec.jwks.is_some() || spec.jwks_uri.is_some() {
        // Keys nobody checks would only be an unvalidated store (and a URL
        // fetched for nothing): refuse them.
        return Err(SpecError::Metadata(format!(
            "jwks and jwks_uri are only for private_key_jwt; this client uses {}",
            method.as_str()
        )));
    }
    let signing_alg = match &spec.token_endpoint_auth_signing_alg {
        None => None,
        Some(a) => {
            let ok = match method {
                AuthMethod::ClientSecretJwt => a.parse::<HmacAlg>().is_ok(),
                AuthMethod::PrivateKeyJwt => a
                    .parse::<Alg>()
                    .is_ok_and(|alg| alg.key_use() == KeyUse::Sig),
                _ => {
                    return Err(SpecError::Metadata(
                        "token_endpoint_auth_signing_alg is only for client_secret_jwt and private_key_jwt"
                            .into(),
                    ))
                }
            };
            if !ok {
                return Err(SpecError::Metadata(format!(
                    "token_endpoint_auth_signing_alg {a:?} is not supported for {}; use {}",
                    method.as_str(),
                    if method == AuthMethod::ClientSecretJwt {
                        "HS256, HS384 or HS512"
                    } else {
                        "RS256, PS256, ES256 or EdDSA"
                    }
                )));
            }
            Some(a.clone())
        }
    };
    if spec.legacy_assertion_audience
        && !matches!(
            method,
            AuthMethod::ClientSecretJwt | AuthMethod::PrivateKeyJwt
        )
    {
        return Err(SpecError::Metadata(
            "legacy_assertion_audience is only for client_secret_jwt and private_key_jwt".into(),
        ));
    }
    if method == AuthMethod::None && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(SpecError::Metadata(
            "a public client (auth method none) cannot use client_credentials".into(),
        ));
    }
    if method == AuthMethod::None && grant_types.contains(&GrantType::TokenExchange) {
        return Err(SpecError::Metadata(format!(
            "a public client (auth method none) cannot use {}",
            GrantType::TokenExchange
        )));
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
    // Gatehouse itself contacts these: https only, nothing internal
    // (crate::outbound); checked again on every connection.
    if let Some(u) = &spec.jwks_uri {
        outbound
            .check_uri("jwks_uri", u)
            .map_err(SpecError::Metadata)?;
    }
    if let Some(u) = &spec.backchannel_logout_uri {
        outbound
            .check_uri("backchannel_logout_uri", u)
            .map_err(SpecError::Metadata)?;
    }
    let alg = match &spec.id_token_signing_alg {
        None => Alg::RS256,
        Some(a) => {
            let alg: Alg = a
                .parse()
                .map_err(|e: gatehouse_keys::JoseError| SpecError::Metadata(e.to_string()))?;
            if alg.key_use() != KeyUse::Sig {
                return Err(SpecError::Metadata(format!(
                    "{alg} is not a signing algorithm"
                )));
            }
            alg
        }
    };
    for s in &spec.scopes {
        // The same grammar requests are held to (RFC 6749 3.3), so a
        // client cannot register a scope it could never ask for.
        if s.is_empty() || s.contains(' ') || ScopeSet::parse(s).is_err() {
            return Err(SpecError::Metadata(format!(
                "invalid scope {s:?}: a scope is printable ASCII without spaces, quotes or backslashes (RFC 6749 3.3)"
            )));
        }
    }
    if let Some(t) = spec.access_token_ttl {
        if !(30..=86_400).contains(&t) {
            return Err(SpecError::Metadata(
                "access token lifetime must be 30 to 86400 seconds".into(),
            ));
        }
    }
    Ok(Client {
        id,
        secret_hash: None,
        name,
        redirect_uris: spec.redirect_uris,
        post_logout_redirect_uris: spec.post_logout_redirect_uris,
        grant_types,
        response_types: if uses_code {
            vec!["code".to_owned()]
        } else {
            Vec::new()
        },
        token_endpoint_auth_method: method,
        scopes: spec.scopes,
        jwks: spec.jwks,
        jwks_uri: spec.jwks_uri,
        id_token_signed_response_alg: alg,
        access_token_lifetime: spec.access_token_ttl,
        refresh_token_lifetime: None,
        backchannel_logout_uri: spec.backchannel_logout_uri,
        registration_token_hash: None,
        created_at: now,
        updated_at: now,
        client_secret_sealed: None,
        token_endpoint_auth_signing_alg: signing_alg,
        require_pkce: spec.require_pkce,
        registration_policy: None,
        legacy_assertion_audience: spec.legacy_assertion_audience,
        require_acr: None,
        dpop_bound_access_tokens: spec.dpop_bound_access_tokens,
        require_pushed_authorization_requests: spec.require_pushed_authorization_requests,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use gatehouse_protocol::Acr;

    use super::*;

    fn spec() -> ClientSpec {
        ClientSpec {
            name: "App".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            ..ClientSpec::default()
        }
    }

    /// An operator's required level survives every revision of the
    /// client's metadata, an RFC 7592 update (a whole new spec) included:
    /// the registrant has no way to lower it.
    #[test]
    fn revise_keeps_the_operators_required_level() {
        let kek = gatehouse_keys::Kek::generate();
        let policy = OutboundPolicy::default();
        let (mut old, _) = build(
            spec(),
            &SecretHasher::new(&kek),
            &SecretSealer::new(&kek),
            1_000,
            &policy,
        )
        .unwrap();
        assert_eq!(old.require_acr, None, "a new client requires no level");
        old.require_acr = Some(Acr::Mfa);
        // As the registration endpoint builds it: from the metadata alone.
        let fresh = ClientSpec {
            name: "Renamed".into(),
            ..spec()
        };
        let new = revise(&old, fresh, 2_000, &policy).unwrap();
        assert_eq!(new.name, "Renamed");
        assert_eq!(new.require_acr, Some(Acr::Mfa));
        let again = revise(&new, ClientSpec::of(&new), 3_000, &policy).unwrap();
        assert_eq!(again.require_acr, Some(Acr::Mfa));
    }
}
