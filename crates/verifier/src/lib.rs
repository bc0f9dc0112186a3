//! Checks Gatehouse access tokens inside a resource server (an API).
//!
//! Gatehouse issues access tokens for a registered API as an RFC 9068 JWT
//! (`typ: at+jwt`) signed with Gatehouse's key, then encrypted as a compact
//! JWE (`cty: JWT`, `alg` ECDH-ES+A256KW or RSA-OAEP-256, `enc` A256GCM) to
//! the API's own public key. The token is therefore unreadable to the client
//! that carries it, and only the API can open it.
//!
//! # Design
//!
//! Checking such a token locally is a handful of steps that are each easy to
//! get subtly wrong, so this crate does them in one place, in a fixed order,
//! and fails closed:
//!
//! 1. **Size cap** (16 KiB) before any parsing.
//! 2. **Decrypt** with the API's private JWK only. The JWE header is checked
//!    *before* any crypto: exactly five parts, no `zip` (no decompression of
//!    attacker data), no `crit`, `enc` must be A256GCM, and `alg` must be the
//!    algorithm of the configured key (no algorithm chosen by the token).
//!    Members Gatehouse adds for itself (`gh_ref`) are ignored.
//! 3. **Verify** the nested JWS against Gatehouse's JWKS, fetched from the
//!    issuer (discovered from `/.well-known/openid-configuration`), with a
//!    5 s timeout and a 256 KiB size cap. The header `alg` must be in
//!    [`VerifierConfig::allowed_algs`] (never `none`, never HMAC unless you
//!    ask for it, which you should not), the key is chosen by `kid` from
//!    the JWKS only: headers that carry or point to a key (`jwk`, `jku`,
//!    `x5u`, `x5c`) are refused outright. `typ` must be `at+jwt` (or
//!    `application/at+jwt`), so an ID token cannot be replayed as an access
//!    token.
//! 4. **Claims**: `iss`, `aud` (string, or array containing the audience),
//!    `exp` and `nbf` with a leeway, `iat` present.
//!
//! The JWKS is cached for the `max-age` of its response's `Cache-Control`
//! (10 minutes when there is none; kept within 30 s to 1 h, see
//! [`VerifierConfig::jwks_cache_bounds`]), and fetched again once that
//! lapses, even when every `kid` in use is known: so a key Gatehouse
//! withdraws stops being trusted. If that refresh fails, the keys already
//! known stay in use and the refresh is retried after 30 s. A token with an
//! unknown `kid` (after a key rotation at Gatehouse) triggers a refetch;
//! those are rate-limited to one per 30 s so a flood of forged `kid`s
//! cannot turn the API into a JWKS hammer.
//!
//! # Token status lists (optional)
//!
//! With [`VerifierConfig::check_status_list`], a token that verified is
//! also looked up in the status list its `status` claim names
//! (draft-ietf-oauth-status-list), so a token revoked at Gatehouse is
//! refused before it expires:
//!
//! - the list is fetched only from a URI under the issuer
//!   (`{issuer}/...`): a token never makes the API fetch an arbitrary URL;
//! - it must be a JWS with `typ: statuslist+jwt`, signed with a key of the
//!   issuer's JWKS (ES256, RS256, PS256 or EdDSA), `sub` equal to its URI,
//!   and `exp` (if present) not past;
//! - it is cached per URI for its `ttl` claim or the response's `max-age`,
//!   whichever is shorter, kept within 5 s to 10 min
//!   ([`VerifierConfig::status_list_cache_bounds`]) and never past its
//!   `exp`. If a refresh fails, the cached list is used until its `exp`;
//!   with no usable list the token is refused ([`VerifierError::StatusList`]).
//! - a status of 1 (INVALID) is [`VerifierError::Revoked`]; any other
//!   non-zero status (2 SUSPENDED, or application-specific values) is
//!   [`VerifierError::StatusNotValid`].
//!
//! A token without a `status` claim passes (Gatehouse's reference tokens
//! and tokens issued before the status list existed have none), unless
//! [`VerifierConfig::require_status_claim`] is set.
//!
//! # DPoP-bound tokens (RFC 9449)
//!
//! A token bound to a client's key carries `cnf.jkt` ([`Claims::cnf`]).
//! [`Verifier::verify`] refuses it ([`VerifierError::DpopBound`], RFC 9449
//! 7.2: a bound token is no bearer token). With
//! [`VerifierConfig::dpop_base_url`] set (the API's URL as its clients
//! reach it; never the request's `Host` header), [`Verifier::verify_dpop`]
//! takes the token with the request's one `DPoP` proof, method and path,
//! and checks the proof (RFC 9449 4.3, by the JOSE crate: `typ`, `alg` in
//! [`VerifierConfig::dpop_algs`], its own public `jwk`, signature, `htm`,
//! `htu` = base URL + path, `iat` within
//! [`VerifierConfig::dpop_proof_window`], `ath`), then the token, then that
//! the token is bound to the proof's key, then that the proof was not used
//! before. The replay cache is in memory and bounded
//! ([`VerifierConfig::dpop_replay_cache_capacity`]): expired proofs go
//! first, and when it is full of live ones a new proof is refused
//! ([`VerifierError::DpopReplayCacheFull`]) rather than a live one
//! forgotten, so a flood can delay requests but never let a replay
//! through. Resource-server nonces (RFC 9449 9) are not used.
//!
//! The crate depends on `gatehouse-jose` for all of its JOSE (the
//! structural checks every token gets, shared with the server so a check
//! written once protects both; key parsing, decryption and signature
//! verification), and on none of Gatehouse's server crates (keys, storage,
//! server), so a third-party API can use it alone.
//!
//! ```no_run
//! # async fn demo(token: &str) -> Result<(), gatehouse_verifier::VerifierError> {
//! use gatehouse_verifier::{Verifier, VerifierConfig};
//! let verifier = Verifier::new(VerifierConfig::new(
//!     "https://login.example.com",
//!     "https://api.example.com",
//!     std::fs::read_to_string("api-private.jwk").unwrap_or_default(),
//! ))?;
//! let claims = verifier.verify(token).await?;
//! if claims.has_scope("orders:read") { /* ... */ }
//! # Ok(()) }
//! ```
//!
//! With the default `axum` feature, [`BearerClaims`] is an extractor that does
//! all of this for a handler, under the Bearer and the DPoP schemes.
//!
//! Features: `openssl` (default) decrypts and verifies with josekit on
//! OpenSSL, every algorithm; `rustcrypto` adds a pure-Rust backend, chosen
//! with [`VerifierConfig::backend`] and [`Backend::RustCrypto`]: ES256,
//! RS256/384/512, PS256/384/512 and EdDSA verification (RSA public-key
//! operations only) and ECDH-ES+A256KW/A256GCM decryption. It refuses an
//! RSA decryption key (RSA-OAEP-256 needs OpenSSL) and ES384/ES512 when the
//! verifier is built. Both backends accept every token an honest signer
//! makes, refuse every forgery the tests try, and refuse the same odd
//! issuer keys (even RSA moduli; RSA exponents that are even, below 3 or
//! above 2^33-1; EdDSA small-order points). One difference remains: an
//! EdDSA signature whose R is a small-order point, which only the issuer's
//! key can make, is refused by the pure backend (`verify_strict`) and
//! accepted by OpenSSL.
//! Built with `default-features = false, features = ["rustcrypto"]` (plus
//! `axum` if wanted), nothing links OpenSSL and `Backend::RustCrypto` is the
//! default: for musl targets and cross-compilation.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
pub use gatehouse_jose::Backend;
use gatehouse_jose::{checks, Alg, JoseError, PrivateKey, PublicKey};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

