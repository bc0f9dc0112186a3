//! The token exchange grant (RFC 8693): a confidential client trades a
//! token it was sent for an access token to another API, acting for the
//! token's subject (delegation, RFC 8693 1.1).
//!
//! What may be exchanged, and by whom:
//! - the subject token is Gatehouse's own: an access token addressed to an
//!   API the caller is linked to (`resources ... --client`), so a client
//!   trades only tokens sent to its own API; or an ID token issued to the
//!   caller (which carries no API scope);
//! - the target API lists the caller (`resources ... --allow-exchange-from`);
//! - the scope only narrows, and stays within the target's scopes;
//! - a DPoP-bound subject (or actor) token needs a proof of its key.
//!
//! The new token carries the subject's `sub`, the caller as `client_id`,
//! `act` (the actor, with the subject's own chain nested inside) and the
//! subject's grant (or, without one, the subject token's jti as its grant),
//! so revoking that grant or token revokes what was exchanged from it. It
//! never outlives the subject token, and has no refresh token.

use std::sync::Arc;

use gatehouse_storage::model::User;

use crate::{
    audit::{self, Event},
    dpop::Proof,
    error::{Error, OAuthError},
    grants::{AuthenticatedClient, PresentedToken},
    id_token_hint::{self, HintError},
    oauth::{AuthMethod, ClientId, Jkt, ScopeSet, TokenTypeUri, STANDARD_SCOPES},
    registry::Resource,
    state::AppState,
    tokens::{
        claims::Actor, new_jti, token_type, AccessClaimsInput, Audience, Exchanged, TokenResponse,
    },
};

/// The longest delegation chain (`act` nested this deep) an exchange
/// makes; a subject already this deep is refused.
pub const MAX_ACTORS: usize = 8;

/// A token exchange request, its token types already known names.
#[derive(Debug)]
pub struct Request<'a> {
    pub subject: &'a PresentedToken,
    pub actor: Option<&'a PresentedToken>,
    pub resource: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub requested_token_type: Option<TokenTypeUri>,
}

/// A subject or actor token refused: invalid, or unacceptable by policy,
/// is `invalid_request` (RFC 8693 2.2.2, a MUST).
fn unacceptable(d: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    OAuthError::InvalidRequest(d.into()).into()
}

fn invalid_request(d: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    OAuthError::InvalidRequest(d.into()).into()
}

/// What a subject token says.
struct Subject {
    sub: String,
    scope: ScopeSet,
    /// Its grant, else its own jti: the grant of what is exchanged from it.
    /// `None` for an ID token (which has neither).
    family: Option<String>,
    act: Option<Actor>,
    auth_time: Option<i64>,
    acr: Option<String>,
    exp: i64,
    jkt: Option<Jkt>,
}

