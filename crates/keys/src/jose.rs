//! Every JOSE operation Gatehouse performs: key generation, public JWK
//! parsing, compact JWS signing and verification, compact JWE encryption and
//! decryption, and JWKS rendering.
//!
//! Untrusted input (tokens, client JWKs) is checked here before it reaches
//! josekit/OpenSSL: size caps, an algorithm allow-list, refusal of header
//! parameters that would let a token choose its own key (`jwk`, `jku`, `x5u`,
//! `x5c`) or change processing rules (`crit`, `zip`), and exact lengths for
//! every binary JWE part.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use josekit::jwe::enc::A256GCM;
use josekit::jwe::{self, JweContentEncryption as _, JweDecrypter, JweEncrypter, JweHeader};
use josekit::jwk::Jwk;
use josekit::jws::{self, JwsSigner, JwsVerifier};
use josekit::JoseError;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use rand::rngs::OsRng;
use rand::RngCore;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::kek::{wipe, SecretBytes};
use crate::{Kek, KeyError};

/// Largest compact JWS or JWE accepted, checked before any parsing.
pub(crate) const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Largest JWK JSON text accepted.
const MAX_JWK_LEN: usize = 16 * 1024;
/// Size of the RSA keys Gatehouse generates.
const RSA_GENERATE_BITS: u32 = 2048;
/// Accepted RSA modulus sizes. The upper bound stops a client key from
/// making every verification or encryption needlessly slow.
const RSA_MIN_BITS: u32 = 2048;
const RSA_MAX_BITS: u32 = 8192;
/// The only JWE content encryption Gatehouse uses and accepts.
const ENC_A256GCM: &str = "A256GCM";
/// AES-GCM IV and tag lengths for A256GCM.
const GCM_IV_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;
/// Length of a 256-bit CEK wrapped with AES key wrap (RFC 3394 adds 8 bytes).
const A256KW_WRAPPED_CEK_LEN: usize = 40;

/// JWK members that only a private or symmetric key has.
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/// JWS header parameters that are refused: a token must never name or carry
/// its own verification key, nor demand extensions we do not implement.
const REFUSED_JWS_HEADER: &[&str] = &["jwk", "jku", "x5u", "x5c", "crit"];
/// JWE header members that Gatehouse sets itself or that change processing,
/// so `encrypt` does not take them from `extra_header`.
const RESERVED_JWE_HEADER: &[&str] = &[
    "alg", "enc", "zip", "crit", "kid", "cty", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c",
    "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256",
];

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
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyUse {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sig" => Ok(KeyUse::Sig),
            "enc" => Ok(KeyUse::Enc),
            other => Err(KeyError::InvalidKey(format!(
                "unsupported key use {}; use sig or enc",
                shorten(other)
            ))),
        }
    }
}

/// The algorithms Gatehouse supports. RSA keys are 2048-bit, ES256 and
/// ECDH-ES+A256KW use P-256, EdDSA uses Ed25519.
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
}

/// The key type behind an algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    Ed25519,
}

impl KeyKind {
    const fn kty(self) -> &'static str {
        match self {
            KeyKind::Rsa => "RSA",
            KeyKind::P256 => "EC",
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

    /// The JOSE `alg` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::PS256 => "PS256",
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
            Alg::RsaOaep256 => "RSA-OAEP-256",
            Alg::EcdhEsA256kw => "ECDH-ES+A256KW",
        }
    }

    /// Whether keys of this algorithm sign or encrypt.
    pub const fn key_use(self) -> KeyUse {
        match self {
            Alg::RS256 | Alg::PS256 | Alg::ES256 | Alg::EdDSA => KeyUse::Sig,
            Alg::RsaOaep256 | Alg::EcdhEsA256kw => KeyUse::Enc,
        }
    }

    const fn kind(self) -> KeyKind {
        match self {
            Alg::RS256 | Alg::PS256 | Alg::RsaOaep256 => KeyKind::Rsa,
            Alg::ES256 | Alg::EcdhEsA256kw => KeyKind::P256,
            Alg::EdDSA => KeyKind::Ed25519,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = KeyError;

    /// Exact, case-sensitive JOSE names only.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Alg::ALL
            .iter()
            .copied()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| {
                KeyError::InvalidKey(format!(
                    "unsupported algorithm {}; use one of RS256, PS256, ES256, EdDSA, \
                     RSA-OAEP-256, ECDH-ES+A256KW",
                    shorten(s)
                ))
            })
    }
}

/// Caller-supplied text quoted in an error message, cut to a sane length.
fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}...")
    }
}

fn openssl_err(context: &'static str) -> impl Fn(ErrorStack) -> KeyError {
    move |err| KeyError::Crypto(format!("{context}: {err}"))
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A freshly generated key pair: the public JWK to publish and the private
/// key sealed under the KEK (PKCS#8 DER inside), ready to store.
#[derive(Clone)]
pub struct GeneratedKey {
    pub kid: String,
    pub alg: Alg,
    /// JSON text of the public JWK, with `kid`, `use` and `alg` set.
    pub public_jwk: String,
    /// PKCS#8 DER of the private key, sealed with [`Kek::seal`] under the kid.
    pub sealed_private_key: Vec<u8>,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("public_jwk", &self.public_jwk)
            .finish_non_exhaustive()
    }
}

/// Generate a key pair for `alg` with OpenSSL and seal its private half
/// under `kek`, bound to `kid`.
pub fn generate(alg: Alg, kid: &str, kek: &Kek) -> Result<GeneratedKey, KeyError> {
    if kid.is_empty() {
        return Err(KeyError::InvalidKey("kid must not be empty".to_owned()));
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
    };
    let public = public_key_of(&pkey, kid, alg)?;
    let der = SecretBytes::new(
        pkey.private_key_to_pkcs8()
            .map_err(openssl_err("PKCS#8 encoding"))?,
    );
    let sealed_private_key = kek.seal(kid, &der)?;
    Ok(GeneratedKey {
        kid: kid.to_owned(),
        alg,
        public_jwk: Value::Object(public.0.jwk.clone()).to_string(),
        sealed_private_key,
    })
}

/// The P-256 group, built once (group construction is slow in OpenSSL 3).
static P256_GROUP: LazyLock<Result<EcGroup, ErrorStack>> =
    LazyLock::new(|| EcGroup::from_curve_name(Nid::X9_62_PRIME256V1));

fn p256_group() -> Result<&'static EcGroup, ErrorStack> {
    P256_GROUP.as_ref().map_err(Clone::clone)
}

/// The public JWK (with kid/use/alg) of an OpenSSL private key.
fn public_key_of(pkey: &PKey<Private>, kid: &str, alg: Alg) -> Result<PublicKey, KeyError> {
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
    }
    jwk.insert("kid".into(), kid.into());
    PublicKey::from_jwk_map(&jwk, Some(alg))
}

/// Whether an OpenSSL private key is the right type and size for `alg`.
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
    }
}

/// The ready-made josekit object behind a private key.
enum PrivateOp {
    Sign(Box<dyn JwsSigner>),
    Decrypt(Box<dyn JweDecrypter>),
}

impl PrivateOp {
    fn from_pkcs8(alg: Alg, der: &[u8]) -> Result<PrivateOp, JoseError> {
        Ok(match alg {
            Alg::RS256 => PrivateOp::Sign(Box::new(jws::RS256.signer_from_der(der)?)),
            Alg::PS256 => PrivateOp::Sign(Box::new(jws::PS256.signer_from_der(der)?)),
            Alg::ES256 => PrivateOp::Sign(Box::new(jws::ES256.signer_from_der(der)?)),
            Alg::EdDSA => PrivateOp::Sign(Box::new(jws::EdDSA.signer_from_der(der)?)),
            Alg::RsaOaep256 => {
                PrivateOp::Decrypt(Box::new(jwe::RSA_OAEP_256.decrypter_from_der(der)?))
            }
            Alg::EcdhEsA256kw => {
                PrivateOp::Decrypt(Box::new(jwe::ECDH_ES_A256KW.decrypter_from_der(der)?))
            }
        })
    }
}

struct PrivateInner {
    kid: String,
    alg: Alg,
    op: PrivateOp,
    public: PublicKey,
}

/// An opened (unsealed and parsed) private key, holding a ready josekit
/// signer or decrypter. Cheap to clone (shared); never prints key material.
#[derive(Clone)]
pub struct PrivateKey(Arc<PrivateInner>);

impl PrivateKey {
    /// Unseal `sealed` (from [`generate`]) with `kek` and parse it once.
    /// Fails with `Unseal` for a wrong KEK or kid, and `InvalidKey` if the
    /// key inside is not a key for `alg`.
    pub fn open(kid: &str, alg: Alg, sealed: &[u8], kek: &Kek) -> Result<PrivateKey, KeyError> {
        let der = SecretBytes::new(kek.open(kid, sealed)?);
        let pkey = PKey::private_key_from_pkcs8(&der)
            .map_err(|_| KeyError::Unseal("sealed key is not a PKCS#8 private key"))?;
        if !private_key_fits(&pkey, alg) {
            return Err(KeyError::InvalidKey(format!(
                "key {} does not hold a {alg} key",
                shorten(kid)
            )));
        }
        let public = public_key_of(&pkey, kid, alg)?;
        let op = PrivateOp::from_pkcs8(alg, &der).map_err(|_| {
            KeyError::InvalidKey(format!("key {} is not usable for {alg}", shorten(kid)))
        })?;
        Ok(PrivateKey(Arc::new(PrivateInner {
            kid: kid.to_owned(),
            alg,
            op,
            public,
        })))
    }

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

/// The ready-made josekit object behind a public key.
enum PublicOp {
    Verify(Box<dyn JwsVerifier>),
    Encrypt(Box<dyn JweEncrypter>),
}

struct PublicInner {
    alg: Alg,
    kid: Option<String>,
    /// Public members plus kid/use/alg; nothing else from the input survives.
    jwk: Map<String, Value>,
    thumbprint: String,
    op: PublicOp,
}

/// A validated public JWK with a ready josekit verifier (signature algs) or
/// encrypter (encryption algs). Cheap to clone (shared).
#[derive(Clone)]
pub struct PublicKey(Arc<PublicInner>);

/// Read a string member of a JWK; `None` if absent, an error if not a string.
fn jwk_str<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, KeyError> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(KeyError::InvalidKey(format!(
            "JWK member {name} must be a string"
        ))),
    }
}

/// Read a required base64url JWK member: its text and decoded bytes.
fn jwk_b64<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<(&'a str, Vec<u8>), KeyError> {
    let text = jwk_str(jwk, name)?
        .ok_or_else(|| KeyError::InvalidKey(format!("JWK member {name} is required")))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| KeyError::InvalidKey(format!("JWK member {name} is not base64url")))?;
    Ok((text, bytes))
}

fn bignum(bytes: &[u8]) -> Result<BigNum, KeyError> {
    BigNum::from_slice(bytes).map_err(openssl_err("big number"))
}

impl PublicKey {
    /// Parse a public JWK that carries its own `alg`.
    pub fn from_jwk_json(json: &str) -> Result<PublicKey, KeyError> {
        Self::from_jwk_json_with_alg(json, None)
    }

    /// Parse a public JWK; its `alg` member wins, else `alg` is used, else
    /// it is refused. Private or symmetric keys, a `use` that contradicts the
    /// algorithm, the wrong key type or curve, RSA moduli outside 2048..=8192
    /// bits and EC points off P-256 are all refused with `InvalidKey`.
    pub fn from_jwk_json_with_alg(json: &str, alg: Option<Alg>) -> Result<PublicKey, KeyError> {
        if json.len() > MAX_JWK_LEN {
            return Err(KeyError::InvalidKey("JWK is too large".to_owned()));
        }
        let value: Value = serde_json::from_str(json)
            .map_err(|_| KeyError::InvalidKey("JWK is not valid JSON".to_owned()))?;
        Self::from_jwk_value(&value, alg)
    }

