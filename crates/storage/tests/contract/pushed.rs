//! Pushed authorization requests (RFC 9126): redeemed once, only by the
//! client that pushed them and before they expire (a miss says why and
//! spends nothing), one winner among concurrent redeemers, purged after
//! expiry.

use std::sync::Arc;

use gatehouse_storage::{
    model::{PushedRequest, Redemption},
    Store, StoreError,
};
use tokio::sync::Barrier;

use crate::NOW;

contract! {
    pushed_request_lifecycle => sqlite_pushed_request_lifecycle, postgres_pushed_request_lifecycle;
    pushed_request_concurrent_redeem => sqlite_pushed_request_concurrent_redeem, postgres_pushed_request_concurrent_redeem;
    pushed_request_expiry_and_purge => sqlite_pushed_request_expiry_and_purge, postgres_pushed_request_expiry_and_purge;
}

fn pushed(id_hash: &str, client_id: &str) -> PushedRequest {
    PushedRequest {
        id_hash: id_hash.to_owned(),
        client_id: client_id.into(),
        request: format!(r#"{{"client_id":"{client_id}","state":"é\"q"}}"#),
        created_at: NOW,
        expires_at: NOW + 60,
        redeemed_at: None,
    }
}

async fn pushed_request_lifecycle(store: Store) {
    store
        .create_pushed_request(&pushed("p1", "client-1"))
        .await
        .unwrap();
    // The same id again is a conflict.
    assert!(matches!(
        store
            .create_pushed_request(&pushed("p1", "client-1"))
            .await
            .unwrap_err(),
        StoreError::Conflict(_)
    ));
    // Another client is refused, and spends nothing.
    assert_eq!(
        store
            .redeem_pushed_request("p1", "client-2", NOW + 1)
            .await
            .unwrap(),
        Redemption::OtherClient
    );
    // Its client redeems it once, and gets back what was stored.
    let Redemption::Redeemed(found) = store
        .redeem_pushed_request("p1", "client-1", NOW + 2)
        .await
        .unwrap()
    else {
        panic!("the pushing client redeems it");
    };
    assert_eq!(
        found,
        PushedRequest {
            redeemed_at: Some(NOW + 2),
            ..pushed("p1", "client-1")
        }
    );
    // Then it is used, for its client, and still another client's.
    assert_eq!(
        store
            .redeem_pushed_request("p1", "client-1", NOW + 3)
            .await
            .unwrap(),
        Redemption::Used
    );
    assert_eq!(
        store
            .redeem_pushed_request("p1", "client-2", NOW + 3)
            .await
            .unwrap(),
        Redemption::OtherClient
    );
    assert_eq!(
        store
            .redeem_pushed_request("nope", "client-1", NOW)
            .await
            .unwrap(),
        Redemption::Unknown
    );
}

async fn pushed_request_concurrent_redeem(store: Store) {
    store
        .create_pushed_request(&pushed("hot", "client-1"))
        .await
        .unwrap();
    const N: usize = 40;
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .redeem_pushed_request("hot", "client-1", NOW + 1)
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Redemption::Redeemed(_) => won += 1,
            Redemption::Used => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one redeemer wins");
}

async fn pushed_request_expiry_and_purge(store: Store) {
    store
        .create_pushed_request(&pushed("old", "client-1"))
        .await
        .unwrap();
    store
        .create_pushed_request(&pushed("used", "client-1"))
        .await
        .unwrap();
    store
        .create_pushed_request(&PushedRequest {
            expires_at: NOW + 120,
            ..pushed("young", "client-1")
        })
        .await
        .unwrap();
    assert!(matches!(
        store
            .redeem_pushed_request("used", "client-1", NOW + 10)
            .await
            .unwrap(),
        Redemption::Redeemed(_)
    ));
    // At its expiry it can no longer be redeemed.
    assert_eq!(
        store
            .redeem_pushed_request("old", "client-1", NOW + 60)
            .await
            .unwrap(),
        Redemption::Expired
    );
    // Purging at NOW + 60 deletes the expired ones, redeemed or not.
    assert_eq!(store.prune_pushed_requests(NOW + 60).await.unwrap(), 2);
    assert_eq!(store.prune_pushed_requests(NOW + 60).await.unwrap(), 0);
    assert_eq!(
        store
            .redeem_pushed_request("old", "client-1", NOW + 61)
            .await
            .unwrap(),
        Redemption::Unknown
    );
    assert!(matches!(
        store
            .redeem_pushed_request("young", "client-1", NOW + 61)
            .await
            .unwrap(),
        Redemption::Redeemed(_)
    ));
}
