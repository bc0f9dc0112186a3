//! Tests of JWS signing, verification and peeking.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::*;
use crate::testutil::*;
use crate::*;
use josekit::jws::{self, JwsSigner};
use openssl::rsa::Rsa;
use sha2::Sha256;

use hmac::{Hmac, Mac};
use openssl::bn::BigNum;

#[test]
fn sign_verify_round_trip_every_signature_alg() {
    for &alg in Alg::ALL.iter().filter(|a| a.key_use() == KeyUse::Sig) {
        let (generated, private) = key(alg);
        let token = sign(&private, "JWT", &claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            decode_b64_json(parts[0]),
            json!({"alg": alg.as_str(), "kid": generated.kid, "typ": "JWT"})
        );
        let public = PublicKey::from_jwk_json(&generated.public_jwk).unwrap();
        let lookup = |kid: &str| (kid == generated.kid).then(|| public.clone());
        let verified = verify(&token, &[alg], lookup).unwrap();
        assert_eq!(verified.claims, claims());
        assert_eq!(verified.header["typ"], "JWT");
        assert_eq!(verified.header["kid"], generated.kid.as_str());
    }
}

#[test]
fn sign_refuses_encryption_keys() {
    let (_, enc) = key(Alg::RsaOaep256);
    invalid_key(sign(&enc, "JWT", &claims()));
}

/// RS256, PS256, ES256 and EdDSA tokens from `sign` verify with ring,
/// an implementation independent of josekit and OpenSSL.
#[test]
fn signatures_verify_with_ring() {
    use ring::signature;
    for &alg in &[Alg::RS256, Alg::PS256, Alg::ES256, Alg::EdDSA] {
        let (_, private) = key(alg);
        let token = sign(&private, "JWT", &claims()).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let jwk = private.public_key().jwk_json();
        let member = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
        let result = match alg {
            Alg::RS256 | Alg::PS256 => {
                let params = if alg == Alg::RS256 {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                signature::RsaPublicKeyComponents {
                    n: member("n"),
                    e: member("e"),
                }
                .verify(params, input.as_bytes(), &sig)
            }
            Alg::ES256 => {
                let mut point = vec![4u8];
                point.extend(member("x"));
                point.extend(member("y"));
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(input.as_bytes(), &sig)
            }
            _ => signature::UnparsedPublicKey::new(&signature::ED25519, member("x"))
                .verify(input.as_bytes(), &sig),
        };
        assert!(result.is_ok(), "{alg} signature rejected by ring");
    }
}

const RFC7520_RSA_N: &str = "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2\
    jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5y\
    dQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGq\
    C0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__\
    kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw";

/// RFC 7520 §4.1: RSA v1.5 signature with the §3.3 "bilbo.baggins" key.
/// Its payload is text, not a JSON object, so the signature check is
/// exercised through `verify_payload`.
#[test]
fn rfc7520_rs256_vector() {
    let jwk = json!({
        "kty": "RSA",
        "kid": "bilbo.baggins@hobbiton.example",
        "use": "sig",
        "n": RFC7520_RSA_N,
        "e": "AQAB",
    });
    let public = PublicKey::from_jwk_json_with_alg(&jwk.to_string(), Some(Alg::RS256)).unwrap();
    let token = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9.\
        SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0\
        ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5v\
        IGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4.\
        MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996i\
        vp83xuglII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1u\
        SNCrUCTJDt5aAE6x8wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAh\
        b6L2aXic1U12podGU0KLUQSE_oI-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18\
        kDquDg";
    let lookup = |kid: &str| (kid == "bilbo.baggins@hobbiton.example").then(|| public.clone());
    let (header, payload) = verify_payload(token, MAX_TOKEN_LEN, &[Alg::RS256], lookup).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert!(String::from_utf8(payload)
        .unwrap()
        .starts_with("It\u{2019}s a dangerous business, Frodo"));
    // Through `verify`, the signature passes and the text payload is refused.
    assert_eq!(
        invalid_token(verify(token, &[Alg::RS256], lookup)),
        "payload is not a JSON object"
    );
    // One flipped signature bit fails.
    let mut tampered: Vec<char> = token.chars().collect();
    let i = tampered.len() - 10;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    assert_eq!(
        invalid_token(verify_payload(
            &tampered,
            MAX_TOKEN_LEN,
            &[Alg::RS256],
            lookup
        )),
        "bad signature"
    );
}

#[test]
fn verify_refuses_alg_none() {
    let (generated, private) = key(Alg::RS256);
    let header = b64_json(&json!({"alg": "none", "kid": generated.kid, "typ": "JWT"}));
    let payload = b64_json(&Value::Object(claims()));
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        let reason = invalid_token(verify(&token, Alg::ALL, lookup_for(&private)));
        assert!(
            reason == "algorithm not allowed" || reason == "not a compact JWS",
            "{reason}"
        );
    }
    assert_eq!(
        invalid_token(verify(
            &format!("{header}.{payload}."),
            Alg::ALL,
            lookup_for(&private)
        )),
        "algorithm not allowed"
    );
    // A literal "eyJ..." alg-none token with a kid the lookup knows.
    let token = "eyJhbGciOiJub25lIiwia2lkIjoidGVzdC1SUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.";
    assert_eq!(
        invalid_token(verify(token, Alg::ALL, lookup_for(&private))),
        "algorithm not allowed"
    );
}

