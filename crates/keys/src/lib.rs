//! Gatehouse's key material: generation and sealing at rest, every key
//! derived from the key-encryption key, and the key ring with its rotation
//! lifecycle.
//!
//! Design choice: private keys never leave this crate. Callers get signed or
//! encrypted compact tokens, verified claims, and public JWKs; a private key
//! is opened (unsealed and parsed) once per key change, never per request.
//! The JOSE operations themselves live in `gatehouse-jose` (re-exported
//! here); the database is reached through the [`KeyStore`] trait, which the
//! storage crate implements.

mod clock;
mod error;
mod kek;
mod ring;
mod sealed;
mod store;
mod totp;

pub use gatehouse_jose as jose;
pub use gatehouse_jose::{
    decrypt, encrypt, peek_claims, peek_header, render_jwks, sign, verify, Alg, HmacAlg, JoseError,
    KeyUse, PrivateKey, PublicKey, UnverifiedJws, VerifiedJws,
};

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{KeyError, StoreFailure};
pub use gatehouse_protocol::Kid;
pub use kek::{Kek, SecretHasher, SecretSealer};
pub use ring::{
    KeyInfo, KeyRing, RotationPolicy, Snapshot, DEFAULT_SIGNING_ALGS, OWN_ENCRYPTION_ALG,
    SIGNING_ALGS,
};
pub use sealed::{generate, GeneratedKey, OpenSealed};
pub use store::{KeyRecord, KeyRevocation, KeyState, KeyStore, Rotation};
pub use totp::{NewTotp, TotpSealer, TOTP_STEP};
