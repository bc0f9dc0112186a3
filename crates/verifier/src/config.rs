//! How to check tokens: the verifier's configuration.

use super::*;

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
    /// The cryptography used to decrypt and verify (default OpenSSL, or
    /// the pure-Rust backend when built without feature `openssl`; with
    /// the `rustcrypto` feature, `Backend::RustCrypto` is pure Rust and
    /// refuses RSA-OAEP-256 decryption keys and ES384/ES512).
    pub backend: Backend,
    /// The API's public base URL as its clients reach it (scheme, host,
    /// port if not the default, and any path prefix in front of the paths
    /// the API sees), e.g. `https://api.example.com`. Setting it turns DPoP
    /// (RFC 9449) on: a proof's `htu` must be this URL followed by the
    /// request's path. Never taken from the request's `Host` header, which
    /// the caller chooses. `None` (the default): the DPoP scheme is refused
    /// ([`VerifierError::DpopDisabled`]); DPoP-bound tokens are refused
    /// either way when sent as bearer tokens.
    pub dpop_base_url: Option<String>,
    /// How far a proof's `iat` may be from now, either way (default 60 s,
    /// at most 10 min). A proof is remembered (replay cache) this long
    /// after its `iat`.
    pub dpop_proof_window: Duration,
    /// Signature algorithms accepted on DPoP proofs (default ES256, EdDSA,
    /// RS256, PS256: those both backends verify), advertised in the `algs`
    /// of the `DPoP` challenge.
    pub dpop_algs: Vec<String>,
    /// Most proofs remembered at once by the replay cache (default
    /// 100 000, 32 bytes each plus overhead). When it is full of live
    /// proofs, new ones are refused until the earliest expires.
    pub dpop_replay_cache_capacity: usize,
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

    /// Sets the cryptography backend.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Sets the JWKS URL instead of discovering it.
    pub fn jwks_uri(mut self, uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(uri.into());
        self
    }

    /// Turns DPoP on: the API's public base URL as its clients reach it
    /// (see the field of the same name).
    pub fn dpop_base_url(mut self, url: impl Into<String>) -> Self {
        self.dpop_base_url = Some(url.into());
        self
    }

    /// Sets how far a DPoP proof's `iat` may be from now, either way.
    pub fn dpop_proof_window(mut self, window: Duration) -> Self {
        self.dpop_proof_window = window;
        self
    }

    /// Sets the signature algorithms accepted on DPoP proofs.
    pub fn dpop_algs<I, A>(mut self, algs: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        self.dpop_algs = algs.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the most DPoP proofs the replay cache holds at once (one
    /// client key at most an eighth of them). When full, a new proof is
    /// refused with 503 and `Retry-After` rather than a live one forgotten.
    pub fn dpop_replay_cache_capacity(mut self, capacity: usize) -> Self {
        self.dpop_replay_cache_capacity = capacity;
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
            backend: Backend::default(),
            dpop_base_url: None,
            dpop_proof_window: DPOP_PROOF_WINDOW,
            dpop_algs: DPOP_ALGS.iter().map(|a| (*a).to_owned()).collect(),
            dpop_replay_cache_capacity: DPOP_REPLAY_CACHE_CAPACITY,
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
            .field("backend", &self.backend)
            .field("dpop_base_url", &self.dpop_base_url)
            .field("dpop_proof_window", &self.dpop_proof_window)
            .field("dpop_algs", &self.dpop_algs)
            .field(
                "dpop_replay_cache_capacity",
                &self.dpop_replay_cache_capacity,
            )
            .finish_non_exhaustive()
    }
}
