//! Signing and encryption keys: lifecycle, revocation, and rotation under concurrent writers.

use std::sync::Arc;

use gatehouse_storage::{model::KeyState, KeyRevocation, Rotation, Store, StoreError};
use tokio::sync::Barrier;

use crate::{
    fixtures::{key, key_state, kids_in},
    NOW,
};

contract! {
    keys_lifecycle => sqlite_keys_lifecycle, postgres_keys_lifecycle;
    keys_revocation => sqlite_keys_revocation, postgres_keys_revocation;
    keys_concurrent_rotation => sqlite_keys_concurrent_rotation, postgres_keys_concurrent_rotation;
    keys_concurrent_ensure => sqlite_keys_concurrent_ensure, postgres_keys_concurrent_ensure;
}

async fn keys_lifecycle(store: Store) {
    let e0 = store.epoch("keys").await.unwrap();

    // ensure_keys fills both roles once.
    let inserted = store
        .ensure_keys(
            "sig".parse().unwrap(),
            "RS256".parse().unwrap(),
            key("k1", "sig", "RS256"),
            key("k2", "sig", "RS256"),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(inserted, ["k1", "k2"]);
    let e1 = store.epoch("keys").await.unwrap();
    assert!(e1 > e0);
    let k1 = key_state(&store, "k1").await.unwrap();
    assert_eq!(k1.state, KeyState::Active);
    assert_eq!(k1.activated_at, Some(NOW));
    assert_eq!(
        k1.sealed_private_key,
        key("k1", "sig", "RS256").sealed_private_key,
        "bytes round-trip"
    );
    assert_eq!(k1.public_jwk, "{}");
    let k2 = key_state(&store, "k2").await.unwrap();
    assert_eq!(k2.state, KeyState::Next);
    assert_eq!(k2.activated_at, None);

    // Second call: nothing to do, nothing inserted, nothing changed.
    let inserted = store
        .ensure_keys(
            "sig".parse().unwrap(),
            "RS256".parse().unwrap(),
            key("k3", "sig", "RS256"),
            key("k4", "sig", "RS256"),
            NOW,
        )
        .await
        .unwrap();
    assert!(inserted.is_empty(), "{inserted:?}");
    assert_eq!(store.list_keys().await.unwrap().len(), 2);
    assert_eq!(store.epoch("keys").await.unwrap(), e1);

    // Another (use, alg) is independent.
    let inserted = store
        .ensure_keys(
            "enc".parse().unwrap(),
            "RSA-OAEP-256".parse().unwrap(),
            key("e1", "enc", "RSA-OAEP-256"),
            key("e2", "enc", "RSA-OAEP-256"),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(inserted, ["e1", "e2"]);
    let e2 = store.epoch("keys").await.unwrap();
    assert!(e2 > e1);

    // Revoking the next key refills the reserve.
    let revoked = store
        .revoke_key("e2", key("e3", "enc", "RSA-OAEP-256"), NOW + 1)
        .await
        .unwrap();
    assert_eq!(revoked.next.as_deref(), Some("e3"));

    // Rotation: next -> active, active -> retired, new next inserted.
    let e3 = store.epoch("keys").await.unwrap();
    let rot = store
        .rotate_keys(
            "sig".parse().unwrap(),
            "RS256".parse().unwrap(),
            Some("k2"),
            key("k3", "sig", "RS256"),
            NOW + 100,
        )
        .await
        .unwrap();
    assert_eq!(
        rot,
        Some(Rotation {
            activated: "k2".into(),
            retired: Some("k1".into()),
            next: "k3".into()
        })
    );
    let e4 = store.epoch("keys").await.unwrap();
    assert!(e4 > e3);
    let k1 = key_state(&store, "k1").await.unwrap();
    assert_eq!(
        (k1.state, k1.retired_at),
        (KeyState::Retired, Some(NOW + 100))
    );
    let k2 = key_state(&store, "k2").await.unwrap();
    assert_eq!(
        (k2.state, k2.activated_at),
        (KeyState::Active, Some(NOW + 100))
    );
    assert_eq!(key_state(&store, "k3").await.unwrap().state, KeyState::Next);
    // The enc keys were not touched.
    assert_eq!(
        kids_in(&store, "enc", "RSA-OAEP-256", KeyState::Active).await,
        ["e1"]
    );

    // A stale expected_next (another instance already rotated) does nothing.
    let rot = store
        .rotate_keys(
            "sig".parse().unwrap(),
            "RS256".parse().unwrap(),
            Some("k2"),
            key("k4", "sig", "RS256"),
            NOW + 200,
        )
        .await
        .unwrap();
    assert_eq!(rot, None);
    assert_eq!(key_state(&store, "k4").await, None);
    assert_eq!(store.epoch("keys").await.unwrap(), e4);
    assert_eq!(
        kids_in(&store, "sig", "RS256", KeyState::Active).await,
        ["k2"]
    );

    // Rotating a (use, alg) without keys does nothing.
    let rot = store
        .rotate_keys(
            "sig".parse().unwrap(),
            "ES256".parse().unwrap(),
            None,
            key("x1", "sig", "ES256"),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(rot, None);
    assert_eq!(key_state(&store, "x1").await, None);

    // Unconditional rotation.
    let rot = store
        .rotate_keys(
            "sig".parse().unwrap(),
            "RS256".parse().unwrap(),
            None,
            key("k4", "sig", "RS256"),
            NOW + 300,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            rot.activated.as_str(),
            rot.retired.as_deref(),
            rot.next.as_str()
        ),
        ("k3", Some("k2"), "k4")
    );
    assert_eq!(
        kids_in(&store, "sig", "RS256", KeyState::Retired).await,
        ["k1", "k2"]
    );

    // Pruning removes retired keys retired before the cutoff, and only those.
    let e5 = store.epoch("keys").await.unwrap();
    assert_eq!(
        store.prune_retired_keys(NOW + 100).await.unwrap(),
        0,
        "cutoff is exclusive"
    );
    assert_eq!(store.prune_retired_keys(NOW + 101).await.unwrap(), 1);
    assert_eq!(key_state(&store, "k1").await, None);
    let e6 = store.epoch("keys").await.unwrap();
    assert!(e6 > e5);
    assert_eq!(store.prune_retired_keys(NOW + 101).await.unwrap(), 0);
    assert_eq!(store.prune_retired_keys(NOW + 10_000).await.unwrap(), 1);
    assert_eq!(key_state(&store, "k2").await, None);
    assert!(store.epoch("keys").await.unwrap() > e6);
    // Active, next and revoked keys survive any cutoff.
    assert_eq!(store.prune_retired_keys(i64::MAX).await.unwrap(), 0);
    let mut kids: Vec<String> = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid.into_string())
        .collect();
    kids.sort();
    assert_eq!(kids, ["e1", "e2", "e3", "k3", "k4"]);
}

async fn keys_revocation(store: Store) {
    store
        .ensure_keys(
            "sig".parse().unwrap(),
            "ES256".parse().unwrap(),
            key("a1", "sig", "ES256"),
            key("n1", "sig", "ES256"),
            NOW,
        )
        .await
        .unwrap();
    let e0 = store.epoch("keys").await.unwrap();

    // Revoking the active key promotes the next one and refills the reserve.
    let rev = store
        .revoke_key("a1", key("n2", "sig", "ES256"), NOW + 10)
        .await
        .unwrap();
    assert_eq!(
        rev,
        KeyRevocation {
            kid: "a1".into(),
            was: KeyState::Active,
            activated: Some("n1".into()),
            next: Some("n2".into()),
        }
    );
    let e1 = store.epoch("keys").await.unwrap();
    assert!(e1 > e0);
    let a1 = key_state(&store, "a1").await.unwrap();
    assert_eq!(
        (a1.state, a1.revoked_at),
        (KeyState::Revoked, Some(NOW + 10))
    );
    let n1 = key_state(&store, "n1").await.unwrap();
    assert_eq!(
        (n1.state, n1.activated_at),
        (KeyState::Active, Some(NOW + 10))
    );
    assert_eq!(
        kids_in(&store, "sig", "ES256", KeyState::Next).await,
        ["n2"]
    );

    // Revoking the next key replaces it; the active key stays.
    let rev = store
        .revoke_key("n2", key("n3", "sig", "ES256"), NOW + 20)
        .await
        .unwrap();
    assert_eq!(
        rev,
        KeyRevocation {
            kid: "n2".into(),
            was: KeyState::Next,
            activated: None,
            next: Some("n3".into())
        }
    );
    assert_eq!(
        kids_in(&store, "sig", "ES256", KeyState::Active).await,
        ["n1"]
    );
    assert_eq!(
        kids_in(&store, "sig", "ES256", KeyState::Next).await,
        ["n3"]
    );

    // Revoking a retired key needs no replacement.
    store
        .rotate_keys(
            "sig".parse().unwrap(),
            "ES256".parse().unwrap(),
            Some("n3"),
            key("n4", "sig", "ES256"),
            NOW + 30,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        key_state(&store, "n1").await.unwrap().state,
        KeyState::Retired
    );
    let rev = store
        .revoke_key("n1", key("unused", "sig", "ES256"), NOW + 40)
        .await
        .unwrap();
    assert_eq!(
        rev,
        KeyRevocation {
            kid: "n1".into(),
            was: KeyState::Retired,
            activated: None,
            next: None
        }
    );
    assert_eq!(key_state(&store, "unused").await, None);

    // Unknown and already revoked kids are NotFound, and change nothing.
    let before = store.list_keys().await.unwrap();
    let e2 = store.epoch("keys").await.unwrap();
    let err = store
        .revoke_key("no-such-kid", key("r1", "sig", "ES256"), NOW + 50)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .revoke_key("a1", key("r2", "sig", "ES256"), NOW + 50)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.list_keys().await.unwrap(), before);
    assert_eq!(store.epoch("keys").await.unwrap(), e2);

    // The store is still writable after those aborted transactions.
    let rev = store
        .revoke_key("n3", key("n5", "sig", "ES256"), NOW + 60)
        .await
        .unwrap();
    assert_eq!(rev.activated.as_deref(), Some("n4"));
    assert_eq!(rev.next.as_deref(), Some("n5"));
    assert!(store.epoch("keys").await.unwrap() > e2);

    // Revoked keys are listed with their state and are never pruned.
    assert_eq!(store.prune_retired_keys(i64::MAX).await.unwrap(), 0);
    let mut revoked = kids_in(&store, "sig", "ES256", KeyState::Revoked).await;
    revoked.sort();
    assert_eq!(revoked, ["a1", "n1", "n2", "n3"]);
}

