//! Tests of the pure-Rust backend: the RFC vectors of its hand-written
//! parts, and tokens made by the OpenSSL side checked by the pure side.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::testutil::*;
use crate::*;

fn b64d(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 7518 Appendix C: ECDH-ES between Alice's ephemeral key and Bob's
/// key, Concat KDF for A128GCM with apu "Alice" and apv "Bob".
#[test]
fn concat_kdf_matches_rfc7518_appendix_c() {
    let bob =
        p256::SecretKey::from_slice(&b64d("VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw")).unwrap();
    let alice = p256::PublicKey::from_sec1_bytes(
        &sec1_point(
            &b64d("gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0"),
            &b64d("SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"),
        )
        .unwrap(),
    )
    .unwrap();
    let z = p256::ecdh::diffie_hellman(bob.to_nonzero_scalar(), alice.as_affine());
    let key = concat_kdf(
        z.raw_secret_bytes().as_slice(),
        "A128GCM",
        b"Alice",
        b"Bob",
        16,
    );
    assert_eq!(key.as_slice(), b64d("VqqN6vgjbSBcIijNcacQGg"));
}

/// RFC 3394 4.6: 256 bits of key data wrapped with a 256-bit KEK.
#[test]
fn key_unwrap_matches_rfc3394() {
    let kek = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
    let wrapped =
        hex("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21");
    let key = aes256_key_unwrap(&kek, &wrapped).unwrap();
    assert_eq!(
        key.as_slice(),
        hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
    );
    let mut tampered = wrapped.clone();
    tampered[20] ^= 1;
    assert!(aes256_key_unwrap(&kek, &tampered).is_none());
    assert!(aes256_key_unwrap(&kek, &wrapped[..16]).is_none());
}

/// The pure verifier of an OpenSSL key's public JWK.
fn pure_public(private: &PrivateKey) -> PublicKey {
    PublicKey::from_jwk_value_for_verification_with(
        &private.public_key().jwk_json(),
        None,
        Backend::RustCrypto,
    )
    .unwrap()
}

#[test]
fn openssl_signatures_verify_on_the_pure_backend() {
    for alg in [Alg::ES256, Alg::RS256, Alg::PS256, Alg::EdDSA] {
        let (_, private) = key(alg);
        let token = sign(&private, "at+jwt", &claims()).unwrap();
        let public = pure_public(&private);
        let verified = verify(&token, &[alg], |_| Some(public.clone())).unwrap();
        assert_eq!(verified.claims, claims(), "{alg}");
        // A changed payload or signature fails.
        let (head, sig) = token.rsplit_once('.').unwrap();
        let mut sig = b64d(sig);
        sig[10] ^= 1;
        let bad_sig = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&sig));
        assert_eq!(
            invalid_token(verify(&bad_sig, &[alg], |_| Some(public.clone()))),
            "bad signature",
            "{alg}"
        );
        let mut other = claims();
        other.insert("sub".into(), "someone-else".into());
        let forged = sign(&other_key(alg), "at+jwt", &other).unwrap();
        let forged = format!(
            "{}.{}",
            forged.rsplit_once('.').unwrap().0,
            token.rsplit_once('.').unwrap().1
        );
        invalid_token(verify(&forged, &[alg], |_| Some(public.clone())));
    }
}

#[test]
fn openssl_jwes_decrypt_on_the_pure_backend() {
    let (generated, opened) = key(Alg::EcdhEsA256kw);
    let pure =
        PrivateKey::from_private_jwk_with(&private_jwk(generated), Backend::RustCrypto).unwrap();
    assert_eq!(pure.kid(), generated.kid);
    assert_eq!(
        pure.public_key().thumbprint(),
        opened.public_key().thumbprint()
    );
    let token = encrypt("nested.jws.here", &opened.public_key(), Some("JWT"), None).unwrap();
    let (header, plaintext) = decrypt(&token, |_| Some(&pure)).unwrap();
    assert_eq!(plaintext, b"nested.jws.here");
    assert_eq!(header["cty"], "JWT");
    // Both backends refuse every tampered part alike.
    let openssl = PrivateKey::from_private_jwk(&private_jwk(generated)).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    for i in 1..5 {
        let mut bytes = b64d(parts[i]);
        bytes[0] ^= 1;
        let mut tampered = parts.clone();
        let changed = URL_SAFE_NO_PAD.encode(&bytes);
        tampered[i] = &changed;
        let tampered = tampered.join(".");
        for key in [&pure, &openssl] {
            assert_eq!(
                invalid_token(decrypt(&tampered, |_| Some(key))),
                "decryption failed",
                "part {i}"
            );
        }
    }
    // A token for another key does not open.
    let other = encrypt("x", &other_key(Alg::EcdhEsA256kw).public_key(), None, None).unwrap();
    invalid_token(decrypt(&other, |_| Some(&pure)));
}

