//! Second factors, apart from HTTP: TOTP enrolment and checks (the secret
//! sealed and checked in the keys crate), recovery codes (ten, single use,
//! stored as keyed hashes), the limits on wrong codes ([`guarded`]), and
//! the level a session steps up to once one is confirmed. Used by the sign-in's
//! second-factor page and the account page.
//!
//! Wrong codes are held off twice: by the instance's growing delays
//! (`throttle::Scope::SecondFactor`) and by a hard limit counted in the
//! database, so that neither more instances nor a restart buy an attacker
//! who knows the password more guesses: after [`FAILURE_LIMIT`] wrong
//! codes in a row, none is checked until [`FAILURE_WINDOW`] seconds after
//! the last (NIST SP 800-63B 5.2.2), or an operator's `users mfa reset`.

use base64::{engine::general_purpose::STANDARD, Engine};
use gatehouse_protocol::{Acr, Amr};
use gatehouse_storage::model::{Session, User};
use qrcode::{render::svg, QrCode};
use std::{future::Future, net::IpAddr};
use zeroize::Zeroizing;

use crate::{
    audit::{self, Event},
    authorization::levels,
    error::Error,
    secrets::typable_code,
    state::AppState,
};

/// Wrong second-factor codes in a row after which an account's codes are
/// not checked for [`FAILURE_WINDOW`] seconds.
pub const FAILURE_LIMIT: u32 = 100;
/// Seconds after the last wrong code when the count starts over.
pub const FAILURE_WINDOW: i64 = 86_400;

/// How long an enrolment may wait for its first code, in seconds.
pub const ENROLMENT_LIFETIME: i64 = 600;
/// Recovery codes made at a time.
pub const RECOVERY_CODES: usize = 10;
const RECOVERY_CODE_LEN: usize = 10;

/// An enrolment just begun: what the user copies into her app, once.
pub struct Enrolment {
    pub secret_base32: Zeroizing<String>,
    /// The `otpauth://` URI as a QR code: an SVG `data:` URI for an `<img>`.
    pub qr_data_uri: String,
}

/// How a second factor was confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Totp,
    RecoveryCode,
}

impl Method {
    /// The audit name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Totp => "otp",
            Method::RecoveryCode => "recovery_code",
        }
    }
}

/// The issuer's host, which labels the entry in authenticator apps.
fn issuer_label(state: &AppState) -> String {
    url::Url::parse(&state.settings.issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "Gatehouse".to_owned())
}

/// Begins (or begins again) a TOTP enrolment for `user` in `session`: a
/// new secret, sealed and stored unconfirmed, which only this session can
/// confirm. A confirmed factor must be removed first (`Conflict`).
pub async fn begin_enrolment(
    state: &AppState,
    session: &Session,
    user: &User,
) -> Result<Enrolment, Error> {
    let new = state
        .totp
        .generate(&user.id, &issuer_label(state), &user.username)?;
    state
        .store
        .begin_totp(&user.id, new.sealed.clone(), &session.id_hash, state.now())
        .await?;
    let qr =
        QrCode::new(new.uri.as_bytes()).map_err(|e| Error::Internal(format!("QR code: {e}")))?;
    let svg_text = qr
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(Enrolment {
        secret_base32: new.secret_base32,
        qr_data_uri: format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg_text)),
    })
}

/// Confirms the enrolment `session` began with its first code. Returns the
/// new recovery codes (to show once), or `None` for a wrong code or no
/// pending enrolment of this session.
pub async fn confirm_enrolment(
    state: &AppState,
    session: &Session,
    user: &User,
    code: &str,
) -> Result<Option<Vec<String>>, Error> {
    let now = state.now();
    let Some(f) = state.store.totp_factor(&user.id).await? else {
        return Ok(None);
    };
    if f.confirmed_at.is_some() || f.created_at <= now - ENROLMENT_LIFETIME {
        return Ok(None);
    }
    let Some(step) = state
        .totp
        .matching_step(&user.id, &f.secret_sealed, code, now)?
    else {
        return Ok(None);
    };
    let cutoff = now - ENROLMENT_LIFETIME;
    if !state
        .store
        .confirm_totp(&user.id, &session.id_hash, cutoff, step, now)
        .await?
    {
        return Ok(None);
    }
    audit::emit(&Event::TotpEnrolled { user_id: &user.id }, now);
    new_recovery_codes(state, user).await.map(Some)
}

/// Checks a second factor the user typed: a TOTP code (six digits) of a
/// step not used before, or one of her unused recovery codes.
pub async fn check(state: &AppState, user: &User, input: &str) -> Result<Option<Method>, Error> {
    let now = state.now();
    let digits: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let Some(f) = state.store.totp_factor(&user.id).await? else {
            return Ok(None);
        };
        if f.confirmed_at.is_none() {
            return Ok(None);
        }
        let Some(step) = state
            .totp
            .matching_step(&user.id, &f.secret_sealed, &digits, now)?
        else {
            return Ok(None);
        };
        let used = state.store.use_totp_step(&user.id, step).await?;
        return Ok(used.then_some(Method::Totp));
    }
    let normal = normalize_recovery_code(input);
    if normal.len() != RECOVERY_CODE_LEN {
        return Ok(None);
    }
    let hash = state.hasher.hash(&format!("recovery:{}:{normal}", user.id));
    let used = state.store.use_recovery_code(&user.id, &hash, now).await?;
    Ok(used.then_some(Method::RecoveryCode))
}

