//! Tests against fixed tokens made once by the OpenSSL side and kept as
//! test data (`testdata/tokens.json`: public JWKs, signed tokens, and a
//! test-only private JWK with a JWE to it), so the pure-Rust backend is
//! tested on real tokens in a build without OpenSSL too; with OpenSSL
//! built in, both backends get the same cases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use crate::{decrypt, verify, Alg, Backend, JoseError, PrivateKey, PublicKey};

fn fixture() -> Value {
    serde_json::from_str(include_str!("testdata/tokens.json")).unwrap()
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
        let token = case["token"].as_str().unwrap();
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
    let token = case["token"].as_str().unwrap();
    let signer = &fixture["ES256"]["jwk"];
    for backend in backends() {
        let private =
            PrivateKey::from_private_jwk_with(&case["private_jwk"].to_string(), backend).unwrap();
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
