//! The key-encryption key (KEK) that seals private keys at rest, and the keyed
//! hash used to store high-entropy secrets (client secrets, codes, refresh
//! tokens, session ids) without keeping them in the clear.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;

use crate::KeyError;

type HmacSha256 = Hmac<Sha256>;

/// Version byte at the start of every sealed blob.
const SEAL_VERSION: u8 = 1;
/// AES-GCM nonce length (96 bits).
const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// Label for deriving the secret-hash subkey from the KEK.
const SECRET_HASH_LABEL: &[u8] = b"gatehouse secret-hash v1";

/// Base64url that accepts input with or without `=` padding.
const B64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Overwrite a buffer that held secret material. `black_box` keeps the
/// compiler from treating the writes as dead stores.
pub(crate) fn wipe(buf: &mut [u8]) {
    buf.fill(0);
    std::hint::black_box(buf);
}

/// A byte buffer holding secret material; wiped when dropped, including on
/// every early-return error path.
pub(crate) struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl std::ops::Deref for SecretBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// The 256-bit key-encryption key. Private keys are sealed under it with
/// AES-256-GCM before they are stored. It is wiped from memory on drop and
/// never printed.
#[derive(Clone)]
pub struct Kek([u8; 32]);

impl Kek {
    /// Parse a KEK from base64url (padding optional, surrounding whitespace
    /// ignored). It must decode to exactly 32 bytes.
    pub fn from_base64url(text: &str) -> Result<Kek, KeyError> {
        const BAD: KeyError = KeyError::Unseal("key-encryption key must be 32 bytes of base64url");
        let decoded = SecretBytes::new(B64URL_LENIENT.decode(text.trim()).map_err(|_| BAD)?);
        let bytes: [u8; 32] = decoded[..].try_into().map_err(|_| BAD)?;
        Ok(Kek(bytes))
    }

    /// A fresh random KEK from the operating system's RNG.
    pub fn generate() -> Kek {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Kek(bytes)
    }

    /// The KEK as unpadded base64url, the form `from_base64url` reads.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0))
    }

    /// Seal `plaintext` under this KEK, binding it to `kid` (used as
    /// associated data, so a sealed key cannot be swapped onto another kid).
    /// Output: version byte `1` || 12-byte random nonce || ciphertext || tag.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| KeyError::crypto("AES-GCM sealing failed".to_owned()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Open a blob made by [`Kek::seal`] for the same `kid`. Any failure
    /// (wrong KEK, wrong kid, truncation, tampering, unknown version) gives
    /// the same error.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        const BAD: KeyError = KeyError::Unseal("wrong key-encryption key or corrupt key");
        let (version, rest) = sealed.split_first().ok_or(BAD)?;
        if *version != SEAL_VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(BAD);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| BAD)
    }
}

impl Kek {
    /// The raw key, for direct encryption inside this crate.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// A subkey for another purpose: HMAC-SHA-256(kek, label). Keeps each
    /// use of the root key (sealing keys, sealing token references) under
    /// its own AES key.
    pub fn derive(&self, label: &[u8]) -> Kek {
        let mut derive = hmac_with_key(&self.0);
        derive.update(label);
        Kek(derive.finalize().into_bytes().into())
    }
}

impl Drop for Kek {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(<hidden>)")
    }
}

/// HMAC-SHA-256 keyed with a 32-byte key. HMAC zero-pads keys shorter than
/// the 64-byte block, so this equals `Hmac::new_from_slice(key)` without its
/// (never-taken) error path.
fn hmac_with_key(key: &[u8; 32]) -> HmacSha256 {
    let mut block = hmac::digest::Key::<HmacSha256>::default();
    block[..32].copy_from_slice(key);
    let mac = <HmacSha256 as KeyInit>::new(&block);
    wipe(&mut block);
    mac
}

/// Keyed hash for high-entropy secrets: HMAC-SHA-256 under a subkey derived
/// from the KEK as HMAC-SHA-256(kek, "gatehouse secret-hash v1"). The output
/// is the 32-byte MAC as unpadded base64url (43 characters), suitable as a
/// database lookup key. Not for passwords (they need a slow hash).
#[derive(Clone)]
pub struct SecretHasher {
    /// HMAC state already keyed with the subkey; cloned for each hash.
    mac: HmacSha256,
}

impl SecretHasher {
    /// Derive the secret-hash subkey from `kek`.
    pub fn new(kek: &Kek) -> SecretHasher {
        let mut derive = hmac_with_key(&kek.0);
        derive.update(SECRET_HASH_LABEL);
        let mut subkey: [u8; 32] = derive.finalize().into_bytes().into();
        let mac = hmac_with_key(&subkey);
        wipe(&mut subkey);
        SecretHasher { mac }
    }

