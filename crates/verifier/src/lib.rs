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
//! The crate deliberately depends only on `josekit` for cryptography and not
//! on Gatehouse's server crates, so a third-party API can use it alone.
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
//! all of this for a handler.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use josekit::jwe::{self, JweDecrypter};
use josekit::jwk::Jwk;
use josekit::jws::{self, JwsVerifier};
use serde_json::{Map, Value};

#[cfg(feature = "axum")]
mod extract;
mod status;
#[cfg(feature = "axum")]
pub use extract::{BearerClaims, BearerRejection};
pub use status::{StatusList, MAX_STATUS_LIST_BYTES, STATUS_INVALID, STATUS_VALID};

/// Largest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
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
const STATUS_LIST_ALGS: [&str; 4] = ["ES256", "RS256", "PS256", "EdDSA"];
/// Wait before retrying a first JWKS load that failed.
pub const FAILED_LOAD_RETRY: Duration = Duration::from_secs(5);

/// JWS header members that carry or point to a key; always refused.
const KEY_CARRYING_HEADERS: [&str; 5] = ["jwk", "jku", "x5u", "x5c", "crit"];
const ECDH_ES_A256KW: &str = "ECDH-ES+A256KW";
const RSA_OAEP_256: &str = "RSA-OAEP-256";
/// Length of an AES-256 key wrapped with A256KW.
const A256KW_WRAPPED_LEN: usize = 40;

/// Why a token (or the configuration) was refused. `Display` never includes
/// the token itself.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VerifierError {
    /// Not a well-formed token (size, structure, encoding, header members).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The JWE could not be decrypted with the API's key.
    #[error("token could not be decrypted: {0}")]
    Decrypt(&'static str),
    /// The nested JWS signature is invalid or its algorithm is not allowed.
    #[error("invalid token signature: {0}")]
    Signature(&'static str),
    /// The JWS `kid` is not in the issuer's JWKS (even after a refetch).
    #[error("token signed with an unknown key")]
    UnknownKey,
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("token from the wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("token for another audience")]
    WrongAudience,
    /// The JWS `typ` is not `at+jwt` (e.g. an ID token).
    #[error("not an access token (typ)")]
    WrongType,
    /// The JWKS (or discovery document) could not be fetched or parsed.
    #[error("JWKS unavailable: {0}")]
    Jwks(String),
    /// The token's status list says it is revoked (status INVALID).
    #[error("token revoked")]
    Revoked,
    /// The token's status list gives another non-valid status (2 is
    /// SUSPENDED; others are application-specific).
    #[error("token status is not valid ({0})")]
    StatusNotValid(u8),
    /// The status check could not be done: the token's status claim is
    /// malformed or names a list outside the issuer, or the list could not
    /// be fetched, verified or read. The token is refused (fail closed).
    #[error("token status unavailable: {0}")]
    StatusList(&'static str),
    /// The verifier's configuration is invalid.
    #[error("invalid verifier configuration: {0}")]
    Config(String),
}

/// A source of the current time in Unix seconds (for tests).
pub type NowFn = Arc<dyn Fn() -> i64 + Send + Sync>;

/// How to check tokens.
#[derive(Clone)]
pub struct VerifierConfig {
    /// Gatehouse's issuer URL, exactly as in the `iss` claim.
    pub issuer: String,
    /// This API's audience, as registered at Gatehouse.
    pub audience: String,
    /// The API's private JWK (JSON), EC P-256 for ECDH-ES+A256KW or RSA for
    /// RSA-OAEP-256. Its `alg`, when present, must be one of those.
    pub decryption_jwk: String,
    /// JWS algorithms accepted for the nested token (default `["ES256"]`).
    pub allowed_algs: Vec<String>,
    /// Clock skew tolerated for `exp` and `nbf`, in seconds (default 60).
    pub leeway_secs: i64,
    /// Gatehouse's JWKS URL. `None`: discovered from
    /// `{issuer}/.well-known/openid-configuration`, falling back to
    /// `{issuer}/jwks`.
    pub jwks_uri: Option<String>,
    /// Current time source; `None` is the system clock. For tests.
    pub now: Option<NowFn>,
    /// Floor and ceiling for how long the JWKS is cached, whatever its
    /// `Cache-Control: max-age` says (default 30 s and 1 h).
    pub jwks_cache_bounds: (Duration, Duration),
    /// Check each token against the status list its `status` claim names
    /// (default off). See the crate documentation.
    pub check_status_list: bool,
    /// With `check_status_list`: refuse tokens without a `status` claim
    /// (default off: they pass).
    pub require_status_claim: bool,
    /// Floor and ceiling for how long a status list is cached, whatever
    /// its `ttl` and `max-age` say (default 5 s and 10 min).
    pub status_list_cache_bounds: (Duration, Duration),
}

impl VerifierConfig {
    /// Turns the token status list check on or off.
    pub fn check_status_list(mut self, on: bool) -> Self {
        self.check_status_list = on;
        self
    }

    /// With the status list check on, refuse tokens that have no `status`
    /// claim instead of letting them pass.
    pub fn require_status_claim(mut self, on: bool) -> Self {
        self.require_status_claim = on;
        self
    }

    /// Sets the floor and ceiling of a status list's cache lifetime (the
    /// ceiling is how long a revocation can go unnoticed).
    pub fn status_list_cache_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.status_list_cache_bounds = (min, max);
        self
    }

    /// Sets the floor and ceiling of the JWKS cache lifetime.
    pub fn jwks_cache_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.jwks_cache_bounds = (min, max);
        self
    }

    /// Sets the JWKS URL instead of discovering it.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// A configuration with the defaults (ES256, 60 s leeway, discovery).
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        decryption_jwk: impl Into<String>,
    ) -> Self {
        VerifierConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            decryption_jwk: decryption_jwk.into(),
            allowed_algs: vec!["ES256".into()],
            leeway_secs: 60,
            jwks_uri: None,
            now: None,
            jwks_cache_bounds: (JWKS_CACHE_MIN, JWKS_CACHE_MAX),
            check_status_list: false,
            require_status_claim: false,
            status_list_cache_bounds: (STATUS_LIST_CACHE_MIN, STATUS_LIST_CACHE_MAX),
        }
    }
}

