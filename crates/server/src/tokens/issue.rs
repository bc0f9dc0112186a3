//! Making tokens: access tokens (prepared, then sealed), ID tokens,
//! logout tokens and refresh tokens.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use gatehouse_keys::Alg;
use gatehouse_storage::{
    model::{Client, OpaqueToken, TokenRecord},
    StatusEntry,
};
use serde_json::Map;
use sha2::{Digest, Sha256, Sha512};

use super::{
    claims::{
        AccessTokenClaims, Confirmation, IdTokenClaims, LogoutEvents, LogoutTokenClaims, UserClaims,
    },
    new_jti, AccessClaimsInput, Audience, Form, IdClaimsInput, IssuedAccess, PreparedAccess,
    TokenIssuer, TokenRef, OWN_ACCESS_TOKEN_ALG,
};
use crate::{error::Error, secrets::random_token};

/// `at_hash` (OIDC Core 3.1.3.6): the left half of the hash of the access
/// token, with the hash of the ID token's algorithm.
fn at_hash(alg: Alg, token: &str) -> String {
    let digest: Vec<u8> = match alg {
        Alg::EdDSA => Sha512::digest(token.as_bytes()).to_vec(),
        _ => Sha256::digest(token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

impl TokenIssuer {
    /// Access-token lifetime: the resource server's, else the client's, else
    /// the default; an exchanged token's ends with its subject token's.
    fn access_lifetime(&self, g: &AccessClaimsInput<'_>, now: i64) -> i64 {
        let resource = match &g.audience {
            Audience::Resource(r) => r.record.access_token_lifetime,
            Audience::Own => None,
        };
        let lifetime = resource
            .or(g.client.access_token_lifetime)
            .unwrap_or(self.settings.lifetimes.access_token);
        match &g.exchange {
            Some(x) => lifetime.min(x.not_after - now).max(1),
            None => lifetime,
        }
    }

    /// Issues an access token whose record (if it needs one) is written on
    /// its own: for grants that write nothing else (client credentials).
    pub async fn issue_access_token(
        &self,
        g: AccessClaimsInput<'_>,
    ) -> Result<IssuedAccess, Error> {
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
        g: AccessClaimsInput<'_>,
    ) -> Result<PreparedAccess, Error> {
        let now = self.now();
        let lifetime = self.access_lifetime(&g, now);
        let exp = now + lifetime;
        let subject_client = g
            .exchange
            .as_ref()
            .and_then(|x| x.subject_client)
            .unwrap_or(&g.client.id);
        let sub = g
            .user
            .map_or_else(|| subject_client.to_string(), |u| u.id.to_string());
        let aud = self.audience_id(&g.audience);
        let act = g.exchange.as_ref().map(|x| x.act.clone());

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
                    dpop_jkt: g.jkt.cloned(),
                    act: act
                        .as_ref()
                        .map(serde_json::to_string)
                        .transpose()
                        .map_err(|e| Error::Internal(format!("act claim: {e}")))?,
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

        let status = self.status_lists.next_index().await?;
        let claims = AccessTokenClaims {
            iss: self.settings.issuer.clone(),
            sub,
            aud,
            exp,
            iat: now,
            jti: g.jti.clone(),
            client_id: g.client.id.clone(),
            scope: g.scope.to_string(),
            auth_time: g.auth_time,
            acr: g.acr.map(str::to_owned),
            status: Some(self.status_lists.status_claim(status)),
            cnf: g.jkt.map(|jkt| Confirmation { jkt: jkt.clone() }),
            act,
        };
        // A user-bound token comes with a write anyway (code redemption or
        // refresh rotation); recording it lets a grant or subject
        // revocation set its status bit. So does an exchanged token of a
        // client (always of a grant): its grant's revocation reaches it.
        let record = (g.user.is_some() || g.exchange.is_some()).then(|| {
            TokenRecord::Status(StatusEntry {
                idx: status.0,
                list_id: status.list_id(),
                subject: g.user.map(|u| u.id.to_string()),
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
                claims: Box::new(claims),
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
    ) -> Result<(IssuedAccess, Option<TokenRecord>), Error> {
        let token = match p.form {
            Form::Opaque(token) => token,
            Form::Jwe {
                claims,
                reference,
                audience,
            } => {
                let sealed = reference
                    .encode()
                    .map_err(|e| Error::Internal(format!("token reference: {e}")))?;
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
    pub fn issue_id_token(&self, g: IdClaimsInput<'_>) -> Result<String, Error> {
        let alg = g.client.id_token_signed_response_alg;
        let now = self.now();
        let c = IdTokenClaims {
            iss: self.settings.issuer.clone(),
            sub: g.user.id.clone(),
            aud: g.client.id.clone(),
            azp: g.client.id.clone(),
            exp: now + self.settings.lifetimes.id_token,
            iat: now,
            auth_time: g.auth_time,
            nonce: g.nonce.map(str::to_owned),
            acr: g.acr.map(str::to_owned),
            amr: g.amr.to_vec(),
            sid: g.sid.map(str::to_owned),
            at_hash: g.access_token.map(|at| at_hash(alg, at)),
            user: UserClaims::of(g.user, g.scope),
        };
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
    ) -> Result<String, Error> {
        let alg = client.id_token_signed_response_alg;
        let now = self.now();
        let c = LogoutTokenClaims {
            iss: self.settings.issuer.clone(),
            sub: sub.to_owned(),
            aud: client.id.clone(),
            iat: now,
            exp: now + 120,
            jti: new_jti(),
            events: LogoutEvents,
            sid: sid.map(str::to_owned),
        };
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
}