    /// As [`PublicKey::from_jwk_json_with_alg`], for an already-parsed JWK
    /// (for example one element of a client's `jwks`).
    pub fn from_jwk_value(jwk: &Value, alg: Option<Alg>) -> Result<PublicKey, KeyError> {
        match jwk {
            Value::Object(map) => Self::from_jwk_map(map, alg),
            _ => Err(KeyError::InvalidKey("JWK must be a JSON object".to_owned())),
        }
    }

    fn from_jwk_map(jwk: &Map<String, Value>, alg: Option<Alg>) -> Result<PublicKey, KeyError> {
        if PRIVATE_JWK_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(KeyError::InvalidKey(
                "JWK contains private key members; only public keys are accepted".to_owned(),
            ));
        }
        let kty = jwk_str(jwk, "kty")?
            .ok_or_else(|| KeyError::InvalidKey("JWK member kty is required".to_owned()))?;
        if kty == "oct" {
            return Err(KeyError::InvalidKey(
                "symmetric (kty oct) keys are not accepted".to_owned(),
            ));
        }
        let alg = match jwk_str(jwk, "alg")? {
            Some(name) => name.parse::<Alg>()?,
            None => alg.ok_or_else(|| {
                KeyError::InvalidKey("JWK has no alg and none was given".to_owned())
            })?,
        };
        let kind = alg.kind();
        if kty != kind.kty() {
            return Err(KeyError::InvalidKey(format!(
                "{alg} needs a {} key, not kty {}",
                kind.kty(),
                shorten(kty)
            )));
        }
        if let Some(key_use) = jwk_str(jwk, "use")? {
            if key_use != alg.key_use().as_str() {
                return Err(KeyError::InvalidKey(format!(
                    "JWK use {} contradicts alg {alg}",
                    shorten(key_use)
                )));
            }
        }
        let kid = jwk_str(jwk, "kid")?.map(str::to_owned);

        // Rebuild the JWK from validated public members only.
        let mut clean = Map::new();
        clean.insert("kty".into(), kty.into());
        let canonical = match kind {
            KeyKind::Rsa => {
                let (n_text, n) = jwk_b64(jwk, "n")?;
                let (e_text, e) = jwk_b64(jwk, "e")?;
                let n_bits = bignum(&n)?.num_bits();
                if !(RSA_MIN_BITS as i32..=RSA_MAX_BITS as i32).contains(&n_bits) {
                    return Err(KeyError::InvalidKey(format!(
                        "RSA modulus must be {RSA_MIN_BITS} to {RSA_MAX_BITS} bits, not {n_bits}"
                    )));
                }
                let e_num = bignum(&e)?;
                if e_num.num_bits() < 2 || e_num.num_bits() > 64 || !e_num.is_bit_set(0) {
                    return Err(KeyError::InvalidKey("RSA exponent is not valid".to_owned()));
                }
                clean.insert("n".into(), n_text.into());
                clean.insert("e".into(), e_text.into());
                format!(r#"{{"e":"{e_text}","kty":"RSA","n":"{n_text}"}}"#)
            }
            KeyKind::P256 => {
                if jwk_str(jwk, "crv")? != Some("P-256") {
                    return Err(KeyError::InvalidKey(format!("{alg} needs curve P-256")));
                }
                let (x_text, x) = jwk_b64(jwk, "x")?;
                let (y_text, y) = jwk_b64(jwk, "y")?;
                if !is_p256_point(&x, &y) {
                    return Err(KeyError::InvalidKey(
                        "EC key is not a valid P-256 point".to_owned(),
                    ));
                }
                clean.insert("crv".into(), "P-256".into());
                clean.insert("x".into(), x_text.into());
                clean.insert("y".into(), y_text.into());
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x_text}","y":"{y_text}"}}"#)
            }
            KeyKind::Ed25519 => {
                if jwk_str(jwk, "crv")? != Some("Ed25519") {
                    return Err(KeyError::InvalidKey(format!("{alg} needs curve Ed25519")));
                }
                let (x_text, x) = jwk_b64(jwk, "x")?;
                if x.len() != 32 || PKey::public_key_from_raw_bytes(&x, Id::ED25519).is_err() {
                    return Err(KeyError::InvalidKey(
                        "OKP key is not a valid Ed25519 public key".to_owned(),
                    ));
                }
                clean.insert("crv".into(), "Ed25519".into());
                clean.insert("x".into(), x_text.into());
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x_text}"}}"#)
            }
        };
        if let Some(kid) = &kid {
            clean.insert("kid".into(), kid.as_str().into());
        }
        clean.insert("use".into(), alg.key_use().as_str().into());
        clean.insert("alg".into(), alg.as_str().into());

        // RFC 7638: SHA-256 over the required members in lexicographic order
        // with no whitespace. The values are validated base64url, so they
        // need no JSON escaping.
        let thumbprint = b64(Sha256::digest(canonical.as_bytes()));

        let op = Self::josekit_op(alg, &clean)
            .map_err(|_| KeyError::InvalidKey(format!("JWK is not a usable {alg} key")))?;
        Ok(PublicKey(Arc::new(PublicInner {
            alg,
            kid,
            jwk: clean,
            thumbprint,
            op,
        })))
    }

    fn josekit_op(alg: Alg, clean: &Map<String, Value>) -> Result<PublicOp, JoseError> {
        let jwk = Jwk::from_map(clean.clone())?;
        Ok(match alg {
            Alg::RS256 => PublicOp::Verify(Box::new(jws::RS256.verifier_from_jwk(&jwk)?)),
            Alg::PS256 => PublicOp::Verify(Box::new(jws::PS256.verifier_from_jwk(&jwk)?)),
            Alg::ES256 => PublicOp::Verify(Box::new(jws::ES256.verifier_from_jwk(&jwk)?)),
            Alg::EdDSA => PublicOp::Verify(Box::new(jws::EdDSA.verifier_from_jwk(&jwk)?)),
            Alg::RsaOaep256 => {
                PublicOp::Encrypt(Box::new(jwe::RSA_OAEP_256.encrypter_from_jwk(&jwk)?))
            }
            Alg::EcdhEsA256kw => {
                PublicOp::Encrypt(Box::new(jwe::ECDH_ES_A256KW.encrypter_from_jwk(&jwk)?))
            }
        })
    }

    pub fn kid(&self) -> Option<&str> {
        self.0.kid.as_deref()
    }

    pub fn alg(&self) -> Alg {
        self.0.alg
    }

    pub fn key_use(&self) -> KeyUse {
        self.0.alg.key_use()
    }

    /// The JWK: public members plus kid (if any), use and alg.
    pub fn jwk_json(&self) -> Value {
        Value::Object(self.0.jwk.clone())
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub fn thumbprint(&self) -> String {
        self.0.thumbprint.clone()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.0.kid)
            .field("alg", &self.0.alg)
            .field("thumbprint", &self.0.thumbprint)
            .finish()
    }
}

/// Whether 32-byte `x`, `y` are the affine coordinates of a point on P-256.
/// This is the guard against the invalid-curve attack on ECDH. OpenSSL's
/// `EC_POINT_oct2point` refuses coordinates >= p and points off the curve;
/// `is_on_curve` states the property explicitly. (P-256 has cofactor 1, so
/// there is no small-subgroup point to refuse besides infinity, which the
/// uncompressed encoding cannot express.)
fn is_p256_point(x: &[u8], y: &[u8]) -> bool {
    if x.len() != 32 || y.len() != 32 {
        return false;
    }
    let (Ok(group), Ok(mut ctx)) = (p256_group(), BigNumContext::new()) else {
        return false;
    };
    let mut encoded = [0u8; 65];
    encoded[0] = 0x04;
    encoded[1..33].copy_from_slice(x);
    encoded[33..].copy_from_slice(y);
    EcPoint::from_bytes(group, &encoded, &mut ctx)
        .and_then(|point| point.is_on_curve(group, &mut ctx))
        .unwrap_or(false)
}

/// Decode a compact-serialization header segment into a JSON object.
fn decode_header(segment: &str) -> Result<Map<String, Value>, KeyError> {
    const BAD: KeyError = KeyError::InvalidToken("malformed header");
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| BAD)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(header)) => Ok(header),
        _ => Err(BAD),
    }
}

/// The protected header of a compact JWS or JWE, decoded but not
/// authenticated: for routing (which key, which kind of token) before the
/// real check, never for a decision.
pub fn peek_header(token: &str) -> Result<Map<String, Value>, KeyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(KeyError::InvalidToken("token too large"));
    }
    let first = token
        .split('.')
        .next()
        .ok_or(KeyError::InvalidToken("malformed header"))?;
    decode_header(first)
}

/// A compact JWS decoded without checking its signature (see
/// [`peek_claims`]). A distinct type from [`VerifiedJws`] so the two cannot
/// be confused.
#[derive(Clone, Debug)]
pub struct UnverifiedJws {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

/// Header and claims of a compact JWS, with the structural checks of
/// [`verify`] but no signature check: to learn who claims to have signed
/// (a client assertion's `iss` and `kid`) before looking the key up.
pub fn peek_claims(token: &str) -> Result<UnverifiedJws, KeyError> {
    let v = split_jws(token)?.into_verified()?;
    Ok(UnverifiedJws {
        header: v.header,
        claims: v.claims,
    })
}

/// Sign `claims` as a compact JWS with header `{"alg", "kid", "typ"}`.
pub fn sign(key: &PrivateKey, typ: &str, claims: &Map<String, Value>) -> Result<String, KeyError> {
    let PrivateOp::Sign(signer) = &key.0.op else {
        return Err(KeyError::InvalidKey(format!(
            "key {} ({}) is not a signing key",
            shorten(&key.0.kid),
            key.0.alg
        )));
    };
    let mut header = Map::new();
    header.insert("alg".into(), key.0.alg.as_str().into());
    header.insert("kid".into(), key.0.kid.as_str().into());
    header.insert("typ".into(), typ.into());
    let header = Value::Object(header).to_string();
    let payload = serde_json::to_vec(claims)
        .map_err(|err| KeyError::Crypto(format!("claims serialization: {err}")))?;

    let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 360);
    URL_SAFE_NO_PAD.encode_string(header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let signature = signer
        .sign(token.as_bytes())
        .map_err(|err| KeyError::Crypto(format!("signing failed: {err}")))?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    Ok(token)
}

/// A JWS whose signature checked out. The claims are NOT validated (exp,
/// iss, aud and the like are the caller's job).
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
}

/// Verify a compact JWS whose payload is a JSON object.
///
/// The header is checked before any key is touched: at most 16 KiB, a `kid`
/// is required, `alg` must be a signature algorithm in `allowed` (so `none`
/// and HS* never pass), and `jwk`, `jku`, `x5u`, `x5c` and `crit` are
/// refused. `lookup` maps the kid to a key, whose alg must equal the
/// header's. Errors are `InvalidToken` with a short reason that never quotes
/// the token.
pub fn verify(
    token: &str,
    allowed: &[Alg],
    lookup: impl Fn(&str) -> Option<PublicKey>,
) -> Result<VerifiedJws, KeyError> {
    let (header, payload) = verify_payload(token, allowed, lookup)?;
    match serde_json::from_slice(&payload) {
        Ok(Value::Object(claims)) => Ok(VerifiedJws { header, claims }),
        _ => Err(KeyError::InvalidToken("payload is not a JSON object")),
    }
}

/// The three segments of a compact JWS and its decoded header, after the
/// checks every JWS gets before any key is touched: size cap, structure,
/// no `crit`, and no header member that carries or points to a key.
struct JwsParts<'a> {
    header: Map<String, Value>,
    signing_input: &'a str,
    payload_b64: &'a str,
    signature_b64: &'a str,
}

fn split_jws(token: &str) -> Result<JwsParts<'_>, KeyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(KeyError::InvalidToken("token too large"));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(KeyError::InvalidToken("not a compact JWS"));
    };
    let header = decode_header(header_b64)?;
    if header.contains_key("crit") {
        return Err(KeyError::InvalidToken(
            "critical header parameters are not supported",
        ));
    }
    if REFUSED_JWS_HEADER
        .iter()
        .any(|name| header.contains_key(*name))
    {
        return Err(KeyError::InvalidToken(
            "header must not carry or point to a key",
        ));
    }
    Ok(JwsParts {
        header,
        signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
        payload_b64,
        signature_b64,
    })
}