impl fmt::Debug for VerifierConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("decryption_jwk", &"<redacted>")
            .field("allowed_algs", &self.allowed_algs)
            .field("leeway_secs", &self.leeway_secs)
            .field("jwks_uri", &self.jwks_uri)
            .field("jwks_cache_bounds", &self.jwks_cache_bounds)
            .field("check_status_list", &self.check_status_list)
            .field("require_status_claim", &self.require_status_claim)
            .field("status_list_cache_bounds", &self.status_list_cache_bounds)
            .finish_non_exhaustive()
    }
}

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
    /// Every claim, as received.
    pub raw: Map<String, Value>,
}

impl Claims {
    /// Was `scope` granted?
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.iter().any(|s| s == scope)
    }
}

#[derive(Default)]
struct JwksCache {
    keys: HashMap<String, Jwk>,
    /// Last successful fetch.
    fetched_at: Option<Instant>,
    /// How long that fetch stays fresh (its max-age, within the bounds).
    max_age: Duration,
    /// Last refetch after the first load (rate limit).
    last_refetch: Option<Instant>,
    /// Last failed fetch.
    last_failure: Option<Instant>,
}

impl JwksCache {
    fn is_fresh(&self) -> bool {
        self.fetched_at.is_some_and(|t| t.elapsed() < self.max_age)
    }
}

