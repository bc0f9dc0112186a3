//! Revoking keys: at once, everywhere, and only known kids.

use super::*;

on_both! {
    revocation,
}

// ---------------------------------------------------------------- 5. revocation

async fn revocation(env: Env) {
    let ring = env.ring(every_alg()).await;
    let gen0 = env.keys().await;
    let active = one(&gen0, Alg::ES256, KeyState::Active);
    let next = one(&gen0, Alg::ES256, KeyState::Next);
    let token = ring.sign(Alg::ES256, "JWT", &claims(1)).unwrap();
    ring.verify(&token, &[Alg::ES256]).unwrap();

    env.clock.advance(5);
    let rev = ring.revoke(&active.kid).await.unwrap();
    assert_eq!(rev.kid, active.kid);
    assert_eq!(rev.was, KeyState::Active);
    assert_eq!(rev.activated.as_deref(), Some(next.kid.as_str()));
    let new_next = rev.next.clone().expect("a new next key");
    let keys = env.keys().await;
    let revoked = one(&keys, Alg::ES256, KeyState::Revoked);
    assert_eq!(revoked.kid, active.kid);
    assert_eq!(revoked.revoked_at, Some(T0 + 5));
    assert_eq!(one(&keys, Alg::ES256, KeyState::Active).kid, next.kid);
    assert_eq!(one(&keys, Alg::ES256, KeyState::Next).kid, new_next);
    // The ring reloaded: signs with the new key, refuses the revoked one, hides it.
    let snap = ring.snapshot();
    assert!(!jwks_kids(&snap).contains(&active.kid));
    assert!(jwks_kids(&snap).contains(&new_next));
    assert_eq!(jwks_entries(&snap).len(), 10);
    assert_eq!(
        kid_of(&ring.sign(Alg::ES256, "JWT", &claims(2)).unwrap()),
        next.kid
    );
    assert_invalid_token(ring.verify(&token, &[Alg::ES256]), "token of a revoked key");
    // Another instance opening now agrees.
    let other = env.ring(every_alg()).await;
    assert_invalid_token(
        other.verify(&token, &[Alg::ES256]),
        "token of a revoked key (fresh instance)",
    );

    // Unknown and already-revoked kids fail cleanly and change nothing.
    let epoch = env.epoch().await;
    for bad in ["no-such-kid", "", "' OR 1=1 --", "../../etc/passwd"] {
        let err = ring.revoke(bad).await.expect_err("unknown kid");
        assert!(
            matches!(err, KeyError::Jose(JoseError::InvalidKey(_))),
            "{bad:?}: unexpected error {err:?}"
        );
    }
    let err = ring.revoke(&active.kid).await.expect_err("already revoked");
    assert!(
        matches!(
            &err,
            KeyError::Store(failure) if !failure.is_unavailable()
                && matches!(
                    std::error::Error::source(failure)
                        .and_then(|e| e.downcast_ref::<gatehouse_storage::StoreError>()),
                    Some(gatehouse_storage::StoreError::NotFound(_))
                )
        ),
        "{err:?}"
    );
    assert_eq!(env.keys().await, keys);
    assert_eq!(env.epoch().await, epoch);

    // Revoking a retired key withdraws it at once.
    let rs_token = ring.sign(Alg::RS256, "JWT", &claims(3)).unwrap();
    let r = ring.rotate(None, Some(Alg::RS256)).await.unwrap();
    let rs_retired = r[0].1.retired.clone().unwrap();
    assert_eq!(kid_of(&rs_token), rs_retired);
    ring.verify(&rs_token, &[Alg::RS256]).unwrap();
    let rev = ring.revoke(&rs_retired).await.unwrap();
    assert_eq!(rev.was, KeyState::Retired);
    assert_eq!(
        (rev.activated, rev.next),
        (None, None),
        "next key untouched"
    );
    assert!(!jwks_kids(&ring.snapshot()).contains(&rs_retired));
    assert_invalid_token(
        ring.verify(&rs_token, &[Alg::RS256]),
        "token of a revoked retired key",
    );

    // Revoking the own encryption key: JWEs to it no longer decrypt.
    let jwe = ring.encrypt_to_self("for the old key", None, None).unwrap();
    let enc_active = one(&env.keys().await, OWN_ENCRYPTION_ALG, KeyState::Active);
    assert_eq!(kid_of(&jwe), enc_active.kid);
    let rev = ring.revoke(&enc_active.kid).await.unwrap();
    assert_invalid_token(ring.decrypt(&jwe), "JWE to a revoked key");
    let jwe2 = ring.encrypt_to_self("for the new key", None, None).unwrap();
    assert_eq!(Some(kid_of(&jwe2)), rev.activated);
    assert_eq!(ring.decrypt(&jwe2).unwrap().1, b"for the new key");

    // generate_next adds a second next key; the older one still activates first.
    let rs_next = one(&env.keys().await, Alg::RS256, KeyState::Next);
    env.clock.advance(1);
    let added = ring.generate_next(Alg::RS256).await.unwrap();
    let keys = env.keys().await;
    let nexts = of(&keys, Alg::RS256, KeyState::Next);
    assert_eq!(nexts.len(), 2);
    assert!(nexts
        .iter()
        .any(|k| k.kid == added && k.created_at == T0 + 6));
    assert!(jwks_kids(&ring.snapshot()).contains(&added));
    let r = ring.rotate(None, Some(Alg::RS256)).await.unwrap();
    assert_eq!(r[0].1.activated, rs_next.kid);
    let keys = env.keys().await;
    assert_eq!(count(&keys, Alg::RS256, KeyState::Next), 2, "added + new");
    assert!(of(&keys, Alg::RS256, KeyState::Next)
        .iter()
        .any(|k| k.kid == added));
}
