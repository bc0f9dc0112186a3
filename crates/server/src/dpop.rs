//! DPoP (RFC 9449) on the server's side: a proof checked against the
//! request it came with, its `jti` accepted once across every instance,
//! and the server nonces. The JOSE rules (typ, alg, the public `jwk`,
//! signature, htm, htu, iat, ath) are `gatehouse_jose::dpop`'s; this
//! module adds what needs the server's state.
//!
//! Nonces (RFC 9449 8 and 9) are not stored: a nonce is the keyed hash,
//! under a subkey of the key-encryption key, of a five-minute window
//! number. Every instance computes the same one, and accepts the nonce of
//! the window before and after its own (instances' clocks differ a little;
//! a nonce lives five to ten minutes).

use gatehouse_keys::{Alg, Kek, SecretHasher};
use gatehouse_protocol::Jkt;

use crate::{
    error::{Error, OAuthError},
    state::AppState,
};

/// The signature algorithms accepted on proofs
/// (`dpop_signing_alg_values_supported`).
pub const PROOF_ALGS: [Alg; 4] = [Alg::ES256, Alg::EdDSA, Alg::RS256, Alg::PS256];

/// Seconds one nonce window lasts.
const NONCE_WINDOW: i64 = 300;

/// The server nonces: derived, never stored.
#[derive(Clone, Debug)]
pub struct Nonces {
    mac: SecretHasher,
}

impl Nonces {
    pub fn new(kek: &Kek) -> Nonces {
        Nonces {
            mac: SecretHasher::new(&kek.derive(b"gatehouse dpop-nonce v1")),
        }
    }

    fn input(window: i64) -> String {
        format!("dpop-nonce {window}")
    }

    /// The nonce to hand out now (`DPoP-Nonce`).
    pub fn current(&self, now: i64) -> String {
        self.mac.hash(&Self::input(now.div_euclid(NONCE_WINDOW)))
    }

    /// Whether `nonce` is this window's, the one before or the one after.
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let w = now.div_euclid(NONCE_WINDOW);
        (w - 1..=w + 1).any(|w| self.mac.matches(&Self::input(w), nonce))
    }
}

/// The request a proof came with.
#[derive(Clone, Copy, Debug)]
pub struct ProofRequest<'a> {
    /// `POST`, `GET`.
    pub method: &'a str,
    /// The endpoint's path (`/token`): the URL is the issuer's, never the
    /// Host header's.
    pub path: &'a str,
    /// The access token sent with it (`Authorization: DPoP`), whose hash
    /// the proof must carry (`ath`).
    pub access_token: Option<&'a str>,
}

/// A proof that passed every check but the replay check: its key, and
/// its `jti` still to be recorded. The caller records it (`record`) once
/// it has checked what it can without writing (the token the proof comes
/// with, a code's or refresh token's binding), so a stranger's proof with
/// nothing behind it costs no write; and before it spends or answers
/// anything.
#[derive(Clone, Debug)]
pub struct Proof {
    pub jkt: Jkt,
    replay_key: String,
    remember_until: i64,
}

impl Proof {
    /// Records the proof's `jti` for every instance; a proof seen before
    /// is `invalid_dpop_proof`; 503 when it cannot be recorded.
    pub async fn record(&self, state: &AppState) -> Result<(), Error> {
        if state
            .record_once(&self.replay_key, self.remember_until)
            .await?
        {
            Ok(())
        } else {
            Err(OAuthError::InvalidDpopProof(
                "the DPoP proof has been used before (its jti was seen)".into(),
            )
            .into())
        }
    }
}

/// Checks the proof sent with `req`, without writing: well formed and
/// signed by its key, for this method and URL, fresh, and with the
/// server's nonce when nonces are on. The `jti` is remembered (by
/// [`Proof::record`]) until twice the `iat` window has passed: longer
/// than any instance can accept the proof, even one whose clock is a
/// window behind the one that prunes.
///
/// Errors: `invalid_dpop_proof` naming the broken rule, `use_dpop_nonce`.
pub fn verify(state: &AppState, proof: &str, req: ProofRequest<'_>) -> Result<Proof, Error> {
    let now = state.now();
    let max_age = state.settings.dpop.max_age;
    let url = state.settings.endpoint(req.path);
    let p = gatehouse_keys::jose::dpop::verify_proof(
        proof,
        &gatehouse_keys::jose::dpop::DpopRequest {
            method: req.method,
            url: &url,
            now,
            max_skew: max_age,
            algs: &PROOF_ALGS,
            access_token: req.access_token,
        },
    )
    .map_err(|e| OAuthError::InvalidDpopProof(e.to_string().into()))?;
    if state.settings.dpop.nonce {
        match &p.nonce {
            Some(n) if state.dpop_nonces.accepts(n, now) => {}
            Some(_) => {
                return Err(OAuthError::UseDpopNonce(
                    "the DPoP proof's nonce is not current: use the DPoP-Nonce header's".into(),
                )
                .into())
            }
            None => {
                return Err(OAuthError::UseDpopNonce(
                    "DPoP proofs must carry the server's nonce: use the DPoP-Nonce header's".into(),
                )
                .into())
            }
        }
    }
    Ok(Proof {
        replay_key: format!("dpop:{}:{}", p.jkt, p.jti),
        remember_until: p.iat.saturating_add(2 * max_age + 1),
        jkt: Jkt::new(p.jkt),
    })
}

/// [`verify`], then [`Proof::record`] at once: for a caller with nothing
/// to check in between.
pub async fn check(state: &AppState, proof: &str, req: ProofRequest<'_>) -> Result<Jkt, Error> {
    let p = verify(state, proof, req)?;
    p.record(state).await?;
    Ok(p.jkt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_last_from_the_window_before_to_the_window_after() {
        let n = Nonces::new(&Kek::generate());
        let t = 1_000_000 * NONCE_WINDOW;
        let nonce = n.current(t);
        assert_eq!(nonce, n.current(t + NONCE_WINDOW - 1));
        assert_ne!(nonce, n.current(t + NONCE_WINDOW));
        for at in [t - NONCE_WINDOW, t, t + 2 * NONCE_WINDOW - 1] {
            assert!(n.accepts(&nonce, at), "{at}");
        }
        for at in [t - NONCE_WINDOW - 1, t + 2 * NONCE_WINDOW] {
            assert!(!n.accepts(&nonce, at), "{at}");
        }
        assert!(!n.accepts("", t));
        assert!(!Nonces::new(&Kek::generate()).accepts(&nonce, t));
    }
}
