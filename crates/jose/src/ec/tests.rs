//! Tests of the OpenSSL P-256 fast path: its primitives against RFC
//! vectors and an independent verifier, and its tokens opened by
//! josekit alone and by the pure-Rust backend.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use josekit::jwe::{self as josekit_jwe, ECDH_ES_A256KW};
use serde_json::{json, Map, Value};

use super::*;
use crate::testutil::*;
use crate::*;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 3394 4.6: 256 bits of key data wrapped with a 256-bit KEK.
#[test]
fn key_wrap_matches_rfc3394() {
    let kek: [u8; 32] = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
        .try_into()
        .unwrap();
    let key: [u8; 32] = hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
        .try_into()
        .unwrap();
    let mut out = [0u8; WRAPPED_CEK_LEN];
    aes256_key_wrap(&kek, &key, &mut out).unwrap();
    assert_eq!(
        out.as_slice(),
        hex("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
    );
}

/// ES256 signatures are 64 raw bytes (R || S, RFC 7518 3.4) that an
/// independent implementation (ring) accepts, and differ per call.
#[test]
fn es256_signatures_are_raw_and_verify_independently() {
    let (generated, private) = key(Alg::ES256);
    let pkey = openssl::pkey::PKey::private_key_from_pkcs8(generated.private_pkcs8()).unwrap();
    let signer = Es256Signer::new(&pkey).unwrap();
    let point = pkey
        .ec_key()
        .unwrap()
        .public_key()
        .to_bytes(
            p256_group().unwrap(),
            PointConversionForm::UNCOMPRESSED,
            &mut BigNumContext::new().unwrap(),
        )
        .unwrap();
    let ring_key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point);
    let first = signer.sign(b"signing input").unwrap();
    let second = signer.sign(b"signing input").unwrap();
    assert_eq!(first.len(), 64);
    assert_ne!(first, second, "ECDSA nonces must differ");
    for signature in [&first, &second] {
        ring_key.verify(b"signing input", signature).unwrap();
    }
    assert!(ring_key.verify(b"another input", &first).is_err());
    // The key's `sign` goes through this signer.
    let token = sign(&private, "JWT", &claims()).unwrap();
    let (input, signature) = token.rsplit_once('.').unwrap();
    ring_key
        .verify(
            input.as_bytes(),
            &URL_SAFE_NO_PAD.decode(signature).unwrap(),
        )
        .unwrap();
}

/// A256GCM only with a 256-bit key; an empty plaintext still gets a tag.
#[test]
fn gcm_seal_needs_a_256_bit_key() {
    let iv = [7u8; GCM_IV_LEN];
    assert!(matches!(
        gcm_seal(&[1u8; 16], &iv, b"x", b"aad"),
        Err(JoseError::InvalidKey(_))
    ));
    let (ciphertext, tag) = gcm_seal(&[1u8; 32], &iv, b"", b"aad").unwrap();
    assert!(ciphertext.is_empty());
    assert_ne!(tag, [0u8; GCM_TAG_LEN]);
}

/// Points off P-256 (or of the wrong length) are not encryption keys.
#[test]
fn encrypter_refuses_points_off_the_curve() {
    let mut one = [0u8; 32];
    one[31] = 1;
    assert!(EcdhEsEncrypter::new(&one, &one).is_err());
    assert!(EcdhEsEncrypter::new(&[1u8; 31], &[1u8; 33]).is_err());
    let (generated, _) = key(Alg::EcdhEsA256kw);
    let jwk: Value = serde_json::from_str(&generated.public_jwk).unwrap();
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let mut y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
    assert!(EcdhEsEncrypter::new(&x, &y).is_ok());
    y[31] ^= 1;
    assert!(EcdhEsEncrypter::new(&x, &y).is_err());
}

/// Every key wrapping wipes its ECDH shared point (the shared secret)
/// when it frees it: one clearing free per wrapping, through `wrap` and
/// through `encrypt`, and the wrapped key still opens with josekit.
#[test]
fn key_wrapping_wipes_the_shared_point() {
    let (generated, private) = key(Alg::EcdhEsA256kw);
    let recipient = PublicKey::from_jwk_json(&generated.public_jwk).unwrap();
    let crate::jwk::PublicOp::EcdhEs(encrypter) = &recipient.0.op else {
        panic!("an ECDH-ES key is on the fast path")
    };
    let before = secret_point::tests::cleared();
    for _ in 0..3 {
        encrypter.wrap(&[7u8; CEK_LEN]).unwrap();
    }
    assert_eq!(secret_point::tests::cleared(), before + 3);
    let token = encrypt("payload", &recipient, None, None).unwrap();
    assert_eq!(secret_point::tests::cleared(), before + 4);
    let (_, plaintext) = decrypt(&token, |_| Some(&private)).unwrap();
    assert_eq!(plaintext, b"payload");
}

