//! Private keys: generation of raw key pairs (sealing them is the caller's
//! business) and opened private keys holding a ready signer or decrypter.

use std::fmt;
use std::sync::Arc;
#[cfg(feature = "openssl")]
use std::sync::LazyLock;

#[cfg(feature = "openssl")]
use josekit::jwe::{self, JweDecrypter};
#[cfg(feature = "openssl")]
use josekit::jwk::alg::ec::EcKeyPair;
#[cfg(feature = "openssl")]
use josekit::jwk::alg::rsa::RsaKeyPair;
#[cfg(feature = "openssl")]
use josekit::jwk::KeyPair as _;
#[cfg(feature = "openssl")]
use josekit::jws::{self, JwsSigner};
#[cfg(feature = "openssl")]
use josekit::JoseError as JosekitError;
#[cfg(feature = "openssl")]
use openssl::bn::{BigNum, BigNumContext};
#[cfg(feature = "openssl")]
use openssl::ec::{EcGroup, EcKey};
#[cfg(feature = "openssl")]
use openssl::error::ErrorStack;
#[cfg(feature = "openssl")]
use openssl::nid::Nid;
#[cfg(feature = "openssl")]
use openssl::pkey::{Id, PKey, Private};
#[cfg(feature = "openssl")]
use openssl::rsa::Rsa;
use serde_json::Map;
#[cfg(feature = "openssl")]
use zeroize::Zeroizing;

#[cfg(feature = "openssl")]
use crate::alg::KeyKind;
#[cfg(feature = "openssl")]
use crate::{b64, openssl_err, shorten};
use crate::{Alg, Backend, JoseError, KeyUse, PublicKey};

/// Size of the RSA keys Gatehouse generates.
#[cfg(feature = "openssl")]
const RSA_GENERATE_BITS: u32 = 2048;
/// Accepted RSA modulus sizes. The upper bound stops a client key from
/// making every verification or encryption needlessly slow.
pub(crate) const RSA_MIN_BITS: u32 = 2048;
pub(crate) const RSA_MAX_BITS: u32 = 8192;

/// A freshly generated key pair: the public JWK to publish and the private
/// key as PKCS#8 DER, for the caller to seal before it is stored. The DER
/// is wiped from memory when the pair is dropped and never printed.
#[cfg(feature = "openssl")]
pub struct KeyPair {
    pub kid: String,
    pub alg: Alg,
    /// JSON text of the public JWK, with `kid`, `use` and `alg` set.
    pub public_jwk: String,
    private_pkcs8: Zeroizing<Vec<u8>>,
}

#[cfg(feature = "openssl")]
impl KeyPair {
    /// PKCS#8 DER of the private key, to be sealed by the caller.
    pub fn private_pkcs8(&self) -> &[u8] {
        &self.private_pkcs8
    }
}

#[cfg(feature = "openssl")]
impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("public_jwk", &self.public_jwk)
            .finish_non_exhaustive()
    }
}

/// Generate a key pair for `alg` with OpenSSL, labelled with `kid`.
#[cfg(feature = "openssl")]
pub fn generate_key_pair(alg: Alg, kid: &str) -> Result<KeyPair, JoseError> {
    if kid.is_empty() {
        return Err(JoseError::InvalidKey("kid must not be empty".to_owned()));
    }
    if alg.is_verify_only() {
        return Err(verify_only(alg));
    }
    let pkey = match alg.kind() {
        KeyKind::Rsa => Rsa::generate(RSA_GENERATE_BITS)
            .and_then(PKey::from_rsa)
            .map_err(openssl_err("RSA key generation"))?,
        KeyKind::P256 => p256_group()
            .and_then(|group| EcKey::generate(group))
            .and_then(PKey::from_ec_key)
            .map_err(openssl_err("P-256 key generation"))?,
        KeyKind::Ed25519 => {
            PKey::generate_ed25519().map_err(openssl_err("Ed25519 key generation"))?
        }
        KeyKind::P384 | KeyKind::P521 => return Err(verify_only(alg)),
    };
    let public = public_key_of(&pkey, kid, alg)?;
    let private_pkcs8 = Zeroizing::new(
        pkey.private_key_to_pkcs8()
            .map_err(openssl_err("PKCS#8 encoding"))?,
    );
    Ok(KeyPair {
        kid: kid.to_owned(),
        alg,
        public_jwk: public.jwk_json().to_string(),
        private_pkcs8,
    })
}

