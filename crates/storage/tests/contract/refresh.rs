//! Refresh tokens: rotation, reuse detection, grace, expiry, revocation, concurrent use, the retry window.

use std::sync::Arc;

use gatehouse_storage::{
    model::RefreshToken, RefreshRefusal, RefreshUse, RetryWindow, Store, StoreError,
};
use tokio::sync::Barrier;

use crate::{
    fixtures::{refresh, successor},
    NOW,
};

contract! {
    refresh_rotation_and_reuse => sqlite_refresh_rotation_and_reuse, postgres_refresh_rotation_and_reuse;
    refresh_grace_expiry_revocation => sqlite_refresh_grace_expiry_revocation, postgres_refresh_grace_expiry_revocation;
    refresh_concurrent_use => sqlite_refresh_concurrent_use, postgres_refresh_concurrent_use;
    refresh_retry_window => sqlite_refresh_retry_window, postgres_refresh_retry_window;
}

async fn refresh_rotation_and_reuse(store: Store) {
    let window = 30;
    let grace = RetryWindow::Seconds(window);
    let r0 = refresh("r0", "famA", "user-1", NOW + 10_000);
    store.create_refresh_token(&r0).await.unwrap();
    assert_eq!(store.refresh_token("r0").await.unwrap(), Some(r0.clone()));
    let err = store.create_refresh_token(&r0).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // First use rotates.
    let RefreshUse::Rotated(r1) = store
        .use_refresh_token("r0", "r1", NOW + 10, grace, successor("r1", NOW + 10), None)
        .await
        .unwrap()
    else {
        panic!("first use must rotate");
    };
    assert_eq!(r1.token_hash, "r1");
    assert_eq!(r1.family_id, "famA");
    assert_eq!(r1.used_at, None);
    assert_eq!(store.refresh_token("r1").await.unwrap(), Some(r1.clone()));
    let old = store.refresh_token("r0").await.unwrap().unwrap();
    assert_eq!(old.used_at, Some(NOW + 10));
    assert_eq!(old.successor_hash.as_deref(), Some("r1"));
    assert_eq!(old.revoked_at, None);

    // The old token again, within grace, successor unused: a retry with the same successor.
    let again = store
        .use_refresh_token(
            "r0",
            "r1-bis",
            NOW + 20,
            grace,
            successor("r1-bis", NOW + 20),
            None,
        )
        .await
        .unwrap();
    assert_eq!(again, RefreshUse::Retry(r1.clone()));
    assert_eq!(
        store.refresh_token("r1-bis").await.unwrap(),
        None,
        "a retry stores nothing"
    );
    let at_edge = store
        .use_refresh_token(
            "r0",
            "r1-ter",
            NOW + 10 + window,
            grace,
            successor("r1-ter", NOW + 40),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        at_edge,
        RefreshUse::Retry(r1.clone()),
        "the grace window includes its end"
    );

    // The successor is used ...
    let RefreshUse::Rotated(r2) = store
        .use_refresh_token("r1", "r2", NOW + 25, grace, successor("r2", NOW + 25), None)
        .await
        .unwrap()
    else {
        panic!("successor's first use must rotate");
    };
    assert_eq!(r2.family_id, "famA");
    // ... so the old token coming back is reuse, even within grace: the family dies.
    let reuse = store
        .use_refresh_token(
            "r0",
            "r1-x",
            NOW + 26,
            grace,
            successor("r1-x", NOW + 26),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        reuse,
        RefreshUse::Reused {
            family_id: "famA".to_owned()
        }
    );
    for h in ["r0", "r1", "r2"] {
        let t = store.refresh_token(h).await.unwrap().unwrap();
        assert_eq!(t.revoked_at, Some(NOW + 26), "{h} revoked with its family");
    }
    assert_eq!(store.refresh_token("r1-x").await.unwrap(), None);
    // Every member is now invalid, including the latest, unused one.
    for (h, s) in [("r1", "r2-x"), ("r2", "r3"), ("r0", "r1-y")] {
        assert_eq!(
            store
                .use_refresh_token(h, s, NOW + 27, grace, successor(s, NOW + 27), None)
                .await
                .unwrap(),
            RefreshUse::Invalid(RefreshRefusal::Revoked),
            "{h}"
        );
    }
    assert_eq!(
        store
            .use_refresh_token("unknown", "s", NOW, grace, successor("s", NOW), None)
            .await
            .unwrap(),
        RefreshUse::Invalid(RefreshRefusal::Unknown)
    );
}