/// The classic confusion: HS256 "signed" with the RSA public key as the
/// HMAC secret. HS256 is never in the allow-list, whatever the caller passes.
#[test]
fn verify_refuses_hs256_with_public_key_as_secret() {
    let (generated, private) = key(Alg::RS256);
    let jwk = private.public_key().jwk_json();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let rsa = Rsa::from_public_components(
        BigNum::from_slice(&n).unwrap(),
        BigNum::from_slice(&e).unwrap(),
    )
    .unwrap();
    let pem = rsa.public_key_to_pem().unwrap();
    let der = rsa.public_key_to_der().unwrap();
    for secret in [pem, der, n, generated.public_jwk.clone().into_bytes()] {
        let header = b64_json(&json!({"alg": "HS256", "kid": generated.kid, "typ": "JWT"}));
        let input = format!("{header}.{}", b64_json(&Value::Object(claims())));
        let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
        mac.update(input.as_bytes());
        let token = format!("{input}.{}", b64(mac.finalize().into_bytes()));
        assert_eq!(
            invalid_token(verify(&token, Alg::ALL, lookup_for(&private))),
            "algorithm not allowed"
        );
    }
}

#[test]
fn verify_refuses_unknown_and_hostile_kids() {
    let (_, private) = key(Alg::ES256);
    let seen = std::sync::Mutex::new(Vec::new());
    for kid in [
        "no-such-key",
        "../../../etc/passwd",
        "' OR '1'='1'; DROP TABLE signing_keys; --",
        "kid\u{0}with\nnul",
        "",
    ] {
        let token = sign_raw(
            &private,
            &json!({"alg": "ES256", "kid": kid, "typ": "JWT"}),
            Value::Object(claims()).to_string().as_bytes(),
        );
        let result = verify(&token, &[Alg::ES256], |k: &str| {
            seen.lock().unwrap().push(k.to_owned());
            None
        });
        let err = result.unwrap_err();
        assert!(matches!(err, JoseError::InvalidToken("unknown kid")));
        // The error never echoes the token's contents.
        if !kid.is_empty() {
            assert!(!err.to_string().contains(kid));
        }
    }
    // The kid reached the lookup verbatim, as an opaque string.
    assert_eq!(seen.lock().unwrap()[1], "../../../etc/passwd");

    // A token without a kid.
    let token = sign_raw(
        &private,
        &json!({"alg": "ES256", "typ": "JWT"}),
        Value::Object(claims()).to_string().as_bytes(),
    );
    assert_eq!(
        invalid_token(verify(&token, &[Alg::ES256], lookup_for(&private))),
        "missing kid"
    );
}

#[test]
fn verify_refuses_key_carrying_headers_and_crit() {
    let (generated, private) = key(Alg::ES256);
    let attacker = other_key(Alg::ES256);
    let attacker_jwk = attacker.public_key().jwk_json();
    let injections = [
        ("jwk", attacker_jwk),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!(["MIIBszCCAVmgAwIBAgIUXo"])),
        ("crit", json!(["exp"])),
    ];
    for (name, value) in injections {
        let mut header = json!({"alg": "ES256", "kid": generated.kid, "typ": "JWT"});
        header[name] = value;
        // Signed by the attacker's key, named by the injected member...
        let forged = sign_raw(
            &attacker,
            &header,
            Value::Object(claims()).to_string().as_bytes(),
        );
        invalid_token(verify(&forged, &[Alg::ES256], lookup_for(&private)));
        // ...and even a genuine signature is refused with such a header.
        let genuine = sign_raw(
            &private,
            &header,
            Value::Object(claims()).to_string().as_bytes(),
        );
        let reason = invalid_token(verify(&genuine, &[Alg::ES256], lookup_for(&private)));
        assert!(
            reason.contains("key") || reason.contains("critical"),
            "{name}: {reason}"
        );
    }
    // Control: the same genuine header without the injection passes.
    let header = json!({"alg": "ES256", "kid": generated.kid, "typ": "JWT"});
    let genuine = sign_raw(
        &private,
        &header,
        Value::Object(claims()).to_string().as_bytes(),
    );
    verify(&genuine, &[Alg::ES256], lookup_for(&private)).unwrap();
}