/// Tokens of the fast path, for several recipient keys, with and without
/// kid, with a chosen or a random CEK, and header members that need JSON
/// escaping: josekit alone (its own ECDH, KDF, unwrap and AES-GCM), this
/// crate's OpenSSL decryption, and the pure-Rust backend all open them.
#[test]
fn fast_path_tokens_open_with_josekit_and_the_pure_backend() {
    let mut extra = Map::new();
    extra.insert("gh_ref".into(), json!("quote \" backslash \\ é \u{1}"));
    extra.insert(
        "n".into(),
        json!("line\nbreak, tab\t, </script> and \u{7f}"),
    );
    for round in 0..4 {
        let kid = format!("api-{round}");
        let generated = generate_key_pair(Alg::EcdhEsA256kw, &kid).unwrap();
        let mut public: Value = serde_json::from_str(&generated.public_jwk).unwrap();
        if round == 3 {
            public.as_object_mut().unwrap().remove("kid");
        }
        let recipient = PublicKey::from_jwk_json(&public.to_string()).unwrap();
        assert!(matches!(recipient.0.op, crate::jwk::PublicOp::EcdhEs(_)));
        let payload = format!("eyJhbGciOiJFUzI1NiJ9.payload-{round}.sig");
        let cek = crate::testutil::random_cek();
        let tokens = [
            encrypt(&payload, &recipient, Some("JWT"), Some(&extra)).unwrap(),
            encrypt_with_cek(&payload, &recipient, &cek, Some("JWT"), Some(&extra)).unwrap(),
        ];
        for token in &tokens {
            // josekit by itself.
            let decrypter = ECDH_ES_A256KW
                .decrypter_from_der(generated.private_pkcs8())
                .unwrap();
            let (plaintext, header) = josekit_jwe::deserialize_compact(token, &decrypter).unwrap();
            assert_eq!(plaintext, payload.as_bytes());
            assert_eq!(header.algorithm(), Some("ECDH-ES+A256KW"));
            assert_eq!(header.content_encryption(), Some("A256GCM"));
            assert_eq!(header.key_id(), (round != 3).then_some(kid.as_str()));
            assert_eq!(header.content_type(), Some("JWT"));
            assert_eq!(header.claim("gh_ref"), extra.get("gh_ref"));
            assert_eq!(header.claim("n"), extra.get("n"));

            // This crate's OpenSSL decryption.
            let opened =
                PrivateKey::from_pkcs8(&kid, Alg::EcdhEsA256kw, generated.private_pkcs8()).unwrap();
            let (header, plaintext) = decrypt(token, |_| Some(&opened)).unwrap();
            assert_eq!(plaintext, payload.as_bytes());
            assert_eq!(header["epk"]["kty"], "EC");
            assert_eq!(header["epk"]["crv"], "P-256");

            // The pure-Rust backend.
            #[cfg(feature = "rustcrypto")]
            {
                let pure = PrivateKey::from_private_jwk_with(
                    &private_jwk(&generated),
                    Backend::RustCrypto,
                )
                .unwrap();
                let (_, plaintext) = decrypt(token, |_| Some(&pure)).unwrap();
                assert_eq!(plaintext, payload.as_bytes());
            }
        }
        // The chosen CEK opens its token alone; each token has a fresh epk.
        let (_, plaintext) = decrypt_with_cek(&tokens[1], &cek).unwrap();
        assert_eq!(plaintext, payload.as_bytes());
        let epk = |token: &str| decode_b64_json(token.split('.').next().unwrap())["epk"].clone();
        assert_ne!(epk(&tokens[0]), epk(&tokens[1]));
        // A CEK of the wrong length is refused.
        invalid_key(encrypt_with_cek(
            &payload,
            &recipient,
            &cek[..16],
            None,
            None,
        ));
    }
}
