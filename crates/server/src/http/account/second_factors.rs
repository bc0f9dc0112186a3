//! The account page's second factors: setting up an authenticator app
//! (the secret and its QR code, then the first code, then the recovery
//! codes, shown once), removing it with its recovery codes, and making
//! new recovery codes. Each needs a recent sign-in.

use axum::{
    body::Bytes,
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::Response,
    Extension,
};
use std::net::{IpAddr, SocketAddr};
use tera::Context;

use super::{posted_recently, see_other, with_cookie, Done, Signed};
use crate::{
    audit::{self, Event},
    authorization::decide::factors_of,
    client_ip,
    factors::{self, Guarded},
    http::{error::AppError, session},
    i18n::Msg,
    state::AppState,
    views,
};

/// Where the enrolment form posts.
const CONFIRM: &str = "/account/totp/confirm";

/// The enrolment page for a new secret (a wrong first code starts over
/// with a new one, as the sign-in's enrolment does).
async fn enrolment_page(
    state: &AppState,
    headers: &HeaderMap,
    signed: &Signed,
    status: StatusCode,
    error: Option<&Msg>,
    retry_after: Option<i64>,
) -> Response {
    let enrolment = match factors::begin_enrolment(state, &signed.session, &signed.user).await {
        Ok(e) => e,
        Err(e) => return AppError::from(e).into_page_response(),
    };
    let (csrf, cookie) = session::csrf_token(state, headers);
    let mut ctx = Context::new();
    ctx.insert("csrf", &csrf);
    ctx.insert("tx", &None::<&str>);
    ctx.insert("client_name", &None::<&str>);
    ctx.insert("error", &error.map(Msg::text));
    ctx.insert("secret", enrolment.secret_base32.as_str());
    ctx.insert("qr", &enrolment.qr_data_uri);
    ctx.insert("action", CONFIRM);
    let mut r = with_cookie(views::page(status, "totp_enrol.html", &ctx), cookie);
    if let Some(v) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The new recovery codes, shown once, then back to the account page.
fn codes_page(codes: &[String]) -> Response {
    let mut ctx = Context::new();
    ctx.insert("codes", codes);
    ctx.insert("next", "/account");
    views::page(StatusCode::OK, "recovery_codes.html", &ctx)
}

/// `POST /account/totp/begin`: a new secret to scan.
pub async fn begin_totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signed = match posted_recently(&state, &headers, &body).await {
        Ok((s, _)) => s,
        Err(r) => return r,
    };
    match factors_of(&state, &signed.user).await.map(|f| f.totp) {
        Ok(false) => {}
        Ok(true) => return Done::TotpAlreadySetUp.back(),
        Err(e) => return AppError::from(e).into_page_response(),
    }
    enrolment_page(&state, &headers, &signed, StatusCode::OK, None, None).await
}

/// `POST /account/totp/confirm`: the first code turns the app on (this
/// session is then at two factors) and the recovery codes are shown.
pub async fn confirm_totp(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(a))| a);
    let ip = client_ip::resolve(peer, &headers, &state.settings.trusted_proxies);
    let (signed, p) = match posted_recently(&state, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match confirm(&state, &headers, &signed, p.get("code").unwrap_or(""), ip).await {
        Ok(r) => r,
        Err(e) => e.into_page_response(),
    }
}

async fn confirm(
    state: &AppState,
    headers: &HeaderMap,
    signed: &Signed,
    code: &str,
    ip: Option<IpAddr>,
) -> Result<Response, AppError> {
    let (session, user) = (&signed.session, &signed.user);
    // A second tab confirmed already: nothing pending to confirm.
    let before = factors_of(state, user).await?;
    if before.totp {
        return Ok(Done::TotpAlreadySetUp.back());
    }
    let check = factors::confirm_enrolment(state, session, user, code);
    let codes = match factors::guarded(state, user, ip, check).await? {
        Guarded::Passed(codes) => codes,
        Guarded::Held(secs) => {
            let msg = Msg::TooManyCodes { count: secs };
            let status = StatusCode::TOO_MANY_REQUESTS;
            return Ok(
                enrolment_page(state, headers, signed, status, Some(&msg), Some(secs)).await,
            );
        }
        Guarded::Wrong => {
            let msg = Msg::WrongEnrolmentCode;
            let status = StatusCode::UNAUTHORIZED;
            return Ok(enrolment_page(state, headers, signed, status, Some(&msg), None).await);
        }
    };
    audit::emit(
        &Event::SecondFactorSucceeded {
            user_id: &user.id,
            method: factors::Method::Totp.as_str(),
            ip,
        },
        state.now(),
    );
    if !before.any() {
        factors::first_factor_added(state, user).await?;
    }
    // The session stays at its level: a factor set up in a session proves
    // nothing about who signed it in (whoever stole the password could set
    // one up). The account page asks for a code before anything else.
    Ok(codes_page(&codes))
}

/// `POST /account/totp/remove`: the app and the recovery codes go.
pub async fn remove_totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signed = match posted_recently(&state, &headers, &body).await {
        Ok((s, _)) => s,
        Err(r) => return r,
    };
    match state.store.delete_totp(&signed.user.id).await {
        Ok(true) => {
            audit::emit(
                &Event::SecondFactorsRemoved {
                    user_id: &signed.user.id,
                    by: "user",
                },
                state.now(),
            );
            Done::TotpRemoved.back()
        }
        Ok(false) => see_other("/account"),
        Err(e) => AppError::from(e).into_page_response(),
    }
}

/// `POST /account/recovery-codes/new`: ten new codes replace the old
/// ones. Only with an authenticator app: the codes stand in for it.
pub async fn new_recovery_codes(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signed = match posted_recently(&state, &headers, &body).await {
        Ok((s, _)) => s,
        Err(r) => return r,
    };
    match factors_of(&state, &signed.user).await.map(|f| f.totp) {
        Ok(true) => {}
        Ok(false) => return see_other("/account"),
        Err(e) => return AppError::from(e).into_page_response(),
    }
    match factors::new_recovery_codes(&state, &signed.user).await {
        Ok(codes) => codes_page(&codes),
        Err(e) => AppError::from(e).into_page_response(),
    }
}
