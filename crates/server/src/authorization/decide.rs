//! What a checked authorization request needs next, decided at
//! `/authorize` and again at each step of its transaction: a sign-in, a
//! second factor (step-up), consent, an error for `prompt=none` or an
//! unmet level, or the code, which this module issues.

use gatehouse_storage::{
    model::{AuthCode, Session, User},
    StoreError,
};

use gatehouse_protocol::Acr;

use super::{
    levels::{self, Needed},
    transaction::{Transaction, TxError},
    AuthorizationRequest, Checked,
};
use crate::{oauth::ErrorCode, secrets::random_token, state::AppState};

/// The next step of an authorization.
#[derive(Debug)]
pub enum Next {
    /// The user must sign in (again).
    Login,
    /// The signed-in user must reach this level with a second factor
    /// (enrolling one first if she has none).
    StepUp(Acr),
    /// The user must approve the scopes.
    Consent,
    /// Nothing more to ask: issue the code for this session.
    Issue(Box<(Session, User)>),
    /// `prompt=none` and the user would have to be asked (OIDC Core 3.1.2.6).
    Refuse(ErrorCode, &'static str),
}

/// Decides the next step for `req` with the browser's current session.
/// `tx` is the transaction being continued (a sign-in during it satisfies
/// `prompt=login`, `select_account` and `max_age`, even 0; an approval on
/// the consent page during it, in the current session, satisfies
/// `prompt=consent`).
pub async fn decide(
    state: &AppState,
    checked: &Checked,
    current: Option<(Session, User)>,
    tx: Option<&Transaction>,
) -> Result<Next, StoreError> {
    let req = &checked.request;
    let now = state.now();
    let Some((session, user)) = current else {
        return Ok(login(req));
    };
    let signed_in_here = tx.is_some_and(|t| t.signed_in_with(state, &session));
    let stale = req.prompt.login
        || req.prompt.select_account
        || req.max_age.is_some_and(|m| now - session.auth_time > m);
    let other_user = req.hint_sub.as_deref().is_some_and(|h| h != user.id);
    if (stale && !signed_in_here) || other_user {
        return Ok(login(req));
    }
    match needed(state, checked, &session, &user).await? {
        Needed::Enough => {}
        Needed::Unmet => {
            return Ok(Next::Refuse(
                ErrorCode::UnmetAuthenticationRequirements,
                "the user cannot meet the authentication level required",
            ))
        }
        Needed::StepUp(_) if req.prompt.none => {
            return Ok(Next::Refuse(
                ErrorCode::InteractionRequired,
                "the user must confirm a second factor",
            ))
        }
        Needed::StepUp(level) => return Ok(Next::StepUp(level)),
    }
    let granted = state
        .store
        .consented_scopes(&user.id, &req.client_id)
        .await?;
    let missing = req.scope.iter().any(|s| !granted.iter().any(|g| g == s));
    let consented = tx.is_some_and(|t| t.consented_in(state, &session));
    if (req.prompt.consent && !consented) || missing {
        if req.prompt.none {
            return Ok(Next::Refuse(
                ErrorCode::ConsentRequired,
                "the user has not consented to these scopes",
            ));
        }
        return Ok(Next::Consent);
    }
    Ok(Next::Issue(Box::new((session, user))))
}

/// What the request, the client's and the user's policies and the user's
/// factors ask of this session. A user with a second factor always uses
/// it. Only the operator's policy makes a user without one enrol (TOTP,
/// during the sign-in): a client's request never does. (Whoever knows the
/// password of an account without a factor can still add one on the
/// account page, as its owner can: a first factor is only as strong as
/// the password it was added with; docs/security.md.) The factors are
/// read only when the session is below a passkey's level.
pub async fn needed(
    state: &AppState,
    checked: &Checked,
    session: &Session,
    user: &User,
) -> Result<Needed, StoreError> {
    let level = levels::session_level(session);
    let policy = levels::policy_floor(&checked.client, user);
    let mut floor = policy;
    let mut capable = level;
    if level < Acr::Phr {
        let f = factors_of(state, user).await?;
        capable = capable.max(usable(state, f).capable());
        if f.any() {
            floor = floor.max(Acr::Mfa);
        }
    }
    let enrollable = if policy >= Acr::Mfa {
        Acr::Mfa
    } else {
        Acr::Pwd
    };
    Ok(levels::needed(
        &checked.request.acr,
        level,
        floor,
        capable,
        enrollable,
    ))
}

pub use gatehouse_storage::model::Factors;

/// The user's second factors, in one query. A passkey counts even while
/// this server cannot use passkeys: she still has a factor, and signing in
/// must not fall back to the password alone.
pub async fn factors_of(state: &AppState, user: &User) -> Result<Factors, StoreError> {
    state.store.factors_of_user(&user.id).await
}

/// The factors this server can check now: no passkeys while they are off.
pub fn usable(state: &AppState, f: Factors) -> Factors {
    Factors {
        totp: f.totp,
        passkey: f.passkey && state.passkeys.enabled(),
    }
}

fn login(req: &AuthorizationRequest) -> Next {
    if req.prompt.none {
        Next::Refuse(ErrorCode::LoginRequired, "the user is not signed in")
    } else {
        Next::Login
    }
}

/// Issues the authorization code for `session` and returns it. With a
/// transaction, the code is stored in the same write that consumes it: one
/// code per transaction.
pub async fn issue_code(
    state: &AppState,
    req: &AuthorizationRequest,
    session: &Session,
    user: &User,
    tx: Option<&Transaction>,
) -> Result<String, TxError> {
    let now = state.now();
    let code = random_token();
    let record = AuthCode {
        code_hash: state.hasher.hash(&code),
        client_id: req.client_id.clone(),
        user_id: user.id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scope.to_string(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.as_ref().map(|c| c.as_str().to_owned()),
        resource: req.resource.clone(),
        auth_time: session.auth_time,
        sid: Some(session.sid.clone()),
        acr: Some(
            levels::acr_claim(&req.acr, levels::session_level(session))
                .as_str()
                .to_owned(),
        ),
        amr: session.amr.clone(),
        family_id: uuid::Uuid::new_v4().to_string(),
        created_at: now,
        expires_at: now + state.settings.lifetimes.code,
        dpop_jkt: req.dpop_jkt.clone(),
    };
    match tx {
        Some(t) => t.consume(state, Some(&record)).await?,
        None => state.store.create_code(&record).await?,
    }
    state
        .store
        .add_session_client(&session.sid, &req.client_id, now)
        .await?;
    Ok(code)
}