/// Checks Gatehouse access tokens. Cheap to share behind an `Arc`.
pub struct Verifier {
    issuer: String,
    audience: String,
    enc_alg: &'static str,
    enc_kid: Option<String>,
    decrypter: Box<dyn JweDecrypter>,
    allowed_algs: Vec<String>,
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
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("enc_alg", &self.enc_alg)
            .field("allowed_algs", &self.allowed_algs)
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

fn is_access_token_typ(typ: &str) -> bool {
    let t = typ.to_ascii_lowercase();
    t == "at+jwt" || t == "application/at+jwt"
}

/// A JWS verifier for `alg` from a public JWK.
fn jws_verifier(alg: &str, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, josekit::JoseError> {
    Ok(match alg {
        "ES256" => Box::new(jws::ES256.verifier_from_jwk(jwk)?),
        "ES384" => Box::new(jws::ES384.verifier_from_jwk(jwk)?),
        "ES512" => Box::new(jws::ES512.verifier_from_jwk(jwk)?),
        "RS256" => Box::new(jws::RS256.verifier_from_jwk(jwk)?),
        "RS384" => Box::new(jws::RS384.verifier_from_jwk(jwk)?),
        "RS512" => Box::new(jws::RS512.verifier_from_jwk(jwk)?),
        "PS256" => Box::new(jws::PS256.verifier_from_jwk(jwk)?),
        "PS384" => Box::new(jws::PS384.verifier_from_jwk(jwk)?),
        "PS512" => Box::new(jws::PS512.verifier_from_jwk(jwk)?),
        "EdDSA" => Box::new(jws::EdDSA.verifier_from_jwk(jwk)?),
        _ => {
            return Err(josekit::JoseError::UnsupportedSignatureAlgorithm(
                std::io::Error::other("unsupported algorithm").into(),
            ))
        }
    })
}

const SUPPORTED_SIGNING_ALGS: [&str; 10] = [
    "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
];

impl Verifier {
    /// Builds a verifier. Checks the configuration and the private key;
    /// does not contact the issuer (the JWKS is fetched on first use).
    pub fn new(cfg: VerifierConfig) -> Result<Verifier, VerifierError> {
        if cfg.issuer.is_empty() || cfg.audience.is_empty() {
            return Err(config("issuer and audience are required"));
        }
        if cfg.allowed_algs.is_empty() {
            return Err(config("allowed_algs is empty"));
        }
        for alg in &cfg.allowed_algs {
            if !SUPPORTED_SIGNING_ALGS.contains(&alg.as_str()) {
                return Err(config(format!(
                    "signing algorithm {alg:?} is not supported"
                )));
            }
        }
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
        let jwk = Jwk::from_bytes(cfg.decryption_jwk.as_bytes())
            .map_err(|_| config("decryption_jwk is not a JWK"))?;
        let enc_alg = match (jwk.key_type(), jwk.algorithm()) {
            ("EC", None | Some(ECDH_ES_A256KW)) => ECDH_ES_A256KW,
            ("RSA", None | Some(RSA_OAEP_256)) => RSA_OAEP_256,
            _ => {
                return Err(config(
                    "decryption_jwk must be an EC key for ECDH-ES+A256KW or an RSA key for RSA-OAEP-256",
                ))
            }
        };
        let decrypter: Box<dyn JweDecrypter> = if enc_alg == ECDH_ES_A256KW {
            Box::new(
                jwe::ECDH_ES_A256KW
                    .decrypter_from_jwk(&jwk)
                    .map_err(|_| config("decryption_jwk is not a usable private EC key"))?,
            )
        } else {
            Box::new(
                jwe::RSA_OAEP_256
                    .decrypter_from_jwk(&jwk)
                    .map_err(|_| config("decryption_jwk is not a usable private RSA key"))?,
            )
        };
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| config(format!("HTTP client: {e}")))?;
        Ok(Verifier {
            issuer: cfg.issuer,
            audience: cfg.audience,
            enc_alg,
            enc_kid: jwk.key_id().map(str::to_owned),
            decrypter,
            allowed_algs: cfg.allowed_algs,
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

    /// Decrypts and verifies `token`, returning its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifierError> {
        let result = self.verify_inner(token).await;
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
        let (header, claims) = self.verify_signature(&jws, &self.allowed_algs).await?;
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

    /// Step 2: the outer JWE.
    fn decrypt(&self, token: &str) -> Result<String, VerifierError> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, key_b64, ..] = parts[..] else {
            return Err(VerifierError::Malformed("not a compact JWE"));
        };
        if parts.len() != 5 {
            return Err(VerifierError::Malformed("not a compact JWE"));
        }
        let header =
            decode_json_part(header_b64).ok_or(VerifierError::Malformed("malformed JWE header"))?;
        if header.contains_key("zip") {
            return Err(VerifierError::Malformed("compressed JWE is not accepted"));
        }
        if header.contains_key("crit") {
            return Err(VerifierError::Malformed("critical header members"));
        }
        if str_member(&header, "enc") != Some("A256GCM") {
            return Err(VerifierError::Decrypt("content encryption must be A256GCM"));
        }
        if str_member(&header, "alg") != Some(self.enc_alg) {
            return Err(VerifierError::Decrypt(
                "key management algorithm does not match the key",
            ));
        }
        if let (Some(want), Some(got)) = (&self.enc_kid, header.get("kid")) {
            if got.as_str() != Some(want.as_str()) {
                return Err(VerifierError::Decrypt("encrypted to another key"));
            }
        }
        if let Some(cty) = header.get("cty") {
            if !cty.as_str().is_some_and(|c| c.eq_ignore_ascii_case("JWT")) {
                return Err(VerifierError::Malformed("JWE content is not a JWT"));
            }
        }
        let wrapped = URL_SAFE_NO_PAD
            .decode(key_b64)
            .map_err(|_| VerifierError::Malformed("malformed JWE"))?;
        let wrapped_ok = if self.enc_alg == ECDH_ES_A256KW {
            wrapped.len() == A256KW_WRAPPED_LEN
        } else {
            !wrapped.is_empty() && wrapped.len() <= 1024
        };
        if !wrapped_ok {
            return Err(VerifierError::Malformed("malformed JWE encrypted key"));
        }
        let (payload, _) = jwe::deserialize_compact(token, self.decrypter.as_ref())
            .map_err(|_| VerifierError::Decrypt("decryption failed"))?;
        String::from_utf8(payload).map_err(|_| VerifierError::Malformed("JWE payload is not text"))
    }

    /// Step 3: the nested JWS (also used for status list tokens, with
    /// their own algorithm allow-list).
    async fn verify_signature(
        &self,
        jws: &str,
        allowed_algs: &[impl AsRef<str>],
    ) -> Result<(Map<String, Value>, Map<String, Value>), VerifierError> {
        let mut parts = jws.split('.');
        let (Some(header_b64), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifierError::Malformed(
                "nested token is not a compact JWS",
            ));
        };
        let header =
            decode_json_part(header_b64).ok_or(VerifierError::Malformed("malformed JWS header"))?;
        if KEY_CARRYING_HEADERS.iter().any(|h| header.contains_key(*h)) {
            return Err(VerifierError::Signature(
                "header carries or points to a key",
            ));
        }
        let alg = str_member(&header, "alg").ok_or(VerifierError::Signature("missing alg"))?;
        if alg.eq_ignore_ascii_case("none") || !allowed_algs.iter().any(|a| a.as_ref() == alg) {
            return Err(VerifierError::Signature("algorithm not allowed"));
        }
        let kid = str_member(&header, "kid").ok_or(VerifierError::UnknownKey)?;
        let jwk = self.key(kid).await?;
        if jwk.algorithm().is_some_and(|a| a != alg) {
            return Err(VerifierError::Signature("algorithm does not match the key"));
        }
        let verifier = jws_verifier(alg, &jwk)
            .map_err(|_| VerifierError::Signature("algorithm does not match the key"))?;
        let (payload, _) = jws::deserialize_compact(jws, verifier.as_ref())
            .map_err(|_| VerifierError::Signature("signature verification failed"))?;
        match serde_json::from_slice(&payload) {
            Ok(Value::Object(claims)) => Ok((header, claims)),
            _ => Err(VerifierError::Malformed("payload is not a JSON object")),
        }
    }

    /// Step 4: the claims.
    fn check_claims(&self, raw: Map<String, Value>) -> Result<Claims, VerifierError> {
        if str_member(&raw, "iss") != Some(self.issuer.as_str()) {
            return Err(VerifierError::WrongIssuer);
        }
        let aud_ok = match raw.get("aud") {
            Some(Value::String(a)) => *a == self.audience,
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(&self.audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(VerifierError::WrongAudience);
        }
        let now = self.now();
        let exp = raw
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(VerifierError::Malformed("missing exp"))?;
        if now.saturating_sub(self.leeway) >= exp {
            return Err(VerifierError::Expired);
        }
        match raw.get("nbf") {
            None => {}
            Some(v) => {
                let nbf = v
                    .as_i64()
                    .ok_or(VerifierError::Malformed("malformed nbf"))?;
                if nbf > now.saturating_add(self.leeway) {
                    return Err(VerifierError::NotYetValid);
                }
            }
        }
        let iat = raw
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or(VerifierError::Malformed("missing iat"))?;
        let sub = str_member(&raw, "sub")
            .ok_or(VerifierError::Malformed("missing sub"))?
            .to_owned();
        let scope = str_member(&raw, "scope")
            .map(|s| s.split_ascii_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Claims {
            sub,
            client_id: str_member(&raw, "client_id").map(str::to_owned),
            scope,
            jti: str_member(&raw, "jti").map(str::to_owned),
            exp,
            iat,
            auth_time: raw.get("auth_time").and_then(Value::as_i64),
            raw,
        })
    }

    /// The signing key `kid` from the (cached) JWKS.
    ///
    /// The JWKS is fetched again when its `max-age` has lapsed (even if
    /// `kid` is known), or when `kid` is unknown, but for an unknown `kid`
    /// in a fresh JWKS at most once per [`REFETCH_INTERVAL`]. A failed
    /// first load is retried after [`FAILED_LOAD_RETRY`]; a failed refresh
    /// keeps the keys already known in use and is retried after
    /// [`REFETCH_INTERVAL`].
    async fn key(&self, kid: &str) -> Result<Jwk, VerifierError> {
        {
            let cache = self.cache.read().await;
            if cache.is_fresh() {
                if let Some(k) = cache.keys.get(kid) {
                    return Ok(k.clone());
                }
            }
        }
        let _guard = self.fetch_lock.lock().await;
        let known = {
            let mut cache = self.cache.write().await;
            let known = cache.keys.get(kid).cloned();
            let fresh = cache.is_fresh();
            if fresh && known.is_some() {
                return known.ok_or(VerifierError::UnknownKey);
            }
            let recent = |t: Option<Instant>, d: Duration| t.is_some_and(|t| t.elapsed() < d);
            match cache.fetched_at {
                None => {
                    if recent(cache.last_failure, FAILED_LOAD_RETRY) {
                        return Err(VerifierError::Jwks(
                            "issuer JWKS unavailable; retrying shortly".into(),
                        ));
                    }
                }
                Some(_) if fresh => {
                    // An unknown kid in a fresh JWKS: rate-limited.
                    if recent(cache.last_refetch, REFETCH_INTERVAL) {
                        return Err(VerifierError::UnknownKey);
                    }
                    cache.last_refetch = Some(Instant::now());
                }
                Some(_) => {
                    // Stale: refresh, unless a refresh just failed.
                    if recent(cache.last_failure, REFETCH_INTERVAL) {
                        return known.ok_or(VerifierError::UnknownKey);
                    }
                }
            }
            known
        };
        let fetched = self.fetch_jwks().await;
        let mut cache = self.cache.write().await;
        match fetched {
            Ok((keys, max_age)) => {
                let (min, max) = self.jwks_cache_bounds;
                cache.keys = keys;
                cache.fetched_at = Some(Instant::now());
                cache.max_age = status::clamp(max_age, JWKS_MAX_AGE, min, max);
                cache.last_failure = None;
                tracing::debug!(max_age = ?cache.max_age, "cached the issuer JWKS");
                cache
                    .keys
                    .get(kid)
                    .cloned()
                    .ok_or(VerifierError::UnknownKey)
            }
            Err(e) => {
                cache.last_failure = Some(Instant::now());
                tracing::warn!(error = %e, "could not refresh the issuer JWKS");
                known.ok_or(e)
            }
        }
    }

    /// GETs `url` with the size cap; returns the body and the headers.
    /// Errors name the URL (the caller decides what reaches a client).
    async fn fetch(
        &self,
        url: &str,
        accept: &'static str,
        cap: usize,
    ) -> Result<(Vec<u8>, reqwest::header::HeaderMap), VerifierError> {
        let mut resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| VerifierError::Jwks(format!("fetching {url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(VerifierError::Jwks(format!(
                "fetching {url}: HTTP {}",
                resp.status()
            )));
        }
        if resp.content_length().is_some_and(|l| l > cap as u64) {
            return Err(VerifierError::Jwks(format!("{url}: document too large")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| VerifierError::Jwks(format!("reading {url}: {e}")))?
        {
            if body.len() + chunk.len() > cap {
                return Err(VerifierError::Jwks(format!("{url}: document too large")));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, resp.headers().clone()))
    }

    async fn get_document(
        &self,
        url: &str,
    ) -> Result<(Value, reqwest::header::HeaderMap), VerifierError> {
        let (body, headers) = self
            .fetch(url, "application/json", MAX_DOCUMENT_LEN)
            .await?;
        let doc = serde_json::from_slice(&body)
            .map_err(|_| VerifierError::Jwks(format!("{url}: not JSON")))?;
        Ok((doc, headers))
    }

    async fn jwks_uri(&self) -> Result<String, VerifierError> {
        if let Some(u) = &self.jwks_uri {
            return Ok(u.clone());
        }
        let issuer = self.issuer.trim_end_matches('/');
        self.discovered
            .get_or_try_init(|| async {
                let url = format!("{issuer}/.well-known/openid-configuration");
                match self.get_document(&url).await {
                    Ok((doc, _)) => {
                        if str_member_value(&doc, "issuer") != Some(self.issuer.as_str()) {
                            return Err(VerifierError::Jwks(
                                "discovery document is for another issuer".into(),
                            ));
                        }
                        str_member_value(&doc, "jwks_uri")
                            .map(str::to_owned)
                            .ok_or_else(|| {
                                VerifierError::Jwks("discovery document has no jwks_uri".into())
                            })
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "discovery failed; using {issuer}/jwks");
                        Ok(format!("{issuer}/jwks"))
                    }
                }
            })
            .await
            .cloned()
    }

    /// The signing keys of the issuer's JWKS, and its `max-age` if any.
    async fn fetch_jwks(&self) -> Result<(HashMap<String, Jwk>, Option<u64>), VerifierError> {
        let url = self.jwks_uri().await?;
        let (doc, headers) = self.get_document(&url).await?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| VerifierError::Jwks("JWKS has no keys array".into()))?;
        let mut out = HashMap::new();
        for k in keys {
            let Value::Object(m) = k else { continue };
            // Signing keys only, public only, with a kid.
            if m.get("use")
                .and_then(Value::as_str)
                .is_some_and(|u| u != "sig")
                || m.contains_key("d")
                || matches!(m.get("kty").and_then(Value::as_str), Some("oct") | None)
            {
                continue;
            }
            let Some(kid) = m.get("kid").and_then(Value::as_str).map(str::to_owned) else {
                continue;
            };
            if let Ok(jwk) = Jwk::from_map(m.clone()) {
                out.insert(kid, jwk);
            }
        }
        tracing::debug!(count = out.len(), "fetched issuer JWKS");
        Ok((out, status::max_age(&headers)))
    }

