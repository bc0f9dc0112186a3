//! Device authorizations (RFC 8628): found by user code only while
//! undecided and unexpired, decided once together with the browser's
//! transaction, each poll recorded (too soon, or racing another poll:
//! slow down, the interval 5 seconds longer), redeemed exactly once, a
//! later poll a replay, denied by a forced logout before redemption,
//! purged after expiry.

use std::sync::Arc;

use gatehouse_storage::{
    model::{
        AuthorizationTx, DeviceApproval, DeviceAuthorization, DeviceDecided, DeviceDecision,
        DevicePoll, GrantWrites,
    },
    Store, StoreError,
};
use tokio::sync::Barrier;

use crate::NOW;

contract! {
    device_lifecycle => sqlite_device_lifecycle, postgres_device_lifecycle;
    device_denied_expired_and_purged => sqlite_device_denied_expired_and_purged, postgres_device_denied_expired_and_purged;
    device_interval_growth_is_capped => sqlite_device_interval_growth_is_capped, postgres_device_interval_growth_is_capped;
    device_parallel_polls_and_redeems => sqlite_device_parallel_polls_and_redeems, postgres_device_parallel_polls_and_redeems;
    device_forced_logout_denies_unredeemed => sqlite_device_forced_logout_denies_unredeemed, postgres_device_forced_logout_denies_unredeemed;
}

fn device(hash: &str) -> DeviceAuthorization {
    DeviceAuthorization {
        device_code_hash: hash.to_owned(),
        user_code_hash: format!("uc-{hash}"),
        client_id: "client-1".into(),
        scope: "openid offline_access".to_owned(),
        resource: None,
        interval: 5,
        family_id: format!("fam-{hash}"),
        created_at: NOW,
        expires_at: NOW + 600,
    }
}

fn tx(id_hash: &str) -> AuthorizationTx {
    AuthorizationTx {
        id_hash: id_hash.to_owned(),
        browser_hash: "browser".to_owned(),
        request: r#"{"client_id":"client-1"}"#.to_owned(),
        sign_in: None,
        consented_at: None,
        consent_session_hash: None,
        created_at: NOW,
        expires_at: NOW + 600,
        consumed_at: None,
    }
}

fn approval() -> DeviceApproval {
    DeviceApproval {
        user_id: "user-1".into(),
        auth_time: NOW + 20,
        acr: Some("urn:gatehouse:acr:mfa".to_owned()),
        amr: vec!["pwd".to_owned(), "otp".to_owned()],
    }
}

/// Creates device authorization `hash` and a transaction `tx-<hash>`.
async fn setup(store: &Store, hash: &str) {
    store
        .create_device_authorization(&device(hash))
        .await
        .unwrap();
    store
        .create_authorization_tx(&tx(&format!("tx-{hash}")))
        .await
        .unwrap();
}

async fn decide(store: &Store, hash: &str, at: i64, d: &DeviceDecision) -> DeviceDecided {
    store
        .decide_device_authorization(&format!("tx-{hash}"), "browser", hash, at, d)
        .await
        .unwrap()
}

async fn poll(store: &Store, hash: &str, at: i64) -> DevicePoll {
    store
        .poll_device_authorization(hash, "client-1", at)
        .await
        .unwrap()
}

