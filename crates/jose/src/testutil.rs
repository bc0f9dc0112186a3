//! Keys and helpers shared by the unit tests of every module.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::key::PrivateOp;
use crate::{b64, generate_key_pair, Alg, JoseError, KeyPair, PrivateKey, PublicKey};

/// One generated and opened key per algorithm, shared by the tests
/// (RSA generation is slow).
pub(crate) fn key(alg: Alg) -> (&'static KeyPair, PrivateKey) {
    static KEYS: OnceLock<Vec<(KeyPair, PrivateKey)>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        Alg::ALL
            .iter()
            .map(|&alg| {
                let generated = generate_key_pair(alg, &format!("test-{alg}")).unwrap();
                let private =
                    PrivateKey::from_pkcs8(&generated.kid, alg, generated.private_pkcs8()).unwrap();
                (generated, private)
            })
            .collect()
    });
    let index = Alg::ALL.iter().position(|a| *a == alg).unwrap();
    (&keys[index].0, keys[index].1.clone())
}

/// A second, independent key of the same algorithm and kid.
pub(crate) fn other_key(alg: Alg) -> PrivateKey {
    let kid = format!("test-{alg}");
    let generated = generate_key_pair(alg, &kid).unwrap();
    PrivateKey::from_pkcs8(&kid, alg, generated.private_pkcs8()).unwrap()
}

pub(crate) fn claims() -> Map<String, Value> {
    json!({"iss": "https://gatehouse.test", "sub": "alice", "exp": 2_000_000_000u64})
        .as_object()
        .unwrap()
        .clone()
}

pub(crate) fn lookup_for(key: &PrivateKey) -> impl Fn(&str) -> Option<PublicKey> {
    let public = key.public_key();
    move |kid| (Some(kid) == public.kid()).then(|| public.clone())
}

pub(crate) fn invalid_token(result: Result<impl fmt::Debug, JoseError>) -> &'static str {
    match result {
        Err(JoseError::InvalidToken(reason)) => reason,
        other => panic!("expected InvalidToken, got {other:?}"),
    }
}

pub(crate) fn invalid_key(result: Result<impl fmt::Debug, JoseError>) -> String {
    match result {
        Err(JoseError::InvalidKey(reason)) => reason,
        other => panic!("expected InvalidKey, got {other:?}"),
    }
}

/// Sign an arbitrary header with a key's real signer, to build tokens
/// whose only fault is the header.
pub(crate) fn sign_raw(key: &PrivateKey, header: &Value, payload: &[u8]) -> String {
    let PrivateOp::Sign(signer) = &key.0.op else {
        panic!("not a signing key")
    };
    let input = format!("{}.{}", b64(header.to_string()), b64(payload));
    let signature = signer.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(signature))
}

pub(crate) fn b64_json(value: &Value) -> String {
    b64(value.to_string())
}

pub(crate) fn decode_b64_json(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// A fresh random 256-bit content-encryption key.
pub(crate) fn random_cek() -> [u8; 32] {
    use rand::RngCore;
    let mut cek = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut cek);
    cek
}

/// A private JWK (JSON) of a P-256 or RSA decryption key.
pub(crate) fn private_jwk(generated: &KeyPair) -> String {
    let pkey = openssl::pkey::PKey::private_key_from_pkcs8(generated.private_pkcs8()).unwrap();
    let mut jwk: Map<String, Value> = serde_json::from_str(&generated.public_jwk).unwrap();
    let bytes = |n: &openssl::bn::BigNumRef| Value::from(b64(n.to_vec()));
    if let Ok(ec) = pkey.ec_key() {
        jwk.insert(
            "d".into(),
            b64(ec.private_key().to_vec_padded(32).unwrap()).into(),
        );
    } else {
        let rsa = pkey.rsa().unwrap();
        jwk.insert("d".into(), bytes(rsa.d()));
        jwk.insert("p".into(), bytes(rsa.p().unwrap()));
        jwk.insert("q".into(), bytes(rsa.q().unwrap()));
        jwk.insert("dp".into(), bytes(rsa.dmp1().unwrap()));
        jwk.insert("dq".into(), bytes(rsa.dmq1().unwrap()));
        jwk.insert("qi".into(), bytes(rsa.iqmp().unwrap()));
    }
    Value::Object(jwk).to_string()
}
