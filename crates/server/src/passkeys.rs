//! Passkeys (WebAuthn L2/L3) apart from HTTP, with webauthn-rs: registering
//! one (a discoverable credential with user verification), using one as
//! the second factor of a known user, and signing in with one and no
//! username (discoverable credentials).
//!
//! A ceremony's state (the challenge and what it allows) is serialised into
//! the database (webauthn-rs's `danger-allow-state-serialisation`), so any
//! instance finishes a ceremony another began; it is taken once and lives
//! five minutes. The relying party id is the issuer's host name: WebAuthn
//! refuses IP addresses, so an IP-literal issuer has no passkeys.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use gatehouse_protocol::{Acr, Amr};
use gatehouse_storage::{
    model::{Ceremony, PasskeyRecord, Session, User},
    StoreError,
};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder, WebauthnError,
};

use crate::{secrets::random_token, state::AppState};

/// Seconds a ceremony may take.
pub const CEREMONY_LIFETIME: i64 = 300;
/// Passkeys a user may have.
pub const MAX_PASSKEYS: usize = 20;

/// Why a passkey ceremony failed. Each is shown as a page, never a 500.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("passkeys need an issuer with a host name (not an IP address)")]
    Disabled,
    #[error("the passkey request has expired or was already used")]
    Expired,
    #[error("the browser's answer is not a WebAuthn credential")]
    Malformed,
    #[error("this passkey is not registered here")]
    UnknownCredential,
    #[error("the passkey's signature counter went backwards (a cloned authenticator?)")]
    CounterWentBack,
    /// The detail (webauthn-rs's words) goes to the log, not the page.
    #[error("the passkey was not accepted")]
    Refused(String),
    #[error("this passkey is already registered")]
    Duplicate,
    #[error("at most 20 passkeys per account")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<WebauthnError> for PasskeyError {
    fn from(e: WebauthnError) -> Self {
        match e {
            WebauthnError::CredentialPossibleCompromise => PasskeyError::CounterWentBack,
            other => PasskeyError::Refused(other.to_string()),
        }
    }
}

/// The kinds of ceremony, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Register,
    Authenticate,
    Discover,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Register => "register",
            Kind::Authenticate => "authenticate",
            Kind::Discover => "discover",
        }
    }
}

/// A ceremony begun: its id (for the form) and the options for the
/// browser (`publicKey` JSON for `PublicKeyCredential.parse*OptionsFromJSON`).
#[derive(Debug)]
pub struct Begun {
    pub ceremony: String,
    pub options: String,
}

/// What a passkey use established.
#[derive(Clone, Debug)]
pub struct Used {
    pub credential_id: String,
    pub user_verified: bool,
}

impl Used {
    /// The `amr` values of this use (RFC 8176): `swk` (attestation is not
    /// verified, so never `hwk`), `user` with user verification.
    pub fn amr(&self) -> Vec<Amr> {
        let mut v = vec![Amr::Swk];
        if self.user_verified {
            v.push(Amr::User);
        }
        v
    }

    /// The level it reaches: phishing-resistant with user verification.
    pub fn level(&self) -> Acr {
        if self.user_verified {
            Acr::Phr
        } else {
            Acr::Mfa
        }
    }
}

/// The relying party: `None` when the issuer's host is an IP address.
#[derive(Debug)]
pub struct Passkeys {
    webauthn: Option<Webauthn>,
}