async fn refresh_grace_expiry_revocation(store: Store) {
    let window = 30;
    let grace = RetryWindow::Seconds(window);
    // Outside the grace window: reuse, the family is revoked.
    store
        .create_refresh_token(&refresh("b0", "famB", "user-1", NOW + 10_000))
        .await
        .unwrap();
    let RefreshUse::Rotated(_) = store
        .use_refresh_token("b0", "b1", NOW, grace, successor("b1", NOW), None)
        .await
        .unwrap()
    else {
        panic!("first use must rotate");
    };
    assert_eq!(
        store
            .use_refresh_token(
                "b0",
                "b1-x",
                NOW + window + 1,
                grace,
                successor("b1-x", NOW + window + 1),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Reused {
            family_id: "famB".to_owned()
        }
    );
    assert_eq!(
        store
            .use_refresh_token(
                "b1",
                "b2",
                NOW + window + 2,
                grace,
                successor("b2", NOW + window + 2),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Invalid(RefreshRefusal::Revoked),
        "the successor died with its family"
    );

    // Expired: invalid, and nothing is written.
    let c0 = refresh("c0", "famC", "user-1", NOW + 100);
    store.create_refresh_token(&c0).await.unwrap();
    assert_eq!(
        store
            .use_refresh_token(
                "c0",
                "c1",
                NOW + 100,
                grace,
                successor("c1", NOW + 100),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Invalid(RefreshRefusal::Expired)
    );
    assert_eq!(store.refresh_token("c0").await.unwrap(), Some(c0.clone()));
    assert_eq!(store.refresh_token("c1").await.unwrap(), None);

    // Revoked by family: invalid.
    store
        .create_refresh_token(&refresh("d0", "famD", "user-1", NOW + 10_000))
        .await
        .unwrap();
    assert_eq!(
        store.revoke_refresh_family("famD", NOW + 5).await.unwrap(),
        1
    );
    assert_eq!(
        store.revoke_refresh_family("famD", NOW + 6).await.unwrap(),
        0,
        "already revoked"
    );
    assert_eq!(
        store.refresh_token("d0").await.unwrap().unwrap().revoked_at,
        Some(NOW + 5)
    );
    assert_eq!(
        store
            .use_refresh_token("d0", "d1", NOW + 10, grace, successor("d1", NOW + 10), None)
            .await
            .unwrap(),
        RefreshUse::Invalid(RefreshRefusal::Revoked)
    );

    // Revoked by user: only that user's tokens.
    store
        .create_refresh_token(&refresh("e0", "famE", "user-2", NOW + 10_000))
        .await
        .unwrap();
    store
        .create_refresh_token(&refresh("f0", "famF", "user-3", NOW + 10_000))
        .await
        .unwrap();
    assert_eq!(
        store
            .revoke_refresh_tokens_of_user("user-2", NOW + 7)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .use_refresh_token("e0", "e1", NOW + 10, grace, successor("e1", NOW + 10), None)
            .await
            .unwrap(),
        RefreshUse::Invalid(RefreshRefusal::Revoked)
    );
    assert!(matches!(
        store
            .use_refresh_token("f0", "f1", NOW + 10, grace, successor("f1", NOW + 10), None)
            .await
            .unwrap(),
        RefreshUse::Rotated(_)
    ));

    // Pruning by expiry (cutoff exclusive).
    assert_eq!(store.prune_refresh_tokens(NOW + 100).await.unwrap(), 0);
    assert_eq!(store.prune_refresh_tokens(NOW + 101).await.unwrap(), 1);
    assert_eq!(store.refresh_token("c0").await.unwrap(), None);
    assert!(store.refresh_token("b0").await.unwrap().is_some());
}

async fn refresh_concurrent_use(store: Store) {
    let grace = RetryWindow::Seconds(30);
    store
        .create_refresh_token(&refresh("hot", "famH", "user-1", NOW + 10_000))
        .await
        .unwrap();
    const N: usize = 50;
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let succ = format!("succ-{i}");
            barrier.wait().await;
            (
                i,
                store
                    .use_refresh_token(
                        "hot",
                        &succ,
                        NOW + 1,
                        grace,
                        successor(&succ, NOW + 1),
                        None,
                    )
                    .await,
            )
        }));
    }
    let mut rotated = Vec::new();
    let mut retries = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (_, Ok(RefreshUse::Rotated(s))) => rotated.push(s),
            (_, Ok(RefreshUse::Retry(s))) => retries.push(s),
            (i, Ok(other)) => panic!("task {i}: unexpected outcome {other:?}"),
            (i, Err(e)) => panic!("task {i}: concurrent use_refresh_token failed: {e:?}"),
        }
    }
    assert_eq!(rotated.len(), 1, "exactly one rotation");
    assert_eq!(retries.len(), N - 1);
    let winner = &rotated[0];
    assert!(
        retries.iter().all(|s| s == winner),
        "every retry hands out the winner's successor"
    );
    let hot = store.refresh_token("hot").await.unwrap().unwrap();
    assert_eq!(
        hot.successor_hash.as_deref(),
        Some(winner.token_hash.as_str())
    );
    assert_eq!(hot.revoked_at, None);
    for i in 0..N {
        let h = format!("succ-{i}");
        assert_eq!(
            store.refresh_token(&h).await.unwrap().is_some(),
            h == winner.token_hash,
            "{h}"
        );
    }
}