    /// The status list check for a verified token (see the crate docs).
    async fn check_status(&self, claims: &Map<String, Value>) -> Result<(), VerifierError> {
        let Some(status) = claims.get("status") else {
            return if self.require_status {
                Err(VerifierError::StatusList("token has no status claim"))
            } else {
                Ok(())
            };
        };
        const BAD: VerifierError = VerifierError::StatusList("malformed status claim");
        let reference = status
            .get("status_list")
            .and_then(Value::as_object)
            .ok_or(BAD)?;
        let idx = reference.get("idx").and_then(Value::as_u64).ok_or(BAD)?;
        let uri = reference.get("uri").and_then(Value::as_str).ok_or(BAD)?;
        let prefix = format!("{}/", self.issuer.trim_end_matches('/'));
        if !uri.starts_with(&prefix)
            || uri.len() > 2048
            || uri.chars().any(|c| c.is_whitespace() || c.is_control())
            || uri.contains('#')
        {
            return Err(VerifierError::StatusList(
                "status list is not at the issuer",
            ));
        }
        let list = self.status_list(uri).await?;
        match list.get(idx) {
            Some(STATUS_VALID) => Ok(()),
            Some(STATUS_INVALID) => Err(VerifierError::Revoked),
            Some(other) => Err(VerifierError::StatusNotValid(other)),
            None => Err(VerifierError::StatusList("status index is beyond the list")),
        }
    }