impl JwsParts<'_> {
    fn signature(&self) -> Result<Vec<u8>, KeyError> {
        URL_SAFE_NO_PAD
            .decode(self.signature_b64)
            .map_err(|_| KeyError::InvalidToken("malformed signature"))
    }

    fn payload(&self) -> Result<Vec<u8>, KeyError> {
        URL_SAFE_NO_PAD
            .decode(self.payload_b64)
            .map_err(|_| KeyError::InvalidToken("malformed payload"))
    }

    fn alg(&self) -> Result<&str, KeyError> {
        self.header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(KeyError::InvalidToken("missing alg"))
    }

    /// The payload as a JSON object, with the header.
    fn into_verified(self) -> Result<VerifiedJws, KeyError> {
        let payload = self.payload()?;
        match serde_json::from_slice(&payload) {
            Ok(Value::Object(claims)) => Ok(VerifiedJws {
                header: self.header,
                claims,
            }),
            _ => Err(KeyError::InvalidToken("payload is not a JSON object")),
        }
    }
}

/// [`verify`] up to and including the signature check; returns the header
/// and the raw payload bytes.
fn verify_payload(
    token: &str,
    allowed: &[Alg],
    lookup: impl Fn(&str) -> Option<PublicKey>,
) -> Result<(Map<String, Value>, Vec<u8>), KeyError> {
    let parts = split_jws(token)?;
    let alg = parts
        .alg()?
        .parse::<Alg>()
        .ok()
        .filter(|alg| alg.key_use() == KeyUse::Sig && allowed.contains(alg))
        .ok_or(KeyError::InvalidToken("algorithm not allowed"))?;
    let kid = parts
        .header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(KeyError::InvalidToken("missing kid"))?;
    let key = lookup(kid).ok_or(KeyError::InvalidToken("unknown kid"))?;
    if key.alg() != alg {
        return Err(KeyError::InvalidToken("algorithm does not match the key"));
    }
    let PublicOp::Verify(verifier) = &key.0.op else {
        return Err(KeyError::InvalidToken("algorithm does not match the key"));
    };
    let signature = parts.signature()?;
    verifier
        .verify(parts.signing_input.as_bytes(), &signature)
        .map_err(|_| KeyError::InvalidToken("bad signature"))?;
    let payload = parts.payload()?;
    Ok((parts.header, payload))
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
        f.write_str(self.as_str())
    }
}

impl FromStr for HmacAlg {
    type Err = KeyError;

    /// Exact, case-sensitive JOSE names only.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HmacAlg::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| {
                KeyError::InvalidKey(format!(
                    "unsupported algorithm {}; use one of HS256, HS384, HS512",
                    shorten(s)
                ))
            })
    }
}

/// Whether `mac` is the HMAC of `input` under `key`, compared in constant
/// time (the hmac crate's `verify_slice`).
fn hmac_matches(alg: HmacAlg, key: &[u8], input: &[u8], mac: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    fn check<M: Mac + hmac::digest::KeyInit>(key: &[u8], input: &[u8], mac: &[u8]) -> bool {
        match <M as Mac>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(input);
                m.verify_slice(mac).is_ok()
            }
            Err(_) => false,
        }
    }
    match alg {
        HmacAlg::HS256 => check::<Hmac<sha2::Sha256>>(key, input, mac),
        HmacAlg::HS384 => check::<Hmac<sha2::Sha384>>(key, input, mac),
        HmacAlg::HS512 => check::<Hmac<sha2::Sha512>>(key, input, mac),
    }
}

/// Verify a compact JWS MACed with a shared `secret` (HS256/384/512),
/// whose payload is a JSON object.
///
/// The same header checks as [`verify`] (size, no `crit`, no key-carrying
/// members), then: `alg` must be one of `allowed` (so `none` and every
/// asymmetric algorithm fail), and the secret must be at least as long as
/// the hash output (RFC 7518 3.2) or the token is refused whatever its MAC.
/// A `kid`, if present, is ignored: the secret is the caller's choice.
pub(crate) fn verify_hmac(
    token: &str,
    allowed: &[HmacAlg],
    secret: &[u8],
) -> Result<VerifiedJws, KeyError> {
    let parts = split_jws(token)?;
    let alg = parts
        .alg()?
        .parse::<HmacAlg>()
        .ok()
        .filter(|alg| allowed.contains(alg))
        .ok_or(KeyError::InvalidToken("algorithm not allowed"))?;
    if secret.len() < alg.min_key_len() {
        return Err(KeyError::InvalidToken(
            "secret is shorter than the algorithm's hash",
        ));
    }
    let signature = parts.signature()?;
    if !hmac_matches(alg, secret, parts.signing_input.as_bytes(), &signature) {
        return Err(KeyError::InvalidToken("bad signature"));
    }
    parts.into_verified()
}

/// Encrypt `payload` to `recipient` as a compact JWE: the recipient's alg
/// (RSA-OAEP-256 or ECDH-ES+A256KW), `enc` A256GCM, `kid` = the recipient's
/// kid if it has one, `cty` if given (pass "JWT" for a nested token), and the
/// `extra_header` members (not marked critical; members Gatehouse sets or
/// that change processing, such as `zip` or `crit`, are refused). No
/// compression.
pub fn encrypt(
    payload: &str,
    recipient: &PublicKey,
    cty: Option<&str>,
    extra_header: Option<&Map<String, Value>>,
) -> Result<String, KeyError> {
    let (encrypter, header) = jwe_header(recipient, cty, extra_header)?;
    jwe::serialize_compact(payload.as_bytes(), &header, encrypter)
        .map_err(|err| KeyError::Crypto(format!("JWE encryption failed: {err}")))
}

/// The recipient's encrypter and the protected header of a JWE to it:
/// `alg`, `enc` A256GCM, `kid`, `cty` if given, and the caller's members
/// (those Gatehouse sets or that change processing are refused).
fn jwe_header<'a>(
    recipient: &'a PublicKey,
    cty: Option<&str>,
    extra_header: Option<&Map<String, Value>>,
) -> Result<(&'a dyn JweEncrypter, JweHeader), KeyError> {
    let PublicOp::Encrypt(encrypter) = &recipient.0.op else {
        return Err(KeyError::InvalidKey(format!(
            "{} keys cannot encrypt",
            recipient.0.alg
        )));
    };
    let mut header = Map::new();
    header.insert("alg".into(), recipient.0.alg.as_str().into());
    header.insert("enc".into(), ENC_A256GCM.into());
    if let Some(kid) = &recipient.0.kid {
        header.insert("kid".into(), kid.as_str().into());
    }
    if let Some(cty) = cty {
        header.insert("cty".into(), cty.into());
    }
    for (name, value) in extra_header.into_iter().flatten() {
        if RESERVED_JWE_HEADER.contains(&name.as_str()) {
            return Err(KeyError::InvalidKey(format!(
                "JWE header member {} cannot be set by the caller",
                shorten(name)
            )));
        }
        header.insert(name.clone(), value.clone());
    }
    let header = JweHeader::from_map(header)
        .map_err(|_| KeyError::InvalidKey("JWE header member has the wrong type".to_owned()))?;
    Ok((encrypter.as_ref(), header))
}

/// Encrypt `payload` for Gatehouse itself as a compact JWE with direct
/// symmetric encryption (RFC 7518 4.5, `alg: dir`, `enc: A256GCM`): the key
/// is the content-encryption key, so there is no key agreement or wrapping,
/// and the encrypted-key part is empty. For tokens Gatehouse is both sender
/// and only recipient of. Header rules as in [`encrypt`].
pub fn encrypt_dir(
    payload: &str,
    key: &Kek,
    kid: &str,
    cty: Option<&str>,
    extra_header: Option<&Map<String, Value>>,
) -> Result<String, KeyError> {
    let mut header = Map::new();
    header.insert("alg".into(), "dir".into());
    header.insert("enc".into(), ENC_A256GCM.into());
    header.insert("kid".into(), kid.into());
    if let Some(cty) = cty {
        header.insert("cty".into(), cty.into());
    }
    for (name, value) in extra_header.into_iter().flatten() {
        if RESERVED_JWE_HEADER.contains(&name.as_str()) {
            return Err(KeyError::InvalidKey(format!(
                "JWE header member {} cannot be set by the caller",
                shorten(name)
            )));
        }
        header.insert(name.clone(), value.clone());
    }
    let header_b64 = b64(serde_json::to_vec(&header)
        .map_err(|_| KeyError::InvalidKey("unencodable JWE header".to_owned()))?);
    let mut iv = [0u8; GCM_IV_LEN];
    OsRng.fill_bytes(&mut iv);
    let (ciphertext, tag) = A256GCM
        .encrypt(
            key.bytes(),
            Some(&iv),
            payload.as_bytes(),
            header_b64.as_bytes(),
        )
        .map_err(|err| KeyError::Crypto(format!("JWE encryption failed: {err}")))?;
    let tag = tag.ok_or_else(|| KeyError::Crypto("JWE encryption gave no tag".to_owned()))?;
    Ok(format!(
        "{header_b64}..{}.{}.{}",
        b64(iv),
        b64(ciphertext),
        b64(tag)
    ))
}

/// Decrypt a compact JWE made by [`encrypt_dir`]. `key_for` gets the
/// header's `kid` and returns the key, if it is one of Gatehouse's. The
/// same refusals as [`decrypt`], plus: `alg` must be `dir` and the
/// encrypted-key part empty. Returns the header and the plaintext.
pub fn decrypt_dir<F>(token: &str, key_for: F) -> Result<(Map<String, Value>, Vec<u8>), KeyError>
where
    F: Fn(&str) -> Option<Kek>,
{
    if token.len() > MAX_TOKEN_LEN {
        return Err(KeyError::InvalidToken("token too large"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, "", iv_b64, ciphertext_b64, tag_b64] = parts[..] else {
        return Err(KeyError::InvalidToken(
            "not a compact JWE with direct encryption",
        ));
    };
    let header = decode_header(header_b64)?;
    if header.contains_key("zip") || header.contains_key("crit") {
        return Err(KeyError::InvalidToken("zip and crit are not accepted"));
    }
    if header.get("alg").and_then(Value::as_str) != Some("dir") {
        return Err(KeyError::InvalidToken("algorithm not allowed"));
    }
    if header.get("enc").and_then(Value::as_str) != Some(ENC_A256GCM) {
        return Err(KeyError::InvalidToken("content encryption must be A256GCM"));
    }
    let key = header
        .get("kid")
        .and_then(Value::as_str)
        .and_then(&key_for)
        .ok_or(KeyError::InvalidToken("no decryption key for this kid"))?;
    let iv = jwe_part(iv_b64)?;
    let ciphertext = jwe_part(ciphertext_b64)?;
    let tag = jwe_part(tag_b64)?;
    if iv.len() != GCM_IV_LEN || tag.len() != GCM_TAG_LEN {
        return Err(KeyError::InvalidToken("malformed JWE"));
    }
    let plaintext = A256GCM
        .decrypt(
            key.bytes(),
            Some(&iv),
            &ciphertext,
            header_b64.as_bytes(),
            Some(&tag),
        )
        .map_err(|_| KeyError::InvalidToken("decryption failed"))?;
    Ok((header, plaintext))
}

/// Check the ECDH-ES ephemeral public key: an EC point on P-256, refused
/// before any key agreement (the invalid-curve attack).
fn check_epk(header: &Map<String, Value>) -> Result<(), KeyError> {
    let epk = header
        .get("epk")
        .and_then(Value::as_object)
        .ok_or(KeyError::InvalidToken("missing ephemeral key"))?;
    let member = |name: &str| epk.get(name).and_then(Value::as_str);
    if member("kty") != Some("EC") || member("crv") != Some("P-256") {
        return Err(KeyError::InvalidToken("ephemeral key must be on P-256"));
    }
    let coordinate = |name: &str| {
        member(name)
            .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
            .ok_or(KeyError::InvalidToken("malformed ephemeral key"))
    };
    if !is_p256_point(&coordinate("x")?, &coordinate("y")?) {
        return Err(KeyError::InvalidToken(
            "ephemeral key is not a valid P-256 point",
        ));
    }
    Ok(())
}

/// Decode one binary JWE part.
fn jwe_part(segment: &str) -> Result<Vec<u8>, KeyError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| KeyError::InvalidToken("malformed JWE"))
}

