//! The one token builder: every access token, ID token and refresh token
//! Gatehouse issues is made here, and every access token it accepts back
//! (userinfo, introspection) is read here.
//!
//! Access tokens are RFC 9068 JWTs, signed, then encrypted as a compact JWE
//! (`cty: JWT`) to the resource server's key, or to Gatehouse's own key when
//! the audience is Gatehouse's userinfo endpoint. A resource server
//! registered with format `opaque` gets a random reference token instead.

use std::sync::Arc;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use gatehouse_keys::Alg;
use gatehouse_storage::model::{Client, OpaqueToken, User};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::{
    http::error::AppError, oauth::ScopeSet, registry::Resource, session::random_token,
    state::AppState,
};

/// Who an access token is for.
#[derive(Clone, Debug)]
pub enum Audience {
    /// Gatehouse itself (its userinfo endpoint).
    Own,
    /// A registered resource server.
    Resource(Arc<Resource>),
}

/// The signing algorithm of access tokens addressed to Gatehouse itself.
const OWN_ACCESS_TOKEN_ALG: Alg = Alg::ES256;
/// Algorithms Gatehouse accepts on access tokens it reads back.
const ACCESS_TOKEN_ALGS: [Alg; 4] = [Alg::ES256, Alg::RS256, Alg::PS256, Alg::EdDSA];

/// The facts an access token asserts.
#[derive(Clone, Debug)]
pub struct AccessGrant<'a> {
    pub client: &'a Client,
    /// The user, or `None` for client_credentials (then `sub` is the client id).
    pub user: Option<&'a User>,
    pub scope: &'a ScopeSet,
    pub audience: Audience,
    pub auth_time: Option<i64>,
    pub acr: Option<&'a str>,
    /// Chosen before issuance so it can be recorded first (code replay revocation).
    pub jti: String,
}

/// An issued access token.
#[derive(Clone, Debug)]
pub struct IssuedAccess {
    pub token: String,
    pub expires_in: i64,
    pub expires_at: i64,
    pub jti: String,
}

/// The facts an ID token asserts (OIDC Core 2).
#[derive(Clone, Debug)]
pub struct IdGrant<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    pub scope: &'a ScopeSet,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub acr: Option<&'a str>,
    pub amr: &'a [String],
    pub sid: Option<&'a str>,
    /// The access token issued alongside, for `at_hash`.
    pub access_token: Option<&'a str>,
}

/// The token endpoint's success body (RFC 6749 5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
}

/// Verified claims of an access token Gatehouse issued.
#[derive(Clone, Debug)]
pub struct AccessClaims {
    pub claims: Map<String, Value>,
    pub jti: String,
    pub sub: String,
    pub client_id: String,
    pub scope: ScopeSet,
    pub exp: i64,
}

/// A new random access-token id.
pub fn new_jti() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Standard claims for the scopes granted (OIDC Core 5.4).
pub fn user_claims(user: &User, scope: &ScopeSet, out: &mut Map<String, Value>) {
    if scope.contains("profile") {
        out.insert("preferred_username".into(), user.username.clone().into());
        if let Some(n) = &user.name {
            out.insert("name".into(), n.clone().into());
        }
        out.insert("updated_at".into(), user.updated_at.into());
    }
    if scope.contains("email") {
        if let Some(e) = &user.email {
            out.insert("email".into(), e.clone().into());
            out.insert("email_verified".into(), user.email_verified.into());
        }
    }
}

