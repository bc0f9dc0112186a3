//! The token issuer: every access token, ID token and refresh token
//! Gatehouse issues is made here, and every access token it accepts back
//! (userinfo, introspection, revocation) is read here.
//!
//! Access tokens are RFC 9068 JWTs, signed, then encrypted as a compact JWE
//! (`cty: JWT`) to the resource server's key, or to Gatehouse's own key when
//! the audience is Gatehouse's userinfo endpoint. A resource server
//! registered with format `opaque` gets a random reference token instead.
//!
//! Every JWE access token carries a sealed `gh_ref` header member holding
//! its jti (plus its grant and status-list index). Gatehouse reads back
//! only what it can decrypt and verify: its own tokens with the day key,
//! resource-server tokens with the content-encryption key derived from the
//! jti (`KeyRing::open_access_token`), never from the header alone.
//!
//! Files: `issue.rs` makes tokens, `read.rs` reads access tokens back,
//! `revoke.rs` puts them on the revocation list and the status lists,
//! `reference.rs` is the sealed `gh_ref` header member.

pub mod claims;
mod issue;
mod read;
mod reference;
mod revoke;

use std::sync::Arc;

use gatehouse_keys::{Alg, Clock, KeyRing, SecretHasher};
use gatehouse_storage::{
    model::{Client, TokenRecord, User},
    Store,
};
use serde::Serialize;

use self::{
    claims::{AccessTokenClaims, Actor},
    reference::TokenRef,
};
use crate::{
    config::Settings,
    oauth::{ClientId, Jkt, ScopeSet, TokenTypeUri},
    recent_reads::RecentReads,
    registry::Resource,
    token_status::{StatusIndex, StatusLists},
};

/// Issues, reads back and revokes Gatehouse's tokens. One per instance,
/// shared by every request; everything it needs is its own.
#[derive(Debug)]
pub struct TokenIssuer {
    settings: Arc<Settings>,
    store: Store,
    keys: Arc<KeyRing>,
    hasher: SecretHasher,
    clock: Arc<dyn Clock>,
    status_lists: Arc<StatusLists>,
    recent_reads: Arc<RecentReads>,
}

impl TokenIssuer {
    pub fn new(
        settings: Arc<Settings>,
        store: Store,
        keys: Arc<KeyRing>,
        hasher: SecretHasher,
        clock: Arc<dyn Clock>,
        status_lists: Arc<StatusLists>,
        recent_reads: Arc<RecentReads>,
    ) -> TokenIssuer {
        TokenIssuer {
            settings,
            store,
            keys,
            hasher,
            clock,
            status_lists,
            recent_reads,
        }
    }

    /// Now, in Unix seconds, from the injected clock.
    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The audience string of a token.
    pub fn audience_id(&self, a: &Audience) -> String {
        match a {
            Audience::Own => self.settings.endpoint("/userinfo"),
            Audience::Resource(r) => r.record.audience.clone(),
        }
    }
}

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

/// The facts an access token asserts: the input of its claims.
#[derive(Clone, Debug)]
pub struct AccessClaimsInput<'a> {
    pub client: &'a Client,
    /// The user, or `None` for client_credentials (then `sub` is the client id).
    pub user: Option<&'a User>,
    pub scope: &'a ScopeSet,
    pub audience: Audience,
    pub auth_time: Option<i64>,
    pub acr: Option<&'a str>,
    /// Chosen before issuance so it can be recorded first (code replay revocation).
    pub jti: String,
    /// The grant (refresh family) the token descends from, if any.
    pub family: Option<&'a str>,
    /// The DPoP key the token is bound to (`cnf.jkt`), if any.
    pub jkt: Option<&'a Jkt>,
    /// What a token issued by token exchange (RFC 8693) carries besides.
    pub exchange: Option<Exchanged<'a>>,
}

/// The facts of an exchanged token that other tokens do not have.
#[derive(Clone, Debug)]
pub struct Exchanged<'a> {
    /// With no `user`: the client the subject token was about (a
    /// client_credentials token exchanged by another client), the `sub`.
    pub subject_client: Option<&'a ClientId>,
    /// Who acts for the subject (`act`).
    pub act: Actor,
    /// The subject token's expiry: the new token never outlives it.
    pub not_after: i64,
}

/// The `token_type` of an access token (RFC 6749 7.1; RFC 9449 5).
pub fn token_type(jkt: Option<&Jkt>) -> &'static str {
    match jkt {
        Some(_) => "DPoP",
        None => "Bearer",
    }
}

/// An issued access token. `Debug` hides the token.
#[derive(Clone)]
pub struct IssuedAccess {
    pub token: String,
    pub expires_in: i64,
    pub expires_at: i64,
    pub jti: String,
}

impl std::fmt::Debug for IssuedAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedAccess")
            .field("token", &"<hidden>")
            .field("expires_in", &self.expires_in)
            .field("expires_at", &self.expires_at)
            .field("jti", &self.jti)
            .finish()
    }
}

/// An access token between [`TokenIssuer::prepare_access_token`] and
/// [`TokenIssuer::seal_access_token`]: its facts are fixed, its row (if any)
/// not yet written. `Debug` hides the token.
pub struct PreparedAccess {
    form: Form,
    record: Option<TokenRecord>,
    lifetime: i64,
    pub expires_at: i64,
    pub jti: String,
}

impl std::fmt::Debug for PreparedAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedAccess")
            .field("jti", &self.jti)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The two shapes of access token.
enum Form {
    /// A reference token: the random value the client receives.
    Opaque(String),
    /// A JWE: the claims to sign and what `gh_ref` seals.
    Jwe {
        claims: Box<AccessTokenClaims>,
        reference: TokenRef,
        audience: Audience,
    },
}

/// The facts an ID token asserts (OIDC Core 2): the input of its claims.
#[derive(Clone, Debug)]
pub struct IdClaimsInput<'a> {
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

/// The token endpoint's success body (RFC 6749 5.1). `Debug` hides the
/// tokens.
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
    /// What a token exchange issued (RFC 8693 2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<TokenTypeUri>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |t: &Option<String>| t.as_ref().map(|_| "<hidden>");
        f.debug_struct("TokenResponse")
            .field("access_token", &"<hidden>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &hidden(&self.refresh_token))
            .field("id_token", &hidden(&self.id_token))
            .field("scope", &self.scope)
            .field("issued_token_type", &self.issued_token_type)
            .finish()
    }
}

/// Verified claims of an access token Gatehouse issued, with what reading
/// it found beside them.
#[derive(Clone, Debug)]
pub struct AccessClaims {
    pub claims: AccessTokenClaims,
    /// The claims' `scope`, parsed.
    pub scope: ScopeSet,
    pub family: Option<String>,
    /// The token's status-list index (JWE access tokens).
    pub status: Option<StatusIndex>,
}

/// A new random access-token id.
pub fn new_jti() -> String {
    uuid::Uuid::new_v4().to_string()
}