/// A compact JWE with a wrapped key (RSA-OAEP-256 or ECDH-ES+A256KW,
/// A256GCM), after every check that needs no key.
struct JweParts<'a> {
    /// The protected header exactly as it appears in the token (the AAD).
    header_b64: &'a str,
    header: Map<String, Value>,
    alg: Alg,
    encrypted_key: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

/// Split and check a compact JWE before any key is touched: size cap,
/// structure, no `zip` or `crit`, an alg of [`KeyUse::Enc`], enc A256GCM,
/// a string kid if any, exact part lengths (IV 12 bytes, tag 16 bytes,
/// wrapped key 40 bytes for ECDH-ES+A256KW; a short GCM tag would weaken
/// authentication) and, for ECDH-ES, an ephemeral key on P-256.
fn split_jwe(token: &str) -> Result<JweParts<'_>, KeyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(KeyError::InvalidToken("token too large"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, key_b64, iv_b64, ciphertext_b64, tag_b64] = parts[..] else {
        return Err(KeyError::InvalidToken("not a compact JWE"));
    };
    let header = decode_header(header_b64)?;
    if header.contains_key("zip") {
        return Err(KeyError::InvalidToken("compressed JWE is not accepted"));
    }
    if header.contains_key("crit") {
        return Err(KeyError::InvalidToken(
            "critical header parameters are not supported",
        ));
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(|alg| alg.parse::<Alg>().ok())
        .filter(|alg| alg.key_use() == KeyUse::Enc)
        .ok_or(KeyError::InvalidToken("algorithm not allowed"))?;
    if header.get("enc").and_then(Value::as_str) != Some(ENC_A256GCM) {
        return Err(KeyError::InvalidToken("content encryption must be A256GCM"));
    }
    if header.get("kid").is_some_and(|kid| !kid.is_string()) {
        return Err(KeyError::InvalidToken("malformed kid"));
    }
    let encrypted_key = jwe_part(key_b64)?;
    let iv = jwe_part(iv_b64)?;
    let ciphertext = jwe_part(ciphertext_b64)?;
    let tag = jwe_part(tag_b64)?;
    if iv.len() != GCM_IV_LEN || tag.len() != GCM_TAG_LEN {
        return Err(KeyError::InvalidToken("malformed JWE"));
    }
    let key_len_ok = match alg {
        Alg::EcdhEsA256kw => encrypted_key.len() == A256KW_WRAPPED_CEK_LEN,
        _ => !encrypted_key.is_empty() && encrypted_key.len() <= (RSA_MAX_BITS / 8) as usize,
    };
    if !key_len_ok {
        return Err(KeyError::InvalidToken("malformed JWE"));
    }
    if alg == Alg::EcdhEsA256kw {
        check_epk(&header)?;
    }
    Ok(JweParts {
        header_b64,
        header,
        alg,
        encrypted_key,
        iv,
        ciphertext,
        tag,
    })
}

impl JweParts<'_> {
    /// AES-256-GCM decryption with `cek`; the tag authenticates the
    /// protected header (as it appears in the token) and the ciphertext.
    fn open(&self, cek: &[u8]) -> Result<Vec<u8>, JoseError> {
        A256GCM.decrypt(
            cek,
            Some(&self.iv),
            &self.ciphertext,
            self.header_b64.as_bytes(),
            Some(&self.tag),
        )
    }
}

/// Decrypt a compact JWE addressed to one of Gatehouse's own encryption
/// keys. `lookup` gets the header `kid` (or `None` if the token has none)
/// and returns the candidate keys as anything iterable over `PrivateKey`,
/// `&PrivateKey` or `Arc<PrivateKey>` (an `Option` for a kid map, a `Vec`
/// for "all current keys"); those whose alg matches the header are tried in
/// order. Returns the header and the plaintext.
///
/// Refused before any private-key operation: everything [`split_jwe`]
/// refuses (tokens over 16 KiB, `zip`, `crit`, an alg other than
/// RSA-OAEP-256 / ECDH-ES+A256KW, an enc other than A256GCM, an ECDH-ES
/// ephemeral key that is not a P-256 point, parts of the wrong length).
pub fn decrypt<F, I>(token: &str, lookup: F) -> Result<(Map<String, Value>, Vec<u8>), KeyError>
where
    F: Fn(Option<&str>) -> I,
    I: IntoIterator,
    I::Item: Borrow<PrivateKey>,
{
    let parts = split_jwe(token)?;
    let kid = parts.header.get("kid").and_then(Value::as_str);
    let jwe_header = JweHeader::from_map(parts.header.clone())
        .map_err(|_| KeyError::InvalidToken("malformed header"))?;

    let mut tried = false;
    for candidate in lookup(kid) {
        let key: &PrivateKey = candidate.borrow();
        let PrivateOp::Decrypt(decrypter) = &key.0.op else {
            continue;
        };
        if key.alg() != parts.alg {
            continue;
        }
        tried = true;
        // RFC 7516 §11.5: if unwrapping the CEK fails, go on with a random
        // CEK so a bad wrapped key and a bad ciphertext fail alike.
        let mut cek = match decrypter.decrypt(Some(&parts.encrypted_key), &A256GCM, &jwe_header) {
            Ok(cek) if cek.len() == A256GCM.key_len() => cek.into_owned(),
            _ => {
                let mut random = vec![0u8; A256GCM.key_len()];
                OsRng.fill_bytes(&mut random);
                random
            }
        };
        let plaintext = parts.open(&cek);
        wipe(&mut cek);
        if let Ok(plaintext) = plaintext {
            return Ok((parts.header, plaintext));
        }
    }
    Err(KeyError::InvalidToken(if tried {
        "decryption failed"
    } else {
        "no decryption key for this kid and algorithm"
    }))
}

/// Encrypt `payload` to `recipient` exactly as [`encrypt`] does (same
/// header rules, same key wrapping), except that the content-encryption
/// key is the caller's `cek` instead of a random one. The recipient
/// unwraps and decrypts as usual; whoever can derive `cek` again opens the
/// token without the recipient's private key ([`decrypt_with_cek`]). Use
/// each `cek` for one token only.
pub(crate) fn encrypt_with_cek(
    payload: &str,
    recipient: &PublicKey,
    cek: &Kek,
    cty: Option<&str>,
    extra_header: Option<&Map<String, Value>>,
) -> Result<String, KeyError> {
    let crypto = |err: JoseError| KeyError::Crypto(format!("JWE encryption failed: {err}"));
    let (encrypter, in_header) = jwe_header(recipient, cty, extra_header)?;
    // The same steps as josekit's compact serialization: ask the algorithm
    // for a CEK of its own (only direct key agreement has one), then wrap
    // ours; ECDH-ES adds its ephemeral key to the output header.
    let mut out_header = in_header.clone();
    if encrypter
        .compute_content_encryption_key(&A256GCM, &in_header, &mut out_header)
        .map_err(crypto)?
        .is_some()
    {
        return Err(KeyError::InvalidKey(format!(
            "{} does not wrap a content-encryption key",
            recipient.0.alg
        )));
    }
    let encrypted_key = encrypter
        .encrypt(cek.bytes(), &in_header, &mut out_header)
        .map_err(crypto)?
        .ok_or_else(|| KeyError::Crypto("JWE encryption gave no wrapped key".to_owned()))?;
    let header_b64 = b64(serde_json::to_vec(out_header.claims_set())
        .map_err(|_| KeyError::InvalidKey("unencodable JWE header".to_owned()))?);
    let mut iv = [0u8; GCM_IV_LEN];
    OsRng.fill_bytes(&mut iv);
    let (ciphertext, tag) = A256GCM
        .encrypt(
            cek.bytes(),
            Some(&iv),
            payload.as_bytes(),
            header_b64.as_bytes(),
        )
        .map_err(crypto)?;
    let tag = tag.ok_or_else(|| KeyError::Crypto("JWE encryption gave no tag".to_owned()))?;
    Ok(format!(
        "{header_b64}.{}.{}.{}.{}",
        b64(encrypted_key),
        b64(iv),
        b64(ciphertext),
        b64(tag)
    ))
}

/// Decrypt a compact JWE made by [`encrypt_with_cek`] with its
/// content-encryption key `cek`; the wrapped key is not used. The same
/// refusals as [`decrypt`]. The AES-GCM tag authenticates the protected
/// header and the ciphertext, so any change to either (a header copied
/// onto another body, a made-up body) fails. Returns the header and the
/// plaintext.
pub(crate) fn decrypt_with_cek(
    token: &str,
    cek: &Kek,
) -> Result<(Map<String, Value>, Vec<u8>), KeyError> {
    let parts = split_jwe(token)?;
    let plaintext = parts
        .open(cek.bytes())
        .map_err(|_| KeyError::InvalidToken("decryption failed"))?;
    Ok((parts.header, plaintext))
}

