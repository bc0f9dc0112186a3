//! Device cookies (OWASP "Slow down online guessing attacks with device
//! cookies"): after a successful sign-in the browser gets a cookie bound to
//! that account, `ISSUED.NONCE.MAC`, where MAC is HMAC-SHA-256 under a
//! subkey of the key-encryption key over the normalized username, the
//! issue time and the nonce. A browser presenting a valid one for the
//! account it signs in to is throttled on its own (see `throttle`), so
//! strangers' failures cannot lock the account's own devices out. One
//! cookie per browser: signing in to another account replaces it.

use axum::http::{HeaderMap, HeaderValue};
use gatehouse_keys::{Kek, SecretHasher};

use super::session;
use crate::state::AppState;

/// How long a device cookie is honoured (and kept by the browser): a year.
pub const DEVICE_COOKIE_TTL: i64 = 365 * 86_400;
/// The cookie's base name (prefixed like the session cookie).
const COOKIE: &str = "device";

/// The MAC key of device cookies, derived from the key-encryption key.
pub fn mac_key(kek: &Kek) -> SecretHasher {
    SecretHasher::new(&kek.derive(b"gatehouse device-cookie v1"))
}

fn signed_part(account: &str, issued: i64, nonce: &str) -> String {
    format!("{account}\n{issued}\n{nonce}")
}

/// The nonce of this browser's device cookie, if it is valid for `account`
/// (a normalized username) now.
pub fn valid_for(state: &AppState, headers: &HeaderMap, account: &str, now: i64) -> Option<String> {
    let value = session::read_cookie(state, headers, COOKIE)?;
    let mut parts = value.split('.');
    let (issued, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || nonce.is_empty() || nonce.len() > 64 {
        return None;
    }
    let issued: i64 = issued.parse().ok()?;
    if issued > now + 60 || issued + DEVICE_COOKIE_TTL <= now {
        return None;
    }
    state
        .device_keys
        .matches(&signed_part(account, issued, nonce), mac)
        .then(|| nonce.to_owned())
}

/// A new device cookie for `account`, as a Set-Cookie header.
pub fn issue(state: &AppState, account: &str, now: i64) -> Option<HeaderValue> {
    let nonce = &crate::secrets::random_token()[..22];
    let mac = state.device_keys.hash(&signed_part(account, now, nonce));
    session::set_cookie(
        state,
        COOKIE,
        &format!("{now}.{nonce}.{mac}"),
        Some(DEVICE_COOKIE_TTL),
    )
}
