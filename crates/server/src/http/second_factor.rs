//! `/login/second-factor`: the step-up page. A signed-in user whose
//! session is below the level her request, her client or her account
//! requires types a TOTP code or a recovery code; a user with no second
//! factor who must have one enrols TOTP here first (the QR code and the
//! secret, then the first code; her recovery codes are shown once). The
//! session's level and `amr` rise; its `auth_time` does not (a step-up is
//! not a primary authentication, so `max_age` still asks for the password).
//!
//! Reached with `tx` it continues that authorization transaction; without,
//! it leads to the account page.

use axum::{
    body::Bytes,
    extract::{ConnectInfo, RawQuery, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::Response,
    Extension,
};
use gatehouse_protocol::Acr;
use gatehouse_storage::{
    model::{Session, User},
    StoreError,
};
use std::net::{IpAddr, SocketAddr};
use tera::Context;

use super::{
    authorize::{see_other, transaction, tx_param, urlencode},
    error::AppError,
    form::Params,
    session,
};
use crate::{
    audit::{self, Event},
    authorization::{
        decide::{factors_of, needed, usable},
        levels,
        levels::Needed,
        Checked, Transaction,
    },
    client_ip,
    factors::{self, Guarded},
    i18n::Msg,
    state::AppState,
    views,
};

/// Where the user goes once her session is at the level needed.
fn onward(tx: &Option<(Transaction, Checked)>) -> String {
    match tx {
        Some((t, _)) => format!("/authorize/continue?tx={}", urlencode(&t.id)),
        None => "/account".to_owned(),
    }
}

/// The level this session must step up to, if any: for a transaction,
/// what it needs; otherwise (the account page) two factors for a user who
/// has a second factor or must have one.
async fn must_step_up(
    state: &AppState,
    tx: &Option<(Transaction, Checked)>,
    session: &Session,
    user: &User,
) -> Result<Option<Acr>, StoreError> {
    if let Some((_, checked)) = tx {
        return Ok(match needed(state, checked, session, user).await? {
            Needed::StepUp(level) => Some(level),
            Needed::Enough | Needed::Unmet => None,
        });
    }
    Ok(account_needs_step_up(state, session, user)
        .await?
        .then_some(Acr::Mfa))
}

/// The account page's rule: a session below two factors of a user who has
/// a second factor or must have one steps up first.
pub async fn account_needs_step_up(
    state: &AppState,
    session: &Session,
    user: &User,
) -> Result<bool, StoreError> {
    if levels::session_level(session) >= Acr::Mfa {
        return Ok(false);
    }
    Ok(user.mfa_required || factors_of(state, user).await?.any())
}

struct Page<'a> {
    tx: &'a Option<(Transaction, Checked)>,
    /// The level to reach.
    target: Acr,
    status: StatusCode,
    error: Option<&'a Msg>,
    retry_after: Option<i64>,
}

/// The code form (only the passkey when a phishing-resistant level is
/// needed: a code would not reach it), or for a user without a second
/// factor a new enrolment.
async fn render(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    user: &User,
    p: Page<'_>,
) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    let mut ctx = Context::new();
    ctx.insert("csrf", &csrf);
    ctx.insert("tx", &p.tx.as_ref().map(|(t, _)| t.id.as_str()));
    ctx.insert("error", &p.error.map(Msg::text));
    ctx.insert(
        "client_name",
        &p.tx.as_ref().map(|(_, c)| c.client.name.as_str()),
    );
    let f = match factors_of(state, user).await {
        Ok(f) => f,
        Err(e) => return AppError::from(e).into_page_response(),
    };
    let usable = usable(state, f);
    ctx.insert("has_totp", &(usable.totp && p.target < Acr::Phr));
    ctx.insert("has_passkey", &usable.passkey);
    let template = if usable.any() {
        "second_factor.html"
    } else if f.any() {
        // Her only factor is a passkey this server cannot use now (its
        // issuer became an IP address): no way in, rather than less.
        return AppError::Page {
            status: StatusCode::CONFLICT,
            message: Msg::PasskeyUnusable,
        }
        .into_page_response();
    } else {
        match factors::begin_enrolment(state, session, user).await {
            Ok(e) => {
                ctx.insert("secret", e.secret_base32.as_str());
                ctx.insert("qr", &e.qr_data_uri);
                ctx.insert("action", "/login/second-factor");
                "totp_enrol.html"
            }
            Err(e) => return AppError::from(e).into_page_response(),
        }
    };
    let mut r = views::page(p.status, template, &ctx);
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    if let Some(v) = p
        .retry_after
        .and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The signed-in session and the transaction, or where to go instead.