/// The JWKS document `{"keys":[...]}` for `keys`, public members only.
pub fn render_jwks(keys: &[PublicKey]) -> Vec<u8> {
    let keys: Vec<Value> = keys.iter().map(PublicKey::jwk_json).collect();
    let mut doc = Map::new();
    doc.insert("keys".into(), Value::Array(keys));
    Value::Object(doc).to_string().into_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::OnceLock;

    use hmac::{Hmac, Mac};
    use serde_json::json;

    use super::*;

    fn kek() -> &'static Kek {
        static KEK: OnceLock<Kek> = OnceLock::new();
        KEK.get_or_init(Kek::generate)
    }

    /// One generated and opened key per algorithm, shared by the tests
    /// (RSA generation is slow).
    fn key(alg: Alg) -> (GeneratedKey, PrivateKey) {
        static KEYS: OnceLock<Vec<(GeneratedKey, PrivateKey)>> = OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            Alg::ALL
                .iter()
                .map(|&alg| {
                    let generated = generate(alg, &format!("test-{alg}"), kek()).unwrap();
                    let private =
                        PrivateKey::open(&generated.kid, alg, &generated.sealed_private_key, kek())
                            .unwrap();
                    (generated, private)
                })
                .collect()
        });
        let index = Alg::ALL.iter().position(|a| *a == alg).unwrap();
        keys[index].clone()
    }

    /// A second, independent key of the same algorithm and kid.
    fn other_key(alg: Alg) -> PrivateKey {
        let kid = format!("test-{alg}");
        let generated = generate(alg, &kid, kek()).unwrap();
        PrivateKey::open(&kid, alg, &generated.sealed_private_key, kek()).unwrap()
    }

    fn claims() -> Map<String, Value> {
        json!({"iss": "https://gatehouse.test", "sub": "alice", "exp": 2_000_000_000u64})
            .as_object()
            .unwrap()
            .clone()
    }

    fn lookup_for(key: &PrivateKey) -> impl Fn(&str) -> Option<PublicKey> {
        let public = key.public_key();
        move |kid| (Some(kid) == public.kid()).then(|| public.clone())
    }

    fn invalid_token(result: Result<impl fmt::Debug, KeyError>) -> &'static str {
        match result {
            Err(KeyError::InvalidToken(reason)) => reason,
            other => panic!("expected InvalidToken, got {other:?}"),
        }
    }

    fn invalid_key(result: Result<impl fmt::Debug, KeyError>) -> String {
        match result {
            Err(KeyError::InvalidKey(reason)) => reason,
            other => panic!("expected InvalidKey, got {other:?}"),
        }
    }

    /// Sign an arbitrary header with a key's real signer, to build tokens
    /// whose only fault is the header.
    fn sign_raw(key: &PrivateKey, header: &Value, payload: &[u8]) -> String {
        let PrivateOp::Sign(signer) = &key.0.op else {
            panic!("not a signing key")
        };
        let input = format!("{}.{}", b64(header.to_string()), b64(payload));
        let signature = signer.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(signature))
    }

    fn b64_json(value: &Value) -> String {
        b64(value.to_string())
    }

    fn decode_b64_json(segment: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn types_are_send_and_sync() {
        assert_send_sync::<PrivateKey>();
        assert_send_sync::<PublicKey>();
        assert_send_sync::<GeneratedKey>();
        assert_send_sync::<Kek>();
        assert_send_sync::<crate::SecretHasher>();
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
    fn generated_public_jwks_are_public_and_labelled() {
        for &alg in Alg::ALL {
            let (generated, private) = key(alg);
            assert_eq!(generated.alg, alg);
            let jwk: Value = serde_json::from_str(&generated.public_jwk).unwrap();
            assert_eq!(jwk["kid"], generated.kid.as_str());
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(jwk["use"], alg.key_use().as_str());
            assert_eq!(jwk["kty"], alg.kind().kty());
            for member in PRIVATE_JWK_MEMBERS {
                assert!(jwk.get(member).is_none(), "{alg} has {member}");
            }
            // The opened private key reports the same public key.
            assert_eq!(private.public_key().jwk_json(), jwk);
            assert_eq!(private.kid(), generated.kid);
            assert_eq!(private.alg(), alg);
            // And the published JWK parses back.
            let public = PublicKey::from_jwk_json(&generated.public_jwk).unwrap();
            assert_eq!(public.alg(), alg);
            assert_eq!(public.key_use(), alg.key_use());
            assert_eq!(public.kid(), Some(generated.kid.as_str()));
            assert_eq!(public.thumbprint(), private.public_key().thumbprint());
        }
        let (_, rsa) = key(Alg::RS256);
        let n = URL_SAFE_NO_PAD
            .decode(rsa.public_key().jwk_json()["n"].as_str().unwrap())
            .unwrap();
        assert_eq!(n.len() * 8, 2048);
    }

    #[test]
    fn generate_refuses_empty_kid() {
        invalid_key(generate(Alg::ES256, "", kek()));
    }

    #[test]
    fn sign_verify_round_trip_every_signature_alg() {
        for &alg in Alg::ALL.iter().filter(|a| a.key_use() == KeyUse::Sig) {
            let (generated, private) = key(alg);
            let token = sign(&private, "JWT", &claims()).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3);
            assert_eq!(
                decode_b64_json(parts[0]),
                json!({"alg": alg.as_str(), "kid": generated.kid, "typ": "JWT"})
            );
            let public = PublicKey::from_jwk_json(&generated.public_jwk).unwrap();
            let lookup = |kid: &str| (kid == generated.kid).then(|| public.clone());
            let verified = verify(&token, &[alg], lookup).unwrap();
            assert_eq!(verified.claims, claims());
            assert_eq!(verified.header["typ"], "JWT");
            assert_eq!(verified.header["kid"], generated.kid.as_str());
        }
    }

    #[test]
    fn sign_refuses_encryption_keys() {
        let (_, enc) = key(Alg::RsaOaep256);
        invalid_key(sign(&enc, "JWT", &claims()));
    }

    /// RS256, PS256, ES256 and EdDSA tokens from `sign` verify with ring,
    /// an implementation independent of josekit and OpenSSL.
    #[test]
    fn signatures_verify_with_ring() {
        use ring::signature;
        for &alg in &[Alg::RS256, Alg::PS256, Alg::ES256, Alg::EdDSA] {
            let (_, private) = key(alg);
            let token = sign(&private, "JWT", &claims()).unwrap();
            let (input, sig) = token.rsplit_once('.').unwrap();
            let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
            let jwk = private.public_key().jwk_json();
            let member = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
            let result = match alg {
                Alg::RS256 | Alg::PS256 => {
                    let params = if alg == Alg::RS256 {
                        &signature::RSA_PKCS1_2048_8192_SHA256
                    } else {
                        &signature::RSA_PSS_2048_8192_SHA256
                    };
                    signature::RsaPublicKeyComponents {
                        n: member("n"),
                        e: member("e"),
                    }
                    .verify(params, input.as_bytes(), &sig)
                }
                Alg::ES256 => {
                    let mut point = vec![4u8];
                    point.extend(member("x"));
                    point.extend(member("y"));
                    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                        .verify(input.as_bytes(), &sig)
                }
                _ => signature::UnparsedPublicKey::new(&signature::ED25519, member("x"))
                    .verify(input.as_bytes(), &sig),
            };
            assert!(result.is_ok(), "{alg} signature rejected by ring");
        }
    }

    const RFC7520_RSA_N: &str = "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2\
        jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5y\
        dQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGq\
        C0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__\
        kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw";

    /// RFC 7520 §4.1: RSA v1.5 signature with the §3.3 "bilbo.baggins" key.
    /// Its payload is text, not a JSON object, so the signature check is
    /// exercised through `verify_payload`.
    #[test]
    fn rfc7520_rs256_vector() {
        let jwk = json!({
            "kty": "RSA",
            "kid": "bilbo.baggins@hobbiton.example",
            "use": "sig",
            "n": RFC7520_RSA_N,
            "e": "AQAB",
        });
        let public = PublicKey::from_jwk_json_with_alg(&jwk.to_string(), Some(Alg::RS256)).unwrap();
        let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9.\
            SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0\
            ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5v\
            IGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4.\
            MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996i\
            vp83xuglII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1u\
            SNCrUCTJDt5aAE6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAh\
            b6L2aXic1U12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18\
            kDquDg";
        let lookup = |kid: &str| (kid == "bilbo.baggins@hobbiton.example").then(|| public.clone());
        let (header, payload) = verify_payload(token, &[Alg::RS256], lookup).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert!(String::from_utf8(payload)
            .unwrap()
            .starts_with("It\u{2019}s a dangerous business, Frodo"));
        // Through `verify`, the signature passes and the text payload is refused.
        assert_eq!(
            invalid_token(verify(token, &[Alg::RS256], lookup)),
            "payload is not a JSON object"
        );
        // One flipped signature bit fails.
        let mut tampered: Vec<char> = token.chars().collect();
        let i = tampered.len() - 10;
        tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        assert_eq!(
            invalid_token(verify_payload(&tampered, &[Alg::RS256], lookup)),
            "bad signature"
        );
    }

    /// RFC 7638 §3.1 worked example.
    #[test]
    fn rfc7638_thumbprint_vector() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29",
        });
        let public = PublicKey::from_jwk_json(&jwk.to_string()).unwrap();
        assert_eq!(
            public.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn verify_refuses_alg_none() {
        let (generated, private) = key(Alg::RS256);
        let header = b64_json(&json!({"alg": "none", "kid": generated.kid, "typ": "JWT"}));
        let payload = b64_json(&Value::Object(claims()));
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            let reason = invalid_token(verify(&token, Alg::ALL, lookup_for(&private)));
            assert!(
                reason == "algorithm not allowed" || reason == "not a compact JWS",
                "{reason}"
            );
        }
        assert_eq!(
            invalid_token(verify(
                &format!("{header}.{payload}."),
                Alg::ALL,
                lookup_for(&private)
            )),
            "algorithm not allowed"
        );
        // A literal "eyJ..." alg-none token with a kid the lookup knows.
        let token = "eyJhbGciOiJub25lIiwia2lkIjoidGVzdC1SUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.";
        assert_eq!(
            invalid_token(verify(token, Alg::ALL, lookup_for(&private))),
            "algorithm not allowed"
        );
    }

    /// The classic confusion: HS256 "signed" with the RSA public key as the
    /// HMAC secret. HS256 is never in the allow-list, whatever the caller passes.
    #[test]
    fn verify_refuses_hs256_with_public_key_as_secret() {
        let (generated, private) = key(Alg::RS256);
        let jwk = private.public_key().jwk_json();
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
        let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
        let rsa = Rsa::from_public_components(bignum(&n).unwrap(), bignum(&e).unwrap()).unwrap();
        let pem = rsa.public_key_to_pem().unwrap();
        let der = rsa.public_key_to_der().unwrap();
        for secret in [pem, der, n, generated.public_jwk.clone().into_bytes()] {
            let header = b64_json(&json!({"alg": "HS256", "kid": generated.kid, "typ": "JWT"}));
            let input = format!("{header}.{}", b64_json(&Value::Object(claims())));
            let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
            mac.update(input.as_bytes());
            let token = format!("{input}.{}", b64(mac.finalize().into_bytes()));
            assert_eq!(
                invalid_token(verify(&token, Alg::ALL, lookup_for(&private))),
                "algorithm not allowed"
            );
        }
    }

    #[test]
    fn verify_refuses_unknown_and_hostile_kids() {
        let (_, private) = key(Alg::ES256);
        let seen = std::sync::Mutex::new(Vec::new());
        for kid in [
            "no-such-key",
            "../../../etc/passwd",
            "' OR '1'='1'; DROP TABLE signing_keys; --",
            "kid\u{0}with\nnul",
            "",
        ] {
            let token = sign_raw(
                &private,
                &json!({"alg": "ES256", "kid": kid, "typ": "JWT"}),
                Value::Object(claims()).to_string().as_bytes(),
            );
            let result = verify(&token, &[Alg::ES256], |k: &str| {
                seen.lock().unwrap().push(k.to_owned());
                None
            });
            let err = result.unwrap_err();
            assert!(matches!(err, KeyError::InvalidToken("unknown kid")));
            // The error never echoes the token's contents.
            if !kid.is_empty() {
                assert!(!err.to_string().contains(kid));
            }
        }
        // The kid reached the lookup verbatim, as an opaque string.
        assert_eq!(seen.lock().unwrap()[1], "../../../etc/passwd");

        // A token without a kid.
        let token = sign_raw(
            &private,
            &json!({"alg": "ES256", "typ": "JWT"}),
            Value::Object(claims()).to_string().as_bytes(),
        );
        assert_eq!(
            invalid_token(verify(&token, &[Alg::ES256], lookup_for(&private))),
            "missing kid"
        );
    }

    #[test]
    fn verify_refuses_key_carrying_headers_and_crit() {
        let (generated, private) = key(Alg::ES256);
        let attacker = other_key(Alg::ES256);
        let attacker_jwk = attacker.public_key().jwk_json();
        let injections = [
            ("jwk", attacker_jwk),
            ("jku", json!("https://attacker.example/jwks.json")),
            ("x5u", json!("https://attacker.example/cert.pem")),
            ("x5c", json!(["MIIBszCCAVmgAwIBAgIUXo"])),
            ("crit", json!(["exp"])),
        ];
        for (name, value) in injections {
            let mut header = json!({"alg": "ES256", "kid": generated.kid, "typ": "JWT"});
            header[name] = value;
            // Signed by the attacker's key, named by the injected member...
            let forged = sign_raw(
                &attacker,
                &header,
                Value::Object(claims()).to_string().as_bytes(),
            );
            invalid_token(verify(&forged, &[Alg::ES256], lookup_for(&private)));
            // ...and even a genuine signature is refused with such a header.
            let genuine = sign_raw(
                &private,
                &header,
                Value::Object(claims()).to_string().as_bytes(),
            );
            let reason = invalid_token(verify(&genuine, &[Alg::ES256], lookup_for(&private)));
            assert!(
                reason.contains("key") || reason.contains("critical"),
                "{name}: {reason}"
            );
        }
        // Control: the same genuine header without the injection passes.
        let header = json!({"alg": "ES256", "kid": generated.kid, "typ": "JWT"});
        let genuine = sign_raw(
            &private,
            &header,
            Value::Object(claims()).to_string().as_bytes(),
        );
        verify(&genuine, &[Alg::ES256], lookup_for(&private)).unwrap();
    }

    #[test]
    fn verify_refuses_oversized_tokens() {
        let (_, private) = key(Alg::ES256);
        let mut big = claims();
        big.insert("padding".into(), "x".repeat(MAX_TOKEN_LEN).into());
        let token = sign(&private, "JWT", &big).unwrap();
        assert!(token.len() > MAX_TOKEN_LEN);
        assert_eq!(
            invalid_token(verify(&token, &[Alg::ES256], lookup_for(&private))),
            "token too large"
        );
        // Just under the cap is fine.
        let mut fits = claims();
        fits.insert("padding".into(), "x".repeat(MAX_TOKEN_LEN / 2).into());
        let token = sign(&private, "JWT", &fits).unwrap();
        assert!(token.len() <= MAX_TOKEN_LEN);
        verify(&token, &[Alg::ES256], lookup_for(&private)).unwrap();
    }

    #[test]
    fn verify_refuses_tampering() {
        for alg in [Alg::RS256, Alg::ES256, Alg::EdDSA, Alg::PS256] {
            let (_, private) = key(alg);
            let token = sign(&private, "JWT", &claims()).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            let mut evil = claims();
            evil.insert("sub".into(), "admin".into());
            let tampered = format!(
                "{}.{}.{}",
                parts[0],
                b64_json(&Value::Object(evil)),
                parts[2]
            );
            assert_eq!(
                invalid_token(verify(&tampered, &[alg], lookup_for(&private))),
                "bad signature"
            );
            // Signature of a different key with the same kid.
            let impostor = other_key(alg);
            let forged = sign(&impostor, "JWT", &claims()).unwrap();
            assert_eq!(
                invalid_token(verify(&forged, &[alg], lookup_for(&private))),
                "bad signature"
            );
            // Truncated or empty signature.
            let truncated = &token[..token.len() - 4];
            invalid_token(verify(truncated, &[alg], lookup_for(&private)));
            let empty_sig = format!("{}.{}.", parts[0], parts[1]);
            invalid_token(verify(&empty_sig, &[alg], lookup_for(&private)));
        }
    }

    #[test]
    fn verify_refuses_alg_mismatch_and_disallowed_algs() {
        let (rs_generated, rs) = key(Alg::RS256);
        let token = sign(&rs, "JWT", &claims()).unwrap();
        // RS256 token, but only ES256 allowed.
        assert_eq!(
            invalid_token(verify(&token, &[Alg::ES256], lookup_for(&rs))),
            "algorithm not allowed"
        );
        // Encryption algorithms never verify signatures.
        assert_eq!(
            invalid_token(verify(
                &token,
                &[Alg::RsaOaep256, Alg::EcdhEsA256kw],
                lookup_for(&rs)
            )),
            "algorithm not allowed"
        );
        assert_eq!(
            invalid_token(verify(&token, &[], lookup_for(&rs))),
            "algorithm not allowed"
        );

        // A PS256 signature by the same RSA key material, header says PS256,
        // but the kid resolves to the RS256 key.
        let ps_as_rs = PrivateKey::open(
            &rs_generated.kid,
            Alg::PS256,
            &rs_generated.sealed_private_key,
            kek(),
        )
        .unwrap();
        let ps_token = sign(&ps_as_rs, "JWT", &claims()).unwrap();
        assert_eq!(
            invalid_token(verify(
                &ps_token,
                &[Alg::RS256, Alg::PS256],
                lookup_for(&rs)
            )),
            "algorithm does not match the key"
        );
        // Header claims ES256 while the kid resolves to an RS256 key.
        let (_, es) = key(Alg::ES256);
        let es_token = sign_raw(
            &es,
            &json!({"alg": "ES256", "kid": rs.kid()}),
            Value::Object(claims()).to_string().as_bytes(),
        );
        assert_eq!(
            invalid_token(verify(
                &es_token,
                &[Alg::RS256, Alg::ES256],
                lookup_for(&rs)
            )),
            "algorithm does not match the key"
        );
    }

    #[test]
    fn verify_refuses_malformed_tokens() {
        let (_, private) = key(Alg::ES256);
        let token = sign(&private, "JWT", &claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        for bad in [
            String::new(),
            "abc".to_owned(),
            format!("{}.{}", parts[0], parts[1]),
            format!("{token}.extra"),
            format!("%%%.{}.{}", parts[1], parts[2]),
            format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
            format!("{}.{}.{}", b64_json(&json!(["alg"])), parts[1], parts[2]),
            format!("{}.{}.!!!", parts[0], parts[1]),
        ] {
            invalid_token(verify(&bad, &[Alg::ES256], lookup_for(&private)));
        }
        // Payload that is valid JSON but not an object.
        let array = sign_raw(
            &private,
            &json!({"alg": "ES256", "kid": private.kid()}),
            b"[1,2,3]",
        );
        assert_eq!(
            invalid_token(verify(&array, &[Alg::ES256], lookup_for(&private))),
            "payload is not a JSON object"
        );
    }

    #[test]
    fn open_refuses_wrong_kek_wrong_kid_and_wrong_alg() {
        let (generated, _) = key(Alg::ES256);
        let sealed = &generated.sealed_private_key;
        assert!(matches!(
            PrivateKey::open(&generated.kid, Alg::ES256, sealed, &Kek::generate()),
            Err(KeyError::Unseal(_))
        ));
        assert!(matches!(
            PrivateKey::open("another-kid", Alg::ES256, sealed, kek()),
            Err(KeyError::Unseal(_))
        ));
        // An EC key opened as RSA or Ed25519 is refused; as ECDH-ES it is the
        // same curve, which is allowed (the algorithm is chosen per kid).
        invalid_key(PrivateKey::open(&generated.kid, Alg::RS256, sealed, kek()));
        invalid_key(PrivateKey::open(&generated.kid, Alg::EdDSA, sealed, kek()));
        // Sealed garbage that is not PKCS#8.
        let junk = kek().seal("junk", b"not a key").unwrap();
        assert!(matches!(
            PrivateKey::open("junk", Alg::ES256, &junk, kek()),
            Err(KeyError::Unseal(_))
        ));
    }

    #[test]
    fn debug_output_never_contains_key_material() {
        for &alg in Alg::ALL {
            let (generated, private) = key(alg);
            let der = kek()
                .open(&generated.kid, &generated.sealed_private_key)
                .unwrap();
            let pkey = PKey::private_key_from_pkcs8(&der).unwrap();
            // The private scalar / exponent, in the encodings a leak would use.
            let secret: Vec<u8> = match alg.kind() {
                KeyKind::Rsa => pkey.rsa().unwrap().d().to_vec(),
                KeyKind::P256 => pkey.ec_key().unwrap().private_key().to_vec(),
                KeyKind::Ed25519 => pkey.raw_private_key().unwrap(),
            };
            let std_b64 = base64::engine::general_purpose::STANDARD.encode(&der);
            let forms = [
                b64(&secret),
                b64(&der),
                std_b64,
                format!("{:?}", &secret[..8]),
            ];
            let debug = format!(
                "{private:?} {private:#?} {generated:?} {:?}",
                private.public_key()
            );
            assert!(debug.contains(&generated.kid));
            for form in &forms {
                assert!(!debug.contains(&form[..form.len().min(24)]), "{alg} leaks");
            }
            assert!(!debug.contains("sealed_private_key"));
        }
    }

    #[test]
    fn public_key_refuses_private_and_symmetric_keys() {
        let (generated, _) = key(Alg::RS256);
        let public: Value = serde_json::from_str(&generated.public_jwk).unwrap();
        for member in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            let mut jwk = public.clone();
            jwk[member] = json!("AQAB");
            let message = invalid_key(PublicKey::from_jwk_json(&jwk.to_string()));
            assert!(message.contains("private"), "{member}: {message}");
        }
        let oct = json!({"kty": "oct", "k": "c2VjcmV0", "alg": "RS256"});
        invalid_key(PublicKey::from_jwk_json(&oct.to_string()));
        let oct = json!({"kty": "oct", "alg": "RS256"});
        assert!(invalid_key(PublicKey::from_jwk_json(&oct.to_string())).contains("symmetric"));
    }

    #[test]
    fn public_key_alg_rules() {
        let (generated, _) = key(Alg::RS256);
        let mut jwk: Value = serde_json::from_str(&generated.public_jwk).unwrap();
        jwk.as_object_mut().unwrap().remove("alg");
        jwk.as_object_mut().unwrap().remove("use");
        let text = jwk.to_string();
        assert!(invalid_key(PublicKey::from_jwk_json(&text)).contains("no alg"));
        // Given alg used when the JWK has none.
        let public = PublicKey::from_jwk_json_with_alg(&text, Some(Alg::PS256)).unwrap();
        assert_eq!(public.alg(), Alg::PS256);
        assert_eq!(public.jwk_json()["use"], "sig");
        let public = PublicKey::from_jwk_json_with_alg(&text, Some(Alg::RsaOaep256)).unwrap();
        assert_eq!(public.key_use(), KeyUse::Enc);
        // The JWK's own alg wins over the given one.
        let public =
            PublicKey::from_jwk_json_with_alg(&generated.public_jwk, Some(Alg::PS256)).unwrap();
        assert_eq!(public.alg(), Alg::RS256);
        // Key type must fit the alg.
        invalid_key(PublicKey::from_jwk_json_with_alg(&text, Some(Alg::ES256)));
        invalid_key(PublicKey::from_jwk_json_with_alg(&text, Some(Alg::EdDSA)));
        // `use` must agree with the alg.
        let mut wrong_use = jwk.clone();
        wrong_use["use"] = json!("enc");
        invalid_key(PublicKey::from_jwk_json_with_alg(
            &wrong_use.to_string(),
            Some(Alg::RS256),
        ));
        // Unsupported algorithms.
        let mut hs = jwk.clone();
        hs["alg"] = json!("HS256");
        assert!(invalid_key(PublicKey::from_jwk_json(&hs.to_string())).contains("unsupported"));
        // Not JSON, not an object, non-string members.
        invalid_key(PublicKey::from_jwk_json("{"));
        invalid_key(PublicKey::from_jwk_json("[1]"));
        let mut numeric_kid = jwk.clone();
        numeric_kid["kid"] = json!(7);
        invalid_key(PublicKey::from_jwk_json_with_alg(
            &numeric_kid.to_string(),
            Some(Alg::RS256),
        ));
    }

    #[test]
    fn public_key_refuses_weak_or_invalid_key_material() {
        // 1024-bit RSA.
        let small = Rsa::generate(1024).unwrap();
        let jwk = json!({
            "kty": "RSA", "alg": "RS256",
            "n": b64(small.n().to_vec()), "e": b64(small.e().to_vec()),
        });
        assert!(invalid_key(PublicKey::from_jwk_json(&jwk.to_string())).contains("modulus"));

        let (generated, _) = key(Alg::ES256);
        let ec: Value = serde_json::from_str(&generated.public_jwk).unwrap();
        // Off-curve point: y + 1.
        let mut y = URL_SAFE_NO_PAD.decode(ec["y"].as_str().unwrap()).unwrap();
        y[31] = y[31].wrapping_add(1);
        let mut off_curve = ec.clone();
        off_curve["y"] = json!(b64(&y));
        assert!(invalid_key(PublicKey::from_jwk_json(&off_curve.to_string())).contains("P-256"));
        // Wrong curve name, short coordinate, padding in base64url.
        let mut p384 = ec.clone();
        p384["crv"] = json!("P-384");
        invalid_key(PublicKey::from_jwk_json(&p384.to_string()));
        let mut short = ec.clone();
        short["x"] = json!(b64([1u8; 31]));
        invalid_key(PublicKey::from_jwk_json(&short.to_string()));
        let mut padded = ec.clone();
        padded["x"] = json!(format!("{}=", ec["x"].as_str().unwrap()));
        invalid_key(PublicKey::from_jwk_json(&padded.to_string()));
        // Ed25519 with a wrong-length key and with an X25519 curve name.
        let (ed_generated, _) = key(Alg::EdDSA);
        let ed: Value = serde_json::from_str(&ed_generated.public_jwk).unwrap();
        let mut bad_ed = ed.clone();
        bad_ed["x"] = json!(b64([9u8; 31]));
        invalid_key(PublicKey::from_jwk_json(&bad_ed.to_string()));
        let mut x25519 = ed.clone();
        x25519["crv"] = json!("X25519");
        invalid_key(PublicKey::from_jwk_json(&x25519.to_string()));
    }

    #[test]
    fn public_jwk_keeps_only_public_members_and_jwks_renders() {
        let (generated, _) = key(Alg::ES256);
        let mut jwk: Value = serde_json::from_str(&generated.public_jwk).unwrap();
        jwk["x5c"] = json!(["MIIB"]);
        jwk["key_ops"] = json!(["verify"]);
        jwk["extra"] = json!({"nested": true});
        let public = PublicKey::from_jwk_json(&jwk.to_string()).unwrap();
        let mut names: Vec<String> = public
            .jwk_json()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        names.sort();
        assert_eq!(names, ["alg", "crv", "kid", "kty", "use", "x", "y"]);

        let keys: Vec<PublicKey> = Alg::ALL.iter().map(|&a| key(a).1.public_key()).collect();
        let jwks: Value = serde_json::from_slice(&render_jwks(&keys)).unwrap();
        let rendered = jwks["keys"].as_array().unwrap();
        assert_eq!(rendered.len(), Alg::ALL.len());
        for (jwk, &alg) in rendered.iter().zip(Alg::ALL) {
            assert_eq!(jwk["alg"], alg.as_str());
            for member in PRIVATE_JWK_MEMBERS {
                assert!(jwk.get(member).is_none());
            }
        }
        assert_eq!(render_jwks(&[]), br#"{"keys":[]}"#);
    }

    #[test]
    fn encrypt_decrypt_round_trip_both_algs() {
        for alg in [Alg::RsaOaep256, Alg::EcdhEsA256kw] {
            let (generated, private) = key(alg);
            let recipient = PublicKey::from_jwk_json(&generated.public_jwk).unwrap();
            let mut extra = Map::new();
            extra.insert("typ".into(), "JWT".into());
            let token = encrypt("inner.jwt.value", &recipient, Some("JWT"), Some(&extra)).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 5);
            let header = decode_b64_json(parts[0]);
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(header["enc"], "A256GCM");
            assert_eq!(header["kid"], generated.kid.as_str());
            assert_eq!(header["cty"], "JWT");
            assert_eq!(header["typ"], "JWT");
            assert!(header.get("zip").is_none());
            assert!(header.get("crit").is_none());

            let lookup = |kid: Option<&str>| {
                if kid == Some(private.kid()) {
                    vec![private.clone()]
                } else {
                    Vec::new()
                }
            };
            let (header, plaintext) = decrypt(&token, lookup).unwrap();
            assert_eq!(plaintext, b"inner.jwt.value");
            assert_eq!(header["cty"], "JWT");

            // Without a kid, the lookup offers candidates; the right one wins.
            let mut no_kid: Value = serde_json::from_str(&generated.public_jwk).unwrap();
            no_kid.as_object_mut().unwrap().remove("kid");
            let anonymous = PublicKey::from_jwk_json(&no_kid.to_string()).unwrap();
            assert_eq!(anonymous.kid(), None);
            let token = encrypt("{\"a\":1}", &anonymous, None, None).unwrap();
            assert!(decode_b64_json(token.split('.').next().unwrap())
                .get("kid")
                .is_none());
            let decoy = other_key(alg);
            let (_, plaintext) = decrypt(&token, |kid| {
                assert_eq!(kid, None);
                vec![decoy.clone(), private.clone()]
            })
            .unwrap();
            assert_eq!(plaintext, b"{\"a\":1}");
        }
    }

    #[test]
    fn nested_sign_then_encrypt_round_trip() {
        let (_, signer) = key(Alg::ES256);
        let (_, enc) = key(Alg::EcdhEsA256kw);
        let inner = sign(&signer, "JWT", &claims()).unwrap();
        let outer = encrypt(&inner, &enc.public_key(), Some("JWT"), None).unwrap();
        let (header, plaintext) = decrypt(&outer, |_| vec![enc.clone()]).unwrap();
        assert_eq!(header["cty"], "JWT");
        let inner = String::from_utf8(plaintext).unwrap();
        let verified = verify(&inner, &[Alg::ES256], lookup_for(&signer)).unwrap();
        assert_eq!(verified.claims, claims());
    }

    #[test]
    fn encrypt_refuses_signature_keys_and_reserved_headers() {
        let (_, sig) = key(Alg::ES256);
        invalid_key(encrypt("x", &sig.public_key(), None, None));
        let (_, enc) = key(Alg::EcdhEsA256kw);
        for name in ["zip", "crit", "alg", "enc", "epk", "kid", "jwk"] {
            let mut extra = Map::new();
            extra.insert(name.into(), json!("DEF"));
            invalid_key(encrypt("x", &enc.public_key(), None, Some(&extra)));
        }
    }

    fn enc_lookup(key: &PrivateKey) -> impl Fn(Option<&str>) -> Vec<PrivateKey> {
        let key = key.clone();
        move |_| vec![key.clone()]
    }

    /// Replace the protected header of a compact JWE (the AAD no longer
    /// matches, but the header checks must refuse it before that matters).
    fn with_header(token: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let (header, rest) = token.split_once('.').unwrap();
        let mut header = decode_b64_json(header);
        edit(header.as_object_mut().unwrap());
        format!("{}.{rest}", b64_json(&header))
    }

    #[test]
    fn decrypt_refuses_zip_crit_and_wrong_algorithms() {
        let (_, private) = key(Alg::RsaOaep256);
        let token = encrypt("payload", &private.public_key(), None, None).unwrap();
        let cases = [
            ("compressed JWE is not accepted", "zip", json!("DEF")),
            (
                "critical header parameters are not supported",
                "crit",
                json!(["exp"]),
            ),
            (
                "content encryption must be A256GCM",
                "enc",
                json!("A128CBC-HS256"),
            ),
            ("algorithm not allowed", "alg", json!("RSA1_5")),
            ("algorithm not allowed", "alg", json!("dir")),
            ("algorithm not allowed", "alg", json!("RS256")),
        ];
        for (reason, name, value) in cases {
            let edited = with_header(&token, |h| {
                h.insert(name.into(), value);
            });
            assert_eq!(
                invalid_token(decrypt(&edited, enc_lookup(&private))),
                reason
            );
        }
        // A real DEF-compressed JWE made by josekit itself is refused too.
        let PublicOp::Encrypt(encrypter) = &private.public_key().0.op else {
            panic!()
        };
        let mut header = JweHeader::new();
        header.set_content_encryption("A256GCM");
        header.set_compression("DEF");
        let zipped = jwe::serialize_compact(&[b'a'; 4096], &header, encrypter.as_ref()).unwrap();
        assert_eq!(
            invalid_token(decrypt(&zipped, enc_lookup(&private))),
            "compressed JWE is not accepted"
        );
    }

    /// `decrypt` takes whatever a key store returns: an `Option` from a kid
    /// map (here of `Arc<PrivateKey>`), a borrowed key, or a `Vec`.
    #[test]
    fn decrypt_lookup_accepts_options_references_and_arcs() {
        let (_, private) = key(Alg::EcdhEsA256kw);
        let token = encrypt("payload", &private.public_key(), None, None).unwrap();
        let by_kid: std::collections::HashMap<String, Arc<PrivateKey>> =
            [(private.kid().to_owned(), Arc::new(private.clone()))].into();
        let (_, plaintext) =
            decrypt(&token, |kid| kid.and_then(|k| by_kid.get(k).cloned())).unwrap();
        assert_eq!(plaintext, b"payload");
        let (_, plaintext) = decrypt(&token, |_| Some(&private)).unwrap();
        assert_eq!(plaintext, b"payload");
        let (_, plaintext) = decrypt(&token, |_| [&private]).unwrap();
        assert_eq!(plaintext, b"payload");
        assert_eq!(
            invalid_token(decrypt(&token, |_| None::<&PrivateKey>)),
            "no decryption key for this kid and algorithm"
        );
    }

    #[test]
    fn decrypt_refuses_oversized_tokens() {
        let (_, private) = key(Alg::EcdhEsA256kw);
        let token = encrypt(
            &"x".repeat(MAX_TOKEN_LEN),
            &private.public_key(),
            None,
            None,
        )
        .unwrap();
        assert!(token.len() > MAX_TOKEN_LEN);
        assert_eq!(
            invalid_token(decrypt(&token, enc_lookup(&private))),
            "token too large"
        );
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            invalid_token(decrypt(&huge, enc_lookup(&private))),
            "token too large"
        );
    }

    #[test]
    fn decrypt_refuses_wrong_key_and_unknown_kid() {
        for alg in [Alg::RsaOaep256, Alg::EcdhEsA256kw] {
            let (_, private) = key(alg);
            let token = encrypt("payload", &private.public_key(), None, None).unwrap();
            let stranger = other_key(alg);
            assert_eq!(
                invalid_token(decrypt(&token, enc_lookup(&stranger))),
                "decryption failed"
            );
            assert_eq!(
                invalid_token(decrypt(&token, |_| Vec::<PrivateKey>::new())),
                "no decryption key for this kid and algorithm"
            );
            // A signing key offered as a candidate is skipped.
            let (_, sig) = key(Alg::ES256);
            invalid_token(decrypt(&token, enc_lookup(&sig)));
        }
        // A key of the other encryption alg is not tried.
        let (_, rsa) = key(Alg::RsaOaep256);
        let (_, ec) = key(Alg::EcdhEsA256kw);
        let token = encrypt("payload", &rsa.public_key(), None, None).unwrap();
        assert_eq!(
            invalid_token(decrypt(&token, enc_lookup(&ec))),
            "no decryption key for this kid and algorithm"
        );
    }

    #[test]
    fn decrypt_refuses_tampering() {
        for alg in [Alg::RsaOaep256, Alg::EcdhEsA256kw] {
            let (_, private) = key(alg);
            let token = encrypt("a secret payload", &private.public_key(), None, None).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            let rebuild = |index: usize, bytes: &[u8]| {
                let mut parts: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
                parts[index] = b64(bytes);
                parts.join(".")
            };
            let flip = |index: usize| {
                let mut bytes = URL_SAFE_NO_PAD.decode(parts[index]).unwrap();
                bytes[0] ^= 1;
                rebuild(index, &bytes)
            };
            for index in 1..=4 {
                invalid_token(decrypt(&flip(index), enc_lookup(&private)));
            }
            // Header edits break the AAD.
            let retyped = with_header(&token, |h| {
                h.insert("typ".into(), json!("evil"));
            });
            assert_eq!(
                invalid_token(decrypt(&retyped, enc_lookup(&private))),
                "decryption failed"
            );
            // Truncated tag (GCM would otherwise accept short tags), bad IV length.
            let tag = URL_SAFE_NO_PAD.decode(parts[4]).unwrap();
            assert_eq!(
                invalid_token(decrypt(&rebuild(4, &tag[..4]), enc_lookup(&private))),
                "malformed JWE"
            );
            assert_eq!(
                invalid_token(decrypt(&rebuild(2, &[0u8; 16]), enc_lookup(&private))),
                "malformed JWE"
            );
            // Wrong number of parts, and a JWS handed to decrypt.
            invalid_token(decrypt(&parts[..4].join("."), enc_lookup(&private)));
            let (_, sig) = key(Alg::ES256);
            let jws = sign(&sig, "JWT", &claims()).unwrap();
            assert_eq!(
                invalid_token(decrypt(&jws, enc_lookup(&private))),
                "not a compact JWE"
            );
        }
        // Short wrapped key for ECDH-ES+A256KW (josekit would underflow on < 8 bytes).
        let (_, ec) = key(Alg::EcdhEsA256kw);
        let token = encrypt("x", &ec.public_key(), None, None).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = b64([1u8; 4]);
        assert_eq!(
            invalid_token(decrypt(&parts.join("."), enc_lookup(&ec))),
            "malformed JWE"
        );
    }

    /// Invalid-curve attack: an ECDH-ES ephemeral key that is not on P-256
    /// must be refused. Our own check refuses it before key agreement, and
    /// (defence in depth) OpenSSL refuses it too when josekit is handed the
    /// token directly.
    #[test]
    fn decrypt_refuses_off_curve_ephemeral_key() {
        let (_, private) = key(Alg::EcdhEsA256kw);
        let token = encrypt("payload", &private.public_key(), None, None).unwrap();
        let epk = decode_b64_json(token.split('.').next().unwrap())["epk"].clone();
        let mut y = URL_SAFE_NO_PAD.decode(epk["y"].as_str().unwrap()).unwrap();
        y[31] ^= 1;
        let off_curve = with_header(&token, |h| {
            h["epk"]["y"] = json!(b64(&y));
        });
        assert_eq!(
            invalid_token(decrypt(&off_curve, enc_lookup(&private))),
            "ephemeral key is not a valid P-256 point"
        );
        // A small-coordinate point that is not on the curve either.
        let mut one = [0u8; 32];
        one[31] = 1;
        let tiny = with_header(&token, |h| {
            h["epk"]["x"] = json!(b64(one));
            h["epk"]["y"] = json!(b64(one));
        });
        assert_eq!(
            invalid_token(decrypt(&tiny, enc_lookup(&private))),
            "ephemeral key is not a valid P-256 point"
        );
        // Coordinates >= the field prime.
        let too_big = with_header(&token, |h| {
            h["epk"]["x"] = json!(b64([0xffu8; 32]));
        });
        invalid_token(decrypt(&too_big, enc_lookup(&private)));
        // Other curves, key types, and a missing epk.
        for (name, value) in [
            ("crv", json!("P-384")),
            ("crv", json!("secp256k1")),
            ("kty", json!("OKP")),
        ] {
            let edited = with_header(&token, |h| {
                h["epk"][name] = value;
            });
            assert_eq!(
                invalid_token(decrypt(&edited, enc_lookup(&private))),
                "ephemeral key must be on P-256"
            );
        }
        let missing = with_header(&token, |h| {
            h.remove("epk");
        });
        assert_eq!(
            invalid_token(decrypt(&missing, enc_lookup(&private))),
            "missing ephemeral key"
        );

        // Defence in depth: josekit + OpenSSL alone also refuse the point.
        let PrivateOp::Decrypt(decrypter) = &private.0.op else {
            panic!()
        };
        assert!(jwe::deserialize_compact(&token, decrypter.as_ref()).is_ok());
        assert!(jwe::deserialize_compact(&off_curve, decrypter.as_ref()).is_err());
    }

    /// An HMAC JWS, built without the code under test.
    fn hs_token(alg: &str, secret: &[u8], header: Value, claims: &Value) -> String {
        let mut h = header.as_object().cloned().unwrap_or_default();
        h.insert("alg".into(), alg.into());
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(Value::Object(h).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        // The hmac crate directly: josekit refuses to make short-key MACs,
        // and the tests need some.
        fn mac_of<M: Mac + hmac::digest::KeyInit>(key: &[u8], input: &[u8]) -> Vec<u8> {
            let mut m = <M as Mac>::new_from_slice(key).unwrap();
            m.update(input);
            m.finalize().into_bytes().to_vec()
        }
        let mac = match alg {
            "HS256" => mac_of::<Hmac<Sha256>>(secret, input.as_bytes()),
            "HS384" => mac_of::<Hmac<sha2::Sha384>>(secret, input.as_bytes()),
            _ => mac_of::<Hmac<sha2::Sha512>>(secret, input.as_bytes()),
        };
        // The same MAC as josekit's, where josekit agrees to make one.
        if secret.len() >= 64 {
            let signer: Box<dyn JwsSigner> = match alg {
                "HS256" => Box::new(jws::HS256.signer_from_bytes(secret).unwrap()),
                "HS384" => Box::new(jws::HS384.signer_from_bytes(secret).unwrap()),
                _ => Box::new(jws::HS512.signer_from_bytes(secret).unwrap()),
            };
            assert_eq!(signer.sign(input.as_bytes()).unwrap(), mac);
        }
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    #[test]
    fn hmac_verification_accepts_each_algorithm_and_refuses_tampering() {
        let secret = [7u8; 64];
        let claims = json!({"iss": "c1", "sub": "c1"});
        for alg in HmacAlg::ALL {
            let token = hs_token(alg.as_str(), &secret, json!({"typ": "JWT"}), &claims);
            let verified = verify_hmac(&token, &HmacAlg::ALL, &secret).unwrap();
            assert_eq!(verified.claims["iss"], "c1");
            assert_eq!(verified.header["alg"], alg.as_str());
            // Another secret, a flipped payload, a truncated MAC.
            assert_eq!(
                invalid_token(verify_hmac(&token, &HmacAlg::ALL, &[8u8; 64])),
                "bad signature"
            );
            let mut parts: Vec<&str> = token.split('.').collect();
            let other = URL_SAFE_NO_PAD.encode(json!({"iss": "c2", "sub": "c2"}).to_string());
            parts[1] = &other;
            assert_eq!(
                invalid_token(verify_hmac(&parts.join("."), &HmacAlg::ALL, &secret)),
                "bad signature"
            );
            let short = &token[..token.len() - 4];
            assert!(verify_hmac(short, &HmacAlg::ALL, &secret).is_err());
            // Not in the allow-list.
            let others: Vec<HmacAlg> = HmacAlg::ALL.into_iter().filter(|a| *a != alg).collect();
            assert_eq!(
                invalid_token(verify_hmac(&token, &others, &secret)),
                "algorithm not allowed"
            );
        }
    }

    #[test]
    fn hmac_verification_refuses_none_asymmetric_algs_and_short_secrets() {
        let secret = [7u8; 64];
        let claims = json!({"iss": "c1"});
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let none = format!(
            "{}.{payload}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string())
        );
        assert_eq!(
            invalid_token(verify_hmac(&none, &HmacAlg::ALL, &secret)),
            "algorithm not allowed"
        );
        let (_, key) = key(Alg::RS256);
        let rs = sign(&key, "JWT", claims.as_object().unwrap()).unwrap();
        assert_eq!(
            invalid_token(verify_hmac(&rs, &HmacAlg::ALL, &secret)),
            "algorithm not allowed"
        );
        // And the asymmetric verifier never accepts an HMAC token.
        let hs = hs_token("HS256", &secret, json!({"kid": key.kid()}), &claims);
        assert_eq!(
            invalid_token(verify(&hs, &[Alg::RS256], lookup_for(&key))),
            "algorithm not allowed"
        );
        // RFC 7518 3.2: the key must be at least the hash size. A token
        // correctly MACed with a 40-byte secret passes as HS256 only.
        let short = [9u8; 40];
        let ok = hs_token("HS256", &short, json!({}), &claims);
        assert!(verify_hmac(&ok, &HmacAlg::ALL, &short).is_ok());
        for alg in ["HS384", "HS512"] {
            let t = hs_token(alg, &short, json!({}), &claims);
            assert_eq!(
                invalid_token(verify_hmac(&t, &HmacAlg::ALL, &short)),
                "secret is shorter than the algorithm's hash"
            );
        }
        let tiny = [9u8; 31];
        let t = hs_token("HS256", &tiny, json!({}), &claims);
        assert!(verify_hmac(&t, &HmacAlg::ALL, &tiny).is_err());
        // Key-carrying headers are refused as for every JWS.
        let t = hs_token("HS256", &secret, json!({"jku": "https://evil"}), &claims);
        assert_eq!(
            invalid_token(verify_hmac(&t, &HmacAlg::ALL, &secret)),
            "header must not carry or point to a key"
        );
        assert!("hs256".parse::<HmacAlg>().is_err());
        assert_eq!("HS512".parse::<HmacAlg>().unwrap(), HmacAlg::HS512);
    }

    #[test]
    fn peeking_decodes_without_trusting() {
        let (_, private) = key(Alg::ES256);
        let mut claims = Map::new();
        claims.insert("iss".into(), json!("client-1"));
        let token = sign(&private, "JWT", &claims).unwrap();
        let peeked = peek_claims(&token).unwrap();
        assert_eq!(peeked.claims["iss"], "client-1");
        assert_eq!(peeked.header["kid"], private.kid());
        assert_eq!(peek_header(&token).unwrap()["alg"], "ES256");
        // The structural refusals of `verify` apply: a key in the header,
        // crit, a wrong shape, an oversized token.
        let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let rest = token.split_once('.').unwrap().1;
        for header in [
            json!({"alg": "ES256", "jwk": {}}),
            json!({"alg": "ES256", "crit": ["x"]}),
        ] {
            assert!(peek_claims(&format!("{}.{rest}", b64(header))).is_err());
        }
        assert!(peek_claims("a.b").is_err());
        assert!(peek_claims(&"a".repeat(MAX_TOKEN_LEN + 1)).is_err());
        assert!(peek_header("not base64!.x").is_err());
    }

    /// A JWE made with a chosen CEK: the recipient unwraps and decrypts it
    /// normally (both algorithms); the CEK alone opens it too; the genuine
    /// header on another body, a flipped bit anywhere, or another CEK fails.
    #[test]
    fn chosen_cek_round_trip_and_forged_bodies() {
        let cek = Kek::generate();
        let mut extra = Map::new();
        extra.insert("gh_ref".into(), "ref".into());
        for alg in [Alg::EcdhEsA256kw, Alg::RsaOaep256] {
            let (_, private) = key(alg);
            let token = encrypt_with_cek(
                "a.b.c",
                &private.public_key(),
                &cek,
                Some("JWT"),
                Some(&extra),
            )
            .unwrap();
            let (header, plain) = decrypt(&token, |_| Some(&private)).unwrap();
            assert_eq!(plain, b"a.b.c", "{alg}");
            assert_eq!(header["alg"], alg.as_str());
            assert_eq!(header["gh_ref"], "ref");
            let (header, plain) = decrypt_with_cek(&token, &cek).unwrap();
            assert_eq!(
                (plain.as_slice(), &header["cty"]),
                (&b"a.b.c"[..], &json!("JWT"))
            );

            let parts: Vec<&str> = token.split('.').collect();
            let other =
                encrypt_with_cek("x.y.z", &private.public_key(), &Kek::generate(), None, None)
                    .unwrap();
            let spliced = format!("{}.{}", parts[0], other.split_once('.').unwrap().1);
            assert_eq!(
                invalid_token(decrypt_with_cek(&spliced, &cek)),
                "decryption failed"
            );
            for i in [0, 2, 3, 4] {
                let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
                let mut bytes = URL_SAFE_NO_PAD.decode(&p[i]).unwrap();
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
                p[i] = b64(bytes);
                assert!(
                    decrypt_with_cek(&p.join("."), &cek).is_err(),
                    "{alg} part {i}"
                );
            }
            assert!(decrypt_with_cek(&token, &Kek::generate()).is_err());
            // Reserved members stay reserved; a signing key cannot encrypt.
            let mut bad = Map::new();
            bad.insert("zip".into(), "DEF".into());
            invalid_key(encrypt_with_cek(
                "p",
                &private.public_key(),
                &cek,
                None,
                Some(&bad),
            ));
        }
        let (_, signer) = key(Alg::ES256);
        invalid_key(encrypt_with_cek(
            "p",
            &signer.public_key(),
            &cek,
            None,
            None,
        ));
        // Direct encryption is not a wrapped-key JWE.
        let dir = encrypt_dir("a.b.c", &cek, "gh-dir-1", None, None).unwrap();
        assert_eq!(
            invalid_token(decrypt_with_cek(&dir, &cek)),
            "algorithm not allowed"
        );
    }
}

#[cfg(test)]
#[path = "jose_fuzz.rs"]
mod fuzz;