/// The refusal of a private-key operation for a verification-only alg.
#[cfg(feature = "openssl")]
fn verify_only(alg: Alg) -> JoseError {
    JoseError::InvalidKey(format!("{alg} is accepted for verification only"))
}

/// The P-256 group, built once (group construction is slow in OpenSSL 3).
#[cfg(feature = "openssl")]
static P256_GROUP: LazyLock<Result<EcGroup, ErrorStack>> =
    LazyLock::new(|| EcGroup::from_curve_name(Nid::X9_62_PRIME256V1));

#[cfg(feature = "openssl")]
pub(crate) fn p256_group() -> Result<&'static EcGroup, ErrorStack> {
    P256_GROUP.as_ref().map_err(Clone::clone)
}

/// The public JWK (with kid/use/alg) of an OpenSSL private key.
#[cfg(feature = "openssl")]
pub(crate) fn public_key_of(
    pkey: &PKey<Private>,
    kid: &str,
    alg: Alg,
) -> Result<PublicKey, JoseError> {
    let err = openssl_err("public key export");
    let mut jwk = Map::new();
    jwk.insert("kty".into(), alg.kind().kty().into());
    match alg.kind() {
        KeyKind::Rsa => {
            let rsa = pkey.rsa().map_err(&err)?;
            jwk.insert("n".into(), b64(rsa.n().to_vec()).into());
            jwk.insert("e".into(), b64(rsa.e().to_vec()).into());
        }
        KeyKind::P256 => {
            let ec = pkey.ec_key().map_err(&err)?;
            let mut ctx = BigNumContext::new().map_err(&err)?;
            let mut x = BigNum::new().map_err(&err)?;
            let mut y = BigNum::new().map_err(&err)?;
            ec.public_key()
                .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
                .map_err(&err)?;
            jwk.insert("crv".into(), "P-256".into());
            jwk.insert("x".into(), b64(x.to_vec_padded(32).map_err(&err)?).into());
            jwk.insert("y".into(), b64(y.to_vec_padded(32).map_err(&err)?).into());
        }
        KeyKind::Ed25519 => {
            jwk.insert("crv".into(), "Ed25519".into());
            jwk.insert("x".into(), b64(pkey.raw_public_key().map_err(&err)?).into());
        }
        KeyKind::P384 | KeyKind::P521 => return Err(verify_only(alg)),
    }
    jwk.insert("kid".into(), kid.into());
    PublicKey::from_jwk_map(&jwk, Some(alg), false, Backend::OpenSsl)
}

/// Whether an OpenSSL private key is the right type and size for `alg`.
#[cfg(feature = "openssl")]
fn private_key_fits(pkey: &PKey<Private>, alg: Alg) -> bool {
    match alg.kind() {
        KeyKind::Rsa => {
            pkey.id() == Id::RSA && (RSA_MIN_BITS..=RSA_MAX_BITS).contains(&pkey.bits())
        }
        KeyKind::P256 => {
            pkey.id() == Id::EC
                && pkey.ec_key().ok().and_then(|ec| ec.group().curve_name())
                    == Some(Nid::X9_62_PRIME256V1)
        }
        KeyKind::Ed25519 => pkey.id() == Id::ED25519,
        KeyKind::P384 | KeyKind::P521 => false,
    }
}

/// The ready-made object behind a private key.
pub(crate) enum PrivateOp {
    #[cfg(feature = "openssl")]
    Sign(Signer),
    #[cfg(feature = "openssl")]
    Decrypt(Box<dyn JweDecrypter>),
    /// ECDH-ES+A256KW decryption in pure Rust ([`Backend::RustCrypto`]).
    #[cfg(feature = "rustcrypto")]
    PureEcdh(Box<crate::rustcrypto::EcdhKey>),
}

/// A signing key: ES256 on OpenSSL directly ([`crate::ec`]), the other
/// algorithms through josekit.
#[cfg(feature = "openssl")]
pub(crate) enum Signer {
    Es256(crate::ec::Es256Signer),
    Josekit(Box<dyn JwsSigner>),
}

#[cfg(feature = "openssl")]
impl Signer {
    /// The JWS signature of `input`, in its JWS form (raw R || S for ES256).
    pub(crate) fn sign(
        &self,
        input: &[u8],
    ) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(match self {
            Signer::Es256(signer) => signer.sign(input)?,
            Signer::Josekit(signer) => signer.sign(input)?,
        })
    }
}