async fn context(
    state: &AppState,
    headers: &HeaderMap,
    tx_id: Option<&str>,
) -> Result<(Session, User, Option<(Transaction, Checked)>), Response> {
    let tx = match tx_id {
        None => None,
        Some(id) => Some(transaction::load(state, headers, Some(id)).await?),
    };
    match session::current(state, headers).await {
        Ok(Some((s, u))) => Ok((s, u, tx)),
        Ok(None) => Err(see_other(&match &tx {
            Some((t, _)) => format!("/login?tx={}", urlencode(&t.id)),
            None => "/login".to_owned(),
        })),
        Err(e) => Err(e.into_page_response()),
    }
}

/// `GET /login/second-factor`.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let id = tx_param(raw.as_deref());
    let (session, user, tx) = match context(&state, &headers, id.as_deref()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let target = match must_step_up(&state, &tx, &session, &user).await {
        Ok(Some(t)) => t,
        Ok(None) => return see_other(&onward(&tx)),
        Err(e) => return AppError::from(e).into_page_response(),
    };
    let page = Page {
        tx: &tx,
        target,
        status: StatusCode::OK,
        error: None,
        retry_after: None,
    };
    render(&state, &headers, &session, &user, page).await
}

/// `POST /login/second-factor`: checks the code (or confirms the
/// enrolment), raises the session, and goes on (303).
pub async fn post(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(a))| a);
    let ip = client_ip::resolve(peer, &headers, &state.settings.trusted_proxies);
    match confirm(&state, &headers, &body, ip).await {
        Ok(r) => r,
        Err(e) => e.into_page_response(),
    }
}

async fn confirm(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    ip: Option<IpAddr>,
) -> Result<Response, AppError> {
    let bad_form = || AppError::page(Msg::FormNotSent);
    super::form::require_form(headers).map_err(|_| bad_form())?;
    let p = Params::parse(body).map_err(|_| bad_form())?;
    session::check_csrf(state, headers, p.get("csrf").unwrap_or(""))?;
    let id = p.get("tx").filter(|t| !t.is_empty());
    let (session, user, tx) = match context(state, headers, id).await {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    let Some(target) = must_step_up(state, &tx, &session, &user).await? else {
        return Ok(see_other(&onward(&tx)));
    };
    if target >= Acr::Phr {
        // Only a passkey reaches it: a code would be spent for nothing.
        return Err(AppError::page(Msg::PasskeyNeeded));
    }
    let before = factors_of(state, &user).await?;
    let code = p.get("code").unwrap_or("");
    let enrolling = p.get("mode") == Some("enrol");
    let check = async {
        if enrolling {
            factors::confirm_enrolment(state, &session, &user, code)
                .await
                .map(|c| c.map(|codes| (factors::Method::Totp, Some(codes))))
        } else {
            factors::check(state, &user, code)
                .await
                .map(|m| m.map(|m| (m, None)))
        }
    };
    let (method, recovery_codes) = match factors::guarded(state, &user, ip, check).await? {
        Guarded::Passed(x) => x,
        Guarded::Held(secs) => {
            let msg = Msg::TooManyCodes { count: secs };
            let page = Page {
                tx: &tx,
                target,
                status: StatusCode::TOO_MANY_REQUESTS,
                error: Some(&msg),
                retry_after: Some(secs),
            };
            return Ok(render(state, headers, &session, &user, page).await);
        }
        Guarded::Wrong => {
            let msg = if enrolling {
                Msg::WrongEnrolmentCode
            } else {
                Msg::WrongCode
            };
            let page = Page {
                tx: &tx,
                target,
                status: StatusCode::UNAUTHORIZED,
                error: Some(&msg),
                retry_after: None,
            };
            return Ok(render(state, headers, &session, &user, page).await);
        }
    };
    audit::emit(
        &Event::SecondFactorSucceeded {
            user_id: &user.id,
            method: method.as_str(),
            ip,
        },
        state.now(),
    );
    if recovery_codes.is_some() && !before.any() {
        factors::first_factor_added(state, &user).await?;
    }
    let (acr, amr) = factors::stepped_up(&session, method);
    let Some((_, cookie)) = session::raise(state, &session, acr, &amr).await? else {
        return Ok(see_other("/login"));
    };
    let next = onward(&tx);
    let r = match recovery_codes {
        None => see_other(&next),
        Some(codes) => {
            let mut ctx = Context::new();
            ctx.insert("codes", &codes);
            ctx.insert("next", &next);
            views::page(StatusCode::OK, "recovery_codes.html", &ctx)
        }
    };
    Ok(transaction::with_cookie(r, cookie))
}
