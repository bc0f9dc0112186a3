//! Revoked access tokens: the revocation list, the token status list, opaque token records.

use gatehouse_storage::{StatusEntry, Store};

use crate::{fixtures::opaque, NOW};

contract! {
    revocation_list => sqlite_revocation_list, postgres_revocation_list;
    token_status => sqlite_token_status, postgres_token_status;
    opaque_token_revocation => sqlite_opaque_token_revocation, postgres_opaque_token_revocation;
}

async fn revocation_list(store: Store) {
    assert!(!store.is_jti_revoked("j1").await.unwrap());
    store.revoke_jti("j1", NOW + 100, NOW).await.unwrap();
    // Idempotent: revoking again (even with another expiry) is fine and keeps the entry.
    store.revoke_jti("j1", NOW + 100, NOW + 1).await.unwrap();
    store.revoke_jti("j1", NOW + 50, NOW + 2).await.unwrap();
    store.revoke_jti("j2", NOW + 200, NOW).await.unwrap();
    assert!(store.is_jti_revoked("j1").await.unwrap());
    assert!(store.is_jti_revoked("j2").await.unwrap());
    assert!(!store.is_jti_revoked("j3").await.unwrap());

    // Entries go once their tokens would have expired (strictly before `now`).
    assert_eq!(store.prune_revoked(NOW + 100).await.unwrap(), 0);
    assert_eq!(store.prune_revoked(NOW + 101).await.unwrap(), 1);
    assert!(!store.is_jti_revoked("j1").await.unwrap());
    assert!(store.is_jti_revoked("j2").await.unwrap());
    assert_eq!(store.prune_revoked(NOW + 101).await.unwrap(), 0);
}

async fn token_status(store: Store) {
    // Concurrent reservations never overlap, and the high-water mark follows.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.reserve_status_block(100).await
        }));
    }
    let mut starts = Vec::new();
    for t in tasks {
        starts.push(t.await.unwrap().unwrap());
    }
    starts.sort_unstable();
    assert_eq!(starts, (0..16).map(|i| i * 100).collect::<Vec<_>>());
    assert_eq!(store.status_high_water().await.unwrap(), 1600);
    // A block starts at a multiple of its size (so a power of two never
    // spans two lists); the indices skipped to get there are never used.
    assert_eq!(store.reserve_status_block(1024).await.unwrap(), 2048);
    assert_eq!(store.reserve_status_block(4096).await.unwrap(), 4096);
    assert_eq!(store.reserve_status_block(1024).await.unwrap(), 8192);
    assert_eq!(store.status_high_water().await.unwrap(), 9216);

    let entry = |idx: i64, subject: &str, family: &str, expires_at: i64| StatusEntry {
        idx,
        list_id: idx / 1000,
        subject: Some(subject.to_owned()),
        family: Some(family.to_owned()),
        expires_at,
    };
    store
        .record_token_status(&entry(1, "alice", "f1", NOW + 900))
        .await
        .unwrap();
    store
        .record_token_status(&entry(2, "alice", "f2", NOW + 900))
        .await
        .unwrap();
    store
        .record_token_status(&entry(3, "bob", "f3", NOW + 900))
        .await
        .unwrap();
    store
        .record_token_status(&entry(4, "alice", "f2", NOW - 1))
        .await
        .unwrap();
    store
        .record_token_status(&entry(1001, "alice", "f1", NOW + 900))
        .await
        .unwrap();
    assert!(store
        .revoked_status_indices(0, NOW)
        .await
        .unwrap()
        .is_empty());

    // The lists that changed come back, each once.
    assert_eq!(
        store.revoke_status_family("f1", NOW).await.unwrap(),
        vec![0, 1]
    );
    assert_eq!(store.revoked_status_indices(0, NOW).await.unwrap(), vec![1]);
    assert_eq!(
        store.revoked_status_indices(1, NOW).await.unwrap(),
        vec![1001]
    );
    // Expired tokens are not touched; already revoked ones do not count:
    // only idx 2 changes (1 and 1001 were revoked with f1, 4 has expired).
    assert_eq!(
        store.revoke_status_subject("alice", NOW).await.unwrap(),
        vec![0]
    );
    assert!(store
        .revoke_status_subject("alice", NOW)
        .await
        .unwrap()
        .is_empty());
    let mut list0 = store.revoked_status_indices(0, NOW).await.unwrap();
    list0.sort_unstable();
    assert_eq!(list0, vec![1, 2]);
    // One token revoked by index, recorded or not; idempotent.
    store.revoke_status_index(3, 0, NOW + 900).await.unwrap();
    store.revoke_status_index(7, 0, NOW + 60).await.unwrap();
    store.revoke_status_index(7, 0, NOW + 60).await.unwrap();
    let mut list0 = store.revoked_status_indices(0, NOW).await.unwrap();
    list0.sort_unstable();
    assert_eq!(list0, vec![1, 2, 3, 7]);
    // Once their tokens have expired, rows go.
    assert_eq!(store.prune_token_status(NOW + 61).await.unwrap(), 2);
    assert_eq!(
        store
            .revoked_status_indices(0, NOW + 61)
            .await
            .unwrap()
            .len(),
        3
    );
}

async fn opaque_token_revocation(store: Store) {
    let tokens = [
        opaque("o1", "client-1", Some("famO")),
        opaque("o2", "client-1", Some("famO")),
        opaque("o3", "client-1", Some("famP")),
        opaque("o4", "client-1", None),
        opaque("o5", "client-2", Some("famQ")),
    ];
    for t in &tokens {
        store.create_opaque_token(t).await.unwrap();
    }
    // The family round-trips.
    assert_eq!(
        store.opaque_token("o1").await.unwrap(),
        Some(tokens[0].clone())
    );
    assert_eq!(
        store.opaque_token("o4").await.unwrap(),
        Some(tokens[3].clone())
    );
    // A grant revokes exactly its tokens, once.
    assert_eq!(
        store.revoke_opaque_family("famO", NOW + 1).await.unwrap(),
        2
    );
    assert_eq!(
        store.revoke_opaque_family("famO", NOW + 2).await.unwrap(),
        0
    );
    for (h, revoked) in [("o1", true), ("o2", true), ("o3", false), ("o4", false)] {
        let t = store.opaque_token(h).await.unwrap().unwrap();
        assert_eq!(t.revoked_at.is_some(), revoked, "{h}");
    }
    // A client: every token it holds, with or without a grant, not others'.
    assert_eq!(
        store
            .revoke_opaque_tokens_of_client("client-1", NOW + 3)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.opaque_token("o1").await.unwrap().unwrap().revoked_at,
        Some(NOW + 1),
        "the first revocation time stays"
    );
    assert_eq!(
        store.opaque_token("o4").await.unwrap().unwrap().revoked_at,
        Some(NOW + 3)
    );
    assert_eq!(
        store.opaque_token("o5").await.unwrap().unwrap().revoked_at,
        None
    );
}