#[cfg(feature = "openssl")]
impl PrivateOp {
    fn from_pkcs8(alg: Alg, der: &[u8], pkey: &PKey<Private>) -> Result<PrivateOp, JosekitError> {
        let unsupported = || {
            JosekitError::UnsupportedSignatureAlgorithm(
                std::io::Error::other("verification-only algorithm").into(),
            )
        };
        Ok(match alg {
            Alg::ES384 | Alg::ES512 | Alg::RS384 | Alg::RS512 | Alg::PS384 | Alg::PS512 => {
                return Err(unsupported())
            }
            Alg::RS256 => josekit_signer(jws::RS256.signer_from_der(der)?),
            Alg::PS256 => josekit_signer(jws::PS256.signer_from_der(der)?),
            Alg::ES256 => PrivateOp::Sign(Signer::Es256(
                crate::ec::Es256Signer::new(pkey)
                    .map_err(|err| JosekitError::InvalidKeyFormat(err.into()))?,
            )),
            Alg::EdDSA => josekit_signer(jws::EdDSA.signer_from_der(der)?),
            Alg::RsaOaep256 => {
                PrivateOp::Decrypt(Box::new(jwe::RSA_OAEP_256.decrypter_from_der(der)?))
            }
            Alg::EcdhEsA256kw => {
                PrivateOp::Decrypt(Box::new(jwe::ECDH_ES_A256KW.decrypter_from_der(der)?))
            }
        })
    }
}

#[cfg(feature = "openssl")]
fn josekit_signer(signer: impl JwsSigner + 'static) -> PrivateOp {
    PrivateOp::Sign(Signer::Josekit(Box::new(signer)))
}

pub(crate) struct PrivateInner {
    pub(crate) kid: String,
    pub(crate) alg: Alg,
    pub(crate) op: PrivateOp,
    public: PublicKey,
}

/// An opened (unsealed and parsed) private key, holding a ready josekit
/// signer or decrypter. Cheap to clone (shared); never prints key material.
#[derive(Clone)]
pub struct PrivateKey(pub(crate) Arc<PrivateInner>);

impl PrivateKey {
    /// Parse a PKCS#8 DER private key (from [`generate_key_pair`], after
    /// the caller unsealed it) once. Fails with `UnreadableKey` if `der` is
    /// not PKCS#8, and `InvalidKey` if the key inside is not a key for `alg`.
    #[cfg(feature = "openssl")]
    pub fn from_pkcs8(kid: &str, alg: Alg, der: &[u8]) -> Result<PrivateKey, JoseError> {
        let pkey = PKey::private_key_from_pkcs8(der).map_err(|_| JoseError::UnreadableKey)?;
        if !private_key_fits(&pkey, alg) {
            return Err(JoseError::InvalidKey(format!(
                "key {} does not hold a {alg} key",
                shorten(kid)
            )));
        }
        let public = public_key_of(&pkey, kid, alg)?;
        let op = PrivateOp::from_pkcs8(alg, der, &pkey).map_err(|_| {
            JoseError::InvalidKey(format!("key {} is not usable for {alg}", shorten(kid)))
        })?;
        Ok(PrivateKey(Arc::new(PrivateInner {
            kid: kid.to_owned(),
            alg,
            op,
            public,
        })))
    }

    /// Parse a PRIVATE JWK (JSON) into a decryption key: an EC P-256 key
    /// for ECDH-ES+A256KW or an RSA key (2048 to 8192 bits) for
    /// RSA-OAEP-256; the JWK's `alg`, when present, must be that one.
    /// For a resource server's own key. The kid is the JWK's `kid`, or
    /// empty if it has none. Anything else (public, symmetric, Ed25519 or
    /// other-curve keys, signing algorithms) is refused with `InvalidKey`.
    pub fn from_private_jwk(json: &str) -> Result<PrivateKey, JoseError> {
        Self::from_private_jwk_with(json, Backend::default())
    }

    /// As [`PrivateKey::from_private_jwk`], decrypting with the chosen
    /// backend. On [`Backend::RustCrypto`] an RSA key is refused with
    /// [`JoseError::Unsupported`]: RSA-OAEP-256 decryption needs OpenSSL.
    pub fn from_private_jwk_with(json: &str, backend: Backend) -> Result<PrivateKey, JoseError> {
        match backend {
            #[cfg(feature = "openssl")]
            Backend::OpenSsl => Self::from_private_jwk_openssl(json),
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => Self::from_private_jwk_pure(json),
        }
    }