/// A recovery code as stored: lowercase, without dashes or spaces.
fn normalize_recovery_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .take(64)
        .collect()
}

/// Makes ten new recovery codes (voiding the old ones) and returns them,
/// formatted `xxxxx-xxxxx`, to show once.
pub async fn new_recovery_codes(state: &AppState, user: &User) -> Result<Vec<String>, Error> {
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| typable_code(RECOVERY_CODE_LEN))
        .collect();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| state.hasher.hash(&format!("recovery:{}:{c}", user.id)))
        .collect();
    let now = state.now();
    state
        .store
        .replace_recovery_codes(&user.id, &hashes, now)
        .await?;
    audit::emit(&Event::RecoveryCodesGenerated { user_id: &user.id }, now);
    Ok(codes
        .into_iter()
        .map(|c| format!("{}-{}", &c[..5], &c[5..]))
        .collect())
}

/// The level and methods of `session` once `method` confirmed a second
/// factor (for `http::session::raise`).
pub fn stepped_up(session: &Session, method: Method) -> (Acr, Vec<String>) {
    // RFC 8176 has no value for a recovery code; it is a one-time password.
    let amr_value = match method {
        Method::Totp | Method::RecoveryCode => Amr::Otp,
    };
    levels::with_second_factor(&session.amr, amr_value)
}

/// A user who had no second factor now has one: her refresh tokens and
/// unredeemed codes, all granted with the password alone, are revoked, so
/// her apps sign her in again with both factors. (The refresh grant also
/// refuses one-factor grants of a user with a factor: this is the prompt
/// cleanup, not the only guard.)
pub async fn first_factor_added(state: &AppState, user: &User) -> Result<(), Error> {
    let codes = state.store.delete_pending_codes_of_user(&user.id).await?;
    state
        .store
        .deny_unredeemed_device_approvals(&user.id, None, state.now())
        .await?;
    let revoked = state
        .store
        .revoke_refresh_tokens_of_user(&user.id, state.now())
        .await?;
    tracing::info!(user_id = %user.id, revoked, codes, "first second factor: one-factor grants revoked");
    Ok(())
}

/// The outcome of a code checked under the limits.
#[derive(Debug)]
pub enum Guarded<T> {
    /// The code was right.
    Passed(T),
    /// The code was wrong (counted, and audited).
    Wrong,
    /// Too many wrong codes: nothing was checked; try again in this many
    /// seconds.
    Held(i64),
}

/// Runs `check` (a code of `user`'s: `Some` when right) under both limits
/// on wrong codes, counting it as wrong until it is known to be right, and
/// audits failures and the moments a limit engages.
pub async fn guarded<T>(
    state: &AppState,
    user: &User,
    ip: Option<IpAddr>,
    check: impl Future<Output = Result<Option<T>, Error>>,
) -> Result<Guarded<T>, Error> {
    let now = state.now();
    let keys = state.throttle.second_factor(&user.id);
    let attempt = match state.throttle.attempt(&keys, now) {
        Ok(a) => a,
        Err(secs) => return Ok(Guarded::Held(secs)),
    };
    let held = state
        .store
        .count_factor_attempt(&user.id, FAILURE_LIMIT, FAILURE_WINDOW, now)
        .await
        .inspect_err(|_| state.throttle.refund(&keys))?;
    if let Some(secs) = held {
        state.throttle.refund(&keys);
        engaged(user, ip, secs, now);
        return Ok(Guarded::Held(secs));
    }
    // A failing database leaves the attempt counted: fail closed.
    let Some(passed) = check.await.inspect_err(|_| state.throttle.refund(&keys))? else {
        audit::emit(
            &Event::SecondFactorFailed {
                user_id: &user.id,
                ip,
            },
            now,
        );
        if let Some((_, secs)) = attempt.engages {
            engaged(user, ip, secs, now);
        }
        return Ok(Guarded::Wrong);
    };
    state.throttle.succeed(&keys);
    state.store.clear_factor_failures(&user.id).await?;
    Ok(Guarded::Passed(passed))
}

fn engaged(user: &User, ip: Option<IpAddr>, retry_after: i64, now: i64) {
    audit::emit(
        &Event::ThrottleEngaged {
            scope: crate::throttle::Scope::SecondFactor.as_str(),
            retry_after,
            user_id: Some(&user.id),
            client_id: None,
            ip,
        },
        now,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_compared_without_dashes_case_or_spaces() {
        assert_eq!(normalize_recovery_code(" AbCdE-fGhJk "), "abcdefghjk");
        assert_eq!(normalize_recovery_code("abcde fghjk"), "abcdefghjk");
    }
}
