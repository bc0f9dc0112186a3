//! Access tokens: addressed to Gatehouse (direct encryption) and to resource servers (derived CEK).

use super::*;

on_both! {
    own_tokens_direct_encryption,
    access_tokens_with_derived_cek,
}

/// Access tokens addressed to Gatehouse: `dir` + A256GCM under a per-day key
/// derived from the KEK. Every instance with the KEK opens them; nothing
/// else does; keys of days outside yesterday..tomorrow are refused.
async fn own_tokens_direct_encryption(env: Env) {
    let ring = env.ring(small_policy()).await;
    let mut extra = Map::new();
    extra.insert("gh_ref".into(), "sealed".into());
    let jwe = ring
        .encrypt_own_token("a.b.c", Some("JWT"), Some(&extra))
        .unwrap();
    let parts: Vec<&str> = jwe.split('.').collect();
    assert_eq!(parts.len(), 5);
    assert_eq!(parts[1], "", "direct encryption has no encrypted key");
    let header = header_of(&jwe);
    assert_eq!(header["alg"], "dir");
    assert_eq!(header["enc"], "A256GCM");
    assert_eq!(header["cty"], "JWT");
    assert_eq!(header["gh_ref"], "sealed");
    let kid = header["kid"].as_str().unwrap().to_owned();
    assert_eq!(kid, format!("gh-dir-{}", T0 / 86_400));
    assert!(KeyRing::is_own_token_kid(&kid));
    let (h, plain) = ring.decrypt_own_token(&jwe).unwrap();
    assert_eq!(plain, b"a.b.c");
    assert_eq!(h["gh_ref"], "sealed");

    // Another instance with the same KEK opens it; a ring with another KEK does not.
    let other = env.ring_on(env.second_store().await, small_policy()).await;
    assert_eq!(other.decrypt_own_token(&jwe).unwrap().1, b"a.b.c");
    // Any altered part fails: header (the AAD), IV, ciphertext, tag.
    for i in [0, 2, 3, 4] {
        let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
        let mut bytes = URL_SAFE_NO_PAD.decode(&p[i]).unwrap();
        bytes[0] ^= 1;
        p[i] = URL_SAFE_NO_PAD.encode(bytes);
        assert!(ring.decrypt_own_token(&p.join(".")).is_err(), "part {i}");
    }
    // A non-empty encrypted-key part, another alg, or a foreign kid: refused.
    assert!(ring
        .decrypt_own_token(&jwe.replacen("..", ".AAAA.", 1))
        .is_err());
    assert!(ring.decrypt(&jwe).is_err(), "not an ECDH token");
    let forged = |h: Value| {
        let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
        p[0] = URL_SAFE_NO_PAD.encode(h.to_string());
        p.join(".")
    };
    let mut h2 = header.clone();
    h2["alg"] = "A256KW".into();
    assert!(ring.decrypt_own_token(&forged(Value::Object(h2))).is_err());
    let mut h3 = header.clone();
    h3["kid"] = "gh-dir-not-a-day".into();
    assert!(ring.decrypt_own_token(&forged(Value::Object(h3))).is_err());

    // Tomorrow it still opens; two days later its key is no longer accepted.
    env.clock.set(T0 + 86_400);
    assert!(ring.decrypt_own_token(&jwe).is_ok());
    env.clock.set(T0 + 2 * 86_400 + 1);
    assert!(ring.decrypt_own_token(&jwe).is_err());
    // Sealed references follow the same days.
    env.clock.set(T0);
    let sealed = ring.seal_reference(b"ref").unwrap();
    assert_eq!(other.open_reference(&sealed).unwrap(), b"ref");
    let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
    bytes[3] ^= 1; // the neighbouring day: within the window, but another key
    assert!(ring
        .open_reference(&URL_SAFE_NO_PAD.encode(&bytes))
        .is_none());
    env.clock.set(T0 + 86_400);
    assert_eq!(ring.open_reference(&sealed).unwrap(), b"ref");
    env.clock.set(T0 + 2 * 86_400 + 1);
    assert!(ring.open_reference(&sealed).is_none());
    // References sealed by releases before day keys (undated key, version
    // byte 1) no longer open: such tokens expired long ago.
    let legacy = env
        .kek
        .derive(b"gatehouse token-reference v1")
        .seal("gh_ref", b"old")
        .unwrap();
    assert!(ring
        .open_reference(&URL_SAFE_NO_PAD.encode(&legacy))
        .is_none());
    // New tokens use the new day's key.
    let later = ring.encrypt_own_token("x", None, None).unwrap();
    assert_ne!(header_of(&later)["kid"], kid.as_str());
}

