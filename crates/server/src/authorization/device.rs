//! The device authorization grant (RFC 8628) on the authorization side:
//! a device authorization started for a client (`POST
//! /device_authorization`), its user code, and the user's decision at
//! `/device`, taken in an authorization transaction like any other
//! request (the same sign-in, second factor and consent), which ends by
//! approving or denying the device authorization instead of issuing a code.
//!
//! The device code is a 256-bit random token; the user code 8 characters
//! from 20 consonants (RFC 8628 6.1: about 34.5 bits), shown `XXXX-XXXX`
//! and compared in a normal form (upper case, no dash or space). Both are
//! stored as keyed hashes. Guessing a user code is throttled per client
//! IP and per browser at `/device`; a live one is worth nothing without
//! the device's device code anyway, except to approve it with one's own
//! account, which the consent page's warning guards.

use gatehouse_storage::{
    model::{DeviceApproval, DeviceAuthorization, DeviceDecided, DeviceDecision, Session, User},
    StoreError,
};
use serde::{Deserialize, Serialize};

use super::{
    levels,
    request::{AuthorizationRequest, Prompt},
    transaction::{Transaction, TxError},
};
use crate::{
    error::{Error, OAuthError},
    oauth::ScopeSet,
    rate::RateWindow,
    secrets::{random_bytes, random_token},
    state::AppState,
};
use gatehouse_storage::model::Client;

/// Seconds a device authorization lives (RFC 8628 3.2 `expires_in`).
pub const LIFETIME: i64 = 600;
/// Seconds between polls the client starts with (RFC 8628 3.2 `interval`).
pub const INTERVAL: i64 = 5;
/// The user code's alphabet: consonants only, no vowels (no words), none
/// that look alike (RFC 8628 6.1).
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code.
const USER_CODE_LEN: usize = 8;
/// Draws of a fresh user code when the one drawn is taken.
const DRAWS: usize = 4;

/// Device authorizations one confidential client may start per minute;
/// beyond, `POST /device_authorization` answers 429. A public client's
/// id is no secret, so anyone could use up its budget: its starts count
/// per address only (every start is counted per address, with the
/// authorization transactions started there, and per site).
pub const STARTS_PER_CLIENT_PER_MINUTE: u32 = 600;
/// Device authorizations one site (an IPv4 address, an IPv6 /48) may start
/// per minute: one holder of a /48 does not get 65,536 address budgets.
pub const STARTS_PER_SITE_PER_MINUTE: u32 = 1200;
/// User codes one address (an IPv4 address, an IPv6 /64) may enter per
/// minute at `/device`. Every entry counts, right or wrong, and is counted
/// before it is looked up: a burst of concurrent guesses gets no further
/// than a slow one.
pub const ENTRIES_PER_IP_PER_MINUTE: u32 = 20;
/// User codes one site (an IPv4 address, an IPv6 /48: what one subscriber
/// or one carrier's customers may share) may enter per minute.
pub const ENTRIES_PER_SITE_PER_MINUTE: u32 = 200;
/// User codes one browser (its session cookie, else its CSRF cookie) may
/// enter per minute at `/device`: a person mistyping is slowed down; a
/// guesser who drops cookies is held by the address limits.
pub const ENTRIES_PER_BROWSER_PER_MINUTE: u32 = 5;

/// The device flow's counters, in memory, per instance.
#[derive(Debug)]
pub struct Limits {
    pub starts_by_client: RateWindow,
    pub starts_by_site: RateWindow,
    pub entries_by_ip: RateWindow,
    pub entries_by_site: RateWindow,
    pub entries_by_browser: RateWindow,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            starts_by_client: RateWindow::new(STARTS_PER_CLIENT_PER_MINUTE),
            starts_by_site: RateWindow::new(STARTS_PER_SITE_PER_MINUTE),
            entries_by_ip: RateWindow::new(ENTRIES_PER_IP_PER_MINUTE),
            entries_by_site: RateWindow::new(ENTRIES_PER_SITE_PER_MINUTE),
            entries_by_browser: RateWindow::new(ENTRIES_PER_BROWSER_PER_MINUTE),
        }
    }
}

