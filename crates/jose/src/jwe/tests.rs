//! Tests of JWE encryption and decryption.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::*;
use crate::testutil::*;
use crate::*;
use josekit::jwe::{self, JweHeader};

#[test]
fn encrypt_decrypt_round_trip_both_algs() {
    for alg in [Alg::RsaOaep256, Alg::EcdhEsA256kw] {
        let (generated, private) = key(alg);
        let recipient = PublicKey::from_jwk_json(&generated.public_jwk).unwrap();
        let mut extra = Map::new();
        extra.insert("typ".into(), "JWT".into());
        let token = encrypt("inner.jwt.value", &recipient, Some("JWT"), Some(&extra)).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 5);
        let header = decode_b64_json(parts[0]);
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["enc"], "A256GCM");
        assert_eq!(header["kid"], generated.kid.as_str());
        assert_eq!(header["cty"], "JWT");
        assert_eq!(header["typ"], "JWT");
        assert!(header.get("zip").is_none());
        assert!(header.get("crit").is_none());

        let lookup = |kid: Option<&str>| {
            if kid == Some(private.kid()) {
                vec![private.clone()]
            } else {
                Vec::new()
            }
        };
        let (header, plaintext) = decrypt(&token, lookup).unwrap();
        assert_eq!(plaintext, b"inner.jwt.value");
        assert_eq!(header["cty"], "JWT");

        // Without a kid, the lookup offers candidates; the right one wins.
        let mut no_kid: Value = serde_json::from_str(&generated.public_jwk).unwrap();
        no_kid.as_object_mut().unwrap().remove("kid");
        let anonymous = PublicKey::from_jwk_json(&no_kid.to_string()).unwrap();
        assert_eq!(anonymous.kid(), None);
        let token = encrypt("{\"a\":1}", &anonymous, None, None).unwrap();
        assert!(decode_b64_json(token.split('.').next().unwrap())
            .get("kid")
            .is_none());
        let decoy = other_key(alg);
        let (_, plaintext) = decrypt(&token, |kid| {
            assert_eq!(kid, None);
            vec![decoy.clone(), private.clone()]
        })
        .unwrap();
        assert_eq!(plaintext, b"{\"a\":1}");
    }
}

#[test]
fn nested_sign_then_encrypt_round_trip() {
    let (_, signer) = key(Alg::ES256);
    let (_, enc) = key(Alg::EcdhEsA256kw);
    let inner = sign(&signer, "JWT", &claims()).unwrap();
    let outer = encrypt(&inner, &enc.public_key(), Some("JWT"), None).unwrap();
    let (header, plaintext) = decrypt(&outer, |_| vec![enc.clone()]).unwrap();
    assert_eq!(header["cty"], "JWT");
    let inner = String::from_utf8(plaintext).unwrap();
    let verified = verify(&inner, &[Alg::ES256], lookup_for(&signer)).unwrap();
    assert_eq!(verified.claims, claims());
}

#[test]
fn encrypt_refuses_signature_keys_and_reserved_headers() {
    let (_, sig) = key(Alg::ES256);
    invalid_key(encrypt("x", &sig.public_key(), None, None));
    let (_, enc) = key(Alg::EcdhEsA256kw);
    for name in ["zip", "crit", "alg", "enc", "epk", "kid", "jwk"] {
        let mut extra = Map::new();
        extra.insert(name.into(), json!("DEF"));
        invalid_key(encrypt("x", &enc.public_key(), None, Some(&extra)));
    }
}

/// Every encrypting path (ECDH-ES fast path with a random or chosen CEK,
/// RSA-OAEP through josekit with a random or chosen CEK, `dir`) with the
/// caller's header members `extra`.
fn every_encrypting_path(
    extra: &Map<String, Value>,
) -> Vec<(&'static str, Result<String, JoseError>)> {
    let (_, ecdh) = key(Alg::EcdhEsA256kw);
    let (_, rsa) = key(Alg::RsaOaep256);
    let cek = random_cek();
    let extra = Some(extra);
    let cty = Some("JWT");
    vec![
        ("ECDH-ES", encrypt("a.b.c", &ecdh.public_key(), cty, extra)),
        (
            "ECDH-ES, chosen CEK",
            encrypt_with_cek("a.b.c", &ecdh.public_key(), &cek, cty, extra),
        ),
        ("RSA-OAEP", encrypt("a.b.c", &rsa.public_key(), cty, extra)),
        (
            "RSA-OAEP, chosen CEK",
            encrypt_with_cek("a.b.c", &rsa.public_key(), &cek, cty, extra),
        ),
        ("dir", encrypt_dir("a.b.c", &cek, "gh-dir-1", cty, extra)),
    ]
}

