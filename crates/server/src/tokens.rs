//! The one token builder: every access token, ID token and refresh token
//! Gatehouse issues is made here, and every access token it accepts back
//! (userinfo, introspection) is read here.
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

use std::sync::Arc;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use gatehouse_keys::{Alg, KeyRing, VerifiedJws};
use gatehouse_storage::{
    model::{Client, OpaqueToken, TokenRecord, User},
    StatusEntry,
};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::{
    http::error::AppError, oauth::ScopeSet, registry::Resource, secrets::random_token,
    state::AppState, status_list::StatusIndex,
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
    /// The grant (refresh family) the token descends from, if any.
    pub family: Option<&'a str>,
}

/// What Gatehouse seals into the protected header of every JWE access token
/// (`gh_ref`): the token id, from which it derives the key that decrypts a
/// token encrypted to a resource server, and what the token's claims do not
/// say (its grant, and its global status-list index). Not the claims: those
/// are read from the decrypted, verified token itself. Sealed so the grant
/// stays private and cannot be swapped. Resource servers ignore the member
/// (it is not marked critical).
#[derive(Debug, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRef {
    jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fam: Option<String>,
    /// The global status-list index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sli: Option<i64>,
}

/// The `gh_ref` of tokens issued by earlier versions, which carried the
/// claims because Gatehouse could not decrypt tokens encrypted to a
/// resource server. Still read, so those tokens stay introspectable and
/// revocable for the rest of their lifetime (a day at most).
#[derive(Debug, serde::Deserialize)]
struct LegacyTokenRef {
    jti: String,
    sub: String,
    cid: String,
    aud: String,
    scp: String,
    iat: i64,
    exp: i64,
    #[serde(default)]
    fam: Option<String>,
    #[serde(default)]
    at: Option<i64>,
    #[serde(default)]
    sli: Option<i64>,
}

/// Revocation-list key prefixes: every token of a grant, and every token of
/// a subject or of a client issued up to the entry's time.
const GRANT_KEY: &str = "fam:";
const SUBJECT_KEY: &str = "sub:";
const CLIENT_KEY: &str = "cid:";

/// An opened `gh_ref`.
#[derive(Debug)]
enum Reference {
    Current(TokenRef),
    Legacy(LegacyTokenRef),
}

impl Reference {
    fn parse(bytes: &[u8]) -> Option<Reference> {
        if let Ok(r) = serde_json::from_slice(bytes) {
            return Some(Reference::Current(r));
        }
        serde_json::from_slice(bytes).ok().map(Reference::Legacy)
    }

    fn jti(&self) -> &str {
        match self {
            Reference::Current(r) => &r.jti,
            Reference::Legacy(r) => &r.jti,
        }
    }

    /// The grant and the status index the reference records.
    fn into_family_and_status(self) -> (Option<String>, Option<StatusIndex>) {
        let (fam, sli) = match self {
            Reference::Current(r) => (r.fam, r.sli),
            Reference::Legacy(r) => (r.fam, r.sli),
        };
        (fam, sli.map(StatusIndex))
    }
}

/// Seconds past a client's deletion during which tokens issued to it are
/// still revoked: other instances' client caches (2 s poll) and clock skew.
const CLIENT_CACHE_GRACE: i64 = 10;

/// Longest access-token lifetime any client or resource server may set;
/// revocation entries for subjects and grants live this long.
pub const MAX_ACCESS_TOKEN_TTL: i64 = 86_400;

/// An issued access token.
#[derive(Clone, Debug)]
pub struct IssuedAccess {
    pub token: String,
    pub expires_in: i64,
    pub expires_at: i64,
    pub jti: String,
}

/// An access token between [`AppState::prepare_access_token`] and
/// [`AppState::seal_access_token`]: its facts are fixed, its row (if any)
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
        claims: Map<String, Value>,
        reference: TokenRef,
        audience: Audience,
    },
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
    pub iat: i64,
    pub family: Option<String>,
    /// The token's status-list index (JWE access tokens).
    pub status: Option<StatusIndex>,
}