/// A user code in its normal form: 8 characters of [`ALPHABET`].
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl std::fmt::Debug for UserCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserCode(<hidden>)")
    }
}

impl UserCode {
    /// A new random user code (uniform: bytes beyond the largest multiple
    /// of 20 are drawn again).
    pub fn generate() -> UserCode {
        let mut out = String::with_capacity(USER_CODE_LEN);
        while out.len() < USER_CODE_LEN {
            for b in random_bytes::<16>() {
                if b < 240 && out.len() < USER_CODE_LEN {
                    out.push(char::from(ALPHABET[usize::from(b % 20)]));
                }
            }
        }
        UserCode(out)
    }

    /// What a person typed, in normal form: case, dashes and spaces do not
    /// matter; anything else that is not 8 characters of the alphabet is
    /// no user code.
    pub fn parse(typed: &str) -> Option<UserCode> {
        if typed.len() > 64 {
            return None;
        }
        let normal: String = typed
            .chars()
            .filter(|c| *c != '-' && !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        (normal.len() == USER_CODE_LEN && normal.bytes().all(|b| ALPHABET.contains(&b)))
            .then_some(UserCode(normal))
    }

    /// As shown: `XXXX-XXXX`.
    pub fn display(&self) -> String {
        let (a, b) = self.0.split_at(USER_CODE_LEN / 2);
        format!("{a}-{b}")
    }

    /// The keyed hash it is stored and found by.
    fn hash(&self, state: &AppState) -> String {
        state.hasher.hash(&format!("user_code:{}", self.0))
    }
}

/// What a transaction for a device authorization carries instead of a
/// redirect URI: which device authorization it decides, and the user code
/// the user entered (shown again on the consent page, to compare with the
/// device's screen).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRequest {
    pub device_code_hash: String,
    pub user_code: String,
}

impl std::fmt::Debug for DeviceRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRequest")
            .field("device_code_hash", &self.device_code_hash)
            .field("user_code", &"<hidden>")
            .finish()
    }
}

/// A started device authorization: what the client shows and polls with.
pub struct Started {
    pub device_code: String,
    pub user_code: UserCode,
}

/// Checks the requested scope and resource for `client` with the rules
/// of `/authorize` ([`super::checks::user_grant_scope`]), and returns the
/// scope and the resource server's audience.
pub async fn check_scope(
    state: &AppState,
    client: &Client,
    scope: Option<&str>,
    resource: Option<&str>,
) -> Result<(ScopeSet, Option<String>), Error> {
    let scope =
        ScopeSet::parse(scope.unwrap_or("")).map_err(|e| OAuthError::InvalidScope(e.into()))?;
    let resources = state.registry.resources().await?;
    let named = match resource {
        None => None,
        Some(r) => Some(resources.get(r).cloned().ok_or_else(|| {
            OAuthError::InvalidTarget("resource is not a registered resource server".into())
        })?),
    };
    let (scope, resolved) =
        super::checks::user_grant_scope(client, scope, named.as_ref(), &resources)?;
    Ok((scope, resolved.map(|r| r.record.audience.clone())))
}