/// `at_hash` (OIDC Core 3.1.3.6): the left half of the hash of the access
/// token, with the hash of the ID token's algorithm.
fn at_hash(alg: Alg, token: &str) -> String {
    let digest: Vec<u8> = match alg {
        Alg::EdDSA => Sha512::digest(token.as_bytes()).to_vec(),
        _ => Sha256::digest(token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

impl AppState {
    /// The audience string of a token.
    pub fn audience_id(&self, a: &Audience) -> String {
        match a {
            Audience::Own => self.settings.endpoint("/userinfo"),
            Audience::Resource(r) => r.record.audience.clone(),
        }
    }

    /// Access-token lifetime: the resource server's, else the client's, else the default.
    fn access_lifetime(&self, g: &AccessGrant<'_>) -> i64 {
        let resource = match &g.audience {
            Audience::Resource(r) => r.record.access_token_lifetime,
            Audience::Own => None,
        };
        resource
            .or(g.client.access_token_lifetime)
            .unwrap_or(self.settings.lifetimes.access_token)
    }

    /// Issues an access token.
    pub async fn issue_access_token(&self, g: AccessGrant<'_>) -> Result<IssuedAccess, AppError> {
        let now = self.now();
        let lifetime = self.access_lifetime(&g);
        let exp = now + lifetime;
        let sub = g
            .user
            .map(|u| u.id.clone())
            .unwrap_or_else(|| g.client.id.clone());
        let aud = self.audience_id(&g.audience);

        if let Audience::Resource(r) = &g.audience {
            if r.opaque {
                let token = random_token();
                self.store
                    .create_opaque_token(&OpaqueToken {
                        token_hash: self.hasher.hash(&token),
                        jti: g.jti.clone(),
                        client_id: g.client.id.clone(),
                        user_id: g.user.map(|u| u.id.clone()),
                        scope: g.scope.to_string(),
                        audience: aud,
                        auth_time: g.auth_time,
                        created_at: now,
                        expires_at: exp,
                        revoked_at: None,
                    })
                    .await?;
                return Ok(IssuedAccess {
                    token,
                    expires_in: lifetime,
                    expires_at: exp,
                    jti: g.jti,
                });
            }
        }

        let mut claims = Map::new();
        claims.insert("iss".into(), self.settings.issuer.clone().into());
        claims.insert("sub".into(), sub.into());
        claims.insert("aud".into(), aud.into());
        claims.insert("exp".into(), exp.into());
        claims.insert("iat".into(), now.into());
        claims.insert("nbf".into(), now.into());
        claims.insert("jti".into(), g.jti.clone().into());
        claims.insert("client_id".into(), g.client.id.clone().into());
        claims.insert("scope".into(), g.scope.to_string().into());
        if let Some(t) = g.auth_time {
            claims.insert("auth_time".into(), t.into());
        }
        if let Some(acr) = g.acr {
            claims.insert("acr".into(), acr.into());
        }
        let token = match &g.audience {
            Audience::Own => {
                let jws = self.keys.sign(OWN_ACCESS_TOKEN_ALG, "at+jwt", &claims)?;
                self.keys.encrypt_to_self(&jws, Some("JWT"), None)?
            }
            Audience::Resource(r) => {
                let jws = self.keys.sign(r.signing_alg, "at+jwt", &claims)?;
                gatehouse_keys::encrypt(&jws, &r.encryption_key, Some("JWT"), None)?
            }
        };
        Ok(IssuedAccess {
            token,
            expires_in: lifetime,
            expires_at: exp,
            jti: g.jti,
        })
    }

    /// Issues an ID token signed with the client's chosen algorithm.
    pub fn issue_id_token(&self, g: IdGrant<'_>) -> Result<String, AppError> {
        let alg: Alg = g.client.id_token_signed_response_alg.parse().map_err(|_| {
            AppError::Internal("client has an unusable id_token_signed_response_alg".into())
        })?;
        let now = self.now();
        let mut c = Map::new();
        c.insert("iss".into(), self.settings.issuer.clone().into());
        c.insert("sub".into(), g.user.id.clone().into());
        c.insert("aud".into(), g.client.id.clone().into());
        c.insert("azp".into(), g.client.id.clone().into());
        c.insert(
            "exp".into(),
            (now + self.settings.lifetimes.id_token).into(),
        );
        c.insert("iat".into(), now.into());
        c.insert("auth_time".into(), g.auth_time.into());
        if let Some(n) = g.nonce {
            c.insert("nonce".into(), n.into());
        }
        if let Some(acr) = g.acr {
            c.insert("acr".into(), acr.into());
        }
        if !g.amr.is_empty() {
            c.insert("amr".into(), json!(g.amr));
        }
        if let Some(sid) = g.sid {
            c.insert("sid".into(), sid.into());
        }
        if let Some(at) = g.access_token {
            c.insert("at_hash".into(), at_hash(alg, at).into());
        }
        user_claims(g.user, g.scope, &mut c);
        Ok(self.keys.sign(alg, "JWT", &c)?)
    }

    /// A new refresh token for a new family, and its hash.
    pub fn new_refresh_token(&self) -> (String, String) {
        let token = random_token();
        let hash = self.hasher.hash(&token);
        (token, hash)
    }

    /// The successor of a refresh token. Derived from the presented token
    /// with the server's keyed hash, so a retry within the grace window
    /// receives the same successor without the successor ever being stored
    /// in clear.
    pub fn successor_refresh_token(&self, presented: &str) -> (String, String) {
        let token = self.hasher.hash(&format!("refresh-successor:{presented}"));
        let hash = self.hasher.hash(&token);
        (token, hash)
    }

    /// Reads back an access token Gatehouse can open: a JWE addressed to its
    /// own key (nested JWS verified against its published keys), or an
    /// opaque reference token. Checks issuer, type, expiry and revocation.
    /// Every failure is the same `None`: callers answer "inactive" or 401.
    pub async fn read_access_token(&self, token: &str) -> Result<Option<AccessClaims>, AppError> {
        let now = self.now();
        if token.len() > 16 * 1024 {
            return Ok(None);
        }
        if token.matches('.').count() != 4 {
            return self.read_opaque_access_token(token, now).await;
        }
        let Ok((_, payload)) = self.keys.decrypt(token) else {
            return Ok(None);
        };
        let Ok(jws) = std::str::from_utf8(&payload) else {
            return Ok(None);
        };
        let Ok(v) = self.keys.verify(jws, &ACCESS_TOKEN_ALGS) else {
            return Ok(None);
        };
        if v.header
            .get("typ")
            .and_then(Value::as_str)
            .map(|t| t.eq_ignore_ascii_case("at+jwt"))
            != Some(true)
        {
            return Ok(None);
        }
        let c = v.claims;
        let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(iss), Some(jti), Some(sub), Some(client_id)) =
            (s("iss"), s("jti"), s("sub"), s("client_id"))
        else {
            return Ok(None);
        };
        let Some(exp) = c.get("exp").and_then(Value::as_i64) else {
            return Ok(None);
        };
        if iss != self.settings.issuer || exp <= now {
            return Ok(None);
        }
        if self.store.is_jti_revoked(&jti).await? {
            return Ok(None);
        }
        let scope = ScopeSet::parse(&s("scope").unwrap_or_default()).unwrap_or_default();
        Ok(Some(AccessClaims {
            claims: c,
            jti,
            sub,
            client_id,
            scope,
            exp,
        }))
    }

    async fn read_opaque_access_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<AccessClaims>, AppError> {
        let Some(t) = self.store.opaque_token(&self.hasher.hash(token)).await? else {
            return Ok(None);
        };
        if t.revoked_at.is_some() || t.expires_at <= now {
            return Ok(None);
        }
        let sub = t.user_id.clone().unwrap_or_else(|| t.client_id.clone());
        let mut c = Map::new();
        c.insert("iss".into(), self.settings.issuer.clone().into());
        c.insert("sub".into(), sub.clone().into());
        c.insert("aud".into(), t.audience.clone().into());
        c.insert("exp".into(), t.expires_at.into());
        c.insert("iat".into(), t.created_at.into());
        c.insert("jti".into(), t.jti.clone().into());
        c.insert("client_id".into(), t.client_id.clone().into());
        c.insert("scope".into(), t.scope.clone().into());
        if let Some(a) = t.auth_time {
            c.insert("auth_time".into(), a.into());
        }
        let scope = ScopeSet::parse(&t.scope).unwrap_or_default();
        Ok(Some(AccessClaims {
            claims: c,
            jti: t.jti,
            sub,
            client_id: t.client_id,
            scope,
            exp: t.expires_at,
        }))
    }
}
