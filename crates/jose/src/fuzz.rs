//! Property-based fuzz targets for every JOSE parser of attacker input:
//! header peeking, JWS verification (asymmetric and HMAC), DPoP proofs,
//! JWE decryption (to an own key and `alg: dir`) and public JWK parsing.
//!
//! Properties: garbage, JOSE-shaped garbage (real algorithm names and kids,
//! parts of the exact lengths the parsers check) and arbitrary JSON are
//! refused with an error, never a panic; a valid token with any one
//! character changed fails. Every parser caps its input (16 KiB), so each
//! case is bounded. Case counts are small enough for CI (see
//! [`config`]); `PROPTEST_CASES=100000 cargo test -p gatehouse-jose fuzz`
//! runs them longer. A failing case is saved under
//! `crates/jose/proptest-regressions/` and replayed first on the next run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};

use std::fmt;

use crate::*;

/// `cases` unless `PROPTEST_CASES` asks for another number.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// One opened key per algorithm (kid `fuzz-<alg>`), generated once.
fn keys() -> &'static [PrivateKey] {
    static KEYS: OnceLock<Vec<PrivateKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        Alg::ALL
            .iter()
            .map(|&alg| {
                let kid = format!("fuzz-{alg}");
                let g = generate_key_pair(alg, &kid).unwrap();
                PrivateKey::from_pkcs8(&kid, alg, g.private_pkcs8()).unwrap()
            })
            .collect()
    })
}

fn key(alg: Alg) -> &'static PrivateKey {
    keys().iter().find(|k| k.alg() == alg).unwrap()
}

fn public_by_kid(kid: &str) -> Option<PublicKey> {
    keys()
        .iter()
        .map(PrivateKey::public_key)
        .find(|k| k.kid() == Some(kid))
}

const SIG_ALGS: [Alg; 4] = [Alg::RS256, Alg::PS256, Alg::ES256, Alg::EdDSA];
const ENC_ALGS: [Alg; 2] = [Alg::RsaOaep256, Alg::EcdhEsA256kw];
/// Kid of the `alg: dir` key in these tests.
const DIR_KID: &str = "gh-dir-1";
/// A 64-byte HMAC secret (long enough for HS512).
const HMAC_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn dir_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(crate::testutil::random_cek)
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Exactly representable, so claims compare equal after a round trip.
        any::<i32>().prop_map(|i| json!(f64::from(i) / 4.0)),
        ".{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JOSE header as an attacker would write it: real member names with
/// real or wrong values, including the ones the parsers refuse.
fn header() -> impl Strategy<Value = Map<String, Value>> {
    let alg = prop_oneof![
        prop::sample::select(vec![
            "RS256",
            "PS256",
            "ES256",
            "EdDSA",
            "RSA-OAEP-256",
            "ECDH-ES+A256KW",
            "dir",
            "none",
            "HS256",
            "HS384",
            "HS512",
            "RSA1_5",
            "ECDH-ES",
            "A256KW",
            "PBES2-HS256+A128KW",
        ])
        .prop_map(Value::from),
        json_value(),
    ];
    let kid = prop_oneof![
        prop::sample::select(
            Alg::ALL
                .iter()
                .map(|a| format!("fuzz-{a}"))
                .chain([DIR_KID.to_owned(), "gh-dir-x".to_owned()])
                .collect::<Vec<_>>()
        )
        .prop_map(Value::from),
        json_value(),
    ];
    let enc = prop_oneof![
        Just(Value::from("A256GCM")),
        Just(Value::from("A128CBC-HS256")),
        json_value()
    ];
    let epk = prop_oneof![
        Just(key(Alg::EcdhEsA256kw).public_key().jwk_json()),
        (
            prop::sample::select(vec!["EC", "OKP", "RSA"]),
            prop::sample::select(vec!["P-256", "P-384", "X25519"]),
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(kty, crv, x, y)| json!({"kty": kty, "crv": crv, "x": b64(x), "y": b64(y)})),
        json_value(),
    ];
    let extra = prop::collection::btree_map(
        prop::sample::select(vec![
            "typ", "cty", "crit", "zip", "jwk", "jku", "x5u", "x5c", "apu", "apv", "p2s", "p2c",
            "iv", "tag", "b64", "gh_ref",
        ]),
        json_value(),
        0..3,
    );
    (
        prop::option::weighted(0.95, alg),
        prop::option::weighted(0.9, kid),
        prop::option::weighted(0.7, enc),
        prop::option::weighted(0.5, epk),
        extra,
    )
        .prop_map(|(alg, kid, enc, epk, extra)| {
            let mut h = Map::new();
            for (name, value) in [("alg", alg), ("kid", kid), ("enc", enc), ("epk", epk)] {
                if let Some(v) = value {
                    h.insert(name.into(), v);
                }
            }
            for (name, value) in extra {
                h.insert(name.into(), value);
            }
            h
        })
}