/// The WebAuthn user handle of a user: her id when it is a UUID (as
/// `users create` makes them), else 16 bytes of its SHA-256.
pub fn user_handle(user_id: &str) -> Uuid {
    Uuid::parse_str(user_id).unwrap_or_else(|_| {
        let d = Sha256::digest(user_id.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        Uuid::from_bytes(b)
    })
}

fn parse_passkey(r: &PasskeyRecord) -> Result<Passkey, PasskeyError> {
    serde_json::from_str(&r.credential)
        .map_err(|e| PasskeyError::Internal(format!("a stored passkey cannot be read: {e}")))
}

fn cred_id_text(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(v).map_err(|e| PasskeyError::Internal(e.to_string()))
}

/// The counter and flags stored inside a serialised passkey.
fn flags(credential: &str) -> (i64, bool, bool) {
    let v: serde_json::Value = serde_json::from_str(credential).unwrap_or_default();
    let c = &v["cred"];
    (
        c["counter"].as_i64().unwrap_or(0),
        c["backup_eligible"].as_bool().unwrap_or(false),
        c["backup_state"].as_bool().unwrap_or(false),
    )
}

impl Passkeys {
    /// The relying party of `issuer`: its host is the RP id, its origin the
    /// only origin allowed.
    pub fn new(issuer: &str, name: &str) -> Result<Passkeys, String> {
        let url = Url::parse(issuer).map_err(|e| format!("issuer: {e}"))?;
        let Some(url::Host::Domain(host)) = url.host() else {
            return Ok(Passkeys { webauthn: None });
        };
        let host = host.to_owned();
        let origin = Url::parse(&url.origin().ascii_serialization())
            .map_err(|e| format!("issuer origin: {e}"))?;
        let webauthn = WebauthnBuilder::new(&host, &origin)
            .and_then(|b| b.rp_name(name).build())
            .map_err(|e| format!("WebAuthn relying party {host}: {e}"))?;
        Ok(Passkeys {
            webauthn: Some(webauthn),
        })
    }

    pub fn enabled(&self) -> bool {
        self.webauthn.is_some()
    }

    fn rp(&self) -> Result<&Webauthn, PasskeyError> {
        self.webauthn.as_ref().ok_or(PasskeyError::Disabled)
    }

    async fn store_ceremony(
        state: &AppState,
        kind: Kind,
        signed_in: Option<(&Session, &User)>,
        ceremony_state: String,
        options: String,
    ) -> Result<Begun, PasskeyError> {
        let id = random_token();
        let now = state.now();
        let c = Ceremony {
            kind: kind.as_str().to_owned(),
            user_id: signed_in.map(|(_, u)| u.id.clone()),
            state: ceremony_state,
            session_hash: signed_in.map(|(s, _)| s.id_hash.clone()),
        };
        state
            .store
            .put_ceremony(&state.hasher.hash(&id), &c, now, now + CEREMONY_LIFETIME)
            .await?;
        Ok(Begun {
            ceremony: id,
            options,
        })
    }

    async fn take(state: &AppState, id: &str, kind: Kind) -> Result<Ceremony, PasskeyError> {
        if id.is_empty() || id.len() > 128 {
            return Err(PasskeyError::Expired);
        }
        state
            .store
            .take_ceremony(&state.hasher.hash(id), kind.as_str(), state.now())
            .await?
            .ok_or(PasskeyError::Expired)
    }

    /// Takes a ceremony of a signed-in user: only the session that began
    /// it may finish it.
    async fn take_own(
        state: &AppState,
        id: &str,
        kind: Kind,
        session: &Session,
        user: &User,
    ) -> Result<Ceremony, PasskeyError> {
        let c = Self::take(state, id, kind).await?;
        if c.user_id.as_ref() != Some(&user.id)
            || c.session_hash.as_deref() != Some(session.id_hash.as_str())
        {
            return Err(PasskeyError::Expired);
        }
        Ok(c)
    }

    /// Begins registering a passkey for `user`: a discoverable credential
    /// (`residentKey: required`) with user verification, excluding the
    /// ones she has.
    pub async fn begin_registration(
        &self,
        state: &AppState,
        session: &Session,
        user: &User,
    ) -> Result<Begun, PasskeyError> {
        let rp = self.rp()?;
        let existing = state.store.passkeys_of_user(&user.id).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(PasskeyError::TooMany);
        }
        let exclude = existing
            .iter()
            .map(parse_passkey)
            .map(|p| p.map(|p| p.cred_id().clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let display = user.name.as_deref().unwrap_or(&user.username);
        let (ccr, reg) = rp.start_passkey_registration(
            user_handle(&user.id),
            &user.username,
            display,
            Some(exclude),
        )?;
        // A passkey is a discoverable credential: ask for one outright
        // (webauthn-rs leaves it to the authenticator).
        let mut options = serde_json::to_value(&ccr.public_key)
            .map_err(|e| PasskeyError::Internal(e.to_string()))?;
        options["authenticatorSelection"]["residentKey"] = "required".into();
        options["authenticatorSelection"]["requireResidentKey"] = true.into();
        let options = options.to_string();
        let signed_in = Some((session, user));
        Self::store_ceremony(state, Kind::Register, signed_in, to_json(&reg)?, options).await
    }

    /// Finishes a registration `user` began, naming the passkey `name`.
    pub async fn finish_registration(
        &self,
        state: &AppState,
        session: &Session,
        user: &User,
        ceremony: &str,
        credential: &str,
        name: &str,
    ) -> Result<PasskeyRecord, PasskeyError> {
        let rp = self.rp()?;
        let c = Self::take_own(state, ceremony, Kind::Register, session, user).await?;
        // Checked again: ceremonies begun in several tabs could pass the cap.
        if state.store.passkeys_of_user(&user.id).await?.len() >= MAX_PASSKEYS {
            return Err(PasskeyError::TooMany);
        }
        let reg: PasskeyRegistration = serde_json::from_str(&c.state)
            .map_err(|e| PasskeyError::Internal(format!("ceremony state: {e}")))?;
        let answer: RegisterPublicKeyCredential =
            serde_json::from_str(credential).map_err(|_| PasskeyError::Malformed)?;
        let passkey = rp.finish_passkey_registration(&answer, &reg)?;
        let serialised = to_json(&passkey)?;
        let (counter, backup_eligible, backup_state) = flags(&serialised);
        let name: String = name
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        let now = state.now();
        let record = PasskeyRecord {
            credential_id: cred_id_text(passkey.cred_id()),
            user_id: user.id.clone(),
            name: if name.is_empty() {
                "Passkey".to_owned()
            } else {
                name
            },
            credential: serialised,
            created_at: now,
            last_used_at: None,
            counter,
            backup_eligible,
            backup_state,
        };
        state
            .store
            .create_passkey(&record)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => PasskeyError::Duplicate,
                other => other.into(),
            })?;
        Ok(record)
    }

    /// Begins using one of `user`'s passkeys as her second factor; `None`
    /// when she has none.
    pub async fn begin_authentication(
        &self,
        state: &AppState,
        session: &Session,
        user: &User,
    ) -> Result<Option<Begun>, PasskeyError> {
        let rp = self.rp()?;
        let keys = state.store.passkeys_of_user(&user.id).await?;
        if keys.is_empty() {
            return Ok(None);
        }
        let keys = keys
            .iter()
            .map(parse_passkey)
            .collect::<Result<Vec<_>, _>>()?;
        let (rcr, auth) = rp.start_passkey_authentication(&keys)?;
        let options = to_json(&rcr.public_key)?;
        Self::store_ceremony(
            state,
            Kind::Authenticate,
            Some((session, user)),
            to_json(&auth)?,
            options,
        )
        .await
        .map(Some)
    }

    /// Finishes a second-factor use by `user`.
    pub async fn finish_authentication(
        &self,
        state: &AppState,
        session: &Session,
        user: &User,
        ceremony: &str,
        credential: &str,
    ) -> Result<Used, PasskeyError> {
        let rp = self.rp()?;
        let c = Self::take_own(state, ceremony, Kind::Authenticate, session, user).await?;
        let auth: PasskeyAuthentication = serde_json::from_str(&c.state)
            .map_err(|e| PasskeyError::Internal(format!("ceremony state: {e}")))?;
        let answer: PublicKeyCredential =
            serde_json::from_str(credential).map_err(|_| PasskeyError::Malformed)?;
        let id = cred_id_text(answer.get_credential_id());
        let record = state
            .store
            .passkey(&id)
            .await?
            .filter(|r| r.user_id == user.id)
            .ok_or(PasskeyError::UnknownCredential)?;
        let result = rp.finish_passkey_authentication(&answer, &auth)?;
        record_use(state, &record, &result).await
    }

    /// Begins a sign-in with no username: any discoverable passkey of ours.
    pub async fn begin_discovery(&self, state: &AppState) -> Result<Begun, PasskeyError> {
        let rp = self.rp()?;
        let (mut rcr, auth) = rp.start_discoverable_authentication()?;
        // A button starts it (modal), not autofill.
        rcr.mediation = None;
        let options = to_json(&rcr.public_key)?;
        Self::store_ceremony(state, Kind::Discover, None, to_json(&auth)?, options).await
    }

    /// Finishes a sign-in with no username: who it is, and the use.
    pub async fn finish_discovery(
        &self,
        state: &AppState,
        ceremony: &str,
        credential: &str,
    ) -> Result<(User, Used), PasskeyError> {
        let rp = self.rp()?;
        let c = Self::take(state, ceremony, Kind::Discover).await?;
        let auth: DiscoverableAuthentication = serde_json::from_str(&c.state)
            .map_err(|e| PasskeyError::Internal(format!("ceremony state: {e}")))?;
        let answer: PublicKeyCredential =
            serde_json::from_str(credential).map_err(|_| PasskeyError::Malformed)?;
        let (handle, cred_id) = rp
            .identify_discoverable_authentication(&answer)
            .map_err(|_| PasskeyError::UnknownCredential)?;
        let record = state
            .store
            .passkey(&cred_id_text(cred_id))
            .await?
            .ok_or(PasskeyError::UnknownCredential)?;
        if user_handle(&record.user_id) != handle {
            return Err(PasskeyError::UnknownCredential);
        }
        let user = state
            .store
            .user_by_id(&record.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(PasskeyError::UnknownCredential)?;
        let passkey = parse_passkey(&record)?;
        let key = DiscoverableKey::from(&passkey);
        let result = rp.finish_discoverable_authentication(&answer, auth, &[key])?;
        let used = record_use(state, &record, &result).await?;
        Ok((user, used))
    }
}

/// Stores the counter and flags a use moved.
async fn record_use(
    state: &AppState,
    record: &PasskeyRecord,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<Used, PasskeyError> {
    let mut passkey = parse_passkey(record)?;
    passkey.update_credential(result);
    let serialised = to_json(&passkey)?;
    let (counter, _, backup_state) = flags(&serialised);
    state
        .store
        .record_passkey_use(
            &record.credential_id,
            &serialised,
            counter,
            backup_state,
            state.now(),
        )
        .await?;
    Ok(Used {
        credential_id: record.credential_id.clone(),
        user_verified: result.user_verified(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_ip_literal_issuer_has_no_passkeys() {
        assert!(!Passkeys::new("http://127.0.0.1:8080", "x")
            .unwrap()
            .enabled());
        assert!(!Passkeys::new("http://[::1]:8080", "x").unwrap().enabled());
        assert!(Passkeys::new("http://localhost:8080", "x")
            .unwrap()
            .enabled());
        assert!(Passkeys::new("https://id.example.com", "x")
            .unwrap()
            .enabled());
    }

    #[test]
    fn a_refusal_does_not_show_its_detail() {
        let e = PasskeyError::Refused("origin https://evil.example mismatch".into());
        assert_eq!(e.to_string(), "the passkey was not accepted");
    }

    #[test]
    fn flags_are_read_from_a_serialised_passkey() {
        let json = r#"{"cred":{"counter":7,"backup_eligible":true,"backup_state":false}}"#;
        assert_eq!(flags(json), (7, true, false));
        // Anything unreadable is a fresh, non-backed-up key, never a panic.
        assert_eq!(flags("not json"), (0, false, false));
        assert_eq!(flags(r#"{"cred":{}}"#), (0, false, false));
    }

    #[test]
    fn user_handles_are_stable_and_distinct() {
        let id = "0b8f7f7e-8d55-4a4f-9d2f-3f1d2b3c4d5e";
        assert_eq!(user_handle(id).to_string(), id);
        assert_eq!(user_handle("alice"), user_handle("alice"));
        assert_ne!(user_handle("alice"), user_handle("bob"));
    }
}
