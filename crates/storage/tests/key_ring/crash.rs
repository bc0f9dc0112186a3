//! Crash safety and a wrong key-encryption key.

use super::*;

on_both! {
    crash_mid_rotation_rolls_back,
    wrong_kek_refused,
}

// ---------------------------------------------------------------- 6. crash safety

async fn crash_mid_rotation_rolls_back(env: Env) {
    let ring = env.ring(every_alg()).await;
    let before = env.keys().await;
    let epoch = env.epoch().await;
    let active = one(&before, Alg::ES256, KeyState::Active);
    let next = one(&before, Alg::ES256, KeyState::Next);

    // The new next key's INSERT (the last step, after next → active and
    // active → retired) fails on a duplicate kid: the rotation dies midway.
    for (dup, expected) in [(&active, None), (&next, Some(next.kid.as_str()))] {
        let mut rec = dup.clone();
        rec.state = KeyState::Next;
        rec.activated_at = None;
        let res = env
            .store
            .rotate_keys(KeyUse::Sig, Alg::ES256, expected, rec, T0 + 10)
            .await;
        assert!(res.is_err(), "duplicate kid must fail: {res:?}");

        // Nothing half-done: same active, same next, no retired key, no epoch move.
        let after = env.keys().await;
        assert_eq!(after, before);
        assert_eq!(one(&after, Alg::ES256, KeyState::Active).kid, active.kid);
        assert_eq!(one(&after, Alg::ES256, KeyState::Next).kid, next.kid);
        assert_eq!(count(&after, Alg::ES256, KeyState::Retired), 0);
        assert_eq!(env.epoch().await, epoch);
    }
    assert!(!ring.refresh().await.unwrap());
    assert_eq!(
        kid_of(&ring.sign(Alg::ES256, "JWT", &claims(1)).unwrap()),
        active.kid
    );

    // A second instance can still rotate (no lock left behind).
    let other = env.ring_on(env.second_store().await, every_alg()).await;
    let done = tokio::time::timeout(
        Duration::from_secs(20),
        other.rotate(None, Some(Alg::ES256)),
    )
    .await
    .expect("rotation after a failed one must not hang")
    .unwrap();
    assert_eq!(done[0].1.activated, next.kid);
    assert_eq!(done[0].1.retired.as_deref(), Some(active.kid.as_str()));
    assert!(ring.refresh().await.unwrap());
    assert_eq!(
        kid_of(&ring.sign(Alg::ES256, "JWT", &claims(2)).unwrap()),
        next.kid
    );
}

// ---------------------------------------------------------------- 7. wrong KEK

async fn wrong_kek_refused(env: Env) {
    let _ring = env.ring(every_alg()).await;
    let before = env.keys().await;
    let epoch = env.epoch().await;

    let wrong = Kek::generate();
    let err = KeyRing::open(
        env.store.clone(),
        wrong,
        every_alg(),
        Arc::new(env.clock.clone()),
    )
    .await
    .expect_err("a ring under the wrong KEK must not open");
    assert!(matches!(err, KeyError::Unseal(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("wrong key-encryption key"),
        "message should name the wrong KEK: {msg}"
    );
    // Nothing was generated or changed under the wrong KEK.
    assert_eq!(env.keys().await, before);
    assert_eq!(env.epoch().await, epoch);

    // The right KEK still opens (also via its base64url text form).
    let kek = Kek::from_base64url(&env.kek.to_base64url()).unwrap();
    let ring = KeyRing::open(
        env.store.clone(),
        kek,
        every_alg(),
        Arc::new(env.clock.clone()),
    )
    .await
    .unwrap();
    let t = ring.sign(Alg::PS256, "JWT", &claims(1)).unwrap();
    ring.verify(&t, &[Alg::PS256]).unwrap();

    // A database missing one alg's keys (written by a version without EdDSA,
    // or a first start that died midway). A start with the wrong KEK must
    // not generate the missing keys under that KEK before failing: that
    // would lock the right KEK out for good (regression test for a bug).
    {
        use sea_orm::ConnectionTrait;
        let raw = sea_orm::Database::connect(&env.db.url).await.unwrap();
        raw.execute_unprepared("DELETE FROM keys WHERE alg = 'EdDSA'")
            .await
            .unwrap();
        raw.close().await.unwrap();
    }
    let partial = env.keys().await;
    assert_eq!(partial.len(), 8);
    let err = KeyRing::open(
        env.store.clone(),
        Kek::generate(),
        every_alg(),
        Arc::new(env.clock.clone()),
    )
    .await
    .expect_err("the wrong KEK must not open a partial ring either");
    assert!(matches!(err, KeyError::Unseal(_)), "{err:?}");
    assert!(
        err.to_string().contains("wrong key-encryption key"),
        "{err}"
    );
    assert_eq!(
        env.keys().await,
        partial,
        "nothing sealed under the wrong KEK"
    );
    let ring = env.ring(every_alg()).await;
    let keys = env.keys().await;
    assert_eq!(keys.len(), 10, "the right KEK fills in EdDSA");
    one(&keys, Alg::EdDSA, KeyState::Active);
    one(&keys, Alg::EdDSA, KeyState::Next);
    let t = ring.sign(Alg::EdDSA, "JWT", &claims(2)).unwrap();
    ring.verify(&t, &[Alg::EdDSA]).unwrap();
}