mod config;
mod dpop;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod jwks;
mod replay;
mod status;
mod status_check;
mod token;
pub use config::{NowFn, VerifierConfig};
pub use dpop::{
    Confirmation, DPOP_ALGS, DPOP_PROOF_WINDOW, DPOP_PROOF_WINDOW_MAX, DPOP_REPLAY_CACHE_CAPACITY,
    MAX_DPOP_PROOF_LEN,
};
pub use error::{DpopError, VerifierError};
#[cfg(feature = "axum")]
pub use extract::{BearerClaims, BearerRejection};
use jwks::JwksCache;
pub use status::{StatusList, MAX_STATUS_LIST_BYTES, STATUS_INVALID, STATUS_VALID};

/// Largest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = gatehouse_jose::MAX_TOKEN_LEN;
/// Largest JWKS or discovery document accepted, in bytes.
pub const MAX_DOCUMENT_LEN: usize = 256 * 1024;
/// Timeout for JWKS and discovery fetches.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Minimum time between two JWKS refetches caused by an unknown `kid`.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Age after which the cached JWKS is refreshed (so keys Gatehouse has
/// withdrawn stop being trusted) when its response has no usable
/// `Cache-Control: max-age`.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(600);
/// Default floor and ceiling for the JWKS cache lifetime.
pub const JWKS_CACHE_MIN: Duration = Duration::from_secs(30);
pub const JWKS_CACHE_MAX: Duration = Duration::from_secs(3600);
/// Default floor and ceiling for a status list's cache lifetime.
pub const STATUS_LIST_CACHE_MIN: Duration = Duration::from_secs(5);
pub const STATUS_LIST_CACHE_MAX: Duration = Duration::from_secs(600);
/// Status list cache lifetime when it has neither `ttl` nor `max-age`.
pub const STATUS_LIST_CACHE_DEFAULT: Duration = Duration::from_secs(60);
/// Largest status list JWT accepted, in bytes.
pub const MAX_STATUS_LIST_JWT_LEN: usize = 1024 * 1024;
/// Algorithms accepted on status list tokens.
const STATUS_LIST_ALGS: [Alg; 4] = [Alg::ES256, Alg::RS256, Alg::PS256, Alg::EdDSA];
/// Wait before retrying a first JWKS load that failed.
pub const FAILED_LOAD_RETRY: Duration = Duration::from_secs(5);

