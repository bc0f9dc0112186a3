//! Reading back an access token Gatehouse issued (userinfo, introspection,
//! revocation): decrypted and verified, or looked up when opaque, then
//! checked against the revocation list.

use gatehouse_keys::{KeyRing, VerifiedJws};
use serde_json::{Map, Value};

use super::{
    reference::{LegacyTokenRef, Reference},
    AccessClaims, Audience, TokenIssuer, ACCESS_TOKEN_ALGS,
};
use crate::{error::Error, oauth::ScopeSet, token_status::StatusIndex};

/// How an access token addressed to Gatehouse itself was encrypted.
#[derive(Clone, Copy, Debug)]
enum OwnToken {
    /// `alg: dir`, A256GCM under the day's key (what Gatehouse issues).
    Direct,
    /// ECDH-ES+A256KW to the own encryption key (earlier versions).
    Ecdh,
}

impl TokenIssuer {
    /// Reads back an access token Gatehouse issued: a JWE addressed to its
    /// own key or to a resource server (decrypted, nested JWS checked), or an
    /// opaque reference token. Checks issuer, type, expiry and the
    /// revocation list. Every failure is the same `None`: callers answer
    /// "inactive" or 401.
    pub async fn read_access_token(&self, token: &str) -> Result<Option<AccessClaims>, Error> {
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
    async fn unless_revoked(&self, at: AccessClaims) -> Result<Option<AccessClaims>, Error> {
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
            c.insert("status".into(), self.status_lists.status_claim(s));
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

    async fn read_opaque_access_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<AccessClaims>, Error> {
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