async fn device_lifecycle(store: Store) {
    setup(&store, "d1").await;
    // A second authorization with the same user code is a conflict.
    let mut same_code = device("d2");
    same_code.user_code_hash = "uc-d1".to_owned();
    assert!(matches!(
        store.create_device_authorization(&same_code).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .find_pending_device_authorization("uc-d1", NOW + 1)
            .await
            .unwrap(),
        Some(device("d1"))
    );
    assert!(store
        .device_authorization_pending("d1", NOW + 1)
        .await
        .unwrap());
    // Polls: the first is pending; one 3 s later slows down (10 s from
    // then on); 5 s after that still too soon (15 s); then 15 s later
    // pending again.
    assert_eq!(poll(&store, "d1", NOW + 10).await, DevicePoll::Pending);
    assert_eq!(
        poll(&store, "d1", NOW + 13).await,
        DevicePoll::SlowDown { interval: 10 }
    );
    assert_eq!(
        poll(&store, "d1", NOW + 18).await,
        DevicePoll::SlowDown { interval: 15 }
    );
    assert_eq!(poll(&store, "d1", NOW + 33).await, DevicePoll::Pending);
    // Another client's poll records nothing and learns nothing.
    assert_eq!(
        store
            .poll_device_authorization("d1", "client-2", NOW + 34)
            .await
            .unwrap(),
        DevicePoll::OtherClient
    );
    assert_eq!(poll(&store, "nope", NOW + 34).await, DevicePoll::Unknown);
    // Approved together with the transaction; a second decision loses.
    let approve = DeviceDecision::Approve(approval());
    assert_eq!(
        decide(&store, "d1", NOW + 40, &approve).await,
        DeviceDecided::Decided
    );
    assert_eq!(
        decide(&store, "d1", NOW + 41, &DeviceDecision::Deny).await,
        DeviceDecided::TxLost
    );
    // Another transaction cannot decide it again either, and leaves its
    // own transaction unspent.
    store
        .create_authorization_tx(&tx("tx-other"))
        .await
        .unwrap();
    assert_eq!(
        store
            .decide_device_authorization(
                "tx-other",
                "browser",
                "d1",
                NOW + 41,
                &DeviceDecision::Deny
            )
            .await
            .unwrap(),
        DeviceDecided::DeviceLost
    );
    assert!(store
        .consume_authorization_tx("tx-other", "browser", NOW + 42, None)
        .await
        .unwrap());
    // No longer found by its user code.
    assert_eq!(
        store
            .find_pending_device_authorization("uc-d1", NOW + 42)
            .await
            .unwrap(),
        None
    );
    assert!(!store
        .device_authorization_pending("d1", NOW + 42)
        .await
        .unwrap());
    // (with the interval it grew to)
    let grown = DeviceAuthorization {
        interval: 15,
        ..device("d1")
    };
    assert_eq!(
        poll(&store, "d1", NOW + 50).await,
        DevicePoll::Approved(grown, approval())
    );
    assert!(store
        .redeem_device_code("d1", NOW + 50, "jti-1", NOW + 950, &GrantWrites::default())
        .await
        .unwrap());
    assert!(!store
        .redeem_device_code("d1", NOW + 51, "jti-2", NOW + 951, &GrantWrites::default())
        .await
        .unwrap());
    // Polled again within the interval after the redemption: it raced
    // it, and slows down; after the interval: a replay, with what to
    // revoke.
    assert_eq!(
        poll(&store, "d1", NOW + 52).await,
        DevicePoll::SlowDown { interval: 15 }
    );
    // However many such polls come, the grace counts from the redemption
    // and stays five seconds: nobody can stretch it past the victim's
    // next poll.
    for _ in 0..30 {
        assert!(matches!(
            poll(&store, "d1", NOW + 54).await,
            DevicePoll::SlowDown { interval: 15 }
        ));
    }
    assert!(matches!(
        poll(&store, "d1", NOW + 55).await,
        DevicePoll::Replayed { .. }
    ));
    assert_eq!(
        poll(&store, "d1", NOW + 70).await,
        DevicePoll::Replayed {
            family_id: "fam-d1".to_owned(),
            access_token_jti: Some("jti-1".to_owned()),
            access_token_expires_at: Some(NOW + 950),
        }
    );
}

async fn device_interval_growth_is_capped(store: Store) {
    setup(&store, "fast").await;
    assert_eq!(poll(&store, "fast", NOW).await, DevicePoll::Pending);
    let mut last = 5;
    for i in 1..40 {
        match poll(&store, "fast", NOW + i).await {
            DevicePoll::SlowDown { interval } => {
                assert!(interval >= last && interval <= 60, "{interval}");
                last = interval;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(last, 60, "grows to the cap and stays there");
    // A minute after the last poll it is an ordinary poll again.
    assert_eq!(
        poll(&store, "fast", NOW + 39 + 60).await,
        DevicePoll::Pending
    );
}

async fn device_denied_expired_and_purged(store: Store) {
    setup(&store, "no").await;
    assert_eq!(
        decide(&store, "no", NOW + 5, &DeviceDecision::Deny).await,
        DeviceDecided::Decided
    );
    assert_eq!(poll(&store, "no", NOW + 6).await, DevicePoll::Denied);
    // Undecided until it expired: expired for its poll, lost for a
    // decision (the transaction stays unspent), gone by user code.
    setup(&store, "late").await;
    assert_eq!(poll(&store, "late", NOW + 600).await, DevicePoll::Expired);
    assert_eq!(
        decide(&store, "late", NOW + 600, &DeviceDecision::Deny).await,
        DeviceDecided::TxLost
    );
    store
        .create_authorization_tx(&AuthorizationTx {
            expires_at: NOW + 2000,
            ..tx("tx-late2")
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .decide_device_authorization(
                "tx-late2",
                "browser",
                "late",
                NOW + 601,
                &DeviceDecision::Deny
            )
            .await
            .unwrap(),
        DeviceDecided::DeviceLost
    );
    assert_eq!(
        store
            .find_pending_device_authorization("uc-late", NOW + 600)
            .await
            .unwrap(),
        None
    );
    // An approved one that expired before its poll cannot be redeemed.
    setup(&store, "slow").await;
    decide(
        &store,
        "slow",
        NOW + 1,
        &DeviceDecision::Approve(approval()),
    )
    .await;
    assert_eq!(poll(&store, "slow", NOW + 600).await, DevicePoll::Expired);
    assert!(!store
        .redeem_device_code("slow", NOW + 600, "j", NOW + 900, &GrantWrites::default())
        .await
        .unwrap());
    // Purged once their expiry is before the cutoff.
    assert_eq!(
        store.prune_device_authorizations(NOW + 600).await.unwrap(),
        0
    );
    assert_eq!(
        store.prune_device_authorizations(NOW + 601).await.unwrap(),
        3
    );
    assert_eq!(poll(&store, "no", NOW + 602).await, DevicePoll::Unknown);
}

async fn device_parallel_polls_and_redeems(store: Store) {
    setup(&store, "hot").await;
    decide(&store, "hot", NOW + 1, &DeviceDecision::Approve(approval())).await;
    assert_eq!(
        poll(&store, "hot", NOW + 2).await,
        DevicePoll::Approved(device("hot"), approval())
    );
    // Eight polls at once, after the interval: one is recorded, the rest
    // raced it and slow down.
    const N: usize = 8;
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .poll_device_authorization("hot", "client-1", NOW + 20)
                .await
        }));
    }
    let mut approved = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            DevicePoll::Approved(..) => approved += 1,
            DevicePoll::SlowDown { interval } => assert!(interval >= 10),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(approved, 1, "one of the racing polls goes through");
    // And of concurrent redemptions exactly one wins.
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .redeem_device_code(
                    "hot",
                    NOW + 21,
                    &format!("jti-{i}"),
                    NOW + 900,
                    &GrantWrites::default(),
                )
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one redemption wins");
}

async fn device_forced_logout_denies_unredeemed(store: Store) {
    setup(&store, "a").await;
    setup(&store, "b").await;
    decide(&store, "a", NOW + 1, &DeviceDecision::Approve(approval())).await;
    decide(&store, "b", NOW + 1, &DeviceDecision::Approve(approval())).await;
    assert!(store
        .redeem_device_code("b", NOW + 2, "jti-b", NOW + 900, &GrantWrites::default())
        .await
        .unwrap());
    // Only the approval not yet redeemed is withdrawn (the redeemed one's
    // tokens are revoked with the user's other tokens).
    assert_eq!(
        store
            .deny_unredeemed_device_approvals("user-1", None, NOW + 3)
            .await
            .unwrap(),
        1
    );
    assert_eq!(poll(&store, "a", NOW + 10).await, DevicePoll::Denied);
    assert!(matches!(
        poll(&store, "b", NOW + 10).await,
        DevicePoll::Replayed { .. }
    ));
}
