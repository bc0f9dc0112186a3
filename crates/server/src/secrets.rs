//! Randomness for everything Gatehouse hands out (codes, tokens, session
//! ids, client secrets, CSRF and device nonces) and keys with: one source,
//! the operating system's RNG, in one place.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;

/// `N` bytes from the OS RNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// 256 bits from the OS RNG, base64url (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// The alphabet of codes people type: no 0/o, 1/l/i, so nothing is
/// misread: 31 letters and digits (the dash only pads the table to 32).
const TYPABLE: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz23456789-";

/// A code a person copies by hand: `len` characters of 5 bits each from an
/// unambiguous lowercase alphabet (a recovery code: 10 characters, 50 bits).
pub fn typable_code(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in random_bytes::<32>() {
            // 31 letters and digits; the 32nd slot (the dash) is skipped.
            let c = TYPABLE[usize::from(b & 31)];
            if c != b'-' && out.len() < len {
                out.push(char::from(c));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_ne!(random_bytes::<32>(), [0u8; 32]);
        let c = typable_code(10);
        assert_eq!(c.len(), 10);
        assert!(c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() && !b"01lio".contains(&b)));
        assert_ne!(c, typable_code(10));
    }
}