#[test]
fn verify_refuses_oversized_tokens() {
    let (_, private) = key(Alg::ES256);
    let mut big = claims();
    big.insert("padding".into(), "x".repeat(MAX_TOKEN_LEN).into());
    let token = sign(&private, "JWT", &big).unwrap();
    assert!(token.len() > MAX_TOKEN_LEN);
    assert_eq!(
        invalid_token(verify(&token, &[Alg::ES256], lookup_for(&private))),
        "token too large"
    );
    // Just under the cap is fine.
    let mut fits = claims();
    fits.insert("padding".into(), "x".repeat(MAX_TOKEN_LEN / 2).into());
    let token = sign(&private, "JWT", &fits).unwrap();
    assert!(token.len() <= MAX_TOKEN_LEN);
    verify(&token, &[Alg::ES256], lookup_for(&private)).unwrap();
}

#[test]
fn verify_refuses_tampering() {
    for alg in [Alg::RS256, Alg::ES256, Alg::EdDSA, Alg::PS256] {
        let (_, private) = key(alg);
        let token = sign(&private, "JWT", &claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut evil = claims();
        evil.insert("sub".into(), "admin".into());
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64_json(&Value::Object(evil)),
            parts[2]
        );
        assert_eq!(
            invalid_token(verify(&tampered, &[alg], lookup_for(&private))),
            "bad signature"
        );
        // Signature of a different key with the same kid.
        let impostor = other_key(alg);
        let forged = sign(&impostor, "JWT", &claims()).unwrap();
        assert_eq!(
            invalid_token(verify(&forged, &[alg], lookup_for(&private))),
            "bad signature"
        );
        // Truncated or empty signature.
        let truncated = &token[..token.len() - 4];
        invalid_token(verify(truncated, &[alg], lookup_for(&private)));
        let empty_sig = format!("{}.{}.", parts[0], parts[1]);
        invalid_token(verify(&empty_sig, &[alg], lookup_for(&private)));
    }
}

#[test]
fn verify_refuses_alg_mismatch_and_disallowed_algs() {
    let (rs_generated, rs) = key(Alg::RS256);
    let token = sign(&rs, "JWT", &claims()).unwrap();
    // RS256 token, but only ES256 allowed.
    assert_eq!(
        invalid_token(verify(&token, &[Alg::ES256], lookup_for(&rs))),
        "algorithm not allowed"
    );
    // Encryption algorithms never verify signatures.
    assert_eq!(
        invalid_token(verify(
            &token,
            &[Alg::RsaOaep256, Alg::EcdhEsA256kw],
            lookup_for(&rs)
        )),
        "algorithm not allowed"
    );
    assert_eq!(
        invalid_token(verify(&token, &[], lookup_for(&rs))),
        "algorithm not allowed"
    );

    // A PS256 signature by the same RSA key material, header says PS256,
    // but the kid resolves to the RS256 key.
    let ps_as_rs =
        PrivateKey::from_pkcs8(&rs_generated.kid, Alg::PS256, rs_generated.private_pkcs8())
            .unwrap();
    let ps_token = sign(&ps_as_rs, "JWT", &claims()).unwrap();
    assert_eq!(
        invalid_token(verify(
            &ps_token,
            &[Alg::RS256, Alg::PS256],
            lookup_for(&rs)
        )),
        "algorithm does not match the key"
    );
    // Header claims ES256 while the kid resolves to an RS256 key.
    let (_, es) = key(Alg::ES256);
    let es_token = sign_raw(
        &es,
        &json!({"alg": "ES256", "kid": rs.kid()}),
        Value::Object(claims()).to_string().as_bytes(),
    );
    assert_eq!(
        invalid_token(verify(
            &es_token,
            &[Alg::RS256, Alg::ES256],
            lookup_for(&rs)
        )),
        "algorithm does not match the key"
    );
}

