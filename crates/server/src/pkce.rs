//! PKCE (RFC 7636): the S256 challenge an authorization request carries and
//! the verifier that proves it at the token endpoint. `plain` is refused
//! (RFC 9700 2.1.1). The one place both are checked.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 43 to 128 characters of the unreserved set: the form of a verifier
/// (RFC 7636 4.1) and, with S256, of its challenge.
fn well_formed(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// A code challenge made with S256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// The challenge of an authorization request from its
    /// `code_challenge` and `code_challenge_method`: `Ok(None)` when both
    /// are absent, else the challenge or why it is refused.
    pub fn from_request(
        challenge: Option<&str>,
        method: Option<&str>,
    ) -> Result<Option<CodeChallenge>, &'static str> {
        match (challenge, method) {
            (Some(c), Some("S256")) if well_formed(c) => Ok(Some(CodeChallenge(c.to_owned()))),
            (Some(_), Some("S256")) => Err("code_challenge is malformed"),
            (Some(_), None) | (Some(_), Some("plain")) | (None, Some("plain")) => {
                Err("code_challenge_method must be S256 (plain is not accepted)")
            }
            (_, Some(_)) => Err("code_challenge_method must be S256"),
            (None, None) => Ok(None),
        }
    }

    /// A challenge as stored with a code (checked when it was accepted).
    pub fn stored(challenge: &str) -> CodeChallenge {
        CodeChallenge(challenge.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `code_verifier` of a token request, checked for form.
#[derive(Clone, Copy, Debug)]
pub struct CodeVerifier<'a>(&'a str);

impl<'a> CodeVerifier<'a> {
    /// A verifier of the right form, or why not.
    pub fn parse(v: &'a str) -> Result<CodeVerifier<'a>, &'static str> {
        if well_formed(v) {
            Ok(CodeVerifier(v))
        } else {
            Err("code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 4.1)")
        }
    }

    /// Whether this verifier's S256 hash is `challenge` (compared in
    /// constant time).
    pub fn proves(self, challenge: &CodeChallenge) -> bool {
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes()));
        computed.as_bytes().ct_eq(challenge.0.as_bytes()).into()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_example_proves_its_challenge() {
        let c = CodeChallenge::from_request(Some(CHALLENGE), Some("S256"))
            .unwrap()
            .unwrap();
        assert!(CodeVerifier::parse(VERIFIER).unwrap().proves(&c));
        let other = VERIFIER.replace('d', "e");
        assert!(!CodeVerifier::parse(&other).unwrap().proves(&c));
    }

    #[test]
    fn only_well_formed_s256_is_accepted() {
        assert_eq!(CodeChallenge::from_request(None, None), Ok(None));
        for (c, m) in [
            (Some(CHALLENGE), None),
            (Some(CHALLENGE), Some("plain")),
            (None, Some("plain")),
            (None, Some("S256")),
            (Some(CHALLENGE), Some("S512")),
            (Some("short"), Some("S256")),
            (Some(&*format!("{CHALLENGE}!")), Some("S256")),
        ] {
            assert!(CodeChallenge::from_request(c, m).is_err(), "{c:?} {m:?}");
        }
        assert!(CodeVerifier::parse("short").is_err());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_err());
        assert!(CodeVerifier::parse(&"a".repeat(128)).is_ok());
    }
}
