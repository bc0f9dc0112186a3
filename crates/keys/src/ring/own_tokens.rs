//! Tokens Gatehouse is both sender and only recipient of: access tokens
//! addressed to itself (direct AES-256-GCM under a per-day key derived from
//! the KEK) and the sealed token references (`gh_ref`) carried in JWE
//! headers. Every instance sharing the KEK opens them; nothing is stored.

use super::KeyRing;
use crate::{Kek, KeyError, VerifiedJws};

/// The kid prefix of access tokens Gatehouse encrypts to itself.
const OWN_TOKEN_KID_PREFIX: &str = "gh-dir-";

/// A derived key handed to the JOSE crate for direct encryption.
struct RawKey(Kek);

impl AsRef<[u8]> for RawKey {
    fn as_ref(&self) -> &[u8] {
        self.0.bytes()
    }
}

impl KeyRing {
    /// The key of the own-token day `day` (Unix days) and its kid.
    fn own_token_day_key(&self, day: i64) -> Kek {
        self.own_token_key.derive(&day.to_be_bytes())
    }

    /// Encrypts `payload` (an access token addressed to Gatehouse itself)
    /// with direct AES-256-GCM (`alg: dir`): Gatehouse is sender and only
    /// recipient, so a symmetric key does what an ECDH key agreement did at
    /// a hundredth of the cost. The key is derived from the KEK per UTC day
    /// (kid `gh-dir-<day>`): every instance sharing the KEK has it, nothing
    /// is stored, and no key serves more than a day of tokens (well under
    /// the 2^32 random-nonce limit of AES-GCM).
    pub fn encrypt_own_token(
        &self,
        payload: &str,
        cty: Option<&str>,
        extra: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<String, KeyError> {
        let day = self.today();
        let kid = format!("{OWN_TOKEN_KID_PREFIX}{day}");
        Ok(gatehouse_jose::encrypt_dir(
            payload,
            self.own_token_day_key(day).bytes(),
            &kid,
            cty,
            extra,
        )?)
    }

    /// Decrypts a token made by [`KeyRing::encrypt_own_token`] on any
    /// instance sharing the KEK. Keys of yesterday, today and tomorrow (clock
    /// skew between instances) are accepted: access tokens live at most a
    /// day.
    pub fn decrypt_own_token(
        &self,
        token: &str,
    ) -> Result<(serde_json::Map<String, serde_json::Value>, Vec<u8>), KeyError> {
        Ok(gatehouse_jose::decrypt_dir(token, |kid| {
            let day: i64 = kid.strip_prefix(OWN_TOKEN_KID_PREFIX)?.parse().ok()?;
            self.day_in_window(day)
                .then(|| RawKey(self.own_token_day_key(day)))
        })?)
    }

    /// Opens an access token made by [`KeyRing::encrypt_own_token`] and
    /// returns its nested JWS's header and claims. The AES-GCM tag under a
    /// key only Gatehouse holds already authenticates the JWS, so its
    /// signature is not verified again (that would double the cost for
    /// nothing); its kid must still be a trusted signing key, so revoking a
    /// key still ends its tokens.
    pub fn open_own_token(&self, token: &str) -> Result<VerifiedJws, KeyError> {
        let (_, payload) = self.decrypt_own_token(token)?;
        let jws = std::str::from_utf8(&payload)
            .map_err(|_| KeyError::invalid_token("nested token is not text"))?;
        let inner = crate::peek_claims(jws)?;
        let trusted = inner
            .header
            .get("kid")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|kid| self.snapshot().verifiers.contains_key(kid));
        if !trusted {
            return Err(KeyError::invalid_token("signing key no longer trusted"));
        }
        Ok(VerifiedJws {
            header: inner.header,
            claims: inner.claims,
        })
    }

    /// Today in Unix days, from the ring's clock.
    fn today(&self) -> i64 {
        self.clock.now().div_euclid(86_400)
    }

    /// Keys of yesterday, today and tomorrow (clock skew between instances)
    /// open: access tokens live at most a day.
    fn day_in_window(&self, day: i64) -> bool {
        let today = self.today();
        (today - 1..=today + 1).contains(&day)
    }

    /// Is `kid` the kid of a token made by [`KeyRing::encrypt_own_token`]?
    pub fn is_own_token_kid(kid: &str) -> bool {
        kid.starts_with(OWN_TOKEN_KID_PREFIX)
    }

    /// Seals a small token reference (AES-256-GCM) as base64url. Only
    /// Gatehouse can open it; anyone can carry it. Like own tokens, the key
    /// is derived per UTC day, which prefixes the sealed bytes (4 bytes, big
    /// endian), so no key seals more than a day of references.
    pub fn seal_reference(&self, plaintext: &[u8]) -> Result<String, KeyError> {
        use base64::Engine;
        let day_bytes = u32::try_from(self.today())
            .map_err(|_| KeyError::crypto("clock out of range".to_owned()))?
            .to_be_bytes();
        let sealed = self
            .reference_key
            .derive(&day_bytes)
            .seal("gh_ref", plaintext)?;
        let mut out = Vec::with_capacity(4 + sealed.len());
        out.extend_from_slice(&day_bytes);
        out.extend_from_slice(&sealed);
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a reference sealed by [`KeyRing::seal_reference`] (by any
    /// instance sharing the KEK) on the day before, of or after its sealing.
    /// `None` for anything forged, damaged or too old (including references
    /// of the releases before day keys, sealed under an undated key).
    pub fn open_reference(&self, sealed: &str) -> Option<Vec<u8>> {
        use base64::Engine;
        if sealed.len() > 2048 {
            return None;
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed)
            .ok()?;
        let (day_bytes, sealed) = raw.split_first_chunk::<4>()?;
        if !self.day_in_window(i64::from(u32::from_be_bytes(*day_bytes))) {
            return None;
        }
        self.reference_key
            .derive(day_bytes)
            .open("gh_ref", sealed)
            .ok()
    }
}
