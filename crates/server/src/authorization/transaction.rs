//! The authorization transaction: a checked request kept server-side (any
//! instance can continue it) while the browser signs in and consents,
//! bound to that browser, living [`TX_LIFETIME`] seconds, and consumed
//! once, by the code it ends with or by the user's refusal.
//!
//! The browser carries only the transaction's id (`tx`); its binding is a
//! random value of its own, in an HttpOnly cookie of its own (one per
//! transaction, so a new transaction never disturbs another one in flight).
//! The store keeps keyed hashes of both, never the values.

use gatehouse_storage::{
    model::{AuthCode, AuthorizationTx, Session, TxLookup, TxSignIn},
    StoreError,
};

use super::AuthorizationRequest;
use crate::{secrets::random_token, state::AppState};

/// How long a transaction may be continued, in seconds.
pub const TX_LIFETIME: i64 = 600;

/// A live transaction, as loaded from the browser it is bound to. Its
/// `Debug` hides the id and the binding value (bearer secrets).
#[derive(Clone)]
pub struct Transaction {
    /// The id the browser presented.
    pub id: String,
    /// The browser binding value the browser presented.
    browser: String,
    pub request: AuthorizationRequest,
    /// The sign-in performed during this transaction, if any.
    pub sign_in: Option<TxSignIn>,
    /// The session (its [`session_key`]) in which the user approved on
    /// the consent page during it, if any.
    consent_session_hash: Option<String>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("id", &"<hidden>")
            .field("browser", &"<hidden>")
            .field("request", &self.request)
            .field("sign_in", &self.sign_in.is_some())
            .field("consented", &self.consent_session_hash.is_some())
            .finish()
    }
}

/// Why a transaction cannot be continued.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    /// Unknown, expired, or bound to another browser: indistinguishable
    /// on purpose.
    #[error("the authorization transaction is unknown or has expired")]
    Unknown,
    /// Already ended (a code was issued, or the user denied).
    #[error("the authorization transaction was already used")]
    Consumed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts a transaction for `request`, with a new id and a new browser
/// binding value ([`Transaction::binding`]) for the browser to keep.
pub async fn begin(
    state: &AppState,
    request: AuthorizationRequest,
) -> Result<Transaction, StoreError> {
    let id = random_token();
    let browser = random_token();
    let now = state.now();
    let json = serde_json::to_string(&request)
        .map_err(|e| StoreError::Corrupt(format!("authorization request: {e}")))?;
    state
        .store
        .create_authorization_tx(&AuthorizationTx {
            id_hash: state.hasher.hash(&id),
            browser_hash: state.hasher.hash(&browser),
            request: json,
            sign_in: None,
            consented_at: None,
            consent_session_hash: None,
            created_at: now,
            expires_at: now + TX_LIFETIME,
            consumed_at: None,
        })
        .await?;
    Ok(Transaction {
        id,
        browser,
        request,
        sign_in: None,
        consent_session_hash: None,
    })
}

/// The live transaction `id` of the browser bound by `browser`.
pub async fn load(state: &AppState, id: &str, browser: &str) -> Result<Transaction, TxError> {
    let found = state
        .store
        .find_authorization_tx(
            &state.hasher.hash(id),
            &state.hasher.hash(browser),
            state.now(),
        )
        .await?;
    let tx = match found {
        TxLookup::Live(tx) => tx,
        TxLookup::Consumed => return Err(TxError::Consumed),
        TxLookup::Unknown => return Err(TxError::Unknown),
    };
    let request = serde_json::from_str(&tx.request)
        .map_err(|e| StoreError::Corrupt(format!("authorization request: {e}")))?;
    Ok(Transaction {
        id: id.to_owned(),
        browser: browser.to_owned(),
        request,
        sign_in: tx.sign_in,
        consent_session_hash: tx.consent_session_hash,
    })
}

impl Transaction {
    /// The browser binding value, for the cookie that carries it.
    pub fn binding(&self) -> &str {
        &self.browser
    }

    /// Records that `session` was started during this transaction.
    pub async fn record_sign_in(&self, state: &AppState, session: &Session) -> Result<(), TxError> {
        let marked = state
            .store
            .mark_authorization_tx_signed_in(
                &state.hasher.hash(&self.id),
                &state.hasher.hash(&self.browser),
                &TxSignIn {
                    session_id_hash: session_key(state, session),
                    auth_time: session.auth_time,
                },
                state.now(),
            )
            .await?;
        if marked {
            Ok(())
        } else {
            Err(TxError::Unknown)
        }
    }

    /// Records that the user of `session` approved on the consent page.
    pub async fn record_consent(&self, state: &AppState, session: &Session) -> Result<(), TxError> {
        let marked = state
            .store
            .mark_authorization_tx_consented(
                &state.hasher.hash(&self.id),
                &state.hasher.hash(&self.browser),
                &session_key(state, session),
                state.now(),
            )
            .await?;
        if marked {
            Ok(())
        } else {
            Err(TxError::Unknown)
        }
    }

    /// Whether `session` is the one started during this transaction.
    pub fn signed_in_with(&self, state: &AppState, session: &Session) -> bool {
        self.sign_in.as_ref().is_some_and(|s| {
            s.session_id_hash == session_key(state, session) && s.auth_time == session.auth_time
        })
    }

    /// Whether the approval on the consent page during this transaction
    /// was given in `session` (so by its user, not by someone who signed
    /// in on this browser before).
    pub fn consented_in(&self, state: &AppState, session: &Session) -> bool {
        self.consent_session_hash
            .as_deref()
            .is_some_and(|h| h == session_key(state, session))
    }

    /// Ends the transaction, storing `code` with it: `Consumed` when it had
    /// already ended (another tab, a replay), `Unknown` when it expired.
    pub async fn consume(&self, state: &AppState, code: Option<&AuthCode>) -> Result<(), TxError> {
        let (id_hash, browser_hash) = self.hashes(state);
        if state
            .store
            .consume_authorization_tx(&id_hash, &browser_hash, state.now(), code)
            .await?
        {
            return Ok(());
        }
        Err(self.why_lost(state).await)
    }

    /// The keyed hashes of the id and the browser binding, as stored.
    pub fn hashes(&self, state: &AppState) -> (String, String) {
        (
            state.hasher.hash(&self.id),
            state.hasher.hash(&self.browser),
        )
    }

    /// Why a consuming write that changed nothing lost: tells a finished
    /// transaction from an expired one.
    pub async fn why_lost(&self, state: &AppState) -> TxError {
        let (id_hash, browser_hash) = self.hashes(state);
        match state
            .store
            .find_authorization_tx(&id_hash, &browser_hash, state.now())
            .await
        {
            Ok(found) => lost(found),
            Err(e) => TxError::Store(e),
        }
    }
}

/// What a transaction records of a session: the keyed hash of its public
/// id (`sid`), which, unlike its cookie's id, stays the same when a
/// step-up renews the cookie.
fn session_key(state: &AppState, session: &Session) -> String {
    state.hasher.hash(&format!("session:{}", session.sid))
}

/// Why a consuming write that changed nothing lost, from what the
/// transaction looks like right after: ended, or expired (unknown).
fn lost(found: TxLookup) -> TxError {
    match found {
        TxLookup::Consumed => TxError::Consumed,
        TxLookup::Live(_) | TxLookup::Unknown => TxError::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_consume_tells_expiry_from_completion() {
        assert!(matches!(lost(TxLookup::Consumed), TxError::Consumed));
        // Expired (or never this browser's): not "already completed".
        assert!(matches!(lost(TxLookup::Unknown), TxError::Unknown));
    }
}