    #[cfg(feature = "rustcrypto")]
    fn from_private_jwk_pure(json: &str) -> Result<PrivateKey, JoseError> {
        let not_jwk = || JoseError::InvalidKey("private JWK is not a JWK".to_owned());
        let jwk = crate::jwk::PrivateJwkMap(serde_json::from_str(json).map_err(|_| not_jwk())?);
        let jwk = &jwk.0;
        let text = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
        match (text("kty"), text("alg")) {
            (Some("EC"), None | Some("ECDH-ES+A256KW")) => {}
            (Some("RSA"), None | Some("RSA-OAEP-256")) => {
                return Err(JoseError::Unsupported(
                    crate::rustcrypto::RSA_OAEP_UNSUPPORTED,
                ))
            }
            _ => {
                return Err(JoseError::InvalidKey(
                    "private JWK must be an EC P-256 key for ECDH-ES+A256KW or an RSA key \
                     for RSA-OAEP-256"
                        .to_owned(),
                ))
            }
        }
        if !jwk.contains_key("d") {
            return Err(JoseError::InvalidKey(
                "private JWK has no private part (d)".to_owned(),
            ));
        }
        let ecdh = crate::rustcrypto::EcdhKey::from_jwk(jwk)?;
        let kid = text("kid").unwrap_or_default().to_owned();
        let mut public = Map::new();
        for name in ["kty", "crv", "x", "y", "kid"] {
            if let Some(value) = jwk.get(name) {
                public.insert(name.into(), value.clone());
            }
        }
        let public =
            PublicKey::from_jwk_map(&public, Some(Alg::EcdhEsA256kw), false, Backend::default())?;
        Ok(PrivateKey(Arc::new(PrivateInner {
            kid,
            alg: Alg::EcdhEsA256kw,
            op: PrivateOp::PureEcdh(Box::new(ecdh)),
            public,
        })))
    }

    #[cfg(feature = "openssl")]
    fn from_private_jwk_openssl(json: &str) -> Result<PrivateKey, JoseError> {
        let jwk = crate::jwk::PrivateJwk::from_json(json)
            .map_err(|_| JoseError::InvalidKey("private JWK is not a JWK".to_owned()))?;
        let alg = match (jwk.key_type(), jwk.algorithm()) {
            ("EC", None | Some("ECDH-ES+A256KW")) => Alg::EcdhEsA256kw,
            ("RSA", None | Some("RSA-OAEP-256")) => Alg::RsaOaep256,
            _ => {
                return Err(JoseError::InvalidKey(
                    "private JWK must be an EC P-256 key for ECDH-ES+A256KW or an RSA key \
                     for RSA-OAEP-256"
                        .to_owned(),
                ))
            }
        };
        if jwk.parameter("d").is_none() {
            return Err(JoseError::InvalidKey(
                "private JWK has no private part (d)".to_owned(),
            ));
        }
        let der = Zeroizing::new(
            match alg {
                Alg::EcdhEsA256kw => {
                    EcKeyPair::from_jwk(&jwk).map(|pair| pair.to_der_private_key())
                }
                _ => RsaKeyPair::from_jwk(&jwk).map(|pair| pair.to_der_private_key()),
            }
            .ok()
            .map(Zeroizing::new)
            .and_then(|der| PKey::private_key_from_der(&der).ok())
            .and_then(|pkey| pkey.private_key_to_pkcs8().ok())
            .ok_or_else(|| {
                JoseError::InvalidKey(format!("private JWK is not a usable {alg} key"))
            })?,
        );
        let kid = jwk.key_id().unwrap_or_default();
        PrivateKey::from_pkcs8(kid, alg, &der)
    }

    /// The key id; empty for a key read from a private JWK without `kid`.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    pub fn alg(&self) -> Alg {
        self.0.alg
    }

    pub fn key_use(&self) -> KeyUse {
        self.0.alg.key_use()
    }

    /// The matching public key (with kid, use and alg).
    pub fn public_key(&self) -> PublicKey {
        self.0.public.clone()
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("kid", &self.0.kid)
            .field("alg", &self.0.alg)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, feature = "openssl"))]
mod tests;
