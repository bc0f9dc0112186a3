//! The browser's side of an authorization transaction: the cookie that
//! binds each transaction to this browser, the `tx` parameter the pages carry,
//! and the page shown when a transaction cannot be continued.

use axum::{
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
};
use gatehouse_storage::StoreError;

use crate::{
    authorization::{
        self, transaction, AuthorizationRequest, Checked, Rejection, Transaction, TxError,
        TX_LIFETIME,
    },
    http::{error::AppError, session},
    i18n::{self, Msg},
    state::AppState,
};

/// The prefix of the cookies holding browser binding values: one cookie
/// per transaction, `authz_` and 8 characters of the keyed hash of its id
/// (`__Host-gatehouse_authz_..` in production). HttpOnly, SameSite=Lax,
/// Secure except on a development issuer, like the session cookie; it
/// lives as long as the transaction, and is kept after it ended so that a
/// replay is told the transaction was completed.
const COOKIE_PREFIX: &str = "authz_";

/// Longest `tx` value accepted (ours are 43 characters).
const MAX_TX_LEN: usize = 128;

/// The cookie base name for transaction `id`.
fn cookie_base(state: &AppState, id: &str) -> String {
    let hash = state.hasher.hash(id);
    format!("{COOKIE_PREFIX}{}", hash.get(..8).unwrap_or(&hash))
}

/// Starts a transaction for `request`; the Set-Cookie that binds it to
/// this browser.
pub async fn begin(
    state: &AppState,
    request: AuthorizationRequest,
) -> Result<(Transaction, Option<HeaderValue>), StoreError> {
    let tx = transaction::begin(state, request).await?;
    let cookie = session::set_cookie(
        state,
        &cookie_base(state, &tx.id),
        tx.binding(),
        Some(TX_LIFETIME),
    );
    Ok((tx, cookie))
}

/// The live transaction `id` names, if this browser may continue it, with
/// its client, checked again against the client's current registration;
/// else the page to show (never a redirect: the redirect URI of a
/// transaction that cannot be loaded is not to be trusted). A transaction
/// its client's registration no longer allows is ended.
pub async fn load(
    state: &AppState,
    headers: &HeaderMap,
    id: Option<&str>,
) -> Result<(Transaction, Checked), Response> {
    let id = id
        .filter(|i| !i.is_empty() && i.len() <= MAX_TX_LEN)
        .ok_or_else(|| page(TxError::Unknown))?;
    let browser = session::read_cookie(state, headers, &cookie_base(state, id))
        .ok_or_else(|| page(TxError::Unknown))?;
    let tx = transaction::load(state, id, &browser).await.map_err(page)?;
    // Every page of this sign-in speaks the language its client asked for.
    i18n::prefer(&tx.request.ui_locales);
    let client = match state.registry.client(&tx.request.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(AppError::page(Msg::ClientGone).into_response()),
        Err(e) => return Err(page(TxError::Store(e))),
    };
    match authorization::recheck(state, &client, &tx.request).await {
        Ok(()) => {}
        Err(Rejection::Store(e)) => return Err(page(TxError::Store(e))),
        Err(Rejection::Internal(detail)) => return Err(AppError::Internal(detail).into_response()),
        Err(Rejection::Page(Msg::DeviceGone)) => {
            // Decided in another browser, or expired: this one ends too.
            return Err(match tx.consume(state, None).await {
                Ok(()) | Err(TxError::Consumed | TxError::Unknown) => {
                    AppError::page(Msg::DeviceGone).into_response()
                }
                Err(e) => page(e),
            });
        }
        Err(Rejection::Page(why)) => return Err(no_longer_allowed(state, &tx, why.text()).await),
        Err(Rejection::Redirect { description, .. }) => {
            return Err(no_longer_allowed(state, &tx, format!("{description}.")).await)
        }
    }
    let checked = Checked {
        request: tx.request.clone(),
        client,
    };
    Ok((tx, checked))
}

/// Ends `tx`, which its client's registration no longer allows, and says
/// why on a page (400, no redirect). `why` is the check's own words (an
/// OAuth error description is English, as the client receives it).
async fn no_longer_allowed(state: &AppState, tx: &Transaction, why: String) -> Response {
    tracing::info!(client_id = %tx.request.client_id, %why, "authorization transaction no longer allowed by its client's registration");
    if let Err(e) = tx.consume(state, None).await {
        return page(e);
    }
    AppError::page(Msg::RegistrationChanged { reason: why }).into_response()
}

/// The page for a transaction that cannot be continued (400), or for the
/// store being away (503).
pub fn page(e: TxError) -> Response {
    match e {
        TxError::Unknown => AppError::page(Msg::TxUnknown).into_response(),
        TxError::Consumed => AppError::page(Msg::TxConsumed).into_response(),
        TxError::Store(e) => AppError::from(e).into_page_response(),
    }
}

/// Appends `cookie` (a Set-Cookie value), if any, to `r`.
pub fn with_cookie(mut r: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}
