//! Reading back an access token Gatehouse issued (userinfo, introspection,
//! revocation): decrypted and verified, or looked up when opaque, then
//! checked against the revocation list.

use gatehouse_keys::{KeyRing, VerifiedJws};
use serde_json::Value;

use super::{
    claims::AccessTokenClaims, reference::TokenRef, AccessClaims, TokenIssuer, ACCESS_TOKEN_ALGS,
};
use crate::{error::Error, oauth::ScopeSet};

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
        let opened = if own_direct {
            // Addressed to Gatehouse: one AES-GCM decryption under the
            // day's key (see `KeyRing::open_own_token` why the nested
            // signature is not checked again).
            self.keys.open_own_token(token).ok()
        } else {
            // Encrypted to a resource server: the content-encryption key is
            // derived from the jti, the AES-GCM tag authenticates header and
            // body, and the nested JWS must verify under a trusted key.
            self.keys
                .open_access_token(token, &reference.jti, &ACCESS_TOKEN_ALGS)
                .ok()
        };
        let Some(at) = opened.and_then(|v| self.access_claims(v, now)) else {
            return Ok(None);
        };
        if at.claims.jti != reference.jti {
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
    fn token_reference(&self, token: &str) -> Option<(Option<String>, Option<String>, TokenRef)> {
        if token.split('.').next()?.len() > 4096 {
            return None;
        }
        let header = gatehouse_keys::peek_header(token).ok()?;
        let sealed = header.get("gh_ref")?.as_str()?;
        let reference = TokenRef::parse(&self.keys.open_reference(sealed)?)?;
        let member = |name: &str| header.get(name).and_then(Value::as_str).map(str::to_owned);
        Some((member("alg"), member("kid"), reference))
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
        let claims: AccessTokenClaims = serde_json::from_value(Value::Object(v.claims)).ok()?;
        if claims.iss != self.settings.issuer || claims.exp <= now {
            return None;
        }
        Some(AccessClaims {
            scope: ScopeSet::parse(&claims.scope).unwrap_or_default(),
            claims,
            family: None,
            status: None,
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
        let claims = AccessTokenClaims {
            iss: self.settings.issuer.clone(),
            sub: t
                .user_id
                .map_or_else(|| t.client_id.to_string(), String::from),
            aud: t.audience,
            exp: t.expires_at,
            iat: t.created_at,
            jti: t.jti,
            client_id: t.client_id,
            scope: t.scope,
            auth_time: t.auth_time,
            acr: None,
            status: None,
            cnf: t.dpop_jkt.map(|jkt| super::claims::Confirmation { jkt }),
            // A chain this release cannot read makes the token unreadable,
            // never a token without its actors.
            act: match t.act.as_deref().map(serde_json::from_str).transpose() {
                Ok(act) => act,
                Err(e) => {
                    tracing::error!(error = %e, "an opaque token's stored act is unreadable");
                    return Ok(None);
                }
            },
        };
        let at = AccessClaims {
            scope: ScopeSet::parse(&claims.scope).unwrap_or_default(),
            claims,
            family: t.family_id,
            status: None,
        };
        if self.is_revoked(&at).await? {
            return Ok(None);
        }
        Ok(Some(at))
    }
}