async fn refresh_retry_window(store: Store) {
    // Unlimited: a retry long after the rotation still gets the successor,
    // as long as the successor was never used.
    store
        .create_refresh_token(&refresh("u0", "famU", "user-1", NOW + 100_000))
        .await
        .unwrap();
    let RefreshUse::Rotated(u1) = store
        .use_refresh_token(
            "u0",
            "u1",
            NOW,
            RetryWindow::Unlimited,
            successor("u1", NOW),
            None,
        )
        .await
        .unwrap()
    else {
        panic!("first use must rotate");
    };
    let late = NOW + 50_000;
    assert_eq!(
        store
            .use_refresh_token(
                "u0",
                "u1-x",
                late,
                RetryWindow::Unlimited,
                successor("u1-x", late),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Retry(u1.clone())
    );
    // The same late retry with a window is reuse: the family dies.
    store
        .create_refresh_token(&refresh("w0", "famW", "user-1", NOW + 100_000))
        .await
        .unwrap();
    let RefreshUse::Rotated(_) = store
        .use_refresh_token(
            "w0",
            "w1",
            NOW,
            RetryWindow::Seconds(10),
            successor("w1", NOW),
            None,
        )
        .await
        .unwrap()
    else {
        panic!("first use must rotate");
    };
    assert_eq!(
        store
            .use_refresh_token(
                "w0",
                "w1-x",
                late,
                RetryWindow::Seconds(10),
                successor("w1-x", late),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Reused {
            family_id: "famW".to_owned()
        }
    );
    // Unlimited ends when the successor is used: then it is reuse.
    let RefreshUse::Rotated(_) = store
        .use_refresh_token(
            "u1",
            "u2",
            late + 1,
            RetryWindow::Unlimited,
            successor("u2", late + 1),
            None,
        )
        .await
        .unwrap()
    else {
        panic!("the successor's first use must rotate");
    };
    assert_eq!(
        store
            .use_refresh_token(
                "u0",
                "u1-y",
                late + 2,
                RetryWindow::Unlimited,
                successor("u1-y", late + 2),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Reused {
            family_id: "famU".to_owned()
        }
    );
    // A successor that has expired is no retry either.
    store
        .create_refresh_token(&refresh("x0", "famX", "user-1", NOW + 100_000))
        .await
        .unwrap();
    let short = |old: &RefreshToken| RefreshToken {
        token_hash: "x1".to_owned(),
        successor_hash: None,
        expires_at: NOW + 5,
        used_at: None,
        revoked_at: None,
        ..old.clone()
    };
    let RefreshUse::Rotated(_) = store
        .use_refresh_token("x0", "x1", NOW, RetryWindow::Unlimited, short, None)
        .await
        .unwrap()
    else {
        panic!("first use must rotate");
    };
    assert_eq!(
        store
            .use_refresh_token(
                "x0",
                "x1-x",
                NOW + 5,
                RetryWindow::Unlimited,
                successor("x1-x", NOW + 5),
                None
            )
            .await
            .unwrap(),
        RefreshUse::Reused {
            family_id: "famX".to_owned()
        }
    );
}