/// One base64url part: arbitrary bytes, often of a length the parsers
/// check exactly (12-byte IV, 16-byte tag, 40-byte wrapped key,
/// 64-byte signature, 256-byte RSA block), sometimes not base64url at all.
fn part() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![0usize, 12, 16, 40, 64, 256])
            .prop_flat_map(|n| prop::collection::vec(any::<u8>(), n..=n))
            .prop_map(b64),
        3 => prop::collection::vec(any::<u8>(), 0..300).prop_map(b64),
        1 => "[A-Za-z0-9_=+/ -]{0,40}",
    ]
}

/// Input for any compact-serialization parser: raw strings, and tokens of
/// one to six parts whose first part is a (JOSE-like or arbitrary) JSON
/// header and whose others are base64url of arbitrary bytes or JSON.
fn token() -> impl Strategy<Value = String> {
    let first = prop_oneof![
        3 => header().prop_map(|h| b64(Value::Object(h).to_string())),
        1 => json_value().prop_map(|v| b64(v.to_string())),
        1 => part(),
    ];
    let second = prop_oneof![json_value().prop_map(|v| b64(v.to_string())), part(),];
    prop_oneof![
        1 => ".{0,200}",
        1 => "[A-Za-z0-9_.-]{0,400}",
        6 => (first, second, prop::collection::vec(part(), 0..5)).prop_map(|(h, p, rest)| {
            let mut parts = vec![h, p];
            parts.extend(rest);
            parts.join(".")
        }),
    ]
}

/// `token` with the character at `at` replaced by a different one (from
/// the base64url alphabet, the separator, or a character no part allows).
fn mutate(token: &str, at: Index, with: Index) -> String {
    const ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
    let mut bytes = token.as_bytes().to_vec();
    let i = at.index(bytes.len());
    let mut j = with.index(ALPHABET.len());
    if ALPHABET[j] == bytes[i] {
        j = (j + 1) % ALPHABET.len();
    }
    bytes[i] = ALPHABET[j];
    String::from_utf8(bytes).unwrap()
}

fn claims() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z_]{1,8}", json_value(), 0..6)
        .prop_map(|m| m.into_iter().collect())
}

fn is_invalid_token<T: fmt::Debug>(r: &Result<T, JoseError>) -> bool {
    matches!(r, Err(JoseError::InvalidToken(_)))
}

