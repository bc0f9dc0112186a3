//! Tests of the public structural checks, as a verifier that decrypts with
//! its own JOSE library uses them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::*;
use crate::testutil::*;
use crate::{b64, encrypt};

fn object(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn jws_header_check_refuses_key_carrying_members_and_crit() {
    assert!(check_jws_header(&object(json!({"alg": "ES256", "kid": "k"}))).is_ok());
    for member in ["jwk", "jku", "x5u", "x5c", "crit"] {
        let mut header = object(json!({"alg": "ES256", "kid": "k"}));
        header.insert(member.into(), "https://evil.example/key".into());
        assert!(
            matches!(check_jws_header(&header), Err(JoseError::InvalidToken(_))),
            "{member}"
        );
    }
}

#[test]
fn jwe_check_returns_the_header_and_refuses_structure_faults() {
    let (_, private) = key(Alg::EcdhEsA256kw);
    let token = encrypt("a.b.c", &private.public_key(), Some("JWT"), None).unwrap();
    let header = check_jwe(&token).unwrap();
    assert_eq!(header["alg"], "ECDH-ES+A256KW");
    assert_eq!(header["cty"], "JWT");

    let parts: Vec<&str> = token.split('.').collect();
    // A 96-bit IV cut short, a truncated tag, a wrapped key of the wrong length.
    for (index, cut) in [(2, 1), (4, 1), (1, 1)] {
        let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
        let bytes = URL_SAFE_NO_PAD.decode(&p[index]).unwrap();
        p[index] = b64(&bytes[..bytes.len() - cut]);
        assert_eq!(
            check_jwe(&p.join(".")),
            Err(JoseError::InvalidToken("malformed JWE")),
            "part {index}"
        );
    }
    // Compression and an ephemeral key off P-256.
    let mut zipped = object(decode_b64_json(parts[0]));
    zipped.insert("zip".into(), "DEF".into());
    let zipped = format!(
        "{}.{}",
        b64_json(&Value::Object(zipped)),
        parts[1..].join(".")
    );
    assert_eq!(
        check_jwe(&zipped),
        Err(JoseError::InvalidToken("compressed JWE is not accepted"))
    );
    let mut off_curve = object(decode_b64_json(parts[0]));
    off_curve["epk"]["y"] = b64([1u8; 32]).into();
    let off_curve = format!(
        "{}.{}",
        b64_json(&Value::Object(off_curve)),
        parts[1..].join(".")
    );
    assert_eq!(
        check_jwe(&off_curve),
        Err(JoseError::InvalidToken(
            "ephemeral key is not a valid P-256 point"
        ))
    );
    assert_eq!(
        check_jwe(&"a".repeat(MAX_TOKEN_LEN + 1)),
        Err(JoseError::InvalidToken("token too large"))
    );
}
