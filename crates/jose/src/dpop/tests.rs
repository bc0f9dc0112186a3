#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};

use super::*;
use crate::testutil::{key, other_key, sign_raw};

const URL: &str = "https://id.example.com/token";
const NOW: i64 = 1_800_000_000;
const ALGS: [Alg; 4] = [Alg::ES256, Alg::EdDSA, Alg::RS256, Alg::PS256];

fn request() -> DpopRequest<'static> {
    DpopRequest {
        method: "POST",
        url: URL,
        now: NOW,
        max_skew: 60,
        algs: &ALGS,
        access_token: None,
    }
}

fn claims() -> Value {
    json!({ "jti": "proof-1", "htm": "POST", "htu": URL, "iat": NOW })
}

/// A proof signed by `alg`'s test key, its public JWK in the header.
fn proof_with(alg: Alg, header: impl FnOnce(&mut Value), claims: &Value) -> String {
    let (_, private) = key(alg);
    let mut h = json!({ "typ": "dpop+jwt", "alg": alg.to_string(), "jwk": private.public_key().jwk_json() });
    header(&mut h);
    sign_raw(&private, &h, claims.to_string().as_bytes())
}

fn proof(claims: &Value) -> String {
    proof_with(Alg::ES256, |_| {}, claims)
}

#[test]
fn a_good_proof_gives_its_keys_thumbprint() {
    for alg in ALGS {
        let p = proof_with(alg, |_| {}, &claims());
        let ok = verify_proof(&p, &request()).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(ok.jkt, key(alg).1.public_key().thumbprint());
        assert_eq!((ok.jti.as_str(), ok.iat, ok.nonce), ("proof-1", NOW, None));
    }
}

/// The pure-Rust backend accepts the same proofs and refuses the same
/// forged signature.
#[cfg(feature = "rustcrypto")]
#[test]
fn the_pure_backend_checks_proofs_alike() {
    for alg in ALGS {
        let p = proof_with(alg, |_| {}, &claims());
        let ok = verify_proof_with(&p, &request(), Backend::RustCrypto)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(ok.jkt, key(alg).1.public_key().thumbprint());
        let other = other_key(alg);
        let forged = proof_with(alg, |h| h["jwk"] = other.public_key().jwk_json(), &claims());
        assert_eq!(
            verify_proof_with(&forged, &request(), Backend::RustCrypto),
            Err(DpopError::Signature),
            "{alg}"
        );
    }
}

#[test]
fn the_header_must_be_a_dpop_proofs() {
    let bad_typ = proof_with(Alg::ES256, |h| h["typ"] = "JWT".into(), &claims());
    assert_eq!(verify_proof(&bad_typ, &request()), Err(DpopError::Typ));
    let no_typ = proof_with(
        Alg::ES256,
        |h| drop(h.as_object_mut().unwrap().remove("typ")),
        &claims(),
    );
    assert_eq!(verify_proof(&no_typ, &request()), Err(DpopError::Typ));
    let no_jwk = proof_with(
        Alg::ES256,
        |h| drop(h.as_object_mut().unwrap().remove("jwk")),
        &claims(),
    );
    assert!(matches!(
        verify_proof(&no_jwk, &request()),
        Err(DpopError::Key(_))
    ));
    // A private key in the header is refused, not used.
    let private_jwk: Value =
        serde_json::from_str(&crate::testutil::private_jwk(key(Alg::ES256).0)).unwrap();
    let leaked = proof_with(Alg::ES256, |h| h["jwk"] = private_jwk, &claims());
    assert!(matches!(
        verify_proof(&leaked, &request()),
        Err(DpopError::Key(_))
    ));
    for pointer in ["jku", "x5u", "x5c", "crit"] {
        let p = proof_with(Alg::ES256, |h| h[pointer] = json!(["x"]), &claims());
        assert!(
            matches!(verify_proof(&p, &request()), Err(DpopError::Malformed(_))),
            "{pointer}"
        );
    }
    // An algorithm the server does not list, and a symmetric one.
    let only_rsa = DpopRequest {
        algs: &[Alg::RS256],
        ..request()
    };
    assert_eq!(
        verify_proof(&proof(&claims()), &only_rsa),
        Err(DpopError::Alg)
    );
    let hs = proof_with(Alg::ES256, |h| h["alg"] = "HS256".into(), &claims());
    assert_eq!(verify_proof(&hs, &request()), Err(DpopError::Alg));
    let none = proof_with(Alg::ES256, |h| h["alg"] = "none".into(), &claims());
    assert_eq!(verify_proof(&none, &request()), Err(DpopError::Alg));
}

#[test]
fn the_signature_is_checked_with_the_headers_key() {
    // Signed by another key than the one in the header.
    let (_, shown) = key(Alg::ES256);
    let signer = other_key(Alg::ES256);
    let h = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": shown.public_key().jwk_json() });
    let forged = sign_raw(&signer, &h, claims().to_string().as_bytes());
    assert_eq!(verify_proof(&forged, &request()), Err(DpopError::Signature));
    // A header key of another algorithm than the proof's.
    let rsa_jwk = key(Alg::RS256).1.public_key().jwk_json();
    let mixed = proof_with(Alg::ES256, |h| h["jwk"] = rsa_jwk, &claims());
    assert!(matches!(
        verify_proof(&mixed, &request()),
        Err(DpopError::Key(_))
    ));
}