#[test]
fn verify_refuses_malformed_tokens() {
    let (_, private) = key(Alg::ES256);
    let token = sign(&private, "JWT", &claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    for bad in [
        String::new(),
        "abc".to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.extra"),
        format!("%%%.{}.{}", parts[1], parts[2]),
        format!("{}.{}.{}", b64("not json"), parts[1], parts[2]),
        format!("{}.{}.{}", b64_json(&json!(["alg"])), parts[1], parts[2]),
        format!("{}.{}.!!!", parts[0], parts[1]),
    ] {
        invalid_token(verify(&bad, &[Alg::ES256], lookup_for(&private)));
    }
    // Payload that is valid JSON but not an object.
    let array = sign_raw(
        &private,
        &json!({"alg": "ES256", "kid": private.kid()}),
        b"[1,2,3]",
    );
    assert_eq!(
        invalid_token(verify(&array, &[Alg::ES256], lookup_for(&private))),
        "payload is not a JSON object"
    );
}

/// An HMAC JWS, built without the code under test.
fn hs_token(alg: &str, secret: &[u8], header: Value, claims: &Value) -> String {
    let mut h = header.as_object().cloned().unwrap_or_default();
    h.insert("alg".into(), alg.into());
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(Value::Object(h).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    // The hmac crate directly: josekit refuses to make short-key MACs,
    // and the tests need some.
    fn mac_of<M: Mac + hmac::digest::KeyInit>(key: &[u8], input: &[u8]) -> Vec<u8> {
        let mut m = <M as Mac>::new_from_slice(key).unwrap();
        m.update(input);
        m.finalize().into_bytes().to_vec()
    }
    let mac = match alg {
        "HS256" => mac_of::<Hmac<Sha256>>(secret, input.as_bytes()),
        "HS384" => mac_of::<Hmac<sha2::Sha384>>(secret, input.as_bytes()),
        _ => mac_of::<Hmac<sha2::Sha512>>(secret, input.as_bytes()),
    };
    // The same MAC as josekit's, where josekit agrees to make one.
    if secret.len() >= 64 {
        let signer: Box<dyn JwsSigner> = match alg {
            "HS256" => Box::new(jws::HS256.signer_from_bytes(secret).unwrap()),
            "HS384" => Box::new(jws::HS384.signer_from_bytes(secret).unwrap()),
            _ => Box::new(jws::HS512.signer_from_bytes(secret).unwrap()),
        };
        assert_eq!(signer.sign(input.as_bytes()).unwrap(), mac);
    }
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac))
}

#[test]
fn hmac_verification_accepts_each_algorithm_and_refuses_tampering() {
    let secret = [7u8; 64];
    let claims = json!({"iss": "c1", "sub": "c1"});
    for alg in HmacAlg::ALL {
        let token = hs_token(alg.as_str(), &secret, json!({"typ": "JWT"}), &claims);
        let verified = verify_hmac(&token, &HmacAlg::ALL, &secret).unwrap();
        assert_eq!(verified.claims["iss"], "c1");
        assert_eq!(verified.header["alg"], alg.as_str());
        // Another secret, a flipped payload, a truncated MAC.
        assert_eq!(
            invalid_token(verify_hmac(&token, &HmacAlg::ALL, &[8u8; 64])),
            "bad signature"
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode(json!({"iss": "c2", "sub": "c2"}).to_string());
        parts[1] = &other;
        assert_eq!(
            invalid_token(verify_hmac(&parts.join("."), &HmacAlg::ALL, &secret)),
            "bad signature"
        );
        let short = &token[..token.len() - 4];
        assert!(verify_hmac(short, &HmacAlg::ALL, &secret).is_err());
        // Not in the allow-list.
        let others: Vec<HmacAlg> = HmacAlg::ALL.into_iter().filter(|a| *a != alg).collect();
        assert_eq!(
            invalid_token(verify_hmac(&token, &others, &secret)),
            "algorithm not allowed"
        );
    }
}

#[test]
fn hmac_verification_refuses_none_asymmetric_algs_and_short_secrets() {
    let secret = [7u8; 64];
    let claims = json!({"iss": "c1"});
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string())
    );
    assert_eq!(
        invalid_token(verify_hmac(&none, &HmacAlg::ALL, &secret)),
        "algorithm not allowed"
    );
    let (_, key) = key(Alg::RS256);
    let rs = sign(&key, "JWT", claims.as_object().unwrap()).unwrap();
    assert_eq!(
        invalid_token(verify_hmac(&rs, &HmacAlg::ALL, &secret)),
        "algorithm not allowed"
    );
    // And the asymmetric verifier never accepts an HMAC token.
    let hs = hs_token("HS256", &secret, json!({"kid": key.kid()}), &claims);
    assert_eq!(
        invalid_token(verify(&hs, &[Alg::RS256], lookup_for(&key))),
        "algorithm not allowed"
    );
    // RFC 7518 3.2: the key must be at least the hash size. A token
    // correctly MACed with a 40-byte secret passes as HS256 only.
    let short = [9u8; 40];
    let ok = hs_token("HS256", &short, json!({}), &claims);
    assert!(verify_hmac(&ok, &HmacAlg::ALL, &short).is_ok());
    for alg in ["HS384", "HS512"] {
        let t = hs_token(alg, &short, json!({}), &claims);
        assert_eq!(
            invalid_token(verify_hmac(&t, &HmacAlg::ALL, &short)),
            "secret is shorter than the algorithm's hash"
        );
    }
    let tiny = [9u8; 31];
    let t = hs_token("HS256", &tiny, json!({}), &claims);
    assert!(verify_hmac(&t, &HmacAlg::ALL, &tiny).is_err());
    // Key-carrying headers are refused as for every JWS.
    let t = hs_token("HS256", &secret, json!({"jku": "https://evil"}), &claims);
    assert_eq!(
        invalid_token(verify_hmac(&t, &HmacAlg::ALL, &secret)),
        "header must not carry or point to a key"
    );
    assert!("hs256".parse::<HmacAlg>().is_err());
    assert_eq!("HS512".parse::<HmacAlg>().unwrap(), HmacAlg::HS512);
}

