//! Tests of key generation and opened private keys.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use super::*;
use crate::alg::KeyKind;
use crate::jwk::PRIVATE_JWK_MEMBERS;
use crate::testutil::*;
use crate::*;
use openssl::pkey::PKey;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn types_are_send_and_sync() {
    assert_send_sync::<PrivateKey>();
    assert_send_sync::<PublicKey>();
    assert_send_sync::<KeyPair>();
}

#[test]
fn generated_public_jwks_are_public_and_labelled() {
    for &alg in Alg::ALL {
        let (generated, private) = key(alg);
        assert_eq!(generated.alg, alg);
        let jwk: Value = serde_json::from_str(&generated.public_jwk).unwrap();
        assert_eq!(jwk["kid"], generated.kid.as_str());
        assert_eq!(jwk["alg"], alg.as_str());
        assert_eq!(jwk["use"], alg.key_use().as_str());
        assert_eq!(jwk["kty"], alg.kind().kty());
        for member in PRIVATE_JWK_MEMBERS {
            assert!(jwk.get(member).is_none(), "{alg} has {member}");
        }
        // The opened private key reports the same public key.
        assert_eq!(private.public_key().jwk_json(), jwk);
        assert_eq!(private.kid(), generated.kid);
        assert_eq!(private.alg(), alg);
        // And the published JWK parses back.
        let public = PublicKey::from_jwk_json(&generated.public_jwk).unwrap();
        assert_eq!(public.alg(), alg);
        assert_eq!(public.key_use(), alg.key_use());
        assert_eq!(public.kid(), Some(generated.kid.as_str()));
        assert_eq!(public.thumbprint(), private.public_key().thumbprint());
    }
    let (_, rsa) = key(Alg::RS256);
    let n = URL_SAFE_NO_PAD
        .decode(rsa.public_key().jwk_json()["n"].as_str().unwrap())
        .unwrap();
    assert_eq!(n.len() * 8, 2048);
}

#[test]
fn generate_refuses_empty_kid() {
    invalid_key(generate_key_pair(Alg::ES256, ""));
}

#[test]
fn from_pkcs8_refuses_wrong_alg_and_non_pkcs8() {
    let (generated, _) = key(Alg::ES256);
    let der = generated.private_pkcs8();
    // An EC key opened as RSA or Ed25519 is refused; as ECDH-ES it is the
    // same curve, which is allowed (the algorithm is chosen per kid).
    invalid_key(PrivateKey::from_pkcs8(&generated.kid, Alg::RS256, der));
    invalid_key(PrivateKey::from_pkcs8(&generated.kid, Alg::EdDSA, der));
    assert!(PrivateKey::from_pkcs8(&generated.kid, Alg::EcdhEsA256kw, der).is_ok());
    // Bytes that are not PKCS#8.
    assert!(matches!(
        PrivateKey::from_pkcs8("junk", Alg::ES256, b"not a key"),
        Err(JoseError::UnreadableKey)
    ));
}

#[test]
fn debug_output_never_contains_key_material() {
    for &alg in Alg::ALL {
        let (generated, private) = key(alg);
        let der = generated.private_pkcs8();
        let pkey = PKey::private_key_from_pkcs8(der).unwrap();
        // The private scalar / exponent, in the encodings a leak would use.
        let secret: Vec<u8> = match alg.kind() {
            KeyKind::Rsa => pkey.rsa().unwrap().d().to_vec(),
            KeyKind::P256 | KeyKind::P384 | KeyKind::P521 => {
                pkey.ec_key().unwrap().private_key().to_vec()
            }
            KeyKind::Ed25519 => pkey.raw_private_key().unwrap(),
        };
        let std_b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let forms = [
            b64(&secret),
            b64(der),
            std_b64,
            format!("{:?}", &secret[..8]),
        ];
        let debug = format!(
            "{private:?} {private:#?} {generated:?} {:?}",
            private.public_key()
        );
        assert!(debug.contains(&generated.kid));
        for form in &forms {
            assert!(!debug.contains(&form[..form.len().min(24)]), "{alg} leaks");
        }
        assert!(!debug.contains("private_pkcs8"));
    }
}

/// A private JWK (JSON) of an OpenSSL key, as a resource server stores it.
fn private_jwk(pkey: &PKey<openssl::pkey::Private>, kid: Option<&str>) -> String {
    use josekit::jwk::KeyPair as _;
    let der = pkey.private_key_to_pkcs8().unwrap();
    let mut jwk = if pkey.id() == openssl::pkey::Id::EC {
        josekit::jwk::alg::ec::EcKeyPair::from_der(&der, None)
            .unwrap()
            .to_jwk_key_pair()
    } else {
        josekit::jwk::alg::rsa::RsaKeyPair::from_der(&der)
            .unwrap()
            .to_jwk_key_pair()
    };
    if let Some(kid) = kid {
        jwk.set_key_id(kid);
    }
    jwk.to_string()
}

#[test]
fn from_private_jwk_opens_ec_and_rsa_decryption_keys() {
    for alg in [Alg::EcdhEsA256kw, Alg::RsaOaep256] {
        let (generated, _) = key(alg);
        let pkey = PKey::private_key_from_pkcs8(generated.private_pkcs8()).unwrap();
        let opened = PrivateKey::from_private_jwk(&private_jwk(&pkey, Some("api-1"))).unwrap();
        assert_eq!(opened.alg(), alg);
        assert_eq!(opened.kid(), "api-1");
        let token = encrypt("hello", &opened.public_key(), None, None).unwrap();
        let (_, plaintext) = decrypt(&token, |_| Some(&opened)).unwrap();
        assert_eq!(plaintext, b"hello");
        let no_kid = PrivateKey::from_private_jwk(&private_jwk(&pkey, None)).unwrap();
        assert_eq!(no_kid.kid(), "");
    }
}

#[test]
fn from_private_jwk_refuses_public_signing_and_other_curve_keys() {
    let (generated, _) = key(Alg::EcdhEsA256kw);
    invalid_key(PrivateKey::from_private_jwk(&generated.public_jwk));
    invalid_key(PrivateKey::from_private_jwk("not json"));
    invalid_key(PrivateKey::from_private_jwk(r#"{"kty":"oct","k":"AAAA"}"#));
    let p384 = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap(),
    )
    .and_then(PKey::from_ec_key)
    .unwrap();
    assert!(PrivateKey::from_private_jwk(&private_jwk(&p384, None)).is_err());
    let (es256, _) = key(Alg::ES256);
    let pkey = PKey::private_key_from_pkcs8(es256.private_pkcs8()).unwrap();
    let mut signing: serde_json::Value = serde_json::from_str(&private_jwk(&pkey, None)).unwrap();
    signing["alg"] = "ES256".into();
    invalid_key(PrivateKey::from_private_jwk(&signing.to_string()));
}