/// Issues an access token for the target API to the calling client, for
/// the subject token's subject (RFC 8693 2.1, 2.2.1).
pub async fn exchange(
    state: &AppState,
    auth: &AuthenticatedClient,
    r: &Request<'_>,
    proof: Option<&Proof>,
) -> Result<TokenResponse, Error> {
    if auth.method == AuthMethod::None {
        return Err(OAuthError::UnauthorizedClient(
            "public clients may not use token exchange".into(),
        )
        .into());
    }
    // The client authenticated: its proof may be recorded.
    if let Some(p) = proof {
        p.record(state).await?;
    }
    let jkt = proof.map(|p| &p.jkt);
    if let Some(t) = r.requested_token_type {
        if t != TokenTypeUri::AccessToken {
            return Err(invalid_request(format!(
                "requested_token_type {t} is not issued; only {} is",
                TokenTypeUri::AccessToken
            )));
        }
    }
    if let Some(a) = r.actor {
        if a.token_type != TokenTypeUri::AccessToken {
            return Err(invalid_request(format!(
                "unsupported actor_token_type; the actor token is an access token issued to this client ({})",
                TokenTypeUri::AccessToken
            )));
        }
    }
    let caller = &auth.client;
    let target = target(state, r.resource, r.audience).await?;
    if !target.record.allow_exchange_from.contains(&caller.id) {
        // RFC 8693 2.2.2: unwilling to issue for this target.
        return Err(OAuthError::InvalidTarget(
            "the target resource server does not allow this client to exchange tokens for it"
                .into(),
        )
        .into());
    }
    let subject = match r.subject.token_type {
        TokenTypeUri::AccessToken => access_subject(state, &caller.id, &r.subject.token).await?,
        TokenTypeUri::IdToken => id_subject(state, &caller.id, &r.subject.token).await?,
    };
    bound_to_proof(subject.jkt.as_ref(), jkt, "subject_token")?;
    let actor = match r.actor {
        Some(a) => actor_sub(state, &caller.id, &a.token, jkt).await?,
        None => caller.id.to_string(),
    };
    let act = Actor {
        sub: actor,
        act: subject.act.clone().map(Box::new),
    };
    if act.depth() > MAX_ACTORS {
        return Err(unacceptable(format!(
            "the subject_token's delegation chain is already {MAX_ACTORS} actors long"
        )));
    }
    let scope = scope(r.scope, &subject.scope, &target, caller)?;
    let (user, subject_client) = who(state, &subject, r.subject.token_type).await?;
    // An opaque token's row keeps a user, not a client subject: read back,
    // the caller would pass for the subject.
    if subject_client.is_some() && target.opaque {
        return Err(OAuthError::InvalidTarget(
            "a client's token cannot be exchanged for an opaque resource server's token".into(),
        )
        .into());
    }

    let access = state
        .tokens
        .issue_access_token(AccessClaimsInput {
            client: caller,
            user: user.as_ref(),
            scope: &scope,
            audience: Audience::Resource(target.clone()),
            auth_time: subject.auth_time,
            acr: subject.acr.as_deref(),
            jti: new_jti(),
            family: subject.family.as_deref(),
            jkt,
            exchange: Some(Exchanged {
                subject_client: subject_client.as_ref(),
                act: act.clone(),
                not_after: subject.exp,
            }),
        })
        .await?;
    audit::emit(
        &Event::TokenExchanged {
            client_id: &caller.id,
            sub: &subject.sub,
            actor: &act.sub,
            audience: &target.record.audience,
        },
        state.now(),
    );
    Ok(TokenResponse {
        access_token: access.token,
        token_type: token_type(jkt),
        expires_in: access.expires_in,
        refresh_token: None,
        id_token: None,
        scope: scope.to_string(),
        issued_token_type: Some(TokenTypeUri::AccessToken),
    })
}

/// The resource server named by `resource` and/or `audience` (RFC 8693
/// 2.1: both name the target; Gatehouse's audiences are the resource
/// indicators). Each must be registered; both must agree; one is required.
async fn target(
    state: &AppState,
    resource: Option<&str>,
    audience: Option<&str>,
) -> Result<Arc<Resource>, Error> {
    let all = state.registry.resources().await?;
    let find = |name: &str, param: &str| {
        all.get(name).cloned().ok_or_else(|| {
            Error::from(OAuthError::InvalidTarget(
                format!("{param} is not a registered resource server").into(),
            ))
        })
    };
    match (resource, audience) {
        (None, None) => Err(OAuthError::InvalidTarget(
            "name the target API with resource or audience".into(),
        )
        .into()),
        (Some(r), None) => find(r, "resource"),
        (None, Some(a)) => find(a, "audience"),
        (Some(r), Some(a)) => {
            let by_resource = find(r, "resource")?;
            let by_audience = find(a, "audience")?;
            if !Arc::ptr_eq(&by_resource, &by_audience) {
                return Err(OAuthError::InvalidTarget(
                    "resource and audience name different resource servers".into(),
                )
                .into());
            }
            Ok(by_resource)
        }
    }
}

/// A subject access token: one of ours, active, addressed to an API the
/// caller is linked to.
async fn access_subject(
    state: &AppState,
    caller: &ClientId,
    token: &str,
) -> Result<Subject, Error> {
    let Some(at) = state.tokens.read_access_token(token).await? else {
        return Err(unacceptable(
            "subject_token is not an active access token of this issuer",
        ));
    };
    let resources = state.registry.resources().await?;
    let linked = resources
        .get(&at.claims.aud)
        .is_some_and(|r| r.record.clients.contains(caller));
    if !linked {
        return Err(unacceptable(
            "subject_token was not issued for an API this client is linked to",
        ));
    }
    let claims = at.claims;
    Ok(Subject {
        family: Some(at.family.unwrap_or_else(|| claims.jti.clone())),
        sub: claims.sub,
        scope: at.scope,
        act: claims.act,
        auth_time: claims.auth_time,
        acr: claims.acr,
        exp: claims.exp,
        jkt: claims.cnf.map(|c| c.jkt),
    })
}

