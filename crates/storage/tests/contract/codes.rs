//! Authorization codes: create, find, redeem once (concurrently too), pending codes of a user.

use std::sync::Arc;

use gatehouse_storage::{
    model::{AuthCode, CodeLookup, CodeRedemption, GrantWrites},
    Store, StoreError,
};
use tokio::sync::Barrier;

use crate::{fixtures::code, NOW};

contract! {
    codes => sqlite_codes, postgres_codes;
    codes_concurrent_redeem => sqlite_codes_concurrent_redeem, postgres_codes_concurrent_redeem;
    codes_find => sqlite_codes_find, postgres_codes_find;
    pending_codes_of_user => sqlite_pending_codes_of_user, postgres_pending_codes_of_user;
}

async fn codes(store: Store) {
    let c = code("ch1", "fam1", NOW + 60);
    store.create_code(&c).await.unwrap();
    let err = store.create_code(&c).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // First redemption returns the code, every field intact.
    assert_eq!(
        store
            .redeem_code("ch1", NOW + 1, "jti-1", NOW + 301, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Redeemed(c.clone())
    );
    // A second one is a replay, carrying what the first recorded.
    let replay = CodeRedemption::Replayed {
        family_id: "fam1".to_owned(),
        access_token_jti: Some("jti-1".to_owned()),
        access_token_expires_at: Some(NOW + 301),
    };
    assert_eq!(
        store
            .redeem_code("ch1", NOW + 2, "jti-2", NOW + 302, &GrantWrites::default())
            .await
            .unwrap(),
        replay
    );
    assert_eq!(
        store
            .redeem_code("ch1", NOW + 3, "jti-3", NOW + 303, &GrantWrites::default())
            .await
            .unwrap(),
        replay
    );

    // An expired code is invalid (the expiry instant itself included), and stays so.
    let c2 = AuthCode {
        nonce: None,
        code_challenge: None,
        resource: None,
        sid: None,
        amr: vec![],
        ..code("ch2", "fam2", NOW + 60)
    };
    store.create_code(&c2).await.unwrap();
    assert_eq!(
        store
            .redeem_code("ch2", NOW + 60, "jti-x", NOW + 360, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert_eq!(
        store
            .redeem_code("ch2", NOW + 61, "jti-y", NOW + 361, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );

    // A fresh code with the optional fields empty round-trips too.
    let c3 = AuthCode {
        expires_at: NOW + 600,
        ..c2.clone()
    };
    let c3 = AuthCode {
        code_hash: "ch3".to_owned(),
        ..c3
    };
    store.create_code(&c3).await.unwrap();
    assert_eq!(
        store
            .redeem_code("ch3", NOW + 59, "jti-3", NOW + 359, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Redeemed(c3)
    );

    // Unknown.
    assert_eq!(
        store
            .redeem_code("nope", NOW, "jti-z", NOW + 300, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );

    // Pruning drops codes that expired before the cutoff; a pruned code is unknown.
    assert_eq!(
        store.prune_codes(NOW + 60).await.unwrap(),
        0,
        "cutoff is exclusive"
    );
    assert_eq!(store.prune_codes(NOW + 61).await.unwrap(), 2);
    assert_eq!(
        store
            .redeem_code("ch1", NOW + 62, "jti-4", NOW + 362, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    assert!(matches!(
        store
            .redeem_code("ch3", NOW + 62, "jti-5", NOW + 362, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Replayed { .. }
    ));
}

async fn codes_concurrent_redeem(store: Store) {
    store
        .create_code(&code("hot", "fam-hot", NOW + 60))
        .await
        .unwrap();
    const N: usize = 50;
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            (
                i,
                store
                    .redeem_code(
                        "hot",
                        NOW + 1,
                        &format!("jti-{i}"),
                        NOW + 301,
                        &GrantWrites::default(),
                    )
                    .await,
            )
        }));
    }
    let mut winners = Vec::new();
    let mut replays = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (i, Ok(CodeRedemption::Redeemed(c))) => {
                assert_eq!(c.code_hash, "hot");
                winners.push(i);
            }
            (
                _,
                Ok(CodeRedemption::Replayed {
                    family_id,
                    access_token_jti,
                    ..
                }),
            ) => {
                assert_eq!(family_id, "fam-hot");
                replays.push(access_token_jti);
            }
            (i, Ok(CodeRedemption::Invalid)) => panic!("task {i}: Invalid for a live code"),
            (i, Err(e)) => panic!("task {i}: concurrent redeem_code failed: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption: {winners:?}");
    assert_eq!(replays.len(), N - 1);
    let jti = format!("jti-{}", winners[0]);
    assert!(
        replays.iter().all(|j| j.as_deref() == Some(jti.as_str())),
        "every replay names the winner's jti {jti}"
    );
}

/// Looking a code up consumes nothing: a live code stays redeemable, a used
/// one is told apart from an expired and an unknown one.
async fn codes_find(store: Store) {
    let c = code("fc1", "ffam1", NOW + 60);
    store.create_code(&c).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            store.find_code("fc1", NOW + 1).await.unwrap(),
            CodeLookup::Live(c.clone())
        );
    }
    assert_eq!(
        store.find_code("fc1", NOW + 60).await.unwrap(),
        CodeLookup::Expired,
        "the expiry instant itself is expired, as for redeem_code"
    );
    assert_eq!(
        store
            .redeem_code("fc1", NOW + 2, "jti-f", NOW + 302, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Redeemed(c.clone())
    );
    assert_eq!(
        store.find_code("fc1", NOW + 3).await.unwrap(),
        CodeLookup::Used(c.clone())
    );
    assert_eq!(
        store.find_code("fc1", NOW + 61).await.unwrap(),
        CodeLookup::Used(c),
        "a used code stays recognisable as used until it is pruned"
    );
    assert_eq!(
        store.find_code("nope", NOW).await.unwrap(),
        CodeLookup::Unknown
    );
}

async fn pending_codes_of_user(store: Store) {
    store
        .create_code(&code("p1", "famP1", NOW + 60))
        .await
        .unwrap();
    store
        .create_code(&code("p2", "famP2", NOW + 60))
        .await
        .unwrap();
    store
        .create_code(&AuthCode {
            user_id: "user-2".into(),
            ..code("p3", "famP3", NOW + 60)
        })
        .await
        .unwrap();
    assert!(matches!(
        store
            .redeem_code("p1", NOW + 1, "jti-p1", NOW + 301, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    // Only the unredeemed code of that user goes.
    assert_eq!(
        store.delete_pending_codes_of_user("user-1").await.unwrap(),
        1
    );
    assert_eq!(
        store
            .redeem_code("p2", NOW + 2, "jti-p2", NOW + 302, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Invalid
    );
    // The redeemed one is still known, so its replay is still caught.
    assert!(matches!(
        store
            .redeem_code("p1", NOW + 3, "jti-x", NOW + 303, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Replayed { .. }
    ));
    assert!(matches!(
        store
            .redeem_code("p3", NOW + 4, "jti-p3", NOW + 304, &GrantWrites::default())
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
}