/// The claims of a verified access token.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// Subject: the user, or the client itself for client credentials.
    pub sub: String,
    /// The client the token was issued to.
    pub client_id: Option<String>,
    /// Granted scopes.
    pub scope: Vec<String>,
    /// Token identifier.
    pub jti: Option<String>,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// When the user authenticated, if a user was involved.
    pub auth_time: Option<i64>,
    /// The key the token is bound to (`cnf.jkt`, RFC 9449 6.1), for a
    /// DPoP-bound token; `None` for a bearer token.
    pub cnf: Option<Confirmation>,
    /// Every claim, as received.
    pub raw: Map<String, Value>,
}

impl Claims {
    /// Was `scope` granted?
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.iter().any(|s| s == scope)
    }
}

/// Checks Gatehouse access tokens. Cheap to share behind an `Arc`.
pub struct Verifier {
    issuer: String,
    audience: String,
    enc_kid: Option<String>,
    decryption_key: PrivateKey,
    allowed_algs: Vec<Alg>,
    backend: Backend,
    leeway: i64,
    jwks_uri: Option<String>,
    discovered: tokio::sync::OnceCell<String>,
    cache: tokio::sync::RwLock<JwksCache>,
    fetch_lock: tokio::sync::Mutex<()>,
    http: reqwest::Client,
    now: Option<NowFn>,
    jwks_cache_bounds: (Duration, Duration),
    check_status: bool,
    require_status: bool,
    status_cache_bounds: (Duration, Duration),
    status_cache: tokio::sync::RwLock<status::StatusCache>,
    status_fetch_lock: tokio::sync::Mutex<()>,
    dpop: Option<dpop::Dpop>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("enc_alg", &self.decryption_key.alg())
            .field("allowed_algs", &self.allowed_algs)
            .field("dpop_algs", &self.dpop_algs())
            .finish_non_exhaustive()
    }
}

fn config(msg: impl Into<String>) -> VerifierError {
    VerifierError::Config(msg.into())
}

fn decode_json_part(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn str_member<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    m.get(name).and_then(Value::as_str)
}

fn str_member_value<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

fn is_access_token_typ(typ: &str) -> bool {
    let t = typ.to_ascii_lowercase();
    t == "at+jwt" || t == "application/at+jwt"
}