async fn keys_concurrent_rotation(store: Store) {
    store
        .ensure_keys(
            "sig".parse().unwrap(),
            "PS256".parse().unwrap(),
            key("act", "sig", "PS256"),
            key("nxt", "sig", "PS256"),
            NOW,
        )
        .await
        .unwrap();
    const N: usize = 8;
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .rotate_keys(
                    "sig".parse().unwrap(),
                    "PS256".parse().unwrap(),
                    Some("nxt"),
                    key(&format!("new-{i}"), "sig", "PS256"),
                    NOW + 1,
                )
                .await
        }));
    }
    let mut rotations = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(Some(r)) => rotations.push(r),
            Ok(None) => {}
            Err(e) => panic!("concurrent rotate_keys failed: {e:?}"),
        }
    }
    assert_eq!(rotations.len(), 1, "exactly one rotation: {rotations:?}");
    let rot = &rotations[0];
    assert_eq!(rot.activated, "nxt");
    assert_eq!(rot.retired.as_deref(), Some("act"));
    assert_eq!(
        kids_in(&store, "sig", "PS256", KeyState::Active).await,
        ["nxt"]
    );
    assert_eq!(
        kids_in(&store, "sig", "PS256", KeyState::Next).await,
        vec![rot.next.clone()]
    );
    assert_eq!(
        kids_in(&store, "sig", "PS256", KeyState::Retired).await,
        ["act"]
    );
    assert_eq!(
        store.list_keys().await.unwrap().len(),
        3,
        "the losers inserted nothing"
    );
}

async fn keys_concurrent_ensure(store: Store) {
    const N: usize = 8;
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .ensure_keys(
                    "enc".parse().unwrap(),
                    "ECDH-ES+A256KW".parse().unwrap(),
                    key(&format!("a-{i}"), "enc", "ECDH-ES+A256KW"),
                    key(&format!("n-{i}"), "enc", "ECDH-ES+A256KW"),
                    NOW,
                )
                .await
        }));
    }
    let mut inserted = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(kids) if kids.is_empty() => {}
            Ok(kids) => inserted.push(kids),
            Err(e) => panic!("concurrent ensure_keys failed: {e:?}"),
        }
    }
    assert_eq!(
        inserted.len(),
        1,
        "exactly one caller inserts: {inserted:?}"
    );
    let kids = &inserted[0];
    assert_eq!(kids.len(), 2);
    assert_eq!(
        kids_in(&store, "enc", "ECDH-ES+A256KW", KeyState::Active).await,
        vec![kids[0].clone()]
    );
    assert_eq!(
        kids_in(&store, "enc", "ECDH-ES+A256KW", KeyState::Next).await,
        vec![kids[1].clone()]
    );
    assert_eq!(store.list_keys().await.unwrap().len(), 2);
}