/// Starts a device authorization for `client` (RFC 8628 3.1), with a
/// checked scope and resource.
pub async fn start(
    state: &AppState,
    client: &Client,
    scope: &ScopeSet,
    resource: Option<String>,
) -> Result<Started, Error> {
    let now = state.now();
    let device_code = random_token();
    let mut record = DeviceAuthorization {
        device_code_hash: state.hasher.hash(&device_code),
        user_code_hash: String::new(),
        client_id: client.id.clone(),
        scope: scope.to_string(),
        resource,
        interval: INTERVAL,
        family_id: uuid::Uuid::new_v4().to_string(),
        created_at: now,
        expires_at: now + LIFETIME,
    };
    // A user code is unique among the stored ones: a draw that is taken
    // (about one in 2.5e10 per live code) is drawn again.
    for _ in 0..DRAWS {
        let user_code = UserCode::generate();
        record.user_code_hash = user_code.hash(state);
        match state.store.create_device_authorization(&record).await {
            Ok(()) => {
                return Ok(Started {
                    device_code,
                    user_code,
                })
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Internal(
        "no free user code after several draws".into(),
    ))
}

/// The authorization request for the undecided device authorization
/// `code` names, if any: its client's, with its scope and resource, and
/// the confirmation always asked (RFC 8628 5.4: even for a prefilled code,
/// even with consent given before).
pub async fn request_for(
    state: &AppState,
    code: &UserCode,
) -> Result<Option<AuthorizationRequest>, StoreError> {
    let Some(d) = state
        .store
        .find_pending_device_authorization(&code.hash(state), state.now())
        .await?
    else {
        return Ok(None);
    };
    let scope = ScopeSet::parse(&d.scope)
        .map_err(|e| StoreError::Corrupt(format!("device authorization scope: {e}")))?;
    Ok(Some(AuthorizationRequest {
        client_id: d.client_id,
        redirect_uri: String::new(),
        response_mode: Default::default(),
        state: None,
        scope,
        nonce: None,
        code_challenge: None,
        resource: d.resource,
        prompt: Prompt {
            consent: true,
            ..Prompt::default()
        },
        max_age: None,
        login_hint: None,
        hint_sub: None,
        acr_values: None,
        acr: Default::default(),
        ui_locales: Default::default(),
        dpop_jkt: None,
        pushed: false,
        device: Some(DeviceRequest {
            device_code_hash: d.device_code_hash,
            user_code: code.display(),
        }),
    }))
}

/// Why a decision was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    Tx(#[from] TxError),
    /// The device authorization was decided in another browser, or expired.
    #[error("the device authorization was already decided or has expired")]
    Gone,
}

impl From<StoreError> for DecideError {
    fn from(e: StoreError) -> Self {
        DecideError::Tx(TxError::Store(e))
    }
}

/// Ends `tx` with the user's decision on its device authorization: both
/// written, or neither. An approval records the sign-in that gave it
/// (user, time, level, methods); the device's tokens are not tied to this
/// browser's session (signing out here does not sign the device out).
pub async fn decide(
    state: &AppState,
    tx: &Transaction,
    device: &DeviceRequest,
    approved_by: Option<(&Session, &User)>,
) -> Result<(), DecideError> {
    let decision = match approved_by {
        None => DeviceDecision::Deny,
        Some((session, user)) => DeviceDecision::Approve(DeviceApproval {
            user_id: user.id.clone(),
            auth_time: session.auth_time,
            acr: Some(
                levels::acr_claim(&tx.request.acr, levels::session_level(session))
                    .as_str()
                    .to_owned(),
            ),
            amr: session.amr.clone(),
        }),
    };
    let (id_hash, browser_hash) = tx.hashes(state);
    match state
        .store
        .decide_device_authorization(
            &id_hash,
            &browser_hash,
            &device.device_code_hash,
            state.now(),
            &decision,
        )
        .await?
    {
        DeviceDecided::Decided => Ok(()),
        DeviceDecided::DeviceLost => Err(DecideError::Gone),
        DeviceDecided::TxLost => Err(tx.why_lost(state).await.into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_consonants_shown_with_a_dash() {
        let c = UserCode::generate();
        assert_eq!(c.0.len(), 8);
        assert!(c.0.bytes().all(|b| ALPHABET.contains(&b)));
        let shown = c.display();
        assert_eq!(shown.len(), 9);
        assert_eq!(&shown[4..5], "-");
        assert_eq!(UserCode::parse(&shown), Some(c.clone()));
        assert_ne!(UserCode::generate(), c);
    }

    #[test]
    fn typed_codes_ignore_case_dashes_and_spaces() {
        let want = UserCode::parse("BCDF-GHJK").unwrap();
        for typed in ["bcdf-ghjk", "BCDFGHJK", " bcdf ghjk ", "bc-df-gh-jk"] {
            assert_eq!(UserCode::parse(typed).as_ref(), Some(&want), "{typed}");
        }
        for bad in [
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "",
            "ΒCDF-GHJK",
        ] {
            assert!(UserCode::parse(bad).is_none(), "{bad}");
        }
        assert!(UserCode::parse(&"B".repeat(100)).is_none());
    }

    #[test]
    fn user_codes_use_the_whole_alphabet() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.extend(UserCode::generate().0.into_bytes());
        }
        assert_eq!(seen.len(), ALPHABET.len());
    }
}
