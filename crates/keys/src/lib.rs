//! Gatehouse's key material and every JOSE operation.
//!
//! Design choice: private keys never leave this crate. Callers get signed or
//! encrypted compact tokens, verified claims, and public JWKs; a private key
//! is opened (unsealed and parsed) once per key change, never per request.
//! Private-key operations run through OpenSSL (via josekit).

mod clock;
mod error;
mod jose;
mod kek;
mod ring;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::KeyError;
pub use jose::{
    decrypt, encrypt, generate, peek_claims, peek_header, render_jwks, sign, verify, Alg,
    GeneratedKey, HmacAlg, KeyUse, PrivateKey, PublicKey, UnverifiedJws, VerifiedJws,
};
pub use kek::{Kek, SecretHasher, SecretSealer};
pub use ring::{
    KeyInfo, KeyRing, RotationPolicy, Snapshot, DEFAULT_SIGNING_ALGS, OWN_ENCRYPTION_ALG,
    SIGNING_ALGS,
};
