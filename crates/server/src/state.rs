//! The application state every handler receives: one `Arc`, so the clone
//! each extractor and middleware makes is one reference-count bump.

use std::sync::Arc;

use gatehouse_keys::{Clock, KeyRing, SecretHasher, SecretSealer, TotpSealer};
use gatehouse_storage::Store;

use crate::{config::Settings, discovery::Discovery, registry::Registry};

/// Shared by every request; derefs to [`Shared`].
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every request shares.
#[derive(Debug)]
pub struct Shared {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub keys: Arc<KeyRing>,
    pub registry: Arc<Registry>,
    pub hasher: SecretHasher,
    /// Seals and checks the secrets of client_secret_jwt clients.
    pub sealer: SecretSealer,
    /// Generates, seals and checks users' TOTP secrets.
    pub totp: TotpSealer,
    /// The WebAuthn relying party (none for an IP-literal issuer).
    pub passkeys: Arc<crate::passkeys::Passkeys>,
    pub clock: Arc<dyn Clock>,
    pub discovery: Arc<Discovery>,
    /// Outbound HTTP to client-supplied URLs (jwks_uri, back-channel
    /// logout), guarded against internal targets: [`crate::outbound`].
    pub http: Arc<crate::outbound::Outbound>,
    /// Signs and checks device cookies (a subkey of the key-encryption key).
    pub device_keys: SecretHasher,
    /// The DPoP server nonces (a subkey of the key-encryption key).
    pub dpop_nonces: crate::dpop::Nonces,
    /// Failure counters for logins and client authentication.
    pub throttle: Arc<crate::throttle::Throttle>,
    /// Set when shutdown begins: `/readyz` fails first, so load balancers
    /// stop sending traffic before the listener closes.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Prometheus instruments.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// This instance's reserved status-list indices and built lists.
    pub status_lists: Arc<crate::token_status::StatusLists>,
    /// Issues, reads back and revokes tokens.
    pub tokens: Arc<crate::tokens::TokenIssuer>,
    /// Inactive introspection answers per calling client and minute.
    pub introspection_misses: Arc<crate::rate::RateWindow>,
    /// Authorization transactions started per client IP and minute.
    pub authorization_starts: Arc<crate::rate::RateWindow>,
    /// Device authorizations started per client, wrong user codes per IP
    /// and per browser (RFC 8628 5.1, 5.2).
    pub device_limits: Arc<crate::authorization::device::Limits>,
    /// One-time values recorded in memory while the database is away.
    pub replay: Arc<crate::replay::ReplayCache>,
    /// The last reads of revocation state and users (outages).
    pub recent_reads: Arc<crate::recent_reads::RecentReads>,
    /// The page templates and stylesheet, built in or the operator's.
    pub views: Arc<crate::views::Views>,
}

impl Shared {
    /// Now, in Unix seconds, from the injected clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