    /// The status list at `uri`, from the cache or fetched.
    async fn status_list(&self, uri: &str) -> Result<Arc<StatusList>, VerifierError> {
        let now = self.now();
        let usable = |c: &status::CachedList| c.exp.is_none_or(|exp| now < exp);
        {
            let cache = self.status_cache.read().await;
            if let Some(c) = cache.lists.get(uri) {
                if Instant::now() < c.refresh_at && usable(c) {
                    return Ok(c.list.clone());
                }
            }
        }
        let _guard = self.status_fetch_lock.lock().await;
        let cached = {
            let cache = self.status_cache.read().await;
            let (min, _) = self.status_cache_bounds;
            match cache.lists.get(uri) {
                Some(c) if Instant::now() < c.refresh_at && usable(c) => {
                    return Ok(c.list.clone());
                }
                Some(c) => {
                    let stale = usable(c).then(|| c.list.clone());
                    if c.last_failure.is_some_and(|t| t.elapsed() < min) {
                        // A refresh just failed: the cached list while it lasts.
                        return stale.ok_or(VerifierError::StatusList("status list unavailable"));
                    }
                    stale
                }
                None => {
                    if cache
                        .failures
                        .get(uri)
                        .is_some_and(|t| t.elapsed() < FAILED_LOAD_RETRY)
                    {
                        return Err(VerifierError::StatusList("status list unavailable"));
                    }
                    None
                }
            }
        };
        let fetched = self.fetch_status_list(uri).await;
        let mut cache = self.status_cache.write().await;
        match fetched {
            Ok((list, lifetime, exp)) => {
                let list = Arc::new(list);
                cache.failures.remove(uri);
                if !cache.lists.contains_key(uri) {
                    cache.make_room();
                }
                cache.lists.insert(
                    uri.to_owned(),
                    status::CachedList {
                        list: list.clone(),
                        refresh_at: Instant::now() + lifetime,
                        exp,
                        last_failure: None,
                    },
                );
                Ok(list)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not fetch a token status list");
                match cache.lists.get_mut(uri) {
                    Some(c) => c.last_failure = Some(Instant::now()),
                    None => {
                        cache.make_room();
                        cache.failures.insert(uri.to_owned(), Instant::now());
                    }
                }
                cached.ok_or(VerifierError::StatusList("status list unavailable"))
            }
        }
    }

