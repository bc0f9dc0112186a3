//! TOTP factors (RFC 6238): the secret is generated here, sealed with a
//! subkey of the KEK bound to the user id (so a sealed secret cannot be
//! moved to another user), and checked here; the opened secret never
//! leaves this crate. SHA-1, 6 digits, 30-second steps: what authenticator
//! apps support.

use std::fmt;

use rand::{rngs::OsRng, RngCore};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::{Kek, KeyError};

/// Label for deriving the TOTP sealing subkey from the KEK.
const TOTP_SEAL_LABEL: &[u8] = b"gatehouse totp-seal v1";
/// Seconds per time step.
pub const TOTP_STEP: i64 = 30;
const DIGITS: usize = 6;
/// 160 bits, as RFC 4226 4 recommends.
const SECRET_LEN: usize = 20;

/// A secret just generated: the sealed form to store, and what the user
/// is shown once (base32 and the `otpauth://` URI for a QR code).
pub struct NewTotp {
    pub sealed: Vec<u8>,
    pub secret_base32: Zeroizing<String>,
    pub uri: Zeroizing<String>,
}

impl fmt::Debug for NewTotp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewTotp(<hidden>)")
    }
}

/// Generates, seals and checks TOTP secrets.
#[derive(Clone)]
pub struct TotpSealer(Kek);

impl fmt::Debug for TotpSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSealer(<hidden>)")
    }
}

fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> Result<TOTP, KeyError> {
    // The otpauth label cannot hold ':' (it separates issuer and account).
    let clean = |s: &str| s.replace(':', "_");
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        0,
        TOTP_STEP as u64,
        secret,
        Some(clean(issuer)),
        clean(account),
    )
    .map_err(|e| KeyError::crypto(format!("TOTP parameters refused: {e}")))
}

impl TotpSealer {
    /// Derive the sealing subkey from `kek`.
    pub fn new(kek: &Kek) -> TotpSealer {
        TotpSealer(kek.derive(TOTP_SEAL_LABEL))
    }

    fn context(user_id: &str) -> String {
        format!("totp:{user_id}")
    }

    /// A new secret for `user_id`, labelled `issuer` / `account` in the
    /// authenticator app.
    pub fn generate(
        &self,
        user_id: &str,
        issuer: &str,
        account: &str,
    ) -> Result<NewTotp, KeyError> {
        let mut secret = Zeroizing::new(vec![0u8; SECRET_LEN]);
        OsRng.fill_bytes(&mut secret);
        let sealed = self.0.seal(&Self::context(user_id), &secret)?;
        let t = totp(secret.to_vec(), issuer, account)?;
        Ok(NewTotp {
            sealed,
            secret_base32: Zeroizing::new(t.get_secret_base32()),
            uri: Zeroizing::new(t.get_url()),
        })
    }

    /// The time step (Unix time / 30) whose code is `code`, among the
    /// current step and one on either side (RFC 6238 5.2), or `None`. The
    /// caller accepts it only if it is later than the last step used. A
    /// code that is not six digits (spaces allowed) is `None`.
    pub fn matching_step(
        &self,
        user_id: &str,
        sealed: &[u8],
        code: &str,
        now: i64,
    ) -> Result<Option<i64>, KeyError> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let secret = Zeroizing::new(self.0.open(&Self::context(user_id), sealed)?);
        let t = totp(secret.to_vec(), "x", "x")?;
        let step = now.div_euclid(TOTP_STEP);
        let mut found = None;
        for s in [step - 1, step, step + 1] {
            let Ok(at) = u64::try_from(s * TOTP_STEP) else {
                continue;
            };
            let expected = Zeroizing::new(t.generate(at));
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
                found = Some(s);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn code_at(uri: &str, t: i64) -> String {
        TOTP::from_url(uri).unwrap().generate(t as u64)
    }

    #[test]
    fn codes_of_the_current_and_neighbouring_steps_match_their_step() {
        let s = TotpSealer::new(&Kek::generate());
        let n = s.generate("u1", "id.example", "alice").unwrap();
        assert!(n.uri.starts_with("otpauth://totp/"));
        assert!(n.uri.contains(n.secret_base32.as_str()));
        let now = 1_800_000_015;
        let step = now / TOTP_STEP;
        for d in [-1, 0, 1] {
            let c = code_at(&n.uri, now + d * TOTP_STEP);
            assert_eq!(
                s.matching_step("u1", &n.sealed, &c, now).unwrap(),
                Some(step + d)
            );
        }
        let far = code_at(&n.uri, now + 2 * TOTP_STEP);
        let near: Vec<String> = [-1, 0, 1]
            .iter()
            .map(|d| code_at(&n.uri, now + d * TOTP_STEP))
            .collect();
        if !near.contains(&far) {
            assert_eq!(s.matching_step("u1", &n.sealed, &far, now).unwrap(), None);
        }
    }

    #[test]
    fn a_secret_sealed_for_one_user_does_not_open_for_another() {
        let s = TotpSealer::new(&Kek::generate());
        let n = s.generate("u1", "id.example", "alice").unwrap();
        let c = code_at(&n.uri, 1_800_000_000);
        assert!(s.matching_step("u2", &n.sealed, &c, 1_800_000_000).is_err());
    }

    #[test]
    fn malformed_codes_never_match() {
        let s = TotpSealer::new(&Kek::generate());
        let n = s.generate("u1", "id.example:8080", "a:b").unwrap();
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert_eq!(s.matching_step("u1", &n.sealed, bad, 0).unwrap(), None);
        }
        let c = code_at(&n.uri, 1_800_000_000);
        let spaced = format!("{} {}", &c[..3], &c[3..]);
        assert!(s
            .matching_step("u1", &n.sealed, &spaced, 1_800_000_000)
            .unwrap()
            .is_some());
    }
}