/// A compact JWS MACed with `secret`.
fn hmac_token(alg: HmacAlg, secret: &[u8], claims: &Map<String, Value>) -> String {
    use hmac::{Hmac, Mac};
    let input = format!(
        "{}.{}",
        b64(json!({"alg": alg.as_str(), "typ": "JWT"}).to_string()),
        b64(Value::Object(claims.clone()).to_string())
    );
    let mac = match alg {
        HmacAlg::HS256 => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        HmacAlg::HS384 => {
            let mut m = Hmac::<sha2::Sha384>::new_from_slice(secret).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        HmacAlg::HS512 => {
            let mut m = Hmac::<sha2::Sha512>::new_from_slice(secret).unwrap();
            m.update(input.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
    };
    format!("{input}.{}", b64(mac))
}

proptest! {
    #![proptest_config(config(512))]

    /// Header peeking and unverified claims refuse garbage with
    /// `InvalidToken`, never a panic.
    #[test]
    fn peek_never_panics(t in token()) {
        let r = peek_header(&t);
        prop_assert!(r.is_ok() || is_invalid_token(&r), "{r:?}");
        let r = peek_claims(&t);
        prop_assert!(r.is_ok() || is_invalid_token(&r), "{r:?}");
    }

    /// Signature verification refuses every forged token, whatever its
    /// header claims (real kids and algorithms included).
    #[test]
    fn verify_refuses_garbage(t in token()) {
        let r = verify(&t, Alg::ALL, public_by_kid);
        prop_assert!(is_invalid_token(&r), "{r:?}");
    }

    /// DPoP proof checking refuses every forged proof, whatever its
    /// header claims, with an error, never a panic.
    #[test]
    fn dpop_refuses_garbage(t in token()) {
        let req = dpop::DpopRequest {
            method: "POST",
            url: "https://id.example/token",
            now: 0,
            max_skew: 60,
            algs: Alg::ALL,
            access_token: Some("at"),
        };
        prop_assert!(dpop::verify_proof(&t, &req).is_err());
    }

    /// HMAC verification refuses every forged token.
    #[test]
    fn verify_hmac_refuses_garbage(t in token()) {
        let r = verify_hmac(&t, &HmacAlg::ALL, HMAC_SECRET);
        prop_assert!(is_invalid_token(&r), "{r:?}");
    }

    /// Decryption to the own keys refuses every forged token.
    #[test]
    fn decrypt_refuses_garbage(t in token()) {
        let r = decrypt(&t, |_| keys().iter().filter(|k| k.key_use() == KeyUse::Enc));
        prop_assert!(is_invalid_token(&r), "{r:?}");
    }

    /// `alg: dir` decryption refuses every forged token.
    #[test]
    fn decrypt_dir_refuses_garbage(t in token()) {
        let r = decrypt_dir(&t, |kid| (kid == DIR_KID).then(|| *dir_key()));
        prop_assert!(is_invalid_token(&r), "{r:?}");
    }

    /// HMAC: the real token verifies; any one character changed does not.
    #[test]
    fn verify_hmac_refuses_one_changed_character(
        alg in prop::sample::select(HmacAlg::ALL.to_vec()),
        c in claims(),
        at in any::<Index>(),
        with in any::<Index>(),
    ) {
        let t = hmac_token(alg, HMAC_SECRET, &c);
        prop_assert_eq!(verify_hmac(&t, &[alg], HMAC_SECRET).unwrap().claims, c);
        let r = verify_hmac(&mutate(&t, at, with), &[alg], HMAC_SECRET);
        prop_assert!(is_invalid_token(&r), "{r:?}");
    }

    /// `alg: dir`: the real token decrypts; any one character changed does not.
    #[test]
    fn decrypt_dir_refuses_one_changed_character(
        payload in ".{0,200}",
        at in any::<Index>(),
        with in any::<Index>(),
    ) {
        let t = encrypt_dir(&payload, dir_key(), DIR_KID, Some("JWT"), None).unwrap();
        let lookup = |kid: &str| (kid == DIR_KID).then(|| *dir_key());
        prop_assert_eq!(decrypt_dir(&t, lookup).unwrap().1, payload.into_bytes());
        let r = decrypt_dir(&mutate(&t, at, with), lookup);
        prop_assert!(is_invalid_token(&r), "{r:?}");
    }

    /// Public JWK parsing (a client's jwks) refuses garbage with
    /// `InvalidKey`, never a panic; what it accepts is a usable key.
    #[test]
    fn jwk_parsing_never_panics(
        v in prop_oneof![
            json_value(),
            (header(), prop::collection::btree_map(
                prop::sample::select(vec!["kty", "crv", "x", "y", "n", "e", "use", "key_ops"]),
                prop_oneof![part().prop_map(Value::from), json_value()],
                0..6,
            ))
                .prop_map(|(h, m)| {
                    let mut o = h;
                    o.extend(m.into_iter().map(|(k, v)| (k.to_owned(), v)));
                    Value::Object(o)
                }),
        ],
        alg in prop::option::of(prop::sample::select(Alg::ALL.to_vec())),
    ) {
        match PublicKey::from_jwk_value(&v, alg) {
            Ok(k) => prop_assert!(Alg::ALL.contains(&k.alg())),
            Err(e) => prop_assert!(matches!(e, JoseError::InvalidKey(_)), "{e:?}"),
        }
        let r = PublicKey::from_jwk_json(&v.to_string());
        prop_assert!(r.is_ok() || matches!(r, Err(JoseError::InvalidKey(_))), "{r:?}");
    }
}

proptest! {
    // Each case signs or encrypts with RSA or P-256: fewer cases.
    #![proptest_config(config(128))]

    /// Asymmetric signatures: the real token verifies; any one character
    /// changed does not.
    #[test]
    fn verify_refuses_one_changed_character(
        alg in prop::sample::select(SIG_ALGS.to_vec()),
        c in claims(),
        at in any::<Index>(),
        with in any::<Index>(),
    ) {
        let t = sign(key(alg), "JWT", &c).unwrap();
        prop_assert_eq!(verify(&t, &[alg], public_by_kid).unwrap().claims, c);
        let r = verify(&mutate(&t, at, with), &SIG_ALGS, public_by_kid);
        prop_assert!(is_invalid_token(&r), "{r:?}");
    }

    /// JWE to an own key: the real token decrypts; any one character
    /// changed does not.
    #[test]
    fn decrypt_refuses_one_changed_character(
        alg in prop::sample::select(ENC_ALGS.to_vec()),
        payload in ".{0,200}",
        at in any::<Index>(),
        with in any::<Index>(),
    ) {
        let t = encrypt(&payload, &key(alg).public_key(), Some("JWT"), None).unwrap();
        let lookup = |_: Option<&str>| keys().iter().filter(|k| k.key_use() == KeyUse::Enc);
        prop_assert_eq!(decrypt(&t, lookup).unwrap().1, payload.into_bytes());
        let r = decrypt(&mutate(&t, at, with), lookup);
        prop_assert!(is_invalid_token(&r), "{r:?}");
    }
}

/// Inputs at and over the 16 KiB cap are refused before any parsing, so a
/// huge token costs nothing.
#[test]
fn oversized_tokens_are_refused_first() {
    let huge = format!("{}.e30.", "e30".repeat(MAX_TOKEN_LEN));
    assert!(matches!(
        peek_header(&huge),
        Err(JoseError::InvalidToken("token too large"))
    ));
    assert!(is_invalid_token(&verify(&huge, Alg::ALL, public_by_kid)));
    assert!(is_invalid_token(&verify_hmac(
        &huge,
        &HmacAlg::ALL,
        HMAC_SECRET
    )));
    assert!(is_invalid_token(&decrypt(&huge, |_| keys().iter())));
    assert!(is_invalid_token(&decrypt_dir(&huge, |_| Some(*dir_key()))));
}
