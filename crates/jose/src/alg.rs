//! The algorithms Gatehouse supports ([`Alg`], [`HmacAlg`]) and what a key
//! is for ([`KeyUse`]): exact JOSE names, parsed once.

use std::fmt;
use std::str::FromStr;

use crate::{shorten, JoseError};

/// What a key is for: the JWK `use` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// Signatures (JWS).
    Sig,
    /// Encryption (JWE).
    Enc,
}

impl KeyUse {
    /// The JWK `use` value: `sig` or `enc`.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyUse::Sig => "sig",
            KeyUse::Enc => "enc",
        }
    }
}

impl fmt::Display for KeyUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for KeyUse {
    type Err = JoseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sig" => Ok(KeyUse::Sig),
            "enc" => Ok(KeyUse::Enc),
            other => Err(JoseError::InvalidKey(format!(
                "unsupported key use {}; use sig or enc",
                shorten(other)
            ))),
        }
    }
}

/// The algorithms Gatehouse supports. RSA keys are 2048-bit, ES256 and
/// ECDH-ES+A256KW use P-256, EdDSA uses Ed25519.
///
/// The variants after `EcdhEsA256kw` are for VERIFICATION only (a
/// resource server may accept tokens signed with them): they are not in
/// [`Alg::ALL`], `FromStr` does not parse them (so no client key or
/// configuration of Gatehouse itself can name them), no key is ever
/// generated or opened for them, and only
/// [`crate::PublicKey::from_jwk_value_for_verification`] and
/// [`Alg::from_verification_name`] accept them.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// EdDSA on Ed25519.
    EdDSA,
    /// RSAES-OAEP with SHA-256 (JWE key encryption).
    RsaOaep256,
    /// ECDH-ES on P-256 with A256KW key wrapping (JWE key agreement).
    EcdhEsA256kw,
    /// ECDSA on P-384 with SHA-384 (verification only).
    ES384,
    /// ECDSA on P-521 with SHA-512 (verification only).
    ES512,
    /// RSASSA-PKCS1-v1_5 with SHA-384 (verification only).
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512 (verification only).
    RS512,
    /// RSASSA-PSS with SHA-384 (verification only).
    PS384,
    /// RSASSA-PSS with SHA-512 (verification only).
    PS512,
}

/// The key type behind an algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    P521,
    Ed25519,
}

impl KeyKind {
    /// The JWK `crv` of an elliptic-curve kind ("" for the others).
    pub(crate) const fn crv(self) -> &'static str {
        match self {
            KeyKind::P256 => "P-256",
            KeyKind::P384 => "P-384",
            KeyKind::P521 => "P-521",
            KeyKind::Ed25519 => "Ed25519",
            KeyKind::Rsa => "",
        }
    }

    pub(crate) const fn kty(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RSA",
            KeyKind::P256 | KeyKind::P384 | KeyKind::P521 => "EC",
            KeyKind::Ed25519 => "OKP",
        }
    }
}

impl Alg {
    /// Every supported algorithm.
    pub const ALL: &'static [Alg] = &[
        Alg::RS256,
        Alg::PS256,
        Alg::ES256,
        Alg::EdDSA,
        Alg::RsaOaep256,
        Alg::EcdhEsA256kw,
    ];

    /// The signature algorithms accepted for verification only.
    pub const VERIFY_ONLY: &'static [Alg] = &[
        Alg::ES384,
        Alg::ES512,
        Alg::RS384,
        Alg::RS512,
        Alg::PS384,
        Alg::PS512,
    ];

    /// Whether this algorithm is for verification only (see [`Alg`]).
    pub fn is_verify_only(self) -> bool {
        Alg::VERIFY_ONLY.contains(&self)
    }

    /// Parse an exact JOSE name, including the verification-only
    /// signature algorithms (ES384/512, RS384/512, PS384/512).
    pub fn from_verification_name(s: &str) -> Result<Alg, JoseError> {
        match Alg::VERIFY_ONLY
            .iter()
            .copied()
            .find(|alg| alg.as_str() == s)
        {
            Some(alg) => Ok(alg),
            None => s.parse(),
        }
    }

    /// The JOSE `alg` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::PS256 => "PS256",
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
            Alg::RsaOaep256 => "RSA-OAEP-256",
            Alg::EcdhEsA256kw => "ECDH-ES+A256KW",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
        }
    }

    /// Whether keys of this algorithm sign or encrypt.
    pub const fn key_use(self) -> KeyUse {
        match self {
            Alg::RS256
            | Alg::PS256
            | Alg::ES256
            | Alg::EdDSA
            | Alg::ES384
            | Alg::ES512
            | Alg::RS384
            | Alg::RS512
            | Alg::PS384
            | Alg::PS512 => KeyUse::Sig,
            Alg::RsaOaep256 | Alg::EcdhEsA256kw => KeyUse::Enc,
        }
    }

    pub(crate) const fn kind(self) -> KeyKind {
        match self {
            Alg::RS256
            | Alg::PS256
            | Alg::RsaOaep256
            | Alg::RS384
            | Alg::RS512
            | Alg::PS384
            | Alg::PS512 => KeyKind::Rsa,
            Alg::ES256 | Alg::EcdhEsA256kw => KeyKind::P256,
            Alg::ES384 => KeyKind::P384,
            Alg::ES512 => KeyKind::P521,
            Alg::EdDSA => KeyKind::Ed25519,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Serialised as the exact JOSE name (key listings, stored records).
impl serde::Serialize for Alg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Read from the exact JOSE name of an algorithm Gatehouse supports
/// (as `FromStr`: never a verification-only one).
impl<'de> serde::Deserialize<'de> for Alg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Serialised as `sig` or `enc`.
impl serde::Serialize for KeyUse {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = JoseError;

    /// Exact, case-sensitive JOSE names only.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Alg::ALL
            .iter()
            .copied()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| {
                JoseError::InvalidKey(format!(
                    "unsupported algorithm {}; use one of RS256, PS256, ES256, EdDSA, \
                     RSA-OAEP-256, ECDH-ES+A256KW",
                    shorten(s)
                ))
            })
    }
}