    fn mac_of(&self, secret: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The keyed hash of `secret`, as unpadded base64url.
    pub fn hash(&self, secret: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac_of(secret))
    }

    /// Whether `secret` hashes to `stored` (a value from [`SecretHasher::hash`]),
    /// compared in constant time.
    pub fn matches(&self, secret: &str, stored: &str) -> bool {
        let Ok(expected) = URL_SAFE_NO_PAD.decode(stored) else {
            return false;
        };
        let mut mac = self.mac.clone();
        mac.update(secret.as_bytes());
        mac.verify_slice(&expected).is_ok()
    }
}

impl Drop for SecretHasher {
    /// Overwrites the keyed HMAC state (which is as good as the subkey) in
    /// place with a state keyed by zeros; `hmac` has no zeroize support of
    /// its own.
    fn drop(&mut self) {
        self.mac = hmac_with_key(&[0u8; 32]);
        std::hint::black_box(&self.mac);
    }
}

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHasher(<hidden>)")
    }
}

/// Label for deriving the client-secret sealing subkey from the KEK.
const SECRET_SEAL_LABEL: &[u8] = b"gatehouse client-secret-seal v1";

/// Seals the few client secrets that must be recoverable: a
/// client_secret_jwt client MACs its assertions with the secret itself, so
/// a keyed hash is not enough to check them. AES-256-GCM under a subkey
/// derived from the KEK (HMAC-SHA-256(kek, "gatehouse client-secret-seal
/// v1")), bound to the client id as associated data, so a sealed secret
/// cannot be moved to another client. The opened secret never leaves this
/// crate: callers hand in a token and get back verified claims.
#[derive(Clone)]
pub struct SecretSealer(Kek);

impl SecretSealer {
    /// Derive the sealing subkey from `kek`.
    pub fn new(kek: &Kek) -> SecretSealer {
        SecretSealer(kek.derive(SECRET_SEAL_LABEL))
    }

    fn context(client_id: &str) -> String {
        format!("client-secret:{client_id}")
    }

    /// Seal `secret` for the client `client_id`.
    pub fn seal(&self, client_id: &str, secret: &str) -> Result<Vec<u8>, KeyError> {
        self.0.seal(&Self::context(client_id), secret.as_bytes())
    }

    /// Verify a compact JWS MACed with the secret sealed in `sealed` for
    /// `client_id` (see [`crate::HmacAlg`] for the rules). A blob that does
    /// not open (wrong KEK, wrong client, corruption) is an invalid token,
    /// never a panic.
    pub fn verify_jws(
        &self,
        client_id: &str,
        sealed: &[u8],
        token: &str,
        allowed: &[crate::HmacAlg],
    ) -> Result<crate::VerifiedJws, KeyError> {
        let secret = SecretBytes::new(
            self.0
                .open(&Self::context(client_id), sealed)
                .map_err(|_| KeyError::invalid_token("client secret cannot be opened"))?,
        );
        Ok(gatehouse_jose::verify_hmac(token, allowed, &secret)?)
    }
}

