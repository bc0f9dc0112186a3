//! The authorization code grant (RFC 6749 4.1.3; RFC 7636 4.6; OIDC Core 3.1.3).
//!
//! A code is single use, lives 60 seconds, and is bound to its client, its
//! redirect URI and its PKCE challenge. Redemption is one conditional write,
//! so of N concurrent redemptions exactly one succeeds. The bindings are
//! checked on the code before it is consumed: a wrong client, redirect URI
//! or verifier gets `invalid_grant` and leaves the code as it was. A code
//! replayed by its own client (with its verifier) revokes what the first
//! redemption issued (RFC 6749 10.5).

use gatehouse_storage::model::{AuthCode, Client, CodeLookup, CodeRedemption, GrantWrites};

use crate::{
    dpop::Proof,
    error::{Error, OAuthError},
    grants::AuthenticatedClient,
    oauth::{Jkt, ScopeSet},
    pkce::{CodeChallenge, CodeVerifier},
    state::AppState,
    tokens::{new_jti, TokenResponse},
};

fn invalid_grant(d: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    OAuthError::InvalidGrant(d.into()).into()
}

fn expired(state: &AppState) -> Error {
    invalid_grant(format!(
        "the code has expired (codes are valid for {} seconds)",
        state.settings.lifetimes.code
    ))
}

/// The code was issued to this client, for this redirect URI, (if it
/// carries a challenge) this verifier matches it (RFC 6749 4.1.3; RFC 7636
/// 4.6), and (if it is bound to a DPoP key) the request's proof is of that
/// key (RFC 9449 10). The descriptions name what differs, never the stored
/// values.
fn check_bindings(
    code: &AuthCode,
    client_id: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
    jkt: Option<&Jkt>,
) -> Result<(), Error> {
    if code.client_id != client_id {
        return Err(invalid_grant("the code was issued to another client"));
    }
    if code.redirect_uri != redirect_uri {
        return Err(invalid_grant(
            "the code was issued for another redirect_uri",
        ));
    }
    match (&code.dpop_jkt, jkt) {
        (Some(bound), Some(j)) if bound != j => {
            return Err(invalid_grant(
                "the DPoP proof's key is not the one the authorization request named (dpop_jkt)",
            ))
        }
        (Some(_), None) => {
            return Err(OAuthError::InvalidDpopProof(
                "the code is bound to a DPoP key (dpop_jkt): send a DPoP proof of that key".into(),
            )
            .into())
        }
        _ => {}
    }
    match (&code.code_challenge, verifier) {
        (Some(challenge), Some(v)) => {
            let v = CodeVerifier::parse(v).map_err(invalid_grant)?;
            if !v.proves(&CodeChallenge::stored(challenge)) {
                return Err(invalid_grant("PKCE verifier does not match"));
            }
            Ok(())
        }
        (Some(_), None) => Err(invalid_grant(
            "the code was issued with a PKCE challenge; code_verifier is missing",
        )),
        (None, Some(_)) => Err(invalid_grant(
            "code_verifier was sent, but the authorization request had no code_challenge",
        )),
        (None, None) => Ok(()),
    }
}

/// The scope a code was stored with. One that does not parse is a fault of
/// the data (corruption, a bad migration), not of the client: logged and
/// answered 500, as in the refresh grant.
fn stored_scope(scope: &str) -> Result<ScopeSet, Error> {
    ScopeSet::parse(scope).map_err(|_| Error::Internal("a stored code scope is invalid".into()))
}

/// Exchanges a code for tokens.
pub async fn exchange(
    state: &AppState,
    auth: &AuthenticatedClient,
    code: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
    proof: Option<&Proof>,
) -> Result<TokenResponse, Error> {
    let now = state.now();
    let jkt = proof.map(|p| &p.jkt);
    let client = &auth.client;

    // The bindings are checked before the code is consumed: a request from
    // another client, or with a wrong redirect URI or verifier, neither
    // burns a live code nor revokes the grant of a used one (only the
    // code's own client, proving its PKCE verifier, can do that).
    let code_hash = state.hasher.hash(code);
    let live = match state.store.find_code(&code_hash, now).await? {
        CodeLookup::Live(c) => {
            check_bindings(&c, &client.id, redirect_uri, verifier, jkt)?;
            Some(c)
        }
        CodeLookup::Used(c) => {
            check_bindings(&c, &client.id, redirect_uri, verifier, jkt)?;
            None
        }
        CodeLookup::Expired => return Err(expired(state)),
        CodeLookup::Unknown => {
            return Err(invalid_grant(
                "the code is unknown: it was never issued here, or it expired and was removed",
            ))
        }
    };
    // The code exists and its bindings hold: the proof may be recorded.
    if let Some(p) = proof {
        p.record(state).await?;
    }
    let Some(code) = live else {
        // Used before: the conditional write cannot win; it reports the
        // replay with what the first redemption issued.
        redeem(
            state,
            client,
            &code_hash,
            now,
            "",
            now,
            &GrantWrites::default(),
        )
        .await?;
        return Err(Error::Internal("a used code was redeemed again".into()));
    };
    let user = match state.store.user_by_id(&code.user_id).await? {
        Some(u) if !u.disabled => u,
        _ => {
            return Err(invalid_grant(
                "the user who authorized this code is disabled or deleted",
            ))
        }
    };
    let scope = stored_scope(&code.scope)?;
    let grant = super::UserTokenInput {
        client,
        user: &user,
        scope: &scope,
        resource: code.resource.as_deref(),
        auth_time: code.auth_time,
        acr: code.acr.as_deref(),
        amr: &code.amr,
        sid: code.sid.as_deref(),
        nonce: code.nonce.as_deref(),
        family: &code.family_id,
        jti: new_jti(),
        jkt,
    };
    // The whole answer is made before the code is spent, and written with
    // the redemption in one transaction: a fault leaves the code redeemable.
    let (response, writes) = super::first_tokens(state, auth, &grant).await?;
    redeem(
        state,
        client,
        &code_hash,
        now,
        &grant.jti,
        now + super::access_lifetime_bound(state, client),
        &writes,
    )
    .await?;
    Ok(response)
}

/// Spends the code, writing `writes` in the same transaction. Of concurrent
/// redemptions one wins; a replay revokes what the first one issued.
async fn redeem(
    state: &AppState,
    client: &Client,
    code_hash: &str,
    now: i64,
    access_token_jti: &str,
    access_token_expires_at: i64,
    writes: &GrantWrites,
) -> Result<(), Error> {
    match state
        .store
        .redeem_code(
            code_hash,
            now,
            access_token_jti,
            access_token_expires_at,
            writes,
        )
        .await?
    {
        CodeRedemption::Redeemed(_) => Ok(()),
        CodeRedemption::Replayed {
            family_id,
            access_token_jti,
            access_token_expires_at,
        } => {
            tracing::warn!(client_id = %client.id, "authorization code replayed; revoking the tokens it produced");
            super::revoke_redeemed(state, &family_id, access_token_jti, access_token_expires_at)
                .await?;
            Err(invalid_grant(
                "the code has already been used; the tokens issued for it are revoked",
            ))
        }
        // It expired between the look-up and the redemption.
        CodeRedemption::Invalid => Err(expired(state)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_scope_that_does_not_parse_is_internal() {
        assert!(matches!(stored_scope("\u{7f}"), Err(Error::Internal(_))));
        assert!(matches!(stored_scope("openid"), Ok(s) if s.contains("openid")));
    }
}