    /// Fetches and checks one status list token: its cache lifetime and
    /// `exp` come with it. Errors are logged by the caller, never shown.
    async fn fetch_status_list(
        &self,
        uri: &str,
    ) -> Result<(StatusList, Duration, Option<i64>), VerifierError> {
        let bad = |why: &str| VerifierError::Jwks(format!("status list {uri}: {why}"));
        let (body, headers) = self
            .fetch(uri, "application/statuslist+jwt", MAX_STATUS_LIST_JWT_LEN)
            .await?;
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase());
        if content_type.as_deref() != Some("application/statuslist+jwt") {
            return Err(bad("Content-Type is not application/statuslist+jwt"));
        }
        let jwt = std::str::from_utf8(&body)
            .map_err(|_| bad("not text"))?
            .trim();
        let (header, claims) = self
            .verify_signature(jwt, &STATUS_LIST_ALGS)
            .await
            .map_err(|e| bad(&e.to_string()))?;
        let typ = str_member(&header, "typ").map(str::to_ascii_lowercase);
        if !matches!(
            typ.as_deref(),
            Some("statuslist+jwt" | "application/statuslist+jwt")
        ) {
            return Err(bad("typ is not statuslist+jwt"));
        }
        if str_member(&claims, "sub") != Some(uri) {
            return Err(bad("sub is not the list's URI"));
        }
        let now = self.now();
        let exp = match claims.get("exp") {
            None => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| bad("malformed exp"))?),
        };
        if exp.is_some_and(|exp| now >= exp) {
            return Err(bad("expired"));
        }
        let list = claims
            .get("status_list")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("no status_list"))?;
        let bits = list
            .get("bits")
            .and_then(Value::as_u64)
            .and_then(|b| u8::try_from(b).ok())
            .ok_or_else(|| bad("malformed bits"))?;
        let lst = str_member(list, "lst").ok_or_else(|| bad("no lst"))?;
        let decoded = StatusList::decode(lst, bits).ok_or_else(|| bad("malformed lst"))?;
        // The shorter of the list's ttl and the response's max-age, within
        // the bounds, and never past exp.
        let ttl = claims.get("ttl").and_then(Value::as_u64);
        let hint = match (ttl, status::max_age(&headers)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (min, max) = self.status_cache_bounds;
        let mut lifetime = status::clamp(hint, STATUS_LIST_CACHE_DEFAULT, min, max);
        if let Some(exp) = exp {
            let left = Duration::from_secs(u64::try_from(exp - now).unwrap_or(0));
            lifetime = lifetime.min(left);
        }
        tracing::debug!(
            uri,
            ?lifetime,
            statuses = decoded.len(),
            "fetched a token status list"
        );
        Ok((decoded, lifetime, exp))
    }
}

fn str_member_value<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
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
