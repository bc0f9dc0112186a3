//! Domain types the stores take and return. Plain data: no sea-orm, no HTTP.

use serde::{Deserialize, Serialize};

/// A person who signs in at Gatehouse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// The stable subject identifier (`sub`).
    pub id: String,
    /// Normalized (trimmed, lowercase) and unique.
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    #[serde(skip)]
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A registered client application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub id: String,
    /// Keyed hash of the client secret; `None` for public and private_key_jwt clients.
    #[serde(skip_serializing)]
    pub secret_hash: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    /// Scopes the client may request beyond the OIDC standard ones; empty = any registered scope.
    pub scopes: Vec<String>,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub id_token_signed_response_alg: String,
    pub access_token_lifetime: Option<i64>,
    pub refresh_token_lifetime: Option<i64>,
    pub backchannel_logout_uri: Option<String>,
    #[serde(skip_serializing)]
    pub registration_token_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// client_secret_jwt only: the secret itself, sealed with the
    /// key-encryption key and bound to the client id (the HMAC of an
    /// assertion cannot be checked against a hash).
    #[serde(default, skip_serializing)]
    pub client_secret_sealed: Option<Vec<u8>>,
    /// The one algorithm the client's JWT assertions must use, if it
    /// registered one (OIDC Registration `token_endpoint_auth_signing_alg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// Also accept the token endpoint URL as a client assertion's `aud`
    /// (weaker than the issuer alone; for libraries that send it).
    #[serde(default)]
    pub legacy_assertion_audience: bool,
}

/// An API that accepts Gatehouse access tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceServer {
    /// The audience (`aud`) and RFC 8707 resource indicator.
    pub audience: String,
    /// Public JWK (JSON text) its access tokens are encrypted to.
    pub encryption_jwk: String,
    pub signing_alg: String,
    /// `jwe` or `opaque`.
    pub token_format: String,
    pub access_token_lifetime: Option<i64>,
    /// Scopes this API defines.
    pub scopes: Vec<String>,
    pub created_at: i64,
}

/// Where a key stands in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published, not yet used.
    Next,
    /// Signs (or is the current encryption key).
    Active,
    /// Still published and usable for verification or decryption.
    Retired,
    /// Withdrawn at once.
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Revoked => "revoked",
        }
    }
    pub fn parse(s: &str) -> Option<KeyState> {
        Some(match s {
            "next" => KeyState::Next,
            "active" => KeyState::Active,
            "retired" => KeyState::Retired,
            "revoked" => KeyState::Revoked,
            _ => return None,
        })
    }
}

/// A key as stored: the private half sealed under the key-encryption key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub kid: String,
    /// `sig` or `enc`.
    pub key_use: String,
    pub alg: String,
    pub state: KeyState,
    pub sealed_private_key: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("use", &self.key_use)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("sealed_private_key", &"<hidden>")
            .finish_non_exhaustive()
    }
}

/// A login session at Gatehouse (the SSO anchor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id_hash: String,
    /// Public session id, put in ID tokens as `sid`.
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// What an authorization code stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthCode {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    /// The S256 PKCE challenge.
    pub code_challenge: Option<String>,
    pub resource: Option<String>,
    pub auth_time: i64,
    pub sid: Option<String>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    /// The grant this code starts; refresh tokens descend from it.
    pub family_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// An opaque refresh token as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub resource: Option<String>,
    pub auth_time: i64,
    pub sid: Option<String>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub successor_hash: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The outcome of redeeming an authorization code.
// The size difference between variants is fine: one value per token
// request, returned and matched at once, never stored in bulk. Boxing the
// code would only change the public API for no measurable gain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First and only redemption.
    Redeemed(AuthCode),
    /// The code had been redeemed before: a replay. Carries what the first
    /// redemption issued so it can be revoked.
    Replayed {
        family_id: String,
        access_token_jti: Option<String>,
        access_token_expires_at: Option<i64>,
    },
    /// No such code, or it expired.
    Invalid,
}

/// An opaque (reference) access token, for resource servers that chose
/// stateful tokens. Stored by hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpaqueToken {
    pub token_hash: String,
    pub jti: String,
    pub client_id: String,
    /// `None` for client_credentials tokens.
    pub user_id: Option<String>,
    pub scope: String,
    pub audience: String,
    pub auth_time: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}