#[test]
fn the_pure_backend_refuses_rsa_oaep_and_es384() {
    let (generated, _) = key(Alg::RsaOaep256);
    let openssl = PrivateKey::from_private_jwk(&private_jwk(generated)).unwrap();
    assert_eq!(openssl.alg(), Alg::RsaOaep256);
    assert_eq!(
        PrivateKey::from_private_jwk_with(&private_jwk(generated), Backend::RustCrypto)
            .unwrap_err(),
        JoseError::Unsupported("RSA-OAEP-256 decryption needs the openssl backend")
    );
    let p384 = serde_json::json!({
        "kty": "EC", "crv": "P-384", "alg": "ES384",
        "x": "iA7lWQLzVrKGEFjfGMfMHfTEZ2KnLiKU7JuNT3E7ygsfE7ygXJ-2R4TpmJY5EWEH",
        "y": "Ps7ulNlbdXzlnnfrcDj7JyuRxz-7dFYJ7lGGlZKzYmBcoEeAgXunNBeT5S1y1pj5",
    });
    let refused = PublicKey::from_jwk_value_for_verification_with(&p384, None, Backend::RustCrypto);
    assert!(
        matches!(
            refused,
            Err(JoseError::Unsupported(_)) | Err(JoseError::InvalidKey(_))
        ),
        "{refused:?}"
    );
}

/// A point's coordinates must be 32 bytes each: a 31 + 33 split of the
/// same 64 bytes would otherwise name another point.
#[test]
fn sec1_points_need_32_byte_coordinates() {
    assert_eq!(sec1_point(&[1; 32], &[2; 32]).map(|p| p.len()), Some(65));
    assert!(sec1_point(&[1; 31], &[2; 33]).is_none());
    assert!(sec1_point(&[1; 33], &[2; 31]).is_none());
    assert!(sec1_point(&[], &[]).is_none());
}

/// Odd public keys get the same answer from both backends: RSA exponents
/// that are even, below 3 or above 2^33 - 1 are refused, the largest
/// allowed one is accepted; an even RSA modulus is refused (OpenSSL alone
/// took it); small-order Ed25519 points are refused.
#[test]
fn both_backends_agree_on_odd_keys() {
    let (generated, _) = key(Alg::RS256);
    let rsa: Value = serde_json::from_str(&generated.public_jwk).unwrap();
    let with_e = |e: u64| {
        let mut jwk = rsa.clone();
        let bytes = e.to_be_bytes();
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(7);
        jwk["e"] = b64(&bytes[start..]).into();
        jwk
    };
    let with_n = |edit: fn(&mut Vec<u8>)| {
        let mut jwk = rsa.clone();
        let mut n = b64d(jwk["n"].as_str().unwrap());
        edit(&mut n);
        jwk["n"] = b64(&n).into();
        jwk
    };
    let mut cases = vec![
        (with_e(3), true),
        (with_e(65_537), true),
        ((with_e((1 << 33) - 1)), true),
        (with_e((1 << 33) + 1), false),
        (with_e(u64::MAX), false),
        (with_e(1), false),
        (with_e(2), false),
        (with_e(65_536), false),
        // The same modulus, one less: even, same size.
        (with_n(|n| *n.last_mut().unwrap() ^= 1), false),
        // Twice a 2048-bit odd number: 2049 bits, even.
        (
            with_n(|n| {
                let mut carry = 0;
                for byte in n.iter_mut().rev() {
                    let doubled = (u16::from(*byte) << 1) | carry;
                    *byte = doubled as u8;
                    carry = doubled >> 8;
                }
                n.insert(0, carry as u8);
            }),
            false,
        ),
        // A leading zero byte changes nothing.
        (with_n(|n| n.insert(0, 0)), true),
    ];
    let (ed, _) = key(Alg::EdDSA);
    let ed: Value = serde_json::from_str(&ed.public_jwk).unwrap();
    cases.push((ed.clone(), true));
    for small_order in [
        // The identity, the point of order 2, a point of order 4, and one
        // of order 8 (libsodium's list of small-order encodings).
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    ] {
        let bytes = hex(small_order);
        let point: [u8; 32] = bytes.clone().try_into().unwrap();
        assert!(
            ed25519_dalek::VerifyingKey::from_bytes(&point).is_ok_and(|k| k.is_weak()),
            "{small_order} is a small-order point"
        );
        let mut jwk = ed.clone();
        jwk["x"] = b64(&bytes).into();
        cases.push((jwk, false));
    }
    for (jwk, accepted) in cases {
        for backend in [Backend::OpenSsl, Backend::RustCrypto] {
            let result = PublicKey::from_jwk_value_for_verification_with(&jwk, None, backend);
            assert_eq!(result.is_ok(), accepted, "{backend:?} {jwk}: {result:?}");
        }
    }
}