#[test]
fn the_claims_must_match_the_request() {
    let with = |name: &str, v: Value| {
        let mut c = claims();
        c[name] = v;
        proof(&c)
    };
    let without = |name: &str| {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(name);
        proof(&c)
    };
    for name in ["jti", "htm", "htu", "iat"] {
        assert_eq!(
            verify_proof(&without(name), &request()),
            Err(DpopError::Claim(match name {
                "jti" => "jti",
                "htm" => "htm",
                "htu" => "htu",
                _ => "iat",
            })),
            "{name}"
        );
    }
    assert_eq!(
        verify_proof(&with("jti", "".into()), &request()),
        Err(DpopError::Claim("jti"))
    );
    assert_eq!(
        verify_proof(&with("jti", "j".repeat(MAX_JTI_LEN + 1).into()), &request()),
        Err(DpopError::Claim("jti"))
    );
    assert_eq!(
        verify_proof(&with("htm", "GET".into()), &request()),
        Err(DpopError::Method)
    );
    assert_eq!(
        verify_proof(&with("htm", "post".into()), &request()),
        Err(DpopError::Method)
    );
    for other in [
        "https://id.example.com/userinfo",
        "https://evil.example/token",
        "http://id.example.com/token",
        "https://id.example.com:8443/token",
    ] {
        assert_eq!(
            verify_proof(&with("htu", other.into()), &request()),
            Err(DpopError::Url),
            "{other}"
        );
    }
    // Query, fragment, case of scheme and host and the default port do not count.
    for same in [
        "https://id.example.com/token?x=1",
        "https://id.example.com/token#f",
        "HTTPS://ID.Example.COM/token",
        "https://id.example.com:443/token",
    ] {
        assert!(
            verify_proof(&with("htu", same.into()), &request()).is_ok(),
            "{same}"
        );
    }
    assert_eq!(
        verify_proof(&with("iat", (NOW - 61).into()), &request()),
        Err(DpopError::Stale)
    );
    assert_eq!(
        verify_proof(&with("iat", (NOW + 61).into()), &request()),
        Err(DpopError::Stale)
    );
    assert!(verify_proof(&with("iat", (NOW - 60).into()), &request()).is_ok());
    for extreme in [i64::MIN, i64::MAX] {
        assert_eq!(
            verify_proof(&with("iat", extreme.into()), &request()),
            Err(DpopError::Stale)
        );
    }
    assert_eq!(
        verify_proof(&with("iat", "now".into()), &request()),
        Err(DpopError::Claim("iat"))
    );
    assert_eq!(
        verify_proof(&with("nonce", 5.into()), &request()),
        Err(DpopError::Claim("nonce"))
    );
    let n = verify_proof(&with("nonce", "n-1".into()), &request()).unwrap();
    assert_eq!(n.nonce.as_deref(), Some("n-1"));
}

#[test]
fn a_proof_with_an_access_token_carries_its_hash() {
    let token = "an-access-token";
    let at = DpopRequest {
        access_token: Some(token),
        ..request()
    };
    assert_eq!(
        verify_proof(&proof(&claims()), &at),
        Err(DpopError::AccessTokenHash)
    );
    let mut c = claims();
    c["ath"] = URL_SAFE_NO_PAD
        .encode(Sha256::digest(token.as_bytes()))
        .into();
    assert!(verify_proof(&proof(&c), &at).is_ok());
    c["ath"] = URL_SAFE_NO_PAD.encode(Sha256::digest(b"another")).into();
    assert_eq!(
        verify_proof(&proof(&c), &at),
        Err(DpopError::AccessTokenHash)
    );
}

#[test]
fn garbage_is_refused_without_a_panic() {
    for junk in [
        "",
        ".",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        &"x".repeat(MAX_PROOF_LEN + 1),
    ] {
        assert!(
            matches!(verify_proof(junk, &request()), Err(DpopError::Malformed(_))),
            "{junk:.20}"
        );
    }
    // The error text never quotes the proof.
    let p = proof_with(Alg::ES256, |h| h["typ"] = "secret-typ".into(), &claims());
    let e = verify_proof(&p, &request()).unwrap_err().to_string();
    assert!(!e.contains("secret-typ"), "{e}");
}

#[test]
fn rsa_proof_keys_must_be_cheap_to_check() {
    let (_, private) = key(Alg::RS256);
    let jwk = private.public_key().jwk_json();
    // The real 2048-bit key passes.
    assert!(verify_proof(&proof_with(Alg::RS256, |_| {}, &claims()), &request()).is_ok());
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let cases = [
        ("n", b64(&[0xC5; 1024]), "2048 to 4096 bits"),
        ("n", b64(&[0xC5; 128]), "2048 to 4096 bits"),
        ("n", String::new(), "2048 to 4096 bits"),
        ("n", "!!".to_owned(), "needs n"),
        ("e", b64(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF]), "65537"),
    ];
    for (member, value, why) in cases {
        let mut bad = jwk.clone();
        bad[member] = value.into();
        let p = proof_with(Alg::RS256, |h| h["jwk"] = bad, &claims());
        match verify_proof(&p, &request()) {
            Err(DpopError::Key(d)) => assert!(d.contains(why), "{member}: {d}"),
            other => panic!("{member}: {other:?}"),
        }
    }
}