/// The HMAC JWS algorithms (RFC 7518 3.2), for JWTs MACed with a shared
/// secret: client_secret_jwt client assertions. Kept apart from [`Alg`] so
/// no asymmetric-key allow-list can ever admit them.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HmacAlg {
    HS256,
    HS384,
    HS512,
}

impl HmacAlg {
    /// Every supported HMAC algorithm.
    pub const ALL: [HmacAlg; 3] = [HmacAlg::HS256, HmacAlg::HS384, HmacAlg::HS512];

    /// The JOSE `alg` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            HmacAlg::HS256 => "HS256",
            HmacAlg::HS384 => "HS384",
            HmacAlg::HS512 => "HS512",
        }
    }

    /// The smallest key RFC 7518 3.2 allows: the size of the hash output.
    pub const fn min_key_len(self) -> usize {
        match self {
            HmacAlg::HS256 => 32,
            HmacAlg::HS384 => 48,
            HmacAlg::HS512 => 64,
        }
    }
}

impl fmt::Display for HmacAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for HmacAlg {
    type Err = JoseError;

    /// Exact, case-sensitive JOSE names only.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HmacAlg::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| {
                JoseError::InvalidKey(format!(
                    "unsupported algorithm {}; use one of HS256, HS384, HS512",
                    shorten(s)
                ))
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The reason of an `InvalidKey` error (these tests also run without
    /// OpenSSL, so without the shared test utilities).
    fn invalid_key(result: Result<impl fmt::Debug, JoseError>) -> String {
        match result {
            Err(JoseError::InvalidKey(reason)) => reason,
            other => panic!("expected InvalidKey, got {other:?}"),
        }
    }

    #[test]
    fn alg_and_key_use_names() {
        for &alg in Alg::ALL {
            assert_eq!(alg.as_str().parse::<Alg>().unwrap(), alg);
            assert_eq!(alg.to_string(), alg.as_str());
        }
        assert_eq!(Alg::RsaOaep256.as_str(), "RSA-OAEP-256");
        assert_eq!(Alg::EcdhEsA256kw.as_str(), "ECDH-ES+A256KW");
        assert_eq!(Alg::EdDSA.key_use(), KeyUse::Sig);
        assert_eq!(Alg::EcdhEsA256kw.key_use(), KeyUse::Enc);
        for bad in ["none", "HS256", "rs256", "RS384", "ECDH-ES", "RSA-OAEP", ""] {
            let message = invalid_key(bad.parse::<Alg>());
            assert!(message.starts_with("unsupported algorithm"), "{message}");
            assert!(message.contains("use one of RS256"), "{message}");
        }
        assert_eq!("sig".parse::<KeyUse>().unwrap(), KeyUse::Sig);
        assert_eq!("enc".parse::<KeyUse>().unwrap(), KeyUse::Enc);
        assert_eq!(KeyUse::Enc.to_string(), "enc");
        invalid_key("SIG".parse::<KeyUse>());
    }

    #[test]
    fn verification_only_algs_parse_only_for_verification() {
        for &alg in Alg::VERIFY_ONLY {
            assert!(alg.as_str().parse::<Alg>().is_err(), "{alg}");
            assert_eq!(Alg::from_verification_name(alg.as_str()).unwrap(), alg);
            assert_eq!(alg.key_use(), KeyUse::Sig);
            assert!(alg.is_verify_only());
            assert!(!Alg::ALL.contains(&alg));
        }
        assert_eq!(Alg::from_verification_name("ES256").unwrap(), Alg::ES256);
        invalid_key(Alg::from_verification_name("none"));
        invalid_key(Alg::from_verification_name("HS256"));
    }
}
