//! The Concat KDF of RFC 7518 4.6.2 (NIST SP 800-56A single-step, SHA-256)
//! that turns an ECDH-ES shared secret into a key-wrapping key; one copy
//! for the OpenSSL encrypting side and the pure-Rust decrypting side.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// `len` bytes derived from the shared secret `z`, the algorithm id and
/// the party infos, each length-prefixed (RFC 7518 4.6.2).
#[cfg(any(feature = "rustcrypto", test))]
pub(crate) fn concat_kdf(
    z: &[u8],
    alg_id: &str,
    apu: &[u8],
    apv: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let prefixed = |hasher: &mut Sha256, data: &[u8]| {
        hasher.update((data.len() as u32).to_be_bytes());
        hasher.update(data);
    };
    let mut out = Zeroizing::new(Vec::with_capacity(len + 32));
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut hasher = Sha256::new();
        hasher.update(counter.to_be_bytes());
        hasher.update(z);
        prefixed(&mut hasher, alg_id.as_bytes());
        prefixed(&mut hasher, apu);
        prefixed(&mut hasher, apv);
        hasher.update(((len * 8) as u32).to_be_bytes());
        out.extend_from_slice(&hasher.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// The 256-bit key-wrapping key of ECDH-ES+A256KW with empty `apu` and
/// `apv` (what Gatehouse sends): [`concat_kdf`] in one SHA-256 call.
///
/// The KDF input is assembled in one buffer that is wiped on drop and
/// hashed in a single call: its first 64-byte block, the one holding `z`,
/// is then compressed straight from that buffer, and only the last two
/// bytes (the key length) are copied into the hasher's own buffer, which
/// is not wiped. (Feeding `z` on its own would leave it there.)
#[cfg(feature = "openssl")]
pub(crate) fn a256kw_kek(z: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    const ALG_ID: &[u8] = b"ECDH-ES+A256KW";
    // counter || Z || len(alg) || alg || len(apu) || len(apv) || key bits
    const LEN: usize = 4 + 32 + 4 + ALG_ID.len() + 4 + 4 + 4;
    let mut input = Zeroizing::new([0u8; LEN]);
    let mut at = 0;
    for part in [
        &1u32.to_be_bytes()[..],
        z,
        &(ALG_ID.len() as u32).to_be_bytes(),
        ALG_ID,
        &0u32.to_be_bytes(),
        &0u32.to_be_bytes(),
        &256u32.to_be_bytes(),
    ] {
        input[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    let mut kek = Zeroizing::new([0u8; 32]);
    Sha256::new_with_prefix(input.as_slice()).finalize_into(
        sha2::digest::generic_array::GenericArray::from_mut_slice(kek.as_mut_slice()),
    );
    kek
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 7518 Appendix C: the ECDH-ES example's Z, "A128GCM", apu
    /// "Alice", apv "Bob", 128 bits.
    #[test]
    fn rfc7518_appendix_c_vector() {
        let z = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let key = concat_kdf(&z, "A128GCM", b"Alice", b"Bob", 16);
        assert_eq!(
            key.as_slice(),
            [86, 170, 141, 234, 248, 35, 109, 32, 92, 34, 40, 205, 113, 167, 16, 26]
        );
    }

    #[cfg(feature = "openssl")]
    #[test]
    fn the_one_call_kek_is_the_general_kdf() {
        for z in [[0u8; 32], [7u8; 32], [0xffu8; 32]] {
            assert_eq!(
                a256kw_kek(&z).as_slice(),
                concat_kdf(&z, "ECDH-ES+A256KW", b"", b"", 32).as_slice()
            );
        }
    }
}