impl fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretSealer(<hidden>)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trip_and_whitespace() {
        let kek = Kek::generate();
        let text = kek.to_base64url();
        assert_eq!(text.len(), 43);
        assert!(!text.contains('='));
        let again = Kek::from_base64url(&format!("  {text}\n")).unwrap();
        assert_eq!(again.0, kek.0);
        // Padded input is accepted too.
        let padded = format!("{text}=");
        assert_eq!(Kek::from_base64url(&padded).unwrap().0, kek.0);
    }

    #[test]
    fn from_base64url_rejects_wrong_lengths_and_garbage() {
        for bad in [
            "",
            "AAAA",
            &URL_SAFE_NO_PAD.encode([7u8; 31]),
            &URL_SAFE_NO_PAD.encode([7u8; 33]),
            "not base64 at all!!",
            // Standard-alphabet characters are not base64url.
            "+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+",
        ] {
            let err = Kek::from_base64url(bad).unwrap_err();
            assert!(
                matches!(err, KeyError::Unseal(msg) if msg.contains("32 bytes")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn seal_open_round_trip() {
        let kek = Kek::generate();
        let sealed = kek.seal("kid-1", b"private key bytes").unwrap();
        assert_eq!(sealed[0], 1);
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 17 + TAG_LEN);
        assert_eq!(kek.open("kid-1", &sealed).unwrap(), b"private key bytes");
        // Fresh nonce each time.
        assert_ne!(kek.seal("kid-1", b"private key bytes").unwrap(), sealed);
    }

    fn assert_unseal_error(result: Result<Vec<u8>, KeyError>) {
        match result {
            Err(KeyError::Unseal(msg)) => {
                assert_eq!(msg, "wrong key-encryption key or corrupt key")
            }
            other => panic!("expected unseal error, got {other:?}"),
        }
    }

    #[test]
    fn open_refuses_wrong_kek_wrong_kid_and_corruption() {
        let kek = Kek::generate();
        let sealed = kek.seal("kid-1", b"secret").unwrap();
        assert_unseal_error(Kek::generate().open("kid-1", &sealed));
        assert_unseal_error(kek.open("kid-2", &sealed));
        assert_unseal_error(kek.open("kid-1", &sealed[..sealed.len() - 1]));
        assert_unseal_error(kek.open("kid-1", &sealed[..5]));
        assert_unseal_error(kek.open("kid-1", &[]));
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert_unseal_error(kek.open("kid-1", &flipped));
        let mut wrong_version = sealed.clone();
        wrong_version[0] = 2;
        assert_unseal_error(kek.open("kid-1", &wrong_version));
    }

    #[test]
    fn debug_hides_secrets() {
        let kek = Kek::generate();
        let debug = format!("{kek:?}");
        assert_eq!(debug, "Kek(<hidden>)");
        assert!(!debug.contains(&kek.to_base64url()));

        let hasher = SecretHasher::new(&kek);
        let debug = format!("{hasher:?} {:#?}", hasher);
        assert!(!debug.contains(&kek.to_base64url()));
        assert!(debug.contains("<hidden>"));
    }

    #[test]
    fn padded_hmac_key_matches_new_from_slice() {
        let key = [0x5au8; 32];
        let mut a = hmac_with_key(&key);
        let mut b = <HmacSha256 as Mac>::new_from_slice(&key).unwrap();
        a.update(b"message");
        b.update(b"message");
        assert_eq!(a.finalize().into_bytes(), b.finalize().into_bytes());
    }

    #[test]
    fn secret_hash_matches_definition() {
        let kek = Kek::from_base64url(&URL_SAFE_NO_PAD.encode([1u8; 32])).unwrap();
        let hasher = SecretHasher::new(&kek);

        // Recompute by the written definition, with the plain hmac API.
        let mut derive = <HmacSha256 as Mac>::new_from_slice(&[1u8; 32]).unwrap();
        derive.update(b"gatehouse secret-hash v1");
        let subkey = derive.finalize().into_bytes();
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&subkey).unwrap();
        mac.update(b"s3cret");
        let expected = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());

        assert_eq!(hasher.hash("s3cret"), expected);
        assert_eq!(hasher.hash("s3cret").len(), 43);
        assert_ne!(hasher.hash("s3cret"), hasher.hash("s3cret2"));
        assert_eq!(hasher.clone().hash("s3cret"), expected);
        // A different KEK gives a different hash.
        assert_ne!(SecretHasher::new(&Kek::generate()).hash("s3cret"), expected);
    }

    #[test]
    fn secret_hash_matches_helper() {
        let hasher = SecretHasher::new(&Kek::generate());
        let stored = hasher.hash("refresh-token-value");
        assert!(hasher.matches("refresh-token-value", &stored));
        assert!(!hasher.matches("refresh-token-valuf", &stored));
        assert!(!hasher.matches("refresh-token-value", "not-base64!"));
        assert!(!hasher.matches("refresh-token-value", ""));
    }

    #[test]
    fn sealed_client_secret_verifies_only_for_its_client() {
        use crate::HmacAlg;
        let kek = Kek::generate();
        let sealer = SecretSealer::new(&kek);
        let secret = "s".repeat(86);
        let sealed = sealer.seal("client-a", &secret).unwrap();
        assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"iss":"client-a"}"#)
        );
        let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        let token = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        let ok = sealer
            .verify_jws("client-a", &sealed, &token, &HmacAlg::ALL)
            .unwrap();
        assert_eq!(ok.claims["iss"], "client-a");
        // Bound to the client id, and to the KEK; the sealing key is not the KEK.
        for result in [
            sealer.verify_jws("client-b", &sealed, &token, &HmacAlg::ALL),
            SecretSealer::new(&Kek::generate()).verify_jws(
                "client-a",
                &sealed,
                &token,
                &HmacAlg::ALL,
            ),
        ] {
            assert!(
                matches!(result, Err(KeyError::Jose(gatehouse_jose::JoseError::InvalidToken(m))) if m == "client secret cannot be opened")
            );
        }
        assert!(kek.open("client-secret:client-a", &sealed).is_err());
        assert_eq!(format!("{sealer:?}"), "SecretSealer(<hidden>)");
    }
}