/// The caller's header members are strings, never a member Gatehouse sets
/// or one that changes processing, and `nonce` is base64url (as josekit
/// requires): every path refuses the same input, including the ECDH-ES
/// fast path that writes the header itself, and writes the same members.
#[test]
fn caller_header_members_must_be_strings_and_not_reserved() {
    let mut refused: Vec<(String, Value)> = [
        json!(1),
        json!(2.5),
        json!(null),
        json!(true),
        json!(["a"]),
        json!({"a": "b"}),
    ]
    .into_iter()
    .flat_map(|value| [("n".to_owned(), value.clone()), ("typ".to_owned(), value)])
    .collect();
    refused.push(("nonce".to_owned(), json!("not base64url!")));
    for name in RESERVED_JWE_HEADER {
        refused.push(((*name).to_owned(), json!("DEF")));
    }
    for (name, value) in refused {
        let mut extra = Map::new();
        extra.insert("gh_ref".into(), "ref".into());
        extra.insert(name.clone(), value.clone());
        for (path, result) in every_encrypting_path(&extra) {
            assert!(
                matches!(result, Err(JoseError::InvalidKey(_))),
                "{path}: {name} = {value}: {result:?}"
            );
        }
    }

    let mut accepted = Map::new();
    accepted.insert("gh_ref".into(), "quote \" backslash \\ é \u{1}".into());
    accepted.insert("typ".into(), "at+jwt".into());
    accepted.insert("nonce".into(), "AAAA".into());
    for (path, result) in every_encrypting_path(&accepted) {
        let token = result.unwrap_or_else(|err| panic!("{path}: {err}"));
        let header = decode_b64_json(token.split('.').next().unwrap());
        for (name, value) in &accepted {
            assert_eq!(&header[name], value, "{path}: {name}");
        }
    }
}

fn enc_lookup(key: &PrivateKey) -> impl Fn(Option<&str>) -> Vec<PrivateKey> {
    let key = key.clone();
    move |_| vec![key.clone()]
}

/// Replace the protected header of a compact JWE (the AAD no longer
/// matches, but the header checks must refuse it before that matters).
fn with_header(token: &str, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let (header, rest) = token.split_once('.').unwrap();
    let mut header = decode_b64_json(header);
    edit(header.as_object_mut().unwrap());
    format!("{}.{rest}", b64_json(&header))
}

#[test]
fn decrypt_refuses_zip_crit_and_wrong_algorithms() {
    let (_, private) = key(Alg::RsaOaep256);
    let token = encrypt("payload", &private.public_key(), None, None).unwrap();
    let cases = [
        ("compressed JWE is not accepted", "zip", json!("DEF")),
        (
            "critical header parameters are not supported",
            "crit",
            json!(["exp"]),
        ),
        (
            "content encryption must be A256GCM",
            "enc",
            json!("A128CBC-HS256"),
        ),
        ("algorithm not allowed", "alg", json!("RSA1_5")),
        ("algorithm not allowed", "alg", json!("dir")),
        ("algorithm not allowed", "alg", json!("RS256")),
    ];
    for (reason, name, value) in cases {
        let edited = with_header(&token, |h| {
            h.insert(name.into(), value);
        });
        assert_eq!(
            invalid_token(decrypt(&edited, enc_lookup(&private))),
            reason
        );
    }
    // A real DEF-compressed JWE made by josekit itself is refused too.
    let PublicOp::Encrypt(encrypter) = &private.public_key().0.op else {
        panic!()
    };
    let mut header = JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_compression("DEF");
    let zipped = jwe::serialize_compact(&[b'a'; 4096], &header, encrypter.as_ref()).unwrap();
    assert_eq!(
        invalid_token(decrypt(&zipped, enc_lookup(&private))),
        "compressed JWE is not accepted"
    );
}

/// `decrypt` takes whatever a key store returns: an `Option` from a kid
/// map (here of `Arc<PrivateKey>`), a borrowed key, or a `Vec`.
#[test]
fn decrypt_lookup_accepts_options_references_and_arcs() {
    let (_, private) = key(Alg::EcdhEsA256kw);
    let token = encrypt("payload", &private.public_key(), None, None).unwrap();
    let by_kid: std::collections::HashMap<String, Arc<PrivateKey>> =
        [(private.kid().to_owned(), Arc::new(private.clone()))].into();
    let (_, plaintext) = decrypt(&token, |kid| kid.and_then(|k| by_kid.get(k).cloned())).unwrap();
    assert_eq!(plaintext, b"payload");
    let (_, plaintext) = decrypt(&token, |_| Some(&private)).unwrap();
    assert_eq!(plaintext, b"payload");
    let (_, plaintext) = decrypt(&token, |_| [&private]).unwrap();
    assert_eq!(plaintext, b"payload");
    assert_eq!(
        invalid_token(decrypt(&token, |_| None::<&PrivateKey>)),
        "no decryption key for this kid and algorithm"
    );
}

