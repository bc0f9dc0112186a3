//! Tests of public JWK parsing and thumbprints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::*;
use crate::testutil::*;
use crate::*;
use openssl::rsa::Rsa;

/// RFC 7638 §3.1 worked example.
#[test]
fn rfc7638_thumbprint_vector() {
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    });
    let public = PublicKey::from_jwk_json(&jwk.to_string()).unwrap();
    assert_eq!(
        public.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn public_key_refuses_private_and_symmetric_keys() {
    let (generated, _) = key(Alg::RS256);
    let public: Value = serde_json::from_str(&generated.public_jwk).unwrap();
    for member in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        let mut jwk = public.clone();
        jwk[member] = json!("AQAB");
        let message = invalid_key(PublicKey::from_jwk_json(&jwk.to_string()));
        assert!(message.contains("private"), "{member}: {message}");
    }
    let oct = json!({"kty": "oct", "k": "c2VjcmV0", "alg": "RS256"});
    invalid_key(PublicKey::from_jwk_json(&oct.to_string()));
    let oct = json!({"kty": "oct", "alg": "RS256"});
    assert!(invalid_key(PublicKey::from_jwk_json(&oct.to_string())).contains("symmetric"));
}

#[test]
fn public_key_alg_rules() {
    let (generated, _) = key(Alg::RS256);
    let mut jwk: Value = serde_json::from_str(&generated.public_jwk).unwrap();
    jwk.as_object_mut().unwrap().remove("alg");
    jwk.as_object_mut().unwrap().remove("use");
    let text = jwk.to_string();
    assert!(invalid_key(PublicKey::from_jwk_json(&text)).contains("no alg"));
    // Given alg used when the JWK has none.
    let public = PublicKey::from_jwk_json_with_alg(&text, Some(Alg::PS256)).unwrap();
    assert_eq!(public.alg(), Alg::PS256);
    assert_eq!(public.jwk_json()["use"], "sig");
    let public = PublicKey::from_jwk_json_with_alg(&text, Some(Alg::RsaOaep256)).unwrap();
    assert_eq!(public.key_use(), KeyUse::Enc);
    // The JWK's own alg wins over the given one.
    let public =
        PublicKey::from_jwk_json_with_alg(&generated.public_jwk, Some(Alg::PS256)).unwrap();
    assert_eq!(public.alg(), Alg::RS256);
    // Key type must fit the alg.
    invalid_key(PublicKey::from_jwk_json_with_alg(&text, Some(Alg::ES256)));
    invalid_key(PublicKey::from_jwk_json_with_alg(&text, Some(Alg::EdDSA)));
    // `use` must agree with the alg.
    let mut wrong_use = jwk.clone();
    wrong_use["use"] = json!("enc");
    invalid_key(PublicKey::from_jwk_json_with_alg(
        &wrong_use.to_string(),
        Some(Alg::RS256),
    ));
    // Unsupported algorithms.
    let mut hs = jwk.clone();
    hs["alg"] = json!("HS256");
    assert!(invalid_key(PublicKey::from_jwk_json(&hs.to_string())).contains("unsupported"));
    // Not JSON, not an object, non-string members.
    invalid_key(PublicKey::from_jwk_json("{"));
    invalid_key(PublicKey::from_jwk_json("[1]"));
    let mut numeric_kid = jwk.clone();
    numeric_kid["kid"] = json!(7);
    invalid_key(PublicKey::from_jwk_json_with_alg(
        &numeric_kid.to_string(),
        Some(Alg::RS256),
    ));
}

#[test]
fn public_key_refuses_weak_or_invalid_key_material() {
    // 1024-bit RSA.
    let small = Rsa::generate(1024).unwrap();
    let jwk = json!({
        "kty": "RSA", "alg": "RS256",
        "n": b64(small.n().to_vec()), "e": b64(small.e().to_vec()),
    });
    assert!(invalid_key(PublicKey::from_jwk_json(&jwk.to_string())).contains("modulus"));

    let (generated, _) = key(Alg::ES256);
    let ec: Value = serde_json::from_str(&generated.public_jwk).unwrap();
    // Off-curve point: y + 1.
    let mut y = URL_SAFE_NO_PAD.decode(ec["y"].as_str().unwrap()).unwrap();
    y[31] = y[31].wrapping_add(1);
    let mut off_curve = ec.clone();
    off_curve["y"] = json!(b64(&y));
    assert!(invalid_key(PublicKey::from_jwk_json(&off_curve.to_string())).contains("P-256"));
    // Wrong curve name, short coordinate, padding in base64url.
    let mut p384 = ec.clone();
    p384["crv"] = json!("P-384");
    invalid_key(PublicKey::from_jwk_json(&p384.to_string()));
    let mut short = ec.clone();
    short["x"] = json!(b64([1u8; 31]));
    invalid_key(PublicKey::from_jwk_json(&short.to_string()));
    let mut padded = ec.clone();
    padded["x"] = json!(format!("{}=", ec["x"].as_str().unwrap()));
    invalid_key(PublicKey::from_jwk_json(&padded.to_string()));
    // Ed25519 with a wrong-length key and with an X25519 curve name.
    let (ed_generated, _) = key(Alg::EdDSA);
    let ed: Value = serde_json::from_str(&ed_generated.public_jwk).unwrap();
    let mut bad_ed = ed.clone();
    bad_ed["x"] = json!(b64([9u8; 31]));
    invalid_key(PublicKey::from_jwk_json(&bad_ed.to_string()));
    let mut x25519 = ed.clone();
    x25519["crv"] = json!("X25519");
    invalid_key(PublicKey::from_jwk_json(&x25519.to_string()));
}