/// A subject ID token: one of ours, unexpired, issued to the caller alone.
async fn id_subject(state: &AppState, caller: &ClientId, token: &str) -> Result<Subject, Error> {
    let t = id_token_hint::read(state, token).map_err(|e| {
        unacceptable(match e {
            HintError::Signature => "subject_token is not signed by this issuer's keys",
            HintError::NotAnIdToken => "subject_token is not an ID token",
            HintError::OtherIssuer => "subject_token was issued by another issuer",
            HintError::Incomplete => "subject_token lacks sub or aud",
        })
    })?;
    let exp = match t.exp {
        Some(exp) if exp > state.now() => exp,
        Some(_) => return Err(unacceptable("subject_token has expired")),
        None => return Err(unacceptable("subject_token has no exp")),
    };
    if t.aud != [caller.as_str()] {
        return Err(unacceptable("subject_token was not issued to this client"));
    }
    // It has no grant of its own: a forced logout of its user, or the
    // caller's deletion, since it was issued ends it too.
    let issued_at = t.iat.or(t.auth_time).unwrap_or(0);
    if state
        .tokens
        .cut_off_since(&t.sub, caller, issued_at)
        .await?
    {
        return Err(unacceptable(
            "subject_token's user was signed out everywhere (or its client's tokens revoked) since it was issued",
        ));
    }
    Ok(Subject {
        sub: t.sub,
        // An ID token grants no API scope: the new token says who the
        // user is, nothing more.
        scope: ScopeSet::default(),
        family: None,
        act: None,
        auth_time: t.auth_time,
        acr: t.acr,
        exp,
        jkt: None,
    })
}

/// The actor token's subject: an active access token of ours issued to
/// the caller (RFC 8693 4.1: the party acting).
async fn actor_sub(
    state: &AppState,
    caller: &ClientId,
    token: &str,
    jkt: Option<&Jkt>,
) -> Result<String, Error> {
    let Some(at) = state.tokens.read_access_token(token).await? else {
        return Err(unacceptable(
            "actor_token is not an active access token of this issuer",
        ));
    };
    if &at.claims.client_id != caller {
        return Err(unacceptable("actor_token was not issued to this client"));
    }
    bound_to_proof(at.claims.cnf.as_ref().map(|c| &c.jkt), jkt, "actor_token")?;
    Ok(at.claims.sub)
}

/// A DPoP-bound token is presented with a proof of its key (RFC 9449 5).
fn bound_to_proof(bound: Option<&Jkt>, proof: Option<&Jkt>, name: &str) -> Result<(), Error> {
    match (bound, proof) {
        (None, _) => Ok(()),
        (Some(b), Some(p)) if b == p => Ok(()),
        (Some(_), Some(_)) => Err(unacceptable(format!("{name} is bound to another DPoP key"))),
        (Some(_), None) => Err(unacceptable(format!(
            "{name} is bound to a DPoP key: send a DPoP proof of that key"
        ))),
    }
}

/// The new token's scope: at most the subject's; every API scope one the
/// target defines and the caller may have (its `--scope` list, as for
/// any of its tokens: a scope name another API also defines does not
/// carry over by name alone). Without `scope`: the subject's scopes that
/// pass both.
fn scope(
    asked: Option<&str>,
    subject: &ScopeSet,
    target: &Resource,
    caller: &gatehouse_storage::model::Client,
) -> Result<ScopeSet, Error> {
    let defined = |s: &str| {
        target.record.scopes.iter().any(|x| x == s) && caller.scopes.iter().any(|x| x == s)
    };
    let Some(asked) = asked else {
        return Ok(ScopeSet::of(subject.iter().filter(|s| defined(s))));
    };
    let asked = ScopeSet::parse(asked).map_err(|e| OAuthError::InvalidScope(e.into()))?;
    if !asked.is_subset(subject) {
        return Err(OAuthError::InvalidScope(
            "scope may only narrow the subject_token's scope".into(),
        )
        .into());
    }
    if let Some(s) = asked
        .iter()
        .find(|s| !STANDARD_SCOPES.contains(s) && !defined(s))
    {
        return Err(OAuthError::InvalidScope(
            format!("scope {s} is not a scope of the target resource server this client may have")
                .into(),
        )
        .into());
    }
    Ok(asked)
}

/// Who the subject is: an active user, or (for an access token) a client
/// that still exists.
async fn who(
    state: &AppState,
    subject: &Subject,
    kind: TokenTypeUri,
) -> Result<(Option<User>, Option<ClientId>), Error> {
    if let Some(user) = state.store.user_by_id(&subject.sub).await? {
        if user.disabled {
            return Err(unacceptable("the subject_token's user is disabled"));
        }
        return Ok((Some(user), None));
    }
    if kind == TokenTypeUri::AccessToken {
        if let Some(c) = state.registry.client(&subject.sub).await? {
            return Ok((None, Some(c.id.clone())));
        }
    }
    Err(unacceptable("the subject_token's subject no longer exists"))
}
