//! DPoP (RFC 9449) at the resource server: a DPoP-bound token and the proof
//! sent with it, checked together (the proof, the token, the key binding,
//! then the replay cache), and the token's confirmation claim.
//!
//! Resource-server nonces (RFC 9449 9) are not used: a proof is fresh when
//! its `iat` is within the window and its `jti` was not seen before.

use std::sync::Mutex;

use gatehouse_jose::dpop::{verify_proof_with, DpopRequest, MAX_PROOF_LEN};

use super::*;
use crate::replay::{Remember, ReplayCache};

/// Default for how far a proof's `iat` may be from now, either way.
pub const DPOP_PROOF_WINDOW: Duration = Duration::from_secs(60);
/// The longest window accepted.
pub const DPOP_PROOF_WINDOW_MAX: Duration = Duration::from_secs(600);
/// Default signature algorithms accepted on proofs (both backends verify
/// them).
pub const DPOP_ALGS: [&str; 4] = ["ES256", "EdDSA", "RS256", "PS256"];
/// Default capacity of the replay cache.
pub const DPOP_REPLAY_CACHE_CAPACITY: usize = 100_000;
/// Largest proof accepted, in bytes.
pub const MAX_DPOP_PROOF_LEN: usize = MAX_PROOF_LEN;

/// The key an access token is bound to: its `cnf` claim (RFC 7800 3.1),
/// with the DPoP member `jkt` (RFC 9449 6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint (base64url) of the client's DPoP
    /// public key.
    pub jkt: String,
}

