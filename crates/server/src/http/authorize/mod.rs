//! The authorization endpoint (RFC 6749 4.1.1; OIDC Core 3.1.2; RFC 7636;
//! RFC 8707; RFC 9207): HTTP around [`crate::authorization`].
//!
//! `/authorize` (GET or POST) checks the request once. When it can answer
//! at once (an error, or a signed-in user with nothing to ask) it does,
//! writing nothing but the code. Otherwise it starts an authorization
//! transaction and sends the browser to `/login?tx=..` or `/consent?tx=..`;
//! after each form the browser comes back to `GET /authorize/continue?tx=..`,
//! which decides again on the stored request (without checking the raw
//! request again) and issues the code, once per transaction.
//!
//! A `request_uri` of ours continues a pushed request (RFC 9126 4); a
//! `request` is a signed request object (RFC 9101).
//!
//! An unknown client or an unregistered redirect URI gets an error page and
//! never a redirect (RFC 6749 4.1.2.1). Every other error goes back to the
//! client's redirect URI with `error`, `state` and `iss`: at once for a
//! client an administrator registered, through a page with a link for one
//! that registered itself (RFC 9700 4.11.2).

mod respond;
pub mod transaction;

use std::net::{IpAddr, SocketAddr};

use axum::{
    body::Bytes,
    extract::{ConnectInfo, RawQuery, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
    Extension,
};

pub use self::respond::{reject, reject_to_client, respond, see_other, user_denied};
use gatehouse_storage::StoreError;

use super::{error::AppError, form::Params};
use crate::{
    authorization::{self, decide, issue_code, Checked, Next, Received, Transaction, TxError},
    client_ip,
    http::session,
    i18n::{self, Msg, UiLocales},
    oauth::ErrorCode,
    state::AppState,
};

/// Authorization transactions one client IP may start per minute: each is
/// a row written for an anonymous request (at most about 6 KB: the stored
/// parameters are capped). Beyond, `/authorize` answers
/// `temporarily_unavailable` at the redirect URI until the minute ends.
/// Room for an office behind one address signing in at nine o'clock; a
/// flood from one address stays at about 18 MB of live rows.
pub const MAX_STARTS_PER_MINUTE: u32 = 300;

/// The client IP of a request (behind the trusted proxies).
pub(crate) fn caller_ip(
    state: &AppState,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = peer.map(|Extension(ConnectInfo(a))| a);
    client_ip::resolve(peer, headers, &state.settings.trusted_proxies)
}

/// `GET /authorize` (OIDC Core 3.1.2.1: query parameters).
pub async fn get(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let ip = caller_ip(&state, peer, &headers);
    handle(&state, &headers, ip, q.unwrap_or_default().as_bytes()).await
}

/// `POST /authorize` (OIDC Core 3.1.2.1: form-serialized parameters).
pub async fn post(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if super::form::require_form(&headers).is_err() {
        return AppError::page(Msg::NotFormEncoded).into_response();
    }
    let ip = caller_ip(&state, peer, &headers);
    handle(&state, &headers, ip, &body).await
}

/// `GET /authorize/continue?tx=..`: goes on with a transaction of this
/// browser after login or consent, deciding again on the stored request.
pub async fn resume(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let (tx, checked) =
        match transaction::load(&state, &headers, tx_param(q.as_deref()).as_deref()).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    advance(&state, &headers, &checked, Started::Continued(Box::new(tx))).await
}

/// The `tx` parameter of a query string; empty counts as absent.
pub fn tx_param(query: Option<&str>) -> Option<String> {
    query_param(query, "tx")
}

/// The first `name` parameter of a query string; empty counts as absent.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let q = query?;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

async fn handle(state: &AppState, headers: &HeaderMap, ip: Option<IpAddr>, raw: &[u8]) -> Response {
    // Parsed at the edge, leniently: a repeated parameter is still
    // answered at the client's redirect URI when that one is trustworthy.
    let (params, duplicate, too_many) = Params::parse_lenient(raw);
    // The client's languages for every page of this sign-in, from the
    // first (an unknown client's error page included).
    if let Some(ui) = params.get("ui_locales") {
        i18n::prefer(&UiLocales::parse(ui));
    }
    let received = Received {
        params: params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        duplicate,
        too_many,
        ..Received::default()
    };
    match authorization::receive(state, &received).await {
        Ok(checked) => advance(state, headers, &checked, Started::New(ip)).await,
        Err(r) => reject(state, r),
    }
}

/// Where a checked request stands: new at `/authorize` (from this client
/// IP), or continuing its transaction after login or consent.
pub enum Started {
    New(Option<IpAddr>),
    Continued(Box<Transaction>),
}

/// Takes the next step of a checked request.
pub async fn advance(
    state: &AppState,
    headers: &HeaderMap,
    checked: &Checked,
    tx: Started,
) -> Response {
    let device = checked.request.device.is_some();
    match step(state, headers, checked, tx).await {
        Ok(r) => r,
        Err(Failed::Tx(e)) => transaction::page(e),
        // A device authorization has no redirect URI: the page says it.
        Err(Failed::App(AppError::Unavailable)) if device => super::error::unavailable_page(),
        Err(Failed::App(AppError::Internal(detail))) if device => {
            AppError::Internal(detail).into_page_response()
        }
        Err(Failed::App(AppError::Unavailable)) => reject_to_client(
            state,
            checked,
            ErrorCode::TemporarilyUnavailable,
            "try again shortly",
        ),
        Err(Failed::App(AppError::Internal(detail))) => {
            tracing::error!(%detail, "authorization failed");
            reject_to_client(state, checked, ErrorCode::ServerError, "internal error")
        }
        Err(Failed::App(e)) => e.into_response(),
    }
}

/// Why a step failed: the request's client can be told (the store), or
/// the transaction cannot go on (a page).
enum Failed {
    App(AppError),
    Tx(TxError),
}

impl From<AppError> for Failed {
    fn from(e: AppError) -> Self {
        Failed::App(e)
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed::App(e.into())
    }
}

impl From<TxError> for Failed {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Store(e) => e.into(),
            e => Failed::Tx(e),
        }
    }
}