/// The one difference left between the backends, on signatures and not on
/// keys: an EdDSA signature whose R is a small-order point (here the
/// identity) is refused by the pure backend (ed25519-dalek's
/// `verify_strict`) and accepted by OpenSSL, whose check is the plain
/// equation. Only the key's holder can make one (s = k * a needs the
/// secret scalar a); an honest signer's R = r * B never is one. The
/// signature is built by hand from a fixed seed: R = identity, k =
/// SHA-512(R || A || M) mod L, s = k * a mod L, so s * B - k * A = R.
#[test]
fn an_ed25519_signature_with_a_small_order_r_is_refused_on_the_pure_backend_only() {
    use openssl::pkey::{Id, PKey};
    use rsa::BigUint;
    use sha2::{Digest as _, Sha512};
    let seed = [42u8; 32];
    let pkey = PKey::private_key_from_raw_bytes(&seed, Id::ED25519).unwrap();
    let a_point = pkey.raw_public_key().unwrap();
    let jwk = serde_json::json!({
        "kty": "OKP", "crv": "Ed25519", "x": b64(&a_point), "kid": "ed", "alg": "EdDSA",
    });
    // RFC 8032 5.1.5: the secret scalar is the clamped first half of
    // SHA-512(seed), little-endian.
    let mut a = Sha512::digest(seed)[..32].to_vec();
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let order = BigUint::from_bytes_be(&hex(
        "1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed",
    ));
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let input = format!(
        "{}.{}",
        b64_json(&serde_json::json!({"alg": "EdDSA", "kid": "ed", "typ": "JWT"})),
        b64_json(&Value::Object(claims()))
    );
    let mut hasher = Sha512::new();
    hasher.update(identity);
    hasher.update(&a_point);
    hasher.update(input.as_bytes());
    let k = BigUint::from_bytes_le(&hasher.finalize()) % &order;
    let s = (k * BigUint::from_bytes_le(&a)) % &order;
    let mut s = s.to_bytes_le();
    s.resize(32, 0);
    let token = format!("{input}.{}", b64([identity.as_slice(), &s].concat()));

    let openssl_key =
        PublicKey::from_jwk_value_for_verification_with(&jwk, None, Backend::OpenSsl).unwrap();
    let pure_key =
        PublicKey::from_jwk_value_for_verification_with(&jwk, None, Backend::RustCrypto).unwrap();
    let verified = verify(&token, &[Alg::EdDSA], |_| Some(openssl_key.clone())).unwrap();
    assert_eq!(verified.claims, claims());
    assert_eq!(
        invalid_token(verify(&token, &[Alg::EdDSA], |_| Some(pure_key.clone()))),
        "bad signature"
    );
}

/// The pure backend verifies RS384/RS512/PS384/PS512 signatures made by
/// OpenSSL directly, and refuses them once altered.
#[test]
fn pure_backend_verifies_openssl_rsa_sha384_and_sha512_signatures() {
    use openssl::hash::MessageDigest;
    use openssl::rsa::Padding;
    use openssl::sign::{RsaPssSaltlen, Signer};
    let (generated, _) = key(Alg::RS256);
    let pkey = openssl::pkey::PKey::private_key_from_pkcs8(generated.private_pkcs8()).unwrap();
    let mut jwk: Value = serde_json::from_str(&generated.public_jwk).unwrap();
    for (alg, digest, pss) in [
        (Alg::RS384, MessageDigest::sha384(), false),
        (Alg::RS512, MessageDigest::sha512(), false),
        (Alg::PS384, MessageDigest::sha384(), true),
        (Alg::PS512, MessageDigest::sha512(), true),
    ] {
        jwk["alg"] = alg.as_str().into();
        jwk["kid"] = "rsa".into();
        let public =
            PublicKey::from_jwk_value_for_verification_with(&jwk, None, Backend::RustCrypto)
                .unwrap();
        let header = serde_json::json!({"alg": alg.as_str(), "kid": "rsa", "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64_json(&header),
            b64_json(&Value::Object(claims()))
        );
        let mut signer = Signer::new(digest, &pkey).unwrap();
        if pss {
            signer.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
            signer
                .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
                .unwrap();
        }
        let signature = signer.sign_oneshot_to_vec(input.as_bytes()).unwrap();
        let token = format!("{input}.{}", b64(&signature));
        let verified = verify(&token, &[alg], |_| Some(public.clone())).unwrap();
        assert_eq!(verified.claims, claims(), "{alg}");
        let mut bad = signature.clone();
        bad[0] ^= 1;
        let forged = format!("{input}.{}", b64(&bad));
        assert_eq!(
            invalid_token(verify(&forged, &[alg], |_| Some(public.clone()))),
            "bad signature",
            "{alg}"
        );
    }
}

/// The pure backend refuses an ECDH-ES token whose ephemeral key is off
/// P-256, before any key agreement.
#[test]
fn pure_backend_refuses_an_off_curve_ephemeral_key() {
    let (generated, opened) = key(Alg::EcdhEsA256kw);
    let pure =
        PrivateKey::from_private_jwk_with(&private_jwk(generated), Backend::RustCrypto).unwrap();
    let token = encrypt("payload", &opened.public_key(), None, None).unwrap();
    let (header, rest) = token.split_once('.').unwrap();
    let mut header = decode_b64_json(header);
    let mut y = b64d(header["epk"]["y"].as_str().unwrap());
    y[31] ^= 1;
    header["epk"]["y"] = b64(&y).into();
    let off_curve = format!("{}.{rest}", b64_json(&header));
    assert_eq!(
        invalid_token(decrypt(&off_curve, |_| Some(&pure))),
        "ephemeral key is not a valid P-256 point"
    );
}