/// Access tokens for resource servers: the CEK is derived from the KEK and
/// the jti, wrapped as usual (the resource server decrypts normally). Any
/// instance with the KEK opens a token given its jti; a genuine header on
/// another body, another jti, a re-encrypted JWS with another jti or a
/// forged signature, and a token whose signing key was revoked all fail.
async fn access_tokens_with_derived_cek(env: Env) {
    let ring = env.ring(small_policy()).await;
    let api = attacker_key(Alg::RsaOaep256, "api-1");
    let signed = |jti: &str| {
        let mut c = claims(1);
        c.insert("jti".into(), jti.into());
        ring.sign(Alg::ES256, "at+jwt", &c).unwrap()
    };
    let (jws_a, jws_b) = (signed("jti-a"), signed("jti-b"));
    let mut extra = Map::new();
    extra.insert("gh_ref".into(), "ref".into());
    let token = ring
        .encrypt_access_token(
            &jws_a,
            &api.public_key(),
            "jti-a",
            Some("JWT"),
            Some(&extra),
        )
        .unwrap();
    let other = ring
        .encrypt_access_token(
            &jws_b,
            &api.public_key(),
            "jti-b",
            Some("JWT"),
            Some(&extra),
        )
        .unwrap();
    // The resource server decrypts it with its private key, as always.
    let (header, plain) = gatehouse_keys::decrypt(&token, |_| Some(&api)).unwrap();
    assert_eq!(plain, jws_a.as_bytes());
    assert_eq!(header["gh_ref"], "ref");
    assert_eq!(header["kid"], "api-1");

    let opened = ring
        .open_access_token(&token, "jti-a", &SIGNING_ALGS)
        .unwrap();
    assert_eq!(opened.claims["jti"], "jti-a");
    let other_instance = env.ring_on(env.second_store().await, small_policy()).await;
    assert!(other_instance
        .open_access_token(&token, "jti-a", &SIGNING_ALGS)
        .is_ok());
    // Another jti derives another CEK; the empty jti none at all.
    assert_invalid_token(
        ring.open_access_token(&token, "jti-b", &SIGNING_ALGS),
        "wrong jti",
    );
    assert_invalid_token(
        ring.open_access_token(&token, "", &SIGNING_ALGS),
        "empty jti",
    );
    // The genuine header on another token's body.
    let parts: Vec<&str> = token.split('.').collect();
    let spliced = format!("{}.{}", parts[0], other.split_once('.').unwrap().1);
    assert_invalid_token(
        ring.open_access_token(&spliced, "jti-a", &SIGNING_ALGS),
        "spliced",
    );
    // The resource server knows this token's CEK: what it re-encrypts
    // under the genuine header must still be the JWS Gatehouse signed.
    let cek = env
        .kek
        .derive(b"gatehouse access-token cek v1")
        .derive(b"jti-a");
    let reencrypt = |payload: &str| {
        use josekit::jwe::{enc::A256GCM, JweContentEncryption as _};
        let iv = [7u8; 12];
        let (ct, tag) = A256GCM
            .encrypt(
                &cek_bytes(&cek),
                Some(&iv),
                payload.as_bytes(),
                parts[0].as_bytes(),
            )
            .unwrap();
        format!(
            "{}.{}.{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(iv),
            URL_SAFE_NO_PAD.encode(ct),
            URL_SAFE_NO_PAD.encode(tag.unwrap())
        )
    };
    assert!(ring
        .open_access_token(&reencrypt(&jws_a), "jti-a", &SIGNING_ALGS)
        .is_ok());
    assert_invalid_token(
        ring.open_access_token(&reencrypt(&jws_b), "jti-a", &SIGNING_ALGS),
        "a signed token with another jti",
    );
    let mut forged = claims(1);
    forged.insert("jti".into(), "jti-a".into());
    let impostor = sign(
        &attacker_key(Alg::ES256, &kid_of(&jws_a)),
        "at+jwt",
        &forged,
    )
    .unwrap();
    assert_invalid_token(
        ring.open_access_token(&reencrypt(&impostor), "jti-a", &SIGNING_ALGS),
        "signed by someone else under Gatehouse's kid",
    );
    // Revoking the signing key ends the token on every instance.
    ring.revoke(&kid_of(&jws_a)).await.unwrap();
    other_instance.refresh().await.unwrap();
    assert_invalid_token(
        ring.open_access_token(&token, "jti-a", &SIGNING_ALGS),
        "revoked key",
    );
    assert_invalid_token(
        other_instance.open_access_token(&token, "jti-a", &SIGNING_ALGS),
        "revoked key, other instance",
    );
}

/// The raw bytes of a derived key, as the resource server learns them by
/// unwrapping a token's CEK.
fn cek_bytes(key: &Kek) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(key.to_base64url()).unwrap()
}