async fn step(
    state: &AppState,
    headers: &HeaderMap,
    checked: &Checked,
    started: Started,
) -> Result<Response, Failed> {
    let (tx, ip) = match started {
        Started::New(ip) => (None, ip),
        Started::Continued(t) => (Some(*t), None),
    };
    let current = session::current(state, headers).await?;
    let next = decide(state, checked, current, tx.as_ref()).await?;
    let page = match next {
        Next::Refuse(code, description) => {
            if let (Some(device), Some(t)) = (&checked.request.device, tx.as_ref()) {
                // Refused for good (a level the user cannot reach): the
                // device learns it at its next poll (access_denied)
                // instead of polling until it expires.
                if let Err(e) = crate::authorization::device::decide(state, t, device, None).await {
                    tracing::info!(error = %e, "device authorization not denied after a refusal");
                }
            }
            return Ok(reject_to_client(state, checked, code, description));
        }
        Next::Issue(found) => {
            let (session, user) = *found;
            if let Some(device) = &checked.request.device {
                // Decided at /device: always after the consent page, in a
                // transaction.
                let Some(tx) = tx.as_ref() else {
                    return Ok(super::device_verification::refused(
                        "the device authorization was not confirmed",
                    ));
                };
                let approved_by = Some((&session, &user));
                return Ok(
                    super::device_verification::finish(state, tx, device, approved_by).await,
                );
            }
            let code = issue_code(state, &checked.request, &session, &user, tx.as_ref()).await?;
            let req = &checked.request;
            let mut pairs = vec![("code", code)];
            if let Some(s) = &req.state {
                pairs.push(("state", s.clone()));
            }
            return Ok(respond(state, &req.redirect_uri, req.response_mode, pairs));
        }
        Next::Login => "/login",
        Next::StepUp(_) => "/login/second-factor",
        Next::Consent => "/consent",
    };
    let (tx, cookie) = match tx {
        Some(t) => (t, None),
        None => {
            let key = crate::client_ip::rate_key(ip);
            let now = state.now();
            if state.authorization_starts.blocked(&key, now).is_some() {
                tracing::warn!(ip = %key, "too many authorization transactions started");
                return Ok(reject_to_client(
                    state,
                    checked,
                    ErrorCode::TemporarilyUnavailable,
                    "too many sign-in requests from this network; try again in a minute",
                ));
            }
            state.authorization_starts.record(&key, now);
            transaction::begin(state, checked.request.clone()).await?
        }
    };
    let to = format!("{page}?tx={}", urlencode(&tx.id));
    Ok(transaction::with_cookie(see_other(&to), cookie))
}

/// Percent-encodes a query component.
pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
