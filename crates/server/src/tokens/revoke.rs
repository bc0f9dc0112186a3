//! Revoking tokens: one access token, a grant, every token of a subject,
//! of a client, or of a subject at one client; the revocation-list check
//! every read makes.

use super::{AccessClaims, TokenIssuer};
use crate::error::Error;

/// Revocation-list key prefixes: every token of a grant, and every token of
/// a subject or of a client issued up to the entry's time.
const GRANT_KEY: &str = "fam:";
const SUBJECT_KEY: &str = "sub:";
const CLIENT_KEY: &str = "cid:";

/// Seconds past a client's deletion during which tokens issued to it are
/// still revoked: other instances' client caches (2 s poll) and clock skew.
const CLIENT_CACHE_GRACE: i64 = 10;

/// Longest access-token lifetime any client or resource server may set;
/// revocation entries for subjects and grants live this long.
pub const MAX_ACCESS_TOKEN_TTL: i64 = 86_400;

impl TokenIssuer {
    /// One indexed read: is the token, its grant, or (up to a cut-off
    /// time) its subject or its client on the revocation list?
    pub(super) async fn is_revoked(&self, at: &AccessClaims) -> Result<bool, Error> {
        let mut keys = vec![
            at.claims.jti.clone(),
            format!("{SUBJECT_KEY}{}", at.claims.sub),
            format!("{CLIENT_KEY}{}", at.claims.client_id),
        ];
        if let Some(f) = &at.family {
            keys.push(format!("{GRANT_KEY}{f}"));
        }
        // From a recent read while the database is away (`recent_reads`).
        let hits = self
            .recent_reads
            .revocation_entries(
                &self.store,
                &keys,
                self.now(),
                self.settings.outage_staleness_secs,
            )
            .await?;
        Ok(hits.iter().any(|(k, revoked_at)| {
            let cut_off = k.starts_with(SUBJECT_KEY) || k.starts_with(CLIENT_KEY);
            !cut_off || at.claims.iat <= *revoked_at
        }))
    }

    /// Whether the user (or subject) `sub`, or the client `client_id`, was
    /// cut off (forced logout, consent withdrawn, client deleted) at or
    /// after `issued_at`: for an ID token presented as a token exchange's
    /// subject, which has no grant and no revocation entry of its own.
    pub async fn cut_off_since(
        &self,
        sub: &str,
        client_id: &str,
        issued_at: i64,
    ) -> Result<bool, Error> {
        let keys = [
            format!("{SUBJECT_KEY}{sub}"),
            format!("{CLIENT_KEY}{client_id}"),
        ];
        let hits = self
            .recent_reads
            .revocation_entries(
                &self.store,
                &keys,
                self.now(),
                self.settings.outage_staleness_secs,
            )
            .await?;
        Ok(hits.iter().any(|(_, revoked_at)| issued_at <= *revoked_at))
    }

    /// Revokes one access token until it would have expired, and every
    /// token exchanged from it when it had no grant of its own (RFC 8693:
    /// such tokens carry its jti as their grant).
    pub async fn revoke_access_token(&self, at: &AccessClaims) -> Result<(), Error> {
        let now = self.now();
        if at.family.is_none() {
            self.revoke_grant_access_tokens(&at.claims.jti, now).await?;
        }
        self.store
            .revoke_jti(&at.claims.jti, at.claims.exp, now)
            .await?;
        self.store.revoke_opaque_token(&at.claims.jti, now).await?;
        if let Some(s) = at.status {
            self.store
                .revoke_status_index(s.0, s.list_id(), at.claims.exp)
                .await?;
            self.status_lists.forget(&[s.list_id()]);
        }
        Ok(())
    }

    /// Revokes a grant: every refresh token of the family and every access
    /// token issued from it (JWE and opaque alike).
    pub async fn revoke_grant(&self, family_id: &str) -> Result<(), Error> {
        let now = self.now();
        self.store.revoke_refresh_family(family_id, now).await?;
        self.revoke_grant_access_tokens(family_id, now).await
    }

    /// Revokes every access token of a grant (JWE and opaque alike),
    /// exchanged ones included.
    async fn revoke_grant_access_tokens(&self, family_id: &str, now: i64) -> Result<(), Error> {
        self.store.revoke_opaque_family(family_id, now).await?;
        self.store
            .revoke_key_until(
                &format!("{GRANT_KEY}{family_id}"),
                now + MAX_ACCESS_TOKEN_TTL,
                now,
            )
            .await?;
        let lists = self.store.revoke_status_family(family_id, now).await?;
        self.status_lists.forget(&lists);
        Ok(())
    }

    /// Revokes every access token of a subject issued until now (forced logout).
    pub async fn revoke_subject_tokens(&self, sub: &str) -> Result<(), Error> {
        let now = self.now();
        self.store
            .revoke_key_until(
                &format!("{SUBJECT_KEY}{sub}"),
                now + MAX_ACCESS_TOKEN_TTL,
                now,
            )
            .await?;
        let lists = self.store.revoke_status_subject(sub, now).await?;
        self.status_lists.forget(&lists);
        Ok(())
    }

    /// Revokes everything `client_id` holds for `user_id` (she withdrew
    /// her consent): her refresh tokens there, her device approvals not
    /// yet redeemed there, then each of her grants
    /// there (its access tokens, JWE and opaque alike). Refresh tokens go
    /// first by (user, client), so one issued while the grants are listed
    /// is revoked too.
    pub async fn revoke_user_client_tokens(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<u64, Error> {
        let refresh = self
            .store
            .revoke_refresh_tokens_of_user_at_client(user_id, client_id, self.now())
            .await?;
        self.store
            .deny_unredeemed_device_approvals(user_id, Some(client_id), self.now())
            .await?;
        for family in self
            .store
            .grants_of_user_at_client(user_id, client_id)
            .await?
        {
            self.revoke_grant(&family).await?;
        }
        Ok(refresh)
    }

    /// Revokes everything a client holds (RFC 7592 2.3: the client is being
    /// deleted): its refresh tokens, its opaque tokens, every access token
    /// issued to it until a few seconds from now (`CLIENT_CACHE_GRACE`),
    /// and every access token of its grants (the status bits, and tokens
    /// other clients exchanged from them).
    pub async fn revoke_client_tokens(&self, client_id: &str) -> Result<(), Error> {
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
        // Tokens other clients exchanged from this client's own tokens
        // (client_credentials: `sub` is this client) are not its, and
        // have no grant: cut them off by their subject.
        self.store
            .revoke_key_until(
                &format!("{SUBJECT_KEY}{client_id}"),
                cut_off + MAX_ACCESS_TOKEN_TTL,
                cut_off,
            )
            .await?;
        // Each grant as a whole: its tokens exchanged by other clients
        // (RFC 8693) are not the client's, and die with the grant.
        for family in &grants {
            self.revoke_grant_access_tokens(family, now).await?;
        }
        Ok(())
    }
}