impl Confirmation {
    /// Reads `cnf` from the claims: absent is `None`. Any other
    /// confirmation method (such as mTLS's `x5t#S256`) is refused as
    /// malformed: this verifier could not check it, and a bound token must
    /// not pass as a bearer token.
    pub(crate) fn from_claims(
        raw: &Map<String, Value>,
    ) -> Result<Option<Confirmation>, VerifierError> {
        let Some(cnf) = raw.get("cnf") else {
            return Ok(None);
        };
        let jkt = cnf
            .as_object()
            .filter(|c| c.len() == 1)
            .and_then(|c| str_member(c, "jkt"))
            .filter(|jkt| {
                jkt.len() == 43
                    && jkt
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .ok_or(VerifierError::Malformed(
                "cnf must hold exactly a jkt (a SHA-256 JWK thumbprint)",
            ))?;
        Ok(Some(Confirmation {
            jkt: jkt.to_owned(),
        }))
    }
}

/// The verifier's DPoP settings and replay cache (present when
/// `dpop_base_url` is set).
pub(crate) struct Dpop {
    base_url: String,
    window: i64,
    algs: Vec<Alg>,
    algs_text: String,
    replay: Mutex<ReplayCache>,
}

impl Dpop {
    /// Checks the DPoP part of the configuration: `None` when DPoP is off.
    pub(crate) fn from_config(cfg: &VerifierConfig) -> Result<Option<Dpop>, VerifierError> {
        let Some(base_url) = &cfg.dpop_base_url else {
            return Ok(None);
        };
        let base_url = checked_base_url(base_url)?;
        if cfg.dpop_proof_window.is_zero() || cfg.dpop_proof_window > DPOP_PROOF_WINDOW_MAX {
            return Err(config("dpop_proof_window must be between 1 s and 10 min"));
        }
        if cfg.dpop_replay_cache_capacity == 0 {
            return Err(config("dpop_replay_cache_capacity must be positive"));
        }
        if cfg.dpop_algs.is_empty() {
            return Err(config("dpop_algs is empty"));
        }
        let algs = cfg
            .dpop_algs
            .iter()
            .map(|name| {
                let alg = Alg::from_verification_name(name)
                    .ok()
                    .filter(|alg| alg.key_use() == gatehouse_jose::KeyUse::Sig)
                    .ok_or_else(|| {
                        config(format!("DPoP signing algorithm {name:?} is not supported"))
                    })?;
                if !cfg.backend.verifies(alg) {
                    return Err(config(format!(
                        "DPoP signing algorithm {alg} needs the openssl backend"
                    )));
                }
                Ok(alg)
            })
            .collect::<Result<Vec<Alg>, VerifierError>>()?;
        let algs_text = algs
            .iter()
            .map(Alg::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Some(Dpop {
            base_url,
            window: cfg.dpop_proof_window.as_secs() as i64,
            algs,
            algs_text,
            replay: Mutex::new(ReplayCache::new(cfg.dpop_replay_cache_capacity)),
        }))
    }
}

/// The base URL without a trailing `/`: `http` or `https`, a host, no
/// user information, query or fragment.
fn checked_base_url(url: &str) -> Result<String, VerifierError> {
    let bad = || {
        config(
            "dpop_base_url must be an http(s) URL with a host and no userinfo, query or fragment",
        )
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let scheme_ok = scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http");
    let host = rest.split('/').next().unwrap_or_default();
    if !scheme_ok
        || host.is_empty()
        || host.contains('@')
        || url
            .chars()
            .any(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl Verifier {
    /// Checks a request made with `Authorization: DPoP <token>` and the
    /// proof of its one `DPoP` header (RFC 9449 7.1), for the request's
    /// `method` (`GET`) and `path` (as received, starting with `/`; its
    /// query, if any, is ignored). The proof's `htu` must be the configured
    /// [`VerifierConfig::dpop_base_url`](VerifierConfig) followed by `path`.
    ///
    /// In order: the proof (RFC 9449 4.3: `typ`, `alg`, its own public
    /// `jwk`, signature, `htm`, `htu`, `iat` within the window, `ath` equal
    /// to the token's hash), the token (as [`Verifier::verify`]), the
    /// binding (the token's `cnf.jkt` equals the proof key's thumbprint),
    /// and last the replay cache, so only a proof that passed everything
    /// takes a place in it.
    pub async fn verify_dpop(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        path: &str,
    ) -> Result<Claims, VerifierError> {
        let result = self.verify_dpop_inner(token, proof, method, path).await;
        if let Err(e) = &result {
            tracing::debug!(error = %e, "DPoP request refused");
        }
        result
    }

    /// The `algs` of the `DPoP` challenge (space-separated), or `None` when
    /// DPoP is off.
    pub fn dpop_algs(&self) -> Option<&str> {
        self.dpop.as_ref().map(|d| d.algs_text.as_str())
    }

    async fn verify_dpop_inner(
        &self,
        token: &str,
        proof: &str,
        method: &str,
        path: &str,
    ) -> Result<Claims, VerifierError> {
        let dpop = self.dpop.as_ref().ok_or(VerifierError::DpopDisabled)?;
        if token.len() > MAX_TOKEN_LEN {
            return Err(VerifierError::Malformed("token too large"));
        }
        if !path.starts_with('/') {
            return Err(VerifierError::DpopProof(DpopError::Url));
        }
        let url = format!("{}{path}", dpop.base_url);
        let now = self.now();
        let checked = verify_proof_with(
            proof,
            &DpopRequest {
                method,
                url: &url,
                now,
                max_skew: dpop.window,
                algs: &dpop.algs,
                access_token: Some(token),
            },
            self.backend,
        )
        .map_err(VerifierError::DpopProof)?;
        let claims = self.verify_inner(token).await?;
        let cnf = claims.cnf.as_ref().ok_or(VerifierError::NotDpopBound)?;
        if cnf.jkt != checked.jkt {
            return Err(VerifierError::DpopKeyMismatch);
        }
        let expires = checked.iat.saturating_add(dpop.window);
        let decision = dpop
            .replay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remember(&checked.jkt, &checked.jti, expires, now);
        match decision {
            Remember::Fresh => Ok(claims),
            Remember::Replay => Err(VerifierError::DpopReplay),
            Remember::Full { retry_after } => {
                tracing::warn!("DPoP replay cache full: proof refused");
                Err(VerifierError::DpopReplayCacheFull { retry_after })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            checked_base_url("https://api.example.com/").ok().as_deref(),
            Some("https://api.example.com")
        );
        assert_eq!(
            checked_base_url("http://127.0.0.1:8081/v1").ok().as_deref(),
            Some("http://127.0.0.1:8081/v1")
        );
        for bad in [
            "api.example.com",
            "ftp://api.example.com",
            "https://",
            "https://user@api.example.com",
            "https://api.example.com/?x=1",
            "https://api.example.com/#f",
            "https://api.example.com/a b",
        ] {
            assert!(checked_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn confirmation_is_a_jkt_or_malformed() {
        let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
        let read = |v: Value| {
            let mut m = Map::new();
            m.insert("cnf".into(), v);
            Confirmation::from_claims(&m)
        };
        assert_eq!(Confirmation::from_claims(&Map::new()), Ok(None));
        assert_eq!(
            read(serde_json::json!({ "jkt": jkt })),
            Ok(Some(Confirmation { jkt: jkt.into() }))
        );
        for bad in [
            serde_json::json!({ "x5t#S256": jkt }),
            serde_json::json!({ "jkt": jkt, "x5t#S256": jkt }),
            serde_json::json!({ "jkt": "short" }),
            serde_json::json!({ "jkt": 1 }),
            serde_json::json!(jkt),
        ] {
            assert!(
                matches!(read(bad.clone()), Err(VerifierError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