#[test]
fn public_jwk_keeps_only_public_members_and_jwks_renders() {
    let (generated, _) = key(Alg::ES256);
    let mut jwk: Value = serde_json::from_str(&generated.public_jwk).unwrap();
    jwk["x5c"] = json!(["MIIB"]);
    jwk["key_ops"] = json!(["verify"]);
    jwk["extra"] = json!({"nested": true});
    let public = PublicKey::from_jwk_json(&jwk.to_string()).unwrap();
    let mut names: Vec<String> = public
        .jwk_json()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    names.sort();
    assert_eq!(names, ["alg", "crv", "kid", "kty", "use", "x", "y"]);

    let keys: Vec<PublicKey> = Alg::ALL.iter().map(|&a| key(a).1.public_key()).collect();
    let jwks: Value = serde_json::from_slice(&render_jwks(&keys)).unwrap();
    let rendered = jwks["keys"].as_array().unwrap();
    assert_eq!(rendered.len(), Alg::ALL.len());
    for (jwk, &alg) in rendered.iter().zip(Alg::ALL) {
        assert_eq!(jwk["alg"], alg.as_str());
        for member in PRIVATE_JWK_MEMBERS {
            assert!(jwk.get(member).is_none());
        }
    }
    assert_eq!(render_jwks(&[]), br#"{"keys":[]}"#);
}

#[test]
fn bit_len_ignores_leading_zeros() {
    assert_eq!(bit_len(&[]), 0);
    assert_eq!(bit_len(&[0, 0]), 0);
    assert_eq!(bit_len(&[1]), 1);
    assert_eq!(bit_len(&[0, 0x01, 0x00, 0x01]), 17);
    assert_eq!(bit_len(&[0x80, 0, 0]), 24);
    assert_eq!(bit_len(&[0, 0xff]), 8);
}

/// Wiping a parsed private JWK overwrites and empties every string of its
/// private members, nested ones (`oth`) included, and leaves the public
/// members and the member names alone.
#[test]
fn wiping_a_private_jwk_empties_every_private_string() {
    let (generated, _) = key(Alg::RsaOaep256);
    let mut jwk: Map<String, Value> = serde_json::from_str(&generated.public_jwk).unwrap();
    let public = jwk.clone();
    for name in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        jwk.insert(name.into(), json!(format!("secret-{name}")));
    }
    jwk.insert(
        "oth".into(),
        json!([{"r": "secret-r", "d": "secret-d", "t": "secret-t"}]),
    );
    wipe_private_members(&mut jwk);
    for name in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert_eq!(jwk[name], json!(""), "{name}");
    }
    assert_eq!(jwk["oth"], json!([{"r": "", "d": "", "t": ""}]));
    for (name, value) in &public {
        assert_eq!(&jwk[name], value, "{name}");
    }
    assert!(!serde_json::to_string(&jwk).unwrap().contains("secret"));
}

/// A private JWK opened through josekit (the OpenSSL path) is held in the
/// wiping guard: it reads as the JWK, and the key it opens is the right one.
#[test]
fn the_josekit_private_jwk_guard_reads_as_the_jwk() {
    for alg in [Alg::EcdhEsA256kw, Alg::RsaOaep256] {
        let (generated, private) = key(alg);
        let json = private_jwk(generated);
        let guarded = PrivateJwk::from_json(&json).unwrap();
        assert_eq!(guarded.key_type(), alg.kind().kty());
        assert!(guarded.parameter("d").is_some());
        drop(guarded);
        let opened = PrivateKey::from_private_jwk_with(&json, Backend::OpenSsl).unwrap();
        assert_eq!(
            opened.public_key().thumbprint(),
            private.public_key().thumbprint()
        );
    }
}
