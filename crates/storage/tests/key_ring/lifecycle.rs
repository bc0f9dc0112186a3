//! Opening the ring on an empty database and the rotation schedule.

use super::*;

on_both! {
    open_empty_database,
    default_signing_algs_only,
    scheduled_lifecycle,
    schedule_waits_for_prepublish,
}

// ---------------------------------------------------------------- 1. open

/// The default `signing_algs` (RS256, ES256): keys only for those; keys of
/// another signing algorithm already in the store are neither published
/// nor used.
async fn default_signing_algs_only(env: Env) {
    // A fresh database under the default policy: no EdDSA or PS256 key.
    let _ring = env.ring(RotationPolicy::default()).await;
    let keys = env.keys().await;
    assert_eq!(keys.len(), 6, "3 algs x (active + next)");
    assert!(keys
        .iter()
        .all(|k| k.alg != Alg::EdDSA && k.alg != Alg::PS256));
    // Another instance (or an earlier configuration) made EdDSA keys.
    let _wide = env.ring(every_alg()).await;
    let eddsa = one(&env.keys().await, Alg::EdDSA, KeyState::Active).kid;
    let ring = env.ring(RotationPolicy::default()).await;
    let snap = ring.snapshot();
    assert!(!jwks_kids(&snap).contains(&eddsa));
    let algs: std::collections::BTreeSet<String> = jwks_entries(&snap)
        .iter()
        .map(|k| k["alg"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        algs.into_iter().collect::<Vec<_>>(),
        ["ECDH-ES+A256KW", "ES256", "RS256"]
    );
    assert!(ring.sign(Alg::EdDSA, "JWT", &claims(1)).is_err());
    ring.sign(Alg::RS256, "JWT", &claims(1)).unwrap();
}

async fn open_empty_database(env: Env) {
    assert!(env.keys().await.is_empty());
    let ring = env.ring(every_alg()).await;

    // Exactly one active and one next key per (use, alg); nothing else.
    let keys = env.keys().await;
    assert_eq!(keys.len(), 10, "5 algs x (active + next)");
    for alg in all_algs() {
        let active = one(&keys, alg, KeyState::Active);
        let next = one(&keys, alg, KeyState::Next);
        assert_ne!(active.kid, next.kid);
        assert_eq!(active.key_use, alg.key_use());
        assert_eq!(active.activated_at, Some(T0));
        assert_eq!(next.activated_at, None);
        assert_eq!((active.created_at, next.created_at), (T0, T0));
    }
    assert!(keys
        .iter()
        .all(|k| k.alg != Alg::RsaOaep256 && k.sealed_private_key.len() > 28));

    // The snapshot knows the same keys; the JWKS publishes all 10, public only.
    let snap = ring.snapshot();
    assert_eq!(snap.keys().len(), 10);
    assert_eq!(snap.epoch(), env.epoch().await);
    assert!(snap.jwks_etag().starts_with('"') && snap.jwks_etag().ends_with('"'));
    let entries = jwks_entries(&snap);
    assert_eq!(entries.len(), 10);
    assert_eq!(
        jwks_kids(&snap),
        kids(&keys, &[KeyState::Active, KeyState::Next])
    );
    for jwk in &entries {
        let kid = jwk["kid"].as_str().unwrap();
        let rec = keys.iter().find(|k| k.kid == kid).unwrap();
        assert_eq!(jwk["alg"].as_str(), Some(rec.alg.as_str()), "{jwk:?}");
        assert_eq!(jwk["use"].as_str(), Some(rec.key_use.as_str()), "{jwk:?}");
        for m in PRIVATE_MEMBERS {
            assert!(
                !jwk.contains_key(m),
                "JWK {kid} publishes private member {m}"
            );
        }
        let expected_kty = match rec.alg.as_str() {
            "RS256" | "PS256" => "RSA",
            "ES256" | "ECDH-ES+A256KW" => "EC",
            "EdDSA" => "OKP",
            other => panic!("unexpected alg {other}"),
        };
        assert_eq!(jwk["kty"].as_str(), Some(expected_kty));
    }

    // ES256: the token's kid is published, the active key signed it, verify accepts it.
    let es_active = one(&keys, Alg::ES256, KeyState::Active);
    let token = ring.sign(Alg::ES256, "JWT", &claims(1)).unwrap();
    let h = header_of(&token);
    assert_eq!(h["alg"], "ES256");
    assert_eq!(h["typ"], "JWT");
    assert_eq!(h["kid"].as_str(), Some(es_active.kid.as_str()));
    assert!(jwks_kids(&snap).contains(&kid_of(&token)));
    let v = ring.verify(&token, &[Alg::ES256]).unwrap();
    assert_eq!(v.claims, claims(1));
    // Not accepted when ES256 is not allowed.
    assert_invalid_token(
        ring.verify(&token, &[Alg::RS256]),
        "ES256 outside allow-list",
    );

    // Every signing alg signs with its active key and verifies.
    for alg in SIGNING_ALGS {
        let t = ring.sign(alg, "at+jwt", &claims(2)).unwrap();
        assert_eq!(kid_of(&t), one(&keys, alg, KeyState::Active).kid);
        assert_eq!(header_of(&t)["alg"], alg.as_str());
        assert_eq!(ring.verify(&t, &SIGNING_ALGS).unwrap().claims, claims(2));
    }
    // The encryption alg is no signing alg.
    assert!(ring.sign(OWN_ENCRYPTION_ALG, "JWT", &claims(3)).is_err());

    // encrypt_to_self → decrypt round-trips, addressed to the active enc key.
    let enc_active = one(&keys, OWN_ENCRYPTION_ALG, KeyState::Active);
    let jwe = ring
        .encrypt_to_self("{\"hello\":\"world\"}", Some("JSON"), None)
        .unwrap();
    assert_eq!(jwe.split('.').count(), 5);
    let (header, plain) = ring.decrypt(&jwe).unwrap();
    assert_eq!(plain, b"{\"hello\":\"world\"}");
    assert_eq!(header["kid"].as_str(), Some(enc_active.kid.as_str()));
    assert_eq!(header["alg"], "ECDH-ES+A256KW");
    assert_eq!(header["cty"], "JSON");

    // A second open on the same database generates nothing.
    let epoch = env.epoch().await;
    let again = env.ring(every_alg()).await;
    assert_eq!(env.keys().await, keys);
    assert_eq!(env.epoch().await, epoch);
    assert_eq!(again.snapshot().jwks_etag(), snap.jwks_etag());
    assert!(!ring.refresh().await.unwrap(), "nothing changed");
}

// ---------------------------------------------------------------- 2. schedule

async fn scheduled_lifecycle(env: Env) {
    let ring = env.ring(small_policy()).await;
    assert_eq!(ring.policy().rotate_after, 100);
    let gen0 = env.keys().await;
    let gen0_active: HashMap<Alg, Kid> = all_algs()
        .into_iter()
        .map(|a| (a, one(&gen0, a, KeyState::Active).kid))
        .collect();
    let gen0_next: HashMap<Alg, Kid> = all_algs()
        .into_iter()
        .map(|a| (a, one(&gen0, a, KeyState::Next).kid))
        .collect();
    let tok0 = ring.sign(Alg::ES256, "JWT", &claims(0)).unwrap();
    let tok0_rs = ring.sign(Alg::RS256, "JWT", &claims(0)).unwrap();
    let jwe0 = ring.encrypt_to_self("gen0 secret", None, None).unwrap();
    let etag0 = ring.snapshot().jwks_etag().to_owned();
    let epoch0 = env.epoch().await;

    // Before rotate_after: nothing happens (not even an epoch bump).
    env.clock.set(T0 + 99);
    assert!(ring.tick().await.unwrap().is_empty());
    assert_eq!(env.keys().await, gen0);
    assert_eq!(env.epoch().await, epoch0);
    assert_eq!(ring.snapshot().jwks_etag(), etag0);

    // Past rotate_after: every alg rotates once.
    env.clock.set(T0 + 101);
    let done = ring.tick().await.unwrap();
    assert_eq!(done.len(), 5, "{done:?}");
    let gen1 = env.keys().await;
    for alg in all_algs() {
        let r = rotation_of(&done, alg).unwrap_or_else(|| panic!("{alg} not rotated"));
        assert_eq!(r.activated, gen0_next[&alg], "{alg}: next → active");
        assert_eq!(r.retired.as_deref(), Some(gen0_active[&alg].as_str()));
        let active = one(&gen1, alg, KeyState::Active);
        let retired = one(&gen1, alg, KeyState::Retired);
        let next = one(&gen1, alg, KeyState::Next);
        assert_eq!(active.kid, gen0_next[&alg]);
        assert_eq!(active.activated_at, Some(T0 + 101));
        assert_eq!(retired.kid, gen0_active[&alg]);
        assert_eq!(retired.retired_at, Some(T0 + 101));
        assert_eq!(next.kid, r.next);
        assert_eq!(next.created_at, T0 + 101);
        assert!(!gen0.iter().any(|k| k.kid == next.kid), "a new next key");
    }
    let snap = ring.snapshot();
    assert_ne!(snap.jwks_etag(), etag0);
    assert_eq!(jwks_entries(&snap).len(), 15, "active + next + retired, x5");
    assert_eq!(
        jwks_kids(&snap),
        kids(
            &gen1,
            &[KeyState::Active, KeyState::Next, KeyState::Retired]
        )
    );
    // Tokens of the old keys still verify; JWEs to the old enc key still decrypt.
    assert_eq!(ring.verify(&tok0, &[Alg::ES256]).unwrap().claims, claims(0));
    ring.verify(&tok0_rs, &[Alg::RS256]).unwrap();
    assert_eq!(ring.decrypt(&jwe0).unwrap().1, b"gen0 secret");
    // New tokens use the new active key.
    let tok1 = ring.sign(Alg::ES256, "JWT", &claims(1)).unwrap();
    assert_eq!(kid_of(&tok1), gen0_next[&Alg::ES256]);
    let jwe1 = ring.encrypt_to_self("gen1 secret", None, None).unwrap();
    assert_eq!(
        header_of(&jwe1)["kid"].as_str(),
        Some(gen0_next[&OWN_ENCRYPTION_ALG].as_str())
    );
    // Right after a rotation the schedule has nothing to do.
    assert!(ring.tick().await.unwrap().is_empty());

    // Exactly retain_retired after the retirement the retired keys are still
    // kept (the schedule rotates again meanwhile: gen1 retires).
    env.clock.set(T0 + 101 + 200);
    let done = ring.tick().await.unwrap();
    assert_eq!(done.len(), 5);
    let keys = env.keys().await;
    for alg in all_algs() {
        assert_eq!(count(&keys, alg, KeyState::Retired), 2, "{alg}");
        assert!(keys.iter().any(|k| k.kid == gen0_active[&alg]));
    }
    ring.verify(&tok0, &[Alg::ES256]).unwrap();

    // Past retain_retired: gen0's retired keys are deleted and their tokens die.
    env.clock.set(T0 + 101 + 201);
    let done = ring.tick().await.unwrap();
    assert!(done.is_empty(), "active keys are 1 s old: {done:?}");
    let keys = env.keys().await;
    let snap = ring.snapshot();
    for alg in all_algs() {
        let gone = &gen0_active[&alg];
        assert!(
            !keys.iter().any(|k| &k.kid == gone),
            "{alg}: {gone} deleted"
        );
        assert!(!jwks_kids(&snap).contains(gone));
        // gen1 (retired one second ago) is still there.
        let retired = one(&keys, alg, KeyState::Retired);
        assert_eq!(retired.kid, gen0_next[&alg]);
        assert_eq!(retired.retired_at, Some(T0 + 301));
    }
    assert_eq!(keys.len(), 15);
    assert_eq!(jwks_entries(&snap).len(), 15);
    assert_invalid_token(ring.verify(&tok0, &[Alg::ES256]), "token of a deleted key");
    assert_invalid_token(
        ring.verify(&tok0_rs, &[Alg::RS256]),
        "RS256 token of a deleted key",
    );
    assert_invalid_token(ring.decrypt(&jwe0), "JWE to a deleted key");
    // gen1's tokens are still good.
    ring.verify(&tok1, &[Alg::ES256]).unwrap();
    assert_eq!(ring.decrypt(&jwe1).unwrap().1, b"gen1 secret");
}

async fn schedule_waits_for_prepublish(env: Env) {
    let ring = env.ring(small_policy()).await;
    let gen0 = env.keys().await;
    let ed_active = one(&gen0, Alg::EdDSA, KeyState::Active);
    let ed_next = one(&gen0, Alg::EdDSA, KeyState::Next);

    // At T0+60 the EdDSA next key is replaced (revoked): its successor is young.
    env.clock.set(T0 + 60);
    let rev = ring.revoke(&ed_next.kid).await.unwrap();
    assert_eq!(rev.was, KeyState::Next);
    let young = rev.next.expect("a replacement next key");
    let keys = env.keys().await;
    assert_eq!(one(&keys, Alg::EdDSA, KeyState::Next).kid, young);
    assert_eq!(one(&keys, Alg::EdDSA, KeyState::Next).created_at, T0 + 60);

    // T0+101: every active key is old enough, but the EdDSA next key has been
    // published for 41 s < prepublish (50 s): EdDSA waits.
    env.clock.set(T0 + 101);
    let done = ring.tick().await.unwrap();
    assert_eq!(done.len(), 4, "{done:?}");
    assert!(rotation_of(&done, Alg::EdDSA).is_none());
    let keys = env.keys().await;
    assert_eq!(one(&keys, Alg::EdDSA, KeyState::Active).kid, ed_active.kid);
    assert_eq!(one(&keys, Alg::EdDSA, KeyState::Next).kid, young);
    assert_eq!(count(&keys, Alg::EdDSA, KeyState::Retired), 0);
    assert_eq!(
        kid_of(&ring.sign(Alg::EdDSA, "JWT", &claims(1)).unwrap()),
        ed_active.kid
    );

    // T0+109: 49 s, still too young.
    env.clock.set(T0 + 109);
    assert!(ring.tick().await.unwrap().is_empty());
    assert_eq!(
        one(&env.keys().await, Alg::EdDSA, KeyState::Active).kid,
        ed_active.kid
    );

    // T0+110: published for prepublish → EdDSA rotates, and only EdDSA.
    env.clock.set(T0 + 110);
    let done = ring.tick().await.unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    let r = rotation_of(&done, Alg::EdDSA).unwrap();
    assert_eq!(r.activated, young);
    assert_eq!(r.retired.as_deref(), Some(ed_active.kid.as_str()));
    assert_eq!(
        kid_of(&ring.sign(Alg::EdDSA, "JWT", &claims(2)).unwrap()),
        young
    );
}