impl Verifier {
    /// Builds a verifier. Checks the configuration and the private key;
    /// does not contact the issuer (the JWKS is fetched on first use).
    pub fn new(mut cfg: VerifierConfig) -> Result<Verifier, VerifierError> {
        // The private JWK text is wiped on every way out of here: only the
        // opened key is kept. (Clones of the configuration are the
        // caller's.)
        let decryption_jwk = Zeroizing::new(std::mem::take(&mut cfg.decryption_jwk));
        if cfg.issuer.is_empty() || cfg.audience.is_empty() {
            return Err(config("issuer and audience are required"));
        }
        if cfg.allowed_algs.is_empty() {
            return Err(config("allowed_algs is empty"));
        }
        let allowed_algs = cfg
            .allowed_algs
            .iter()
            .map(|name| {
                Alg::from_verification_name(name)
                    .ok()
                    .filter(|alg| alg.key_use() == gatehouse_jose::KeyUse::Sig)
                    .ok_or_else(|| config(format!("signing algorithm {name:?} is not supported")))
            })
            .collect::<Result<Vec<Alg>, VerifierError>>()?;
        if cfg.leeway_secs < 0 {
            return Err(config("leeway_secs must not be negative"));
        }
        for (what, (min, max)) in [
            ("jwks_cache_bounds", cfg.jwks_cache_bounds),
            ("status_list_cache_bounds", cfg.status_list_cache_bounds),
        ] {
            if min.is_zero() || min > max {
                return Err(config(format!(
                    "{what}: the floor must be positive and at most the ceiling"
                )));
            }
        }
        if let Some(alg) = allowed_algs.iter().find(|alg| !cfg.backend.verifies(**alg)) {
            return Err(config(format!(
                "signing algorithm {alg} needs the openssl backend"
            )));
        }
        let dpop = dpop::Dpop::from_config(&cfg)?;
        let decryption_key = PrivateKey::from_private_jwk_with(&decryption_jwk, cfg.backend)
            .map_err(|e| config(format!("decryption_jwk: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| config(format!("HTTP client: {e}")))?;
        Ok(Verifier {
            issuer: cfg.issuer,
            audience: cfg.audience,
            enc_kid: Some(decryption_key.kid().to_owned()).filter(|kid| !kid.is_empty()),
            decryption_key,
            allowed_algs,
            backend: cfg.backend,
            leeway: cfg.leeway_secs,
            jwks_uri: cfg.jwks_uri,
            discovered: tokio::sync::OnceCell::new(),
            cache: tokio::sync::RwLock::new(JwksCache::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
            http,
            now: cfg.now,
            jwks_cache_bounds: cfg.jwks_cache_bounds,
            check_status: cfg.check_status_list,
            require_status: cfg.require_status_claim,
            status_cache_bounds: cfg.status_list_cache_bounds,
            status_cache: tokio::sync::RwLock::new(status::StatusCache::default()),
            status_fetch_lock: tokio::sync::Mutex::new(()),
            dpop,
        })
    }

    /// The configured audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn now(&self) -> i64 {
        match &self.now {
            Some(f) => f(),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        }
    }

    /// Decrypts and verifies `token`, presented as a bearer token,
    /// returning its claims. A DPoP-bound token (with `cnf`) is refused
    /// with [`VerifierError::DpopBound`] (RFC 9449 7.2): it must come with
    /// a proof, through [`Verifier::verify_dpop`].
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifierError> {
        let result = self.verify_inner(token).await.and_then(|claims| {
            if claims.cnf.is_some() {
                Err(VerifierError::DpopBound)
            } else {
                Ok(claims)
            }
        });
        if let Err(e) = &result {
            tracing::debug!(error = %e, "access token refused");
        }
        result
    }

    async fn verify_inner(&self, token: &str) -> Result<Claims, VerifierError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(VerifierError::Malformed("token too large"));
        }
        let jws = self.decrypt(token)?;
        let (header, claims) = self
            .verify_signature(&jws, &self.allowed_algs, MAX_TOKEN_LEN)
            .await?;
        let typ = str_member(&header, "typ").ok_or(VerifierError::WrongType)?;
        if !is_access_token_typ(typ) {
            return Err(VerifierError::WrongType);
        }
        let claims = self.check_claims(claims)?;
        if self.check_status {
            self.check_status(&claims.raw).await?;
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_is_case_insensitive() {
        assert!(is_access_token_typ("AT+JWT"));
        assert!(is_access_token_typ("application/at+jwt"));
        assert!(!is_access_token_typ("JWT"));
    }

    #[test]
    fn config_rejects_bad_keys_and_algs() {
        let mut c = VerifierConfig::new("https://i", "https://a", "{}");
        assert!(matches!(
            Verifier::new(c.clone()),
            Err(VerifierError::Config(_))
        ));
        c.decryption_jwk = "not json".into();
        assert!(matches!(
            Verifier::new(c.clone()),
            Err(VerifierError::Config(_))
        ));
        c.allowed_algs = vec!["none".into()];
        assert!(matches!(Verifier::new(c), Err(VerifierError::Config(_))));
    }

    #[test]
    fn errors_do_not_echo_input() {
        let e = VerifierError::Malformed("not a compact JWE");
        assert_eq!(e.to_string(), "malformed token: not a compact JWE");
    }
}
