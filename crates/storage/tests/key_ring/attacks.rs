//! Attacks on verification: forged, confused and key-carrying tokens.

use super::*;

on_both! {
    verify_refuses_attacks,
}

// ---------------------------------------------------------------- 8. attacks on verify

async fn verify_refuses_attacks(env: Env) {
    let ring = env.ring(every_alg()).await;
    let keys = env.keys().await;
    let es = one(&keys, Alg::ES256, KeyState::Active);
    let rs = one(&keys, Alg::RS256, KeyState::Active);
    let payload = b64(&json!({"sub": "admin", "iss": "https://gatehouse.test"}));
    let all = [Alg::RS256, Alg::PS256, Alg::ES256, Alg::EdDSA];

    // alg none, with and without a signature segment; also "None" and "NONE".
    for alg in ["none", "None", "NONE"] {
        let h = b64(&json!({"alg": alg, "kid": es.kid, "typ": "JWT"}));
        assert_invalid_token(ring.verify(&format!("{h}.{payload}."), &all), "alg none");
        assert_invalid_token(
            ring.verify(&format!("{h}.{payload}.AAAA"), &all),
            "alg none with signature",
        );
    }
    // No alg at all.
    let h = b64(&json!({"kid": es.kid}));
    assert_invalid_token(ring.verify(&format!("{h}.{payload}."), &all), "no alg");

    // HS256 keyed with the published RSA JWK (algorithm confusion).
    {
        use hmac::{Hmac, Mac};
        let h = b64(&json!({"alg": "HS256", "kid": rs.kid, "typ": "JWT"}));
        let input = format!("{h}.{payload}");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(rs.public_jwk.as_bytes()).unwrap();
        mac.update(input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_invalid_token(
            ring.verify(&format!("{input}.{sig}"), &all),
            "HS256 with the public key",
        );
    }

    // A real ES256 token relabelled RS256 (alg/key mismatch).
    let real = ring.sign(Alg::ES256, "JWT", &claims(1)).unwrap();
    let parts: Vec<&str> = real.split('.').collect();
    let h = b64(&json!({"alg": "RS256", "kid": es.kid, "typ": "JWT"}));
    assert_invalid_token(
        ring.verify(&format!("{h}.{}.{}", parts[1], parts[2]), &all),
        "alg relabelled",
    );
    // An attacker's own key claiming a real kid: bad signature.
    let forged = sign(&attacker_key(Alg::ES256, &es.kid), "JWT", &claims(1)).unwrap();
    assert_eq!(kid_of(&forged), es.kid);
    assert_invalid_token(ring.verify(&forged, &all), "attacker key with a real kid");

    // Kids that try to escape a lookup: validly signed by the attacker, refused as unknown.
    for kid in [
        "' OR 1=1 --",
        "x' OR '1'='1",
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "%",
        "*",
    ] {
        let forged = sign(&attacker_key(Alg::ES256, kid), "JWT", &claims(2)).unwrap();
        assert_eq!(kid_of(&forged), kid);
        assert_invalid_token(ring.verify(&forged, &all), kid);
        // The same kid with a real signature segment taken from a real token.
        let h = b64(&json!({"alg": "ES256", "kid": kid, "typ": "JWT"}));
        assert_invalid_token(
            ring.verify(&format!("{h}.{}.{}", parts[1], parts[2]), &all),
            kid,
        );
    }

    // A kid naming a revoked key: its genuine tokens are refused.
    ring.verify(&real, &all).unwrap();
    ring.revoke(&es.kid).await.unwrap();
    assert_invalid_token(ring.verify(&real, &all), "revoked kid");
    assert_invalid_token(ring.verify(&real, &[Alg::ES256]), "revoked kid, ES256 only");

    // None of this touched the store: only the one revocation happened.
    let after = env.keys().await;
    assert_eq!(after.len(), keys.len() + 1, "the revocation's new next key");
    assert_eq!(count(&after, Alg::ES256, KeyState::Revoked), 1);
    for alg in all_algs() {
        one(&after, alg, KeyState::Active);
        one(&after, alg, KeyState::Next);
    }
}
