//! Audit events: one log line per security event, with target
//! `gatehouse::audit` at level INFO, whose message is one JSON object of a
//! stable schema (docs/operations.md): `audit` (the schema version, 1),
//! `at` (Unix seconds, from the injected clock), `event` (the kind) and the
//! kind's own fields. Ids, addresses and counts only: never a password, a
//! secret, a token, a cookie or a typed username (people type passwords
//! into the username field).

use std::net::IpAddr;

use serde::Serialize;

/// The schema version in every line's `audit` field.
const SCHEMA: u8 = 1;

/// Why a sign-in failed (for the operator; the person sees one message).
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInFailure {
    /// No account has that username.
    UnknownAccount,
    /// The account is disabled.
    Disabled,
    /// The password is wrong.
    WrongPassword,
}

/// One security event.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    SignInSucceeded {
        user_id: &'a str,
        ip: Option<IpAddr>,
        /// The browser held a valid device cookie of the account.
        known_device: bool,
    },
    SignInFailed {
        /// The account's id, when the username names one.
        user_id: Option<&'a str>,
        ip: Option<IpAddr>,
        reason: SignInFailure,
        known_device: bool,
    },
    ConsentGranted {
        user_id: &'a str,
        client_id: &'a str,
        scope: &'a str,
    },
    ClientRegistered {
        client_id: &'a str,
    },
    ClientUpdated {
        client_id: &'a str,
    },
    ClientDeleted {
        client_id: &'a str,
    },
    KeyRotated {
        kid: &'a str,
        alg: &'a str,
    },
    KeyRevoked {
        kid: &'a str,
    },
    ForcedLogout {
        user_id: &'a str,
        sessions_ended: usize,
    },
    RefreshReuseDetected {
        client_id: &'a str,
        user_id: Option<&'a str>,
    },
    /// A second factor was confirmed (`otp` or `recovery_code`).
    SecondFactorSucceeded {
        user_id: &'a str,
        method: &'static str,
        ip: Option<IpAddr>,
    },
    SecondFactorFailed {
        user_id: &'a str,
        ip: Option<IpAddr>,
    },
    TotpEnrolled {
        user_id: &'a str,
    },
    /// By the user (`user`) or an operator's `users mfa reset` (`operator`).
    SecondFactorsRemoved {
        user_id: &'a str,
        by: &'static str,
    },
    RecoveryCodesGenerated {
        user_id: &'a str,
    },
    MfaRequirementSet {
        user_id: &'a str,
        required: bool,
    },
    PasswordChanged {
        user_id: &'a str,
        by: &'static str,
    },
    /// The user ended one of her sessions (the account page, not yet built).
    #[allow(dead_code)]
    SessionEnded {
        user_id: &'a str,
        sid: &'a str,
    },
    /// The user withdrew a client's consent (the account page, not yet built).
    #[allow(dead_code)]
    ConsentRevoked {
        user_id: &'a str,
        client_id: &'a str,
    },
    PasskeyRegistered {
        user_id: &'a str,
        credential_id: &'a str,
    },
    PasskeyRemoved {
        user_id: &'a str,
        credential_id: &'a str,
    },
    PasskeyUsed {
        user_id: &'a str,
        credential_id: &'a str,
        user_verified: bool,
        ip: Option<IpAddr>,
    },
    /// A passkey ceremony failed: `expired`, `malformed`,
    /// `unknown_credential`, `counter_went_back`, `refused` (wrong origin,
    /// RP id, challenge or signature), `duplicate`, `too_many`, `disabled`.
    PasskeyRefused {
        user_id: Option<&'a str>,
        reason: &'static str,
        ip: Option<IpAddr>,
    },
    /// A client exchanged a token (RFC 8693): `sub` is the subject the new
    /// token is about, `actor` who acts for it, `audience` the API it is for.
    TokenExchanged {
        client_id: &'a str,
        sub: &'a str,
        actor: &'a str,
        audience: &'a str,
    },
    ThrottleEngaged {
        /// `account_ip`, `account`, `device` or `client`.
        scope: &'static str,
        /// Seconds the key is held off for.
        retry_after: i64,
        user_id: Option<&'a str>,
        client_id: Option<&'a str>,
        ip: Option<IpAddr>,
    },
}

#[derive(Serialize)]
struct Line<'a> {
    audit: u8,
    at: i64,
    #[serde(flatten)]
    event: &'a Event<'a>,
}

/// Emits `event`, which happened at `now` (Unix seconds).
pub fn emit(event: &Event<'_>, now: i64) {
    match serde_json::to_string(&Line {
        audit: SCHEMA,
        at: now,
        event,
    }) {
        Ok(line) => tracing::info!(target: "gatehouse::audit", "{line}"),
        Err(e) => tracing::error!(error = %e, "audit event could not be serialized"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_have_the_documented_shape() {
        let line = serde_json::to_value(Line {
            audit: SCHEMA,
            at: 7,
            event: &Event::SignInFailed {
                user_id: None,
                ip: Some("192.0.2.1".parse().unwrap()),
                reason: SignInFailure::UnknownAccount,
                known_device: false,
            },
        })
        .unwrap();
        assert_eq!(
            line,
            serde_json::json!({
                "audit": 1, "at": 7, "event": "sign_in_failed", "user_id": null,
                "ip": "192.0.2.1", "reason": "unknown_account", "known_device": false
            })
        );
    }
}
