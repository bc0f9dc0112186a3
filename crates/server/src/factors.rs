//! Second factors, apart from HTTP: TOTP enrolment and checks (the secret
//! sealed and checked in the keys crate), recovery codes (ten, single use,
//! stored as keyed hashes), and stepping a session up once one is
//! confirmed. Used by the sign-in's second-factor page and the account
//! page.

use base64::{engine::general_purpose::STANDARD, Engine};
use gatehouse_protocol::Amr;
use gatehouse_storage::model::{Session, User};
use qrcode::{render::svg, QrCode};
use zeroize::Zeroizing;

use crate::{authorization::levels, error::Error, secrets::typable_code, state::AppState};

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

/// Begins (or begins again) a TOTP enrolment for `user`: a new secret,
/// sealed and stored unconfirmed. A confirmed factor must be removed first
/// (`Conflict`).
pub async fn begin_enrolment(state: &AppState, user: &User) -> Result<Enrolment, Error> {
    let new = state
        .totp
        .generate(&user.id, &issuer_label(state), &user.username)?;
    state
        .store
        .begin_totp(&user.id, new.sealed.clone(), state.now())
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

/// Confirms the user's pending enrolment with its first code. Returns the
/// new recovery codes (to show once), or `None` for a wrong code or no
/// pending enrolment.
pub async fn confirm_enrolment(
    state: &AppState,
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
        .confirm_totp(&user.id, cutoff, step, now)
        .await?
    {
        return Ok(None);
    }
    crate::audit::emit(
        &crate::audit::Event::TotpEnrolled { user_id: &user.id },
        now,
    );
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
    crate::audit::emit(
        &crate::audit::Event::RecoveryCodesGenerated { user_id: &user.id },
        now,
    );
    Ok(codes
        .into_iter()
        .map(|c| format!("{}-{}", &c[..5], &c[5..]))
        .collect())
}

/// Raises `session` to two factors after `method`. `None` when the session
/// ended meanwhile.
pub async fn step_up(
    state: &AppState,
    session: &Session,
    method: Method,
) -> Result<Option<Session>, Error> {
    // RFC 8176 has no value for a recovery code; it is a one-time password.
    let amr_value = match method {
        Method::Totp | Method::RecoveryCode => Amr::Otp,
    };
    let (acr, amr) = levels::with_second_factor(&session.amr, amr_value);
    Ok(state
        .store
        .raise_session(&session.id_hash, acr.as_str(), &amr)
        .await?)
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
