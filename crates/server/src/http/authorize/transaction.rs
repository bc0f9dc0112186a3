//! The browser's side of an authorization transaction: the cookie that
//! binds transactions to this browser, the `tx` parameter the pages carry,
//! and the page shown when a transaction cannot be continued.

use axum::{
    http::{header, HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
};
use gatehouse_storage::StoreError;

use crate::{
    authorization::{transaction, AuthorizationRequest, Checked, Transaction, TxError},
    http::error::AppError,
    secrets::random_token,
    session,
    state::AppState,
};

/// The cookie (base name) holding this browser's binding value. HttpOnly,
/// SameSite=Lax, Secure except on a development issuer, like the session
/// cookie; set by the first `/authorize` that needs the user, then reused.
const BROWSER_COOKIE: &str = "authz";

/// Longest `tx` value accepted (ours are 43 characters).
const MAX_TX_LEN: usize = 128;

/// Starts a transaction for `request` in this browser; the Set-Cookie to
/// send when the browser had no binding value yet.
pub async fn begin(
    state: &AppState,
    headers: &HeaderMap,
    request: AuthorizationRequest,
) -> Result<(Transaction, Option<HeaderValue>), StoreError> {
    let (browser, cookie) = match session::read_cookie(state, headers, BROWSER_COOKIE) {
        Some(b) => (b, None),
        None => {
            let b = random_token();
            let c = session::set_cookie(state, BROWSER_COOKIE, &b, None);
            (b, c)
        }
    };
    let tx = transaction::begin(state, &browser, request).await?;
    Ok((tx, cookie))
}

/// The live transaction `id` names, if this browser may continue it, with
/// its client; else the page to show (never a redirect: the redirect URI
/// of a transaction that cannot be loaded is not to be trusted).
pub async fn load(
    state: &AppState,
    headers: &HeaderMap,
    id: Option<&str>,
) -> Result<(Transaction, Checked), Response> {
    let id = id
        .filter(|i| !i.is_empty() && i.len() <= MAX_TX_LEN)
        .ok_or_else(|| page(TxError::Unknown))?;
    let browser = session::read_cookie(state, headers, BROWSER_COOKIE)
        .ok_or_else(|| page(TxError::Unknown))?;
    let tx = transaction::load(state, id, &browser).await.map_err(page)?;
    let client = match state.registry.client(&tx.request.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(AppError::page(
                "The application that sent you here is no longer registered.",
            )
            .into_response())
        }
        Err(e) => return Err(page(TxError::Store(e))),
    };
    let checked = Checked {
        request: tx.request.clone(),
        client,
    };
    Ok((tx, checked))
}

/// The page for a transaction that cannot be continued (400), or for the
/// store being away (503).
pub fn page(e: TxError) -> Response {
    match e {
        TxError::Unknown => AppError::page(
            "This sign-in request has expired or was started in another browser. \
             Go back to the application and start again.",
        )
        .into_response(),
        TxError::Consumed => AppError::page(
            "This sign-in request was already completed. \
             Go back to the application and start again.",
        )
        .into_response(),
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
