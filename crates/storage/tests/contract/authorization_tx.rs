//! Authorization transactions: found only from their browser and until they
//! expire, marked with a sign-in and a consent, consumed exactly once (with
//! the code they end with), purged after expiry.

use std::sync::Arc;

use gatehouse_storage::{
    model::{AuthCode, AuthorizationTx, CodeLookup, TxLookup, TxSignIn},
    Store,
};
use tokio::sync::Barrier;

use crate::NOW;

contract! {
    authz_tx_lifecycle => sqlite_authz_tx_lifecycle, postgres_authz_tx_lifecycle;
    authz_tx_concurrent_consume => sqlite_authz_tx_concurrent_consume, postgres_authz_tx_concurrent_consume;
    authz_tx_expiry_and_purge => sqlite_authz_tx_expiry_and_purge, postgres_authz_tx_expiry_and_purge;
    authz_tx_live_count => sqlite_authz_tx_live_count, postgres_authz_tx_live_count;
}

fn tx(id_hash: &str, browser_hash: &str) -> AuthorizationTx {
    AuthorizationTx {
        id_hash: id_hash.to_owned(),
        browser_hash: browser_hash.to_owned(),
        request: r#"{"client_id":"client-1"}"#.to_owned(),
        sign_in: None,
        consented_at: None,
        consent_session_hash: None,
        created_at: NOW,
        expires_at: NOW + 600,
        consumed_at: None,
    }
}

fn code(code_hash: &str) -> AuthCode {
    AuthCode {
        code_hash: code_hash.to_owned(),
        client_id: "client-1".into(),
        user_id: "user-1".into(),
        redirect_uri: "https://app.example/cb".to_owned(),
        scope: "openid".to_owned(),
        nonce: None,
        code_challenge: None,
        resource: None,
        auth_time: NOW,
        sid: Some("sid-1".to_owned()),
        acr: None,
        amr: vec!["pwd".to_owned()],
        family_id: format!("fam-{code_hash}"),
        created_at: NOW,
        expires_at: NOW + 60,
        dpop_jkt: None,
    }
}

async fn authz_tx_lifecycle(store: Store) {
    store
        .create_authorization_tx(&tx("t1", "b1"))
        .await
        .unwrap();
    let TxLookup::Live(found) = store.find_authorization_tx("t1", "b1", NOW).await.unwrap() else {
        panic!("a new transaction is live");
    };
    assert_eq!(found, tx("t1", "b1"));
    // Another browser does not see it, nor can it mark or consume it.
    assert_eq!(
        store.find_authorization_tx("t1", "b2", NOW).await.unwrap(),
        TxLookup::Unknown
    );
    let sign_in = TxSignIn {
        session_id_hash: "s1".to_owned(),
        auth_time: NOW + 3,
    };
    assert!(!store
        .mark_authorization_tx_signed_in("t1", "b2", &sign_in, NOW)
        .await
        .unwrap());
    assert!(!store
        .consume_authorization_tx("t1", "b2", NOW, None)
        .await
        .unwrap());
    // Its own browser marks the sign-in and the consent.
    assert!(store
        .mark_authorization_tx_signed_in("t1", "b1", &sign_in, NOW + 3)
        .await
        .unwrap());
    assert!(store
        .mark_authorization_tx_consented("t1", "b1", "s1", NOW + 4)
        .await
        .unwrap());
    let TxLookup::Live(found) = store
        .find_authorization_tx("t1", "b1", NOW + 5)
        .await
        .unwrap()
    else {
        panic!("still live");
    };
    assert_eq!(found.sign_in, Some(sign_in.clone()));
    assert_eq!(found.consented_at, Some(NOW + 4));
    assert_eq!(found.consent_session_hash.as_deref(), Some("s1"));
    // Consumed once, with its code; then it is consumed, and stays so.
    assert!(store
        .consume_authorization_tx("t1", "b1", NOW + 6, Some(&code("c1")))
        .await
        .unwrap());
    assert!(matches!(
        store.find_code("c1", NOW + 7).await.unwrap(),
        CodeLookup::Live(_)
    ));
    assert_eq!(
        store
            .find_authorization_tx("t1", "b1", NOW + 7)
            .await
            .unwrap(),
        TxLookup::Consumed
    );
    assert!(!store
        .consume_authorization_tx("t1", "b1", NOW + 8, Some(&code("c2")))
        .await
        .unwrap());
    assert!(matches!(
        store.find_code("c2", NOW + 8).await.unwrap(),
        CodeLookup::Unknown
    ));
    assert!(!store
        .mark_authorization_tx_signed_in("t1", "b1", &sign_in, NOW + 8)
        .await
        .unwrap());
    // Ended without a code (the user denied).
    store
        .create_authorization_tx(&tx("t2", "b1"))
        .await
        .unwrap();
    assert!(store
        .consume_authorization_tx("t2", "b1", NOW + 1, None)
        .await
        .unwrap());
    assert_eq!(
        store
            .find_authorization_tx("t2", "b1", NOW + 1)
            .await
            .unwrap(),
        TxLookup::Consumed
    );
}

async fn authz_tx_concurrent_consume(store: Store) {
    store
        .create_authorization_tx(&tx("hot", "b"))
        .await
        .unwrap();
    const N: usize = 40;
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let c = code(&format!("code-{i}"));
            (
                i,
                store
                    .consume_authorization_tx("hot", "b", NOW + 1, Some(&c))
                    .await,
            )
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (i, Ok(true)) => winners.push(i),
            (_, Ok(false)) => {}
            (i, Err(e)) => panic!("task {i}: concurrent consume failed: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one consume: {winners:?}");
    // Only the winner's code exists.
    for i in 0..N {
        let found = store
            .find_code(&format!("code-{i}"), NOW + 2)
            .await
            .unwrap();
        assert_eq!(
            matches!(found, CodeLookup::Live(_)),
            winners[0] == i,
            "code {i}"
        );
    }
}

async fn authz_tx_expiry_and_purge(store: Store) {
    store
        .create_authorization_tx(&tx("old", "b"))
        .await
        .unwrap();
    let mut young = tx("young", "b");
    young.created_at = NOW + 300;
    young.expires_at = NOW + 900;
    store.create_authorization_tx(&young).await.unwrap();
    let at = NOW + 600;
    assert_eq!(
        store.find_authorization_tx("old", "b", at).await.unwrap(),
        TxLookup::Unknown
    );
    assert!(!store
        .consume_authorization_tx("old", "b", at, None)
        .await
        .unwrap());
    assert!(!store
        .mark_authorization_tx_consented("old", "b", "s", at)
        .await
        .unwrap());
    assert_eq!(store.prune_authorization_txs(at).await.unwrap(), 1);
    assert!(matches!(
        store.find_authorization_tx("young", "b", at).await.unwrap(),
        TxLookup::Live(_)
    ));
}

/// Only live transactions count: not the consumed, not the expired.
async fn authz_tx_live_count(store: Store) {
    assert_eq!(store.count_live_authorization_txs(NOW).await.unwrap(), 0);
    for id in ["a", "b", "c"] {
        store.create_authorization_tx(&tx(id, "b")).await.unwrap();
    }
    assert_eq!(store.count_live_authorization_txs(NOW).await.unwrap(), 3);
    assert!(store
        .consume_authorization_tx("a", "b", NOW + 1, None)
        .await
        .unwrap());
    assert_eq!(
        store.count_live_authorization_txs(NOW + 1).await.unwrap(),
        2
    );
    assert_eq!(
        store.count_live_authorization_txs(NOW + 600).await.unwrap(),
        0
    );
}