#[test]
fn decrypt_refuses_oversized_tokens() {
    let (_, private) = key(Alg::EcdhEsA256kw);
    let token = encrypt(
        &"x".repeat(MAX_TOKEN_LEN),
        &private.public_key(),
        None,
        None,
    )
    .unwrap();
    assert!(token.len() > MAX_TOKEN_LEN);
    assert_eq!(
        invalid_token(decrypt(&token, enc_lookup(&private))),
        "token too large"
    );
    let huge = "a".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(
        invalid_token(decrypt(&huge, enc_lookup(&private))),
        "token too large"
    );
}

#[test]
fn decrypt_refuses_wrong_key_and_unknown_kid() {
    for alg in [Alg::RsaOaep256, Alg::EcdhEsA256kw] {
        let (_, private) = key(alg);
        let token = encrypt("payload", &private.public_key(), None, None).unwrap();
        let stranger = other_key(alg);
        assert_eq!(
            invalid_token(decrypt(&token, enc_lookup(&stranger))),
            "decryption failed"
        );
        assert_eq!(
            invalid_token(decrypt(&token, |_| Vec::<PrivateKey>::new())),
            "no decryption key for this kid and algorithm"
        );
        // A signing key offered as a candidate is skipped.
        let (_, sig) = key(Alg::ES256);
        invalid_token(decrypt(&token, enc_lookup(&sig)));
    }
    // A key of the other encryption alg is not tried.
    let (_, rsa) = key(Alg::RsaOaep256);
    let (_, ec) = key(Alg::EcdhEsA256kw);
    let token = encrypt("payload", &rsa.public_key(), None, None).unwrap();
    assert_eq!(
        invalid_token(decrypt(&token, enc_lookup(&ec))),
        "no decryption key for this kid and algorithm"
    );
}

#[test]
fn decrypt_refuses_tampering() {
    for alg in [Alg::RsaOaep256, Alg::EcdhEsA256kw] {
        let (_, private) = key(alg);
        let token = encrypt("a secret payload", &private.public_key(), None, None).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let rebuild = |index: usize, bytes: &[u8]| {
            let mut parts: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
            parts[index] = b64(bytes);
            parts.join(".")
        };
        let flip = |index: usize| {
            let mut bytes = URL_SAFE_NO_PAD.decode(parts[index]).unwrap();
            bytes[0] ^= 1;
            rebuild(index, &bytes)
        };
        for index in 1..=4 {
            invalid_token(decrypt(&flip(index), enc_lookup(&private)));
        }
        // Header edits break the AAD.
        let retyped = with_header(&token, |h| {
            h.insert("typ".into(), json!("evil"));
        });
        assert_eq!(
            invalid_token(decrypt(&retyped, enc_lookup(&private))),
            "decryption failed"
        );
        // Truncated tag (GCM would otherwise accept short tags), bad IV length.
        let tag = URL_SAFE_NO_PAD.decode(parts[4]).unwrap();
        assert_eq!(
            invalid_token(decrypt(&rebuild(4, &tag[..4]), enc_lookup(&private))),
            "malformed JWE"
        );
        assert_eq!(
            invalid_token(decrypt(&rebuild(2, &[0u8; 16]), enc_lookup(&private))),
            "malformed JWE"
        );
        // Wrong number of parts, and a JWS handed to decrypt.
        invalid_token(decrypt(&parts[..4].join("."), enc_lookup(&private)));
        let (_, sig) = key(Alg::ES256);
        let jws = sign(&sig, "JWT", &claims()).unwrap();
        assert_eq!(
            invalid_token(decrypt(&jws, enc_lookup(&private))),
            "not a compact JWE"
        );
    }
    // Short wrapped key for ECDH-ES+A256KW (josekit would underflow on < 8 bytes).
    let (_, ec) = key(Alg::EcdhEsA256kw);
    let token = encrypt("x", &ec.public_key(), None, None).unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = b64([1u8; 4]);
    assert_eq!(
        invalid_token(decrypt(&parts.join("."), enc_lookup(&ec))),
        "malformed JWE"
    );
}