/// How an access token addressed to Gatehouse itself was encrypted.
#[derive(Clone, Copy, Debug)]
enum OwnToken {
    /// `alg: dir`, A256GCM under the day's key (what Gatehouse issues).
    Direct,
    /// ECDH-ES+A256KW to the own encryption key (earlier versions).
    Ecdh,
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

    /// Issues an access token whose record (if it needs one) is written on
    /// its own: for grants that write nothing else (client credentials).
    pub async fn issue_access_token(&self, g: AccessGrant<'_>) -> Result<IssuedAccess, AppError> {
        let (issued, record) = self.seal_access_token(self.prepare_access_token(g).await?)?;
        if let Some(r) = &record {
            self.store.record_access_token(r).await?;
        }
        Ok(issued)
    }

    /// Fixes an access token's facts: claims, jti, expiry, status-list
    /// index (reserved from this instance's block, outside any
    /// transaction) and the row it needs stored. No private-key operation
    /// yet.
    pub async fn prepare_access_token(
        &self,
        g: AccessGrant<'_>,
    ) -> Result<PreparedAccess, AppError> {
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
                let record = TokenRecord::Opaque(OpaqueToken {
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
                    family_id: g.family.map(str::to_owned),
                });
                return Ok(PreparedAccess {
                    form: Form::Opaque(token),
                    record: Some(record),
                    lifetime,
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
        let status = self.next_status_index().await?;
        claims.insert("status".into(), self.status_claim(status));
        // A user-bound token comes with a write anyway (code redemption or
        // refresh rotation); recording it lets a grant or subject
        // revocation set its status bit.
        let record = g.user.map(|user| {
            TokenRecord::Status(StatusEntry {
                idx: status.0,
                list_id: status.list_id(),
                subject: Some(user.id.clone()),
                family: g.family.map(str::to_owned),
                expires_at: exp,
            })
        });
        let reference = TokenRef {
            jti: g.jti.clone(),
            fam: g.family.map(str::to_owned),
            sli: Some(status.0),
        };
        Ok(PreparedAccess {
            form: Form::Jwe {
                claims,
                reference,
                audience: g.audience,
            },
            record,
            lifetime,
            expires_at: exp,
            jti: g.jti,
        })
    }

    /// Signs and encrypts a prepared access token (memory and CPU only).
    /// Returns the token and the row the caller must store before handing
    /// it out (with its grant's own write, when it has one): sealing comes
    /// first, so a failure here spends nothing.
    pub fn seal_access_token(
        &self,
        p: PreparedAccess,
    ) -> Result<(IssuedAccess, Option<TokenRecord>), AppError> {
        let token = match p.form {
            Form::Opaque(token) => token,
            Form::Jwe {
                claims,
                reference,
                audience,
            } => {
                let sealed = serde_json::to_vec(&reference)
                    .map_err(|e| AppError::Internal(format!("token reference: {e}")))?;
                let mut header = Map::new();
                header.insert("gh_ref".into(), self.keys.seal_reference(&sealed)?.into());
                match &audience {
                    Audience::Own => {
                        let jws = self.keys.sign(OWN_ACCESS_TOKEN_ALG, "at+jwt", &claims)?;
                        self.keys
                            .encrypt_own_token(&jws, Some("JWT"), Some(&header))?
                    }
                    Audience::Resource(r) => {
                        let jws = self.keys.sign(r.signing_alg, "at+jwt", &claims)?;
                        self.keys.encrypt_access_token(
                            &jws,
                            &r.encryption_key,
                            &p.jti,
                            Some("JWT"),
                            Some(&header),
                        )?
                    }
                }
            }
        };
        let issued = IssuedAccess {
            token,
            expires_in: p.lifetime,
            expires_at: p.expires_at,
            jti: p.jti,
        };
        Ok((issued, p.record))
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

    /// A logout token (OpenID Connect Back-Channel Logout 1.0 section 2.4)
    /// for `client`: `typ: logout+jwt`, the back-channel event, `sub` and
    /// `sid`, never a nonce. Signed like the client's ID tokens.
    pub fn issue_logout_token(
        &self,
        client: &Client,
        sub: &str,
        sid: Option<&str>,
    ) -> Result<String, AppError> {
        let alg: Alg = client
            .id_token_signed_response_alg
            .parse()
            .unwrap_or(Alg::RS256);
        let now = self.now();
        let mut c = Map::new();
        c.insert("iss".into(), self.settings.issuer.clone().into());
        c.insert("sub".into(), sub.into());
        c.insert("aud".into(), client.id.clone().into());
        c.insert("iat".into(), now.into());
        c.insert("exp".into(), (now + 120).into());
        c.insert("jti".into(), new_jti().into());
        c.insert(
            "events".into(),
            json!({ "http://schemas.openid.net/event/backchannel-logout": {} }),
        );
        if let Some(sid) = sid {
            c.insert("sid".into(), sid.into());
        }
        Ok(self.keys.sign(alg, "logout+jwt", &c)?)
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

    /// Reads back an access token Gatehouse issued: a JWE addressed to its
    /// own key or to a resource server (decrypted, nested JWS checked), or an
    /// opaque reference token. Checks issuer, type, expiry and the
    /// revocation list. Every failure is the same `None`: callers answer
    /// "inactive" or 401.
    pub async fn read_access_token(&self, token: &str) -> Result<Option<AccessClaims>, AppError> {
        let now = self.now();
        if token.len() > 16 * 1024 {
            return Ok(None);
        }
        if token.matches('.').count() != 4 {
            return self.read_opaque_access_token(token, now).await;
        }
        let Some((alg, kid, reference)) = self.token_reference(token) else {
            return Ok(None);
        };
        let own_direct =
            alg.as_deref() == Some("dir") && kid.as_deref().is_some_and(KeyRing::is_own_token_kid);
        let opened = match &reference {
            _ if own_direct => self.open_own_access_token(token, OwnToken::Direct),
            // Encrypted to a resource server: the content-encryption key is
            // derived from the jti, the AES-GCM tag authenticates header and
            // body, and the nested JWS must verify under a trusted key.
            Reference::Current(r) => self
                .keys
                .open_access_token(token, &r.jti, &ACCESS_TOKEN_ALGS)
                .ok(),
            // Earlier versions: encrypted to the own ECDH key, or to a
            // resource server with a random CEK (read from the reference).
            Reference::Legacy(_)
                if kid
                    .as_deref()
                    .is_some_and(|k| self.keys.is_own_encryption_kid(k)) =>
            {
                self.open_own_access_token(token, OwnToken::Ecdh)
            }
            Reference::Legacy(r) => {
                return match self.legacy_access_claims(r, now) {
                    Some(at) => self.unless_revoked(at).await,
                    None => Ok(None),
                };
            }
        };
        let Some(at) = opened.and_then(|v| self.access_claims(v, now)) else {
            return Ok(None);
        };
        if at.jti != reference.jti() {
            return Ok(None);
        }
        let (family, status) = reference.into_family_and_status();
        self.unless_revoked(AccessClaims {
            family,
            status,
            ..at
        })
        .await
    }

    /// `at`, unless the revocation list names it.
    async fn unless_revoked(&self, at: AccessClaims) -> Result<Option<AccessClaims>, AppError> {
        if self.is_revoked(&at).await? {
            return Ok(None);
        }
        Ok(Some(at))
    }

    /// The alg, the kid and the opened `gh_ref` of a compact JWE's
    /// protected header.
    fn token_reference(&self, token: &str) -> Option<(Option<String>, Option<String>, Reference)> {
        if token.split('.').next()?.len() > 4096 {
            return None;
        }
        let header = gatehouse_keys::peek_header(token).ok()?;
        let sealed = header.get("gh_ref")?.as_str()?;
        let reference = Reference::parse(&self.keys.open_reference(sealed)?)?;
        let member = |name: &str| header.get(name).and_then(Value::as_str).map(str::to_owned);
        Some((member("alg"), member("kid"), reference))
    }

    /// Opens an access token addressed to Gatehouse itself: a `dir` token
    /// through [`KeyRing::open_own_token`] (one AES-GCM decryption; see there
    /// why the nested signature is not checked again). Tokens encrypted to
    /// the own ECDH key (issued before Gatehouse switched, or by an older
    /// instance during a rolling upgrade) are decrypted and verified.
    fn open_own_access_token(&self, token: &str, own: OwnToken) -> Option<VerifiedJws> {
        match own {
            OwnToken::Direct => self.keys.open_own_token(token).ok(),
            OwnToken::Ecdh => {
                let (_, payload) = self.keys.decrypt(token).ok()?;
                let jws = std::str::from_utf8(&payload).ok()?;
                self.keys.verify(jws, &ACCESS_TOKEN_ALGS).ok()
            }
        }
    }

    /// The claims of an opened access token, if it is one (`typ: at+jwt`)
    /// from this issuer and not expired.
    fn access_claims(&self, v: VerifiedJws, now: i64) -> Option<AccessClaims> {
        if v.header
            .get("typ")
            .and_then(Value::as_str)
            .map(|t| t.eq_ignore_ascii_case("at+jwt"))
            != Some(true)
        {
            return None;
        }
        let c = v.claims;
        let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
        let (iss, jti, sub, client_id) = (s("iss")?, s("jti")?, s("sub")?, s("client_id")?);
        let exp = c.get("exp").and_then(Value::as_i64)?;
        let iat = c.get("iat").and_then(Value::as_i64).unwrap_or(0);
        if iss != self.settings.issuer || exp <= now {
            return None;
        }
        let scope = ScopeSet::parse(&s("scope").unwrap_or_default()).unwrap_or_default();
        Some(AccessClaims {
            claims: c,
            jti,
            sub,
            client_id,
            scope,
            exp,
            iat,
            family: None,
            status: None,
        })
    }

    /// A token issued by an earlier version to a resource server, described
    /// by its legacy reference (its body cannot be decrypted: its
    /// content-encryption key was random). Accepted until it expires, as
    /// before the upgrade, except that a reference for Gatehouse's own
    /// audience must come on a token encrypted to Gatehouse (which is read
    /// by decryption), never on one that cannot be opened.
    fn legacy_access_claims(&self, r: &LegacyTokenRef, now: i64) -> Option<AccessClaims> {
        if r.exp <= now || r.aud == self.audience_id(&Audience::Own) {
            return None;
        }
        let mut c = Map::new();
        c.insert("iss".into(), self.settings.issuer.clone().into());
        c.insert("sub".into(), r.sub.clone().into());
        c.insert("aud".into(), r.aud.clone().into());
        c.insert("exp".into(), r.exp.into());
        c.insert("iat".into(), r.iat.into());
        c.insert("jti".into(), r.jti.clone().into());
        c.insert("client_id".into(), r.cid.clone().into());
        c.insert("scope".into(), r.scp.clone().into());
        if let Some(a) = r.at {
            c.insert("auth_time".into(), a.into());
        }
        let status = r.sli.map(StatusIndex);
        if let Some(s) = status {
            c.insert("status".into(), self.status_claim(s));
        }
        Some(AccessClaims {
            claims: c,
            scope: ScopeSet::parse(&r.scp).unwrap_or_default(),
            jti: r.jti.clone(),
            sub: r.sub.clone(),
            client_id: r.cid.clone(),
            exp: r.exp,
            iat: r.iat,
            family: r.fam.clone(),
            status,
        })
    }

    /// One indexed read: is the token, its grant, or (up to a cut-off
    /// time) its subject or its client on the revocation list?
    async fn is_revoked(&self, at: &AccessClaims) -> Result<bool, AppError> {
        let mut keys = vec![
            at.jti.clone(),
            format!("{SUBJECT_KEY}{}", at.sub),
            format!("{CLIENT_KEY}{}", at.client_id),
        ];
        if let Some(f) = &at.family {
            keys.push(format!("{GRANT_KEY}{f}"));
        }
        // From a recent read while the database is away (`recent_reads`).
        let hits = self.revocation_entries(&keys).await?;
        Ok(hits.iter().any(|(k, revoked_at)| {
            let cut_off = k.starts_with(SUBJECT_KEY) || k.starts_with(CLIENT_KEY);
            !cut_off || at.iat <= *revoked_at
        }))
    }

    /// Revokes one access token until it would have expired.
    pub async fn revoke_access_token(&self, at: &AccessClaims) -> Result<(), AppError> {
        let now = self.now();
        self.store.revoke_jti(&at.jti, at.exp, now).await?;
        self.store.revoke_opaque_token(&at.jti, now).await?;
        if let Some(s) = at.status {
            self.store
                .revoke_status_index(s.0, s.list_id(), at.exp)
                .await?;
            self.forget_status_lists(&[s.list_id()]);
        }
        Ok(())
    }

    /// Revokes a grant: every refresh token of the family and every access
    /// token issued from it (JWE and opaque alike).
    pub async fn revoke_grant(&self, family_id: &str) -> Result<(), AppError> {
        let now = self.now();
        self.store.revoke_refresh_family(family_id, now).await?;
        self.store.revoke_opaque_family(family_id, now).await?;
        self.store
            .revoke_key_until(
                &format!("{GRANT_KEY}{family_id}"),
                now + MAX_ACCESS_TOKEN_TTL,
                now,
            )
            .await?;
        let lists = self.store.revoke_status_family(family_id, now).await?;
        self.forget_status_lists(&lists);
        Ok(())
    }

    /// Revokes every access token of a subject issued until now (forced logout).
    pub async fn revoke_subject_tokens(&self, sub: &str) -> Result<(), AppError> {
        let now = self.now();
        self.store
            .revoke_key_until(
                &format!("{SUBJECT_KEY}{sub}"),
                now + MAX_ACCESS_TOKEN_TTL,
                now,
            )
            .await?;
        let lists = self.store.revoke_status_subject(sub, now).await?;
        self.forget_status_lists(&lists);
        Ok(())
    }

    /// Revokes everything a client holds (RFC 7592 2.3: the client is being
    /// deleted): its refresh tokens, its opaque tokens, every access token
    /// issued to it until a few seconds from now (`CLIENT_CACHE_GRACE`),
    /// and the status bits of its grants' tokens.
    pub async fn revoke_client_tokens(&self, client_id: &str) -> Result<(), AppError> {
        let now = self.now();
        let grants = self.store.grants_of_client(client_id).await?;
        self.store
            .revoke_refresh_tokens_of_client(client_id, now)
            .await?;
        self.store
            .revoke_opaque_tokens_of_client(client_id, now)
            .await?;
        // Other instances may still know the client for their cache poll
        // (about 2 s): the cut-off reaches past it, so a token they issue
        // in that window is revoked too.
        let cut_off = now + CLIENT_CACHE_GRACE;
        self.store
            .revoke_key_until(
                &format!("{CLIENT_KEY}{client_id}"),
                cut_off + MAX_ACCESS_TOKEN_TTL,
                cut_off,
            )
            .await?;
        let mut lists = Vec::new();
        for family in &grants {
            lists.extend(self.store.revoke_status_family(family, now).await?);
        }
        lists.sort_unstable();
        lists.dedup();
        self.forget_status_lists(&lists);
        Ok(())
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
        let at = AccessClaims {
            claims: c,
            jti: t.jti,
            sub,
            client_id: t.client_id,
            scope,
            exp: t.expires_at,
            iat: t.created_at,
            family: t.family_id,
            status: None,
        };
        if self.is_revoked(&at).await? {
            return Ok(None);
        }
        Ok(Some(at))
    }
}