#[test]
fn peeking_decodes_without_trusting() {
    let (_, private) = key(Alg::ES256);
    let mut claims = Map::new();
    claims.insert("iss".into(), json!("client-1"));
    let token = sign(&private, "JWT", &claims).unwrap();
    let peeked = peek_claims(&token).unwrap();
    assert_eq!(peeked.claims["iss"], "client-1");
    assert_eq!(peeked.header["kid"], private.kid());
    assert_eq!(peek_header(&token).unwrap()["alg"], "ES256");
    // The structural refusals of `verify` apply: a key in the header,
    // crit, a wrong shape, an oversized token.
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let rest = token.split_once('.').unwrap().1;
    for header in [
        json!({"alg": "ES256", "jwk": {}}),
        json!({"alg": "ES256", "crit": ["x"]}),
    ] {
        assert!(peek_claims(&format!("{}.{rest}", b64(header))).is_err());
    }
    assert!(peek_claims("a.b").is_err());
    assert!(peek_claims(&"a".repeat(MAX_TOKEN_LEN + 1)).is_err());
    assert!(peek_header("not base64!.x").is_err());
}

#[test]
fn verify_capped_takes_the_callers_cap() {
    let (_, private) = key(Alg::ES256);
    let mut big = claims();
    big.insert("pad".into(), "x".repeat(MAX_TOKEN_LEN).into());
    let token = sign(&private, "statuslist+jwt", &big).unwrap();
    assert_eq!(
        invalid_token(verify(&token, &[Alg::ES256], lookup_for(&private))),
        "token too large"
    );
    let verified = verify_capped(
        &token,
        4 * MAX_TOKEN_LEN,
        &[Alg::ES256],
        lookup_for(&private),
    )
    .unwrap();
    assert_eq!(verified.claims, big);
}

#[test]
fn verification_only_algs_verify_but_never_sign() {
    use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
    let pair = EcKeyPair::generate(EcCurve::P384).unwrap();
    let mut public = pair.to_jwk_public_key();
    public.set_key_id("p384");
    public.set_algorithm("ES384");
    let signer = jws::ES384
        .signer_from_jwk(&pair.to_jwk_private_key())
        .unwrap();
    let mut header = josekit::jws::JwsHeader::new();
    header.set_key_id("p384");
    let token = jws::serialize_compact(br#"{"sub":"s"}"#, &header, &signer).unwrap();
    let value: Value = serde_json::from_str(&public.to_string()).unwrap();
    invalid_key(PublicKey::from_jwk_value(&value, None));
    let key = PublicKey::from_jwk_value_for_verification(&value, None).unwrap();
    assert_eq!(key.alg(), Alg::ES384);
    let lookup = |_: &str| Some(key.clone());
    let verified = verify(&token, &[Alg::ES384], lookup).unwrap();
    assert_eq!(verified.claims["sub"], "s");
    assert_eq!(
        invalid_token(verify(&token, &[Alg::ES256], lookup)),
        "algorithm not allowed"
    );
    invalid_key(generate_key_pair(Alg::ES384, "k"));
}