/// Invalid-curve attack: an ECDH-ES ephemeral key that is not on P-256
/// must be refused. Our own check refuses it before key agreement, and
/// (defence in depth) OpenSSL refuses it too when josekit is handed the
/// token directly.
#[test]
fn decrypt_refuses_off_curve_ephemeral_key() {
    let (_, private) = key(Alg::EcdhEsA256kw);
    let token = encrypt("payload", &private.public_key(), None, None).unwrap();
    let epk = decode_b64_json(token.split('.').next().unwrap())["epk"].clone();
    let mut y = URL_SAFE_NO_PAD.decode(epk["y"].as_str().unwrap()).unwrap();
    y[31] ^= 1;
    let off_curve = with_header(&token, |h| {
        h["epk"]["y"] = json!(b64(&y));
    });
    assert_eq!(
        invalid_token(decrypt(&off_curve, enc_lookup(&private))),
        "ephemeral key is not a valid P-256 point"
    );
    // A small-coordinate point that is not on the curve either.
    let mut one = [0u8; 32];
    one[31] = 1;
    let tiny = with_header(&token, |h| {
        h["epk"]["x"] = json!(b64(one));
        h["epk"]["y"] = json!(b64(one));
    });
    assert_eq!(
        invalid_token(decrypt(&tiny, enc_lookup(&private))),
        "ephemeral key is not a valid P-256 point"
    );
    // Coordinates >= the field prime.
    let too_big = with_header(&token, |h| {
        h["epk"]["x"] = json!(b64([0xffu8; 32]));
    });
    invalid_token(decrypt(&too_big, enc_lookup(&private)));
    // Other curves, key types, and a missing epk.
    for (name, value) in [
        ("crv", json!("P-384")),
        ("crv", json!("secp256k1")),
        ("kty", json!("OKP")),
    ] {
        let edited = with_header(&token, |h| {
            h["epk"][name] = value;
        });
        assert_eq!(
            invalid_token(decrypt(&edited, enc_lookup(&private))),
            "ephemeral key must be on P-256"
        );
    }
    let missing = with_header(&token, |h| {
        h.remove("epk");
    });
    assert_eq!(
        invalid_token(decrypt(&missing, enc_lookup(&private))),
        "missing ephemeral key"
    );

    // Defence in depth: josekit + OpenSSL alone also refuse the point.
    let PrivateOp::Decrypt(decrypter) = &private.0.op else {
        panic!()
    };
    assert!(jwe::deserialize_compact(&token, decrypter.as_ref()).is_ok());
    assert!(jwe::deserialize_compact(&off_curve, decrypter.as_ref()).is_err());
}

/// A JWE made with a chosen CEK: the recipient unwraps and decrypts it
/// normally (both algorithms); the CEK alone opens it too; the genuine
/// header on another body, a flipped bit anywhere, or another CEK fails.
#[test]
fn chosen_cek_round_trip_and_forged_bodies() {
    let cek = random_cek();
    let mut extra = Map::new();
    extra.insert("gh_ref".into(), "ref".into());
    for alg in [Alg::EcdhEsA256kw, Alg::RsaOaep256] {
        let (_, private) = key(alg);
        let token = encrypt_with_cek(
            "a.b.c",
            &private.public_key(),
            &cek,
            Some("JWT"),
            Some(&extra),
        )
        .unwrap();
        let (header, plain) = decrypt(&token, |_| Some(&private)).unwrap();
        assert_eq!(plain, b"a.b.c", "{alg}");
        assert_eq!(header["alg"], alg.as_str());
        assert_eq!(header["gh_ref"], "ref");
        let (header, plain) = decrypt_with_cek(&token, &cek).unwrap();
        assert_eq!(
            (plain.as_slice(), &header["cty"]),
            (&b"a.b.c"[..], &json!("JWT"))
        );

        let parts: Vec<&str> = token.split('.').collect();
        let other =
            encrypt_with_cek("x.y.z", &private.public_key(), &random_cek(), None, None).unwrap();
        let spliced = format!("{}.{}", parts[0], other.split_once('.').unwrap().1);
        assert_eq!(
            invalid_token(decrypt_with_cek(&spliced, &cek)),
            "decryption failed"
        );
        for i in [0, 2, 3, 4] {
            let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
            let mut bytes = URL_SAFE_NO_PAD.decode(&p[i]).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            p[i] = b64(bytes);
            assert!(
                decrypt_with_cek(&p.join("."), &cek).is_err(),
                "{alg} part {i}"
            );
        }
        assert!(decrypt_with_cek(&token, &random_cek()).is_err());
        // Reserved members stay reserved; a signing key cannot encrypt.
        let mut bad = Map::new();
        bad.insert("zip".into(), "DEF".into());
        invalid_key(encrypt_with_cek(
            "p",
            &private.public_key(),
            &cek,
            None,
            Some(&bad),
        ));
    }
    let (_, signer) = key(Alg::ES256);
    invalid_key(encrypt_with_cek(
        "p",
        &signer.public_key(),
        &cek,
        None,
        None,
    ));
    // Direct encryption is not a wrapped-key JWE.
    let dir = encrypt_dir("a.b.c", &cek, "gh-dir-1", None, None).unwrap();
    assert_eq!(
        invalid_token(decrypt_with_cek(&dir, &cek)),
        "algorithm not allowed"
    );
}
